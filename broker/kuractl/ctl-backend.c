/* Where kuractl's operations run: on kurad over admin.sock when a kurad serves this state
 * directory (so its watchers see a change at once and it holds the keys), or on the vault
 * here when none does; either way through the operations table (ops.h). Touches plaintext:
 * values cross the socket in base64 inside guarded buffers. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <curl/curl.h>

#include "audit-event.h"
#include "audit.h"
#include "base64.h"
#include "ctl.h"
#include "json.h"
#include "ops.h"
#include "safepath.h"
#include "wire.h"

/* A reply gathered in guarded memory: it may hold a value. */
struct reply {
	struct kura_secbuf *buf;
	bool too_big;
};

static size_t collect(char *p, size_t size, size_t n, void *userdata)
{
	struct reply *r = userdata;
	size_t add = size * n;

	if (r->too_big || add > (64u << 20) - (r->buf ? r->buf->len : 0)) {
		r->too_big = true;
		return 0;
	}
	if (!r->buf || r->buf->len + add > r->buf->cap) {
		struct kura_secbuf *bigger;
		size_t cap = r->buf ? r->buf->cap * 2 : 65536;

		while (cap < (r->buf ? r->buf->len : 0) + add)
			cap *= 2;
		if (kura_secbuf_new(cap, &bigger) < 0)
			return 0;
		if (r->buf) {
			memcpy(bigger->data, r->buf->data, r->buf->len);
			bigger->len = r->buf->len;
			kura_secbuf_free(r->buf); /* wiped */
		}
		r->buf = bigger;
	}
	memcpy(r->buf->data + r->buf->len, p, add);
	r->buf->len += add;
	return add;
}

/*
 * Whom kuractl talks to. Before a byte goes out, the run directory (and every directory above
 * it) must be one that only root or this user can change (safepath.c), and the server on its
 * admin.sock must be root's or this user's by the kernel's account (SO_PEERCRED of the very
 * socket the request then goes over): anyone else could have put a socket there that answers
 * /v1/status like kurad and collects the values kuractl sends.
 *
 * The socket is ours (open_socket), libcurl connects it (to the socket beneath the directory
 * descriptor that was checked, through /proc/self/fd), and prereq() looks at it once connected,
 * before the request is sent. (Connecting it ourselves and telling libcurl
 * CURL_SOCKOPT_ALREADY_CONNECTED does not work with Debian 12's libcurl 7.88, which connects it
 * again: curl#10626.)
 */
struct admin_conn {
	curl_socket_t fd;
	const char *shown; /* RUN_DIR/admin.sock, for messages */
	int err;
	struct kura_err *why;
};

static curl_socket_t open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *addr)
{
	struct admin_conn *a = clientp;

	if (purpose != CURLSOCKTYPE_IPCXN || addr->family != AF_UNIX || a->fd != CURL_SOCKET_BAD)
		return CURL_SOCKET_BAD;
	a->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	return a->fd;
}

static int prereq(void *clientp, char *primary_ip, char *local_ip, int primary_port, int local_port)
{
	struct admin_conn *a = clientp;
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (a->fd == CURL_SOCKET_BAD ||
		getsockopt(a->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		a->err = kura_err_set(a->why, -EIO, "cannot tell who serves %s; nothing was sent",
			a->shown);
		return CURL_PREREQFUNC_ABORT;
	}
	if (cred.uid != 0 && cred.uid != geteuid()) {
		a->err = kura_err_set(a->why, -EPERM,
			"refusing to talk to %s: it is served by uid %u (pid %d), not by root%s; "
			"nothing was sent",
			a->shown, (unsigned)cred.uid, (int)cred.pid,
			geteuid() ? " or this user" : "");
		return CURL_PREREQFUNC_ABORT;
	}
	return CURL_PREREQFUNC_OK;
}

/*
 * One HTTP exchange with the kurad at run_dir/admin.sock; body may be NULL (GET). -ENOENT when
 * there is nothing there to talk to (no directory, no socket), -ECONNREFUSED when nothing
 * listens, -EPERM (err says why, nothing was sent) when what is there cannot be trusted.
 */
static int exchange(const char *run_dir, const char *path, const struct kura_secbuf *body,
	long *ret_status, struct reply *ret, struct kura_err *err)
{
	_cleanup_close_ int dirfd = -1;
	struct curl_slist *hdr = NULL;
	struct admin_conn a = { .fd = CURL_SOCKET_BAD, .why = err };
	char url[256], shown[4200], why[512], sock[64];
	struct stat st;
	CURL *curl;
	CURLcode cr;

	snprintf(shown, sizeof(shown), "%s/admin.sock", run_dir);
	a.shown = shown;
	dirfd = kura_path_open_trusted(run_dir, geteuid(), why, sizeof(why));
	if (dirfd < 0) {
		/* An untrusted place with no socket in it is no kurad, not an attack. */
		if (dirfd == -ENOENT || lstat(shown, &st) < 0)
			return -ENOENT;
		return kura_err_set(err, dirfd == -EPERM ? -EPERM : dirfd,
			"refusing to talk to %s: %s; nothing was sent", shown, why);
	}
	if (faccessat(dirfd, "admin.sock", F_OK, AT_SYMLINK_NOFOLLOW) < 0)
		return -ENOENT;
	snprintf(sock, sizeof(sock), "/proc/self/fd/%d/admin.sock", dirfd);

	curl = curl_easy_init();
	if (!curl)
		return -ENOMEM;
	snprintf(url, sizeof(url), "http://kurad%s", path);
	curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, sock);
	curl_easy_setopt(curl, CURLOPT_OPENSOCKETFUNCTION, open_socket);
	curl_easy_setopt(curl, CURLOPT_OPENSOCKETDATA, &a);
	curl_easy_setopt(curl, CURLOPT_PREREQFUNCTION, prereq);
	curl_easy_setopt(curl, CURLOPT_PREREQDATA, &a);
	curl_easy_setopt(curl, CURLOPT_FORBID_REUSE, 1L);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
	/* A key rotation over many secrets takes a while; kurad bounds everything else. */
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 600000L);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, ret);
	if (body) {
		hdr = curl_slist_append(hdr, "Content-Type: application/json");
		curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdr);
		/* Sent from our guarded buffer; libcurl does not copy POSTFIELDS. */
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body->data);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body->len);
	}
	cr = curl_easy_perform(curl);
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, ret_status);
	curl_easy_cleanup(curl);
	curl_slist_free_all(hdr);
	if (a.err)
		return a.err;
	if (cr == CURLE_COULDNT_CONNECT)
		return -ECONNREFUSED;
	if (cr != CURLE_OK)
		return ret->too_big ? -EMSGSIZE : -EIO;
	return 0;
}

static json_t *parse_reply(const struct reply *r)
{
	return r->buf ? json_loadb((const char *)r->buf->data, r->buf->len, 0, NULL) : NULL;
}

/* POST /v1/op/NAME with a's fields, as the table writes them, and kurad's reply read into res
 * as the table reads it. A refusal carries kurad's errno and message. */
static int rpc(struct ctl *c, const struct kura_operation *op, const struct kura_op_args *a,
	struct kura_op_result *res, struct kura_err *err)
{
	_cleanup_secbuf_ struct kura_secbuf *body = NULL;
	struct reply rep = { 0 };
	char path[64];
	long status = 0;
	json_t *resp = NULL;
	int r;

	r = kura_op_request(op, a, &body);
	if (r == -EINVAL)
		return kura_err_set(err, r, "%s: an argument is missing", op->name);
	if (r < 0)
		return r;
	snprintf(path, sizeof(path), "/v1/op/%s", op->name);
	r = exchange(c->run_dir, path, body, &status, &rep, err);
	if (r == -EPERM) {
		kura_secbuf_free(rep.buf);
		return r;
	}
	if (r < 0) {
		kura_secbuf_free(rep.buf);
		return kura_err_set(err, r, "kurad stopped answering on %s: %s", c->admin_sock,
			strerror(-r));
	}
	r = kura_wire_reply_parse(rep.buf ? rep.buf->data : NULL, rep.buf ? rep.buf->len : 0,
		status, &resp, err);
	kura_secbuf_free(rep.buf);
	if (r < 0)
		return r;
	r = kura_op_reply_parse(op, resp, res);
	json_decref(resp);
	if (r < 0)
		return kura_err_set(err, -EPROTO, "kurad's answer to %s is malformed", op->name);
	return 0;
}

/* Is a kurad serving this state directory at run_dir? Then its admin socket is where commands
 * go: 1. 0 when none is there (work offline), -EPERM (err says why) when what is there cannot
 * be trusted. */
static int kurad_serves(struct ctl *c, const char *run_dir, struct kura_err *err)
{
	char want[PATH_MAX], have[PATH_MAX];
	struct reply rep = { 0 };
	long status = 0;
	json_t *j;
	bool same;
	int r;

	if (c->offline)
		return 0;
	r = exchange(run_dir, "/v1/status", NULL, &status, &rep, err);
	if (r < 0 || status != 200) {
		kura_secbuf_free(rep.buf);
		return r == -EPERM ? r : 0;
	}
	j = parse_reply(&rep);
	kura_secbuf_free(rep.buf);
	same = json_string_value(json_object_get(j, "state_dir")) &&
		realpath(json_string_value(json_object_get(j, "state_dir")), have) &&
		realpath(c->state_dir, want) && strcmp(have, want) == 0;
	json_decref(j);
	return same;
}

int ctl_admin_get_raw(struct ctl *c, const char *path, long *ret_status, struct kura_secbuf **ret,
	struct kura_err *err)
{
	struct reply rep = { 0 };
	int r;

	snprintf(c->admin_sock, sizeof(c->admin_sock), "%s/admin.sock", c->run_dir);
	r = exchange(c->run_dir, path, NULL, ret_status, &rep, err);
	if (r == 0 && !rep.buf)
		r = kura_secbuf_new(1, &rep.buf); /* an empty body */
	if (r == 0) {
		*ret = rep.buf;
		return 0;
	}
	if (r != -EPERM)
		kura_err_set(err, r, "cannot reach kurad at %s: %s (is kurad running?)",
			c->admin_sock, strerror(r == -ENOENT ? ECONNREFUSED : -r));
	kura_secbuf_free(rep.buf);
	return r;
}

int ctl_admin_get(struct ctl *c, const char *path, long *ret_status, json_t **ret,
	struct kura_err *err)
{
	struct reply rep = { 0 };
	int r = ctl_admin_get_raw(c, path, ret_status, &rep.buf, err);

	if (r == 0) {
		*ret = parse_reply(&rep);
		if (!*ret)
			r = kura_err_set(err, -EPROTO, "the answer on %s is not JSON",
				c->admin_sock);
	}
	kura_secbuf_free(rep.buf);
	return r;
}

/* The run directory a kurad serving this state wrote into it (see daemon.c): so kuractl finds
 * it without --run-dir. The state directory is root's alone; kurad_serves checks anyway. */
static bool run_dir_of_state(struct ctl *c, char *buf, size_t size)
{
	char path[PATH_MAX];
	FILE *f;
	bool ok;

	snprintf(path, sizeof(path), "%s/" KURA_RUN_DIR_FILE, c->state_dir);
	f = fopen(path, "re");
	if (!f)
		return false;
	ok = fgets(buf, (int)size, f) && buf[0] == '/';
	fclose(f);
	if (ok)
		buf[strcspn(buf, "\n")] = 0;
	return ok;
}

int ctl_connect(struct ctl *c)
{
	static char other[2048];
	struct kura_err err = { 0 };
	int r;

	snprintf(c->admin_sock, sizeof(c->admin_sock), "%s/admin.sock", c->run_dir);
	r = kurad_serves(c, c->run_dir, &err);
	if (r == 0 && !c->offline && run_dir_of_state(c, other, sizeof(other)) &&
		strcmp(other, c->run_dir) != 0) {
		r = kurad_serves(c, other, &err);
		if (r > 0) {
			c->run_dir = other;
			snprintf(c->admin_sock, sizeof(c->admin_sock), "%s/admin.sock", other);
		}
	}
	if (r < 0)
		return ctl_fail(r, &err);
	if (r > 0) {
		c->remote = true;
		return 0;
	}
	return ctl_open(c, &c->vault);
}

void ctl_disconnect(struct ctl *c)
{
	kura_audit_close(c->audit);
	c->audit = NULL;
	kura_vault_close(c->vault);
	c->vault = NULL;
	c->remote = false;
}

/*
 * Working offline, kuractl keeps the audit log itself, as kurad would: the log is opened before
 * anything is changed (fail closed), and each operation's record written when it is done.
 */
static int audit_open(struct ctl *c, bool reads, bool fsync_each, struct kura_err *err)
{
	struct kura_audit_opts o = KURA_AUDIT_OPTS_DEFAULT;
	char dir[4096];
	int r;

	if (c->audit)
		return 0;
	/* Other kuractls take their turns (each holds the log for one operation). */
	o.open_wait_ms = 10000;
	o.fsync = fsync_each;
	r = kura_audit_dir(c->state_dir, dir, sizeof(dir));
	if (r == 0)
		r = kura_audit_open(dir, &o, &c->audit);
	/* A state on a read-only file system (a mounted backup) can be read, not changed, and
	 * there is nowhere to write a record: say so rather than refuse. */
	if (r == -EROFS && reads) {
		fprintf(stderr,
			"kuractl: warning: %s is on a read-only file system; this read is "
			"not recorded there\n",
			dir);
		return 0;
	}
	if (r == -ENOENT)
		return kura_err_set(err, -ENOENT,
			"%s does not exist: this state has no audit "
			"log, and nothing is done unrecorded (kuractl audit init creates one)",
			dir);
	if (r == -EBUSY)
		return kura_err_set(err, -EBUSY,
			"the audit log %s is held by another process "
			"(a kurad? then go through it: without --offline, with its --run-dir)",
			dir);
	if (r < 0)
		return kura_err_set(err, r, "cannot open the audit log %s: %s", dir,
			r == -EBADMSG ? "its last records do not verify (kuractl audit verify)" :
					strerror(-r));
	return 0;
}

static int audit_ready(struct ctl *c, bool reads, struct kura_err *err)
{
	return audit_open(c, reads, true, err);
}

/* An import's records reach the disk once per batch, not one fsync per record: the newest log
 * file (the one append writes) synced through a descriptor of its own. */
static int audit_sync(struct ctl *c)
{
	char dir[4096], name[32] = "", path[4200];
	struct dirent *de;
	DIR *d;
	int fd, r = 0;

	if (kura_audit_dir(c->state_dir, dir, sizeof(dir)) < 0 || !(d = opendir(dir)))
		return -errno;
	while ((de = readdir(d)))
		if (strncmp(de->d_name, "audit-", 6) == 0 && strlen(de->d_name) < sizeof(name) &&
			strcmp(de->d_name, name) > 0)
			memcpy(name, de->d_name, strlen(de->d_name) + 1); /* shorter than name */
	closedir(d);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = name[0] ? open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) : -1;
	if (fd < 0 || fsync(fd) < 0)
		r = -errno;
	if (fd >= 0)
		close(fd);
	return r;
}

/*
 * Run op with a wherever this state is served: through kurad, or here, recorded as kurad would
 * record it (the same record, built by the table, with "offline" as its detail). On failure res
 * is empty: a value not recorded is not shown.
 */
static int run(struct ctl *c, const char *name, struct kura_op_args *a, struct kura_op_result *res,
	struct kura_err *err)
{
	const struct kura_operation *op = kura_op_find(name);
	struct kura_identity self = kura_identity_self();
	struct kura_op_record rec;
	int r, ar;

	if (!op)
		return -ENOSYS;
	if (c->remote)
		return rpc(c, op, a, res, err);
	if (kura_op_recorded(op, a)) {
		r = audit_ready(c, !op->changes, err);
		if (r < 0)
			return r;
	}
	r = kura_op_run(op, c->vault, a, res, err);
	if (!c->audit || !kura_op_record(op, a, res, r, &self, "offline", &rec))
		return r;
	ar = kura_audit_append_event(c->audit, &rec.event, NULL);
	if (ar < 0 && r == 0) {
		kura_op_result_done(res);
		return kura_err_set(err, ar,
			"%s: done, but its audit record could not be written: "
			"%s",
			rec.event.event, strerror(-ar));
	}
	return r;
}

int be_max_value(struct ctl *c, uint64_t set, uint64_t *ret, struct kura_err *err)
{
	struct kura_op_args a = { .max_value_size = set };
	struct kura_op_result res = { 0 };
	int r = run(c, "config", &a, &res, err);

	/* Offline, a refused change still shows the limit in force, as it always did. */
	if (r == 0 || !c->remote)
		*ret = c->remote ? res.max_value_size : kura_vault_max_value(c->vault);
	return r;
}

int be_secret_write(struct ctl *c, const char *name, const struct kura_secbuf *value, bool create,
	uint64_t *ret_version, struct kura_err *err)
{
	struct kura_op_args a = { .name = name,
		.value = (struct kura_secbuf *)value,
		.create = create };
	struct kura_op_result res = { 0 };
	int r = run(c, "secret.write", &a, &res, err);

	if (r == 0)
		*ret_version = res.version;
	return r;
}

int be_secret_get(struct ctl *c, const char *name, uint64_t version, struct kura_secbuf **ret_value,
	struct kura_version_info *ret_info, struct kura_err *err)
{
	struct kura_op_args a = { .name = name, .version = version };
	struct kura_op_result res = { 0 };
	int r = run(c, "secret.get", &a, &res, err);

	if (r < 0)
		return r;
	*ret_value = TAKE_PTR(res.value);
	*ret_info = res.info;
	return 0;
}

int be_secret_show(struct ctl *c, const char *name, struct kura_secret_info *ret,
	struct kura_err *err)
{
	struct kura_op_args a = { .name = name };
	struct kura_op_result res = { 0 };
	int r = run(c, "secret.show", &a, &res, err);

	if (r == 0) {
		*ret = res.secret;
		res.secret = (struct kura_secret_info){ 0 };
	}
	return r;
}

int be_secret_list(struct ctl *c, const char *prefix, struct kura_secret_list *ret,
	struct kura_err *err)
{
	struct kura_op_args a = { .prefix = prefix };
	struct kura_op_result res = { 0 };
	int r = run(c, "secret.list", &a, &res, err);

	if (r == 0)
		*ret = res.secrets;
	return r;
}

int be_secret_rollback(struct ctl *c, const char *name, uint64_t to, struct kura_err *err)
{
	struct kura_op_args a = { .name = name, .to = to };
	struct kura_op_result res = { 0 };

	return run(c, "secret.rollback", &a, &res, err);
}

int be_secret_destroy(struct ctl *c, const char *name, uint64_t version, struct kura_err *err)
{
	struct kura_op_args a = { .name = name, .version = version, .all = version == 0 };
	struct kura_op_result res = { 0 };

	return run(c, "secret.destroy", &a, &res, err);
}

int be_grant_add(struct ctl *c, struct kura_grant *g, bool *ret_existed, struct kura_err *err)
{
	struct kura_op_args a = { .grant = g };
	struct kura_op_result res = { 0 };
	int r = run(c, "grant.add", &a, &res, err);

	if (r < 0)
		return r;
	*ret_existed = res.existed;
	/* Through kurad, the grant as it was stored comes back in the reply. */
	if (c->remote) {
		memcpy(g->id, res.grant.id, sizeof(g->id));
		g->created = res.grant.created;
	}
	kura_op_result_done(&res);
	return 0;
}

int be_grant_remove(struct ctl *c, const char *id, struct kura_err *err)
{
	struct kura_op_args a = { .id = id };
	struct kura_op_result res = { 0 };

	return run(c, "grant.remove", &a, &res, err);
}

int be_grant_list(struct ctl *c, struct kura_grant_list *ret, struct kura_err *err)
{
	struct kura_op_args a = { 0 };
	struct kura_op_result res = { 0 };
	int r = run(c, "grant.list", &a, &res, err);

	if (r == 0)
		*ret = res.grants;
	return r;
}

int be_key_rotate(struct ctl *c, kura_progress_fn progress, uint64_t *ret_count, uint32_t *ret_kek,
	struct kura_err *err)
{
	struct kura_op_args a = { .progress = progress };
	struct kura_op_result res = { 0 };
	int r = run(c, "key.rotate", &a, &res, err);

	if (r == 0) {
		*ret_count = res.rewrapped;
		*ret_kek = res.kek;
	}
	return r;
}

int be_key_rekey(struct ctl *c, const struct kura_master_source *to, struct kura_err *err)
{
	struct kura_op_args a = { .master = *to };
	struct kura_op_result res = { 0 };
	char abs[PATH_MAX];

	if (c->remote && to->kind != KURA_MASTER_TPM2) {
		/* kurad reads the file itself: give it an absolute path, and never standard
		 * input. */
		if (!to->path || strcmp(to->path, "-") == 0)
			return kura_err_set(err, -EINVAL,
				"kurad runs this store: give the new passphrase in a file, not on "
				"standard input");
		if (to->path[0] == '/')
			snprintf(abs, sizeof(abs), "%s", to->path);
		else if (!getcwd(abs, sizeof(abs)) ||
			strlen(abs) + 1 + strlen(to->path) >= sizeof(abs))
			return kura_err_set(err, -ENAMETOOLONG, "path too long");
		else
			snprintf(abs + strlen(abs), sizeof(abs) - strlen(abs), "/%s", to->path);
		a.master.path = abs;
	}
	return run(c, "key.rekey", &a, &res, err);
}

int be_key_status(struct ctl *c, struct kura_key_status *ret, struct kura_err *err)
{
	struct kura_op_args a = { 0 };
	struct kura_op_result res = { 0 };
	int r = run(c, "key.status", &a, &res, err);

	if (r == 0)
		*ret = res.status;
	return r;
}

/* Append the string s at *p, within end (import_body sized the buffer for all of it). */
static bool put(char **p, const char *end, const char *s)
{
	size_t n = strlen(s);

	if (n > (size_t)(end - *p))
		return false;
	memcpy(*p, s, n);
	*p += n;
	return true;
}

/* POST /v1/import's body, {"secrets":[{"name":N,"value":BASE64},...]}, in guarded memory. */
static int import_body(const char *const *names, struct kura_secbuf *const *values, size_t n,
	struct kura_secbuf **ret)
{
	_cleanup_secbuf_ struct kura_secbuf *b = NULL;
	char **quoted = calloc(n ? n : 1, sizeof(*quoted));
	size_t size = 32;
	int r = 0;

	if (!quoted)
		return -ENOMEM;
	for (size_t i = 0; i < n && r == 0; i++) {
		json_t *s = json_string(names[i]);

		quoted[i] = s ? json_dumps(s, JSON_ENCODE_ANY | JSON_ENSURE_ASCII) : NULL;
		json_decref(s);
		if (!quoted[i])
			r = -ENOMEM;
		else
			size += strlen(quoted[i]) + kura_base64_len(values[i]->len) + 24;
	}
	if (r == 0)
		r = kura_secbuf_new(size, &b);
	if (r == 0) {
		char *p = (char *)b->data;
		const char *end = p + size;
		bool ok = put(&p, end, "{\"secrets\":[");

		for (size_t i = 0; i < n && ok; i++) {
			ok = put(&p, end, i ? ",{\"name\":" : "{\"name\":") &&
				put(&p, end, quoted[i]) && put(&p, end, ",\"value\":\"") &&
				kura_base64_len(values[i]->len) <= (size_t)(end - p);
			if (ok)
				p += kura_base64_encode(values[i]->data, values[i]->len, p);
			ok = ok && put(&p, end, "\"}");
		}
		ok = ok && put(&p, end, "]}");
		if (ok) {
			b->len = (size_t)(p - (char *)b->data);
			*ret = TAKE_PTR(b);
		} else {
			r = -EOVERFLOW; /* the size above is wrong: a bug, never a short body */
		}
	}
	for (size_t i = 0; i < n; i++)
		kura_json_free(quoted[i]); /* jansson's allocator made them */
	free(quoted);
	return r;
}

int be_secret_import(struct ctl *c, const char *const *names, struct kura_secbuf *const *values,
	size_t n, size_t *ret_failed, int64_t *ret_rev, struct kura_err *err)
{
	const struct kura_operation *op = kura_op_find("secret.write");
	struct kura_identity self = kura_identity_self();
	int r;

	*ret_failed = n;
	if (c->remote) {
		_cleanup_secbuf_ struct kura_secbuf *body = NULL;
		struct reply rep = { 0 };
		json_t *resp = NULL, *e;
		long status = 0;

		r = import_body(names, values, n, &body);
		if (r < 0)
			return r;
		r = exchange(c->run_dir, "/v1/import", body, &status, &rep, err);
		if (r < 0 && r != -EPERM)
			r = kura_err_set(err, r, "kurad stopped answering on %s: %s", c->admin_sock,
				strerror(-r));
		if (r < 0) {
			kura_secbuf_free(rep.buf);
			return r;
		}
		/* A refusal names the secret it was about. */
		resp = parse_reply(&rep);
		e = json_object_get(resp, "index");
		if (status != 200 && json_is_integer(e) && json_integer_value(e) >= 0 &&
			(uint64_t)json_integer_value(e) < n)
			*ret_failed = (size_t)json_integer_value(e);
		json_decref(resp);
		r = kura_wire_reply_parse(rep.buf ? rep.buf->data : NULL,
			rep.buf ? rep.buf->len : 0, status, &resp, err);
		kura_secbuf_free(rep.buf);
		if (r < 0)
			return r;
		e = json_object_get(resp, "revision");
		if (ret_rev)
			*ret_rev = json_is_integer(e) ? json_integer_value(e) : 0;
		json_decref(resp);
		return 0;
	}
	r = c->audit ? 0 : audit_open(c, false, false, err);
	if (r < 0)
		return r;
	r = kura_secret_put_many(c->vault, names, values, n, ret_failed, ret_rev, err);
	/* Each put recorded as kurad records it, "offline import" as the detail. */
	for (size_t i = 0; r == 0 && i < n; i++) {
		struct kura_op_args a = { .name = names[i], .value = values[i], .create = true };
		struct kura_op_result res = { .version = 1 };
		struct kura_op_record rec;
		int ar;

		if (kura_vault_fingerprint(c->vault, values[i], res.fingerprint) < 0)
			res.fingerprint[0] = 0;
		if (!kura_op_record(op, &a, &res, 0, &self, "offline import", &rec))
			continue;
		ar = kura_audit_append_event(c->audit, &rec.event, NULL);
		if (ar < 0)
			return kura_err_set(err, ar,
				"the secrets were imported, but their audit records could not all "
				"be written: %s",
				strerror(-ar));
	}
	if (r == 0 && (r = audit_sync(c)) < 0)
		return kura_err_set(err, r,
			"the secrets were imported, but their audit records could not be synced "
			"to disk: %s",
			strerror(-r));
	return r;
}

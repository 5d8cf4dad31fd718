/* The admin API on admin.sock (root only): whois, status, and every operation kuractl offers
 * (POST /v1/op/NAME with JSON arguments), run on kurad's open vault. Touches plaintext: values
 * arrive and leave in base64 inside guarded buffers. */
#include <errno.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "cgroup.h"
#include "admin.h"
#include "conn.h"
#include "grant.h"
#include "http.h"
#include "json.h"
#include "outcome.h"
#include "wire.h"

/* The identity kurad derives for a pid or a container, and the secrets it could read. */
static enum MHD_Result whois(struct kura_admin *d, struct MHD_Connection *c)
{
	const char *pid_s = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "pid");
	const char *container = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "container");
	struct kura_grant_list g = { 0 };
	struct kura_secret_list l = { 0 };
	struct kura_err err = { 0 };
	struct kura_ident *ident = NULL;
	const struct kura_identity *id;
	json_t *j, *readable, *grants;
	uint64_t pid;
	int r;

	if (!!pid_s == !!container)
		return kura_http_error(c, MHD_HTTP_BAD_REQUEST, "bad_request",
			"whois takes pid=PID or container=ID|NAME");
	if (pid_s) {
		if (!kura_http_query_u64(c, "pid", 1, 4194304, 0, &pid))
			return kura_http_error(c, MHD_HTTP_BAD_REQUEST, "bad_request",
				"pid must be a process id");
		r = kura_resolver_identify_pid(d->resolver, (pid_t)pid, &ident);
	} else {
		r = kura_resolver_identify_container(d->resolver, container, &ident);
	}
	if (r == -EAGAIN)
		return kura_http_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "runtime_unavailable",
			"the container runtime did not answer in time");
	if (r == -ESRCH || r == -ENOENT)
		return kura_http_error(c, MHD_HTTP_NOT_FOUND, "not_found",
			pid_s ? "no such process" : "no running container by that id or name");
	if (r < 0)
		return kura_http_error(c, MHD_HTTP_FORBIDDEN, "unidentified",
			"kurad would not give that process an identity (unknown container layout, "
			"runtime not configured, or another pid namespace)");
	id = kura_ident_view(ident);
	kura_keeper_hold(d->keeper);
	r = kura_grant_list(d->vault, &g, &err);
	if (r == 0)
		r = kura_secret_list(d->vault, "", &l, &err);
	kura_keeper_release(d->keeper);
	if (r < 0) {
		kura_ident_unref(ident);
		kura_grant_list_done(&g);
		return kura_http_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "store_unavailable",
			"the store cannot be read now");
	}
	readable = json_array();
	grants = json_array();
	for (size_t i = 0; i < l.n; i++)
		if (kura_policy_allows(g.items, g.n, id, l.items[i].name))
			json_array_append_new(readable, json_string(l.items[i].name));
	for (size_t i = 0; i < g.n; i++)
		if (kura_grant_matches(&g.items[i], id))
			json_array_append_new(grants, json_string(g.items[i].id));
	j = json_pack("{s:o, s:o, s:o}", "identity", kura_identity_json(id), "readable", readable,
		"grants", grants);
	kura_secret_list_done(&l);
	kura_grant_list_done(&g);
	kura_ident_unref(ident);
	return kura_http_json(c, MHD_HTTP_OK, j);
}

/* What kurad is doing: the store revision, runtimes, the identity cache's counters, and the
 * workload socket's connections, long polls and principals. */
static enum MHD_Result status(struct kura_admin *d, struct MHD_Connection *c)
{
	struct kura_resolver_stats st;
	struct kura_quota_stats ls;
	int64_t rev;

	kura_workload_stats(d->workload, &rev, &ls);
	kura_resolver_get_stats(d->resolver, &st);
	return kura_http_json(c, MHD_HTTP_OK,
		json_pack("{s:I, s:i, s:s, s:{s:I, s:I, s:I, s:I, s:I}, "
			  "s:{s:I, s:I, s:I, s:I, s:I, s:I}}",
			"revision", (json_int_t)rev, "runtimes", (int)d->n_runtimes, "state_dir",
			d->state_dir, "identity", "hits", (json_int_t)st.hits, "misses",
			(json_int_t)st.misses, "inspects", (json_int_t)st.inspects, "prefetches",
			(json_int_t)st.prefetches, "events", (json_int_t)st.events, "workload",
			"connections", (json_int_t)ls.connections, "watches",
			(json_int_t)ls.watches, "principals", (json_int_t)ls.principals,
			"evictions", (json_int_t)ls.evictions, "refused",
			(json_int_t)ls.refused, "suppressed", (json_int_t)ls.suppressed));
}

/* A POST's body, gathered in guarded memory (it may carry a value). */
struct admin_req {
	struct kura_secbuf *body;
	bool too_big;
};

void kura_admin_completed(void *cls, struct MHD_Connection *c, void **req_cls,
	enum MHD_RequestTerminationCode code)
{
	struct admin_req *req = req_cls ? *req_cls : NULL;

	(void)cls;
	(void)c;
	(void)code;
	if (!req)
		return;
	if (!kura_http_marker(req)) {
		kura_secbuf_free(req->body);
		free(req);
	}
	*req_cls = NULL;
}

/* What an operation tells its audit record beyond its arguments and reply. */
struct op_note {
	char fingerprint[KURA_FINGERPRINT_TEXT]; /* of the value written or read; "" if none */
	uint64_t version;
	char grant_id[KURA_GRANT_ID_LEN + 1];
};

typedef int (*op_fn)(struct kura_admin *d, const json_t *a, json_t **resp,
	struct kura_secbuf **resp_raw, struct op_note *note, struct kura_err *err);

static const char *arg_str(const json_t *a, const char *key)
{
	return json_string_value(json_object_get(a, key));
}

static uint64_t arg_u64(const json_t *a, const char *key)
{
	const json_t *v = json_object_get(a, key);

	return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
}

static int op_secret_write(struct kura_admin *d, const json_t *a, json_t **resp,
	struct kura_secbuf **raw, struct op_note *note,
	struct kura_err *err)
{
	struct kura_secbuf *value = NULL;
	const char *name = arg_str(a, "name");
	uint64_t version = 0;
	int r;

	(void)raw;
	if (!name || kura_wire_value_parse(a, "value", &value) < 0)
		return kura_err_set(err, -EINVAL, "secret.write takes name and value (base64)");
	kura_keeper_hold(d->keeper);
	r = json_is_true(json_object_get(a, "create")) ?
		kura_secret_put(d->vault, name, value, &version, err) :
		kura_secret_rotate(d->vault, name, value, &version, err);
	if (r == 0 && kura_vault_fingerprint(d->vault, value, note->fingerprint) < 0)
		note->fingerprint[0] = 0;
	note->version = version;
	kura_keeper_release(d->keeper);
	kura_secbuf_free(value);
	if (r == 0)
		*resp = json_pack("{s:I}", "version", (json_int_t)version);
	return r;
}

static int op_secret_get(struct kura_admin *d, const json_t *a, json_t **resp,
	struct kura_secbuf **raw, struct op_note *note,
	struct kura_err *err)
{
	struct kura_secbuf *value = NULL;
	struct kura_version_info info;
	const char *name = arg_str(a, "name");
	int r;

	(void)resp;
	if (!name)
		return kura_err_set(err, -EINVAL, "secret.get takes name");
	kura_keeper_hold(d->keeper);
	r = kura_secret_get(d->vault, name, arg_u64(a, "version"), &value, &info, err);
	if (r == 0) {
		note->version = info.version;
		r = kura_vault_fingerprint(d->vault, value, note->fingerprint);
	}
	kura_keeper_release(d->keeper);
	if (r == 0)
		r = kura_http_secret_body(name, &info, value, raw);
	kura_secbuf_free(value);
	return r;
}

static int op_secret_show(struct kura_admin *d, const json_t *a, json_t **resp,
	struct kura_secbuf **raw, struct op_note *note,
	struct kura_err *err)
{
	struct kura_secret_info info = { 0 };
	const char *name = arg_str(a, "name");
	int r;

	(void)raw;
	if (!name)
		return kura_err_set(err, -EINVAL, "secret.show takes name");
	kura_keeper_hold(d->keeper);
	r = kura_secret_show(d->vault, name, &info, err);
	kura_keeper_release(d->keeper);
	if (r == 0)
		*resp = kura_wire_info(&info);
	kura_secret_info_done(&info);
	return r;
}

static int op_secret_list(struct kura_admin *d, const json_t *a, json_t **resp,
	struct kura_secbuf **raw, struct op_note *note,
	struct kura_err *err)
{
	struct kura_secret_list l = { 0 };
	json_t *arr;
	int r;

	(void)raw;
	kura_keeper_hold(d->keeper);
	r = kura_secret_list(d->vault, arg_str(a, "prefix") ?: "", &l, err);
	kura_keeper_release(d->keeper);
	if (r < 0)
		return r;
	arr = json_array();
	for (size_t i = 0; arr && i < l.n; i++)
		json_array_append_new(arr, kura_wire_info(&l.items[i]));
	kura_secret_list_done(&l);
	*resp = json_pack("{s:o}", "secrets", arr);
	return 0;
}

static int op_secret_rollback(struct kura_admin *d, const json_t *a, json_t **resp,
	struct kura_secbuf **raw, struct op_note *note,
	struct kura_err *err)
{
	const char *name = arg_str(a, "name");
	int r;

	(void)raw;
	if (!name || !arg_u64(a, "to"))
		return kura_err_set(err, -EINVAL, "secret.rollback takes name and to");
	kura_keeper_hold(d->keeper);
	r = kura_secret_rollback(d->vault, name, arg_u64(a, "to"), err);
	kura_keeper_release(d->keeper);
	if (r == 0)
		*resp = json_object();
	return r;
}

static int op_secret_destroy(struct kura_admin *d, const json_t *a, json_t **resp,
	struct kura_secbuf **raw, struct op_note *note,
	struct kura_err *err)
{
	const char *name = arg_str(a, "name");
	int r;

	(void)raw;
	if (!name)
		return kura_err_set(err, -EINVAL, "secret.destroy takes name");
	kura_keeper_hold(d->keeper);
	r = kura_secret_destroy(d->vault, name, arg_u64(a, "version"), err);
	kura_keeper_release(d->keeper);
	if (r == 0)
		*resp = json_object();
	return r;
}

static int op_grant_add(struct kura_admin *d, const json_t *a, json_t **resp,
	struct kura_secbuf **raw, struct op_note *note,
	struct kura_err *err)
{
	struct kura_grant g = { 0 };
	bool existed = false;
	int r;

	(void)raw;
	if (kura_wire_grant_parse(json_object_get(a, "grant"), &g) < 0)
		return kura_err_set(err, -EINVAL, "grant.add takes a valid grant");
	kura_keeper_hold(d->keeper);
	r = kura_grant_add(d->vault, &g, &existed, err);
	kura_keeper_release(d->keeper);
	memcpy(note->grant_id, g.id, sizeof(note->grant_id));
	if (r == 0)
		*resp = json_pack("{s:o, s:b}", "grant", kura_wire_grant(&g), "existed", existed);
	kura_grant_done(&g);
	return r;
}

static int op_grant_remove(struct kura_admin *d, const json_t *a, json_t **resp,
	struct kura_secbuf **raw, struct op_note *note,
	struct kura_err *err)
{
	const char *id = arg_str(a, "id");
	int r;

	(void)raw;
	if (!id)
		return kura_err_set(err, -EINVAL, "grant.remove takes id");
	kura_keeper_hold(d->keeper);
	r = kura_grant_remove(d->vault, id, err);
	kura_keeper_release(d->keeper);
	if (r == 0)
		*resp = json_object();
	return r;
}

static int op_grant_list(struct kura_admin *d, const json_t *a, json_t **resp,
	struct kura_secbuf **raw, struct op_note *note,
	struct kura_err *err)
{
	struct kura_grant_list l = { 0 };
	json_t *arr;
	int r;

	(void)a;
	(void)raw;
	kura_keeper_hold(d->keeper);
	r = kura_grant_list(d->vault, &l, err);
	kura_keeper_release(d->keeper);
	if (r < 0)
		return r;
	arr = json_array();
	for (size_t i = 0; arr && i < l.n; i++)
		json_array_append_new(arr, kura_wire_grant(&l.items[i]));
	kura_grant_list_done(&l);
	*resp = json_pack("{s:o}", "grants", arr);
	return 0;
}

static int op_key_rotate(struct kura_admin *d, const json_t *a, json_t **resp,
	struct kura_secbuf **raw, struct op_note *note,
	struct kura_err *err)
{
	uint64_t count = 0;
	uint32_t kek = 0;
	int r;

	(void)a;
	(void)raw;
	kura_keeper_hold(d->keeper);
	r = kura_key_rotate(d->vault, NULL, NULL, &count, &kek, err);
	kura_keeper_release(d->keeper);
	if (r == 0)
		*resp = json_pack("{s:I, s:I}", "rewrapped", (json_int_t)count, "kek",
			(json_int_t)kek);
	return r;
}

static int op_key_rekey(struct kura_admin *d, const json_t *a, json_t **resp,
	struct kura_secbuf **raw, struct op_note *note,
	struct kura_err *err)
{
	const char *kind = arg_str(a, "kind"), *path = arg_str(a, "path");
	struct kura_master_source to;
	int r;

	(void)raw;
	/* kurad reads the new key or passphrase itself, from a file on this host: never from
	 * the request, and never standard input. */
	if (!kind || !path || path[0] != '/')
		return kura_err_set(err, -EINVAL, "key.rekey takes kind and an absolute path");
	to = (struct kura_master_source){ strcmp(kind, "passphrase") == 0 ?
			KURA_MASTER_PASSPHRASE :
			KURA_MASTER_FILE,
		path };
	kura_keeper_hold(d->keeper);
	r = kura_key_rekey(d->vault, &to, err);
	kura_keeper_release(d->keeper);
	if (r == 0)
		*resp = json_object();
	return r;
}

static int op_key_status(struct kura_admin *d, const json_t *a, json_t **resp,
	struct kura_secbuf **raw, struct op_note *note,
	struct kura_err *err)
{
	struct kura_key_status st = { 0 };
	int r;

	(void)a;
	(void)raw;
	kura_keeper_hold(d->keeper);
	r = kura_key_status(d->vault, &st, err);
	kura_keeper_release(d->keeper);
	if (r == 0)
		*resp = kura_wire_status(&st);
	kura_key_status_done(&st);
	return r;
}

static int op_config(struct kura_admin *d, const json_t *a, json_t **resp,
	struct kura_secbuf **raw, struct op_note *note,
	struct kura_err *err)
{
	uint64_t max = arg_u64(a, "max_value_size");
	int r = 0;

	(void)raw;
	kura_keeper_hold(d->keeper);
	if (max)
		r = kura_vault_set_max_value(d->vault, max, err);
	max = kura_vault_max_value(d->vault);
	kura_keeper_release(d->keeper);
	if (r == 0)
		*resp = json_pack("{s:I}", "max_value_size", (json_int_t)max);
	return r;
}

/* event: what the audit log calls it; NULL for reads of metadata only (names, grants, key
 * status), which are not recorded. A value read (secret.get) is. */
static const struct op {
	const char *name;
	op_fn fn;
	const char *event;
	bool changes; /* refused up front while the audit log is failing */
} ops[] = {
	{ "secret.write", op_secret_write, "secret-put", true },
	{ "secret.get", op_secret_get, "secret-get", false },
	{ "secret.show", op_secret_show, NULL, false },
	{ "secret.list", op_secret_list, NULL, false },
	{ "secret.rollback", op_secret_rollback, "secret-rollback", true },
	{ "secret.destroy", op_secret_destroy, "secret-destroy", true },
	{ "grant.add", op_grant_add, "grant", true },
	{ "grant.remove", op_grant_remove, "revoke", true },
	{ "grant.list", op_grant_list, NULL, false },
	{ "key.rotate", op_key_rotate, "key-rotate", true },
	{ "key.rekey", op_key_rekey, "key-rekey", true },
	{ "key.status", op_key_status, NULL, false },
	{ "config", op_config, "config", true },
};

/* The operation's record, from its arguments, its reply and its note. */
static int audit_op(struct kura_admin *d, const struct kura_conn *conn, const struct op *op,
	const json_t *args, const json_t *resp, const struct op_note *note, int r)
{
	struct kura_identity who = { .host = true, .pid = conn->peer.pid, .uid = conn->peer.uid,
		.gid = conn->peer.gid };
	const char *event = op->event;
	char rid[KURA_REQUEST_ID_LEN + 1];
	uint64_t version = note->version;

	if (strcmp(op->name, "secret.write") == 0 && !json_is_true(json_object_get(args, "create")))
		event = "secret-rotate";
	if (strcmp(op->name, "config") == 0 && !arg_u64(args, "max_value_size"))
		return 0; /* only shown, not changed */
	if (!version)
		version = arg_u64(args, strcmp(op->name, "secret.rollback") == 0 ? "to" : "version");
	kura_request_id(rid);
	return kura_recorder_append(d->rec, &(struct kura_audit_event){ .event = event,
		.result = r == 0 ? "ok" : "error", .reason = r == 0 ? NULL : kura_outcome_reason(r),
		.who = &who, .secret = arg_str(args, "name"), .version = version,
		.fingerprint = note->fingerprint[0] ? note->fingerprint : NULL, .request_id = rid,
		.grant_id = note->grant_id[0] ? note->grant_id : arg_str(args, "id"),
		.kek = json_integer_value(json_object_get(resp, "kek")),
		.count = json_integer_value(json_object_get(resp, "rewrapped")),
		.has_count = json_object_get(resp, "rewrapped") != NULL });
}

static enum MHD_Result run_op(struct kura_admin *d, struct MHD_Connection *c,
	const struct kura_conn *conn, const char *name, const struct admin_req *req)
{
	struct kura_secbuf *raw = NULL;
	struct kura_err err = { 0 };
	struct op_note note = { 0 };
	const struct op *op = NULL;
	json_t *args, *resp = NULL;
	int r;

	if (!req || !req->body || req->too_big)
		return kura_http_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "too_large",
			"an operation's arguments are a JSON object within the size limit");
	args = json_loadb((const char *)req->body->data, req->body->len, JSON_REJECT_DUPLICATES,
		NULL);
	if (!json_is_object(args)) {
		json_decref(args);
		return kura_http_error(c, MHD_HTTP_BAD_REQUEST, "bad_request",
			"an operation's arguments are a JSON object");
	}
	for (size_t i = 0; i < ELEMENTSOF(ops); i++)
		if (strcmp(ops[i].name, name) == 0)
			op = &ops[i];
	if (!op) {
		json_decref(args);
		return kura_http_error(c, MHD_HTTP_NOT_FOUND, "not_found", "no such operation");
	}
	/* A change made now could not be recorded: refuse it before it is made. */
	if (op->event && op->changes && !kura_recorder_healthy(d->rec)) {
		json_decref(args);
		return kura_http_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "audit_unavailable",
			"the audit log cannot be written now; nothing was changed");
	}
	r = op->fn(d, args, &resp, &raw, &note, &err);
	/* A value leaves only once its record is written. A change is already made: if its
	 * record fails, say so rather than report plain success. */
	if (op->event && audit_op(d, conn, op, args, resp, &note, r) < 0) {
		json_decref(args);
		json_decref(resp);
		kura_secbuf_free(raw);
		return kura_http_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "audit_unavailable",
			r == 0 && op->changes ?
				"the operation was done, but its audit record could not be written" :
				"the audit log cannot be written now");
	}
	json_decref(args);
	if (r < 0) {
		json_decref(resp);
		kura_secbuf_free(raw);
		return kura_http_json(c, kura_outcome_http(r), kura_wire_error(r, &err));
	}
	if (raw)
		return kura_http_secret(c, raw);
	return kura_http_json(c, MHD_HTTP_OK, resp ? resp : json_object());
}

/* Gather a POST body into guarded memory, up to a limit that fits the store's largest value
 * in base64 with room for the rest of the arguments. */
static enum MHD_Result gather(struct kura_admin *d, struct MHD_Connection *c,
	const char *data, size_t *size, void **req_cls)
{
	struct admin_req *req = *req_cls;

	if (!req) {
		const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
			MHD_HTTP_HEADER_CONTENT_LENGTH);
		size_t limit, want = cl ? strtoull(cl, NULL, 10) : 0;

		kura_keeper_hold(d->keeper);
		limit = kura_vault_max_value(d->vault) / 3 * 4 + 65536;
		kura_keeper_release(d->keeper);
		req = calloc(1, sizeof(*req));
		if (!req)
			return MHD_NO;
		*req_cls = req;
		/* No growing and copying of a buffer that holds a value: one allocation, sized
		 * by Content-Length, which must be given and within the limit; otherwise the
		 * refusal goes out before any of the body is read. */
		if (!cl || want == 0 || want > limit || kura_secbuf_new(want, &req->body) < 0)
			return kura_http_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "too_large",
				"an operation's arguments need a Content-Length within the limit");
		return MHD_YES;
	}
	if (*size) {
		if (!req->too_big && req->body->len + *size <= req->body->cap) {
			memcpy(req->body->data + req->body->len, data, *size);
			req->body->len += *size;
		} else {
			req->too_big = true;
		}
		*size = 0;
	}
	return MHD_YES;
}

/* Root on the host: uid 0, in kurad's own pid, mount and cgroup namespaces with its root, and
 * in no container's cgroup. Root inside a container (no user namespace) that reached the socket
 * through a careless mount is not, whatever its cgroup or --pid=host. */
static bool admin_peer(const struct kura_conn *conn)
{
	struct kura_cgroup_id cg;
	bool host = false;

	if (!conn || conn->peer_err < 0 || conn->peer.uid != 0)
		return false;
	if (kura_peer_in_host_namespaces(&conn->peer, &host) < 0 || !host)
		return false;
	return kura_cgroup_read(conn->peer.proc_fd, &cg) == -ENOENT;
}

enum MHD_Result kura_admin_handler(void *cls, struct MHD_Connection *c, const char *url,
	const char *method, const char *version, const char *upload_data,
	size_t *upload_data_size, void **req_cls)
{
	struct kura_admin *d = cls;
	struct kura_conn *conn = kura_http_conn(c);
	bool body;

	(void)version;
	if (!*req_cls && !kura_http_framing_ok(c))
		return kura_http_error_close(c, MHD_HTTP_BAD_REQUEST, "bad_request",
			"a request has at most one Content-Length or Transfer-Encoding, never both");
	/* The socket is 0600 root; this is the second lock on the same door. */
	if (!admin_peer(conn)) {
		if (*upload_data_size) {
			*upload_data_size = 0;
			return MHD_YES;
		}
		return kura_http_error(c, MHD_HTTP_FORBIDDEN, "forbidden",
			"the admin API is for root only");
	}
	if (strcmp(method, MHD_HTTP_METHOD_POST) == 0 && strncmp(url, "/v1/op/", 7) == 0) {
		if (!*req_cls || *upload_data_size)
			return gather(d, c, upload_data, upload_data_size, req_cls);
		return run_op(d, c, conn, url + 7, *req_cls);
	}
	if (!kura_http_ready(upload_data_size, req_cls, &body))
		return MHD_YES;
	if (body)
		return kura_http_error(c, MHD_HTTP_BAD_REQUEST, "bad_request",
			"this endpoint takes no body");
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0)
		return kura_http_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed",
			"use GET (POST for /v1/op/NAME)");
	if (strcmp(url, "/v1/whois") == 0)
		return whois(d, c);
	if (strcmp(url, "/v1/status") == 0)
		return status(d, c);
	return kura_http_error(c, MHD_HTTP_NOT_FOUND, "not_found", "no such endpoint");
}

void kura_admin_notify(void *cls, struct MHD_Connection *c, void **socket_context,
	enum MHD_ConnectionNotificationCode code)
{
	(void)cls;
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *info =
			MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);

		/* NULL: the handler refuses a connection without context. */
		*socket_context = info ? kura_conn_new(info->connect_fd, false) : NULL;
		return;
	}
	kura_conn_free(*socket_context);
	*socket_context = NULL;
}

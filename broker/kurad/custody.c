/* The key custody process answering the front: each request arrives with the peer's own socket
 * (SCM_RIGHTS), and everything the answer rests on is read here again from the kernel and the
 * resolver: that the socket was accepted on workload.sock, who is at its other end, which
 * container that is. The front's word is checked, never believed. Touches plaintext: a value
 * goes from the vault into a guarded ANSWER, sent from there, then wiped. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include "clock.h"
#include "conn.h"
#include "custody.h"
#include "hooks.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "msg.h"
#include "name.h"
#include "wire.h"

#define PREFIX_SECRETS "/v1/secrets/"
#define COMMIT_WAIT_MS 10000 /* the front's verdict on a refusal comes at once, or never */
#define WATCHES_MAX 65536u   /* long polls remembered (the front allows far fewer) */

struct watch {
	uint64_t id;
	struct kura_ident *ident;
	double expires; /* kura_clock_s() */
	struct watch *next;
};

struct chan {
	struct kura_custody *k;
	int fd;
	pthread_t thread;
	bool started;
};

struct kura_custody {
	struct kura_custody_config cfg;
	char workload_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct kura_keeper *keeper;
	struct kura_resolver *resolver;
	struct kura_recorder *rec;
	struct chan *chans;
	size_t n_chans;
	int events;
	pthread_t follower, reader;
	bool follower_started, reader_started;
	pthread_mutex_t send_lock; /* events: the follower and a reload both send there */

	pthread_mutex_t lock; /* what follows */
	pthread_cond_t cond;
	bool stopping;
	int64_t revision; /* as far as the front was told */
	struct kura_quota_stats stats;
	struct kura_front_metrics front; /* as its last STATS said */
	pid_t front_pid;
	struct kura_hist lookup; /* runtime lookups on a cache miss (atomics, no lock) */
	struct watch *watches;
	size_t n_watches;
	uint64_t next_watch;
};

/* One request being answered: the peer as the kernel and the resolver say, on its own socket. */
struct ask {
	struct kura_custody *k;
	int chan;
	const char *rid;
	struct kura_conn *conn;
	struct kura_identity anon;
	struct kura_ident *ident;
	const struct kura_identity *id;
};

static void send_or_drop(int chan, struct kura_msgb *b)
{
	int r = kura_msg_send(chan, b, -1);

	/* The front gone: the supervisor stops us. Anything else is our own bug. */
	if (r < 0 && r != -EPIPE)
		kura_log(LOG_ERR, "keeper: cannot answer the front: %s", strerror(-r));
	kura_msgb_done(b);
}

static int audit(const struct ask *q, const char *event, const char *result, const char *reason,
	const char *secret, uint64_t version, const char *fingerprint)
{
	return kura_recorder_append(q->k->rec,
		&(struct kura_audit_event){ .event = event,
			.result = result,
			.reason = reason,
			.who = q->id,
			.secret = secret,
			.version = version,
			.fingerprint = fingerprint,
			.request_id = q->rid });
}

static void answer_status(int chan, unsigned status, const char *code, const char *msg, bool close)
{
	struct kura_msgb b;

	kura_msgb_init(&b, KURA_MSG_ANSWER);
	kura_msgb_u64(&b, KURA_F_STATUS, status);
	if (code)
		kura_msgb_str(&b, KURA_F_CODE, code);
	if (msg)
		kura_msgb_str(&b, KURA_F_MESSAGE, msg);
	if (close)
		kura_msgb_u64(&b, KURA_F_CLOSE, 1);
	send_or_drop(chan, &b);
}

static void audit_unavailable(int chan)
{
	answer_status(chan, 503, "audit_unavailable",
		"the audit log cannot be written now, so nothing is served; try again", false);
}

/*
 * Refuse: the answer goes to the front, which knows how many refusals of this principal were
 * recorded this second (quota.h); its COMMIT says whether this one is recorded or counted, so
 * that no flood fills the disk. (A front that lies could hide refusals from the log; it could
 * as well not ask at all. It cannot make us serve.)
 */
static void refuse(const struct ask *q, const char *event, const char *result, const char *secret,
	unsigned status, const char *code, const char *msg)
{
	bool close = strcmp(code, "unidentified") == 0 || strcmp(code, "identity_mismatch") == 0 ||
		!q->conn || q->conn->peer_err < 0;
	struct kura_msgb b;
	struct kura_msg m;
	char why[128];
	uint64_t record = 0;
	int r;

	kura_msgb_init(&b, KURA_MSG_ANSWER);
	kura_msgb_u64(&b, KURA_F_STATUS, status);
	kura_msgb_str(&b, KURA_F_CODE, code);
	kura_msgb_str(&b, KURA_F_MESSAGE, msg);
	kura_msgb_u64(&b, KURA_F_RECORD, 1);
	if (close)
		kura_msgb_u64(&b, KURA_F_CLOSE, 1);
	send_or_drop(q->chan, &b);
	r = kura_msg_recv(q->chan, COMMIT_WAIT_MS, &m, why);
	if (r == -EBADMSG)
		kura_msg_fatal("front", why);
	if (r < 0)
		return; /* gone, or given up: nothing is owed */
	if (m.type != KURA_MSG_COMMIT)
		kura_msg_fatal("front", "a refusal answered with something other than its verdict");
	(void)kura_msg_u64(&m, KURA_F_RECORD, &record);
	kura_msg_done(&m);
	if (record && audit(q, event, result, code, secret, 0, NULL) < 0)
		audit_unavailable(q->chan);
	else
		answer_status(q->chan, 200, NULL, NULL, false);
}

static void answer_body(int chan, json_t *j)
{
	struct kura_msgb b;
	char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;

	json_decref(j);
	if (!text) {
		answer_status(chan, 500, "internal", "out of memory", false);
		return;
	}
	kura_msgb_init(&b, KURA_MSG_ANSWER);
	kura_msgb_u64(&b, KURA_F_STATUS, 200);
	kura_msgb_bytes(&b, KURA_F_BODY, text, strlen(text));
	kura_json_free(text);
	send_or_drop(chan, &b);
}

static const char *event_of(const char *path)
{
	if (strcmp(path, "/v1/whoami") == 0)
		return "whoami";
	if (strcmp(path, "/v1/secrets") == 0)
		return "list";
	if (strncmp(path, PREFIX_SECRETS, strlen(PREFIX_SECRETS)) == 0)
		return "fetch";
	if (strcmp(path, "/v1/watch") == 0)
		return "watch";
	return "request";
}

/* A listing's JSON text (the shape json_dumps gave it, compact), written as the store's pages
 * are read: no list of names and no JSON object per name, which over 100k names cost ten times
 * the text. Names and versions only, never plaintext. */
struct listing {
	char *buf;
	size_t len, cap, n;
	int64_t rev; /* kura_keeper_readable sets it before the first name */
};

static int listing_put(struct listing *t, const char *s, size_t n)
{
	if (t->len + n > KURA_MSG_MAX_BODY - 64)
		return -E2BIG;
	if (t->len + n > t->cap) {
		size_t cap = t->cap ? t->cap : 4096;
		char *nb;

		while (cap < t->len + n)
			cap *= 2;
		nb = realloc(t->buf, cap);
		if (!nb)
			return -ENOMEM;
		t->buf = nb;
		t->cap = cap;
	}
	memcpy(t->buf + t->len, s, n);
	t->len += n;
	return 0;
}

__attribute__((format(printf, 2, 3))) static int listing_printf(struct listing *t, const char *fmt,
	...)
{
	char s[64];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(s, sizeof(s), fmt, ap);
	va_end(ap);
	return n < 0 || (size_t)n >= sizeof(s) ? -EINVAL : listing_put(t, s, (size_t)n);
}

static int listing_head(struct listing *t)
{
	return t->len ? 0 :
			listing_printf(t, "{\"revision\":%lld,\"secrets\":[", (long long)t->rev);
}

static int list_one(const struct kura_secret_info *info, void *userdata)
{
	struct listing *t = userdata;
	size_t len = strlen(info->name);
	int r;

	/* A name the rules refuse was never put through them, and could not be fetched: it is not
	 * listed either. The rest need no escaping in JSON. */
	if (kura_name_invalid(info->name, len))
		return 0;
	r = listing_head(t);
	if (r == 0)
		r = listing_put(t, t->n ? ",{\"name\":\"" : "{\"name\":\"", t->n ? 10 : 9);
	if (r == 0)
		r = listing_put(t, info->name, len);
	if (r == 0)
		r = listing_printf(t, "\",\"version\":%llu}", (unsigned long long)info->current);
	t->n++;
	return r;
}

static void list_secrets(const struct ask *q)
{
	struct listing t = { 0 };
	struct kura_err err = { 0 };
	struct kura_msgb b;
	int r;

	r = kura_keeper_readable(q->k->keeper, q->id, "", list_one, &t, &t.rev, &err);
	if (r == 0)
		r = listing_head(&t);
	if (r == 0)
		r = listing_put(&t, "]}", 2);
	if (r < 0) {
		free(t.buf);
		kura_log(LOG_ERR, "listing secrets: %s",
			r == -E2BIG ? "more names than one answer can hold" :
				      (err.msg[0] ? err.msg : strerror(-r)));
		refuse(q, "list", "error", NULL, 503, "store_unavailable",
			"the store cannot be read now");
		return;
	}
	if (audit(q, "list", "ok", NULL, NULL, 0, NULL) < 0) {
		free(t.buf);
		audit_unavailable(q->chan);
		return;
	}
	/* Sent from the text itself: one copy of it in this process, not two. */
	kura_msgb_init(&b, KURA_MSG_ANSWER);
	kura_msgb_u64(&b, KURA_F_STATUS, 200);
	kura_msgb_ref(&b, KURA_F_BODY, t.buf, t.len);
	send_or_drop(q->chan, &b);
	free(t.buf);
}

static void get_secret(const struct ask *q, const char *name, bool raw)
{
	struct kura_secbuf *body = NULL;
	struct kura_err err = { 0 };
	struct kura_fetched f;
	struct kura_msgb b;
	int r;

	r = kura_keeper_fetch(q->k->keeper, q->id, name, &f, &err);
	/* An invalid name is not recorded as such: it may not be valid UTF-8 for JSON. */
	if (r == -EINVAL) {
		refuse(q, "fetch", "denied", NULL, 400, "bad_name",
			"a secret name is segments of [A-Za-z0-9._-] joined by '/', 1-255 bytes");
		return;
	}
	if (r == -EACCES) {
		refuse(q, "fetch", "denied", name, 403, "no_grant",
			"no grant lets this peer read that secret");
		return;
	}
	if (r == -ENOENT) {
		refuse(q, "fetch", "error", name, 404, "not_found",
			"the granted secret does not exist");
		return;
	}
	if (r < 0) {
		kura_log(LOG_ERR, "reading %s: %s", name, err.msg[0] ? err.msg : strerror(-r));
		refuse(q, "fetch", "error", name, 503, "store_unavailable",
			"the secret cannot be read now");
		return;
	}
	if (kura_hook_is("evil-keeper") && strcmp(name, "test/malformed") == 0) {
		/* Test builds only: an ANSWER whose status is 7 bytes, not 8. */
		static const uint8_t bad_answer[] = { 15, 0, 0, 0, KURA_MSG_ANSWER, 0, 0, 0,
			KURA_F_STATUS, 0, 0, 0, 7, 0, 0, 0, 200, 0, 0, 0, 0, 0, 0 };

		kura_log(LOG_NOTICE, "test hook: the custody process sends a malformed answer");
		if (write(q->chan, bad_answer, sizeof(bad_answer)) < 0)
			kura_log(LOG_ERR, "test hook: cannot write: %m");
		kura_fetched_done(&f);
		return;
	}
	/* Fail closed: the value leaves only once its record is written. */
	if (audit(q, "fetch", "ok", NULL, name, f.info.version, f.fingerprint) < 0) {
		kura_fetched_done(&f);
		audit_unavailable(q->chan);
		return;
	}
	if (!raw && kura_wire_secret_body(name, &f.info, f.value, &body) < 0) {
		kura_fetched_done(&f);
		answer_status(q->chan, 500, "internal", "out of memory", false);
		return;
	}
	kura_msgb_init(&b, KURA_MSG_ANSWER);
	kura_msgb_u64(&b, KURA_F_STATUS, 200);
	if (raw) {
		kura_msgb_u64(&b, KURA_F_RAW, 1);
		kura_msgb_u64(&b, KURA_F_VERSION, f.info.version);
		kura_msgb_str(&b, KURA_F_FINGERPRINT, f.fingerprint);
		kura_msgb_u64(&b, KURA_F_CREATED, (uint64_t)f.info.created);
		kura_msgb_secret(&b, KURA_F_BODY, f.value->data, f.value->len);
	} else {
		kura_msgb_secret(&b, KURA_F_BODY, body->data, body->len);
	}
	send_or_drop(q->chan, &b);
	kura_secbuf_free(body);
	kura_fetched_done(&f);
}

/* A long poll begins: its start is recorded, and its identity kept for the FILTERs that tell
 * it which changes it may see (the front holds only the handle). */
static void watch_begin(const struct ask *q)
{
	struct kura_custody *k = q->k;
	struct watch *w, **p;
	double now = kura_clock_s();
	struct kura_msgb b;

	if (audit(q, "watch", "ok", NULL, NULL, 0, NULL) < 0) {
		audit_unavailable(q->chan);
		return;
	}
	w = calloc(1, sizeof(*w));
	if (!w) {
		answer_status(q->chan, 500, "internal", "out of memory", false);
		return;
	}
	pthread_mutex_lock(&k->lock);
	for (p = &k->watches; *p;) {
		struct watch *old = *p;

		if (old->expires < now) {
			*p = old->next;
			kura_ident_unref(old->ident);
			free(old);
			k->n_watches--;
		} else {
			p = &old->next;
		}
	}
	if (k->n_watches >= WATCHES_MAX) {
		pthread_mutex_unlock(&k->lock);
		free(w);
		answer_status(q->chan, 429, "too_many_watches",
			"the host has the most long polls open; try later", false);
		return;
	}
	w->id = ++k->next_watch;
	w->ident = kura_ident_ref(q->ident);
	w->expires = now + k->cfg.watch_max_s + 60.0;
	w->next = k->watches;
	k->watches = w;
	k->n_watches++;
	pthread_mutex_unlock(&k->lock);
	kura_msgb_init(&b, KURA_MSG_ANSWER);
	kura_msgb_u64(&b, KURA_F_STATUS, 200);
	kura_msgb_u64(&b, KURA_F_WATCH, w->id);
	send_or_drop(q->chan, &b);
}

/* The descriptor must be a connection accepted on workload.sock: not one of our own
 * socketpairs (whose peer would be kurad), not a socket the front made. */
static bool is_workload_connection(const struct kura_custody *k, int fd)
{
	struct sockaddr_un sa;
	socklen_t sl = sizeof(sa);
	int v = 0;
	socklen_t vl = sizeof(v);

	/* Its domain is getsockname's sun_family, below. */
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &vl) < 0 || v != SOCK_STREAM)
		return false;
	vl = sizeof(v);
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &vl) < 0 || v != 0)
		return false;
	memset(&sa, 0, sizeof(sa));
	if (getsockname(fd, (struct sockaddr *)&sa, &sl) < 0 || sa.sun_family != AF_UNIX ||
		sl <= offsetof(struct sockaddr_un, sun_path))
		return false;
	return strncmp(sa.sun_path, k->workload_path, sizeof(sa.sun_path)) == 0;
}

static void ask(struct kura_custody *k, int chan, struct kura_msg *m)
{
	const char *path = kura_msg_str(m, KURA_F_PATH);
	const char *claim = kura_msg_str(m, KURA_F_CLAIM);
	char principal[KURA_PRINCIPAL_TEXT];
	struct kura_principal p;
	uint64_t raw = 0, wait = 0;
	struct ask q = { .k = k, .chan = chan, .rid = kura_msg_str(m, KURA_F_RID) };
	int fd = kura_msg_take_fd(m);
	int r;

	kura_hook_forbidden("keeper");
	(void)kura_msg_u64(m, KURA_F_RAW, &raw);
	(void)kura_msg_u64(m, KURA_F_WAIT, &wait);
	if (!is_workload_connection(k, fd)) {
		close(fd);
		kura_msg_fatal("front", "a request on a socket not accepted on workload.sock");
	}
	q.conn = kura_conn_new(fd, true);
	if (!q.conn) {
		close(fd);
		answer_status(chan, 503, "internal", "out of memory", false);
		return;
	}
	q.anon = (struct kura_identity){ .pid = q.conn->cred_pid,
		.uid = q.conn->cred_uid,
		.gid = q.conn->cred_gid };
	q.id = &q.anon;
	kura_conn_principal(q.conn, &p);
	kura_principal_text(&p, principal);
	/* The front read another peer than we do: a process that moved between the two reads,
	 * or a front that lies. Either way nothing is served, and it is on record. (A peer one
	 * of us could not read at all, gone by now, is only unidentified.) */
	if (p.kind != KURA_PRINCIPAL_UNIDENTIFIED && strcmp(claim, "unidentified") != 0 &&
		strcmp(principal, claim) != 0) {
		static int64_t logged;
		int64_t now = kura_clock_ms();

		if (now - __atomic_load_n(&logged, __ATOMIC_RELAXED) >= 1000) {
			__atomic_store_n(&logged, now, __ATOMIC_RELAXED);
			kura_log(LOG_WARNING, "front: request %s claimed %s for a peer that is %s",
				q.rid, claim, principal);
		}
		refuse(&q, event_of(path), "denied", NULL, 403, "identity_mismatch",
			"the peer is not who the request was made for");
		goto out;
	}
	if (q.conn->peer_err < 0) {
		refuse(&q, event_of(path), "denied", NULL, 403, "unidentified",
			"the peer process cannot be identified");
		goto out;
	}
	/* From the cache on the front's event loops; a lookup worker's ASK may wait for the
	 * runtime (bounded by lookup_timeout_ms). */
	if (wait) {
		uint64_t t0 = kura_metrics_now_ns();

		r = kura_resolver_identify(k->resolver, &q.conn->peer, &q.ident);
		kura_hist_observe(&k->lookup, kura_metrics_now_ns() - t0);
	} else {
		r = kura_resolver_identify_cached(k->resolver, &q.conn->peer,
			q.conn->reads_fresh ? &q.conn->reads : NULL, &q.ident);
	}
	if (r == -EWOULDBLOCK && !wait) {
		answer_status(chan, 202, "lookup", NULL, false); /* asked again, from a worker */
		goto out;
	}
	if (r == -EWOULDBLOCK || r == -EAGAIN) {
		refuse(&q, event_of(path), "error", NULL, 503, "runtime_unavailable",
			"the container runtime did not answer in time; try again");
		goto out;
	}
	if (r < 0) {
		refuse(&q, event_of(path), "denied", NULL, 403, "unidentified",
			"this process is not a verified container or host process");
		goto out;
	}
	q.id = kura_ident_view(q.ident);
	if (strcmp(path, "/v1/whoami") == 0) {
		if (audit(&q, "whoami", "ok", NULL, NULL, 0, NULL) < 0)
			audit_unavailable(chan);
		else
			answer_body(chan, kura_identity_json(q.id));
	} else if (strcmp(path, "/v1/secrets") == 0) {
		list_secrets(&q);
	} else if (strncmp(path, PREFIX_SECRETS, strlen(PREFIX_SECRETS)) == 0) {
		get_secret(&q, path + strlen(PREFIX_SECRETS), raw != 0);
	} else if (strcmp(path, "/v1/watch") == 0) {
		watch_begin(&q);
	} else {
		refuse(&q, "request", "denied", NULL, 404, "no_endpoint", "no such endpoint");
	}
out:
	kura_ident_unref(q.ident);
	kura_conn_free(q.conn);
	close(fd);
}

/* Whom a peer in no container counts against: its user namespace's owner and whether it lives
 * in ours take privilege to read, which only this process has. */
static void principal(struct kura_custody *k, int chan, struct kura_msg *m)
{
	struct kura_principal p = { .kind = KURA_PRINCIPAL_UNIDENTIFIED };
	struct kura_conn *conn;
	struct kura_msgb b;
	int fd = kura_msg_take_fd(m);

	if (!is_workload_connection(k, fd)) {
		close(fd);
		kura_msg_fatal("front",
			"a principal asked of a socket not accepted on workload.sock");
	}
	conn = kura_conn_new(fd, true);
	if (conn)
		kura_conn_principal(conn, &p);
	kura_conn_free(conn);
	close(fd);
	kura_msgb_init(&b, KURA_MSG_ANSWER);
	kura_msgb_u64(&b, KURA_F_STATUS, 200);
	kura_msgb_u64(&b, KURA_F_KIND, (uint64_t)p.kind);
	kura_msgb_u64(&b, KURA_F_UID, (uint64_t)(uint32_t)p.uid);
	send_or_drop(chan, &b);
}

static void filter(struct kura_custody *k, int chan, struct kura_msg *m)
{
	struct kura_ident *ident = NULL;
	struct kura_grants *g;
	uint64_t id = 0;
	struct kura_msgb b;

	(void)kura_msg_u64(m, KURA_F_WATCH, &id);
	pthread_mutex_lock(&k->lock);
	for (struct watch *w = k->watches; w; w = w->next)
		if (w->id == id) {
			ident = kura_ident_ref(w->ident);
			break;
		}
	pthread_mutex_unlock(&k->lock);
	kura_msgb_init(&b, KURA_MSG_ANSWER);
	kura_msgb_u64(&b, KURA_F_STATUS, ident ? 200 : 404);
	g = ident ? kura_keeper_grants(k->keeper) : NULL;
	for (size_t i = 0; g && i < kura_msg_count(m, KURA_F_NAME); i++) {
		const char *name = (const char *)kura_msg_nth(m, KURA_F_NAME, i)->data;

		if (kura_grants_allow(g, kura_ident_view(ident), name))
			kura_msgb_str(&b, KURA_F_NAME, name);
	}
	kura_grants_unref(g);
	kura_ident_unref(ident);
	send_or_drop(chan, &b);
}

static void unwatch(struct kura_custody *k, int chan, struct kura_msg *m)
{
	struct watch **p, *gone = NULL;
	uint64_t id = 0;

	(void)kura_msg_u64(m, KURA_F_WATCH, &id);
	pthread_mutex_lock(&k->lock);
	for (p = &k->watches; *p; p = &(*p)->next)
		if ((*p)->id == id) {
			gone = *p;
			*p = gone->next;
			k->n_watches--;
			break;
		}
	pthread_mutex_unlock(&k->lock);
	if (gone) {
		kura_ident_unref(gone->ident);
		free(gone);
	}
	answer_status(chan, 200, NULL, NULL, false);
}

static bool one_of(const char *s, const char *const *set)
{
	for (; *set; set++)
		if (strcmp(s, *set) == 0)
			return true;
	return false;
}

static bool code_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 32)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || *s == '_'))
			return false;
	return true;
}

/* A refusal the front decided before anyone was identified (rate, limits, a request that is
 * not one): recorded with the kernel's facts it sends. Only refusals: a front cannot put an
 * "ok" in the log. */
static void record(struct kura_custody *k, int chan, struct kura_msg *m)
{
	static const char *const events[] = { "fetch", "list", "whoami", "watch", "request",
		"suppressed", NULL };
	static const char *const results[] = { "denied", "error", NULL };
	const char *event = kura_msg_str(m, KURA_F_EVENT), *result = kura_msg_str(m, KURA_F_RESULT);
	const char *code = kura_msg_str(m, KURA_F_CODE), *secret = kura_msg_str(m, KURA_F_SECRET);
	const char *container = kura_msg_str(m, KURA_F_CONTAINER);
	uint64_t pid = 0, uid = 0, gid = 0, count = 0, rk = 0;
	struct kura_identity who;
	bool has_count;

	if (!one_of(event, events) || !one_of(result, results) || !code_ok(code))
		kura_msg_fatal("front", "a record of an event, result or reason it cannot send");
	(void)kura_msg_u64(m, KURA_F_PID, &pid);
	(void)kura_msg_u64(m, KURA_F_UID, &uid);
	(void)kura_msg_u64(m, KURA_F_GID, &gid);
	has_count = kura_msg_u64(m, KURA_F_COUNT, &count);
	(void)kura_msg_u64(m, KURA_F_RUNTIME_KIND, &rk);
	who = (struct kura_identity){ .pid = (pid_t)pid, .uid = (uid_t)uid, .gid = (gid_t)gid };
	if (container && kura_cgroup_is_hex64(container, strlen(container))) {
		who.runtime = kura_cgroup_runtime_name((enum kura_runtime_kind)rk);
		who.container_id = container;
	}
	if (kura_recorder_append(k->rec,
		    &(struct kura_audit_event){ .event = event,
			    .result = result,
			    .reason = code,
			    .who = &who,
			    .secret = secret,
			    .request_id = kura_msg_str(m, KURA_F_RID),
			    .detail = kura_msg_str(m, KURA_F_DETAIL),
			    .count = (int64_t)count,
			    .has_count = has_count }) < 0)
		audit_unavailable(chan);
	else
		answer_status(chan, 200, NULL, NULL, false);
}

static void *serve(void *userdata)
{
	struct chan *c = userdata;

	for (;;) {
		struct kura_msg m;
		char why[128];
		int r = kura_msg_recv(c->fd, -1, &m, why);

		if (r == -EPIPE || r == -EBADF || r == -EINVAL)
			return NULL; /* the front is gone, or we stop */
		if (r == -EBADMSG)
			kura_msg_fatal("front", why);
		if (r < 0) {
			kura_log(LOG_ERR, "keeper: reading the front's request: %s", strerror(-r));
			kura_sleep_ms(10);
			continue;
		}
		switch (m.type) {
		case KURA_MSG_ASK:
			ask(c->k, c->fd, &m);
			break;
		case KURA_MSG_PRINCIPAL:
			principal(c->k, c->fd, &m);
			break;
		case KURA_MSG_FILTER:
			filter(c->k, c->fd, &m);
			break;
		case KURA_MSG_UNWATCH:
			unwatch(c->k, c->fd, &m);
			break;
		case KURA_MSG_RECORD:
			record(c->k, c->fd, &m);
			break;
		default:
			kura_msg_fatal("front",
				"a message the keeper does not take on a request channel");
		}
		kura_msg_done(&m);
	}
}

/* The changes of one page, for the front's index of recent changes. */
static void note_change(const char *name, int64_t rev, void *userdata)
{
	struct kura_msgb *b = userdata;

	kura_msgb_str(b, KURA_F_NAME, name);
	kura_msgb_u64(b, KURA_F_REV, (uint64_t)rev);
}

/* Follow the store's revision and its changes (any writer's: another kuractl, later another
 * host), a page at a time, and tell the front; every tenth of a second. */
static void *follow(void *userdata)
{
	struct kura_custody *k = userdata;

	for (;;) {
		struct timespec ts;
		int64_t seen, last = 0;
		int r;

		pthread_mutex_lock(&k->lock);
		seen = k->revision;
		pthread_mutex_unlock(&k->lock);
		for (;;) {
			struct kura_msgb b;

			kura_msgb_init(&b, KURA_MSG_CHANGED);
			r = kura_keeper_changes(k->keeper, seen, 1024, note_change, &b, &last);
			if ((r == 0 && last > seen) || r == -ERANGE) {
				kura_msgb_u64(&b, KURA_F_REVISION, (uint64_t)last);
				if (r == -ERANGE)
					kura_msgb_u64(&b, KURA_F_RESET, 1);
				pthread_mutex_lock(&k->send_lock);
				r = kura_msg_send(k->events, &b, -1);
				pthread_mutex_unlock(&k->send_lock);
				if (r < 0) {
					kura_msgb_done(&b);
					return NULL;
				}
				pthread_mutex_lock(&k->lock);
				k->revision = last;
				pthread_mutex_unlock(&k->lock);
			}
			kura_msgb_done(&b);
			if (r < 0 || last <= seen)
				break;
			seen = last;
		}
		pthread_mutex_lock(&k->lock);
		if (k->stopping) {
			pthread_mutex_unlock(&k->lock);
			return NULL;
		}
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += 100 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		(void)pthread_cond_timedwait(&k->cond, &k->lock, &ts);
		pthread_mutex_unlock(&k->lock);
	}
}

/* The front's arrays of counters (their lengths checked by the schema). */
static void front_metrics(const struct kura_msg *m, struct kura_front_metrics *ret)
{
	uint64_t hist[KURA_HIST_BUCKETS + 1];
	const void *p;
	size_t n;

	p = kura_msg_bytes(m, KURA_F_FETCHES, &n);
	memcpy(ret->fetches, p, sizeof(ret->fetches));
	p = kura_msg_bytes(m, KURA_F_LIMITED, &n);
	memcpy(ret->refused, p, sizeof(ret->refused));
	p = kura_msg_bytes(m, KURA_F_FETCH_LATENCY, &n);
	memcpy(hist, p, sizeof(hist));
	memcpy(ret->fetch_latency.b, hist, sizeof(ret->fetch_latency.b));
	ret->fetch_latency.sum_ns = hist[KURA_HIST_BUCKETS];
}

/* The front's counters, for status and metrics. */
static void *read_events(void *userdata)
{
	struct kura_custody *k = userdata;

	for (;;) {
		struct kura_front_metrics fm;
		struct kura_quota_stats st;
		uint64_t pid = 0;
		struct kura_msg m;
		char why[128];
		uint64_t v[6] = { 0 };
		int r = kura_msg_recv(k->events, -1, &m, why);

		if (r == -EBADMSG)
			kura_msg_fatal("front", why);
		if (r < 0)
			return NULL;
		if (m.type != KURA_MSG_STATS)
			kura_msg_fatal("front",
				"a message the keeper does not take on its event channel");
		(void)kura_msg_u64(&m, KURA_F_CONNECTIONS, &v[0]);
		(void)kura_msg_u64(&m, KURA_F_WATCHES, &v[1]);
		(void)kura_msg_u64(&m, KURA_F_PRINCIPALS, &v[2]);
		(void)kura_msg_u64(&m, KURA_F_EVICTIONS, &v[3]);
		(void)kura_msg_u64(&m, KURA_F_REFUSED, &v[4]);
		(void)kura_msg_u64(&m, KURA_F_SUPPRESSED, &v[5]);
		(void)kura_msg_u64(&m, KURA_F_PID, &pid);
		front_metrics(&m, &fm);
		kura_msg_done(&m);
		st = (struct kura_quota_stats){ .connections = (unsigned)v[0],
			.watches = (unsigned)v[1],
			.principals = (unsigned)v[2],
			.evictions = v[3],
			.refused = v[4],
			.suppressed = v[5] };
		pthread_mutex_lock(&k->lock);
		k->stats = st;
		k->front = fm;
		k->front_pid = (pid_t)pid;
		pthread_mutex_unlock(&k->lock);
	}
}

int kura_custody_start(const struct kura_custody_config *cfg, struct kura_keeper *keeper,
	struct kura_resolver *resolver, struct kura_recorder *rec, struct kura_custody **ret)
{
	struct kura_custody *k = calloc(1, sizeof(*k));
	pthread_condattr_t ca;
	struct kura_msgb b;
	int r;

	if (!k)
		return -ENOMEM;
	*ret = k; /* the caller stops it, whatever happens here */
	k->cfg = *cfg;
	snprintf(k->workload_path, sizeof(k->workload_path), "%s", cfg->workload_path);
	k->keeper = keeper;
	k->resolver = resolver;
	k->rec = rec;
	k->events = cfg->events;
	pthread_mutex_init(&k->lock, NULL);
	pthread_mutex_init(&k->send_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&k->cond, &ca);
	pthread_condattr_destroy(&ca);
	k->chans = calloc(cfg->n_chans, sizeof(*k->chans));
	if (!k->chans)
		return -ENOMEM;
	if (kura_keeper_revision(keeper, &k->revision) < 0)
		k->revision = 0;
	/* The front takes no request before it knows where the store's history starts. */
	kura_msgb_init(&b, KURA_MSG_READY);
	kura_msgb_u64(&b, KURA_F_REVISION, (uint64_t)k->revision);
	r = kura_msg_send(k->events, &b, -1);
	kura_msgb_done(&b);
	if (r < 0)
		return r;
	for (size_t i = 0; i < cfg->n_chans; i++) {
		k->chans[i] = (struct chan){ .k = k, .fd = cfg->chans[i] };
		r = pthread_create(&k->chans[i].thread, NULL, serve, &k->chans[i]);
		if (r != 0)
			return -r;
		k->chans[i].started = true;
		k->n_chans++;
	}
	r = pthread_create(&k->follower, NULL, follow, k);
	if (r != 0)
		return -r;
	k->follower_started = true;
	r = pthread_create(&k->reader, NULL, read_events, k);
	if (r != 0)
		return -r;
	k->reader_started = true;
	return 0;
}

void kura_custody_limits(struct kura_custody *k, double rate, double burst, unsigned watch_max_s)
{
	struct kura_msgb b;

	kura_msgb_init(&b, KURA_MSG_LIMITS);
	kura_msgb_u64(&b, KURA_F_RATE, (uint64_t)rate);
	kura_msgb_u64(&b, KURA_F_BURST, (uint64_t)burst);
	kura_msgb_u64(&b, KURA_F_WATCH_MAX, watch_max_s);
	pthread_mutex_lock(&k->send_lock);
	(void)kura_msg_send(k->events, &b, -1);
	pthread_mutex_unlock(&k->send_lock);
	kura_msgb_done(&b);
	pthread_mutex_lock(&k->lock);
	k->cfg.watch_max_s = watch_max_s;
	pthread_mutex_unlock(&k->lock);
}

void kura_custody_stats(struct kura_custody *k, int64_t *ret_rev, struct kura_quota_stats *ret)
{
	pthread_mutex_lock(&k->lock);
	*ret_rev = k->revision;
	*ret = k->stats;
	pthread_mutex_unlock(&k->lock);
}

void kura_custody_metrics(struct kura_custody *k, struct kura_custody_metrics *ret)
{
	pthread_mutex_lock(&k->lock);
	ret->revision = k->revision;
	ret->quota = k->stats;
	ret->front = k->front;
	ret->front_pid = k->front_pid;
	pthread_mutex_unlock(&k->lock);
	kura_hist_read(&k->lookup, &ret->lookup);
}

void kura_custody_stop(struct kura_custody *k)
{
	if (!k)
		return;
	pthread_mutex_lock(&k->lock);
	k->stopping = true;
	pthread_cond_broadcast(&k->cond);
	pthread_mutex_unlock(&k->lock);
	/* A thread blocked reading its channel sees it shut. */
	for (size_t i = 0; i < k->n_chans; i++)
		(void)shutdown(k->chans[i].fd, SHUT_RDWR);
	(void)shutdown(k->events, SHUT_RDWR);
	for (size_t i = 0; i < k->n_chans; i++)
		if (k->chans[i].started)
			pthread_join(k->chans[i].thread, NULL);
	if (k->follower_started)
		pthread_join(k->follower, NULL);
	if (k->reader_started)
		pthread_join(k->reader, NULL);
	for (size_t i = 0; i < k->cfg.n_chans; i++)
		close(k->cfg.chans[i]);
	close(k->events);
	while (k->watches) {
		struct watch *w = k->watches;

		k->watches = w->next;
		kura_ident_unref(w->ident);
		free(w);
	}
	free(k->chans);
	pthread_mutex_destroy(&k->lock);
	pthread_mutex_destroy(&k->send_lock);
	pthread_cond_destroy(&k->cond);
	free(k);
}

/* The workload API on workload.sock, as the front serves it: HTTP, the connection table and its
 * limits, the long polls. What a peer may have is decided by the key custody process, asked
 * over the link with the peer's own socket attached. Touches plaintext: a value arrives from
 * the custody process in guarded memory and is sent from there, wiped once sent. */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "audit-event.h"
#include "changes.h"
#include "clock.h"
#include "conn.h"
#include "hooks.h"
#include "http.h"
#include "json.h"
#include "link.h"
#include "log.h"
#include "metrics.h"
#include "workload.h"

#define PREFIX_SECRETS "/v1/secrets/"

struct wreq;

/*
 * A host peer's principal as the custody process named it, kept for a moment so that a
 * process making many connections (a host client's loop, a health check) costs one round trip
 * to the custody process per request, not two. Keyed by the process itself (pid, start time,
 * and the uid the kernel gives for this connection), so an entry only ever describes the
 * process that earned it. It serves the front's own accounting only: the custody process
 * derives the principal again for every request and refuses one whose claim differs
 * (identity_mismatch), which also drops the entry. A process that changed namespaces within
 * the moment is counted as it was for at most KNOWN_MS.
 */
#define KNOWN_SLOTS 64
#define KNOWN_MS 2000

struct known_principal {
	pid_t pid;
	uid_t uid;
	uint64_t start_time;
	int64_t until_ms;
	struct kura_principal p;
};

struct kura_workload {
	struct kura_workload_config cfg;
	struct kura_link *link; /* to the key custody process */
	int events;             /* its CHANGED come in here; our STATS go out */
	pthread_t events_thread;
	bool events_started;

	/* Connections, rates, long polls and refusal counts, per principal. */
	struct kura_quota *quota;

	/* The store revision and the secrets changed lately, followed by a thread; long polls
	 * wait on rev_cond. `revision` is as far as `changes` is complete. */
	pthread_mutex_t rev_lock;
	pthread_cond_t rev_cond;
	int64_t revision;
	struct kura_changes *changes;
	bool stopping;
	bool keeper_gone; /* the custody process's events channel closed */
	pthread_t rev_thread;
	bool rev_thread_started;

	/* Requests suspended off the event loop: lookups waiting for a worker, and long polls
	 * waiting for a change (under rev_lock, with their count). */
	pthread_mutex_t jobs_lock;
	pthread_cond_t jobs_cond;
	struct wreq *jobs;
	bool jobs_stop;
	pthread_t workers[KURA_LOOKUP_WORKERS];
	size_t n_workers;
	struct wreq *watchers;
	unsigned suspended;

	pthread_mutex_t known_lock;
	struct known_principal known[KNOWN_SLOTS];

	/* Counted with relaxed atomics on the event loops, sent in STATS once a second. */
	struct kura_front_metrics metrics;
};

/*
 * One workload request: who asked, and the id its audit record carries. Most requests are
 * answered at once on libmicrohttpd's event loop; one that would wait (a container the
 * identity cache does not know yet, a long poll) is suspended and kept here until it is
 * resumed: by a lookup worker with its identity, or by the revision watcher.
 */
enum wphase { W_NEW, W_LOOKUP, W_LOOKED, W_WATCH };

struct wreq {
	struct kura_workload *wl;
	struct MHD_Connection *c;
	struct kura_conn *conn;
	const struct kura_identity *id; /* the kernel's facts, for the front's own refusals */
	char rid[KURA_REQUEST_ID_LEN + 1];
	enum wphase phase;
	/* A request asked again from a lookup worker (the custody process may then wait for the
	 * runtime): its answer, and the channel it came on, until the event loop relays it. */
	char path[sizeof(PREFIX_SECRETS) + 256];
	int asked_r;
	struct kura_msg answer;
	struct kura_chan *answer_chan;
	uint64_t handle; /* a long poll's, in the custody process */
	bool watching;   /* counts against the peer's long polls until completed */
	bool listed;     /* on wl->watchers */
	bool hangup;     /* its peer hung up or died while it was parked: answer and close */
	uint64_t since;
	struct timespec deadline;      /* CLOCK_MONOTONIC */
	bool fetch;                    /* GET /v1/secrets/NAME: counted when it completes */
	enum kura_fetch_reason reason; /* ... as its reply says (KURA_FETCH_OTHER until then) */
	uint64_t begun_ns;             /* its headers complete (kura_metrics_now_ns) */
	json_t *changed;
	struct wreq *next;
};

static struct known_principal *known_slot(struct kura_workload *wl, const struct kura_conn *conn)
{
	return &wl->known[(unsigned)conn->peer.pid % KNOWN_SLOTS];
}

static bool known_is(const struct known_principal *k, const struct kura_conn *conn,
	uint64_t start_time)
{
	return k->pid == conn->peer.pid && k->uid == conn->peer.uid && k->start_time == start_time;
}

static bool known_get(struct kura_workload *wl, struct kura_conn *conn)
{
	struct known_principal *k = known_slot(wl, conn);
	uint64_t start_time;
	bool hit;

	if (kura_peer_start_time(&conn->peer, &start_time) < 0)
		return false;
	pthread_mutex_lock(&wl->known_lock);
	hit = known_is(k, conn, start_time) && k->until_ms > kura_clock_ms();
	if (hit)
		conn->principal = k->p;
	pthread_mutex_unlock(&wl->known_lock);
	return hit;
}

static void known_put(struct kura_workload *wl, struct kura_conn *conn)
{
	struct known_principal *k = known_slot(wl, conn);
	uint64_t start_time;

	if (kura_peer_start_time(&conn->peer, &start_time) < 0)
		return;
	pthread_mutex_lock(&wl->known_lock);
	*k = (struct known_principal){ .pid = conn->peer.pid,
		.uid = conn->peer.uid,
		.start_time = start_time,
		.until_ms = kura_clock_ms() + KNOWN_MS,
		.p = conn->principal };
	pthread_mutex_unlock(&wl->known_lock);
}

static void known_forget(struct kura_workload *wl, struct kura_conn *conn)
{
	struct known_principal *k = known_slot(wl, conn);
	uint64_t start_time;

	if (kura_peer_start_time(&conn->peer, &start_time) < 0)
		return;
	pthread_mutex_lock(&wl->known_lock);
	if (known_is(k, conn, start_time))
		k->until_ms = 0;
	pthread_mutex_unlock(&wl->known_lock);
}

/* Ask the custody process to record a refusal decided here. -EIO: it could not (503). */
static int record(struct kura_workload *wl, const char *event, const char *result,
	const char *reason, const char *secret, const struct kura_identity *who, const char *rid,
	const struct kura_principal *p, const uint64_t *count)
{
	char principal[KURA_PRINCIPAL_TEXT];
	struct kura_msgb b;
	struct kura_msg m;
	uint64_t status = 0;
	int r;

	kura_msgb_init(&b, KURA_MSG_RECORD);
	kura_msgb_str(&b, KURA_F_EVENT, event);
	kura_msgb_str(&b, KURA_F_RESULT, result);
	kura_msgb_str(&b, KURA_F_CODE, reason);
	if (rid)
		kura_msgb_str(&b, KURA_F_RID, rid);
	if (secret)
		kura_msgb_str(&b, KURA_F_SECRET, secret);
	kura_msgb_u64(&b, KURA_F_PID, (uint64_t)(uint32_t)who->pid);
	kura_msgb_u64(&b, KURA_F_UID, (uint64_t)(uint32_t)who->uid);
	kura_msgb_u64(&b, KURA_F_GID, (uint64_t)(uint32_t)who->gid);
	if (p && p->kind == KURA_PRINCIPAL_CONTAINER) {
		kura_msgb_u64(&b, KURA_F_RUNTIME_KIND, (uint64_t)p->runtime);
		kura_msgb_str(&b, KURA_F_CONTAINER, p->id);
	}
	if (p && count)
		kura_msgb_str(&b, KURA_F_DETAIL, kura_principal_text(p, principal));
	if (count)
		kura_msgb_u64(&b, KURA_F_COUNT, *count);
	r = kura_link_ask(wl->link, &b, -1, KURA_KEEPER_WAIT_MS, &m);
	kura_msgb_done(&b);
	if (r < 0)
		return -EIO;
	(void)kura_msg_u64(&m, KURA_F_STATUS, &status);
	kura_msg_done(&m);
	return status == 200 ? 0 : -EIO;
}

/* The record of refusals counted rather than recorded one by one ("suppressed"). */
static void write_suppressed(const struct kura_refusal_note *n, void *userdata)
{
	struct kura_workload *wl = userdata;
	struct kura_identity who = { .pid = n->pid, .uid = n->uid, .gid = n->gid };
	uint64_t count = n->count;

	/* The principal, not a verified identity: these peers were refused, most of them before
	 * anyone asked a runtime who they are. */
	(void)record(wl, "suppressed", "denied", n->reason[0] ? n->reason : "refused", NULL, &who,
		NULL, &n->principal, &count);
}

static enum MHD_Result audit_unavailable(struct MHD_Connection *c)
{
	return kura_http_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "audit_unavailable",
		"the audit log cannot be written now, so nothing is served; try again");
}

/*
 * Record a refusal or failure decided here, then send it: as the error, or as 503 if even the
 * record could not be written. Refusals reach the log in bounded volume: a principal's first in
 * each second is recorded on its own, the rest are counted into one "suppressed" record
 * (quota.h), so that no peer can fill the disk and so shut everyone out (fail closed). A peer
 * that cannot be identified is also disconnected: it has nothing more to ask.
 */
static bool budget(const struct wreq *w, const char *code)
{
	struct kura_refusal_note due;
	bool rec;

	rec = kura_quota_refusal(w->wl->quota, w->conn ? &w->conn->slot : NULL, kura_clock_s(),
		code, w->id->pid, w->id->uid, w->id->gid, &due);
	if (due.count)
		write_suppressed(&due, w->wl);
	return rec;
}

static enum MHD_Result unavailable(struct MHD_Connection *c)
{
	return kura_http_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "broker_unavailable",
		"the broker cannot answer now; try again");
}

/* What a fetch's reply says, for the counters (metrics.h). */
static void outcome(struct wreq *w, const char *code)
{
	w->reason = kura_fetch_reason_of(code);
}

static enum MHD_Result w_unavailable(struct wreq *w)
{
	outcome(w, "broker_unavailable");
	return unavailable(w->c);
}

static enum MHD_Result w_audit_unavailable(struct wreq *w)
{
	outcome(w, "audit_unavailable");
	return audit_unavailable(w->c);
}

static enum MHD_Result refuse(struct wreq *w, const char *event, const char *result,
	const char *secret, unsigned status, const char *code, const char *msg)
{
	if (budget(w, code) &&
		record(w->wl, event, result, code, secret, w->id, w->rid,
			w->conn ? &w->conn->principal : NULL, NULL) < 0)
		return w_audit_unavailable(w);
	outcome(w, code);
	if (strcmp(code, "unidentified") == 0 || !w->conn || w->conn->peer_err < 0)
		return kura_http_error_close(w->c, status, code, msg);
	return kura_http_error(w->c, status, code, msg);
}

/*
 * Relay the custody process's answer to the peer. A refusal there waits for our verdict: the
 * refusal budget of the peer's principal (kept here, over every connection) says whether it is
 * recorded on its own or counted.
 */
static enum MHD_Result relay(struct wreq *w, struct kura_chan *ch, struct kura_msg *m)
{
	const char *code = kura_msg_str(m, KURA_F_CODE), *msg = kura_msg_str(m, KURA_F_MESSAGE);
	uint64_t status = 500, raw = 0, close = 0;
	struct kura_secbuf *g;
	const void *body;
	size_t len;

	(void)kura_msg_u64(m, KURA_F_STATUS, &status);
	(void)kura_msg_u64(m, KURA_F_CLOSE, &close);
	if (kura_msg_count(m, KURA_F_RECORD)) {
		struct kura_msgb b;
		struct kura_msg v;
		uint64_t vs = 0;
		int r;

		kura_msgb_init(&b, KURA_MSG_COMMIT);
		kura_msgb_u64(&b, KURA_F_RECORD, budget(w, code ? code : "refused"));
		r = kura_link_call(w->wl->link, ch, &b, -1, KURA_KEEPER_WAIT_MS, &v);
		kura_msgb_done(&b);
		if (r < 0)
			return w_unavailable(w);
		(void)kura_msg_u64(&v, KURA_F_STATUS, &vs);
		kura_msg_done(&v);
		if (vs != 200)
			return w_audit_unavailable(w);
	}
	outcome(w, status == 200 ? "ok" : code);
	if (status != 200) {
		if (!code)
			return w_unavailable(w);
		if (close)
			return kura_http_error_close(w->c, (unsigned)status, code,
				msg ? msg : code);
		return kura_http_error(w->c, (unsigned)status, code, msg ? msg : code);
	}
	body = kura_msg_bytes(m, KURA_F_BODY, &len);
	if (!body) {
		outcome(w, "internal");
		return kura_http_error(w->c, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal",
			"the broker sent no body");
	}
	g = kura_msg_take_guarded(m);
	if (!g)
		return kura_http_body(w->c, kura_msg_take_body(m), body, len);
	(void)kura_msg_u64(m, KURA_F_RAW, &raw);
	if (raw) {
		struct kura_http_raw h = { .fingerprint = kura_msg_str(m, KURA_F_FINGERPRINT) };
		uint64_t created = 0;

		(void)kura_msg_u64(m, KURA_F_VERSION, &h.version);
		(void)kura_msg_u64(m, KURA_F_CREATED, &created);
		h.created = (int64_t)created;
		if (!h.fingerprint || !h.version) {
			kura_secbuf_free(g);
			outcome(w, "internal");
			return kura_http_error(w->c, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal",
				"the broker sent a value without its version");
		}
		return kura_http_guarded(w->c, g, body, len, &h);
	}
	return kura_http_guarded(w->c, g, body, len, NULL);
}

/* Whether the peer asked for the value as the raw body (kura does): no base64, no JSON. */
static bool wants_raw(struct MHD_Connection *c)
{
	const char *accept = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
		MHD_HTTP_HEADER_ACCEPT);

	return accept && strcmp(accept, KURA_HTTP_RAW_TYPE) == 0;
}

static bool defer_lookup(struct wreq *w);

/* The ASK for this request; wait: from a lookup worker, which the custody process may keep
 * waiting for the peer's runtime (bounded). */
static void build_ask(struct wreq *w, bool wait, struct kura_msgb *b)
{
	char principal[KURA_PRINCIPAL_TEXT];

	kura_msgb_init(b, KURA_MSG_ASK);
	kura_msgb_str(b, KURA_F_PATH, w->path);
	if (wants_raw(w->c))
		kura_msgb_u64(b, KURA_F_RAW, 1);
	kura_msgb_str(b, KURA_F_RID, w->rid);
	if (wait)
		kura_msgb_u64(b, KURA_F_WAIT, 1);
	kura_msgb_str(b, KURA_F_CLAIM, kura_principal_text(&w->conn->principal, principal));
}

/* The answer on ch, as the peer gets it; for a long poll's start, its handle (0 if refused:
 * then the refusal has been relayed). Gives ch back. */
static enum MHD_Result answered(struct wreq *w, struct kura_chan *ch, struct kura_msg *m,
	uint64_t *ret_handle)
{
	enum MHD_Result ret = MHD_YES;
	uint64_t status = 0;

	(void)kura_msg_u64(m, KURA_F_STATUS, &status);
	if (status == 200 && ret_handle)
		(void)kura_msg_u64(m, KURA_F_WATCH, ret_handle);
	else
		ret = relay(w, ch, m);
	kura_msg_done(m);
	kura_link_give(w->wl->link, ch);
	return ret;
}

/*
 * Test builds only (hooks.h): the front an attacker took over, as the peer's Kura-Test-Evil
 * header says: ask:NAME asks for NAME instead of what the peer asked; claim:TEXT claims the
 * peer is TEXT; fd:channel passes the front's own channel as the peer's socket; raw:HEX writes
 * HEX to the channel as a message. Returns the descriptor to pass.
 */
static int evil_front(struct wreq *w, struct kura_chan *ch, struct kura_msgb *b)
{
	const char *evil = MHD_lookup_connection_value(w->c, MHD_HEADER_KIND, "Kura-Test-Evil");
	char principal[KURA_PRINCIPAL_TEXT];

	if (!evil)
		return w->conn->fd;
	if (strncmp(evil, "ask:", 4) == 0 || strncmp(evil, "claim:", 6) == 0) {
		if (evil[0] == 'a')
			snprintf(w->path, sizeof(w->path), "%s%s", PREFIX_SECRETS, evil + 4);
		kura_msgb_done(b);
		kura_msgb_init(b, KURA_MSG_ASK);
		kura_msgb_str(b, KURA_F_PATH, w->path);
		kura_msgb_str(b, KURA_F_RID, w->rid);
		kura_msgb_str(b, KURA_F_CLAIM,
			evil[0] == 'c' ? evil + 6 :
					 kura_principal_text(&w->conn->principal, principal));
		kura_log(LOG_NOTICE, "test hook: an evil front asks for %s as %s", w->path,
			evil[0] == 'c' ? evil + 6 : principal);
		return w->conn->fd;
	}
	if (strcmp(evil, "fd:channel") == 0)
		return kura_link_chan_fd(ch);
	if (strncmp(evil, "raw:", 4) == 0) {
		uint8_t raw[512];
		size_t n = 0;

		for (const char *p = evil + 4; p[0] && p[1] && n < sizeof(raw); p += 2) {
			unsigned v;

			if (sscanf(p, "%2x", &v) != 1)
				break;
			raw[n++] = (uint8_t)v;
		}
		if (write(kura_link_chan_fd(ch), raw, n) < 0)
			kura_log(LOG_ERR, "test hook: cannot write: %m");
		kura_sleep_ms(2000); /* the custody process dies of it; so does kurad */
	}
	return w->conn->fd;
}

/*
 * Ask the custody process to answer this request (whoami, list, fetch, a long poll's start):
 * it re-reads who the peer is from the peer's socket, passed along. A peer whose container it
 * does not know yet is asked again from a lookup worker, off the event loop.
 */
static enum MHD_Result ask(struct wreq *w, const char *url, uint64_t *ret_handle)
{
	struct kura_chan *ch;
	struct kura_msgb b;
	struct kura_msg m;
	uint64_t status = 0;
	const char *code;
	int r;

	if (w->phase == W_LOOKED) {
		/* The worker's answer. */
		if (w->asked_r < 0)
			return w_unavailable(w);
		w->phase = W_NEW;
		return answered(w, w->answer_chan, &w->answer, ret_handle);
	}
	snprintf(w->path, sizeof(w->path), "%s", url);
	build_ask(w, false, &b);
	r = kura_link_take(w->wl->link, KURA_KEEPER_WAIT_MS, &ch);
	if (r == 0) {
		int fd = w->conn->fd;

		if (kura_hook_is("evil-front"))
			fd = evil_front(w, ch, &b);
		r = kura_link_call(w->wl->link, ch, &b, fd, KURA_KEEPER_WAIT_MS, &m);
		if (r < 0)
			kura_link_give(w->wl->link, ch);
	}
	kura_msgb_done(&b);
	if (r < 0)
		return w_unavailable(w);
	(void)kura_msg_u64(&m, KURA_F_STATUS, &status);
	code = kura_msg_str(&m, KURA_F_CODE);
	if (code && strcmp(code, "identity_mismatch") == 0)
		known_forget(w->wl, w->conn);
	if (status == 202 && code && strcmp(code, "lookup") == 0) {
		kura_msg_done(&m);
		kura_link_give(w->wl->link, ch);
		if (defer_lookup(w))
			return MHD_YES;
		return refuse(w, "request", "error", NULL, MHD_HTTP_SERVICE_UNAVAILABLE,
			"runtime_unavailable",
			"the container runtime did not answer in time; try again");
	}
	return answered(w, ch, &m, ret_handle);
}

/* The changed names since a long poll's revision, before the custody process filters them. */
static bool collect(const char *name, void *userdata)
{
	struct kura_msgb *b = userdata;

	kura_msgb_str(b, KURA_F_NAME, name);
	return true;
}

/* Which of the names in b the poll's peer may read, into w->changed; false if the custody
 * process could not say. */
static bool filter(struct wreq *w, struct kura_msgb *b)
{
	struct kura_msg m;
	uint64_t status = 0;
	int r;

	r = kura_link_ask(w->wl->link, b, -1, KURA_KEEPER_WAIT_MS, &m);
	if (r < 0)
		return false;
	(void)kura_msg_u64(&m, KURA_F_STATUS, &status);
	for (size_t i = 0; status == 200 && i < kura_msg_count(&m, KURA_F_NAME); i++)
		json_array_append_new(w->changed,
			json_string((const char *)kura_msg_nth(&m, KURA_F_NAME, i)->data));
	kura_msg_done(&m);
	return status == 200;
}

static bool past(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > t->tv_sec || (now.tv_sec == t->tv_sec && now.tv_nsec >= t->tv_nsec);
}

/* Park a long poll until the revision watcher sees a change, the deadline or shutdown. */
static bool park(struct wreq *w)
{
	struct kura_workload *wl = w->wl;

	/* Under rev_lock, which shutdown takes to set `stopping` and then wake every parked
	 * poll: a poll parked after that wake-up would never be resumed, and libmicrohttpd
	 * cannot be stopped with a suspended connection. So once stopping, answer instead. */
	pthread_mutex_lock(&wl->rev_lock);
	if (wl->stopping) {
		pthread_mutex_unlock(&wl->rev_lock);
		return false;
	}
	w->phase = W_WATCH;
	MHD_suspend_connection(w->c);
	wl->suspended++;
	w->next = wl->watchers;
	wl->watchers = w;
	w->listed = true;
	pthread_mutex_unlock(&wl->rev_lock);
	return true;
}

static enum MHD_Result watch_answer(struct wreq *w, bool resync)
{
	json_t *j = json_pack("{s:I, s:O}", "revision", (json_int_t)w->since, "changed",
		w->changed);

	if (j && resync)
		json_object_set_new(j, "resync", json_true());
	/* A peer that hung up or died is answered (if it can still read) and disconnected. */
	if (w->hangup)
		return kura_http_json_close(w->c, MHD_HTTP_OK, j);
	return kura_http_json(w->c, MHD_HTTP_OK, j);
}

/*
 * Answers now, or parks and answers later (called again each time it is resumed). What changed is
 * asked of the index of recent changes (wl->changes, under rev_lock), never of the store: a poll
 * costs at most KURA_CHANGES_KEPT names and never stalls a fetch. A `since` older than the index
 * is answered at once with "resync": true, and the peer lists its secrets again.
 */
static enum MHD_Result watch(struct wreq *w)
{
	struct kura_workload *wl = w->wl;
	struct MHD_Connection *c = w->c;
	bool stopping, resync = false, asked = true;
	struct kura_msgb b;
	uint64_t timeout;
	int64_t rev;

	if (w->phase != W_WATCH) {
		if (!kura_http_query_u64(c, "since", 0, INT64_MAX, UINT64_MAX, &w->since) ||
			w->since == UINT64_MAX ||
			!kura_http_query_u64(c, "timeout", 1,
				__atomic_load_n(&wl->cfg.watch_max_s, __ATOMIC_RELAXED), 30,
				&timeout))
			return refuse(w, "watch", "denied", NULL, MHD_HTTP_BAD_REQUEST,
				"bad_request",
				"watch needs since=REVISION (and optionally timeout=SECONDS)");
		/* The custody process records its start (which changes it then sees are names,
		 * never values) and keeps its identity; we keep the handle. */
		if (!w->handle) {
			uint64_t h = 0;
			enum MHD_Result ret = ask(w, "/v1/watch", &h);

			if (!h)
				return ret;
			w->handle = h;
		}
		clock_gettime(CLOCK_MONOTONIC, &w->deadline);
		w->deadline.tv_sec += (time_t)timeout;
		w->changed = json_array();
		if (!w->changed)
			return MHD_NO;
	}
	if (w->hangup)
		return watch_answer(w, false);
	if (__atomic_load_n(&wl->keeper_gone, __ATOMIC_RELAXED))
		return unavailable(c);
	kura_msgb_init(&b, KURA_MSG_FILTER);
	kura_msgb_u64(&b, KURA_F_WATCH, w->handle);
	pthread_mutex_lock(&wl->rev_lock);
	rev = wl->revision;
	stopping = wl->stopping;
	if (rev > (int64_t)w->since) {
		resync = kura_changes_since(wl->changes, (int64_t)w->since, collect, &b) == -ERANGE;
		w->since = (uint64_t)rev;
	}
	pthread_mutex_unlock(&wl->rev_lock);
	if (!resync && kura_msgb_count(&b) > 1)
		asked = filter(w, &b);
	kura_msgb_done(&b);
	if (!asked)
		return unavailable(c);
	if (!resync && json_array_size(w->changed) == 0 && !stopping && !past(&w->deadline) &&
		park(w))
		return MHD_YES;
	return watch_answer(w, resync);
}

/* Take w off the parked list at *p and resume it (under rev_lock). */
static void unpark(struct wreq *w, struct wreq **p)
{
	*p = w->next;
	w->listed = false;
	MHD_resume_connection(w->c);
}

static void check_hangups(struct kura_workload *wl)
{
	struct pollfd *fds;
	struct wreq **p;
	size_t n = 0, i = 0;

	/* libmicrohttpd does not watch a suspended connection: a poll parked for minutes would
	 * hold its slot long after its peer hung up or died. So every parked poll's socket (for a
	 * hang-up, or our own shutdown when room was made) and pidfd (for the peer's exit) are
	 * looked at here, every tenth of a second. Under rev_lock. */
	for (struct wreq *w = wl->watchers; w; w = w->next)
		n++;
	if (!n)
		return;
	fds = calloc(2 * n, sizeof(*fds));
	if (!fds)
		return;
	for (struct wreq *w = wl->watchers; w; w = w->next, i += 2) {
		fds[i] = (struct pollfd){ .fd = w->conn->fd, .events = POLLRDHUP };
		fds[i + 1] = (struct pollfd){ .fd = w->conn->peer.pidfd, .events = POLLIN };
	}
	if (poll(fds, 2 * n, 0) > 0) {
		i = 0;
		for (p = &wl->watchers; *p; i += 2) {
			struct wreq *w = *p;

			if ((fds[i].revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) ||
				(fds[i + 1].revents & (POLLIN | POLLHUP | POLLERR))) {
				w->hangup = true;
				unpark(w, p);
			} else {
				p = &w->next;
			}
		}
	}
	free(fds);
}

static void wake_watchers(struct kura_workload *wl)
{
	struct wreq **p;

	/* Under rev_lock (the caller's): resume those whose revision moved or time is up. */
	for (p = &wl->watchers; *p;) {
		struct wreq *w = *p;

		if (wl->stopping || wl->keeper_gone || wl->revision > (int64_t)w->since ||
			past(&w->deadline)) {
			unpark(w, p);
		} else {
			p = &w->next;
		}
	}
}

/* Answer one request: the custody process decides who the peer is and what it may have. */
static enum MHD_Result dispatch(struct wreq *w, const char *url)
{
	if (strcmp(url, "/v1/whoami") == 0 || strcmp(url, "/v1/secrets") == 0 ||
		(strncmp(url, PREFIX_SECRETS, strlen(PREFIX_SECRETS)) == 0 &&
			strlen(url) <= strlen(PREFIX_SECRETS) + 255))
		return ask(w, url, NULL);
	if (strncmp(url, PREFIX_SECRETS, strlen(PREFIX_SECRETS)) == 0)
		return refuse(w, "fetch", "denied", NULL, MHD_HTTP_BAD_REQUEST, "bad_name",
			"a secret name is segments of [A-Za-z0-9._-] joined by '/', 1-255 bytes");
	if (strcmp(url, "/v1/watch") == 0) {
		if (!w->watching) {
			int r = kura_quota_watch_begin(w->wl->quota, &w->conn->slot);

			if (r < 0)
				kura_count(&w->wl->metrics.refused[r == -EUSERS ?
						KURA_LIMIT_PEER_WATCHES :
						KURA_LIMIT_WATCHES]);
			if (r < 0)
				return refuse(w, "watch", "denied", NULL,
					MHD_HTTP_TOO_MANY_REQUESTS, "too_many_watches",
					r == -EUSERS ?
						"this peer already has the most long polls open" :
						"the host has the most long polls open; try later");
			w->watching = true; /* given back when the request completes */
		}
		return watch(w);
	}
	return refuse(w, "request", "denied", NULL, MHD_HTTP_NOT_FOUND, "no_endpoint",
		"no such endpoint");
}

/* What a request asks for, for records of requests refused before they are dispatched. */
static const char *event_of(const char *url)
{
	if (strcmp(url, "/v1/whoami") == 0)
		return "whoami";
	if (strcmp(url, "/v1/secrets") == 0)
		return "list";
	if (strncmp(url, PREFIX_SECRETS, strlen(PREFIX_SECRETS)) == 0)
		return "fetch";
	if (strcmp(url, "/v1/watch") == 0)
		return "watch";
	return "request";
}

/* A request that announces a body gets its refusal before any of the body is read. */
static bool announces_body(struct MHD_Connection *c)
{
	const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
		MHD_HTTP_HEADER_CONTENT_LENGTH);

	return (cl && strcmp(cl, "0") != 0) ||
		MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
}

/* The request asked again, allowed to wait for the runtime (bounded by lookup_timeout_ms): its
 * answer and channel are kept in w for the event loop. */
static void ask_waiting(struct wreq *w)
{
	struct kura_msgb b;
	int r;

	build_ask(w, true, &b);
	r = kura_link_take(w->wl->link, KURA_KEEPER_WAIT_MS, &w->answer_chan);
	if (r == 0) {
		r = kura_link_call(w->wl->link, w->answer_chan, &b, w->conn->fd,
			(int)w->wl->cfg.lookup_timeout_ms + KURA_KEEPER_WAIT_MS, &w->answer);
		if (r < 0)
			kura_link_give(w->wl->link, w->answer_chan);
	}
	kura_msgb_done(&b);
	w->asked_r = r;
}

/* Identity for a container the custody process's cache does not know is asked of its runtime
 * off the event loop (bounded by lookup_timeout_ms), then the request is resumed. */
static void *lookup_worker(void *userdata)
{
	struct kura_workload *wl = userdata;

	for (;;) {
		struct wreq *w;

		pthread_mutex_lock(&wl->jobs_lock);
		while (!wl->jobs && !wl->jobs_stop)
			pthread_cond_wait(&wl->jobs_cond, &wl->jobs_lock);
		w = wl->jobs;
		if (!w) {
			pthread_mutex_unlock(&wl->jobs_lock);
			return NULL;
		}
		wl->jobs = w->next;
		pthread_mutex_unlock(&wl->jobs_lock);
		ask_waiting(w);
		w->phase = W_LOOKED;
		MHD_resume_connection(w->c);
	}
}

/* Room made, or a header deadline passed: the connection's event loop sees it shut and closes
 * it (under the quota table's lock, so the connection is still there). A parked long poll is
 * answered first (check_hangups sees the shutdown). */
static void evict(struct kura_slot *s)
{
	struct kura_conn *conn = s->owner;

	(void)shutdown(conn->fd, SHUT_RDWR);
}

/* The custody process follows the store (any writer's changes: another kuractl, later another
 * host through etcd) and tells us here; long polls wait on rev_cond. */
static void *read_events(void *userdata)
{
	struct kura_workload *wl = userdata;

	for (;;) {
		struct kura_msg m;
		char why[128];
		uint64_t last = 0, reset = 0;
		int r = kura_msg_recv(wl->events, -1, &m, why);

		if (r == -EBADMSG)
			kura_msg_fatal("keeper", why);
		if (r < 0) {
			/* Gone: the link says so to every request; the parked polls are answered
			 * 503 now rather than at their deadline (the supervisor stops us soon). */
			pthread_mutex_lock(&wl->rev_lock);
			wl->keeper_gone = true;
			wake_watchers(wl);
			pthread_mutex_unlock(&wl->rev_lock);
			return NULL;
		}
		if (m.type != KURA_MSG_CHANGED)
			kura_msg_fatal("keeper",
				"a message the front does not take on its event channel");
		(void)kura_msg_u64(&m, KURA_F_REVISION, &last);
		(void)kura_msg_u64(&m, KURA_F_RESET, &reset);
		pthread_mutex_lock(&wl->rev_lock);
		if (reset) {
			/* History before it is gone: start afresh; older polls resync. */
			kura_changes_reset(wl->changes, (int64_t)last);
		} else {
			for (size_t i = 0; i < kura_msg_count(&m, KURA_F_NAME); i++) {
				const struct kura_field *f = kura_msg_nth(&m, KURA_F_REV, i);
				uint64_t rev;

				memcpy(&rev, f->data, sizeof(rev));
				(void)kura_changes_add(wl->changes, (int64_t)rev,
					(const char *)kura_msg_nth(&m, KURA_F_NAME, i)->data);
			}
		}
		if ((int64_t)last > wl->revision || reset) {
			wl->revision = (int64_t)last;
			pthread_cond_broadcast(&wl->rev_cond);
		}
		pthread_mutex_unlock(&wl->rev_lock);
		kura_msg_done(&m);
	}
}

/* The connection table's counters and ours, for the custody process's status and metrics. */
static void send_stats(struct kura_workload *wl)
{
	struct kura_front_metrics fm;
	struct kura_quota_stats st;
	uint64_t hist[KURA_HIST_BUCKETS + 1];
	struct kura_msgb b;

	kura_quota_get_stats(wl->quota, &st);
	kura_front_metrics_read(&wl->metrics, &fm);
	memcpy(hist, fm.fetch_latency.b, sizeof(fm.fetch_latency.b));
	hist[KURA_HIST_BUCKETS] = fm.fetch_latency.sum_ns;
	kura_msgb_init(&b, KURA_MSG_STATS);
	kura_msgb_u64(&b, KURA_F_CONNECTIONS, st.connections);
	kura_msgb_u64(&b, KURA_F_WATCHES, st.watches);
	kura_msgb_u64(&b, KURA_F_PRINCIPALS, st.principals);
	kura_msgb_u64(&b, KURA_F_EVICTIONS, st.evictions);
	kura_msgb_u64(&b, KURA_F_REFUSED, st.refused);
	kura_msgb_u64(&b, KURA_F_SUPPRESSED, st.suppressed);
	kura_msgb_u64(&b, KURA_F_PID, (uint64_t)getpid());
	kura_msgb_bytes(&b, KURA_F_FETCHES, fm.fetches, sizeof(fm.fetches));
	kura_msgb_bytes(&b, KURA_F_LIMITED, fm.refused, sizeof(fm.refused));
	kura_msgb_bytes(&b, KURA_F_FETCH_LATENCY, hist, sizeof(hist));
	(void)kura_msg_send(wl->events, &b, -1);
	kura_msgb_done(&b);
}

/* Resume the polls that are due or whose peer went away; close connections past their header
 * deadline; record the refusals counted in each second once it is over; send the counters. */
static void *rev_thread(void *userdata)
{
	struct kura_workload *wl = userdata;
	int64_t flushed = (int64_t)kura_clock_s();

	for (;;) {
		struct timespec ts;

		pthread_mutex_lock(&wl->rev_lock);
		if (wl->stopping) {
			pthread_mutex_unlock(&wl->rev_lock);
			return NULL;
		}
		wake_watchers(wl);
		check_hangups(wl);
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += 100 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		(void)pthread_cond_timedwait(&wl->rev_cond, &wl->rev_lock, &ts);
		pthread_mutex_unlock(&wl->rev_lock);
		__atomic_fetch_add(&wl->metrics.refused[KURA_LIMIT_HEADER_TIMEOUT],
			kura_quota_reap(wl->quota, kura_clock_s(), wl->cfg.header_timeout_s),
			__ATOMIC_RELAXED);
		/* Once a second: the counts of every principal whose second is over. */
		if ((int64_t)kura_clock_s() != flushed) {
			flushed = (int64_t)kura_clock_s();
			kura_quota_flush(wl->quota, kura_clock_s(), false, write_suppressed, wl);
			send_stats(wl);
		}
	}
}

int kura_workload_start(const struct kura_workload_config *cfg, struct kura_link *link, int events,
	int64_t revision, struct kura_workload **ret)
{
	struct kura_workload *wl = calloc(1, sizeof(*wl));
	pthread_condattr_t ca;
	int r;

	if (!wl)
		return -ENOMEM;
	wl->cfg = *cfg;
	wl->link = link;
	wl->events = events;
	pthread_mutex_init(&wl->rev_lock, NULL);
	pthread_mutex_init(&wl->jobs_lock, NULL);
	pthread_mutex_init(&wl->known_lock, NULL);
	pthread_cond_init(&wl->jobs_cond, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&wl->rev_cond, &ca);
	pthread_condattr_destroy(&ca);
	*ret = wl; /* the caller stops it, whatever happens here */
	r = kura_quota_new(&cfg->quota, evict, &wl->quota);
	if (r < 0)
		return r;
	wl->revision = revision;
	/* Exact from now on: a long poll from an older revision is told to list again. */
	r = kura_changes_new(KURA_CHANGES_KEPT, wl->revision, &wl->changes);
	if (r < 0)
		return r;
	r = pthread_create(&wl->rev_thread, NULL, rev_thread, wl);
	if (r != 0)
		return -r;
	wl->rev_thread_started = true;
	r = pthread_create(&wl->events_thread, NULL, read_events, wl);
	if (r != 0)
		return -r;
	wl->events_started = true;
	for (size_t i = 0; i < KURA_LOOKUP_WORKERS; i++) {
		r = pthread_create(&wl->workers[i], NULL, lookup_worker, wl);
		if (r != 0)
			return -r;
		wl->n_workers++;
	}
	return 0;
}

void kura_workload_reconfigure(struct kura_workload *wl, const struct kura_workload_config *cfg)
{
	__atomic_store_n(&wl->cfg.watch_max_s, cfg->watch_max_s, __ATOMIC_RELAXED);
	kura_quota_configure(wl->quota, &cfg->quota);
}

void kura_workload_stats(struct kura_workload *wl, int64_t *ret_rev, struct kura_quota_stats *ret)
{
	pthread_mutex_lock(&wl->rev_lock);
	*ret_rev = wl->revision;
	pthread_mutex_unlock(&wl->rev_lock);
	kura_quota_get_stats(wl->quota, ret);
}

void kura_workload_stop(struct kura_workload *wl)
{
	if (!wl)
		return;
	pthread_mutex_lock(&wl->rev_lock);
	wl->stopping = true;
	pthread_cond_broadcast(&wl->rev_cond);
	pthread_mutex_unlock(&wl->rev_lock);
	if (wl->rev_thread_started)
		pthread_join(wl->rev_thread, NULL);
	kura_workload_drain(wl); /* the workers, if drain was not called */
	if (wl->events_started) {
		(void)shutdown(wl->events, SHUT_RD);
		pthread_join(wl->events_thread, NULL);
	}
	if (wl->quota)
		kura_quota_flush(wl->quota, kura_clock_s(), true, write_suppressed, wl);
	kura_changes_free(wl->changes);
	kura_quota_free(wl->quota);
	pthread_mutex_destroy(&wl->rev_lock);
	pthread_mutex_destroy(&wl->jobs_lock);
	pthread_mutex_destroy(&wl->known_lock);
	pthread_cond_destroy(&wl->jobs_cond);
	pthread_cond_destroy(&wl->rev_cond);
	free(wl);
}

void kura_workload_drain(struct kura_workload *wl)
{
	/* libmicrohttpd must not be stopped with a connection suspended: wake every long poll,
	 * let the workers finish the lookups they have (each bounded), and wait until every
	 * suspended request has been answered. With `stopping` set, none is parked again.
	 * Stopped because the custody process died, its events channel has hung up even if
	 * the events thread has not seen it yet: then the parked polls get 503, not a drain's
	 * 200. */
	struct pollfd ev = { .fd = wl->events, .events = POLLIN };
	bool gone = wl->events >= 0 && poll(&ev, 1, 0) == 1 && (ev.revents & POLLHUP);

	pthread_mutex_lock(&wl->rev_lock);
	if (gone)
		wl->keeper_gone = true;
	wl->stopping = true;
	pthread_cond_broadcast(&wl->rev_cond);
	wake_watchers(wl);
	pthread_mutex_unlock(&wl->rev_lock);
	if (wl->n_workers) {
		pthread_mutex_lock(&wl->jobs_lock);
		wl->jobs_stop = true;
		pthread_cond_broadcast(&wl->jobs_cond);
		pthread_mutex_unlock(&wl->jobs_lock);
		for (size_t i = 0; i < wl->n_workers; i++)
			pthread_join(wl->workers[i], NULL);
		wl->n_workers = 0;
	}
	for (int i = 0; i < 500; i++) {
		unsigned n;

		pthread_mutex_lock(&wl->rev_lock);
		n = wl->suspended;
		pthread_mutex_unlock(&wl->rev_lock);
		if (n == 0)
			return;
		kura_sleep_ms(10);
	}
	kura_log(LOG_WARNING, "requests still suspended at shutdown");
}

void kura_workload_completed(void *cls, struct MHD_Connection *c, void **req_cls,
	enum MHD_RequestTerminationCode code)
{
	struct kura_workload *wl = cls;
	struct kura_conn *conn = kura_http_conn(c);
	struct wreq *w = req_cls ? *req_cls : NULL;

	(void)code;
	/* The connection waits for the next request's headers from now. */
	if (conn)
		kura_quota_busy(wl->quota, &conn->slot, false, kura_clock_s());
	if (!w || kura_http_marker(w))
		return;
	if (w->fetch) {
		kura_count(&wl->metrics.fetches[w->reason]);
		kura_hist_observe(&wl->metrics.fetch_latency, kura_metrics_now_ns() - w->begun_ns);
	}
	if (w->listed) {
		struct wreq **p;

		pthread_mutex_lock(&wl->rev_lock);
		for (p = &wl->watchers; *p && *p != w; p = &(*p)->next)
			;
		if (*p)
			*p = w->next;
		pthread_mutex_unlock(&wl->rev_lock);
	}
	if (w->watching)
		kura_quota_watch_end(wl->quota, &w->conn->slot);
	if (w->phase == W_LOOKED && w->asked_r == 0)
		kura_link_abandon(wl->link, w->answer_chan, &w->answer);
	if (w->handle) {
		struct kura_msgb b;
		struct kura_msg m;

		kura_msgb_init(&b, KURA_MSG_UNWATCH);
		kura_msgb_u64(&b, KURA_F_WATCH, w->handle);
		if (kura_link_ask(wl->link, &b, -1, KURA_KEEPER_WAIT_MS, &m) == 0)
			kura_msg_done(&m);
		kura_msgb_done(&b);
	}
	json_decref(w->changed);
	free(w);
	*req_cls = NULL;
}

/* A peer in no container: the custody process reads its user namespace's owner (it takes
 * privilege), unless it told us of this very process a moment ago (known_principal). Without
 * an answer it counts as unidentified, the one principal all such share. */
static void ask_principal(struct kura_workload *wl, struct kura_conn *conn)
{
	struct kura_msgb b;
	struct kura_msg m;
	uint64_t kind = KURA_PRINCIPAL_UNIDENTIFIED, uid = 0;

	if (known_get(wl, conn))
		return;
	kura_msgb_init(&b, KURA_MSG_PRINCIPAL);
	if (kura_link_ask(wl->link, &b, conn->fd, KURA_KEEPER_WAIT_MS, &m) == 0) {
		(void)kura_msg_u64(&m, KURA_F_KIND, &kind);
		(void)kura_msg_u64(&m, KURA_F_UID, &uid);
		kura_msg_done(&m);
	}
	kura_msgb_done(&b);
	if (kind == KURA_PRINCIPAL_USER || kind == KURA_PRINCIPAL_FOREIGN) {
		conn->principal.kind = (enum kura_principal_kind)kind;
		conn->principal.uid = (uid_t)uid;
		known_put(wl, conn);
	}
}

void kura_workload_notify(void *cls, struct MHD_Connection *c, void **socket_context,
	enum MHD_ConnectionNotificationCode code)
{
	struct kura_workload *wl = cls;
	struct kura_conn *conn;
	int r;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *info = MHD_get_connection_info(c,
			MHD_CONNECTION_INFO_CONNECTION_FD);

		conn = info ? kura_conn_new(info->connect_fd, true) : NULL;
		if (!conn)
			return; /* the handler refuses a connection without context */
		*socket_context = conn;
		if (!kura_conn_principal_cgroup(conn, &conn->principal))
			ask_principal(wl, conn);
		conn->slot.owner = conn;
		/* One principal cannot take every slot: past its share it is shut out at once;
		 * past the table's size, the principal with the most connections makes room. */
		r = kura_quota_admit(wl->quota, &conn->slot, &conn->principal, kura_clock_s());
		if (r < 0) {
			kura_count(&wl->metrics.refused[r == -EUSERS ? KURA_LIMIT_PEER_CONNECTIONS :
								       KURA_LIMIT_CONNECTIONS]);
			(void)shutdown(conn->fd, SHUT_RDWR);
		}
		return;
	}
	conn = *socket_context;
	if (conn) {
		kura_quota_release(wl->quota, &conn->slot);
		kura_conn_free(conn);
		*socket_context = NULL;
	}
}

/* Hand the request to a lookup worker and suspend it; false when shutting down (the caller
 * then answers 503). */
static bool defer_lookup(struct wreq *w)
{
	struct kura_workload *wl = w->wl;

	/* Under jobs_lock, which shutdown takes to tell the workers to finish: a job queued
	 * after that would never be picked up, and its connection would stay suspended. The
	 * workers take every job queued before it. */
	pthread_mutex_lock(&wl->jobs_lock);
	if (wl->jobs_stop) {
		pthread_mutex_unlock(&wl->jobs_lock);
		return false;
	}
	pthread_mutex_lock(&wl->rev_lock);
	wl->suspended++;
	pthread_mutex_unlock(&wl->rev_lock);
	w->phase = W_LOOKUP;
	MHD_suspend_connection(w->c);
	w->next = NULL;
	if (!wl->jobs) {
		wl->jobs = w;
	} else {
		struct wreq *t = wl->jobs;

		while (t->next)
			t = t->next;
		t->next = w;
	}
	pthread_cond_signal(&wl->jobs_cond);
	pthread_mutex_unlock(&wl->jobs_lock);
	return true;
}

/* The request's state, made once it is complete (its headers read, no body). */
static struct wreq *wreq_new(struct kura_workload *wl, struct MHD_Connection *c,
	struct kura_conn *conn, void **req_cls)
{
	struct wreq *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->wl = wl;
	w->c = c;
	w->conn = conn;
	w->reason = KURA_FETCH_OTHER;
	w->begun_ns = kura_metrics_now_ns();
	kura_request_id(w->rid);
	*req_cls = w;
	return w;
}

/* Continue a request resumed after a suspension. */
static enum MHD_Result resumed(struct wreq *w, const char *url)
{
	pthread_mutex_lock(&w->wl->rev_lock);
	w->wl->suspended--;
	pthread_mutex_unlock(&w->wl->rev_lock);
	if (w->phase == W_WATCH)
		return watch(w);
	return dispatch(w, url); /* W_LOOKED: ask() relays the worker's answer */
}

enum MHD_Result kura_workload_handler(void *cls, struct MHD_Connection *c, const char *url,
	const char *method, const char *version, const char *upload_data, size_t *upload_data_size,
	void **req_cls)
{
	struct kura_workload *wl = cls;
	struct kura_conn *conn = kura_http_conn(c);
	struct kura_identity anon;
	struct wreq *w;
	bool body;

	(void)version;
	(void)upload_data;
	if (*req_cls && !kura_http_marker(*req_cls)) {
		/* Resumed: the peer's kernel facts for records refused from here on. */
		w = *req_cls;
		anon = (struct kura_identity){ .pid = conn->cred_pid,
			.uid = conn->cred_uid,
			.gid = conn->cred_gid };
		w->id = &anon;
		return resumed(w, url);
	}
	if (!*req_cls) {
		kura_hook_forbidden("front");
		if (conn)
			kura_quota_busy(wl->quota, &conn->slot, true, 0);
		if (!kura_http_framing_ok(c))
			return kura_http_error_close(c, MHD_HTTP_BAD_REQUEST, "bad_request",
				"a request has at most one Content-Length or Transfer-Encoding, "
				"never both");
		if (announces_body(c))
			return kura_http_error(c, MHD_HTTP_BAD_REQUEST, "bad_request",
				"workload requests carry no body");
	}
	if (!kura_http_ready(upload_data_size, req_cls, &body))
		return MHD_YES;
	if (body)
		return kura_http_error(c, MHD_HTTP_BAD_REQUEST, "bad_request",
			"workload requests carry no body");
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0)
		return kura_http_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed",
			"the workload API takes GET only");
	w = wreq_new(wl, c, conn, req_cls);
	if (!w)
		return MHD_NO;
	w->fetch = strncmp(url, PREFIX_SECRETS, strlen(PREFIX_SECRETS)) == 0;
	/* Until it is verified, a peer is only what the kernel says: pid, uid, gid (for one that
	 * could not be identified, what SO_PEERCRED recorded at connect, for the record only). */
	anon = conn ? (struct kura_identity){ .pid = conn->cred_pid,
		.uid = conn->cred_uid,
		.gid = conn->cred_gid } :
		      (struct kura_identity){ .pid = 0, .uid = (uid_t)-1, .gid = (gid_t)-1 };
	w->id = &anon;
	/* First of all, for every principal (the unidentified ones share one): no peer can make
	 * kurad do work, ask a runtime, or write records at more than its rate. */
	if (!conn || !kura_quota_rate_ok(wl->quota, &conn->slot, kura_clock_s())) {
		kura_count(&wl->metrics.refused[KURA_LIMIT_RATE]);
		return refuse(w, event_of(url), "denied", NULL, MHD_HTTP_TOO_MANY_REQUESTS,
			"rate_limited", "too many requests from this peer; slow down");
	}
	if (conn->peer_err < 0)
		return refuse(w, event_of(url), "denied", NULL, MHD_HTTP_FORBIDDEN, "unidentified",
			"the peer process cannot be identified");
	/* Who the peer is and what it may have, the custody process decides for every request,
	 * from the peer's own socket. */
	return dispatch(w, url);
}

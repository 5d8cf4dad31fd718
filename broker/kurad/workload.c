/* The workload API on workload.sock: whoami, the secrets this peer may read, one secret's
 * value, and a long poll for changes. Identity comes from the connection, never the request.
 * Touches plaintext: a value goes from the vault into a guarded reply body, wiped once sent. */
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

#include "changes.h"
#include "clock.h"
#include "conn.h"
#include "http.h"
#include "json.h"
#include "log.h"
#include "workload.h"

#define PREFIX_SECRETS "/v1/secrets/"

struct wreq;

struct kura_workload {
	struct kura_workload_config cfg;
	struct kura_keeper *keeper;
	struct kura_resolver *resolver;
	struct kura_recorder *rec;

	/* Connections, rates, long polls and refusal counts, per principal. */
	struct kura_quota *quota;

	/* The store revision and the secrets changed lately, followed by a thread; long polls
	 * wait on rev_cond. `revision` is as far as `changes` is complete. */
	pthread_mutex_t rev_lock;
	pthread_cond_t rev_cond;
	int64_t revision;
	struct kura_changes *changes;
	bool stopping;
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
	const struct kura_identity *id;
	char rid[KURA_REQUEST_ID_LEN + 1];
	enum wphase phase;
	struct kura_ident *ident; /* a lookup's result */
	int ident_r;
	bool watching; /* counts against the peer's long polls until completed */
	bool listed;   /* on wl->watchers */
	bool hangup;   /* its peer hung up or died while it was parked: answer and close */
	uint64_t since;
	struct timespec deadline; /* CLOCK_MONOTONIC */
	json_t *changed;
	struct wreq *next;
};

static int audit(const struct wreq *w, const char *event, const char *result, const char *reason,
	const char *secret, uint64_t version, const char *fingerprint)
{
	return kura_recorder_append(w->wl->rec,
		&(struct kura_audit_event){ .event = event,
			.result = result,
			.reason = reason,
			.who = w->id,
			.secret = secret,
			.version = version,
			.fingerprint = fingerprint,
			.request_id = w->rid });
}

/* The record of refusals counted rather than recorded one by one ("suppressed"). */
static void write_suppressed(const struct kura_refusal_note *n, void *userdata)
{
	struct kura_workload *wl = userdata;
	struct kura_identity who = { .pid = n->pid, .uid = n->uid, .gid = n->gid };
	char principal[KURA_PRINCIPAL_TEXT];

	/* The principal, not a verified identity: these peers were refused, most of them before
	 * anyone asked a runtime who they are. */
	if (n->principal.kind == KURA_PRINCIPAL_CONTAINER) {
		who.runtime = kura_cgroup_runtime_name(n->principal.runtime);
		who.container_id = n->principal.id;
	}
	(void)kura_recorder_append(wl->rec,
		&(struct kura_audit_event){ .event = "suppressed",
			.result = "denied",
			.reason = n->reason[0] ? n->reason : NULL,
			.who = &who,
			.detail = kura_principal_text(&n->principal, principal),
			.count = (int64_t)n->count,
			.has_count = true });
}

static enum MHD_Result audit_unavailable(struct MHD_Connection *c)
{
	return kura_http_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "audit_unavailable",
		"the audit log cannot be written now, so nothing is served; try again");
}

/*
 * Record a refusal or failure, then send it: as the error, or as 503 if even the record could
 * not be written. Refusals reach the log in bounded volume: a principal's first in each second
 * is recorded on its own, the rest are counted into one "suppressed" record (quota.h), so that
 * no peer can fill the disk and so shut everyone out (fail closed). A peer that cannot be
 * identified is also disconnected: it has nothing more to ask.
 */
static enum MHD_Result refuse(const struct wreq *w, const char *event, const char *result,
	const char *secret, unsigned status, const char *code, const char *msg)
{
	struct kura_refusal_note due;
	bool record;

	record = kura_quota_refusal(w->wl->quota, w->conn ? &w->conn->slot : NULL, kura_clock_s(),
		code, w->id->pid, w->id->uid, w->id->gid, &due);
	if (due.count)
		write_suppressed(&due, w->wl);
	if (record && audit(w, event, result, code, secret, 0, NULL) < 0)
		return audit_unavailable(w->c);
	if (strcmp(code, "unidentified") == 0 || !w->conn || w->conn->peer_err < 0)
		return kura_http_error_close(w->c, status, code, msg);
	return kura_http_error(w->c, status, code, msg);
}

/* A long poll's filter: only the changed names its peer may read. */
struct readable {
	const struct kura_grants *g;
	const struct kura_identity *id;
	json_t *out;
};

static bool collect_readable(const char *name, void *userdata)
{
	struct readable *rd = userdata;

	if (kura_grants_allow(rd->g, rd->id, name))
		json_array_append_new(rd->out, json_string(name));
	return true;
}

static enum MHD_Result list_secrets(const struct wreq *w)
{
	struct kura_secret_list l = { 0 };
	struct kura_err err = { 0 };
	json_t *arr = json_array();
	int64_t rev = 0;
	int r;

	r = kura_keeper_readable(w->wl->keeper, w->id, "", &l, &rev, &err);
	for (size_t i = 0; r == 0 && i < l.n; i++)
		json_array_append_new(arr,
			json_pack("{s:s, s:I}", "name", l.items[i].name, "version",
				(json_int_t)l.items[i].current));
	kura_secret_list_done(&l);
	if (r < 0) {
		kura_log(LOG_ERR, "listing secrets: %s", err.msg[0] ? err.msg : strerror(-r));
		json_decref(arr);
		return refuse(w, "list", "error", NULL, MHD_HTTP_SERVICE_UNAVAILABLE,
			"store_unavailable", "the store cannot be read now");
	}
	if (audit(w, "list", "ok", NULL, NULL, 0, NULL) < 0) {
		json_decref(arr);
		return audit_unavailable(w->c);
	}
	return kura_http_json(w->c, MHD_HTTP_OK,
		json_pack("{s:I, s:o}", "revision", (json_int_t)rev, "secrets", arr));
}

/* Whether the peer asked for the value as the raw body (kura does): no base64, no JSON. */
static bool wants_raw(struct MHD_Connection *c)
{
	const char *accept = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
		MHD_HTTP_HEADER_ACCEPT);

	return accept && strcmp(accept, KURA_HTTP_RAW_TYPE) == 0;
}

static enum MHD_Result get_secret(const struct wreq *w, const char *name)
{
	struct kura_fetched f;
	struct kura_err err = { 0 };
	int r;

	r = kura_keeper_fetch(w->wl->keeper, w->id, name, &f, &err);
	/* An invalid name is not recorded as such: it may not be valid UTF-8 for JSON. */
	if (r == -EINVAL)
		return refuse(w, "fetch", "denied", NULL, MHD_HTTP_BAD_REQUEST, "bad_name",
			"a secret name is segments of [A-Za-z0-9._-] joined by '/', 1-255 bytes");
	if (r == -EACCES)
		return refuse(w, "fetch", "denied", name, MHD_HTTP_FORBIDDEN, "no_grant",
			"no grant lets this peer read that secret");
	if (r == -ENOENT)
		return refuse(w, "fetch", "error", name, MHD_HTTP_NOT_FOUND, "not_found",
			"the granted secret does not exist");
	if (r < 0) {
		kura_log(LOG_ERR, "reading %s: %s", name, err.msg[0] ? err.msg : strerror(-r));
		return refuse(w, "fetch", "error", name, MHD_HTTP_SERVICE_UNAVAILABLE,
			"store_unavailable", "the secret cannot be read now");
	}
	/* Fail closed: the value leaves only once its record is written. */
	if (audit(w, "fetch", "ok", NULL, name, f.info.version, f.fingerprint) < 0) {
		kura_fetched_done(&f);
		return audit_unavailable(w->c);
	}
	if (wants_raw(w->c))
		return kura_http_secret_raw(w->c, &f);
	return kura_http_secret_json(w->c, name, &f);
}

static void note_change(const char *name, int64_t rev, void *userdata)
{
	struct kura_workload *wl = userdata;

	pthread_mutex_lock(&wl->rev_lock);
	(void)kura_changes_add(wl->changes, rev, name);
	pthread_mutex_unlock(&wl->rev_lock);
}

/*
 * The revision thread's part: read what the store changed since wl->revision, a page at a time
 * (the vault's lock is held for one page only), into the index long polls ask, and move
 * wl->revision as far as the index is complete.
 */
static void follow(struct kura_workload *wl)
{
	int64_t seen, last = 0;
	int r;

	pthread_mutex_lock(&wl->rev_lock);
	seen = wl->revision;
	pthread_mutex_unlock(&wl->rev_lock);
	for (;;) {
		r = kura_keeper_changes(wl->keeper, seen, 1024, note_change, wl, &last);
		pthread_mutex_lock(&wl->rev_lock);
		if (r == -ERANGE) {
			/* History before `seen` is gone: start afresh; older polls resync. */
			kura_changes_reset(wl->changes, last);
			wl->revision = last;
			pthread_cond_broadcast(&wl->rev_cond);
		} else if (r == 0 && last > wl->revision) {
			wl->revision = last;
			pthread_cond_broadcast(&wl->rev_cond);
		}
		pthread_mutex_unlock(&wl->rev_lock);
		if (r < 0 || last <= seen)
			return;
		seen = last;
	}
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
	struct kura_grants *g = NULL;
	bool stopping, resync = false;
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
		/* Recorded when it starts: which changes it then sees are names, never values. */
		if (audit(w, "watch", "ok", NULL, NULL, 0, NULL) < 0)
			return audit_unavailable(c);
		clock_gettime(CLOCK_MONOTONIC, &w->deadline);
		w->deadline.tv_sec += (time_t)timeout;
		w->changed = json_array();
		if (!w->changed)
			return MHD_NO;
	}
	if (w->hangup)
		return watch_answer(w, false);
	g = kura_keeper_grants(wl->keeper);
	pthread_mutex_lock(&wl->rev_lock);
	rev = wl->revision;
	stopping = wl->stopping;
	if (rev > (int64_t)w->since) {
		struct readable rd = { g, w->id, w->changed };

		resync = kura_changes_since(wl->changes, (int64_t)w->since, collect_readable,
				 &rd) == -ERANGE;
		w->since = (uint64_t)rev;
	}
	pthread_mutex_unlock(&wl->rev_lock);
	kura_grants_unref(g);
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

		if (wl->stopping || wl->revision > (int64_t)w->since || past(&w->deadline)) {
			unpark(w, p);
		} else {
			p = &w->next;
		}
	}
}

/* Answer one request for a resolved identity. */
static enum MHD_Result dispatch(struct wreq *w, const char *url)
{
	if (strcmp(url, "/v1/whoami") == 0) {
		if (audit(w, "whoami", "ok", NULL, NULL, 0, NULL) < 0)
			return audit_unavailable(w->c);
		return kura_http_json(w->c, MHD_HTTP_OK, kura_identity_json(w->id));
	}
	if (strcmp(url, "/v1/secrets") == 0)
		return list_secrets(w);
	if (strncmp(url, PREFIX_SECRETS, strlen(PREFIX_SECRETS)) == 0)
		return get_secret(w, url + strlen(PREFIX_SECRETS));
	if (strcmp(url, "/v1/watch") == 0) {
		if (!w->watching) {
			int r = kura_quota_watch_begin(w->wl->quota, &w->conn->slot);

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

/* Identity for a container the cache does not know is asked of its runtime here, off the
 * event loop (bounded by lookup_timeout_ms), then the request is resumed. */
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
		w->ident_r = kura_resolver_identify(wl->resolver, &w->conn->peer, &w->ident);
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

/* Follow the store's revision and its changes, so long polls learn of changes made by any
 * writer (another kuractl, or later another host through etcd); resume the polls that are due
 * or whose peer went away; close connections past their header deadline; record the refusals
 * counted in each second once it is over. */
static void *rev_thread(void *userdata)
{
	struct kura_workload *wl = userdata;
	int64_t flushed = (int64_t)kura_clock_s();

	for (;;) {
		struct timespec ts;

		follow(wl);
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
		kura_quota_reap(wl->quota, kura_clock_s(), wl->cfg.header_timeout_s);
		/* Once a second: the counts of every principal whose second is over. */
		if ((int64_t)kura_clock_s() != flushed) {
			flushed = (int64_t)kura_clock_s();
			kura_quota_flush(wl->quota, kura_clock_s(), false, write_suppressed, wl);
		}
	}
}

int kura_workload_start(const struct kura_workload_config *cfg, struct kura_keeper *keeper,
	struct kura_resolver *resolver, struct kura_recorder *rec, struct kura_workload **ret)
{
	struct kura_workload *wl = calloc(1, sizeof(*wl));
	pthread_condattr_t ca;
	int r;

	if (!wl)
		return -ENOMEM;
	wl->cfg = *cfg;
	wl->keeper = keeper;
	wl->resolver = resolver;
	wl->rec = rec;
	pthread_mutex_init(&wl->rev_lock, NULL);
	pthread_mutex_init(&wl->jobs_lock, NULL);
	pthread_cond_init(&wl->jobs_cond, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&wl->rev_cond, &ca);
	pthread_condattr_destroy(&ca);
	*ret = wl; /* the caller stops it, whatever happens here */
	r = kura_quota_new(&cfg->quota, evict, &wl->quota);
	if (r < 0)
		return r;
	if (kura_keeper_revision(keeper, &wl->revision) < 0)
		wl->revision = 0;
	/* Exact from now on: a long poll from an older revision is told to list again. */
	r = kura_changes_new(KURA_CHANGES_KEPT, wl->revision, &wl->changes);
	if (r < 0)
		return r;
	r = pthread_create(&wl->rev_thread, NULL, rev_thread, wl);
	if (r != 0)
		return -r;
	wl->rev_thread_started = true;
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
	if (wl->quota)
		kura_quota_flush(wl->quota, kura_clock_s(), true, write_suppressed, wl);
	kura_changes_free(wl->changes);
	kura_quota_free(wl->quota);
	pthread_mutex_destroy(&wl->rev_lock);
	pthread_mutex_destroy(&wl->jobs_lock);
	pthread_cond_destroy(&wl->jobs_cond);
	pthread_cond_destroy(&wl->rev_cond);
	free(wl);
}

void kura_workload_drain(struct kura_workload *wl)
{
	/* libmicrohttpd must not be stopped with a connection suspended: wake every long poll,
	 * let the workers finish the lookups they have (each bounded), and wait until every
	 * suspended request has been answered. With `stopping` set, none is parked again. */
	pthread_mutex_lock(&wl->rev_lock);
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
	kura_ident_unref(w->ident);
	json_decref(w->changed);
	free(w);
	*req_cls = NULL;
}

void kura_workload_notify(void *cls, struct MHD_Connection *c, void **socket_context,
	enum MHD_ConnectionNotificationCode code)
{
	struct kura_workload *wl = cls;
	struct kura_conn *conn;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *info = MHD_get_connection_info(c,
			MHD_CONNECTION_INFO_CONNECTION_FD);

		conn = info ? kura_conn_new(info->connect_fd, true) : NULL;
		if (!conn)
			return; /* the handler refuses a connection without context */
		*socket_context = conn;
		kura_conn_principal(conn, &conn->principal);
		conn->slot.owner = conn;
		/* One principal cannot take every slot: past its share it is shut out at once;
		 * past the table's size, the principal with the most connections makes room. */
		if (kura_quota_admit(wl->quota, &conn->slot, &conn->principal, kura_clock_s()) < 0)
			(void)shutdown(conn->fd, SHUT_RDWR);
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
	if (w->phase == W_WATCH) {
		w->id = kura_ident_view(w->ident);
		return watch(w);
	}
	/* W_LOOKED */
	if (w->ident_r == -EAGAIN)
		return refuse(w, event_of(url), "error", NULL, MHD_HTTP_SERVICE_UNAVAILABLE,
			"runtime_unavailable",
			"the container runtime did not answer in time; try again");
	if (w->ident_r < 0)
		return refuse(w, event_of(url), "denied", NULL, MHD_HTTP_FORBIDDEN, "unidentified",
			"this process is not a verified container or host process");
	w->id = kura_ident_view(w->ident);
	return dispatch(w, url);
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
	int r;

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
	/* Until it is verified, a peer is only what the kernel says: pid, uid, gid (for one that
	 * could not be identified, what SO_PEERCRED recorded at connect, for the record only). */
	anon = conn ? (struct kura_identity){ .pid = conn->cred_pid,
		.uid = conn->cred_uid,
		.gid = conn->cred_gid } :
		      (struct kura_identity){ .pid = 0, .uid = (uid_t)-1, .gid = (gid_t)-1 };
	w->id = &anon;
	/* First of all, for every principal (the unidentified ones share one): no peer can make
	 * kurad do work, ask a runtime, or write records at more than its rate. */
	if (!conn || !kura_quota_rate_ok(wl->quota, &conn->slot, kura_clock_s()))
		return refuse(w, event_of(url), "denied", NULL, MHD_HTTP_TOO_MANY_REQUESTS,
			"rate_limited", "too many requests from this peer; slow down");
	if (conn->peer_err < 0)
		return refuse(w, event_of(url), "denied", NULL, MHD_HTTP_FORBIDDEN, "unidentified",
			"the peer process cannot be identified");
	/* For every request, not once per connection: a process that died (its connection
	 * inherited or passed on) or a container that stopped has no identity any more. From
	 * the cache here; a container the cache does not know is looked up off the loop. */
	r = kura_resolver_identify_cached(wl->resolver, &conn->peer,
		conn->cg_fresh ? &conn->cg_rc : NULL, &conn->cg, &w->ident);
	conn->cg_fresh = false;
	if (r == -EWOULDBLOCK) {
		if (defer_lookup(w))
			return MHD_YES;
		r = -EAGAIN;
	}
	if (r == -EAGAIN)
		return refuse(w, event_of(url), "error", NULL, MHD_HTTP_SERVICE_UNAVAILABLE,
			"runtime_unavailable",
			"the container runtime did not answer in time; try again");
	if (r < 0)
		return refuse(w, event_of(url), "denied", NULL, MHD_HTTP_FORBIDDEN, "unidentified",
			"this process is not a verified container or host process");
	w->id = kura_ident_view(w->ident);
	return dispatch(w, url);
}

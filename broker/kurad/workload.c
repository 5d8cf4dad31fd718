/* The workload API on workload.sock: whoami, the secrets this peer may read, one secret's
 * value, and a long poll for changes. Identity comes from the connection, never the request.
 * Touches plaintext: a value goes from the vault into a guarded reply body, wiped once sent. */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include <sodium.h>

#include "daemon.h"
#include "grant.h"
#include "http.h"
#include "json.h"
#include "name.h"

#define PREFIX_SECRETS "/v1/secrets/"

/*
 * One workload request: who asked, and the id its audit record carries. Most requests are
 * answered at once on libmicrohttpd's event loop; one that would wait (a container the
 * identity cache does not know yet, a long poll) is suspended and kept here until it is
 * resumed: by a lookup worker with its identity, or by the revision watcher.
 */
enum wphase { W_NEW, W_LOOKUP, W_LOOKED, W_WATCH };

struct wreq {
	struct kura_daemon *d;
	struct MHD_Connection *c;
	struct kura_conn *conn;
	const struct kura_identity *id;
	char rid[KURA_REQUEST_ID_LEN + 1];
	enum wphase phase;
	struct kura_ident *ident; /* a lookup's result */
	int ident_r;
	bool watching; /* counts against the peer's long polls until completed */
	bool listed;   /* on d->watchers */
	bool hangup;   /* its peer hung up or died while it was parked: answer and close */
	uint64_t since;
	struct timespec deadline; /* CLOCK_MONOTONIC */
	json_t *changed;
	struct wreq *next;
};

static int audit(const struct wreq *w, const char *event, const char *result,
	const char *reason, const char *secret, uint64_t version, const char *fingerprint)
{
	return kura_daemon_audit(w->d, &(struct kura_audit_event){ .event = event,
		.result = result, .reason = reason, .who = w->id, .secret = secret,
		.version = version, .fingerprint = fingerprint, .request_id = w->rid });
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

	record = kura_quota_refusal(w->d->quota, w->conn ? &w->conn->slot : NULL,
		kura_clock_s(), code, w->id->pid, w->id->uid, w->id->gid, &due);
	if (due.count)
		(void)kura_daemon_audit_suppressed(w->d, &due);
	if (record && audit(w, event, result, code, secret, 0, NULL) < 0)
		return audit_unavailable(w->c);
	if (strcmp(code, "unidentified") == 0 || !w->conn || w->conn->peer_err < 0)
		return kura_http_error_close(w->c, status, code, msg);
	return kura_http_error(w->c, status, code, msg);
}

json_t *kura_identity_json(const struct kura_identity *id)
{
	json_t *j, *labels, *image_labels, *digests;

	if (id->host)
		return json_pack("{s:b, s:i, s:i, s:i}", "host", 1, "pid", (int)id->pid, "uid",
			(int)id->uid, "gid", (int)id->gid);
	labels = json_object();
	image_labels = json_object();
	digests = json_array();
	for (size_t i = 0; i < id->n_labels; i++)
		json_object_set_new(labels, id->label_keys[i], json_string(id->label_values[i]));
	/* Apart from labels: the image's author set these, and only --image-label matches them. */
	for (size_t i = 0; i < id->n_image_labels; i++)
		json_object_set_new(image_labels, id->image_label_keys[i],
			json_string(id->image_label_values[i]));
	for (size_t i = 0; i < id->n_digests; i++)
		json_array_append_new(digests, json_string(id->digests[i]));
	j = json_pack("{s:b, s:i, s:i, s:i, s:s?, s:s?, s:s?, s:s?, s:o, s:o, s:o}", "host", 0,
		"pid", (int)id->pid, "uid", (int)id->uid, "gid", (int)id->gid, "runtime",
		id->runtime, "container_id", id->container_id, "name", id->name, "image_id",
		id->image_id, "repo_digests", digests, "labels", labels, "image_labels",
		image_labels);
	return j;
}

static void grants_unref(struct kura_grants *g)
{
	if (!g || __atomic_sub_fetch(&g->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	kura_grant_list_done(&g->list);
	free(g);
}

static struct kura_grants *grants_ref(struct kura_daemon *d)
{
	struct kura_grants *g;

	pthread_mutex_lock(&d->grants_lock);
	g = d->grants;
	if (g)
		__atomic_add_fetch(&g->refs, 1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&d->grants_lock);
	return g;
}

/* Read the grants as of `rev` and make them the current ones. Under store_lock. */
static int grants_load(struct kura_daemon *d, int64_t rev)
{
	struct kura_err err = { 0 };
	struct kura_grants *g = calloc(1, sizeof(*g)), *old;
	int r;

	if (!g)
		return -ENOMEM;
	r = kura_grant_list(d->vault, &g->list, &err);
	if (r < 0) {
		kura_log(LOG_ERR, "cannot read grants: %s", err.msg[0] ? err.msg : strerror(-r));
		free(g);
		return r;
	}
	g->refs = 1;
	g->rev = rev;
	pthread_mutex_lock(&d->grants_lock);
	old = d->grants;
	d->grants = g;
	pthread_mutex_unlock(&d->grants_lock);
	grants_unref(old);
	return 0;
}

/*
 * The grants as of the store's revision now, under the store lock (inside the caller's read
 * snapshot): a reference in *ret. Decoding every grant record for every request cost more than
 * the rest of a fetch's store work, so they are kept and read again only when the revision has
 * moved past what they are known to cover (the revision thread extends that while no grant
 * changes): one small read per request, and a revocation, by kurad or by kuractl writing the store
 * directly, counts from the very next request.
 */
static int grants_current(struct kura_daemon *d, struct kura_grants **ret)
{
	struct kura_grants *g;
	int64_t rev;
	int r;

	r = kura_store_revision(kura_vault_store(d->vault), &rev);
	if (r < 0)
		return r;
	pthread_mutex_lock(&d->grants_lock);
	g = d->grants;
	if (g && g->rev == rev)
		__atomic_add_fetch(&g->refs, 1, __ATOMIC_RELAXED);
	else
		g = NULL;
	pthread_mutex_unlock(&d->grants_lock);
	if (!g) {
		r = grants_load(d, rev);
		if (r < 0)
			return r;
		g = grants_ref(d);
	}
	*ret = g;
	return 0;
}

void kura_workload_done(struct kura_daemon *d)
{
	grants_unref(d->grants);
	d->grants = NULL;
}

struct readable {
	const struct kura_grant_list *g;
	const struct kura_identity *id;
	json_t *out; /* watch: the readable changed names */
};

static bool readable(const char *name, void *userdata)
{
	const struct readable *rd = userdata;

	return kura_policy_allows(rd->g->items, rd->g->n, rd->id, name);
}

static bool collect_readable(const char *name, void *userdata)
{
	struct readable *rd = userdata;

	if (readable(name, rd))
		json_array_append_new(rd->out, json_string(name));
	return true;
}

static enum MHD_Result list_secrets(const struct wreq *w)
{
	struct kura_daemon *d = w->d;
	const struct kura_identity *id = w->id;
	struct kura_grants *g = NULL;
	struct kura_secret_list l = { 0 };
	struct kura_err err = { 0 };
	json_t *arr = json_array();
	int64_t rev = 0;
	int r;

	pthread_mutex_lock(&d->store_lock);
	r = grants_current(d, &g);
	if (r == 0) {
		struct readable rd = { &g->list, id, NULL };

		r = kura_secret_list_filtered(d->vault, "", readable, &rd, &l, &err);
	}
	if (r == 0)
		r = kura_store_revision(kura_vault_store(d->vault), &rev);
	for (size_t i = 0; r == 0 && i < l.n; i++)
		json_array_append_new(arr, json_pack("{s:s, s:I}", "name", l.items[i].name,
			"version", (json_int_t)l.items[i].current));
	pthread_mutex_unlock(&d->store_lock);
	grants_unref(g);
	kura_secret_list_done(&l);
	if (r < 0) {
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

static enum MHD_Result get_secret(const struct wreq *w, const char *name)
{
	struct kura_daemon *d = w->d;
	const struct kura_identity *id = w->id;
	struct kura_secbuf *value = NULL, *body = NULL;
	char fp[KURA_FINGERPRINT_TEXT];
	struct kura_grants *g = NULL;
	struct kura_version_info info;
	struct kura_err err = { 0 };
	bool allowed;
	int r;

	/* An invalid name is not recorded as such: it may not be valid UTF-8 for JSON. */
	if (kura_name_invalid(name, strlen(name)))
		return refuse(w, "fetch", "denied", NULL, MHD_HTTP_BAD_REQUEST, "bad_name",
			"a secret name is segments of [A-Za-z0-9._-] joined by '/', 1-255 bytes");
	pthread_mutex_lock(&d->store_lock);
	/* The grants and the secret from one snapshot of the store. */
	r = kura_store_read_begin(kura_vault_store(d->vault));
	if (r == 0)
		r = grants_current(d, &g);
	allowed = r == 0 && kura_policy_allows(g->list.items, g->list.n, id, name);
	grants_unref(g);
	/* Not granted looks the same whether or not the secret exists. */
	if (r == 0 && !allowed) {
		kura_store_read_end(kura_vault_store(d->vault));
		pthread_mutex_unlock(&d->store_lock);
		return refuse(w, "fetch", "denied", name, MHD_HTTP_FORBIDDEN, "no_grant",
			"no grant lets this peer read that secret");
	}
	if (r == 0)
		r = kura_secret_get(d->vault, name, 0, &value, &info, &err);
	if (r == 0)
		r = kura_vault_fingerprint(d->vault, value, fp);
	kura_store_read_end(kura_vault_store(d->vault));
	pthread_mutex_unlock(&d->store_lock);
	if (r == -ENOENT)
		return refuse(w, "fetch", "error", name, MHD_HTTP_NOT_FOUND, "not_found",
			"the granted secret does not exist");
	if (r < 0) {
		kura_secbuf_free(value);
		kura_log(LOG_ERR, "reading %s: %s", name, err.msg[0] ? err.msg : strerror(-r));
		return refuse(w, "fetch", "error", name, MHD_HTTP_SERVICE_UNAVAILABLE,
			"store_unavailable", "the secret cannot be read now");
	}
	/* Fail closed: the value leaves only once its record is written. */
	if (audit(w, "fetch", "ok", NULL, name, info.version, fp) < 0) {
		kura_secbuf_free(value);
		return audit_unavailable(w->c);
	}
	r = kura_http_secret_body(name, &info, value, &body);
	kura_secbuf_free(value);
	if (r < 0)
		return MHD_NO;
	return kura_http_secret(w->c, body);
}

/*
 * The revision thread's part: read what the store changed since d->revision, a page at a time
 * (the store's lock is held for one page only), into the index long polls ask, and move
 * d->revision as far as the index is complete. The grants are read again only when a grant
 * changed; otherwise the ones held are known to hold for the new revisions too.
 */
void kura_workload_follow(struct kura_daemon *d)
{
	struct kura_store *st = kura_vault_store(d->vault);
	int64_t seen, now_rev = 0;
	int r;

	pthread_mutex_lock(&d->rev_lock);
	seen = d->revision;
	pthread_mutex_unlock(&d->rev_lock);
	for (;;) {
		struct kura_change_list ch = { 0 };
		bool grants_changed = false;
		int64_t last;

		pthread_mutex_lock(&d->store_lock);
		r = kura_store_revision(st, &now_rev);
		if (r == 0 && now_rev > seen)
			r = kura_store_changes(st, seen, 1024, &ch);
		if (r < 0 || now_rev <= seen) {
			pthread_mutex_unlock(&d->store_lock);
			if (r == -ERANGE) {
				/* History before `seen` is gone: start afresh; older polls resync. */
				pthread_mutex_lock(&d->rev_lock);
				kura_changes_reset(d->changes, now_rev);
				d->revision = now_rev;
				pthread_cond_broadcast(&d->rev_cond);
				pthread_mutex_unlock(&d->rev_lock);
			}
			return;
		}
		last = ch.n ? ch.items[ch.n - 1].rev : now_rev;
		for (size_t i = 0; i < ch.n; i++)
			grants_changed = grants_changed ||
				strncmp(ch.items[i].key, KURA_PREFIX_GRANT,
					strlen(KURA_PREFIX_GRANT)) == 0;
		if (grants_changed) {
			(void)grants_load(d, last);
		} else {
			pthread_mutex_lock(&d->grants_lock);
			if (d->grants && d->grants->rev >= seen)
				d->grants->rev = last;
			pthread_mutex_unlock(&d->grants_lock);
		}
		pthread_mutex_unlock(&d->store_lock);

		pthread_mutex_lock(&d->rev_lock);
		for (size_t i = 0; i < ch.n; i++)
			if (strncmp(ch.items[i].key, "secret/", 7) == 0)
				(void)kura_changes_add(d->changes, ch.items[i].rev, ch.items[i].key + 7);
		if (last > d->revision) {
			d->revision = last;
			pthread_cond_broadcast(&d->rev_cond);
		}
		pthread_mutex_unlock(&d->rev_lock);
		kura_change_list_done(&ch);
		seen = last;
		if (last >= now_rev)
			return;
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
	struct kura_daemon *d = w->d;

	/* Under rev_lock, which shutdown takes to set `stopping` and then wake every parked
	 * poll: a poll parked after that wake-up would never be resumed, and libmicrohttpd
	 * cannot be stopped with a suspended connection. So once stopping, answer instead. */
	pthread_mutex_lock(&d->rev_lock);
	if (d->stopping) {
		pthread_mutex_unlock(&d->rev_lock);
		return false;
	}
	w->phase = W_WATCH;
	MHD_suspend_connection(w->c);
	d->suspended++;
	w->next = d->watchers;
	d->watchers = w;
	w->listed = true;
	pthread_mutex_unlock(&d->rev_lock);
	return true;
}

static enum MHD_Result watch_answer(struct wreq *w, bool resync)
{
	json_t *j = json_pack("{s:I, s:O}", "revision", (json_int_t)w->since, "changed", w->changed);

	if (j && resync)
		json_object_set_new(j, "resync", json_true());
	/* A peer that hung up or died is answered (if it can still read) and disconnected. */
	if (w->hangup)
		return kura_http_json_close(w->c, MHD_HTTP_OK, j);
	return kura_http_json(w->c, MHD_HTTP_OK, j);
}

/*
 * Answers now, or parks and answers later (called again each time it is resumed). What changed is
 * asked of the index of recent changes (d->changes, under rev_lock), never of the store: a poll
 * costs at most KURA_CHANGES_KEPT names and never stalls a fetch. A `since` older than the index
 * is answered at once with "resync": true, and the peer lists its secrets again.
 */
static enum MHD_Result watch(struct wreq *w)
{
	struct kura_daemon *d = w->d;
	struct MHD_Connection *c = w->c;
	struct kura_grants *g = NULL;
	bool stopping, resync = false;
	uint64_t timeout;
	int64_t rev;

	if (w->phase != W_WATCH) {
		if (!kura_http_query_u64(c, "since", 0, INT64_MAX, UINT64_MAX, &w->since) ||
			w->since == UINT64_MAX ||
			!kura_http_query_u64(c, "timeout", 1, d->cfg.watch_max_s, 30, &timeout))
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
	g = grants_ref(d);
	pthread_mutex_lock(&d->rev_lock);
	rev = d->revision;
	stopping = d->stopping;
	if (rev > (int64_t)w->since) {
		struct kura_grant_list none = { 0 };
		struct readable rd = { g ? &g->list : &none, w->id, w->changed };

		resync = kura_changes_since(d->changes, (int64_t)w->since, collect_readable, &rd) ==
			-ERANGE;
		w->since = (uint64_t)rev;
	}
	pthread_mutex_unlock(&d->rev_lock);
	grants_unref(g);
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

void kura_workload_check_hangups(struct kura_daemon *d)
{
	struct pollfd *fds;
	struct wreq **p;
	size_t n = 0, i = 0;

	/* libmicrohttpd does not watch a suspended connection: a poll parked for minutes would
	 * hold its slot long after its peer hung up or died. So every parked poll's socket (for a
	 * hang-up, or our own shutdown when room was made) and pidfd (for the peer's exit) are
	 * looked at here, every tenth of a second. Under rev_lock. */
	for (struct wreq *w = d->watchers; w; w = w->next)
		n++;
	if (!n)
		return;
	fds = calloc(2 * n, sizeof(*fds));
	if (!fds)
		return;
	for (struct wreq *w = d->watchers; w; w = w->next, i += 2) {
		fds[i] = (struct pollfd){ .fd = w->conn->fd, .events = POLLRDHUP };
		fds[i + 1] = (struct pollfd){ .fd = w->conn->peer.pidfd, .events = POLLIN };
	}
	if (poll(fds, 2 * n, 0) > 0) {
		i = 0;
		for (p = &d->watchers; *p; i += 2) {
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

void kura_workload_wake_watchers(struct kura_daemon *d)
{
	struct wreq **p;

	/* Under rev_lock (the caller's): resume those whose revision moved or time is up. */
	for (p = &d->watchers; *p;) {
		struct wreq *w = *p;

		if (d->stopping || d->revision > (int64_t)w->since || past(&w->deadline)) {
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
			int r = kura_quota_watch_begin(w->d->quota, &w->conn->slot);

			if (r < 0)
				return refuse(w, "watch", "denied", NULL,
					MHD_HTTP_TOO_MANY_REQUESTS, "too_many_watches",
					r == -EUSERS ? "this peer already has the most long polls open" :
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
	struct kura_daemon *d = userdata;

	for (;;) {
		struct wreq *w;

		pthread_mutex_lock(&d->jobs_lock);
		while (!d->jobs && !d->jobs_stop)
			pthread_cond_wait(&d->jobs_cond, &d->jobs_lock);
		w = d->jobs;
		if (!w) {
			pthread_mutex_unlock(&d->jobs_lock);
			return NULL;
		}
		d->jobs = w->next;
		pthread_mutex_unlock(&d->jobs_lock);
		w->ident_r = kura_resolver_identify(d->resolver, &w->conn->peer, &w->ident);
		w->phase = W_LOOKED;
		MHD_resume_connection(w->c);
	}
}

int kura_workload_start(struct kura_daemon *d)
{
	int64_t rev = 0;
	int r;

	pthread_mutex_lock(&d->store_lock);
	r = kura_store_revision(kura_vault_store(d->vault), &rev);
	if (r == 0)
		r = grants_load(d, rev);
	pthread_mutex_unlock(&d->store_lock);
	if (r < 0)
		return r;
	for (size_t i = 0; i < KURA_LOOKUP_WORKERS; i++) {
		r = pthread_create(&d->workers[i], NULL, lookup_worker, d);
		if (r != 0)
			return -r;
		d->n_workers++;
	}
	return 0;
}

void kura_workload_drain(struct kura_daemon *d)
{
	/* libmicrohttpd must not be stopped with a connection suspended: wake every long poll,
	 * let the workers finish the lookups they have (each bounded), and wait until every
	 * suspended request has been answered. `stopping` is set, so none is parked again. */
	pthread_mutex_lock(&d->rev_lock);
	kura_workload_wake_watchers(d);
	pthread_mutex_unlock(&d->rev_lock);
	if (d->n_workers) {
		pthread_mutex_lock(&d->jobs_lock);
		d->jobs_stop = true;
		pthread_cond_broadcast(&d->jobs_cond);
		pthread_mutex_unlock(&d->jobs_lock);
		for (size_t i = 0; i < d->n_workers; i++)
			pthread_join(d->workers[i], NULL);
		d->n_workers = 0;
	}
	for (int i = 0; i < 500; i++) {
		unsigned n;

		pthread_mutex_lock(&d->rev_lock);
		n = d->suspended;
		pthread_mutex_unlock(&d->rev_lock);
		if (n == 0)
			return;
		kura_sleep_ms(10);
	}
	kura_log(LOG_WARNING, "requests still suspended at shutdown");
}

void kura_workload_completed(void *cls, struct MHD_Connection *c, void **req_cls,
	enum MHD_RequestTerminationCode code)
{
	struct wreq *w = *req_cls;

	(void)cls;
	(void)c;
	(void)code;
	if (!w || kura_http_marker(w))
		return;
	if (w->listed) {
		struct wreq **p;

		pthread_mutex_lock(&w->d->rev_lock);
		for (p = &w->d->watchers; *p && *p != w; p = &(*p)->next)
			;
		if (*p)
			*p = w->next;
		pthread_mutex_unlock(&w->d->rev_lock);
	}
	if (w->watching)
		kura_quota_watch_end(w->d->quota, &w->conn->slot);
	kura_ident_unref(w->ident);
	json_decref(w->changed);
	free(w);
	*req_cls = NULL;
}

/* Hand the request to a lookup worker and suspend it; false when shutting down (the caller
 * then answers 503). */
static bool defer_lookup(struct wreq *w)
{
	struct kura_daemon *d = w->d;

	/* Under jobs_lock, which shutdown takes to tell the workers to finish: a job queued
	 * after that would never be picked up, and its connection would stay suspended. The
	 * workers take every job queued before it. */
	pthread_mutex_lock(&d->jobs_lock);
	if (d->jobs_stop) {
		pthread_mutex_unlock(&d->jobs_lock);
		return false;
	}
	pthread_mutex_lock(&d->rev_lock);
	d->suspended++;
	pthread_mutex_unlock(&d->rev_lock);
	w->phase = W_LOOKUP;
	MHD_suspend_connection(w->c);
	w->next = NULL;
	if (!d->jobs) {
		d->jobs = w;
	} else {
		struct wreq *t = d->jobs;

		while (t->next)
			t = t->next;
		t->next = w;
	}
	pthread_cond_signal(&d->jobs_cond);
	pthread_mutex_unlock(&d->jobs_lock);
	return true;
}

/* The request's state, made once it is complete (its headers read, no body). */
static struct wreq *wreq_new(struct kura_daemon *d, struct MHD_Connection *c,
	struct kura_conn *conn, void **req_cls)
{
	struct wreq *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->d = d;
	w->c = c;
	w->conn = conn;
	kura_request_id(w->rid);
	*req_cls = w;
	return w;
}

/* Continue a request resumed after a suspension. */
static enum MHD_Result resumed(struct wreq *w, const char *url)
{
	pthread_mutex_lock(&w->d->rev_lock);
	w->d->suspended--;
	pthread_mutex_unlock(&w->d->rev_lock);
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
		return refuse(w, event_of(url), "denied", NULL, MHD_HTTP_FORBIDDEN,
			"unidentified", "this process is not a verified container or host process");
	w->id = kura_ident_view(w->ident);
	return dispatch(w, url);
}

enum MHD_Result kura_workload_handler(void *cls, struct MHD_Connection *c, const char *url,
	const char *method, const char *version, const char *upload_data,
	size_t *upload_data_size, void **req_cls)
{
	struct kura_daemon *d = cls;
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
		anon = (struct kura_identity){ .pid = conn->cred_pid, .uid = conn->cred_uid,
			.gid = conn->cred_gid };
		w->id = &anon;
		return resumed(w, url);
	}
	if (!*req_cls) {
		kura_daemon_request_started(d, conn);
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
	w = wreq_new(d, c, conn, req_cls);
	if (!w)
		return MHD_NO;
	/* Until it is verified, a peer is only what the kernel says: pid, uid, gid (for one that
	 * could not be identified, what SO_PEERCRED recorded at connect, for the record only). */
	anon = conn ? (struct kura_identity){ .pid = conn->cred_pid, .uid = conn->cred_uid,
			      .gid = conn->cred_gid } :
		      (struct kura_identity){ .pid = 0, .uid = (uid_t)-1, .gid = (gid_t)-1 };
	w->id = &anon;
	/* First of all, for every principal (the unidentified ones share one): no peer can make
	 * kurad do work, ask a runtime, or write records at more than its rate. */
	if (!conn || !kura_quota_rate_ok(d->quota, &conn->slot, kura_clock_s()))
		return refuse(w, event_of(url), "denied", NULL, MHD_HTTP_TOO_MANY_REQUESTS,
			"rate_limited", "too many requests from this peer; slow down");
	if (conn->peer_err < 0)
		return refuse(w, event_of(url), "denied", NULL, MHD_HTTP_FORBIDDEN,
			"unidentified", "the peer process cannot be identified");
	/* For every request, not once per connection: a process that died (its connection
	 * inherited or passed on) or a container that stopped has no identity any more. From
	 * the cache here; a container the cache does not know is looked up off the loop. */
	r = kura_resolver_identify_cached(d->resolver, &conn->peer,
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
		return refuse(w, event_of(url), "denied", NULL, MHD_HTTP_FORBIDDEN,
			"unidentified", "this process is not a verified container or host process");
	w->id = kura_ident_view(w->ident);
	return dispatch(w, url);
}

/* Resolve a peer to an identity: cgroup -> configured runtime -> cached container description ->
 * pid-namespace and liveness checks. The cache is invalidated by each runtime's event stream. No
 * plaintext. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "clock.h"
#include "identity.h"
#include "macro.h"

#define BUCKETS 256
#define BACKOFF_MIN_MS 100u
#define BACKOFF_MAX_MS 5000u
/* A stream that stayed up this long was a good connection: the next failure starts the backoff
 * afresh. */
#define BACKOFF_RESET_MS 1000
/* How long a stream must have been running before answers are cached: kura_runtime_watch() gives
 * no signal when the runtime has registered the subscription, and an answer cached before that
 * could miss the event that makes it stale. A local connect and request take about a millisecond.
 */
#define WATCH_SETTLE_MS 200

/* A container as its runtime described it: immutable once made, shared by the cache and every
 * ident of that container. */
struct ident_record {
	unsigned refs;
	char *runtime;
	struct kura_container *c;
};

struct entry {
	struct entry *next;
	struct watch *w;
	char id[KURA_CGROUP_ID_LEN + 1];
	struct ident_record *rec;
	int64_t expires;
};

/* One inspect in progress; callers missing on the same container wait for it rather than ask the
 * runtime again. */
struct flight {
	struct flight *next;
	struct watch *w;
	char id[KURA_CGROUP_ID_LEN + 1];
	unsigned refs;
	int64_t started;
	uint64_t gen;
	bool dropped; /* an event for it came while it ran: its answer is not cached */
	bool done;
	int result;
	struct ident_record *rec;
};

/* A configured runtime and its event watcher. */
struct watch {
	struct kura_resolver *r;
	struct kura_runtime *rt;
	pthread_t thread;
	bool thread_started;
	uint64_t gen;  /* bumped when the stream fails: answers begun before are not cached */
	bool watching; /* inside kura_runtime_watch() */
	int64_t watch_since;
};

#define PREFETCH_MAX 64

struct kura_resolver {
	pthread_mutex_t lock;
	pthread_cond_t landed; /* a flight is done */
	pthread_cond_t wake;   /* stop: cut the watchers' backoff short */
	volatile bool stop;
	bool started;
	struct watch *watches;
	size_t n_watches;
	struct entry *buckets[BUCKETS];
	struct flight *flights;
	unsigned timeout_ms, ttl_ms, retries, retry_ms;
	struct kura_resolver_stats stats;

	/* Containers that just started, to look up before they ask (prefetch_main). */
	struct {
		struct watch *w;
		char id[KURA_CGROUP_ID_LEN + 1];
	} pre[PREFETCH_MAX];
	size_t n_pre;
	bool prefetch; /* kura_resolver_set_prefetch; on by default */
	pthread_cond_t pre_cond;
	pthread_t pre_thread;
	bool pre_started;
};

/* ---- records and idents ---- */

static void record_unref(struct ident_record *rec)
{
	if (!rec || __atomic_sub_fetch(&rec->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	free(rec->runtime);
	kura_container_free(rec->c);
	free(rec);
}

static struct ident_record *record_ref(struct ident_record *rec)
{
	__atomic_add_fetch(&rec->refs, 1, __ATOMIC_RELAXED);
	return rec;
}

struct kura_ident *kura_ident_ref(struct kura_ident *i)
{
	__atomic_add_fetch(&i->refs, 1, __ATOMIC_RELAXED);
	return i;
}

void kura_ident_unref(struct kura_ident *i)
{
	if (!i || __atomic_sub_fetch(&i->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	record_unref(i->rec);
	free(i);
}

/* An ident for peer: host if rec is NULL, else the container rec describes (the reference to rec
 * is taken over on success only). */
static int ident_new(const struct kura_peer *peer, struct ident_record *rec,
	struct kura_ident **ret)
{
	struct kura_ident *i = calloc(1, sizeof(*i));

	if (!i)
		return -ENOMEM;
	i->refs = 1;
	i->id.host = !rec;
	i->id.pid = peer->pid;
	i->id.uid = peer->uid;
	i->id.gid = peer->gid;
	if (rec) {
		const struct kura_container *c = rec->c;

		i->rec = rec;
		i->id.runtime = rec->runtime;
		i->id.container_id = c->id;
		i->id.name = c->name;
		i->id.image_id = c->image_id;
		i->id.digests = (const char *const *)c->repo_digests;
		i->id.n_digests = c->n_digests;
		i->id.label_keys = (const char *const *)c->labels.keys;
		i->id.label_values = (const char *const *)c->labels.values;
		i->id.n_labels = c->labels.n;
		i->id.image_label_keys = (const char *const *)c->image_labels.keys;
		i->id.image_label_values = (const char *const *)c->image_labels.values;
		i->id.n_image_labels = c->image_labels.n;
	}
	*ret = i;
	return 0;
}

/* ---- the cache (all under r->lock) ---- */

static unsigned bucket_of(const char *id)
{
	/* IDs are random hex: their first two digits spread evenly. */
	static const char hex[] = "0123456789abcdef";

	return (unsigned)((strchr(hex, id[0]) - hex) * 16 + (strchr(hex, id[1]) - hex));
}

static struct entry **entry_find(struct kura_resolver *r, const struct watch *w, const char *id)
{
	struct entry **e;

	for (e = &r->buckets[bucket_of(id)]; *e; e = &(*e)->next)
		if ((*e)->w == w && !strcmp((*e)->id, id))
			return e;
	return NULL;
}

static void entry_unlink(struct entry **e)
{
	struct entry *dead = *e;

	*e = dead->next;
	record_unref(dead->rec);
	free(dead);
}

static struct flight *flight_find(struct kura_resolver *r, const struct watch *w, const char *id)
{
	for (struct flight *f = r->flights; f; f = f->next)
		if (f->w == w && !strcmp(f->id, id))
			return f;
	return NULL;
}

static void flight_unlink(struct kura_resolver *r, struct flight *f)
{
	for (struct flight **p = &r->flights; *p; p = &(*p)->next)
		if (*p == f) {
			*p = f->next;
			return;
		}
}

static void flight_unref(struct flight *f)
{
	if (--f->refs > 0)
		return;
	record_unref(f->rec);
	free(f);
}

/* Drop what the cache knows about one container of w (id), or about all of w's (id NULL). */
static void invalidate(struct kura_resolver *r, struct watch *w, const char *id)
{
	if (id) {
		struct entry **e = entry_find(r, w, id);
		struct flight *f = flight_find(r, w, id);

		if (e) {
			entry_unlink(e);
			r->stats.invalidations++;
		}
		if (f)
			f->dropped = true;
		return;
	}
	w->gen++;
	for (size_t b = 0; b < BUCKETS; b++)
		for (struct entry **e = &r->buckets[b]; *e;) {
			if ((*e)->w != w) {
				e = &(*e)->next;
				continue;
			}
			entry_unlink(e);
			r->stats.invalidations++;
		}
}

/* ---- event watchers ---- */

static void on_event(const char *id, const char *action, void *userdata)
{
	struct watch *w = userdata;
	struct kura_resolver *r = w->r;

	pthread_mutex_lock(&r->lock);
	r->stats.events++;
	/* Every event drops what we know of the container but its start: kura in a fresh
	 * container asks before its runtime announces the start, and what that request's inspect
	 * learnt (in flight or cached by now) is as good as an answer taken after the event. It is
	 * cached only if it shows the container running, so it was taken after the start; the
	 * container's stop, kill or death (which comes before any start of it again) drops it,
	 * and every request still checks the peer's pid namespace against its process. */
	if (strcmp(action, "start") != 0)
		invalidate(r, w, id);
	/* A container that starts will most likely ask for its secrets within milliseconds: look
	 * it up now, off this thread, so its first request is answered from the cache instead of
	 * waiting for an inspect. What is cached is exactly what that request would have asked;
	 * the per-request checks (pid namespace, liveness) still run. Best effort: a full queue
	 * just means a cold first request. */
	if (__atomic_load_n(&r->prefetch, __ATOMIC_RELAXED) && strcmp(action, "start") == 0 &&
		strlen(id) == KURA_CGROUP_ID_LEN && r->n_pre < PREFETCH_MAX) {
		r->pre[r->n_pre].w = w;
		memcpy(r->pre[r->n_pre].id, id, KURA_CGROUP_ID_LEN + 1);
		r->n_pre++;
		pthread_cond_signal(&r->pre_cond);
	}
	pthread_mutex_unlock(&r->lock);
}

static int lookup(struct kura_resolver *r, struct watch *w, const char *id, int64_t deadline,
	bool may_block, struct ident_record **ret);

static void *prefetch_main(void *arg)
{
	struct kura_resolver *r = arg;

	pthread_mutex_lock(&r->lock);
	while (!r->stop) {
		struct ident_record *rec = NULL;
		struct watch *w;
		char id[KURA_CGROUP_ID_LEN + 1];

		if (r->n_pre == 0) {
			pthread_cond_wait(&r->pre_cond, &r->lock);
			continue;
		}
		w = r->pre[0].w;
		memcpy(id, r->pre[0].id, sizeof(id));
		memmove(&r->pre[0], &r->pre[1], --r->n_pre * sizeof(r->pre[0]));
		pthread_mutex_unlock(&r->lock);
		if (lookup(r, w, id, kura_clock_ms() + r->timeout_ms, true, &rec) == 0)
			record_unref(rec);
		pthread_mutex_lock(&r->lock);
		r->stats.prefetches++;
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

static void *watch_main(void *arg)
{
	struct watch *w = arg;
	struct kura_resolver *r = w->r;
	unsigned backoff = BACKOFF_MIN_MS;

	pthread_mutex_lock(&r->lock);
	while (!r->stop) {
		int64_t t0 = kura_clock_ms(), until;

		w->watching = true;
		w->watch_since = t0;
		pthread_mutex_unlock(&r->lock);
		kura_runtime_watch(w->rt, on_event, w, &r->stop);
		pthread_mutex_lock(&r->lock);
		w->watching = false;
		if (r->stop)
			break;
		/* Events may have been missed around the failure, and will be until we are back. */
		invalidate(r, w, NULL);
		r->stats.watch_failures++;
		if (kura_clock_ms() - t0 >= BACKOFF_RESET_MS)
			backoff = BACKOFF_MIN_MS;
		until = kura_clock_ms() + backoff;
		while (!r->stop && kura_clock_ms() < until) {
			struct timespec ts = kura_clock_at_ms(until);

			pthread_cond_timedwait(&r->wake, &r->lock, &ts);
		}
		backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

/* ---- construction ---- */

int kura_resolver_new(const struct kura_resolver_config *cfg, struct kura_resolver **ret)
{
	struct kura_resolver *r;
	pthread_condattr_t ca;

	if (!cfg || (cfg->n_runtimes && !cfg->runtimes))
		return -EINVAL;
	for (size_t i = 0; i < cfg->n_runtimes; i++) {
		if (!cfg->runtimes[i])
			return -EINVAL;
		for (size_t j = 0; j < i; j++)
			if (!strcmp(kura_runtime_name(cfg->runtimes[i]),
				    kura_runtime_name(cfg->runtimes[j])))
				return -EINVAL;
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->watches = calloc(cfg->n_runtimes ? cfg->n_runtimes : 1, sizeof(*r->watches));
	if (!r->watches) {
		free(r);
		return -ENOMEM;
	}
	r->n_watches = cfg->n_runtimes;
	for (size_t i = 0; i < cfg->n_runtimes; i++)
		r->watches[i] = (struct watch){ .r = r, .rt = cfg->runtimes[i] };
	r->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : KURA_RESOLVER_TIMEOUT_MS;
	r->ttl_ms = cfg->ttl_ms ? cfg->ttl_ms : KURA_RESOLVER_TTL_MS;
	r->retries = cfg->retries ? cfg->retries : KURA_RESOLVER_RETRIES;
	r->retry_ms = cfg->retry_ms ? cfg->retry_ms : KURA_RESOLVER_RETRY_MS;
	pthread_mutex_init(&r->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r->landed, &ca);
	pthread_cond_init(&r->wake, &ca);
	pthread_cond_init(&r->pre_cond, NULL);
	r->prefetch = true;
	pthread_condattr_destroy(&ca);
	*ret = r;
	return 0;
}

static void stop_watchers(struct kura_resolver *r)
{
	pthread_mutex_lock(&r->lock);
	r->stop = true;
	pthread_cond_broadcast(&r->wake);
	pthread_cond_broadcast(&r->pre_cond);
	pthread_mutex_unlock(&r->lock);
	if (r->pre_started) {
		pthread_join(r->pre_thread, NULL);
		r->pre_started = false;
	}
	for (size_t i = 0; i < r->n_watches; i++)
		if (r->watches[i].thread_started) {
			pthread_join(r->watches[i].thread, NULL);
			r->watches[i].thread_started = false;
		}
}

int kura_resolver_start(struct kura_resolver *r)
{
	if (!r || r->started)
		return -EINVAL;
	r->started = true;
	if (r->n_watches) {
		int rc = pthread_create(&r->pre_thread, NULL, prefetch_main, r);

		if (rc != 0)
			return -rc;
		r->pre_started = true;
	}
	for (size_t i = 0; i < r->n_watches; i++) {
		int rc = pthread_create(&r->watches[i].thread, NULL, watch_main, &r->watches[i]);

		if (rc != 0) {
			stop_watchers(r);
			return -rc;
		}
		r->watches[i].thread_started = true;
	}
	return 0;
}

void kura_resolver_free(struct kura_resolver *r)
{
	if (!r)
		return;
	stop_watchers(r);
	for (size_t b = 0; b < BUCKETS; b++)
		while (r->buckets[b])
			entry_unlink(&r->buckets[b]);
	pthread_cond_destroy(&r->landed);
	pthread_cond_destroy(&r->wake);
	pthread_cond_destroy(&r->pre_cond);
	pthread_mutex_destroy(&r->lock);
	free(r->watches);
	free(r);
}

void kura_resolver_set_prefetch(struct kura_resolver *r, bool on)
{
	__atomic_store_n(&r->prefetch, on, __ATOMIC_RELAXED);
}

void kura_resolver_get_stats(struct kura_resolver *r, struct kura_resolver_stats *ret)
{
	pthread_mutex_lock(&r->lock);
	*ret = r->stats;
	pthread_mutex_unlock(&r->lock);
}

/* ---- lookups ---- */

static struct watch *watch_for(struct kura_resolver *r, const char *runtime)
{
	for (size_t i = 0; i < r->n_watches; i++)
		if (!strcmp(kura_runtime_name(r->watches[i].rt), runtime))
			return &r->watches[i];
	return NULL;
}

/* Ask w's runtime about id, retrying briefly while it does not know the ID (a container whose
 * process runs before its runtime has finished registering it), all by `deadline`. Errors are
 * already the resolver's: -EACCES, -EAGAIN, -ENOMEM. Called without the lock. */
static int fetch(struct kura_resolver *r, struct watch *w, const char *id, int64_t deadline,
	struct ident_record **ret)
{
	struct kura_container *c = NULL;
	struct ident_record *rec;
	int rc;

	for (unsigned attempt = 0;; attempt++) {
		int64_t left = deadline - kura_clock_ms();

		if (left <= 0)
			return -EAGAIN;
		pthread_mutex_lock(&r->lock);
		r->stats.inspects++;
		pthread_mutex_unlock(&r->lock);
		rc = kura_runtime_inspect(w->rt, id, (unsigned)left, &c);
		if (rc != -ENOENT)
			break;
		if (attempt >= r->retries || deadline - kura_clock_ms() <= (int64_t)r->retry_ms)
			return -EACCES;
		kura_sleep_ms(r->retry_ms);
	}
	switch (rc) {
	case 0:
		break;
	case -ENOMEM:
		return rc;
	case -EPROTO: /* an answer we refuse to build an identity from */
	case -EMSGSIZE:
	case -EINVAL:
		return -EACCES;
	default: /* -ETIMEDOUT, -EHOSTDOWN, -ECONNREFUSED, -ECONNRESET, -EIO: the runtime's trouble
		  */
		return -EAGAIN;
	}
	rec = calloc(1, sizeof(*rec));
	if (rec)
		rec->runtime = strdup(kura_runtime_name(w->rt));
	if (!rec || !rec->runtime) {
		free(rec);
		kura_container_free(c);
		return -ENOMEM;
	}
	rec->refs = 1;
	rec->c = c;
	*ret = rec;
	return 0;
}

/* Whether an answer from flight f may enter the cache: it must be newer than the moment w's event
 * subscription took hold, and no event for it (nor a stream failure) may have come since. */
static bool cacheable(const struct watch *w, const struct flight *f)
{
	return w->watching && f->gen == w->gen && !f->dropped &&
		f->started >= w->watch_since + WATCH_SETTLE_MS;
}

/* The record for container id of w, from the cache, from another caller's inspect in progress, or
 * from one of our own. A reference in *ret on success. */
static int lookup(struct kura_resolver *r, struct watch *w, const char *id, int64_t deadline,
	bool may_block, struct ident_record **ret)
{
	struct ident_record *rec = NULL;
	struct entry **e;
	struct flight *f;
	int rc;

	pthread_mutex_lock(&r->lock);
	e = entry_find(r, w, id);
	if (e && (*e)->expires > kura_clock_ms()) {
		r->stats.hits++;
		*ret = record_ref((*e)->rec);
		pthread_mutex_unlock(&r->lock);
		return 0;
	}
	if (!may_block) {
		/* The caller will come back from a thread that may wait. */
		pthread_mutex_unlock(&r->lock);
		return -EWOULDBLOCK;
	}
	if (e) {
		entry_unlink(e);
		r->stats.expirations++;
	}
	r->stats.misses++;

	f = flight_find(r, w, id);
	if (f) {
		r->stats.shared++;
		f->refs++;
		while (!f->done && kura_clock_ms() < deadline) {
			struct timespec ts = kura_clock_at_ms(deadline);

			pthread_cond_timedwait(&r->landed, &r->lock, &ts);
		}
		if (!f->done)
			rc = -EAGAIN; /* the runtime is slow: not our call to wait longer */
		else if ((rc = f->result) == 0)
			*ret = record_ref(f->rec);
		flight_unref(f);
		pthread_mutex_unlock(&r->lock);
		return rc;
	}

	f = calloc(1, sizeof(*f));
	if (!f) {
		pthread_mutex_unlock(&r->lock);
		return -ENOMEM;
	}
	f->w = w;
	memcpy(f->id, id, sizeof(f->id));
	f->refs = 1;
	f->started = kura_clock_ms();
	f->gen = w->gen;
	f->next = r->flights;
	r->flights = f;
	pthread_mutex_unlock(&r->lock);

	rc = fetch(r, w, id, deadline, &rec);

	pthread_mutex_lock(&r->lock);
	if (rc == 0 && rec->c->running && cacheable(w, f)) {
		struct entry *n = calloc(1, sizeof(*n));

		e = entry_find(r, w, id);
		if (e)
			entry_unlink(e);
		if (n) {
			unsigned b = bucket_of(id);

			n->w = w;
			memcpy(n->id, id, sizeof(n->id));
			n->rec = record_ref(rec);
			n->expires = kura_clock_ms() + r->ttl_ms;
			n->next = r->buckets[b];
			r->buckets[b] = n;
		}
	}
	f->done = true;
	f->result = rc;
	f->rec = rec; /* the flight's reference, dropped with it */
	if (rc == 0)
		*ret = record_ref(rec);
	flight_unlink(r, f);
	flight_unref(f);
	pthread_cond_broadcast(&r->landed);
	pthread_mutex_unlock(&r->lock);
	return rc;
}

/* -ESRCH if the peer is gone, else `otherwise`: a failed check on a process that has since exited
 * is reported as the exit. */
static int gone_or(const struct kura_peer *peer, int otherwise)
{
	return kura_peer_alive(peer) ? otherwise : -ESRCH;
}

static int identify(struct kura_resolver *r, const struct kura_peer *peer, bool may_block,
	const struct kura_peer_reads *pre, struct kura_ident **ret)
{
	struct ident_record *rec = NULL;
	struct kura_cgroup_id cg;
	int64_t deadline;
	struct kura_ident *i;
	struct watch *w;
	const char *kind;
	bool same;
	int rc;

	if (!r || !peer || peer->proc_fd < 0)
		return -EINVAL;
	deadline = kura_clock_ms() + r->timeout_ms;
	if (pre) {
		rc = pre->cg_rc;
		if (rc == 0)
			cg = pre->cg;
	} else {
		rc = kura_cgroup_read(peer->proc_fd, &cg);
	}
	if (rc == -ENOENT) {
		/* In no container the cgroup shows. A host process only if it lives in the pid,
		 * mount and cgroup namespaces and under the root of kurad or of the host (PID 1): a
		 * container of a layout we do not know (even with --pid=host, --cgroupns=host, an
		 * unknown cgroup and the host's / chrooted into) has a mount namespace of its own,
		 * and is denied. */
		if (pre && pre->host_rc <= 0) {
			rc = pre->host_rc;
			same = pre->host;
		} else {
			rc = kura_peer_in_host_namespaces(peer, &same);
		}
		if (rc < 0)
			return gone_or(peer, -EACCES);
		if (!same)
			return -EACCES;
	} else if (rc < 0) {
		return rc == -ESRCH || rc == -ENOMEM ? rc : gone_or(peer, -EACCES);
	} else {
		kind = kura_cgroup_runtime_name(cg.runtime);
		w = kind ? watch_for(r, kind) : NULL;
		if (!w)
			return -EACCES;
		rc = lookup(r, w, cg.id, deadline, may_block, &rec);
		if (rc < 0)
			return rc;
		if (!rec->c->running) {
			record_unref(rec);
			return -EACCES;
		}
		/* The cgroup is the runtime's word, the pid namespace the kernel's: a process moved
		 * into a container's cgroup from outside is not that container. */
		rc = kura_peer_ns_equal(peer, rec->c->pid, &same);
		if (rc < 0 || !same) {
			record_unref(rec);
			return gone_or(peer, -EACCES);
		}
	}
	/* Everything above described the process that holds the pid now: make sure it is still the
	 * peer. */
	if (!kura_peer_alive(peer)) {
		record_unref(rec);
		return -ESRCH;
	}
	rc = ident_new(peer, rec, &i);
	if (rc < 0) {
		record_unref(rec);
		return rc;
	}
	*ret = i;
	return 0;
}

int kura_resolver_identify(struct kura_resolver *r, const struct kura_peer *peer,
	struct kura_ident **ret)
{
	return identify(r, peer, true, NULL, ret);
}

int kura_resolver_identify_cached(struct kura_resolver *r, const struct kura_peer *peer,
	const struct kura_peer_reads *pre, struct kura_ident **ret)
{
	return identify(r, peer, false, pre, ret);
}

int kura_resolver_identify_pid(struct kura_resolver *r, pid_t pid, struct kura_ident **ret)
{
	struct kura_peer peer = KURA_PEER_NULL;
	int rc;

	if (!r)
		return -EINVAL;
	rc = kura_peer_from_pid(pid, &peer);
	if (rc < 0)
		return rc;
	rc = kura_resolver_identify(r, &peer, ret);
	kura_peer_done(&peer);
	return rc;
}

int kura_resolver_identify_container(struct kura_resolver *r, const char *id_or_name,
	struct kura_ident **ret)
{
	int64_t deadline;
	bool unreachable = false;

	if (!r || !id_or_name)
		return -EINVAL;
	deadline = kura_clock_ms() + r->timeout_ms;
	for (size_t n = 0; n < r->n_watches; n++) {
		struct watch *w = &r->watches[n];
		struct ident_record *rec = NULL;
		struct kura_ident *i = NULL;
		char id[KURA_CGROUP_ID_LEN + 1];
		int64_t left = deadline - kura_clock_ms();
		pid_t pid;
		int rc;

		if (left <= 0) {
			unreachable = true;
			break;
		}
		rc = kura_runtime_find(w->rt, id_or_name, (unsigned)left, id);
		if (rc == -EINVAL || rc == -ENOMEM)
			return rc;
		if (rc == -ENOENT || rc == -EPROTO)
			continue;
		if (rc < 0) {
			unreachable = true;
			continue;
		}
		rc = lookup(r, w, id, deadline, true, &rec);
		if (rc < 0)
			return rc;
		pid = rec->c->running ? rec->c->pid : 0;
		record_unref(rec);
		if (pid <= 0)
			return -EACCES;
		/* The same path as a workload's: the init's cgroup must name this very container,
		 * under the runtime configured for its kind. */
		rc = kura_resolver_identify_pid(r, pid, &i);
		if (rc == -ESRCH)
			return -EACCES; /* it stopped meanwhile */
		if (rc < 0)
			return rc;
		if (i->id.host || strcmp(i->id.container_id, id) != 0) {
			kura_ident_unref(i);
			return -EACCES;
		}
		*ret = i;
		return 0;
	}
	return unreachable ? -EAGAIN : -ENOENT;
}

/* As the APIs show it (whoami, whois). */
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

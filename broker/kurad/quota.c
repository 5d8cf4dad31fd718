/* Per-principal limits for the workload socket: an exact table of principals (never two in one
 * bucket), their connections, rate, long polls and refusal counts. No plaintext. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quota.h"
#include "tablekey.h"

#define BUCKETS 1024u
/* A principal's refusals recorded one by one: a few at once, then one a second; the rest are
 * counted. So T seconds of a flood make at most REFUSAL_BURST + 2T + 1 records. */
#define REFUSAL_BURST 4.0

struct kura_principal_entry {
	struct kura_principal key;
	struct kura_principal_entry *next; /* in its hash chain */
	struct kura_slot *first, *last;    /* its connections, in the order they came */
	unsigned live;                     /* admitted, not evicted */
	unsigned watches;                  /* long polls begun and not ended */
	double tokens, stamp;
	/* Refusals: tokens for records of their own (a bucket of REFUSAL_BURST, one a second),
	 * and what was counted instead since `window`. */
	double refusal_tokens, refusal_stamp;
	double window;
	uint64_t suppressed;
	char reason[32];
	pid_t pid;
	uid_t uid;
	gid_t gid;
};

struct kura_quota {
	pthread_mutex_t lock;
	struct kura_quota_config cfg;
	void (*evict)(struct kura_slot *s);
	struct kura_tablekey *hash_key;
	struct kura_principal_entry *buckets[BUCKETS];
	unsigned live, watches, principals;
	uint64_t evictions, refused, suppressed;
};

const char *kura_principal_text(const struct kura_principal *p,
	char buf[static KURA_PRINCIPAL_TEXT])
{
	switch (p->kind) {
	case KURA_PRINCIPAL_CONTAINER:
		snprintf(buf, KURA_PRINCIPAL_TEXT, "container:%s:%s",
			kura_cgroup_runtime_name(p->runtime) ?: "?", p->id);
		break;
	case KURA_PRINCIPAL_USER:
		snprintf(buf, KURA_PRINCIPAL_TEXT, "user:%" PRIu32, (uint32_t)p->uid);
		break;
	case KURA_PRINCIPAL_FOREIGN:
		snprintf(buf, KURA_PRINCIPAL_TEXT, "foreign:%" PRIu32, (uint32_t)p->uid);
		break;
	default:
		snprintf(buf, KURA_PRINCIPAL_TEXT, "unidentified");
	}
	return buf;
}

/* The principal's fields that identify it, and nothing else: a container is its ID, a user its
 * uid, all unidentified peers one. */
static bool same_principal(const struct kura_principal *a, const struct kura_principal *b)
{
	if (a->kind != b->kind)
		return false;
	switch (a->kind) {
	case KURA_PRINCIPAL_CONTAINER:
		return a->runtime == b->runtime && strcmp(a->id, b->id) == 0;
	case KURA_PRINCIPAL_USER:
	case KURA_PRINCIPAL_FOREIGN:
		return a->uid == b->uid;
	default:
		return true;
	}
}

/* A keyed hash picks the chain, so no one can choose principals that crowd one chain; the
 * compare above decides. */
static unsigned bucket_of(const struct kura_quota *l, const struct kura_principal *p)
{
	uint8_t in[8 + KURA_CGROUP_ID_LEN] = { (uint8_t)p->kind };
	size_t n = 8;

	if (p->kind == KURA_PRINCIPAL_CONTAINER) {
		in[1] = (uint8_t)p->runtime;
		memcpy(in + 8, p->id, strnlen(p->id, KURA_CGROUP_ID_LEN));
		n += strnlen(p->id, KURA_CGROUP_ID_LEN);
	} else if (p->kind != KURA_PRINCIPAL_UNIDENTIFIED) {
		memcpy(in + 4, &p->uid, sizeof(p->uid));
	}
	return (unsigned)(kura_tablekey_hash(l->hash_key, in, n) % BUCKETS);
}

static struct kura_principal_entry *find(struct kura_quota *l, const struct kura_principal *p,
	bool create)
{
	unsigned b = bucket_of(l, p);
	struct kura_principal_entry *e;

	for (e = l->buckets[b]; e; e = e->next)
		if (same_principal(&e->key, p))
			return e;
	if (!create)
		return NULL;
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->key = *p;
	e->tokens = l->cfg.rate_burst;
	e->refusal_tokens = REFUSAL_BURST;
	e->next = l->buckets[b];
	l->buckets[b] = e;
	l->principals++;
	return e;
}

int kura_quota_new(const struct kura_quota_config *cfg, void (*evict)(struct kura_slot *s),
	struct kura_quota **ret)
{
	struct kura_quota *l;
	int r;

	if (!cfg || !evict)
		return -EINVAL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	r = kura_tablekey_new(&l->hash_key);
	if (r < 0) {
		free(l);
		return r;
	}
	pthread_mutex_init(&l->lock, NULL);
	l->cfg = *cfg;
	l->evict = evict;
	*ret = l;
	return 0;
}

void kura_quota_free(struct kura_quota *l)
{
	if (!l)
		return;
	for (unsigned b = 0; b < BUCKETS; b++)
		while (l->buckets[b]) {
			struct kura_principal_entry *e = l->buckets[b];

			l->buckets[b] = e->next;
			free(e);
		}
	pthread_mutex_destroy(&l->lock);
	kura_tablekey_free(l->hash_key);
	free(l);
}

void kura_quota_configure(struct kura_quota *l, const struct kura_quota_config *cfg)
{
	pthread_mutex_lock(&l->lock);
	l->cfg = *cfg;
	pthread_mutex_unlock(&l->lock);
}

static bool evictable(const struct kura_slot *s)
{
	return !s->evicted && (!s->busy || s->watching);
}

/* The principal's connection to give up first: the one idle the longest. */
static struct kura_slot *oldest_evictable(const struct kura_principal_entry *e, bool watching_only)
{
	struct kura_slot *best = NULL;

	for (struct kura_slot *s = e->first; s; s = s->next)
		if (evictable(s) && (!watching_only || s->watching) &&
			(!best || s->since < best->since))
			best = s;
	return best;
}

static void evict(struct kura_quota *l, struct kura_slot *s)
{
	s->evicted = true;
	s->p->live--;
	l->live--;
	l->evictions++;
	l->evict(s);
}

/* Room in a full table: the principal with the most open connections gives one up. */
static bool make_room(struct kura_quota *l)
{
	struct kura_principal_entry *top = NULL;
	struct kura_slot *victim = NULL;

	for (unsigned b = 0; b < BUCKETS; b++)
		for (struct kura_principal_entry *e = l->buckets[b]; e; e = e->next) {
			struct kura_slot *s;

			if (!e->live || (top && e->live < top->live))
				continue;
			s = oldest_evictable(e, false);
			if (!s)
				continue;
			if (top && e->live == top->live && s->since >= victim->since)
				continue;
			top = e;
			victim = s;
		}
	if (!victim)
		return false;
	evict(l, victim);
	return true;
}

int kura_quota_admit(struct kura_quota *l, struct kura_slot *s, const struct kura_principal *p,
	double now)
{
	struct kura_principal_entry *e;
	int r = 0;

	pthread_mutex_lock(&l->lock);
	e = find(l, p, true);
	if (!e) {
		r = -ENOMEM;
	} else if (e->live >= l->cfg.max_per_peer) {
		r = -EUSERS;
	} else if (l->live >= l->cfg.max_connections && !make_room(l)) {
		r = -ENOSPC;
	}
	if (r < 0) {
		l->refused += r != -ENOMEM;
		pthread_mutex_unlock(&l->lock);
		return r;
	}
	s->p = e;
	s->since = now;
	s->prev = e->last;
	s->next = NULL;
	if (e->last)
		e->last->next = s;
	else
		e->first = s;
	e->last = s;
	e->live++;
	l->live++;
	pthread_mutex_unlock(&l->lock);
	return 0;
}

static void watch_end_locked(struct kura_quota *l, struct kura_slot *s)
{
	if (!s->watching)
		return;
	s->watching = false;
	s->p->watches--;
	l->watches--;
}

void kura_quota_release(struct kura_quota *l, struct kura_slot *s)
{
	struct kura_principal_entry *e = s->p;

	if (!e)
		return;
	pthread_mutex_lock(&l->lock);
	watch_end_locked(l, s);
	if (s->prev)
		s->prev->next = s->next;
	else
		e->first = s->next;
	if (s->next)
		s->next->prev = s->prev;
	else
		e->last = s->prev;
	if (!s->evicted) {
		e->live--;
		l->live--;
	}
	s->p = NULL;
	pthread_mutex_unlock(&l->lock);
}

void kura_quota_busy(struct kura_quota *l, struct kura_slot *s, bool busy, double now)
{
	pthread_mutex_lock(&l->lock);
	s->busy = busy;
	if (!busy)
		s->since = now;
	pthread_mutex_unlock(&l->lock);
}

static void refill(const struct kura_quota *l, struct kura_principal_entry *e, double now)
{
	if (now > e->stamp)
		e->tokens = fmin(l->cfg.rate_burst,
			e->tokens + (now - e->stamp) * l->cfg.rate_per_s);
	e->stamp = now;
}

bool kura_quota_rate_ok(struct kura_quota *l, struct kura_slot *s, double now)
{
	struct kura_principal_entry *e = s->p;
	bool ok;

	if (!e)
		return false;
	pthread_mutex_lock(&l->lock);
	refill(l, e, now);
	ok = e->tokens >= 1.0;
	if (ok)
		e->tokens -= 1.0;
	pthread_mutex_unlock(&l->lock);
	return ok;
}

int kura_quota_watch_begin(struct kura_quota *l, struct kura_slot *s)
{
	struct kura_principal_entry *e = s->p;
	int r = 0;

	if (!e)
		return -EUSERS;
	pthread_mutex_lock(&l->lock);
	if (s->watching) {
		r = 0;
	} else if (e->watches >= l->cfg.watches_per_peer) {
		r = -EUSERS;
	} else if (l->watches >= l->cfg.max_watches) {
		struct kura_principal_entry *top = NULL;
		struct kura_slot *victim = NULL;

		/* The principal with the most long polls gives one up, if it holds more than this
		 * one would: a host full of one attacker's polls still lets every other peer in. */
		for (unsigned b = 0; b < BUCKETS; b++)
			for (struct kura_principal_entry *o = l->buckets[b]; o; o = o->next) {
				struct kura_slot *v;

				if (o->watches <= e->watches + 1 ||
					(top && o->watches <= top->watches))
					continue;
				v = oldest_evictable(o, true);
				if (v) {
					top = o;
					victim = v;
				}
			}
		if (victim)
			evict(l, victim);
		else
			r = -ENOSPC;
	}
	if (r == 0 && !s->watching) {
		s->watching = true;
		e->watches++;
		l->watches++;
	}
	pthread_mutex_unlock(&l->lock);
	return r;
}

void kura_quota_watch_end(struct kura_quota *l, struct kura_slot *s)
{
	if (!s->p)
		return;
	pthread_mutex_lock(&l->lock);
	watch_end_locked(l, s);
	pthread_mutex_unlock(&l->lock);
}

static void note_of(struct kura_principal_entry *e, struct kura_refusal_note *n)
{
	n->principal = e->key;
	n->count = e->suppressed;
	memcpy(n->reason, e->reason, sizeof(n->reason));
	n->pid = e->pid;
	n->uid = e->uid;
	n->gid = e->gid;
	e->suppressed = 0;
}

bool kura_quota_refusal(struct kura_quota *l, struct kura_slot *s, double now, const char *reason,
	pid_t pid, uid_t uid, gid_t gid, struct kura_refusal_note *due)
{
	struct kura_principal_entry *e = s ? s->p : NULL;
	bool record;

	due->count = 0;
	if (!e)
		return true;
	pthread_mutex_lock(&l->lock);
	if (now > e->refusal_stamp)
		e->refusal_tokens = fmin(REFUSAL_BURST,
			e->refusal_tokens + (now - e->refusal_stamp));
	e->refusal_stamp = now;
	record = e->refusal_tokens >= 1.0;
	if (record) {
		e->refusal_tokens -= 1.0;
		/* What was counted goes out first, once its second is over. */
		if (e->suppressed && now - e->window >= 1.0)
			note_of(e, due);
	} else {
		if (!e->suppressed)
			e->window = now;
		e->suppressed++;
		l->suppressed++;
		snprintf(e->reason, sizeof(e->reason), "%s", reason ? reason : "");
		e->pid = pid;
		e->uid = uid;
		e->gid = gid;
	}
	pthread_mutex_unlock(&l->lock);
	return record;
}

/* Nothing to remember: no connection, nothing counted, its second over, its bucket full again
 * (a fresh entry would start the same). */
static bool idle(const struct kura_quota *l, const struct kura_principal_entry *e, double now)
{
	return !e->first && !e->watches && !e->suppressed &&
		e->refusal_tokens + (now - e->refusal_stamp) >= REFUSAL_BURST &&
		e->tokens + (now - e->stamp) * l->cfg.rate_per_s >= l->cfg.rate_burst;
}

size_t kura_quota_flush(struct kura_quota *l, double now, bool all,
	void (*fn)(const struct kura_refusal_note *n, void *userdata), void *userdata)
{
	struct kura_refusal_note *notes = NULL;
	size_t n = 0, cap = 0;

	pthread_mutex_lock(&l->lock);
	for (unsigned b = 0; b < BUCKETS; b++)
		for (struct kura_principal_entry **p = &l->buckets[b]; *p;) {
			struct kura_principal_entry *e = *p;

			if (e->suppressed && (all || now - e->window >= 1.0)) {
				if (n == cap) {
					size_t ncap = cap ? cap * 2 : 16;
					struct kura_refusal_note *nn = realloc(notes,
						ncap * sizeof(*nn));

					if (!nn)
						goto out; /* the rest waits for the next flush */
					notes = nn;
					cap = ncap;
				}
				note_of(e, &notes[n++]);
			}
			if (idle(l, e, now)) {
				*p = e->next;
				l->principals--;
				free(e);
				continue;
			}
			p = &e->next;
		}
out:
	pthread_mutex_unlock(&l->lock);
	for (size_t i = 0; i < n; i++)
		fn(&notes[i], userdata);
	free(notes);
	return n;
}

unsigned kura_quota_reap(struct kura_quota *l, double now, double seconds)
{
	unsigned n = 0;

	pthread_mutex_lock(&l->lock);
	for (unsigned b = 0; b < BUCKETS; b++)
		for (struct kura_principal_entry *e = l->buckets[b]; e; e = e->next)
			for (struct kura_slot *s = e->first; s; s = s->next)
				if (!s->evicted && !s->busy && !s->watching &&
					now - s->since > seconds) {
					evict(l, s);
					l->evictions--; /* a deadline, not room made */
					n++;
				}
	pthread_mutex_unlock(&l->lock);
	return n;
}

void kura_quota_get_stats(struct kura_quota *l, struct kura_quota_stats *ret)
{
	pthread_mutex_lock(&l->lock);
	*ret = (struct kura_quota_stats){ .connections = l->live,
		.watches = l->watches,
		.principals = l->principals,
		.evictions = l->evictions,
		.refused = l->refused,
		.suppressed = l->suppressed };
	pthread_mutex_unlock(&l->lock);
}

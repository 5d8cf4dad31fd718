/* The vault shared by kurad's threads: its lock, the grants cache and the calls the workload
 * API is made of. Touches plaintext: a fetched value, from the vault into the caller's
 * kura_secbuf. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "keeper.h"
#include "name.h"
#include "policy-index.h"
#include "records.h"

struct kura_grants {
	unsigned refs;
	int64_t rev; /* they are the grants of every revision from the one read up to this one */
	struct kura_grant_list list;
	struct kura_policy_index *index; /* of list: a decision never scans the grants */
};

struct kura_keeper {
	struct kura_vault *vault; /* under lock */
	pthread_mutex_t lock;
	struct kura_grants *grants; /* the latest read, under grants_lock */
	pthread_mutex_t grants_lock;
};

void kura_grants_unref(struct kura_grants *g)
{
	if (!g || __atomic_sub_fetch(&g->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	kura_policy_index_free(g->index);
	kura_grant_list_done(&g->list);
	free(g);
}

struct kura_grants *kura_keeper_grants(struct kura_keeper *k)
{
	struct kura_grants *g;

	pthread_mutex_lock(&k->grants_lock);
	g = k->grants;
	if (g)
		__atomic_add_fetch(&g->refs, 1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&k->grants_lock);
	return g;
}

bool kura_grants_allow(const struct kura_grants *g, const struct kura_identity *id,
	const char *name)
{
	return g && kura_policy_index_allows(g->index, id, name);
}

/* Read the grants as of `rev` and make them the current ones. Under lock. */
static int grants_load(struct kura_keeper *k, int64_t rev, struct kura_err *err)
{
	struct kura_grants *g = calloc(1, sizeof(*g)), *old;
	int r;

	if (!g)
		return -ENOMEM;
	r = kura_grant_list(k->vault, &g->list, err);
	if (r == 0) {
		r = kura_policy_index_new(g->list.items, g->list.n, &g->index);
		if (r < 0)
			kura_grant_list_done(&g->list);
	}
	if (r < 0) {
		free(g);
		return r;
	}
	g->refs = 1;
	g->rev = rev;
	pthread_mutex_lock(&k->grants_lock);
	old = k->grants;
	k->grants = g;
	pthread_mutex_unlock(&k->grants_lock);
	kura_grants_unref(old);
	return 0;
}

/*
 * The grants as of the store's revision now, under lock (inside the caller's read snapshot): a
 * reference in *ret. Decoding every grant record for every request cost more than the rest of
 * a fetch's store work, so they are kept and read again only when the revision has moved past
 * what they are known to cover (kura_keeper_changes extends that while no grant changes): one
 * small read per request, and a revocation, by kurad or by kuractl writing the store directly,
 * counts from the very next request.
 */
static int grants_current(struct kura_keeper *k, struct kura_grants **ret, struct kura_err *err)
{
	struct kura_grants *g;
	int64_t rev;
	int r;

	r = kura_store_revision(kura_vault_store(k->vault), &rev);
	if (r < 0)
		return kura_err_set(err, r, "cannot read the store's revision");
	pthread_mutex_lock(&k->grants_lock);
	g = k->grants;
	if (g && g->rev == rev)
		__atomic_add_fetch(&g->refs, 1, __ATOMIC_RELAXED);
	else
		g = NULL;
	pthread_mutex_unlock(&k->grants_lock);
	if (!g) {
		r = grants_load(k, rev, err);
		if (r < 0)
			return r;
		g = kura_keeper_grants(k);
	}
	*ret = g;
	return 0;
}

int kura_keeper_new(struct kura_vault *v, struct kura_keeper **ret, struct kura_err *err)
{
	struct kura_keeper *k = calloc(1, sizeof(*k));
	int64_t rev = 0;
	int r;

	if (!k || !v) {
		free(k);
		kura_vault_close(v);
		return v ? -ENOMEM : -EINVAL;
	}
	k->vault = v;
	pthread_mutex_init(&k->lock, NULL);
	pthread_mutex_init(&k->grants_lock, NULL);
	r = kura_store_revision(kura_vault_store(v), &rev);
	if (r < 0)
		r = kura_err_set(err, r, "cannot read the store's revision");
	else
		r = grants_load(k, rev, err);
	if (r < 0) {
		kura_keeper_free(k); /* and the vault with it: its keys are wiped on every path */
		return r;
	}
	*ret = k;
	return 0;
}

void kura_keeper_free(struct kura_keeper *k)
{
	if (!k)
		return;
	kura_grants_unref(k->grants);
	kura_vault_close(k->vault);
	pthread_mutex_destroy(&k->lock);
	pthread_mutex_destroy(&k->grants_lock);
	free(k);
}

struct kura_vault *kura_keeper_hold(struct kura_keeper *k)
{
	pthread_mutex_lock(&k->lock);
	return k->vault;
}

void kura_keeper_release(struct kura_keeper *k)
{
	pthread_mutex_unlock(&k->lock);
}

/* Take the lock and a read snapshot, in which the grants and what they decide agree; then the
 * grants current in it, referenced in *ret. */
static int read_begin(struct kura_keeper *k, struct kura_grants **ret, struct kura_err *err)
{
	int r;

	*ret = NULL;
	pthread_mutex_lock(&k->lock);
	r = kura_store_read_begin(kura_vault_store(k->vault));
	if (r < 0) {
		pthread_mutex_unlock(&k->lock);
		return kura_err_set(err, r, "cannot read the store");
	}
	r = grants_current(k, ret, err);
	if (r < 0) {
		kura_store_read_end(kura_vault_store(k->vault));
		pthread_mutex_unlock(&k->lock);
	}
	return r;
}

static void read_end(struct kura_keeper *k, struct kura_grants *g)
{
	kura_grants_unref(g);
	kura_store_read_end(kura_vault_store(k->vault));
	pthread_mutex_unlock(&k->lock);
}

void kura_fetched_done(struct kura_fetched *f)
{
	kura_secbuf_free(f->value);
	f->value = NULL;
}

int kura_keeper_fetch(struct kura_keeper *k, const struct kura_identity *id, const char *name,
	struct kura_fetched *ret, struct kura_err *err)
{
	struct kura_grants *g;
	int r;

	*ret = (struct kura_fetched){ 0 };
	if (kura_name_invalid(name, strlen(name)))
		return -EINVAL;
	r = read_begin(k, &g, err);
	if (r < 0)
		return r;
	/* Not granted looks the same whether or not the secret exists. */
	r = kura_grants_allow(g, id, name) ? 0 : -EACCES;
	if (r == 0)
		r = kura_secret_get(k->vault, name, 0, &ret->value, &ret->info, err);
	if (r == 0)
		r = kura_vault_fingerprint(k->vault, ret->value, ret->fingerprint);
	read_end(k, g);
	if (r < 0)
		kura_fetched_done(ret);
	return r;
}

/* Who asks, under which grants: what kura_secret_list_filtered keeps. matched[i]: whether grant
 * i's selectors match the asker, decided once for the whole listing. */
struct asker {
	const struct kura_grants *g;
	const bool *matched;
};

static bool readable(const char *name, void *userdata)
{
	const struct asker *a = userdata;

	return kura_policy_index_allows_matched(a->g->index, a->matched, name);
}

int kura_keeper_readable(struct kura_keeper *k, const struct kura_identity *id, const char *prefix,
	int (*fn)(const struct kura_secret_info *info, void *userdata), void *userdata,
	int64_t *ret_rev, struct kura_err *err)
{
	struct kura_grants *g;
	bool *matched;
	int r;

	r = read_begin(k, &g, err);
	if (r < 0)
		return r;
	matched = kura_policy_matched(g->list.items, g->list.n, id);
	r = matched ? kura_store_revision(kura_vault_store(k->vault), ret_rev) : -ENOMEM;
	if (r == 0)
		r = kura_secret_each(k->vault, prefix, readable, &(struct asker){ g, matched }, fn,
			userdata, err);
	free(matched);
	read_end(k, g);
	return r;
}

int kura_keeper_grant_list(struct kura_keeper *k, struct kura_grant_list *ret, struct kura_err *err)
{
	int r;

	pthread_mutex_lock(&k->lock);
	r = kura_grant_list(k->vault, ret, err);
	pthread_mutex_unlock(&k->lock);
	return r;
}

int kura_keeper_revision(struct kura_keeper *k, int64_t *ret)
{
	int r;

	pthread_mutex_lock(&k->lock);
	r = kura_store_revision(kura_vault_store(k->vault), ret);
	pthread_mutex_unlock(&k->lock);
	return r;
}

int kura_keeper_changes(struct kura_keeper *k, int64_t since, size_t max,
	void (*fn)(const char *name, int64_t rev, void *userdata), void *userdata,
	int64_t *ret_last)
{
	struct kura_store *st = kura_vault_store(k->vault);
	struct kura_change_list ch = { 0 };
	struct kura_err err = { 0 };
	bool grants_changed = false;
	int64_t now_rev = 0, last;
	int r;

	/* The lock is held for one page only: fetches go on between pages. */
	pthread_mutex_lock(&k->lock);
	r = kura_store_revision(st, &now_rev);
	if (r == 0 && now_rev > since)
		r = kura_store_changes(st, since, max, &ch);
	if (r < 0 || now_rev <= since) {
		pthread_mutex_unlock(&k->lock);
		*ret_last = r < 0 ? now_rev : since;
		return r;
	}
	last = ch.n ? ch.items[ch.n - 1].rev : now_rev;
	for (size_t i = 0; i < ch.n; i++)
		grants_changed = grants_changed ||
			strncmp(ch.items[i].key, KURA_PREFIX_GRANT, strlen(KURA_PREFIX_GRANT)) == 0;
	if (grants_changed) {
		(void)grants_load(k, last, &err);
	} else {
		pthread_mutex_lock(&k->grants_lock);
		if (k->grants && k->grants->rev >= since)
			k->grants->rev = last;
		pthread_mutex_unlock(&k->grants_lock);
	}
	pthread_mutex_unlock(&k->lock);
	for (size_t i = 0; i < ch.n; i++)
		if (strncmp(ch.items[i].key, PREFIX_SECRET, strlen(PREFIX_SECRET)) == 0)
			fn(ch.items[i].key + strlen(PREFIX_SECRET), ch.items[i].rev, userdata);
	kura_change_list_done(&ch);
	*ret_last = last;
	return 0;
}

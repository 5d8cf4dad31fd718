/* The grants indexed by what they cover (policy-index.h). A name is probed once whole (exact
 * grants) and once at each '/' it has (prefix grants), with one running hash: no probe rescans
 * the name. No plaintext here. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy-index.h"

#define FNV_BASIS 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull

/* One distinct pattern: the exact name, or for PREFIX/<star> the prefix with its '/'. */
struct entry {
	const char *key;
	size_t len;
	uint64_t hash;
	bool prefix;
	size_t first, n; /* its grants: order[first .. first + n) */
};

struct kura_policy_index {
	const struct kura_grant *grants;
	size_t *order; /* grant indices, grouped by entry */
	struct entry *entries;
	size_t n_entries;
	size_t *slots; /* open addressing: an entry's index + 1, or 0 for empty */
	size_t mask;
};

static uint64_t hash_bytes(const char *s, size_t len)
{
	uint64_t h = FNV_BASIS;

	for (size_t i = 0; i < len; i++)
		h = (h ^ (uint8_t)s[i]) * FNV_PRIME;
	return h;
}

/* What kura_grant_covers reads in a pattern: "P/<star>" covers the names that start with "P/"
 * and go on; anything else covers itself. */
static struct entry entry_of(const char *pattern)
{
	size_t len = strlen(pattern);
	bool prefix = len >= 2 && strcmp(pattern + len - 2, "/*") == 0;

	if (prefix)
		len--;
	return (struct entry){ .key = pattern,
		.len = len,
		.hash = hash_bytes(pattern, len),
		.prefix = prefix };
}

struct sorted {
	struct entry e;
	size_t grant;
};

static int entry_cmp(const struct entry *a, const struct entry *b)
{
	if (a->prefix != b->prefix)
		return a->prefix ? 1 : -1;
	if (a->len != b->len)
		return a->len < b->len ? -1 : 1;
	return memcmp(a->key, b->key, a->len);
}

static int sorted_cmp(const void *pa, const void *pb)
{
	const struct sorted *a = pa, *b = pb;
	int c = entry_cmp(&a->e, &b->e);

	return c ? c : (a->grant > b->grant) - (a->grant < b->grant);
}

static const struct entry *find(const struct kura_policy_index *x, uint64_t hash, const char *key,
	size_t len, bool prefix)
{
	if (!x->n_entries)
		return NULL;
	for (size_t s = hash & x->mask;; s = (s + 1) & x->mask) {
		const struct entry *e;

		if (!x->slots[s])
			return NULL;
		e = &x->entries[x->slots[s] - 1];
		if (e->hash == hash && e->len == len && e->prefix == prefix &&
			memcmp(e->key, key, len) == 0)
			return e;
	}
}

void kura_policy_index_free(struct kura_policy_index *x)
{
	if (!x)
		return;
	free(x->order);
	free(x->entries);
	free(x->slots);
	free(x);
}

int kura_policy_index_new(const struct kura_grant *grants, size_t n, struct kura_policy_index **ret)
{
	struct kura_policy_index *x = calloc(1, sizeof(*x));
	struct sorted *tmp = calloc(n ? n : 1, sizeof(*tmp));
	size_t cap = 8, m = 0;

	if (x) {
		x->grants = grants;
		x->order = calloc(n ? n : 1, sizeof(*x->order));
		x->entries = calloc(n ? n : 1, sizeof(*x->entries));
	}
	while (cap < 2 * n)
		cap *= 2;
	if (x)
		x->slots = calloc(cap, sizeof(*x->slots));
	if (!x || !tmp || !x->order || !x->entries || !x->slots) {
		free(tmp);
		kura_policy_index_free(x);
		return -ENOMEM;
	}
	x->mask = cap - 1;
	for (size_t i = 0; i < n; i++)
		if (grants[i].pattern) /* none is loaded without; it would cover nothing */
			tmp[m++] = (struct sorted){ entry_of(grants[i].pattern), i };
	qsort(tmp, m, sizeof(*tmp), sorted_cmp);
	for (size_t i = 0; i < m; i++) {
		struct entry *e = x->n_entries ? &x->entries[x->n_entries - 1] : NULL;
		size_t s;

		x->order[i] = tmp[i].grant;
		if (e && entry_cmp(e, &tmp[i].e) == 0) {
			e->n++;
			continue;
		}
		e = &x->entries[x->n_entries++];
		*e = tmp[i].e;
		e->first = i;
		e->n = 1;
		for (s = e->hash & x->mask; x->slots[s]; s = (s + 1) & x->mask)
			;
		x->slots[s] = x->n_entries;
	}
	free(tmp);
	*ret = x;
	return 0;
}

/* Whether grant i, of those covering the name, lets the asker read it. */
typedef bool (*grant_ok)(const struct kura_policy_index *x, size_t i, const void *ctx);

static bool some_ok(const struct kura_policy_index *x, const struct entry *e, grant_ok ok,
	const void *ctx)
{
	for (size_t k = 0; e && k < e->n; k++)
		if (ok(x, x->order[e->first + k], ctx))
			return true;
	return false;
}

static bool covering_ok(const struct kura_policy_index *x, const char *secret, grant_ok ok,
	const void *ctx)
{
	uint64_t h = FNV_BASIS;
	size_t i;

	for (i = 0; secret[i]; i++) {
		h = (h ^ (uint8_t)secret[i]) * FNV_PRIME;
		/* "P/<star>" covers secret when secret[0..i] is "P/" and something follows. */
		if (secret[i] == '/' && secret[i + 1] &&
			some_ok(x, find(x, h, secret, i + 1, true), ok, ctx))
			return true;
	}
	return some_ok(x, find(x, h, secret, i, false), ok, ctx);
}

static bool id_ok(const struct kura_policy_index *x, size_t i, const void *ctx)
{
	return kura_grant_matches(&x->grants[i], ctx);
}

static bool matched_ok(const struct kura_policy_index *x, size_t i, const void *ctx)
{
	(void)x;
	return ((const bool *)ctx)[i];
}

bool kura_policy_index_allows(const struct kura_policy_index *x, const struct kura_identity *id,
	const char *secret)
{
	return covering_ok(x, secret, id_ok, id);
}

bool kura_policy_index_allows_matched(const struct kura_policy_index *x, const bool *matched,
	const char *secret)
{
	return covering_ok(x, secret, matched_ok, matched);
}

bool *kura_policy_matched(const struct kura_grant *grants, size_t n, const struct kura_identity *id)
{
	bool *matched = calloc(n ? n : 1, sizeof(*matched));

	for (size_t i = 0; matched && i < n; i++)
		matched[i] = kura_grant_matches(&grants[i], id);
	return matched;
}

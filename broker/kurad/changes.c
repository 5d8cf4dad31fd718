/* The recent-changes index for long polls: a list of names ordered by their last change, and a
 * keyed hash to find a name's entry. Bounded by its cap; no plaintext. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "changes.h"
#include "tablekey.h"

struct entry {
	struct entry *older, *newer; /* by last change */
	struct entry *chain;         /* in its hash bucket */
	int64_t rev;
	char name[];
};

struct kura_changes {
	struct entry *oldest, *newest;
	struct entry **buckets;
	size_t n_buckets, n, cap;
	int64_t floor;
	struct kura_tablekey *key;
};

static size_t bucket_of(const struct kura_changes *c, const char *name)
{
	return (size_t)(kura_tablekey_hash(c->key, name, strlen(name)) % c->n_buckets);
}

int kura_changes_new(size_t cap, int64_t floor, struct kura_changes **ret)
{
	struct kura_changes *c;
	int r;

	if (cap == 0)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->n_buckets = cap * 2;
	c->buckets = calloc(c->n_buckets, sizeof(*c->buckets));
	r = c->buckets ? kura_tablekey_new(&c->key) : -ENOMEM;
	if (r < 0) {
		free(c->buckets);
		free(c);
		return r;
	}
	c->cap = cap;
	c->floor = floor;
	*ret = c;
	return 0;
}

void kura_changes_reset(struct kura_changes *c, int64_t rev)
{
	while (c->oldest) {
		struct entry *e = c->oldest;

		c->oldest = e->newer;
		free(e);
	}
	c->newest = NULL;
	memset(c->buckets, 0, c->n_buckets * sizeof(*c->buckets));
	c->n = 0;
	c->floor = rev;
}

void kura_changes_free(struct kura_changes *c)
{
	if (!c)
		return;
	kura_changes_reset(c, 0);
	free(c->buckets);
	kura_tablekey_free(c->key);
	free(c);
}

int64_t kura_changes_floor(const struct kura_changes *c)
{
	return c->floor;
}

static void unlink_list(struct kura_changes *c, struct entry *e)
{
	if (e->older)
		e->older->newer = e->newer;
	else
		c->oldest = e->newer;
	if (e->newer)
		e->newer->older = e->older;
	else
		c->newest = e->older;
}

static void unlink_chain(struct kura_changes *c, struct entry *e)
{
	struct entry **p = &c->buckets[bucket_of(c, e->name)];

	while (*p != e)
		p = &(*p)->chain;
	*p = e->chain;
}

int kura_changes_add(struct kura_changes *c, int64_t rev, const char *name)
{
	size_t b = bucket_of(c, name), len;
	struct entry *e;

	for (e = c->buckets[b]; e; e = e->chain)
		if (strcmp(e->name, name) == 0)
			break;
	if (e) {
		unlink_list(c, e);
	} else {
		len = strlen(name);
		e = malloc(sizeof(*e) + len + 1);
		if (!e) {
			kura_changes_reset(c, rev);
			return -ENOMEM;
		}
		memcpy(e->name, name, len + 1);
		e->chain = c->buckets[b];
		c->buckets[b] = e;
		c->n++;
	}
	e->rev = rev;
	e->newer = NULL;
	e->older = c->newest;
	if (c->newest)
		c->newest->newer = e;
	else
		c->oldest = e;
	c->newest = e;
	while (c->n > c->cap) {
		struct entry *old = c->oldest;

		/* Whatever changed at or before the forgotten entry's revision can no longer be
		 * told apart from what did not. */
		c->floor = old->rev;
		unlink_list(c, old);
		unlink_chain(c, old);
		c->n--;
		free(old);
	}
	return 0;
}

int kura_changes_since(const struct kura_changes *c, int64_t since,
	bool (*fn)(const char *name, void *userdata), void *userdata)
{
	int n = 0;

	if (since < c->floor)
		return -ERANGE;
	for (const struct entry *e = c->newest; e && e->rev > since; e = e->older) {
		n++;
		if (!fn(e->name, userdata))
			break;
	}
	return n;
}

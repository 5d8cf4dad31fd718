/* The names of secrets changed lately, newest last, kept in memory for long polls: a watch asks
 * "what changed after revision N" of this index, not of the store, so a poll never holds the
 * store's lock and costs at most the index's size. No plaintext. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kura_changes;

/* An index that keeps up to `cap` names, and is exact for revisions from `floor` on. */
int kura_changes_new(size_t cap, int64_t floor, struct kura_changes **ret);
void kura_changes_free(struct kura_changes *c); /* NULL-safe */

/* name changed at rev (revisions arrive in order). Past cap, the oldest name is forgotten and
 * the floor rises to its revision. -ENOMEM (the index then resets to floor = rev). */
int kura_changes_add(struct kura_changes *c, int64_t rev, const char *name);

/* Forget everything: exact again from rev on (history that could not be read). */
void kura_changes_reset(struct kura_changes *c, int64_t rev);

/* The revision from which the index is exact: a question about anything older is -ERANGE. */
int64_t kura_changes_floor(const struct kura_changes *c);

/*
 * Call fn for each name whose last change is after `since`, newest first, until fn returns false.
 * -ERANGE if since is older than the floor (the caller must say "resync": it cannot tell what
 * changed); else the number of names visited.
 */
int kura_changes_since(const struct kura_changes *c, int64_t since,
	bool (*fn)(const char *name, void *userdata), void *userdata);

/* The grants indexed by what they cover: exact names in a hash table, PREFIX/<star> patterns by
 * their prefix, so that a decision costs the length of the name, not the number of grants. No
 * plaintext here. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "policy.h"

struct kura_policy_index;

/* An index of grants[0..n): it points into them (their patterns), so they must outlive it and
 * not change. -ENOMEM, or 0. */
int kura_policy_index_new(const struct kura_grant *grants, size_t n,
	struct kura_policy_index **ret);
void kura_policy_index_free(struct kura_policy_index *x);

/* kura_policy_allows(grants, n, id, secret), in O(strlen(secret)) plus the selectors of only the
 * grants that cover secret. */
bool kura_policy_index_allows(const struct kura_policy_index *x, const struct kura_identity *id,
	const char *secret);

/* The same when matched[i] already says whether grant i's selectors match the identity (one
 * kura_grant_matches per grant, made once for a run of names such as a listing). */
bool kura_policy_index_allows_matched(const struct kura_policy_index *x, const bool *matched,
	const char *secret);

/* Whether each grant's selectors match id (malloc'd, n entries; NULL when out of memory): the
 * matched argument above. */
bool *kura_policy_matched(const struct kura_grant *grants, size_t n,
	const struct kura_identity *id);

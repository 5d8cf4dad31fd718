/* Grants kept in the store: add, remove, list. No plaintext here. */
#pragma once

#include "policy.h"
#include "vault.h"

#define KURA_PREFIX_GRANT "grant/"

struct kura_grant_list {
	struct kura_grant *items;
	size_t n;
};

void kura_grant_list_done(struct kura_grant_list *l);

/*
 * Store g (validated; its id and creation time are set here). A grant identical to a stored one
 * is not stored twice: *ret_existed says so and the call succeeds. -EINVAL with the broken rule
 * in err.
 */
int kura_grant_add(struct kura_vault *v, struct kura_grant *g, bool *ret_existed,
	struct kura_err *err);

/* Remove the grant with this id. -ENOENT if there is none. */
int kura_grant_remove(struct kura_vault *v, const char *id, struct kura_err *err);

/* Every grant, ordered by id. */
int kura_grant_list(struct kura_vault *v, struct kura_grant_list *ret, struct kura_err *err);

/* Encoding of one grant record (exposed for the fuzz target). */
int kura_grant_encode(const struct kura_grant *g, uint8_t **ret, size_t *ret_len);
int kura_grant_decode(const uint8_t *data, size_t len, struct kura_grant *ret);

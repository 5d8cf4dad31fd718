/* Grants and the policy decision: which secrets an identity may read. Default deny; a grant's
 * selectors must all match; several grants are alternatives. No plaintext here. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "who.h"

#define KURA_GRANT_MAX_LABELS 32u
#define KURA_GRANT_ID_LEN 16u /* hex characters */

struct kura_grant {
	char id[KURA_GRANT_ID_LEN + 1];
	char *pattern; /* a secret name, or PREFIX/<star> for everything below PREFIX/ */
	bool host;
	bool has_uid;
	uid_t uid;
	char *runtime;
	char *image;
	char *digest;
	char *name;
	char **label_keys; /* matched against the identity's own labels only */
	char **label_values;
	size_t n_labels;
	char **image_label_keys; /* ... and these against its image's labels only */
	char **image_label_values;
	size_t n_image_labels;
	int64_t created;
};

void kura_grant_done(struct kura_grant *g);

/*
 * Check a grant as an operator wrote it; NULL if it is sound, else the rule it breaks, fit for an
 * error message. Rules: the pattern is a valid name or PREFIX/<star>; at least one selector; --host
 * excludes the container selectors; an image is sha256:<64 hex> (a tag is never an identity);
 * a digest is repo@sha256:<64 hex>; labels and image labels are each k=v with non-empty k, at
 * most 32, no duplicate key.
 */
const char *kura_grant_invalid(const struct kura_grant *g);

/* Fill g->id from its canonical content: the same grant always has the same id (and a grant
 * without image labels the id it had before they existed). */
void kura_grant_set_id(struct kura_grant *g);

/* Does the pattern of g cover this secret name? */
bool kura_grant_covers(const struct kura_grant *g, const char *secret);

/* Do all selectors of g match id? */
bool kura_grant_matches(const struct kura_grant *g, const struct kura_identity *id);

/* May id read secret, under these grants? */
bool kura_policy_allows(const struct kura_grant *grants, size_t n, const struct kura_identity *id,
	const char *secret);

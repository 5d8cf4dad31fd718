/* Grant validation and matching. The decision is a pure function of the grants and an identity
 * the broker established itself; nothing the peer says enters it. */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "name.h"
#include "policy.h"

void kura_grant_done(struct kura_grant *g)
{
	free(g->pattern);
	free(g->runtime);
	free(g->image);
	free(g->digest);
	free(g->name);
	for (size_t i = 0; i < g->n_labels; i++) {
		free(g->label_keys[i]);
		free(g->label_values[i]);
	}
	free(g->label_keys);
	free(g->label_values);
	for (size_t i = 0; i < g->n_image_labels; i++) {
		free(g->image_label_keys[i]);
		free(g->image_label_values[i]);
	}
	free(g->image_label_keys);
	free(g->image_label_values);
	*g = (struct kura_grant){ 0 };
}

static bool hex64(const char *s)
{
	size_t i;

	for (i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return s[64] == '\0';
}

static bool image_id_ok(const char *s)
{
	return strncmp(s, "sha256:", 7) == 0 && hex64(s + 7);
}

static bool digest_ok(const char *s)
{
	const char *at = strrchr(s, '@');

	/* repo@sha256:<hex>; the repository part is whatever the registry calls it, but it
	 * must exist and hold no space or control character. */
	if (!at || at == s)
		return false;
	for (const char *p = s; p < at; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return false;
	return image_id_ok(at + 1);
}

/* The rule a grant's labels (or image labels) break, or NULL. */
static const char *labels_invalid(char *const *keys, size_t n, bool image)
{
	if (n > KURA_GRANT_MAX_LABELS)
		return image ? "a grant takes at most 32 image labels" :
			       "a grant takes at most 32 labels";
	for (size_t i = 0; i < n; i++) {
		if (!*keys[i])
			return image ? "--image-label takes KEY=VALUE with a non-empty KEY" :
				       "--label takes KEY=VALUE with a non-empty KEY";
		for (size_t j = 0; j < i; j++)
			if (strcmp(keys[i], keys[j]) == 0)
				return image ?
					"a grant cannot name the same image label key twice" :
					"a grant cannot name the same label key twice";
	}
	return NULL;
}

const char *kura_grant_invalid(const struct kura_grant *g)
{
	bool container = g->runtime || g->image || g->digest || g->name || g->n_labels ||
		g->n_image_labels;
	const char *rule;
	size_t len;

	if (!g->pattern)
		return "a grant needs a secret name or PREFIX/*";
	len = strlen(g->pattern);
	if (len >= 2 && strcmp(g->pattern + len - 2, "/*") == 0) {
		if (kura_name_invalid(g->pattern, len - 2))
			return "the prefix before /* must itself be a valid secret name";
	} else if (kura_name_invalid(g->pattern, len)) {
		return "the secret must be a valid name (segments of [A-Za-z0-9._-] joined by '/') "
		       "or PREFIX/*";
	}
	if (!g->host && !g->has_uid && !container)
		return "a grant needs at least one selector (--image, --digest, --name, --label, "
		       "--image-label, --uid, --runtime or --host)";
	if (g->host && container)
		return "--host selects processes in no container; it cannot be combined with "
		       "container selectors";
	if (!g->host && g->has_uid && !container)
		return "--uid alone would match host processes and every container; add --host or "
		       "a container selector";
	if (g->image && !image_id_ok(g->image))
		return "--image takes an image ID, sha256:<64 hex> (a tag is never an identity: "
		       "tags move)";
	if (g->digest && !digest_ok(g->digest))
		return "--digest takes REPOSITORY@sha256:<64 hex>";
	if (g->runtime && !*g->runtime)
		return "--runtime cannot be empty";
	if (g->name && (!*g->name || strlen(g->name) > 255))
		return "--name takes a container name of 1 to 255 bytes";
	rule = labels_invalid(g->label_keys, g->n_labels, false);
	return rule ? rule : labels_invalid(g->image_label_keys, g->n_image_labels, true);
}

static void hash_field(crypto_generichash_state *h, const char *tag, const char *value)
{
	/* Tag, NUL, value, NUL: no two different grants hash the same byte string. */
	crypto_generichash_update(h, (const uint8_t *)tag, strlen(tag) + 1);
	crypto_generichash_update(h, (const uint8_t *)(value ? value : ""),
		value ? strlen(value) + 1 : 0);
}

/* Labels in key order, so --label a=1 --label b=2 is the same grant as the reverse. */
static void hash_labels(crypto_generichash_state *h, const char *tag, char *const *keys,
	char *const *values, size_t n)
{
	size_t order[KURA_GRANT_MAX_LABELS];

	if (n > KURA_GRANT_MAX_LABELS)
		n = KURA_GRANT_MAX_LABELS;
	for (size_t i = 0; i < n; i++)
		order[i] = i;
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && strcmp(keys[order[j - 1]], keys[order[j]]) > 0; j--) {
			size_t t = order[j];

			order[j] = order[j - 1];
			order[j - 1] = t;
		}
	for (size_t i = 0; i < n; i++) {
		hash_field(h, tag, keys[order[i]]);
		hash_field(h, "=", values[order[i]]);
	}
}

void kura_grant_set_id(struct kura_grant *g)
{
	crypto_generichash_state h;
	uint8_t digest[KURA_GRANT_ID_LEN / 2];
	char uid[24];

	crypto_generichash_init(&h, NULL, 0, sizeof(digest));
	hash_field(&h, "pattern", g->pattern);
	hash_field(&h, "host", g->host ? "1" : "0");
	snprintf(uid, sizeof(uid), "%d:%u", g->has_uid, (unsigned)g->uid);
	hash_field(&h, "uid", uid);
	hash_field(&h, "runtime", g->runtime);
	hash_field(&h, "image", g->image);
	hash_field(&h, "digest", g->digest);
	hash_field(&h, "name", g->name);
	hash_labels(&h, "label", g->label_keys, g->label_values, g->n_labels);
	/* Only after the labels and under their own tag: a grant without image labels hashes the
	 * bytes it hashed before they existed, so its id (its key in the store) stays. */
	hash_labels(&h, "image-label", g->image_label_keys, g->image_label_values,
		g->n_image_labels);
	crypto_generichash_final(&h, digest, sizeof(digest));
	sodium_bin2hex(g->id, sizeof(g->id), digest, sizeof(digest));
}

bool kura_grant_covers(const struct kura_grant *g, const char *secret)
{
	size_t len = strlen(g->pattern);

	if (len >= 2 && strcmp(g->pattern + len - 2, "/*") == 0)
		/* the pattern "db/<star>" covers "db/x" and "db/x/y", never "db" or "db2/x". */
		return strncmp(secret, g->pattern, len - 1) == 0 && secret[len - 1] != '\0';
	return strcmp(secret, g->pattern) == 0;
}

static const char *label_of(const char *const *keys, const char *const *values, size_t n,
	const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(keys[i], key) == 0)
			return values[i];
	return NULL;
}

/* Does every want_keys[i]=want_values[i] appear among the n labels keys/values? */
static bool labels_match(char *const *want_keys, char *const *want_values, size_t n_want,
	const char *const *keys, const char *const *values, size_t n)
{
	for (size_t i = 0; i < n_want; i++) {
		const char *v = label_of(keys, values, n, want_keys[i]);

		if (!v || strcmp(v, want_values[i]) != 0)
			return false;
	}
	return true;
}

bool kura_grant_matches(const struct kura_grant *g, const struct kura_identity *id)
{
	if (g->host != id->host)
		return false;
	if (g->has_uid && g->uid != id->uid)
		return false;
	if (id->host)
		return true; /* a host grant carries no container selectors (kura_grant_invalid) */
	if (g->runtime && (!id->runtime || strcmp(g->runtime, id->runtime) != 0))
		return false;
	if (g->image && (!id->image_id || strcmp(g->image, id->image_id) != 0))
		return false;
	if (g->name && (!id->name || strcmp(g->name, id->name) != 0))
		return false;
	if (g->digest) {
		bool found = false;

		for (size_t i = 0; i < id->n_digests && !found; i++)
			found = strcmp(g->digest, id->digests[i]) == 0;
		if (!found)
			return false;
	}
	/* Each kind of label selector sees only its own set: an image's LABEL never satisfies
	 * --label, a run label never --image-label. */
	return labels_match(g->label_keys, g->label_values, g->n_labels, id->label_keys,
		       id->label_values, id->n_labels) &&
		labels_match(g->image_label_keys, g->image_label_values, g->n_image_labels,
			id->image_label_keys, id->image_label_values, id->n_image_labels);
}

bool kura_policy_allows(const struct kura_grant *grants, size_t n, const struct kura_identity *id,
	const char *secret)
{
	for (size_t i = 0; i < n; i++)
		if (kura_grant_covers(&grants[i], secret) && kura_grant_matches(&grants[i], id))
			return true;
	return false;
}

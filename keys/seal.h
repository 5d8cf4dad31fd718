/* Envelope sealing of secret values: one random DEK per secret version seals the value with
 * XChaCha20-Poly1305; the current KEK wraps the DEK. Touches plaintext. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "keyring.h"
#include "secbuf.h"

/*
 * What the store keeps for one secret version: nothing here is secret. Both boxes are bound
 * by their additional data to the secret's name and version (and the DEK box to its KEK id),
 * so neither can be moved to another secret, version or KEK and still open.
 */
#define KURA_SECRET_ID_BYTES 16u

struct kura_sealed {
	uint8_t secret_id[KURA_SECRET_ID_BYTES]; /* the incarnation of the name it was sealed for */
	uint32_t kek_id;
	uint8_t *dek; /* the DEK wrapped by KEK kek_id */
	size_t dek_len;
	uint8_t *value; /* the value sealed by the DEK */
	size_t value_len;
};

/*
 * Seal plain as version `version` of name under a new DEK wrapped by the current KEK. secret_id
 * names this incarnation of the name (random when the secret is created), so versions of a
 * destroyed secret never open as versions of a new one with the same name. -ENOKEY if the
 * keyring has no current KEK.
 */
int kura_seal(const struct kura_keyring *kr, const char *name,
	const uint8_t secret_id[KURA_SECRET_ID_BYTES], uint64_t version,
	const struct kura_secbuf *plain, struct kura_sealed *ret);

/* Open a sealed version into guarded memory (bound to s->secret_id: the caller checks that
 * this is the live incarnation). -ENOKEY if its KEK is not in the keyring;
 * -EBADMSG if either box fails to authenticate (altered, moved, or another key); -EPROTO if
 * malformed. */
int kura_unseal(const struct kura_keyring *kr, const char *name, uint64_t version,
	const struct kura_sealed *s, struct kura_secbuf **ret);

/* Re-wrap the DEK of s under the current KEK, in place; the value box is not touched. The old
 * wrapped DEK is freed. Errors as kura_unseal; s is unchanged on failure. */
int kura_rewrap(const struct kura_keyring *kr, const char *name, uint64_t version,
	struct kura_sealed *s);

/* Whether the DEK of s opens under its KEK, without opening the value: 0, or the errors of
 * kura_unseal. */
int kura_dek_check(const struct kura_keyring *kr, const char *name, uint64_t version,
	const struct kura_sealed *s);

/* Size of the plaintext inside a value box. */
size_t kura_sealed_plain_len(const struct kura_sealed *s);

void kura_sealed_done(struct kura_sealed *s);

/* The KEK keyring: versioned key-encryption keys, each random and kept wrapped by the master
 * key. Opaque on purpose: callers name KEKs by id and never see their bytes, so key custody can
 * move into its own process behind this same interface. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "secbuf.h"

struct kura_keyring;

int kura_keyring_new(struct kura_keyring **ret);
void kura_keyring_free(struct kura_keyring *kr);

/* Adds a fresh random KEK under id (ids start at 1). -EEXIST if id is taken, -EINVAL for 0. */
int kura_keyring_generate(struct kura_keyring *kr, uint32_t id);

/*
 * Unwraps a stored KEK with the master key and adds it under id. The box is bound to its id:
 * a box moved to another id does not open. -EKEYREJECTED when it does not authenticate (the
 * wrong master key, or an altered box), -EPROTO when it is not a KEK box at all.
 */
int kura_keyring_unwrap(struct kura_keyring *kr, const struct kura_secbuf *master, uint32_t id,
	const uint8_t *box, size_t len);

/* The KEK id wrapped by master, for storing. -ENOKEY if the keyring has no such KEK. */
int kura_keyring_wrap(const struct kura_keyring *kr, const struct kura_secbuf *master, uint32_t id,
	uint8_t **ret_box, size_t *ret_len);

/* Wipes and forgets KEK id. -ENOKEY if absent. */
int kura_keyring_drop(struct kura_keyring *kr, uint32_t id);

/* The KEK that new DEKs are wrapped with. -ENOKEY if absent. */
int kura_keyring_set_current(struct kura_keyring *kr, uint32_t id);
uint32_t kura_keyring_current(const struct kura_keyring *kr); /* 0: none */

bool kura_keyring_has(const struct kura_keyring *kr, uint32_t id);

/*
 * The record key authenticates the vault's own metadata (which version of a secret is current,
 * which incarnation of a name is live), which no AEAD box covers. Random, one per store, kept
 * wrapped by the master key beside the KEKs: `key rekey` rewraps it, `key rotate` keeps it.
 */
#define KURA_MAC_BYTES 32u

int kura_keyring_generate_record_key(struct kura_keyring *kr);
int kura_keyring_wrap_record_key(const struct kura_keyring *kr, const struct kura_secbuf *master,
	uint8_t **ret_box, size_t *ret_len);
/* -EKEYREJECTED when the box does not open with master, -EPROTO when malformed. */
int kura_keyring_unwrap_record_key(struct kura_keyring *kr, const struct kura_secbuf *master,
	const uint8_t *box, size_t len);

/* Keyed BLAKE2b-256 of data under the record key. -ENOKEY if the keyring has none. */
int kura_keyring_mac(const struct kura_keyring *kr, const uint8_t *data, size_t len,
	uint8_t mac[KURA_MAC_BYTES]);

/* A keyed fingerprint of a value for the audit log: BLAKE2b-128 under a key derived from the
 * record key, so equal values show as equal without the fingerprint revealing the value or
 * allowing a guess to be checked by someone without the key. -ENOKEY without a record key. */
#define KURA_FINGERPRINT_BYTES 16u
int kura_keyring_fingerprint(const struct kura_keyring *kr, const uint8_t *data, size_t len,
	uint8_t out[KURA_FINGERPRINT_BYTES]);

/* Whether mac is the record key's MAC of data (constant time). */
bool kura_keyring_mac_ok(const struct kura_keyring *kr, const uint8_t *data, size_t len,
	const uint8_t mac[KURA_MAC_BYTES]);

static inline void kura_keyring_freep(struct kura_keyring **kr)
{
	kura_keyring_free(*kr);
}

#define _cleanup_keyring_ _cleanup_(kura_keyring_freep)

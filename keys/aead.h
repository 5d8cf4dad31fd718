/* XChaCha20-Poly1305-IETF boxes with a format byte and a random nonce: the one sealing
 * primitive under every layer of the key hierarchy. Internal to keys/. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "secbuf.h"

#define KURA_AEAD_FORMAT 0x01u
#define KURA_AEAD_KEY_BYTES 32u
#define KURA_AEAD_OVERHEAD (1u + 24u + 16u) /* format byte, nonce, tag */

/* box = format || nonce || ciphertext+tag, in plain malloc'd memory (it is ciphertext). */
int kura_aead_seal(const uint8_t key[KURA_AEAD_KEY_BYTES], const uint8_t *ad, size_t ad_len,
	const uint8_t *plain, size_t plain_len, uint8_t **ret_box, size_t *ret_len);

/* Opens box into out, which must have room for len - KURA_AEAD_OVERHEAD bytes.
 * -EBADMSG when it does not authenticate (wrong key, other additional data, any flipped
 * byte); -EPROTO for an unknown format byte or a box too short to be one. */
int kura_aead_open(const uint8_t key[KURA_AEAD_KEY_BYTES], const uint8_t *ad, size_t ad_len,
	const uint8_t *box, size_t len, struct kura_secbuf *out);

struct kura_keyring;

/*
 * The keyring's one guarded buffer for a DEK in use, taken under its lock and wiped when given
 * back. A DEK lives for microseconds; a fresh guarded allocation for each (nine system calls:
 * mmap, mprotect, mlock, madvise and their undoing) made up two thirds of a key rotation.
 */
struct kura_secbuf *kura_keyring_dek_take(const struct kura_keyring *kr);
void kura_keyring_dek_release(const struct kura_keyring *kr);

/* The bytes of KEK id, or NULL. Only keys/ ever sees them. */
const uint8_t *kura_keyring_key(const struct kura_keyring *kr, uint32_t id);

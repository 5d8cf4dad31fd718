/* XChaCha20-Poly1305-IETF with a format byte and random 192-bit nonces (safe to draw at
 * random for any number of messages). Opens into guarded memory only. */
#include <errno.h>
#include <string.h>

#include <sodium.h>

#include "aead.h"

#define NONCE_BYTES crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_BYTES crypto_aead_xchacha20poly1305_ietf_ABYTES

_Static_assert(KURA_AEAD_OVERHEAD == 1 + NONCE_BYTES + TAG_BYTES, "overhead");
_Static_assert(KURA_AEAD_KEY_BYTES == crypto_aead_xchacha20poly1305_ietf_KEYBYTES, "key size");

int kura_keys_init(void)
{
	return sodium_init() < 0 ? -EIO : 0;
}

int kura_aead_seal(const uint8_t key[KURA_AEAD_KEY_BYTES], const uint8_t *ad, size_t ad_len,
	const uint8_t *plain, size_t plain_len, uint8_t **ret_box, size_t *ret_len)
{
	size_t len = KURA_AEAD_OVERHEAD + plain_len;
	unsigned long long clen;
	uint8_t *box;

	box = malloc(len);
	if (!box)
		return -ENOMEM;
	box[0] = KURA_AEAD_FORMAT;
	randombytes_buf(box + 1, NONCE_BYTES);
	crypto_aead_xchacha20poly1305_ietf_encrypt(box + 1 + NONCE_BYTES, &clen, plain, plain_len,
		ad, ad_len, NULL, box + 1, key);
	*ret_box = box;
	*ret_len = len;
	return 0;
}

int kura_aead_open(const uint8_t key[KURA_AEAD_KEY_BYTES], const uint8_t *ad, size_t ad_len,
	const uint8_t *box, size_t len, struct kura_secbuf *out)
{
	unsigned long long plen;

	if (len < KURA_AEAD_OVERHEAD || box[0] != KURA_AEAD_FORMAT)
		return -EPROTO;
	if (out->cap < len - KURA_AEAD_OVERHEAD)
		return -ENOBUFS;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(out->data, &plen, NULL,
		    box + 1 + NONCE_BYTES, len - 1 - NONCE_BYTES, ad, ad_len, box + 1, key) != 0) {
		sodium_memzero(out->data, out->cap);
		out->len = 0;
		return -EBADMSG;
	}
	out->len = (size_t)plen;
	return 0;
}

/* Hash-table keys in guarded memory, and the keyed hash (libsodium's crypto_shorthash,
 * SipHash-2-4) over them. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "secbuf.h"
#include "tablekey.h"

struct kura_tablekey {
	struct kura_secbuf *key;
};

int kura_tablekey_new(struct kura_tablekey **ret)
{
	struct kura_tablekey *k = calloc(1, sizeof(*k));
	int r;

	if (!k)
		return -ENOMEM;
	r = kura_secbuf_random(crypto_shorthash_KEYBYTES, &k->key);
	if (r < 0) {
		free(k);
		return r;
	}
	*ret = k;
	return 0;
}

void kura_tablekey_free(struct kura_tablekey *k)
{
	if (!k)
		return;
	kura_secbuf_free(k->key);
	free(k);
}

uint64_t kura_tablekey_hash(const struct kura_tablekey *k, const void *data, size_t len)
{
	uint8_t out[crypto_shorthash_BYTES];
	uint64_t h;

	crypto_shorthash(out, data, len, k->key->data);
	memcpy(&h, out, sizeof(h));
	return h;
}

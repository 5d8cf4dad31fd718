/* The audit log's MAC chain: K(0) from the starting key, forward evolution, record MACs
 * (BLAKE2b). Touches key material, only ever in guarded buffers. */
#include <errno.h>
#include <string.h>

#include <sodium.h>

#include "chain.h"

_Static_assert(KURA_CHAIN_KEY_BYTES >= crypto_generichash_KEYBYTES_MIN &&
		KURA_CHAIN_KEY_BYTES <= crypto_generichash_KEYBYTES_MAX,
	"a chain key is a BLAKE2b key");

static const uint8_t mac_label[] = "kura/audit/1";        /* the NUL goes into the MAC too */
static const char evolve_label[] = "kura/audit/evolve/1"; /* without its NUL */

int kura_chain_start(struct kura_secbuf **ret)
{
	return kura_secbuf_random(KURA_CHAIN_KEY_BYTES, ret);
}

/* The key after from, written into a new buffer. */
static int next_key(const struct kura_secbuf *from, struct kura_secbuf **ret)
{
	struct kura_secbuf *next;
	int r;

	if (from->len != KURA_CHAIN_KEY_BYTES)
		return -EINVAL;
	r = kura_secbuf_new(KURA_CHAIN_KEY_BYTES, &next);
	if (r < 0)
		return r;
	crypto_generichash(next->data, KURA_CHAIN_KEY_BYTES, (const uint8_t *)evolve_label,
		strlen(evolve_label), from->data, from->len);
	next->len = KURA_CHAIN_KEY_BYTES;
	*ret = next;
	return 0;
}

int kura_chain_first(const struct kura_secbuf *start, struct kura_secbuf **ret)
{
	return next_key(start, ret);
}

int kura_chain_evolve(struct kura_secbuf **key)
{
	struct kura_secbuf *next;
	int r = next_key(*key, &next);

	if (r < 0)
		return r;
	kura_secbuf_free(*key);
	*key = next;
	return 0;
}

void kura_chain_mac(const struct kura_secbuf *key, const uint8_t prev[KURA_CHAIN_MAC_BYTES],
	const uint8_t *record, size_t len, uint8_t out[KURA_CHAIN_MAC_BYTES])
{
	crypto_generichash_state h;

	crypto_generichash_init(&h, key->data, key->len, KURA_CHAIN_MAC_BYTES);
	crypto_generichash_update(&h, mac_label, sizeof(mac_label));
	crypto_generichash_update(&h, prev, KURA_CHAIN_MAC_BYTES);
	crypto_generichash_update(&h, record, len);
	crypto_generichash_final(&h, out, KURA_CHAIN_MAC_BYTES);
	sodium_memzero(&h, sizeof(h));
}

bool kura_chain_mac_ok(const struct kura_secbuf *key, const uint8_t prev[KURA_CHAIN_MAC_BYTES],
	const uint8_t *record, size_t len, const uint8_t mac[KURA_CHAIN_MAC_BYTES])
{
	uint8_t want[KURA_CHAIN_MAC_BYTES];
	bool ok;

	kura_chain_mac(key, prev, record, len, want);
	ok = sodium_memcmp(want, mac, sizeof(want)) == 0;
	sodium_memzero(want, sizeof(want));
	return ok;
}

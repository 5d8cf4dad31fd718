/* The KEK keyring: unwrapped KEKs in guarded memory, wrapped by the master key for storage.
 * Touches key material. */
#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include <sodium.h>

#include "aead.h"
#include "keyring.h"
#include "master.h"

struct kek {
	uint32_t id;
	struct kura_secbuf *key;
};

struct dek_scratch {
	pthread_mutex_t lock;
	struct kura_secbuf *buf;
};

struct kura_keyring {
	struct kek *keks;
	size_t n;
	uint32_t current;
	struct kura_secbuf *record_key;
	struct dek_scratch *scratch; /* a pointer, so a const keyring can still lend it */
};

/* Additional data for a wrapped KEK: a domain label and the KEK id, so a box cannot be
 * replayed as another KEK. */
static size_t kek_ad(uint32_t id, uint8_t ad[static 16])
{
	static const char label[] = "kura/kek/1"; /* 10 bytes + NUL */
	uint32_t be = htobe32(id);

	memcpy(ad, label, sizeof(label));
	memcpy(ad + sizeof(label), &be, sizeof(be));
	return sizeof(label) + sizeof(be);
}

int kura_keyring_new(struct kura_keyring **ret)
{
	struct kura_keyring *kr = calloc(1, sizeof(*kr));

	if (!kr)
		return -ENOMEM;
	kr->scratch = calloc(1, sizeof(*kr->scratch));
	if (!kr->scratch || kura_secbuf_new(KURA_AEAD_KEY_BYTES, &kr->scratch->buf) < 0) {
		free(kr->scratch);
		free(kr);
		return -ENOMEM;
	}
	pthread_mutex_init(&kr->scratch->lock, NULL);
	*ret = kr;
	return 0;
}

void kura_keyring_free(struct kura_keyring *kr)
{
	if (!kr)
		return;
	for (size_t i = 0; i < kr->n; i++)
		kura_secbuf_free(kr->keks[i].key);
	free(kr->keks);
	kura_secbuf_free(kr->record_key);
	pthread_mutex_destroy(&kr->scratch->lock);
	kura_secbuf_free(kr->scratch->buf);
	free(kr->scratch);
	free(kr);
}

static struct kek *find(const struct kura_keyring *kr, uint32_t id)
{
	for (size_t i = 0; i < kr->n; i++)
		if (kr->keks[i].id == id)
			return &kr->keks[i];
	return NULL;
}

/* Takes key on success. */
static int add(struct kura_keyring *kr, uint32_t id, struct kura_secbuf *key)
{
	struct kek *keks;

	if (id == 0)
		return -EINVAL;
	if (find(kr, id))
		return -EEXIST;
	/* Only the array of pointers moves; the key bytes stay in their guarded pages. */
	keks = realloc(kr->keks, (kr->n + 1) * sizeof(*keks));
	if (!keks)
		return -ENOMEM;
	kr->keks = keks;
	kr->keks[kr->n++] = (struct kek){ .id = id, .key = key };
	return 0;
}

int kura_keyring_generate(struct kura_keyring *kr, uint32_t id)
{
	struct kura_secbuf *key;
	int r;

	r = kura_secbuf_random(KURA_AEAD_KEY_BYTES, &key);
	if (r < 0)
		return r;
	r = add(kr, id, key);
	if (r < 0)
		kura_secbuf_free(key);
	return r;
}

int kura_keyring_unwrap(struct kura_keyring *kr, const struct kura_secbuf *master, uint32_t id,
	const uint8_t *box, size_t len)
{
	struct kura_secbuf *key;
	uint8_t ad[16];
	size_t ad_len = kek_ad(id, ad);
	int r;

	if (master->len != KURA_MASTER_KEY_BYTES)
		return -EINVAL;
	if (len != KURA_AEAD_OVERHEAD + KURA_AEAD_KEY_BYTES)
		return -EPROTO;
	r = kura_secbuf_new(KURA_AEAD_KEY_BYTES, &key);
	if (r < 0)
		return r;
	r = kura_aead_open(master->data, ad, ad_len, box, len, key);
	if (r == 0)
		r = add(kr, id, key);
	if (r < 0) {
		kura_secbuf_free(key);
		return r == -EBADMSG ? -EKEYREJECTED : r;
	}
	return 0;
}

int kura_keyring_wrap(const struct kura_keyring *kr, const struct kura_secbuf *master, uint32_t id,
	uint8_t **ret_box, size_t *ret_len)
{
	const struct kek *k = find(kr, id);
	uint8_t ad[16];
	size_t ad_len = kek_ad(id, ad);

	if (!k)
		return -ENOKEY;
	if (master->len != KURA_MASTER_KEY_BYTES)
		return -EINVAL;
	return kura_aead_seal(master->data, ad, ad_len, k->key->data, k->key->len, ret_box,
		ret_len);
}

int kura_keyring_drop(struct kura_keyring *kr, uint32_t id)
{
	struct kek *k = find(kr, id);
	size_t i;

	if (!k)
		return -ENOKEY;
	i = (size_t)(k - kr->keks);
	kura_secbuf_free(k->key);
	memmove(&kr->keks[i], &kr->keks[i + 1], (kr->n - i - 1) * sizeof(*k));
	kr->n--;
	if (kr->current == id)
		kr->current = 0;
	return 0;
}

int kura_keyring_set_current(struct kura_keyring *kr, uint32_t id)
{
	if (!find(kr, id))
		return -ENOKEY;
	kr->current = id;
	return 0;
}

uint32_t kura_keyring_current(const struct kura_keyring *kr)
{
	return kr->current;
}

bool kura_keyring_has(const struct kura_keyring *kr, uint32_t id)
{
	return find(kr, id) != NULL;
}

const uint8_t *kura_keyring_key(const struct kura_keyring *kr, uint32_t id)
{
	const struct kek *k = find(kr, id);

	return k ? k->key->data : NULL;
}

static const uint8_t record_key_ad[] = "kura/record-key/1";

int kura_keyring_generate_record_key(struct kura_keyring *kr)
{
	struct kura_secbuf *key;
	int r;

	if (kr->record_key)
		return -EEXIST;
	r = kura_secbuf_random(KURA_AEAD_KEY_BYTES, &key);
	if (r < 0)
		return r;
	kr->record_key = key;
	return 0;
}

int kura_keyring_wrap_record_key(const struct kura_keyring *kr, const struct kura_secbuf *master,
	uint8_t **ret_box, size_t *ret_len)
{
	if (!kr->record_key)
		return -ENOKEY;
	if (master->len != KURA_MASTER_KEY_BYTES)
		return -EINVAL;
	return kura_aead_seal(master->data, record_key_ad, sizeof(record_key_ad),
		kr->record_key->data, kr->record_key->len, ret_box, ret_len);
}

int kura_keyring_unwrap_record_key(struct kura_keyring *kr, const struct kura_secbuf *master,
	const uint8_t *box, size_t len)
{
	struct kura_secbuf *key;
	int r;

	if (kr->record_key)
		return -EEXIST;
	if (master->len != KURA_MASTER_KEY_BYTES)
		return -EINVAL;
	if (len != KURA_AEAD_OVERHEAD + KURA_AEAD_KEY_BYTES)
		return -EPROTO;
	r = kura_secbuf_new(KURA_AEAD_KEY_BYTES, &key);
	if (r < 0)
		return r;
	r = kura_aead_open(master->data, record_key_ad, sizeof(record_key_ad), box, len, key);
	if (r < 0) {
		kura_secbuf_free(key);
		return r == -EBADMSG ? -EKEYREJECTED : r;
	}
	kr->record_key = key;
	return 0;
}

int kura_keyring_mac(const struct kura_keyring *kr, const uint8_t *data, size_t len,
	uint8_t mac[KURA_MAC_BYTES])
{
	static const uint8_t label[] = "kura/record-mac/1";
	crypto_generichash_state h;

	if (!kr->record_key)
		return -ENOKEY;
	crypto_generichash_init(&h, kr->record_key->data, kr->record_key->len, KURA_MAC_BYTES);
	crypto_generichash_update(&h, label, sizeof(label));
	crypto_generichash_update(&h, data, len);
	crypto_generichash_final(&h, mac, KURA_MAC_BYTES);
	sodium_memzero(&h, sizeof(h));
	return 0;
}

int kura_keyring_fingerprint(const struct kura_keyring *kr, const uint8_t *data, size_t len,
	uint8_t out[KURA_FINGERPRINT_BYTES])
{
	static const char label[] = "kura/audit-fingerprint/1";
	uint8_t key[crypto_generichash_KEYBYTES];

	if (!kr->record_key)
		return -ENOKEY;
	/* Its own key, not the record key itself: a fingerprint can never pass as a MAC. */
	crypto_generichash(key, sizeof(key), (const uint8_t *)label, sizeof(label),
		kr->record_key->data, kr->record_key->len);
	crypto_generichash(out, KURA_FINGERPRINT_BYTES, data, len, key, sizeof(key));
	sodium_memzero(key, sizeof(key));
	return 0;
}

bool kura_keyring_mac_ok(const struct kura_keyring *kr, const uint8_t *data, size_t len,
	const uint8_t mac[KURA_MAC_BYTES])
{
	uint8_t want[KURA_MAC_BYTES];
	bool ok;

	if (kura_keyring_mac(kr, data, len, want) < 0)
		return false;
	ok = sodium_memcmp(want, mac, KURA_MAC_BYTES) == 0;
	sodium_memzero(want, sizeof(want));
	return ok;
}

struct kura_secbuf *kura_keyring_dek_take(const struct kura_keyring *kr)
{
	pthread_mutex_lock(&kr->scratch->lock);
	return kr->scratch->buf;
}

void kura_keyring_dek_release(const struct kura_keyring *kr)
{
	sodium_memzero(kr->scratch->buf->data, kr->scratch->buf->cap);
	kr->scratch->buf->len = 0;
	pthread_mutex_unlock(&kr->scratch->lock);
}

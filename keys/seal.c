/* Envelope sealing: per-version DEKs, values sealed by DEKs, DEKs wrapped by KEKs. Touches
 * plaintext (values and DEKs), only ever in guarded buffers. */
#include <endian.h>
#include <errno.h>
#include <string.h>

#include <sodium.h>

#include "aead.h"
#include "seal.h"

#define NAME_MAX_BYTES 255u
#define AD_MAX (16u + NAME_MAX_BYTES + 1u + KURA_SECRET_ID_BYTES + 8u + 4u)

/*
 * Additional data: label NUL name NUL secret_id be64(version) [be32(kek_id)]. The label
 * separates the two kinds of box; the NUL after the name keeps names apart (names cannot hold
 * NUL), and everything after it is fixed width. The value box does not bind the KEK id: `key
 * rotate` rewraps DEKs but never re-encrypts values.
 */
static int make_ad(const char *label, const char *name, const uint8_t *secret_id, uint64_t version,
	const uint32_t *kek_id, uint8_t ad[static AD_MAX], size_t *ret_len)
{
	size_t label_len = strlen(label) + 1, name_len = strlen(name) + 1, n = 0;
	uint64_t ver = htobe64(version);

	if (name_len - 1 == 0 || name_len - 1 > NAME_MAX_BYTES || label_len > 16)
		return -EINVAL;
	memcpy(ad + n, label, label_len);
	n += label_len;
	memcpy(ad + n, name, name_len);
	n += name_len;
	memcpy(ad + n, secret_id, KURA_SECRET_ID_BYTES);
	n += KURA_SECRET_ID_BYTES;
	memcpy(ad + n, &ver, sizeof(ver));
	n += sizeof(ver);
	if (kek_id) {
		uint32_t id = htobe32(*kek_id);

		memcpy(ad + n, &id, sizeof(id));
		n += sizeof(id);
	}
	*ret_len = n;
	return 0;
}

static int wrap_dek(const struct kura_keyring *kr, uint32_t kek_id, const char *name,
	const uint8_t *secret_id, uint64_t version, const struct kura_secbuf *dek, uint8_t **ret,
	size_t *ret_len)
{
	const uint8_t *kek = kura_keyring_key(kr, kek_id);
	uint8_t ad[AD_MAX];
	size_t ad_len;
	int r;

	if (!kek)
		return -ENOKEY;
	r = make_ad("kura/dek/1", name, secret_id, version, &kek_id, ad, &ad_len);
	if (r < 0)
		return r;
	return kura_aead_seal(kek, ad, ad_len, dek->data, dek->len, ret, ret_len);
}

/* Open the DEK box of s into dek (the keyring's scratch buffer, held by the caller). */
static int unwrap_dek(const struct kura_keyring *kr, const char *name, uint64_t version,
	const struct kura_sealed *s, struct kura_secbuf *dek)
{
	const uint8_t *kek = kura_keyring_key(kr, s->kek_id);
	uint8_t ad[AD_MAX];
	size_t ad_len;
	int r;

	if (!kek)
		return -ENOKEY;
	if (s->dek_len != KURA_AEAD_OVERHEAD + KURA_AEAD_KEY_BYTES)
		return -EPROTO;
	r = make_ad("kura/dek/1", name, s->secret_id, version, &s->kek_id, ad, &ad_len);
	if (r < 0)
		return r;
	return kura_aead_open(kek, ad, ad_len, s->dek, s->dek_len, dek);
}

int kura_seal(const struct kura_keyring *kr, const char *name,
	const uint8_t secret_id[KURA_SECRET_ID_BYTES], uint64_t version,
	const struct kura_secbuf *plain, struct kura_sealed *ret)
{
	struct kura_sealed s = { .kek_id = kura_keyring_current(kr) };
	struct kura_secbuf *dek;
	uint8_t ad[AD_MAX];
	size_t ad_len;
	int r;

	if (s.kek_id == 0)
		return -ENOKEY;
	memcpy(s.secret_id, secret_id, KURA_SECRET_ID_BYTES);
	r = make_ad("kura/value/1", name, secret_id, version, NULL, ad, &ad_len);
	if (r < 0)
		return r;
	dek = kura_keyring_dek_take(kr);
	randombytes_buf(dek->data, KURA_AEAD_KEY_BYTES);
	dek->len = KURA_AEAD_KEY_BYTES;
	r = kura_aead_seal(dek->data, ad, ad_len, plain->data, plain->len, &s.value, &s.value_len);
	if (r == 0)
		r = wrap_dek(kr, s.kek_id, name, secret_id, version, dek, &s.dek, &s.dek_len);
	kura_keyring_dek_release(kr);
	if (r < 0) {
		kura_sealed_done(&s);
		return r;
	}
	*ret = s;
	return 0;
}

int kura_unseal(const struct kura_keyring *kr, const char *name, uint64_t version,
	const struct kura_sealed *s, struct kura_secbuf **ret)
{
	_cleanup_secbuf_ struct kura_secbuf *plain = NULL;
	struct kura_secbuf *dek;
	uint8_t ad[AD_MAX];
	size_t ad_len;
	int r;

	if (s->value_len < KURA_AEAD_OVERHEAD)
		return -EPROTO;
	r = make_ad("kura/value/1", name, s->secret_id, version, NULL, ad, &ad_len);
	if (r < 0)
		return r;
	r = kura_secbuf_new(s->value_len - KURA_AEAD_OVERHEAD, &plain);
	if (r < 0)
		return r;
	dek = kura_keyring_dek_take(kr);
	r = unwrap_dek(kr, name, version, s, dek);
	if (r == 0)
		r = kura_aead_open(dek->data, ad, ad_len, s->value, s->value_len, plain);
	kura_keyring_dek_release(kr);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(plain);
	return 0;
}

int kura_rewrap(const struct kura_keyring *kr, const char *name, uint64_t version,
	struct kura_sealed *s)
{
	uint32_t current = kura_keyring_current(kr);
	struct kura_secbuf *dek;
	uint8_t *box = NULL;
	size_t len;
	int r;

	if (current == 0)
		return -ENOKEY;
	dek = kura_keyring_dek_take(kr);
	r = unwrap_dek(kr, name, version, s, dek);
	if (r == 0)
		r = wrap_dek(kr, current, name, s->secret_id, version, dek, &box, &len);
	kura_keyring_dek_release(kr);
	if (r < 0)
		return r;
	free(s->dek);
	s->dek = box;
	s->dek_len = len;
	s->kek_id = current;
	return 0;
}

int kura_dek_check(const struct kura_keyring *kr, const char *name, uint64_t version,
	const struct kura_sealed *s)
{
	struct kura_secbuf *dek = kura_keyring_dek_take(kr);
	int r = unwrap_dek(kr, name, version, s, dek);

	kura_keyring_dek_release(kr);
	return r;
}

size_t kura_sealed_plain_len(const struct kura_sealed *s)
{
	return s->value_len >= KURA_AEAD_OVERHEAD ? s->value_len - KURA_AEAD_OVERHEAD : 0;
}

void kura_sealed_done(struct kura_sealed *s)
{
	free(s->dek);
	free(s->value);
	*s = (struct kura_sealed){ 0 };
}

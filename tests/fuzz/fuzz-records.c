/* libFuzzer target for every decoder of store records and keys (records.h, grant.h) and the
 * name rules: whatever a store (or an intruder who edits it) hands back is refused cleanly or
 * parsed, never a crash; what parses re-encodes to a fixed point; the version record's fast path
 * agrees with jansson's; a secret record's MAC holds against any edit and any other name. No
 * plaintext: records hold ciphertext and metadata only. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "grant.h"
#include "json.h"
#include "name.h"
#include "records.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A keyring with a record key: the secret record's MAC is checked before its fields. */
static struct kura_keyring *keyring(void)
{
	static struct kura_keyring *kr;

	if (!kr)
		check(kura_keys_init() == 0 && kura_keyring_new(&kr) == 0 &&
			kura_keyring_generate_record_key(kr) == 0);
	return kr;
}

static bool same_bytes(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	return alen == blen && memcmp(a, b, alen) == 0;
}

/* A base64 field that was accepted is spelled exactly as its encoder spells its bytes: no
 * other string decodes to them, so nothing rides along in a record unnoticed. */
static void canonical(const json_t *obj, const char *key, const uint8_t *bytes, size_t len)
{
	json_t *want = kura_json_b64(bytes, len);

	check(want && json_equal(json_object_get(obj, key), want));
	json_decref(want);
}

static void keyring_records(const uint8_t *data, size_t size)
{
	struct keyring_record k, k2;
	uint8_t *out, *out2;
	size_t len, len2;
	json_t *j = NULL, *keks;

	if (keyring_record_decode(data, size, &k) != 0)
		return;
	check(k.current >= 1 && k.current < k.next && k.n >= 1);
	check(kura_json_load(data, size, &j) == 0);
	keks = json_object_get(j, "keks");
	canonical(j, "record_key", k.record_box, k.record_len);
	for (size_t i = 0; i < k.n; i++)
		canonical(json_array_get(keks, i), "box", k.keks[i].box, k.keks[i].len);
	if (k.master == KURA_MASTER_PASSPHRASE)
		canonical(json_object_get(json_object_get(j, "master"), "kdf"), "salt", k.kdf.salt,
			sizeof(k.kdf.salt));
	json_decref(j);
	/* What parses re-encodes, and the encoding is a fixed point. */
	check(keyring_record_encode(&k, &out, &len) == 0);
	check(keyring_record_decode(out, len, &k2) == 0);
	check(keyring_record_encode(&k2, &out2, &len2) == 0);
	check(same_bytes(out, len, out2, len2));
	free(out);
	free(out2);
	keyring_record_done(&k);
	keyring_record_done(&k2);
}

static void version_records(const uint8_t *data, size_t size)
{
	struct version_record v, slow, again;
	uint8_t *spaced, *out;
	size_t len;
	int r, rs;

	r = version_record_decode(data, size, &v);
	check(r == 0 || r == -EPROTO);
	/* A leading space keeps the fast path out: the same bytes as jansson reads them. The
	 * fast path must never be the judge of a record jansson would read otherwise. */
	spaced = malloc(size + 1);
	check(spaced);
	spaced[0] = ' ';
	memcpy(spaced + 1, data, size);
	rs = version_record_decode(spaced, size + 1, &slow);
	free(spaced);
	check(rs == r || rs == -ENOMEM || r == -ENOMEM);
	if (r != 0) {
		if (rs == 0)
			kura_sealed_done(&slow.sealed);
		return;
	}
	check(rs == 0);
	check(v.created == slow.created && v.size == slow.size &&
		v.sealed.kek_id == slow.sealed.kek_id);
	check(same_bytes(v.sealed.secret_id, sizeof(v.sealed.secret_id), slow.sealed.secret_id,
		sizeof(slow.sealed.secret_id)));
	check(same_bytes(v.sealed.dek, v.sealed.dek_len, slow.sealed.dek, slow.sealed.dek_len));
	check(same_bytes(v.sealed.value, v.sealed.value_len, slow.sealed.value,
		slow.sealed.value_len));
	check(v.sealed.kek_id >= 1 && kura_sealed_plain_len(&v.sealed) == v.size);
	{
		json_t *j = NULL;

		check(kura_json_load(data, size, &j) == 0);
		canonical(j, "dek", v.sealed.dek, v.sealed.dek_len);
		canonical(j, "value", v.sealed.value, v.sealed.value_len);
		canonical(j, "secret_id", v.sealed.secret_id, sizeof(v.sealed.secret_id));
		json_decref(j);
	}
	/* Written back, it is read by the fast path alone, with the same fields. */
	check(version_record_encode(&v, &out, &len) == 0);
	check(version_record_decode(out, len, &again) == 0);
	check(again.created == v.created && again.size == v.size &&
		again.sealed.kek_id == v.sealed.kek_id &&
		same_bytes(again.sealed.value, again.sealed.value_len, v.sealed.value,
			v.sealed.value_len));
	free(out);
	kura_sealed_done(&again.sealed);
	kura_sealed_done(&slow.sealed);
	kura_sealed_done(&v.sealed);
}

static void grant_records(const uint8_t *data, size_t size)
{
	struct kura_grant g, g2;
	uint8_t *out, *out2;
	size_t len, len2;

	if (kura_grant_decode(data, size, &g) != 0)
		return;
	check(kura_grant_encode(&g, &out, &len) == 0);
	check(kura_grant_decode(out, len, &g2) == 0);
	check(strcmp(g.id, g2.id) == 0);
	check(kura_grant_encode(&g2, &out2, &len2) == 0);
	check(same_bytes(out, len, out2, len2));
	free(out);
	free(out2);
	kura_grant_done(&g);
	kura_grant_done(&g2);
}

/*
 * A secret record sealed by the keyring for "a/b" with fields taken from the input: it reads
 * back the same, never under another name, and an edit of any one byte either fails or reads
 * back the same fields (the MAC covers what the fields mean, not their spelling).
 */
static bool same_secret(const struct secret_record *a, const struct secret_record *b)
{
	return memcmp(a->id, b->id, sizeof(a->id)) == 0 && a->current == b->current &&
		a->latest == b->latest && a->created == b->created && a->updated == b->updated;
}

static void secret_records(const uint8_t *data, size_t size)
{
	struct secret_record s = { 0 }, back;
	uint8_t *out;
	size_t len;
	int r;

	(void)secret_record_decode(keyring(), "a/b", data, size, &back);
	if (size < 8 + sizeof(s.id) + 4)
		return;
	memcpy(&s.latest, data, 4);
	memcpy(&s.current, data + 4, 4);
	memcpy(s.id, data + 8, sizeof(s.id));
	s.latest = s.latest % 1000000 + 1;
	s.current = s.current % s.latest + 1;
	s.created = (int64_t)data[8 + sizeof(s.id)] << 24;
	s.updated = s.created + data[9 + sizeof(s.id)];
	check(secret_record_encode(keyring(), "a/b", &s, &out, &len) == 0);
	check(secret_record_decode(keyring(), "a/b", out, len, &back) == 0);
	check(same_secret(&back, &s));
	check(secret_record_decode(keyring(), "a/c", out, len, &back) == -EBADMSG);
	check(secret_record_decode(keyring(), "a/b/", out, len, &back) == -EBADMSG);
	{
		size_t at = ((size_t)data[10 + sizeof(s.id)] << 8 | data[11 + sizeof(s.id)]) % len;
		uint8_t was = out[at];

		out[at] = data[size - 1] == was ? (uint8_t)(was ^ 1) : data[size - 1];
		r = secret_record_decode(keyring(), "a/b", out, len, &back);
		check(r == -EBADMSG || r == -EPROTO || (r == 0 && same_secret(&back, &s)));
		out[at] = was;
	}
	free(out);
}

static void keys_and_names(const uint8_t *data, size_t size)
{
	char *key, *name = NULL, *again;
	uint64_t version;

	if (memchr(data, 0, size))
		return;
	key = strndup((const char *)data, size);
	check(key);
	/* A version key parses only as what version_key() writes for its parts. */
	if (version_key_parse(key, &name, &version) == 0) {
		check(version >= 1 && version_from_key(key) == version);
		again = version_key(name, version);
		check(again && strcmp(again, key) == 0);
		free(again);
		free(name);
	}
	(void)version_from_key(key);
	(void)kura_name_invalid(key, size);
	(void)kura_prefix_invalid(key, size);
	free(key);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	keyring_records(data, size);
	version_records(data, size);
	grant_records(data, size);
	secret_records(data, size);
	keys_and_names(data, size);
	return 0;
}

/* Encoding of the vault's store records as JSON. Ciphertext and metadata only. Parsing is
 * strict: a record that is not exactly what we wrote is corruption (-EPROTO). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "base64.h"
#include "json.h"
#include "records.h"

char *secret_key(const char *name)
{
	char *k;

	return asprintf(&k, PREFIX_SECRET "%s", name) < 0 ? NULL : k;
}

char *version_prefix(const char *name)
{
	char *k;

	return asprintf(&k, PREFIX_VERSION "%s@", name) < 0 ? NULL : k;
}

char *folder_key(const char *name, size_t len)
{
	char *k;

	return asprintf(&k, PREFIX_FOLDER "%.*s", (int)len, name) < 0 ? NULL : k;
}

char *below_prefix(const char *name, size_t len)
{
	char *k;

	return asprintf(&k, PREFIX_SECRET "%.*s/", (int)len, name) < 0 ? NULL : k;
}

char *version_key(const char *name, uint64_t version)
{
	char *k;

	return asprintf(&k, PREFIX_VERSION "%s@%010" PRIu64, name, version) < 0 ? NULL : k;
}

uint64_t version_from_key(const char *key)
{
	const char *at = strrchr(key, '@');
	uint64_t v = 0;

	if (!at || strlen(at + 1) != 10)
		return 0;
	for (const char *p = at + 1; *p; p++) {
		if (*p < '0' || *p > '9')
			return 0;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	return v;
}

int version_key_parse(const char *key, char **ret_name, uint64_t *ret_version)
{
	const char *name = key + strlen(PREFIX_VERSION), *at = strrchr(key, '@');
	uint64_t version = version_from_key(key);
	char *n;

	if (strncmp(key, PREFIX_VERSION, strlen(PREFIX_VERSION)) != 0 || !at || at <= name ||
		version == 0)
		return -EUCLEAN;
	n = strndup(name, (size_t)(at - name));
	if (!n)
		return -ENOMEM;
	*ret_name = n;
	*ret_version = version;
	return 0;
}

void keyring_record_done(struct keyring_record *k)
{
	for (size_t i = 0; i < k->n; i++)
		free(k->keks[i].box);
	free(k->keks);
	free(k->record_box);
	*k = (struct keyring_record){ 0 };
}

int keyring_record_encode(const struct keyring_record *k, uint8_t **ret, size_t *ret_len)
{
	_cleanup_json_ json_t *j = NULL, *master = NULL, *keks = NULL;

	if (k->master == KURA_MASTER_PASSPHRASE)
		master = json_pack("{s:s, s:{s:s, s:o, s:I, s:I}}", "source", "passphrase", "kdf",
			"alg", "argon2id13", "salt",
			kura_json_b64(k->kdf.salt, sizeof(k->kdf.salt)), "opslimit",
			(json_int_t)k->kdf.opslimit, "memlimit", (json_int_t)k->kdf.memlimit);
	else
		master = json_pack("{s:s}", "source", kura_master_kind_name(k->master));
	keks = json_array();
	if (!master || !keks)
		return -ENOMEM;
	for (size_t i = 0; i < k->n; i++) {
		json_t *e = json_pack("{s:I, s:I, s:o}", "id", (json_int_t)k->keks[i].id, "created",
			(json_int_t)k->keks[i].created, "box",
			kura_json_b64(k->keks[i].box, k->keks[i].len));

		if (!e || json_array_append_new(keks, e) < 0)
			return -ENOMEM;
	}
	j = json_pack("{s:i, s:O, s:I, s:I, s:O, s:o}", "format", RECORD_FORMAT, "master", master,
		"current", (json_int_t)k->current, "next", (json_int_t)k->next, "keks", keks,
		"record_key", kura_json_b64(k->record_box, k->record_len));
	if (!j)
		return -ENOMEM;
	return kura_json_dump(j, ret, ret_len);
}

int keyring_record_decode(const uint8_t *data, size_t len, struct keyring_record *ret)
{
	_cleanup_json_ json_t *j = NULL;
	struct keyring_record k = { 0 };
	const json_t *master, *keks, *e;
	bool has_current = false;
	const char *source;
	int64_t v;
	size_t i;
	int r;

	r = kura_json_load(data, len, &j);
	if (r < 0)
		return r;
	master = json_object_get(j, "master");
	source = json_string_value(json_object_get(master, "source"));
	if (kura_master_kind_parse(source, &k.master) < 0)
		return -EPROTO;
	if (k.master == KURA_MASTER_PASSPHRASE) {
		const json_t *kdf = json_object_get(master, "kdf");
		const char *alg = json_string_value(json_object_get(kdf, "alg"));
		_cleanup_free_ uint8_t *salt = NULL;
		size_t salt_len;

		if (!alg || strcmp(alg, "argon2id13") != 0)
			return -EPROTO;
		r = kura_json_get_b64(kdf, "salt", &salt, &salt_len);
		if (r < 0)
			return r;
		if (salt_len != sizeof(k.kdf.salt))
			return -EPROTO;
		memcpy(k.kdf.salt, salt, salt_len);
		if (kura_json_get_int(kdf, "opslimit", 1, INT64_MAX, &v) < 0)
			return -EPROTO;
		k.kdf.opslimit = (uint64_t)v;
		if (kura_json_get_int(kdf, "memlimit", 1, INT64_MAX, &v) < 0)
			return -EPROTO;
		k.kdf.memlimit = (uint64_t)v;
		if (kura_kdf_check(&k.kdf) < 0)
			return -EPROTO;
	}
	if (kura_json_get_int(j, "current", 1, UINT32_MAX, &v) < 0)
		return -EPROTO;
	k.current = (uint32_t)v;
	if (kura_json_get_int(j, "next", 2, UINT32_MAX, &v) < 0)
		return -EPROTO;
	k.next = (uint32_t)v;
	keks = json_object_get(j, "keks");
	if (!json_is_array(keks) || json_array_size(keks) == 0)
		return -EPROTO;
	k.keks = calloc(json_array_size(keks), sizeof(*k.keks));
	if (!k.keks)
		return -ENOMEM;
	json_array_foreach(keks, i, e) {
		struct kek_record *kek = &k.keks[k.n];

		r = kura_json_get_int(e, "id", 1, (int64_t)k.next - 1, &v);
		if (r < 0)
			goto fail;
		kek->id = (uint32_t)v;
		r = kura_json_get_int(e, "created", 0, INT64_MAX, &kek->created);
		if (r < 0)
			goto fail;
		r = kura_json_get_b64(e, "box", &kek->box, &kek->len);
		if (r < 0)
			goto fail;
		k.n++;
		for (size_t d = 0; d + 1 < k.n; d++)
			if (k.keks[d].id == kek->id) {
				r = -EPROTO; /* one id, two keys: which one wraps what? */
				goto fail;
			}
		if (kek->id == k.current)
			has_current = true;
	}
	if (!has_current || k.current >= k.next) {
		r = -EPROTO;
		goto fail;
	}
	r = kura_json_get_b64(j, "record_key", &k.record_box, &k.record_len);
	if (r < 0)
		goto fail;
	*ret = k;
	return 0;
fail:
	keyring_record_done(&k);
	return r;
}

/* The bytes a secret record's MAC covers: "secret" NUL name NUL body-without-mac. */
static int secret_mac(const struct kura_keyring *kr, const char *name, const json_t *body,
	uint8_t mac[KURA_MAC_BYTES])
{
	_cleanup_free_ uint8_t *bytes = NULL, *msg = NULL;
	size_t len, name_len = strlen(name) + 1;
	int r;

	r = kura_json_dump(body, &bytes, &len);
	if (r < 0)
		return r;
	msg = malloc(sizeof("secret") + name_len + len);
	if (!msg)
		return -ENOMEM;
	memcpy(msg, "secret", sizeof("secret"));
	memcpy(msg + sizeof("secret"), name, name_len);
	memcpy(msg + sizeof("secret") + name_len, bytes, len);
	return kura_keyring_mac(kr, msg, sizeof("secret") + name_len + len, mac);
}

int secret_record_encode(const struct kura_keyring *kr, const char *name,
	const struct secret_record *s, uint8_t **ret, size_t *ret_len)
{
	_cleanup_json_ json_t *j = json_pack("{s:o, s:I, s:I, s:I, s:I}", "id",
		kura_json_b64(s->id, sizeof(s->id)), "current", (json_int_t)s->current, "latest",
		(json_int_t)s->latest, "created", (json_int_t)s->created, "updated",
		(json_int_t)s->updated);
	uint8_t mac[KURA_MAC_BYTES];
	int r;

	if (!j)
		return -ENOMEM;
	r = secret_mac(kr, name, j, mac);
	if (r < 0)
		return r;
	if (json_object_set_new(j, "mac", kura_json_b64(mac, sizeof(mac))) < 0)
		return -ENOMEM;
	return kura_json_dump(j, ret, ret_len);
}

int secret_record_decode(const struct kura_keyring *kr, const char *name, const uint8_t *data,
	size_t len, struct secret_record *ret)
{
	_cleanup_free_ uint8_t *id = NULL, *mac = NULL;
	_cleanup_json_ json_t *j = NULL;
	uint8_t want[KURA_MAC_BYTES];
	struct secret_record s;
	size_t id_len, mac_len;
	int64_t v;
	int r;

	r = kura_json_load(data, len, &j);
	if (r < 0)
		return r;
	if (kura_json_get_b64(j, "mac", &mac, &mac_len) < 0 || mac_len != KURA_MAC_BYTES ||
		kura_json_get_b64(j, "id", &id, &id_len) < 0 || id_len != sizeof(s.id))
		return -EPROTO;
	json_object_del(j, "mac");
	r = secret_mac(kr, name, j, want);
	if (r < 0)
		return r;
	/* Checked before anything in it is believed. */
	if (sodium_memcmp(want, mac, KURA_MAC_BYTES) != 0)
		return -EBADMSG;
	memcpy(s.id, id, sizeof(s.id));
	if (kura_json_get_int(j, "latest", 1, INT64_MAX, &v) < 0)
		return -EPROTO;
	s.latest = (uint64_t)v;
	if (kura_json_get_int(j, "current", 1, (int64_t)s.latest, &v) < 0)
		return -EPROTO;
	s.current = (uint64_t)v;
	if (kura_json_get_int(j, "created", 0, INT64_MAX, &s.created) < 0 ||
		kura_json_get_int(j, "updated", 0, INT64_MAX, &s.updated) < 0)
		return -EPROTO;
	*ret = s;
	return 0;
}

/*
 * Version records are the bulk of a store (one per version: `key rotate` reads and rewrites every
 * one), so they are written and read here directly, not through jansson. Nothing in them is
 * secret: the value box and the wrapped DEK are ciphertext and the secret id is a public
 * incarnation number. So neither the wiping allocator (it exists for documents that may carry a
 * value) nor constant-time base64 (it exists for keys) buys anything for them.
 *
 * The bytes written are the ones jansson wrote (compact, keys sorted, base64 needs no escape), so
 * stores written before and after read the same. Reading takes that exact form only; anything
 * else (whitespace, another key order, an escape) goes through jansson as before, so what is
 * accepted, and with which values, is unchanged: the fast path is never the judge of a record
 * it does not take.
 */
int version_record_encode(const struct version_record *v, uint8_t **ret, size_t *ret_len)
{
	size_t id_len = kura_base64_len(sizeof(v->sealed.secret_id)),
	       dek_len = kura_base64_len(v->sealed.dek_len),
	       value_len = kura_base64_len(v->sealed.value_len), cap;
	char *out, *p;
	int k;

	/* The fixed text, three integers of at most 20 characters each, and the base64 fields. */
	cap = sizeof("{\"created\":,\"dek\":\"\",\"kek\":,\"secret_id\":\"\",\"size\":,"
		     "\"value\":\"\"}") +
		3 * 21 + id_len + dek_len + value_len;
	if (dek_len < v->sealed.dek_len || value_len < v->sealed.value_len)
		return -ENOMEM; /* a length so large that its base64 length wrapped */
	out = malloc(cap);
	if (!out)
		return -ENOMEM;
	p = out;
	k = snprintf(p, cap, "{\"created\":%" JSON_INTEGER_FORMAT ",\"dek\":\"",
		(json_int_t)v->created);
	p += k;
	p += kura_base64_encode(v->sealed.dek, v->sealed.dek_len, p);
	k = snprintf(p, cap - (size_t)(p - out),
		"\",\"kek\":%" JSON_INTEGER_FORMAT ",\"secret_id\":\"",
		(json_int_t)v->sealed.kek_id);
	p += k;
	p += kura_base64_encode(v->sealed.secret_id, sizeof(v->sealed.secret_id), p);
	k = snprintf(p, cap - (size_t)(p - out),
		"\",\"size\":%" JSON_INTEGER_FORMAT ",\"value\":\"", (json_int_t)v->size);
	p += k;
	p += kura_base64_encode(v->sealed.value, v->sealed.value_len, p);
	memcpy(p, "\"}", 2);
	*ret = (uint8_t *)out;
	*ret_len = (size_t)(p + 2 - out);
	return 0;
}

struct cursor {
	const uint8_t *p, *end;
};

static bool take(struct cursor *c, const char *lit)
{
	size_t n = strlen(lit);

	if ((size_t)(c->end - c->p) < n || memcmp(c->p, lit, n) != 0)
		return false;
	c->p += n;
	return true;
}

/* A non-negative integer as jansson writes it: no sign, no leading zero, within INT64_MAX. */
static bool take_uint(struct cursor *c, int64_t *ret)
{
	const uint8_t *start = c->p;
	uint64_t v = 0;

	while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
		if (v > ((uint64_t)INT64_MAX - (uint64_t)(*c->p - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(*c->p - '0');
		c->p++;
	}
	if (c->p == start || (*start == '0' && c->p - start > 1))
		return false;
	*ret = (int64_t)v;
	return true;
}

/* A quoted base64 string into malloc'd bytes (*ret NULL if it is not one). */
static bool take_b64(struct cursor *c, uint8_t **ret, size_t *ret_len)
{
	const uint8_t *start, *q;
	uint8_t *bin;

	*ret = NULL;
	if (!take(c, "\""))
		return false;
	start = c->p;
	q = memchr(start, '"', (size_t)(c->end - start));
	if (!q)
		return false;
	bin = malloc((size_t)(q - start) / 4 * 3 + 1);
	if (!bin)
		return false;
	if (kura_base64_decode((const char *)start, (size_t)(q - start), bin,
		    (size_t)(q - start) / 4 * 3 + 1, ret_len) < 0) {
		free(bin);
		return false;
	}
	c->p = q + 1;
	*ret = bin;
	return true;
}

/* The exact form version_record_encode writes, or false (then jansson decides). */
static bool version_record_decode_fast(const uint8_t *data, size_t len, struct version_record *ret)
{
	struct cursor c = { data, data + len };
	struct version_record v = { 0 };
	_cleanup_free_ uint8_t *id = NULL;
	size_t id_len;
	int64_t size, kek;

	if (!take(&c, "{\"created\":") || !take_uint(&c, &v.created) || !take(&c, ",\"dek\":") ||
		!take_b64(&c, &v.sealed.dek, &v.sealed.dek_len) || !take(&c, ",\"kek\":") ||
		!take_uint(&c, &kek) || kek < 1 || kek > UINT32_MAX ||
		!take(&c, ",\"secret_id\":") || !take_b64(&c, &id, &id_len) ||
		id_len != sizeof(v.sealed.secret_id) || !take(&c, ",\"size\":") ||
		!take_uint(&c, &size) || !take(&c, ",\"value\":") ||
		!take_b64(&c, &v.sealed.value, &v.sealed.value_len) || !take(&c, "}") ||
		c.p != c.end) {
		kura_sealed_done(&v.sealed);
		return false;
	}
	v.size = (uint64_t)size;
	v.sealed.kek_id = (uint32_t)kek;
	memcpy(v.sealed.secret_id, id, id_len);
	if (kura_sealed_plain_len(&v.sealed) != v.size) {
		kura_sealed_done(&v.sealed);
		return false;
	}
	*ret = v;
	return true;
}

int version_record_decode(const uint8_t *data, size_t len, struct version_record *ret)
{
	_cleanup_json_ json_t *j = NULL;
	struct version_record v = { 0 };
	int64_t i;
	int r;

	if (version_record_decode_fast(data, len, ret))
		return 0;
	r = kura_json_load(data, len, &j);
	if (r < 0)
		return r;
	if (kura_json_get_int(j, "created", 0, INT64_MAX, &v.created) < 0 ||
		kura_json_get_int(j, "size", 0, INT64_MAX, &i) < 0)
		return -EPROTO;
	v.size = (uint64_t)i;
	if (kura_json_get_int(j, "kek", 1, UINT32_MAX, &i) < 0)
		return -EPROTO;
	v.sealed.kek_id = (uint32_t)i;
	{
		_cleanup_free_ uint8_t *id = NULL;
		size_t id_len;

		if (kura_json_get_b64(j, "secret_id", &id, &id_len) < 0 ||
			id_len != sizeof(v.sealed.secret_id))
			return -EPROTO;
		memcpy(v.sealed.secret_id, id, id_len);
	}
	r = kura_json_get_b64(j, "dek", &v.sealed.dek, &v.sealed.dek_len);
	if (r == 0)
		r = kura_json_get_b64(j, "value", &v.sealed.value, &v.sealed.value_len);
	if (r == 0 && kura_sealed_plain_len(&v.sealed) != v.size)
		r = -EPROTO;
	if (r < 0) {
		kura_sealed_done(&v.sealed);
		return r;
	}
	*ret = v;
	return 0;
}

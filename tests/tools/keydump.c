/* Test-only (never installed): every piece of key material reachable from a state directory,
 * one labelled hex line each, for the memory scans of tests/e2e/test-privsep.sh. Touches key
 * material by design: it opens the vault as kuractl does offline and prints its keys.
 *
 *   keydump --state-dir DIR [--key-file PATH] [--audit-dir DIR] [NAME...]
 *
 * Lines: "master HEX", "kek:ID HEX", "record-key HEX", "fingerprint-key HEX",
 * "dek:NAME@VERSION HEX" (every stored version, or those of the NAMEs given), "audit-key:EPOCH
 * HEX" (the current epoch's key, from AUDIT_DIR/state, when there is a log). Not here: the
 * hash-table keys (keys/tablekey.c), which each process draws at random and never stores.
 * Exit 0, 2 usage, 3 when the state does not open. */
#include <endian.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "aead.h"
#include "audit.h"
#include "json.h"
#include "records.h"
#include "vault.h"

static void hexline(const char *label, const uint8_t *p, size_t n)
{
	char hex[2 * 64 + 1];

	if (n > 64)
		n = 64;
	sodium_bin2hex(hex, sizeof(hex), p, n);
	printf("%s %s\n", label, hex);
	sodium_memzero(hex, sizeof(hex));
}

/* As keys/seal.c binds a DEK box: "kura/dek/1" NUL name NUL secret_id be64(version)
 * be32(kek_id). Written out again here: a test reading the store must not share the code
 * whose output it checks. */
static size_t dek_ad(const char *name, const struct kura_sealed *s, uint64_t version, uint8_t *ad)
{
	static const char label[] = "kura/dek/1";
	uint64_t ver = htobe64(version);
	uint32_t kek = htobe32(s->kek_id);
	size_t n = 0;

	memcpy(ad, label, sizeof(label));
	n += sizeof(label);
	memcpy(ad + n, name, strlen(name) + 1);
	n += strlen(name) + 1;
	memcpy(ad + n, s->secret_id, KURA_SECRET_ID_BYTES);
	n += KURA_SECRET_ID_BYTES;
	memcpy(ad + n, &ver, sizeof(ver));
	n += sizeof(ver);
	memcpy(ad + n, &kek, sizeof(kek));
	return n + sizeof(kek);
}

static bool wanted(const char *name, char **names, int n)
{
	if (n == 0)
		return true;
	for (int i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return true;
	return false;
}

/* Every version record: its DEK, opened with the KEK it names. */
static int deks(struct kura_vault *v, char **names, int nnames)
{
	struct kura_kv_list l = { 0 };
	int r = kura_store_range(kura_vault_store(v), PREFIX_VERSION, NULL, 0, &l), bad = 0;

	if (r < 0)
		return r;
	for (size_t i = 0; i < l.n; i++) {
		const char *key = l.items[i].key + strlen(PREFIX_VERSION), *at = strrchr(key, '@');
		struct version_record vr = { 0 };
		struct kura_secbuf *dek = NULL;
		char name[512], label[600];
		uint8_t ad[600];
		uint64_t version;
		const uint8_t *kek;

		if (!at || (size_t)(at - key) >= sizeof(name))
			continue;
		memcpy(name, key, (size_t)(at - key));
		name[at - key] = '\0';
		version = strtoull(at + 1, NULL, 10);
		if (!wanted(name, names, nnames))
			continue;
		if (version_record_decode(l.items[i].value, l.items[i].len, &vr) < 0) {
			fprintf(stderr, "keydump: %s does not decode\n", l.items[i].key);
			bad = 1;
			continue;
		}
		kek = kura_keyring_key(v->keyring, vr.sealed.kek_id);
		if (!kek || kura_secbuf_new(KURA_AEAD_KEY_BYTES, &dek) < 0 ||
			kura_aead_open(kek, ad, dek_ad(name, &vr.sealed, version, ad),
				vr.sealed.dek, vr.sealed.dek_len, dek) < 0) {
			fprintf(stderr, "keydump: the DEK of %s@%llu does not open\n", name,
				(unsigned long long)version);
			bad = 1;
		} else {
			snprintf(label, sizeof(label), "dek:%s@%llu", name,
				(unsigned long long)version);
			hexline(label, dek->data, dek->len);
		}
		kura_secbuf_free(dek);
		kura_sealed_done(&vr.sealed);
	}
	for (size_t i = 0; i < l.n; i++) {
		free(l.items[i].key);
		free(l.items[i].value);
	}
	free(l.items);
	return bad ? -EBADMSG : 0;
}

static int record_keys(struct kura_vault *v)
{
	static const uint8_t ad[] = "kura/record-key/1";
	static const char label[] = "kura/audit-fingerprint/1";
	struct kura_secbuf *rk = NULL;
	uint8_t fk[crypto_generichash_KEYBYTES];
	int r;

	if (!v->kr.record_box || v->kr.record_len < KURA_AEAD_OVERHEAD)
		return 0;
	r = kura_secbuf_new(v->kr.record_len - KURA_AEAD_OVERHEAD, &rk);
	if (r < 0)
		return r;
	r = kura_aead_open(v->master->data, ad, sizeof(ad), v->kr.record_box, v->kr.record_len, rk);
	if (r == 0) {
		hexline("record-key", rk->data, rk->len);
		/* As keys/keyring.c derives the fingerprints' own key from it. */
		crypto_generichash(fk, sizeof(fk), (const uint8_t *)label, sizeof(label), rk->data,
			rk->len);
		hexline("fingerprint-key", fk, sizeof(fk));
		sodium_memzero(fk, sizeof(fk));
	}
	kura_secbuf_free(rk);
	return r;
}

static int audit_key(const char *dir)
{
	char path[4096];
	json_t *j;
	const char *text;
	struct kura_secbuf *key = NULL;
	char label[64];
	int r;

	if ((size_t)snprintf(path, sizeof(path), "%.4000s/state", dir) >= sizeof(path))
		return -ENAMETOOLONG;
	j = json_load_file(path, 0, NULL);
	if (!j)
		return 0; /* no audit log */
	text = json_string_value(json_object_get(j, "key"));
	r = text ? kura_audit_key_parse((const uint8_t *)text, strlen(text), &key) : -EPROTO;
	if (r == 0) {
		snprintf(label, sizeof(label), "audit-key:%lld",
			(long long)json_integer_value(json_object_get(j, "epoch")));
		hexline(label, key->data, key->len);
	}
	kura_secbuf_free(key);
	json_decref(j);
	return r;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = { { "state-dir", required_argument, NULL, 's' },
		{ "key-file", required_argument, NULL, 'k' },
		{ "audit-dir", required_argument, NULL, 'a' }, { NULL, 0, NULL, 0 } };
	struct kura_master_source m = { .kind = KURA_MASTER_FILE };
	const char *state = NULL, *audit = NULL;
	char audit_default[4096];
	struct kura_vault *v = NULL;
	struct kura_err err = { { 0 } };
	int c, r, rc = 0;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 's')
			state = optarg;
		else if (c == 'k')
			m.path = optarg;
		else if (c == 'a')
			audit = optarg;
		else
			return 2;
	}
	if (!state) {
		fprintf(stderr,
			"usage: keydump --state-dir DIR [--key-file PATH] [--audit-dir DIR] "
			"[NAME...]\n");
		return 2;
	}
	kura_json_init();
	if (kura_keys_init() < 0)
		return 3;
	r = kura_vault_open(state, &m, 0, &v, &err);
	if (r < 0) {
		fprintf(stderr, "keydump: %s: %s\n", state, err.msg[0] ? err.msg : strerror(-r));
		return 3;
	}
	hexline("master", v->master->data, v->master->len);
	for (size_t i = 0; i < v->kr.n; i++) {
		const uint8_t *k = kura_keyring_key(v->keyring, v->kr.keks[i].id);
		char label[32];

		snprintf(label, sizeof(label), "kek:%u", v->kr.keks[i].id);
		if (k)
			hexline(label, k, KURA_AEAD_KEY_BYTES);
		else
			rc = 3;
	}
	if (record_keys(v) < 0 || deks(v, argv + optind, argc - optind) < 0)
		rc = 3;
	if (!audit) {
		snprintf(audit_default, sizeof(audit_default), "%.4000s/audit", state);
		audit = audit_default;
	}
	if (audit_key(audit) < 0)
		rc = 3;
	kura_vault_close(v);
	return rc;
}

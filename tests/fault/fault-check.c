/* fault-check: what a state directory holds, as one digest a test can compare, after an
 * injected fault or a crash: every version of every secret opened, grants, KEKs, and the audit
 * chain verified with its starting key. Touches plaintext: values are opened and hashed, and
 * only their hashes are printed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "audit-event.h"
#include "audit.h"
#include "grant.h"
#include "json.h"
#include "vault.h"

static const char usage[] =
	"Usage: fault-check STATE_DIR AUDIT_KEY_FILE|- KEY_FILE [KEY_FILE...]\n"
	"\n"
	"Opens the store with the first KEY_FILE that unlocks it and prints, one fact a line:\n"
	"  master N                    which KEY_FILE opened it (0-based)\n"
	"  keks N current C            the keyring\n"
	"  max M                       the store's largest value\n"
	"  secret NAME current C       and for every version it keeps:\n"
	"  version NAME V HASH         the BLAKE2b-64 of its value, in hex\n"
	"  grant ID PATTERN\n"
	"  audit ok N | audit broken FAULT FILE:LINE | audit unreadable ERR (not with -)\n"
	"Exit 0 when the store opens, every version opens and the audit log verifies; 4 when\n"
	"something does not open or verify; 3 when the store cannot be opened at all.\n";

static int read_audit_key(const char *path, struct kura_secbuf **ret)
{
	uint8_t bin[KURA_AUDIT_KEY_BYTES];
	char text[128];
	size_t len = 0;
	FILE *f;
	int r = -EINVAL;

	f = fopen(path, "re");
	if (!f)
		return -errno;
	if (fgets(text, sizeof(text), f)) {
		text[strcspn(text, "\n")] = 0;
		if (sodium_base642bin(bin, sizeof(bin), text, strlen(text), NULL, &len, NULL,
			    sodium_base64_VARIANT_ORIGINAL) == 0 &&
			len == sizeof(bin))
			r = kura_secbuf_from(bin, sizeof(bin), ret);
	}
	sodium_memzero(text, sizeof(text));
	sodium_memzero(bin, sizeof(bin));
	fclose(f);
	return r;
}

static bool check_secret(struct kura_vault *v, const char *name)
{
	struct kura_secret_info info = { 0 };
	struct kura_err err = { 0 };
	bool ok = true;

	if (kura_secret_show(v, name, &info, &err) < 0) {
		printf("secret %s unreadable %s\n", name, err.msg);
		return false;
	}
	printf("secret %s current %llu\n", name, (unsigned long long)info.current);
	for (size_t i = 0; i < info.n_versions; i++) {
		struct kura_secbuf *value = NULL;
		struct kura_version_info vi;
		uint8_t h[8];
		char hex[17];
		int r;

		r = kura_secret_get(v, name, info.versions[i].version, &value, &vi, &err);
		if (r < 0) {
			printf("version %s %llu unopened %s\n", name,
				(unsigned long long)info.versions[i].version, strerror(-r));
			ok = false;
			continue;
		}
		crypto_generichash(h, sizeof(h), value->data, value->len, NULL, 0);
		kura_secbuf_free(value);
		sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
		printf("version %s %llu %s\n", name, (unsigned long long)vi.version, hex);
	}
	kura_secret_info_done(&info);
	return ok;
}

static bool check_audit(const char *state, const char *key_path)
{
	struct kura_secbuf *key = NULL;
	struct kura_audit_verdict vd;
	char dir[4096];
	int r;

	r = kura_audit_dir(state, dir, sizeof(dir));
	if (r == 0)
		r = read_audit_key(key_path, &key);
	if (r == 0)
		r = kura_audit_verify(dir, key, NULL, &vd);
	kura_secbuf_free(key);
	if (r < 0) {
		printf("audit unreadable %s\n", strerror(-r));
		return false;
	}
	if (vd.fault != KURA_AUDIT_OK) {
		printf("audit broken %s %s:%llu\n", kura_audit_fault_name(vd.fault), vd.file,
			(unsigned long long)vd.line);
		return false;
	}
	printf("audit ok %llu\n", (unsigned long long)vd.good);
	return true;
}

int main(int argc, char **argv)
{
	struct kura_secret_list list = { 0 };
	struct kura_grant_list grants = { 0 };
	struct kura_key_status ks = { 0 };
	struct kura_err err = { 0 };
	struct kura_vault *v = NULL;
	bool ok = true;
	int r = -ENOENT, i;

	if (argc < 4 || kura_keys_init() < 0) {
		fputs(usage, stderr);
		return 2;
	}
	kura_json_init();
	for (i = 3; i < argc; i++) {
		struct kura_master_source m = { .kind = KURA_MASTER_FILE, .path = argv[i] };

		r = kura_vault_open(argv[1], &m, 0, &v, &err);
		if (r == 0)
			break;
	}
	if (r < 0) {
		printf("store error %s\n", err.msg[0] ? err.msg : strerror(-r));
		if (strcmp(argv[2], "-") != 0)
			check_audit(argv[1], argv[2]);
		return 3;
	}
	printf("master %d\n", i - 3);
	r = kura_key_status(v, &ks, &err);
	if (r < 0) {
		printf("keys unreadable %s\n", err.msg);
		ok = false;
	} else {
		printf("keks %zu current %u\nmax %llu\n", ks.n_keks, ks.current,
			(unsigned long long)ks.max_value_size);
		kura_key_status_done(&ks);
	}
	r = kura_secret_list(v, "", &list, &err);
	if (r < 0) {
		printf("secrets unreadable %s\n", err.msg);
		ok = false;
	}
	for (size_t j = 0; j < list.n; j++)
		ok &= check_secret(v, list.items[j].name);
	kura_secret_list_done(&list);
	r = kura_grant_list(v, &grants, &err);
	if (r < 0) {
		printf("grants unreadable %s\n", err.msg);
		ok = false;
	}
	for (size_t j = 0; j < grants.n; j++)
		printf("grant %s %s\n", grants.items[j].id, grants.items[j].pattern);
	kura_grant_list_done(&grants);
	kura_vault_close(v);
	if (strcmp(argv[2], "-") != 0)
		ok &= check_audit(argv[1], argv[2]);
	return ok ? 0 : 4;
}

/* Bulk load for the scale benchmarks: secrets bench/NNNNNNN numbered FROM..TO-1, each a random
 * value of SIZE bytes, put straight into a state directory (created if it has no store) without
 * fsync per commit, as tests/vault/test-rotate.c does; with --grants, N grants that cover
 * none of those (half exact names, half prefixes, for a container image), for the policy's
 * scale. Touches plaintext: random values in guarded
 * buffers, wiped on free. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "grant.h"
#include "json.h"
#include "vault.h"

/* N grants other/gNNNNNNN (exact) and other/pNNNNNNN/<star> (prefix), for an image nobody runs. */
static int add_grants(struct kura_vault *v, unsigned long n, struct kura_err *err)
{
	char image[] = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
	int r = 0;

	for (unsigned long i = 0; i < n && r == 0; i++) {
		char pattern[40];
		struct kura_grant g = { .pattern = pattern, .image = image };
		bool existed;

		snprintf(pattern, sizeof(pattern), i % 2 ? "other/p%07lu/*" : "other/g%07lu", i);
		r = kura_grant_add(v, &g, &existed, err);
	}
	return r;
}

int main(int argc, char **argv)
{
	struct kura_master_source m = { .kind = KURA_MASTER_FILE };
	struct kura_secbuf *audit_key = NULL;
	/* With its audit log, as kuractl init makes it: kuractl and kurad refuse to work
	 * unrecorded. */
	struct kura_init_opts o = { .store_flags = KURA_STORE_NOSYNC, .ret_audit_key = &audit_key };
	struct kura_err err = { 0 };
	struct kura_vault *v = NULL;
	char db[4096];
	struct stat st;
	unsigned long from, to, size;
	int r = 0;

	bool grants = argc == 4 && strcmp(argv[1], "--grants") == 0;

	if ((argc != 5 && !grants) || kura_keys_init() < 0) {
		fprintf(stderr,
			"usage: bench-populate STATE_DIR FROM TO SIZE\n"
			"       bench-populate --grants STATE_DIR N\n");
		return 2;
	}
	kura_json_init();
	if (grants) {
		r = kura_vault_open(argv[2], &m, KURA_STORE_NOSYNC, &v, &err);
		if (r == 0)
			r = add_grants(v, strtoul(argv[3], NULL, 10), &err);
		kura_vault_close(v);
		if (r < 0)
			fprintf(stderr, "bench-populate: %s (%s)\n", err.msg, strerror(-r));
		return r < 0 ? 3 : 0;
	}
	from = strtoul(argv[2], NULL, 10);
	to = strtoul(argv[3], NULL, 10);
	size = strtoul(argv[4], NULL, 10);
	if (size < 1 || size > 65536 || from > to) {
		fprintf(stderr, "bench-populate: bad range or size\n");
		return 2;
	}
	snprintf(db, sizeof(db), "%s/kura.db", argv[1]);
	if (stat(db, &st) < 0)
		r = kura_vault_init(argv[1], &o, &err);
	kura_secbuf_free(audit_key);
	if (r == 0)
		r = kura_vault_open(argv[1], &m, KURA_STORE_NOSYNC, &v, &err);
	for (unsigned long i = from; i < to && r == 0; i++) {
		struct kura_secbuf *val = NULL;
		char name[32];

		snprintf(name, sizeof(name), "bench/%07lu", i);
		r = kura_secbuf_new(size, &val);
		if (r < 0)
			break;
		randombytes_buf(val->data, size);
		val->len = size;
		r = kura_secret_put(v, name, val, NULL, &err);
		kura_secbuf_free(val);
	}
	kura_vault_close(v);
	if (r < 0) {
		fprintf(stderr, "bench-populate: %s (%s)\n", err.msg, strerror(-r));
		return 3;
	}
	return 0;
}

/* audit-gen: writes realistic audit records through the real append path, for tests and
 * benchmarks of `kuractl audit`. No secret values anywhere: fingerprints are made up. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "audit.h"
#include "json.h"

static const char usage[] =
	"Usage: audit-gen DIR N [--seed S] [--key-out FILE] [--file-bytes B] [--epoch-records R]\n"
	"\n"
	"Appends N records to the audit log in DIR (created, with a new starting key, when it\n"
	"holds none yet; the key goes to FILE as one line of base64). fsync is off. --file-bytes\n"
	"and --epoch-records set the rotation size and the records per key epoch.\n";

static uint64_t rng;

static uint64_t next(void)
{
	/* splitmix64: the same log for the same seed. */
	uint64_t z = (rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static unsigned pick(unsigned n)
{
	return (unsigned)(next() % n);
}

static void hex(char *out, size_t n)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++)
		out[i] = digits[next() & 15];
	out[n] = 0;
}

struct container {
	const char *name;
	char id[65];
	unsigned image;
};

static const char *const secrets[] = {
	"db/password",
	"db/replica/password",
	"db",
	"dbx/token",
	"api/stripe-key",
	"api/github-token",
	"tls/web.key",
	"cache/redis",
	"smtp/password",
	"ops/backup-key",
};

static const char *const names[] = {
	"web-1",
	"web-2",
	"worker",
	"billing",
	"cron",
	"redis-proxy",
	"web-10",
	"mailer",
};

static const char *const reasons[] = { "no_grant", "no_grant", "no_grant", "unidentified",
	"rate_limited", "not_found" };

/* Events by weight: mostly container fetches, some operator work. */
static const struct {
	const char *event;
	unsigned weight;
	bool host;
	bool secret;
} events[] = {
	{ "fetch", 700, false, true },
	{ "list", 80, false, false },
	{ "whoami", 40, false, false },
	{ "watch", 40, false, false },
	{ "secret-get", 20, true, true },
	{ "secret-put", 20, true, true },
	{ "secret-rotate", 20, true, true },
	{ "secret-show", 10, true, true },
	{ "secret-list", 10, true, false },
	{ "grant", 10, true, true },
	{ "revoke", 5, true, true },
	{ "grants", 5, true, false },
	{ "key-rotate", 2, true, false },
	{ "key-status", 3, true, false },
	{ "whois", 5, true, false },
	{ "status", 5, true, false },
};

static json_t *record(const struct container *cs, char images[][72])
{
	unsigned total = 0, w, i;
	char fp[36], rid[17];
	json_t *j;

	for (i = 0; i < ELEMENTSOF(events); i++)
		total += events[i].weight;
	w = pick(total);
	for (i = 0; w >= events[i].weight; i++)
		w -= events[i].weight;

	j = json_object();
	json_object_set_new(j, "event", json_string(events[i].event));
	hex(rid, 16);
	json_object_set_new(j, "request_id", json_string(rid));
	if (events[i].host) {
		json_object_set_new(j, "host", json_true());
		json_object_set_new(j, "uid", json_integer(pick(10) ? 0 : 1000));
		json_object_set_new(j, "gid", json_integer(0));
		json_object_set_new(j, "pid", json_integer(2000 + pick(30000)));
	} else {
		const struct container *c = &cs[pick(ELEMENTSOF(names))];

		json_object_set_new(j, "host", json_false());
		json_object_set_new(j, "uid", json_integer(pick(4) ? 1000 : 0));
		json_object_set_new(j, "gid", json_integer(1000));
		json_object_set_new(j, "pid", json_integer(2000 + pick(30000)));
		json_object_set_new(j, "runtime", json_string(pick(3) ? "docker" : "podman"));
		json_object_set_new(j, "container_id", json_string(c->id));
		json_object_set_new(j, "container_name", json_string(c->name));
		json_object_set_new(j, "image_id", json_string(images[c->image]));
	}
	if (events[i].secret)
		json_object_set_new(j, "secret", json_string(secrets[pick(ELEMENTSOF(secrets))]));
	if (pick(100) < 8) {
		json_object_set_new(j, "result", json_string("denied"));
		json_object_set_new(j, "reason", json_string(reasons[pick(ELEMENTSOF(reasons))]));
	} else if (pick(200) == 0) {
		json_object_set_new(j, "result", json_string("error"));
		json_object_set_new(j, "reason", json_string("store_unavailable"));
		json_object_set_new(j, "detail", json_string("database is locked"));
	} else {
		json_object_set_new(j, "result", json_string("ok"));
		if (events[i].secret) {
			json_object_set_new(j, "version", json_integer(1 + pick(5)));
			memcpy(fp, "b2:", 3);
			hex(fp + 3, 32);
			json_object_set_new(j, "fingerprint", json_string(fp));
		}
	}
	return j;
}

static int write_key(const char *path, const struct kura_secbuf *k)
{
	char b64[sodium_base64_ENCODED_LEN(KURA_AUDIT_KEY_BYTES, sodium_base64_VARIANT_ORIGINAL)];
	FILE *f = fopen(path, "w");
	int r = 0;

	if (!f)
		return -errno;
	sodium_bin2base64(b64, sizeof(b64), k->data, k->len, sodium_base64_VARIANT_ORIGINAL);
	if (fprintf(f, "%s\n", b64) < 0)
		r = -EIO;
	if (fclose(f) != 0 && r == 0)
		r = -errno;
	sodium_memzero(b64, sizeof(b64));
	return r;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "seed", required_argument, NULL, 's' },
		{ "key-out", required_argument, NULL, 'k' },
		{ "file-bytes", required_argument, NULL, 'f' },
		{ "epoch-records", required_argument, NULL, 'e' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	struct kura_audit_opts o = KURA_AUDIT_OPTS_DEFAULT;
	struct kura_secbuf *k0 = NULL;
	struct kura_audit *a = NULL;
	struct container cs[ELEMENTSOF(names)];
	char images[5][72];
	const char *key_out = NULL;
	uint64_t n, seed = 1;
	int opt, r;

	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 's':
			seed = strtoull(optarg, NULL, 10);
			break;
		case 'k':
			key_out = optarg;
			break;
		case 'f':
			o.max_file_bytes = strtoull(optarg, NULL, 10);
			break;
		case 'e':
			o.records_per_epoch = strtoull(optarg, NULL, 10);
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			fputs(usage, stderr);
			return 2;
		}
	}
	if (argc - optind != 2) {
		fputs(usage, stderr);
		return 2;
	}
	n = strtoull(argv[optind + 1], NULL, 10);
	o.fsync = false;
	if (kura_keys_init() < 0)
		return 3;
	kura_json_init();

	/* Everything follows from the seed: the same seed, the same records (but for time). */
	rng = seed;
	for (size_t i = 0; i < ELEMENTSOF(images); i++) {
		memcpy(images[i], "sha256:", 7);
		hex(images[i] + 7, 64);
	}
	for (size_t i = 0; i < ELEMENTSOF(names); i++) {
		cs[i].name = names[i];
		hex(cs[i].id, 64);
		cs[i].image = (unsigned)(i % ELEMENTSOF(images));
	}

	r = kura_audit_create(argv[optind], &k0);
	if (r == 0 && key_out)
		r = write_key(key_out, k0);
	kura_secbuf_free(k0);
	if (r < 0 && r != -EEXIST) {
		fprintf(stderr, "audit-gen: create %s: %s\n", argv[optind], strerror(-r));
		return 3;
	}
	r = kura_audit_open(argv[optind], &o, &a);
	if (r < 0) {
		fprintf(stderr, "audit-gen: open %s: %s\n", argv[optind], strerror(-r));
		return 3;
	}
	for (uint64_t i = 0; i < n && r >= 0; i++) {
		json_t *j = record(cs, images);

		r = kura_audit_append(a, j, NULL);
		json_decref(j);
	}
	kura_audit_close(a);
	if (r < 0) {
		fprintf(stderr, "audit-gen: append: %s\n", strerror(-r));
		return 3;
	}
	return 0;
}

/* What one audit record costs the writer: N fetch records (a container peer, as kurad writes
 * them) appended to a fresh log without fsync, CPU (utime+stime) per record. With --json, built
 * with jansson and dumped as before; by default, the path kurad takes. No plaintext.
 * Usage: audit-append DIR N [--json] */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "audit-event.h"
#include "audit.h"
#include "json.h"

static double cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
		(double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

int main(int argc, char **argv)
{
	struct kura_audit_opts o = KURA_AUDIT_OPTS_DEFAULT;
	struct kura_secbuf *k0 = NULL;
	struct kura_audit *a = NULL;
	struct kura_identity who = { .pid = 4242,
		.uid = 1000,
		.gid = 1000,
		.runtime = "docker",
		.container_id = "3f2a9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b",
		.name = "web-1",
		.image_id =
			"sha256:9b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c" };
	char rid[KURA_REQUEST_ID_LEN + 1];
	bool json = argc > 3 && strcmp(argv[3], "--json") == 0;
	unsigned long n;
	double t0, t;
	int r = 0;

	if (argc < 3) {
		fputs("usage: audit-append DIR N [--json]\n", stderr);
		return 2;
	}
	n = strtoul(argv[2], NULL, 10);
	o.fsync = false;
	if (kura_keys_init() < 0)
		return 3;
	kura_json_init();
	if (kura_audit_create(argv[1], &k0) < 0 || kura_audit_open(argv[1], &o, &a) < 0) {
		fprintf(stderr, "audit-append: cannot make a log in %s\n", argv[1]);
		return 3;
	}
	kura_secbuf_free(k0);
	kura_request_id(rid);
	t0 = cpu_s();
	for (unsigned long i = 0; i < n && r >= 0; i++) {
		struct kura_audit_event e = { .event = "fetch",
			.result = "ok",
			.who = &who,
			.secret = "db/password",
			.version = 3,
			.fingerprint = "k1:6f1c2d3e4f5a6b7c",
			.request_id = rid,
			.grant_id = "g-12" };
		json_t *f;

		if (!json) {
#ifndef KURA_BENCH_BASE /* built against a tree without it, to compare */
			r = kura_audit_append_event(a, &e, NULL);
			continue;
#endif
		}
		f = kura_audit_event_fields(&e);
		r = f ? kura_audit_append(a, f, NULL) : -ENOMEM;
		json_decref(f);
	}
	t = cpu_s() - t0;
	kura_audit_close(a);
	if (r < 0) {
		fprintf(stderr, "audit-append: %s\n", strerror(-r));
		return 3;
	}
	printf("%s: %lu records, %.2f us CPU per record\n", json ? "jansson" : "kurad's path", n,
		t * 1e6 / (double)n);
	return 0;
}

/* libFuzzer target for the audit record serialiser: an event made of the input (its strings are
 * the input's NUL-separated pieces, its numbers and which members are there from the first
 * bytes) serialised straight (kura_audit_event_body) and through jansson as before must be the
 * same bytes, within the bound, and parse back. No plaintext: records never hold a value. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audit-event.h"
#include "audit-internal.h"
#include "check.h"
#include "clock.h"
#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define N_STR 14

static uint64_t take(const uint8_t **p, size_t *n, size_t bytes)
{
	uint64_t v = 0;

	for (size_t i = 0; i < bytes && *n; i++, (*p)++, (*n)--)
		v = v << 8 | **p;
	return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	const uint8_t *p = data;
	size_t n = size, len, body_len;
	char *copy, *direct;
	const char *when = NULL;
	struct kura_identity id = {};
	struct kura_audit_event e = {};
	uint64_t flags, seq, epoch;
	uint8_t *ref = NULL;
	json_t *j;

	if (!ready) {
		kura_json_init();
		ready = true;
	}
	flags = take(&p, &n, 4);
	seq = take(&p, &n, 8);
	epoch = take(&p, &n, 8);
	e.version = take(&p, &n, 8);
	e.kek = (int64_t)take(&p, &n, 8);
	e.count = (int64_t)take(&p, &n, 8);
	e.has_count = flags & 1;
	id.host = flags & 2;
	id.pid = (pid_t)take(&p, &n, 4);
	id.uid = (uid_t)take(&p, &n, 4);
	id.gid = (gid_t)take(&p, &n, 4);
	e.who = flags & 4 ? &id : NULL;

	/* The rest, NUL-separated: each piece a string member, absent where its flag bit is. */
	copy = malloc(n + 1);
	check(copy);
	memcpy(copy, p, n);
	copy[n] = 0;
	{
		const char **slot[N_STR] = { &e.event, &e.result, &e.reason, &e.secret,
			&e.fingerprint, &e.request_id, &e.grant_id, &e.detail, &e.sink, &id.runtime,
			&id.container_id, &id.name, &id.image_id, &when };

		for (size_t i = 0, at = 0; i < N_STR && at <= n; i++) {
			*slot[i] = flags & (1u << (i + 3)) ? NULL : copy + at;
			at += strlen(copy + at) + 1;
		}
	}
	/* A time as append makes it, or anything of its length (the bound assumes no longer):
	 * the serialiser must not care what it holds. */
	if (!when)
		when = "2026-12-02T13:24:59.049788Z";
	if (strlen(when) > KURA_RFC3339_LEN)
		((char *)when)[KURA_RFC3339_LEN] = '\0';

	direct = malloc(kura_audit_event_bound(&e));
	check(direct);
	body_len = kura_audit_event_body(&e, seq, when, epoch, direct);
	check(body_len <= kura_audit_event_bound(&e));

	j = kura_audit_event_fields(&e);
	check(j);
	check(json_object_set_new(j, "seq", json_integer((json_int_t)seq)) == 0);
	/* json_string refuses a time that is not UTF-8, and so does the serialiser. */
	(void)json_object_set_new(j, "time", json_string(when));
	check(json_object_set_new(j, "epoch", json_integer((json_int_t)epoch)) == 0);
	check(kura_json_dump_ascii(j, &ref, &len) == 0);
	json_decref(j);
	check(len == body_len && memcmp(ref, direct, len) == 0);

	/* And it is JSON that a reader of the log takes. */
	check(kura_json_load((const uint8_t *)direct, body_len, &j) == 0);
	json_decref(j);
	free(ref);
	free(direct);
	free(copy);
	return 0;
}

/* libFuzzer target for audit lines as `kuractl audit` filters and shows them, without a JSON
 * parser (audit-line.h): on a line in the form append writes, every field it finds is the one
 * jansson reads, decoded to the same text, and a key that is not there is not found; the input
 * as a --since/--until time either is refused or comes out in the records' own form, which reads
 * back the same. No plaintext: records never hold a value. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "audit-line.h"
#include "check.h"
#include "escape.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TEXT_MAX 1024 /* values longer than this are cut when shown; not compared here */

/* A flat object of strings, integers and booleans under keys of [a-z_] (the only ones records
 * have), spelled exactly as jansson writes it compactly: the form of every record line. */
static json_t *as_appended(const char *line, size_t len)
{
	json_t *j = json_loadb(line, len, JSON_REJECT_DUPLICATES, NULL), *v;
	const char *k;
	char *again;
	bool ok = json_is_object(j);

	json_object_foreach(j, k, v)
		ok = ok && (json_is_string(v) || json_is_integer(v) || json_is_boolean(v)) && *k &&
			strlen(k) < 30 && strspn(k, "abcdefghijklmnopqrstuvwxyz_") == strlen(k);
	again = ok ? json_dumps(j, JSON_COMPACT) : NULL;
	ok = again && strlen(again) == len && memcmp(again, line, len) == 0;
	free(again);
	if (!ok) {
		json_decref(j);
		return NULL;
	}
	return j;
}

static void fields(const char *line, size_t len)
{
	static const char *const absent[] = { "secret", "time", "event", "container_name", "x" };
	static char out[4 * TEXT_MAX + 16], want[sizeof(out)];
	json_t *j = as_appended(line, len), *v;
	const char *k, *got;
	size_t n;

	if (!j)
		return;
	json_object_foreach(j, k, v) {
		check(kura_audit_field(line, len, k, &got, &n));
		if (!json_is_string(v)) {
			char *tok = json_dumps(v, JSON_ENCODE_ANY);

			check(tok && strlen(tok) == n && memcmp(tok, got, n) == 0);
			free(tok);
			continue;
		}
		if (json_string_length(v) > TEXT_MAX ||
			strlen(json_string_value(v)) != json_string_length(v))
			continue;
		check(kura_audit_text(line, len, k, out, sizeof(out), false) == out);
		check(strcmp(out, json_string_value(v)) == 0);
		/* On a terminal: the same text, escaped. */
		kura_escape(json_string_value(v), json_string_length(v), KURA_ESCAPE_TEXT, want,
			sizeof(want));
		check(kura_audit_text(line, len, k, out, sizeof(out), true) == out);
		check(strcmp(out, want) == 0);
	}
	for (size_t i = 0; i < sizeof(absent) / sizeof(absent[0]); i++)
		if (!json_object_get(j, absent[i]))
			check(!kura_audit_field(line, len, absent[i], &got, &n));
	json_decref(j);
}

static bool canonical_time(const char *t)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd.ddddddZ";

	if (strlen(t) != KURA_AUDIT_TIME_LEN)
		return false;
	for (size_t i = 0; i < KURA_AUDIT_TIME_LEN; i++)
		if (shape[i] == 'd' ? t[i] < '0' || t[i] > '9' : t[i] != shape[i])
			return false;
	return true;
}

static void times(const char *s)
{
	char out[KURA_AUDIT_TIME_LEN + 1], again[KURA_AUDIT_TIME_LEN + 1];

	if (!kura_audit_time_parse(s, out))
		return;
	check(canonical_time(out));
	check(kura_audit_time_parse(out, again) && strcmp(again, out) == 0);
	/* A record's own time (since 1970, no leap second) is taken as it is. */
	if (canonical_time(s) && strncmp(s, "1970", 4) >= 0 && strncmp(s + 17, "60", 2) != 0)
		check(strcmp(out, s) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = strndup((const char *)data, size);

	check(s);
	fields((const char *)data, size);
	times(s);
	free(s);
	return 0;
}

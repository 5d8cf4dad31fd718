/* Unit tests for the jansson glue: the wiping allocator is installed, base64 fields both ways
 * and their refusals, bounded integers, one-object parsing, and the printable-ASCII dump that
 * audit records are written with (DEL escaped too). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "tap.h"

static void test_alloc(void)
{
	json_malloc_t m = NULL;
	json_free_t f = NULL;

	json_get_alloc_funcs(&m, &f);
	tap_ok(m && f && m != malloc && f != free, "jansson allocates through kura's wiping pair");
}

static void test_b64(void)
{
	static const uint8_t bin[] = { 0, 1, 2, 0xfe, 0xff };
	json_t *o = json_object(), *s = kura_json_b64(bin, sizeof(bin));
	uint8_t *got = NULL;
	size_t len = 0;

	tap_ok(s && strcmp(json_string_value(s), "AAEC/v8=") == 0, "base64 of 5 bytes: AAEC/v8=");
	json_object_set_new(o, "v", s);
	tap_is(kura_json_get_b64(o, "v", &got, &len), 0, "read back");
	tap_ok(got && len == sizeof(bin) && memcmp(got, bin, len) == 0, "the same bytes");
	free(got);
	got = NULL;
	tap_is(kura_json_get_b64(o, "missing", &got, &len), -EPROTO, "a missing field: -EPROTO");
	json_object_set_new(o, "n", json_integer(3));
	tap_is(kura_json_get_b64(o, "n", &got, &len), -EPROTO, "a number: -EPROTO");
	json_object_set_new(o, "bad", json_string("AAE*"));
	tap_is(kura_json_get_b64(o, "bad", &got, &len), -EPROTO, "not base64: -EPROTO");
	json_object_set_new(o, "loose", json_string("AAEC/v9="));
	tap_is(kura_json_get_b64(o, "loose", &got, &len), -EPROTO,
		"non-zero padding bits (a second spelling): -EPROTO");
	tap_ok(got == NULL, "nothing handed back on a refusal");
	json_decref(o);
}

static void test_int(void)
{
	json_t *o = json_pack("{s:I, s:s, s:f, s:I}", "a", (json_int_t)5, "s", "5", "f", 5.0, "neg",
		(json_int_t)-1);
	int64_t v = 0;

	tap_ok(kura_json_get_int(o, "a", 0, 10, &v) == 0 && v == 5, "an integer within its range");
	tap_is(kura_json_get_int(o, "a", 6, 10, &v), -EPROTO, "below the range: -EPROTO");
	tap_is(kura_json_get_int(o, "a", 0, 4, &v), -EPROTO, "above the range: -EPROTO");
	tap_is(kura_json_get_int(o, "s", 0, 10, &v), -EPROTO, "a string of digits: -EPROTO");
	tap_is(kura_json_get_int(o, "f", 0, 10, &v), -EPROTO, "a real: -EPROTO");
	tap_is(kura_json_get_int(o, "neg", 0, 10, &v), -EPROTO, "a negative for [0, 10]: -EPROTO");
	tap_is(kura_json_get_int(o, "none", 0, 10, &v), -EPROTO, "missing: -EPROTO");
	json_decref(o);
}

static void test_load(void)
{
	json_t *j = NULL;

	tap_is(kura_json_load((const uint8_t *)"{\"a\":1}", 7, &j), 0, "one object loads");
	json_decref(j);
	j = NULL;
	tap_is(kura_json_load((const uint8_t *)"[1]", 3, &j), -EPROTO, "an array: -EPROTO");
	tap_is(kura_json_load((const uint8_t *)"{\"a\":1} x", 9, &j), -EPROTO,
		"trailing bytes: -EPROTO");
	tap_is(kura_json_load((const uint8_t *)"{\"a\":1,\"a\":2}", 13, &j), -EPROTO,
		"a duplicate key: -EPROTO");
	tap_is(kura_json_load((const uint8_t *)"{\"a\":\"\\u0000\"}", 14, &j), -EPROTO,
		"an escaped NUL: -EPROTO");
	tap_is(kura_json_load((const uint8_t *)"", 0, &j), -EPROTO, "nothing: -EPROTO");
	tap_ok(j == NULL, "nothing handed back on a refusal");
}

static void test_dump(void)
{
	json_t *j = json_pack("{s:s}", "k", "a\x7f\xc3\xa9\n");
	uint8_t *out = NULL;
	size_t len = 0;

	tap_is(kura_json_dump(j, &out, &len), 0, "a compact dump");
	tap_ok(out && len == strlen("{\"k\":\"a\x7f\xc3\xa9\\n\"}") &&
			memcmp(out, "{\"k\":\"a\x7f\xc3\xa9\\n\"}", len) == 0,
		"holds the UTF-8 and DEL as they are");
	free(out);
	out = NULL;
	tap_is(kura_json_dump_ascii(j, &out, &len), 0, "an ASCII dump");
	tap_ok(out && len == strlen("{\"k\":\"a\\u007f\\u00E9\\n\"}") &&
			memcmp(out, "{\"k\":\"a\\u007f\\u00E9\\n\"}", len) == 0,
		"escapes DEL and non-ASCII: %.*s", (int)len, out ? (const char *)out : "");
	for (size_t i = 0; out && i < len; i++)
		if (out[i] < 0x20 || out[i] >= 0x7f) {
			tap_ok(false, "a byte outside printable ASCII at %zu", i);
			break;
		}
	free(out);
	tap_is((long long)kura_json_escape_del("a\x7f"
					       "b",
		       3, NULL),
		8, "escape_del counts 'a' + 6 + 'b'");
	json_decref(j);
}

int main(void)
{
	kura_json_init();
	test_alloc();
	test_b64();
	test_int();
	test_load();
	test_dump();
	return tap_done();
}

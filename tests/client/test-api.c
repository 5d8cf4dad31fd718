/* Unit tests of the client's API decoder (client/api.c, linked dynamically so the sanitizers
 * reach it): a secret's raw answer and its headers, the JSON answer of an older kurad, the
 * listing, and kura_api_fetch() end to end against a forked server on a real Unix socket.
 * Touches plaintext: test values only. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "api.h"
#include "json.h"
#include "macro.h"
#include "serve.h"
#include "tap.h"

#define FP "b2:0123456789abcdef0123456789abcdef"
#define LIT(s) s, sizeof(s) - 1

/* The headers a raw answer carries; NULL leaves one out. */
static void heads(struct kura_http_header *want, const char *type, const char *version,
	const char *fp, const char *created)
{
	const char *v[KURA_SECRET_HEADERS] = { type, version, fp, created };

	kura_api_secret_headers(want);
	for (size_t i = 0; i < KURA_SECRET_HEADERS; i++) {
		want[i].found = v[i] != NULL;
		snprintf(want[i].value, sizeof(want[i].value), "%s", v[i] ? v[i] : "");
	}
}

/* kura_api_take_secret() on body text with those headers: its result, *why and the value. */
static int take(const char *type, const char *version, const char *fp, const char *created,
	const char *text, size_t len, uint64_t *ret_version, const char **why,
	struct kura_secbuf **ret_value)
{
	struct kura_http_header want[KURA_SECRET_HEADERS + 1];
	struct kura_secbuf *body = kura_test_value(text, len), *v = NULL, *was = body;
	uint64_t ver = 0;
	int r;

	heads(want, type, version, fp, created);
	*why = "(unset)";
	r = kura_api_take_secret(want, &body, "db/x", &v, &ver, why);
	if (r == 0 && strcmp(type ? type : "", "application/octet-stream") == 0 &&
		(v != was || body))
		r = -999; /* the raw value must be the body itself, moved, never copied */
	if (r < 0 && (v || body != was))
		r = -998; /* nothing returned on failure, the body left to the caller */
	kura_secbuf_free(body);
	if (ret_value)
		*ret_value = v;
	else
		kura_secbuf_free(v);
	if (ret_version)
		*ret_version = ver;
	return r;
}

static void test_headers(void)
{
	struct kura_http_header want[KURA_SECRET_HEADERS + 1];

	kura_api_secret_headers(want);
	tap_ok(strcmp(want[KURA_SECRET_TYPE].name, "Content-Type") == 0 &&
			strcmp(want[KURA_SECRET_VERSION].name, "Kura-Version") == 0 &&
			strcmp(want[KURA_SECRET_FINGERPRINT].name, "Kura-Fingerprint") == 0 &&
			strcmp(want[KURA_SECRET_CREATED].name, "Kura-Created") == 0 &&
			!want[KURA_SECRET_HEADERS].name && !want[0].found,
		"headers: the four a secret's answer is read by, NULL-ended, none found yet");
}

static void test_raw(void)
{
	struct kura_secbuf *v = NULL;
	const char *why;
	uint64_t ver;
	int r;

	r = take("application/octet-stream", "7", FP, "2026-01-01T00:00:00Z", LIT("a\0b\xff"), &ver,
		&why, &v);
	tap_ok(r == 0 && ver == 7 && v && v->len == 4 && memcmp(v->data, "a\0b\xff", 4) == 0 &&
			!why,
		"raw: the body is the value, moved not copied, version 7 (%d)", r);
	kura_secbuf_free(TAKE_PTR(v));
	r = take("application/octet-stream", "1", FP, "2026-01-01T00:00:00Z", "", 0, &ver, &why,
		&v);
	tap_ok(r == 0 && v && v->len == 0 && ver == 1, "raw: an empty value (%d)", r);
	kura_secbuf_free(TAKE_PTR(v));
	tap_is(take("Application/Octet-Stream ; x=y", "18446744073709551615", FP,
		       "2026-12-31T23:59:60.123456+05:30", LIT("v"), &ver, &why, NULL),
		0, "raw: type case-insensitive with parameters, version UINT64_MAX, offset time");
	tap_ok(ver == UINT64_MAX, "raw: version UINT64_MAX read whole");

	static const struct {
		const char *version, *fp, *created, *header, *what;
	} bad[] = {
		{ NULL, FP, "2026-01-01T00:00:00Z", "Kura-Version", "no Kura-Version" },
		{ "", FP, "2026-01-01T00:00:00Z", "Kura-Version", "an empty Kura-Version" },
		{ "0", FP, "2026-01-01T00:00:00Z", "Kura-Version", "Kura-Version 0" },
		{ "-1", FP, "2026-01-01T00:00:00Z", "Kura-Version", "a negative Kura-Version" },
		{ "+1", FP, "2026-01-01T00:00:00Z", "Kura-Version", "a signed Kura-Version" },
		{ "1x", FP, "2026-01-01T00:00:00Z", "Kura-Version", "a suffix on Kura-Version" },
		{ "0x1", FP, "2026-01-01T00:00:00Z", "Kura-Version", "a hex Kura-Version" },
		{ "1 2", FP, "2026-01-01T00:00:00Z", "Kura-Version", "two numbers" },
		{ "18446744073709551616", FP, "2026-01-01T00:00:00Z", "Kura-Version",
			"Kura-Version past uint64" },
		{ "1", NULL, "2026-01-01T00:00:00Z", "Kura-Fingerprint", "no Kura-Fingerprint" },
		{ "1", "b2:0123", "2026-01-01T00:00:00Z", "Kura-Fingerprint",
			"a short fingerprint" },
		{ "1", FP "0", "2026-01-01T00:00:00Z", "Kura-Fingerprint", "a long fingerprint" },
		{ "1", "b2:0123456789ABCDEF0123456789abcdef", "2026-01-01T00:00:00Z",
			"Kura-Fingerprint", "uppercase hex" },
		{ "1", "b3:0123456789abcdef0123456789abcdef", "2026-01-01T00:00:00Z",
			"Kura-Fingerprint", "another prefix" },
		{ "1", FP, NULL, "Kura-Created", "no Kura-Created" },
		{ "1", FP, "2026-01-01", "Kura-Created", "a date alone" },
		{ "1", FP, "2026-01-01T00:00:00", "Kura-Created", "no zone" },
		{ "1", FP, "2026-01-01 00:00:00Z", "Kura-Created", "a space for the T" },
		{ "1", FP, "2026-01-01T00:00:00.Z", "Kura-Created", "an empty fraction" },
		{ "1", FP, "2026-01-01T00:00:00+0530", "Kura-Created", "an offset without colon" },
		{ "1", FP, "2026-01-01T00:00:00Zjunk", "Kura-Created", "junk after the zone" },
		{ "1", FP, "yesterday", "Kura-Created", "words" },
	};
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		r = take("application/octet-stream", bad[i].version, bad[i].fp, bad[i].created,
			LIT("v"), NULL, &why, NULL);
		tap_ok(r == -EBADMSG && why && strcmp(why, bad[i].header) == 0,
			"raw: %s is -EBADMSG naming %s (%d, %s)", bad[i].what, bad[i].header, r,
			why ? why : "NULL");
	}

	static const char *const types[] = { NULL, "", "text/plain", "application/octet-streamx",
		"application/jsonx", "application/octet", "application/json-seq" };
	for (size_t i = 0; i < ELEMENTSOF(types); i++) {
		r = take(types[i], "1", FP, "2026-01-01T00:00:00Z", LIT("v"), NULL, &why, NULL);
		tap_ok(r == -EMEDIUMTYPE && !why, "type: %s%s%s is -EMEDIUMTYPE (%d)",
			types[i] ? "'" : "", types[i] ? types[i] : "none", types[i] ? "'" : "", r);
	}
}

#define J(value)                                                                                   \
	"{\"name\":\"db/x\",\"version\":3,\"created\":\"2026-01-01T00:00:00Z\","                   \
	"\"value\":\"" value "\"}"

/* kura_api_parse_secret() on text: its result, the version and the value. */
static int parse_json(const char *text, uint64_t *ret_version, struct kura_secbuf **ret_value)
{
	struct kura_secbuf *body = kura_test_value(text, strlen(text)), *v = NULL;
	uint64_t ver = 0;
	int r = kura_api_parse_secret(body, "db/x", &v, &ver);

	kura_secbuf_free(body);
	if (r < 0 && v)
		r = -998;
	if (ret_value)
		*ret_value = v;
	else
		kura_secbuf_free(v);
	if (ret_version)
		*ret_version = ver;
	return r;
}

static void test_json(void)
{
	struct kura_secbuf *v = NULL;
	const char *why;
	uint64_t ver;
	char *pad;
	int r;

	r = parse_json(J("aGVsbG8="), &ver, &v);
	tap_ok(r == 0 && ver == 3 && v && v->len == 5 && memcmp(v->data, "hello", 5) == 0,
		"json: a value decoded from base64, version 3 (%d)", r);
	kura_secbuf_free(TAKE_PTR(v));
	r = parse_json(J(""), &ver, &v);
	tap_ok(r == 0 && v && v->len == 0, "json: an empty value (%d)", r);
	kura_secbuf_free(TAKE_PTR(v));
	r = take("application/json; charset=utf-8", NULL, NULL, NULL, LIT(J("aGk=")), &ver, &why,
		&v);
	tap_ok(r == 0 && v && v->len == 2 && memcmp(v->data, "hi", 2) == 0 && ver == 3 && !why,
		"json: an older kurad's application/json answer is still read (%d)", r);
	kura_secbuf_free(TAKE_PTR(v));
	r = take("application/json", "1", FP, "x", LIT("[1]"), NULL, &why, NULL);
	tap_ok(r == -EBADMSG && !why, "json: Kura- headers are not looked at for JSON (%d)", r);

	static const struct {
		const char *text, *what;
		int want;
	} bad[] = {
		{ "", "an empty body", -EBADMSG },
		{ "[\"aGk=\"]", "an array", -EBADMSG },
		{ "{\"name\":\"db/x\",\"version\":3}", "no value", -EBADMSG },
		{ "{\"value\":\"aGk=\",\"value\":\"aGk=\",\"name\":\"db/x\",\"version\":3}",
			"two values", -EBADMSG },
		{ J("aG\\u0073="), "an escape in the value", -EBADMSG },
		{ "{\"name\":\"db/x\",\"version\":3,\"value\":1}", "a number for the value",
			-EBADMSG },
		{ "{\"name\":\"db/x\",\"version\":3,\"value\":\"aGk=\"", "no closing brace",
			-EBADMSG },
		{ J("aGk"), "base64 without padding", -EILSEQ },
		{ J("aG=k"), "padding inside", -EILSEQ },
		{ J("aGl="), "non-canonical base64 (bits past the end)", -EILSEQ },
		{ "{\"name\":\"db/y\",\"version\":3,\"value\":\"aGk=\"}", "another name", -EPROTO },
		{ "{\"version\":3,\"value\":\"aGk=\"}", "no name", -EPROTO },
		{ "{\"name\":\"db/x\",\"version\":0,\"value\":\"aGk=\"}", "version 0", -EPROTO },
		{ "{\"name\":\"db/x\",\"version\":\"3\",\"value\":\"aGk=\"}", "a string version",
			-EPROTO },
		{ "{\"name\":\"db/x\",\"value\":\"aGk=\"}", "no version", -EPROTO },
		{ "{\"name\":\"db/x\",\"name\":\"db/x\",\"version\":3,\"value\":\"aGk=\"}",
			"a duplicate key", -EPROTO },
		{ "{\"name\":\"db/x\",\"version\":3,\"value\":\"aGk=\",\"x\":tru}",
			"bad JSON beside the value", -EPROTO },
		{ "{\"name\":\"db/x\",\"version\":3,\"value\":\"aGk=\"} x", "junk after the object",
			-EPROTO },
	};
	for (size_t i = 0; i < ELEMENTSOF(bad); i++)
		tap_is(parse_json(bad[i].text, NULL, NULL), bad[i].want, "json: %s is refused",
			bad[i].what);

	/* 64 KiB besides the value is where kura stops handing the rest to jansson. */
	pad = malloc(70 * 1024);
	if (!pad)
		abort();
	snprintf(pad, 70 * 1024,
		"{\"name\":\"db/x\",\"version\":3,\"value\":\"aGk=\",\"pad\":\"%0*d\"}", 65 * 1024,
		0);
	tap_is(parse_json(pad, NULL, NULL), -EFBIG, "json: 65 KiB besides the value is -EFBIG");
	snprintf(pad, 70 * 1024,
		"{\"name\":\"db/x\",\"version\":3,\"value\":\"aGk=\",\"pad\":\"%0*d\"}", 60 * 1024,
		0);
	tap_is(parse_json(pad, NULL, NULL), 0, "json: 60 KiB besides the value is fine");
	free(pad);
}

static int list_of(const char *text, struct kura_secret_set *set, struct kura_fail *f)
{
	json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
	int r;

	*set = (struct kura_secret_set){ 0 };
	*f = (struct kura_fail){ 0 };
	if (!j)
		return -999;
	r = kura_api_parse_list(j, set, f);
	json_decref(j);
	return r;
}

static void test_list(void)
{
	struct kura_secret_set set;
	struct kura_fail f;
	char *big;
	size_t off;
	int r;

	r = list_of("{\"revision\":4,\"secrets\":[{\"name\":\"db/x\",\"version\":2},"
		    "{\"name\":\"tok\",\"version\":9}]}",
		&set, &f);
	tap_ok(r == 0 && set.n == 2 && strcmp(set.items[0].name, "db/x") == 0 &&
			set.items[0].version == 2 && strcmp(set.items[1].name, "tok") == 0 &&
			set.items[1].version == 9 && !set.items[0].value,
		"list: two names and versions, no values (%d)", r);
	kura_secret_set_done(&set);
	tap_ok(!set.items && set.n == 0, "list: done empties the set");
	r = list_of("{\"secrets\":[]}", &set, &f);
	tap_ok(r == 0 && set.n == 0, "list: an empty listing");
	kura_secret_set_done(&set);

	static const struct {
		const char *text, *what;
	} bad[] = {
		{ "{}", "no secrets array" },
		{ "{\"secrets\":{}}", "an object for the array" },
		{ "{\"secrets\":[{\"name\":\"../x\",\"version\":1}]}", "a name climbing up" },
		{ "{\"secrets\":[{\"name\":\"a\\u009b31m\",\"version\":1}]}", "a name with a CSI" },
		{ "{\"secrets\":[{\"name\":\"\",\"version\":1}]}", "an empty name" },
		{ "{\"secrets\":[{\"name\":\"x\",\"version\":0}]}", "version 0" },
		{ "{\"secrets\":[{\"name\":\"x\"}]}", "no version" },
		{ "{\"secrets\":[{\"name\":1,\"version\":1}]}", "a number for the name" },
		{ "{\"secrets\":[{\"name\":\"x\",\"version\":1},\"y\"]}", "a string for an entry" },
	};
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		r = list_of(bad[i].text, &set, &f);
		tap_ok(r == -EBADMSG && f.exit == KURA_EXIT_PROTOCOL && !set.items && !set.n,
			"list: %s is -EBADMSG (16), nothing returned (%d: %s)", bad[i].what, r,
			f.msg);
	}

	big = malloc(1100 * 32);
	if (!big)
		abort();
	for (int n = 1024; n <= 1025; n++) {
		off = (size_t)snprintf(big, 32, "{\"secrets\":[");
		for (int i = 0; i < n; i++)
			off += (size_t)snprintf(big + off, 32, "%s{\"name\":\"n%d\",\"version\":1}",
				i ? "," : "", i);
		snprintf(big + off, 8, "]}");
		r = list_of(big, &set, &f);
		if (n == 1024)
			tap_ok(r == 0 && set.n == 1024, "list: 1024 names (the cap) are taken (%d)",
				r);
		else
			tap_ok(r == -E2BIG && f.exit == KURA_EXIT_PROTOCOL && !set.n &&
					strstr(f.msg, "1025"),
				"list: 1025 names are -E2BIG (16): %s", f.msg);
		kura_secret_set_done(&set);
	}
	free(big);
}

/* kura_api_fetch() of db/x through a server answering reply. */
static int fetch(const char *reply, size_t len, struct kura_secret *s, struct kura_fail *f)
{
	struct kura_broker b = { .socket_path = sock_path, .timeout_ms = 5000 };
	pid_t pid = kura_test_serve(reply, len, NULL, false);
	int r;

	*f = (struct kura_fail){ 0 };
	r = kura_api_fetch(&b, s, f);
	kura_test_reap(pid);
	return r;
}

#define RAW(extra, len, body)                                                                      \
	"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"                            \
	"Kura-Version: 5\r\nKura-Fingerprint: " FP                                                 \
	"\r\nKura-Created: 2026-01-01T00:00:00Z\r\n" extra "Content-Length: " #len "\r\n\r\n" body

static void test_fetch(void)
{
	struct kura_secret s = { .name = (char *)"db/x" };
	struct kura_fail f;
	int r;

	r = fetch(LIT(RAW("", 3, "a\0b")), &s, &f);
	tap_ok(r == 0 && s.version == 5 && s.value && s.value->len == 3 &&
			memcmp(s.value->data, "a\0b", 3) == 0 &&
			kura_test_request_has("GET /v1/secrets/db/x HTTP/1.1\r\n") &&
			kura_test_request_has("\r\nAccept: application/octet-stream\r\n"),
		"fetch: asks for the raw form and takes it (%d: %s)", r, f.msg);
	r = fetch(LIT("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 79\r\n"
		      "\r\n" J("aGVsbG8=")),
		&s, &f);
	tap_ok(r == 0 && s.version == 3 && s.value && s.value->len == 5,
		"fetch: an older kurad's JSON answer still works (%d: %s)", r, f.msg);
	kura_secbuf_free(TAKE_PTR(s.value));

	static const struct {
		const char *reply;
		size_t len;
		int exit;
		const char *says, *what;
	} bad[] = {
		{ LIT(RAW("Kura-Version: 5\r\n", 1, "v")), KURA_EXIT_PROTOCOL, "malformed",
			"Kura-Version twice" },
		{ LIT("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
		      "Kura-Version: x\r\nKura-Fingerprint: " FP "\r\n"
		      "Kura-Created: 2026-01-01T00:00:00Z\r\nContent-Length: 1\r\n\r\nv"),
			KURA_EXIT_PROTOCOL, "Kura-Version", "a bad Kura-Version" },
		{ LIT("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1\r\n\r\nv"),
			KURA_EXIT_PROTOCOL, "text/plain", "text/plain" },
		{ LIT("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nv"), KURA_EXIT_PROTOCOL,
			"(none)", "no Content-Type" },
		{ LIT("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
		      "\r\n{}"),
			KURA_EXIT_PROTOCOL, "base64", "JSON without a value" },
		{ LIT("HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\n"
		      "Content-Length: 39\r\n\r\n{\"error\":\"denied\",\"message\":\"no grant\"}"),
			KURA_EXIT_REFUSED, "no grant", "a 403 (JSON, as every error)" },
		{ LIT("HTTP/1.1 503 X\r\nContent-Length: 0\r\n\r\n"), KURA_EXIT_UNAVAILABLE,
			"(no message)", "a 503 without a message" },
	};
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		r = fetch(bad[i].reply, bad[i].len, &s, &f);
		tap_ok(r < 0 && f.exit == bad[i].exit && strstr(f.msg, bad[i].says) && !s.value,
			"fetch: %s exits %d, saying '%s' (%d: %s)", bad[i].what, bad[i].exit,
			bad[i].says, r, f.msg);
	}

	s.name = (char *)"../etc/passwd";
	f = (struct kura_fail){ 0 };
	r = kura_api_fetch(
		&(struct kura_broker){ .socket_path = "/nonexistent", .timeout_ms = 100 }, &s, &f);
	tap_ok(r == -EINVAL && f.exit == KURA_EXIT_USAGE,
		"fetch: a name breaking the rules is refused before any request (%s)", f.msg);
}

int main(void)
{
	kura_json_init();
	if (kura_test_serve_init() < 0)
		return 99;
	test_headers();
	test_raw();
	test_json();
	test_list();
	test_fetch();
	kura_test_serve_done();
	return tap_done();
}

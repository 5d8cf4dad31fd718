/* Unit tests of the client's HTTP response parser and exchange (client/http.c, linked
 * dynamically so the sanitizers reach it): the head parser's every refusal and the wanted
 * headers, then real exchanges with a forked server on a real Unix socket (the request kura
 * sends, bodies short of or past their Content-Length, a broker that never answers). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "http.h"
#include "macro.h"
#include "serve.h"
#include "tap.h"

#define MAX (4u * 1024u * 1024u)

/* Parses a copy of text (the parser cuts its input up) with the given cap and wanted headers. */
static int parse(const char *text, size_t max, struct kura_http_header *want, int *status,
	size_t *len)
{
	char *h = strdup(text);
	int st = -1, r;
	size_t l = (size_t)-1;

	if (!h)
		abort();
	r = kura_http_parse_head(h, max, want, &st, &l);
	free(h);
	if (status)
		*status = st;
	if (len)
		*len = l;
	return r;
}

#define OK_HEAD "HTTP/1.1 200 OK\r\nContent-Length: 5"

static void test_status_line(void)
{
	int status = 0, r;
	size_t len = 0;

	r = parse(OK_HEAD, MAX, NULL, &status, &len);
	tap_ok(r == 0 && status == 200 && len == 5,
		"head: 200 with Content-Length 5 (status %d, length %zu)", status, len);
	tap_ok(parse("HTTP/1.0 403 Forbidden\r\nContent-Length: 0", MAX, NULL, &status, &len) ==
				0 &&
			status == 403 && len == 0,
		"head: HTTP/1.0 403 with an empty body");
	tap_ok(parse("HTTP/1.1 503\r\nContent-Length: 1", MAX, NULL, &status, &len) == 0 &&
			status == 503,
		"head: a status line without a reason");

	static const struct {
		const char *text, *what;
	} bad[] = {
		{ "", "an empty head" },
		{ "HTTP/2 200 OK\r\nContent-Length: 5", "HTTP/2" },
		{ "HTTP/1.1 200OK\r\nContent-Length: 5", "no space after the status" },
		{ "HTTP/1.1 20 OK\r\nContent-Length: 5", "a two-digit status" },
		{ "HTTP/1.1 2000 OK\r\nContent-Length: 5", "a four-digit status" },
		{ "HTTP/1.1 600 OK\r\nContent-Length: 5", "status 600" },
		{ "HTTP/1.1 099 OK\r\nContent-Length: 5", "status 099" },
		{ "HTTP/1.1 2x0 OK\r\nContent-Length: 5", "a letter in the status" },
		{ "http/1.1 200 OK\r\nContent-Length: 5", "a lowercase protocol" },
		{ "\r\nHTTP/1.1 200 OK\r\nContent-Length: 5", "an empty line before the status" },
		{ "HTTP/1.1 200 OK\nContent-Length: 5", "a bare LF ending the status line" },
		{ "HTTP/1.1 200 O\rK\r\nContent-Length: 5", "a bare CR in the reason" },
		{ "HTTP/1.1 200 O\x01K\r\nContent-Length: 5", "a control byte in the reason" },
	};
	for (size_t i = 0; i < ELEMENTSOF(bad); i++)
		tap_is(parse(bad[i].text, MAX, NULL, NULL, NULL), -EBADMSG, "head: %s is refused",
			bad[i].what);
}

static void test_content_length(void)
{
	int status;
	size_t len;

	tap_ok(parse("HTTP/1.1 200 OK\r\ncontent-length:\t 7 \t", MAX, NULL, &status, &len) == 0 &&
			len == 7,
		"length: name case-insensitive, blanks around the value");
	tap_ok(parse("HTTP/1.1 200 OK\r\nContent-Length: 4194304", MAX, NULL, NULL, &len) == 0 &&
			len == MAX,
		"length: exactly the cap is allowed");
	tap_is(parse("HTTP/1.1 200 OK\r\nContent-Length: 4194305", MAX, NULL, NULL, NULL), -EFBIG,
		"length: one byte over the cap is -EFBIG");
	tap_is(parse("HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615", MAX, NULL, NULL,
		       NULL),
		-EFBIG, "length: UINT64_MAX is -EFBIG");

	static const struct {
		const char *text, *what;
	} bad[] = {
		{ "HTTP/1.1 200 OK", "no Content-Length" },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5",
			"Content-Length twice" },
		{ "HTTP/1.1 200 OK\r\nContent-Length: -5", "a negative length" },
		{ "HTTP/1.1 200 OK\r\nContent-Length: +5", "a signed length" },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 0x5", "a hex length" },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 5 5", "two numbers" },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 5a", "a suffix" },
		{ "HTTP/1.1 200 OK\r\nContent-Length: ", "an empty length" },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551616", "past uint64" },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked",
			"chunked transfer coding" },
		{ "HTTP/1.1 200 OK\r\ntransfer-encoding: identity\r\nContent-Length: 5",
			"any Transfer-Encoding" },
	};
	for (size_t i = 0; i < ELEMENTSOF(bad); i++)
		tap_is(parse(bad[i].text, MAX, NULL, NULL, NULL), -EBADMSG, "length: %s is refused",
			bad[i].what);
}

static void test_header_lines(void)
{
	static const struct {
		const char *text, *what;
	} bad[] = {
		{ OK_HEAD "\r\nNo-Colon", "a line without a colon" },
		{ OK_HEAD "\r\n: v", "an empty name" },
		{ OK_HEAD "\r\nName : v", "a blank before the colon" },
		{ OK_HEAD "\r\n folded: v", "a folded (obs-fold) line" },
		{ OK_HEAD "\r\nNa(me: v", "a name that is no token" },
		{ OK_HEAD "\r\n\r\nX: y", "an empty line inside the head" },
		{ OK_HEAD "\r\nX: a\nY: b", "a bare LF between lines" },
		{ OK_HEAD "\r\nX: a\rb", "a bare CR in a value" },
		{ OK_HEAD "\r\nX: a\x1b[2Jb", "an escape in a value" },
		{ OK_HEAD "\r\nX: a\x7f", "DEL in a value" },
		{ OK_HEAD "\r\n", "a head ending in CRLF (an empty last line)" },
	};
	for (size_t i = 0; i < ELEMENTSOF(bad); i++)
		tap_is(parse(bad[i].text, MAX, NULL, NULL, NULL), -EBADMSG, "lines: %s is refused",
			bad[i].what);
	tap_is(parse(OK_HEAD "\r\nX-Tab:\ta\tb", MAX, NULL, NULL, NULL), 0,
		"lines: tabs inside a value are fine");
	tap_is(parse(OK_HEAD "\r\nX-Odd: caf\xc3\xa9 \xff", MAX, NULL, NULL, NULL), 0,
		"lines: bytes past ASCII in an unwanted value are fine (never printed)");
}

static void test_wanted(void)
{
	struct kura_http_header want[] = { { .name = "Content-Type" }, { .name = "Kura-Version" },
		{ .name = "Kura-Missing" }, { .name = NULL } };
	char big[KURA_HTTP_VALUE_MAX + 64];
	int r;

	r = parse(OK_HEAD "\r\ncontent-TYPE:  application/octet-stream  \r\nKURA-VERSION: 12\r\n"
			  "Other: x",
		MAX, want, NULL, NULL);
	tap_ok(r == 0 && want[0].found && strcmp(want[0].value, "application/octet-stream") == 0,
		"want: Content-Type found, case-insensitive, trimmed ('%s')", want[0].value);
	tap_ok(want[1].found && strcmp(want[1].value, "12") == 0, "want: Kura-Version is '%s'",
		want[1].value);
	tap_ok(!want[2].found && want[2].value[0] == '\0', "want: a header not sent is not found");

	r = parse(OK_HEAD "\r\nKura-Version: 1\r\nKura-Version: 1", MAX, want, NULL, NULL);
	tap_ok(r == -EBADMSG && !want[1].found && !want[0].found,
		"want: a wanted header twice is refused, and nothing is found after (%d)", r);
	tap_is(parse(OK_HEAD "\r\nOther: 1\r\nOther: 2", MAX, want, NULL, NULL), 0,
		"want: an unwanted header twice is fine");
	r = parse(OK_HEAD "\r\nKura-Version:", MAX, want, NULL, NULL);
	tap_ok(r == 0 && want[1].found && want[1].value[0] == '\0',
		"want: an empty value is found empty (the API refuses it)");

	memset(big, 'a', sizeof(big));
	snprintf(big, sizeof(big), OK_HEAD "\r\nKura-Version: %0*d", KURA_HTTP_VALUE_MAX - 1, 7);
	r = parse(big, MAX, want, NULL, NULL);
	tap_ok(r == 0 && strlen(want[1].value) == KURA_HTTP_VALUE_MAX - 1,
		"want: a value of %d bytes fits", KURA_HTTP_VALUE_MAX - 1);
	snprintf(big, sizeof(big), OK_HEAD "\r\nKura-Version: %0*d", KURA_HTTP_VALUE_MAX, 7);
	tap_is(parse(big, MAX, want, NULL, NULL), -EBADMSG, "want: a value of %d bytes is refused",
		KURA_HTTP_VALUE_MAX);
	snprintf(big, sizeof(big), OK_HEAD "\r\nOther: %0*d", KURA_HTTP_VALUE_MAX + 10, 7);
	tap_is(parse(big, MAX, want, NULL, NULL), 0, "want: a long unwanted value is fine");
	r = parse("HTTP/1.1 200 OK\r\nKura-Version: 3\r\nContent-Length: 9", 4, want, NULL, NULL);
	tap_ok(r == -EFBIG && !want[1].found, "want: over the cap, nothing is found (%d)", r);
}

/* GET through a fresh server answering reply; returns kura_http_get's result. */
static int get(const char *reply, size_t len, const char *accept, struct kura_http_header *want,
	int *status, struct kura_secbuf **body, struct kura_fail *f)
{
	pid_t pid = kura_test_serve(reply, len, NULL, false);
	int r;

	*f = (struct kura_fail){ 0 };
	r = kura_http_get(sock_path, "/v1/secrets/db/x", accept, 5000, MAX, want, status, body, f);
	kura_test_reap(pid);
	return r;
}

#define LIT(s) s, sizeof(s) - 1
#define RAW_OK "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nKura-Version: 4\r\n"

static void test_exchange(void)
{
	struct kura_http_header want[] = { { .name = "Kura-Version" }, { .name = NULL } };
	static const char bin[] = RAW_OK "Content-Length: 6\r\n\r\na\0b\r\n\xff";
	struct kura_secbuf *body = NULL;
	struct kura_fail f;
	int status = 0, r;
	pid_t pid;

	r = get(bin, sizeof(bin) - 1, "application/octet-stream", want, &status, &body, &f);
	tap_ok(r == 0 && status == 200 && body && body->len == 6 &&
			memcmp(body->data, "a\0b\r\n\xff", 6) == 0 && want[0].found &&
			strcmp(want[0].value, "4") == 0,
		"get: a raw body with NUL, CRLF and 0xff arrives whole, the header with it (%d: "
		"%s)",
		r, f.msg);
	tap_ok(kura_test_request_has("GET /v1/secrets/db/x HTTP/1.1\r\n") &&
			kura_test_request_has("\r\nAccept: application/octet-stream\r\n") &&
			kura_test_request_has("\r\nConnection: close\r\n"),
		"get: the request names the path, Accept: application/octet-stream, "
		"Connection: close");
	kura_secbuf_free(TAKE_PTR(body));

	r = get(LIT("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), NULL, NULL, &status, &body,
		&f);
	tap_ok(r == 0 && body && body->len == 0 && !kura_test_request_has("Accept:"),
		"get: an empty body; without accept no Accept header is sent (%d)", r);
	kura_secbuf_free(TAKE_PTR(body));

	r = get(LIT(RAW_OK "Content-Length: 6\r\n\r\nabc"), NULL, want, &status, &body, &f);
	tap_ok(r == -EBADMSG && !body && f.exit == KURA_EXIT_PROTOCOL && !want[0].found,
		"get: a body short of its Content-Length is refused (16), nothing returned (%d: "
		"%s)",
		r, f.msg);
	r = get(LIT(RAW_OK "Content-Length: 2\r\n\r\nabcdef"), NULL, want, &status, &body, &f);
	tap_ok(r == -EBADMSG && !body && f.exit == KURA_EXIT_PROTOCOL,
		"get: a body longer than its Content-Length is refused (16) (%d: %s)", r, f.msg);
	r = get(LIT(RAW_OK "Content-Length: 4194305\r\n\r\n"), NULL, want, &status, &body, &f);
	tap_ok(r == -EFBIG && !body && f.exit == KURA_EXIT_PROTOCOL && strstr(f.msg, "limit"),
		"get: a Content-Length over the cap is refused (16) before any body (%s)", f.msg);
	r = get(LIT("HTTP/1.1 200 OK\r\nContent-Le"), NULL, NULL, &status, &body, &f);
	tap_ok(r == -EBADMSG && f.exit == KURA_EXIT_PROTOCOL,
		"get: closed inside the head is refused (16)");

	pid = kura_test_serve(LIT(RAW_OK "Content-Length: 2\r\n\r\nab"), "cd", false);
	f = (struct kura_fail){ 0 };
	r = kura_http_get(sock_path, "/v1/secrets/x", NULL, 5000, MAX, want, &status, &body, &f);
	kura_test_reap(pid);
	tap_ok(r == -EBADMSG && !body && f.exit == KURA_EXIT_PROTOCOL,
		"get: bytes past the Content-Length arriving later are refused (16) (%d: %s)", r,
		f.msg);

	pid = kura_test_serve("", 0, NULL, true);
	f = (struct kura_fail){ 0 };
	r = kura_http_get(sock_path, "/v1/secrets", NULL, 300, MAX, NULL, &status, &body, &f);
	kura_test_reap(pid);
	tap_ok(r == -ETIMEDOUT && f.exit == KURA_EXIT_UNREACHABLE && !body,
		"get: a broker that never answers times out (10) (%d: %s)", r, f.msg);

	unlink(sock_path);
	f = (struct kura_fail){ 0 };
	r = kura_http_get(sock_path, "/v1/secrets", NULL, 300, MAX, NULL, &status, &body, &f);
	tap_ok(r == -ENOENT && f.exit == KURA_EXIT_UNREACHABLE,
		"get: no socket is unreachable (10) (%s)", f.msg);
}

int main(void)
{
	if (kura_test_serve_init() < 0)
		return 99;
	test_status_line();
	test_content_length();
	test_header_lines();
	test_wanted();
	test_exchange();
	kura_test_serve_done();
	return tap_done();
}

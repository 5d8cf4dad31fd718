/* Unit tests for escaping text from outside before it reaches a terminal: every control and
 * bidi code point, broken UTF-8, both styles, cutting to fit, and random bytes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"
#include "tap.h"

static bool is(const char *in, size_t len, enum kura_escape_style st, const char *want)
{
	char out[256];

	kura_escape(in, len, st, out, sizeof(out));
	if (strcmp(out, want) == 0)
		return true;
	tap_diag("got '%s', want '%s'", out, want);
	return false;
}

#define TEXT(in, want) is(in, sizeof(in) - 1, KURA_ESCAPE_TEXT, want)
#define JSON(in, want) is(in, sizeof(in) - 1, KURA_ESCAPE_JSON, want)

static size_t put_utf8(uint32_t cp, unsigned char *b)
{
	if (cp < 0x80) {
		b[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		b[0] = (unsigned char)(0xc0 | cp >> 6);
		b[1] = (unsigned char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		b[0] = (unsigned char)(0xe0 | cp >> 12);
		b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (unsigned char)(0x80 | (cp & 0x3f));
		return 3;
	}
	b[0] = (unsigned char)(0xf0 | cp >> 18);
	b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
	b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
	b[3] = (unsigned char)(0x80 | (cp & 0x3f));
	return 4;
}

static bool bad_cp(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || (cp >= 0x202a && cp <= 0x202e) ||
		(cp >= 0x2066 && cp <= 0x2069) || cp == 0x200e || cp == 0x200f || cp == 0x061c ||
		cp == 0x2028 || cp == 0x2029;
}

/* out is valid UTF-8 holding no code point a terminal acts on (an independent decoder). */
static bool safe_output(const char *out)
{
	const unsigned char *p = (const unsigned char *)out;

	while (*p) {
		uint32_t cp;
		int n = *p < 0x80           ? 1 :
			(*p & 0xe0) == 0xc0 ? 2 :
			(*p & 0xf0) == 0xe0 ? 3 :
			(*p & 0xf8) == 0xf0 ? 4 :
					      0;

		if (n == 0)
			return false;
		cp = n == 1 ? *p : (uint32_t)(*p & (0x7f >> n));
		for (int i = 1; i < n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (p[i] & 0x3f);
		}
		if (bad_cp(cp) || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff ||
			(n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000))
			return false;
		p += n;
	}
	return true;
}

int main(void)
{
	char out[64], big[4096];
	unsigned char in[8];
	size_t bad = 0, leaked = 0;

	tap_ok(TEXT("web-1 db/password", "web-1 db/password"), "printable ASCII passes unchanged");
	tap_ok(TEXT("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"), "ESC as \\x1b");
	tap_ok(TEXT("a\nb\tc\rd\x07\x7f", "a\\x0ab\\x09c\\x0dd\\x07\\x7f"),
		"newline, tab, CR, BEL and DEL as \\xNN");
	tap_ok(TEXT("\xc2\x9b"
		    "31m",
		       "\\u{9b}31m"),
		"C1 CSI (U+009B) as \\u{9b}");
	tap_ok(TEXT("a\xc2\x85"
		    "b",
		       "a\\u{85}b"),
		"C1 NEL (U+0085) as \\u{85}");
	tap_ok(TEXT("\xc2\x80\xc2\x9f\xc2\x9d", "\\u{80}\\u{9f}\\u{9d}"), "U+0080, U+009F, OSC");
	tap_ok(TEXT("\xc2\xa0\xc3\xa9\xe6\x97\xa5\xf0\x9f\x94\x91",
		       "\xc2\xa0\xc3\xa9\xe6\x97\xa5\xf0\x9f\x94\x91"),
		"NBSP, e-acute, a CJK character and an emoji pass unchanged");
	tap_ok(TEXT("x\xe2\x80\xaey", "x\\u{202e}y"), "RIGHT-TO-LEFT OVERRIDE as \\u{202e}");
	tap_ok(TEXT("\xe2\x80\xaa\xe2\x81\xa6\xe2\x81\xa9\xe2\x80\x8f\xd8\x9c\xe2\x80\xa8",
		       "\\u{202a}\\u{2066}\\u{2069}\\u{200f}\\u{61c}\\u{2028}"),
		"bidi embeddings, isolates, marks and the line separator");
	tap_ok(TEXT("a\\x1b", "a\\\\x1b"), "a backslash doubled: no escape is ambiguous");
	tap_ok(is("a\0b", 3, KURA_ESCAPE_TEXT, "a\\x00b"), "a NUL inside as \\x00");
	tap_ok(TEXT("\xff\xfe", "\\xff\\xfe"), "bytes that are never UTF-8 as \\xNN");
	tap_ok(TEXT("\xc0\xaf\xe0\x80\xaf", "\\xc0\\xaf\\xe0\\x80\\xaf"), "overlong forms");
	tap_ok(TEXT("\xed\xa0\x80", "\\xed\\xa0\\x80"), "a surrogate");
	tap_ok(TEXT("\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80"), "past U+10FFFF");
	tap_ok(TEXT("a\xe2\x80", "a\\xe2\\x80"), "a sequence cut short at the end");
	tap_ok(TEXT("\xe2\x80"
		    "A\x80",
		       "\\xe2\\x80A\\x80"),
		"a sequence cut short by ASCII");
	tap_ok(TEXT("\xc2", "\\xc2"), "a lone lead byte");

	tap_ok(JSON("\xc2\x9b"
		    "31m",
		       "\\u009b31m"),
		"JSON: C1 as \\u009b");
	tap_ok(JSON("\x1b"
		    "x\x7f",
		       "\\u001bx\\u007f"),
		"JSON: ESC and DEL as \\u00NN");
	tap_ok(JSON("x\xe2\x80\xaey", "x\\u202ey"), "JSON: bidi as \\u202e");
	tap_ok(JSON("{\"a\":\"b\\\\\"}", "{\"a\":\"b\\\\\"}"), "JSON: backslashes left alone");
	tap_ok(JSON("\xc3\xa9\xff", "\xc3\xa9\\xff"), "JSON: other Unicode kept, a bad byte \\xNN");

	kura_escape("abc\x1b", 4, KURA_ESCAPE_TEXT, out, 5);
	tap_ok(strcmp(out, "abc") == 0, "cut before an escape that does not fit: '%s'", out);
	kura_escape("a\xc3\xa9", 3, KURA_ESCAPE_TEXT, out, 3);
	tap_ok(strcmp(out, "a") == 0, "never inside a character: '%s'", out);
	kura_escape("abc", 3, KURA_ESCAPE_TEXT, out, 1);
	tap_ok(out[0] == '\0', "a buffer of one byte holds the empty string");

	for (uint32_t cp = 0; cp <= 0x10ffff; cp++) {
		size_t n;

		if (cp >= 0xd800 && cp <= 0xdfff)
			continue;
		n = put_utf8(cp, in);
		kura_escape((const char *)in, n, KURA_ESCAPE_TEXT, out, sizeof(out));
		if (!safe_output(out))
			leaked++;
		else if (!bad_cp(cp) && cp != '\\' && (strlen(out) != n || memcmp(out, in, n) != 0))
			bad++;
	}
	tap_ok(leaked == 0,
		"no code point from U+0000 to U+10FFFF gets through raw if it is a "
		"control (%zu did)",
		leaked);
	tap_ok(bad == 0, "and every other one passes unchanged (%zu did not)", bad);

	srand(7);
	leaked = 0;
	for (int round = 0; round < 20000; round++) {
		char rnd[512];
		size_t n = (size_t)(rand() % (int)sizeof(rnd));

		for (size_t i = 0; i < n; i++)
			rnd[i] = (char)(rand() % 4 == 0 ? 0x80 + rand() % 0x40 : rand() % 256);
		kura_escape(rnd, n, round % 2 ? KURA_ESCAPE_JSON : KURA_ESCAPE_TEXT, big,
			sizeof(big));
		if (!safe_output(big))
			leaked++;
	}
	tap_ok(leaked == 0,
		"20000 strings of random bytes: the output is valid UTF-8 with no "
		"control in it (%zu were not)",
		leaked);
	return tap_done();
}

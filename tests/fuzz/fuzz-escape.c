/* libFuzzer target for kura_escape (escape.h), which every command applies to text from a
 * runtime, an image author or a peer before a terminal sees it: what comes out is valid UTF-8
 * with nothing a terminal acts on; for people (TEXT) it reads back to exactly the input, so no
 * escape is ambiguous; cut to a smaller buffer, it is a prefix of the whole. No plaintext. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "escape.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The valid UTF-8 sequence at s: its length and code point, or 0 (a strict reference). */
static size_t utf8(const uint8_t *s, size_t n, uint32_t *cp)
{
	size_t len = s[0] < 0x80      ? 1 :
		(s[0] & 0xe0) == 0xc0 ? 2 :
		(s[0] & 0xf0) == 0xe0 ? 3 :
		(s[0] & 0xf8) == 0xf0 ? 4 :
					0;
	static const uint32_t min[] = { 0, 0, 0x80, 0x800, 0x10000 };

	if (len == 0 || len > n)
		return 0;
	*cp = len == 1 ? s[0] : s[0] & (0x7f >> len);
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		*cp = *cp << 6 | (s[i] & 0x3f);
	}
	if (*cp < min[len] || *cp > 0x10ffff || (*cp >= 0xd800 && *cp <= 0xdfff))
		return 0;
	return len;
}

static bool acts(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x061c || cp == 0x200e ||
		cp == 0x200f || (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

static void check_safe(const char *out)
{
	const uint8_t *p = (const uint8_t *)out;
	size_t n = strlen(out);

	for (size_t i = 0; i < n;) {
		uint32_t cp;
		size_t k = utf8(p + i, n - i, &cp);

		check(k > 0 && !acts(cp));
		i += k;
	}
}

static size_t put_utf8(uint32_t cp, uint8_t *o)
{
	if (cp < 0x80) {
		o[0] = (uint8_t)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (uint8_t)(0xc0 | cp >> 6);
		o[1] = (uint8_t)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (uint8_t)(0xe0 | cp >> 12);
		o[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (uint8_t)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (uint8_t)(0xf0 | cp >> 18);
	o[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (uint8_t)(0x80 | (cp & 0x3f));
	return 4;
}

/* TEXT's escapes undone: \\, \xNN (a byte), \u{N} (a code point); -1 if something else. */
static long unescape(const char *s, uint8_t *out)
{
	size_t o = 0;

	while (*s) {
		char *end;

		if (*s != '\\') {
			out[o++] = (uint8_t)*s++;
			continue;
		}
		if (s[1] == '\\') {
			out[o++] = '\\';
			s += 2;
		} else if (s[1] == 'x') {
			char hex[3] = { s[2], s[2] ? s[3] : 0, 0 };

			if (strspn(hex, "0123456789abcdef") != 2)
				return -1;
			out[o++] = (uint8_t)strtoul(hex, NULL, 16);
			s += 4;
		} else if (s[1] == 'u' && s[2] == '{') {
			unsigned long cp = strtoul(s + 3, &end, 16);

			if (end == s + 3 || *end != '}' || cp > 0x10ffff)
				return -1;
			o += put_utf8((uint32_t)cp, out + o);
			s = end + 1;
		} else {
			return -1;
		}
	}
	return (long)o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data + 1;
	size_t len = size ? size - 1 : 0, cap = 10 * len + 1, small;
	char *out, *cut;
	uint8_t *back;
	long n;

	if (size == 0)
		return 0;
	small = 1 + data[0] % 64;
	out = malloc(cap);
	cut = malloc(small);
	back = malloc(cap);
	check(out && cut && back);
	for (int style = KURA_ESCAPE_TEXT; style <= KURA_ESCAPE_JSON; style++) {
		check(kura_escape(s, len, style, out, cap) == out);
		check(strlen(out) < cap);
		check_safe(out);
		if (style == KURA_ESCAPE_TEXT) {
			n = unescape(out, back);
			check(n == (long)len && memcmp(back, s, len) == 0);
		}
		check(kura_escape(s, len, style, cut, small) == cut);
		check(strlen(cut) < small && strncmp(out, cut, strlen(cut)) == 0);
	}
	free(out);
	free(cut);
	free(back);
	return 0;
}

/* Escaping text from outside before it reaches a terminal, and quoting it as a JSON string (see
 * escape.h). No plaintext. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "escape.h"

/* The length of the valid UTF-8 sequence at s (at most n bytes) and its code point, or 0. */
static size_t utf8(const unsigned char *s, size_t n, uint32_t *ret)
{
	uint32_t cp;
	size_t len, i;
	unsigned char lo = 0x80, hi = 0xbf; /* the second byte's range */

	if (s[0] < 0x80) {
		*ret = s[0];
		return 1;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		cp = s[0] & 0x0f;
		if (s[0] == 0xe0)
			lo = 0xa0; /* overlong */
		else if (s[0] == 0xed)
			hi = 0x9f; /* surrogates */
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		cp = s[0] & 0x07;
		if (s[0] == 0xf0)
			lo = 0x90; /* overlong */
		else if (s[0] == 0xf4)
			hi = 0x8f; /* past U+10FFFF */
	} else {
		return 0; /* a continuation byte, 0xc0, 0xc1 (overlong) or 0xf5 and up */
	}
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (i = 1; i < len; i++) {
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	*ret = cp;
	return len;
}

/* Code points a terminal acts on or that change how the rest of the line is shown. */
static bool dangerous(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x061c || cp == 0x200e ||
		cp == 0x200f || (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

const char *kura_escape(const char *s, size_t len, enum kura_escape_style style, char *out,
	size_t cap)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t o = 0, i = 0;

	while (i < len) {
		char esc[16];
		const char *piece = esc;
		size_t n, k;
		uint32_t cp;

		n = utf8(p + i, len - i, &cp);
		if (n == 0) {
			snprintf(esc, sizeof(esc), "\\x%02x", p[i]);
			n = 1;
		} else if (dangerous(cp)) {
			if (style == KURA_ESCAPE_JSON)
				snprintf(esc, sizeof(esc), "\\u%04x", (unsigned)cp);
			else if (cp < 0x80)
				snprintf(esc, sizeof(esc), "\\x%02x", (unsigned)cp);
			else
				snprintf(esc, sizeof(esc), "\\u{%x}", (unsigned)cp);
		} else if (cp == '\\' && style == KURA_ESCAPE_TEXT) {
			piece = "\\\\";
		} else {
			piece = s + i; /* as it is: n bytes */
		}
		k = piece == s + i ? n : strlen(piece);
		if (o + k >= cap)
			break;
		memcpy(out + o, piece, k);
		o += k;
		i += n;
	}
	out[o] = '\0';
	return out;
}

/* JSON's short escapes, and DEL as kura_json_escape_del writes it (jansson lets it through). */
static const char *const json_short[0x80] = { ['"'] = "\\\"",
	['\\'] = "\\\\",
	['\b'] = "\\b",
	['\f'] = "\\f",
	['\n'] = "\\n",
	['\r'] = "\\r",
	['\t'] = "\\t",
	[0x7f] = "\\u007f" };

/* A byte that goes into a JSON string as it is. */
static bool json_plain(unsigned char c)
{
	return c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
}

ssize_t kura_escape_json_string(const char *s, size_t len, char *out)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p = (const unsigned char *)s;
	size_t o = 0, i = 0;

	out[o++] = '"';
	while (i < len) {
		const char *piece;
		uint32_t cp, u[2];
		size_t n, k = 0;

		if (json_plain(p[i])) {
			for (n = 1; i + n < len && json_plain(p[i + n]); n++)
				;
			memcpy(out + o, s + i, n);
			o += n;
			i += n;
			continue;
		}
		n = utf8(p + i, len - i, &cp);
		if (n == 0)
			return -1;
		i += n;
		piece = cp < 0x80 ? json_short[cp] : NULL;
		if (piece) {
			memcpy(out + o, piece, strlen(piece));
			o += strlen(piece);
			continue;
		}
		if (cp < 0x10000) {
			u[k++] = cp;
		} else { /* a UTF-16 surrogate pair */
			u[k++] = 0xd800 | ((cp - 0x10000) >> 10);
			u[k++] = 0xdc00 | ((cp - 0x10000) & 0x3ff);
		}
		for (size_t m = 0; m < k; m++) {
			out[o++] = '\\';
			out[o++] = 'u';
			for (int sh = 12; sh >= 0; sh -= 4)
				out[o++] = hex[(u[m] >> sh) & 0xf];
		}
	}
	out[o++] = '"';
	return (ssize_t)o;
}

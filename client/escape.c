/* Escaping outside text for the terminal: C0, DEL, C1, bidi controls and invalid UTF-8 become
 * visible escapes. No plaintext. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "escape.h"

/* The length of the valid UTF-8 sequence at p (1-4, code point in *cp), or 0 if it is not one:
 * overlong forms, surrogates and code points past U+10FFFF are refused, as RFC 3629 says. */
static size_t utf8_decode(const unsigned char *p, uint32_t *cp)
{
	size_t n;
	uint32_t c;

	if (p[0] < 0x80) {
		*cp = p[0];
		return 1;
	}
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		n = 2;
		c = p[0] & 0x1f;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		n = 3;
		c = p[0] & 0x0f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		n = 4;
		c = p[0] & 0x07;
	} else {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80) /* also stops at the NUL */
			return 0;
		c = c << 6 | (p[i] & 0x3f);
	}
	if ((n == 3 && c < 0x800) || (n == 4 && (c < 0x10000 || c > 0x10ffff)) ||
		(c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return n;
}

static bool unsafe(uint32_t c)
{
	return (c >= 0x80 && c <= 0x9f) || (c >= 0x202a && c <= 0x202e) ||
		(c >= 0x2066 && c <= 0x2069) || c == 0x200e || c == 0x200f || c == 0x061c ||
		c == 0x2028 || c == 0x2029;
}

char *kura_escape(const char *in, char *out, size_t size)
{
	const unsigned char *p = (const unsigned char *)(in ? in : "");
	size_t o = 0, mark = 0; /* mark: the last piece boundary with room for "..." after it */

	if (size == 0)
		return out;
	while (*p) {
		char esc[8];
		const char *piece = esc;
		size_t n, len;
		uint32_t c;

		n = utf8_decode(p, &c);
		if (n == 0 || c < 0x20 || c == 0x7f) {
			snprintf(esc, sizeof(esc), "\\x%02x", *p);
			n = 1;
		} else if (c == '\\') {
			piece = "\\\\";
		} else if (unsafe(c)) {
			snprintf(esc, sizeof(esc), "\\u%04x", (unsigned)c);
		} else {
			piece = (const char *)p;
		}
		len = piece == (const char *)p ? n : strlen(piece);
		if (o + len >= size) { /* never half a character or half an escape */
			if (size >= 4) {
				memcpy(out + mark, "...", 3);
				o = mark + 3;
			}
			break;
		}
		memcpy(out + o, piece, len);
		o += len;
		p += n;
		if (o + 4 <= size)
			mark = o;
	}
	out[o] = '\0';
	return out;
}

/* Constant-time, strict base64: every digit is mapped with arithmetic on masks, never a table
 * lookup or a branch on its value, so the time and the memory touched say nothing about the
 * bytes. May hold plaintext only in the caller's buffers. */
#include <errno.h>

#include "base64.h"
#include "secbuf.h"

/* All ones if a < b (both below 256), else 0. */
static unsigned lt(unsigned a, unsigned b)
{
	return 0u - ((a - b) >> 31);
}

static unsigned in_range(unsigned c, unsigned lo, unsigned hi)
{
	return ~lt(c, lo) & lt(c, hi + 1);
}

static char digit(unsigned v)
{
	unsigned c = (v + 'A') & in_range(v, 0, 25);

	c |= (v - 26 + 'a') & in_range(v, 26, 51);
	c |= (v - 52 + '0') & in_range(v, 52, 61);
	c |= '+' & in_range(v, 62, 62);
	c |= '/' & in_range(v, 63, 63);
	return (char)c;
}

/* The value of digit c, or 0xff... (all ones) if it is not one. */
static unsigned value(unsigned c)
{
	unsigned ok, v;

	ok = in_range(c, 'A', 'Z');
	v = (c - 'A') & ok;
	v |= (c - 'a' + 26) & in_range(c, 'a', 'z');
	ok |= in_range(c, 'a', 'z');
	v |= (c - '0' + 52) & in_range(c, '0', '9');
	ok |= in_range(c, '0', '9');
	v |= 62 & in_range(c, '+', '+');
	ok |= in_range(c, '+', '+');
	v |= 63 & in_range(c, '/', '/');
	ok |= in_range(c, '/', '/');
	return v | ~ok;
}

size_t kura_base64_encode(const uint8_t *in, size_t n, char *out)
{
	size_t o = 0, i;

	for (i = 0; i + 3 <= n; i += 3) {
		unsigned w = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];

		out[o++] = digit(w >> 18);
		out[o++] = digit((w >> 12) & 63);
		out[o++] = digit((w >> 6) & 63);
		out[o++] = digit(w & 63);
	}
	if (n - i == 1) {
		unsigned w = (unsigned)in[i] << 16;

		out[o++] = digit(w >> 18);
		out[o++] = digit((w >> 12) & 63);
		out[o++] = '=';
		out[o++] = '=';
	} else if (n - i == 2) {
		unsigned w = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;

		out[o++] = digit(w >> 18);
		out[o++] = digit((w >> 12) & 63);
		out[o++] = digit((w >> 6) & 63);
		out[o++] = '=';
	}
	return o;
}

int kura_base64_decode(const char *in, size_t len, uint8_t *out, size_t cap, size_t *ret_len)
{
	unsigned bad = 0;
	size_t pad = 0, n, o = 0;

	if (len % 4)
		return -EBADMSG;
	if (len == 0) {
		*ret_len = 0;
		return 0;
	}
	/* Whether the string ends in '=' is public: it is in its length once decoded. */
	if (in[len - 1] == '=')
		pad = in[len - 2] == '=' ? 2 : 1;
	n = len / 4 * 3 - pad;
	if (n > cap)
		return -EMSGSIZE;
	for (size_t i = 0; i < len; i += 4) {
		bool last = i + 4 == len;
		unsigned a = value((unsigned char)in[i]), b = value((unsigned char)in[i + 1]);
		unsigned c = last && pad == 2 ? 0 : value((unsigned char)in[i + 2]);
		unsigned d = last && pad >= 1 ? 0 : value((unsigned char)in[i + 3]);
		unsigned w = (a & 63) << 18 | (b & 63) << 12 | (c & 63) << 6 | (d & 63);

		bad |= (a | b | c | d) & ~63u;
		out[o++] = (uint8_t)(w >> 16);
		if (!last || pad < 2)
			out[o++] = (uint8_t)(w >> 8);
		if (!last || pad < 1)
			out[o++] = (uint8_t)w;
		/* The one spelling: bits past the last byte are zero. */
		if (last && pad == 2)
			bad |= b & 15;
		else if (last && pad == 1)
			bad |= c & 3;
	}
	if (bad) {
		for (size_t i = 0; i < o; i++)
			((volatile uint8_t *)out)[i] = 0;
		return -EBADMSG;
	}
	*ret_len = n;
	return 0;
}

int kura_base64_secbuf(const struct kura_secbuf *value, struct kura_secbuf **ret)
{
	struct kura_secbuf *b;
	int r;

	r = kura_secbuf_new(kura_base64_len(value->len) + 1, &b);
	if (r < 0)
		return r;
	b->len = kura_base64_encode(value->data, value->len, (char *)b->data);
	b->data[b->len] = '\0';
	*ret = b;
	return 0;
}

/* Standard base64 (RFC 4648, with padding), encoded and decoded in constant time: the bytes may
 * be a secret's value. Decoding is strict: one spelling per byte string. libc only (the client
 * builds it too). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Characters that encoding n bytes writes (without a NUL); a constant for a constant n. */
#define KURA_BASE64_LEN(n) (((n) + 2) / 3 * 4)

static inline size_t kura_base64_len(size_t n)
{
	return KURA_BASE64_LEN(n);
}

/* The most bytes len characters can decode to. */
static inline size_t kura_base64_max_decoded(size_t len)
{
	return len / 4 * 3;
}

/* in (n bytes) as base64 into out, which holds kura_base64_len(n) characters (no NUL written);
 * returns the number written. */
size_t kura_base64_encode(const uint8_t *in, size_t n, char *out);

/*
 * Decode exactly len characters of base64 into out (cap bytes). Refused (-EBADMSG) unless it is
 * the one spelling kura_base64_encode writes: a length that is a multiple of 4, only the 64
 * digits, '=' only as the last one or two characters and then the unused bits zero. -EMSGSIZE
 * if out is too small. The time taken depends on len only, not on the characters.
 */
int kura_base64_decode(const char *in, size_t len, uint8_t *out, size_t cap, size_t *ret_len);

struct kura_secbuf;

/* value as base64 text, NUL-terminated, in a new guarded buffer (its len without the NUL): the
 * text is as secret as the value. -ENOMEM. */
int kura_base64_secbuf(const struct kura_secbuf *value, struct kura_secbuf **ret);

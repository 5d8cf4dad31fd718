/* Guarded buffers: the one type that holds plaintext values and key material. Touches
 * plaintext by design: everything here is locked, not dumpable, and wiped on free. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

/*
 * data lies in its own mapping between PROT_NONE guard pages, its end against the upper one (a
 * write past it faults) and a canary below it (checked on free, which aborts if it was
 * written); mlock()ed, MADV_DONTDUMP and MADV_DONTFORK (a forked child has none of it), and
 * zeroed on free. cap never changes; growing means a new buffer and a wiped old one.
 */
struct kura_secbuf {
	uint8_t *data;
	size_t len;
	size_t cap;
	size_t region; /* private: the guarded region's size (>= cap) */
};

/* An empty buffer with room for cap bytes. -ENOMEM. */
int kura_secbuf_new(size_t cap, struct kura_secbuf **ret);

/* Wipes and frees; NULL is fine. */
void kura_secbuf_free(struct kura_secbuf *b);

/* A copy of len bytes of src. */
int kura_secbuf_from(const void *src, size_t len, struct kura_secbuf **ret);

/* len random bytes. */
int kura_secbuf_random(size_t len, struct kura_secbuf **ret);

/* len random characters from the 64-character set [A-Za-z0-9_-] (6 bits each, unbiased). */
int kura_secbuf_printable(size_t len, struct kura_secbuf **ret);

/*
 * Everything readable from fd until end of file, refusing more than max bytes with -EFBIG
 * (nothing is returned then, and what was read is wiped). Grows by doubling without realloc:
 * each step copies into a new guarded buffer and frees (wipes) the old one.
 */
int kura_secbuf_read_fd(int fd, size_t max, struct kura_secbuf **ret);

/* Writes the whole buffer to fd, retrying on EINTR and short writes. */
int kura_secbuf_write_fd(const struct kura_secbuf *b, int fd);

/* Constant-time equality of contents (lengths are not secret). */
bool kura_secbuf_equal(const struct kura_secbuf *a, const struct kura_secbuf *b);

static inline void kura_secbuf_freep(struct kura_secbuf **b)
{
	kura_secbuf_free(*b);
}

#define _cleanup_secbuf_ _cleanup_(kura_secbuf_freep)

/* Initialise libsodium once per process, before any key math (defined in aead.c: guarded
 * buffers themselves need only libc). -EIO if it cannot. */
int kura_keys_init(void);

/* What every kura process that holds keys does first: not dumpable (no ptrace by other users,
 * no core file), core size 0, umask 077, SIGPIPE ignored (a closed peer is an error, not
 * death with buffers unwiped). */
void kura_keys_protect_process(void);

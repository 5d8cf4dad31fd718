/* The guarded buffer of keys/secbuf.h without libsodium (sodium_init alone pulls
 * some 200 KiB of ciphers into the static binary):
 * its own mapping between two PROT_NONE guard pages, mlock()ed, kept out of core dumps and
 * forks, and wiped before unmapping. Touches plaintext: every value the client holds. */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "secbuf.h"

static size_t page_size(void)
{
	static size_t ps;

	if (!ps) {
		long v = sysconf(_SC_PAGESIZE);

		ps = v > 0 ? (size_t)v : 4096;
	}
	return ps;
}

/* The data region's rounded size (one page at least). */
static size_t region_size(size_t cap)
{
	size_t ps = page_size();

	return cap ? (cap + ps - 1) / ps * ps : ps;
}

int kura_secbuf_new(size_t cap, struct kura_secbuf **ret)
{
	size_t ps = page_size(), rs;
	struct kura_secbuf *b;
	uint8_t *base;

	if (cap > SIZE_MAX / 2)
		return -ENOMEM;
	rs = region_size(cap);
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	base = mmap(NULL, rs + 2 * ps, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED || mprotect(base + ps, rs, PROT_READ | PROT_WRITE) < 0) {
		if (base != MAP_FAILED)
			munmap(base, rs + 2 * ps);
		free(b);
		return -ENOMEM;
	}
	/* Best effort, as sodium_malloc: a low RLIMIT_MEMLOCK in a container must not stop us. */
	(void)mlock(base + ps, rs);
	(void)madvise(base + ps, rs, MADV_DONTDUMP);
	(void)madvise(base + ps, rs, MADV_WIPEONFORK);
	b->data = base + ps;
	b->cap = cap;
	*ret = b;
	return 0;
}

void kura_secbuf_free(struct kura_secbuf *b)
{
	size_t ps = page_size(), rs;

	if (!b)
		return;
	rs = region_size(b->cap);
	explicit_bzero(b->data, rs);
	munlock(b->data, rs);
	munmap(b->data - ps, rs + 2 * ps);
	free(b);
}

int kura_secbuf_write_fd(const struct kura_secbuf *b, int fd)
{
	size_t off = 0;

	while (off < b->len) {
		ssize_t n = write(fd, b->data + off, b->len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		off += (size_t)n;
	}
	return 0;
}

/* Guarded buffers for plaintext and keys (sodium_malloc: guard pages, locked, wiped on free).
 * Touches plaintext. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "secbuf.h"

/*
 * Small guarded regions are kept for reuse, wiped. sodium_malloc and sodium_free cost about
 * ten system calls each (mmap, mprotect of the guard pages, mlock, madvise, munmap), and in a
 * threaded process every mprotect and munmap also interrupts the other cores to flush their
 * TLBs: kurad's profile showed them as the largest cost of a fetch, which needs two such
 * buffers (the plaintext, the reply). A reused region keeps its guard pages, stays locked and
 * out of core dumps, and is zeroed before it goes back to the pool, so what it held is gone
 * exactly as with sodium_free.
 */
#define POOL_REGION 16384u
#define POOL_MAX 32u

static struct {
	pthread_mutex_t lock;
	uint8_t *free[POOL_MAX];
	size_t n;
} pool = { .lock = PTHREAD_MUTEX_INITIALIZER };

int kura_secbuf_new(size_t cap, struct kura_secbuf **ret)
{
	struct kura_secbuf *b;

	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->region = cap <= POOL_REGION ? POOL_REGION : cap;
	if (b->region == POOL_REGION) {
		pthread_mutex_lock(&pool.lock);
		if (pool.n > 0)
			b->data = pool.free[--pool.n];
		pthread_mutex_unlock(&pool.lock);
	}
	if (!b->data)
		b->data = sodium_malloc(b->region);
	if (!b->data) {
		free(b);
		return -ENOMEM;
	}
	b->cap = cap;
	*ret = b;
	return 0;
}

void kura_secbuf_free(struct kura_secbuf *b)
{
	bool kept = false;

	if (!b)
		return;
	if (b->region == POOL_REGION) {
		sodium_memzero(b->data, b->region);
		pthread_mutex_lock(&pool.lock);
		if (pool.n < POOL_MAX) {
			pool.free[pool.n++] = b->data;
			kept = true;
		}
		pthread_mutex_unlock(&pool.lock);
	}
	if (!kept)
		sodium_free(b->data); /* zeroes the whole region before unmapping it */
	free(b);
}

int kura_secbuf_from(const void *src, size_t len, struct kura_secbuf **ret)
{
	struct kura_secbuf *b;
	int r;

	r = kura_secbuf_new(len, &b);
	if (r < 0)
		return r;
	if (len)
		memcpy(b->data, src, len);
	b->len = len;
	*ret = b;
	return 0;
}

int kura_secbuf_random(size_t len, struct kura_secbuf **ret)
{
	struct kura_secbuf *b;
	int r;

	r = kura_secbuf_new(len, &b);
	if (r < 0)
		return r;
	randombytes_buf(b->data, len);
	b->len = len;
	*ret = b;
	return 0;
}

int kura_secbuf_printable(size_t len, struct kura_secbuf **ret)
{
	static const char alphabet[64] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
	struct kura_secbuf *b;
	int r;

	r = kura_secbuf_new(len, &b);
	if (r < 0)
		return r;
	/* Fill with random bytes, then map each in place: 64 divides 256, so the low six bits
	 * are uniform and no byte ever sits outside guarded memory. */
	randombytes_buf(b->data, len);
	for (size_t i = 0; i < len; i++)
		b->data[i] = (uint8_t)alphabet[b->data[i] & 63];
	b->len = len;
	*ret = b;
	return 0;
}

int kura_secbuf_read_fd(int fd, size_t max, struct kura_secbuf **ret)
{
	_cleanup_secbuf_ struct kura_secbuf *b = NULL;
	size_t cap = 4096;
	int r;

	if (cap > max + 1)
		cap = max + 1;
	r = kura_secbuf_new(cap, &b);
	if (r < 0)
		return r;

	for (;;) {
		ssize_t n;

		if (b->len == b->cap) {
			struct kura_secbuf *bigger;

			if (b->len > max)
				return -EFBIG;
			/* One byte past max is enough to tell "too big" from "exactly max". */
			cap = b->cap * 2 > max + 1 ? max + 1 : b->cap * 2;
			r = kura_secbuf_new(cap, &bigger);
			if (r < 0)
				return r;
			memcpy(bigger->data, b->data, b->len);
			bigger->len = b->len;
			kura_secbuf_free(b);
			b = bigger;
		}
		n = read(fd, b->data + b->len, b->cap - b->len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		b->len += (size_t)n;
	}
	if (b->len > max)
		return -EFBIG;
	*ret = TAKE_PTR(b);
	return 0;
}

int kura_secbuf_write_fd(const struct kura_secbuf *b, int fd)
{
	size_t off = 0;

	while (off < b->len) {
		ssize_t n = write(fd, b->data + off, b->len - off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		off += (size_t)n;
	}
	return 0;
}

bool kura_secbuf_equal(const struct kura_secbuf *a, const struct kura_secbuf *b)
{
	if (a->len != b->len)
		return false;
	if (a->len == 0)
		return true;
	return sodium_memcmp(a->data, b->data, a->len) == 0;
}

int kura_keys_init(void)
{
	return sodium_init() < 0 ? -EIO : 0;
}

void kura_keys_protect_process(void)
{
	const struct rlimit none = { 0, 0 };

	umask(077);
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	(void)setrlimit(RLIMIT_CORE, &none);
	signal(SIGPIPE, SIG_IGN);
}

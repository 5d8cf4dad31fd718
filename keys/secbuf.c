/* Guarded buffers for plaintext and keys: their own mappings between guard pages, locked, kept
 * out of core dumps and forks, wiped on free. libc only (the static client links it too).
 * Touches plaintext. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <string.h>
#include <unistd.h>

#include "secbuf.h"

/*
 * A region is [guard page][slack][canary][data, ending at the page][guard page]: a write past
 * the end faults at once (to within the 16 bytes data is aligned to), and one before the start
 * spoils the canary, which free checks and aborts on, as sodium_malloc does.
 */
#define ALIGN 16u
#define CANARY 16u

/*
 * Small regions are kept for reuse, wiped. A fresh guarded region costs about ten system calls
 * to make and unmake (mmap, mprotect, mlock, madvise, munmap), and in a threaded process every
 * mprotect and munmap also interrupts the other cores to flush their TLBs: kurad's profile
 * showed them as the largest cost of a fetch, which needs two such buffers (the plaintext, the
 * reply). A reused region keeps its guard pages, stays locked and out of core dumps, and is
 * zeroed before it goes back to the pool, so what it held is gone exactly as with munmap.
 */
#define POOL_REGION 16384u
#define POOL_MAX 32u

static struct {
	pthread_mutex_t lock;
	uint8_t *free[POOL_MAX]; /* the regions' first usable bytes, past the low guard page */
	size_t n;
} pool = { .lock = PTHREAD_MUTEX_INITIALIZER };

static uint8_t canary[CANARY];
static size_t page, pool_region; /* pool_region: POOL_REGION rounded up to the page size */
static bool ready; /* canary and page set, fork handler installed; read with acquire */

static void pool_lock(void)
{
	pthread_mutex_lock(&pool.lock);
}

static void pool_unlock(void)
{
	pthread_mutex_unlock(&pool.lock);
}

/* MADV_DONTFORK leaves a child without the pooled regions: it must not hand them out. */
static void pool_forget(void)
{
	pool.n = 0;
	pool_unlock();
}

/* n bytes from the kernel's generator (getrandom waits until it is seeded). -errno. */
static int random_fill(uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t got = getrandom(p, n, 0);

		if (got < 0 && errno != EINTR)
			return -errno;
		if (got > 0) {
			p += got;
			n -= (size_t)got;
		}
	}
	return 0;
}

/* Once per process, and again after a failure (no randomness yet is an error, not a crash). Run
 * at start already, so that a buffer made later needs no system call but for its mapping. */
static int setup(void)
{
	long ps;
	int r = 0;

	if (__atomic_load_n(&ready, __ATOMIC_ACQUIRE))
		return 0;
	pool_lock();
	if (!ready) {
		ps = sysconf(_SC_PAGESIZE);
		page = ps > 0 ? (size_t)ps : 4096;
		pool_region = (POOL_REGION + page - 1) / page * page;
		r = random_fill(canary, sizeof(canary));
		if (r == 0)
			r = -pthread_atfork(pool_lock, pool_unlock, pool_forget);
		if (r == 0)
			__atomic_store_n(&ready, true, __ATOMIC_RELEASE);
	}
	pool_unlock();
	return r;
}

__attribute__((constructor)) static void setup_at_start(void)
{
	(void)setup(); /* a failure here is returned by the first kura_secbuf_new */
}

static size_t round_up(size_t n, size_t to)
{
	return (n + to - 1) / to * to;
}

/* The usable size of the region for cap bytes: a multiple of the page size. */
static size_t region_for(size_t cap)
{
	size_t need = round_up(cap, ALIGN) + CANARY;

	return need <= pool_region ? pool_region : round_up(need, page);
}

static uint8_t *region_map(size_t region)
{
	size_t all = region + 2 * page;
	uint8_t *base = mmap(NULL, all, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (base == MAP_FAILED)
		return NULL;
	if (mprotect(base + page, region, PROT_READ | PROT_WRITE) < 0) {
		munmap(base, all);
		return NULL;
	}
	/* mlock is best effort, as with sodium_malloc: a low RLIMIT_MEMLOCK in a container must
	 * not stop us; the dump and fork exclusions are not. */
	(void)mlock(base + page, region);
	if (madvise(base + page, region, MADV_DONTDUMP) < 0 ||
		madvise(base, all, MADV_DONTFORK) < 0) {
		munmap(base, all);
		return NULL;
	}
	return base + page;
}

static void region_unmap(uint8_t *start, size_t region)
{
	explicit_bzero(start, region);
	(void)munlock(start, region);
	munmap(start - page, region + 2 * page);
}

/* Where a buffer of cap bytes starts in its region: its end on the high guard page. */
static uint8_t *data_in(uint8_t *start, size_t region, size_t cap)
{
	return start + region - round_up(cap, ALIGN);
}

static uint8_t *start_of(const struct kura_secbuf *b)
{
	return b->data + round_up(b->cap, ALIGN) - b->region;
}

int kura_secbuf_new(size_t cap, struct kura_secbuf **ret)
{
	struct kura_secbuf *b;
	uint8_t *start = NULL;
	int r;

	if (cap > SIZE_MAX / 2)
		return -ENOMEM;
	r = setup();
	if (r < 0)
		return r;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->region = region_for(cap);
	if (b->region == pool_region) {
		pool_lock();
		if (pool.n > 0)
			start = pool.free[--pool.n];
		pool_unlock();
	}
	if (!start)
		start = region_map(b->region);
	if (!start) {
		free(b);
		return -ENOMEM;
	}
	b->data = data_in(start, b->region, cap);
	memcpy(b->data - CANARY, canary, CANARY);
	b->cap = cap;
	*ret = b;
	return 0;
}

/* Constant time, so a comparison of secrets says nothing by how long it takes. */
static bool same(const uint8_t *a, const uint8_t *b, size_t n)
{
	volatile uint8_t d = 0;

	for (size_t i = 0; i < n; i++)
		d |= a[i] ^ b[i];
	return d == 0;
}

void kura_secbuf_free(struct kura_secbuf *b)
{
	uint8_t *start;
	bool kept = false;

	if (!b)
		return;
	/* Something wrote below the buffer: memory is corrupt, and going on could leak. */
	if (!same(b->data - CANARY, canary, CANARY))
		abort();
	start = start_of(b);
	if (b->region == pool_region) {
		explicit_bzero(start, b->region);
		pool_lock();
		if (pool.n < POOL_MAX) {
			pool.free[pool.n++] = start;
			kept = true;
		}
		pool_unlock();
	}
	if (!kept)
		region_unmap(start, b->region);
	explicit_bzero(b, sizeof(*b));
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
	r = random_fill(b->data, len);
	if (r < 0) {
		kura_secbuf_free(b);
		return r;
	}
	b->len = len;
	*ret = b;
	return 0;
}

int kura_secbuf_printable(size_t len, struct kura_secbuf **ret)
{
	static const char alphabet[64] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
	struct kura_secbuf *b;
	int r;

	r = kura_secbuf_new(len, &b);
	if (r < 0)
		return r;
	/* Fill with random bytes, then map each in place: 64 divides 256, so the low six bits
	 * are uniform and no byte ever sits outside guarded memory. */
	r = random_fill(b->data, len);
	if (r < 0) {
		kura_secbuf_free(b);
		return r;
	}
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
	return same(a->data, b->data, a->len);
}

void kura_keys_protect_process(void)
{
	const struct rlimit none = { 0, 0 };

	umask(077);
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	(void)setrlimit(RLIMIT_CORE, &none);
	signal(SIGPIPE, SIG_IGN);
}

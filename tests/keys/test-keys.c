/* Unit tests for keys/: guarded buffers, the master key sources, the keyring, sealing and the
 * audit chain's keys. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "chain.h"
#include "keyring.h"
#include "master.h"
#include "seal.h"
#include "secbuf.h"
#include "tablekey.h"
#include "tap.h"

#ifndef __has_feature
#define __has_feature(x) 0
#endif

static char dir[] = "/tmp/kura-test-keys-XXXXXX";
static const uint8_t sid[KURA_SECRET_ID_BYTES] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
	15, 16 };

static char *path(const char *name)
{
	static char buf[4][256];
	static int i;

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
	return buf[i];
}

static void write_file(const char *p, const void *data, size_t len, mode_t mode)
{
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd < 0 || write(fd, data, len) != (ssize_t)len)
		abort();
	fchmod(fd, mode);
	close(fd);
}

static void test_secbuf(void)
{
	_cleanup_secbuf_ struct kura_secbuf *a = NULL, *b = NULL, *p = NULL, *r = NULL;
	int pipefd[2];
	bool all_ok = true;

	tap_is(kura_secbuf_from("abc\0def", 7, &a), 0, "secbuf holds binary data");
	tap_is(kura_secbuf_from("abc\0def", 7, &b), 0, "second buffer");
	tap_ok(kura_secbuf_equal(a, b), "equal buffers compare equal");
	b->data[6] ^= 1;
	tap_ok(!kura_secbuf_equal(a, b), "one flipped bit compares unequal");

	tap_is(kura_secbuf_printable(4096, &p), 0, "printable generator");
	for (size_t i = 0; i < p->len; i++)
		if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-",
			    p->data[i]) ||
			p->data[i] == 0)
			all_ok = false;
	tap_ok(all_ok && p->len == 4096, "printable output stays in [A-Za-z0-9_-]");

	/* read_fd: exactly max is fine, max + 1 is -EFBIG; across the growth boundary. */
	if (pipe(pipefd) < 0)
		abort();
	{
		uint8_t big[10000];

		memset(big, 'x', sizeof(big));
		if (write(pipefd[1], big, sizeof(big)) != (ssize_t)sizeof(big))
			abort();
		close(pipefd[1]);
		tap_is(kura_secbuf_read_fd(pipefd[0], 10000, &r), 0, "read_fd takes exactly max");
		tap_ok(r && r->len == 10000, "read_fd read every byte across growth steps");
		close(pipefd[0]);
	}
	if (pipe(pipefd) < 0)
		abort();
	{
		struct kura_secbuf *none = NULL;
		uint8_t big[10001] = { 0 };

		if (write(pipefd[1], big, sizeof(big)) != (ssize_t)sizeof(big))
			abort();
		close(pipefd[1]);
		tap_is(kura_secbuf_read_fd(pipefd[0], 10000, &none), -EFBIG,
			"read_fd refuses max + 1 bytes");
		tap_ok(none == NULL, "nothing returned on -EFBIG");
		close(pipefd[0]);
	}
}

/* Whether n bytes at p can no longer be read as anything but zeros: unmapped, or wiped. Read
 * through /proc/self/mem, which does not fault. */
static bool gone(const uint8_t *p, size_t n)
{
	uint8_t buf[64];
	int fd = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
	ssize_t got;
	bool zero = true;

	if (fd < 0 || n > sizeof(buf))
		abort();
	got = pread(fd, buf, n, (off_t)(uintptr_t)p);
	close(fd);
	if (got < 0)
		return true;
	for (ssize_t i = 0; i < got; i++)
		zero = zero && buf[i] == 0;
	explicit_bzero(buf, sizeof(buf));
	return zero;
}

/* The VmFlags of the mapping that holds p, from /proc/self/smaps ("" if none). */
static void vm_flags(const void *p, char *out, size_t size)
{
	FILE *f = fopen("/proc/self/smaps", "re");
	char line[512];
	bool in = false;

	*out = 0;
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;

		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 &&
			strchr(line, '-') < strchr(line, ' '))
			in = (uintptr_t)p >= lo && (uintptr_t)p < hi;
		else if (in && strncmp(line, "VmFlags:", 8) == 0) {
			snprintf(out, size, "%.*s", (int)(size - 1), line + 8);
			out[strcspn(out, "\n")] = 0;
			break;
		}
	}
	fclose(f);
}

enum child_act { FILL_AND_FREE, TOUCH_PAST_END, TOUCH_BEFORE_AND_FREE, READ, ALLOCATE };

/*
 * Runs act in a child: true if the child finished it and exited 0 (it did not fault). READ
 * reads b, made by the parent; the others work on a buffer of 32 bytes the child makes (the
 * parent's buffers are not in the child at all).
 */
static bool child_survives(struct kura_secbuf *b, enum child_act act)
{
	int status = 0;
	pid_t pid = fork();

	if (pid < 0)
		abort();
	if (pid == 0) {
		struct kura_secbuf *n = NULL;
		volatile uint8_t *d;

		if (act != READ && kura_secbuf_random(32, &b) < 0)
			_exit(1);
		d = b->data;
		switch (act) {
		case FILL_AND_FREE:
			for (size_t i = 0; i < b->cap; i++)
				d[i] = 0xff;
			kura_secbuf_free(b);
			break;
		case TOUCH_PAST_END:
			d[(b->cap + 15) / 16 * 16] = 1;
			break;
		case TOUCH_BEFORE_AND_FREE:
			d[-1] ^= 0x5a;
			kura_secbuf_free(b);
			break;
		case READ:
			if (d[0] == 0)
				_exit(1);
			break;
		case ALLOCATE:
			if (kura_secbuf_new(32, &n) < 0)
				_exit(1);
			memset(n->data, 7, 32);
			kura_secbuf_free(n);
			break;
		}
		_exit(0);
	}
	while (waitpid(pid, &status, 0) < 0)
		;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* What the guarded buffer promises beyond holding bytes: guard pages, locked, not dumped, not
 * in a child, wiped, and its small regions reused. */
static void test_secbuf_guarded(void)
{
	_cleanup_secbuf_ struct kura_secbuf *k = NULL, *big = NULL, *again = NULL;
	const uint8_t *was;
	char flags[256];

	tap_is(kura_secbuf_random(32, &k), 0, "a 32-byte key");
	vm_flags(k->data, flags, sizeof(flags));
#if defined(__SANITIZE_ADDRESS__) || __has_feature(address_sanitizer)
	tap_skip("ASan turns mlock into a no-op: the lock cannot be seen here");
#else
	tap_ok(strstr(flags, " lo") != NULL, "its pages are locked (VmFlags:%.60s)", flags);
#endif
	tap_ok(strstr(flags, " dd") != NULL, "they are left out of core dumps");
	tap_ok(strstr(flags, " dc") != NULL, "and out of a forked child");
	tap_ok(!child_survives(k, READ), "a forked child cannot read the key");
	tap_ok(child_survives(NULL, FILL_AND_FREE),
		"a child fills a 32-byte key of its own and frees it");
	tap_ok(!child_survives(NULL, TOUCH_PAST_END),
		"a write just past such a key hits a guard page");
	tap_ok(!child_survives(NULL, TOUCH_BEFORE_AND_FREE),
		"a write just before the key is caught when it is freed");

	was = k->data;
	kura_secbuf_free(TAKE_PTR(k));
	tap_ok(gone(was, 32), "a freed key reads as nothing but zeros");
	tap_is(kura_secbuf_new(32, &again), 0, "a new buffer of the same size");
	tap_ok(again->data == was, "reuses the small region (no mmap per buffer)");
	kura_secbuf_free(TAKE_PTR(again));
	tap_ok(child_survives(NULL, ALLOCATE), "a forked child allocates despite the pool");

	tap_is(kura_secbuf_random(1u << 20, &big), 0, "a 1 MiB buffer");
	was = big->data;
	kura_secbuf_free(TAKE_PTR(big));
	tap_ok(gone(was, 64), "freed, it reads as nothing but zeros");
}

static int hex_is(const uint8_t *p, const char *hex)
{
	char got[2 * 64 + 1];
	size_t n = strlen(hex) / 2;

	for (size_t i = 0; i < n; i++)
		snprintf(got + 2 * i, 3, "%02x", p[i]);
	return strcmp(got, hex) == 0;
}

/*
 * Known answers computed apart from this code, with Python's hashlib:
 *   H = lambda k, m: hashlib.blake2b(m, key=k, digest_size=32).digest()
 *   S = bytes(range(32)); K0 = H(S, b"kura/audit/evolve/1"); K1 = H(K0, b"kura/audit/evolve/1")
 *   M1 = H(K0, b"kura/audit/1\0" + bytes(32) + R1); M2 = H(K1, b"kura/audit/1\0" + M1 + R2)
 */
static void test_chain(void)
{
	static const char r1[] = "{\"epoch\":0,\"event\":\"start\",\"seq\":1}";
	static const char r2[] = "{\"epoch\":1,\"event\":\"stop\",\"seq\":2}";
	_cleanup_secbuf_ struct kura_secbuf *s = NULL, *k = NULL, *short_key = NULL, *bad = NULL;
	uint8_t seed[32], zero[32] = { 0 }, m1[32], m2[32];
	const uint8_t *was;

	for (size_t i = 0; i < sizeof(seed); i++)
		seed[i] = (uint8_t)i;
	if (kura_secbuf_from(seed, sizeof(seed), &s) < 0)
		abort();
	tap_is(kura_chain_first(s, &k), 0, "K(0) from the starting key");
	tap_ok(k->len == 32 &&
			hex_is(k->data,
				"77d5d1bb4c5557385de5f765b56943e0ccc23a9a78aaa771942a593b4f70a825"),
		"K(0) = BLAKE2b(key = S, \"kura/audit/evolve/1\") (known answer)");
	tap_ok(hex_is(s->data, "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"),
		"the starting key is left as it was");
	kura_chain_mac(k, zero, (const uint8_t *)r1, strlen(r1), m1);
	tap_ok(hex_is(m1, "6b1cfbbf64f035514a19319132fcf86bdf2c5ba81bb45e29162202d558eaa35a"),
		"the first record's MAC (known answer)");
	tap_ok(kura_chain_mac_ok(k, zero, (const uint8_t *)r1, strlen(r1), m1), "mac_ok takes it");
	m1[31] ^= 1;
	tap_ok(!kura_chain_mac_ok(k, zero, (const uint8_t *)r1, strlen(r1), m1),
		"one flipped bit of the MAC is refused");
	m1[31] ^= 1;
	tap_ok(!kura_chain_mac_ok(k, zero, (const uint8_t *)r1, strlen(r1) - 1, m1),
		"and so is a record one byte short");

	was = k->data;
	tap_is(kura_chain_evolve(&k), 0, "evolve");
	tap_ok(k->data != was && gone(was, 32), "the old epoch's key is wiped");
	tap_ok(k->len == 32 &&
			hex_is(k->data,
				"3c0b041b5491c8a306fa79e11494e13e57fc89b5ea600726d91bebe60d2aa776"),
		"K(1) = BLAKE2b(key = K(0), \"kura/audit/evolve/1\") (known answer)");
	kura_chain_mac(k, m1, (const uint8_t *)r2, strlen(r2), m2);
	tap_ok(hex_is(m2, "921d72edee1dd9f23f6d640716e0c53129f90a4bfd8fd072072679a64748ddb2"),
		"the next record's MAC chains onto the first's (known answer)");

	if (kura_secbuf_from(seed, 31, &short_key) < 0)
		abort();
	tap_is(kura_chain_first(short_key, &bad), -EINVAL, "a starting key of 31 bytes is refused");
	tap_ok(bad == NULL, "and nothing is handed back");
	was = short_key->data;
	tap_is(kura_chain_evolve(&short_key), -EINVAL, "evolving a 31-byte key is refused");
	tap_ok(short_key->data == was, "and leaves it in place");

	tap_is(kura_chain_start(&bad), 0, "a random starting key");
	tap_ok(bad->len == KURA_CHAIN_KEY_BYTES && !kura_secbuf_equal(bad, s),
		"of 32 bytes, not a fixed one");
}

static void test_master_file(void)
{
	_cleanup_secbuf_ struct kura_secbuf *k1 = NULL, *k2 = NULL;
	struct kura_secbuf *k = NULL;
	struct stat st;
	uint8_t raw[32] = { 1 };

	tap_is(kura_master_create_file(path("m.key"), &k1), 0, "create a key file");
	tap_ok(stat(path("m.key"), &st) == 0 && (st.st_mode & 07777) == 0400 && st.st_size == 32,
		"key file is 32 bytes, mode 0400");
	tap_is(kura_master_create_file(path("m.key"), NULL), -EEXIST,
		"creating over an existing key file is refused");
	tap_is(kura_master_load_file(path("m.key"), &k2), 0, "load the key file back");
	tap_ok(k1 && k2 && kura_secbuf_equal(k1, k2), "loaded key equals the created one");

	write_file(path("open.key"), raw, 32, 0440);
	tap_is(kura_master_load_file(path("open.key"), &k), -EPERM,
		"a group-readable key file is refused");
	write_file(path("open2.key"), raw, 32, 0604);
	tap_is(kura_master_load_file(path("open2.key"), &k), -EPERM,
		"an other-readable key file is refused");
	write_file(path("short.key"), raw, 31, 0400);
	tap_is(kura_master_load_file(path("short.key"), &k), -EMSGSIZE,
		"a 31-byte key file is refused");
	write_file(path("long.key"), raw, 32, 0600);
	{
		int fd = open(path("long.key"), O_WRONLY | O_APPEND);

		if (fd < 0 || write(fd, "x", 1) != 1)
			abort();
		close(fd);
	}
	tap_is(kura_master_load_file(path("long.key"), &k), -EMSGSIZE,
		"a 33-byte key file is refused");
	if (symlink(path("m.key"), path("link.key")) < 0)
		abort();
	tap_is(kura_master_load_file(path("link.key"), &k), -ELOOP,
		"a symlink to a good key file is refused");
	tap_is(kura_master_load_file(dir, &k), -EMEDIUMTYPE, "a directory is refused");
	tap_is(kura_master_load_file(path("absent.key"), &k), -ENOENT, "a missing key file");
	tap_ok(k == NULL, "no key returned from any refusal");
}

static void test_passphrase(void)
{
	_cleanup_secbuf_ struct kura_secbuf *p1 = NULL, *p2 = NULL, *k1 = NULL, *k2 = NULL,
					    *k3 = NULL, *k4 = NULL;
	struct kura_secbuf *p = NULL;
	struct kura_kdf kdf, other;

	write_file(path("pass"), "correct horse\n", 14, 0600);
	write_file(path("pass2"), "correct horse", 13, 0400);
	write_file(path("empty"), "\n", 1, 0600);
	write_file(path("loose"), "x", 1, 0644);
	tap_is(kura_master_read_passphrase(path("pass"), &p1), 0, "read a passphrase file");
	tap_is(kura_master_read_passphrase(path("pass2"), &p2), 0, "read the same without newline");
	tap_ok(p1 && p2 && kura_secbuf_equal(p1, p2), "one trailing newline is dropped");
	tap_is(kura_master_read_passphrase(path("empty"), &p), -ENODATA,
		"empty passphrase refused");
	tap_is(kura_master_read_passphrase(path("loose"), &p), -EPERM,
		"world-readable passphrase file refused");

	kura_kdf_init(&kdf);
	kdf.opslimit = 1; /* keep the unit test quick; the defaults are checked below */
	kdf.memlimit = 8u << 20;
	tap_is(kura_master_derive(p1, &kdf, &k1), 0, "derive with Argon2id");
	tap_is(kura_master_derive(p2, &kdf, &k2), 0, "derive again");
	tap_ok(k1 && k2 && kura_secbuf_equal(k1, k2), "same passphrase and salt, same key");
	other = kdf;
	other.salt[0] ^= 1;
	tap_is(kura_master_derive(p1, &other, &k3), 0, "derive with another salt");
	tap_ok(k3 && !kura_secbuf_equal(k1, k3), "another salt gives another key");
	p1->data[0] ^= 1;
	tap_is(kura_master_derive(p1, &kdf, &k4), 0, "derive from another passphrase");
	tap_ok(k4 && !kura_secbuf_equal(k1, k4), "another passphrase gives another key");

	kura_kdf_init(&other);
	tap_ok(other.opslimit >= 3 && other.memlimit >= (64u << 20),
		"default cost is at least 3 passes and 64 MiB");
	other.memlimit = 1;
	tap_is(kura_kdf_check(&other), -EINVAL, "absurd KDF parameters from a store are refused");
}

static int make_keyring(const struct kura_secbuf *master, uint32_t id, struct kura_keyring **ret)
{
	int r = kura_keyring_new(ret);

	if (r == 0)
		r = kura_keyring_generate(*ret, id);
	if (r == 0)
		r = kura_keyring_set_current(*ret, id);
	(void)master;
	return r;
}

static void test_keyring(void)
{
	_cleanup_secbuf_ struct kura_secbuf *m1 = NULL, *m2 = NULL, *plain = NULL, *out = NULL;
	_cleanup_keyring_ struct kura_keyring *kr = NULL, *back = NULL, *wrong = NULL;
	struct kura_sealed s = { 0 };
	uint8_t *box = NULL;
	size_t len = 0;

	kura_secbuf_random(32, &m1);
	kura_secbuf_random(32, &m2);
	kura_secbuf_from("s3cret", 6, &plain);
	tap_is(make_keyring(m1, 1, &kr), 0, "keyring with KEK 1");
	tap_is(kura_keyring_generate(kr, 1), -EEXIST, "KEK ids are unique");
	tap_is(kura_keyring_generate(kr, 0), -EINVAL, "KEK id 0 is refused");
	tap_is(kura_keyring_wrap(kr, m1, 1, &box, &len), 0, "wrap KEK 1 with the master key");
	tap_is(kura_seal(kr, "db/password", sid, 1, plain, &s), 0, "seal under KEK 1");

	kura_keyring_new(&back);
	tap_is(kura_keyring_unwrap(back, m1, 2, box, len), -EKEYREJECTED,
		"a KEK box moved to another id does not open");
	tap_is(kura_keyring_unwrap(back, m1, 1, box, len), 0, "unwrap KEK 1 with the right key");
	kura_keyring_set_current(back, 1);
	tap_is(kura_unseal(back, "db/password", 1, &s, &out), 0, "unwrapped keyring opens values");
	tap_ok(out && kura_secbuf_equal(out, plain), "and the value is the one sealed");

	kura_keyring_new(&wrong);
	tap_is(kura_keyring_unwrap(wrong, m2, 1, box, len), -EKEYREJECTED,
		"the wrong master key is rejected as such");
	box[len - 1] ^= 1;
	tap_is(kura_keyring_unwrap(wrong, m1, 1, box, len), -EKEYREJECTED,
		"a flipped byte in a KEK box is rejected");
	box[len - 1] ^= 1;
	box[0] = 0x7f;
	tap_is(kura_keyring_unwrap(wrong, m1, 1, box, len), -EPROTO,
		"an unknown box format is refused as malformed");
	free(box);
	kura_sealed_done(&s);
}

static void test_seal(void)
{
	_cleanup_secbuf_ struct kura_secbuf *plain = NULL, *empty = NULL, *out = NULL, *big = NULL;
	_cleanup_keyring_ struct kura_keyring *kr = NULL;
	struct kura_sealed s = { 0 }, t = { 0 }, e = { 0 }, b = { 0 };
	struct kura_secbuf *none = NULL;
	uint8_t *saved;
	int flips_caught = 0, flips = 0;

	make_keyring(NULL, 1, &kr);
	kura_secbuf_from("hunter2\0binary", 14, &plain);
	tap_is(kura_seal(kr, "app/db", sid, 3, plain, &s), 0, "seal app/db v3");
	tap_is(s.kek_id, 1, "sealed under the current KEK");
	tap_is((long long)kura_sealed_plain_len(&s), 14, "plaintext length is recoverable");
	tap_is(kura_seal(kr, "app/db", sid, 4, plain, &t), 0, "seal the same value as v4");
	tap_ok(s.value_len == t.value_len && memcmp(s.value, t.value, s.value_len) != 0,
		"the same value sealed twice gives different ciphertext (fresh DEK and nonce)");

	tap_is(kura_unseal(kr, "app/db", 3, &s, &out), 0, "open v3");
	tap_ok(out && kura_secbuf_equal(out, plain), "binary value round-trips");

	tap_is(kura_unseal(kr, "app/db", 4, &s, &none), -EBADMSG,
		"v3's record presented as v4 does not open");
	tap_is(kura_unseal(kr, "app/dc", 3, &s, &none), -EBADMSG,
		"v3's record presented under another name does not open");
	tap_is(kura_unseal(kr, "app/db/x", 3, &s, &none), -EBADMSG,
		"nor under a longer name sharing the prefix");

	s.secret_id[0] ^= 1;
	tap_is(kura_unseal(kr, "app/db", 3, &s, &none), -EBADMSG,
		"the same name and version of another incarnation (secret id) does not open");
	s.secret_id[0] ^= 1;

	/* Swap the DEK box between two versions: each DEK is bound to its version. */
	saved = s.dek;
	s.dek = t.dek;
	tap_is(kura_unseal(kr, "app/db", 3, &s, &none), -EBADMSG,
		"a wrapped DEK moved to another version does not open");
	s.dek = saved;
	/* Swap the value box: the value is bound to its version too. */
	saved = s.value;
	s.value = t.value;
	tap_is(kura_unseal(kr, "app/db", 3, &s, &none), -EBADMSG,
		"a value box moved to another version does not open");
	s.value = saved;

	/* Every single-bit flip in either box must be caught. */
	for (size_t i = 0; i < s.dek_len; i++, flips++) {
		s.dek[i] ^= 0x01;
		flips_caught += kura_unseal(kr, "app/db", 3, &s, &none) < 0;
		s.dek[i] ^= 0x01;
	}
	for (size_t i = 0; i < s.value_len; i++, flips++) {
		s.value[i] ^= 0x80;
		flips_caught += kura_unseal(kr, "app/db", 3, &s, &none) < 0;
		s.value[i] ^= 0x80;
	}
	tap_is(flips_caught, flips, "every flipped byte in the DEK or value box fails to open");
	s.kek_id = 2;
	tap_is(kura_unseal(kr, "app/db", 3, &s, &none), -ENOKEY, "a missing KEK is -ENOKEY");
	kura_keyring_generate(kr, 2);
	tap_is(kura_unseal(kr, "app/db", 3, &s, &none), -EBADMSG,
		"a DEK claimed to be under another KEK does not open");
	s.kek_id = 1;

	/* Rewrap under KEK 2: value box untouched, still opens, old KEK no longer needed. */
	kura_keyring_set_current(kr, 2);
	saved = malloc(s.value_len);
	memcpy(saved, s.value, s.value_len);
	tap_is(kura_rewrap(kr, "app/db", 3, &s), 0, "rewrap v3 under KEK 2");
	tap_ok(s.kek_id == 2 && memcmp(saved, s.value, s.value_len) == 0,
		"rewrap changes the DEK's KEK and leaves the value box as it was");
	free(saved);
	kura_keyring_drop(kr, 1);
	kura_secbuf_free(out);
	out = NULL;
	tap_is(kura_unseal(kr, "app/db", 3, &s, &out), 0, "opens with KEK 1 gone");
	tap_ok(out && kura_secbuf_equal(out, plain), "rewrap keeps the value");
	tap_is(kura_rewrap(kr, "app/db", 4, &t), -ENOKEY,
		"rewrap of a DEK whose KEK is gone fails, leaving it as it was");
	tap_is(t.kek_id, 1, "and the failed record is unchanged");

	kura_secbuf_from("", 0, &empty);
	tap_is(kura_seal(kr, "e", sid, 1, empty, &e), 0, "an empty value seals");
	kura_secbuf_free(out);
	out = NULL;
	tap_ok(kura_unseal(kr, "e", 1, &e, &out) == 0 && out->len == 0, "and opens empty");

	kura_secbuf_random(1u << 20, &big);
	tap_is(kura_seal(kr, "big", sid, 1, big, &b), 0, "a 1 MiB value seals");
	kura_secbuf_free(out);
	out = NULL;
	tap_ok(kura_unseal(kr, "big", 1, &b, &out) == 0 && kura_secbuf_equal(out, big),
		"and opens intact");
	{
		char name[300];

		memset(name, 'a', sizeof(name) - 1);
		name[sizeof(name) - 1] = 0;
		tap_is(kura_seal(kr, name, sid, 1, plain, &t), -EINVAL,
			"a name over 255 bytes is refused");
	}
	kura_sealed_done(&s);
	kura_sealed_done(&t);
	kura_sealed_done(&e);
	kura_sealed_done(&b);
}

static void test_record_key(void)
{
	_cleanup_secbuf_ struct kura_secbuf *m1 = NULL, *m2 = NULL;
	_cleanup_keyring_ struct kura_keyring *kr = NULL, *back = NULL, *other = NULL;
	uint8_t mac[KURA_MAC_BYTES], mac2[KURA_MAC_BYTES], *box = NULL;
	size_t len = 0;

	kura_secbuf_random(32, &m1);
	kura_secbuf_random(32, &m2);
	kura_keyring_new(&kr);
	tap_is(kura_keyring_mac(kr, (const uint8_t *)"x", 1, mac), -ENOKEY,
		"no record key, no MAC");
	tap_is(kura_keyring_generate_record_key(kr), 0, "generate a record key");
	tap_is(kura_keyring_generate_record_key(kr), -EEXIST, "only one record key");
	tap_is(kura_keyring_mac(kr, (const uint8_t *)"current=2", 9, mac), 0, "MAC a record");
	tap_ok(kura_keyring_mac_ok(kr, (const uint8_t *)"current=2", 9, mac), "the MAC verifies");
	tap_ok(!kura_keyring_mac_ok(kr, (const uint8_t *)"current=1", 9, mac),
		"an edited record does not verify");
	tap_is(kura_keyring_wrap_record_key(kr, m1, &box, &len), 0, "wrap it with the master key");
	kura_keyring_new(&back);
	kura_keyring_new(&other);
	tap_is(kura_keyring_unwrap_record_key(other, m2, box, len), -EKEYREJECTED,
		"the wrong master key is rejected");
	tap_is(kura_keyring_unwrap_record_key(back, m1, box, len), 0, "unwrap it");
	kura_keyring_mac(back, (const uint8_t *)"current=2", 9, mac2);
	tap_ok(memcmp(mac, mac2, sizeof(mac)) == 0, "the unwrapped key makes the same MAC");
	tap_is(kura_keyring_unwrap(other, m1, 1, box, len), -EKEYREJECTED,
		"a record key box does not open as a KEK");
	free(box);
}

/* Hash-table keys: the keyed hash (SipHash-2-4) is the same
 * for the same key, and another key scatters the same names elsewhere. */
static void test_tablekey(void)
{
	struct kura_tablekey *a = NULL, *b = NULL;
	unsigned same = 0;

	tap_ok(kura_tablekey_new(&a) == 0 && kura_tablekey_new(&b) == 0, "two table keys");
	if (!a || !b)
		return;
	tap_ok(kura_tablekey_hash(a, "app/db", 6) == kura_tablekey_hash(a, "app/db", 6),
		"one key hashes a name the same way each time");
	for (unsigned i = 0; i < 64; i++) {
		char name[16];
		int n = snprintf(name, sizeof(name), "n%u", i);

		same += kura_tablekey_hash(a, name, (size_t)n) % 64 ==
			kura_tablekey_hash(b, name, (size_t)n) % 64;
	}
	tap_ok(same < 16, "another key puts the same 64 names in other chains (%u of 64 alike)",
		same);
	kura_tablekey_free(a);
	kura_tablekey_free(b);
	kura_tablekey_free(NULL);
}

int main(void)
{
	if (kura_keys_init() < 0 || !mkdtemp(dir))
		return 99;
	test_secbuf();
	test_secbuf_guarded();
	test_chain();
	test_master_file();
	test_passphrase();
	test_keyring();
	test_seal();
	test_record_key();
	test_tablekey();
	tap_rmtree(dir);
	return tap_done();
}

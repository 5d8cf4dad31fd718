/* Unit tests for keys/: guarded buffers, the master key sources, the keyring and sealing. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "keyring.h"
#include "master.h"
#include "seal.h"
#include "secbuf.h"
#include "tap.h"

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
			    p->data[i]) || p->data[i] == 0)
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
	tap_is(kura_master_read_passphrase(path("empty"), &p), -ENODATA, "empty passphrase refused");
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
		tap_is(kura_seal(kr, name, sid, 1, plain, &t), -EINVAL, "a name over 255 bytes is refused");
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

int main(void)
{
	if (kura_keys_init() < 0 || !mkdtemp(dir))
		return 99;
	test_secbuf();
	test_master_file();
	test_passphrase();
	test_keyring();
	test_seal();
	test_record_key();
	tap_rmtree(dir);
	return tap_done();
}

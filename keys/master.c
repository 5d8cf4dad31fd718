/* Master key sources: key file checks and creation, passphrase reading, Argon2id derivation.
 * Touches key material. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "master.h"

#define PASSPHRASE_MAX 4096u

void kura_kdf_init(struct kura_kdf *kdf)
{
	randombytes_buf(kdf->salt, sizeof(kdf->salt));
	kdf->opslimit = 3;
	kdf->memlimit = 64ull << 20;
}

int kura_kdf_check(const struct kura_kdf *kdf)
{
	if (kdf->opslimit < crypto_pwhash_argon2id_OPSLIMIT_MIN || kdf->opslimit > 64)
		return -EINVAL;
	if (kdf->memlimit < 8192 || kdf->memlimit > (4ull << 30))
		return -EINVAL;
	return 0;
}

/* The checks shared by key and passphrase files, on an fd opened with O_NOFOLLOW. */
static int check_private_file(int fd, struct stat *st)
{
	if (fstat(fd, st) < 0)
		return -errno;
	if (!S_ISREG(st->st_mode))
		return -EMEDIUMTYPE;
	if ((st->st_mode & 077) || st->st_uid != geteuid())
		return -EPERM;
	return 0;
}

static int open_private(const char *path)
{
	/* O_NONBLOCK: a FIFO planted at the path must not hang us before the regular-file
	 * check; O_NOFOLLOW: a symlink fails with ELOOP. */
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);

	return fd < 0 ? -errno : fd;
}

void kura_keyfile_abort(struct kura_keyfile *f)
{
	if (!f)
		return;
	if (f->fd >= 0)
		close(f->fd);
	if (f->tmp[0] && f->dirfd >= 0)
		(void)unlinkat(f->dirfd, f->tmp, 0);
	if (f->dirfd >= 0)
		close(f->dirfd);
	free(f->name);
	*f = (struct kura_keyfile){ .fd = -1, .dirfd = -1 };
}

int kura_keyfile_open(const char *path, struct kura_keyfile *ret)
{
	struct kura_keyfile f = { .fd = -1, .dirfd = -1 };
	_cleanup_free_ char *dir = strdup(path);
	const char *base;
	struct stat st;
	char *slash;
	int r;

	if (!dir)
		return -ENOMEM;
	slash = strrchr(dir, '/');
	base = slash ? slash + 1 : dir;
	if (!*base || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
		return -EISDIR;
	f.name = strdup(base);
	if (!f.name)
		return -ENOMEM;
	if (slash)
		*(slash == dir ? slash + 1 : slash) = '\0';
	f.dirfd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (f.dirfd < 0)
		goto fail;
	if (fstatat(f.dirfd, f.name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		errno = EEXIST;
		goto fail;
	}
	if (errno != ENOENT)
		goto fail;
	/* An unnamed file: a failure at any later point leaves nothing behind, not even when
	 * the unlink that would clean up fails too (a disk gone read-only). */
	f.fd = openat(f.dirfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0400);
	if (f.fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
		/* No O_TMPFILE on this file system: a temporary name, linked the same way. */
		for (int tries = 0; tries < 8 && f.fd < 0; tries++) {
			snprintf(f.tmp, sizeof(f.tmp), ".kura-key-%08x", randombytes_random());
			f.fd = openat(f.dirfd, f.tmp,
				O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY,
				0400);
			if (f.fd < 0 && errno != EEXIST)
				break;
		}
		if (f.fd < 0)
			f.tmp[0] = '\0';
	}
	if (f.fd < 0)
		goto fail;
	/* The mode given to open() is filtered by the umask; make sure of 0400. */
	if (fchmod(f.fd, 0400) < 0)
		goto fail;
	*ret = f;
	return 0;
fail:
	r = -errno;
	kura_keyfile_abort(&f);
	return r;
}

/* Give the unnamed file its name; never over an existing file. */
static int link_into_place(struct kura_keyfile *f)
{
	char proc[64];

	if (f->tmp[0])
		return linkat(f->dirfd, f->tmp, f->dirfd, f->name, 0) < 0 ? -errno : 0;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", f->fd);
	if (linkat(AT_FDCWD, proc, f->dirfd, f->name, AT_SYMLINK_FOLLOW) == 0)
		return 0;
	/* No /proc: root can name the descriptor itself. */
	if (errno == ENOENT && linkat(f->fd, "", f->dirfd, f->name, AT_EMPTY_PATH) == 0)
		return 0;
	return -errno;
}

int kura_keyfile_commit(struct kura_keyfile *f, const void *data, size_t len)
{
	const uint8_t *p = data;
	int r = 0;

	while (len > 0 && r == 0) {
		ssize_t n = write(f->fd, p, len);

		if (n < 0 && errno != EINTR)
			r = -errno;
		else if (n > 0) {
			p += n;
			len -= (size_t)n;
		}
	}
	if (r == 0 && fsync(f->fd) < 0)
		r = -errno;
	if (r == 0)
		r = link_into_place(f);
	/* The key may be the only way into a store: its directory entry must be durable too. */
	if (r == 0 && fsync(f->dirfd) < 0) {
		r = -errno;
		(void)unlinkat(f->dirfd, f->name, 0);
	}
	kura_keyfile_abort(f);
	return r;
}

int kura_master_create_file(const char *path, struct kura_secbuf **ret)
{
	_cleanup_secbuf_ struct kura_secbuf *key = NULL;
	struct kura_keyfile f;
	int r;

	r = kura_secbuf_random(KURA_MASTER_KEY_BYTES, &key);
	if (r < 0)
		return r;
	r = kura_keyfile_open(path, &f);
	if (r == 0)
		r = kura_keyfile_commit(&f, key->data, key->len);
	if (r < 0)
		return r;
	if (ret)
		*ret = TAKE_PTR(key);
	return 0;
}

int kura_master_read_private(const char *path, size_t max, struct kura_secbuf **ret)
{
	_cleanup_close_ int fd = -1;
	struct stat st;
	int r;

	fd = open_private(path);
	if (fd < 0)
		return fd;
	r = check_private_file(fd, &st);
	if (r < 0)
		return r;
	return kura_secbuf_read_fd(fd, max, ret);
}

int kura_master_load_file(const char *path, struct kura_secbuf **ret)
{
	_cleanup_secbuf_ struct kura_secbuf *key = NULL;
	int r;

	r = kura_master_read_private(path, KURA_MASTER_KEY_BYTES, &key);
	if (r == -EFBIG || (r == 0 && key->len != KURA_MASTER_KEY_BYTES))
		return -EMSGSIZE;
	if (r < 0)
		return r;
	*ret = TAKE_PTR(key);
	return 0;
}

int kura_master_read_passphrase(const char *path, struct kura_secbuf **ret)
{
	_cleanup_secbuf_ struct kura_secbuf *pass = NULL;
	int r;

	if (strcmp(path, "-") == 0)
		r = kura_secbuf_read_fd(STDIN_FILENO, PASSPHRASE_MAX, &pass);
	else
		r = kura_master_read_private(path, PASSPHRASE_MAX, &pass);
	if (r < 0)
		return r;
	if (pass->len > 0 && pass->data[pass->len - 1] == '\n')
		pass->len--;
	if (pass->len > 0 && pass->data[pass->len - 1] == '\r')
		pass->len--;
	if (pass->len == 0)
		return -ENODATA;
	*ret = TAKE_PTR(pass);
	return 0;
}

int kura_master_derive(const struct kura_secbuf *passphrase, const struct kura_kdf *kdf,
	struct kura_secbuf **ret)
{
	_cleanup_secbuf_ struct kura_secbuf *key = NULL;
	int r;

	r = kura_kdf_check(kdf);
	if (r < 0)
		return r;
	r = kura_secbuf_new(KURA_MASTER_KEY_BYTES, &key);
	if (r < 0)
		return r;
	if (crypto_pwhash(key->data, KURA_MASTER_KEY_BYTES, (const char *)passphrase->data,
		    passphrase->len, kdf->salt, kdf->opslimit, (size_t)kdf->memlimit,
		    crypto_pwhash_ALG_ARGON2ID13) != 0)
		return -ENOMEM; /* the only documented failure: the memory cost could not be met */
	key->len = KURA_MASTER_KEY_BYTES;
	*ret = TAKE_PTR(key);
	return 0;
}

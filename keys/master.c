/* Master key sources: key file checks and creation, passphrase reading, Argon2id derivation.
 * Touches key material. */
#include <errno.h>
#include <fcntl.h>
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
	if (kdf->opslimit < crypto_pwhash_argon2id_OPSLIMIT_MIN ||
		kdf->opslimit > 64)
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

static int fsync_dir_of(const char *path)
{
	_cleanup_free_ char *dir = strdup(path);
	_cleanup_close_ int fd = -1;
	char *slash;

	if (!dir)
		return -ENOMEM;
	slash = strrchr(dir, '/');
	if (!slash)
		fd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	else {
		*(slash == dir ? slash + 1 : slash) = '\0';
		fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	if (fd < 0 || fsync(fd) < 0)
		return -errno;
	return 0;
}

int kura_master_create_file(const char *path, struct kura_secbuf **ret)
{
	_cleanup_secbuf_ struct kura_secbuf *key = NULL;
	_cleanup_close_ int fd = -1;
	int r;

	r = kura_secbuf_random(KURA_MASTER_KEY_BYTES, &key);
	if (r < 0)
		return r;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0400);
	if (fd < 0)
		return -errno;
	/* The mode given to open() is filtered by the umask; make sure of 0400. */
	if (fchmod(fd, 0400) < 0)
		goto fail;
	r = kura_secbuf_write_fd(key, fd);
	if (r < 0) {
		errno = -r;
		goto fail;
	}
	if (fsync(fd) < 0)
		goto fail;
	/* The key is the only way into the store: its directory entry must be durable too. */
	r = fsync_dir_of(path);
	if (r < 0) {
		errno = -r;
		goto fail;
	}
	if (ret)
		*ret = TAKE_PTR(key);
	return 0;
fail:
	r = -errno;
	(void)unlink(path);
	return r;
}

int kura_master_load_file(const char *path, struct kura_secbuf **ret)
{
	_cleanup_secbuf_ struct kura_secbuf *key = NULL;
	_cleanup_close_ int fd = -1;
	struct stat st;
	int r;

	fd = open_private(path);
	if (fd < 0)
		return fd;
	r = check_private_file(fd, &st);
	if (r < 0)
		return r;
	if (st.st_size != KURA_MASTER_KEY_BYTES)
		return -EMSGSIZE;
	r = kura_secbuf_read_fd(fd, KURA_MASTER_KEY_BYTES, &key);
	if (r == -EFBIG || (r == 0 && key->len != KURA_MASTER_KEY_BYTES))
		return -EMSGSIZE; /* changed under us */
	if (r < 0)
		return r;
	*ret = TAKE_PTR(key);
	return 0;
}

int kura_master_read_passphrase(const char *path, struct kura_secbuf **ret)
{
	_cleanup_secbuf_ struct kura_secbuf *pass = NULL;
	_cleanup_close_ int fd = -1;
	int r;

	if (strcmp(path, "-") == 0) {
		r = kura_secbuf_read_fd(STDIN_FILENO, PASSPHRASE_MAX, &pass);
	} else {
		struct stat st;

		fd = open_private(path);
		if (fd < 0)
			return fd;
		r = check_private_file(fd, &st);
		if (r < 0)
			return r;
		r = kura_secbuf_read_fd(fd, PASSPHRASE_MAX, &pass);
	}
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

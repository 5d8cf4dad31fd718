/* The master key: 32 bytes from a root-only key file, or derived from a passphrase with
 * Argon2id (or sealed to a TPM2: tpm2.h). Touches key material. The master key only ever wraps
 * KEKs. */
#pragma once

#include <stdint.h>

#include "secbuf.h"

#define KURA_MASTER_KEY_BYTES 32u
#define KURA_KDF_SALT_BYTES 16u

/* Argon2id parameters, stored beside the keyring so the same passphrase derives the same key.
 * They are not secret. */
struct kura_kdf {
	uint8_t salt[KURA_KDF_SALT_BYTES];
	uint64_t opslimit;
	uint64_t memlimit;
};

/* Fresh random salt and this build's default cost (3 passes, 64 MiB). */
void kura_kdf_init(struct kura_kdf *kdf);

/* Sanity bounds for parameters read back from a store: -EINVAL when out of range. */
int kura_kdf_check(const struct kura_kdf *kdf);

/*
 * A new private file (mode 0400, the caller's) that appears at its path whole or not at all:
 * its bytes go to an unnamed file in the same directory (O_TMPFILE, or a temporary name where
 * the file system has none), which is fsynced and then linked into place, never over anything
 * already there, and the directory fsynced. For key files, whose torn or empty remains would
 * lock an operator out, or be taken for a key.
 */
struct kura_keyfile {
	int fd;
	int dirfd;
	char *name;
	char tmp[32]; /* the temporary name, or "" for an unnamed file */
};

/*
 * Begin a key file at path. -EEXIST if anything is there (and again at commit, should it have
 * appeared since), or -errno when its directory cannot take the file: so a path that will not
 * work is refused before anything else is done. Nothing is at path until commit.
 */
int kura_keyfile_open(const char *path, struct kura_keyfile *ret);

/*
 * Write data and put the file in place. On failure nothing is at path; only if the directory's
 * fsync fails and then the unlink that undoes the link fails too is the file left there, whole.
 * The handle is released either way.
 */
int kura_keyfile_commit(struct kura_keyfile *f, const void *data, size_t len);

/* Give up an uncommitted key file (nothing appears); safe on a released handle. */
void kura_keyfile_abort(struct kura_keyfile *f);

/*
 * Create a key file of 32 random bytes at path (kura_keyfile_open and commit): mode 0400, owned
 * by the caller, fsynced. -EEXIST if anything is at path. The new key goes to *ret when ret is
 * not NULL. A failure leaves nothing at path.
 */
int kura_master_create_file(const char *path, struct kura_secbuf **ret);

/*
 * Load a key file, refusing:
 *   -ELOOP        path is a symlink
 *   -EMEDIUMTYPE  not a regular file
 *   -EPERM        group or others have any access, or it is not owned by the caller
 *   -EMSGSIZE     not exactly 32 bytes
 * and -errno from open/read (-ENOENT, -EACCES, ...).
 */
int kura_master_load_file(const char *path, struct kura_secbuf **ret);

/* Everything in a private file, with the same refusals as a key file (symlink, not regular,
 * mode, owner), and -EFBIG past max bytes. */
int kura_master_read_private(const char *path, size_t max, struct kura_secbuf **ret);

/*
 * Read a passphrase from a file ("-" is standard input), dropping one trailing newline. Same
 * refusals as a key file for a regular file (symlink, mode, owner), plus -ENODATA when empty
 * and -EFBIG past 4 KiB.
 */
int kura_master_read_passphrase(const char *path, struct kura_secbuf **ret);

/* Argon2id(passphrase, kdf) -> 32-byte master key. -ENOMEM when the memory cost cannot be met. */
int kura_master_derive(const struct kura_secbuf *passphrase, const struct kura_kdf *kdf,
	struct kura_secbuf **ret);

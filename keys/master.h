/* The master key: 32 bytes from a root-only key file, or derived from a passphrase with
 * Argon2id. Touches key material. The master key only ever wraps KEKs. */
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
 * Create a key file of 32 random bytes at path: O_CREAT|O_EXCL|O_NOFOLLOW, mode 0400, owned by
 * the caller, fsynced. -EEXIST if anything is at path. The new key goes to *ret when ret is not
 * NULL. A partly written file is removed.
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

/*
 * Read a passphrase from a file ("-" is standard input), dropping one trailing newline. Same
 * refusals as a key file for a regular file (symlink, mode, owner), plus -ENODATA when empty
 * and -EFBIG past 4 KiB.
 */
int kura_master_read_passphrase(const char *path, struct kura_secbuf **ret);

/* Argon2id(passphrase, kdf) -> 32-byte master key. -ENOMEM when the memory cost cannot be met. */
int kura_master_derive(const struct kura_secbuf *passphrase, const struct kura_kdf *kdf,
	struct kura_secbuf **ret);

/* The vault: a state directory's store and keyring, and every operation kuractl offers on
 * secrets and keys. kuractl runs these offline; kurad runs the same calls for its admin API.
 * Moves sealed bytes; plaintext only passes through in kura_secbuf. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "master.h"
#include "secbuf.h"
#include "store.h"

/* A failure's explanation, one sentence, never holding a value. */
struct kura_err {
	char msg[512];
};

__attribute__((format(printf, 3, 4))) int kura_err_set(struct kura_err *err, int r, const char *fmt,
	...);

enum kura_master_kind {
	KURA_MASTER_FILE,
	KURA_MASTER_PASSPHRASE,
	KURA_MASTER_TPM2,
};

/*
 * Where the master key comes from. To open a state, the default (FILE, no path) also takes a
 * state whose key is sealed to the TPM2: its blob, STATE/master.tpm2, names the TPM itself.
 */
struct kura_master_source {
	enum kura_master_kind kind;
	const char *path; /* key file (NULL: <state>/master.key) or passphrase file ("-": stdin) */
	const char *tcti; /* TPM2, to seal (init, rekey): the TPM (NULL: device:/dev/tpmrm0) */
};

/* "file", "passphrase" or "tpm2": how records, the admin API and kuractl name a source. */
const char *kura_master_kind_name(enum kura_master_kind kind);
/* The other way: -EINVAL for anything else (NULL too). */
int kura_master_kind_parse(const char *name, enum kura_master_kind *ret);

struct kura_vault;

#define KURA_MASTER_FILE_NAME "master.key"
/* The master key sealed to this host's TPM2 (keys/tpm2.h), with the TCTI that reaches it. */
#define KURA_MASTER_TPM2_NAME "master.tpm2"
#define KURA_STORE_FILE_NAME "kura.db"
/* Written by a kurad serving the state: its run directory, so kuractl finds its admin socket. */
#define KURA_RUN_DIR_FILE "kurad.run"

struct kura_init_opts {
	struct kura_master_source master;
	size_t max_value_size; /* 0: the build's default */
	unsigned store_flags;
	/* Non-NULL: also create the audit log in STATE/audit and hand back its starting key,
	 * which the operator keeps off the host (kuractl audit verify --key needs it). */
	struct kura_secbuf **ret_audit_key;
	/* Given that key once the log is made, before init returns (to write it out): a failure
	 * (its -errno, and its message in err) undoes the whole init, so that no state is left
	 * whose log nobody can verify. */
	int (*keep_audit_key)(const struct kura_secbuf *key, void *userdata, struct kura_err *err);
	void *keep_audit_key_data;
};

/*
 * Create a new state: the directory (0700; an existing one must be empty of kura files and
 * owned by us with no group/other access), the master key file (or, for the TPM2, the blob
 * STATE/master.tpm2; nothing for a passphrase),
 * the store and the first KEK. -EEXIST if a store is already there. On failure nothing created
 * here is left behind.
 */
int kura_vault_init(const char *dir, const struct kura_init_opts *o, struct kura_err *err);

/*
 * Open an existing state and unlock its keyring with the master key. -ENOENT (no state there),
 * -EKEYREJECTED (the master key does not open the keyring), -ENOKEY (the store wants a
 * passphrase and none was given, or wants its key file and was given a passphrase, or is
 * sealed to the TPM2 and was given either), -EUCLEAN/-EPROTO (corrupt), key file errors as
 * kura_master_load_file, and the TPM2's as kura_tpm2_unseal (-EKEYREJECTED: sealed to another
 * TPM; -ENODEV: no TPM; -EBADMSG: the blob is damaged).
 */
int kura_vault_open(const char *dir, const struct kura_master_source *m, unsigned store_flags,
	struct kura_vault **ret, struct kura_err *err);

void kura_vault_close(struct kura_vault *v);

struct kura_store *kura_vault_store(struct kura_vault *v);

/* "b2:" and 32 hex digits: the keyed fingerprint of a value that audit records carry instead
 * of the value (kura_keyring_fingerprint). */
#define KURA_FINGERPRINT_TEXT 36u
int kura_vault_fingerprint(struct kura_vault *v, const struct kura_secbuf *value,
	char out[KURA_FINGERPRINT_TEXT]);
size_t kura_vault_max_value(const struct kura_vault *v);

/* --- secrets --- */

struct kura_version_info {
	uint64_t version;
	int64_t created;
	uint64_t size;
	uint32_t kek_id;
};

struct kura_secret_info {
	char *name;
	uint64_t current;
	uint64_t latest;
	int64_t created;
	int64_t updated;
	struct kura_version_info *versions; /* filled by kura_secret_show only, ascending */
	size_t n_versions;
};

void kura_secret_info_done(struct kura_secret_info *i);

struct kura_secret_list {
	struct kura_secret_info *items;
	size_t n;
};

void kura_secret_list_done(struct kura_secret_list *l);

/* A new secret with value as version 1. -EEXIST if the name is taken, or if a secret lies
 * below it or above it (a name is a secret or a folder of secrets, never both; err names the
 * one in the way); -EINVAL for a bad name; -EFBIG past the store's value limit. */
int kura_secret_put(struct kura_vault *v, const char *name, const struct kura_secbuf *value,
	uint64_t *ret_version, struct kura_err *err);

/*
 * Many new secrets, each with its value as version 1, in one transaction: all of them or none.
 * The same refusals as kura_secret_put (a name twice in the batch, or one a folder of another,
 * is -EEXIST too), with *ret_failed the index of the one refused (n when the refusal is not
 * one secret's); *ret_rev gets the store revision that holds them.
 */
int kura_secret_put_many(struct kura_vault *v, const char *const *names,
	struct kura_secbuf *const *values, size_t n, size_t *ret_failed, int64_t *ret_rev,
	struct kura_err *err);

/* A new version of an existing secret, made current. -ENOENT if there is no such secret. */
int kura_secret_rotate(struct kura_vault *v, const char *name, const struct kura_secbuf *value,
	uint64_t *ret_version, struct kura_err *err);

/* The value of version (0: the current one). -ENOENT if absent or destroyed. */
int kura_secret_get(struct kura_vault *v, const char *name, uint64_t version,
	struct kura_secbuf **ret_value, struct kura_version_info *ret_info, struct kura_err *err);

int kura_secret_show(struct kura_vault *v, const char *name, struct kura_secret_info *ret,
	struct kura_err *err);

/* Secrets whose names start with prefix (a plain string prefix; "" for all), sorted. */
int kura_secret_list(struct kura_vault *v, const char *prefix, struct kura_secret_list *ret,
	struct kura_err *err);

/* The same, for only the names keep() accepts: the others' records are not even decoded (a
 * workload's list, over a large store, costs what it may see, not the whole store). */
int kura_secret_list_filtered(struct kura_vault *v, const char *prefix,
	bool (*keep)(const char *name, void *userdata), void *userdata,
	struct kura_secret_list *ret, struct kura_err *err);

/* The same, one secret at a time and nothing gathered: fn sees each kept secret in order (its
 * name valid during the call only, no versions) and stops the walk by returning -errno, which is
 * returned. For a listing that is sent as it is read. */
int kura_secret_each(struct kura_vault *v, const char *prefix,
	bool (*keep)(const char *name, void *userdata), void *keep_userdata,
	int (*fn)(const struct kura_secret_info *info, void *userdata), void *userdata,
	struct kura_err *err);

/* Make an existing version current again. -ENOENT if it is absent or destroyed. */
int kura_secret_rollback(struct kura_vault *v, const char *name, uint64_t version,
	struct kura_err *err);

/*
 * Delete ciphertext for good: one version (not the current one: -EPERM), or with version 0 the
 * whole secret. The store runs with secure_delete, so the freed pages are zeroed too.
 */
int kura_secret_destroy(struct kura_vault *v, const char *name, uint64_t version,
	struct kura_err *err);

/* --- keys --- */

struct kura_key_status {
	enum kura_master_kind master;
	struct kura_kdf kdf; /* passphrase only */
	uint32_t current;
	uint32_t *kek_ids;
	int64_t *kek_created;
	size_t n_keks;
	uint64_t n_secrets;
	uint64_t n_versions;
	uint64_t *per_kek; /* versions wrapped by each of kek_ids */
	int64_t revision;
	int schema;
	uint64_t max_value_size;
};

void kura_key_status_done(struct kura_key_status *s);

int kura_key_status(struct kura_vault *v, struct kura_key_status *ret, struct kura_err *err);

typedef void (*kura_progress_fn)(uint64_t done, uint64_t total, void *userdata);

/*
 * Add a KEK and make it current (committed first, so every writer from then on seals under it),
 * then rewrap every DEK under any other KEK and destroy those KEKs, all in one transaction.
 * Values are never re-encrypted. Killed at any moment, the store still opens every secret, and
 * running it again finishes the job. *ret_rewrapped counts the DEKs rewrapped.
 */
int kura_key_rotate(struct kura_vault *v, kura_progress_fn progress, void *userdata,
	uint64_t *ret_rewrapped, uint32_t *ret_kek, struct kura_err *err);

/* Rewrap the keyring (only) under a new master key. For a key file, path is created if it
 * does not exist (32 random bytes, 0400) or loaded with the usual checks if it does. For the
 * TPM2, a new key is sealed to to->tcti into STATE/master.tpm2, which replaces the one there
 * only once the keyring is committed under it. */
int kura_key_rekey(struct kura_vault *v, const struct kura_master_source *to, struct kura_err *err);

/* Change the store's largest accepted value. */
int kura_vault_set_max_value(struct kura_vault *v, uint64_t max, struct kura_err *err);

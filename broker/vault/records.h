/* How the vault lays its records out in the store (keys and JSON bodies). Internal to the
 * vault; nothing here is secret: values and keys appear only as sealed boxes. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "keyring.h"
#include "seal.h"
#include "clock.h"
#include "vault.h"

/*
 *   config                      {"format":1,"max_value_size":N}
 *   keyring                     {"master":{"source":"file"|"passphrase"|"tpm2","kdf":{...}},
 *                                "current":K,"next":K+1,"keks":[{"id","created","box"}],
 *                                "record_key":b64}
 *   secret/<name>               {"id":b64,"current":V,"latest":V,"created":T,"updated":T,
 *                                "mac":b64}
 *   version/<name>@<V, 10 digits> {"secret_id":b64,"created":T,"size":S,"kek":K,"dek":b64,
 *                                "value":b64}
 *   folder/<F>                  {}: rewritten by every secret made below F (at any depth);
 *                                making a secret named F compares it (see secret.c)
 *
 * A secret record is MACed with the keyring's record key over its name and body, so which
 * version is current cannot be edited; its random id (the incarnation) is bound into every
 * version's boxes, so versions of a destroyed secret never pass for a new one of that name.
 *
 * '@' cannot occur in a name, so the versions of "a" never mix with those of "a/b"; the zero
 * padding keeps versions in numeric order in a bytewise range.
 */
#define KEY_CONFIG "config"
#define KEY_KEYRING "keyring"
#define PREFIX_SECRET "secret/"
#define PREFIX_VERSION "version/"
#define PREFIX_FOLDER "folder/"
#define RECORD_FORMAT 1

struct kek_record {
	uint32_t id;
	int64_t created;
	uint8_t *box;
	size_t len;
};

struct keyring_record {
	enum kura_master_kind master;
	struct kura_kdf kdf;
	uint32_t current;
	uint32_t next;
	struct kek_record *keks;
	size_t n;
	uint8_t *record_box; /* the record key, wrapped by the master key */
	size_t record_len;
};

struct secret_record {
	uint8_t id[KURA_SECRET_ID_BYTES];
	uint64_t current;
	uint64_t latest;
	int64_t created;
	int64_t updated;
};

struct version_record {
	int64_t created;
	uint64_t size;
	struct kura_sealed sealed;
};

struct kura_vault {
	char *dir;
	struct kura_store *store;
	struct kura_secbuf *master;
	struct kura_keyring *keyring;
	struct keyring_record kr; /* as last read or written */
	int64_t keyring_rev;
	uint64_t max_value;
	int64_t config_rev;
};

void keyring_record_done(struct keyring_record *k);
int keyring_record_encode(const struct keyring_record *k, uint8_t **ret, size_t *ret_len);
int keyring_record_decode(const uint8_t *data, size_t len, struct keyring_record *ret);

/* Encode with a MAC by the keyring's record key over name and body. */
int secret_record_encode(const struct kura_keyring *kr, const char *name,
	const struct secret_record *s, uint8_t **ret, size_t *ret_len);
/* Decode, checking the MAC: -EBADMSG if the record was altered or moved from another name,
 * -EPROTO if malformed. */
int secret_record_decode(const struct kura_keyring *kr, const char *name, const uint8_t *data,
	size_t len, struct secret_record *ret);

int version_record_encode(const struct version_record *v, uint8_t **ret, size_t *ret_len);
int version_record_decode(const uint8_t *data, size_t len, struct version_record *ret);

/* Store keys; NULL on allocation failure. */
char *secret_key(const char *name);
char *version_key(const char *name, uint64_t version);
char *version_prefix(const char *name);
/* The first len bytes of a name as a folder: its marker key, and the prefix of the secret
 * keys below it ("secret/<F>/"). */
char *folder_key(const char *name, size_t len);
char *below_prefix(const char *name, size_t len);

/* The version number at the end of a version key, or 0 if it is not one. */
uint64_t version_from_key(const char *key);

/* Split a version key into the secret's name (malloc'd) and version. -EUCLEAN if malformed. */
int version_key_parse(const char *key, char **ret_name, uint64_t *ret_version);

/* Re-read the keyring record if it changed since we read it, unlocking new KEKs. */
int vault_refresh_keyring(struct kura_vault *v, struct kura_err *err);

/* Apply a store error to err with context, returning r. */
int store_err(struct kura_vault *v, struct kura_err *err, int r, const char *what);

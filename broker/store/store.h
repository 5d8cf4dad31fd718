/* The store interface: a revisioned key-value map holding sealed bytes and metadata, never
 * plaintext. SQLite is the embedded default; an etcd v3 backend implements the same calls. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The model is etcd's: every committed transaction advances one store-wide revision; each key
 * remembers the revision that created it and the one that last changed it. A transaction is a
 * list of puts and deletes, each with an optional compare on the key's mod_rev, applied all
 * together or not at all.
 */

#define KURA_REV_ANY (-1) /* no compare */
#define KURA_REV_ABSENT 0 /* the key must not exist */

struct kura_kv {
	char *key;
	uint8_t *value;
	size_t len;
	int64_t create_rev;
	int64_t mod_rev;
};

struct kura_kv_list {
	struct kura_kv *items;
	size_t n;
};

enum kura_op_kind {
	KURA_OP_PUT,
	KURA_OP_DELETE,
	KURA_OP_CHECK, /* compare only: writes nothing */
};

struct kura_op {
	enum kura_op_kind kind;
	char *key;
	uint8_t *value;
	size_t len;
	int64_t expect_rev; /* KURA_REV_ANY, KURA_REV_ABSENT, or the mod_rev the key must have */
};

/* A transaction owns copies of its keys and values. */
struct kura_txn {
	struct kura_op *ops;
	size_t n;
	size_t cap;
};

enum kura_change_kind {
	KURA_CHANGE_PUT,
	KURA_CHANGE_DELETE,
};

struct kura_change {
	int64_t rev;
	enum kura_change_kind kind;
	char *key;
};

struct kura_change_list {
	struct kura_change *items;
	size_t n;
};

struct kura_store;

struct kura_store_ops {
	const char *name;

	/* The key's value and revisions into *ret. -ENOENT if absent. */
	int (*get)(struct kura_store *s, const char *key, struct kura_kv *ret);

	/* Keys that start with prefix and sort (bytewise) strictly after `after` (NULL: from the
	 * first), ascending, at most `limit` of them (0: all). Paging: pass the last key seen. */
	int (*range)(struct kura_store *s, const char *prefix, const char *after, size_t limit,
		struct kura_kv_list *ret);

	/* Apply every op or none. -ESTALE when a compare fails (nothing written). On success the
	 * new store revision goes to *ret_rev (may be NULL). An empty transaction is a no-op that
	 * reports the current revision. */
	int (*commit)(struct kura_store *s, const struct kura_txn *t, int64_t *ret_rev);

	/* Changes with rev > since, ascending by revision (ops of one transaction in their
	 * order). A page never splits a revision, so a caller can resume from the last revision
	 * it saw: it holds whole revisions up to about `limit` changes (0: all), and a single
	 * revision larger than limit comes whole. -ERANGE if history before `since` was
	 * compacted. */
	int (*changes)(struct kura_store *s, int64_t since, size_t limit,
		struct kura_change_list *ret);

	/* The current store revision (0 for an empty store). */
	int (*revision)(struct kura_store *s, int64_t *ret);

	/* Reads between read_begin and read_end see one snapshot of the store (and take their
	 * locks once). No commit in between (-EINVAL). read_end after a failed begin is a no-op. */
	int (*read_begin)(struct kura_store *s);
	void (*read_end)(struct kura_store *s);

	/* Make deleted values unrecoverable from the backend's own files (SQLite: checkpoint and
	 * truncate the write-ahead log, whose old frames still hold them). -EBUSY if a reader
	 * kept part of the log in use; try again later. */
	int (*purge)(struct kura_store *s);

	/* A human-readable detail for the last failure (never contains values), or "". */
	const char *(*errmsg)(struct kura_store *s);

	void (*close)(struct kura_store *s);
};

/* Backends embed this as their first member. */
struct kura_store {
	const struct kura_store_ops *ops;
};

enum {
	KURA_STORE_CREATE = 1 << 0, /* create the database if it does not exist */
	KURA_STORE_NOSYNC = 1 << 1, /* tests and bulk loads only: skip fsync on commit */
};

/*
 * Open (and with KURA_STORE_CREATE, create with mode 0600) the SQLite store at `path`, migrating
 * its schema forward. Errors: -ENOENT (absent, no CREATE), -EUCLEAN (not a kura store, or
 * corrupt), -EPROTONOSUPPORT (schema newer than this build), -EACCES, -ENOSPC, -EIO, -EBUSY.
 */
int kura_store_open_sqlite(const char *path, unsigned flags, struct kura_store **ret);

/* A consistent copy of the SQLite store at src into the new file dst (mode 0600), while others
 * may write to src; *ret_rev gets the copy's revision. -EUCLEAN if src is not a kura store. */
int kura_store_sqlite_backup(const char *src, const char *dst, int64_t *ret_rev);

/* Fixed schema version of this build's SQLite backend. */
int kura_store_sqlite_schema_version(void);

static inline int kura_store_get(struct kura_store *s, const char *key, struct kura_kv *ret)
{
	return s->ops->get(s, key, ret);
}

static inline int kura_store_read_begin(struct kura_store *s)
{
	return s->ops->read_begin ? s->ops->read_begin(s) : 0;
}

static inline void kura_store_read_end(struct kura_store *s)
{
	if (s->ops->read_end)
		s->ops->read_end(s);
}

static inline int kura_store_range(struct kura_store *s, const char *prefix, const char *after,
	size_t limit, struct kura_kv_list *ret)
{
	return s->ops->range(s, prefix, after, limit, ret);
}

static inline int kura_store_commit(struct kura_store *s, const struct kura_txn *t,
	int64_t *ret_rev)
{
	return s->ops->commit(s, t, ret_rev);
}

static inline int kura_store_changes(struct kura_store *s, int64_t since, size_t limit,
	struct kura_change_list *ret)
{
	return s->ops->changes(s, since, limit, ret);
}

static inline int kura_store_revision(struct kura_store *s, int64_t *ret)
{
	return s->ops->revision(s, ret);
}

static inline const char *kura_store_errmsg(struct kura_store *s)
{
	return s ? s->ops->errmsg(s) : "";
}

static inline int kura_store_purge(struct kura_store *s)
{
	return s->ops->purge(s);
}

void kura_store_close(struct kura_store *s);

/* Transaction building (store.c). Each copies key and value. -ENOMEM on failure. */
int kura_txn_put(struct kura_txn *t, const char *key, const void *value, size_t len,
	int64_t expect_rev);
int kura_txn_delete(struct kura_txn *t, const char *key, int64_t expect_rev);
/* Make the transaction depend on key's mod_rev (or absence) without writing it. expect_rev must
 * not be KURA_REV_ANY. */
int kura_txn_check(struct kura_txn *t, const char *key, int64_t expect_rev);
void kura_txn_done(struct kura_txn *t);

void kura_kv_done(struct kura_kv *kv);
void kura_kv_list_done(struct kura_kv_list *l);
void kura_change_list_done(struct kura_change_list *l);

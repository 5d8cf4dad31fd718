/* The SQLite store backend: a revisioned key-value map in one WAL-mode database file with an
 * explicit, versioned schema. It holds sealed values and metadata, never plaintext. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <sqlite3.h>

#include "macro.h"
#include "store.h"

/* PRAGMA application_id of every kura store: "kura" in ASCII. */
#define KURA_APPLICATION_ID 0x6b757261

#define BUSY_TIMEOUT_MS 10000

/* changes.kind as written on disk, independent of enum kura_change_kind. */
enum {
	ROW_PUT = 0,
	ROW_DELETE = 1,
};

/*
 * The schema, as ordered migrations: migrations[i] takes user_version i to i + 1 and runs in its
 * own BEGIN IMMEDIATE transaction together with the user_version bump. Never edit one that has
 * shipped; append another.
 *
 * v1: kv holds the current value of each key. changes is the history of applied ops, keyed by
 * the revision and the op's index in its transaction. meta holds 'revision' (the store
 * revision) and 'compacted' (history up to and including this revision has been dropped).
 */
static const char *const migrations[] = {
	"CREATE TABLE kv ("
	" key TEXT PRIMARY KEY,"
	" value BLOB NOT NULL,"
	" create_rev INTEGER NOT NULL,"
	" mod_rev INTEGER NOT NULL"
	") WITHOUT ROWID;"
	"CREATE TABLE changes ("
	" rev INTEGER NOT NULL,"
	" seq INTEGER NOT NULL,"
	" kind INTEGER NOT NULL CHECK (kind IN (0, 1)),"
	" key TEXT NOT NULL,"
	" PRIMARY KEY (rev, seq)"
	") WITHOUT ROWID;"
	"CREATE TABLE meta ("
	" name TEXT PRIMARY KEY,"
	" value INTEGER NOT NULL"
	") WITHOUT ROWID;"
	"INSERT INTO meta (name, value) VALUES ('revision', 0), ('compacted', 0);",
};

#define SCHEMA_VERSION ((int)ELEMENTSOF(migrations))

enum stmt {
	ST_BEGIN_READ,
	ST_BEGIN_WRITE,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_GET,
	ST_MOD_REV,
	ST_PUT,
	ST_DELETE,
	ST_LOG,
	ST_META_GET,
	ST_META_SET,
	ST_CHANGES,
	ST_RANGE_GE,
	ST_RANGE_GE_LT,
	ST_RANGE_GT,
	ST_RANGE_GT_LT,
	ST_COUNT,
};

#define KV_SELECT "SELECT key, value, create_rev, mod_rev FROM kv "

/* Prefix ranges are bounds on the primary key, never LIKE: no escaping, and an index search. */
static const char *const stmt_sql[ST_COUNT] = {
	[ST_BEGIN_READ] = "BEGIN DEFERRED",
	[ST_BEGIN_WRITE] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_GET] = KV_SELECT "WHERE key = ?1",
	[ST_MOD_REV] = "SELECT mod_rev FROM kv WHERE key = ?1",
	[ST_PUT] = "INSERT INTO kv (key, value, create_rev, mod_rev) VALUES (?1, ?2, ?3, ?3)"
		   " ON CONFLICT (key) DO UPDATE SET value = excluded.value,"
		   " mod_rev = excluded.mod_rev",
	[ST_DELETE] = "DELETE FROM kv WHERE key = ?1",
	[ST_LOG] = "INSERT INTO changes (rev, seq, kind, key) VALUES (?1, ?2, ?3, ?4)",
	[ST_META_GET] = "SELECT value FROM meta WHERE name = ?1",
	[ST_META_SET] = "UPDATE meta SET value = ?2 WHERE name = ?1",
	[ST_CHANGES] = "SELECT rev, kind, key FROM changes WHERE rev > ?1 ORDER BY rev, seq",
	[ST_RANGE_GE] = KV_SELECT "WHERE key >= ?1 ORDER BY key LIMIT ?3",
	[ST_RANGE_GE_LT] = KV_SELECT "WHERE key >= ?1 AND key < ?2 ORDER BY key LIMIT ?3",
	[ST_RANGE_GT] = KV_SELECT "WHERE key > ?1 ORDER BY key LIMIT ?3",
	[ST_RANGE_GT_LT] = KV_SELECT "WHERE key > ?1 AND key < ?2 ORDER BY key LIMIT ?3",
};

struct sqlite_store {
	struct kura_store base;
	sqlite3 *db;
	sqlite3_stmt *st[ST_COUNT];
	bool readonly; /* on a read-only file system: opened immutable, reads only */
	bool in_read;  /* between read_begin and read_end */
	char err[512];
};

static struct sqlite_store *to_sqlite(struct kura_store *base)
{
	return (struct sqlite_store *)base;
}

static void stmt_resetp(sqlite3_stmt **st)
{
	if (*st) {
		sqlite3_reset(*st);
		sqlite3_clear_bindings(*st);
	}
}

static void stmt_finalizep(sqlite3_stmt **st)
{
	sqlite3_finalize(*st);
}

__attribute__((format(printf, 3, 4))) static int fail(struct sqlite_store *s, int r,
	const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->err, sizeof(s->err), fmt, ap);
	va_end(ap);
	return r;
}

static int errno_from_sqlite(int rc, int sys_errno)
{
	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return -EUCLEAN;
	case SQLITE_READONLY:
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return -EACCES;
	case SQLITE_CANTOPEN:
		if (sys_errno == ENOENT)
			return -ENOENT;
		if (sys_errno == ELOOP)
			return -ELOOP;
		return sys_errno == EACCES || sys_errno == EPERM ? -EACCES : -EIO;
	case SQLITE_IOERR:
		/* Some write paths (the shm file, for one) report a full disk as an I/O error. */
		return sys_errno == ENOSPC || sys_errno == EDQUOT ? -ENOSPC : -EIO;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_CONSTRAINT:
		return -EEXIST;
	case SQLITE_TOOBIG:
		return -E2BIG;
	default:
		return -EIO;
	}
}

/*
 * The errno of the last failed read or write on the database file or its write-ahead log, or 0.
 * SQLite turns EIO (and ENXIO) from pread into SQLITE_CORRUPT, on the theory that a disk that
 * cannot read a page holds a damaged one; only this tells a failing disk from a bad file.
 */
static int last_io_errno(struct sqlite_store *s)
{
	sqlite3_file *journal = NULL;
	int e = 0;

	if (sqlite3_file_control(s->db, "main", SQLITE_FCNTL_LAST_ERRNO, &e) == SQLITE_OK &&
		(e == EIO || e == ENXIO))
		return e;
	e = 0;
	if (sqlite3_file_control(s->db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &journal) ==
			SQLITE_OK &&
		journal && journal->pMethods && journal->pMethods->xFileControl &&
		journal->pMethods->xFileControl(journal, SQLITE_FCNTL_LAST_ERRNO, &e) ==
			SQLITE_OK &&
		(e == EIO || e == ENXIO))
		return e;
	return 0;
}

/* Record SQLite's account of the failure rc while doing `what`; return it as -errno. */
static int sqlfail(struct sqlite_store *s, int rc, const char *what)
{
	int r = errno_from_sqlite(rc, sqlite3_system_errno(s->db)), e;

	if (r == -EUCLEAN && (e = last_io_errno(s)) != 0)
		return fail(s, -EIO, "%s: the disk could not read the store (%s)", what,
			strerror(e));
	return fail(s, r, "%s: %s (sqlite %d)", what, sqlite3_errmsg(s->db), rc);
}

/* Step a statement that yields no row, then reset it for the next use. */
static int step_done(struct sqlite_store *s, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st), r = 0;

	if (rc != SQLITE_DONE)
		r = sqlfail(s, rc, what);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return r;
}

static int bind_key(struct sqlite_store *s, sqlite3_stmt *st, int i, const char *key)
{
	int rc = sqlite3_bind_text(st, i, key, -1, SQLITE_STATIC);

	return rc == SQLITE_OK ? 0 : sqlfail(s, rc, "binding a key");
}

/* Roll back the open transaction, if SQLite has not already done so after an I/O error. */
static void rollback(struct sqlite_store *s)
{
	if (sqlite3_get_autocommit(s->db))
		return;
	if (s->st[ST_ROLLBACK]) {
		sqlite3_step(s->st[ST_ROLLBACK]);
		sqlite3_reset(s->st[ST_ROLLBACK]);
	} else {
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	}
}

/* Grow *items (of n elements, room for *cap) to hold one more; -ENOMEM leaves it unchanged. */
static int grow(void **items, size_t *cap, size_t n, size_t size)
{
	size_t c;
	void *p;

	if (n < *cap)
		return 0;
	c = *cap ? *cap * 2 : 16;
	if (c < *cap || c > SIZE_MAX / size)
		return -ENOMEM;
	p = realloc(*items, c * size);
	if (!p)
		return -ENOMEM;
	*items = p;
	*cap = c;
	return 0;
}

static char *column_strdup(sqlite3_stmt *st, int col)
{
	const unsigned char *text = sqlite3_column_text(st, col);
	size_t n = sqlite3_column_bytes(st, col);
	char *p;

	if (!text)
		return NULL;
	p = malloc(n + 1);
	if (!p)
		return NULL;
	memcpy(p, text, n);
	p[n] = '\0';
	return p;
}

/* Copy the current row of a KV_SELECT statement into *ret. */
static int row_to_kv(sqlite3_stmt *st, struct kura_kv *ret)
{
	_cleanup_free_ char *key = NULL;
	_cleanup_free_ uint8_t *value = NULL;
	const void *blob;
	size_t len;

	key = column_strdup(st, 0);
	if (!key)
		return -ENOMEM;
	blob = sqlite3_column_blob(st, 1);
	len = sqlite3_column_bytes(st, 1);
	if (!blob && len > 0)
		return -ENOMEM;
	/* Never NULL, even for an empty value. */
	value = malloc(len ? len : 1);
	if (!value)
		return -ENOMEM;
	if (len)
		memcpy(value, blob, len);

	*ret = (struct kura_kv){
		.key = TAKE_PTR(key),
		.value = TAKE_PTR(value),
		.len = len,
		.create_rev = sqlite3_column_int64(st, 2),
		.mod_rev = sqlite3_column_int64(st, 3),
	};
	return 0;
}

static int meta_get(struct sqlite_store *s, const char *name, int64_t *ret)
{
	_cleanup_(stmt_resetp) sqlite3_stmt *st = s->st[ST_META_GET];
	int rc;

	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		return fail(s, -EUCLEAN, "corrupt store: no '%s' in meta", name);
	if (rc != SQLITE_ROW)
		return sqlfail(s, rc, "reading store metadata");
	*ret = sqlite3_column_int64(st, 0);
	return 0;
}

static int meta_set(struct sqlite_store *s, const char *name, int64_t value)
{
	sqlite3_stmt *st = s->st[ST_META_SET];
	int r;

	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, value);
	r = step_done(s, st, "writing store metadata");
	if (r < 0)
		return r;
	if (sqlite3_changes(s->db) != 1)
		return fail(s, -EUCLEAN, "corrupt store: no '%s' in meta", name);
	return 0;
}

static int sqlite_get(struct kura_store *base, const char *key, struct kura_kv *ret)
{
	struct sqlite_store *s = to_sqlite(base);
	_cleanup_(stmt_resetp) sqlite3_stmt *st = s->st[ST_GET];
	int rc, r;

	s->err[0] = '\0';
	if (!key || !ret)
		return fail(s, -EINVAL, "get: no key");
	r = bind_key(s, st, 1, key);
	if (r < 0)
		return r;
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		return fail(s, -ENOENT, "no such key: %.200s", key);
	if (rc != SQLITE_ROW)
		return sqlfail(s, rc, "reading a key");
	r = row_to_kv(st, ret);
	if (r < 0)
		return fail(s, r, "reading a key: out of memory");
	return 0;
}

/*
 * The least string above every string that starts with prefix: the prefix with its trailing 0xff
 * bytes dropped and its last remaining byte incremented. *ret is NULL (no upper bound) when the
 * prefix is empty or all 0xff.
 */
static int prefix_end(const char *prefix, char **ret)
{
	size_t n = strlen(prefix);
	char *end;

	while (n > 0 && (unsigned char)prefix[n - 1] == 0xff)
		n--;
	if (n == 0) {
		*ret = NULL;
		return 0;
	}
	end = strndup(prefix, n);
	if (!end)
		return -ENOMEM;
	end[n - 1] = (char)((unsigned char)end[n - 1] + 1);
	*ret = end;
	return 0;
}

static int sqlite_range(struct kura_store *base, const char *prefix, const char *after,
	size_t limit, struct kura_kv_list *ret)
{
	struct sqlite_store *s = to_sqlite(base);
	_cleanup_(kura_kv_list_done) struct kura_kv_list l = { 0 };
	_cleanup_free_ char *end = NULL;
	_cleanup_(stmt_resetp) sqlite3_stmt *st = NULL; /* reset before end is freed */
	size_t cap = 0;
	bool exclusive;
	int rc, r;

	s->err[0] = '\0';
	if (!ret)
		return fail(s, -EINVAL, "range: no result");
	if (!prefix)
		prefix = "";
	r = prefix_end(prefix, &end);
	if (r < 0)
		return fail(s, r, "range: out of memory");

	/* Start after `after` only when that is past the prefix itself. */
	exclusive = after && strcmp(after, prefix) >= 0;
	if (exclusive)
		st = s->st[end ? ST_RANGE_GT_LT : ST_RANGE_GT];
	else
		st = s->st[end ? ST_RANGE_GE_LT : ST_RANGE_GE];
	r = bind_key(s, st, 1, exclusive ? after : prefix);
	if (r >= 0 && end)
		r = bind_key(s, st, 2, end);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 3, limit == 0 || limit > INT64_MAX ? -1 : (int64_t)limit);

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		r = grow((void **)&l.items, &cap, l.n, sizeof(*l.items));
		if (r >= 0)
			r = row_to_kv(st, &l.items[l.n]);
		if (r < 0)
			return fail(s, r, "range: out of memory");
		l.n++;
	}
	if (rc != SQLITE_DONE)
		return sqlfail(s, rc, "listing keys");

	*ret = l;
	l = (struct kura_kv_list){ 0 };
	return 0;
}

static int check_op(struct sqlite_store *s, const struct kura_op *op, size_t i)
{
	if (!op->key || !*op->key)
		return fail(s, -EINVAL, "op %zu: empty key", i);
	if (op->kind != KURA_OP_PUT && op->kind != KURA_OP_DELETE && op->kind != KURA_OP_CHECK)
		return fail(s, -EINVAL, "op %zu: unknown kind %d", i, (int)op->kind);
	if (op->kind == KURA_OP_CHECK && op->expect_rev == KURA_REV_ANY)
		return fail(s, -EINVAL, "op %zu: a check without a compare", i);
	if (op->expect_rev < KURA_REV_ANY)
		return fail(s, -EINVAL, "op %zu: bad expected revision %" PRId64, i,
			op->expect_rev);
	if (op->kind == KURA_OP_PUT && !op->value && op->len > 0)
		return fail(s, -EINVAL, "op %zu: no value", i);
	return 0;
}

/* Check op's compare against the state before the transaction: -ESTALE names the key. */
static int check_compare(struct sqlite_store *s, const struct kura_op *op)
{
	_cleanup_(stmt_resetp) sqlite3_stmt *st = s->st[ST_MOD_REV];
	int64_t mod_rev = KURA_REV_ABSENT; /* revisions start at 1, so 0 is "absent" */
	int rc, r;

	r = bind_key(s, st, 1, op->key);
	if (r < 0)
		return r;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		mod_rev = sqlite3_column_int64(st, 0);
	else if (rc != SQLITE_DONE)
		return sqlfail(s, rc, "checking a compare");

	if (mod_rev == op->expect_rev)
		return 0;
	if (op->expect_rev == KURA_REV_ABSENT)
		return fail(s, -ESTALE, "compare failed: %.200s exists (mod_rev %" PRId64 ")",
			op->key, mod_rev);
	if (mod_rev == KURA_REV_ABSENT)
		return fail(s, -ESTALE,
			"compare failed: %.200s does not exist (expected mod_rev %" PRId64 ")",
			op->key, op->expect_rev);
	return fail(s, -ESTALE, "compare failed: %.200s has mod_rev %" PRId64 ", expected %" PRId64,
		op->key, mod_rev, op->expect_rev);
}

/* Apply op i of the transaction at revision rev and log it; *ret_changed says whether it did
 * anything (a delete of an absent key does not). */
static int apply_op(struct sqlite_store *s, const struct kura_op *op, size_t i, int64_t rev,
	bool *ret_changed)
{
	sqlite3_stmt *st, *log = s->st[ST_LOG];
	int kind, rc, r;

	if (op->kind == KURA_OP_PUT) {
		st = s->st[ST_PUT];
		kind = ROW_PUT;
		r = bind_key(s, st, 1, op->key);
		if (r < 0)
			return r;
		/* A NULL pointer would bind SQL NULL, not an empty blob. */
		rc = sqlite3_bind_blob64(st, 2, op->value ? (const void *)op->value : "", op->len,
			SQLITE_STATIC);
		if (rc != SQLITE_OK) {
			r = sqlfail(s, rc, "binding a value");
			sqlite3_clear_bindings(st);
			return r;
		}
		sqlite3_bind_int64(st, 3, rev);
		r = step_done(s, st, "writing a key");
		if (r < 0)
			return r;
	} else {
		st = s->st[ST_DELETE];
		kind = ROW_DELETE;
		r = bind_key(s, st, 1, op->key);
		if (r < 0)
			return r;
		r = step_done(s, st, "deleting a key");
		if (r < 0)
			return r;
		if (sqlite3_changes(s->db) == 0) {
			*ret_changed = false;
			return 0;
		}
	}

	sqlite3_bind_int64(log, 1, rev);
	sqlite3_bind_int64(log, 2, (int64_t)i);
	sqlite3_bind_int(log, 3, kind);
	r = bind_key(s, log, 4, op->key);
	if (r < 0) {
		sqlite3_clear_bindings(log);
		return r;
	}
	r = step_done(s, log, "logging a change");
	if (r < 0)
		return r;
	*ret_changed = true;
	return 0;
}

/*
 * The body of a commit, inside BEGIN IMMEDIATE: every compare is checked against the state
 * before the transaction, then the ops are applied in order at the next revision. A transaction
 * that changes nothing (only deletes of absent keys) does not advance the revision, as in etcd.
 * The caller rolls back on failure.
 */
static int commit_locked(struct sqlite_store *s, const struct kura_txn *t, int64_t *ret_rev)
{
	int64_t rev = 0;
	size_t changed = 0;
	int r;

	r = meta_get(s, "revision", &rev);
	if (r < 0)
		return r;
	for (size_t i = 0; i < t->n; i++) {
		if (t->ops[i].expect_rev == KURA_REV_ANY)
			continue;
		r = check_compare(s, &t->ops[i]);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < t->n; i++) {
		bool c = false;

		if (t->ops[i].kind == KURA_OP_CHECK)
			continue;

		r = apply_op(s, &t->ops[i], i, rev + 1, &c);
		if (r < 0)
			return r;
		changed += c;
	}
	if (changed) {
		r = meta_set(s, "revision", ++rev);
		if (r < 0)
			return r;
	}
	r = step_done(s, s->st[ST_COMMIT], "committing");
	if (r < 0)
		return r;
	*ret_rev = rev;
	return 0;
}

static int sqlite_commit(struct kura_store *base, const struct kura_txn *t, int64_t *ret_rev)
{
	struct sqlite_store *s = to_sqlite(base);
	int64_t rev = 0;
	int r;

	s->err[0] = '\0';
	if (!t || (t->n > 0 && !t->ops))
		return fail(s, -EINVAL, "commit: no transaction");
	if (s->in_read)
		return fail(s, -EINVAL, "commit: inside a read snapshot");
	if (s->readonly && t->n > 0)
		return fail(s, -EROFS, "the store is on a read-only file system");
	for (size_t i = 0; i < t->n; i++) {
		r = check_op(s, &t->ops[i], i);
		if (r < 0)
			return r;
	}

	if (t->n == 0) {
		r = meta_get(s, "revision", &rev);
		if (r < 0)
			return r;
	} else {
		r = step_done(s, s->st[ST_BEGIN_WRITE], "starting a transaction");
		if (r < 0)
			return r;
		r = commit_locked(s, t, &rev);
		if (r < 0) {
			rollback(s);
			return r;
		}
	}
	if (ret_rev)
		*ret_rev = rev;
	return 0;
}

static enum kura_change_kind change_kind(int row)
{
	return row == ROW_PUT ? KURA_CHANGE_PUT : KURA_CHANGE_DELETE;
}

/*
 * Read changes after `since` into *l, inside a read transaction so that the compaction mark and
 * the history agree. A page never ends inside a revision, or a caller paging on the last
 * revision it saw would skip the rest of that transaction: a revision that would straddle the
 * limit is left for the next page, unless it is the first one, which is then returned whole
 * even if that exceeds the limit.
 */
static int read_changes(struct sqlite_store *s, int64_t since, size_t limit,
	struct kura_change_list *l)
{
	_cleanup_(stmt_resetp) sqlite3_stmt *st = s->st[ST_CHANGES];
	int64_t compacted;
	size_t cap = 0;
	int rc, r;

	r = meta_get(s, "compacted", &compacted);
	if (r < 0)
		return r;
	if (since < compacted)
		return fail(s, -ERANGE,
			"history up to revision %" PRId64 " was compacted; asked from %" PRId64,
			compacted, since);

	sqlite3_bind_int64(st, 1, since);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t rev = sqlite3_column_int64(st, 0);
		int kind = sqlite3_column_int(st, 1);

		if (limit && l->n >= limit && rev == l->items[l->n - 1].rev &&
			rev != l->items[0].rev) {
			while (l->n > 0 && l->items[l->n - 1].rev == rev)
				free(l->items[--l->n].key);
			break;
		}
		if (limit && l->n >= limit && rev != l->items[l->n - 1].rev)
			break;
		if (kind != ROW_PUT && kind != ROW_DELETE)
			return fail(s, -EUCLEAN, "corrupt store: change of unknown kind %d", kind);

		r = grow((void **)&l->items, &cap, l->n, sizeof(*l->items));
		if (r < 0)
			return fail(s, r, "changes: out of memory");
		l->items[l->n] = (struct kura_change){
			.rev = rev,
			.kind = change_kind(kind),
			.key = column_strdup(st, 2),
		};
		if (!l->items[l->n].key)
			return fail(s, -ENOMEM, "changes: out of memory");
		l->n++;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sqlfail(s, rc, "reading changes");
	return 0;
}

/* One read transaction around several reads: one snapshot, and one set of locks instead of a
 * set per statement (a fetch makes three reads). */
static int sqlite_read_begin(struct kura_store *base)
{
	struct sqlite_store *s = to_sqlite(base);
	int r;

	if (s->in_read)
		return fail(s, -EINVAL, "read_begin: already in a read");
	r = step_done(s, s->st[ST_BEGIN_READ], "starting a read");
	if (r == 0)
		s->in_read = true;
	return r;
}

static void sqlite_read_end(struct kura_store *base)
{
	struct sqlite_store *s = to_sqlite(base);

	if (!s->in_read)
		return;
	s->in_read = false;
	if (step_done(s, s->st[ST_COMMIT], "ending a read") < 0)
		rollback(s);
}

static int sqlite_changes(struct kura_store *base, int64_t since, size_t limit,
	struct kura_change_list *ret)
{
	struct sqlite_store *s = to_sqlite(base);
	_cleanup_(kura_change_list_done) struct kura_change_list l = { 0 };
	bool own;
	int r;

	s->err[0] = '\0';
	if (since < 0 || !ret)
		return fail(s, -EINVAL, "changes: bad arguments");

	/* One snapshot: the caller's, or our own. */
	own = !s->in_read;
	if (own) {
		r = sqlite_read_begin(base);
		if (r < 0)
			return r;
	}
	r = read_changes(s, since, limit, &l);
	if (own)
		sqlite_read_end(base);
	if (r < 0)
		return r;

	*ret = l;
	l = (struct kura_change_list){ 0 };
	return 0;
}

static int sqlite_revision(struct kura_store *base, int64_t *ret)
{
	struct sqlite_store *s = to_sqlite(base);
	int64_t rev = 0;
	int r;

	s->err[0] = '\0';
	if (!ret)
		return fail(s, -EINVAL, "revision: no result");
	r = meta_get(s, "revision", &rev);
	if (r < 0)
		return r;
	*ret = rev;
	return 0;
}

/*
 * Copy every committed frame of the write-ahead log into the database and truncate the log to
 * nothing, so the old page images there (which still hold deleted values) go; secure_delete has
 * already zeroed them in the database itself.
 */
static int sqlite_purge(struct kura_store *base)
{
	struct sqlite_store *s = to_sqlite(base);
	int log = 0, done = 0, rc;

	s->err[0] = '\0';
	if (s->readonly)
		return fail(s, -EROFS, "the store is on a read-only file system");
	rc = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, &log, &done);
	if (rc != SQLITE_OK)
		return sqlfail(s, rc, "checkpointing the write-ahead log");
	return 0;
}

static const char *sqlite_errmsg(struct kura_store *base)
{
	return to_sqlite(base)->err;
}

static void sqlite_close(struct kura_store *base)
{
	struct sqlite_store *s = to_sqlite(base);

	if (!s)
		return;
	for (size_t i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(s->st[i]);
	sqlite3_close(s->db);
	free(s);
}

static void sqlite_closep(struct sqlite_store **s)
{
	if (*s)
		sqlite_close(&(*s)->base);
}

static const struct kura_store_ops sqlite_ops = {
	.name = "sqlite",
	.get = sqlite_get,
	.range = sqlite_range,
	.commit = sqlite_commit,
	.changes = sqlite_changes,
	.revision = sqlite_revision,
	.read_begin = sqlite_read_begin,
	.read_end = sqlite_read_end,
	.purge = sqlite_purge,
	.errmsg = sqlite_errmsg,
	.close = sqlite_close,
};

static int exec(struct sqlite_store *s, const char *sql, const char *what)
{
	int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : sqlfail(s, rc, what);
}

/* Run a one-row query (a PRAGMA, mostly) and give its first column as text, NUL-terminated. */
static int query_text(struct sqlite_store *s, const char *sql, char *buf, size_t size)
{
	_cleanup_(stmt_finalizep) sqlite3_stmt *st = NULL;
	const unsigned char *text;
	int rc;

	rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return sqlfail(s, rc, sql);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW)
		return rc == SQLITE_DONE ? fail(s, -EIO, "%s: no result", sql) :
					   sqlfail(s, rc, sql);
	text = sqlite3_column_text(st, 0);
	snprintf(buf, size, "%s", text ? (const char *)text : "");
	return 0;
}

static int query_int(struct sqlite_store *s, const char *sql, int64_t *ret)
{
	char buf[32], *end;
	long long v;
	int r;

	r = query_text(s, sql, buf, sizeof(buf));
	if (r < 0)
		return r;
	errno = 0;
	v = strtoll(buf, &end, 10);
	if (errno || end == buf || *end)
		return fail(s, -EIO, "%s: not a number", sql);
	*ret = v;
	return 0;
}

/*
 * Decide whether the database is a kura store this build can use. A store has our
 * application_id and a user_version from 1 to SCHEMA_VERSION; a database at version 0 may only
 * be initialised if it is empty and we were asked to create.
 */
static int check_identity(struct sqlite_store *s, bool create)
{
	int64_t app, version, objects;
	int r;

	r = query_int(s, "PRAGMA application_id", &app);
	if (r < 0)
		return r;
	r = query_int(s, "PRAGMA user_version", &version);
	if (r < 0)
		return r;

	if (version == 0) {
		r = query_int(s, "SELECT count(*) FROM sqlite_master", &objects);
		if (r < 0)
			return r;
		if (objects > 0 || (app != 0 && app != KURA_APPLICATION_ID))
			return fail(s, -EUCLEAN,
				"not a kura store: another application's database");
		if (!create)
			return fail(s, -EUCLEAN, "not a kura store: an empty database");
		return 0;
	}
	if (app != KURA_APPLICATION_ID)
		return fail(s, -EUCLEAN, "not a kura store: application_id %#" PRIx64, app);
	if (version < 0 || version > SCHEMA_VERSION)
		return fail(s, -EPROTONOSUPPORT,
			"store schema version %" PRId64 " is newer than this build's %d", version,
			SCHEMA_VERSION);
	return 0;
}

static int configure(struct sqlite_store *s, unsigned flags)
{
	char mode[16];
	int64_t secure;
	int r;

	/* Before anything that may wait on another process's lock, including the journal mode. */
	sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
	sqlite3_extended_result_codes(s->db, 1);
	/* No schema trickery: a store file must not be able to run code or defeat its checks. */
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);

	r = check_identity(s, flags & KURA_STORE_CREATE);
	if (r < 0)
		return r;
	if (s->readonly)
		return 0; /* immutable: no journal, no writes, nothing else to set */

	r = query_text(s, "PRAGMA journal_mode = WAL", mode, sizeof(mode));
	if (r < 0)
		return r;
	if (strcasecmp(mode, "wal") != 0)
		return fail(s, -EIO, "cannot use WAL journal (journal mode is %s)", mode);

	r = exec(s,
		flags & KURA_STORE_NOSYNC ? "PRAGMA synchronous = OFF" :
					    "PRAGMA synchronous = FULL",
		"setting synchronous");
	if (r < 0)
		return r;
	r = exec(s,
		"PRAGMA foreign_keys = ON;"
		"PRAGMA secure_delete = ON;"
		"PRAGMA cell_size_check = ON;",
		"setting pragmas");
	if (r < 0)
		return r;
	/* Destroyed ciphertext must not linger in free pages: insist on it. */
	r = query_int(s, "PRAGMA secure_delete", &secure);
	if (r < 0)
		return r;
	if (secure != 1)
		return fail(s, -EIO, "this SQLite cannot do secure_delete");
	return 0;
}

/*
 * Bring the schema to SCHEMA_VERSION, one migration per transaction. The version is re-read under
 * the write lock, so two processes opening a new store at once migrate it only once.
 */
static int migrate(struct sqlite_store *s)
{
	int64_t current;

	/* The common case, without taking the write lock. */
	if (query_int(s, "PRAGMA user_version", &current) == 0 && current == SCHEMA_VERSION)
		return 0;
	if (s->readonly)
		return fail(s, -EROFS,
			"the store needs a schema upgrade but is on a read-only file "
			"system");
	for (;;) {
		char sql[64];
		int64_t version;
		int r;

		r = exec(s, "BEGIN IMMEDIATE", "starting a migration");
		if (r < 0)
			return r;
		r = query_int(s, "PRAGMA user_version", &version);
		if (r >= 0 && version > SCHEMA_VERSION)
			r = fail(s, -EPROTONOSUPPORT,
				"store schema version %" PRId64 " is newer than this build's %d",
				version, SCHEMA_VERSION);
		if (r >= 0 && version == SCHEMA_VERSION)
			return exec(s, "COMMIT", "ending a migration");
		if (r >= 0 && version == 0) {
			snprintf(sql, sizeof(sql), "PRAGMA application_id = %d",
				KURA_APPLICATION_ID);
			r = exec(s, sql, "setting the application id");
		}
		if (r >= 0)
			r = exec(s, migrations[version], "migrating the schema");
		if (r >= 0) {
			snprintf(sql, sizeof(sql), "PRAGMA user_version = %" PRId64, version + 1);
			r = exec(s, sql, "setting the schema version");
		}
		if (r >= 0)
			r = exec(s, "COMMIT", "committing a migration");
		if (r < 0) {
			rollback(s);
			return r;
		}
	}
}

static int prepare_statements(struct sqlite_store *s)
{
	for (size_t i = 0; i < ST_COUNT; i++) {
		int rc = sqlite3_prepare_v3(s->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
			&s->st[i], NULL);

		/* A plain SQL error here is a missing table or column: not our schema. */
		if (rc == SQLITE_ERROR)
			return fail(s, -EUCLEAN, "not a kura store: %s", sqlite3_errmsg(s->db));
		if (rc != SQLITE_OK)
			return sqlfail(s, rc, "preparing statements");
	}
	return 0;
}

static int fsync_parent(const char *path)
{
	_cleanup_free_ char *copy = strdup(path);
	_cleanup_close_ int fd = -1;
	const char *dir = ".";
	char *slash;

	if (!copy)
		return -ENOMEM;
	slash = strrchr(copy, '/');
	if (slash == copy) {
		dir = "/";
	} else if (slash) {
		*slash = '\0';
		dir = copy;
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0)
		return -errno;
	return 0;
}

/*
 * Refuse a symlink (-ELOOP) or a non-regular file (-EUCLEAN) at path. With create and no file
 * there, make it with mode 0600 first, so that the store, and the -wal and -shm files SQLite
 * gives the same mode, are never readable by others whatever the umask; O_EXCL never truncates
 * a file someone else just made. Without create, an absent file is -ENOENT. 1 when it made the
 * file (which a failed open then removes), else 0.
 */
static int prepare_file(const char *path, bool create)
{
	for (int tries = 0; tries < 2; tries++) {
		struct stat st;
		int fd;

		if (lstat(path, &st) == 0) {
			if (S_ISLNK(st.st_mode))
				return -ELOOP;
			if (!S_ISREG(st.st_mode))
				return -EUCLEAN;
			return 0;
		}
		if (errno != ENOENT)
			return -errno;
		if (!create)
			return -ENOENT;

		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd >= 0) {
			int r;

			close(fd);
			r = fsync_parent(path);
			if (r < 0) {
				(void)unlink(path);
				return r;
			}
			return 1;
		}
		if (errno != EEXIST)
			return -errno;
	}
	return -EBUSY;
}

/*
 * A WAL database on a read-only file system cannot be opened the usual way (SQLite must create
 * its -shm file). If the file system is read-only and no write-ahead log holds unmerged
 * changes, the file is complete and cannot change under us: open it as an immutable URI, so
 * reads still work (a backup snapshot, a read-only bind mount). *ret is NULL when the file
 * system is writable.
 */
static int readonly_uri(const char *path, unsigned flags, char **ret)
{
	_cleanup_free_ char *wal = NULL;
	struct statvfs sv;
	struct stat st;
	char *uri, *p;

	*ret = NULL;
	if ((flags & KURA_STORE_CREATE) || statvfs(path, &sv) < 0 || !(sv.f_flag & ST_RDONLY))
		return 0;
	if (asprintf(&wal, "%s-wal", path) < 0)
		return -ENOMEM;
	if (stat(wal, &st) == 0 && st.st_size > 0)
		return -EROFS; /* reading without the log would show an old state */
	/* "file:" + every byte percent-encoded if it could mean something in a URI. */
	uri = malloc(5 + 3 * strlen(path) + sizeof("?immutable=1"));
	if (!uri)
		return -ENOMEM;
	memcpy(uri, "file:", 5);
	p = uri + 5;
	for (const char *c = path; *c; c++) {
		if ((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') ||
			(*c >= '0' && *c <= '9') || strchr("/._-~", *c)) {
			*p++ = *c;
		} else {
			static const char hex[] = "0123456789ABCDEF";

			*p++ = '%';
			*p++ = hex[(unsigned char)*c >> 4];
			*p++ = hex[(unsigned char)*c & 15];
		}
	}
	memcpy(p, "?immutable=1", sizeof("?immutable=1"));
	*ret = uri;
	return 0;
}

/* The file was there when prepare_file looked: an ENOENT from SQLite after that is about its
 * write-ahead log or shared memory failing to open, never "no store here". */
static int not_absent(int r)
{
	return r == -ENOENT ? -EIO : r;
}

static int open_sqlite(const char *path, unsigned flags, struct kura_store **ret)
{
	_cleanup_(sqlite_closep) struct sqlite_store *s = NULL;
	_cleanup_free_ char *uri = NULL;
	int oflags = SQLITE_OPEN_READWRITE;
	int rc, r;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->base.ops = &sqlite_ops;

	if (flags & KURA_STORE_CREATE)
		oflags |= SQLITE_OPEN_CREATE;
#ifdef SQLITE_OPEN_NOFOLLOW
	oflags |= SQLITE_OPEN_NOFOLLOW;
#endif
	r = readonly_uri(path, flags, &uri);
	if (r < 0)
		return r;
	if (uri) {
		s->readonly = true;
		oflags = SQLITE_OPEN_READONLY | SQLITE_OPEN_URI;
	}
	rc = sqlite3_open_v2(uri ? uri : path, &s->db, oflags, NULL);
	if (rc != SQLITE_OK)
		return s->db ? not_absent(sqlfail(s, rc, "opening the store")) : -ENOMEM;
	/* SQLite falls back to read-only when a read-write open fails (an I/O error, not a
	 * permission: the file is ours): every write would then fail with a misleading "read-only
	 * database". */
	if (!s->readonly && sqlite3_db_readonly(s->db, "main") == 1)
		return fail(s, -EIO, "the store could not be opened for writing");

	r = configure(s, flags);
	if (r == 0)
		r = migrate(s);
	if (r == 0)
		r = prepare_statements(s);
	if (r < 0)
		return not_absent(r);

	*ret = &TAKE_PTR(s)->base;
	return 0;
}

/* A store this open created and could not finish goes again, with what SQLite made beside it. */
static void remove_made(const char *path)
{
	char side[4096];

	(void)unlink(path);
	snprintf(side, sizeof(side), "%s-wal", path);
	(void)unlink(side);
	snprintf(side, sizeof(side), "%s-shm", path);
	(void)unlink(side);
}

int kura_store_open_sqlite(const char *path, unsigned flags, struct kura_store **ret)
{
	int made, r;

	if (!path || !*path || !ret || (flags & ~(unsigned)(KURA_STORE_CREATE | KURA_STORE_NOSYNC)))
		return -EINVAL;
	made = prepare_file(path, flags & KURA_STORE_CREATE);
	if (made < 0)
		return made;
	r = open_sqlite(path, flags, ret);
	if (r < 0 && made)
		remove_made(path);
	return r;
}

int kura_store_sqlite_schema_version(void)
{
	return SCHEMA_VERSION;
}

/*
 * A consistent copy of the store at src into a new file dst (0600), by SQLite's online backup:
 * every page is copied within one read transaction, so the copy is the store as of one commit
 * even while another process (kurad) writes (WAL mode: the writer is not blocked, and a step
 * that loses to one is retried). *ret_rev: the copy's store revision.
 */
int kura_store_sqlite_backup(const char *src, const char *dst, int64_t *ret_rev)
{
	sqlite3 *from = NULL, *to = NULL;
	sqlite3_backup *b;
	sqlite3_stmt *st = NULL;
	_cleanup_close_ int fd = -1;
	int rc, r = 0;

	fd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	rc = sqlite3_open_v2(src, &from, SQLITE_OPEN_READONLY, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_open_v2(dst, &to, SQLITE_OPEN_READWRITE, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_busy_timeout(from, BUSY_TIMEOUT_MS);
		b = sqlite3_backup_init(to, "main", from, "main");
		if (!b)
			rc = sqlite3_errcode(to);
		else {
			/* -1: all pages in one step, one read transaction: one snapshot. */
			for (int i = 0; i < 100; i++) {
				rc = sqlite3_backup_step(b, -1);
				if (rc != SQLITE_BUSY && rc != SQLITE_LOCKED)
					break;
				sqlite3_sleep(50);
			}
			if (rc == SQLITE_DONE)
				rc = sqlite3_backup_finish(b);
			else
				(void)sqlite3_backup_finish(b);
		}
	}
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(to, "SELECT value FROM meta WHERE name = 'revision'", -1,
			&st, NULL);
	if (rc == SQLITE_OK) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			*ret_rev = sqlite3_column_int64(st, 0);
			rc = SQLITE_OK;
		} else {
			r = -EUCLEAN; /* no revision: not a kura store */
		}
	}
	sqlite3_finalize(st);
	/* The copy as one file, in the rollback journal mode: nothing beside it. */
	if (rc == SQLITE_OK && r == 0)
		rc = sqlite3_exec(to, "PRAGMA journal_mode = DELETE", NULL, NULL, NULL);
	if (r == 0 && rc != SQLITE_OK)
		r = rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT ? -EUCLEAN :
			rc == SQLITE_FULL                       ? -ENOSPC :
			rc == SQLITE_CANTOPEN                   ? -ENOENT :
								  -EIO;
	sqlite3_close(from);
	sqlite3_close(to);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (r < 0)
		unlink(dst);
	return r;
}

/* Unit tests of the store: transaction building and the SQLite backend on real database files in
 * a temporary directory, with two processes, a 100k-op transaction and a full disk. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

#include "macro.h"
#include "store.h"
#include "tap.h"

static char tmpdir[] = "/tmp/kura-test-store-XXXXXX";

static const char *tpath(char *buf, const char *name)
{
	snprintf(buf, PATH_MAX, "%s/%s", tmpdir, name);
	return buf;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void rm_rf(const char *path)
{
	struct stat st;
	DIR *d;
	struct dirent *e;

	if (lstat(path, &st) < 0)
		return;
	if (!S_ISDIR(st.st_mode)) {
		unlink(path);
		return;
	}
	d = opendir(path);
	if (d) {
		while ((e = readdir(d))) {
			char sub[PATH_MAX];

			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
			rm_rf(sub);
		}
		closedir(d);
	}
	rmdir(path);
}

static struct kura_store *open_store(const char *name, unsigned flags)
{
	char p[PATH_MAX];
	struct kura_store *s = NULL;
	int r = kura_store_open_sqlite(tpath(p, name), flags, &s);

	if (r < 0)
		tap_diag("open %s: %s", name, strerror(-r));
	return s;
}

static int put1(struct kura_store *s, const char *key, const char *value, int64_t expect,
	int64_t *ret_rev)
{
	struct kura_txn t = { 0 };
	int r = kura_txn_put(&t, key, value, strlen(value), expect);

	if (r == 0)
		r = kura_store_commit(s, &t, ret_rev);
	kura_txn_done(&t);
	return r;
}

static int del1(struct kura_store *s, const char *key, int64_t expect, int64_t *ret_rev)
{
	struct kura_txn t = { 0 };
	int r = kura_txn_delete(&t, key, expect);

	if (r == 0)
		r = kura_store_commit(s, &t, ret_rev);
	kura_txn_done(&t);
	return r;
}

static bool value_is(struct kura_store *s, const char *key, const void *value, size_t len)
{
	struct kura_kv kv = { 0 };
	bool ok;

	if (kura_store_get(s, key, &kv) < 0)
		return false;
	ok = kv.len == len && (len == 0 || memcmp(kv.value, value, len) == 0);
	kura_kv_done(&kv);
	return ok;
}

static int64_t revision(struct kura_store *s)
{
	int64_t rev = -1;

	if (kura_store_revision(s, &rev) < 0)
		return -1;
	return rev;
}

/* Run one SQL statement on a file with SQLite directly, as a foreign tool would. */
static int raw_sql(const char *name, const char *sql)
{
	char p[PATH_MAX];
	sqlite3 *db = NULL;
	int rc = sqlite3_open(tpath(p, name), &db);

	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		tap_diag("raw sql on %s: %s", name, sqlite3_errmsg(db));
	sqlite3_close(db);
	return rc;
}

static int raw_text(const char *name, const char *sql, char *buf, size_t size)
{
	char p[PATH_MAX];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_open(tpath(p, name), &db);

	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		snprintf(buf, size, "%s", (const char *)sqlite3_column_text(st, 0));
	else
		rc = SQLITE_ERROR;
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc;
}

static int write_file(const char *name, const void *data, size_t len)
{
	char p[PATH_MAX];
	_cleanup_close_ int fd = open(tpath(p, name), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
		0600);

	if (fd < 0 || write(fd, data, len) != (ssize_t)len)
		return -errno;
	return 0;
}

static void test_txn_builder(void)
{
	struct kura_txn t = { 0 };
	char buf[8] = "abcdefg";
	int status = -1;
	bool ok = true;
	pid_t pid;

	tap_is(kura_txn_put(NULL, "k", "v", 1, KURA_REV_ANY), -EINVAL, "txn: NULL txn refused");
	tap_is(kura_txn_put(&t, NULL, "v", 1, KURA_REV_ANY), -EINVAL, "txn: NULL key refused");
	tap_is(kura_txn_put(&t, "", "v", 1, KURA_REV_ANY), -EINVAL, "txn: empty key refused");
	tap_is(kura_txn_put(&t, "k", NULL, 1, KURA_REV_ANY), -EINVAL, "txn: NULL value refused");
	tap_is(kura_txn_put(&t, "k", "v", 1, -2), -EINVAL, "txn: bad expected revision refused");
	tap_ok(t.n == 0 && !t.ops, "txn: refused ops leave it empty");

	for (int i = 0; i < 20 && ok; i++) {
		char key[16];

		snprintf(key, sizeof(key), "k%d", i);
		ok = (i % 2 ? kura_txn_delete(&t, key, i) :
			      kura_txn_put(&t, key, buf, sizeof(buf), KURA_REV_ABSENT)) == 0;
	}
	tap_ok(ok && t.n == 20 && t.cap >= 20, "txn: 20 ops appended (cap %zu)", t.cap);
	buf[0] = 'X';
	tap_ok(t.ops[0].kind == KURA_OP_PUT && memcmp(t.ops[0].value, "abcdefg", 8) == 0 &&
			t.ops[0].expect_rev == KURA_REV_ABSENT,
		"txn: put copied its value");
	tap_ok(t.ops[19].kind == KURA_OP_DELETE && !strcmp(t.ops[19].key, "k19") &&
			!t.ops[19].value && t.ops[19].len == 0 && t.ops[19].expect_rev == 19,
		"txn: delete recorded");
	tap_is(kura_txn_put(&t, "empty", NULL, 0, KURA_REV_ANY), 0, "txn: empty value accepted");
	tap_ok(t.ops[20].value && t.ops[20].len == 0, "txn: empty value is not NULL");

	kura_txn_done(&t);
	tap_ok(!t.ops && t.n == 0 && t.cap == 0, "txn: done zeroes it");
	/* In a child: a destructor that dereferences NULL or frees twice kills it, not the test. */
	pid = fork();
	if (pid == 0) {
		kura_txn_done(&t);
		kura_txn_done(NULL);
		kura_kv_done(NULL);
		kura_kv_list_done(NULL);
		kura_change_list_done(NULL);
		kura_store_close(NULL);
		_exit(0);
	}
	if (pid > 0 && waitpid(pid, &status, 0) != pid)
		status = -1;
	tap_ok(pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
		"done and close accept NULL and repeated calls (a child making them exits 0, "
		"status %#x)",
		(unsigned)status);
}

static void test_open(void)
{
	char p[PATH_MAX], q[PATH_MAX], mode[16] = "";
	struct kura_store *s = NULL;
	struct stat st;
	mode_t old;
	int r;

	r = kura_store_open_sqlite(tpath(p, "absent.db"), 0, &s);
	tap_is(r, -ENOENT, "open: absent file without CREATE is -ENOENT");
	tap_ok(!s && access(p, F_OK) < 0, "open: nothing returned, nothing created");

	tap_is(kura_store_open_sqlite(NULL, KURA_STORE_CREATE, &s), -EINVAL, "open: NULL path");
	tap_is(kura_store_open_sqlite(p, 1u << 7, &s), -EINVAL, "open: unknown flag");

	old = umask(0);
	r = kura_store_open_sqlite(tpath(p, "open.db"), KURA_STORE_CREATE, &s);
	umask(old);
	tap_is(r, 0, "open: create");
	if (!s)
		return;
	tap_ok(!strcmp(s->ops->name, "sqlite"), "open: backend is sqlite");
	tap_ok(kura_store_sqlite_schema_version() >= 1, "schema version %d",
		kura_store_sqlite_schema_version());
	tap_is(revision(s), 0, "open: new store at revision 0");
	tap_is(put1(s, "a", "1", KURA_REV_ABSENT, NULL), 0, "open: put");
	r = stat(p, &st);
	tap_ok(r == 0 && (st.st_mode & 07777) == 0600,
		"open: store file is mode 0600 even with umask 0 (%o)", st.st_mode & 07777);
	r = stat(tpath(q, "open.db-wal"), &st);
	tap_ok(r == 0 && (st.st_mode & 07777) == 0600, "open: WAL file is mode 0600 (%o)",
		st.st_mode & 07777);
	tap_ok(raw_text("open.db", "PRAGMA journal_mode", mode, sizeof(mode)) == SQLITE_OK &&
			!strcmp(mode, "wal"),
		"open: journal mode is WAL (%s)", mode);
	kura_store_close(s);
	s = NULL;

	tap_is(kura_store_open_sqlite(p, 0, &s), 0, "open: reopen without CREATE");
	if (!s)
		return;
	tap_ok(value_is(s, "a", "1", 1) && revision(s) == 1, "open: data persisted across reopen");
	kura_store_close(s);
	s = NULL;
	tap_is(kura_store_open_sqlite(p, KURA_STORE_CREATE, &s), 0, "open: CREATE on existing");
	tap_ok(s && value_is(s, "a", "1", 1), "open: CREATE did not truncate");
	kura_store_close(s);
	s = NULL;

	if (symlink("open.db", tpath(q, "link.db")) == 0) {
		tap_is(kura_store_open_sqlite(q, 0, &s), -ELOOP, "open: symlink refused");
		tap_is(kura_store_open_sqlite(q, KURA_STORE_CREATE, &s), -ELOOP,
			"open: symlink refused with CREATE");
	} else {
		tap_skip("symlink: %s", strerror(errno));
		tap_skip("symlink: %s", strerror(errno));
	}
	if (symlink("target.db", tpath(q, "dangling.db")) == 0) {
		r = kura_store_open_sqlite(q, KURA_STORE_CREATE, &s);
		tap_ok(r == -ELOOP && access(tpath(p, "target.db"), F_OK) < 0,
			"open: dangling symlink refused, target not created (%d)", r);
	} else {
		tap_skip("symlink: %s", strerror(errno));
	}
	mkdir(tpath(p, "dir.db"), 0700);
	tap_ok(kura_store_open_sqlite(p, KURA_STORE_CREATE, &s) < 0, "open: directory refused");
	tap_ok(!s, "open: nothing returned on failure");
}

static void test_get_put(void)
{
	struct kura_store *s = open_store("getput.db", KURA_STORE_CREATE | KURA_STORE_NOSYNC);
	struct kura_txn t = { 0 };
	struct kura_kv kv = { 0 };
	uint8_t bin[256];
	_cleanup_free_ uint8_t *big = NULL;
	size_t big_len = 4u << 20;
	int64_t rev = -1, rev2 = -1;
	int r;

	if (!tap_ok(s, "getput: open"))
		return;
	tap_is(kura_store_get(s, "nope", &kv), -ENOENT, "get: absent key is -ENOENT");
	tap_ok(!kv.key && !kv.value, "get: result untouched on failure");
	tap_is(kura_store_get(s, NULL, &kv), -EINVAL, "get: NULL key is -EINVAL");

	for (size_t i = 0; i < sizeof(bin); i++)
		bin[i] = (uint8_t)(i * 7);
	bin[10] = bin[11] = 0;
	kura_txn_put(&t, "bin", bin, sizeof(bin), KURA_REV_ABSENT);
	r = kura_store_commit(s, &t, &rev);
	kura_txn_done(&t);
	tap_ok(r == 0 && rev == 1, "put: first commit is revision 1 (%d, %" PRId64 ")", r, rev);
	r = kura_store_get(s, "bin", &kv);
	tap_ok(r == 0 && kv.len == sizeof(bin) && !memcmp(kv.value, bin, sizeof(bin)) &&
			!strcmp(kv.key, "bin"),
		"get: binary value with NUL bytes round-trips");
	tap_ok(kv.create_rev == 1 && kv.mod_rev == 1, "get: create_rev = mod_rev = 1");
	kura_kv_done(&kv);
	tap_ok(!kv.key && !kv.value && kv.len == 0, "kv_done zeroes");

	tap_is(put1(s, "bin", "new", 1, &rev), 0, "put: update with correct mod_rev");
	tap_is(rev, 2, "put: revision advanced by exactly 1");
	kura_store_get(s, "bin", &kv);
	tap_ok(kv.create_rev == 1 && kv.mod_rev == 2 && kv.len == 3,
		"put: update keeps create_rev 1, sets mod_rev 2");
	kura_kv_done(&kv);

	tap_is(put1(s, "other", "x", KURA_REV_ANY, &rev), 0, "put: another key");
	tap_is(rev, 3, "put: revision 3");
	kura_store_get(s, "bin", &kv);
	tap_ok(kv.mod_rev == 2, "put: other keys' mod_rev unchanged");
	kura_kv_done(&kv);

	kura_txn_put(&t, "empty", NULL, 0, KURA_REV_ANY);
	kura_txn_put(&t, "m1", "1", 1, KURA_REV_ANY);
	kura_txn_put(&t, "m2", "2", 1, KURA_REV_ANY);
	r = kura_store_commit(s, &t, &rev);
	kura_txn_done(&t);
	tap_ok(r == 0 && rev == 4, "put: a 3-op transaction is one revision (%" PRId64 ")", rev);
	r = kura_store_get(s, "empty", &kv);
	tap_ok(r == 0 && kv.len == 0 && kv.value && kv.mod_rev == 4 && kv.create_rev == 4,
		"get: empty value round-trips");
	kura_kv_done(&kv);

	r = kura_store_commit(s, &t, &rev);
	tap_ok(r == 0 && rev == 4 && revision(s) == 4, "commit: empty txn reports revision 4");
	tap_is(del1(s, "never-was", KURA_REV_ANY, &rev), 0, "delete: absent key is not an error");
	tap_ok(rev == 4 && revision(s) == 4, "delete: of nothing does not advance the revision");
	tap_is(kura_store_commit(s, NULL, &rev), -EINVAL, "commit: NULL txn is -EINVAL");

	big = malloc(big_len);
	if (big) {
		for (size_t i = 0; i < big_len; i++)
			big[i] = (uint8_t)(i * 2654435761u >> 13);
		kura_txn_put(&t, "big", big, big_len, KURA_REV_ABSENT);
		r = kura_store_commit(s, &t, &rev2);
		kura_txn_done(&t);
		tap_ok(r == 0 && rev2 == 5, "put: 4 MiB value");
		tap_ok(value_is(s, "big", big, big_len), "get: 4 MiB value round-trips");
	}
	kura_store_close(s);
}

static void test_cas(void)
{
	struct kura_store *s = open_store("cas.db", KURA_STORE_CREATE | KURA_STORE_NOSYNC);
	struct kura_txn t = { 0 };
	struct kura_kv kv = { 0 };
	int64_t rev = -1, r1 = -1;
	int r;

	if (!tap_ok(s, "cas: open"))
		return;
	put1(s, "k", "v1", KURA_REV_ABSENT, &r1);

	kura_txn_put(&t, "fresh", "f", 1, KURA_REV_ANY);
	kura_txn_delete(&t, "other", KURA_REV_ANY);
	kura_txn_put(&t, "k", "v2", 2, KURA_REV_ABSENT);
	r = kura_store_commit(s, &t, &rev);
	kura_txn_done(&t);
	tap_is(r, -ESTALE, "cas: ABSENT on an existing key is -ESTALE");
	tap_ok(strstr(kura_store_errmsg(s), "k") != NULL, "cas: errmsg names the key: %s",
		kura_store_errmsg(s));
	tap_ok(rev == -1, "cas: ret_rev untouched on failure");
	tap_is(kura_store_get(s, "fresh", &kv), -ENOENT, "cas: other ops were not applied");
	tap_ok(value_is(s, "k", "v1", 2) && revision(s) == r1, "cas: key and revision unchanged");

	tap_is(put1(s, "k", "v2", r1 + 5, NULL), -ESTALE, "cas: wrong mod_rev is -ESTALE");
	tap_is(put1(s, "nothere", "v", 1, NULL), -ESTALE, "cas: mod_rev on absent key is -ESTALE");
	tap_is(put1(s, "k", "v2", r1, &rev), 0, "cas: correct mod_rev succeeds");
	tap_is(put1(s, "k", "v3", r1, NULL), -ESTALE, "cas: the old mod_rev is now stale");
	tap_ok(value_is(s, "k", "v2", 2), "cas: value is the successful write's");

	tap_is(del1(s, "k", r1, NULL), -ESTALE, "cas: delete with stale mod_rev is -ESTALE");
	tap_ok(value_is(s, "k", "v2", 2), "cas: key survived the failed delete");
	tap_is(del1(s, "k", rev, NULL), 0, "cas: delete with correct mod_rev");
	tap_is(kura_store_get(s, "k", &kv), -ENOENT, "cas: deleted key is gone");
	tap_is(put1(s, "k", "again", KURA_REV_ABSENT, &rev), 0, "cas: ABSENT after delete");
	kura_store_get(s, "k", &kv);
	tap_ok(kv.create_rev == rev && kv.mod_rev == rev, "cas: recreated key has new create_rev");
	kura_kv_done(&kv);
	kura_store_close(s);
}

static bool list_is(const struct kura_kv_list *l, const char *const *want, size_t n)
{
	if (l->n != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (strcmp(l->items[i].key, want[i]) != 0)
			return false;
	return true;
}

static void list_diag(const struct kura_kv_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		tap_diag("  [%zu] %s", i, l->items[i].key);
}

#define RANGE_IS(s, prefix, after, limit, ...)                                                     \
	({                                                                                         \
		static const char *const _want[] = { __VA_ARGS__ };                                \
		struct kura_kv_list _l = { 0 };                                                    \
		int _r = kura_store_range(s, prefix, after, limit, &_l);                           \
		bool _ok = _r == 0 && list_is(&_l, _want, ELEMENTSOF(_want));                      \
		if (!tap_ok(_ok, "range %s after %s limit %d", #prefix, #after, limit))            \
			list_diag(&_l);                                                            \
		kura_kv_list_done(&_l);                                                            \
	})

static void test_range(void)
{
	static const char *const keys[] = { "a", "a%", "a%b", "aXb", "a_b", "ab", "a\xff",
		"a\xff\xff", "b", "db/", "db/x", "db/y", "db2", "\xff", "\xff\xff" };
	struct kura_store *s = open_store("range.db", KURA_STORE_CREATE | KURA_STORE_NOSYNC);
	struct kura_txn t = { 0 };
	struct kura_kv_list l = { 0 };
	bool ok = true;
	int r;

	if (!tap_ok(s, "range: open"))
		return;
	for (size_t i = 0; i < ELEMENTSOF(keys); i++)
		kura_txn_put(&t, keys[i], keys[i], strlen(keys[i]), KURA_REV_ABSENT);
	for (int i = 0; i < 25; i++) {
		char key[16];

		snprintf(key, sizeof(key), "p/%03d", i);
		kura_txn_put(&t, key, key, strlen(key), KURA_REV_ABSENT);
	}
	r = kura_store_commit(s, &t, NULL);
	kura_txn_done(&t);
	tap_is(r, 0, "range: fill");

	RANGE_IS(s, "a_", NULL, 0, "a_b");
	RANGE_IS(s, "a%", NULL, 0, "a%", "a%b");
	RANGE_IS(s, "a%b", NULL, 0, "a%b");
	RANGE_IS(s, "aX", NULL, 0, "aXb");
	RANGE_IS(s, "db/", NULL, 0, "db/", "db/x", "db/y");
	RANGE_IS(s, "db", NULL, 0, "db/", "db/x", "db/y", "db2");
	RANGE_IS(s, "a\xff", NULL, 0, "a\xff", "a\xff\xff");
	RANGE_IS(s, "\xff", NULL, 0, "\xff", "\xff\xff");
	RANGE_IS(s, "\xff\xff", NULL, 0, "\xff\xff");
	RANGE_IS(s, "c", NULL, 0);
	RANGE_IS(s, "db/x", NULL, 0, "db/x");
	RANGE_IS(s, "db/", "db/", 0, "db/x", "db/y");
	RANGE_IS(s, "db/", "db/x", 0, "db/y");
	RANGE_IS(s, "db/", "a", 0, "db/", "db/x", "db/y");
	RANGE_IS(s, "db/", "db/z", 0);
	RANGE_IS(s, "db/", "zzz", 0);
	RANGE_IS(s, "a", "a\xff", 0, "a\xff\xff");
	RANGE_IS(s, "", "db2", 3, "p/000", "p/001", "p/002");

	r = kura_store_range(s, "", NULL, 0, &l);
	for (size_t i = 1; r == 0 && i < l.n; i++)
		ok = ok && strcmp(l.items[i - 1].key, l.items[i].key) < 0;
	tap_ok(r == 0 && l.n == ELEMENTSOF(keys) + 25 && ok, "range: all keys, bytewise order");
	kura_kv_list_done(&l);
	r = kura_store_range(s, NULL, NULL, 0, &l);
	tap_ok(r == 0 && l.n == ELEMENTSOF(keys) + 25, "range: NULL prefix is all keys");
	kura_kv_list_done(&l);
	r = kura_store_range(s, "a%", NULL, 0, &l);
	tap_ok(r == 0 && l.n == 2 && l.items[1].len == 3 && !memcmp(l.items[1].value, "a%b", 3) &&
			l.items[1].mod_rev == 1 && l.items[1].create_rev == 1,
		"range: values and revisions returned");
	kura_kv_list_done(&l);

	{
		char after[16] = "";
		size_t total = 0, pages = 0;

		ok = true;
		for (;;) {
			r = kura_store_range(s, "p/", pages ? after : NULL, 10, &l);
			if (r < 0 || l.n == 0)
				break;
			for (size_t i = 0; i < l.n; i++) {
				char want[16];

				snprintf(want, sizeof(want), "p/%03zu", total + i);
				ok = ok && !strcmp(l.items[i].key, want);
			}
			total += l.n;
			pages++;
			snprintf(after, sizeof(after), "%s", l.items[l.n - 1].key);
			kura_kv_list_done(&l);
		}
		kura_kv_list_done(&l);
		tap_ok(r == 0 && ok && total == 25 && pages == 3,
			"range: paging by 10 with after: %zu keys in %zu pages", total, pages);
	}
	kura_store_close(s);
}

struct want_change {
	int64_t rev;
	enum kura_change_kind kind;
	const char *key;
};

static bool changes_are(const struct kura_change_list *l, const struct want_change *w, size_t n)
{
	bool ok = l->n == n;

	for (size_t i = 0; ok && i < n; i++)
		ok = l->items[i].rev == w[i].rev && l->items[i].kind == w[i].kind &&
			!strcmp(l->items[i].key, w[i].key);
	if (!ok)
		for (size_t i = 0; i < l->n; i++)
			tap_diag("  rev %" PRId64 " %s %s", l->items[i].rev,
				l->items[i].kind == KURA_CHANGE_PUT ? "put" : "delete",
				l->items[i].key);
	return ok;
}

static void test_changes(void)
{
	static const struct want_change all[] = {
		{ 1, KURA_CHANGE_PUT, "a" },
		{ 1, KURA_CHANGE_PUT, "b" },
		{ 2, KURA_CHANGE_PUT, "z" },
		{ 2, KURA_CHANGE_DELETE, "a" },
		{ 2, KURA_CHANGE_PUT, "y" },
		{ 2, KURA_CHANGE_PUT, "x" },
		{ 3, KURA_CHANGE_DELETE, "b" },
	};
	struct kura_store *s = open_store("changes.db", KURA_STORE_CREATE | KURA_STORE_NOSYNC);
	struct kura_change_list l = { 0 };
	struct kura_txn t = { 0 };
	int r;

	if (!tap_ok(s, "changes: open"))
		return;
	r = kura_store_changes(s, 0, 0, &l);
	tap_ok(r == 0 && l.n == 0, "changes: none in a new store");
	kura_change_list_done(&l);

	kura_txn_put(&t, "a", "1", 1, KURA_REV_ANY);
	kura_txn_put(&t, "b", "1", 1, KURA_REV_ANY);
	kura_store_commit(s, &t, NULL);
	kura_txn_done(&t);
	kura_txn_put(&t, "z", "1", 1, KURA_REV_ANY);
	kura_txn_delete(&t, "a", 1);
	kura_txn_delete(&t, "absent", KURA_REV_ANY);
	kura_txn_put(&t, "y", "1", 1, KURA_REV_ANY);
	kura_txn_put(&t, "x", "1", 1, KURA_REV_ANY);
	kura_store_commit(s, &t, NULL);
	kura_txn_done(&t);
	del1(s, "b", KURA_REV_ANY, NULL);
	del1(s, "absent", KURA_REV_ANY, NULL);
	tap_is(revision(s), 3, "changes: three revisions");

	r = kura_store_changes(s, 0, 0, &l);
	tap_ok(r == 0 && changes_are(&l, all, 7),
		"changes: from 0, in revision then op order, deletes included");
	kura_change_list_done(&l);
	r = kura_store_changes(s, 1, 0, &l);
	tap_ok(r == 0 && changes_are(&l, all + 2, 5), "changes: since 1");
	kura_change_list_done(&l);
	r = kura_store_changes(s, 3, 0, &l);
	tap_ok(r == 0 && l.n == 0, "changes: since the current revision: none");
	kura_change_list_done(&l);
	r = kura_store_changes(s, 0, 2, &l);
	tap_ok(r == 0 && changes_are(&l, all, 2), "changes: limit 2 ends at a revision boundary");
	kura_change_list_done(&l);
	r = kura_store_changes(s, 0, 4, &l);
	tap_ok(r == 0 && changes_are(&l, all, 2),
		"changes: limit 4 does not split revision 2 (paging would lose its tail)");
	kura_change_list_done(&l);
	r = kura_store_changes(s, 1, 2, &l);
	tap_ok(r == 0 && changes_are(&l, all + 2, 4),
		"changes: a first revision larger than the limit comes whole");
	kura_change_list_done(&l);
	r = kura_store_changes(s, 0, 1, &l);
	tap_ok(r == 0 && changes_are(&l, all, 2), "changes: limit 1 gives revision 1 whole");
	kura_change_list_done(&l);
	tap_is(kura_store_changes(s, -1, 0, &l), -EINVAL, "changes: negative since is -EINVAL");

	tap_is(raw_sql("changes.db", "UPDATE meta SET value = 2 WHERE name = 'compacted'"),
		SQLITE_OK, "changes: mark history up to 2 compacted");
	tap_is(kura_store_changes(s, 1, 0, &l), -ERANGE, "changes: since before compaction");
	tap_ok(l.n == 0 && !l.items, "changes: result untouched on failure");
	r = kura_store_changes(s, 2, 0, &l);
	tap_ok(r == 0 && changes_are(&l, all + 6, 1), "changes: since the compaction mark works");
	kura_change_list_done(&l);
	kura_store_close(s);
}

static void test_bad_files(void)
{
	char p[PATH_MAX], buf[8192], mode[16] = "", sql[128];
	struct kura_store *s = NULL;
	struct stat st;
	size_t page = 4096;
	int r;

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (char)(i * 31 + 7);
	write_file("garbage.db", buf, sizeof(buf));
	tap_is(kura_store_open_sqlite(tpath(p, "garbage.db"), 0, &s), -EUCLEAN,
		"bad: a file that is not a database is -EUCLEAN");
	tap_is(kura_store_open_sqlite(p, KURA_STORE_CREATE, &s), -EUCLEAN,
		"bad: ... also with CREATE");
	tap_ok(stat(p, &st) == 0 && st.st_size == (off_t)sizeof(buf),
		"bad: garbage left untouched");
	write_file("short.db", "hello", 5);
	tap_is(kura_store_open_sqlite(tpath(p, "short.db"), 0, &s), -EUCLEAN,
		"bad: a short non-database file is -EUCLEAN");

	raw_sql("foreign.db",
		"PRAGMA application_id = 42; PRAGMA user_version = 1;"
		"CREATE TABLE kv (key TEXT PRIMARY KEY, value BLOB);");
	tap_is(kura_store_open_sqlite(tpath(p, "foreign.db"), KURA_STORE_CREATE, &s), -EUCLEAN,
		"bad: a foreign application_id is -EUCLEAN");
	raw_sql("tables.db", "CREATE TABLE accounts (id INTEGER PRIMARY KEY, name TEXT);");
	tap_is(kura_store_open_sqlite(tpath(p, "tables.db"), KURA_STORE_CREATE, &s), -EUCLEAN,
		"bad: unknown tables at user_version 0 are -EUCLEAN");
	tap_ok(raw_text("tables.db", "PRAGMA journal_mode", mode, sizeof(mode)) == SQLITE_OK &&
			!strcmp(mode, "delete"),
		"bad: the foreign database was not switched to WAL (%s)", mode);
	snprintf(sql, sizeof(sql), "PRAGMA application_id = %d; PRAGMA user_version = 1;",
		0x6b757261);
	raw_sql("hollow.db", sql);
	tap_is(kura_store_open_sqlite(tpath(p, "hollow.db"), 0, &s), -EUCLEAN,
		"bad: kura's id but no tables is -EUCLEAN");

	write_file("empty.db", "", 0);
	tap_is(kura_store_open_sqlite(tpath(p, "empty.db"), 0, &s), -EUCLEAN,
		"bad: an empty file is not initialised without CREATE");
	tap_is(kura_store_open_sqlite(p, KURA_STORE_CREATE, &s), 0,
		"bad: an empty file is initialised with CREATE");
	kura_store_close(s);
	s = NULL;

	s = open_store("newer.db", KURA_STORE_CREATE);
	kura_store_close(s);
	s = NULL;
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d",
		kura_store_sqlite_schema_version() + 1);
	raw_sql("newer.db", sql);
	tap_is(kura_store_open_sqlite(tpath(p, "newer.db"), 0, &s), -EPROTONOSUPPORT,
		"bad: a newer schema version is -EPROTONOSUPPORT");

	/* Corrupt the first page of the kv table (page 2) of a checkpointed store. */
	s = open_store("corrupt.db", KURA_STORE_CREATE);
	for (int i = 0; s && i < 50; i++) {
		char key[16];

		snprintf(key, sizeof(key), "key%02d", i);
		put1(s, key, "value", KURA_REV_ANY, NULL);
	}
	kura_store_close(s);
	s = NULL;
	{
		_cleanup_close_ int fd = open(tpath(p, "corrupt.db"), O_RDWR | O_CLOEXEC);
		unsigned char hdr[18];

		if (fd >= 0 && pread(fd, hdr, sizeof(hdr), 0) == sizeof(hdr))
			page = hdr[16] << 8 | hdr[17];
		if (page == 1)
			page = 65536;
		r = fd >= 0 && page <= sizeof(buf) && pwrite(fd, buf, page, page) == (ssize_t)page;
		tap_ok(r, "bad: overwrote page 2 (page size %zu)", page);
	}
	r = kura_store_open_sqlite(p, 0, &s);
	if (r == 0) {
		struct kura_kv_list l = { 0 };

		r = kura_store_range(s, "", NULL, 0, &l);
		tap_diag("corrupt: range said: %s", kura_store_errmsg(s));
		kura_kv_list_done(&l);
		kura_store_close(s);
		s = NULL;
	}
	tap_is(r, -EUCLEAN, "bad: a corrupt store is -EUCLEAN");
}

/* Whether the file holds the marker anywhere, or -errno. */
static int file_contains(const char *name, const char *marker)
{
	char p[PATH_MAX];
	_cleanup_free_ char *data = NULL;
	_cleanup_close_ int fd = open(tpath(p, name), O_RDONLY | O_CLOEXEC);
	size_t m = strlen(marker);
	struct stat st;
	ssize_t n;

	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	data = malloc(st.st_size + 1);
	if (!data)
		return -ENOMEM;
	n = pread(fd, data, st.st_size, 0);
	if (n < 0)
		return -errno;
	return memmem(data, n, marker, m) != NULL;
}

static void test_secure_delete(void)
{
	static const char marker[] = "DOOMED-CIPHERTEXT-";
	char value[10000];
	struct kura_store *s = open_store("wipe.db", KURA_STORE_CREATE);

	for (size_t i = 0; i < sizeof(value) - 1; i++)
		value[i] = marker[i % (sizeof(marker) - 1)];
	value[sizeof(value) - 1] = '\0';
	put1(s, "keep", "kept", KURA_REV_ANY, NULL);
	put1(s, "doomed", value, KURA_REV_ANY, NULL);
	put1(s, "small", "DOOMED-SMALL-VALUE", KURA_REV_ANY, NULL);
	kura_store_close(s);
	tap_ok(file_contains("wipe.db", marker) == 1 &&
			file_contains("wipe.db", "DOOMED-SMALL-VALUE") == 1,
		"wipe: the values reached the database file");

	s = open_store("wipe.db", 0);
	tap_is(del1(s, "doomed", KURA_REV_ANY, NULL) || del1(s, "small", KURA_REV_ANY, NULL), 0,
		"wipe: deleted both");
	kura_store_close(s);
	tap_ok(file_contains("wipe.db", marker) == 0 && file_contains("wipe.db-wal", marker) == 0,
		"wipe: no trace of the deleted large value on disk (secure_delete)");
	tap_ok(file_contains("wipe.db", "DOOMED-SMALL-VALUE") == 0,
		"wipe: no trace of the deleted small value on disk");
}

static void test_check_purge(void)
{
	static const char marker[] = "PURGED-CIPHERTEXT";
	struct kura_store *s = open_store("check.db", KURA_STORE_CREATE);
	struct kura_change_list ch = { 0 };
	struct kura_txn t = { 0 };
	struct stat st;
	int64_t rev = 0, r1 = 0;
	char p[PATH_MAX];
	int r;

	if (!tap_ok(s, "check: open"))
		return;
	tap_is(kura_txn_check(&t, "k", KURA_REV_ANY), -EINVAL, "check: needs a compare");
	put1(s, "k", "v", KURA_REV_ABSENT, &r1);
	kura_txn_check(&t, "k", r1);
	kura_txn_check(&t, "absent", KURA_REV_ABSENT);
	kura_txn_put(&t, "x", "1", 1, KURA_REV_ANY);
	r = kura_store_commit(s, &t, &rev);
	kura_txn_done(&t);
	tap_ok(r == 0 && rev == r1 + 1, "check: passing checks let the put through");
	r = kura_store_changes(s, r1, 0, &ch);
	tap_ok(r == 0 && ch.n == 1 && !strcmp(ch.items[0].key, "x"), "check: no change recorded");
	kura_change_list_done(&ch);
	kura_txn_check(&t, "k", r1 + 1);
	kura_txn_put(&t, "y", "1", 1, KURA_REV_ANY);
	r = kura_store_commit(s, &t, NULL);
	kura_txn_done(&t);
	tap_is(r, -ESTALE, "check: a failing check is -ESTALE");
	tap_ok(!value_is(s, "y", "1", 1) && revision(s) == rev, "check: nothing written");

	put1(s, "doomed", marker, KURA_REV_ANY, NULL);
	del1(s, "doomed", KURA_REV_ANY, NULL);
	tap_is(file_contains("check.db-wal", marker), 1, "purge: the log holds the deleted value");
	tap_is(kura_store_purge(s), 0, "purge");
	tap_ok(stat(tpath(p, "check.db-wal"), &st) < 0 || st.st_size == 0, "purge: log truncated");
	tap_ok(file_contains("check.db-wal", marker) == 0 && file_contains("check.db", marker) == 0,
		"purge: no trace of the deleted value");
	tap_ok(value_is(s, "k", "v", 1) && value_is(s, "x", "1", 1), "purge: live data intact");
	kura_store_close(s);
}

/* read_begin..read_end: one snapshot across reads, while another handle commits; no commit
 * inside. */
static void test_read_snapshot(void)
{
	struct kura_store *a = open_store("snap.db", KURA_STORE_CREATE);
	struct kura_store *b = open_store("snap.db", 0);

	if (!tap_ok(a && b, "snapshot: both handles open")) {
		kura_store_close(a);
		kura_store_close(b);
		return;
	}
	put1(a, "k", "old", KURA_REV_ABSENT, NULL);
	tap_is(kura_store_read_begin(a), 0, "snapshot: read_begin");
	tap_ok(value_is(a, "k", "old", 3), "snapshot: reads the value");
	tap_is(put1(b, "k", "new", KURA_REV_ANY, NULL), 0, "snapshot: another handle commits");
	tap_ok(value_is(a, "k", "old", 3) && revision(a) == 1,
		"snapshot: still the old value and revision inside the snapshot");
	tap_is(put1(a, "x", "y", KURA_REV_ABSENT, NULL), -EINVAL, "snapshot: no commit inside");
	tap_is(kura_store_read_begin(a), -EINVAL, "snapshot: no nesting");
	kura_store_read_end(a);
	tap_ok(value_is(a, "k", "new", 3) && revision(a) == 2,
		"snapshot: after read_end, the new value");
	tap_is(put1(a, "x", "y", KURA_REV_ABSENT, NULL), 0, "snapshot: commits work again");
	kura_store_close(a);
	kura_store_close(b);
}

static void test_two_handles(void)
{
	struct kura_store *a = open_store("two.db", KURA_STORE_CREATE);
	struct kura_store *b = open_store("two.db", 0);
	struct kura_kv ka = { 0 }, kb = { 0 };
	int64_t rev = 0;

	if (!tap_ok(a && b, "two handles: both open")) {
		kura_store_close(a);
		kura_store_close(b);
		return;
	}
	put1(a, "shared", "from-a", KURA_REV_ABSENT, NULL);
	kura_store_get(a, "shared", &ka);
	kura_store_get(b, "shared", &kb);
	tap_ok(ka.mod_rev == 1 && kb.mod_rev == 1, "two handles: both read mod_rev 1");
	tap_is(put1(b, "shared", "from-b", kb.mod_rev, &rev), 0, "two handles: b writes first");
	tap_is(put1(a, "shared", "from-a2", ka.mod_rev, NULL), -ESTALE,
		"two handles: a's write on the same read is -ESTALE");
	tap_is(put1(a, "new", "a", KURA_REV_ABSENT, NULL), 0, "two handles: a creates a key");
	tap_is(put1(b, "new", "b", KURA_REV_ABSENT, NULL), -ESTALE,
		"two handles: b's create of the same key is -ESTALE");
	tap_ok(value_is(a, "shared", "from-b", 6) && value_is(b, "new", "a", 1),
		"two handles: each sees the other's writes");
	tap_ok(revision(a) == 3 && revision(b) == 3, "two handles: agree on revision 3");
	kura_kv_done(&ka);
	kura_kv_done(&kb);
	kura_store_close(a);
	kura_store_close(b);
}

/*
 * One side of the two-process test: 500 transactions, each putting its own key and bumping a
 * shared counter with a compare on its mod_rev, retrying on -ESTALE. Returns the retry count, or
 * -errno.
 */
static int contend(struct kura_store *s, const char *who)
{
	int retries = 0, r = 0;

	for (int i = 0; i < 500 && r >= 0; i++) {
		struct kura_kv kv = { 0 };
		struct kura_txn t = { 0 };
		char key[32], count[32];
		int64_t expect = KURA_REV_ABSENT;
		long n = 0;

		r = kura_store_get(s, "counter", &kv);
		if (r == 0) {
			snprintf(count, sizeof(count), "%.*s", (int)kv.len, (const char *)kv.value);
			n = strtol(count, NULL, 10);
			expect = kv.mod_rev;
		} else if (r != -ENOENT) {
			break;
		}
		kura_kv_done(&kv);
		snprintf(key, sizeof(key), "%s/%03d", who, i);
		snprintf(count, sizeof(count), "%ld", n + 1);
		r = kura_txn_put(&t, key, key, strlen(key), KURA_REV_ABSENT);
		if (r == 0)
			r = kura_txn_put(&t, "counter", count, strlen(count), expect);
		if (r == 0)
			r = kura_store_commit(s, &t, NULL);
		kura_txn_done(&t);
		if (r == -ESTALE) {
			retries++;
			i--;
			r = 0;
		}
		/* A gap between transactions, or SQLite's sleeping busy handler lets one process
		 * run all of its transactions while the other waits, and nothing contends. */
		usleep(100 + i % 7 * 50);
	}
	if (r < 0)
		tap_diag("%s: %s (%s)", who, strerror(-r), kura_store_errmsg(s));
	return r < 0 ? r : retries;
}

static void test_fork(void)
{
	struct kura_store *s = open_store("fork.db", KURA_STORE_CREATE);
	struct kura_change_list ch = { 0 };
	struct kura_kv_list l = { 0 };
	int ready[2], status = -1, retries;
	size_t switches = 0;
	double t0;
	bool ok;
	pid_t pid;
	int r;

	/* No connection may cross fork(): SQLite's POSIX locks belong to the process. */
	kura_store_close(s);
	if (!tap_ok(s && pipe(ready) == 0, "fork: store created"))
		return;
	pid = fork();
	if (pid == 0) {
		s = open_store("fork.db", 0);
		close(ready[0]);
		if (!s || write(ready[1], "r", 1) != 1)
			_exit(3);
		close(ready[1]);
		r = contend(s, "child");
		kura_store_close(s);
		_exit(r < 0 ? 3 : 0);
	}
	close(ready[1]);
	if (!tap_ok(pid > 0, "fork: child started")) {
		close(ready[0]);
		return;
	}
	s = open_store("fork.db", 0);
	r = read(ready[0], &(char){ 0 }, 1) == 1 ? 0 : -EPIPE;
	close(ready[0]);
	t0 = now();
	retries = s && r == 0 ? contend(s, "parent") : -EIO;
	tap_ok(retries >= 0, "fork: parent committed 500 transactions (%d retries)", retries);
	waitpid(pid, &status, 0);
	tap_ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		"fork: child committed 500 transactions (status %#x)", status);
	tap_diag("two processes, 1000 synchronous transactions: %.2f s", now() - t0);
	if (!s)
		return;

	tap_is(revision(s), 1000, "fork: revision is exactly 1000");
	tap_ok(value_is(s, "counter", "1000", 4), "fork: the CAS counter reached 1000");
	r = kura_store_range(s, "child/", NULL, 0, &l);
	tap_ok(r == 0 && l.n == 500, "fork: all 500 child keys present (%zu)", l.n);
	kura_kv_list_done(&l);
	r = kura_store_range(s, "parent/", NULL, 0, &l);
	tap_ok(r == 0 && l.n == 500, "fork: all 500 parent keys present (%zu)", l.n);
	kura_kv_list_done(&l);
	r = kura_store_changes(s, 0, 0, &ch);
	ok = r == 0 && ch.n == 2000;
	for (size_t i = 0; ok && i < ch.n; i++)
		ok = ch.items[i].rev == (int64_t)(i / 2 + 1) &&
			ch.items[i].kind == KURA_CHANGE_PUT &&
			(strcmp(ch.items[i].key, "counter") == 0) == (i % 2 == 1);
	tap_ok(ok, "fork: the change feed has 2 changes for each of revisions 1..1000");
	for (size_t i = 2; ok && i < ch.n; i += 2)
		switches += ch.items[i].key[0] != ch.items[i - 2].key[0];
	/* Proof that the writers really contended (the writer changed in the middle at least
	 * twice), not a measure of how much: SQLite's busy handler sleeps up to 25 ms, and on a
	 * loaded machine the count goes down to a handful. */
	tap_ok(switches >= 2, "fork: the processes interleaved (%zu changes of writer)", switches);
	kura_change_list_done(&ch);
	kura_store_close(s);
}

static void bulk_value(char *buf, size_t size, unsigned i)
{
	for (size_t j = 0; j < size; j++)
		buf[j] = (char)('a' + (i * 131 + j * 7) % 26);
	snprintf(buf, size, "value-%06u:", i);
}

static void test_bulk(void)
{
	enum { N = 100000, VLEN = 300 };
	struct kura_store *s = open_store("bulk.db", KURA_STORE_CREATE);
	struct kura_change_list ch = { 0 };
	struct kura_kv_list l = { 0 };
	struct kura_txn t = { 0 };
	char key[32], value[VLEN];
	double t0, dt;
	int64_t rev = 0;
	bool ok = true;
	size_t total = 0, n;
	int r = 0;

	if (!tap_ok(s, "bulk: open"))
		return;
	for (unsigned i = 0; i < N && r == 0; i++) {
		snprintf(key, sizeof(key), "bulk/%06u", i);
		bulk_value(value, sizeof(value), i);
		r = kura_txn_put(&t, key, value, sizeof(value),
			i % 2 ? KURA_REV_ABSENT : KURA_REV_ANY);
	}
	tap_is(r, 0, "bulk: built a transaction of %d puts", N);

	t0 = now();
	r = kura_store_commit(s, &t, &rev);
	dt = now() - t0;
	kura_txn_done(&t);
	tap_ok(r == 0 && rev == 1, "bulk: committed as one revision (%s)", kura_store_errmsg(s));
	tap_diag("commit of %d puts of %d bytes: %.3f s", N, VLEN, dt);
	if (RUNNING_ON_VALGRIND)
		tap_skip("bulk: timing under valgrind means nothing");
	else
		tap_ok(dt < 10, "bulk: commit took under 10 s (%.3f s)", dt);

	t0 = now();
	r = kura_store_range(s, "bulk/", NULL, 0, &l);
	dt = now() - t0;
	for (size_t i = 0; r == 0 && ok && i < l.n; i++) {
		snprintf(key, sizeof(key), "bulk/%06zu", i);
		bulk_value(value, sizeof(value), (unsigned)i);
		ok = !strcmp(l.items[i].key, key) && l.items[i].len == VLEN &&
			!memcmp(l.items[i].value, value, VLEN) && l.items[i].mod_rev == 1;
	}
	tap_ok(r == 0 && l.n == N && ok, "bulk: all %d keys listed with their values (%zu)", N,
		l.n);
	tap_diag("range over %d keys: %.3f s", N, dt);
	kura_kv_list_done(&l);

	t0 = now();
	key[0] = '\0';
	do {
		r = kura_store_range(s, "bulk/", total ? key : NULL, 1000, &l);
		n = l.n;
		if (r == 0 && n > 0) {
			total += n;
			snprintf(key, sizeof(key), "%s", l.items[n - 1].key);
		}
		kura_kv_list_done(&l);
	} while (r == 0 && n > 0);
	tap_diag("paged range over %d keys, 1000 a page: %.3f s", N, now() - t0);
	tap_ok(r == 0 && total == N, "bulk: paging by 1000 saw every key (%zu)", total);

	t0 = now();
	r = kura_store_range(s, "bulk/05000", NULL, 0, &l);
	dt = now() - t0;
	tap_ok(r == 0 && l.n == 10, "bulk: a narrow prefix finds its 10 keys (%zu)", l.n);
	tap_diag("narrow range in %d keys: %.6f s", N, dt);
	kura_kv_list_done(&l);

	t0 = now();
	r = kura_store_changes(s, 0, 0, &ch);
	ok = r == 0 && ch.n == N;
	for (size_t i = 0; ok && i < ch.n; i++) {
		snprintf(key, sizeof(key), "bulk/%06zu", i);
		ok = ch.items[i].rev == 1 && !strcmp(ch.items[i].key, key);
	}
	tap_ok(ok, "bulk: the change feed has every op in order (%zu)", ch.n);
	tap_diag("change feed of %d ops: %.3f s", N, now() - t0);
	kura_change_list_done(&ch);
	kura_store_close(s);
}

static int fill_txn(struct kura_store *s, unsigned i, int64_t *ret_rev)
{
	struct kura_txn t = { 0 };
	char key[32], value[1000];
	int r = 0;

	for (unsigned j = 0; j < 3 && r == 0; j++) {
		snprintf(key, sizeof(key), "fill/%04u-%u", i, j);
		bulk_value(value, sizeof(value), i * 3 + j);
		r = kura_txn_put(&t, key, value, sizeof(value), KURA_REV_ABSENT);
	}
	if (r == 0)
		r = kura_store_commit(s, &t, ret_rev);
	kura_txn_done(&t);
	return r;
}

static bool fill_intact(struct kura_store *s, unsigned committed, int64_t rev)
{
	char key[32], value[1000];
	struct kura_kv kv = { 0 };
	bool ok = revision(s) == rev;

	for (unsigned i = 0; ok && i <= committed; i++)
		for (unsigned j = 0; ok && j < 3; j++) {
			snprintf(key, sizeof(key), "fill/%04u-%u", i, j);
			bulk_value(value, sizeof(value), i * 3 + j);
			if (i == committed)
				ok = kura_store_get(s, key, &kv) == -ENOENT;
			else
				ok = value_is(s, key, value, sizeof(value));
		}
	return ok;
}

static void test_disk_full(void)
{
	char dir[PATH_MAX], p[PATH_MAX];
	struct kura_store *s = NULL;
	unsigned committed = 0;
	int64_t rev = 0;
	int r = 0;

	if (geteuid() != 0) {
		tap_skip("disk full: needs root to mount a tmpfs");
		return;
	}
	tpath(dir, "full");
	tpath(p, "full/store.db");
	if (mkdir(dir, 0700) < 0 ||
		mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
			"size=256k,mode=0700") < 0) {
		tap_skip("disk full: cannot mount a tmpfs: %s", strerror(errno));
		return;
	}

	r = kura_store_open_sqlite(p, KURA_STORE_CREATE, &s);
	if (tap_is(r, 0, "disk full: store on a 256k tmpfs")) {
		for (committed = 0; committed < 10000; committed++) {
			r = fill_txn(s, committed, &rev);
			if (r < 0)
				break;
		}
		tap_is(r, -ENOSPC, "disk full: commit fails with -ENOSPC after %u transactions",
			committed);
		tap_diag("disk full: %s", kura_store_errmsg(s));
		tap_ok(committed > 0 && fill_intact(s, committed, rev),
			"disk full: same handle still reads every committed key, none of the "
			"failed");
		kura_store_close(s);
		s = NULL;

		r = kura_store_open_sqlite(p, 0, &s);
		tap_is(r, 0, "disk full: the store reopens");
		tap_ok(s && fill_intact(s, committed, rev),
			"disk full: after reopen, revision %" PRId64 " and all %u keys intact", rev,
			committed * 3);
		kura_store_close(s);
	}
	if (umount2(dir, MNT_DETACH) < 0)
		tap_diag("umount %s: %s", dir, strerror(errno));
}

int main(void)
{
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 3;
	}
	test_txn_builder();
	test_open();
	test_get_put();
	test_cas();
	test_range();
	test_changes();
	test_bad_files();
	test_secure_delete();
	test_check_purge();
	test_two_handles();
	test_read_snapshot();
	test_fork();
	test_bulk();
	test_disk_full();
	rm_rf(tmpdir);
	return tap_done();
}

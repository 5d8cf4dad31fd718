/* Unit tests for the vault on real SQLite files: secret and key operations, refusals, records
 * moved or altered in the store, and what the files on disk hold. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "json.h"
#include "tap.h"
#include "vault.h"

static char root[] = "/tmp/kura-test-vault-XXXXXX";

static char *sub(const char *name)
{
	static char buf[8][512];
	static int i;

	i = (i + 1) % 8;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", root, name);
	return buf[i];
}

static struct kura_secbuf *val(const char *s)
{
	struct kura_secbuf *b = NULL;

	if (kura_secbuf_from(s, strlen(s), &b) < 0)
		abort();
	return b;
}

static struct kura_vault *open_file_vault(const char *dir)
{
	struct kura_master_source m = { .kind = KURA_MASTER_FILE };
	struct kura_err err = { 0 };
	struct kura_vault *v = NULL;

	if (kura_vault_open(dir, &m, 0, &v, &err) < 0)
		tap_diag("open %s: %s", dir, err.msg);
	return v;
}

static bool value_is(struct kura_vault *v, const char *name, uint64_t version, const char *want)
{
	_cleanup_secbuf_ struct kura_secbuf *got = NULL, *w = val(want);
	struct kura_err err = { 0 };

	if (kura_secret_get(v, name, version, &got, NULL, &err) < 0) {
		tap_diag("get %s: %s", name, err.msg);
		return false;
	}
	return kura_secbuf_equal(got, w);
}

static void test_lifecycle(void)
{
	const char *dir = sub("life");
	struct kura_init_opts o = { .master = { .kind = KURA_MASTER_FILE } };
	struct kura_err err = { 0 };
	struct kura_secret_info info = { 0 };
	struct kura_secret_list l = { 0 };
	struct kura_vault *v;
	struct stat st;
	uint64_t ver = 0;
	_cleanup_secbuf_ struct kura_secbuf *a = val("alpha"), *b = val("beta"), *c = val("gamma");

	tap_is(kura_vault_init(dir, &o, &err), 0, "init a state directory");
	tap_ok(stat(dir, &st) == 0 && (st.st_mode & 07777) == 0700, "state directory is 0700");
	tap_ok(stat(sub("life/master.key"), &st) == 0 && (st.st_mode & 07777) == 0400,
		"master key is 0400");
	tap_ok(stat(sub("life/kura.db"), &st) == 0 && (st.st_mode & 077) == 0,
		"store has no group/other access");
	tap_is(kura_vault_init(dir, &o, &err), -EEXIST, "init twice is refused");
	tap_ok(strstr(err.msg, "already") != NULL, "with a clear message: %s", err.msg);

	v = open_file_vault(dir);
	tap_ok(v != NULL, "open it");
	if (!v)
		return;
	tap_is(kura_secret_put(v, "db/password", a, &ver, &err), 0, "put db/password");
	tap_is((long long)ver, 1, "first version is 1");
	tap_is(kura_secret_put(v, "db/password", b, &ver, &err), -EEXIST, "put does not overwrite");
	tap_is(kura_secret_rotate(v, "db/nope", b, &ver, &err), -ENOENT,
		"rotate of a missing secret");
	tap_is(kura_secret_rotate(v, "db/password", b, &ver, &err), 0, "rotate");
	tap_is((long long)ver, 2, "rotation makes version 2");
	tap_ok(value_is(v, "db/password", 0, "beta"), "current value is the rotated one");
	tap_ok(value_is(v, "db/password", 1, "alpha"), "version 1 still reads");
	tap_is(kura_secret_rollback(v, "db/password", 1, &err), 0, "roll back to 1");
	tap_ok(value_is(v, "db/password", 0, "alpha"), "current is version 1 again");
	tap_is(kura_secret_rotate(v, "db/password", c, &ver, &err), 0, "rotate after rollback");
	tap_is((long long)ver, 3, "version numbers are never reused");
	tap_is(kura_secret_rollback(v, "db/password", 9, &err), -ENOENT, "rollback to nothing");
	tap_is(kura_secret_destroy(v, "db/password", 3, &err), -EPERM,
		"destroying the current version is refused");
	tap_is(kura_secret_destroy(v, "db/password", 2, &err), 0, "destroy version 2");
	tap_is(kura_secret_get(v, "db/password", 2, NULL, NULL, &err), -ENOENT,
		"a destroyed version is gone");
	tap_is(kura_secret_rollback(v, "db/password", 2, &err), -ENOENT,
		"and cannot be rolled back to");
	tap_is(kura_secret_destroy(v, "db/password", 2, &err), -ENOENT, "nor destroyed twice");
	tap_is(kura_secret_show(v, "db/password", &info, &err), 0, "show");
	tap_ok(info.n_versions == 2 && info.versions[0].version == 1 &&
			info.versions[1].version == 3 && info.current == 3 && info.latest == 3 &&
			info.versions[0].size == 5,
		"show lists versions 1 and 3, sizes, current 3");
	kura_secret_info_done(&info);

	kura_secret_put(v, "db2", a, NULL, &err);
	kura_secret_put(v, "db/user", a, NULL, &err);
	kura_secret_put(v, "web/tls/key", a, NULL, &err);
	tap_is(kura_secret_list(v, "db/", &l, &err), 0, "list db/");
	tap_ok(l.n == 2 && strcmp(l.items[0].name, "db/password") == 0 &&
			strcmp(l.items[1].name, "db/user") == 0,
		"db/ lists exactly db/password and db/user");
	kura_secret_list_done(&l);
	tap_is(kura_secret_list(v, "db", &l, &err), 0, "list db");
	tap_is((long long)l.n, 3, "the plain prefix db also matches db2");
	kura_secret_list_done(&l);
	tap_is(kura_secret_list(v, "", &l, &err), 0, "list all");
	tap_is((long long)l.n, 4, "four secrets");
	kura_secret_list_done(&l);
	tap_is(kura_secret_list(v, "../", &l, &err), -EINVAL, "a traversal prefix is refused");

	tap_is(kura_secret_put(v, "a/../b", a, NULL, &err), -EINVAL, "a '..' name is refused");
	tap_ok(strstr(err.msg, "..") != NULL, "naming the rule: %s", err.msg);
	tap_is(kura_secret_destroy(v, "db/user", 0, &err), 0, "destroy a whole secret");
	tap_is(kura_secret_show(v, "db/user", &info, &err), -ENOENT, "it is gone");
	tap_is(kura_secret_put(v, "db/user", b, &ver, &err), 0, "the name can be used again");
	tap_is((long long)ver, 1, "starting from version 1");
	kura_vault_close(v);
}

/*
 * A second writer (another vault on the same store, as a second kuractl or kurad) that gets in
 * just before our next commit: the race of two writers with its interleaving pinned, on the
 * real SQLite store.
 */
static struct {
	const struct kura_store_ops *orig;
	struct kura_store_ops ops;
	struct kura_vault *other;
	const char *put, *destroy; /* what the other writer does, once */
	int r;
	struct kura_err err;
} race;

static int racing_commit(struct kura_store *s, const struct kura_txn *t, int64_t *ret_rev)
{
	_cleanup_secbuf_ struct kura_secbuf *x = val("other");
	const char *put = race.put, *destroy = race.destroy;

	race.put = race.destroy = NULL;
	if (put)
		race.r = kura_secret_put(race.other, put, x, NULL, &race.err);
	if (destroy)
		race.r = kura_secret_destroy(race.other, destroy, 0, &race.err);
	return race.orig->commit(s, t, ret_rev);
}

static bool exists(struct kura_vault *v, const char *name)
{
	struct kura_secret_info info = { 0 };
	struct kura_err err = { 0 };
	bool there = kura_secret_show(v, name, &info, &err) == 0;

	kura_secret_info_done(&info);
	return there;
}

static void test_name_tree(void)
{
	const char *dir = sub("tree");
	struct kura_init_opts o = { .master = { .kind = KURA_MASTER_FILE } };
	_cleanup_secbuf_ struct kura_secbuf *a = val("alpha");
	struct kura_secret_list l = { 0 };
	struct kura_err err = { 0 };
	struct kura_store *st;
	struct kura_vault *v;
	uint64_t ver = 0;

	tap_is(kura_vault_init(dir, &o, &err), 0, "init a state for the name tree");
	v = open_file_vault(dir);
	race.other = open_file_vault(dir);
	if (!v || !race.other)
		return;

	tap_is(kura_secret_put(v, "app/db", a, NULL, &err), 0, "put app/db");
	tap_is(kura_secret_put(v, "app/db/sub", a, NULL, &err), -EEXIST,
		"app/db/sub is refused while app/db is a secret");
	tap_ok(strstr(err.msg, "app/db is a secret") != NULL, "naming app/db: %s", err.msg);
	tap_is(kura_secret_put(v, "app/db/sub/x", a, NULL, &err), -EEXIST,
		"and so is app/db/sub/x");
	tap_ok(strstr(err.msg, "app/db is a secret") != NULL, "naming app/db: %s", err.msg);
	tap_is(kura_secret_put(v, "app", a, NULL, &err), -EEXIST,
		"app is refused while app/db is below it");
	tap_ok(strstr(err.msg, "app/db is below it") != NULL, "naming app/db: %s", err.msg);
	tap_is(kura_secret_put(v, "app/dbx", a, NULL, &err), 0,
		"app/dbx is no conflict (whole segments, not a string prefix)");
	tap_is(kura_secret_put(v, "app/db.x/y", a, NULL, &err), 0, "nor is app/db.x/y");
	tap_is(kura_secret_rotate(v, "app/db", a, &ver, &err), 0, "app/db still rotates");
	tap_is(kura_secret_list(v, "", &l, &err), 0, "list everything");
	tap_is((long long)l.n, 3, "three secrets, and nothing else is listed");
	kura_secret_list_done(&l);

	tap_is(kura_secret_put(v, "top/a/b/c", a, NULL, &err), 0, "put top/a/b/c");
	tap_is(kura_secret_put(v, "top/a", a, NULL, &err), -EEXIST,
		"top/a is refused while top/a/b/c is below it");
	tap_ok(strstr(err.msg, "top/a/b/c is below it") != NULL, "naming top/a/b/c: %s", err.msg);
	tap_is(kura_secret_put(v, "top/a/b/c/d", a, NULL, &err), -EEXIST,
		"top/a/b/c/d is refused: top/a/b/c is a secret");

	tap_is(kura_secret_destroy(v, "app/db", 0, &err), 0, "destroy app/db");
	tap_is(kura_secret_put(v, "app/db/sub", a, NULL, &err), 0,
		"then app/db/sub can be made: a destroyed secret frees its name as a folder");
	tap_is(kura_secret_destroy(v, "app/db/sub", 0, &err), 0, "destroy app/db/sub");
	tap_is(kura_secret_put(v, "app/db", a, &ver, &err), 0,
		"then app/db can be made again: the folder is free");
	tap_is((long long)ver, 1, "from version 1");
	tap_is(kura_secret_destroy(v, "top/a/b/c", 0, &err), 0, "destroy top/a/b/c");
	tap_is(kura_secret_put(v, "top/a", a, NULL, &err), 0, "then top/a can be made");

	/* Two writers at once, each checking before the other commits. */
	st = kura_vault_store(v);
	race.orig = st->ops;
	race.ops = *st->ops;
	race.ops.commit = racing_commit;
	st->ops = &race.ops;

	race.put = "r1/db/sub";
	tap_is(kura_secret_put(v, "r1/db", a, NULL, &err), -EEXIST,
		"race: r1/db is refused when r1/db/sub is put just before it commits");
	tap_ok(race.r == 0 && exists(v, "r1/db/sub") && !exists(v, "r1/db"),
		"and only r1/db/sub exists: %s", err.msg);
	race.put = "r2/db";
	tap_is(kura_secret_put(v, "r2/db/sub", a, NULL, &err), -EEXIST,
		"race: r2/db/sub is refused when r2/db is put just before it commits");
	tap_ok(race.r == 0 && exists(v, "r2/db") && !exists(v, "r2/db/sub"),
		"and only r2/db exists: %s", err.msg);
	race.put = "r3/a/b/c";
	tap_is(kura_secret_put(v, "r3/a", a, NULL, &err), -EEXIST,
		"race: r3/a is refused when r3/a/b/c is put just before it commits");
	race.put = "r4/a";
	tap_is(kura_secret_put(v, "r4/a/b/c", a, NULL, &err), -EEXIST,
		"race: r4/a/b/c is refused when r4/a is put just before it commits");
	/* At the top no folder above is shared: only the compares on q1 itself can tell. */
	race.put = "q1/sub";
	tap_is(kura_secret_put(v, "q1", a, NULL, &err), -EEXIST,
		"race: q1 is refused when q1/sub is put just before it commits");
	tap_ok(race.r == 0 && exists(v, "q1/sub") && !exists(v, "q1"), "and only q1/sub exists");
	race.put = "q2";
	tap_is(kura_secret_put(v, "q2/sub", a, NULL, &err), -EEXIST,
		"race: q2/sub is refused when q2 is put just before it commits");
	tap_ok(race.r == 0 && exists(v, "q2") && !exists(v, "q2/sub"), "and only q2 exists");
	race.put = "r5/a";
	tap_is(kura_secret_put(v, "r5/b", a, NULL, &err), 0,
		"race: siblings r5/a and r5/b are both made");
	tap_ok(race.r == 0 && exists(v, "r5/a") && exists(v, "r5/b"), "both exist");
	tap_is(kura_secret_put(v, "r6/x/y", a, NULL, &err), 0, "put r6/x/y");
	race.destroy = "r6/x/y";
	tap_is(kura_secret_destroy(v, "r6/x/z", 0, &err), -ENOENT, "(destroy of a missing one)");
	race.destroy = NULL;
	tap_is(kura_secret_put(v, "r6/x/z", a, NULL, &err), 0, "put r6/x/z");
	race.destroy = "r6/x/z";
	tap_is(kura_secret_destroy(v, "r6/x/y", 0, &err), 0,
		"race: the last two below r6/x are destroyed at once");
	tap_ok(race.r == 0 && !exists(v, "r6/x/y") && !exists(v, "r6/x/z"), "both are gone");
	tap_is(kura_secret_put(v, "r6/x", a, NULL, &err), 0, "and r6/x can be made: %s", err.msg);
	st->ops = race.orig;

	kura_vault_close(race.other);
	kura_vault_close(v);
}

static void test_limits(void)
{
	const char *dir = sub("limits");
	struct kura_init_opts o = { .max_value_size = 16 };
	struct kura_err err = { 0 };
	_cleanup_secbuf_ struct kura_secbuf *ok16 = val("0123456789abcdef"),
					    *big = val("0123456789abcdefX"), *empty = val("");
	struct kura_vault *v;

	kura_vault_init(dir, &o, &err);
	v = open_file_vault(dir);
	if (!v)
		return;
	tap_is((long long)kura_vault_max_value(v), 16, "the store keeps its value limit");
	tap_is(kura_secret_put(v, "a", ok16, NULL, &err), 0, "a value at the limit is taken");
	tap_is(kura_secret_put(v, "b", big, NULL, &err), -EFBIG, "one byte over is refused");
	tap_ok(strstr(err.msg, "16") != NULL, "saying the limit: %s", err.msg);
	tap_is(kura_secret_put(v, "e", empty, NULL, &err), 0,
		"the library takes an empty value (kuractl asks for --allow-empty)");
	tap_is(kura_vault_set_max_value(v, 17, &err), 0, "raise the limit");
	tap_is(kura_secret_put(v, "b", big, NULL, &err), 0, "now it fits");
	kura_vault_close(v);
	v = open_file_vault(dir);
	tap_ok(v && kura_vault_max_value(v) == 17, "the new limit persists");
	kura_vault_close(v);
}

static void test_master_errors(void)
{
	const char *dir = sub("keys");
	struct kura_init_opts o = { 0 };
	struct kura_err err = { 0 };
	struct kura_master_source other = { .kind = KURA_MASTER_FILE, .path = sub("other.key") };
	struct kura_master_source pass = { .kind = KURA_MASTER_PASSPHRASE, .path = sub("pw") };
	struct kura_vault *v = NULL;
	_cleanup_secbuf_ struct kura_secbuf *a = val("alpha");
	int fd;

	kura_vault_init(dir, &o, &err);
	kura_master_create_file(other.path, NULL);
	tap_is(kura_vault_open(dir, &other, 0, &v, &err), -EKEYREJECTED,
		"another key file is rejected");
	tap_ok(strstr(err.msg, "wrong key file or passphrase") != NULL, "clearly: %s", err.msg);
	tap_ok(v == NULL, "and no vault is returned");
	tap_is(kura_vault_open(sub("nowhere"), &other, 0, &v, &err), -ENOENT,
		"a missing state directory");
	tap_ok(strstr(err.msg, "nowhere") != NULL, "names the directory: %s", err.msg);
	fd = open(pass.path, O_WRONLY | O_CREAT, 0600);
	if (fd < 0 || write(fd, "pw\n", 3) != 3)
		abort();
	close(fd);
	tap_is(kura_vault_open(dir, &pass, 0, &v, &err), -ENOKEY,
		"a passphrase for a key-file store is refused");

	v = open_file_vault(dir);
	if (!v)
		return;
	kura_secret_put(v, "x", a, NULL, &err);
	tap_is(kura_key_rekey(v, &pass, &err), 0, "rekey to a passphrase");
	tap_ok(value_is(v, "x", 0, "alpha"), "the open vault still reads");
	kura_vault_close(v);
	v = NULL;
	tap_is(kura_vault_open(dir, &(struct kura_master_source){ 0 }, 0, &v, &err), -ENOKEY,
		"the old key file no longer suffices: a passphrase is asked for");
	tap_is(kura_vault_open(dir, &pass, 0, &v, &err), 0, "the passphrase opens it");
	tap_ok(v && value_is(v, "x", 0, "alpha"), "and the value is intact");
	if (v) {
		tap_is(kura_key_rekey(v, &other, &err), 0, "rekey to another key file");
		kura_vault_close(v);
		v = NULL;
	}
	tap_is(kura_vault_open(dir, &(struct kura_master_source){ 0 }, 0, &v, &err), -EKEYREJECTED,
		"the original key file is rejected after rekey");
	tap_is(kura_vault_open(dir, &other, 0, &v, &err), 0, "the new key file opens it");
	tap_ok(v && value_is(v, "x", 0, "alpha"), "value intact after two rekeys");
	kura_vault_close(v);
}

/* Swap the version records of two secrets straight in the store: neither may open. */
static void test_moved_records(void)
{
	const char *dir = sub("moved");
	struct kura_init_opts o = { 0 };
	struct kura_err err = { 0 };
	struct kura_kv ka = { 0 }, kb = { 0 };
	struct kura_txn txn = { 0 };
	struct kura_vault *v;
	struct kura_secbuf *out = NULL;
	_cleanup_secbuf_ struct kura_secbuf *a = val("alpha"), *b = val("beta");

	kura_vault_init(dir, &o, &err);
	v = open_file_vault(dir);
	if (!v)
		return;
	kura_secret_put(v, "a", a, NULL, &err);
	kura_secret_put(v, "b", b, NULL, &err);
	kura_secret_rotate(v, "b", a, NULL, &err);
	kura_store_get(kura_vault_store(v), "version/a@0000000001", &ka);
	kura_store_get(kura_vault_store(v), "version/b@0000000001", &kb);
	kura_txn_put(&txn, "version/a@0000000001", kb.value, kb.len, KURA_REV_ANY);
	kura_txn_put(&txn, "version/b@0000000002", kb.value, kb.len, KURA_REV_ANY);
	tap_is(kura_store_commit(kura_vault_store(v), &txn, NULL), 0,
		"an intruder copies b's v1 record over a's v1 and b's v2");
	kura_txn_done(&txn);
	tap_is(kura_secret_get(v, "a", 1, &out, NULL, &err), -EBADMSG,
		"a record moved to another secret does not open");
	tap_ok(strstr(err.msg, "altered") != NULL, "and says so: %s", err.msg);
	tap_is(kura_secret_get(v, "b", 2, &out, NULL, &err), -EBADMSG,
		"a record moved to another version does not open");
	tap_ok(value_is(v, "b", 1, "beta"), "the untouched record still opens");
	kura_kv_done(&ka);
	kura_kv_done(&kb);
	kura_vault_close(v);
}

/* Does any file under path contain needle? */
static bool tree_contains(const char *path, const uint8_t *needle, size_t len)
{
	DIR *d = opendir(path);
	struct dirent *e;
	bool found = false;

	if (!d)
		return false;
	while (!found && (e = readdir(d))) {
		char p[1024];
		struct stat st;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
		if (lstat(p, &st) < 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			found = tree_contains(p, needle, len);
		} else if (S_ISREG(st.st_mode)) {
			FILE *f = fopen(p, "rb");
			uint8_t *data = malloc((size_t)st.st_size + 1);
			size_t n = f && data ? fread(data, 1, (size_t)st.st_size, f) : 0;

			found = n >= len && memmem(data, n, needle, len) != NULL;
			free(data);
			if (f)
				fclose(f);
		}
	}
	closedir(d);
	return found;
}

static void test_canary(void)
{
	const char *dir = sub("canary");
	struct kura_init_opts o = { 0 };
	struct kura_err err = { 0 };
	_cleanup_secbuf_ struct kura_secbuf *canary = NULL, *canary2 = NULL;
	struct kura_vault *v;
	char hex[65];

	kura_vault_init(dir, &o, &err);
	v = open_file_vault(dir);
	if (!v)
		return;
	/* A printable canary, so an encoding of it (hex, base64 of the bytes) is not the only
	 * thing that could leak: the raw text is searched for. */
	kura_secbuf_printable(32, &canary);
	kura_secbuf_random(32, &canary2);
	tap_is(kura_secret_put(v, "canary", canary, NULL, &err), 0, "put a random canary");
	tap_is(kura_secret_put(v, "canary2", canary2, NULL, &err), 0, "and a binary one");
	tap_ok(!tree_contains(dir, canary->data, canary->len),
		"the canary is in no file under the state dir (db, WAL, shm) while open");
	tap_ok(!tree_contains(dir, canary2->data, canary2->len), "nor the binary canary");
	sodium_bin2hex(hex, sizeof(hex), canary2->data, 32);
	tap_ok(!tree_contains(dir, (const uint8_t *)hex, 64), "nor its hex form");
	kura_vault_close(v);
	tap_ok(!tree_contains(dir, canary->data, canary->len), "nor after close");
}

int main(void)
{
	if (kura_keys_init() < 0 || !mkdtemp(root))
		return 99;
	kura_json_init();
	test_lifecycle();
	test_name_tree();
	test_limits();
	test_master_errors();
	test_moved_records();
	test_canary();
	tap_rmtree(root);
	return tap_done();
}

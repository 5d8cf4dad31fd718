/* Unit tests of the client's writer (client/writer.c, linked dynamically from its library):
 * begin/add/commit/abort on real tmpfs mounts in a private mount namespace, entries planted by
 * another uid, directories others can write, a full tmpfs, name clashes and the cap on names. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "macro.h"
#include "secbuf.h"
#include "serve.h"
#include "tap.h"
#include "writer.h"

/* Room for a directory of PATH_MAX and a name below it. */
#define PBUF (PATH_MAX + 300)

static char tmpdir[] = "/tmp/kura-test-writer-XXXXXX";
static const struct kura_write_opts opts = { .uid = (uid_t)-1, .gid = (gid_t)-1, .mode = 0400 };

static const char *tpath(char *buf, const char *name)
{
	snprintf(buf, PATH_MAX, "%s/%s", tmpdir, name);
	return buf;
}

/* A fresh tmpfs at tmpdir/name with the given mount options. */
static bool fresh_tmpfs(const char *name, const char *options)
{
	char p[PBUF];

	tpath(p, name);
	if (mkdir(p, 0700) < 0 && errno != EEXIST)
		return false;
	umount2(p, MNT_DETACH);
	return mount("kura-test-writer", p, "tmpfs", MS_NOSUID | MS_NODEV, options) == 0;
}

static struct kura_secbuf *value(const char *s)
{
	return kura_test_value(s, strlen(s));
}

/* Writes the names with values "v:<name>" as one set into dir: 0, or the first failure. */
static int write_set(const char *dir, const char **names, struct kura_fail *f)
{
	_cleanup_close_ int fd = kura_write_open_dir(dir, f);
	struct kura_write_txn *t = NULL;
	char v[300];
	int r;

	if (fd < 0)
		return fd;
	r = kura_write_begin(fd, dir, &opts, &t, f);
	for (size_t i = 0; r == 0 && names[i]; i++) {
		_cleanup_secbuf_ struct kura_secbuf *b = NULL;

		snprintf(v, sizeof(v), "v:%s", names[i]);
		b = value(v);
		r = kura_write_add(t, names[i], b, f);
	}
	if (r < 0) {
		kura_write_abort(t);
		return r;
	}
	return kura_write_commit(t, f);
}

static bool holds(const char *dir, const char *name, const char *want)
{
	char p[PBUF], buf[512];
	ssize_t n;
	int fd;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return false;
	buf[n] = '\0';
	return strcmp(buf, want) == 0;
}

/* How many entries dir holds whose names start with prefix ("." and ".." aside). */
static int count(const char *dir, const char *prefix)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0 &&
			strncmp(de->d_name, prefix, strlen(prefix)) == 0)
			n++;
	closedir(d);
	return n;
}

static void read_link(const char *dir, const char *name, char *buf, size_t size)
{
	char p[PBUF];
	ssize_t n;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	n = readlink(p, buf, size - 1);
	buf[n < 0 ? 0 : n] = '\0';
}

static void test_basic(void)
{
	const char *set1[] = { "a", "b/c", "b/d/e", NULL }, *set2[] = { "b/c", "f", NULL };
	char d[PATH_MAX], p[PBUF], data1[256], data2[256];
	struct kura_fail f = { 0 };
	struct stat st;

	tpath(d, "basic");
	tap_is(write_set(d, set1, &f), 0, "a set of three is written (%s)", f.msg);
	tap_ok(holds(d, "a", "v:a") && holds(d, "b/c", "v:b/c") && holds(d, "b/d/e", "v:b/d/e"),
		"each name holds its value through the top-level links");
	read_link(d, KURA_DATA_LINK, data1, sizeof(data1));
	tap_ok(strncmp(data1, KURA_SET_PREFIX, strlen(KURA_SET_PREFIX)) == 0, "..data -> %s",
		data1);
	snprintf(p, sizeof(p), "%s/b/d/e", d);
	tap_ok(stat(p, &st) == 0 && (st.st_mode & 07777) == 0400, "files are 0400");
	snprintf(p, sizeof(p), "%s/b", d);
	tap_ok(lstat(p, &st) == 0 && S_ISLNK(st.st_mode) && st.st_uid == geteuid(),
		"b is a link of kura's own");

	f = (struct kura_fail){ 0 };
	tap_is(write_set(d, set2, &f), 0, "a second set replaces it (%s)", f.msg);
	read_link(d, KURA_DATA_LINK, data2, sizeof(data2));
	tap_ok(strcmp(data1, data2) != 0 && holds(d, "f", "v:f") && holds(d, "b/c", "v:b/c"),
		"..data moved to the new set");
	snprintf(p, sizeof(p), "%s/a", d);
	tap_ok(lstat(p, &st) < 0 && errno == ENOENT,
		"the link of a name that left the set is gone");
	tap_is(count(d, KURA_SET_PREFIX), 1, "the old set is removed");
}

static void test_abort_and_full(void)
{
	const char *old[] = { "keep", NULL };
	char d[PATH_MAX], data[256], after[256], big[8192];
	_cleanup_secbuf_ struct kura_secbuf *b = NULL;
	_cleanup_close_ int fd = -1;
	struct kura_write_txn *t = NULL;
	struct kura_fail f = { 0 };
	int r = 0, i;

	if (!fresh_tmpfs("full", "size=64k,mode=0700")) {
		tap_skip("a full tmpfs: cannot mount one: %s", strerror(errno));
		return;
	}
	tpath(d, "full");
	tap_is(write_set(d, old, &f), 0, "the old set (%s)", f.msg);
	read_link(d, KURA_DATA_LINK, data, sizeof(data));
	fd = kura_write_open_dir(d, &f);
	tap_is(kura_write_begin(fd, d, &opts, &t, &f), 0, "begin (%s)", f.msg);
	tap_is(count(d, KURA_SET_PREFIX), 2, "the new set's directory exists while it fills");
	kura_write_abort(t);
	tap_is(count(d, KURA_SET_PREFIX), 1, "abort removes it");
	t = NULL;

	memset(big, 'x', sizeof(big));
	b = kura_test_value(big, sizeof(big));
	tap_is(kura_write_begin(fd, d, &opts, &t, &f), 0, "begin again");
	for (i = 0; i < 100 && r == 0; i++) {
		char name[32];

		snprintf(name, sizeof(name), "n/%d", i);
		r = kura_write_add(t, name, b, &f);
	}
	tap_ok(r < 0 && f.exit == KURA_EXIT_FULL, "a full tmpfs: add fails with exit 14 (%s)",
		f.msg);
	kura_write_abort(t);
	read_link(d, KURA_DATA_LINK, after, sizeof(after));
	tap_ok(strcmp(data, after) == 0 && holds(d, "keep", "v:keep") &&
			count(d, KURA_SET_PREFIX) == 1,
		"after abort the old set is in place, alone");
	tap_ok(count(d, "n") == 0, "no link of the new set was made");
}

static void test_planted(void)
{
	_cleanup_secbuf_ struct kura_secbuf *vx = value("v:x");
	const char *set[] = { "tok", NULL }, *other[] = { "x", NULL };
	char d[PATH_MAX], p[PBUF], data[256], after[256];
	struct kura_write_txn *t = NULL;
	struct kura_fail f = { 0 };
	_cleanup_close_ int fd = -1;
	int r;

	tpath(d, "planted");
	mkdir(d, 0700);
	/* A link with kura's own text that uid 65534 owns, as a planter would leave it. */
	snprintf(p, sizeof(p), "%s/tok", d);
	if (symlink(KURA_DATA_LINK "/tok", p) < 0 || lchown(p, 65534, 65534) < 0)
		abort();
	r = write_set(d, set, &f);
	tap_ok(r == -EPERM && f.exit == KURA_EXIT_WRITE_REFUSED &&
			strstr(f.msg, "link of uid 65534"),
		"a planted link with kura's text is refused (%s)", f.msg);
	tap_is(count(d, KURA_SET_PREFIX), 0, "nothing written");
	unlink(p);

	f = (struct kura_fail){ 0 };
	tap_is(write_set(d, set, &f), 0, "without it, the set is written (%s)", f.msg);
	read_link(d, KURA_DATA_LINK, data, sizeof(data));
	f = (struct kura_fail){ 0 };
	tap_is(write_set(d, set, &f), 0, "and kura's own link is accepted the next time (%s)",
		f.msg);

	/* One planted while the set fills: the commit refuses and the old set stays. */
	fd = kura_write_open_dir(d, &f);
	tap_is(kura_write_begin(fd, d, &opts, &t, &f), 0, "begin");
	tap_is(kura_write_add(t, "x", vx, &f), 0, "add x");
	snprintf(p, sizeof(p), "%s/x", d);
	if (symlink(KURA_DATA_LINK "/x", p) < 0 || lchown(p, 65534, 65534) < 0)
		abort();
	read_link(d, KURA_DATA_LINK, data, sizeof(data));
	r = kura_write_commit(t, &f);
	read_link(d, KURA_DATA_LINK, after, sizeof(after));
	tap_ok(r == -EPERM && f.exit == KURA_EXIT_WRITE_REFUSED,
		"a link planted before the commit is "
		"refused (%s)",
		f.msg);
	tap_ok(strcmp(data, after) == 0 && count(d, KURA_SET_PREFIX) == 1 &&
			holds(d, "tok", "v:tok"),
		"the old set stays, alone");
	unlink(p);

	/* "..data" of another user. */
	snprintf(p, sizeof(p), "%s/" KURA_DATA_LINK, d);
	if (lchown(p, 65534, 65534) < 0)
		abort();
	f = (struct kura_fail){ 0 };
	r = write_set(d, other, &f);
	tap_ok(r == -EPERM && f.exit == KURA_EXIT_WRITE_REFUSED && strstr(f.msg, KURA_DATA_LINK),
		"a ..data of uid 65534 is refused (%s)", f.msg);
	if (lchown(p, 0, 0) < 0)
		abort();
	unlink(p);
	if (symlink("elsewhere/..kura_x", p) < 0)
		abort();
	f = (struct kura_fail){ 0 };
	r = write_set(d, other, &f);
	tap_ok(r < 0 && f.exit == KURA_EXIT_WRITE_REFUSED,
		"a ..data that points out of the directory is "
		"refused (%s)",
		f.msg);
	unlink(p);
}

static void test_modes(void)
{
	_cleanup_secbuf_ struct kura_secbuf *v2 = value("v:2");
	const char *set[] = { "s", NULL };
	char d[PATH_MAX], sub[PBUF];
	struct kura_write_txn *t = NULL;
	struct kura_fail f = { 0 };
	_cleanup_close_ int fd = -1;
	int r;

	tpath(d, "modes");
	mkdir(d, 0700);
	for (int i = 0; i < 3; i++) {
		static const mode_t modes[] = { 01777, 0770, 0702 };

		chmod(d, modes[i]);
		f = (struct kura_fail){ 0 };
		r = write_set(d, set, &f);
		tap_ok(r == -EPERM && f.exit == KURA_EXIT_WRITE_REFUSED &&
				strstr(f.msg, "others can write"),
			"a directory of mode %04o is refused (%s)", modes[i], f.msg);
	}
	chmod(d, 0700);
	if (chown(d, 65534, 65534) < 0)
		abort();
	f = (struct kura_fail){ 0 };
	r = write_set(d, set, &f);
	tap_ok(r == -EPERM && strstr(f.msg, "belongs to uid 65534"),
		"a directory of uid 65534 is "
		"refused (%s)",
		f.msg);
	if (chown(d, 0, 0) < 0)
		abort();

	snprintf(sub, sizeof(sub), "%s/deeper", d);
	mkdir(sub, 0700);
	chmod(d, 0777);
	f = (struct kura_fail){ 0 };
	r = write_set(sub, set, &f);
	tap_ok(r == -EPERM && strstr(f.msg, "above it"),
		"under a directory others can write: "
		"refused (%s)",
		f.msg);
	chmod(d, 01777);
	f = (struct kura_fail){ 0 };
	tap_is(write_set(sub, set, &f), 0, "under a sticky one: written (%s)", f.msg);
	chmod(d, 0700);

	/* Opened to others while the set fills: the commit looks again. */
	fd = kura_write_open_dir(sub, &f);
	tap_is(kura_write_begin(fd, sub, &opts, &t, &f), 0, "begin");
	tap_is(kura_write_add(t, "s", v2, &f), 0, "add");
	chmod(sub, 01777);
	r = kura_write_commit(t, &f);
	tap_ok(r == -EPERM && strstr(f.msg, "others can write"),
		"a commit into a directory made "
		"1777 meanwhile is refused (%s)",
		f.msg);
	tap_ok(holds(sub, "s", "v:s") && count(sub, KURA_SET_PREFIX) == 1, "the old set stays");
	chmod(sub, 0700);
}

static void test_names(void)
{
	const char *clash1[] = { "a", "a/b", NULL }, *clash2[] = { "a/b", "a", NULL },
		   *twice[] = { "t", "t", NULL }, *dots[] = { "..data2", NULL };
	char d[PATH_MAX], name[32];
	struct kura_write_txn *t = NULL;
	struct kura_fail f = { 0 };
	_cleanup_close_ int fd = -1;
	int r = 0;
	size_t i;

	tpath(d, "names");
	mkdir(d, 0700);
	for (i = 0; i < 3; i++) {
		const char **set = i == 0 ? clash1 : i == 1 ? clash2 : twice;

		f = (struct kura_fail){ 0 };
		r = write_set(d, set, &f);
		tap_ok(r == -EEXIST && f.exit == KURA_EXIT_PROTOCOL && count(d, "") == 0,
			"%s then %s: refused (16), nothing written (%s)", set[0], set[1], f.msg);
	}
	f = (struct kura_fail){ 0 };
	r = write_set(d, dots, &f);
	tap_ok(r < 0 && f.exit == KURA_EXIT_WRITE_REFUSED,
		"a name starting with '..' is refused (%s)", f.msg);

	fd = kura_write_open_dir(d, &f);
	f = (struct kura_fail){ 0 };
	tap_is(kura_write_begin(fd, d, &opts, &t, &f), 0, "begin");
	r = 0;
	for (i = 0; i <= KURA_SET_MAX && r == 0; i++) {
		_cleanup_secbuf_ struct kura_secbuf *b = value("1");

		snprintf(name, sizeof(name), "n/%zu", i);
		r = kura_write_add(t, name, b, &f);
	}
	tap_ok(r == -E2BIG && i == KURA_SET_MAX + 1 && f.exit == KURA_EXIT_PROTOCOL,
		"name %zu of a set is refused (16): %s", i, f.msg);
	kura_write_abort(t);
	tap_is(count(d, ""), 0, "nothing written");
}

int main(void)
{
	char d[PATH_MAX];

	if (geteuid() != 0) {
		printf("1..0 # SKIP needs root: tmpfs mounts and entries of another uid\n");
		return 0;
	}
	/* Our mounts vanish with this process, whatever happens to it. */
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		printf("1..0 # SKIP cannot make a private mount namespace: %s\n", strerror(errno));
		return 0;
	}
	umask(022);
	if (!mkdtemp(tmpdir) || chmod(tmpdir, 0755) < 0 ||
		mount("kura-test-writer", tmpdir, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0) {
		printf("1..0 # SKIP cannot mount a tmpfs: %s\n", strerror(errno));
		return 0;
	}
	tpath(d, "basic");
	mkdir(d, 0700);
	test_basic();
	test_abort_and_full();
	test_planted();
	test_modes();
	test_names();
	umount2(tmpdir, MNT_DETACH);
	rmdir(tmpdir);
	return tap_done();
}

/* The client writer's fault sweep (issue 10): client/writer.c, built as a plain dynamic binary with
 * the fault library preloaded, writes sets into a real tmpfs and has each of its calls failed in
 * turn. Touches test values only, never a real secret. */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "macro.h"
#include "secbuf.h"
#include "tap.h"
#include "writer.h"

/*
 * How a case goes, SQLite's way: the operation (a first write into an empty directory, or a
 * rewrite over an older set as --watch makes one: names added, changed and removed, nested names)
 * runs once in a child with every call counted (the library's ops=all), then once per call and
 * fault with that call failing: EIO once, and one that lasts (ENOSPC for writes, torn in half,
 * and for mkdir and symlink; EIO for calls that only look; EROFS for the rest); a write also
 * gets a short one that the rest then follows. Each child runs on a fresh tmpfs holding the
 * state before, and the faults are on only while the writer runs. Afterwards:
 *  - a reader opening DIR/NAME sees one whole set, the old one or the new one, every file with
 *    its value, owner and mode, and names of the other set absent: never a mix, never a torn file;
 *  - exit 0 means the new set, a failure the old set, with kura's exit code for the fault (14
 *    for ENOSPC, 3 for EIO and EROFS) and a message that says why (the system's words for the
 *    error, or that the tmpfs is full); a fault that lasts only once leaves the directory
 *    exactly as it was (no temporary file, link or set directory left behind);
 *  - no descriptor is leaked, and the process does not crash;
 *  - the next write, the fault cleared, succeeds and leaves exactly the new set: "..data", one
 *    set directory and its links, nothing else.
 */

#define MAX_ITEMS 12
#define MAX_CALLS 2048
#define MAX_FAILS 8

struct item {
	const char *name;
	char *value;
	size_t len;
};

struct set {
	const char *label;
	struct item it[MAX_ITEMS];
	size_t n;
};

static struct set none = { .label = "no set" }, set_a = { .label = "set A" },
		  set_b = { .label = "set B" };
static const struct kura_write_opts wopts = { .uid = 1234, .gid = 1234, .mode = 0440 };
/* The mode seal_dir gives directories for files of mode 0440. */
#define DIR_MODE 0750

static char base[PATH_MAX];     /* the test's own directory, on the disk */
static char mnt[PATH_MAX + 8];  /* a fresh tmpfs for each case */
static char dir[PATH_MAX + 16]; /* kura's target directory in it */
static char trace_path[PATH_MAX + 8];
static char exe[PATH_MAX];
static void (*fault_set)(const char *spec);

/* One call of the trace the library writes ("PID N OP ok|FAIL(E) PATH CALLER"). */
struct call {
	unsigned long n;
	char op[16], res[24], path[256], caller[96];
	char where[160]; /* the caller as function (file:line) */
};

static struct call counted[MAX_CALLS], seen[MAX_CALLS];

/* A call site: an operation and the code that makes it. */
struct site {
	char op[16], where[160];
	unsigned calls, cases, absorbed;
	unsigned after; /* cases it failed in as a later call of a lasting fault */
	unsigned stamp; /* the last such case */
};

static unsigned case_no;

static struct site sites[256];
static size_t n_sites;

/* --- sets ----------------------------------------------------------------------------------- */

/* A value of len bytes that says which set and name it belongs to. */
static void add_item(struct set *s, const char *name, const char *gen, size_t len)
{
	struct item *it = &s->it[s->n++];
	int head;

	it->name = name;
	it->value = malloc(len + 1);
	if (!it->value)
		abort();
	head = snprintf(it->value, len + 1, "%s:%s:", gen, name);
	for (size_t i = (size_t)head; i < len; i++)
		it->value[i] = (char)('a' + (i * 7 + (size_t)gen[0]) % 26);
	it->len = len;
}

static const struct item *find(const struct set *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->it[i].name, name) == 0)
			return &s->it[i];
	return NULL;
}

/* Set A, then set B over it: names changed, kept, added (also below a kept top-level name and
 * three levels deep) and removed (a top-level name, and a directory that becomes a file). */
static const struct {
	struct set *set;
	const char *name, *gen;
	size_t len;
} items[] = {
	{ &set_a, "app/db", "old", 40 },
	{ &set_a, "app/api/key", "same", 300 },
	{ &set_a, "tls/cert", "old", 5000 },
	{ &set_a, "token", "same", 20 },
	{ &set_a, "gone", "old", 10 },
	{ &set_a, "dir/x/y", "old", 30 },
	{ &set_b, "app/db", "new", 41 },
	{ &set_b, "app/api/key", "same", 300 },
	{ &set_b, "app/new", "new", 12 },
	{ &set_b, "tls/cert", "new", 70000 },
	{ &set_b, "token", "same", 20 },
	{ &set_b, "fresh", "new", 9 },
	{ &set_b, "nest/a/b/c", "new", 64 },
	{ &set_b, "dir", "new", 33 },
};

static void make_sets(void)
{
	for (size_t i = 0; i < ELEMENTSOF(items); i++)
		add_item(items[i].set, items[i].name, items[i].gen, items[i].len);
}

/* Writes s into dir as kura run does: every name checked before the first value, one value at a
 * time, abort on the first failure. */
static int write_set(const struct set *s, struct kura_fail *f)
{
	_cleanup_close_ int fd = kura_write_open_dir(dir, f);
	struct kura_write_txn *t = NULL;
	int r;

	if (fd < 0)
		return fd;
	r = kura_write_begin(fd, dir, &wopts, &t, f);
	if (r < 0)
		return r;
	for (size_t i = 0; r == 0 && i < s->n; i++)
		r = kura_write_check(t, s->it[i].name, f);
	for (size_t i = 0; r == 0 && i < s->n; i++) {
		struct kura_secbuf *b = NULL;

		r = kura_secbuf_new(s->it[i].len, &b);
		if (r < 0) {
			kura_fail_set(f, r, KURA_EXIT_SYSTEM, "out of memory");
			break;
		}
		memcpy(b->data, s->it[i].value, s->it[i].len);
		b->len = s->it[i].len;
		r = kura_write_add(t, s->it[i].name, b, f);
		kura_secbuf_free(b);
	}
	if (r < 0) {
		kura_write_abort(t);
		return r;
	}
	(void)kura_write_swap_risk(fd); /* kura's warning, between the last value and the swap */
	return kura_write_commit(t, f);
}

/* --- running the writer under a fault -------------------------------------------------------- */

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

struct outcome {
	int r, exit, fds_before, fds_after;
	char msg[1024];
};

/*
 * write_set(s) in a child with spec on while the writer runs, so nothing the test itself does is
 * ever counted or failed, and a crash is a finding, not the end of the test. False if the child
 * died (why says how).
 */
static bool run_child(const char *spec, const struct set *s, struct outcome *o, char *why,
	size_t size)
{
	int p[2], status = 0;
	ssize_t n;
	pid_t pid;

	memset(o, 0, sizeof(*o));
	if (truncate(trace_path, 0) < 0 || pipe2(p, O_CLOEXEC) < 0) {
		snprintf(why, size, "cannot start a case: %s", strerror(errno));
		return false;
	}
	pid = fork();
	if (pid == 0) {
		struct kura_fail f = { 0 };
		struct outcome c = { 0 };

		c.fds_before = count_fds();
		fault_set(spec);
		c.r = write_set(s, &f);
		fault_set("off");
		c.fds_after = count_fds();
		c.exit = f.exit;
		snprintf(c.msg, sizeof(c.msg), "%s", f.msg);
		_exit(write(p[1], &c, sizeof(c)) == sizeof(c) ? 0 : 1);
	}
	close(p[1]);
	n = pid < 0 ? -1 : read(p[0], o, sizeof(*o));
	close(p[0]);
	if (pid > 0)
		waitpid(pid, &status, 0);
	if (n == sizeof(*o) && WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return true;
	if (pid > 0 && WIFSIGNALED(status))
		snprintf(why, size, "the writer crashed: signal %d", WTERMSIG(status));
	else
		snprintf(why, size, "the writer's process ended without a report (status %#x)",
			(unsigned)status);
	return false;
}

/* The calls the library traced in the last child. A path may hold a blank ("x (deleted)"): the
 * caller is the last word. */
static size_t read_trace(struct call *out)
{
	char line[1024];
	size_t n = 0;
	FILE *fp = fopen(trace_path, "re");

	if (!fp)
		return 0;
	while (n < MAX_CALLS && fgets(line, sizeof(line), fp)) {
		struct call *c = &out[n];
		char *last;
		int path_at = 0;

		memset(c, 0, sizeof(*c));
		line[strcspn(line, "\n")] = '\0';
		last = strrchr(line, ' ');
		if (!last ||
			sscanf(line, "%*d %lu %15s %23s %n", &c->n, c->op, c->res, &path_at) != 3 ||
			!path_at || line + path_at > last)
			continue;
		snprintf(c->caller, sizeof(c->caller), "%s", last + 1);
		snprintf(c->path, sizeof(c->path), "%.*s", (int)(last - line - path_at),
			line + path_at);
		n++;
	}
	fclose(fp);
	return n;
}

/* One frame of addr2line's answer ("function\nfile:line"), in buf; false at the end. */
static bool next_frame(char **p, char *buf, size_t size)
{
	char *fn = *p, *nl = strchr(fn, '\n'), *loc, *end;

	if (!*fn || !nl)
		return false;
	loc = nl + 1;
	end = loc + strcspn(loc, "\n");
	*p = *end ? end + 1 : end;
	snprintf(buf, size, "%.*s (%.*s)", (int)(nl - fn), fn, (int)strcspn(loc, " \n"), loc);
	return true;
}

/*
 * Names a call's site as function (file:line), with addr2line over this very binary: the
 * innermost frame outside a header (the fortified openat64 of fcntl2.h, closep of macro.h are
 * inlined into the code that calls them). Each caller is looked up once.
 */
static void name_call(struct call *c)
{
	static struct {
		char caller[96], where[160];
	} known[512];
	static size_t n_known;
	const char *me = strrchr(exe, '/') ? strrchr(exe, '/') + 1 : exe;
	char addr[32], out[2048], frame[160], *p = out;
	const char *argv[] = { "addr2line", "-f", "-s", "-i", "-e", exe, addr, NULL };
	size_t mlen = strlen(me);

	for (size_t j = 0; j < n_known; j++)
		if (strcmp(known[j].caller, c->caller) == 0) {
			memcpy(c->where, known[j].where, sizeof(c->where));
			return;
		}
	snprintf(c->where, sizeof(c->where), "%s", c->caller);
	if (strncmp(c->caller, me, mlen) == 0 && c->caller[mlen] == '+') {
		/* The return address is past the call: one byte back is the call itself. */
		snprintf(addr, sizeof(addr), "%#lx", strtoul(c->caller + mlen + 1, NULL, 16) - 1);
		if (harness_run(out, sizeof(out), argv) == 0 && out[0] != '?')
			while (next_frame(&p, frame, sizeof(frame))) {
				char *loc = strchr(frame, '(');

				snprintf(c->where, sizeof(c->where), "%s", frame);
				if (!loc || !strstr(loc, ".h:"))
					break;
			}
	}
	if (n_known < ELEMENTSOF(known)) {
		memcpy(known[n_known].caller, c->caller, sizeof(known[0].caller));
		memcpy(known[n_known].where, c->where, sizeof(known[0].where));
		n_known++;
	}
}

static struct site *site_of(const struct call *c)
{
	for (size_t i = 0; i < n_sites; i++)
		if (strcmp(sites[i].op, c->op) == 0 && strcmp(sites[i].where, c->where) == 0)
			return &sites[i];
	if (n_sites == ELEMENTSOF(sites))
		return &sites[n_sites - 1];
	snprintf(sites[n_sites].op, sizeof(sites[n_sites].op), "%s", c->op);
	snprintf(sites[n_sites].where, sizeof(sites[n_sites].where), "%s", c->where);
	return &sites[n_sites++];
}

/* --- what the directory holds ---------------------------------------------------------------- */

struct text {
	char *p;
	size_t len, cap;
};

__attribute__((format(printf, 2, 3))) static void text_add(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(t->p ? t->p + t->len : NULL, t->p ? t->cap - t->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0)
			abort();
		if (t->p && t->len + (size_t)n < t->cap)
			break;
		t->cap = (t->cap + (size_t)n + 1) * 2;
		t->p = realloc(t->p, t->cap); /* names and digests of test values, no secret */
		if (!t->p)
			abort();
	}
	t->len += (size_t)n;
}

static uint64_t fnv(const char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)p[i]) * 0x100000001b3ull;
	return h;
}

/* Up to size bytes of a file, or -errno (-EISDIR for a directory). */
static ssize_t slurp(const char *path, char *buf, size_t size, struct stat *st)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t got = 0;
	ssize_t n;

	if (fd < 0 || fstat(fd, st) < 0)
		return -errno;
	if (S_ISDIR(st->st_mode))
		return -EISDIR;
	while (got < size && (n = read(fd, buf + got, size - got)) > 0)
		got += (size_t)n;
	return (ssize_t)got;
}

/* a/b (b alone if a is empty) into out; false if it does not fit, which no path here comes near. */
static bool path_join(char *out, size_t size, const char *a, const char *b)
{
	int n = snprintf(out, size, "%s%s%s", a, *a ? "/" : "", b);

	return n >= 0 && (size_t)n < size;
}

/* Calls fn for every entry below path, sorted by name, a directory before what it holds, with
 * its path, its name below the top, and its lstat (NULL, errno set, if that failed); stops at
 * the first false, and is false then. */
static bool walk(const char *path, const char *rel,
	bool (*fn)(const char *p, const char *rel, const struct stat *st, void *ctx), void *ctx)
{
	struct dirent **list = NULL;
	int n = scandir(path, &list, NULL, alphasort);
	bool ok = n >= 0 || fn(path, rel, NULL, ctx);

	for (int i = 0; ok && i < n; i++) {
		const char *name = list[i]->d_name;
		char p[PATH_MAX], r[PATH_MAX];
		struct stat st;
		bool got;

		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
			continue;
		if (!path_join(p, sizeof(p), path, name) || !path_join(r, sizeof(r), rel, name)) {
			ok = false;
			break;
		}
		got = lstat(p, &st) == 0;
		ok = fn(p, r, got ? &st : NULL, ctx) &&
			(!got || !S_ISDIR(st.st_mode) || walk(p, r, fn, ctx));
	}
	for (int i = 0; i < n; i++)
		free(list[i]);
	free(list);
	return ok;
}

/* One line of a snapshot: type, mode, owner, and the link's text or the file's digest. */
static bool snapshot_line(const char *p, const char *r, const struct stat *st, void *ctx)
{
	static char buf[1 << 17];
	char link[PATH_MAX];
	struct text *t = ctx;
	struct stat fst;
	ssize_t len;

	if (!st) {
		text_add(t, "%s: %s\n", r, strerror(errno));
	} else if (S_ISLNK(st->st_mode)) {
		len = readlink(p, link, sizeof(link) - 1);
		link[len < 0 ? 0 : len] = '\0';
		text_add(t, "%s link %u -> %s\n", r, (unsigned)st->st_uid, link);
	} else if (S_ISDIR(st->st_mode)) {
		text_add(t, "%s dir %04o %u:%u\n", r, (unsigned)(st->st_mode & 07777),
			(unsigned)st->st_uid, (unsigned)st->st_gid);
	} else {
		len = slurp(p, buf, sizeof(buf), &fst);
		text_add(t, "%s file %04o %u:%u %zd %016llx\n", r, (unsigned)(st->st_mode & 07777),
			(unsigned)st->st_uid, (unsigned)st->st_gid, len,
			len < 0 ? 0ull : (unsigned long long)fnv(buf, (size_t)len));
	}
	return true;
}

/* Everything DIR holds, one line per entry: what must not change when a write is refused. */
static char *snapshot_of_dir(void)
{
	struct text t = { 0 };

	text_add(&t, "%s", "");
	walk(dir, "", snapshot_line, &t);
	return t.p;
}

/* The text of DIR/name as a symlink, "" if there is none. */
static void link_of(const char *name, char *buf, size_t size)
{
	char p[PATH_MAX + 300];
	ssize_t n;

	n = path_join(p, sizeof(p), dir, name) ? readlink(p, buf, size - 1) : -1;
	buf[n < 0 ? 0 : n] = '\0';
}

struct tree_check {
	const struct set *s;
	size_t files;
	char *why;
	size_t size;
};

/* One entry of a set directory: a file of the set with its value, owner and mode, or a
 * directory kura sealed; anything else (a temporary file) is not. */
static bool tree_entry(const char *p, const char *r, const struct stat *st, void *ctx)
{
	static char buf[1 << 17];
	struct tree_check *c = ctx;
	const struct item *it;
	struct stat fst;
	ssize_t len;

	if (!st) {
		snprintf(c->why, c->size, "%.200s: %s", r, strerror(errno));
		return false;
	}
	if (S_ISDIR(st->st_mode)) {
		if ((st->st_mode & 07777) == DIR_MODE && st->st_uid == wopts.uid &&
			st->st_gid == wopts.gid)
			return true;
		snprintf(c->why, c->size, "directory %.200s is %04o %u:%u", r,
			(unsigned)(st->st_mode & 07777), (unsigned)st->st_uid,
			(unsigned)st->st_gid);
		return false;
	}
	if (!S_ISREG(st->st_mode) || !(it = find(c->s, r))) {
		snprintf(c->why, c->size, "%.200s is in the set directory but not in %s", r,
			c->s->label);
		return false;
	}
	c->files++;
	len = slurp(p, buf, sizeof(buf), &fst);
	if (len == (ssize_t)it->len && memcmp(buf, it->value, it->len) == 0 &&
		(st->st_mode & 07777) == wopts.mode && st->st_uid == wopts.uid &&
		st->st_gid == wopts.gid)
		return true;
	snprintf(c->why, c->size,
		"%.200s holds %zd bytes, mode %04o, %u:%u (want %zu bytes of "
		"%s, 0440, 1234:1234)",
		r, len, (unsigned)(st->st_mode & 07777), (unsigned)st->st_uid, (unsigned)st->st_gid,
		it->len, c->s->label);
	return false;
}

/* Whether the set directory data holds exactly s, every file whole, nothing else. */
static bool set_dir_is(const char *data, const struct set *s, char *why, size_t size)
{
	struct tree_check c = { .s = s, .why = why, .size = size };
	char sdir[PATH_MAX + 300];

	snprintf(sdir, sizeof(sdir), "%s/%s", dir, data);
	snprintf(why, size, "cannot list %.200s", data);
	if (!walk(sdir, "", tree_entry, &c))
		return false;
	if (c.files != s->n)
		snprintf(why, size, "%.200s holds %zu of the %zu names of %s", data, c.files, s->n,
			s->label);
	return c.files == s->n;
}

enum seen { SEEN_BROKEN = -1, SEEN_NONE, SEEN_OLD, SEEN_NEW };

/*
 * What a reader sees through DIR, judged by where "..data" points: nothing (no "..data"), the
 * set before (its old target), or the new set; each of them whole, read through DIR/NAME for
 * every name of either set (names outside it absent). SEEN_BROKEN with why otherwise.
 */
static enum seen reader_sees(const char *old_data, const struct set *before,
	const struct set *target, char *why, size_t size)
{
	const struct set *both[] = { before, target }, *want;
	char data[PATH_MAX];
	enum seen k;

	link_of(KURA_DATA_LINK, data, sizeof(data));
	if (!data[0]) {
		k = SEEN_NONE;
		want = &none;
	} else if (strcmp(data, old_data) == 0) {
		k = SEEN_OLD;
		want = before;
	} else if (strncmp(data, KURA_SET_PREFIX, strlen(KURA_SET_PREFIX)) == 0 &&
		!strchr(data, '/')) {
		k = SEEN_NEW;
		want = target;
	} else {
		snprintf(why, size, "..data -> %.200s", data);
		return SEEN_BROKEN;
	}
	if (k != SEEN_NONE && !set_dir_is(data, want, why, size))
		return SEEN_BROKEN;
	for (size_t b = 0; b < 2; b++)
		for (size_t i = 0; i < both[b]->n; i++) {
			const struct item *it = &both[b]->it[i], *w = find(want, it->name);
			char p[PATH_MAX + 300];
			static char buf[1 << 17];
			struct stat st;
			ssize_t len;

			snprintf(p, sizeof(p), "%s/%s", dir, it->name);
			len = slurp(p, buf, sizeof(buf), &st);
			/* Absent: nothing there, or a directory of the other set on the way. */
			if (!w && len != -ENOENT && len != -ENOTDIR && len != -EISDIR) {
				snprintf(why, size,
					"a reader of %s gets %s, not ENOENT (%s is in "
					"place)",
					it->name, len < 0 ? strerror((int)-len) : "a file",
					want->label);
				return SEEN_BROKEN;
			}
			if (w && (len != (ssize_t)w->len || memcmp(buf, w->value, w->len) != 0)) {
				snprintf(why, size, "a reader of %s gets %s, not its value in %s",
					it->name, len < 0 ? strerror((int)-len) : "other bytes",
					want->label);
				return SEEN_BROKEN;
			}
		}
	return k;
}

/* DIR holds exactly s: "..data" to one set directory holding s, one link of kura's per
 * top-level name, nothing else. */
static bool clean(const struct set *s, char *why, size_t size)
{
	struct dirent **list = NULL;
	char data[PATH_MAX];
	int n = scandir(dir, &list, NULL, alphasort);
	bool ok = n >= 0;

	link_of(KURA_DATA_LINK, data, sizeof(data));
	if (!ok)
		snprintf(why, size, "cannot list %.200s", dir);
	for (int i = 0; ok && i < n; i++) {
		const char *name = list[i]->d_name;
		char want[300], have[PATH_MAX];
		bool top = false;

		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 ||
			strcmp(name, KURA_DATA_LINK) == 0 || strcmp(name, data) == 0)
			continue;
		for (size_t j = 0; j < s->n && !top; j++)
			top = strncmp(s->it[j].name, name, strlen(name)) == 0 &&
				(s->it[j].name[strlen(name)] == '/' ||
					!s->it[j].name[strlen(name)]);
		snprintf(want, sizeof(want), KURA_DATA_LINK "/%s", name);
		link_of(name, have, sizeof(have));
		ok = top && strcmp(have, want) == 0;
		if (!ok)
			snprintf(why, size, "%.200s/%.200s is left behind%s%.200s", dir, name,
				have[0] ? " -> " : "", have);
	}
	for (int i = 0; i < n; i++)
		free(list[i]);
	free(list);
	if (ok && (!data[0] || !set_dir_is(data, s, why, size)))
		ok = data[0] && (snprintf(why, size, "..data -> '%.200s'", data), false);
	for (size_t j = 0; ok && j < s->n; j++) {
		char top[300], have[PATH_MAX], want[310];

		snprintf(top, sizeof(top), "%.*s", (int)strcspn(s->it[j].name, "/"), s->it[j].name);
		snprintf(want, sizeof(want), KURA_DATA_LINK "/%s", top);
		link_of(top, have, sizeof(have));
		ok = strcmp(have, want) == 0;
		if (!ok)
			snprintf(why, size, "no link %s -> %s", top, want);
	}
	return ok;
}

/* What a kura killed in the middle of a commit leaves beside the set in place: its own set
 * directory with a value half written, the swap link to it, and a link for a name of that set
 * (made before the swap); the next write must clear them. */
#define CRASHED KURA_SET_PREFIX "20200101T000000.000000000_0badf00d"

static bool plant_crash(void)
{
	char p[PATH_MAX + 300];
	int fd;

	snprintf(p, sizeof(p), "%s/" CRASHED, dir);
	if (mkdir(p, 0700) < 0)
		return false;
	snprintf(p, sizeof(p), "%s/" CRASHED "/app", dir);
	if (mkdir(p, 0700) < 0)
		return false;
	snprintf(p, sizeof(p), "%s/" CRASHED "/app/.db.kura-tmp-01234567", dir);
	fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0440);
	if (fd < 0 || write(fd, "new:app/d", 9) != 9 || close(fd) < 0)
		return false;
	snprintf(p, sizeof(p), "%s/" KURA_DATA_LINK "_tmp_%s", dir,
		&CRASHED[strlen(KURA_SET_PREFIX)]);
	if (symlink(CRASHED, p) < 0)
		return false;
	snprintf(p, sizeof(p), "%s/orphan", dir);
	return symlink(KURA_DATA_LINK "/orphan", p) == 0;
}

/* A fresh tmpfs with DIR holding before (nothing, for a first write), and a crash's leftovers. */
static bool fresh(const struct set *before, bool crashed, char *why, size_t size)
{
	struct kura_fail f = { 0 };

	umount2(mnt, MNT_DETACH);
	if (mount("kura-fault-writer", mnt, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=16m") <
			0 ||
		mkdir(dir, 0700) < 0) {
		snprintf(why, size, "cannot make a fresh tmpfs: %s", strerror(errno));
		return false;
	}
	if (before->n && write_set(before, &f) < 0) {
		snprintf(why, size, "cannot write %s without a fault: %.900s", before->label,
			f.msg);
		return false;
	}
	if (crashed && !plant_crash()) {
		snprintf(why, size, "cannot plant a crash's leftovers: %s", strerror(errno));
		return false;
	}
	return true;
}

/* --- the sweep ------------------------------------------------------------------------------ */

struct fault {
	const char *spec;
	int err;
	bool lasting;
};

/* EIO once at every call, and what lasts: a full tmpfs (where the call can fill it), a disk gone
 * bad for calls that only look, one gone read-only for the rest. A write also tears: half of it
 * goes through first, as when a disk fills up mid-write. */
static size_t faults_for(const char *op, struct fault out[3])
{
	size_t n = 0;

	out[n++] = (struct fault){ "errno=EIO mode=once", EIO, false };
	if (strcmp(op, "write") == 0) {
		out[n++] = (struct fault){ "errno=ENOSPC mode=once partial", ENOSPC, false };
		out[n++] = (struct fault){ "errno=ENOSPC mode=persist partial", ENOSPC, true };
	} else if (strcmp(op, "mkdir") == 0 || strcmp(op, "symlink") == 0) {
		out[n++] = (struct fault){ "errno=ENOSPC mode=persist", ENOSPC, true };
	} else if (strcmp(op, "stat") == 0 || strcmp(op, "readlink") == 0 ||
		strcmp(op, "readdir") == 0 || strcmp(op, "random") == 0 ||
		strcmp(op, "read") == 0 || strcmp(op, "close") == 0) {
		out[n++] = (struct fault){ "errno=EIO mode=persist", EIO, true };
	} else {
		out[n++] = (struct fault){ "errno=EROFS mode=persist", EROFS, true };
	}
	return n;
}

struct sweep {
	const char *label;
	const struct set *before, *target;
	bool crashed; /* before holds a crash's leftovers too */
	unsigned cases, failed, refused, absorbed;
	char fails[MAX_FAILS][1400];
};

__attribute__((format(printf, 2, 3))) static void finding(struct sweep *sw, const char *fmt, ...)
{
	va_list ap;

	if (sw->failed < MAX_FAILS) {
		va_start(ap, fmt);
		vsnprintf(sw->fails[sw->failed], sizeof(sw->fails[0]), fmt, ap);
		va_end(ap);
	}
	sw->failed++;
}

/* What a failure must say: 14 when the tmpfs is full, 3 for any other I/O error. */
static int exit_for(int err)
{
	return err == ENOSPC ? KURA_EXIT_FULL : KURA_EXIT_SYSTEM;
}

/* The message names the cause: the tmpfs being full, or the system's own words for the error. */
static bool says_why(const char *msg, int err)
{
	return strstr(msg, err == ENOSPC ? " is full" : strerror(err)) != NULL;
}

/* One case: call c failing with ft. Returns false (with a finding) if any check fails. */
static bool one_case(struct sweep *sw, struct site *site, const struct call *c,
	const struct fault *ft)
{
	char spec[128], why[1024], what[512], old_data[PATH_MAX];
	_cleanup_free_ char *before = NULL, *after = NULL;
	const struct call *hit = NULL;
	struct outcome o;
	enum seen k;
	size_t n;

	snprintf(what, sizeof(what), "call %lu (%s in %s) %s", c->n, c->op, c->where, ft->spec);
	sw->cases++;
	if (!fresh(sw->before, sw->crashed, why, sizeof(why)))
		return finding(sw, "%s: %s", what, why), false;
	before = snapshot_of_dir();
	link_of(KURA_DATA_LINK, old_data, sizeof(old_data));
	snprintf(spec, sizeof(spec), "ops=all nth=%lu %s", c->n, ft->spec);
	if (!run_child(spec, sw->target, &o, why, sizeof(why)))
		return finding(sw, "%s: %s", what, why), false;
	n = read_trace(seen);
	for (size_t i = 0; i < n && !hit; i++)
		if (seen[i].n == c->n)
			hit = &seen[i];
	/* The calls a lasting fault failed after the first: the ways out of a failure. */
	case_no++;
	for (size_t i = 0; i < n; i++) {
		struct site *later;

		if (seen[i].n == c->n || strncmp(seen[i].res, "FAIL", 4) != 0)
			continue;
		name_call(&seen[i]);
		later = site_of(&seen[i]);
		if (later->stamp != case_no)
			later->after++;
		later->stamp = case_no;
	}
	if (!hit || strncmp(hit->res, "FAIL", 4) != 0 || strcmp(hit->op, c->op) != 0 ||
		strcmp(hit->caller, c->caller) != 0)
		return finding(sw, "%s: the calls drifted: call %lu was %s %s from %s", what, c->n,
			       hit ? hit->op : "never made", hit ? hit->res : "",
			       hit ? hit->caller : ""),
		       false;
	k = reader_sees(old_data, sw->before, sw->target, why, sizeof(why));
	if (k == SEEN_BROKEN)
		return finding(sw, "%s: exit %d (%s); a reader sees a broken set: %s", what, o.exit,
			       o.msg, why),
		       false;
	if (o.r == 0 && k != SEEN_NEW)
		return finding(sw, "%s: reported written, but a reader sees %s", what,
			       k == SEEN_OLD ? "the old set" : "no set"),
		       false;
	if (o.r < 0 && k == SEEN_NEW)
		return finding(sw, "%s: reported failed (exit %d: %s), but the new set is in place",
			       what, o.exit, o.msg),
		       false;
	if (o.r < 0 && (o.exit != exit_for(ft->err) || !says_why(o.msg, ft->err)))
		return finding(sw, "%s: exit %d (%s), not %d with a message that says why", what,
			       o.exit, o.msg, exit_for(ft->err)),
		       false;
	if (o.fds_after != o.fds_before)
		return finding(sw, "%s: %d descriptors leaked (exit %d: %s)", what,
			       o.fds_after - o.fds_before, o.exit, o.msg),
		       false;
	after = snapshot_of_dir();
	if (o.r < 0 && !ft->lasting && strcmp(before, after) != 0)
		return finding(sw,
			       "%s: exit %d (%s), but not everything was undone: before\n%s"
			       "after\n%s",
			       what, o.exit, o.msg, before, after),
		       false;
	if (o.r == 0) {
		sw->absorbed++;
		site->absorbed++;
	} else {
		sw->refused++;
	}
	/* The fault cleared, the same write again must work and leave nothing else behind. */
	if (!run_child("off", sw->target, &o, why, sizeof(why)))
		return finding(sw, "%s; the next write: %s", what, why), false;
	if (o.r < 0 || o.fds_after != o.fds_before)
		return finding(sw,
			       "%s; the next write, with no fault, fails: exit %d: %s (%d "
			       "descriptors leaked); the directory:\n%s",
			       what, o.exit, o.msg, o.fds_after - o.fds_before, after),
		       false;
	if (!clean(sw->target, why, sizeof(why)))
		return finding(sw, "%s; after the next write: %s", what, why), false;
	return true;
}

/* Counts into counted[] every call the writer makes for sw's write, with nothing failing; 0 (and
 * a failed TAP line) if that cannot be done. */
static size_t count_calls(const struct sweep *sw)
{
	const char *label = sw->label;
	char why[1024];
	struct outcome o;
	size_t n;

	if (!fresh(sw->before, sw->crashed, why, sizeof(why)) ||
		!run_child("ops=all nth=0", sw->target, &o, why, sizeof(why))) {
		tap_ok(false, "%s: counting its calls: %s", label, why);
		return 0;
	}
	if (o.r < 0) {
		tap_ok(false, "%s: fails with no fault: %s", label, o.msg);
		return 0;
	}
	n = read_trace(counted);
	if (n == 0 || n == MAX_CALLS) {
		tap_ok(false, "%s: %zu calls counted", label, n);
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		name_call(&counted[i]);
	return n;
}

static void report(struct sweep *sw, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void report(struct sweep *sw, const char *fmt, ...)
{
	char desc[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(desc, sizeof(desc), fmt, ap);
	va_end(ap);
	if (!tap_ok(sw->failed == 0, "%s", desc)) {
		tap_diag("%u of %u cases failed, the first:", sw->failed, sw->cases);
		for (unsigned i = 0; i < sw->failed && i < MAX_FAILS; i++)
			tap_diag("  %s", sw->fails[i]);
	}
}

static void sweep(const char *label, const struct set *before, bool crashed,
	const struct set *target)
{
	struct sweep sw = { .label = label,
		.before = before,
		.target = target,
		.crashed = crashed };
	size_t first_site = n_sites, n;
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	n = count_calls(&sw);
	if (!n)
		return;
	for (size_t i = 0; i < n; i++) {
		struct fault ft[3];
		size_t nf = faults_for(counted[i].op, ft);
		struct site *s = site_of(&counted[i]);

		s->calls++;
		for (size_t j = 0; j < nf; j++) {
			s->cases++;
			one_case(&sw, s, &counted[i], &ft[j]);
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	report(&sw,
		"%s: a fault at each of its %zu calls, %u cases: one whole set seen, the right "
		"exit, nothing left behind, the next write clean",
		label, n, sw.cases);
	tap_diag("%s: %.1f s; %zu calls counted and failed in turn (%zu new sites); %u cases: %u "
		 "refused with the old set whole, %u absorbed (exit 0 with the new set)",
		label, (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9, n,
		n_sites - first_site, sw.cases, sw.refused, sw.absorbed);
}

/* --- regressions: the cases the sweeps found, picked by what the calls do, not their number -- */

#define NONE ((size_t)-1)

/* The first (step 1) or last (step -1) call in [from, to) of op on path (or below it, with
 * below), NONE if there is none. */
static size_t find_call(size_t from, size_t to, int step, const char *op, const char *path,
	bool below)
{
	size_t len = path ? strlen(path) : 0;

	for (size_t k = 0; k < to - from; k++) {
		size_t i = step > 0 ? from + k : to - 1 - k;
		const char *p = counted[i].path;

		if (strcmp(counted[i].op, op) != 0)
			continue;
		if (!path ||
			(below ? strncmp(p, path, len) == 0 && p[len] == '/' :
				 strcmp(p, path) == 0))
			return i;
	}
	return NONE;
}

/* The new set's directory: where begin's mkdir made it. */
static const char *set_path(size_t n)
{
	size_t i = find_call(0, n, 1, "mkdir", NULL, false);

	return i == NONE ? "" : counted[i].path;
}

/* Commit's seal of the new set's own directory (its fchmod, the last before the links). */
static size_t sealed_at(size_t n)
{
	size_t link = find_call(0, n, 1, "symlink", NULL, false);

	return link == NONE ? NONE : find_call(0, link, -1, "fchmod", set_path(n), false);
}

/* The fstat of a sub-directory of the new set, as a value below it is added. */
static size_t pick_subdir_stat(size_t n, size_t *idx)
{
	idx[0] = find_call(0, n, 1, "stat", set_path(n), true);
	return 1;
}

/* The two looks commit takes at the new set's directory before the swap (is it still ours?). */
static size_t pick_swap_stat(size_t n, size_t *idx)
{
	size_t link = find_call(0, n, 1, "symlink", NULL, false);

	idx[0] = link == NONE ? NONE : find_call(0, link, -1, "stat", set_path(n), false);
	idx[1] = idx[0] == NONE ? NONE : find_call(0, idx[0], -1, "stat", set_path(n), false);
	return 2;
}

/* The first read of the new set's top-level names, after the seal (the list of links to make). */
static size_t pick_tops_readdir(size_t n, size_t *idx)
{
	size_t k = sealed_at(n);

	idx[0] = k == NONE ? NONE : find_call(k, n, 1, "readdir", set_path(n), false);
	return 1;
}

/* The open of the new set's directory for that list. */
static size_t pick_tops_open(size_t n, size_t *idx)
{
	char dot[300];
	size_t k = sealed_at(n);

	snprintf(dot, sizeof(dot), "%s/.", set_path(n));
	idx[0] = k == NONE ? NONE : find_call(k, n, 1, "open", dot, false);
	return 1;
}

/* The random bytes of the new set's name. */
static size_t pick_random(size_t n, size_t *idx)
{
	idx[0] = find_call(0, n, 1, "random", NULL, false);
	return 1;
}

static const struct {
	const char *desc;
	size_t (*pick)(size_t n, size_t *idx);
} regressions[] = {
	{ "a sub-directory of the new set that cannot be inspected as a value is added is an I/O "
	  "error (exit 3), not a file in the way (15)",
		pick_subdir_stat },
	{ "the new set's directory that cannot be inspected before the swap is an I/O error (exit "
	  "3), not 'no longer the set kura wrote' (15)",
		pick_swap_stat },
	{ "a read error while listing the new set's top-level names fails the commit with the old "
	  "set in place (it swapped in a set whose links were missing: its names unreadable)",
		pick_tops_readdir },
	{ "the new set that cannot be opened to list its names says why (it said 'out of memory')",
		pick_tops_open },
	{ "random bytes for the new set's name that cannot be had: exit 3 saying why",
		pick_random },
};

/* Each case the sweeps found, kept on its own over the rewrite (--watch's case). */
static void run_regressions(void)
{
	for (size_t r = 0; r < ELEMENTSOF(regressions); r++) {
		struct sweep sw = { .label = "regression", .before = &set_a, .target = &set_b };
		struct site scratch = { .op = "" };
		size_t idx[2], n = count_calls(&sw), k;

		if (!n)
			continue;
		k = regressions[r].pick(n, idx);
		for (size_t j = 0; j < k; j++) {
			struct fault ft[3];
			size_t nf;

			if (idx[j] == NONE) {
				finding(&sw, "the call to fail was not found");
				continue;
			}
			nf = faults_for(counted[idx[j]].op, ft);
			for (size_t f = 0; f < nf; f++)
				one_case(&sw, &scratch, &counted[idx[j]], &ft[f]);
		}
		report(&sw, "regression: %s (%u cases)", regressions[r].desc, sw.cases);
	}
}

/* Mounts, the preloaded library found; false (with why) where this machine cannot. */
static bool setup(const char *lib, char **argv, char *why, size_t size)
{
	const char *b = getenv("KURA_FAULT_WRITER_DIR");
	ssize_t n;

	/* Set by the first run for the second, which removes it whatever happens. */
	snprintf(base, sizeof(base), "%s", b ? b : "");
	snprintf(mnt, sizeof(mnt), "%s/m", base);
	snprintf(dir, sizeof(dir), "%s/secrets", mnt);
	snprintf(trace_path, sizeof(trace_path), "%s/trace", base);
	fault_set = (void (*)(const char *))dlsym(RTLD_DEFAULT, "kura_fault_set");
	if (!fault_set) {
		/* Not preloaded yet: again, with the library first in line and a trace. */
		char tmpl[] = "/tmp/kura-fault-writer-XXXXXX", tr[PATH_MAX];

		if (b)
			return snprintf(why, size, "the fault library %s does not load", lib),
			       false;
		if (!mkdtemp(tmpl))
			return snprintf(why, size, "mkdtemp: %s", strerror(errno)), false;
		snprintf(tr, sizeof(tr), "%s/trace", tmpl);
		setenv("KURA_FAULT_WRITER_DIR", tmpl, 1);
		setenv("KURA_FAULT_TRACE", tr, 1);
		setenv("LD_PRELOAD", lib, 1);
		execv("/proc/self/exe", argv);
		rmdir(tmpl);
		return snprintf(why, size, "cannot run myself again: %s", strerror(errno)), false;
	}
	unsetenv("LD_PRELOAD"); /* for addr2line */
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	exe[n < 0 ? 0 : n] = '\0';
	/* Our mounts vanish with this process, whatever happens to it. */
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return snprintf(why, size, "cannot make a private mount namespace: %s",
			       strerror(errno)),
		       false;
	if (mkdir(mnt, 0755) < 0 ||
		mount("kura-fault-writer", mnt, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0)
		return snprintf(why, size, "cannot mount a tmpfs: %s", strerror(errno)), false;
	return true;
}

int main(int argc, char **argv)
{
	char why[1024];
	bool ok;

	if (argc != 2) {
		fprintf(stderr, "usage: %s LIBKURA_FAULT\n", argv[0]);
		return 2;
	}
	if (geteuid() != 0) {
		printf("1..0 # SKIP needs root: tmpfs mounts and files of another uid\n");
		return 0;
	}
	ok = setup(argv[1], argv, why, sizeof(why));
	if (!ok) {
		printf("1..0 # SKIP %s\n", why);
	} else {
		umask(022);
		make_sets();
		sweep("first write", &none, false, &set_a);
		sweep("rewrite", &set_a, false, &set_b);
		sweep("rewrite over a crash's leftovers", &set_a, true, &set_b);
		run_regressions();
		size_t only_after = 0;

		tap_diag(
			"call sites (operation, function and line): calls failed in turn, cases, "
			"cases absorbed (exit 0), cases where a lasting fault failed it later on:");
		for (size_t i = 0; i < n_sites; i++) {
			tap_diag("  %-8s %s: %u, %u, %u, %u", sites[i].op, sites[i].where,
				sites[i].calls, sites[i].cases, sites[i].absorbed, sites[i].after);
			only_after += sites[i].calls == 0;
		}
		tap_diag("in all: %zu distinct sites, %zu of them failed in turn, %zu more only on "
			 "the way out of a failure (cleanups, failed there by the lasting faults)",
			n_sites, n_sites - only_after, only_after);
	}
	if (base[0]) { /* the first run's directory: without one, nothing here is ours */
		umount2(mnt, MNT_DETACH);
		rmdir(mnt);
		unlink(trace_path);
		rmdir(base);
	}
	return ok ? tap_done() : 0;
}

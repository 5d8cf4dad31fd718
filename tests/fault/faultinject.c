/* Test-only I/O fault injection, loaded with LD_PRELOAD into kuractl, kurad or the client writer's
 * test driver: the Nth matching file system call fails with a chosen errno, and every matching
 * call is traced. Never linked into kura's programs. Sees buffers in passing (as the kernel
 * would); keeps none of them. */
/* The fortified inline read() and friends would clash with the definitions below. */
#undef _FORTIFY_SOURCE
/* Each wrapper defines exactly the symbol it is named after (open stays open, not open64). */
#undef _FILE_OFFSET_BITS
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

/*
 * What to fail is a spec: words separated by blanks,
 *
 *   ops=write,fsync,...   the calls that match (default: all of write pwrite writev fsync
 *                         fdatasync rename read pread open ftruncate mkdir unlink symlink
 *                         fchmod link; open includes openat2 made through syscall(2)); these
 *                         match only when named, or with ops=all: stat (stat, lstat, fstat,
 *                         fstatat, statx, fstatfs), readlink, chown (fchown, lchown, chown,
 *                         fchownat), random (getrandom: no path, so under= does not apply),
 *                         readdir, close (the descriptor is closed all the same, as Linux does)
 *   under=PREFIX          only calls on a path that starts with PREFIX; a descriptor's path is
 *                         read from /proc/self/fd, a relative one resolved against its dirfd
 *   nth=N                 the Nth matching call fails (0: nothing fails, calls are only counted)
 *   errno=EIO|ENOSPC|EROFS|EDQUOT|N
 *   mode=once|persist     persist: the Nth and every later matching call fail
 *   partial               a failing write first writes half its bytes (a short write, as a disk
 *                         filling up gives); the next one, under persist, fails outright
 *   off                   nothing matches
 *
 * taken from KURA_FAULT, or, when KURA_FAULT_CONTROL names a file, from that file: it is looked
 * at on every call that could match and re-read when it changes (replace it with rename, so no
 * half-written spec is ever read); an absent file means off. Each new spec counts from zero, so
 * a test can clear a fault or count one operation's calls while the process runs.
 * KURA_FAULT_TRACE=FILE gets one line per matching call:
 *
 *   PID N OP ok|FAIL(ERRNO) PATH CALLER
 *
 * where CALLER is the calling object and offset (libsqlite3.so.0+0x1f2e3): the call site.
 * Everything here reaches the kernel through syscall(2), so it never matches itself.
 *
 * A process that has this library preloaded can also set its spec itself, with
 * kura_fault_set(SPEC) (found with dlsym): a forked child can then fail one call of its own
 * while its parent counts nothing, without a control file.
 */

enum op {
	OP_WRITE = 1u << 0,
	OP_PWRITE = 1u << 1,
	OP_WRITEV = 1u << 2,
	OP_FSYNC = 1u << 3,
	OP_FDATASYNC = 1u << 4,
	OP_RENAME = 1u << 5,
	OP_READ = 1u << 6,
	OP_PREAD = 1u << 7,
	OP_OPEN = 1u << 8,
	OP_FTRUNCATE = 1u << 9,
	OP_MKDIR = 1u << 10,
	OP_UNLINK = 1u << 11,
	OP_SYMLINK = 1u << 12,
	OP_FCHMOD = 1u << 13,
	OP_LINK = 1u << 14,
	OP_ALL = (1u << 15) - 1, /* the default: what the store, audit and key sweeps fail */
	OP_STAT = 1u << 15,
	OP_READLINK = 1u << 16,
	OP_CHOWN = 1u << 17,
	OP_RANDOM = 1u << 18,
	OP_READDIR = 1u << 19,
	OP_CLOSE = 1u << 20,
	OP_EVERY = (1u << 21) - 1,
};

static const struct {
	const char *name;
	unsigned op;
} op_names[] = {
	{ "write", OP_WRITE },
	{ "pwrite", OP_PWRITE },
	{ "writev", OP_WRITEV },
	{ "fsync", OP_FSYNC },
	{ "fdatasync", OP_FDATASYNC },
	{ "rename", OP_RENAME },
	{ "read", OP_READ },
	{ "pread", OP_PREAD },
	{ "open", OP_OPEN },
	{ "ftruncate", OP_FTRUNCATE },
	{ "mkdir", OP_MKDIR },
	{ "unlink", OP_UNLINK },
	{ "symlink", OP_SYMLINK },
	{ "fchmod", OP_FCHMOD },
	{ "link", OP_LINK },
	{ "stat", OP_STAT },
	{ "readlink", OP_READLINK },
	{ "chown", OP_CHOWN },
	{ "random", OP_RANDOM },
	{ "readdir", OP_READDIR },
	{ "close", OP_CLOSE },
	{ "all", OP_EVERY },
};

struct spec {
	bool on;
	unsigned ops;
	char under[PATH_MAX];
	unsigned long nth;
	int err;
	bool persist, partial;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct spec spec;
static unsigned long count;
static bool ready;
static const char *control;
static struct stat control_seen; /* st_ino 0: absent when last looked */
static int trace_fd = -1;

static const char *op_name(unsigned op)
{
	for (size_t i = 0; i < sizeof(op_names) / sizeof(op_names[0]); i++)
		if (op_names[i].op == op)
			return op_names[i].name;
	return "?";
}

static int errno_of(const char *s)
{
	if (strcmp(s, "EIO") == 0)
		return EIO;
	if (strcmp(s, "ENOSPC") == 0)
		return ENOSPC;
	if (strcmp(s, "EROFS") == 0)
		return EROFS;
	if (strcmp(s, "EDQUOT") == 0)
		return EDQUOT;
	return (int)strtol(s, NULL, 10);
}

static void parse(const char *text, struct spec *s)
{
	char buf[8192], *save = NULL;

	*s = (struct spec){ .on = true, .ops = OP_ALL, .err = EIO };
	snprintf(buf, sizeof(buf), "%s", text);
	for (char *w = strtok_r(buf, " \t\n", &save); w; w = strtok_r(NULL, " \t\n", &save)) {
		if (strcmp(w, "off") == 0) {
			s->on = false;
		} else if (strncmp(w, "ops=", 4) == 0) {
			char *save2 = NULL;

			s->ops = 0;
			for (char *o = strtok_r(w + 4, ",", &save2); o;
				o = strtok_r(NULL, ",", &save2))
				for (size_t i = 0; i < sizeof(op_names) / sizeof(op_names[0]); i++)
					if (strcmp(o, op_names[i].name) == 0)
						s->ops |= op_names[i].op;
		} else if (strncmp(w, "under=", 6) == 0) {
			snprintf(s->under, sizeof(s->under), "%s", w + 6);
		} else if (strncmp(w, "nth=", 4) == 0) {
			s->nth = strtoul(w + 4, NULL, 10);
		} else if (strncmp(w, "errno=", 6) == 0) {
			s->err = errno_of(w + 6);
		} else if (strcmp(w, "mode=persist") == 0) {
			s->persist = true;
		} else if (strcmp(w, "mode=once") == 0) {
			s->persist = false;
		} else if (strcmp(w, "partial") == 0) {
			s->partial = true;
		}
	}
	if (s->err <= 0)
		s->err = EIO;
}

static ssize_t sys_read_file(const char *path, char *buf, size_t size)
{
	int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
	ssize_t n, got = 0;

	if (fd < 0)
		return -1;
	while ((size_t)got < size - 1 &&
		(n = syscall(SYS_read, fd, buf + got, size - 1 - (size_t)got)) > 0)
		got += n;
	syscall(SYS_close, fd);
	buf[got] = 0;
	return got;
}

/* With the lock held: the control file's spec, if it changed since we last looked. */
static void reload(void)
{
	char text[8192];
	struct stat st;

	if (!control)
		return;
	if (syscall(SYS_newfstatat, AT_FDCWD, control, &st, 0) < 0) {
		if (control_seen.st_ino != 0 || !ready) {
			memset(&control_seen, 0, sizeof(control_seen));
			spec = (struct spec){ .on = false };
			count = 0;
		}
		return;
	}
	if (ready && st.st_ino == control_seen.st_ino && st.st_size == control_seen.st_size &&
		st.st_mtim.tv_sec == control_seen.st_mtim.tv_sec &&
		st.st_mtim.tv_nsec == control_seen.st_mtim.tv_nsec)
		return;
	control_seen = st;
	if (sys_read_file(control, text, sizeof(text)) < 0)
		text[0] = 0;
	parse(text, &spec);
	count = 0;
}

static void init_locked(void)
{
	const char *t;

	if (ready)
		return;
	control = getenv("KURA_FAULT_CONTROL");
	if (!control || !*control) {
		control = NULL;
		t = getenv("KURA_FAULT");
		if (t)
			parse(t, &spec);
	}
	t = getenv("KURA_FAULT_TRACE");
	if (t && *t)
		trace_fd = (int)syscall(SYS_openat, AT_FDCWD, t,
			O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	reload();
	ready = true;
}

/* For a process that preloads this library: its spec from now on, counted from zero, as a new
 * control file would set it. */
void kura_fault_set(const char *text);
void kura_fault_set(const char *text)
{
	pthread_mutex_lock(&lock);
	init_locked();
	parse(text, &spec);
	count = 0;
	pthread_mutex_unlock(&lock);
}

/* The path a descriptor names, or "" (a socket, a pipe: not under any prefix). */
static void fd_path(int fd, char out[PATH_MAX])
{
	char link[64];
	ssize_t n;

	if (fd == AT_FDCWD) {
		if (syscall(SYS_getcwd, out, PATH_MAX) < 0)
			out[0] = 0;
		return;
	}
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = syscall(SYS_readlinkat, AT_FDCWD, link, out, PATH_MAX - 1);
	out[n > 0 ? n : 0] = 0;
}

static void at_path(int dirfd, const char *path, char out[PATH_MAX])
{
	char dir[PATH_MAX];
	size_t n, len;

	if (!path) {
		out[0] = 0;
		return;
	}
	if (path[0] == '/') {
		snprintf(out, PATH_MAX, "%s", path);
		return;
	}
	fd_path(dirfd, dir);
	n = strlen(dir);
	len = strlen(path);
	if (n + 1 + len >= PATH_MAX) {
		out[0] = 0;
		return;
	}
	memcpy(out, dir, n);
	out[n] = '/';
	memcpy(out + n + 1, path, len + 1);
}

static void trace(unsigned long n, unsigned op, int fail, const char *path, const void *caller)
{
	const char *obj = "?", *slash;
	char line[PATH_MAX + 256];
	uintptr_t off = 0;
	Dl_info info;
	int len;

	if (trace_fd < 0)
		return;
	if (caller && dladdr(caller, &info) && info.dli_fname) {
		slash = strrchr(info.dli_fname, '/');
		obj = slash ? slash + 1 : info.dli_fname;
		off = (uintptr_t)caller - (uintptr_t)info.dli_fbase;
	}
	if (fail)
		len = snprintf(line, sizeof(line), "%d %lu %s FAIL(%s) %s %s+%#lx\n", (int)getpid(),
			n, op_name(op), strerrorname_np(fail) ?: "?", path[0] ? path : "-", obj,
			(unsigned long)off);
	else
		len = snprintf(line, sizeof(line), "%d %lu %s ok %s %s+%#lx\n", (int)getpid(), n,
			op_name(op), path[0] ? path : "-", obj, (unsigned long)off);
	if (len > 0)
		syscall(SYS_write, trace_fd, line,
			(size_t)(len < (int)sizeof(line) ? len : (int)sizeof(line) - 1));
}

/*
 * Whether this call fails, and with which errno (0: it goes through). path2 is a rename's
 * second path: either one may put the call under the prefix.
 */
static int decide(unsigned op, int fd, int dirfd, const char *path, const char *path2,
	const void *caller, bool *ret_partial)
{
	char p[PATH_MAX], p2[PATH_MAX];
	unsigned long n;
	int fail = 0;

	*ret_partial = false;
	pthread_mutex_lock(&lock);
	init_locked();
	reload();
	if (!spec.on || !(spec.ops & op)) {
		pthread_mutex_unlock(&lock);
		return 0;
	}
	if (path)
		at_path(dirfd, path, p);
	else
		fd_path(fd, p);
	p2[0] = 0;
	if (path2)
		at_path(dirfd, path2, p2);
	/* A call on no file at all (getrandom) is under every prefix. */
	if (spec.under[0] && (path || fd >= 0) && strncmp(p, spec.under, strlen(spec.under)) != 0 &&
		(!p2[0] || strncmp(p2, spec.under, strlen(spec.under)) != 0)) {
		pthread_mutex_unlock(&lock);
		return 0;
	}
	n = ++count;
	if (spec.nth && (n == spec.nth || (spec.persist && n > spec.nth)))
		fail = spec.err;
	*ret_partial = fail && spec.partial && n == spec.nth;
	trace(n, op, fail, p, caller);
	pthread_mutex_unlock(&lock);
	return fail;
}

/* The next definition of name: libc's. */
#define REAL(name)                                                                                 \
	static __typeof__(&name) real;                                                             \
	if (!real)                                                                                 \
	real = (__typeof__(&name))dlsym(RTLD_NEXT, #name)

#define FAIL_WITH(e)                                                                               \
	do {                                                                                       \
		errno = (e);                                                                       \
		return -1;                                                                         \
	} while (0)

static mode_t mode_arg(int flags, va_list ap)
{
	return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? (mode_t)va_arg(ap, int) : 0;
}

static int do_openat(int dirfd, const char *path, int flags, mode_t mode, const void *caller)
{
	REAL(openat64);
	bool partial;
	int e = decide(OP_OPEN, -1, dirfd, path, NULL, caller, &partial);

	if (e)
		FAIL_WITH(e);
	return real(dirfd, path, flags, mode);
}

int open(const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;

	va_start(ap, flags);
	mode = mode_arg(flags, ap);
	va_end(ap);
	return do_openat(AT_FDCWD, path, flags, mode, __builtin_return_address(0));
}

int openat(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;

	va_start(ap, flags);
	mode = mode_arg(flags, ap);
	va_end(ap);
	return do_openat(dirfd, path, flags, mode, __builtin_return_address(0));
}

/* Code built with large-file names calls these instead: the same calls on 64-bit Linux. */
int open64(const char *path, int flags, ...) __attribute__((alias("open")));
int openat64(int dirfd, const char *path, int flags, ...) __attribute__((alias("openat")));

/* A write that fails may first write half of what it was given (a disk filling up). */
ssize_t write(int fd, const void *buf, size_t len)
{
	REAL(write);
	bool partial;
	int e = decide(OP_WRITE, fd, 0, NULL, NULL, __builtin_return_address(0), &partial);

	if (e && partial && len > 1)
		return real(fd, buf, len / 2);
	if (e)
		FAIL_WITH(e);
	return real(fd, buf, len);
}

ssize_t pwrite64(int fd, const void *buf, size_t len, off_t off)
{
	REAL(pwrite64);
	bool partial;
	int e = decide(OP_PWRITE, fd, 0, NULL, NULL, __builtin_return_address(0), &partial);

	if (e && partial && len > 1)
		return real(fd, buf, len / 2, off);
	if (e)
		FAIL_WITH(e);
	return real(fd, buf, len, off);
}

ssize_t writev(int fd, const struct iovec *iov, int n)
{
	REAL(writev);
	bool partial;
	int e = decide(OP_WRITEV, fd, 0, NULL, NULL, __builtin_return_address(0), &partial);

	if (e && partial && n > 0 && iov[0].iov_len > 1) {
		struct iovec half = { iov[0].iov_base, iov[0].iov_len / 2 };

		return real(fd, &half, 1);
	}
	if (e)
		FAIL_WITH(e);
	return real(fd, iov, n);
}

/* A call on a descriptor that fails whole, or goes on to libc. */
#define WRAP_FD(ret, name, op, params, args)                                                       \
	ret name params                                                                            \
	{                                                                                          \
		REAL(name);                                                                        \
		bool partial;                                                                      \
		int e = decide(op, fd, 0, NULL, NULL, __builtin_return_address(0), &partial);      \
                                                                                                   \
		if (e)                                                                             \
			FAIL_WITH(e);                                                              \
		return real args;                                                                  \
	}

WRAP_FD(ssize_t, read, OP_READ, (int fd, void *buf, size_t len), (fd, buf, len))
WRAP_FD(ssize_t, pread64, OP_PREAD, (int fd, void *buf, size_t len, off_t off), (fd, buf, len, off))
WRAP_FD(int, fsync, OP_FSYNC, (int fd), (fd))
WRAP_FD(int, fdatasync, OP_FDATASYNC, (int fd), (fd))
WRAP_FD(int, ftruncate64, OP_FTRUNCATE, (int fd, off_t len), (fd, len))
WRAP_FD(int, fchmod, OP_FCHMOD, (int fd, mode_t mode), (fd, mode))

ssize_t pread(int fd, void *buf, size_t len, off_t off) __attribute__((alias("pread64")));
ssize_t pwrite(int fd, const void *buf, size_t len, off_t off) __attribute__((alias("pwrite64")));
int ftruncate(int fd, off_t len) __attribute__((alias("ftruncate64")));

static int do_renameat2(int olddir, const char *from, int newdir, const char *to, unsigned flags,
	const void *caller)
{
	char p2[PATH_MAX];
	bool partial;
	int e;

	/* Both ends resolved, each against its own directory. */
	at_path(newdir, to, p2);
	e = decide(OP_RENAME, -1, olddir, from, p2, caller, &partial);
	if (e)
		FAIL_WITH(e);
	return (int)syscall(SYS_renameat2, olddir, from, newdir, to, flags);
}

int rename(const char *from, const char *to)
{
	return do_renameat2(AT_FDCWD, from, AT_FDCWD, to, 0, __builtin_return_address(0));
}

int renameat(int olddir, const char *from, int newdir, const char *to)
{
	return do_renameat2(olddir, from, newdir, to, 0, __builtin_return_address(0));
}

int renameat2(int olddir, const char *from, int newdir, const char *to, unsigned flags)
{
	return do_renameat2(olddir, from, newdir, to, flags, __builtin_return_address(0));
}

/* A call on a path (the one a link or symlink makes, for those) that fails, or goes to the
 * kernel itself. */
#define WRAP_PATH_RET(ret, name, op, params, dirfd, path, sys)                                     \
	ret name params                                                                            \
	{                                                                                          \
		bool partial;                                                                      \
		int e = decide(op, -1, dirfd, path, NULL, __builtin_return_address(0), &partial);  \
                                                                                                   \
		if (e)                                                                             \
			FAIL_WITH(e);                                                              \
		return (ret)syscall sys;                                                           \
	}
#define WRAP_PATH(name, op, params, dirfd, path, sys)                                              \
	WRAP_PATH_RET(int, name, op, params, dirfd, path, sys)

/* The same for a call on a descriptor. */
#define WRAP_FD_SYS(name, op, params, sys)                                                         \
	int name params                                                                            \
	{                                                                                          \
		bool partial;                                                                      \
		int e = decide(op, fd, 0, NULL, NULL, __builtin_return_address(0), &partial);      \
                                                                                                   \
		if (e)                                                                             \
			FAIL_WITH(e);                                                              \
		return (int)syscall sys;                                                           \
	}

WRAP_PATH(mkdir, OP_MKDIR, (const char *path, mode_t mode), AT_FDCWD, path,
	(SYS_mkdirat, AT_FDCWD, path, mode))
WRAP_PATH(mkdirat, OP_MKDIR, (int dirfd, const char *path, mode_t mode), dirfd, path,
	(SYS_mkdirat, dirfd, path, mode))
WRAP_PATH(unlink, OP_UNLINK, (const char *path), AT_FDCWD, path, (SYS_unlinkat, AT_FDCWD, path, 0))
WRAP_PATH(unlinkat, OP_UNLINK, (int dirfd, const char *path, int flags), dirfd, path,
	(SYS_unlinkat, dirfd, path, flags))
WRAP_PATH(rmdir, OP_UNLINK, (const char *path), AT_FDCWD, path,
	(SYS_unlinkat, AT_FDCWD, path, AT_REMOVEDIR))
WRAP_PATH(symlink, OP_SYMLINK, (const char *target, const char *path), AT_FDCWD, path,
	(SYS_symlinkat, target, AT_FDCWD, path))
WRAP_PATH(symlinkat, OP_SYMLINK, (const char *target, int dirfd, const char *path), dirfd, path,
	(SYS_symlinkat, target, dirfd, path))
WRAP_PATH(link, OP_LINK, (const char *from, const char *to), AT_FDCWD, to,
	(SYS_linkat, AT_FDCWD, from, AT_FDCWD, to, 0))
WRAP_PATH(linkat, OP_LINK, (int olddir, const char *from, int newdir, const char *to, int flags),
	newdir, to, (SYS_linkat, olddir, from, newdir, to, flags))

/*
 * Calls that only ops= naming them (or ops=all) fails. The kernel's struct stat and statfs are
 * glibc's on 64-bit Linux, so the *64 names are the same calls.
 */
WRAP_FD_SYS(fstat, OP_STAT, (int fd, struct stat *st), (SYS_fstat, fd, st))
WRAP_FD_SYS(fstat64, OP_STAT, (int fd, struct stat64 *st), (SYS_fstat, fd, st))
WRAP_FD_SYS(fstatfs, OP_STAT, (int fd, struct statfs *st), (SYS_fstatfs, fd, st))
WRAP_FD_SYS(fstatfs64, OP_STAT, (int fd, struct statfs64 *st), (SYS_fstatfs, fd, st))
WRAP_PATH(fstatat, OP_STAT, (int dirfd, const char *path, struct stat *st, int flags), dirfd, path,
	(SYS_newfstatat, dirfd, path, st, flags))
WRAP_PATH(fstatat64, OP_STAT, (int dirfd, const char *path, struct stat64 *st, int flags), dirfd,
	path, (SYS_newfstatat, dirfd, path, st, flags))
WRAP_PATH(stat, OP_STAT, (const char *path, struct stat *st), AT_FDCWD, path,
	(SYS_newfstatat, AT_FDCWD, path, st, 0))
WRAP_PATH(stat64, OP_STAT, (const char *path, struct stat64 *st), AT_FDCWD, path,
	(SYS_newfstatat, AT_FDCWD, path, st, 0))
WRAP_PATH(lstat, OP_STAT, (const char *path, struct stat *st), AT_FDCWD, path,
	(SYS_newfstatat, AT_FDCWD, path, st, AT_SYMLINK_NOFOLLOW))
WRAP_PATH(lstat64, OP_STAT, (const char *path, struct stat64 *st), AT_FDCWD, path,
	(SYS_newfstatat, AT_FDCWD, path, st, AT_SYMLINK_NOFOLLOW))
WRAP_PATH(statx, OP_STAT, (int dirfd, const char *path, int flags, unsigned mask, struct statx *st),
	dirfd, path, (SYS_statx, dirfd, path, flags, mask, st))
WRAP_PATH_RET(ssize_t, readlink, OP_READLINK, (const char *path, char *buf, size_t len), AT_FDCWD,
	path, (SYS_readlinkat, AT_FDCWD, path, buf, len))
WRAP_PATH_RET(ssize_t, readlinkat, OP_READLINK,
	(int dirfd, const char *path, char *buf, size_t len), dirfd, path,
	(SYS_readlinkat, dirfd, path, buf, len))
WRAP_FD_SYS(fchown, OP_CHOWN, (int fd, uid_t uid, gid_t gid), (SYS_fchown, fd, uid, gid))
WRAP_PATH(chown, OP_CHOWN, (const char *path, uid_t uid, gid_t gid), AT_FDCWD, path,
	(SYS_fchownat, AT_FDCWD, path, uid, gid, 0))
WRAP_PATH(lchown, OP_CHOWN, (const char *path, uid_t uid, gid_t gid), AT_FDCWD, path,
	(SYS_fchownat, AT_FDCWD, path, uid, gid, AT_SYMLINK_NOFOLLOW))
WRAP_PATH(fchownat, OP_CHOWN, (int dirfd, const char *path, uid_t uid, gid_t gid, int flags), dirfd,
	path, (SYS_fchownat, dirfd, path, uid, gid, flags))

ssize_t getrandom(void *buf, size_t len, unsigned flags)
{
	bool partial;
	int e = decide(OP_RANDOM, -1, 0, NULL, NULL, __builtin_return_address(0), &partial);

	if (e)
		FAIL_WITH(e);
	return syscall(SYS_getrandom, buf, len, flags);
}

/* A close that fails has closed the descriptor all the same: Linux never leaves it open. */
int close(int fd)
{
	bool partial;
	int e = decide(OP_CLOSE, fd, 0, NULL, NULL, __builtin_return_address(0), &partial);
	int r = (int)syscall(SYS_close, fd);

	if (e)
		FAIL_WITH(e);
	return r;
}

/* A directory that cannot be read on: NULL with errno set, as readdir(3) reports an error. */
#define WRAP_READDIR(ent, name)                                                                    \
	struct ent *name(DIR *d)                                                                   \
	{                                                                                          \
		REAL(name);                                                                        \
		bool partial;                                                                      \
		int e = decide(OP_READDIR, dirfd(d), 0, NULL, NULL, __builtin_return_address(0),   \
			&partial);                                                                 \
                                                                                                   \
		if (e) {                                                                           \
			errno = e;                                                                 \
			return NULL;                                                               \
		}                                                                                  \
		return real(d);                                                                    \
	}

WRAP_READDIR(dirent, readdir)
WRAP_READDIR(dirent64, readdir64)

/* syscall(2) itself: the client's writer opens with openat2 through it, which no wrapper of a
 * libc function would see. Every other number, this library's own calls among them, goes on to
 * libc's as it came (six arguments, as libc's own syscall() takes them). */
long syscall(long nr, ...)
{
	REAL(syscall);
	va_list ap;
	long a[6];

	va_start(ap, nr);
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	if (nr == SYS_openat2) {
		bool partial;
		int e = decide(OP_OPEN, -1, (int)a[0], (const char *)a[1], NULL,
			__builtin_return_address(0), &partial);

		if (e)
			FAIL_WITH(e);
	}
	return real(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}

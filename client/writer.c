/* Safe, atomic writes of a secret set into a tmpfs, streamed one value at a time: no symlink
 * followed, nothing relied on that kura does not own, owner and mode before content, one rename
 * to swap sets. Touches plaintext: writes values out of guarded buffers. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "name.h"
#include "writer.h"

static int openat2_dir(int dirfd, const char *path, uint64_t resolve)
{
	/* No O_NOFOLLOW here: with O_DIRECTORY it turns a final symlink into ENOTDIR, while
	 * RESOLVE_NO_SYMLINKS refuses it (and every other one on the way) with ELOOP. */
	struct open_how how = {
		.flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC,
		.resolve = resolve,
	};
	long fd = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));

	if (fd < 0 && errno == ENOSYS) /* before Linux 5.6: only the last component is checked */
		fd = openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	return fd < 0 ? -errno : (int)fd;
}

/* A sub-directory of dirfd, never through a symlink and never outside dirfd. */
static int open_beneath(int dirfd, const char *path)
{
	return openat2_dir(dirfd, path,
		RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
}

static int fail_errno(struct kura_fail *f, int r, const char *dir, const char *what,
	const char *name)
{
	if (r == -ENOSPC || r == -EDQUOT)
		return kura_fail_set(f, r, KURA_EXIT_FULL, "%s is full: cannot %s %s", dir, what,
			name);
	if (r == -ELOOP || r == -EXDEV || r == -ENOTDIR || r == -EEXIST)
		return kura_fail_set(f, r, KURA_EXIT_WRITE_REFUSED,
			"refusing to %s %s/%s: a symlink or another file is in the way (%s)", what,
			dir, name, strerror(-r));
	return kura_fail_set(f, r, KURA_EXIT_SYSTEM, "cannot %s %s/%s: %s", what, dir, name,
		strerror(-r));
}

int kura_write_open_dir(const char *path, struct kura_fail *f)
{
	_cleanup_close_ int fd = -1;
	struct statfs sfs;

	fd = openat2_dir(AT_FDCWD, path, RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
	if (fd == -ELOOP)
		return kura_fail_set(f, fd, KURA_EXIT_WRITE_REFUSED,
			"refusing %s: the path holds a symlink", path);
	if (fd < 0)
		return kura_fail_set(f, fd,
			fd == -ENOENT || fd == -ENOTDIR ? KURA_EXIT_NOT_TMPFS : KURA_EXIT_SYSTEM,
			"cannot open the target directory %s: %s", path, strerror(-fd));
	if (fstatfs(fd, &sfs) < 0)
		return kura_fail_set(f, -errno, KURA_EXIT_SYSTEM, "cannot statfs %s: %s", path,
			strerror(errno));
	if (sfs.f_type != TMPFS_MAGIC && sfs.f_type != RAMFS_MAGIC)
		return kura_fail_set(f, -EXDEV, KURA_EXIT_NOT_TMPFS,
			"%s is not a tmpfs or ramfs: refusing to write secrets to a disk (mount one, "
			"e.g. --tmpfs %s:mode=0700)",
			path, path);
	return TAKE_FD(fd);
}

/* Whether the super-block options of mount mnt_id (in /proc/self/mountinfo) include opt. */
static bool mount_has_option(uint64_t mnt_id, const char *opt)
{
	_cleanup_free_ char *line = NULL;
	size_t cap = 0;
	bool found = false;
	FILE *fp = fopen("/proc/self/mountinfo", "re");

	if (!fp)
		return false;
	while (!found && getline(&line, &cap, fp) > 0) {
		char *sep, *o, *save = NULL;
		char *end;

		if (strtoull(line, &end, 10) != mnt_id || *end != ' ')
			continue;
		sep = strstr(line, " - ");
		/* " - fstype source superopts" */
		if (!sep || !(sep = strchr(sep + 3, ' ')) || !(sep = strchr(sep + 1, ' ')))
			break;
		sep[strcspn(sep, "\n")] = '\0';
		for (o = strtok_r(sep + 1, ",", &save); o; o = strtok_r(NULL, ",", &save))
			if (strcmp(o, opt) == 0)
				found = true;
		break;
	}
	fclose(fp);
	return found;
}

bool kura_write_swap_risk(int dir_fd)
{
	_cleanup_free_ char *line = NULL;
	struct statx stx;
	struct statfs sfs;
	size_t cap = 0;
	int lines = 0;
	FILE *fp;

	if (fstatfs(dir_fd, &sfs) < 0 || sfs.f_type != TMPFS_MAGIC) /* ramfs never swaps */
		return false;
	fp = fopen("/proc/swaps", "re");
	if (!fp)
		return false;
	while (getline(&line, &cap, fp) > 0)
		lines++;
	fclose(fp);
	if (lines < 2) /* the header only: no swap */
		return false;
	if (statx(dir_fd, "", AT_EMPTY_PATH, STATX_MNT_ID, &stx) < 0 ||
		!(stx.stx_mask & STATX_MNT_ID))
		return true;
	return !mount_has_option(stx.stx_mnt_id, "noswap");
}

/* Removes name under dirfd and everything below it, following no symlink. Best effort. */
static void remove_tree(int dirfd, const char *name, int depth)
{
	_cleanup_close_ int fd = -1;
	struct dirent *de;
	DIR *d;
	int dup_fd;

	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		unlinkat(dirfd, name, 0);
		return;
	}
	if (depth < 256) {
		fchmod(fd, 0700); /* a non-root owner needs w to empty its own 0500 directory */
		dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
		d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
		if (!d && dup_fd >= 0)
			close(dup_fd);
		while (d && (de = readdir(d))) {
			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			if (de->d_type == DT_DIR)
				remove_tree(fd, de->d_name, depth + 1);
			else
				unlinkat(fd, de->d_name, 0);
		}
		if (d)
			closedir(d);
	}
	unlinkat(dirfd, name, AT_REMOVEDIR);
}

/* Four random bytes for a fresh name, or -errno (-EIO if the kernel gave fewer). */
static int random_u32(uint32_t *ret)
{
	ssize_t n = getrandom(ret, sizeof(*ret), 0);

	return n == (ssize_t)sizeof(*ret) ? 0 : n < 0 ? -errno : -EIO;
}

struct kura_write_txn {
	int dir_fd;      /* borrowed from the caller */
	const char *dir; /* for messages */
	struct kura_write_opts o;
	uid_t euid;
	int set_fd; /* the new set's directory */
	size_t n;   /* values written into it */
	char set_name[64];
};

/* A directory stream of its own over fd (a dup would share fd's offset with every other). */
static DIR *open_stream(int fd)
{
	int own = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d;

	if (own < 0)
		return NULL;
	d = fdopendir(own);
	if (!d)
		close(own);
	return d;
}

static bool is_dir_entry(int dirfd, const struct dirent *de)
{
	struct stat st;

	if (de->d_type != DT_UNKNOWN)
		return de->d_type == DT_DIR;
	return fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

static bool dot_or_dotdot(const char *name)
{
	return strcmp(name, ".") == 0 || strcmp(name, "..") == 0;
}

/* The first segment of name, into buf (which holds KURA_NAME_MAX + 1). */
static void top_of(const char *name, char *buf)
{
	size_t n = strcspn(name, "/");

	memcpy(buf, name, n);
	buf[n] = '\0';
}

/* An absolute path without "." or ".." segments: its ancestors can be named by cutting it. */
static bool plain_path(const char *p)
{
	if (p[0] != '/')
		return false;
	for (const char *s = p; s; s = strchr(s + 1, '/')) {
		size_t n = strcspn(s + 1, "/");

		if ((n == 1 && s[1] == '.') || (n == 2 && s[1] == '.' && s[2] == '.'))
			return false;
	}
	return true;
}

/* The directory level levels above dir, named for a message. */
static void ancestor_name(const char *dir, int level, char *buf, size_t size)
{
	size_t len = strlen(dir);

	if (!plain_path(dir)) {
		snprintf(buf, size, "the directory %d level%s above %s", level,
			level == 1 ? "" : "s", dir);
		return;
	}
	while (len > 1 && dir[len - 1] == '/')
		len--;
	for (int l = 0; l < level; l++) {
		while (len > 1 && dir[len - 1] != '/')
			len--;
		while (len > 1 && dir[len - 1] == '/')
			len--;
	}
	snprintf(buf, size, "%.*s", (int)len, dir);
}

/*
 * Who can change what DIR holds: its owner, whoever may write it, and whoever may rename it or
 * a directory above it. Only kura's euid and root may, so a link kura made stays kura's. A
 * sticky directory above is fine (others cannot rename what is not theirs, as in /tmp); DIR
 * itself is not, since others could still add entries. ACLs show in the group bits (the mask).
 */
static int check_dir(int dir_fd, const char *dir, uid_t euid, struct kura_fail *f)
{
	_cleanup_close_ int cur = -1;
	struct stat st, up;
	char where[512];

	if (fstat(dir_fd, &st) < 0)
		return kura_fail_set(f, -errno, KURA_EXIT_SYSTEM, "cannot stat %s: %s", dir,
			strerror(errno));
	if (st.st_uid != euid && st.st_uid != 0)
		return kura_fail_set(f, -EPERM, KURA_EXIT_WRITE_REFUSED,
			"refusing %s: it belongs to uid "
			"%u, who could plant or repoint the links the app follows; kura (uid %u) writes "
			"only into a directory of its own or root's; nothing written",
			dir, (unsigned)st.st_uid, (unsigned)euid);
	if (st.st_mode & (S_IWGRP | S_IWOTH))
		return kura_fail_set(f, -EPERM, KURA_EXIT_WRITE_REFUSED,
			"refusing %s: others can write it "
			"(mode %04o), so they could plant or repoint the links the app follows; nothing "
			"written (mount a tmpfs of kura's own there, e.g. --tmpfs %s:mode=0700)",
			dir, (unsigned)(st.st_mode & 07777), dir);
	cur = fcntl(dir_fd, F_DUPFD_CLOEXEC, 3);
	if (cur < 0)
		return kura_fail_set(f, -errno, KURA_EXIT_SYSTEM, "cannot inspect %s: %s", dir,
			strerror(errno));
	/* Up through "..", which crosses mount points and stops at our root (its own parent). */
	for (int level = 1; level < 4096; level++) {
		int parent = openat(cur, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);

		if (parent < 0 || fstat(parent, &up) < 0) {
			int e = errno;

			if (parent >= 0)
				close(parent);
			return kura_fail_set(f, -e, KURA_EXIT_SYSTEM,
				"cannot inspect the directories "
				"above %s: %s",
				dir, strerror(e));
		}
		close(cur);
		cur = parent;
		if (up.st_dev == st.st_dev && up.st_ino == st.st_ino)
			return 0;
		ancestor_name(dir, level, where, sizeof(where));
		if (up.st_uid != euid && up.st_uid != 0)
			return kura_fail_set(f, -EPERM, KURA_EXIT_WRITE_REFUSED,
				"refusing %s: %s above it "
				"belongs to uid %u, who could replace it; nothing written",
				dir, where, (unsigned)up.st_uid);
		if ((up.st_mode & (S_IWGRP | S_IWOTH)) && !(up.st_mode & S_ISVTX))
			return kura_fail_set(f, -EPERM, KURA_EXIT_WRITE_REFUSED,
				"refusing %s: others can "
				"write %s above it (mode %04o, not sticky), so they could replace it; "
				"nothing written",
				dir, where, (unsigned)(up.st_mode & 07777));
		st = up;
	}
	return 0;
}

/*
 * The symlink name under dirfd, if kura's euid owns it: 1 with its text in buf, 0 if nothing is
 * there, -EEXIST if it is not a symlink, -EPERM if another user owns it (*ret_uid), -ELOOP if
 * its text is longer than any kura writes.
 */
static int read_own_link(int dirfd, const char *name, uid_t euid, char *buf, size_t size,
	uid_t *ret_uid)
{
	struct stat st;
	ssize_t n;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	*ret_uid = st.st_uid;
	if (!S_ISLNK(st.st_mode))
		return -EEXIST;
	if (st.st_uid != euid)
		return -EPERM;
	n = readlinkat(dirfd, name, buf, size);
	if (n < 0)
		return -errno;
	if ((size_t)n >= size)
		return -ELOOP;
	buf[n] = '\0';
	return 1;
}

/* A refusal for entry in DIR, in the way of what (a secret's name, or the set). */
static int refuse_entry(struct kura_fail *f, int r, const char *dir, const char *entry, uid_t owner,
	const char *what)
{
	if (r == -EPERM)
		return kura_fail_set(f, r, KURA_EXIT_WRITE_REFUSED,
			"refusing to write %s: %s/%s is a "
			"link of uid %u, not kura's own (planted?); nothing written",
			what, dir, entry, (unsigned)owner);
	if (r == -EEXIST || r == -ELOOP)
		return kura_fail_set(f, r, KURA_EXIT_WRITE_REFUSED,
			"refusing to write %s: %s/%s is "
			"already there and is not kura's link (a planted symlink or file?); nothing "
			"written",
			what, dir, entry);
	return fail_errno(f, r, dir, "inspect", entry);
}

/* "..data": absent, or kura's link to a set ("..kura_...", in DIR itself). */
static int check_data(int dir_fd, const char *dir, uid_t euid, struct kura_fail *f)
{
	char have[256];
	uid_t owner = 0;
	int r;

	r = read_own_link(dir_fd, KURA_DATA_LINK, euid, have, sizeof(have), &owner);
	if (r == 1 &&
		(strncmp(have, KURA_SET_PREFIX, strlen(KURA_SET_PREFIX)) != 0 || strchr(have, '/')))
		r = -ELOOP;
	return r < 0 ? refuse_entry(f, r, dir, KURA_DATA_LINK, owner, "the set") : 0;
}

/* The top-level entry top: 0 if absent, 1 if kura's link to "..data/<top>", else refused. */
static int check_top(struct kura_write_txn *t, const char *top, const char *what,
	struct kura_fail *f)
{
	char want[KURA_NAME_MAX + sizeof(KURA_DATA_LINK "/")], have[sizeof(want) + 1];
	uid_t owner = 0;
	int r;

	if (strncmp(top, "..", 2) == 0)
		return kura_fail_set(f, -EINVAL, KURA_EXIT_WRITE_REFUSED,
			"refusing to write %s: names starting with '..' are kura's own", what);
	snprintf(want, sizeof(want), KURA_DATA_LINK "/%s", top);
	r = read_own_link(t->dir_fd, top, t->euid, have, sizeof(have), &owner);
	if (r == 1 && strcmp(have, want) != 0)
		r = -ELOOP;
	return r < 0 ? refuse_entry(f, r, t->dir, top, owner, what) : r;
}

void kura_write_abort(struct kura_write_txn *t)
{
	if (!t)
		return;
	if (t->set_fd >= 0)
		close(t->set_fd);
	remove_tree(t->dir_fd, t->set_name, 0);
	free(t);
}

int kura_write_begin(int dir_fd, const char *dir, const struct kura_write_opts *o,
	struct kura_write_txn **ret, struct kura_fail *f)
{
	struct kura_write_txn *t;
	uid_t euid = geteuid();
	struct timespec ts;
	struct stat st;
	struct tm tm;
	uint32_t rnd;
	int r;

	r = check_dir(dir_fd, dir, euid, f);
	if (r < 0)
		return r;
	r = check_data(dir_fd, dir, euid, f);
	if (r < 0)
		return r;
	r = random_u32(&rnd);
	if (r < 0)
		return kura_fail_set(f, r, KURA_EXIT_SYSTEM,
			"cannot name a new set in %s: no "
			"random bytes: %s",
			dir, strerror(-r));
	t = calloc(1, sizeof(*t));
	if (!t)
		return kura_fail_set(f, -ENOMEM, KURA_EXIT_SYSTEM, "out of memory");
	*t = (struct kura_write_txn){ .dir_fd = dir_fd,
		.dir = dir,
		.o = *o,
		.euid = euid,
		.set_fd = -1 };
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(t->set_name, sizeof(t->set_name),
		KURA_SET_PREFIX "%04d%02d%02dT%02d%02d%02d.%09ld_%08x", tm.tm_year + 1900,
		tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec, rnd);
	/* 0700 and ours while it fills: nobody can plant anything in it before it is sealed. */
	if (mkdirat(dir_fd, t->set_name, 0700) < 0) {
		r = fail_errno(f, -errno, dir, "create", t->set_name);
		free(t);
		return r;
	}
	t->set_fd = open_beneath(dir_fd, t->set_name);
	r = t->set_fd;
	if (r >= 0)
		r = fstat(t->set_fd, &st) < 0 || fchmod(t->set_fd, 0700) < 0 ? -errno : 0;
	if (r == 0 && st.st_uid != euid)
		r = -EPERM;
	if (r < 0) {
		fail_errno(f, r, dir, "open", t->set_name);
		kura_write_abort(t);
		return r;
	}
	*ret = t;
	return 0;
}

int kura_write_check(struct kura_write_txn *t, const char *name, struct kura_fail *f)
{
	char top[KURA_NAME_MAX + 1];
	const char *why = kura_name_invalid(name, strlen(name));
	int r;

	if (why)
		return kura_fail_set(f, -EINVAL, KURA_EXIT_WRITE_REFUSED,
			"refusing to write '%s': %s", name, why);
	top_of(name, top);
	r = check_top(t, top, name, f);
	return r < 0 ? r : 0;
}

static int clash(struct kura_fail *f, const char *name)
{
	return kura_fail_set(f, -EEXIST, KURA_EXIT_PROTOCOL,
		"refusing to write %s: the set "
		"holds it twice, or as both a secret and a prefix of another; nothing written",
		name);
}

static int write_one(struct kura_write_txn *t, const char *name, const struct kura_secbuf *value,
	struct kura_fail *f)
{
	char seg[KURA_NAME_MAX + 1], tmp[KURA_NAME_MAX + 64];
	const char *p = name, *slash;
	_cleanup_close_ int cur = -1, file = -1;
	struct stat st;
	uint32_t rnd;
	int r;

	cur = fcntl(t->set_fd, F_DUPFD_CLOEXEC, 3);
	if (cur < 0)
		return fail_errno(f, -errno, t->dir, "write", name);
	while ((slash = strchr(p, '/'))) {
		int next;

		memcpy(seg, p, (size_t)(slash - p));
		seg[slash - p] = '\0';
		if (mkdirat(cur, seg, 0700) < 0 && errno != EEXIST)
			return fail_errno(f, -errno, t->dir, "create a directory for", name);
		next = open_beneath(cur, seg);
		if (next == -ENOTDIR)
			return clash(f, name);
		if (next < 0)
			return fail_errno(f, next, t->dir, "create a directory for", name);
		close(cur);
		cur = next;
		/* Nobody else can reach into the 0700 set; checked all the same. A directory that
		 * cannot be looked at is an I/O error, not something in the way. */
		if (fstat(cur, &st) < 0)
			return fail_errno(f, -errno, t->dir, "inspect a directory for", name);
		if (st.st_uid != t->euid)
			return fail_errno(f, -EEXIST, t->dir, "create a directory for", name);
		p = slash + 1;
	}
	r = random_u32(&rnd);
	if (r < 0)
		return fail_errno(f, r, t->dir, "name a temporary file for", name);
	snprintf(tmp, sizeof(tmp), ".%s.kura-tmp-%08x", p, rnd);
	file = openat(cur, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0);
	if (file < 0)
		return fail_errno(f, -errno, t->dir, "create", name);
	/* Owner and mode before the first byte: nobody else may open it at any moment. */
	if ((t->o.uid != (uid_t)-1 || t->o.gid != (gid_t)-1) &&
		fchown(file, t->o.uid, t->o.gid) < 0) {
		r = -errno;
		unlinkat(cur, tmp, 0);
		return fail_errno(f, r, t->dir, "set the owner of", name);
	}
	if (fchmod(file, t->o.mode) < 0) {
		r = -errno;
		unlinkat(cur, tmp, 0);
		return fail_errno(f, r, t->dir, "set the mode of", name);
	}
	r = kura_secbuf_write_fd(value, file);
	if (r == 0 && close(TAKE_FD(file)) < 0)
		r = -errno;
	if (r == 0 && renameat2(cur, tmp, cur, p, RENAME_NOREPLACE) < 0)
		r = -errno;
	if (r < 0)
		unlinkat(cur, tmp, 0);
	if (r == -EEXIST)
		return clash(f, name);
	return r < 0 ? fail_errno(f, r, t->dir, "write", name) : 0;
}

int kura_write_add(struct kura_write_txn *t, const char *name, const struct kura_secbuf *value,
	struct kura_fail *f)
{
	int r;

	if (t->n >= KURA_SET_MAX)
		return kura_fail_set(f, -E2BIG, KURA_EXIT_PROTOCOL,
			"refusing to write %s: a set "
			"holds at most %d secrets; nothing written",
			name, KURA_SET_MAX);
	r = kura_write_check(t, name, f);
	if (r < 0)
		return r;
	r = write_one(t, name, value, f);
	if (r < 0)
		return r;
	t->n++;
	return 0;
}

/* Owner and mode of a directory we made, once its contents are in place. */
static int seal_dir(int fd, const struct kura_write_opts *o)
{
	mode_t m = 0700 | (o->mode & 0044) | ((o->mode & 0044) >> 2);

	if ((o->uid != (uid_t)-1 || o->gid != (gid_t)-1) && fchown(fd, o->uid, o->gid) < 0)
		return -errno;
	return fchmod(fd, m) < 0 ? -errno : 0;
}

/* Every directory below fd gets the owner and mode, deepest first (fd itself is left). */
static int seal_below(int fd, const struct kura_write_opts *o, int depth)
{
	struct dirent *de;
	DIR *d = open_stream(fd);
	int r = 0;

	if (!d)
		return -errno;
	while (r == 0 && (errno = 0, de = readdir(d))) {
		_cleanup_close_ int sub = -1;

		if (dot_or_dotdot(de->d_name) || !is_dir_entry(fd, de))
			continue;
		sub = open_beneath(fd, de->d_name);
		r = sub < 0 ? sub : depth >= 128 ? -ELOOP : seal_below(sub, o, depth + 1);
		if (r == 0)
			r = seal_dir(sub, o);
	}
	if (r == 0 && errno)
		r = -errno;
	closedir(d);
	return r;
}

static void free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* The entries at the top of the new set: the top-level links it needs. All of them, or an error:
 * a list cut short by a read error would swap in a set whose names have no link. */
static int list_tops(int set_fd, char ***ret, size_t *ret_n)
{
	struct dirent *de;
	char **names = NULL, **grown;
	size_t n = 0;
	DIR *d = open_stream(set_fd);
	int r = 0;

	if (!d)
		return -errno;
	while ((errno = 0, de = readdir(d))) {
		if (dot_or_dotdot(de->d_name))
			continue;
		grown = reallocarray(names, n + 1, sizeof(*names)); /* names only, no values */
		if (!grown || !(grown[n] = strdup(de->d_name))) {
			names = grown ? grown : names;
			r = -ENOMEM;
			break;
		}
		names = grown;
		n++;
	}
	if (r == 0 && errno)
		r = -errno;
	closedir(d);
	if (r < 0) {
		free_names(names, n);
		return r;
	}
	*ret = names;
	*ret_n = n;
	return 0;
}

/* Removes older sets, a swap link left by a crash, and kura's links whose names left the set.
 * Best effort. */
static void prune(int dirfd, const char *keep, char **tops, size_t n_tops, uid_t euid)
{
	char link[KURA_NAME_MAX + 16];
	struct dirent *de;
	DIR *d = open_stream(dirfd);
	uid_t owner;

	if (!d)
		return;
	while ((de = readdir(d))) {
		bool used = false;

		if (strncmp(de->d_name, KURA_SET_PREFIX, strlen(KURA_SET_PREFIX)) == 0) {
			if (strcmp(de->d_name, keep) != 0)
				remove_tree(dirfd, de->d_name, 0);
			continue;
		}
		if (strcmp(de->d_name, KURA_DATA_LINK) == 0 ||
			read_own_link(dirfd, de->d_name, euid, link, sizeof(link), &owner) != 1)
			continue;
		if (strncmp(de->d_name, KURA_DATA_LINK "_tmp_", strlen(KURA_DATA_LINK "_tmp_")) ==
			0) {
			unlinkat(dirfd, de->d_name, 0);
			continue;
		}
		if (strncmp(link, KURA_DATA_LINK "/", strlen(KURA_DATA_LINK "/")) != 0 ||
			strcmp(link + strlen(KURA_DATA_LINK "/"), de->d_name) != 0)
			continue; /* not one of ours */
		for (size_t i = 0; i < n_tops && !used; i++)
			used = strcmp(tops[i], de->d_name) == 0;
		if (!used)
			unlinkat(dirfd, de->d_name, 0);
	}
	closedir(d);
}

int kura_write_commit(struct kura_write_txn *t, struct kura_fail *f)
{
	char tmplink[64], target[KURA_NAME_MAX + 16];
	_cleanup_free_ bool *made = NULL;
	char **tops = NULL;
	size_t n_tops = 0;
	struct stat a, b;
	int r;

	r = seal_below(t->set_fd, &t->o, 0);
	if (r == 0)
		r = seal_dir(t->set_fd, &t->o);
	if (r < 0) {
		fail_errno(f, r, t->dir, "set the owner and mode of", "the new set");
		goto fail;
	}
	r = list_tops(t->set_fd, &tops, &n_tops);
	if (r == 0 && !(made = calloc(n_tops + 1, sizeof(*made))))
		r = -ENOMEM;
	if (r < 0) {
		if (r == -ENOMEM)
			kura_fail_set(f, r, KURA_EXIT_SYSTEM, "out of memory");
		else
			fail_errno(f, r, t->dir, "list the names of", t->set_name);
		goto fail;
	}
	/* DIR again, now that the set is complete: a fetch takes time, and DIR may have changed. */
	r = check_dir(t->dir_fd, t->dir, t->euid, f);
	if (r == 0)
		r = check_data(t->dir_fd, t->dir, t->euid, f);
	if (r < 0)
		goto fail;
	/* Gone or replaced is a refusal; a set that cannot be looked at is an I/O error. */
	if (fstatat(t->dir_fd, t->set_name, &a, AT_SYMLINK_NOFOLLOW) < 0 ||
		fstat(t->set_fd, &b) < 0)
		r = -errno;
	if (r < 0 && r != -ENOENT) {
		fail_errno(f, r, t->dir, "inspect", t->set_name);
		goto fail;
	}
	if (r < 0 || a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
		r = kura_fail_set(f, -ESTALE, KURA_EXIT_WRITE_REFUSED,
			"refusing to swap in %s/%s: it is "
			"no longer the set kura wrote; nothing written",
			t->dir, t->set_name);
		goto fail;
	}
	/* The links first, while "..data" still names the old set: a new name's link dangles
	 * for a moment, and a failure here leaves the old set whole. */
	for (size_t i = 0; i < n_tops; i++) {
		r = check_top(t, tops[i], tops[i], f);
		if (r < 0)
			goto fail;
		if (r == 1)
			continue;
		snprintf(target, sizeof(target), KURA_DATA_LINK "/%s", tops[i]);
		if (symlinkat(target, t->dir_fd, tops[i]) == 0) {
			made[i] = true;
			continue;
		}
		r = errno == EEXIST ? check_top(t, tops[i], tops[i], f) : -errno;
		if (r == 1)
			continue;
		if (r == 0) /* gone again since: a race we do not chase */
			r = -EEXIST;
		fail_errno(f, r, t->dir, "link", tops[i]);
		goto fail;
	}
	snprintf(tmplink, sizeof(tmplink), KURA_DATA_LINK "_tmp_%s",
		t->set_name + strlen(KURA_SET_PREFIX));
	if (symlinkat(t->set_name, t->dir_fd, tmplink) < 0) {
		r = fail_errno(f, -errno, t->dir, "create", tmplink);
		goto fail;
	}
	/* The swap: readers see the old set or the new one, never a mix. */
	if (renameat(t->dir_fd, tmplink, t->dir_fd, KURA_DATA_LINK) < 0) {
		r = fail_errno(f, -errno, t->dir, "swap in", KURA_DATA_LINK);
		unlinkat(t->dir_fd, tmplink, 0);
		goto fail;
	}
	prune(t->dir_fd, t->set_name, tops, n_tops, t->euid);
	free_names(tops, n_tops);
	close(t->set_fd);
	free(t);
	return 0;
fail:
	for (size_t i = 0; made && i < n_tops; i++)
		if (made[i])
			unlinkat(t->dir_fd, tops[i], 0);
	free_names(tops, n_tops);
	kura_write_abort(t);
	return r;
}

/* Safe, atomic writes of a secret set into a tmpfs: no symlink followed, owner and mode before
 * content, one rename to swap sets. Touches plaintext: writes values out of guarded buffers. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

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
	return openat2_dir(dirfd, path, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
}

static int fail_errno(struct kura_fail *f, int r, const char *dir, const char *what,
	const char *name)
{
	if (r == -ENOSPC || r == -EDQUOT)
		return kura_fail_set(f, r, KURA_EXIT_FULL, "%s is full: cannot %s %s", dir, what, name);
	if (r == -ELOOP || r == -EXDEV || r == -ENOTDIR || r == -EEXIST)
		return kura_fail_set(f, r, KURA_EXIT_REFUSED,
			"refusing to %s %s/%s: a symlink or another file is in the way (%s)", what, dir,
			name, strerror(-r));
	return kura_fail_set(f, r, KURA_EXIT_SYSTEM, "cannot %s %s/%s: %s", what, dir, name,
		strerror(-r));
}

int kura_write_open_dir(const char *path, struct kura_fail *f)
{
	_cleanup_close_ int fd = -1;
	struct statfs sfs;

	fd = openat2_dir(AT_FDCWD, path, RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
	if (fd == -ELOOP)
		return kura_fail_set(f, fd, KURA_EXIT_REFUSED,
			"refusing %s: the path holds a symlink", path);
	if (fd < 0)
		return kura_fail_set(f, fd, fd == -ENOENT || fd == -ENOTDIR ? KURA_EXIT_NOT_TMPFS :
			KURA_EXIT_SYSTEM, "cannot open the target directory %s: %s", path, strerror(-fd));
	if (fstatfs(fd, &sfs) < 0)
		return kura_fail_set(f, -errno, KURA_EXIT_SYSTEM, "cannot statfs %s: %s", path,
			strerror(errno));
	if (sfs.f_type != TMPFS_MAGIC && sfs.f_type != RAMFS_MAGIC)
		return kura_fail_set(f, -EXDEV, KURA_EXIT_NOT_TMPFS,
			"%s is not a tmpfs or ramfs: refusing to write secrets to a disk (mount one, "
			"e.g. --tmpfs %s:mode=0700)", path, path);
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

/* The first segment of name, into buf (which holds KURA_NAME_MAX + 1). */
static void top_of(const char *name, char *buf)
{
	size_t n = strcspn(name, "/");

	memcpy(buf, name, n);
	buf[n] = '\0';
}

/* Whether the entry top under dirfd is absent or kura's link to "..data/<top>". */
static int check_top(int dirfd, const char *top)
{
	char want[KURA_NAME_MAX + sizeof(KURA_DATA_LINK "/")], have[sizeof(want) + 1];
	struct stat st;
	ssize_t n;

	if (fstatat(dirfd, top, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISLNK(st.st_mode))
		return -EEXIST;
	snprintf(want, sizeof(want), KURA_DATA_LINK "/%s", top);
	n = readlinkat(dirfd, top, have, sizeof(have) - 1);
	if (n < 0)
		return -errno;
	have[n] = '\0';
	return strcmp(have, want) == 0 ? 1 : -ELOOP;
}

/* Every top-level entry the set needs, and "..data", must be ours or absent. */
static int preflight(int dirfd, const char *dir, const struct kura_secret_set *set,
	struct kura_fail *f)
{
	char top[KURA_NAME_MAX + 1], link[256];
	struct stat st;
	ssize_t n;
	int r;

	if (fstatat(dirfd, KURA_DATA_LINK, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		n = S_ISLNK(st.st_mode) ? readlinkat(dirfd, KURA_DATA_LINK, link, sizeof(link) - 1) : -1;
		if (n > 0)
			link[n] = '\0';
		if (n <= 0 || strncmp(link, KURA_SET_PREFIX, strlen(KURA_SET_PREFIX)) != 0 ||
			strchr(link, '/'))
			return kura_fail_set(f, -EEXIST, KURA_EXIT_REFUSED,
				"refusing to write: %s/" KURA_DATA_LINK " exists and is not kura's link",
				dir);
	} else if (errno != ENOENT) {
		return fail_errno(f, -errno, dir, "inspect", KURA_DATA_LINK);
	}
	for (size_t i = 0; i < set->n; i++) {
		top_of(set->items[i].name, top);
		if (strncmp(top, "..", 2) == 0)
			return kura_fail_set(f, -EINVAL, KURA_EXIT_REFUSED,
				"refusing to write %s: names starting with '..' are kura's own",
				set->items[i].name);
		r = check_top(dirfd, top);
		if (r == -EEXIST || r == -ELOOP)
			return kura_fail_set(f, r, KURA_EXIT_REFUSED,
				"refusing to write %s/%s: %s is already there and is not kura's link "
				"(a planted symlink or file?); nothing was written", dir,
				set->items[i].name, top);
		if (r < 0)
			return fail_errno(f, r, dir, "inspect", top);
	}
	return 0;
}

static int write_one(int setfd, const char *dir, const struct kura_write_opts *o,
	const struct kura_secret *s, struct kura_fail *f)
{
	char seg[KURA_NAME_MAX + 1], tmp[KURA_NAME_MAX + 64];
	const char *p = s->name, *slash;
	_cleanup_close_ int cur = -1, file = -1;
	uint32_t rnd;
	int r;

	cur = fcntl(setfd, F_DUPFD_CLOEXEC, 3);
	if (cur < 0)
		return fail_errno(f, -errno, dir, "write", s->name);
	while ((slash = strchr(p, '/'))) {
		int next;

		memcpy(seg, p, (size_t)(slash - p));
		seg[slash - p] = '\0';
		if (mkdirat(cur, seg, 0700) < 0 && errno != EEXIST)
			return fail_errno(f, -errno, dir, "create a directory for", s->name);
		next = open_beneath(cur, seg);
		if (next < 0)
			return fail_errno(f, next, dir, "create a directory for", s->name);
		close(cur);
		cur = next;
		p = slash + 1;
	}
	if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
		return fail_errno(f, -EIO, dir, "write", s->name);
	snprintf(tmp, sizeof(tmp), ".%s.kura-tmp-%08x", p, rnd);
	file = openat(cur, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0);
	if (file < 0)
		return fail_errno(f, -errno, dir, "create", s->name);
	/* Owner and mode before the first byte: nobody else may open it at any moment. */
	if ((o->uid != (uid_t)-1 || o->gid != (gid_t)-1) && fchown(file, o->uid, o->gid) < 0) {
		r = -errno;
		unlinkat(cur, tmp, 0);
		return fail_errno(f, r, dir, "set the owner of", s->name);
	}
	if (fchmod(file, o->mode) < 0) {
		r = -errno;
		unlinkat(cur, tmp, 0);
		return fail_errno(f, r, dir, "set the mode of", s->name);
	}
	r = kura_secbuf_write_fd(s->value, file);
	if (r == 0 && close(TAKE_FD(file)) < 0)
		r = -errno;
	if (r == 0 && renameat2(cur, tmp, cur, p, RENAME_NOREPLACE) < 0)
		r = -errno;
	if (r < 0) {
		unlinkat(cur, tmp, 0);
		return fail_errno(f, r, dir, "write", s->name);
	}
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

/* Each directory inside the new set gets the owner and mode; the set directory last. */
static int seal_dirs(int setfd, const char *dir, const struct kura_write_opts *o,
	const struct kura_secret_set *set, struct kura_fail *f)
{
	char sub[KURA_NAME_MAX + 1];
	int r;

	for (size_t i = 0; i < set->n; i++) {
		const char *name = set->items[i].name;

		for (const char *s = strchr(name, '/'); s; s = strchr(s + 1, '/')) {
			_cleanup_close_ int fd = -1;

			memcpy(sub, name, (size_t)(s - name));
			sub[s - name] = '\0';
			fd = open_beneath(setfd, sub);
			r = fd < 0 ? fd : seal_dir(fd, o);
			if (r < 0)
				return fail_errno(f, r, dir, "set the owner and mode of", sub);
		}
	}
	r = seal_dir(setfd, o);
	return r < 0 ? fail_errno(f, r, dir, "set the owner and mode of", "the new set") : 0;
}

/* Removes older sets and top-level links whose names left the set. Best effort. */
static void prune(int dirfd, const char *keep, const struct kura_secret_set *set)
{
	char top[KURA_NAME_MAX + 1], link[KURA_NAME_MAX + 16];
	struct dirent *de;
	int dup_fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
	DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;

	if (!d) {
		if (dup_fd >= 0)
			close(dup_fd);
		return;
	}
	while ((de = readdir(d))) {
		bool used = false;
		ssize_t n;

		if (strncmp(de->d_name, KURA_SET_PREFIX, strlen(KURA_SET_PREFIX)) == 0) {
			if (strcmp(de->d_name, keep) != 0)
				remove_tree(dirfd, de->d_name, 0);
			continue;
		}
		if (de->d_type != DT_LNK || strcmp(de->d_name, KURA_DATA_LINK) == 0)
			continue;
		n = readlinkat(dirfd, de->d_name, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = '\0';
		if (strncmp(link, KURA_DATA_LINK "/", strlen(KURA_DATA_LINK "/")) != 0 ||
			strcmp(link + strlen(KURA_DATA_LINK "/"), de->d_name) != 0)
			continue; /* not one of ours */
		for (size_t i = 0; i < set->n && !used; i++) {
			top_of(set->items[i].name, top);
			used = strcmp(top, de->d_name) == 0;
		}
		if (!used)
			unlinkat(dirfd, de->d_name, 0);
	}
	closedir(d);
}

int kura_write_set(int dirfd, const char *dir, const struct kura_write_opts *o,
	const struct kura_secret_set *set, struct kura_fail *f)
{
	char setname[64], tmplink[64], top[KURA_NAME_MAX + 1], target[KURA_NAME_MAX + 16];
	_cleanup_close_ int setfd = -1;
	struct timespec ts;
	struct tm tm;
	uint32_t rnd;
	int r;

	r = preflight(dirfd, dir, set, f);
	if (r < 0)
		return r;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
		return kura_fail_set(f, -EIO, KURA_EXIT_SYSTEM, "no random bytes");
	snprintf(setname, sizeof(setname), KURA_SET_PREFIX "%04d%02d%02dT%02d%02d%02d.%09ld_%08x",
		tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		ts.tv_nsec, rnd);
	snprintf(tmplink, sizeof(tmplink), KURA_DATA_LINK "_tmp_%08x", rnd);

	/* 0700 and ours while it fills: nobody can plant anything in it before it is sealed. */
	if (mkdirat(dirfd, setname, 0700) < 0)
		return fail_errno(f, -errno, dir, "create", setname);
	setfd = open_beneath(dirfd, setname);
	if (setfd < 0) {
		r = fail_errno(f, setfd, dir, "open", setname);
		goto fail;
	}
	for (size_t i = 0; i < set->n; i++) {
		r = write_one(setfd, dir, o, &set->items[i], f);
		if (r < 0)
			goto fail;
	}
	r = seal_dirs(setfd, dir, o, set, f);
	if (r < 0)
		goto fail;

	/* The swap: a new link renamed over the old one, so readers see one set or the other. */
	if (symlinkat(setname, dirfd, tmplink) < 0) {
		r = fail_errno(f, -errno, dir, "create", tmplink);
		goto fail;
	}
	if (renameat(dirfd, tmplink, dirfd, KURA_DATA_LINK) < 0) {
		r = fail_errno(f, -errno, dir, "swap in", KURA_DATA_LINK);
		unlinkat(dirfd, tmplink, 0);
		goto fail;
	}
	for (size_t i = 0; i < set->n; i++) {
		top_of(set->items[i].name, top);
		snprintf(target, sizeof(target), KURA_DATA_LINK "/%s", top);
		if (symlinkat(target, dirfd, top) == 0)
			continue;
		/* Already ours (from an earlier set, or an earlier name here); anything else is a
		 * file planted since the preflight. */
		r = errno == EEXIST ? check_top(dirfd, top) : -errno;
		if (r < 0)
			return fail_errno(f, r == -ELOOP ? -EEXIST : r, dir, "link", top);
	}
	prune(dirfd, setname, set);
	return 0;
fail:
	remove_tree(dirfd, setname, 0);
	return r;
}

/* Whether nobody but root and one user can change what a path names (see safepath.h). No
 * plaintext. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "safepath.h"

__attribute__((format(printf, 4, 5))) static int say(char *why, size_t n, int r, const char *fmt,
	...)
{
	va_list ap;

	if (why && n) {
		va_start(ap, fmt);
		vsnprintf(why, n, fmt, ap);
		va_end(ap);
	}
	return r;
}

/* One component, named `what`: its owner, and who else may write it. */
static int check(const char *what, const struct stat *st, uid_t uid, bool last, char *why, size_t n)
{
	if (st->st_uid != 0 && st->st_uid != uid) {
		if (uid == 0)
			return say(why, n, -EPERM, "%s is owned by uid %u, not by root", what,
				(unsigned)st->st_uid);
		return say(why, n, -EPERM, "%s is owned by uid %u, not by root or uid %u", what,
			(unsigned)st->st_uid, (unsigned)uid);
	}
	if (!(st->st_mode & (S_IWGRP | S_IWOTH)))
		return 0;
	/* In a sticky directory nobody can rename or remove another user's entry, and the
	 * next component's owner is checked in turn. The last component has no next. */
	if (!last && S_ISDIR(st->st_mode) && (st->st_mode & S_ISVTX) && st->st_uid == 0)
		return 0;
	return say(why, n, -EPERM, "%s is writable by others (group or world: mode %04o%s)", what,
		(unsigned)(st->st_mode & 07777),
		S_ISDIR(st->st_mode) && !last && !(st->st_mode & S_ISVTX) ? ", not sticky" : "");
}

int kura_path_open_trusted(const char *path, uid_t uid, char *why, size_t n)
{
	_cleanup_free_ char *real = NULL;
	_cleanup_close_ int fd = -1;
	struct stat st;
	char *p, *end;
	int r;

	if (why && n)
		why[0] = '\0';
	/* Symlinks are resolved first, then every component of the result is opened without
	 * following any: a link swapped in meanwhile is refused, not followed. */
	real = realpath(path, NULL);
	if (!real)
		return say(why, n, -errno, "cannot resolve %s: %s", path, strerror(errno));
	fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0)
		return say(why, n, -errno, "cannot look at /: %s", strerror(errno));
	r = check("/", &st, uid, real[1] == '\0', why, n);
	if (r < 0)
		return r;
	for (p = real + 1; *p; p = *end ? end + 1 : end) {
		int next;
		char save;

		end = strchrnul(p, '/');
		save = *end;
		*end = '\0'; /* real is now the path up to this component: what messages name */
		next = openat(fd, p, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0)
			return say(why, n, -errno, "cannot look at %s: %s", real, strerror(errno));
		close(fd);
		fd = next;
		if (fstat(fd, &st) < 0)
			return say(why, n, -errno, "cannot look at %s: %s", real, strerror(errno));
		if (S_ISLNK(st.st_mode))
			return say(why, n, -EPERM, "%s became a symbolic link while it was checked",
				real);
		r = check(real, &st, uid, save == '\0', why, n);
		if (r < 0)
			return r;
		*end = save;
	}
	return TAKE_FD(fd);
}

int kura_path_trusted(const char *path, uid_t uid, char *why, size_t n)
{
	int fd = kura_path_open_trusted(path, uid, why, n);

	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}

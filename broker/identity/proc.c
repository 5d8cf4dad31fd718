/* Reading /proc/<pid> files through a directory fd bound to one process. No secrets. */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "macro.h"
#include "proc.h"

int kura_proc_read(int dirfd, const char *name, char *buf, size_t cap, size_t *ret_len,
	bool *ret_truncated)
{
	_cleanup_close_ int fd = -1;
	size_t len = 0;
	char extra;

	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	while (len < cap) {
		ssize_t k = read(fd, buf + len, cap - len);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (k == 0) {
			*ret_len = len;
			*ret_truncated = false;
			return 0;
		}
		len += (size_t)k;
		/* Each file read here (stat, status, cgroup) is made by a single seq_file show
		 * (proc_single_open): its first read returns all of it when it fits, so a first
		 * read that leaves room is the whole file, and the read of its end is saved. */
		if (len == (size_t)k && len < cap) {
			*ret_len = len;
			*ret_truncated = false;
			return 0;
		}
	}
	/* Full: one more byte tells "exactly cap" from "more". */
	for (;;) {
		ssize_t k = read(fd, &extra, 1);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		*ret_len = len;
		*ret_truncated = k > 0;
		return 0;
	}
}

/* Reading small files of one /proc/<pid> directory through a directory fd. No secrets. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/*
 * Read the file `name` under the open /proc/<pid> directory dirfd into buf (at most cap bytes).
 * *ret_truncated says the file holds more. -ESRCH when the process is gone (the file cannot be
 * opened, or reading says so), other -errno from openat/read. The symlink-free open (no
 * O_NOFOLLOW needed for /proc files, but set anyway) never leaves dirfd's process. Only for
 * files made by a single seq_file show (stat, status, cgroup): a first read that does not fill
 * buf is taken as the whole file.
 */
int kura_proc_read(int dirfd, const char *name, char *buf, size_t cap, size_t *ret_len,
	bool *ret_truncated);

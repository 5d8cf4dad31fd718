/* Writing a set of secrets into a tmpfs directory safely and atomically (the layout Kubernetes'
 * atomic writer uses). Touches plaintext: values go from guarded buffers into files. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "api.h"
#include "fail.h"

/*
 * DIR/..kura_<time>_<random>/<name>   each set in a fresh directory of its own
 * DIR/..data -> ..kura_<...>           swapped with one rename(2): the set changes at once
 * DIR/<top> -> ..data/<top>            one link per top-level name segment, made once
 * Readers open DIR/<name> and always see one whole set; an inotify user watches DIR itself for
 * IN_MOVED_TO of "..data" (or IN_DELETE_SELF of the file it opened through the link).
 */
#define KURA_DATA_LINK "..data"
#define KURA_SET_PREFIX "..kura_"

struct kura_write_opts {
	uid_t uid; /* (uid_t)-1: leave as created */
	gid_t gid;
	mode_t mode; /* of files; directories get rwx for the owner and x beside each r */
};

/*
 * Opens path as the target directory: no symlink anywhere in it (openat2 RESOLVE_NO_SYMLINKS),
 * and it must be a tmpfs or ramfs (KURA_EXIT_NOT_TMPFS otherwise). Returns an O_CLOEXEC fd.
 */
int kura_write_open_dir(const char *path, struct kura_fail *f);

/* Whether the tmpfs under fd can be swapped out: swap is on and the mount lacks "noswap". */
bool kura_write_swap_risk(int dir_fd);

/*
 * Writes every item of set (all must have values) into a fresh set directory, then swaps it in
 * and removes older sets. Before anything is written, each top-level name and "..data" must be
 * absent or kura's own link; anything else (a planted symlink, a file, a directory) is refused
 * with KURA_EXIT_REFUSED and nothing is written. Each file is created O_EXCL|O_NOFOLLOW under a
 * temporary name, owner and mode set before its first byte, then renamed into place. On any
 * failure the new set is removed and the old one, if any, stays in place.
 */
int kura_write_set(int dir_fd, const char *dir_path, const struct kura_write_opts *o,
	const struct kura_secret_set *set, struct kura_fail *f);

/* Writing a set of secrets into a tmpfs directory safely and atomically (the layout Kubernetes'
 * atomic writer uses), one value at a time. Touches plaintext: values go from guarded buffers
 * into files. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "fail.h"
#include "secbuf.h"

/*
 * DIR/..kura_<time>_<random>/<name>   each set in a fresh directory of its own
 * DIR/..data -> ..kura_<...>           swapped with one rename(2): the set changes at once
 * DIR/<top> -> ..data/<top>            one link per top-level name segment, made once
 * Readers open DIR/<name> and always see one whole set; an inotify user watches DIR itself for
 * IN_MOVED_TO of "..data" (or IN_DELETE_SELF of the file it opened through the link).
 *
 * Only kura's user (its effective uid) and root may be able to change what DIR holds: DIR must
 * belong to one of them and be writable by no group or other user (a tmpfs mounted mode 1777,
 * or a bind of /dev/shm, is refused), and so must every directory above it, unless it has the
 * sticky bit (which keeps others from renaming what is not theirs). "..data" and every
 * top-level link kura keeps from an earlier set must be symlinks owned by kura's euid with the
 * text kura gives them. Anything else is refused with KURA_EXIT_WRITE_REFUSED and nothing is
 * written.
 */
#define KURA_DATA_LINK "..data"
#define KURA_SET_PREFIX "..kura_"

struct kura_write_opts {
	uid_t uid; /* (uid_t)-1: leave as created */
	gid_t gid;
	mode_t mode; /* of files; directories get rwx for the owner and x beside each r */
};

/* A set being written. Everything the writer knows lives in it: no process-global state. */
struct kura_write_txn;

/*
 * Opens path as the target directory: no symlink anywhere in it (openat2 RESOLVE_NO_SYMLINKS),
 * and it must be a tmpfs or ramfs (KURA_EXIT_NOT_TMPFS otherwise). Returns an O_CLOEXEC fd.
 */
int kura_write_open_dir(const char *path, struct kura_fail *f);

/* Whether the tmpfs under fd can be swapped out: swap is on and the mount lacks "noswap". */
bool kura_write_swap_risk(int dir_fd);

/*
 * Starts a new set in dir_fd (from kura_write_open_dir; borrowed until commit or abort; dir_path
 * names it in messages): checks who can write DIR and its parents and that "..data" is absent
 * or kura's own, then makes the new set's directory, 0700 and kura's while it fills, so nobody
 * can open or plant anything in it. *ret is set only on success.
 */
int kura_write_begin(int dir_fd, const char *dir_path, const struct kura_write_opts *o,
	struct kura_write_txn **ret, struct kura_fail *f);

/* Whether name may be written: a valid name whose top-level entry in DIR is absent or kura's own
 * link (KURA_EXIT_WRITE_REFUSED otherwise). Lets a caller refuse before it fetches any value. */
int kura_write_check(struct kura_write_txn *t, const char *name, struct kura_fail *f);

/*
 * Writes value as name into the new set at once (the caller may wipe it right after): checked
 * as kura_write_check does, created O_EXCL|O_NOFOLLOW under a temporary name with owner and mode
 * set before its first byte, then renamed into place. At most KURA_SET_MAX names a set; a name
 * given twice, or as both a secret and a prefix of another, is refused (KURA_EXIT_PROTOCOL).
 * A failure leaves t as it was, for the caller to abort.
 */
int kura_write_add(struct kura_write_txn *t, const char *name, const struct kura_secbuf *value,
	struct kura_fail *f);

/*
 * Gives every directory of the new set its owner and mode, checks DIR again, makes the
 * top-level links the set needs (a foreign entry in the way is refused), swaps "..data" to the
 * new set with one rename, then removes older sets and kura's links that left the set (best
 * effort). On any failure before the rename the new set and the links made for it are removed
 * and the old set stays in place. Frees t either way.
 */
int kura_write_commit(struct kura_write_txn *t, struct kura_fail *f);

/* Removes the new set and frees t; NULL is fine. The old set, if any, stays in place. */
void kura_write_abort(struct kura_write_txn *t);

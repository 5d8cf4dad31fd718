/* Whether a path can be trusted: nobody but root and one user can change what it names. Used
 * for run directories (kuractl's admin.sock, kurad's own). No plaintext. */
#pragma once

#include <stddef.h>
#include <sys/types.h>

/*
 * path, with its symlinks resolved, and every directory above it up to "/" must be owned by
 * root or by uid, and writable by no one else: no group or other write bit, except on a
 * sticky directory owned by root (as /tmp), where nobody can replace what another user made.
 * So whoever is not root or uid cannot swap path or anything above it for their own.
 *
 * Returns 0 when path can be trusted. Otherwise -EPERM, with why (n bytes, may be NULL) saying
 * which component is wrong and how, as a sentence naming it; -ENOENT when path (or a part of
 * it) does not exist; or another -errno when a component cannot be looked at, with why set.
 */
int kura_path_trusted(const char *path, uid_t uid, char *why, size_t n);

/*
 * The same check, and on success an O_PATH descriptor (O_CLOEXEC) of exactly what was checked,
 * for the caller to work beneath (openat, or connect through /proc/self/fd/N/...), so nothing
 * can be swapped in between. The caller closes it.
 */
int kura_path_open_trusted(const char *path, uid_t uid, char *why, size_t n);

/* How each of kurad's processes locks itself down once it has what it needs: the user it runs
 * as, the capabilities it keeps, the files it may reach (Landlock) and the system calls it may
 * make (seccomp), all in one file (lockdown.c) so that they read side by side. No plaintext.
 * Internal to kurad. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "daemon-options.h"

enum kura_role { KURA_ROLE_SUPERVISOR, KURA_ROLE_KEEPER, KURA_ROLE_FRONT, KURA_ROLE_NET };

/* Whom the front runs as: the user named by cfg (default "kura"; without such a user, nobody,
 * with a warning). Resolved by the supervisor before any fork. -ENOENT for a user named
 * explicitly that does not exist. */
int kura_lockdown_front_user(const struct kura_daemon_config *cfg, uid_t *ret_uid, gid_t *ret_gid);

/* Lock the calling process down as role (uid/gid: the front's). With cfg->no_sandbox, logs a
 * warning and does nothing. 0 or -errno (logged): the process must then exit. */
int kura_lockdown(enum kura_role role, const struct kura_daemon_config *cfg, uid_t uid, gid_t gid);

/* The number of system calls role may make, for README and the benchmarks. */
size_t kura_lockdown_syscalls(enum kura_role role);

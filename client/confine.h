/* kura's sandbox: the part that talks to the broker and writes the set runs in a child under
 * no_new_privs and a seccomp allow-list, so the app kura execs inherits neither. No plaintext. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "fail.h"

struct kura_confined {
	pid_t pid; /* the confined child */
	int fd;    /* parent: the read end (its result, then one byte per rewrite); child: write */
	bool sent; /* child: the result went to the parent already */
};

/*
 * Forks a child that locks itself down (kura_confine_apply(dir)) and runs fn(ctx, c, f). The
 * child sends its result, f, to the parent once: with kura_confine_send (to go on working, as
 * the --watch watcher does after the first set), or when fn returns; then it exits. Fills c
 * (pid, and fd to read with kura_confine_result) and returns 0, or -errno with f filled.
 */
int kura_confine_start(const char *dir,
	int (*fn)(void *ctx, struct kura_confined *c, struct kura_fail *f), void *ctx,
	struct kura_confined *c, struct kura_fail *f);

/* Child side: sends f to the parent (once) and makes c->fd non-blocking for the bytes after. */
void kura_confine_send(struct kura_confined *c, const struct kura_fail *f);

/*
 * Parent side: waits for the child's result into f: 0 when the child succeeded, else f's exit
 * code. A child that ends without one (killed by SIGSYS for a call outside its allow-list, or by
 * anything else) is reaped and reported in f (KURA_EXIT_SYSTEM). If wait_exit, the child is
 * reaped after its result too (it exits right after sending); otherwise it goes on running.
 */
int kura_confine_result(struct kura_confined *c, bool wait_exit, struct kura_fail *f);

/* Says why a confined child ended, from its wait status, into f. */
int kura_confine_why(int status, struct kura_fail *f);

/* no_new_privs, Landlock (write only beneath dir, if not NULL) and the client's seccomp
 * allow-list on the calling process: 0 or -errno. */
int kura_confine_apply(const char *dir);

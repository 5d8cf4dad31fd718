/* kura run --watch: kura stays as a small parent of the app, follows the broker's revisions and
 * rewrites the set on a change. No plaintext here: values pass only through the refresh callback.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "api.h"
#include "confine.h"
#include "fail.h"

enum kura_on_change {
	KURA_ON_CHANGE_SIGNAL,  /* send sig to the app */
	KURA_ON_CHANGE_RESTART, /* SIGTERM, up to 10 s, SIGKILL, start it again */
	KURA_ON_CHANGE_EXEC,    /* run exec_argv as a separate child, waited for */
};

struct kura_watch {
	struct kura_broker broker;
	const struct kura_secret_set *only; /* the names this run writes; empty: all readable */
	uint64_t revision; /* the store revision the current set is at least as new as */
	enum kura_on_change on_change;
	int sig;
	char **exec_argv;
	/* Fetches and writes the whole set again: 0, or an exit code with f filled. */
	int (*refresh)(void *ctx, struct kura_fail *f);
	void *ctx;
};

/* Parses "signal:SIG", "restart" or "exec:CMD" (CMD split on spaces; no shell) into w. */
int kura_watch_parse_on_change(struct kura_watch *w, const char *s);

/*
 * The parent's side: starts cmd_argv as a child (the environment as received, the signal mask
 * as kura's was), forwards SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2 and SIGQUIT to it, reaps
 * every child, and applies on_change each time the confined watcher (started with
 * kura_confine_start, its first set written) says it rewrote the set. A watcher that dies is
 * reported once and the app keeps running. Returns the app's exit status (128 + signal when it
 * was killed), after ending the watcher; it does not return while the app runs.
 */
int kura_watch_run(struct kura_watch *w, char **cmd_argv, struct kura_confined *watcher);

/*
 * The watcher's side, in the confined child: long-polls /v1/watch, calls refresh on a change to
 * a name this run writes and then writes one byte to notify_fd. Broker errors never stop it: it
 * retries with backoff (1 s to 10 s) from the revision it last saw, and prints one line per
 * change of state. Never returns.
 */
__attribute__((noreturn)) void kura_watch_follow(struct kura_watch *w, int notify_fd);

/* The front's line to the key custody process: a pool of request channels (socketpairs), one
 * caller on each at a time, every call bounded. Touches plaintext: an answer may carry a value
 * (received into guarded memory, msg.c). Internal to kurad. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "msg.h"

struct kura_link;
struct kura_chan;

/* A pool over fds (taken). */
int kura_link_new(const int *fds, size_t n, struct kura_link **ret);
void kura_link_free(struct kura_link *l); /* NULL-safe */

/* A channel to call on, within timeout_ms: -ETIMEDOUT if none is free in time, -EPIPE once the
 * keeper is gone. */
int kura_link_take(struct kura_link *l, int timeout_ms, struct kura_chan **ret);
void kura_link_give(struct kura_link *l, struct kura_chan *c);

/*
 * Send b (with fd if >= 0) and receive the ANSWER within timeout_ms. -ETIMEDOUT: none in time
 * (the answer still owed is read and dropped before the channel serves again); -EPIPE: the
 * keeper is gone (every later call fails at once). An answer that breaks the protocol is fatal
 * to the front.
 */
int kura_link_call(struct kura_link *l, struct kura_chan *c, struct kura_msgb *b, int fd,
	int timeout_ms, struct kura_msg *ret);

/* Give c back with its answer m unused (its request went away): a refusal waiting for its
 * verdict is told "count it", and that answer owed. Frees m. */
void kura_link_abandon(struct kura_link *l, struct kura_chan *c, struct kura_msg *m);

/* take, call, give. */
int kura_link_ask(struct kura_link *l, struct kura_msgb *b, int fd, int timeout_ms,
	struct kura_msg *ret);

/* The channel's socket, for the test hooks that play a compromised front (hooks.h). */
int kura_link_chan_fd(const struct kura_chan *c);

/* Whether the keeper is known to be gone. */
bool kura_link_dead(struct kura_link *l);

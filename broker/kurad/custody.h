/* The key custody process's side of the workload API: it answers the front's messages from the
 * vault, deciding who the peer is itself, from the peer's own socket (passed with each request),
 * never from the front's word. Touches plaintext: a value leaves the vault into a guarded
 * message. Internal to kurad. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "identity.h"
#include "keeper.h"
#include "metrics.h"
#include "quota.h"
#include "recorder.h"

struct kura_custody_config {
	const char *workload_path; /* the socket a peer's connection must have been accepted on */
	unsigned watch_max_s;      /* the longest long poll, for forgetting the front's */
	const int *chans;          /* request channels (socketpair ends), one thread each */
	size_t n_chans;
	int events; /* READY and CHANGED go out here; STATS come in */
};

struct kura_custody;

/* Serve cfg's channels from keeper, resolver and rec (not owned): a thread per channel, one
 * that follows the store's changes for the front's long polls, one that reads the front's
 * counters. The fds are the custody's from now on. */
int kura_custody_start(const struct kura_custody_config *cfg, struct kura_keeper *keeper,
	struct kura_resolver *resolver, struct kura_recorder *rec, struct kura_custody **ret);

/* The counters the front sent last, and the revision its long polls were told of (status). */
void kura_custody_stats(struct kura_custody *k, int64_t *ret_rev, struct kura_quota_stats *ret);

/* Everything status and metrics show of the workload side: the front's counters as its last
 * STATS said (all zero, front_pid 0, before its first, a second after start), and the runtime
 * lookups made here on a cache miss. */
struct kura_custody_metrics {
	int64_t revision;
	struct kura_quota_stats quota;
	struct kura_front_metrics front;
	pid_t front_pid;
	struct kura_hist lookup;
};
void kura_custody_metrics(struct kura_custody *k, struct kura_custody_metrics *ret);

/* Tell the front the limits a reload set: it reads no file itself. */
void kura_custody_limits(struct kura_custody *k, double rate, double burst, unsigned watch_max_s);

/* Stop: close the channels, join. NULL-safe. */
void kura_custody_stop(struct kura_custody *k);

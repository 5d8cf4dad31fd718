/* kurad's net process, which makes every network connection the keeper needs (the runtimes' API
 * sockets, the audit sinks) and holds no key, and the keeper's client of it. No plaintext:
 * runtime answers and audit records only (records carry a value's fingerprint at most). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "audit-sink.h"
#include "msg.h"
#include "runtime.h"

#define KURA_NET_MAX_REQ 8 /* GET channels: requests the keeper can have in flight at once */

/*
 * The channels between the keeper and the net process, one end of each socketpair per side:
 * req: GET channels (a thread each on the net side); events: one per runtime, by its index in
 * the net side's kura_net_config; sinks: the audit records' channel (-1: none).
 */
struct kura_net_fds {
	int req[KURA_NET_MAX_REQ];
	size_t n_req;
	int events[KURA_MSG_NET_RUNTIMES];
	size_t n_events;
	int sinks;
};

/* Make the socketpairs (AF_UNIX, SOCK_STREAM, CLOEXEC): the keeper's ends into *keeper, the
 * net process's into *net. -EINVAL (n_req 0 or over KURA_NET_MAX_REQ, n_runtimes over
 * KURA_MSG_NET_RUNTIMES), -errno of socketpair with nothing left open. */
int kura_net_socketpairs(size_t n_req, size_t n_runtimes, bool sinks, struct kura_net_fds *keeper,
	struct kura_net_fds *net);
/* Close every fd in f (>= 0) and mark it -1. */
void kura_net_fds_close(struct kura_net_fds *f);

struct kura_net_runtime {
	const char *name; /* as kura_runtime_new() takes them */
	const char *endpoint;
};

struct kura_net_config {
	const struct kura_net_runtime *runtimes; /* index i answers on fds->events[i] and GETs
						  * naming runtime i */
	size_t n_runtimes;
	struct kura_sink_config sinks; /* started when fds->sinks >= 0 */
};

/*
 * The net process's work: makes c's runtimes and starts its sinks, then serves every channel
 * of fds (which it takes and closes) from a thread each until the keeper has closed them all;
 * stops the sinks (if no FLUSH did) and returns 0. Before serving: -EINVAL (a bad runtime or
 * sink spec, fds not matching c), -ENOMEM, the sinks' start errors, fds closed. A malformed
 * message from the keeper, or one out of turn, is fatal (kura_msg_fatal). libcurl must be
 * initialised (kura_runtime_global_init).
 */
int kura_net_serve(const struct kura_net_fds *fds, const struct kura_net_config *c);

/* ---- the keeper's side ---- */

struct kura_net_client;

/* A client of the net process over fds (the keeper's ends, taken). -EINVAL, -ENOMEM. */
int kura_net_client_new(const struct kura_net_fds *fds, struct kura_net_client **ret);
/* Close the channels (the net side's serve then returns); stops the sinks first if they still
 * run (with no time to flush). Watches must be over. NULL is fine. */
void kura_net_client_free(struct kura_net_client *c);

/*
 * A runtime called name whose inspect, find and watch go through c as runtime `index` of the
 * net side's config. Errors mean what they mean over a direct connection; the net process
 * gone is -EIO; a reply it breaks the protocol with is fatal (kura_msg_fatal). One watch per
 * runtime at a time (another: -EBUSY). c must outlive it.
 */
int kura_net_runtime_new(struct kura_net_client *c, const char *name, unsigned index,
	struct kura_runtime **ret);

/*
 * The sinks, run by the net process, as kura_sinks_* are used locally. start: a sender thread
 * and a reader of sink events, which calls fn (as kura_sink_event_fn: from another thread,
 * never once stop has begun). submit: copies the record into a queue of at most queue_max
 * (0: 10000) and returns; never blocks on I/O: when the queue is full the oldest is dropped,
 * and drops are reported (sink "net") at most once a second; a line over
 * KURA_MSG_NET_LINE_MAX is dropped too. stop: sends what is queued, asks the net process to
 * deliver within flush_ms and waits for it (at most flush_ms plus a second); joins the threads.
 */
int kura_net_sinks_start(struct kura_net_client *c, unsigned queue_max, kura_sink_event_fn fn,
	void *userdata);
void kura_net_sinks_submit(struct kura_net_client *c, const char *line, size_t len, uint64_t seq,
	const uint8_t mac[KURA_SINK_MAC_BYTES], bool notable);
void kura_net_sinks_stop(struct kura_net_client *c, unsigned flush_ms);
/* Records dropped on the keeper's side so far (a full queue, the net process gone). */
uint64_t kura_net_sinks_dropped(struct kura_net_client *c);
/* Records waiting in the keeper's queue to the net process now. */
uint64_t kura_net_sinks_queued(struct kura_net_client *c);

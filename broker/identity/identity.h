/* Workload identity: from a connected peer to who it is (host, or a container as its runtime
 * describes it), with a cache that the runtimes' event streams invalidate. No plaintext. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "cgroup.h"
#include "peer.h"
#include "who.h"
#include "runtime.h"

#define KURA_RESOLVER_TIMEOUT_MS 2000u /* one whole identify, runtime calls included */
#define KURA_RESOLVER_TTL_MS 60000u    /* cache backstop, should an event be lost */
#define KURA_RESOLVER_RETRIES 3u       /* re-asks when a runtime does not know an ID yet */
#define KURA_RESOLVER_RETRY_MS 100u    /* between those */

struct kura_resolver_config {
	/* The runtimes the operator configured, borrowed: they must outlive the resolver. Each is
	 * found by kura_runtime_name(): a process whose cgroup says Docker is asked of the one
	 * named "docker", Podman's libpod-* of "podman", then "containerd", "crio". At most one
	 * runtime per name. */
	struct kura_runtime *const *runtimes;
	size_t n_runtimes;
	unsigned timeout_ms; /* 0: KURA_RESOLVER_TIMEOUT_MS */
	unsigned ttl_ms;     /* 0: KURA_RESOLVER_TTL_MS */
	unsigned retries;    /* 0: KURA_RESOLVER_RETRIES */
	unsigned retry_ms;   /* 0: KURA_RESOLVER_RETRY_MS */
};

/*
 * An identity, immutable and reference-counted: `id` is the view the policy reads; everything it
 * points to is owned by the ident (the container part is shared with the resolver's cache and
 * with every other ident of the same container, never copied). The fields after `id` are private.
 */
struct kura_ident {
	struct kura_identity id;
	unsigned refs;
	struct ident_record *rec;
};

struct kura_ident *kura_ident_ref(struct kura_ident *i);
void kura_ident_unref(struct kura_ident *i); /* NULL-safe */

static inline const struct kura_identity *kura_ident_view(const struct kura_ident *i)
{
	return &i->id;
}

static inline void kura_ident_unrefp(struct kura_ident **i)
{
	kura_ident_unref(*i);
}
#define _cleanup_ident_ __attribute__((cleanup(kura_ident_unrefp)))

struct kura_resolver;

struct kura_resolver_stats {
	uint64_t hits;           /* container lookups answered from the cache */
	uint64_t misses;         /* ... that were not (expired, invalidated, never seen) */
	uint64_t inspects;       /* kura_runtime_inspect() calls made, retries included */
	uint64_t shared;         /* misses that waited for another caller's inspect */
	uint64_t events;         /* container events received from all runtimes */
	uint64_t invalidations;  /* cache entries dropped by an event or a stream failure */
	uint64_t expirations;    /* cache entries dropped by the TTL */
	uint64_t watch_failures; /* event streams that failed (each drops its runtime's cache) */
	uint64_t prefetches;     /* lookups made when a container started, before it asked */
};

/* A resolver over cfg's runtimes; nothing runs until kura_resolver_start(). -EINVAL for a NULL
 * runtime or two with one name, -ENOMEM. */
int kura_resolver_new(const struct kura_resolver_config *cfg, struct kura_resolver **ret);

/*
 * Start one thread per runtime that follows its event stream (kura_runtime_watch): any event for
 * a container drops that container's cache entry; a failed stream drops the runtime's whole
 * cache and is reconnected after 100 ms, doubling up to 5 s while it keeps failing. Results are
 * cached only while a runtime's stream is up (and has been for a moment, so that its
 * subscription covers the answer); a resolver never started caches nothing. Call once. -errno
 * from pthread_create (threads already started are stopped again).
 */
int kura_resolver_start(struct kura_resolver *r);

/* Stop and join the watchers (within about 100 ms), free the cache. Idents handed out stay
 * valid until unreferenced. NULL-safe. Callers must have returned from every identify call. */
void kura_resolver_free(struct kura_resolver *r);

/*
 * Who the peer is. The rules, in order:
 *  - /proc/<pid>/cgroup names no container: host, with the peer's pid, uid and gid, but only
 *    if the peer is in kurad's own pid, mount and cgroup namespaces with kurad's root directory
 *    (kura_peer_in_host_namespaces); anything else the cgroup parser cannot place, or whose
 *    cgroup holds a segment shaped like a container ID, is a container in a layout we do not
 *    know: -EACCES.
 *  - a container of a runtime kind that is not configured: -EACCES.
 *  - the container as its runtime describes it, from the cache or one inspect; concurrent
 *    callers for one container share a single inspect. Unknown to the runtime: re-asked
 *    `retries` times, `retry_ms` apart (a container that just started), then -EACCES. The
 *    runtime down, slow or failing (timeout, no socket, refused, reset, 5xx), or the time
 *    running out while waiting for another caller's inspect: -EAGAIN (answer 503). An answer
 *    that breaks the runtime client's limits: -EACCES.
 *  - the container must be running and its init process must share the peer's pid namespace:
 *    else -EACCES.
 *  - finally the peer must still be alive (kura_peer_alive): else -ESRCH.
 * A cgroup file that cannot be decided: -EACCES; the process gone: -ESRCH; -ENOMEM. Everything
 * within cfg->timeout_ms; a slow runtime never delays lookups of other containers. Thread-safe.
 * *ret (one reference) only on success.
 */
int kura_resolver_identify(struct kura_resolver *r, const struct kura_peer *peer,
	struct kura_ident **ret);

/* Whether a container's "start" event makes the resolver look it up at once, so that its first
 * request finds it cached (default on). */
void kura_resolver_set_prefetch(struct kura_resolver *r, bool on);

/* What a caller read of this very peer for the same request, just before: the resolver takes it
 * instead of reading /proc again. */
struct kura_peer_reads {
	int cg_rc; /* kura_cgroup_read's result, into cg */
	struct kura_cgroup_id cg;
	int host_rc; /* kura_peer_in_host_namespaces's result, into host; 1: not asked */
	bool host;
};

/* The same, but never waits for a runtime (and, when pre is not NULL, takes what it holds
 * instead of reading it again): -EWOULDBLOCK when the answer is not in the cache (the caller then
 * asks kura_resolver_identify from a thread that may wait). For an event loop: a cached container
 * or a host process is answered with /proc reads only. */
int kura_resolver_identify_cached(struct kura_resolver *r, const struct kura_peer *peer,
	const struct kura_peer_reads *pre, struct kura_ident **ret);

/* kura_resolver_identify() for a pid, bound to its process now (kura_peer_from_pid): what
 * `kuractl whois PID` shows. Also -EINVAL, -ESRCH for no such process. */
int kura_resolver_identify_pid(struct kura_resolver *r, pid_t pid, struct kura_ident **ret);

/*
 * The identity a process of the container `id_or_name` (a name, full ID or ID prefix; names are
 * fine here because this is an operator's query, never a workload's) would get: each configured
 * runtime in turn is asked for the name, and the first that knows it gives the container, whose
 * init process is then identified as kura_resolver_identify_pid() would (so pid, uid and gid are
 * its init's). -ENOENT if no runtime knows it, -EAGAIN if none does but one could not be asked,
 * -EACCES if it is not running (or its init is not what its runtime says), -EINVAL for a
 * malformed name.
 */
int kura_resolver_identify_container(struct kura_resolver *r, const char *id_or_name,
	struct kura_ident **ret);

/* A snapshot of the counters. */
void kura_resolver_get_stats(struct kura_resolver *r, struct kura_resolver_stats *ret);

/* An identity as kurad's APIs show it (whoami, whois): a new object, NULL without memory. */
json_t *kura_identity_json(const struct kura_identity *id);

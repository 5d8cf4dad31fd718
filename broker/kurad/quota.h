/* Per-principal limits on kurad's workload socket: who a connection answers for, its share of
 * the connection table (making room under a flood), its request rate, its long polls, and how
 * many of its refusals reach the audit log. No plaintext. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cgroup.h"

/*
 * Whom a connection's requests count against, from kernel facts only (before any runtime is
 * asked). Limits are exact per principal: two principals never share a bucket.
 *  - CONTAINER: the container its cgroup names (runtime kind and ID);
 *  - USER: a process in no container, in kurad's namespaces: the host uid that answers for it
 *    (kura_peer_user_owner), so every uid a user maps in namespaces of their own is that user;
 *  - FOREIGN: a process in no container we know but not in kurad's namespaces either (an
 *    unknown container layout), by the same owner uid: never sharing a host user's limits;
 *  - UNIDENTIFIED: the kernel cannot tell who it is (the process is gone): one principal for all
 *    of them, since every request they make is refused anyway.
 */
enum kura_principal_kind {
	KURA_PRINCIPAL_UNIDENTIFIED,
	KURA_PRINCIPAL_USER,
	KURA_PRINCIPAL_FOREIGN,
	KURA_PRINCIPAL_CONTAINER,
};

struct kura_principal {
	enum kura_principal_kind kind;
	uid_t uid;                       /* USER, FOREIGN */
	enum kura_runtime_kind runtime;  /* CONTAINER */
	char id[KURA_CGROUP_ID_LEN + 1]; /* CONTAINER */
};

/* "container:docker:<id>", "user:<uid>", "foreign:<uid>", "unidentified": for records and logs. */
#define KURA_PRINCIPAL_TEXT 96
const char *kura_principal_text(const struct kura_principal *p,
	char buf[static KURA_PRINCIPAL_TEXT]);

struct kura_quota_config {
	unsigned
		max_connections; /* open connections in all (admitted ones; room is made past it) */
	unsigned max_per_peer;   /* open connections of one principal */
	unsigned max_watches;    /* long polls in all */
	unsigned watches_per_peer; /* long polls of one principal */
	double rate_per_s;         /* requests per second of one principal */
	double rate_burst;
};

struct kura_quota;
struct kura_principal_entry;

/* One connection's place in the table; the daemon embeds it in its connection and owns it. */
struct kura_slot {
	struct kura_principal_entry *p; /* NULL until admitted */
	struct kura_slot *prev, *next;  /* the principal's connections, oldest first */
	double since;  /* accepted, or last request completed: the oldest idle one goes first */
	bool busy;     /* inside a request that must be finished (not a parked long poll) */
	bool watching; /* a parked long poll (evictable: it is answered, then closed) */
	bool evicted;  /* room was made with it: it no longer counts, it is being closed */
	void *owner;   /* the daemon's connection */
};

/* evict is called, under the table's lock, with each slot chosen to make room (admission, long
 * polls) or past its header deadline: it must only shut the connection down (shutdown(2)), so
 * that its event loop closes it; the slot stays valid until kura_quota_release. */
int kura_quota_new(const struct kura_quota_config *cfg, void (*evict)(struct kura_slot *s),
	struct kura_quota **ret);
void kura_quota_free(struct kura_quota *l); /* NULL-safe; every slot released first */
void kura_quota_configure(struct kura_quota *l, const struct kura_quota_config *cfg);

/*
 * Admit a new connection of principal p into slot s (zeroed by the caller, owner set). 0: in.
 * When the table is full, room is made: the principal with the most open connections gives up its
 * oldest one not inside a request (a connection still sending headers, an idle keep-alive, or a
 * parked long poll), handed to evict; a flood from many peers so displaces its own connections,
 * never a principal with fewer. -EUSERS: p already has max_per_peer open (s is not admitted:
 * close it). -ENOSPC: full and nothing can give way. -ENOMEM.
 */
int kura_quota_admit(struct kura_quota *l, struct kura_slot *s, const struct kura_principal *p,
	double now);
/* The connection closed (admitted or not, evicted or not). */
void kura_quota_release(struct kura_quota *l, struct kura_slot *s);
/* The slot's request began (busy) or ended (idle again, from now). */
void kura_quota_busy(struct kura_quota *l, struct kura_slot *s, bool busy, double now);

/* One token of the principal's rate: false when it is over its rate. */
bool kura_quota_rate_ok(struct kura_quota *l, struct kura_slot *s, double now);

/*
 * Start a long poll on the slot. 0: it may park (the slot becomes evictable). -EUSERS: the
 * principal has watches_per_peer open. -ENOSPC: max_watches are open and no principal holds more
 * than this one would. When max_watches are open, the principal with the most long polls, if it
 * holds more than this one would, gives one up (to evict).
 */
int kura_quota_watch_begin(struct kura_quota *l, struct kura_slot *s);
void kura_quota_watch_end(struct kura_quota *l, struct kura_slot *s);

/*
 * Refusals in bounded volume. Each principal's refusals are recorded one by one a few at once and
 * then at most one a second; the others are counted, and the count is written as one record
 * ("suppressed") once its second is over: with the principal's next recorded refusal, or by
 * kura_quota_flush. A flood of T seconds makes at most 2T + 5 records. A note of a count due.
 */
struct kura_refusal_note {
	struct kura_principal principal;
	uint64_t count;
	char reason[32]; /* of the last refusal counted */
	pid_t pid;       /* of the last refused peer */
	uid_t uid;
	gid_t gid;
};

/* A refusal of slot's principal now: true if it is to be recorded on its own. *due gets a count
 * to record first (due->count > 0). */
bool kura_quota_refusal(struct kura_quota *l, struct kura_slot *s, double now, const char *reason,
	pid_t pid, uid_t uid, gid_t gid, struct kura_refusal_note *due);

/* Hand every count whose second is over (all of them when `all`) to fn, and forget idle
 * principals (no connection, a full bucket, nothing counted). Returns the number handed. */
size_t kura_quota_flush(struct kura_quota *l, double now, bool all,
	void (*fn)(const struct kura_refusal_note *n, void *userdata), void *userdata);

struct kura_quota_stats {
	unsigned connections; /* admitted and not evicted */
	unsigned watches;
	unsigned principals;
	uint64_t evictions;  /* connections displaced to make room */
	uint64_t refused;    /* connections refused (a principal's cap, or no room) */
	uint64_t suppressed; /* refusals counted instead of recorded one by one */
};
void kura_quota_get_stats(struct kura_quota *l, struct kura_quota_stats *ret);

/* Hand to evict every admitted slot that has waited for its request's headers (not busy, not
 * a long poll) for longer than `seconds`: libmicrohttpd's timeout counts idle time only, so a
 * client dribbling a byte now and then would hold its slot for ever. Returns how many. */
unsigned kura_quota_reap(struct kura_quota *l, double now, double seconds);

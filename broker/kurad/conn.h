/* One connection to kurad: the kernel's facts about its peer, taken when it was accepted, and
 * whom its requests count against. No plaintext. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "cgroup.h"
#include "identity.h"
#include "peer.h"
#include "quota.h"

/* Everything kurad knows about one connection: the kernel's facts, fixed when it was
 * accepted (identity itself is resolved again for every request, so a process that died or a
 * container that stopped loses it even on an open connection), and what the reaper needs. */
struct kura_conn {
	struct kura_peer peer;
	int peer_err;   /* <0: the kernel could not tell us who this is */
	pid_t cred_pid; /* SO_PEERCRED, also when peer_err < 0 (for records only) */
	uid_t cred_uid;
	gid_t cred_gid;
	int fd;
	struct kura_principal principal; /* whom its requests count against (quota.h) */
	struct kura_slot slot;           /* its place in the quota table (workload.sock only) */
	/* Its /proc/<pid>/cgroup, and whether it lives in the host's namespaces, as read when it
	 * connected, for its first request only (every later request reads them again): the same
	 * reads are not made twice for the usual one-request connection. */
	struct kura_peer_reads reads;
	bool reads_fresh;
	bool workload; /* on workload.sock (else admin.sock) */
};

/* The facts of the peer on fd (accepted on workload.sock, or admin.sock). NULL: no memory. */
struct kura_conn *kura_conn_new(int fd, bool workload);
void kura_conn_free(struct kura_conn *conn); /* NULL-safe */

/*
 * Whom conn counts against, from kernel facts only, before any runtime is asked (quota.h): the
 * container its cgroup names; else the user who answers for it, as a host user if it lives in
 * kurad's namespaces and as a foreign one if not; else the one principal of all unidentified
 * peers. Reads the peer's cgroup, kept for its first request.
 */
void kura_conn_principal(struct kura_conn *conn, struct kura_principal *ret);

/* Its first half, what anyone may read (/proc/<pid>/cgroup): true when that decides (a
 * container, or a peer the kernel could not describe); false when the user and namespaces must
 * be looked at, which takes privilege the front has not (it asks the custody process). */
bool kura_conn_principal_cgroup(struct kura_conn *conn, struct kura_principal *ret);

/* A connection's peer, from the kernel when it is accepted: SO_PEERCRED and the pidfd describe
 * the process that connected, whatever it sends afterwards; and whom it counts against. No
 * plaintext. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <syslog.h>

#include "conn.h"
#include "log.h"

struct kura_conn *kura_conn_new(int fd, bool workload)
{
	static bool warned_degraded;
	struct ucred cred = { .pid = 0, .uid = (uid_t)-1, .gid = (gid_t)-1 };
	socklen_t sl = sizeof(cred);
	struct kura_conn *conn = calloc(1, sizeof(*conn));

	if (!conn)
		return NULL;
	conn->peer = (struct kura_peer)KURA_PEER_NULL;
	conn->fd = fd;
	conn->workload = workload;
	conn->peer_err = kura_peer_from_socket(fd, &conn->peer);
	if (conn->peer_err < 0 && getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &sl) < 0)
		cred = (struct ucred){ .pid = 0, .uid = (uid_t)-1, .gid = (gid_t)-1 };
	conn->cred_pid = conn->peer_err < 0 ? cred.pid : conn->peer.pid;
	conn->cred_uid = conn->peer_err < 0 ? cred.uid : conn->peer.uid;
	conn->cred_gid = conn->peer_err < 0 ? cred.gid : conn->peer.gid;
	if (conn->peer_err == 0 && conn->peer.degraded &&
		!__atomic_exchange_n(&warned_degraded, true, __ATOMIC_RELAXED))
		kura_log(LOG_WARNING,
			"this kernel has no SO_PEERPIDFD: identity runs degraded "
			"(the peer is pinned by pidfd_open or its start time, "
			"after SO_PEERCRED)");
	return conn;
}

void kura_conn_free(struct kura_conn *conn)
{
	if (!conn)
		return;
	kura_peer_done(&conn->peer);
	free(conn);
}

bool kura_conn_principal_cgroup(struct kura_conn *conn, struct kura_principal *p)
{
	*p = (struct kura_principal){ .kind = KURA_PRINCIPAL_UNIDENTIFIED };
	if (conn->peer_err < 0)
		return true;
	conn->reads = (struct kura_peer_reads){ .host_rc = 1 };
	conn->reads.cg_rc = kura_cgroup_read(conn->peer.proc_fd, &conn->reads.cg);
	conn->reads_fresh = true;
	if (conn->reads.cg_rc == 0) {
		p->kind = KURA_PRINCIPAL_CONTAINER;
		p->runtime = conn->reads.cg.runtime;
		memcpy(p->id, conn->reads.cg.id, sizeof(p->id));
		return true;
	}
	return false;
}

void kura_conn_principal(struct kura_conn *conn, struct kura_principal *p)
{
	struct kura_peer_reads *reads = &conn->reads;
	uid_t owner;

	if (kura_conn_principal_cgroup(conn, p))
		return;
	if (kura_peer_user_owner(&conn->peer, &owner) < 0)
		return;
	if (reads->cg_rc == -ENOENT) {
		reads->host_rc = kura_peer_in_host_namespaces(&conn->peer, &reads->host);
		if (reads->host_rc < 0)
			return;
	}
	p->kind = reads->cg_rc == -ENOENT && reads->host ? KURA_PRINCIPAL_USER :
							   KURA_PRINCIPAL_FOREIGN;
	p->uid = owner;
}

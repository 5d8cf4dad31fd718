/* The kernel's facts about the process on the other end of a connected Unix socket: credentials,
 * a handle bound to that exact process, its /proc directory. Touches no plaintext. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct kura_peer {
	pid_t pid; /* in kurad's pid namespace */
	uid_t uid;
	gid_t gid;
	int pidfd;            /* -1 when the kernel has no pidfds (degraded) */
	int proc_fd;          /* /proc/<pid>, opened O_RDONLY|O_DIRECTORY: openat() its files */
	uint64_t start_time;  /* field 22 of /proc/<pid>/stat, clock ticks after boot, once read */
	bool have_start_time; /* read (always when degraded); else kura_peer_start_time reads it */
	bool degraded;        /* no SO_PEERPIDFD: the pid was bound to a process after the fact */
};

/* A peer that owns nothing: kura_peer_done() on it is a no-op. */
#define KURA_PEER_NULL                                                                             \
	{                                                                                          \
		.pid = 0, .pidfd = -1, .proc_fd = -1                                               \
	}

/*
 * The peer of the connected Unix socket fd. The credentials are the ones the kernel recorded at
 * connect() (or socketpair()). SO_PEERPIDFD (Linux 6.5) gives a pidfd for that very process; the
 * process's /proc directory is opened afterwards and counts only if the pidfd shows the process
 * still running then, since a pid is not reused before its process has exited.
 *
 * Without SO_PEERPIDFD the pidfd comes from pidfd_open(pid) (or there is none), and *ret is
 * marked degraded: the pid was bound to a process only now, so a process that exited between
 * connect() and this call could have been replaced by another with the same pid. What degraded
 * mode still catches is a recycle after this call (kura_peer_alive()).
 *
 * Errors: -ENOTSOCK, -ENOTCONN, -ESRCH (the peer is gone, or not visible in our pid namespace),
 * other -errno. *ret is written only on success; release it with kura_peer_done().
 */
int kura_peer_from_socket(int fd, struct kura_peer *ret);

/* The peer's start time (field 22 of its stat, clock ticks after boot): with pid and uid, what
 * tells it from a later process with its pid. Read through its /proc directory at the first call
 * (a peer bound by the kernel's pidfd does not need it to be identified). -ESRCH if it is gone. */
int kura_peer_start_time(struct kura_peer *p, uint64_t *ret);

/*
 * A peer made from a pid rather than a socket, for operator queries (`kuractl whois PID`):
 * pidfd_open(pid), then /proc/<pid>, kept only if the pidfd shows the process still running
 * after the directory was opened (so both name the same process). uid and gid are the effective
 * ones from /proc/<pid>/status, as SO_PEERCRED would report them. The binding happens now: if the
 * pid the caller holds was recycled before this call, this is the new process. Without pidfds
 * the peer is marked degraded and liveness falls back to the start time.
 *
 * Errors: -EINVAL (pid <= 0), -ESRCH (no such process, or it has exited), other -errno. *ret is
 * written only on success; release it with kura_peer_done().
 */
int kura_peer_from_pid(pid_t pid, struct kura_peer *ret);

/* Whether the peer still runs: its pidfd has not signalled exit and, in degraded mode, its stat
 * still shows the same start time. False on any error. Call it after the slow lookups (cgroup,
 * runtime API) and before trusting their answer, so that they are known to describe this
 * process and not one that took over its pid. */
bool kura_peer_alive(const struct kura_peer *p);

/* Whether the peer and other_pid are in the same pid namespace (st_dev and st_ino of ns/pid).
 * other_pid is looked up now: a caller that got it from elsewhere (a runtime's State.Pid) must
 * itself make sure it is still the process it means. -ESRCH/-ENOENT if either is gone. */
int kura_peer_ns_equal(const struct kura_peer *p, pid_t other_pid, bool *ret_same);

/*
 * Whether the peer lives on the host: in the pid, mount and cgroup namespaces and under the root
 * of kurad itself, or of the host (kura_peer_host_reference), all four of one of them. What makes
 * a host process is what a container cannot fake: even with --pid=host and a cgroup parent no
 * parser knows, a container has a mount namespace and a root of its own. -ESRCH if the peer is
 * gone, other -errno.
 */
int kura_peer_in_host_namespaces(const struct kura_peer *p, bool *ret);

/*
 * The host is where process pid lives (PID 1, the init process, unless the operator says
 * otherwise): its pid, mount and cgroup namespaces and root, read now and held. Under systemd's
 * ProtectSystem=, ProtectHome= or PrivateTmp= kurad has a mount namespace of its own, and the
 * host's processes, root's kuractl among them, are in PID 1's. Needs the right to inspect pid
 * (CAP_SYS_PTRACE over it); -EACCES/-EPERM without it, -ESRCH if it is gone. Call it once, before
 * any thread asks kura_peer_in_host_namespaces; a second call replaces the first.
 */
int kura_peer_host_reference(pid_t pid);

/* Whether the host kura_peer_host_reference read is where kurad lives too (false if none was). */
bool kura_peer_host_is_self(void);

/*
 * The host uid that answers for the peer: its own uid when it is in kurad's user namespace, else
 * the owner (creator) of the outermost user namespace below kurad's that holds it: the user who
 * made that namespace, whatever uids (subordinate ones included) it maps inside. So a user with a
 * range of subordinate uids is one user here, not 65,536. -ESRCH if the peer is gone, other -errno.
 */
int kura_peer_user_owner(const struct kura_peer *p, uid_t *ret);

/* Close the peer's descriptors. NULL-safe and idempotent. */
void kura_peer_done(struct kura_peer *p);

/*
 * TESTS ONLY: kura_peer_from_socket() as on an older kernel. KURA_PEER_NO_PEERPIDFD takes the
 * pidfd_open() fallback, KURA_PEER_NO_PIDFD adds the path for kernels without any pidfds. The
 * daemon calls kura_peer_from_socket().
 */
enum {
	KURA_PEER_NO_PEERPIDFD = 1 << 0,
	KURA_PEER_NO_PIDFD = 1 << 1,
};
int kura_peer_from_socket_flags(int fd, unsigned flags, struct kura_peer *ret);

/* Each of kurad's processes, locked down (lockdown.h): the supervisor (signals, reaping, the
 * sockets' removal), the key custody process (no socket of its own, no exec, no ptrace, one
 * capability: reading other processes' namespaces), the front (an unprivileged user with no
 * capability, no file but /proc, no socket of its own) and the net process (sockets, but no
 * capability and no file of kura's). The lists were found with strace -f -c over the whole test
 * suite and are kept no longer than that. No plaintext. */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <syslog.h>
#include <linux/capability.h>

#include "lockdown.h"
#include "log.h"
#include "sandbox.h"

#define NOBODY 65534

/* What every process that serves a socket pair does. */
#define MESSAGES                                                                                   \
	KURA_SB_ANY("recvmsg"), KURA_SB_ANY("sendmsg"), KURA_SB_ANY("poll"), KURA_SB_ANY("ppoll"), \
		KURA_SB_ANY("shutdown"), KURA_SB_ANY("getsockopt"), KURA_SB_ANY("getsockname"),    \
		KURA_SB_ANY("rt_sigtimedwait"), KURA_SB_ANY("dup"), KURA_SB_ANY("dup3")

/* Reading /proc/<pid>/... through a directory fd, and the peer's pidfd. */
#define PROC_READS                                                                                 \
	KURA_SB_ANY("openat"), KURA_SB_ANY("newfstatat"), KURA_SB_ANY("fstat"),                    \
		KURA_SB_ANY("statx"), KURA_SB_ANY("lseek"), KURA_SB_ANY("pread64"),                \
		KURA_SB_ANY("getdents64"), KURA_SB_ANY("readlinkat"), KURA_SB_ANY("pidfd_open"),   \
		KURA_SB_ANY("pidfd_send_signal"), KURA_SB_ANY("fcntl"), KURA_SB_ANY("getuid"),     \
		KURA_SB_ANY("geteuid"), KURA_SB_ANY("getgid"), KURA_SB_ANY("getegid"),             \
		KURA_SB_ANY("getppid")

/* libmicrohttpd: its loops (which name their threads), its wake-up channel, and the sockets
 * it is handed. */
#define HTTP_SERVER                                                                                \
	KURA_SB_WHEN("prctl", KURA_SB_IF(0, KURA_SB_EQ, PR_SET_NAME, 0)), KURA_SB_ANY("accept4"),  \
		KURA_SB_ANY("epoll_create1"), KURA_SB_ANY("epoll_ctl"), KURA_SB_ANY("epoll_wait"), \
		KURA_SB_ANY("epoll_pwait"), KURA_SB_ANY("eventfd2"), KURA_SB_ANY("pipe2"),         \
		KURA_SB_ANY("setsockopt"), KURA_SB_ANY("sendto"), KURA_SB_ANY("recvfrom"),         \
		KURA_SB_ANY("select"), KURA_SB_ANY("pselect6"), KURA_SB_ANY("ioctl"),              \
		KURA_SB_ANY("getpeername")

static const struct kura_sandbox_rule supervisor_rules[] = {
	KURA_SB_ANY("poll"),
	KURA_SB_ANY("wait4"),
	KURA_SB_ANY("waitid"),
	KURA_SB_ANY("kill"),
	KURA_SB_ANY("unlink"),
	KURA_SB_ANY("unlinkat"),
	KURA_SB_ANY("rt_sigtimedwait"),
	/* syslog(3) sends each line, and reconnects to /dev/log if syslogd was restarted; sendto
	 * also carries sd_notify's datagrams, on a socket notify.c made before this. */
	KURA_SB_WHEN("socket", KURA_SB_IF(0, KURA_SB_EQ, AF_UNIX, 0)),
	KURA_SB_ANY("connect"),
	KURA_SB_ANY("sendto"),
	KURA_SB_ANY("openat"),
	KURA_SB_ANY("newfstatat"),
	KURA_SB_ANY("lseek"),
	KURA_SB_ANY("readlinkat"),
	KURA_SB_ANY("getcwd"),
};

static const struct kura_sandbox_rule front_rules[] = {
	MESSAGES,
	PROC_READS,
	HTTP_SERVER,
	/* Set again once it runs as its own user (the change cleared it). */
	KURA_SB_WHEN("prctl", KURA_SB_IF(0, KURA_SB_EQ, PR_SET_PDEATHSIG, 0)),
	/* Guarded memory for the values it sends. */
	KURA_SB_ANY("mlock"),
	KURA_SB_ANY("munlock"),
};

static const struct kura_sandbox_rule keeper_rules[] = {
	MESSAGES,
	PROC_READS,
	HTTP_SERVER,
	/* The store (SQLite), the audit log and its rotation, the state files. */
	KURA_SB_ANY("pwrite64"),
	KURA_SB_ANY("fsync"),
	KURA_SB_ANY("fdatasync"),
	KURA_SB_ANY("ftruncate"),
	KURA_SB_ANY("fallocate"),
	KURA_SB_ANY("flock"),
	KURA_SB_ANY("rename"),
	KURA_SB_ANY("renameat"),
	KURA_SB_ANY("renameat2"),
	KURA_SB_ANY("unlink"),
	KURA_SB_ANY("unlinkat"),
	KURA_SB_ANY("mkdir"),
	KURA_SB_ANY("mkdirat"),
	KURA_SB_ANY("linkat"),
	KURA_SB_ANY("fchmod"),
	KURA_SB_ANY("fchown"),
	KURA_SB_ANY("access"),
	KURA_SB_ANY("faccessat"),
	KURA_SB_ANY("faccessat2"),
	KURA_SB_ANY("stat"),
	KURA_SB_ANY("lstat"),
	KURA_SB_ANY("statfs"),
	KURA_SB_ANY("fstatfs"),
	KURA_SB_ANY("mlock"),
	KURA_SB_ANY("munlock"),
	KURA_SB_ANY("uname"),
	KURA_SB_ANY("sysinfo"),
	KURA_SB_ANY("sched_getaffinity"),
	/* The audit log's file watched for being renamed, replaced or removed (audit.c), from
	 * the recorder's start and again at each rotation. */
	KURA_SB_ANY("inotify_init1"),
	KURA_SB_ANY("inotify_add_watch"),
	KURA_SB_ANY("inotify_rm_watch"),
};

/* The net process: libcurl to the runtimes' sockets and the HTTP collector, syslog over a Unix
 * or TCP socket; libcurl wakes itself with a socketpair. */
static const struct kura_sandbox_rule net_rules[] = {
	MESSAGES,
	KURA_SB_WHEN("socket", KURA_SB_IF(0, KURA_SB_EQ, AF_UNIX, 0)),
	KURA_SB_WHEN("socket", KURA_SB_IF(0, KURA_SB_EQ, AF_INET, 0)),
	KURA_SB_WHEN("socket", KURA_SB_IF(0, KURA_SB_EQ, AF_INET6, 0)),
	KURA_SB_WHEN("socketpair", KURA_SB_IF(0, KURA_SB_EQ, AF_UNIX, 0)),
	/* libcurl ignores SIGPIPE around its sends. */
	KURA_SB_WHEN("rt_sigaction", KURA_SB_IF(0, KURA_SB_EQ, SIGPIPE, 0)),
	KURA_SB_ANY("connect"),
	KURA_SB_ANY("getpeername"),
	KURA_SB_ANY("setsockopt"),
	KURA_SB_ANY("sendto"),
	KURA_SB_ANY("recvfrom"),
	KURA_SB_ANY("fcntl"),
	KURA_SB_ANY("ioctl"),
	KURA_SB_ANY("pipe2"),
	KURA_SB_ANY("eventfd2"),
	KURA_SB_ANY("openat"),
	KURA_SB_ANY("newfstatat"),
	KURA_SB_ANY("lseek"),
	KURA_SB_ANY("uname"),
	KURA_SB_ANY("readlinkat"),
	KURA_SB_ANY("getcwd"),
	KURA_SB_ANY("getuid"),
	KURA_SB_ANY("geteuid"),
	KURA_SB_ANY("getgid"),
	KURA_SB_ANY("getegid"),
	KURA_SB_ANY("getppid"),
	KURA_SB_WHEN("prctl", KURA_SB_IF(0, KURA_SB_EQ, PR_SET_NAME, 0)),
};

int kura_lockdown_front_user(const struct kura_daemon_config *cfg, uid_t *ret_uid, gid_t *ret_gid)
{
	const char *name = cfg->front_user ? cfg->front_user : "kura";
	struct passwd *pw = getpwnam(name);

	if (pw && pw->pw_uid != 0) {
		*ret_uid = pw->pw_uid;
		*ret_gid = pw->pw_gid;
		return 0;
	}
	if (cfg->front_user) {
		kura_log(LOG_ERR, "front-user %s: %s", name,
			pw ? "is root: the front must not be" : "no such user");
		return pw ? -EPERM : -ENOENT;
	}
	kura_log(LOG_WARNING,
		"no user \"kura\": the front runs as nobody (%d); create a system user for it "
		"(useradd --system --no-create-home kura)",
		NOBODY);
	*ret_uid = NOBODY;
	*ret_gid = NOBODY;
	return 0;
}

static void add_path(struct kura_sandbox_path *p, size_t *n, size_t max, const char *path,
	unsigned access)
{
	if (path && *n < max)
		p[(*n)++] = (struct kura_sandbox_path){ path, access };
}

int kura_lockdown(enum kura_role role, const struct kura_daemon_config *cfg, uid_t uid, gid_t gid)
{
	static const char *const names[] = { [KURA_ROLE_SUPERVISOR] = "supervisor",
		[KURA_ROLE_KEEPER] = "keeper",
		[KURA_ROLE_FRONT] = "front",
		[KURA_ROLE_NET] = "net" };
	struct kura_sandbox_path paths[12];
	struct kura_sandbox sb = { .role = names[role], .paths = paths };
	int r;

	if (cfg->no_sandbox) {
		kura_log(LOG_WARNING,
			"the %s process runs without its sandbox (--no-sandbox): "
			"for debugging only",
			names[role]);
		return 0;
	}
	switch (role) {
	case KURA_ROLE_SUPERVISOR:
		sb.rules = supervisor_rules;
		sb.n_rules = sizeof(supervisor_rules) / sizeof(supervisor_rules[0]);
		/* It signals the front, which runs as another user. */
		sb.keep_caps = 1ull << CAP_KILL;
		add_path(paths, &sb.n_paths, 12, cfg->run_dir, KURA_LL_READ | KURA_LL_WRITE);
		add_path(paths, &sb.n_paths, 12, "/etc/localtime", KURA_LL_READ | KURA_LL_OPTIONAL);
		break;
	case KURA_ROLE_KEEPER:
		sb.rules = keeper_rules;
		sb.n_rules = sizeof(keeper_rules) / sizeof(keeper_rules[0]);
		sb.threads = true;
		/* Root's files are its own; other users' processes' namespaces (who a peer is) are
		 * read through /proc, which takes CAP_SYS_PTRACE. ptrace itself is not allowed. */
		sb.keep_caps = 1ull << CAP_SYS_PTRACE;
		/* No Landlock: a Landlock domain may not ptrace-read a process outside it, and
		 * reading a peer's /proc/<pid>/ns/ is how we tell a host process from a container
		 * (the kernel says EACCES, and every host peer would be refused). Its files are
		 * bounded instead by seccomp (no exec, no ptrace, no mount) and its capabilities;
		 * the vault was opened before this, so no key source is read again. */
		break;
	case KURA_ROLE_FRONT:
		sb.rules = front_rules;
		sb.n_rules = sizeof(front_rules) / sizeof(front_rules[0]);
		sb.threads = true;
		sb.keep_caps = 0;
		sb.change_user = true;
		sb.uid = uid;
		sb.gid = gid;
		/* No file but /proc: its limits come from the custody process on a reload. */
		add_path(paths, &sb.n_paths, 12, "/proc", KURA_LL_READ);
		break;
	case KURA_ROLE_NET:
		/* Root, to reach the runtimes' root-owned sockets as their owner; no capability.
		 * Files: name lookup, CA certificates, time zones; nothing of kura's. */
		sb.rules = net_rules;
		sb.n_rules = sizeof(net_rules) / sizeof(net_rules[0]);
		sb.threads = true;
		sb.keep_caps = 0;
		add_path(paths, &sb.n_paths, 12, "/etc", KURA_LL_READ);
		add_path(paths, &sb.n_paths, 12, "/usr/share/zoneinfo",
			KURA_LL_READ | KURA_LL_OPTIONAL);
		add_path(paths, &sb.n_paths, 12, "/usr/share/ca-certificates",
			KURA_LL_READ | KURA_LL_OPTIONAL);
		add_path(paths, &sb.n_paths, 12, "/usr/lib/ssl", KURA_LL_READ | KURA_LL_OPTIONAL);
		break;
	}
	r = kura_sandbox_apply(&sb);
	if (r < 0)
		return r; /* logged */
	kura_log(LOG_INFO, "the %s process is locked down: %zu system calls, %s, %s", names[role],
		kura_sandbox_count(&sb),
		role == KURA_ROLE_FRONT || role == KURA_ROLE_NET ? "no capability" :
			role == KURA_ROLE_KEEPER                 ? "CAP_SYS_PTRACE alone" :
								   "CAP_KILL alone",
		sb.n_paths ? "Landlock to its paths" : "no Landlock (it reads peers' namespaces)");
	return 0;
}

size_t kura_lockdown_syscalls(enum kura_role role)
{
	struct kura_sandbox sb = { 0 };

	switch (role) {
	case KURA_ROLE_SUPERVISOR:
		sb.rules = supervisor_rules;
		sb.n_rules = sizeof(supervisor_rules) / sizeof(supervisor_rules[0]);
		break;
	case KURA_ROLE_KEEPER:
		sb.rules = keeper_rules;
		sb.n_rules = sizeof(keeper_rules) / sizeof(keeper_rules[0]);
		sb.threads = true;
		break;
	case KURA_ROLE_FRONT:
		sb.rules = front_rules;
		sb.n_rules = sizeof(front_rules) / sizeof(front_rules[0]);
		sb.threads = true;
		break;
	case KURA_ROLE_NET:
		sb.rules = net_rules;
		sb.n_rules = sizeof(net_rules) / sizeof(net_rules[0]);
		sb.threads = true;
		break;
	}
	return kura_sandbox_count(&sb);
}

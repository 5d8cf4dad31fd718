/* Unit tests for kura_sandbox_apply on the real kernel: each case forks a child that locks
 * itself down, the parent reads its /proc/PID/status, then lets it make one call and sees it
 * work, fail, or be killed by SIGSYS. Needs root (capabilities, another uid); skips otherwise. */
#ifndef __has_feature
#define __has_feature(x) 0
#endif
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/landlock.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>

#include "sandbox.h"
#include "tap.h"

#define NOBODY 65534u

static char root[] = "/tmp/kura-test-sandbox-XXXXXX";
static char inside[128], outside[128], errlog[128];
/* Set: the child becomes this uid (no capabilities left) before it applies the policy. */
static uid_t unprivileged;

/* Run by the parent once the child goes on (to connect to it, say), when set. */
static void (*parent_side)(void);

/* A child's whole /proc/PID/status, read while it waits, sandbox applied. */
static char status[8192];

#define OK 0
#define APPLY_FAILED 100
#define WRONG 101

/* Forks a child that applies sb, waits to be told to go on, runs act and exits with its return.
 * Returns the child's wait status; status holds its /proc/PID/status from before act. */
static int run(const struct kura_sandbox *sb, int (*act)(void))
{
	int ready[2], go[2], st = 0, fd;
	char c = 0;
	ssize_t n;
	pid_t pid;

	status[0] = 0;
	if (pipe2(ready, O_CLOEXEC) < 0 || pipe2(go, O_CLOEXEC) < 0)
		return -1;
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		int e = open(errlog, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

		close(ready[0]);
		close(go[1]);
		if (e >= 0)
			dup2(e, STDERR_FILENO); /* the log line of a failed step, for the parent */
		if (unprivileged && setresuid(unprivileged, unprivileged, unprivileged) < 0)
			_exit(WRONG);
		if (kura_sandbox_apply(sb) < 0)
			_exit(APPLY_FAILED);
		if (write(ready[1], "r", 1) != 1 || read(go[0], &c, 1) != 1)
			_exit(WRONG);
		_exit(act());
	}
	close(ready[1]);
	close(go[0]);
	if (read(ready[0], &c, 1) == 1) {
		char path[64];

		snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		n = fd < 0 ? -1 : read(fd, status, sizeof(status) - 1);
		status[n > 0 ? n : 0] = 0;
		if (fd >= 0)
			close(fd);
		if (write(go[1], "g", 1) != 1)
			tap_diag("cannot wake the child: %s", strerror(errno));
		if (parent_side)
			parent_side();
	}
	close(ready[0]);
	close(go[1]);
	waitpid(pid, &st, 0);
	return st;
}

/* Whether the child's stderr holds text. */
static bool logged(const char *text)
{
	char buf[1024] = { 0 };
	int fd = open(errlog, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);

	if (fd >= 0)
		close(fd);
	return n > 0 && strstr(buf, text) != NULL;
}

/* The value of "Key:" in status, "" when missing. */
static const char *field(const char *key)
{
	static char v[128];
	char k[40];
	const char *p, *e;

	snprintf(k, sizeof(k), "\n%s:\t", key);
	p = strstr(status, k);
	v[0] = 0;
	if (!p)
		return v;
	p += strlen(k);
	e = strchr(p, '\n');
	snprintf(v, sizeof(v), "%.*s", e ? (int)(e - p) : (int)strlen(p), p);
	return v;
}

static bool exited(int st, int code)
{
	return WIFEXITED(st) && WEXITSTATUS(st) == code;
}

static bool killed_sigsys(int st)
{
	return WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS;
}

static const char *describe(int st)
{
	static char d[64];

	if (WIFSIGNALED(st))
		snprintf(d, sizeof(d), "killed by signal %d", WTERMSIG(st));
	else
		snprintf(d, sizeof(d), "exit %d", WEXITSTATUS(st));
	return d;
}

static int act_getpid(void)
{
	return getpid() > 0 ? OK : WRONG;
}

static int act_inet_socket(void)
{
	return socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0) >= 0 ? OK : WRONG;
}

static int act_unix_socket(void)
{
	return socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0) >= 0 ? OK : WRONG;
}

static int act_fork(void)
{
	pid_t p = fork();

	if (p == 0)
		_exit(0);
	return WRONG; /* the filter should have killed us */
}

static void *thread_main(void *arg)
{
	return arg;
}

static int act_thread(void)
{
	static int token;
	void *ret = NULL;
	pthread_t t;

	if (pthread_create(&t, NULL, thread_main, &token) != 0 || pthread_join(t, &ret) != 0)
		return WRONG;
	return ret == &token ? OK : WRONG;
}

static int act_clone3(void)
{
	long r = syscall(SYS_clone3, NULL, 0);

	return r < 0 && errno == ENOSYS ? OK : WRONG;
}

static int act_mmap_exec(void)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p != MAP_FAILED ? OK : WRONG;
}

static int act_mmap_rw(void)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p != MAP_FAILED && munmap(p, 4096) == 0 ? OK : WRONG;
}

static int act_uname_eperm(void)
{
	struct utsname u;

	return uname(&u) < 0 && errno == EPERM ? OK : WRONG;
}

/* 0: inside opens and outside is refused with EACCES; 1 + which failed otherwise. */
static int act_paths(void)
{
	int in = open(inside, O_RDONLY | O_CLOEXEC);
	int out = open(outside, O_RDONLY | O_CLOEXEC);

	if (in < 0)
		return 1;
	if (out >= 0 || errno != EACCES)
		return 2;
	return OK;
}

static int act_open_inside(void)
{
	return open(inside, O_RDONLY | O_CLOEXEC) < 0 && errno == EACCES ? OK : WRONG;
}

static int act_write_inside(void)
{
	return open(inside, O_WRONLY | O_CLOEXEC) < 0 && errno == EACCES ? OK : WRONG;
}

static bool landlock_here(void)
{
	long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);

	return abi > 0;
}

/*
 * Two role-shaped policies, as kurad's processes would ask for them (README's sandbox notes
 * copy these): a front that accepts on an inherited listening socket, reads /proc and passes
 * connections over an inherited socketpair with SCM_RIGHTS; and a process that connects to Unix
 * and TCP sockets. Both as uid 65534 with no capability.
 */
static const struct kura_sandbox_rule front_rules[] = {
	KURA_SB_ANY("accept4"),
	KURA_SB_ANY("accept"),
	KURA_SB_ANY("getsockopt"), /* SO_PEERCRED */
	KURA_SB_ANY("sendmsg"),
	KURA_SB_ANY("recvmsg"),
	KURA_SB_ANY("poll"),
	KURA_SB_ANY("openat"),
	KURA_SB_ANY("newfstatat"), /* glibc's fstat */
	KURA_SB_ANY("fcntl"),
};
static const struct kura_sandbox_rule net_rules[] = {
	KURA_SB_WHEN("socket", KURA_SB_IF(0, KURA_SB_EQ, AF_UNIX, 0)),
	KURA_SB_WHEN("socket", KURA_SB_IF(0, KURA_SB_EQ, AF_INET, 0)),
	KURA_SB_WHEN("socket", KURA_SB_IF(0, KURA_SB_EQ, AF_INET6, 0)),
	KURA_SB_ANY("connect"),
	KURA_SB_ANY("getsockopt"), /* SO_ERROR after a non-blocking connect */
	KURA_SB_ANY("setsockopt"),
	KURA_SB_ANY("sendto"),
	KURA_SB_ANY("recvfrom"),
	KURA_SB_ANY("poll"),
	KURA_SB_ANY("fcntl"),
};

static int listener = -1, pair[2] = { -1, -1 };
static struct sockaddr_un unix_addr;
static struct sockaddr_in tcp_addr;

static void connect_to_listener(void)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || connect(fd, (struct sockaddr *)&unix_addr, sizeof(unix_addr)) < 0)
		tap_diag("cannot connect to the child's listener: %s", strerror(errno));
	if (fd >= 0)
		close(fd);
}

/* Accept, read the peer's /proc/PID/cgroup, pass the connection on: OK, or where it failed. */
static int act_front(void)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	char path[64], buf[256], cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { .iov_base = "c", .iov_len = 1 };
	struct msghdr m = { .msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = cbuf,
		.msg_controllen = sizeof(cbuf) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
	int c, fd;

	c = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0)
		return 1;
	if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return 2;
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)cred.pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || read(fd, buf, sizeof(buf)) <= 0)
		return 3;
	close(fd);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &c, sizeof(int));
	if (sendmsg(pair[0], &m, 0) != 1)
		return 4;
	/* And nothing but /proc: the store is out of reach. */
	if (open(outside, O_RDONLY | O_CLOEXEC) >= 0 || errno != EACCES)
		return 5;
	return OK;
}

static int act_net(void)
{
	int u = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int t = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (u < 0 || connect(u, (struct sockaddr *)&unix_addr, sizeof(unix_addr)) < 0)
		return 1;
	if (t < 0 || connect(t, (struct sockaddr *)&tcp_addr, sizeof(tcp_addr)) < 0)
		return 2;
	return send(t, "x", 1, MSG_NOSIGNAL) == 1 ? OK : 3;
}

static int act_netlink(void)
{
	return socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, 0) >= 0 ? OK : WRONG;
}

static int act_exec(void)
{
	char *argv[] = { "/bin/true", NULL };

	execve(argv[0], argv, argv + 1);
	return WRONG;
}

static void role_policies(void)
{
	struct kura_sandbox_path proc[] = { { "/proc", KURA_LL_READ } };
	struct kura_sandbox front = { .role = "front",
		.rules = front_rules,
		.n_rules = sizeof(front_rules) / sizeof(front_rules[0]),
		.threads = true,
		.paths = proc,
		.n_paths = 1,
		.change_user = true,
		.uid = NOBODY,
		.gid = NOBODY };
	struct kura_sandbox net = { .role = "net",
		.rules = net_rules,
		.n_rules = sizeof(net_rules) / sizeof(net_rules[0]),
		.threads = true,
		.no_fs = true,
		.change_user = true,
		.uid = NOBODY,
		.gid = NOBODY };
	socklen_t len = sizeof(tcp_addr);
	struct msghdr m = { 0 };
	char c, cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = &c, .iov_len = 1 };
	int tcp, st;

	unix_addr.sun_family = AF_UNIX;
	snprintf(unix_addr.sun_path, sizeof(unix_addr.sun_path), "%s/l.sock", root);
	listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	tcp = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	tcp_addr.sin_family = AF_INET;
	tcp_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (listener < 0 || bind(listener, (struct sockaddr *)&unix_addr, sizeof(unix_addr)) < 0 ||
		chmod(unix_addr.sun_path, 0666) < 0 || chmod(root, 0755) < 0 ||
		listen(listener, 8) < 0 || tcp < 0 ||
		bind(tcp, (struct sockaddr *)&tcp_addr, sizeof(tcp_addr)) < 0 ||
		listen(tcp, 8) < 0 || getsockname(tcp, (struct sockaddr *)&tcp_addr, &len) < 0 ||
		socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0) {
		tap_diag("cannot set the role tests up: %s", strerror(errno));
		return;
	}
	parent_side = connect_to_listener;
	st = run(&front, act_front);
	parent_side = NULL;
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	m.msg_control = cbuf;
	m.msg_controllen = sizeof(cbuf);
	tap_ok(exited(st, OK) && recvmsg(pair[1], &m, MSG_DONTWAIT) == 1 && CMSG_FIRSTHDR(&m) &&
			CMSG_FIRSTHDR(&m)->cmsg_type == SCM_RIGHTS,
		"front: accepts on an inherited listener, reads /proc, passes the connection with "
		"SCM_RIGHTS, and nothing outside /proc opens (%s)",
		describe(st));
	if (CMSG_FIRSTHDR(&m) && CMSG_FIRSTHDR(&m)->cmsg_type == SCM_RIGHTS) {
		int fd;

		memcpy(&fd, CMSG_DATA(CMSG_FIRSTHDR(&m)), sizeof(fd));
		close(fd);
	}
	st = run(&front, act_unix_socket);
	tap_ok(killed_sigsys(st), "front: creating a socket is killed (%s)", describe(st));
	st = run(&front, act_exec);
	tap_ok(killed_sigsys(st), "front: execve is killed (%s)", describe(st));
	st = run(&net, act_net);
	tap_ok(exited(st, OK), "net: connects to a Unix and a TCP socket (%s)", describe(st));
	st = run(&net, act_netlink);
	tap_ok(killed_sigsys(st), "net: an AF_NETLINK socket is killed (%s)", describe(st));
	tap_diag("front allows %zu syscalls, net %zu", kura_sandbox_count(&front),
		kura_sandbox_count(&net));
	close(listener);
	close(tcp);
	close(pair[0]);
	close(pair[1]);
	unlink(unix_addr.sun_path);
}

static const struct kura_sandbox_rule open_rules[] = { KURA_SB_ANY("openat") };

int main(void)
{
	struct kura_sandbox sb;
	char want[64];
	int st;

#if defined(__SANITIZE_ADDRESS__) || __has_feature(address_sanitizer)
	/* The sanitizer's runtime makes system calls of its own (its shadow memory, its reports)
	 * that no allow-list names: a filter here kills it, whatever the code under test does.
	 * The build without sanitizers runs every check. */
	puts("1..0 # SKIP under AddressSanitizer: its runtime's own system calls are outside "
	     "every allow-list");
	return 0;
#endif

	if (geteuid() != 0) {
		tap_skip("needs root: it changes uids and drops capabilities");
		printf("1..%d\n", tap_n);
		return 0;
	}
	if (!mkdtemp(root))
		return 1;
	snprintf(inside, sizeof(inside), "%s/in", root);
	snprintf(outside, sizeof(outside), "%s/out", root);
	snprintf(errlog, sizeof(errlog), "%s/stderr", root);
	mkdir(inside, 0755);
	mkdir(outside, 0755);
	snprintf(inside, sizeof(inside), "%s/in/f", root);
	snprintf(outside, sizeof(outside), "%s/out/f", root);
	close(open(inside, O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
	close(open(outside, O_CREAT | O_WRONLY | O_CLOEXEC, 0644));

	/* The whole lock-down, as a role would ask for it. */
	sb = (struct kura_sandbox){ .role = "test",
		.keep_caps = 1ULL << CAP_NET_BIND_SERVICE,
		.change_user = true,
		.uid = NOBODY,
		.gid = NOBODY };
	st = run(&sb, act_getpid);
	tap_ok(exited(st, OK), "an allowed call works under the filter (%s)", describe(st));
	tap_is(strcmp(field("NoNewPrivs"), "1"), 0, "NoNewPrivs is 1 (%s)", field("NoNewPrivs"));
	tap_is(strcmp(field("Seccomp"), "2"), 0, "Seccomp is 2, a filter (%s)", field("Seccomp"));
	snprintf(want, sizeof(want), "%016llx", 1ULL << CAP_NET_BIND_SERVICE);
	tap_ok(strcmp(field("CapEff"), want) == 0, "CapEff is only the kept cap (%s)",
		field("CapEff"));
	tap_ok(strcmp(field("CapPrm"), want) == 0, "CapPrm is only the kept cap (%s)",
		field("CapPrm"));
	tap_ok(strcmp(field("CapBnd"), want) == 0, "CapBnd is only the kept cap (%s)",
		field("CapBnd"));
	tap_ok(strcmp(field("CapInh"), "0000000000000000") == 0 &&
			strcmp(field("CapAmb"), "0000000000000000") == 0,
		"CapInh and CapAmb are empty (%s, %s)", field("CapInh"), field("CapAmb"));
	tap_ok(strcmp(field("Uid"), "65534\t65534\t65534\t65534") == 0, "every uid is 65534 (%s)",
		field("Uid"));
	tap_ok(strcmp(field("Gid"), "65534\t65534\t65534\t65534") == 0, "every gid is 65534 (%s)",
		field("Gid"));
	tap_ok(strspn(field("Groups"), " ") == strlen(field("Groups")),
		"no supplementary groups ('%s')", field("Groups"));

	st = run(&sb, act_inet_socket);
	tap_ok(killed_sigsys(st), "a call outside the list kills the process with SIGSYS (%s)",
		describe(st));
	st = run(&sb, act_fork);
	tap_ok(killed_sigsys(st), "fork (clone without CLONE_THREAD) is killed (%s)", describe(st));
	st = run(&sb, act_mmap_exec);
	tap_ok(killed_sigsys(st), "mmap with PROT_EXEC is killed (%s)", describe(st));
	st = run(&sb, act_mmap_rw);
	tap_ok(exited(st, OK), "mmap without PROT_EXEC works (%s)", describe(st));
	st = run(&sb, act_clone3);
	tap_ok(exited(st, OK), "clone3 fails with ENOSYS (%s)", describe(st));
	st = run(&sb, act_thread);
	tap_ok(killed_sigsys(st), "without threads, pthread_create is killed (%s)", describe(st));
	sb.threads = true;
	st = run(&sb, act_thread);
	tap_ok(exited(st, OK), "with threads, pthread_create and join work (%s)", describe(st));
	st = run(&sb, act_fork);
	tap_ok(killed_sigsys(st), "with threads, fork is still killed (%s)", describe(st));

	/* Conditions on arguments, and errno actions. */
	{
		static const struct kura_sandbox_rule r[] = {
			KURA_SB_WHEN("socket", KURA_SB_IF(0, KURA_SB_EQ, AF_UNIX, 0)),
			KURA_SB_FAIL("uname", EPERM),
		};
		struct kura_sandbox s = { .role = "test", .rules = r, .n_rules = 2 };

		st = run(&s, act_unix_socket);
		tap_ok(exited(st, OK), "socket(AF_UNIX) with arg0 == AF_UNIX allowed (%s)",
			describe(st));
		st = run(&s, act_inet_socket);
		tap_ok(killed_sigsys(st), "socket(AF_INET) is killed (%s)", describe(st));
		st = run(&s, act_uname_eperm);
		tap_ok(exited(st, OK), "an ERRNO rule fails the call with its errno (%s)",
			describe(st));
	}
	{
		static const struct kura_sandbox_rule r[] = { KURA_SB_ANY("no_such_syscall") };
		struct kura_sandbox s = { .role = "test", .rules = r, .n_rules = 1 };

		st = run(&s, act_getpid);
		tap_ok(exited(st, APPLY_FAILED), "an unknown syscall name fails closed (%s)",
			describe(st));
		tap_ok(logged("test: cannot lock the process down: no_such_syscall: "),
			"  with a log line naming the role and the step");
	}
	{
		struct kura_sandbox s = { .role = "test" };

		/* A process that holds no capability and lacks CAP_SETPCAP: its bounding set
		 * stays, with no_new_privs nothing can be gained through it. */
		unprivileged = NOBODY;
		st = run(&s, act_getpid);
		unprivileged = 0;
		snprintf(want, sizeof(want), "%s", field("Seccomp"));
		tap_ok(exited(st, OK) && strcmp(want, "2") == 0 &&
				strcmp(field("CapEff"), "0000000000000000") == 0,
			"an unprivileged process locks itself down too (%s, Seccomp %s)",
			describe(st), want);
		s.keep_caps = 0;
		s.change_user = true;
		s.uid = 0;
		s.gid = 0;
		unprivileged = NOBODY;
		st = run(&s, act_getpid);
		unprivileged = 0;
		tap_ok(exited(st, APPLY_FAILED) &&
				logged("test: cannot lock the process down: setgroups: "),
			"an unprivileged process that asks to become root fails closed, naming the "
			"step (%s)",
			describe(st));
	}
	{
		struct kura_sandbox s = { .role = "test", .keep_caps = 1ULL << CAP_SYS_ADMIN };

		st = run(&s, act_getpid);
		snprintf(want, sizeof(want), "%016llx", 1ULL << CAP_SYS_ADMIN);
		tap_ok(exited(st, OK) && strcmp(field("CapEff"), want) == 0 &&
				strcmp(field("CapBnd"), want) == 0,
			"without change_user, caps are cut to keep_caps (%s, CapEff %s)",
			describe(st), field("CapEff"));
	}

	if (!landlock_here()) {
		tap_skip("this kernel has no Landlock");
	} else {
		static const struct kura_sandbox_path ro[] = { { inside, KURA_LL_READ } };
		struct kura_sandbox s = { .role = "test",
			.rules = open_rules,
			.n_rules = 1,
			.paths = ro,
			.n_paths = 1 };
		char dir[128];

		/* A rule on the directory in/, so beneath it. */
		snprintf(dir, sizeof(dir), "%s/in", root);
		s.paths = (struct kura_sandbox_path[]){ { dir, KURA_LL_READ } };
		st = run(&s, act_paths);
		tap_ok(exited(st, OK),
			"Landlock: a file beneath a read rule opens, one outside is EACCES (%s)",
			describe(st));
		st = run(&s, act_write_inside);
		tap_ok(exited(st, OK), "Landlock: a read rule does not allow writing (%s)",
			describe(st));
		s.paths = ro; /* a rule on the file itself */
		st = run(&s, act_paths);
		tap_ok(exited(st, OK), "Landlock: a rule on one file opens that file only (%s)",
			describe(st));
		s.n_paths = 0;
		s.no_fs = true;
		st = run(&s, act_open_inside);
		tap_ok(exited(st, OK), "Landlock: no_fs refuses every open (%s)", describe(st));
		s.no_fs = false;
		s.paths = (struct kura_sandbox_path[]){ { "/nonexistent/kura", KURA_LL_READ } };
		s.n_paths = 1;
		st = run(&s, act_getpid);
		tap_ok(exited(st, APPLY_FAILED),
			"Landlock: a path that is not there fails closed (%s)", describe(st));
		s.paths = (struct kura_sandbox_path[]){ { "/nonexistent/kura",
			KURA_LL_READ | KURA_LL_OPTIONAL } };
		st = run(&s, act_open_inside);
		tap_ok(exited(st, OK),
			"Landlock: an optional path that is not there is skipped, "
			"and the rest still refused (%s)",
			describe(st));
	}
	if (landlock_here())
		role_policies();
	else
		tap_skip("the role policies use Landlock, which this kernel lacks");
	{
		struct kura_sandbox s = { .role = "test", .threads = true };

		tap_diag("base list plus threads: %zu syscalls allowed", kura_sandbox_count(&s));
		tap_ok(kura_sandbox_count(&s) > 20 && kura_sandbox_count(&s) < 40,
			"the base list stays small (%zu syscalls)", kura_sandbox_count(&s));
	}
	unlink(inside);
	unlink(outside);
	snprintf(inside, sizeof(inside), "%s/in", root);
	snprintf(outside, sizeof(outside), "%s/out", root);
	rmdir(inside);
	rmdir(outside);
	unlink(errlog);
	rmdir(root);
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}

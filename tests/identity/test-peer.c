/* Unit tests for peer identity over real Unix sockets: credentials, pidfd liveness, start time,
 * pid namespaces, the degraded paths of older kernels, and a pid recycled under the broker. */
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "macro.h"
#include "peer.h"
#include "tap.h"

static char sock_path[108];
static int listen_fd = -1;

/* Start time from /proc/<pid>/stat, parsed independently of peer.c: sscanf after the last ')'. */
static uint64_t stat_start_time(pid_t pid)
{
	char path[64], buf[4096], *p;
	unsigned long long t = 0;
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (!p ||
		sscanf(p + 2,
			"%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d "
			"%*d %*d %llu",
			&t) != 1)
		return 0;
	return t;
}

/* kura_peer_start_time, or -1 */
static long long peer_start(struct kura_peer *p)
{
	uint64_t t;

	return kura_peer_start_time(p, &t) == 0 ? (long long)t : -1;
}

/* Whether pidfd_open() works here (valgrind, for one, does not know it). */
static bool have_pidfd_open(void)
{
	int fd = (int)syscall(SYS_pidfd_open, getpid(), 0);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

struct child {
	pid_t pid;
	int conn; /* our accepted end */
	int ctl;  /* write a byte or close: the child exits */
};

/* The child's side: name itself awkwardly, drop to nobody, connect, report, wait, exit. */
static _Noreturn void child_main(int ctl, int report, bool drop)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;
	pid_t me = getpid();
	char c;

	close(listen_fd);
	prctl(PR_SET_NAME, "a) b (c");
	if (drop && (setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0))
		_exit(3);
	memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		_exit(4);
	if (report >= 0 && write(report, &me, sizeof(me)) != sizeof(me))
		_exit(5);
	while (read(ctl, &c, 1) < 0 && errno == EINTR)
		;
	close(fd);
	close(ctl);
	if (report >= 0)
		close(report);
	_exit(0);
}

/* Fork a child that connects to sock_path; our end of its connection in c->conn. */
static int spawn(struct child *c, bool drop)
{
	int ctl[2];

	if (pipe2(ctl, O_CLOEXEC) < 0)
		return -errno;
	c->pid = fork();
	if (c->pid < 0)
		return -errno;
	if (c->pid == 0) {
		close(ctl[1]);
		child_main(ctl[0], -1, drop);
	}
	close(ctl[0]);
	c->ctl = ctl[1];
	c->conn = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	return c->conn < 0 ? -errno : 0;
}

/* Let the child exit; wait until it is a zombie, but do not reap it. */
static void child_exit(struct child *c)
{
	siginfo_t si;

	if (c->ctl >= 0)
		close(c->ctl);
	c->ctl = -1;
	waitid(P_PID, (id_t)c->pid, &si, WEXITED | WNOWAIT);
}

static void child_reap(struct child *c)
{
	int status;

	child_exit(c);
	if (c->pid > 0)
		waitpid(c->pid, &status, 0);
	if (c->conn >= 0)
		close(c->conn);
	c->conn = -1;
}

/* A new process with exactly the given pid (clone3 with set_tid, needs CAP_SYS_ADMIN), which
 * waits to be killed; -errno if the kernel will not. */
static pid_t spawn_with_pid(pid_t want)
{
	struct clone_args args = {
		.exit_signal = SIGCHLD,
		.set_tid = (uintptr_t)&want,
		.set_tid_size = 1,
	};
	long r = syscall(SYS_clone3, &args, sizeof(args));

	if (r < 0)
		return -errno;
	if (r == 0) {
		for (;;)
			pause();
	}
	return (pid_t)r;
}

static void kill_reap(pid_t pid)
{
	int status;

	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
}

static void self_socketpair(void)
{
	struct kura_peer p = KURA_PEER_NULL;
	int sv[2];
	bool same = false;

	if (!tap_ok(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair"))
		return;
	tap_is(kura_peer_from_socket(sv[0], &p), 0, "socketpair: peer");
	tap_ok(p.pid == getpid() && p.uid == getuid() && p.gid == getgid(),
		"socketpair: the peer is the creator (us)");
	tap_ok(p.pidfd >= 0 && p.proc_fd >= 0 && !p.degraded,
		"socketpair: a pidfd from the kernel");
	tap_is((long long)peer_start(&p), (long long)stat_start_time(getpid()),
		"socketpair: our start time");
	tap_ok(kura_peer_alive(&p), "socketpair: alive");
	tap_ok(kura_peer_ns_equal(&p, getpid(), &same) == 0 && same, "socketpair: same pid ns");
	kura_peer_done(&p);
	tap_ok(p.pidfd == -1 && p.proc_fd == -1, "done closes and clears");
	kura_peer_done(&p);
	kura_peer_done(NULL);
	tap_ok(!kura_peer_alive(&p) && !kura_peer_alive(NULL), "a done or NULL peer is not alive");
	close(sv[0]);
	close(sv[1]);
}

static void child_peer(unsigned flags, const char *mode)
{
	struct child c = { .ctl = -1, .conn = -1 };
	struct kura_peer p = KURA_PEER_NULL;
	bool same = false;
	int r;

	if (!tap_ok(spawn(&c, true) == 0, "%s: a child connects", mode)) {
		child_reap(&c);
		return;
	}
	r = kura_peer_from_socket_flags(c.conn, flags, &p);
	tap_is(r, 0, "%s: peer of the accepted connection", mode);
	tap_ok(p.pid == c.pid && p.uid == 65534 && p.gid == 65534,
		"%s: pid %d uid %u gid %u are the child's (%d, nobody)", mode, (int)p.pid,
		(unsigned)p.uid, (unsigned)p.gid, (int)c.pid);
	tap_ok(p.degraded == (flags != 0), "%s: degraded is %s", mode, flags ? "set" : "clear");
	tap_ok((p.pidfd >= 0) ==
			(flags == 0 || (!(flags & KURA_PEER_NO_PIDFD) && have_pidfd_open())),
		"%s: pidfd %s", mode, p.pidfd >= 0 ? "present" : "absent");
	tap_is((long long)peer_start(&p), (long long)stat_start_time(c.pid),
		"%s: start time matches /proc/<child>/stat (comm \"a) b (c\")", mode);
	tap_ok(kura_peer_alive(&p), "%s: alive while the child runs", mode);
	tap_ok(kura_peer_ns_equal(&p, getpid(), &same) == 0 && same,
		"%s: the child shares our pid ns", mode);

	child_exit(&c);
	tap_ok(!kura_peer_alive(&p), "%s: not alive once the child exited (zombie)", mode);
	child_reap(&c);
	tap_ok(!kura_peer_alive(&p), "%s: not alive once reaped", mode);
	same = true;
	r = kura_peer_ns_equal(&p, getpid(), &same);
	tap_ok(r < 0 && same, "%s: the pid ns of a reaped peer cannot be compared (%d)", mode, r);
	kura_peer_done(&p);
}

/* The peer exits and another process takes its pid while the broker looks things up. */
static void recycled_after(unsigned flags, const char *mode)
{
	struct child c = { .ctl = -1, .conn = -1 };
	struct kura_peer p = KURA_PEER_NULL;
	pid_t impostor;

	if (spawn(&c, false) < 0 || kura_peer_from_socket_flags(c.conn, flags, &p) < 0) {
		tap_ok(false, "%s: set up a peer", mode);
		child_reap(&c);
		return;
	}
	child_reap(&c);
	impostor = spawn_with_pid(c.pid);
	if (impostor < 0) {
		tap_skip("%s: cannot create a process with a chosen pid (clone3 set_tid: %s)", mode,
			strerror(-impostor));
	} else {
		tap_ok(impostor == c.pid && !kura_peer_alive(&p),
			"%s: pid %d recycled after the lookup: not alive", mode, (int)impostor);
	}
	kill_reap(impostor);
	kura_peer_done(&p);
}

/* The peer exits and its pid is taken before the broker even asks about the connection. */
static void recycled_before(void)
{
	struct child c = { .ctl = -1, .conn = -1 };
	struct kura_peer p = KURA_PEER_NULL;
	pid_t impostor;
	int r;

	if (!tap_ok(spawn(&c, false) == 0, "recycled before: a child connects")) {
		child_reap(&c);
		return;
	}
	child_exit(&c);
	waitpid(c.pid, &r, 0);
	impostor = spawn_with_pid(c.pid);
	if (impostor < 0) {
		tap_skip("recycled before: clone3 set_tid: %s", strerror(-impostor));
	} else {
		r = kura_peer_from_socket(c.conn, &p);
		tap_ok(r == -ESRCH || (r == 0 && !kura_peer_alive(&p)),
			"recycled before: the pid's new owner is never the peer (%d)", r);
		if (r == 0)
			tap_diag("kernel returned a pidfd for a reaped peer; alive() refused it");
	}
	kura_peer_done(&p);
	kill_reap(impostor);
	close(c.conn);
}

static void other_pid_ns(void)
{
	struct kura_peer p = KURA_PEER_NULL;
	bool same = true;
	int report[2], ctl[2], conn = -1, status;
	pid_t child, grandchild = 0;

	if (pipe2(report, O_CLOEXEC) < 0 || pipe2(ctl, O_CLOEXEC) < 0) {
		tap_ok(false, "pipes");
		return;
	}
	child = fork();
	if (child == 0) {
		pid_t gc;

		close(report[0]);
		close(ctl[1]);
		if (unshare(CLONE_NEWPID) < 0)
			_exit(10);
		gc = fork();
		if (gc < 0)
			_exit(11);
		if (gc == 0)
			child_main(ctl[0], -1, false);
		/* fork() returns the grandchild's pid in our (the parent's) namespace. */
		if (write(report[1], &gc, sizeof(gc)) != sizeof(gc))
			_exit(12);
		waitpid(gc, &status, 0);
		_exit(0);
	}
	close(report[1]);
	close(ctl[0]);
	if (read(report[0], &grandchild, sizeof(grandchild)) != sizeof(grandchild)) {
		waitpid(child, &status, 0);
		if (WIFEXITED(status) && WEXITSTATUS(status) == 10)
			tap_skip("cannot unshare a pid namespace here");
		else
			tap_ok(false, "a child in a new pid namespace (status %d)", status);
		close(report[0]);
		close(ctl[1]);
		return;
	}
	conn = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	tap_is(kura_peer_from_socket(conn, &p), 0, "pid ns: peer in another pid namespace");
	tap_is(p.pid, grandchild, "pid ns: its pid as our namespace sees it");
	tap_is((long long)peer_start(&p), (long long)stat_start_time(grandchild),
		"pid ns: start time");
	tap_ok(kura_peer_ns_equal(&p, getpid(), &same) == 0 && !same,
		"pid ns: not the same pid namespace as ours");
	same = false;
	tap_ok(kura_peer_ns_equal(&p, grandchild, &same) == 0 && same,
		"pid ns: the same as its own by pid");
	close(ctl[1]);
	waitpid(child, &status, 0);
	tap_ok(!kura_peer_alive(&p), "pid ns: not alive after exit");
	kura_peer_done(&p);
	close(conn);
	close(report[0]);
}

static void errors(void)
{
	struct kura_peer p = KURA_PEER_NULL, untouched;
	int pfd[2], fd;
	bool same = false;

	p.pid = 4242;
	untouched = p;
	if (pipe2(pfd, O_CLOEXEC) == 0) {
		tap_is(kura_peer_from_socket(pfd[0], &p), -ENOTSOCK, "a pipe: -ENOTSOCK");
		close(pfd[0]);
		close(pfd[1]);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	tap_is(kura_peer_from_socket(fd, &p), -ENOTCONN, "an unconnected Unix socket: -ENOTCONN");
	close(fd);
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	tap_is(kura_peer_from_socket(fd, &p), -EAFNOSUPPORT, "an INET socket: -EAFNOSUPPORT");
	close(fd);
	tap_ok(memcmp(&p, &untouched, sizeof(p)) == 0, "*ret untouched on failure");
	tap_is(kura_peer_ns_equal(&p, getpid(), &same), -EINVAL, "ns_equal of an empty peer");
}

static void ns_equal_gone(void)
{
	struct kura_peer p = KURA_PEER_NULL;
	int sv[2], status;
	bool same = true;
	pid_t gone = fork();

	if (gone == 0)
		_exit(0);
	waitpid(gone, &status, 0);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 ||
		kura_peer_from_socket(sv[0], &p) < 0) {
		tap_ok(false, "socketpair peer");
		return;
	}
	tap_is(kura_peer_ns_equal(&p, gone, &same), -ESRCH, "ns_equal with a reaped pid: -ESRCH");
	tap_ok(same, "*ret_same untouched");
	kura_peer_done(&p);
	close(sv[0]);
	close(sv[1]);
}

static bool write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	bool ok;

	if (fd < 0)
		return false;
	ok = write(fd, text, strlen(text)) == (ssize_t)strlen(text);
	close(fd);
	return ok;
}

/* What a child does before it connects: nothing, or leave one of our namespaces. */
enum ns_setup { NS_NONE, NS_MOUNT, NS_CGROUP, NS_USER_AS_NOBODY, NS_USER_NESTED };

static _Noreturn void ns_child_main(int ctl, int ready, enum ns_setup how)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, ok = 1;
	char c;

	close(listen_fd);
	switch (how) {
	case NS_NONE:
		break;
	case NS_MOUNT:
		ok = unshare(CLONE_NEWNS) == 0;
		break;
	case NS_CGROUP:
		ok = unshare(CLONE_NEWCGROUP) == 0;
		break;
	case NS_USER_AS_NOBODY:
	case NS_USER_NESTED:
		/* An unprivileged user makes a namespace of its own (any uid can); to make another
		 * inside it, it must be mapped there first (itself as root, as unshare -r does). */
		ok = setresgid(65534, 65534, 65534) == 0 && setresuid(65534, 65534, 65534) == 0 &&
			unshare(CLONE_NEWUSER) == 0;
		/* Changing uids made us undumpable, and /proc/self root's: undo that. */
		if (ok && how == NS_USER_NESTED)
			ok = prctl(PR_SET_DUMPABLE, 1) == 0;
		if (ok && how == NS_USER_NESTED)
			ok = write_file("/proc/self/setgroups", "deny") &&
				write_file("/proc/self/uid_map", "0 65534 1") &&
				write_file("/proc/self/gid_map", "0 65534 1") &&
				unshare(CLONE_NEWUSER) == 0;
		break;
	}
	if (!ok)
		_exit(7);
	memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		_exit(4);
	if (write(ready, "r", 1) != 1)
		_exit(5);
	while (read(ctl, &c, 1) < 0 && errno == EINTR)
		;
	_exit(0);
}

/* A child set up as `how`, connected; its peer in *ret. false (and a skip) if the kernel would
 * not let it. */
static bool ns_child(enum ns_setup how, struct child *c, struct kura_peer *ret, const char *what)
{
	int ctl[2], ready[2];
	char b;

	if (pipe2(ctl, O_CLOEXEC) < 0 || pipe2(ready, O_CLOEXEC) < 0)
		return false;
	c->pid = fork();
	if (c->pid == 0) {
		close(ctl[1]);
		close(ready[0]);
		ns_child_main(ctl[0], ready[1], how);
	}
	close(ctl[0]);
	close(ready[1]);
	c->ctl = ctl[1];
	c->conn = -1;
	if (read(ready[0], &b, 1) != 1) {
		close(ready[0]);
		child_reap(c);
		tap_skip("%s: the kernel would not make the namespace here", what);
		return false;
	}
	close(ready[0]);
	c->conn = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (!tap_ok(c->conn >= 0 && kura_peer_from_socket(c->conn, ret) == 0, "%s: peer", what)) {
		child_reap(c);
		return false;
	}
	return true;
}

/* Finding 6 of issue 10: host means kurad's own namespaces, which a container cannot fake;
 * finding 2: a user's own user namespaces answer to that user. */
static void host_namespaces(void)
{
	static const struct {
		enum ns_setup how;
		bool host;
		const char *what;
	} cases[] = {
		{ NS_NONE, true, "a child in our namespaces" },
		{ NS_MOUNT, false, "a child in a mount namespace of its own" },
		{ NS_CGROUP, false, "a child in a cgroup namespace of its own" },
	};

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		struct child c = { .ctl = -1, .conn = -1 };
		struct kura_peer p = KURA_PEER_NULL;
		bool host = !cases[i].host;

		if (!ns_child(cases[i].how, &c, &p, cases[i].what))
			continue;
		tap_ok(kura_peer_in_host_namespaces(&p, &host) == 0 && host == cases[i].host,
			"%s: %s", cases[i].what,
			cases[i].host ? "host namespaces" : "not the host's");
		kura_peer_done(&p);
		child_reap(&c);
	}
}

static void user_owner(void)
{
	static const struct {
		enum ns_setup how;
		const char *what;
	} cases[] = {
		{ NS_NONE, "in our user namespace" },
		{ NS_USER_AS_NOBODY, "nobody in a user namespace of its own" },
		{ NS_USER_NESTED, "nobody two user namespaces down" },
	};

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		struct child c = { .ctl = -1, .conn = -1 };
		struct kura_peer p = KURA_PEER_NULL;
		uid_t owner = 12345;
		uid_t want = cases[i].how == NS_NONE ? getuid() : 65534;

		if (!ns_child(cases[i].how, &c, &p, cases[i].what))
			continue;
		int r = kura_peer_user_owner(&p, &owner);

		tap_ok(r == 0 && owner == want, "%s: answers to uid %u (got %d, %u)", cases[i].what,
			(unsigned)want, r, (unsigned)owner);
		kura_peer_done(&p);
		child_reap(&c);
	}
	{
		struct kura_peer gone = KURA_PEER_NULL;
		uid_t owner;

		tap_is(kura_peer_user_owner(&gone, &owner), -EINVAL, "no peer: -EINVAL");
	}
}

int main(void)
{
	char dir[] = "/tmp/test-peer.XXXXXX";
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	signal(SIGPIPE, SIG_IGN);
	if (!mkdtemp(dir))
		return 3;
	chmod(dir, 0755); /* the children connect as nobody */
	snprintf(sock_path, sizeof(sock_path), "%s/s.sock", dir);
	memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
	listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
		chmod(sock_path, 0777) < 0 || listen(listen_fd, 16) < 0) {
		tap_ok(false, "listen on %s: %m", sock_path);
		tap_rmtree(dir);
		return tap_done();
	}

	self_socketpair();
	child_peer(0, "pidfd");
	child_peer(KURA_PEER_NO_PEERPIDFD, "degraded, pidfd_open");
	child_peer(KURA_PEER_NO_PIDFD, "degraded, no pidfd");
	recycled_after(0, "pidfd");
	recycled_after(KURA_PEER_NO_PEERPIDFD, "degraded, pidfd_open");
	recycled_after(KURA_PEER_NO_PIDFD, "degraded, no pidfd");
	recycled_before();
	other_pid_ns();
	errors();
	ns_equal_gone();
	host_namespaces();
	user_owner();

	close(listen_fd);
	tap_rmtree(dir);
	return tap_done();
}

/* Peer credentials of a Unix socket, bound to the exact process with a pidfd and its /proc
 * directory, so later lookups cannot be fooled by pid reuse. Touches no plaintext. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/nsfs.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "macro.h"
#include "peer.h"
#include "proc.h"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

/* /proc/<pid>/stat is a few hundred bytes; comm is at most 16 of them. */
#define STAT_MAX 4096
#define STAT_STARTTIME 22

/* Fields 3 (state) and 22 (start time) of <proc_fd>/stat. The fields are counted after the last
 * ')', because comm (field 2) is chosen by the process and may hold spaces and parentheses.
 * -ESRCH once the process is gone (reads through an old /proc/<pid> fail, they never show a
 * newer process); a zombie still reads, with state 'Z'. */
static int read_stat(int proc_fd, char *ret_state, uint64_t *ret_start)
{
	char buf[STAT_MAX];
	size_t len = 0;
	const char *p, *end;
	uint64_t v = 0;
	bool truncated;
	char state;
	int r;

	r = kura_proc_read(proc_fd, "stat", buf, sizeof(buf), &len, &truncated);
	if (r < 0)
		return r;
	if (truncated)
		return -EBADMSG;
	end = buf + len;
	p = memrchr(buf, ')', len);
	if (!p)
		return -EBADMSG;
	p++;
	if (end - p < 3 || p[0] != ' ' || p[2] != ' ')
		return -EBADMSG;
	state = p[1];
	/* Field 3 (state) starts after ") "; skip to the start of field 22. */
	for (int field = 2; field < STAT_STARTTIME; field++) {
		if (p >= end || *p != ' ')
			return -EBADMSG;
		p++;
		if (field + 1 == STAT_STARTTIME)
			break;
		while (p < end && *p != ' ')
			p++;
	}
	if (p >= end || *p < '0' || *p > '9')
		return -EBADMSG;
	for (; p < end && *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - 9) / 10)
			return -EBADMSG;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (p >= end || *p != ' ')
		return -EBADMSG;
	*ret_state = state;
	*ret_start = v;
	return 0;
}

/* A zombie ('Z') or one being torn down ('X', 'x'): it will run no more, and its pid may be
 * reused as soon as it is reaped. */
static bool exited(char state)
{
	return state == 'Z' || state == 'X' || state == 'x';
}

/* /proc/<pid> opened as a directory fd, if that process is alive (not a zombie), and its start
 * time. -ESRCH when it is gone. */
static int open_proc(pid_t pid)
{
	char path[32];
	int fd;

	snprintf(path, sizeof(path), "/proc/%" PRId32, (int32_t)pid);
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	return fd;
}

static int open_live_proc(pid_t pid, uint64_t *ret_start)
{
	_cleanup_close_ int fd = open_proc(pid);
	char state;
	int r;

	if (fd < 0)
		return fd;
	r = read_stat(fd, &state, ret_start);
	if (r < 0)
		return r;
	if (exited(state))
		return -ESRCH;
	return TAKE_FD(fd);
}

/* 1 if the process behind pidfd has exited (POLLIN), 0 if it runs, -errno. */
static int pidfd_exited(int pidfd)
{
	struct pollfd pfd = { .fd = pidfd, .events = POLLIN };
	int r;

	do
		r = poll(&pfd, 1, 0);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	if (r > 0 && (pfd.revents & (POLLERR | POLLNVAL)))
		return -EBADF;
	return r > 0;
}

int kura_peer_from_socket_flags(int fd, unsigned flags, struct kura_peer *ret)
{
	_cleanup_close_ int pidfd = -1, proc_fd = -1;
	struct ucred cred;
	socklen_t sl = sizeof(cred);
	bool degraded = false;
	uint64_t start_time;
	int domain, r;

	sl = sizeof(domain);
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &sl) < 0)
		return -errno;
	if (domain != AF_UNIX)
		return -EAFNOSUPPORT;
	sl = sizeof(cred);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &sl) < 0)
		return -errno;
	if (cred.pid <= 0) {
		struct sockaddr_un sa;
		socklen_t al = sizeof(sa);

		/* No peer yet, or one in a pid namespace we cannot see into. */
		if (getpeername(fd, (struct sockaddr *)&sa, &al) < 0 && errno == ENOTCONN)
			return -ENOTCONN;
		return -ESRCH;
	}

	sl = sizeof(pidfd);
	if (!(flags & (KURA_PEER_NO_PEERPIDFD | KURA_PEER_NO_PIDFD)) &&
		getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &sl) < 0) {
		pidfd = -1;
		/* A kernel that knows the option fails it with EINVAL (6.5-6.15) or ESRCH when the
		 * peer is already reaped: falling back then would bind whatever has its pid now. */
		if (errno == EINVAL || errno == ESRCH)
			return -ESRCH;
		if (errno != ENOPROTOOPT)
			return -errno;
		flags |= KURA_PEER_NO_PEERPIDFD;
	}
	if (flags & (KURA_PEER_NO_PEERPIDFD | KURA_PEER_NO_PIDFD)) {
		degraded = true;
		if (!(flags & KURA_PEER_NO_PIDFD)) {
			pidfd = (int)syscall(SYS_pidfd_open, cred.pid, 0);
			if (pidfd < 0 && errno != ENOSYS)
				return -errno;
		}
	}

	/* With the kernel's pidfd, the check below binds /proc/<pid> to the process that
	 * connected, and a process that has exited (a zombie too) shows on the pidfd: its stat is
	 * not needed, and is read only if its start time is asked for (kura_peer_start_time).
	 * Without one, the start time read now is the witness kura_peer_alive compares. */
	start_time = 0;
	proc_fd = degraded ? open_live_proc(cred.pid, &start_time) : open_proc(cred.pid);
	if (proc_fd < 0)
		return proc_fd;

	/* The pid cannot have been reused before /proc/<pid> was opened if the pidfd's process
	 * was still running after it: so both name the same process. */
	if (pidfd >= 0) {
		r = pidfd_exited(pidfd);
		if (r < 0)
			return r;
		if (r > 0)
			return -ESRCH;
	}

	*ret = (struct kura_peer){
		.pid = cred.pid,
		.uid = cred.uid,
		.gid = cred.gid,
		.pidfd = TAKE_FD(pidfd),
		.proc_fd = TAKE_FD(proc_fd),
		.start_time = start_time,
		.have_start_time = degraded,
		.degraded = degraded,
	};
	return 0;
}

int kura_peer_start_time(struct kura_peer *p, uint64_t *ret)
{
	char state;
	int r;

	if (!p || p->proc_fd < 0)
		return -EINVAL;
	if (!p->have_start_time) {
		r = read_stat(p->proc_fd, &state, &p->start_time);
		if (r < 0)
			return r;
		p->have_start_time = true;
	}
	*ret = p->start_time;
	return 0;
}

int kura_peer_from_socket(int fd, struct kura_peer *ret)
{
	return kura_peer_from_socket_flags(fd, 0, ret);
}

/* The effective uid and gid from <proc_fd>/status ("Uid:\treal\teffective\tsaved\tfs"). */
static int read_ids(int proc_fd, uid_t *ret_uid, gid_t *ret_gid)
{
	char buf[STAT_MAX], *line;
	unsigned long uid = 0, gid = 0;
	bool have_uid = false, have_gid = false, truncated;
	size_t len = 0;
	int r;

	/* Uid and Gid come within the first few hundred bytes; the rest can be cut. */
	r = kura_proc_read(proc_fd, "status", buf, sizeof(buf) - 1, &len, &truncated);
	if (r < 0)
		return r;
	buf[len] = '\0';
	for (line = buf; *line;) {
		char *nl = strchr(line, '\n');

		if (strncmp(line, "Uid:", 4) == 0)
			have_uid = sscanf(line + 4, "%*u %lu", &uid) == 1;
		else if (strncmp(line, "Gid:", 4) == 0)
			have_gid = sscanf(line + 4, "%*u %lu", &gid) == 1;
		if (!nl)
			break;
		line = nl + 1;
	}
	if (!have_uid || !have_gid || uid > UINT32_MAX - 1 || gid > UINT32_MAX - 1)
		return -EBADMSG;
	*ret_uid = (uid_t)uid;
	*ret_gid = (gid_t)gid;
	return 0;
}

int kura_peer_from_pid(pid_t pid, struct kura_peer *ret)
{
	_cleanup_close_ int pidfd = -1, proc_fd = -1;
	uint64_t start_time;
	bool degraded;
	uid_t uid;
	gid_t gid;
	int r;

	if (pid <= 0)
		return -EINVAL;
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0 && errno != ENOSYS)
		return errno == ESRCH ? -ESRCH : -errno;
	proc_fd = open_live_proc(pid, &start_time);
	if (proc_fd < 0)
		return proc_fd;
	r = read_ids(proc_fd, &uid, &gid);
	if (r < 0)
		return r;
	degraded = pidfd < 0;
	if (pidfd >= 0) {
		r = pidfd_exited(pidfd);
		if (r < 0)
			return r;
		if (r > 0)
			return -ESRCH;
	}
	*ret = (struct kura_peer){
		.pid = pid,
		.uid = uid,
		.gid = gid,
		.pidfd = TAKE_FD(pidfd),
		.proc_fd = TAKE_FD(proc_fd),
		.start_time = start_time,
		.have_start_time = true,
		.degraded = degraded,
	};
	return 0;
}

bool kura_peer_alive(const struct kura_peer *p)
{
	uint64_t t;
	char state;

	if (!p || p->proc_fd < 0)
		return false;
	if (p->pidfd >= 0 && pidfd_exited(p->pidfd) != 0)
		return false;
	if (p->pidfd < 0 && !p->degraded)
		return false;
	/* Without SO_PEERPIDFD the pidfd may have been bound late; the start time read through
	 * the /proc directory is a second, independent witness. */
	if (p->degraded &&
		(read_stat(p->proc_fd, &state, &t) < 0 || exited(state) || t != p->start_time))
		return false;
	return true;
}

/* The namespaces and root that make a place: kurad's own, or the host's. */
struct ns_set {
	struct stat pid_ns, mnt, cgroup, root;
};

static const char *const ns_names[] = { "ns/pid", "ns/mnt", "ns/cgroup", "root" };
static const char *const ns_types[] = { "pid", "mnt", "cgroup", NULL };

static struct stat *ns_member(struct ns_set *s, size_t i)
{
	struct stat *m[] = { &s->pid_ns, &s->mnt, &s->cgroup, &s->root };

	return m[i];
}

/* kurad's own namespaces and root, asked about on every request and never changing: read once per
 * process (a fork that asks gets its own reading). */
struct self_view {
	pid_t pid;
	int err;
	struct stat user;
	struct ns_set ns;
};

static pthread_mutex_t self_lock = PTHREAD_MUTEX_INITIALIZER;
static struct self_view self_cached;

/* The host's, as the process kura_peer_host_reference named showed them. Their namespace files
 * stay open, so that no namespace made later can be given their inode numbers. */
static struct {
	bool set;
	int fd[3];
	struct ns_set ns;
} host_ref = { .fd = { -1, -1, -1 } };

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/*
 * Where name under dirfd leads: a namespace link of type ns_type ("pid", ...), or, with ns_type
 * NULL, a directory (root). A namespace is read as the link's text, "TYPE:[INODE]", which the
 * kernel writes itself: half the cost of a stat, which opens the namespace to report the same
 * inode number (all namespaces live on one nsfs, so the number alone names one). Its st_dev is
 * left 0 and st_ino is that number.
 */
static int place_at(int dirfd, const char *name, const char *ns_type, struct stat *ret)
{
	char link[64], *end;
	unsigned long long ino;
	size_t tl;
	ssize_t n;

	if (!ns_type) {
		if (fstatat(dirfd, name, ret, 0) < 0)
			return errno == ENOENT ? -ESRCH : -errno;
		return 0;
	}
	n = readlinkat(dirfd, name, link, sizeof(link) - 1);
	if (n < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	link[n] = '\0';
	tl = strlen(ns_type);
	if ((size_t)n < tl + 4 || strncmp(link, ns_type, tl) != 0 || link[tl] != ':' ||
		link[tl + 1] != '[' || link[tl + 2] < '0' || link[tl + 2] > '9')
		return -EBADMSG;
	errno = 0;
	ino = strtoull(link + tl + 2, &end, 10);
	if (errno || end[0] != ']' || end[1] != '\0')
		return -EBADMSG;
	*ret = (struct stat){ .st_ino = (ino_t)ino };
	return 0;
}

/* Our pid, without a system call per request: read at first use, and again in a forked child
 * (pthread_atfork clears it there). */
static pid_t self_pid;

static void self_pid_reset(void);

static void self_pid_atfork(void)
{
	(void)pthread_atfork(NULL, NULL, self_pid_reset);
}

static void self_pid_reset(void)
{
	self_pid = 0;
}

static pid_t my_pid(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, self_pid_atfork);
	if (!self_pid)
		self_pid = getpid();
	return self_pid;
}

static int self_view(struct self_view *ret)
{
	pid_t me = my_pid();

	pthread_mutex_lock(&self_lock);
	if (self_cached.pid != me) {
		struct self_view v = { .pid = me };

		v.err = place_at(AT_FDCWD, "/proc/self/ns/user", "user", &v.user);
		for (size_t i = 0; i < ELEMENTSOF(ns_names) && !v.err; i++) {
			char path[32];

			snprintf(path, sizeof(path), "/proc/self/%s", ns_names[i]);
			v.err = place_at(AT_FDCWD, path, ns_types[i], ns_member(&v.ns, i));
		}
		self_cached = v;
	}
	*ret = self_cached;
	pthread_mutex_unlock(&self_lock);
	return ret->err;
}

int kura_peer_host_reference(pid_t pid)
{
	struct ns_set ns;
	struct stat st;
	int fd[3] = { -1, -1, -1 };
	int r = 0;

	if (pid <= 0)
		return -EINVAL;
	for (size_t i = 0; i < ELEMENTSOF(ns_names) && r == 0; i++) {
		char path[48];

		snprintf(path, sizeof(path), "/proc/%" PRId32 "/%s", (int32_t)pid, ns_names[i]);
		r = place_at(AT_FDCWD, path, ns_types[i], ns_member(&ns, i));
		if (r < 0 || i >= ELEMENTSOF(fd))
			continue;
		/* Held open, and the very namespace the link named (it may have moved since). */
		fd[i] = open(path, O_RDONLY | O_CLOEXEC);
		if (fd[i] < 0 || fstat(fd[i], &st) < 0)
			r = -errno;
		else if (st.st_ino != ns_member(&ns, i)->st_ino)
			r = -ESTALE;
	}
	if (r < 0) {
		for (size_t i = 0; i < ELEMENTSOF(fd); i++)
			if (fd[i] >= 0)
				close(fd[i]);
		return r == -ENOENT ? -ESRCH : r;
	}
	for (size_t i = 0; i < ELEMENTSOF(fd); i++) {
		if (host_ref.fd[i] >= 0)
			close(host_ref.fd[i]);
		host_ref.fd[i] = fd[i];
	}
	host_ref.ns = ns;
	host_ref.set = true;
	return 0;
}

bool kura_peer_host_is_self(void)
{
	struct self_view self;

	if (!host_ref.set || self_view(&self) < 0)
		return false;
	for (size_t i = 0; i < ELEMENTSOF(ns_names); i++)
		if (!same_file(ns_member(&self.ns, i), ns_member(&host_ref.ns, i)))
			return false;
	return true;
}

int kura_peer_ns_equal(const struct kura_peer *p, pid_t other_pid, bool *ret_same)
{
	struct self_view self;
	struct stat a = { 0 }, b = { 0 };
	char path[48];
	int r;

	if (!p || p->proc_fd < 0 || other_pid <= 0)
		return -EINVAL;
	r = place_at(p->proc_fd, "ns/pid", "pid", &a);
	if (r < 0)
		return r;
	if (other_pid == my_pid()) {
		r = self_view(&self);
		if (r < 0)
			return r;
		b = self.ns.pid_ns;
	} else {
		snprintf(path, sizeof(path), "/proc/%" PRId32 "/ns/pid", (int32_t)other_pid);
		r = place_at(AT_FDCWD, path, "pid", &b);
		if (r < 0)
			return r;
	}
	*ret_same = same_file(&a, &b);
	return 0;
}

static bool same_set(struct ns_set *a, struct ns_set *b)
{
	for (size_t i = 0; i < ELEMENTSOF(ns_names); i++)
		if (!same_file(ns_member(a, i), ns_member(b, i)))
			return false;
	return true;
}

int kura_peer_in_host_namespaces(const struct kura_peer *p, bool *ret)
{
	struct self_view self;
	struct ns_set peer;
	int r;

	if (!p || p->proc_fd < 0)
		return -EINVAL;
	r = self_view(&self);
	if (r < 0)
		return r;
	for (size_t i = 0; i < ELEMENTSOF(ns_names); i++) {
		r = place_at(p->proc_fd, ns_names[i], ns_types[i], ns_member(&peer, i));
		if (r < 0)
			return r;
	}
	/* All four of one place, never a mix: kurad's own, or the host's. */
	*ret = same_set(&peer, &self.ns) || (host_ref.set && same_set(&peer, &host_ref.ns));
	return 0;
}

/* User namespaces nest at most 32 deep (the kernel's limit). */
#define USERNS_DEPTH_MAX 33

int kura_peer_user_owner(const struct kura_peer *p, uid_t *ret)
{
	_cleanup_close_ int fd = -1;
	struct self_view self;
	struct stat st;
	int r;

	if (!p || p->proc_fd < 0)
		return -EINVAL;
	r = self_view(&self);
	if (r < 0)
		return r;
	/* Most peers share our user namespace: its link tells, and only a walk needs it open. */
	r = place_at(p->proc_fd, "ns/user", "user", &st);
	if (r < 0)
		return r;
	if (same_file(&st, &self.user)) {
		*ret = p->uid;
		return 0;
	}
	fd = openat(p->proc_fd, "ns/user", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	/* Walk up to the namespace whose parent is ours: its owner is the user who made it. */
	for (int depth = 0; depth < USERNS_DEPTH_MAX; depth++) {
		_cleanup_close_ int parent = ioctl(fd, NS_GET_PARENT);
		uid_t owner;

		if (parent < 0)
			return -errno; /* EPERM: the parent is not below ours */
		if (fstat(parent, &st) < 0)
			return -errno;
		/* An open namespace's inode number is the one its link shows. */
		if (st.st_ino == self.user.st_ino) {
			if (ioctl(fd, NS_GET_OWNER_UID, &owner) < 0)
				return -errno;
			*ret = owner;
			return 0;
		}
		close(fd);
		fd = TAKE_FD(parent);
	}
	return -ELOOP;
}

void kura_peer_done(struct kura_peer *p)
{
	if (!p)
		return;
	if (p->pidfd >= 0)
		close(p->pidfd);
	if (p->proc_fd >= 0)
		close(p->proc_fd);
	p->pidfd = -1;
	p->proc_fd = -1;
}

/* kurad's life cycle: the run directory and its lock, the two sockets, the channels between the
 * processes, and each process's parts: the key custody process's vault, audit recorder,
 * runtimes, identity resolver and admin API; the front's workload API. No plaintext here. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netdb.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "clock.h"
#include "daemon.h"
#include "log.h"
#include "http.h"
#include "cgroup.h"
#include "peer.h"
#include "runtime.h"
#include "safepath.h"
#include "tpm2.h"

/* libmicrohttpd's own complaints (malformed requests and the like) go through our log, as
 * notices: they describe a client's mistake, never a value. */
__attribute__((format(printf, 2, 0))) static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];
	size_t n;

	(void)cls;
	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '.'))
		line[--n] = '\0';
	/* A message may quote what a client sent: nothing but printable ASCII reaches the log. */
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)line[i] < 0x20 || (unsigned char)line[i] >= 0x7f)
			line[i] = '?';
	kura_log(LOG_NOTICE, "http: %s", line);
}

/* Our own "unescape": none. Names are [A-Za-z0-9._-/] only, so a '%' in a path is a 400, and
 * an escaped NUL or '/' can never sneak through as something else. */
static size_t no_unescape(void *cls, struct MHD_Connection *c, char *uri)
{
	(void)cls;
	(void)c;
	return strlen(uri);
}

/* The sockets are reached through the run directory: it and every directory above it must be
 * ours or root's and writable by nobody else (a sticky /tmp aside), or the sockets could be
 * swapped under us, or kuractl be led to another server (safepath.c, which kuractl uses too). */
static int check_run_dir(const char *dir)
{
	char why[512];
	struct stat st;
	int fd, r;

	r = kura_path_trusted(dir, geteuid(), why, sizeof(why));
	if (r < 0) {
		kura_log(LOG_ERR, "run directory %s: %s", dir, why[0] ? why : strerror(-r));
		return r;
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		kura_log(LOG_ERR, "run directory %s: %s", dir,
			r == -ELOOP ? "is a symbolic link" : strerror(-r));
		return r;
	}
	if (fstat(fd, &st) < 0 || st.st_uid != geteuid()) {
		kura_log(LOG_ERR, "run directory %s must be owned by this user", dir);
		r = -EPERM;
	} else if ((st.st_mode & 07777) != 0755 && fchmod(fd, 0755) < 0) {
		r = -errno;
	}
	close(fd);
	return r;
}

/* Whether a connection to sa is taken into a listener's backlog (or the backlog is full,
 * EAGAIN): the kernel completes a Unix connect without the listener's help. */
static bool connects(const struct sockaddr_un *sa)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	bool live;

	if (fd < 0)
		return false;
	live = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0 || errno == EAGAIN;
	close(fd);
	return live;
}

/* We hold the state's lock, not the run directory's (prepare says why): a socket there that
 * answers is another kurad's, on another state; one that does not is a dead kurad's. A kurad
 * of ours killed a moment ago answers too, for a while: its supervisor is gone (so the lock
 * is ours) while its front, sent SIGKILL by the kernel, has not yet closed the listener. So a
 * socket is live only when it goes on answering for ANSWER_WAIT_MS; a dying one stops within
 * milliseconds. */
#define ANSWER_WAIT_MS 2000
#define ANSWER_PROBE_MS 20

static bool answers(const struct sockaddr_un *sa)
{
	for (unsigned waited = 0; waited < ANSWER_WAIT_MS; waited += ANSWER_PROBE_MS) {
		if (!connects(sa))
			return false;
		kura_sleep_ms(ANSWER_PROBE_MS);
	}
	return true;
}

static int bind_socket(const char *dir, const char *name, mode_t mode)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, n;

	n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	if (answers(&sa))
		return -EADDRINUSE;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (unlink(sa.sun_path) < 0 && errno != ENOENT)
		goto fail;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(sa.sun_path, mode) < 0 ||
		listen(fd, 128) < 0)
		goto fail;
	return fd;
fail:
	n = -errno;
	close(fd);
	return n;
}

/* A path from a socket's name, for a log line: printable ASCII only. */
static const char *printable(char *s)
{
	for (char *c = s; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
			*c = '?';
	return s;
}

/* One socket the service manager passed (fd, named name or NULL): a listening AF_UNIX stream
 * socket bound to RUN_DIR/workload.sock or RUN_DIR/admin.sock, each taken once, admin.sock
 * reachable by its owner alone. Anything else is refused: kurad would otherwise serve secrets,
 * or its admin API, on a socket it cannot vouch for. */
static int take_passed_socket(struct kura_daemon *d, int fd, const char *name)
{
	struct sockaddr_un sa = { 0 };
	socklen_t len = sizeof(sa) - 1, ol = sizeof(int);
	char workload[sizeof(sa.sun_path)], admin[sizeof(sa.sun_path)];
	int domain = 0, type = 0, listening = 0;
	struct stat st;
	bool is_admin;

	if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode)) {
		kura_log(LOG_ERR, "LISTEN_FDS: fd %d is not a socket", fd);
		return -ENOTSOCK;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &ol) < 0 ||
		getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &ol) < 0 ||
		getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &ol) < 0 ||
		domain != AF_UNIX || type != SOCK_STREAM) {
		kura_log(LOG_ERR, "LISTEN_FDS: fd %d is not a Unix stream socket (ListenStream=)",
			fd);
		return -EPROTOTYPE;
	}
	if (!listening) {
		kura_log(LOG_ERR, "LISTEN_FDS: fd %d is not listening", fd);
		return -EINVAL;
	}
	snprintf(workload, sizeof(workload), "%s/workload.sock", d->cfg.run_dir);
	snprintf(admin, sizeof(admin), "%s/admin.sock", d->cfg.run_dir);
	if (getsockname(fd, (struct sockaddr *)&sa, &len) < 0 ||
		len <= offsetof(struct sockaddr_un, sun_path) || sa.sun_path[0] == '\0' ||
		(strcmp(sa.sun_path, workload) != 0 && strcmp(sa.sun_path, admin) != 0)) {
		kura_log(LOG_ERR, "LISTEN_FDS: fd %d is bound to %s, not %s or %s", fd,
			sa.sun_path[0] ? printable(sa.sun_path) : "no path", workload, admin);
		return -EADDRNOTAVAIL;
	}
	is_admin = strcmp(sa.sun_path, admin) == 0;
	/* A name that says which socket it is must agree (kurad.socket names neither). */
	if (name && (strcmp(name, is_admin ? "workload" : "admin") == 0)) {
		kura_log(LOG_ERR, "LISTEN_FDNAMES: fd %d is named %s but is bound to %s", fd, name,
			sa.sun_path);
		return -EINVAL;
	}
	if (is_admin ? d->admin_passed : d->workload_passed) {
		kura_log(LOG_ERR, "LISTEN_FDS: %s passed twice", sa.sun_path);
		return -EINVAL;
	}
	/* The file that reaches it: a socket of ours, and admin.sock for its owner alone. */
	if (lstat(sa.sun_path, &st) < 0 || !S_ISSOCK(st.st_mode) || st.st_uid != geteuid()) {
		kura_log(LOG_ERR, "LISTEN_FDS: %s is gone, or not a socket owned by this user",
			sa.sun_path);
		return -EPERM;
	}
	/* Connecting takes write permission: admin.sock must give it to its owner alone. */
	if (is_admin && (st.st_mode & 022)) {
		kura_log(LOG_ERR,
			"LISTEN_FDS: %s is mode %04o: others could connect to it "
			"(SocketMode=0600 in kurad.socket)",
			sa.sun_path, (unsigned)(st.st_mode & 07777));
		return -EPERM;
	}
	if (!is_admin && (st.st_mode & 0002) == 0)
		kura_log(LOG_WARNING,
			"%s is mode %04o, not 0666: processes of other users cannot connect",
			sa.sun_path, (unsigned)(st.st_mode & 07777));
	if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
		return -errno;
	if (is_admin) {
		d->admin_fd = fd;
		d->admin_passed = true;
	} else {
		d->workload_fd = fd;
		d->workload_passed = true;
	}
	return 0;
}

/* A decimal in [0, max], or -1. */
static long env_number(const char *s, long max)
{
	char *end;
	long v;

	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	return errno || *end || v > max ? -1 : v;
}

#define LISTEN_FDS_START 3 /* sd_listen_fds(3) */

/* The sockets the service manager passed, when LISTEN_PID names us (else they are another
 * process's, and ignored): LISTEN_FDS of them from fd 3, LISTEN_FDNAMES their names. 0 (the
 * rest are bound as usual) or -errno, logged. The variables go, so no child takes them too. */
static int take_passed_sockets(struct kura_daemon *d)
{
	const char *pid_s = getenv("LISTEN_PID"), *fds_s = getenv("LISTEN_FDS");
	char *names = getenv("LISTEN_FDNAMES") ? strdup(getenv("LISTEN_FDNAMES")) : NULL;
	char *rest = names;
	long pid = env_number(pid_s, INT32_MAX), n = env_number(fds_s, 1024);
	int r = 0;

	if (!fds_s)
		goto out;
	if (pid != (long)getpid()) {
		if (pid_s)
			kura_log(LOG_NOTICE,
				"LISTEN_FDS ignored: LISTEN_PID %.16s is not this process", pid_s);
		else
			kura_log(LOG_NOTICE, "LISTEN_FDS ignored: no LISTEN_PID");
		goto out;
	}
	/* Ours: whatever happens, the socket files are the manager's, never unlinked. */
	d->workload_passed = d->admin_passed = true;
	if (n < 0 || n > 2) {
		kura_log(LOG_ERR,
			"LISTEN_FDS=%.16s: kurad takes one or two sockets (workload.sock, "
			"admin.sock)",
			fds_s);
		r = -EINVAL;
		goto out;
	}
	d->workload_passed = d->admin_passed = false;
	/* One name per fd, in order, ':' between (an empty one names nothing). */
	for (int i = 0; i < n && r == 0; i++)
		r = take_passed_socket(d, LISTEN_FDS_START + i, rest ? strsep(&rest, ":") : NULL);
	if (r < 0)
		d->workload_passed = d->admin_passed = true;
	else if (n > 0)
		kura_log(LOG_INFO, "socket activation: %s%s%s passed by the service manager",
			d->workload_passed ? "workload.sock" : "",
			d->workload_passed && d->admin_passed ? " and " : "",
			d->admin_passed ? "admin.sock" : "");
out:
	free(names);
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return r;
}

/*
 * The workload socket runs on one event loop (epoll): a fetch is a few /proc reads, a store
 * read and a write to the audit log, and a thread per connection cost more than all of that
 * (a clone and a TLB shootdown per fetch; ENVIRONMENT measured 6x the socket floor). What
 * could wait (a runtime lookup, bounded at 2 s; a long poll) is suspended off the loop
 * (workload.c). The admin socket keeps a thread per connection: its operations are few, some
 * long (a key rotation), and root's alone.
 */
static struct MHD_Daemon *start_mhd(struct kura_daemon *d, int fd, bool event_loop)
{
	unsigned flags = event_loop ?
		MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME :
		MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL;

	/* One event loop per core: the loops share nothing but short locks (store, audit). A
	 * workload request is a line and a few headers: 16 KiB of connection memory holds it
	 * (more is refused with 431), and a 64 KiB pool, mapped and faulted in for every
	 * connection, cost a fifth of the fetch rate. */
	struct MHD_OptionItem extra[] = {
		{ event_loop && d->cfg.loop_threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE :
							  MHD_OPTION_END,
			(intptr_t)d->cfg.loop_threads, NULL },
		{ MHD_OPTION_END, 0, NULL },
	};
	/* libmicrohttpd closes a connection past its own limit before we see it, and splits the
	 * limit between its loops: it must never be what stops a connection on workload.sock, or
	 * no room could be made for it (quota.c decides, over all loops). Each loop may hold
	 * them all, and the ones shut to make room until its loop closes them. */
	void *cls = event_loop ? (void *)d->workload : (void *)&d->admin;
	unsigned limit = event_loop ? (d->cfg.max_connections + 64) * d->cfg.loop_threads :
				      d->cfg.max_connections;

	return MHD_start_daemon(flags | MHD_USE_ITC | MHD_USE_ERROR_LOG, 0, NULL, NULL,
		event_loop ? kura_workload_handler : kura_admin_handler, cls,
		MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_LISTEN_SOCKET, fd,
		MHD_OPTION_NOTIFY_CONNECTION, event_loop ? kura_workload_notify : kura_admin_notify,
		cls, MHD_OPTION_NOTIFY_COMPLETED,
		event_loop ? kura_workload_completed : kura_admin_completed, cls,
		MHD_OPTION_CONNECTION_LIMIT, limit, MHD_OPTION_CONNECTION_TIMEOUT,
		d->cfg.connection_timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
		(size_t)(event_loop ? 16 * 1024 : 64 * 1024), MHD_OPTION_UNESCAPE_CALLBACK,
		no_unescape, NULL, MHD_OPTION_STRICT_FOR_CLIENT, 1, MHD_OPTION_ARRAY, extra,
		MHD_OPTION_END);
}

static int open_runtimes(struct kura_daemon *d)
{
	struct kura_resolver_config rc = {
		.timeout_ms = d->cfg.lookup_timeout_ms,
	};
	int r;

	d->runtimes = calloc(d->cfg.n_runtimes + 1, sizeof(*d->runtimes));
	if (!d->runtimes)
		return -ENOMEM;
	for (size_t i = 0; i < d->cfg.n_runtimes; i++) {
		/* With a net process, each is reached through it (by its index there). */
		r = d->net ? kura_net_runtime_new(d->net, d->cfg.runtimes[i].name, (unsigned)i,
				     &d->runtimes[i]) :
			     kura_runtime_new(d->cfg.runtimes[i].name, d->cfg.runtimes[i].endpoint,
				     &d->runtimes[i]);
		if (r < 0) {
			kura_log(LOG_ERR, "runtime %s=%s: %s", d->cfg.runtimes[i].name,
				d->cfg.runtimes[i].endpoint, strerror(-r));
			return r;
		}
		d->n_runtimes++;
	}
	rc.runtimes = d->runtimes;
	rc.n_runtimes = d->n_runtimes;
	r = kura_resolver_new(&rc, &d->resolver);
	if (r == 0) {
		kura_resolver_set_prefetch(d->resolver, !d->cfg.no_prefetch);
		r = kura_resolver_start(d->resolver);
	}
	if (r < 0)
		kura_log(LOG_ERR, "cannot start the identity resolver: %s", strerror(-r));
	return r;
}

/* One clear line at start for each runtime configured that could never identify anyone: a
 * name kurad has no client for, or a socket that does not answer now (it may come up later:
 * kurad keeps trying, and status shows it). A second per runtime at most. */
static void warn_runtimes(struct kura_daemon *d)
{
	for (size_t i = 0; i < d->n_runtimes; i++) {
		const struct kura_runtime_config *rc = &d->cfg.runtimes[i];
		const char *why;

		if (!kura_admin_runtime_known(rc->name)) {
			kura_log(LOG_WARNING,
				"runtime %s=%s: kurad knows the runtimes docker and podman only; no "
				"container will be identified through %s",
				rc->name, rc->endpoint, rc->name);
			continue;
		}
		why = kura_admin_runtime_check(d->runtimes[i]);
		if (why)
			kura_log(LOG_WARNING,
				"runtime %s=%s does not answer (%s): its containers are refused "
				"until it does",
				rc->name, rc->endpoint, why);
	}
}

/* Where the host's processes live (peer.h): PID 1's namespaces, or host-pid's. kurad's own
 * differ from them under systemd's ProtectSystem=, ProtectHome= or PrivateTmp=, and a host
 * process (root's kuractl on admin.sock too) is then known by the host's alone. */
static int host_reference(const struct kura_daemon *d)
{
	pid_t pid = d->cfg.host_pid ? d->cfg.host_pid : 1;
	int r = kura_peer_host_reference(pid);

	if (r < 0 && d->cfg.host_pid) {
		kura_log(LOG_ERR, "host-pid = %d: cannot read its namespaces: %s", (int)pid,
			strerror(-r));
		return -EINVAL; /* the configuration's fault: kurad exits 2 */
	}
	if (r < 0)
		kura_log(LOG_NOTICE,
			"cannot read PID 1's namespaces (%s): host processes are those in kurad's "
			"own mount namespace alone",
			strerror(-r));
	else if (!kura_peer_host_is_self())
		kura_log(LOG_INFO,
			"kurad has a mount namespace of its own: host processes are those in "
			"pid %d's",
			(int)pid);
	return 0;
}

/* STATE_DIR/kurad.run names our run directory, for kuractl (best effort: kuractl also takes
 * --run-dir). Replaced whole, so a reader never sees half a path. */
static void note_run_dir(struct kura_daemon *d)
{
	char path[4200], tmp[4200];
	FILE *f;
	int n;

	n = snprintf(path, sizeof(path), "%s/" KURA_RUN_DIR_FILE, d->cfg.state_dir);
	if (n < 0 || (size_t)n + 5 > sizeof(path))
		return;
	memcpy(tmp, path, (size_t)n);
	memcpy(tmp + n, ".tmp", 5);
	f = fopen(tmp, "we");
	if (!f)
		return;
	if (fprintf(f, "%s\n", d->cfg.run_dir) < 0 || fclose(f) != 0 || rename(tmp, path) < 0)
		(void)unlink(tmp);
}

/* Each connection holds three descriptors (its socket, the peer's pidfd and /proc directory),
 * and under a flood up to loop_threads * (max-connections + 64) are open before room is made:
 * raise the soft limit toward the hard one rather than fail accepts with EMFILE. */
static void raise_fd_limit(const struct kura_daemon_config *cfg)
{
	rlim_t want = (rlim_t)(cfg->max_connections + 64) * cfg->loop_threads * 3 + 256;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur < want)
		kura_log(LOG_WARNING,
			"only %llu file descriptors: a flood of connections may be "
			"refused before room is made for them",
			(unsigned long long)rl.rlim_cur);
}

static struct kura_workload_config workload_config(const struct kura_daemon_config *c)
{
	return (struct kura_workload_config){
		.quota = { .max_connections = c->max_connections,
			.max_per_peer = c->max_per_peer,
			.max_watches = c->max_watches,
			.watches_per_peer = KURA_MAX_WATCHES_PER_PEER,
			.rate_per_s = c->rate_per_s,
			.rate_burst = c->rate_burst },
		.header_timeout_s = c->header_timeout_s,
		.watch_max_s = c->watch_max_s,
		.lookup_timeout_ms = c->lookup_timeout_ms ? c->lookup_timeout_ms :
							    KURA_RESOLVER_TIMEOUT_MS,
	};
}

/* The vault, opened with the master key: the custody process's alone. */
static int open_vault(struct kura_daemon *d)
{
	struct kura_vault *v = NULL;
	struct kura_err err = { 0 };
	int r;

	r = kura_vault_open(d->cfg.state_dir, &d->cfg.master, 0, &v, &err);
	if (r == 0)
		r = kura_keeper_new(v, &d->keeper, &err);
	if (r < 0)
		kura_log(LOG_ERR, "%s", err.msg[0] ? err.msg : strerror(-r));
	return r;
}

static int start_recorder(struct kura_daemon *d)
{
	struct kura_recorder_config rc = {
		.state_dir = d->cfg.state_dir,
		.audit = &d->cfg.audit,
		.syslog = d->cfg.audit_syslog,
		.http = d->cfg.audit_http,
		.checkpoint_s = d->cfg.audit_checkpoint_s,
		.queue_max = d->cfg.audit_queue_max,
		.self_pid = d->supervisor_pid,
		.archive_dir = d->cfg.audit_archive_dir,
		.archive_days = d->cfg.audit_archive_days,
		.archive_bytes = d->cfg.audit_archive_bytes,
		/* Shipped by the net process, when there is anywhere to ship to. */
		.net = d->cfg.audit_syslog || d->cfg.audit_http ? d->net : NULL,
	};

	return kura_recorder_start(&rc, &d->rec);
}

static void defaults(struct kura_daemon *d, const struct kura_daemon_config *cfg)
{
	d->cfg = *cfg;
	d->supervisor_pid = getpid();
	d->lock_fd = d->workload_fd = d->admin_fd = d->events[0] = d->events[1] = -1;
	d->net_keeper = d->net_side = (struct kura_net_fds){ .sinks = -1 };
	if (!d->cfg.max_watches)
		d->cfg.max_watches = d->cfg.max_connections / 2 ? d->cfg.max_connections / 2 : 1;
	if (!d->cfg.loop_threads) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);

		d->cfg.loop_threads = n < 1 ? 1 : n > 8 ? 8 : (unsigned)n;
	}
	/* A caller on each at once: every event loop, every lookup worker, the long polls'
	 * thread, and one spare. */
	d->n_chans = d->cfg.loop_threads + KURA_LOOKUP_WORKERS + 2;
}

/* The run directory, its lock, the two sockets and the channels: what the supervisor makes
 * before any process of ours reads a key or a byte from a peer. */
static int prepare(struct kura_daemon *d)
{
	const struct kura_daemon_config *cfg = &d->cfg;
	char path[4096];
	int r;

	raise_fd_limit(&d->cfg);
	if (mkdir(cfg->run_dir, 0755) < 0 && errno != EEXIST) {
		r = -errno;
		kura_log(LOG_ERR, "cannot create run directory %s: %s", cfg->run_dir, strerror(-r));
		return r;
	}
	r = check_run_dir(cfg->run_dir);
	if (r < 0)
		return r;
	/* The lock lives in the state directory, which no container sees: containers mount the
	 * run directory, and root in one (no user namespace) could open and flock a lock file
	 * there, so that no kurad could start again. */
	snprintf(path, sizeof(path), "%s/kurad.lock", cfg->state_dir);
	d->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (d->lock_fd < 0 || flock(d->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		r = -errno;
		/* Not ours: stop() must not touch another kurad's sockets. */
		if (d->lock_fd >= 0)
			close(d->lock_fd);
		d->lock_fd = -1;
		kura_log(LOG_ERR,
			r == -EWOULDBLOCK ? "another kurad is running on %s" : "cannot lock %s: %s",
			cfg->state_dir, strerror(-r));
		return r == -EWOULDBLOCK ? -EADDRINUSE : r;
	}
	r = take_passed_sockets(d);
	if (r < 0)
		return r;
	if (!d->workload_passed)
		d->workload_fd = bind_socket(cfg->run_dir, "workload.sock", 0666);
	if (!d->admin_passed && d->workload_fd >= 0)
		d->admin_fd = bind_socket(cfg->run_dir, "admin.sock", 0600);
	if (d->workload_fd < 0 || d->admin_fd < 0) {
		r = d->workload_fd < 0 ? d->workload_fd : d->admin_fd;
		if (r == -EADDRINUSE) {
			kura_log(LOG_ERR, "another kurad (on another state directory) serves %s",
				cfg->run_dir);
			/* Its sockets: stop() must leave them (it removes them while we hold the
			 * lock, and ours is another state's). */
			close(d->lock_fd);
			d->lock_fd = -1;
		} else {
			kura_log(LOG_ERR, "cannot bind a socket in %s: %s", cfg->run_dir,
				strerror(-r));
		}
		return r;
	}
	/* The directory is ours now: the lock file an older kurad kept in it goes. */
	snprintf(path, sizeof(path), "%s/kurad.lock", cfg->run_dir);
	(void)unlink(path);
	d->keeper_chans = calloc(d->n_chans, sizeof(int));
	d->front_chans = calloc(d->n_chans, sizeof(int));
	if (!d->keeper_chans || !d->front_chans)
		return -ENOMEM;
	for (size_t i = 0; i < d->n_chans; i++) {
		int sv[2];

		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
			return -errno;
		d->keeper_chans[i] = sv[0];
		d->front_chans[i] = sv[1];
		d->n_made++;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, d->events) < 0)
		return -errno;
	if (d->with_net) {
		r = kura_net_socketpairs(KURA_NET_MAX_REQ, d->cfg.n_runtimes,
			d->cfg.audit_syslog || d->cfg.audit_http, &d->net_keeper, &d->net_side);
		if (r < 0) {
			kura_log(LOG_ERR, "cannot make the net process's channels: %s",
				strerror(-r));
			return r;
		}
	}
	return 0;
}

/* The key custody process's parts: vault, recorder, runtimes and resolver, the service to the
 * front on the channels, the admin API. Logs its own failures. */
int kura_daemon_keeper_open(struct kura_daemon *d)
{
	int r = open_vault(d);

	/* A rekey to the TPM later needs its modules, which cannot be loaded once locked down. */
	if (r == 0)
		(void)kura_tpm2_preload();
	return r;
}

int kura_daemon_keeper_start(struct kura_daemon *d)
{
	char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 16];
	struct kura_custody_config cc;
	int r;

	r = d->keeper ? 0 : open_vault(d);
	if (r < 0)
		return r;
	if (d->with_net) {
		r = kura_net_client_new(&d->net_keeper, &d->net);
		d->net_keeper = (struct kura_net_fds){ .sinks = -1 }; /* the client's now */
		if (r < 0) {
			kura_log(LOG_ERR, "cannot talk to the net process: %s", strerror(-r));
			return r;
		}
	}
	r = start_recorder(d);
	if (r < 0)
		return r;
	r = open_runtimes(d);
	if (r < 0)
		return r;
	warn_runtimes(d);
	r = host_reference(d);
	if (r < 0)
		return r;
	snprintf(path, sizeof(path), "%s/workload.sock", d->cfg.run_dir);
	cc = (struct kura_custody_config){ .workload_path = path,
		.watch_max_s = d->cfg.watch_max_s,
		.chans = d->keeper_chans,
		.n_chans = d->n_made,
		.events = d->events[0] };
	r = kura_custody_start(&cc, d->keeper, d->resolver, d->rec, &d->custody);
	d->events[0] = -1; /* the custody's now, whatever happened */
	d->keeper_chans_taken = true;
	if (r < 0) {
		kura_log(LOG_ERR, "cannot serve the front: %s", strerror(-r));
		return r;
	}
	d->admin = (struct kura_admin){ .state_dir = d->cfg.state_dir,
		.n_runtimes = d->n_runtimes,
		.keeper = d->keeper,
		.vault = kura_keeper_hold(d->keeper),
		.resolver = d->resolver,
		.rec = d->rec,
		.custody = d->custody,
		.runtimes = d->runtimes,
		.runtime_cfg = d->cfg.runtimes,
		.started = kura_clock_s(),
		.started_wall = kura_wall_s(),
		.supervisor_pid = d->supervisor_pid,
		.net_pid = d->net_pid };
	kura_keeper_release(d->keeper);
	note_run_dir(d);
	kura_recorder_self(d->rec, "start", KURA_VERSION);
	return 0;
}

int kura_daemon_keeper_serve(struct kura_daemon *d)
{
	d->admin_mhd = start_mhd(d, d->admin_fd, false);
	if (!d->admin_mhd) {
		kura_log(LOG_ERR, "cannot start the HTTP server on admin.sock");
		return -EIO;
	}
	d->admin_fd = -1; /* libmicrohttpd's */
	return 0;
}

/* Wait for the custody process's READY: the store's revision the front starts from. */
static int await_ready(int events, int64_t *ret_rev)
{
	struct kura_msg m;
	char why[128];
	uint64_t rev = 0;
	int r;

	/* Opening the vault may derive a key from a passphrase (seconds) or unseal it. */
	r = kura_msg_recv(events, 300 * 1000, &m, why);
	if (r == -EBADMSG)
		kura_msg_fatal("keeper", why);
	if (r < 0)
		return r;
	if (m.type != KURA_MSG_READY)
		kura_msg_fatal("keeper", "a first message other than READY");
	(void)kura_msg_u64(&m, KURA_F_REVISION, &rev);
	kura_msg_done(&m);
	*ret_rev = (int64_t)rev;
	return 0;
}

/* The front's parts: the link to the custody process, the workload API on workload.sock. */
int kura_daemon_front_start(struct kura_daemon *d)
{
	struct kura_workload_config wc;
	int64_t rev = 0;
	int r;

	r = kura_link_new(d->front_chans, d->n_made, &d->link);
	if (r < 0)
		return r;
	d->front_chans_taken = true;
	r = await_ready(d->events[1], &rev);
	if (r < 0) {
		/* The custody process failed to start, and said why. */
		kura_log(LOG_DEBUG, "front: no READY from the key custody process: %s",
			strerror(-r));
		return r;
	}
	wc = workload_config(&d->cfg);
	return kura_workload_start(&wc, d->link, d->events[1], rev, &d->workload);
}

int kura_daemon_front_serve(struct kura_daemon *d)
{
	d->workload_mhd = start_mhd(d, d->workload_fd, true);
	if (!d->workload_mhd) {
		kura_log(LOG_ERR, "cannot start the HTTP server on workload.sock");
		return -EIO;
	}
	d->workload_fd = -1;
	return 0;
}

int kura_daemon_prepare(struct kura_daemon *d, const struct kura_daemon_config *cfg, bool with_net)
{
	defaults(d, cfg);
	d->with_net = with_net;
	return prepare(d);
}

/* Name lookup loads its modules (NSS) on first use, which a locked-down process may not map:
 * look up the sinks' hosts once before. Best effort. */
static void warm_lookup(const char *host, size_t n)
{
	struct addrinfo *ai = NULL;
	char h[256];

	if (n == 0 || n >= sizeof(h))
		return;
	memcpy(h, host, n);
	h[n] = '\0';
	if (getaddrinfo(h, NULL, NULL, &ai) == 0)
		freeaddrinfo(ai);
}

void kura_daemon_net_warm(struct kura_daemon *d)
{
	const char *s = d->cfg.audit_syslog, *u = d->cfg.audit_http, *e;

	warm_lookup("localhost", 9);
	if (s && strncmp(s, "tcp:", 4) == 0 && (e = strrchr(s + 4, ':')))
		warm_lookup(s + 4, (size_t)(e - (s + 4)));
	if (u && (u = strstr(u, "://"))) {
		u += 3;
		e = u + strcspn(u, ":/[");
		warm_lookup(u, (size_t)(e - u));
	}
}

int kura_daemon_net_run(struct kura_daemon *d)
{
	struct kura_net_runtime *rts = calloc(d->cfg.n_runtimes + 1, sizeof(*rts));
	struct kura_net_config c = {
		.runtimes = rts,
		.n_runtimes = d->cfg.n_runtimes,
		.sinks = { .syslog = d->cfg.audit_syslog,
			.http_url = d->cfg.audit_http,
			.checkpoint_s = d->cfg.audit_checkpoint_s,
			.queue_max = d->cfg.audit_queue_max },
	};
	int r;

	if (!rts)
		return -ENOMEM;
	for (size_t i = 0; i < d->cfg.n_runtimes; i++)
		rts[i] = (struct kura_net_runtime){ d->cfg.runtimes[i].name,
			d->cfg.runtimes[i].endpoint };
	r = kura_net_serve(&d->net_side, &c);
	d->net_side = (struct kura_net_fds){ .sinks = -1 }; /* taken, and closed */
	free(rts);
	if (r < 0)
		/* The settings are not echoed: a mistyped URL may hold a credential. */
		kura_log(LOG_ERR, "the net process cannot serve: %s",
			r == -EINVAL ? "audit-syslog must be unix:PATH or tcp:HOST:PORT, and "
				       "audit-http an http(s) URL without user:password@ or "
				       "unix:SOCK:/PATH" :
				       strerror(-r));
	return r;
}

int kura_daemon_start(struct kura_daemon *d, const struct kura_daemon_config *cfg)
{
	int r;

	r = kura_daemon_prepare(d, cfg, false);
	if (r == 0)
		r = kura_daemon_keeper_start(d);
	if (r == 0)
		r = kura_daemon_keeper_serve(d);
	if (r == 0)
		r = kura_daemon_front_start(d);
	if (r == 0)
		r = kura_daemon_front_serve(d);
	if (r == 0)
		kura_log(LOG_INFO,
			"serving %s/workload.sock and %s/admin.sock (%zu runtimes, one "
			"process: no privilege separation)",
			cfg->run_dir, cfg->run_dir, d->n_runtimes);
	return r;
}

void kura_daemon_reconfigure(struct kura_daemon *d)
{
	struct kura_workload_config wc = workload_config(&d->cfg);

	if (d->workload)
		kura_workload_reconfigure(d->workload, &wc);
}

void kura_daemon_front_stop(struct kura_daemon *d)
{
	/* Answer what is suspended (long polls see `stopping`), stop accepting, join. */
	if (d->workload_mhd) {
		int fd;

		kura_workload_drain(d->workload);
		/* The answers just queued must get out before the connections are closed: stop
		 * accepting, then give the open ones up to a second to finish. */
		fd = MHD_quiesce_daemon(d->workload_mhd);
		for (int i = 0; i < 100; i++) {
			const union MHD_DaemonInfo *info = MHD_get_daemon_info(d->workload_mhd,
				MHD_DAEMON_INFO_CURRENT_CONNECTIONS);

			if (!info || info->num_connections == 0)
				break;
			kura_sleep_ms(10);
		}
		MHD_stop_daemon(d->workload_mhd);
		d->workload_mhd = NULL;
		if (fd >= 0)
			close(fd);
	}
	/* The refusals still counted are recorded as it stops. */
	kura_workload_stop(d->workload);
	d->workload = NULL;
	kura_link_free(d->link);
	d->link = NULL;
	if (d->events[1] >= 0)
		close(d->events[1]);
	d->events[1] = -1;
}

void kura_daemon_keeper_stop(struct kura_daemon *d)
{
	char path[4096];

	if (d->admin_mhd)
		MHD_stop_daemon(d->admin_mhd);
	d->admin_mhd = NULL;
	kura_custody_stop(d->custody);
	d->custody = NULL;
	if (d->rec)
		kura_recorder_self(d->rec, "stop", NULL);
	/* The watches end with the resolver; the sinks are flushed as the recorder stops; then
	 * the net process is let go (its serve returns when its channels close). */
	kura_resolver_free(d->resolver);
	d->resolver = NULL;
	kura_recorder_stop(d->rec);
	d->rec = NULL;
	for (size_t i = 0; i < d->n_runtimes; i++)
		kura_runtime_free(d->runtimes[i]);
	free(d->runtimes);
	d->runtimes = NULL;
	d->n_runtimes = 0;
	kura_net_client_free(d->net);
	d->net = NULL;
	if (d->keeper) {
		/* The note of our run directory goes with the one who wrote it. */
		snprintf(path, sizeof(path), "%s/" KURA_RUN_DIR_FILE, d->cfg.state_dir);
		(void)unlink(path);
	}
	kura_keeper_free(d->keeper);
	d->keeper = NULL;
}

/* What prepare() made and no part took. */
void kura_daemon_close(struct kura_daemon *d)
{
	for (size_t i = 0; i < d->n_made; i++) {
		if (!d->keeper_chans_taken && d->keeper_chans[i] >= 0)
			close(d->keeper_chans[i]);
		if (!d->front_chans_taken && d->front_chans[i] >= 0)
			close(d->front_chans[i]);
	}
	d->keeper_chans_taken = d->front_chans_taken = true;
	free(d->keeper_chans);
	free(d->front_chans);
	d->keeper_chans = d->front_chans = NULL;
	kura_net_fds_close(&d->net_keeper);
	kura_net_fds_close(&d->net_side);
	for (int i = 0; i < 2; i++)
		if (d->events[i] >= 0) {
			close(d->events[i]);
			d->events[i] = -1;
		}
	if (d->workload_fd >= 0)
		close(d->workload_fd);
	if (d->admin_fd >= 0)
		close(d->admin_fd);
	d->workload_fd = d->admin_fd = -1;
}

/* The supervisor's last act: the sockets it bound go with the lock. */
void kura_daemon_unlink(struct kura_daemon *d)
{
	char path[4096];

	if (d->lock_fd < 0)
		return;
	/* Those the service manager passed stay: it holds them for the next kurad. */
	snprintf(path, sizeof(path), "%s/workload.sock", d->cfg.run_dir);
	if (!d->workload_passed)
		(void)unlink(path);
	snprintf(path, sizeof(path), "%s/admin.sock", d->cfg.run_dir);
	if (!d->admin_passed)
		(void)unlink(path);
	close(d->lock_fd);
	d->lock_fd = -1;
}

void kura_daemon_stop(struct kura_daemon *d)
{
	kura_daemon_front_stop(d);
	kura_daemon_keeper_stop(d);
	kura_daemon_close(d);
	kura_daemon_unlink(d);
}

/* kurad's life cycle: the run directory and its lock, the two sockets, libmicrohttpd, who each
 * connection answers for and its place in the quota table, the revision watcher for long polls,
 * and logging. No plaintext here. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "daemon.h"
#include "http.h"
#include "cgroup.h"
#include "runtime.h"
#include "safepath.h"

/* libmicrohttpd's own complaints (malformed requests and the like) go through our log, as
 * notices: they describe a client's mistake, never a value. */
__attribute__((format(printf, 2, 0))) static void mhd_log(void *cls, const char *fmt,
	va_list ap)
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

void kura_daemon_request_started(struct kura_daemon *d, struct kura_conn *conn)
{
	if (conn && conn->workload)
		kura_quota_busy(d->quota, &conn->slot, true, 0);
}

/* Room made, or a header deadline passed: the connection's event loop sees it shut and closes
 * it (under the quota table's lock, so the connection is still there). A parked long poll is
 * answered first (kura_workload_check_hangups sees the shutdown). */
static void evict(struct kura_slot *s)
{
	struct kura_conn *conn = s->owner;

	(void)shutdown(conn->fd, SHUT_RDWR);
}

/*
 * Whom a connection counts against, from kernel facts only, before any runtime is asked: the
 * container its cgroup names; else the user who answers for it (its uid, or the owner of the user
 * namespace it runs in), as a host user if it lives in kurad's namespaces and as a foreign one if
 * not (so a container of a layout we do not know never shares root's limits); else, when the
 * kernel cannot tell who it is, the one principal of all unidentified peers.
 */
static void principal_of(struct kura_conn *conn, struct kura_principal *p)
{
	bool host = false;
	uid_t owner;

	*p = (struct kura_principal){ .kind = KURA_PRINCIPAL_UNIDENTIFIED };
	if (conn->peer_err < 0)
		return;
	conn->cg_rc = kura_cgroup_read(conn->peer.proc_fd, &conn->cg);
	conn->cg_fresh = true;
	if (conn->cg_rc == 0) {
		p->kind = KURA_PRINCIPAL_CONTAINER;
		p->runtime = conn->cg.runtime;
		memcpy(p->id, conn->cg.id, sizeof(p->id));
		return;
	}
	if (kura_peer_user_owner(&conn->peer, &owner) < 0)
		return;
	if (conn->cg_rc == -ENOENT && kura_peer_in_host_namespaces(&conn->peer, &host) < 0)
		return;
	p->kind = conn->cg_rc == -ENOENT && host ? KURA_PRINCIPAL_USER : KURA_PRINCIPAL_FOREIGN;
	p->uid = owner;
}

/* Follow the store's revision and its changes, so long polls learn of changes made by any
 * writer (another kuractl, or later another host through etcd); resume the polls that are due
 * or whose peer went away; close connections past their header deadline. */
static void *rev_thread(void *userdata)
{
	struct kura_daemon *d = userdata;

	for (;;) {
		struct timespec ts;

		kura_workload_follow(d);
		pthread_mutex_lock(&d->rev_lock);
		if (d->stopping) {
			pthread_mutex_unlock(&d->rev_lock);
			return NULL;
		}
		kura_workload_wake_watchers(d);
		kura_workload_check_hangups(d);
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += 100 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		(void)pthread_cond_timedwait(&d->rev_cond, &d->rev_lock, &ts);
		pthread_mutex_unlock(&d->rev_lock);
		kura_quota_reap(d->quota, kura_clock_s(), d->cfg.header_timeout_s);
	}
}

static void notify_connection(struct kura_daemon *d, struct MHD_Connection *c,
	void **socket_context, enum MHD_ConnectionNotificationCode code, bool workload)
{
	struct kura_conn *conn;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *info =
			MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
		struct ucred cred = { .pid = 0, .uid = (uid_t)-1, .gid = (gid_t)-1 };
		socklen_t sl = sizeof(cred);

		conn = calloc(1, sizeof(*conn));
		if (!conn || !info) {
			free(conn);
			return; /* the handler refuses a connection without context */
		}
		conn->peer = (struct kura_peer)KURA_PEER_NULL;
		conn->fd = info->connect_fd;
		conn->workload = workload;
		/* The kernel's facts are taken when the connection starts: SO_PEERCRED and the
		 * pidfd describe the process that connected, whatever is sent afterwards. */
		conn->peer_err = kura_peer_from_socket(conn->fd, &conn->peer);
		if (conn->peer_err < 0 && getsockopt(conn->fd, SOL_SOCKET, SO_PEERCRED, &cred, &sl) < 0)
			cred = (struct ucred){ .pid = 0, .uid = (uid_t)-1, .gid = (gid_t)-1 };
		conn->cred_pid = conn->peer_err < 0 ? cred.pid : conn->peer.pid;
		conn->cred_uid = conn->peer_err < 0 ? cred.uid : conn->peer.uid;
		conn->cred_gid = conn->peer_err < 0 ? cred.gid : conn->peer.gid;
		if (conn->peer_err == 0 && conn->peer.degraded &&
			!__atomic_exchange_n(&d->warned_degraded, true, __ATOMIC_RELAXED))
			kura_log(LOG_WARNING, "this kernel has no SO_PEERPIDFD: identity runs degraded "
					      "(the peer is pinned by pidfd_open or its start time, "
					      "after SO_PEERCRED)");
		*socket_context = conn;
		if (!workload)
			return;
		principal_of(conn, &conn->principal);
		conn->slot.owner = conn;
		/* One principal cannot take every slot: past its share it is shut out at once;
		 * past the table's size, the principal with the most connections makes room. */
		if (kura_quota_admit(d->quota, &conn->slot, &conn->principal, kura_clock_s()) < 0)
			(void)shutdown(conn->fd, SHUT_RDWR);
		return;
	}
	conn = *socket_context;
	if (conn) {
		if (workload)
			kura_quota_release(d->quota, &conn->slot);
		kura_peer_done(&conn->peer);
		free(conn);
		*socket_context = NULL;
	}
}

static void notify_workload(void *cls, struct MHD_Connection *c, void **socket_context,
	enum MHD_ConnectionNotificationCode code)
{
	notify_connection(cls, c, socket_context, code, true);
}

static void notify_admin(void *cls, struct MHD_Connection *c, void **socket_context,
	enum MHD_ConnectionNotificationCode code)
{
	notify_connection(cls, c, socket_context, code, false);
}

/* A request is over: the connection waits for the next one's headers from now. */
static void request_completed(void *cls, struct MHD_Connection *c, void **req_cls,
	enum MHD_RequestTerminationCode code)
{
	struct kura_daemon *d = cls;
	struct kura_conn *conn = kura_http_conn(c);

	if (conn && conn->workload)
		kura_quota_busy(d->quota, &conn->slot, false, kura_clock_s());
}

/* Each socket's handler keeps its own kind of request state. */
static void admin_completed(void *cls, struct MHD_Connection *c, void **req_cls,
	enum MHD_RequestTerminationCode code)
{
	request_completed(cls, c, req_cls, code);
	if (req_cls && *req_cls && !kura_http_marker(*req_cls))
		kura_admin_completed(cls, c, req_cls, code);
}

static void workload_completed(void *cls, struct MHD_Connection *c, void **req_cls,
	enum MHD_RequestTerminationCode code)
{
	request_completed(cls, c, req_cls, code);
	if (req_cls && *req_cls && !kura_http_marker(*req_cls))
		kura_workload_completed(cls, c, req_cls, code);
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

static int bind_socket(const char *dir, const char *name, mode_t mode)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, n;

	n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* We hold the run directory's lock: whatever socket is there is a dead kurad's. */
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

/*
 * The workload socket runs on one event loop (epoll): a fetch is a few /proc reads, a store
 * read and a write to the audit log, and a thread per connection cost more than all of that
 * (a clone and a TLB shootdown per fetch; ENVIRONMENT measured 6x the socket floor). What
 * could wait (a runtime lookup, bounded at 2 s; a long poll) is suspended off the loop
 * (workload.c). The admin socket keeps a thread per connection: its operations are few, some
 * long (a key rotation), and root's alone.
 */
static struct MHD_Daemon *start_mhd(struct kura_daemon *d, int fd, MHD_AccessHandlerCallback h,
	bool event_loop)
{
	unsigned flags = event_loop ? MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
			MHD_ALLOW_SUSPEND_RESUME :
				      MHD_USE_THREAD_PER_CONNECTION |
			MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL;

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
	unsigned limit = event_loop ? (d->cfg.max_connections + 64) * d->cfg.loop_threads :
				      d->cfg.max_connections;

	return MHD_start_daemon(flags | MHD_USE_ITC | MHD_USE_ERROR_LOG,
		0, NULL, NULL, h, d, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
		MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_NOTIFY_CONNECTION,
		event_loop ? notify_workload : notify_admin, d,
		MHD_OPTION_NOTIFY_COMPLETED, event_loop ? workload_completed : admin_completed, d,
		MHD_OPTION_CONNECTION_LIMIT, limit,
		MHD_OPTION_CONNECTION_TIMEOUT, d->cfg.connection_timeout_s,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(event_loop ? 16 * 1024 : 64 * 1024),
		MHD_OPTION_UNESCAPE_CALLBACK, no_unescape, NULL, MHD_OPTION_STRICT_FOR_CLIENT, 1,
		MHD_OPTION_ARRAY, extra, MHD_OPTION_END);
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
		r = kura_runtime_new(d->cfg.runtimes[i].name, d->cfg.runtimes[i].endpoint,
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

static struct kura_quota_config quota_config(const struct kura_daemon *d)
{
	return (struct kura_quota_config){ .max_connections = d->cfg.max_connections,
		.max_per_peer = d->cfg.max_per_peer, .max_watches = d->cfg.max_watches,
		.watches_per_peer = KURA_MAX_WATCHES_PER_PEER, .rate_per_s = d->cfg.rate_per_s,
		.rate_burst = d->cfg.rate_burst };
}

int kura_daemon_start(struct kura_daemon *d, const struct kura_daemon_config *cfg)
{
	char path[4096];
	struct kura_err err = { 0 };
	int wfd = -1, afd = -1, r;

	d->cfg = *cfg;
	d->lock_fd = -1;
	pthread_mutex_init(&d->store_lock, NULL);
	pthread_mutex_init(&d->grants_lock, NULL);
	pthread_mutex_init(&d->rev_lock, NULL);
	pthread_mutex_init(&d->jobs_lock, NULL);
	pthread_cond_init(&d->jobs_cond, NULL);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&d->rev_cond, &ca);
		pthread_condattr_destroy(&ca);
	}

	if (!d->cfg.max_watches)
		d->cfg.max_watches = d->cfg.max_connections / 2 ? d->cfg.max_connections / 2 : 1;
	{
		struct kura_quota_config lc = quota_config(d);

		r = kura_quota_new(&lc, evict, &d->quota);
		if (r < 0)
			return r;
	}
	r = kura_vault_open(cfg->state_dir, &cfg->master, 0, &d->vault, &err);
	if (r < 0) {
		kura_log(LOG_ERR, "%s", err.msg[0] ? err.msg : strerror(-r));
		return r;
	}
	if (mkdir(cfg->run_dir, 0755) < 0 && errno != EEXIST) {
		r = -errno;
		kura_log(LOG_ERR, "cannot create run directory %s: %s", cfg->run_dir, strerror(-r));
		return r;
	}
	r = check_run_dir(cfg->run_dir);
	if (r < 0)
		return r;
	snprintf(path, sizeof(path), "%s/kurad.lock", cfg->run_dir);
	d->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (d->lock_fd < 0 || flock(d->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		r = -errno;
		/* Not ours: stop() must not touch another kurad's sockets. */
		if (d->lock_fd >= 0)
			close(d->lock_fd);
		d->lock_fd = -1;
		kura_log(LOG_ERR, r == -EWOULDBLOCK ? "another kurad is running on %s" :
						      "cannot lock %s: %s",
			cfg->run_dir, strerror(-r));
		return r == -EWOULDBLOCK ? -EADDRINUSE : r;
	}
	r = kura_daemon_audit_start(d);
	if (r < 0)
		return r;
	r = open_runtimes(d);
	if (r < 0)
		return r;
	if (kura_store_revision(kura_vault_store(d->vault), &d->revision) < 0)
		d->revision = 0;
	/* Exact from now on: a long poll from an older revision is told to list again. */
	r = kura_changes_new(KURA_CHANGES_KEPT, d->revision, &d->changes);
	if (r < 0)
		return r;
	r = pthread_create(&d->rev_thread, NULL, rev_thread, d);
	if (r != 0)
		return -r;
	d->rev_thread_started = true;

	wfd = bind_socket(cfg->run_dir, "workload.sock", 0666);
	afd = wfd < 0 ? -1 : bind_socket(cfg->run_dir, "admin.sock", 0600);
	if (wfd < 0 || afd < 0) {
		r = wfd < 0 ? wfd : afd;
		kura_log(LOG_ERR, "cannot bind a socket in %s: %s", cfg->run_dir, strerror(-r));
		if (wfd >= 0)
			close(wfd);
		return r;
	}
	r = kura_workload_start(d);
	if (r < 0) {
		close(wfd);
		close(afd);
		return r;
	}
	d->workload = start_mhd(d, wfd, kura_workload_handler, true);
	d->admin = start_mhd(d, afd, kura_admin_handler, false);
	if (!d->workload || !d->admin) {
		kura_log(LOG_ERR, "cannot start the HTTP server");
		if (!d->workload)
			close(wfd);
		if (!d->admin)
			close(afd);
		return -EIO;
	}
	kura_log(LOG_INFO, "serving %s/workload.sock and %s/admin.sock (%zu runtimes)",
		cfg->run_dir, cfg->run_dir, d->n_runtimes);
	note_run_dir(d);
	kura_daemon_audit_self(d, "start", KURA_VERSION);
	return 0;
}

void kura_daemon_reconfigure(struct kura_daemon *d)
{
	struct kura_quota_config lc = quota_config(d);

	kura_quota_configure(d->quota, &lc);
}

void kura_daemon_stop(struct kura_daemon *d)
{
	char path[4096];

	pthread_mutex_lock(&d->rev_lock);
	d->stopping = true;
	pthread_cond_broadcast(&d->rev_cond);
	pthread_mutex_unlock(&d->rev_lock);
	/* Answer what is suspended (long polls see `stopping`), stop accepting, join. */
	if (d->workload) {
		int fd;

		kura_workload_drain(d);
		/* The answers just queued must get out before the connections are closed: stop
		 * accepting, then give the open ones up to a second to finish. */
		fd = MHD_quiesce_daemon(d->workload);
		for (int i = 0; i < 100; i++) {
			const union MHD_DaemonInfo *info = MHD_get_daemon_info(d->workload,
				MHD_DAEMON_INFO_CURRENT_CONNECTIONS);

			if (!info || info->num_connections == 0)
				break;
			kura_sleep_ms(10);
		}
		MHD_stop_daemon(d->workload);
		if (fd >= 0)
			close(fd);
	}
	if (d->admin)
		MHD_stop_daemon(d->admin);
	if (d->rev_thread_started)
		pthread_join(d->rev_thread, NULL);
	if (d->audit) {
		kura_daemon_audit_flush(d, true);
		kura_daemon_audit_self(d, "stop", NULL);
	}
	kura_daemon_audit_stop(d);
	kura_resolver_free(d->resolver);
	for (size_t i = 0; i < d->n_runtimes; i++)
		kura_runtime_free(d->runtimes[i]);
	free(d->runtimes);
	kura_workload_done(d);
	kura_changes_free(d->changes);
	kura_quota_free(d->quota);
	kura_vault_close(d->vault);
	if (d->lock_fd >= 0) {
		snprintf(path, sizeof(path), "%s/workload.sock", d->cfg.run_dir);
		(void)unlink(path);
		snprintf(path, sizeof(path), "%s/admin.sock", d->cfg.run_dir);
		(void)unlink(path);
		snprintf(path, sizeof(path), "%s/" KURA_RUN_DIR_FILE, d->cfg.state_dir);
		(void)unlink(path);
		close(d->lock_fd);
	}
}

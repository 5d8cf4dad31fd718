/* kurad's supervisor: it makes the run directory, the sockets and the channels, forks the key
 * custody process and the front, forwards signals, and the moment either dies stops the other
 * and exits non-zero, so that the service manager starts kurad afresh rather than let one run
 * on with a confused peer. It tells the service manager (notify.h) when kurad serves, reloads
 * and stops, and feeds its watchdog only while the key custody process and the front answer
 * its heartbeat. It holds no key and reads nothing a peer sends. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include "clock.h"
#include "daemon.h"
#include "hooks.h"
#include "lockdown.h"
#include "log.h"
#include "notify.h"
#include "outcome.h"
#include "tpm2.h"

#define STOP_WAIT_MS 15000 /* a process asked to stop gets this long, then SIGKILL */

enum role { KEEPER, FRONT, NET, N_ROLES };

static const char
	*const role_names[] = { [KEEPER] = "key custody", [FRONT] = "front", [NET] = "net" };
static const char *const
	role_comms[] = { [KEEPER] = "kurad-keeper", [FRONT] = "kurad-front", [NET] = "kurad-net" };

static sigset_t stop_signals(void)
{
	sigset_t s;

	sigemptyset(&s);
	sigaddset(&s, SIGTERM);
	sigaddset(&s, SIGINT);
	sigaddset(&s, SIGHUP);
	return s;
}

/* SIGHUP in the custody process: its part of the configuration (prefetch, logging). */
static void keeper_reload(struct kura_daemon *d, struct kura_daemon_options *o)
{
	struct kura_daemon_options n = *o;

	if (!o->config_file)
		return;
	if (kura_daemon_options_read(&n, o->config_file, true) < 0) {
		kura_log(LOG_WARNING, "SIGHUP: configuration kept as it was");
		return;
	}
	d->cfg.no_prefetch = n.cfg.no_prefetch;
	kura_resolver_set_prefetch(d->resolver, !n.cfg.no_prefetch);
	*o = n;
	kura_log(LOG_INFO, "reloaded %s", o->config_file);
	kura_recorder_self(d->rec, "reload", o->config_file);
}

/* SIGHUP in the front: the limits. */
static void front_reload(struct kura_daemon *d, struct kura_daemon_options *o)
{
	struct kura_daemon_options n = *o;

	if (!o->config_file)
		return;
	if (kura_daemon_options_read(&n, o->config_file, true) < 0)
		return; /* the custody process says so */
	d->cfg.rate_per_s = n.cfg.rate_per_s;
	d->cfg.rate_burst = n.cfg.rate_burst;
	__atomic_store_n(&d->cfg.watch_max_s, n.cfg.watch_max_s, __ATOMIC_RELAXED);
	kura_daemon_reconfigure(d);
	*o = n;
}

/*
 * The heartbeat: a socketpair between the supervisor and each of the key custody process and
 * the front, one byte a message. The child says READY once its part could serve, and starts
 * serving its socket at GO, which the supervisor sends once both are ready and the service
 * manager has been told (no answer precedes READY=1); it says RELOADED after each
 * SIGHUP, and answers each PING only after taking the locks its requests take (the custody
 * state's; the workload's): a process stopped, or deadlocked on them, answers nothing, and the
 * supervisor then withholds the watchdog's WATCHDOG=1 (the service manager restarts kurad).
 */
enum { BEAT_READY = 'R', BEAT_GO = 'G', BEAT_RELOADED = 'H', BEAT_PING = 'p' };

static volatile sig_atomic_t got_stop, got_hup;

static void note_signal(int sig)
{
	if (sig == SIGHUP)
		got_hup = 1;
	else
		got_stop = 1;
}

static void beat(int fd, char what)
{
	/* A supervisor gone kills us anyway (PR_SET_PDEATHSIG); nothing to do on failure. */
	(void)!write(fd, &what, 1);
}

/* The child's main thread, once its part is started: signals (blocked in every thread but
 * here, inside ppoll), the supervisor's GO and pings. 0 when told to stop, or -errno when its
 * socket cannot be served. */
static int serve(struct kura_daemon *d, struct kura_daemon_options *o, enum role role, int health)
{
	bool serving = false;
	sigset_t mask;

	pthread_sigmask(SIG_SETMASK, NULL, &mask);
	sigdelset(&mask, SIGTERM);
	sigdelset(&mask, SIGINT);
	sigdelset(&mask, SIGHUP);
	beat(health, BEAT_READY);
	while (!got_stop) {
		struct pollfd p = { .fd = health, .events = POLLIN };
		int n = ppoll(&p, 1, NULL, &mask);

		if (got_stop)
			break;
		if (got_hup) {
			got_hup = 0;
			if (role == KEEPER)
				keeper_reload(d, o);
			else
				front_reload(d, o);
			beat(health, BEAT_RELOADED);
		}
		if (n > 0 && p.revents) {
			char buf[16];
			ssize_t k = read(health, buf, sizeof(buf));
			struct kura_quota_stats qs;
			int64_t rev;

			if (k == 0 || (k < 0 && errno != EINTR && errno != EAGAIN))
				break; /* the supervisor closed it: it is stopping */
			for (ssize_t i = 0; i < k; i++) {
				if (buf[i] == BEAT_GO && !serving) {
					int r = role == KEEPER ? kura_daemon_keeper_serve(d) :
								 kura_daemon_front_serve(d);

					if (r < 0)
						return r;
					serving = true;
				}
				if (buf[i] != BEAT_PING || !serving)
					continue;
				if (role == KEEPER)
					kura_custody_stats(d->custody, &rev, &qs);
				else
					kura_workload_stats(d->workload, &rev, &qs);
				beat(health, BEAT_PING);
			}
		}
	}
	return 0;
}

/* A child's life: lock itself down, start its part, serve until SIGTERM, stop. Returns its
 * exit status. Its log lines go to stderr: the supervisor's pipe when kurad logs to syslog
 * (a sandboxed process makes no socket to reach syslog, and so cannot lose its log). */
static int child(struct kura_daemon *d, struct kura_daemon_options *o, enum role role, int log_fd,
	int health)
{
	struct sigaction sa = { .sa_handler = note_signal };
	int r;

	if (log_fd >= 0) {
		if (dup2(log_fd, STDERR_FILENO) < 0)
			return KURA_EXIT_SYSTEM;
		close(log_fd);
		kura_log_to_syslog(false);
	}

	/* Caught in serve()'s ppoll alone (blocked elsewhere); set before any lockdown. */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	/* Should the supervisor die, so do we: no process of ours runs unsupervised. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() == 1)
		return KURA_EXIT_SYSTEM;
	if (d->lock_fd >= 0)
		close(d->lock_fd);
	d->lock_fd = -1;
	/* Named, so that ps, the tests and an operator tell the processes apart. */
	(void)prctl(PR_SET_NAME, role_comms[role], 0, 0, 0);
	kura_log_ident(role_comms[role]);
	/* Each keeps its own ends of the channels, and nothing else. */
	if (role != KEEPER) {
		for (size_t i = 0; i < d->n_made; i++)
			close(d->keeper_chans[i]);
		d->keeper_chans_taken = true;
		close(d->events[0]);
		close(d->admin_fd);
		d->events[0] = d->admin_fd = -1;
		kura_net_fds_close(&d->net_keeper);
	}
	if (role != FRONT) {
		for (size_t i = 0; i < d->n_made; i++)
			close(d->front_chans[i]);
		d->front_chans_taken = true;
		close(d->events[1]);
		close(d->workload_fd);
		d->events[1] = d->workload_fd = -1;
	}
	if (role != NET)
		kura_net_fds_close(&d->net_side);
	if (role == NET) {
		/* It serves until the custody process closes its channels, then exits. */
		kura_daemon_net_warm(d);
		r = kura_lockdown(KURA_ROLE_NET, &d->cfg, 0, 0);
		if (r == 0)
			r = kura_daemon_net_run(d);
		kura_daemon_close(d);
		return r < 0 ? KURA_EXIT_SYSTEM : KURA_EXIT_OK;
	}
	if (role == KEEPER) {
		/* The master key first (a TPM, a passphrase's KDF), then nothing new; and no
		 * network connection of its own (the net process makes them). */
		r = kura_daemon_keeper_open(d);
		kura_tpm2_devices_only();
		if (r == 0)
			r = kura_lockdown(KURA_ROLE_KEEPER, &d->cfg, 0, 0);
		if (r == 0)
			r = kura_daemon_keeper_start(d);
	} else {
		r = kura_lockdown(KURA_ROLE_FRONT, &d->cfg, d->front_uid, d->front_gid);
		/* Its change of user cleared the parent-death signal: set it again, or a front
		 * would outlive a supervisor killed with SIGKILL. */
		if (r == 0 &&
			(prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != d->supervisor_pid))
			r = -ESRCH;
		if (r == 0)
			r = kura_daemon_front_start(d);
	}
	if (r < 0) {
		/* The heartbeat first, then the channels: the supervisor sees we are going before
		 * our peers see their channels close. */
		close(health);
		if (role == KEEPER)
			kura_daemon_keeper_stop(d);
		else
			kura_daemon_front_stop(d);
		kura_daemon_close(d);
		/* A front whose custody process went away while it started (a wrong master key,
		 * say) ends cleanly, like the net process: the custody process's status says why,
		 * whichever of the two the supervisor reaps first. */
		return role == FRONT && r == -EPIPE ? KURA_EXIT_OK : kura_outcome_exit(r);
	}
	r = serve(d, o, role, health);
	if (role == KEEPER)
		kura_daemon_keeper_stop(d);
	else
		kura_daemon_front_stop(d);
	kura_daemon_close(d);
	return r < 0 ? KURA_EXIT_SYSTEM : KURA_EXIT_OK;
}

static pid_t spawn(struct kura_daemon *d, struct kura_daemon_options *o, enum role role,
	const int log_pipe[2], int health[N_ROLES][2])
{
	pid_t pid = fork();

	if (pid == 0) {
		if (log_pipe[0] >= 0)
			close(log_pipe[0]);
		/* Its own end of its own heartbeat, and no other. */
		for (int i = 0; i < N_ROLES; i++) {
			if (health[i][0] >= 0)
				close(health[i][0]);
			if (i != (int)role && health[i][1] >= 0)
				close(health[i][1]);
		}
		_exit(child(d, o, role, log_pipe[1], health[role][1]));
	}
	if (pid < 0)
		kura_log(LOG_ERR, "cannot start the %s process: %s", role_names[role],
			strerror(errno));
	return pid;
}

/* The children's log lines, from their stderr, into syslog: text a child wrote, so printable
 * ASCII only, each line bounded, and its level read from its "NAME: LEVEL: " prefix. */
struct relay {
	int fd;
	char buf[2048];
	size_t len;
};

static void relay_one(char *line)
{
	static const struct {
		const char *name;
		int level;
	} levels[] = { { ": error: ", LOG_ERR }, { ": warning: ", LOG_WARNING },
		{ ": notice: ", LOG_NOTICE }, { ": info: ", LOG_INFO } };
	int level = LOG_NOTICE;

	for (char *c = line; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
			*c = '?';
	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
		if (strstr(line, levels[i].name)) {
			level = levels[i].level;
			break;
		}
	kura_log(level, "%s", line);
}

static void relay_lines(struct relay *r)
{
	ssize_t n = read(r->fd, r->buf + r->len, sizeof(r->buf) - 1 - r->len);
	char *start = r->buf, *nl;

	if (n <= 0) {
		if (n == 0) {
			close(r->fd);
			r->fd = -1;
		}
		return;
	}
	r->len += (size_t)n;
	r->buf[r->len] = '\0';
	while ((nl = memchr(start, '\n', r->len - (size_t)(start - r->buf)))) {
		*nl = '\0';
		relay_one(start);
		start = nl + 1;
	}
	r->len -= (size_t)(start - r->buf);
	memmove(r->buf, start, r->len);
	if (r->len == sizeof(r->buf) - 1) { /* a line too long: out in pieces */
		r->buf[r->len] = '\0';
		relay_one(r->buf);
		r->len = 0;
	}
}

static void describe_exit(enum role role, pid_t pid, int status)
{
	if (WIFSIGNALED(status))
		kura_log(LOG_ERR, "the %s process (pid %d) was killed by signal %d (%s)%s",
			role_names[role], (int)pid, WTERMSIG(status), strsignal(WTERMSIG(status)),
			WTERMSIG(status) == SIGSYS ? ": it made a system call its sandbox forbids" :
						     "");
	else
		kura_log(LOG_ERR, "the %s process (pid %d) exited with status %d", role_names[role],
			(int)pid, WEXITSTATUS(status));
}

/* Whether every child of ours has been reaped. */
static bool all_done(const bool done[N_ROLES])
{
	for (int i = 0; i < N_ROLES; i++)
		if (!done[i])
			return false;
	return true;
}

/* What the supervisor knows of its children's heartbeats (the net process has none). */
struct beats {
	int fd[N_ROLES];
	bool ready[N_ROLES], reloaded[N_ROLES], answered[N_ROLES];
	bool serving;     /* READY=1 sent */
	bool reloading;   /* RELOADING=1 sent, READY=1 not yet */
	bool pinged;      /* the children were pinged at the last tick */
	int silent;       /* the role that did not answer, or -1 */
	uint64_t tick_ms; /* WATCHDOG_USEC / 2, or 0 */
	int64_t next_tick;
};

static void beats_read(struct beats *b, enum role role)
{
	char buf[64];
	ssize_t n = read(b->fd[role], buf, sizeof(buf));

	if (n <= 0) {
		if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
			close(b->fd[role]); /* it is dying: waitpid says how */
			b->fd[role] = -1;
		}
		return;
	}
	for (ssize_t i = 0; i < n; i++) {
		if (buf[i] == BEAT_READY)
			b->ready[role] = true;
		else if (buf[i] == BEAT_RELOADED)
			b->reloaded[role] = true;
		else if (buf[i] == BEAT_PING)
			b->answered[role] = true;
	}
}

static void status_serving(const struct kura_daemon *d, bool ready, const char *what)
{
	kura_notify("%sSTATUS=%s %s/workload.sock and %s/admin.sock, %zu runtimes%s",
		ready ? "READY=1\n" : "", what, d->cfg.run_dir, d->cfg.run_dir, d->cfg.n_runtimes,
		d->workload_passed || d->admin_passed ? " (sockets from the service manager)" : "");
}

/* After the children's messages: READY=1 once both serve, and again once both have reloaded. */
static void beats_update(struct beats *b, const struct kura_daemon *d, const pid_t pids[N_ROLES],
	bool stopping)
{
	if (stopping)
		return;
	if (!b->serving && b->ready[KEEPER] && b->ready[FRONT]) {
		b->serving = true;
		kura_log(LOG_INFO,
			"serving %s/workload.sock (front, pid %d) and %s/admin.sock (key custody, "
			"pid %d; net, pid %d), %zu runtimes",
			d->cfg.run_dir, (int)pids[FRONT], d->cfg.run_dir, (int)pids[KEEPER],
			(int)pids[NET], d->cfg.n_runtimes);
		status_serving(d, true, "serving");
		/* Told: now they may answer. */
		beat(b->fd[KEEPER], BEAT_GO);
		beat(b->fd[FRONT], BEAT_GO);
	}
	if (b->serving && b->reloading && b->reloaded[KEEPER] && b->reloaded[FRONT]) {
		b->reloading = false;
		status_serving(d, true, "reloaded; serving");
	}
}

/* The watchdog's tick: WATCHDOG=1 while kurad starts (TimeoutStartSec bounds that) or stops
 * (STOP_WAIT_MS does), and while it serves only if both children answered the last ping; then
 * the next ping. */
static void beats_tick(struct beats *b, const struct kura_daemon *d, bool stopping)
{
	int silent = -1;

	if (!b->tick_ms || kura_clock_ms() < b->next_tick)
		return;
	b->next_tick = kura_clock_ms() + (int64_t)b->tick_ms;
	if (b->serving && !stopping && b->pinged)
		for (int i = 0; i < N_ROLES; i++)
			if (i != NET && !b->answered[i])
				silent = i;
	if (silent >= 0) {
		if (b->silent != silent) {
			kura_log(LOG_ERR,
				"the %s process did not answer the heartbeat within %llu ms: "
				"the watchdog is no longer fed",
				role_names[silent], (unsigned long long)b->tick_ms);
			kura_notify("STATUS=the %s process does not answer: the watchdog is no "
				    "longer fed",
				role_names[silent]);
		}
		b->silent = silent;
	} else {
		if (b->silent >= 0) {
			kura_log(LOG_NOTICE, "the %s process answers again", role_names[b->silent]);
			status_serving(d, false, "serving");
		}
		b->silent = -1;
		kura_notify("WATCHDOG=1");
	}
	if (b->serving && !stopping) {
		for (int i = 0; i < N_ROLES; i++) {
			if (b->fd[i] < 0 || i == NET)
				continue;
			/* Still silent: no second ping queued behind the first. */
			if (!b->pinged || b->answered[i])
				beat(b->fd[i], BEAT_PING);
			b->answered[i] = false;
		}
		b->pinged = true;
	}
}

/* The poll timeout: until the next tick, or 100 ms while stopping, or none. */
static int beats_timeout(const struct beats *b, bool stopping)
{
	int64_t left;

	if (!b->tick_ms)
		return stopping ? 100 : -1;
	left = b->next_tick - kura_clock_ms();
	left = left < 0 ? 0 : left;
	return stopping && left > 100 ? 100 : (int)left;
}

int kura_daemon_run(struct kura_daemon_options *o)
{
	struct kura_daemon d = { 0 };
	pid_t pids[N_ROLES] = { -1, -1, -1 };
	bool done[N_ROLES] = { false, false, false }, stopping = false, failed = false;
	int64_t deadline = 0;
	sigset_t sigs = stop_signals();
	int sfd, r, exit_status = KURA_EXIT_OK, log_pipe[2] = { -1, -1 };
	int health[N_ROLES][2] = { { -1, -1 }, { -1, -1 }, { -1, -1 } };
	struct relay relay = { .fd = -1 };
	struct beats b = { .fd = { -1, -1, -1 }, .silent = -1 };

	/* Before any fork: no child may take the manager's socket or its sockets. */
	kura_notify_init();
	b.tick_ms = kura_notify_watchdog_usec() / 2000;
	if (kura_notify_watchdog_usec() && !b.tick_ms)
		b.tick_ms = 1;
	if (!o->cfg.no_sandbox && kura_lockdown_front_user(&o->cfg, &d.front_uid, &d.front_gid) < 0)
		return KURA_EXIT_USAGE;
	for (int i = 0; i < N_ROLES; i++)
		/* Non-blocking: a stopped child never holds the supervisor up. Made before the
		 * channels, so numbered below them: a child that crashes closes it first, and
		 * the supervisor sees it going before its peers see their channels close. */
		if (i != NET &&
			socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0,
				health[i]) < 0) {
			kura_log(LOG_ERR, "socketpair: %s", strerror(errno));
			health[i][0] = health[i][1] = -1;
		}
	r = kura_daemon_prepare(&d, &o->cfg, true);
	if (r < 0) {
		for (int i = 0; i < N_ROLES; i++)
			for (int j = 0; j < 2; j++)
				if (health[i][j] >= 0)
					close(health[i][j]);
		kura_notify("STATUS=cannot start: %s (see the log)", strerror(-r));
		kura_daemon_close(&d);
		kura_daemon_unlink(&d);
		return kura_outcome_exit(r);
	}
	sigaddset(&sigs, SIGCHLD);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
	if (sfd < 0) {
		kura_log(LOG_ERR, "signalfd: %s", strerror(errno));
		kura_daemon_close(&d);
		kura_daemon_unlink(&d);
		return KURA_EXIT_SYSTEM;
	}
	if (o->syslog && pipe2(log_pipe, O_CLOEXEC) < 0) {
		kura_log(LOG_ERR, "pipe: %s", strerror(errno));
		log_pipe[0] = log_pipe[1] = -1;
	}
	if (b.tick_ms)
		kura_log(LOG_INFO,
			"watchdog: fed every %llu ms while the key custody process and the front "
			"answer",
			(unsigned long long)b.tick_ms);
	kura_notify("STATUS=starting: opening the store");
	/* The net process first: the custody process asks it for the runtimes at once. */
	if (health[KEEPER][0] >= 0 && health[FRONT][0] >= 0) {
		pids[NET] = spawn(&d, o, NET, log_pipe, health);
		d.net_pid = pids[NET]; /* the keeper, forked next, shows it in status */
		pids[KEEPER] = pids[NET] < 0 ? -1 : spawn(&d, o, KEEPER, log_pipe, health);
		pids[FRONT] = pids[KEEPER] < 0 ? -1 : spawn(&d, o, FRONT, log_pipe, health);
	}
	/* The children hold their ends; ours go, so that a child's death is seen by the others. */
	kura_daemon_close(&d);
	if (log_pipe[1] >= 0)
		close(log_pipe[1]);
	for (int i = 0; i < N_ROLES; i++) {
		if (health[i][1] >= 0)
			close(health[i][1]);
		b.fd[i] = health[i][0];
	}
	if (pids[FRONT] > 0 && kura_lockdown(KURA_ROLE_SUPERVISOR, &d.cfg, 0, 0) < 0) {
		for (int i = 0; i < N_ROLES; i++)
			kill(pids[i], SIGKILL);
		pids[FRONT] = -1;
	}
	if (pids[FRONT] < 0) {
		failed = stopping = true;
		exit_status = KURA_EXIT_SYSTEM;
		for (int i = 0; i < N_ROLES; i++) {
			if (pids[i] > 0)
				kill(pids[i], SIGTERM);
			else
				done[i] = true;
		}
		deadline = kura_clock_ms() + STOP_WAIT_MS;
		kura_notify("STOPPING=1\nSTATUS=cannot start its processes (see the log)");
	}
	kura_hook_forbidden("supervisor");
	relay.fd = log_pipe[0];
	b.next_tick = kura_clock_ms();
	while (!all_done(done)) {
		struct pollfd p[4] = { { .fd = sfd, .events = POLLIN },
			{ .fd = b.fd[KEEPER], .events = POLLIN },
			{ .fd = b.fd[FRONT], .events = POLLIN },
			{ .fd = relay.fd, .events = POLLIN } };
		struct signalfd_siginfo si;

		beats_tick(&b, &d, stopping);
		if (poll(p, 4, beats_timeout(&b, stopping)) > 0) {
			if (p[3].revents)
				relay_lines(&relay);
			if (p[1].revents)
				beats_read(&b, KEEPER);
			if (p[2].revents)
				beats_read(&b, FRONT);
		}
		beats_update(&b, &d, pids, stopping);
		if (p[0].revents && read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
			if (si.ssi_signo == SIGHUP && !stopping) {
				struct kura_daemon_options n = *o;

				/* Each process reads its own part; ours is the logging. */
				if (o->config_file &&
					kura_daemon_options_read(&n, o->config_file, true) == 0 &&
					n.syslog != o->syslog) {
					kura_log_to_syslog(n.syslog);
					o->syslog = n.syslog;
				}
				/* READY=1 again once both children say they have reloaded. */
				if (b.serving) {
					b.reloading = true;
					b.reloaded[KEEPER] = b.reloaded[FRONT] = false;
					kura_notify("RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS="
						    "reloading %s",
						(unsigned long long)kura_notify_monotonic_usec(),
						o->config_file ? o->config_file : "(no --config)");
				}
				kill(pids[KEEPER], SIGHUP);
				kill(pids[FRONT], SIGHUP);
			} else if ((si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) &&
				!stopping) {
				kura_log(LOG_INFO, "%s: draining and stopping",
					strsignal((int)si.ssi_signo));
				kura_notify("STOPPING=1\nSTATUS=%s: draining and stopping",
					strsignal((int)si.ssi_signo));
				stopping = true;
				deadline = kura_clock_ms() + STOP_WAIT_MS;
				/* The front first: its last records go through the custody process,
				 * whose sinks go through the net process. */
				kill(pids[FRONT], SIGTERM);
			}
		}
		for (;;) {
			int st;
			pid_t pid = waitpid(-1, &st, WNOHANG);
			int who = -1;

			if (pid <= 0)
				break;
			for (int i = 0; i < N_ROLES; i++)
				if (pid == pids[i])
					who = i;
			if (who < 0)
				continue;
			done[who] = true;
			if (!stopping || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
				/* The net process (and a starting front) ends cleanly when the
				 * custody process closes its channels: a consequence, not the cause
				 * (which is named when it is reaped), unless nothing else fails. */
				bool consequence = (who == NET || who == FRONT) && WIFEXITED(st) &&
					WEXITSTATUS(st) == 0 && !done[KEEPER];

				if (consequence && !failed)
					exit_status = KURA_EXIT_SYSTEM;
				/* Not asked to, or not cleanly: the others must not run on alone.
				 * The first to fail says why; the others' ends follow from it. */
				if (!failed && !consequence) {
					describe_exit((enum role)who, pid, st);
					failed = true;
					exit_status = WIFEXITED(st) && WEXITSTATUS(st) != 0 ?
						WEXITSTATUS(st) :
						KURA_EXIT_SYSTEM;
				}
				if (!stopping) {
					stopping = true;
					deadline = kura_clock_ms() + STOP_WAIT_MS;
					kura_notify("STOPPING=1\nSTATUS=stopping: the %s process "
						    "ended (see the log)",
						role_names[who]);
				}
				for (int i = 0; i < N_ROLES; i++)
					if (!done[i])
						kill(pids[i], SIGTERM);
			}
			/* In order: the front, then the custody process, then the net process
			 * (which also ends when the custody process closes its channels). */
			if (who == FRONT && !done[KEEPER])
				kill(pids[KEEPER], SIGTERM);
			if (who == KEEPER && !done[NET])
				kill(pids[NET], SIGTERM);
		}
		if (stopping && kura_clock_ms() > deadline) {
			for (int i = 0; i < N_ROLES; i++)
				if (!done[i]) {
					kura_log(LOG_ERR,
						"the %s process did not stop in time: killed",
						role_names[i]);
					kill(pids[i], SIGKILL);
				}
			deadline = kura_clock_ms() + STOP_WAIT_MS;
			exit_status = KURA_EXIT_SYSTEM;
		}
	}
	if (relay.fd >= 0) {
		relay_lines(&relay);
		close(relay.fd);
	}
	for (int i = 0; i < N_ROLES; i++)
		if (b.fd[i] >= 0)
			close(b.fd[i]);
	close(sfd);
	kura_daemon_unlink(&d);
	if (failed && exit_status == KURA_EXIT_OK)
		exit_status = KURA_EXIT_SYSTEM;
	return exit_status;
}

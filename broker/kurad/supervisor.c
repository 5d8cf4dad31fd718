/* kurad's supervisor: it makes the run directory, the sockets and the channels, forks the key
 * custody process and the front, forwards signals, and the moment either dies stops the other
 * and exits non-zero, so that the service manager starts kurad afresh rather than let one run
 * on with a confused peer. It holds no key and reads nothing a peer sends. */
#include <errno.h>
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
#include "log.h"
#include "outcome.h"

#define STOP_WAIT_MS 15000 /* a process asked to stop gets this long, then SIGKILL */

enum role { KEEPER, FRONT };

static const char *const role_names[] = { [KEEPER] = "key custody", [FRONT] = "front" };

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
	if (n.syslog != o->syslog)
		kura_log_to_syslog(n.syslog);
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
	if (n.syslog != o->syslog)
		kura_log_to_syslog(n.syslog);
	*o = n;
}

/* A child's life: start its part, serve until SIGTERM, stop. Returns its exit status. */
static int child(struct kura_daemon *d, struct kura_daemon_options *o, enum role role)
{
	sigset_t sigs = stop_signals();
	int r, sig;

	/* Should the supervisor die, so do we: no process of ours runs unsupervised. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() == 1)
		return KURA_EXIT_SYSTEM;
	if (d->lock_fd >= 0)
		close(d->lock_fd);
	d->lock_fd = -1;
	/* Named, so that ps, the tests and an operator tell the processes apart. */
	(void)prctl(PR_SET_NAME, role == KEEPER ? "kurad-keeper" : "kurad-front", 0, 0, 0);
	if (role == KEEPER) {
		kura_log_ident("kurad-keeper");
		for (size_t i = 0; i < d->n_made; i++)
			close(d->front_chans[i]);
		d->front_chans_taken = true;
		close(d->events[1]);
		close(d->workload_fd);
		d->events[1] = d->workload_fd = -1;
		r = kura_daemon_keeper_start(d);
	} else {
		kura_log_ident("kurad-front");
		for (size_t i = 0; i < d->n_made; i++)
			close(d->keeper_chans[i]);
		d->keeper_chans_taken = true;
		close(d->events[0]);
		close(d->admin_fd);
		d->events[0] = d->admin_fd = -1;
		r = kura_daemon_front_start(d);
	}
	if (r < 0) {
		if (role == KEEPER)
			kura_daemon_keeper_stop(d);
		else
			kura_daemon_front_stop(d);
		kura_daemon_close(d);
		return role == FRONT && r == -EPIPE ? KURA_EXIT_SYSTEM : kura_outcome_exit(r);
	}
	for (;;) {
		if (sigwait(&sigs, &sig) != 0)
			continue;
		if (sig != SIGHUP)
			break;
		if (role == KEEPER)
			keeper_reload(d, o);
		else
			front_reload(d, o);
	}
	if (role == KEEPER)
		kura_daemon_keeper_stop(d);
	else
		kura_daemon_front_stop(d);
	kura_daemon_close(d);
	return KURA_EXIT_OK;
}

static pid_t spawn(struct kura_daemon *d, struct kura_daemon_options *o, enum role role)
{
	pid_t pid = fork();

	if (pid == 0)
		_exit(child(d, o, role));
	if (pid < 0)
		kura_log(LOG_ERR, "cannot start the %s process: %s", role_names[role],
			strerror(errno));
	return pid;
}

static void describe_exit(enum role role, pid_t pid, int status)
{
	if (WIFSIGNALED(status))
		kura_log(LOG_ERR, "the %s process (pid %d) was killed by signal %d (%s)%s",
			role_names[role], (int)pid, WTERMSIG(status), strsignal(WTERMSIG(status)),
			WTERMSIG(status) == SIGSYS ?
				": it made a system call its sandbox forbids" :
				"");
	else
		kura_log(LOG_ERR, "the %s process (pid %d) exited with status %d",
			role_names[role], (int)pid, WEXITSTATUS(status));
}

int kura_daemon_run(struct kura_daemon_options *o)
{
	struct kura_daemon d = { 0 };
	pid_t pids[2] = { -1, -1 };
	bool done[2] = { false, false }, stopping = false, failed = false;
	int64_t deadline = 0;
	sigset_t sigs = stop_signals();
	int sfd, r, exit_status = KURA_EXIT_OK;

	r = kura_daemon_prepare(&d, &o->cfg);
	if (r < 0) {
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
	pids[KEEPER] = spawn(&d, o, KEEPER);
	pids[FRONT] = pids[KEEPER] < 0 ? -1 : spawn(&d, o, FRONT);
	/* The children hold their ends; ours go, so that a child's death is seen by the other. */
	kura_daemon_close(&d);
	if (pids[FRONT] < 0) {
		failed = stopping = true;
		exit_status = KURA_EXIT_SYSTEM;
		if (pids[KEEPER] > 0)
			kill(pids[KEEPER], SIGTERM);
		else
			done[KEEPER] = true;
		done[FRONT] = true;
		deadline = kura_clock_ms() + STOP_WAIT_MS;
	} else {
		kura_log(LOG_INFO,
			"serving %s/workload.sock (front, pid %d) and %s/admin.sock (key custody, "
			"pid %d), %zu runtimes",
			d.cfg.run_dir, (int)pids[FRONT], d.cfg.run_dir, (int)pids[KEEPER],
			d.cfg.n_runtimes);
	}
	while (!done[KEEPER] || !done[FRONT]) {
		struct pollfd p = { .fd = sfd, .events = POLLIN };
		struct signalfd_siginfo si;

		if (poll(&p, 1, stopping ? 100 : -1) > 0 &&
			read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
			if (si.ssi_signo == SIGHUP && !stopping) {
				struct kura_daemon_options n = *o;

				/* Each process reads its own part; ours is the logging. */
				if (o->config_file && kura_daemon_options_read(&n, o->config_file,
							      true) == 0 &&
					n.syslog != o->syslog) {
					kura_log_to_syslog(n.syslog);
					o->syslog = n.syslog;
				}
				kill(pids[KEEPER], SIGHUP);
				kill(pids[FRONT], SIGHUP);
			} else if ((si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) && !stopping) {
				kura_log(LOG_INFO, "%s: draining and stopping", strsignal((int)si.ssi_signo));
				stopping = true;
				deadline = kura_clock_ms() + STOP_WAIT_MS;
				/* The front first: its last records go through the custody process. */
				kill(pids[FRONT], SIGTERM);
			}
		}
		for (;;) {
			int st;
			pid_t pid = waitpid(-1, &st, WNOHANG);
			enum role who;

			if (pid <= 0)
				break;
			if (pid != pids[KEEPER] && pid != pids[FRONT])
				continue;
			who = pid == pids[KEEPER] ? KEEPER : FRONT;
			done[who] = true;
			if (!stopping || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
				/* Not asked to, or not cleanly: the other must not run on alone. The
				 * first to fail says why; the other's end follows from it. */
				if (!failed) {
					describe_exit(who, pid, st);
					failed = true;
					exit_status = WIFEXITED(st) && WEXITSTATUS(st) != 0 ?
						WEXITSTATUS(st) :
						KURA_EXIT_SYSTEM;
				}
				if (!stopping) {
					stopping = true;
					deadline = kura_clock_ms() + STOP_WAIT_MS;
				}
			}
			if (who == FRONT && !done[KEEPER])
				kill(pids[KEEPER], SIGTERM);
			if (who == KEEPER && !done[FRONT])
				kill(pids[FRONT], SIGTERM);
		}
		if (stopping && kura_clock_ms() > deadline) {
			for (int i = 0; i < 2; i++)
				if (!done[i]) {
					kura_log(LOG_ERR, "the %s process did not stop in time: killed",
						role_names[i]);
					kill(pids[i], SIGKILL);
				}
			deadline = kura_clock_ms() + STOP_WAIT_MS;
			exit_status = KURA_EXIT_SYSTEM;
		}
	}
	close(sfd);
	kura_daemon_unlink(&d);
	if (failed && exit_status == KURA_EXIT_OK)
		exit_status = KURA_EXIT_SYSTEM;
	return exit_status;
}

/* kura run --watch: the app as a child, signals forwarded through a signalfd, and a confined
 * watcher process (confine.c) that long-polls the broker and rewrites the set. No plaintext
 * here: values pass only through the refresh callback (kura.c), in the watcher. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "confine.h"
#include "escape.h"
#include "watch.h"

#define WATCH_TIMEOUT_S 30
#define RESTART_GRACE_MS 10000
/* A kurad away longer than its retry window (kura.c) is asked again after 1 s, 2 s, 4 s, then
 * every 10 s: a rotation made once it is back is seen within that. */
#define BACKOFF_MAX_S 10

static const struct {
	const char *name;
	int sig;
} signames[] = {
	{ "HUP", SIGHUP },
	{ "INT", SIGINT },
	{ "QUIT", SIGQUIT },
	{ "USR1", SIGUSR1 },
	{ "USR2", SIGUSR2 },
	{ "TERM", SIGTERM },
	{ "ALRM", SIGALRM },
	{ "WINCH", SIGWINCH },
	{ "CONT", SIGCONT },
	{ "KILL", SIGKILL },
};

static const int forwarded[] = { SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGQUIT };

static int parse_signal(const char *s)
{
	char *end;
	long v;

	if (strncmp(s, "SIG", 3) == 0)
		s += 3;
	if (*s >= '0' && *s <= '9') {
		errno = 0;
		v = strtol(s, &end, 10);
		return errno || *end || v < 1 || v >= NSIG ? -EINVAL : (int)v;
	}
	for (size_t i = 0; i < sizeof(signames) / sizeof(signames[0]); i++)
		if (strcmp(s, signames[i].name) == 0)
			return signames[i].sig;
	return -EINVAL;
}

int kura_watch_parse_on_change(struct kura_watch *w, const char *s)
{
	char *copy, *tok, *save = NULL;
	char **argv = NULL, **grown;
	size_t n = 0;
	int sig;

	if (strcmp(s, "restart") == 0) {
		w->on_change = KURA_ON_CHANGE_RESTART;
		return 0;
	}
	if (strncmp(s, "signal:", 7) == 0) {
		sig = parse_signal(s + 7);
		if (sig < 0)
			return sig;
		w->on_change = KURA_ON_CHANGE_SIGNAL;
		w->sig = sig;
		return 0;
	}
	if (strncmp(s, "exec:", 5) != 0)
		return -EINVAL;
	copy = strdup(s + 5);
	if (!copy)
		return -ENOMEM;
	for (tok = strtok_r(copy, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		grown = reallocarray(argv, n + 2, sizeof(*argv));
		if (!grown) {
			free(argv);
			free(copy);
			return -ENOMEM;
		}
		argv = grown;
		argv[n++] = tok;
		argv[n] = NULL;
	}
	if (n == 0) {
		free(copy);
		return -EINVAL;
	}
	free(w->exec_argv ? w->exec_argv[0] : NULL);
	free(w->exec_argv);
	w->on_change = KURA_ON_CHANGE_EXEC;
	w->exec_argv = argv; /* argv[0] is the start of copy */
	return 0;
}

/* fork + exec with kura's original signal mask; every fd of kura's is O_CLOEXEC. */
static pid_t spawn(char **argv, const sigset_t *mask)
{
	pid_t pid = fork();
	char safe[1024];
	int e;

	if (pid != 0)
		return pid;
	sigprocmask(SIG_SETMASK, mask, NULL);
	execvp(argv[0], argv);
	e = errno;
	dprintf(STDERR_FILENO, "kura: cannot execute %s: %s\n",
		kura_escape(argv[0], strlen(argv[0]), KURA_ESCAPE_TEXT, safe, sizeof(safe)),
		strerror(e));
	_exit(e == ENOENT ? KURA_EXIT_NOT_FOUND : KURA_EXIT_CANNOT_EXEC);
}

static int exit_status(int st)
{
	return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
}

static void sleep_s(unsigned s)
{
	struct timespec ts = { .tv_sec = s };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static bool relevant(const struct kura_watch *w, const json_t *changed)
{
	size_t i, k;
	json_t *e;

	if (json_array_size(changed) == 0)
		return false;
	if (w->only->n == 0)
		return true;
	json_array_foreach(changed, i, e) {
		const char *name = json_string_value(e);

		for (k = 0; name && k < w->only->n; k++)
			if (strcmp(name, w->only->items[k].name) == 0)
				return true;
	}
	return false;
}

/* One long poll, and a rewrite if it reports a change to a name of ours: 0 or an exit code. */
static int watch_once(struct kura_watch *w, int notify_fd, struct kura_fail *f)
{
	_cleanup_(json_decrefp) json_t *j = NULL;
	char path[96];
	json_t *rev, *changed;
	int r;

	snprintf(path, sizeof(path), "/v1/watch?since=%llu&timeout=%d",
		(unsigned long long)w->revision, WATCH_TIMEOUT_S);
	if (kura_api_get_json(&w->broker, path, &j, f) < 0)
		return f->exit ? f->exit : KURA_EXIT_SYSTEM;
	rev = json_object_get(j, "revision");
	changed = json_object_get(j, "changed");
	if (!json_is_integer(rev) || json_integer_value(rev) < 0 || !json_is_array(changed)) {
		kura_fail_set(f, -EBADMSG, KURA_EXIT_PROTOCOL,
			"/v1/watch: no revision or changed list in the broker's answer");
		return KURA_EXIT_PROTOCOL;
	}
	/* "resync": the broker no longer knows what changed since our revision (it restarted, or
	 * too much changed at once): anything may have, so the whole set is written again. */
	if (json_is_true(json_object_get(j, "resync")) || relevant(w, changed)) {
		sigset_t term, old;

		/* The parent ends the watcher with SIGTERM once the app is gone: held off until a
		 * rewrite is done, so kura never ends halfway through a swap. */
		sigemptyset(&term);
		sigaddset(&term, SIGTERM);
		sigprocmask(SIG_BLOCK, &term, &old);
		r = w->refresh(w->ctx, f);
		sigprocmask(SIG_SETMASK, &old, NULL);
		if (r != 0)
			return r; /* the revision stays, so the next poll answers at once */
		/* A full pipe already holds a wake-up for the parent. */
		if (write(notify_fd, "c", 1) < 0 && errno != EAGAIN) {
			kura_fail_set(f, -errno, KURA_EXIT_SYSTEM, "cannot wake the parent: %m");
			return KURA_EXIT_SYSTEM;
		}
	}
	w->revision = (uint64_t)json_integer_value(rev);
	return 0;
}

void kura_watch_follow(struct kura_watch *w, int notify_fd)
{
	unsigned backoff = 0;
	bool failing = false;

	for (;;) {
		struct kura_fail f = { 0 };

		if (watch_once(w, notify_fd, &f) == 0) {
			if (failing)
				fprintf(stderr,
					"kura: watch: the broker answers again; following "
					"changes\n");
			failing = false;
			backoff = 0;
			continue;
		}
		backoff = backoff ? (backoff * 2 > BACKOFF_MAX_S ? BACKOFF_MAX_S : backoff * 2) : 1;
		if (!failing)
			fprintf(stderr, "kura: watch: %s; the app keeps running, retrying\n",
				f.msg);
		failing = true;
		sleep_s(backoff);
	}
}

struct children {
	pid_t app;
	pid_t hook;
	pid_t watcher;
	int app_status;
	bool app_gone;
};

static void reap(struct children *c)
{
	struct kura_fail f = { 0 };
	pid_t pid;
	int st;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		if (pid == c->watcher) {
			/* Rewrites stop; the app is left alone, as when the broker is away. */
			c->watcher = 0;
			kura_confine_why(st, &f);
			fprintf(stderr,
				"kura: watch: %s; the app keeps running without following "
				"changes\n",
				f.msg);
		} else if (pid == c->app) {
			c->app_status = exit_status(st);
			c->app_gone = true;
		} else if (pid == c->hook) {
			c->hook = 0;
			if (st != 0)
				fprintf(stderr, "kura: watch: the --on-change command exited %d\n",
					exit_status(st));
		}
	}
}

/* Reads one signal from the signalfd within timeout_ms: the signal, 0 on timeout. */
static int next_signal(int sfd, int timeout_ms)
{
	struct pollfd p = { .fd = sfd, .events = POLLIN };
	struct signalfd_siginfo si;

	if (poll(&p, 1, timeout_ms) <= 0)
		return 0;
	if (read(sfd, &si, sizeof(si)) != sizeof(si))
		return 0;
	return (int)si.ssi_signo;
}

/*
 * SIGTERM, then SIGKILL after the grace period. A forwarded signal that arrives meanwhile goes
 * to the app and means it is stopping for good: returns false, and no new app is started.
 */
static bool stop_app(struct children *c, int sfd)
{
	int64_t deadline = kura_clock_ms() + RESTART_GRACE_MS;
	bool again = true;
	int sig, st;

	kill(c->app, SIGTERM);
	while (!c->app_gone) {
		int64_t left = deadline - kura_clock_ms();

		if (left <= 0) {
			kill(c->app, SIGKILL);
			if (waitpid(c->app, &st, 0) == c->app) {
				c->app_status = exit_status(st);
				c->app_gone = true;
			}
			break;
		}
		sig = next_signal(sfd, (int)left);
		if (sig == SIGCHLD) {
			reap(c);
		} else if (sig > 0) {
			kill(c->app, sig);
			again = false;
		}
	}
	return again;
}

static void apply_change(struct kura_watch *w, struct children *c, int sfd, const sigset_t *mask,
	char **cmd_argv)
{
	switch (w->on_change) {
	case KURA_ON_CHANGE_SIGNAL:
		kill(c->app, w->sig);
		break;
	case KURA_ON_CHANGE_RESTART:
		if (!stop_app(c, sfd))
			break;
		c->app_gone = false;
		c->app = spawn(cmd_argv, mask);
		if (c->app < 0) {
			c->app_status = KURA_EXIT_SYSTEM;
			c->app_gone = true;
		}
		break;
	case KURA_ON_CHANGE_EXEC:
		if (c->hook > 0) {
			fprintf(stderr,
				"kura: watch: the --on-change command still runs; not "
				"starting another\n");
			break;
		}
		c->hook = spawn(w->exec_argv, mask);
		if (c->hook < 0)
			c->hook = 0;
		break;
	}
}

/* SIGTERM, which the watcher holds off while it rewrites the set, then wait for it. */
static void stop_watcher(struct children *c)
{
	int st;

	if (c->watcher <= 0)
		return;
	kill(c->watcher, SIGTERM);
	while (waitpid(c->watcher, &st, 0) < 0 && errno == EINTR)
		;
	c->watcher = 0;
}

int kura_watch_run(struct kura_watch *w, char **cmd_argv, struct kura_confined *watcher)
{
	struct children c = { .watcher = watcher->pid };
	int notify = watcher->fd;
	sigset_t set, old;
	int sfd;
	char buf[64];

	sigemptyset(&set);
	for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
		sigaddset(&set, forwarded[i]);
	sigaddset(&set, SIGCHLD);
	/* Blocked signals also reach kura when it is pid 1 of a container, which ignores default
	 * ones. */
	sigprocmask(SIG_BLOCK, &set, &old);
	sfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (sfd < 0) {
		fprintf(stderr, "kura: watch: %m\n");
		stop_watcher(&c);
		return KURA_EXIT_SYSTEM;
	}
	c.app = spawn(cmd_argv, &old);
	if (c.app < 0) {
		fprintf(stderr, "kura: cannot fork: %m\n");
		stop_watcher(&c);
		return KURA_EXIT_SYSTEM;
	}
	while (!c.app_gone) {
		struct pollfd p[2] = { { .fd = sfd, .events = POLLIN },
			{ .fd = notify, .events = POLLIN } };
		int sig;

		if (poll(p, 2, -1) < 0)
			continue;
		if (p[0].revents & POLLIN) {
			sig = next_signal(sfd, 0);
			if (sig == SIGCHLD)
				reap(&c);
			else if (sig > 0)
				kill(c.app, sig);
		}
		if (!c.app_gone && (p[1].revents & POLLIN) && read(notify, buf, sizeof(buf)) > 0)
			apply_change(w, &c, sfd, &old, cmd_argv);
		else if (p[1].revents & (POLLHUP | POLLERR))
			notify = -1; /* the watcher is gone; reap says why */
	}
	stop_watcher(&c);
	return c.app_status;
}

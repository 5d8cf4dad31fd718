/* kura's sandbox: a confined child does the broker's work (parsing its answers, writing the set)
 * under no_new_privs and a seccomp allow-list; the parent stays unconfined to exec the app. No
 * plaintext here; the child's values stay in the child.
 *
 * Why a child: a seccomp filter and no_new_privs survive execve. Applied by kura before it execs
 * the app, they would confine the app as well: an allow-list fit for kura kills any real app,
 * and no_new_privs breaks an app that runs sudo or another setuid binary. So the code that reads
 * what comes from the socket (which whoever mounts it controls) runs confined in a child; the
 * parent only reads a fixed-size result from it and then execs, or, under --watch, spawns the
 * app and signals it when the confined watcher says a new set is in place. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdarg.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client-filter.h" /* kura_client_bpf, made by filter-gen.c at build time */
#include "confine.h"
#include "log.h"
#include "sandbox.h"

/* sandbox.c logs through kura_log; in kura that is a line on stderr as kura's own. */
void kura_log(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs(level == LOG_WARNING ? "kura: warning: " : "kura: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/*
 * Landlock, besides: the confined part writes only beneath DIR (run, fetch) and reads only there
 * and in the few files libc and the swap check open; walking up from DIR to / uses O_PATH, which
 * Landlock leaves alone. A DIR that is not there gets no rule, so the writer's own check says
 * why. So a confined part under an attacker's control cannot overwrite the app or its files.
 */
int kura_confine_apply(const char *dir)
{
	const struct kura_sandbox_path paths[] = {
		{ "/proc/swaps", KURA_LL_READ | KURA_LL_OPTIONAL },
		{ "/etc/localtime", KURA_LL_READ | KURA_LL_OPTIONAL },
		{ "/dev/urandom", KURA_LL_READ | KURA_LL_OPTIONAL },
		{ dir, KURA_LL_READ | KURA_LL_WRITE | KURA_LL_OPTIONAL },
	};
	/* kura's capabilities stay as the runtime gave them: files for --uid need CAP_CHOWN,
	 * and the confined part can exec nothing to use the rest with. */
	const struct kura_sandbox sb = {
		.role = "kura",
		.keep_caps = KURA_SB_CAPS_UNCHANGED,
		.paths = paths,
		.n_paths = dir ? 4 : 3,
		.no_fs = true,
	};

	int r;

	r = kura_sandbox_prepare(&sb);
	if (r == 0)
		r = kura_sandbox_load_bpf(&sb, kura_client_bpf,
			sizeof(kura_client_bpf) / sizeof(kura_client_bpf[0]));
	return r;
}

void kura_confine_send(struct kura_confined *c, const struct kura_fail *f)
{
	ssize_t n;

	if (c->sent)
		return;
	c->sent = true;
	/* One write below PIPE_BUF: the parent reads all of it or nothing. */
	n = write(c->fd, f, sizeof(*f));
	(void)n;
	fcntl(c->fd, F_SETFL, O_NONBLOCK);
}

int kura_confine_start(const char *dir,
	int (*fn)(void *ctx, struct kura_confined *c, struct kura_fail *f), void *ctx,
	struct kura_confined *c, struct kura_fail *f)
{
	struct kura_fail res = { 0 };
	sigset_t held;
	pid_t parent;
	int p[2], r;

	if (pipe2(p, O_CLOEXEC) < 0)
		return kura_fail_set(f, -errno, KURA_EXIT_SYSTEM, "cannot make a pipe: %m");
	fflush(NULL);
	parent = getpid();
	c->pid = fork();
	if (c->pid < 0) {
		r = -errno;
		close(p[0]);
		close(p[1]);
		return kura_fail_set(f, r, KURA_EXIT_SYSTEM, "cannot fork: %s", strerror(-r));
	}
	if (c->pid == 0) {
		close(p[0]);
		c->fd = p[1];
		c->sent = false;
		/* Never outlive kura: a watcher left behind would write sets for nobody. And the
		 * parent alone decides what a signal means (a ^C reaches the whole group): the
		 * child ends by its SIGTERM or SIGKILL. */
		prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		if (getppid() != parent)
			_exit(KURA_EXIT_SYSTEM); /* it died before the line above */
		sigemptyset(&held);
		sigaddset(&held, SIGINT);
		sigaddset(&held, SIGQUIT);
		sigaddset(&held, SIGHUP);
		sigaddset(&held, SIGUSR1);
		sigaddset(&held, SIGUSR2);
		sigprocmask(SIG_BLOCK, &held, NULL);
		r = kura_confine_apply(dir);
		if (r < 0)
			kura_fail_set(&res, r, KURA_EXIT_SYSTEM, "cannot confine kura: %s",
				strerror(-r));
		else
			r = fn(ctx, c, &res);
		if (r != 0 && res.exit == 0)
			res.exit = r > 0 ? r : KURA_EXIT_SYSTEM;
		fflush(NULL);
		kura_confine_send(c, &res);
		_exit(res.exit);
	}
	close(p[1]);
	c->fd = p[0];
	c->sent = false;
	return 0;
}

int kura_confine_why(int st, struct kura_fail *f)
{
	if (WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS)
		return kura_fail_set(f, -EPERM, KURA_EXIT_SYSTEM,
			"kura's confined part was killed by SIGSYS: it made a system call outside "
			"its seccomp allow-list (a bug in kura, or an attack through the broker's "
			"answers); nothing more is done");
	if (WIFSIGNALED(st))
		return kura_fail_set(f, -EINTR, KURA_EXIT_SYSTEM,
			"kura's confined part was killed by signal %d", WTERMSIG(st));
	return kura_fail_set(f, -EPROTO, KURA_EXIT_SYSTEM,
		"kura's confined part exited %d without a result", WEXITSTATUS(st));
}

int kura_confine_result(struct kura_confined *c, bool wait_exit, struct kura_fail *f)
{
	struct kura_fail res = { 0 };
	ssize_t n;
	int st = 0;

	do
		n = read(c->fd, &res, sizeof(res));
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(res)) {
		while (waitpid(c->pid, &st, 0) < 0 && errno == EINTR)
			;
		close(c->fd);
		c->fd = -1;
		c->pid = 0;
		kura_confine_why(st, f);
		return f->exit;
	}
	/* The child reads what the socket says and may be an attacker's by now: no control
	 * byte of its message reaches the terminal (its text was escaped when it was sane). */
	res.msg[sizeof(res.msg) - 1] = 0;
	for (unsigned char *p = (unsigned char *)res.msg; *p; p++)
		if (*p < 0x20 || *p == 0x7f || (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f))
			*p = '?';
	if (res.exit < 0 || res.exit > 255)
		res.exit = KURA_EXIT_SYSTEM;
	if (wait_exit) {
		while (waitpid(c->pid, &st, 0) < 0 && errno == EINTR)
			;
		close(c->fd);
		c->fd = -1;
		c->pid = 0;
	} else {
		fcntl(c->fd, F_SETFL, O_NONBLOCK);
	}
	if (res.exit == 0)
		return 0;
	*f = res;
	return f->exit;
}

/* Builds a role's seccomp filter with libseccomp: the base list every process gets, the
 * thread rules, the role's own; loads it, or exports it as BPF for the static client. No
 * plaintext. */
#include <errno.h>
#include <sched.h>
#include <seccomp.h>
#include <string.h>
#include <sys/mman.h>

#include "log.h"
#include "sandbox.h"

/*
 * What every process needs after start, whatever its role: glibc's allocator (brk, mmap and
 * mprotect, never with PROT_EXEC, so no new code can be mapped; munmap, mremap, madvise), time,
 * randomness, reading and writing the fds it already holds, sleeping, signals being returned
 * from and masked, and exiting. Nothing here opens a path, creates a socket or a process, or
 * changes an identity. clone3 fails with ENOSYS so glibc's pthread_create falls back to clone,
 * whose flags a filter can see (clone3 passes them in memory, where seccomp cannot look).
 */
#define NO_EXEC KURA_SB_IF(2, KURA_SB_MASKED, PROT_EXEC, 0)
static const struct kura_sandbox_rule base[] = {
	KURA_SB_ANY("exit_group"),
	KURA_SB_ANY("exit"),
	KURA_SB_ANY("rt_sigreturn"),
	KURA_SB_ANY("rt_sigprocmask"),
	KURA_SB_ANY("restart_syscall"),
	KURA_SB_ANY("futex"),
	KURA_SB_ANY("brk"),
	KURA_SB_WHEN("mmap", NO_EXEC),
	KURA_SB_WHEN("mprotect", NO_EXEC),
	KURA_SB_ANY("munmap"),
	KURA_SB_ANY("mremap"),
	KURA_SB_ANY("madvise"),
	KURA_SB_ANY("clock_gettime"),
	KURA_SB_ANY("clock_nanosleep"),
	KURA_SB_ANY("nanosleep"),
	KURA_SB_ANY("gettimeofday"),
	KURA_SB_ANY("getrandom"),
	KURA_SB_ANY("read"),
	KURA_SB_ANY("write"),
	KURA_SB_ANY("readv"),
	KURA_SB_ANY("writev"),
	KURA_SB_ANY("close"),
	KURA_SB_ANY("fstat"),
	KURA_SB_ANY("getpid"),
	KURA_SB_ANY("gettid"),
	KURA_SB_ANY("sched_yield"),
	KURA_SB_FAIL("clone3", ENOSYS),
};

/* With threads: clone only when it makes a thread (fork is clone without CLONE_THREAD); glibc's
 * first pthread_create installs its internal handlers, on signals 32 and 33 (SIGCANCEL, SIGSETXID)
 * only. */
static const struct kura_sandbox_rule thread_rules[] = {
	KURA_SB_WHEN("rt_sigaction", KURA_SB_IF(0, KURA_SB_EQ, 32, 0)),
	KURA_SB_WHEN("rt_sigaction", KURA_SB_IF(0, KURA_SB_EQ, 33, 0)),
	KURA_SB_WHEN("clone", KURA_SB_IF(0, KURA_SB_MASKED, CLONE_THREAD, CLONE_THREAD)),
	KURA_SB_ANY("set_robust_list"),
	KURA_SB_ANY("rseq"),
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static int add_rule(scmp_filter_ctx ctx, const struct kura_sandbox_rule *rule)
{
	static const enum scmp_compare ops[] = { [KURA_SB_EQ] = SCMP_CMP_EQ,
		[KURA_SB_NE] = SCMP_CMP_NE,
		[KURA_SB_LT] = SCMP_CMP_LT,
		[KURA_SB_LE] = SCMP_CMP_LE,
		[KURA_SB_MASKED] = SCMP_CMP_MASKED_EQ };
	struct scmp_arg_cmp cmp[3];
	uint32_t action;
	int nr;

	nr = seccomp_syscall_resolve_name(rule->syscall);
	if (nr == __NR_SCMP_ERROR || rule->n_args > 3)
		return -EINVAL;
	for (unsigned i = 0; i < rule->n_args; i++) {
		const struct kura_sandbox_arg *a = &rule->args[i];

		if (a->op < KURA_SB_EQ || a->op > KURA_SB_MASKED || a->arg > 5)
			return -EINVAL;
		cmp[i] = (struct scmp_arg_cmp){ a->arg, ops[a->op], a->a, a->b };
	}
	if (rule->action == KURA_SB_ALLOW)
		action = SCMP_ACT_ALLOW;
	else if ((rule->action & ~0xffff) == 0x10000)
		action = SCMP_ACT_ERRNO((uint16_t)rule->action);
	else
		return -EINVAL;
	return seccomp_rule_add_array(ctx, action, nr, rule->n_args, rule->n_args ? cmp : NULL);
}

static int add_rules(scmp_filter_ctx ctx, const struct kura_sandbox_rule *rules, size_t n,
	const char **step)
{
	int r;

	for (size_t i = 0; i < n; i++) {
		*step = rules[i].syscall;
		r = add_rule(ctx, &rules[i]);
		if (r < 0)
			return r;
	}
	return 0;
}

/* The filter for sb, or NULL with *r set and *step naming what failed. */
static scmp_filter_ctx build(const struct kura_sandbox *sb, const char **step, int *r)
{
	scmp_filter_ctx ctx;

	*step = "seccomp_init";
	ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
	if (!ctx) {
		*r = -ENOMEM;
		return NULL;
	}
	/* Threads that exist already get the filter too. */
	*r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
	if (*r == 0)
		*r = add_rules(ctx, base, N(base), step);
	if (*r == 0 && sb->threads)
		*r = add_rules(ctx, thread_rules, N(thread_rules), step);
	if (*r == 0)
		*r = add_rules(ctx, sb->rules, sb->n_rules, step);
	if (*r < 0) {
		seccomp_release(ctx);
		return NULL;
	}
	return ctx;
}

int kura_sandbox_apply(const struct kura_sandbox *sb)
{
	const char *step = "";
	scmp_filter_ctx ctx;
	int r;

	/* Built before anything is dropped, so a bad rule leaves the process as it was. */
	ctx = build(sb, &step, &r);
	if (ctx) {
		r = kura_sandbox_prepare(sb);
		if (r < 0) {
			seccomp_release(ctx);
			return r; /* logged */
		}
		step = "seccomp_load";
		r = seccomp_load(ctx);
		seccomp_release(ctx);
	}
	if (r < 0)
		kura_log(LOG_ERR, "%s: cannot lock the process down: %s: %s", sb->role, step,
			strerror(-r));
	return r;
}

int kura_sandbox_export_bpf(const struct kura_sandbox *sb, int fd)
{
	const char *step = "";
	scmp_filter_ctx ctx;
	int r;

	ctx = build(sb, &step, &r);
	if (!ctx) {
		kura_log(LOG_ERR, "%s: cannot build the filter: %s: %s", sb->role, step,
			strerror(-r));
		return r;
	}
	r = seccomp_export_bpf(ctx, fd);
	seccomp_release(ctx);
	return r;
}

size_t kura_sandbox_count(const struct kura_sandbox *sb)
{
	const struct kura_sandbox_rule *all[3] = { base, thread_rules, sb->rules };
	size_t n[3] = { N(base), sb->threads ? N(thread_rules) : 0, sb->n_rules };
	const char *seen[256];
	size_t count = 0;

	for (size_t l = 0; l < 3; l++)
		for (size_t i = 0; i < n[l]; i++) {
			size_t k = 0;

			if (all[l][i].action != KURA_SB_ALLOW)
				continue;
			while (k < count && strcmp(seen[k], all[l][i].syscall) != 0)
				k++;
			if (k == count && count < N(seen))
				seen[count++] = all[l][i].syscall;
		}
	return count;
}

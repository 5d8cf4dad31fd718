/* Locks the calling process down after start: user, capabilities, no_new_privs, Landlock, then a
 * seccomp allow-list. No plaintext. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A rule's action: allow the call, or fail it with errno e (the process lives on). */
#define KURA_SB_ALLOW 0
#define KURA_SB_ERRNO(e) (0x10000 | ((e)&0xffff))

enum kura_sb_op {
	KURA_SB_EQ = 1, /* arg == a */
	KURA_SB_NE,     /* arg != a */
	KURA_SB_LT,     /* arg < a */
	KURA_SB_LE,     /* arg <= a */
	KURA_SB_MASKED, /* (arg & a) == b */
};

struct kura_sandbox_arg {
	unsigned arg; /* 0..5 */
	enum kura_sb_op op;
	uint64_t a, b;
};

/* One seccomp rule; several rules for one syscall are alternatives (arg0 in a set). A rule
 * with no args matches every call of that syscall. */
struct kura_sandbox_rule {
	const char *syscall; /* by name, as seccomp_syscall_resolve_name knows it */
	int action;          /* KURA_SB_ALLOW or KURA_SB_ERRNO(e) */
	unsigned n_args;
	struct kura_sandbox_arg args[3];
};

/* Rules without warnings about missing fields: any call, an errno, or conditions on arguments
 * (KURA_SB_IF(0, KURA_SB_EQ, AF_UNIX, 0), up to three). */
#define KURA_SB_ANY(name)                                                                          \
	{                                                                                          \
		.syscall = (name), .action = KURA_SB_ALLOW                                         \
	}
#define KURA_SB_FAIL(name, e)                                                                      \
	{                                                                                          \
		.syscall = (name), .action = KURA_SB_ERRNO(e)                                      \
	}
#define KURA_SB_IF(n, o, x, y)                                                                     \
	{                                                                                          \
		.arg = (n), .op = (o), .a = (x), .b = (y)                                          \
	}
#define KURA_SB_WHEN(name, ...)                                                                    \
	{                                                                                          \
		.syscall = (name), .action = KURA_SB_ALLOW,                                        \
		.n_args = sizeof((struct kura_sandbox_arg[]){ __VA_ARGS__ }) /                     \
			sizeof(struct kura_sandbox_arg),                                           \
		.args = {                                                                          \
			__VA_ARGS__                                                                \
		}                                                                                  \
	}

/* Landlock rights beneath a path (a file gets only the rights that apply to files). */
#define KURA_LL_READ (1u << 0)     /* read files, list directories */
#define KURA_LL_WRITE (1u << 1)    /* write, truncate, create, remove, rename files and dirs */
#define KURA_LL_EXEC (1u << 2)     /* execute files */
#define KURA_LL_OPTIONAL (1u << 8) /* a path that is not there gets no rule, and no error */

struct kura_sandbox_path {
	const char *path;
	unsigned access; /* KURA_LL_* */
};

/* keep_caps: leave the capability sets as they are (only the client uses it). */
#define KURA_SB_CAPS_UNCHANGED UINT64_MAX

struct kura_sandbox {
	const char *role; /* for log lines: "keeper", "front", "kura" */
	/* The allow-list, on top of the base list every process gets (sandbox.c). */
	const struct kura_sandbox_rule *rules;
	size_t n_rules;
	bool threads; /* clone only with CLONE_THREAD (pthread_create), set_robust_list, rseq */
	/* Capabilities kept (bit 1 << CAP_x), at most those the process has; every other one is
	 * dropped from the bounding, permitted, effective, inheritable and ambient sets. */
	uint64_t keep_caps;
	/* Landlock: only these paths, beneath each only its rights. With n_paths == 0, no
	 * filesystem restriction unless no_fs, which allows no filesystem access at all. */
	const struct kura_sandbox_path *paths;
	size_t n_paths;
	bool no_fs;
	/* Become uid/gid (and no supplementary groups) first, keeping keep_caps across. */
	bool change_user;
	uid_t uid;
	gid_t gid;
};

/*
 * Applies sb to the calling process, in this order: the filter built (a bad rule fails before
 * anything changed), the bounding set and ambient caps dropped (while CAP_SETPCAP is still
 * there), the user changed, the other capability sets cut to keep_caps, PR_SET_NO_NEW_PRIVS,
 * Landlock, and the seccomp filter loaded last (default: kill the process, on every thread).
 * Fails closed: returns 0 or -errno with one log line (kura_log) naming the step; the process
 * is then partly locked down and must exit. A kernel without Landlock is a warning, logged once.
 * Landlock covers only the calling thread and those it starts later: apply before threads start.
 * (seccomp.c, with libseccomp.)
 */
int kura_sandbox_apply(const struct kura_sandbox *sb);

/* Every step of kura_sandbox_apply but the filter (sandbox.c, no libseccomp): 0 or -errno. */
int kura_sandbox_prepare(const struct kura_sandbox *sb);

/* Loads a filter exported by kura_sandbox_export_bpf (struct sock_filter insns) on every
 * thread: 0 or -errno, logged. For the static client, which carries no libseccomp. */
int kura_sandbox_load_bpf(const struct kura_sandbox *sb, const void *insns, size_t n_insns);

/* Writes sb's filter (base list, threads, rules) to fd as raw BPF: 0 or -errno. At build time. */
int kura_sandbox_export_bpf(const struct kura_sandbox *sb, int fd);

/* The number of syscalls the base list plus sb's rules allow (for README and the benchmarks). */
size_t kura_sandbox_count(const struct kura_sandbox *sb);

/* The client's exit codes and the one error it reports: library code fills a struct kura_fail,
 * main prints it once. No plaintext: messages name secrets and paths, never values. */
#pragma once

#include <stdarg.h>

enum {
	KURA_EXIT_OK = 0,
	KURA_EXIT_USAGE = 2,
	KURA_EXIT_SYSTEM = 3,      /* out of memory, a failed syscall outside the cases below */
	KURA_EXIT_UNREACHABLE = 10, /* no broker socket, connection refused, timed out */
	KURA_EXIT_DENIED = 1, /* 403, or no secret granted (1: refused, as in every kura binary) */
	KURA_EXIT_UNAVAILABLE = 12, /* 503 (runtime or store down) or 429 (rate limited) */
	KURA_EXIT_NOT_TMPFS = 13,   /* the target directory is not a tmpfs or ramfs */
	KURA_EXIT_FULL = 14,        /* ENOSPC or EDQUOT while writing */
	KURA_EXIT_REFUSED = 15,     /* a symlink or foreign file in the way: nothing written */
	KURA_EXIT_PROTOCOL = 16,    /* a malformed or unexpected answer (400, 404, bad JSON), or one
				     * past kura's limits (KURA_SET_MAX names, a body too big) */
	KURA_EXIT_EXEC = 127,       /* CMD could not be executed */
};

struct kura_fail {
	int exit; /* one of KURA_EXIT_*, 0 while nothing failed */
	char msg[1024]; /* escaped (escape.h): safe to print as it is */
};

/* Records the first failure only (later ones are consequences) and returns r, so callers can
 * write `return fail(f, -EIO, KURA_EXIT_SYSTEM, "...")`. Messages quote the broker, paths and
 * argv, so the formatted text is escaped once here, for every place that prints it. */
__attribute__((format(printf, 4, 5))) int kura_fail_set(struct kura_fail *f, int r, int exit,
	const char *fmt, ...);

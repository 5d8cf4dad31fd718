/* What a failure means, for every kura program: from an action's -errno, the exit status, the
 * HTTP status kurad answers and the reason code an audit record carries. One table
 * (outcome.c), so that kuractl offline, kuractl through kurad, kurad and the audit log agree.
 * libc only (the client shares the exit statuses). */
#pragma once

/* Exit statuses: 0 to 4 mean the same in every kura program. */
enum kura_exit {
	KURA_EXIT_OK = 0,
	KURA_EXIT_REFUSED = 1,   /* refused or not found: no grant, a wrong key, a name in use */
	KURA_EXIT_USAGE = 2,     /* a bad command line or bad input */
	KURA_EXIT_SYSTEM = 3,    /* I/O, a full disk, memory, a peer that does not answer */
	KURA_EXIT_INTEGRITY = 4, /* the store, a ciphertext or the audit log failed verification */
	/* kura, the entrypoint in a container, tells its caller more: why the app did not start. */
	KURA_EXIT_UNREACHABLE = 10,   /* no broker socket, connection refused, timed out */
	KURA_EXIT_UNAVAILABLE = 12,   /* the broker answered 503 (runtime or store down) or 429 */
	KURA_EXIT_NOT_TMPFS = 13,     /* the target directory is not a tmpfs or ramfs */
	KURA_EXIT_FULL = 14,          /* ENOSPC or EDQUOT while writing */
	KURA_EXIT_WRITE_REFUSED = 15, /* a symlink or a foreign file in the way: nothing written */
	KURA_EXIT_PROTOCOL = 16,      /* a malformed or unexpected answer, or one past kura's limits */
	KURA_EXIT_CANNOT_EXEC = 126,  /* CMD exists but cannot be executed */
	KURA_EXIT_NOT_FOUND = 127,    /* CMD not found */
};

/* The exit status for r (0 or -errno): 0, 1, 2, 3 or 4. */
int kura_outcome_exit(int r);

/* The HTTP status kurad answers an operation that failed with r (200 for 0). */
unsigned kura_outcome_http(int r);

/* The audit record's reason code for r: not_found, exists, bad_request, key_rejected, refused,
 * integrity, conflict, too_large, no_space, timeout, in_use or io_error; NULL for 0. */
const char *kura_outcome_reason(int r);

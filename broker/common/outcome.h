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
	KURA_EXIT_PROTOCOL = 16, /* a malformed or unexpected answer, or one past kura's limits */
	KURA_EXIT_CANNOT_EXEC = 126, /* CMD exists but cannot be executed */
	KURA_EXIT_NOT_FOUND = 127,   /* CMD not found */
};

/* The table as every program's --help prints it (README, "Exit status", says the same). */
#define KURA_EXIT_HELP                                                                             \
	"Exit status (one table for every kura program):\n"                                        \
	"  0    ok (kura run: the app's own status, 128+N if signal N ended it)\n"                 \
	"  1    refused or not found: no grant, a wrong master key, a name in use, a socket or\n"  \
	"       directory others could replace\n"                                                  \
	"  2    usage error or invalid input\n"                                                    \
	"  3    system error: I/O, a full disk, memory, a peer that does not answer\n"             \
	"  4    integrity failure: a corrupt store, an altered ciphertext, an audit log that\n"    \
	"       does not verify\n"                                                                 \
	"  kura only, telling its caller why the app did not start:\n"                             \
	"  10   broker unreachable (no socket, connection refused, timed out)\n"                   \
	"  12   broker unavailable: its runtime or store is down (503), or rate limited (429)\n"   \
	"  13   the target directory is not a tmpfs or ramfs (or does not exist)\n"                \
	"  14   the target tmpfs is full\n"                                                        \
	"  15   write refused: a symlink or an entry kura does not own is in the way, or others\n" \
	"       can write the directory; nothing was written\n"                                    \
	"  16   a malformed or unexpected answer, or one past kura's limits; nothing written\n"    \
	"  126  CMD cannot be executed;  127  CMD not found\n"

/* The exit status for r (0 or -errno): 0, 1, 2, 3 or 4. */
int kura_outcome_exit(int r);

/* The HTTP status kurad answers an operation that failed with r (200 for 0). */
unsigned kura_outcome_http(int r);

/* The audit record's reason code for r: not_found, exists, bad_request, key_rejected, refused,
 * integrity, conflict, too_large, no_space, timeout, in_use or io_error; NULL for 0. */
const char *kura_outcome_reason(int r);

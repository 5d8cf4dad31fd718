/* The one error the client reports: library code fills a struct kura_fail with an exit status
 * (outcome.h, shared with every kura program), main prints it once. No plaintext: messages name
 * secrets and paths, never values. */
#pragma once

#include <stdarg.h>

#include "outcome.h"

struct kura_fail {
	int exit;       /* one of KURA_EXIT_*, 0 while nothing failed */
	char msg[1024]; /* escaped (escape.h): safe to print as it is */
};

/* Records the first failure only (later ones are consequences) and returns r, so callers can
 * write `return fail(f, -EIO, KURA_EXIT_SYSTEM, "...")`. Messages quote the broker, paths and
 * argv, so the formatted text is escaped once here, for every place that prints it. */
__attribute__((format(printf, 4, 5))) int kura_fail_set(struct kura_fail *f, int r, int exit,
	const char *fmt, ...);

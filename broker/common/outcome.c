/* The one table from -errno to exit status, HTTP status and audit reason. No plaintext. */
#include <errno.h>
#include <stddef.h>

#include "outcome.h"

static const struct {
	int err;
	int exit;
	unsigned http;
	const char *reason;
} table[] = {
	{ ENOENT, KURA_EXIT_REFUSED, 404, "not_found" },
	{ EEXIST, KURA_EXIT_REFUSED, 409, "exists" },
	{ ENOTDIR, KURA_EXIT_REFUSED, 409, "exists" }, /* a name in the way of a folder */
	{ EKEYREJECTED, KURA_EXIT_REFUSED, 403, "key_rejected" },
	{ ENOKEY, KURA_EXIT_REFUSED, 403, "key_rejected" },
	{ EPERM, KURA_EXIT_REFUSED, 403, "refused" },
	{ ELOOP, KURA_EXIT_REFUSED, 403, "refused" },
	{ EMEDIUMTYPE, KURA_EXIT_REFUSED, 403, "refused" },
	{ EMSGSIZE, KURA_EXIT_REFUSED, 403, "refused" },
	{ EFBIG, KURA_EXIT_REFUSED, 413, "too_large" },
	{ EADDRINUSE, KURA_EXIT_REFUSED, 409, "in_use" },
	{ EINVAL, KURA_EXIT_USAGE, 400, "bad_request" },
	{ ENODATA, KURA_EXIT_USAGE, 400, "bad_request" },
	{ EBADMSG, KURA_EXIT_INTEGRITY, 500, "integrity" },
	{ EUCLEAN, KURA_EXIT_INTEGRITY, 500, "integrity" },
	{ EPROTO, KURA_EXIT_INTEGRITY, 500, "integrity" },
	{ ESTALE, KURA_EXIT_SYSTEM, 409, "conflict" },
	{ EBUSY, KURA_EXIT_SYSTEM, 409, "conflict" },
	{ ENOSPC, KURA_EXIT_SYSTEM, 507, "no_space" },
	{ ETIMEDOUT, KURA_EXIT_SYSTEM, 503, "timeout" },
};

static int find(int r)
{
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (table[i].err == -r)
			return (int)i;
	return -1;
}

int kura_outcome_exit(int r)
{
	int i = find(r);

	return r >= 0 ? KURA_EXIT_OK : i >= 0 ? table[i].exit : KURA_EXIT_SYSTEM;
}

unsigned kura_outcome_http(int r)
{
	int i = find(r);

	return r >= 0 ? 200 : i >= 0 ? table[i].http : 500;
}

const char *kura_outcome_reason(int r)
{
	int i = find(r);

	return r >= 0 ? NULL : i >= 0 ? table[i].reason : "io_error";
}

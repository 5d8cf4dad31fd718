/* Recording the client's first failure for main to print. No plaintext. */
#include <stdio.h>

#include "fail.h"

int kura_fail_set(struct kura_fail *f, int r, int exit, const char *fmt, ...)
{
	va_list ap;

	if (!f || f->exit)
		return r;
	f->exit = exit;
	va_start(ap, fmt);
	vsnprintf(f->msg, sizeof(f->msg), fmt, ap);
	va_end(ap);
	return r;
}

/* Recording the client's first failure for main to print, escaped for the terminal. No
 * plaintext. */
#include <stdio.h>
#include <string.h>

#include "escape.h"
#include "fail.h"

int kura_fail_set(struct kura_fail *f, int r, int exit, const char *fmt, ...)
{
	char raw[512];
	va_list ap;

	if (!f || f->exit)
		return r;
	f->exit = exit;
	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	kura_escape(raw, strlen(raw), KURA_ESCAPE_TEXT, f->msg, sizeof(f->msg));
	return r;
}

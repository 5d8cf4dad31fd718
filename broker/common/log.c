/* kurad's log lines, to stderr or syslog. No plaintext: callers never pass a value. */
#include <stdarg.h>
#include <stdio.h>

#include "log.h"

static bool use_syslog;
static const char *ident = "kurad";

void kura_log_to_syslog(bool on)
{
	use_syslog = on;
	if (on)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void kura_log_ident(const char *name)
{
	ident = name;
	if (use_syslog) {
		closelog();
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	}
}

void kura_log(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (use_syslog) {
		vsyslog(level, fmt, ap);
	} else {
		static const char *names[] = { [LOG_ERR] = "error",
			[LOG_WARNING] = "warning",
			[LOG_NOTICE] = "notice",
			[LOG_INFO] = "info" };
		const char *n = level >= 0 && level <= LOG_INFO && names[level] ? names[level] :
										  "notice";

		fprintf(stderr, "%s: %s: ", ident, n);
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
	}
	va_end(ap);
}

/* kurad's log lines, to stderr or syslog. No plaintext: callers never pass a value. */
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

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

		char line[2048];
		int k = snprintf(line, sizeof(line), "%s: %s: ", ident, n);

		/* One write per line: kurad's processes share a stderr, and lines of two must not
		 * interleave. */
		if (k > 0 && (size_t)k < sizeof(line) - 1) {
			int m = vsnprintf(line + k, sizeof(line) - 1 - (size_t)k, fmt, ap);

			k = m < 0                                   ? k :
				(size_t)(k + m) >= sizeof(line) - 1 ? (int)sizeof(line) - 2 :
								      k + m;
			line[k++] = '\n';
			fflush(stderr);
			if (write(STDERR_FILENO, line, (size_t)k) < 0)
				(void)0; /* nowhere to say so */
		}
	}
	va_end(ap);
}

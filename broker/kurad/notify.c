/* sd_notify(3) without libsystemd (notify.h): an AF_UNIX datagram socket, its address from
 * $NOTIFY_SOCKET (a path, or '@' for the abstract namespace). No plaintext: messages carry
 * states and counts, never a value. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "notify.h"

static int notify_fd = -1;
static struct sockaddr_un notify_addr;
static socklen_t notify_len;
static uint64_t watchdog_usec;
static bool warned;

/* A decimal in [1, max], or 0. */
static uint64_t parse_u64(const char *s, uint64_t max)
{
	char *end;
	unsigned long long v;

	if (!s || *s < '0' || *s > '9')
		return 0;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v == 0 || v > max)
		return 0;
	return v;
}

static void read_watchdog(void)
{
	const char *pid = getenv("WATCHDOG_PID");

	/* Another process's watchdog (an exec'ing wrapper's) is not ours to feed. */
	watchdog_usec = parse_u64(getenv("WATCHDOG_USEC"), UINT64_MAX / 2);
	if (pid && parse_u64(pid, INT32_MAX) != (uint64_t)getpid())
		watchdog_usec = 0;
}

void kura_notify_init(void)
{
	const char *s = getenv("NOTIFY_SOCKET");
	size_t n = s ? strlen(s) : 0;

	read_watchdog();
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	if (!s)
		return;
	if ((s[0] != '/' && s[0] != '@') || n < 2 || n >= sizeof(notify_addr.sun_path)) {
		kura_log(LOG_WARNING,
			"NOTIFY_SOCKET is neither an absolute path nor an abstract '@' name (or is "
			"too long): the service manager is not told kurad's state");
		watchdog_usec = 0;
		return;
	}
	notify_addr.sun_family = AF_UNIX;
	memcpy(notify_addr.sun_path, s, n);
	if (s[0] == '@')
		notify_addr.sun_path[0] = '\0'; /* abstract: the length bounds the name */
	notify_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (s[0] == '/'));
	notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (notify_fd < 0) {
		kura_log(LOG_WARNING,
			"NOTIFY_SOCKET: %s: the service manager is not told kurad's "
			"state",
			strerror(errno));
		watchdog_usec = 0;
	}
}

bool kura_notify_enabled(void)
{
	return notify_fd >= 0;
}

uint64_t kura_notify_watchdog_usec(void)
{
	return notify_fd >= 0 ? watchdog_usec : 0;
}

void kura_notify(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	int n;

	if (notify_fd < 0)
		return;
	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(msg))
		n = (int)sizeof(msg) - 1;
	if (sendto(notify_fd, msg, (size_t)n, MSG_NOSIGNAL, (struct sockaddr *)&notify_addr,
		    notify_len) < 0 &&
		!warned) {
		/* The manager's socket gone or full: kurad serves on regardless. */
		kura_log(LOG_WARNING, "cannot notify the service manager: %s", strerror(errno));
		warned = true;
	}
}

uint64_t kura_notify_monotonic_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

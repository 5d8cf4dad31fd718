/* Clocks and RFC 3339 formatting. No plaintext. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#include "clock.h"

int64_t kura_clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

double kura_clock_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int64_t kura_wall_s(void)
{
	return (int64_t)time(NULL);
}

const char *kura_rfc3339(int64_t t, char buf[static KURA_RFC3339_LEN])
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm) || !strftime(buf, KURA_RFC3339_LEN, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, KURA_RFC3339_LEN, "%" PRId64, t);
	return buf;
}

const char *kura_rfc3339_us(const struct timespec *ts, char buf[static KURA_RFC3339_LEN])
{
	struct tm tm;
	size_t n;

	if (!gmtime_r(&ts->tv_sec, &tm) ||
		!(n = strftime(buf, KURA_RFC3339_LEN, "%Y-%m-%dT%H:%M:%S", &tm))) {
		snprintf(buf, KURA_RFC3339_LEN, "%lld", (long long)ts->tv_sec);
		return buf;
	}
	snprintf(buf + n, KURA_RFC3339_LEN - n, ".%06ldZ", ts->tv_nsec / 1000);
	return buf;
}

const char *kura_rfc3339_now_us(char buf[static KURA_RFC3339_LEN])
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return kura_rfc3339_us(&ts, buf);
}

struct timespec kura_clock_after_ms(int64_t ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

struct timespec kura_clock_at_ms(int64_t ms)
{
	return (struct timespec){ .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
}

void kura_sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

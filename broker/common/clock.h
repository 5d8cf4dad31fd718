/* Clocks and RFC 3339 times, one set for every part of kura (libc only; the client too). */
#pragma once

#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC: for deadlines and intervals. */
int64_t kura_clock_ms(void);
double kura_clock_s(void);

/* CLOCK_REALTIME seconds: for times written down (records, replies). */
int64_t kura_wall_s(void);

#define KURA_RFC3339_LEN 32

/* "2026-12-01T20:53:05Z" for t seconds after the epoch (the number itself if it has no date). */
const char *kura_rfc3339(int64_t t, char buf[static KURA_RFC3339_LEN]);

/* "2026-12-01T20:53:05.123456Z", with microseconds. */
const char *kura_rfc3339_us(const struct timespec *ts, char buf[static KURA_RFC3339_LEN]);

/* The same for now (CLOCK_REALTIME). */
const char *kura_rfc3339_now_us(char buf[static KURA_RFC3339_LEN]);

/* CLOCK_MONOTONIC times for pthread_cond_timedwait on a condition made with that clock: ms
 * milliseconds from now, or the absolute time ms (as kura_clock_ms() counts). */
struct timespec kura_clock_after_ms(int64_t ms);
struct timespec kura_clock_at_ms(int64_t ms);

/* Sleep ms milliseconds, through interruptions. */
void kura_sleep_ms(unsigned ms);

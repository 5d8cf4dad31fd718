/* Waiting on a descriptor with a deadline. libc only (the client too). */
#pragma once

#include <stdint.h>

/* Wait for events (POLLIN, POLLOUT) on fd until deadline (kura_clock_ms()): 0 when ready,
 * -ETIMEDOUT, or -errno. */
int kura_wait_fd(int fd, short events, int64_t deadline_ms);

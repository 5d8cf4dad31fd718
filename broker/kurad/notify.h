/* The service manager's notification protocol (sd_notify(3)), spoken directly: one datagram per
 * message to $NOTIFY_SOCKET, no libsystemd. The supervisor alone speaks it (the unit says
 * NotifyAccess=main). Internal to kurad. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID, then removes them from the environment
 * (no child of ours may speak for kurad). Makes the datagram socket now, before the supervisor
 * locks itself down. A missing or unusable NOTIFY_SOCKET is no error: kurad runs on without
 * notifying, with a warning for one that is malformed. */
void kura_notify_init(void);

/* Whether a service manager listens. */
bool kura_notify_enabled(void);

/* The watchdog's period in microseconds, 0 when WatchdogSec is not set (or set for another
 * process). */
uint64_t kura_notify_watchdog_usec(void);

/* Send one message ("READY=1\nSTATUS=..."): never blocks, never fails kurad (a manager that
 * went away is warned about once). Nothing is sent when no manager listens. */
__attribute__((format(printf, 1, 2))) void kura_notify(const char *fmt, ...);

/* CLOCK_MONOTONIC in microseconds, for RELOADING=1's MONOTONIC_USEC. */
uint64_t kura_notify_monotonic_usec(void);

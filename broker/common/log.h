/* kurad's log: one line per event, to stderr or syslog. Never a value. */
#pragma once

#include <stdbool.h>
#include <syslog.h>

/* Log one line (never a value). level: LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO. */
__attribute__((format(printf, 2, 3))) void kura_log(int level, const char *fmt, ...);

/* From now on to syslog (as "kurad", LOG_DAEMON), or back to stderr. */
void kura_log_to_syslog(bool on);

/* The name lines carry from now on ("kurad", "kurad-keeper", ...): each process says which. */
void kura_log_ident(const char *name);

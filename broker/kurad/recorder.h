/* kurad's audit recorder: the log opened at start, one record per event, failing closed when
 * it cannot be written, a timer that evolves the key of an idle log, and the sinks that ship
 * records off the host. No plaintext: records carry a value's keyed fingerprint at most. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "audit.h"
#include "audit-event.h"

struct kura_recorder_config {
	const char *state_dir;
	const struct kura_audit_opts *audit; /* rotation, key epochs, fsync, lock wait */
	const char *syslog;    /* ship records to syslog: unix:PATH or tcp:HOST:PORT (or NULL) */
	const char *http;      /* ... and to an HTTP collector (URL, or NULL) */
	unsigned checkpoint_s; /* between checkpoints sent to the sinks */
	unsigned queue_max;    /* records a sink holds before dropping */
	pid_t self_pid;        /* kurad's records of its own carry it: the supervisor's, the pid
				* the service manager knows (0: this process's) */
	/* Retention (kura_audit_archive): every ten seconds, the whole files whose records are all
	 * older than archive_days, or all but the newest once the log is larger than
	 * archive_bytes, move to a new directory in archive_dir, and the move is recorded. */
	const char *archive_dir;
	unsigned archive_days;
	uint64_t archive_bytes;
	struct kura_net_client *net; /* the sinks run in the net process (net.h), which was
				      * given syslog and http: those two are then unused here;
				      * NULL: they run in this one */
};

struct kura_net_client;
struct kura_recorder;

/* Open the log (STATE/audit), start the sinks and the key timer; logs why it cannot. */
int kura_recorder_start(const struct kura_recorder_config *c, struct kura_recorder **ret);
/* Join the timer, ship the last records, close the log. NULL-safe. */
void kura_recorder_stop(struct kura_recorder *rec);

/*
 * Append one record. On failure (disk full, I/O error, the file replaced, a writer stuck for
 * longer than audit.lock_ms) it logs once per spell of failures and returns -errno: the caller
 * then fails closed (503), and never lets a secret out unrecorded.
 */
int kura_recorder_append(struct kura_recorder *rec, const struct kura_audit_event *e);
/* Whether the last append worked (else one record to see whether it works again): operations
 * check it before they change anything. */
bool kura_recorder_healthy(struct kura_recorder *rec);
/* The log's and the sinks' health, for status and metrics. Sinks: "syslog" and "http" when
 * configured, each with what the sink itself reported (drops, failures, whether its last
 * delivery worked and why the last one failed: from the net process, failures are spells of
 * them, one each), and with a net process "net", the keeper's queue to it. */
#define KURA_RECORDER_SINKS 3
struct kura_recorder_sink {
	const char *name; /* NULL: none in this slot */
	bool up;
	bool queue_known; /* a sink in the net process: its queue is not seen from here */
	uint64_t queued, dropped, failures;
	char last_error[128];
};
struct kura_recorder_stats {
	bool healthy;      /* the last append worked */
	uint64_t written;  /* records appended by this process since it started */
	uint64_t failed;   /* appends that failed (each refused what it would record) */
	uint64_t head_seq; /* the log's last record */
	struct kura_recorder_sink sinks[KURA_RECORDER_SINKS];
};
void kura_recorder_stats(struct kura_recorder *rec, struct kura_recorder_stats *ret);

/* A record of kurad's own (start, stop, reload). */
void kura_recorder_self(struct kura_recorder *rec, const char *event, const char *detail);

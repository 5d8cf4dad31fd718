/* kurad's options: defaults, one option from the command line or a config file, and whole
 * config files of `option = value` lines ('#' starts a comment). No plaintext. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "audit.h"
#include "vault.h"

struct kura_runtime_config {
	char *name;
	char *endpoint;
};

struct kura_daemon_config {
	const char *state_dir;
	const char *run_dir;
	struct kura_master_source master;
	struct kura_runtime_config *runtimes;
	size_t n_runtimes;
	unsigned lookup_timeout_ms;    /* runtime lookups, per request (default 2000) */
	unsigned connection_timeout_s; /* idle or slow connections are closed (default 10) */
	unsigned max_connections;      /* on workload.sock (default 256); room is made past it */
	unsigned max_per_peer;         /* connections of one principal (default 16) */
	unsigned max_watches;          /* long polls in all (default: half of max_connections) */
	unsigned header_timeout_s; /* a request's headers must be complete by then (default 5) */
	double rate_per_s;         /* requests per second per peer (default 100) */
	double rate_burst;         /* (default 200) */
	unsigned watch_max_s;      /* the longest a long poll waits (default 300) */
	unsigned loop_threads;     /* event loops serving workload.sock (default: one per core) */
	bool no_prefetch;          /* do not look containers up when they start */
	struct kura_audit_opts audit;  /* the audit log: rotation, key epochs, fsync, lock wait */
	const char *audit_syslog;      /* ship records to syslog: unix:PATH or tcp:HOST:PORT */
	const char *audit_http;        /* ... and to an HTTP collector (URL) */
	unsigned audit_checkpoint_s;   /* between checkpoints sent to the sinks (default 10) */
	unsigned audit_queue_max;      /* records a sink holds before dropping (default 10000) */
	const char *audit_archive_dir; /* whole old audit files move there (recorder.h), */
	unsigned audit_archive_days;   /* ... once all their records are this old, */
	uint64_t audit_archive_bytes;  /* ... or once the log is larger than this */
	const char *front_user;        /* whom the front runs as (NULL: "kura", else nobody) */
	int host_pid;                  /* whose namespaces are the host's (0: PID 1; peer.h) */
	const char *config_file;       /* the --config file, which every process may read again */
	bool no_sandbox;               /* debugging only, and from the command line only */
};

#define KURA_DAEMON_OPTIONS_MAX (1u << 20) /* the largest config file read */

struct kura_daemon_options {
	struct kura_daemon_config cfg;
	const char *config_file;
	bool syslog;
	/* The strings cfg points to that we allocated. */
	char *state_dir;
	char *run_dir;
	char *master_path;
	char *audit_syslog;
	char *audit_http;
	char *audit_archive_dir;
	char *front_user;
};

/* The defaults (kurad --help). */
void kura_daemon_options_init(struct kura_daemon_options *o);
void kura_daemon_options_done(struct kura_daemon_options *o);

/* One option by its name without "--": false if the name or the value is not valid. On a
 * reload (SIGHUP) only what can change while running is taken; the rest is accepted, unused. */
bool kura_daemon_option_set(struct kura_daemon_options *o, const char *key, const char *value,
	bool reload);

/* `option = value` lines of text (len bytes, no NUL needed): -EINVAL with the first bad line's
 * number in *ret_line (a line over 4095 bytes, a NUL, no '=', an unknown option or value). */
int kura_daemon_options_parse(struct kura_daemon_options *o, const char *text, size_t len,
	bool reload, unsigned *ret_line);

/* The same for a file; logs why it cannot (the file and line). */
int kura_daemon_options_read(struct kura_daemon_options *o, const char *path, bool reload);

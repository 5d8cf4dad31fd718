/* kurad's state shared by its threads: the vault behind one lock, the identity resolver, the
 * store revision that long polls wait on, and the request rate limits. Internal to kurad. */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <microhttpd.h>

#include "audit.h"
#include "audit-event.h"
#include "grant.h"
#include "identity.h"
#include "vault.h"

#define KURA_RATE_BUCKETS 256
#define KURA_MAX_WATCHES_PER_PEER 4
#define KURA_LOOKUP_WORKERS 4 /* threads that ask runtimes for containers not cached */

struct kura_rate_bucket {
	uint64_t key;
	double tokens;
	double stamp;
	double recorded; /* when a refusal was last audited */
};

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
	unsigned lookup_timeout_ms; /* runtime lookups, per request (default 2000) */
	unsigned connection_timeout_s; /* idle or slow connections are closed (default 10) */
	unsigned max_connections; /* per socket (default 256) */
	unsigned max_per_peer;    /* connections of one container or host uid (default 16) */
	unsigned header_timeout_s; /* a request's headers must be complete by then (default 5) */
	double rate_per_s;        /* requests per second per peer (default 100) */
	double rate_burst;        /* (default 200) */
	unsigned watch_max_s;     /* the longest a long poll waits (default 300) */
	unsigned loop_threads;    /* event loops serving workload.sock (default: one per core) */
	bool no_prefetch;         /* do not look containers up when they start */
	struct kura_audit_opts audit; /* the audit log: rotation, key epochs, fsync, lock wait */
	const char *audit_syslog;     /* ship records to syslog: unix:PATH or tcp:HOST:PORT */
	const char *audit_http;       /* ... and to an HTTP collector (URL) */
	unsigned audit_checkpoint_s;  /* between checkpoints sent to the sinks (default 10) */
	unsigned audit_queue_max;     /* records a sink holds before dropping (default 10000) */
};

struct kura_daemon {
	struct kura_daemon_config cfg;
	struct kura_vault *vault; /* only under store_lock */
	struct kura_grant_list grants; /* under store_lock: as of grants_rev (workload.c) */
	int64_t grants_rev;
	bool grants_valid;
	pthread_mutex_t store_lock;
	struct kura_resolver *resolver;
	struct kura_runtime **runtimes;
	size_t n_runtimes;
	struct MHD_Daemon *workload;
	struct MHD_Daemon *admin;
	int lock_fd;

	/* The store revision, polled by a thread; long polls wait on rev_cond. */
	pthread_mutex_t rev_lock;
	pthread_cond_t rev_cond;
	int64_t revision;
	bool stopping;
	pthread_t rev_thread;
	bool rev_thread_started;

	pthread_mutex_t rate_lock;
	struct kura_rate_bucket rate[KURA_RATE_BUCKETS];

	/* Every open connection, for per-peer caps and the header deadline. */
	pthread_mutex_t conns_lock;
	struct kura_conn *conns;
	bool warned_degraded;

	/* Workload requests suspended off the event loop (workload.c): lookups waiting for a
	 * worker, and long polls waiting for a change (under rev_lock, with their count). */
	pthread_mutex_t jobs_lock;
	pthread_cond_t jobs_cond;
	struct wreq *jobs;
	bool jobs_stop;
	pthread_t workers[KURA_LOOKUP_WORKERS];
	size_t n_workers;
	struct wreq *watchers;
	unsigned suspended;

	/* The audit log (daemon-audit.c). */
	struct kura_audit *audit;
	struct kura_sinks *sinks;
	char audit_dir[4096];
	pthread_mutex_t audit_lock; /* audit_failing */
	bool audit_failing;
	pthread_t audit_thread;
	bool audit_thread_started;
};

struct kura_conn;
struct wreq;

/* Start the lookup workers. */
int kura_workload_start(struct kura_daemon *d);
/* Before stopping libmicrohttpd (with `stopping` set): answer every suspended request. */
void kura_workload_drain(struct kura_daemon *d);
/* Resume the long polls that are due (revision moved, deadline, stopping); under rev_lock. */
void kura_workload_wake_watchers(struct kura_daemon *d);
/* Frees a workload request's state. */
void kura_workload_completed(void *cls, struct MHD_Connection *c, void **req_cls,
	enum MHD_RequestTerminationCode code);

/* Enter a long poll for this connection's peer: false when the peer already has
 * KURA_MAX_WATCHES_PER_PEER open. kura_daemon_unwatch() when done. */
bool kura_daemon_watch(struct kura_daemon *d, struct kura_conn *conn);
void kura_daemon_unwatch(struct kura_daemon *d, struct kura_conn *conn);

/* Open the vault, bind the sockets, start serving. Logs its own failures (once). */
int kura_daemon_start(struct kura_daemon *d, const struct kura_daemon_config *cfg);

/* Stop serving: wake long polls, close sockets, join threads, wipe keys. */
void kura_daemon_stop(struct kura_daemon *d);

/* The workload API's request handler (workload.c). */
enum MHD_Result kura_workload_handler(void *cls, struct MHD_Connection *c, const char *url,
	const char *method, const char *version, const char *upload_data,
	size_t *upload_data_size, void **req_cls);

/* The admin API's request handler (admin.c). */
enum MHD_Result kura_admin_handler(void *cls, struct MHD_Connection *c, const char *url,
	const char *method, const char *version, const char *upload_data,
	size_t *upload_data_size, void **req_cls);

/* Frees what the admin handler kept for a request (its body, wiped). */
void kura_admin_completed(void *cls, struct MHD_Connection *c, void **req_cls,
	enum MHD_RequestTerminationCode code);

/* The connection's request headers are complete (the reaper leaves it alone). NULL-safe. */
void kura_daemon_request_started(struct kura_daemon *d, struct kura_conn *conn);

/* Take one token for this peer; false when it is over its rate, and then *ret_record says
 * whether this refusal is the one to audit (at most one a second per peer). */
bool kura_daemon_rate_ok(struct kura_daemon *d, uint64_t key, bool *ret_record);

/* Open the audit log and start its key timer; logs why it cannot. */
int kura_daemon_audit_start(struct kura_daemon *d);
/* Join the timer and close the log (after `stopping` is set). */
void kura_daemon_audit_stop(struct kura_daemon *d);

/*
 * Append one record. On failure (disk full, I/O error, the file replaced, a writer stuck for
 * longer than audit.lock_ms) it logs once per spell of failures and returns -errno: the caller
 * then fails closed (503), and never lets a secret out unrecorded.
 */
int kura_daemon_audit(struct kura_daemon *d, const struct kura_audit_event *e);
/* Whether the last append worked: operations check it before they change anything. */
bool kura_daemon_audit_healthy(struct kura_daemon *d);
/* A record of kurad's own (start, stop, reload). */
void kura_daemon_audit_self(struct kura_daemon *d, const char *event, const char *detail);

/* Log one line (never a value). level: LOG_ERR, LOG_WARNING, LOG_INFO. */
__attribute__((format(printf, 2, 3))) void kura_log(int level, const char *fmt, ...);
void kura_log_to_syslog(bool on);

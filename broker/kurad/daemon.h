/* kurad's state shared by its threads: the vault behind one lock, the identity resolver, the
 * store revision and recent changes that long polls wait on, and the per-principal limits.
 * Internal to kurad. */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <microhttpd.h>

#include "audit.h"
#include "audit-event.h"
#include "changes.h"
#include "clock.h"
#include "grant.h"
#include "identity.h"
#include "log.h"
#include "quota.h"
#include "vault.h"

#define KURA_MAX_WATCHES_PER_PEER 4
#define KURA_LOOKUP_WORKERS 4 /* threads that ask runtimes for containers not cached */
/* Distinct secret names a long poll can ask about by revision; an older `since` is answered
 * "resync" (list again) rather than by reading the store. */
#define KURA_CHANGES_KEPT 4096

/* The grants as of a store revision, shared by the requests that read them (immutable). */
struct kura_grants {
	unsigned refs;
	int64_t rev; /* they are the grants of every revision from the one read up to this one */
	struct kura_grant_list list;
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
	unsigned max_connections; /* on workload.sock (default 256); room is made past it */
	unsigned max_per_peer;    /* connections of one principal (default 16) */
	unsigned max_watches;     /* long polls in all (default: half of max_connections) */
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
	struct kura_grants *grants; /* the latest read, under grants_lock (workload.c) */
	pthread_mutex_t grants_lock;
	pthread_mutex_t store_lock;
	struct kura_resolver *resolver;
	struct kura_runtime **runtimes;
	size_t n_runtimes;
	struct MHD_Daemon *workload;
	struct MHD_Daemon *admin;
	int lock_fd;

	/* The store revision and the secrets changed lately, followed by a thread; long polls
	 * wait on rev_cond. `revision` is as far as `changes` is complete. */
	pthread_mutex_t rev_lock;
	pthread_cond_t rev_cond;
	int64_t revision;
	struct kura_changes *changes;
	bool stopping;
	pthread_t rev_thread;
	bool rev_thread_started;

	/* Connections, rates, long polls and refusal counts of workload.sock, per principal. */
	struct kura_quota *quota;
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
/* Free what the workload API kept (the grants). */
void kura_workload_done(struct kura_daemon *d);
/* Before stopping libmicrohttpd (with `stopping` set): answer every suspended request. */
void kura_workload_drain(struct kura_daemon *d);
/* Resume the long polls that are due (revision moved, deadline, stopping); under rev_lock. */
void kura_workload_wake_watchers(struct kura_daemon *d);
/* Frees a workload request's state. */
void kura_workload_completed(void *cls, struct MHD_Connection *c, void **req_cls,
	enum MHD_RequestTerminationCode code);

/* Resume parked long polls whose peer hung up or died (their connection is then closed); under
 * rev_lock. */
void kura_workload_check_hangups(struct kura_daemon *d);
/* Read the store's changes up to its current revision into d->changes and move d->revision
 * (the revision thread). */
void kura_workload_follow(struct kura_daemon *d);

/* Open the vault, bind the sockets, start serving. Logs its own failures (once). */
int kura_daemon_start(struct kura_daemon *d, const struct kura_daemon_config *cfg);

/* Apply cfg's rate and burst (after a reload) to the limits. */
void kura_daemon_reconfigure(struct kura_daemon *d);

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
/* The record of refusals counted rather than recorded one by one ("suppressed"). */
int kura_daemon_audit_suppressed(struct kura_daemon *d, const struct kura_refusal_note *n);
/* Write the counts of every principal whose second is over (all of them when `all`). */
void kura_daemon_audit_flush(struct kura_daemon *d, bool all);



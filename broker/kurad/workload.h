/* The workload API on workload.sock, as the front process serves it, and all it keeps: the
 * connection table and its limits, the lookups waiting for a runtime, the long polls and the
 * index of recent changes they ask. What a peer may have is the custody process's to decide.
 * Touches plaintext: a value arrives from it in guarded memory and leaves from there. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <microhttpd.h>

#include "link.h"
#include "quota.h"

#define KURA_MAX_WATCHES_PER_PEER 4
#define KURA_LOOKUP_WORKERS 4 /* threads that ask runtimes for containers not cached */
/* Distinct secret names a long poll can ask about by revision; an older `since` is answered
 * "resync" (list again) rather than by reading the store. */
#define KURA_CHANGES_KEPT 4096
/* The longest a request waits for the custody process (beyond a runtime lookup's own bound),
 * which may be busy with a long operation holding the vault (a key rotation): then 503. */
#define KURA_KEEPER_WAIT_MS 10000

struct kura_workload_config {
	struct kura_quota_config quota;
	unsigned header_timeout_s;  /* a request's headers must be complete by then */
	unsigned watch_max_s;       /* the longest a long poll waits */
	unsigned lookup_timeout_ms; /* a runtime lookup's bound, in the custody process */
};

struct kura_workload;

/* Serve through link (not owned) to the custody process, whose changes (after `revision`, as
 * its READY said) come in on events; start the long polls' thread and the lookup workers. */
int kura_workload_start(const struct kura_workload_config *cfg, struct kura_link *link, int events,
	int64_t revision, struct kura_workload **ret);

/* Apply new limits and the longest long poll (after a reload); the header timeout stays. */
void kura_workload_reconfigure(struct kura_workload *w, const struct kura_workload_config *cfg);

/* Before libmicrohttpd is stopped: answer every suspended request (long polls, lookups), and
 * take no more. */
void kura_workload_drain(struct kura_workload *w);

/* After libmicrohttpd is stopped: join the follower, record the refusals still counted, free.
 * NULL-safe. */
void kura_workload_stop(struct kura_workload *w);

/* The revision long polls are told of, and the connection table's counters (status). */
void kura_workload_stats(struct kura_workload *w, int64_t *ret_rev, struct kura_quota_stats *ret);

/* libmicrohttpd's callbacks for workload.sock (cls: the struct kura_workload). */
enum MHD_Result kura_workload_handler(void *cls, struct MHD_Connection *c, const char *url,
	const char *method, const char *version, const char *upload_data, size_t *upload_data_size,
	void **req_cls);
void kura_workload_notify(void *cls, struct MHD_Connection *c, void **socket_context,
	enum MHD_ConnectionNotificationCode code);
void kura_workload_completed(void *cls, struct MHD_Connection *c, void **req_cls,
	enum MHD_RequestTerminationCode code);

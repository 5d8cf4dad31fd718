/* The workload API on workload.sock, and all it keeps: the connection table and its limits,
 * the lookups waiting for a runtime, the long polls and the index of recent changes they ask.
 * Touches plaintext: a value goes from the vault into a guarded reply body. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <microhttpd.h>

#include "identity.h"
#include "keeper.h"
#include "quota.h"
#include "recorder.h"

#define KURA_MAX_WATCHES_PER_PEER 4
#define KURA_LOOKUP_WORKERS 4 /* threads that ask runtimes for containers not cached */
/* Distinct secret names a long poll can ask about by revision; an older `since` is answered
 * "resync" (list again) rather than by reading the store. */
#define KURA_CHANGES_KEPT 4096

struct kura_workload_config {
	struct kura_quota_config quota;
	unsigned header_timeout_s; /* a request's headers must be complete by then */
	unsigned watch_max_s;      /* the longest a long poll waits */
};

struct kura_workload;

/* Serve from keeper, resolver and rec (not owned); start the revision follower and the lookup
 * workers. */
int kura_workload_start(const struct kura_workload_config *cfg, struct kura_keeper *keeper,
	struct kura_resolver *resolver, struct kura_recorder *rec, struct kura_workload **ret);

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

/* The admin API on admin.sock (root only): whois, status, and every operation kuractl offers,
 * run on kurad's open vault. Touches plaintext: values arrive and leave in guarded buffers. */
#pragma once

#include <stddef.h>

#include <microhttpd.h>

#include "identity.h"
#include "keeper.h"
#include "recorder.h"
#include "custody.h"
#include "daemon-options.h"

/* What the admin API works on (not owned). */
struct kura_admin {
	const char *state_dir;
	size_t n_runtimes;
	struct kura_keeper *keeper;
	struct kura_vault *vault; /* the keeper's: only between kura_keeper_hold and _release */
	struct kura_resolver *resolver;
	struct kura_recorder *rec;
	struct kura_custody *custody; /* the front's counters, for status */
	/* For status and metrics (admin-metrics.c). */
	struct kura_runtime *const *runtimes;          /* n_runtimes of them */
	const struct kura_runtime_config *runtime_cfg; /* ... as configured */
	double started;                                /* kura_clock_s() at start */
	int64_t started_wall;                          /* ... and Unix seconds */
	pid_t supervisor_pid, net_pid;                 /* 0: none (one process) */
};

/* GET /metrics (Prometheus text) and GET /v1/status (JSON; ?probe=1 also asks each runtime
 * whether it answers, within a second each). */
enum MHD_Result kura_admin_metrics(struct kura_admin *d, struct MHD_Connection *c);
enum MHD_Result kura_admin_status(struct kura_admin *d, struct MHD_Connection *c);

/* Whether rt answers GET /_ping (Docker and Podman both serve it) with 200 within a second:
 * NULL if it does, else why not, as a phrase for a person. */
struct kura_runtime;
const char *kura_admin_runtime_check(struct kura_runtime *rt);
/* Whether kurad has a client for a runtime so named (docker, podman). */
bool kura_admin_runtime_known(const char *name);

/* libmicrohttpd's callbacks for admin.sock (cls: the struct kura_admin). */
enum MHD_Result kura_admin_handler(void *cls, struct MHD_Connection *c, const char *url,
	const char *method, const char *version, const char *upload_data, size_t *upload_data_size,
	void **req_cls);
void kura_admin_notify(void *cls, struct MHD_Connection *c, void **socket_context,
	enum MHD_ConnectionNotificationCode code);
/* Frees what the handler kept for a request (its body, wiped). */
void kura_admin_completed(void *cls, struct MHD_Connection *c, void **req_cls,
	enum MHD_RequestTerminationCode code);

/* kurad's life cycle: what it opens at start (the vault, the audit log, the runtimes, the run
 * directory and its two sockets) and how it stops. The parts are wired here; each keeps its
 * own state. Internal to kurad. */
#pragma once

#include <microhttpd.h>

#include "admin.h"
#include "daemon-options.h"
#include "identity.h"
#include "keeper.h"
#include "recorder.h"
#include "workload.h"

struct kura_daemon {
	struct kura_daemon_config cfg;
	struct kura_keeper *keeper;
	struct kura_recorder *rec;
	struct kura_resolver *resolver;
	struct kura_runtime **runtimes;
	size_t n_runtimes;
	struct kura_workload *workload;
	struct kura_admin admin;
	struct MHD_Daemon *workload_mhd;
	struct MHD_Daemon *admin_mhd;
	int lock_fd;
};

/* Open the vault, bind the sockets, start serving. Logs its own failures (once). */
int kura_daemon_start(struct kura_daemon *d, const struct kura_daemon_config *cfg);

/* Apply cfg's rate and burst (after a reload) to the limits. */
void kura_daemon_reconfigure(struct kura_daemon *d);

/* Stop serving: answer long polls, close sockets, join threads, wipe keys. */
void kura_daemon_stop(struct kura_daemon *d);

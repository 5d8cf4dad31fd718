/* kurad's life cycle: what each of its processes opens at start and how it stops. The
 * supervisor makes the run directory, its lock, the two sockets and the channels; the key
 * custody process opens the vault, the audit log, the runtimes and serves admin.sock; the front
 * serves workload.sock. The parts are wired here; each keeps its own state. Internal to kurad. */
#pragma once

#include <microhttpd.h>

#include "admin.h"
#include "custody.h"
#include "daemon-options.h"
#include "identity.h"
#include "keeper.h"
#include "link.h"
#include "net.h"
#include "recorder.h"
#include "workload.h"

struct kura_daemon {
	struct kura_daemon_config cfg;
	/* The supervisor's: made before any process of ours holds a key or reads a peer. */
	pid_t supervisor_pid; /* kurad's own records carry it */
	pid_t net_pid;        /* the net process's, for status (0: none) */
	uid_t front_uid;      /* whom the front runs as */
	gid_t front_gid;
	int lock_fd;
	int workload_fd, admin_fd; /* listening, until libmicrohttpd takes them */
	/* Passed by the service manager (LISTEN_FDS): never unlinked nor bound again, so that
	 * they outlive kurad and a restart goes unnoticed by whoever connects. */
	bool workload_passed, admin_passed;
	int *keeper_chans, *front_chans; /* the two ends of each request channel */
	size_t n_chans, n_made;
	bool keeper_chans_taken, front_chans_taken;
	int events[2]; /* [0] the custody process's end, [1] the front's */
	/* The net process's channels: the custody process's ends and its own. None when both
	 * parts run in one process (they then connect themselves). */
	bool with_net;
	struct kura_net_fds net_keeper, net_side;
	/* The key custody process's. */
	struct kura_keeper *keeper;
	struct kura_recorder *rec;
	struct kura_resolver *resolver;
	struct kura_runtime **runtimes;
	size_t n_runtimes;
	struct kura_custody *custody;
	struct kura_net_client *net; /* its runtimes and sinks go through the net process */
	struct kura_admin admin;
	struct MHD_Daemon *admin_mhd;
	/* The front's. */
	struct kura_link *link;
	struct kura_workload *workload;
	struct MHD_Daemon *workload_mhd;
};

/*
 * kurad as it runs: a supervisor that makes the sockets and channels, then forks the key
 * custody process and the front, and stops both (and exits non-zero) the moment either dies.
 * Signals: TERM and INT stop it (0), HUP reloads o's config file in each process. Returns the
 * exit status.
 */
int kura_daemon_run(struct kura_daemon_options *o);

/* Both parts in this one process, over the same channels (no privilege separation): for the
 * tests of the handlers, and the benchmark that measures what the separation costs. Logs its
 * own failures (once). */
int kura_daemon_start(struct kura_daemon *d, const struct kura_daemon_config *cfg);
void kura_daemon_stop(struct kura_daemon *d);

/* Apply cfg's rate and burst (after a reload) to the limits. */
void kura_daemon_reconfigure(struct kura_daemon *d);

/* Each process's part (used by kura_daemon_run and kura_daemon_start). prepare: the
 * supervisor's (run directory, lock, sockets, channels). */
int kura_daemon_prepare(struct kura_daemon *d, const struct kura_daemon_config *cfg, bool with_net);
/* The vault alone (the master key read, derived or unsealed: it may need files and devices
 * the locked-down process no longer reaches), then the rest (opening the vault first if that
 * was not done). */
int kura_daemon_keeper_open(struct kura_daemon *d);
int kura_daemon_keeper_start(struct kura_daemon *d);
/* Each part's socket served (libmicrohttpd started on it): after start, once the supervisor
 * has told the service manager kurad is ready, so that no answer precedes READY=1. */
int kura_daemon_keeper_serve(struct kura_daemon *d);
int kura_daemon_front_serve(struct kura_daemon *d);
void kura_daemon_keeper_stop(struct kura_daemon *d);
int kura_daemon_front_start(struct kura_daemon *d);
/* The net process's work (after its lockdown): serves the custody process's GETs, event
 * streams and audit sinks until it closes them. 0, or -errno (logged). */
int kura_daemon_net_run(struct kura_daemon *d);
/* Before the net process locks itself down: what its first connections would load. */
void kura_daemon_net_warm(struct kura_daemon *d);
void kura_daemon_front_stop(struct kura_daemon *d);
void kura_daemon_close(struct kura_daemon *d);
void kura_daemon_unlink(struct kura_daemon *d);

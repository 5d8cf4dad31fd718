/* kurad: the broker daemon. Parses its configuration, locks itself down, serves the workload
 * and admin sockets until SIGTERM; SIGHUP reloads the configuration. Holds keys in guarded
 * memory; never logs a value. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "config.h"
#include "daemon.h"
#include "daemon-options.h"
#include "outcome.h"
#include "json.h"
#include "log.h"
#include "runtime.h"

static const char usage_text[] =
	"Usage: kurad [OPTIONS]\n"
	"\n"
	"The kura broker: serves secrets over RUN_DIR/workload.sock to processes it verifies to be\n"
	"containers (or host processes) with a matching grant, and RUN_DIR/admin.sock to root.\n"
	"\n"
	"  --state-dir DIR          state directory (default " KURA_STATE_DIR ")\n"
	"  --run-dir DIR            where the sockets live (default /run/kura)\n"
	"  --runtime NAME=unix:PATH a container runtime's API socket, e.g.\n"
	"                           docker=unix:/run/docker.sock or\n"
	"                           podman=unix:/run/podman/podman.sock (repeatable)\n"
	"  --key-file FILE          master key file (default STATE_DIR/master.key)\n"
	"  --passphrase-file FILE   derive the master key from the passphrase in FILE\n"
	"  --config FILE            read options from FILE: one 'option = value' a line, the\n"
	"                           options above without '--' (runtime may repeat), plus\n"
	"                           lookup-timeout-ms, connection-timeout (idle seconds),\n"
	"                           header-timeout (seconds to send a request's headers),\n"
	"                           max-connections (on workload.sock; past it the peer with\n"
	"                           the most connections makes room), max-per-peer,\n"
	"                           max-watches (long polls in all; half of max-connections),\n"
	"                           rate, burst (requests per second per peer: a container,\n"
	"                           or a host user with every uid of its user namespaces),\n"
	"                           watch-max (seconds a long poll may wait), syslog = yes|no,\n"
	"                           loop-threads (event loops for workload.sock; one per\n"
	"                           core), identity-prefetch = yes|no (look a container up\n"
	"                           when it starts, so its first request is warm; yes), and the\n"
	"                           audit log's: audit-fsync = yes|no (fsync each record\n"
	"                           before the secret leaves; default no: written to the\n"
	"                           kernel), audit-max-file-mb (rotate; 64),\n"
	"                           audit-epoch-records (1000) and audit-epoch-seconds\n"
	"                           (3600): how often the MAC key evolves, audit-lock-ms\n"
	"                           (2000): how long a request waits for a stuck write\n"
	"                           before it is refused; audit-syslog = unix:PATH or\n"
	"                           tcp:HOST:PORT and audit-http = URL (or unix:SOCK:/PATH):\n"
	"                           ship every record there as well (RFC 5424; JSON lines),\n"
	"                           with a checkpoint (seq and MAC of the last record) every\n"
	"                           audit-checkpoint-s (10) seconds; audit-queue (10000):\n"
	"                           records held per sink while it is down (then the oldest\n"
	"                           are dropped, counted and recorded); audit-archive-dir =\n"
	"                           /DIR with audit-archive-days = N and/or audit-archive-mb\n"
	"                           = N: whole audit files move to a new directory in DIR\n"
	"                           once all their records are N days old, or once the log\n"
	"                           is over N MiB (kuractl audit archive --help); front-user = NAME:\n"
	"                           whom the front (the process that parses HTTP from\n"
	"                           containers) runs as: default kura, else nobody;\n"
	"                           host-pid = PID: whose pid, mount and cgroup\n"
	"                           namespaces and root are the host's (1: a peer is a\n"
	"                           host process in all four of kurad's or of PID 1's)\n"
	"  --syslog                 log to syslog instead of stderr\n"
	"  --no-sandbox             for debugging only: no process locks itself down (no\n"
	"                           seccomp, Landlock, capability drop or user change); each\n"
	"                           says so in the log. Only on the command line\n"
	"  -h, --help               this help\n"
	"  --version                print the version\n"
	"\n"
	"Signals: SIGTERM or SIGINT drain and exit; SIGHUP re-reads --config (limits and logging;\n"
	"runtime, directory and audit changes need a restart).\n"
	"Under systemd (kurad.service, kurad.socket): sockets passed by socket activation\n"
	"(LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES) are used instead of binding RUN_DIR's, once\n"
	"checked (listening Unix stream sockets bound to RUN_DIR/workload.sock and\n"
	"RUN_DIR/admin.sock, admin.sock reachable by root alone; anything else refuses to start),\n"
	"and are never unlinked. With NOTIFY_SOCKET, kurad says READY=1 once both sockets\n"
	"serve, RELOADING=1 and READY=1 around SIGHUP, STOPPING=1, a STATUS= line, and with\n"
	"WATCHDOG_USEC sends WATCHDOG=1 every half period while its key custody process and\n"
	"front answer its heartbeat.\n"
	"Every request and operation is recorded in STATE_DIR/audit before it is answered; when\n"
	"the record cannot be written, the request is refused with 503 (kuractl audit --help).\n"
	"kurad runs as four processes: kurad itself (a supervisor holding nothing),\n"
	"kurad-keeper (the keys, the store, the audit log, admin.sock), kurad-front\n"
	"(workload.sock's HTTP, as front-user, holding no key) and kurad-net (the runtimes'\n"
	"APIs and the audit sinks, holding no key). Should a child die, kurad stops the\n"
	"others and exits non-zero (70 for a malformed internal message, 3 for a\n"
	"process killed, by SIGSYS when it broke its sandbox), so the service manager starts it\n"
	"afresh. kurad exits 0 when stopped by a signal, 1 when refused (another kurad on\n"
	"RUN_DIR, a wrong master key, a RUN_DIR others could replace, no state).\n"
	"\n" KURA_EXIT_HELP;

#ifdef KURA_TEST_HOOKS
/* Test builds only: both parts in one process, over the same channels and with no sandbox,
 * for the benchmark that measures what the separation costs. */
static int single_process(struct kura_daemon_options *o)
{
	struct kura_daemon d = { 0 };
	sigset_t sigs;
	int r, sig;

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	r = kura_daemon_start(&d, &o->cfg);
	while (r == 0 && (sigwait(&sigs, &sig) != 0 || sig == SIGHUP))
		;
	kura_daemon_stop(&d);
	return r < 0 ? kura_outcome_exit(r) : KURA_EXIT_OK;
}
#endif

int main(int argc, char **argv)
{
#ifdef KURA_TEST_HOOKS
	bool single = false;
#endif
	static const struct option opts[] = {
		{ "state-dir", required_argument, NULL, 'S' },
		{ "run-dir", required_argument, NULL, 'R' },
		{ "runtime", required_argument, NULL, 'r' },
		{ "key-file", required_argument, NULL, 'K' },
		{ "passphrase-file", required_argument, NULL, 'P' },
		{ "config", required_argument, NULL, 'c' },
		{ "syslog", no_argument, NULL, 'l' },
		{ "no-sandbox", no_argument, NULL, 'N' },
#ifdef KURA_TEST_HOOKS
		{ "single-process", no_argument, NULL, '1' },
#endif
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct kura_daemon_options o;
	sigset_t sigs;
	int opt, r;

	kura_keys_protect_process();
	kura_daemon_options_init(&o);
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		const char *key = NULL;

		switch (opt) {
		case 'h':
			fputs(usage_text, stdout);
			return KURA_EXIT_OK;
		case 'V':
			puts("kurad " KURA_VERSION);
			return KURA_EXIT_OK;
		case 'c':
			o.config_file = optarg;
			o.cfg.config_file = optarg;
			/* Read now, so later command-line options win over the file. */
			if (kura_daemon_options_read(&o, optarg, false) < 0)
				return KURA_EXIT_USAGE;
			continue;
		case 'l':
			o.syslog = true;
			continue;
		case 'N':
			o.cfg.no_sandbox = true;
			continue;
#ifdef KURA_TEST_HOOKS
		case '1':
			single = true;
			continue;
#endif
		case 'S':
			key = "state-dir";
			break;
		case 'R':
			key = "run-dir";
			break;
		case 'r':
			key = "runtime";
			break;
		case 'K':
			key = "key-file";
			break;
		case 'P':
			key = "passphrase-file";
			break;
		case ':':
			fprintf(stderr, "kurad: option '%s' needs a value (see kurad --help)\n",
				argv[optind - 1]);
			return KURA_EXIT_USAGE;
		default:
			fprintf(stderr, "kurad: unknown option '%.*s' (see kurad --help)\n",
				(int)strcspn(argv[optind - 1], "="), argv[optind - 1]);
			return KURA_EXIT_USAGE;
		}
		if (!kura_daemon_option_set(&o, key, optarg, false)) {
			fprintf(stderr, "kurad: invalid --%s (see kurad --help)\n", key);
			return KURA_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fputs("kurad: unexpected argument (see kurad --help)\n", stderr);
		return KURA_EXIT_USAGE;
	}
	kura_log_to_syslog(o.syslog);
	if (kura_keys_init() < 0 || kura_runtime_global_init() < 0) {
		kura_log(LOG_ERR, "cannot initialise libsodium or libcurl");
		return KURA_EXIT_SYSTEM;
	}
	kura_json_init();
	if (o.cfg.n_runtimes == 0)
		kura_log(LOG_WARNING,
			"no --runtime configured: only host processes can be "
			"identified");

	/* Every thread inherits this mask; the signals are taken here with sigwait. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

#ifdef KURA_TEST_HOOKS
	if (single)
		r = single_process(&o);
	else
#endif
		r = kura_daemon_run(&o);
	kura_daemon_options_done(&o);
	return r;
}

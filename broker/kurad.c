/* kurad: the broker daemon. Parses its configuration, locks itself down, serves the workload
 * and admin sockets until SIGTERM; SIGHUP reloads the configuration. Holds keys in guarded
 * memory; never logs a value. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "config.h"
#include "daemon.h"
#include "json.h"
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
	"                           are dropped, counted and recorded)\n"
	"  --syslog                 log to syslog instead of stderr\n"
	"  -h, --help               this help\n"
	"  --version                print the version\n"
	"\n"
	"Signals: SIGTERM or SIGINT drain and exit; SIGHUP re-reads --config (limits and logging;\n"
	"runtime, directory and audit changes need a restart).\n"
	"Every request and operation is recorded in STATE_DIR/audit before it is answered; when\n"
	"the record cannot be written, the request is refused with 503 (kuractl audit --help).\n"
	"Exit status: 0 stopped by a signal, 1 refused (another kurad on RUN_DIR, wrong master\n"
	"key), 2 usage, 3 system error.\n";

struct options {
	struct kura_daemon_config cfg;
	const char *config_file;
	bool syslog;
	/* The strings cfg points to that we allocated. */
	char *state_dir;
	char *run_dir;
	char *master_path;
	char *audit_syslog;
	char *audit_http;
};

static bool replace(char **owned, const char **field, const char *value)
{
	char *copy = strdup(value);

	if (!copy)
		return false;
	free(*owned);
	*owned = copy;
	*field = copy;
	return true;
}

static void options_done(struct options *o)
{
	free(o->state_dir);
	free(o->run_dir);
	free(o->master_path);
	free(o->audit_syslog);
	free(o->audit_http);
	for (size_t i = 0; i < o->cfg.n_runtimes; i++) {
		free(o->cfg.runtimes[i].name);
		free(o->cfg.runtimes[i].endpoint);
	}
	free(o->cfg.runtimes);
}

static int add_runtime(struct kura_daemon_config *cfg, const char *spec)
{
	const char *eq = strchr(spec, '=');
	struct kura_runtime_config *rts;

	if (!eq || eq == spec || strncmp(eq + 1, "unix:", 5) != 0)
		return -EINVAL;
	rts = realloc(cfg->runtimes, (cfg->n_runtimes + 1) * sizeof(*rts));
	if (!rts)
		return -ENOMEM;
	cfg->runtimes = rts;
	rts[cfg->n_runtimes].name = strndup(spec, (size_t)(eq - spec));
	rts[cfg->n_runtimes].endpoint = strdup(eq + 1);
	if (!rts[cfg->n_runtimes].name || !rts[cfg->n_runtimes].endpoint)
		return -ENOMEM;
	cfg->n_runtimes++;
	return 0;
}

static bool parse_uint(const char *v, unsigned long min, unsigned long max, unsigned long *ret)
{
	char *end;
	unsigned long n;

	if (*v < '0' || *v > '9')
		return false;
	errno = 0;
	n = strtoul(v, &end, 10);
	if (errno || *end || n < min || n > max)
		return false;
	*ret = n;
	return true;
}

/* One option, from the command line or the config file. false: not valid. */
static bool set_option(struct options *o, const char *key, const char *value, bool reload)
{
	unsigned long n;

	if (strcmp(key, "rate") == 0 && parse_uint(value, 1, 1000000, &n))
		o->cfg.rate_per_s = (double)n;
	else if (strcmp(key, "burst") == 0 && parse_uint(value, 1, 1000000, &n))
		o->cfg.rate_burst = (double)n;
	else if (strcmp(key, "watch-max") == 0 && parse_uint(value, 1, 3600, &n))
		o->cfg.watch_max_s = (unsigned)n;
	else if (strcmp(key, "syslog") == 0 && (!strcmp(value, "yes") || !strcmp(value, "no")))
		o->syslog = strcmp(value, "yes") == 0;
	else if (strcmp(key, "identity-prefetch") == 0 &&
		(!strcmp(value, "yes") || !strcmp(value, "no")))
		o->cfg.no_prefetch = strcmp(value, "no") == 0;
	else if (reload)
		return strcmp(key, "state-dir") == 0 || strcmp(key, "run-dir") == 0 ||
			strcmp(key, "runtime") == 0 || strcmp(key, "key-file") == 0 ||
			strcmp(key, "passphrase-file") == 0 || strcmp(key, "lookup-timeout-ms") == 0 ||
			strcmp(key, "connection-timeout") == 0 ||
			strcmp(key, "max-connections") == 0 || strcmp(key, "max-per-peer") == 0 ||
			strcmp(key, "max-watches") == 0 ||
			strcmp(key, "header-timeout") == 0 || strncmp(key, "audit-", 6) == 0 ||
			strcmp(key, "loop-threads") == 0;
	else if (strcmp(key, "state-dir") == 0)
		return replace(&o->state_dir, &o->cfg.state_dir, value);
	else if (strcmp(key, "run-dir") == 0)
		return replace(&o->run_dir, &o->cfg.run_dir, value);
	else if (strcmp(key, "runtime") == 0)
		return add_runtime(&o->cfg, value) == 0;
	else if (strcmp(key, "key-file") == 0 || strcmp(key, "passphrase-file") == 0) {
		o->cfg.master.kind = key[0] == 'k' ? KURA_MASTER_FILE : KURA_MASTER_PASSPHRASE;
		return replace(&o->master_path, &o->cfg.master.path, value);
	}
	else if (strcmp(key, "lookup-timeout-ms") == 0 && parse_uint(value, 10, 60000, &n))
		o->cfg.lookup_timeout_ms = (unsigned)n;
	else if (strcmp(key, "connection-timeout") == 0 && parse_uint(value, 1, 3600, &n))
		o->cfg.connection_timeout_s = (unsigned)n;
	else if (strcmp(key, "max-connections") == 0 && parse_uint(value, 1, 65536, &n))
		o->cfg.max_connections = (unsigned)n;
	else if (strcmp(key, "max-per-peer") == 0 && parse_uint(value, 1, 65536, &n))
		o->cfg.max_per_peer = (unsigned)n;
	else if (strcmp(key, "max-watches") == 0 && parse_uint(value, 1, 65536, &n))
		o->cfg.max_watches = (unsigned)n;
	else if (strcmp(key, "header-timeout") == 0 && parse_uint(value, 1, 3600, &n))
		o->cfg.header_timeout_s = (unsigned)n;
	else if (strcmp(key, "loop-threads") == 0 && parse_uint(value, 1, 64, &n))
		o->cfg.loop_threads = (unsigned)n;
	else if (strcmp(key, "audit-fsync") == 0 && (!strcmp(value, "yes") || !strcmp(value, "no")))
		o->cfg.audit.fsync = strcmp(value, "yes") == 0;
	else if (strcmp(key, "audit-max-file-mb") == 0 && parse_uint(value, 1, 1 << 20, &n))
		o->cfg.audit.max_file_bytes = (uint64_t)n << 20;
	else if (strcmp(key, "audit-epoch-records") == 0 && parse_uint(value, 1, 1u << 30, &n))
		o->cfg.audit.records_per_epoch = n;
	else if (strcmp(key, "audit-epoch-seconds") == 0 && parse_uint(value, 1, 86400 * 7, &n))
		o->cfg.audit.seconds_per_epoch = n;
	else if (strcmp(key, "audit-lock-ms") == 0 && parse_uint(value, 10, 60000, &n))
		o->cfg.audit.lock_ms = (unsigned)n;
	else if (strcmp(key, "audit-syslog") == 0)
		return replace(&o->audit_syslog, &o->cfg.audit_syslog, value);
	else if (strcmp(key, "audit-http") == 0)
		return replace(&o->audit_http, &o->cfg.audit_http, value);
	else if (strcmp(key, "audit-checkpoint-s") == 0 && parse_uint(value, 1, 86400, &n))
		o->cfg.audit_checkpoint_s = (unsigned)n;
	else if (strcmp(key, "audit-queue") == 0 && parse_uint(value, 1, 10000000, &n))
		o->cfg.audit_queue_max = (unsigned)n;
	else
		return false;
	return true;
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

/* Read `option = value` lines; '#' starts a comment. Errors name the file and line. */
static int read_config(struct options *o, const char *path, bool reload)
{
	FILE *f = fopen(path, "re");
	char line[4096];
	unsigned lineno = 0;

	if (!f) {
		kura_log(LOG_ERR, "cannot read %s: %s", path, strerror(errno));
		return -errno;
	}
	while (fgets(line, sizeof(line), f)) {
		char *s = trim(line), *eq;

		lineno++;
		if (!*s || *s == '#')
			continue;
		eq = strchr(s, '=');
		if (eq)
			*eq = '\0';
		if (!eq || !set_option(o, trim(s), trim(eq + 1), reload)) {
			kura_log(LOG_ERR, "%s:%u: not a valid 'option = value' line", path, lineno);
			fclose(f);
			return -EINVAL;
		}
	}
	fclose(f);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "state-dir", required_argument, NULL, 'S' },
		{ "run-dir", required_argument, NULL, 'R' },
		{ "runtime", required_argument, NULL, 'r' },
		{ "key-file", required_argument, NULL, 'K' },
		{ "passphrase-file", required_argument, NULL, 'P' },
		{ "config", required_argument, NULL, 'c' },
		{ "syslog", no_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct options o = { .cfg = {
		.state_dir = KURA_STATE_DIR,
		.run_dir = "/run/kura",
		.master = { .kind = KURA_MASTER_FILE },
		.lookup_timeout_ms = 2000,
		.connection_timeout_s = 10,
		.max_connections = 256,
		.max_per_peer = 16,
		.header_timeout_s = 5,
		.rate_per_s = 100,
		.rate_burst = 200,
		.watch_max_s = 300,
		.audit = { .max_file_bytes = 64u << 20, .records_per_epoch = 1000,
			.seconds_per_epoch = 3600, .fsync = false, .lock_ms = 2000,
			.open_wait_ms = 10000 },
	} };
	struct kura_daemon d = { 0 };
	sigset_t sigs;
	int opt, r, sig;

	kura_keys_protect_process();
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		const char *key = NULL;

		switch (opt) {
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		case 'V':
			puts("kurad " KURA_VERSION);
			return 0;
		case 'c':
			o.config_file = optarg;
			/* Read now, so later command-line options win over the file. */
			if (read_config(&o, optarg, false) < 0)
				return 2;
			continue;
		case 'l':
			o.syslog = true;
			continue;
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
			return 2;
		default:
			fprintf(stderr, "kurad: unknown option '%.*s' (see kurad --help)\n",
				(int)strcspn(argv[optind - 1], "="), argv[optind - 1]);
			return 2;
		}
		if (!set_option(&o, key, optarg, false)) {
			fprintf(stderr, "kurad: invalid --%s (see kurad --help)\n", key);
			return 2;
		}
	}
	if (optind < argc) {
		fputs("kurad: unexpected argument (see kurad --help)\n", stderr);
		return 2;
	}
	if (!o.cfg.loop_threads) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);

		o.cfg.loop_threads = n < 1 ? 1 : n > 8 ? 8 : (unsigned)n;
	}
	kura_log_to_syslog(o.syslog);
	if (kura_keys_init() < 0 || kura_runtime_global_init() < 0) {
		kura_log(LOG_ERR, "cannot initialise libsodium or libcurl");
		return 3;
	}
	kura_json_init();
	if (o.cfg.n_runtimes == 0)
		kura_log(LOG_WARNING, "no --runtime configured: only host processes can be "
				      "identified");

	/* Every thread inherits this mask; the signals are taken here with sigwait. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	r = kura_daemon_start(&d, &o.cfg);
	if (r < 0) {
		kura_daemon_stop(&d);
		options_done(&o);
		return r == -EADDRINUSE || r == -EKEYREJECTED || r == -ENOKEY ? 1 : 3;
	}
	for (;;) {
		if (sigwait(&sigs, &sig) != 0)
			continue;
		if (sig != SIGHUP)
			break;
		if (!o.config_file) {
			kura_log(LOG_INFO, "SIGHUP: no --config file to reload");
			continue;
		}
		{
			struct options n = o;

			if (read_config(&n, o.config_file, true) < 0) {
				kura_log(LOG_WARNING, "SIGHUP: configuration kept as it was");
				continue;
			}
			d.cfg.rate_per_s = n.cfg.rate_per_s;
			d.cfg.rate_burst = n.cfg.rate_burst;
			__atomic_store_n(&d.cfg.watch_max_s, n.cfg.watch_max_s, __ATOMIC_RELAXED);
			kura_daemon_reconfigure(&d);
			d.cfg.no_prefetch = n.cfg.no_prefetch;
			kura_resolver_set_prefetch(d.resolver, !n.cfg.no_prefetch);
			if (n.syslog != o.syslog)
				kura_log_to_syslog(n.syslog);
			o = n;
			kura_log(LOG_INFO, "reloaded %s", o.config_file);
			kura_daemon_audit_self(&d, "reload", o.config_file);
		}
	}
	kura_log(LOG_INFO, "%s: draining and stopping", strsignal(sig));
	kura_daemon_stop(&d);
	options_done(&o);
	return 0;
}

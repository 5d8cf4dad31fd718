/* kurad's options: the command line's and the config file's `option = value` lines, into a
 * kura_daemon_config, with the defaults. Parses text an operator wrote; no plaintext. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "config.h"
#include "daemon-options.h"
#include "log.h"
#include "macro.h"
#include "number.h"

void kura_daemon_options_init(struct kura_daemon_options *o)
{
	*o = (struct kura_daemon_options){ 0 };
	o->cfg.state_dir = KURA_STATE_DIR;
	o->cfg.run_dir = "/run/kura";
	o->cfg.master.kind = KURA_MASTER_FILE;
	o->cfg.lookup_timeout_ms = 2000;
	o->cfg.connection_timeout_s = 10;
	o->cfg.max_connections = 256;
	o->cfg.max_per_peer = 16;
	o->cfg.header_timeout_s = 5;
	o->cfg.rate_per_s = 100;
	o->cfg.rate_burst = 200;
	o->cfg.watch_max_s = 300;
	o->cfg.audit = (struct kura_audit_opts){ .max_file_bytes = 64u << 20,
		.records_per_epoch = 1000,
		.seconds_per_epoch = 3600,
		.fsync = false,
		.lock_ms = 2000,
		.open_wait_ms = 10000 };
}

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

void kura_daemon_options_done(struct kura_daemon_options *o)
{
	free(o->state_dir);
	free(o->run_dir);
	free(o->master_path);
	free(o->audit_syslog);
	free(o->audit_http);
	free(o->audit_archive_dir);
	free(o->front_user);
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
	/* Counted either way, so that options_done frees what was made. */
	cfg->n_runtimes++;
	if (!rts[cfg->n_runtimes - 1].name || !rts[cfg->n_runtimes - 1].endpoint)
		return -ENOMEM;
	return 0;
}

bool kura_daemon_option_set(struct kura_daemon_options *o, const char *key, const char *value,
	bool reload)
{
	uint64_t n;

	if (strcmp(key, "rate") == 0 && kura_parse_u64(value, 1, 1000000, &n))
		o->cfg.rate_per_s = (double)n;
	else if (strcmp(key, "burst") == 0 && kura_parse_u64(value, 1, 1000000, &n))
		o->cfg.rate_burst = (double)n;
	else if (strcmp(key, "watch-max") == 0 && kura_parse_u64(value, 1, 3600, &n))
		o->cfg.watch_max_s = (unsigned)n;
	else if (strcmp(key, "syslog") == 0 && (!strcmp(value, "yes") || !strcmp(value, "no")))
		o->syslog = strcmp(value, "yes") == 0;
	else if (strcmp(key, "identity-prefetch") == 0 &&
		(!strcmp(value, "yes") || !strcmp(value, "no")))
		o->cfg.no_prefetch = strcmp(value, "no") == 0;
	else if (reload)
		return strcmp(key, "state-dir") == 0 || strcmp(key, "run-dir") == 0 ||
			strcmp(key, "runtime") == 0 || strcmp(key, "key-file") == 0 ||
			strcmp(key, "passphrase-file") == 0 ||
			strcmp(key, "lookup-timeout-ms") == 0 ||
			strcmp(key, "connection-timeout") == 0 ||
			strcmp(key, "max-connections") == 0 || strcmp(key, "max-per-peer") == 0 ||
			strcmp(key, "max-watches") == 0 || strcmp(key, "header-timeout") == 0 ||
			strncmp(key, "audit-", 6) == 0 || strcmp(key, "loop-threads") == 0 ||
			strcmp(key, "front-user") == 0 || strcmp(key, "host-pid") == 0;
	else if (strcmp(key, "state-dir") == 0)
		return replace(&o->state_dir, &o->cfg.state_dir, value);
	else if (strcmp(key, "run-dir") == 0)
		return replace(&o->run_dir, &o->cfg.run_dir, value);
	else if (strcmp(key, "runtime") == 0)
		return add_runtime(&o->cfg, value) == 0;
	else if (strcmp(key, "key-file") == 0 || strcmp(key, "passphrase-file") == 0) {
		o->cfg.master.kind = key[0] == 'k' ? KURA_MASTER_FILE : KURA_MASTER_PASSPHRASE;
		return replace(&o->master_path, &o->cfg.master.path, value);
	} else if (strcmp(key, "lookup-timeout-ms") == 0 && kura_parse_u64(value, 10, 60000, &n))
		o->cfg.lookup_timeout_ms = (unsigned)n;
	else if (strcmp(key, "connection-timeout") == 0 && kura_parse_u64(value, 1, 3600, &n))
		o->cfg.connection_timeout_s = (unsigned)n;
	else if (strcmp(key, "max-connections") == 0 && kura_parse_u64(value, 1, 65536, &n))
		o->cfg.max_connections = (unsigned)n;
	else if (strcmp(key, "max-per-peer") == 0 && kura_parse_u64(value, 1, 65536, &n))
		o->cfg.max_per_peer = (unsigned)n;
	else if (strcmp(key, "max-watches") == 0 && kura_parse_u64(value, 1, 65536, &n))
		o->cfg.max_watches = (unsigned)n;
	else if (strcmp(key, "header-timeout") == 0 && kura_parse_u64(value, 1, 3600, &n))
		o->cfg.header_timeout_s = (unsigned)n;
	else if (strcmp(key, "loop-threads") == 0 && kura_parse_u64(value, 1, 64, &n))
		o->cfg.loop_threads = (unsigned)n;
	else if (strcmp(key, "audit-fsync") == 0 && (!strcmp(value, "yes") || !strcmp(value, "no")))
		o->cfg.audit.fsync = strcmp(value, "yes") == 0;
	else if (strcmp(key, "audit-max-file-mb") == 0 && kura_parse_u64(value, 1, 1 << 20, &n))
		o->cfg.audit.max_file_bytes = (uint64_t)n << 20;
	else if (strcmp(key, "audit-epoch-records") == 0 && kura_parse_u64(value, 1, 1u << 30, &n))
		o->cfg.audit.records_per_epoch = n;
	else if (strcmp(key, "audit-epoch-seconds") == 0 && kura_parse_u64(value, 1, 86400 * 7, &n))
		o->cfg.audit.seconds_per_epoch = n;
	else if (strcmp(key, "audit-lock-ms") == 0 && kura_parse_u64(value, 10, 60000, &n))
		o->cfg.audit.lock_ms = (unsigned)n;
	else if (strcmp(key, "audit-syslog") == 0)
		return replace(&o->audit_syslog, &o->cfg.audit_syslog, value);
	else if (strcmp(key, "audit-http") == 0)
		return replace(&o->audit_http, &o->cfg.audit_http, value);
	else if (strcmp(key, "audit-checkpoint-s") == 0 && kura_parse_u64(value, 1, 86400, &n))
		o->cfg.audit_checkpoint_s = (unsigned)n;
	else if (strcmp(key, "audit-queue") == 0 && kura_parse_u64(value, 1, 10000000, &n))
		o->cfg.audit_queue_max = (unsigned)n;
	else if (strcmp(key, "audit-archive-dir") == 0 && value[0] == '/')
		return replace(&o->audit_archive_dir, &o->cfg.audit_archive_dir, value);
	else if (strcmp(key, "audit-archive-days") == 0 && kura_parse_u64(value, 1, 36500, &n))
		o->cfg.audit_archive_days = (unsigned)n;
	else if (strcmp(key, "audit-archive-mb") == 0 && kura_parse_u64(value, 1, 1 << 30, &n))
		o->cfg.audit_archive_bytes = (uint64_t)n << 20;
	else if (strcmp(key, "front-user") == 0 && *value)
		return replace(&o->front_user, &o->cfg.front_user, value);
	else if (strcmp(key, "host-pid") == 0 && kura_parse_u64(value, 1, INT32_MAX, &n))
		o->cfg.host_pid = (int)n;
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

int kura_daemon_options_parse(struct kura_daemon_options *o, const char *text, size_t len,
	bool reload, unsigned *ret_line)
{
	char line[4096];
	unsigned lineno = 0;
	size_t pos = 0;

	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
		char *s, *eq;

		lineno++;
		if (n >= sizeof(line) || memchr(text + pos, '\0', n)) {
			*ret_line = lineno;
			return -EINVAL;
		}
		memcpy(line, text + pos, n);
		line[n] = '\0';
		pos += n + (nl != NULL);
		s = trim(line);
		if (!*s || *s == '#')
			continue;
		eq = strchr(s, '=');
		if (eq)
			*eq = '\0';
		if (!eq || !kura_daemon_option_set(o, trim(s), trim(eq + 1), reload)) {
			*ret_line = lineno;
			return -EINVAL;
		}
	}
	return 0;
}

int kura_daemon_options_read(struct kura_daemon_options *o, const char *path, bool reload)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *text = NULL;
	size_t len = 0, cap = 0;
	unsigned line = 0;
	int r;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		kura_log(LOG_ERR, "cannot read %s: %s", path, strerror(-r));
		return r;
	}
	for (;;) {
		ssize_t n;

		if (len == cap) {
			char *t;

			if (cap >= KURA_DAEMON_OPTIONS_MAX) {
				kura_log(LOG_ERR, "%s: larger than %u bytes", path,
					KURA_DAEMON_OPTIONS_MAX);
				return -EFBIG;
			}
			cap = cap ? cap * 2 : 4096;
			t = realloc(text, cap);
			if (!t)
				return -ENOMEM;
			text = t;
		}
		n = read(fd, text + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			kura_log(LOG_ERR, "cannot read %s: %s", path, strerror(-r));
			return r;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	r = kura_daemon_options_parse(o, text, len, reload, &line);
	if (r < 0)
		kura_log(LOG_ERR, "%s:%u: not a valid 'option = value' line", path, line);
	return r;
}

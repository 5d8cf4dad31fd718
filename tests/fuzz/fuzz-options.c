/* libFuzzer target for kurad's config file (`option = value` lines): parsed or refused with the
 * number of a line it has, never a crash; what is taken is within each option's bounds, the same
 * every time, and a reload (SIGHUP) takes what a start would and changes only what may change
 * while kurad runs. No plaintext: the file names key files, it never holds a key. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "daemon-options.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool in(double v, double lo, double hi)
{
	return v >= lo && v <= hi;
}

/* Every bound daemon-options.c states, or the default. */
static void check_bounds(const struct kura_daemon_config *c)
{
	check(c->state_dir && c->run_dir);
	check(c->master.kind == KURA_MASTER_FILE || c->master.kind == KURA_MASTER_PASSPHRASE);
	check(in(c->rate_per_s, 1, 1000000) && in(c->rate_burst, 1, 1000000));
	check(in(c->watch_max_s, 1, 3600) && in(c->lookup_timeout_ms, 10, 60000));
	check(in(c->connection_timeout_s, 1, 3600) && in(c->header_timeout_s, 1, 3600));
	check(in(c->max_connections, 1, 65536) && in(c->max_per_peer, 1, 65536));
	check(c->max_watches <= 65536 && c->loop_threads <= 64);
	check(in((double)c->audit.max_file_bytes, 1 << 20, (double)(1ull << 40)));
	check(in((double)c->audit.records_per_epoch, 1, 1u << 30));
	check(in((double)c->audit.seconds_per_epoch, 1, 86400 * 7));
	check(in(c->audit.lock_ms, 10, 60000));
	check(c->audit_checkpoint_s <= 86400 && c->audit_queue_max <= 10000000);
	for (size_t i = 0; i < c->n_runtimes; i++)
		check(c->runtimes[i].name[0] && strncmp(c->runtimes[i].endpoint, "unix:", 5) == 0);
}

static bool str_eq(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

/* Equal in everything but what a reload may change (rate, burst, watch-max, syslog,
 * identity-prefetch). */
static bool fixed_equal(const struct kura_daemon_options *x, const struct kura_daemon_options *y)
{
	const struct kura_daemon_config *a = &x->cfg, *b = &y->cfg;

	if (a->n_runtimes != b->n_runtimes)
		return false;
	for (size_t i = 0; i < a->n_runtimes; i++)
		if (!str_eq(a->runtimes[i].name, b->runtimes[i].name) ||
			!str_eq(a->runtimes[i].endpoint, b->runtimes[i].endpoint))
			return false;
	return str_eq(a->state_dir, b->state_dir) && str_eq(a->run_dir, b->run_dir) &&
		a->master.kind == b->master.kind && str_eq(a->master.path, b->master.path) &&
		a->lookup_timeout_ms == b->lookup_timeout_ms &&
		a->connection_timeout_s == b->connection_timeout_s &&
		a->max_connections == b->max_connections && a->max_per_peer == b->max_per_peer &&
		a->max_watches == b->max_watches && a->header_timeout_s == b->header_timeout_s &&
		a->loop_threads == b->loop_threads &&
		a->audit.max_file_bytes == b->audit.max_file_bytes &&
		a->audit.records_per_epoch == b->audit.records_per_epoch &&
		a->audit.seconds_per_epoch == b->audit.seconds_per_epoch &&
		a->audit.fsync == b->audit.fsync && a->audit.lock_ms == b->audit.lock_ms &&
		a->audit.open_wait_ms == b->audit.open_wait_ms &&
		str_eq(a->audit_syslog, b->audit_syslog) && str_eq(a->audit_http, b->audit_http) &&
		a->audit_checkpoint_s == b->audit_checkpoint_s &&
		a->audit_queue_max == b->audit_queue_max;
}

static bool reloadable_equal(const struct kura_daemon_options *x,
	const struct kura_daemon_options *y)
{
	return x->cfg.rate_per_s == y->cfg.rate_per_s && x->cfg.rate_burst == y->cfg.rate_burst &&
		x->cfg.watch_max_s == y->cfg.watch_max_s && x->syslog == y->syslog &&
		x->cfg.no_prefetch == y->cfg.no_prefetch;
}

static unsigned count_lines(const uint8_t *data, size_t size)
{
	unsigned n = 0;

	for (size_t i = 0; i < size; i++)
		n += data[i] == '\n';
	return n + (size && data[size - 1] != '\n');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kura_daemon_options start, again, reload, defaults;
	unsigned line = 0, rline = 0;
	int r, rr;

	kura_daemon_options_init(&defaults);
	kura_daemon_options_init(&start);
	r = kura_daemon_options_parse(&start, (const char *)data, size, false, &line);
	check(r == 0 || r == -EINVAL || r == -ENOMEM);
	if (r == -EINVAL)
		check(line >= 1 && line <= count_lines(data, size));

	kura_daemon_options_init(&reload);
	rr = kura_daemon_options_parse(&reload, (const char *)data, size, true, &rline);
	check(rr == 0 || rr == -EINVAL || rr == -ENOMEM);
	if (rr == -EINVAL)
		check(rline >= 1 && rline <= count_lines(data, size));
	/* A reload changes nothing a running kurad cannot change. */
	check(fixed_equal(&reload, &defaults));

	if (r == 0) {
		check_bounds(&start.cfg);
		check(rr == 0 || rr == -ENOMEM);
		if (rr == 0)
			check(reloadable_equal(&reload, &start));
		kura_daemon_options_init(&again);
		check(kura_daemon_options_parse(&again, (const char *)data, size, false, &line) ==
			0);
		check(fixed_equal(&again, &start) && reloadable_equal(&again, &start));
		kura_daemon_options_done(&again);
	}
	kura_daemon_options_done(&start);
	kura_daemon_options_done(&reload);
	kura_daemon_options_done(&defaults);
	return 0;
}

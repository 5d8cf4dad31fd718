/* admin.sock's views of what kurad is doing: GET /v1/status (JSON, for kuractl status and
 * scripts) and GET /metrics (the Prometheus text exposition format). Both are read from
 * counters kept with atomics where they are counted and a snapshot of the front's, sent once a
 * second (custody.h): a scrape takes no lock a fetch waits on. Labels are fixed words (a
 * reason, a limit, a sink), never a secret's name or value, nor anything a peer sent: a name
 * would make one series per secret (unbounded) and tell whoever reads the metrics which secrets
 * exist. No plaintext. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin.h"
#include "clock.h"
#include "config.h"
#include "http.h"
#include "metrics.h"
#include "runtime.h"

/* Everything both views show, read once. */
struct snapshot {
	struct kura_custody_metrics cm;
	struct kura_resolver_stats rs;
	struct kura_recorder_stats as;
	double uptime;
};

static void take(struct kura_admin *d, struct snapshot *s)
{
	kura_custody_metrics(d->custody, &s->cm);
	kura_resolver_get_stats(d->resolver, &s->rs);
	kura_recorder_stats(d->rec, &s->as);
	s->uptime = kura_clock_s() - d->started;
}

static void fetch_metrics(struct kura_prom *p, const struct snapshot *s)
{
	char labels[128];

	kura_prom_head(p, "kura_fetches_total", "counter",
		"Secret fetches (GET /v1/secrets/NAME) answered, by result (ok, denied, error) "
		"and reason (the reply's error code); counted by the front, at most a second old.");
	for (size_t i = 0; i < KURA_FETCH_REASONS; i++) {
		snprintf(labels, sizeof(labels), "result=\"%s\",reason=\"%s\"",
			kura_fetch_result_name((enum kura_fetch_reason)i),
			kura_fetch_reason_name((enum kura_fetch_reason)i));
		kura_prom_u64(p, "kura_fetches_total", labels, s->cm.front.fetches[i]);
	}
	kura_prom_head(p, "kura_fetch_duration_seconds", "histogram",
		"Time from a fetch's request to its reply sent, as the front measures it (a "
		"runtime lookup included).");
	kura_prom_hist(p, "kura_fetch_duration_seconds", NULL, &s->cm.front.fetch_latency);
	kura_prom_head(p, "kura_runtime_lookup_duration_seconds", "histogram",
		"Time to resolve a workload's identity when the identity cache had no answer "
		"(asking its runtime through the net process).");
	kura_prom_hist(p, "kura_runtime_lookup_duration_seconds", NULL, &s->cm.lookup);
	kura_prom_one(p, "kura_identity_cache_hits_total", "counter",
		"Container identity lookups answered from the cache.", s->rs.hits);
	kura_prom_one(p, "kura_identity_cache_misses_total", "counter",
		"Container identity lookups the cache could not answer.", s->rs.misses);
	kura_prom_one(p, "kura_runtime_inspects_total", "counter",
		"Container inspections asked of the runtimes, retries included.", s->rs.inspects);
	kura_prom_one(p, "kura_runtime_watch_failures_total", "counter",
		"Runtime event streams that failed (each drops that runtime's cache).",
		s->rs.watch_failures);
}

static void workload_metrics(struct kura_prom *p, const struct snapshot *s)
{
	char labels[64];

	kura_prom_one(p, "kura_connections_open", "gauge",
		"Connections open on workload.sock (admitted, not evicted).",
		s->cm.quota.connections);
	kura_prom_one(p, "kura_watches_open", "gauge", "Long polls (GET /v1/watch) open.",
		s->cm.quota.watches);
	kura_prom_one(p, "kura_principals", "gauge",
		"Principals (containers, host users) the connection table holds.",
		s->cm.quota.principals);
	kura_prom_head(p, "kura_refusals_total", "counter",
		"Requests or connections refused by a limit of workload.sock: rate (429), "
		"peer_connections, connections (table full), peer_watches and watches (429), "
		"header_timeout.");
	for (size_t i = 0; i < KURA_LIMITS; i++) {
		snprintf(labels, sizeof(labels), "limit=\"%s\"",
			kura_limit_name((enum kura_limit)i));
		kura_prom_u64(p, "kura_refusals_total", labels, s->cm.front.refused[i]);
	}
	kura_prom_one(p, "kura_connections_evicted_total", "counter",
		"Connections closed to make room for another principal's.", s->cm.quota.evictions);
	kura_prom_one(p, "kura_refusals_suppressed_total", "counter",
		"Refusals counted into one audit record rather than recorded one by one.",
		s->cm.quota.suppressed);
}

static void audit_metrics(struct kura_prom *p, const struct snapshot *s)
{
	static const char *const heads[][3] = {
		{ "kura_audit_sink_queue_depth", "gauge",
			"Audit records waiting to be shipped (net: the key custody process's queue "
			"to the net process; a sink run by the net process has none shown)." },
		{ "kura_audit_sink_dropped_total", "counter",
			"Audit records a sink dropped from a full queue (the local log keeps them)." },
		{ "kura_audit_sink_failures_total", "counter",
			"Failed deliveries a sink reported (through the net process, one per spell "
			"of failures)." },
		{ "kura_audit_sink_up", "gauge", "1 if the sink's last delivery worked." },
	};
	char labels[64];

	kura_prom_one(p, "kura_audit_records_total", "counter",
		"Audit records written by this kurad since it started.", s->as.written);
	kura_prom_one(p, "kura_audit_write_failures_total", "counter",
		"Audit records that could not be written (what they recorded was refused).",
		s->as.failed);
	kura_prom_one(p, "kura_audit_healthy", "gauge", "1 if the last audit write worked.",
		s->as.healthy);
	kura_prom_one(p, "kura_audit_head_seq", "gauge", "The audit log's last record's seq.",
		s->as.head_seq);
	for (size_t h = 0; h < sizeof(heads) / sizeof(heads[0]); h++) {
		kura_prom_head(p, heads[h][0], heads[h][1], heads[h][2]);
		for (size_t i = 0; i < KURA_RECORDER_SINKS; i++) {
			const struct kura_recorder_sink *k = &s->as.sinks[i];
			const uint64_t v[] = { k->queued, k->dropped, k->failures, k->up };

			if (!k->name || (h == 0 && !k->queue_known))
				continue;
			snprintf(labels, sizeof(labels), "sink=\"%s\"", k->name);
			kura_prom_u64(p, heads[h][0], labels, v[h]);
		}
	}
}

static void process_metrics(struct kura_admin *d, struct kura_prom *p, const struct snapshot *s)
{
	char labels[192];

	kura_prom_one(p, "kura_store_revision", "gauge",
		"The store's revision, as far as the front was told.", (uint64_t)s->cm.revision);
	kura_prom_one(p, "kura_mirror_staleness_seconds", "gauge",
		"How far this host's copy of the store lags the fleet's: always 0, kura runs on a "
		"single host (no fleet mirror yet).",
		0);
	kura_prom_head(p, "kura_uptime_seconds", "gauge",
		"Seconds since the key custody process started serving.");
	kura_prom_sample(p, "kura_uptime_seconds", NULL, s->uptime);
	kura_prom_one(p, "kura_start_time_seconds", "gauge",
		"When the key custody process started serving, Unix seconds.",
		(uint64_t)d->started_wall);
	kura_prom_head(p, "kura_build_info", "gauge", "kurad's version, as a label; always 1.");
	kura_prom_label("version", KURA_VERSION, labels, sizeof(labels));
	kura_prom_u64(p, "kura_build_info", labels, 1);
}

enum MHD_Result kura_admin_metrics(struct kura_admin *d, struct MHD_Connection *c)
{
	struct kura_prom p = { 0 };
	struct MHD_Response *r;
	struct snapshot s;
	enum MHD_Result ret;

	take(d, &s);
	fetch_metrics(&p, &s);
	workload_metrics(&p, &s);
	audit_metrics(&p, &s);
	process_metrics(d, &p, &s);
	if (p.err || !p.buf) {
		free(p.buf);
		return kura_http_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal",
			"out of memory");
	}
	r = MHD_create_response_from_buffer(p.len, p.buf, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(p.buf);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
		"text/plain; version=0.0.4; charset=utf-8");
	MHD_add_response_header(r, "Cache-Control", "no-store");
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

bool kura_admin_runtime_known(const char *name)
{
	return strcmp(name, "docker") == 0 || strcmp(name, "podman") == 0;
}

const char *kura_admin_runtime_check(struct kura_runtime *rt)
{
	long status = 0;
	char *body = NULL;
	size_t len = 0;
	int r = kura_runtime_get(rt, "/_ping", 1000, &status, &body, &len);

	free(body);
	if (r == 0)
		return status == 200 ? NULL : "it answers, but not 200 to GET /_ping";
	switch (r) {
	case -EHOSTDOWN:
	case -ENOENT:
		return "no socket at that path";
	case -ECONNREFUSED:
		return "nobody listens on that socket, or kurad may not connect to it";
	case -ETIMEDOUT:
		return "no answer within a second";
	case -EPROTO:
	case -ECONNRESET:
		return "what listens there does not speak the runtime's HTTP API";
	default:
		return "it cannot be reached";
	}
}

/* Whether each runtime answers, a second each at most. */
static json_t *probe_runtimes(struct kura_admin *d)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < d->n_runtimes; i++) {
		const char *why = kura_admin_runtime_check(d->runtimes[i]);

		json_array_append_new(arr,
			json_pack("{s:s, s:s, s:b, s:b, s:s?}", "name", d->runtime_cfg[i].name,
				"endpoint", d->runtime_cfg[i].endpoint, "known",
				kura_admin_runtime_known(d->runtime_cfg[i].name), "answers", !why,
				"error", why));
	}
	return arr;
}

static json_t *sinks_json(const struct kura_recorder_stats *as)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < KURA_RECORDER_SINKS; i++) {
		const struct kura_recorder_sink *k = &as->sinks[i];

		if (k->name)
			json_array_append_new(arr,
				json_pack("{s:s, s:b, s:o, s:I, s:I, s:s?}", "name", k->name, "up",
					k->up, "queued",
					k->queue_known ? json_integer((json_int_t)k->queued) :
							 json_null(),
					"dropped", (json_int_t)k->dropped, "failures",
					(json_int_t)k->failures, "last_error",
					k->last_error[0] ? k->last_error : NULL));
	}
	return arr;
}

static json_t *fetches_json(const struct kura_front_metrics *f)
{
	json_t *o = json_object();
	uint64_t n = 0;

	for (size_t i = 0; o && i < KURA_FETCH_REASONS; i++) {
		json_object_set_new(o, kura_fetch_reason_name((enum kura_fetch_reason)i),
			json_integer((json_int_t)f->fetches[i]));
		n += f->fetches[i];
	}
	if (o)
		json_object_set_new(o, "total", json_integer((json_int_t)n));
	return o;
}

static json_t *refusals_json(const struct kura_front_metrics *f)
{
	json_t *o = json_object();

	for (size_t i = 0; o && i < KURA_LIMITS; i++)
		json_object_set_new(o, kura_limit_name((enum kura_limit)i),
			json_integer((json_int_t)f->refused[i]));
	return o;
}

static json_t *pid_or_null(pid_t pid)
{
	return pid > 0 ? json_integer(pid) : json_null();
}

/* What kurad is doing. The first keys are what kuractl and scripts have read all along. */
enum MHD_Result kura_admin_status(struct kura_admin *d, struct MHD_Connection *c)
{
	uint64_t probe = 0;
	struct snapshot s;
	json_t *j;

	if (!kura_http_query_u64(c, "probe", 0, 1, 0, &probe))
		return kura_http_error(c, MHD_HTTP_BAD_REQUEST, "bad_request", "probe is 0 or 1");
	take(d, &s);
	j = json_pack("{s:I, s:i, s:s, s:{s:I, s:I, s:I, s:I, s:I}, "
		      "s:{s:I, s:I, s:I, s:I, s:I, s:I}}",
		"revision", (json_int_t)s.cm.revision, "runtimes", (int)d->n_runtimes, "state_dir",
		d->state_dir, "identity", "hits", (json_int_t)s.rs.hits, "misses",
		(json_int_t)s.rs.misses, "inspects", (json_int_t)s.rs.inspects, "prefetches",
		(json_int_t)s.rs.prefetches, "events", (json_int_t)s.rs.events, "workload",
		"connections", (json_int_t)s.cm.quota.connections, "watches",
		(json_int_t)s.cm.quota.watches, "principals", (json_int_t)s.cm.quota.principals,
		"evictions", (json_int_t)s.cm.quota.evictions, "refused",
		(json_int_t)s.cm.quota.refused, "suppressed", (json_int_t)s.cm.quota.suppressed);
	if (!j)
		return kura_http_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal",
			"out of memory");
	json_object_set_new(j, "version", json_string(KURA_VERSION));
	json_object_set_new(j, "uptime_s", json_real(s.uptime));
	json_object_set_new(j, "started", json_integer(d->started_wall));
	json_object_set_new(j, "pids",
		json_pack("{s:o, s:i, s:o, s:o}", "supervisor", pid_or_null(d->supervisor_pid),
			"keeper", (int)getpid(), "front", pid_or_null(s.cm.front_pid), "net",
			pid_or_null(d->net_pid)));
	json_object_set_new(j, "audit",
		json_pack("{s:b, s:I, s:I, s:I}", "healthy", s.as.healthy, "head_seq",
			(json_int_t)s.as.head_seq, "written", (json_int_t)s.as.written, "failed",
			(json_int_t)s.as.failed));
	json_object_set_new(j, "sinks", sinks_json(&s.as));
	json_object_set_new(j, "fetches", fetches_json(&s.cm.front));
	json_object_set_new(j, "refusals", refusals_json(&s.cm.front));
	if (probe)
		json_object_set_new(j, "runtime_checks", probe_runtimes(d));
	return kura_http_json(c, MHD_HTTP_OK, j);
}

/* kurad's counters and latency histograms: kept with relaxed atomics where they are counted (a
 * fetch costs a few atomic adds, never a lock), carried from the front to the key custody
 * process in STATS (msg.h), and written out as Prometheus text on admin.sock's /metrics. Labels
 * are fixed words from the tables here: never a secret's value, name, or anything a peer sent.
 * No plaintext. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Why a fetch ended as it did: the error code its reply carries (wire.h), "ok", or "other". */
enum kura_fetch_reason {
	KURA_FETCH_OK,
	KURA_FETCH_NO_GRANT,
	KURA_FETCH_BAD_NAME,
	KURA_FETCH_RATE_LIMITED,
	KURA_FETCH_UNIDENTIFIED,
	KURA_FETCH_IDENTITY_MISMATCH,
	KURA_FETCH_NOT_FOUND,
	KURA_FETCH_RUNTIME_UNAVAILABLE,
	KURA_FETCH_STORE_UNAVAILABLE,
	KURA_FETCH_AUDIT_UNAVAILABLE,
	KURA_FETCH_BROKER_UNAVAILABLE,
	KURA_FETCH_OTHER,
	KURA_FETCH_REASONS,
};

/* The reason a reply's error code names (KURA_FETCH_OTHER for one not in the table). */
enum kura_fetch_reason kura_fetch_reason_of(const char *code);
/* Its label values: "ok", "denied" or "error" (as the audit log's result), and the reason. */
const char *kura_fetch_result_name(enum kura_fetch_reason r);
const char *kura_fetch_reason_name(enum kura_fetch_reason r);

/* Which of the workload socket's limits refused a request or a connection. */
enum kura_limit {
	KURA_LIMIT_RATE,             /* requests per second of one principal (429) */
	KURA_LIMIT_PEER_CONNECTIONS, /* open connections of one principal */
	KURA_LIMIT_CONNECTIONS,      /* the connection table full, nothing could give way */
	KURA_LIMIT_PEER_WATCHES,     /* long polls of one principal (429) */
	KURA_LIMIT_WATCHES,          /* long polls of the host (429) */
	KURA_LIMIT_HEADER_TIMEOUT,   /* a connection that sent no whole request in time */
	KURA_LIMITS,
};
const char *kura_limit_name(enum kura_limit l);

/* A latency histogram: counts per bucket (not cumulative) and the sum, in nanoseconds. */
#define KURA_HIST_BUCKETS 13 /* the bounds below, then +Inf */
struct kura_hist {
	uint64_t b[KURA_HIST_BUCKETS];
	uint64_t sum_ns;
};
void kura_hist_observe(struct kura_hist *h, uint64_t ns);
/* A copy made with atomic loads. */
void kura_hist_read(const struct kura_hist *h, struct kura_hist *ret);
uint64_t kura_hist_count(const struct kura_hist *h);

/* CLOCK_MONOTONIC in nanoseconds, for latencies. */
uint64_t kura_metrics_now_ns(void);

static inline void kura_count(uint64_t *c)
{
	__atomic_fetch_add(c, 1, __ATOMIC_RELAXED);
}

/* The front's counters, as it counts them and STATS carries them. */
struct kura_front_metrics {
	uint64_t fetches[KURA_FETCH_REASONS];
	uint64_t refused[KURA_LIMITS];
	struct kura_hist fetch_latency; /* request complete to reply sent, as the front sees it */
};
void kura_front_metrics_read(const struct kura_front_metrics *m, struct kura_front_metrics *ret);

/* Prometheus text exposition format (version 0.0.4), built up in memory. */
struct kura_prom {
	char *buf;
	size_t len, cap;
	int err;
};
/* "# HELP name help\n# TYPE name type\n"; help is plain ASCII without '\\' or newlines. */
void kura_prom_head(struct kura_prom *p, const char *name, const char *type, const char *help);
/* One sample: name{labels} value; labels (NULL: none) is "k=\"v\",..." made of words from
 * the tables here (so nothing needs escaping) or kura_prom_label's output. */
void kura_prom_sample(struct kura_prom *p, const char *name, const char *labels, double v);
void kura_prom_u64(struct kura_prom *p, const char *name, const char *labels, uint64_t v);
/* A family of one sample without labels: its head and its value. */
void kura_prom_one(struct kura_prom *p, const char *name, const char *type, const char *help,
	uint64_t v);
/* A histogram's _bucket, _sum and _count lines (seconds), with an extra label (or NULL). */
void kura_prom_hist(struct kura_prom *p, const char *name, const char *labels,
	const struct kura_hist *h);
/* k="v" with v escaped as the format wants (\\, \", \n) and cut at 128 bytes, into buf. */
const char *kura_prom_label(const char *k, const char *v, char *buf, size_t size);

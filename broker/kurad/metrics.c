/* kurad's counters and histograms (metrics.h) and the Prometheus text they are served as. No
 * plaintext. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "metrics.h"

static const struct {
	const char *code, *result;
} reasons[KURA_FETCH_REASONS] = {
	[KURA_FETCH_OK] = { "ok", "ok" },
	[KURA_FETCH_NO_GRANT] = { "no_grant", "denied" },
	[KURA_FETCH_BAD_NAME] = { "bad_name", "denied" },
	[KURA_FETCH_RATE_LIMITED] = { "rate_limited", "denied" },
	[KURA_FETCH_UNIDENTIFIED] = { "unidentified", "denied" },
	[KURA_FETCH_IDENTITY_MISMATCH] = { "identity_mismatch", "denied" },
	[KURA_FETCH_NOT_FOUND] = { "not_found", "error" },
	[KURA_FETCH_RUNTIME_UNAVAILABLE] = { "runtime_unavailable", "error" },
	[KURA_FETCH_STORE_UNAVAILABLE] = { "store_unavailable", "error" },
	[KURA_FETCH_AUDIT_UNAVAILABLE] = { "audit_unavailable", "error" },
	[KURA_FETCH_BROKER_UNAVAILABLE] = { "broker_unavailable", "error" },
	[KURA_FETCH_OTHER] = { "other", "error" },
};

static const char *const limits[KURA_LIMITS] = {
	[KURA_LIMIT_RATE] = "rate",
	[KURA_LIMIT_PEER_CONNECTIONS] = "peer_connections",
	[KURA_LIMIT_CONNECTIONS] = "connections",
	[KURA_LIMIT_PEER_WATCHES] = "peer_watches",
	[KURA_LIMIT_WATCHES] = "watches",
	[KURA_LIMIT_HEADER_TIMEOUT] = "header_timeout",
};

/* Upper bounds of the buckets, in seconds (then +Inf): a fetch served from the cache takes
 * tens of microseconds, one that asks a runtime milliseconds, one that times out seconds. */
static const double bounds[KURA_HIST_BUCKETS - 1] = { 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
	0.01, 0.025, 0.05, 0.1, 0.5, 2.5 };

enum kura_fetch_reason kura_fetch_reason_of(const char *code)
{
	if (!code)
		return KURA_FETCH_OTHER;
	for (size_t i = 0; i < KURA_FETCH_REASONS; i++)
		if (strcmp(code, reasons[i].code) == 0)
			return (enum kura_fetch_reason)i;
	return KURA_FETCH_OTHER;
}

const char *kura_fetch_result_name(enum kura_fetch_reason r)
{
	return reasons[r < KURA_FETCH_REASONS ? r : KURA_FETCH_OTHER].result;
}

const char *kura_fetch_reason_name(enum kura_fetch_reason r)
{
	return reasons[r < KURA_FETCH_REASONS ? r : KURA_FETCH_OTHER].code;
}

const char *kura_limit_name(enum kura_limit l)
{
	return l < KURA_LIMITS ? limits[l] : "unknown";
}

uint64_t kura_metrics_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void kura_hist_observe(struct kura_hist *h, uint64_t ns)
{
	double s = (double)ns / 1e9;
	size_t i = 0;

	while (i < KURA_HIST_BUCKETS - 1 && s > bounds[i])
		i++;
	__atomic_fetch_add(&h->b[i], 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&h->sum_ns, ns, __ATOMIC_RELAXED);
}

void kura_hist_read(const struct kura_hist *h, struct kura_hist *ret)
{
	for (size_t i = 0; i < KURA_HIST_BUCKETS; i++)
		ret->b[i] = __atomic_load_n(&h->b[i], __ATOMIC_RELAXED);
	ret->sum_ns = __atomic_load_n(&h->sum_ns, __ATOMIC_RELAXED);
}

uint64_t kura_hist_count(const struct kura_hist *h)
{
	uint64_t n = 0;

	for (size_t i = 0; i < KURA_HIST_BUCKETS; i++)
		n += h->b[i];
	return n;
}

void kura_front_metrics_read(const struct kura_front_metrics *m, struct kura_front_metrics *ret)
{
	for (size_t i = 0; i < KURA_FETCH_REASONS; i++)
		ret->fetches[i] = __atomic_load_n(&m->fetches[i], __ATOMIC_RELAXED);
	for (size_t i = 0; i < KURA_LIMITS; i++)
		ret->refused[i] = __atomic_load_n(&m->refused[i], __ATOMIC_RELAXED);
	kura_hist_read(&m->fetch_latency, &ret->fetch_latency);
}

/* ---- the text format ---- */

__attribute__((format(printf, 2, 3))) static void add(struct kura_prom *p, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (p->err)
		return;
	for (;;) {
		size_t room = p->cap - p->len;

		va_start(ap, fmt);
		n = vsnprintf(p->buf ? p->buf + p->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			p->err = -EINVAL;
			return;
		}
		if ((size_t)n < room) {
			p->len += (size_t)n;
			return;
		}
		size_t cap = p->cap ? p->cap * 2 : 4096;
		char *nb;

		while (cap - p->len <= (size_t)n)
			cap *= 2;
		nb = realloc(p->buf, cap);
		if (!nb) {
			p->err = -ENOMEM;
			return;
		}
		p->buf = nb;
		p->cap = cap;
	}
}

void kura_prom_head(struct kura_prom *p, const char *name, const char *type, const char *help)
{
	add(p, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void kura_prom_sample(struct kura_prom *p, const char *name, const char *labels, double v)
{
	add(p, "%s%s%s%s %.17g\n", name, labels ? "{" : "", labels ? labels : "", labels ? "}" : "",
		v);
}

void kura_prom_u64(struct kura_prom *p, const char *name, const char *labels, uint64_t v)
{
	add(p, "%s%s%s%s %" PRIu64 "\n", name, labels ? "{" : "", labels ? labels : "",
		labels ? "}" : "", v);
}

void kura_prom_one(struct kura_prom *p, const char *name, const char *type, const char *help,
	uint64_t v)
{
	kura_prom_head(p, name, type, help);
	kura_prom_u64(p, name, NULL, v);
}

void kura_prom_hist(struct kura_prom *p, const char *name, const char *labels,
	const struct kura_hist *h)
{
	const char *sep = labels ? "," : "";
	uint64_t cum = 0;

	labels = labels ? labels : "";
	for (size_t i = 0; i < KURA_HIST_BUCKETS; i++) {
		cum += h->b[i];
		if (i < KURA_HIST_BUCKETS - 1)
			add(p, "%s_bucket{%s%sle=\"%g\"} %" PRIu64 "\n", name, labels, sep,
				bounds[i], cum);
		else
			add(p, "%s_bucket{%s%sle=\"+Inf\"} %" PRIu64 "\n", name, labels, sep, cum);
	}
	add(p, "%s_sum%s%s%s %.9f\n", name, *labels ? "{" : "", labels, *labels ? "}" : "",
		(double)h->sum_ns / 1e9);
	add(p, "%s_count%s%s%s %" PRIu64 "\n", name, *labels ? "{" : "", labels, *labels ? "}" : "",
		cum);
}

const char *kura_prom_label(const char *k, const char *v, char *buf, size_t size)
{
	size_t n = 0;
	int w = snprintf(buf, size, "%s=\"", k);

	if (w < 0 || (size_t)w >= size) {
		buf[0] = '\0';
		return buf;
	}
	n = (size_t)w;
	for (size_t i = 0; v[i] && i < 128 && n + 4 < size; i++) {
		unsigned char ch = (unsigned char)v[i];

		if (ch == '\\' || ch == '"') {
			buf[n++] = '\\';
			buf[n++] = (char)ch;
		} else if (ch == '\n') {
			buf[n++] = '\\';
			buf[n++] = 'n';
		} else if (ch >= 0x20 && ch < 0x7f) {
			buf[n++] = (char)ch;
		} else {
			buf[n++] = '?'; /* the format is UTF-8; what we label with is ASCII */
		}
	}
	buf[n++] = '"';
	buf[n] = '\0';
	return buf;
}

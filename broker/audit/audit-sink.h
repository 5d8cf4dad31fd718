/* Ships audit records off the host as they are written: to syslog (RFC 5424, over a Unix datagram
 * socket or TCP) and to an HTTP collector (NDJSON POSTs), plus signed-off checkpoints of the
 * chain's tail. Records carry no secret values; nothing here touches plaintext. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KURA_SINK_MAC_BYTES 32u

/*
 * Zero numeric fields and NULL strings mean the default. Strings are copied by start.
 *
 * syslog:   NULL, "unix:PATH" (a datagram socket such as /dev/log; one RFC 5424 message per
 *           datagram) or "tcp:HOST:PORT" (RFC 5424 with RFC 6587 octet-counting framing; HOST is
 *           an IPv4 literal, "[IPv6]" literal or a name; a name is resolved with getaddrinfo on
 *           every connect, which the resolver's own timeouts bound, not timeout_ms: prefer a
 *           literal).
 * http_url: NULL, "http://..." or "https://..." (no user:password@: it would reach log lines
 *           and shipped records; certificates verified; proxies from the
 *           environment ignored), or "unix:/path/to/sock:/url-path" for a collector listening on
 *           a Unix socket.
 */
struct kura_sink_config {
	const char *syslog;
	const char *http_url;
	unsigned queue_max;    /* records queued per sink before dropping the oldest (a batch
				* being delivered is held besides); 10000 */
	unsigned batch_max;    /* records per HTTP POST (and per syslog wake-up); 500 */
	unsigned flush_ms;     /* how long a partial HTTP batch may wait; 200 */
	unsigned checkpoint_s; /* seconds between checkpoints; 10 */
	unsigned timeout_ms;   /* per connect, send or HTTP request; 2000 */
	const char *hostname;  /* syslog HOSTNAME and checkpoint "host": 1-255 printable ASCII
				* without space, '"' or '\\'; gethostname() */
};

enum kura_sink_event_kind {
	KURA_SINK_FAILED,    /* a delivery failed while the sink was up (or before its first one) */
	KURA_SINK_RECOVERED, /* the first delivery that worked after KURA_SINK_FAILED */
	KURA_SINK_DROPPED,   /* records were lost: dropped counts those since the last report */
};

struct kura_sink_event {
	enum kura_sink_event_kind kind;
	const char *sink; /* "syslog" or "http" */
	const char *
		detail; /* for FAILED: what went wrong ("HTTP 500", "connect(...): ..."); else "" */
	uint64_t dropped; /* for DROPPED */
};

/*
 * Called from a sink's thread with none of this module's locks held, so it may append an audit
 * record (and so re-enter kura_sinks_submit). Two sinks may call it at the same time: it must be
 * thread-safe. DROPPED is reported at most once a second per sink. Never called once
 * kura_sinks_stop has begun, so the caller may close its audit log around the stop.
 */
typedef void (*kura_sink_event_fn)(const struct kura_sink_event *e, void *userdata);

struct kura_sinks;

/*
 * Checks the config and starts one delivery thread per configured sink (one each, so that a
 * hung HTTP collector never delays syslog delivery and each keeps its own connection and backoff).
 * Both sinks NULL is valid: submit then does nothing. -EINVAL on a malformed spec or hostname,
 * with no thread started; -ENOMEM, or the -errno of pthread_create. The threads block all
 * signals. libcurl must have been initialised (kura_runtime_global_init) before any thread ran.
 * fn may be NULL.
 */
int kura_sinks_start(const struct kura_sink_config *c, kura_sink_event_fn fn, void *userdata,
	struct kura_sinks **ret);

/*
 * Queues a copy of one record (line without its '\n') for every sink, and remembers (seq, mac)
 * as the tail the next checkpoint pins. Called by the audit writer under its lock, in seq order:
 * it never blocks on I/O, only takes each sink's mutex for a pointer swap. When a sink's queue
 * holds queue_max records the OLDEST is dropped and counted: the newest records are the ones
 * about what is happening now (an intrusion in progress) and the ones an intruder would most like
 * to stop from leaving the host, while the older ones are already pinned by earlier checkpoints
 * against the local, MAC-chained log. notable (a denial or error) raises the syslog severity from
 * info to warning. NULL s is a no-op.
 */
void kura_sinks_submit(struct kura_sinks *s, const char *line, size_t len, uint64_t seq,
	const uint8_t mac[KURA_SINK_MAC_BYTES], bool notable);

/*
 * Delivers what is queued, and a final checkpoint of the last submitted (seq, mac) if any record
 * was submitted, for at most flush_ms (I/O in flight when stop is called may take up to
 * timeout_ms more for syslog; an HTTP request is cut at the deadline), then joins the threads and
 * frees everything. Records still undelivered then are lost. NULL is fine. Must not be called
 * concurrently with kura_sinks_submit on the same s.
 */
void kura_sinks_stop(struct kura_sinks *s, unsigned flush_ms);

struct kura_sink_stats {
	uint64_t sent;     /* records (not checkpoints) acknowledged: accepted by the kernel for
			    * syslog, answered 2xx for HTTP */
	uint64_t dropped;  /* records dropped from a full queue (or for want of memory) */
	uint64_t failures; /* delivery attempts that failed */
	uint64_t queued;   /* records waiting, including those in a batch being tried */
	bool up;           /* the last attempt worked (true before the first one) */
};

/* A snapshot of sink "syslog" or "http"; all zero (and up false) for one not configured. */
void kura_sinks_stats(struct kura_sinks *s, const char *sink, struct kura_sink_stats *ret);

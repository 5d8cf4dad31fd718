/* kurad's side of the audit log: opening it at start, one record per event, failing closed
 * when it cannot be written, and a timer that evolves the key of an idle log. No plaintext
 * here: records carry a value's keyed fingerprint at most. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "audit-internal.h"
#include "audit-sink.h"
#include "cgroup.h"
#include "daemon.h"

/* The first failure of a spell is logged, then its end: not one line per refused fetch. */
static void note_result(struct kura_daemon *d, int r)
{
	bool was;

	pthread_mutex_lock(&d->audit_lock);
	was = d->audit_failing;
	d->audit_failing = r < 0;
	pthread_mutex_unlock(&d->audit_lock);
	if (r < 0 && !was)
		kura_log(LOG_ERR, "cannot write the audit log in %s (%s): secrets are refused "
				  "(503) until it can be written",
			d->audit_dir,
			r == -ESTALE    ? "its file was replaced or removed" :
			r == -ETIMEDOUT ? "a write is stuck" :
					  strerror(-r));
	else if (r >= 0 && was)
		kura_log(LOG_NOTICE, "the audit log can be written again; serving secrets");
}

int kura_daemon_audit(struct kura_daemon *d, const struct kura_audit_event *e)
{
	json_t *f = kura_audit_event_fields(e);
	int r;

	if (!f)
		r = -ENOMEM;
	else
		r = kura_audit_append(d->audit, f, NULL);
	json_decref(f);
	note_result(d, r);
	return r;
}

bool kura_daemon_audit_healthy(struct kura_daemon *d)
{
	struct kura_identity self = kura_identity_self();
	bool ok;

	pthread_mutex_lock(&d->audit_lock);
	ok = !d->audit_failing;
	pthread_mutex_unlock(&d->audit_lock);
	if (ok)
		return true;
	/* Only a write shows that the log works again, and only a fetch used to make one: an
	 * operator's retry, refused up front, stayed refused for as long as no container came.
	 * The record that ends the spell is evidence of it too. */
	return kura_daemon_audit(d, &(struct kura_audit_event){ .event = "audit-recovered",
		.result = "ok", .who = &self }) == 0;
}

void kura_daemon_audit_self(struct kura_daemon *d, const char *event, const char *detail)
{
	struct kura_identity self = kura_identity_self();

	(void)kura_daemon_audit(d, &(struct kura_audit_event){ .event = event, .result = "ok",
		.who = &self, .detail = detail });
}

int kura_daemon_audit_suppressed(struct kura_daemon *d, const struct kura_refusal_note *n)
{
	struct kura_identity who = { .pid = n->pid, .uid = n->uid, .gid = n->gid };
	char principal[KURA_PRINCIPAL_TEXT];

	/* The principal, not a verified identity: these peers were refused, most of them before
	 * anyone asked a runtime who they are. */
	if (n->principal.kind == KURA_PRINCIPAL_CONTAINER) {
		who.runtime = kura_cgroup_runtime_name(n->principal.runtime);
		who.container_id = n->principal.id;
	}
	return kura_daemon_audit(d, &(struct kura_audit_event){ .event = "suppressed",
		.result = "denied", .reason = n->reason[0] ? n->reason : NULL, .who = &who,
		.detail = kura_principal_text(&n->principal, principal), .count = (int64_t)n->count,
		.has_count = true });
}

static void write_suppressed(const struct kura_refusal_note *n, void *userdata)
{
	(void)kura_daemon_audit_suppressed(userdata, n);
}

void kura_daemon_audit_flush(struct kura_daemon *d, bool all)
{
	if (d->quota && d->audit)
		kura_quota_flush(d->quota, kura_clock_s(), all, write_suppressed, d);
}

/* Evolves the key of a quiet log on time, so no key outlives seconds_per_epoch; writes the
 * refusals counted in the last second. */
static void *tick_thread(void *userdata)
{
	struct kura_daemon *d = userdata;

	for (;;) {
		struct timespec ts;
		int r;

		pthread_mutex_lock(&d->rev_lock);
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec++;
		while (!d->stopping &&
			pthread_cond_timedwait(&d->rev_cond, &d->rev_lock, &ts) != ETIMEDOUT)
			;
		if (d->stopping) {
			pthread_mutex_unlock(&d->rev_lock);
			return NULL;
		}
		pthread_mutex_unlock(&d->rev_lock);
		kura_daemon_audit_flush(d, false);
		r = kura_audit_tick(d->audit);
		if (r < 0)
			note_result(d, r);
	}
}

/* A sink's trouble is evidence too: it goes into the log (and so to the other sink). */
static void sink_event(const struct kura_sink_event *e, void *userdata)
{
	struct kura_daemon *d = userdata;
	struct kura_identity self = kura_identity_self();
	struct kura_audit_event ev = { .who = &self, .sink = e->sink };

	switch (e->kind) {
	case KURA_SINK_FAILED:
		kura_log(LOG_WARNING, "audit sink %s failed: %s; retrying", e->sink, e->detail);
		ev.event = "sink-failure";
		ev.result = "error";
		ev.reason = "sink_failed";
		ev.detail = e->detail;
		break;
	case KURA_SINK_RECOVERED:
		kura_log(LOG_NOTICE, "audit sink %s delivers again", e->sink);
		ev.event = "sink-recovered";
		ev.result = "ok";
		break;
	case KURA_SINK_DROPPED:
		kura_log(LOG_WARNING, "audit sink %s dropped %llu records (its queue was full)",
			e->sink, (unsigned long long)e->dropped);
		ev.event = "sink-drop";
		ev.result = "error";
		ev.reason = "dropped";
		ev.count = (int64_t)e->dropped;
		ev.has_count = true;
		break;
	}
	(void)kura_daemon_audit(d, &ev);
}

static void tap(const char *line, size_t len, uint64_t seq, const uint8_t mac[KURA_AUDIT_MAC_BYTES],
	bool notable, void *userdata)
{
	kura_sinks_submit(userdata, line, len, seq, mac, notable);
}

/* Whether line is one of kurad's own start or stop records. */
static bool lifecycle(const uint8_t *l, size_t n)
{
	return (memmem(l, n, "\"event\":\"start\"", 15) || memmem(l, n, "\"event\":\"stop\"", 14)) &&
		memmem(l, n, "\"host\":true", 11);
}

/*
 * Records written while no kurad ran (kuractl working offline) were never shipped: send what
 * follows the last start or stop record of a kurad, from the newest file (and the one before it
 * if need be). After a crash this resends what that kurad shipped after its start: receivers
 * see a seq twice, which they can tell; losing records would be worse.
 */
static void ship_backlog(struct kura_daemon *d)
{
	_cleanup_free_ uint64_t *files = NULL;
	_cleanup_close_ int dirfd = -1;
	size_t n = 0, first;
	uint64_t shipped = 0;

	dirfd = open(d->audit_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0 || kura_audit_list_files(dirfd, &files, &n) < 0 || n == 0)
		return;
	first = n >= 2 ? n - 2 : 0;
	for (int pass = 0; pass < 2; pass++) {
		bool seen = false; /* pass 0 finds the boundary, pass 1 ships after it */
		uint64_t boundary = 0;

		for (size_t i = first; i < n; i++) {
			_cleanup_free_ uint8_t *buf = NULL;
			_cleanup_close_ int fd = -1;
			const uint8_t *l;
			size_t len, pos = 0, ll;
			char name[32];
			bool complete;

			kura_audit_file_name(files[i], name);
			fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
			if (fd < 0 || kura_audit_read_all(fd, &buf, &len) < 0)
				continue;
			while (kura_audit_next_line(buf, len, &pos, &l, &ll, &complete) && complete) {
				struct rec rc;

				if (kura_audit_rec_parse(l, ll, &rc) < 0)
					continue;
				if (pass == 0 && lifecycle(l, ll)) {
					boundary = rc.seq;
					seen = true;
				}
				if (pass == 1 && rc.seq > shipped) {
					kura_sinks_submit(d->sinks, (const char *)l, ll, rc.seq, rc.mac,
						memmem(l, ll, "\"result\":\"denied\"", 17) ||
							memmem(l, ll, "\"result\":\"error\"", 16));
				}
				kura_audit_rec_done(&rc);
			}
		}
		if (pass == 0)
			shipped = seen ? boundary : 0;
	}
}

static int start_sinks(struct kura_daemon *d)
{
	struct kura_sink_config sc = {
		.syslog = d->cfg.audit_syslog,
		.http_url = d->cfg.audit_http,
		.checkpoint_s = d->cfg.audit_checkpoint_s,
		.queue_max = d->cfg.audit_queue_max,
	};
	int r;

	if (!sc.syslog && !sc.http_url)
		return 0;
	r = kura_sinks_start(&sc, sink_event, d, &d->sinks);
	if (r < 0) {
		/* The settings are not echoed: a mistyped URL may hold a credential. */
		kura_log(LOG_ERR, "cannot start the audit sinks: %s",
			r == -EINVAL ? "audit-syslog must be unix:PATH or tcp:HOST:PORT, and "
				       "audit-http an http(s) URL without user:password@ or "
				       "unix:SOCK:/PATH" :
				       strerror(-r));
		return r;
	}
	ship_backlog(d);
	kura_audit_set_tap(d->audit, tap, d->sinks);
	return 0;
}

int kura_daemon_audit_start(struct kura_daemon *d)
{
	int r;

	pthread_mutex_init(&d->audit_lock, NULL);
	r = kura_audit_dir(d->cfg.state_dir, d->audit_dir, sizeof(d->audit_dir));
	if (r == 0)
		r = kura_audit_open(d->audit_dir, &d->cfg.audit, &d->audit);
	if (r < 0) {
		kura_log(LOG_ERR, "cannot open the audit log %s: %s", d->audit_dir,
			r == -ENOENT  ? "it does not exist (kuractl init creates it)" :
			r == -EBUSY   ? "another process holds it" :
			r == -EBADMSG ? "its last records do not verify; refusing to extend a "
					"broken chain (kuractl audit verify)" :
					strerror(-r));
		return r;
	}
	r = start_sinks(d);
	if (r < 0)
		return r;
	r = pthread_create(&d->audit_thread, NULL, tick_thread, d);
	if (r != 0)
		return -r;
	d->audit_thread_started = true;
	return 0;
}

void kura_daemon_audit_stop(struct kura_daemon *d)
{
	/* The caller has set `stopping` and woken rev_cond. */
	if (d->audit_thread_started)
		pthread_join(d->audit_thread, NULL);
	/* The last records (stop among them) and a final checkpoint leave before we go. */
	if (d->audit && d->sinks)
		kura_audit_set_tap(d->audit, NULL, NULL);
	kura_sinks_stop(d->sinks, 2000);
	d->sinks = NULL;
	kura_audit_close(d->audit);
	d->audit = NULL;
}

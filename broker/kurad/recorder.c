/* kurad's audit recorder: opening the log at start, one record per event, failing closed
 * when it cannot be written, a timer that evolves the key of an idle log, and the sinks. No
 * plaintext here: records carry a value's keyed fingerprint at most. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "audit-internal.h"
#include "audit-sink.h"
#include "clock.h"
#include "log.h"
#include "net.h"
#include "recorder.h"

struct kura_recorder {
	struct kura_recorder_config cfg;
	struct kura_audit *audit;
	struct kura_sinks *sinks;
	char dir[4096];
	pthread_mutex_t lock; /* failing, stopping */
	pthread_cond_t cond;  /* the timer waits on it (CLOCK_MONOTONIC) */
	bool failing;
	bool stopping;
	pthread_t timer;
	bool timer_started;
	bool remote;              /* the net process's sinks were started */
	uint64_t written, failed; /* atomics */
	struct kura_recorder_sink shown[KURA_RECORDER_SINKS]; /* under lock; as reported */
};

/* kurad as its own records name it. */
static struct kura_identity self_of(const struct kura_recorder *rec)
{
	struct kura_identity self = kura_identity_self();

	if (rec->cfg.self_pid > 0)
		self.pid = rec->cfg.self_pid;
	return self;
}

/* The first failure of a spell is logged, then its end: not one line per refused fetch. */
static void note_result(struct kura_recorder *rec, int r)
{
	bool was;

	pthread_mutex_lock(&rec->lock);
	was = rec->failing;
	rec->failing = r < 0;
	pthread_mutex_unlock(&rec->lock);
	if (r < 0 && !was)
		kura_log(LOG_ERR,
			"cannot write the audit log in %s (%s): secrets are refused "
			"(503) until it can be written",
			rec->dir,
			r == -ESTALE            ? "its file was replaced or removed" :
				r == -ETIMEDOUT ? "a write is stuck" :
						  strerror(-r));
	else if (r >= 0 && was)
		kura_log(LOG_NOTICE, "the audit log can be written again; serving secrets");
}

int kura_recorder_append(struct kura_recorder *rec, const struct kura_audit_event *e)
{
	int r = kura_audit_append_event(rec->audit, e, NULL);

	__atomic_fetch_add(r < 0 ? &rec->failed : &rec->written, 1, __ATOMIC_RELAXED);
	note_result(rec, r);
	return r;
}

bool kura_recorder_healthy(struct kura_recorder *rec)
{
	struct kura_identity self = self_of(rec);
	bool ok;

	pthread_mutex_lock(&rec->lock);
	ok = !rec->failing;
	pthread_mutex_unlock(&rec->lock);
	if (ok)
		return true;
	/* Only a write shows that the log works again, and only a fetch used to make one: an
	 * operator's retry, refused up front, stayed refused for as long as no container came.
	 * The record that ends the spell is evidence of it too. */
	return kura_recorder_append(rec,
		       &(struct kura_audit_event){ .event = "audit-recovered",
			       .result = "ok",
			       .who = &self }) == 0;
}

void kura_recorder_self(struct kura_recorder *rec, const char *event, const char *detail)
{
	struct kura_identity self = self_of(rec);

	(void)kura_recorder_append(rec,
		&(struct kura_audit_event){ .event = event,
			.result = "ok",
			.who = &self,
			.detail = detail });
}

/* The bytes of the log's files. */
static uint64_t log_bytes(const char *dir)
{
	_cleanup_free_ uint64_t *files = NULL;
	_cleanup_close_ int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	uint64_t total = 0;
	size_t n = 0;

	if (dirfd < 0 || kura_audit_list_files(dirfd, &files, &n) < 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char name[32];
		struct stat st;

		kura_audit_file_name(files[i], name);
		if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
			total += (uint64_t)st.st_size;
	}
	return total;
}

/*
 * Retention, when configured (looked at every ten seconds): the old whole files move to a new
 * directory in archive_dir (kura_audit_archive verifies them first: their structure, as the
 * starting key is not here), and the move is on record. Without the starting key the start point
 * carries no key commitment; the operator's verify with the key still checks every MAC of both
 * halves.
 */
static void maybe_archive(struct kura_recorder *rec)
{
	static const char all[] = "9999-12-31T23:59:59.999999Z";
	char before[KURA_RFC3339_LEN], dest[4096], stamp[KURA_RFC3339_LEN], why[256];
	struct kura_identity self = self_of(rec);
	struct kura_audit_archived a;
	char detail[4400];
	int r;

	if (!rec->cfg.archive_dir || (!rec->cfg.archive_days && !rec->cfg.archive_bytes))
		return;
	if (rec->cfg.archive_bytes && log_bytes(rec->dir) > rec->cfg.archive_bytes) {
		snprintf(before, sizeof(before), "%s", all);
	} else if (rec->cfg.archive_days) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec -= (time_t)rec->cfg.archive_days * 86400;
		kura_rfc3339_us(&ts, before);
	} else {
		return;
	}
	if (mkdir(rec->cfg.archive_dir, 0700) < 0 && errno != EEXIST) {
		kura_log(LOG_WARNING, "audit archive: cannot make %s: %m", rec->cfg.archive_dir);
		return;
	}
	kura_rfc3339_now_us(stamp);
	snprintf(dest, sizeof(dest), "%s/audit-%s", rec->cfg.archive_dir, stamp);
	r = kura_audit_archive(rec->dir, dest, before, NULL, &a, why);
	if (r == 0 && a.files == 0)
		return; /* dest was not made */
	if (r < 0) {
		(void)unlinkat(AT_FDCWD, dest, AT_REMOVEDIR); /* if it is still empty */
		kura_log(LOG_WARNING, "audit archive to %s failed: %s", dest,
			why[0] ? why : strerror(-r));
		snprintf(detail, sizeof(detail), "%s", why[0] ? why : strerror(-r));
	} else {
		kura_log(LOG_NOTICE,
			"audit archive: %" PRIu64 " files (records %" PRIu64 "-%" PRIu64
			") moved to %s",
			a.files, a.first_seq, a.last_seq, dest);
		snprintf(detail, sizeof(detail),
			"files %" PRIu64 "-%" PRIu64 " (records %" PRIu64 "-%" PRIu64 ") to %s",
			a.first_file, a.last_file, a.first_seq, a.last_seq, dest);
	}
	(void)kura_recorder_append(rec,
		&(struct kura_audit_event){ .event = "audit-archive",
			.result = r < 0 ? "error" : "ok",
			.reason = r < 0 ? "archive_failed" : NULL,
			.who = &self,
			.detail = detail });
}

/* Evolves the key of a quiet log on time, so no key outlives seconds_per_epoch; every ten
 * seconds, archives what retention says is old. */
static void *tick_thread(void *userdata)
{
	struct kura_recorder *rec = userdata;
	unsigned ticks = 0;

	for (;;) {
		struct timespec ts;
		int r;

		pthread_mutex_lock(&rec->lock);
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec++;
		while (!rec->stopping &&
			pthread_cond_timedwait(&rec->cond, &rec->lock, &ts) != ETIMEDOUT)
			;
		if (rec->stopping) {
			pthread_mutex_unlock(&rec->lock);
			return NULL;
		}
		pthread_mutex_unlock(&rec->lock);
		r = kura_audit_tick(rec->audit);
		if (r < 0)
			note_result(rec, r);
		if (++ticks % 10 == 1)
			maybe_archive(rec);
	}
}

/* The slot of the sink called name (syslog, http, net), for its counters. */
static struct kura_recorder_sink *sink_slot(struct kura_recorder *rec, const char *name)
{
	static const char *const names[KURA_RECORDER_SINKS] = { "syslog", "http", "net" };

	for (size_t i = 0; i < KURA_RECORDER_SINKS; i++)
		if (name && strcmp(name, names[i]) == 0) {
			rec->shown[i].name = names[i];
			return &rec->shown[i];
		}
	return NULL;
}

static void note_sink_event(struct kura_recorder *rec, const struct kura_sink_event *e)
{
	struct kura_recorder_sink *s;

	pthread_mutex_lock(&rec->lock);
	s = sink_slot(rec, e->sink);
	if (s && e->kind == KURA_SINK_FAILED) {
		s->up = false;
		s->failures++;
		snprintf(s->last_error, sizeof(s->last_error), "%s", e->detail ? e->detail : "");
	} else if (s && e->kind == KURA_SINK_RECOVERED) {
		s->up = true;
	} else if (s) {
		s->dropped += e->dropped;
	}
	pthread_mutex_unlock(&rec->lock);
}

void kura_recorder_stats(struct kura_recorder *rec, struct kura_recorder_stats *ret)
{
	uint8_t mac[KURA_AUDIT_MAC_BYTES];

	*ret = (struct kura_recorder_stats){
		.written = __atomic_load_n(&rec->written, __ATOMIC_RELAXED),
		.failed = __atomic_load_n(&rec->failed, __ATOMIC_RELAXED),
	};
	kura_audit_last(rec->audit, &ret->head_seq, mac);
	pthread_mutex_lock(&rec->lock);
	ret->healthy = !rec->failing;
	/* A configured sink is shown from the start, up until it says otherwise. */
	if (rec->cfg.syslog && !rec->shown[0].name)
		*sink_slot(rec, "syslog") = (struct kura_recorder_sink){ .name = "syslog",
			.up = true };
	if (rec->cfg.http && !rec->shown[1].name)
		*sink_slot(rec, "http") = (struct kura_recorder_sink){ .name = "http", .up = true };
	if (rec->remote && !rec->shown[2].name)
		*sink_slot(rec, "net") = (struct kura_recorder_sink){ .name = "net", .up = true };
	memcpy(ret->sinks, rec->shown, sizeof(ret->sinks));
	pthread_mutex_unlock(&rec->lock);
	for (size_t i = 0; i < KURA_RECORDER_SINKS; i++) {
		struct kura_recorder_sink *s = &ret->sinks[i];
		struct kura_sink_stats st;

		if (!s->name)
			continue;
		if (rec->remote && i == 2) {
			s->queued = kura_net_sinks_queued(rec->cfg.net);
			s->queue_known = true;
		} else if (!rec->remote && rec->sinks) {
			/* Here, the sinks' own counters are exact. */
			kura_sinks_stats(rec->sinks, s->name, &st);
			s->queued = st.queued;
			s->queue_known = true;
			s->dropped = st.dropped;
			s->failures = st.failures;
			s->up = st.up;
		}
	}
}

/* A sink's trouble is evidence too: it goes into the log (and so to the other sink). */
static void sink_event(const struct kura_sink_event *e, void *userdata)
{
	struct kura_recorder *rec = userdata;
	struct kura_identity self = self_of(rec);
	struct kura_audit_event ev = { .who = &self, .sink = e->sink };

	note_sink_event(rec, e);
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
	(void)kura_recorder_append(rec, &ev);
}

/* To the sinks, here or in the net process. */
static void submit(struct kura_recorder *rec, const char *line, size_t len, uint64_t seq,
	const uint8_t mac[KURA_AUDIT_MAC_BYTES], bool notable)
{
	if (rec->cfg.net)
		kura_net_sinks_submit(rec->cfg.net, line, len, seq, mac, notable);
	else
		kura_sinks_submit(rec->sinks, line, len, seq, mac, notable);
}

static void tap(const char *line, size_t len, uint64_t seq, const uint8_t mac[KURA_AUDIT_MAC_BYTES],
	bool notable, void *userdata)
{
	submit(userdata, line, len, seq, mac, notable);
}

/* Whether line is one of kurad's own start or stop records. */
static bool lifecycle(const uint8_t *l, size_t n)
{
	return (memmem(l, n, "\"event\":\"start\"", 15) ||
		       memmem(l, n, "\"event\":\"stop\"", 14)) &&
		memmem(l, n, "\"host\":true", 11);
}

/*
 * Records written while no kurad ran (kuractl working offline) were never shipped: send what
 * follows the last start or stop record of a kurad, from the newest file (and the one before it
 * if need be). After a crash this resends what that kurad shipped after its start: receivers
 * see a seq twice, which they can tell; losing records would be worse.
 */
static void ship_backlog(struct kura_recorder *rec)
{
	_cleanup_free_ uint64_t *files = NULL;
	_cleanup_close_ int dirfd = -1;
	size_t n = 0, first;
	uint64_t shipped = 0;

	dirfd = open(rec->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
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
			while (kura_audit_next_line(buf, len, &pos, &l, &ll, &complete) &&
				complete) {
				struct rec rc;

				if (kura_audit_rec_parse(l, ll, &rc) < 0)
					continue;
				if (pass == 0 && lifecycle(l, ll)) {
					boundary = rc.seq;
					seen = true;
				}
				if (pass == 1 && rc.seq > shipped) {
					submit(rec, (const char *)l, ll, rc.seq, rc.mac,
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

static int start_sinks(struct kura_recorder *rec)
{
	struct kura_sink_config sc = {
		.syslog = rec->cfg.syslog,
		.http_url = rec->cfg.http,
		.checkpoint_s = rec->cfg.checkpoint_s,
		.queue_max = rec->cfg.queue_max,
	};
	int r;

	if (rec->cfg.net) {
		r = kura_net_sinks_start(rec->cfg.net, rec->cfg.queue_max, sink_event, rec);
		if (r < 0) {
			kura_log(LOG_ERR, "cannot start the audit sinks' sender: %s", strerror(-r));
			return r;
		}
		rec->remote = true;
		ship_backlog(rec);
		kura_audit_set_tap(rec->audit, tap, rec);
		return 0;
	}
	if (!sc.syslog && !sc.http_url)
		return 0;
	r = kura_sinks_start(&sc, sink_event, rec, &rec->sinks);
	if (r < 0) {
		/* The settings are not echoed: a mistyped URL may hold a credential. */
		kura_log(LOG_ERR, "cannot start the audit sinks: %s",
			r == -EINVAL ? "audit-syslog must be unix:PATH or tcp:HOST:PORT, and "
				       "audit-http an http(s) URL without user:password@ or "
				       "unix:SOCK:/PATH" :
				       strerror(-r));
		return r;
	}
	ship_backlog(rec);
	kura_audit_set_tap(rec->audit, tap, rec);
	return 0;
}

int kura_recorder_start(const struct kura_recorder_config *c, struct kura_recorder **ret)
{
	struct kura_recorder *rec = calloc(1, sizeof(*rec));
	pthread_condattr_t ca;
	int r;

	if (!rec)
		return -ENOMEM;
	rec->cfg = *c;
	pthread_mutex_init(&rec->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&rec->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (!c->archive_dir != !(c->archive_days || c->archive_bytes)) {
		kura_log(LOG_ERR,
			"audit-archive-dir goes with audit-archive-days or "
			"audit-archive-mb, and they with it");
		kura_recorder_stop(rec);
		return -EINVAL;
	}
	r = kura_audit_dir(c->state_dir, rec->dir, sizeof(rec->dir));
	if (r == 0)
		r = kura_audit_open(rec->dir, c->audit, &rec->audit);
	if (r < 0) {
		kura_log(LOG_ERR, "cannot open the audit log %s: %s", rec->dir,
			r == -ENOENT ? "it does not exist (kuractl init creates it)" :
				r == -EBUSY ?
				       "another process holds it" :
				r == -EBADMSG ?
				       "its last records do not verify; refusing to extend a "
				       "broken chain (kuractl audit verify)" :
				       strerror(-r));
		kura_recorder_stop(rec);
		return r;
	}
	r = start_sinks(rec);
	if (r == 0) {
		r = -pthread_create(&rec->timer, NULL, tick_thread, rec);
		rec->timer_started = r == 0;
	}
	if (r < 0) {
		kura_recorder_stop(rec);
		return r;
	}
	*ret = rec;
	return 0;
}

void kura_recorder_stop(struct kura_recorder *rec)
{
	if (!rec)
		return;
	pthread_mutex_lock(&rec->lock);
	rec->stopping = true;
	pthread_cond_broadcast(&rec->cond);
	pthread_mutex_unlock(&rec->lock);
	if (rec->timer_started)
		pthread_join(rec->timer, NULL);
	/* The last records (stop among them) and a final checkpoint leave before we go. */
	if (rec->audit && (rec->sinks || rec->remote))
		kura_audit_set_tap(rec->audit, NULL, NULL);
	kura_sinks_stop(rec->sinks, 2000);
	if (rec->remote)
		kura_net_sinks_stop(rec->cfg.net, 2000);
	kura_audit_close(rec->audit);
	pthread_mutex_destroy(&rec->lock);
	pthread_cond_destroy(&rec->cond);
	free(rec);
}

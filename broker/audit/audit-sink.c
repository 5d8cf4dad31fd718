/* Off-host audit shipping: bounded per-sink queues fed by the audit writer, one delivery thread
 * per sink (syslog over a Unix datagram socket or TCP, HTTP via libcurl), retries with backoff and
 * periodic checkpoints. Records never carry secret values. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <sodium.h>

#include "base64.h"
#include "audit-sink.h"
#include "clock.h"
#include "fdio.h"

#define FACILITY_AUTHPRIV 10
#define SEV_WARNING 4
#define SEV_NOTICE 5
#define SEV_INFO 6
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define DROP_REPORT_MS 1000
#define NEVER INT64_MAX

enum sink_kind {
	SYSLOG_UNIX,
	SYSLOG_TCP,
	HTTP,
};

/* One queued record, or a checkpoint (which lives outside the queue, in sink.cp). */
struct rec {
	struct rec *next;
	uint64_t seq;
	int64_t queued_ms;
	struct timespec wall;
	bool notable, checkpoint;
	size_t len;
	char line[];
};

struct sink {
	struct kura_sinks *top;
	const char *name;
	enum sink_kind kind;
	char *addr; /* socket path, host, or URL */
	char *port; /* TCP port, or the Unix socket of an HTTP collector */
	pthread_t thread;
	bool started;

	pthread_mutex_t lock; /* guards everything down to `up` */
	pthread_cond_t cond;
	struct rec *head, *tail;
	unsigned count;
	unsigned in_batch;
	struct rec *cp; /* latest checkpoint not yet taken into a batch: latest wins */
	uint64_t sent, dropped, failures, drop_pending;
	bool up;
	int64_t stop_at; /* monotonic deadline once stop has begun, 0 before; atomic */

	/* the thread's own */
	int fd;
	CURLM *multi; /* made and freed by the API's thread, so stop can wake it safely */
	CURL *curl;
	struct curl_slist *headers;
	char *buf;
	size_t buf_cap;
	char errbuf[CURL_ERROR_SIZE];
	bool cp_any;
	uint64_t cp_seq;
	uint8_t cp_mac[KURA_SINK_MAC_BYTES];
	int64_t next_cp, last_drop_report;
	unsigned rng;
};

struct kura_sinks {
	unsigned queue_max, batch_max, flush_ms, checkpoint_s, timeout_ms;
	char hostname[256];
	int pid;
	kura_sink_event_fn fn;
	void *userdata;

	pthread_mutex_t last_lock;
	bool have_last;
	uint64_t last_seq;
	uint8_t last_mac[KURA_SINK_MAC_BYTES];

	struct sink sinks[2];
	unsigned n;
};

static bool hostname_ok(const char *h)
{
	size_t n = strlen(h);

	if (n == 0 || n > 255)
		return false;
	for (size_t i = 0; i < n; i++)
		if (h[i] <= 32 || h[i] >= 127 || h[i] == '"' || h[i] == '\\')
			return false;
	return true;
}

static bool port_ok(const char *p)
{
	unsigned long v = 0;

	if (!*p || strlen(p) > 5)
		return false;
	for (const char *q = p; *q; q++) {
		if (*q < '0' || *q > '9')
			return false;
		v = v * 10 + (unsigned long)(*q - '0');
	}
	return v >= 1 && v <= 65535;
}

static bool unix_path_ok(const char *p, size_t n)
{
	return n > 0 && n < sizeof(((struct sockaddr_un *)NULL)->sun_path);
}

static int parse_syslog(struct sink *k, const char *spec)
{
	const char *colon;

	if (strncmp(spec, "unix:", 5) == 0) {
		if (!unix_path_ok(spec + 5, strlen(spec + 5)))
			return -EINVAL;
		k->kind = SYSLOG_UNIX;
		k->addr = strdup(spec + 5);
		return k->addr ? 0 : -ENOMEM;
	}
	if (strncmp(spec, "tcp:", 4) != 0)
		return -EINVAL;
	spec += 4;
	colon = strrchr(spec, ':');
	if (!colon || colon == spec || !port_ok(colon + 1))
		return -EINVAL;
	if (spec[0] == '[') {
		if (colon - spec < 3 || colon[-1] != ']')
			return -EINVAL;
		k->addr = strndup(spec + 1, (size_t)(colon - spec - 2));
	} else {
		if (memchr(spec, ':', (size_t)(colon - spec)) ||
			memchr(spec, ']', (size_t)(colon - spec)))
			return -EINVAL;
		k->addr = strndup(spec, (size_t)(colon - spec));
	}
	k->kind = SYSLOG_TCP;
	k->port = strdup(colon + 1);
	return k->addr && k->port ? 0 : -ENOMEM;
}

static int parse_http(struct sink *k, const char *spec)
{
	k->kind = HTTP;
	if (strncmp(spec, "unix:", 5) == 0) {
		const char *sep = strstr(spec + 5, ":/");
		size_t n;

		if (!sep || !unix_path_ok(spec + 5, (size_t)(sep - spec - 5)))
			return -EINVAL;
		for (const char *q = sep + 1; *q; q++)
			if (*q <= 32 || *q >= 127)
				return -EINVAL;
		n = strlen(sep + 1) + sizeof("http://localhost");
		k->port = strndup(spec + 5, (size_t)(sep - spec - 5));
		k->addr = malloc(n);
		if (!k->addr || !k->port)
			return -ENOMEM;
		snprintf(k->addr, n, "http://localhost%s", sep + 1);
		return 0;
	}
	if (strncmp(spec, "http://", 7) != 0 && strncmp(spec, "https://", 8) != 0)
		return -EINVAL;
	if (spec[strcspn(spec, "/") + 2] == '\0' || strpbrk(spec, " \t\r\n"))
		return -EINVAL;
	/* No user:password@ in the authority: the URL is shown in log lines and in the sink's
	 * failure records, which are shipped; a credential there would leak everywhere. */
	{
		const char *host = strstr(spec, "://") + 3;

		if (memchr(host, '@', strcspn(host, "/?#")))
			return -EINVAL;
	}
	k->addr = strdup(spec);
	return k->addr ? 0 : -ENOMEM;
}

static void rec_free_list(struct rec *r)
{
	while (r) {
		struct rec *next = r->next;

		free(r);
		r = next;
	}
}

static struct rec *rec_new(const char *line, size_t len)
{
	struct rec *r = malloc(sizeof(*r) + len);

	if (!r)
		return NULL;
	memset(r, 0, sizeof(*r));
	memcpy(r->line, line, len);
	r->len = len;
	return r;
}

static int64_t stop_at(struct sink *k)
{
	return __atomic_load_n(&k->stop_at, __ATOMIC_ACQUIRE);
}

/* Now plus timeout_ms, but never past the stop deadline. */
static int64_t op_deadline(struct sink *k)
{
	int64_t d = kura_clock_ms() + k->top->timeout_ms, s = stop_at(k);

	return s && s < d ? s : d;
}

static void emit(struct sink *k, enum kura_sink_event_kind kind, const char *detail,
	uint64_t dropped)
{
	struct kura_sink_event e = { kind, k->name, detail ? detail : "", dropped };

	if (k->top->fn && !stop_at(k))
		k->top->fn(&e, k->top->userdata);
}

/* At most once a second, the drops since the last report; called without the lock. */
static void report_drops(struct sink *k)
{
	int64_t now = kura_clock_ms();
	uint64_t n = 0;

	if (now - k->last_drop_report < DROP_REPORT_MS)
		return;
	pthread_mutex_lock(&k->lock);
	n = k->drop_pending;
	k->drop_pending = 0;
	pthread_mutex_unlock(&k->lock);
	if (n == 0)
		return;
	k->last_drop_report = now;
	emit(k, KURA_SINK_DROPPED, NULL, n);
}

/* Puts a checkpoint of the last submitted (seq, mac) in k->cp if it moved since the last one
 * (or always, for the final one at stop and if anything was ever submitted). */
static void make_checkpoint(struct sink *k, bool final)
{
	struct kura_sinks *s = k->top;
	char b64[KURA_BASE64_LEN(KURA_SINK_MAC_BYTES) + 1];
	char line[512], when[32];
	uint8_t mac[KURA_SINK_MAC_BYTES];
	struct rec *r, *old;
	struct timespec ts;
	bool have;
	uint64_t seq;
	int n;

	pthread_mutex_lock(&s->last_lock);
	have = s->have_last;
	seq = s->last_seq;
	memcpy(mac, s->last_mac, sizeof(mac));
	pthread_mutex_unlock(&s->last_lock);
	if (!have ||
		(!final && k->cp_any && seq == k->cp_seq &&
			memcmp(mac, k->cp_mac, sizeof(mac)) == 0))
		return;

	clock_gettime(CLOCK_REALTIME, &ts);
	kura_rfc3339_us(&ts, when);
	b64[kura_base64_encode(mac, sizeof(mac), b64)] = '\0';
	n = snprintf(line, sizeof(line),
		"{\"type\":\"kura-audit-checkpoint\",\"seq\":%" PRIu64
		",\"mac\":\"%s\",\"host\":\"%s\",\"time\":\"%s\"}",
		seq, b64, s->hostname, when);
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	r = rec_new(line, (size_t)n);
	if (!r)
		return;
	r->seq = seq;
	r->wall = ts;
	r->checkpoint = true;
	k->cp_any = true;
	k->cp_seq = seq;
	memcpy(k->cp_mac, mac, sizeof(mac));

	pthread_mutex_lock(&k->lock);
	old = k->cp;
	k->cp = r;
	pthread_mutex_unlock(&k->lock);
	free(old);
}

static int buf_reserve(struct sink *k, size_t n)
{
	char *p;
	size_t cap;

	if (n <= k->buf_cap)
		return 0;
	cap = k->buf_cap ? k->buf_cap : 4096;
	while (cap < n)
		cap *= 2;
	p = realloc(k->buf, cap);
	if (!p)
		return -ENOMEM;
	k->buf = p;
	k->buf_cap = cap;
	return 0;
}

/* ---- syslog ---- */

static void sock_close(struct sink *k)
{
	if (k->fd >= 0)
		close(k->fd);
	k->fd = -1;
}

static int fail(char *detail, size_t n, int err, const char *what, const char *where)
{
	errno = -err;
	snprintf(detail, n, "%s(%s): %m", what, where);
	return err;
}

static int syslog_connect(struct sink *k, char *detail, size_t dn)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
	struct addrinfo *ai = NULL;
	int r = 0, fd;

	if (k->kind == SYSLOG_UNIX) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };

		memcpy(sa.sun_path, k->addr, strlen(k->addr));
		fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return fail(detail, dn, -errno, "socket", k->addr);
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			r = -errno;
			close(fd);
			return fail(detail, dn, r, "connect", k->addr);
		}
		k->fd = fd;
		return 0;
	}

	r = getaddrinfo(k->addr, k->port, &hints, &ai);
	if (r != 0) {
		snprintf(detail, dn, "getaddrinfo(%s): %s", k->addr, gai_strerror(r));
		return -EHOSTUNREACH;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		r = -errno;
	} else if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
		r = -errno;
	} else {
		int err = 0;
		socklen_t len = sizeof(err);

		r = kura_wait_fd(fd, POLLOUT, op_deadline(k));
		if (r == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			r = -errno;
		else if (r == 0 && err)
			r = -err;
	}
	freeaddrinfo(ai);
	if (r < 0) {
		if (fd >= 0)
			close(fd);
		return fail(detail, dn, r, "connect", k->addr);
	}
	k->fd = fd;
	return 0;
}

/* A TCP peer that closed (a restarted rsyslogd) only shows when we read: find out before
 * sending into a dead connection, which the kernel would accept once and then lose. */
static bool tcp_peer_gone(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char junk[256];

	if (poll(&p, 1, 0) <= 0)
		return false;
	if (p.revents & (POLLHUP | POLLERR))
		return true;
	return recv(fd, junk, sizeof(junk), MSG_DONTWAIT) == 0;
}

static int syslog_format(struct sink *k, const struct rec *r)
{
	struct kura_sinks *s = k->top;
	int sev = r->checkpoint ? SEV_NOTICE : r->notable ? SEV_WARNING : SEV_INFO;
	char when[32], head[400];
	size_t off = 0;
	int n, m = 0;

	kura_rfc3339_us(&r->wall, when);
	n = snprintf(head, sizeof(head), "<%d>1 %s %s kurad %d %s - ", FACILITY_AUTHPRIV * 8 + sev,
		when, s->hostname, s->pid, r->checkpoint ? "checkpoint" : "audit");
	if (n < 0 || (size_t)n >= sizeof(head))
		return -EINVAL;
	if (buf_reserve(k, 32 + (size_t)n + r->len) < 0)
		return -ENOMEM;
	if (k->kind == SYSLOG_TCP)
		m = snprintf(k->buf, 32, "%zu ", (size_t)n + r->len);
	off = (size_t)m;
	memcpy(k->buf + off, head, (size_t)n);
	memcpy(k->buf + off + (size_t)n, r->line, r->len);
	return (int)(off + (size_t)n + r->len);
}

static int syslog_send_one(struct sink *k, const struct rec *r, char *detail, size_t dn)
{
	int64_t deadline;
	size_t len, off = 0;
	int n, err;

	if (k->fd >= 0 && k->kind == SYSLOG_TCP && tcp_peer_gone(k->fd))
		sock_close(k);
	if (k->fd < 0) {
		err = syslog_connect(k, detail, dn);
		if (err < 0)
			return err;
	}
	n = syslog_format(k, r);
	if (n < 0)
		return fail(detail, dn, n, "format", k->name);
	len = (size_t)n;
	deadline = op_deadline(k);
	while (off < len) {
		ssize_t w = send(k->fd, k->buf + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (w >= 0) {
			off += (size_t)w;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN) {
			err = kura_wait_fd(k->fd, POLLOUT, deadline);
			if (err == 0)
				continue;
		} else {
			err = -errno;
		}
		/* A datagram is all or nothing; a stream cut mid-frame cannot be resumed. */
		if (k->kind == SYSLOG_TCP || err != -ETIMEDOUT)
			sock_close(k);
		return fail(detail, dn, err, "send", k->addr);
	}
	return 0;
}

/* Sends records in order; *ret_done is how many went out before any failure. */
static int syslog_deliver(struct sink *k, struct rec **batch, unsigned n, unsigned *ret_done,
	char *detail, size_t dn)
{
	unsigned i;
	int r = 0;

	for (i = 0; i < n; i++) {
		r = syslog_send_one(k, batch[i], detail, dn);
		if (r == -EMSGSIZE) {
			/* Too big for any datagram: retrying cannot help, and would block the
			 * queue. The caller counts it as dropped. */
			break;
		}
		if (r < 0)
			break;
	}
	*ret_done = i;
	return r;
}

/* ---- HTTP ---- */

static size_t discard(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	(void)ptr;
	(void)userdata;
	return size * nmemb;
}

static int http_setup(struct sink *k)
{
	CURL *h = curl_easy_init();

	if (!h)
		return -ENOMEM;
	k->curl = h;
	k->headers = curl_slist_append(NULL, "Content-Type: application/x-ndjson");
	if (k->headers) /* no 100-continue round trip (curl waits up to 1 s for it) */
		k->headers = curl_slist_append(k->headers, "Expect:");
	if (!k->headers || curl_easy_setopt(h, CURLOPT_URL, k->addr) != CURLE_OK ||
		(k->port && curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, k->port) != CURLE_OK) ||
#if LIBCURL_VERSION_NUM >= 0x075500
		curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
#else
		curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS)) !=
			CURLE_OK ||
#endif
		curl_easy_setopt(h, CURLOPT_PROXY, "") != CURLE_OK ||
		curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
		curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, k->headers) != CURLE_OK ||
		curl_easy_setopt(h, CURLOPT_POST, 1L) != CURLE_OK ||
		curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard) != CURLE_OK ||
		curl_easy_setopt(h, CURLOPT_ERRORBUFFER, k->errbuf) != CURLE_OK)
		return -ENOMEM;
	return 0;
}

/* curl_easy_perform, but on the multi handle that kura_sinks_stop wakes: a request in flight is
 * cut as soon as stop's deadline passes, not at the next progress callback (up to a second). */
static CURLcode perform(struct sink *k)
{
	CURLcode rc = CURLE_FAILED_INIT;
	bool finished = false;

	if (curl_multi_add_handle(k->multi, k->curl) != CURLM_OK)
		return CURLE_OUT_OF_MEMORY;
	for (;;) {
		int running = 0, left;
		int64_t s, wait_ms = 1000;
		CURLMsg *msg;

		if (curl_multi_perform(k->multi, &running) != CURLM_OK)
			break;
		while ((msg = curl_multi_info_read(k->multi, &left)))
			if (msg->msg == CURLMSG_DONE) {
				rc = msg->data.result;
				finished = true;
			}
		if (finished || !running)
			break;
		s = stop_at(k);
		if (s && kura_clock_ms() >= s) {
			rc = CURLE_ABORTED_BY_CALLBACK;
			snprintf(k->errbuf, sizeof(k->errbuf), "stopped");
			break;
		}
		if (s && s - kura_clock_ms() < wait_ms)
			wait_ms = s - kura_clock_ms();
		if (curl_multi_poll(k->multi, NULL, 0, (int)wait_ms, NULL) != CURLM_OK)
			break;
	}
	curl_multi_remove_handle(k->multi, k->curl);
	return rc;
}

/* One POST of the whole batch: all acknowledged (2xx) or none. */
static int http_deliver(struct sink *k, struct rec **batch, unsigned n, unsigned *ret_done,
	char *detail, size_t dn)
{
	int64_t left = op_deadline(k) - kura_clock_ms();
	size_t len = 0;
	long status = 0;
	CURLcode rc;

	*ret_done = 0;
	if (!k->curl && http_setup(k) < 0)
		return fail(detail, dn, -ENOMEM, "curl", k->addr);
	if (left <= 0)
		return fail(detail, dn, -ETIMEDOUT, "POST", k->addr);
	for (unsigned i = 0; i < n; i++)
		len += batch[i]->len + 1;
	if (buf_reserve(k, len) < 0)
		return fail(detail, dn, -ENOMEM, "POST", k->addr);
	len = 0;
	for (unsigned i = 0; i < n; i++) {
		memcpy(k->buf + len, batch[i]->line, batch[i]->len);
		len += batch[i]->len;
		k->buf[len++] = '\n';
	}
	k->errbuf[0] = '\0';
	if (curl_easy_setopt(k->curl, CURLOPT_POSTFIELDS, k->buf) != CURLE_OK ||
		curl_easy_setopt(k->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len) !=
			CURLE_OK ||
		curl_easy_setopt(k->curl, CURLOPT_CONNECTTIMEOUT_MS, (long)left) != CURLE_OK ||
		curl_easy_setopt(k->curl, CURLOPT_TIMEOUT_MS, (long)left) != CURLE_OK)
		return fail(detail, dn, -ENOMEM, "curl", k->addr);
	rc = perform(k);
	if (rc != CURLE_OK) {
		snprintf(detail, dn, "POST %s: %s", k->addr,
			k->errbuf[0] ? k->errbuf : curl_easy_strerror(rc));
		return rc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT : -EIO;
	}
	curl_easy_getinfo(k->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status < 200 || status > 299) {
		snprintf(detail, dn, "POST %s: HTTP %ld", k->addr, status);
		return -EPROTO;
	}
	*ret_done = n;
	return 0;
}

/* ---- the delivery thread ---- */

static unsigned jitter(struct sink *k, unsigned ms)
{
	/* Equal jitter: half fixed, half random, so many hosts that lost one collector do not
	 * come back in step. Not security relevant. */
	return ms / 2 + (unsigned)rand_r(&k->rng) % (ms / 2 + 1);
}

static void wait_until(struct sink *k, int64_t deadline)
{
	struct timespec ts;

	ts.tv_sec = deadline / 1000;
	ts.tv_nsec = (deadline % 1000) * 1000000;
	pthread_cond_timedwait(&k->cond, &k->lock, &ts);
}

/* Takes a batch off the queue if one is due (full, aged flush_ms, a lone checkpoint, or we are
 * stopping), or says in *ret_wake when to look again. Under the lock. */
static unsigned take_batch(struct sink *k, struct rec **batch, int64_t now, int64_t *ret_wake)
{
	struct kura_sinks *s = k->top;
	unsigned n = 0;
	bool due;

	if (k->kind == HTTP)
		due = k->count >= s->batch_max ||
			(k->count > 0 && now - k->head->queued_ms >= (int64_t)s->flush_ms) ||
			(k->count == 0 && k->cp) || (stop_at(k) && (k->count > 0 || k->cp));
	else
		due = k->count > 0 || k->cp;
	if (!due) {
		*ret_wake = k->count > 0 ? k->head->queued_ms + s->flush_ms : NEVER;
		return 0;
	}
	while (k->head && n < s->batch_max) {
		batch[n++] = k->head;
		k->head = k->head->next;
		k->count--;
	}
	if (!k->head)
		k->tail = NULL;
	k->in_batch = n;
	if (k->cp) {
		batch[n++] = k->cp;
		k->cp = NULL;
	}
	return n;
}

static unsigned count_records(struct rec **batch, unsigned n)
{
	unsigned c = 0;

	for (unsigned i = 0; i < n; i++)
		c += !batch[i]->checkpoint;
	return c;
}

/* Tries the batch until it is all delivered or stop's deadline passes. Returns how many of its
 * entries were delivered. */
static unsigned deliver(struct sink *k, struct rec **batch, unsigned n)
{
	unsigned backoff = BACKOFF_MIN_MS, done = 0;
	char detail[512];

	while (done < n) {
		unsigned now_done = 0;
		int64_t deadline, s;
		int r;

		detail[0] = '\0';
		r = (k->kind == HTTP ? http_deliver : syslog_deliver)(k, batch + done, n - done,
			&now_done, detail, sizeof(detail));
		pthread_mutex_lock(&k->lock);
		k->sent += count_records(batch + done, now_done);
		done += now_done;
		if (r == -EMSGSIZE && done < n) {
			k->dropped += !batch[done]->checkpoint;
			k->drop_pending += !batch[done]->checkpoint;
			done++;
		}
		k->in_batch = count_records(batch + done, n - done);
		if (r == 0 && !k->up) {
			k->up = true;
			pthread_mutex_unlock(&k->lock);
			emit(k, KURA_SINK_RECOVERED, NULL, 0);
			continue;
		}
		if (r == 0 || r == -EMSGSIZE) {
			pthread_mutex_unlock(&k->lock);
			continue;
		}
		k->failures++;
		if (k->up) {
			k->up = false;
			pthread_mutex_unlock(&k->lock);
			emit(k, KURA_SINK_FAILED, detail, 0);
			pthread_mutex_lock(&k->lock);
		}
		deadline = kura_clock_ms() + jitter(k, backoff);
		backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
		for (;;) {
			s = stop_at(k);
			if (s && kura_clock_ms() >= s) {
				pthread_mutex_unlock(&k->lock);
				return done;
			}
			if (kura_clock_ms() >= deadline)
				break;
			wait_until(k, s && s < deadline ? s : deadline);
		}
		pthread_mutex_unlock(&k->lock);
		report_drops(k);
	}
	return done;
}

static void *sink_main(void *arg)
{
	struct sink *k = arg;
	struct kura_sinks *s = k->top;
	struct rec **batch;
	bool final_done = false;

	batch = calloc((size_t)s->batch_max + 1, sizeof(*batch));
	k->next_cp = kura_clock_ms() + (int64_t)s->checkpoint_s * 1000;
	for (;;) {
		int64_t now = kura_clock_ms(), wake = NEVER, st = stop_at(k);
		unsigned n, done;

		if (st && !final_done) {
			make_checkpoint(k, true);
			final_done = true;
		} else if (!st && now >= k->next_cp) {
			make_checkpoint(k, false);
			k->next_cp = now + (int64_t)s->checkpoint_s * 1000;
		}
		report_drops(k);

		pthread_mutex_lock(&k->lock);
		if (!batch) {
			/* Cannot deliver at all: keep counting drops until stop. */
			if (stop_at(k)) {
				pthread_mutex_unlock(&k->lock);
				break;
			}
			wait_until(k, now + 1000);
			pthread_mutex_unlock(&k->lock);
			continue;
		}
		n = take_batch(k, batch, now, &wake);
		if (n == 0) {
			if (stop_at(k) && final_done) {
				pthread_mutex_unlock(&k->lock);
				break;
			}
			if (!stop_at(k)) {
				if (k->next_cp < wake)
					wake = k->next_cp;
				if (k->drop_pending && k->last_drop_report + DROP_REPORT_MS < wake)
					wake = k->last_drop_report + DROP_REPORT_MS;
				wait_until(k, wake);
			}
			pthread_mutex_unlock(&k->lock);
			continue;
		}
		pthread_mutex_unlock(&k->lock);

		done = deliver(k, batch, n);
		pthread_mutex_lock(&k->lock);
		k->dropped += count_records(batch + done, n - done);
		k->in_batch = 0;
		pthread_mutex_unlock(&k->lock);
		for (unsigned i = 0; i < n; i++)
			free(batch[i]);
		st = stop_at(k);
		if (st && kura_clock_ms() >= st)
			break;
	}

	pthread_mutex_lock(&k->lock);
	k->dropped += k->count;
	rec_free_list(k->head);
	k->head = k->tail = NULL;
	k->count = 0;
	free(k->cp);
	k->cp = NULL;
	pthread_mutex_unlock(&k->lock);
	free(batch);
	sock_close(k);
	if (k->curl)
		curl_easy_cleanup(k->curl);
	k->curl = NULL;
	curl_slist_free_all(k->headers);
	k->headers = NULL;
	free(k->buf);
	k->buf = NULL;
	return NULL;
}

/* ---- the API ---- */

static void sinks_free(struct kura_sinks *s)
{
	for (unsigned i = 0; i < s->n; i++) {
		struct sink *k = &s->sinks[i];

		rec_free_list(k->head);
		free(k->cp);
		if (k->multi)
			curl_multi_cleanup(k->multi);
		free(k->addr);
		free(k->port);
		pthread_mutex_destroy(&k->lock);
		pthread_cond_destroy(&k->cond);
	}
	pthread_mutex_destroy(&s->last_lock);
	free(s);
}

static int sink_init(struct kura_sinks *s, const char *name)
{
	struct sink *k = &s->sinks[s->n];
	pthread_condattr_t ca;

	k->top = s;
	k->name = name;
	k->fd = -1;
	k->up = true;
	k->rng = (unsigned)getpid() ^ (unsigned)kura_clock_ms() ^ s->n;
	k->last_drop_report = kura_clock_ms() - DROP_REPORT_MS;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&k->cond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&k->lock, NULL);
	s->n++;
	return 0;
}

int kura_sinks_start(const struct kura_sink_config *c, kura_sink_event_fn fn, void *userdata,
	struct kura_sinks **ret)
{
	struct kura_sinks *s;
	sigset_t all, old;
	int r = 0;

	if (!c || !ret)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->last_lock, NULL);
	s->queue_max = c->queue_max ? c->queue_max : 10000;
	s->batch_max = c->batch_max ? c->batch_max : 500;
	s->flush_ms = c->flush_ms ? c->flush_ms : 200;
	s->checkpoint_s = c->checkpoint_s ? c->checkpoint_s : 10;
	s->timeout_ms = c->timeout_ms ? c->timeout_ms : 2000;
	s->fn = fn;
	s->userdata = userdata;
	s->pid = (int)getpid();
	if (c->hostname) {
		if (!hostname_ok(c->hostname))
			r = -EINVAL;
		else
			snprintf(s->hostname, sizeof(s->hostname), "%s", c->hostname);
	} else if (gethostname(s->hostname, sizeof(s->hostname) - 1) < 0 ||
		!hostname_ok(s->hostname)) {
		snprintf(s->hostname, sizeof(s->hostname), "localhost");
	}
	if (r == 0 && c->syslog) {
		sink_init(s, "syslog");
		r = parse_syslog(&s->sinks[s->n - 1], c->syslog);
	}
	if (r == 0 && c->http_url) {
		sink_init(s, "http");
		r = parse_http(&s->sinks[s->n - 1], c->http_url);
		if (r == 0 && !(s->sinks[s->n - 1].multi = curl_multi_init()))
			r = -ENOMEM;
	}
	if (r < 0) {
		sinks_free(s);
		return r;
	}

	/* The daemon handles its signals on its main thread; ours never should. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (unsigned i = 0; i < s->n && r == 0; i++) {
		r = -pthread_create(&s->sinks[i].thread, NULL, sink_main, &s->sinks[i]);
		s->sinks[i].started = r == 0;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r < 0) {
		kura_sinks_stop(s, 0);
		return r;
	}
	*ret = s;
	return 0;
}

void kura_sinks_submit(struct kura_sinks *s, const char *line, size_t len, uint64_t seq,
	const uint8_t mac[KURA_SINK_MAC_BYTES], bool notable)
{
	struct timespec wall;
	int64_t mono;

	if (!s)
		return;
	pthread_mutex_lock(&s->last_lock);
	s->have_last = true;
	s->last_seq = seq;
	memcpy(s->last_mac, mac, KURA_SINK_MAC_BYTES);
	pthread_mutex_unlock(&s->last_lock);

	clock_gettime(CLOCK_REALTIME, &wall);
	mono = kura_clock_ms();
	for (unsigned i = 0; i < s->n; i++) {
		struct sink *k = &s->sinks[i];
		struct rec *r = rec_new(line, len), *old = NULL;

		if (r) {
			r->seq = seq;
			r->notable = notable;
			r->wall = wall;
			r->queued_ms = mono;
		}
		pthread_mutex_lock(&k->lock);
		if (!r) {
			k->dropped++;
			k->drop_pending++;
		} else {
			if (k->count >= s->queue_max) {
				old = k->head;
				k->head = old->next;
				if (!k->head)
					k->tail = NULL;
				k->count--;
				k->dropped++;
				k->drop_pending++;
			}
			if (k->tail)
				k->tail->next = r;
			else
				k->head = r;
			k->tail = r;
			k->count++;
			pthread_cond_signal(&k->cond);
		}
		pthread_mutex_unlock(&k->lock);
		free(old);
	}
}

void kura_sinks_stop(struct kura_sinks *s, unsigned flush_ms)
{
	int64_t deadline;

	if (!s)
		return;
	deadline = kura_clock_ms() + flush_ms;
	if (deadline == 0)
		deadline = 1;
	for (unsigned i = 0; i < s->n; i++) {
		struct sink *k = &s->sinks[i];

		pthread_mutex_lock(&k->lock);
		__atomic_store_n(&k->stop_at, deadline, __ATOMIC_RELEASE);
		pthread_cond_broadcast(&k->cond);
		pthread_mutex_unlock(&k->lock);
		if (k->multi)
			curl_multi_wakeup(k->multi);
	}
	for (unsigned i = 0; i < s->n; i++)
		if (s->sinks[i].started)
			pthread_join(s->sinks[i].thread, NULL);
	sinks_free(s);
}

void kura_sinks_stats(struct kura_sinks *s, const char *sink, struct kura_sink_stats *ret)
{
	memset(ret, 0, sizeof(*ret));
	if (!s || !sink)
		return;
	for (unsigned i = 0; i < s->n; i++) {
		struct sink *k = &s->sinks[i];

		if (strcmp(k->name, sink) != 0)
			continue;
		pthread_mutex_lock(&k->lock);
		ret->sent = k->sent;
		ret->dropped = k->dropped;
		ret->failures = k->failures;
		ret->queued = k->count + k->in_batch;
		ret->up = k->up;
		pthread_mutex_unlock(&k->lock);
	}
}

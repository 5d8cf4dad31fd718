/* The net process (kura_net_serve: the runtimes' sockets and the audit sinks, on the keeper's
 * behalf, holding no key) and the keeper's client of it (remote runtimes, remote sinks). No
 * plaintext: runtime answers and audit records only. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "macro.h"
#include "net.h"

_Static_assert(KURA_MSG_NET_BODY_MAX == KURA_RUNTIME_MAX_BODY, "a GOT carries a whole answer");
_Static_assert(KURA_MSG_NET_PATH_MAX == KURA_RUNTIME_MAX_PATH, "a GET carries any path");
_Static_assert(KURA_SINK_MAC_BYTES == 32, "NET_RECORD's MAC field");

#define POLL_MS 100 /* how often a watch looks at its stop flag, on either side */
#define QUEUE_DEFAULT 10000u

/* A reply that breaks the protocol, or one out of turn: fatal, as every receiver does. */
static void expect(const struct kura_msg *m, enum kura_msg_type type, const char *from)
{
	char why[128];

	if (m->type != type) {
		snprintf(why, sizeof(why), "a %s where a %s belongs", kura_msg_type_name(m->type),
			kura_msg_type_name(type));
		kura_msg_fatal(from, why);
	}
}

/* recv, with a malformed message fatal: 0, -ETIMEDOUT, or -EPIPE (the peer gone, or any other
 * failure to read: either way the channel is done). */
static int recv_checked(int fd, int timeout_ms, struct kura_msg *m, const char *from)
{
	char why[128];
	int r = kura_msg_recv(fd, timeout_ms, m, why);

	if (r == -EBADMSG)
		kura_msg_fatal(from, why);
	if (r < 0 && r != -ETIMEDOUT)
		return -EPIPE;
	return r;
}

static int send_errno(int fd, enum kura_msg_type type, int r)
{
	struct kura_msgb b;
	int s;

	kura_msgb_init(&b, type);
	kura_msgb_u64(&b, KURA_F_NET_ERRNO, r < 0 && -r <= 4095 ? (uint64_t)-r : r < 0 ? EIO : 0);
	s = kura_msg_send(fd, &b, -1);
	kura_msgb_done(&b);
	return s;
}

static int send_empty(int fd, enum kura_msg_type type)
{
	struct kura_msgb b;
	int s;

	kura_msgb_init(&b, type);
	s = kura_msg_send(fd, &b, -1);
	kura_msgb_done(&b);
	return s;
}

/* ---- channels ---- */

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

void kura_net_fds_close(struct kura_net_fds *f)
{
	for (size_t i = 0; i < f->n_req; i++)
		close_fd(&f->req[i]);
	for (size_t i = 0; i < f->n_events; i++)
		close_fd(&f->events[i]);
	close_fd(&f->sinks);
}

static int pair(int *a, int *b)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	*a = sv[0];
	*b = sv[1];
	return 0;
}

int kura_net_socketpairs(size_t n_req, size_t n_runtimes, bool sinks, struct kura_net_fds *keeper,
	struct kura_net_fds *net)
{
	int r = 0;

	if (n_req == 0 || n_req > KURA_NET_MAX_REQ || n_runtimes > KURA_MSG_NET_RUNTIMES)
		return -EINVAL;
	*keeper = (struct kura_net_fds){ .sinks = -1 };
	*net = (struct kura_net_fds){ .sinks = -1 };
	for (size_t i = 0; i < n_req && r == 0; i++) {
		r = pair(&keeper->req[i], &net->req[i]);
		if (r == 0)
			keeper->n_req = net->n_req = i + 1;
	}
	for (size_t i = 0; i < n_runtimes && r == 0; i++) {
		r = pair(&keeper->events[i], &net->events[i]);
		if (r == 0)
			keeper->n_events = net->n_events = i + 1;
	}
	if (r == 0 && sinks)
		r = pair(&keeper->sinks, &net->sinks);
	if (r < 0) {
		kura_net_fds_close(keeper);
		kura_net_fds_close(net);
	}
	return r;
}

/* ======== the net process ======== */

struct server;

struct worker {
	struct server *srv;
	int fd;
	unsigned index; /* an event channel's runtime */
	pthread_t th;
	bool started;
};

struct server {
	struct kura_runtime *rt[KURA_MSG_NET_RUNTIMES];
	size_t n_rt;
	struct kura_sinks *sinks;
	pthread_mutex_t send_lock; /* the sink channel: the sinks' threads and its reader send */
	struct worker w[KURA_NET_MAX_REQ + KURA_MSG_NET_RUNTIMES + 1];
	size_t n_w;
};

static unsigned runtime_of(const struct server *srv, const struct kura_msg *m)
{
	uint64_t i = 0;

	kura_msg_u64(m, KURA_F_NET_RUNTIME, &i);
	if (i >= srv->n_rt)
		kura_msg_fatal("keeper", "a runtime index past those configured");
	return (unsigned)i;
}

static void *serve_req(void *arg)
{
	struct worker *w = arg;

	for (;;) {
		_cleanup_free_ char *body = NULL;
		struct kura_msg m;
		struct kura_msgb b;
		uint64_t timeout = 0;
		long status = 0;
		size_t len = 0;
		int r;

		if (recv_checked(w->fd, -1, &m, "keeper") < 0)
			break;
		expect(&m, KURA_MSG_NET_GET, "keeper");
		kura_msg_u64(&m, KURA_F_NET_TIMEOUT, &timeout);
		r = kura_runtime_get(w->srv->rt[runtime_of(w->srv, &m)],
			kura_msg_str(&m, KURA_F_PATH), (unsigned)timeout, &status, &body, &len);
		kura_msg_done(&m);
		if (r == 0 && (status < 100 || status > 599))
			r = -EPROTO;
		kura_msgb_init(&b, KURA_MSG_NET_GOT);
		kura_msgb_u64(&b, KURA_F_NET_ERRNO, r < 0 ? (uint64_t)-r : 0);
		if (r == 0) {
			kura_msgb_u64(&b, KURA_F_STATUS, (uint64_t)status);
			kura_msgb_bytes(&b, KURA_F_BODY, body, len);
		}
		r = kura_msg_send(w->fd, &b, -1);
		kura_msgb_done(&b);
		if (r < 0)
			break;
	}
	return NULL;
}

struct net_stream {
	int fd;
	bool stop_seen;
	bool gone;
};

static int net_chunk(const char *p, size_t n, void *ud)
{
	struct net_stream *st = ud;

	while (n > 0) {
		size_t k = n < KURA_MSG_NET_CHUNK_MAX ? n : KURA_MSG_NET_CHUNK_MAX;
		struct kura_msgb b;
		int r;

		kura_msgb_init(&b, KURA_MSG_NET_CHUNK);
		kura_msgb_bytes(&b, KURA_F_BODY, p, k);
		r = kura_msg_send(st->fd, &b, -1);
		kura_msgb_done(&b);
		if (r < 0) {
			st->gone = true;
			return -EPIPE;
		}
		p += k;
		n -= k;
	}
	return 0;
}

/* Whether the keeper has asked to stop (or gone): a look at the channel, without waiting. */
static bool net_stopped(void *ud)
{
	struct net_stream *st = ud;
	struct pollfd p = { .fd = st->fd, .events = POLLIN };
	struct kura_msg m;

	if (st->stop_seen || st->gone)
		return true;
	if (poll(&p, 1, 0) <= 0)
		return false;
	if (recv_checked(st->fd, 1000, &m, "keeper") < 0) {
		st->gone = true;
		return true;
	}
	expect(&m, KURA_MSG_NET_STOP, "keeper");
	kura_msg_done(&m);
	st->stop_seen = true;
	return true;
}

static void *serve_events(void *arg)
{
	struct worker *w = arg;

	for (;;) {
		struct net_stream st = { .fd = w->fd };
		struct kura_msg m;
		char path[KURA_MSG_NET_PATH_MAX + 1];
		int r;

		if (recv_checked(w->fd, -1, &m, "keeper") < 0)
			break;
		/* A STOP that crossed the END of a stream that failed on its own is late, not
		 * wrong. */
		if (m.type == KURA_MSG_NET_STOP) {
			kura_msg_done(&m);
			continue;
		}
		expect(&m, KURA_MSG_NET_WATCH, "keeper");
		if (runtime_of(w->srv, &m) != w->index)
			kura_msg_fatal("keeper",
				"a watch of another runtime on this one's channel");
		snprintf(path, sizeof(path), "%s", kura_msg_str(&m, KURA_F_PATH));
		kura_msg_done(&m);
		r = kura_runtime_stream(w->srv->rt[w->index], path, net_chunk, net_stopped, &st);
		if (st.gone || send_errno(w->fd, KURA_MSG_NET_END, r) < 0)
			break;
	}
	return NULL;
}

static void net_sink_event(const struct kura_sink_event *e, void *userdata)
{
	struct worker *w = userdata;
	struct kura_msgb b;

	kura_msgb_init(&b, KURA_MSG_NET_EVENT);
	kura_msgb_u64(&b, KURA_F_KIND, (uint64_t)e->kind);
	kura_msgb_str(&b, KURA_F_NET_SINK, e->sink);
	if (e->detail)
		kura_msgb_str(&b, KURA_F_DETAIL, e->detail);
	if (e->kind == KURA_SINK_DROPPED && e->dropped)
		kura_msgb_u64(&b, KURA_F_COUNT, e->dropped);
	pthread_mutex_lock(&w->srv->send_lock);
	(void)kura_msg_send(w->fd, &b, -1); /* the keeper gone: its reader ends us */
	pthread_mutex_unlock(&w->srv->send_lock);
	kura_msgb_done(&b);
}

static void *serve_sinks(void *arg)
{
	struct worker *w = arg;
	struct server *srv = w->srv;
	bool flushed = false;

	for (;;) {
		struct kura_msg m;
		const uint8_t *mac, *line;
		uint64_t v = 0, notable = 0;
		size_t n, ln;

		if (recv_checked(w->fd, -1, &m, "keeper") < 0)
			break;
		if (m.type == KURA_MSG_NET_FLUSH && !flushed) {
			kura_msg_u64(&m, KURA_F_NET_TIMEOUT, &v);
			kura_msg_done(&m);
			kura_sinks_stop(srv->sinks, (unsigned)v);
			srv->sinks = NULL;
			flushed = true;
			pthread_mutex_lock(&srv->send_lock);
			(void)send_empty(w->fd, KURA_MSG_NET_FLUSHED);
			pthread_mutex_unlock(&srv->send_lock);
			continue;
		}
		if (flushed)
			kura_msg_fatal("keeper", "a message for the sinks after they stopped");
		expect(&m, KURA_MSG_NET_RECORD, "keeper");
		mac = kura_msg_bytes(&m, KURA_F_NET_MAC, &n);
		line = kura_msg_bytes(&m, KURA_F_NET_LINE, &ln);
		/* One record is one line: a newline would split it at the receiver. */
		if (memchr(line, '\n', ln) || memchr(line, '\0', ln))
			kura_msg_fatal("keeper", "a record with a newline or NUL in it");
		kura_msg_u64(&m, KURA_F_NET_NOTABLE, &notable);
		kura_msg_u64(&m, KURA_F_NET_SEQ, &v);
		kura_sinks_submit(srv->sinks, (const char *)line, ln, v, mac, notable);
		kura_msg_done(&m);
	}
	kura_sinks_stop(srv->sinks, 2000);
	srv->sinks = NULL;
	return NULL;
}

static int add_worker(struct server *srv, int fd, unsigned index, void *(*fn)(void *))
{
	struct worker *w = &srv->w[srv->n_w++];
	int r;

	*w = (struct worker){ .srv = srv, .fd = fd, .index = index };
	r = -pthread_create(&w->th, NULL, fn, w);
	w->started = r == 0;
	return r;
}

int kura_net_serve(const struct kura_net_fds *fds, const struct kura_net_config *c)
{
	struct kura_net_fds f = *fds;
	struct server *srv = calloc(1, sizeof(*srv));
	int r = 0;

	if (!srv) {
		kura_net_fds_close(&f);
		return -ENOMEM;
	}
	pthread_mutex_init(&srv->send_lock, NULL);
	if (c->n_runtimes > KURA_MSG_NET_RUNTIMES || f.n_events != c->n_runtimes || f.n_req == 0 ||
		f.n_req > KURA_NET_MAX_REQ)
		r = -EINVAL;
	for (size_t i = 0; i < c->n_runtimes && r == 0; i++) {
		r = kura_runtime_new(c->runtimes[i].name, c->runtimes[i].endpoint, &srv->rt[i]);
		if (r == 0)
			srv->n_rt = i + 1;
	}
	if (r == 0 && f.sinks >= 0) {
		/* The worker the events go out on exists before the sinks' threads do. */
		srv->w[KURA_NET_MAX_REQ + KURA_MSG_NET_RUNTIMES] = (struct worker){ .srv = srv,
			.fd = f.sinks };
		r = kura_sinks_start(&c->sinks, net_sink_event,
			&srv->w[KURA_NET_MAX_REQ + KURA_MSG_NET_RUNTIMES], &srv->sinks);
	}
	for (size_t i = 0; i < f.n_req && r == 0; i++)
		r = add_worker(srv, f.req[i], 0, serve_req);
	for (size_t i = 0; i < f.n_events && r == 0; i++)
		r = add_worker(srv, f.events[i], (unsigned)i, serve_events);
	if (r == 0 && f.sinks >= 0) {
		struct worker *w = &srv->w[KURA_NET_MAX_REQ + KURA_MSG_NET_RUNTIMES];

		r = -pthread_create(&w->th, NULL, serve_sinks, w);
		w->started = r == 0;
	}
	if (r < 0) {
		/* Unblock whatever started: each thread then ends at its closed channel. */
		for (size_t i = 0; i < f.n_req; i++)
			shutdown(f.req[i], SHUT_RDWR);
		for (size_t i = 0; i < f.n_events; i++)
			shutdown(f.events[i], SHUT_RDWR);
		if (f.sinks >= 0)
			shutdown(f.sinks, SHUT_RDWR);
	}
	for (size_t i = 0; i < ELEMENTSOF(srv->w); i++)
		if (srv->w[i].started)
			pthread_join(srv->w[i].th, NULL);
	kura_sinks_stop(srv->sinks, 0);
	for (size_t i = 0; i < srv->n_rt; i++)
		kura_runtime_free(srv->rt[i]);
	kura_net_fds_close(&f);
	pthread_mutex_destroy(&srv->send_lock);
	free(srv);
	return r;
}

/* ======== the keeper's client ======== */

struct req_chan {
	int fd;
	bool busy;
	unsigned owed; /* answers to requests given up on, read and dropped before the next */
};

struct queued {
	struct queued *next;
	uint64_t seq;
	uint8_t mac[KURA_SINK_MAC_BYTES];
	bool notable;
	size_t len;
	char line[];
};

struct kura_net_client {
	pthread_mutex_t lock; /* req[], watching[] */
	pthread_cond_t cond;  /* a request channel free (CLOCK_MONOTONIC) */
	struct req_chan req[KURA_NET_MAX_REQ];
	size_t n_req;
	int events[KURA_MSG_NET_RUNTIMES];
	bool watching[KURA_MSG_NET_RUNTIMES];
	size_t n_events;

	int sink_fd;
	pthread_mutex_t qlock; /* everything below */
	pthread_cond_t qcond;  /* records queued, stopping, flushed (CLOCK_MONOTONIC) */
	struct queued *head, *tail;
	size_t queued, queue_max;
	uint64_t dropped, dropped_unreported, dropped_total;
	int64_t drop_reported_ms;
	bool sinks_started, stopping, flushed, dead;
	pthread_t sender, reader;
	pthread_mutex_t fn_lock; /* fn is never running once stop has begun */
	bool fn_off;
	kura_sink_event_fn fn;
	void *userdata;
	unsigned flush_ms;
};

static void cond_init_mono(pthread_cond_t *c)
{
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(c, &ca);
	pthread_condattr_destroy(&ca);
}

int kura_net_client_new(const struct kura_net_fds *fds, struct kura_net_client **ret)
{
	struct kura_net_client *c;

	if (fds->n_req == 0 || fds->n_req > KURA_NET_MAX_REQ ||
		fds->n_events > KURA_MSG_NET_RUNTIMES)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->qlock, NULL);
	pthread_mutex_init(&c->fn_lock, NULL);
	cond_init_mono(&c->cond);
	cond_init_mono(&c->qcond);
	c->n_req = fds->n_req;
	for (size_t i = 0; i < c->n_req; i++)
		c->req[i] = (struct req_chan){ .fd = fds->req[i] };
	c->n_events = fds->n_events;
	memcpy(c->events, fds->events, sizeof(c->events));
	c->sink_fd = fds->sinks;
	*ret = c;
	return 0;
}

void kura_net_client_free(struct kura_net_client *c)
{
	if (!c)
		return;
	kura_net_sinks_stop(c, 0); /* if the caller did not: its threads use c */
	for (size_t i = 0; i < c->n_req; i++)
		close_fd(&c->req[i].fd);
	for (size_t i = 0; i < c->n_events; i++)
		close_fd(&c->events[i]);
	close_fd(&c->sink_fd);
	for (struct queued *q = c->head, *next; q; q = next) {
		next = q->next;
		free(q);
	}
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->qlock);
	pthread_mutex_destroy(&c->fn_lock);
	pthread_cond_destroy(&c->cond);
	pthread_cond_destroy(&c->qcond);
	free(c);
}

/* A free request channel by deadline, or -ETIMEDOUT. */
static int acquire(struct kura_net_client *c, int64_t deadline, struct req_chan **ret)
{
	struct timespec ts = kura_clock_at_ms(deadline);
	int r = 0;

	pthread_mutex_lock(&c->lock);
	for (;;) {
		bool open = false;

		for (size_t i = 0; i < c->n_req; i++) {
			open |= c->req[i].fd >= 0;
			if (!c->req[i].busy && c->req[i].fd >= 0) {
				c->req[i].busy = true;
				*ret = &c->req[i];
				pthread_mutex_unlock(&c->lock);
				return 0;
			}
		}
		if (r == ETIMEDOUT || !open)
			break;
		r = pthread_cond_timedwait(&c->cond, &c->lock, &ts);
	}
	pthread_mutex_unlock(&c->lock);
	return r == ETIMEDOUT ? -ETIMEDOUT : -EIO; /* every channel closed: the net process gone */
}

static void release(struct kura_net_client *c, struct req_chan *ch)
{
	pthread_mutex_lock(&c->lock);
	ch->busy = false;
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

static int left_ms(int64_t deadline)
{
	int64_t left = deadline - kura_clock_ms();

	return left <= 0 ? 0 : left > 600000 ? 600000 : (int)left;
}

/* The GOT of the request on ch, within the caller's deadline: 0 (m filled), -ETIMEDOUT (it is
 * still owed), -EIO (the net process gone: the channel is closed). */
static int got(struct req_chan *ch, int64_t deadline, struct kura_msg *m)
{
	int r = recv_checked(ch->fd, left_ms(deadline), m, "net");

	if (r == -ETIMEDOUT) {
		ch->owed++;
		return r;
	}
	if (r < 0) {
		close_fd(&ch->fd);
		return -EIO;
	}
	expect(m, KURA_MSG_NET_GOT, "net");
	return 0;
}

static int remote_get(void *ctx, unsigned index, const char *path, int64_t deadline,
	long *ret_status, char **ret_body, size_t *ret_len)
{
	struct kura_net_client *c = ctx;
	struct req_chan *ch;
	struct kura_msgb b;
	struct kura_msg m;
	const void *body;
	uint64_t err = 0, status = 0;
	size_t len;
	char *copy;
	int r;

	if (strnlen(path, KURA_MSG_NET_PATH_MAX + 1) > KURA_MSG_NET_PATH_MAX ||
		index >= KURA_MSG_NET_RUNTIMES)
		return -EINVAL;
	r = acquire(c, deadline, &ch);
	if (r < 0)
		return r;
	while (ch->owed > 0 && r == 0) {
		ch->owed--;
		r = got(ch, deadline, &m);
		if (r == 0)
			kura_msg_done(&m);
	}
	if (r == 0 && left_ms(deadline) == 0)
		r = -ETIMEDOUT;
	if (r < 0) {
		release(c, ch);
		return r;
	}
	kura_msgb_init(&b, KURA_MSG_NET_GET);
	kura_msgb_u64(&b, KURA_F_NET_RUNTIME, index);
	kura_msgb_str(&b, KURA_F_PATH, path);
	kura_msgb_u64(&b, KURA_F_NET_TIMEOUT, (uint64_t)left_ms(deadline));
	r = kura_msg_send(ch->fd, &b, -1);
	kura_msgb_done(&b);
	if (r < 0) {
		if (r == -EPIPE)
			close_fd(&ch->fd);
		release(c, ch);
		return -EIO;
	}
	r = got(ch, deadline, &m);
	release(c, ch);
	if (r < 0)
		return r;
	kura_msg_u64(&m, KURA_F_NET_ERRNO, &err);
	if (err) {
		kura_msg_done(&m);
		return -(int)err;
	}
	if (!kura_msg_u64(&m, KURA_F_STATUS, &status))
		kura_msg_fatal("net", "an answer without a status or an error");
	body = kura_msg_bytes(&m, KURA_F_BODY, &len);
	copy = malloc(len + 1);
	if (!copy) {
		kura_msg_done(&m);
		return -ENOMEM;
	}
	if (len)
		memcpy(copy, body, len);
	copy[len] = '\0';
	kura_msg_done(&m);
	*ret_status = (long)status;
	*ret_body = copy;
	*ret_len = len;
	return 0;
}

static int send_stop(int fd)
{
	return send_empty(fd, KURA_MSG_NET_STOP);
}

static int remote_stream(void *ctx, unsigned index, const char *path,
	int (*chunk)(const char *p, size_t n, void *ud), bool (*stopped)(void *ud), void *ud)
{
	struct kura_net_client *c = ctx;
	bool stopping = false;
	struct kura_msgb b;
	int fd, r, err = 0;

	if (index >= c->n_events)
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	r = c->watching[index] ? -EBUSY : c->events[index] < 0 ? -EIO : 0;
	c->watching[index] = true;
	pthread_mutex_unlock(&c->lock);
	if (r == -EBUSY)
		return r;
	fd = c->events[index];
	if (r == 0) {
		kura_msgb_init(&b, KURA_MSG_NET_WATCH);
		kura_msgb_u64(&b, KURA_F_NET_RUNTIME, index);
		kura_msgb_str(&b, KURA_F_PATH, path);
		r = kura_msg_send(fd, &b, -1) < 0 ? -EIO : 0;
		kura_msgb_done(&b);
	}
	while (r == 0) {
		struct kura_msg m;
		uint64_t e = 0;
		const void *p;
		size_t n;
		int k;

		if (!stopping && stopped(ud)) {
			stopping = true;
			if (send_stop(fd) < 0) {
				r = -EIO;
				break;
			}
		}
		k = recv_checked(fd, POLL_MS, &m, "net");
		if (k == -ETIMEDOUT)
			continue;
		if (k < 0) {
			r = -EIO;
			break;
		}
		if (m.type == KURA_MSG_NET_CHUNK) {
			p = kura_msg_bytes(&m, KURA_F_BODY, &n);
			if (!stopping) {
				err = chunk(p, n, ud);
				if (err < 0) {
					stopping = true;
					if (send_stop(fd) < 0)
						r = -EIO;
				}
			}
			kura_msg_done(&m);
			continue;
		}
		expect(&m, KURA_MSG_NET_END, "net");
		kura_msg_u64(&m, KURA_F_NET_ERRNO, &e);
		kura_msg_done(&m);
		if (e == 0 && !stopping)
			kura_msg_fatal("net", "a stream ended as stopped that was not asked to");
		r = err < 0 ? err : stopping ? 0 : -(int)e;
		break;
	}
	pthread_mutex_lock(&c->lock);
	c->watching[index] = false;
	if (r == -EIO)
		close_fd(&c->events[index]); /* the net process is gone: nothing more to say */
	pthread_mutex_unlock(&c->lock);
	return r;
}

static const struct kura_runtime_transport transport = {
	.get = remote_get,
	.stream = remote_stream,
};

int kura_net_runtime_new(struct kura_net_client *c, const char *name, unsigned index,
	struct kura_runtime **ret)
{
	if (!c || index >= c->n_events)
		return -EINVAL;
	return kura_runtime_new_remote(name, &transport, c, index, ret);
}

/* ---- sinks ---- */

static void call_fn(struct kura_net_client *c, const struct kura_sink_event *e)
{
	pthread_mutex_lock(&c->fn_lock);
	if (!c->fn_off && c->fn)
		c->fn(e, c->userdata);
	pthread_mutex_unlock(&c->fn_lock);
}

static void *sink_sender(void *arg)
{
	struct kura_net_client *c = arg;
	bool last = false;

	while (!last) {
		struct queued *list;

		pthread_mutex_lock(&c->qlock);
		while (!c->head && !c->stopping)
			pthread_cond_wait(&c->qcond, &c->qlock);
		list = c->head;
		c->head = c->tail = NULL;
		c->queued = 0;
		last = c->stopping;
		pthread_mutex_unlock(&c->qlock);
		while (list) {
			struct queued *q = list;
			struct kura_msgb b;
			int r = -EPIPE;
			bool dead;

			list = q->next;
			pthread_mutex_lock(&c->qlock);
			dead = c->dead;
			pthread_mutex_unlock(&c->qlock);
			if (!dead) {
				kura_msgb_init(&b, KURA_MSG_NET_RECORD);
				kura_msgb_u64(&b, KURA_F_NET_SEQ, q->seq);
				kura_msgb_bytes(&b, KURA_F_NET_MAC, q->mac, sizeof(q->mac));
				kura_msgb_u64(&b, KURA_F_NET_NOTABLE, q->notable);
				kura_msgb_bytes(&b, KURA_F_NET_LINE, q->line, q->len);
				r = kura_msg_send(c->sink_fd, &b, -1);
				kura_msgb_done(&b);
			}
			free(q);
			if (r < 0) {
				pthread_mutex_lock(&c->qlock);
				c->dead = true;
				c->dropped_total++;
				c->dropped_unreported++;
				pthread_mutex_unlock(&c->qlock);
			}
		}
	}
	pthread_mutex_lock(&c->qlock);
	last = c->dead;
	pthread_mutex_unlock(&c->qlock);
	if (!last) {
		struct kura_msgb b;

		kura_msgb_init(&b, KURA_MSG_NET_FLUSH);
		kura_msgb_u64(&b, KURA_F_NET_TIMEOUT, c->flush_ms ? c->flush_ms : 1);
		(void)kura_msg_send(c->sink_fd, &b, -1);
		kura_msgb_done(&b);
	}
	return NULL;
}

/* Drops, at most once a second. From the reader, not the sender: the sender is the one stuck
 * in a send while a stalled net process makes the queue overflow. */
static void report_drops(struct kura_net_client *c)
{
	int64_t now = kura_clock_ms();
	uint64_t n = 0;

	pthread_mutex_lock(&c->qlock);
	if (c->dropped_unreported && now - c->drop_reported_ms >= 1000) {
		n = c->dropped_unreported;
		c->dropped_unreported = 0;
		c->drop_reported_ms = now;
	}
	pthread_mutex_unlock(&c->qlock);
	if (n)
		call_fn(c,
			&(struct kura_sink_event){ .kind = KURA_SINK_DROPPED,
				.sink = "net",
				.detail = "",
				.dropped = n });
}

static void *sink_reader(void *arg)
{
	struct kura_net_client *c = arg;

	for (;;) {
		struct kura_msg m;
		uint64_t kind = 0, count = 0;
		const char *detail;
		int r = recv_checked(c->sink_fd, 1000, &m, "net");

		report_drops(c);
		if (r == -ETIMEDOUT)
			continue;
		if (r < 0)
			break;
		if (m.type == KURA_MSG_NET_FLUSHED) {
			kura_msg_done(&m);
			pthread_mutex_lock(&c->qlock);
			c->flushed = true;
			pthread_cond_broadcast(&c->qcond);
			pthread_mutex_unlock(&c->qlock);
			break;
		}
		expect(&m, KURA_MSG_NET_EVENT, "net");
		kura_msg_u64(&m, KURA_F_KIND, &kind);
		kura_msg_u64(&m, KURA_F_COUNT, &count);
		detail = kura_msg_str(&m, KURA_F_DETAIL);
		call_fn(c,
			&(struct kura_sink_event){ .kind = (enum kura_sink_event_kind)kind,
				.sink = kura_msg_str(&m, KURA_F_NET_SINK),
				.detail = detail ? detail : "",
				.dropped = count });
		kura_msg_done(&m);
	}
	pthread_mutex_lock(&c->qlock);
	c->dead = true; /* whatever comes next has nowhere to go */
	pthread_cond_broadcast(&c->qcond);
	pthread_mutex_unlock(&c->qlock);
	return NULL;
}

int kura_net_sinks_start(struct kura_net_client *c, unsigned queue_max, kura_sink_event_fn fn,
	void *userdata)
{
	int r;

	if (!c || c->sink_fd < 0 || c->sinks_started)
		return -EINVAL;
	c->queue_max = queue_max ? queue_max : QUEUE_DEFAULT;
	c->fn = fn;
	c->userdata = userdata;
	r = -pthread_create(&c->reader, NULL, sink_reader, c);
	if (r < 0)
		return r;
	r = -pthread_create(&c->sender, NULL, sink_sender, c);
	if (r < 0) {
		shutdown(c->sink_fd, SHUT_RDWR);
		pthread_join(c->reader, NULL);
		return r;
	}
	c->sinks_started = true;
	return 0;
}

static void count_drop(struct kura_net_client *c)
{
	c->dropped_total++;
	c->dropped_unreported++;
}

void kura_net_sinks_submit(struct kura_net_client *c, const char *line, size_t len, uint64_t seq,
	const uint8_t mac[KURA_SINK_MAC_BYTES], bool notable)
{
	struct queued *q;

	if (!c || !c->sinks_started)
		return;
	q = len && len <= KURA_MSG_NET_LINE_MAX ? malloc(sizeof(*q) + len) : NULL;
	pthread_mutex_lock(&c->qlock);
	if (!q || c->dead || c->stopping) {
		count_drop(c);
		pthread_mutex_unlock(&c->qlock);
		free(q);
		return;
	}
	q->next = NULL;
	q->seq = seq;
	memcpy(q->mac, mac, sizeof(q->mac));
	q->notable = notable;
	q->len = len;
	memcpy(q->line, line, len);
	if (c->queued >= c->queue_max) {
		/* The oldest go first, as the sinks themselves drop (audit-sink.h says why). */
		struct queued *old = c->head;

		c->head = old->next;
		if (!c->head)
			c->tail = NULL;
		c->queued--;
		free(old);
		count_drop(c);
	}
	if (c->tail)
		c->tail->next = q;
	else
		c->head = q;
	c->tail = q;
	c->queued++;
	pthread_cond_signal(&c->qcond);
	pthread_mutex_unlock(&c->qlock);
}

void kura_net_sinks_stop(struct kura_net_client *c, unsigned flush_ms)
{
	struct timespec ts = kura_clock_after_ms((int64_t)flush_ms + 1000);

	if (!c || !c->sinks_started)
		return;
	pthread_mutex_lock(&c->fn_lock);
	c->fn_off = true;
	pthread_mutex_unlock(&c->fn_lock);
	pthread_mutex_lock(&c->qlock);
	c->stopping = true;
	c->flush_ms = flush_ms;
	pthread_cond_broadcast(&c->qcond);
	while (!c->flushed && !c->dead &&
		pthread_cond_timedwait(&c->qcond, &c->qlock, &ts) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&c->qlock);
	/* A net process that does not answer in time is cut off: both threads end at the
	 * closed channel. */
	shutdown(c->sink_fd, SHUT_RDWR);
	pthread_join(c->sender, NULL);
	pthread_join(c->reader, NULL);
	c->sinks_started = false;
}

uint64_t kura_net_sinks_dropped(struct kura_net_client *c)
{
	uint64_t n;

	pthread_mutex_lock(&c->qlock);
	n = c->dropped_total;
	pthread_mutex_unlock(&c->qlock);
	return n;
}

uint64_t kura_net_sinks_queued(struct kura_net_client *c)
{
	uint64_t n;

	pthread_mutex_lock(&c->qlock);
	n = c->queued;
	pthread_mutex_unlock(&c->qlock);
	return n;
}

/* The pool of request channels from the front to the key custody process. A call that times
 * out leaves its answer owed on the channel; the channel is not used again until that answer
 * has been read and dropped, so an answer never reaches the wrong request. Touches plaintext:
 * answers holding a value are dropped through kura_msg_done, which wipes them. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "link.h"
#include "log.h"

struct kura_chan {
	int fd;
	bool busy;
	unsigned owed; /* answers to calls that gave up waiting */
};

struct kura_link {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct kura_chan *c;
	size_t n;
	bool dead;
};

int kura_link_new(const int *fds, size_t n, struct kura_link **ret)
{
	struct kura_link *l = calloc(1, sizeof(*l));
	pthread_condattr_t ca;

	if (!l || !(l->c = calloc(n, sizeof(*l->c)))) {
		free(l);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		l->c[i] = (struct kura_chan){ .fd = fds[i] };
	l->n = n;
	pthread_mutex_init(&l->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&l->cond, &ca);
	pthread_condattr_destroy(&ca);
	*ret = l;
	return 0;
}

void kura_link_free(struct kura_link *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++)
		close(l->c[i].fd);
	free(l->c);
	pthread_mutex_destroy(&l->lock);
	pthread_cond_destroy(&l->cond);
	free(l);
}

static void mark_dead(struct kura_link *l)
{
	pthread_mutex_lock(&l->lock);
	if (!l->dead)
		kura_log(LOG_ERR, "front: the key custody process is gone; answering 503");
	l->dead = true;
	pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->lock);
}

int kura_link_chan_fd(const struct kura_chan *c)
{
	return c->fd;
}

bool kura_link_dead(struct kura_link *l)
{
	bool d;

	pthread_mutex_lock(&l->lock);
	d = l->dead;
	pthread_mutex_unlock(&l->lock);
	return d;
}

/* An answer no one relays: a refusal waiting for its verdict is told "count it, do not record
 * it" (whoever gave up on it counted it so), and that answer is owed too. */
static void uncommitted(struct kura_chan *c, const struct kura_msg *m)
{
	struct kura_msgb b;

	if (m->type != KURA_MSG_ANSWER || !kura_msg_count(m, KURA_F_RECORD))
		return;
	kura_msgb_init(&b, KURA_MSG_COMMIT);
	kura_msgb_u64(&b, KURA_F_RECORD, 0);
	if (kura_msg_send(c->fd, &b, -1) == 0)
		c->owed++;
	kura_msgb_done(&b);
}

/* Read and drop what c owes, without waiting: false if some is still to come. Under l->lock. */
static bool settle(struct kura_link *l, struct kura_chan *c)
{
	while (c->owed) {
		struct kura_msg m;
		char why[128];
		int r = kura_msg_recv(c->fd, 0, &m, why);

		if (r == -ETIMEDOUT)
			return false;
		if (r == -EBADMSG)
			kura_msg_fatal("keeper", why);
		if (r < 0) {
			l->dead = true; /* under l->lock, as settle always is */
			return false;
		}
		uncommitted(c, &m);
		kura_msg_done(&m);
		c->owed--;
	}
	return true;
}

int kura_link_take(struct kura_link *l, int timeout_ms, struct kura_chan **ret)
{
	struct timespec deadline;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += timeout_ms / 1000;
	deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&l->lock);
	for (;;) {
		bool owing = false;

		if (l->dead) {
			pthread_mutex_unlock(&l->lock);
			return -EPIPE;
		}
		for (size_t i = 0; i < l->n; i++) {
			struct kura_chan *c = &l->c[i];

			if (c->busy)
				continue;
			if (c->owed && !settle(l, c)) {
				owing = true;
				continue;
			}
			c->busy = true;
			pthread_mutex_unlock(&l->lock);
			*ret = c;
			return 0;
		}
		/* Channels owing an answer are looked at again every 10 ms. */
		if (owing) {
			struct timespec t;

			clock_gettime(CLOCK_MONOTONIC, &t);
			t.tv_nsec += 10 * 1000000L;
			if (t.tv_nsec >= 1000000000L) {
				t.tv_sec++;
				t.tv_nsec -= 1000000000L;
			}
			if (t.tv_sec > deadline.tv_sec ||
				(t.tv_sec == deadline.tv_sec && t.tv_nsec > deadline.tv_nsec))
				t = deadline;
			if (pthread_cond_timedwait(&l->cond, &l->lock, &t) == ETIMEDOUT &&
				(t.tv_sec == deadline.tv_sec && t.tv_nsec == deadline.tv_nsec)) {
				pthread_mutex_unlock(&l->lock);
				return -ETIMEDOUT;
			}
		} else if (pthread_cond_timedwait(&l->cond, &l->lock, &deadline) == ETIMEDOUT) {
			pthread_mutex_unlock(&l->lock);
			return -ETIMEDOUT;
		}
	}
}

void kura_link_give(struct kura_link *l, struct kura_chan *c)
{
	pthread_mutex_lock(&l->lock);
	c->busy = false;
	pthread_cond_signal(&l->cond);
	pthread_mutex_unlock(&l->lock);
}

int kura_link_call(struct kura_link *l, struct kura_chan *c, struct kura_msgb *b, int fd,
	int timeout_ms, struct kura_msg *ret)
{
	char why[128];
	int r;

	r = kura_msg_send(c->fd, b, fd);
	if (r == -EPIPE) {
		mark_dead(l);
		return r;
	}
	if (r < 0)
		return r;
	r = kura_msg_recv(c->fd, timeout_ms, ret, why);
	if (r == -EBADMSG)
		kura_msg_fatal("keeper", why);
	if (r == -ETIMEDOUT) {
		c->owed++;
		return r;
	}
	if (r < 0) {
		mark_dead(l);
		return -EPIPE;
	}
	if (ret->type != KURA_MSG_ANSWER)
		kura_msg_fatal("keeper", "a message other than an answer on a request channel");
	return 0;
}

void kura_link_abandon(struct kura_link *l, struct kura_chan *c, struct kura_msg *m)
{
	uncommitted(c, m);
	kura_msg_done(m);
	kura_link_give(l, c);
}

int kura_link_ask(struct kura_link *l, struct kura_msgb *b, int fd, int timeout_ms,
	struct kura_msg *ret)
{
	struct kura_chan *c;
	int r = kura_link_take(l, timeout_ms, &c);

	if (r < 0)
		return r;
	r = kura_link_call(l, c, b, fd, timeout_ms, ret);
	kura_link_give(l, c);
	return r;
}

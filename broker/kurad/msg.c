/* The protocol between kurad's processes, whole: the schema of every message (which fields, of
 * what kind and size, which once, which required, which carry a descriptor) and the code that
 * sends, receives and checks them. Touches plaintext: ANSWER bodies flagged secret are sent
 * from guarded memory and received into it. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "msg.h"

struct wire_header {
	uint32_t len;
	uint16_t type;
	uint16_t flags;
};

struct wire_field {
	uint16_t tag;
	uint16_t zero;
	uint32_t len;
};

enum kind { U64 = 1, STR, BYTES };

#define REQ 0x1u    /* required */
#define REPEAT 0x2u /* may occur more than once */

struct rule {
	uint16_t tag;
	uint8_t kind;
	uint8_t flags;
	uint64_t min, max; /* the value's bytes (a string's NUL excluded); for U64 the range */
};

struct schema {
	const char *name;
	bool fd;                 /* carries exactly one descriptor (else none) */
	bool secret_ok;          /* may be flagged secret */
	uint32_t max;            /* body bytes */
	uint16_t pair_a, pair_b; /* repeated fields that must occur as many times each */
	struct rule rules[24];
};

#define NAME_MAX_LEN 255u
#define PATH_MAX_LEN (12u + NAME_MAX_LEN) /* "/v1/secrets/" and a name */
#define TEXT_MAX 512u
#define NAMES_MAX 4096u /* KURA_CHANGES_KEPT: the most names a long poll is told of */

/* clang-format off */
static const struct schema schemas[KURA_MSG_TYPES_END] = {
	[KURA_MSG_ASK] = { "ask", true, false, 1024, 0, 0, {
		{ KURA_F_PATH, STR, REQ, 1, PATH_MAX_LEN },
		{ KURA_F_RAW, U64, 0, 0, 1 },
		{ KURA_F_RID, STR, REQ, 16, 16 },
		{ KURA_F_WAIT, U64, 0, 0, 1 },
		{ KURA_F_CLAIM, STR, REQ, 1, 95 },
	} },
	[KURA_MSG_PRINCIPAL] = { "principal", true, false, 64, 0, 0, {
		{ KURA_F_RID, STR, 0, 16, 16 },
	} },
	[KURA_MSG_FILTER] = { "filter", false, false, NAMES_MAX * (8 + NAME_MAX_LEN + 1) + 64, 0, 0, {
		{ KURA_F_WATCH, U64, REQ, 1, UINT64_MAX },
		{ KURA_F_NAME, STR, REPEAT, 1, NAME_MAX_LEN },
	} },
	[KURA_MSG_COMMIT] = { "commit", false, false, 64, 0, 0, {
		{ KURA_F_RECORD, U64, REQ, 0, 1 },
	} },
	[KURA_MSG_UNWATCH] = { "unwatch", false, false, 64, 0, 0, {
		{ KURA_F_WATCH, U64, REQ, 1, UINT64_MAX },
	} },
	[KURA_MSG_RECORD] = { "record", false, false, 2048, 0, 0, {
		{ KURA_F_EVENT, STR, REQ, 1, 16 },
		{ KURA_F_RESULT, STR, REQ, 1, 16 },
		{ KURA_F_CODE, STR, REQ, 1, 64 },
		{ KURA_F_RID, STR, 0, 16, 16 },
		{ KURA_F_SECRET, STR, 0, 1, NAME_MAX_LEN },
		{ KURA_F_PID, U64, REQ, 0, UINT32_MAX },
		{ KURA_F_UID, U64, REQ, 0, UINT32_MAX },
		{ KURA_F_GID, U64, REQ, 0, UINT32_MAX },
		{ KURA_F_RUNTIME_KIND, U64, 0, 0, 16 },
		{ KURA_F_CONTAINER, STR, 0, 64, 64 },
		{ KURA_F_COUNT, U64, 0, 1, UINT32_MAX },
		{ KURA_F_DETAIL, STR, 0, 1, 95 },
	} },
	[KURA_MSG_STATS] = { "stats", false, false, 1024, 0, 0, {
		{ KURA_F_CONNECTIONS, U64, REQ, 0, UINT32_MAX },
		{ KURA_F_WATCHES, U64, REQ, 0, UINT32_MAX },
		{ KURA_F_PRINCIPALS, U64, REQ, 0, UINT32_MAX },
		{ KURA_F_EVICTIONS, U64, REQ, 0, UINT64_MAX },
		{ KURA_F_REFUSED, U64, REQ, 0, UINT64_MAX },
		{ KURA_F_SUPPRESSED, U64, REQ, 0, UINT64_MAX },
		{ KURA_F_PID, U64, REQ, 1, UINT32_MAX },
		{ KURA_F_FETCHES, BYTES, REQ, KURA_FETCH_REASONS * 8, KURA_FETCH_REASONS * 8 },
		{ KURA_F_LIMITED, BYTES, REQ, KURA_LIMITS * 8, KURA_LIMITS * 8 },
		{ KURA_F_FETCH_LATENCY, BYTES, REQ, (KURA_HIST_BUCKETS + 1) * 8,
			(KURA_HIST_BUCKETS + 1) * 8 },
	} },
	[KURA_MSG_ANSWER] = { "answer", false, true, KURA_MSG_MAX_BODY, 0, 0, {
		{ KURA_F_STATUS, U64, REQ, 100, 599 },
		{ KURA_F_CODE, STR, 0, 1, 64 },
		{ KURA_F_MESSAGE, STR, 0, 1, TEXT_MAX },
		{ KURA_F_BODY, BYTES, 0, 0, KURA_MSG_MAX_BODY - 64 },
		{ KURA_F_RAW, U64, 0, 0, 1 },
		{ KURA_F_VERSION, U64, 0, 1, INT64_MAX },
		{ KURA_F_FINGERPRINT, STR, 0, 1, 64 },
		{ KURA_F_CREATED, U64, 0, 0, INT64_MAX },
		{ KURA_F_CLOSE, U64, 0, 0, 1 },
		{ KURA_F_RECORD, U64, 0, 1, 1 },
		{ KURA_F_WATCH, U64, 0, 1, UINT64_MAX },
		{ KURA_F_KIND, U64, 0, 0, 8 },
		{ KURA_F_UID, U64, 0, 0, UINT32_MAX },
		{ KURA_F_NAME, STR, REPEAT, 1, NAME_MAX_LEN },
	} },
	[KURA_MSG_LIMITS] = { "limits", false, false, 128, 0, 0, {
		{ KURA_F_RATE, U64, REQ, 1, 1000000 },
		{ KURA_F_BURST, U64, REQ, 1, 1000000 },
		{ KURA_F_WATCH_MAX, U64, REQ, 1, 3600 },
	} },
	[KURA_MSG_READY] = { "ready", false, false, 64, 0, 0, {
		{ KURA_F_REVISION, U64, REQ, 0, INT64_MAX },
	} },
	[KURA_MSG_CHANGED] = { "changed", false, false, 1024 * (16 + 8 + NAME_MAX_LEN + 1) + 64,
		KURA_F_NAME, KURA_F_REV, {
		{ KURA_F_REVISION, U64, REQ, 0, INT64_MAX },
		{ KURA_F_RESET, U64, 0, 0, 1 },
		{ KURA_F_NAME, STR, REPEAT, 1, NAME_MAX_LEN },
		{ KURA_F_REV, U64, REPEAT, 1, INT64_MAX },
	} },
	/* keeper <-> net (net.c) */
	[KURA_MSG_NET_GET] = { "net-get", false, false, KURA_MSG_NET_PATH_MAX + 64, 0, 0, {
		{ KURA_F_NET_RUNTIME, U64, REQ, 0, KURA_MSG_NET_RUNTIMES - 1 },
		{ KURA_F_PATH, STR, REQ, 1, KURA_MSG_NET_PATH_MAX },
		{ KURA_F_NET_TIMEOUT, U64, REQ, 1, 600000 },
	} },
	[KURA_MSG_NET_GOT] = { "net-got", false, false, KURA_MSG_NET_BODY_MAX + 64, 0, 0, {
		{ KURA_F_NET_ERRNO, U64, REQ, 0, 4095 },
		{ KURA_F_STATUS, U64, 0, 100, 599 },
		{ KURA_F_BODY, BYTES, 0, 0, KURA_MSG_NET_BODY_MAX - 1 },
	} },
	[KURA_MSG_NET_WATCH] = { "net-watch", false, false, KURA_MSG_NET_PATH_MAX + 48, 0, 0, {
		{ KURA_F_NET_RUNTIME, U64, REQ, 0, KURA_MSG_NET_RUNTIMES - 1 },
		{ KURA_F_PATH, STR, REQ, 1, KURA_MSG_NET_PATH_MAX },
	} },
	[KURA_MSG_NET_CHUNK] = { "net-chunk", false, false, KURA_MSG_NET_CHUNK_MAX + 16, 0, 0, {
		{ KURA_F_BODY, BYTES, REQ, 1, KURA_MSG_NET_CHUNK_MAX },
	} },
	[KURA_MSG_NET_END] = { "net-end", false, false, 32, 0, 0, {
		{ KURA_F_NET_ERRNO, U64, REQ, 0, 4095 },
	} },
	[KURA_MSG_NET_STOP] = { "net-stop", false, false, 0, 0, 0, { { 0 } } },
	[KURA_MSG_NET_RECORD] = { "net-record", false, false, KURA_MSG_NET_LINE_MAX + 128, 0, 0, {
		{ KURA_F_NET_SEQ, U64, REQ, 1, UINT64_MAX },
		{ KURA_F_NET_MAC, BYTES, REQ, 32, 32 },
		{ KURA_F_NET_NOTABLE, U64, REQ, 0, 1 },
		{ KURA_F_NET_LINE, BYTES, REQ, 1, KURA_MSG_NET_LINE_MAX },
	} },
	[KURA_MSG_NET_EVENT] = { "net-event", false, false, TEXT_MAX + 128, 0, 0, {
		{ KURA_F_KIND, U64, REQ, 0, 2 },
		{ KURA_F_NET_SINK, STR, REQ, 1, 16 },
		{ KURA_F_DETAIL, STR, 0, 0, TEXT_MAX },
		{ KURA_F_COUNT, U64, 0, 1, UINT64_MAX },
	} },
	[KURA_MSG_NET_FLUSH] = { "net-flush", false, false, 32, 0, 0, {
		{ KURA_F_NET_TIMEOUT, U64, REQ, 1, 600000 },
	} },
	[KURA_MSG_NET_FLUSHED] = { "net-flushed", false, false, 0, 0, 0, { { 0 } } },
};
/* clang-format on */

const char *kura_msg_type_name(enum kura_msg_type t)
{
	return t > 0 && t < KURA_MSG_TYPES_END && schemas[t].name ? schemas[t].name : "unknown";
}

static const struct rule *rule_of(const struct schema *s, uint16_t tag)
{
	for (size_t i = 0; i < sizeof(s->rules) / sizeof(s->rules[0]) && s->rules[i].tag; i++)
		if (s->rules[i].tag == tag)
			return &s->rules[i];
	return NULL;
}

static const struct schema *schema_of(unsigned type)
{
	if (type == 0 || type >= KURA_MSG_TYPES_END || !schemas[type].name)
		return NULL;
	return &schemas[type];
}

/* ---- building ---- */

void kura_msgb_init(struct kura_msgb *b, enum kura_msg_type type)
{
	*b = (struct kura_msgb){ .type = type };
}

static void put(struct kura_msgb *b, enum kura_msg_tag tag, const void *p, size_t n, bool nul)
{
	struct wire_field f = { .tag = (uint16_t)tag, .len = (uint32_t)(n + nul) };
	size_t need = sizeof(f) + n + nul;

	if (b->err)
		return;
	if (b->ext || n > KURA_MSG_MAX_BODY) {
		b->err = -EINVAL; /* nothing after the secret field */
		return;
	}
	if (b->len + need > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		uint8_t *nb;

		while (cap < b->len + need)
			cap *= 2;
		nb = realloc(b->buf, cap); /* never plaintext: that is ext */
		if (!nb) {
			b->err = -ENOMEM;
			return;
		}
		b->buf = nb;
		b->cap = cap;
	}
	memcpy(b->buf + b->len, &f, sizeof(f));
	if (n)
		memcpy(b->buf + b->len + sizeof(f), p, n);
	if (nul)
		b->buf[b->len + sizeof(f) + n] = '\0';
	b->len += need;
	b->n++;
}

void kura_msgb_u64(struct kura_msgb *b, enum kura_msg_tag tag, uint64_t v)
{
	put(b, tag, &v, sizeof(v), false);
}

void kura_msgb_str(struct kura_msgb *b, enum kura_msg_tag tag, const char *s)
{
	put(b, tag, s, strlen(s), true);
}

void kura_msgb_bytes(struct kura_msgb *b, enum kura_msg_tag tag, const void *p, size_t n)
{
	put(b, tag, p, n, false);
}

void kura_msgb_ref(struct kura_msgb *b, enum kura_msg_tag tag, const void *p, size_t n)
{
	if (!b->err && n > KURA_MSG_MAX_BODY)
		b->err = -EINVAL;
	put(b, tag, NULL, 0, false);
	if (b->err)
		return;
	/* The field's header says n bytes; they follow from where they are. */
	((struct wire_field *)(void *)(b->buf + b->len - sizeof(struct wire_field)))->len =
		(uint32_t)n;
	b->ext = p;
	b->ext_len = (uint32_t)n;
}

void kura_msgb_secret(struct kura_msgb *b, enum kura_msg_tag tag, const void *p, size_t n)
{
	kura_msgb_ref(b, tag, p, n);
	if (!b->err)
		b->flags |= KURA_MSG_SECRET;
}

void kura_msgb_done(struct kura_msgb *b)
{
	free(b->buf);
	*b = (struct kura_msgb){ 0 };
}

/* ---- checking ---- */

/* Say why in why[128]; the value of a check that failed. */
#define bad(why, ...) (snprintf((why), 128, __VA_ARGS__), -EBADMSG)

int kura_msg_check(struct kura_msg *m, char why[static 128])
{
	const struct schema *s = schema_of(m->type);
	unsigned seen[24] = { 0 };
	size_t off = 0, nf = 0, rules = 0;

	if (!s)
		return bad(why, "%sunknown type %u", "", m->type);
	while (rules < sizeof(s->rules) / sizeof(s->rules[0]) && s->rules[rules].tag)
		rules++;
	if (m->len > s->max)
		return bad(why, "%s: body of %u bytes, over its limit", s->name, m->len);
	if (m->flags & ~KURA_MSG_SECRET || ((m->flags & KURA_MSG_SECRET) && !s->secret_ok))
		return bad(why, "%s: flags %#x", s->name, m->flags);
	if (s->fd != (m->fd >= 0))
		return s->fd ? bad(why, "%s: no descriptor (%u)", s->name, 0) :
			       bad(why, "%s: a descriptor it cannot carry (%u)", s->name, 1);
	/* First pass: the fields' frames, each within the body. */
	while (off < m->len) {
		struct wire_field f;

		if (m->len - off < sizeof(f))
			return bad(why, "%s: a field header cut at byte %u", s->name,
				(unsigned)off);
		memcpy(&f, m->body + off, sizeof(f));
		off += sizeof(f);
		if (f.zero != 0)
			return bad(why, "%s: a field's reserved bytes are not zero", s->name);
		if (f.len > m->len - off)
			return bad(why, "%s: a field of %u bytes overruns the body", s->name,
				f.len);
		off += f.len;
		nf++;
	}
	free(m->f);
	m->f = nf ? calloc(nf, sizeof(*m->f)) : NULL;
	if (nf && !m->f)
		return -ENOMEM;
	m->nf = nf;
	off = 0;
	for (size_t i = 0; i < nf; i++) {
		struct wire_field f;
		const struct rule *r;
		const uint8_t *d;

		memcpy(&f, m->body + off, sizeof(f));
		d = m->body + off + sizeof(f);
		off += sizeof(f) + f.len;
		r = rule_of(s, f.tag);
		if (!r)
			return bad(why, "%s: unknown field %u", s->name, f.tag);
		if (seen[r - s->rules]++ && !(r->flags & REPEAT))
			return bad(why, "%s: field %u twice", s->name, f.tag);
		if (r->kind == U64) {
			uint64_t v;

			if (f.len != sizeof(v))
				return bad(why, "%s: number field %u of the wrong size", s->name,
					f.tag);
			memcpy(&v, d, sizeof(v));
			if (v < r->min || v > r->max)
				return bad(why, "%s: number field %u out of range", s->name, f.tag);
		} else if (r->kind == STR) {
			if (f.len < 1 || d[f.len - 1] != '\0' || memchr(d, '\0', f.len - 1))
				return bad(why, "%s: string field %u not one NUL-ended string",
					s->name, f.tag);
			if (f.len - 1 < r->min || f.len - 1 > r->max)
				return bad(why, "%s: string field %u of the wrong length", s->name,
					f.tag);
		} else if (f.len < r->min || f.len > r->max) {
			return bad(why, "%s: field %u of the wrong length", s->name, f.tag);
		}
		m->f[i] = (struct kura_field){ .tag = f.tag, .len = f.len, .data = d };
	}
	for (size_t i = 0; i < rules; i++)
		if ((s->rules[i].flags & REQ) && !seen[i])
			return bad(why, "%s: required field %u missing", s->name, s->rules[i].tag);
	if (s->pair_a && kura_msg_count(m, s->pair_a) != kura_msg_count(m, s->pair_b))
		return bad(why, "%s: unpaired fields (%u)", s->name, s->pair_a);
	return 0;
}

/* ---- sending and receiving ---- */

int kura_msg_send(int sock, struct kura_msgb *b, int fd)
{
	struct wire_header h = { .len = (uint32_t)(b->len + b->ext_len),
		.type = (uint16_t)b->type,
		.flags = (uint16_t)b->flags };
	const struct schema *s = schema_of(b->type);
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov[3] = { { &h, sizeof(h) }, { b->buf, b->len },
		{ (void *)b->ext, b->ext_len } };
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 3 };
	size_t left = sizeof(h) + b->len + b->ext_len;

	if (b->err)
		return b->err;
	if (!s || s->fd != (fd >= 0) || (uint64_t)b->len + b->ext_len > s->max ||
		((b->flags & KURA_MSG_SECRET) && !s->secret_ok))
		return -EINVAL;
	if (fd >= 0) {
		struct cmsghdr *cm;

		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = sizeof(ctl.buf);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}
	while (left > 0) {
		ssize_t n = sendmsg(sock, &mh, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == ECONNRESET ? -EPIPE : -errno;
		}
		left -= (size_t)n;
		/* The descriptor went with the first byte; step over what was sent. */
		mh.msg_control = NULL;
		mh.msg_controllen = 0;
		while (n > 0 && mh.msg_iovlen > 0) {
			if ((size_t)n >= mh.msg_iov[0].iov_len) {
				n -= (ssize_t)mh.msg_iov[0].iov_len;
				mh.msg_iov++;
				mh.msg_iovlen--;
			} else {
				mh.msg_iov[0].iov_base = (char *)mh.msg_iov[0].iov_base + n;
				mh.msg_iov[0].iov_len -= (size_t)n;
				n = 0;
			}
		}
	}
	return 0;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait until sock is readable or the deadline (-1: none) passes. */
static int wait_readable(int sock, int64_t deadline)
{
	for (;;) {
		struct pollfd p = { .fd = sock, .events = POLLIN };
		int t = deadline < 0 ? -1 :
				       (int)(deadline - now_ms() > 0 ? deadline - now_ms() : 0);
		int n = poll(&p, 1, t);

		if (n > 0)
			return 0;
		if (n == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

/* Read exactly n bytes (after the first, which began the message). The rest of a message is
 * nearly always there already (it was sent in one sendmsg): read first, and wait only when it
 * is not, which saves a poll per message. */
static int read_full(int sock, void *buf, size_t n, int64_t deadline)
{
	size_t got = 0;

	while (got < n) {
		ssize_t k = recv(sock, (char *)buf + got, n - got, MSG_DONTWAIT);

		if (k == 0)
			return -EBADMSG; /* closed inside a message */
		if (k < 0) {
			int r;

			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				return errno == ECONNRESET ? -EPIPE : -errno;
			r = wait_readable(sock, deadline);
			if (r < 0)
				return r;
			continue;
		}
		got += (size_t)k;
	}
	return 0;
}

static void close_fds(struct msghdr *mh)
{
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
			for (size_t i = 0; i < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
				int fd;

				memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
				close(fd);
			}
}

int kura_msg_recv(int sock, int timeout_ms, struct kura_msg *m, char why[static 128])
{
	int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	struct wire_header h;
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { &h, sizeof(h) };
	struct msghdr mh = { .msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = ctl.buf,
		.msg_controllen = sizeof(ctl.buf) };
	ssize_t n;
	int r;

	*m = (struct kura_msg){ .fd = -1 };
	why[0] = '\0';
	for (;;) {
		r = wait_readable(sock, deadline);
		if (r < 0)
			return r;
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
		if (n >= 0 || (errno != EINTR && errno != EAGAIN))
			break;
	}
	if (n < 0)
		return errno == ECONNRESET ? -EPIPE : -errno;
	if (n == 0)
		return -EPIPE;
	/* Begun, a message must be whole soon, whatever the caller would wait for the next: a
	 * peer that sends half of one is broken. */
	if (deadline < 0 || deadline > now_ms() + KURA_MSG_WHOLE_MS)
		deadline = now_ms() + KURA_MSG_WHOLE_MS;
	if (mh.msg_flags & MSG_CTRUNC) {
		close_fds(&mh);
		snprintf(why, 128, "more descriptors than a message carries");
		return -EBADMSG;
	}
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS ||
			cm->cmsg_len != CMSG_LEN(sizeof(int)) || m->fd >= 0) {
			close_fds(&mh);
			if (m->fd >= 0)
				close(m->fd);
			m->fd = -1;
			snprintf(why, 128, "unexpected control data");
			return -EBADMSG;
		}
		memcpy(&m->fd, CMSG_DATA(cm), sizeof(int));
	}
	if ((size_t)n < sizeof(h)) {
		r = read_full(sock, (char *)&h + n, sizeof(h) - (size_t)n, deadline);
		if (r == -ETIMEDOUT) {
			snprintf(why, 128, "a header cut short");
			r = -EBADMSG;
		}
		if (r < 0)
			goto fail;
	}
	m->type = h.type;
	m->flags = h.flags;
	m->len = h.len;
	/* The header is checked before the body is read: a length past the type's limit is
	 * refused without allocating it. */
	if (!schema_of(h.type) || h.len > schema_of(h.type)->max) {
		r = bad(why, "%s: header of type %u or length out of bounds", "", h.type);
		goto fail;
	}
	if (h.flags & KURA_MSG_SECRET) {
		r = kura_secbuf_new(h.len ? h.len : 1, &m->guarded);
		if (r < 0)
			goto fail;
		m->body = m->guarded->data;
	} else {
		m->body = malloc(h.len ? h.len : 1);
		if (!m->body) {
			r = -ENOMEM;
			goto fail;
		}
	}
	r = read_full(sock, m->body, h.len, deadline);
	if (r == -ETIMEDOUT) {
		snprintf(why, 128, "%s: cut short (%u bytes announced)", kura_msg_type_name(h.type),
			h.len);
		r = -EBADMSG;
	}
	if (r == 0)
		r = kura_msg_check(m, why);
	if (r == 0)
		return 0;
fail:
	if (r == -EBADMSG && !why[0])
		snprintf(why, 128, "closed inside a message");
	kura_msg_done(m);
	return r;
}

/* ---- reading fields ---- */

static const struct kura_field *find(const struct kura_msg *m, enum kura_msg_tag tag)
{
	for (size_t i = 0; i < m->nf; i++)
		if (m->f[i].tag == tag)
			return &m->f[i];
	return NULL;
}

bool kura_msg_u64(const struct kura_msg *m, enum kura_msg_tag tag, uint64_t *ret)
{
	const struct kura_field *f = find(m, tag);

	if (!f || f->len != sizeof(*ret))
		return false;
	memcpy(ret, f->data, sizeof(*ret));
	return true;
}

const char *kura_msg_str(const struct kura_msg *m, enum kura_msg_tag tag)
{
	const struct kura_field *f = find(m, tag);

	return f && f->len && f->data[f->len - 1] == '\0' ? (const char *)f->data : NULL;
}

const void *kura_msg_bytes(const struct kura_msg *m, enum kura_msg_tag tag, size_t *ret_len)
{
	const struct kura_field *f = find(m, tag);

	*ret_len = f ? f->len : 0;
	return f ? f->data : NULL;
}

size_t kura_msg_count(const struct kura_msg *m, enum kura_msg_tag tag)
{
	size_t n = 0;

	for (size_t i = 0; i < m->nf; i++)
		n += m->f[i].tag == tag;
	return n;
}

const struct kura_field *kura_msg_nth(const struct kura_msg *m, enum kura_msg_tag tag, size_t i)
{
	for (size_t k = 0; k < m->nf; k++)
		if (m->f[k].tag == tag && i-- == 0)
			return &m->f[k];
	return NULL;
}

int kura_msg_take_fd(struct kura_msg *m)
{
	int fd = m->fd;

	m->fd = -1;
	return fd;
}

struct kura_secbuf *kura_msg_take_guarded(struct kura_msg *m)
{
	struct kura_secbuf *g = m->guarded;

	m->guarded = NULL;
	if (g)
		m->body = NULL;
	return g;
}

void *kura_msg_take_body(struct kura_msg *m)
{
	void *body = m->guarded ? NULL : m->body;

	if (body)
		m->body = NULL;
	return body;
}

void kura_msg_done(struct kura_msg *m)
{
	if (m->fd >= 0)
		close(m->fd);
	if (m->guarded)
		kura_secbuf_free(m->guarded);
	else
		free(m->body);
	free(m->f);
	*m = (struct kura_msg){ .fd = -1 };
}

void kura_msg_fatal(const char *from, const char *why)
{
	kura_log(LOG_CRIT, "a malformed message from the %s process (%s): stopping", from, why);
	_exit(70);
}

/* Unit tests for the protocol between kurad's processes (broker/kurad/msg.c) over real
 * socketpairs: every type round-trips with its fields; every malformed message, written as raw
 * bytes with sendmsg(), is -EBADMSG and never a decoded message; a secret ANSWER lands in
 * guarded memory and is wiped when done; timeouts and a closed peer. Touches test plaintext. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "msg.h"
#include "secbuf.h"
#include "tap.h"

/* ---- raw bytes, as a confused or hostile peer writes them ---- */

struct raw {
	uint8_t b[70000];
	size_t n;
};

static void raw_field(struct raw *r, uint16_t tag, const void *p, uint32_t len)
{
	uint16_t zero = 0;

	memcpy(r->b + r->n, &tag, 2);
	memcpy(r->b + r->n + 2, &zero, 2);
	memcpy(r->b + r->n + 4, &len, 4);
	if (len)
		memcpy(r->b + r->n + 8, p, len);
	r->n += 8 + len;
}

static void raw_u64(struct raw *r, uint16_t tag, uint64_t v)
{
	raw_field(r, tag, &v, 8);
}

/* A string with its NUL. */
static void raw_str(struct raw *r, uint16_t tag, const char *s)
{
	raw_field(r, tag, s, (uint32_t)strlen(s) + 1);
}

/* Writes header and body (n bytes of it) with nfds descriptors on the first byte. */
static void raw_send(int s, uint16_t type, uint16_t flags, uint32_t hlen, const struct raw *r,
	size_t n, const int *fds, int nfds)
{
	struct {
		uint32_t len;
		uint16_t type, flags;
	} h = { hlen, type, flags };
	union {
		char buf[CMSG_SPACE(4 * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov[2] = { { &h, sizeof(h) }, { (void *)r->b, n } };
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };

	if (nfds > 0) {
		struct cmsghdr *cm;

		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
		memcpy(CMSG_DATA(cm), fds, (size_t)nfds * sizeof(int));
	}
	if (sendmsg(s, &mh, MSG_NOSIGNAL) != (ssize_t)(sizeof(h) + n))
		abort();
}

static void pair(int sv[2])
{
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
}

static int open_fds(void)
{
	int n = 0;

	for (int fd = 0; fd < 1024; fd++)
		n += fcntl(fd, F_GETFD) >= 0;
	return n;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int devnull(void)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		abort();
	return fd;
}

/*
 * Sends the raw message, closes the writer (so a short message is cut by EOF), and checks that
 * the receiver refuses it: -EBADMSG, a reason, nothing decoded, no descriptor left open.
 */
static void expect_bad(const char *desc, uint16_t type, uint16_t flags, const struct raw *r,
	int nfds)
{
	int sv[2], fds[4], before, rc;
	struct kura_msg m;
	char why[128];

	before = open_fds();
	pair(sv);
	for (int i = 0; i < nfds; i++)
		fds[i] = devnull();
	raw_send(sv[1], type, flags, (uint32_t)r->n, r, r->n, fds, nfds);
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
	close(sv[1]);
	rc = kura_msg_recv(sv[0], 2000, &m, why);
	tap_ok(rc == -EBADMSG && why[0] && m.nf == 0 && !m.f && !m.body && m.fd == -1 && !m.guarded,
		"%s: -EBADMSG, nothing decoded (rc %d, %s)", desc, rc, rc == -EBADMSG ? why : "");
	if (rc == 0)
		kura_msg_done(&m);
	close(sv[0]);
	tap_is(open_fds(), before, "%s: no descriptor left open", desc);
}

/* A valid ASK body, to be broken one field at a time. */
static void ask_body(struct raw *r, const char *skip)
{
	r->n = 0;
	if (!skip || strcmp(skip, "path"))
		raw_str(r, KURA_F_PATH, "/v1/secrets/db/password");
	if (!skip || strcmp(skip, "rid"))
		raw_str(r, KURA_F_RID, "0123456789abcdef");
	if (!skip || strcmp(skip, "claim"))
		raw_str(r, KURA_F_CLAIM, "uid:1000");
}

/* An ASK whose path field is len bytes at path (its NUL counted, or not), with this rid. */
static void bad_ask(struct raw *r, const char *desc, const char *path, uint32_t len,
	const char *rid)
{
	r->n = 0;
	raw_field(r, KURA_F_PATH, path, len);
	raw_str(r, KURA_F_RID, rid);
	raw_str(r, KURA_F_CLAIM, "uid:1000");
	expect_bad(desc, KURA_MSG_ASK, 0, r, 1);
}

/* A message of type whose only field is the number v under tag. */
static void bad_u64(struct raw *r, const char *desc, uint16_t type, uint16_t tag, uint64_t v)
{
	r->n = 0;
	raw_u64(r, tag, v);
	expect_bad(desc, type, 0, r, 0);
}

static void test_malformed(void)
{
	struct raw *r = calloc(1, sizeof(*r));
	char big[600];
	int sv[2], fds[2], rc, before;
	struct kura_msg m;
	char why[128];

	/* A header cut short, then EOF. */
	pair(sv);
	if (write(sv[1], "\x08\x00\x00", 3) != 3)
		abort();
	close(sv[1]);
	rc = kura_msg_recv(sv[0], 2000, &m, why);
	tap_ok(rc == -EBADMSG && why[0], "short header then EOF: -EBADMSG (%d)", rc);
	close(sv[0]);

	/* A length over the type's limit is refused from the header alone: nothing of the body
	 * was sent, the writer stays open, and the answer does not wait for it. */
	pair(sv);
	r->n = 0;
	raw_send(sv[1], KURA_MSG_COMMIT, 0, 65, r, 0, NULL, 0);
	{
		int64_t t0 = now_ms();

		rc = kura_msg_recv(sv[0], 5000, &m, why);
		tap_ok(rc == -EBADMSG && now_ms() - t0 < 1000,
			"commit header of 65 bytes (limit 64): -EBADMSG at once (%d, %s)", rc, why);
	}
	pair(fds);
	raw_send(fds[1], KURA_MSG_ANSWER, KURA_MSG_SECRET, KURA_MSG_MAX_BODY + 1, r, 0, NULL, 0);
	rc = kura_msg_recv(fds[0], 5000, &m, why);
	tap_ok(rc == -EBADMSG && !m.guarded, "answer header over 32 MiB: -EBADMSG (%d)", rc);
	close(sv[0]);
	close(sv[1]);
	close(fds[0]);
	close(fds[1]);

	/* A body cut short, then EOF. */
	pair(sv);
	ask_body(r, NULL);
	fds[0] = devnull();
	raw_send(sv[1], KURA_MSG_ASK, 0, (uint32_t)r->n, r, r->n - 5, fds, 1);
	close(fds[0]);
	close(sv[1]);
	before = open_fds();
	rc = kura_msg_recv(sv[0], 2000, &m, why);
	tap_ok(rc == -EBADMSG && m.fd == -1 && !m.body,
		"body cut 5 bytes short then EOF: -EBADMSG (%d)", rc);
	tap_is(open_fds(), before, "... and the descriptor it carried is closed");
	close(sv[0]);

	r->n = 0;
	raw_u64(r, KURA_F_RECORD, 1);
	expect_bad("unknown type 0", 0, 0, r, 0);
	expect_bad("unknown type TYPES_END", KURA_MSG_TYPES_END, 0, r, 0);
	expect_bad("unknown type 0xffff", 0xffff, 0, r, 0);

	r->n = 0;
	raw_u64(r, KURA_F_RECORD, 1);
	raw_u64(r, 999, 1);
	expect_bad("unknown field tag 999", KURA_MSG_COMMIT, 0, r, 0);
	r->n = 0;
	raw_u64(r, KURA_F_RECORD, 1);
	raw_str(r, KURA_F_PATH, "/v1/whoami");
	expect_bad("a known tag outside its type's schema (path in commit)", KURA_MSG_COMMIT, 0, r,
		0);

	r->n = 0;
	raw_u64(r, KURA_F_RECORD, 1);
	raw_u64(r, KURA_F_RECORD, 0);
	expect_bad("a once-only field twice (commit record)", KURA_MSG_COMMIT, 0, r, 0);
	ask_body(r, NULL);
	raw_str(r, KURA_F_PATH, "/v1/whoami");
	expect_bad("a once-only string twice (ask path)", KURA_MSG_ASK, 0, r, 1);

	r->n = 0;
	expect_bad("required field missing (empty commit)", KURA_MSG_COMMIT, 0, r, 0);
	ask_body(r, "rid");
	expect_bad("required field missing (ask without rid)", KURA_MSG_ASK, 0, r, 1);
	ask_body(r, "claim");
	expect_bad("required field missing (ask without claim)", KURA_MSG_ASK, 0, r, 1);
	bad_u64(r, "required fields missing (stats with one counter)", KURA_MSG_STATS,
		KURA_F_CONNECTIONS, 1);

	r->n = 0;
	raw_field(r, KURA_F_RECORD, "\x01\0\0\0\0\0\0", 7);
	expect_bad("a u64 of 7 bytes", KURA_MSG_COMMIT, 0, r, 0);
	r->n = 0;
	raw_field(r, KURA_F_RECORD, "\x01\0\0\0\0\0\0\0\0", 9);
	expect_bad("a u64 of 9 bytes", KURA_MSG_COMMIT, 0, r, 0);

	bad_u64(r, "a number over its range (commit record 2)", KURA_MSG_COMMIT, KURA_F_RECORD, 2);
	bad_u64(r, "a number under its range (unwatch 0)", KURA_MSG_UNWATCH, KURA_F_WATCH, 0);
	bad_u64(r, "answer status 99", KURA_MSG_ANSWER, KURA_F_STATUS, 99);
	bad_u64(r, "answer status 600", KURA_MSG_ANSWER, KURA_F_STATUS, 600);
	bad_u64(r, "ready revision past INT64_MAX", KURA_MSG_READY, KURA_F_REVISION,
		(uint64_t)INT64_MAX + 1);

	bad_ask(r, "a string without its NUL", "/v1/whoami", 10, "0123456789abcdef");
	bad_ask(r, "a string with an inner NUL", "/v1/who\0ami", 12, "0123456789abcdef");
	bad_ask(r, "a string of 0 bytes (not even its NUL)", "", 0, "0123456789abcdef");
	bad_ask(r, "an empty string where one is required", "", sizeof(""), "0123456789abcdef");

	memset(big, 'a', sizeof(big));
	memcpy(big, "/v1/secrets/", 12);
	big[12 + 256] = '\0';
	bad_ask(r, "a path one byte over its limit", big, (uint32_t)strlen(big) + 1,
		"0123456789abcdef");
	bad_ask(r, "a request id of 17 characters (exactly 16)", "/v1/whoami", sizeof("/v1/whoami"),
		"0123456789abcdef0");
	bad_ask(r, "a request id of 15 characters", "/v1/whoami", sizeof("/v1/whoami"),
		"0123456789abcde");
	big[12 + 256] = 'a';
	big[513] = '\0';
	r->n = 0;
	raw_u64(r, KURA_F_STATUS, 500);
	raw_str(r, KURA_F_MESSAGE, big);
	expect_bad("an answer's message of 513 characters", KURA_MSG_ANSWER, 0, r, 0);

	r->n = 0;
	raw_u64(r, KURA_F_RECORD, 1);
	expect_bad("a descriptor on a type that carries none (commit)", KURA_MSG_COMMIT, 0, r, 1);
	ask_body(r, NULL);
	expect_bad("no descriptor on a type that needs one (ask)", KURA_MSG_ASK, 0, r, 0);
	expect_bad("two descriptors (ask)", KURA_MSG_ASK, 0, r, 2);
	expect_bad("three descriptors (ask)", KURA_MSG_ASK, 0, r, 3);
	r->n = 0;
	expect_bad("no descriptor on a principal", KURA_MSG_PRINCIPAL, 0, r, 0);

	r->n = 0;
	raw_u64(r, KURA_F_RECORD, 1);
	expect_bad("the secret flag on commit", KURA_MSG_COMMIT, KURA_MSG_SECRET, r, 0);
	ask_body(r, NULL);
	expect_bad("the secret flag on ask", KURA_MSG_ASK, KURA_MSG_SECRET, r, 1);
	r->n = 0;
	raw_u64(r, KURA_F_STATUS, 200);
	expect_bad("an unknown flag bit on answer", KURA_MSG_ANSWER, 0x2, r, 0);

	/* Frames that lie about their length. */
	r->n = 0;
	raw_u64(r, KURA_F_RECORD, 1);
	memcpy(r->b + 4, &(uint32_t){ 9 }, 4);
	expect_bad("a field's length past the body", KURA_MSG_COMMIT, 0, r, 0);
	r->n = 0;
	raw_u64(r, KURA_F_RECORD, 1);
	memcpy(r->b + 4, &(uint32_t){ UINT32_MAX }, 4);
	expect_bad("a field's length of 4 GiB", KURA_MSG_COMMIT, 0, r, 0);
	r->n = 0;
	raw_u64(r, KURA_F_RECORD, 1);
	r->b[2] = 1;
	expect_bad("a field header's zero bytes not zero", KURA_MSG_COMMIT, 0, r, 0);
	r->n = 0;
	raw_u64(r, KURA_F_RECORD, 1);
	r->n += 5; /* five stray bytes: a field header cut */
	expect_bad("a field header cut at the body's end", KURA_MSG_COMMIT, 0, r, 0);

	r->n = 0;
	raw_u64(r, KURA_F_REVISION, 7);
	raw_str(r, KURA_F_NAME, "a");
	raw_str(r, KURA_F_NAME, "b");
	raw_u64(r, KURA_F_REV, 3);
	expect_bad("changed: two names, one revision", KURA_MSG_CHANGED, 0, r, 0);

	/* A descriptor on the body's bytes, not the header's, is not the message's: the ask has
	 * none, and the kernel drops the stray one (read() takes no control data). */
	before = open_fds();
	pair(sv);
	ask_body(r, NULL);
	{
		struct {
			uint32_t len;
			uint16_t type, flags;
		} h = { (uint32_t)r->n, KURA_MSG_ASK, 0 };
		union {
			char buf[CMSG_SPACE(sizeof(int))];
			struct cmsghdr align;
		} ctl;
		struct iovec iov = { r->b, r->n };
		struct msghdr mh = { .msg_iov = &iov,
			.msg_iovlen = 1,
			.msg_control = ctl.buf,
			.msg_controllen = sizeof(ctl.buf) };
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		int fd = devnull();

		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
		if (write(sv[1], &h, sizeof(h)) != sizeof(h) ||
			sendmsg(sv[1], &mh, MSG_NOSIGNAL) != (ssize_t)r->n)
			abort();
		close(fd);
	}
	close(sv[1]);
	rc = kura_msg_recv(sv[0], 2000, &m, why);
	tap_ok(rc == -EBADMSG && m.fd == -1,
		"a descriptor sent on the body, not the header: -EBADMSG (%d %s)", rc, why);
	if (rc == 0)
		kura_msg_done(&m);
	close(sv[0]);
	tap_is(open_fds(), before, "... and the stray descriptor is not left open");
	free(r);
}

/* ---- every type, round trip ---- */

enum kind { U, S, B };

/* 16 bytes: the STATS arrays are whole multiples of it (metrics.h). */
#define HEX16 "0123456789abcdef"

struct fv {
	uint16_t tag;
	enum kind kind;
	uint64_t u;
	const char *s;
};

#define END                                                                                        \
	{                                                                                          \
		0, U, 0, NULL                                                                      \
	}

static const struct {
	enum kura_msg_type type;
	struct fv f[16];
} every[] = {
	{ KURA_MSG_ASK,
		{ { KURA_F_PATH, S, 0, "/v1/secrets/db/password" }, { KURA_F_RAW, U, 1, 0 },
			{ KURA_F_RID, S, 0, "0123456789abcdef" }, { KURA_F_WAIT, U, 1, 0 },
			{ KURA_F_CLAIM, S, 0, "container:docker:" }, END } },
	{ KURA_MSG_PRINCIPAL, { { KURA_F_RID, S, 0, "fedcba9876543210" }, END } },
	{ KURA_MSG_FILTER,
		{ { KURA_F_WATCH, U, UINT64_MAX, 0 }, { KURA_F_NAME, S, 0, "db/a" },
			{ KURA_F_NAME, S, 0, "db/b" }, { KURA_F_NAME, S, 0, "x" }, END } },
	{ KURA_MSG_RECORD,
		{ { KURA_F_EVENT, S, 0, "fetch" }, { KURA_F_RESULT, S, 0, "denied" },
			{ KURA_F_CODE, S, 0, "no_grant" }, { KURA_F_RID, S, 0, "0123456789abcdef" },
			{ KURA_F_SECRET, S, 0, "db/password" }, { KURA_F_PID, U, UINT32_MAX, 0 },
			{ KURA_F_UID, U, 1000, 0 }, { KURA_F_GID, U, 0, 0 },
			{ KURA_F_RUNTIME_KIND, U, 16, 0 },
			{ KURA_F_CONTAINER, S, 0,
				"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" },
			{ KURA_F_COUNT, U, 3, 0 }, { KURA_F_DETAIL, S, 0, "uid 1000" }, END } },
	{ KURA_MSG_STATS,
		{ { KURA_F_CONNECTIONS, U, 1, 0 }, { KURA_F_WATCHES, U, 2, 0 },
			{ KURA_F_PRINCIPALS, U, 3, 0 }, { KURA_F_EVICTIONS, U, UINT64_MAX, 0 },
			{ KURA_F_REFUSED, U, 5, 0 }, { KURA_F_SUPPRESSED, U, 0, 0 },
			{ KURA_F_PID, U, 4194304, 0 },
			{ KURA_F_FETCHES, B, 0, HEX16 HEX16 HEX16 HEX16 HEX16 HEX16 },
			{ KURA_F_LIMITED, B, 0, HEX16 HEX16 HEX16 },
			{ KURA_F_FETCH_LATENCY, B, 0, HEX16 HEX16 HEX16 HEX16 HEX16 HEX16 HEX16 },
			END } },
	{ KURA_MSG_COMMIT, { { KURA_F_RECORD, U, 1, 0 }, END } },
	{ KURA_MSG_UNWATCH, { { KURA_F_WATCH, U, 42, 0 }, END } },
	{ KURA_MSG_ANSWER,
		{ { KURA_F_STATUS, U, 403, 0 }, { KURA_F_CODE, S, 0, "forbidden" },
			{ KURA_F_MESSAGE, S, 0, "no grant for this peer" },
			{ KURA_F_BODY, B, 0, "{\"error\":\"forbidden\"}" }, { KURA_F_RAW, U, 0, 0 },
			{ KURA_F_VERSION, U, INT64_MAX, 0 }, { KURA_F_FINGERPRINT, S, 0, "ab12" },
			{ KURA_F_CREATED, U, 1700000000, 0 }, { KURA_F_CLOSE, U, 1, 0 },
			{ KURA_F_RECORD, U, 1, 0 }, { KURA_F_WATCH, U, 9, 0 },
			{ KURA_F_KIND, U, 8, 0 }, { KURA_F_UID, U, UINT32_MAX, 0 },
			{ KURA_F_NAME, S, 0, "n1" }, { KURA_F_NAME, S, 0, "n2" }, END } },
	{ KURA_MSG_READY, { { KURA_F_REVISION, U, 12345, 0 }, END } },
	{ KURA_MSG_CHANGED,
		{ { KURA_F_REVISION, U, 99, 0 }, { KURA_F_RESET, U, 1, 0 },
			{ KURA_F_NAME, S, 0, "a" }, { KURA_F_REV, U, 97, 0 },
			{ KURA_F_NAME, S, 0, "b" }, { KURA_F_REV, U, 98, 0 }, END } },
	{ KURA_MSG_LIMITS,
		{ { KURA_F_RATE, U, 100, 0 }, { KURA_F_BURST, U, 1000000, 0 },
			{ KURA_F_WATCH_MAX, U, 3600, 0 }, END } },
	{ KURA_MSG_NET_GET,
		{ { KURA_F_NET_RUNTIME, U, 1, 0 }, { KURA_F_PATH, S, 0, "/containers/x/json" },
			{ KURA_F_NET_TIMEOUT, U, 2000, 0 }, END } },
	{ KURA_MSG_NET_GOT,
		{ { KURA_F_NET_ERRNO, U, 0, 0 }, { KURA_F_STATUS, U, 200, 0 },
			{ KURA_F_BODY, B, 0, "{\"Id\":\"x\"}" }, END } },
	{ KURA_MSG_NET_WATCH,
		{ { KURA_F_NET_RUNTIME, U, 0, 0 }, { KURA_F_PATH, S, 0, "/events" }, END } },
	{ KURA_MSG_NET_CHUNK, { { KURA_F_BODY, B, 0, "{}" }, END } },
	{ KURA_MSG_NET_END, { { KURA_F_NET_ERRNO, U, 4095, 0 }, END } },
	{ KURA_MSG_NET_STOP, { END } },
	{ KURA_MSG_NET_RECORD,
		{ { KURA_F_NET_SEQ, U, 7, 0 },
			{ KURA_F_NET_MAC, B, 0, "0123456789abcdef0123456789abcdef" },
			{ KURA_F_NET_NOTABLE, U, 1, 0 }, { KURA_F_NET_LINE, B, 0, "{\"seq\":7}" },
			END } },
	{ KURA_MSG_NET_EVENT,
		{ { KURA_F_KIND, U, 2, 0 }, { KURA_F_NET_SINK, S, 0, "syslog" },
			{ KURA_F_DETAIL, S, 0, "refused" }, { KURA_F_COUNT, U, 5, 0 }, END } },
	{ KURA_MSG_NET_FLUSH, { { KURA_F_NET_TIMEOUT, U, 2000, 0 }, END } },
	{ KURA_MSG_NET_FLUSHED, { END } },
};

/* Each field of the table is in m, in order for repeated tags, with exactly its value. */
static bool same_fields(const struct kura_msg *m, const struct fv *f)
{
	size_t n = 0;

	for (; f[n].tag; n++) {
		size_t nth = 0, len;
		const struct kura_field *got;

		for (size_t k = 0; k < n; k++)
			nth += f[k].tag == f[n].tag;
		got = kura_msg_nth(m, f[n].tag, nth);
		if (!got)
			return false;
		if (f[n].kind == U) {
			uint64_t v;

			if (got->len != 8 || (memcpy(&v, got->data, 8), v != f[n].u))
				return false;
			if (nth == 0 && (!kura_msg_u64(m, f[n].tag, &v) || v != f[n].u))
				return false;
		} else if (f[n].kind == S) {
			if (got->len != strlen(f[n].s) + 1 ||
				strcmp((const char *)got->data, f[n].s))
				return false;
			if (nth == 0 &&
				(!kura_msg_str(m, f[n].tag) ||
					strcmp(kura_msg_str(m, f[n].tag), f[n].s)))
				return false;
		} else {
			const void *p = kura_msg_bytes(m, f[n].tag, &len);

			if (!p || len != strlen(f[n].s) || memcmp(p, f[n].s, len))
				return false;
		}
	}
	return m->nf == n;
}

static void test_every_type(void)
{
	bool seen[KURA_MSG_TYPES_END] = { false };

	for (size_t i = 0; i < sizeof(every) / sizeof(every[0]); i++) {
		const char *name = kura_msg_type_name(every[i].type);
		struct kura_msgb b;
		struct kura_msg m;
		char why[128];
		int sv[2], fd = -1, rc;
		bool fd_ok = true;
		struct stat a, c;

		seen[every[i].type] = true;
		pair(sv);
		kura_msgb_init(&b, every[i].type);
		for (const struct fv *f = every[i].f; f->tag; f++) {
			if (f->kind == U)
				kura_msgb_u64(&b, f->tag, f->u);
			else if (f->kind == S)
				kura_msgb_str(&b, f->tag, f->s);
			else
				kura_msgb_bytes(&b, f->tag, f->s, strlen(f->s));
		}
		if (every[i].type == KURA_MSG_ASK || every[i].type == KURA_MSG_PRINCIPAL) {
			fd = devnull();
			fstat(fd, &a);
		}
		rc = kura_msg_send(sv[1], &b, fd);
		tap_is(rc, 0, "%s: sent", name);
		kura_msgb_done(&b);
		rc = kura_msg_recv(sv[0], 2000, &m, why);
		tap_ok(rc == 0 && m.type == every[i].type && m.flags == 0 && !m.guarded,
			"%s: received and checked (%d %s)", name, rc, why);
		if (rc < 0) {
			close(sv[0]);
			close(sv[1]);
			continue;
		}
		tap_ok(same_fields(&m, every[i].f), "%s: every field with its value, in order",
			name);
		if (fd >= 0) {
			fd_ok = m.fd >= 0 && m.fd != fd && fstat(m.fd, &c) == 0 &&
				a.st_ino == c.st_ino && a.st_dev == c.st_dev &&
				(fcntl(m.fd, F_GETFD) & FD_CLOEXEC);
			close(fd);
		} else {
			fd_ok = m.fd == -1;
		}
		tap_ok(fd_ok, "%s: %s", name,
			fd >= 0 ? "the descriptor sent arrives (same file, close-on-exec)" :
				  "no descriptor");
		kura_msg_done(&m);
		/* The stream stays in step: a second message on the same pair. */
		kura_msgb_init(&b, KURA_MSG_READY);
		kura_msgb_u64(&b, KURA_F_REVISION, i);
		kura_msg_send(sv[1], &b, -1);
		kura_msgb_done(&b);
		rc = kura_msg_recv(sv[0], 2000, &m, why);
		tap_ok(rc == 0 && m.type == KURA_MSG_READY, "%s: the next message follows", name);
		if (rc == 0)
			kura_msg_done(&m);
		close(sv[0]);
		close(sv[1]);
	}
	for (int t = 1; t < KURA_MSG_TYPES_END; t++)
		tap_ok(seen[t], "type %d (%s) is round-tripped above", t, kura_msg_type_name(t));
}

/* The builder refuses what its schema refuses, before a byte is sent. */
static void test_send_refuses(void)
{
	struct kura_msgb b;
	int sv[2], fd = devnull(), avail = -1;
	static const char v[] = "hunter2";

	pair(sv);
	kura_msgb_init(&b, KURA_MSG_COMMIT);
	kura_msgb_u64(&b, KURA_F_RECORD, 1);
	tap_is(kura_msg_send(sv[1], &b, fd), -EINVAL, "send: a descriptor on commit is -EINVAL");
	kura_msgb_done(&b);
	kura_msgb_init(&b, KURA_MSG_ASK);
	kura_msgb_str(&b, KURA_F_PATH, "/v1/whoami");
	tap_is(kura_msg_send(sv[1], &b, -1), -EINVAL, "send: an ask without its socket is -EINVAL");
	kura_msgb_done(&b);
	kura_msgb_init(&b, KURA_MSG_COMMIT);
	kura_msgb_secret(&b, KURA_F_BODY, v, sizeof(v) - 1);
	tap_is(kura_msg_send(sv[1], &b, -1), -EINVAL, "send: a secret on commit is -EINVAL");
	kura_msgb_done(&b);
	kura_msgb_init(&b, KURA_MSG_ANSWER);
	kura_msgb_u64(&b, KURA_F_STATUS, 200);
	kura_msgb_secret(&b, KURA_F_BODY, v, sizeof(v) - 1);
	kura_msgb_u64(&b, KURA_F_CLOSE, 1);
	tap_is(kura_msg_send(sv[1], &b, -1), -EINVAL, "send: a field after the secret is -EINVAL");
	kura_msgb_done(&b);
	kura_msgb_init(&b, 0);
	tap_is(kura_msg_send(sv[1], &b, -1), -EINVAL, "send: type 0 is -EINVAL");
	kura_msgb_done(&b);
	{
		char c;
		ssize_t n = recv(sv[0], &c, 1, MSG_DONTWAIT);

		avail = n < 0 && errno == EAGAIN ? 0 : 1;
	}
	tap_is(avail, 0, "send: nothing reached the peer of any refused message");
	close(fd);
	close(sv[0]);
	close(sv[1]);
}

/* Is [p, p+len) in one mapping with these permissions, and what are its VmFlags? */
static bool mapping_of(const void *p, size_t len, char perms[5], char flags[256])
{
	FILE *f = fopen("/proc/self/smaps", "re");
	char line[512];
	uintptr_t a = (uintptr_t)p, lo = 0, hi = 0;
	bool in = false, found = false;

	if (!f)
		return false;
	flags[0] = '\0';
	while (fgets(line, sizeof(line), f)) {
		unsigned long l, h;
		char pm[5];

		if (sscanf(line, "%lx-%lx %4s", &l, &h, pm) == 3 &&
			strchr(line, '-') < strchr(line, ' ')) {
			in = a >= l && a + len <= h;
			if (in) {
				lo = l;
				hi = h;
				memcpy(perms, pm, 5);
				found = true;
			}
		} else if (in && strncmp(line, "VmFlags:", 8) == 0) {
			snprintf(flags, 256, "%.200s", line + 8);
			flags[strcspn(flags, "\n")] = '\0';
		}
	}
	fclose(f);
	(void)lo;
	(void)hi;
	return found;
}

/* Reads len bytes at p through /proc/self/mem: a region already unmapped is an error, not a
 * fault in the test. */
static ssize_t peek(const void *p, void *buf, size_t len)
{
	int fd = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = pread(fd, buf, len, (off_t)(uintptr_t)p);
	close(fd);
	return n;
}

static void test_secret_answer(void)
{
	static const char canary[] = "kura-test-canary-9f8e7d6c5b4a";
	struct kura_secbuf *v = NULL;
	struct kura_msgb b;
	struct kura_msg m;
	char why[128], perms[5] = "", flags[256], guard_perms[5] = "", gflags[256];
	int sv[2], rc;
	const void *p;
	size_t len, page = (size_t)sysconf(_SC_PAGESIZE);
	uint8_t *data, after[sizeof(canary)];
	uintptr_t end;

	if (kura_secbuf_from(canary, sizeof(canary) - 1, &v) < 0)
		abort();
	pair(sv);
	kura_msgb_init(&b, KURA_MSG_ANSWER);
	kura_msgb_u64(&b, KURA_F_STATUS, 200);
	kura_msgb_u64(&b, KURA_F_RAW, 1);
	kura_msgb_u64(&b, KURA_F_VERSION, 3);
	kura_msgb_secret(&b, KURA_F_BODY, v->data, v->len);
	tap_ok(b.len < 100 && !memmem(b.buf, b.len, canary, sizeof(canary) - 1),
		"builder: the secret is not copied into the builder's ordinary heap buffer");
	rc = kura_msg_send(sv[1], &b, -1);
	kura_msgb_done(&b);
	kura_secbuf_free(v);
	rc = rc ? rc : kura_msg_recv(sv[0], 2000, &m, why);
	tap_ok(rc == 0 && (m.flags & KURA_MSG_SECRET), "secret answer: received, flagged secret");
	if (rc < 0) {
		close(sv[0]);
		close(sv[1]);
		return;
	}
	tap_ok(m.guarded != NULL && m.body == m.guarded->data,
		"secret answer: the body is a guarded buffer's data");
	p = kura_msg_bytes(&m, KURA_F_BODY, &len);
	tap_ok(p && len == sizeof(canary) - 1 && memcmp(p, canary, len) == 0 && m.guarded &&
			(const uint8_t *)p >= m.guarded->data &&
			(const uint8_t *)p + len <= m.guarded->data + m.guarded->cap,
		"secret answer: the value, exactly, inside the guarded buffer");
	if (!m.guarded) {
		kura_msg_done(&m);
		close(sv[0]);
		close(sv[1]);
		return;
	}
	data = m.guarded->data;
	end = ((uintptr_t)data + m.guarded->cap + page - 1) / page * page;
	tap_ok(mapping_of(data, m.guarded->cap, perms, flags) && strcmp(perms, "rw-p") == 0 &&
			strstr(flags, " dd") && strstr(flags, " dc"),
		"secret answer: its own rw mapping, out of core dumps (dd) and forks (dc): %s %s",
		perms, flags);
	tap_ok(end - ((uintptr_t)data + m.guarded->cap) < 16 &&
			mapping_of((void *)end, 1, guard_perms, gflags) &&
			strcmp(guard_perms, "---p") == 0,
		"secret answer: its end lies against a PROT_NONE guard page (%s)", guard_perms);
	if (!strstr(flags, " lo"))
		tap_diag("the buffer is not mlocked (RLIMIT_MEMLOCK? mlock is best effort)");
	kura_msg_done(&m);
	/* A region is pooled (mapped, zeroed) or unmapped (wiped first): either way its bytes are
	 * read back through /proc/self/mem without a fault, and hold nothing of the value. */
	{
		ssize_t n = peek(data, after, sizeof(after));
		bool zero = true;

		for (ssize_t i = 0; i < n; i++)
			zero = zero && after[i] == 0;
		tap_ok(n < 0 || (n == (ssize_t)sizeof(after) && zero),
			"kura_msg_done wipes the guarded body (%s)",
			n < 0        ? "unmapped" :
				zero ? "pooled, zeroed" :
				       "VALUE STILL THERE");
	}
	close(sv[0]);
	close(sv[1]);
}

static void test_timeouts(void)
{
	struct kura_msg m;
	struct raw *r = calloc(1, sizeof(*r));
	struct kura_msgb b;
	char why[128];
	int sv[2], rc;
	int64_t t0, el;

	pair(sv);
	t0 = now_ms();
	rc = kura_msg_recv(sv[0], 300, &m, why);
	el = now_ms() - t0;
	tap_ok(rc == -ETIMEDOUT && el >= 280 && el < 1500,
		"no message in 300 ms: -ETIMEDOUT after %lld ms", (long long)el);
	rc = kura_msg_recv(sv[0], 0, &m, why);
	tap_is(rc, -ETIMEDOUT, "timeout 0 with nothing waiting: -ETIMEDOUT");

	/* A header, then silence: the message began, so it must end within the timeout. */
	r->n = 0;
	raw_u64(r, KURA_F_RECORD, 1);
	raw_send(sv[1], KURA_MSG_COMMIT, 0, (uint32_t)r->n, r, 0, NULL, 0);
	t0 = now_ms();
	rc = kura_msg_recv(sv[0], 300, &m, why);
	el = now_ms() - t0;
	tap_ok(rc < 0 && rc != -EPIPE && el < 1500 && !m.body,
		"a header and no body: refused within the timeout (%d after %lld ms)", rc,
		(long long)el);
	close(sv[0]);
	close(sv[1]);

	/* Half a header, then silence. */
	pair(sv);
	if (write(sv[1], "\x08\x00", 2) != 2)
		abort();
	t0 = now_ms();
	rc = kura_msg_recv(sv[0], 300, &m, why);
	el = now_ms() - t0;
	tap_ok(rc < 0 && rc != -EPIPE && el < 1500,
		"half a header and nothing more: refused within the timeout (%d after %lld ms)", rc,
		(long long)el);
	close(sv[0]);
	close(sv[1]);

	/* A body trickled a byte at a time more slowly than the timeout allows in all: the
	 * deadline is the whole message's, not each read's. */
	pair(sv);
	{
		pid_t pid;

		r->n = 0;
		raw_u64(r, KURA_F_RECORD, 1);
		pid = fork();
		if (pid == 0) {
			raw_send(sv[1], KURA_MSG_COMMIT, 0, (uint32_t)r->n, r, 0, NULL, 0);
			for (size_t i = 0; i < r->n; i++) {
				struct timespec ts = { 0, 100 * 1000000 };

				nanosleep(&ts, NULL);
				if (write(sv[1], r->b + i, 1) != 1)
					_exit(0);
			}
			_exit(0);
		}
		t0 = now_ms();
		rc = kura_msg_recv(sv[0], 500, &m, why);
		el = now_ms() - t0;
		tap_ok(rc < 0 && el < 1000,
			"a body trickled at 10 bytes/s: refused within the whole-message deadline "
			"(%d after %lld ms)",
			rc, (long long)el);
		if (rc == 0)
			kura_msg_done(&m);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	close(sv[0]);
	close(sv[1]);

	/* The peer closing at a message boundary: -EPIPE, after the whole message before it. */
	pair(sv);
	kura_msgb_init(&b, KURA_MSG_UNWATCH);
	kura_msgb_u64(&b, KURA_F_WATCH, 5);
	kura_msg_send(sv[1], &b, -1);
	kura_msgb_done(&b);
	close(sv[1]);
	rc = kura_msg_recv(sv[0], 1000, &m, why);
	tap_ok(rc == 0 && m.type == KURA_MSG_UNWATCH,
		"a message, then the peer closes: the message");
	if (rc == 0)
		kura_msg_done(&m);
	rc = kura_msg_recv(sv[0], 1000, &m, why);
	tap_is(rc, -EPIPE, "... then -EPIPE at the boundary");
	close(sv[0]);
	pair(sv);
	close(sv[1]);
	kura_msgb_init(&b, KURA_MSG_UNWATCH);
	kura_msgb_u64(&b, KURA_F_WATCH, 5);
	tap_is(kura_msg_send(sv[0], &b, -1), -EPIPE,
		"sending to a closed peer: -EPIPE, no SIGPIPE");
	kura_msgb_done(&b);
	close(sv[0]);
	free(r);
}

int main(void)
{
	/* A receive that ignores its deadline would hang here: fail instead. */
	alarm(60);
	if (kura_keys_init() < 0)
		return 3;
	test_every_type();
	test_send_refuses();
	test_malformed();
	test_secret_answer();
	test_timeouts();
	return tap_done();
}

/* HTTP/1.1 GET over the broker's Unix socket with one deadline for the whole exchange.
 * Touches plaintext: the response, headers included (a body may start in the same read), is
 * only ever held in guarded buffers. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "fdio.h"
#include "http.h"
#include "number.h"

/*
 * Connects with the time left. A Unix stream connect only blocks while the listener's backlog
 * is full; in non-blocking mode that is EAGAIN rather than EINPROGRESS, so we retry briefly
 * instead of polling for writability.
 */
static int dial(const char *socket_path, int64_t deadline)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_close_ int fd = -1;

	if (strlen(socket_path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, socket_path, strlen(socket_path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	while (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return -errno;
		if (kura_clock_ms() >= deadline)
			return -ETIMEDOUT;
		usleep(10000);
	}
	return TAKE_FD(fd);
}

static int send_all(int fd, const char *buf, size_t len, int64_t deadline)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		int r;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				return -errno;
			r = kura_wait_fd(fd, POLLOUT, deadline);
			if (r < 0)
				return r;
			continue;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads up to len bytes (at least one unless at end of file): a count, 0 at end, or -errno. */
static ssize_t recv_some(int fd, uint8_t *buf, size_t len, int64_t deadline)
{
	for (;;) {
		ssize_t n = recv(fd, buf, len, 0);
		int r;

		if (n >= 0)
			return n;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return -errno;
		r = kura_wait_fd(fd, POLLIN, deadline);
		if (r < 0)
			return r;
	}
}

static const uint8_t *find_crlfcrlf(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i + 4 <= len; i++)
		if (p[i] == '\r' && p[i + 1] == '\n' && p[i + 2] == '\r' && p[i + 3] == '\n')
			return p + i;
	return NULL;
}

/* A byte an HTTP header name may hold (RFC 9110 token). */
static bool tchar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		(c && strchr("!#$%&'*+-.^_`|~", c));
}

static void unfind(struct kura_http_header *want)
{
	for (; want && want->name; want++) {
		want->found = false;
		want->value[0] = '\0';
	}
}

/* One "Name: value" line (no CR or LF in it): Content-Length and the wanted ones taken. */
static int header(char *line, size_t max_body, struct kura_http_header *want, bool *have_len,
	size_t *ret_len)
{
	char *colon = strchr(line, ':'), *v, *e;
	uint64_t n;

	if (!colon || colon == line)
		return -EBADMSG;
	*colon = '\0';
	for (const char *p = line; *p; p++)
		if (!tchar(*p))
			return -EBADMSG; /* "Name :" or a folded line: never from kurad */
	v = colon + 1 + strspn(colon + 1, " \t");
	e = v + strlen(v);
	while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	*e = '\0';
	if (strcasecmp(line, "Transfer-Encoding") == 0)
		return -EBADMSG;
	if (strcasecmp(line, "Content-Length") == 0) {
		if (*have_len || !kura_parse_u64(v, 0, UINT64_MAX, &n))
			return -EBADMSG;
		if (n > max_body)
			return -EFBIG;
		*ret_len = (size_t)n;
		*have_len = true;
	}
	for (; want && want->name; want++) {
		if (strcasecmp(line, want->name) != 0)
			continue;
		if (want->found || (size_t)(e - v) >= sizeof(want->value))
			return -EBADMSG;
		memcpy(want->value, v, (size_t)(e - v) + 1);
		want->found = true;
	}
	return 0;
}

/* Cuts the line at *at off at its CRLF; *at moves past it, or to NULL on the last line. */
static char *next_line(char **at)
{
	char *line = *at, *crlf = strstr(line, "\r\n");

	*at = crlf ? crlf + 2 : NULL;
	if (crlf)
		*crlf = '\0';
	return line;
}

int kura_http_parse_head(char *hdr, size_t max_body, struct kura_http_header *want, int *ret_status,
	size_t *ret_len)
{
	bool have_len = false;
	char *at = hdr, *line;
	size_t clen = 0;
	int status, r = 0;

	unfind(want);
	/* No control byte but the tab anywhere, and CR and LF only as a pair ending a line. */
	for (const unsigned char *p = (const unsigned char *)hdr; *p; p++)
		if ((*p < 0x20 && *p != '\t' && *p != '\r' && *p != '\n') || *p == 0x7f)
			return -EBADMSG;
	line = next_line(&at);
	if ((strncmp(line, "HTTP/1.1 ", 9) != 0 && strncmp(line, "HTTP/1.0 ", 9) != 0) ||
		strpbrk(line, "\r\n"))
		return -EBADMSG;
	if (line[9] < '1' || line[9] > '5' || line[10] < '0' || line[10] > '9' || line[11] < '0' ||
		line[11] > '9' || (line[12] != ' ' && line[12] != '\0'))
		return -EBADMSG;
	status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
	while (r == 0 && at) {
		line = next_line(&at);
		if (!*line || strpbrk(line, "\r\n"))
			r = -EBADMSG;
		else
			r = header(line, max_body, want, &have_len, &clen);
	}
	if (r == 0 && !have_len)
		r = -EBADMSG;
	if (r < 0) {
		unfind(want);
		return r;
	}
	*ret_status = status;
	*ret_len = clen;
	return 0;
}

static int exchange(int fd, const char *path, const char *accept, int64_t deadline, size_t max_body,
	struct kura_http_header *want, int *ret_status, struct kura_secbuf **ret_body)
{
	_cleanup_secbuf_ struct kura_secbuf *head = NULL, *body = NULL;
	const uint8_t *end = NULL;
	char req[1024];
	size_t clen, got;
	int n, r, status;
	uint8_t extra;
	ssize_t k;

	n = snprintf(req, sizeof(req),
		"GET %s HTTP/1.1\r\nHost: kura\r\nUser-Agent: kura\r\n"
		"%s%s%sConnection: close\r\n\r\n",
		path, accept ? "Accept: " : "", accept ? accept : "", accept ? "\r\n" : "");
	if (n < 0 || (size_t)n >= sizeof(req))
		return -ENAMETOOLONG;
	r = send_all(fd, req, (size_t)n, deadline);
	if (r < 0)
		return r;

	r = kura_secbuf_new(KURA_HTTP_MAX_HEADER + 1, &head);
	if (r < 0)
		return r;
	while (!end) {
		if (head->len >= KURA_HTTP_MAX_HEADER)
			return -EBADMSG;
		k = recv_some(fd, head->data + head->len, KURA_HTTP_MAX_HEADER - head->len,
			deadline);
		if (k < 0)
			return (int)k;
		if (k == 0 && head->len == 0)
			return -ECONNRESET; /* closed unanswered: a kurad stopping, say */
		if (k == 0)
			return -EBADMSG; /* closed before the headers ended */
		/* Look again from just before the new bytes: the terminator may straddle reads. */
		got = head->len > 3 ? head->len - 3 : 0;
		head->len += (size_t)k;
		end = find_crlfcrlf(head->data + got, head->len - got);
	}
	head->data[end - head->data] = '\0';
	r = kura_http_parse_head((char *)head->data, max_body, want, &status, &clen);
	if (r < 0)
		return r;

	r = kura_secbuf_new(clen, &body);
	if (r < 0)
		return r;
	got = head->len - (size_t)(end + 4 - head->data);
	if (got > clen)
		return -EBADMSG; /* more than announced: not a response we understand */
	memcpy(body->data, end + 4, got);
	body->len = got;
	while (body->len < clen) {
		k = recv_some(fd, body->data + body->len, clen - body->len, deadline);
		if (k < 0)
			return (int)k;
		if (k == 0)
			return -EBADMSG; /* short body */
		body->len += (size_t)k;
	}
	/* We asked the broker to close after the body: a byte more means it framed the answer
	 * otherwise than it said, and the body may not be what it meant to send. */
	k = recv_some(fd, &extra, 1, deadline);
	explicit_bzero(&extra, sizeof(extra));
	if (k < 0)
		return (int)k;
	if (k > 0)
		return -EBADMSG;
	*ret_status = status;
	*ret_body = TAKE_PTR(body);
	return 0;
}

bool kura_http_dir_present(const char *socket_path)
{
	const char *slash = strrchr(socket_path, '/');
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct stat st;

	if (!slash || slash == socket_path)
		return true; /* relative to here, or in /: nothing to mount */
	if ((size_t)(slash - socket_path) >= sizeof(dir))
		return true; /* too long to be a socket's: dial said so */
	memcpy(dir, socket_path, (size_t)(slash - socket_path));
	dir[slash - socket_path] = '\0';
	return stat(dir, &st) == 0 && S_ISDIR(st.st_mode);
}

int kura_http_get(const char *socket_path, const char *path, const char *accept, int timeout_ms,
	size_t max_body, struct kura_http_header *want, int *ret_status,
	struct kura_secbuf **ret_body, struct kura_fail *f)
{
	int64_t deadline = kura_clock_ms() + timeout_ms;
	_cleanup_close_ int fd = -1;
	int r;

	fd = dial(socket_path, deadline);
	if (fd < 0 && !kura_http_dir_present(socket_path))
		return kura_fail_set(f, fd, KURA_EXIT_UNREACHABLE,
			"cannot reach the broker at %s: its directory is not there (mount kurad's "
			"run directory into the container: -v /run/kura:/run/kura:ro)",
			socket_path);
	if (fd == -ENOENT || fd == -ECONNREFUSED)
		return kura_fail_set(f, fd, KURA_EXIT_UNREACHABLE,
			"cannot reach the broker at %s: %s (is kurad running? The container must "
			"mount kurad's run directory, -v /run/kura:/run/kura:ro: a socket file "
			"mounted on its own stops answering when kurad restarts)",
			socket_path, fd == -ENOENT ? "no socket there" : strerror(-fd));
	if (fd < 0)
		return kura_fail_set(f, fd, KURA_EXIT_UNREACHABLE,
			"cannot reach the broker at %s: %s", socket_path, strerror(-fd));
	r = exchange(fd, path, accept, deadline, max_body, want, ret_status, ret_body);
	if (r < 0)
		unfind(want);
	if (r == -EFBIG)
		return kura_fail_set(f, r, KURA_EXIT_PROTOCOL,
			"%s: the broker's answer is over "
			"kura's limit of %zu KiB for it",
			path, max_body / 1024);
	if (r == -EBADMSG)
		return kura_fail_set(f, r, KURA_EXIT_PROTOCOL,
			"%s: a malformed HTTP response from "
			"the broker",
			path);
	if (r == -ENOMEM)
		return kura_fail_set(f, r, KURA_EXIT_SYSTEM, "%s: out of (locked) memory", path);
	if (r == -ETIMEDOUT)
		return kura_fail_set(f, r, KURA_EXIT_UNREACHABLE,
			"%s: the broker did not answer in time", path);
	if (r == -ECONNRESET)
		return kura_fail_set(f, r, KURA_EXIT_UNREACHABLE,
			"%s: the broker closed the connection unanswered", path);
	if (r < 0)
		return kura_fail_set(f, r, KURA_EXIT_UNREACHABLE, "%s: %s", path, strerror(-r));
	return 0;
}

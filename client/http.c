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
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "fdio.h"
#include "http.h"

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

int kura_http_parse_head(char *hdr, size_t max_body, int *ret_status, size_t *ret_len)
{
	char *line, *save = NULL;
	bool have_len = false;
	size_t clen = 0;
	int status;

	line = strtok_r(hdr, "\r\n", &save);
	if (!line || (strncmp(line, "HTTP/1.1 ", 9) != 0 && strncmp(line, "HTTP/1.0 ", 9) != 0))
		return -EBADMSG;
	if (line[9] < '1' || line[9] > '5' || line[10] < '0' || line[10] > '9' || line[11] < '0' ||
		line[11] > '9' || (line[12] != ' ' && line[12] != '\0'))
		return -EBADMSG;
	status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
	while ((line = strtok_r(NULL, "\r\n", &save))) {
		char *colon = strchr(line, ':'), *v, *end;
		unsigned long long n;

		if (!colon)
			return -EBADMSG;
		*colon = '\0';
		v = colon + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		if (strcasecmp(line, "Transfer-Encoding") == 0)
			return -EBADMSG;
		if (strcasecmp(line, "Content-Length") != 0)
			continue;
		if (have_len || *v < '0' || *v > '9')
			return -EBADMSG;
		errno = 0;
		n = strtoull(v, &end, 10);
		while (*end == ' ' || *end == '\t')
			end++;
		if (errno || *end)
			return -EBADMSG;
		if (n > max_body)
			return -EFBIG;
		clen = (size_t)n;
		have_len = true;
	}
	if (!have_len)
		return -EBADMSG;
	*ret_status = status;
	*ret_len = clen;
	return 0;
}

static int exchange(int fd, const char *path, int64_t deadline, size_t max_body,
	int *ret_status, struct kura_secbuf **ret_body)
{
	_cleanup_secbuf_ struct kura_secbuf *head = NULL, *body = NULL;
	const uint8_t *end = NULL;
	char req[1024];
	size_t clen, got;
	int n, r, status;

	n = snprintf(req, sizeof(req),
		"GET %s HTTP/1.1\r\nHost: kura\r\nUser-Agent: kura\r\nConnection: close\r\n\r\n", path);
	if (n < 0 || (size_t)n >= sizeof(req))
		return -ENAMETOOLONG;
	r = send_all(fd, req, (size_t)n, deadline);
	if (r < 0)
		return r;

	r = kura_secbuf_new(KURA_HTTP_MAX_HEADER + 1, &head);
	if (r < 0)
		return r;
	while (!end) {
		ssize_t k;

		if (head->len >= KURA_HTTP_MAX_HEADER)
			return -EBADMSG;
		k = recv_some(fd, head->data + head->len, KURA_HTTP_MAX_HEADER - head->len, deadline);
		if (k < 0)
			return (int)k;
		if (k == 0)
			return -EBADMSG; /* closed before the headers ended */
		/* Look again from just before the new bytes: the terminator may straddle reads. */
		got = head->len > 3 ? head->len - 3 : 0;
		head->len += (size_t)k;
		end = find_crlfcrlf(head->data + got, head->len - got);
	}
	head->data[end - head->data] = '\0';
	r = kura_http_parse_head((char *)head->data, max_body, &status, &clen);
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
		ssize_t k = recv_some(fd, body->data + body->len, clen - body->len, deadline);

		if (k < 0)
			return (int)k;
		if (k == 0)
			return -EBADMSG; /* short body */
		body->len += (size_t)k;
	}
	*ret_status = status;
	*ret_body = TAKE_PTR(body);
	return 0;
}

int kura_http_get(const char *socket_path, const char *path, int timeout_ms, size_t max_body,
	int *ret_status, struct kura_secbuf **ret_body, struct kura_fail *f)
{
	int64_t deadline = kura_clock_ms() + timeout_ms;
	_cleanup_close_ int fd = -1;
	int r;

	fd = dial(socket_path, deadline);
	if (fd < 0)
		return kura_fail_set(f, fd, KURA_EXIT_UNREACHABLE, "cannot reach the broker at %s: %s",
			socket_path, strerror(-fd));
	r = exchange(fd, path, deadline, max_body, ret_status, ret_body);
	if (r == -EFBIG)
		return kura_fail_set(f, r, KURA_EXIT_PROTOCOL, "%s: the broker's answer is over "
			"kura's limit of %zu KiB for it", path, max_body / 1024);
	if (r == -EBADMSG)
		return kura_fail_set(f, r, KURA_EXIT_PROTOCOL, "%s: a malformed HTTP response from "
			"the broker", path);
	if (r == -ENOMEM)
		return kura_fail_set(f, r, KURA_EXIT_SYSTEM, "%s: out of (locked) memory", path);
	if (r < 0)
		return kura_fail_set(f, r, KURA_EXIT_UNREACHABLE, "%s: %s", path,
			r == -ETIMEDOUT ? "the broker did not answer in time" : strerror(-r));
	return 0;
}

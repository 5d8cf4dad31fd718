/* The benchmark's floor: the least a Unix-socket secrets server must do per request. Accepts a
 * connection, reads SO_PEERCRED, reads the request up to its blank line, writes a fixed reply of
 * REPLY_BYTES (300 by default) and closes. One blocking accept loop per thread. No plaintext.
 *
 * With "hop" it is the floor of a privilege-separated server like kurad: the thread that read
 * the request hands it, with the connection's descriptor (SCM_RIGHTS), to a second process over a
 * socketpair of its own; that process reads SO_PEERCRED of the descriptor and answers with the
 * reply, which the first writes to the client. What kurad costs beyond it is kurad's own. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/prctl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

static int lfd;
static char reply[4096];
static size_t reply_len;
static int hop_fd[256]; /* thread i's end of its socketpair with the second process, or -1 */

/* The second process: for each request on chan (its bytes, the connection's descriptor), the
 * peer's credentials, then the reply. */
static void hop_serve(int chan)
{
	char buf[8192], ctl[CMSG_SPACE(sizeof(int))];

	for (;;) {
		struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
		struct msghdr mh = { .msg_iov = &iov,
			.msg_iovlen = 1,
			.msg_control = ctl,
			.msg_controllen = sizeof(ctl) };
		struct cmsghdr *c;
		struct ucred cr;
		socklen_t cl = sizeof(cr);
		ssize_t n = recvmsg(chan, &mh, MSG_CMSG_CLOEXEC);
		int fd = -1;

		if (n <= 0)
			_exit(0);
		c = CMSG_FIRSTHDR(&mh);
		if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
			memcpy(&fd, CMSG_DATA(c), sizeof(fd));
		if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) < 0 ||
			cr.pid <= 0) {
			if (fd >= 0)
				close(fd);
			(void)!write(chan, "", 0);
			continue;
		}
		close(fd);
		(void)!write(chan, reply, reply_len);
	}
}

/* The request in buf (len bytes) and fd to the second process; its reply into out. */
static ssize_t hop(int chan, int fd, const char *buf, size_t len, char *out, size_t cap)
{
	char ctl[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = ctl,
		.msg_controllen = sizeof(ctl) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(fd));
	if (sendmsg(chan, &mh, MSG_NOSIGNAL) < 0)
		return -1;
	return read(chan, out, cap);
}

static void serve(int fd, int chan)
{
	struct ucred cr;
	socklen_t cl = sizeof(cr);
	char buf[8192];
	size_t len = 0;
	ssize_t n;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) < 0 || cr.pid <= 0)
		return;
	while (len < sizeof(buf) - 1) {
		n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n <= 0)
			return;
		len += (size_t)n;
		buf[len] = '\0';
		if (strstr(buf, "\r\n\r\n"))
			break;
	}
	if (chan >= 0) {
		char out[4096];
		ssize_t k = hop(chan, fd, buf, len, out, sizeof(out));

		if (k > 0)
			(void)!write(fd, out, (size_t)k);
		return;
	}
	(void)!write(fd, reply, reply_len);
}

static void *loop(void *arg)
{
	struct timeval tv = { .tv_sec = 5 };
	int chan = hop_fd[(long)arg];

	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE)
				continue;
			perror("floor-server: accept");
			exit(3);
		}
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		serve(fd, chan);
		close(fd);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	long threads = argc > 2 ? strtol(argv[2], NULL, 10) : 2;
	long bytes = argc > 3 ? strtol(argv[3], NULL, 10) : 300;
	bool with_hop = argc > 4 && strcmp(argv[4], "hop") == 0;
	int hdr;

	if (argc < 2 || argc > 5 || strlen(argv[1]) >= sizeof(sa.sun_path) || threads < 1 ||
		threads > 256 || bytes < 64 || bytes > 4000 || (argc > 4 && !with_hop)) {
		fprintf(stderr, "usage: floor-server SOCKET [THREADS [REPLY_BYTES [hop]]]\n");
		return 2;
	}
	/* Headers first, then a body that brings the reply to exactly REPLY_BYTES. */
	hdr = snprintf(reply, sizeof(reply),
		"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: application/json\r\n"
		"Content-Length: %04ld\r\n\r\n",
		0L);
	reply_len = (size_t)bytes;
	snprintf(reply, sizeof(reply),
		"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: application/json\r\n"
		"Content-Length: %04ld\r\n\r\n",
		bytes - hdr);
	memset(reply + hdr, 'x', (size_t)(bytes - hdr));
	signal(SIGPIPE, SIG_IGN);
	for (long i = 0; i < threads; i++) {
		pid_t child;
		int sv[2];

		hop_fd[i] = -1;
		if (!with_hop)
			continue;
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
			return 3;
		hop_fd[i] = sv[0];
		child = fork();
		if (child < 0)
			return 3;
		if (child == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			close(sv[0]);
			hop_serve(sv[1]);
		}
		close(sv[1]);
	}
	strncpy(sa.sun_path, argv[1], sizeof(sa.sun_path) - 1);
	unlink(sa.sun_path);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 128) < 0) {
		perror("floor-server");
		return 3;
	}
	for (long i = 1; i < threads; i++) {
		pthread_t t;

		if (pthread_create(&t, NULL, loop, (void *)i) != 0)
			return 3;
	}
	loop((void *)0L);
	return 0;
}

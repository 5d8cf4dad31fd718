/* The benchmark's floor: the least a Unix-socket secrets server must do per request. Accepts a
 * connection, reads SO_PEERCRED, reads the request up to its blank line, writes a fixed reply of
 * REPLY_BYTES (300 by default) and closes. One blocking accept loop per thread. No plaintext. */
#include <errno.h>
#include <pthread.h>
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

static void serve(int fd)
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
	(void)!write(fd, reply, reply_len);
}

static void *loop(void *arg)
{
	struct timeval tv = { .tv_sec = 5 };

	(void)arg;
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE)
				continue;
			perror("floor-server: accept");
			exit(3);
		}
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		serve(fd);
		close(fd);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	long threads = argc > 2 ? strtol(argv[2], NULL, 10) : 2;
	long bytes = argc > 3 ? strtol(argv[3], NULL, 10) : 300;
	int hdr;

	if (argc < 2 || argc > 4 || strlen(argv[1]) >= sizeof(sa.sun_path) || threads < 1 ||
		threads > 256 || bytes < 64 || bytes > 4000) {
		fprintf(stderr, "usage: floor-server SOCKET [THREADS [REPLY_BYTES]]\n");
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
	strncpy(sa.sun_path, argv[1], sizeof(sa.sun_path) - 1);
	unlink(sa.sun_path);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 128) < 0) {
		perror("floor-server");
		return 3;
	}
	for (long i = 1; i < threads; i++) {
		pthread_t t;

		if (pthread_create(&t, NULL, loop, NULL) != 0)
			return 3;
	}
	loop(NULL);
	return 0;
}

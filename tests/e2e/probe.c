/* A static test client for the e2e tests: one HTTP/1.1 GET over a Unix socket, from inside a
 * container whose image holds nothing but busybox and this. Prints the status code on the first
 * line, then the body. Not the kura client: a probe that does exactly what a test tells it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char req[4096], buf[65536];
	size_t len = 0;
	ssize_t n;
	int fd;

	if (argc != 3 || strlen(argv[1]) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "usage: probe SOCKET PATH\n");
		return 2;
	}
	strncpy(sa.sun_path, argv[1], sizeof(sa.sun_path) - 1);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "probe: connect %s: %s\n", argv[1], strerror(errno));
		return 3;
	}
	n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: kura\r\nConnection: close\r\n\r\n",
		argv[2]);
	if (n < 0 || (size_t)n >= sizeof(req) || write(fd, req, (size_t)n) != n)
		return 3;
	while (len < sizeof(buf) - 1 && (n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
	{
		char *body = strstr(buf, "\r\n\r\n");

		if (strncmp(buf, "HTTP/1.1 ", 9) != 0 || !body)
			return 4;
		printf("%.3s\n%s\n", buf + 9, body + 4);
	}
	return 0;
}

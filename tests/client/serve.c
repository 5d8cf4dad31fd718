/* What the client's unit tests share (serve.h). No plaintext but the tests' own. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "serve.h"

static char tmpdir[] = "/tmp/kura-test-client-XXXXXX";
static char req_path[160];
char sock_path[128];

struct kura_secbuf *kura_test_value(const void *s, size_t len)
{
	struct kura_secbuf *b = NULL;

	if (kura_secbuf_new(len, &b) < 0)
		abort();
	memcpy(b->data, s, len);
	b->len = len;
	return b;
}

int kura_test_serve_init(void)
{
	signal(SIGPIPE, SIG_IGN);
	if (!mkdtemp(tmpdir))
		return -1;
	snprintf(sock_path, sizeof(sock_path), "%s/s", tmpdir);
	snprintf(req_path, sizeof(req_path), "%s/req", tmpdir);
	return 0;
}

void kura_test_serve_done(void)
{
	unlink(sock_path);
	unlink(req_path);
	rmdir(tmpdir);
}

static void answer(int fd, const char *reply, size_t len, const char *late, bool hold)
{
	char req[4096];
	size_t got = 0;
	FILE *f;

	while (got < sizeof(req) - 1 && !memmem(req, got, "\r\n\r\n", 4)) {
		ssize_t n = read(fd, req + got, sizeof(req) - 1 - got);

		if (n <= 0)
			break;
		got += (size_t)n;
	}
	f = fopen(req_path, "w");
	if (f) {
		fwrite(req, 1, got, f);
		fclose(f);
	}
	if (hold)
		pause();
	if (write(fd, reply, len) != (ssize_t)len)
		_exit(1);
	if (late) {
		usleep(100000);
		if (write(fd, late, strlen(late)) < 0)
			_exit(1);
	}
	_exit(0);
}

pid_t kura_test_serve(const char *reply, size_t len, const char *late, bool hold)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	pid_t pid;

	unlink(sock_path);
	unlink(req_path);
	memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 1) < 0)
		abort();
	pid = fork();
	if (pid < 0)
		abort();
	if (pid == 0) {
		int fd = accept(lfd, NULL, NULL);

		if (fd < 0)
			_exit(1);
		answer(fd, reply, len, late, hold);
	}
	close(lfd);
	return pid;
}

void kura_test_reap(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

bool kura_test_request_has(const char *text)
{
	char buf[4096];
	FILE *f = fopen(req_path, "r");
	size_t n;

	if (!f)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return strstr(buf, text) != NULL;
}

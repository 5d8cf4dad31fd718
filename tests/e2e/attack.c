/* The attacker of the attack tests and hostile-load benchmarks: floods, parked long polls,
 * header dribblers, raw requests, a latency prober; static. Answers are counted, not kept. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define STATUS_MAX 600
#define HEAD_MAX 16384
#define CODES_MAX 8

static struct sockaddr_un sa = { .sun_family = AF_UNIX };

/* What came back: answers by HTTP status, the error codes of the refusals (as many distinct
 * ones as fit), and what went wrong on the way. */
struct tally {
	uint64_t status[STATUS_MAX];
	char code[CODES_MAX][32];
	uint64_t code_n[CODES_MAX];
	uint64_t requests, answers, timeouts, errors, eof, connect_failed, connections;
};

struct answer {
	int status;
	char code[32]; /* {"error": CODE} of a refusal, else "" */
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void die_usage(void)
{
	fprintf(stderr,
		"usage: attack MODE SOCKET ARGS...\n"
		"  unident SOCKET PATH [-t S] [-k K]   a forked child connects and exits; the parent\n"
		"                                      sends up to K keep-alive requests on its fd\n"
		"  flood SOCKET PATH [-t S] [-c C]     C keep-alive connections, requests back to back\n"
		"  watch SOCKET PATH -n N [-s MS] [-t S]  N requests left waiting; after MS prints how\n"
		"                                      many are parked, then holds them S s (0: forever)\n"
		"  dribble SOCKET -n N [-i MS] [-t S]  N connections sending one header byte each MS,\n"
		"                                      reopened as soon as they are closed\n"
		"  raw SOCKET [-w MS]                  stdin as one write; prints what came back until\n"
		"                                      EOF (or MS), a JSON summary on stderr\n"
		"  latency SOCKET PATH [-n N | -d S] [-i MS] [-T MS]  fetches on new connections\n"
		"  collide FIRST_UID COUNT TARGET...   uids whose old 256-slot rate bucket is a\n"
		"                                      TARGET's (uid:N or container:ID)\n");
	exit(2);
}

static long num(const char *s, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max) {
		fprintf(stderr, "attack: bad number '%s'\n", s);
		exit(2);
	}
	return v;
}

/* One option of a mode: -FLAG N, N in [min, max], stored in *val. */
struct opt {
	char flag;
	long min, max;
	long *val;
};

/* argv[first..] as the mode's options; anything else is a usage error. */
static void options(int argc, char **argv, int first, const struct opt *opts)
{
	for (int i = first; i < argc; i++) {
		const struct opt *o = opts;

		while (o->flag && !(argv[i][0] == '-' && argv[i][1] == o->flag && !argv[i][2]))
			o++;
		if (!o->flag || i + 1 >= argc)
			die_usage();
		*o->val = num(argv[++i], o->min, o->max);
	}
}

/* A connected socket (or -errno): connect and every later read and write give up after
 * timeout_ms; with nonblock, a full listen backlog fails at once (EAGAIN). */
static int dial(long timeout_ms, bool nonblock)
{
	struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
	int fd, r;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
	if (fd < 0)
		return -errno;
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

static int send_all(int fd, const char *b, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, b, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

static void error_code(const char *body, size_t len, char *out, size_t cap)
{
	const char *p = memmem(body, len, "\"error\":", 8);
	size_t n = 0;

	out[0] = '\0';
	if (!p)
		return;
	p += 8;
	while (p < body + len && (*p == ' ' || *p == '"'))
		p++;
	while (p + n < body + len && p[n] != '"' && n + 1 < cap)
		n++;
	memcpy(out, p, n);
	out[n] = '\0';
}

/*
 * One whole answer from fd: its head, then Content-Length bytes of body. *have bytes are
 * already in buf (left from an earlier read) and what follows the answer stays there. Returns
 * 1 with *a filled, 0 when the connection ends before an answer (EOF or reset), -1 when the
 * read timed out, -2 on anything else (a malformed or oversized answer).
 */
static int read_answer(int fd, char *buf, size_t cap, size_t *have, struct answer *a)
{
	size_t need = 0, head = 0;

	for (;;) {
		ssize_t n;

		if (!head) {
			const char *e = memmem(buf, *have, "\r\n\r\n", 4);

			if (e) {
				const char *cl;

				head = (size_t)(e - buf) + 4;
				buf[head - 1] = '\0';
				if (head < 13 || strncmp(buf, "HTTP/1.", 7) != 0)
					return -2;
				a->status = (int)strtol(buf + 9, NULL, 10);
				cl = strcasestr(buf, "\r\nContent-Length:");
				need = head + (cl ? strtoul(cl + 17, NULL, 10) : 0);
				buf[head - 1] = '\n';
				if (need > cap)
					return -2;
			}
		}
		if (head && *have >= need) {
			error_code(buf + head, need - head, a->code, sizeof(a->code));
			if (a->status < 0 || a->status >= STATUS_MAX)
				a->status = 0;
			memmove(buf, buf + need, *have - need);
			*have -= need;
			return 1;
		}
		if (*have == cap)
			return -2;
		n = read(fd, buf + *have, cap - *have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0 || (n < 0 && (errno == ECONNRESET || errno == EPIPE)))
			return 0;
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? -1 : -2;
		*have += (size_t)n;
	}
}

static void count(struct tally *t, const struct answer *a)
{
	t->answers++;
	t->status[a->status]++;
	if (!a->code[0])
		return;
	for (int i = 0; i < CODES_MAX; i++) {
		if (!t->code[i][0])
			snprintf(t->code[i], sizeof(t->code[i]), "%s", a->code);
		if (strcmp(t->code[i], a->code) == 0) {
			t->code_n[i]++;
			return;
		}
	}
}

static void merge(struct tally *into, const struct tally *t)
{
	for (int s = 0; s < STATUS_MAX; s++)
		into->status[s] += t->status[s];
	for (int i = 0; i < CODES_MAX && t->code[i][0]; i++)
		for (int j = 0; j < CODES_MAX; j++) {
			if (!into->code[j][0])
				snprintf(into->code[j], sizeof(into->code[j]), "%s", t->code[i]);
			if (strcmp(into->code[j], t->code[i]) == 0) {
				into->code_n[j] += t->code_n[i];
				break;
			}
		}
	into->requests += t->requests;
	into->answers += t->answers;
	into->timeouts += t->timeouts;
	into->errors += t->errors;
	into->eof += t->eof;
	into->connect_failed += t->connect_failed;
	into->connections += t->connections;
}

/* The tally's fields as JSON members (no braces): refusals are answers 400-499. */
static void print_tally(const struct tally *t)
{
	uint64_t refusals = 0;
	bool first = true;

	for (int s = 400; s < 500; s++)
		refusals += t->status[s];
	printf("\"requests\": %llu, \"answers\": %llu, \"refusals\": %llu, \"non_429\": %llu, "
	       "\"timeouts\": %llu, \"errors\": %llu, \"eof\": %llu, \"connections\": %llu, "
	       "\"connect_failed\": %llu, \"status\": {",
		(unsigned long long)t->requests, (unsigned long long)t->answers,
		(unsigned long long)refusals, (unsigned long long)(t->answers - t->status[429]),
		(unsigned long long)t->timeouts, (unsigned long long)t->errors,
		(unsigned long long)t->eof, (unsigned long long)t->connections,
		(unsigned long long)t->connect_failed);
	for (int s = 0; s < STATUS_MAX; s++)
		if (t->status[s]) {
			printf("%s\"%d\": %llu", first ? "" : ", ", s,
				(unsigned long long)t->status[s]);
			first = false;
		}
	printf("}, \"codes\": {");
	for (int i = 0; i < CODES_MAX && t->code[i][0]; i++)
		printf("%s\"%s\": %llu", i ? ", " : "", t->code[i],
			(unsigned long long)t->code_n[i]);
	printf("}");
}

static size_t request(char *out, size_t cap, const char *path, bool close)
{
	int n = snprintf(out, cap, "GET %s HTTP/1.1\r\nHost: kura\r\n%s\r\n", path,
		close ? "Connection: close\r\n" : "");

	if (n < 0 || (size_t)n >= cap) {
		fprintf(stderr, "attack: path too long\n");
		exit(2);
	}
	return (size_t)n;
}

/*
 * unident: the connection of a process that is gone. The socket is made here, a child
 * connects it and exits at once (and is reaped), and this process, which never connected,
 * sends requests on it. kurad must refuse them as unidentifiable and close the connection
 * after its answer: second_answers counts answers after the first on one connection.
 */
static int mode_unident(int argc, char **argv)
{
	struct tally t = { 0 };
	uint64_t end, second = 0, closed_after = 0, t0 = now_ns();
	long seconds = 5, per_conn = 0;
	char req[4096], buf[HEAD_MAX];
	size_t req_len;

	if (argc < 2)
		die_usage();
	req_len = request(req, sizeof(req), argv[1], false);
	options(argc, argv, 2,
		(const struct opt[]){ { 't', 0, 3600, &seconds }, { 'k', 0, 1000000, &per_conn },
			{ 0 } });
	end = t0 + (uint64_t)seconds * 1000000000u;
	while (now_ns() < end) {
		struct timeval tv = { .tv_sec = 2 };
		size_t have = 0;
		int fd, st;
		pid_t pid;

		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return 3;
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		pid = fork();
		if (pid < 0) {
			close(fd);
			sleep_ms(10);
			continue;
		}
		if (pid == 0)
			_exit(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0);
		if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			t.connect_failed++;
			close(fd);
			sleep_ms(1);
			continue;
		}
		t.connections++;
		for (long k = 0; (per_conn == 0 || k < per_conn) && now_ns() < end; k++) {
			struct answer a = { 0 };
			int r;

			/* A write into a connection kurad closed fails (EPIPE): that is its end
			 * too. */
			bool sent = send_all(fd, req, req_len) == 0;

			r = sent ? read_answer(fd, buf, sizeof(buf), &have, &a) : 0;
			t.requests += sent;
			if (r == 0) {
				t.eof++;
				closed_after += k > 0;
				break;
			}
			if (r < 0) {
				*(r == -1 ? &t.timeouts : &t.errors) += 1;
				break;
			}
			count(&t, &a);
			second += k > 0;
		}
		close(fd);
	}
	printf("{\"mode\": \"unident\", \"seconds\": %.3f, \"second_answers\": %llu, "
	       "\"closed_after_answer\": %llu, ",
		(double)(now_ns() - t0) / 1e9, (unsigned long long)second,
		(unsigned long long)closed_after);
	print_tally(&t);
	printf("}\n");
	return 0;
}

struct flooder {
	pthread_t thread;
	const char *req;
	size_t req_len;
	uint64_t end;
	struct tally t;
};

static void *flood_thread(void *arg)
{
	struct flooder *f = arg;
	char buf[HEAD_MAX];

	while (now_ns() < f->end) {
		size_t have = 0;
		int fd = dial(2000, false);

		if (fd < 0) {
			f->t.connect_failed++;
			sleep_ms(5);
			continue;
		}
		f->t.connections++;
		while (now_ns() < f->end) {
			struct answer a = { 0 };
			int r;

			bool sent = send_all(fd, f->req, f->req_len) == 0;

			r = sent ? read_answer(fd, buf, sizeof(buf), &have, &a) : 0;
			f->t.requests += sent;
			if (r == 0) {
				f->t.eof++;
				break;
			}
			if (r < 0) {
				*(r == -1 ? &f->t.timeouts : &f->t.errors) += 1;
				break;
			}
			count(&f->t, &a);
		}
		close(fd);
	}
	return NULL;
}

/* flood: keep-alive requests back to back on C connections, reconnecting when one closes. */
static int mode_flood(int argc, char **argv)
{
	struct flooder *f;
	struct tally t = { 0 };
	long seconds = 5, conns = 1;
	char req[4096];
	size_t req_len;
	uint64_t t0 = now_ns();

	if (argc < 2)
		die_usage();
	req_len = request(req, sizeof(req), argv[1], false);
	options(argc, argv, 2,
		(const struct opt[]){ { 't', 0, 3600, &seconds }, { 'c', 1, 1024, &conns },
			{ 0 } });
	f = calloc((size_t)conns, sizeof(*f));
	if (!f)
		return 3;
	for (long i = 0; i < conns; i++) {
		f[i].req = req;
		f[i].req_len = req_len;
		f[i].end = t0 + (uint64_t)seconds * 1000000000u;
		if (pthread_create(&f[i].thread, NULL, flood_thread, &f[i]) != 0)
			return 3;
	}
	for (long i = 0; i < conns; i++) {
		pthread_join(f[i].thread, NULL);
		merge(&t, &f[i].t);
	}
	printf("{\"mode\": \"flood\", \"seconds\": %.3f, ", (double)(now_ns() - t0) / 1e9);
	print_tally(&t);
	printf("}\n");
	free(f);
	return 0;
}

/*
 * watch: N requests (long polls) sent and left waiting. After the settle time it prints how
 * many are parked (no answer, connection open), answered (and how) or closed, then holds the
 * connections open for the hold time (0: until killed).
 */
static int mode_watch(int argc, char **argv)
{
	struct tally t = { 0 };
	long n = 4, settle_ms = 2000, hold_s = 0;
	struct pollfd *p;
	bool *done;
	char req[4096];
	size_t req_len;
	uint64_t settle_end, parked = 0, closed = 0;

	if (argc < 2)
		die_usage();
	req_len = request(req, sizeof(req), argv[1], false);
	options(argc, argv, 2,
		(const struct opt[]){ { 'n', 1, 4096, &n }, { 's', 0, 600000, &settle_ms },
			{ 't', 0, 86400, &hold_s }, { 0 } });
	p = calloc((size_t)n, sizeof(*p));
	done = calloc((size_t)n, sizeof(*done));
	if (!p || !done)
		return 3;
	/* A connection that is done is kept open but no longer polled: its fd is stored as
	 * -fd - 1, which poll() skips. */
	for (long i = 0; i < n; i++) {
		int fd = dial(2000, false);

		p[i].events = POLLIN;
		p[i].fd = -1;
		done[i] = true;
		if (fd < 0) {
			t.connect_failed++;
			continue;
		}
		t.connections++;
		p[i].fd = -fd - 1;
		if (send_all(fd, req, req_len) < 0) {
			t.errors++;
			continue;
		}
		t.requests++;
		p[i].fd = fd;
		done[i] = false;
	}
	settle_end = now_ns() + (uint64_t)settle_ms * 1000000u;
	for (uint64_t now; (now = now_ns()) < settle_end;) {
		int r = poll(p, (nfds_t)n, (int)((settle_end - now) / 1000000u) + 1);

		if (r < 0 && errno != EINTR)
			return 3;
		for (long i = 0; r > 0 && i < n; i++) {
			char buf[HEAD_MAX];
			struct answer a = { 0 };
			size_t have = 0;
			int k;

			if (done[i] || !(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			done[i] = true;
			k = read_answer(p[i].fd, buf, sizeof(buf), &have, &a);
			p[i].fd = -p[i].fd - 1;
			if (k == 1)
				count(&t, &a);
			else if (k == 0)
				t.eof++;
			else
				*(k == -1 ? &t.timeouts : &t.errors) += 1;
		}
	}
	for (long i = 0; i < n; i++)
		parked += !done[i];
	closed = t.eof;
	printf("{\"mode\": \"watch\", \"parked\": %llu, \"closed\": %llu, ",
		(unsigned long long)parked, (unsigned long long)closed);
	print_tally(&t);
	printf("}\n");
	fflush(stdout);
	if (hold_s == 0)
		for (;;)
			pause();
	sleep_ms(hold_s * 1000);
	return 0;
}

/*
 * dribble: N connections that never finish their request: one byte of an endless header each
 * interval. A connection kurad closes (or answers) is opened again at once; connects that find
 * the backlog full are retried on the next tick.
 */
static int mode_dribble(int argc, char **argv)
{
	static const char line[] = "GET /v1/whoami HTTP/1.1\r\nHost: kura\r\n";
	static const char more[] = "X-Dribble: a\r\n";
	long n = 16, interval_ms = 500, seconds = 10;
	uint64_t end, connect_failed = 0, bytes = 0, opened = 0;
	struct pollfd *p;
	size_t *pos;

	options(argc, argv, 1,
		(const struct opt[]){ { 'n', 1, 4096, &n }, { 'i', 1, 60000, &interval_ms },
			{ 't', 1, 86400, &seconds }, { 0 } });
	p = calloc((size_t)n, sizeof(*p));
	pos = calloc((size_t)n, sizeof(*pos));
	if (!p || !pos)
		return 3;
	for (long i = 0; i < n; i++)
		p[i].fd = -1;
	end = now_ns() + (uint64_t)seconds * 1000000000u;
	while (now_ns() < end) {
		uint64_t tick = now_ns() + (uint64_t)interval_ms * 1000000u;

		for (long i = 0; i < n; i++) {
			char c;

			if (p[i].fd < 0) {
				p[i].fd = dial(1000, true);
				p[i].events = POLLIN;
				pos[i] = 0;
				if (p[i].fd < 0) {
					connect_failed++;
					continue;
				}
				opened++;
			}
			c = pos[i] < sizeof(line) - 1 ?
				line[pos[i]] :
				more[(pos[i] - (sizeof(line) - 1)) % (sizeof(more) - 1)];
			if (write(p[i].fd, &c, 1) != 1) {
				close(p[i].fd);
				p[i].fd = -1;
				continue;
			}
			pos[i]++;
			bytes++;
		}
		/* Until the next tick: any connection that becomes readable was answered or closed
		 * by kurad, and is opened again at once. */
		for (uint64_t now; (now = now_ns()) < tick;) {
			int r = poll(p, (nfds_t)n, (int)((tick - now) / 1000000u) + 1);

			for (long i = 0; r > 0 && i < n; i++) {
				if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
					continue;
				close(p[i].fd);
				p[i].fd = dial(1000, true);
				pos[i] = 0;
				if (p[i].fd < 0) {
					connect_failed++;
					continue;
				}
				opened++;
			}
		}
	}
	printf("{\"mode\": \"dribble\", \"conns\": %ld, \"opened\": %llu, \"reopened\": %llu, "
	       "\"connect_failed\": %llu, \"bytes\": %llu}\n",
		n, (unsigned long long)opened,
		(unsigned long long)(opened > (uint64_t)n ? opened - (uint64_t)n : 0),
		(unsigned long long)connect_failed, (unsigned long long)bytes);
	return 0;
}

/*
 * raw: stdin is sent as one write, then everything that comes back is printed until the
 * connection ends (or the wait is up). On stderr, one JSON line: the status of every answer
 * seen (a status line at the start of the stream or right after an answer's body is an
 * answer), and whether kurad closed the connection.
 */
static int mode_raw(int argc, char **argv)
{
	static char in[65536], out[262144];
	size_t in_len = 0, out_len = 0, off = 0;
	long wait_ms = 3000;
	uint64_t end;
	bool eof = false;
	int fd, n_status = 0, status[64];
	ssize_t n;

	options(argc, argv, 1, (const struct opt[]){ { 'w', 1, 600000, &wait_ms }, { 0 } });
	while ((n = read(0, in + in_len, sizeof(in) - in_len)) > 0)
		in_len += (size_t)n;
	fd = dial(wait_ms, false);
	if (fd < 0) {
		fprintf(stderr, "{\"error\": \"connect: %s\"}\n", strerror(-fd));
		return 3;
	}
	if (send_all(fd, in, in_len) < 0) {
		fprintf(stderr, "{\"error\": \"write: %s\"}\n", strerror(errno));
		return 3;
	}
	end = now_ns() + (uint64_t)wait_ms * 1000000u;
	while (out_len < sizeof(out) && now_ns() < end) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int r = poll(&p, 1, (int)((end - now_ns()) / 1000000u) + 1);

		if (r <= 0)
			continue;
		n = read(fd, out + out_len, sizeof(out) - out_len);
		if (n == 0 || (n < 0 && errno == ECONNRESET)) {
			eof = true;
			break;
		}
		if (n < 0)
			break;
		out_len += (size_t)n;
	}
	fwrite(out, 1, out_len, stdout);
	fflush(stdout);
	/* Walk the answers: a head, then its Content-Length of body, then the next head. */
	while (off < out_len && n_status < 64) {
		const char *h = out + off, *e = memmem(h, out_len - off, "\r\n\r\n", 4);
		const char *cl;
		char head[HEAD_MAX];
		size_t hl;

		if (!e || out_len - off < 12 || strncmp(h, "HTTP/1.", 7) != 0)
			break;
		hl = (size_t)(e - h) + 4;
		if (hl >= sizeof(head))
			break;
		memcpy(head, h, hl);
		head[hl] = '\0';
		status[n_status++] = (int)strtol(head + 9, NULL, 10);
		cl = strcasestr(head, "\r\nContent-Length:");
		off += hl + (cl ? strtoul(cl + 17, NULL, 10) : 0);
	}
	fprintf(stderr, "{\"bytes\": %zu, \"eof\": %s, \"answers\": %d, \"status\": [", out_len,
		eof ? "true" : "false", n_status);
	for (int i = 0; i < n_status; i++)
		fprintf(stderr, "%s%d", i ? ", " : "", status[i]);
	fprintf(stderr, "]}\n");
	close(fd);
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double pct_us(const uint64_t *v, size_t n, double p)
{
	if (!n)
		return -1;
	return (double)v[(size_t)(p / 100.0 * (double)(n - 1) + 0.5)] / 1000.0;
}

/*
 * latency: fetches on a new connection each (Connection: close, read to the end), one after
 * the other with a pause between, each given up after a timeout (and then counted at the
 * timeout: a fetch that never came is at least that slow). Prints p50/p99/max in µs and the
 * answers by status.
 */
static int mode_latency(int argc, char **argv)
{
	struct tally t = { 0 };
	long n = 100, seconds = 0, interval_ms = 0, timeout_ms = 2000;
	uint64_t *lat, end = 0, over_1s = 0, t0 = now_ns();
	size_t got = 0, cap;
	char req[4096];
	size_t req_len;

	if (argc < 2)
		die_usage();
	req_len = request(req, sizeof(req), argv[1], true);
	options(argc, argv, 2,
		(const struct opt[]){ { 'n', 1, 10000000, &n }, { 'd', 1, 86400, &seconds },
			{ 'i', 0, 60000, &interval_ms }, { 'T', 1, 600000, &timeout_ms }, { 0 } });
	if (seconds)
		end = t0 + (uint64_t)seconds * 1000000000u;
	cap = seconds ? 4096 : (size_t)n;
	lat = malloc(cap * sizeof(*lat));
	if (!lat)
		return 3;
	while (seconds ? now_ns() < end : got < (size_t)n) {
		char buf[HEAD_MAX];
		struct answer a = { 0 };
		size_t have = 0;
		uint64_t s = now_ns(), dt;
		int fd = dial(timeout_ms, false), r = -1;

		t.requests++;
		if (fd >= 0) {
			t.connections++;
			r = send_all(fd, req, req_len) < 0 ?
				-1 :
				read_answer(fd, buf, sizeof(buf), &have, &a);
			close(fd);
		} else if (fd != -EAGAIN && fd != -ETIMEDOUT) {
			t.connect_failed++;
		}
		dt = now_ns() - s;
		if (r == 1)
			count(&t, &a);
		else if (r == 0)
			t.eof++;
		else if (dt >= (uint64_t)timeout_ms * 1000000u || fd == -EAGAIN || fd == -ETIMEDOUT)
			t.timeouts++;
		else
			t.errors++;
		if (got == cap) {
			uint64_t *bigger = malloc(2 * cap * sizeof(*lat));

			if (!bigger)
				return 3;
			memcpy(bigger, lat, cap * sizeof(*lat));
			free(lat);
			lat = bigger;
			cap *= 2;
		}
		lat[got++] = dt;
		over_1s += dt >= 1000000000u;
		if (interval_ms)
			sleep_ms(interval_ms);
	}
	qsort(lat, got, sizeof(*lat), cmp_u64);
	printf("{\"mode\": \"latency\", \"n\": %zu, \"seconds\": %.3f, \"p50_us\": %.1f, "
	       "\"p90_us\": %.1f, \"p99_us\": %.1f, \"max_us\": %.1f, \"over_1s\": %llu, ",
		got, (double)(now_ns() - t0) / 1e9, pct_us(lat, got, 50), pct_us(lat, got, 90),
		pct_us(lat, got, 99), pct_us(lat, got, 100), (unsigned long long)over_1s);
	print_tally(&t);
	printf("}\n");
	free(lat);
	return 0;
}

/* kurad's rate table before issue 10: 256 buckets, picked by a multiplicative hash of a key
 * that is (uid << 2) | 1 for a host process and FNV-1a(container ID) << 2 for a container. An
 * attacker who can pick its uid (subordinate uids) can pick its victim's bucket. */
static unsigned old_slot(uint64_t key)
{
	return (unsigned)((key * 0x9e3779b97f4a7c15ull) >> 56);
}

static int mode_collide(int argc, char **argv)
{
	unsigned want[64];
	int n_want = 0;
	long first, n;

	if (argc < 4)
		die_usage();
	first = num(argv[1], 0, 4294967294L);
	n = num(argv[2], 1, 1L << 24);
	for (int i = 3; i < argc && n_want < 64; i++) {
		if (strncmp(argv[i], "uid:", 4) == 0) {
			want[n_want++] = old_slot(
				((uint64_t)num(argv[i] + 4, 0, 4294967294L) << 2) | 1);
		} else if (strncmp(argv[i], "container:", 10) == 0) {
			uint64_t h = 1469598103934665603ull;

			for (const char *s = argv[i] + 10; *s; s++)
				h = (h ^ (uint8_t)*s) * 1099511628211ull;
			want[n_want++] = old_slot(h << 2);
		} else {
			die_usage();
		}
	}
	for (long i = 0; i < n; i++) {
		unsigned s = old_slot(((uint64_t)(first + i) << 2) | 1);

		for (int k = 0; k < n_want; k++)
			if (s == want[k])
				printf("%ld %ld %s\n", i, first + i, argv[3 + k]);
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *mode;

	if (argc < 3)
		die_usage();
	mode = argv[1];
	signal(SIGPIPE, SIG_IGN);
	if (strcmp(mode, "collide") == 0)
		return mode_collide(argc - 1, argv + 1);
	if (strlen(argv[2]) >= sizeof(sa.sun_path))
		die_usage();
	memcpy(sa.sun_path, argv[2], strlen(argv[2]) + 1);
	if (strcmp(mode, "unident") == 0)
		return mode_unident(argc - 2, argv + 2);
	if (strcmp(mode, "flood") == 0)
		return mode_flood(argc - 2, argv + 2);
	if (strcmp(mode, "watch") == 0)
		return mode_watch(argc - 2, argv + 2);
	if (strcmp(mode, "dribble") == 0)
		return mode_dribble(argc - 2, argv + 2);
	if (strcmp(mode, "raw") == 0)
		return mode_raw(argc - 2, argv + 2);
	if (strcmp(mode, "latency") == 0)
		return mode_latency(argc - 2, argv + 2);
	die_usage();
	return 2;
}

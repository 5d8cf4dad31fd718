/* The benchmark's load generator: HTTP/1.1 GETs over a Unix socket, one new connection per
 * request (connect, request, read to EOF, close), from C threads; prints one JSON line of counts,
 * latency percentiles and throughput. Links statically so it runs in an image of busybox alone.
 * No plaintext is kept: replies are read into a scratch buffer and only their status counted. */
#include <errno.h>
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
#include <fcntl.h>
#include <unistd.h>

struct worker {
	pthread_t thread;
	uint64_t *lat_ns;
	size_t n, cap;
	uint64_t ok, errors, non_2xx, bad_length;
	size_t reply_bytes;
};

static struct sockaddr_un sa = { .sun_family = AF_UNIX };
static char req[4096];
static size_t req_len;
static int expect = 200;
static uint64_t deadline_ns;
static long count_left;
static pthread_mutex_t count_lock = PTHREAD_MUTEX_INITIALIZER;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* One request on a new connection. Returns the HTTP status, or -1 on a failure of the
 * connection or a reply that is not whole (its body shorter than its Content-Length). */
static int one(size_t *ret_bytes)
{
	char buf[65536];
	static __thread char sink[65536];
	size_t len = 0, off = 0;
	ssize_t n;
	int fd, status = -1;
	const char *cl, *body;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		goto out;
	while (off < req_len) {
		n = write(fd, req + off, req_len - off);
		if (n <= 0)
			goto out;
		off += (size_t)n;
	}
	/* The head and what fits of the body are kept; a longer body (a list) is only counted. */
	while ((n = read(fd, len < sizeof(buf) - 1 ? buf + len : sink,
			len < sizeof(buf) - 1 ? sizeof(buf) - 1 - len : sizeof(sink))) > 0) {
		if (len < sizeof(buf) - 1)
			buf[len + (size_t)n] = '\0';
		len += (size_t)n;
	}
	if (n < 0)
		goto out;
	buf[len < sizeof(buf) - 1 ? len : sizeof(buf) - 1] = '\0';
	*ret_bytes = len;
	body = strstr(buf, "\r\n\r\n");
	if (len < 12 || strncmp(buf, "HTTP/1.1 ", 9) != 0 || !body)
		goto out;
	status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
	cl = strcasestr(buf, "\r\nContent-Length:");
	if (cl && cl < body && strtoul(cl + 17, NULL, 10) != len - (size_t)(body + 4 - buf))
		status = -2;
out:
	close(fd);
	return status;
}

static bool take(void)
{
	bool more;

	if (deadline_ns)
		return now_ns() < deadline_ns;
	pthread_mutex_lock(&count_lock);
	more = count_left > 0;
	count_left--;
	pthread_mutex_unlock(&count_lock);
	return more;
}

static void *work(void *arg)
{
	struct worker *w = arg;

	while (take()) {
		uint64_t t0 = now_ns();
		int st = one(&w->reply_bytes);
		uint64_t dt = now_ns() - t0;

		if (st == -2)
			w->bad_length++;
		if (st < 0) {
			w->errors++;
			continue;
		}
		if (st != expect) {
			w->non_2xx++;
			continue;
		}
		w->ok++;
		if (w->n == w->cap) {
			w->cap = w->cap ? 2 * w->cap : 4096;
			w->lat_ns = realloc(w->lat_ns, w->cap * sizeof(*w->lat_ns));
			if (!w->lat_ns)
				abort();
		}
		w->lat_ns[w->n++] = dt;
	}
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double pct(const uint64_t *v, size_t n, double p)
{
	size_t i;

	if (!n)
		return -1;
	i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
	return (double)v[i] / 1000.0;
}

/* --startup: start CMD, then ask until the answer is `expect`; prints its pid and the time. */
static int startup(char **cmd, const char *log, double timeout_s)
{
	uint64_t t0 = now_ns(), limit = t0 + (uint64_t)(timeout_s * 1e9);
	size_t bytes;
	pid_t pid = fork();

	if (pid < 0)
		return 3;
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(127);
		setsid();
		execv(cmd[0], cmd);
		_exit(127);
	}
	while (now_ns() < limit) {
		if (one(&bytes) == expect) {
			printf("{\"pid\": %d, \"startup_ms\": %.2f}\n", (int)pid,
				(double)(now_ns() - t0) / 1e6);
			return 0;
		}
		if (waitpid(pid, NULL, WNOHANG) == pid) {
			fprintf(stderr, "loadgen: %s exited before answering\n", cmd[0]);
			return 3;
		}
		usleep(500);
	}
	fprintf(stderr, "loadgen: no answer within %.0f s\n", timeout_s);
	printf("{\"pid\": %d, \"startup_ms\": null}\n", (int)pid);
	return 3;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: loadgen SOCKET PATH [-c CLIENTS] [-n REQUESTS | -t SECONDS] [-s REQUEST_BYTES]\n"
		"               [-w WARMUP_REQUESTS] [-e EXPECTED_STATUS] [-H 'NAME: VALUE']\n"
		"       loadgen SOCKET PATH --startup LOG TIMEOUT_S -- CMD ARGS...\n");
	exit(2);
}

int main(int argc, char **argv)
{
	long clients = 1, count = 1000, warmup = 0, size = 0;
	const char *header = NULL;
	double seconds = 0;
	struct worker *w;
	uint64_t t0, elapsed, ok = 0, errors = 0, non_2xx = 0, bad_length = 0, *all;
	size_t n = 0, reply = 0, base;
	int i;

	if (argc < 3 || strlen(argv[1]) >= sizeof(sa.sun_path))
		usage();
	strncpy(sa.sun_path, argv[1], sizeof(sa.sun_path) - 1);
	for (i = 3; i < argc; i++) {
		if (strcmp(argv[i], "--startup") == 0 && i + 3 < argc && !strcmp(argv[i + 3], "--"))
			break;
		if (i + 1 >= argc)
			usage();
		if (strcmp(argv[i], "-c") == 0)
			clients = strtol(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "-n") == 0)
			count = strtol(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "-t") == 0)
			seconds = strtod(argv[++i], NULL);
		else if (strcmp(argv[i], "-s") == 0)
			size = strtol(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "-w") == 0)
			warmup = strtol(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "-e") == 0)
			expect = (int)strtol(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "-H") == 0)
			header = argv[++i];
		else
			usage();
	}
	if (clients < 1 || clients > 4096 || count < 1 || size < 0 || size > 4000)
		usage();
	if (header && strlen(header) > 1000)
		usage();
	base = (size_t)snprintf(req, sizeof(req),
		"GET %s HTTP/1.1\r\nHost: kura\r\nConnection: close\r\n%s%s", argv[2],
		header ? header : "", header ? "\r\n" : "");
	/* Pad with a header to exactly -s bytes, so the floor and kurad read the same request. */
	if (size && (size_t)size >= base + sizeof("X-Pad: \r\n\r\n") - 1) {
		size_t pad = (size_t)size - base - (sizeof("X-Pad: \r\n\r\n") - 1);

		memcpy(req + base, "X-Pad: ", 7);
		memset(req + base + 7, 'x', pad);
		base += 7 + pad;
		memcpy(req + base, "\r\n", 2);
		base += 2;
	}
	memcpy(req + base, "\r\n", 3);
	req_len = base + 2;
	signal(SIGPIPE, SIG_IGN);
	if (i < argc)
		return startup(argv + i + 4, argv[i + 1], strtod(argv[i + 2], NULL));

	for (long k = 0; k < warmup; k++)
		(void)one(&reply);
	w = calloc((size_t)clients, sizeof(*w));
	if (!w)
		return 3;
	count_left = count;
	t0 = now_ns();
	if (seconds > 0)
		deadline_ns = t0 + (uint64_t)(seconds * 1e9);
	for (long k = 0; k < clients; k++)
		if (pthread_create(&w[k].thread, NULL, work, &w[k]) != 0)
			return 3;
	for (long k = 0; k < clients; k++)
		pthread_join(w[k].thread, NULL);
	elapsed = now_ns() - t0;
	for (long k = 0; k < clients; k++)
		n += w[k].n;
	all = malloc((n ? n : 1) * sizeof(*all));
	if (!all)
		return 3;
	n = 0;
	for (long k = 0; k < clients; k++) {
		memcpy(all + n, w[k].lat_ns, w[k].n * sizeof(*all));
		n += w[k].n;
		ok += w[k].ok;
		errors += w[k].errors;
		non_2xx += w[k].non_2xx;
		bad_length += w[k].bad_length;
		if (w[k].reply_bytes)
			reply = w[k].reply_bytes;
	}
	qsort(all, n, sizeof(*all), cmp_u64);
	printf("{\"clients\": %ld, \"request_bytes\": %zu, \"reply_bytes\": %zu, \"requests\": %llu, "
	       "\"ok\": %llu, \"errors\": %llu, \"unexpected_status\": %llu, \"short_replies\": %llu, "
	       "\"seconds\": %.3f, \"per_s\": %.1f, \"min_us\": %.1f, \"p50_us\": %.1f, "
	       "\"p90_us\": %.1f, \"p99_us\": %.1f, \"max_us\": %.1f}\n",
		clients, req_len, reply, (unsigned long long)(ok + errors + non_2xx),
		(unsigned long long)ok, (unsigned long long)errors, (unsigned long long)non_2xx,
		(unsigned long long)bad_length, (double)elapsed / 1e9,
		(double)ok / ((double)elapsed / 1e9), pct(all, n, 0), pct(all, n, 50),
		pct(all, n, 90), pct(all, n, 99), pct(all, n, 100));
	return errors || non_2xx ? 1 : 0;
}

/* Integration tests for shipping audit records off the host, against real receivers started
 * here: rsyslogd (Unix datagram and TCP inputs, RFC 5424) and a Python HTTP collector that can
 * fail, hang or go away. No secrets. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "audit-sink.h"
#include "runtime.h"
#include "tap.h"

#define PYTHON "/usr/bin/python3"
#define HOST "kura-test-host"

static char dir[] = "/tmp/kura-test-sink-XXXXXX";
static pid_t rsyslog_pid, http_pid;
static int tcp_port, http_port;

/* ---- helpers ---- */

static char *sub(const char *name)
{
	static char buf[8][512];
	static int i;

	i = (i + 1) % 8;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
	return buf[i];
}

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

#define slurp tap_slurp

static void spit(const char *path, const char *s)
{
	FILE *f = fopen(path, "w");

	if (!f || fputs(s, f) < 0)
		abort();
	fclose(f);
}

static int count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static int free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port;

	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
		getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
		abort();
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

static bool tcp_connects(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
		.sin_port = htons((uint16_t)port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;

	if (fd >= 0)
		close(fd);
	return ok;
}

/* Children die with us (PR_SET_PDEATHSIG), and are killed at exit on every path. */
static pid_t spawn(const char *const argv[], const char *log)
{
	pid_t pid = fork();

	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(127);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	return pid;
}

static void stop_child(pid_t *pid)
{
	if (*pid <= 0)
		return;
	kill(*pid, SIGTERM);
	for (int i = 0; i < 100; i++) {
		if (waitpid(*pid, NULL, WNOHANG) == *pid) {
			*pid = 0;
			return;
		}
		sleep_ms(50);
	}
	kill(*pid, SIGKILL);
	waitpid(*pid, NULL, 0);
	*pid = 0;
}

static void cleanup(void)
{
	stop_child(&rsyslog_pid);
	stop_child(&http_pid);
	tap_rmtree(dir);
}

static bool start_rsyslog(void)
{
	char conf[4096], conf_path[512], pid_path[512];
	const char *argv[] = { "/usr/sbin/rsyslogd", "-n", "-f", conf_path, "-i", pid_path, NULL };

	tcp_port = free_port();
	snprintf(conf, sizeof(conf),
		"global(workDirectory=\"%s\" maxMessageSize=\"64k\")\n"
		"module(load=\"imuxsock\" SysSock.Use=\"off\")\n"
		"module(load=\"imtcp\")\n"
		"template(name=\"fields\" type=\"string\" string=\"%%pri%%|%%app-name%%|%%msgid%%|"
		"%%hostname%%|%%procid%%|%%structured-data%%|%%msg%%\\n\")\n"
		"ruleset(name=\"ux\") {\n"
		"  action(type=\"omfile\" file=\"%s\" "
		"template=\"RSYSLOG_SyslogProtocol23Format\")\n"
		"  action(type=\"omfile\" file=\"%s\" template=\"fields\")\n"
		"}\n"
		"ruleset(name=\"tcp\") {\n"
		"  action(type=\"omfile\" file=\"%s\" "
		"template=\"RSYSLOG_SyslogProtocol23Format\")\n"
		"  action(type=\"omfile\" file=\"%s\" template=\"fields\")\n"
		"}\n"
		"input(type=\"imuxsock\" Socket=\"%s\" UseSpecialParser=\"off\" "
		"ParseHostname=\"on\" "
		"IgnoreTimestamp=\"off\" RateLimit.Interval=\"0\" Ruleset=\"ux\")\n"
		"input(type=\"imtcp\" address=\"127.0.0.1\" port=\"%d\" ruleset=\"tcp\")\n",
		dir, sub("unix.full"), sub("unix.fields"), sub("tcp.full"), sub("tcp.fields"),
		sub("log.sock"), tcp_port);
	snprintf(conf_path, sizeof(conf_path), "%s", sub("rsyslog.conf"));
	snprintf(pid_path, sizeof(pid_path), "%s", sub("rsyslog.pid"));
	spit(conf_path, conf);
	rsyslog_pid = spawn(argv, sub("rsyslog.log"));
	for (int i = 0; i < 200; i++) {
		if (waitpid(rsyslog_pid, NULL, WNOHANG) == rsyslog_pid) {
			rsyslog_pid = 0;
			return false;
		}
		if (access(sub("log.sock"), F_OK) == 0 && tcp_connects(tcp_port))
			return true;
		sleep_ms(50);
	}
	return false;
}

/* Starts the collector, on `port` or (0) a free one it picks and writes to DIR/port. */
static bool start_http(int port)
{
	char script[512], portarg[16];
	const char *argv[] = { PYTHON, script, dir, portarg, NULL };

	snprintf(script, sizeof(script), "%s/audit/http-receiver.py", SOURCE_DIR);
	snprintf(portarg, sizeof(portarg), "%d", port);
	unlink(sub("port"));
	http_pid = spawn(argv, sub("http.log"));
	for (int i = 0; i < 200; i++) {
		if (waitpid(http_pid, NULL, WNOHANG) == http_pid) {
			http_pid = 0;
			return false;
		}
		if (access(sub("port"), F_OK) == 0) {
			char *p = slurp(sub("port"));

			http_port = (int)strtol(p, NULL, 10);
			free(p);
			return tcp_connects(http_port);
		}
		sleep_ms(50);
	}
	return false;
}

static void reset_http_files(void)
{
	unlink(sub("received"));
	unlink(sub("requests"));
	unlink(sub("mode"));
}

/* ---- the audit writer's side: one lock, seq order, and what was submitted ---- */

static struct {
	pthread_mutex_t lock;
	struct kura_sinks *s;
	uint64_t seq;
	uint8_t mac[32];
	char *sent; /* every line submitted, each with '\n' */
	size_t len, cap;
	bool reentrant; /* events append records, as kurad does */
	struct kura_sink_event ev[64];
	char ev_detail[64][256];
	int n_ev;
	uint64_t dropped_reported;
	int64_t max_submit_us;
} w = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void mac_of(uint64_t seq, uint8_t mac[32])
{
	crypto_generichash(mac, 32, (const uint8_t *)&seq, sizeof(seq), NULL, 0);
}

/* Under the writer's lock, as kura_audit_append calls its tap. */
static void submit_locked(const char *body, bool notable)
{
	char line[1024];
	int64_t t;
	int n;

	w.seq++;
	n = snprintf(line, sizeof(line), "{%s,\"seq\":%" PRIu64 "}", body, w.seq);
	mac_of(w.seq, w.mac);
	if (w.len + (size_t)n + 1 > w.cap) {
		w.cap = (w.cap + (size_t)n + 1) * 2;
		w.sent = realloc(w.sent, w.cap);
	}
	memcpy(w.sent + w.len, line, (size_t)n);
	w.len += (size_t)n;
	w.sent[w.len++] = '\n';
	t = now_us();
	kura_sinks_submit(w.s, line, (size_t)n, w.seq, w.mac, notable);
	t = now_us() - t;
	if (t > w.max_submit_us)
		w.max_submit_us = t;
}

static void submit(const char *body, bool notable)
{
	pthread_mutex_lock(&w.lock);
	submit_locked(body, notable);
	pthread_mutex_unlock(&w.lock);
}

static void on_event(const struct kura_sink_event *e, void *userdata)
{
	static const char *names[] = { "sink-failure", "sink-recovered", "sink-drop" };
	char body[600];
	json_t *d;
	char *dq;

	pthread_mutex_lock(&w.lock);
	if (w.n_ev < 64) {
		w.ev[w.n_ev] = *e;
		snprintf(w.ev_detail[w.n_ev], sizeof(w.ev_detail[0]), "%s", e->detail);
		w.ev[w.n_ev].detail = w.ev_detail[w.n_ev];
		w.n_ev++;
	}
	if (e->kind == KURA_SINK_DROPPED)
		w.dropped_reported += e->dropped;
	if (w.reentrant) {
		d = json_string(e->detail);
		dq = json_dumps(d, JSON_ENCODE_ANY);
		snprintf(body, sizeof(body), "\"event\":\"%s\",\"sink\":\"%s\",\"detail\":%s",
			names[e->kind], e->sink, dq);
		submit_locked(body, true);
		free(dq);
		json_decref(d);
	}
	pthread_mutex_unlock(&w.lock);
}

static void writer_reset(struct kura_sinks *s, bool reentrant)
{
	pthread_mutex_lock(&w.lock);
	w.s = s;
	w.seq = 0;
	w.len = 0;
	w.n_ev = 0;
	w.dropped_reported = 0;
	w.max_submit_us = 0;
	w.reentrant = reentrant;
	pthread_mutex_unlock(&w.lock);
}

static int start_sinks(struct kura_sink_config *c, bool reentrant)
{
	struct kura_sinks *s = NULL;
	int r;

	writer_reset(NULL, reentrant);
	r = kura_sinks_start(c, on_event, NULL, &s);
	pthread_mutex_lock(&w.lock);
	w.s = s;
	pthread_mutex_unlock(&w.lock);
	return r;
}

static void stop_sinks(unsigned flush_ms)
{
	struct kura_sinks *s;

	pthread_mutex_lock(&w.lock);
	s = w.s;
	w.s = NULL;
	pthread_mutex_unlock(&w.lock);
	kura_sinks_stop(s, flush_ms);
}

static struct kura_sink_stats stats(const char *sink)
{
	struct kura_sink_stats st;

	kura_sinks_stats(w.s, sink, &st);
	return st;
}

static bool wait_sent(const char *sink, uint64_t n, int ms)
{
	for (int i = 0; i < ms / 20; i++) {
		if (stats(sink).sent >= n)
			return true;
		sleep_ms(20);
	}
	return false;
}

static bool is_checkpoint(const char *line)
{
	return strncmp(line, "{\"type\":\"kura-audit-checkpoint\"", 31) == 0;
}

/* Splits text into lines, keeping the records and moving checkpoint lines into cps. */
static char *strip_checkpoints(const char *text, char *cps, size_t cps_size)
{
	char *out = malloc(strlen(text) + 1), *o = out;
	size_t c = 0;

	cps[0] = '\0';
	while (*text) {
		const char *nl = strchr(text, '\n');
		size_t n = nl ? (size_t)(nl - text) + 1 : strlen(text);

		if (is_checkpoint(text)) {
			if (c + n < cps_size) {
				memcpy(cps + c, text, n);
				c += n;
				cps[c] = '\0';
			}
		} else {
			memcpy(o, text, n);
			o += n;
		}
		text += n;
	}
	*o = '\0';
	return out;
}

/* A checkpoint line carries seq, this MAC, our host and an RFC 3339 µs UTC time. */
static bool checkpoint_ok(const char *line, uint64_t seq)
{
	char b64[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL)];
	uint8_t mac[32];
	json_t *j = json_loads(line, JSON_DISABLE_EOF_CHECK, NULL);
	const char *t;
	bool ok;

	mac_of(seq, mac);
	sodium_bin2base64(b64, sizeof(b64), mac, 32, sodium_base64_VARIANT_ORIGINAL);
	t = json_string_value(json_object_get(j, "time"));
	ok = j && json_object_size(j) == 5 &&
		strcmp(json_string_value(json_object_get(j, "type")), "kura-audit-checkpoint") ==
			0 &&
		json_integer_value(json_object_get(j, "seq")) == (json_int_t)seq &&
		strcmp(json_string_value(json_object_get(j, "mac")) ?: "", b64) == 0 &&
		strcmp(json_string_value(json_object_get(j, "host")) ?: "", HOST) == 0 && t &&
		strlen(t) == 27 && t[4] == '-' && t[10] == 'T' && t[19] == '.' && t[26] == 'Z';
	json_decref(j);
	return ok;
}

static const char *last_line(const char *text, char *buf, size_t n)
{
	size_t len = strlen(text);
	const char *p;

	buf[0] = '\0';
	if (len == 0)
		return buf;
	p = text + len - 1; /* the final '\n' */
	while (p > text && p[-1] != '\n')
		p--;
	snprintf(buf, n, "%.*s", (int)(text + len - p - 1), p);
	return buf;
}

/* ---- cases ---- */

static void test_bad_specs(void)
{
	static const struct kura_sink_config bad[] = {
		{ .syslog = "udp:127.0.0.1:514" },
		{ .syslog = "unix:" },
		{ .syslog = "tcp:127.0.0.1" },
		{ .syslog = "tcp::514" },
		{ .syslog = "tcp:127.0.0.1:0" },
		{ .syslog = "tcp:127.0.0.1:65536" },
		{ .syslog = "tcp:127.0.0.1:51x" },
		{ .syslog = "tcp:::1:514" },
		{ .syslog = "tcp:[]:514" },
		{ .http_url = "ftp://collector/x" },
		{ .http_url = "http://" },
		{ .http_url = "http://a b/" },
		{ .http_url = "http://user:secret@collector:8080/ingest" },
		{ .http_url = "https://token@collector/x" },
		{ .http_url = "unix:/run/x.sock" },
		{ .http_url = "unix::/ingest" },
		{ .syslog = "unix:/dev/log", .http_url = "gopher://x" },
		{ .syslog = "unix:/dev/log", .hostname = "has space" },
		{ .syslog = "unix:/dev/log", .hostname = "" },
		{ .syslog = "unix:/dev/log", .hostname = "quo\"te" },
	};
	static char sentinel;
	struct kura_sinks *s = (struct kura_sinks *)&sentinel, *orig = s;
	char before[32], after[32];
	int bad_ok = 0;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = kura_sinks_start(&bad[i], on_event, NULL, &s);

		if (r == -EINVAL && s == orig)
			bad_ok++;
		else
			tap_diag("case %zu (%s / %s): %d", i, bad[i].syslog ?: "-",
				bad[i].http_url ?: "-", r);
	}
	tap_is(bad_ok, (int)(sizeof(bad) / sizeof(bad[0])),
		"every bad spec is -EINVAL and leaves *ret alone");
	{
		struct kura_sink_config good = { .syslog = "tcp:[::1]:514",
			.http_url = "unix:/run/x.sock:/ingest" };
		struct stat st;
		int r;

		stat("/proc/self/task", &st);
		snprintf(before, sizeof(before), "%lu", (unsigned long)st.st_nlink);
		r = kura_sinks_start(&good, NULL, NULL, &s);
		tap_is(r, 0, "IPv6 TCP syslog and an HTTP collector on a Unix socket are accepted");
		if (r == 0)
			kura_sinks_stop(s, 0);
		stat("/proc/self/task", &st);
		snprintf(after, sizeof(after), "%lu", (unsigned long)st.st_nlink);
		tap_ok(strcmp(before, after) == 0,
			"stop joined its threads (%s tasks before, %s after)", before, after);
	}
}

/* Parses one line of the "fields" template: pri|app|msgid|host|procid|sd|msg. */
static bool fields(char *line, char *f[7])
{
	for (int i = 0; i < 6; i++) {
		char *bar = strchr(line, '|');

		if (!bar)
			return false;
		f[i] = line;
		*bar = '\0';
		line = bar + 1;
	}
	f[6] = line;
	return true;
}

static void test_syslog(const char *kind)
{
	char spec[600], file[64], full[64], pid[16], want_pri[8];
	struct kura_sink_config c = { .syslog = spec, .hostname = HOST };
	int n = 0, good = 0, n_cp = 0, expect = 60;
	char *text = NULL, *line, *save, *sent;
	int64_t t0;

	if (strcmp(kind, "unix") == 0)
		snprintf(spec, sizeof(spec), "unix:%s", sub("log.sock"));
	else
		snprintf(spec, sizeof(spec), "tcp:127.0.0.1:%d", tcp_port);
	snprintf(file, sizeof(file), "%s.fields", kind);
	snprintf(full, sizeof(full), "%s.full", kind);
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	if (!tap_is(start_sinks(&c, false), 0, "syslog %s: started", kind))
		return;
	for (int i = 0; i < expect; i++) {
		char body[256];

		snprintf(body, sizeof(body),
			"\"event\":\"fetch\",\"i\":%d,\"secret\":\"db/pässwörd\",\"q\":\"a "
			"\\\"b\\\" "
			"| c\\\\d\",\"result\":\"%s\"",
			i, i % 5 == 0 ? "denied" : "ok");
		submit(body, i % 5 == 0);
	}
	tap_ok(wait_sent("syslog", (uint64_t)expect, 5000), "syslog %s: %d records sent", kind,
		expect);
	t0 = now_us();
	stop_sinks(2000);
	tap_diag("syslog %s: stop took %.1f ms", kind, (double)(now_us() - t0) / 1000);

	for (int i = 0; i < 100; i++) {
		free(text);
		text = slurp(sub(file));
		if (count_lines(text) >= expect + 1)
			break;
		sleep_ms(50);
	}
	sent = malloc(w.len + 1);
	memcpy(sent, w.sent, w.len);
	sent[w.len] = '\0';
	line = sent;
	for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		char *f[7], *nl;

		if (!fields(l, f)) {
			tap_diag("unparsed: %s", l);
			continue;
		}
		if (strcmp(f[2], "checkpoint") == 0) {
			if (!checkpoint_ok(f[6], (uint64_t)expect) || strcmp(f[0], "85") != 0)
				tap_diag("bad checkpoint: pri %s msg %s", f[0], f[6]);
			else
				n_cp++;
			continue;
		}
		nl = strchr(line, '\n');
		if (!nl)
			break;
		*nl = '\0';
		snprintf(want_pri, sizeof(want_pri), "%d", n % 5 == 0 ? 84 : 86);
		if (strcmp(f[6], line) == 0 && strcmp(f[0], want_pri) == 0 &&
			strcmp(f[1], "kurad") == 0 && strcmp(f[2], "audit") == 0 &&
			strcmp(f[3], HOST) == 0 && strcmp(f[4], pid) == 0 && strcmp(f[5], "-") == 0)
			good++;
		else if (good == n)
			tap_diag("record %d: pri %s app %s msgid %s host %s procid %s sd %s\n#  "
				 "got  %s\n#  "
				 "want %s",
				n, f[0], f[1], f[2], f[3], f[4], f[5], f[6], line);
		line = nl + 1;
		n++;
	}
	tap_is(good, expect,
		"syslog %s: rsyslog parsed every record (PRI 86/84 for notable, APP-NAME kurad, "
		"MSGID "
		"audit, HOSTNAME, PROCID) with the JSON byte for byte, in order",
		kind);
	tap_is(n_cp, 1, "syslog %s: one final checkpoint at stop, MSGID checkpoint, PRI 85, seq %d",
		kind, expect);
	free(text);
	free(sent);
	text = slurp(sub(full));
	line = strstr(text, "\"i\":1,");
	if (line) {
		while (line > text && line[-1] != '\n')
			line--;
		tap_diag("as rsyslog stored it (%s): %.*s", kind, (int)strcspn(line, "\n"), line);
	}
	free(text);
}

static void test_http_batches(void)
{
	char url[128], cps[8192], last[1024];
	struct kura_sink_config c = { .http_url = url,
		.hostname = HOST,
		.batch_max = 100,
		.flush_ms = 100 };
	char *text, *recs, *req;
	int posts, expect = 1000;

	reset_http_files();
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/ingest", http_port);
	if (!tap_is(start_sinks(&c, false), 0, "http: started"))
		return;
	for (int i = 0; i < expect; i++) {
		char body[64];

		snprintf(body, sizeof(body), "\"event\":\"fetch\",\"i\":%d", i);
		submit(body, false);
	}
	tap_ok(wait_sent("http", (uint64_t)expect, 10000), "http: %d records acknowledged", expect);
	stop_sinks(2000);
	text = slurp(sub("received"));
	recs = strip_checkpoints(text, cps, sizeof(cps));
	tap_ok(strlen(recs) == w.len && memcmp(recs, w.sent, w.len) == 0,
		"http: the collector got every record once, in order, newline-terminated");
	req = slurp(sub("requests"));
	posts = count_lines(req);
	tap_ok(posts >= expect / 100 && posts < expect / 10,
		"http: batched: %d POSTs for %d records (batch_max 100)", posts, expect);
	tap_ok(checkpoint_ok(last_line(text, last, sizeof(last)), (uint64_t)expect),
		"http: the final checkpoint at stop pins seq %d and its MAC: %s", expect, last);
	free(text);
	free(recs);
	free(req);
}

static int event_index(enum kura_sink_event_kind kind, int from)
{
	int i;

	pthread_mutex_lock(&w.lock);
	for (i = from; i < w.n_ev; i++)
		if (w.ev[i].kind == kind)
			break;
	if (i == w.n_ev)
		i = -1;
	pthread_mutex_unlock(&w.lock);
	return i;
}

static bool wait_event(enum kura_sink_event_kind kind, int from, int ms)
{
	for (int i = 0; i < ms / 20; i++) {
		if (event_index(kind, from) >= 0)
			return true;
		sleep_ms(20);
	}
	return false;
}

static void test_http_down(void)
{
	char url[128], cps[8192];
	struct kura_sink_config c = { .http_url = url,
		.hostname = HOST,
		.batch_max = 20,
		.flush_ms = 50,
		.timeout_ms = 500 };
	struct kura_sink_stats st;
	int port = http_port, f, rec;
	char *text, *recs, *req;
	uint64_t total;

	stop_child(&http_pid);
	reset_http_files();
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/ingest", port);
	if (!tap_is(start_sinks(&c, true), 0, "http down: started"))
		return;
	for (int i = 0; i < 100; i++) {
		char body[64];

		snprintf(body, sizeof(body), "\"event\":\"fetch\",\"i\":%d", i);
		submit(body, false);
		if (i % 10 == 0)
			sleep_ms(20);
	}
	tap_ok(wait_event(KURA_SINK_FAILED, 0, 3000), "http down: a FAILED event: %s",
		event_index(KURA_SINK_FAILED, 0) >= 0 ?
			w.ev_detail[event_index(KURA_SINK_FAILED, 0)] :
			"none");
	sleep_ms(600);
	st = stats("http");
	tap_ok(!st.up && st.failures >= 2 && st.sent == 0,
		"http down: stats say down, %" PRIu64 " failed attempts, nothing sent",
		st.failures);

	/* Back, but answering 500: still failing, still nothing lost. */
	spit(sub("mode"), "500\n");
	if (!tap_ok(start_http(port), "http down: collector back on port %d (answering 500)", port))
		return;
	for (int i = 100; i < 150; i++) {
		char body[64];

		snprintf(body, sizeof(body), "\"event\":\"fetch\",\"i\":%d", i);
		submit(body, false);
	}
	sleep_ms(1500);
	req = slurp(sub("requests"));
	tap_ok(strstr(req, "500 ") && stats("http").sent == 0 &&
			event_index(KURA_SINK_RECOVERED, 0) < 0,
		"http down: 500s are retried, not acknowledged (%d requests)", count_lines(req));
	free(req);

	unlink(sub("mode"));
	pthread_mutex_lock(&w.lock);
	total = w.seq;
	pthread_mutex_unlock(&w.lock);
	tap_ok(wait_event(KURA_SINK_RECOVERED, 0, 8000),
		"http down: a RECOVERED event once it answers 200");
	f = event_index(KURA_SINK_FAILED, 0);
	rec = event_index(KURA_SINK_RECOVERED, 0);
	tap_ok(f >= 0 && rec > f && event_index(KURA_SINK_FAILED, f + 1) < 0,
		"http down: exactly one FAILED, then RECOVERED");
	/* The events themselves became records (re-entrant submit): those must arrive too. */
	for (int i = 0; i < 250; i++) {
		pthread_mutex_lock(&w.lock);
		total = w.seq;
		pthread_mutex_unlock(&w.lock);
		if (stats("http").sent >= total)
			break;
		sleep_ms(20);
	}
	stop_sinks(2000);
	text = slurp(sub("received"));
	recs = strip_checkpoints(text, cps, sizeof(cps));
	tap_ok(strlen(recs) == w.len && memcmp(recs, w.sent, w.len) == 0,
		"http down: all %" PRIu64
		" records (with the sink-failure and sink-recovered ones) "
		"arrived once, in order",
		total);
	if (strlen(recs) != w.len)
		tap_diag("got %zu bytes, want %zu", strlen(recs), w.len);
	free(text);
	free(recs);
}

static void test_http_hung(void)
{
	char url[128];
	struct kura_sink_config c = { .http_url = url,
		.hostname = HOST,
		.batch_max = 50,
		.flush_ms = 20,
		.timeout_ms = 1000 };
	int64_t t0, stop_us, max_us;
	int reqs, n = 0;
	char *req;

	reset_http_files();
	spit(sub("mode"), "hang 10\n");
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/ingest", http_port);
	if (!tap_is(start_sinks(&c, false), 0, "http hung: started"))
		return;
	t0 = now_us();
	for (int i = 0; now_us() - t0 < 2500000; i++) {
		char body[64];

		snprintf(body, sizeof(body), "\"event\":\"fetch\",\"i\":%d", i);
		submit(body, false);
		if (i % 50 == 0)
			sleep_ms(10);
	}
	pthread_mutex_lock(&w.lock);
	max_us = w.max_submit_us;
	pthread_mutex_unlock(&w.lock);
	req = slurp(sub("requests"));
	reqs = count_lines(req);
	free(req);
	tap_ok(reqs >= 2, "http hung: the sink kept trying (%d requests hung)", reqs);
	/* Never waiting on the hung collector (its requests hang for seconds): a bound far above
	 * a queue push and far below any network wait, so a loaded machine does not fail it. */
	tap_ok(max_us < 100000,
		"http hung: %" PRIu64 " submits, the slowest took %" PRId64 " µs (< 100 ms)", w.seq,
		max_us);
	tap_ok(stats("http").sent == 0 && stats("http").failures >= 1,
		"http hung: nothing acknowledged, failures counted");
	/* Stop while a request hangs: it is cut at stop's deadline, not left to its timeout. */
	for (int i = 0; i < 150; i++) {
		req = slurp(sub("requests"));
		n = count_lines(req);
		free(req);
		if (n > reqs)
			break;
		sleep_ms(20);
	}
	sleep_ms(50);
	t0 = now_us();
	stop_sinks(300);
	stop_us = now_us() - t0;
	tap_ok(n > reqs && stop_us < (300 + 500) * 1000,
		"http hung: stop(300) with a request in flight returned in %.1f ms (documented "
		"bound: "
		"300 + timeout 1000)",
		(double)stop_us / 1000);
	unlink(sub("mode"));
}

static void test_overflow(void)
{
	char url[128];
	struct kura_sink_config c = { .http_url = url,
		.hostname = HOST,
		.queue_max = 100,
		.batch_max = 10,
		.timeout_ms = 300 };
	struct kura_sink_stats st;
	int port = free_port(), expect = 1000;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/ingest", port); /* nobody listens */
	if (!tap_is(start_sinks(&c, false), 0, "overflow: started"))
		return;
	for (int i = 0; i < expect; i++) {
		char body[64];

		snprintf(body, sizeof(body), "\"event\":\"fetch\",\"i\":%d", i);
		submit(body, false);
	}
	st = stats("http");
	tap_ok(st.dropped + st.queued == (uint64_t)expect && st.sent == 0,
		"overflow: dropped %" PRIu64 " + queued %" PRIu64 " == %d submitted", st.dropped,
		st.queued, expect);
	tap_ok(st.queued <= 100 + 10 && st.dropped >= (uint64_t)expect - 110,
		"overflow: the queue held to queue_max (+ one batch in flight)");
	for (int i = 0; i < 150; i++) {
		pthread_mutex_lock(&w.lock);
		bool done = w.dropped_reported >= st.dropped;
		pthread_mutex_unlock(&w.lock);
		if (done)
			break;
		sleep_ms(20);
	}
	pthread_mutex_lock(&w.lock);
	tap_is((long long)w.dropped_reported, (long long)st.dropped,
		"overflow: KURA_SINK_DROPPED events add up to exactly the drops");
	pthread_mutex_unlock(&w.lock);
	stop_sinks(100);
}

static void test_checkpoints(void)
{
	char url[128], spec[600], cps[8192], *text, *recs, *p;
	struct kura_sink_config c = { .http_url = url,
		.syslog = spec,
		.hostname = HOST,
		.checkpoint_s = 1,
		.flush_ms = 20 };
	int n_before, n_idle;
	bool final = false;
	size_t off;

	reset_http_files();
	text = slurp(sub("unix.fields")); /* rsyslogd holds it open: read past what is there */
	off = strlen(text);
	free(text);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/ingest", http_port);
	snprintf(spec, sizeof(spec), "unix:%s", sub("log.sock"));
	if (!tap_is(start_sinks(&c, false), 0, "checkpoints: started"))
		return;
	for (int i = 0; i < 5; i++)
		submit("\"event\":\"put\"", false);
	sleep_ms(1600);
	text = slurp(sub("received"));
	recs = strip_checkpoints(text, cps, sizeof(cps));
	n_before = count_lines(cps);
	tap_ok(n_before == 1 && checkpoint_ok(cps, 5),
		"checkpoints: after checkpoint_s one arrives over HTTP pinning seq 5: %s", cps);
	free(text);
	free(recs);
	text = slurp(sub("unix.fields"));
	p = strstr(text + off, "|checkpoint|");
	p = p ? strstr(p, "|-|{") : NULL;
	tap_ok(p && checkpoint_ok(p + 3, 5), "checkpoints: and over syslog, MSGID checkpoint");
	free(text);

	sleep_ms(2200);
	text = slurp(sub("received"));
	recs = strip_checkpoints(text, cps, sizeof(cps));
	n_idle = count_lines(cps);
	tap_is(n_idle, n_before, "checkpoints: none while the tail does not move");
	free(text);
	free(recs);

	submit("\"event\":\"rotate\"", false);
	submit("\"event\":\"grant\"", true);
	stop_sinks(2000);
	text = slurp(sub("received"));
	recs = strip_checkpoints(text, cps, sizeof(cps));
	tap_ok(strlen(recs) == w.len && memcmp(recs, w.sent, w.len) == 0,
		"checkpoints: the records around them all arrived");
	{
		char last[1024];

		tap_ok(count_lines(cps) == n_before + 1 &&
				checkpoint_ok(last_line(cps, last, sizeof(last)), 7),
			"checkpoints: a final one at stop pins seq 7: %s", last);
	}
	free(text);
	free(recs);
	for (int i = 0; i < 50; i++) {
		text = slurp(sub("unix.fields"));
		final = strstr(text + off, "{\"type\":\"kura-audit-checkpoint\",\"seq\":7,");
		free(text);
		if (final)
			break;
		sleep_ms(50);
	}
	text = slurp(sub("unix.fields"));
	tap_ok(final && count_lines(text + off) == 7 + 2 &&
			strstr(text + off, "|checkpoint|" HOST "|"),
		"checkpoints: syslog got 7 records, the periodic and the final checkpoint");
	free(text);
}

int main(void)
{
	bool ok;

	if (geteuid() != 0 && access("/usr/sbin/rsyslogd", X_OK) < 0) {
		tap_skip("rsyslogd is not installed");
		return tap_done();
	}
	if (sodium_init() < 0 || kura_runtime_global_init() < 0 || !mkdtemp(dir))
		return 3;
	atexit(cleanup);
	signal(SIGPIPE, SIG_IGN);

	test_bad_specs();
	ok = start_rsyslog();
	if (!tap_ok(ok, "rsyslogd started (unix socket and TCP port %d)", tcp_port)) {
		char *log = slurp(sub("rsyslog.log")), *conf = slurp(sub("rsyslog.conf"));

		tap_diag("%s", conf);
		free(conf);

		tap_diag("%s", log);
		free(log);
	} else {
		test_syslog("unix");
		test_syslog("tcp");
	}
	ok = start_http(0);
	if (tap_ok(ok, "HTTP collector started on port %d", http_port)) {
		test_http_batches();
		test_http_down();
		test_http_hung();
		test_checkpoints();
	}
	test_overflow();
	free(w.sent);
	return tap_done();
}

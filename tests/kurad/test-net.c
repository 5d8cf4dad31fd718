/* Integration tests for kurad's net process (broker/kurad/net.c): the server in a forked child
 * over socketpairs, and this process as the keeper, against a private dockerd and Podman
 * service, sockets that refuse or hang, and a real rsyslogd; and malformed messages, fatal to
 * whichever side receives them. No secrets. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "identity.h"
#include "json.h"
#include "msg.h"
#include "audit-event.h"
#include "audit.h"
#include "net.h"
#include "recorder.h"
#include "runtime.h"
#include "tap.h"
#include "watcher.h"

#define now_ms harness_now_ms
#define sleep_ms harness_sleep_ms

static char dir[] = "/tmp/kura-test-net-XXXXXX";
static pid_t rsyslog_pid;

static const char *sub(const char *name)
{
	static char buf[16][512];
	static int i;

	i = (i + 1) % 16;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
	return buf[i];
}

#define slurp tap_slurp

static int count(const char *s, const char *needle)
{
	int n = 0;

	for (const char *p = s; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

/* A Unix socket at path: listening but never accepting (a runtime that hangs: the kernel
 * completes the connect, nobody answers), or bound and not listening (refused). */
static int unix_socket(const char *path, bool listening)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
		(listening && listen(fd, 64) < 0))
		abort();
	return fd;
}

static bool start_rsyslog(void)
{
	const char *argv[] = { "/usr/sbin/rsyslogd", "-n", "-f", NULL, "-i", NULL, NULL };
	char conf[2048], conf_path[512], pid_path[512];
	FILE *f;

	snprintf(conf, sizeof(conf),
		"global(workDirectory=\"%s\" maxMessageSize=\"64k\")\n"
		"module(load=\"imuxsock\" SysSock.Use=\"off\")\n"
		"template(name=\"fields\" type=\"string\" string=\"%%pri%%|%%app-name%%|%%msg%%\\n\")\n"
		"ruleset(name=\"ux\") {\n"
		"  action(type=\"omfile\" file=\"%s\" template=\"fields\")\n"
		"}\n"
		"input(type=\"imuxsock\" Socket=\"%s\" UseSpecialParser=\"off\" ParseHostname=\"on\" "
		"RateLimit.Interval=\"0\" Ruleset=\"ux\")\n",
		dir, sub("syslog.fields"), sub("log.sock"));
	snprintf(conf_path, sizeof(conf_path), "%s", sub("rsyslog.conf"));
	snprintf(pid_path, sizeof(pid_path), "%s", sub("rsyslog.pid"));
	f = fopen(conf_path, "w");
	if (!f || fputs(conf, f) < 0)
		abort();
	fclose(f);
	argv[3] = conf_path;
	argv[5] = pid_path;
	rsyslog_pid = harness_spawn(argv, sub("rsyslog.log"));
	for (int i = 0; i < 200 && rsyslog_pid > 0; i++) {
		if (waitpid(rsyslog_pid, NULL, WNOHANG) == rsyslog_pid) {
			rsyslog_pid = 0;
			return false;
		}
		if (access(sub("log.sock"), F_OK) == 0)
			return true;
		sleep_ms(50);
	}
	return false;
}

/* ---- the net process, forked ---- */

enum { RT_DOCKER, RT_PODMAN, RT_GONE, RT_HANG, RT_REFUSED, RT_N };

static const char *const rt_names[RT_N] = { "docker", "podman", "gone", "hang", "refused" };
static char rt_endpoints[RT_N][300];

static bool stop_at_start;

/* Fork the net process over fresh socketpairs; the keeper's ends into *keeper. */
static pid_t fork_net(size_t n_req, size_t n_rt, const struct kura_sink_config *sinks,
	struct kura_net_fds *keeper)
{
	struct kura_net_runtime rts[RT_N];
	struct kura_net_fds net;
	pid_t pid;

	if (kura_net_socketpairs(n_req, n_rt, sinks != NULL, keeper, &net) < 0)
		abort();
	for (size_t i = 0; i < n_rt; i++)
		rts[i] = (struct kura_net_runtime){ rt_names[i], rt_endpoints[i] };
	pid = fork();
	if (pid == 0) {
		struct kura_net_config c = { .runtimes = rts, .n_runtimes = n_rt };

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		kura_net_fds_close(keeper);
		if (sinks)
			c.sinks = *sinks;
		if (stop_at_start)
			raise(SIGSTOP); /* until trace() has attached */
		_exit(kura_net_serve(&net, &c) < 0 ? 3 : 0);
	}
	kura_net_fds_close(&net);
	return pid;
}

/* KURA_TEST_STRACE=DIR: follow the net process from just after its start with strace -f -c
 * (into DIR/net-PID.txt), for the syscalls its seccomp list needs. A diagnostic only. */
static pid_t trace(pid_t pid)
{
	const char *dir_out = getenv("KURA_TEST_STRACE");
	char out[512], p[16];
	const char *argv[] = { "/usr/bin/strace", "-f", "-c", "-o", out, "-p", p, NULL };
	pid_t st;

	if (!dir_out)
		return 0;
	snprintf(out, sizeof(out), "%s/net-%d.txt", dir_out, (int)pid);
	snprintf(p, sizeof(p), "%d", (int)pid);
	st = harness_spawn(argv, sub("strace.log"));
	sleep_ms(500);
	kill(pid, SIGCONT);
	tap_diag("strace -f -c of the net process %d into %s", (int)pid, out);
	return st;
}

/* The child's exit status within ms (-1: still running, then killed). */
static int wait_exit(pid_t pid, int64_t ms)
{
	int64_t t0 = now_ms();
	int st;

	while (now_ms() - t0 < ms) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		sleep_ms(10);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return -1;
}

#define watcher harness_watcher
#define watcher_start harness_watcher_start
#define wait_event harness_wait_event
#define watcher_stop harness_watcher_stop

static void no_event(const char *id, const char *action, void *userdata)
{
}

/* The runtime client's caller, unchanged: the resolver names the container's init process
 * through the net process, and its watcher follows the stream there. */
static void resolver_checks(struct harness_runtime *h, struct kura_runtime *remote, const char *id)
{
	struct kura_resolver_config cfg = { .runtimes = &remote, .n_runtimes = 1 };
	struct kura_resolver *r = NULL;
	struct kura_ident *ident = NULL;
	struct kura_resolver_stats st;
	int64_t t0;

	if (!tap_is(kura_resolver_new(&cfg, &r), 0, "%s: a resolver over the remote runtime",
		    h->name) ||
		!tap_is(kura_resolver_start(r), 0, "%s: its watcher started", h->name)) {
		kura_resolver_free(r);
		return;
	}
	if (tap_is(kura_resolver_identify_pid(r, harness_container_pid(h, id), &ident), 0,
		    "%s: the resolver identifies the container's init process", h->name))
		tap_ok(!kura_ident_view(ident)->host &&
				!strcmp(kura_ident_view(ident)->container_id, id) &&
				!strcmp(kura_ident_view(ident)->runtime, h->name),
			"%s: as that container of that runtime", h->name);
	kura_ident_unref(ident);
	/* Its watcher's stream: an event for the container reaches the resolver. */
	t0 = now_ms();
	do {
		char out[256];

		HARNESS_CLI(h, out, "kill", "--signal", "CONT", id);
		sleep_ms(200);
		kura_resolver_get_stats(r, &st);
	} while (st.events == 0 && now_ms() - t0 < 5000);
	tap_ok(st.events > 0, "%s: the resolver's watcher saw %llu events through the net process",
		h->name, (unsigned long long)st.events);
	t0 = now_ms();
	kura_resolver_free(r);
	tap_ok(now_ms() - t0 < 1000, "%s: resolver freed in %lld ms", h->name,
		(long long)(now_ms() - t0));
}

/* ---- a real runtime, through the net process and directly ---- */

static void runtime_checks(struct harness_runtime *h, struct kura_runtime *remote)
{
	_cleanup_container_ struct kura_container *c = NULL, *d = NULL;
	struct kura_runtime *direct = NULL;
	char id[65], found[65], image[80], out[4096], other[65];
	static const char *const labels[] = { "app=web", "tier=front end", NULL };
	struct harness_container hc = { .image = "kura-net:1",
		.name = "kura-net1",
		.labels = labels };
	struct watcher w;
	int64_t t0, ms;
	int r;

	tap_is(kura_runtime_new(h->name, h->endpoint, &direct), 0, "%s: direct handle", h->name);
	tap_is(harness_image_import(h, sub("rootfs.tar"), "kura-net:1", image), 0,
		"%s: image imported", h->name);
	if (!tap_is(harness_container_run(h, &hc, id), 0, "%s: container %.12s", h->name, id))
		goto out;

	t0 = now_ms();
	r = kura_runtime_inspect(remote, id, 2000, &c);
	ms = now_ms() - t0;
	if (tap_is(r, 0, "%s: inspect through the net process (%lld ms)", h->name, (long long)ms)) {
		tap_ok(!strcmp(c->id, id) && !strcmp(c->name, "kura-net1"), "%s: id and name (%s)",
			h->name, c->name);
		tap_ok(!strcmp(c->image_id, image), "%s: image %s", h->name, c->image_id);
		tap_ok(c->running && c->pid == harness_container_pid(h, id),
			"%s: running, pid %d as the CLI says", h->name, (int)c->pid);
		tap_ok(c->labels.n == 2 && kura_labels_get(&c->labels, "tier") &&
				!strcmp(kura_labels_get(&c->labels, "tier"), "front end"),
			"%s: the container's labels", h->name);
		if (tap_is(kura_runtime_inspect(direct, id, 2000, &d), 0, "%s: inspect directly",
			    h->name))
			tap_ok(!strcmp(c->name, d->name) && !strcmp(c->image_id, d->image_id) &&
					c->pid == d->pid && c->labels.n == d->labels.n &&
					c->n_digests == d->n_digests &&
					c->image_labels.n == d->image_labels.n,
				"%s: both ways agree", h->name);
	}
	kura_container_free(TAKE_PTR(c));
	t0 = now_ms();
	for (int i = 0; i < 20 && r == 0; i++) {
		r = kura_runtime_inspect(remote, id, 2000, &c);
		kura_container_free(TAKE_PTR(c));
	}
	tap_is(r, 0, "%s: 20 inspects through the net process, %.1f ms each", h->name,
		(double)(now_ms() - t0) / 20);
	tap_is(kura_runtime_find(remote, "kura-net1", 2000, found), 0, "%s: find by name", h->name);
	tap_ok(!strcmp(found, id), "%s: found the container's id", h->name);
	harness_random_id(other);
	tap_is(kura_runtime_inspect(remote, other, 2000, &c), -ENOENT, "%s: unknown id -> ENOENT",
		h->name);
	resolver_checks(h, remote, id);

	watcher_start(&w, remote);
	t0 = now_ms();
	do
		HARNESS_CLI(h, out, "kill", "--signal", "CONT", id);
	while (!wait_event(&w, id, "kill", 300) && now_ms() - t0 < 5000);
	tap_ok(wait_event(&w, id, "kill", 100), "%s: kill event through the net process (%lld ms)",
		h->name, (long long)(now_ms() - t0));
	tap_is(kura_runtime_watch(remote, no_event, NULL, &w.stop), -EBUSY,
		"%s: a second watch of one runtime at once -> EBUSY", h->name);
	tap_is(harness_container_stop(h, id), 0, "%s: stop", h->name);
	tap_ok(wait_event(&w, id, "die", 5000), "%s: die event", h->name);
	tap_is(harness_container_rm(h, id), 0, "%s: rm", h->name);
	tap_ok(wait_event(&w, id, h->destroy_verb, 5000), "%s: %s event", h->name, h->destroy_verb);
	ms = watcher_stop(&w);
	tap_is(w.rc, 0, "%s: watch returns 0 on stop", h->name);
	tap_ok(ms < 1000, "%s: watch returned %lld ms after stop", h->name, (long long)ms);

	/* The same channel streams again after a stop. */
	watcher_start(&w, remote);
	r = harness_container_run(h, &(struct harness_container){ .image = "kura-net:1" }, id);
	tap_ok(r == 0 && wait_event(&w, id, "start", 5000), "%s: a second watch sees a start",
		h->name);
	ms = watcher_stop(&w);
	tap_ok(w.rc == 0 && ms < 1000, "%s: and stops again (%lld ms)", h->name, (long long)ms);
	harness_container_rm(h, id);
out:
	kura_runtime_free(direct);
}

/* What the direct client gives, through the net process too, and within the deadline. */
static void error_checks(struct kura_net_client *nc)
{
	static const int want[RT_N] = { [RT_GONE] = -EHOSTDOWN,
		[RT_HANG] = -ETIMEDOUT,
		[RT_REFUSED] = -ECONNREFUSED };
	static const char *const what[RT_N] = { [RT_GONE] = "no socket",
		[RT_HANG] = "a runtime that hangs",
		[RT_REFUSED] = "nobody listening" };
	char id[65];

	harness_random_id(id);
	for (int i = RT_GONE; i < RT_N; i++) {
		struct kura_runtime *remote = NULL, *direct = NULL;
		struct kura_container *c = NULL;
		volatile bool stop = false;
		int64_t t0, ms_r, ms_d;
		int rr, rd;

		kura_net_runtime_new(nc, rt_names[i], (unsigned)i, &remote);
		kura_runtime_new(rt_names[i], rt_endpoints[i], &direct);
		t0 = now_ms();
		rr = kura_runtime_inspect(remote, id, 500, &c);
		ms_r = now_ms() - t0;
		t0 = now_ms();
		rd = kura_runtime_inspect(direct, id, 500, &c);
		ms_d = now_ms() - t0;
		tap_is(rr, want[i], "%s: %s through the net process (%lld ms)", rt_names[i],
			what[i], (long long)ms_r);
		tap_is(rd, rr, "%s: as the direct client (%lld ms)", rt_names[i], (long long)ms_d);
		tap_ok(ms_r <= 500 + 50, "%s: within the deadline of 500 ms (%lld)", rt_names[i],
			(long long)ms_r);
		if (i != RT_HANG) {
			rr = kura_runtime_watch(remote, no_event, NULL, &stop);
			rd = kura_runtime_watch(direct, no_event, NULL, &stop);
			tap_ok(rr == want[i] && rd == rr, "%s: watch fails alike (%d, %d)",
				rt_names[i], rr, rd);
		}
		kura_runtime_free(remote);
		kura_runtime_free(direct);
	}
}

/* Timed-out requests hold all channels' answers owed: the next ones read them first. */
static void owed_checks(struct kura_net_client *nc, bool docker_up)
{
	struct kura_runtime *hang = NULL, *docker = NULL;
	struct kura_container *c = NULL;
	char id[65];
	int r = 0;

	harness_random_id(id);
	kura_net_runtime_new(nc, "hang", RT_HANG, &hang);
	kura_net_runtime_new(nc, "docker", RT_DOCKER, &docker);
	for (int i = 0; i < 4; i++)
		r |= kura_runtime_inspect(hang, id, 100, &c) != -ETIMEDOUT;
	tap_ok(!r, "four timed-out requests on the two channels");
	if (docker_up)
		tap_is(kura_runtime_inspect(docker, id, 2000, &c), -ENOENT,
			"the next request after them gets its own answer");
	else
		tap_skip("docker did not start");
	kura_runtime_free(hang);
	kura_runtime_free(docker);
}

/* ---- sinks ---- */

struct sink_seen {
	pthread_mutex_t lock;
	int failed_http, recovered, dropped;
	char detail[512];
};

static struct sink_seen seen = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void on_sink_event(const struct kura_sink_event *e, void *userdata)
{
	pthread_mutex_lock(&seen.lock);
	if (e->kind == KURA_SINK_FAILED && !strcmp(e->sink, "http")) {
		seen.failed_http++;
		snprintf(seen.detail, sizeof(seen.detail), "%s", e->detail);
	} else if (e->kind == KURA_SINK_RECOVERED) {
		seen.recovered++;
	} else if (e->kind == KURA_SINK_DROPPED) {
		seen.dropped++;
	}
	pthread_mutex_unlock(&seen.lock);
}

static void sink_checks(struct kura_net_client *nc)
{
	const int n = 50;
	uint8_t mac[KURA_SINK_MAC_BYTES];
	char line[256], *text = NULL;
	int64_t t0;
	int got = 0, failed;

	if (!tap_is(kura_net_sinks_start(nc, 0, on_sink_event, NULL), 0, "sinks: started"))
		return;
	t0 = now_ms();
	for (int i = 1; i <= n; i++) {
		int k = snprintf(line, sizeof(line),
			"{\"seq\":%d,\"event\":\"fetch\",\"marker\":\"kura-net-%d\",\"result\":\"%s\"}",
			i, i, i % 5 ? "ok" : "denied");

		memset(mac, i, sizeof(mac));
		kura_net_sinks_submit(nc, line, (size_t)k, (uint64_t)i, mac, i % 5 == 0);
	}
	tap_diag("sinks: %d records submitted in %lld ms", n, (long long)(now_ms() - t0));
	for (t0 = now_ms(); now_ms() - t0 < 5000; sleep_ms(50)) {
		free(text);
		text = slurp(sub("syslog.fields"));
		got = count(text, "\"marker\":\"kura-net-");
		pthread_mutex_lock(&seen.lock);
		failed = seen.failed_http;
		pthread_mutex_unlock(&seen.lock);
		if (got >= n && failed)
			break;
	}
	tap_is(got, n, "sinks: rsyslogd received every record through the net process");
	tap_ok(count(text, "\n84|kurad|") + !strncmp(text, "84|kurad|", 9) == n / 5,
		"sinks: the %d notable ones at warning (PRI 84)", n / 5);
	pthread_mutex_lock(&seen.lock);
	tap_ok(seen.failed_http > 0,
		"sinks: the HTTP collector's failure came back as an event "
		"(%s)",
		seen.detail);
	pthread_mutex_unlock(&seen.lock);
	t0 = now_ms();
	kura_net_sinks_stop(nc, 1000);
	tap_ok(now_ms() - t0 < 2500, "sinks: stopped in %lld ms (flush bound 1000 ms)",
		(long long)(now_ms() - t0));
	for (t0 = now_ms(); now_ms() - t0 < 3000; sleep_ms(50)) {
		free(text);
		text = slurp(sub("syslog.fields"));
		if (strstr(text, "\"type\":\"kura-audit-checkpoint\",\"seq\":50"))
			break;
	}
	tap_ok(strstr(text, "\"type\":\"kura-audit-checkpoint\",\"seq\":50") != NULL,
		"sinks: the flush at stop sent the final checkpoint of seq 50");
	tap_is(kura_net_sinks_dropped(nc), 0, "sinks: nothing dropped on the keeper's side");
	free(text);
}

/*
 * The recorder as the keeper runs it: a real audit log, its sinks in the net process. Its
 * records reach rsyslogd, and the HTTP collector's failure comes back and is written into the
 * local log (and so shipped to syslog) as a sink-failure record, as with local sinks.
 */
static void recorder_checks(const struct kura_sink_config *sinks)
{
	struct kura_recorder_config rc = { .state_dir = sub("state"), .checkpoint_s = 1 };
	struct kura_recorder *rec = NULL;
	struct kura_secbuf *k0 = NULL;
	struct kura_net_client *nc = NULL;
	struct kura_net_fds keeper;
	char audit_dir[512], out[4096], detail[32], *text = NULL;
	int64_t t0;
	int got = 0;
	pid_t net;

	mkdir(sub("state"), 0700);
	kura_audit_dir(sub("state"), audit_dir, sizeof(audit_dir));
	if (!tap_is(kura_audit_create(audit_dir, &k0), 0, "recorder: a fresh audit log"))
		return;
	kura_secbuf_free(k0);
	net = fork_net(1, 0, sinks, &keeper);
	kura_net_client_new(&keeper, &nc);
	rc.net = nc;
	if (!tap_is(kura_recorder_start(&rc, &rec), 0, "recorder: started, its sinks remote")) {
		kura_net_client_free(nc);
		wait_exit(net, 5000);
		return;
	}
	for (int i = 0; i < 10; i++) {
		snprintf(detail, sizeof(detail), "kura-net-rec-%d", i);
		kura_recorder_self(rec, "reload", detail);
	}
	for (t0 = now_ms(); now_ms() - t0 < 5000; sleep_ms(50)) {
		free(text);
		text = slurp(sub("syslog.fields"));
		got = count(text, "kura-net-rec-");
		if (got >= 10 && strstr(text, "\"event\":\"sink-failure\""))
			break;
	}
	tap_is(got, 10, "recorder: its 10 records reached rsyslogd through the net process");
	tap_ok(strstr(text, "\"event\":\"sink-failure\"") != NULL,
		"recorder: the HTTP sink's failure, written to the log, was shipped to syslog");
	free(text);
	kura_recorder_stop(rec);
	tap_is(harness_run(out, sizeof(out),
		       (const char *const[]){ "grep", "-rl", "\"event\":\"sink-failure\"",
			       audit_dir, NULL }),
		0, "recorder: the local log holds the sink-failure record");
	kura_net_client_free(nc);
	tap_is(wait_exit(net, 5000), 0, "recorder: the net process ends with the keeper");
}

/* A full queue on the keeper's side drops, never blocks: a net process that reads nothing. */
static void overflow_checks(void)
{
	struct kura_net_fds keeper, net;
	struct kura_net_client *nc = NULL;
	uint8_t mac[KURA_SINK_MAC_BYTES] = { 0 };
	char line[4096];
	int64_t t0, worst = 0;

	memset(line, 'x', sizeof(line));
	kura_net_socketpairs(1, 0, true, &keeper, &net);
	kura_net_client_new(&keeper, &nc);
	kura_net_sinks_start(nc, 100, on_sink_event, NULL);
	for (int i = 1; i <= 5000; i++) {
		t0 = now_ms();
		kura_net_sinks_submit(nc, line, sizeof(line), (uint64_t)i, mac, false);
		if (now_ms() - t0 > worst)
			worst = now_ms() - t0;
	}
	tap_ok(worst < 50,
		"overflow: 5000 submits to a net process that reads nothing, the "
		"slowest %lld ms",
		(long long)worst);
	tap_ok(kura_net_sinks_dropped(nc) > 0, "overflow: %llu dropped and counted",
		(unsigned long long)kura_net_sinks_dropped(nc));
	sleep_ms(1100);
	kura_net_sinks_submit(nc, line, sizeof(line), 5001, mac, false);
	for (t0 = now_ms(); now_ms() - t0 < 3000 && !seen.dropped; sleep_ms(20))
		;
	tap_ok(seen.dropped > 0, "overflow: the drop reported as a sink event");
	t0 = now_ms();
	kura_net_sinks_stop(nc, 200);
	tap_ok(now_ms() - t0 < 1500, "overflow: stop is bounded with no answer (%lld ms)",
		(long long)(now_ms() - t0));
	kura_net_client_free(nc);
	kura_net_fds_close(&net);
}

/* ---- malformed messages: fatal to the receiver ---- */

static void send_raw(int fd, uint16_t type, const void *body, uint32_t len)
{
	struct {
		uint32_t len;
		uint16_t type, flags;
	} h = { len, type, 0 };

	if (write(fd, &h, sizeof(h)) != sizeof(h) || (body && write(fd, body, len) != len))
		tap_diag("short write");
}

static void fatal_case(const char *what, int chan, void (*poke)(int fd))
{
	static const struct kura_sink_config none = { .hostname = "kura-test-host" };
	struct kura_net_fds keeper;
	pid_t pid = fork_net(1, 1, chan == 2 ? &none : NULL, &keeper);
	int fd = chan == 0 ? keeper.req[0] : chan == 1 ? keeper.events[0] : keeper.sinks;
	int st;

	poke(fd);
	st = wait_exit(pid, 3000);
	tap_is(st, 70, "net process: %s -> fatal (exit 70)", what);
	kura_net_fds_close(&keeper);
}

static void poke_unknown(int fd)
{
	send_raw(fd, 999, NULL, 0);
}

static void poke_long(int fd)
{
	send_raw(fd, KURA_MSG_NET_GET, NULL, 1u << 30);
}

static void poke_bad_field(int fd)
{
	struct {
		uint16_t tag, zero;
		uint32_t len;
		uint32_t v; /* a number of 4 bytes */
	} f = { KURA_F_NET_RUNTIME, 0, 4, 0 };

	send_raw(fd, KURA_MSG_NET_GET, &f, sizeof(f));
}

static void poke_wrong_type(int fd)
{
	struct kura_msgb b;

	kura_msgb_init(&b, KURA_MSG_NET_WATCH);
	kura_msgb_u64(&b, KURA_F_NET_RUNTIME, 0);
	kura_msgb_str(&b, KURA_F_PATH, "/v1.41/events");
	kura_msg_send(fd, &b, -1);
	kura_msgb_done(&b);
}

static void poke_index(int fd)
{
	struct kura_msgb b;

	kura_msgb_init(&b, KURA_MSG_NET_GET);
	kura_msgb_u64(&b, KURA_F_NET_RUNTIME, 5); /* configured: one */
	kura_msgb_str(&b, KURA_F_PATH, "/_ping");
	kura_msgb_u64(&b, KURA_F_NET_TIMEOUT, 1000);
	kura_msg_send(fd, &b, -1);
	kura_msgb_done(&b);
}

static void poke_cut(int fd)
{
	struct {
		uint32_t len;
		uint16_t type, flags;
	} h = { 100, KURA_MSG_NET_GET, 0 };

	if (write(fd, &h, sizeof(h)) != sizeof(h))
		tap_diag("short write");
	shutdown(fd, SHUT_WR);
}

static void poke_watch_other(int fd)
{
	struct kura_msgb b;

	kura_msgb_init(&b, KURA_MSG_NET_GET); /* a GET on an event channel */
	kura_msgb_u64(&b, KURA_F_NET_RUNTIME, 0);
	kura_msgb_str(&b, KURA_F_PATH, "/_ping");
	kura_msgb_u64(&b, KURA_F_NET_TIMEOUT, 1000);
	kura_msg_send(fd, &b, -1);
	kura_msgb_done(&b);
}

static void poke_record(int fd, const char *line)
{
	uint8_t mac[KURA_SINK_MAC_BYTES] = { 1 };
	struct kura_msgb b;

	kura_msgb_init(&b, KURA_MSG_NET_RECORD);
	kura_msgb_u64(&b, KURA_F_NET_SEQ, 7);
	kura_msgb_bytes(&b, KURA_F_NET_MAC, mac, sizeof(mac));
	kura_msgb_u64(&b, KURA_F_NET_NOTABLE, 0);
	kura_msgb_bytes(&b, KURA_F_NET_LINE, line, strlen(line));
	kura_msg_send(fd, &b, -1);
	kura_msgb_done(&b);
}

static void poke_record_newline(int fd)
{
	poke_record(fd, "{\"seq\":7}\n{\"forged\":true}");
}

static void poke_record_short_mac(int fd)
{
	struct kura_msgb b;

	kura_msgb_init(&b, KURA_MSG_NET_RECORD);
	kura_msgb_u64(&b, KURA_F_NET_SEQ, 7);
	kura_msgb_bytes(&b, KURA_F_NET_MAC, "short", 5);
	kura_msgb_u64(&b, KURA_F_NET_NOTABLE, 0);
	kura_msgb_bytes(&b, KURA_F_NET_LINE, "{}", 2);
	kura_msg_send(fd, &b, -1);
	kura_msgb_done(&b);
}

static void poke_record_then_get(int fd)
{
	poke_record(fd, "{\"seq\":7}");
	poke_watch_other(fd); /* a GET where records go */
}

/* The keeper's side, in a child, facing a net process that answers a GET with garbage. */
static void keeper_fatal_case(const char *what, void (*answer)(int fd), int want)
{
	struct kura_net_fds keeper, net;
	pid_t pid;
	int st;

	kura_net_socketpairs(1, 1, false, &keeper, &net);
	pid = fork();
	if (pid == 0) {
		struct kura_net_client *nc = NULL;
		struct kura_runtime *rt = NULL;
		struct kura_container *c = NULL;
		char id[65];

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		kura_net_fds_close(&net);
		harness_random_id(id);
		kura_net_client_new(&keeper, &nc);
		kura_net_runtime_new(nc, "docker", 0, &rt);
		_exit(kura_runtime_inspect(rt, id, 2000, &c) == -ENOENT ? 0 : 1);
	}
	kura_net_fds_close(&keeper);
	{
		struct kura_msg m;
		char why[128];

		if (kura_msg_recv(net.req[0], 2000, &m, why) == 0)
			kura_msg_done(&m);
		answer(net.req[0]);
	}
	st = wait_exit(pid, 3000);
	tap_is(st, want, "keeper: %s from the net process -> exit %d", what, want);
	kura_net_fds_close(&net);
}

static void answer_unknown(int fd)
{
	send_raw(fd, 999, NULL, 0);
}

static void answer_chunk(int fd)
{
	struct kura_msgb b;

	kura_msgb_init(&b, KURA_MSG_NET_CHUNK);
	kura_msgb_bytes(&b, KURA_F_BODY, "{}", 2);
	kura_msg_send(fd, &b, -1);
	kura_msgb_done(&b);
}

static void answer_big_body(int fd)
{
	struct kura_msgb b;
	char *big = calloc(1, KURA_MSG_NET_BODY_MAX);

	kura_msgb_init(&b, KURA_MSG_NET_GOT);
	kura_msgb_u64(&b, KURA_F_NET_ERRNO, 0);
	kura_msgb_u64(&b, KURA_F_STATUS, 200);
	kura_msgb_bytes(&b, KURA_F_BODY, big, KURA_MSG_NET_BODY_MAX); /* one past the limit */
	{
		struct {
			uint32_t len;
			uint16_t type, flags;
		} h = { (uint32_t)b.len, KURA_MSG_NET_GOT, 0 };
		size_t off = 0;

		if (write(fd, &h, sizeof(h)) != sizeof(h))
			tap_diag("short write");
		while (off < b.len) {
			ssize_t k = write(fd, b.buf + off, b.len - off);

			if (k <= 0)
				break;
			off += (size_t)k;
		}
	}
	kura_msgb_done(&b);
	free(big);
}

static void answer_ok(int fd)
{
	struct kura_msgb b;

	kura_msgb_init(&b, KURA_MSG_NET_GOT);
	kura_msgb_u64(&b, KURA_F_NET_ERRNO, 0);
	kura_msgb_u64(&b, KURA_F_STATUS, 404);
	kura_msg_send(fd, &b, -1);
	kura_msgb_done(&b);
}

static void test_fatal(void)
{
	struct kura_net_fds keeper;
	pid_t pid;

	fatal_case("an unknown type", 0, poke_unknown);
	fatal_case("a length past the type's limit", 0, poke_long);
	fatal_case("a number field of 4 bytes", 0, poke_bad_field);
	fatal_case("a WATCH on a request channel", 0, poke_wrong_type);
	fatal_case("a runtime index past those configured", 0, poke_index);
	fatal_case("a message cut short", 0, poke_cut);
	fatal_case("a GET on an event channel", 1, poke_watch_other);
	fatal_case("a record with a newline in it (two records in one)", 2, poke_record_newline);
	fatal_case("a record with a MAC of 5 bytes", 2, poke_record_short_mac);
	fatal_case("a GET on the sink channel", 2, poke_record_then_get);
	/* The control: the keeper closing its ends is a clean stop, not a fatal one. */
	pid = fork_net(1, 1, NULL, &keeper);
	kura_net_fds_close(&keeper);
	tap_is(wait_exit(pid, 3000), 0, "net process: the keeper gone -> serve returns, exit 0");

	keeper_fatal_case("an unknown type", answer_unknown, 70);
	keeper_fatal_case("a CHUNK on a request channel", answer_chunk, 70);
	keeper_fatal_case("a body past KURA_RUNTIME_MAX_BODY", answer_big_body, 70);
	keeper_fatal_case("(the control) a well-formed 404", answer_ok, 0);
}

int main(void)
{
	struct harness_runtime docker = { 0 }, podman = { 0 };
	struct kura_sink_config sinks = { .hostname = "kura-test-host", .timeout_ms = 500 };
	struct kura_net_client *nc = NULL;
	struct kura_net_fds keeper;
	char syslog_spec[600], http_spec[600];
	bool docker_up = false, podman_up = false, syslog_up;
	int fd_hang, fd_refused;
	pid_t net, tracer;

	kura_json_init();
	if (kura_keys_init() < 0 || kura_runtime_global_init() < 0 || harness_init(dir) < 0) {
		printf("Bail out! setup\n");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);

	snprintf(rt_endpoints[RT_DOCKER], 300, "unix:%s", sub("docker-none.sock"));
	test_fatal();

	if (getuid() != 0)
		tap_skip("real runtimes: need root for a private dockerd and podman storage");
	else if (harness_rootfs_tar(sub("rootfs.tar"), NULL, 0) < 0)
		tap_skip("real runtimes: no /bin/busybox (busybox-static) for the image");
	else {
		docker_up = harness_runtime_start(&docker, HARNESS_DOCKER, dir) == 0;
		if (!docker_up)
			tap_skip("docker: %s", docker.skip);
		podman_up = harness_runtime_start(&podman, HARNESS_PODMAN, dir) == 0;
		if (!podman_up)
			tap_skip("podman: %s", podman.skip);
	}
	snprintf(rt_endpoints[RT_DOCKER], 300, "%s",
		docker_up ? docker.endpoint : "unix:/nonexistent/docker.sock");
	snprintf(rt_endpoints[RT_PODMAN], 300, "%s",
		podman_up ? podman.endpoint : "unix:/nonexistent/podman.sock");
	snprintf(rt_endpoints[RT_GONE], 300, "unix:%s", sub("gone.sock"));
	snprintf(rt_endpoints[RT_HANG], 300, "unix:%s", sub("hang.sock"));
	snprintf(rt_endpoints[RT_REFUSED], 300, "unix:%s", sub("refused.sock"));
	fd_hang = unix_socket(sub("hang.sock"), true);
	fd_refused = unix_socket(sub("refused.sock"), false);

	syslog_up = access("/usr/sbin/rsyslogd", X_OK) == 0 && start_rsyslog();
	snprintf(syslog_spec, sizeof(syslog_spec), "unix:%s", sub("log.sock"));
	snprintf(http_spec, sizeof(http_spec), "unix:%s:/audit", sub("collector.sock"));
	sinks.syslog = syslog_spec;
	sinks.http_url = http_spec; /* nobody listens there: the sink fails */

	stop_at_start = getenv("KURA_TEST_STRACE") != NULL;
	net = fork_net(2, RT_N, &sinks, &keeper);
	stop_at_start = false;
	tracer = trace(net);
	tap_is(kura_net_client_new(&keeper, &nc), 0, "keeper: a client of the net process");
	if (docker_up || podman_up) {
		for (int i = RT_DOCKER; i <= RT_PODMAN; i++) {
			struct harness_runtime *h = i == RT_DOCKER ? &docker : &podman;
			struct kura_runtime *remote = NULL;

			if (!(i == RT_DOCKER ? docker_up : podman_up))
				continue;
			tap_is(kura_net_runtime_new(nc, h->name, (unsigned)i, &remote), 0,
				"%s: a remote runtime", h->name);
			runtime_checks(h, remote);
			kura_runtime_free(remote);
		}
	}
	error_checks(nc);
	owed_checks(nc, docker_up);
	if (syslog_up)
		sink_checks(nc);
	else
		tap_skip("sinks: rsyslogd did not start (see %s)", sub("rsyslog.log"));
	kura_net_client_free(nc);
	tap_is(wait_exit(net, 5000), 0, "net process: serve returned once the keeper closed");
	if (tracer > 0)
		waitpid(tracer, NULL, 0);
	if (syslog_up)
		recorder_checks(&sinks);
	overflow_checks();

	close(fd_hang);
	close(fd_refused);
	if (docker_up)
		tap_is(harness_runtime_stop(&docker), 0, "docker: nothing left behind");
	if (podman_up)
		tap_is(harness_runtime_stop(&podman), 0, "podman: nothing left behind");
	harness_stop_pid(rsyslog_pid, "rsyslogd");
	tap_ok(harness_fini(), "test directory removed");
	return tap_done();
}

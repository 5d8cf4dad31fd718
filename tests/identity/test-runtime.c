/* Integration tests for the runtime API client: a private dockerd and a Podman API service that
 * this test starts and stops (through tests/harness.c), and fake servers on Unix sockets for
 * timeouts and hostile answers. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#include "harness.h"
#include "json.h"
#include "runtime.h"
#include "tap.h"
#include "watcher.h"

static char dir[] = "/tmp/kura-test-runtime-XXXXXX";

static const char *sub(const char *name)
{
	static char buf[16][512];
	static int i;

	i = (i + 1) % 16;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
	return buf[i];
}

#define now_ms harness_now_ms
#define sleep_ms harness_sleep_ms
#define random_id harness_random_id

#define watcher harness_watcher
#define watcher_start harness_watcher_start
#define has_event harness_has_event
#define wait_event harness_wait_event
#define watcher_stop harness_watcher_stop
#define watcher_dump harness_watcher_dump

/* ---- real runtimes ---- */

static const struct harness_runtime *cur;

#define CLI(out, ...) HARNESS_CLI(cur, out, __VA_ARGS__)

static const char *label_get(const struct kura_container *c, const char *key)
{
	return kura_labels_get(&c->labels, key);
}

static const char *image_label_get(const struct kura_container *c, const char *key)
{
	return kura_labels_get(&c->image_labels, key);
}

static bool is(const char *s, const char *want)
{
	return s && !strcmp(s, want);
}

/*
 * Config.Labels merges the image's labels into the container's: an image imported with
 * LABEL app=web, LABEL tier=back and LABEL same=1, run with --label tier=db --label same=1
 * --label own=x, shows all four keys there. The container's own labels are only those the run
 * set with a value the image does not have (tier=db, own=x; same=1 cannot be told apart from
 * the image's and counts as the image's); the image's are all three of its own.
 */
static void label_checks(const char *rtname, struct kura_runtime *rt)
{
	char out[4096], id[256], merged[4096];
	_cleanup_container_ struct kura_container *c = NULL;
	int r;

	r = CLI(out, "import", "--change", "LABEL app=web", "--change", "LABEL tier=back",
		"--change", "LABEL same=1", sub("rootfs.tar"), "kura-lab:1");
	tap_is(r, 0, "%s: import an image with LABELs", rtname);
	r = CLI(id, "run", "-d", "--network", "none", "--label", "tier=db", "--label", "same=1",
		"--label", "own=x", "--name", "kura-lab", "kura-lab:1", "/bin/sh", "-c",
		"sleep 300");
	if (!tap_ok(r == 0 && kura_runtime_id_valid(id), "%s: run it with labels: %s", rtname, id))
		return;
	CLI(merged, "inspect", "-f", "{{json .Config.Labels}}", id);
	tap_diag("%s: the runtime's Config.Labels: %s", rtname, merged);
	if (tap_is(kura_runtime_inspect(rt, id, 2000, &c), 0, "%s: inspect the labelled one",
		    rtname)) {
		tap_ok(c->labels.n == 2 && is(label_get(c, "tier"), "db") &&
				is(label_get(c, "own"), "x"),
			"%s: own labels are tier=db and own=x only (%zu)", rtname, c->labels.n);
		tap_ok(!label_get(c, "app"), "%s: the image's app=web is not an own label", rtname);
		tap_ok(!label_get(c, "same"),
			"%s: a run label equal to the image's counts as the image's", rtname);
		tap_ok(c->image_labels.n == 3 && is(image_label_get(c, "app"), "web") &&
				is(image_label_get(c, "tier"), "back") &&
				is(image_label_get(c, "same"), "1"),
			"%s: image labels are the image's three, tier=back included (%zu)", rtname,
			c->image_labels.n);
	}
	CLI(out, "stop", "-t", "0", id);
	CLI(out, "rm", id);
}

/*
 * The same checks through either runtime's socket: import the tarball, run a labelled
 * container, inspect it and compare with what the runtime's own CLI says; then watch events while
 * the container is signalled, renamed, stopped and removed.
 */
static void runtime_checks(const char *rtname, const char *sock, const char *destroy_verb)
{
	char out[4096], id[256], image[256], pidstr[64], digests[2048], endpoint[512], other[65];
	_cleanup_container_ struct kura_container *c = NULL;
	struct kura_runtime *rt = NULL;
	struct watcher w;
	int64_t t0, ms;
	int r;

	snprintf(endpoint, sizeof(endpoint), "unix:%s", sock);
	tap_is(kura_runtime_new(rtname, endpoint, &rt), 0, "%s: runtime handle", rtname);
	if (!rt)
		return;
	tap_is(CLI(out, "import", sub("rootfs.tar"), "kura-test:1"), 0, "%s: import", rtname);
	r = CLI(id, "run", "-d", "--network", "none", "--label", "app=web", "--label",
		"tier=front end", "--name", "kura-t1", "kura-test:1", "/bin/sh", "-c", "sleep 300");
	if (!tap_ok(r == 0 && kura_runtime_id_valid(id), "%s: run a container: %s", rtname, id)) {
		kura_runtime_free(rt);
		return;
	}
	CLI(image, "inspect", "-f", "{{.Image}}", id);
	if (strncmp(image, "sha256:", 7) != 0) { /* podman prints the bare hex */
		memmove(image + 7, image, strlen(image) + 1);
		memcpy(image, "sha256:", 7);
	}
	CLI(pidstr, "inspect", "-f", "{{.State.Pid}}", id);
	CLI(digests, "image", "inspect", "-f", "{{join .RepoDigests \",\"}}", image);
	tap_diag("%s: container %s image %s pid %s digests [%s]", rtname, id, image, pidstr,
		digests);

	t0 = now_ms();
	r = kura_runtime_inspect(rt, id, 2000, &c);
	ms = now_ms() - t0;
	if (tap_is(r, 0, "%s: inspect (%lld ms)", rtname, (long long)ms)) {
		char joined[2048] = "";
		size_t len = 0;

		tap_ok(!strcmp(c->id, id), "%s: id", rtname);
		tap_ok(!strcmp(c->name, "kura-t1"), "%s: name without '/': %s", rtname, c->name);
		tap_ok(!strcmp(c->image_id, image), "%s: image ID is the sha256 one: %s", rtname,
			c->image_id);
		tap_ok(label_get(c, "app") && !strcmp(label_get(c, "app"), "web"),
			"%s: label app=web", rtname);
		tap_ok(label_get(c, "tier") && !strcmp(label_get(c, "tier"), "front end"),
			"%s: label with a space", rtname);
		tap_ok(c->labels.n == 2 && c->image_labels.n == 0,
			"%s: an image without labels: both labels the container's own", rtname);
		tap_ok(c->running, "%s: running", rtname);
		tap_is(c->pid, strtol(pidstr, NULL, 10), "%s: pid matches the CLI's", rtname);
		for (size_t i = 0; i < c->n_digests; i++)
			len += (size_t)snprintf(joined + len, sizeof(joined) - len, "%s%s",
				i ? "," : "", c->repo_digests[i]);
		tap_ok(!strcmp(joined, digests), "%s: repo digests match the CLI's: [%s]", rtname,
			joined);
	}
	kura_container_free(TAKE_PTR(c));

	/* Warm: the connect and both requests again, now that the daemon has everything cached. */
	t0 = now_ms();
	for (int i = 0; i < 20; i++) {
		r = kura_runtime_inspect(rt, id, 2000, &c);
		kura_container_free(TAKE_PTR(c));
		if (r < 0)
			break;
	}
	tap_is(r, 0, "%s: 20 inspects, %.1f ms each", rtname, (double)(now_ms() - t0) / 20);

	random_id(other);
	tap_is(kura_runtime_inspect(rt, other, 2000, &c), -ENOENT, "%s: unknown id -> ENOENT",
		rtname);
	tap_is(kura_runtime_inspect(rt, "kura-t1", 2000, &c), -EINVAL,
		"%s: a name is not an id -> EINVAL", rtname);

	watcher_start(&w, rt);
	/* The watcher may not be subscribed yet: signal until its "kill" event comes back. */
	t0 = now_ms();
	do {
		CLI(out, "kill", "--signal", "CONT", id);
	} while (!wait_event(&w, id, "kill", 300) && now_ms() - t0 < 5000);
	tap_ok(has_event(&w, id, "kill"), "%s: kill event (%lld ms)", rtname,
		(long long)(now_ms() - t0));

	tap_is(CLI(out, "rename", "kura-t1", "kura-t2"), 0, "%s: rename", rtname);
	tap_ok(wait_event(&w, id, "rename", 5000), "%s: rename event", rtname);
	if (tap_is(kura_runtime_inspect(rt, id, 2000, &c), 0, "%s: inspect after rename", rtname))
		tap_ok(!strcmp(c->name, "kura-t2"), "%s: new name: %s", rtname, c->name);
	kura_container_free(TAKE_PTR(c));

	tap_is(CLI(out, "stop", "-t", "0", id), 0, "%s: stop", rtname);
	tap_ok(wait_event(&w, id, "die", 5000), "%s: die event", rtname);
	if (tap_is(kura_runtime_inspect(rt, id, 2000, &c), 0, "%s: inspect stopped", rtname))
		tap_ok(!c->running && c->pid == 0, "%s: not running, no pid", rtname);
	kura_container_free(TAKE_PTR(c));

	tap_is(CLI(out, "rm", id), 0, "%s: rm", rtname);
	tap_ok(wait_event(&w, id, destroy_verb, 5000), "%s: %s event", rtname, destroy_verb);
	tap_is(kura_runtime_inspect(rt, id, 2000, &c), -ENOENT, "%s: removed -> ENOENT", rtname);

	ms = watcher_stop(&w);
	tap_is(w.rc, 0, "%s: watch returns 0 on stop", rtname);
	tap_ok(ms < 1000, "%s: watch returned %lld ms after stop", rtname, (long long)ms);
	watcher_dump(&w, rtname);
	label_checks(rtname, rt);
	kura_runtime_free(rt);
}

static void cleanup_runtime(struct harness_runtime *h)
{
	int procs = harness_runtime_stop(h);

	tap_ok(procs == 0, "%s: no process left behind (%d killed)", h->name, procs);
}

static void test_real(enum harness_kind kind)
{
	struct harness_runtime h;

	if (harness_runtime_start(&h, kind, dir) < 0) {
		tap_skip("%s", h.skip);
		cleanup_runtime(&h);
		return;
	}
	cur = &h;
	runtime_checks(h.name, h.sock, h.destroy_verb);
	cleanup_runtime(&h);
	cur = NULL;
}

/* ---- fake servers ---- */

enum fake_mode {
	FAKE_GOOD,
	FAKE_NO_IMAGE,
	FAKE_HANG,
	FAKE_HANG_IMAGE,
	FAKE_CLOSE,
	FAKE_NOT_HTTP,
	FAKE_GARBAGE,
	FAKE_BIG,
	FAKE_BIG_UNSIZED,
	FAKE_WRONG_ID,
	FAKE_TAG_IMAGE,
	FAKE_SHORT_IMAGE,
	FAKE_NO_LABELS,
	FAKE_MANY_LABELS,
	FAKE_LONG_LABEL,
	FAKE_BAD_NAME,
	FAKE_LONG_NAME,
	FAKE_RUNNING_STRING,
	FAKE_NO_STATE,
	FAKE_BAD_DIGEST,
	FAKE_IMAGE_NO_CONFIG,
	FAKE_IMAGE_NO_LABELS,
	FAKE_IMAGE_NULL_LABELS,
	FAKE_IMAGE_BAD_LABELS,
	FAKE_IMAGE_LABEL_NUMBER,
	FAKE_IMAGE_MANY_LABELS,
	FAKE_IMAGE_WRONG_ID,
	FAKE_IMAGE_ERROR,
	FAKE_NOT_FOUND,
	FAKE_ERROR,
	FAKE_EVENTS,
	FAKE_EVENTS_END,
	FAKE_EVENTS_LONG,
	FAKE_EVENTS_JUNK,
	FAKE_EVENTS_404,
};

struct fake {
	int lfd;
	enum fake_mode mode;
	pthread_t th;
	char sock[256];
	int conns;
	char id[65];
	char image[72];
};

static void say(int fd, const char *s, size_t n)
{
	while (n) {
		ssize_t w = send(fd, s, n, MSG_NOSIGNAL);

		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

static void respond(int fd, int status, const char *body, size_t len, bool sized)
{
	char head[256];
	int n;

	if (sized)
		n = snprintf(head, sizeof(head),
			"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
			"Connection: close\r\n\r\n",
			status, len);
	else
		n = snprintf(head, sizeof(head),
			"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n",
			status);
	say(fd, head, (size_t)n);
	say(fd, body, len);
}

/* Block until the client goes away. */
static void hold(int fd)
{
	char b[256];

	while (read(fd, b, sizeof(b)) > 0)
		;
}

static void container_json(struct fake *f, char *buf, size_t sz)
{
	const char *name = "\"/fake\"", *image = f->image;
	/* As a runtime merges them: the image's app=web, and tier=db over the image's tier=back. */
	const char *labels = "{\"app\":\"web\",\"tier\":\"db\",\"x\":\"\"}";
	const char *id = f->id, *state = "{\"Running\":true,\"Pid\":4242}";
	char other[65], big[6000];

	switch (f->mode) {
	case FAKE_WRONG_ID:
		random_id(other);
		id = other;
		break;
	case FAKE_TAG_IMAGE:
		image = "kura-test:1";
		break;
	case FAKE_SHORT_IMAGE:
		image = "sha256:abcdef";
		break;
	case FAKE_NO_LABELS:
		labels = "null";
		break;
	case FAKE_LONG_LABEL:
		memcpy(big, "{\"k\":\"", 6);
		memset(big + 6, 'v', 4097);
		memcpy(big + 6 + 4097, "\"}", 3);
		labels = big;
		break;
	case FAKE_BAD_NAME:
		name = "\"/fa ke\\n\"";
		break;
	case FAKE_LONG_NAME:
		memset(big, 'n', 259); /* "/" and 257 bytes */
		big[0] = '"';
		big[1] = '/';
		big[259] = '"';
		big[260] = '\0';
		name = big;
		break;
	case FAKE_RUNNING_STRING:
		state = "{\"Running\":\"true\",\"Pid\":4242}";
		break;
	case FAKE_NO_STATE:
		state = "null";
		break;
	default:
		break;
	}
	if (f->mode == FAKE_MANY_LABELS) {
		static char l[16000];
		size_t len = 1;

		l[0] = '{';
		for (int i = 0; i < 257; i++)
			len += (size_t)snprintf(l + len, sizeof(l) - len, "%s\"k%d\":\"v\"",
				i ? "," : "", i);
		snprintf(l + len, sizeof(l) - len, "}");
		labels = l;
	}
	snprintf(buf, sz,
		"{\"Id\":\"%s\",\"Name\":%s,\"Image\":\"%s\",\"Config\":{\"Image\":\"kura-test:1\","
		"\"Labels\":%s},\"State\":%s}\n",
		id, name, image, labels, state);
}

static void image_json(struct fake *f, char *buf, size_t sz)
{
	const char *config = "{\"Labels\":{\"app\":\"web\",\"tier\":\"back\"}}";
	char id[72], many[16000];

	snprintf(id, sizeof(id), "%s", f->image);
	switch (f->mode) {
	case FAKE_IMAGE_NO_CONFIG:
		config = "null";
		break;
	case FAKE_IMAGE_NO_LABELS:
		config = "{\"Cmd\":null}";
		break;
	case FAKE_IMAGE_NULL_LABELS:
		config = "{\"Labels\":null}";
		break;
	case FAKE_IMAGE_BAD_LABELS:
		config = "{\"Labels\":[\"app\"]}";
		break;
	case FAKE_IMAGE_LABEL_NUMBER:
		config = "{\"Labels\":{\"app\":1}}";
		break;
	case FAKE_IMAGE_MANY_LABELS: {
		size_t len = (size_t)snprintf(many, sizeof(many), "{\"Labels\":{");

		for (int i = 0; i < 257; i++)
			len += (size_t)snprintf(many + len, sizeof(many) - len, "%s\"k%d\":\"v\"",
				i ? "," : "", i);
		snprintf(many + len, sizeof(many) - len, "}}");
		config = many;
		break;
	}
	case FAKE_IMAGE_WRONG_ID:
		id[8] = id[8] == '0' ? '1' : '0';
		break;
	default:
		break;
	}
	snprintf(buf, sz,
		"{\"Id\":\"%s\",\"RepoTags\":[\"kura-test:1\"],\"RepoDigests\":["
		"\"registry.example:5000/kura/app@sha256:%s\"%s],\"Config\":%s}",
		id, f->id, f->mode == FAKE_BAD_DIGEST ? ",\"kura/app:latest\"" : "", config);
}

static const char docker_event[] =
	"{\"status\":\"die\",\"id\":\"%s\",\"from\":\"kura-test:1\",\"Type\":\"container\","
	"\"Action\":\"die\",\"Actor\":{\"ID\":\"%s\",\"Attributes\":{\"app\":\"we}b\\\"\","
	"\"exitCode\":\"137\",\"name\":\"kura-t1\"}},\"scope\":\"local\",\"time\":1795627816,"
	"\"timeNano\":1795627816919543093}\n";

static void serve_events(struct fake *f, int fd)
{
	static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
				   "Connection: close\r\n\r\n";
	char ev[2048], other[65];
	size_t n;

	if (f->mode == FAKE_EVENTS_404) {
		respond(fd, 404, "{\"message\":\"page not found\"}", 28, true);
		return;
	}
	say(fd, head, sizeof(head) - 1);
	if (f->mode == FAKE_EVENTS_JUNK) {
		say(fd, "hello\n", 6);
		hold(fd);
		return;
	}
	if (f->mode == FAKE_EVENTS_LONG) {
		static char big[70000];

		memset(big, ' ', sizeof(big));
		memcpy(big, "{\"status\":\"", 11);
		say(fd, big, sizeof(big));
		hold(fd);
		return;
	}
	/* Docker's shape, split inside a string and inside an escape. */
	n = (size_t)snprintf(ev, sizeof(ev), docker_event, f->id, f->id);
	say(fd, ev, 30);
	sleep_ms(50);
	say(fd, ev + 30, 150);
	sleep_ms(50);
	say(fd, ev + 180, n - 180);
	if (f->mode == FAKE_EVENTS_END)
		return;
	/* The old shape (status and id only), a network event, an event with a bad id and one
	 * for another container, all in one write, with no newline between two of them. */
	random_id(other);
	n = (size_t)snprintf(ev, sizeof(ev),
		"{\"status\":\"start\",\"id\":\"%s\"}"
		"{\"Type\":\"network\",\"Action\":\"connect\",\"Actor\":{\"ID\":\"%s\"}}\n"
		"{\"Type\":\"container\",\"Action\":\"stop\",\"Actor\":{\"ID\":\"../../x\"}}\n"
		"{\"Type\":\"container\",\"Action\":\"die\",\"Actor\":{\"ID\":\"%s\"}}\r\n",
		f->id, f->id, other);
	say(fd, ev, n);
	sleep_ms(50);
	/* Podman's compat shape. */
	n = (size_t)snprintf(ev, sizeof(ev),
		"{\"status\":\"remove\",\"id\":\"%s\",\"from\":\"localhost/kura-test:1\","
		"\"Type\":\"container\",\"Action\":\"remove\",\"Actor\":{\"ID\":\"%s\","
		"\"Attributes\":{\"app\":\"web\",\"containerExitCode\":\"0\",\"podId\":\"\"}},"
		"\"scope\":\"local\",\"time\":1795627835,\"timeNano\":1795627835508623010}\n",
		f->id, f->id);
	say(fd, ev, n);
	hold(fd);
}

static void serve(struct fake *f, int fd)
{
	char req[8192] = "", body[32768];
	size_t len = 0;
	ssize_t n;
	bool image;

	if (f->mode == FAKE_CLOSE)
		return;
	while (len < sizeof(req) - 1 && !strstr(req, "\r\n\r\n")) {
		n = read(fd, req + len, sizeof(req) - 1 - len);
		if (n <= 0)
			return;
		len += (size_t)n;
		req[len] = '\0';
	}
	if (strncmp(req, "GET /v1.41/events?filters=", 26) == 0) {
		serve_events(f, fd);
		return;
	}
	image = strncmp(req, "GET /v1.41/images/", 18) == 0;
	if (f->mode == FAKE_HANG || (image && f->mode == FAKE_HANG_IMAGE)) {
		hold(fd);
		return;
	}
	switch (f->mode) {
	case FAKE_NOT_HTTP:
		say(fd, "garbage\n", 8);
		return;
	case FAKE_GARBAGE:
		respond(fd, 200, "{not json", 9, true);
		return;
	case FAKE_BIG:
	case FAKE_BIG_UNSIZED: {
		size_t big = 2 * 1024 * 1024;
		char *b = malloc(big);

		memset(b, ' ', big);
		b[0] = '{';
		b[big - 1] = '}';
		respond(fd, 200, b, big, f->mode == FAKE_BIG);
		free(b);
		return;
	}
	case FAKE_NOT_FOUND:
		respond(fd, 404, "{\"message\":\"No such container\"}", 31, true);
		return;
	case FAKE_ERROR:
		respond(fd, 500, "{\"message\":\"boom\"}", 18, true);
		return;
	default:
		break;
	}
	if (!image) {
		container_json(f, body, sizeof(body));
	} else if (f->mode == FAKE_NO_IMAGE) {
		respond(fd, 404, "{\"message\":\"No such image\"}", 27, true);
		return;
	} else if (f->mode == FAKE_IMAGE_ERROR) {
		respond(fd, 500, "{\"message\":\"boom\"}", 18, true);
		return;
	} else {
		image_json(f, body, sizeof(body));
	}
	respond(fd, 200, body, strlen(body), true);
}

static void *fake_thread(void *arg)
{
	struct fake *f = arg;
	int fd;

	while ((fd = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
		__atomic_add_fetch(&f->conns, 1, __ATOMIC_SEQ_CST);
		serve(f, fd);
		close(fd);
	}
	return NULL;
}

static void fake_start(struct fake *f, enum fake_mode mode)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	static int seq;

	memset(f, 0, sizeof(*f));
	f->mode = mode;
	random_id(f->id);
	snprintf(f->image, sizeof(f->image), "sha256:%s", f->id);
	f->image[7] = 'f'; /* an image ID unlike the container's */
	snprintf(f->sock, sizeof(f->sock), "%s", sub(""));
	snprintf(f->sock + strlen(f->sock), sizeof(f->sock) - strlen(f->sock), "fake%d.sock",
		seq++);
	if (snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->sock) >= (int)sizeof(sa.sun_path))
		abort();
	f->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (f->lfd < 0 || bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
		listen(f->lfd, 64) < 0)
		abort();
	pthread_create(&f->th, NULL, fake_thread, f);
}

static void fake_stop(struct fake *f)
{
	shutdown(f->lfd, SHUT_RDWR); /* wakes accept() */
	pthread_join(f->th, NULL);
	close(f->lfd);
	unlink(f->sock);
}

static struct kura_runtime *fake_rt(const struct fake *f)
{
	struct kura_runtime *rt = NULL;
	char ep[300];

	snprintf(ep, sizeof(ep), "unix:%s", f->sock);
	if (kura_runtime_new("fake", ep, &rt) < 0)
		abort();
	return rt;
}

/* Inspect through a fresh fake server in `mode`; the result, the container on success. */
static int fake_inspect(enum fake_mode mode, unsigned timeout_ms, int64_t *ret_ms,
	struct kura_container **ret)
{
	struct kura_container *c = NULL;
	struct kura_runtime *rt;
	struct fake f;
	int64_t t0;
	int r;

	fake_start(&f, mode);
	rt = fake_rt(&f);
	t0 = now_ms();
	r = kura_runtime_inspect(rt, f.id, timeout_ms, &c);
	if (ret_ms)
		*ret_ms = now_ms() - t0;
	kura_runtime_free(rt);
	fake_stop(&f);
	if (ret && r == 0)
		*ret = c;
	else
		kura_container_free(c);
	return r;
}

struct hammer {
	struct kura_runtime *rt;
	const char *id;
	int failures;
};

static void *hammer_thread(void *arg)
{
	struct hammer *h = arg;

	for (int i = 0; i < 25; i++) {
		struct kura_container *c = NULL;

		if (kura_runtime_inspect(h->rt, h->id, 5000, &c) < 0 || strcmp(c->name, "fake"))
			h->failures++;
		kura_container_free(c);
	}
	return NULL;
}

static void test_fake_inspect(void)
{
	struct kura_container *c = NULL, *untouched = (struct kura_container *)&c;
	struct kura_runtime *rt = NULL;
	char ep[300], id[65];
	int64_t ms;
	int r;

	/* Construction. */
	tap_is(kura_runtime_new("docker", "unix:relative.sock", &rt), -EINVAL, "relative path");
	tap_is(kura_runtime_new("docker", "tcp://127.0.0.1:2375", &rt), -EINVAL, "tcp endpoint");
	tap_is(kura_runtime_new("Docker!", "unix:/x.sock", &rt), -EINVAL, "bad runtime name");
	memset(ep, 'a', sizeof(ep) - 1);
	ep[sizeof(ep) - 1] = '\0';
	memcpy(ep, "unix:/", 6);
	tap_is(kura_runtime_new("docker", ep, &rt), -EINVAL, "path longer than sun_path");
	tap_ok(rt == NULL, "ret untouched on failure");

	r = fake_inspect(FAKE_GOOD, 2000, &ms, &c);
	if (tap_is(r, 0, "fake: a well-formed answer (%lld ms)", (long long)ms)) {
		tap_ok(!strcmp(c->name, "fake") && c->running && c->pid == 4242, "fake: fields");
		tap_ok(c->labels.n == 2 && is(label_get(c, "tier"), "db") &&
				is(label_get(c, "x"), ""),
			"fake: own labels: Config.Labels without the image's app=web (%zu)",
			c->labels.n);
		tap_ok(c->image_labels.n == 2 && is(image_label_get(c, "app"), "web") &&
				is(image_label_get(c, "tier"), "back"),
			"fake: image labels: the image's Config.Labels (%zu)", c->image_labels.n);
		tap_ok(c->n_digests == 1 &&
				!strncmp(c->repo_digests[0],
					"registry.example:5000/kura/app@sha256:", 38),
			"fake: repo digest");
	}
	kura_container_free(c);
	c = NULL;
	r = fake_inspect(FAKE_NO_IMAGE, 2000, NULL, &c);
	tap_ok(r == 0 && c && c->n_digests == 0, "image gone: no digests, no error");
	tap_ok(r == 0 && c && c->labels.n == 0 && c->image_labels.n == 0,
		"image gone: no labels of either kind (whose they were is unknown)");
	kura_container_free(c);
	c = NULL;
	r = fake_inspect(FAKE_NO_LABELS, 2000, NULL, &c);
	tap_ok(r == 0 && c && c->labels.n == 0, "null labels: none");
	kura_container_free(c);
	c = NULL;
	r = fake_inspect(FAKE_IMAGE_NULL_LABELS, 2000, NULL, &c);
	tap_ok(r == 0 && c && c->labels.n == 3 && c->image_labels.n == 0,
		"an image with null labels: every label the container's own");
	kura_container_free(c);
	c = untouched;

	r = fake_inspect(FAKE_HANG, 500, &ms, &c);
	tap_is(r, -ETIMEDOUT, "silent server: ETIMEDOUT");
	tap_ok(ms >= 450 && ms < 2000, "... after %lld ms (timeout 500)", (long long)ms);
	r = fake_inspect(FAKE_HANG_IMAGE, 500, &ms, &c);
	tap_is(r, -ETIMEDOUT, "silent on the image request: ETIMEDOUT");
	tap_ok(ms >= 450 && ms < 1000, "... both requests within the one bound: %lld ms",
		(long long)ms);

	/* Closed before curl has looked at the new connection reads as refused: either will do. */
	r = fake_inspect(FAKE_CLOSE, 2000, NULL, &c);
	tap_ok(r == -ECONNRESET || r == -ECONNREFUSED,
		"closed at once: ECONNRESET/ECONNREFUSED (%d)", r);
	tap_is(fake_inspect(FAKE_NOT_HTTP, 2000, NULL, &c), -EPROTO, "not HTTP: EPROTO");
	tap_is(fake_inspect(FAKE_GARBAGE, 2000, NULL, &c), -EPROTO, "garbage JSON: EPROTO");
	tap_is(fake_inspect(FAKE_BIG, 2000, NULL, &c), -EMSGSIZE, "2 MiB body: EMSGSIZE");
	tap_is(fake_inspect(FAKE_BIG_UNSIZED, 2000, NULL, &c), -EMSGSIZE,
		"2 MiB body, no Content-Length: EMSGSIZE");
	tap_is(fake_inspect(FAKE_WRONG_ID, 2000, NULL, &c), -EPROTO, "another Id: EPROTO");
	tap_is(fake_inspect(FAKE_TAG_IMAGE, 2000, NULL, &c), -EPROTO, "Image is a tag: EPROTO");
	tap_is(fake_inspect(FAKE_SHORT_IMAGE, 2000, NULL, &c), -EPROTO, "Image too short: EPROTO");
	tap_is(fake_inspect(FAKE_MANY_LABELS, 2000, NULL, &c), -EPROTO, "257 labels: EPROTO");
	tap_is(fake_inspect(FAKE_LONG_LABEL, 2000, NULL, &c), -EPROTO, "4097-byte label: EPROTO");
	tap_is(fake_inspect(FAKE_BAD_NAME, 2000, NULL, &c), -EPROTO, "name with a newline: EPROTO");
	tap_is(fake_inspect(FAKE_LONG_NAME, 2000, NULL, &c), -EPROTO, "257-byte name: EPROTO");
	tap_is(fake_inspect(FAKE_RUNNING_STRING, 2000, NULL, &c), -EPROTO,
		"Running a string: EPROTO");
	tap_is(fake_inspect(FAKE_NO_STATE, 2000, NULL, &c), -EPROTO, "State null: EPROTO");
	tap_is(fake_inspect(FAKE_BAD_DIGEST, 2000, NULL, &c), -EPROTO,
		"a tag in RepoDigests: EPROTO");
	{
		/* The image answer fails the whole inspect as the container's would. */
		static const struct {
			enum fake_mode mode;
			int want;
			const char *what;
		} cases[] = {
			{ FAKE_IMAGE_NO_CONFIG, -EPROTO, "image without Config" },
			{ FAKE_IMAGE_NO_LABELS, -EPROTO,
				"image without Config.Labels (whose labels are whose is unknown)" },
			{ FAKE_IMAGE_BAD_LABELS, -EPROTO, "image labels an array" },
			{ FAKE_IMAGE_LABEL_NUMBER, -EPROTO, "an image label's value a number" },
			{ FAKE_IMAGE_MANY_LABELS, -EPROTO, "257 image labels" },
			{ FAKE_IMAGE_WRONG_ID, -EPROTO, "the image answer is for another image" },
			{ FAKE_IMAGE_ERROR, -EIO, "the image request gets 500" },
		};

		for (size_t i = 0; i < ELEMENTSOF(cases); i++)
			tap_is(fake_inspect(cases[i].mode, 2000, NULL, &c), cases[i].want, "%s: %s",
				cases[i].what, strerror(-cases[i].want));
	}
	tap_is(fake_inspect(FAKE_NOT_FOUND, 2000, NULL, &c), -ENOENT, "404: ENOENT");
	tap_is(fake_inspect(FAKE_ERROR, 2000, NULL, &c), -EIO, "500: EIO");
	tap_ok(c == untouched, "ret never written on failure");

	/* Sockets that are not there, or not listening. */
	random_id(id);
	snprintf(ep, sizeof(ep), "unix:%s", sub("missing.sock"));
	kura_runtime_new("docker", ep, &rt);
	ms = now_ms();
	tap_is(kura_runtime_inspect(rt, id, 2000, &c), -EHOSTDOWN, "missing socket: EHOSTDOWN");
	tap_ok(now_ms() - ms < 200, "... at once (%lld ms)", (long long)(now_ms() - ms));
	/* Malformed ids are refused before any connection: the missing socket is never noticed. */
	tap_is(kura_runtime_inspect(rt, "ABCDEF", 2000, &c), -EINVAL, "short id: EINVAL");
	id[10] = 'A';
	tap_is(kura_runtime_inspect(rt, id, 2000, &c), -EINVAL, "uppercase id: EINVAL");
	tap_is(kura_runtime_inspect(rt,
		       "../../../../info?x=0000000000000000000000000000000000000000000", 2000, &c),
		-EINVAL, "path in id: EINVAL");
	id[10] = 'a';
	tap_is(kura_runtime_inspect(rt, id, 0, &c), -EINVAL, "timeout 0: EINVAL");
	kura_runtime_free(rt);
	{
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sub("dead.sock"));
		bind(fd, (struct sockaddr *)&sa, sizeof(sa));
		close(fd);
		snprintf(ep, sizeof(ep), "unix:%s", sub("dead.sock"));
		kura_runtime_new("docker", ep, &rt);
		tap_is(kura_runtime_inspect(rt, id, 2000, &c), -ECONNREFUSED,
			"socket with no listener: ECONNREFUSED");
		kura_runtime_free(rt);
		unlink(sub("dead.sock"));
	}
	tap_ok(c == untouched, "ret never written on failure");

	/* One handle from many threads. */
	{
		struct fake f;
		struct hammer h[8];
		pthread_t th[8];
		int failures = 0;

		fake_start(&f, FAKE_GOOD);
		rt = fake_rt(&f);
		for (int i = 0; i < 8; i++) {
			h[i] = (struct hammer){ .rt = rt, .id = f.id };
			pthread_create(&th[i], NULL, hammer_thread, &h[i]);
		}
		for (int i = 0; i < 8; i++) {
			pthread_join(th[i], NULL);
			failures += h[i].failures;
		}
		tap_is(failures, 0, "8 threads x 25 inspects on one runtime");
		tap_is(f.conns, 400, "... each inspect its own two connections");
		kura_runtime_free(rt);
		fake_stop(&f);
	}
}

static void test_fake_watch(void)
{
	struct kura_runtime *rt;
	struct watcher w;
	struct fake f;
	int64_t ms;
	char ep[300];

	fake_start(&f, FAKE_EVENTS);
	rt = fake_rt(&f);
	watcher_start(&w, rt);
	tap_ok(wait_event(&w, f.id, "remove", 3000), "fake events: all arrive");
	sleep_ms(300); /* idle stream: stop must still be noticed */
	ms = watcher_stop(&w);
	tap_is(w.rc, 0, "fake events: stop -> 0");
	tap_ok(ms < 1000, "... within %lld ms", (long long)ms);
	tap_is(w.n, 4, "fake events: exactly the four container events with valid ids");
	watcher_dump(&w, "fake");
	tap_ok(w.n == 4 && !strcmp(w.ev[0].action, "die") && !strcmp(w.ev[0].id, f.id) &&
			!strcmp(w.ev[1].action, "start") && !strcmp(w.ev[1].id, f.id) &&
			!strcmp(w.ev[2].action, "die") && strcmp(w.ev[2].id, f.id) &&
			!strcmp(w.ev[3].action, "remove") && !strcmp(w.ev[3].id, f.id),
		"fake events: Docker's split object, the old shape, Podman's shape, in order");
	kura_runtime_free(rt);
	fake_stop(&f);

	{
		static const struct {
			enum fake_mode mode;
			int want;
			const char *what;
		} cases[] = {
			{ FAKE_EVENTS_END, -ECONNRESET, "stream ends: ECONNRESET" },
			{ FAKE_EVENTS_LONG, -EMSGSIZE, "70 KiB event: EMSGSIZE" },
			{ FAKE_EVENTS_JUNK, -EPROTO, "not JSON: EPROTO" },
			{ FAKE_EVENTS_404, -ENOENT, "404: ENOENT" },
		};

		for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
			fake_start(&f, cases[i].mode);
			rt = fake_rt(&f);
			watcher_start(&w, rt);
			ms = now_ms();
			while (w.rc == 1 && now_ms() - ms < 3000)
				sleep_ms(10);
			watcher_stop(&w);
			tap_is(w.rc, cases[i].want, "watch: %s", cases[i].what);
			if (cases[i].mode == FAKE_EVENTS_END)
				tap_ok(w.n == 1 && !strcmp(w.ev[0].action, "die"),
					"... after delivering the event it had");
			kura_runtime_free(rt);
			fake_stop(&f);
		}
	}

	snprintf(ep, sizeof(ep), "unix:%s", sub("missing.sock"));
	kura_runtime_new("docker", ep, &rt);
	watcher_start(&w, rt);
	ms = now_ms();
	while (w.rc == 1 && now_ms() - ms < 3000)
		sleep_ms(10);
	watcher_stop(&w);
	tap_is(w.rc, -EHOSTDOWN, "watch: missing socket: EHOSTDOWN");
	kura_runtime_free(rt);
}

int main(int argc, char **argv)
{
	int64_t t0 = now_ms();

	kura_json_init();
	if (kura_runtime_global_init() < 0 || harness_init(dir) < 0) {
		printf("Bail out! setup\n");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);

	test_fake_inspect();
	test_fake_watch();

	if (argc > 1 && !strcmp(argv[1], "fake")) {
		tap_skip("real runtimes: asked for the fake servers only");
	} else if (getuid() != 0) {
		tap_skip("real runtimes: need root for a private dockerd and podman storage");
	} else if (harness_rootfs_tar(sub("rootfs.tar"), NULL, 0) < 0) {
		/* The image both runtimes import: busybox-static and a /bin/sh link, nothing else.
		 */
		tap_skip("real runtimes: no /bin/busybox (busybox-static) for the image");
	} else {
		test_real(HARNESS_DOCKER);
		test_real(HARNESS_PODMAN);
	}

	tap_ok(harness_fini(), "test directory removed");
	tap_diag("total %lld ms", (long long)(now_ms() - t0));
	return tap_done();
}

/* Integration tests for the identity resolver against a real dockerd and Podman service started
 * through tests/harness.c: identities, the cache and its invalidation, runtimes going away. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <dirent.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "harness.h"
#include "identity.h"
#include "json.h"
#include "tap.h"

#define now_ms harness_now_ms
#define sleep_ms harness_sleep_ms

static char dir[] = "/tmp/kura-test-identity-XXXXXX";

static const char *sub(const char *name)
{
	static char buf[8][512];
	static int i;

	i = (i + 1) % 8;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
	return buf[i];
}

struct target {
	struct harness_runtime h;
	bool up;
	char id[65];
	char id2[65];
	char image[80];
	char digests[2048]; /* the image's RepoDigests as the CLI prints them, comma-separated */
	pid_t pid;          /* the first container's init */
	pid_t pid2;         /* the second's */
	pid_t exec_pid;
	struct kura_runtime *rt;
};

static struct target docker, podman;

static struct kura_resolver *resolver(struct kura_runtime *const *rts, size_t n)
{
	struct kura_resolver_config cfg = { .runtimes = rts, .n_runtimes = n };
	struct kura_resolver *r = NULL;

	if (kura_resolver_new(&cfg, &r) < 0 || kura_resolver_start(r) < 0)
		abort();
	sleep_ms(400); /* past the watchers' settle time, so answers are cached */
	return r;
}

static struct kura_resolver_stats stats(struct kura_resolver *r)
{
	struct kura_resolver_stats s;

	kura_resolver_get_stats(r, &s);
	return s;
}

static const char *label(const struct kura_identity *id, const char *key)
{
	for (size_t i = 0; i < id->n_labels; i++)
		if (!strcmp(id->label_keys[i], key))
			return id->label_values[i];
	return NULL;
}

/* The pid of the process whose command line (NULs as spaces) is exactly cmd. */
static pid_t find_proc(const char *cmd)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	pid_t found = 0;

	while (d && (e = readdir(d)) && !found) {
		char path[64], buf[256];
		pid_t pid = (pid_t)strtol(e->d_name, NULL, 10);
		ssize_t n;
		int fd;

		if (pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			continue;
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] == '\0')
				buf[i] = ' ';
		while (n > 0 && buf[n - 1] == ' ')
			n--;
		buf[n] = '\0';
		if (!strcmp(buf, cmd))
			found = pid;
	}
	if (d)
		closedir(d);
	return found;
}

static bool wait_for(bool (*cond)(void *), void *arg, int64_t ms)
{
	int64_t t0 = now_ms();

	while (now_ms() - t0 < ms) {
		if (cond(arg))
			return true;
		sleep_ms(20);
	}
	return cond(arg);
}

/* ---- setup ---- */

static void setup(struct target *t, enum harness_kind kind)
{
	static const char *const labels[] = { "app=web", "tier=front end", NULL };
	char name[32], name2[32], sleeper[32], out[256];
	struct harness_container c = { .image = "kura-id:1", .labels = labels };

	if (harness_runtime_start(&t->h, kind, dir) < 0) {
		tap_skip("%s", t->h.skip);
		return;
	}
	snprintf(name, sizeof(name), "kura-id-%s", t->h.name);
	snprintf(name2, sizeof(name2), "kura-id2-%s", t->h.name);
	snprintf(sleeper, sizeof(sleeper), "sleep %d", kind == HARNESS_DOCKER ? 4321 : 4322);
	tap_is(harness_image_import(&t->h, sub("rootfs.tar"), "kura-id:1", t->image), 0,
		"%s: image imported: %s", t->h.name, t->image);
	c.name = name;
	tap_is(harness_container_run(&t->h, &c, t->id), 0, "%s: container %s", t->h.name, t->id);
	c.name = name2;
	c.labels = NULL;
	tap_is(harness_container_run(&t->h, &c, t->id2), 0, "%s: second container", t->h.name);
	HARNESS_CLI(&t->h, t->digests, "image", "inspect", "-f", "{{join .RepoDigests \",\"}}",
		t->image);
	t->pid = harness_container_pid(&t->h, t->id);
	t->pid2 = harness_container_pid(&t->h, t->id2);
	harness_exec(&t->h, t->id, true, (const char *const[]){ "/bin/sh", "-c", sleeper, NULL },
		out, sizeof(out));
	for (int64_t t0 = now_ms(); !t->exec_pid && now_ms() - t0 < 3000; sleep_ms(20))
		t->exec_pid = find_proc(sleeper);
	tap_ok(t->pid > 0 && t->pid2 > 0 && t->exec_pid > 0,
		"%s: pids: init %d, second %d, exec %d", t->h.name, t->pid, t->pid2, t->exec_pid);
	if (kura_runtime_new(t->h.name, t->h.endpoint, &t->rt) < 0)
		abort();
	t->up = t->pid > 0 && t->pid2 > 0 && t->exec_pid > 0;
}

static void teardown(struct target *t)
{
	int procs;

	if (t->h.pid > 0) {
		harness_container_rm(&t->h, t->id);
		harness_container_rm(&t->h, t->id2);
	}
	procs = harness_runtime_stop(&t->h);
	if (t->h.dir[0] && !t->h.skip[0])
		tap_ok(procs == 0, "%s: no process left behind (%d killed)", t->h.name, procs);
	kura_runtime_free(t->rt);
}

/* ---- host and bad input, no runtime needed ---- */

static void test_host(void)
{
	struct kura_runtime *rt[2] = { NULL, NULL };
	struct kura_resolver_config cfg = { .runtimes = rt, .n_runtimes = 2 };
	struct kura_resolver *r = NULL;
	struct kura_ident *i = NULL, *untouched = (struct kura_ident *)&r;
	char arg[16], cmd[32];
	int st;
	pid_t child;

	tap_is(kura_resolver_new(&cfg, &r), -EINVAL, "a NULL runtime: EINVAL");
	kura_runtime_new("docker", "unix:/nonexistent/a.sock", &rt[0]);
	kura_runtime_new("docker", "unix:/nonexistent/b.sock", &rt[1]);
	tap_is(kura_resolver_new(&cfg, &r), -EINVAL, "two runtimes named docker: EINVAL");
	kura_runtime_free(rt[1]);
	cfg.n_runtimes = 1;
	r = resolver(rt, 1);

	if (tap_is(kura_resolver_identify_pid(r, getpid(), &i), 0, "this test is a host process")) {
		const struct kura_identity *id = kura_ident_view(i);

		tap_ok(id->host && id->uid == geteuid() && id->gid == getegid() &&
				id->pid == getpid() && !id->runtime && !id->container_id,
			"... host, with our uid %u, gid and pid", (unsigned)id->uid);
		tap_ok(kura_ident_ref(i) == i, "ident_ref");
		kura_ident_unref(i);
	}
	kura_ident_unref(i);
	i = untouched;

	/* A process in its own pid namespace whose cgroup is the host's: a container of a kind we
	 * cannot name. */
	snprintf(arg, sizeof(arg), "%d", 100000 + getpid());
	snprintf(cmd, sizeof(cmd), "sleep %s", arg);
	child = fork();
	if (child == 0) {
		execlp("unshare", "unshare", "--pid", "--fork", "--kill-child", "sleep", arg,
			(char *)NULL);
		_exit(127);
	}
	{
		pid_t inner = 0;

		for (int64_t t0 = now_ms(); !inner && now_ms() - t0 < 3000; sleep_ms(20))
			inner = find_proc(cmd);
		if (tap_ok(inner > 0, "a process in another pid namespace (%d)", inner))
			tap_is(kura_resolver_identify_pid(r, inner, &i), -EACCES,
				"... 'host' by its cgroup, yet not in ours: EACCES");
	}
	kill(child, SIGKILL); /* unshare ignores SIGTERM; --kill-child takes the sleep along */
	waitpid(child, &st, 0);

	child = fork();
	if (child == 0)
		_exit(0);
	waitpid(child, &st, 0);
	tap_is(kura_resolver_identify_pid(r, child, &i), -ESRCH, "a pid that exited: ESRCH");
	tap_is(kura_resolver_identify_pid(r, 0, &i), -EINVAL, "pid 0: EINVAL");
	tap_is(kura_resolver_identify_container(r, "no/such", &i), -EINVAL,
		"a malformed name: EINVAL");
	tap_is(kura_resolver_identify_container(r, "whatever", &i), -EAGAIN,
		"a name, the only runtime down: EAGAIN");
	tap_ok(i == untouched, "ret never written on failure");
	kura_resolver_free(r);
	kura_runtime_free(rt[0]);
}

/* ---- real containers ---- */

static void check_ident(const struct target *t, const struct kura_ident *i, pid_t pid,
	const char *what)
{
	const struct kura_identity *id = kura_ident_view(i);
	char name[32], joined[2048] = "";
	size_t len = 0;

	snprintf(name, sizeof(name), "kura-id-%s", t->h.name);
	tap_ok(!id->host && id->pid == pid && id->runtime && !strcmp(id->runtime, t->h.name),
		"%s %s: a %s container, pid %d", t->h.name, what, id->runtime, id->pid);
	tap_ok(id->container_id && !strcmp(id->container_id, t->id), "%s %s: its container ID",
		t->h.name, what);
	tap_ok(id->name && !strcmp(id->name, name), "%s %s: name %s", t->h.name, what, id->name);
	tap_ok(id->image_id && !strcmp(id->image_id, t->image),
		"%s %s: image ID equal to the CLI's", t->h.name, what);
	tap_ok(label(id, "app") && !strcmp(label(id, "app"), "web") && label(id, "tier") &&
			!strcmp(label(id, "tier"), "front end"),
		"%s %s: labels (%zu)", t->h.name, what, id->n_labels);
	for (size_t k = 0; k < id->n_digests; k++)
		len += (size_t)snprintf(joined + len, sizeof(joined) - len, "%s%s", k ? "," : "",
			id->digests[k]);
	tap_ok(id->uid == 0 && !strcmp(joined, t->digests),
		"%s %s: uid 0, repo digests as the CLI's: [%s]", t->h.name, what, joined);
}

static void test_identify(struct kura_resolver *r, struct target *t)
{
	struct kura_resolver_stats s0, s1;
	struct kura_ident *i = NULL, *j = NULL;
	char shortid[13], name[32];
	int64_t t0;

	s0 = stats(r);
	t0 = now_ms();
	if (tap_is(kura_resolver_identify_pid(r, t->pid, &i), 0, "%s: identify the init (%lld ms)",
		    t->h.name, (long long)(now_ms() - t0)))
		check_ident(t, i, t->pid, "init");
	s1 = stats(r);
	tap_ok(s1.misses == s0.misses + 1 && s1.inspects == s0.inspects + 1,
		"%s: a miss and one inspect", t->h.name);
	t0 = now_ms();
	if (tap_is(kura_resolver_identify_pid(r, t->exec_pid, &j), 0,
		    "%s: identify an exec'd sleep (%lld ms)", t->h.name,
		    (long long)(now_ms() - t0)))
		check_ident(t, j, t->exec_pid, "exec");
	s0 = stats(r);
	tap_ok(s0.hits == s1.hits + 1 && s0.inspects == s1.inspects,
		"%s: the second is a cache hit", t->h.name);
	tap_ok(i && j && i->id.image_id == j->id.image_id, "%s: both share one container record",
		t->h.name);
	kura_ident_unref(i);
	kura_ident_unref(j);
	i = NULL;

	snprintf(name, sizeof(name), "kura-id-%s", t->h.name);
	if (tap_is(kura_resolver_identify_container(r, name, &i), 0, "%s: whois by name %s",
		    t->h.name, name))
		check_ident(t, i, t->pid, "by name");
	kura_ident_unref(i);
	i = NULL;
	memcpy(shortid, t->id, 12);
	shortid[12] = '\0';
	if (tap_is(kura_resolver_identify_container(r, shortid, &i), 0, "%s: whois by short ID",
		    t->h.name))
		tap_ok(!strcmp(i->id.container_id, t->id), "%s: ... the same container", t->h.name);
	kura_ident_unref(i);
	i = NULL;
	tap_is(kura_resolver_identify_container(r, "no-such-container", &i), -ENOENT,
		"%s: whois of an unknown name: ENOENT", t->h.name);
}

struct racer {
	struct kura_resolver *r;
	pid_t pid;
	pthread_barrier_t *go;
	int rc;
	struct kura_ident *i;
	int64_t ms;
};

static void *racer_main(void *arg)
{
	struct racer *x = arg;
	int64_t t0;

	pthread_barrier_wait(x->go);
	t0 = now_ms();
	x->rc = kura_resolver_identify_pid(x->r, x->pid, &x->i);
	x->ms = now_ms() - t0;
	return NULL;
}

/* n threads identify pid at once; how many got 0, the slowest time into *ret_ms. */
static int race(struct kura_resolver *r, pid_t pid, int want, int n, int64_t *ret_ms,
	struct kura_ident **ret_first)
{
	pthread_barrier_t go;
	struct racer x[8];
	pthread_t th[8];
	int ok = 0;

	pthread_barrier_init(&go, NULL, (unsigned)n);
	for (int k = 0; k < n; k++) {
		x[k] = (struct racer){ .r = r, .pid = pid, .go = &go };
		pthread_create(&th[k], NULL, racer_main, &x[k]);
	}
	*ret_ms = 0;
	for (int k = 0; k < n; k++) {
		pthread_join(th[k], NULL);
		if (x[k].rc == want)
			ok++;
		if (x[k].ms > *ret_ms)
			*ret_ms = x[k].ms;
	}
	for (int k = 0; k < n; k++) {
		if (x[k].i && ret_first && x[0].i &&
			x[k].i->id.container_id != x[0].i->id.container_id)
			ok = -1000; /* not the same record */
		if (k > 0 || !ret_first)
			kura_ident_unref(x[k].i);
	}
	if (ret_first)
		*ret_first = x[0].i;
	pthread_barrier_destroy(&go);
	return ok;
}

static void test_concurrent(struct target *t)
{
	struct kura_resolver *r = resolver(&t->rt, 1);
	struct kura_ident *first = NULL;
	int64_t ms;
	int ok;

	ok = race(r, t->pid, 0, 8, &ms, &first);
	tap_is(ok, 8, "%s: 8 threads on a cold container all succeed, one record (%lld ms)",
		t->h.name, (long long)ms);
	tap_is(stats(r).inspects, 1, "%s: ... with exactly one inspect (%llu waited for it)",
		t->h.name, (unsigned long long)stats(r).shared);
	if (first)
		tap_ok(!strcmp(first->id.container_id, t->id), "%s: ... the right one", t->h.name);
	kura_ident_unref(first);
	kura_resolver_free(r);
}

/* A process moved from the host into the container's cgroups: its cgroup file names the
 * container, its pid namespace is the host's. */
static void test_moved_into_cgroup(struct kura_resolver *r, struct target *t)
{
	char line[4096], want[4096] = "", got[4096] = "", path[1024], pidstr[32];
	FILE *f = fopen("/proc/self/mounts", "re");
	int moved = 0, st;
	pid_t child = fork();

	if (child == 0) {
		execlp("sleep", "sleep", "4324", (char *)NULL);
		_exit(127);
	}
	snprintf(pidstr, sizeof(pidstr), "%d", child);
	while (f && fgets(line, sizeof(line), f)) {
		char mnt[512], type[64];
		int fd;

		if (sscanf(line, "%*s %511s %63s", mnt, type) != 2 ||
			(strcmp(type, "cgroup") && strcmp(type, "cgroup2")))
			continue;
		snprintf(path, sizeof(path), "%s/%s%s/cgroup.procs", mnt,
			t == &docker ? "docker/" : "libpod_parent/libpod-", t->id);
		fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (write(fd, pidstr, strlen(pidstr)) > 0)
			moved++;
		close(fd);
	}
	if (f)
		fclose(f);
	snprintf(path, sizeof(path), "/proc/%d/cgroup", t->pid);
	harness_run(want, sizeof(want), (const char *const[]){ "cat", path, NULL });
	snprintf(path, sizeof(path), "/proc/%d/cgroup", child);
	harness_run(got, sizeof(got), (const char *const[]){ "cat", path, NULL });
	if (moved > 0 && !strcmp(want, got)) {
		struct kura_ident *i = NULL;

		tap_is(kura_resolver_identify_pid(r, child, &i), -EACCES,
			"%s: a host process moved into the container's cgroups (%d): EACCES",
			t->h.name, moved);
		kura_ident_unref(i);
	} else {
		tap_skip("%s: could not move a process into the container's cgroups here",
			t->h.name);
	}
	kill(child, SIGKILL);
	waitpid(child, &st, 0);
}

/* A runtime named "docker" that is really Podman's socket: it has never heard of Docker's IDs. */
static void test_unknown_id(void)
{
	struct kura_runtime *liar = NULL;
	struct kura_resolver *r;
	struct kura_ident *i = NULL;
	int64_t t0, ms;

	kura_runtime_new("docker", podman.h.endpoint, &liar);
	r = resolver(&liar, 1);
	t0 = now_ms();
	tap_is(kura_resolver_identify_pid(r, docker.pid, &i), -EACCES,
		"a container its runtime does not know: EACCES");
	ms = now_ms() - t0;
	tap_ok(ms >= 250 && ms < 3000, "... after the retries (%lld ms, %llu inspects)",
		(long long)ms, (unsigned long long)stats(r).inspects);
	tap_is(stats(r).inspects, 1 + KURA_RESOLVER_RETRIES, "... 1 + %u inspects",
		KURA_RESOLVER_RETRIES);
	kura_resolver_free(r);
	kura_runtime_free(liar);
}

static void test_not_configured(void)
{
	struct kura_resolver *r = resolver(&docker.rt, 1);
	struct kura_ident *i = NULL;

	tap_is(kura_resolver_identify_pid(r, podman.pid, &i), -EACCES,
		"a podman container, only docker configured: EACCES");
	tap_is(stats(r).inspects, 0, "... without asking any runtime");
	tap_is(kura_resolver_identify_pid(r, docker.pid, &i), 0, "... while docker's resolve");
	kura_ident_unref(i);
	kura_resolver_free(r);
}

struct prober {
	struct kura_resolver *r;
	pid_t pid;
	volatile bool stop;
	int n, failures;
	int64_t worst;
};

static void *prober_main(void *arg)
{
	struct prober *p = arg;

	while (!p->stop) {
		struct kura_ident *i = NULL;
		int64_t t0 = now_ms();

		if (kura_resolver_identify_pid(p->r, p->pid, &i) < 0)
			p->failures++;
		kura_ident_unref(i);
		if (now_ms() - t0 > p->worst)
			p->worst = now_ms() - t0;
		p->n++;
		sleep_ms(20);
	}
	return NULL;
}

/* Podman's slot points at a socket that accepts connections and never answers. */
static void test_slow_runtime(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct kura_runtime *rts[2] = { docker.rt, NULL };
	struct prober p = { 0 };
	struct kura_resolver *r;
	struct kura_ident *i = NULL;
	char ep[300];
	pthread_t th;
	int64_t t0, ms;
	int fd, ok;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sub("hang.sock"));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 64) < 0)
		abort();
	snprintf(ep, sizeof(ep), "unix:%s", sa.sun_path);
	kura_runtime_new("podman", ep, &rts[1]);
	r = resolver(rts, 2);

	tap_is(kura_resolver_identify_pid(r, docker.pid2, &i), 0, "slow podman: docker resolves");
	kura_ident_unref(i);
	i = NULL;
	p = (struct prober){ .r = r, .pid = docker.pid2 };
	pthread_create(&th, NULL, prober_main, &p);
	t0 = now_ms();
	tap_is(kura_resolver_identify_pid(r, podman.pid, &i), -EAGAIN,
		"slow podman: its container gets EAGAIN");
	ms = now_ms() - t0;
	tap_ok(ms >= 1900 && ms < 3500, "... within the bound: %lld ms", (long long)ms);
	ok = race(r, podman.pid, -EAGAIN, 8, &ms, NULL);
	tap_is(ok, 8, "slow podman: 8 threads all EAGAIN, the slowest after %lld ms",
		(long long)ms);
	tap_ok(ms < 3500, "... within the bound");
	p.stop = true;
	pthread_join(th, NULL);
	tap_ok(p.failures == 0 && p.n > 20 && p.worst < 1000,
		"meanwhile %d docker lookups, %d failed, the slowest %lld ms", p.n, p.failures,
		(long long)p.worst);
	tap_is(stats(r).inspects, 1 + 1 + 1,
		"one inspect each for docker and the two podman waits");
	t0 = now_ms();
	kura_resolver_free(r);
	tap_ok(now_ms() - t0 < 1000, "free with a hung stream: %lld ms",
		(long long)(now_ms() - t0));
	kura_runtime_free(rts[1]);
	close(fd);
	unlink(sa.sun_path);
}

struct invalidated {
	struct kura_resolver *r;
	uint64_t base;
};

static bool more_invalidations(void *arg)
{
	struct invalidated *v = arg;

	return stats(v->r).invalidations > v->base;
}

static bool hit_now(void *arg)
{
	struct invalidated *v = arg;
	struct kura_resolver_stats s0 = stats(v->r);
	struct kura_ident *i = NULL;

	kura_resolver_identify_pid(v->r, podman.pid, &i);
	kura_ident_unref(i);
	return i && stats(v->r).hits > s0.hits;
}

/* The podman service stops (its containers keep running under conmon) and comes back. */
static void test_runtime_down(struct kura_resolver *r)
{
	struct invalidated v = { .r = r };
	struct kura_resolver_stats s0;
	struct kura_ident *i = NULL;
	int64_t t0, ms;

	kura_resolver_identify_pid(r, podman.pid, &i);
	kura_ident_unref(i);
	kura_resolver_identify_pid(r, docker.pid2, &i);
	kura_ident_unref(i);
	s0 = stats(r);
	v.base = s0.invalidations;
	harness_daemon_stop(&podman.h);
	tap_ok(wait_for(more_invalidations, &v, 2000) &&
			stats(r).watch_failures > s0.watch_failures,
		"podman down: its stream failed and its cache was dropped");
	t0 = now_ms();
	tap_is(kura_resolver_identify_pid(r, podman.pid, &i), -EAGAIN, "podman down: EAGAIN");
	ms = now_ms() - t0;
	tap_ok(ms < 3500, "... within the bound: %lld ms", (long long)ms);
	t0 = now_ms();
	tap_is(kura_resolver_identify_pid(r, docker.pid2, &i), 0,
		"podman down: a cached docker container still resolves");
	ms = now_ms() - t0;
	kura_ident_unref(i);
	i = NULL;
	tap_ok(ms < 1000, "... at once (well before the 2 s bound): %lld ms", (long long)ms);

	if (!tap_is(harness_daemon_start(&podman.h), 0, "podman service restarted"))
		return;
	t0 = now_ms();
	tap_is(kura_resolver_identify_pid(r, podman.pid, &i), 0, "podman back: identify succeeds");
	kura_ident_unref(i);
	i = NULL;
	tap_ok(wait_for(hit_now, &v, 8000),
		"podman back: the watcher reconnected, answers cached "
		"again after %lld ms",
		(long long)(now_ms() - t0));
	v.base = stats(r).invalidations;
	t0 = now_ms();
	harness_container_stop(&podman.h, podman.id);
	tap_ok(wait_for(more_invalidations, &v, 2000),
		"podman back: stop is seen by the new stream (%lld ms)",
		(long long)(now_ms() - t0));
	tap_is(kura_resolver_identify_container(r, podman.id, &i), -EACCES,
		"podman: whois of the stopped container: EACCES");
}

/* docker stop and rm, seen through the event stream. */
static void test_stop(struct kura_resolver *r)
{
	struct kura_peer held = KURA_PEER_NULL;
	struct invalidated v = { .r = r };
	struct kura_ident *i = NULL;
	int64_t t0;

	tap_is(kura_resolver_identify_pid(r, docker.pid, &i), 0, "docker: cached before stop");
	kura_ident_unref(i);
	i = NULL;
	tap_is(kura_peer_from_pid(docker.exec_pid, &held), 0,
		"docker: a peer held across the stop");
	v.base = stats(r).invalidations;
	t0 = now_ms();
	tap_is(harness_container_stop(&docker.h, docker.id), 0, "docker stop");
	tap_ok(wait_for(more_invalidations, &v, 2000), "docker stop: entry dropped after %lld ms",
		(long long)(now_ms() - t0));
	tap_is(kura_resolver_identify(r, &held, &i), -ESRCH, "docker stop: the held peer: ESRCH");
	tap_is(kura_resolver_identify_container(r, docker.id, &i), -EACCES,
		"docker stop: whois: EACCES (not running)");
	kura_peer_done(&held);
	v.base = stats(r).invalidations;
	tap_is(harness_container_rm(&docker.h, docker.id), 0, "docker rm");
	tap_is(kura_resolver_identify_container(r, docker.id, &i), -ENOENT,
		"docker rm: whois: ENOENT (unknown)");
	tap_ok(i == NULL, "ret untouched");
}

int main(void)
{
	struct kura_resolver *r = NULL;
	int64_t t0 = now_ms();

	kura_json_init();
	if (kura_runtime_global_init() < 0 || harness_init(dir) < 0) {
		printf("Bail out! setup\n");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);

	test_host();

	if (getuid() != 0) {
		tap_skip("real runtimes: need root for a private dockerd and podman storage");
	} else if (harness_rootfs_tar(sub("rootfs.tar"), NULL, 0) < 0) {
		tap_skip("real runtimes: no /bin/busybox (busybox-static) for the image");
	} else {
		struct kura_runtime *both[2];
		size_t n = 0;

		setup(&docker, HARNESS_DOCKER);
		setup(&podman, HARNESS_PODMAN);
		if (docker.up)
			both[n++] = docker.rt;
		if (podman.up)
			both[n++] = podman.rt;
		r = resolver(both, n);
		if (docker.up) {
			test_identify(r, &docker);
			test_moved_into_cgroup(r, &docker);
			test_concurrent(&docker);
		}
		if (podman.up) {
			test_identify(r, &podman);
			test_moved_into_cgroup(r, &podman);
			test_concurrent(&podman);
		}
		if (docker.up && podman.up) {
			test_not_configured();
			test_unknown_id();
			test_slow_runtime();
			test_runtime_down(r);
			test_stop(r);
		} else {
			tap_skip("cross-runtime cases need both runtimes: %s%s", docker.h.skip,
				podman.h.skip);
		}
		{
			struct kura_resolver_stats s = stats(r);

			tap_diag("stats: %llu hits, %llu misses, %llu inspects, %llu shared, %llu "
				 "events, %llu invalidations, %llu watch failures",
				(unsigned long long)s.hits, (unsigned long long)s.misses,
				(unsigned long long)s.inspects, (unsigned long long)s.shared,
				(unsigned long long)s.events, (unsigned long long)s.invalidations,
				(unsigned long long)s.watch_failures);
		}
		{
			int64_t f0 = now_ms();

			kura_resolver_free(r);
			tap_ok(now_ms() - f0 < 1000, "resolver freed in %lld ms",
				(long long)(now_ms() - f0));
		}
		teardown(&docker);
		teardown(&podman);
	}

	tap_ok(harness_fini(), "test directory removed");
	tap_diag("total %lld ms", (long long)(now_ms() - t0));
	return tap_done();
}

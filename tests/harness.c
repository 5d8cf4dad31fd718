/* The test harness for real container runtimes: private dockerd and Podman services, offline
 * images from a busybox-static root filesystem, containers, and cleanup. No secrets. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static char test_dir[256];
static bool had_containers_dir;

int64_t harness_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void harness_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

void harness_diag(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

void harness_random_id(char out[65])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char b[32];
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

	if (fd < 0 || read(fd, b, sizeof(b)) != (ssize_t)sizeof(b))
		abort();
	close(fd);
	for (int i = 0; i < 32; i++) {
		out[2 * i] = hex[b[i] >> 4];
		out[2 * i + 1] = hex[b[i] & 15];
	}
	out[64] = '\0';
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static void rmtree(const char *path)
{
	if (nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) < 0 && errno != ENOENT)
		harness_diag("could not remove %s", path);
}

int harness_init(char *template)
{
	had_containers_dir = access("/var/lib/containers", F_OK) == 0;
	if (!mkdtemp(template))
		return -1;
	snprintf(test_dir, sizeof(test_dir), "%s", template);
	return 0;
}

bool harness_fini(void)
{
	harness_umount_leftovers(test_dir);
	rmtree(test_dir);
	if (!had_containers_dir && access("/var/lib/containers", F_OK) == 0)
		rmtree("/var/lib/containers");
	return access(test_dir, F_OK) < 0;
}

/* ---- processes ---- */

int harness_run(char *out, size_t outsz, const char *const argv[])
{
	char discard[256];
	int p[2], status;
	size_t len = 0;
	ssize_t n;
	pid_t pid;

	if (!out || outsz == 0) {
		out = discard;
		outsz = sizeof(discard);
	}
	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);

		dup2(null, 0);
		dup2(p[1], 1);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(p[1]);
	for (;;) {
		char sink[4096];

		if (len < outsz - 1)
			n = read(p[0], out + len, outsz - 1 - len);
		else
			n = read(p[0], sink, sizeof(sink));
		if (n <= 0)
			break;
		if (len < outsz - 1)
			len += (size_t)n;
	}
	close(p[0]);
	out[len] = '\0';
	while (len && out[len - 1] == '\n')
		out[--len] = '\0';
	if (waitpid(pid, &status, 0) < 0)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

pid_t harness_spawn(const char *const argv[], const char *log)
{
	pid_t pid = fork();

	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

		prctl(PR_SET_PDEATHSIG, SIGTERM);
		dup2(null, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	return pid;
}

int64_t harness_stop_pid(pid_t pid, const char *what)
{
	int64_t t0 = harness_now_ms();
	int status;

	if (pid <= 0)
		return 0;
	kill(pid, SIGTERM);
	while (waitpid(pid, &status, WNOHANG) == 0) {
		if (harness_now_ms() - t0 > 20000) {
			harness_diag("%s ignored SIGTERM for 20 s: SIGKILL", what);
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			break;
		}
		harness_sleep_ms(50);
	}
	harness_diag("%s stopped in %lld ms", what, (long long)(harness_now_ms() - t0));
	return harness_now_ms() - t0;
}

bool harness_ping(const char *sock)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	static const char req[] = "GET /_ping HTTP/1.0\r\nHost: localhost\r\n\r\n";
	char buf[256] = { 0 };
	struct timeval tv = { 1, 0 };
	bool ok = false;
	int fd;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
		write(fd, req, sizeof(req) - 1) == (ssize_t)sizeof(req) - 1 &&
		read(fd, buf, sizeof(buf) - 1) > 0)
		ok = strncmp(buf, "HTTP/1.", 7) == 0 && strncmp(buf + 8, " 200", 4) == 0;
	close(fd);
	return ok;
}

bool harness_wait_ping(const char *sock, pid_t pid, int64_t ms)
{
	int64_t t0 = harness_now_ms();
	int status;

	while (harness_now_ms() - t0 < ms) {
		if (harness_ping(sock)) {
			harness_diag("%s answered after %lld ms", sock,
				(long long)(harness_now_ms() - t0));
			return true;
		}
		if (waitpid(pid, &status, WNOHANG) == pid) {
			harness_diag("daemon exited (status %d) before %s answered", status, sock);
			return false;
		}
		harness_sleep_ms(100);
	}
	return false;
}

int harness_kill_leftovers(const char *dir)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int found = 0;

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		char path[64], cmd[4096];
		ssize_t n;
		int fd;
		pid_t pid = (pid_t)strtol(e->d_name, NULL, 10);

		if (pid <= 1 || pid == getpid())
			continue;
		snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = read(fd, cmd, sizeof(cmd) - 1);
		close(fd);
		if (n <= 0)
			continue;
		for (ssize_t i = 0; i < n; i++)
			if (cmd[i] == '\0')
				cmd[i] = ' ';
		cmd[n] = '\0';
		if (!strstr(cmd, dir))
			continue;
		found++;
		harness_diag("left over: pid %d: %.200s", pid, cmd);
		kill(pid, SIGKILL);
	}
	closedir(d);
	return found;
}

int harness_umount_leftovers(const char *dir)
{
	char line[4096], *mnts[256];
	size_t dlen = strlen(dir);
	int n = 0, found;
	FILE *f = fopen("/proc/self/mounts", "re");

	if (!f || dlen == 0) {
		if (f)
			fclose(f);
		return 0;
	}
	while (n < 256 && fgets(line, sizeof(line), f)) {
		char *sp = strchr(line, ' '), *end;

		if (!sp)
			continue;
		end = strchr(sp + 1, ' ');
		if (!end)
			continue;
		*end = '\0';
		if (strncmp(sp + 1, dir, dlen) == 0 &&
			(sp[1 + dlen] == '/' || sp[1 + dlen] == '\0'))
			mnts[n++] = strdup(sp + 1);
	}
	fclose(f);
	found = n;
	while (n-- > 0) {
		if (mnts[n] && umount2(mnts[n], MNT_DETACH) < 0)
			harness_diag("umount %s: %s", mnts[n], strerror(errno));
		free(mnts[n]);
	}
	return found;
}

/* ---- runtimes ---- */

static const char *sub(const struct harness_runtime *h, const char *name)
{
	static char buf[16][512];
	static int i;

	i = (i + 1) % 16;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", h->dir, name);
	return buf[i];
}

static const char *docker_cli(void)
{
	/* Debian's client: another `docker` may sit earlier in PATH. */
	return access("/usr/bin/docker", X_OK) == 0 ? "/usr/bin/docker" : "docker";
}

int harness_daemon_start(struct harness_runtime *h)
{
	const char *what = h->kind == HARNESS_DOCKER ? "dockerd" : "the podman API service";

	if (h->kind == HARNESS_DOCKER) {
		const char *const argv[] = { "dockerd", "--host", h->arg[0], "--data-root",
			sub(h, "data"), "--exec-root", sub(h, "exec"), "--pidfile",
			sub(h, "dockerd.pid"), "--iptables=false", "--bridge=none", NULL };

		h->pid = harness_spawn(argv, h->log);
	} else {
		const char *const argv[] = { "podman", h->arg[1], h->arg[2], h->arg[3], "system",
			"service", "--time=0", h->arg[0], NULL };

		setenv("CONTAINERS_CONF", sub(h, "containers.conf"), 1);
		h->pid = harness_spawn(argv, h->log);
	}
	if (h->pid < 0 || !harness_wait_ping(h->sock, h->pid, 30000)) {
		snprintf(h->skip, sizeof(h->skip), "%s: %s did not start here (see %s)", h->name,
			what, h->log);
		harness_daemon_stop(h);
		return -1;
	}
	return 0;
}

void harness_daemon_stop(struct harness_runtime *h)
{
	if (h->pid > 0)
		harness_stop_pid(h->pid, h->kind == HARNESS_DOCKER ? "dockerd" : "podman service");
	h->pid = 0;
}

int harness_runtime_start(struct harness_runtime *h, enum harness_kind kind, const char *parent)
{
	memset(h, 0, sizeof(*h));
	h->kind = kind;
	h->name = kind == HARNESS_DOCKER ? "docker" : "podman";
	h->destroy_verb = kind == HARNESS_DOCKER ? "destroy" : "remove";
	snprintf(h->dir, sizeof(h->dir), "%s/%s", parent, h->name);
	snprintf(h->sock, sizeof(h->sock), "%s/%s.sock", h->dir, h->name);
	snprintf(h->endpoint, sizeof(h->endpoint), "unix:%s", h->sock);
	snprintf(h->log, sizeof(h->log), "%s/%s.log", h->dir, h->name);
	snprintf(h->arg[0], sizeof(h->arg[0]), "unix://%s", h->sock);
	if (mkdir(h->dir, 0700) < 0 && errno != EEXIST) {
		snprintf(h->skip, sizeof(h->skip), "%s: mkdir %s: %s", h->name, h->dir,
			strerror(errno));
		return -1;
	}
	if (kind == HARNESS_DOCKER) {
		h->cli[0] = docker_cli();
		h->cli[1] = "-H";
		h->cli[2] = h->arg[0];
	} else {
		FILE *f = fopen(sub(h, "containers.conf"), "we");

		if (!f) {
			snprintf(h->skip, sizeof(h->skip), "podman: cannot write containers.conf");
			return -1;
		}
		/* crun refuses hybrid cgroups, and the default ulimits exceed these machines' hard
		 * limits. */
		fputs("[containers]\n"
		      "default_ulimits = [\"nofile=1024:1024\", \"nproc=4096:4096\"]\n"
		      "[engine]\n"
		      "runtime = \"runc\"\n"
		      "cgroup_manager = \"cgroupfs\"\n"
		      "events_logger = \"file\"\n",
			f);
		fclose(f);
		snprintf(h->arg[1], sizeof(h->arg[1]), "--root=%s", sub(h, "root"));
		snprintf(h->arg[2], sizeof(h->arg[2]), "--runroot=%s", sub(h, "run"));
		snprintf(h->arg[3], sizeof(h->arg[3]), "--tmpdir=%s", sub(h, "tmp"));
		h->cli[0] = "podman";
		h->cli[1] = h->arg[1];
		h->cli[2] = h->arg[2];
		h->cli[3] = h->arg[3];
	}
	if (access(h->kind == HARNESS_DOCKER ? "/usr/sbin/dockerd" : "/usr/bin/podman", X_OK) < 0 &&
		access(h->kind == HARNESS_DOCKER ? "/usr/bin/dockerd" : "/usr/sbin/podman", X_OK) <
			0) {
		snprintf(h->skip, sizeof(h->skip), "%s: not installed (apt-get install %s)",
			h->name, h->kind == HARNESS_DOCKER ? "docker.io" : "podman runc");
		return -1;
	}
	return harness_daemon_start(h);
}

int harness_runtime_stop(struct harness_runtime *h)
{
	int procs;

	harness_daemon_stop(h);
	if (!h->dir[0])
		return 0;
	procs = harness_kill_leftovers(h->dir);
	if (procs)
		harness_sleep_ms(500);
	harness_umount_leftovers(h->dir);
	return procs;
}

int harness_cli(const struct harness_runtime *h, char *out, size_t outsz, const char *const args[])
{
	const char *argv[64];
	size_t n = 0;

	for (size_t i = 0; h->cli[i]; i++)
		argv[n++] = h->cli[i];
	for (size_t i = 0; args[i]; i++) {
		if (n >= sizeof(argv) / sizeof(argv[0]) - 1)
			return -1;
		argv[n++] = args[i];
	}
	argv[n] = NULL;
	return harness_run(out, outsz, argv);
}

/* ---- images and containers ---- */

static int copy(const char *src, const char *dst)
{
	char out[64];

	return harness_run(out, sizeof(out), (const char *const[]){ "cp", "-p", src, dst, NULL });
}

int harness_rootfs_tar(const char *tar, const struct harness_file *files, size_t n)
{
	char root[512], path[1024], out[64];
	int r = -1;

	snprintf(root, sizeof(root), "%s.d", tar);
	snprintf(path, sizeof(path), "%s/bin", root);
	if (mkdir(root, 0755) < 0 || mkdir(path, 0755) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/bin/busybox", root);
	if (copy("/bin/busybox", path) != 0)
		goto out;
	snprintf(path, sizeof(path), "%s/bin/sh", root);
	if (symlink("busybox", path) < 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		char *slash;

		snprintf(path, sizeof(path), "%s/%s", root, files[i].dst);
		/* Parent directories, one level at a time. */
		for (slash = strchr(path + strlen(root) + 1, '/'); slash;
			slash = strchr(slash + 1, '/')) {
			*slash = '\0';
			mkdir(path, 0755);
			*slash = '/';
		}
		if (copy(files[i].src, path) != 0)
			goto out;
	}
	r = harness_run(out, sizeof(out),
		    (const char *const[]){ "tar", "-C", root, "-cf", tar, ".", NULL }) == 0 ?
		0 :
		-1;
out:
	rmtree(root);
	return r;
}

static void normalise_image(char *image, size_t size)
{
	if (image[0] && strncmp(image, "sha256:", 7) != 0 && strlen(image) + 8 <= size) {
		memmove(image + 7, image, strlen(image) + 1);
		memcpy(image, "sha256:", 7);
	}
}

int harness_image_import(const struct harness_runtime *h, const char *tar, const char *tag,
	char image_id[80])
{
	char out[512];

	if (HARNESS_CLI(h, out, "import", tar, tag) != 0)
		return -1;
	if (harness_inspect(h, tag, "{{.Id}}", out, sizeof(out)) != 0 || strlen(out) > 71)
		return -1;
	normalise_image(out, sizeof(out));
	return snprintf(image_id, 80, "%s", out) < 80 ? 0 : -1;
}

static bool is_id(const char *s)
{
	return strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

#define ARGV_MAX 128

/* Append list (NULL-terminated; NULL for none) to argv, each item after opt if opt is set. */
static int push(const char **argv, size_t *n, const char *opt, const char *const *list)
{
	for (size_t i = 0; list && list[i]; i++) {
		if (*n + 3 > ARGV_MAX)
			return -1;
		if (opt)
			argv[(*n)++] = opt;
		argv[(*n)++] = list[i];
	}
	return 0;
}

int harness_container_run(const struct harness_runtime *h, const struct harness_container *c,
	char id[65])
{
	static const char *const sleeper[] = { "/bin/sh", "-c", "sleep 600", NULL };
	const char *argv[ARGV_MAX];
	char out[4096];
	size_t n = 0;
	int r;

	static const char *const run_d[] = { "run", "-d", "--network", "none", NULL };
	const char *const name[] = { c->name, NULL };
	const char *const image[] = { c->image, NULL };

	if (push(argv, &n, NULL, run_d) < 0 ||
		push(argv, &n, "--name", c->name ? name : NULL) < 0 ||
		push(argv, &n, "--label", c->labels) < 0 || push(argv, &n, "-v", c->volumes) < 0 ||
		push(argv, &n, "--tmpfs", c->tmpfs) < 0 || push(argv, &n, NULL, c->args) < 0 ||
		push(argv, &n, NULL, image) < 0 ||
		push(argv, &n, NULL, c->cmd ? c->cmd : sleeper) < 0)
		return -1;
	argv[n] = NULL;
	r = harness_cli(h, out, sizeof(out), argv);
	if (r != 0)
		return r;
	/* Podman may print pull or warning lines before the ID: take the last line. */
	{
		char *last = strrchr(out, '\n');

		last = last ? last + 1 : out;
		if (!is_id(last))
			return -1;
		memcpy(id, last, 65);
	}
	return 0;
}

int harness_exec(const struct harness_runtime *h, const char *container, bool detach,
	const char *const cmd[], char *out, size_t outsz)
{
	const char *argv[64];
	size_t n = 0;

	argv[n++] = "exec";
	if (detach)
		argv[n++] = "-d";
	argv[n++] = container;
	for (size_t i = 0; cmd[i]; i++) {
		if (n >= sizeof(argv) / sizeof(argv[0]) - 1)
			return -1;
		argv[n++] = cmd[i];
	}
	argv[n] = NULL;
	return harness_cli(h, out, outsz, argv);
}

int harness_container_stop(const struct harness_runtime *h, const char *container)
{
	char out[256];

	return HARNESS_CLI(h, out, "stop", "-t", "0", container);
}

int harness_container_rm(const struct harness_runtime *h, const char *container)
{
	char out[256];

	/* Podman's rm -f waits 10 s for a shell as pid 1 to heed SIGTERM, unless told not to. */
	if (h->kind == HARNESS_PODMAN)
		return HARNESS_CLI(h, out, "rm", "-f", "-t", "0", container);
	return HARNESS_CLI(h, out, "rm", "-f", container);
}

int harness_inspect(const struct harness_runtime *h, const char *what, const char *fmt, char *out,
	size_t outsz)
{
	return harness_cli(h, out, outsz,
		(const char *const[]){ "inspect", "-f", fmt, what, NULL });
}

int harness_container_image(const struct harness_runtime *h, const char *container,
	char image_id[80])
{
	char out[256];

	if (harness_inspect(h, container, "{{.Image}}", out, sizeof(out)) != 0 || strlen(out) > 71)
		return -1;
	normalise_image(out, sizeof(out));
	return snprintf(image_id, 80, "%s", out) < 80 ? 0 : -1;
}

pid_t harness_container_pid(const struct harness_runtime *h, const char *container)
{
	char out[64];

	if (harness_inspect(h, container, "{{.State.Pid}}", out, sizeof(out)) != 0)
		return 0;
	return (pid_t)strtol(out, NULL, 10);
}

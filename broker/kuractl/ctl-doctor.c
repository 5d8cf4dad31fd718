/* kuractl doctor: check that this host can run kura safely, and say what to fix. Reads the
 * kernel's features, asks the container runtimes, reads the state and run directories and the
 * audit log (structure, and MACs with the operator's key). Changes nothing. No plaintext. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/timex.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <linux/landlock.h>
#include <linux/magic.h>

#include "audit.h"
#include "config.h"
#include "ctl.h"
#include "escape.h"
#include "safepath.h"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif

/* runc fixed CVE-2024-21626 (a container escape through a leaked directory descriptor) in
 * 1.1.12. */
#define RUNC_FIXED_MAJOR 1
#define RUNC_FIXED_MINOR 1
#define RUNC_FIXED_PATCH 12
#define RUNTIME_TIMEOUT_MS 3000L
#define RUNTIME_REPLY_MAX (1 << 20)
#define COMMAND_TIMEOUT_MS 3000

static const char doctor_usage[] =
	"Usage: kuractl doctor [--runtime NAME=unix:PATH]... [--config FILE] [--audit-key FILE]\n"
	"                      [--state-dir DIR] [--run-dir DIR] [--json]\n"
	"\n"
	"Check that this host can run kura safely, and print what to fix. Changes nothing.\n"
	"Checks:\n"
	"  kernel     SO_PEERPIDFD (Linux 6.5: identity pinned to the connecting process),\n"
	"             Landlock and seccomp (kurad's and kura's sandboxes), the cgroup layout\n"
	"  runtimes   each runtime kurad is configured with answers on its socket; its version\n"
	"  runc       its version against CVE-2024-21626 (fixed in 1.1.12, or by the\n"
	"             distribution: its changelog must name the CVE)\n"
	"  state      STATE_DIR and its files: owned by root, reachable by no one else\n"
	"  run        RUN_DIR and its sockets: owned by root, writable by no one else;\n"
	"             admin.sock for root only; whether a kurad answers there\n"
	"  audit      the audit log verifies up to its tail (its structure; and every MAC with\n"
	"             --audit-key, the starting key kept off this host)\n"
	"  clock      the time is plausible and synchronised, and not behind the last record\n"
	"\n"
	"Options:\n"
	"  --runtime NAME=unix:PATH  a runtime to check, as kurad's --runtime (repeatable);\n"
	"                           default: the runtime lines of --config, else\n"
	"                           /run/docker.sock and /run/podman/podman.sock where present\n"
	"  --config FILE            kurad's configuration file, for its runtime lines\n"
	"  --audit-key FILE         the audit log's starting key: check every MAC too\n"
	"  --state-dir DIR, --run-dir DIR, --json, -h, --help  as for every command\n"
	"\n"
	"Each check prints ok, warn (kura runs, with less protection) or FAIL (fix it first),\n"
	"and for warn and FAIL the fix. --json: {\"checks\": [{\"check\", \"status\", \"detail\",\n"
	"\"fix\"}], \"failed\": N, \"warnings\": N}.\n"
	"Exit status: 0 nothing failed (warnings allowed), 1 a check failed, 2 usage.\n";

enum level { OK, WARN, FAIL };

struct doctor {
	json_t *checks;
	unsigned failed, warnings;
	bool json;
};

__attribute__((format(printf, 5, 6))) static void report(struct doctor *d, const char *check,
	enum level level, const char *fix, const char *fmt, ...)
{
	static const char *const names[] = { "ok", "warn", "fail" };
	char detail[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	if (level == FAIL)
		d->failed++;
	else if (level == WARN)
		d->warnings++;
	json_array_append_new(d->checks,
		json_pack("{s:s, s:s, s:s, s:s?}", "check", check, "status", names[level], "detail",
			detail, "fix", level == OK ? NULL : fix));
	if (d->json)
		return;
	printf("%-5s %-22s %s\n", level == FAIL ? "FAIL" : names[level], check, detail);
	if (level != OK && fix)
		printf("      %-22s fix: %s\n", "", fix);
}

/* --- kernel ----------------------------------------------------------------------------------- */

static void check_kernel(struct doctor *d)
{
	int sv[2], pidfd = -1, abi;
	socklen_t len = sizeof(pidfd);
	struct statfs sf;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0) {
		if (getsockopt(sv[0], SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) == 0) {
			report(d, "kernel: SO_PEERPIDFD", OK, NULL,
				"present: a peer is pinned to the very process that connected");
			close(pidfd);
		} else {
			report(d, "kernel: SO_PEERPIDFD", WARN, "run Linux 6.5 or later",
				"absent (%s): identity runs degraded (the peer is bound to a pid "
				"after it connected)",
				strerror(errno));
		}
		close(sv[0]);
		close(sv[1]);
	}

	abi = (int)syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	if (abi > 0)
		report(d, "kernel: Landlock", OK, NULL, "ABI version %d", abi);
	else if (errno == EOPNOTSUPP)
		report(d, "kernel: Landlock", WARN,
			"add landlock to the kernel's lsm= boot parameter",
			"built in but disabled at boot: kurad's and kura's processes run without "
			"their file-system rules");
	else
		report(d, "kernel: Landlock", WARN, "run a kernel with CONFIG_SECURITY_LANDLOCK",
			"not in this kernel (%s): kurad's and kura's processes run without their "
			"file-system rules",
			strerror(errno));

	if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) >= 0)
		report(d, "kernel: seccomp", OK, NULL, "filters available");
	else
		report(d, "kernel: seccomp", FAIL, "run a kernel with CONFIG_SECCOMP_FILTER",
			"not available (%s): kurad's processes cannot lock themselves down",
			strerror(errno));

	if (statfs("/sys/fs/cgroup", &sf) < 0)
		report(d, "kernel: cgroups", FAIL, "mount cgroup2 on /sys/fs/cgroup",
			"/sys/fs/cgroup: %s: containers cannot be told apart", strerror(errno));
	else if (sf.f_type == CGROUP2_SUPER_MAGIC)
		report(d, "kernel: cgroups", OK, NULL, "version 2 (unified)");
	else if (access("/sys/fs/cgroup/unified", F_OK) == 0)
		report(d, "kernel: cgroups", OK, NULL, "hybrid (version 1 with a unified tree)");
	else
		report(d, "kernel: cgroups", OK, NULL, "version 1");
}

/* --- runtimes ----------------------------------------------------------------------------------
 */

struct body {
	char *buf;
	size_t len;
	bool too_big;
};

static size_t collect(char *p, size_t size, size_t n, void *userdata)
{
	struct body *b = userdata;
	size_t k = size * n;
	char *nb;

	if (b->len + k > RUNTIME_REPLY_MAX) {
		b->too_big = true;
		return 0;
	}
	nb = realloc(b->buf, b->len + k + 1);
	if (!nb)
		return 0;
	b->buf = nb;
	memcpy(b->buf + b->len, p, k);
	b->len += k;
	b->buf[b->len] = '\0';
	return k;
}

/* GET path on the Unix socket, bounded in time and size: the reply's JSON, or NULL and why. */
static json_t *runtime_get(const char *sock, const char *path, char *why, size_t n)
{
	struct body b = { 0 };
	char url[256];
	long status = 0;
	json_t *j = NULL;
	CURLcode cr;
	CURL *curl = curl_easy_init();

	if (!curl) {
		snprintf(why, n, "out of memory");
		return NULL;
	}
	snprintf(url, sizeof(url), "http://runtime%s", path);
	curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, sock);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, RUNTIME_TIMEOUT_MS);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &b);
	cr = curl_easy_perform(curl);
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(curl);
	if (cr != CURLE_OK)
		snprintf(why, n, "%s",
			b.too_big ? "its reply is over 1 MiB" : curl_easy_strerror(cr));
	else if (status != 200)
		snprintf(why, n, "it answered %s with HTTP %ld", path, status);
	else if (!(j = json_loadb(b.buf ? b.buf : "", b.len, 0, NULL)))
		snprintf(why, n, "its answer to %s is not JSON", path);
	free(b.buf);
	return j;
}

/* A runtime's own word, escaped: it goes to a terminal. */
static const char *field(const json_t *o, const char *key, char buf[static 128])
{
	const json_t *v = json_object_get(o, key);
	const char *s = json_string_value(v);

	return s ? kura_escape(s, json_string_length(v), KURA_ESCAPE_TEXT, buf, 128) : "?";
}

static void check_runc_version(struct doctor *d, const char *where, const char *version);

static void check_runtime(struct doctor *d, const char *spec)
{
	const char *eq = strchr(spec, '=');
	char check[64], why[256], v1[128], v2[128], v3[128];
	json_t *j, *c;
	size_t i;

	snprintf(check, sizeof(check), "runtime %.*s", eq ? (int)(eq - spec) : 0, spec);
	if (!eq || strncmp(eq + 1, "unix:", 5) != 0 || !eq[6]) {
		report(d, "runtime", FAIL, "write it as docker=unix:/run/docker.sock",
			"%s: not NAME=unix:PATH", spec);
		return;
	}
	if (!((eq - spec == 6 && strncmp(spec, "docker", 6) == 0) ||
		    (eq - spec == 6 && strncmp(spec, "podman", 6) == 0))) {
		report(d, check, FAIL, "name it docker or podman (the API it speaks)",
			"unknown runtime: kurad knows docker and podman");
		return;
	}
	j = runtime_get(eq + 6, "/version", why, sizeof(why));
	if (!j) {
		report(d, check, FAIL,
			"start the runtime, or correct kurad's --runtime (containers of an "
			"unreachable runtime are refused: runtime_unavailable)",
			"%s does not answer: %s", eq + 6, why);
		return;
	}
	report(d, check, OK, NULL, "%s answers: version %s, API %s", eq + 6,
		field(j, "Version", v1), field(j, "ApiVersion", v2));
	/* Docker names the runc it runs among its components. */
	json_array_foreach(json_object_get(j, "Components"), i, c)
		if (strcmp(field(c, "Name", v3), "runc") == 0)
			check_runc_version(d, check, field(c, "Version", v1));
	json_decref(j);
}

/* The runtimes kurad's config names, one "runtime = NAME=unix:PATH" a line. */
static size_t config_runtimes(const char *path, char ***list, size_t n)
{
	char line[4096];
	FILE *f = fopen(path, "re");

	if (!f) {
		fprintf(stderr, "kuractl: %s: %s\n", path, strerror(errno));
		exit(KURA_EXIT_USAGE);
	}
	while (fgets(line, sizeof(line), f)) {
		char *p = line + strspn(line, " \t"), *v;
		char **nl;

		if (strncmp(p, "runtime", 7) != 0)
			continue;
		v = p + 7 + strspn(p + 7, " \t");
		if (*v != '=')
			continue;
		v++;
		v += strspn(v, " \t");
		v[strcspn(v, " \t\r\n#")] = '\0';
		nl = realloc(*list, (n + 1) * sizeof(*nl));
		if (!nl || !(nl[n] = strdup(v)))
			exit(KURA_EXIT_SYSTEM);
		*list = nl;
		n++;
	}
	fclose(f);
	return n;
}

/* --- runc --------------------------------------------------------------------------------------
 */

/* argv's standard output (at most n-1 bytes), bounded in time; -1 if it could not run. */
static int run_capture(char *const argv[], char *out, size_t n)
{
	posix_spawn_file_actions_t fa;
	int p[2], status = 0, r;
	size_t got = 0;
	pid_t pid;
	struct timespec t0, t;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, p[1], STDOUT_FILENO);
	posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
	r = posix_spawn(&pid, argv[0], &fa, NULL, argv, (char *[]){ "PATH=/usr/bin:/bin", NULL });
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	if (r != 0) {
		close(p[0]);
		return -1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct pollfd pf = { .fd = p[0], .events = POLLIN };
		long left;
		ssize_t k;

		clock_gettime(CLOCK_MONOTONIC, &t);
		left = COMMAND_TIMEOUT_MS -
			((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000);
		if (left <= 0 || poll(&pf, 1, (int)left) <= 0)
			break;
		k = read(p[0], out + got, n - 1 - got);
		if (k <= 0)
			break;
		got += (size_t)k;
		if (got == n - 1)
			break;
	}
	out[got] = '\0';
	close(p[0]);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return 0;
}

static bool runc_fixed(const char *version)
{
	unsigned a = 0, b = 0, c = 0;

	if (sscanf(version, "%u.%u.%u", &a, &b, &c) < 2)
		return false;
	if (a != RUNC_FIXED_MAJOR)
		return a > RUNC_FIXED_MAJOR;
	if (b != RUNC_FIXED_MINOR)
		return b > RUNC_FIXED_MINOR;
	return c >= RUNC_FIXED_PATCH;
}

/* A distribution backports the fix without the version (its builds carry a '+' suffix, as
 * Debian's 1.1.5+ds1): its changelog for the installed package names the CVE. */
static bool changelog_names_cve(void)
{
	static char out[1 << 20];

	if (access("/usr/share/doc/runc/changelog.Debian.gz", R_OK) != 0 ||
		run_capture((char *[]){ "/bin/gzip", "-dc",
				    "/usr/share/doc/runc/changelog.Debian.gz", NULL },
			out, sizeof(out)) < 0)
		return false;
	return strstr(out, "CVE-2024-21626") != NULL;
}

static void check_runc_version(struct doctor *d, const char *where, const char *version)
{
	char check[96];

	snprintf(check, sizeof(check), "runc (%s)", where);
	if (runc_fixed(version))
		report(d, check, OK, NULL, "version %s: not open to CVE-2024-21626", version);
	else if (strchr(version, '+') && changelog_names_cve())
		report(d, check, OK, NULL,
			"version %s, patched by the distribution (its changelog names "
			"CVE-2024-21626)",
			version);
	else
		report(d, check, FAIL, "upgrade runc to 1.1.12 or later",
			"version %s is open to CVE-2024-21626 (a container escapes through a "
			"leaked directory descriptor)",
			version);
}

static void check_runc(struct doctor *d)
{
	static const char *const paths[] = { "/usr/sbin/runc", "/usr/bin/runc",
		"/usr/local/sbin/runc", "/usr/local/bin/runc" };
	char out[4096], v[64];

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		const char *p;

		if (access(paths[i], X_OK) != 0)
			continue;
		if (run_capture((char *[]){ (char *)paths[i], "--version", NULL }, out,
			    sizeof(out)) < 0 ||
			!(p = strstr(out, "runc version ")) ||
			sscanf(p + 13, "%63[0-9A-Za-z.+~-]", v) != 1) {
			report(d, "runc", WARN, "check `runc --version` by hand",
				"%s: no version could be read", paths[i]);
			return;
		}
		check_runc_version(d, paths[i], v);
		return;
	}
	report(d, "runc", OK, NULL,
		"not installed where kuractl looks (/usr/sbin, /usr/bin, "
		"/usr/local): check the runtime's own");
}

/* --- state and run directories -----------------------------------------------------------------
 */

/* path must be owned by root and not writable by group or others; private: not readable
 * either. */
static void check_owner_mode(struct doctor *d, const char *check, const char *path, bool private,
	bool must_exist)
{
	char fix[4400];
	struct stat st;

	if (lstat(path, &st) < 0) {
		if (errno == ENOENT && !must_exist)
			return;
		report(d, check, FAIL, "kuractl init creates the state; kurad the run directory",
			"%s: %s", path, strerror(errno));
		return;
	}
	if (S_ISLNK(st.st_mode)) {
		report(d, check, FAIL, "replace the link by the directory itself",
			"%s is a symbolic link", path);
		return;
	}
	if (st.st_uid != 0) {
		snprintf(fix, sizeof(fix), "chown root: %s", path);
		report(d, check, FAIL, fix, "%s is owned by uid %u, not root", path,
			(unsigned)st.st_uid);
		return;
	}
	if (st.st_mode & (private ? 077 : 022)) {
		snprintf(fix, sizeof(fix), "chmod %s %s", private ? "go=" : "go-w", path);
		report(d, check, FAIL, fix, "%s has mode %04o: %s", path,
			(unsigned)(st.st_mode & 07777),
			private ? "others may read it" : "others may change it");
		return;
	}
	report(d, check, OK, NULL, "%s: root, mode %04o", path, (unsigned)(st.st_mode & 07777));
}

static void check_state(struct doctor *d, const char *state)
{
	static const char *const files[] = { "kura.db", "master.key", "master.tpm2", "audit" };
	char p[4200];

	check_owner_mode(d, "state directory", state, true, true);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", state, files[i]);
		check_owner_mode(d, "state file", p, true, false);
	}
}

static void check_run(struct doctor *d, struct ctl *c)
{
	char why[512], p[4200];
	json_t *j = NULL;
	long status = 0;
	struct kura_err err = { 0 };
	struct stat st;
	int fd;

	fd = kura_path_open_trusted(c->run_dir, 0, why, sizeof(why));
	if (fd == -ENOENT) {
		report(d, "run directory", WARN, "start kurad",
			"%s does not exist: no kurad has run here", c->run_dir);
		return;
	}
	if (fd < 0) {
		report(d, "run directory", FAIL,
			"make it and every directory above it root's, writable by no one else",
			"%s: %s", c->run_dir, why);
		return;
	}
	close(fd);
	check_owner_mode(d, "run directory", c->run_dir, false, true);
	snprintf(p, sizeof(p), "%s/admin.sock", c->run_dir);
	if (lstat(p, &st) == 0 && (!S_ISSOCK(st.st_mode) || st.st_uid != 0 || (st.st_mode & 077)))
		report(d, "admin.sock", FAIL, "stop whatever made it; kurad makes it 0600 root",
			"%s: mode %04o, uid %u: not for root alone", p,
			(unsigned)(st.st_mode & 07777), (unsigned)st.st_uid);
	if (ctl_admin_get(c, "/v1/status", &status, &j, &err) == 0 && status == 200) {
		report(d, "kurad", OK, NULL, "answers on %s (store revision %lld)", p,
			(long long)json_integer_value(json_object_get(j, "revision")));
	} else {
		report(d, "kurad", WARN, "start kurad (kurad --help)", "no kurad answers on %s%s%s",
			p, err.msg[0] ? ": " : "", err.msg);
	}
	json_decref(j);
}

/* --- audit and clock ---------------------------------------------------------------------------
 */

/* The time of the last record of the newest audit file, or 0. */
static time_t last_record_time(const char *dir, const struct kura_audit_verdict *v)
{
	char path[4300], buf[4096], *nl;
	struct tm tm = { 0 };
	json_t *j;
	time_t t = 0;
	ssize_t n;
	off_t size;
	int fd;

	if (!v->files)
		return 0;
	snprintf(path, sizeof(path), "%s/audit-%06u.jsonl", dir, (unsigned)v->files);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return 0;
	size = lseek(fd, 0, SEEK_END);
	n = pread(fd, buf, sizeof(buf) - 1,
		size > (off_t)sizeof(buf) - 1 ? size - (off_t)sizeof(buf) + 1 : 0);
	close(fd);
	if (n <= 1)
		return 0;
	buf[n - 1] = '\0'; /* the last newline */
	nl = strrchr(buf, '\n');
	j = json_loads(nl ? nl + 1 : buf, 0, NULL);
	if (j && json_is_string(json_object_get(j, "time")) &&
		strptime(json_string_value(json_object_get(j, "time")), "%Y-%m-%dT%H:%M:%S", &tm))
		t = timegm(&tm);
	json_decref(j);
	return t;
}

static void check_audit_and_clock(struct doctor *d, const char *state, const char *key_path)
{
	_cleanup_secbuf_ struct kura_secbuf *key = NULL;
	struct kura_audit_verdict v;
	struct timespec now;
	struct timex tx = { .modes = 0 };
	char dir[4200];
	time_t last = 0;
	int r, state_rc;

	snprintf(dir, sizeof(dir), "%s/audit", state);
	if (key_path && ctl_audit_key_read(key_path, &key) != 0)
		report(d, "audit log", FAIL, "give the key kuractl init printed (base64)",
			"--audit-key %s: not an audit key that can be read (said above)", key_path);
	r = kura_audit_verify(dir, key, NULL, &v);
	/* A kurad writing as we read may leave its last line half-read: once more. */
	if (r == 0 && v.fault != KURA_AUDIT_OK)
		r = kura_audit_verify(dir, key, NULL, &v);
	if (r == -ENOENT) {
		report(d, "audit log", WARN, "kuractl init makes it", "%s: none", dir);
	} else if (r < 0) {
		report(d, "audit log", FAIL, "check the directory's owner and modes", "%s: %s", dir,
			strerror(-r));
	} else if (v.fault != KURA_AUDIT_OK) {
		report(d, "audit log", FAIL,
			"run kuractl audit verify, keep the files as evidence, and compare with the "
			"records shipped off the host",
			"%s: %s at %s line %zu (seq %llu)", dir, kura_audit_fault_name(v.fault),
			v.file, (size_t)v.line, (unsigned long long)v.seq);
	} else {
		report(d, "audit log", OK, NULL,
			"%llu records in %zu files verify up to seq %llu (%s)",
			(unsigned long long)v.good, (size_t)v.files, (unsigned long long)v.last_seq,
			key ? "every MAC checked" : "structure only: --audit-key checks every MAC");
		last = last_record_time(dir, &v);
	}

	clock_gettime(CLOCK_REALTIME, &now);
	if (now.tv_sec < 1704067200) /* 2024-01-01 */
		report(d, "clock", FAIL, "set the time (timedatectl, NTP)",
			"the time is before 2024: certificates, records and rates go wrong");
	else if (last && last > now.tv_sec + 60)
		report(d, "clock", FAIL, "set the time; then look at why it went back",
			"the last audit record is %lld s in the future: the clock went back",
			(long long)(last - now.tv_sec));
	else
		report(d, "clock", OK, NULL, "plausible%s",
			last ? ", and after the last audit record" : "");
	state_rc = adjtimex(&tx);
	if (state_rc == TIME_ERROR || (tx.status & STA_UNSYNC))
		report(d, "clock: synchronised", WARN,
			"run an NTP client (systemd-timesyncd, chrony)",
			"the kernel says the clock is not synchronised");
	else if (state_rc >= 0)
		report(d, "clock: synchronised", OK, NULL, "by NTP (error estimate %ld µs)",
			tx.esterror);
}

int ctl_doctor(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "runtime", required_argument, NULL, 'r' },
		{ "config", required_argument, NULL, 'c' },
		{ "audit-key", required_argument, NULL, 'a' },
		CTL_COMMON_OPTIONS,
	};
	static const char *const defaults[2] = { "docker=unix:/run/docker.sock",
		"podman=unix:/run/podman/podman.sock" };
	struct doctor d = { .checks = json_array() };
	const char *config = NULL, *audit_key = NULL;
	char **runtimes = NULL;
	size_t n_runtimes = 0;
	int opt;

	while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (ctl_common_option(c, opt, optarg))
			continue;
		switch (opt) {
		case 'h':
			fputs(doctor_usage, stdout);
			return KURA_EXIT_OK;
		case 'r':
			runtimes = realloc(runtimes, (n_runtimes + 1) * sizeof(*runtimes));
			if (!runtimes || !(runtimes[n_runtimes++] = strdup(optarg)))
				return KURA_EXIT_SYSTEM;
			break;
		case 'c':
			config = optarg;
			break;
		case 'a':
			audit_key = optarg;
			break;
		default:
			return ctl_bad_option(opt, argv);
		}
	}
	if (optind < argc)
		return ctl_usage("doctor takes no argument (try --help)");
	if (!d.checks)
		return KURA_EXIT_SYSTEM;
	d.json = c->json;
	if (!n_runtimes && config)
		n_runtimes = config_runtimes(config, &runtimes, 0);

	check_kernel(&d);
	if (n_runtimes) {
		for (size_t i = 0; i < n_runtimes; i++)
			check_runtime(&d, runtimes[i]);
	} else {
		bool any = false;

		for (size_t i = 0; i < 2; i++)
			if (access(strchr(defaults[i], ':') + 1, F_OK) == 0) {
				check_runtime(&d, defaults[i]);
				any = true;
			}
		if (!any)
			report(&d, "runtimes", WARN, "name kurad's runtimes: --runtime or --config",
				"none given, and neither /run/docker.sock nor "
				"/run/podman/podman.sock exists");
	}
	check_runc(&d);
	check_state(&d, c->state_dir);
	check_run(&d, c);
	check_audit_and_clock(&d, c->state_dir, audit_key);

	for (size_t i = 0; i < n_runtimes; i++)
		free(runtimes[i]);
	free(runtimes);
	if (d.json) {
		ctl_print_json(json_pack("{s:o, s:I, s:I}", "checks", d.checks, "failed",
			(json_int_t)d.failed, "warnings", (json_int_t)d.warnings));
	} else {
		printf("kuractl doctor: %u failed, %u warning%s\n", d.failed, d.warnings,
			d.warnings == 1 ? "" : "s");
		json_decref(d.checks);
	}
	return d.failed ? KURA_EXIT_REFUSED : KURA_EXIT_OK;
}

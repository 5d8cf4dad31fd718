/* Crash-consistency at scale (issue 10): kurad is killed with SIGKILL, again and again, at
 * random moments while kuractl (through kurad's admin API) puts, rotates, destroys, grants,
 * revokes and rotates the KEK over a few thousand secrets and curl fetches over workload.sock.
 * After every kill: each acknowledged write is in the store, every secret opens with a value
 * it may hold (an unacknowledged write may or may not be there), grants are as acknowledged,
 * kurad starts again (cutting a torn audit record) and `kuractl audit verify --key` passes, with
 * a record for every acknowledged operation and fetch. Touches plaintext: made-up test values,
 * in guarded buffers; only their hashes are kept. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "grant.h"
#include "json.h"
#include "tap.h"
#include "vault.h"

extern char **environ;

#define N_BULK 3000u /* c/NNNN: rotated now and then; what key rotate rewraps */
#define N_FETCH 8u   /* f/N: rotated and fetched */
#define N_WORK 64u   /* w/NN: put and destroyed */
#define N_GRANT 32u  /* g/NN --host --uid 2000+NN: granted and revoked */
#define N_SECRETS (N_BULK + N_FETCH + N_WORK)
#define HASH 8u

enum op {
	OP_NONE,
	OP_PUT,
	OP_ROTATE,
	OP_DESTROY,
	OP_GRANT,
	OP_REVOKE,
	OP_KEY_ROTATE,
	OP_FETCH,
	OP_KINDS,
};

static const char *const op_names[OP_KINDS] = {
	[OP_NONE] = "none",
	[OP_PUT] = "secret put",
	[OP_ROTATE] = "secret rotate",
	[OP_DESTROY] = "secret destroy",
	[OP_GRANT] = "grant",
	[OP_REVOKE] = "revoke",
	[OP_KEY_ROTATE] = "key rotate",
	[OP_FETCH] = "fetch",
};

/* What the store must hold for a secret: versions 1..n of its current incarnation. */
struct secret {
	char name[16];
	bool present;
	uint64_t current;
	size_t n;
	uint8_t (*hash)[HASH]; /* hash[v - 1] of version v */
	bool busy;             /* an operation on it is in flight */
	uint32_t gen;          /* makes each written value new */
};

struct grant_state {
	bool present;
	bool busy;
};

/* One operation in flight, or just finished this round. */
struct job {
	enum op op;
	pid_t pid;
	size_t target;         /* secret or grant index */
	uint8_t hash[HASH];    /* the value a put or rotate writes */
	uint64_t from_current; /* a fetch: the secret's version when it began */
	uint64_t version;      /* the version a put or rotate made, or a fetch got */
	char out[128], err[128], body[128], value[128];
	int status; /* 0: acknowledged (exit 0, or HTTP 200) */
};

static char dir[] = "/dev/shm/kura-crash-XXXXXX";
static char state[256], run_dir[256], audit_key[256], kurad_log[256];
static char admin_sock[108], workload_sock[108];
static const char *kurad_bin, *kuractl;
static struct secret secrets[N_SECRETS];
static struct grant_state grants[N_GRANT];
static uint8_t seed[32];
static uint64_t rng;
static pid_t kurad = -1;

/* What happened, for the checks and the diagnostics. */
static struct {
	unsigned kills, restarts_failed, torn_tails, torn_planted, keks_extra, offline, mid_txn;
	unsigned flight_failed[OP_KINDS], flight_acked[OP_KINDS];
	unsigned in_flight[OP_KINDS], acked[OP_KINDS], unacked[OP_KINDS];
	unsigned store_bad, grant_bad, kek_bad, fetch_bad, audit_bad, record_bad;
	unsigned fetch_503, records;
	double verify_s;
	char first_store[512], first_grant[512], first_kek[512], first_fetch[512];
	char first_audit[512], first_record[512], first_restart[512];
} st;

static uint64_t next_rand(void)
{
	uint64_t z = (rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static unsigned pick(unsigned n)
{
	return (unsigned)(next_rand() % n);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(double ms)
{
	struct timespec ts = { .tv_sec = (time_t)(ms / 1000),
		.tv_nsec = (long)((ms - 1000.0 * (double)(time_t)(ms / 1000)) * 1e6) };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

__attribute__((format(printf, 2, 3))) static void note(char *first, const char *fmt, ...)
{
	va_list ap;

	if (first[0])
		return;
	va_start(ap, fmt);
	vsnprintf(first, 512, fmt, ap);
	va_end(ap);
}

/* The value generation gen of secret i writes: 16 to 79 bytes, derived from the run's seed. */
static int value_of(size_t i, uint32_t gen, struct kura_secbuf **ret)
{
	uint8_t idx[12];
	size_t len;
	int r;

	memcpy(idx, &(uint64_t){ i }, 8);
	memcpy(idx + 8, &gen, 4);
	len = 16 + (i * 7 + gen) % 64;
	r = kura_secbuf_new(len, ret);
	if (r < 0)
		return r;
	crypto_generichash((*ret)->data, len, idx, sizeof(idx), seed, sizeof(seed));
	(*ret)->len = len;
	return 0;
}

static void hash_of(const uint8_t *p, size_t len, uint8_t out[HASH])
{
	crypto_generichash(out, HASH, p, len, NULL, 0);
}

static void model_set(struct secret *s, uint64_t version, const uint8_t h[HASH])
{
	if (version > s->n) {
		s->hash = realloc(s->hash, version * sizeof(*s->hash));
		if (!s->hash)
			abort();
		s->n = version;
	}
	memcpy(s->hash[version - 1], h, HASH);
	s->current = version;
	s->present = true;
}

static void model_clear(struct secret *s)
{
	free(s->hash);
	s->hash = NULL;
	s->n = 0;
	s->current = 0;
	s->present = false;
}

static pid_t spawn(char *const argv[], const char *out, const char *err)
{
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int r;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, out ? out : "/dev/null",
		O_WRONLY | O_CREAT | O_TRUNC, 0600);
	posix_spawn_file_actions_addopen(&fa, 2, err ? err : "/dev/null",
		O_WRONLY | O_CREAT | (err == kurad_log ? O_APPEND : O_TRUNC), 0600);
	r = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	return r == 0 ? pid : -1;
}

static int wait_for(pid_t pid)
{
	int status;

	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return status;
}

static int run(char *const argv[])
{
	pid_t pid = spawn(argv, NULL, NULL);
	int status = pid > 0 ? wait_for(pid) : -1;

	return status >= 0 && WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static size_t read_file(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "re");
	size_t n = 0;

	if (f) {
		n = fread(buf, 1, size - 1, f);
		fclose(f);
	}
	buf[n] = 0;
	return n;
}

/* --- kurad ------------------------------------------------------------------------------- */

/* One GET on the admin socket: is kurad answering? */
static bool answers(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	static const char req[] = "GET /v1/status HTTP/1.1\r\nHost: k\r\nConnection: close\r\n\r\n";
	char buf[64] = "";
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok = false;

	memcpy(sa.sun_path, admin_sock, sizeof(admin_sock));
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
		write(fd, req, sizeof(req) - 1) == (ssize_t)sizeof(req) - 1 &&
		read(fd, buf, sizeof(buf) - 1) > 12)
		ok = strncmp(buf, "HTTP/1.1 200", 12) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

/* The newest audit file (the log's files are numbered from 1 without gaps). */
static void last_audit_file(char path[512])
{
	unsigned k = 1;

	for (;; k++) {
		snprintf(path, 512, "%s/audit/audit-%06u.jsonl", state, k + 1);
		if (access(path, F_OK) < 0)
			break;
	}
	snprintf(path, 512, "%s/audit/audit-%06u.jsonl", state, k);
}

/* The newest audit file ends with this kurad's start record: it writes nothing more of its own,
 * so the log can be copied and checked. */
static bool started_record(void)
{
	char path[512], buf[1024], want[32], *last;
	struct stat sb;
	FILE *f;
	size_t n;

	last_audit_file(path);
	f = fopen(path, "re");
	if (!f)
		return false;
	if (fstat(fileno(f), &sb) == 0 && sb.st_size > (off_t)sizeof(buf) - 1)
		fseeko(f, sb.st_size - (off_t)sizeof(buf) + 1, SEEK_SET);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	if (n == 0 || buf[n - 1] != '\n')
		return false;
	buf[n - 1] = 0;
	last = strrchr(buf, '\n');
	last = last ? last + 1 : buf;
	snprintf(want, sizeof(want), "\"pid\":%d,", (int)kurad);
	return strstr(last, "\"event\":\"start\"") && strstr(last, want);
}

static bool start_kurad(void)
{
	char conf[512];
	char *argv[] = { (char *)kurad_bin, "--state-dir", state, "--run-dir", run_dir, "--config",
		conf, NULL };
	double t0 = now();

	snprintf(conf, sizeof(conf), "%s/kurad.conf", dir);
	/* The log holds this start's lines only: what a failed start said is at its end. */
	if (truncate(kurad_log, 0) < 0 && errno != ENOENT)
		return false;
	kurad = spawn(argv, NULL, kurad_log);
	if (kurad < 0)
		return false;
	while (now() - t0 < 10) {
		int status;

		if (waitpid(kurad, &status, WNOHANG) == kurad) {
			kurad = -1;
			return false;
		}
		if (answers() && started_record())
			return true;
		sleep_ms(2);
	}
	return false;
}

static void kill_kurad(void)
{
	if (kurad > 0) {
		kill(kurad, SIGKILL);
		wait_for(kurad);
	}
	kurad = -1;
}

/* --- clients ---------------------------------------------------------------------------- */

static void job_files(struct job *j, int slot)
{
	snprintf(j->out, sizeof(j->out), "%s/out.%d", dir, slot);
	snprintf(j->err, sizeof(j->err), "%s/err.%d", dir, slot);
	snprintf(j->body, sizeof(j->body), "%s/body.%d", dir, slot);
	snprintf(j->value, sizeof(j->value), "%s/value.%d", dir, slot);
}

/* The next value of secret i, into the slot's value file; its hash into the job. */
static bool stage_value(struct job *j, size_t i)
{
	_cleanup_secbuf_ struct kura_secbuf *v = NULL;
	int fd;
	bool ok;

	if (value_of(i, ++secrets[i].gen, &v) < 0)
		return false;
	hash_of(v->data, v->len, j->hash);
	fd = open(j->value, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return false;
	ok = kura_secbuf_write_fd(v, fd) == 0;
	close(fd);
	return ok;
}

/* A secret of the given range that no job holds, or SIZE_MAX. */
static size_t free_secret(size_t from, size_t count, int want_present)
{
	for (int tries = 0; tries < 32; tries++) {
		size_t i = from + pick((unsigned)count);

		if (!secrets[i].busy && (want_present < 0 || secrets[i].present == want_present))
			return i;
	}
	return SIZE_MAX;
}

static size_t free_grant(bool want_present)
{
	for (int tries = 0; tries < 32; tries++) {
		size_t i = pick(N_GRANT);

		if (!grants[i].busy && grants[i].present == want_present)
			return i;
	}
	return SIZE_MAX;
}

/* Start the job a slot does next: slots 0 and 1 mix secret and grant operations, slot 2
 * rotates the KEK (and now and then a fetched secret), slot 3 fetches. false if it found
 * nothing free to work on. */
static bool start_job(struct job *j, int slot)
{
	char uid[16], gname[16], url[64];
	char *argv[16];
	unsigned roll = pick(100);
	size_t i = SIZE_MAX;
	int a = 0;

	*j = (struct job){ .op = OP_NONE };
	job_files(j, slot);
	if (slot == 3) {
		i = N_BULK + pick(N_FETCH);
		j->op = OP_FETCH;
		j->target = i;
		j->from_current = secrets[i].current;
		snprintf(url, sizeof(url), "http://kura/v1/secrets/%s", secrets[i].name);
		char *cargv[] = { "/usr/bin/curl", "-s", "-o", j->body, "-w", "%{http_code}",
			"--max-time", "5", "--unix-socket", workload_sock, url, NULL };

		j->pid = spawn(cargv, j->out, NULL);
		return j->pid > 0;
	}
	argv[a++] = (char *)kuractl;
	argv[a++] = "--state-dir";
	argv[a++] = state;
	argv[a++] = "--run-dir";
	argv[a++] = run_dir;
	if (slot == 2 && roll < 70) {
		j->op = OP_KEY_ROTATE;
		argv[a++] = "key";
		argv[a++] = "rotate";
	} else if (slot == 2 || roll < 35) {
		i = slot == 2 || roll < 10 ? free_secret(N_BULK, N_FETCH, 1) :
					     free_secret(0, N_BULK, 1);
		j->op = OP_ROTATE;
		argv[a++] = "secret";
		argv[a++] = "rotate";
	} else if (roll < 70) {
		j->op = roll < 55 ? OP_PUT : OP_DESTROY;
		i = free_secret(N_BULK + N_FETCH, N_WORK, j->op == OP_DESTROY);
		argv[a++] = "secret";
		argv[a++] = j->op == OP_PUT ? "put" : "destroy";
	} else {
		j->op = roll < 85 ? OP_GRANT : OP_REVOKE;
		i = free_grant(j->op == OP_REVOKE);
		snprintf(gname, sizeof(gname), "g/%02zu", i);
		snprintf(uid, sizeof(uid), "%zu", 2000 + i);
		argv[a++] = j->op == OP_GRANT ? "grant" : "revoke";
		argv[a++] = gname;
		argv[a++] = "--host";
		argv[a++] = "--uid";
		argv[a++] = uid;
	}
	if (j->op != OP_KEY_ROTATE && i == SIZE_MAX)
		return false;
	if (j->op == OP_PUT || j->op == OP_ROTATE || j->op == OP_DESTROY)
		argv[a++] = secrets[i].name;
	if (j->op == OP_PUT || j->op == OP_ROTATE) {
		if (!stage_value(j, i))
			return false;
		argv[a++] = "--file";
		argv[a++] = j->value;
	}
	argv[a] = NULL;
	j->target = i;
	j->pid = spawn(argv, j->out, j->err);
	if (j->pid <= 0)
		return false;
	if (j->op == OP_GRANT || j->op == OP_REVOKE)
		grants[i].busy = true;
	else if (i != SIZE_MAX)
		secrets[i].busy = true;
	return true;
}

/* --- checks ------------------------------------------------------------------------------ */

/* Acknowledged operations and fetches since the last look at the audit log. */
struct acked {
	enum op op;
	size_t target;
	uint64_t version;
};

static struct acked acks[8192];
static size_t n_acks;

/* An acknowledged job is in the model at once: from then on the store must show it. */
static void apply_acked(const struct job *j)
{
	struct secret *s = j->target < N_SECRETS ? &secrets[j->target] : NULL;

	switch (j->op) {
	case OP_PUT:
		model_clear(s);
		model_set(s, 1, j->hash);
		break;
	case OP_ROTATE:
		model_set(s, j->version, j->hash);
		break;
	case OP_DESTROY:
		model_clear(s);
		break;
	case OP_GRANT:
	case OP_REVOKE:
		grants[j->target].present = j->op == OP_GRANT;
		break;
	default:
		break;
	}
	if (n_acks < ELEMENTSOF(acks))
		acks[n_acks++] = (struct acked){ .op = j->op,
			.target = j->target,
			.version = j->version };
}

/* A fetch that got 200: the version and the hash of the value it was given, read before the
 * slot's next fetch overwrites its body. */
static void read_fetch(struct job *j)
{
	_cleanup_json_ json_t *b = NULL;
	char body[4096];
	uint8_t *bin = NULL;
	size_t len = 0, n;
	int64_t ver = 0;

	n = read_file(j->body, body, sizeof(body));
	if (kura_json_load((uint8_t *)body, n, &b) < 0 ||
		kura_json_get_int(b, "version", 1, INT64_MAX, &ver) < 0 ||
		kura_json_get_b64(b, "value", &bin, &len) < 0) {
		st.fetch_bad++;
		note(st.first_fetch, "kill %u: a fetch of %s answered 200 with %.200s", st.kills,
			secrets[j->target].name, body);
		j->version = 0;
		return;
	}
	hash_of(bin, len, j->hash);
	sodium_memzero(bin, len);
	free(bin);
	j->version = (uint64_t)ver;
}

/* ... and once the round's unfinished writes are resolved: that is the value of a version the
 * secret had since the fetch began. */
static void check_fetch(const struct job *j)
{
	const struct secret *s = &secrets[j->target];

	if (!j->version)
		return;
	if (j->version < j->from_current || j->version > s->n ||
		memcmp(j->hash, s->hash[j->version - 1], HASH) != 0) {
		st.fetch_bad++;
		note(st.first_fetch,
			"kill %u: a fetch of %s got version %" PRIu64 " with a value "
			"it never had (current was %" PRIu64 " when it began)",
			st.kills, s->name, j->version, j->from_current);
	}
	if (n_acks < ELEMENTSOF(acks))
		acks[n_acks++] = (struct acked){ .op = OP_FETCH,
			.target = j->target,
			.version = j->version };
}

/* A job's process has ended with status: was it acknowledged, and with what? */
static void finish_job(struct job *j, int status)
{
	char out[256];
	char *c;

	j->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
	read_file(j->out, out, sizeof(out));
	if (j->op == OP_FETCH)
		j->status = strcmp(out, "200") == 0 ? 0 : strcmp(out, "503") == 0 ? 3 : 1;
	if (j->op == OP_PUT || j->op == OP_ROTATE) {
		c = strstr(out, ": version ");
		j->version = c ? strtoull(c + 10, NULL, 10) : 0;
		if (j->status == 0 && j->version == 0)
			j->status = 1; /* acknowledged without saying which version: a defect */
	}
	if (j->op == OP_FETCH && j->status == 0)
		read_fetch(j);
	if (j->op == OP_FETCH && j->status == 3)
		st.fetch_503++;
	if (j->status == 0)
		st.acked[j->op]++;
	else
		st.unacked[j->op]++;
	if (j->op == OP_GRANT || j->op == OP_REVOKE)
		grants[j->target].busy = false;
	else if (j->op != OP_KEY_ROTATE && j->op != OP_FETCH)
		secrets[j->target].busy = false;
	if (j->status == 0 && j->op != OP_FETCH)
		apply_acked(j);
}

/*
 * The store after a kill: every version of every secret opens; every secret is as the model
 * says (acknowledged jobs are in it), except the targets of the jobs that were in flight, which
 * may or may not have happened: those are resolved by what the store holds, and the model then
 * follows the store.
 */
static void check_store(struct job *const *flight, size_t n_flight, unsigned *ret_keks)
{
	struct kura_master_source m = { .kind = KURA_MASTER_FILE };
	struct kura_grant_list gl = { 0 };
	struct kura_secret_list list = { 0 };
	struct kura_key_status ks = { 0 };
	struct kura_err err = { 0 };
	struct kura_vault *v = NULL;
	const struct job *pending[N_SECRETS] = { 0 }, *gpending[N_GRANT] = { 0 };
	bool there[N_GRANT] = { 0 }, fetch_grant = false;
	double t0 = now();
	unsigned bad = st.store_bad;

	for (size_t k = 0; k < n_flight; k++) {
		if (flight[k]->op == OP_GRANT || flight[k]->op == OP_REVOKE)
			gpending[flight[k]->target] = flight[k];
		else if (flight[k]->op >= OP_PUT && flight[k]->op <= OP_DESTROY)
			pending[flight[k]->target] = flight[k];
	}
	if (kura_vault_open(state, &m, 0, &v, &err) < 0) {
		st.store_bad++;
		note(st.first_store, "kill %u: the store does not open: %s", st.kills, err.msg);
		return;
	}
	/* One snapshot for the lot: its locks are taken once, not per read. */
	(void)kura_store_read_begin(kura_vault_store(v));
	if (kura_secret_list(v, "", &list, &err) < 0) {
		st.store_bad++;
		note(st.first_store, "kill %u: the secrets do not list: %s", st.kills, err.msg);
	}
	for (size_t i = 0, at = 0; i < N_SECRETS; i++) {
		struct secret *s = &secrets[i];
		const struct job *j = pending[i];
		const struct kura_secret_info *info = NULL;
		uint8_t cur[HASH] = { 0 };
		bool present, same, done;

		/* The listing is sorted by name, as the secrets are numbered. */
		while (at < list.n && strcmp(list.items[at].name, s->name) < 0)
			at++;
		if (at < list.n && strcmp(list.items[at].name, s->name) == 0)
			info = &list.items[at];
		present = info != NULL;
		/* Every version opens (none is ever destroyed alone here: they run 1..latest), and
		 * those the model knows hold what was written. */
		for (uint64_t ver = 1; present && ver <= info->latest; ver++) {
			_cleanup_secbuf_ struct kura_secbuf *val = NULL;
			uint8_t h[HASH];

			if (kura_secret_get(v, s->name, ver, &val, NULL, &err) < 0) {
				st.store_bad++;
				note(st.first_store,
					"kill %u: %s version %" PRIu64 " does not open: %s",
					st.kills, s->name, ver, err.msg);
				continue;
			}
			hash_of(val->data, val->len, h);
			if (ver == info->current)
				memcpy(cur, h, HASH);
			else if (s->present && ver <= s->n &&
				memcmp(h, s->hash[ver - 1], HASH) != 0) {
				st.store_bad++;
				note(st.first_store,
					"kill %u: %s version %" PRIu64 " holds another "
					"value",
					st.kills, s->name, ver);
			}
		}
		same = present == s->present &&
			(!present ||
				(info->current == s->current &&
					memcmp(cur, s->hash[s->current - 1], HASH) == 0));
		if (!j) {
			if (!same) {
				st.store_bad++;
				note(st.first_store,
					"kill %u: %s is not as acknowledged (present %d, "
					"current %" PRIu64 "; want %d, %" PRIu64 ")",
					st.kills, s->name, present, present ? info->current : 0,
					s->present, s->current);
			}
		} else if (j->op == OP_PUT) {
			done = present && info->current == 1 && memcmp(cur, j->hash, HASH) == 0;
			if (!done && !same) {
				st.store_bad++;
				note(st.first_store,
					"kill %u: %s after an unfinished put: present %d", st.kills,
					s->name, present);
			} else if (done) {
				model_clear(s);
				model_set(s, 1, j->hash);
			}
		} else if (j->op == OP_ROTATE) {
			done = present && info->current == s->current + 1 &&
				memcmp(cur, j->hash, HASH) == 0;
			if (!done && !same) {
				st.store_bad++;
				note(st.first_store,
					"kill %u: %s after an unfinished rotate: current "
					"%" PRIu64 " (was %" PRIu64 ")",
					st.kills, s->name, present ? info->current : 0, s->current);
			} else if (done) {
				model_set(s, s->current + 1, j->hash);
			}
		} else if (j->op == OP_DESTROY) {
			if (present && !same) {
				st.store_bad++;
				note(st.first_store,
					"kill %u: %s after an unfinished destroy: current "
					"%" PRIu64 " (was %" PRIu64 ")",
					st.kills, s->name, info->current, s->current);
			} else if (!present) {
				model_clear(s);
			}
		}
	}
	if (list.n > 0 && strcmp(list.items[list.n - 1].name, secrets[N_SECRETS - 1].name) > 0) {
		st.store_bad++;
		note(st.first_store, "kill %u: a secret no one wrote: %s", st.kills,
			list.items[list.n - 1].name);
	}
	kura_secret_list_done(&list);
	kura_store_read_end(kura_vault_store(v));

	if (kura_grant_list(v, &gl, &err) < 0) {
		st.grant_bad++;
		note(st.first_grant, "kill %u: the grants do not read: %s", st.kills, err.msg);
	} else {
		for (size_t k = 0; k < gl.n; k++) {
			unsigned idx;

			if (strcmp(gl.items[k].pattern, "f/*") == 0 && gl.items[k].host &&
				gl.items[k].has_uid && gl.items[k].uid == 0)
				fetch_grant = true;
			else if (sscanf(gl.items[k].pattern, "g/%u", &idx) == 1 && idx < N_GRANT)
				there[idx] = true;
		}
		kura_grant_list_done(&gl);
		if (!fetch_grant) {
			st.grant_bad++;
			note(st.first_grant, "kill %u: the grant of f/* is gone", st.kills);
		}
		for (size_t g = 0; g < N_GRANT; g++) {
			if (!gpending[g] && there[g] != grants[g].present) {
				st.grant_bad++;
				note(st.first_grant,
					"kill %u: g/%02zu is %sgranted, not as acknowledged",
					st.kills, g, there[g] ? "" : "not ");
			}
			grants[g].present = there[g];
		}
	}
	if (kura_key_status(v, &ks, &err) == 0) {
		*ret_keks = (unsigned)ks.n_keks;
		kura_key_status_done(&ks);
	}
	kura_vault_close(v);
	if (st.store_bad > bad + 20)
		st.store_bad = bad + 20; /* one broken round must not drown the others */
	st.verify_s += now() - t0;
}

/* Where the audit check has read up to: the file, and the offset of its next whole line. */
static unsigned audit_file = 1;
static off_t audit_off;

static const char *const events[OP_KINDS] = {
	[OP_PUT] = "secret-put",
	[OP_ROTATE] = "secret-rotate",
	[OP_DESTROY] = "secret-destroy",
	[OP_GRANT] = "grant",
	[OP_REVOKE] = "revoke",
	[OP_KEY_ROTATE] = "key-rotate",
	[OP_FETCH] = "fetch",
};

/* Does record r (result ok) account for acknowledged job a? */
static bool records(const json_t *r, const struct acked *a)
{
	const char *ev = json_string_value(json_object_get(r, "event"));
	const char *sec = json_string_value(json_object_get(r, "secret"));
	const json_t *ver = json_object_get(r, "version");

	if (!ev || strcmp(ev, events[a->op]) != 0)
		return false;
	if (a->op == OP_GRANT || a->op == OP_REVOKE || a->op == OP_KEY_ROTATE)
		return true;
	if (!sec || strcmp(sec, secrets[a->target].name) != 0)
		return false;
	return !a->version ||
		(json_is_integer(ver) && (uint64_t)json_integer_value(ver) == a->version);
}

/* The records written since the last look: each acknowledged job has one (fail closed: kurad
 * answers only once its record is written), in the order they were acknowledged or later. */
static void check_records(void)
{
	bool found[ELEMENTSOF(acks)] = { 0 };

	for (;;) {
		char path[512];
		struct stat sb;
		char *buf, *p;
		size_t n;
		FILE *f;

		snprintf(path, sizeof(path), "%s/audit/audit-%06u.jsonl", state, audit_file);
		f = fopen(path, "re");
		if (!f)
			break;
		if (fstat(fileno(f), &sb) == 0 && sb.st_size > audit_off) {
			buf = malloc((size_t)(sb.st_size - audit_off) + 1);
			if (!buf)
				abort();
			fseeko(f, audit_off, SEEK_SET);
			n = fread(buf, 1, (size_t)(sb.st_size - audit_off), f);
			buf[n] = 0;
			/* Whole lines only: a torn tail is cut when kurad next starts. */
			for (p = buf; *p && strchr(p, '\n');) {
				char *nl = strchr(p, '\n');
				_cleanup_json_ json_t *r = NULL;
				const char *res;

				if (kura_json_load((uint8_t *)p, (size_t)(nl - p), &r) == 0) {
					st.records++;
					res = json_string_value(json_object_get(r, "result"));
					if (json_object_get(r, "detail") &&
						strcmp(json_string_value(json_object_get(r, "detail")) ?:
								"",
							"offline") == 0)
						st.offline++;
					for (size_t k = 0;
						res && strcmp(res, "ok") == 0 && k < n_acks; k++)
						if (!found[k] && records(r, &acks[k])) {
							found[k] = true;
							break;
						}
				}
				audit_off += nl + 1 - p;
				p = nl + 1;
			}
			free(buf);
		}
		fclose(f);
		snprintf(path, sizeof(path), "%s/audit/audit-%06u.jsonl", state, audit_file + 1);
		if (access(path, F_OK) < 0)
			break;
		audit_file++;
		audit_off = 0;
	}
	for (size_t k = 0; k < n_acks; k++) {
		if (found[k])
			continue;
		st.record_bad++;
		note(st.first_record, "kill %u: no audit record of an acknowledged %s %s", st.kills,
			op_names[acks[k].op],
			acks[k].op == OP_GRANT || acks[k].op == OP_REVOKE ||
					acks[k].op == OP_KEY_ROTATE ?
				"" :
				secrets[acks[k].target].name);
	}
	n_acks = 0;
}

/* kuractl audit verify --key on a copy of the log (kurad is running, if idle). */
static void verify_audit(void)
{
	char copy[512], src[512];
	char *cp[] = { "/bin/cp", "-a", src, copy, NULL };
	char *rm[] = { "/bin/rm", "-rf", copy, NULL };
	char *vf[] = { (char *)kuractl, "audit", "verify", "--key", audit_key, copy, NULL };
	int r;

	snprintf(src, sizeof(src), "%s/audit", state);
	snprintf(copy, sizeof(copy), "%s/audit-copy", dir);
	run(rm);
	r = run(cp);
	if (r == 0) {
		char out[512], msg[600];
		pid_t pid;

		snprintf(out, sizeof(out), "%s/verify.err", dir);
		pid = spawn(vf, NULL, out);
		r = pid > 0 ? wait_for(pid) : -1;
		r = r >= 0 && WIFEXITED(r) ? WEXITSTATUS(r) : 128;
		read_file(out, msg, sizeof(msg));
		if (r != 0)
			note(st.first_audit, "kill %u: kuractl audit verify exited %d: %s",
				st.kills, r, msg);
	}
	if (r != 0) {
		st.audit_bad++;
		note(st.first_audit, "kill %u: the audit log could not be copied", st.kills);
	}
	run(rm);
}

/* Did the kill tear an audit record (the newest file does not end with a newline)? */
static bool torn_tail(void)
{
	char path[512], c = '\n';
	int fd;

	last_audit_file(path);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	if (lseek(fd, -1, SEEK_END) >= 0 && read(fd, &c, 1) != 1)
		c = '\n';
	close(fd);
	return c != '\n';
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Did the kill land inside a transaction: does the write-ahead log end with frames of this
 * log generation (its salts) after the last commit frame? */
static bool uncommitted_frames(void)
{
	uint8_t hdr[32], fh[24];
	char path[512];
	bool tail = false;
	uint32_t page;
	off_t off;
	int fd;

	snprintf(path, sizeof(path), "%s/kura.db-wal", state);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	if (pread(fd, hdr, sizeof(hdr), 0) == (ssize_t)sizeof(hdr) &&
		(page = be32(hdr + 8)) >= 512 && page <= 65536) {
		for (off = 32; pread(fd, fh, sizeof(fh), off) == (ssize_t)sizeof(fh) &&
			memcmp(fh + 8, hdr + 16, 8) == 0;
			off += 24 + (off_t)page)
			tail = be32(fh + 4) == 0; /* no database size: not a commit frame */
	}
	close(fd);
	return tail;
}

/*
 * A SIGKILL does not tear a record this small (a write(2) of under a page is not cut short by a
 * fatal signal), but a power cut can: every 8th kill leaves the first half of a record at the
 * end of the log, as one would, and kurad must cut it when it starts.
 */
static bool plant_torn_tail(void)
{
	char path[512], buf[2048];
	struct stat sb;
	char *start;
	size_t n;
	FILE *f;

	last_audit_file(path);
	f = fopen(path, "r+e");
	if (!f)
		return false;
	if (fstat(fileno(f), &sb) < 0 || sb.st_size < 2) {
		fclose(f);
		return false;
	}
	n = (size_t)(sb.st_size < (off_t)sizeof(buf) ? sb.st_size : (off_t)sizeof(buf) - 1);
	fseeko(f, sb.st_size - (off_t)n, SEEK_SET);
	n = fread(buf, 1, n, f);
	buf[n > 0 ? n - 1 : 0] = 0; /* the last record, without its newline */
	start = strrchr(buf, '\n');
	start = start ? start + 1 : buf;
	fseeko(f, 0, SEEK_END);
	fwrite(start, 1, strlen(start) / 2, f);
	return fclose(f) == 0;
}

/* --- setup -------------------------------------------------------------------------------- */

static int populate(void)
{
	struct kura_master_source m = { .kind = KURA_MASTER_FILE };
	_cleanup_secbuf_ struct kura_secbuf *ak = NULL;
	struct kura_init_opts o = { .store_flags = KURA_STORE_NOSYNC, .ret_audit_key = &ak };
	struct kura_err err = { 0 };
	struct kura_vault *v = NULL;
	char b64[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL)];
	FILE *f;
	int r;

	for (size_t i = 0; i < N_SECRETS; i++) {
		if (i < N_BULK)
			snprintf(secrets[i].name, sizeof(secrets[i].name), "c/%04zu", i);
		else if (i < N_BULK + N_FETCH)
			snprintf(secrets[i].name, sizeof(secrets[i].name), "f/%zu", i - N_BULK);
		else
			snprintf(secrets[i].name, sizeof(secrets[i].name), "w/%02zu",
				i - N_BULK - N_FETCH);
	}
	r = kura_vault_init(state, &o, &err);
	if (r == 0)
		r = kura_vault_open(state, &m, KURA_STORE_NOSYNC, &v, &err);
	for (size_t i = 0; i < N_BULK + N_FETCH && r == 0; i++) {
		_cleanup_secbuf_ struct kura_secbuf *val = NULL;
		uint8_t h[HASH];

		r = value_of(i, 0, &val);
		if (r == 0)
			r = kura_secret_put(v, secrets[i].name, val, NULL, &err);
		if (r == 0) {
			hash_of(val->data, val->len, h);
			model_set(&secrets[i], 1, h);
		}
	}
	kura_vault_close(v);
	if (r < 0) {
		tap_diag("populate: %s (%s)", err.msg, strerror(-r));
		return r;
	}
	sodium_bin2base64(b64, sizeof(b64), ak->data, ak->len, sodium_base64_VARIANT_ORIGINAL);
	f = fopen(audit_key, "we");
	if (!f || fprintf(f, "%s\n", b64) < 0 || fclose(f) != 0)
		return -EIO;
	char *g[] = { (char *)kuractl, "--state-dir", state, "--offline", "grant", "f/*", "--host",
		"--uid", "0", NULL };
	return run(g) == 0 ? 0 : -EIO;
}

/* One round: clients for a random while, then SIGKILL, then every check. false when kurad does
 * not come back. */
static bool round_once(unsigned *keks, unsigned *unfinished_key_rotates)
{
	static struct job done[4096];
	struct job jobs[4];
	struct job *flight[4];
	bool busy[4] = { 0 };
	size_t n_done = 0, n_flight = 0;
	/* From 20 to 320 ms of clients: short rounds end in the first requests after a start,
	 * long ones anywhere; a key rotate over 3000 secrets takes tens of ms. */
	double t_kill = now() + (20 + pick(300)) / 1000.0;
	char log[4096];
	pid_t pid;
	int status;

	while (now() < t_kill) {
		for (int s = 0; s < 4; s++)
			if (!busy[s])
				busy[s] = start_job(&jobs[s], s);
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
			for (int s = 0; s < 4; s++)
				if (busy[s] && jobs[s].pid == pid) {
					finish_job(&jobs[s], status);
					/* A rotation refused midway may have made its KEK. */
					if (jobs[s].op == OP_KEY_ROTATE)
						*unfinished_key_rotates = jobs[s].status == 0 ?
							0 :
							*unfinished_key_rotates + 1;
					if (jobs[s].op == OP_FETCH && jobs[s].status == 0 &&
						n_done < ELEMENTSOF(done))
						done[n_done++] = jobs[s];
					busy[s] = false;
				}
		sleep_ms(0.5);
	}
	for (int s = 0; s < 4; s++)
		if (busy[s])
			st.in_flight[jobs[s].op]++;
	kill_kurad();
	/* What was in flight now fails, or had just been answered, or (if it had not reached
	 * kurad yet) finds none and works offline: done or not, the store decides below. */
	for (int s = 0; s < 4; s++) {
		if (!busy[s])
			continue;
		finish_job(&jobs[s], wait_for(jobs[s].pid));
		if (jobs[s].status == 0)
			st.flight_acked[jobs[s].op]++;
		else
			st.flight_failed[jobs[s].op]++;
		if (jobs[s].op == OP_KEY_ROTATE && jobs[s].status != 0)
			(*unfinished_key_rotates)++;
		else if (jobs[s].op == OP_KEY_ROTATE)
			*unfinished_key_rotates = 0;
		if (jobs[s].status != 0)
			flight[n_flight++] = &jobs[s];
		else if (jobs[s].op == OP_FETCH && n_done < ELEMENTSOF(done))
			done[n_done++] = jobs[s];
	}
	if (uncommitted_frames())
		st.mid_txn++;
	if (torn_tail())
		st.torn_tails++;
	else if (st.kills % 8 == 0 && plant_torn_tail())
		st.torn_planted++;
	check_store(flight, n_flight, keks);
	if (*keks > 1 + *unfinished_key_rotates) {
		st.kek_bad++;
		note(st.first_kek, "kill %u: %u KEKs, with %u unfinished key rotates", st.kills,
			*keks, *unfinished_key_rotates);
	}
	if (*keks > 1)
		st.keks_extra++;
	for (size_t k = 0; k < n_done; k++)
		check_fetch(&done[k]);

	if (!start_kurad()) {
		st.restarts_failed++;
		char *why;

		read_file(kurad_log, log, sizeof(log));
		why = strstr(log, "kurad: error: ");
		for (char *next = why; next; next = strstr(next + 1, "kurad: error: "))
			why = next;
		note(st.first_restart, "kill %u: kurad does not start again: %.300s", st.kills,
			why ? why : "(no error logged)");
		return false;
	}
	check_records();
	verify_audit();
	return true;
}

int main(int argc, char **argv)
{
	unsigned kills = 200, keks = 1, unfinished = 0;
	char path[512], tmpl[] = "/tmp/kura-crash-XXXXXX";
	double t0, t_total;
	const char *e;
	FILE *f;

	if (argc != 3 || kura_keys_init() < 0) {
		fprintf(stderr,
			"usage: test-crash KURAD KURACTL (env: KURA_CRASH_KILLS, "
			"KURA_CRASH_SEED)\n");
		return 2;
	}
	kura_json_init();
	signal(SIGPIPE, SIG_IGN);
	kurad_bin = argv[1];
	kuractl = argv[2];
	if (getuid() != 0) {
		printf("1..0 # SKIP kurad runs as root\n");
		return 0;
	}
	if (access("/usr/bin/curl", X_OK) < 0) {
		printf("1..0 # SKIP curl is needed (/usr/bin/curl)\n");
		return 0;
	}
	e = getenv("KURA_CRASH_KILLS");
	if (e && strtoul(e, NULL, 10) > 0)
		kills = (unsigned)strtoul(e, NULL, 10);
	e = getenv("KURA_CRASH_SEED");
	rng = e ? strtoull(e, NULL, 10) : ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid();
	tap_diag("seed %" PRIu64 " (KURA_CRASH_SEED repeats the schedule), %u kills", rng, kills);
	randombytes_buf(seed, sizeof(seed));
	/* On tmpfs when there is one: a SIGKILL loses nothing the kernel holds either way, and
	 * fsync costs nothing there, so 200 rounds fit in CI. */
	if (!mkdtemp(dir)) {
		if (!mkdtemp(tmpl))
			return 99;
		memcpy(dir, tmpl, sizeof(tmpl));
	}
	snprintf(state, sizeof(state), "%s/state", dir);
	snprintf(run_dir, sizeof(run_dir), "%s/run", dir);
	if (snprintf(admin_sock, sizeof(admin_sock), "%s/admin.sock", run_dir) >=
			(int)sizeof(admin_sock) ||
		snprintf(workload_sock, sizeof(workload_sock), "%s/workload.sock", run_dir) >=
			(int)sizeof(workload_sock))
		return 99;
	snprintf(audit_key, sizeof(audit_key), "%s/audit.key", dir);
	snprintf(kurad_log, sizeof(kurad_log), "%s/kurad.log", dir);
	snprintf(path, sizeof(path), "%s/kurad.conf", dir);
	f = fopen(path, "we");
	/* Key epochs of 50 records and 1 MiB files: kills land in key evolution and file
	 * rotation too. */
	if (!f ||
		fputs("rate = 1000000\nburst = 1000000\naudit-epoch-records = 50\n"
		      "audit-max-file-mb = 1\n",
			f) < 0 ||
		fclose(f) != 0)
		return 99;

	t0 = now();
	if (!tap_ok(populate() == 0, "%u secrets stored, %u of them granted to uid 0 on the host",
		    N_BULK + N_FETCH, N_FETCH))
		goto out;
	tap_diag("populated in %.1f s", now() - t0);
	if (!tap_ok(start_kurad(), "kurad starts on the store")) {
		read_file(kurad_log, path, sizeof(path));
		tap_diag("%s", path);
		goto out;
	}
	check_records();

	t_total = now();
	for (st.kills = 1; st.kills <= kills; st.kills++)
		if (!round_once(&keks, &unfinished))
			break;
	if (st.kills > kills)
		st.kills = kills;
	t_total = now() - t_total;

	tap_ok(st.restarts_failed == 0,
		"kurad started again after each of %u SIGKILLs, cutting "
		"the torn audit record a power cut would leave (%u of them)",
		st.kills, st.torn_tails + st.torn_planted);
	if (st.first_restart[0])
		tap_diag("%s", st.first_restart);
	tap_ok(st.store_bad == 0,
		"after each kill every acknowledged write is in the store and "
		"every version of the %u secrets opens with a value it may hold",
		N_SECRETS);
	if (st.first_store[0])
		tap_diag("%u bad: %s", st.store_bad, st.first_store);
	tap_ok(st.grant_bad == 0, "after each kill the grants are as acknowledged");
	if (st.first_grant[0])
		tap_diag("%u bad: %s", st.grant_bad, st.first_grant);
	tap_ok(st.kek_bad == 0,
		"at most one extra KEK per unfinished key rotate (%u kills left one "
		"half done; the next rotate finished it)",
		st.keks_extra);
	if (st.first_kek[0])
		tap_diag("%s", st.first_kek);
	tap_ok(st.fetch_bad == 0,
		"every acknowledged fetch (%u) got the value of a version the "
		"secret held once the fetch began",
		st.acked[OP_FETCH]);
	if (st.first_fetch[0])
		tap_diag("%u bad: %s", st.fetch_bad, st.first_fetch);
	tap_ok(st.record_bad == 0,
		"every acknowledged operation and fetch has its audit record "
		"(%u records read)",
		st.records);
	if (st.first_record[0])
		tap_diag("%u missing: %s", st.record_bad, st.first_record);
	tap_ok(st.audit_bad == 0, "kuractl audit verify --key passes after every restart");
	if (st.first_audit[0])
		tap_diag("%u bad: %s", st.audit_bad, st.first_audit);

	/* A clean end: a key rotate leaves one KEK, kurad stops cleanly, the chain verifies. */
	{
		char auditdir[512];
		char *kr[] = { (char *)kuractl, "--state-dir", state, "--run-dir", run_dir, "key",
			"rotate", NULL };
		char *vf[] = { (char *)kuractl, "audit", "verify", "--key", audit_key, auditdir,
			NULL };
		int rotated = -1, status = -1;

		snprintf(auditdir, sizeof(auditdir), "%s/audit", state);
		if (kurad > 0) {
			rotated = run(kr);
			kill(kurad, SIGTERM);
			status = wait_for(kurad);
			kurad = -1;
		}
		check_store(NULL, 0, &keks);
		tap_ok(rotated == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0 && keks == 1 &&
				run(vf) == 0,
			"at the end a key rotate leaves one KEK, kurad stops cleanly, and the whole "
			"chain verifies");
	}

	tap_diag("%u kills in %.1f s (%.0f ms a round), of which store checks %.1f s", st.kills,
		t_total, 1000.0 * t_total / (st.kills ? st.kills : 1), st.verify_s);
	tap_diag("in flight at the kills (failed with kurad / done all the same):");
	for (int o = OP_PUT; o < OP_KINDS; o++)
		tap_diag("  %-15s %4u (%u / %u)", op_names[o], st.in_flight[o], st.flight_failed[o],
			st.flight_acked[o]);
	tap_diag("kills inside a store transaction (frames after the last commit in the "
		 "write-ahead log): %u; inside a key rotation (its new KEK committed, the rewrap "
		 "not): %u; that tore an audit record: %u (and %u torn by hand, as a power cut "
		 "would); operations a kuractl did offline, having found kurad just killed: %u",
		st.mid_txn, st.keks_extra, st.torn_tails, st.torn_planted, st.offline);
	for (int o = OP_PUT; o < OP_KINDS; o++)
		tap_diag("%-15s acknowledged %5u, not %4u", op_names[o], st.acked[o],
			st.unacked[o]);
	tap_diag("fetches refused with 503: %u", st.fetch_503);
out:
	kill_kurad();
	tap_rmtree(dir);
	return tap_done();
}

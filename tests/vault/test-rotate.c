/* Key rotation against the real kuractl: killed with SIGKILL at random moments over 10k
 * secrets (every secret must still open with its value), and a full rotation of 100k. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "json.h"
#include "tap.h"
#include "vault.h"

static char dir[] = "/tmp/kura-test-rotate-XXXXXX";
static const char *kuractl;
static uint8_t seed[crypto_generichash_KEYBYTES];

/* Value i is derived from a per-run seed, so nothing needs to be kept to check it. */
static int value_of(size_t i, struct kura_secbuf **ret)
{
	uint8_t idx[8];
	size_t len = 1 + i % 64;
	int r;

	memcpy(idx, &(uint64_t){ i }, sizeof(idx));
	r = kura_secbuf_new(len, ret);
	if (r < 0)
		return r;
	crypto_generichash((*ret)->data, len, idx, sizeof(idx), seed, sizeof(seed));
	(*ret)->len = len;
	return 0;
}

static void name_of(size_t i, char name[static 32])
{
	snprintf(name, 32, "app/%03zu/s%06zu", i % 100, i);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int populate(size_t n)
{
	struct kura_master_source m = { .kind = KURA_MASTER_FILE };
	_cleanup_secbuf_ struct kura_secbuf *audit_key = NULL;
	/* With its audit log, as kuractl init makes it: kuractl records the rotation there. */
	struct kura_init_opts o = { .store_flags = KURA_STORE_NOSYNC, .ret_audit_key = &audit_key };
	struct kura_err err = { 0 };
	struct kura_vault *v = NULL;
	int r;

	r = kura_vault_init(dir, &o, &err);
	if (r == 0)
		r = kura_vault_open(dir, &m, KURA_STORE_NOSYNC, &v, &err);
	for (size_t i = 0; i < n && r == 0; i++) {
		_cleanup_secbuf_ struct kura_secbuf *val = NULL;
		char name[32];

		name_of(i, name);
		r = value_of(i, &val);
		if (r == 0)
			r = kura_secret_put(v, name, val, NULL, &err);
	}
	if (r < 0)
		tap_diag("populate: %s (%s)", err.msg, strerror(-r));
	kura_vault_close(v);
	return r;
}

/* Every secret opens with its own value. Returns how many did not. */
static size_t verify(size_t n, size_t *ret_keks)
{
	struct kura_master_source m = { .kind = KURA_MASTER_FILE };
	struct kura_err err = { 0 };
	struct kura_vault *v = NULL;
	struct kura_key_status st;
	size_t bad = 0;

	if (kura_vault_open(dir, &m, 0, &v, &err) < 0) {
		tap_diag("open: %s", err.msg);
		return n;
	}
	for (size_t i = 0; i < n; i++) {
		_cleanup_secbuf_ struct kura_secbuf *want = NULL, *got = NULL;
		char name[32];

		name_of(i, name);
		value_of(i, &want);
		if (kura_secret_get(v, name, 0, &got, NULL, &err) < 0 ||
			!kura_secbuf_equal(want, got)) {
			if (bad++ < 3)
				tap_diag("%s: %s", name, err.msg);
		}
	}
	if (kura_key_status(v, &st, &err) == 0) {
		*ret_keks = st.n_keks;
		if (st.n_versions != n)
			bad += n;
		kura_key_status_done(&st);
	}
	kura_vault_close(v);
	return bad;
}

/* Start `kuractl key rotate`; the child's stdout and stderr go to /dev/null. */
static pid_t start_rotate(void)
{
	pid_t pid = fork();

	if (pid == 0) {
		if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr))
			_exit(127);
		execl(kuractl, kuractl, "--state-dir", dir, "key", "rotate", (char *)NULL);
		_exit(127);
	}
	return pid;
}

static int wait_status(pid_t pid)
{
	int st;

	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return st;
}

static void crash(void)
{
	const size_t n = 10000;
	size_t keks = 0, finished = 0;
	double t0, full;
	int st;

	tap_is(populate(n), 0, "10k secrets stored");
	t0 = now();
	st = wait_status(start_rotate());
	full = now() - t0;
	tap_ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "an uninterrupted key rotate succeeds");
	tap_diag("key rotate over %zu secrets took %.2f s", n, full);

	for (int k = 0; k < 20; k++) {
		/* Kill anywhere from the start to a little past the usual end. */
		useconds_t at = (useconds_t)(randombytes_uniform(1000) * full * 1.1 * 1000.0);
		pid_t pid = start_rotate();
		size_t bad;

		usleep(at);
		kill(pid, SIGKILL);
		st = wait_status(pid);
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
			finished++;
		bad = verify(n, &keks);
		tap_ok(bad == 0,
			"kill %d at %.0f ms (%s): every secret opens with its value "
			"(%zu KEKs)",
			k + 1, at / 1000.0, WIFSIGNALED(st) ? "killed" : "had finished", keks);
	}
	tap_diag("%zu of 20 runs had finished before the kill", finished);
	st = wait_status(start_rotate());
	tap_ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "a final key rotate succeeds");
	tap_ok(verify(n, &keks) == 0 && keks == 1,
		"after it every secret opens and exactly one KEK remains");
}

static void scale(void)
{
	const size_t n = 100000;
	size_t keks = 0;
	double t0;
	int st;

	t0 = now();
	tap_is(populate(n), 0, "100k secrets stored");
	tap_diag("stored %zu secrets in %.1f s", n, now() - t0);
	t0 = now();
	st = wait_status(start_rotate());
	tap_ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "kuractl key rotate over 100k secrets");
	tap_diag("key rotate over %zu secrets took %.1f s", n, now() - t0);
	tap_ok(verify(n, &keks) == 0 && keks == 1,
		"every one of 100k secrets opens with its value under the single new KEK");
}

int main(int argc, char **argv)
{
	if (argc != 3 || kura_keys_init() < 0) {
		fprintf(stderr, "usage: test-rotate KURACTL crash|scale\n");
		return 2;
	}
	kura_json_init();
	kuractl = argv[1];
	randombytes_buf(seed, sizeof(seed));
	if (!mkdtemp(dir))
		return 99;
	if (strcmp(argv[2], "crash") == 0)
		crash();
	else
		scale();
	tap_rmtree(dir);
	return tap_done();
}

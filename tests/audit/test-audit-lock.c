/* The audit log's bounded wait: a writer stuck while it holds the log (here, a tap that does not
 * return, standing in for a write(2) or fsync(2) on a hung disk) must not hang everyone else.
 * Other appends give up with -ETIMEDOUT after lock_ms, so kurad can answer 503 in bounded time;
 * once the stuck writer returns, the chain goes on and verifies. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "json.h"
#include "tap.h"

static char root[] = "/tmp/kura-test-audit-lock-XXXXXX";
static pthread_mutex_t gate = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static bool stuck_inside, release_stuck;
static unsigned taps;

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Called under the audit lock: the first call with "stall" in the line blocks until released. */
static void tap(const char *line, size_t len, uint64_t seq, const uint8_t mac[KURA_AUDIT_MAC_BYTES],
	bool notable, void *userdata)
{
	(void)seq;
	(void)mac;
	(void)notable;
	(void)userdata;
	pthread_mutex_lock(&gate);
	taps++;
	if (memmem(line, len, "stall", 5)) {
		stuck_inside = true;
		pthread_cond_broadcast(&gate_cond);
		while (!release_stuck)
			pthread_cond_wait(&gate_cond, &gate);
	}
	pthread_mutex_unlock(&gate);
}

static int append(struct kura_audit *a, const char *event)
{
	json_t *f = json_pack("{s:s, s:s}", "event", event, "result", "ok");
	int r = kura_audit_append(a, f, NULL);

	json_decref(f);
	return r;
}

static void *stuck_writer(void *userdata)
{
	return (void *)(intptr_t)append(userdata, "stall");
}

int main(void)
{
	struct kura_audit_opts o = KURA_AUDIT_OPTS_DEFAULT;
	struct kura_secbuf *k0 = NULL;
	struct kura_audit_verdict v;
	struct kura_audit *a = NULL, *b = NULL;
	char dir[600];
	pthread_t t;
	void *res;
	double t0, ms;
	int r;

	if (kura_keys_init() < 0 || !mkdtemp(root))
		return 1;
	kura_json_init();
	snprintf(dir, sizeof(dir), "%s/log", root);
	tap_is(kura_audit_create(dir, &k0), 0, "create");
	o.fsync = false;
	o.lock_ms = 300;
	tap_is(kura_audit_open(dir, &o, &a), 0, "open with lock_ms 300");
	kura_audit_set_tap(a, tap, NULL);
	tap_is(append(a, "before"), 0, "an append while nobody is stuck");

	pthread_create(&t, NULL, stuck_writer, a);
	pthread_mutex_lock(&gate);
	while (!stuck_inside)
		pthread_cond_wait(&gate_cond, &gate);
	pthread_mutex_unlock(&gate);

	t0 = now_ms();
	r = append(a, "waiting");
	ms = now_ms() - t0;
	tap_is(r, -ETIMEDOUT, "an append behind a stuck writer gives up with -ETIMEDOUT");
	tap_ok(ms >= 250 && ms < 2000, "after about lock_ms (%.0f ms)", ms);
	t0 = now_ms();
	r = kura_audit_tick(a);
	ms = now_ms() - t0;
	tap_ok(r == -ETIMEDOUT && ms < 2000, "so does the epoch timer (%d, %.0f ms)", r, ms);

	/* Another process cannot take the log meanwhile, and says so within its own bound. */
	o.open_wait_ms = 200;
	t0 = now_ms();
	r = kura_audit_open(dir, &o, &b);
	ms = now_ms() - t0;
	tap_ok(r == -EBUSY && ms >= 150 && ms < 2000,
		"a second opener waits open_wait_ms, then -EBUSY (%d, %.0f ms)", r, ms);

	pthread_mutex_lock(&gate);
	release_stuck = true;
	pthread_cond_broadcast(&gate_cond);
	pthread_mutex_unlock(&gate);
	pthread_join(t, &res);
	tap_is((intptr_t)res, 0, "the stuck writer finishes its record when released");
	tap_is(append(a, "after"), 0, "appends work again");
	kura_audit_close(a);

	tap_is(kura_audit_verify(dir, k0, NULL, &v), 0, "verify runs");
	tap_ok(v.fault == KURA_AUDIT_OK && v.good == 3,
		"the chain is whole: before, stall, after (%s, %llu records)",
		kura_audit_fault_name(v.fault), (unsigned long long)v.good);
	tap_is(taps, 3, "the tap saw exactly the records written");

	kura_secbuf_free(k0);
	tap_rmtree(root);
	return tap_done();
}

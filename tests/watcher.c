/* A runtime's events followed from a thread, for the tests of the runtime client and of the
 * net process (tests/identity/test-runtime.c, tests/kurad/test-net.c). No secrets. */
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "runtime.h"
#include "watcher.h"

static void on_event(const char *id, const char *action, void *userdata)
{
	struct harness_watcher *w = userdata;

	pthread_mutex_lock(&w->lock);
	if (w->n < sizeof(w->ev) / sizeof(w->ev[0])) {
		snprintf(w->ev[w->n].id, sizeof(w->ev[w->n].id), "%s", id);
		snprintf(w->ev[w->n].action, sizeof(w->ev[w->n].action), "%s", action);
		w->n++;
	}
	pthread_mutex_unlock(&w->lock);
}

static void *watch_thread(void *arg)
{
	struct harness_watcher *w = arg;

	w->rc = kura_runtime_watch(w->rt, on_event, w, &w->stop);
	w->returned_at = harness_now_ms();
	return NULL;
}

void harness_watcher_start(struct harness_watcher *w, struct kura_runtime *rt)
{
	memset(w, 0, sizeof(*w));
	w->rt = rt;
	w->rc = 1;
	pthread_mutex_init(&w->lock, NULL);
	pthread_create(&w->th, NULL, watch_thread, w);
}

bool harness_has_event(struct harness_watcher *w, const char *id, const char *action)
{
	bool found = false;

	pthread_mutex_lock(&w->lock);
	for (size_t i = 0; i < w->n && !found; i++)
		found = (!id || !strcmp(w->ev[i].id, id)) && !strcmp(w->ev[i].action, action);
	pthread_mutex_unlock(&w->lock);
	return found;
}

bool harness_wait_event(struct harness_watcher *w, const char *id, const char *action, int64_t ms)
{
	int64_t t0 = harness_now_ms();

	while (harness_now_ms() - t0 < ms) {
		if (harness_has_event(w, id, action))
			return true;
		harness_sleep_ms(20);
	}
	return false;
}

int64_t harness_watcher_stop(struct harness_watcher *w)
{
	int64_t t0 = harness_now_ms();

	w->stop = true;
	pthread_join(w->th, NULL);
	pthread_mutex_destroy(&w->lock);
	return w->returned_at - t0;
}

void harness_watcher_dump(struct harness_watcher *w, const char *what)
{
	for (size_t i = 0; i < w->n; i++)
		harness_diag("%s event: %.12s %s", what, w->ev[i].id, w->ev[i].action);
}

/* A runtime's events followed from a thread (kura_runtime_watch), every one kept, for tests that
 * wait for a container's event. No secrets. */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kura_runtime;

struct harness_watcher {
	struct kura_runtime *rt;
	volatile bool stop;
	pthread_t th;
	pthread_mutex_t lock;
	struct {
		char id[65];
		char action[65];
	} ev[512]; /* the first 512 */
	size_t n;
	int rc;              /* what watch returned (1 while it runs) */
	int64_t returned_at; /* and when */
};

void harness_watcher_start(struct harness_watcher *w, struct kura_runtime *rt);
/* Whether an event (id NULL: of any container) with that action came; or comes within ms. */
bool harness_has_event(struct harness_watcher *w, const char *id, const char *action);
bool harness_wait_event(struct harness_watcher *w, const char *id, const char *action, int64_t ms);
/* Set stop and join: the milliseconds watch took to return. */
int64_t harness_watcher_stop(struct harness_watcher *w);
/* Each event as a "# " line. */
void harness_watcher_dump(struct harness_watcher *w, const char *what);

/* A client of the container runtime's API (Docker Engine API over a Unix socket, which Podman
 * serves too): what a container is, and the event stream that says when that changes. No secrets.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Bounds on what we take from a runtime's answer; anything past them is refused (-EPROTO). */
#define KURA_RUNTIME_MAX_NAME 256
#define KURA_RUNTIME_MAX_LABELS 256
#define KURA_RUNTIME_MAX_LABEL 4096 /* bytes, each of key and value */
#define KURA_RUNTIME_MAX_DIGESTS 64
#define KURA_RUNTIME_MAX_BODY (1024 * 1024)
#define KURA_RUNTIME_MAX_EVENT (64 * 1024)
#define KURA_RUNTIME_MAX_PATH 1000 /* a request's path and query */

/* A connection description, immutable once made: any number of threads may call
 * kura_runtime_inspect() and kura_runtime_watch() on one of these at the same time, because each
 * call makes its own libcurl handle and connection (a connect over a Unix socket costs tens of
 * microseconds; sharing handles would need locks around every request). */
struct kura_runtime;

/* Labels as key/value pairs, keys unique and non-empty, each of key and value at most
 * KURA_RUNTIME_MAX_LABEL bytes with no NUL, at most KURA_RUNTIME_MAX_LABELS pairs. */
struct kura_labels {
	char **keys;
	char **values;
	size_t n;
};

/* What the runtime says about a container. Every string has been checked: id is 64 lowercase
 * hex, image_id is "sha256:" plus 64 lowercase hex (the immutable image ID, never a tag), name
 * has no leading '/' and matches [A-Za-z0-9][A-Za-z0-9_.-]*, each repo digest is
 * "<repository>@sha256:<64 hex>". pid is the init process's pid in the host's pid namespace as
 * the runtime reports it, 0 when not running.
 *
 * Labels: the runtimes' Config.Labels merges the image's labels (which its author chose) into
 * those given when the container was created. From kura_runtime_inspect(), `labels` are the
 * container's own: Config.Labels minus every pair (key and value) the image also has, so a
 * run label that repeats an image label exactly counts as the image's; `image_labels` are the
 * image's Config.Labels. From kura_runtime_parse_container() alone, `labels` are Config.Labels
 * as the runtime merged them and `image_labels` is empty. */
struct kura_container {
	char *id;
	char *name;
	char *image_id;
	char **repo_digests;
	size_t n_digests;
	struct kura_labels labels;
	struct kura_labels image_labels;
	bool running;
	pid_t pid;
};

/* What the runtime says about an image: id "sha256:" plus 64 lowercase hex, repo digests and
 * Config.Labels checked as for a container. */
struct kura_image {
	char *id;
	char **repo_digests;
	size_t n_digests;
	struct kura_labels labels;
};

/* Initialise libcurl. Call once at start-up, before any thread exists (curl_global_init is not
 * thread-safe) and before any other kura_runtime_* call. -EIO if libcurl refuses. */
int kura_runtime_global_init(void);

/* A runtime called `name` ("docker", "podman": 1-32 of [a-z0-9_-]) reached at `endpoint`, which
 * must be "unix:" followed by an absolute socket path that fits in sun_path. Nothing is
 * connected yet. -EINVAL for anything else, -ENOMEM. */
int kura_runtime_new(const char *name, const char *endpoint, struct kura_runtime **ret);

/*
 * How a runtime made by kura_runtime_new_remote() reaches its socket: another process (kurad's
 * net process, broker/kurad/net.c) does the I/O and hands back the bytes; every parser stays
 * here, so inspect, find and watch behave as they do over a direct connection.
 *
 * get: one GET of path on runtime `index`, within deadline (kura_clock_ms()): the status and the
 *      body (malloc'd, NUL-terminated; len without the NUL), or -errno as the direct client
 *      gives them (-ETIMEDOUT, -EHOSTDOWN, -ECONNREFUSED, -ECONNRESET, -EMSGSIZE, -EPROTO, -EIO).
 * stream: as kura_runtime_stream(), on runtime `index`.
 */
struct kura_runtime_transport {
	int (*get)(void *ctx, unsigned index, const char *path, int64_t deadline, long *ret_status,
		char **ret_body, size_t *ret_len);
	int (*stream)(void *ctx, unsigned index, const char *path,
		int (*chunk)(const char *p, size_t n, void *ud), bool (*stopped)(void *ud),
		void *ud);
};

/* A runtime called `name` whose requests go through tp (with ctx and index passed on). ctx
 * must outlive it. -EINVAL, -ENOMEM. */
int kura_runtime_new_remote(const char *name, const struct kura_runtime_transport *tp, void *ctx,
	unsigned index, struct kura_runtime **ret);

void kura_runtime_free(struct kura_runtime *rt);

/* The name given to kura_runtime_new(). */
const char *kura_runtime_name(const struct kura_runtime *rt);

/* True if s is a full container ID as runtimes write it: exactly 64 lowercase hex digits. */
bool kura_runtime_id_valid(const char *s);

/*
 * Ask the runtime about the container with full ID `id` (64 lowercase hex; anything else is
 * -EINVAL before any request). Two requests: the container, then its image (for the repo
 * digests and the image's labels). Both together take at most timeout_ms, connecting included.
 *
 * Errors: -EINVAL (bad id or timeout_ms 0), -ENOENT (the runtime does not know the container),
 * -ETIMEDOUT, -EHOSTDOWN (no socket at the path), -ECONNREFUSED (nobody listening, or not
 * allowed to connect), -ECONNRESET (connection closed before a whole answer), -EMSGSIZE (an
 * answer over KURA_RUNTIME_MAX_BODY; we stop reading there), -EPROTO (not HTTP, not the JSON we
 * expect, a field missing or of the wrong type or form, a limit above exceeded, or an Id other
 * than the one asked), -EIO (the runtime answered with a 5xx error), -ENOMEM.
 *
 * An image the runtime no longer knows (404 on the second request: removed with --force under a
 * running container) gives no repo digests and no labels of either kind rather than an error:
 * the image ID still stands, Config.Labels can no longer be told apart, and fewer digests and
 * labels can only match fewer grants. Any other failure of the image request fails the call as
 * a failure of the container request would.
 */
int kura_runtime_inspect(struct kura_runtime *rt, const char *id, unsigned timeout_ms,
	struct kura_container **ret);

/*
 * The pure parsers of the two answers kura_runtime_inspect() reads, exposed for the fuzz
 * targets: `json` (len bytes, no NUL needed) is the body of GET /containers/{id}/json or
 * GET /images/{id}/json. Container: Id, Name ("/name"), Image ("sha256:..."; Config.Image is
 * the tag the user typed and is never read), Config.Labels (object or null, present),
 * State.Running, State.Pid. Image: Id, RepoDigests (array or null), Config.Labels (object or
 * null, present). -EPROTO for anything not as described or over the limits above, -ENOMEM;
 * *ret only on success.
 */
int kura_runtime_parse_container(const char *json, size_t len, struct kura_container **ret);
int kura_runtime_parse_image(const char *json, size_t len, struct kura_image **ret);

/*
 * The full ID of the container the runtime calls `name_or_id`: a name, a full ID or an ID prefix
 * as its CLI accepts them ([A-Za-z0-9][A-Za-z0-9_.-]*, at most KURA_RUNTIME_MAX_NAME bytes;
 * anything else is -EINVAL before any request). For operator tools only: a workload's identity
 * comes from its cgroup's full ID, never from a name. One request, bounded by timeout_ms. Errors
 * as kura_runtime_inspect() (an ambiguous prefix: -ENOENT or -EPROTO, as the runtime answers).
 */
int kura_runtime_find(struct kura_runtime *rt, const char *name_or_id, unsigned timeout_ms,
	char ret_id[static 65]);

void kura_container_free(struct kura_container *c);
void kura_image_free(struct kura_image *img);

/* The value of key in l, or NULL. */
const char *kura_labels_get(const struct kura_labels *l, const char *key);

/*
 * Follow the runtime's container events (die, destroy, rename, stop, kill, start; Podman's
 * API reports a removal as "remove", not "destroy", and sends no "stop" for `podman stop`) and
 * call on_event(id, action, userdata) for
 * each, in order, from the calling thread. id is a validated 64-hex container ID; action is the
 * runtime's verb as sent (Docker's "Action", else the older "status"), at most 64 printable
 * bytes; events lacking either are dropped. Callers that cache identity should drop a
 * container's entry on ANY event for it rather than match verbs.
 *
 * Blocks until *stop becomes true (checked at least every 100 ms), then returns 0. Otherwise
 * returns an error when the stream fails: connection errors as kura_runtime_inspect() (connect
 * bounded by 2 s), -ECONNRESET when the runtime ends the stream, -EPROTO for a non-200 answer
 * or bytes that are not a sequence of JSON objects, -EMSGSIZE for one event over
 * KURA_RUNTIME_MAX_EVENT. Events may have been missed around a failure: a caller that
 * reconnects (with backoff) must treat its whole cache as stale.
 */
int kura_runtime_watch(struct kura_runtime *rt,
	void (*on_event)(const char *container_id, const char *action, void *userdata),
	void *userdata, volatile const bool *stop);

/*
 * The transport under inspect, find and watch, for the process that does a remote runtime's I/O.
 * get: one GET of path (absolute, printable ASCII without spaces, at most KURA_RUNTIME_MAX_PATH
 * bytes; else -EINVAL) within timeout_ms: any status, the body malloc'd and NUL-terminated (at
 * most KURA_RUNTIME_MAX_BODY - 1 bytes), errors as kura_runtime_inspect(). stream: GET path and
 * pass the body's bytes to chunk as they arrive (a chunk's -errno ends the stream with it),
 * asking stopped(ud) at least every 100 ms (true: return 0); a non-200 answer is -ENOENT (404),
 * -EIO (5xx) or -EPROTO, the end of the stream -ECONNRESET, connect bounded by 2 s.
 */
int kura_runtime_get(struct kura_runtime *rt, const char *path, unsigned timeout_ms,
	long *ret_status, char **ret_body, size_t *ret_len);
int kura_runtime_stream(struct kura_runtime *rt, const char *path,
	int (*chunk)(const char *p, size_t n, void *ud), bool (*stopped)(void *ud), void *ud);

/* The event stream's parser alone, exposed for the fuzz target: data (len bytes) as the body of
 * GET /events, split into objects and passed to on_event as kura_runtime_watch() does. 0, or
 * -EPROTO / -EMSGSIZE as the stream would fail there, -ENOMEM. */
int kura_runtime_parse_events(const char *data, size_t len,
	void (*on_event)(const char *container_id, const char *action, void *userdata),
	void *userdata);

static inline void kura_container_freep(struct kura_container **c)
{
	kura_container_free(*c);
}

#define _cleanup_container_ __attribute__((cleanup(kura_container_freep)))

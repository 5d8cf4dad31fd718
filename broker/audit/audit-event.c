/* Audit record fields from an event (see audit-event.h). No plaintext here. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "audit-event.h"
#include "audit-internal.h"
#include "clock.h"
#include "escape.h"

static void set_str(json_t *j, const char *k, const char *v)
{
	if (v)
		json_object_set_new(j, k, json_string(v));
}

json_t *kura_audit_event_fields(const struct kura_audit_event *e)
{
	const struct kura_identity *id = e->who;
	json_t *j = json_object();

	if (!j)
		return NULL;
	set_str(j, "event", e->event);
	set_str(j, "result", e->result);
	set_str(j, "reason", e->reason);
	if (id) {
		json_object_set_new(j, "pid", json_integer(id->pid));
		json_object_set_new(j, "uid", json_integer(id->uid));
		json_object_set_new(j, "gid", json_integer(id->gid));
		json_object_set_new(j, "host", json_boolean(id->host));
		if (!id->host) {
			set_str(j, "runtime", id->runtime);
			set_str(j, "container_id", id->container_id);
			set_str(j, "container_name", id->name);
			set_str(j, "image_id", id->image_id);
		}
	}
	set_str(j, "secret", e->secret);
	if (e->version)
		json_object_set_new(j, "version", json_integer((json_int_t)e->version));
	set_str(j, "fingerprint", e->fingerprint);
	set_str(j, "request_id", e->request_id);
	set_str(j, "grant_id", e->grant_id);
	set_str(j, "detail", e->detail);
	set_str(j, "sink", e->sink);
	if (e->kek > 0)
		json_object_set_new(j, "kek", json_integer(e->kek));
	if (e->has_count)
		json_object_set_new(j, "count", json_integer(e->count));
	return j;
}

/* --- the same record without jansson -------------------------------------------------------- */

/* Every member's key, quotes, colon and comma, and every number's digits, with room to spare. */
#define FIXED_BOUND 1024u

static size_t str_bound(const char *v)
{
	return v ? 6 * strlen(v) + 2 : 0;
}

size_t kura_audit_event_bound(const struct kura_audit_event *e)
{
	const struct kura_identity *id = e->who;
	size_t n = FIXED_BOUND + 6 * KURA_RFC3339_LEN + 2; /* time */

	n += str_bound(e->event) + str_bound(e->result) + str_bound(e->reason);
	n += str_bound(e->secret) + str_bound(e->fingerprint) + str_bound(e->request_id);
	n += str_bound(e->grant_id) + str_bound(e->detail) + str_bound(e->sink);
	if (id && !id->host)
		n += str_bound(id->runtime) + str_bound(id->container_id) + str_bound(id->name) +
			str_bound(id->image_id);
	return n;
}

static void put_key(char *out, size_t *o, const char *k)
{
	size_t n = strlen(k);

	if (*o > 1)
		out[(*o)++] = ',';
	out[(*o)++] = '"';
	memcpy(out + *o, k, n);
	*o += n;
	out[(*o)++] = '"';
	out[(*o)++] = ':';
}

/* As set_str: absent when NULL, and when not UTF-8 (json_string refuses it, and the object
 * goes without the member). */
static void put_str(char *out, size_t *o, const char *k, const char *v)
{
	size_t at = *o;
	ssize_t n;

	if (!v)
		return;
	put_key(out, o, k);
	n = kura_escape_json_string(v, strlen(v), out + *o);
	*o = n < 0 ? at : *o + (size_t)n;
}

/* As jansson's "%lld", without stdio (a fifth of a record's instructions went to snprintf). */
static void put_int(char *out, size_t *o, const char *k, int64_t v)
{
	uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
	char d[20];
	size_t n = 0;

	put_key(out, o, k);
	if (v < 0)
		out[(*o)++] = '-';
	do {
		d[n++] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	while (n)
		out[(*o)++] = d[--n];
}

/*
 * The members of kura_audit_event_fields(e) and append's own, in the order JSON_SORT_KEYS puts
 * them (strcmp of the keys): each one where it would fall. A member added to either must be
 * added here in its place; test-audit's differential cases compare the two byte for byte.
 */
size_t kura_audit_event_body(const struct kura_audit_event *e, uint64_t seq, const char *time,
	uint64_t epoch, char *out)
{
	const struct kura_identity *id = e->who;
	const struct kura_identity *c = id && !id->host ? id : NULL;
	size_t o = 0;

	out[o++] = '{';
	if (c) {
		put_str(out, &o, "container_id", c->container_id);
		put_str(out, &o, "container_name", c->name);
	}
	if (e->has_count)
		put_int(out, &o, "count", e->count);
	put_str(out, &o, "detail", e->detail);
	put_int(out, &o, "epoch", (int64_t)epoch);
	put_str(out, &o, "event", e->event);
	put_str(out, &o, "fingerprint", e->fingerprint);
	if (id)
		put_int(out, &o, "gid", id->gid);
	put_str(out, &o, "grant_id", e->grant_id);
	if (id) {
		put_key(out, &o, "host");
		memcpy(out + o, id->host ? "true" : "false", id->host ? 4 : 5);
		o += id->host ? 4 : 5;
	}
	if (c)
		put_str(out, &o, "image_id", c->image_id);
	if (e->kek > 0)
		put_int(out, &o, "kek", e->kek);
	if (id)
		put_int(out, &o, "pid", id->pid);
	put_str(out, &o, "reason", e->reason);
	put_str(out, &o, "request_id", e->request_id);
	put_str(out, &o, "result", e->result);
	if (c)
		put_str(out, &o, "runtime", c->runtime);
	put_str(out, &o, "secret", e->secret);
	put_int(out, &o, "seq", (int64_t)seq);
	put_str(out, &o, "sink", e->sink);
	put_str(out, &o, "time", time);
	if (id)
		put_int(out, &o, "uid", id->uid);
	if (e->version)
		put_int(out, &o, "version", (int64_t)e->version);
	out[o++] = '}';
	return o;
}

/* Random bytes for request ids, drawn from the kernel for 64 ids at a time rather than one
 * system call per request. A forked child starts with an empty pool (pthread_atfork), or it
 * would hand out the ids its parent still holds. */
#define ID_POOL (64 * (KURA_REQUEST_ID_LEN / 2))

static __thread uint8_t id_pool[ID_POOL];
static __thread size_t id_left;

static void id_pool_reset(void)
{
	sodium_memzero(id_pool, sizeof(id_pool));
	id_left = 0;
}

static void id_pool_atfork(void)
{
	(void)pthread_atfork(NULL, NULL, id_pool_reset);
}

void kura_request_id(char out[KURA_REQUEST_ID_LEN + 1])
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	const size_t n = KURA_REQUEST_ID_LEN / 2;

	pthread_once(&once, id_pool_atfork);
	if (id_left < n) {
		randombytes_buf(id_pool, sizeof(id_pool));
		id_left = sizeof(id_pool);
	}
	id_left -= n;
	sodium_bin2hex(out, KURA_REQUEST_ID_LEN + 1, id_pool + id_left, n);
	sodium_memzero(id_pool + id_left, n);
}

struct kura_identity kura_identity_self(void)
{
	return (struct kura_identity){ .host = true,
		.pid = getpid(),
		.uid = getuid(),
		.gid = getgid() };
}

int kura_audit_dir(const char *state_dir, char *buf, size_t size)
{
	int n = snprintf(buf, size, "%s/audit", state_dir);

	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* Audit record fields from an event (see audit-event.h). No plaintext here. */
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include <sodium.h>

#include "audit-event.h"

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

void kura_request_id(char out[KURA_REQUEST_ID_LEN + 1])
{
	uint8_t raw[KURA_REQUEST_ID_LEN / 2];

	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(out, KURA_REQUEST_ID_LEN + 1, raw, sizeof(raw));
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

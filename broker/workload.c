/* The workload API on workload.sock: whoami, the secrets this peer may read, one secret's
 * value, and a long poll for changes. Identity comes from the connection, never the request.
 * Touches plaintext: a value goes from the vault into a guarded reply body, wiped once sent. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include <sodium.h>

#include "daemon.h"
#include "grant.h"
#include "http.h"
#include "json.h"
#include "name.h"

#define PREFIX_SECRETS "/v1/secrets/"

/* One workload request: who asked, and the id its audit record carries. */
struct wreq {
	struct kura_daemon *d;
	struct MHD_Connection *c;
	const struct kura_identity *id;
	char rid[KURA_REQUEST_ID_LEN + 1];
};

static int audit(const struct wreq *w, const char *event, const char *result,
	const char *reason, const char *secret, uint64_t version, const char *fingerprint)
{
	return kura_daemon_audit(w->d, &(struct kura_audit_event){ .event = event,
		.result = result, .reason = reason, .who = w->id, .secret = secret,
		.version = version, .fingerprint = fingerprint, .request_id = w->rid });
}

static enum MHD_Result audit_unavailable(struct MHD_Connection *c)
{
	return kura_http_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "audit_unavailable",
		"the audit log cannot be written now, so nothing is served; try again");
}

/* Record a refusal or failure, then send it: as the error, or as 503 if even the record
 * could not be written. */
static enum MHD_Result refuse(const struct wreq *w, const char *event, const char *result,
	const char *secret, unsigned status, const char *code, const char *msg)
{
	if (audit(w, event, result, code, secret, 0, NULL) < 0)
		return audit_unavailable(w->c);
	return kura_http_error(w->c, status, code, msg);
}

json_t *kura_identity_json(const struct kura_identity *id)
{
	json_t *j, *labels, *digests;

	if (id->host)
		return json_pack("{s:b, s:i, s:i, s:i}", "host", 1, "pid", (int)id->pid, "uid",
			(int)id->uid, "gid", (int)id->gid);
	labels = json_object();
	digests = json_array();
	for (size_t i = 0; i < id->n_labels; i++)
		json_object_set_new(labels, id->label_keys[i], json_string(id->label_values[i]));
	for (size_t i = 0; i < id->n_digests; i++)
		json_array_append_new(digests, json_string(id->digests[i]));
	j = json_pack("{s:b, s:i, s:i, s:i, s:s?, s:s?, s:s?, s:s?, s:o, s:o}", "host", 0, "pid",
		(int)id->pid, "uid", (int)id->uid, "gid", (int)id->gid, "runtime", id->runtime,
		"container_id", id->container_id, "name", id->name, "image_id", id->image_id,
		"repo_digests", digests, "labels", labels);
	return j;
}

/* The grants, read under the store lock. */
static int load_grants(struct kura_daemon *d, struct kura_grant_list *ret)
{
	struct kura_err err = { 0 };
	int r = kura_grant_list(d->vault, ret, &err);

	if (r < 0)
		kura_log(LOG_ERR, "cannot read grants: %s", err.msg[0] ? err.msg : strerror(-r));
	return r;
}

static enum MHD_Result list_secrets(const struct wreq *w)
{
	struct kura_daemon *d = w->d;
	const struct kura_identity *id = w->id;
	struct kura_grant_list g = { 0 };
	struct kura_secret_list l = { 0 };
	struct kura_err err = { 0 };
	json_t *arr = json_array();
	int64_t rev = 0;
	int r;

	pthread_mutex_lock(&d->store_lock);
	r = load_grants(d, &g);
	if (r == 0)
		r = kura_secret_list(d->vault, "", &l, &err);
	if (r == 0)
		r = kura_store_revision(kura_vault_store(d->vault), &rev);
	pthread_mutex_unlock(&d->store_lock);
	if (r < 0) {
		kura_grant_list_done(&g);
		json_decref(arr);
		return refuse(w, "list", "error", NULL, MHD_HTTP_SERVICE_UNAVAILABLE,
			"store_unavailable", "the store cannot be read now");
	}
	for (size_t i = 0; i < l.n; i++)
		if (kura_policy_allows(g.items, g.n, id, l.items[i].name))
			json_array_append_new(arr, json_pack("{s:s, s:I}", "name", l.items[i].name,
				"version", (json_int_t)l.items[i].current));
	kura_secret_list_done(&l);
	kura_grant_list_done(&g);
	if (audit(w, "list", "ok", NULL, NULL, 0, NULL) < 0) {
		json_decref(arr);
		return audit_unavailable(w->c);
	}
	return kura_http_json(w->c, MHD_HTTP_OK,
		json_pack("{s:I, s:o}", "revision", (json_int_t)rev, "secrets", arr));
}

static enum MHD_Result get_secret(const struct wreq *w, const char *name)
{
	struct kura_daemon *d = w->d;
	const struct kura_identity *id = w->id;
	struct kura_secbuf *value = NULL, *body = NULL;
	char fp[KURA_FINGERPRINT_TEXT];
	struct kura_grant_list g = { 0 };
	struct kura_version_info info;
	struct kura_err err = { 0 };
	bool allowed;
	int r;

	/* An invalid name is not recorded as such: it may not be valid UTF-8 for JSON. */
	if (kura_name_invalid(name, strlen(name)))
		return refuse(w, "fetch", "denied", NULL, MHD_HTTP_BAD_REQUEST, "bad_name",
			"a secret name is segments of [A-Za-z0-9._-] joined by '/', 1-255 bytes");
	pthread_mutex_lock(&d->store_lock);
	r = load_grants(d, &g);
	allowed = r == 0 && kura_policy_allows(g.items, g.n, id, name);
	kura_grant_list_done(&g);
	/* Not granted looks the same whether or not the secret exists. */
	if (r == 0 && !allowed) {
		pthread_mutex_unlock(&d->store_lock);
		return refuse(w, "fetch", "denied", name, MHD_HTTP_FORBIDDEN, "no_grant",
			"no grant lets this peer read that secret");
	}
	if (r == 0)
		r = kura_secret_get(d->vault, name, 0, &value, &info, &err);
	if (r == 0)
		r = kura_vault_fingerprint(d->vault, value, fp);
	pthread_mutex_unlock(&d->store_lock);
	if (r == -ENOENT)
		return refuse(w, "fetch", "error", name, MHD_HTTP_NOT_FOUND, "not_found",
			"the granted secret does not exist");
	if (r < 0) {
		kura_secbuf_free(value);
		kura_log(LOG_ERR, "reading %s: %s", name, err.msg[0] ? err.msg : strerror(-r));
		return refuse(w, "fetch", "error", name, MHD_HTTP_SERVICE_UNAVAILABLE,
			"store_unavailable", "the secret cannot be read now");
	}
	/* Fail closed: the value leaves only once its record is written. */
	if (audit(w, "fetch", "ok", NULL, name, info.version, fp) < 0) {
		kura_secbuf_free(value);
		return audit_unavailable(w->c);
	}
	r = kura_http_secret_body(name, &info, value, &body);
	kura_secbuf_free(value);
	if (r < 0)
		return MHD_NO;
	return kura_http_secret(w->c, body);
}

/* Names of secrets under "secret/" changed after `since` that id may read. */
static int readable_changes(struct kura_daemon *d, const struct kura_identity *id, int64_t since,
	json_t *out)
{
	struct kura_change_list ch = { 0 };
	struct kura_grant_list g = { 0 };
	int r;

	pthread_mutex_lock(&d->store_lock);
	r = load_grants(d, &g);
	if (r == 0)
		r = kura_store_changes(kura_vault_store(d->vault), since, 0, &ch);
	pthread_mutex_unlock(&d->store_lock);
	for (size_t i = 0; r == 0 && i < ch.n; i++) {
		const char *key = ch.items[i].key, *name;
		size_t k;
		bool dup = false;
		json_t *e;

		if (strncmp(key, "secret/", 7) != 0)
			continue;
		name = key + 7;
		if (!kura_policy_allows(g.items, g.n, id, name))
			continue;
		json_array_foreach(out, k, e)
			dup = dup || strcmp(json_string_value(e), name) == 0;
		if (!dup)
			json_array_append_new(out, json_string(name));
	}
	kura_change_list_done(&ch);
	kura_grant_list_done(&g);
	return r;
}

static enum MHD_Result watch(const struct wreq *w)
{
	struct kura_daemon *d = w->d;
	struct MHD_Connection *c = w->c;
	const struct kura_identity *id = w->id;
	uint64_t since, timeout;
	struct timespec deadline;
	json_t *changed = json_array();
	int64_t rev;
	bool stopping;

	if (!kura_http_query_u64(c, "since", 0, INT64_MAX, UINT64_MAX, &since) ||
		since == UINT64_MAX ||
		!kura_http_query_u64(c, "timeout", 1, d->cfg.watch_max_s, 30, &timeout)) {
		json_decref(changed);
		return refuse(w, "watch", "denied", NULL, MHD_HTTP_BAD_REQUEST, "bad_request",
			"watch needs since=REVISION (and optionally timeout=SECONDS)");
	}
	/* Recorded when it starts: which changes it then sees are names, never values. */
	if (audit(w, "watch", "ok", NULL, NULL, 0, NULL) < 0) {
		json_decref(changed);
		return audit_unavailable(c);
	}
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += (time_t)timeout;
	for (;;) {
		pthread_mutex_lock(&d->rev_lock);
		while (d->revision <= (int64_t)since && !d->stopping &&
			pthread_cond_timedwait(&d->rev_cond, &d->rev_lock, &deadline) != ETIMEDOUT)
			;
		rev = d->revision;
		stopping = d->stopping;
		pthread_mutex_unlock(&d->rev_lock);
		if (rev <= (int64_t)since || stopping)
			break;
		if (readable_changes(d, id, (int64_t)since, changed) < 0) {
			json_decref(changed);
			return kura_http_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "store_unavailable",
				"changes cannot be read now");
		}
		since = (uint64_t)rev;
		if (json_array_size(changed) > 0)
			break;
	}
	return kura_http_json(c, MHD_HTTP_OK, json_pack("{s:I, s:o}", "revision",
		(json_int_t)(rev > (int64_t)since ? rev : (int64_t)since), "changed", changed));
}

/* Answer one request for a resolved identity. */
static enum MHD_Result dispatch(const struct wreq *w, struct kura_conn *conn, const char *url)
{
	enum MHD_Result ret;

	if (strcmp(url, "/v1/whoami") == 0) {
		if (audit(w, "whoami", "ok", NULL, NULL, 0, NULL) < 0)
			return audit_unavailable(w->c);
		return kura_http_json(w->c, MHD_HTTP_OK, kura_identity_json(w->id));
	}
	if (strcmp(url, "/v1/secrets") == 0)
		return list_secrets(w);
	if (strncmp(url, PREFIX_SECRETS, strlen(PREFIX_SECRETS)) == 0)
		return get_secret(w, url + strlen(PREFIX_SECRETS));
	if (strcmp(url, "/v1/watch") == 0) {
		if (!kura_daemon_watch(w->d, conn))
			return refuse(w, "watch", "denied", NULL, MHD_HTTP_TOO_MANY_REQUESTS,
				"too_many_watches", "this peer already has the most long polls open");
		ret = watch(w);
		kura_daemon_unwatch(w->d, conn);
		return ret;
	}
	return refuse(w, "request", "denied", NULL, MHD_HTTP_NOT_FOUND, "no_endpoint",
		"no such endpoint");
}

/* What a request asks for, for records of requests refused before they are dispatched. */
static const char *event_of(const char *url)
{
	if (strcmp(url, "/v1/whoami") == 0)
		return "whoami";
	if (strcmp(url, "/v1/secrets") == 0)
		return "list";
	if (strncmp(url, PREFIX_SECRETS, strlen(PREFIX_SECRETS)) == 0)
		return "fetch";
	if (strcmp(url, "/v1/watch") == 0)
		return "watch";
	return "request";
}

/* A request that announces a body gets its refusal before any of the body is read. */
static bool announces_body(struct MHD_Connection *c)
{
	const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
		MHD_HTTP_HEADER_CONTENT_LENGTH);

	return (cl && strcmp(cl, "0") != 0) ||
		MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
}

enum MHD_Result kura_workload_handler(void *cls, struct MHD_Connection *c, const char *url,
	const char *method, const char *version, const char *upload_data,
	size_t *upload_data_size, void **req_cls)
{
	struct kura_daemon *d = cls;
	struct kura_conn *conn = kura_http_conn(c);
	struct kura_ident *ident = NULL;
	struct kura_identity anon;
	struct wreq w = { .d = d, .c = c };
	enum MHD_Result ret;
	bool body, record;
	int r;

	(void)version;
	(void)upload_data;
	if (!*req_cls) {
		kura_daemon_request_started(d, conn);
		if (announces_body(c))
			return kura_http_error(c, MHD_HTTP_BAD_REQUEST, "bad_request",
				"workload requests carry no body");
	}
	if (!kura_http_ready(upload_data_size, req_cls, &body))
		return MHD_YES;
	if (body)
		return kura_http_error(c, MHD_HTTP_BAD_REQUEST, "bad_request",
			"workload requests carry no body");
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0)
		return kura_http_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed",
			"the workload API takes GET only");
	kura_request_id(w.rid);
	if (!conn || conn->peer_err < 0) {
		/* Without credentials there is no one to name; the refusal is still counted. */
		w.id = &(struct kura_identity){ .pid = 0, .uid = (uid_t)-1, .gid = (gid_t)-1 };
		return refuse(&w, event_of(url), "denied", NULL, MHD_HTTP_FORBIDDEN,
			"unidentified", "the peer process cannot be identified");
	}
	/* Until it is verified, a peer is only what the kernel says: pid, uid, gid. */
	anon = (struct kura_identity){ .pid = conn->peer.pid, .uid = conn->peer.uid,
		.gid = conn->peer.gid };
	w.id = &anon;
	/* Before any lookup, so a peer cannot make kurad ask a slow runtime at any rate. */
	if (!kura_daemon_rate_ok(d, conn->peer_key, &record)) {
		if (record && audit(&w, event_of(url), "denied", "rate_limited", NULL, 0, NULL) < 0)
			return audit_unavailable(c);
		return kura_http_error(c, MHD_HTTP_TOO_MANY_REQUESTS, "rate_limited",
			"too many requests from this peer; slow down");
	}
	/* For every request, not once per connection: a process that died (its connection
	 * inherited or passed on) or a container that stopped has no identity any more. */
	r = kura_resolver_identify(d->resolver, &conn->peer, &ident);
	if (r == -EAGAIN)
		return refuse(&w, event_of(url), "error", NULL, MHD_HTTP_SERVICE_UNAVAILABLE,
			"runtime_unavailable",
			"the container runtime did not answer in time; try again");
	if (r < 0)
		return refuse(&w, event_of(url), "denied", NULL, MHD_HTTP_FORBIDDEN,
			"unidentified", "this process is not a verified container or host process");
	w.id = kura_ident_view(ident);
	ret = dispatch(&w, conn, url);
	kura_ident_unref(ident);
	return ret;
}

/* The admin API on admin.sock (root only): whois, status and metrics (admin-metrics.c), and
 * every operation kuractl offers (POST /v1/op/NAME with JSON arguments, run through the
 * operations table on kurad's vault).
 * Touches plaintext: values arrive and leave in base64 inside guarded buffers. */
#include <errno.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "base64.h"
#include "cgroup.h"
#include "admin.h"
#include "conn.h"
#include "grant.h"
#include "http.h"
#include "json.h"
#include "number.h"
#include "ops.h"
#include "outcome.h"
#include "policy-index.h"
#include "wire.h"

/* What whois lists: the names the grants (matched[i]: grant i matches the identity) cover. */
struct whois_names {
	struct kura_policy_index *index;
	bool *matched;
};

static bool readable_by(const char *name, void *userdata)
{
	const struct whois_names *a = userdata;

	return kura_policy_index_allows_matched(a->index, a->matched, name);
}

/* The identity kurad derives for a pid or a container, and the secrets it could read. */
static enum MHD_Result whois(struct kura_admin *d, struct MHD_Connection *c)
{
	const char *pid_s = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "pid");
	const char *container = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "container");
	struct kura_grant_list g = { 0 };
	struct kura_secret_list l = { 0 };
	struct kura_err err = { 0 };
	struct kura_ident *ident = NULL;
	const struct kura_identity *id;
	struct whois_names a = { 0 };
	json_t *j, *readable, *grants;
	uint64_t pid;
	int r;

	if (!!pid_s == !!container)
		return kura_http_error(c, MHD_HTTP_BAD_REQUEST, "bad_request",
			"whois takes pid=PID or container=ID|NAME");
	if (pid_s) {
		if (!kura_http_query_u64(c, "pid", 1, 4194304, 0, &pid))
			return kura_http_error(c, MHD_HTTP_BAD_REQUEST, "bad_request",
				"pid must be a process id");
		r = kura_resolver_identify_pid(d->resolver, (pid_t)pid, &ident);
	} else {
		r = kura_resolver_identify_container(d->resolver, container, &ident);
	}
	if (r == -EAGAIN)
		return kura_http_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "runtime_unavailable",
			"the container runtime did not answer in time");
	if (r == -ESRCH || r == -ENOENT)
		return kura_http_error(c, MHD_HTTP_NOT_FOUND, "not_found",
			pid_s ? "no such process" : "no running container by that id or name");
	if (r < 0)
		return kura_http_error(c, MHD_HTTP_FORBIDDEN, "unidentified",
			"kurad would not give that process an identity (unknown container layout, "
			"runtime not configured, or another pid namespace)");
	id = kura_ident_view(ident);
	kura_keeper_hold(d->keeper);
	r = kura_grant_list(d->vault, &g, &err);
	if (r == 0) {
		a.matched = kura_policy_matched(g.items, g.n, id);
		r = a.matched ? kura_policy_index_new(g.items, g.n, &a.index) : -ENOMEM;
	}
	/* Only the readable names' records are decoded and kept: a page of the store at a time. */
	if (r == 0)
		r = kura_secret_list_filtered(d->vault, "", readable_by, &a, &l, &err);
	kura_keeper_release(d->keeper);
	kura_policy_index_free(a.index);
	if (r < 0) {
		free(a.matched);
		kura_ident_unref(ident);
		kura_grant_list_done(&g);
		return kura_http_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "store_unavailable",
			"the store cannot be read now");
	}
	readable = json_array();
	grants = json_array();
	for (size_t i = 0; i < l.n; i++)
		json_array_append_new(readable, json_string(l.items[i].name));
	for (size_t i = 0; i < g.n; i++)
		if (a.matched[i])
			json_array_append_new(grants, json_string(g.items[i].id));
	free(a.matched);
	j = json_pack("{s:o, s:o, s:o}", "identity", kura_identity_json(id), "readable", readable,
		"grants", grants);
	kura_secret_list_done(&l);
	kura_grant_list_done(&g);
	kura_ident_unref(ident);
	return kura_http_json(c, MHD_HTTP_OK, j);
}

/* A POST's body, gathered in guarded memory (it may carry a value). */
struct admin_req {
	struct kura_secbuf *body;
	bool too_big;
};

void kura_admin_completed(void *cls, struct MHD_Connection *c, void **req_cls,
	enum MHD_RequestTerminationCode code)
{
	struct admin_req *req = req_cls ? *req_cls : NULL;

	(void)cls;
	(void)c;
	(void)code;
	if (!req)
		return;
	if (!kura_http_marker(req)) {
		kura_secbuf_free(req->body);
		free(req);
	}
	*req_cls = NULL;
}

/* Run an operation of the table (ops.h) on kurad's vault: its arguments parsed strictly, the
 * vault call under the store lock, its record written before its reply leaves. */
static enum MHD_Result run_op(struct kura_admin *d, struct MHD_Connection *c,
	const struct kura_conn *conn, const char *name, const struct admin_req *req)
{
	struct kura_identity who = { .host = true,
		.pid = conn->peer.pid,
		.uid = conn->peer.uid,
		.gid = conn->peer.gid };
	const struct kura_operation *op = kura_op_find(name);
	struct kura_op_result res = { 0 };
	struct kura_op_args a = { 0 };
	struct kura_op_record rec;
	struct kura_secbuf *raw = NULL;
	struct kura_err err = { 0 };
	json_t *args, *resp = NULL;
	const char *unrecorded = NULL;
	int r;

	if (!req || !req->body || req->too_big)
		return kura_http_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "too_large",
			"an operation's arguments are a JSON object within the size limit");
	if (!op)
		return kura_http_error(c, MHD_HTTP_NOT_FOUND, "not_found", "no such operation");
	args = json_loadb((const char *)req->body->data, req->body->len, JSON_REJECT_DUPLICATES,
		NULL);
	if (!json_is_object(args)) {
		json_decref(args);
		return kura_http_error(c, MHD_HTTP_BAD_REQUEST, "bad_request",
			"an operation's arguments are a JSON object");
	}
	/* A change made now could not be recorded: refuse it before it is made. */
	if (op->changes && kura_op_recorded(op, &a) && !kura_recorder_healthy(d->rec)) {
		json_decref(args);
		return kura_http_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "audit_unavailable",
			"the audit log cannot be written now; nothing was changed");
	}
	r = kura_op_args_parse(op, args, &a, &err);
	if (r == 0) {
		kura_keeper_hold(d->keeper);
		r = kura_op_run(op, d->vault, &a, &res, &err);
		kura_keeper_release(d->keeper);
	}
	if (r == 0)
		r = kura_op_reply(op, &a, &res, &resp, &raw);
	/* A value leaves only once its record is written. A change is already made: if its
	 * record fails, say so rather than report plain success. */
	if (kura_op_record(op, &a, &res, r, &who, NULL, &rec) &&
		kura_recorder_append(d->rec, &rec.event) < 0) {
		unrecorded = r == 0 && op->changes ?
			"the operation was done, but its audit record could not be written" :
			"the audit log cannot be written now";
	}
	kura_op_result_done(&res);
	kura_op_args_done(&a);
	json_decref(args);
	if (unrecorded) {
		json_decref(resp);
		kura_secbuf_free(raw);
		return kura_http_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "audit_unavailable",
			unrecorded);
	}
	if (r < 0)
		return kura_http_json(c, kura_outcome_http(r), kura_wire_error(r, &err));
	if (raw)
		return kura_http_secret(c, raw);
	return kura_http_json(c, MHD_HTTP_OK, resp ? resp : json_object());
}

/* Secrets one import request may carry: each value sits in its own locked buffer while the
 * batch is sealed, and the keeper's locked memory is bounded (RLIMIT_MEMLOCK). */
#define IMPORT_BATCH_MAX 512

/*
 * POST /v1/import {"secrets":[{"name":N,"value":BASE64},...]}: many new secrets in one store
 * transaction (all or none), each recorded as `secret put` records it, before the reply. A
 * refusal names the index of the secret refused ("index"), or none when the whole batch was.
 */
static enum MHD_Result import(struct kura_admin *d, struct MHD_Connection *c,
	const struct kura_conn *conn, const struct admin_req *req)
{
	struct kura_identity who = { .host = true,
		.pid = conn->peer.pid,
		.uid = conn->peer.uid,
		.gid = conn->peer.gid };
	const struct kura_operation *op = kura_op_find("secret.write");
	_cleanup_free_ const char **names = NULL;
	_cleanup_free_ struct kura_secbuf **values = NULL;
	_cleanup_free_ struct kura_secbuf *views = NULL;
	_cleanup_secbuf_ struct kura_secbuf *all = NULL;
	size_t total = 1, used = 0;
	_cleanup_json_ json_t *args = NULL;
	struct kura_err err = { 0 };
	const char *unrecorded = NULL;
	size_t n, failed = 0;
	int64_t rev = 0;
	json_t *list, *resp;
	int r = 0;

	if (!req || !req->body || req->too_big)
		return kura_http_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "too_large",
			"an import is a JSON object within the size limit");
	args = json_loadb((const char *)req->body->data, req->body->len, JSON_REJECT_DUPLICATES,
		NULL);
	list = json_object_get(args, "secrets");
	if (!json_is_object(args) || json_object_size(args) != 1 || !json_is_array(list) ||
		json_array_size(list) == 0 || json_array_size(list) > IMPORT_BATCH_MAX)
		return kura_http_error(c, MHD_HTTP_BAD_REQUEST, "bad_request",
			"an import is {\"secrets\":[{\"name\":..., \"value\":BASE64}, ...]}, "
			"1 to 512 of them");
	if (!op || !kura_recorder_healthy(d->rec))
		return kura_http_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "audit_unavailable",
			"the audit log cannot be written now; nothing was changed");
	n = json_array_size(list);
	names = calloc(n, sizeof(*names));
	values = calloc(n, sizeof(*values));
	views = calloc(n, sizeof(*views));
	for (size_t i = 0; i < n; i++)
		total += kura_base64_max_decoded(
			json_string_length(json_object_get(json_array_get(list, i), "value")));
	/* The batch's values in one guarded buffer, each a view into it: one locked mapping,
	 * not one per secret. The views are never freed as buffers of their own. */
	if (!names || !values || !views || kura_secbuf_new(total, &all) < 0)
		return kura_http_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal",
			"out of memory");
	for (size_t i = 0; r == 0 && i < n; i++) {
		json_t *e = json_array_get(list, i), *v = json_object_get(e, "value");
		size_t got = 0;

		names[i] = json_string_value(json_object_get(e, "name"));
		if (!json_is_object(e) || json_object_size(e) != 2 || !names[i] ||
			!json_is_string(v) ||
			kura_base64_decode(json_string_value(v), json_string_length(v),
				all->data + used, all->cap - used, &got) < 0) {
			r = kura_err_set(&err, -EINVAL,
				"secret %zu of the batch is not {\"name\":..., \"value\":BASE64}",
				i);
			failed = i;
			break;
		}
		views[i] = (struct kura_secbuf){ .data = all->data + used, .len = got, .cap = got };
		values[i] = &views[i];
		used += got;
	}
	if (r == 0) {
		kura_keeper_hold(d->keeper);
		r = kura_secret_put_many(d->vault, names, values, n, &failed, &rev, &err);
		/* Each put recorded as a single one is, fingerprint and all. */
		for (size_t i = 0; r == 0 && i < n && !unrecorded; i++) {
			struct kura_op_args a = { .name = names[i],
				.value = values[i],
				.create = true };
			struct kura_op_result res = { .version = 1 };
			struct kura_op_record rec;

			if (kura_vault_fingerprint(d->vault, values[i], res.fingerprint) < 0)
				res.fingerprint[0] = 0;
			if (kura_op_record(op, &a, &res, 0, &who, "import", &rec) &&
				kura_recorder_append(d->rec, &rec.event) < 0)
				unrecorded =
					"the secrets were imported, but their audit records could "
					"not all be written";
		}
		kura_keeper_release(d->keeper);
	}
	if (unrecorded)
		return kura_http_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "audit_unavailable",
			unrecorded);
	if (r < 0) {
		resp = kura_wire_error(r, &err);
		if (resp && failed < n)
			json_object_set_new(resp, "index", json_integer((json_int_t)failed));
		return kura_http_json(c, kura_outcome_http(r), resp);
	}
	return kura_http_json(c, MHD_HTTP_OK,
		json_pack("{s:I, s:I}", "imported", (json_int_t)n, "revision", (json_int_t)rev));
}

/* Gather a POST body into guarded memory, up to a limit that fits the store's largest value
 * in base64 with room for the rest of the arguments. */
static enum MHD_Result gather(struct kura_admin *d, struct MHD_Connection *c, const char *data,
	size_t *size, void **req_cls)
{
	struct admin_req *req = *req_cls;

	if (!req) {
		const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
			MHD_HTTP_HEADER_CONTENT_LENGTH);
		uint64_t want = 0;
		size_t limit;

		kura_keeper_hold(d->keeper);
		limit = kura_vault_max_value(d->vault) / 3 * 4 + 65536;
		kura_keeper_release(d->keeper);
		req = calloc(1, sizeof(*req));
		if (!req)
			return MHD_NO;
		*req_cls = req;
		/* No growing and copying of a buffer that holds a value: one allocation, sized
		 * by Content-Length, which must be given and within the limit; otherwise the
		 * refusal goes out before any of the body is read. */
		if (!cl || !kura_parse_u64(cl, 1, limit, &want) ||
			kura_secbuf_new((size_t)want, &req->body) < 0)
			return kura_http_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "too_large",
				"an operation's arguments need a Content-Length within the limit");
		return MHD_YES;
	}
	if (*size) {
		if (!req->too_big && req->body->len + *size <= req->body->cap) {
			memcpy(req->body->data + req->body->len, data, *size);
			req->body->len += *size;
		} else {
			req->too_big = true;
		}
		*size = 0;
	}
	return MHD_YES;
}

/* Root on the host: uid 0, in the host's (or kurad's own) pid, mount and cgroup namespaces and
 * root (kura_peer_in_host_namespaces), and in no container's cgroup. Root inside a container (no
 * user namespace) that reached the socket through a careless mount is not, whatever its cgroup or
 * --pid=host. */
static bool admin_peer(const struct kura_conn *conn)
{
	struct kura_cgroup_id cg;
	bool host = false;

	if (!conn || conn->peer_err < 0 || conn->peer.uid != 0)
		return false;
	if (kura_peer_in_host_namespaces(&conn->peer, &host) < 0 || !host)
		return false;
	return kura_cgroup_read(conn->peer.proc_fd, &cg) == -ENOENT;
}

enum MHD_Result kura_admin_handler(void *cls, struct MHD_Connection *c, const char *url,
	const char *method, const char *version, const char *upload_data, size_t *upload_data_size,
	void **req_cls)
{
	struct kura_admin *d = cls;
	struct kura_conn *conn = kura_http_conn(c);
	bool body;

	(void)version;
	if (!*req_cls && !kura_http_framing_ok(c))
		return kura_http_error_close(c, MHD_HTTP_BAD_REQUEST, "bad_request",
			"a request has at most one Content-Length or Transfer-Encoding, never both");
	/* The socket is 0600 root; this is the second lock on the same door. */
	if (!admin_peer(conn)) {
		if (*upload_data_size) {
			*upload_data_size = 0;
			return MHD_YES;
		}
		return kura_http_error(c, MHD_HTTP_FORBIDDEN, "forbidden",
			"the admin API is for root only");
	}
	if (strcmp(method, MHD_HTTP_METHOD_POST) == 0 && strncmp(url, "/v1/op/", 7) == 0) {
		if (!*req_cls || *upload_data_size)
			return gather(d, c, upload_data, upload_data_size, req_cls);
		return run_op(d, c, conn, url + 7, *req_cls);
	}
	if (strcmp(method, MHD_HTTP_METHOD_POST) == 0 && strcmp(url, "/v1/import") == 0) {
		if (!*req_cls || *upload_data_size)
			return gather(d, c, upload_data, upload_data_size, req_cls);
		return import(d, c, conn, *req_cls);
	}
	if (!kura_http_ready(upload_data_size, req_cls, &body))
		return MHD_YES;
	if (body)
		return kura_http_error(c, MHD_HTTP_BAD_REQUEST, "bad_request",
			"this endpoint takes no body");
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0)
		return kura_http_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed",
			"use GET (POST for /v1/op/NAME)");
	if (strcmp(url, "/v1/whois") == 0)
		return whois(d, c);
	if (strcmp(url, "/v1/status") == 0)
		return kura_admin_status(d, c);
	if (strcmp(url, "/metrics") == 0)
		return kura_admin_metrics(d, c);
	return kura_http_error(c, MHD_HTTP_NOT_FOUND, "not_found", "no such endpoint");
}

void kura_admin_notify(void *cls, struct MHD_Connection *c, void **socket_context,
	enum MHD_ConnectionNotificationCode code)
{
	(void)cls;
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *info = MHD_get_connection_info(c,
			MHD_CONNECTION_INFO_CONNECTION_FD);

		/* NULL: the handler refuses a connection without context. */
		*socket_context = info ? kura_conn_new(info->connect_fd, false) : NULL;
		return;
	}
	kura_conn_free(*socket_context);
	*socket_context = NULL;
}

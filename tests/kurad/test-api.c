/* Unit tests for kurad's two HTTP handlers, in process: a real state on SQLite, kurad's own
 * start and stop, and requests written byte by byte over its Unix sockets (so malformed ones
 * can be sent too). The test process is the peer: a host process of uid 0. Runs under the
 * sanitizers with the unit suite. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <sodium.h>

#include "base64.h"
#include "clock.h"
#include "daemon.h"
#include "json.h"
#include "tap.h"

static char root[] = "/tmp/kura-test-api-XXXXXX";
static char state[64], run[64];
static struct kura_daemon d;

struct resp {
	int status;
	char head[8192];
	char body[65536];
	size_t body_len;
};

/* Send raw bytes to SOCK (workload.sock or admin.sock) and read the reply until the server
 * closes or a whole Content-Length body is in. -1 if nothing came back. */
static int request(const char *sock, const char *raw, size_t len, struct resp *ret)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char buf[sizeof(ret->head) + sizeof(ret->body)];
	size_t got = 0;
	int64_t deadline = kura_clock_ms() + 5000;
	int fd;

	memset(ret, 0, sizeof(*ret));
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", run, sock);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
		write(fd, raw, len) != (ssize_t)len) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		const char *end;
		ssize_t n;

		if (poll(&p, 1, (int)(deadline - kura_clock_ms())) <= 0)
			break;
		n = read(fd, buf + got, sizeof(buf) - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
		buf[got] = '\0';
		end = strstr(buf, "\r\n\r\n");
		if (end) {
			const char *cl = strcasestr(buf, "\r\ncontent-length:");

			if (cl && cl < end &&
				got - (size_t)(end + 4 - buf) >= strtoul(cl + 17, NULL, 10))
				break;
		}
	}
	close(fd);
	buf[got] = '\0';
	{
		const char *end = strstr(buf, "\r\n\r\n");

		if (!end || sscanf(buf, "HTTP/1.%*d %d", &ret->status) != 1)
			return -1;
		snprintf(ret->head, sizeof(ret->head), "%.*s", (int)(end - buf), buf);
		ret->body_len = got - (size_t)(end + 4 - buf);
		memcpy(ret->body, end + 4, ret->body_len);
		ret->body[ret->body_len] = '\0';
	}
	return 0;
}

static int get(const char *sock, const char *path, const char *extra, struct resp *ret)
{
	char raw[4096];
	int n = snprintf(raw, sizeof(raw),
		"GET %s HTTP/1.1\r\nHost: kura\r\n%sConnection: close\r\n\r\n", path,
		extra ? extra : "");

	return request(sock, raw, (size_t)n, ret);
}

static int post(const char *path, const char *body, struct resp *ret)
{
	char raw[8192];
	int n = snprintf(raw, sizeof(raw),
		"POST %s HTTP/1.1\r\nHost: kura\r\nContent-Type: application/json\r\n"
		"Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
		path, strlen(body), body);

	return request("admin.sock", raw, (size_t)n, ret);
}

/* The reply's JSON body (NULL if it is not JSON). */
static json_t *body_json(const struct resp *r)
{
	return json_loadb(r->body, r->body_len, 0, NULL);
}

static bool error_is(const struct resp *r, int status, const char *code)
{
	json_t *j = body_json(r);
	const char *e = json_string_value(json_object_get(j, "error"));
	bool ok = r->status == status && e && strcmp(e, code) == 0 &&
		json_string_value(json_object_get(j, "message"));

	if (!ok)
		tap_diag("got %d %s", r->status, r->body);
	json_decref(j);
	return ok;
}

static bool header_is(const struct resp *r, const char *name, const char *value)
{
	char want[512];

	snprintf(want, sizeof(want), "\r\n%s: %s\r", name, value);
	if (strcasestr(r->head, want))
		return true;
	snprintf(want, sizeof(want), "\r\n%s: %s", name, value);
	{
		const char *p = strcasestr(r->head, want);

		if (p && p[strlen(want)] == '\0')
			return true;
	}
	tap_diag("no %s: %s in\n%s", name, value, r->head);
	return false;
}

/* A secret written as kuractl offline would: the store directly, through a vault of its own. */
static int put_offline(const char *name)
{
	struct kura_master_source m = { .kind = KURA_MASTER_FILE };
	struct kura_vault *vault = NULL;
	struct kura_secbuf *v = NULL;
	struct kura_err err = { 0 };
	uint64_t ver;
	int r;

	r = kura_vault_open(state, &m, 0, &vault, &err);
	if (r == 0)
		r = kura_secbuf_from("new", 3, &v);
	if (r == 0)
		r = kura_secret_put(vault, name, v, &ver, &err);
	if (r < 0)
		tap_diag("put %s: %s", name, err.msg);
	kura_secbuf_free(v);
	kura_vault_close(vault);
	return r;
}

static int setup(void)
{
	struct kura_init_opts o = { .master = { .kind = KURA_MASTER_FILE } };
	struct kura_secbuf *audit_key = NULL, *v = NULL;
	struct kura_daemon_options opts;
	struct kura_vault *vault = NULL;
	struct kura_err err = { 0 };
	struct kura_grant g = { .pattern = "app/*", .host = true, .has_uid = true, .uid = 0 };
	bool existed;
	uint64_t ver;
	int r;

	snprintf(state, sizeof(state), "%s/state", root);
	snprintf(run, sizeof(run), "%s/run", root);
	o.ret_audit_key = &audit_key;
	r = kura_vault_init(state, &o, &err);
	kura_secbuf_free(audit_key);
	if (r == 0)
		r = kura_vault_open(state, &o.master, 0, &vault, &err);
	if (r == 0)
		r = kura_secbuf_from("s3cr3t\0bin", 10, &v);
	if (r == 0)
		r = kura_secret_put(vault, "app/db", v, &ver, &err);
	if (r == 0)
		r = kura_secret_put(vault, "other/x", v, &ver, &err);
	if (r == 0)
		r = kura_grant_add(vault, &g, &existed, &err);
	kura_secbuf_free(v);
	kura_vault_close(vault);
	if (r < 0) {
		tap_diag("setup: %s", err.msg);
		return r;
	}
	kura_daemon_options_init(&opts);
	opts.cfg.state_dir = state;
	opts.cfg.run_dir = run;
	opts.cfg.loop_threads = 1;
	return kura_daemon_start(&d, &opts.cfg);
}

static void test_workload(void)
{
	struct resp r;
	json_t *j;

	tap_ok(get("workload.sock", "/v1/whoami", NULL, &r) == 0 && r.status == 200, "whoami: 200");
	j = body_json(&r);
	tap_ok(json_is_true(json_object_get(j, "host")) &&
			json_integer_value(json_object_get(j, "uid")) == 0 &&
			json_integer_value(json_object_get(j, "pid")) == getpid(),
		"whoami: this host process, uid 0, its pid");
	json_decref(j);

	tap_ok(get("workload.sock", "/v1/secrets", NULL, &r) == 0 && r.status == 200, "list: 200");
	j = body_json(&r);
	tap_ok(json_array_size(json_object_get(j, "secrets")) == 1 &&
			strcmp(json_string_value(json_object_get(json_array_get(json_object_get(j, "secrets"), 0), "name")) ?:
					"",
				"app/db") == 0 &&
			json_integer_value(json_object_get(j, "revision")) > 0,
		"list: only the granted app/db, with the revision");
	json_decref(j);

	tap_ok(get("workload.sock", "/v1/secrets/app/db", NULL, &r) == 0 && r.status == 200,
		"fetch (JSON): 200");
	tap_ok(header_is(&r, "Content-Type", "application/json"), "fetch (JSON): its type");
	j = body_json(&r);
	{
		const char *b64 = json_string_value(json_object_get(j, "value"));
		uint8_t out[64];
		size_t n = 0;

		tap_ok(b64 && kura_base64_decode(b64, strlen(b64), out, sizeof(out), &n) == 0 &&
				n == 10 && memcmp(out, "s3cr3t\0bin", 10) == 0 &&
				json_integer_value(json_object_get(j, "version")) == 1 &&
				json_integer_value(json_object_get(j, "size")) == 10,
			"fetch (JSON): the value in base64, version 1, size 10");
	}
	json_decref(j);

	tap_ok(get("workload.sock", "/v1/secrets/app/db", "Accept: application/octet-stream\r\n",
		       &r) == 0 &&
			r.status == 200,
		"fetch (raw): 200");
	tap_ok(r.body_len == 10 && memcmp(r.body, "s3cr3t\0bin", 10) == 0,
		"fetch (raw): the body is the value, NUL and all");
	tap_ok(header_is(&r, "Content-Type", "application/octet-stream") &&
			header_is(&r, "Kura-Version", "1") &&
			strcasestr(r.head, "\r\nKura-Fingerprint: b2:") &&
			strcasestr(r.head, "\r\nKura-Created: 20"),
		"fetch (raw): type, version, fingerprint and creation time in headers");
	tap_ok(get("workload.sock", "/v1/secrets/app/db", "Accept: text/html\r\n", &r) == 0 &&
			r.status == 200 && header_is(&r, "Content-Type", "application/json"),
		"fetch with another Accept: the JSON form");

	tap_ok(get("workload.sock", "/v1/secrets/other/x", NULL, &r) == 0 &&
			error_is(&r, 403, "no_grant"),
		"an ungranted secret: 403 no_grant");
	tap_ok(get("workload.sock", "/v1/secrets/app/none", NULL, &r) == 0 &&
			error_is(&r, 404, "not_found"),
		"a granted but missing secret: 404 not_found");
	tap_ok(get("workload.sock", "/v1/secrets/app/none", "Accept: application/octet-stream\r\n",
		       &r) == 0 &&
			error_is(&r, 404, "not_found") &&
			header_is(&r, "Content-Type", "application/json"),
		"... also when raw was asked for: the error is JSON");
	tap_ok(get("workload.sock", "/v1/secrets/app//db", NULL, &r) == 0 &&
			error_is(&r, 400, "bad_name"),
		"an empty segment: 400 bad_name");
	tap_ok(get("workload.sock", "/v1/secrets/app/%2e%2e", NULL, &r) == 0 &&
			error_is(&r, 400, "bad_name"),
		"an escape: 400 bad_name (no unescaping)");
	tap_ok(get("workload.sock", "/v1/nothing", NULL, &r) == 0 &&
			error_is(&r, 404, "no_endpoint"),
		"an unknown endpoint: 404");
	{
		static const char req[] = "POST /v1/whoami HTTP/1.1\r\nHost: kura\r\n"
					  "Content-Length: 0\r\nConnection: close\r\n\r\n";

		tap_ok(request("workload.sock", req, sizeof(req) - 1, &r) == 0 &&
				error_is(&r, 405, "method_not_allowed"),
			"POST: 405");
	}
	{
		static const char req[] = "GET /v1/whoami HTTP/1.1\r\nHost: kura\r\n"
					  "Content-Length: 3\r\nConnection: close\r\n\r\nabc";

		tap_ok(request("workload.sock", req, sizeof(req) - 1, &r) == 0 &&
				error_is(&r, 400, "bad_request"),
			"a body: 400");
	}
	{
		static const char req[] = "GET /v1/whoami HTTP/1.1\r\nHost: kura\r\n"
					  "Content-Length: 0\r\nContent-Length: 0\r\n\r\n";

		tap_ok(request("workload.sock", req, sizeof(req) - 1, &r) == 0 && r.status == 400 &&
				header_is(&r, "Connection", "close"),
			"two Content-Lengths: 400 and the connection closed");
	}

	tap_ok(get("workload.sock", "/v1/watch", NULL, &r) == 0 && error_is(&r, 400, "bad_request"),
		"watch without since: 400");
	tap_ok(get("workload.sock", "/v1/watch?since=x", NULL, &r) == 0 &&
			error_is(&r, 400, "bad_request"),
		"watch since=x: 400");
	tap_ok(get("workload.sock", "/v1/watch?since=0&timeout=0", NULL, &r) == 0 &&
			error_is(&r, 400, "bad_request"),
		"watch timeout=0: 400");
	tap_ok(get("workload.sock", "/v1/watch?since=1&timeout=1", NULL, &r) == 0 &&
			r.status == 200,
		"watch from before kurad started: 200 at once");
	j = body_json(&r);
	tap_ok(json_is_true(json_object_get(j, "resync")) &&
			json_array_size(json_object_get(j, "changed")) == 0,
		"... saying resync (list again): the index starts at kurad's start");
	{
		char path[128];
		int64_t rev = json_integer_value(json_object_get(j, "revision")), t0, ms;

		snprintf(path, sizeof(path), "/v1/watch?since=%lld&timeout=1", (long long)rev);
		t0 = kura_clock_ms();
		tap_ok(get("workload.sock", path, NULL, &r) == 0 && r.status == 200,
			"watch from the current revision: 200");
		ms = kura_clock_ms() - t0;
		tap_ok(ms >= 900, "... once its timeout is out (%lld ms)", (long long)ms);
		/* Another writer (kuractl offline) changes the store; the poll hears of it. */
		tap_ok(put_offline("app/new") == 0 && put_offline("other/y") == 0,
			"another process writes app/new and other/y");
		snprintf(path, sizeof(path), "/v1/watch?since=%lld&timeout=5", (long long)rev);
		t0 = kura_clock_ms();
		tap_ok(get("workload.sock", path, NULL, &r) == 0 && r.status == 200,
			"watch from before the writes: 200");
		ms = kura_clock_ms() - t0;
		json_decref(j);
		j = body_json(&r);
		tap_ok(json_array_size(json_object_get(j, "changed")) == 1 &&
				strcmp(json_string_value(json_array_get(json_object_get(j, "changed"), 0)) ?:
						"",
					"app/new") == 0 &&
				ms < 4000,
			"... told app/new only (the readable one), in %lld ms: %s", (long long)ms,
			r.body);
	}
	json_decref(j);
}

static void test_admin(void)
{
	char path[128];
	struct resp r;
	json_t *j;

	tap_ok(get("admin.sock", "/v1/status", NULL, &r) == 0 && r.status == 200, "status: 200");
	j = body_json(&r);
	tap_ok(strcmp(json_string_value(json_object_get(j, "state_dir")) ?: "", state) == 0 &&
			json_integer_value(json_object_get(j, "revision")) > 0 &&
			json_is_object(json_object_get(j, "workload")),
		"status: the state directory, revision and workload counters");
	json_decref(j);

	snprintf(path, sizeof(path), "/v1/whois?pid=%d", (int)getpid());
	tap_ok(get("admin.sock", path, NULL, &r) == 0 && r.status == 200, "whois pid: 200");
	j = body_json(&r);
	tap_ok(json_is_true(json_object_get(json_object_get(j, "identity"), "host")) &&
			json_array_size(json_object_get(j, "readable")) == 2 &&
			json_array_size(json_object_get(j, "grants")) == 1,
		"whois: a host identity that may read app/db and app/new under one grant");
	json_decref(j);
	tap_ok(get("admin.sock", "/v1/whois", NULL, &r) == 0 && error_is(&r, 400, "bad_request"),
		"whois without pid or container: 400");
	tap_ok(get("admin.sock", "/v1/whois?pid=1&container=x", NULL, &r) == 0 &&
			error_is(&r, 400, "bad_request"),
		"whois with both: 400");
	tap_ok(get("admin.sock", "/v1/whois?pid=abc", NULL, &r) == 0 &&
			error_is(&r, 400, "bad_request"),
		"whois pid=abc: 400");
	tap_ok(get("admin.sock", "/v1/whois?pid=4194304", NULL, &r) == 0 &&
			error_is(&r, 404, "not_found"),
		"whois of a pid no process has: 404");
	tap_ok(post("/v1/op/no.such", "{}", &r) == 0 && error_is(&r, 404, "not_found"),
		"an unknown operation: 404");
	tap_ok(post("/v1/op/secret.list", "[1]", &r) == 0 && error_is(&r, 400, "bad_request"),
		"arguments that are not an object: 400");
	tap_ok(post("/v1/op/secret.list", "{", &r) == 0 && error_is(&r, 400, "bad_request"),
		"arguments that are not JSON: 400");
	tap_ok(get("admin.sock", "/v1/nothing", NULL, &r) == 0 && error_is(&r, 404, "not_found"),
		"an unknown endpoint: 404");
	tap_ok(get("workload.sock", "/v1/whoami", NULL, &r) == 0 && r.status == 200,
		"the workload socket still serves after all of that");
}

/* Every request above left a record; the fetches of values say which version. */
static void test_records(void)
{
	char path[700], *buf = NULL;
	bool no_grant = false, not_found = false;
	size_t len = 0;
	int fetches = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/audit/audit-000001.jsonl", state);
	f = fopen(path, "re");
	if (!f || getdelim(&buf, &len, '\0', f) < 0) {
		tap_ok(false, "read %s", path);
		if (f)
			fclose(f);
		free(buf);
		return;
	}
	fclose(f);
	for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
		json_t *rec = json_loads(line, 0, NULL);
		const char *ev = json_string_value(json_object_get(rec, "event"));
		const char *res = json_string_value(json_object_get(rec, "result"));
		const char *fp = json_string_value(json_object_get(rec, "fingerprint"));

		if (ev && res && fp && strcmp(ev, "fetch") == 0 && strcmp(res, "ok") == 0 &&
			json_integer_value(json_object_get(rec, "version")) == 1 &&
			strncmp(fp, "b2:", 3) == 0)
			fetches++;
		no_grant = no_grant || strstr(line, "\"reason\":\"no_grant\"");
		not_found = not_found || strstr(line, "\"reason\":\"not_found\"");
		json_decref(rec);
	}
	tap_is(fetches, 3,
		"the audit log holds the three fetches of a value, version and fingerprint");
	tap_ok(no_grant && not_found, "and the refusals, with their reasons");
	free(buf);
}

int main(void)
{
	if (kura_keys_init() < 0 || !mkdtemp(root))
		return 99;
	kura_json_init();
	if (!tap_ok(setup() == 0, "kurad starts on a fresh state")) {
		kura_daemon_stop(&d);
		return tap_done();
	}
	test_workload();
	test_admin();
	kura_daemon_stop(&d);
	test_records();
	tap_rmtree(root);
	return tap_done();
}

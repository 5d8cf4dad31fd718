/* kuractl status and kuractl metrics: what the running kurad says of itself on admin.sock
 * (GET /v1/status?probe=1, GET /metrics), for a person or, with --json, for a program. No
 * plaintext: neither endpoint carries a value or a secret's name. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "escape.h"

static const char status_usage[] =
	"Usage: kuractl status [--run-dir DIR] [--json]\n"
	"\n"
	"What the running kurad is doing: its version, uptime and processes, each configured\n"
	"runtime and whether it answers now, the store and its revision, the audit log (whether\n"
	"it can be written, its last seq) and its sinks (queue, drops, last error), and the\n"
	"main counters (fetches by reason, refusals by limit, connections, identity cache).\n"
	"--json prints kurad's status document with \"healthy\" and \"problems\" added.\n"
	"Asks kurad over RUN_DIR/admin.sock (default /run/kura), which is root's only.\n"
	"Exit status: 0 healthy, 1 not root or the socket is not to be trusted, 2 usage,\n"
	"3 kurad answers but something is wrong (the audit log cannot be written, a runtime\n"
	"does not answer or is unknown, a sink is down), 10 kurad is not running or does not\n"
	"answer.\n";

static const char metrics_usage[] =
	"Usage: kuractl metrics [--run-dir DIR]\n"
	"\n"
	"Print the running kurad's metrics as its admin.sock serves them at GET /metrics, in\n"
	"the Prometheus text exposition format (README lists them). Root only, like the socket.\n"
	"Exit status: 0 ok, 1 not root or the socket is not to be trusted, 2 usage, 3 kurad\n"
	"answered with an error, 10 kurad is not running or does not answer.\n";

/* Parse the options of a command that takes none of its own. */
static int no_args(struct ctl *c, int argc, char **argv, const char *usage, const char *name)
{
	static const struct option opts[] = {
		CTL_COMMON_OPTIONS,
	};
	int opt;

	while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (ctl_common_option(c, opt, optarg))
			continue;
		if (opt == 'h') {
			fputs(usage, stdout);
			return KURA_EXIT_OK;
		}
		return ctl_bad_option(opt, argv);
	}
	if (optind < argc)
		return ctl_usage("%s takes no arguments", name);
	return -1;
}

/* kurad unreachable, untrusted or refusing: say which, with the exit status for it. */
static int unreachable(struct ctl *c, int r, const struct kura_err *err)
{
	char sock[4200];

	snprintf(sock, sizeof(sock), "%s/admin.sock", c->run_dir);
	/* The socket is 0600 root: to anyone else it looks like no kurad at all. */
	if (geteuid() != 0 && access(sock, F_OK) == 0 && access(sock, W_OK) < 0 &&
		errno == EACCES) {
		fprintf(stderr, "kuractl: %s is root's only; run this as root\n", sock);
		return KURA_EXIT_REFUSED;
	}
	ctl_fail(r, err);
	return r == -EPERM ? KURA_EXIT_REFUSED : KURA_EXIT_UNREACHABLE;
}

static const char *esc(const json_t *v, char buf[static 512])
{
	const char *s = json_string_value(v);

	return s ? kura_escape(s, json_string_length(v), KURA_ESCAPE_TEXT, buf, 512) : "-";
}

static long long num(const json_t *o, const char *k)
{
	return (long long)json_integer_value(json_object_get(o, k));
}

/* What is wrong, as short phrases, into problems. */
static void judge(const json_t *j, json_t *problems)
{
	const json_t *v, *audit = json_object_get(j, "audit");
	char b1[512], b2[512];
	size_t i;

	if (!json_is_true(json_object_get(audit, "healthy")))
		json_array_append_new(problems,
			json_string("the audit log cannot be written: secrets are refused"));
	json_array_foreach(json_object_get(j, "runtime_checks"), i, v) {
		char line[1200];

		if (!json_is_true(json_object_get(v, "known")))
			snprintf(line, sizeof(line), "runtime %s is not one kurad knows",
				esc(json_object_get(v, "name"), b1));
		else if (!json_is_true(json_object_get(v, "answers")))
			snprintf(line, sizeof(line), "runtime %s does not answer: %s",
				esc(json_object_get(v, "name"), b1),
				esc(json_object_get(v, "error"), b2));
		else
			continue;
		json_array_append_new(problems, json_string(line));
	}
	json_array_foreach(json_object_get(j, "sinks"), i, v) {
		char line[1200];

		if (json_is_true(json_object_get(v, "up")))
			continue;
		snprintf(line, sizeof(line), "audit sink %s is down: %s",
			esc(json_object_get(v, "name"), b1),
			esc(json_object_get(v, "last_error"), b2));
		json_array_append_new(problems, json_string(line));
	}
}

/* "3 (ok 2, no_grant 1)": the total and the counts that are not zero. */
static void print_counts(const char *label, const json_t *o, const char *none)
{
	const char *k;
	json_t *v;
	bool any = false;

	fputs(label, stdout);
	if (json_object_get(o, "total"))
		printf("%lld", num(o, "total"));
	json_object_foreach((json_t *)o, k, v) {
		if (strcmp(k, "total") == 0 || json_integer_value(v) == 0)
			continue;
		printf("%s%s %lld",
			any                                 ? ", " :
				json_object_get(o, "total") ? " (" :
							      "",
			k, (long long)json_integer_value(v));
		any = true;
	}
	if (any && json_object_get(o, "total"))
		putchar(')');
	if (!any && !json_object_get(o, "total"))
		fputs(none, stdout);
	putchar('\n');
}

static const char *pid_text(const json_t *pids, const char *k, char buf[static 32])
{
	if (!json_is_integer(json_object_get(pids, k)))
		return "-";
	snprintf(buf, 32, "%lld", num(pids, k));
	return buf;
}

static void print_status(const json_t *j, const json_t *problems)
{
	const json_t *pids = json_object_get(j, "pids"), *audit = json_object_get(j, "audit");
	const json_t *wl = json_object_get(j, "workload"), *id = json_object_get(j, "identity");
	const json_t *v;
	char b1[512], b2[512], b3[512], when[KURA_RFC3339_LEN];
	long long up = (long long)json_number_value(json_object_get(j, "uptime_s"));
	size_t i;

	printf("kurad:      %s, up %lldd %02lldh %02lldm %02llds (since %s)\n",
		esc(json_object_get(j, "version"), b1), up / 86400, up / 3600 % 24, up / 60 % 60,
		up % 60, kura_rfc3339(num(j, "started"), when));
	/* The front's pid comes with its first counters, a second after start. */
	printf("processes:  supervisor %s, keeper %s, front %s, net %s\n",
		pid_text(pids, "supervisor", b1), pid_text(pids, "keeper", b2),
		pid_text(pids, "front", b3), pid_text(pids, "net", when));
	printf("store:      %s, revision %lld\n", esc(json_object_get(j, "state_dir"), b1),
		num(j, "revision"));
	if (!json_array_size(json_object_get(j, "runtime_checks")))
		puts("runtimes:   none configured (host processes only)");
	json_array_foreach(json_object_get(j, "runtime_checks"), i, v) {
		const char *state = !json_is_true(json_object_get(v, "known")) ?
			"unknown runtime: never used" :
			json_is_true(json_object_get(v, "answers")) ?
			"answers" :
			esc(json_object_get(v, "error"), b3);

		printf("%s%s %s: %s%s\n",
			i ? "            " : "runtimes:   ", esc(json_object_get(v, "name"), b1),
			esc(json_object_get(v, "endpoint"), b2),
			json_is_true(json_object_get(v, "answers")) ? "" : "NOT ANSWERING, ",
			state);
	}
	printf("audit log:  %s, head seq %lld, %lld records written since start\n",
		json_is_true(json_object_get(audit, "healthy")) ? "healthy" : "CANNOT BE WRITTEN",
		num(audit, "head_seq"), num(audit, "written"));
	if (!json_array_size(json_object_get(j, "sinks")))
		puts("sinks:      none configured");
	json_array_foreach(json_object_get(j, "sinks"), i, v) {
		printf("%s%s: %s, ",
			i ? "            " : "sinks:      ", esc(json_object_get(v, "name"), b1),
			json_is_true(json_object_get(v, "up")) ? "up" : "DOWN");
		if (json_is_integer(json_object_get(v, "queued")))
			printf("%lld queued, ", num(v, "queued"));
		printf("%lld dropped, %lld failures", num(v, "dropped"), num(v, "failures"));
		if (json_is_string(json_object_get(v, "last_error")))
			printf(", last error: %s", esc(json_object_get(v, "last_error"), b2));
		putchar('\n');
	}
	print_counts("fetches:    ", json_object_get(j, "fetches"), "");
	print_counts("refusals:   ", json_object_get(j, "refusals"), "none");
	printf("workload:   %lld connections, %lld long polls, %lld principals, %lld evicted\n",
		num(wl, "connections"), num(wl, "watches"), num(wl, "principals"),
		num(wl, "evictions"));
	printf("identity:   %lld cache hits, %lld misses, %lld runtime inspects\n", num(id, "hits"),
		num(id, "misses"), num(id, "inspects"));
	if (!json_array_size(problems))
		puts("health:     ok");
	json_array_foreach(problems, i, v)
		printf("%s%s\n", i ? "            " : "health:     PROBLEM: ", esc(v, b1));
}

int ctl_status(struct ctl *c, int argc, char **argv)
{
	struct kura_err err = { 0 };
	json_t *j = NULL, *problems;
	long status = 0;
	int r;

	r = no_args(c, argc, argv, status_usage, "status");
	if (r >= 0)
		return r;
	r = ctl_admin_get(c, "/v1/status?probe=1", &status, &j, &err);
	if (r < 0)
		return unreachable(c, r, &err);
	if (status != 200 || !json_object_get(j, "version")) {
		char b[512];

		fprintf(stderr, "kuractl: kurad answered %ld: %s\n", status,
			json_is_string(json_object_get(j, "message")) ?
				esc(json_object_get(j, "message"), b) :
				"not a status this kuractl knows (an older kurad?)");
		json_decref(j);
		return KURA_EXIT_SYSTEM;
	}
	problems = json_array();
	judge(j, problems);
	r = json_array_size(problems) ? KURA_EXIT_SYSTEM : KURA_EXIT_OK;
	if (c->json) {
		json_object_set_new(j, "healthy", json_boolean(r == KURA_EXIT_OK));
		json_object_set_new(j, "problems", problems);
		return ctl_print_json(j) == KURA_EXIT_OK ? r : KURA_EXIT_SYSTEM;
	}
	print_status(j, problems);
	json_decref(problems);
	json_decref(j);
	return r;
}

int ctl_metrics(struct ctl *c, int argc, char **argv)
{
	struct kura_err err = { 0 };
	struct kura_secbuf *body = NULL;
	long status = 0;
	int r;

	r = no_args(c, argc, argv, metrics_usage, "metrics");
	if (r >= 0)
		return r;
	if (c->json)
		return ctl_usage("metrics are text (the Prometheus format); there is no --json");
	r = ctl_admin_get_raw(c, "/metrics", &status, &body, &err);
	if (r < 0)
		return unreachable(c, r, &err);
	if (status != 200) {
		fprintf(stderr, "kuractl: kurad answered %ld to GET /metrics (an older kurad?)\n",
			status);
		kura_secbuf_free(body);
		return KURA_EXIT_SYSTEM;
	}
	fflush(stdout);
	r = kura_secbuf_write_fd(body, STDOUT_FILENO);
	kura_secbuf_free(body);
	if (r < 0) {
		fprintf(stderr, "kuractl: cannot write output: %s\n", strerror(-r));
		return KURA_EXIT_SYSTEM;
	}
	return KURA_EXIT_OK;
}

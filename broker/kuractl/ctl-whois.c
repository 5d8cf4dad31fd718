/* kuractl whois: ask the running kurad (admin.sock) what identity it derives for a pid or a
 * container, and which secrets that identity could read. No plaintext. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "escape.h"

static const char whois_usage[] =
	"Usage: kuractl whois PID|CONTAINER [--run-dir DIR] [--json]\n"
	"\n"
	"Show the identity kurad gives a process (by PID) or a container's processes (by ID or\n"
	"name): host or container, runtime, container ID and name, image ID, repo digests,\n"
	"labels, and the secrets and grants that identity matches. The tool for writing a grant.\n"
	"Needs a running kurad: asks it over RUN_DIR/admin.sock (default /run/kura).\n"
	"Only a kurad run by root (or by this user) in a run directory nobody else can write\n"
	"is asked. Every name, label and ID is shown with control characters escaped (\\xNN,\n"
	"\\u{N}): they come from the runtime, image authors and containers.\n"
	"Exit status: 0 ok, 1 not found, kurad would give it no identity, or the socket is\n"
	"not to be trusted, 2 usage, 3 kurad not reachable or the runtime did not answer.\n";

/* Every string here came from the runtime, an image author or the container itself (labels,
 * names), by way of kurad: escaped before it reaches the terminal. */
static const char *esc(const json_t *v, char buf[static 1024])
{
	const char *s = json_string_value(v);

	return s ? kura_escape(s, json_string_length(v), KURA_ESCAPE_TEXT, buf, 1024) : "-";
}

static void print_identity(const json_t *id)
{
	const json_t *labels = json_object_get(id, "labels"), *v;
	char b1[1024], b2[1024], b3[1024], b4[1024];
	const char *k;
	size_t i;

	if (json_is_true(json_object_get(id, "host"))) {
		printf("identity:     host process, uid %lld\n",
			(long long)json_integer_value(json_object_get(id, "uid")));
		return;
	}
	printf("runtime:      %s\ncontainer:    %s\nname:         %s\nimage:        %s\n"
	       "uid:          %lld\n",
		esc(json_object_get(id, "runtime"), b1),
		esc(json_object_get(id, "container_id"), b2), esc(json_object_get(id, "name"), b3),
		esc(json_object_get(id, "image_id"), b4),
		(long long)json_integer_value(json_object_get(id, "uid")));
	json_array_foreach(json_object_get(id, "repo_digests"), i, v)
		printf("digest:       %s\n", esc(v, b1));
	json_object_foreach((json_t *)labels, k, v)
		printf("label:        %s=%s\n",
			kura_escape(k, strlen(k), KURA_ESCAPE_TEXT, b1, sizeof(b1)), esc(v, b2));
	/* Chosen by whoever built the image: shown apart, as --image-label matches them. */
	json_object_foreach(json_object_get(id, "image_labels"), k, v)
		printf("image-label:  %s=%s\n",
			kura_escape(k, strlen(k), KURA_ESCAPE_TEXT, b1, sizeof(b1)), esc(v, b2));
}

/* The names of a list, after a label, or " (none)". */
static void print_names(const char *label, const json_t *list)
{
	const json_t *v;
	char b[1024];
	size_t i;

	fputs(label, stdout);
	json_array_foreach(list, i, v)
		printf(" %s", esc(v, b));
	puts(json_array_size(list) ? "" : " (none)");
}

int ctl_whois(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		CTL_COMMON_OPTIONS,
	};
	struct kura_err err = { 0 };
	const char *target = NULL;
	char url[512];
	json_t *j = NULL;
	long status = 0;
	int opt, r, rc;

	while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (ctl_common_option(c, opt, optarg))
			continue;
		if (opt == 'h') {
			fputs(whois_usage, stdout);
			return KURA_EXIT_OK;
		}
		return ctl_bad_option(opt, argv);
	}
	if (optind < argc)
		target = argv[optind++];
	if (!target || optind < argc)
		return ctl_usage("whois takes one PID or CONTAINER");
	if (strspn(target, "0123456789") == strlen(target)) {
		snprintf(url, sizeof(url), "/v1/whois?pid=%s", target);
	} else {
		/* Container IDs and names are [A-Za-z0-9_.-]: nothing to escape, nothing else
		 * accepted. */
		if (strlen(target) > 256 ||
			strspn(target,
				"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") !=
				strlen(target))
			return ctl_usage("a container is named by its ID or name ([A-Za-z0-9_.-])");
		snprintf(url, sizeof(url), "/v1/whois?container=%s", target);
	}
	r = ctl_admin_get(c, url, &status, &j, &err);
	if (r < 0) {
		ctl_fail(r, &err);
		return r == -EPERM ? KURA_EXIT_REFUSED : KURA_EXIT_SYSTEM;
	}
	if (status != 200) {
		const json_t *m = json_object_get(j, "message");
		char b[1024];

		fprintf(stderr, "kuractl: %s\n", json_is_string(m) ? esc(m, b) : "kurad refused");
		rc = status == 503    ? KURA_EXIT_SYSTEM :
			status == 400 ? KURA_EXIT_USAGE :
					KURA_EXIT_REFUSED;
		json_decref(j);
		return rc;
	}
	if (c->json)
		return ctl_print_json(j);
	print_identity(json_object_get(j, "identity"));
	print_names("readable:    ", json_object_get(j, "readable"));
	print_names("grants:      ", json_object_get(j, "grants"));
	json_decref(j);
	return KURA_EXIT_OK;
}

/* kuractl whois: ask the running kurad (admin.sock) what identity it derives for a pid or a
 * container, and which secrets that identity could read. No plaintext. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"

static const char whois_usage[] =
	"Usage: kuractl whois PID|CONTAINER [--run-dir DIR] [--json]\n"
	"\n"
	"Show the identity kurad gives a process (by PID) or a container's processes (by ID or\n"
	"name): host or container, runtime, container ID and name, image ID, repo digests,\n"
	"labels, and the secrets and grants that identity matches. The tool for writing a grant.\n"
	"Needs a running kurad: asks it over RUN_DIR/admin.sock (default /run/kura).\n"
	"Only a kurad run by root (or by this user) in a run directory nobody else can write\n"
	"is asked.\n"
	"Exit status: 0 ok, 1 not found, kurad would give it no identity, or the socket is\n"
	"not to be trusted, 2 usage, 3 kurad not reachable or the runtime did not answer.\n";

/* Names and labels come from image authors: no control character reaches the terminal. */
static const char *safe(const char *s, char buf[static 1024])
{
	size_t i;

	for (i = 0; s && s[i] && i < 1023; i++)
		buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
	buf[i] = '\0';
	return buf;
}

static void print_identity(const json_t *id)
{
	const json_t *labels = json_object_get(id, "labels"), *digests, *v;
	char b1[1024], b2[1024];
	const char *k;
	size_t i;

	if (json_is_true(json_object_get(id, "host"))) {
		printf("identity:     host process, uid %lld\n",
			(long long)json_integer_value(json_object_get(id, "uid")));
		return;
	}
	printf("runtime:      %s\ncontainer:    %s\nname:         %s\nimage:        %s\n"
	       "uid:          %lld\n",
		json_string_value(json_object_get(id, "runtime")),
		json_string_value(json_object_get(id, "container_id")),
		safe(json_string_value(json_object_get(id, "name")), b1),
		json_string_value(json_object_get(id, "image_id")),
		(long long)json_integer_value(json_object_get(id, "uid")));
	digests = json_object_get(id, "repo_digests");
	json_array_foreach(digests, i, v)
		printf("digest:       %s\n", json_string_value(v));
	json_object_foreach((json_t *)labels, k, v)
		printf("label:        %s=%s\n", safe(k, b1), safe(json_string_value(v), b2));
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
			return EXIT_OK;
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
			strspn(target, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") !=
				strlen(target))
			return ctl_usage("a container is named by its ID or name ([A-Za-z0-9_.-])");
		snprintf(url, sizeof(url), "/v1/whois?container=%s", target);
	}
	r = ctl_admin_get(c, url, &status, &j, &err);
	if (r < 0) {
		ctl_fail(r, &err);
		return r == -EPERM ? EXIT_REFUSED : EXIT_SYSTEM;
	}
	if (status != 200) {
		fprintf(stderr, "kuractl: %s\n",
			json_string_value(json_object_get(j, "message")) ?: "kurad refused");
		rc = status == 503 ? EXIT_SYSTEM : status == 400 ? EXIT_USAGE : EXIT_REFUSED;
		json_decref(j);
		return rc;
	}
	if (c->json)
		return ctl_print_json(j);
	{
		const json_t *v;
		size_t i;

		print_identity(json_object_get(j, "identity"));
		printf("readable:    ");
		json_array_foreach(json_object_get(j, "readable"), i, v)
			printf(" %s", json_string_value(v));
		printf("%s\ngrants:      ", json_array_size(json_object_get(j, "readable")) ? "" :
											" (none)");
		json_array_foreach(json_object_get(j, "grants"), i, v)
			printf(" %s", json_string_value(v));
		printf("%s\n", json_array_size(json_object_get(j, "grants")) ? "" : " (none)");
	}
	json_decref(j);
	return EXIT_OK;
}

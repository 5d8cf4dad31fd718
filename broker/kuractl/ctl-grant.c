/* kuractl grant, revoke, grants: who may read which secrets. No plaintext here. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "clock.h"
#include "number.h"
#include "escape.h"
#include "grant.h"

static const char grant_usage[] =
	"Usage: kuractl grant NAME|PREFIX/* SELECTOR...\n"
	"       kuractl revoke ID | NAME|PREFIX/* SELECTOR...\n"
	"       kuractl grants [--json]\n"
	"\n"
	"A grant lets the processes matching ALL its selectors read the secret NAME, or every\n"
	"secret below PREFIX/. Several grants are alternatives. Without a matching grant, a read\n"
	"is refused (default deny).\n"
	"\n"
	"Selectors:\n"
	"  --image sha256:HEX        the container runs this image ID (never a tag: tags move)\n"
	"  --digest REPO@sha256:HEX  the container's image has this repository digest\n"
	"  --name NAME               the container's name\n"
	"  --label KEY=VALUE         the container was created with this label (repeatable; all\n"
	"                            must match). Labels that come from the image never match,\n"
	"                            nor does a run label that repeats the image's exactly\n"
	"  --image-label KEY=VALUE   the container's image has this label (repeatable). WARNING:\n"
	"                            whoever built the image chose it, and anyone can build an\n"
	"                            image with any label; combine it with --image or --digest\n"
	"  --runtime NAME            docker, podman, containerd or crio\n"
	"  --uid N                   the process runs as uid N (with --host or a container\n"
	"                            selector)\n"
	"  --host                    a process in no container (with --uid: that user only)\n"
	"\n"
	"The same grant given twice is stored once. `revoke` takes the ID that `grants` shows, or\n"
	"the same arguments the grant was made with.\n"
	"Options: --json, --state-dir, --key-file, --passphrase-file as for kuractl.\n"
	"Exit status: 0 ok, 1 not found or refused, 2 usage or an invalid grant, 3 system error.\n";

enum {
	OPT_IMAGE = 0x400,
	OPT_DIGEST,
	OPT_NAME,
	OPT_LABEL,
	OPT_IMAGE_LABEL,
	OPT_RUNTIME,
	OPT_UID,
	OPT_HOST,
};

/* KEY=VALUE from opt (--label or --image-label) appended to *keys, *values, *n. */
static int add_label(char ***keys, char ***values, size_t *n, const char *opt, const char *kv)
{
	const char *eq = strchr(kv, '=');
	char **k, **v;

	if (!eq)
		return ctl_usage("%s takes KEY=VALUE", opt);
	if (*n >= KURA_GRANT_MAX_LABELS)
		return ctl_usage("a grant takes at most %u of %s", KURA_GRANT_MAX_LABELS, opt);
	k = realloc(*keys, (*n + 1) * sizeof(*k));
	if (k)
		*keys = k;
	v = realloc(*values, (*n + 1) * sizeof(*v));
	if (v)
		*values = v;
	if (!k || !v)
		return ctl_fail(-ENOMEM, NULL);
	(*keys)[*n] = strndup(kv, (size_t)(eq - kv));
	(*values)[*n] = strdup(eq + 1);
	(*n)++;
	if (!(*keys)[*n - 1] || !(*values)[*n - 1])
		return ctl_fail(-ENOMEM, NULL);
	return 0;
}

static int set_once(char **field, const char *opt, const char *value)
{
	if (*field)
		return ctl_usage("%s given twice", opt);
	*field = strdup(value);
	return *field ? 0 : ctl_fail(-ENOMEM, NULL);
}

/* Parse a grant's pattern and selectors (or, for revoke, possibly a bare id). */
static int parse(struct ctl *c, int argc, char **argv, struct kura_grant *g, const char **ret_arg,
	bool *help)
{
	static const struct option opts[] = {
		{ "image", required_argument, NULL, OPT_IMAGE },
		{ "digest", required_argument, NULL, OPT_DIGEST },
		{ "name", required_argument, NULL, OPT_NAME },
		{ "label", required_argument, NULL, OPT_LABEL },
		{ "image-label", required_argument, NULL, OPT_IMAGE_LABEL },
		{ "runtime", required_argument, NULL, OPT_RUNTIME },
		{ "uid", required_argument, NULL, OPT_UID },
		{ "host", no_argument, NULL, OPT_HOST },
		CTL_COMMON_OPTIONS,
	};
	uint64_t uid;
	int opt, r = 0;

	while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1 && r == 0) {
		if (ctl_common_option(c, opt, optarg))
			continue;
		switch (opt) {
		case 'h':
			*help = true;
			return 0;
		case OPT_IMAGE:
			r = set_once(&g->image, "--image", optarg);
			break;
		case OPT_DIGEST:
			r = set_once(&g->digest, "--digest", optarg);
			break;
		case OPT_NAME:
			r = set_once(&g->name, "--name", optarg);
			break;
		case OPT_RUNTIME:
			r = set_once(&g->runtime, "--runtime", optarg);
			break;
		case OPT_LABEL:
			r = add_label(&g->label_keys, &g->label_values, &g->n_labels, "--label",
				optarg);
			break;
		case OPT_IMAGE_LABEL:
			r = add_label(&g->image_label_keys, &g->image_label_values,
				&g->n_image_labels, "--image-label", optarg);
			break;
		case OPT_UID:
			if (!kura_parse_u64(optarg, 0, UINT32_MAX - 1, &uid))
				return ctl_usage("--uid takes a numeric uid");
			g->has_uid = true;
			g->uid = (uid_t)uid;
			break;
		case OPT_HOST:
			g->host = true;
			break;
		default:
			return ctl_bad_option(opt, argv);
		}
	}
	if (r != 0)
		return r;
	if (optind < argc)
		*ret_arg = argv[optind++];
	if (optind < argc)
		return ctl_usage("unexpected argument '%s'", argv[optind]);
	return 0;
}

static json_t *grant_json(const struct kura_grant *g)
{
	json_t *j = json_pack("{s:s, s:s}", "id", g->id, "secret", g->pattern), *labels;
	char t[32];

	if (!j)
		return NULL;
	if (g->host)
		json_object_set_new(j, "host", json_true());
	if (g->has_uid)
		json_object_set_new(j, "uid", json_integer(g->uid));
	if (g->runtime)
		json_object_set_new(j, "runtime", json_string(g->runtime));
	if (g->image)
		json_object_set_new(j, "image", json_string(g->image));
	if (g->digest)
		json_object_set_new(j, "digest", json_string(g->digest));
	if (g->name)
		json_object_set_new(j, "name", json_string(g->name));
	labels = json_object();
	for (size_t i = 0; i < g->n_labels; i++)
		json_object_set_new(labels, g->label_keys[i], json_string(g->label_values[i]));
	json_object_set_new(j, "labels", labels);
	labels = json_object();
	for (size_t i = 0; i < g->n_image_labels; i++)
		json_object_set_new(labels, g->image_label_keys[i],
			json_string(g->image_label_values[i]));
	json_object_set_new(j, "image_labels", labels);
	json_object_set_new(j, "created", json_string(kura_rfc3339(g->created, t)));
	return j;
}

/* One selector, its value escaped: grants are read from the store, and label values are any
 * text the operator (or whoever wrote the store) chose. */
static void print_selector(const char *opt, const char *key, const char *value)
{
	char k[1024], v[1024];

	if (key)
		printf(" %s %s=%s", opt,
			kura_escape(key, strlen(key), KURA_ESCAPE_TEXT, k, sizeof(k)),
			kura_escape(value, strlen(value), KURA_ESCAPE_TEXT, v, sizeof(v)));
	else
		printf(" %s %s", opt,
			kura_escape(value, strlen(value), KURA_ESCAPE_TEXT, v, sizeof(v)));
}

/* The selectors of g as the command-line arguments that make it. */
static void print_selectors(const struct kura_grant *g)
{
	if (g->host)
		printf(" --host");
	if (g->has_uid)
		printf(" --uid %u", (unsigned)g->uid);
	if (g->runtime)
		print_selector("--runtime", NULL, g->runtime);
	if (g->image)
		print_selector("--image", NULL, g->image);
	if (g->digest)
		print_selector("--digest", NULL, g->digest);
	if (g->name)
		print_selector("--name", NULL, g->name);
	for (size_t i = 0; i < g->n_labels; i++)
		print_selector("--label", g->label_keys[i], g->label_values[i]);
	for (size_t i = 0; i < g->n_image_labels; i++)
		print_selector("--image-label", g->image_label_keys[i], g->image_label_values[i]);
}

static int cmd_grant(struct ctl *c, struct kura_grant *g)
{
	struct kura_err err = { 0 };
	const char *rule;
	bool existed = false;
	int r;

	if (!g->pattern)
		return ctl_usage("grant needs a secret NAME or PREFIX/*");
	rule = kura_grant_invalid(g);
	if (rule)
		return ctl_usage("invalid grant: %s", rule);
	r = ctl_connect(c);
	if (r > 0)
		return r;
	r = be_grant_add(c, g, &existed, &err);
	ctl_disconnect(c);
	if (r < 0)
		return ctl_fail(r, &err);
	if (c->json) {
		json_t *j = grant_json(g);

		json_object_set_new(j, "existed", json_boolean(existed));
		return ctl_print_json(j);
	}
	printf("%s %s %s", existed ? "grant exists:" : "granted:", g->id, g->pattern);
	print_selectors(g);
	putchar('\n');
	return KURA_EXIT_OK;
}

static int cmd_revoke(struct ctl *c, struct kura_grant *g, const char *arg)
{
	struct kura_err err = { 0 };
	const char *id = arg;
	int r;

	if (!arg)
		return ctl_usage("revoke needs a grant ID, or NAME|PREFIX/* with its selectors");
	/* With selectors, the argument is the pattern of the grant to revoke. */
	if (g->host || g->has_uid || g->runtime || g->image || g->digest || g->name ||
		g->n_labels || g->n_image_labels) {
		const char *rule;

		g->pattern = strdup(arg);
		if (!g->pattern)
			return ctl_fail(-ENOMEM, NULL);
		rule = kura_grant_invalid(g);
		if (rule)
			return ctl_usage("invalid grant: %s", rule);
		kura_grant_set_id(g);
		id = g->id;
	}
	r = ctl_connect(c);
	if (r > 0)
		return r;
	r = be_grant_remove(c, id, &err);
	ctl_disconnect(c);
	if (r < 0)
		return ctl_fail(r, &err);
	if (c->json)
		return ctl_print_json(json_pack("{s:s, s:b}", "id", id, "revoked", 1));
	printf("revoked %s\n", id);
	return KURA_EXIT_OK;
}

static int cmd_grants(struct ctl *c)
{
	struct kura_grant_list l = { 0 };
	struct kura_err err = { 0 };
	json_t *arr = NULL;
	int r;

	r = ctl_connect(c);
	if (r > 0)
		return r;
	r = be_grant_list(c, &l, &err);
	ctl_disconnect(c);
	if (r < 0)
		return ctl_fail(r, &err);
	if (c->json)
		arr = json_array();
	else if (l.n > 0)
		printf("%-16s  %-30s  %s\n", "ID", "SECRET", "SELECTORS");
	for (size_t i = 0; i < l.n; i++) {
		if (arr) {
			json_array_append_new(arr, grant_json(&l.items[i]));
			continue;
		}
		printf("%-16s  %-30s ", l.items[i].id, l.items[i].pattern);
		print_selectors(&l.items[i]);
		putchar('\n');
	}
	kura_grant_list_done(&l);
	return arr ? ctl_print_json(arr) : KURA_EXIT_OK;
}

int ctl_grant(struct ctl *c, const char *cmd, int argc, char **argv)
{
	struct kura_grant g = { 0 };
	const char *arg = NULL;
	bool help = false;
	int r;

	r = parse(c, argc, argv, &g, &arg, &help);
	if (r == 0 && help) {
		fputs(grant_usage, stdout);
	} else if (r == 0 && strcmp(cmd, "grant") == 0) {
		if (arg) {
			g.pattern = strdup(arg);
			if (!g.pattern)
				r = ctl_fail(-ENOMEM, NULL);
		}
		if (r == 0)
			r = cmd_grant(c, &g);
	} else if (r == 0 && strcmp(cmd, "revoke") == 0) {
		r = cmd_revoke(c, &g, arg);
	} else if (r == 0) {
		r = arg ? ctl_usage("grants takes no arguments") : cmd_grants(c);
	}
	kura_grant_done(&g);
	return r;
}

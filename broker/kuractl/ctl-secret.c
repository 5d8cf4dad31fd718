/* kuractl secret: put, rotate, get, list, show, rollback, destroy. Reads values from stdin or a
 * file into guarded memory; writes them only for `get`. Touches plaintext. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <sodium.h>

#include "base64.h"
#include "ctl.h"
#include "clock.h"
#include "number.h"

static const char secret_usage[] =
	"Usage: kuractl secret COMMAND NAME [OPTIONS]\n"
	"\n"
	"  put NAME [--file F | --generate N [--printable]] [--allow-empty]\n"
	"      Store a new secret as version 1. The value comes from standard input (from a\n"
	"      terminal: typed without echo, ended by Ctrl-D, one trailing newline dropped),\n"
	"      from --file F, or from --generate N random bytes (--printable: N characters of\n"
	"      [A-Za-z0-9_-]). Never from the command line. Refuses an existing NAME.\n"
	"  rotate NAME [same value options]\n"
	"      Add a new version of NAME with a new DEK and make it current.\n"
	"  get NAME [--version V]\n"
	"      Write the value of the current (or given) version to standard output, byte for\n"
	"      byte. With --json: {name, version, created, size, value (base64)}.\n"
	"  list [PREFIX]\n"
	"      Names, current and latest versions, last update; PREFIX is a plain string\n"
	"      prefix (\"db/\" lists the db folder, \"db\" also matches \"db2\").\n"
	"  show NAME\n"
	"      Every version with its time, size and KEK id. Never a value.\n"
	"  rollback NAME --to V\n"
	"      Make version V current again.\n"
	"  destroy NAME [--version V]\n"
	"      Delete the ciphertext of one version (not the current one) or of the whole\n"
	"      secret, for good: the store zeroes freed pages and its write-ahead log.\n"
	"  import FILE | - | --dir DIR [--prefix P]\n"
	"      Load many new secrets from NDJSON or a directory tree, in batches of one\n"
	"      transaction each (kuractl secret import --help).\n"
	"  export [PREFIX] [--values (--output FILE | --dir DIR)]\n"
	"      Names and metadata as NDJSON; values only with --values, into a new 0600 file\n"
	"      or a new directory (kuractl secret export --help).\n"
	"\n"
	"Names: segments of [A-Za-z0-9._-] joined by '/', 1-255 bytes, no empty, '.' or '..'\n"
	"segment. Values: binary-safe, up to the store's limit (kuractl config).\n"
	"Options: --json, --state-dir, --key-file, --passphrase-file as for kuractl.\n"
	"Exit status: 0 ok, 1 refused or not found, 2 usage, 3 system error, 4 integrity.\n";

enum {
	OPT_FILE = 0x200,
	OPT_GENERATE,
	OPT_PRINTABLE,
	OPT_ALLOW_EMPTY,
	OPT_VERSION,
	OPT_TO,
};

struct secret_args {
	const char *file;
	uint64_t generate;
	bool printable;
	bool allow_empty;
	uint64_t version;
	uint64_t to;
	const char *name;
};

static int parse(struct ctl *c, int argc, char **argv, struct secret_args *a, bool *help)
{
	static const struct option opts[] = {
		{ "file", required_argument, NULL, OPT_FILE },
		{ "generate", required_argument, NULL, OPT_GENERATE },
		{ "printable", no_argument, NULL, OPT_PRINTABLE },
		{ "allow-empty", no_argument, NULL, OPT_ALLOW_EMPTY },
		{ "version", required_argument, NULL, OPT_VERSION },
		{ "to", required_argument, NULL, OPT_TO },
		CTL_COMMON_OPTIONS,
	};
	int opt;

	while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (ctl_common_option(c, opt, optarg))
			continue;
		switch (opt) {
		case 'h':
			*help = true;
			return 0;
		case OPT_FILE:
			a->file = optarg;
			break;
		case OPT_GENERATE:
			if (!kura_parse_u64(optarg, 1, 1u << 30, &a->generate))
				return ctl_usage("--generate takes a byte count from 1");
			break;
		case OPT_PRINTABLE:
			a->printable = true;
			break;
		case OPT_ALLOW_EMPTY:
			a->allow_empty = true;
			break;
		case OPT_VERSION:
			if (!kura_parse_u64(optarg, 1, UINT64_MAX, &a->version))
				return ctl_usage("--version takes a version number from 1");
			break;
		case OPT_TO:
			if (!kura_parse_u64(optarg, 1, UINT64_MAX, &a->to))
				return ctl_usage("--to takes a version number from 1");
			break;
		default:
			return ctl_bad_option(opt, argv);
		}
	}
	if (optind < argc)
		a->name = argv[optind++];
	/* Not echoed: a stray argument here is all too often a value typed in the wrong place. */
	if (optind < argc)
		return ctl_usage(
			"unexpected extra argument (a value never goes on the command line: "
			"use standard input, --file or --generate)");
	return 0;
}

/* Read a value from a terminal without echo. The trailing newline of the last line is the
 * terminal's, not the value's. */
static int read_tty(size_t max, struct kura_secbuf **ret)
{
	_cleanup_secbuf_ struct kura_secbuf *v = NULL;
	struct termios old, quiet;
	bool restore;
	int r;

	fputs("kuractl: enter the value, then Ctrl-D (not echoed)\n", stderr);
	restore = tcgetattr(STDIN_FILENO, &old) == 0;
	if (restore) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		(void)tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
	}
	r = kura_secbuf_read_fd(STDIN_FILENO, max + 1, &v);
	if (restore)
		(void)tcsetattr(STDIN_FILENO, TCSANOW, &old);
	if (r < 0)
		return r;
	if (v->len > 0 && v->data[v->len - 1] == '\n')
		v->len--;
	if (v->len > max)
		return -EFBIG;
	*ret = TAKE_PTR(v);
	return 0;
}

/* The value for put/rotate, from exactly one source. */
static int read_value(const struct ctl *c, const struct secret_args *a, size_t max,
	struct kura_secbuf **ret)
{
	_cleanup_secbuf_ struct kura_secbuf *v = NULL;
	int r;

	if (a->generate) {
		if (a->generate > max) {
			fprintf(stderr,
				"kuractl: --generate %llu is over this store's value limit "
				"of %zu bytes\n",
				(unsigned long long)a->generate, max);
			return KURA_EXIT_REFUSED;
		}
		r = a->printable ? kura_secbuf_printable(a->generate, &v) :
				   kura_secbuf_random(a->generate, &v);
	} else if (a->file) {
		_cleanup_close_ int fd = open(a->file, O_RDONLY | O_CLOEXEC | O_NOCTTY);

		if (fd < 0) {
			r = -errno;
			fprintf(stderr, "kuractl: cannot open %s: %s\n", a->file, strerror(-r));
			return kura_outcome_exit(r);
		}
		r = kura_secbuf_read_fd(fd, max, &v);
	} else if (isatty(STDIN_FILENO)) {
		r = read_tty(max, &v);
	} else {
		r = kura_secbuf_read_fd(STDIN_FILENO, max, &v);
	}
	if (r == -EFBIG) {
		fprintf(stderr,
			"kuractl: the value is larger than this store's limit of %zu bytes "
			"(kuractl config --max-value-size)\n",
			max);
		return KURA_EXIT_REFUSED;
	}
	if (r < 0) {
		fprintf(stderr, "kuractl: cannot read the value: %s\n", strerror(-r));
		return kura_outcome_exit(r);
	}
	if (v->len == 0 && !a->allow_empty) {
		fputs("kuractl: the value is empty; refusing (--allow-empty if you mean it)\n",
			stderr);
		return KURA_EXIT_USAGE;
	}
	*ret = TAKE_PTR(v);
	return 0;
}

static int cmd_write(struct ctl *c, const struct secret_args *a, bool create)
{
	_cleanup_secbuf_ struct kura_secbuf *value = NULL;
	struct kura_err err = { 0 };
	uint64_t version = 0, max = 0;
	int r, sources = !!a->file + !!a->generate;

	if (!a->name)
		return ctl_usage("secret %s needs a NAME", create ? "put" : "rotate");
	if (sources > 1)
		return ctl_usage("give one value source: standard input, --file or --generate");
	if (a->printable && !a->generate)
		return ctl_usage("--printable goes with --generate N");
	if (sources == 0 && c->master.kind == KURA_MASTER_PASSPHRASE && c->master.path &&
		strcmp(c->master.path, "-") == 0)
		return ctl_usage("standard input cannot carry both the passphrase and the value");
	r = ctl_connect(c);
	if (r > 0)
		return r;
	r = be_max_value(c, 0, &max, &err);
	if (r < 0)
		r = ctl_fail(r, &err);
	else
		r = read_value(c, a, (size_t)max, &value);
	if (r == 0) {
		r = be_secret_write(c, a->name, value, create, &version, &err);
		r = r < 0 ? ctl_fail(r, &err) : 0;
	}
	ctl_disconnect(c);
	if (r != 0)
		return r;
	if (c->json)
		return ctl_print_json(
			json_pack("{s:s, s:I}", "name", a->name, "version", (json_int_t)version));
	printf("%s: version %llu\n", a->name, (unsigned long long)version);
	return KURA_EXIT_OK;
}

static int print_value_json(const char *name, const struct kura_version_info *info,
	const struct kura_secbuf *value)
{
	_cleanup_secbuf_ struct kura_secbuf *b64 = NULL;
	char created[KURA_RFC3339_LEN];
	int r;

	/* The base64 text is as secret as the value: keep it in guarded memory too. */
	r = kura_base64_secbuf(value, &b64);
	if (r < 0)
		return ctl_fail(r, NULL);
	return ctl_print_json(json_pack("{s:s, s:I, s:s, s:I, s:s%}", "name", name, "version",
		(json_int_t)info->version, "created", kura_rfc3339(info->created, created), "size",
		(json_int_t)info->size, "value", (const char *)b64->data, b64->len));
}

static int cmd_get(struct ctl *c, const struct secret_args *a)
{
	_cleanup_secbuf_ struct kura_secbuf *value = NULL;
	struct kura_version_info info;
	struct kura_err err = { 0 };
	int r;

	if (!a->name)
		return ctl_usage("secret get needs a NAME");
	r = ctl_connect(c);
	if (r > 0)
		return r;
	r = be_secret_get(c, a->name, a->version, &value, &info, &err);
	ctl_disconnect(c);
	if (r < 0)
		return ctl_fail(r, &err);
	if (c->json)
		return print_value_json(a->name, &info, value);
	fflush(stdout);
	r = kura_secbuf_write_fd(value, STDOUT_FILENO);
	if (r < 0) {
		fprintf(stderr, "kuractl: cannot write the value: %s\n", strerror(-r));
		return KURA_EXIT_SYSTEM;
	}
	return KURA_EXIT_OK;
}

static int cmd_list(struct ctl *c, const struct secret_args *a)
{
	struct kura_secret_list l = { 0 };
	struct kura_err err = { 0 };
	json_t *arr = NULL;
	int r;

	r = ctl_connect(c);
	if (r > 0)
		return r;
	r = be_secret_list(c, a->name ? a->name : "", &l, &err);
	ctl_disconnect(c);
	if (r < 0)
		return ctl_fail(r, &err);
	if (c->json)
		arr = json_array();
	else if (l.n > 0)
		printf("%-40s %7s %7s  %s\n", "NAME", "CURRENT", "LATEST", "UPDATED");
	for (size_t i = 0; i < l.n; i++) {
		const struct kura_secret_info *s = &l.items[i];
		char t[32];

		kura_rfc3339(s->updated, t);
		if (arr)
			json_array_append_new(arr,
				json_pack("{s:s, s:I, s:I, s:s}", "name", s->name, "current",
					(json_int_t)s->current, "latest", (json_int_t)s->latest,
					"updated", t));
		else
			printf("%-40s %7llu %7llu  %s\n", s->name, (unsigned long long)s->current,
				(unsigned long long)s->latest, t);
	}
	kura_secret_list_done(&l);
	return arr ? ctl_print_json(arr) : KURA_EXIT_OK;
}

static int cmd_show(struct ctl *c, const struct secret_args *a)
{
	struct kura_secret_info s = { 0 };
	struct kura_err err = { 0 };
	char t1[32], t2[32];
	int r;

	if (!a->name)
		return ctl_usage("secret show needs a NAME");
	r = ctl_connect(c);
	if (r > 0)
		return r;
	r = be_secret_show(c, a->name, &s, &err);
	ctl_disconnect(c);
	if (r < 0)
		return ctl_fail(r, &err);
	if (c->json) {
		json_t *vers = json_array();

		for (size_t i = 0; i < s.n_versions; i++)
			json_array_append_new(vers,
				json_pack("{s:I, s:s, s:I, s:I, s:b}", "version",
					(json_int_t)s.versions[i].version, "created",
					kura_rfc3339(s.versions[i].created, t1), "size",
					(json_int_t)s.versions[i].size, "kek",
					(json_int_t)s.versions[i].kek_id, "current",
					s.versions[i].version == s.current));
		r = ctl_print_json(json_pack("{s:s, s:I, s:I, s:s, s:s, s:o}", "name", s.name,
			"current", (json_int_t)s.current, "latest", (json_int_t)s.latest, "created",
			kura_rfc3339(s.created, t1), "updated", kura_rfc3339(s.updated, t2),
			"versions", vers));
		kura_secret_info_done(&s);
		return r;
	}
	printf("name:     %s\ncurrent:  %llu\nlatest:   %llu\ncreated:  %s\nupdated:  %s\n\n",
		s.name, (unsigned long long)s.current, (unsigned long long)s.latest,
		kura_rfc3339(s.created, t1), kura_rfc3339(s.updated, t2));
	printf("  %-8s %-20s %10s %5s\n", "VERSION", "CREATED", "SIZE", "KEK");
	for (size_t i = 0; i < s.n_versions; i++)
		printf("%c %-8llu %-20s %10llu %5u\n",
			s.versions[i].version == s.current ? '*' : ' ',
			(unsigned long long)s.versions[i].version,
			kura_rfc3339(s.versions[i].created, t1),
			(unsigned long long)s.versions[i].size, s.versions[i].kek_id);
	kura_secret_info_done(&s);
	return KURA_EXIT_OK;
}

static int cmd_rollback(struct ctl *c, const struct secret_args *a)
{
	struct kura_err err = { 0 };
	int r;

	if (!a->name || !a->to)
		return ctl_usage("secret rollback needs NAME and --to VERSION");
	r = ctl_connect(c);
	if (r > 0)
		return r;
	r = be_secret_rollback(c, a->name, a->to, &err);
	ctl_disconnect(c);
	if (r < 0)
		return ctl_fail(r, &err);
	if (c->json)
		return ctl_print_json(
			json_pack("{s:s, s:I}", "name", a->name, "current", (json_int_t)a->to));
	printf("%s: version %llu is current\n", a->name, (unsigned long long)a->to);
	return KURA_EXIT_OK;
}

static int cmd_destroy(struct ctl *c, const struct secret_args *a)
{
	struct kura_err err = { 0 };
	int r;

	if (!a->name)
		return ctl_usage("secret destroy needs a NAME");
	r = ctl_connect(c);
	if (r > 0)
		return r;
	r = be_secret_destroy(c, a->name, a->version, &err);
	ctl_disconnect(c);
	if (r < 0)
		return ctl_fail(r, &err);
	if (c->json)
		return ctl_print_json(a->version ?
				json_pack("{s:s, s:I, s:b}", "name", a->name, "version",
					(json_int_t)a->version, "destroyed", 1) :
				json_pack("{s:s, s:b}", "name", a->name, "destroyed", 1));
	if (a->version)
		printf("%s: version %llu destroyed\n", a->name, (unsigned long long)a->version);
	else
		printf("%s: destroyed\n", a->name);
	return KURA_EXIT_OK;
}

int ctl_secret(struct ctl *c, int argc, char **argv)
{
	struct secret_args a = { 0 };
	const char *sub;
	bool help = false;
	int r;

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(secret_usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? KURA_EXIT_USAGE : KURA_EXIT_OK;
	}
	sub = argv[1];
	/* Many secrets at once: their own options (ctl-transfer.c). */
	if (strcmp(sub, "import") == 0)
		return ctl_secret_import(c, argc - 1, argv + 1);
	if (strcmp(sub, "export") == 0)
		return ctl_secret_export(c, argc - 1, argv + 1);
	r = parse(c, argc - 1, argv + 1, &a, &help);
	if (r != 0)
		return r;
	if (help) {
		fputs(secret_usage, stdout);
		return KURA_EXIT_OK;
	}
	if (strcmp(sub, "list") != 0 && (a.file || a.generate || a.printable || a.allow_empty) &&
		strcmp(sub, "put") != 0 && strcmp(sub, "rotate") != 0)
		return ctl_usage("--file, --generate, --printable and --allow-empty go with put "
				 "and rotate");
	if (strcmp(sub, "put") == 0)
		return cmd_write(c, &a, true);
	if (strcmp(sub, "rotate") == 0)
		return cmd_write(c, &a, false);
	if (strcmp(sub, "get") == 0)
		return cmd_get(c, &a);
	if (strcmp(sub, "list") == 0)
		return cmd_list(c, &a);
	if (strcmp(sub, "show") == 0)
		return cmd_show(c, &a);
	if (strcmp(sub, "rollback") == 0)
		return cmd_rollback(c, &a);
	if (strcmp(sub, "destroy") == 0)
		return cmd_destroy(c, &a);
	return ctl_usage("unknown command 'secret %s'", sub);
}

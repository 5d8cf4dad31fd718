/* kuractl: the operator's command line for secrets, keys and the store. Works offline on a
 * state directory. Prints values only for `secret get`, to stdout. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "clock.h"
#include "number.h"
#include "ctl.h"
#include "escape.h"
#include "json.h"

static const char usage_text[] =
	"Usage: kuractl [OPTIONS] COMMAND [ARGS]...\n"
	"\n"
	"Manage kura's secrets and keys. Runs as root on the host, on the state directory.\n"
	"\n"
	"Commands:\n"
	"  init                     create the state: directory, master key, store, first KEK\n"
	"  secret put NAME          store a new secret (value from stdin, --file, --generate)\n"
	"  secret rotate NAME       add a new version and make it current\n"
	"  secret get NAME          write a version's value to stdout\n"
	"  secret list [PREFIX]     list secrets\n"
	"  secret show NAME         versions, times, sizes and KEK ids (never values)\n"
	"  secret rollback NAME --to V\n"
	"                           make an older version current again\n"
	"  secret destroy NAME [--version V]\n"
	"                           delete a secret's (or one version's) ciphertext for good\n"
	"  key rotate               new KEK, rewrap every DEK, destroy the old KEK\n"
	"  key rekey --new-key-file F | --new-passphrase-file F\n"
	"                           rewrap the keyring under a new master key\n"
	"  key status               master key source, KEKs, counts\n"
	"  config [--max-value-size N]\n"
	"                           show or change store settings\n"
	"  grant NAME|PREFIX/* SELECTOR...\n"
	"                           let matching containers (or host processes) read secrets\n"
	"  revoke ID | NAME|PREFIX/* SELECTOR...\n"
	"                           remove a grant\n"
	"  grants                   list grants\n"
	"  whois PID|CONTAINER      the identity a running kurad gives a process or container,\n"
	"                           and what it could read\n"
	"  audit [stats|verify]     filter, follow, summarise or verify the audit log\n"
	"\n"
	"Options (accepted before or after the command):\n"
	"  --state-dir DIR          state directory (default " KURA_STATE_DIR ")\n"
	"  --key-file FILE          master key file (default STATE_DIR/master.key)\n"
	"  --passphrase-file FILE   derive the master key from the passphrase in FILE\n"
	"                           (\"-\" reads standard input)\n"
	"  --json                   machine-readable output, one JSON document\n"
	"  --run-dir DIR            where a running kurad's admin.sock is (default /run/kura)\n"
	"  --offline                work on the state directory even if a kurad serves it\n"
	"  -h, --help               this help; `kuractl COMMAND --help` for a command's\n"
	"  --version                print the version\n"
	"\n"
	"When a kurad serves the state directory, commands other than init go through its\n"
	"admin socket (kurad holds the keys; its watchers see changes at once); otherwise they\n"
	"work on the state directory directly. Nothing is sent to a socket served by anyone\n"
	"but root (or this user), or in a run directory that anyone else could change (it and\n"
	"every directory above it owned by root or this user, writable by no one else but for a\n"
	"sticky root-owned one such as /tmp): kuractl exits 1 saying which.\n"
	"\n"
	"Exit status: 0 ok, 1 refused or not found (includes a wrong master key), 2 usage or\n"
	"invalid input, 3 system error, 4 integrity failure (corrupt store or altered\n"
	"ciphertext).\n";

bool ctl_common_option(struct ctl *c, int opt, const char *arg)
{
	switch (opt) {
	case 'S':
		c->state_dir = arg;
		return true;
	case 'K':
		if (c->master.kind == KURA_MASTER_PASSPHRASE && c->master.path)
			exit(ctl_usage("--key-file and --passphrase-file exclude each other"));
		c->master = (struct kura_master_source){ .kind = KURA_MASTER_FILE, .path = arg };
		return true;
	case 'P':
		if (c->master.kind == KURA_MASTER_FILE && c->master.path)
			exit(ctl_usage("--key-file and --passphrase-file exclude each other"));
		c->master = (struct kura_master_source){ .kind = KURA_MASTER_PASSPHRASE,
			.path = arg };
		return true;
	case 'j':
		c->json = true;
		return true;
	case 0x101:
		c->run_dir = arg;
		return true;
	case 0x102:
		c->offline = true;
		return true;
	default:
		return false;
	}
}

int ctl_bad_option(int opt, char **argv)
{
	/* getopt's own messages are off (opterr = 0): one line, ours, naming the option. */
	if (opt == ':')
		return ctl_usage("option '%s' needs a value", argv[optind - 1]);
	if (optopt && optopt != '?')
		return ctl_usage("unknown option '-%c'", optopt);
	/* Only the name: "--value=hunter2" must not echo what follows the '='. */
	return ctl_usage("unknown option '%.*s'", (int)strcspn(argv[optind - 1], "="),
		argv[optind - 1]);
}

int ctl_fail(int r, const struct kura_err *err)
{
	/* A message may carry what kurad said, or a name given on the command line. */
	char line[4 * sizeof(err->msg)];
	const char *m = err && err->msg[0] ? err->msg : strerror(-r);

	fprintf(stderr, "kuractl: %s\n", kura_escape(m, strlen(m), KURA_ESCAPE_TEXT, line,
						    sizeof(line)));
	return kura_outcome_exit(r);
}

int ctl_usage(const char *fmt, ...)
{
	va_list ap;

	fputs("kuractl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (see kuractl --help)\n", stderr);
	return KURA_EXIT_USAGE;
}

int ctl_print_json(json_t *j)
{
	_cleanup_secbuf_ struct kura_secbuf *out = NULL;
	size_t n;
	char *s;
	int r;

	if (!j) {
		fputs("kuractl: out of memory\n", stderr);
		return KURA_EXIT_SYSTEM;
	}
	/* A document may carry a value (secret get --json): it goes from jansson's wiping
	 * allocator through guarded memory straight to the fd, never into stdio's buffer. */
	/* Printable ASCII only: a label or name holding C1 or bidi controls (or DEL) arrives as
	 * \u escapes, never raw, on whatever terminal shows it. */
	s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
	json_decref(j);
	if (!s) {
		fputs("kuractl: out of memory\n", stderr);
		return KURA_EXIT_SYSTEM;
	}
	n = kura_json_escape_del(s, strlen(s), NULL);
	r = kura_secbuf_new(n + 1, &out);
	if (r == 0) {
		kura_json_escape_del(s, strlen(s), (char *)out->data);
		out->data[n] = '\n';
		out->len = n + 1;
	}
	kura_json_free(s);
	if (r == 0) {
		fflush(stdout);
		r = kura_secbuf_write_fd(out, STDOUT_FILENO);
	}
	if (r < 0) {
		fprintf(stderr, "kuractl: cannot write output: %s\n", strerror(-r));
		return KURA_EXIT_SYSTEM;
	}
	return KURA_EXIT_OK;
}

bool ctl_passphrase_tty(const char *path)
{
	/* Read from a terminal it would echo; a passphrase comes from a file or a pipe. */
	if (path && strcmp(path, "-") == 0 && isatty(STDIN_FILENO)) {
		fputs("kuractl: a passphrase file of '-' reads standard input, which is a "
		      "terminal here (it would echo); pipe the passphrase in or name a file\n",
			stderr);
		return true;
	}
	return false;
}

int ctl_open(struct ctl *c, struct kura_vault **ret)
{
	struct kura_err err = { 0 };
	int r;

	if (c->master.kind == KURA_MASTER_PASSPHRASE && ctl_passphrase_tty(c->master.path))
		return KURA_EXIT_USAGE;
	r = kura_vault_open(c->state_dir, &c->master, 0, ret, &err);
	if (r < 0)
		return ctl_fail(r, &err);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "version", no_argument, NULL, 'V' },
		CTL_COMMON_OPTIONS,
	};
	struct ctl c = { .state_dir = KURA_STATE_DIR, .run_dir = "/run/kura" };
	const char *cmd;
	int opt, r;

	kura_keys_protect_process();
	opterr = 0;
	if (kura_keys_init() < 0) {
		fputs("kuractl: cannot initialise libsodium\n", stderr);
		return KURA_EXIT_SYSTEM;
	}
	kura_json_init();

	/* '+': stop at the command; the rest belongs to it. */
	while ((opt = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
		if (ctl_common_option(&c, opt, optarg))
			continue;
		switch (opt) {
		case 'h':
			fputs(usage_text, stdout);
			return KURA_EXIT_OK;
		case 'V':
			puts("kuractl " KURA_VERSION);
			return KURA_EXIT_OK;
		default:
			return ctl_bad_option(opt, argv);
		}
	}
	if (optind >= argc) {
		fputs(usage_text, stderr);
		return KURA_EXIT_USAGE;
	}
	cmd = argv[optind];
	argc -= optind;
	argv += optind;
	optind = 0; /* reset getopt for the command's own parsing */

	if (strcmp(cmd, "init") == 0)
		r = ctl_init(&c, argc, argv);
	else if (strcmp(cmd, "secret") == 0)
		r = ctl_secret(&c, argc, argv);
	else if (strcmp(cmd, "key") == 0)
		r = ctl_key(&c, argc, argv);
	else if (strcmp(cmd, "config") == 0)
		r = ctl_config(&c, argc, argv);
	else if (strcmp(cmd, "grant") == 0 || strcmp(cmd, "revoke") == 0 ||
		strcmp(cmd, "grants") == 0)
		r = ctl_grant(&c, cmd, argc, argv);
	else if (strcmp(cmd, "whois") == 0)
		r = ctl_whois(&c, argc, argv);
	else if (strcmp(cmd, "audit") == 0)
		r = ctl_audit(&c, argc, argv);
	else if (strcmp(cmd, "help") == 0) {
		fputs(usage_text, stdout);
		r = KURA_EXIT_OK;
	} else
		r = ctl_usage("unknown command '%s'", cmd);

	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "kuractl: cannot write output: %s\n", strerror(errno));
		if (r == KURA_EXIT_OK)
			r = KURA_EXIT_SYSTEM;
	}
	return r;
}

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
#include "outcome.h"
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
	"  key rekey --new-key-file F | --new-passphrase-file F | --tpm2\n"
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
	"  doctor                   check that this host can run kura safely; what to fix\n"
	"  status                   what the running kurad is doing, and whether it is healthy\n"
	"  metrics                  the running kurad's metrics (Prometheus text)\n"
	"\n"
	"Options (accepted before or after the command):\n"
	"  --state-dir DIR          state directory (default " KURA_STATE_DIR ")\n"
	"  --key-file FILE          master key file (default STATE_DIR/master.key; a state\n"
	"                           whose key is sealed to the TPM2 needs no key option)\n"
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
	"\n" KURA_EXIT_HELP;

static int help(struct ctl *c, int argc, char **argv)
{
	fputs(usage_text, stdout);
	return KURA_EXIT_OK;
}

/* grant, revoke and grants share one parser (argv[0] says which). */
static int grant(struct ctl *c, int argc, char **argv)
{
	return ctl_grant(c, argv[0], argc, argv);
}

/* The commands, as usage_text lists them. */
static const struct {
	const char *name;
	int (*run)(struct ctl *c, int argc, char **argv);
} commands[] = {
	{ "init", ctl_init },
	{ "secret", ctl_secret },
	{ "key", ctl_key },
	{ "config", ctl_config },
	{ "grant", grant },
	{ "revoke", grant },
	{ "grants", grant },
	{ "whois", ctl_whois },
	{ "audit", ctl_audit },
	{ "doctor", ctl_doctor },
	{ "status", ctl_status },
	{ "metrics", ctl_metrics },
	{ "help", help },
};

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

	r = -1;
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(cmd, commands[i].name) == 0)
			r = commands[i].run(&c, argc, argv);
	if (r < 0)
		r = ctl_usage("unknown command '%s'", cmd);

	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "kuractl: cannot write output: %s\n", strerror(errno));
		if (r == KURA_EXIT_OK)
			r = KURA_EXIT_SYSTEM;
	}
	return r;
}

/* What every kuractl command shares: the common options, usage errors, failures as exit
 * statuses, JSON output, and opening the state directory offline. No plaintext. */
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

	fprintf(stderr, "kuractl: %s\n",
		kura_escape(m, strlen(m), KURA_ESCAPE_TEXT, line, sizeof(line)));
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

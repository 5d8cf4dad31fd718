/* kura, the in-container client: fetch this workload's secrets from kurad into a tmpfs and exec
 * the application. Touches plaintext through api.c and writer.c; main only routes and reports. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "api.h"
#include "confine.h"
#include "escape.h"
#include "json.h"
#include "name.h"
#include "config.h"
#include "watch.h"
#include "writer.h"

/* Inside the run directory the container mounts (-v /run/kura:/run/kura:ro): a mount of the
 * socket file itself would keep a dead socket after a kurad restart. */
#define DEFAULT_SOCKET "/run/kura/workload.sock"
/* How long a kurad that is restarting (api.c says what that looks like) is waited for. */
#define RETRY_MS 5000
#define DEFAULT_DIR "/run/secrets"

static const char usage_text[] =
	"usage: kura [--socket PATH] [--timeout S] COMMAND [OPTIONS]\n"
	"\n"
	"  kura run [WRITE OPTIONS] -- CMD ARGS...   fetch, write, then exec CMD (it keeps the pid)\n"
	"  kura fetch [WRITE OPTIONS]                 fetch and write, nothing else\n"
	"  kura whoami                                the identity the broker gives this process\n"
	"  kura ls                                    the secrets this process may read\n"
	"\n"
	"Options everywhere:\n"
	"  --socket PATH     the broker's workload socket (default " DEFAULT_SOCKET ": mount\n"
	"                    kurad's run directory, -v /run/kura:/run/kura:ro, never the socket\n"
	"                    file, which goes dead when kurad restarts)\n"
	"  --timeout S       give up on each request to the broker after S seconds (default 10);\n"
	"                    a kurad that is restarting (its socket missing or refusing, or it\n"
	"                    closes unanswered or answers 503) is tried again for up to 5 s,\n"
	"                    a missing run directory fails at once\n"
	"  -h, --help        this text;  --version  the version\n"
	"\n"
	"Write options (run, fetch):\n"
	"  --dir DIR         a tmpfs or ramfs to write into (default " DEFAULT_DIR "); anything\n"
	"                    else is refused; no symlink is followed on the way. Only kura's\n"
	"                    user and root may write DIR, or a directory above it that is not\n"
	"                    sticky (a mode 1777 tmpfs, or /dev/shm, is refused)\n"
	"  --uid U --gid G   numeric owner of the files (default: kura's own)\n"
	"  --mode MODE       octal mode of the files (default 0400); directories get rwx for the\n"
	"                    owner and x beside each r bit (0400 -> 0700, 0440 -> 0750)\n"
	"  --only NAME       fetch only NAME (repeatable, up to 1024; default: every secret\n"
	"                    granted, up to 1024)\n"
	"  --allow-partial   write and start with the secrets that could be fetched; without it,\n"
	"                    a single failure means nothing is written and CMD does not start\n"
	"\n"
	"Following rotations (run):\n"
	"  --watch           kura stays as CMD's parent: it forwards TERM, INT, HUP, USR1, USR2\n"
	"                    and QUIT, reaps, and exits with CMD's status (128+N if signal N\n"
	"                    killed it); it long-polls the broker and rewrites the whole set\n"
	"                    when a secret it writes changes, then applies --on-change. Broker\n"
	"                    errors never stop CMD: kura retries (every 1 s, doubling up to\n"
	"                    10 s), says so once, and goes on from the last revision it saw, so\n"
	"                    a kurad restart or upgrade is followed through\n"
	"  --on-change WHAT  signal:SIG   send SIG to CMD (default signal:HUP; HUP, SIGHUP, 1)\n"
	"                    restart      SIGTERM, up to 10 s, SIGKILL, then start CMD again\n"
	"                    exec:CMD2    run CMD2 (split on spaces, no shell) and wait for it\n"
	"\n"
	"Layout: each set goes into a fresh DIR/..kura_<time>_<rand>/, one value at a time (kura\n"
	"holds one in memory at once), then DIR/..data (a symlink) is swapped to it with one\n"
	"rename, so a reader never sees a mix of versions.\n"
	"DIR/<top> is a symlink to ..data/<top> for each first name segment: read DIR/app/db.\n"
	"To follow changes with inotify, watch DIR itself for IN_MOVED_TO of \"..data\".\n"
	"\n"
	"The environment is passed to CMD exactly as kura received it; no value ever enters an\n"
	"environment variable or argv. Warns once when DIR is a tmpfs that may be swapped out\n"
	"(swap is on and the mount lacks noswap).\n"
	"\n" KURA_EXIT_HELP;

enum {
	OPT_SOCKET = 0x100,
	OPT_TIMEOUT,
	OPT_DIR,
	OPT_UID,
	OPT_GID,
	OPT_MODE,
	OPT_ONLY,
	OPT_ALLOW_PARTIAL,
	OPT_WATCH,
	OPT_ON_CHANGE,
	OPT_VERSION,
};

static const struct option options[] = {
	{ "socket", required_argument, NULL, OPT_SOCKET },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "dir", required_argument, NULL, OPT_DIR },
	{ "uid", required_argument, NULL, OPT_UID },
	{ "gid", required_argument, NULL, OPT_GID },
	{ "mode", required_argument, NULL, OPT_MODE },
	{ "only", required_argument, NULL, OPT_ONLY },
	{ "allow-partial", no_argument, NULL, OPT_ALLOW_PARTIAL },
	{ "watch", no_argument, NULL, OPT_WATCH },
	{ "on-change", required_argument, NULL, OPT_ON_CHANGE },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ 0 },
};

struct args {
	struct kura_broker broker;
	const char *dir;
	struct kura_write_opts wo;
	bool allow_partial;
	bool write_opts; /* any of the write options given */
	bool watch;
	bool on_change;
	bool warned_swap;
	struct kura_watch w;
	struct kura_secret_set only;
	const char *cmd;
};

/* Usage errors quote argv, which the image author or whoever starts the container wrote. */
__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...)
{
	char raw[512], safe[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	fprintf(stderr, "kura: %s (see kura --help)\n",
		kura_escape(raw, strlen(raw), KURA_ESCAPE_TEXT, safe, sizeof(safe)));
	return KURA_EXIT_USAGE;
}

static bool named(const struct kura_secret_set *set, const char *name)
{
	for (size_t i = 0; i < set->n; i++)
		if (strcmp(set->items[i].name, name) == 0)
			return true;
	return false;
}

static bool parse_ulong(const char *s, int base, unsigned long max, unsigned long *ret)
{
	unsigned long v;
	char *end;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoul(s, &end, base);
	if (errno || *end || v > max)
		return false;
	*ret = v;
	return true;
}

/* Options may come before or after COMMAND; "--" ends them (and, for run, starts CMD).
 * Returns -1 to go on, or an exit status. */
static int parse(int argc, char **argv, struct args *a)
{
	const char *why;
	unsigned long v;
	int c;

	while ((c = getopt_long(argc, argv, "+h", options, NULL)) != -1) {
		switch (c) {
		case OPT_SOCKET:
			a->broker.socket_path = optarg;
			break;
		case OPT_TIMEOUT:
			if (!parse_ulong(optarg, 10, 3600, &v) || v == 0)
				return usage_error("--timeout takes 1 to 3600 seconds, not '%s'",
					optarg);
			a->broker.timeout_ms = (int)v * 1000;
			break;
		case OPT_DIR:
			a->dir = optarg;
			a->write_opts = true;
			break;
		case OPT_UID:
			if (!parse_ulong(optarg, 10, 0xfffffffeUL, &v))
				return usage_error("--uid takes a number, not '%s'", optarg);
			a->wo.uid = (uid_t)v;
			a->write_opts = true;
			break;
		case OPT_GID:
			if (!parse_ulong(optarg, 10, 0xfffffffeUL, &v))
				return usage_error("--gid takes a number, not '%s'", optarg);
			a->wo.gid = (gid_t)v;
			a->write_opts = true;
			break;
		case OPT_MODE:
			if (!parse_ulong(optarg, 8, 0777, &v))
				return usage_error(
					"--mode takes an octal mode up to 0777, not '%s'", optarg);
			a->wo.mode = (mode_t)v;
			a->write_opts = true;
			break;
		case OPT_ONLY:
			why = kura_name_invalid(optarg, strlen(optarg));
			if (why)
				return usage_error("--only '%s': %s", optarg, why);
			if (named(&a->only, optarg))
				break;
			if (a->only.n >= KURA_SET_MAX)
				return usage_error("--only: at most %d names", KURA_SET_MAX);
			if (kura_secret_set_add(&a->only, optarg, 0) < 0)
				return KURA_EXIT_SYSTEM;
			a->write_opts = true;
			break;
		case OPT_ALLOW_PARTIAL:
			a->allow_partial = true;
			a->write_opts = true;
			break;
		case OPT_WATCH:
			a->watch = true;
			a->write_opts = true;
			break;
		case OPT_ON_CHANGE:
			v = (unsigned long)-kura_watch_parse_on_change(&a->w, optarg);
			if (v == ENOMEM)
				return KURA_EXIT_SYSTEM;
			if (v)
				return usage_error(
					"--on-change takes signal:SIG, restart or exec:CMD, "
					"not '%s'",
					optarg);
			a->on_change = true;
			a->write_opts = true;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return KURA_EXIT_OK;
		case OPT_VERSION:
			printf("kura %s\n", KURA_VERSION);
			return KURA_EXIT_OK;
		default:
			return KURA_EXIT_USAGE; /* getopt said which */
		}
	}
	return -1;
}

static int report(const struct kura_fail *f)
{
	fprintf(stderr, "kura: %s\n", f->msg);
	return f->exit ? f->exit : KURA_EXIT_SYSTEM;
}

/* JSON, all ASCII: labels and names come from image authors and the runtime, and jansson
 * escapes C0 and (with JSON_ENSURE_ASCII) everything past U+007F; DEL, which JSON leaves as it
 * is, becomes \u007F here (it can only appear inside a string). */
static int cmd_whoami(const struct args *a, struct kura_fail *f)
{
	json_t *j = NULL;
	char *s;

	if (kura_api_get_json(&a->broker, "/v1/whoami", &j, f) < 0)
		return f->exit;
	s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
	json_decref(j);
	if (!s)
		return kura_fail_set(f, -ENOMEM, KURA_EXIT_SYSTEM, "out of memory"), f->exit;
	for (const char *p = s; *p; p++)
		if (*p == 0x7f)
			fputs("\\u007F", stdout);
		else
			putchar(*p);
	putchar('\n');
	kura_json_free(s);
	return KURA_EXIT_OK;
}

static int cmd_ls(const struct args *a, struct kura_fail *f)
{
	struct kura_secret_set set = { 0 };

	if (kura_api_list(&a->broker, &set, f) < 0)
		return f->exit;
	/* The names passed the naming rules already; escaped all the same, as all outside text. */
	for (size_t i = 0; i < set.n; i++) {
		char safe[KURA_NAME_MAX * 6 + 1];

		const char *n = set.items[i].name;

		printf("%s\t%llu\n",
			kura_escape(n, strlen(n), KURA_ESCAPE_TEXT, safe, sizeof(safe)),
			(unsigned long long)set.items[i].version);
	}
	kura_secret_set_done(&set);
	return KURA_EXIT_OK;
}

/*
 * Fetch every secret (or the --only ones) and stream each into the new set as it arrives, its
 * buffer wiped and freed at once, so kura holds one value at a time whatever the set. With
 * --allow-partial a secret that cannot be fetched is skipped with a warning; without it the first
 * failure ends everything and the new set is removed. The target and every name's place in it
 * are checked before the first value is asked for. Returns 0 or an exit code, with f filled.
 */
static int fetch_and_write(struct args *a, struct kura_fail *f)
{
	struct kura_secret_set set = { 0 };
	struct kura_write_txn *t = NULL;
	_cleanup_close_ int dirfd = -1;
	bool only = a->only.n > 0;
	size_t written = 0;
	int r = 0;

	dirfd = kura_write_open_dir(a->dir, f);
	if (dirfd < 0)
		return f->exit;
	if (kura_write_begin(dirfd, a->dir, &a->wo, &t, f) < 0)
		return f->exit;
	if (only) {
		for (size_t i = 0; r == 0 && i < a->only.n; i++)
			r = kura_secret_set_add(&set, a->only.items[i].name, 0);
		if (r < 0)
			kura_fail_set(f, r, KURA_EXIT_SYSTEM, "out of memory");
	} else {
		r = kura_api_list(&a->broker, &set, f);
	}
	for (size_t i = 0; r == 0 && i < set.n; i++)
		r = kura_write_check(t, set.items[i].name, f);
	for (size_t i = 0; r == 0 && i < set.n; i++) {
		struct kura_secret *s = &set.items[i];
		struct kura_fail one = { 0 };

		if (kura_api_fetch(&a->broker, s, &one) < 0) {
			if (!a->allow_partial) {
				*f = one;
				r = -1;
				break;
			}
			fprintf(stderr, "kura: warning: skipping %s: %s\n", s->name, one.msg);
			continue;
		}
		r = kura_write_add(t, s->name, s->value, f);
		kura_secbuf_free(TAKE_PTR(s->value));
		written += r == 0;
	}
	kura_secret_set_done(&set);
	if (r == 0 && written == 0 && !a->allow_partial)
		r = kura_fail_set(f, -ENOENT, KURA_EXIT_REFUSED,
			"the broker grants this workload "
			"no secret%s; nothing written (is the grant for this image ID?)",
			only ? " of those named" : " at all");
	if (r < 0) {
		kura_write_abort(t);
		return f->exit;
	}
	if (!a->warned_swap && kura_write_swap_risk(dirfd))
		fprintf(stderr,
			"kura: warning: %s is a tmpfs that can be swapped to disk (swap is "
			"on; mount it with noswap)\n",
			a->dir);
	a->warned_swap = true;
	return kura_write_commit(t, f) < 0 ? f->exit : KURA_EXIT_OK;
}

#ifdef KURA_TEST_HOOKS
/* Test builds only (kura-test-hooks, never installed): KURA_TEST_HOOK=WHERE makes the confined
 * part call ptrace, which its allow-list lacks, at WHERE: "start" or "refresh";
 * KURA_TEST_ESCAPE=PATH makes it try to create PATH (outside --dir, Landlock refuses it). */
static void test_hook(const char *where)
{
	const char *h = getenv("KURA_TEST_HOOK"), *escape = getenv("KURA_TEST_ESCAPE");

	if (h && strcmp(h, where) == 0)
		syscall(SYS_ptrace, 0L, 0L, 0L, 0L);
	if (escape && strcmp(where, "start") == 0) {
		int fd = open(escape, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);

		fprintf(stderr, "kura: test: creating %s: %s\n", escape,
			fd < 0 ? strerror(errno) : "done");
		if (fd >= 0)
			close(fd);
	}
}
#else
static void test_hook(const char *where)
{
	(void)where;
}
#endif

static int refresh(void *ctx, struct kura_fail *f)
{
	test_hook("refresh");
	return fetch_and_write(ctx, f);
}

/* The revision to long-poll from, taken before the first fetch so no change slips between. */
static int start_revision(struct args *a, struct kura_fail *f)
{
	_cleanup_(json_decrefp) json_t *j = NULL;
	const json_t *rev;

	if (kura_api_get_json(&a->broker, "/v1/secrets", &j, f) < 0)
		return f->exit;
	rev = json_object_get(j, "revision");
	if (!json_is_integer(rev) || json_integer_value(rev) < 0)
		return kura_fail_set(f, -EBADMSG, KURA_EXIT_PROTOCOL,
			       "/v1/secrets: no revision in "
			       "the broker's answer"),
		       KURA_EXIT_PROTOCOL;
	a->w.revision = (uint64_t)json_integer_value(rev);
	return 0;
}

/* The confined child's work: the command, or under --watch the first set and then following
 * (it never returns). 0 or an exit code with f filled; the parent prints it. */
static int confined(void *ctx, struct kura_confined *c, struct kura_fail *f)
{
	struct args *a = ctx;
	int r;

	test_hook("start");
	if (strcmp(a->cmd, "whoami") == 0)
		return cmd_whoami(a, f);
	if (strcmp(a->cmd, "ls") == 0)
		return cmd_ls(a, f);
	if (a->watch && start_revision(a, f) != 0)
		return f->exit;
	r = fetch_and_write(a, f);
	if (r != KURA_EXIT_OK || !a->watch)
		return r;
	a->w.broker = a->broker;
	a->w.broker.timeout_ms = a->broker.timeout_ms + 30000; /* the long poll's 30 s */
	a->w.only = &a->only;
	a->w.refresh = refresh;
	a->w.ctx = a;
	kura_confine_send(c, f);
	kura_watch_follow(&a->w, c->fd);
}

int main(int argc, char **argv)
{
	struct args a = {
		.broker = { .socket_path = DEFAULT_SOCKET,
			.timeout_ms = 10000,
			.retry_ms = RETRY_MS },
		.dir = DEFAULT_DIR,
		.wo = { .uid = (uid_t)-1, .gid = (gid_t)-1, .mode = 0400 },
		.w = { .on_change = KURA_ON_CHANGE_SIGNAL, .sig = SIGHUP },
	};
	struct kura_confined c = { 0 };
	struct kura_fail f = { 0 };
	const char *cmd;
	char **cmd_argv = NULL;
	int r;

	r = parse(argc, argv, &a);
	if (r >= 0)
		return r;
	if (optind >= argc)
		return usage_error("a command is needed: run, fetch, whoami or ls");
	cmd = argv[optind++];
	r = parse(argc, argv, &a); /* options after the command */
	if (r >= 0)
		return r;
	if (strcmp(cmd, "run") == 0) {
		if (optind >= argc)
			return usage_error("run needs a command to exec after --");
		cmd_argv = argv + optind;
	} else if (optind < argc) {
		return usage_error("unexpected argument '%s'", argv[optind]);
	}
	if (strcmp(cmd, "run") != 0 && strcmp(cmd, "fetch") != 0 && a.write_opts)
		return usage_error("%s takes no write options", cmd);
	if ((a.watch || a.on_change) && strcmp(cmd, "run") != 0)
		return usage_error("--watch and --on-change are for run");
	if (a.on_change && !a.watch)
		return usage_error("--on-change needs --watch");

	/* Not dumpable while values are in memory; execve resets it for CMD. */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	kura_json_init();

	if (strcmp(cmd, "whoami") != 0 && strcmp(cmd, "ls") != 0 && strcmp(cmd, "fetch") != 0 &&
		strcmp(cmd, "run") != 0)
		return usage_error("unknown command '%s'", cmd);
	a.cmd = cmd;
	/* Everything that talks to the broker runs confined, in a child (confine.c says why). */
	if (kura_confine_start(strcmp(cmd, "fetch") == 0 || cmd_argv ? a.dir : NULL, confined, &a,
		    &c, &f) < 0)
		return report(&f);
	if (kura_confine_result(&c, !a.watch, &f) != 0)
		return report(&f);
	if (a.watch)
		return kura_watch_run(&a.w, cmd_argv, &c);
	if (!cmd_argv)
		return KURA_EXIT_OK;
	/* Every fd of ours is closed or O_CLOEXEC, every value wiped (they were the child's);
	 * environ goes on untouched, and so does this process's freedom: it was never filtered. */
	execvp(cmd_argv[0], cmd_argv);
	r = errno;
	kura_fail_set(&f, -r, r == ENOENT ? KURA_EXIT_NOT_FOUND : KURA_EXIT_CANNOT_EXEC,
		"cannot execute %s: %s", cmd_argv[0], strerror(r));
	return report(&f);
}

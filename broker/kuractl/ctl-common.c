/* What every kuractl command shares: the common options, usage errors, failures as exit
 * statuses, JSON output, and opening the state directory offline. No plaintext. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

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

int ctl_newfile_begin(const char *path, bool private_dir, struct ctl_newfile *f, char *why,
	size_t why_size)
{
	const char *slash = strrchr(path, '/');
	char dir[4096];
	uint8_t rnd[6];
	struct stat st;

	*f = (struct ctl_newfile){ .fd = -1, .dirfd = -1, .path = path };
	if (slash && (size_t)(slash - path) >= sizeof(dir))
		return -ENAMETOOLONG;
	snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
	if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	snprintf(f->base, sizeof(f->base), "%s", slash ? slash + 1 : path);
	if (!f->base[0] || strcmp(f->base, ".") == 0 || strcmp(f->base, "..") == 0) {
		snprintf(why, why_size, "%s names a directory, not a file", path);
		return -EISDIR;
	}
	f->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (f->dirfd < 0) {
		snprintf(why, why_size, "cannot open the directory %s: %s", dir, strerror(errno));
		return -errno;
	}
	if (private_dir &&
		(fstat(f->dirfd, &st) < 0 || (st.st_uid != 0 && st.st_uid != geteuid()) ||
			(st.st_mode & 022))) {
		snprintf(why, why_size,
			"refusing to write key material into %s: anyone but its owner can write "
			"there (or it is not root's or ours); choose a directory only root can change",
			dir);
		ctl_newfile_abort(f);
		return -EPERM;
	}
	if (fstatat(f->dirfd, f->base, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		snprintf(why, why_size, "%s already exists%s; nothing was written", path,
			S_ISLNK(st.st_mode) ? " (a symbolic link, not followed)" : "");
		ctl_newfile_abort(f);
		return -EEXIST;
	}
	randombytes_buf(rnd, sizeof(rnd));
	snprintf(f->tmp, sizeof(f->tmp), ".kuractl-%02x%02x%02x%02x%02x%02x.tmp", rnd[0], rnd[1],
		rnd[2], rnd[3], rnd[4], rnd[5]);
	f->fd = openat(f->dirfd, f->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		0600);
	if (f->fd < 0 || fchmod(f->fd, 0600) < 0) {
		int e = errno;

		snprintf(why, why_size, "cannot create a file in %s: %s", dir, strerror(e));
		ctl_newfile_abort(f);
		return -e;
	}
	return 0;
}

int ctl_newfile_commit(struct ctl_newfile *f)
{
	int r = 0;

	if (fsync(f->fd) < 0 ||
		renameat2(f->dirfd, f->tmp, f->dirfd, f->base, RENAME_NOREPLACE) < 0)
		r = -errno;
	if (r == 0) {
		f->tmp[0] = 0; /* in place: nothing to clean up */
		if (fsync(f->dirfd) < 0)
			r = -errno;
	}
	ctl_newfile_abort(f);
	return r;
}

void ctl_newfile_abort(struct ctl_newfile *f)
{
	if (f->dirfd >= 0 && f->tmp[0])
		unlinkat(f->dirfd, f->tmp, 0);
	f->tmp[0] = 0;
	if (f->fd >= 0)
		close(f->fd);
	if (f->dirfd >= 0)
		close(f->dirfd);
	f->fd = f->dirfd = -1;
}

void ctl_rmtree(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char p[PATH_MAX];

	if (!d)
		return;
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		if (de->d_type == DT_DIR)
			ctl_rmtree(p);
		else
			unlink(p);
	}
	closedir(d);
	rmdir(dir);
}

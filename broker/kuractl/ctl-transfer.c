/* kuractl secret import and export: many secrets at once, as NDJSON or a directory tree (file
 * path = secret name), for loading and migration. Touches plaintext: values pass through
 * guarded buffers only, and are written out only with --values, to a new 0600 file. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base64.h"
#include "clock.h"
#include "ctl.h"
#include "escape.h"
#include "json.h"
#include "name.h"
#include "wire.h"

/* Secrets per transaction: within what kurad takes in one import request (admin.c). */
#define BATCH 512
/* The largest NDJSON input read (it is held whole, in locked memory). */
#define NDJSON_MAX (1ull << 30)

static const char import_usage[] =
	"Usage: kuractl secret import (FILE | - | --dir DIR) [--prefix P] [OPTIONS]\n"
	"\n"
	"Load many new secrets at once. From NDJSON (FILE, or - for standard input), one\n"
	"object a line: {\"name\": N, \"value\": TEXT} or {\"name\": N, \"value_b64\": BASE64};\n"
	"other keys (such as export's metadata) are ignored; blank lines are skipped. Or from\n"
	"a directory tree with --dir: each regular file is a secret, its path below DIR the\n"
	"name, its bytes the value (symbolic links and other files are refused).\n"
	"\n"
	"  --prefix P   put P in front of every name (P/ for a folder)\n"
	"\n"
	"Everything is read and checked first: every bad line (or file) is reported with its\n"
	"line number (or path), and then nothing is imported. A name already in the store, or\n"
	"given twice, is refused the same way (import makes new secrets only). Then the\n"
	"secrets go in batches of up to 512, one transaction each, each secret recorded in\n"
	"the audit log as a put; if a batch is refused (the store changed meanwhile), import\n"
	"stops and says exactly which lines were imported. Values are never printed. Progress\n"
	"goes to standard error when it is a terminal.\n"
	"Options: --json, --state-dir, --run-dir, --offline and the key options as for kuractl.\n"
	"Exit status: 0 imported, 1 refused (nothing, or what it says, imported), 2 usage or bad\n"
	"input (nothing imported), 3 system error.\n";

static const char export_usage[] =
	"Usage: kuractl secret export [PREFIX] [--values (--output FILE | --dir DIR)] [OPTIONS]\n"
	"\n"
	"Write secrets for migration, in the form import reads. Without --values: one NDJSON\n"
	"line per secret with its name and metadata (current, latest, created, updated), to\n"
	"standard output or --output FILE; never a value.\n"
	"\n"
	"  --values       also the current version's value, as \"value_b64\"; only into a new\n"
	"                 file (--output FILE, created 0600) or a new directory (--dir DIR,\n"
	"                 0700, one 0600 file per secret), never a terminal or an existing path.\n"
	"                 Each value read is recorded in the audit log as a get.\n"
	"  --output FILE  write to FILE (new, 0600; made whole or not at all)\n"
	"  --dir DIR      write a directory tree (needs --values; new, built beside DIR and\n"
	"                 renamed into place whole)\n"
	"Options: --json (ignored: the output is JSON), --state-dir, --run-dir, --offline and\n"
	"the key options as for kuractl.\n"
	"Exit status: 0 written, 1 refused, 2 usage, 3 system error, 15 the target exists\n"
	"(or is a symbolic link: never followed).\n";

/* One secret of the input: where it is (a line of the buffer, or a file's path). */
struct entry {
	char *name;
	size_t line; /* NDJSON: 1-based; 0 for a file */
	size_t off, len;
	size_t vlen; /* the value's size, for the size of a batch */
	char *path;  /* --dir: below DIR */
};

struct input {
	struct kura_secbuf *text;    /* NDJSON, whole */
	struct kura_secbuf *scratch; /* checking values */
	int dirfd;                   /* --dir */
	struct entry *e;
	size_t n, cap;
	size_t bad;
	const char *prefix;
	size_t max_value;
};

static void input_done(struct input *in)
{
	for (size_t i = 0; i < in->n; i++) {
		free(in->e[i].name);
		free(in->e[i].path);
	}
	free(in->e);
	kura_secbuf_free(in->text);
	kura_secbuf_free(in->scratch);
	if (in->dirfd >= 0)
		close(in->dirfd);
}

static void where(const struct entry *e, char *buf, size_t size)
{
	if (e->line)
		snprintf(buf, size, "line %zu", e->line);
	else
		snprintf(buf, size, "%s", e->path);
}

__attribute__((format(printf, 3, 4))) static void bad(struct input *in, const struct entry *e,
	const char *fmt, ...)
{
	char w[4200];
	va_list ap;

	where(e, w, sizeof(w));
	fprintf(stderr, "kuractl: %s: ", w);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	in->bad++;
}

static int add(struct input *in, struct entry *e)
{
	if (in->n == in->cap) {
		size_t cap = in->cap ? in->cap * 2 : 1024;
		struct entry *m = realloc(in->e, cap * sizeof(*m));

		if (!m)
			return -ENOMEM;
		in->e = m;
		in->cap = cap;
	}
	in->e[in->n++] = *e;
	return 0;
}

/* prefix + raw name, checked by the store's rules; NULL (after reporting) if bad. */
static char *full_name(struct input *in, const struct entry *e, const char *raw, size_t len)
{
	size_t pl = in->prefix ? strlen(in->prefix) : 0;
	const char *rule;
	char *name;

	if (memchr(raw, 0, len)) {
		bad(in, e, "the name holds a NUL byte");
		return NULL;
	}
	name = malloc(pl + len + 1);
	if (!name)
		return NULL;
	memcpy(name, in->prefix ? in->prefix : "", pl);
	memcpy(name + pl, raw, len);
	name[pl + len] = 0;
	rule = kura_name_invalid(name, pl + len);
	if (rule) {
		char shown[4 * KURA_NAME_MAX + 8];

		bad(in, e, "invalid secret name %s: %s",
			kura_escape(name,
				strlen(name) > KURA_NAME_MAX ? KURA_NAME_MAX : strlen(name),
				KURA_ESCAPE_TEXT, shown, sizeof(shown)),
			rule);
		free(name);
		return NULL;
	}
	return name;
}

/*
 * One NDJSON line's value appended to the guarded buffer into (NULL: only check it). -EINVAL
 * after reporting what is wrong, never quoting the value.
 */
static int line_value(struct input *in, struct entry *e, char **ret_name, struct kura_secbuf *into)
{
	_cleanup_json_ json_t *j = NULL;
	const json_t *name, *v, *v64;
	json_error_t jerr;
	int r;

	j = json_loadb((const char *)in->text->data + e->off, e->len, JSON_REJECT_DUPLICATES,
		&jerr);
	if (!j) {
		/* jansson's text may quote the input: only where it broke. */
		bad(in, e, "not JSON (at column %d)", jerr.column);
		return -EINVAL;
	}
	name = json_object_get(j, "name");
	v = json_object_get(j, "value");
	v64 = json_object_get(j, "value_b64");
	if (!json_is_object(j) || !json_is_string(name)) {
		bad(in, e, "not an object with a string \"name\"");
		return -EINVAL;
	}
	if (!!v == !!v64 || (v && !json_is_string(v)) || (v64 && !json_is_string(v64))) {
		bad(in, e, "needs one of \"value\" (a string) or \"value_b64\" (base64)%s",
			!v && !v64 ? ": it has none (an export made without --values has none)" :
				     "");
		return -EINVAL;
	}
	if (ret_name) {
		*ret_name = full_name(in, e, json_string_value(name), json_string_length(name));
		if (!*ret_name)
			return -EINVAL;
	}
	if (v64) {
		size_t len = json_string_length(v64), got = 0;

		/* Checked in a scratch buffer the size of the largest value (one mapping for the
		 * whole check), or decoded straight into the batch's. */
		if (!into && (!in->scratch || in->scratch->cap < kura_base64_max_decoded(len))) {
			kura_secbuf_free(in->scratch);
			in->scratch = NULL;
			r = kura_secbuf_new(kura_base64_max_decoded(len) + 4096, &in->scratch);
			if (r < 0)
				return r;
		}
		if (!into)
			r = kura_base64_decode(json_string_value(v64), len, in->scratch->data,
				in->scratch->cap, &got);
		else
			r = kura_base64_decode(json_string_value(v64), len, into->data + into->len,
				into->cap - into->len, &got);
		if (r < 0) {
			bad(in, e, "\"value_b64\" is not base64");
			return -EINVAL;
		}
		e->vlen = got;
		if (got > in->max_value) {
			bad(in, e, "the value is %zu bytes; this store takes at most %zu", got,
				in->max_value);
			return -EINVAL;
		}
		if (into)
			into->len += got;
		return 0;
	}
	e->vlen = json_string_length(v);
	if (json_string_length(v) > in->max_value) {
		bad(in, e, "the value is %zu bytes; this store takes at most %zu",
			json_string_length(v), in->max_value);
		return -EINVAL;
	}
	if (into) {
		if (into->cap - into->len < e->vlen)
			return -EMSGSIZE;
		memcpy(into->data + into->len, json_string_value(v), e->vlen);
		into->len += e->vlen;
	}
	return 0;
}

static int read_ndjson(struct input *in, const char *path)
{
	_cleanup_close_ int fd = -1;
	size_t line = 0, off = 0;
	int r;

	if (strcmp(path, "-") == 0) {
		if (isatty(STDIN_FILENO))
			return ctl_usage("secret import reads NDJSON from standard input, which is "
					 "a terminal here; pipe it in or name a file");
		fd = dup(STDIN_FILENO);
	} else {
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	}
	if (fd < 0) {
		fprintf(stderr, "kuractl: cannot open %s: %s\n", path, strerror(errno));
		return KURA_EXIT_USAGE;
	}
	r = kura_secbuf_read_fd(fd, NDJSON_MAX, &in->text);
	if (r < 0) {
		fprintf(stderr, "kuractl: cannot read %s: %s\n", path,
			r == -EFBIG ? "larger than 1 GiB (split it)" : strerror(-r));
		return r == -EFBIG ? KURA_EXIT_USAGE : KURA_EXIT_SYSTEM;
	}
	while (off < in->text->len) {
		const uint8_t *p = in->text->data + off;
		const uint8_t *nl = memchr(p, '\n', in->text->len - off);
		size_t len = nl ? (size_t)(nl - p) : in->text->len - off;
		struct entry e = { .line = ++line, .off = off, .len = len };
		size_t k = 0;

		off += len + (nl ? 1 : 0);
		while (k < len && (p[k] == ' ' || p[k] == '\t' || p[k] == '\r'))
			k++;
		if (k == len)
			continue;
		if (line_value(in, &e, &e.name, NULL) < 0)
			continue;
		r = add(in, &e);
		if (r < 0)
			return KURA_EXIT_SYSTEM;
	}
	return 0;
}

/* Every regular file below dirfd (path so far in rel), depth first. */
static int walk(struct input *in, int dirfd, const char *rel, unsigned depth)
{
	DIR *d;
	struct dirent *de;
	int r = 0;

	if (depth > 128)
		return 0;
	d = fdopendir(dirfd);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		char path[4096];
		struct stat st;
		struct entry e = { 0 };

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s%s%s", rel, rel[0] ? "/" : "", de->d_name);
		e.path = strdup(path);
		if (!e.path) {
			r = -ENOMEM;
			break;
		}
		if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			bad(in, &e, "%s", strerror(errno));
			free(e.path);
			continue;
		}
		if (S_ISDIR(st.st_mode)) {
			int sub = openat(dirfd, de->d_name,
				O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

			free(e.path);
			if (sub < 0 || (r = walk(in, sub, path, depth + 1)) < 0) {
				r = sub < 0 ? -errno : r;
				break;
			}
			continue;
		}
		if (!S_ISREG(st.st_mode)) {
			bad(in, &e, "not a regular file (%s): refused",
				S_ISLNK(st.st_mode) ? "a symbolic link" : "a special file");
			free(e.path);
			continue;
		}
		if ((uint64_t)st.st_size > in->max_value) {
			bad(in, &e, "the value is %llu bytes; this store takes at most %zu",
				(unsigned long long)st.st_size, in->max_value);
			free(e.path);
			continue;
		}
		e.vlen = (size_t)st.st_size;
		e.name = full_name(in, &e, path, strlen(path));
		if (!e.name) {
			free(e.path);
			continue;
		}
		r = add(in, &e);
		if (r < 0)
			break;
	}
	closedir(d);
	return r;
}

/* A file's bytes appended to into; -EMSGSIZE if it grew since it was looked at. */
static int file_value(struct input *in, const struct entry *e, struct kura_secbuf *into)
{
	_cleanup_close_ int fd = openat(in->dirfd, e->path,
		O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	size_t got = 0;
	struct stat st;
	ssize_t k;

	if (fd < 0 || fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	/* One byte more than it had: a file that grew is refused, not cut. */
	while ((k = read(fd, into->data + into->len + got, e->vlen + 1 - got)) > 0) {
		got += (size_t)k;
		if (got > e->vlen)
			return -EMSGSIZE;
	}
	if (k < 0)
		return -errno;
	if (got != e->vlen)
		return -EMSGSIZE;
	into->len += got;
	return 0;
}

static int cmp_entry(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->name, ((const struct entry *)b)->name);
}

static int cmp_line(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;

	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	return strcmp(x->path ? x->path : "", y->path ? y->path : "");
}

/* The first of the sorted names l that is not before key[0..len). */
static size_t lower_bound(const struct kura_secret_list *l, const char *key, size_t len)
{
	size_t lo = 0, hi = l->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (strncmp(l->items[mid].name, key, len) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The secret of the sorted list l that name would clash with: name itself, a folder above it,
 * or one below it (binary searches: an import into a large store stays fast). */
static const char *clash(const struct kura_secret_list *l, const char *name)
{
	size_t len = strlen(name), i;
	char below[KURA_NAME_MAX + 2];

	for (size_t k = 0; k <= len; k++) {
		if (name[k] != '/' && name[k] != 0)
			continue;
		i = lower_bound(l, name, k);
		if (i < l->n && strlen(l->items[i].name) == k &&
			strncmp(l->items[i].name, name, k) == 0)
			return l->items[i].name;
	}
	snprintf(below, sizeof(below), "%s/", name);
	i = lower_bound(l, below, len + 1);
	if (i < l->n && strncmp(l->items[i].name, below, len + 1) == 0)
		return l->items[i].name;
	return NULL;
}

/* Names twice, or a folder of another, in the input; and names the store has already. */
static int cross_check(struct ctl *c, struct input *in)
{
	struct kura_secret_list l = { 0 };
	struct kura_err err = { 0 };
	int r;

	qsort(in->e, in->n, sizeof(*in->e), cmp_entry);
	for (size_t i = 0; i + 1 < in->n; i++) {
		const char *a = in->e[i].name;

		for (size_t k = i + 1; k < in->n; k++) {
			const char *b = in->e[k].name;
			size_t al = strlen(a);

			if (strcmp(a, b) == 0) {
				char w[4200];

				where(&in->e[i], w, sizeof(w));
				bad(in, &in->e[k], "secret %s is given twice (first at %s)", b, w);
				continue;
			}
			if (strncmp(a, b, al) != 0)
				break;
			if (b[al] == '/')
				bad(in, &in->e[k],
					"%s lies below %s, which is a secret too: a name is a secret "
					"or a folder, never both",
					b, a);
		}
	}
	/* The store's names, once: most clashes are caught here rather than mid-import. */
	r = be_secret_list(c, in->prefix ? in->prefix : "", &l, &err);
	if (r < 0 && in->prefix)
		r = be_secret_list(c, "", &l, &err);
	if (r < 0)
		return ctl_fail(r, &err);
	if (l.n)
		for (size_t i = 0; i < in->n; i++) {
			const char *o = clash(&l, in->e[i].name);

			if (o && strcmp(o, in->e[i].name) == 0)
				bad(in, &in->e[i], "secret %s already exists", o);
			else if (o)
				bad(in, &in->e[i],
					"%s clashes with the secret %s (a name is a "
					"secret or a folder, never both)",
					in->e[i].name, o);
		}
	kura_secret_list_done(&l);
	qsort(in->e, in->n, sizeof(*in->e), cmp_line);
	return 0;
}

static void progress(size_t done, size_t total, bool final)
{
	static int64_t last;
	int64_t now = kura_clock_ms();

	if (!isatty(STDERR_FILENO) || (!final && now - last < 100))
		return;
	last = now;
	fprintf(stderr, "\rkuractl: imported %zu of %zu secrets (%zu%%)%s", done, total,
		total ? done * 100 / total : 100, final ? "\n" : "");
}

/* What the first `done` entries were, for a person who has to pick up after a failure. */
static void say_imported(const struct input *in, size_t done)
{
	char a[4200], b[4200];

	if (done == 0) {
		fputs("kuractl: nothing was imported\n", stderr);
		return;
	}
	where(&in->e[0], a, sizeof(a));
	where(&in->e[done - 1], b, sizeof(b));
	fprintf(stderr,
		"kuractl: imported %zu secrets, the input's first %zu (%s to %s); none "
		"after them\n",
		done, done, a, b);
}

int ctl_secret_import(struct ctl *c, int argc, char **argv)
{
	enum { OPT_DIR = 0x300, OPT_PREFIX };
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, OPT_DIR },
		{ "prefix", required_argument, NULL, OPT_PREFIX },
		CTL_COMMON_OPTIONS,
	};
	struct input in = { .dirfd = -1 };
	const char *dir = NULL, *file = NULL;
	const char **names = NULL;
	struct kura_secbuf **values = NULL, *views = NULL, *all = NULL;
	struct kura_err err = { 0 };
	size_t done = 0, failed = 0;
	int64_t rev = 0;
	uint64_t max = 0;
	int opt, r;

	while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (ctl_common_option(c, opt, optarg))
			continue;
		switch (opt) {
		case 'h':
			fputs(import_usage, stdout);
			return KURA_EXIT_OK;
		case OPT_DIR:
			dir = optarg;
			break;
		case OPT_PREFIX:
			in.prefix = optarg;
			break;
		default:
			return ctl_bad_option(opt, argv);
		}
	}
	if (optind < argc)
		file = argv[optind++];
	if (optind < argc)
		return ctl_usage("secret import takes one FILE (or --dir DIR)");
	if (!!dir == !!file)
		return ctl_usage("secret import needs an NDJSON FILE (- for standard input) or "
				 "--dir DIR");
	if (file && strcmp(file, "-") == 0 && c->master.kind == KURA_MASTER_PASSPHRASE &&
		c->master.path && strcmp(c->master.path, "-") == 0)
		return ctl_usage("standard input cannot carry both the passphrase and the input");

	r = ctl_connect(c);
	if (r > 0)
		return r;
	r = be_max_value(c, 0, &max, &err);
	if (r < 0) {
		r = ctl_fail(r, &err);
		goto out;
	}
	in.max_value = (size_t)max;
	if (file) {
		r = read_ndjson(&in, file);
	} else {
		in.dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (in.dirfd < 0) {
			fprintf(stderr, "kuractl: cannot open the directory %s: %s\n", dir,
				strerror(errno));
			r = KURA_EXIT_USAGE;
		} else {
			int fd = dup(in.dirfd);

			r = fd < 0 ? -errno : walk(&in, fd, "", 0);
			if (r < 0) {
				fprintf(stderr, "kuractl: cannot read %s: %s\n", dir, strerror(-r));
				r = KURA_EXIT_SYSTEM;
			}
		}
	}
	if (r == 0)
		r = cross_check(c, &in);
	if (r == 0 && in.bad) {
		fprintf(stderr, "kuractl: %zu bad %s; nothing was imported\n", in.bad,
			file ? "lines" : "entries");
		r = KURA_EXIT_USAGE;
	}
	if (r == 0 && in.n == 0) {
		fputs("kuractl: the input holds no secrets; nothing was imported\n", stderr);
		r = KURA_EXIT_USAGE;
	}
	if (r != 0)
		goto out;

	names = calloc(BATCH, sizeof(*names));
	values = calloc(BATCH, sizeof(*values));
	views = calloc(BATCH, sizeof(*views));
	if (!names || !values || !views) {
		r = ctl_fail(-ENOMEM, NULL);
		goto out;
	}
	while (done < in.n) {
		size_t n = 0, got = 0, bytes = 0;

		/* kurad takes a request of up to 4/3 of the largest value and 64 KiB besides. */
		while (n < BATCH && done + n < in.n) {
			const struct entry *e = &in.e[done + n];
			size_t cost = kura_base64_len(e->vlen) + 6 * strlen(e->name) + 32;

			if (n > 0 && bytes + cost > in.max_value / 3 * 4 + 32768)
				break;
			bytes += cost;
			n++;
		}

		/* The batch's values in one guarded buffer, each a view into it: one locked
		 * mapping per batch, not one per secret. */
		bytes = 1;
		for (size_t i = 0; i < n; i++)
			bytes += in.e[done + i].vlen;
		r = kura_secbuf_new(bytes, &all);
		for (; r == 0 && got < n; got++) {
			struct entry *e = &in.e[done + got];
			size_t at = all->len;

			names[got] = e->name;
			r = file ? line_value(&in, e, NULL, all) : file_value(&in, e, all);
			if (r < 0)
				break;
			views[got] = (struct kura_secbuf){ .data = all->data + at,
				.len = all->len - at,
				.cap = all->len - at };
			values[got] = &views[got];
		}
		if (r == 0)
			r = be_secret_import(c, names, values, n, &failed, &rev, &err);
		else
			failed = got,
			kura_err_set(&err, r, "cannot read it again: %s", strerror(-r));
		kura_secbuf_free(all);
		all = NULL;
		if (r < 0) {
			char w[4200];

			progress(done, in.n, true);
			if (failed < n) {
				where(&in.e[done + failed], w, sizeof(w));
				fprintf(stderr, "kuractl: %s: ", w);
			}
			r = ctl_fail(r, &err);
			say_imported(&in, done);
			goto out;
		}
		done += n;
		progress(done, in.n, done == in.n);
	}
	if (c->json)
		r = ctl_print_json(json_pack("{s:I, s:I}", "imported", (json_int_t)done, "revision",
			(json_int_t)rev));
	else
		printf("imported %zu secrets (store revision %lld)\n", done, (long long)rev);
out:
	free(names);
	free(values);
	free(views);
	input_done(&in);
	ctl_disconnect(c);
	return r;
}

/* --- export --- */

/* One NDJSON line: name and metadata, and the value's base64 when given; guarded memory. */
static int export_line(const struct kura_secret_info *s, const struct kura_secbuf *value,
	struct kura_secbuf **ret)
{
	char *meta = NULL;
	struct kura_secbuf *b = NULL;
	char created[32], updated[32];
	size_t mlen;
	json_t *j;
	int r;

	kura_rfc3339(s->created, created);
	kura_rfc3339(s->updated, updated);
	j = json_pack("{s:s, s:I, s:I, s:s, s:s}", "name", s->name, "current",
		(json_int_t)s->current, "latest", (json_int_t)s->latest, "created", created,
		"updated", updated);
	meta = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII) : NULL;
	json_decref(j);
	if (!meta)
		return -ENOMEM;
	mlen = strlen(meta) - 1; /* without its '}' */
	r = kura_secbuf_new(mlen + (value ? kura_base64_len(value->len) + 16 : 0) + 2, &b);
	if (r == 0)
		memcpy(b->data, meta, mlen);
	kura_json_free(meta); /* jansson's allocator made it */
	if (r < 0)
		return r;
	b->len = mlen;
	if (value) {
		memcpy(b->data + b->len, ",\"value_b64\":\"", 14);
		b->len += 14;
		b->len += kura_base64_encode(value->data, value->len, (char *)b->data + b->len);
		b->data[b->len++] = '"';
	}
	memcpy(b->data + b->len, "}\n", 2);
	b->len += 2;
	*ret = b;
	return 0;
}

/* Make the folders of name below dirfd (0700) and open a new file for it (0600). */
static int tree_file(int dirfd, const char *name)
{
	char path[KURA_NAME_MAX + 1];

	snprintf(path, sizeof(path), "%s", name);
	for (char *p = strchr(path, '/'); p; p = strchr(p + 1, '/')) {
		*p = 0;
		if (mkdirat(dirfd, path, 0700) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	/* The tree is ours alone (made 0700 just now): O_NOFOLLOW is a second lock. */
	return openat(dirfd, path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600) < 0 ?
		-errno :
		openat(dirfd, path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
}

int ctl_secret_export(struct ctl *c, int argc, char **argv)
{
	enum { OPT_VALUES = 0x300, OPT_OUTPUT, OPT_DIR };
	static const struct option opts[] = {
		{ "values", no_argument, NULL, OPT_VALUES },
		{ "output", required_argument, NULL, OPT_OUTPUT },
		{ "dir", required_argument, NULL, OPT_DIR },
		CTL_COMMON_OPTIONS,
	};
	struct ctl_newfile f = { .fd = -1, .dirfd = -1 };
	struct kura_secret_list l = { 0 };
	struct kura_err err = { 0 };
	const char *output = NULL, *dir = NULL, *prefix = "";
	_cleanup_close_ int treefd = -1;
	char treetmp[PATH_MAX];
	bool values = false;
	char why[4400];
	int opt, r, out = STDOUT_FILENO;

	while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (ctl_common_option(c, opt, optarg))
			continue;
		switch (opt) {
		case 'h':
			fputs(export_usage, stdout);
			return KURA_EXIT_OK;
		case OPT_VALUES:
			values = true;
			break;
		case OPT_OUTPUT:
			output = optarg;
			break;
		case OPT_DIR:
			dir = optarg;
			break;
		default:
			return ctl_bad_option(opt, argv);
		}
	}
	if (optind < argc)
		prefix = argv[optind++];
	if (optind < argc)
		return ctl_usage("secret export takes at most one PREFIX");
	if (output && dir)
		return ctl_usage("give --output FILE or --dir DIR, not both");
	if (dir && !values)
		return ctl_usage("a directory tree holds values: --dir needs --values");
	if (values && !output && !dir)
		return ctl_usage("--values writes only into a new file (--output FILE) or "
				 "directory (--dir DIR), never to standard output");

	if (output) {
		r = ctl_newfile_begin(output, false, &f, why, sizeof(why));
		if (r < 0) {
			fprintf(stderr, "kuractl: %s\n", why);
			return KURA_EXIT_WRITE_REFUSED;
		}
		out = f.fd;
	}
	if (dir) {
		struct stat st;

		/* Built beside DIR and renamed into place at the end, never over anything: an
		 * export that fails leaves no DIR at all. */
		if (lstat(dir, &st) == 0 || errno != ENOENT) {
			fprintf(stderr,
				"kuractl: %s: %s (export writes into a new directory only)\n", dir,
				errno == ENOENT ? "it exists" : strerror(errno));
			return KURA_EXIT_WRITE_REFUSED;
		}
		if (snprintf(treetmp, sizeof(treetmp), "%s.kuractl-XXXXXX", dir) >=
				(int)sizeof(treetmp) ||
			!mkdtemp(treetmp)) {
			fprintf(stderr, "kuractl: cannot make a directory beside %s: %s\n", dir,
				strerror(errno));
			return KURA_EXIT_SYSTEM;
		}
		treefd = open(treetmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (treefd < 0) {
			fprintf(stderr, "kuractl: cannot open %s: %s\n", treetmp, strerror(errno));
			ctl_rmtree(treetmp);
			return KURA_EXIT_SYSTEM;
		}
	}
	r = ctl_connect(c);
	if (r > 0) {
		ctl_newfile_abort(&f);
		if (dir)
			ctl_rmtree(treetmp);
		return r;
	}
	r = be_secret_list(c, prefix, &l, &err);
	for (size_t i = 0; r == 0 && i < l.n; i++) {
		_cleanup_secbuf_ struct kura_secbuf *value = NULL, *line = NULL;
		struct kura_version_info info;

		if (values) {
			r = be_secret_get(c, l.items[i].name, 0, &value, &info, &err);
			if (r < 0)
				break;
		}
		if (dir) {
			int fd = tree_file(treefd, l.items[i].name);

			r = fd < 0 ? fd : kura_secbuf_write_fd(value, fd);
			if (fd >= 0 && r == 0 && fsync(fd) < 0)
				r = -errno;
			if (fd >= 0)
				close(fd);
			if (r < 0)
				kura_err_set(&err, r, "cannot write %s/%s: %s", dir,
					l.items[i].name, strerror(-r));
			continue;
		}
		r = export_line(&l.items[i], value, &line);
		if (r == 0)
			r = kura_secbuf_write_fd(line, out);
		if (r < 0)
			kura_err_set(&err, r, "cannot write the export: %s", strerror(-r));
	}
	ctl_disconnect(c);
	if (r == 0 && output)
		r = ctl_newfile_commit(&f);
	if (r == 0 && dir &&
		(fsync(treefd) < 0 ||
			renameat2(AT_FDCWD, treetmp, AT_FDCWD, dir, RENAME_NOREPLACE) < 0))
		r = kura_err_set(&err, -errno, "cannot move the export to %s: %s", dir,
			strerror(errno));
	if (r < 0) {
		ctl_newfile_abort(&f);
		if (dir)
			ctl_rmtree(treetmp);
		r = ctl_fail(r, &err);
		if (output || dir)
			fprintf(stderr, "kuractl: %s was not written\n", output ? output : dir);
	} else if (output || dir) {
		fprintf(stderr, "kuractl: exported %zu secrets%s to %s\n", l.n,
			values ? " with their values" : "", output ? output : dir);
	}
	kura_secret_list_done(&l);
	return r;
}

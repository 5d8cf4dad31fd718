/* kuractl audit: filter, follow, summarise and verify the audit log, reading its files directly
 * (no kurad needed). Records never carry a value; the verify key is the only key here. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base64.h"
#include "audit-event.h"
#include "number.h"
#include "audit-internal.h"
#include "audit-line.h"
#include "audit.h"
#include "clock.h"
#include "ctl.h"
#include "escape.h"
#include "json.h"

static const char audit_usage[] =
	"Usage: kuractl audit [--since T] [--until T] [--secret NAME|PREFIX/] [--container C]\n"
	"                     [--image ID] [--event E[,E...]] [--denied] [--follow] [--json]\n"
	"                     [--dir DIR]\n"
	"       kuractl audit stats [FILTERS] [--json]\n"
	"       kuractl audit verify [--key FILE] [--checkpoint SEQ:MAC] [--checkpoints FILE]\n"
	"                     [--json] [PATH]\n"
	"       kuractl audit init [--audit-key-out FILE]\n"
	"       kuractl audit archive --before T [--key FILE] [--dir DIR] DEST\n"
	"\n"
	"Show the audit records of STATE_DIR/audit (or --dir DIR), oldest first, reading\n"
	"the files directly: no kurad is needed, and one may be appending meanwhile (a record\n"
	"still being written is left out until it is whole). Filters, all of which must match:\n"
	"  --since T, --until T   records at or after / at or before T (both inclusive):\n"
	"                         RFC 3339 (2026-11-25T19:40:01.5Z, 2026-11-25T19:40:01,\n"
	"                         2026-11-25T20:40+01:00, 2026-11-25; no zone means UTC)\n"
	"                         or an age: 30s, 15m, 1h, 2d, 1w\n"
	"  --secret NAME          that secret exactly; a NAME ending in '/' (or '/*') is a\n"
	"                         prefix: db/ matches db/password and db/replica/password,\n"
	"                         not db or dbx/a\n"
	"  --container C          container ID prefix (4 to 64 hex digits) or exact name\n"
	"  --image ID             image ID, exactly or by prefix, with or without \"sha256:\"\n"
	"  --event E              one of the events; repeat it or give a comma list\n"
	"  --denied               only denials (result \"denied\")\n"
	"  --follow               keep printing records as they are appended, across rotated\n"
	"                         files, until SIGINT or SIGTERM, or until the reader goes\n"
	"\n"
	"On a terminal: a table, denials marked '!' (and bold red unless NO_COLOR is set),\n"
	"control characters in names and reasons escaped (\\xNN, \\u{N}).\n"
	"Otherwise, or with --json: the matching records' original JSON lines, unchanged\n"
	"(on a terminal, control characters an older record holds as JSON escapes).\n"
	"`kuractl audit stats --help`, `kuractl audit verify --help`, `kuractl audit init\n"
	"--help` and `kuractl audit archive --help` for the others.\n"
	"Exit status: 0 ok (also when nothing matches), 1 no audit log there, 2 usage, 3 I/O.\n";

static const char archive_usage[] =
	"Usage: kuractl audit archive --before T [--key FILE] [--dir DIR] [--json] DEST\n"
	"\n"
	"Move the oldest whole files of the audit log (STATE_DIR/audit, or --dir DIR) whose\n"
	"every record is older than T (RFC 3339 or an age, as for --since) into DEST, a new\n"
	"or empty directory (made 0700). Never the file being written; kurad may run.\n"
	"The files are verified first, from the log's start: every MAC with --key (the\n"
	"starting key kuractl init printed), else their structure (each line, seqs running\n"
	"on, epochs following their closing records); if any fails, nothing is archived.\n"
	"DEST gets copies of the files (synced) and the start point they began from, so it\n"
	"verifies on its own: kuractl audit verify --key FILE DEST. The log gets a start point\n"
	"(audit/start: the last archived record's seq and MAC, the next epoch, and with --key\n"
	"a commitment to that epoch's key), from which verify goes on; then the files are\n"
	"removed. A crash leaves a log that verifies, archived or not.\n"
	"Exit status: 0 ok (also when nothing is old enough), 1 no audit log there or DEST\n"
	"holds an archive already, 2 usage, 3 I/O, 4 a file to archive does not verify.\n";

static const char stats_usage[] =
	"Usage: kuractl audit stats [--since T] [--until T] [FILTERS] [--json] [--dir DIR]\n"
	"\n"
	"Count the records that match (the filters of `kuractl audit`, most often only a\n"
	"time range) by result, event, secret, container name (host processes as \"(host)\")\n"
	"and image, and list the top 10 denials by who, secret and reason. A record without\n"
	"a field is not counted in that field's section (key-evolve records have no result,\n"
	"list has no secret). --json prints one object instead of the aligned sections.\n"
	"Exit status: 0 ok, 1 no audit log there, 2 usage, 3 I/O.\n";

static const char verify_usage[] =
	"Usage: kuractl audit verify [--key FILE] [--checkpoint SEQ:MAC] [--checkpoints FILE]\n"
	"                            [--json] [PATH]\n"
	"\n"
	"Check the audit log's chain in PATH (an audit directory; default STATE_DIR/audit,\n"
	"or --dir DIR) and name the first record that is edited, deleted, reordered,\n"
	"duplicated, inserted, malformed, truncated or differs from a checkpoint: its file,\n"
	"line and seq.\n"
	"  --key FILE             the starting key K(0) given out when the log was created:\n"
	"                         one line of base64 of 32 bytes, or exactly 32 raw bytes;\n"
	"                         \"-\" reads standard input. Without it, MACs are NOT checked:\n"
	"                         only the structure (every line parses, seqs run on by one,\n"
	"                         epochs follow their closing records), and the log is never\n"
	"                         called verified.\n"
	"  --checkpoint SEQ:MAC   a checkpoint kept off this host (MAC in base64): the log\n"
	"                         must reach SEQ, and record SEQ must carry that MAC\n"
	"  --checkpoints FILE     find the checkpoint objects "
	"(\"type\":\"kura-audit-checkpoint\")\n"
	"                         in FILE, one a line, maybe after a syslog header, as a\n"
	"                         collector stored them, and use the one with the highest seq\n"
	"Without a checkpoint, a log whose tail was cut at a line boundary still verifies,\n"
	"and so does an epoch rewritten by whoever holds the current epoch's key: keep\n"
	"checkpoints off the host. Verify a copy (cp -a) for a quiet result: with a live\n"
	"kurad, a record being written may be seen as a truncated tail.\n"
	"Exit status: 0 intact, 1 no audit log there, 2 usage or a bad key or checkpoint,\n"
	"3 I/O error, 4 the log is broken (the first bad record is named).\n";

static const char *const known_events[] = {
	"fetch",
	"list",
	"whoami",
	"watch",
	"request",
	"whois",
	"status",
	"secret-put",
	"secret-rotate",
	"secret-rollback",
	"secret-destroy",
	"secret-get",
	"secret-show",
	"secret-list",
	"grant",
	"revoke",
	"grants",
	"key-rotate",
	"key-rekey",
	"key-status",
	"config",
	"start",
	"stop",
	"reload",
	"sink-failure",
	"sink-recovered",
	"sink-drop",
	"audit-recovered",
	"audit-key-evolve",
	"audit-init",
	"audit-archive",
};

#define TIME_LEN KURA_AUDIT_TIME_LEN
#define MAX_EVENTS ELEMENTSOF(known_events)
#define MAX_LINE (64u << 20)

struct filter {
	char since[TIME_LEN + 1], until[TIME_LEN + 1];
	const char *secret;
	size_t secret_len;
	bool secret_prefix;
	const char *container;
	bool container_id; /* also an ID prefix */
	const char *image;
	const char *events[MAX_EVENTS];
	size_t n_events;
	bool denied;
};

/* --- the filter ------------------------------------------------------------------------------ */

static bool has_prefix(const char *v, size_t n, const char *prefix, size_t plen)
{
	return n >= plen && memcmp(v, prefix, plen) == 0;
}

static int add_events(struct filter *f, const char *arg)
{
	const char *p = arg;

	while (*p) {
		size_t n = strcspn(p, ","), i;

		for (i = 0; i < MAX_EVENTS; i++)
			if (strlen(known_events[i]) == n && memcmp(known_events[i], p, n) == 0)
				break;
		if (i == MAX_EVENTS)
			return ctl_usage("unknown event '%.*s'", (int)n, p);
		if (f->n_events < MAX_EVENTS)
			f->events[f->n_events++] = known_events[i];
		p += n + (p[n] == ',');
	}
	return f->n_events ? 0 : ctl_usage("--event needs an event name");
}

static int set_secret(struct filter *f, const char *arg)
{
	size_t n = strlen(arg);

	if (n == 0 || n > 256 || strpbrk(arg, "\"\\") || (unsigned char)arg[0] < 0x20)
		return ctl_usage("--secret wants a secret name or a prefix ending in '/'");
	if (n >= 2 && strcmp(arg + n - 2, "/*") == 0)
		n--;
	f->secret = arg;
	f->secret_len = n;
	f->secret_prefix = arg[n - 1] == '/';
	return 0;
}

static int set_container(struct filter *f, const char *arg)
{
	size_t n = strlen(arg);

	if (n == 0 || n > 256 ||
		strspn(arg,
			"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			"0123456789_.-") != n)
		return ctl_usage(
			"--container wants a container ID prefix or name ([A-Za-z0-9_.-])");
	f->container = arg;
	f->container_id = n >= 4 && n <= 64 && strspn(arg, "0123456789abcdef") == n;
	return 0;
}

static int set_image(struct filter *f, const char *arg)
{
	const char *h = strncmp(arg, "sha256:", 7) == 0 ? arg + 7 : arg;

	if (!*h || strlen(h) > 64 || strspn(h, "0123456789abcdef") != strlen(h))
		return ctl_usage("--image wants an image ID (sha256:HEX, or a prefix of its hex)");
	f->image = h;
	return 0;
}

static bool time_ok(const struct filter *f, const char *v, size_t n)
{
	if (n != TIME_LEN)
		return false;
	if (f->since[0] && memcmp(v, f->since, TIME_LEN) < 0)
		return false;
	return !f->until[0] || memcmp(v, f->until, TIME_LEN) <= 0;
}

/* Cheapest and most selective tests first: each is a memmem on the raw line. */
static bool matches(const struct filter *f, const char *l, size_t len)
{
	const char *v;
	size_t n;

	if (f->denied && !memmem(l, len, "\"result\":\"denied\"", 17))
		return false;
	if (f->secret) {
		if (!kura_audit_field(l, len, "secret", &v, &n))
			return false;
		if (f->secret_prefix ? !has_prefix(v, n, f->secret, f->secret_len) :
				       n != f->secret_len || memcmp(v, f->secret, n) != 0)
			return false;
	}
	if (f->n_events) {
		size_t i;

		if (!kura_audit_field(l, len, "event", &v, &n))
			return false;
		for (i = 0; i < f->n_events; i++)
			if (strlen(f->events[i]) == n && memcmp(f->events[i], v, n) == 0)
				break;
		if (i == f->n_events)
			return false;
	}
	if (f->container) {
		size_t cl = strlen(f->container);
		bool ok = kura_audit_field(l, len, "container_name", &v, &n) && n == cl &&
			memcmp(v, f->container, n) == 0;

		if (!ok && f->container_id)
			ok = kura_audit_field(l, len, "container_id", &v, &n) &&
				has_prefix(v, n, f->container, cl);
		if (!ok)
			return false;
	}
	if (f->image) {
		if (!kura_audit_field(l, len, "image_id", &v, &n))
			return false;
		if (has_prefix(v, n, "sha256:", 7)) {
			v += 7;
			n -= 7;
		}
		if (!has_prefix(v, n, f->image, strlen(f->image)))
			return false;
	}
	if (f->since[0] || f->until[0])
		return kura_audit_field(l, len, "time", &v, &n) && time_ok(f, v, n);
	return true;
}

/* --- output (write(2), so a closed pipe ends us quietly) -------------------------------------- */

static struct {
	char buf[1 << 16];
	size_t len;
	bool broken; /* the reader went away (EPIPE) or writing failed */
	int err;
} out;

static void out_flush(void)
{
	size_t done = 0;

	while (done < out.len && !out.broken) {
		ssize_t n = write(STDOUT_FILENO, out.buf + done, out.len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			out.broken = true;
			out.err = errno == EPIPE ? 0 : errno;
		}
		done += n > 0 ? (size_t)n : 0;
	}
	out.len = 0;
}

static void out_write(const char *p, size_t n)
{
	if (out.len + n > sizeof(out.buf))
		out_flush();
	if (n > sizeof(out.buf)) {
		size_t done = 0;

		while (done < n && !out.broken) {
			size_t k = n - done < sizeof(out.buf) ? n - done : sizeof(out.buf);

			memcpy(out.buf, p + done, k);
			out.len = k;
			out_flush();
			done += k;
		}
		return;
	}
	memcpy(out.buf + out.len, p, n);
	out.len += n;
}

__attribute__((format(printf, 1, 2))) static void out_printf(const char *fmt, ...)
{
	char line[4096];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n > 0)
		out_write(line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

/* --- reading the log ------------------------------------------------------------------------ */

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = sig;
}

struct reader {
	const struct filter *f;
	void (*emit)(struct reader *rd, const char *l, size_t len);
	void *userdata;
	int dirfd;
	char *buf;
	size_t cap, len; /* bytes read but not yet a whole line */
	bool tty, color;
	bool escape_lines; /* JSON lines to a terminal */
	uint64_t records;
};

/* Hands each whole line read from fd to the filter; a partial one waits in rd->buf. */
static int read_lines(struct reader *rd, int fd)
{
	for (;;) {
		char *p, *end, *nl;
		ssize_t n;

		if (rd->len == rd->cap) {
			size_t cap = rd->cap ? rd->cap * 2 : 4u << 20;
			char *nb;

			if (cap > MAX_LINE)
				return -EFBIG;
			nb = realloc(rd->buf, cap);
			if (!nb)
				return -ENOMEM;
			rd->buf = nb;
			rd->cap = cap;
		}
		n = read(fd, rd->buf + rd->len, rd->cap - rd->len);
		if (n < 0 && errno == EINTR) {
			if (stop)
				return 0;
			continue;
		}
		if (n < 0)
			return -errno;
		if (n == 0)
			return 0;
		rd->len += (size_t)n;
		p = rd->buf;
		end = rd->buf + rd->len;
		while ((nl = memchr(p, '\n', (size_t)(end - p)))) {
			if (matches(rd->f, p, (size_t)(nl - p)))
				rd->emit(rd, p, (size_t)(nl - p));
			p = nl + 1;
			if (out.broken)
				return 0;
		}
		rd->len = (size_t)(end - p);
		memmove(rd->buf, p, rd->len);
	}
}

/* The time of the first (first) or last whole line of a file, from a window at either end. */
static bool edge_time(int fd, bool first, char t[TIME_LEN + 1])
{
	char w[65536];
	struct stat st;
	const char *l, *v, *e;
	size_t n;
	ssize_t got;
	off_t at;

	if (fstat(fd, &st) < 0 || st.st_size == 0)
		return false;
	at = first || st.st_size <= (off_t)sizeof(w) ? 0 : st.st_size - (off_t)sizeof(w);
	got = pread(fd, w, sizeof(w), at);
	if (got <= 0)
		return false;
	if (first) {
		e = memchr(w, '\n', (size_t)got);
		l = w;
	} else {
		e = memrchr(w, '\n', (size_t)got);
		if (!e)
			return false;
		l = memrchr(w, '\n', (size_t)(e - w));
		l = l ? l + 1 : (at == 0 ? w : NULL);
	}
	if (!e || !l || !kura_audit_field(l, (size_t)(e - l), "time", &v, &n) || n != TIME_LEN)
		return false;
	memcpy(t, v, TIME_LEN);
	t[TIME_LEN] = 0;
	return true;
}

static int open_log_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0) {
		int r = -errno;

		fprintf(stderr, "kuractl: cannot open the audit log %s: %s\n", dir, strerror(-r));
		return r;
	}
	return fd;
}

/*
 * Every record of the log in order, through the filter to rd->emit. Files entirely before
 * --since are skipped by their last record's time, and the files after one that starts past
 * --until (files are in time order). With follow, waits at the end of the newest file for more
 * lines or for the next file, until a signal or a closed output.
 */
static int read_log(struct reader *rd, const char *dir, bool follow)
{
	_cleanup_free_ uint64_t *files = NULL;
	_cleanup_close_ int dirfd = -1;
	size_t n = 0;
	uint64_t num = 1;
	int r;

	dirfd = open_log_dir(dir);
	if (dirfd < 0)
		return dirfd;
	r = kura_audit_list_files(dirfd, &files, &n);
	if (r < 0)
		return r;

	for (size_t i = 0; i < n && !out.broken && !stop; i++) {
		_cleanup_close_ int fd = -1;
		char name[32], t[TIME_LEN + 1];
		bool last = i + 1 == n;

		num = files[i];
		kura_audit_file_name(num, name);
		fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0) {
			r = -errno;
			fprintf(stderr, "kuractl: cannot open %s/%s: %s\n", dir, name,
				strerror(-r));
			return r;
		}
		if (!last && rd->f->since[0] && edge_time(fd, false, t) &&
			strcmp(t, rd->f->since) < 0)
			continue;
		if (!follow && rd->f->until[0] && edge_time(fd, true, t) &&
			strcmp(t, rd->f->until) > 0)
			break;
		rd->len = 0;
		r = read_lines(rd, fd);
		if (r < 0) {
			fprintf(stderr, "kuractl: cannot read %s/%s: %s\n", dir, name,
				strerror(-r));
			return r;
		}
		if (!last || !follow)
			continue;

		/* The newest file: wait for it to grow, or for the next one (the writer only
		 * rotates between records, so the old file is whole by then). */
		for (;;) {
			char next[32];

			out_flush();
			if (out.broken || stop)
				return 0;
			kura_sleep_ms(200);
			if (stop)
				return 0;
			r = read_lines(rd, fd);
			if (r < 0)
				return r;
			kura_audit_file_name(num + 1, next);
			if (faccessat(dirfd, next, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
				r = read_lines(rd, fd);
				if (r < 0)
					return r;
				close(fd);
				num++;
				fd = openat(dirfd, next, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
				if (fd < 0)
					return -errno;
				rd->len = 0;
				r = read_lines(rd, fd);
				if (r < 0)
					return r;
			}
		}
	}
	if (follow && n == 0) {
		/* No file yet: wait for the first, then follow it as above. */
		char first[32];

		kura_audit_file_name(1, first);
		while (!stop && !out.broken &&
			faccessat(dirfd, first, F_OK, AT_SYMLINK_NOFOLLOW) < 0) {
			out_flush();
			kura_sleep_ms(200);
		}
		if (stop || out.broken)
			return 0;
		return read_log(rd, dir, follow);
	}
	return 0;
}

/* --- the table ------------------------------------------------------------------------------ */

static void table_header(void)
{
	out_printf("  %-20s %7s  %-16s %-7s %-24s %-30s %s\n", "TIME", "SEQ", "EVENT", "RESULT",
		"SECRET[@VERSION]", "WHO", "REASON/DETAIL");
}

static void append_note(char *buf, size_t cap, const char *label, const char *v)
{
	size_t n = strlen(buf);

	if (!v || !*v)
		return;
	snprintf(buf + n, cap - n, "%s%s%s", n ? "; " : "", label, v);
}

/* The fields a row shows in its notes column, in this order, after these labels. */
static const struct {
	const char *label, *key;
} note_fields[] = {
	{ "", "reason" },
	{ "", "detail" },
	{ "grant ", "grant_id" },
	{ "kek ", "kek" },
	{ "count ", "count" },
	{ "sink ", "sink" },
	{ "dropped ", "dropped" },
	{ "next epoch ", "next_epoch" },
};

static void emit_row(struct reader *rd, const char *l, size_t len)
{
	char time[64], seq[24], event[64], result[16], secret[300], version[24], who[400],
		name[200], id[80], b[256], notes[1200] = "";
	const char *v, *res;
	size_t n;
	bool denied;

	rd->records++;
	kura_audit_text(l, len, "time", time, sizeof(time), true);
	if (strlen(time) == TIME_LEN) {
		time[19] = 'Z'; /* seconds are enough for a table: the JSON has the rest */
		time[20] = 0;
	}
	if (!kura_audit_text(l, len, "seq", seq, sizeof(seq), true))
		snprintf(seq, sizeof(seq), "?");
	if (!kura_audit_text(l, len, "event", event, sizeof(event), true))
		snprintf(event, sizeof(event), "-");
	res = kura_audit_text(l, len, "result", result, sizeof(result), true);
	denied = res && strcmp(res, "denied") == 0;
	if (denied)
		snprintf(result, sizeof(result), "DENIED");
	else if (!res)
		snprintf(result, sizeof(result), "-");
	if (!kura_audit_text(l, len, "secret", secret, sizeof(secret), true))
		snprintf(secret, sizeof(secret), "-");
	else if (kura_audit_text(l, len, "version", version, sizeof(version), true)) {
		n = strlen(secret);
		snprintf(secret + n, sizeof(secret) - n, "@%s", version);
	}
	if (kura_audit_field(l, len, "host", &v, &n) && n == 4 && memcmp(v, "true", 4) == 0) {
		char uid[24] = "?", pid[24] = "?";

		kura_audit_text(l, len, "uid", uid, sizeof(uid), true);
		kura_audit_text(l, len, "pid", pid, sizeof(pid), true);
		snprintf(who, sizeof(who), "host uid %s pid %s", uid, pid);
	} else if (kura_audit_text(l, len, "container_name", name, sizeof(name), true) ||
		kura_audit_text(l, len, "container_id", id, sizeof(id), true)) {
		if (!kura_audit_text(l, len, "container_name", name, sizeof(name), true))
			snprintf(name, sizeof(name), "?");
		if (!kura_audit_text(l, len, "container_id", id, sizeof(id), true))
			snprintf(id, sizeof(id), "?");
		id[12] = 0; /* a short ID, as docker ps shows */
		snprintf(who, sizeof(who), "%s (%s)", name, id);
	} else {
		snprintf(who, sizeof(who), "-");
	}
	for (size_t i = 0; i < ELEMENTSOF(note_fields); i++)
		append_note(notes, sizeof(notes), note_fields[i].label,
			kura_audit_text(l, len, note_fields[i].key, b, sizeof(b), true));

	out_printf("%s%s %-20s %7s  %-16s %-7s %-24s %-30s %s%s\n",
		denied && rd->color ? "\033[1;31m" : "", denied ? "!" : " ", time, seq, event,
		result, secret, who, notes, denied && rd->color ? "\033[0m" : "");
}

/* A line that is not plain printable ASCII (a record written before records were ASCII-only,
 * or one edited since) goes to a terminal with its controls as JSON escapes: the same JSON. */
static bool plain(const char *l, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)l[i] < 0x20 || (unsigned char)l[i] >= 0x7f)
			return false;
	return true;
}

static void emit_line(struct reader *rd, const char *l, size_t len)
{
	char *esc;

	rd->records++;
	if (!rd->escape_lines || plain(l, len)) {
		out_write(l, len);
	} else if ((esc = malloc(len * 8 + 1))) {
		out_write(esc, strlen(kura_escape(l, len, KURA_ESCAPE_JSON, esc, len * 8 + 1)));
		free(esc);
	} else {
		out_write("(a record too large to show here)", 33);
	}
	out_write("\n", 1);
}

/* --- stats ---------------------------------------------------------------------------------- */

/* A string -> count table (open addressing); keys are the raw, still escaped, field bytes. */
struct counter {
	const char *title, *json_name;
	char **keys;
	uint64_t *counts;
	size_t cap, n;
};

static uint64_t hash(const char *p, size_t n)
{
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
	return h;
}

static int count(struct counter *c, const char *k, size_t kn)
{
	size_t i;

	if ((c->n + 1) * 10 > c->cap * 7) {
		struct counter g = { .cap = c->cap ? c->cap * 2 : 64 };

		g.keys = calloc(g.cap, sizeof(*g.keys));
		g.counts = calloc(g.cap, sizeof(*g.counts));
		if (!g.keys || !g.counts) {
			free(g.keys);
			free(g.counts);
			return -ENOMEM;
		}
		for (i = 0; i < c->cap; i++) {
			size_t j;

			if (!c->keys[i])
				continue;
			for (j = hash(c->keys[i], strlen(c->keys[i])) & (g.cap - 1); g.keys[j];
				j = (j + 1) & (g.cap - 1))
				;
			g.keys[j] = c->keys[i];
			g.counts[j] = c->counts[i];
		}
		free(c->keys);
		free(c->counts);
		c->keys = g.keys;
		c->counts = g.counts;
		c->cap = g.cap;
	}
	for (i = hash(k, kn) & (c->cap - 1); c->keys[i]; i = (i + 1) & (c->cap - 1))
		if (strlen(c->keys[i]) == kn && memcmp(c->keys[i], k, kn) == 0) {
			c->counts[i]++;
			return 0;
		}
	c->keys[i] = strndup(k, kn);
	if (!c->keys[i])
		return -ENOMEM;
	c->counts[i] = 1;
	c->n++;
	return 0;
}

static void counter_free(struct counter *c)
{
	for (size_t i = 0; i < c->cap; i++)
		free(c->keys[i]);
	free(c->keys);
	free(c->counts);
}

enum { BY_RESULT, BY_EVENT, BY_SECRET, BY_CONTAINER, BY_IMAGE, BY_DENIAL, N_COUNTERS };

struct stats {
	struct counter c[N_COUNTERS];
	char first[TIME_LEN + 1], last[TIME_LEN + 1];
	int err;
};

static void count_field(struct stats *s, int which, const char *l, size_t len, const char *key)
{
	const char *v;
	size_t n;

	if (kura_audit_field(l, len, key, &v, &n) && count(&s->c[which], v, n) < 0)
		s->err = -ENOMEM;
}

static void emit_stats(struct reader *rd, const char *l, size_t len)
{
	struct stats *s = rd->userdata;
	const char *v;
	size_t n;

	rd->records++;
	if (kura_audit_field(l, len, "time", &v, &n) && n == TIME_LEN) {
		if (!s->first[0])
			memcpy(s->first, v, TIME_LEN);
		memcpy(s->last, v, TIME_LEN);
	}
	count_field(s, BY_RESULT, l, len, "result");
	count_field(s, BY_EVENT, l, len, "event");
	count_field(s, BY_SECRET, l, len, "secret");
	count_field(s, BY_IMAGE, l, len, "image_id");
	if (kura_audit_field(l, len, "host", &v, &n) && n == 4 && memcmp(v, "true", 4) == 0) {
		if (count(&s->c[BY_CONTAINER], "(host)", 6) < 0)
			s->err = -ENOMEM;
	} else {
		count_field(s, BY_CONTAINER, l, len, "container_name");
	}
	if (memmem(l, len, "\"result\":\"denied\"", 17)) {
		/* who \x1f secret \x1f reason: none of them holds a raw control character */
		char key[1024], uid[24] = "?";
		const char *name = NULL, *sec = "", *why = "";
		size_t name_n = 0, sec_n = 0, why_n = 0;

		bool host = kura_audit_field(l, len, "host", &v, &n) && n == 4 &&
			memcmp(v, "true", 4) == 0;

		if (host || !kura_audit_field(l, len, "container_name", &name, &name_n)) {
			kura_audit_text(l, len, "uid", uid, sizeof(uid), false);
			name = NULL;
		}
		kura_audit_field(l, len, "secret", &sec, &sec_n);
		kura_audit_field(l, len, "reason", &why, &why_n);
		if (name)
			n = (size_t)snprintf(key, sizeof(key), "%.*s\x1f%.*s\x1f%.*s", (int)name_n,
				name, (int)sec_n, sec, (int)why_n, why);
		else
			n = (size_t)snprintf(key, sizeof(key), "host uid %s\x1f%.*s\x1f%.*s", uid,
				(int)sec_n, sec, (int)why_n, why);
		if (count(&s->c[BY_DENIAL], key, n < sizeof(key) ? n : sizeof(key) - 1) < 0)
			s->err = -ENOMEM;
	}
}

struct entry {
	const char *key;
	uint64_t count;
};

static int cmp_entry(const void *x, const void *y)
{
	const struct entry *a = x, *b = y;

	if (a->count != b->count)
		return a->count < b->count ? 1 : -1;
	return strcmp(a->key, b->key);
}

/* The counter's entries, most first (ties by key). */
static struct entry *sorted(const struct counter *c)
{
	struct entry *e = calloc(c->n + 1, sizeof(*e));
	size_t k = 0;

	if (!e)
		return NULL;
	for (size_t i = 0; i < c->cap; i++)
		if (c->keys[i])
			e[k++] = (struct entry){ c->keys[i], c->counts[i] };
	qsort(e, k, sizeof(*e), cmp_entry);
	return e;
}

/* A denial key's three parts, unescaped. */
static void split_denial(const char *key, char who[256], char sec[300], char why[128], bool tty)
{
	const char *a = strchr(key, '\x1f'), *b = a ? strchr(a + 1, '\x1f') : NULL;

	if (!a || !b) {
		kura_audit_unescape(key, strlen(key), who, 256, tty);
		sec[0] = why[0] = 0;
		return;
	}
	kura_audit_unescape(key, (size_t)(a - key), who, 256, tty);
	kura_audit_unescape(a + 1, (size_t)(b - a - 1), sec, 300, tty);
	kura_audit_unescape(b + 1, strlen(b + 1), why, 128, tty);
}

static int print_stats_json(struct stats *s, uint64_t records)
{
	json_t *j = json_object(), *o;
	char k[1024];

	if (!j)
		return ctl_print_json(NULL);
	json_object_set_new(j, "records", json_integer((json_int_t)records));
	json_object_set_new(j, "first", s->first[0] ? json_string(s->first) : json_null());
	json_object_set_new(j, "last", s->last[0] ? json_string(s->last) : json_null());
	for (int i = 0; i < BY_DENIAL; i++) {
		_cleanup_free_ struct entry *e = sorted(&s->c[i]);

		if (!e)
			return ctl_print_json(NULL);
		o = json_object();
		for (size_t x = 0; x < s->c[i].n; x++)
			json_object_set_new(o,
				kura_audit_unescape(e[x].key, strlen(e[x].key), k, sizeof(k),
					false),
				json_integer((json_int_t)e[x].count));
		json_object_set_new(j, s->c[i].json_name, o);
	}
	{
		_cleanup_free_ struct entry *e = sorted(&s->c[BY_DENIAL]);

		if (!e)
			return ctl_print_json(NULL);
		o = json_array();
		for (size_t x = 0; x < s->c[BY_DENIAL].n && x < 10; x++) {
			char who[256], sec[300], why[128];

			split_denial(e[x].key, who, sec, why, false);
			json_array_append_new(o,
				json_pack("{s:s, s:s, s:s, s:I}", "who", who, "secret", sec,
					"reason", why, "count", (json_int_t)e[x].count));
		}
		json_object_set_new(j, "top_denials", o);
	}
	return ctl_print_json(j);
}

static int print_stats(struct stats *s, uint64_t records)
{
	char k[1024];

	printf("records: %llu", (unsigned long long)records);
	if (s->first[0])
		printf(" (%s .. %s)", s->first, s->last);
	putchar('\n');
	for (int i = 0; i < BY_DENIAL; i++) {
		_cleanup_free_ struct entry *e = sorted(&s->c[i]);
		int w = 1;

		if (!e)
			return ctl_fail(-ENOMEM, NULL);
		printf("\n%s:\n", s->c[i].title);
		if (!s->c[i].n)
			printf("  (none)\n");
		for (size_t x = 0; x < s->c[i].n; x++) {
			int l = (int)strlen(kura_audit_unescape(e[x].key, strlen(e[x].key), k,
				sizeof(k), true));

			w = l > w ? l : w;
		}
		for (size_t x = 0; x < s->c[i].n; x++)
			printf("  %-*s %10llu\n", w,
				kura_audit_unescape(e[x].key, strlen(e[x].key), k, sizeof(k), true),
				(unsigned long long)e[x].count);
	}
	{
		_cleanup_free_ struct entry *e = sorted(&s->c[BY_DENIAL]);
		int ww = 3, ws = 6;

		if (!e)
			return ctl_fail(-ENOMEM, NULL);
		printf("\ntop denials:\n");
		if (!s->c[BY_DENIAL].n)
			printf("  (none)\n");
		for (size_t x = 0; x < s->c[BY_DENIAL].n && x < 10; x++) {
			char who[256], sec[300], why[128];

			split_denial(e[x].key, who, sec, why, true);
			ww = (int)strlen(who) > ww ? (int)strlen(who) : ww;
			ws = (int)strlen(sec) > ws ? (int)strlen(sec) : ws;
		}
		if (s->c[BY_DENIAL].n)
			printf("  %10s  %-*s  %-*s  %s\n", "COUNT", ww, "WHO", ws, "SECRET",
				"REASON");
		for (size_t x = 0; x < s->c[BY_DENIAL].n && x < 10; x++) {
			char who[256], sec[300], why[128];

			split_denial(e[x].key, who, sec, why, true);
			printf("  %10llu  %-*s  %-*s  %s\n", (unsigned long long)e[x].count, ww,
				who, ws, *sec ? sec : "-", *why ? why : "-");
		}
	}
	return KURA_EXIT_OK;
}

/* --- verify --------------------------------------------------------------------------------- */

/* K(0) from a file ("-": stdin): base64 of 32 bytes on one line, or 32 raw bytes. */
int ctl_audit_key_read(const char *path, struct kura_secbuf **ret)
{
	_cleanup_secbuf_ struct kura_secbuf *raw = NULL, *key = NULL;
	_cleanup_close_ int fd = -1;
	size_t a = 0, b;
	int r;

	fd = strcmp(path, "-") == 0 ? dup(STDIN_FILENO) : open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		fprintf(stderr, "kuractl: cannot read the key %s: %s\n", path, strerror(-r));
		return kura_outcome_exit(r);
	}
	r = kura_secbuf_read_fd(fd, 4096, &raw);
	if (r < 0 && r != -EFBIG) {
		fprintf(stderr, "kuractl: cannot read the key %s: %s\n", path, strerror(-r));
		return kura_outcome_exit(r);
	}
	if (raw) {
		b = raw->len;
		while (a < b && strchr(" \t\r\n", raw->data[a]))
			a++;
		while (b > a && strchr(" \t\r\n", raw->data[b - 1]))
			b--;
		r = kura_audit_key_parse(raw->data + a, b - a, &key);
		if (r == -EINVAL && raw->len == KURA_AUDIT_KEY_BYTES)
			r = kura_secbuf_from(raw->data, raw->len, &key);
		if (r == -ENOMEM)
			return ctl_fail(r, NULL);
	}
	if (!key) {
		fprintf(stderr,
			"kuractl: the key %s is neither base64 of 32 bytes nor 32 raw "
			"bytes\n",
			path);
		return KURA_EXIT_USAGE;
	}
	*ret = TAKE_PTR(key);
	return 0;
}

static bool parse_checkpoint_arg(const char *s, struct kura_audit_checkpoint *ret)
{
	const char *colon = strchr(s, ':');
	char num[24];
	size_t bin_len = 0;
	uint64_t seq;

	if (!colon || (size_t)(colon - s) >= sizeof(num))
		return false;
	memcpy(num, s, (size_t)(colon - s));
	num[colon - s] = 0;
	if (!kura_parse_u64(num, 1, INT64_MAX, &seq) ||
		kura_base64_decode(colon + 1, strlen(colon + 1), ret->mac, sizeof(ret->mac),
			&bin_len) < 0 ||
		bin_len != sizeof(ret->mac))
		return false;
	ret->seq = seq;
	return true;
}

/* The highest checkpoint in a file a collector stored; 0 if found, else an exit code. */
static int read_checkpoints(const char *path, struct kura_audit_checkpoint *best, bool *found)
{
	FILE *f = fopen(path, "re");
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	if (!f) {
		int r = -errno;

		fprintf(stderr, "kuractl: cannot read %s: %s\n", path, strerror(-r));
		return kura_outcome_exit(r);
	}
	while ((n = getline(&line, &cap, f)) > 0) {
		struct kura_audit_checkpoint cp;

		if (memmem(line, (size_t)n, "kura-audit-checkpoint", 21) &&
			kura_audit_checkpoint_parse(line, (size_t)n, &cp) == 0 &&
			(!*found || cp.seq > best->seq)) {
			*best = cp;
			*found = true;
		}
	}
	free(line);
	if (ferror(f)) {
		fclose(f);
		fprintf(stderr, "kuractl: cannot read %s\n", path);
		return KURA_EXIT_SYSTEM;
	}
	fclose(f);
	return 0;
}

/* --dir, else STATE_DIR/audit (after the options: --state-dir may come after the command). */
static const char *log_dir(const struct ctl *c, const char *dir, char buf[static 4096])
{
	if (dir)
		return dir;
	if (kura_audit_dir(c->state_dir, buf, 4096) < 0) {
		ctl_usage("--state-dir is too long");
		return NULL;
	}
	return buf;
}

static int cmd_verify(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "key", required_argument, NULL, 'k' },
		{ "checkpoint", required_argument, NULL, 'c' },
		{ "checkpoints", required_argument, NULL, 'C' },
		{ "dir", required_argument, NULL, 'd' },
		CTL_COMMON_OPTIONS,
	};
	_cleanup_secbuf_ struct kura_secbuf *key = NULL;
	struct kura_audit_checkpoint cp = {}, one;
	struct kura_audit_verdict v;
	const char *key_path = NULL, *cps_path = NULL, *dir = NULL;
	char dir_buf[4096];
	bool have_cp = false;
	char mac[B64_MAC_LEN + 1];
	int opt, r;

	while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (ctl_common_option(c, opt, optarg))
			continue;
		switch (opt) {
		case 'h':
			fputs(verify_usage, stdout);
			return KURA_EXIT_OK;
		case 'k':
			key_path = optarg;
			break;
		case 'c':
			if (!parse_checkpoint_arg(optarg, &one))
				return ctl_usage(
					"--checkpoint wants SEQ:MAC (MAC: base64 of 32 bytes)");
			if (!have_cp || one.seq > cp.seq)
				cp = one;
			have_cp = true;
			break;
		case 'C':
			cps_path = optarg;
			break;
		case 'd':
			dir = optarg;
			break;
		default:
			return ctl_bad_option(opt, argv);
		}
	}
	if (optind < argc)
		dir = argv[optind++];
	if (optind < argc)
		return ctl_usage("audit verify takes one PATH");
	dir = log_dir(c, dir, dir_buf);
	if (!dir)
		return KURA_EXIT_USAGE;
	if (cps_path) {
		bool found = false;

		one = cp;
		r = read_checkpoints(cps_path, &one, &found);
		if (r)
			return r;
		if (!found) {
			fprintf(stderr, "kuractl: no checkpoint in %s\n", cps_path);
			return KURA_EXIT_USAGE;
		}
		if (!have_cp || one.seq > cp.seq)
			cp = one;
		have_cp = true;
	}
	if (key_path) {
		r = ctl_audit_key_read(key_path, &key);
		if (r)
			return r;
	}

	r = kura_audit_verify(dir, key, have_cp ? &cp : NULL, &v);
	if (r < 0) {
		fprintf(stderr, "kuractl: cannot read the audit log %s: %s\n", dir, strerror(-r));
		return kura_outcome_exit(r == -EINVAL ? -EIO : r);
	}
	if (!key)
		fputs("kuractl: no --key: MACs were not checked, only the log's structure\n",
			stderr);

	if (c->json) {
		json_t *j = json_pack("{s:b, s:b, s:s, s:I, s:I, s:I, s:I, s:I}", "intact",
			v.fault == KURA_AUDIT_OK, "macs_checked", v.macs_checked, "fault",
			kura_audit_fault_name(v.fault), "records", (json_int_t)v.good, "files",
			(json_int_t)v.files, "last_seq", (json_int_t)v.last_seq, "last_epoch",
			(json_int_t)v.last_epoch, "start_seq", (json_int_t)v.start_seq);

		if (j && v.fault != KURA_AUDIT_OK) {
			json_object_set_new(j, "file", json_string(v.file));
			json_object_set_new(j, "line", json_integer((json_int_t)v.line));
			json_object_set_new(j, "seq", json_integer((json_int_t)v.seq));
		}
		if (j && have_cp) {
			mac[kura_base64_encode(cp.mac, sizeof(cp.mac), mac)] = '\0';
			json_object_set_new(j, "checkpoint",
				json_pack("{s:I, s:s, s:b}", "seq", (json_int_t)cp.seq, "mac", mac,
					"met", v.checkpoint_met));
		}
		r = ctl_print_json(j);
		return r ? r : v.fault == KURA_AUDIT_OK ? KURA_EXIT_OK : KURA_EXIT_INTEGRITY;
	}
	if (v.fault != KURA_AUDIT_OK) {
		fprintf(stderr, "kuractl: audit log broken at %s line %llu (seq %llu): %s\n",
			v.file, (unsigned long long)v.line, (unsigned long long)v.seq,
			kura_audit_fault_name(v.fault));
		printf("%llu records %s before it, last good seq %llu\n",
			(unsigned long long)v.good,
			v.macs_checked ? "verified" : "intact (MACs not checked)",
			(unsigned long long)v.last_seq);
		return KURA_EXIT_INTEGRITY;
	}
	printf("%s: %llu record%s in %llu file%s, epochs %s-%llu, last seq %llu",
		v.macs_checked ? "verified" : "structure intact, MACs NOT checked (no --key)",
		(unsigned long long)v.good, v.good == 1 ? "" : "s", (unsigned long long)v.files,
		v.files == 1 ? "" : "s", v.start_seq ? "…" : "0", (unsigned long long)v.last_epoch,
		(unsigned long long)v.last_seq);
	if (v.start_seq)
		printf("; from seq %llu on (the records before were archived: verify the archive "
		       "too)",
			(unsigned long long)v.start_seq + 1);
	if (have_cp)
		printf("; checkpoint at seq %llu matches", (unsigned long long)cp.seq);
	putchar('\n');
	return KURA_EXIT_OK;
}

/* --- audit and audit stats ------------------------------------------------------------------ */

static int cmd_list(struct ctl *c, bool stats, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "since", required_argument, NULL, 's' },
		{ "until", required_argument, NULL, 'u' },
		{ "secret", required_argument, NULL, 'n' },
		{ "container", required_argument, NULL, 'c' },
		{ "image", required_argument, NULL, 'i' },
		{ "event", required_argument, NULL, 'e' },
		{ "denied", no_argument, NULL, 'D' },
		{ "follow", no_argument, NULL, 'f' },
		{ "dir", required_argument, NULL, 'd' },
		CTL_COMMON_OPTIONS,
	};
	struct filter f = {};
	struct stats s = {
		.c =
			{
				[BY_RESULT] = {.title = "by result", .json_name = "by_result"},
				[BY_EVENT] = {.title = "by event", .json_name = "by_event"},
				[BY_SECRET] = {.title = "by secret", .json_name = "by_secret"},
				[BY_CONTAINER] = {.title = "by container",
					.json_name = "by_container"},
				[BY_IMAGE] = {.title = "by image", .json_name = "by_image"},
				[BY_DENIAL] = {.title = "top denials", .json_name = "top_denials"},
			},
	};
	struct reader rd = { .f = &f, .userdata = &s };
	const char *dir = NULL;
	char dir_buf[4096];
	bool follow = false;
	int opt, r;

	while ((opt = getopt_long(argc, argv, ":hf", opts, NULL)) != -1) {
		if (ctl_common_option(c, opt, optarg))
			continue;
		r = 0;
		switch (opt) {
		case 'h':
			fputs(stats ? stats_usage : audit_usage, stdout);
			return KURA_EXIT_OK;
		case 's':
			if (!kura_audit_time_parse(optarg, f.since))
				return ctl_usage("bad time '%s' for --since", optarg);
			break;
		case 'u':
			if (!kura_audit_time_parse(optarg, f.until))
				return ctl_usage("bad time '%s' for --until", optarg);
			break;
		case 'n':
			r = set_secret(&f, optarg);
			break;
		case 'c':
			r = set_container(&f, optarg);
			break;
		case 'i':
			r = set_image(&f, optarg);
			break;
		case 'e':
			r = add_events(&f, optarg);
			break;
		case 'D':
			f.denied = true;
			break;
		case 'f':
			if (stats)
				return ctl_usage("audit stats does not follow");
			follow = true;
			break;
		case 'd':
			dir = optarg;
			break;
		default:
			return ctl_bad_option(opt, argv);
		}
		if (r)
			return r;
	}
	if (optind < argc)
		return ctl_usage("unexpected argument '%s'", argv[optind]);
	dir = log_dir(c, dir, dir_buf);
	if (!dir)
		return KURA_EXIT_USAGE;

	if (stats) {
		rd.emit = emit_stats;
	} else if (!c->json && isatty(STDOUT_FILENO)) {
		rd.emit = emit_row;
		rd.tty = true;
		rd.color = !getenv("NO_COLOR"); /* https://no-color.org: any value, even empty */
		table_header();
	} else {
		rd.emit = emit_line;
		rd.escape_lines = isatty(STDOUT_FILENO);
	}
	if (follow) {
		struct sigaction sa = { .sa_handler = on_signal };

		sigemptyset(&sa.sa_mask);
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
	}

	fflush(stdout);
	r = read_log(&rd, dir, follow);
	out_flush();
	free(rd.buf);
	if (r < 0 || s.err < 0) {
		for (int i = 0; i < N_COUNTERS; i++)
			counter_free(&s.c[i]);
		if (r < 0)
			return kura_outcome_exit(r == -ENOENT ? r : -EIO);
		return ctl_fail(s.err, NULL);
	}
	if (out.err) {
		fprintf(stderr, "kuractl: cannot write output: %s\n", strerror(out.err));
		return KURA_EXIT_SYSTEM;
	}
	if (stats) {
		r = c->json ? print_stats_json(&s, rd.records) : print_stats(&s, rd.records);
		for (int i = 0; i < N_COUNTERS; i++)
			counter_free(&s.c[i]);
		return r;
	}
	if (rd.tty && !rd.records && !follow)
		fputs("(no matching records)\n", stderr);
	return KURA_EXIT_OK;
}

static const char init_usage[] =
	"Usage: kuractl audit init [--audit-key-out FILE] [--json]\n"
	"\n"
	"Start a new audit log in STATE_DIR/audit for a state that has none (one made before\n"
	"the audit log existed, or whose log was archived away): kurad and kuractl refuse to\n"
	"work unrecorded. Its first record, audit-init, marks where the new chain begins. Like\n"
	"kuractl init, it hands out the new log's starting key, printed once or written to\n"
	"--audit-key-out FILE (created with mode 0400, never overwritten): keep it off the\n"
	"host; kuractl audit verify --key needs it.\n"
	"Exit status: 0 ok, 1 a log is already there (or the key file exists), 2 usage,\n"
	"3 system error.\n";

static int cmd_init(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "audit-key-out", required_argument, NULL, 'o' },
		CTL_COMMON_OPTIONS,
	};
	_cleanup_secbuf_ struct kura_secbuf *key = NULL, *b64 = NULL;
	struct kura_identity self = kura_identity_self();
	struct kura_audit *a = NULL;
	const char *key_out = NULL;
	char dir[4096], db[4200];
	struct kura_keyfile kf = { .fd = -1, .dirfd = -1 };
	int opt, r;

	while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (ctl_common_option(c, opt, optarg))
			continue;
		switch (opt) {
		case 'h':
			fputs(init_usage, stdout);
			return KURA_EXIT_OK;
		case 'o':
			key_out = optarg;
			break;
		default:
			return ctl_bad_option(opt, argv);
		}
	}
	if (optind < argc)
		return ctl_usage("unexpected argument '%s'", argv[optind]);
	if (kura_audit_dir(c->state_dir, dir, sizeof(dir)) < 0)
		return ctl_usage("state directory path too long");
	snprintf(db, sizeof(db), "%s/" KURA_STORE_FILE_NAME, c->state_dir);
	if (access(db, F_OK) < 0)
		return ctl_fail(-ENOENT,
			&(struct kura_err){ .msg = "no kura state there "
						   "(kuractl init makes one, with its "
						   "audit log)" });
	if (key_out) {
		r = ctl_audit_key_create(key_out, &kf);
		if (r < 0)
			return kura_outcome_exit(r);
	}
	r = kura_audit_create(dir, &key);
	if (r == 0)
		r = kura_audit_open(dir, NULL, &a);
	if (r == 0) {
		r = kura_audit_append_event(a,
			&(struct kura_audit_event){ .event = "audit-init",
				.result = "ok",
				.who = &self,
				.detail = "a new chain begins here" },
			NULL);
	}
	kura_audit_close(a);
	if (r < 0) {
		kura_keyfile_abort(&kf);
		fprintf(stderr, "kuractl: cannot start the audit log %s: %s\n", dir,
			r == -EEXIST        ? "one is already there" :
				r == -EPERM ? "the directory is not root's alone" :
					      strerror(-r));
		return kura_outcome_exit(r);
	}
	r = key_out ? ctl_audit_key_write(&kf, key) : 0;
	if (r < 0 || !key_out) {
		int e = kura_base64_secbuf(key, &b64);

		if (e < 0) {
			fprintf(stderr,
				"kuractl: the audit log %s is made, but its starting key "
				"cannot be shown: %s\n",
				dir, strerror(-e));
			return kura_outcome_exit(e);
		}
	}
	if (r < 0)
		/* The log is made; its key must not be lost with the error. */
		fprintf(stderr, "kuractl: cannot write %s (%s); the audit key is: %s\n", key_out,
			strerror(-r), (const char *)b64->data);
	if (r == 0 && c->json)
		r = ctl_print_json(json_pack("{s:s?, s:s?}", "audit_key",
			key_out ? NULL : (const char *)b64->data, "audit_key_file", key_out));
	else if (r == 0 && key_out)
		printf("audit log started in %s; its starting key is in %s: move it off this host\n",
			dir, key_out);
	else if (r == 0)
		printf("audit log started in %s; its starting key (keep it off this host, it is not "
		       "stored here):\n%s\n",
			dir, (const char *)b64->data);
	return r < 0 ? kura_outcome_exit(r) : r;
}

static int cmd_archive(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "before", required_argument, NULL, 'b' },
		{ "key", required_argument, NULL, 'k' },
		{ "dir", required_argument, NULL, 'd' },
		CTL_COMMON_OPTIONS,
	};
	_cleanup_secbuf_ struct kura_secbuf *key = NULL;
	const char *key_path = NULL, *dir = NULL, *dest = NULL;
	char dir_buf[4096], before[KURA_AUDIT_TIME_LEN + 1] = "", why[256];
	struct kura_audit_archived a;
	int opt, r;

	while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (ctl_common_option(c, opt, optarg))
			continue;
		switch (opt) {
		case 'h':
			fputs(archive_usage, stdout);
			return KURA_EXIT_OK;
		case 'b':
			if (!kura_audit_time_parse(optarg, before))
				return ctl_usage("--before wants RFC 3339 or an age (30m, 2d)");
			break;
		case 'k':
			key_path = optarg;
			break;
		case 'd':
			dir = optarg;
			break;
		default:
			return ctl_bad_option(opt, argv);
		}
	}
	if (optind < argc)
		dest = argv[optind++];
	if (!dest || optind < argc)
		return ctl_usage("audit archive takes one DEST directory");
	if (!before[0])
		return ctl_usage("audit archive needs --before T");
	dir = log_dir(c, dir, dir_buf);
	if (!dir)
		return KURA_EXIT_USAGE;
	if (key_path && (r = ctl_audit_key_read(key_path, &key)) != 0)
		return r;
	r = kura_audit_archive(dir, dest, before, key, &a, why);
	if (r < 0) {
		fprintf(stderr, "kuractl: %s\n", why[0] ? why : strerror(-r));
		return r == -EBADMSG ? KURA_EXIT_INTEGRITY :
			r == -EEXIST ? KURA_EXIT_REFUSED :
			r == -ENOENT ? KURA_EXIT_REFUSED :
				       kura_outcome_exit(r);
	}
	if (c->json)
		return ctl_print_json(json_pack("{s:I, s:I, s:I, s:I, s:I, s:s, s:s, s:b}", "files",
			(json_int_t)a.files, "first_file", (json_int_t)a.first_file, "last_file",
			(json_int_t)a.last_file, "first_seq", (json_int_t)a.first_seq, "last_seq",
			(json_int_t)a.last_seq, "last_time", a.last_time, "dest", dest,
			"macs_checked", key != NULL));
	if (!a.files) {
		printf("nothing to archive: no whole file before %s (the newest is never moved)\n",
			before);
		return KURA_EXIT_OK;
	}
	printf("archived %llu file%s (records %llu-%llu, the last at %s) to %s, %s; the log "
	       "now begins after seq %llu\n",
		(unsigned long long)a.files, a.files == 1 ? "" : "s",
		(unsigned long long)a.first_seq, (unsigned long long)a.last_seq, a.last_time, dest,
		key ? "every MAC verified" : "structure verified (no --key: MACs not checked)",
		(unsigned long long)a.last_seq);
	return KURA_EXIT_OK;
}

int ctl_audit(struct ctl *c, int argc, char **argv)
{
	bool stats = argc > 1 && strcmp(argv[1], "stats") == 0;
	bool verify = argc > 1 && strcmp(argv[1], "verify") == 0;
	bool init = argc > 1 && strcmp(argv[1], "init") == 0;
	bool archive = argc > 1 && strcmp(argv[1], "archive") == 0;

	if (stats || verify || init || archive) {
		argc--;
		argv++;
		optind = 0;
	}
	if (init)
		return cmd_init(c, argc, argv);
	if (archive)
		return cmd_archive(c, argc, argv);
	if (verify)
		return cmd_verify(c, argc, argv);
	return cmd_list(c, stats, argc, argv);
}

/* Unit tests for the audit log on real files: the chain across epochs and rotated files, every
 * tamper case caught at its record, forward security, crash recovery and failing writes; records
 * serialised without jansson byte for byte as jansson did; the file's identity checked within
 * its bound. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "audit-event.h"
#include "audit-internal.h"
#include "audit.h"
#include "clock.h"
#include "json.h"
#include "tap.h"

static char root[] = "/tmp/kura-test-audit-XXXXXX";

static char *sub(const char *name)
{
	static char buf[8][512];
	static int i;

	i = (i + 1) % 8;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", root, name);
	return buf[i];
}

static char *slurp(const char *path, size_t *ret_len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	if (fread(buf, 1, (size_t)n, f) != (size_t)n)
		abort();
	buf[n] = 0;
	fclose(f);
	if (ret_len)
		*ret_len = (size_t)n;
	return buf;
}

static void spit(const char *path, const char *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	if (!f || fwrite(data, 1, len, f) != len)
		abort();
	fclose(f);
}

static void copy_dir(const char *from, const char *to)
{
	DIR *d = opendir(from);
	struct dirent *de;

	mkdir(to, 0700);
	while ((de = readdir(d))) {
		char src[600], dst[600];
		size_t len;
		char *data;

		if (de->d_name[0] == '.')
			continue;
		snprintf(src, sizeof(src), "%s/%s", from, de->d_name);
		snprintf(dst, sizeof(dst), "%s/%s", to, de->d_name);
		data = slurp(src, &len);
		spit(dst, data, len);
		chmod(dst, 0600);
		free(data);
	}
	closedir(d);
}

static json_t *event(uint64_t i)
{
	return json_pack("{s:s, s:s, s:{s:I, s:i, s:s, s:s}, s:s, s:i, s:s}", "event", "fetch",
		"result", i % 7 ? "allowed" : "denied", "identity", "pid", (json_int_t)(1000 + i),
		"uid", 1000, "container", "3f2a9c", "image", "sha256:abcd", "secret", "db/password",
		"version", 3, "request_id", "req-0001");
}

static int append_n(struct kura_audit *a, int n, uint64_t *last)
{
	for (int i = 0; i < n; i++) {
		json_t *e = event((uint64_t)i);
		int r = kura_audit_append(a, e, last);

		json_decref(e);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Where the line of record seq is: file path and 0-based line index. */
static bool find_seq(const char *dir, uint64_t seq, char path[600], int *ret_line)
{
	char needle[64];

	snprintf(needle, sizeof(needle), "\"seq\":%llu,\"time\"", (unsigned long long)seq);
	for (int n = 1; n < 1000; n++) {
		char *data, *p;
		int line = 0;

		snprintf(path, 600, "%s/audit-%06d.jsonl", dir, n);
		data = slurp(path, NULL);
		if (!data)
			return false;
		for (p = data; *p; line++) {
			char *nl = strchr(p, '\n');

			if (nl)
				*nl = 0;
			if (strstr(p, needle)) {
				*ret_line = line;
				free(data);
				return true;
			}
			if (!nl)
				break;
			p = nl + 1;
		}
		free(data);
	}
	return false;
}

/* The lines of a file as an array of strings (without '\n'); *n of them. */
static char **lines_of(const char *path, int *n)
{
	char *data = slurp(path, NULL), *p = data, **v = calloc(100000, sizeof(char *));

	*n = 0;
	while (*p) {
		char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);

		v[*n] = strndup(p, len);
		(*n)++;
		p += len + (nl ? 1 : 0);
	}
	free(data);
	return v;
}

static void write_lines(const char *path, char **v, int n)
{
	FILE *f = fopen(path, "wb");

	for (int i = 0; i < n; i++)
		fprintf(f, "%s\n", v[i]);
	fclose(f);
}

static void free_lines(char **v, int n)
{
	for (int i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* A record line with its MAC recomputed: keyed with key, or a plain hash when key is NULL. */
static char *remac(const char *line, const char *prev_line, const uint8_t *key)
{
	static const uint8_t label[] = "kura/audit/1";
	uint8_t prev[32] = {}, mac[32];
	char b64[45], *out;
	const char *m;
	size_t body_len, bin_len;
	crypto_generichash_state h;
	char *body;

	if (prev_line) {
		m = strstr(prev_line, ",\"mac\":\"");
		if (sodium_base642bin(prev, 32, m + 8, 44, NULL, &bin_len, NULL,
			    sodium_base64_VARIANT_ORIGINAL) != 0)
			abort();
	}
	m = strstr(line, ",\"mac\":\"");
	body_len = (size_t)(m - line) + 1;
	body = malloc(body_len);
	memcpy(body, line, body_len - 1);
	body[body_len - 1] = '}';
	crypto_generichash_init(&h, key, key ? 32 : 0, 32);
	crypto_generichash_update(&h, label, sizeof(label));
	crypto_generichash_update(&h, prev, 32);
	crypto_generichash_update(&h, (const uint8_t *)body, body_len);
	crypto_generichash_final(&h, mac, 32);
	sodium_bin2base64(b64, sizeof(b64), mac, 32, sodium_base64_VARIANT_ORIGINAL);
	out = malloc(body_len + 64);
	snprintf(out, body_len + 64, "%.*s,\"mac\":\"%s\"}", (int)(body_len - 1), body, b64);
	free(body);
	return out;
}

static void replace_in(char **s, const char *from, const char *to)
{
	char *p = strstr(*s, from), *out;
	size_t n = strlen(*s) - strlen(from) + strlen(to) + 1;

	if (!p)
		abort();
	out = malloc(n);
	snprintf(out, n, "%.*s%s%s", (int)(p - *s), *s, to, p + strlen(from));
	free(*s);
	*s = out;
}

static struct kura_audit_verdict verify(const char *dir, const struct kura_secbuf *k0)
{
	struct kura_audit_verdict v;

	if (kura_audit_verify(dir, k0, NULL, &v) < 0)
		abort();
	return v;
}

static void expect(const char *what, const struct kura_audit_verdict *v,
	enum kura_audit_fault fault, uint64_t seq, const char *file, int line0)
{
	char fname[64];

	snprintf(fname, sizeof(fname), "%s", strrchr(file, '/') + 1);
	if (!tap_ok(v->fault == fault && v->seq == seq && strcmp(v->file, fname) == 0 &&
			    v->line == (uint64_t)line0 + 1,
		    "%s: %s at seq %llu (%s:%d)", what, kura_audit_fault_name(fault),
		    (unsigned long long)seq, fname, line0 + 1))
		tap_diag("got %s at seq %llu (%s:%llu)", kura_audit_fault_name(v->fault),
			(unsigned long long)v->seq, v->file, (unsigned long long)v->line);
}

static char *b64(const uint8_t *p, size_t n)
{
	char *s = malloc(sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL));

	sodium_bin2base64(s, sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL), p, n,
		sodium_base64_VARIANT_ORIGINAL);
	return s;
}

static bool dir_contains(const char *dir, const char *needle)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	bool found = false;

	while ((de = readdir(d))) {
		char path[600];
		char *data;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		data = slurp(path, NULL);
		if (data && strstr(data, needle))
			found = true;
		free(data);
	}
	closedir(d);
	return found;
}

static int count_files(const char *dir)
{
	char path[600];
	int n = 0;

	for (;;) {
		snprintf(path, sizeof(path), "%s/audit-%06d.jsonl", dir, n + 1);
		if (access(path, F_OK) < 0)
			return n;
		n++;
	}
}

static struct kura_audit_verdict verify_cp(const char *dir, const struct kura_secbuf *k0,
	const struct kura_audit_checkpoint *cp)
{
	struct kura_audit_verdict v;

	if (kura_audit_verify(dir, k0, cp, &v) < 0)
		abort();
	return v;
}

/* The checkpoint a sink would have sent right after record seq was written. */
static struct kura_audit_checkpoint checkpoint_at(const char *dir, uint64_t seq)
{
	struct kura_audit_checkpoint cp = { .seq = seq };
	char path[600], **ln;
	const char *m;
	size_t bin_len;
	int n, line;

	if (!find_seq(dir, seq, path, &line))
		abort();
	ln = lines_of(path, &n);
	m = strstr(ln[line], ",\"mac\":\"");
	if (sodium_base642bin(cp.mac, 32, m + 8, 44, NULL, &bin_len, NULL,
		    sodium_base64_VARIANT_ORIGINAL) != 0)
		abort();
	free_lines(ln, n);
	return cp;
}

/* The line of record seq (malloc'd), and where it is. */
static char *line_of(const char *dir, uint64_t seq, char path[600], int *ret_line)
{
	char **ln, *l;
	int n;

	if (!find_seq(dir, seq, path, ret_line))
		abort();
	ln = lines_of(path, &n);
	l = strdup(ln[*ret_line]);
	free_lines(ln, n);
	return l;
}

static void set_line(const char *path, int line, const char *text)
{
	char **ln;
	int n;

	ln = lines_of(path, &n);
	free(ln[line]);
	ln[line] = strdup(text);
	write_lines(path, ln, n);
	free_lines(ln, n);
}

static void *thread_append(void *arg)
{
	return (void *)(intptr_t)append_n(arg, 250, NULL);
}

/* --- the serialiser against jansson ---------------------------------------------------------- */

/* e's body both ways (kura_audit_event_body, and jansson as append did before it); whether they
 * are the same bytes (and within the bound). Shows the first difference once. */
static bool same_both_ways(const struct kura_audit_event *e, uint64_t seq, const char *when,
	uint64_t epoch)
{
	static bool shown;
	json_t *j = kura_audit_event_fields(e);
	size_t bound = kura_audit_event_bound(e), len, n;
	char *direct = malloc(bound);
	uint8_t *ref = NULL;
	bool same;

	json_object_set_new(j, "seq", json_integer((json_int_t)seq));
	json_object_set_new(j, "time", json_string(when));
	json_object_set_new(j, "epoch", json_integer((json_int_t)epoch));
	if (kura_json_dump_ascii(j, &ref, &len) < 0)
		abort();
	n = kura_audit_event_body(e, seq, when, epoch, direct);
	same = n <= bound && n == len && memcmp(direct, ref, len) == 0;
	if (!same && !shown) {
		shown = true;
		tap_diag("jansson: %.*s", (int)len, (const char *)ref);
		tap_diag("direct:  %.*s", (int)n, direct);
	}
	json_decref(j);
	free(ref);
	free(direct);
	return same;
}

static uint64_t rng = 0x6b757261;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* Pieces hostile strings are made of: every escape jansson has, every kind of code point, and
 * every way UTF-8 goes wrong (which jansson refuses, so the member is left out). */
static const char *const pieces[] = { "\"", "\\", "/", "\b", "\f", "\n", "\r", "\t", "\x01", "\x1f",
	"\x7f", "a", "db/password", " ", "\xc2\x80", "\xc2\x9f", "\xc3\xa9", "\xd8\x9c",
	"\xe2\x80\x8e", "\xe2\x80\xa8", "\xe2\x80\xae", "\xe2\x82\xac", "\xef\xbb\xbf",
	"\xef\xbf\xbf", "\xf0\x90\x80\x80", "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf", "\x80", "\xbf",
	"\xc0\xaf", "\xc1\xbf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xed\xbf\xbf", "\xf0\x80\x80\xaf",
	"\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xff", "\xe2\x82", "\xf0\x9f\x98", "\\u0000",
	"\\\"", "}", "{", ",\"mac\":\"", "\"seq\":" };

static char *hostile(size_t max_pieces)
{
	size_t n = next() % (max_pieces + 1), len = 0, longest = 0;
	char *s;

	for (size_t i = 0; i < ELEMENTSOF(pieces); i++)
		if (strlen(pieces[i]) > longest)
			longest = strlen(pieces[i]);
	s = malloc(n * longest + 1);
	if (!s)
		abort();
	for (size_t i = 0; i < n; i++) {
		const char *p = pieces[next() % ELEMENTSOF(pieces)];

		memcpy(s + len, p, strlen(p));
		len += strlen(p);
	}
	s[len] = 0;
	return s;
}

static void differential(void)
{
	static const char when[] = "2026-12-02T13:24:59.049788Z";
	struct kura_identity host = kura_identity_self();
	bool ok = true;
	size_t cases = 0;
	char one[3], *longs;

	/* Every string of one and of two bytes, as the one member that varies. */
	for (unsigned b = 1; b < 65536 && ok; b++) {
		one[0] = (char)(b >> 8 ? b >> 8 : b);
		one[1] = (char)(b >> 8 ? b & 0xff : 0);
		one[2] = 0;
		if (b >> 8 && !one[1])
			continue;
		ok = same_both_ways(&(struct kura_audit_event){ .event = "fetch",
					    .result = "ok",
					    .who = &host,
					    .detail = one },
			b, when, 1);
		cases++;
	}
	tap_ok(ok, "every string of one or two bytes: the same bytes as jansson (%zu cases)",
		cases);

	/* Random events: every member there or not, hostile strings in each, numbers at their
	 * limits, a container identity or the host's or none. */
	ok = true;
	for (int i = 0; i < 20000 && ok; i++) {
		char *s[13];
		struct kura_identity id = { .host = next() % 2,
			.pid = (pid_t)next(),
			.uid = (uid_t)next(),
			.gid = (gid_t)next() };
		struct kura_audit_event e;
		const uint64_t limit[] = { UINT64_MAX, (uint64_t)INT64_MAX, (uint64_t)INT64_MIN };
		uint64_t v[4];

		for (size_t k = 0; k < ELEMENTSOF(s); k++)
			s[k] = next() % 4 ? hostile(next() % 3 ? 6 : 40) : NULL;
		for (size_t k = 0; k < ELEMENTSOF(v); k++)
			v[k] = next() % 3 ? next() % 1000 : next() % 2 ? next() : limit[next() % 3];
		id.runtime = s[9];
		id.container_id = s[10];
		id.name = s[11];
		id.image_id = s[12];
		e = (struct kura_audit_event){ .event = s[0],
			.result = s[1],
			.reason = s[2],
			.who = next() % 4 ? &id : NULL,
			.secret = s[3],
			.version = v[0],
			.fingerprint = s[4],
			.request_id = s[5],
			.grant_id = s[6],
			.detail = s[7],
			.sink = s[8],
			.kek = (int64_t)v[1],
			.count = (int64_t)v[2],
			.has_count = next() % 2 };
		ok = same_both_ways(&e, v[3] % 2 ? v[3] : 1 + v[3] % 100, when, next() % 100);
		for (size_t k = 0; k < ELEMENTSOF(s); k++)
			free(s[k]);
	}
	tap_ok(ok, "20000 random events with hostile strings: the same bytes as jansson");

	/* Very long: a megabyte of escapes in one member, past the stack buffer append uses. */
	longs = malloc(1 << 20);
	for (size_t i = 0; i + 4 < 1 << 20; i += 4)
		memcpy(longs + i, i % 8 ? "\xf0\x9f\x98\x80" : "\"\\\x01\x7f", 4);
	longs[(1 << 20) - 4] = 0;
	tap_ok(same_both_ways(&(struct kura_audit_event){ .event = "fetch", .secret = longs }, 9,
		       when, 0),
		"a megabyte of escapes: the same bytes as jansson");
	free(longs);
}

/*
 * The other ways the file stops being the one at the path, each refused from the very next record
 * (inotify; see IDENTITY_CHECK_MS in audit.c), and a file cut short in place, which inotify does
 * not report, within the stated bound of a second. A log of its own: these leave it broken.
 */
static void identity_bound(void)
{
	struct kura_audit_opts o = KURA_AUDIT_OPTS_DEFAULT;
	struct kura_identity self = kura_identity_self();
	struct kura_audit_event ev = { .event = "fetch", .result = "ok", .who = &self };
	struct kura_secbuf *k0 = NULL;
	struct kura_audit *a = NULL;
	char *dir = strdup(sub("ident")), *keep, path[600], moved[700];
	uint64_t seq = 0, before;
	size_t len;
	int line;

	o.fsync = false;
	if (kura_audit_create(dir, &k0) < 0 || kura_audit_open(dir, &o, &a) < 0)
		abort();
	tap_is(kura_audit_append_event(a, &ev, &seq), 0, "identity: append an event");
	find_seq(dir, seq, path, &line);
	snprintf(moved, sizeof(moved), "%s.moved", path);

	rename(path, moved);
	tap_is(kura_audit_append_event(a, &ev, NULL), -ESTALE,
		"renamed away, nothing in its place: -ESTALE at once");
	tap_is(kura_audit_append_event(a, &ev, NULL), -ESTALE, "and on the next record too");
	keep = slurp(moved, &len);
	spit(path, keep, len);
	tap_is(kura_audit_append_event(a, &ev, NULL), -ESTALE, "a copy in its place: -ESTALE");
	if (unlink(path) < 0 || link(moved, path) < 0 || unlink(moved) < 0)
		abort();
	before = seq;
	tap_is(kura_audit_append_event(a, &ev, &seq), 0, "linked back under its name: it appends");
	tap_is((long long)seq, (long long)before + 1, "with nothing skipped");
	free(keep);

	keep = slurp(path, &len);
	spit(sub("ident-other"), keep, len);
	rename(sub("ident-other"), path);
	tap_is(kura_audit_append_event(a, &ev, NULL), -ESTALE,
		"replaced by a rename over its name: -ESTALE at once");
	kura_audit_close(a);
	a = NULL;
	tap_is(kura_audit_open(dir, &o, &a), 0, "reopened on the copy, which holds every record");
	tap_is(kura_audit_append_event(a, &ev, &seq), 0, "and appends");

	free(keep);

	/* Unlinked, while another name keeps the file (so it can come back). */
	if (link(path, sub("ident-extra")) < 0 || unlink(path) < 0)
		abort();
	tap_is(kura_audit_append_event(a, &ev, NULL), -ESTALE, "unlinked: -ESTALE at once");
	if (link(sub("ident-extra"), path) < 0 || unlink(sub("ident-extra")) < 0)
		abort();
	tap_is(kura_audit_append_event(a, &ev, NULL), 0, "linked back: it appends");

	/* Written into by someone else: refused within the second, and what they wrote is not
	 * cut (the check may come after records of ours). */
	{
		struct stat before_junk, after_junk;
		int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);

		if (fd < 0 || fstat(fd, &before_junk) < 0 || write(fd, "junk\n", 5) != 5)
			abort();
		close(fd);
		kura_sleep_ms(1100);
		tap_is(kura_audit_append_event(a, &ev, NULL), -ESTALE,
			"written into by someone else: -ESTALE within a second");
		tap_ok(stat(path, &after_junk) == 0 &&
				after_junk.st_size == before_junk.st_size + 5,
			"and what they wrote is left for the auditor");
		if (truncate(path, before_junk.st_size) < 0)
			abort();
		tap_is(kura_audit_append_event(a, &ev, NULL), 0, "once it is gone, it appends");
	}

	/* Cut short in place: the same inode at the path, so only the full check sees it. */
	if (truncate(path, 10) < 0)
		abort();
	kura_sleep_ms(1100);
	tap_is(kura_audit_append_event(a, &ev, NULL), -ESTALE,
		"cut short in place: -ESTALE within a second");
	tap_is(kura_audit_append_event(a, &ev, NULL), -ESTALE, "and on the next record too");
	kura_audit_close(a);
	kura_secbuf_free(k0);
	free(dir);
}

/* Request ids come from a pool of random bytes: 1000 in a row are distinct hex, and a forked
 * child, whose parent's pool still holds unused ids, hands out none of its parent's. */
static void request_ids(void)
{
	char ids[1000][KURA_REQUEST_ID_LEN + 1], child_id[KURA_REQUEST_ID_LEN + 1];
	bool distinct = true, hex = true;
	int sv[2], status = 0;
	pid_t pid;

	for (int i = 0; i < 1000; i++) {
		kura_request_id(ids[i]);
		hex = hex && strlen(ids[i]) == KURA_REQUEST_ID_LEN &&
			strspn(ids[i], "0123456789abcdef") == KURA_REQUEST_ID_LEN;
		for (int j = 0; j < i && distinct; j++)
			distinct = strcmp(ids[i], ids[j]) != 0;
	}
	tap_ok(hex, "request ids: %u hex digits", KURA_REQUEST_ID_LEN);
	tap_ok(distinct, "request ids: 1000 in a row, all distinct");
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	pid = fork();
	if (pid == 0) {
		char id[KURA_REQUEST_ID_LEN + 1];

		kura_request_id(id);
		_exit(write(sv[1], id, sizeof(id)) == (ssize_t)sizeof(id) ? 0 : 1);
	}
	kura_request_id(ids[0]);
	tap_ok(pid > 0 && read(sv[0], child_id, sizeof(child_id)) == (ssize_t)sizeof(child_id) &&
			waitpid(pid, &status, 0) == pid && status == 0,
		"request ids: a forked child makes one");
	tap_ok(strcmp(child_id, ids[0]) != 0, "request ids: not the one its parent makes next");
	close(sv[0]);
	close(sv[1]);
}

int main(void)
{
	struct kura_audit_opts o = KURA_AUDIT_OPTS_DEFAULT;
	_cleanup_secbuf_ struct kura_secbuf *k0 = NULL;
	struct kura_secbuf *k = NULL;
	struct kura_audit *a = NULL;
	struct kura_audit_verdict v;
	struct stat st;
	uint64_t seq = 0, total;
	char *log, *t, path[600], path2[700], *state;
	struct timespec t0, t1;
	char **ln;
	int n, line, line2;

	if (kura_keys_init() < 0 || !mkdtemp(root))
		return 3;
	kura_json_init();
	log = strdup(sub("log"));

	differential();
	identity_bound();
	request_ids();

	/* 2500 records over three epochs and several files. */
	tap_is(kura_audit_create(log, &k0), 0, "create");
	tap_ok(k0 && k0->len == 32, "the initial key is 32 bytes");
	tap_ok(stat(log, &st) == 0 && (st.st_mode & 07777) == 0700, "the directory is 0700");
	tap_ok(stat(sub("log/state"), &st) == 0 && (st.st_mode & 07777) == 0600,
		"the state file is 0600");
	{
		struct kura_secbuf *again = NULL;

		tap_is(kura_audit_create(log, &again), -EEXIST, "create refuses an existing log");
		tap_ok(again == NULL, "and hands back no key");
		mkdir(sub("open"), 0755);
		chmod(sub("open"), 0755);
		tap_is(kura_audit_create(sub("open"), &again), -EPERM,
			"create refuses a directory open to others");
		tap_ok(again == NULL && access(sub("open/state"), F_OK) < 0, "and writes nothing");
	}
	o.max_file_bytes = 256 * 1024;
	o.records_per_epoch = 1000;
	tap_is(kura_audit_open(log, &o, &a), 0, "open");
	{
		struct kura_audit *second = NULL;

		tap_is(kura_audit_open(log, &o, &second), -EBUSY, "a second writer is refused");
		tap_ok(second == NULL, "and gets no handle");
	}
	{
		json_t *bad = json_pack("{s:s, s:i}", "event", "fetch", "seq", 7);

		tap_is(kura_audit_append(a, bad, NULL), -EINVAL, "a caller cannot set seq");
		json_decref(bad);
		bad = json_string("x");
		tap_is(kura_audit_append(a, bad, NULL), -EINVAL, "fields must be an object");
		json_decref(bad);
	}
	tap_is(append_n(a, 2500, &seq), 0, "2500 appends");
	total = seq;
	tap_is((long long)total, 2502, "seq counts the two key-evolve records as well");
	kura_audit_close(a);
	a = NULL;
	tap_ok(count_files(log) > 1, "the log rotated (%d files)", count_files(log));

	clock_gettime(CLOCK_MONOTONIC, &t0);
	v = verify(log, k0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	tap_diag("verify of %llu records: %.1f ms", (unsigned long long)total,
		(double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
	tap_ok(v.fault == KURA_AUDIT_OK, "verify with K(0): ok (%s)",
		kura_audit_fault_name(v.fault));
	tap_is((long long)v.good, (long long)total, "every record verified");
	tap_is((long long)v.last_seq, (long long)total, "last seq");
	tap_is((long long)v.last_epoch, 2, "last epoch");
	{
		struct kura_secbuf *wrong = NULL;

		kura_secbuf_random(32, &wrong);
		v = verify(log, wrong);
		tap_ok(v.fault == KURA_AUDIT_EDITED && v.seq == 1 && v.good == 0,
			"a wrong initial key fails at record 1");
		kura_secbuf_free(wrong);
	}

	/* What the host holds after epoch 2: K(2) only. */
	{
		_cleanup_json_ json_t *j = NULL;
		uint8_t *cur = NULL, k1[32], k2[32];
		size_t len;
		char *s0, *s1;

		state = slurp(sub("log/state"), &len);
		tap_ok(kura_json_load((uint8_t *)state, len, &j) == 0 &&
				kura_json_get_b64(j, "key", &cur, &len) == 0 && len == 32,
			"the state holds a key");
		uint8_t kz[32];

		/* The starting key S handed out; K(0) = evolve(S) is the first one stored. */
		crypto_generichash(kz, 32, (const uint8_t *)"kura/audit/evolve/1", 19, k0->data,
			32);
		crypto_generichash(k1, 32, (const uint8_t *)"kura/audit/evolve/1", 19, kz, 32);
		crypto_generichash(k2, 32, (const uint8_t *)"kura/audit/evolve/1", 19, k1, 32);
		tap_ok(cur && memcmp(cur, k2, 32) == 0, "it is K(2) = evolve(evolve(evolve(S)))");
		s0 = b64(k0->data, 32);
		s1 = b64(k1, 32);
		tap_ok(!dir_contains(log, s0), "K(0) is nowhere in the directory");
		tap_ok(!dir_contains(log, s1), "nor K(1)");
		free(s0);
		free(s1);
		kura_secbuf_from(cur, 32, &k);
		free(cur);
		free(state);
	}
	tap_ok(stat(sub("log/audit-000001.jsonl"), &st) == 0 && (st.st_mode & 07777) == 0600,
		"log files are 0600");

	/* Tamper cases, each on its own copy. */
	copy_dir(log, sub("edit"));
	tap_ok(find_seq(sub("edit"), 1234, path, &line), "record 1234 is there");
	ln = lines_of(path, &n);
	replace_in(&ln[line], "db/password", "db/passwore");
	write_lines(path, ln, n);
	free_lines(ln, n);
	v = verify(sub("edit"), k0);
	expect("one byte of record 1234 edited", &v, KURA_AUDIT_EDITED, 1234, path, line);
	tap_is((long long)v.good, 1233, "1233 good records before it");

	copy_dir(log, sub("delete"));
	find_seq(sub("delete"), 1500, path, &line);
	ln = lines_of(path, &n);
	free(ln[line]);
	memmove(&ln[line], &ln[line + 1], (size_t)(n - line - 1) * sizeof(char *));
	write_lines(path, ln, n - 1);
	free_lines(ln, n - 1);
	v = verify(sub("delete"), k0);
	expect("record 1500 deleted", &v, KURA_AUDIT_DELETED, 1500, path, line);

	copy_dir(log, sub("swap"));
	find_seq(sub("swap"), 700, path, &line);
	find_seq(sub("swap"), 701, path2, &line2);
	if (strcmp(path, path2) != 0 || line2 != line + 1) {
		find_seq(sub("swap"), 702, path, &line);
		find_seq(sub("swap"), 703, path2, &line2);
	}
	ln = lines_of(path, &n);
	t = ln[line];
	ln[line] = ln[line + 1];
	ln[line + 1] = t;
	write_lines(path, ln, n);
	free_lines(ln, n);
	v = verify(sub("swap"), k0);
	expect("two records swapped", &v, KURA_AUDIT_REORDERED, v.seq == 700 ? 700 : 702, path,
		line);

	copy_dir(log, sub("trunc"));
	find_seq(sub("trunc"), total, path, &line);
	{
		size_t len;
		char *data = slurp(path, &len);

		spit(path, data, len - 40);
		free(data);
	}
	v = verify(sub("trunc"), k0);
	expect("the last line cut mid-way", &v, KURA_AUDIT_TRUNCATED, total, path, line);
	tap_is((long long)v.good, (long long)total - 1, "all records before it verify");

	copy_dir(log, sub("insert"));
	find_seq(sub("insert"), 1801, path, &line);
	ln = lines_of(path, &n);
	{
		char *forged = strdup(ln[line]);

		replace_in(&forged, "db/password", "db/other");
		t = remac(forged, ln[line - 1], NULL);
		free(forged);
		ln = realloc(ln, (size_t)(n + 1) * sizeof(char *));
		memmove(&ln[line + 1], &ln[line], (size_t)(n - line) * sizeof(char *));
		ln[line] = t;
		write_lines(path, ln, n + 1);
		free_lines(ln, n + 1);
	}
	v = verify(sub("insert"), k0);
	expect("a forged line with a plain hash inserted", &v, KURA_AUDIT_INSERTED, 1801, path,
		line);

	/* The intruder holds K(2): an edited epoch-0 record re-MAC'd with it, chained correctly
	 * from the real previous record, still fails; so does relabelling it as epoch 2. */
	copy_dir(log, sub("forge"));
	find_seq(sub("forge"), 5, path, &line);
	ln = lines_of(path, &n);
	replace_in(&ln[line], "db/password", "db/nothing!");
	t = remac(ln[line], ln[line - 1], k->data);
	free(ln[line]);
	ln[line] = t;
	write_lines(path, ln, n);
	v = verify(sub("forge"), k0);
	expect("epoch-0 record forged with the current key", &v, KURA_AUDIT_EDITED, 5, path, line);
	replace_in(&ln[line], "\"epoch\":0", "\"epoch\":2");
	t = remac(ln[line], ln[line - 1], k->data);
	free(ln[line]);
	ln[line] = t;
	write_lines(path, ln, n);
	free_lines(ln, n);
	v = verify(sub("forge"), k0);
	expect("and relabelled as epoch 2", &v, KURA_AUDIT_EDITED, 5, path, line);

	copy_dir(log, sub("dup"));
	find_seq(sub("dup"), 42, path, &line);
	ln = lines_of(path, &n);
	ln = realloc(ln, (size_t)(n + 1) * sizeof(char *));
	memmove(&ln[line + 1], &ln[line], (size_t)(n - line) * sizeof(char *));
	ln[line] = strdup(ln[line + 1]);
	write_lines(path, ln, n + 1);
	free_lines(ln, n + 1);
	v = verify(sub("dup"), k0);
	expect("a record repeated", &v, KURA_AUDIT_DUPLICATED, 43, path, line + 1);

	copy_dir(log, sub("junk"));
	find_seq(sub("junk"), 99, path, &line);
	ln = lines_of(path, &n);
	free(ln[line]);
	ln[line] = strdup("{\"seq\":99,\"event\":\"fetch\"}");
	write_lines(path, ln, n);
	free_lines(ln, n);
	v = verify(sub("junk"), k0);
	expect("a line without a mac", &v, KURA_AUDIT_MALFORMED, 99, path, line);

	/* Checkpoints: what only a copy kept off the host can catch. */
	{
		struct kura_audit_checkpoint cp = checkpoint_at(log, total), got;
		char syslog[300], b[45], *prev, *cur;
		int cut_line;

		v = verify_cp(log, k0, &cp);
		tap_ok(v.fault == KURA_AUDIT_OK && v.checkpoint_met,
			"intact log, checkpoint at its end: ok");
		v = verify_cp(log, NULL, &cp);
		tap_ok(v.fault == KURA_AUDIT_OK && !v.macs_checked && v.checkpoint_met,
			"without a key: ok, MACs not checked, the checkpoint's MAC is");

		/* The tail cut at a line boundary. */
		copy_dir(log, sub("cut"));
		find_seq(sub("cut"), total, path, &line);
		ln = lines_of(path, &n);
		tap_ok(line >= 3, "the last file has room to cut 3 lines");
		cut_line = n - 3;
		write_lines(path, ln, cut_line);
		free_lines(ln, n);
		v = verify(sub("cut"), k0);
		tap_ok(v.fault == KURA_AUDIT_OK && v.last_seq == total - 3,
			"3 lines cut at a line boundary: verifies without a checkpoint (%s)",
			kura_audit_fault_name(v.fault));
		v = verify_cp(sub("cut"), k0, &cp);
		expect("the same with a checkpoint", &v, KURA_AUDIT_TRUNCATED, total - 2, path,
			cut_line);
		v = verify_cp(sub("cut"), NULL, &cp);
		expect("and with a checkpoint but no key", &v, KURA_AUDIT_TRUNCATED, total - 2,
			path, cut_line);

		/* Whoever holds K(2) rewrites epoch 2 from record total-40 on, re-MACing each
		 * record onto the forged chain: the chain verifies, the checkpoint does not. */
		copy_dir(log, sub("remac"));
		prev = line_of(sub("remac"), total - 41, path, &line);
		for (uint64_t sq = total - 40; sq <= total; sq++) {
			cur = line_of(sub("remac"), sq, path, &line);
			if (sq == total - 40)
				replace_in(&cur, "db/password", "db/passwore");
			t = remac(cur, prev, k->data);
			set_line(path, line, t);
			free(cur);
			free(prev);
			prev = t;
		}
		free(prev);
		v = verify(sub("remac"), k0);
		tap_ok(v.fault == KURA_AUDIT_OK && v.good == total,
			"epoch 2 rewritten with K(2): the chain alone verifies (%s)",
			kura_audit_fault_name(v.fault));
		find_seq(sub("remac"), total, path, &line);
		v = verify_cp(sub("remac"), k0, &cp);
		expect("but not against the checkpoint", &v, KURA_AUDIT_CHECKPOINT, total, path,
			line);
		tap_ok(strcmp(kura_audit_fault_name(v.fault), "differs from checkpoint") == 0,
			"named 'differs from checkpoint'");
		{
			struct kura_audit_checkpoint early = checkpoint_at(log, total - 45);

			v = verify_cp(sub("remac"), k0, &early);
			tap_ok(v.fault == KURA_AUDIT_OK,
				"a checkpoint from before the rewrite does not see it (%s)",
				kura_audit_fault_name(v.fault));
		}

		/* The text form, as a collector or syslog stored it. */
		sodium_bin2base64(b, sizeof(b), cp.mac, 32, sodium_base64_VARIANT_ORIGINAL);
		snprintf(syslog, sizeof(syslog),
			"<134>1 2026-11-25T19:40:01Z host1 kurad 42 - - {\"type\":\"kura-audit-checkpoint\","
			"\"seq\":%llu,\"mac\":\"%s\",\"host\":\"host1\",\"time\":\"x\"}\n",
			(unsigned long long)total, b);
		tap_ok(kura_audit_checkpoint_parse(syslog, strlen(syslog), &got) == 0 &&
				got.seq == total && memcmp(got.mac, cp.mac, 32) == 0,
			"a checkpoint after a syslog header parses");
		tap_is(kura_audit_checkpoint_parse("{\"type\":\"other\",\"seq\":1}", 24, &got),
			-EPROTO, "another object is not a checkpoint");
		snprintf(syslog, sizeof(syslog),
			"{\"type\":\"kura-audit-checkpoint\",\"seq\":3,\"mac\":\"AAAA\"}");
		tap_is(kura_audit_checkpoint_parse(syslog, strlen(syslog), &got), -EPROTO,
			"a checkpoint with a short MAC is refused");
	}

	/* Without a key only the structure is checked: an edit passes, a deletion does not. */
	v = verify_cp(sub("edit"), NULL, NULL);
	tap_ok(v.fault == KURA_AUDIT_OK && !v.macs_checked,
		"no key: an edited record is not seen (%s)", kura_audit_fault_name(v.fault));
	find_seq(log, 1500, path, &line);
	snprintf(path2, sizeof(path2), "%s/%s", sub("delete"), strrchr(path, '/') + 1);
	v = verify_cp(sub("delete"), NULL, NULL);
	expect("no key: a deleted record is", &v, KURA_AUDIT_DELETED, 1500, path2, line);

	/* Reopen continues the chain. */
	tap_is(kura_audit_open(log, &o, &a), 0, "reopen");
	tap_is(append_n(a, 10, &seq), 0, "10 more appends");
	tap_is((long long)seq, (long long)total + 10, "seq continues");
	kura_audit_close(a);
	a = NULL;
	v = verify(log, k0);
	tap_ok(v.fault == KURA_AUDIT_OK && v.good == total + 10, "verify after reopen: ok");
	total += 10;

	/* A crash after records (and an epoch change) were written but before the state was
	 * saved: the old state file comes back, and open adopts the tail. Then a torn line. */
	{
		size_t len;
		char *old = slurp(sub("log/state"), &len);

		tap_is(kura_audit_open(log, &o, &a), 0, "open");
		tap_is(append_n(a, 600, &seq), 0, "600 appends across an epoch change");
		kura_audit_close(a);
		a = NULL;
		spit(sub("log/state"), old, len);
		free(old);
		total = seq;
	}
	find_seq(log, total, path, &line);
	{
		FILE *f = fopen(path, "ab");

		fputs("{\"epoch\":3,\"event\":\"fet", f);
		fclose(f);
	}
	tap_is(kura_audit_open(log, &o, &a), 0, "open with a stale state and a torn tail");
	tap_is(append_n(a, 1, &seq), 0, "append");
	tap_is((long long)seq, (long long)total + 1, "the chain continues after the adopted tail");
	kura_audit_close(a);
	a = NULL;
	total = seq;
	v = verify(log, k0);
	tap_ok(v.fault == KURA_AUDIT_OK && v.good == total && v.last_epoch == 3,
		"verify after recovery: ok, epoch 3 (%s at %llu)", kura_audit_fault_name(v.fault),
		(unsigned long long)v.seq);
	{
		uint8_t k1[32], k2[32], k3[32];
		char *s2;

		uint8_t kz[32];

		crypto_generichash(kz, 32, (const uint8_t *)"kura/audit/evolve/1", 19, k0->data,
			32);
		crypto_generichash(k1, 32, (const uint8_t *)"kura/audit/evolve/1", 19, kz, 32);
		crypto_generichash(k2, 32, (const uint8_t *)"kura/audit/evolve/1", 19, k1, 32);
		crypto_generichash(k3, 32, (const uint8_t *)"kura/audit/evolve/1", 19, k2, 32);
		s2 = b64(k2, 32);
		tap_ok(!dir_contains(log, s2), "after recovery K(2) is gone from the directory");
		free(s2);
	}

	/* A log written into underneath refuses to open. */
	copy_dir(log, sub("tail"));
	find_seq(sub("tail"), total, path, &line);
	{
		size_t len;
		char *old = slurp(sub("tail/state"), &len);

		tap_is(kura_audit_open(sub("tail"), &o, &a), 0, "open a copy");
		tap_is(append_n(a, 1, &seq), 0, "append");
		kura_audit_close(a);
		a = NULL;
		spit(sub("tail/state"), old, len);
		free(old);
		ln = lines_of(path, &n);
		replace_in(&ln[n - 1], "db/password", "db/passwerd");
		write_lines(path, ln, n);
		free_lines(ln, n);
		tap_is(kura_audit_open(sub("tail"), &o, &a), -EBADMSG,
			"an edited tail past the state does not open");
	}

	/* The file replaced underneath. */
	tap_is(kura_audit_open(log, &o, &a), 0, "open");
	find_seq(log, total, path, &line);
	snprintf(path2, sizeof(path2), "%s.moved", path);
	rename(path, path2);
	spit(path, "", 0);
	{
		json_t *e = event(1);

		tap_is(kura_audit_append(a, e, NULL), -ESTALE, "a replaced file: -ESTALE");
		json_decref(e);
	}
	rename(path2, path);
	tap_is(append_n(a, 1, &seq), 0, "once it is back, append works");
	tap_is((long long)seq, (long long)total + 1, "and nothing was skipped");
	total = seq;

	/* Threads. */
	{
		pthread_t th[4];
		void *res;
		bool ok = true;

		for (int i = 0; i < 4; i++)
			pthread_create(&th[i], NULL, thread_append, a);
		for (int i = 0; i < 4; i++) {
			pthread_join(th[i], &res);
			ok = ok && res == NULL;
		}
		tap_ok(ok, "4 threads x 250 appends");
	}
	kura_audit_close(a);
	a = NULL;
	v = verify(log, k0);
	tap_ok(v.fault == KURA_AUDIT_OK && v.good >= total + 1000, "verify after threads: ok");

	/* Evolution by time, from the tick. */
	{
		struct kura_audit_opts q = o;
		uint64_t before;

		q.seconds_per_epoch = 1;
		before = v.last_epoch;
		tap_is(kura_audit_open(log, &q, &a), 0, "open with 1 s epochs");
		sleep(2);
		tap_is(kura_audit_tick(a), 0, "tick");
		tap_is(append_n(a, 1, NULL), 0, "append after the tick");
		kura_audit_close(a);
		a = NULL;
		v = verify(log, k0);
		tap_ok(v.fault == KURA_AUDIT_OK && v.last_epoch == before + 1,
			"the tick closed the epoch (%s, epoch %llu -> %llu)",
			kura_audit_fault_name(v.fault), (unsigned long long)before,
			(unsigned long long)v.last_epoch);
	}

	/* A full disk, on a tiny tmpfs of our own. */
	if (geteuid() == 0 && mkdir(sub("tiny"), 0700) == 0 &&
		mount("tmpfs", sub("tiny"), "tmpfs", 0, "size=256k,mode=0700") == 0) {
		_cleanup_secbuf_ struct kura_secbuf *kt = NULL;
		char *dir = strdup(sub("tiny/log"));
		char filler[600];
		int r = 0, i;
		FILE *f;

		tap_is(kura_audit_create(dir, &kt), 0, "create on the tmpfs");
		tap_is(kura_audit_open(dir, &o, &a), 0, "open");
		tap_is(append_n(a, 10, &seq), 0, "10 appends");
		snprintf(filler, sizeof(filler), "%s/filler", sub("tiny"));
		f = fopen(filler, "wb");
		{
			char block[4096] = {};

			while (fwrite(block, 1, sizeof(block), f) == sizeof(block))
				;
			fclose(f);
		}
		for (i = 0; i < 200 && r == 0; i++)
			r = append_n(a, 1, &seq);
		tap_is(r, -ENOSPC, "append on a full disk: -ENOSPC (after %d that fit)", i - 1);
		total = seq;
		unlink(filler);
		tap_is(append_n(a, 1, &seq), 0, "after freeing space append works");
		tap_is((long long)seq, (long long)total + 1, "with the next seq");
		kura_audit_close(a);
		a = NULL;
		v = verify(dir, kt);
		tap_ok(v.fault == KURA_AUDIT_OK && v.good == seq, "verify: ok (%s at %llu)",
			kura_audit_fault_name(v.fault), (unsigned long long)v.seq);
		umount(sub("tiny"));
		free(dir);
	} else {
		tap_skip("a full disk needs root to mount a tmpfs");
	}

	kura_secbuf_free(k);
	free(log);
	tap_rmtree(root);
	return tap_done();
}

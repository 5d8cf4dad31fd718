/* libFuzzer target for audit lines as `kuractl audit` and `audit verify` read them: each line
 * through the record and checkpoint parsers, the input as a log file through the verifier, and
 * the input as edits to a genuine log (made once, through the real append path): an edited log
 * verifies only if it is a cut of the genuine one at a line boundary, and with a checkpoint of
 * its last record, only if it is the genuine one. No plaintext: records never hold a value. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "check.h"
#include "audit-internal.h"
#include "audit.h"
#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define GENUINE_RECORDS 14
#define EDIT_MAX 65536

static char tmp[64];
static char logdir[80], logfile[128];
static struct kura_secbuf *initial_key;
static uint8_t *genuine;
static size_t genuine_len;
static struct kura_audit_checkpoint last;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void cleanup(void)
{
	nftw(tmp, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	kura_secbuf_free(initial_key);
	free(genuine);
}

/* A log of GENUINE_RECORDS records, its key evolving every 4, written as kurad writes it. */
static void setup(void)
{
	struct kura_audit_opts o = KURA_AUDIT_OPTS_DEFAULT;
	char gen[96], path[160];
	struct kura_audit *a = NULL;
	int fd;

	check(kura_keys_init() == 0);
	kura_json_init();
	/* A tmpfs if there is one: every run writes a file, and a disk would make each wait. */
	snprintf(tmp, sizeof(tmp), "%s/kura-fuzz-audit.XXXXXX",
		access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	check(mkdtemp(tmp));
	atexit(cleanup);
	snprintf(gen, sizeof(gen), "%s/genuine", tmp);
	snprintf(logdir, sizeof(logdir), "%s/log", tmp);
	snprintf(logfile, sizeof(logfile), "%s/audit-000001.jsonl", logdir);
	check(mkdir(logdir, 0700) == 0);
	check(kura_audit_create(gen, &initial_key) == 0);
	o.fsync = false;
	o.records_per_epoch = 4;
	check(kura_audit_open(gen, &o, &a) == 0);
	for (int i = 0; i < GENUINE_RECORDS; i++) {
		json_t *f = json_pack("{s:s, s:s, s:s, s:i}", "event", i % 3 ? "fetch" : "deny",
			"result", i % 3 ? "ok" : "denied", "secret", "db/password", "version", i);

		check(f && kura_audit_append(a, f, NULL) == 0);
		json_decref(f);
	}
	kura_audit_last(a, &last.seq, last.mac);
	kura_audit_close(a);
	snprintf(path, sizeof(path), "%s/audit-000001.jsonl", gen);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	check(fd >= 0 && kura_audit_read_all(fd, &genuine, &genuine_len) == 0);
	close(fd);
}

/* Each line: what parses is exactly BODY-with-mac as append writes it. */
static void lines(const uint8_t *data, size_t size)
{
	const uint8_t *l;
	size_t ll, pos = 0;
	bool complete;

	while (kura_audit_next_line(data, size, &pos, &l, &ll, &complete)) {
		struct kura_audit_checkpoint cp;
		char b64[B64_MAC_LEN + 1];
		struct rec r;

		check(l >= data && l + ll <= data + size && pos <= size);
		check(complete ? l[ll] == '\n' : l + ll == data + size);
		if (kura_audit_rec_parse(l, ll, &r) == 0) {
			check(r.seq >= 1 && (!r.closes || r.next_epoch >= 1));
			check(r.body_len == ll - MAC_SUFFIX_LEN + 1);
			check(r.body[r.body_len - 1] == '}');
			check(memcmp(r.body, l, r.body_len - 1) == 0);
			sodium_bin2base64(b64, sizeof(b64), r.mac, sizeof(r.mac),
				sodium_base64_VARIANT_ORIGINAL);
			check(memcmp(l + r.body_len - 1, ",\"mac\":\"", 8) == 0 &&
				memcmp(l + r.body_len + 7, b64, B64_MAC_LEN) == 0);
			kura_audit_rec_done(&r);
		}
		if (kura_audit_checkpoint_parse((const char *)l, ll, &cp) == 0)
			check(cp.seq >= 1);
	}
}

/* A new file each time: ext4 flushes a file truncated and rewritten when it is closed. */
static void write_log(const uint8_t *data, size_t size)
{
	int fd;

	check(unlink(logfile) == 0 || errno == ENOENT);
	fd = open(logfile, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

	check(fd >= 0 && (size == 0 || write(fd, data, size) == (ssize_t)size) && close(fd) == 0);
}

static uint64_t count_lines(const uint8_t *data, size_t size)
{
	uint64_t n = 0;

	for (size_t i = 0; i < size; i++)
		n += data[i] == '\n';
	return n + (size && data[size - 1] != '\n');
}

static struct kura_audit_verdict verify(const uint8_t *data, size_t size,
	const struct kura_secbuf *key, const struct kura_audit_checkpoint *cp)
{
	struct kura_audit_verdict v;

	check(kura_audit_verify(logdir, key, cp, &v) == 0);
	check(v.fault <= KURA_AUDIT_CHECKPOINT && v.macs_checked == (key != NULL));
	check(v.good <= count_lines(data, size) && v.files == 1);
	if (v.fault == KURA_AUDIT_OK)
		check(v.file[0] == 0 && v.line == 0 && v.good == count_lines(data, size) &&
			v.checkpoint_met == (cp != NULL));
	else
		check(v.line >= 1 && v.line <= count_lines(data, size) + 1 && !v.checkpoint_met);
	return v;
}

/* Whether log is genuine cut after one of its lines (or empty). */
static bool genuine_cut(const uint8_t *log, size_t len)
{
	return len <= genuine_len && memcmp(log, genuine, len) == 0 &&
		(len == 0 || log[len - 1] == '\n');
}

/*
 * The input as edits of the genuine log, three bytes each: an operation, and a position and a
 * byte it uses. Positions are taken modulo the log's length as it is then.
 */
static size_t edit(const uint8_t *ops, size_t n_ops, uint8_t *log)
{
	size_t len = genuine_len;

	memcpy(log, genuine, len);
	for (size_t i = 0; i + 3 <= n_ops; i += 3) {
		size_t at = len ? ((size_t)ops[i + 1] << 8 | ops[i + 2]) % len : 0;
		uint8_t b = ops[i + 2];
		const uint8_t *nl;
		size_t start, end;

		/* The line that holds `at`: [start, end) with its '\n'. */
		for (start = at; start > 0 && log[start - 1] != '\n'; start--)
			;
		nl = len ? memchr(log + at, '\n', len - at) : NULL;
		end = nl ? (size_t)(nl - log) + 1 : len;
		switch (ops[i] % 7) {
		case 0: /* flip a bit */
			if (len)
				log[at] ^= (uint8_t)(1u << (b & 7));
			break;
		case 1: /* delete a byte */
			if (len) {
				memmove(log + at, log + at + 1, len - at - 1);
				len--;
			}
			break;
		case 2: /* insert a byte */
			if (len < EDIT_MAX) {
				memmove(log + at + 1, log + at, len - at);
				log[at] = ops[i + 1];
				len++;
			}
			break;
		case 3: /* delete the line */
			memmove(log + start, log + end, len - end);
			len -= end - start;
			break;
		case 4: /* repeat the line */
			if (len + (end - start) <= EDIT_MAX) {
				memmove(log + end + (end - start), log + end, len - end);
				memcpy(log + end, log + start, end - start);
				len += end - start;
			}
			break;
		case 5: /* move the line to the end */
			if (end - start < EDIT_MAX) {
				uint8_t *line = malloc(end - start + 1);

				check(line);
				memcpy(line, log + start, end - start);
				memmove(log + start, log + end, len - end);
				memcpy(log + len - (end - start), line, end - start);
				free(line);
			}
			break;
		default: /* cut the log */
			len = at;
			break;
		}
	}
	return len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t log[EDIT_MAX];
	struct kura_audit_verdict v;
	size_t len;

	if (!genuine)
		setup();

	lines(data, size);
	write_log(data, size);
	(void)verify(data, size, NULL, NULL);
	(void)verify(data, size, initial_key, NULL);

	len = edit(data, size, log);
	write_log(log, len);
	v = verify(log, len, initial_key, NULL);
	if (v.fault == KURA_AUDIT_OK)
		check(genuine_cut(log, len));
	v = verify(log, len, initial_key, &last);
	if (v.fault == KURA_AUDIT_OK)
		check(len == genuine_len && memcmp(log, genuine, len) == 0);
	/* Without the key, the structure alone: a cut verifies too, and so does the whole. */
	if (genuine_cut(log, len))
		check(verify(log, len, NULL, NULL).fault == KURA_AUDIT_OK);
	return 0;
}

/* The offline verifier: walks every file of a log in order, re-deriving each epoch's key from
 * the starting key, and names the first record that breaks the chain. Only reads. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "audit-internal.h"
#include "json.h"

const char *kura_audit_fault_name(enum kura_audit_fault f)
{
	static const char *const names[] = {
		[KURA_AUDIT_OK] = "ok",
		[KURA_AUDIT_EDITED] = "edited",
		[KURA_AUDIT_DELETED] = "deleted",
		[KURA_AUDIT_REORDERED] = "reordered",
		[KURA_AUDIT_DUPLICATED] = "duplicated",
		[KURA_AUDIT_INSERTED] = "inserted",
		[KURA_AUDIT_MALFORMED] = "malformed",
		[KURA_AUDIT_TRUNCATED] = "truncated",
		[KURA_AUDIT_CHECKPOINT] = "differs from checkpoint",
		[KURA_AUDIT_START] = "start point forged",
	};

	return (unsigned)f < ELEMENTSOF(names) ? names[f] : "unknown";
}

static int cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;

	return a < b ? -1 : a > b;
}

int kura_audit_list_files(int dirfd, uint64_t **ret, size_t *ret_n)
{
	_cleanup_free_ uint64_t *v = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d;
	int fd;

	fd = dup(dirfd);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while ((de = readdir(d))) {
		char name[32];
		uint64_t num = 0;
		size_t i;

		if (strlen(de->d_name) != 18 || strncmp(de->d_name, "audit-", 6) != 0)
			continue;
		for (i = 6; i < 12 && de->d_name[i] >= '0' && de->d_name[i] <= '9'; i++)
			num = num * 10 + (uint64_t)(de->d_name[i] - '0');
		kura_audit_file_name(num, name);
		if (i != 12 || strcmp(name, de->d_name) != 0)
			continue;
		if (n == cap) {
			uint64_t *nv = realloc(v, (cap = cap ? cap * 2 : 16) * sizeof(*v));

			if (!nv) {
				closedir(d);
				return -ENOMEM;
			}
			v = nv;
		}
		v[n++] = num;
	}
	closedir(d);
	qsort(v, n, sizeof(*v), cmp_u64);
	*ret = TAKE_PTR(v);
	*ret_n = n;
	return 0;
}

/* Whether a line with this seq comes later in buf (from pos). */
static bool seq_later(const uint8_t *buf, size_t len, size_t pos, uint64_t seq)
{
	const uint8_t *l;
	size_t ll;
	bool complete, found = false;

	while (!found && kura_audit_next_line(buf, len, &pos, &l, &ll, &complete)) {
		struct rec r;

		if (kura_audit_rec_parse(l, ll, &r) < 0)
			continue;
		found = r.seq == seq;
		kura_audit_rec_done(&r);
	}
	return found;
}

/* Whether the line at pos is the record seq, chaining from prev under key. */
static bool next_verifies(const uint8_t *buf, size_t len, size_t pos, const struct kura_secbuf *key,
	const uint8_t prev[KURA_AUDIT_MAC_BYTES], uint64_t seq)
{
	const uint8_t *l;
	size_t ll;
	bool complete, ok;
	struct rec r;

	if (!kura_audit_next_line(buf, len, &pos, &l, &ll, &complete) || !complete ||
		kura_audit_rec_parse(l, ll, &r) < 0)
		return false;
	ok = r.seq == seq && kura_audit_mac_ok(key, prev, &r);
	kura_audit_rec_done(&r);
	return ok;
}

int kura_audit_walk_file(struct kura_audit_walk *w, const uint8_t *buf, size_t len, bool last_file,
	struct kura_audit_verdict *v)
{
	const uint8_t *l;
	size_t ll, pos = 0;
	bool complete;
	int r;

	v->line = 0;
	while (kura_audit_next_line(buf, len, &pos, &l, &ll, &complete)) {
		uint64_t expected = w->seq + 1;
		enum kura_audit_fault f = KURA_AUDIT_OK;
		struct rec rc;

		v->line++;
		v->seq = expected;
		if (!complete)
			return last_file ? KURA_AUDIT_TRUNCATED : KURA_AUDIT_MALFORMED;
		r = kura_audit_rec_parse(l, ll, &rc);
		if (r == -ENOMEM)
			return r;
		if (r < 0)
			return KURA_AUDIT_MALFORMED;

		if (rc.seq == expected) {
			if ((w->key && !kura_audit_mac_ok(w->key, w->prev, &rc)) ||
				rc.epoch != w->epoch)
				f = w->key &&
						next_verifies(buf, len, pos, w->key, w->prev,
							expected) ?
					KURA_AUDIT_INSERTED :
					KURA_AUDIT_EDITED;
			else if (rc.closes && rc.next_epoch != w->epoch + 1)
				f = KURA_AUDIT_MALFORMED;
			else if (w->cp && rc.seq == w->cp->seq)
				f = sodium_memcmp(rc.mac, w->cp->mac, sizeof(rc.mac)) == 0 ?
					KURA_AUDIT_OK :
					KURA_AUDIT_CHECKPOINT;
		} else if (rc.seq > expected) {
			f = seq_later(buf, len, pos, expected) ? KURA_AUDIT_REORDERED :
								 KURA_AUDIT_DELETED;
		} else {
			f = rc.seq == w->seq ? KURA_AUDIT_DUPLICATED : KURA_AUDIT_REORDERED;
		}
		if (f != KURA_AUDIT_OK) {
			kura_audit_rec_done(&rc);
			return f;
		}

		w->seq = rc.seq;
		memcpy(w->prev, rc.mac, sizeof(w->prev));
		v->good++;
		v->last_seq = rc.seq;
		v->last_epoch = w->epoch;
		if (rc.closes) {
			r = w->key ? kura_chain_evolve(&w->key) : 0;
			w->epoch++;
		}
		kura_audit_rec_done(&rc);
		if (r < 0)
			return r;
	}
	return KURA_AUDIT_OK;
}

int kura_audit_verify(const char *dir, const struct kura_secbuf *initial_key,
	const struct kura_audit_checkpoint *cp, struct kura_audit_verdict *ret)
{
	_cleanup_close_ int dirfd = -1;
	_cleanup_free_ uint64_t *files = NULL;
	struct kura_audit_verdict v = { .macs_checked = initial_key != NULL };
	struct kura_audit_walk w = { .cp = cp };
	struct kura_audit_start start = { .first_file = 0 };
	size_t n = 0;
	int r;

	if (initial_key && initial_key->len != KURA_AUDIT_KEY_BYTES)
		return -EINVAL;
	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return -errno;
	r = kura_audit_list_files(dirfd, &files, &n);
	if (r < 0)
		return r;
	/* Archived before: the chain goes on from the start point. */
	r = kura_audit_start_read(dirfd, &start);
	if (r == 0) {
		w.seq = start.seq;
		w.epoch = start.epoch;
		memcpy(w.prev, start.mac, sizeof(w.prev));
		v.start_seq = start.seq;
		v.last_seq = start.seq;
		v.last_epoch = start.epoch;
	} else if (r != -ENOENT) {
		return r;
	}
	if (initial_key) {
		/* The operator's starting key is never on the host: each epoch's key is derived. */
		r = kura_audit_epoch_key(initial_key, w.epoch, &w.key);
		if (r < 0)
			return r;
		if (start.has_commitment) {
			uint8_t c[KURA_AUDIT_MAC_BYTES];

			kura_audit_key_commitment(w.key, c);
			if (sodium_memcmp(c, start.commitment, sizeof(c)) != 0) {
				kura_secbuf_free(w.key);
				v.fault = KURA_AUDIT_START;
				snprintf(v.file, sizeof(v.file), "start");
				v.line = 1;
				v.seq = start.seq + 1;
				*ret = v;
				return 0;
			}
		}
	}

	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ uint8_t *buf = NULL;
		_cleanup_close_ int fd = -1;
		size_t len;

		if (files[i] < start.first_file)
			continue; /* archived: a copy a crash left behind */
		kura_audit_file_name(files[i], v.file);
		v.files++;
		fd = openat(dirfd, v.file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0) {
			r = -errno;
			break;
		}
		r = kura_audit_read_all(fd, &buf, &len);
		if (r < 0)
			break;
		r = kura_audit_walk_file(&w, buf, len, i + 1 == n, &v);
		if (r != KURA_AUDIT_OK)
			break;
	}
	kura_secbuf_free(w.key);
	if (r < 0)
		return r;
	v.fault = (enum kura_audit_fault)r;
	if (v.fault == KURA_AUDIT_OK && cp && start.seq && cp->seq <= start.seq) {
		/* The checkpoint's record was archived: only the start point's own can be told
		 * (the archive's verify checks the rest). */
		if (cp->seq == start.seq &&
			sodium_memcmp(cp->mac, start.mac, sizeof(cp->mac)) != 0) {
			v.fault = KURA_AUDIT_CHECKPOINT;
			snprintf(v.file, sizeof(v.file), "start");
			v.line = 1;
			v.seq = cp->seq;
		} else {
			v.file[0] = 0;
			v.line = 0;
			v.seq = 0;
			v.checkpoint_met = cp->seq == start.seq;
		}
	} else if (v.fault == KURA_AUDIT_OK && cp && v.last_seq < cp->seq) {
		/* The log ends early: the tail was cut at a line boundary (or never reached this
		 * copy). The first missing record would have come after the last line. */
		v.fault = KURA_AUDIT_TRUNCATED;
		if (n == 0)
			kura_audit_file_name(1, v.file);
		v.line++;
		v.seq = v.last_seq + 1;
	} else if (v.fault == KURA_AUDIT_OK) {
		v.file[0] = 0;
		v.line = 0;
		v.seq = 0;
		v.checkpoint_met = cp != NULL;
	}
	*ret = v;
	return 0;
}

/* A checkpoint object from the first '{' in the line that starts one. */
int kura_audit_checkpoint_parse(const char *line, size_t len, struct kura_audit_checkpoint *ret)
{
	const char *end = line + len;

	while (end > line && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' '))
		end--;
	for (const char *p = memchr(line, '{', (size_t)(end - line)); p;
		p = memchr(p + 1, '{', (size_t)(end - p - 1))) {
		_cleanup_json_ json_t *j = NULL;
		struct kura_audit_checkpoint cp = {};
		uint8_t *mac = NULL;
		size_t mac_len = 0;
		int64_t seq;
		const char *type;

		if (kura_json_load((const uint8_t *)p, (size_t)(end - p), &j) < 0)
			continue;
		type = json_string_value(json_object_get(j, "type"));
		if (!type || strcmp(type, "kura-audit-checkpoint") != 0 ||
			kura_json_get_int(j, "seq", 1, INT64_MAX, &seq) < 0 ||
			kura_json_get_b64(j, "mac", &mac, &mac_len) < 0)
			continue;
		if (mac_len == sizeof(cp.mac)) {
			cp.seq = (uint64_t)seq;
			memcpy(cp.mac, mac, sizeof(cp.mac));
			free(mac);
			*ret = cp;
			return 0;
		}
		free(mac);
	}
	return -EPROTO;
}

/* Retention: the oldest whole files of the log moved out, verified first, and the start point
 * they leave, from which verify goes on. Records never hold a value; the only key here is the
 * operator's starting key, when given, in guarded memory. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "audit-internal.h"
#include "audit-line.h"
#include "base64.h"
#include "clock.h"
#include "json.h"

#define START_FILE "start"
#define START_TMP "start.tmp"

static const char commitment_label[] = "kura/audit/commit/1";

void kura_audit_key_commitment(const struct kura_secbuf *key, uint8_t out[KURA_AUDIT_MAC_BYTES])
{
	crypto_generichash(out, KURA_AUDIT_MAC_BYTES, (const uint8_t *)commitment_label,
		sizeof(commitment_label) - 1, key->data, key->len);
}

int kura_audit_epoch_key(const struct kura_secbuf *initial_key, uint64_t n,
	struct kura_secbuf **ret)
{
	struct kura_secbuf *k = NULL;
	int r = kura_chain_first(initial_key, &k);

	for (uint64_t i = 0; r == 0 && i < n; i++)
		r = kura_chain_evolve(&k);
	if (r < 0) {
		kura_secbuf_free(k);
		return r;
	}
	*ret = k;
	return 0;
}

int kura_audit_start_read(int dirfd, struct kura_audit_start *ret)
{
	_cleanup_free_ uint8_t *buf = NULL, *mac = NULL, *com = NULL;
	_cleanup_close_ int fd = openat(dirfd, START_FILE, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	_cleanup_json_ json_t *j = NULL;
	struct kura_audit_start s = { 0 };
	size_t len, mac_len = 0, com_len = 0;
	int64_t seq, epoch, first;
	const char *type;
	int r;

	if (fd < 0)
		return -errno;
	r = kura_audit_read_all(fd, &buf, &len);
	if (r < 0)
		return r;
	if (kura_json_load(buf, len, &j) < 0)
		return -EBADMSG;
	type = json_string_value(json_object_get(j, "type"));
	if (!type || strcmp(type, "kura-audit-start") != 0 ||
		kura_json_get_int(j, "seq", 1, INT64_MAX, &seq) < 0 ||
		kura_json_get_int(j, "epoch", 0, INT64_MAX, &epoch) < 0 ||
		kura_json_get_int(j, "first_file", 2, 999999, &first) < 0 ||
		kura_json_get_b64(j, "mac", &mac, &mac_len) < 0 || mac_len != sizeof(s.mac))
		return -EBADMSG;
	if (json_object_get(j, "key_commitment")) {
		if (kura_json_get_b64(j, "key_commitment", &com, &com_len) < 0 ||
			com_len != sizeof(s.commitment))
			return -EBADMSG;
		memcpy(s.commitment, com, sizeof(s.commitment));
		s.has_commitment = true;
	}
	s.seq = (uint64_t)seq;
	s.epoch = (uint64_t)epoch;
	s.first_file = (uint64_t)first;
	memcpy(s.mac, mac, sizeof(s.mac));
	*ret = s;
	return 0;
}

/* The start point as a file in dirfd, written whole: temp file, fsync, rename, fsync of the
 * directory. */
static int start_write(int dirfd, const struct kura_audit_start *s, const char *archived_to)
{
	char mac[KURA_BASE64_LEN(KURA_AUDIT_MAC_BYTES) + 1], com[sizeof(mac)],
		now[KURA_RFC3339_LEN];
	_cleanup_free_ uint8_t *text = NULL;
	_cleanup_json_ json_t *j = NULL;
	size_t len;
	int fd, r;

	mac[kura_base64_encode(s->mac, sizeof(s->mac), mac)] = '\0';
	com[kura_base64_encode(s->commitment, sizeof(s->commitment), com)] = '\0';
	kura_rfc3339(kura_wall_s(), now);
	j = json_pack("{s:s, s:I, s:s, s:I, s:I, s:s, s:s}", "type", "kura-audit-start", "seq",
		(json_int_t)s->seq, "mac", mac, "epoch", (json_int_t)s->epoch, "first_file",
		(json_int_t)s->first_file, "time", now, "archived_to", archived_to);
	if (!j || (s->has_commitment && json_object_set_new(j, "key_commitment", json_string(com))))
		return -ENOMEM;
	r = kura_json_dump(j, &text, &len);
	if (r < 0)
		return r;
	fd = openat(dirfd, START_TMP, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	r = kura_audit_write_all(fd, text, len) < 0 || write(fd, "\n", 1) != 1 || fsync(fd) < 0 ?
		-errno :
		0;
	close(fd);
	if (r == 0 && renameat(dirfd, START_TMP, dirfd, START_FILE) < 0)
		r = -errno;
	if (r == 0 && fsync(dirfd) < 0)
		r = -errno;
	if (r < 0)
		(void)unlinkat(dirfd, START_TMP, 0);
	return r;
}

/* A copy of buf as name in dirfd, never over anything, synced. */
static int copy_out(int dirfd, const char *name, const uint8_t *buf, size_t len)
{
	int r, fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);

	if (fd < 0)
		return -errno;
	r = kura_audit_write_all(fd, buf, len) < 0 || fsync(fd) < 0 ? -errno : 0;
	close(fd);
	if (r < 0)
		(void)unlinkat(dirfd, name, 0);
	return r;
}

/* The time of the last record in buf (its "time", as append writes it); false if none. */
static bool last_time(const uint8_t *buf, size_t len, char out[static KURA_AUDIT_TIME_LEN + 1])
{
	const uint8_t *l, *last = NULL;
	size_t ll, last_len = 0, pos = 0;
	bool complete;
	const char *t;
	size_t tl;

	while (kura_audit_next_line(buf, len, &pos, &l, &ll, &complete))
		if (complete) {
			last = l;
			last_len = ll;
		}
	if (!last || !kura_audit_field((const char *)last, last_len, "time", &t, &tl) ||
		tl != KURA_AUDIT_TIME_LEN)
		return false;
	memcpy(out, t, tl);
	out[tl] = '\0';
	return true;
}

/* dest: made 0700, or an existing directory holding nothing. */
static int open_dest(const char *dest, char why[static 256])
{
	_cleanup_free_ uint64_t *files = NULL;
	size_t n = 0;
	int fd, r;

	if (mkdir(dest, 0700) < 0 && errno != EEXIST) {
		r = -errno;
		snprintf(why, 256, "cannot make %s: %s", dest, strerror(-r));
		return r;
	}
	fd = open(dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		r = -errno;
		snprintf(why, 256, "%s: %s", dest, strerror(-r));
		return r;
	}
	r = kura_audit_list_files(fd, &files, &n);
	if (r == 0 && (n > 0 || faccessat(fd, START_FILE, F_OK, AT_SYMLINK_NOFOLLOW) == 0)) {
		snprintf(why, 256, "%s already holds an archive: give a new or empty directory",
			dest);
		r = -EEXIST;
	}
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}

int kura_audit_archive(const char *dir, const char *dest, const char *before,
	const struct kura_secbuf *initial_key, struct kura_audit_archived *ret,
	char why[static 256])
{
	_cleanup_close_ int dirfd = -1, destfd = -1;
	_cleanup_free_ uint64_t *files = NULL;
	struct kura_audit_start start = { 0 }, next;
	struct kura_audit_archived a = { 0 };
	struct kura_audit_verdict v = { 0 };
	struct kura_audit_walk w = { 0 };
	bool had_start;
	size_t n = 0, take = 0, first = 0;
	char name[32];
	int r;

	*ret = a;
	why[0] = '\0';
	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (dirfd < 0) {
		r = -errno;
		snprintf(why, 256, "%s: %s", dir, strerror(-r));
		return r;
	}
	r = kura_audit_start_read(dirfd, &start);
	if (r < 0 && r != -ENOENT) {
		snprintf(why, 256, "%s/" START_FILE ": %s", dir,
			r == -EBADMSG ? "not a start point" : strerror(-r));
		return r;
	}
	had_start = r == 0;
	if (had_start) {
		w.seq = start.seq;
		w.epoch = start.epoch;
		memcpy(w.prev, start.mac, sizeof(w.prev));
	}
	r = kura_audit_list_files(dirfd, &files, &n);
	if (r < 0)
		return r;
	/* Leftovers of an archive a crash cut short: covered by the start point already. */
	for (; first < n && had_start && files[first] < start.first_file; first++) {
		kura_audit_file_name(files[first], name);
		(void)unlinkat(dirfd, name, 0);
	}
	if (initial_key) {
		r = kura_audit_epoch_key(initial_key, w.epoch, &w.key);
		if (r < 0)
			return r;
	}

	/* Which files: from the oldest, while every record is older than before; never the
	 * newest (it is being written). Each is verified as the walk goes. */
	for (size_t i = first; i + 1 < n; i++) {
		_cleanup_free_ uint8_t *buf = NULL;
		_cleanup_close_ int fd = -1;
		char t[KURA_AUDIT_TIME_LEN + 1];
		size_t len;

		kura_audit_file_name(files[i], name);
		fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0 || (r = kura_audit_read_all(fd, &buf, &len)) < 0) {
			r = fd < 0 ? -errno : r;
			snprintf(why, 256, "%s: %s", name, strerror(-r));
			goto out;
		}
		/* Times as append writes them (UTC, microseconds) compare as text. */
		if (!last_time(buf, len, t) || strcmp(t, before) >= 0)
			break;
		v = (struct kura_audit_verdict){ 0 };
		r = kura_audit_walk_file(&w, buf, len, false, &v);
		if (r < 0)
			goto out;
		if (r != KURA_AUDIT_OK) {
			snprintf(why, 256,
				"%s does not verify: %s at line %" PRIu64 " (seq %" PRIu64
				"); nothing was archived",
				name, kura_audit_fault_name((enum kura_audit_fault)r), v.line,
				v.seq);
			r = -EBADMSG;
			goto out;
		}
		if (!a.files) {
			a.first_file = files[i];
			a.first_seq = w.seq - v.good + 1;
		}
		a.files++;
		a.last_file = files[i];
		a.last_seq = w.seq;
		snprintf(a.last_time, sizeof(a.last_time), "%s", t);
		take = i + 1;
	}
	r = 0;
	if (!a.files)
		goto out;

	destfd = open_dest(dest, why);
	if (destfd < 0) {
		r = destfd;
		goto out;
	}
	for (size_t i = first; i < take; i++) {
		_cleanup_free_ uint8_t *buf = NULL;
		_cleanup_close_ int fd = -1;
		size_t len;

		kura_audit_file_name(files[i], name);
		fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0 || (r = kura_audit_read_all(fd, &buf, &len)) < 0 ||
			(r = copy_out(destfd, name, buf, len)) < 0) {
			r = fd < 0 ? -errno : r;
			snprintf(why, 256, "copying %s to %s: %s; nothing was removed", name, dest,
				strerror(-r));
			goto out;
		}
	}
	/* The archive begins where the log did, so that it verifies on its own. */
	if (had_start && (r = start_write(destfd, &start, "")) < 0) {
		snprintf(why, 256, "writing %s/" START_FILE ": %s; nothing was removed", dest,
			strerror(-r));
		goto out;
	}
	if (fsync(destfd) < 0) {
		r = -errno;
		goto out;
	}
	next = (struct kura_audit_start){ .seq = w.seq,
		.epoch = w.epoch,
		.first_file = files[take - 1] + 1 };
	memcpy(next.mac, w.prev, sizeof(next.mac));
	if (w.key) {
		kura_audit_key_commitment(w.key, next.commitment);
		next.has_commitment = true;
	}
	r = start_write(dirfd, &next, dest);
	if (r < 0) {
		snprintf(why, 256, "writing %s/" START_FILE ": %s; nothing was removed", dir,
			strerror(-r));
		goto out;
	}
	for (size_t i = first; i < take; i++) {
		kura_audit_file_name(files[i], name);
		(void)unlinkat(dirfd, name, 0);
	}
	(void)fsync(dirfd);
	*ret = a;
out:
	kura_secbuf_free(w.key);
	return r;
}

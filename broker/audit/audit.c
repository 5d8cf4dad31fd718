/* The audit log: append, key evolution, crash recovery and offline verification. Holds MAC keys
 * in guarded memory; records never carry a value. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "audit-event.h"
#include "audit-internal.h"
#include "clock.h"
#include "base64.h"
#include "json.h"

#define STATE_MAX 4096u

/*
 * How stale the log's identity may get. The file we append to is watched with inotify
 * (IN_ATTRIB, IN_MOVE_SELF, IN_DELETE_SELF): renamed away, unlinked, or replaced by a rename over
 * its name (its link count drops), the kernel queues an event before that call returns, and the
 * next append reads it (one read(2) of a non-blocking descriptor) and then compares the path
 * with the descriptor (fstat + fstatat), refusing with -ESTALE: a record appended after the
 * change returned is never written to a file the path no longer names. What inotify does not
 * report (the file cut short in place, as our own writes also raise IN_MODIFY; something mounted
 * over the path) is caught by the same full comparison at least every IDENTITY_CHECK_MS: the
 * first append that many ms after the last full check makes one. Without inotify (no instance
 * left, no /proc to name the file by) every append makes the full comparison, as before.
 */
#define IDENTITY_CHECK_MS 1000

struct kura_audit {
	pthread_mutex_t lock;
	int dirfd;
	int fd;             /* the current file, O_APPEND; -1 until first needed */
	off_t end;          /* where the current file's last whole record ends */
	int notify_fd;      /* inotify, watching fd's file; -1: none, check every append */
	int wd;             /* the watch on it, or -1 */
	bool suspect;       /* the next append compares path and file in full */
	bool torn;          /* a write of ours failed: the file may hold part of its line */
	int64_t checked_ms; /* the last full comparison that passed (kura_clock_ms) */
	struct kura_audit_opts o;
	struct kura_secbuf *key;
	uint64_t epoch, seq, file, epoch_records, epoch_started;
	uint8_t mac[KURA_AUDIT_MAC_BYTES];
	bool state_stale; /* memory is ahead of the state file in a way that matters */
	bool live;        /* open succeeded: close may save */
	kura_audit_tap_fn tap;
	void *tap_data;
};

void kura_audit_rec_done(struct rec *r)
{
	free(r->body);
	r->body = NULL;
}

void kura_audit_file_name(uint64_t n, char buf[32])
{
	snprintf(buf, 32, "audit-%06" PRIu64 ".jsonl", n);
}

bool kura_audit_mac_ok(const struct kura_secbuf *key, const uint8_t prev[KURA_AUDIT_MAC_BYTES],
	const struct rec *r)
{
	return kura_chain_mac_ok(key, prev, r->body, r->body_len, r->mac);
}

/* A whole regular file into malloc'd memory (NUL-terminated for convenience). */
int kura_audit_read_all(int fd, uint8_t **ret, size_t *ret_len)
{
	struct stat st;
	uint8_t *buf;
	size_t got = 0;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EBADF;
	buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		return -ENOMEM;
	while (got < (size_t)st.st_size) {
		ssize_t n = pread(fd, buf + got, (size_t)st.st_size - got, (off_t)got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int r = n < 0 ? -errno : -EIO;

			free(buf);
			return r;
		}
		got += (size_t)n;
	}
	buf[got] = 0;
	*ret = buf;
	*ret_len = got;
	return 0;
}

/* One line (without its '\n'). -EPROTO unless it is BODY-with-mac as append writes it. */
int kura_audit_rec_parse(const uint8_t *p, size_t len, struct rec *ret)
{
	static const char head[] = ",\"mac\":\"";
	_cleanup_json_ json_t *j = NULL;
	const char *b64;
	struct rec r = {};
	size_t bin_len;
	int64_t v;

	if (len < MAC_SUFFIX_LEN + 2 || p[0] != '{')
		return -EPROTO;
	b64 = (const char *)p + len - MAC_SUFFIX_LEN;
	if (memcmp(b64, head, sizeof(head) - 1) != 0 || memcmp(p + len - 2, "\"}", 2) != 0)
		return -EPROTO;
	b64 += sizeof(head) - 1;
	if (kura_base64_decode(b64, B64_MAC_LEN, r.mac, sizeof(r.mac), &bin_len) < 0 ||
		bin_len != sizeof(r.mac))
		return -EPROTO;

	r.body_len = len - MAC_SUFFIX_LEN + 1;
	r.body = malloc(r.body_len);
	if (!r.body)
		return -ENOMEM;
	memcpy(r.body, p, r.body_len - 1);
	r.body[r.body_len - 1] = '}';

	if (kura_json_load(r.body, r.body_len, &j) < 0 ||
		kura_json_get_int(j, "seq", 1, INT64_MAX, &v) < 0)
		goto bad;
	r.seq = (uint64_t)v;
	if (kura_json_get_int(j, "epoch", 0, INT64_MAX, &v) < 0)
		goto bad;
	r.epoch = (uint64_t)v;
	if (json_object_get(j, "next_epoch")) {
		if (kura_json_get_int(j, "next_epoch", 1, INT64_MAX, &v) < 0)
			goto bad;
		r.closes = true;
		r.next_epoch = (uint64_t)v;
	}
	*ret = r;
	return 0;
bad:
	free(r.body);
	return -EPROTO;
}

/* The next line of buf from *pos: its start and length without '\n'; *complete says whether
 * it had one. false at the end. */
bool kura_audit_next_line(const uint8_t *buf, size_t len, size_t *pos, const uint8_t **ret,
	size_t *ret_len, bool *complete)
{
	const uint8_t *nl;

	if (*pos >= len)
		return false;
	*ret = buf + *pos;
	nl = memchr(buf + *pos, '\n', len - *pos);
	*complete = nl != NULL;
	*ret_len = nl ? (size_t)(nl - *ret) : len - *pos;
	*pos += *ret_len + (nl ? 1 : 0);
	return true;
}

int kura_audit_write_all(int fd, const void *p, size_t len)
{
	const uint8_t *b = p;

	while (len > 0) {
		ssize_t n = write(fd, b, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		b += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Replaces dir/state whole: a crash leaves either the old state or the new one, never a mix,
 * and the old key is gone from the disk once rename and the directory fsync return (as far as
 * the file system goes: a journal or an SSD's remapping may keep old blocks, which is why
 * dir belongs on storage that is not snapshotted).
 */
static int state_save(int dirfd, uint64_t epoch, const struct kura_secbuf *key, uint64_t seq,
	const uint8_t mac[KURA_AUDIT_MAC_BYTES], uint64_t file, uint64_t epoch_started,
	uint64_t epoch_records)
{
	_cleanup_secbuf_ struct kura_secbuf *text = NULL, *key64 = NULL;
	char mac64[KURA_BASE64_LEN(KURA_AUDIT_MAC_BYTES) + 1];
	_cleanup_close_ int fd = -1;
	int n, r;

	r = kura_secbuf_new(STATE_MAX, &text);
	if (r == 0)
		r = kura_base64_secbuf(key, &key64);
	if (r < 0)
		return r;
	mac64[kura_base64_encode(mac, KURA_AUDIT_MAC_BYTES, mac64)] = '\0';
	/* The key's text is copied in by hand, never through stdio's buffers. */
	n = snprintf((char *)text->data, text->cap,
		"{\"version\":1,\"epoch\":%" PRIu64 ",\"key\":\"", epoch);
	if (n < 0 || (size_t)n + key64->len >= text->cap)
		return -EOVERFLOW;
	memcpy(text->data + n, key64->data, key64->len);
	text->len = (size_t)n + key64->len;
	n = snprintf((char *)text->data + text->len, text->cap - text->len,
		"\",\"seq\":%" PRIu64 ",\"mac\":\"%s\",\"file\":%" PRIu64
		",\"epoch_started\":%" PRIu64 ",\"epoch_records\":%" PRIu64 "}\n",
		seq, mac64, file, epoch_started, epoch_records);
	if (n < 0 || (size_t)n >= text->cap - text->len)
		return -EOVERFLOW;
	text->len += (size_t)n;

	fd = openat(dirfd, "state.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
		0600);
	if (fd < 0)
		return -errno;
	r = kura_secbuf_write_fd(text, fd);
	if (r >= 0 && fsync(fd) < 0)
		r = -errno;
	if (r >= 0 && renameat(dirfd, "state.tmp", dirfd, "state") < 0)
		r = -errno;
	if (r >= 0 && fsync(dirfd) < 0)
		r = -errno;
	if (r < 0)
		unlinkat(dirfd, "state.tmp", 0);
	return r;
}

static int save(struct kura_audit *a)
{
	int r = state_save(a->dirfd, a->epoch, a->key, a->seq, a->mac, a->file, a->epoch_started,
		a->epoch_records);

	if (r >= 0)
		a->state_stale = false;
	return r;
}

static int get_u64(const json_t *j, const char *k, uint64_t *ret)
{
	int64_t v;
	int r = kura_json_get_int(j, k, 0, INT64_MAX, &v);

	if (r < 0)
		return r;
	*ret = (uint64_t)v;
	return 0;
}

static int state_load(struct kura_audit *a)
{
	_cleanup_secbuf_ struct kura_secbuf *text = NULL;
	_cleanup_json_ json_t *j = NULL;
	_cleanup_close_ int fd = -1;
	uint8_t *bin = NULL;
	size_t bin_len = 0;
	uint64_t version;
	const char *key;
	int r;

	fd = openat(a->dirfd, "state", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	r = kura_secbuf_read_fd(fd, STATE_MAX, &text);
	if (r < 0)
		return r;
	r = kura_json_load(text->data, text->len, &j);
	if (r < 0)
		return r;
	if (get_u64(j, "version", &version) < 0 || version != 1 ||
		get_u64(j, "epoch", &a->epoch) < 0 || get_u64(j, "seq", &a->seq) < 0 ||
		get_u64(j, "file", &a->file) < 0 || a->file < 1 ||
		get_u64(j, "epoch_started", &a->epoch_started) < 0 ||
		get_u64(j, "epoch_records", &a->epoch_records) < 0)
		return -EPROTO;

	r = kura_json_get_b64(j, "mac", &bin, &bin_len);
	if (r < 0)
		return r;
	if (bin_len != KURA_AUDIT_MAC_BYTES) {
		free(bin);
		return -EPROTO;
	}
	memcpy(a->mac, bin, KURA_AUDIT_MAC_BYTES);
	free(bin);

	/* Straight from jansson's string (its allocator wipes) into guarded memory. */
	key = json_string_value(json_object_get(j, "key"));
	if (!key)
		return -EPROTO;
	r = kura_audit_key_parse((const uint8_t *)key, strlen(key), &a->key);
	return r == -EINVAL ? -EPROTO : r;
}

int kura_audit_create(const char *dir, struct kura_secbuf **ret_initial_key)
{
	_cleanup_secbuf_ struct kura_secbuf *start = NULL, *key = NULL;
	_cleanup_close_ int dirfd = -1;
	uint8_t zero[KURA_AUDIT_MAC_BYTES] = {};
	struct stat st;
	int r;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (dirfd < 0)
		return -errno;
	/* A directory made earlier by someone else, or open to others, could be swapped or read
	 * under us: the state file holds the current key. */
	if (fstat(dirfd, &st) < 0)
		return -errno;
	if (st.st_uid != geteuid() || (st.st_mode & 077))
		return -EPERM;
	if (faccessat(dirfd, "state", F_OK, AT_SYMLINK_NOFOLLOW) == 0)
		return -EEXIST;
	r = kura_chain_start(&start);
	if (r < 0)
		return r;
	/* The host keeps epoch 0's key, derived one way from the starting key; the starting key
	 * itself goes to the operator only, so whoever takes the host later cannot re-derive the
	 * keys of epochs already closed (nor epoch 0's, once it is). */
	r = kura_chain_first(start, &key);
	if (r == 0)
		r = state_save(dirfd, 0, key, 0, zero, 1, (uint64_t)kura_wall_s(), 0);
	if (r < 0)
		return r;
	*ret_initial_key = TAKE_PTR(start);
	return 0;
}

int kura_audit_key_parse(const uint8_t *text, size_t len, struct kura_secbuf **ret)
{
	_cleanup_secbuf_ struct kura_secbuf *key = NULL;
	int r;

	if (len != KURA_BASE64_LEN(KURA_AUDIT_KEY_BYTES))
		return -EINVAL;
	r = kura_secbuf_new(KURA_AUDIT_KEY_BYTES, &key);
	if (r < 0)
		return r;
	r = kura_base64_decode((const char *)text, len, key->data, key->cap, &key->len);
	if (r < 0 || key->len != KURA_AUDIT_KEY_BYTES)
		return r == -ENOMEM ? r : -EINVAL;
	*ret = TAKE_PTR(key);
	return 0;
}

/*
 * Moves the watch onto the file just opened, named by its descriptor through /proc (inotify has
 * no *at call, and the path could already name another file). Any failure falls back to full
 * checks on every append. The first append after this makes a full check anyway: the file could
 * have been renamed between openat and the watch.
 */
static void watch_current(struct kura_audit *a)
{
	char path[40];

	a->suspect = true;
	if (a->notify_fd < 0)
		return;
	if (a->wd >= 0)
		(void)inotify_rm_watch(a->notify_fd, a->wd);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", a->fd);
	a->wd = inotify_add_watch(a->notify_fd, path, IN_ATTRIB | IN_MOVE_SELF | IN_DELETE_SELF);
	if (a->wd < 0) {
		close(a->notify_fd);
		a->notify_fd = -1;
	}
}

static int open_current(struct kura_audit *a)
{
	struct stat st;
	char name[32];

	if (a->fd >= 0)
		return 0;
	kura_audit_file_name(a->file, name);
	a->fd = openat(a->dirfd, name, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
		0600);
	if (a->fd < 0)
		return -errno;
	/* Recovery has cut any partial line: the file ends with a whole record (or is new). */
	if (fstat(a->fd, &st) < 0 || fsync(a->dirfd) < 0) {
		int r = -errno;

		close(a->fd);
		a->fd = -1;
		return r;
	}
	a->end = st.st_size;
	watch_current(a);
	return 0;
}

/*
 * Adopts what the current file holds past the state's seq. Records up to the state's seq are
 * only checked for the state's own MAC; later ones must chain and verify under the current key,
 * and a closing record among them evolves the key as append would have.
 */
static int recover_file(struct kura_audit *a, bool last)
{
	_cleanup_free_ uint8_t *buf = NULL;
	_cleanup_close_ int fd = -1;
	char name[32];
	size_t len, pos = 0, ll, keep = 0;
	uint8_t prev[KURA_AUDIT_MAC_BYTES];
	bool complete, have_prev = false;
	const uint8_t *l;
	int r;

	kura_audit_file_name(a->file, name);
	fd = openat(a->dirfd, name, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	r = kura_audit_read_all(fd, &buf, &len);
	if (r < 0)
		return r;
	while (kura_audit_next_line(buf, len, &pos, &l, &ll, &complete)) {
		struct rec rc;

		if (!complete)
			break;
		keep = pos;
		r = kura_audit_rec_parse(l, ll, &rc);
		if (r < 0)
			return r == -ENOMEM ? r : -EBADMSG;
		if (rc.seq <= a->seq) {
			/* Already ours: the current epoch's records must still verify under the
			 * current key (an edit there is caught before we chain onto it), and the
			 * last one must be the one the state remembers. */
			r = rc.seq == a->seq && sodium_memcmp(rc.mac, a->mac, sizeof(a->mac)) != 0 ?
				-EBADMSG :
				0;
			if (r == 0 && have_prev && rc.epoch == a->epoch &&
				!kura_audit_mac_ok(a->key, prev, &rc))
				r = -EBADMSG;
		} else if (rc.seq != a->seq + 1 || rc.epoch != a->epoch ||
			!kura_audit_mac_ok(a->key, a->mac, &rc)) {
			r = -EBADMSG;
		} else {
			a->seq = rc.seq;
			memcpy(a->mac, rc.mac, sizeof(a->mac));
			a->epoch_records++;
			a->state_stale = true;
			if (rc.closes) {
				if (rc.next_epoch != a->epoch + 1)
					r = -EBADMSG;
				else
					r = kura_chain_evolve(&a->key);
				a->epoch++;
				a->epoch_records = 0;
				a->epoch_started = (uint64_t)kura_wall_s();
			}
		}
		memcpy(prev, rc.mac, sizeof(prev));
		have_prev = true;
		kura_audit_rec_done(&rc);
		if (r < 0)
			return r;
	}
	/* A line without its newline was never acknowledged: append returns after the whole
	 * line is written. Keeping it would glue the next record onto it. */
	if (keep < len) {
		if (!last)
			return -EBADMSG;
		if (ftruncate(fd, (off_t)keep) < 0 || fsync(fd) < 0)
			return -errno;
	}
	return 0;
}

/* The state may name an older file than the last one (its save at rotation was lost): the
 * chain goes on through every later file that exists. */
static int recover_tail(struct kura_audit *a)
{
	for (;;) {
		char name[32];
		bool last;
		int r;

		kura_audit_file_name(a->file + 1, name);
		last = faccessat(a->dirfd, name, F_OK, AT_SYMLINK_NOFOLLOW) < 0;
		r = recover_file(a, last);
		if (r < 0 || last)
			return r;
		a->file++;
		a->state_stale = true;
	}
}

int kura_audit_open(const char *dir, const struct kura_audit_opts *o, struct kura_audit **ret)
{
	struct kura_audit *a;
	int r;

	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->fd = -1;
	a->wd = -1;
	a->notify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	a->o = o ? *o : KURA_AUDIT_OPTS_DEFAULT;
	if (!a->o.max_file_bytes)
		a->o.max_file_bytes = KURA_AUDIT_OPTS_DEFAULT.max_file_bytes;
	if (!a->o.records_per_epoch)
		a->o.records_per_epoch = KURA_AUDIT_OPTS_DEFAULT.records_per_epoch;
	if (!a->o.seconds_per_epoch)
		a->o.seconds_per_epoch = KURA_AUDIT_OPTS_DEFAULT.seconds_per_epoch;
	pthread_mutex_init(&a->lock, NULL);
	a->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (a->dirfd < 0) {
		r = -errno;
		goto fail;
	}
	/* Two writers would fork the chain; the lock goes with the descriptor at close. Another
	 * process's turn (a kuractl's operation) is waited out, for a bounded time. */
	for (unsigned waited = 0;; waited += 10) {
		if (flock(a->dirfd, LOCK_EX | LOCK_NB) == 0)
			break;
		if (errno != EWOULDBLOCK || waited >= a->o.open_wait_ms) {
			r = errno == EWOULDBLOCK ? -EBUSY : -errno;
			goto fail;
		}
		kura_sleep_ms(10);
	}
	r = state_load(a);
	if (r < 0)
		goto fail;
	r = recover_tail(a);
	if (r < 0)
		goto fail;
	if (a->state_stale) {
		r = save(a);
		if (r < 0)
			goto fail;
	}
	/* Opened now, not at the first append: a file swapped in between must be noticed. */
	r = open_current(a);
	if (r < 0)
		goto fail;
	a->live = true;
	*ret = a;
	return 0;
fail:
	kura_audit_close(a);
	return r;
}

void kura_audit_close(struct kura_audit *a)
{
	if (!a)
		return;
	if (a->live)
		(void)save(a);
	if (a->fd >= 0)
		close(a->fd);
	if (a->notify_fd >= 0)
		close(a->notify_fd);
	if (a->dirfd >= 0)
		close(a->dirfd);
	kura_secbuf_free(a->key);
	pthread_mutex_destroy(&a->lock);
	sodium_memzero(a, sizeof(*a));
	free(a);
}

/* -ESTALE unless the path still names the file we hold open. */
static int check_current(struct kura_audit *a, struct stat *ret)
{
	struct stat at_path;
	char name[32];

	if (fstat(a->fd, ret) < 0)
		return -errno;
	kura_audit_file_name(a->file, name);
	if (fstatat(a->dirfd, name, &at_path, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? -ESTALE : -errno;
	if (at_path.st_dev != ret->st_dev || at_path.st_ino != ret->st_ino || ret->st_nlink == 0)
		return -ESTALE;
	return 0;
}

/* Whether anything happened to the file since the last full check (the queue is drained, so
 * that one check answers for every event before it), or one is due anyway. */
static bool needs_check(struct kura_audit *a)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool seen = false;
	ssize_t n;

	if (a->notify_fd < 0)
		return true;
	while ((n = read(a->notify_fd, buf, sizeof(buf))) > 0)
		seen = true;
	if (n < 0 && errno != EAGAIN)
		seen = true;
	return seen || a->suspect || kura_clock_ms() - a->checked_ms >= IDENTITY_CHECK_MS;
}

/*
 * Bytes past the last whole record are what a failed write of ours left when it could not be
 * cut back (a disk that filled up mid-line, then refused the truncation too): cut them before
 * anything is appended, or the next record would be glued onto a partial line and the chain
 * broken for good (kurad would then refuse to start on it). A file shorter than what we wrote
 * was cut by someone else; one longer while no write of ours failed was written by someone else,
 * and as this check may come up to IDENTITY_CHECK_MS late, records of ours may follow what they
 * wrote: neither is cut, both are -ESTALE.
 */
static int cut_torn_tail(struct kura_audit *a, struct stat *st)
{
	if (st->st_size == a->end) {
		a->torn = false;
		return 0;
	}
	if (st->st_size < a->end || !a->torn)
		return -ESTALE;
	if (ftruncate(a->fd, a->end) < 0 || (a->o.fsync && fsync(a->fd) < 0))
		return -errno;
	st->st_size = a->end;
	a->torn = false;
	return 0;
}

static int rotate(struct kura_audit *a)
{
	int r = state_save(a->dirfd, a->epoch, a->key, a->seq, a->mac, a->file + 1,
		a->epoch_started, a->epoch_records);

	if (r < 0)
		return r;
	a->state_stale = false;
	close(a->fd);
	a->fd = -1;
	a->file++;
	return open_current(a);
}

/* The file at the path is still the one we hold, and ends where our last record does: compared
 * in full when needs_check says so (see IDENTITY_CHECK_MS), else taken as known. */
static int check_identity(struct kura_audit *a)
{
	struct stat st;
	int r;

	if (!needs_check(a))
		return 0;
	a->suspect = true;
	r = check_current(a, &st);
	if (r == 0)
		r = cut_torn_tail(a, &st);
	if (r < 0)
		return r;
	a->suspect = false;
	a->checked_ms = kura_clock_ms();
	return 0;
}

/*
 * The body, as jansson dumps fields with seq, time and epoch added (sorted keys, compact), or as
 * kura_audit_event_body writes e's (the same bytes, without jansson), into a buffer with room for
 * the mac member and '\n' after it: *ret (malloc'd) or, when it fits, stack.
 */
static int make_body(struct kura_audit *a, json_t *fields, const struct kura_audit_event *e,
	uint8_t *stack, size_t stack_cap, uint8_t **ret, size_t *ret_len)
{
	_cleanup_json_ json_t *j = NULL;
	_cleanup_free_ uint8_t *body = NULL;
	char when[KURA_RFC3339_LEN];
	size_t len, cap;
	int r;

	kura_rfc3339_now_us(when);
	if (e) {
		cap = kura_audit_event_bound(e) + MAC_SUFFIX_LEN + 1;
		*ret = cap <= stack_cap ? stack : malloc(cap);
		if (!*ret)
			return -ENOMEM;
		*ret_len = kura_audit_event_body(e, a->seq + 1, when, a->epoch, (char *)*ret);
		return 0;
	}
	j = json_deep_copy(fields);
	if (!j)
		return -ENOMEM;
	if (json_object_set_new(j, "seq", json_integer((json_int_t)(a->seq + 1))) < 0 ||
		json_object_set_new(j, "time", json_string(when)) < 0 ||
		json_object_set_new(j, "epoch", json_integer((json_int_t)a->epoch)) < 0)
		return -ENOMEM;
	r = kura_json_dump_ascii(j, &body, &len);
	if (r < 0)
		return r;
	cap = len + MAC_SUFFIX_LEN + 1;
	*ret = cap <= stack_cap ? stack : malloc(cap);
	if (!*ret)
		return -ENOMEM;
	memcpy(*ret, body, len);
	*ret_len = len;
	return 0;
}

/* One record out, or nothing: on failure the file is cut back and memory does not move. The
 * fields come from fields (jansson) or from e. */
static int write_record(struct kura_audit *a, json_t *fields, const struct kura_audit_event *e,
	uint64_t *ret_seq)
{
	uint8_t stack[4096], *line = NULL;
	uint8_t mac[KURA_AUDIT_MAC_BYTES];
	char mac64[B64_MAC_LEN + 1];
	size_t body_len, line_len;
	const char *res;
	off_t at;
	int r;

	r = open_current(a);
	if (r < 0)
		return r;
	r = check_identity(a);
	if (r < 0)
		return r;
	if ((uint64_t)a->end >= a->o.max_file_bytes) {
		r = rotate(a);
		if (r < 0)
			return r;
		r = check_identity(a);
		if (r < 0)
			return r;
	}

	r = make_body(a, fields, e, stack, sizeof(stack), &line, &body_len);
	if (r < 0)
		return r;
	kura_chain_mac(a->key, a->mac, line, body_len, mac);
	mac64[kura_base64_encode(mac, sizeof(mac), mac64)] = '\0';

	line_len = body_len - 1 + MAC_SUFFIX_LEN + 1;
	memcpy(line + body_len - 1, ",\"mac\":\"", 8);
	memcpy(line + body_len - 1 + 8, mac64, B64_MAC_LEN);
	memcpy(line + line_len - 3, "\"}\n", 3);

	at = a->end;
	r = kura_audit_write_all(a->fd, line, line_len);
	if (r >= 0 && a->o.fsync && fsync(a->fd) < 0)
		r = -errno;
	if (r < 0) {
		/* Leave no partial line, and no line whose seq a retry would repeat (if this
		 * fails too, the next write's full check cuts it first). */
		a->suspect = a->torn = true;
		if (ftruncate(a->fd, at) == 0 && a->o.fsync)
			(void)fsync(a->fd);
		if (line != stack)
			free(line);
		return r;
	}
	a->end = at + (off_t)line_len;
	a->seq++;
	memcpy(a->mac, mac, sizeof(mac));
	a->epoch_records++;
	if (ret_seq)
		*ret_seq = a->seq;
	res = e ? e->result : json_string_value(json_object_get(fields, "result"));
	if (a->tap)
		a->tap((const char *)line, line_len - 1, a->seq, mac, res && strcmp(res, "ok") != 0,
			a->tap_data);
	if (line != stack)
		free(line);
	return 0;
}

static bool epoch_due(const struct kura_audit *a, bool by_count)
{
	if (by_count && a->epoch_records + 1 >= a->o.records_per_epoch)
		return true;
	return (uint64_t)kura_wall_s() - a->epoch_started >= a->o.seconds_per_epoch;
}

static int close_epoch(struct kura_audit *a)
{
	_cleanup_json_ json_t *f = NULL;
	int r;

	f = json_pack("{s:s, s:I}", "event", "audit-key-evolve", "next_epoch",
		(json_int_t)(a->epoch + 1));
	if (!f)
		return -ENOMEM;
	r = write_record(a, f, NULL, NULL);
	if (r < 0)
		return r;
	/* The closing record is on disk: from here memory must follow it whatever happens, or
	 * the next record would be MAC'd under a key the log says is retired. */
	r = kura_chain_evolve(&a->key);
	a->epoch++;
	a->epoch_records = 0;
	a->epoch_started = (uint64_t)kura_wall_s();
	a->state_stale = true;
	if (r < 0)
		return r;
	return save(a);
}

static bool reserved(const char *k)
{
	static const char *const keys[] = { "seq", "time", "epoch", "mac", "next_epoch" };

	for (size_t i = 0; i < ELEMENTSOF(keys); i++)
		if (strcmp(k, keys[i]) == 0)
			return true;
	return false;
}

/*
 * A writer stuck in write(2) or fsync(2) (a hung disk, a frozen file system) holds the lock:
 * the others give up after lock_ms rather than queue behind it, so callers can fail closed
 * within a bounded time.
 */
static int lock(struct kura_audit *a)
{
	struct timespec until;
	int r;

	if (!a->o.lock_ms) {
		pthread_mutex_lock(&a->lock);
		return 0;
	}
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += a->o.lock_ms / 1000;
	until.tv_nsec += (long)(a->o.lock_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	r = pthread_mutex_timedlock(&a->lock, &until);
	return r == 0 ? 0 : -r;
}

void kura_audit_set_tap(struct kura_audit *a, kura_audit_tap_fn fn, void *userdata)
{
	pthread_mutex_lock(&a->lock);
	a->tap = fn;
	a->tap_data = userdata;
	pthread_mutex_unlock(&a->lock);
}

void kura_audit_last(struct kura_audit *a, uint64_t *ret_seq, uint8_t ret_mac[KURA_AUDIT_MAC_BYTES])
{
	pthread_mutex_lock(&a->lock);
	*ret_seq = a->seq;
	memcpy(ret_mac, a->mac, KURA_AUDIT_MAC_BYTES);
	pthread_mutex_unlock(&a->lock);
}

static int append(struct kura_audit *a, json_t *fields, const struct kura_audit_event *e,
	uint64_t *ret_seq)
{
	int r = lock(a);

	if (r < 0)
		return r;
	if (a->state_stale)
		r = save(a);
	if (r >= 0 && epoch_due(a, true))
		r = close_epoch(a);
	if (r >= 0)
		r = write_record(a, fields, e, ret_seq);
	pthread_mutex_unlock(&a->lock);
	return r;
}

int kura_audit_append(struct kura_audit *a, json_t *fields, uint64_t *ret_seq)
{
	const char *k;
	json_t *v;

	if (!json_is_object(fields))
		return -EINVAL;
	json_object_foreach(fields, k, v)
		if (reserved(k))
			return -EINVAL;
	return append(a, fields, NULL, ret_seq);
}

int kura_audit_append_event(struct kura_audit *a, const struct kura_audit_event *e,
	uint64_t *ret_seq)
{
	return append(a, NULL, e, ret_seq);
}

int kura_audit_tick(struct kura_audit *a)
{
	int r = lock(a);

	if (r < 0)
		return r;
	if (a->state_stale)
		r = save(a);
	if (r >= 0 && epoch_due(a, false))
		r = close_epoch(a);
	pthread_mutex_unlock(&a->lock);
	return r;
}

/* kuractl backup and restore: a state directory's store (SQLite's online backup, consistent
 * while kurad writes), its audit log with its current key state, and the master key only when
 * asked, in one checksummed file. The store holds ciphertext; the file is as sensitive as the
 * state directory (it holds the audit log's current key, and with --with-key the master key). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "audit-event.h"
#include "audit.h"
#include "base64.h"
#include "clock.h"
#include "config.h"
#include "ctl.h"
#include "json.h"
#include "master.h"
#include "store.h"

#define MAGIC "kura-backup 1\n"
#define FORMAT 1
#define MANIFEST_MAX (1u << 20)
#define HASH_BYTES 32

static const char backup_usage[] =
	"Usage: kuractl backup FILE [--with-key] [OPTIONS]\n"
	"\n"
	"Write a consistent copy of the state directory to FILE (new, mode 0600, made whole\n"
	"or not at all; an existing file or a symbolic link there is refused), while kurad\n"
	"runs or not: the store by SQLite's online backup (one snapshot, kurad keeps\n"
	"writing), then the audit log, its state and start point (holding every record before\n"
	"the snapshot, and perhaps a few after), the TPM2 blob if the master key is sealed,\n"
	"and a manifest (format, kura version, time, store revision, the audit log's last\n"
	"seq and MAC, a BLAKE2b checksum of each part and of the whole).\n"
	"\n"
	"  --with-key   also the master key file (STATE_DIR/master.key, or --key-file F), so\n"
	"               that the backup opens on its own; only into a directory no one but\n"
	"               its owner (root or you) can write. Without it, a backup of a state\n"
	"               whose master key is a key file is useless without that key: keep the\n"
	"               key elsewhere, and give it to restore with --key-file. A passphrase\n"
	"               is never in a backup.\n"
	"\n"
	"The backup holds ciphertext, grants, settings and the audit log's current MAC key:\n"
	"keep it as you keep the state directory. Reads the state directly (no admin.sock).\n"
	"Options: --json, --state-dir, --key-file as for kuractl.\n"
	"Exit status: 0 written, 1 refused, 2 usage, 3 system error, 15 FILE in the way.\n";

static const char restore_usage[] =
	"Usage: kuractl restore FILE [--force] [--key-file F | --passphrase-file F] [OPTIONS]\n"
	"\n"
	"Bring a backup back into the state directory (--state-dir, default " KURA_STATE_DIR ").\n"
	"The whole file is checked first (its checksum, the manifest, each part's checksum);\n"
	"a damaged or cut-off backup is refused with nothing written. The state is built\n"
	"beside the target, synced, checked (the master key opens the store, the audit log's\n"
	"tail verifies) and then moved into place in one rename.\n"
	"\n"
	"Refuses a state that is in use (a kurad holds its kurad.lock, or a kurad or kuractl\n"
	"its audit log), and a non-empty state directory unless --force; with --force the\n"
	"old one is kept, renamed to STATE_DIR.replaced-TIME, for you to remove.\n"
	"  --key-file F         the master key, for a backup made without --with-key: it is\n"
	"                       checked against the store and copied to STATE_DIR/master.key\n"
	"  --passphrase-file F  check the passphrase opens the restored store\n"
	"\n"
	"Start kurad on the restored state afterwards; `kuractl audit verify` checks its log.\n"
	"Options: --json, --state-dir as for kuractl.\n"
	"Exit status: 0 restored, 1 refused, 2 usage, 3 system error, 4 the backup is damaged.\n";

/* One part of a backup: its name in the state directory and where its bytes come from. */
struct part {
	char name[64];
	char src[PATH_MAX];       /* a file to copy (NULL data) */
	struct kura_secbuf *data; /* key material, from guarded memory */
	uint64_t size;
	mode_t mode;
	uint8_t hash[HASH_BYTES];
};

static void hex(const uint8_t *b, size_t n, char *out)
{
	sodium_bin2hex(out, n * 2 + 1, b, n);
}

static int write_all(int fd, const void *p, size_t n, crypto_generichash_state *h)
{
	const uint8_t *b = p;

	if (h)
		crypto_generichash_update(h, b, n);
	while (n) {
		ssize_t w = write(fd, b, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

/* A file's size and checksum (it is copied again later: it must not change meanwhile, and is
 * only in our private temporary directory, or the master key file). */
static int hash_file(struct part *p)
{
	crypto_generichash_state h;
	_cleanup_close_ int fd = open(p->src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	uint8_t buf[65536];
	ssize_t n;

	if (fd < 0)
		return -errno;
	crypto_generichash_init(&h, NULL, 0, HASH_BYTES);
	p->size = 0;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		crypto_generichash_update(&h, buf, (size_t)n);
		p->size += (uint64_t)n;
	}
	if (n < 0)
		return -errno;
	crypto_generichash_final(&h, p->hash, HASH_BYTES);
	return 0;
}

static int copy_file(int dirfd_from, const char *from, int dirfd_to, const char *to)
{
	_cleanup_close_ int in = openat(dirfd_from, from, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	_cleanup_close_ int out = -1;
	uint8_t buf[65536];
	ssize_t n;
	int r = 0;

	if (in < 0)
		return -errno;
	out = openat(dirfd_to, to, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out < 0)
		return -errno;
	while (r == 0 && (n = read(in, buf, sizeof(buf))) > 0)
		r = write_all(out, buf, (size_t)n, NULL);
	if (r == 0 && n < 0)
		r = -errno;
	if (r == 0 && fsync(out) < 0)
		r = -errno;
	return r;
}

static int read_small(int dirfd, const char *name, char *buf, size_t size, size_t *ret_len)
{
	_cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, size);
	if (n < 0)
		return -errno;
	*ret_len = (size_t)n;
	return 0;
}

/* The files that change when the log's shape does (a key epoch, a rotation, an archive): its
 * state and its start point, one after the other in buf. */
static int read_marks(int dirfd, char *buf, size_t size, size_t *ret_len)
{
	size_t a = 0, b = 0;
	int r = read_small(dirfd, "state", buf, size / 2, &a);

	if (r == 0) {
		r = read_small(dirfd, "start", buf + a, size - a, &b);
		if (r == -ENOENT)
			r = 0, b = 0;
	}
	*ret_len = a + b;
	return r;
}

static bool is_log_name(const char *n)
{
	size_t len = strlen(n);

	return strncmp(n, "audit-", 6) == 0 && len == 18 && strcmp(n + 12, ".jsonl") == 0 &&
		strspn(n + 6, "0123456789") == 6;
}

/*
 * The audit log copied into tmp/audit: its state, then its files, then the state again; a
 * state that changed meanwhile (a key epoch closed, a file rotated) means once more. Then the
 * copy is opened as kurad would open it, which verifies its tail under the current key and
 * cuts a line caught half-written: its last seq and MAC are what the backup holds.
 */
static int copy_audit(const char *state_dir, const char *tmp, uint64_t *ret_seq,
	uint8_t ret_mac[KURA_AUDIT_MAC_BYTES], char *why, size_t why_size)
{
	struct kura_audit_opts o = KURA_AUDIT_OPTS_DEFAULT;
	char src[PATH_MAX], dst[PATH_MAX];
	_cleanup_close_ int from = -1, to = -1;
	struct kura_audit *a = NULL;
	int r = -EAGAIN;

	snprintf(src, sizeof(src), "%s/audit", state_dir);
	snprintf(dst, sizeof(dst), "%s/audit", tmp);
	from = open(src, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (from < 0) {
		snprintf(why, why_size, "cannot open the audit log %s: %s", src, strerror(errno));
		return -errno;
	}
	if (mkdir(dst, 0700) < 0 ||
		(to = open(dst, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return -errno;
	for (int attempt = 0; attempt < 20 && r == -EAGAIN; attempt++) {
		char s1[8192], s2[8192];
		size_t l1 = 0, l2 = 0;
		DIR *d;
		struct dirent *de;
		int fd = dup(from);

		r = read_marks(from, s1, sizeof(s1), &l1);
		if (r == 0)
			r = copy_file(from, "state", to, "state");
		/* Where the log begins once archived (kura_audit_archive): verify needs it. */
		if (r == 0 && faccessat(from, "start", F_OK, AT_SYMLINK_NOFOLLOW) == 0)
			r = copy_file(from, "start", to, "start");
		if (r == 0 && (fd < 0 || !(d = fdopendir(fd)))) {
			r = -errno;
			if (fd >= 0)
				close(fd);
		} else if (r == 0) {
			rewinddir(d);
			while (r == 0 && (de = readdir(d)))
				if (is_log_name(de->d_name))
					r = copy_file(from, de->d_name, to, de->d_name);
			closedir(d);
		} else if (fd >= 0) {
			close(fd);
		}
		if (r == 0)
			r = read_marks(from, s2, sizeof(s2), &l2);
		if (r == 0 && (l1 != l2 || memcmp(s1, s2, l1) != 0))
			r = -EAGAIN;
	}
	if (r < 0) {
		snprintf(why, why_size, "cannot copy the audit log %s: %s", src,
			r == -EAGAIN ? "it kept changing" : strerror(-r));
		return r;
	}
	r = kura_audit_open(dst, &o, &a);
	if (r < 0) {
		snprintf(why, why_size,
			"the copy of the audit log does not open (%s): run kuractl audit verify",
			strerror(-r));
		return r;
	}
	kura_audit_last(a, ret_seq, ret_mac);
	kura_audit_close(a);
	return 0;
}

static int add_part(struct part **parts, size_t *n, const char *name, const char *src,
	struct kura_secbuf *data, mode_t mode)
{
	struct part *m = realloc(*parts, (*n + 1) * sizeof(*m));

	if (!m)
		return -ENOMEM;
	*parts = m;
	m = &m[(*n)++];
	*m = (struct part){ .data = data, .mode = mode };
	snprintf(m->name, sizeof(m->name), "%s", name);
	if (src)
		snprintf(m->src, sizeof(m->src), "%s", src);
	if (data) {
		m->size = data->len;
		crypto_generichash(m->hash, HASH_BYTES, data->data, data->len, NULL, 0);
		return 0;
	}
	return hash_file(m);
}

static int cmp_part(const void *a, const void *b)
{
	return strcmp(((const struct part *)a)->name, ((const struct part *)b)->name);
}

int ctl_backup(struct ctl *c, int argc, char **argv)
{
	enum { OPT_WITH_KEY = 0x300 };
	static const struct option opts[] = {
		{ "with-key", no_argument, NULL, OPT_WITH_KEY },
		CTL_COMMON_OPTIONS,
	};
	char tmp[] = "/tmp/kuractl-backup-XXXXXX", path[PATH_MAX], why[4400], when[32];
	char mac64[KURA_BASE64_LEN(KURA_AUDIT_MAC_BYTES) + 1], hx[HASH_BYTES * 2 + 1];
	uint8_t mac[KURA_AUDIT_MAC_BYTES], whole[HASH_BYTES];
	struct ctl_newfile f = { .fd = -1, .dirfd = -1 };
	_cleanup_secbuf_ struct kura_secbuf *key = NULL;
	struct part *parts = NULL;
	crypto_generichash_state h;
	const char *file, *master = "passphrase";
	json_t *man = NULL, *files;
	char *text = NULL;
	bool with_key = false, made_tmp = false;
	size_t n = 0;
	uint64_t seq = 0;
	int64_t rev = 0;
	struct stat st;
	int opt, r;

	while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (ctl_common_option(c, opt, optarg))
			continue;
		switch (opt) {
		case 'h':
			fputs(backup_usage, stdout);
			return KURA_EXIT_OK;
		case OPT_WITH_KEY:
			with_key = true;
			break;
		default:
			return ctl_bad_option(opt, argv);
		}
	}
	if (optind + 1 != argc)
		return ctl_usage("backup takes one FILE");
	file = argv[optind];
	if (c->master.kind == KURA_MASTER_PASSPHRASE)
		return ctl_usage("a passphrase is never in a backup: backup takes no "
				 "--passphrase-file");

	/* The target first: a path that cannot take it is refused before any work. */
	r = ctl_newfile_begin(file, with_key, &f, why, sizeof(why));
	if (r < 0) {
		fprintf(stderr, "kuractl: %s\n", why);
		return r == -EEXIST || r == -EPERM ? KURA_EXIT_WRITE_REFUSED : KURA_EXIT_SYSTEM;
	}
	snprintf(path, sizeof(path), "%s/" KURA_STORE_FILE_NAME, c->state_dir);
	if (stat(path, &st) < 0) {
		snprintf(why, sizeof(why), "no store at %s: %s", path, strerror(errno));
		r = -errno;
		goto fail;
	}
	if (!mkdtemp(tmp)) {
		r = -errno;
		snprintf(why, sizeof(why), "cannot make a temporary directory: %s",
			strerror(errno));
		goto fail;
	}
	made_tmp = true;
	snprintf(path, sizeof(path), "%s/" KURA_STORE_FILE_NAME, tmp);
	{
		char db[PATH_MAX];

		snprintf(db, sizeof(db), "%s/" KURA_STORE_FILE_NAME, c->state_dir);
		r = kura_store_sqlite_backup(db, path, &rev);
		if (r < 0) {
			snprintf(why, sizeof(why), "cannot copy the store %s: %s", db,
				r == -EUCLEAN ? "it is not a kura store, or is damaged" :
						strerror(-r));
			goto fail;
		}
	}
	r = add_part(&parts, &n, KURA_STORE_FILE_NAME, path, NULL, 0600);
	if (r == 0)
		r = copy_audit(c->state_dir, tmp, &seq, mac, why, sizeof(why));
	if (r < 0)
		goto fail;
	{
		char ad[PATH_MAX];
		DIR *d;
		struct dirent *de;

		snprintf(ad, sizeof(ad), "%s/audit", tmp);
		d = opendir(ad);
		if (!d) {
			r = -errno;
			goto fail;
		}
		while (r == 0 && (de = readdir(d)))
			if (is_log_name(de->d_name) || strcmp(de->d_name, "state") == 0 ||
				strcmp(de->d_name, "start") == 0) {
				char name[64];

				snprintf(name, sizeof(name), "audit/%.40s", de->d_name);
				snprintf(path, sizeof(path), "%.3000s/%.40s", ad, de->d_name);
				r = add_part(&parts, &n, name, path, NULL, 0600);
			}
		closedir(d);
		if (r < 0)
			goto fail;
	}
	/* The master key: a TPM2 blob opens only on its TPM, so it always goes; a key file only
	 * when asked. */
	snprintf(path, sizeof(path), "%s/" KURA_MASTER_TPM2_NAME, c->state_dir);
	if (access(path, F_OK) == 0) {
		master = "tpm2";
		r = add_part(&parts, &n, KURA_MASTER_TPM2_NAME, path, NULL, 0400);
	} else {
		snprintf(path, sizeof(path), "%s", c->master.path ? c->master.path : "");
		if (!c->master.path)
			snprintf(path, sizeof(path), "%s/" KURA_MASTER_FILE_NAME, c->state_dir);
		if (access(path, F_OK) == 0)
			master = "file";
		if (with_key && strcmp(master, "file") != 0) {
			snprintf(why, sizeof(why),
				"--with-key: this state has no master key file (%s): its key is a "
				"passphrase, never backed up",
				path);
			r = -ENOENT;
			goto fail;
		}
		if (with_key) {
			r = kura_master_load_file(path, &key);
			if (r < 0) {
				snprintf(why, sizeof(why), "cannot read the master key %s: %s",
					path, strerror(-r));
				goto fail;
			}
			r = add_part(&parts, &n, KURA_MASTER_FILE_NAME, NULL, key, 0400);
		}
	}
	if (r < 0)
		goto fail;
	qsort(parts, n, sizeof(*parts), cmp_part);

	kura_rfc3339(kura_wall_s(), when);
	mac64[kura_base64_encode(mac, sizeof(mac), mac64)] = 0;
	files = json_array();
	for (size_t i = 0; i < n; i++) {
		hex(parts[i].hash, HASH_BYTES, hx);
		json_array_append_new(files,
			json_pack("{s:s, s:I, s:i, s:s}", "path", parts[i].name, "size",
				(json_int_t)parts[i].size, "mode", (int)parts[i].mode, "blake2b",
				hx));
	}
	man = json_pack("{s:i, s:s, s:s, s:s, s:I, s:{s:I, s:s, s:s}, s:s, s:b, s:o}", "format",
		FORMAT, "kura_version", KURA_VERSION, "created", when, "state_dir", c->state_dir,
		"store_revision", (json_int_t)rev, "audit", "seq", (json_int_t)seq, "mac", mac64,
		"covers",
		"every record written before the store snapshot (and perhaps a few after it)",
		"master", master, "with_key", with_key && key, "files", files);
	text = man ? json_dumps(man, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII) : NULL;
	if (!text) {
		r = -ENOMEM;
		goto fail;
	}
	crypto_generichash_init(&h, NULL, 0, HASH_BYTES);
	r = write_all(f.fd, MAGIC, strlen(MAGIC), &h);
	if (r == 0)
		r = write_all(f.fd, text, strlen(text), &h);
	if (r == 0)
		r = write_all(f.fd, "\n", 1, &h);
	for (size_t i = 0; r == 0 && i < n; i++) {
		if (parts[i].data) {
			r = write_all(f.fd, parts[i].data->data, parts[i].data->len, &h);
			continue;
		}
		{
			_cleanup_close_ int in = open(parts[i].src,
				O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
			uint8_t buf[65536], check[HASH_BYTES];
			crypto_generichash_state ph;
			uint64_t got = 0;
			ssize_t k;

			if (in < 0) {
				r = -errno;
				break;
			}
			crypto_generichash_init(&ph, NULL, 0, HASH_BYTES);
			while (r == 0 && (k = read(in, buf, sizeof(buf))) > 0) {
				crypto_generichash_update(&ph, buf, (size_t)k);
				got += (uint64_t)k;
				r = write_all(f.fd, buf, (size_t)k, &h);
			}
			crypto_generichash_final(&ph, check, HASH_BYTES);
			if (r == 0 &&
				(got != parts[i].size || memcmp(check, parts[i].hash, HASH_BYTES)))
				r = -ESTALE; /* our own copy changed under us */
		}
	}
	if (r == 0) {
		char trailer[16 + HASH_BYTES * 2];

		crypto_generichash_final(&h, whole, HASH_BYTES);
		hex(whole, HASH_BYTES, hx);
		snprintf(trailer, sizeof(trailer), "blake2b %s\n", hx);
		r = write_all(f.fd, trailer, strlen(trailer), NULL);
	}
	if (r == 0)
		r = ctl_newfile_commit(&f);
	if (r < 0) {
		snprintf(why, sizeof(why), "cannot write %s: %s", file, strerror(-r));
		goto fail;
	}
	if (c->json) {
		json_object_set_new(man, "file", json_string(file));
		json_object_set_new(man, "checksum", json_string(hx));
		r = ctl_print_json(json_incref(man));
	} else {
		const char *keynote = "a passphrase (not included)";

		if (strcmp(master, "tpm2") == 0)
			keynote = "sealed to this host's TPM2 (its blob included)";
		else if (with_key)
			keynote = "included (--with-key)";
		else if (strcmp(master, "file") == 0)
			keynote = "NOT included: keep the key file; restore needs --key-file";
		printf("backed up %s to %s: store revision %lld, audit log up to seq %llu, %zu "
		       "parts; master key %s\n",
			c->state_dir, file, (long long)rev, (unsigned long long)seq, n, keynote);
		r = KURA_EXIT_OK;
	}
	goto out;
fail:
	ctl_newfile_abort(&f);
	fprintf(stderr, "kuractl: %s; nothing was written\n", why[0] ? why : strerror(-r));
	r = kura_outcome_exit(r);
out:
	ctl_newfile_abort(&f);
	kura_json_free(text);
	json_decref(man);
	free(parts);
	if (made_tmp)
		ctl_rmtree(tmp);
	return r;
}

/* --- restore --- */

/* The manifest's name for a part, if it is one a state directory has (no other path). */
static bool part_name_ok(const char *name)
{
	if (strcmp(name, KURA_STORE_FILE_NAME) == 0 || strcmp(name, KURA_MASTER_FILE_NAME) == 0 ||
		strcmp(name, KURA_MASTER_TPM2_NAME) == 0 || strcmp(name, "audit/state") == 0 ||
		strcmp(name, "audit/start") == 0)
		return true;
	return strncmp(name, "audit/", 6) == 0 && is_log_name(name + 6);
}

static int damaged(char *why, size_t size, const char *file, const char *what)
{
	snprintf(why, size, "%s is not a sound backup: %s; nothing was restored", file, what);
	return -EBADMSG;
}

/*
 * The whole file checked: magic, manifest, each part's size and checksum, the trailer's
 * checksum over all before it. *ret_manifest and *ret_data_off (where the parts start).
 */
static int check_backup(int fd, const char *file, json_t **ret_manifest, off_t *ret_data_off,
	char *why, size_t why_size)
{
	_cleanup_free_ char *head = malloc(MANIFEST_MAX + 64);
	crypto_generichash_state h;
	uint8_t want[HASH_BYTES], got[HASH_BYTES], buf[65536];
	char trailer[16 + HASH_BYTES * 2 + 1], hx[HASH_BYTES * 2 + 1];
	json_t *man, *files;
	struct stat st;
	size_t hl, nl;
	uint64_t total = 0, pos;
	ssize_t k;
	char *end;

	if (!head)
		return -ENOMEM;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return damaged(why, why_size, file, "not a regular file");
	k = pread(fd, head, MANIFEST_MAX + 64, 0);
	if (k < 0)
		return -errno;
	hl = (size_t)k;
	if (hl < strlen(MAGIC) || memcmp(head, MAGIC, strlen(MAGIC)) != 0)
		return damaged(why, why_size, file, "it does not start as a kura backup does");
	end = memchr(head + strlen(MAGIC), '\n', hl - strlen(MAGIC));
	if (!end)
		return damaged(why, why_size, file, "its manifest is cut off");
	nl = (size_t)(end - head) + 1;
	man = json_loadb(head + strlen(MAGIC), nl - 1 - strlen(MAGIC), JSON_REJECT_DUPLICATES,
		NULL);
	files = json_object_get(man, "files");
	if (!json_is_object(man) || !json_is_array(files) ||
		json_integer_value(json_object_get(man, "format")) != FORMAT) {
		json_decref(man);
		return damaged(why, why_size, file,
			"its manifest is not one this kuractl reads (format 1)");
	}
	for (size_t i = 0; i < json_array_size(files); i++) {
		json_t *p = json_array_get(files, i);
		const char *name = json_string_value(json_object_get(p, "path"));
		json_int_t sz = json_integer_value(json_object_get(p, "size"));
		const char *hs = json_string_value(json_object_get(p, "blake2b"));

		if (!name || !part_name_ok(name) || sz < 0 || !hs || strlen(hs) != HASH_BYTES * 2) {
			json_decref(man);
			return damaged(why, why_size, file, "its manifest names a part badly");
		}
		total += (uint64_t)sz;
	}
	/* The trailer: "blake2b HEX\n", over everything before it. */
	if ((uint64_t)st.st_size != nl + total + 8 + HASH_BYTES * 2 + 1) {
		json_decref(man);
		return damaged(why, why_size, file,
			"its size does not match its manifest (cut off?)");
	}
	crypto_generichash_init(&h, NULL, 0, HASH_BYTES);
	for (pos = 0; pos < nl + total;) {
		size_t want_n = nl + total - pos < sizeof(buf) ? (size_t)(nl + total - pos) :
								 sizeof(buf);

		k = pread(fd, buf, want_n, (off_t)pos);
		if (k <= 0) {
			json_decref(man);
			return k < 0 ? -errno : -EIO;
		}
		crypto_generichash_update(&h, buf, (size_t)k);
		pos += (uint64_t)k;
	}
	crypto_generichash_final(&h, got, HASH_BYTES);
	k = pread(fd, trailer, 8 + HASH_BYTES * 2 + 1, (off_t)pos);
	trailer[k > 0 ? k : 0] = 0;
	if (k != 8 + HASH_BYTES * 2 + 1 || strncmp(trailer, "blake2b ", 8) != 0 ||
		sodium_hex2bin(want, sizeof(want), trailer + 8, HASH_BYTES * 2, NULL, NULL, NULL) !=
			0 ||
		sodium_memcmp(want, got, HASH_BYTES) != 0) {
		hex(got, HASH_BYTES, hx);
		json_decref(man);
		return damaged(why, why_size, file,
			"its checksum does not match its contents (damaged or altered)");
	}
	*ret_manifest = man;
	*ret_data_off = (off_t)nl;
	return 0;
}

/* Write each part into dir (new, ours), checking each one's checksum as it goes. */
static int unpack(int fd, off_t off, const json_t *files, const char *dir, char *why,
	size_t why_size)
{
	char p[2 * PATH_MAX];
	int r = 0;

	snprintf(p, sizeof(p), "%s/audit", dir);
	if (mkdir(p, 0700) < 0)
		return -errno;
	for (size_t i = 0; r == 0 && i < json_array_size(files); i++) {
		json_t *e = json_array_get(files, i);
		const char *name = json_string_value(json_object_get(e, "path"));
		uint64_t left = (uint64_t)json_integer_value(json_object_get(e, "size"));
		bool key = strcmp(name, KURA_MASTER_FILE_NAME) == 0 ||
			strcmp(name, KURA_MASTER_TPM2_NAME) == 0;
		int mode = key ? 0400 : 0600;
		uint8_t buf[65536], got[HASH_BYTES], want[HASH_BYTES];
		crypto_generichash_state h;
		_cleanup_close_ int out = -1;

		snprintf(p, sizeof(p), "%s/%s", dir, name);
		out = open(p, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
		if (out < 0)
			return -errno;
		crypto_generichash_init(&h, NULL, 0, HASH_BYTES);
		while (r == 0 && left) {
			ssize_t k = pread(fd, buf, left < sizeof(buf) ? (size_t)left : sizeof(buf),
				off);

			if (k <= 0) {
				r = k < 0 ? -errno : -EIO;
				break;
			}
			off += k;
			left -= (uint64_t)k;
			r = write_all(out, buf, (size_t)k, &h);
		}
		crypto_generichash_final(&h, got, HASH_BYTES);
		if (r == 0 && fsync(out) < 0)
			r = -errno;
		if (r == 0 &&
			(sodium_hex2bin(want, sizeof(want),
				 json_string_value(json_object_get(e, "blake2b")), HASH_BYTES * 2,
				 NULL, NULL, NULL) != 0 ||
				sodium_memcmp(want, got, HASH_BYTES) != 0)) {
			snprintf(why, why_size, "part %s does not match its checksum", name);
			return -EBADMSG;
		}
	}
	return r;
}

/* Whether someone else holds the flock on dir/name (a file or a directory); if not, it is ours
 * now, through *ret_fd. */
static bool locked(const char *dir, const char *name, int *ret_fd)
{
	char p[PATH_MAX + 32];

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	*ret_fd = open(p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	return *ret_fd >= 0 && flock(*ret_fd, LOCK_EX | LOCK_NB) < 0;
}

/* Whether dir holds anything. */
static bool has_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	bool any = false;

	if (!d)
		return false;
	while (!any && (de = readdir(d)))
		any = strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
	closedir(d);
	return any;
}

static int fsync_path(const char *p)
{
	_cleanup_close_ int fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	return fd < 0 || fsync(fd) < 0 ? -errno : 0;
}

int ctl_restore(struct ctl *c, int argc, char **argv)
{
	enum { OPT_FORCE = 0x300 };
	static const struct option opts[] = {
		{ "force", no_argument, NULL, OPT_FORCE },
		CTL_COMMON_OPTIONS,
	};
	char target[PATH_MAX], tmp[PATH_MAX + 32], old[PATH_MAX + 64], p[PATH_MAX + 64];
	char why[4400] = "", when[32];
	_cleanup_close_ int fd = -1, lockfd = -1, kdlock = -1;
	_cleanup_secbuf_ struct kura_secbuf *key = NULL;
	struct kura_audit_opts ao = KURA_AUDIT_OPTS_DEFAULT;
	struct kura_master_source m = { 0 };
	struct kura_vault *v = NULL;
	struct kura_audit *a = NULL;
	struct kura_err err = { 0 };
	json_t *man = NULL;
	const char *file, *master, *keynote;
	bool force = false, made_tmp = false, exists, replaced = false;
	uint8_t mac[KURA_AUDIT_MAC_BYTES];
	uint64_t seq = 0;
	off_t off = 0;
	int opt, r;

	while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (ctl_common_option(c, opt, optarg))
			continue;
		switch (opt) {
		case 'h':
			fputs(restore_usage, stdout);
			return KURA_EXIT_OK;
		case OPT_FORCE:
			force = true;
			break;
		default:
			return ctl_bad_option(opt, argv);
		}
	}
	if (optind + 1 != argc)
		return ctl_usage("restore takes one FILE");
	file = argv[optind];
	if (c->master.kind == KURA_MASTER_PASSPHRASE && ctl_passphrase_tty(c->master.path))
		return KURA_EXIT_USAGE;

	fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		fprintf(stderr, "kuractl: cannot open %s: %s\n", file, strerror(errno));
		return KURA_EXIT_USAGE;
	}
	r = check_backup(fd, file, &man, &off, why, sizeof(why));
	if (r < 0)
		goto fail;
	master = json_string_value(json_object_get(man, "master")) ?: "";
	if (strcmp(master, "file") == 0 && !json_is_true(json_object_get(man, "with_key")) &&
		(c->master.kind != KURA_MASTER_FILE || !c->master.path)) {
		snprintf(why, sizeof(why),
			"%s was made without the master key (it is a key file): give it with "
			"--key-file F; nothing was restored",
			file);
		r = -ENOKEY;
		goto fail;
	}
	if (c->master.kind == KURA_MASTER_FILE && c->master.path) {
		r = kura_master_load_file(c->master.path, &key);
		if (r < 0) {
			snprintf(why, sizeof(why), "cannot use the key file %s: %s", c->master.path,
				strerror(-r));
			goto fail;
		}
	}

	/* The target: not in use, and empty unless --force. */
	if (!realpath(c->state_dir, target)) {
		if (errno != ENOENT || strlen(c->state_dir) >= sizeof(target)) {
			r = -errno;
			snprintf(why, sizeof(why), "state directory %s: %s", c->state_dir,
				strerror(errno));
			goto fail;
		}
		snprintf(target, sizeof(target), "%s", c->state_dir);
	}
	exists = access(target, F_OK) == 0;
	/* The locks of whoever works on this state now: kurad's on STATE_DIR/kurad.lock for as
	 * long as it runs (daemon.c), and its key-custody process's (or an offline kuractl's)
	 * on the audit log while it has the state open. Held here until the restore is done. */
	if (locked(target, "kurad.lock", &kdlock) || locked(target, "audit", &lockfd)) {
		snprintf(why, sizeof(why),
			"%s is in use: a kurad (or a kuractl) holds its lock; stop it first; "
			"nothing was restored",
			target);
		r = -EBUSY;
		goto fail;
	}
	if (exists && has_entries(target) && !force) {
		snprintf(why, sizeof(why),
			"%s is not empty: restore over it with --force (the old state is kept "
			"beside it); nothing was restored",
			target);
		r = -EEXIST;
		goto fail;
	}

	snprintf(tmp, sizeof(tmp), "%s.restore-XXXXXX", target);
	if (!mkdtemp(tmp)) {
		r = -errno;
		snprintf(why, sizeof(why), "cannot make a directory beside %s: %s", target,
			strerror(errno));
		goto fail;
	}
	made_tmp = true;
	r = unpack(fd, off, json_object_get(man, "files"), tmp, why, sizeof(why));
	if (r == 0 && key && !json_is_true(json_object_get(man, "with_key"))) {
		_cleanup_close_ int kf = -1;

		snprintf(p, sizeof(p), "%s/" KURA_MASTER_FILE_NAME, tmp);
		kf = open(p, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0400);
		r = kf < 0 ? -errno : kura_secbuf_write_fd(key, kf);
		if (r == 0 && fsync(kf) < 0)
			r = -errno;
	}
	if (r < 0) {
		if (!why[0])
			snprintf(why, sizeof(why), "cannot write %s: %s", tmp, strerror(-r));
		goto fail;
	}
	/* Checked as it will be used: the master key opens the store, the log's tail verifies. */
	m = c->master;
	if (m.kind == KURA_MASTER_FILE)
		m.path = NULL; /* the copy in the restored state */
	keynote = "opens the store";
	if (strcmp(master, "passphrase") == 0 && c->master.kind != KURA_MASTER_PASSPHRASE) {
		keynote = "a passphrase: not checked (give --passphrase-file to check it)";
	} else {
		r = kura_vault_open(tmp, &m, 0, &v, &err);
		kura_vault_close(v);
		if (r == -ENODEV && strcmp(master, "tpm2") == 0) {
			keynote = "sealed to a TPM2 that is not here: not checked";
			r = 0;
		}
		if (r < 0) {
			snprintf(why, sizeof(why), "the restored store does not open: %s",
				err.msg[0] ? err.msg : strerror(-r));
			goto fail;
		}
	}
	snprintf(p, sizeof(p), "%s/audit", tmp);
	r = kura_audit_open(p, &ao, &a);
	if (r == 0)
		kura_audit_last(a, &seq, mac);
	kura_audit_close(a);
	if (r < 0) {
		snprintf(why, sizeof(why), "the restored audit log does not open: %s",
			r == -EBADMSG ? "its tail does not verify" : strerror(-r));
		goto fail;
	}
	r = fsync_path(tmp);

	/* Into place in one step; an old state is kept beside it. */
	if (r == 0 && exists) {
		kura_rfc3339(kura_wall_s(), when);
		snprintf(old, sizeof(old), "%s.replaced-%s", target, when);
		if (renameat2(AT_FDCWD, tmp, AT_FDCWD, target, RENAME_EXCHANGE) < 0 ||
			rename(tmp, old) < 0)
			r = -errno;
		else
			replaced = has_entries(old);
		if (r == 0 && !replaced)
			ctl_rmtree(old);
	} else if (r == 0 && rename(tmp, target) < 0) {
		r = -errno;
	}
	if (r == 0) {
		made_tmp = false;
		snprintf(p, sizeof(p), "%s", target);
		char *slash = strrchr(p, '/');

		if (slash && slash != p)
			*slash = 0;
		(void)fsync_path(slash == p ? "/" : p);
	}
	if (r < 0) {
		snprintf(why, sizeof(why), "cannot move the restored state into %s: %s", target,
			strerror(-r));
		goto fail;
	}
	if (c->json) {
		json_object_set_new(man, "restored_to", json_string(target));
		if (replaced)
			json_object_set_new(man, "replaced", json_string(old));
		json_object_set_new(man, "master_key", json_string(keynote));
		r = ctl_print_json(json_incref(man));
	} else {
		printf("restored %s from %s (taken %s by kura %s): store revision %lld, audit log "
		       "up to seq %llu; master key (%s) %s\n",
			target, file, json_string_value(json_object_get(man, "created")) ?: "?",
			json_string_value(json_object_get(man, "kura_version")) ?: "?",
			(long long)json_integer_value(json_object_get(man, "store_revision")),
			(unsigned long long)seq, master, keynote);
		if (replaced)
			printf("the state that was there is kept in %s\n", old);
		r = KURA_EXIT_OK;
	}
	goto out;
fail:
	fprintf(stderr, "kuractl: %s\n", why[0] ? why : strerror(-r));
	if (r == -EBADMSG)
		r = KURA_EXIT_INTEGRITY;
	else
		r = kura_outcome_exit(r);
out:
	if (made_tmp)
		ctl_rmtree(tmp);
	json_decref(man);
	return r;
}

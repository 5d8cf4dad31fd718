/* The vault: state directory layout, init and unlock, and the key operations (rotate, rekey,
 * status). Holds the master key and KEKs only through keys/ (guarded memory). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "config.h"
#include "audit-event.h"
#include "audit.h"
#include "json.h"
#include "records.h"
#include "tpm2.h"

#define CAS_RETRIES 8
#define PAGE 1024

int kura_err_set(struct kura_err *err, int r, const char *fmt, ...)
{
	va_list ap;

	if (err) {
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	return r;
}

static const char *const master_kinds[] = {
	[KURA_MASTER_FILE] = "file",
	[KURA_MASTER_PASSPHRASE] = "passphrase",
	[KURA_MASTER_TPM2] = "tpm2",
};

const char *kura_master_kind_name(enum kura_master_kind kind)
{
	return (size_t)kind < ELEMENTSOF(master_kinds) ? master_kinds[kind] : "file";
}

int kura_master_kind_parse(const char *name, enum kura_master_kind *ret)
{
	for (size_t i = 0; name && i < ELEMENTSOF(master_kinds); i++)
		if (strcmp(name, master_kinds[i]) == 0) {
			*ret = (enum kura_master_kind)i;
			return 0;
		}
	return -EINVAL;
}

int store_err(struct kura_vault *v, struct kura_err *err, int r, const char *what)
{
	const char *detail = kura_store_errmsg(v ? v->store : NULL);

	switch (r) {
	case -ENOSPC:
		return kura_err_set(err, r, "%s: no space left on device; nothing was changed",
			what);
	case -EUCLEAN:
	case -EPROTO:
		return kura_err_set(err, r, "%s: the store is corrupt%s%s", what,
			*detail ? ": " : "", detail);
	case -EBUSY:
		return kura_err_set(err, r, "%s: the store stayed locked by another process", what);
	default:
		return kura_err_set(err, r, "%s: %s%s%s", what, strerror(-r), *detail ? ": " : "",
			detail);
	}
}

/* Best effort: old pages (the keyring under a retired key) leave the write-ahead log now, or
 * when the last other reader closes the store. */
static void purge(struct kura_vault *v)
{
	(void)kura_store_purge(v->store);
}

static char *path_join(const char *dir, const char *name)
{
	char *p;

	return asprintf(&p, "%s/%s", dir, name) < 0 ? NULL : p;
}

struct kura_store *kura_vault_store(struct kura_vault *v)
{
	return v->store;
}

int kura_vault_fingerprint(struct kura_vault *v, const struct kura_secbuf *value,
	char out[KURA_FINGERPRINT_TEXT])
{
	uint8_t fp[KURA_FINGERPRINT_BYTES];
	int r = kura_keyring_fingerprint(v->keyring, value->data, value->len, fp);

	if (r < 0)
		return r;
	memcpy(out, "b2:", 3);
	sodium_bin2hex(out + 3, KURA_FINGERPRINT_TEXT - 3, fp, sizeof(fp));
	return 0;
}

size_t kura_vault_max_value(const struct kura_vault *v)
{
	return (size_t)v->max_value;
}

void kura_vault_close(struct kura_vault *v)
{
	if (!v)
		return;
	kura_store_close(v->store);
	kura_secbuf_free(v->master);
	kura_keyring_free(v->keyring);
	keyring_record_done(&v->kr);
	free(v->dir);
	free(v);
}

static inline void vault_closep(struct kura_vault **v)
{
	kura_vault_close(*v);
}

/* A key or passphrase file refused, or unreadable, as one sentence. */
static int file_error(struct kura_err *err, int r, const char *path)
{
	switch (r) {
	case -ELOOP:
		return kura_err_set(err, r,
			"%s is a symbolic link; refusing to read a key through one", path);
	case -EMEDIUMTYPE:
		return kura_err_set(err, r, "%s is not a regular file", path);
	case -EPERM:
		return kura_err_set(err, r,
			"%s must be owned by this user and not readable or writable by group or "
			"others (chmod 400)",
			path);
	case -EMSGSIZE:
		return kura_err_set(err, r, "key file %s must hold exactly 32 bytes", path);
	case -ENODATA:
		return kura_err_set(err, r, "passphrase file %s is empty", path);
	case -EFBIG:
		return kura_err_set(err, r, "passphrase file %s is longer than 4096 bytes", path);
	default:
		return kura_err_set(err, r, "cannot read %s: %s", path, strerror(-r));
	}
}

/* A TPM2 failure (sealing or unsealing the blob at path, through tcti) as one sentence. */
static int tpm2_error(struct kura_err *err, int r, const char *path, const char *tcti)
{
	const char *at = tcti ? tcti : KURA_TPM2_TCTI_DEFAULT;

	switch (r) {
	case -ENODEV:
		return kura_err_set(err, r, "no TPM reachable at %s (for %s)", at, path);
	case -EKEYREJECTED:
		return kura_err_set(err, r,
			"the TPM at %s refuses %s: it was sealed to another TPM (a state copied "
			"from another host, or this TPM was cleared)",
			at, path);
	case -EBADMSG:
		return kura_err_set(err, r, "%s is damaged (not a whole kura TPM2 blob)", path);
	case -EACCES:
		return kura_err_set(err, r,
			"the TPM at %s has a password on its owner hierarchy; kura needs it "
			"empty (for %s)",
			at, path);
	case -EIO:
		return kura_err_set(err, r, "the TPM at %s failed a command (for %s)", at, path);
	case -EINVAL:
		return kura_err_set(err, r,
			"a TCTI (--tpm2-device, \"tcti\") must be device[:PATH], "
			"swtpm[:host=H,port=P] or mssim[:...], at most %u bytes",
			KURA_TPM2_TCTI_MAX);
	case -EEXIST:
		return kura_err_set(err, r, "%s already exists", path);
	case -EPROTONOSUPPORT:
		return kura_err_set(err, -EOPNOTSUPP,
			"kurad makes no network connection from the process that holds the keys, "
			"and %s is reached over TCP: stop kurad and run this with kuractl (offline), "
			"or use a TPM device (device:PATH)",
			at);
	default:
		return file_error(err, r, path);
	}
}

/* The key sealed in the blob at path (STATE/master.tpm2 or a rekey's new one). */
static int unseal(const char *path, struct kura_secbuf **ret, struct kura_err *err)
{
	_cleanup_free_ char *tcti = NULL;
	int r = kura_tpm2_unseal(path, ret, &tcti);

	return r < 0 ? tpm2_error(err, r, path, tcti) : 0;
}

/* The master key named by m, for a store whose keyring says `kind` (and kdf). */
static int load_master(const char *dir, const struct kura_master_source *m,
	enum kura_master_kind kind, const struct kura_kdf *kdf, struct kura_secbuf **ret,
	struct kura_err *err)
{
	_cleanup_secbuf_ struct kura_secbuf *pass = NULL;
	_cleanup_free_ char *def = NULL;
	const char *path;
	int r;

	if (kind == KURA_MASTER_TPM2) {
		if (m->kind != KURA_MASTER_TPM2 && (m->path || m->kind != KURA_MASTER_FILE))
			return kura_err_set(err, -ENOKEY,
				"this store's master key is sealed to the TPM2 (%s/%s): drop "
				"--key-file and --passphrase-file",
				dir, KURA_MASTER_TPM2_NAME);
		def = path_join(dir, KURA_MASTER_TPM2_NAME);
		return def ? unseal(def, ret, err) : -ENOMEM;
	}
	if (kind == KURA_MASTER_PASSPHRASE) {
		if (m->kind != KURA_MASTER_PASSPHRASE || !m->path)
			return kura_err_set(err, -ENOKEY,
				"this store's master key is derived from a passphrase: give "
				"--passphrase-file FILE");
		r = kura_master_read_passphrase(m->path, &pass);
		if (r < 0)
			goto file_error;
		r = kura_master_derive(pass, kdf, ret);
		if (r < 0)
			return kura_err_set(err, r, "cannot derive the master key: %s",
				strerror(-r));
		return 0;
	}
	if (m->kind == KURA_MASTER_PASSPHRASE)
		return kura_err_set(err, -ENOKEY,
			"this store's master key is a key file, not a passphrase: drop "
			"--passphrase-file (or give --key-file FILE)");
	path = m->path;
	if (!path) {
		def = path_join(dir, KURA_MASTER_FILE_NAME);
		if (!def)
			return -ENOMEM;
		path = def;
	}
	r = kura_master_load_file(path, ret);
	if (r >= 0)
		return 0;
	m = &(struct kura_master_source){ .kind = KURA_MASTER_FILE, .path = path };
file_error:
	return file_error(err, r, m->path);
}

/* A keyring object holding every KEK of rec, unwrapped with master. */
static int unlock_keyring(const struct keyring_record *rec, const struct kura_secbuf *master,
	struct kura_keyring **ret, struct kura_err *err)
{
	_cleanup_keyring_ struct kura_keyring *kr = NULL;
	int r;

	r = kura_keyring_new(&kr);
	if (r < 0)
		return r;
	for (size_t i = 0; i < rec->n; i++) {
		r = kura_keyring_unwrap(kr, master, rec->keks[i].id, rec->keks[i].box,
			rec->keks[i].len);
		if (r == -EKEYREJECTED)
			return kura_err_set(err, r,
				"the master key does not open this store's keyring (KEK %u): wrong "
				"key file or passphrase, or the keyring was altered",
				rec->keks[i].id);
		if (r < 0)
			return kura_err_set(err, r == -EPROTO ? -EUCLEAN : r,
				"KEK %u in the keyring is malformed", rec->keks[i].id);
	}
	r = kura_keyring_set_current(kr, rec->current);
	if (r < 0)
		return kura_err_set(err, -EUCLEAN,
			"the keyring names KEK %u as current but has no "
			"such KEK",
			rec->current);
	r = kura_keyring_unwrap_record_key(kr, master, rec->record_box, rec->record_len);
	if (r == -EKEYREJECTED)
		return kura_err_set(err, r,
			"the master key does not open this store's record key: wrong key file or "
			"passphrase, or the keyring was altered");
	if (r < 0)
		return kura_err_set(err, r == -EPROTO ? -EUCLEAN : r,
			"the keyring's record key is malformed");
	*ret = TAKE_PTR(kr);
	return 0;
}

static int read_keyring(struct kura_vault *v, struct keyring_record *ret, int64_t *ret_rev,
	struct kura_err *err)
{
	struct kura_kv kv = { 0 };
	int r;

	r = kura_store_get(v->store, KEY_KEYRING, &kv);
	if (r == -ENOENT)
		return kura_err_set(err, -EUCLEAN, "the store has no keyring record");
	if (r < 0)
		return store_err(v, err, r, "cannot read the keyring");
	r = keyring_record_decode(kv.value, kv.len, ret);
	if (r == 0)
		*ret_rev = kv.mod_rev;
	kura_kv_done(&kv);
	if (r < 0)
		return kura_err_set(err, -EUCLEAN, "the keyring record is corrupt");
	return 0;
}

static int read_config(struct kura_vault *v, struct kura_err *err)
{
	_cleanup_json_ json_t *j = NULL;
	struct kura_kv kv = { 0 };
	int64_t max;
	int r;

	r = kura_store_get(v->store, KEY_CONFIG, &kv);
	if (r == -ENOENT)
		return kura_err_set(err, -EUCLEAN, "the store has no config record");
	if (r < 0)
		return store_err(v, err, r, "cannot read the store's config");
	r = kura_json_load(kv.value, kv.len, &j);
	v->config_rev = kv.mod_rev;
	kura_kv_done(&kv);
	if (r < 0 || kura_json_get_int(j, "max_value_size", 1, INT64_MAX, &max) < 0)
		return kura_err_set(err, -EUCLEAN, "the config record is corrupt");
	v->max_value = (uint64_t)max;
	return 0;
}

int vault_refresh_keyring(struct kura_vault *v, struct kura_err *err)
{
	struct keyring_record rec = { 0 };
	struct kura_keyring *kr = NULL;
	int64_t rev = 0; /* set whenever read_keyring succeeds; gcc -O3 cannot tell */
	int r;

	r = read_keyring(v, &rec, &rev, err);
	if (r < 0)
		return r;
	if (rev == v->keyring_rev && v->keyring) {
		keyring_record_done(&rec);
		return 0;
	}
	r = unlock_keyring(&rec, v->master, &kr, err);
	if (r < 0) {
		keyring_record_done(&rec);
		return r;
	}
	kura_keyring_free(v->keyring);
	keyring_record_done(&v->kr);
	v->keyring = kr;
	v->kr = rec;
	v->keyring_rev = rev;
	return 0;
}

static int open_store(const char *dir, unsigned flags, struct kura_store **ret,
	struct kura_err *err)
{
	_cleanup_free_ char *path = path_join(dir, KURA_STORE_FILE_NAME);
	struct kura_store *s = NULL;
	int r;

	if (!path)
		return -ENOMEM;
	r = kura_store_open_sqlite(path, flags, &s);
	if (r == -ENOENT && !(flags & KURA_STORE_CREATE))
		return kura_err_set(err, r, "no kura store in %s (run kuractl init first)", dir);
	if (r == -EUCLEAN)
		return kura_err_set(err, r, "%s is not a kura store or is corrupt", path);
	if (r == -EPROTONOSUPPORT)
		return kura_err_set(err, r,
			"%s was written by a newer kura (schema above %d); upgrade kuractl", path,
			kura_store_sqlite_schema_version());
	if (r < 0)
		return kura_err_set(err, r, "cannot open %s: %s", path, strerror(-r));
	*ret = s;
	return 0;
}

/*
 * A TPM2 rekey seals the new key into master.tpm2.new, commits the keyring under it, then
 * renames it over master.tpm2. Killed between the two, the keyring opens only with the new
 * blob: finish the rename here. r (the refusal) is returned when that is not what happened.
 */
static int finish_tpm2_rekey(struct kura_vault *v, int r)
{
	_cleanup_free_ char *next = path_join(v->dir, KURA_MASTER_TPM2_NAME ".new");
	_cleanup_free_ char *cur = path_join(v->dir, KURA_MASTER_TPM2_NAME);
	_cleanup_secbuf_ struct kura_secbuf *key = NULL;
	struct kura_keyring *kr = NULL;
	struct stat st;

	if (!next || !cur || lstat(next, &st) < 0 || kura_tpm2_unseal(next, &key, NULL) < 0 ||
		unlock_keyring(&v->kr, key, &kr, NULL) < 0)
		return r;
	(void)rename(next, cur); /* a read-only state still opens; the next writer renames */
	kura_secbuf_free(v->master);
	v->master = TAKE_PTR(key);
	v->keyring = kr;
	return 0;
}

int kura_vault_open(const char *dir, const struct kura_master_source *m, unsigned store_flags,
	struct kura_vault **ret, struct kura_err *err)
{
	_cleanup_(vault_closep) struct kura_vault *v = NULL;
	struct stat st;
	int r;

	if (stat(dir, &st) < 0 && errno == ENOENT)
		return kura_err_set(err, -ENOENT, "no kura state at %s (run kuractl init first)",
			dir);
	if (stat(dir, &st) < 0)
		return kura_err_set(err, -errno, "state directory %s: %s", dir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return kura_err_set(err, -ENOTDIR, "state directory %s is not a directory", dir);
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->dir = strdup(dir);
	if (!v->dir)
		return -ENOMEM;
	r = open_store(dir, store_flags, &v->store, err);
	if (r < 0)
		return r;
	r = read_config(v, err);
	if (r < 0)
		return r;
	r = read_keyring(v, &v->kr, &v->keyring_rev, err);
	if (r < 0)
		return r;
	r = load_master(dir, m, v->kr.master, &v->kr.kdf, &v->master, err);
	if (r < 0)
		return r;
	r = unlock_keyring(&v->kr, v->master, &v->keyring, err);
	if (r == -EKEYREJECTED && v->kr.master == KURA_MASTER_TPM2)
		r = finish_tpm2_rekey(v, r);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(v);
	return 0;
}

/* Prepare dir for a new state: create it 0700, or take an existing directory we own and
 * tighten it to 0700. Returns an fd on it, locked (flock) against a concurrent init, so two
 * of them never both create, or both clean up, the same files. *ret_created says whether we
 * made it. */
static int prepare_dir(const char *dir, bool *ret_created, struct kura_err *err)
{
	_cleanup_close_ int fd = -1;
	struct stat st;

	*ret_created = false;
	if (mkdir(dir, 0700) == 0)
		*ret_created = true;
	else if (errno != EEXIST)
		return kura_err_set(err, -errno, "cannot create state directory %s: %s", dir,
			strerror(errno));
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return kura_err_set(err, -errno, "state directory %s: %s", dir,
			errno == ELOOP ? "is a symbolic link" : strerror(errno));
	if (fstat(fd, &st) < 0)
		return -errno;
	if (st.st_uid != geteuid())
		return kura_err_set(err, -EPERM, "state directory %s is owned by another user",
			dir);
	if ((st.st_mode & 07777) != 0700 && fchmod(fd, 0700) < 0)
		return kura_err_set(err, -errno, "cannot make %s mode 0700: %s", dir,
			strerror(errno));
	while (flock(fd, LOCK_EX) < 0)
		if (errno != EINTR)
			return kura_err_set(err, -errno, "cannot lock %s: %s", dir,
				strerror(errno));
	return TAKE_FD(fd);
}

int kura_vault_init(const char *dir, const struct kura_init_opts *o, struct kura_err *err)
{
	_cleanup_keyring_ struct kura_keyring *kr = NULL;
	_cleanup_secbuf_ struct kura_secbuf *master = NULL;
	_cleanup_free_ char *db = NULL, *keyfile = NULL, *db_wal = NULL, *db_shm = NULL;
	_cleanup_free_ uint8_t *kr_body = NULL, *cfg_body = NULL;
	_cleanup_close_ int dir_fd = -1;
	_cleanup_json_ json_t *cfg = NULL;
	struct keyring_record rec = { .current = 1, .next = 2 };
	struct kek_record kek = { .id = 1, .created = kura_wall_s() };
	struct kura_txn txn = { 0 };
	struct kura_store *store = NULL;
	bool made_dir = false, made_key = false, made_db = false, tried_audit = false;
	bool made_audit = false;
	char audit_dir[4096];
	size_t kr_len, cfg_len;
	struct stat st;
	int r;

	dir_fd = prepare_dir(dir, &made_dir, err);
	if (dir_fd < 0)
		return dir_fd;
	db = path_join(dir, KURA_STORE_FILE_NAME);
	db_wal = path_join(dir, KURA_STORE_FILE_NAME "-wal");
	db_shm = path_join(dir, KURA_STORE_FILE_NAME "-shm");
	keyfile = o->master.kind == KURA_MASTER_FILE && o->master.path ?
		strdup(o->master.path) :
		path_join(dir,
			o->master.kind == KURA_MASTER_TPM2 ? KURA_MASTER_TPM2_NAME :
							     KURA_MASTER_FILE_NAME);
	if (!db || !db_wal || !db_shm || !keyfile) {
		r = -ENOMEM;
		goto fail;
	}
	if (lstat(db, &st) == 0) {
		r = kura_err_set(err, -EEXIST, "%s already holds a kura store", dir);
		goto fail;
	}

	if (o->master.kind == KURA_MASTER_PASSPHRASE) {
		rec.master = KURA_MASTER_PASSPHRASE;
		kura_kdf_init(&rec.kdf);
		r = load_master(dir, &o->master, KURA_MASTER_PASSPHRASE, &rec.kdf, &master, err);
		if (r < 0)
			goto fail;
	} else if (o->master.kind == KURA_MASTER_TPM2) {
		rec.master = KURA_MASTER_TPM2;
		r = kura_tpm2_seal_new(keyfile, o->master.tcti, &master);
		if (r < 0) {
			tpm2_error(err, r, keyfile, o->master.tcti);
			goto fail;
		}
		made_key = true;
	} else {
		rec.master = KURA_MASTER_FILE;
		r = kura_master_create_file(keyfile, &master);
		if (r == 0) {
			made_key = true;
		} else if (r == -EEXIST) {
			/* An operator-provided key (escrowed, or from an HSM export) is used as is.
			 */
			r = load_master(dir, &(struct kura_master_source){ .path = keyfile },
				KURA_MASTER_FILE, NULL, &master, err);
			if (r < 0)
				goto fail;
		} else {
			r = kura_err_set(err, r, "cannot create key file %s: %s", keyfile,
				strerror(-r));
			goto fail;
		}
	}

	r = kura_keyring_new(&kr);
	if (r < 0)
		goto fail;
	r = kura_keyring_generate(kr, kek.id);
	if (r < 0)
		goto fail;
	r = kura_keyring_wrap(kr, master, kek.id, &kek.box, &kek.len);
	if (r < 0)
		goto fail;
	r = kura_keyring_generate_record_key(kr);
	if (r == 0)
		r = kura_keyring_wrap_record_key(kr, master, &rec.record_box, &rec.record_len);
	rec.keks = &kek;
	rec.n = 1;
	if (r == 0)
		r = keyring_record_encode(&rec, &kr_body, &kr_len);
	free(kek.box);
	free(rec.record_box);
	if (r < 0)
		goto fail;
	cfg = json_pack("{s:i, s:I}", "format", RECORD_FORMAT, "max_value_size",
		(json_int_t)(o->max_value_size ? o->max_value_size : KURA_MAX_VALUE_DEFAULT));
	if (!cfg) {
		r = -ENOMEM;
		goto fail;
	}
	r = kura_json_dump(cfg, &cfg_body, &cfg_len);
	if (r < 0)
		goto fail;

	r = open_store(dir, o->store_flags | KURA_STORE_CREATE, &store, err);
	if (r < 0)
		goto fail;
	made_db = true;
	if ((r = kura_txn_put(&txn, KEY_CONFIG, cfg_body, cfg_len, KURA_REV_ABSENT)) < 0 ||
		(r = kura_txn_put(&txn, KEY_KEYRING, kr_body, kr_len, KURA_REV_ABSENT)) < 0)
		goto fail;
	r = kura_store_commit(store, &txn, NULL);
	kura_txn_done(&txn);
	if (r < 0) {
		store_err(NULL, err, r, "cannot write the new store");
		goto fail;
	}
	if (o->ret_audit_key) {
		r = kura_audit_dir(dir, audit_dir, sizeof(audit_dir));
		tried_audit = r == 0;
		if (r == 0)
			r = kura_audit_create(audit_dir, o->ret_audit_key);
		if (r < 0) {
			kura_err_set(err, r, "cannot create the audit log %s: %s", audit_dir,
				r == -EEXIST ? "one is already there" : strerror(-r));
			goto fail;
		}
		made_audit = true;
		if (o->keep_audit_key) {
			r = o->keep_audit_key(*o->ret_audit_key, o->keep_audit_key_data, err);
			if (r < 0)
				goto fail;
		}
	}
	kura_store_close(store);
	return 0;

fail:
	kura_txn_done(&txn);
	kura_store_close(store);
	/* Leave nothing half-made behind: a store without its key, or a key without a store. */
	if (made_db) {
		(void)unlink(db);
		(void)unlink(db_wal);
		(void)unlink(db_shm);
	}
	if (made_key)
		(void)unlink(keyfile);
	if (tried_audit && (made_audit || r != -EEXIST)) {
		/* A failed kura_audit_create leaves at most its state file and temp behind. */
		char p[4200];

		snprintf(p, sizeof(p), "%s/state", audit_dir);
		(void)unlink(p);
		snprintf(p, sizeof(p), "%s/state.tmp", audit_dir);
		(void)unlink(p);
		(void)rmdir(audit_dir);
	}
	if (made_dir)
		(void)rmdir(dir);
	if (err && !err->msg[0])
		kura_err_set(err, r, "cannot initialise %s: %s", dir, strerror(-r));
	return r;
}

/* --- key rotation --- */

/* Call visit for every record under prefix, a page at a time. */
static int for_each(struct kura_vault *v, const char *prefix,
	int (*visit)(const struct kura_kv *kv, void *userdata), void *userdata,
	struct kura_err *err)
{
	_cleanup_free_ char *after = NULL;

	for (;;) {
		struct kura_kv_list page = { 0 };
		int r;

		r = kura_store_range(v->store, prefix, after, PAGE, &page);
		if (r < 0)
			return store_err(v, err, r, "cannot list the store");
		for (size_t i = 0; i < page.n && r == 0; i++)
			r = visit(&page.items[i], userdata);
		if (r != 0) {
			kura_kv_list_done(&page);
			return r;
		}
		free(after);
		after = NULL;
		if (page.n == PAGE) {
			after = strdup(page.items[page.n - 1].key);
			if (!after) {
				kura_kv_list_done(&page);
				return -ENOMEM;
			}
		}
		kura_kv_list_done(&page);
		if (!after)
			return 0;
	}
}

struct verify_ctx {
	struct kura_vault *v;
	struct kura_err *err;
};

/* A DEK that does not open would make rotation fail half-way: find it before changing anything. */
static int verify_dek(const struct kura_kv *kv, void *userdata)
{
	struct verify_ctx *c = userdata;
	_cleanup_free_ char *name = NULL;
	struct version_record ver;
	uint64_t version;
	int r;

	r = version_key_parse(kv->key, &name, &version);
	if (r < 0)
		return kura_err_set(c->err, r, "malformed version key %s", kv->key);
	r = version_record_decode(kv->value, kv->len, &ver);
	if (r < 0)
		return kura_err_set(c->err, -EUCLEAN,
			"the record of %s version %llu is corrupt; "
			"nothing was changed",
			name, (unsigned long long)version);
	r = kura_dek_check(c->v->keyring, name, version, &ver.sealed);
	kura_sealed_done(&ver.sealed);
	if (r == -EBADMSG || r == -EPROTO || r == -ENOKEY)
		return kura_err_set(c->err, -EBADMSG,
			"the DEK of %s version %llu does not open (%s); nothing was changed: "
			"restore the store, or destroy that version, and rotate again",
			name, (unsigned long long)version,
			r == -ENOKEY ? "its KEK is missing" : "altered");
	return r;
}

/* Commit v->kr modified by `edit` under a compare on the keyring's revision. */
static int commit_keyring(struct kura_vault *v, const struct keyring_record *rec,
	struct kura_txn *txn, struct kura_err *err)
{
	_cleanup_free_ uint8_t *body = NULL;
	int64_t rev;
	size_t len;
	int r;

	r = keyring_record_encode(rec, &body, &len);
	if (r < 0)
		return r;
	r = kura_txn_put(txn, KEY_KEYRING, body, len, v->keyring_rev);
	if (r < 0)
		return r;
	r = kura_store_commit(v->store, txn, &rev);
	if (r < 0)
		return r == -ESTALE ? r : store_err(v, err, r, "cannot write the keyring");
	v->keyring_rev = rev;
	return 0;
}

/* Phase one: a new KEK, current from now on, beside the old ones. From this commit on every
 * writer seals under the new KEK (their compare on the keyring's revision makes them reload),
 * so phase two cannot miss a DEK written under an old one. */
static int add_kek(struct kura_vault *v, struct kura_err *err)
{
	for (int attempt = 0; attempt < CAS_RETRIES; attempt++) {
		struct kura_txn txn = { 0 };
		struct keyring_record rec;
		struct kek_record *keks;
		uint32_t id;
		int r;

		r = vault_refresh_keyring(v, err);
		if (r < 0)
			return r;
		id = v->kr.next;
		if (id == UINT32_MAX)
			return kura_err_set(err, -EOVERFLOW, "no KEK ids left");
		/* A shallow copy: only the new entry's box is ours to free. */
		keks = calloc(v->kr.n + 1, sizeof(*keks));
		if (!keks)
			return -ENOMEM;
		memcpy(keks, v->kr.keks, v->kr.n * sizeof(*keks));
		keks[v->kr.n] = (struct kek_record){ .id = id, .created = kura_wall_s() };
		rec = v->kr;
		rec.keks = keks;
		rec.n = v->kr.n + 1;
		rec.current = id;
		rec.next = id + 1;
		r = kura_keyring_generate(v->keyring, id);
		if (r == 0)
			r = kura_keyring_wrap(v->keyring, v->master, id, &keks[v->kr.n].box,
				&keks[v->kr.n].len);
		if (r == 0)
			r = commit_keyring(v, &rec, &txn, err);
		kura_txn_done(&txn);
		free(keks[v->kr.n].box);
		free(keks);
		/* Either way, the keyring is rebuilt from what the store now holds. */
		(void)kura_keyring_drop(v->keyring, id);
		v->keyring_rev = -1;
		if (r == -ESTALE)
			continue;
		if (r < 0)
			return r;
		return vault_refresh_keyring(v, err);
	}
	return kura_err_set(err, -EBUSY, "the keyring kept changing under us; try again");
}

/* Phase two: rewrap every DEK not under the current KEK and drop the other KEKs, at once. */
static int rewrap_all(struct kura_vault *v, kura_progress_fn progress, void *userdata,
	uint64_t *ret_count, struct kura_err *err)
{
	uint32_t current = v->kr.current;
	struct kura_kv_list all = { 0 };
	struct kura_txn txn = { 0 };
	struct keyring_record rec;
	struct kek_record kept;
	uint64_t total = 0, done = 0;
	_cleanup_free_ char *after = NULL;
	int r;

	/* Read every version record first (paged), so the count is known for progress. */
	for (;;) {
		struct kura_kv_list page = { 0 };
		struct kura_kv *items;

		r = kura_store_range(v->store, PREFIX_VERSION, after, PAGE, &page);
		if (r < 0) {
			store_err(v, err, r, "cannot list secret versions");
			goto out;
		}
		if (page.n == 0)
			break;
		items = realloc(all.items, (all.n + page.n) * sizeof(*items));
		if (!items) {
			kura_kv_list_done(&page);
			r = -ENOMEM;
			goto out;
		}
		all.items = items;
		memcpy(all.items + all.n, page.items, page.n * sizeof(*items));
		all.n += page.n;
		free(page.items);
		free(after);
		after = strdup(all.items[all.n - 1].key);
		if (!after) {
			r = -ENOMEM;
			goto out;
		}
		if (page.n < PAGE)
			break;
	}
	total = all.n;

	for (size_t i = 0; i < all.n; i++) {
		struct kura_kv *kv = &all.items[i];
		struct version_record ver;
		_cleanup_free_ char *plain_name = NULL;
		_cleanup_free_ uint8_t *body = NULL;
		uint64_t version;
		size_t len;

		r = version_key_parse(kv->key, &plain_name, &version);
		if (r < 0) {
			r = kura_err_set(err, r, "malformed version key %s", kv->key);
			goto out;
		}
		r = version_record_decode(kv->value, kv->len, &ver);
		if (r < 0) {
			r = kura_err_set(err, -EUCLEAN, "version record %s is corrupt", kv->key);
			goto out;
		}
		if (ver.sealed.kek_id != current) {
			r = kura_rewrap(v->keyring, plain_name, version, &ver.sealed);
			if (r == 0)
				r = version_record_encode(&ver, &body, &len);
			if (r == 0)
				r = kura_txn_put(&txn, kv->key, body, len, kv->mod_rev);
			if (r < 0) {
				kura_sealed_done(&ver.sealed);
				/* Checked before the new KEK was added, so it changed since. */
				if (r == -EBADMSG || r == -ENOKEY || r == -EPROTO)
					r = kura_err_set(err, -EBADMSG,
						"the DEK of %s version %llu stopped opening during "
						"the rotation; KEK %u is current and the old KEKs "
						"remain, so every other secret still opens",
						plain_name, (unsigned long long)version, current);
				goto out;
			}
			done++;
		}
		kura_sealed_done(&ver.sealed);
		/* Drop each record's bytes as soon as it is handled to bound peak memory. */
		free(kv->value);
		kv->value = NULL;
		if (progress && (i % 1024 == 0 || i + 1 == all.n))
			progress(i + 1, total, userdata);
	}

	rec = v->kr;
	kept = (struct kek_record){ 0 };
	for (size_t i = 0; i < rec.n; i++)
		if (rec.keks[i].id == current)
			kept = rec.keks[i];
	rec.keks = &kept;
	rec.n = 1;
	r = commit_keyring(v, &rec, &txn, err);
	if (r < 0)
		goto out;
	purge(v);
	/* Committed: the old KEKs are gone from the store; wipe them from memory too. */
	for (size_t i = 0; i < v->kr.n; i++)
		if (v->kr.keks[i].id != current)
			(void)kura_keyring_drop(v->keyring, v->kr.keks[i].id);
	v->keyring_rev = -1;
	r = vault_refresh_keyring(v, err);
	if (r == 0)
		*ret_count = done;
out:
	kura_txn_done(&txn);
	kura_kv_list_done(&all);
	return r;
}

int kura_key_rotate(struct kura_vault *v, kura_progress_fn progress, void *userdata,
	uint64_t *ret_rewrapped, uint32_t *ret_kek, struct kura_err *err)
{
	int r;

	r = vault_refresh_keyring(v, err);
	if (r < 0)
		return r;
	r = for_each(v, PREFIX_VERSION, verify_dek, &(struct verify_ctx){ .v = v, .err = err },
		err);
	if (r < 0)
		return r;
	r = add_kek(v, err);
	if (r < 0)
		return r;
	for (int attempt = 0; attempt < CAS_RETRIES; attempt++) {
		r = rewrap_all(v, progress, userdata, ret_rewrapped, err);
		if (r == 0 && ret_kek)
			*ret_kek = v->kr.current;
		if (r != -ESTALE)
			return r;
		/* A secret changed while we worked; nothing was written; start the pass again. */
		r = vault_refresh_keyring(v, err);
		if (r < 0)
			return r;
	}
	return kura_err_set(err, -EBUSY,
		"secrets kept changing during the rotation; the new KEK is current and the old "
		"ones remain; run key rotate again");
}

/* A master.tpm2.new left by a killed rekey: the key in use (then it takes its place), or one
 * that never got its commit (then it goes). */
static int settle_next(struct kura_vault *v, const char *blob, const char *next,
	struct kura_err *err)
{
	_cleanup_secbuf_ struct kura_secbuf *key = NULL;
	struct stat st;

	if (lstat(next, &st) < 0)
		return 0;
	if (kura_tpm2_unseal(next, &key, NULL) == 0 && kura_secbuf_equal(key, v->master)) {
		if (rename(next, blob) < 0)
			return kura_err_set(err, -errno, "cannot rename %s to %s: %s", next, blob,
				strerror(errno));
		return 0;
	}
	return unlink(next) < 0 ?
		kura_err_set(err, -errno, "cannot remove the stale %s: %s", next, strerror(errno)) :
		0;
}

int kura_key_rekey(struct kura_vault *v, const struct kura_master_source *to, struct kura_err *err)
{
	_cleanup_secbuf_ struct kura_secbuf *master = NULL;
	_cleanup_free_ char *blob = NULL, *next = NULL;
	const char *made = to->path;
	struct kura_kdf kdf = { 0 };
	bool made_key = false;
	struct stat st;
	int r;

	if (to->kind != KURA_MASTER_TPM2 && !to->path)
		return kura_err_set(err, -EINVAL,
			"key.rekey: field \"path\" is missing: the new key file or passphrase file");
	if (to->kind != KURA_MASTER_TPM2 && to->tcti)
		return kura_err_set(err, -EINVAL, "key.rekey: field \"tcti\" is for kind \"tpm2\"");
	if (to->kind == KURA_MASTER_TPM2 && to->path)
		return kura_err_set(err, -EINVAL,
			"key.rekey: field \"path\" is not for kind \"tpm2\" (its key goes to "
			"STATE/" KURA_MASTER_TPM2_NAME ")");
	/* The new key once, before any retry: a passphrase on stdin can be read only once. */
	if (to->kind == KURA_MASTER_PASSPHRASE) {
		kura_kdf_init(&kdf);
		r = load_master(v->dir, to, KURA_MASTER_PASSPHRASE, &kdf, &master, err);
	} else if (to->kind == KURA_MASTER_TPM2) {
		/* Beside a blob already there (this store's, or an older key's), the new one
		 * waits as master.tpm2.new until the keyring is committed under it. */
		blob = path_join(v->dir, KURA_MASTER_TPM2_NAME);
		next = path_join(v->dir, KURA_MASTER_TPM2_NAME ".new");
		if (!blob || !next)
			return -ENOMEM;
		r = settle_next(v, blob, next, err);
		if (r < 0)
			return r;
		made = lstat(blob, &st) == 0 ? next : blob;
		r = kura_tpm2_seal_new(made, to->tcti, &master);
		if (r == 0)
			made_key = true;
		else
			tpm2_error(err, r, made, to->tcti);
	} else {
		r = kura_master_create_file(to->path, &master);
		if (r == 0)
			made_key = true;
		else if (r == -EEXIST)
			r = load_master(v->dir, to, KURA_MASTER_FILE, NULL, &master, err);
		else
			r = kura_err_set(err, r, "cannot create key file %s: %s", to->path,
				strerror(-r));
	}
	if (r < 0)
		return r;

	for (int attempt = 0; attempt < CAS_RETRIES; attempt++) {
		struct keyring_record rec = { 0 };
		struct kura_txn txn = { 0 };

		r = vault_refresh_keyring(v, err);
		if (r < 0)
			break;
		rec = v->kr;
		rec.master = to->kind;
		rec.kdf = kdf;
		rec.record_box = NULL;
		rec.keks = calloc(v->kr.n, sizeof(*rec.keks));
		if (!rec.keks) {
			r = -ENOMEM;
			break;
		}
		for (size_t i = 0; i < v->kr.n && r == 0; i++) {
			rec.keks[i] = v->kr.keks[i];
			r = kura_keyring_wrap(v->keyring, master, rec.keks[i].id, &rec.keks[i].box,
				&rec.keks[i].len);
			if (r < 0)
				rec.keks[i].box = NULL;
		}
		if (r == 0)
			r = kura_keyring_wrap_record_key(v->keyring, master, &rec.record_box,
				&rec.record_len);
		if (r == 0)
			r = commit_keyring(v, &rec, &txn, err);
		kura_txn_done(&txn);
		keyring_record_done(&rec);
		if (r == -ESTALE)
			continue;
		if (r < 0)
			break;
		if (made == next && rename(next, blob) < 0)
			r = kura_err_set(err, -errno,
				"the keyring is now wrapped by the key sealed in %s, but it cannot "
				"be renamed to %s: %s (kuractl does so when it next opens the state)",
				next, blob, strerror(errno));
		kura_secbuf_free(v->master);
		v->master = TAKE_PTR(master);
		v->keyring_rev = -1;
		purge(v);
		return r < 0 ? r : vault_refresh_keyring(v, err);
	}
	if (made_key)
		(void)unlink(made);
	if (r == -ESTALE)
		return kura_err_set(err, -EBUSY, "the keyring kept changing under us; try again");
	return r;
}

void kura_key_status_done(struct kura_key_status *s)
{
	free(s->kek_ids);
	free(s->kek_created);
	free(s->per_kek);
	*s = (struct kura_key_status){ 0 };
}

static int count_version(const struct kura_kv *kv, void *userdata)
{
	struct kura_key_status *s = userdata;
	struct version_record ver;

	if (version_record_decode(kv->value, kv->len, &ver) < 0)
		return 0; /* counted as nothing here; `secret get` reports it */
	s->n_versions++;
	for (size_t k = 0; k < s->n_keks; k++)
		if (s->kek_ids[k] == ver.sealed.kek_id)
			s->per_kek[k]++;
	kura_sealed_done(&ver.sealed);
	return 0;
}

static int count_secret(const struct kura_kv *kv, void *userdata)
{
	(void)kv;
	((struct kura_key_status *)userdata)->n_secrets++;
	return 0;
}

int kura_key_status(struct kura_vault *v, struct kura_key_status *ret, struct kura_err *err)
{
	struct kura_key_status s = { 0 };
	int r;

	r = vault_refresh_keyring(v, err);
	if (r < 0)
		return r;
	s.master = v->kr.master;
	s.kdf = v->kr.kdf;
	s.current = v->kr.current;
	s.n_keks = v->kr.n;
	s.kek_ids = calloc(s.n_keks, sizeof(*s.kek_ids));
	s.kek_created = calloc(s.n_keks, sizeof(*s.kek_created));
	s.per_kek = calloc(s.n_keks, sizeof(*s.per_kek));
	if (!s.kek_ids || !s.kek_created || !s.per_kek) {
		kura_key_status_done(&s);
		return -ENOMEM;
	}
	for (size_t i = 0; i < s.n_keks; i++) {
		s.kek_ids[i] = v->kr.keks[i].id;
		s.kek_created[i] = v->kr.keks[i].created;
	}
	r = for_each(v, PREFIX_VERSION, count_version, &s, err);
	if (r == 0)
		r = for_each(v, PREFIX_SECRET, count_secret, &s, err);
	if (r == 0) {
		r = kura_store_revision(v->store, &s.revision);
		if (r < 0)
			store_err(v, err, r, "cannot read the store revision");
	}
	if (r < 0) {
		kura_key_status_done(&s);
		return r;
	}
	s.schema = kura_store_sqlite_schema_version();
	s.max_value_size = v->max_value;
	*ret = s;
	return 0;
}

int kura_vault_set_max_value(struct kura_vault *v, uint64_t max, struct kura_err *err)
{
	_cleanup_json_ json_t *cfg = NULL;
	_cleanup_free_ uint8_t *body = NULL;
	struct kura_txn txn = { 0 };
	size_t len;
	int64_t rev;
	int r;

	if (max == 0 || max > (1ull << 30))
		return kura_err_set(err, -EINVAL, "the value size limit must be 1 byte to 1 GiB");
	cfg = json_pack("{s:i, s:I}", "format", RECORD_FORMAT, "max_value_size", (json_int_t)max);
	if (!cfg)
		return -ENOMEM;
	r = kura_json_dump(cfg, &body, &len);
	if (r == 0)
		r = kura_txn_put(&txn, KEY_CONFIG, body, len, KURA_REV_ANY);
	if (r == 0)
		r = kura_store_commit(v->store, &txn, &rev);
	kura_txn_done(&txn);
	if (r < 0)
		return store_err(v, err, r, "cannot write the config");
	v->max_value = max;
	return 0;
}

/* Secret operations: put, rotate, get, show, list, rollback, destroy. Plaintext passes through
 * only in kura_secbuf; the store sees sealed records. */
#include <errno.h>
#include <string.h>

#include <sodium.h>

#include "name.h"
#include "records.h"

#define CAS_RETRIES 8

void kura_secret_info_done(struct kura_secret_info *i)
{
	free(i->name);
	free(i->versions);
	*i = (struct kura_secret_info){ 0 };
}

void kura_secret_list_done(struct kura_secret_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		kura_secret_info_done(&l->items[i]);
	free(l->items);
	*l = (struct kura_secret_list){ 0 };
}

static int check_name(const char *name, struct kura_err *err)
{
	const char *rule = kura_name_invalid(name, strlen(name));

	if (rule)
		return kura_err_set(err, -EINVAL, "invalid secret name: %s", rule);
	return 0;
}

static int record_error(struct kura_err *err, int r, const char *name)
{
	if (r == -EBADMSG)
		return kura_err_set(err, r,
			"the record of secret %s does not authenticate: it was altered or moved",
			name);
	if (r == -EPROTO)
		return kura_err_set(err, -EUCLEAN, "the record of secret %s is corrupt", name);
	return r < 0 ? kura_err_set(err, r, "cannot read secret %s: %s", name, strerror(-r)) : 0;
}

/* The secret record of name and its mod_rev. -ENOENT with a message if absent. */
static int read_secret(struct kura_vault *v, const char *name, struct secret_record *ret,
	int64_t *ret_rev, struct kura_err *err)
{
	_cleanup_free_ char *key = secret_key(name);
	struct kura_kv kv = { 0 };
	int r;

	if (!key)
		return -ENOMEM;
	r = kura_store_get(v->store, key, &kv);
	if (r == -ENOENT)
		return kura_err_set(err, r, "no secret named %s", name);
	if (r < 0)
		return store_err(v, err, r, "cannot read the secret");
	r = secret_record_decode(v->keyring, name, kv.value, kv.len, ret);
	if (r == 0 && ret_rev)
		*ret_rev = kv.mod_rev;
	kura_kv_done(&kv);
	return record_error(err, r, name);
}

static int read_version(struct kura_vault *v, const char *name, uint64_t version,
	struct version_record *ret, int64_t *ret_rev, struct kura_err *err)
{
	_cleanup_free_ char *key = version_key(name, version);
	struct kura_kv kv = { 0 };
	int r;

	if (!key)
		return -ENOMEM;
	r = kura_store_get(v->store, key, &kv);
	if (r == -ENOENT)
		return kura_err_set(err, r,
			"secret %s has no version %llu (never made, or destroyed)", name,
			(unsigned long long)version);
	if (r < 0)
		return store_err(v, err, r, "cannot read the secret");
	r = version_record_decode(kv.value, kv.len, ret);
	if (r == 0 && ret_rev)
		*ret_rev = kv.mod_rev;
	kura_kv_done(&kv);
	if (r < 0)
		return kura_err_set(err, -EUCLEAN, "the record of %s version %llu is corrupt", name,
			(unsigned long long)version);
	return 0;
}

/*
 * Seal value as `version` of name and add to txn: the secret record (under a compare on
 * secret_rev, or absent) and the new version record. The compare on the keyring's revision
 * keeps a concurrent `key rotate` from destroying the KEK this DEK is wrapped with.
 */
static int add_version(struct kura_vault *v, const char *name, uint64_t version,
	const struct secret_record *sec, int64_t secret_rev, const struct kura_secbuf *value,
	struct kura_txn *txn)
{
	_cleanup_free_ char *skey = secret_key(name), *vkey = version_key(name, version);
	_cleanup_free_ uint8_t *sbody = NULL, *vbody = NULL;
	struct version_record ver = { .created = kura_wall_s(), .size = value->len };
	size_t slen, vlen;
	int r;

	if (!skey || !vkey)
		return -ENOMEM;
	r = kura_seal(v->keyring, name, sec->id, version, value, &ver.sealed);
	if (r < 0)
		return r;
	r = version_record_encode(&ver, &vbody, &vlen);
	kura_sealed_done(&ver.sealed);
	if (r < 0)
		return r;
	r = secret_record_encode(v->keyring, name, sec, &sbody, &slen);
	if (r < 0)
		return r;
	if ((r = kura_txn_check(txn, KEY_KEYRING, v->keyring_rev)) < 0 ||
		(r = kura_txn_put(txn, skey, sbody, slen, secret_rev)) < 0 ||
		(r = kura_txn_put(txn, vkey, vbody, vlen, KURA_REV_ABSENT)) < 0)
		return r;
	return 0;
}

/* The mod_rev of key, or KURA_REV_ABSENT. */
static int key_rev(struct kura_vault *v, const char *key, int64_t *ret)
{
	struct kura_kv kv = { 0 };
	int r = kura_store_get(v->store, key, &kv);

	if (r == -ENOENT) {
		*ret = KURA_REV_ABSENT;
		return 0;
	}
	if (r < 0)
		return r;
	*ret = kv.mod_rev;
	kura_kv_done(&kv);
	return 0;
}

/* The name of a secret below the folder name[0..len) other than `except` (malloc'd), or NULL
 * when there is none. */
static int other_below(struct kura_vault *v, const char *name, size_t len, const char *except,
	char **ret)
{
	_cleanup_free_ char *prefix = below_prefix(name, len);
	struct kura_kv_list l = { 0 };
	char *found = NULL;
	int r;

	if (!prefix)
		return -ENOMEM;
	r = kura_store_range(v->store, prefix, NULL, 2, &l);
	for (size_t i = 0; r == 0 && i < l.n && !found; i++) {
		const char *n = l.items[i].key + strlen(PREFIX_SECRET);

		if (except && strcmp(n, except) == 0)
			continue;
		found = strdup(n);
		if (!found)
			r = -ENOMEM;
	}
	kura_kv_list_done(&l);
	if (r == 0)
		*ret = found;
	return r;
}

#define NOT_BOTH                                                                                   \
	"a name cannot be both a secret and a folder of other secrets (in a container "            \
	"one is a file, the other a directory of the same name)"

/*
 * A new secret must not be a folder of others, nor lie below another. txn gets, for each
 * folder above name: a compare that no secret has the folder's name, and a rewrite of the
 * folder's marker; for name itself: a compare on its own marker, read before looking below it.
 * Of two writers racing (app/db and app/db/sub), each writes a key the other compares, so one
 * commit fails and its retry sees the other's secret; siblings only retry. The store needs no
 * range compare for it (etcd has none). -EEXIST with err naming the secret in the way; store
 * errors as they come.
 */
/* The folder markers a batch's transaction already rewrites (sorted, malloc'd keys): a second
 * put of one would compare against the revision the first one replaces, and fail. */
struct folder_seen {
	char **keys;
	size_t n, cap;
};

/* Whether key is in seen; if not, it is added (1: it was new). */
static int folder_seen_add(struct folder_seen *seen, const char *key)
{
	size_t lo = 0, hi = seen->n;
	char *copy;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(seen->keys[mid], key);

		if (c == 0)
			return 0;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (seen->n == seen->cap) {
		size_t cap = seen->cap ? seen->cap * 2 : 64;
		char **k = realloc(seen->keys, cap * sizeof(*k));

		if (!k)
			return -ENOMEM;
		seen->keys = k;
		seen->cap = cap;
	}
	copy = strdup(key);
	if (!copy)
		return -ENOMEM;
	memmove(seen->keys + lo + 1, seen->keys + lo, (seen->n - lo) * sizeof(*seen->keys));
	seen->keys[lo] = copy;
	seen->n++;
	return 1;
}

static void folder_seen_done(struct folder_seen *seen)
{
	for (size_t i = 0; i < seen->n; i++)
		free(seen->keys[i]);
	free(seen->keys);
	*seen = (struct folder_seen){ 0 };
}

static int add_folder_checks(struct kura_vault *v, const char *name, struct kura_txn *txn,
	struct folder_seen *seen, struct kura_err *err)
{
	_cleanup_free_ char *fkey = NULL, *below = NULL;
	size_t len = strlen(name);
	int64_t rev;
	int r;

	for (size_t i = 0; i < len; i++) {
		_cleanup_free_ char *skey = NULL, *up = NULL;
		char folder[KURA_NAME_MAX + 1];

		if (name[i] != '/')
			continue;
		memcpy(folder, name, i);
		folder[i] = '\0';
		skey = secret_key(folder);
		up = folder_key(name, i);
		if (!skey || !up)
			return -ENOMEM;
		r = seen ? folder_seen_add(seen, up) : 1;
		if (r < 0)
			return r;
		if (r == 0)
			continue; /* checked and rewritten already, for another of the batch */
		r = key_rev(v, skey, &rev);
		if (r < 0)
			return r;
		if (rev != KURA_REV_ABSENT)
			return kura_err_set(err, -EEXIST,
				"cannot make %s: %s is a secret, and " NOT_BOTH, name, folder);
		r = key_rev(v, up, &rev);
		if (r < 0)
			return r;
		if ((r = kura_txn_check(txn, skey, KURA_REV_ABSENT)) < 0 ||
			(r = kura_txn_put(txn, up, "{}", 2, rev)) < 0)
			return r;
	}
	fkey = folder_key(name, len);
	if (!fkey)
		return -ENOMEM;
	r = key_rev(v, fkey, &rev);
	if (r == 0)
		r = other_below(v, name, len, NULL, &below);
	if (r < 0)
		return r;
	if (below)
		return kura_err_set(err, -EEXIST, "cannot make %s: %s is below it, and " NOT_BOTH,
			name, below);
	return kura_txn_check(txn, fkey, rev);
}

/* Destroying name: the markers of folders it leaves empty go too (under a compare, so a secret
 * made below one meanwhile makes the commit fail and the destroy look again). A marker left
 * behind by a race only costs a key: making a secret by its name looks below it anyway. */
static int drop_folders(struct kura_vault *v, const char *name, struct kura_txn *txn)
{
	size_t len = strlen(name);
	int r;

	for (size_t i = 0; i < len; i++) {
		_cleanup_free_ char *fkey = NULL, *other = NULL;
		int64_t rev;

		if (name[i] != '/')
			continue;
		fkey = folder_key(name, i);
		if (!fkey)
			return -ENOMEM;
		r = key_rev(v, fkey, &rev);
		if (r == 0 && rev != KURA_REV_ABSENT)
			r = other_below(v, name, i, name, &other);
		if (r < 0)
			return r;
		if (rev != KURA_REV_ABSENT && !other) {
			r = kura_txn_delete(txn, fkey, rev);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

static int check_value(struct kura_vault *v, const struct kura_secbuf *value, struct kura_err *err)
{
	if (value->len > v->max_value)
		return kura_err_set(err, -EFBIG,
			"the value is %zu bytes; this store takes at most %llu (kuractl config "
			"--max-value-size)",
			value->len, (unsigned long long)v->max_value);
	return 0;
}

/* Write a new version: of a new secret (create) or an existing one. */
static int write_version(struct kura_vault *v, const char *name, const struct kura_secbuf *value,
	bool create, uint64_t *ret_version, struct kura_err *err)
{
	int r;

	r = check_name(name, err);
	if (r < 0)
		return r;
	r = check_value(v, value, err);
	if (r < 0)
		return r;
	for (int attempt = 0; attempt < CAS_RETRIES; attempt++) {
		struct secret_record sec;
		struct kura_txn txn = { 0 };
		int64_t rev = KURA_REV_ABSENT;
		int64_t now = kura_wall_s();

		r = vault_refresh_keyring(v, err);
		if (r < 0)
			return r;
		r = read_secret(v, name, &sec, &rev, NULL);
		if (create && r == 0)
			return kura_err_set(err, -EEXIST,
				"secret %s already exists; use kuractl secret rotate for a new "
				"version",
				name);
		if (!create && r == -ENOENT)
			return kura_err_set(err, r, "no secret named %s; use kuractl secret put",
				name);
		if (r < 0 && r != -ENOENT)
			return read_secret(v, name, &sec, &rev, err);
		if (create) {
			sec = (struct secret_record){ .created = now };
			randombytes_buf(sec.id, sizeof(sec.id));
		}
		sec.latest++;
		sec.current = sec.latest;
		sec.updated = now;
		r = create ? add_folder_checks(v, name, &txn, NULL, err) : 0;
		if (r == 0)
			r = add_version(v, name, sec.latest, &sec, create ? KURA_REV_ABSENT : rev,
				value, &txn);
		if (r == 0)
			r = kura_store_commit(v->store, &txn, NULL);
		kura_txn_done(&txn);
		if (r == -ESTALE)
			continue; /* someone else wrote first: look again */
		if (r == -EEXIST)
			return r; /* err names the secret in the way */
		if (r < 0)
			return store_err(v, err, r, "cannot store the secret");
		if (ret_version)
			*ret_version = sec.latest;
		return 0;
	}
	return kura_err_set(err, -EBUSY, "secret %s kept changing under us; try again", name);
}

int kura_secret_put(struct kura_vault *v, const char *name, const struct kura_secbuf *value,
	uint64_t *ret_version, struct kura_err *err)
{
	return write_version(v, name, value, true, ret_version, err);
}

/* Index of name in the sorted index array idx over names, or n. */
static size_t batch_find(const char *const *names, const size_t *idx, size_t n, const char *name,
	size_t len)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		const char *m = names[idx[mid]];
		int c = strncmp(m, name, len);

		if (c == 0 && m[len] == '\0')
			return idx[mid];
		if (c == 0)
			c = 1; /* m is longer: it sorts after name[0..len) */
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return n;
}

static int cmp_idx(const void *a, const void *b, void *names)
{
	const char *const *n = names;

	return strcmp(n[*(const size_t *)a], n[*(const size_t *)b]);
}

/* Within a batch: no name twice, none a folder of another (the store's checks cannot see
 * what the same transaction writes). -EEXIST with *ret_failed and err naming it. */
static int batch_check(const char *const *names, size_t n, size_t *ret_failed, struct kura_err *err)
{
	_cleanup_free_ size_t *idx = malloc((n ? n : 1) * sizeof(*idx));

	if (!idx)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		idx[i] = i;
	qsort_r(idx, n, sizeof(*idx), cmp_idx, (void *)names);
	for (size_t i = 0; i < n; i++) {
		const char *name = names[idx[i]];

		if (i > 0 && strcmp(names[idx[i - 1]], name) == 0) {
			*ret_failed = idx[i];
			return kura_err_set(err, -EEXIST, "secret %s is given twice", name);
		}
		for (size_t k = 0; name[k]; k++) {
			size_t at = name[k] == '/' ? batch_find(names, idx, n, name, k) : n;

			if (at < n) {
				*ret_failed = idx[i];
				return kura_err_set(err, -EEXIST,
					"cannot make %s: %s is a secret too, and " NOT_BOTH, name,
					names[at]);
			}
		}
	}
	return 0;
}

int kura_secret_put_many(struct kura_vault *v, const char *const *names,
	struct kura_secbuf *const *values, size_t n, size_t *ret_failed, int64_t *ret_rev,
	struct kura_err *err)
{
	int r;

	*ret_failed = n;
	for (size_t i = 0; i < n; i++) {
		r = check_name(names[i], err);
		if (r == 0)
			r = check_value(v, values[i], err);
		if (r < 0) {
			*ret_failed = i;
			return r;
		}
	}
	r = batch_check(names, n, ret_failed, err);
	if (r < 0)
		return r;
	for (int attempt = 0; attempt < CAS_RETRIES; attempt++) {
		struct folder_seen seen = { 0 };
		struct kura_txn txn = { 0 };
		int64_t now = kura_wall_s();

		r = vault_refresh_keyring(v, err);
		if (r < 0)
			return r;
		for (size_t i = 0; r == 0 && i < n; i++) {
			struct secret_record sec = { .created = now, .updated = now };

			r = read_secret(v, names[i], &sec, NULL, NULL);
			if (r == 0) {
				r = kura_err_set(err, -EEXIST,
					"secret %s already exists (import makes new secrets only)",
					names[i]);
			} else if (r == -ENOENT) {
				sec = (struct secret_record){ .created = now,
					.updated = now,
					.latest = 1,
					.current = 1 };
				randombytes_buf(sec.id, sizeof(sec.id));
				r = add_folder_checks(v, names[i], &txn, &seen, err);
				if (r == 0)
					r = add_version(v, names[i], 1, &sec, KURA_REV_ABSENT,
						values[i], &txn);
			} else {
				r = read_secret(v, names[i], &sec, NULL, err);
			}
			if (r < 0)
				*ret_failed = i;
		}
		if (r == 0)
			r = kura_store_commit(v->store, &txn, ret_rev);
		kura_txn_done(&txn);
		folder_seen_done(&seen);
		if (r == -ESTALE) {
			*ret_failed = n;
			continue; /* someone else wrote first: look again */
		}
		if (r == -EEXIST || (r < 0 && *ret_failed < n))
			return r; /* err names the secret */
		if (r < 0)
			return store_err(v, err, r, "cannot store the secrets");
		return 0;
	}
	return kura_err_set(err, -EBUSY, "the store kept changing under the import; try again");
}

int kura_secret_rotate(struct kura_vault *v, const char *name, const struct kura_secbuf *value,
	uint64_t *ret_version, struct kura_err *err)
{
	return write_version(v, name, value, false, ret_version, err);
}

int kura_secret_get(struct kura_vault *v, const char *name, uint64_t version,
	struct kura_secbuf **ret_value, struct kura_version_info *ret_info, struct kura_err *err)
{
	struct version_record ver;
	struct secret_record sec;
	uint32_t kek_id;
	int r;

	r = check_name(name, err);
	if (r < 0)
		return r;
	r = read_secret(v, name, &sec, NULL, err);
	if (r < 0)
		return r;
	if (version == 0)
		version = sec.current;
	r = read_version(v, name, version, &ver, NULL, err);
	if (r < 0)
		return r;
	/* A version record of an earlier secret of the same name opens on its own terms; it is
	 * not this secret's. */
	if (memcmp(ver.sealed.secret_id, sec.id, sizeof(sec.id)) != 0) {
		kura_sealed_done(&ver.sealed);
		return kura_err_set(err, -EBADMSG,
			"secret %s version %llu does not authenticate: its record belongs to another "
			"secret (altered, moved or replayed)",
			name, (unsigned long long)version);
	}
	r = kura_unseal(v->keyring, name, version, &ver.sealed, ret_value);
	if (r == -ENOKEY) {
		/* Rotated by someone else since we unlocked: pick up the new KEK and try again. */
		r = vault_refresh_keyring(v, err);
		if (r == 0)
			r = kura_unseal(v->keyring, name, version, &ver.sealed, ret_value);
	}
	kek_id = ver.sealed.kek_id;
	if (r == 0 && ret_info)
		*ret_info = (struct kura_version_info){ .version = version,
			.created = ver.created,
			.size = ver.size,
			.kek_id = kek_id };
	kura_sealed_done(&ver.sealed);
	if (r == -EBADMSG || r == -EPROTO)
		return kura_err_set(err, -EBADMSG,
			"secret %s version %llu does not authenticate: its record was altered or "
			"moved",
			name, (unsigned long long)version);
	if (r == -ENOKEY)
		return kura_err_set(err, -EUCLEAN,
			"secret %s version %llu is wrapped by KEK %u, "
			"which the keyring does not hold",
			name, (unsigned long long)version, kek_id);
	return r;
}

int kura_secret_show(struct kura_vault *v, const char *name, struct kura_secret_info *ret,
	struct kura_err *err)
{
	_cleanup_free_ char *prefix = NULL;
	struct kura_secret_info info = { 0 };
	struct kura_kv_list l = { 0 };
	struct secret_record sec;
	int r;

	r = check_name(name, err);
	if (r < 0)
		return r;
	r = read_secret(v, name, &sec, NULL, err);
	if (r < 0)
		return r;
	prefix = version_prefix(name);
	if (!prefix)
		return -ENOMEM;
	r = kura_store_range(v->store, prefix, NULL, 0, &l);
	if (r < 0)
		return store_err(v, err, r, "cannot list versions");
	info.name = strdup(name);
	info.versions = calloc(l.n ? l.n : 1, sizeof(*info.versions));
	if (!info.name || !info.versions) {
		r = -ENOMEM;
		goto fail;
	}
	info.current = sec.current;
	info.latest = sec.latest;
	info.created = sec.created;
	info.updated = sec.updated;
	for (size_t i = 0; i < l.n; i++) {
		struct version_record ver;

		r = version_record_decode(l.items[i].value, l.items[i].len, &ver);
		if (r < 0) {
			r = kura_err_set(err, -EUCLEAN, "the record %s is corrupt", l.items[i].key);
			goto fail;
		}
		info.versions[info.n_versions++] = (struct kura_version_info){
			.version = version_from_key(l.items[i].key),
			.created = ver.created,
			.size = ver.size,
			.kek_id = ver.sealed.kek_id,
		};
		kura_sealed_done(&ver.sealed);
	}
	kura_kv_list_done(&l);
	*ret = info;
	return 0;
fail:
	kura_kv_list_done(&l);
	kura_secret_info_done(&info);
	return r;
}

#define LIST_PAGE 1024u

int kura_secret_list(struct kura_vault *v, const char *prefix, struct kura_secret_list *ret,
	struct kura_err *err)
{
	return kura_secret_list_filtered(v, prefix, NULL, NULL, ret, err);
}

int kura_secret_each(struct kura_vault *v, const char *prefix,
	bool (*keep)(const char *name, void *userdata), void *keep_userdata,
	int (*fn)(const struct kura_secret_info *info, void *userdata), void *userdata,
	struct kura_err *err)
{
	_cleanup_free_ char *key = secret_key(prefix), *after = NULL;
	const char *rule = kura_prefix_invalid(prefix, strlen(prefix));
	int r = 0;

	if (rule)
		return kura_err_set(err, -EINVAL, "invalid prefix: %s", rule);
	if (!key)
		return -ENOMEM;
	/* A page at a time: a store of 100k secrets is never all in memory at once. */
	for (;;) {
		struct kura_kv_list l = { 0 };
		bool more;

		r = kura_store_range(v->store, key, after, LIST_PAGE, &l);
		if (r < 0)
			return store_err(v, err, r, "cannot list secrets");
		for (size_t i = 0; i < l.n && r == 0; i++) {
			const char *name = l.items[i].key + strlen(PREFIX_SECRET);
			struct secret_record sec;

			if (keep && !keep(name, keep_userdata))
				continue;
			r = secret_record_decode(v->keyring, name, l.items[i].value, l.items[i].len,
				&sec);
			if (r < 0) {
				record_error(err, r, name);
				r = r == -EPROTO ? -EUCLEAN : r;
				break;
			}
			r = fn(&(struct kura_secret_info){ .name = (char *)name,
				       .current = sec.current,
				       .latest = sec.latest,
				       .created = sec.created,
				       .updated = sec.updated },
				userdata);
		}
		if (r == 0 && l.n == LIST_PAGE) {
			free(after);
			after = strdup(l.items[l.n - 1].key);
			if (!after)
				r = -ENOMEM;
		}
		more = r == 0 && l.n == LIST_PAGE;
		kura_kv_list_done(&l);
		if (r < 0 || !more)
			return r < 0 ? r : 0;
	}
}

struct gather {
	struct kura_secret_list out;
	size_t cap;
};

static int gather_one(const struct kura_secret_info *info, void *userdata)
{
	struct gather *g = userdata;
	struct kura_secret_info *n;

	if (g->out.n == g->cap) {
		size_t ncap = g->cap ? g->cap * 2 : 64;

		n = realloc(g->out.items, ncap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		g->out.items = n;
		g->cap = ncap;
	}
	n = &g->out.items[g->out.n];
	*n = *info;
	n->name = strdup(info->name);
	if (!n->name)
		return -ENOMEM;
	g->out.n++;
	return 0;
}

int kura_secret_list_filtered(struct kura_vault *v, const char *prefix,
	bool (*keep)(const char *name, void *userdata), void *userdata,
	struct kura_secret_list *ret, struct kura_err *err)
{
	struct gather g = { 0 };
	int r;

	r = kura_secret_each(v, prefix, keep, userdata, gather_one, &g, err);
	if (r == 0 && !g.out.items) {
		g.out.items = calloc(1, sizeof(*g.out.items));
		if (!g.out.items)
			r = -ENOMEM;
	}
	if (r < 0) {
		kura_secret_list_done(&g.out);
		return r;
	}
	*ret = g.out;
	return 0;
}

int kura_secret_rollback(struct kura_vault *v, const char *name, uint64_t version,
	struct kura_err *err)
{
	int r;

	r = check_name(name, err);
	if (r < 0)
		return r;
	for (int attempt = 0; attempt < CAS_RETRIES; attempt++) {
		_cleanup_free_ char *skey = secret_key(name), *vkey = version_key(name, version);
		_cleanup_free_ uint8_t *body = NULL;
		struct kura_txn txn = { 0 };
		struct version_record ver;
		struct secret_record sec;
		int64_t srev, vrev;
		size_t len;

		if (!skey || !vkey)
			return -ENOMEM;
		r = read_secret(v, name, &sec, &srev, err);
		if (r < 0)
			return r;
		r = read_version(v, name, version, &ver, &vrev, err);
		if (r < 0)
			return r;
		kura_sealed_done(&ver.sealed);
		if (sec.current == version)
			return 0;
		sec.current = version;
		sec.updated = kura_wall_s();
		r = secret_record_encode(v->keyring, name, &sec, &body, &len);
		if (r == 0)
			r = kura_txn_check(&txn, vkey, vrev);
		if (r == 0)
			r = kura_txn_put(&txn, skey, body, len, srev);
		if (r == 0)
			r = kura_store_commit(v->store, &txn, NULL);
		kura_txn_done(&txn);
		if (r == -ESTALE)
			continue;
		if (r < 0)
			return store_err(v, err, r, "cannot roll back");
		return 0;
	}
	return kura_err_set(err, -EBUSY, "secret %s kept changing under us; try again", name);
}

int kura_secret_destroy(struct kura_vault *v, const char *name, uint64_t version,
	struct kura_err *err)
{
	int r;

	r = check_name(name, err);
	if (r < 0)
		return r;
	for (int attempt = 0; attempt < CAS_RETRIES; attempt++) {
		_cleanup_free_ char *skey = secret_key(name), *prefix = version_prefix(name);
		struct kura_kv_list l = { 0 };
		struct kura_txn txn = { 0 };
		struct secret_record sec;
		bool found = false;
		int64_t srev;

		if (!skey || !prefix)
			return -ENOMEM;
		r = read_secret(v, name, &sec, &srev, err);
		if (r < 0)
			return r;
		if (version != 0 && version == sec.current)
			return kura_err_set(err, -EPERM,
				"version %llu is the current version of %s; roll back to another "
				"version first, or destroy the whole secret",
				(unsigned long long)version, name);
		r = kura_store_range(v->store, prefix, NULL, 0, &l);
		if (r < 0)
			return store_err(v, err, r, "cannot list versions");
		/* Without a version the secret record goes too; with one, the record must stay
		 * as read (no rollback to the version being destroyed can slip in). */
		r = version ? kura_txn_check(&txn, skey, srev) : kura_txn_delete(&txn, skey, srev);
		if (r == 0 && !version)
			r = drop_folders(v, name, &txn);
		for (size_t i = 0; i < l.n && r == 0; i++) {
			if (version && version_from_key(l.items[i].key) != version)
				continue;
			found = true;
			r = kura_txn_delete(&txn, l.items[i].key, l.items[i].mod_rev);
		}
		kura_kv_list_done(&l);
		if (r == 0 && version && !found) {
			kura_txn_done(&txn);
			return kura_err_set(err, -ENOENT,
				"secret %s has no version %llu (never made, or already destroyed)",
				name, (unsigned long long)version);
		}
		if (r == 0)
			r = kura_store_commit(v->store, &txn, NULL);
		kura_txn_done(&txn);
		if (r == -ESTALE)
			continue;
		if (r < 0)
			return store_err(v, err, r, "cannot destroy");
		/* Deleted rows are zeroed (secure_delete); now make the old pages in the
		 * write-ahead log go too. */
		r = kura_store_purge(v->store);
		if (r < 0)
			return store_err(v, err, r,
				"destroyed, but could not purge the write-ahead log");
		return 0;
	}
	return kura_err_set(err, -EBUSY, "secret %s kept changing under us; try again", name);
}

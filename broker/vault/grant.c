/* Grant records in the store: grant/<id> -> JSON. The id is a hash of the grant's content, so a
 * grant is stored once however often it is given. */
#include <errno.h>
#include <string.h>

#include "grant.h"
#include "json.h"
#include "records.h"

void kura_grant_list_done(struct kura_grant_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		kura_grant_done(&l->items[i]);
	free(l->items);
	*l = (struct kura_grant_list){ 0 };
}

static int set_opt(json_t *j, const char *key, const char *value)
{
	return value ? json_object_set_new(j, key, json_string(value)) : 0;
}

static int set_labels(json_t *j, const char *key, char *const *keys, char *const *values, size_t n)
{
	json_t *labels = json_object();

	if (!labels || json_object_set_new(j, key, labels) < 0)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (json_object_set_new(labels, keys[i], json_string(values[i])) < 0)
			return -ENOMEM;
	return 0;
}

int kura_grant_encode(const struct kura_grant *g, uint8_t **ret, size_t *ret_len)
{
	_cleanup_json_ json_t *j = json_pack("{s:s, s:b, s:I}", "pattern", g->pattern, "host",
		g->host, "created", (json_int_t)g->created);

	if (!j)
		return -ENOMEM;
	if (g->has_uid && json_object_set_new(j, "uid", json_integer(g->uid)) < 0)
		return -ENOMEM;
	if (set_opt(j, "runtime", g->runtime) < 0 || set_opt(j, "image", g->image) < 0 ||
		set_opt(j, "digest", g->digest) < 0 || set_opt(j, "name", g->name) < 0)
		return -ENOMEM;
	if (set_labels(j, "labels", g->label_keys, g->label_values, g->n_labels) < 0)
		return -ENOMEM;
	/* Written only when there are some: every other grant's record stays as it was. */
	if (g->n_image_labels > 0 &&
		set_labels(j, "image_labels", g->image_label_keys, g->image_label_values,
			g->n_image_labels) < 0)
		return -ENOMEM;
	return kura_json_dump(j, ret, ret_len);
}

static int get_opt(const json_t *j, const char *key, char **ret)
{
	const json_t *s = json_object_get(j, key);

	if (!s)
		return 0;
	if (!json_is_string(s))
		return -EPROTO;
	*ret = strndup(json_string_value(s), json_string_length(s));
	return *ret ? 0 : -ENOMEM;
}

/* A labels object of at most KURA_GRANT_MAX_LABELS string values into *ret_keys, *ret_values
 * and *ret_n (arrays allocated even when empty, freed by kura_grant_done). */
static int get_labels(const json_t *labels, char ***ret_keys, char ***ret_values, size_t *ret_n)
{
	const char *key;
	json_t *val;

	if (!json_is_object(labels) || json_object_size(labels) > KURA_GRANT_MAX_LABELS)
		return -EPROTO;
	*ret_keys = calloc(json_object_size(labels) + 1, sizeof(char *));
	*ret_values = calloc(json_object_size(labels) + 1, sizeof(char *));
	if (!*ret_keys || !*ret_values)
		return -ENOMEM;
	json_object_foreach((json_t *)labels, key, val) {
		if (!json_is_string(val))
			return -EPROTO;
		(*ret_keys)[*ret_n] = strdup(key);
		(*ret_values)[*ret_n] = strdup(json_string_value(val));
		(*ret_n)++;
		if (!(*ret_keys)[*ret_n - 1] || !(*ret_values)[*ret_n - 1])
			return -ENOMEM;
	}
	return 0;
}

int kura_grant_decode(const uint8_t *data, size_t len, struct kura_grant *ret)
{
	_cleanup_json_ json_t *j = NULL;
	struct kura_grant g = { 0 };
	const json_t *host, *image_labels;
	int64_t n;
	int r;

	r = kura_json_load(data, len, &j);
	if (r < 0)
		return r;
	host = json_object_get(j, "host");
	if (!json_is_boolean(host) || kura_json_get_int(j, "created", 0, INT64_MAX, &g.created) < 0)
		return -EPROTO;
	g.host = json_is_true(host);
	if (json_object_get(j, "uid")) {
		if (kura_json_get_int(j, "uid", 0, UINT32_MAX - 1, &n) < 0)
			return -EPROTO;
		g.has_uid = true;
		g.uid = (uid_t)n;
	}
	if ((r = get_opt(j, "pattern", &g.pattern)) < 0 ||
		(r = get_opt(j, "runtime", &g.runtime)) < 0 ||
		(r = get_opt(j, "image", &g.image)) < 0 ||
		(r = get_opt(j, "digest", &g.digest)) < 0 || (r = get_opt(j, "name", &g.name)) < 0)
		goto fail;
	r = get_labels(json_object_get(j, "labels"), &g.label_keys, &g.label_values, &g.n_labels);
	if (r < 0)
		goto fail;
	/* Absent in every record written before image labels existed, and whenever none. */
	image_labels = json_object_get(j, "image_labels");
	if (image_labels) {
		r = get_labels(image_labels, &g.image_label_keys, &g.image_label_values,
			&g.n_image_labels);
		if (r < 0)
			goto fail;
	}
	/* What the store hands back is held to the rules an operator's grant is. */
	if (kura_grant_invalid(&g)) {
		r = -EPROTO;
		goto fail;
	}
	kura_grant_set_id(&g);
	*ret = g;
	return 0;
fail:
	kura_grant_done(&g);
	return r;
}

static char *grant_key(const char *id)
{
	char *k;

	return asprintf(&k, KURA_PREFIX_GRANT "%s", id) < 0 ? NULL : k;
}

int kura_grant_add(struct kura_vault *v, struct kura_grant *g, bool *ret_existed,
	struct kura_err *err)
{
	const char *rule = kura_grant_invalid(g);
	_cleanup_free_ char *key = NULL;
	_cleanup_free_ uint8_t *body = NULL;
	struct kura_txn txn = { 0 };
	size_t len;
	int r;

	if (rule)
		return kura_err_set(err, -EINVAL, "invalid grant: %s", rule);
	kura_grant_set_id(g);
	g->created = kura_wall_s();
	key = grant_key(g->id);
	if (!key)
		return -ENOMEM;
	r = kura_grant_encode(g, &body, &len);
	if (r == 0)
		r = kura_txn_put(&txn, key, body, len, KURA_REV_ABSENT);
	if (r == 0)
		r = kura_store_commit(kura_vault_store(v), &txn, NULL);
	kura_txn_done(&txn);
	if (r == -ESTALE) {
		*ret_existed = true;
		return 0;
	}
	if (r < 0)
		return store_err(v, err, r, "cannot store the grant");
	*ret_existed = false;
	return 0;
}

int kura_grant_remove(struct kura_vault *v, const char *id, struct kura_err *err)
{
	_cleanup_free_ char *key = NULL;
	struct kura_txn txn = { 0 };
	struct kura_kv kv = { 0 };
	int r;

	if (strlen(id) != KURA_GRANT_ID_LEN || strspn(id, "0123456789abcdef") != KURA_GRANT_ID_LEN)
		return kura_err_set(err, -EINVAL,
			"a grant id is %u lowercase hex characters (see "
			"kuractl grants)",
			KURA_GRANT_ID_LEN);
	key = grant_key(id);
	if (!key)
		return -ENOMEM;
	r = kura_store_get(kura_vault_store(v), key, &kv);
	if (r == -ENOENT)
		return kura_err_set(err, r, "no grant with id %s", id);
	if (r < 0)
		return store_err(v, err, r, "cannot read the grant");
	r = kura_txn_delete(&txn, key, kv.mod_rev);
	kura_kv_done(&kv);
	if (r == 0)
		r = kura_store_commit(kura_vault_store(v), &txn, NULL);
	kura_txn_done(&txn);
	if (r == -ESTALE)
		return kura_err_set(err, -ENOENT, "grant %s was removed meanwhile", id);
	if (r < 0)
		return store_err(v, err, r, "cannot remove the grant");
	return 0;
}

int kura_grant_list(struct kura_vault *v, struct kura_grant_list *ret, struct kura_err *err)
{
	struct kura_grant_list out = { 0 };
	struct kura_kv_list l = { 0 };
	int r;

	r = kura_store_range(kura_vault_store(v), KURA_PREFIX_GRANT, NULL, 0, &l);
	if (r < 0)
		return store_err(v, err, r, "cannot list grants");
	out.items = calloc(l.n ? l.n : 1, sizeof(*out.items));
	if (!out.items) {
		kura_kv_list_done(&l);
		return -ENOMEM;
	}
	for (size_t i = 0; i < l.n; i++) {
		r = kura_grant_decode(l.items[i].value, l.items[i].len, &out.items[out.n]);
		if (r == 0 &&
			strcmp(out.items[out.n].id, l.items[i].key + strlen(KURA_PREFIX_GRANT)) !=
				0) {
			/* The content does not hash to its key: altered. */
			kura_grant_done(&out.items[out.n]);
			r = -EPROTO;
		}
		if (r < 0) {
			if (r == -EPROTO)
				kura_err_set(err, -EUCLEAN,
					"the grant record %s is corrupt or altered",
					l.items[i].key);
			kura_kv_list_done(&l);
			kura_grant_list_done(&out);
			return r == -EPROTO ? -EUCLEAN : r;
		}
		out.n++;
	}
	kura_kv_list_done(&l);
	*ret = out;
	return 0;
}

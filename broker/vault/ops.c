/* The operations table (ops.h): each admin operation's schema, vault call, reply and audit
 * record, written once. Touches plaintext: secret.write's and secret.get's values pass through
 * in guarded buffers (and, on kuractl's side, jansson's wiping allocator). */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "json.h"
#include "macro.h"
#include "outcome.h"
#include "ops.h"
#include "wire.h"

#define FIELD(k, t, req, o)                                                                        \
	{                                                                                          \
		.key = (k), .type = (t), .required = (req),                                        \
		.offset = offsetof(struct kura_op_args, o)                                         \
	}
#define COUNT(k, req, o)                                                                           \
	{                                                                                          \
		.key = (k), .type = KURA_OP_U64, .required = (req), .min = 1, .max = INT64_MAX,    \
		.offset = offsetof(struct kura_op_args, o)                                         \
	}
/* A reply's field, always there: into struct kura_op_result. */
#define REPLY(k, t, lo, hi, o)                                                                     \
	{                                                                                          \
		.key = (k), .type = (t), .required = true, .min = (lo), .max = (hi),               \
		.offset = offsetof(struct kura_op_result, o)                                       \
	}

/* --- secret.write --- */

static const struct kura_op_field write_fields[] = {
	FIELD("name", KURA_OP_STRING, true, name),
	FIELD("value", KURA_OP_VALUE, true, value),
	FIELD("create", KURA_OP_BOOL, false, create),
};

static int write_run(struct kura_vault *v, struct kura_op_args *a, struct kura_op_result *res,
	struct kura_err *err)
{
	int r = a->create ? kura_secret_put(v, a->name, a->value, &res->version, err) :
			    kura_secret_rotate(v, a->name, a->value, &res->version, err);

	/* The record goes without a fingerprint rather than the change being reported failed. */
	if (r == 0 && kura_vault_fingerprint(v, a->value, res->fingerprint) < 0)
		res->fingerprint[0] = 0;
	return r;
}

static const struct kura_op_field write_reply_fields[] = {
	REPLY("version", KURA_OP_U64, 1, INT64_MAX, version),
};

static void write_record(const struct kura_op_args *a, const struct kura_op_result *res, int r,
	struct kura_audit_event *e)
{
	e->event = a->create ? KURA_EVENT_SECRET_PUT : KURA_EVENT_SECRET_ROTATE;
	e->version = r == 0 ? res->version : 0;
}

/* --- secret.get --- */

static const struct kura_op_field get_fields[] = {
	FIELD("name", KURA_OP_STRING, true, name),
	COUNT("version", false, version),
};

static int get_run(struct kura_vault *v, struct kura_op_args *a, struct kura_op_result *res,
	struct kura_err *err)
{
	int r = kura_secret_get(v, a->name, a->version, &res->value, &res->info, err);

	/* A value leaves only with its fingerprint in the record. */
	if (r == 0)
		r = kura_vault_fingerprint(v, res->value, res->fingerprint);
	return r;
}

static int get_reply(const struct kura_op_args *a, const struct kura_op_result *res, json_t **ret,
	struct kura_secbuf **raw)
{
	(void)ret;
	return kura_wire_secret_body(a->name, &res->info, res->value, raw);
}

static int get_reply_parse(const json_t *j, struct kura_op_result *res)
{
	return kura_wire_secret_parse(j, &res->info, &res->value);
}

static void get_record(const struct kura_op_args *a, const struct kura_op_result *res, int r,
	struct kura_audit_event *e)
{
	e->version = r == 0 ? res->info.version : a->version;
}

/* --- secret.show, secret.list --- */

static const struct kura_op_field name_fields[] = {
	FIELD("name", KURA_OP_STRING, true, name),
};

static int show_run(struct kura_vault *v, struct kura_op_args *a, struct kura_op_result *res,
	struct kura_err *err)
{
	return kura_secret_show(v, a->name, &res->secret, err);
}

static int show_reply(const struct kura_op_args *a, const struct kura_op_result *res, json_t **ret,
	struct kura_secbuf **raw)
{
	(void)a;
	(void)raw;
	*ret = kura_wire_info(&res->secret);
	return *ret ? 0 : -ENOMEM;
}

static int show_reply_parse(const json_t *j, struct kura_op_result *res)
{
	return kura_wire_info_parse(j, &res->secret) < 0 ? -EPROTO : 0;
}

static const struct kura_op_field list_fields[] = {
	FIELD("prefix", KURA_OP_STRING, false, prefix),
};

static int list_run(struct kura_vault *v, struct kura_op_args *a, struct kura_op_result *res,
	struct kura_err *err)
{
	return kura_secret_list(v, a->prefix ? a->prefix : "", &res->secrets, err);
}

/* {key: [item...]}, an array of what each() encodes. */
static int array_reply(const char *key, const void *items, size_t n, size_t size,
	json_t *(*each)(const void *item), json_t **ret)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < n; i++)
		if (json_array_append_new(arr, each((const char *)items + i * size)) < 0) {
			json_decref(arr);
			arr = NULL;
		}
	*ret = arr ? json_pack("{s:o}", key, arr) : NULL;
	return *ret ? 0 : -ENOMEM;
}

/* The array at j[key] into a calloc'd array of n items (*ret_items), each read by parse(). */
static int array_parse(const json_t *j, const char *key, size_t size,
	int (*parse)(const json_t *e, void *item), void (*done)(void *item), void **ret_items,
	size_t *ret_n)
{
	const json_t *arr = json_object_get(j, key), *e;
	char *items;
	size_t i, n = 0;

	if (!json_is_array(arr) || json_object_size(j) != 1)
		return -EPROTO;
	items = calloc(json_array_size(arr) + 1, size);
	if (!items)
		return -ENOMEM;
	json_array_foreach(arr, i, e) {
		if (parse(e, items + n * size) < 0) {
			while (n > 0)
				done(items + --n * size);
			free(items);
			return -EPROTO;
		}
		n++;
	}
	*ret_items = items;
	*ret_n = n;
	return 0;
}

static json_t *info_json(const void *item)
{
	return kura_wire_info(item);
}

static int info_parse(const json_t *e, void *item)
{
	return kura_wire_info_parse(e, item);
}

static void info_done(void *item)
{
	kura_secret_info_done(item);
}

static int list_reply(const struct kura_op_args *a, const struct kura_op_result *res, json_t **ret,
	struct kura_secbuf **raw)
{
	(void)a;
	(void)raw;
	return array_reply("secrets", res->secrets.items, res->secrets.n,
		sizeof(*res->secrets.items), info_json, ret);
}

static int list_reply_parse(const json_t *j, struct kura_op_result *res)
{
	void *items = NULL;
	int r = array_parse(j, "secrets", sizeof(*res->secrets.items), info_parse, info_done,
		&items, &res->secrets.n);

	res->secrets.items = items;
	return r;
}

/* --- secret.rollback, secret.destroy --- */

static const struct kura_op_field rollback_fields[] = {
	FIELD("name", KURA_OP_STRING, true, name),
	COUNT("to", true, to),
};

static int rollback_run(struct kura_vault *v, struct kura_op_args *a, struct kura_op_result *res,
	struct kura_err *err)
{
	(void)res;
	return kura_secret_rollback(v, a->name, a->to, err);
}

static void rollback_record(const struct kura_op_args *a, const struct kura_op_result *res, int r,
	struct kura_audit_event *e)
{
	(void)res;
	(void)r;
	e->version = a->to;
}

static const struct kura_op_field destroy_fields[] = {
	FIELD("name", KURA_OP_STRING, true, name),
	COUNT("version", false, version),
	FIELD("all", KURA_OP_BOOL, false, all),
};

/* One version or, said in so many words, the whole secret: never a number standing for it. */
static int destroy_check(const struct kura_op_args *a, struct kura_err *err)
{
	if (!a->all == !a->version)
		return kura_err_set(err, -EINVAL,
			"secret.destroy takes either \"version\" or \"all\": true");
	return 0;
}

static int destroy_run(struct kura_vault *v, struct kura_op_args *a, struct kura_op_result *res,
	struct kura_err *err)
{
	(void)res;
	return kura_secret_destroy(v, a->name, a->all ? 0 : a->version, err);
}

static void version_record(const struct kura_op_args *a, const struct kura_op_result *res, int r,
	struct kura_audit_event *e)
{
	(void)res;
	(void)r;
	e->version = a->version;
}

/* --- grants --- */

static const struct kura_op_field grant_add_fields[] = {
	FIELD("grant", KURA_OP_GRANT, true, grant),
};

static int grant_add_run(struct kura_vault *v, struct kura_op_args *a, struct kura_op_result *res,
	struct kura_err *err)
{
	return kura_grant_add(v, a->grant, &res->existed, err);
}

static int grant_add_reply(const struct kura_op_args *a, const struct kura_op_result *res,
	json_t **ret, struct kura_secbuf **raw)
{
	json_t *g = kura_wire_grant(a->grant);

	(void)raw;
	*ret = g ? json_pack("{s:o, s:b}", "grant", g, "existed", res->existed) : NULL;
	return *ret ? 0 : -ENOMEM;
}

static int grant_add_reply_parse(const json_t *j, struct kura_op_result *res)
{
	const json_t *existed = json_object_get(j, "existed");

	if (!json_is_boolean(existed) || json_object_size(j) != 2 ||
		kura_wire_grant_parse(json_object_get(j, "grant"), &res->grant) < 0)
		return -EPROTO;
	res->existed = json_is_true(existed);
	return 0;
}

static void grant_add_record(const struct kura_op_args *a, const struct kura_op_result *res, int r,
	struct kura_audit_event *e)
{
	(void)res;
	(void)r;
	/* Set by kura_grant_add, even for a refusal when the grant was valid enough. */
	e->grant_id = a->grant && a->grant->id[0] ? a->grant->id : NULL;
}

static const struct kura_op_field grant_remove_fields[] = {
	FIELD("id", KURA_OP_STRING, true, id),
};

static int grant_remove_run(struct kura_vault *v, struct kura_op_args *a,
	struct kura_op_result *res, struct kura_err *err)
{
	(void)res;
	return kura_grant_remove(v, a->id, err);
}

static void grant_remove_record(const struct kura_op_args *a, const struct kura_op_result *res,
	int r, struct kura_audit_event *e)
{
	(void)res;
	(void)r;
	e->grant_id = a->id;
}

static int grant_list_run(struct kura_vault *v, struct kura_op_args *a, struct kura_op_result *res,
	struct kura_err *err)
{
	(void)a;
	return kura_grant_list(v, &res->grants, err);
}

static json_t *grant_json(const void *item)
{
	return kura_wire_grant(item);
}

static int grant_parse(const json_t *e, void *item)
{
	return kura_wire_grant_parse(e, item);
}

static void grant_done(void *item)
{
	kura_grant_done(item);
}

static int grant_list_reply(const struct kura_op_args *a, const struct kura_op_result *res,
	json_t **ret, struct kura_secbuf **raw)
{
	(void)a;
	(void)raw;
	return array_reply("grants", res->grants.items, res->grants.n, sizeof(*res->grants.items),
		grant_json, ret);
}

static int grant_list_reply_parse(const json_t *j, struct kura_op_result *res)
{
	void *items = NULL;
	int r = array_parse(j, "grants", sizeof(*res->grants.items), grant_parse, grant_done,
		&items, &res->grants.n);

	res->grants.items = items;
	return r;
}

/* --- keys --- */

static int key_rotate_run(struct kura_vault *v, struct kura_op_args *a, struct kura_op_result *res,
	struct kura_err *err)
{
	return kura_key_rotate(v, a->progress, a->progress_data, &res->rewrapped, &res->kek, err);
}

static const struct kura_op_field key_rotate_reply_fields[] = {
	REPLY("rewrapped", KURA_OP_U64, 0, INT64_MAX, rewrapped),
	REPLY("kek", KURA_OP_U32, 1, UINT32_MAX, kek),
};

static void key_rotate_record(const struct kura_op_args *a, const struct kura_op_result *res, int r,
	struct kura_audit_event *e)
{
	(void)a;
	if (r < 0)
		return;
	e->kek = res->kek;
	e->count = (int64_t)res->rewrapped;
	e->has_count = true;
}

/* kurad reads the new key or passphrase itself, from a file on this host: never from the
 * request, and never standard input. For the TPM2 there is no file, only the TCTI to seal to. */
static const struct kura_op_field key_rekey_fields[] = {
	FIELD("kind", KURA_OP_MASTER_KIND, true, master.kind),
	FIELD("path", KURA_OP_ABS_PATH, false, master.path),
	FIELD("tcti", KURA_OP_STRING, false, master.tcti),
};

static int key_rekey_run(struct kura_vault *v, struct kura_op_args *a, struct kura_op_result *res,
	struct kura_err *err)
{
	(void)res;
	return kura_key_rekey(v, &a->master, err);
}

static int key_status_run(struct kura_vault *v, struct kura_op_args *a, struct kura_op_result *res,
	struct kura_err *err)
{
	(void)a;
	return kura_key_status(v, &res->status, err);
}

static int key_status_reply(const struct kura_op_args *a, const struct kura_op_result *res,
	json_t **ret, struct kura_secbuf **raw)
{
	(void)a;
	(void)raw;
	*ret = kura_wire_status(&res->status);
	return *ret ? 0 : -ENOMEM;
}

static int key_status_reply_parse(const json_t *j, struct kura_op_result *res)
{
	return kura_wire_status_parse(j, &res->status) < 0 ? -EPROTO : 0;
}

/* --- config --- */

static const struct kura_op_field config_fields[] = {
	COUNT("max_value_size", false, max_value_size),
};

static int config_run(struct kura_vault *v, struct kura_op_args *a, struct kura_op_result *res,
	struct kura_err *err)
{
	int r = a->max_value_size ? kura_vault_set_max_value(v, a->max_value_size, err) : 0;

	res->max_value_size = kura_vault_max_value(v);
	return r;
}

static const struct kura_op_field config_reply_fields[] = {
	REPLY("max_value_size", KURA_OP_U64, 1, INT64_MAX, max_value_size),
};

/* Only a change is recorded; showing the limit is not. */
static bool config_recorded(const struct kura_op_args *a)
{
	return a->max_value_size != 0;
}

#define ARGS(f) .fields = (f), .n_fields = ELEMENTSOF(f)
#define REPLIES(f) .reply_fields = (f), .n_reply_fields = ELEMENTSOF(f)

/* An operation without .reply has the reply its .reply_fields say ({} when none). */
static const struct kura_operation ops[] = {
	{ .name = "secret.write",
		.event = KURA_EVENT_SECRET_PUT,
		.changes = true,
		ARGS(write_fields),
		.run = write_run,
		REPLIES(write_reply_fields),
		.record = write_record },
	{ .name = "secret.get",
		.event = KURA_EVENT_SECRET_GET,
		ARGS(get_fields),
		.run = get_run,
		.reply = get_reply,
		.reply_parse = get_reply_parse,
		.record = get_record },
	{ .name = "secret.show",
		ARGS(name_fields),
		.run = show_run,
		.reply = show_reply,
		.reply_parse = show_reply_parse },
	{ .name = "secret.list",
		ARGS(list_fields),
		.run = list_run,
		.reply = list_reply,
		.reply_parse = list_reply_parse },
	{ .name = "secret.rollback",
		.event = KURA_EVENT_SECRET_ROLLBACK,
		.changes = true,
		ARGS(rollback_fields),
		.run = rollback_run,
		.record = rollback_record },
	{ .name = "secret.destroy",
		.event = KURA_EVENT_SECRET_DESTROY,
		.changes = true,
		ARGS(destroy_fields),
		.check = destroy_check,
		.run = destroy_run,
		.record = version_record },
	{ .name = "grant.add",
		.event = KURA_EVENT_GRANT,
		.changes = true,
		ARGS(grant_add_fields),
		.run = grant_add_run,
		.reply = grant_add_reply,
		.reply_parse = grant_add_reply_parse,
		.record = grant_add_record },
	{ .name = "grant.remove",
		.event = KURA_EVENT_REVOKE,
		.changes = true,
		ARGS(grant_remove_fields),
		.run = grant_remove_run,
		.record = grant_remove_record },
	{ .name = "grant.list",
		.run = grant_list_run,
		.reply = grant_list_reply,
		.reply_parse = grant_list_reply_parse },
	{ .name = "key.rotate",
		.event = KURA_EVENT_KEY_ROTATE,
		.changes = true,
		.run = key_rotate_run,
		REPLIES(key_rotate_reply_fields),
		.record = key_rotate_record },
	{ .name = "key.rekey",
		.event = KURA_EVENT_KEY_REKEY,
		.changes = true,
		ARGS(key_rekey_fields),
		.run = key_rekey_run },
	{ .name = "key.status",
		.run = key_status_run,
		.reply = key_status_reply,
		.reply_parse = key_status_reply_parse },
	{ .name = "config",
		.event = KURA_EVENT_CONFIG,
		.changes = true,
		ARGS(config_fields),
		.run = config_run,
		REPLIES(config_reply_fields),
		.recorded = config_recorded },
};

const struct kura_operation *kura_op_find(const char *name)
{
	for (size_t i = 0; name && i < ELEMENTSOF(ops); i++)
		if (strcmp(ops[i].name, name) == 0)
			return &ops[i];
	return NULL;
}

const struct kura_operation *kura_op_at(size_t i)
{
	return i < ELEMENTSOF(ops) ? &ops[i] : NULL;
}

/* --- the generic part: fields in and out, the run, the record --- */

/* The field f of an arguments or result struct at base. */
#define AT(base, f, type) ((type *)(void *)((char *)(base) + (f)->offset))

static const struct kura_op_field *field_of(const struct kura_op_field *fields, size_t n,
	const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(fields[i].key, key) == 0)
			return &fields[i];
	return NULL;
}

static int parse_field(const char *what, const struct kura_op_field *f, const json_t *v, void *base,
	struct kura_err *err)
{
	const char *s;
	json_int_t n;

	switch (f->type) {
	case KURA_OP_STRING:
	case KURA_OP_ABS_PATH:
		s = json_string_value(v);
		if (!s)
			return kura_err_set(err, -EINVAL, "%s: field \"%s\" must be a string", what,
				f->key);
		if (f->type == KURA_OP_ABS_PATH && s[0] != '/')
			return kura_err_set(err, -EINVAL,
				"%s: field \"%s\" must be an absolute path", what, f->key);
		*AT(base, f, const char *) = s;
		return 0;
	case KURA_OP_BOOL:
		if (!json_is_boolean(v))
			return kura_err_set(err, -EINVAL, "%s: field \"%s\" must be true or false",
				what, f->key);
		*AT(base, f, bool) = json_is_true(v);
		return 0;
	case KURA_OP_U64:
	case KURA_OP_U32:
		n = json_integer_value(v);
		if (!json_is_integer(v) || n < f->min || n > f->max)
			return kura_err_set(err, -EINVAL,
				"%s: field \"%s\" must be an integer from %" PRId64 " to %" PRId64,
				what, f->key, f->min, f->max);
		if (f->type == KURA_OP_U32)
			*AT(base, f, uint32_t) = (uint32_t)n;
		else
			*AT(base, f, uint64_t) = (uint64_t)n;
		return 0;
	case KURA_OP_VALUE: {
		int r = kura_wire_value_parse(v, AT(base, f, struct kura_secbuf *));

		if (r == -ENOMEM)
			return r;
		if (r < 0)
			return kura_err_set(err, -EINVAL, "%s: field \"%s\" must be base64", what,
				f->key);
		return 0;
	}
	case KURA_OP_GRANT: {
		struct kura_grant *g = calloc(1, sizeof(*g));

		if (!g)
			return -ENOMEM;
		*AT(base, f, struct kura_grant *) = g;
		if (!json_is_object(v) || kura_wire_grant_parse(v, g) < 0)
			return kura_err_set(err, -EINVAL, "%s: field \"%s\" is not a valid grant",
				what, f->key);
		return 0;
	}
	case KURA_OP_MASTER_KIND:
		if (kura_master_kind_parse(json_string_value(v),
			    AT(base, f, enum kura_master_kind)) < 0)
			return kura_err_set(err, -EINVAL,
				"%s: field \"%s\" must be \"file\", \"passphrase\" or \"tpm2\"",
				what, f->key);
		return 0;
	}
	return -EINVAL;
}

/* j's members into base by fields: each known one checked, a required one missing or any
 * unknown one refused. Known fields go first, in schema order, so that a refusal's record
 * names what did parse. */
static int parse_fields(const char *what, const struct kura_op_field *fields, size_t n,
	const json_t *j, void *base, struct kura_err *err)
{
	const char *key;
	const json_t *v;
	int r;

	if (!json_is_object(j))
		return kura_err_set(err, -EINVAL, "%s: not a JSON object", what);
	for (size_t i = 0; i < n; i++) {
		v = json_object_get(j, fields[i].key);
		if (!v) {
			if (fields[i].required)
				return kura_err_set(err, -EINVAL, "%s: missing field \"%s\"", what,
					fields[i].key);
			continue;
		}
		r = parse_field(what, &fields[i], v, base, err);
		if (r < 0)
			return r;
	}
	json_object_foreach((json_t *)j, key, v)
		if (!field_of(fields, n, key))
			return kura_err_set(err, -EINVAL, "%s: unknown field \"%s\"", what, key);
	return 0;
}

/* A field's JSON; NULL when it is absent (zero, and not required) or out of memory. */
static json_t *field_json(const struct kura_op_field *f, const void *base)
{
	const struct kura_secbuf *value;
	const char *s;
	uint64_t n;
	json_t *j;

	switch (f->type) {
	case KURA_OP_STRING:
	case KURA_OP_ABS_PATH:
		s = *AT(base, f, const char *const);
		return s ? json_string(s) : NULL;
	case KURA_OP_BOOL:
		return *AT(base, f, const bool) || f->required ?
			json_boolean(*AT(base, f, const bool)) :
			NULL;
	case KURA_OP_U64:
	case KURA_OP_U32:
		n = f->type == KURA_OP_U32 ? *AT(base, f, const uint32_t) :
					     *AT(base, f, const uint64_t);
		return n || f->required ? json_integer((json_int_t)n) : NULL;
	case KURA_OP_VALUE: {
		struct kura_secbuf *b64 = NULL;

		value = *AT(base, f, struct kura_secbuf *const);
		/* The base64 text is as secret as the value: kept in guarded memory, then in
		 * jansson's, which wipes what it frees. */
		if (!value || kura_base64_secbuf(value, &b64) < 0)
			return NULL;
		j = json_stringn((const char *)b64->data, b64->len);
		kura_secbuf_free(b64);
		return j;
	}
	case KURA_OP_GRANT:
		return *AT(base, f, struct kura_grant *const) ?
			kura_wire_grant(*AT(base, f, struct kura_grant *const)) :
			NULL;
	case KURA_OP_MASTER_KIND:
		return json_string(
			kura_master_kind_name(*AT(base, f, const enum kura_master_kind)));
	}
	return NULL;
}

/* The fields of base as one JSON object. -EINVAL when a required one is absent (a request
 * kurad would refuse is refused here, without a round trip). */
static int fields_json(const struct kura_op_field *fields, size_t n, const void *base, json_t **ret)
{
	_cleanup_json_ json_t *j = json_object();

	if (!j)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		json_t *v = field_json(&fields[i], base);

		if (!v && fields[i].required)
			return -EINVAL;
		if (v && json_object_set_new(j, fields[i].key, v) < 0)
			return -ENOMEM;
	}
	*ret = TAKE_PTR(j);
	return 0;
}

int kura_op_args_parse(const struct kura_operation *op, const json_t *j, struct kura_op_args *ret,
	struct kura_err *err)
{
	int r;

	*ret = (struct kura_op_args){ .owned = true };
	r = parse_fields(op->name, op->fields, op->n_fields, j, ret, err);
	if (r == 0 && op->check)
		r = op->check(ret, err);
	return r;
}

void kura_op_args_done(struct kura_op_args *a)
{
	if (!a || !a->owned)
		return;
	kura_secbuf_free(a->value);
	a->value = NULL;
	if (a->grant) {
		kura_grant_done(a->grant);
		free(a->grant);
		a->grant = NULL;
	}
}

int kura_op_request(const struct kura_operation *op, const struct kura_op_args *a,
	struct kura_secbuf **ret)
{
	_cleanup_json_ json_t *j = NULL;
	char *s;
	int r;

	r = fields_json(op->fields, op->n_fields, a, &j);
	if (r < 0)
		return r;
	s = json_dumps(j, JSON_COMPACT);
	if (!s)
		return -ENOMEM;
	r = kura_secbuf_from(s, strlen(s), ret);
	kura_json_free(s);
	return r;
}

int kura_op_run(const struct kura_operation *op, struct kura_vault *v, struct kura_op_args *a,
	struct kura_op_result *res, struct kura_err *err)
{
	int r = op->check ? op->check(a, err) : 0;

	if (r == 0)
		r = op->run(v, a, res, err);
	if (r < 0)
		kura_op_result_done(res);
	return r;
}

int kura_op_reply(const struct kura_operation *op, const struct kura_op_args *a,
	const struct kura_op_result *res, json_t **ret_json, struct kura_secbuf **ret_raw)
{
	*ret_json = NULL;
	*ret_raw = NULL;
	if (op->reply)
		return op->reply(a, res, ret_json, ret_raw);
	return fields_json(op->reply_fields, op->n_reply_fields, res, ret_json);
}

int kura_op_reply_parse(const struct kura_operation *op, const json_t *j,
	struct kura_op_result *res)
{
	int r;

	if (!json_is_object(j))
		return -EPROTO;
	if (op->reply_parse)
		r = op->reply_parse(j, res);
	else
		r = parse_fields(op->name, op->reply_fields, op->n_reply_fields, j, res, NULL);
	if (r < 0) {
		kura_op_result_done(res);
		return r == -ENOMEM ? r : -EPROTO;
	}
	return 0;
}

void kura_op_result_done(struct kura_op_result *res)
{
	if (!res)
		return;
	kura_secbuf_free(res->value);
	kura_secret_info_done(&res->secret);
	kura_secret_list_done(&res->secrets);
	kura_grant_done(&res->grant);
	kura_grant_list_done(&res->grants);
	kura_key_status_done(&res->status);
	*res = (struct kura_op_result){ 0 };
}

bool kura_op_recorded(const struct kura_operation *op, const struct kura_op_args *a)
{
	return op->event && (!op->recorded || op->recorded(a));
}

bool kura_op_record(const struct kura_operation *op, const struct kura_op_args *a,
	const struct kura_op_result *res, int r, const struct kura_identity *who,
	const char *detail, struct kura_op_record *rec)
{
	if (!kura_op_recorded(op, a))
		return false;
	kura_request_id(rec->request_id);
	rec->event = (struct kura_audit_event){ .event = op->event,
		.result = r == 0 ? "ok" : "error",
		.reason = r == 0 ? NULL : kura_outcome_reason(r),
		.who = who,
		.secret = a->name,
		.request_id = rec->request_id,
		.detail = detail,
		.fingerprint = r == 0 && res->fingerprint[0] ? res->fingerprint : NULL };
	if (op->record)
		op->record(a, res, r, &rec->event);
	return true;
}

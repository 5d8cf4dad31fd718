/* Unit tests of the operations table (ops.h) on real SQLite stores: every operation's schema,
 * strict parsing of every field, and kuractl offline and kurad (with kuractl reading its reply)
 * giving the same replies and audit records. Touches plaintext: test values only. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "json.h"
#include "ops.h"
#include "tap.h"
#include "wire.h"

static char root[] = "/tmp/kura-test-ops-XXXXXX";

/* A valid request of each operation: every field it has, so that each can be broken. */
static const struct sample {
	const char *op;
	const char *args;
} samples[] = {
	{ "secret.write", "{\"name\":\"db/pw\",\"value\":\"czNjcmV0\",\"create\":true}" },
	{ "secret.get", "{\"name\":\"db/pw\",\"version\":1}" },
	{ "secret.show", "{\"name\":\"db/pw\"}" },
	{ "secret.list", "{\"prefix\":\"db/\"}" },
	{ "secret.rollback", "{\"name\":\"db/pw\",\"to\":1}" },
	{ "secret.destroy", "{\"name\":\"db/pw\",\"version\":1}" },
	{ "grant.add",
		"{\"grant\":{\"created\":0,\"host\":true,\"labels\":{},\"pattern\":\"db/*\","
		"\"uid\":0}}" },
	{ "grant.remove", "{\"id\":\"0123456789abcdef\"}" },
	{ "grant.list", "{}" },
	{ "key.rotate", "{}" },
	{ "key.rekey", "{\"kind\":\"file\",\"path\":\"/tmp/new.key\"}" },
	{ "key.status", "{}" },
	{ "config", "{\"max_value_size\":4096}" },
};

static const char *sample_of(const char *op)
{
	for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++)
		if (strcmp(samples[i].op, op) == 0)
			return samples[i].args;
	return NULL;
}

static json_t *load(const char *s)
{
	json_t *j = json_loads(s, JSON_REJECT_DUPLICATES, NULL);

	if (!j)
		abort();
	return j;
}

/* Parse j as op's arguments; the errno, with the message in err. */
static int parse(const struct kura_operation *op, const json_t *j, struct kura_err *err)
{
	struct kura_op_args a = { 0 };
	int r;

	*err = (struct kura_err){ 0 };
	r = kura_op_args_parse(op, j, &a, err);
	kura_op_args_done(&a);
	return r;
}

/* j with key set to v (stolen) or, with v NULL, removed; parsed as op's arguments. Checks that it
 * is refused with -EINVAL and a message naming the field. */
static void refused(const struct kura_operation *op, const char *base, const char *key, json_t *v,
	const char *why)
{
	_cleanup_json_ json_t *j = load(base);
	struct kura_err err;
	char quoted[128];
	int r;

	if (v)
		json_object_set_new(j, key, v);
	else
		json_object_del(j, key);
	r = parse(op, j, &err);
	snprintf(quoted, sizeof(quoted), "\"%s\"", key);
	tap_ok(r == -EINVAL && strstr(err.msg, quoted) && strstr(err.msg, op->name),
		"%s: %s %s is -EINVAL naming it (%d: %s)", op->name, key, why, r, err.msg);
}

/* Values of the wrong type, or out of range, for a field of this type. */
static void wrong_values(const struct kura_operation *op, const char *base,
	const struct kura_op_field *f)
{
	refused(op, base, f->key, json_null(), "as null");
	switch (f->type) {
	case KURA_OP_STRING:
	case KURA_OP_ABS_PATH:
		refused(op, base, f->key, json_integer(5), "as a number");
		refused(op, base, f->key, json_true(), "as a boolean");
		if (f->type == KURA_OP_ABS_PATH)
			refused(op, base, f->key, json_string("relative/key"), "relative");
		break;
	case KURA_OP_BOOL:
		refused(op, base, f->key, json_string("true"), "as a string");
		refused(op, base, f->key, json_integer(1), "as a number");
		break;
	case KURA_OP_U64:
	case KURA_OP_U32:
		refused(op, base, f->key, json_string("1"), "as a string");
		refused(op, base, f->key, json_string("x"), "malformed");
		refused(op, base, f->key, json_real(1.5), "as a fraction");
		refused(op, base, f->key, json_integer(0), "as 0 (below its range)");
		refused(op, base, f->key, json_integer(-1), "negative");
		refused(op, base, f->key, json_real(1e19), "past its range");
		break;
	case KURA_OP_VALUE:
		refused(op, base, f->key, json_integer(5), "as a number");
		refused(op, base, f->key, json_string("not base64!"), "not base64");
		refused(op, base, f->key, json_string("czNjcmV0="), "in a second spelling");
		break;
	case KURA_OP_GRANT:
		refused(op, base, f->key, json_string("db/*"), "as a string");
		refused(op, base, f->key, json_object(), "empty");
		refused(op, base, f->key, load("{\"pattern\":\"db/*\"}"), "with no selector");
		break;
	case KURA_OP_MASTER_KIND:
		refused(op, base, f->key, json_string("tpm"), "unknown");
		refused(op, base, f->key, json_integer(0), "as a number");
		break;
	}
}

static void test_schema(void)
{
	const struct kura_operation *op;
	size_t n = 0;

	for (size_t i = 0; (op = kura_op_at(i)); i++, n++) {
		const char *base = sample_of(op->name);
		_cleanup_json_ json_t *j = NULL, *back = NULL;
		_cleanup_secbuf_ struct kura_secbuf *req = NULL;
		struct kura_op_args a = { 0 };
		struct kura_err err = { 0 };

		tap_ok(kura_op_find(op->name) == op, "%s: found by its name", op->name);
		tap_ok(!op->changes || op->event, "%s: a change is recorded", op->name);
		if (!tap_ok(base != NULL, "%s: this test has a request of it", op->name))
			continue;
		j = load(base);
		tap_is(kura_op_args_parse(op, j, &a, &err), 0, "%s: %s parses (%s)", op->name, base,
			err.msg);
		tap_is(kura_op_request(op, &a, &req), 0, "%s: written back as a request", op->name);
		back = req ? json_loadb((const char *)req->data, req->len, 0, NULL) : NULL;
		tap_ok(back && json_equal(back, j), "%s: the same JSON: %.*s", op->name,
			req ? (int)req->len : 0, req ? (const char *)req->data : "");
		kura_op_args_done(&a);

		for (size_t k = 0; k < op->n_fields; k++) {
			const struct kura_op_field *f = &op->fields[k];

			if (f->required) {
				tap_ok(json_object_get(j, f->key) != NULL, "%s: the sample has %s",
					op->name, f->key);
				refused(op, base, f->key, NULL, "missing");
			}
			wrong_values(op, base, f);
		}
		refused(op, base, "bogus", json_integer(1), "(unknown)");
		refused(op, base, "Name", json_string("db/pw"), "(unknown: keys are exact)");
		{
			_cleanup_json_ json_t *arr = json_array();

			tap_is(parse(op, arr, &err), -EINVAL, "%s: an array is refused (%s)",
				op->name, err.msg);
		}
	}
	tap_is(n, sizeof(samples) / sizeof(samples[0]), "every sample is of an operation");
	tap_ok(kura_op_find("secret.nope") == NULL && kura_op_find("") == NULL &&
			kura_op_find(NULL) == NULL,
		"no operation by another name");
}

/* Replies the table reads by their fields: every field there, of its type, and nothing else. */
static void test_replies(void)
{
	const struct kura_operation *op;

	for (size_t i = 0; (op = kura_op_at(i)); i++) {
		_cleanup_json_ json_t *good = json_object();
		struct kura_op_result res = { 0 };

		if (op->reply)
			continue;
		for (size_t k = 0; k < op->n_reply_fields; k++)
			json_object_set_new(good, op->reply_fields[k].key,
				json_integer(op->reply_fields[k].min));
		tap_is(kura_op_reply_parse(op, good, &res), 0, "%s: its reply parses", op->name);
		kura_op_result_done(&res);
		for (size_t k = 0; k < op->n_reply_fields; k++) {
			const struct kura_op_field *f = &op->reply_fields[k];
			_cleanup_json_ json_t *miss = json_deep_copy(good),
					      *str = json_deep_copy(good),
					      *low = json_deep_copy(good);

			json_object_del(miss, f->key);
			json_object_set_new(str, f->key, json_string("1"));
			json_object_set_new(low, f->key, json_integer(f->min - 1));
			tap_ok(kura_op_reply_parse(op, miss, &res) == -EPROTO &&
					kura_op_reply_parse(op, str, &res) == -EPROTO &&
					kura_op_reply_parse(op, low, &res) == -EPROTO,
				"%s: a reply without %s, with it as a string, or below %lld is "
				"-EPROTO",
				op->name, f->key, (long long)f->min);
		}
		json_object_set_new(good, "bogus", json_true());
		tap_is(kura_op_reply_parse(op, good, &res), -EPROTO,
			"%s: a reply with an unknown field is -EPROTO", op->name);
	}
}

/* The whole secret only when asked for in so many words; version 0 is no version. */
static void test_destroy_args(void)
{
	const struct kura_operation *op = kura_op_find("secret.destroy");
	static const char *bad[] = {
		"{\"name\":\"db/pw\"}",
		"{\"name\":\"db/pw\",\"version\":0}",
		"{\"name\":\"db/pw\",\"all\":false}",
		"{\"name\":\"db/pw\",\"all\":true,\"version\":2}",
		"{\"name\":\"db/pw\",\"all\":1}",
	};
	struct kura_op_args a = { 0 };
	struct kura_err err;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		_cleanup_json_ json_t *j = load(bad[i]);

		tap_is(parse(op, j, &err), -EINVAL, "secret.destroy %s is refused (%s)", bad[i],
			err.msg);
	}
	{
		_cleanup_json_ json_t *j = load("{\"name\":\"db/pw\",\"all\":true}");

		err = (struct kura_err){ 0 };
		tap_ok(kura_op_args_parse(op, j, &a, &err) == 0 && a.all && a.version == 0,
			"secret.destroy {all: true} is the whole secret (%s)", err.msg);
		kura_op_args_done(&a);
	}
	/* Typed arguments go through the same rule (kuractl offline). */
	a = (struct kura_op_args){ .name = "db/pw" };
	err = (struct kura_err){ 0 };
	tap_is(kura_op_run(op, NULL, &a, &(struct kura_op_result){ 0 }, &err), -EINVAL,
		"offline, neither a version nor all is refused before the vault (%s)", err.msg);
}

static struct kura_vault *new_store(const char *name)
{
	struct kura_init_opts o = { .master = { .kind = KURA_MASTER_FILE } };
	struct kura_master_source m = { .kind = KURA_MASTER_FILE };
	struct kura_err err = { 0 };
	struct kura_vault *v = NULL;
	char dir[512];

	snprintf(dir, sizeof(dir), "%s/%s", root, name);
	if (kura_vault_init(dir, &o, &err) < 0 || kura_vault_open(dir, &m, 0, &v, &err) < 0)
		tap_diag("%s: %s", dir, err.msg);
	return v;
}

/* Times differ between two stores by the clock; everything else must not. */
static void mask(json_t *j)
{
	const char *key;
	json_t *v;
	size_t i;

	if (json_is_array(j))
		json_array_foreach(j, i, v)
			mask(v);
	json_object_foreach(j, key, v) {
		if (strcmp(key, "created") == 0 || strcmp(key, "updated") == 0)
			json_object_set_new(j, key, json_string("T"));
		else
			mask(v);
	}
}

/* A run's reply as bytes would carry it (JSON or a raw body), as JSON; NULL on failure. */
static json_t *reply_json(const struct kura_operation *op, const struct kura_op_args *a,
	const struct kura_op_result *res)
{
	struct kura_secbuf *raw = NULL;
	json_t *j = NULL;

	if (kura_op_reply(op, a, res, &j, &raw) < 0)
		return NULL;
	if (raw) {
		j = json_loadb((const char *)raw->data, raw->len, 0, NULL);
		kura_secbuf_free(raw);
	}
	return j;
}

static json_t *record_json(const struct kura_operation *op, const struct kura_op_args *a,
	const struct kura_op_result *res, int r)
{
	struct kura_identity who = { .host = true, .pid = 42, .uid = 0, .gid = 0 };
	struct kura_op_record rec;
	json_t *f;

	if (!kura_op_record(op, a, res, r, &who, "offline", &rec))
		return json_null();
	f = kura_audit_event_fields(&rec.event);
	tap_ok(strlen(json_string_value(json_object_get(f, "request_id"))) == KURA_REQUEST_ID_LEN,
		"%s: the record has a request id", op->name);
	json_object_del(f, "request_id");
	if (json_object_get(f, "fingerprint"))
		json_object_set_new(f, "fingerprint", json_true()); /* keyed per store */
	return f;
}

struct outcome {
	int r;
	json_t *reply;  /* masked; NULL when it failed */
	json_t *record; /* null when not recorded */
};

/* kuractl offline: typed arguments straight into the table. */
static struct outcome offline(struct kura_vault *v, const struct kura_operation *op,
	struct kura_op_args *a)
{
	struct kura_op_result res = { 0 };
	struct kura_err err = { 0 };
	struct outcome o;

	o.r = kura_op_run(op, v, a, &res, &err);
	o.reply = o.r == 0 ? reply_json(op, a, &res) : NULL;
	o.record = record_json(op, a, &res, o.r);
	mask(o.reply);
	kura_op_result_done(&res);
	return o;
}

/* kuractl through kurad: the request the table writes, parsed by kurad as the table parses it,
 * run; its reply parsed back by kuractl, which must hold what kurad sent. */
static struct outcome remote(struct kura_vault *v, const struct kura_operation *op,
	const struct kura_op_args *typed)
{
	_cleanup_secbuf_ struct kura_secbuf *req = NULL;
	struct kura_op_result res = { 0 }, back = { 0 };
	struct kura_op_args a = { 0 };
	struct kura_err err = { 0 };
	json_t *j = NULL;
	struct outcome o = { .r = -EPROTO };

	if (kura_op_request(op, typed, &req) < 0 ||
		!(j = json_loadb((const char *)req->data, req->len, JSON_REJECT_DUPLICATES, NULL)))
		return o;
	o.r = kura_op_args_parse(op, j, &a, &err);
	if (o.r == 0)
		o.r = kura_op_run(op, v, &a, &res, &err);
	o.reply = o.r == 0 ? reply_json(op, &a, &res) : NULL;
	o.record = record_json(op, &a, &res, o.r);
	if (o.reply) {
		json_t *again;
		int pr = kura_op_reply_parse(op, o.reply, &back);

		/* secret.get's reply is built from the name kuractl asked for. */
		again = pr == 0 ? reply_json(op, &a, &back) : NULL;
		tap_ok(again && json_equal(again, o.reply),
			"%s: kuractl reads back what kurad sent", op->name);
		json_decref(again);
		kura_op_result_done(&back);
		/* ... and nothing else. */
		again = json_deep_copy(o.reply);
		json_object_set_new(again, "bogus", json_true());
		tap_is(kura_op_reply_parse(op, again, &back), -EPROTO,
			"%s: kuractl refuses the reply with an unknown field", op->name);
		json_decref(again);
	}
	mask(o.reply);
	kura_op_result_done(&res);
	kura_op_args_done(&a);
	json_decref(j);
	return o;
}

static void same(struct kura_vault *va, struct kura_vault *vb, const char *name,
	struct kura_op_args *a, struct kura_op_args *b, int want)
{
	const struct kura_operation *op = kura_op_find(name);
	struct outcome x = offline(va, op, a), y = remote(vb, op, b);
	char *rx = x.record ?
		json_dumps(x.record, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY) :
		NULL;
	char *ry = y.record ?
		json_dumps(y.record, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY) :
		NULL;

	tap_ok(x.r == want && y.r == want, "%s: %d offline, %d through kurad (want %d)", name, x.r,
		y.r, want);
	tap_ok(want < 0 ? !x.reply && !y.reply : x.reply && json_equal(x.reply, y.reply),
		"%s: the same reply on both paths", name);
	tap_ok(rx && ry && strcmp(rx, ry) == 0, "%s: the same record on both paths: %s", name,
		rx ? rx : "(none)");
	if (rx && ry && strcmp(rx, ry) != 0)
		tap_diag("through kurad: %s", ry);
	kura_json_free(rx);
	kura_json_free(ry);
	json_decref(x.reply);
	json_decref(y.reply);
	json_decref(x.record);
	json_decref(y.record);
}

static struct kura_secbuf *val(const char *s)
{
	struct kura_secbuf *b = NULL;

	if (kura_secbuf_from(s, strlen(s), &b) < 0)
		abort();
	return b;
}

static void test_both_paths(void)
{
	struct kura_vault *va = new_store("offline"), *vb = new_store("kurad");
	_cleanup_secbuf_ struct kura_secbuf *v1 = val("s3cret"), *v2 = val("s3cret, again");
	_cleanup_json_ json_t *gj = load("{\"created\":0,\"host\":true,\"labels\":{},"
					 "\"pattern\":\"db/*\",\"uid\":0}");
	struct kura_grant ga = { 0 }, gb = { 0 };
	char keya[600], keyb[600], id[KURA_GRANT_ID_LEN + 1];

	if (!tap_ok(va && vb, "two real SQLite stores")) {
		kura_vault_close(va);
		kura_vault_close(vb);
		return;
	}
#define SAME(name, want, ...)                                                                      \
	same(va, vb, name, &(struct kura_op_args){ __VA_ARGS__ },                                  \
		&(struct kura_op_args){ __VA_ARGS__ }, want)
	SAME("config", 0, .max_value_size = 8192);
	SAME("config", 0);
	SAME("secret.write", 0, .name = "db/pw", .value = v1, .create = true);
	SAME("secret.write", -EEXIST, .name = "db/pw", .value = v1, .create = true);
	SAME("secret.write", 0, .name = "db/pw", .value = v2);
	SAME("secret.write", -ENOENT, .name = "no/such", .value = v2);
	SAME("secret.get", 0, .name = "db/pw");
	SAME("secret.get", 0, .name = "db/pw", .version = 1);
	SAME("secret.get", -ENOENT, .name = "db/pw", .version = 7);
	SAME("secret.show", 0, .name = "db/pw");
	SAME("secret.list", 0, .prefix = "db/");
	SAME("secret.list", 0);
	SAME("secret.rollback", 0, .name = "db/pw", .to = 1);
	SAME("secret.destroy", 0, .name = "db/pw", .version = 2);
	SAME("secret.destroy", -EPERM, .name = "db/pw", .version = 1);
	if (kura_wire_grant_parse(gj, &ga) == 0 && kura_wire_grant_parse(gj, &gb) == 0) {
		same(va, vb, "grant.add", &(struct kura_op_args){ .grant = &ga },
			&(struct kura_op_args){ .grant = &gb }, 0);
		snprintf(id, sizeof(id), "%s", ga.id);
		SAME("grant.list", 0);
		SAME("grant.remove", 0, .id = id);
		SAME("grant.remove", -ENOENT, .id = id);
	} else {
		tap_ok(false, "the test's grant parses");
	}
	kura_grant_done(&ga);
	kura_grant_done(&gb);
	SAME("key.rotate", 0);
	SAME("key.status", 0);
	snprintf(keya, sizeof(keya), "%s/new-a.key", root);
	snprintf(keyb, sizeof(keyb), "%s/new-b.key", root);
	same(va, vb, "key.rekey",
		&(struct kura_op_args){ .master = { .kind = KURA_MASTER_FILE, .path = keya } },
		&(struct kura_op_args){ .master = { .kind = KURA_MASTER_FILE, .path = keyb } }, 0);
	SAME("secret.destroy", 0, .name = "db/pw", .all = true);
	SAME("secret.get", -ENOENT, .name = "db/pw");
#undef SAME
	kura_vault_close(va);
	kura_vault_close(vb);
}

int main(void)
{
	if (kura_keys_init() < 0 || !mkdtemp(root))
		return 99;
	kura_json_init();
	test_schema();
	test_destroy_args();
	test_replies();
	test_both_paths();
	tap_rmtree(root);
	return tap_done();
}

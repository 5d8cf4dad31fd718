/* Unit tests of the admin API's JSON forms (wire.h): each encoder read back by its decoder,
 * and each decoder refusing what its encoder never writes. Touches plaintext: test values. */
#include <errno.h>
#include <string.h>

#include "json.h"
#include "tap.h"
#include "wire.h"

static json_t *load(const char *s)
{
	json_t *j = json_loads(s, 0, NULL);

	if (!j)
		abort();
	return j;
}

static void test_info(void)
{
	struct kura_version_info vers[] = { { 1, 100, 6, 1 }, { 2, 200, 7, 2 } };
	struct kura_secret_info i = { .name = "db/pw",
		.current = 2,
		.latest = 2,
		.created = 100,
		.updated = 200,
		.versions = vers,
		.n_versions = 2 };
	struct kura_secret_info back = { 0 };
	_cleanup_json_ json_t *j = kura_wire_info(&i), *again = NULL;
	static const char *bad[] = {
		"{\"current\":1,\"latest\":1,\"created\":1,\"updated\":1,\"versions\":[]}",
		"{\"name\":\"a\",\"current\":-1,\"latest\":1,\"created\":1,\"updated\":1,"
		"\"versions\":[]}",
		"{\"name\":\"a\",\"current\":\"1\",\"latest\":1,\"created\":1,\"updated\":1,"
		"\"versions\":[]}",
		"{\"name\":\"a\",\"current\":1,\"latest\":1,\"created\":1,\"updated\":1}",
		"{\"name\":\"a\",\"current\":1,\"latest\":1,\"created\":1,\"updated\":1,"
		"\"versions\":[{\"version\":0,\"size\":1,\"kek\":1,\"created\":1}]}",
		"{\"name\":\"a\",\"current\":1,\"latest\":1,\"created\":1,\"updated\":1,"
		"\"versions\":[{\"version\":1,\"size\":1,\"kek\":0,\"created\":1}]}",
		"{\"name\":\"a\",\"current\":1,\"latest\":1,\"created\":1,\"updated\":1,"
		"\"versions\":[],\"value\":\"djE=\"}",
		"{\"name\":\"a\",\"current\":1,\"latest\":1,\"created\":1,\"updated\":1,"
		"\"versions\":[{\"version\":1,\"size\":1,\"kek\":1,\"created\":1,\"x\":1}]}",
	};

	tap_is(kura_wire_info_parse(j, &back), 0, "secret info: read back");
	tap_ok(back.name && strcmp(back.name, "db/pw") == 0 && back.current == 2 &&
			back.n_versions == 2 && back.versions[1].kek_id == 2 &&
			back.versions[0].size == 6 && back.versions[1].created == 200,
		"secret info: every field as written");
	again = kura_wire_info(&back);
	tap_ok(again && json_equal(j, again), "secret info: encodes to the same JSON");
	kura_secret_info_done(&back);
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		_cleanup_json_ json_t *b = load(bad[k]);
		struct kura_secret_info x = { 0 };

		tap_is(kura_wire_info_parse(b, &x), -EPROTO, "secret info: %s is refused", bad[k]);
	}
}

static void test_status(void)
{
	uint32_t ids[] = { 3 };
	int64_t created[] = { 1000 };
	uint64_t per[] = { 5 };
	struct kura_key_status s = { .master = KURA_MASTER_PASSPHRASE,
		.kdf = { .opslimit = 3, .memlimit = 1 << 20 },
		.current = 3,
		.kek_ids = ids,
		.kek_created = created,
		.n_keks = 1,
		.n_secrets = 4,
		.n_versions = 5,
		.per_kek = per,
		.revision = 9,
		.schema = 2,
		.max_value_size = 65536 };
	struct kura_key_status back = { 0 };
	_cleanup_json_ json_t *j = kura_wire_status(&s), *again = NULL, *bad = NULL;

	tap_is(kura_wire_status_parse(j, &back), 0, "key status: read back");
	tap_ok(back.master == KURA_MASTER_PASSPHRASE && back.current == 3 && back.n_keks == 1 &&
			back.kek_ids[0] == 3 && back.per_kek[0] == 5 && back.revision == 9 &&
			back.max_value_size == 65536,
		"key status: every field as written");
	again = kura_wire_status(&back);
	tap_ok(again && json_equal(j, again), "key status: encodes to the same JSON");
	kura_key_status_done(&back);
	bad = json_deep_copy(j);
	json_object_set_new(bad, "revision", json_string("9"));
	tap_is(kura_wire_status_parse(bad, &back), -EPROTO,
		"key status: a string number is refused");
	json_object_del(bad, "revision");
	tap_is(kura_wire_status_parse(bad, &back), -EPROTO,
		"key status: a missing field is refused");
	json_object_set_new(bad, "revision", json_integer(9));
	json_object_set_new(bad, "master", json_string("tpm"));
	tap_is(kura_wire_status_parse(bad, &back), -EPROTO,
		"key status: an unknown master kind is "
		"refused, not read as a key file");
	json_object_set_new(bad, "master", json_string("file"));
	tap_is(kura_wire_status_parse(bad, &back), 0,
		"key status: (the same with a key file parses)");
	kura_key_status_done(&back);
	json_object_set_new(bad, "extra", json_true());
	tap_is(kura_wire_status_parse(bad, &back), -EPROTO,
		"key status: an unknown field is refused");
}

static void test_grant(void)
{
	_cleanup_json_ json_t *j = load("{\"created\":5,\"host\":true,\"labels\":{},"
					"\"pattern\":\"db/*\",\"uid\":0}"),
			      *again = NULL;
	_cleanup_json_ json_t *none = load("{\"created\":5,\"labels\":{},\"pattern\":\"db/*\"}");
	struct kura_grant g = { 0 }, x = { 0 };

	tap_is(kura_wire_grant_parse(j, &g), 0, "grant: parses");
	tap_ok(g.host && g.has_uid && g.uid == 0 && strcmp(g.pattern, "db/*") == 0 && g.id[0],
		"grant: its fields, and an id from its content (%s)", g.id);
	again = kura_wire_grant(&g);
	tap_ok(again && json_equal(again, j), "grant: encodes to the same JSON");
	tap_ok(kura_wire_grant_parse(none, &x) < 0, "grant: one with no selector is refused");
	kura_grant_done(&g);
	kura_grant_done(&x);
}

static void test_value(void)
{
	struct kura_secbuf *v = NULL;
	_cleanup_json_ json_t *ok = json_string("czNjcmV0"), *bad1 = json_string("czNjcmV0="),
			      *bad2 = json_string("c2VjcmV0!"), *num = json_integer(1);

	tap_is(kura_wire_value_parse(ok, &v), 0, "value: base64 decodes");
	tap_ok(v && v->len == 6 && memcmp(v->data, "s3cret", 6) == 0, "value: into its bytes");
	kura_secbuf_free(v);
	tap_is(kura_wire_value_parse(bad1, &v), -EPROTO, "value: a second spelling is refused");
	tap_is(kura_wire_value_parse(bad2, &v), -EPROTO, "value: a stray character is refused");
	tap_is(kura_wire_value_parse(num, &v), -EPROTO, "value: a number is refused");
	tap_is(kura_wire_value_parse(NULL, &v), -EPROTO, "value: none is refused");
}

static void test_secret_body(void)
{
	_cleanup_secbuf_ struct kura_secbuf *value = NULL, *body = NULL, *back = NULL;
	struct kura_version_info info = { .version = 3, .created = 1796161349, .size = 6 };
	struct kura_version_info got = { 0 };
	_cleanup_json_ json_t *j = NULL;
	static const char *bad[] = {
		"{\"name\":\"a\",\"version\":3,\"created\":\"2026-12-01T20:53:05Z\",\"size\":5,"
		"\"value\":\"czNjcmV0\"}",
		"{\"name\":\"a\",\"version\":0,\"created\":\"2026-12-01T20:53:05Z\",\"size\":6,"
		"\"value\":\"czNjcmV0\"}",
		"{\"name\":\"a\",\"version\":3,\"created\":\"2026-12-01T20:53:05Zjunk\",\"size\":6,"
		"\"value\":\"czNjcmV0\"}",
		"{\"name\":\"a\",\"version\":3,\"created\":1796161349,\"size\":6,"
		"\"value\":\"czNjcmV0\"}",
		"{\"version\":3,\"created\":\"2026-12-01T20:53:05Z\",\"size\":6,"
		"\"value\":\"czNjcmV0\"}",
		"{\"name\":\"a\",\"version\":3,\"created\":\"2026-12-01T20:53:05Z\",\"size\":6}",
		"{\"name\":\"a\",\"version\":3,\"created\":\"2026-12-01T20:53:05Z\",\"size\":6,"
		"\"value\":\"czNjcmV0\",\"kek\":1}",
	};

	if (kura_secbuf_from("s3cret", 6, &value) < 0)
		abort();
	tap_is(kura_wire_secret_body("db/pw", &info, value, &body), 0, "secret body: built");
	j = body ? json_loadb((const char *)body->data, body->len, 0, NULL) : NULL;
	tap_ok(j && strcmp(json_string_value(json_object_get(j, "value")), "czNjcmV0") == 0 &&
			strcmp(json_string_value(json_object_get(j, "created")),
				"2026-12-01T21:42:29Z") == 0,
		"secret body: JSON with the value in base64 and the time in RFC 3339");
	tap_is(kura_wire_secret_parse(j, &got, &back), 0, "secret body: read back");
	tap_ok(back && kura_secbuf_equal(back, value) && got.version == 3 &&
			got.created == info.created && got.size == 6,
		"secret body: the same version, time, size and value");
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		_cleanup_json_ json_t *b = load(bad[k]);
		struct kura_secbuf *x = NULL;

		tap_ok(kura_wire_secret_parse(b, &got, &x) == -EPROTO && !x,
			"secret body: %s is refused", bad[k]);
	}
}

static void reply(const char *body, long status, int want, const char *what)
{
	struct kura_err err = { 0 };
	json_t *j = NULL;
	int r = kura_wire_reply_parse((const uint8_t *)body, body ? strlen(body) : 0, status, &j,
		&err);

	tap_is(r, want, "reply %s (HTTP %ld): %d (%s)", what, status, r, err.msg);
	if (r == 0)
		json_decref(j);
}

static void test_reply(void)
{
	struct kura_err e = { 0 };
	_cleanup_json_ json_t *err = NULL;
	char *s;

	kura_err_set(&e, -EEXIST, "db/pw exists");
	err = kura_wire_error(-EEXIST, &e);
	s = json_dumps(err, JSON_COMPACT);
	reply(s, 409, -EEXIST, "kura_wire_error's own");
	kura_json_free(s);
	reply("{\"version\":1}", 200, 0, "an object");
	reply("[1]", 200, -EPROTO, "an array");
	reply(NULL, 200, -EPROTO, "empty");
	reply("{\"errno\":0}", 400, -EIO, "errno 0");
	reply("{\"errno\":4096}", 400, -EIO, "errno past 4095");
	reply("{\"errno\":-2}", 400, -EIO, "a negative errno");
	reply("{\"errno\":\"2\"}", 400, -EIO, "errno as a string");
	reply("{\"errno\":4294967298}", 400, -EIO, "errno that wraps to 2");
	reply("{\"errno\":22,\"message\":\"x\"}", 400, -EINVAL, "EINVAL");
}

int main(void)
{
	if (kura_keys_init() < 0)
		return 99;
	kura_json_init();
	test_info();
	test_status();
	test_grant();
	test_value();
	test_secret_body();
	test_reply();
	return tap_done();
}

/* libFuzzer target for the admin API's JSON: a request body as kurad's run_op loads it
 * (duplicate keys refused), read as every operation's arguments (ops.h), and a reply as kuractl
 * loads it, read as every operation's reply; then every wire.h decoder on every place an
 * operation or a reply carries one. Parsed or refused, never a crash; what parses is
 * encoded back to the same JSON. Touches plaintext: a "value" is decoded into guarded memory. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include "check.h"
#include "json.h"
#include "ops.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void info(const json_t *j)
{
	struct kura_secret_info i = { 0 }, i2 = { 0 };
	json_t *out, *out2;

	if (kura_wire_info_parse(j, &i) != 0)
		return;
	out = kura_wire_info(&i);
	check(out && kura_wire_info_parse(out, &i2) == 0);
	out2 = kura_wire_info(&i2);
	check(out2 && json_equal(out, out2));
	json_decref(out);
	json_decref(out2);
	kura_secret_info_done(&i);
	kura_secret_info_done(&i2);
}

static void status(const json_t *j)
{
	struct kura_key_status s = { 0 }, s2 = { 0 };
	json_t *out, *out2;

	if (kura_wire_status_parse(j, &s) != 0)
		return;
	out = kura_wire_status(&s);
	check(out && kura_wire_status_parse(out, &s2) == 0);
	out2 = kura_wire_status(&s2);
	check(out2 && json_equal(out, out2));
	json_decref(out);
	json_decref(out2);
	kura_key_status_done(&s);
	kura_key_status_done(&s2);
}

static void grant(const json_t *j)
{
	struct kura_grant g = { 0 }, g2 = { 0 };
	json_t *out, *out2;

	if (kura_wire_grant_parse(j, &g) != 0)
		return;
	out = kura_wire_grant(&g);
	check(out && kura_wire_grant_parse(out, &g2) == 0 && strcmp(g.id, g2.id) == 0);
	out2 = kura_wire_grant(&g2);
	check(out2 && json_equal(out, out2));
	json_decref(out);
	json_decref(out2);
	kura_grant_done(&g);
	kura_grant_done(&g2);
}

/* A value decodes only from the base64 its encoder writes, into exactly its bytes. */
static void value(const json_t *j)
{
	const json_t *s = json_object_get(j, "value");
	struct kura_secbuf *v = NULL;
	char *b64;
	size_t n;

	if (kura_wire_value_parse(s, &v) != 0)
		return;
	check(json_is_string(s) && v->len <= v->cap);
	n = sodium_base64_ENCODED_LEN(v->len, sodium_base64_VARIANT_ORIGINAL);
	b64 = malloc(n);
	check(b64);
	sodium_bin2base64(b64, n, v->data, v->len, sodium_base64_VARIANT_ORIGINAL);
	check(n - 1 == json_string_length(s) && memcmp(b64, json_string_value(s), n - 1) == 0);
	free(b64);
	kura_secbuf_free(v);
}

/* Everything a decoder is applied to in an operation's arguments or a reply. */
static void every_place(const json_t *j)
{
	const json_t *e;
	size_t i;

	info(j);
	status(j);
	value(j);
	grant(json_object_get(j, "grant"));
	json_array_foreach(json_object_get(j, "secrets"), i, e)
		info(e);
	json_array_foreach(json_object_get(j, "grants"), i, e)
		grant(e);
}

/* Arguments that parse are a request the table writes back, which parses to the same JSON;
 * arguments that do not are -EINVAL with the field named, never a crash or a default. */
static void op_args(const json_t *j)
{
	for (size_t i = 0; kura_op_at(i); i++) {
		const struct kura_operation *op = kura_op_at(i);
		struct kura_op_args a = { 0 }, a2 = { 0 };
		struct kura_secbuf *req = NULL, *req2 = NULL;
		struct kura_err err = { 0 };
		json_t *back;
		int r = kura_op_args_parse(op, j, &a, &err);

		check(r == 0 || (r == -EINVAL && err.msg[0]) || r == -ENOMEM);
		if (r == 0) {
			check(kura_op_request(op, &a, &req) == 0);
			back = json_loadb((const char *)req->data, req->len, 0, NULL);
			check(back && kura_op_args_parse(op, back, &a2, &err) == 0);
			check(kura_op_request(op, &a2, &req2) == 0 && req->len == req2->len &&
				memcmp(req->data, req2->data, req->len) == 0);
			json_decref(back);
			kura_secbuf_free(req);
			kura_secbuf_free(req2);
			kura_op_args_done(&a2);
		}
		kura_op_args_done(&a);
	}
}

/* A reply that parses as an operation's is empty again when freed; what does not is -EPROTO. */
static void op_replies(const json_t *j)
{
	for (size_t i = 0; kura_op_at(i); i++) {
		struct kura_op_result res = { 0 };
		int r = kura_op_reply_parse(kura_op_at(i), j, &res);

		check(r == 0 || r == -EPROTO || r == -ENOMEM);
		kura_op_result_done(&res);
	}
}

/* kuractl's reading of a reply (ctl-backend.c, rpc): an object with 200, else exactly the errno
 * kurad sent when it is one (1-4095, as kura_wire_error writes it), -EIO when it is not, and
 * -EPROTO for what is no JSON object. */
static void reply(const uint8_t *data, size_t size, long status)
{
	struct kura_err err = { 0 };
	json_t *j = NULL, *ref = json_loadb((const char *)data, size, 0, NULL);
	const json_t *e = json_object_get(ref, "errno");
	int r = kura_wire_reply_parse(data, size, status, &j, &err);

	if (!json_is_object(ref))
		check(r == -EPROTO && err.msg[0]);
	else if (status == 200)
		check(r == 0 && json_equal(j, ref));
	else if (json_is_integer(e) && json_integer_value(e) >= 1 && json_integer_value(e) <= 4095)
		check(r == -(int)json_integer_value(e));
	else
		check(r == -EIO);
	if (r == 0)
		json_decref(j);
	json_decref(ref);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool once;
	json_t *j;

	/* As kurad and kuractl do before any other jansson use. */
	if (!once) {
		kura_json_init();
		check(kura_keys_init() == 0);
		once = true;
	}
	/* kurad: an operation's arguments (admin.c, run_op). */
	j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	if (json_is_object(j)) {
		every_place(j);
		op_args(j);
	}
	json_decref(j);
	/* kuractl: kurad's reply, and what is in it. */
	reply(data, size, 200);
	reply(data, size, 409);
	j = json_loadb((const char *)data, size, 0, NULL);
	if (json_is_object(j)) {
		every_place(j);
		op_replies(j);
	}
	json_decref(j);
	return 0;
}

/* Talking JSON to the broker's workload API. Touches plaintext: a secret's base64 value passes
 * through jansson (whose allocator wipes on free) into a guarded buffer. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "http.h"
#include "name.h"

int kura_api_get_json(const struct kura_broker *b, const char *path, json_t **ret,
	struct kura_fail *f)
{
	_cleanup_secbuf_ struct kura_secbuf *body = NULL;
	_cleanup_(json_decrefp) json_t *j = NULL;
	const char *msg;
	int r, status, ex;

	r = kura_http_get(b->socket_path, path, b->timeout_ms, &status, &body, f);
	if (r < 0)
		return r;
	j = json_loadb((const char *)body->data, body->len, JSON_REJECT_DUPLICATES, NULL);
	if (status >= 200 && status < 300) {
		if (!json_is_object(j))
			return kura_fail_set(f, -EBADMSG, KURA_EXIT_PROTOCOL,
				"%s: the broker's answer is not a JSON object", path);
		*ret = TAKE_PTR(j);
		return 0;
	}
	/* Refusals never carry a value; kura_fail_set escapes the message for the terminal. */
	msg = json_string_value(json_object_get(j, "message"));
	if (!msg)
		msg = "(no message)";
	switch (status) {
	case 403:
		ex = KURA_EXIT_DENIED;
		r = -EACCES;
		break;
	case 429:
	case 503:
		ex = KURA_EXIT_UNAVAILABLE;
		r = -EAGAIN;
		break;
	case 404:
		ex = KURA_EXIT_PROTOCOL;
		r = -ENOENT;
		break;
	default:
		ex = KURA_EXIT_PROTOCOL;
		r = -EPROTO;
	}
	return kura_fail_set(f, r, ex, "%s: the broker answered %d: %s", path, status, msg);
}

static int get_version(const json_t *o, uint64_t *ret)
{
	const json_t *v = json_object_get(o, "version");

	if (!json_is_integer(v) || json_integer_value(v) < 1)
		return -EBADMSG;
	*ret = (uint64_t)json_integer_value(v);
	return 0;
}

static int b64_digit(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	return c == '/' ? 63 : -1;
}

/*
 * Strict standard base64 with padding (what kurad sends) into out, which has room for len / 4 * 3
 * bytes. Branches on the digits' values, as most decoders do; the broker's socket is local, so
 * no one times it.
 */
static int base64_decode(const char *in, size_t len, struct kura_secbuf *out)
{
	size_t o = 0;

	if (len % 4 || len / 4 * 3 > out->cap)
		return -EBADMSG;
	for (size_t i = 0; i < len; i += 4) {
		int d[4], pad = 0;
		uint32_t v = 0;

		for (int k = 0; k < 4; k++) {
			if (in[i + k] == '=' && i + 4 == len && k >= 2) {
				pad++;
				d[k] = 0;
				continue;
			}
			d[k] = pad ? -1 : b64_digit(in[i + k]);
			if (d[k] < 0)
				return -EBADMSG;
		}
		v = (uint32_t)d[0] << 18 | (uint32_t)d[1] << 12 | (uint32_t)d[2] << 6 | (uint32_t)d[3];
		out->data[o++] = (uint8_t)(v >> 16);
		if (pad < 2)
			out->data[o++] = (uint8_t)(v >> 8);
		if (pad < 1)
			out->data[o++] = (uint8_t)v;
		explicit_bzero(&v, sizeof(v));
	}
	out->len = o;
	return 0;
}

int kura_secret_set_add(struct kura_secret_set *set, const char *name, uint64_t version)
{
	struct kura_secret *items;
	char *copy;

	items = reallocarray(set->items, set->n + 1, sizeof(*items)); /* names only, no values */
	if (!items)
		return -ENOMEM;
	set->items = items;
	copy = strdup(name);
	if (!copy)
		return -ENOMEM;
	set->items[set->n++] = (struct kura_secret){ .name = copy, .version = version };
	return 0;
}

void kura_secret_set_done(struct kura_secret_set *set)
{
	for (size_t i = 0; i < set->n; i++) {
		free(set->items[i].name);
		kura_secbuf_free(set->items[i].value);
	}
	free(set->items);
	*set = (struct kura_secret_set){ 0 };
}

int kura_api_list(const struct kura_broker *b, struct kura_secret_set *ret, struct kura_fail *f)
{
	_cleanup_(json_decrefp) json_t *j = NULL;
	struct kura_secret_set set = { 0 };
	const json_t *arr;
	size_t i;
	json_t *e;
	int r;

	r = kura_api_get_json(b, "/v1/secrets", &j, f);
	if (r < 0)
		return r;
	arr = json_object_get(j, "secrets");
	if (!json_is_array(arr))
		return kura_fail_set(f, -EBADMSG, KURA_EXIT_PROTOCOL,
			"/v1/secrets: no \"secrets\" array in the broker's answer");
	json_array_foreach(arr, i, e) {
		const char *name = json_string_value(json_object_get(e, "name"));
		uint64_t version;

		/* The broker's names become paths here: hold them to the naming rules. */
		if (!name || kura_name_invalid(name, strlen(name)) || get_version(e, &version) < 0) {
			kura_secret_set_done(&set);
			return kura_fail_set(f, -EBADMSG, KURA_EXIT_PROTOCOL,
				"/v1/secrets: entry %zu is not a valid name and version", i);
		}
		r = kura_secret_set_add(&set, name, version);
		if (r < 0) {
			kura_secret_set_done(&set);
			return kura_fail_set(f, r, KURA_EXIT_SYSTEM, "out of memory");
		}
	}
	*ret = set;
	return 0;
}

int kura_api_fetch(const struct kura_broker *b, struct kura_secret *s, struct kura_fail *f)
{
	_cleanup_(json_decrefp) json_t *j = NULL;
	_cleanup_secbuf_ struct kura_secbuf *v = NULL;
	const char *why, *b64, *name;
	char path[sizeof("/v1/secrets/") + KURA_NAME_MAX];
	uint64_t version;
	size_t b64_len;
	int r;

	why = kura_name_invalid(s->name, strlen(s->name));
	if (why)
		return kura_fail_set(f, -EINVAL, KURA_EXIT_USAGE, "'%s': %s", s->name, why);
	snprintf(path, sizeof(path), "/v1/secrets/%s", s->name);
	r = kura_api_get_json(b, path, &j, f);
	if (r < 0)
		return r;
	name = json_string_value(json_object_get(j, "name"));
	b64 = json_string_value(json_object_get(j, "value"));
	if (!name || strcmp(name, s->name) != 0 || !b64 || get_version(j, &version) < 0)
		return kura_fail_set(f, -EBADMSG, KURA_EXIT_PROTOCOL,
			"%s: the broker's answer lacks the name, version or value", path);
	b64_len = json_string_length(json_object_get(j, "value"));
	r = kura_secbuf_new(b64_len / 4 * 3, &v);
	if (r < 0)
		return kura_fail_set(f, r, KURA_EXIT_SYSTEM, "out of (locked) memory");
	if (base64_decode(b64, b64_len, v) < 0)
		return kura_fail_set(f, -EBADMSG, KURA_EXIT_PROTOCOL,
			"%s: the value is not valid base64", path);
	kura_secbuf_free(s->value);
	s->value = TAKE_PTR(v);
	s->version = version;
	return 0;
}

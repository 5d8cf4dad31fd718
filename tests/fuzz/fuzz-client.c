/* libFuzzer target for what the in-container client takes from whatever answers on the broker's
 * socket: an HTTP response's head (client/http.c) and a secret's answer (client/api.c), the
 * input being the whole response. The head gives a status and a Content-Length within the cap
 * or is refused, and the headers a secret's answer is read by come back trimmed and bounded,
 * the raw form taken as the value only with a valid Kura-Version; a JSON answer is taken only if
 * jansson reads the same document the same way: the name asked, its version, and a "value" that is
 * the canonical base64 of the bytes kura decoded. Touches plaintext: values are decoded into
 * guarded buffers. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "api.h"
#include "check.h"
#include "http.h"
#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void head(const uint8_t *data, size_t len)
{
	struct kura_http_header want[KURA_SECRET_HEADERS + 1];
	char *h = strndup((const char *)data, len), *again;
	size_t n, clen = 0, clen2;
	int status = 0, status2, r, rw;
	const char *line;

	check(h);
	n = strlen(h);
	again = strdup(h);
	check(again);
	r = kura_http_parse_head(h, KURA_API_MAX_SECRET_BODY, NULL, &status, &clen);
	check(r == 0 || r == -EBADMSG || r == -EFBIG);
	if (r == 0) {
		line = again;
		check(status >= 100 && status <= 599 && clen <= KURA_API_MAX_SECRET_BODY);
		check(status == (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0'));
		/* The cap is exact: the length itself is allowed, one byte less is not. */
		if (clen > 0) {
			memcpy(h, again, n + 1);
			check(kura_http_parse_head(h, clen - 1, NULL, &status2, &clen2) == -EFBIG);
		}
		memcpy(h, again, n + 1);
		check(kura_http_parse_head(h, clen, NULL, &status2, &clen2) == 0 &&
			status2 == status && clen2 == clen);
	}
	/* Wanting headers only adds refusals (a wanted one twice, or too long). */
	kura_api_secret_headers(want);
	memcpy(h, again, n + 1);
	rw = kura_http_parse_head(h, KURA_API_MAX_SECRET_BODY, want, &status2, &clen2);
	check(rw == 0 || rw == -EBADMSG || rw == -EFBIG);
	check(rw != 0 || r == 0);
	for (size_t i = 0; i < KURA_SECRET_HEADERS; i++) {
		const char *v = want[i].value;
		size_t vl = strlen(v);

		check(rw == 0 || (!want[i].found && !*v));
		check(vl < KURA_HTTP_VALUE_MAX);
		check(!vl ||
			(v[0] != ' ' && v[0] != '\t' && v[vl - 1] != ' ' && v[vl - 1] != '\t'));
		check(!strpbrk(v, "\r\n"));
	}
	if (rw == 0) {
		struct kura_secbuf *body = NULL, *val = NULL, *was;
		const char *why = NULL;
		uint64_t version = 0;

		check(kura_secbuf_new(1, &body) == 0);
		was = body;
		r = kura_api_take_secret(want, &body, "db/password", &val, &version, &why);
		check(r == 0 || r == -EBADMSG || r == -EILSEQ || r == -EFBIG || r == -EPROTO ||
			r == -EMEDIUMTYPE);
		check(r != 0 || (val == was && !body && version >= 1 && !why));
		check(r == 0 || (val == NULL && body == was));
		kura_secbuf_free(val);
		kura_secbuf_free(body);
	}
	free(again);
	free(h);
}

static char *b64(const struct kura_secbuf *v)
{
	static const char digits[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *out = malloc(v->len / 3 * 4 + 5), *o = out;
	size_t i;

	check(out);
	for (i = 0; i + 3 <= v->len; i += 3) {
		uint32_t n = (uint32_t)v->data[i] << 16 | (uint32_t)v->data[i + 1] << 8 |
			v->data[i + 2];

		*o++ = digits[n >> 18];
		*o++ = digits[(n >> 12) & 63];
		*o++ = digits[(n >> 6) & 63];
		*o++ = digits[n & 63];
	}
	if (i < v->len) {
		uint32_t n = (uint32_t)v->data[i] << 16 |
			(i + 1 < v->len ? (uint32_t)v->data[i + 1] << 8 : 0);

		*o++ = digits[n >> 18];
		*o++ = digits[(n >> 12) & 63];
		*o++ = i + 1 < v->len ? digits[(n >> 6) & 63] : '=';
		*o++ = '=';
	}
	*o = '\0';
	return out;
}

static void secret(const uint8_t *data, size_t len)
{
	struct kura_secbuf *body = NULL, *v = NULL;
	uint64_t version = 0;
	json_t *j;
	char *want;
	int r;

	check(kura_secbuf_new(len, &body) == 0);
	memcpy(body->data, data, len);
	body->len = len;
	r = kura_api_parse_secret(body, "db/password", &v, &version);
	kura_secbuf_free(body);
	check(r == 0 || r == -EBADMSG || r == -EILSEQ || r == -EFBIG || r == -EPROTO);
	if (r != 0)
		return;
	j = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, NULL);
	check(json_is_object(j));
	check(json_is_string(json_object_get(j, "name")) &&
		strcmp(json_string_value(json_object_get(j, "name")), "db/password") == 0);
	check(json_is_integer(json_object_get(j, "version")) &&
		json_integer_value(json_object_get(j, "version")) >= 1 &&
		(uint64_t)json_integer_value(json_object_get(j, "version")) == version);
	want = b64(v);
	check(json_is_string(json_object_get(j, "value")) &&
		strcmp(json_string_value(json_object_get(j, "value")), want) == 0);
	free(want);
	json_decref(j);
	kura_secbuf_free(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool once;
	const uint8_t *end = memmem(data, size, "\r\n\r\n", 4);
	size_t hlen = end ? (size_t)(end - data) : size;

	/* As kura does before anything else. */
	if (!once) {
		kura_json_init();
		once = true;
	}
	head(data, hlen);
	if (end)
		secret(end + 4, size - hlen - 4);
	else
		secret(data, size);
	return 0;
}

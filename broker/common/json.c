/* jansson glue: base64 fields and strict record parsing (the wiping allocator is in
 * json-alloc.c). */
#include <errno.h>
#include <string.h>

#include "base64.h"
#include "json.h"

json_t *kura_json_b64(const uint8_t *data, size_t len)
{
	_cleanup_free_ char *b64 = malloc(kura_base64_len(len) + 1);

	if (!b64)
		return NULL;
	return json_stringn(b64, kura_base64_encode(data, len, b64));
}

int kura_json_get_b64(const json_t *obj, const char *key, uint8_t **ret, size_t *ret_len)
{
	const json_t *s = json_object_get(obj, key);
	size_t len, bin_len;
	uint8_t *bin;

	if (!json_is_string(s))
		return -EPROTO;
	len = json_string_length(s);
	bin = malloc(len / 4 * 3 + 1);
	if (!bin)
		return -ENOMEM;
	if (kura_base64_decode(json_string_value(s), len, bin, len / 4 * 3 + 1, &bin_len) < 0) {
		free(bin);
		return -EPROTO;
	}
	*ret = bin;
	*ret_len = bin_len;
	return 0;
}

int kura_json_get_int(const json_t *obj, const char *key, int64_t min, int64_t max, int64_t *ret)
{
	const json_t *i = json_object_get(obj, key);
	json_int_t v;

	if (!json_is_integer(i))
		return -EPROTO;
	v = json_integer_value(i);
	if (v < min || v > max)
		return -EPROTO;
	*ret = v;
	return 0;
}

static int dump(const json_t *j, size_t flags, uint8_t **ret, size_t *ret_len)
{
	char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | flags);
	size_t len;
	uint8_t *copy;

	if (!s)
		return -ENOMEM;
	/* json_dumps memory comes from our allocator: hand back plain malloc'd bytes. */
	len = strlen(s);
	if (flags & JSON_ENSURE_ASCII) {
		size_t n = kura_json_escape_del(s, len, NULL);

		copy = malloc(n ? n : 1);
		if (copy)
			len = kura_json_escape_del(s, len, (char *)copy);
	} else {
		copy = malloc(len ? len : 1);
		if (copy)
			memcpy(copy, s, len);
	}
	kura_json_free(s);
	if (!copy)
		return -ENOMEM;
	*ret = copy;
	*ret_len = len;
	return 0;
}

int kura_json_dump(const json_t *j, uint8_t **ret, size_t *ret_len)
{
	return dump(j, 0, ret, ret_len);
}

int kura_json_dump_ascii(const json_t *j, uint8_t **ret, size_t *ret_len)
{
	return dump(j, JSON_ENSURE_ASCII, ret, ret_len);
}

size_t kura_json_escape_del(const char *s, size_t len, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		if (s[i] != 0x7f) {
			if (out)
				out[o] = s[i];
			o++;
			continue;
		}
		if (out)
			memcpy(out + o, "\\u007f", 6);
		o += 6;
	}
	return o;
}

int kura_json_load(const uint8_t *data, size_t len, json_t **ret)
{
	json_t *j = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, NULL);

	if (!j)
		return -EPROTO;
	if (!json_is_object(j)) {
		json_decref(j);
		return -EPROTO;
	}
	*ret = j;
	return 0;
}

/* JSON forms of vault results for the admin API. The only plaintext here is a value being
 * decoded from base64, straight into guarded memory. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "base64.h"
#include "clock.h"
#include "json.h"
#include "wire.h"

json_t *kura_wire_info(const struct kura_secret_info *i)
{
	json_t *vers = json_array();

	for (size_t k = 0; vers && k < i->n_versions; k++)
		json_array_append_new(vers,
			json_pack("{s:I, s:I, s:I, s:I}", "version",
				(json_int_t)i->versions[k].version, "created",
				(json_int_t)i->versions[k].created, "size",
				(json_int_t)i->versions[k].size, "kek",
				(json_int_t)i->versions[k].kek_id));
	return json_pack("{s:s, s:I, s:I, s:I, s:I, s:o}", "name", i->name, "current",
		(json_int_t)i->current, "latest", (json_int_t)i->latest, "created",
		(json_int_t)i->created, "updated", (json_int_t)i->updated, "versions", vers);
}

int kura_wire_info_parse(const json_t *j, struct kura_secret_info *ret)
{
	struct kura_secret_info i = { 0 };
	const json_t *vers = json_object_get(j, "versions"), *v;
	int64_t n;
	size_t k;

	/* Every field is required, so their count rules out any other. */
	if (!json_is_string(json_object_get(j, "name")) || !json_is_array(vers) ||
		json_object_size(j) != 6)
		return -EPROTO;
	if (kura_json_get_int(j, "current", 0, INT64_MAX, &n) < 0)
		return -EPROTO;
	i.current = (uint64_t)n;
	if (kura_json_get_int(j, "latest", 0, INT64_MAX, &n) < 0)
		return -EPROTO;
	i.latest = (uint64_t)n;
	if (kura_json_get_int(j, "created", 0, INT64_MAX, &i.created) < 0 ||
		kura_json_get_int(j, "updated", 0, INT64_MAX, &i.updated) < 0)
		return -EPROTO;
	i.name = strdup(json_string_value(json_object_get(j, "name")));
	i.versions = calloc(json_array_size(vers) + 1, sizeof(*i.versions));
	if (!i.name || !i.versions) {
		kura_secret_info_done(&i);
		return -ENOMEM;
	}
	json_array_foreach(vers, k, v) {
		struct kura_version_info *vi = &i.versions[i.n_versions];
		int64_t a, b, c;

		if (json_object_size(v) != 4 ||
			kura_json_get_int(v, "version", 1, INT64_MAX, &a) < 0 ||
			kura_json_get_int(v, "size", 0, INT64_MAX, &b) < 0 ||
			kura_json_get_int(v, "kek", 1, UINT32_MAX, &c) < 0 ||
			kura_json_get_int(v, "created", 0, INT64_MAX, &vi->created) < 0) {
			kura_secret_info_done(&i);
			return -EPROTO;
		}
		vi->version = (uint64_t)a;
		vi->size = (uint64_t)b;
		vi->kek_id = (uint32_t)c;
		i.n_versions++;
	}
	*ret = i;
	return 0;
}

json_t *kura_wire_status(const struct kura_key_status *s)
{
	json_t *keks = json_array();

	for (size_t i = 0; keks && i < s->n_keks; i++)
		json_array_append_new(keks,
			json_pack("{s:I, s:I, s:I}", "id", (json_int_t)s->kek_ids[i], "created",
				(json_int_t)s->kek_created[i], "versions",
				(json_int_t)s->per_kek[i]));
	return json_pack("{s:s, s:I, s:I, s:I, s:o, s:I, s:I, s:I, s:i, s:I}", "master",
		kura_master_kind_name(s->master), "opslimit", (json_int_t)s->kdf.opslimit,
		"memlimit", (json_int_t)s->kdf.memlimit, "current", (json_int_t)s->current, "keks",
		keks, "secrets", (json_int_t)s->n_secrets, "versions", (json_int_t)s->n_versions,
		"revision", (json_int_t)s->revision, "schema", s->schema, "max_value_size",
		(json_int_t)s->max_value_size);
}

int kura_wire_status_parse(const json_t *j, struct kura_key_status *ret)
{
	struct kura_key_status s = { 0 };
	const json_t *keks = json_object_get(j, "keks"), *k;
	const char *master = json_string_value(json_object_get(j, "master"));
	int64_t n;
	size_t i;

	if (!master || !json_is_array(keks) || json_object_size(j) != 10)
		return -EPROTO;
	if (kura_master_kind_parse(master, &s.master) < 0)
		return -EPROTO;
	if (kura_json_get_int(j, "opslimit", 0, INT64_MAX, &n) < 0)
		return -EPROTO;
	s.kdf.opslimit = (uint64_t)n;
	if (kura_json_get_int(j, "memlimit", 0, INT64_MAX, &n) < 0)
		return -EPROTO;
	s.kdf.memlimit = (uint64_t)n;
	if (kura_json_get_int(j, "current", 0, UINT32_MAX, &n) < 0)
		return -EPROTO;
	s.current = (uint32_t)n;
	if (kura_json_get_int(j, "secrets", 0, INT64_MAX, &n) < 0)
		return -EPROTO;
	s.n_secrets = (uint64_t)n;
	if (kura_json_get_int(j, "versions", 0, INT64_MAX, &n) < 0)
		return -EPROTO;
	s.n_versions = (uint64_t)n;
	if (kura_json_get_int(j, "revision", 0, INT64_MAX, &s.revision) < 0 ||
		kura_json_get_int(j, "schema", 0, INT32_MAX, &n) < 0)
		return -EPROTO;
	s.schema = (int)n;
	if (kura_json_get_int(j, "max_value_size", 0, INT64_MAX, &n) < 0)
		return -EPROTO;
	s.max_value_size = (uint64_t)n;
	s.n_keks = json_array_size(keks);
	s.kek_ids = calloc(s.n_keks + 1, sizeof(*s.kek_ids));
	s.kek_created = calloc(s.n_keks + 1, sizeof(*s.kek_created));
	s.per_kek = calloc(s.n_keks + 1, sizeof(*s.per_kek));
	if (!s.kek_ids || !s.kek_created || !s.per_kek) {
		kura_key_status_done(&s);
		return -ENOMEM;
	}
	json_array_foreach(keks, i, k) {
		int64_t id, c;

		if (json_object_size(k) != 3 ||
			kura_json_get_int(k, "id", 1, UINT32_MAX, &id) < 0 ||
			kura_json_get_int(k, "created", 0, INT64_MAX, &s.kek_created[i]) < 0 ||
			kura_json_get_int(k, "versions", 0, INT64_MAX, &c) < 0) {
			kura_key_status_done(&s);
			return -EPROTO;
		}
		s.kek_ids[i] = (uint32_t)id;
		s.per_kek[i] = (uint64_t)c;
	}
	*ret = s;
	return 0;
}

json_t *kura_wire_grant(const struct kura_grant *g)
{
	uint8_t *bytes = NULL;
	size_t len;
	json_t *j = NULL;

	/* The stored record's form: one encoder, one strict decoder. */
	if (kura_grant_encode(g, &bytes, &len) == 0)
		(void)kura_json_load(bytes, len, &j);
	free(bytes);
	return j;
}

int kura_wire_grant_parse(const json_t *j, struct kura_grant *ret)
{
	uint8_t *bytes = NULL;
	size_t len;
	int r;

	r = kura_json_dump(j, &bytes, &len);
	if (r < 0)
		return r;
	r = kura_grant_decode(bytes, len, ret);
	free(bytes);
	return r;
}

int kura_wire_value_parse(const json_t *s, struct kura_secbuf **ret)
{
	struct kura_secbuf *b;
	size_t len, bin_len;
	int r;

	if (!json_is_string(s))
		return -EPROTO;
	len = json_string_length(s);
	r = kura_secbuf_new(len / 4 * 3 + 1, &b);
	if (r < 0)
		return r;
	if (kura_base64_decode(json_string_value(s), len, b->data, b->cap, &bin_len) < 0) {
		kura_secbuf_free(b);
		return -EPROTO;
	}
	b->len = bin_len;
	*ret = b;
	return 0;
}

int kura_wire_secret_body(const char *name, const struct kura_version_info *info,
	const struct kura_secbuf *value, struct kura_secbuf **ret)
{
	size_t b64 = kura_base64_len(value->len);
	struct kura_secbuf *body;
	char head[512], created[KURA_RFC3339_LEN];
	int n, r;

	n = snprintf(head, sizeof(head),
		"{\"name\":\"%s\",\"version\":%" PRIu64 ",\"created\":\"%s\",\"size\":%" PRIu64
		",\"value\":\"",
		name, info->version, kura_rfc3339(info->created, created), info->size);
	if (n < 0 || (size_t)n >= sizeof(head))
		return -ENAMETOOLONG;
	r = kura_secbuf_new((size_t)n + b64 + 2, &body);
	if (r < 0)
		return r;
	memcpy(body->data, head, (size_t)n);
	kura_base64_encode(value->data, value->len, (char *)body->data + n);
	memcpy(body->data + n + b64, "\"}", 2);
	body->len = (size_t)n + b64 + 2;
	*ret = body;
	return 0;
}

int kura_wire_secret_parse(const json_t *j, struct kura_version_info *ret_info,
	struct kura_secbuf **ret_value)
{
	const char *created = json_string_value(json_object_get(j, "created"));
	struct kura_version_info info = { 0 };
	struct tm tm = { 0 };
	const char *end;
	int64_t n;

	if (!json_is_string(json_object_get(j, "name")) || !created || json_object_size(j) != 5)
		return -EPROTO;
	end = strptime(created, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (!end || *end)
		return -EPROTO;
	info.created = (int64_t)timegm(&tm);
	if (kura_json_get_int(j, "version", 1, INT64_MAX, &n) < 0)
		return -EPROTO;
	info.version = (uint64_t)n;
	if (kura_json_get_int(j, "size", 0, INT64_MAX, &n) < 0)
		return -EPROTO;
	info.size = (uint64_t)n;
	if (kura_wire_value_parse(json_object_get(j, "value"), ret_value) < 0)
		return -EPROTO;
	if ((*ret_value)->len != info.size) {
		kura_secbuf_free(*ret_value);
		*ret_value = NULL;
		return -EPROTO;
	}
	*ret_info = info;
	return 0;
}

json_t *kura_wire_error(int r, const struct kura_err *err)
{
	return json_pack("{s:s, s:s, s:i}", "error", "failed", "message",
		err && err->msg[0] ? err->msg : strerror(-r), "errno", -r);
}

int kura_wire_reply_parse(const uint8_t *body, size_t len, long status, json_t **ret,
	struct kura_err *err)
{
	json_t *j = body ? json_loadb((const char *)body, len, 0, NULL) : NULL;
	const json_t *e;
	int r;

	if (!json_is_object(j)) {
		json_decref(j);
		return kura_err_set(err, -EPROTO, "kurad's answer (HTTP %ld) is not JSON", status);
	}
	if (status == 200) {
		*ret = j;
		return 0;
	}
	/* kura_wire_error sends an errno. Anything else cast to int could come out as some other
	 * errno, or as 0, which reads as success. */
	e = json_object_get(j, "errno");
	r = json_is_integer(e) && json_integer_value(e) >= 1 && json_integer_value(e) <= 4095 ?
		-(int)json_integer_value(e) :
		-EIO;
	kura_err_set(err, r, "%s",
		json_string_value(json_object_get(j, "message")) ?: "kurad refused");
	json_decref(j);
	return r;
}

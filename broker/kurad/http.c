/* HTTP replies for kurad. Secret bodies leave from guarded memory and are wiped once sent;
 * JSON documents that might hold one go through the wiping jansson allocator. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "clock.h"
#include "number.h"
#include "http.h"
#include "json.h"
#include "wire.h"

static enum MHD_Result queue_typed(struct MHD_Connection *c, unsigned status,
	struct MHD_Response *r, bool close, const char *type)
{
	enum MHD_Result ret;

	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(r, "Cache-Control", "no-store");
	if (close)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result queue(struct MHD_Connection *c, unsigned status, struct MHD_Response *r,
	bool close)
{
	return queue_typed(c, status, r, close, "application/json");
}

static void free_secbuf(void *cls)
{
	kura_secbuf_free(cls);
}

enum MHD_Result kura_http_secret(struct MHD_Connection *c, struct kura_secbuf *body)
{
	struct MHD_Response *r;

	r = MHD_create_response_from_buffer_with_free_callback_cls(body->len, body->data,
		free_secbuf, body);
	if (!r) {
		kura_secbuf_free(body);
		return MHD_NO;
	}
	return queue(c, MHD_HTTP_OK, r, false);
}

/* A JSON reply; close: the connection is closed after it. */
static enum MHD_Result reply_json(struct MHD_Connection *c, unsigned status, json_t *j, bool close)
{
	struct kura_secbuf *body = NULL;
	struct MHD_Response *r;
	size_t len;
	char *s;

	if (!j)
		return MHD_NO;
	s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (!s)
		return MHD_NO;
	len = strlen(s);
	/* Plain JSON replies go through guarded memory too: one path for every body. */
	if (kura_secbuf_from(s, len, &body) < 0) {
		kura_json_free(s);
		return MHD_NO;
	}
	kura_json_free(s);
	if (status == MHD_HTTP_OK && !close)
		return kura_http_secret(c, body);
	r = MHD_create_response_from_buffer_with_free_callback_cls(body->len, body->data,
		free_secbuf, body);
	if (!r) {
		kura_secbuf_free(body);
		return MHD_NO;
	}
	return queue(c, status, r, close);
}

enum MHD_Result kura_http_json(struct MHD_Connection *c, unsigned status, json_t *j)
{
	return reply_json(c, status, j, status == MHD_HTTP_BAD_REQUEST || status >= 413);
}

enum MHD_Result kura_http_json_close(struct MHD_Connection *c, unsigned status, json_t *j)
{
	return reply_json(c, status, j, true);
}

static char seen_marker, body_marker;

struct kura_conn *kura_http_conn(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *info = MHD_get_connection_info(c,
		MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return info ? info->socket_context : NULL;
}

bool kura_http_ready(size_t *upload_data_size, void **req_cls, bool *ret_body)
{
	if (!*req_cls) {
		*req_cls = &seen_marker;
		return false;
	}
	if (*upload_data_size) {
		*upload_data_size = 0;
		*req_cls = &body_marker;
		return false;
	}
	*ret_body = *req_cls == &body_marker;
	return true;
}

bool kura_http_marker(const void *req_cls)
{
	return req_cls == &seen_marker || req_cls == &body_marker;
}

enum MHD_Result kura_http_error(struct MHD_Connection *c, unsigned status, const char *code,
	const char *message)
{
	return kura_http_json(c, status,
		json_pack("{s:s, s:s}", "error", code, "message", message));
}

enum MHD_Result kura_http_error_close(struct MHD_Connection *c, unsigned status, const char *code,
	const char *message)
{
	return kura_http_json_close(c, status,
		json_pack("{s:s, s:s}", "error", code, "message", message));
}

struct framing {
	unsigned content_length, transfer_encoding;
};

static enum MHD_Result count_framing(void *cls, enum MHD_ValueKind kind, const char *key,
	const char *value)
{
	struct framing *f = cls;

	(void)kind;
	(void)value;
	if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0)
		f->content_length++;
	else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0)
		f->transfer_encoding++;
	return MHD_YES;
}

bool kura_http_framing_ok(struct MHD_Connection *c)
{
	struct framing f = { 0 };

	MHD_get_connection_values(c, MHD_HEADER_KIND, count_framing, &f);
	return f.content_length <= 1 && f.transfer_encoding <= 1 &&
		!(f.content_length && f.transfer_encoding);
}

bool kura_http_query_u64(struct MHD_Connection *c, const char *key, uint64_t min, uint64_t max,
	uint64_t def, uint64_t *ret)
{
	const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, key);

	if (!v) {
		*ret = def;
		return true;
	}
	return kura_parse_u64(v, min, max, ret);
}

enum MHD_Result kura_http_secret_json(struct MHD_Connection *c, const char *name,
	struct kura_fetched *f)
{
	struct kura_secbuf *body = NULL;
	int r;

	r = kura_wire_secret_body(name, &f->info, f->value, &body);
	kura_fetched_done(f);
	if (r < 0)
		return MHD_NO;
	return kura_http_secret(c, body);
}

enum MHD_Result kura_http_secret_raw(struct MHD_Connection *c, struct kura_fetched *f)
{
	char version[24], created[KURA_RFC3339_LEN];
	struct kura_secbuf *value = f->value;
	struct MHD_Response *r;

	f->value = NULL;
	snprintf(version, sizeof(version), "%" PRIu64, f->info.version);
	r = MHD_create_response_from_buffer_with_free_callback_cls(value->len, value->data,
		free_secbuf, value);
	if (!r) {
		kura_secbuf_free(value);
		return MHD_NO;
	}
	if (MHD_add_response_header(r, KURA_HTTP_VERSION_HEADER, version) != MHD_YES ||
		MHD_add_response_header(r, KURA_HTTP_FINGERPRINT_HEADER, f->fingerprint) !=
			MHD_YES ||
		MHD_add_response_header(r, KURA_HTTP_CREATED_HEADER,
			kura_rfc3339(f->info.created, created)) != MHD_YES) {
		MHD_destroy_response(r);
		return MHD_NO;
	}
	return queue_typed(c, MHD_HTTP_OK, r, false, KURA_HTTP_RAW_TYPE);
}

enum MHD_Result kura_http_body(struct MHD_Connection *c, void *owner, const void *data, size_t len)
{
	struct MHD_Response *r;

	r = MHD_create_response_from_buffer_with_free_callback_cls(len, (void *)data, free, owner);
	if (!r) {
		free(owner);
		return MHD_NO;
	}
	return queue(c, MHD_HTTP_OK, r, false);
}

enum MHD_Result kura_http_guarded(struct MHD_Connection *c, struct kura_secbuf *owner,
	const void *data, size_t len, const struct kura_http_raw *raw)
{
	char version[24], created[KURA_RFC3339_LEN];
	struct MHD_Response *r;

	r = MHD_create_response_from_buffer_with_free_callback_cls(len, (void *)data, free_secbuf,
		owner);
	if (!r) {
		kura_secbuf_free(owner);
		return MHD_NO;
	}
	if (!raw)
		return queue(c, MHD_HTTP_OK, r, false);
	snprintf(version, sizeof(version), "%" PRIu64, raw->version);
	if (MHD_add_response_header(r, KURA_HTTP_VERSION_HEADER, version) != MHD_YES ||
		MHD_add_response_header(r, KURA_HTTP_FINGERPRINT_HEADER, raw->fingerprint) !=
			MHD_YES ||
		MHD_add_response_header(r, KURA_HTTP_CREATED_HEADER,
			kura_rfc3339(raw->created, created)) != MHD_YES) {
		MHD_destroy_response(r);
		return MHD_NO;
	}
	return queue_typed(c, MHD_HTTP_OK, r, false, KURA_HTTP_RAW_TYPE);
}

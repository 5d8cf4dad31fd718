/* HTTP plumbing shared by kurad's two sockets: JSON replies, JSON errors, secret bodies sent
 * from guarded memory and wiped after, and the per-connection context. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <microhttpd.h>

#include "number.h"
#include "conn.h"
#include "secbuf.h"
#include "keeper.h"
#include "vault.h"

/* The connection's context, made when it was accepted; NULL if that failed. */
struct kura_conn *kura_http_conn(struct MHD_Connection *c);

/*
 * libmicrohttpd calls a handler several times per request: first with the headers, then with
 * each piece of body, then once more. True when the request is complete and must be answered
 * now; otherwise the handler returns MHD_YES. A body is read and dropped, and *ret_body says
 * there was one (no endpoint here takes a body).
 */
bool kura_http_ready(size_t *upload_data_size, void **req_cls, bool *ret_body);

/* Whether a request context is one of kura_http_ready()'s markers (owned by nobody). */
bool kura_http_marker(const void *req_cls);

/* Queue a JSON reply (j is stolen). Returns MHD_YES/MHD_NO as MHD wants. */
enum MHD_Result kura_http_json(struct MHD_Connection *c, unsigned status, json_t *j);
/* The same, and the connection is closed after it. */
enum MHD_Result kura_http_json_close(struct MHD_Connection *c, unsigned status, json_t *j);

/* {"error": code, "message": text}, with Connection: close for 4xx/5xx from bad input. */
enum MHD_Result kura_http_error(struct MHD_Connection *c, unsigned status, const char *code,
	const char *message);
/* The same, and the connection is closed after it whatever the status. */
enum MHD_Result kura_http_error_close(struct MHD_Connection *c, unsigned status, const char *code,
	const char *message);

/*
 * Whether the request's framing is unambiguous (RFC 9112 section 6): at most one Content-Length,
 * at most one Transfer-Encoding, never both. A request that breaks this must get 400 and the
 * connection closed: two parties reading its body differently is how requests are smuggled.
 */
bool kura_http_framing_ok(struct MHD_Connection *c);

/* Queue body (taken) as the reply: it is sent from that guarded buffer and wiped when MHD is
 * done with it; it is never copied. */
enum MHD_Result kura_http_secret(struct MHD_Connection *c, struct kura_secbuf *body);

/*
 * A fetch's reply. As JSON: {"name","version","created","size","value":base64}. Raw (asked for
 * with `Accept: application/octet-stream`): the value is the body, sent from its own guarded
 * buffer, with its version, fingerprint and creation time in headers. Both take f's value.
 */
#define KURA_HTTP_RAW_TYPE "application/octet-stream"
#define KURA_HTTP_VERSION_HEADER "Kura-Version"
#define KURA_HTTP_FINGERPRINT_HEADER "Kura-Fingerprint"
#define KURA_HTTP_CREATED_HEADER "Kura-Created"
enum MHD_Result kura_http_secret_json(struct MHD_Connection *c, const char *name,
	struct kura_fetched *f);
enum MHD_Result kura_http_secret_raw(struct MHD_Connection *c, struct kura_fetched *f);

/* A JSON body the key custody process made (no value in it), lying in owner (taken, whatever
 * happens): sent from there, not copied (a listing of 100k names is megabytes), then freed. */
enum MHD_Result kura_http_body(struct MHD_Connection *c, void *owner, const void *data, size_t len);

/* A body that holds a value, lying in owner (a guarded buffer, taken): sent from there and
 * wiped once sent. With raw, it is the value itself and these are its headers; else JSON. */
struct kura_http_raw {
	uint64_t version;
	const char *fingerprint;
	int64_t created;
};
enum MHD_Result kura_http_guarded(struct MHD_Connection *c, struct kura_secbuf *owner,
	const void *data, size_t len, const struct kura_http_raw *raw);

/* The URL's query argument as an unsigned number within [min, max]; def if absent. false if
 * present and malformed. */
bool kura_http_query_u64(struct MHD_Connection *c, const char *key, uint64_t min, uint64_t max,
	uint64_t def, uint64_t *ret);

/* The admin API's JSON forms of the vault's results, shared by kurad (encode) and kuractl
 * (decode), so both ends agree by construction. Values travel only as base64 inside guarded
 * buffers (see kura_wire_value_*). */
#pragma once

#include <jansson.h>

#include "grant.h"
#include "vault.h"

json_t *kura_wire_info(const struct kura_secret_info *i);
int kura_wire_info_parse(const json_t *j, struct kura_secret_info *ret);

json_t *kura_wire_status(const struct kura_key_status *s);
int kura_wire_status_parse(const json_t *j, struct kura_key_status *ret);

json_t *kura_wire_grant(const struct kura_grant *g);
int kura_wire_grant_parse(const json_t *j, struct kura_grant *ret);

/* A base64 string (s), decoded into guarded memory. -EPROTO if not a string or malformed. */
int kura_wire_value_parse(const json_t *s, struct kura_secbuf **ret);

/* secret.get's reply {name, version, created, size, value}, built in guarded memory without
 * jansson (the value never sits in its heap on kurad's side), and kuractl's strict reading of
 * it: -EPROTO unless every field is there, well formed, and size is the value's length. */
int kura_wire_secret_body(const char *name, const struct kura_version_info *info,
	const struct kura_secbuf *value, struct kura_secbuf **ret);
int kura_wire_secret_parse(const json_t *j, struct kura_version_info *ret_info,
	struct kura_secbuf **ret_value);

/* An error reply's errno: the negative errno kurad's vault call returned. */
json_t *kura_wire_error(int r, const struct kura_err *err);

/*
 * kurad's reply to an operation (body, len bytes; NULL if none) as kuractl reads it: with status
 * 200, the JSON object it must be (*ret); otherwise the refusal's errno (1-4095; -EIO for any
 * other value or none) and its message in err. -EPROTO (err says so) when the body is not a JSON
 * object. Exposed for the fuzz target.
 */
int kura_wire_reply_parse(const uint8_t *body, size_t len, long status, json_t **ret,
	struct kura_err *err);

/* jansson glue: a wiping allocator, base64 fields, and strict record parsing. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "macro.h"

/* Install the wiping allocator: call once, before any other jansson use. JSON may carry a
 * value on its way out (the admin API), so every byte jansson frees is zeroed first. */
void kura_json_init(void);

/* Free (wiping) what jansson allocated for the caller, such as json_dumps' string. */
void kura_json_free(void *p);

/* A base64 string. NULL on allocation failure. */
json_t *kura_json_b64(const uint8_t *data, size_t len);

/* Decode obj[key] as base64 into malloc'd memory. -EPROTO if missing or malformed. */
int kura_json_get_b64(const json_t *obj, const char *key, uint8_t **ret, size_t *ret_len);

/* obj[key] as an integer within [min, max]. -EPROTO if missing, not an integer or outside. */
int kura_json_get_int(const json_t *obj, const char *key, int64_t min, int64_t max, int64_t *ret);

/* Compact serialisation into malloc'd bytes (no NUL). */
int kura_json_dump(const json_t *j, uint8_t **ret, size_t *ret_len);

/* The same in printable ASCII only (JSON_ENSURE_ASCII, and DEL as \u007f), for text that goes
 * to terminals, log files and syslog as it is: audit records. */
int kura_json_dump_ascii(const json_t *j, uint8_t **ret, size_t *ret_len);

/* JSON text from json_dumps(..., JSON_ENSURE_ASCII), which still holds DEL raw (only ever
 * inside a string), with each DEL as \u007f: into out, returning its length; with out NULL,
 * only the length. */
size_t kura_json_escape_del(const char *s, size_t len, char *out);

/* Parse bytes that must hold one JSON object. -EPROTO otherwise. */
int kura_json_load(const uint8_t *data, size_t len, json_t **ret);

static inline void kura_json_decrefp(json_t **j)
{
	json_decref(*j);
}

#define _cleanup_json_ _cleanup_(kura_json_decrefp)

/* Fields of an audit record line read without a JSON parser (kuractl audit), and the times its
 * filters take. No plaintext. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define KURA_AUDIT_TIME_LEN 27u /* 2026-11-25T19:40:01.123456Z */

/* The value of "key" in l (len bytes), a record line as kura_audit_append writes it: a string's
 * bytes between its quotes, still escaped, or another value's bare token. false if absent. */
bool kura_audit_field(const char *l, size_t len, const char *key, const char **ret,
	size_t *ret_len);

/* A JSON string's escaped bytes p[0..n) as text into out (cap > 4; always NUL-terminated, cut to
 * fit); for a terminal (tty), also escaped with kura_escape. Returns out. */
const char *kura_audit_unescape(const char *p, size_t n, char *out, size_t cap, bool tty);

/* kura_audit_field, then kura_audit_unescape; NULL if absent. */
const char *kura_audit_text(const char *l, size_t len, const char *key, char *out, size_t cap,
	bool tty);

/* RFC 3339 (fraction and zone optional, no zone: UTC; a date alone: its midnight) or an age
 * (1-9 digits then s, m, h, d or w, back from now) as a record's time, UTC with microseconds,
 * into out; false if s is neither. */
bool kura_audit_time_parse(const char *s, char out[KURA_AUDIT_TIME_LEN + 1]);

/* The broker's workload API as the client uses it: whoami, the names it may read, and one
 * secret's value. Touches plaintext: a value arrives as the raw body, in a guarded buffer (or,
 * from an older kurad, is decoded from base64 into one). */
#pragma once

#include <stdint.h>

#include <jansson.h>

#include "fail.h"
#include "http.h"
#include "secbuf.h"

/* Kura's own bounds on what a broker may send (anything answering the socket could be hostile),
 * which keep its peak memory near 8 MiB whatever it is sent: a set of at most KURA_SET_MAX
 * names; a secret's answer of at most 4 MiB (the raw value, or 3 MiB of it in base64 from an
 * older kurad); every other answer at most 512 KiB (a listing of 1024 names of 255 bytes is under
 * 300 KiB, and jansson's tree of the worst 512 KiB is about 13 MiB). Past them: KURA_EXIT_PROTOCOL,
 * nothing written. */
#define KURA_SET_MAX 1024
#define KURA_API_MAX_SECRET_BODY (4u * 1024u * 1024u)
#define KURA_API_MAX_BODY (512u * 1024u)

struct kura_broker {
	const char *socket_path;
	int timeout_ms; /* for one request, connect to last byte */
	int retry_ms;   /* how long a restarting kurad is tried again (0: not) */
};

struct kura_secret {
	char *name;
	uint64_t version;
	struct kura_secbuf *value; /* NULL until fetched */
};

struct kura_secret_set {
	struct kura_secret *items;
	size_t n;
};

/* GET path and parse the JSON object it answers with; a non-2xx status becomes a failure with
 * its exit code (403 denied, 429/503 unavailable, others protocol) and the broker's message. */
int kura_api_get_json(const struct kura_broker *b, const char *path, json_t **ret,
	struct kura_fail *f);

/* The names (and current versions) this peer may read: at most KURA_SET_MAX of them. */
int kura_api_list(const struct kura_broker *b, struct kura_secret_set *ret, struct kura_fail *f);

/*
 * The listing kura_api_list() reads, {"secrets": [{"name": N, "version": V}, ...]}: -EBADMSG
 * without that array or for an entry without a valid name (the naming rules) and version
 * (>= 1), -E2BIG for more than KURA_SET_MAX entries, -ENOMEM; f says which. Nothing is
 * returned on failure. Exposed for the unit tests.
 */
int kura_api_parse_list(const json_t *j, struct kura_secret_set *ret, struct kura_fail *f);

/* Fills s->value (and s->version) for s->name. A name that breaks the naming rules is refused
 * before it reaches a URL or a path. kura asks for the raw form, and the value then stays in
 * the guarded buffer it was received into; from a kurad that answers JSON it is decoded from
 * the answer straight into its guarded buffer. */
int kura_api_fetch(const struct kura_broker *b, struct kura_secret *s, struct kura_fail *f);

/* The headers of a secret's answer that kura reads, as indices into the array that
 * kura_api_secret_headers() names. */
enum kura_secret_header {
	KURA_SECRET_TYPE,        /* Content-Type */
	KURA_SECRET_VERSION,     /* Kura-Version: a decimal >= 1 */
	KURA_SECRET_FINGERPRINT, /* Kura-Fingerprint: "b2:" and 32 hex digits, as audit records */
	KURA_SECRET_CREATED,     /* Kura-Created: RFC 3339 */
	KURA_SECRET_HEADERS,
};

/* Names the headers above in want, and ends the array with a NULL name. */
void kura_api_secret_headers(struct kura_http_header want[KURA_SECRET_HEADERS + 1]);

/*
 * A secret's 2xx answer as kura_api_fetch() takes it, by its Content-Type in want (filled as
 * kura_http_get() does, from kura_api_secret_headers()); media type parameters are ignored.
 * application/octet-stream: the body is the value: *body moves to *ret_value, uncopied. Each
 * Kura- header above must be there and well-formed, else -EBADMSG and *ret_why names it.
 * application/json (a kurad from before the raw form): kura_api_parse_secret() and its
 * returns. Any other type, or none: -EMEDIUMTYPE. On failure nothing is returned and *body is
 * left to the caller; *ret_why is NULL but for the raw form's headers.
 */
int kura_api_take_secret(const struct kura_http_header *want, struct kura_secbuf **body,
	const char *name, struct kura_secbuf **ret_value, uint64_t *ret_version,
	const char **ret_why);

/*
 * The JSON answer to GET /v1/secrets/NAME (exposed for the unit and fuzz tests):
 * body is emptied of its value in place, the value decoded into *ret_value and the version into
 * *ret_version. -EBADMSG: not an object with exactly one base64 "value" string at the top;
 * -EILSEQ: that string is not base64; -EFBIG: over 64 KiB besides the value; -EPROTO: the name
 * (other than `name`), version or value missing or wrong in jansson's reading; -ENOMEM.
 */
int kura_api_parse_secret(struct kura_secbuf *body, const char *name,
	struct kura_secbuf **ret_value, uint64_t *ret_version);

/* Adds a name (copied) to the set, without a value. */
int kura_secret_set_add(struct kura_secret_set *set, const char *name, uint64_t version);

/* Wipes every value and frees the set; the set is empty after. */
void kura_secret_set_done(struct kura_secret_set *set);

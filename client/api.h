/* The broker's workload API as the client uses it: whoami, the names it may read, and one
 * secret's value. Touches plaintext: values are decoded from base64 into guarded buffers. */
#pragma once

#include <stdint.h>

#include <jansson.h>

#include "fail.h"
#include "secbuf.h"

/* Kura's own bounds on what a broker may send (anything answering the socket could be hostile),
 * which keep its peak memory near 8 MiB whatever it is sent: a set of at most KURA_SET_MAX
 * names; a secret's answer of at most 4 MiB (3 MiB of value, in base64); every other answer at
 * most 512 KiB (a listing of 1024 names of 255 bytes is under 300 KiB, and jansson's tree of
 * the worst 512 KiB is about 13 MiB). Past them: KURA_EXIT_PROTOCOL, nothing written. */
#define KURA_SET_MAX 1024
#define KURA_API_MAX_SECRET_BODY (4u * 1024u * 1024u)
#define KURA_API_MAX_BODY (512u * 1024u)

struct kura_broker {
	const char *socket_path;
	int timeout_ms;
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

/* Fills s->value (and s->version) for s->name. A name that breaks the naming rules is refused
 * before it reaches a URL or a path. The value is decoded from the answer straight into its
 * guarded buffer: one copy in memory besides the answer itself. */
int kura_api_fetch(const struct kura_broker *b, struct kura_secret *s, struct kura_fail *f);

/*
 * The answer to GET /v1/secrets/NAME as kura_api_fetch() reads it (exposed for the fuzz target):
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

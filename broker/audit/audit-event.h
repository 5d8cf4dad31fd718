/* The fields of one audit record, built the same way by kurad and by kuractl working offline:
 * what happened, to which secret, for whom, with what result. Never a value, only its keyed
 * fingerprint. */
#pragma once

#include <stdint.h>

#include <jansson.h>

#include "who.h"

#define KURA_REQUEST_ID_LEN 16u

/* The events of the admin operations (broker/vault/ops.c), by the names records carry. */
#define KURA_EVENT_SECRET_PUT "secret-put"
#define KURA_EVENT_SECRET_ROTATE "secret-rotate"
#define KURA_EVENT_SECRET_GET "secret-get"
#define KURA_EVENT_SECRET_ROLLBACK "secret-rollback"
#define KURA_EVENT_SECRET_DESTROY "secret-destroy"
#define KURA_EVENT_GRANT "grant"
#define KURA_EVENT_REVOKE "revoke"
#define KURA_EVENT_KEY_ROTATE "key-rotate"
#define KURA_EVENT_KEY_REKEY "key-rekey"
#define KURA_EVENT_CONFIG "config"

struct kura_audit_event {
	const char *event;  /* fetch, list, whoami, watch, whois, secret-put, ..., start, stop */
	const char *result; /* "ok", "denied" or "error" */
	const char *reason; /* a code when result is not "ok": no_grant, not_found, ... */
	const struct kura_identity *who; /* the peer, or the operator's own process */
	const char *secret;
	uint64_t version;        /* 0: none */
	const char *fingerprint; /* kura_vault_fingerprint */
	const char *request_id;
	const char *grant_id;
	const char *detail; /* short free text, never a value */
	const char *sink;   /* for sink events */
	int64_t kek;        /* >0: a key encryption key's number */
	int64_t count;      /* >=0 with has_count: a number of things (rewrapped, dropped) */
	bool has_count;
};

/* The record's fields, for kura_audit_append; NULL only when out of memory. */
json_t *kura_audit_event_fields(const struct kura_audit_event *e);

/* A fresh random request id: KURA_REQUEST_ID_LEN hex digits and a NUL. */
void kura_request_id(char out[KURA_REQUEST_ID_LEN + 1]);

/* The identity of this very process (a host process): for operator and daemon events. */
struct kura_identity kura_identity_self(void);

/* <state_dir>/audit into buf; -ENAMETOOLONG if it does not fit. */
int kura_audit_dir(const char *state_dir, char *buf, size_t size);

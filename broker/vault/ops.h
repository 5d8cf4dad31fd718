/* The operations table: every admin operation once, with its argument schema, the vault call
 * that runs it, its reply and its audit record, for kurad's admin API and kuractl alike.
 * Touches plaintext: secret.write's and secret.get's values, in guarded buffers only. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "audit-event.h"
#include "grant.h"
#include "vault.h"

/* Typed arguments: each operation uses the fields its schema names (zero: absent). */
struct kura_op_args {
	const char *name;   /* a secret's name */
	const char *prefix; /* secret.list; NULL: "" */
	const char *id;     /* a grant's id */
	struct kura_secbuf *value;
	bool create;             /* secret.write: a new secret, not a new version */
	bool all;                /* secret.destroy: the whole secret */
	uint64_t version;        /* secret.get (0: the current one), secret.destroy */
	uint64_t to;             /* secret.rollback */
	uint64_t max_value_size; /* config: 0 only shows it */
	struct kura_grant *grant;
	struct kura_master_source master; /* key.rekey */
	/* Not on the wire: key.rotate's progress, offline only. */
	kura_progress_fn progress;
	void *progress_data;
	bool owned; /* value and grant were allocated by kura_op_args_parse */
};

/* What an operation gives back; kura_op_result_done frees it (a zeroed one too). */
struct kura_op_result {
	uint64_t version;                        /* secret.write */
	struct kura_version_info info;           /* secret.get */
	struct kura_secbuf *value;               /* secret.get */
	char fingerprint[KURA_FINGERPRINT_TEXT]; /* of the value written or read; "" if none */
	struct kura_secret_info secret;          /* secret.show */
	struct kura_secret_list secrets;         /* secret.list */
	struct kura_grant grant;                 /* grant.add, as kurad stored it (remote) */
	bool existed;                            /* grant.add */
	struct kura_grant_list grants;           /* grant.list */
	uint64_t rewrapped;                      /* key.rotate */
	uint32_t kek;                            /* key.rotate */
	struct kura_key_status status;           /* key.status */
	uint64_t max_value_size;                 /* config */
};

enum kura_op_type {
	KURA_OP_STRING,
	KURA_OP_BOOL,
	KURA_OP_U64,         /* an integer within [min, max] */
	KURA_OP_U32,         /* the same, into a uint32_t */
	KURA_OP_VALUE,       /* base64, decoded into guarded memory */
	KURA_OP_GRANT,       /* a grant object, as records.c stores it */
	KURA_OP_MASTER_KIND, /* "file" or "passphrase" */
	KURA_OP_ABS_PATH,    /* a string that starts with '/' */
};

struct kura_op_field {
	const char *key;
	enum kura_op_type type;
	bool required;
	int64_t min, max; /* KURA_OP_U64 */
	size_t offset;    /* into struct kura_op_args (a reply's: struct kura_op_result) */
};

struct kura_operation {
	const char *name;  /* as in POST /v1/op/NAME */
	const char *event; /* the audit event; NULL: not recorded (reads of metadata) */
	bool changes;      /* refused up front while the audit log is failing */
	const struct kura_op_field *fields;
	size_t n_fields;
	/* Rules across fields, after each field parsed (NULL: none); -EINVAL with a message. */
	int (*check)(const struct kura_op_args *a, struct kura_err *err);
	int (*run)(struct kura_vault *v, struct kura_op_args *a, struct kura_op_result *res,
		struct kura_err *err);
	/* The reply's fields, when it is no more than these; else reply and reply_parse. */
	const struct kura_op_field *reply_fields;
	size_t n_reply_fields;
	/* The reply: JSON, or for a value a body built in guarded memory (*ret_raw). */
	int (*reply)(const struct kura_op_args *a, const struct kura_op_result *res,
		json_t **ret_json, struct kura_secbuf **ret_raw);
	int (*reply_parse)(const json_t *j, struct kura_op_result *res);
	/* Whether these arguments are recorded at all (NULL: whenever event is set). */
	bool (*recorded)(const struct kura_op_args *a);
	/* The operation's own part of its record. */
	void (*record)(const struct kura_op_args *a, const struct kura_op_result *res, int r,
		struct kura_audit_event *e);
};

/* The operation called name, or NULL. kura_op_at(i) walks the table (NULL past its end). */
const struct kura_operation *kura_op_find(const char *name);
const struct kura_operation *kura_op_at(size_t i);

/*
 * kurad's reading of an operation's arguments, strictly by its schema: a missing required
 * field, an unknown field, a wrong type or a number out of range is -EINVAL, with err naming
 * the field; never a default. *ret is filled as far as it parsed (so a refusal's record can
 * name the secret) and must be given to kura_op_args_done either way. Strings point into j.
 */
int kura_op_args_parse(const struct kura_operation *op, const json_t *j, struct kura_op_args *ret,
	struct kura_err *err);
void kura_op_args_done(struct kura_op_args *a);

/* kuractl's request: a's schema fields as JSON, in guarded memory (it may carry a value). */
int kura_op_request(const struct kura_operation *op, const struct kura_op_args *a,
	struct kura_secbuf **ret);

/* Run op on v with a (check first); res is filled on success. */
int kura_op_run(const struct kura_operation *op, struct kura_vault *v, struct kura_op_args *a,
	struct kura_op_result *res, struct kura_err *err);

/* The reply kurad sends for a successful run, and kuractl's strict reading of it (-EPROTO). */
int kura_op_reply(const struct kura_operation *op, const struct kura_op_args *a,
	const struct kura_op_result *res, json_t **ret_json, struct kura_secbuf **ret_raw);
int kura_op_reply_parse(const struct kura_operation *op, const json_t *j,
	struct kura_op_result *res);

void kura_op_result_done(struct kura_op_result *res);

/* An operation's audit record, built the same for kurad and for kuractl offline. */
struct kura_op_record {
	struct kura_audit_event event;
	char request_id[KURA_REQUEST_ID_LEN + 1];
};

/* Whether op with a is recorded (then its audit log must be open before it runs). */
bool kura_op_recorded(const struct kura_operation *op, const struct kura_op_args *a);

/* The record of op with a that returned r (res as it filled it), by who; detail may be NULL.
 * False when op with a is not recorded. rec holds pointers into a, res and who. */
bool kura_op_record(const struct kura_operation *op, const struct kura_op_args *a,
	const struct kura_op_result *res, int r, const struct kura_identity *who,
	const char *detail, struct kura_op_record *rec);

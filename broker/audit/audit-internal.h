/* What audit.c (append, recovery) and audit-verify.c (offline checks) share: the line format
 * and the chain's checks (the key math itself is keys/chain.c). Internal to the audit log. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "audit.h"

#define B64_MAC_LEN 44u /* base64 of 32 bytes, with padding */
#define MAC_SUFFIX_LEN (sizeof(",\"mac\":\"") - 1 + B64_MAC_LEN + 2)

/* One parsed line. */
struct rec {
	uint8_t *body; /* the line with its mac member cut off: exactly what was MAC'd */
	size_t body_len;
	uint64_t seq, epoch, next_epoch;
	bool closes; /* carries next_epoch: the last record of its epoch */
	uint8_t mac[KURA_AUDIT_MAC_BYTES];
};

void kura_audit_rec_done(struct rec *r);

/* dir's file number n: audit-NNNNNN.jsonl */
void kura_audit_file_name(uint64_t n, char buf[32]);

/* Whether r's MAC is its body's under key, chained onto prev (keys/chain.h). */
bool kura_audit_mac_ok(const struct kura_secbuf *key, const uint8_t prev[KURA_AUDIT_MAC_BYTES],
	const struct rec *r);

/* All of len bytes to fd (EINTR retried); -errno. */
int kura_audit_write_all(int fd, const void *p, size_t len);

/* A whole regular file into malloc'd memory (NUL-terminated). */
int kura_audit_read_all(int fd, uint8_t **ret, size_t *ret_len);

/* One line (without its '\n'). -EPROTO unless it is BODY-with-mac as append writes it. */
int kura_audit_rec_parse(const uint8_t *p, size_t len, struct rec *ret);

/* The next line of buf from *pos: its start and length without '\n'; *complete says whether
 * it had one. false at the end. */
bool kura_audit_next_line(const uint8_t *buf, size_t len, size_t *pos, const uint8_t **ret,
	size_t *ret_len, bool *complete);

/* The numbers of the audit-NNNNNN.jsonl files in dirfd, sorted (malloc'd). */
int kura_audit_list_files(int dirfd, uint64_t **ret, size_t *ret_n);

/* A walk along the chain: where it is (the last good record's seq and MAC, the epoch of the
 * next) and the key of that epoch (NULL: structure only). */
struct kura_audit_walk {
	struct kura_secbuf *key;
	const struct kura_audit_checkpoint *cp;
	uint64_t epoch, seq;
	uint8_t prev[KURA_AUDIT_MAC_BYTES];
};

/* Checks one file's lines onward from w, advancing it and v (good, last_seq, line, seq);
 * returns the fault found (KURA_AUDIT_OK to go on) or -errno. last_file: a cut last line is
 * TRUNCATED, not MALFORMED. */
int kura_audit_walk_file(struct kura_audit_walk *w, const uint8_t *buf, size_t len, bool last_file,
	struct kura_audit_verdict *v);

/* The key of epoch n, from the operator's starting key. */
int kura_audit_epoch_key(const struct kura_secbuf *initial_key, uint64_t n,
	struct kura_secbuf **ret);

/* The commitment to an epoch key that a start point carries: BLAKE2b-256 under a label of its
 * own, so it says nothing of the key. */
void kura_audit_key_commitment(const struct kura_secbuf *key, uint8_t out[KURA_AUDIT_MAC_BYTES]);

struct kura_audit_event;

/* An upper bound of kura_audit_event_body's length for e. */
size_t kura_audit_event_bound(const struct kura_audit_event *e);

/*
 * The BODY kura_audit_append would write for kura_audit_event_fields(e) with this seq, time and
 * epoch, byte for byte (compact, sorted keys, kura_json_dump_ascii's escapes), serialised
 * straight into out (kura_audit_event_bound(e) bytes); its length. No NUL is added.
 */
size_t kura_audit_event_body(const struct kura_audit_event *e, uint64_t seq, const char *time,
	uint64_t epoch, char *out);

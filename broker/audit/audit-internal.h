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

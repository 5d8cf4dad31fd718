/* The audit log's MAC chain: its keys (the starting key, K(0), forward evolution) and record
 * MACs. Touches key material, only ever in guarded buffers. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "secbuf.h"

#define KURA_CHAIN_KEY_BYTES 32u
#define KURA_CHAIN_MAC_BYTES 32u

/*
 * The schedule, fixed by the log format (every log ever written verifies with it):
 *
 *     S      = 32 random bytes, handed to the operator and never stored on the host
 *     K(0)   = BLAKE2b-256(key = S,    "kura/audit/evolve/1")
 *     K(e+1) = BLAKE2b-256(key = K(e), "kura/audit/evolve/1")
 *     mac    = BLAKE2b-256(key = K(e), "kura/audit/1\0" || prev_mac || record)
 *
 * K(0) is evolve(S), so whoever holds the host can never step back to S or to a closed epoch.
 */

/* A new random starting key S. -ENOMEM. */
int kura_chain_start(struct kura_secbuf **ret);

/* K(0) from the starting key, in a new buffer. -EINVAL unless start is KURA_CHAIN_KEY_BYTES. */
int kura_chain_first(const struct kura_secbuf *start, struct kura_secbuf **ret);

/* Replaces *key by the next epoch's key and wipes the old one; on failure *key is unchanged.
 * -EINVAL unless *key is KURA_CHAIN_KEY_BYTES. */
int kura_chain_evolve(struct kura_secbuf **key);

/* The record's MAC under key (KURA_CHAIN_KEY_BYTES), chained onto prev. */
void kura_chain_mac(const struct kura_secbuf *key, const uint8_t prev[KURA_CHAIN_MAC_BYTES],
	const uint8_t *record, size_t len, uint8_t out[KURA_CHAIN_MAC_BYTES]);

/* Whether mac is the record's MAC under key chained onto prev (constant time). */
bool kura_chain_mac_ok(const struct kura_secbuf *key, const uint8_t prev[KURA_CHAIN_MAC_BYTES],
	const uint8_t *record, size_t len, const uint8_t mac[KURA_CHAIN_MAC_BYTES]);

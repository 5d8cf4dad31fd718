/* A random key for the hash tables an attacker can fill (kurad's quota table, its index of
 * recent changes): chains are picked by a keyed hash (SipHash-2-4), so no peer can aim its
 * entries at one chain. The key lives in a guarded buffer. */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct kura_tablekey;

/* A new random key. -ENOMEM, or -errno from guarded memory. */
int kura_tablekey_new(struct kura_tablekey **ret);
void kura_tablekey_free(struct kura_tablekey *k); /* wipes it; NULL-safe */

/* The keyed hash of len bytes at data. */
uint64_t kura_tablekey_hash(const struct kura_tablekey *k, const void *data, size_t len);

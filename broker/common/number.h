/* Decimal numbers from text (options, queries, arguments). libc only. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* Digits only (no sign, space, prefix or suffix), within [min, max]. */
bool kura_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *ret);

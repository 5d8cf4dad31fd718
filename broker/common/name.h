/* Secret names: segments of [A-Za-z0-9._-] joined by '/', 1-255 bytes, none of them '.', '..',
 * starting with '..' or holding '.kura-tmp-' (the client's own entries). Shared with the
 * client. No plaintext. */
#pragma once

#include <stddef.h>

#define KURA_NAME_MAX 255u

/* NULL when name (len bytes, which must not hold NUL) follows the rules, otherwise the rule it
 * breaks, as text fit for an error message. */
const char *kura_name_invalid(const char *name, size_t len);

/* The same for a listing prefix: empty is fine, and a trailing '/' is allowed. */
const char *kura_prefix_invalid(const char *prefix, size_t len);

/* Text from the broker, the runtime, an image author or argv, made safe for a terminal before
 * kura prints it. No plaintext: values are never printed, so never escaped here. */
#pragma once

#include <stddef.h>

/*
 * Copies the NUL-terminated in to out (size bytes, always NUL-terminated), escaping what a
 * terminal would act on or a reader could be fooled by: C0 controls, DEL and bytes that are not
 * valid UTF-8 become \xHH; C1 controls (U+0080-U+009F), bidi controls (U+202A-U+202E,
 * U+2066-U+2069, U+200E, U+200F, U+061C) and line or paragraph separators (U+2028, U+2029)
 * become \uHHHH; a backslash becomes \\ so an escape cannot be forged. Output that does not fit
 * ends with "..." at a character boundary. Returns out.
 */
char *kura_escape(const char *in, char *out, size_t size);

/* Text that came from outside (a runtime, an image author, a peer) made safe to show on a
 * terminal. Plain C, no dependencies, so the client can share it. No plaintext. */
#pragma once

#include <stddef.h>
#include <sys/types.h>

enum kura_escape_style {
	/* For people: \xNN for a control byte or a byte of broken UTF-8, \u{N} for a control
	 * code point, and \\ for a backslash, so that no escape is ambiguous. */
	KURA_ESCAPE_TEXT,
	/* Inside a JSON string (a record line shown on a terminal): \u00NN and \uNNNN, the same
	 * value for a JSON reader; a backslash is left alone (it starts JSON's own escapes), and a
	 * byte of broken UTF-8, which JSON cannot hold anyway, is \xNN. */
	KURA_ESCAPE_JSON,
};

/*
 * s (len bytes, which may hold NUL) into out (cap > 0 bytes; always NUL-terminated, cut before
 * the first character or escape that would not fit), with everything a terminal could act on
 * escaped: C0 controls and DEL; C1 controls (U+0080-U+009F: CSI, NEL, OSC, ... in UTF-8);
 * bidirectional controls (U+202A-U+202E, U+2066-U+2069, U+200E, U+200F, U+061C), which reorder
 * what is shown; the line and paragraph separators U+2028 and U+2029; and every byte that is
 * not part of valid UTF-8 (overlong, surrogate, past U+10FFFF, cut short). Everything else,
 * printable ASCII and other Unicode, passes unchanged. Returns out.
 */
const char *kura_escape(const char *s, size_t len, enum kura_escape_style style, char *out,
	size_t cap);

/*
 * s (len bytes, valid UTF-8) quoted as a JSON string into out, which has room for 6 * len + 2
 * bytes; its length, or -1 (out undefined) if s is not valid UTF-8 (by kura_escape's rules).
 * Exactly the bytes kura_json_dump_ascii writes for a string (jansson's JSON_ENSURE_ASCII, then
 * DEL as \u007f): \" \\ \b \f \n \r \t, \u00XX for the other C0 controls, \uXXXX (upper case)
 * past U+007F, a surrogate pair past U+FFFF. Audit records are written with it, and the MAC
 * covers their bytes: any change here is a change of record format.
 */
ssize_t kura_escape_json_string(const char *s, size_t len, char *out);

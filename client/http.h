/* A minimal HTTP/1.1 GET over a Unix socket, one request per connection. Touches plaintext:
 * response bodies (secret values among them) land only in guarded buffers. */
#pragma once

#include "fail.h"
#include "secbuf.h"

#include <stdbool.h>

#define KURA_HTTP_MAX_HEADER (64u * 1024u)
#define KURA_HTTP_VALUE_MAX 256

/*
 * A response header the caller wants back. The caller sets name (matched case-insensitively);
 * the parser sets found and copies the value, stripped of surrounding blanks, into value. A
 * wanted header that comes twice, or whose value is KURA_HTTP_VALUE_MAX bytes or longer, makes
 * the head malformed. Arrays of them end with a NULL name.
 */
struct kura_http_header {
	const char *name;
	bool found;
	char value[KURA_HTTP_VALUE_MAX];
};

/*
 * GET path from the broker at socket_path with "Accept: accept" (none if NULL), giving up
 * after timeout_ms in all (connect, send, and the whole response). On success *ret_status is
 * the HTTP status, *ret_body the body (exactly Content-Length bytes, at most max_body; a
 * response without one, or with bytes past it before the broker closes, is refused), the
 * headers named in want (NULL for none) are filled, and the socket is closed.
 * On failure nothing is returned, whatever was read is wiped, and f says why: -ENOENT,
 * -ECONNREFUSED, -ECONNRESET (closed before a byte of the answer), -ETIMEDOUT... as
 * KURA_EXIT_UNREACHABLE, -EBADMSG or -EFBIG as
 * KURA_EXIT_PROTOCOL.
 */
int kura_http_get(const char *socket_path, const char *path, const char *accept, int timeout_ms,
	size_t max_body, struct kura_http_header *want, int *ret_status,
	struct kura_secbuf **ret_body, struct kura_fail *f);

/* Whether the directory socket_path names its socket in is there (a relative path's always is):
 * when it is not, the container lacks the run directory's mount, and waiting will not help. */
bool kura_http_dir_present(const char *socket_path);

/*
 * Parses "HTTP/1.x NNN reason" and the header lines in hdr (NUL-terminated, lines ended by
 * CRLF, without the blank line; cut up in place), filling want (NULL for none) as it goes.
 * Header names are tokens; no line may hold a control byte other than a tab. Content-Length
 * must be there exactly once, decimal, within max_body (-EFBIG past it); chunked transfer
 * coding is refused (kurad never sends it to us, and parsing less is safer). -EBADMSG for
 * anything else, and then nothing in want is found. Exposed for the unit and fuzz tests.
 */
int kura_http_parse_head(char *hdr, size_t max_body, struct kura_http_header *want, int *ret_status,
	size_t *ret_len);

/* A minimal HTTP/1.1 GET over a Unix socket, one request per connection. Touches plaintext:
 * response bodies (secret values among them) land only in guarded buffers. */
#pragma once

#include "fail.h"
#include "secbuf.h"

#define KURA_HTTP_MAX_HEADER (64u * 1024u)

/*
 * GET path from the broker at socket_path, giving up after timeout_ms in all (connect, send,
 * and the whole response). On success *ret_status is the HTTP status and *ret_body the body
 * (exactly Content-Length bytes, at most max_body; a response without one is refused), and the
 * socket is closed.
 * On failure nothing is returned, whatever was read is wiped, and f says why: -ENOENT,
 * -ECONNREFUSED, -ETIMEDOUT... as KURA_EXIT_UNREACHABLE, -EBADMSG or -EFBIG as
 * KURA_EXIT_PROTOCOL.
 */
int kura_http_get(const char *socket_path, const char *path, int timeout_ms, size_t max_body,
	int *ret_status, struct kura_secbuf **ret_body, struct kura_fail *f);

/*
 * Parses "HTTP/1.1 NNN reason\r\n" and the header lines in hdr (NUL-terminated, without the
 * blank line; cut up in place). Content-Length must be there exactly once, decimal, within
 * max_body (-EFBIG past it); chunked transfer coding is refused (kurad never sends it to us, and
 * parsing less is safer). -EBADMSG for anything else. Exposed for the fuzz target.
 */
int kura_http_parse_head(char *hdr, size_t max_body, int *ret_status, size_t *ret_len);

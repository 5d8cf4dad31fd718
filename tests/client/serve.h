/* What the client's unit tests share: a one-connection stand-in for kurad's workload socket (a
 * forked child on a real Unix socket that answers canned bytes) and test values in guarded
 * buffers. No plaintext but the tests' own. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "secbuf.h"

/* A guarded buffer holding len bytes of s; aborts the test if it cannot. */
struct kura_secbuf *kura_test_value(const void *s, size_t len);

/* Where the socket is (in a fresh directory that kura_test_serve_init() makes). */
extern char sock_path[128];

/* -1 if the directory cannot be made; kura_test_serve_done() removes it. */
int kura_test_serve_init(void);
void kura_test_serve_done(void);

/* Listens on sock_path and forks a child that takes one connection, saves the request up to its
 * blank line, then sends reply (len bytes) and, 100 ms later, late (if not NULL) and closes;
 * with hold it answers nothing and waits to be killed. Aborts the test if it cannot. */
pid_t kura_test_serve(const char *reply, size_t len, const char *late, bool hold);

/* Kills and reaps the child. */
void kura_test_reap(pid_t pid);

/* Whether the last request the child saved holds text. */
bool kura_test_request_has(const char *text);

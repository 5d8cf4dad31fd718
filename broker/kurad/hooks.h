/* Test-only misbehaviour: a front that lies, a custody process that sends garbage, a process
 * that makes a forbidden system call. Compiled in only with -DKURA_TEST_HOOKS, into the test
 * binary kurad-hooks (never installed, never in kurad): there KURA_TEST_HOOK names the one
 * hook on. In kurad every hook is a constant false. No plaintext. */
#pragma once

#include <stdbool.h>

#ifdef KURA_TEST_HOOKS
bool kura_hook_is(const char *name);
/* A system call the named role's sandbox forbids; it does not return if the sandbox holds. */
void kura_hook_forbidden(const char *role);
#else
static inline bool kura_hook_is(const char *name)
{
	(void)name;
	return false;
}
static inline void kura_hook_forbidden(const char *role)
{
	(void)role;
}
#endif

/* Test-only hooks (hooks.h): built into kurad-hooks alone. KURA_TEST_HOOK is read with getenv
 * here and nowhere else: this file is never part of kurad. No plaintext. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

#include "hooks.h"
#include "log.h"

bool kura_hook_is(const char *name)
{
	const char *h = getenv("KURA_TEST_HOOK");

	return h && strcmp(h, name) == 0;
}

void kura_hook_forbidden(const char *role)
{
	char name[64];

	snprintf(name, sizeof(name), "syscall:%s", role);
	if (!kura_hook_is(name))
		return;
	kura_log(LOG_NOTICE, "test hook: the %s process makes a forbidden system call", role);
	/* The front and the custody process never make a socket; none of us ever execs. */
	if (strcmp(role, "front") == 0 || strcmp(role, "keeper") == 0)
		(void)socket(AF_INET, SOCK_STREAM, 0);
	else
		(void)execl("/bin/true", "true", (char *)NULL);
	kura_log(LOG_ERR, "test hook: the forbidden system call was allowed");
}

/* libFuzzer target for the cgroup parser: /proc/<pid>/cgroup of any process, whose cgroup names
 * a container may choose below its own, must parse or be refused, never crash; and whatever it
 * decides must be a well-formed container ID. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cgroup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kura_cgroup_id id;
	int r = kura_cgroup_parse((const char *)data, size, &id);

	if (r == 0 && (strlen(id.id) != 64 || !kura_cgroup_is_hex64(id.id, 64) ||
			      id.runtime == KURA_RUNTIME_NONE))
		__builtin_trap();
	if (r != 0 && r != -ENOENT && r != -EBADMSG && r != -EMEDIUMTYPE)
		__builtin_trap();
	return 0;
}

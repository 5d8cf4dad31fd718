/* libFuzzer target for every parser of store records and names: whatever a store (or an
 * intruder who edits it) hands back must be refused cleanly or parsed, never crash. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "grant.h"
#include "json.h"
#include "name.h"
#include "records.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A keyring with a record key: the secret record's MAC is checked before its fields, so
 * random input mostly stops there; what matters is that nothing before the check crashes. */
static struct kura_keyring *keyring(void)
{
	static struct kura_keyring *kr;

	if (!kr && (kura_keys_init() < 0 || kura_keyring_new(&kr) < 0 ||
			   kura_keyring_generate_record_key(kr) < 0))
		__builtin_trap();
	return kr;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct keyring_record k;
	struct secret_record s;
	struct version_record v;
	struct kura_grant g;

	if (keyring_record_decode(data, size, &k) == 0) {
		uint8_t *out;
		size_t len;

		/* What parses must re-encode. */
		if (keyring_record_encode(&k, &out, &len) != 0)
			__builtin_trap();
		free(out);
		keyring_record_done(&k);
	}
	(void)secret_record_decode(keyring(), "a/b", data, size, &s);
	if (version_record_decode(data, size, &v) == 0)
		kura_sealed_done(&v.sealed);
	if (kura_grant_decode(data, size, &g) == 0) {
		uint8_t *out;
		size_t len;

		if (kura_grant_encode(&g, &out, &len) != 0)
			__builtin_trap();
		free(out);
		kura_grant_done(&g);
	}
	if (memchr(data, 0, size) == NULL) {
		(void)kura_name_invalid((const char *)data, size);
		(void)kura_prefix_invalid((const char *)data, size);
	}
	return 0;
}

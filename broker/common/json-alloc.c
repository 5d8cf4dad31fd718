/* jansson's allocator for every kura binary: wipes each block on free, because JSON documents
 * can carry values. No libsodium here, so the static client links it too. */
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "json.h"

/* Each block carries its size in front so free can wipe it all; 16 keeps max alignment. */
#define HDR 16u

static void *wipe_malloc(size_t n)
{
	uint8_t *p;

	if (n > SIZE_MAX - HDR)
		return NULL;
	p = malloc(n + HDR);
	if (!p)
		return NULL;
	memcpy(p, &n, sizeof(n));
	return p + HDR;
}

static void wipe_free(void *ptr)
{
	uint8_t *p;
	size_t n;

	if (!ptr)
		return;
	p = (uint8_t *)ptr - HDR;
	memcpy(&n, p, sizeof(n));
	explicit_bzero(p, n + HDR);
	free(p);
}

void kura_json_init(void)
{
	json_set_alloc_funcs(wipe_malloc, wipe_free);
}

void kura_json_free(void *p)
{
	json_free_t f;

	json_get_alloc_funcs(NULL, &f);
	f(p);
}

/* Secret name rules. Names become store keys, file paths inside containers and URL segments,
 * so they are kept to a set that is safe in all three. Shared with the client. No plaintext. */
#include <stdbool.h>
#include <string.h>

#include "name.h"

static bool name_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		c == '.' || c == '_' || c == '-';
}

/*
 * A segment the client could mistake for one of its own entries in the secrets directory
 * (client/writer.c): "..data", "..data_tmp_<hex>" and "..kura_<set>" at the top, and
 * ".<name>.kura-tmp-<hex>" beside every file it writes. A secret by such a name would be
 * swapped, pruned or overwritten by the client's own bookkeeping.
 */
static bool reserved(const char *seg, size_t len)
{
	static const char tmp[] = ".kura-tmp-";

	if (len >= 2 && seg[0] == '.' && seg[1] == '.')
		return true;
	return memmem(seg, len, tmp, sizeof(tmp) - 1) != NULL;
}

static const char *check(const char *name, size_t len, bool prefix)
{
	size_t seg = 0;

	if (len > KURA_NAME_MAX)
		return "a name is at most 255 bytes";
	if (len == 0)
		return prefix ? NULL : "a name cannot be empty";
	for (size_t i = 0; i <= len; i++) {
		if (i == len || name[i] == '/') {
			size_t seg_len = i - seg;

			if (seg_len == 0 && !(prefix && i == len))
				return "a name cannot have an empty segment (no leading, trailing or "
				       "doubled '/')";
			/* A prefix may end inside a segment: ".env" starts with ".". */
			if (prefix && i == len)
				break;
			if ((seg_len == 1 && name[seg] == '.') ||
				(seg_len == 2 && name[seg] == '.' && name[seg + 1] == '.'))
				return "a name cannot have a '.' or '..' segment";
			if (reserved(name + seg, seg_len))
				return "a name cannot have a segment starting with '..' or holding "
				       "'.kura-tmp-': kura's client keeps its own files by those names";
			seg = i + 1;
			continue;
		}
		if (!name_char(name[i]))
			return "a name may hold only the characters A-Z a-z 0-9 . _ - in segments "
			       "joined by '/'";
	}
	return NULL;
}

const char *kura_name_invalid(const char *name, size_t len)
{
	return check(name, len, false);
}

const char *kura_prefix_invalid(const char *prefix, size_t len)
{
	return check(prefix, len, true);
}

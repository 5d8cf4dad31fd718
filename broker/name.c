/* Secret name rules. Names become store keys, file paths inside containers and URL segments,
 * so they are kept to a set that is safe in all three. */
#include <stdbool.h>
#include <string.h>

#include "name.h"

static bool name_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		c == '.' || c == '_' || c == '-';
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

/* libFuzzer target for the cgroup parser: /proc/<pid>/cgroup of any process, whose cgroup names
 * a container may choose below its own, must parse or be refused, never crash; what it decides
 * must be a well-formed ID found in the text, and it must hold to the rules callers rely on: a
 * path shaped like a container's is never "no container", and nothing made below a container's
 * own cgroup changes which container it is. No plaintext. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cgroup.h"
#include "check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PATH_LEN_MAX 4095 /* the longest path the kernel prints (PATH_MAX - 1) */

/* What a container may create below its cgroup: a segment naming some other container. */
static const char below[] =
	"/docker/ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";

static bool is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* Whether text[0..n) holds a run of 64 lowercase hex digits. */
static bool has_id_run(const char *s, size_t n)
{
	size_t run = 0;

	for (size_t i = 0; i < n; i++) {
		run = is_hex(s[i]) ? run + 1 : 0;
		if (run >= KURA_CGROUP_ID_LEN)
			return true;
	}
	return false;
}

/* The path of a line the parser took (two ':' before it). */
static const char *line_path(const char *line, const char *end)
{
	const char *p = memchr(line, ':', (size_t)(end - line));

	p = p ? memchr(p + 1, ':', (size_t)(end - p - 1)) : NULL;
	check(p); /* the parser took a line without its two fields */
	return p + 1;
}

/*
 * The text with `below` appended to every path but "/", into a malloc'd buffer: *ret_changed
 * says whether any path was, *ret_too_long whether one is then longer than the kernel prints.
 */
static char *descend(const char *text, size_t len, size_t *ret_len, bool *ret_changed,
	bool *ret_too_long)
{
	size_t lines = 0, n = 0;
	char *out;

	for (size_t i = 0; i < len; i++)
		lines += text[i] == '\n';
	out = malloc(len + lines * (sizeof(below) - 1) + 1);
	check(out);
	*ret_changed = *ret_too_long = false;
	for (const char *line = text, *end; line < text + len; line = end + 1) {
		const char *path;

		end = memchr(line, '\n', (size_t)(text + len - line));
		path = line_path(line, end);
		memcpy(out + n, line, (size_t)(end - line));
		n += (size_t)(end - line);
		if (end - path > 1) {
			memcpy(out + n, below, sizeof(below) - 1);
			n += sizeof(below) - 1;
			*ret_changed = true;
			if ((size_t)(end - path) + sizeof(below) - 1 > PATH_LEN_MAX)
				*ret_too_long = true;
		}
		out[n++] = '\n';
	}
	*ret_len = n;
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	struct kura_cgroup_id id, again, deeper;
	bool changed, too_long;
	size_t len;
	char *t;
	int r = kura_cgroup_parse(text, size, &id), r2;

	check(r == 0 || r == -ENOENT || r == -EBADMSG || r == -EMEDIUMTYPE);
	r2 = kura_cgroup_parse(text, size, &again);
	check(r2 == r);
	if (r == 0) {
		check(again.runtime == id.runtime && strcmp(again.id, id.id) == 0);
		check(strlen(id.id) == 64 && kura_cgroup_is_hex64(id.id, 64));
		check(id.runtime != KURA_RUNTIME_NONE && kura_cgroup_runtime_name(id.runtime));
		check(memmem(text, size, id.id, 64));
	}
	if (r == -ENOENT) {
		/* "No container" (which callers may take for the host) only when no path holds
		 * anything shaped like a container ID. */
		for (const char *line = text, *end; line < text + size; line = end + 1) {
			const char *path;

			end = memchr(line, '\n', (size_t)(text + size - line));
			path = line_path(line, end);
			check(!has_id_run(path, (size_t)(end - path)));
		}
	}
	if (r != 0 && r != -ENOENT && r != -EMEDIUMTYPE)
		return 0;

	/* A container (or a process in no container we know) makes a cgroup below its own that
	 * names another container: it is still what it was, or refused if the path grows past
	 * what the kernel prints; an unknown layout stays unknown, never "no container". */
	t = descend(text, size, &len, &changed, &too_long);
	r2 = kura_cgroup_parse(t, len, &deeper);
	free(t);
	if (too_long)
		check(r2 == -EBADMSG);
	else if (r == 0)
		check(r2 == 0 && deeper.runtime == id.runtime && strcmp(deeper.id, id.id) == 0);
	else
		check(r2 == (changed ? -EMEDIUMTYPE : r));
	return 0;
}

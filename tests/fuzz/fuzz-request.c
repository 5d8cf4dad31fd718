/* libFuzzer target for what kurad takes from a workload request's URL: the secret name after
 * /v1/secrets/ and listing prefixes (name.h), and the numbers of ?since= and ?timeout= (and
 * whois' pid=) through kura_http_parse_u64. The input is "PATH\nNUMBER"; a name that is
 * accepted is safe as a store key, a file path and a URL segment, and a number is accepted
 * exactly when it is plain decimal within its bounds. No plaintext. */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "number.h"
#include "http.h"
#include "name.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool name_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		c == '.' || c == '_' || c == '-';
}

/* What an accepted name must be whatever else the rules refuse: 1-255 bytes of segments of
 * name characters, none empty, "." or "..". A prefix may be empty, end in '/' or end inside a
 * segment (so its last piece may be "." or ".."). */
static void check_safe(const char *s, size_t len, bool prefix)
{
	size_t seg = 0;

	check(len <= 255 && (prefix || len > 0));
	for (size_t i = 0; i <= len; i++) {
		if (i < len && s[i] != '/') {
			check(name_char(s[i]));
			continue;
		}
		if (prefix && i == len)
			break;
		check(i > seg);
		check(!(i - seg == 1 && s[seg] == '.'));
		check(!(i - seg == 2 && s[seg] == '.' && s[seg + 1] == '.'));
		seg = i + 1;
	}
}

static void names(const char *s, size_t len)
{
	char *slash;
	bool name_ok = !kura_name_invalid(s, len);

	if (name_ok)
		check_safe(s, len, false);
	if (!kura_prefix_invalid(s, len))
		check_safe(s, len, true);
	/* Every name is a prefix, and the prefix of the folder it would be. */
	if (name_ok) {
		check(!kura_prefix_invalid(s, len));
		slash = malloc(len + 2);
		check(slash);
		memcpy(slash, s, len);
		slash[len] = '/';
		if (len + 1 <= 255)
			check(!kura_prefix_invalid(slash, len + 1));
		free(slash);
	}
}

/* The reference: digits only, no overflow, within [min, max]. */
static bool plain_u64(const char *s, uint64_t min, uint64_t max, uint64_t *ret)
{
	uint64_t v = 0;

	if (!*s)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (v < min || v > max)
		return false;
	*ret = v;
	return true;
}

static void number(const char *s, uint64_t min, uint64_t max)
{
	uint64_t got = 0, want = 0;
	bool ok = kura_parse_u64(s, min, max, &got);

	check(ok == plain_u64(s, min, max, &want));
	check(!ok || got == want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	size_t plen = nl ? (size_t)(nl - data) : size;
	char *path, *num;

	/* The URL as libmicrohttpd hands it over is a C string: it ends at the first NUL. */
	path = strndup((const char *)data, plen);
	num = strndup(nl ? (const char *)nl + 1 : "", nl ? size - plen - 1 : 0);
	check(path && num);
	names(path, strlen(path));
	/* since (workload.c), timeout (up to watch-max's largest), whois' pid (admin.c). */
	number(num, 0, INT64_MAX);
	number(num, 1, 3600);
	number(num, 1, 4194304);
	number(num, 0, UINT64_MAX);
	free(path);
	free(num);
	return 0;
}

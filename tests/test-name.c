/* Unit tests for the secret name rules. */
#include <string.h>

#include "name.h"
#include "tap.h"

static bool ok(const char *n)
{
	return kura_name_invalid(n, strlen(n)) == NULL;
}

int main(void)
{
	static const char *good[] = { "a", "db/password", "A-Z_a.z-0.9", "x/y/z", ".env", "a..b",
		"..a", "a/.hidden", "...", "a-/_b" };
	static const char *bad[] = { "", "/a", "a/", "a//b", ".", "..", "a/./b", "a/../b", "../a",
		"a/..", "a b", "a\\b", "a:b", "a@1", "a#b", "ü", "a\tb", "a%2fb", "a*", "db/*" };
	char name[300];

	for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++)
		tap_ok(ok(good[i]), "valid name '%s'", good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		tap_ok(!ok(bad[i]), "invalid name #%zu '%s'", i, bad[i][0] == 'a' && bad[i][1] == '\t' ? "a<TAB>b" : bad[i]);

	tap_ok(kura_name_invalid("a\nb", 3) != NULL, "a newline inside the name is refused");
	tap_ok(kura_name_invalid("a\0b", 3) != NULL, "a NUL inside the name is refused");
	memset(name, 'a', sizeof(name));
	tap_ok(kura_name_invalid(name, 255) == NULL, "255 bytes is allowed");
	tap_ok(kura_name_invalid(name, 256) != NULL, "256 bytes is refused");
	tap_ok(strstr(kura_name_invalid("a/../b", 6), "..") != NULL, "the rule names '..'");
	tap_ok(strstr(kura_name_invalid("a b", 3), "A-Z") != NULL, "the rule names the characters");

	tap_ok(kura_prefix_invalid("", 0) == NULL, "an empty prefix lists everything");
	tap_ok(kura_prefix_invalid("db/", 3) == NULL, "a prefix may end with '/'");
	tap_ok(kura_prefix_invalid("db/.e", 5) == NULL, "a prefix may end inside a segment");
	tap_ok(kura_prefix_invalid("db/../", 6) != NULL, "a '..' segment in a prefix is refused");
	tap_ok(kura_prefix_invalid("db//", 4) != NULL, "an empty segment in a prefix is refused");
	return tap_done();
}

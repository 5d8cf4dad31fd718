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
		"a/.hidden", "a-/_b", ".data", "a/b..", "kura-tmp-1", ".a.kura-tmp", "a.kura_x" };
	static const char *bad[] = { "", "/a", "a/", "a//b", ".", "..", "a/./b", "a/../b", "../a",
		"a/..", "a b", "a\\b", "a:b", "a@1", "a#b", "ü", "a\tb", "a%2fb", "a*", "db/*" };
	/* The client's own entries in the secrets directory (client/writer.c): the "..data" link,
	 * "..kura_<set>" directories, "..data_tmp_<hex>", and ".<name>.kura-tmp-<hex>" files. */
	static const char *reserved[] = { "..data", "..kura_20261125T193144.1_0a0b0c0d",
		"..data_tmp_0a0b0c0d", "..a", "...", "a/..data", "a/..b/c", ".db.kura-tmp-0a0b0c0d",
		"app/.db.kura-tmp-00000000", ".x.kura-tmp-", "a.kura-tmp-1", "a/b.kura-tmp-/c" };
	char name[300];

	for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++)
		tap_ok(ok(good[i]), "valid name '%s'", good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		tap_ok(!ok(bad[i]), "invalid name #%zu '%s'", i,
			bad[i][0] == 'a' && bad[i][1] == '\t' ? "a<TAB>b" : bad[i]);

	for (size_t i = 0; i < sizeof(reserved) / sizeof(*reserved); i++) {
		const char *why = kura_name_invalid(reserved[i], strlen(reserved[i]));

		tap_ok(why && strstr(why, "kura"),
			"reserved name '%s' is refused as kura's own: %s", reserved[i],
			why ? why : "(accepted)");
	}
	tap_ok(kura_prefix_invalid("..data/", 7) != NULL,
		"a reserved segment in a prefix is refused");
	tap_ok(kura_prefix_invalid("a/.b.kura-tmp-x/", 16) != NULL,
		"a temp-file segment in a prefix is refused");
	tap_ok(kura_prefix_invalid("a/..", 4) == NULL, "a prefix may end inside a segment ('..')");

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

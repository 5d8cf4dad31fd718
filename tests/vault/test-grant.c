/* Unit tests for the grant records: every field through encode and decode unchanged, ids
 * that follow the content only, and records that are not a grant refused rather than half
 * read; then add, list and remove on a real SQLite store. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grant.h"
#include "json.h"
#include "tap.h"

#define IMG                                                                                        \
	"sha256:"                                                                                  \
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

static char *lk[] = { "app", "tier" }, *lv[] = { "web", "front" };
static char *ik[] = { "org.example.team" }, *iv[] = { "payments" };

static struct kura_grant full(void)
{
	return (struct kura_grant){ .pattern = "app/*",
		.has_uid = true,
		.uid = 1000,
		.runtime = "docker",
		.image = IMG,
		.name = "web-1",
		.label_keys = lk,
		.label_values = lv,
		.n_labels = 2,
		.image_label_keys = ik,
		.image_label_values = iv,
		.n_image_labels = 1,
		.created = 1700000000 };
}

static bool same(const struct kura_grant *a, const struct kura_grant *b)
{
	bool ok = strcmp(a->pattern, b->pattern) == 0 && a->host == b->host &&
		a->has_uid == b->has_uid && a->uid == b->uid && a->created == b->created &&
		!a->digest == !b->digest && strcmp(a->runtime, b->runtime) == 0 &&
		strcmp(a->image, b->image) == 0 && strcmp(a->name, b->name) == 0 &&
		a->n_labels == b->n_labels && a->n_image_labels == b->n_image_labels;

	for (size_t i = 0; ok && i < a->n_labels; i++)
		ok = strcmp(a->label_keys[i], b->label_keys[i]) == 0 &&
			strcmp(a->label_values[i], b->label_values[i]) == 0;
	for (size_t i = 0; ok && i < a->n_image_labels; i++)
		ok = strcmp(a->image_label_keys[i], b->image_label_keys[i]) == 0 &&
			strcmp(a->image_label_values[i], b->image_label_values[i]) == 0;
	return ok;
}

static int decode_text(const char *text, struct kura_grant *g)
{
	return kura_grant_decode((const uint8_t *)text, strlen(text), g);
}

static void test_codec(void)
{
	struct kura_grant g = full(), back = { 0 }, other = full();
	uint8_t *rec = NULL;
	size_t len = 0;

	tap_ok(kura_grant_invalid(&g) == NULL, "a grant with every selector is sound");
	tap_is(kura_grant_encode(&g, &rec, &len), 0, "encode it");
	tap_is(kura_grant_decode(rec, len, &back), 0, "decode it");
	tap_ok(same(&g, &back), "every field comes back unchanged");
	kura_grant_done(&back);
	kura_grant_set_id(&g);
	kura_grant_set_id(&other);
	tap_ok(strlen(g.id) == KURA_GRANT_ID_LEN && strcmp(g.id, other.id) == 0,
		"the same content has the same id (%s)", g.id);
	other.created = 1;
	kura_grant_set_id(&other);
	tap_ok(strcmp(g.id, other.id) == 0, "the creation time is not part of the id");
	other.uid = 1001;
	kura_grant_set_id(&other);
	tap_ok(strcmp(g.id, other.id) != 0, "another uid is another grant");
	{
		size_t tried = 0, decoded = 0;

		for (size_t cut = 0; cut < len; cut++, tried++) {
			struct kura_grant t = { 0 };

			if (kura_grant_decode(rec, cut, &t) == 0) {
				tap_diag("a record cut at %zu bytes decoded", cut);
				kura_grant_done(&t);
				decoded++;
			}
		}
		tap_ok(tried > 100 && decoded == 0, "none of %zu records cut short decodes", tried);
	}
	free(rec);

	tap_is(decode_text("[]", &back), -EPROTO, "an array is not a grant");
	tap_is(decode_text("{\"created\":1,\"pattern\":\"a\"}", &back), -EPROTO,
		"no host field: -EPROTO");
	tap_is(decode_text("{\"host\":\"yes\",\"created\":1,\"pattern\":\"a\"}", &back), -EPROTO,
		"host not a boolean: -EPROTO");
	tap_is(decode_text("{\"host\":true,\"created\":-1,\"pattern\":\"a\"}", &back), -EPROTO,
		"a negative creation time: -EPROTO");
	tap_is(decode_text("{\"host\":true,\"created\":1,\"pattern\":\"a\",\"uid\":4294967295}",
		       &back),
		-EPROTO, "uid (uid_t)-1: -EPROTO");
	tap_is(decode_text("{\"host\":true,\"created\":1,\"pattern\":7}", &back), -EPROTO,
		"a pattern that is not a string: -EPROTO");
	tap_is(decode_text("{\"host\":false,\"created\":1,\"pattern\":\"a\",\"labels\":{\"k\":1}}",
		       &back),
		-EPROTO, "a label value that is not a string: -EPROTO");
}

static void test_store(void)
{
	static char root[] = "/tmp/kura-test-grant-XXXXXX";
	struct kura_init_opts o = { .master = { .kind = KURA_MASTER_FILE } };
	struct kura_master_source m = { .kind = KURA_MASTER_FILE };
	struct kura_grant g = full(), h = { .pattern = "db/pw", .host = true };
	struct kura_grant_list l = { 0 };
	struct kura_err err = { 0 };
	struct kura_vault *v = NULL;
	char dir[64];
	bool existed = true;

	if (!mkdtemp(root))
		return;
	snprintf(dir, sizeof(dir), "%s/s", root);
	if (kura_vault_init(dir, &o, &err) < 0 || kura_vault_open(dir, &m, 0, &v, &err) < 0) {
		tap_ok(false, "a state: %s", err.msg);
		return;
	}
	tap_ok(kura_grant_add(v, &g, &existed, &err) == 0 && !existed, "add a grant");
	tap_ok(kura_grant_add(v, &h, &existed, &err) == 0 && !existed, "and a host grant");
	tap_ok(kura_grant_list(v, &l, &err) == 0 && l.n == 2 &&
			strcmp(l.items[0].id, l.items[1].id) < 0,
		"both listed, ordered by id");
	for (size_t i = 0; i < l.n; i++)
		if (strcmp(l.items[i].id, g.id) == 0)
			tap_ok(same(&l.items[i], &g), "the stored grant reads back whole");
	kura_grant_list_done(&l);
	h.host = false;
	tap_is(kura_grant_add(v, &h, &existed, &err), -EINVAL,
		"a grant without a selector: -EINVAL");
	tap_ok(err.msg[0] != '\0', "with the broken rule: %s", err.msg);
	tap_is(kura_grant_remove(v, g.id, &err), 0, "remove by id");
	tap_is(kura_grant_remove(v, g.id, &err), -ENOENT, "again: -ENOENT");
	tap_ok(kura_grant_list(v, &l, &err) == 0 && l.n == 1, "one grant left");
	kura_grant_list_done(&l);
	kura_vault_close(v);
	tap_rmtree(root);
}

int main(void)
{
	if (kura_keys_init() < 0)
		return 99;
	kura_json_init();
	test_codec();
	test_store();
	return tap_done();
}

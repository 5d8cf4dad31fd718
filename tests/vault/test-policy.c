/* Unit tests for grants and the policy decision, and grant records in a real store. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grant.h"
#include "json.h"
#include "policy.h"
#include "policy-index.h"
#include "tap.h"
#include "wire.h"

#define IMG_A "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define IMG_B "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static const char *keys_web[] = { "app", "tier" };
static const char *vals_web[] = { "web", "front" };
static const char *digests_a[] = { "registry.example/app@" IMG_B };

static const struct kura_identity web = {
	.pid = 100,
	.uid = 1000,
	.runtime = "docker",
	.container_id = "c0ffee",
	.name = "web-1",
	.image_id = IMG_A,
	.digests = digests_a,
	.n_digests = 1,
	.label_keys = keys_web,
	.label_values = vals_web,
	.n_labels = 2,
};

/* From an image built with LABEL app=web, run with --label tier=db. */
static const char *keys_own[] = { "tier" };
static const char *vals_own[] = { "db" };
static const char *keys_img[] = { "app" };
static const char *vals_img[] = { "web" };

static const struct kura_identity lab = {
	.pid = 101,
	.uid = 1000,
	.runtime = "docker",
	.container_id = "c0ffee2",
	.name = "lab-1",
	.image_id = IMG_B,
	.label_keys = keys_own,
	.label_values = vals_own,
	.n_labels = 1,
	.image_label_keys = keys_img,
	.image_label_values = vals_img,
	.n_image_labels = 1,
};

static const struct kura_identity root_host = { .host = true, .pid = 1, .uid = 0 };
static const struct kura_identity user_host = { .host = true, .pid = 2, .uid = 1000 };

static struct kura_grant grant(const char *pattern)
{
	return (struct kura_grant){ .pattern = (char *)pattern };
}

static void test_validation(void)
{
	struct kura_grant g = grant("db/password");
	char *lk[] = { "app", "app" }, *lv[] = { "a", "b" };

	tap_ok(kura_grant_invalid(&g) != NULL, "a grant without selectors is refused");
	g.image = "nginx:latest";
	tap_ok(kura_grant_invalid(&g) && strstr(kura_grant_invalid(&g), "tag"),
		"a tag is refused as an image");
	g.image = "sha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
	tap_ok(kura_grant_invalid(&g) != NULL, "uppercase hex is not an image ID");
	g.image = IMG_A "0";
	tap_ok(kura_grant_invalid(&g) != NULL, "65 hex digits are not an image ID");
	g.image = IMG_A;
	tap_ok(kura_grant_invalid(&g) == NULL, "an image ID is a selector");
	g.host = true;
	tap_ok(kura_grant_invalid(&g) != NULL, "--host with an image is refused");
	g = grant("db/password");
	g.has_uid = true;
	tap_ok(kura_grant_invalid(&g) != NULL, "--uid alone is refused");
	g.host = true;
	tap_ok(kura_grant_invalid(&g) == NULL, "--host --uid is fine");
	g = grant("db/password");
	g.digest = "@" IMG_A;
	tap_ok(kura_grant_invalid(&g) != NULL, "a digest without a repository is refused");
	g.digest = "reg/app@" IMG_A;
	tap_ok(kura_grant_invalid(&g) == NULL, "repo@sha256:... is a digest");
	g = grant("db/../x");
	g.host = true;
	tap_ok(kura_grant_invalid(&g) != NULL, "a traversal pattern is refused");
	g.pattern = "*";
	tap_ok(kura_grant_invalid(&g) != NULL, "a bare * is refused");
	g.pattern = "db/*/x";
	tap_ok(kura_grant_invalid(&g) != NULL, "a * inside a pattern is refused");
	g.pattern = "db/*";
	tap_ok(kura_grant_invalid(&g) == NULL, "PREFIX/* is a pattern");
	g = grant("x");
	g.label_keys = lk;
	g.label_values = lv;
	g.n_labels = 2;
	tap_ok(kura_grant_invalid(&g) != NULL, "the same label key twice is refused");
}

static void test_matching(void)
{
	struct kura_grant g = grant("db/password");
	char *lk[] = { "tier", "app" }, *lv[] = { "front", "web" }, *bad[] = { "front", "api" };

	g.image = IMG_A;
	tap_ok(kura_grant_matches(&g, &web), "image ID matches");
	tap_ok(!kura_grant_matches(&g, &root_host),
		"a container grant never matches a host process");
	g.image = IMG_B;
	tap_ok(!kura_grant_matches(&g, &web), "another image ID does not");
	g.image = IMG_A;
	g.label_keys = lk;
	g.label_values = lv;
	g.n_labels = 2;
	tap_ok(kura_grant_matches(&g, &web), "image and both labels match");
	g.label_values = bad;
	tap_ok(!kura_grant_matches(&g, &web), "the same image with a non-matching label does not");
	g.n_labels = 0;
	g.name = "web-2";
	tap_ok(!kura_grant_matches(&g, &web), "a non-matching name does not");
	g.name = "web-1";
	g.runtime = "podman";
	tap_ok(!kura_grant_matches(&g, &web), "a non-matching runtime does not");
	g.runtime = "docker";
	tap_ok(kura_grant_matches(&g, &web), "image, name and runtime match");
	g.has_uid = true;
	g.uid = 0;
	tap_ok(!kura_grant_matches(&g, &web), "a non-matching uid does not");
	g = grant("db/password");
	g.digest = "registry.example/app@" IMG_B;
	tap_ok(kura_grant_matches(&g, &web), "a repo digest of the image matches");
	g.digest = "registry.example/other@" IMG_B;
	tap_ok(!kura_grant_matches(&g, &web), "the same digest under another repository does not");

	g = grant("db/*");
	g.host = true;
	g.has_uid = true;
	g.uid = 0;
	tap_ok(kura_grant_matches(&g, &root_host), "--host --uid 0 matches root on the host");
	tap_ok(!kura_grant_matches(&g, &user_host), "and not another user");
	tap_ok(!kura_grant_matches(&g, &web), "nor any container");

	tap_ok(kura_grant_covers(&g, "db/password") && kura_grant_covers(&g, "db/a/b"),
		"db/* covers names below db/");
	tap_ok(!kura_grant_covers(&g, "db") && !kura_grant_covers(&g, "db2/x") &&
			!kura_grant_covers(&g, "dbx"),
		"and not db, db2/x or dbx");
	g.pattern = "db/password";
	tap_ok(!kura_grant_covers(&g, "db/password2") && !kura_grant_covers(&g, "db/password/x"),
		"an exact name covers only itself");
}

/* Issue 10, finding 7: a label the image's author baked in is not a label of the container. */
static void test_image_labels(void)
{
	struct kura_grant g = grant("db/password");
	char *app[] = { "app" }, *webv[] = { "web" }, *tier[] = { "tier" }, *db[] = { "db" };
	char *api[] = { "api" };

	g.label_keys = app;
	g.label_values = webv;
	g.n_labels = 1;
	tap_ok(!kura_grant_matches(&g, &lab), "--label app=web: not by the image's LABEL app=web");
	tap_ok(kura_grant_matches(&g, &web), "--label app=web: by a run label app=web");
	g.label_keys = tier;
	g.label_values = db;
	tap_ok(kura_grant_matches(&g, &lab), "--label tier=db: by the run label tier=db");
	g = grant("db/password");
	g.image_label_keys = app;
	g.image_label_values = webv;
	g.n_image_labels = 1;
	tap_ok(kura_grant_invalid(&g) == NULL, "--image-label alone is a selector");
	tap_ok(kura_grant_matches(&g, &lab), "--image-label app=web: by the image's LABEL");
	tap_ok(!kura_grant_matches(&g, &web), "--image-label app=web: never by a run label");
	g.image_label_values = api;
	tap_ok(!kura_grant_matches(&g, &lab), "--image-label app=api: not by app=web");
	g.image_label_values = webv;
	g.label_keys = tier;
	g.label_values = db;
	g.n_labels = 1;
	tap_ok(kura_grant_matches(&g, &lab), "--label tier=db --image-label app=web: both match");
	g.label_values = api;
	tap_ok(!kura_grant_matches(&g, &lab), "... and not when the run label differs");
	g.label_keys = app;
	g.label_values = api;
	tap_ok(kura_grant_invalid(&g) == NULL,
		"--label app=api --image-label app=web: one key in each set is fine");
	g.n_labels = 0;
	g.host = true;
	tap_ok(kura_grant_invalid(&g) != NULL, "--host with --image-label is refused");
	g.host = false;
	g.has_uid = true;
	tap_ok(kura_grant_invalid(&g) == NULL, "--uid with --image-label is fine");
	tap_ok(!kura_grant_matches(&g, &root_host), "an image-label grant never matches the host");
	{
		char *k2[] = { "app", "app" }, *v2[] = { "a", "b" }, *e[] = { "" };
		char *many[KURA_GRANT_MAX_LABELS + 1];

		g = grant("x");
		g.image_label_keys = k2;
		g.image_label_values = v2;
		g.n_image_labels = 2;
		tap_ok(kura_grant_invalid(&g) && strstr(kura_grant_invalid(&g), "image label"),
			"the same image label key twice is refused");
		g.image_label_keys = e;
		g.n_image_labels = 1;
		tap_ok(kura_grant_invalid(&g) && strstr(kura_grant_invalid(&g), "--image-label"),
			"an empty image label key is refused");
		for (size_t i = 0; i < ELEMENTSOF(many); i++)
			many[i] = "k";
		g.image_label_keys = many;
		g.image_label_values = many;
		g.n_image_labels = ELEMENTSOF(many);
		tap_ok(kura_grant_invalid(&g) && strstr(kura_grant_invalid(&g), "32 image labels"),
			"33 image labels are refused");
	}
}

static void test_policy(void)
{
	struct kura_grant gs[2] = { grant("db/password"), grant("web/*") };

	gs[0].image = IMG_B;
	gs[1].name = "web-1";
	tap_ok(!kura_policy_allows(gs, 0, &web, "db/password"), "no grants: deny");
	tap_ok(!kura_policy_allows(gs, 1, &web, "db/password"), "a grant for another image: deny");
	tap_ok(kura_policy_allows(gs, 2, &web, "web/tls"), "the second grant allows web/tls");
	tap_ok(!kura_policy_allows(gs, 2, &web, "db/password"),
		"grants do not combine across secrets");
	gs[0].image = IMG_A;
	tap_ok(kura_policy_allows(gs, 2, &web, "db/password"), "alternatives: either grant");
}

/* The index and the linear scan, asked the same: both answers, and both index entry points. */
static bool index_agrees(const struct kura_grant *gs, size_t n, const struct kura_identity *id,
	const char *secret)
{
	struct kura_policy_index *x = NULL;
	bool *matched = kura_policy_matched(gs, n, id);
	bool want = kura_policy_allows(gs, n, id, secret), ok;

	if (!matched || kura_policy_index_new(gs, n, &x) < 0) {
		free(matched);
		return false;
	}
	ok = kura_policy_index_allows(x, id, secret) == want &&
		kura_policy_index_allows_matched(x, matched, secret) == want;
	if (!ok)
		tap_diag("%s: the scan says %d, the index does not", secret, want);
	kura_policy_index_free(x);
	free(matched);
	return ok;
}

static void test_index_edges(void)
{
	struct kura_grant gs[6] = { grant("app/*"), grant("app"), grant("app/x/*"),
		grant("db/password"), grant("db/password/*"), grant("host/*") };
	struct kura_policy_index *x = NULL;
	static const char *names[] = { "app", "app/", "app/x", "app/x/", "app/x/y", "app/x/y/z",
		"appx", "ap", "db/password", "db/password/", "db/password/a", "db/passwor",
		"db/password2", "host/k", "host", "", "/", "//", "app//x" };
	bool all = true;

	gs[0].image = IMG_B;      /* app/<star> for another image ... */
	gs[1].image = IMG_A;      /* ... app itself for web's */
	gs[2].name = "web-1";     /* nested under app/ */
	gs[3].image = IMG_A;      /* exact and prefix on the same name, */
	gs[4].runtime = "podman"; /* the prefix for another runtime */
	gs[5].host = true;        /* a host grant, for uid 0 only */
	gs[5].has_uid = true;
	gs[5].uid = 0;
	for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++)
		all = all && index_agrees(gs, 6, &web, names[i]) &&
			index_agrees(gs, 6, &root_host, names[i]) &&
			index_agrees(gs, 6, &user_host, names[i]) &&
			index_agrees(gs, 6, &lab, names[i]);
	tap_ok(all, "the index answers as the scan on prefix edge cases");
	tap_is(kura_policy_index_new(gs, 6, &x), 0, "an index of six grants");
	tap_ok(x && kura_policy_index_allows(x, &web, "app") &&
			!kura_policy_index_allows(x, &web, "app/") &&
			!kura_policy_index_allows(x, &web, "app/y") &&
			kura_policy_index_allows(x, &web, "app/x/y") &&
			!kura_policy_index_allows(x, &web, "app/x/") &&
			!kura_policy_index_allows(x, &web, "app/x"),
		"app/<star> is not app; app/x/<star> covers below app/x/ only");
	tap_ok(x && kura_policy_index_allows(x, &web, "db/password") &&
			!kura_policy_index_allows(x, &web, "db/password/a"),
		"an exact grant and a prefix grant on one name each keep their own selectors");
	tap_ok(x && kura_policy_index_allows(x, &root_host, "host/k") &&
			!kura_policy_index_allows(x, &user_host, "host/k") &&
			!kura_policy_index_allows(x, &web, "host/k"),
		"a host grant: only the host process of its uid");
	kura_policy_index_free(x);
	x = NULL;
	tap_is(kura_policy_index_new(gs, 0, &x), 0, "an index of no grants");
	tap_ok(x && !kura_policy_index_allows(x, &root_host, "app"), "no grants: deny");
	kura_policy_index_free(x);
}

static uint64_t rnd_state = 0x9e3779b97f4a7c15ull;

static unsigned rnd(unsigned n)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return (unsigned)(rnd_state % n);
}

/* A name or pattern from few pieces, so that random ones share prefixes: "a/b/", "a//", "/". */
static void rnd_name(char *buf, size_t size, bool pattern)
{
	static const char *pieces[] = { "a", "b", "ab", "/", "/", "x.y", "*" };
	size_t len = 0;

	buf[0] = '\0';
	for (unsigned k = rnd(6); k > 0 && len + 4 < size; k--)
		len += (size_t)snprintf(buf + len, size - len, "%s", pieces[rnd(pattern ? 6 : 7)]);
	if (pattern && rnd(2) && len + 3 < size)
		snprintf(buf + len, size - len, "/*");
}

static void test_index_differential(void)
{
	enum { GRANTS = 300, ROUNDS = 40, NAMES = 400 };
	static char pats[GRANTS][32];
	static struct kura_grant gs[GRANTS];
	const struct kura_identity *ids[] = { &web, &lab, &root_host, &user_host };
	static const char *runtimes[] = { "docker", "podman" };
	size_t bad = 0, allowed = 0, asked = 0;

	for (unsigned round = 0; round < ROUNDS; round++) {
		size_t n = 1 + rnd(round % 2 ? GRANTS : 12);
		struct kura_policy_index *x = NULL;
		bool *matched[4];

		for (size_t i = 0; i < n; i++) {
			rnd_name(pats[i], sizeof(pats[i]), true);
			gs[i] = grant(pats[i]);
			if (rnd(3) == 0) {
				gs[i].host = true;
			} else {
				gs[i].image = rnd(2) ? IMG_A : NULL;
				gs[i].runtime = rnd(3) == 0 ? (char *)runtimes[rnd(2)] : NULL;
				gs[i].name = rnd(4) == 0 ? "web-1" : NULL;
			}
			gs[i].has_uid = rnd(2);
			gs[i].uid = rnd(2) ? 0 : 1000;
		}
		if (kura_policy_index_new(gs, n, &x) < 0)
			break;
		for (size_t k = 0; k < 4; k++)
			matched[k] = kura_policy_matched(gs, n, ids[k]);
		for (size_t j = 0; j < NAMES; j++) {
			char name[32];
			size_t k = rnd(4);
			bool want;

			/* Half the names are the grants' own patterns, cut or extended. */
			if (rnd(2)) {
				const char *p = pats[rnd((unsigned)n)];
				size_t cut = strlen(p) ? rnd((unsigned)strlen(p) + 1) : 0;

				snprintf(name, sizeof(name), "%.*s%s", (int)cut, p,
					rnd(2) ? "" : (rnd(2) ? "/a" : "a"));
			} else {
				rnd_name(name, sizeof(name), false);
			}
			want = kura_policy_allows(gs, n, ids[k], name);
			allowed += want;
			asked++;
			if (!matched[k] || kura_policy_index_allows(x, ids[k], name) != want ||
				kura_policy_index_allows_matched(x, matched[k], name) != want) {
				if (bad++ < 5)
					tap_diag("round %u: %s, scan %d", round, name, want);
			}
		}
		for (size_t k = 0; k < 4; k++)
			free(matched[k]);
		kura_policy_index_free(x);
	}
	tap_ok(bad == 0 && allowed > asked / 20 && allowed < asked,
		"the index answers as the scan: %zu random names (%zu allowed) over random grants",
		asked, allowed);
}

static void test_ids_and_records(void)
{
	struct kura_grant a = grant("x"), b = grant("x"), back = { 0 };
	char *k1[] = { "a", "b" }, *v1[] = { "1", "2" }, *k2[] = { "b", "a" }, *v2[] = { "2", "1" };
	uint8_t *body = NULL;
	size_t len = 0;

	a.label_keys = k1;
	a.label_values = v1;
	a.n_labels = 2;
	b.label_keys = k2;
	b.label_values = v2;
	b.n_labels = 2;
	kura_grant_set_id(&a);
	kura_grant_set_id(&b);
	tap_ok(strcmp(a.id, b.id) == 0, "label order does not change a grant's id");
	b.label_values = v1; /* b=1, a=2 now */
	kura_grant_set_id(&b);
	tap_ok(strcmp(a.id, b.id) != 0, "different label values give another id");
	a.image = IMG_A;
	tap_is(kura_grant_encode(&a, &body, &len), 0, "encode a grant");
	tap_is(kura_grant_decode(body, len, &back), 0, "decode it");
	kura_grant_set_id(&a);
	tap_ok(strcmp(back.id, a.id) == 0 && strcmp(back.image, IMG_A) == 0 && back.n_labels == 2,
		"the round trip keeps the grant (and its id)");
	kura_grant_done(&back);
	free(body);
	{
		/* A --label grant as stored before image labels existed: the same record bytes and
		 * the same id (its key in the store), so existing grants keep working as they were.
		 */
		char *k[] = { "tier", "app" }, *v[] = { "front", "web" };
		const char *old =
			"{\"created\":1,\"host\":false,\"image\":\"" IMG_A "\","
			"\"labels\":{\"app\":\"web\",\"tier\":\"front\"},\"pattern\":\"db/*\"}";
		struct kura_grant o = grant("db/*");

		o.image = IMG_A;
		o.label_keys = k;
		o.label_values = v;
		o.n_labels = 2;
		o.created = 1;
		kura_grant_set_id(&o);
		tap_is(strcmp(o.id, "03f9cef6d11b409f"), 0,
			"an existing --label grant keeps its id: %s", o.id);
		tap_is(kura_grant_encode(&o, &body, &len), 0, "encode it");
		tap_ok(len == strlen(old) && memcmp(body, old, len) == 0,
			"... into the record it always had: %.*s", (int)len, (const char *)body);
		free(body);
		tap_is(kura_grant_decode((const uint8_t *)old, strlen(old), &back), 0,
			"the old record decodes");
		tap_ok(strcmp(back.id, "03f9cef6d11b409f") == 0 && back.n_labels == 2 &&
				back.n_image_labels == 0,
			"... to the same grant, with no image labels");
		kura_grant_done(&back);

		/* The same pair as an image label is another grant, stored under another id. */
		o.image_label_keys = o.label_keys;
		o.image_label_values = o.label_values;
		o.n_image_labels = 2;
		o.n_labels = 0;
		kura_grant_set_id(&o);
		tap_ok(strcmp(o.id, "03f9cef6d11b409f") != 0,
			"--image-label instead of --label: another id (%s)", o.id);
		tap_is(kura_grant_encode(&o, &body, &len), 0, "encode an image-label grant");
		tap_is(kura_grant_decode(body, len, &back), 0, "decode it");
		tap_ok(strcmp(back.id, o.id) == 0 && back.n_labels == 0 && back.n_image_labels == 2,
			"the round trip keeps its image labels and its id");
		kura_grant_done(&back);
		free(body);
		{
			/* kuractl to kurad and back over the admin API. */
			json_t *w = kura_wire_grant(&o);

			tap_ok(w && kura_wire_grant_parse(w, &back) == 0 &&
					strcmp(back.id, o.id) == 0 && back.n_image_labels == 2,
				"the admin API's grant form carries the image labels");
			kura_grant_done(&back);
			json_decref(w);
		}
		o.image_label_keys = (char *[]){ "app", "tier" };
		o.image_label_values = (char *[]){ "web", "front" };
		{
			char id[KURA_GRANT_ID_LEN + 1];

			memcpy(id, o.id, sizeof(id));
			kura_grant_set_id(&o);
			tap_ok(strcmp(id, o.id) == 0, "image label order does not change the id");
		}
	}
	{
		const char *bad = "{\"pattern\":\"x\",\"host\":false,\"created\":1,\"labels\":{},"
				  "\"image_labels\":[\"app\"]}";
		const char *num = "{\"pattern\":\"x\",\"host\":false,\"created\":1,\"labels\":{},"
				  "\"image_labels\":{\"app\":1}}";

		tap_is(kura_grant_decode((const uint8_t *)bad, strlen(bad), &back), -EPROTO,
			"stored image_labels that are not an object are refused");
		tap_is(kura_grant_decode((const uint8_t *)num, strlen(num), &back), -EPROTO,
			"a stored image label that is not a string is refused");
	}
	{
		const char *none = "{\"pattern\":\"x\",\"host\":false,\"created\":1,\"labels\":{}}";
		const char *some = "{\"pattern\":\"x\",\"host\":true,\"created\":1,\"labels\":{}}";

		tap_is(kura_grant_decode((const uint8_t *)some, strlen(some), &back), 0,
			"a stored host grant decodes");
		kura_grant_done(&back);
		tap_is(kura_grant_decode((const uint8_t *)none, strlen(none), &back), -EPROTO,
			"a stored grant with no selector is refused on read");
	}
}

static void test_store(void)
{
	char dir[] = "/tmp/kura-test-policy-XXXXXX";
	struct kura_master_source m = { .kind = KURA_MASTER_FILE };
	struct kura_init_opts o = { 0 };
	struct kura_err err = { 0 };
	struct kura_grant g = grant("db/password"), h = grant("db/*");
	struct kura_grant_list l = { 0 };
	struct kura_vault *v = NULL;
	bool existed = true;

	if (!mkdtemp(dir) || kura_vault_init(dir, &o, &err) < 0 ||
		kura_vault_open(dir, &m, 0, &v, &err) < 0) {
		tap_ok(false, "a store for grants: %s", err.msg);
		return;
	}
	g.image = IMG_A;
	h.host = true;
	tap_is(kura_grant_add(v, &g, &existed, &err), 0, "store a grant");
	tap_ok(!existed, "it is new");
	tap_is(kura_grant_add(v, &g, &existed, &err), 0, "store it again");
	tap_ok(existed, "it existed: stored once");
	tap_is(kura_grant_add(v, &h, &existed, &err), 0, "store a second grant");
	tap_is(kura_grant_list(v, &l, &err), 0, "list grants");
	tap_is((long long)l.n, 2, "two grants");
	tap_ok(l.n == 2 && kura_policy_allows(l.items, l.n, &web, "db/password") &&
			!kura_policy_allows(l.items, l.n, &web, "db/other") &&
			kura_policy_allows(l.items, l.n, &root_host, "db/other"),
		"the stored grants decide as given");
	kura_grant_list_done(&l);
	tap_is(kura_grant_remove(v, g.id, &err), 0, "revoke by id");
	tap_is(kura_grant_remove(v, g.id, &err), -ENOENT, "revoking twice: not found");
	tap_is(kura_grant_remove(v, "../../x", &err), -EINVAL, "a malformed id is refused");
	tap_is(kura_grant_list(v, &l, &err), 0, "list again");
	tap_ok(l.n == 1 && !kura_policy_allows(l.items, l.n, &web, "db/password"),
		"after the revoke the container is denied");
	kura_grant_list_done(&l);
	{
		/* An intruder edits a stored grant to widen it: its id no longer matches. */
		struct kura_txn txn = { 0 };
		char key[64];
		const char *body = "{\"pattern\":\"db/*\",\"host\":false,\"created\":1,"
				   "\"runtime\":\"docker\",\"labels\":{}}";

		snprintf(key, sizeof(key), KURA_PREFIX_GRANT "%s", h.id);
		kura_txn_put(&txn, key, body, strlen(body), KURA_REV_ANY);
		kura_store_commit(kura_vault_store(v), &txn, NULL);
		kura_txn_done(&txn);
		tap_is(kura_grant_list(v, &l, &err), -EUCLEAN,
			"a grant record whose content does not hash to its id is refused");
	}
	{
		struct kura_grant i = grant("img/*");
		char *app[] = { "app" }, *webv[] = { "web" };

		i.image_label_keys = app;
		i.image_label_values = webv;
		i.n_image_labels = 1;
		tap_is(kura_grant_remove(v, h.id, &err), 0, "revoke the altered grant");
		tap_is(kura_grant_add(v, &i, &existed, &err), 0, "store an image-label grant");
		tap_is(kura_grant_list(v, &l, &err), 0, "list it back");
		tap_ok(l.n == 1 && l.items[0].n_image_labels == 1 &&
				kura_policy_allows(l.items, l.n, &lab, "img/x") &&
				!kura_policy_allows(l.items, l.n, &web, "img/x"),
			"the stored image-label grant matches the image's label, not a run label");
		kura_grant_list_done(&l);
	}
	kura_vault_close(v);
	kura_grant_done(&(struct kura_grant){ 0 });
	tap_rmtree(dir);
}

int main(void)
{
	if (kura_keys_init() < 0)
		return 99;
	kura_json_init();
	test_validation();
	test_matching();
	test_image_labels();
	test_policy();
	test_index_edges();
	test_index_differential();
	test_ids_and_records();
	test_store();
	return tap_done();
}

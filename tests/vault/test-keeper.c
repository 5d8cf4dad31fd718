/* Unit tests for the keeper (the vault as kurad shares it) on real SQLite files: one fetch call
 * deciding by grants and opening the value, the readable names, the changes feed keeping the
 * grants current (a revocation counts from the next call, also one written by another process),
 * and its threads agreeing under load. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "json.h"
#include "keeper.h"
#include "tap.h"

static char root[] = "/tmp/kura-test-keeper-XXXXXX";
static char dir[600];

static const struct kura_identity alice = { .host = true, .pid = 2, .uid = 1000 };
static const struct kura_identity bob = { .host = true, .pid = 3, .uid = 1001 };

static struct kura_vault *open_vault(void)
{
	struct kura_master_source m = { .kind = KURA_MASTER_FILE };
	struct kura_err err = { 0 };
	struct kura_vault *v = NULL;

	if (kura_vault_open(dir, &m, 0, &v, &err) < 0)
		tap_diag("open %s: %s", dir, err.msg);
	return v;
}

static int put(struct kura_vault *v, const char *name, const char *value)
{
	struct kura_secbuf *b = NULL;
	struct kura_err err = { 0 };
	uint64_t ver;
	int r;

	if (kura_secbuf_from(value, strlen(value), &b) < 0)
		return -ENOMEM;
	r = kura_secret_put(v, name, b, &ver, &err);
	kura_secbuf_free(b);
	return r;
}

/* A grant of pattern to host uid `uid`; its id in id_out. */
static int grant(struct kura_vault *v, const char *pattern, uid_t uid, char *id_out)
{
	struct kura_grant g = { .pattern = (char *)pattern,
		.host = true,
		.has_uid = true,
		.uid = uid };
	struct kura_err err = { 0 };
	bool existed;
	int r = kura_grant_add(v, &g, &existed, &err);

	if (r < 0)
		tap_diag("grant: %s", err.msg);
	if (id_out)
		memcpy(id_out, g.id, sizeof(g.id));
	return r;
}

static bool fetched_is(struct kura_keeper *k, const struct kura_identity *id, const char *name,
	const char *want)
{
	struct kura_fetched f;
	struct kura_err err = { 0 };
	bool ok;

	if (kura_keeper_fetch(k, id, name, &f, &err) < 0)
		return false;
	ok = f.value->len == strlen(want) && memcmp(f.value->data, want, f.value->len) == 0 &&
		strncmp(f.fingerprint, "b2:", 3) == 0 && strlen(f.fingerprint) == 35 &&
		f.info.version >= 1;
	kura_fetched_done(&f);
	return ok && f.value == NULL;
}

/* "NAME@VERSION " for each listed, into a 256-byte buffer. */
static int collect(const struct kura_secret_info *info, void *userdata)
{
	char *names = userdata;
	size_t len = strlen(names);

	snprintf(names + len, 256 - len, "%s@%llu ", info->name, (unsigned long long)info->current);
	return 0;
}

static int collect_one(const struct kura_secret_info *info, void *userdata)
{
	(void)info;
	(void)userdata;
	return -ENOSPC;
}

static void count_change(const char *name, int64_t rev, void *userdata)
{
	int *n = userdata;

	(void)name;
	(void)rev;
	(*n)++;
}

/* Follow the feed from *since to the end, as kurad's revision thread does. */
static int follow(struct kura_keeper *k, int64_t *since, int *n)
{
	int64_t last = 0;
	int r;

	for (;;) {
		r = kura_keeper_changes(k, *since, 2, count_change, n, &last);
		if (r < 0)
			return r;
		if (last <= *since)
			return 0;
		*since = last;
	}
}

static void test_fetch(void)
{
	struct kura_keeper *k = NULL;
	struct kura_vault *v = open_vault(), *held;
	struct kura_fetched f;
	struct kura_err err = { 0 };
	char names[256];
	char gid[KURA_GRANT_ID_LEN + 1];
	int64_t rev = -1, since = 0;
	int n = 0;

	tap_ok(v && put(v, "db/password", "hunter2") == 0 && put(v, "db/user", "app") == 0 &&
			put(v, "web/key", "k") == 0 && grant(v, "db/*", 1000, gid) == 0,
		"a store with three secrets and a grant of db/* to uid 1000");
	tap_is(kura_keeper_new(NULL, &k, &err), -EINVAL, "no vault: -EINVAL");
	tap_is(kura_keeper_new(v, &k, &err), 0, "a keeper over it");
	if (!k)
		return;
	tap_ok(fetched_is(k, &alice, "db/password", "hunter2"),
		"a granted fetch opens the value, with its version and fingerprint");
	tap_is(kura_keeper_fetch(k, &bob, "db/password", &f, &err), -EACCES,
		"another uid is refused");
	tap_ok(f.value == NULL, "and holds no value");
	tap_is(kura_keeper_fetch(k, &alice, "web/key", &f, &err), -EACCES,
		"a secret outside the grant is refused");
	tap_is(kura_keeper_fetch(k, &alice, "db/nothing", &f, &err), -ENOENT,
		"a granted name that does not exist is -ENOENT");
	tap_is(kura_keeper_fetch(k, &bob, "db/nothing", &f, &err), -EACCES,
		"the same name ungranted is -EACCES: absence is not told");
	tap_is(kura_keeper_fetch(k, &alice, "db/../x", &f, &err), -EINVAL, "a bad name is -EINVAL");
	tap_is(kura_keeper_fetch(k, &alice, "", &f, &err), -EINVAL, "an empty name is -EINVAL");

	names[0] = '\0';
	tap_is(kura_keeper_readable(k, &alice, "", collect, names, &rev, &err), 0,
		"the readable names");
	tap_ok(strcmp(names, "db/password@1 db/user@1 ") == 0 && rev > 0,
		"are the two granted, sorted, with their versions, as of revision %lld",
		(long long)rev);
	names[0] = '\0';
	tap_is(kura_keeper_readable(k, &bob, "", collect, names, &rev, &err), 0, "for bob");
	tap_is((long long)strlen(names), 0, "none");
	tap_is(kura_keeper_readable(k, &alice, "", collect_one, names, &rev, &err), -ENOSPC,
		"the walk stops at the caller's error, and returns it");

	/* A revocation made through the held vault counts from the next call. */
	held = kura_keeper_hold(k);
	tap_is(kura_grant_remove(held, gid, &err), 0, "revoke through the held vault");
	kura_keeper_release(k);
	tap_is(kura_keeper_fetch(k, &alice, "db/password", &f, &err), -EACCES,
		"the next fetch is refused");

	/* The feed: every secret change, in pages, and the grants kept current. */
	tap_is(follow(k, &since, &n), 0, "follow the changes from revision 0");
	tap_is(n, 3, "three secret changes (grant changes are not secrets)");
	tap_is(kura_keeper_revision(k, &rev), 0, "the revision");
	tap_is((long long)since, (long long)rev, "the feed is complete to it");
	{
		struct kura_grants *g = kura_keeper_grants(k);

		tap_ok(g && !kura_grants_allow(g, &alice, "db/password"),
			"the latest grants read say no too");
		kura_grants_unref(g);
	}
	kura_keeper_free(k);
}

/* Another process (kuractl working offline) grants and revokes: the keeper sees it at once. */
static void test_other_writer(void)
{
	struct kura_keeper *k = NULL;
	struct kura_err err = { 0 };
	struct kura_fetched f;
	int64_t since = 0;
	int status = -1, n = 0;
	pid_t pid;

	if (kura_keeper_new(open_vault(), &k, &err) < 0) {
		tap_ok(false, "keeper: %s", err.msg);
		return;
	}
	tap_is(kura_keeper_fetch(k, &bob, "web/key", &f, &err), -EACCES,
		"bob may not read web/key");
	pid = fork();
	if (pid == 0) {
		struct kura_vault *v = open_vault();

		_exit(v && grant(v, "web/key", 1001, NULL) == 0 ? 0 : 1);
	}
	waitpid(pid, &status, 0);
	tap_ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "another process grants it");
	tap_ok(fetched_is(k, &bob, "web/key", "k"), "the next fetch is allowed, no feed read");
	pid = fork();
	if (pid == 0) {
		struct kura_vault *v = open_vault();
		struct kura_grant_list l = { 0 };
		struct kura_err e = { 0 };
		int r = v ? kura_grant_list(v, &l, &e) : -1;

		for (size_t i = 0; r == 0 && i < l.n; i++)
			if (strcmp(l.items[i].pattern, "web/key") == 0)
				r = kura_grant_remove(v, l.items[i].id, &e);
		_exit(r == 0 ? 0 : 1);
	}
	waitpid(pid, &status, 0);
	tap_ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "and revokes it");
	tap_is(kura_keeper_fetch(k, &bob, "web/key", &f, &err), -EACCES,
		"the next fetch is refused again");
	tap_is(follow(k, &since, &n), 0, "the feed reads past both grant changes");
	{
		struct kura_grant_list gl = { 0 };

		tap_ok(kura_keeper_grant_list(k, &gl, &err) == 0 && gl.n == 0,
			"the grant list reads empty");
		kura_grant_list_done(&gl);
	}
	kura_keeper_free(k);
}

struct load {
	struct kura_keeper *k;
	int fails;
};

static void *fetcher(void *userdata)
{
	struct load *l = userdata;

	for (int i = 0; i < 300; i++) {
		struct kura_fetched f;
		struct kura_err err = { 0 };
		bool ok = kura_keeper_fetch(l->k, &bob, "web/key", &f, &err) == 0 &&
			((f.value->len == 1 && f.value->data[0] == 'k') ||
				(f.value->len == 2 && memcmp(f.value->data, "k2", 2) == 0));

		kura_fetched_done(&f);
		if (!ok)
			__atomic_add_fetch(&l->fails, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

/* Fetches from four threads while another rotates the value and follows the feed. */
static void test_threads(void)
{
	struct kura_keeper *k = NULL;
	struct kura_err err = { 0 };
	struct load l = { 0 };
	pthread_t t[4];
	int64_t since = 0;
	int n = 0;

	if (kura_keeper_new(open_vault(), &k, &err) < 0 ||
		grant(kura_keeper_hold(k), "web/*", 1001, NULL) < 0) {
		tap_ok(false, "keeper for the threads: %s", err.msg);
		return;
	}
	kura_keeper_release(k);
	l.k = k;
	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, fetcher, &l);
	for (int i = 0; i < 20; i++) {
		struct kura_vault *v = kura_keeper_hold(k);
		struct kura_secbuf *b = NULL;
		uint64_t ver;

		if (kura_secbuf_from("k2", 2, &b) == 0)
			(void)kura_secret_rotate(v, "web/key", b, &ver, &err);
		kura_secbuf_free(b);
		kura_keeper_release(k);
		(void)follow(k, &since, &n);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	tap_is(l.fails, 0, "1200 fetches from four threads during 20 rotations: none failed");
	tap_ok(n >= 20, "the feed saw the rotations (%d changes)", n);
	kura_keeper_free(k);
}

int main(void)
{
	struct kura_init_opts o = { .master = { .kind = KURA_MASTER_FILE } };
	struct kura_err err = { 0 };

	if (kura_keys_init() < 0 || !mkdtemp(root))
		return 99;
	kura_json_init();
	snprintf(dir, sizeof(dir), "%s/state", root);
	if (kura_vault_init(dir, &o, &err) < 0) {
		tap_ok(false, "init: %s", err.msg);
		return tap_done();
	}
	test_fetch();
	test_other_writer();
	test_threads();
	tap_rmtree(root);
	return tap_done();
}

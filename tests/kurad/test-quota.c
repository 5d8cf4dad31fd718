/* Unit tests for the per-principal quota table (broker/kurad/quota.c) and the recent-changes
 * index for long polls (broker/kurad/changes.c): exact principals (no two share a bucket,
 * whatever their uids or IDs), admission and room made under a flood, rates, long polls,
 * refusal counts. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "changes.h"
#include "quota.h"
#include "tap.h"

static struct kura_slot *evicted[4096];
static size_t n_evicted;

static void on_evict(struct kura_slot *s)
{
	if (n_evicted < sizeof(evicted) / sizeof(evicted[0]))
		evicted[n_evicted++] = s;
}

static struct kura_principal user(uid_t uid)
{
	return (struct kura_principal){ .kind = KURA_PRINCIPAL_USER, .uid = uid };
}

static struct kura_principal container(unsigned n)
{
	struct kura_principal p = { .kind = KURA_PRINCIPAL_CONTAINER,
		.runtime = KURA_RUNTIME_DOCKER };

	snprintf(p.id, sizeof(p.id), "%064x", n);
	return p;
}

static struct kura_quota *table(unsigned conns, unsigned per_peer, unsigned watches,
	unsigned watches_per, double rate, double burst)
{
	struct kura_quota_config c = { conns, per_peer, watches, watches_per, rate, burst };
	struct kura_quota *q = NULL;

	n_evicted = 0;
	if (kura_quota_new(&c, on_evict, &q) < 0)
		abort();
	return q;
}

/* The old table hashed 256 slots: uid 305 shared uid 0's. Exact principals share nothing. */
static void test_no_collisions(void)
{
	struct kura_quota *q = table(1 << 17, 4, 8, 4, 10, 10);
	static struct kura_slot slots[65536 + 1];
	struct kura_slot victim = { 0 }, c0 = { 0 };
	struct kura_principal p;
	unsigned refused = 0, root_ok = 0;

	p = user(0);
	tap_is(kura_quota_admit(q, &victim, &p, 0.0), 0, "root admitted");
	p = container(7);
	tap_is(kura_quota_admit(q, &c0, &p, 0.0), 0, "a container admitted");
	/* Every uid a subordinate range could hold, each spending its whole burst. */
	for (unsigned u = 1; u <= 65536; u++) {
		p = user(u);
		if (kura_quota_admit(q, &slots[u], &p, 0.0) < 0) {
			refused++;
			continue;
		}
		for (int i = 0; i < 11; i++)
			(void)kura_quota_rate_ok(q, &slots[u], 0.0);
	}
	tap_is(refused, 0u, "65536 principals admitted");
	for (int i = 0; i < 10; i++)
		root_ok += kura_quota_rate_ok(q, &victim, 0.0);
	tap_is(root_ok, 10u, "root still has its whole burst after 65536 others spent theirs");
	root_ok = 0;
	for (int i = 0; i < 10; i++)
		root_ok += kura_quota_rate_ok(q, &c0, 0.0);
	tap_is(root_ok, 10u, "so has the container");
	tap_ok(!kura_quota_rate_ok(q, &victim, 0.0), "and root's 11th request at once is refused");
	tap_ok(kura_quota_rate_ok(q, &victim, 0.1),
		"a tenth of a second later at rate 10 it has one");
	for (unsigned u = 1; u <= 65536; u++)
		kura_quota_release(q, &slots[u]);
	kura_quota_release(q, &victim);
	kura_quota_release(q, &c0);
	kura_quota_free(q);
}

/* One principal's connections share one bucket, however many it opens. */
static void test_rate_shared(void)
{
	struct kura_quota *q = table(64, 16, 8, 4, 20, 20);
	struct kura_slot s[8] = { 0 };
	struct kura_principal p = user(1000);
	unsigned ok = 0;

	for (int i = 0; i < 8; i++)
		kura_quota_admit(q, &s[i], &p, 0.0);
	for (int k = 0; k < 10; k++)
		for (int i = 0; i < 8; i++)
			ok += kura_quota_rate_ok(q, &s[i], 0.0);
	tap_is(ok, 20u, "8 connections of one user get its burst of 20 between them, not 8 x 20");
	for (int i = 0; i < 8; i++)
		kura_quota_release(q, &s[i]);
	kura_quota_free(q);
}

static void test_admission(void)
{
	struct kura_quota *q = table(8, 3, 4, 2, 100, 100);
	struct kura_slot a[4] = { 0 }, b[3] = { 0 }, c = { 0 }, d = { 0 };
	struct kura_principal pa = user(1), pb = user(2), pc = user(3);
	struct kura_quota_stats st;

	for (int i = 0; i < 3; i++)
		tap_is(kura_quota_admit(q, &a[i], &pa, 1.0 + i), 0, "user 1 connection %d in", i);
	tap_is(kura_quota_admit(q, &a[3], &pa, 5.0), -EUSERS, "user 1's 4th over max-per-peer 3");
	for (int i = 0; i < 3; i++)
		tap_is(kura_quota_admit(q, &b[i], &pb, 2.0 + i), 0, "user 2 connection %d in", i);
	/* 6 of 8: two more fit. */
	tap_is(kura_quota_admit(q, &c, &pc, 6.0), 0, "user 3 in");
	tap_is(n_evicted, (size_t)0, "nobody evicted below the table's size");
	pc = container(1);
	tap_is(kura_quota_admit(q, &d, &pc, 7.0), 0, "a container in: the table is full");
	/* Full: the next comer makes room. user 1 and 2 hold 3 each; user 1's oldest goes first
	 * (they tie, and its idle connection is older). */
	{
		struct kura_slot e = { 0 };
		struct kura_principal pe = user(4);

		tap_is(kura_quota_admit(q, &e, &pe, 8.0), 0,
			"a 9th comer is admitted into a full table");
		tap_ok(n_evicted == 1 && evicted[0] == &a[0],
			"by evicting the oldest idle connection of the principal with the most");
		kura_quota_get_stats(q, &st);
		tap_is(st.connections, 8u, "the table holds 8 again");
		/* Busy connections are never taken: mark all of user 2's and user 1's busy. */
		kura_quota_busy(q, &a[1], true, 9.0);
		kura_quota_busy(q, &a[2], true, 9.0);
		for (int i = 0; i < 3; i++)
			kura_quota_busy(q, &b[i], true, 9.0);
		n_evicted = 0;
		{
			struct kura_slot f = { 0 };
			struct kura_principal pf = user(5);

			tap_is(kura_quota_admit(q, &f, &pf, 10.0), 0, "room made again");
			tap_ok(n_evicted == 1 && evicted[0] != &a[1] && evicted[0] != &a[2] &&
					evicted[0] != &b[0] && evicted[0] != &b[1] &&
					evicted[0] != &b[2],
				"and never from a connection inside a request");
			kura_quota_release(q, &f);
		}
		kura_quota_release(q, &e);
	}
	/* Everything busy: no room. */
	kura_quota_busy(q, &c, true, 11.0);
	kura_quota_busy(q, &d, true, 11.0);
	{
		struct kura_slot g[2] = { 0 }, h = { 0 };
		struct kura_principal pg = user(6), ph = user(7);
		struct kura_quota_stats fs;

		for (int i = 0; i < 2; i++) {
			(void)kura_quota_admit(q, &g[i], &pg, 12.0);
			kura_quota_busy(q, &g[i], true, 12.0);
		}
		kura_quota_get_stats(q, &fs);
		tap_is(fs.connections, 8u, "the table is full again, every connection busy");
		tap_is(kura_quota_admit(q, &h, &ph, 12.0), -ENOSPC,
			"a full table of busy connections refuses a newcomer");
		kura_quota_release(q, &h);
		kura_quota_release(q, &g[0]);
		kura_quota_release(q, &g[1]);
	}
	for (int i = 0; i < 3; i++) {
		kura_quota_release(q, &a[i]);
		kura_quota_release(q, &b[i]);
	}
	kura_quota_release(q, &a[3]);
	kura_quota_release(q, &c);
	kura_quota_release(q, &d);
	kura_quota_get_stats(q, &st);
	tap_is(st.connections, 0u, "all released: none counted");
	kura_quota_free(q);
}

/* 64 users x 16 dribbling connections against a table of 256: a victim always gets in. */
static void test_flood(void)
{
	struct kura_quota *q = table(256, 16, 128, 4, 100, 200);
	static struct kura_slot att[64][16];
	struct kura_slot v = { 0 };
	struct kura_principal p;
	double t = 0;
	unsigned in = 0;

	memset(att, 0, sizeof(att));
	for (int round = 0; round < 3; round++)
		for (int u = 0; u < 64; u++)
			for (int i = 0; i < 16; i++) {
				p = user(100 + (uid_t)u);
				if (att[u][i].p && !att[u][i].evicted)
					continue;
				if (att[u][i].p)
					kura_quota_release(q, &att[u][i]);
				memset(&att[u][i], 0, sizeof(att[u][i]));
				in += kura_quota_admit(q, &att[u][i], &p, t += 0.001) == 0;
			}
	p = user(0);
	tap_is(kura_quota_admit(q, &v, &p, t), 0, "the victim is admitted during the flood");
	tap_ok(!v.evicted, "and not evicted by it");
	tap_diag("%u attacker admissions, %zu evictions", in, n_evicted);
	kura_quota_release(q, &v);
	for (int u = 0; u < 64; u++)
		for (int i = 0; i < 16; i++)
			kura_quota_release(q, &att[u][i]);
	kura_quota_free(q);
}

static void test_watches(void)
{
	struct kura_quota *q = table(64, 16, 6, 2, 100, 100);
	struct kura_slot a[3] = { 0 }, b[3] = { 0 }, c = { 0 };
	struct kura_principal pa = user(1), pb = user(2), pc = user(3);
	struct kura_quota_stats st;

	for (int i = 0; i < 3; i++) {
		kura_quota_admit(q, &a[i], &pa, 1.0);
		kura_quota_admit(q, &b[i], &pb, 1.0);
	}
	kura_quota_admit(q, &c, &pc, 1.0);
	tap_is(kura_quota_watch_begin(q, &a[0]), 0, "a long poll");
	tap_is(kura_quota_watch_begin(q, &a[1]), 0, "a second");
	tap_is(kura_quota_watch_begin(q, &a[2]), -EUSERS, "a third over watches-per-peer 2");
	kura_quota_watch_end(q, &a[1]);
	tap_is(kura_quota_watch_begin(q, &a[2]), 0, "one ended: another may begin");
	kura_quota_watch_end(q, &a[2]);
	kura_quota_release(q, &a[2]);
	kura_quota_release(q, &a[1]);
	kura_quota_free(q);

	/* A global cap of 3: user 1 holds 2, user 2 one; user 3's first takes one of user 1's. */
	q = table(64, 16, 3, 2, 100, 100);
	memset(a, 0, sizeof(a));
	memset(b, 0, sizeof(b));
	memset(&c, 0, sizeof(c));
	kura_quota_admit(q, &a[0], &pa, 1.0);
	kura_quota_admit(q, &a[1], &pa, 1.1);
	kura_quota_admit(q, &b[0], &pb, 1.2);
	kura_quota_admit(q, &c, &pc, 1.3);
	kura_quota_watch_begin(q, &a[0]);
	kura_quota_watch_begin(q, &a[1]);
	kura_quota_watch_begin(q, &b[0]);
	n_evicted = 0;
	tap_is(kura_quota_watch_begin(q, &c), 0,
		"past the host's long polls, a newcomer still gets one");
	tap_ok(n_evicted == 1 && (evicted[0] == &a[0] || evicted[0] == &a[1]),
		"from the principal holding the most");
	kura_quota_watch_end(q, evicted[0]);
	kura_quota_release(q, evicted[0]);
	{
		struct kura_slot d = { 0 };
		struct kura_principal pd = user(4);

		kura_quota_admit(q, &d, &pd, 2.0);
		n_evicted = 0;
		tap_is(kura_quota_watch_begin(q, &d), -ENOSPC,
			"when everyone holds one, a newcomer is refused rather than displacing");
		tap_is(n_evicted, (size_t)0, "and nobody is evicted");
		kura_quota_release(q, &d);
	}
	kura_quota_release(q, &c); /* a slot released while watching ends its poll */
	kura_quota_get_stats(q, &st);
	tap_is(st.watches, 2u, "a connection closed mid-poll gives its poll back");
	kura_quota_release(q, &a[0]);
	kura_quota_release(q, &a[1]);
	kura_quota_release(q, &b[0]);
	kura_quota_free(q);
}

struct flushed {
	uint64_t count;
	size_t notes;
};

static void count_note(const struct kura_refusal_note *n, void *userdata)
{
	struct flushed *f = userdata;

	f->count += n->count;
	f->notes++;
}

/* Records + counts == refusals, and a few individual records, then one a second per principal. */
static void test_refusals(void)
{
	struct kura_quota *q = table(64, 16, 8, 4, 100, 100);
	struct kura_slot s = { 0 }, o = { 0 };
	struct kura_principal p = user(65534), po = user(1000);
	struct kura_refusal_note due;
	struct flushed f = { 0 };
	uint64_t records = 0, counted = 0, n = 0;
	double t = 10.0;

	kura_quota_admit(q, &s, &p, t);
	kura_quota_admit(q, &o, &po, t);
	/* 20,000 refusals over 1.25 s. */
	for (int i = 0; i < 20000; i++, n++) {
		t += 1.25 / 20000;
		records += kura_quota_refusal(q, &s, t, "unidentified", 42, 65534, 65534, &due);
		counted += due.count;
	}
	tap_ok(records <= 4 + 2, "20,000 refusals in 1.25 s: %llu records of their own",
		(unsigned long long)records);
	tap_ok(kura_quota_refusal(q, &o, t, "no_grant", 1, 1000, 1000, &due) && due.count == 0,
		"another principal's first refusal is recorded on its own");
	tap_ok(kura_quota_refusal(q, &o, t, "not_found", 1, 1000, 1000, &due) && due.count == 0,
		"and so is its second in the same second (a few at once are kept whole)");
	records += 2;
	n += 2;
	kura_quota_flush(q, t + 0.5, false, count_note, &f);
	kura_quota_flush(q, t + 1.5, false, count_note, &f);
	kura_quota_flush(q, t + 2.0, true, count_note, &f);
	counted += f.count;
	tap_is(records + counted, n, "every refusal is a record or counted in one (%llu + %llu)",
		(unsigned long long)records, (unsigned long long)counted);
	tap_ok(f.notes >= 1, "the count left in the last second is flushed (%zu notes)", f.notes);
	kura_quota_release(q, &s);
	kura_quota_release(q, &o);
	kura_quota_flush(q, t + 100, true, count_note, &f);
	{
		struct kura_quota_stats st;

		kura_quota_get_stats(q, &st);
		tap_is(st.principals, 0u, "idle principals are forgotten");
	}
	kura_quota_free(q);
}

static void test_reap(void)
{
	struct kura_quota *q = table(64, 16, 8, 4, 100, 100);
	struct kura_slot a = { 0 }, b = { 0 }, c = { 0 };
	struct kura_principal p = user(9);

	kura_quota_admit(q, &a, &p, 0.0);
	kura_quota_admit(q, &b, &p, 0.0);
	kura_quota_admit(q, &c, &p, 4.5);
	kura_quota_busy(q, &b, true, 1.0);
	n_evicted = 0;
	tap_is(kura_quota_reap(q, 5.5, 5.0), 1u, "one connection past its header deadline");
	tap_ok(n_evicted == 1 && evicted[0] == &a,
		"the idle one, not the busy one nor the young one");
	kura_quota_release(q, &a);
	kura_quota_release(q, &b);
	kura_quota_release(q, &c);
	kura_quota_free(q);
}

struct seen {
	char names[16][32];
	int n;
};

static bool see(const char *name, void *userdata)
{
	struct seen *s = userdata;

	if (s->n < 16)
		snprintf(s->names[s->n++], 32, "%s", name);
	return true;
}

static void test_changes(void)
{
	struct kura_changes *c = NULL;
	struct seen s = { 0 };

	tap_is(kura_changes_new(3, 10, &c), 0, "an index of 3 names from revision 10");
	tap_is(kura_changes_since(c, 9, see, &s), -ERANGE, "older than its floor: -ERANGE");
	tap_is(kura_changes_since(c, 10, see, &s), 0, "from its floor: nothing changed");
	kura_changes_add(c, 11, "a");
	kura_changes_add(c, 12, "b");
	kura_changes_add(c, 13, "a");
	s.n = 0;
	tap_is(kura_changes_since(c, 10, see, &s), 2, "a name changed twice is there once");
	tap_ok(s.n == 2 && !strcmp(s.names[0], "a") && !strcmp(s.names[1], "b"), "newest first");
	s.n = 0;
	tap_is(kura_changes_since(c, 12, see, &s), 1, "since 12: only a");
	kura_changes_add(c, 14, "c");
	kura_changes_add(c, 15, "d"); /* b (12) is forgotten: the floor rises to 12 */
	tap_is(kura_changes_floor(c), (int64_t)12, "past its cap the oldest is forgotten");
	tap_is(kura_changes_since(c, 11, see, &s), -ERANGE, "and asking from before it is -ERANGE");
	s.n = 0;
	tap_is(kura_changes_since(c, 12, see, &s), 3, "from the new floor: a, c, d");
	kura_changes_reset(c, 20);
	tap_is(kura_changes_since(c, 15, see, &s), -ERANGE, "a reset forgets everything");
	kura_changes_free(c);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	test_no_collisions();
	test_rate_shared();
	test_admission();
	test_flood();
	test_watches();
	test_refusals();
	test_reap();
	test_changes();
	return tap_done();
}

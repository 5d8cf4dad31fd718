/* The vault as kurad shares it between threads: one lock, the grants kept as of a store
 * revision, and the few calls its workload API makes (fetch, the readable names, the changes
 * feed), so that no HTTP handler ever touches the store. Plaintext only in kura_secbuf. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "grant.h"
#include "vault.h"

struct kura_keeper;

/* The grants as of a store revision: immutable, shared by reference. */
struct kura_grants;

/* Takes v, whatever happens (closed by kura_keeper_free, or here on failure), and reads its
 * grants. */
int kura_keeper_new(struct kura_vault *v, struct kura_keeper **ret, struct kura_err *err);
void kura_keeper_free(struct kura_keeper *k);

/* The vault itself, for a run of calls made as one (an admin operation); every other call of
 * this file waits meanwhile. Not recursive: no kura_keeper_* call between the two. */
struct kura_vault *kura_keeper_hold(struct kura_keeper *k);
void kura_keeper_release(struct kura_keeper *k);

/* What a fetch hands back: the value (the caller frees it) and what records say of it. */
struct kura_fetched {
	struct kura_secbuf *value;
	struct kura_version_info info;
	char fingerprint[KURA_FINGERPRINT_TEXT];
};

/*
 * The current value of `name` for `id`, if a grant lets id read it: the grants and the secret
 * from one read snapshot, opened, with its fingerprint. -EINVAL: the name breaks the naming
 * rules; -EACCES: no grant lets id read it (whether or not it exists); -ENOENT: granted but
 * absent; other -errno (err says why): the store cannot be read or the value not opened.
 */
int kura_keeper_fetch(struct kura_keeper *k, const struct kura_identity *id, const char *name,
	struct kura_fetched *ret, struct kura_err *err);
void kura_fetched_done(struct kura_fetched *f);

/*
 * The names (and current versions) id may read, below prefix ("" for all): *ret_rev is set to the
 * store revision they are as of, then fn sees each, sorted (kura_secret_each: nothing is
 * gathered, a page of the store at a time), all in one read snapshot. fn's -errno stops the walk
 * and is returned; fn runs under the keeper's lock, so it must not wait on anyone.
 */
int kura_keeper_readable(struct kura_keeper *k, const struct kura_identity *id, const char *prefix,
	int (*fn)(const struct kura_secret_info *info, void *userdata), void *userdata,
	int64_t *ret_rev, struct kura_err *err);

/* Every grant now (a copy: the caller frees it with kura_grant_list_done). */
int kura_keeper_grant_list(struct kura_keeper *k, struct kura_grant_list *ret,
	struct kura_err *err);

/*
 * The secrets changed after revision `since`, at most `max` of them, in order: fn is called for
 * each (name, revision), then *ret_last is the revision they are complete to (the store's
 * revision when nothing is left). Keeps the grants current as it goes: read again when a grant
 * changed, else extended to the new revisions. -ERANGE: history before `since` is gone
 * (compacted); *ret_last is then the revision to start afresh from.
 */
int kura_keeper_changes(struct kura_keeper *k, int64_t since, size_t max,
	void (*fn)(const char *name, int64_t rev, void *userdata), void *userdata,
	int64_t *ret_last);

/* The store's revision now. */
int kura_keeper_revision(struct kura_keeper *k, int64_t *ret);

/* The latest grants read, without reading the store (NULL before any): for decisions that
 * need no snapshot, such as which changed names a long poll may be told of. */
struct kura_grants *kura_keeper_grants(struct kura_keeper *k);
bool kura_grants_allow(const struct kura_grants *g, const struct kura_identity *id,
	const char *name);
void kura_grants_unref(struct kura_grants *g);

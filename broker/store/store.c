/* The backend-independent half of the store: transaction building and freeing of results. It
 * handles keys and sealed values, never plaintext. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "store.h"

void kura_store_close(struct kura_store *s)
{
	if (s)
		s->ops->close(s);
}

/*
 * Append one op, taking copies of key and value. The op array grows by doubling; plain realloc
 * is fine because values here are ciphertext. Keys must be non-empty; a put may carry an empty
 * value (value may then be NULL). On failure the transaction is unchanged.
 */
static int txn_add(struct kura_txn *t, enum kura_op_kind kind, const char *key, const void *value,
	size_t len, int64_t expect_rev)
{
	_cleanup_free_ char *k = NULL;
	_cleanup_free_ uint8_t *v = NULL;

	if (!t || !key || !*key || (!value && len > 0) || expect_rev < KURA_REV_ANY)
		return -EINVAL;

	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 8;
		struct kura_op *ops;

		if (cap < t->cap || cap > SIZE_MAX / sizeof(*ops))
			return -ENOMEM;
		ops = realloc(t->ops, cap * sizeof(*ops));
		if (!ops)
			return -ENOMEM;
		t->ops = ops;
		t->cap = cap;
	}

	k = strdup(key);
	if (!k)
		return -ENOMEM;
	if (kind == KURA_OP_PUT) {
		/* Never NULL, even when empty: a put is told from a delete by its value. */
		v = malloc(len ? len : 1);
		if (!v)
			return -ENOMEM;
		if (len)
			memcpy(v, value, len);
	}

	t->ops[t->n++] = (struct kura_op){
		.kind = kind,
		.key = TAKE_PTR(k),
		.value = TAKE_PTR(v),
		.len = kind == KURA_OP_PUT ? len : 0,
		.expect_rev = expect_rev,
	};
	return 0;
}

int kura_txn_put(struct kura_txn *t, const char *key, const void *value, size_t len,
	int64_t expect_rev)
{
	return txn_add(t, KURA_OP_PUT, key, value, len, expect_rev);
}

int kura_txn_delete(struct kura_txn *t, const char *key, int64_t expect_rev)
{
	return txn_add(t, KURA_OP_DELETE, key, NULL, 0, expect_rev);
}

int kura_txn_check(struct kura_txn *t, const char *key, int64_t expect_rev)
{
	if (expect_rev == KURA_REV_ANY)
		return -EINVAL;
	return txn_add(t, KURA_OP_CHECK, key, NULL, 0, expect_rev);
}

void kura_txn_done(struct kura_txn *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++) {
		free(t->ops[i].key);
		free(t->ops[i].value);
	}
	free(t->ops);
	*t = (struct kura_txn){ 0 };
}

void kura_kv_done(struct kura_kv *kv)
{
	if (!kv)
		return;
	free(kv->key);
	free(kv->value);
	*kv = (struct kura_kv){ 0 };
}

void kura_kv_list_done(struct kura_kv_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++)
		kura_kv_done(&l->items[i]);
	free(l->items);
	*l = (struct kura_kv_list){ 0 };
}

void kura_change_list_done(struct kura_change_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++)
		free(l->items[i].key);
	free(l->items);
	*l = (struct kura_change_list){ 0 };
}

/* libFuzzer target for the check of kurad's internal messages (broker/kurad/msg.c,
 * kura_msg_check): the first three bytes choose the type, the flags and whether a descriptor
 * came with it, the rest is the body. Refused with a reason, or accepted only when every field
 * lies within the body, each required field is there, each string ends in its one NUL, numbers
 * are 8 bytes, once-only fields occur once; never a crash. No plaintext (test bytes only). */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The contract, written down apart from msg.c's table: a tag means one kind in every type. */
static bool is_str(uint16_t t)
{
	switch (t) {
	case KURA_F_PATH:
	case KURA_F_RID:
	case KURA_F_CLAIM:
	case KURA_F_CONTAINER:
	case KURA_F_NAME:
	case KURA_F_CODE:
	case KURA_F_MESSAGE:
	case KURA_F_FINGERPRINT:
	case KURA_F_EVENT:
	case KURA_F_RESULT:
	case KURA_F_SECRET:
	case KURA_F_DETAIL:
		return true;
	default:
		return false;
	}
}

static const uint16_t required[KURA_MSG_TYPES_END][8] = {
	[KURA_MSG_ASK] = { KURA_F_PATH, KURA_F_RID, KURA_F_CLAIM },
	[KURA_MSG_FILTER] = { KURA_F_WATCH },
	[KURA_MSG_RECORD] = { KURA_F_EVENT, KURA_F_RESULT, KURA_F_CODE, KURA_F_PID, KURA_F_UID,
		KURA_F_GID },
	[KURA_MSG_STATS] = { KURA_F_CONNECTIONS, KURA_F_WATCHES, KURA_F_PRINCIPALS,
		KURA_F_EVICTIONS, KURA_F_REFUSED, KURA_F_SUPPRESSED, KURA_F_PID },
	[KURA_MSG_COMMIT] = { KURA_F_RECORD },
	[KURA_MSG_UNWATCH] = { KURA_F_WATCH },
	[KURA_MSG_ANSWER] = { KURA_F_STATUS },
	[KURA_MSG_READY] = { KURA_F_REVISION },
	[KURA_MSG_CHANGED] = { KURA_F_REVISION },
};

static void accepted(const struct kura_msg *m)
{
	const uint8_t *lo = m->body, *hi = m->body + m->len;
	size_t off = 0, i = 0;
	struct kura_msgb b;

	check(m->type > 0 && m->type < KURA_MSG_TYPES_END);
	check((m->flags & ~KURA_MSG_SECRET) == 0);
	check(!(m->flags & KURA_MSG_SECRET) || m->type == KURA_MSG_ANSWER);
	check((m->fd >= 0) == (m->type == KURA_MSG_ASK || m->type == KURA_MSG_PRINCIPAL));
	/* The fields are the body's frames, in order, each within it. */
	while (off < m->len) {
		uint16_t tag;
		uint32_t len;

		check(m->len - off >= 8 && i < m->nf);
		memcpy(&tag, m->body + off, 2);
		memcpy(&len, m->body + off + 4, 4);
		check(m->f[i].tag == tag && m->f[i].len == len &&
			m->f[i].data == m->body + off + 8);
		check(m->f[i].data >= lo && m->f[i].len <= (size_t)(hi - m->f[i].data));
		off += 8 + (size_t)len;
		i++;
	}
	check(off == m->len && i == m->nf);
	for (i = 0; i < m->nf; i++) {
		const struct kura_field *f = &m->f[i];
		size_t len;

		if (is_str(f->tag)) {
			check(f->len >= 1 && f->data[f->len - 1] == '\0' &&
				strlen((const char *)f->data) == f->len - 1);
		} else if (f->tag != KURA_F_BODY) {
			uint64_t v;

			check(f->len == 8);
			if (kura_msg_nth(m, f->tag, 0) == f)
				check(kura_msg_u64(m, f->tag, &v));
		}
		if (f->tag != KURA_F_NAME && f->tag != KURA_F_REV)
			check(kura_msg_count(m, f->tag) == 1);
		if (is_str(f->tag) && kura_msg_nth(m, f->tag, 0) == f)
			check(kura_msg_str(m, f->tag) == (const char *)f->data);
		check(kura_msg_bytes(m, f->tag, &len) && len <= m->len);
	}
	for (i = 0; i < 8 && required[m->type][i]; i++)
		check(kura_msg_count(m, required[m->type][i]) == 1);
	if (m->type == KURA_MSG_CHANGED)
		check(kura_msg_count(m, KURA_F_NAME) == kura_msg_count(m, KURA_F_REV));
	/* What is accepted is what the builder writes from those fields, byte for byte. */
	kura_msgb_init(&b, m->type);
	for (i = 0; i < m->nf; i++)
		kura_msgb_bytes(&b, m->f[i].tag, m->f[i].data, m->f[i].len);
	check(b.err == 0 && b.len == m->len &&
		(m->len == 0 || memcmp(b.buf, m->body, m->len) == 0));
	kura_msgb_done(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kura_msg m = { .fd = -1 };
	char why[128] = "";
	int r;

	if (size < 3 || size - 3 > KURA_MSG_MAX_BODY)
		return 0;
	m.type = data[0] % (KURA_MSG_TYPES_END + 1);
	m.flags = data[1] & 0x3u;
	m.fd = data[2] & 1 ? 1000 : -1; /* checked for presence only, never used */
	m.len = (uint32_t)(size - 3);
	/* Exactly the body's bytes, so a read past it is the sanitizer's to see. */
	m.body = malloc(m.len ? m.len : 1);
	check(m.body);
	memcpy(m.body, data + 3, m.len);
	r = kura_msg_check(&m, why);
	if (r == 0)
		accepted(&m);
	else
		check((r == -EBADMSG && why[0] && memchr(why, 0, 128)) || r == -ENOMEM);
	free(m.body);
	m.body = NULL;
	m.fd = -1;
	kura_msg_done(&m);
	return 0;
}

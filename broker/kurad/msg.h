/* The messages kurad's processes exchange over their socketpairs: typed, length-prefixed, every
 * field checked against one schema table (msg.c) before anyone reads it. A message that breaks
 * it is fatal to its receiver. Touches plaintext: a value crosses from keeper to front in an
 * ANSWER flagged secret, sent from and received into guarded memory. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "secbuf.h"

/*
 * On the wire: a header { u32 body length, u16 type, u16 flags }, then the body, a sequence of
 * fields { u16 tag, u16 zero, u32 length, bytes }. Numbers are u64 (8 bytes), strings carry
 * their NUL (and no other). Host byte order: both ends are one binary on one machine.
 */
enum kura_msg_type {
	KURA_MSG_ASK = 1,   /* front -> keeper: one workload request, the peer's socket attached */
	KURA_MSG_PRINCIPAL, /* front -> keeper: whom a peer in no container counts against */
	KURA_MSG_FILTER,    /* front -> keeper: which of these changed names a long poll's peer may
			       read */
	KURA_MSG_RECORD,    /* front -> keeper: a refusal the front decided, for the audit log */
	KURA_MSG_STATS,     /* front -> keeper: the front's counters (metrics.h), once a second */
	KURA_MSG_COMMIT,    /* front -> keeper: whether the refusal just answered is recorded */
	KURA_MSG_UNWATCH,   /* front -> keeper: a long poll is over */
	KURA_MSG_ANSWER,    /* keeper -> front: the reply to ASK, LOOKUP, FILTER, COMMIT, RECORD */
	KURA_MSG_READY,     /* keeper -> front: serving from revision N */
	KURA_MSG_CHANGED,   /* keeper -> front: secrets changed, up to a revision */
	KURA_MSG_LIMITS,    /* keeper -> front: the limits a reload set (the front reads no file) */
	/* Between the keeper and the net process (net.c), which does the keeper's network I/O. */
	KURA_MSG_NET_GET,     /* keeper -> net: one GET on a runtime's socket, within a timeout */
	KURA_MSG_NET_GOT,     /* net -> keeper: its status and body, or the errno */
	KURA_MSG_NET_WATCH,   /* keeper -> net: stream GET path on a runtime's socket */
	KURA_MSG_NET_CHUNK,   /* net -> keeper: the stream's next bytes, raw */
	KURA_MSG_NET_END,     /* net -> keeper: the stream is over, with the errno (0: stopped) */
	KURA_MSG_NET_STOP,    /* keeper -> net: end the stream (END follows) */
	KURA_MSG_NET_RECORD,  /* keeper -> net: an audit record written, for the sinks (one-way) */
	KURA_MSG_NET_EVENT,   /* net -> keeper: a sink failed, recovered or dropped records */
	KURA_MSG_NET_FLUSH,   /* keeper -> net: deliver what is queued within a bound, then stop */
	KURA_MSG_NET_FLUSHED, /* net -> keeper: the sinks have stopped */
	KURA_MSG_TYPES_END,
};

enum kura_msg_tag {
	KURA_F_PATH = 1, /* ASK: the request's path (/v1/...) */
	KURA_F_RAW,      /* ASK: the value wanted as the raw body; ANSWER: it is */
	KURA_F_RID,      /* request id, for records */
	KURA_F_RECORD,   /* ANSWER: a refusal, to be recorded or counted (COMMIT says which) */
	KURA_F_WAIT,  /* ASK: the keeper may wait for the peer's runtime (a lookup worker asks) */
	KURA_F_CLAIM, /* ASK: whom the front counts the peer against (kura_principal_text):
		       * checked against the keeper's own reading, never believed */
	KURA_F_RUNTIME_KIND, /* RECORD: a refused container's runtime (enum kura_runtime_kind) */
	KURA_F_CONTAINER,    /* RECORD: ... and its ID, as its cgroup names it */
	KURA_F_KIND,         /* ANSWER to PRINCIPAL: enum kura_principal_kind, */
	KURA_F_UID,          /* ... with the uid it is keyed by; RECORD: a refused peer's uid */
	KURA_F_NAME,         /* FILTER, ANSWER, CHANGED: a secret name (repeated) */
	KURA_F_REV,          /* CHANGED: the revision of the name before it (repeated, paired) */
	KURA_F_REVISION,     /* READY, CHANGED: a store revision */
	KURA_F_RESET,       /* CHANGED: history before REVISION is gone; polls from before resync */
	KURA_F_STATUS,      /* ANSWER: the HTTP status */
	KURA_F_CODE,        /* ANSWER, RECORD: the error code (reason) */
	KURA_F_MESSAGE,     /* ANSWER: the error's text */
	KURA_F_BODY,        /* ANSWER: the reply's body (JSON, or the raw value) */
	KURA_F_VERSION,     /* ANSWER: the value's version (raw) */
	KURA_F_FINGERPRINT, /* ANSWER: its keyed fingerprint (raw) */
	KURA_F_CREATED,     /* ANSWER: when it was created, Unix seconds (raw) */
	KURA_F_CLOSE,       /* ANSWER: close the connection after the reply */
	KURA_F_EVENT,       /* RECORD: what was asked (fetch, list, ...) */
	KURA_F_RESULT,      /* RECORD: denied or error */
	KURA_F_SECRET,      /* RECORD: the secret name asked for */
	KURA_F_PID,         /* RECORD: the kernel's facts of a peer refused */
	KURA_F_GID,
	KURA_F_COUNT,       /* RECORD: refusals counted, not recorded one by one ("suppressed") */
	KURA_F_DETAIL,      /* RECORD: the principal as text */
	KURA_F_CONNECTIONS, /* STATS: the counters of struct kura_quota_stats */
	KURA_F_WATCHES,
	KURA_F_PRINCIPALS,
	KURA_F_EVICTIONS,
	KURA_F_REFUSED,
	KURA_F_SUPPRESSED,
	KURA_F_WATCH,     /* ANSWER, FILTER, UNWATCH: the keeper's handle on a long poll */
	KURA_F_RATE,      /* LIMITS: requests per second per principal, */
	KURA_F_BURST,     /* ... its burst, */
	KURA_F_WATCH_MAX, /* ... and the longest long poll, in seconds */
	/* The net process's fields (also PATH, STATUS, BODY, KIND, DETAIL, COUNT above). */
	KURA_F_NET_RUNTIME, /* NET_GET, NET_WATCH: which runtime, by its index in the config */
	KURA_F_NET_TIMEOUT, /* NET_GET: milliseconds left of the caller's deadline; NET_FLUSH */
	KURA_F_NET_ERRNO,   /* NET_GOT, NET_END: 0 or the positive errno */
	KURA_F_NET_SEQ,     /* NET_RECORD: the record's seq, */
	KURA_F_NET_MAC,     /* ... its MAC (KURA_SINK_MAC_BYTES), */
	KURA_F_NET_NOTABLE, /* ... whether it is a denial or error, */
	KURA_F_NET_LINE,    /* ... and the line itself, without its newline */
	KURA_F_NET_SINK,    /* NET_EVENT: "syslog" or "http" */
	/* STATS: the front's counters (metrics.h), each an array of u64 of a fixed length; with
	 * PID, the front's pid. */
	KURA_F_FETCHES,       /* fetches by reason: KURA_FETCH_REASONS */
	KURA_F_LIMITED,       /* refusals by limit: KURA_LIMITS */
	KURA_F_FETCH_LATENCY, /* the fetch histogram: KURA_HIST_BUCKETS, then the sum (ns) */
	KURA_F_TAGS_END,
};

#define KURA_MSG_SECRET 0x1u /* header flag: the body holds plaintext (guarded memory) */

/* Once its first byte is in, a message must be whole within this (else it is malformed). */
#define KURA_MSG_WHOLE_MS 5000

/* The largest body of any message (a listing of every readable name). */
#define KURA_MSG_MAX_BODY (32u << 20)

/* Bounds of the net process's messages: a runtime's answer (KURA_RUNTIME_MAX_BODY), a stream's
 * chunk, a request's path (KURA_RUNTIME_MAX_PATH), an audit record's line, runtimes configured. */
#define KURA_MSG_NET_BODY_MAX (1024u * 1024u)
#define KURA_MSG_NET_CHUNK_MAX (64u * 1024u)
#define KURA_MSG_NET_PATH_MAX 1000u
#define KURA_MSG_NET_LINE_MAX (64u * 1024u)
#define KURA_MSG_NET_RUNTIMES 16u

struct kura_field {
	uint16_t tag;
	uint32_t len;
	const uint8_t *data;
};

/* A message received and checked. fd: the descriptor it carried (or -1), owned by the message
 * until taken. */
struct kura_msg {
	enum kura_msg_type type;
	unsigned flags;
	int fd;
	uint8_t *body;
	uint32_t len;
	struct kura_secbuf *guarded; /* holds body when the message is flagged secret */
	struct kura_field *f;
	size_t nf;
};

/* A message being built: small fields are copied into buf; at most one field, the last, may be
 * sent from where it lies, never copied (a secret in guarded memory, or a large listing). */
struct kura_msgb {
	enum kura_msg_type type;
	unsigned flags;
	uint8_t *buf;
	size_t len, cap;
	const void *ext;
	uint32_t ext_len;
	size_t n; /* fields so far */
	int err;
};

void kura_msgb_init(struct kura_msgb *b, enum kura_msg_type type);
void kura_msgb_u64(struct kura_msgb *b, enum kura_msg_tag tag, uint64_t v);
void kura_msgb_str(struct kura_msgb *b, enum kura_msg_tag tag, const char *s);
void kura_msgb_bytes(struct kura_msgb *b, enum kura_msg_tag tag, const void *p, size_t n);
/* The last field: n bytes at p, sent from there, not copied (p must outlive the send). */
void kura_msgb_ref(struct kura_msgb *b, enum kura_msg_tag tag, const void *p, size_t n);
/* The last field: n bytes of plaintext at p, sent from there; flags the message secret. */
void kura_msgb_secret(struct kura_msgb *b, enum kura_msg_tag tag, const void *p, size_t n);
void kura_msgb_done(struct kura_msgb *b);
static inline size_t kura_msgb_count(const struct kura_msgb *b)
{
	return b->n;
}

/* Send b (and fd, if >= 0, as SCM_RIGHTS) whole, or -errno (-EPIPE: the peer is gone). A
 * message its own schema refuses is -EINVAL, before anything is sent. */
int kura_msg_send(int sock, struct kura_msgb *b, int fd);

/*
 * Receive one message within timeout_ms (-1: no limit), checked. -ETIMEDOUT if none began in
 * time, -EPIPE if the peer closed (at a message boundary), -EBADMSG if it breaks the protocol
 * (why says how: also one not whole within KURA_MSG_WHOLE_MS of its start, or the timeout),
 * other -errno.
 */
int kura_msg_recv(int sock, int timeout_ms, struct kura_msg *m, char why[static 128]);

/* Check a message already read (type, flags, fd present, body): what recv does after reading;
 * exposed for the fuzz target. 0 or -EBADMSG. Takes nothing. */
int kura_msg_check(struct kura_msg *m, char why[static 128]);

/* Field accessors. A field the schema requires is always there once checked. */
bool kura_msg_u64(const struct kura_msg *m, enum kura_msg_tag tag, uint64_t *ret);
const char *kura_msg_str(const struct kura_msg *m, enum kura_msg_tag tag); /* NULL: absent */
const void *kura_msg_bytes(const struct kura_msg *m, enum kura_msg_tag tag, size_t *ret_len);
/* Repeated fields: the i-th occurrence of tag, in order. */
size_t kura_msg_count(const struct kura_msg *m, enum kura_msg_tag tag);
const struct kura_field *kura_msg_nth(const struct kura_msg *m, enum kura_msg_tag tag, size_t i);

/* The fd it carried, now the caller's (-1 if none). */
int kura_msg_take_fd(struct kura_msg *m);
/* The guarded buffer holding a secret body, now the caller's (the fields still point into it);
 * NULL if the body is not guarded. */
struct kura_secbuf *kura_msg_take_guarded(struct kura_msg *m);
/* The body of a message not flagged secret, now the caller's to free() (the fields still point
 * into it); NULL if it is guarded (take that with kura_msg_take_guarded) or empty. */
void *kura_msg_take_body(struct kura_msg *m);
/* Free m: wipes a secret body, closes an fd not taken. */
void kura_msg_done(struct kura_msg *m);

const char *kura_msg_type_name(enum kura_msg_type t);

/* A peer that broke the protocol: log who and why, and exit(70) at once. The supervisor then
 * stops kurad, which exits non-zero: nothing runs on with a confused peer. */
__attribute__((noreturn)) void kura_msg_fatal(const char *from, const char *why);

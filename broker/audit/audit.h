/* The tamper-evident audit log: JSON lines chained by a forward-secure keyed MAC. Holds the
 * current MAC key (in guarded memory) but never a secret's value. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "chain.h"
#include "macro.h"
#include "secbuf.h"

#define KURA_AUDIT_KEY_BYTES KURA_CHAIN_KEY_BYTES
#define KURA_AUDIT_MAC_BYTES KURA_CHAIN_MAC_BYTES

/*
 * Zero numeric fields mean the default. A NULL opts means all defaults, including fsync; a
 * caller that fills the struct itself sets fsync explicitly (KURA_AUDIT_OPTS_DEFAULT helps).
 */
struct kura_audit_opts {
	uint64_t max_file_bytes;    /* rotate once the current file reaches this; 64 MiB */
	uint64_t records_per_epoch; /* evolve the key after this many records; 1000 */
	uint64_t seconds_per_epoch; /* ... or after this long, whichever first; 3600 */
	bool fsync;                 /* fsync each record before append returns */
	unsigned lock_ms;           /* append and tick give up with -ETIMEDOUT after waiting this
				     * long for another writer stuck in I/O; 0: wait */
	unsigned open_wait_ms;      /* open waits this long for another process to let go of
				     * the log before -EBUSY; 0: not at all */
};

#define KURA_AUDIT_OPTS_DEFAULT                                                                    \
	((struct kura_audit_opts){ .max_file_bytes = 64u << 20,                                    \
		.records_per_epoch = 1000,                                                         \
		.seconds_per_epoch = 3600,                                                         \
		.fsync = true })

struct kura_audit;

/*
 * A new log in dir (created 0700; -EEXIST if it already holds a state file) with a random
 * starting key S, which is handed back for the operator to keep off this host: with it,
 * kura_audit_verify can re-derive every key, K(0) = evolve(S) and K(e+1) = evolve(K(e)). Only
 * K(0) is stored, never S: the host cannot rewrite epoch 0 once it is closed. The state file
 * dir/state (0600) holds the current epoch and key, the last seq and MAC, and the current file
 * number; it is only ever replaced whole (temp file, fsync, rename, fsync of dir). dir may exist
 * already if it is ours and closed to group and others (-EPERM otherwise). Like everything here, it
 * expects kura_keys_init and kura_json_init (the wiping allocator: the key passes through jansson
 * when the state is read) to have run.
 */
int kura_audit_create(const char *dir, struct kura_secbuf **ret_initial_key);

/*
 * Opens the log in dir for appending. The state file may lag the log (a crash after a record
 * was written but before the state was saved, which is the normal case: the state is saved
 * only when the key evolves, a file rotates, or the log is closed), so the current file's tail
 * is re-read and every record after the state's seq is verified with the current key and
 * adopted; the log itself is the truth for the current epoch. A partial last line (a crash
 * mid-write; append never acknowledged it) is cut off. -EBADMSG if the tail does not verify
 * (someone other than us wrote there): the caller refuses to run rather than extend a broken
 * chain. -EBUSY while another handle (in any process) has the log open.
 */
int kura_audit_open(const char *dir, const struct kura_audit_opts *o, struct kura_audit **ret);

/* Saves the state, wipes the key and frees; NULL is fine. */
void kura_audit_close(struct kura_audit *a);

/*
 * Appends one record. fields is a JSON object of the caller's fields (event, result, reason,
 * identity, secret, version, request_id; never a value); append adds "seq", "time" (RFC 3339,
 * UTC, microseconds) and "epoch", serialises compactly with sorted keys into BODY, and writes
 *
 *     BODY with its final '}' replaced by ,"mac":"<base64 of 32 bytes>"}  and then '\n'
 *
 * where mac = BLAKE2b-256 keyed with K(epoch) over "kura/audit/1\0" || prev_mac || BODY and
 * prev_mac is the previous record's MAC (32 zero bytes before seq 1). -EINVAL if fields is not
 * an object or uses a reserved key (seq, time, epoch, mac, next_epoch).
 *
 * When the epoch is due (records_per_epoch records, or seconds_per_epoch elapsed), append first
 * writes a closing record {"event":"audit-key-evolve","next_epoch":e+1,...} under K(e), then
 * derives K(e+1) = BLAKE2b-256(key = K(e), "kura/audit/evolve/1"), saves the state and wipes
 * K(e). The closing record is what pins each epoch's end: without it an intruder holding K(e)
 * could relabel the tail of epoch e-1 as epoch e and re-MAC it.
 *
 * Thread-safe. The line goes out in one write(2) on an O_APPEND descriptor, then fsync when
 * o->fsync. Any failure (-ENOSPC, -EIO, -ESTALE when the file at the path is no longer the one
 * we hold open: from the next append once it is renamed, unlinked or replaced, within a second
 * once it is cut short in place; IDENTITY_CHECK_MS in audit.c) is returned and nothing in memory
 * advances, and what a failed write left in the file is truncated away, so a retry continues the
 * chain; the caller fails closed. *ret_seq (may be NULL) gets the record's seq.
 */
int kura_audit_append(struct kura_audit *a, json_t *fields, uint64_t *ret_seq);

/*
 * kura_audit_append(a, kura_audit_event_fields(e), ret_seq), the same line byte for byte, but
 * serialised straight from e without jansson: what kurad and kuractl write their records with.
 */
struct kura_audit_event;
int kura_audit_append_event(struct kura_audit *a, const struct kura_audit_event *e,
	uint64_t *ret_seq);

/*
 * Called after each record is written (and synced), with the audit lock held and in seq order:
 * line is the record without its '\n', mac its MAC, notable whether its result is "denied"
 * or "error". For shipping off the host; it must not block (queue and return). NULL unsets.
 */
typedef void (*kura_audit_tap_fn)(const char *line, size_t len, uint64_t seq,
	const uint8_t mac[KURA_AUDIT_MAC_BYTES], bool notable, void *userdata);
void kura_audit_set_tap(struct kura_audit *a, kura_audit_tap_fn fn, void *userdata);

/* The last record's seq and MAC: what a checkpoint sent off the host pins. */
void kura_audit_last(struct kura_audit *a, uint64_t *ret_seq,
	uint8_t ret_mac[KURA_AUDIT_MAC_BYTES]);

/* Writes the epoch's closing record and evolves the key if the epoch is due by time: for a
 * timer in the daemon, so an idle log does not keep an old key past seconds_per_epoch. */
int kura_audit_tick(struct kura_audit *a);

enum kura_audit_fault {
	KURA_AUDIT_OK,
	KURA_AUDIT_EDITED,     /* the expected seq, but its MAC fails */
	KURA_AUDIT_DELETED,    /* seq jumps forward and the missing one is not later in the file */
	KURA_AUDIT_REORDERED,  /* seq jumps forward and the missing one comes later, or goes back */
	KURA_AUDIT_DUPLICATED, /* seq repeats the previous good record's */
	KURA_AUDIT_INSERTED,   /* a line that fails, followed by one that verifies in its place */
	KURA_AUDIT_MALFORMED,  /* not a JSON object ending in a "mac" of the right shape */
	KURA_AUDIT_TRUNCATED,  /* the last line of the last file has no newline, or (with a
				* checkpoint) the log ends before the checkpoint's seq */
	KURA_AUDIT_CHECKPOINT, /* the checkpoint's record verifies in the chain, but its MAC is
				* not the checkpoint's: rewritten with the current epoch's key */
	KURA_AUDIT_START,      /* the start point's key commitment is not its epoch's key's */
};

const char *kura_audit_fault_name(enum kura_audit_fault f);

/*
 * Where a log begins once its oldest files were archived (kura_audit_archive): dir/start, a
 * JSON object {"type":"kura-audit-start", "seq", "mac", "epoch", "first_file", "time",
 * "archived_to" [, "key_commitment"]}. The log goes on from the record after seq, chaining onto
 * mac under the key of epoch; files numbered below first_file are no longer part of it.
 * key_commitment (BLAKE2b-256 of that epoch's key under its own label) is there when the
 * archiver held the starting key: a verifier with the starting key checks it.
 */
struct kura_audit_start {
	uint64_t seq;
	uint8_t mac[KURA_AUDIT_MAC_BYTES];
	uint64_t epoch;
	uint64_t first_file;
	bool has_commitment;
	uint8_t commitment[KURA_AUDIT_MAC_BYTES];
};

/* dir's start point. -ENOENT: the log begins at its start; -EBADMSG: the file is not one. */
int kura_audit_start_read(int dirfd, struct kura_audit_start *ret);

struct kura_audit_archived {
	uint64_t files; /* files moved out */
	uint64_t first_file, last_file;
	uint64_t first_seq, last_seq; /* the records they held */
	char last_time[32];           /* the last one's time */
};

/*
 * Moves the oldest whole files of the log in dir whose every record is older than before (a
 * record's time as append writes it: kura_audit_time_parse) to dest, never the file being written.
 * They are verified first, from the log's start point (or its beginning): every MAC with
 * initial_key, else the structure (each line, seqs running on by one, epochs following their
 * closing records); a fault archives nothing
 * (-EBADMSG, why says where). dest is created (0700) or must be empty: it gets copies of the
 * files (fsync'd) and of the start point they began from, so it verifies on its own. Then dir
 * gets its new start point (written whole) and the files are removed. A crash at any point
 * leaves a log that verifies: before the new start point, the files are still in dir; after it,
 * the leftovers below first_file are ignored (and removed by the next archive). ret->files 0:
 * nothing was old enough.
 */
int kura_audit_archive(const char *dir, const char *dest, const char *before,
	const struct kura_secbuf *initial_key, struct kura_audit_archived *ret,
	char why[static 256]);

struct kura_audit_verdict {
	enum kura_audit_fault fault;
	char file[32];       /* where the first bad record is ("" when ok) */
	uint64_t line;       /* 1-based line in that file */
	uint64_t seq;        /* the seq that was expected there */
	uint64_t good;       /* records that verified before it */
	uint64_t last_seq;   /* of the last good record */
	uint64_t last_epoch; /* of the last good record */
	uint64_t files;      /* files read (up to and including the one with the fault) */
	bool macs_checked;   /* false: verified without a key, only the structure */
	bool checkpoint_met; /* a checkpoint was given and its record matched it */
	uint64_t start_seq;  /* the log begins after this seq (a start point: archived before) */
};

/*
 * What a sink sends off the host now and then: the seq and MAC of the last record written.
 * Someone holding the current epoch's key can rewrite the current epoch and cut the tail
 * without breaking the chain; a checkpoint kept elsewhere is what catches both. Its text form,
 * one JSON object per line:
 *
 *     {"type":"kura-audit-checkpoint","seq":N,"mac":"<base64>","host":"...","time":"..."}
 */
struct kura_audit_checkpoint {
	uint64_t seq;
	uint8_t mac[KURA_AUDIT_MAC_BYTES];
};

/*
 * Finds a checkpoint object in one line of text (anything before its '{', such as a syslog
 * header, is skipped; keys may come in any order; host and time are not checked). -EPROTO
 * if the line holds none.
 */
int kura_audit_checkpoint_parse(const char *line, size_t len, struct kura_audit_checkpoint *ret);

/*
 * Checks the whole chain in dir, over the files in number order, re-deriving each epoch's key
 * from initial_key. Only reads (give it a copy of the directory, so a live daemon does not move
 * under it). Returns 0 and fills *ret whether or not the log is intact (ret->fault says), or
 * -errno when the files cannot be read. Classification is a best guess at the first break:
 * - a forged line appended after the last record reads as EDITED, as does a forged line whose
 *   seq repeats nothing around it;
 * - REORDERED looks ahead only within the same file;
 * - without a checkpoint, a cut at a line boundary (the tail of the log deleted) verifies, and
 *   so does a current epoch rewritten by someone holding its key: only a checkpoint kept off
 *   the host can tell. With cp (NULL: none), a log that verifies but ends before cp->seq is
 *   TRUNCATED at the first missing seq (file: the last one, line: one past its end), and a
 *   record cp->seq that verifies in the chain with another MAC is CHECKPOINT.
 * initial_key NULL checks only the structure (each line parses, seqs run on by one, epoch
 * labels follow the closing records, the checkpoint's MAC); ret->macs_checked says which.
 */
int kura_audit_verify(const char *dir, const struct kura_secbuf *initial_key,
	const struct kura_audit_checkpoint *cp, struct kura_audit_verdict *ret);

/*
 * An audit key from its text form, base64 of KURA_AUDIT_KEY_BYTES (as kura_base64_secbuf
 * writes it, with nothing around it), decoded straight into a new guarded buffer: what the
 * operator was given, or the state file's key. -EINVAL if it is anything else.
 */
int kura_audit_key_parse(const uint8_t *text, size_t len, struct kura_secbuf **ret);

static inline void kura_audit_closep(struct kura_audit **a)
{
	kura_audit_close(*a);
}

#define _cleanup_audit_ _cleanup_(kura_audit_closep)

/* kuractl's shared command plumbing: options every command takes, opening the vault, and
 * output. Never prints a value except `secret get` to its stdout. */
#pragma once

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "clock.h"
#include "number.h"
#include "outcome.h"
#include "vault.h"

struct ctl {
	const char *state_dir;
	const char *run_dir;
	struct kura_master_source master;
	bool json;
	bool offline; /* never ask kurad, even when one serves this state */

	/* After ctl_connect: either a kurad's admin socket (remote) or the vault here. */
	bool remote;
	char admin_sock[4096];
	struct kura_vault *vault;
	struct kura_audit *audit; /* offline: kuractl writes the records kurad would */
};

/* The options every command accepts, in a getopt_long table: append to a command's own. */
#define CTL_COMMON_OPTIONS                                                                         \
	{ "state-dir", required_argument, NULL, 'S' },                                             \
		{ "key-file", required_argument, NULL, 'K' },                                      \
		{ "passphrase-file", required_argument, NULL, 'P' },                               \
		{ "json", no_argument, NULL, 'j' }, { "help", no_argument, NULL, 'h' },            \
		{ "run-dir", required_argument, NULL, 0x101 },                                     \
		{ "offline", no_argument, NULL, 0x102 },                                           \
	{                                                                                          \
		NULL, 0, NULL, 0                                                                   \
	}

/* Handle a common option; false if c is not one. Exits 2 on a conflict. */
bool ctl_common_option(struct ctl *c, int opt, const char *arg);

/* Open and unlock the vault named by c; on failure prints the error and returns the exit
 * code (>0), with *ret untouched. */
int ctl_open(struct ctl *c, struct kura_vault **ret);

/* True (after saying why) when a passphrase would be read from a terminal with echo. */
bool ctl_passphrase_tty(const char *path);

/* Print "kuractl: <msg>" (err's message if set, else strerror) and return the exit code. */
int ctl_fail(int r, const struct kura_err *err);

/* Report getopt's '?' or ':' for argv as one usage line; returns KURA_EXIT_USAGE. */
int ctl_bad_option(int opt, char **argv);

/* Print a usage error and return KURA_EXIT_USAGE. */
__attribute__((format(printf, 1, 2))) int ctl_usage(const char *fmt, ...);

/* Print j (stolen) as one line of JSON to stdout. */
int ctl_print_json(json_t *j);

/* Use kurad's admin socket when a kurad serves c->state_dir, else open the vault here.
 * Returns 0, or an exit code after printing why. ctl_disconnect undoes it. */
int ctl_connect(struct ctl *c);
void ctl_disconnect(struct ctl *c);

/* GET path from the kurad at c->run_dir/admin.sock: its JSON reply and HTTP status. Like every
 * exchange with kurad, only once the run directory and the server's credentials are trusted:
 * -EPERM otherwise (nothing sent). Failures have err set. */
int ctl_admin_get(struct ctl *c, const char *path, long *ret_status, json_t **ret,
	struct kura_err *err);
/* The same, the reply's body as it came (never empty: at least a buffer of length 0). */
int ctl_admin_get_raw(struct ctl *c, const char *path, long *ret_status, struct kura_secbuf **ret,
	struct kura_err *err);

/* The operations, wherever they run (ctl-backend.c); the same contracts as the vault's. */
int be_max_value(struct ctl *c, uint64_t set, uint64_t *ret, struct kura_err *err);
int be_secret_write(struct ctl *c, const char *name, const struct kura_secbuf *value, bool create,
	uint64_t *ret_version, struct kura_err *err);
int be_secret_get(struct ctl *c, const char *name, uint64_t version, struct kura_secbuf **ret_value,
	struct kura_version_info *ret_info, struct kura_err *err);
int be_secret_show(struct ctl *c, const char *name, struct kura_secret_info *ret,
	struct kura_err *err);
int be_secret_list(struct ctl *c, const char *prefix, struct kura_secret_list *ret,
	struct kura_err *err);
int be_secret_rollback(struct ctl *c, const char *name, uint64_t to, struct kura_err *err);
int be_secret_destroy(struct ctl *c, const char *name, uint64_t version, struct kura_err *err);
struct kura_grant;
struct kura_grant_list;
int be_grant_add(struct ctl *c, struct kura_grant *g, bool *ret_existed, struct kura_err *err);
int be_grant_remove(struct ctl *c, const char *id, struct kura_err *err);
int be_grant_list(struct ctl *c, struct kura_grant_list *ret, struct kura_err *err);
int be_key_rotate(struct ctl *c, kura_progress_fn progress, uint64_t *ret_count, uint32_t *ret_kek,
	struct kura_err *err);
int be_key_rekey(struct ctl *c, const struct kura_master_source *to, struct kura_err *err);
int be_key_status(struct ctl *c, struct kura_key_status *ret, struct kura_err *err);

/* The audit log's starting key, handed out to a file (0400, never over an existing one): begun
 * before anything else is made, so a path that cannot take it is refused up front (saying
 * why); then written whole or not at all (kura_keyfile), one line of base64. */
int ctl_audit_key_create(const char *path, struct kura_keyfile *ret);
int ctl_audit_key_write(struct kura_keyfile *f, const struct kura_secbuf *key);
/* The audit log's starting key from path ("-": stdin), base64 or 32 raw bytes, into guarded
 * memory; 0, or an exit code after printing why. */
int ctl_audit_key_read(const char *path, struct kura_secbuf **ret);

int ctl_init(struct ctl *c, int argc, char **argv);
int ctl_secret(struct ctl *c, int argc, char **argv);
int ctl_key(struct ctl *c, int argc, char **argv);
int ctl_config(struct ctl *c, int argc, char **argv);
int ctl_grant(struct ctl *c, const char *cmd, int argc, char **argv);
int ctl_whois(struct ctl *c, int argc, char **argv);
int ctl_audit(struct ctl *c, int argc, char **argv);
int ctl_doctor(struct ctl *c, int argc, char **argv);
int ctl_status(struct ctl *c, int argc, char **argv);
int ctl_metrics(struct ctl *c, int argc, char **argv);

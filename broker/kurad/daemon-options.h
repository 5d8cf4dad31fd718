/* kurad's options: defaults, one option from the command line or a config file, and whole
 * config files of `option = value` lines ('#' starts a comment). No plaintext. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "daemon.h"

#define KURA_DAEMON_OPTIONS_MAX (1u << 20) /* the largest config file read */

struct kura_daemon_options {
	struct kura_daemon_config cfg;
	const char *config_file;
	bool syslog;
	/* The strings cfg points to that we allocated. */
	char *state_dir;
	char *run_dir;
	char *master_path;
	char *audit_syslog;
	char *audit_http;
};

/* The defaults (kurad --help). */
void kura_daemon_options_init(struct kura_daemon_options *o);
void kura_daemon_options_done(struct kura_daemon_options *o);

/* One option by its name without "--": false if the name or the value is not valid. On a
 * reload (SIGHUP) only what can change while running is taken; the rest is accepted, unused. */
bool kura_daemon_option_set(struct kura_daemon_options *o, const char *key, const char *value,
	bool reload);

/* `option = value` lines of text (len bytes, no NUL needed): -EINVAL with the first bad line's
 * number in *ret_line (a line over 4095 bytes, a NUL, no '=', an unknown option or value). */
int kura_daemon_options_parse(struct kura_daemon_options *o, const char *text, size_t len,
	bool reload, unsigned *ret_line);

/* The same for a file; logs why it cannot (the file and line). */
int kura_daemon_options_read(struct kura_daemon_options *o, const char *path, bool reload);

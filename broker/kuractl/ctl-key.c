/* kuractl init, key (rotate, rekey, status) and config. Key material stays inside the vault
 * and keys/; nothing here prints it. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
#include "base64.h"
#include "clock.h"
#include "number.h"
#include "config.h"
#include "ctl.h"
#include "tpm2.h"

static const char init_usage[] =
	"Usage: kuractl init [--key-file F | --passphrase-file F | --tpm2 [--tpm2-device TCTI]]\n"
	"                    [--max-value-size N] [--audit-key-out FILE]\n"
	"\n"
	"Create a state: the directory (mode 0700), a master key, the store and the first KEK.\n"
	"The master key is 32 random bytes in STATE_DIR/master.key (mode 0400), or in the\n"
	"--key-file you name (an existing one is used if it passes the checks: a regular file,\n"
	"not a symlink, 32 bytes, no group or other access). With --passphrase-file it is\n"
	"derived with Argon2id (3 passes, 64 MiB) and only the salt and costs are stored.\n"
	"With --tpm2 it is sealed to this host's TPM2 (as systemd-creds does) into\n"
	"STATE_DIR/master.tpm2 (mode 0400), with the TPM it was sealed to: --tpm2-device TCTI,\n"
	"default " KURA_TPM2_TCTI_DEFAULT " (or e.g. swtpm:host=127.0.0.1,port=2321). kuractl\n"
	"and kurad then unseal it with no key option; a copy of the state on another host does\n"
	"not open. Nothing else holds that key: if this TPM is cleared or dies, neither does\n"
	"the state (key rekey --new-key-file moves it out of the TPM2 while it still opens).\n"
	"Keep a copy of the key (or the passphrase) off the host: without it nothing opens.\n"
	"--max-value-size N sets the largest value the store takes (default "
	"1 MiB).\n"
	"\n"
	"It also starts the audit log in STATE_DIR/audit with a random starting key K(0). The log\n"
	"keeps only the current key, which evolves one way, so K(0) is the only key that checks\n"
	"the whole log: it is printed once (or written to --audit-key-out FILE, created with\n"
	"mode 0400, never overwritten) and not kept on this host. Move it off the host; `kuractl\n"
	"audit verify --key FILE` takes it.\n"
	"\n"
	"Exit status: 0 ok, 1 a store already exists or the key file is refused, 2 usage,\n"
	"3 system error.\n";

static const char key_usage[] =
	"Usage: kuractl key COMMAND\n"
	"\n"
	"  rotate    Add a KEK and make it current, rewrap every DEK under it in one\n"
	"            transaction, then destroy the old KEK. Values are not re-encrypted.\n"
	"            Safe to interrupt: every secret still opens, and running it again\n"
	"            finishes. Shows progress on a terminal.\n"
	"  rekey --new-key-file F | --new-passphrase-file F | --tpm2 [--tpm2-device TCTI]\n"
	"            Rewrap the keyring (only) under a new master key. A --new-key-file that\n"
	"            does not exist is created (32 random bytes, 0400). Afterwards open the\n"
	"            store with the new key: --key-file F (or move F to STATE_DIR/master.key),\n"
	"            or --passphrase-file. --tpm2 seals a new key to the TPM2 at TCTI\n"
	"            (default " KURA_TPM2_TCTI_DEFAULT ") into STATE_DIR/master.tpm2, replacing\n"
	"            the one there once the keyring is committed; open it with no key option.\n"
	"  status    The master key's source, the KEKs and how many versions each wraps.\n"
	"\n"
	"Options: --json, --state-dir, --key-file, --passphrase-file as for kuractl.\n"
	"Exit status: 0 ok, 1 refused (wrong master key), 2 usage, 3 system error,\n"
	"4 integrity failure (a DEK that does not open; nothing is changed then).\n";

static const char config_usage[] =
	"Usage: kuractl config [--max-value-size N]\n"
	"\n"
	"Show the store's settings, or change them. --max-value-size N: the largest secret\n"
	"value accepted, in bytes (1 to 1073741824).\n"
	"Options: --json, --state-dir, --key-file, --passphrase-file as for kuractl.\n"
	"Exit status: 0 ok, 1 refused (wrong master key), 2 usage, 3 system error.\n";

enum {
	OPT_MAX_VALUE = 0x300,
	OPT_NEW_KEY_FILE,
	OPT_NEW_PASSPHRASE_FILE,
	OPT_AUDIT_KEY_OUT,
	OPT_TPM2,
	OPT_TPM2_DEVICE,
};

static const struct option key_opts[] = {
	{ "max-value-size", required_argument, NULL, OPT_MAX_VALUE },
	{ "new-key-file", required_argument, NULL, OPT_NEW_KEY_FILE },
	{ "new-passphrase-file", required_argument, NULL, OPT_NEW_PASSPHRASE_FILE },
	{ "audit-key-out", required_argument, NULL, OPT_AUDIT_KEY_OUT },
	{ "tpm2", no_argument, NULL, OPT_TPM2 },
	{ "tpm2-device", required_argument, NULL, OPT_TPM2_DEVICE },
	CTL_COMMON_OPTIONS,
};

struct key_args {
	uint64_t max_value;
	struct kura_master_source to;
	bool has_to;
	bool help;
	const char *extra;
	const char *audit_key_out;
	const char *tpm2_device;
};

static int parse(struct ctl *c, int argc, char **argv, struct key_args *a)
{
	int opt;

	while ((opt = getopt_long(argc, argv, ":h", key_opts, NULL)) != -1) {
		if (ctl_common_option(c, opt, optarg))
			continue;
		switch (opt) {
		case 'h':
			a->help = true;
			return 0;
		case OPT_MAX_VALUE:
			if (!kura_parse_u64(optarg, 1, 1u << 30, &a->max_value))
				return ctl_usage("--max-value-size takes bytes, 1 to 1073741824");
			break;
		case OPT_AUDIT_KEY_OUT:
			a->audit_key_out = optarg;
			break;
		case OPT_TPM2_DEVICE:
			a->tpm2_device = optarg;
			break;
		case OPT_NEW_KEY_FILE:
		case OPT_NEW_PASSPHRASE_FILE:
		case OPT_TPM2:
			if (a->has_to)
				return ctl_usage("give one of --new-key-file, "
						 "--new-passphrase-file and --tpm2");
			a->has_to = true;
			a->to = (struct kura_master_source){
				.kind = opt == OPT_NEW_KEY_FILE ? KURA_MASTER_FILE :
					opt == OPT_TPM2         ? KURA_MASTER_TPM2 :
								  KURA_MASTER_PASSPHRASE,
				.path = opt == OPT_TPM2 ? NULL : optarg,
			};
			break;
		default:
			return ctl_bad_option(opt, argv);
		}
	}
	if (optind < argc)
		a->extra = argv[optind];
	if (a->tpm2_device && !(a->has_to && a->to.kind == KURA_MASTER_TPM2))
		return ctl_usage("--tpm2-device goes with --tpm2");
	a->to.tcti = a->tpm2_device;
	return 0;
}

/* JSON strings must be UTF-8; a path that is not goes out as null rather than failing a
 * command that already succeeded. */
static const char *utf8_or_null(const char *s)
{
	json_t *probe = json_string(s);

	json_decref(probe);
	return probe ? s : NULL;
}

int ctl_audit_key_create(const char *path, struct kura_keyfile *ret)
{
	int r = kura_keyfile_open(path, ret);

	if (r < 0)
		fprintf(stderr, "kuractl: cannot create %s for the audit key: %s\n", path,
			r == -EEXIST ? "it exists (it is never overwritten)" : strerror(-r));
	return r;
}

int ctl_audit_key_write(struct kura_keyfile *f, const struct kura_secbuf *key)
{
	_cleanup_secbuf_ struct kura_secbuf *line = NULL;
	int r = kura_base64_secbuf(key, &line);

	if (r < 0) {
		kura_keyfile_abort(f);
		return r;
	}
	line->data[line->len++] = '\n'; /* over the NUL: one line, as the operator reads it */
	return kura_keyfile_commit(f, line->data, line->len);
}

struct key_out {
	struct kura_keyfile file;
	const char *path;
};

/* Inside init, once the log is made: a key that cannot be kept undoes the init. */
static int keep_audit_key(const struct kura_secbuf *key, void *userdata, struct kura_err *err)
{
	struct key_out *out = userdata;
	int r = ctl_audit_key_write(&out->file, key);

	if (r < 0)
		return kura_err_set(err, r,
			"cannot write the audit key to %s (%s); nothing was "
			"initialised",
			out->path, strerror(-r));
	return 0;
}

int ctl_init(struct ctl *c, int argc, char **argv)
{
	_cleanup_secbuf_ struct kura_secbuf *audit_key = NULL, *b64 = NULL;
	struct key_args a = { 0 };
	struct kura_err err = { 0 };
	struct key_out out = { .file = { .fd = -1, .dirfd = -1 } };
	struct kura_init_opts o;
	int r;

	r = parse(c, argc, argv, &a);
	if (r != 0)
		return r;
	if (a.help) {
		fputs(init_usage, stdout);
		return KURA_EXIT_OK;
	}
	if (a.extra)
		return ctl_usage("unexpected argument");
	if (a.has_to && a.to.kind != KURA_MASTER_TPM2)
		return ctl_usage("--new-key-file and --new-passphrase-file belong to key rekey");
	if (a.has_to && c->master.path)
		return ctl_usage("--tpm2 excludes --key-file and --passphrase-file");
	if (a.has_to)
		c->master = a.to;
	if (c->master.kind == KURA_MASTER_PASSPHRASE && ctl_passphrase_tty(c->master.path))
		return KURA_EXIT_USAGE;
	/* Made before anything else: a path that cannot take the key is refused up front. */
	if (a.audit_key_out) {
		r = ctl_audit_key_create(a.audit_key_out, &out.file);
		if (r < 0)
			return kura_outcome_exit(r);
		out.path = a.audit_key_out;
	}
	o = (struct kura_init_opts){
		.master = c->master,
		.max_value_size = a.max_value,
		.ret_audit_key = &audit_key,
		.keep_audit_key = a.audit_key_out ? keep_audit_key : NULL,
		.keep_audit_key_data = &out,
	};
	r = kura_vault_init(c->state_dir, &o, &err);
	kura_keyfile_abort(&out.file); /* committed by keep_audit_key, unless init failed first */
	if (r < 0)
		return ctl_fail(r, &err);
	r = kura_base64_secbuf(audit_key, &b64);
	if (r < 0)
		return ctl_fail(r, &(struct kura_err){ .msg = "cannot show the audit key" });
	if (c->json) {
		r = ctl_print_json(json_pack("{s:s?, s:s, s:i, s:s?, s:s?}", "state_dir",
			utf8_or_null(c->state_dir), "master", kura_master_kind_name(c->master.kind),
			"kek", 1, "audit_key", a.audit_key_out ? NULL : (const char *)b64->data,
			"audit_key_file", a.audit_key_out ? utf8_or_null(a.audit_key_out) : NULL));
		return r;
	}
	if (c->master.kind == KURA_MASTER_TPM2)
		printf("initialised %s (master key: sealed to the TPM2 at %s, in STATE_DIR/" KURA_MASTER_TPM2_NAME
		       "; KEK 1)\n",
			c->state_dir, c->master.tcti ? c->master.tcti : KURA_TPM2_TCTI_DEFAULT);
	else
		printf("initialised %s (master key: %s%s, KEK 1)\n", c->state_dir,
			c->master.kind == KURA_MASTER_PASSPHRASE ? "passphrase from " : "",
			c->master.kind == KURA_MASTER_PASSPHRASE ? c->master.path :
				c->master.path                   ? c->master.path :
						 "STATE_DIR/" KURA_MASTER_FILE_NAME);
	if (a.audit_key_out)
		printf("audit log started; its starting key is in %s: move it off this host\n",
			a.audit_key_out);
	else
		printf("audit log started; its starting key (keep it off this host, it is not "
		       "stored here):\n%s\n",
			(const char *)b64->data);
	return KURA_EXIT_OK;
}

/* A progress bar on a terminal; silence otherwise (logs and pipes get the summary only). */
static void progress(uint64_t done, uint64_t total, void *userdata)
{
	const int width = 40;
	int fill = total ? (int)(done * (uint64_t)width / total) : width;

	(void)userdata;
	fprintf(stderr, "\rrewrapping DEKs [%.*s%*s] %llu/%llu", fill,
		"########################################", width - fill, "",
		(unsigned long long)done, (unsigned long long)total);
	if (done == total)
		fputs("\ncommitting...\n", stderr);
}

static int cmd_rotate(struct ctl *c)
{
	struct kura_err err = { 0 };
	uint64_t count = 0;
	uint32_t kek;
	int r;

	r = ctl_connect(c);
	if (r > 0)
		return r;
	r = be_key_rotate(c, isatty(STDERR_FILENO) && !c->json ? progress : NULL, &count, &kek,
		&err);
	ctl_disconnect(c);
	if (r < 0)
		return ctl_fail(r, &err);
	if (c->json)
		return ctl_print_json(json_pack("{s:I, s:I}", "kek", (json_int_t)kek, "rewrapped",
			(json_int_t)count));
	printf("KEK %u is current; %llu DEKs rewrapped; older KEKs destroyed\n", kek,
		(unsigned long long)count);
	return KURA_EXIT_OK;
}

static int cmd_rekey(struct ctl *c, const struct key_args *a)
{
	struct kura_err err = { 0 };
	int r;

	if (!a->has_to)
		return ctl_usage("key rekey needs --new-key-file F, --new-passphrase-file F or "
				 "--tpm2");
	if (a->to.kind == KURA_MASTER_PASSPHRASE && strcmp(a->to.path, "-") == 0 &&
		c->master.kind == KURA_MASTER_PASSPHRASE && c->master.path &&
		strcmp(c->master.path, "-") == 0)
		return ctl_usage("standard input cannot carry both the old and the new passphrase");
	if (a->to.kind == KURA_MASTER_PASSPHRASE && ctl_passphrase_tty(a->to.path))
		return KURA_EXIT_USAGE;
	r = ctl_connect(c);
	if (r > 0)
		return r;
	r = be_key_rekey(c, &a->to, &err);
	ctl_disconnect(c);
	if (r < 0)
		return ctl_fail(r, &err);
	if (c->json)
		return ctl_print_json(
			json_pack("{s:s, s:s?}", "master", kura_master_kind_name(a->to.kind),
				"path", a->to.path ? utf8_or_null(a->to.path) : NULL));
	if (a->to.kind == KURA_MASTER_TPM2)
		printf("the keyring is now wrapped by a new key sealed to the TPM2 at %s, in "
		       "%s/" KURA_MASTER_TPM2_NAME "; open the store with no key option\n",
			a->to.tcti ? a->to.tcti : KURA_TPM2_TCTI_DEFAULT, c->state_dir);
	else if (a->to.kind == KURA_MASTER_FILE)
		printf("the keyring is now wrapped by the key in %s; open the store with "
		       "--key-file %s (or move it to %s/" KURA_MASTER_FILE_NAME ")\n",
			a->to.path, a->to.path, c->state_dir);
	else
		printf("the keyring is now wrapped by a key derived from the passphrase in %s; "
		       "open the store with --passphrase-file\n",
			a->to.path);
	return KURA_EXIT_OK;
}

static int cmd_status(struct ctl *c)
{
	struct kura_key_status s = { 0 };
	struct kura_err err = { 0 };
	char t[32];
	int r;

	r = ctl_connect(c);
	if (r > 0)
		return r;
	r = be_key_status(c, &s, &err);
	ctl_disconnect(c);
	if (r < 0)
		return ctl_fail(r, &err);
	if (c->json) {
		json_t *keks = json_array(), *master;

		for (size_t i = 0; i < s.n_keks; i++)
			json_array_append_new(keks,
				json_pack("{s:I, s:s, s:I, s:b}", "id", (json_int_t)s.kek_ids[i],
					"created", kura_rfc3339(s.kek_created[i], t), "versions",
					(json_int_t)s.per_kek[i], "current",
					s.kek_ids[i] == s.current));
		master = s.master == KURA_MASTER_PASSPHRASE ?
			json_pack("{s:s, s:s, s:I, s:I}", "source", "passphrase", "kdf",
				"argon2id13", "opslimit", (json_int_t)s.kdf.opslimit, "memlimit",
				(json_int_t)s.kdf.memlimit) :
			json_pack("{s:s}", "source", kura_master_kind_name(s.master));
		r = ctl_print_json(json_pack("{s:o, s:I, s:o, s:I, s:I, s:I, s:i, s:I}", "master",
			master, "current_kek", (json_int_t)s.current, "keks", keks, "secrets",
			(json_int_t)s.n_secrets, "versions", (json_int_t)s.n_versions, "revision",
			(json_int_t)s.revision, "schema", s.schema, "max_value_size",
			(json_int_t)s.max_value_size));
		kura_key_status_done(&s);
		return r;
	}
	if (s.master == KURA_MASTER_PASSPHRASE)
		printf("master key:  derived from a passphrase (Argon2id, %llu passes, %llu MiB)\n",
			(unsigned long long)s.kdf.opslimit,
			(unsigned long long)(s.kdf.memlimit >> 20));
	else if (s.master == KURA_MASTER_TPM2)
		printf("master key:  sealed to the TPM2 (STATE_DIR/" KURA_MASTER_TPM2_NAME ")\n");
	else
		printf("master key:  key file\n");
	printf("current KEK: %u\nsecrets:     %llu (%llu versions)\nrevision:    %lld\n"
	       "schema:      %d\n\n",
		s.current, (unsigned long long)s.n_secrets, (unsigned long long)s.n_versions,
		(long long)s.revision, s.schema);
	printf("  %-5s %-20s %s\n", "KEK", "CREATED", "VERSIONS");
	for (size_t i = 0; i < s.n_keks; i++)
		printf("%c %-5u %-20s %llu\n", s.kek_ids[i] == s.current ? '*' : ' ', s.kek_ids[i],
			kura_rfc3339(s.kek_created[i], t), (unsigned long long)s.per_kek[i]);
	if (s.n_keks > 1)
		printf("\nmore than one KEK: a rotation was interrupted; run kuractl key rotate\n");
	kura_key_status_done(&s);
	return KURA_EXIT_OK;
}

int ctl_key(struct ctl *c, int argc, char **argv)
{
	struct key_args a = { 0 };
	const char *sub;
	int r;

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(key_usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? KURA_EXIT_USAGE : KURA_EXIT_OK;
	}
	sub = argv[1];
	r = parse(c, argc - 1, argv + 1, &a);
	if (r != 0)
		return r;
	if (a.help) {
		fputs(key_usage, stdout);
		return KURA_EXIT_OK;
	}
	if (a.extra)
		return ctl_usage("unexpected argument");
	if (a.max_value)
		return ctl_usage("--max-value-size belongs to init and config");
	if (a.has_to && strcmp(sub, "rekey") != 0)
		return ctl_usage("--new-key-file, --new-passphrase-file and --tpm2 belong to key "
				 "rekey");
	if (strcmp(sub, "rotate") == 0)
		return cmd_rotate(c);
	if (strcmp(sub, "rekey") == 0)
		return cmd_rekey(c, &a);
	if (strcmp(sub, "status") == 0)
		return cmd_status(c);
	return ctl_usage("unknown command 'key %s'", sub);
}

int ctl_config(struct ctl *c, int argc, char **argv)
{
	struct key_args a = { 0 };
	struct kura_err err = { 0 };
	uint64_t max;
	int r;

	r = parse(c, argc, argv, &a);
	if (r != 0)
		return r;
	if (a.help) {
		fputs(config_usage, stdout);
		return KURA_EXIT_OK;
	}
	if (a.extra)
		return ctl_usage("unexpected argument");
	if (a.has_to)
		return ctl_usage("--new-key-file and --new-passphrase-file belong to key rekey");
	r = ctl_connect(c);
	if (r > 0)
		return r;
	r = be_max_value(c, a.max_value, &max, &err);
	ctl_disconnect(c);
	if (r < 0)
		return ctl_fail(r, &err);
	if (c->json)
		return ctl_print_json(json_pack("{s:I}", "max_value_size", (json_int_t)max));
	printf("max-value-size: %llu\n", (unsigned long long)max);
	return KURA_EXIT_OK;
}

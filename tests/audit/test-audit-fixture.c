/* Logs written before the chain's key math moved into keys/ still verify and still take
 * appends: tests/audit/fixture-v1 is a log made by that code (audit-gen, 60 records, four
 * files, epochs of 20), with its starting key. No secret values: the records are made up. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "audit.h"
#include "json.h"
#include "tap.h"

static char root[] = "/tmp/kura-test-audit-fixture-XXXXXX";

static char *slurp(const char *path, size_t *ret_len)
{
	FILE *f = fopen(path, "rb");
	size_t cap = 1 << 16, n;
	char *buf;

	if (!f)
		return NULL;
	buf = malloc(cap + 1);
	n = buf ? fread(buf, 1, cap, f) : 0;
	fclose(f);
	if (!buf || n == cap)
		abort();
	buf[n] = 0;
	*ret_len = n;
	return buf;
}

static void copy_dir(const char *from, const char *to)
{
	DIR *d = opendir(from);
	struct dirent *de;

	if (!d || mkdir(to, 0700) < 0)
		abort();
	while ((de = readdir(d))) {
		char src[1300], dst[1300];
		size_t len;
		char *data;
		FILE *f;

		if (de->d_name[0] == '.' || strcmp(de->d_name, "starting-key") == 0)
			continue;
		snprintf(src, sizeof(src), "%s/%s", from, de->d_name);
		snprintf(dst, sizeof(dst), "%s/%s", to, de->d_name);
		data = slurp(src, &len);
		f = fopen(dst, "wb");
		if (!data || !f || fwrite(data, 1, len, f) != len || fclose(f) != 0)
			abort();
		chmod(dst, 0600);
		free(data);
	}
	closedir(d);
}

/* Whether file name in dir a is byte for byte a prefix of (or equal to) the one in b. */
static bool prefix_of(const char *a, const char *b, const char *name)
{
	char pa[1300], pb[1300];
	size_t la, lb;
	char *da, *db;
	bool ok;

	snprintf(pa, sizeof(pa), "%s/%s", a, name);
	snprintf(pb, sizeof(pb), "%s/%s", b, name);
	da = slurp(pa, &la);
	db = slurp(pb, &lb);
	ok = da && db && la <= lb && memcmp(da, db, la) == 0;
	free(da);
	free(db);
	return ok;
}

static json_t *event(int i)
{
	return json_pack("{s:s, s:s, s:s, s:i}", "event", "secret-get", "result",
		i % 5 ? "ok" : "denied", "secret", "db/password", "version", 1 + i % 3);
}

int main(void)
{
	static const char *const files[] = { "audit-000001.jsonl", "audit-000002.jsonl",
		"audit-000003.jsonl", "audit-000004.jsonl" };
	_cleanup_secbuf_ struct kura_secbuf *s = NULL, *wrong = NULL, *k = NULL;
	struct kura_audit_opts o = KURA_AUDIT_OPTS_DEFAULT;
	struct kura_audit_verdict v;
	struct kura_audit *a = NULL;
	char fixture[600], log[600], *text;
	uint64_t seq = 0, epoch;
	size_t len;
	bool same = true;
	int r = 0;
	json_t *j;

	if (kura_keys_init() < 0 || !mkdtemp(root))
		return 99;
	kura_json_init();
	snprintf(fixture, sizeof(fixture), "%s/audit/fixture-v1", SOURCE_DIR);
	snprintf(log, sizeof(log), "%s/log", root);
	copy_dir(fixture, log);

	snprintf(fixture + strlen(fixture), sizeof(fixture) - strlen(fixture), "/starting-key");
	text = slurp(fixture, &len);
	fixture[strlen(fixture) - strlen("/starting-key")] = 0;
	tap_ok(text && len == 45 && text[44] == '\n', "the fixture's starting key is one line");
	tap_is(kura_audit_key_parse((const uint8_t *)text, 44, &s), 0, "it parses as an audit key");
	tap_is(kura_audit_key_parse((const uint8_t *)text, 45, &wrong), -EINVAL,
		"with its newline it is refused (the caller trims)");
	text[3] = '*';
	tap_is(kura_audit_key_parse((const uint8_t *)text, 44, &wrong), -EINVAL,
		"a character that is not base64 is refused");
	free(text);
	tap_ok(wrong == NULL, "and nothing is handed back");

	tap_is(kura_audit_verify(log, s, NULL, &v), 0, "verify the old log");
	tap_ok(v.fault == KURA_AUDIT_OK && v.macs_checked, "it verifies with its starting key (%s)",
		kura_audit_fault_name(v.fault));
	tap_is((long long)v.good, 63, "all 63 records (60 and three epoch closings)");
	tap_is((long long)v.last_epoch, 3, "through epoch 3");
	tap_is((long long)v.files, 4, "over its four files");

	if (kura_secbuf_random(KURA_AUDIT_KEY_BYTES, &wrong) < 0)
		abort();
	tap_is(kura_audit_verify(log, wrong, NULL, &v), 0, "verify with another key");
	tap_ok(v.fault == KURA_AUDIT_EDITED && v.seq == 1, "fails at the first record (%s at %llu)",
		kura_audit_fault_name(v.fault), (unsigned long long)v.seq);

	/* The state file's key was written by the old code: open decodes it; appends chain on. */
	o.records_per_epoch = 20;
	o.seconds_per_epoch = UINT64_C(1) << 40; /* the fixture is old; its epoch is not due */
	o.fsync = false;
	tap_is(kura_audit_open(log, &o, &a), 0, "open the old log for appending");
	for (int i = 0; r == 0 && a && i < 40; i++) {
		j = event(i);
		r = kura_audit_append(a, j, &seq);
		json_decref(j);
	}
	tap_is(r, 0, "40 appends to it");
	kura_audit_close(a);

	tap_is(kura_audit_verify(log, s, NULL, &v), 0, "verify again");
	tap_ok(v.fault == KURA_AUDIT_OK, "old and new records verify as one chain (%s)",
		kura_audit_fault_name(v.fault));
	tap_is((long long)v.good, (long long)seq, "every record up to the last append's seq");
	tap_ok(v.last_epoch == 5 && seq == 63 + 40 + 2,
		"the key evolved twice more on the way (epoch %llu, seq %llu)",
		(unsigned long long)v.last_epoch, (unsigned long long)seq);
	for (size_t i = 0; i < 4; i++)
		same = same && prefix_of(fixture, log, files[i]);
	tap_ok(same, "the old records are left byte for byte as they were");

	/* The state now holds K(5) = evolve^6(S), written by the new code in the same form. */
	snprintf(log + strlen(log), sizeof(log) - strlen(log), "/state");
	text = slurp(log, &len);
	j = text ? json_loadb(text, len, 0, NULL) : NULL;
	epoch = j ? (uint64_t)json_integer_value(json_object_get(j, "epoch")) : 0;
	r = kura_secbuf_from(s->data, s->len, &k);
	for (uint64_t e = 0; r == 0 && e <= epoch; e++)
		r = kura_chain_evolve(&k);
	kura_secbuf_free(wrong);
	wrong = NULL;
	r = r == 0 && j ?
		kura_audit_key_parse((const uint8_t *)json_string_value(json_object_get(j, "key")),
			44, &wrong) :
		-1;
	tap_ok(epoch == 5 && r == 0 && kura_secbuf_equal(k, wrong),
		"the state's key is K(%llu), in base64 as before", (unsigned long long)epoch);
	tap_ok(text && strncmp(text, "{\"version\":1,\"epoch\":5,\"key\":\"", 30) == 0 &&
			text[30 + 44] == '"' && text[len - 1] == '\n',
		"the state file keeps its format");
	json_decref(j);
	free(text);

	tap_rmtree(root);
	return tap_done();
}

/* Talking to the broker's workload API. Touches plaintext: a secret's value is the raw body,
 * kept in the guarded buffer it was read into; from an older kurad's JSON its base64 is decoded
 * from the guarded answer straight into a guarded buffer, and jansson sees it emptied. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "api.h"
#include "base64.h"
#include "clock.h"
#include "http.h"
#include "name.h"
#include "number.h"

/* What jansson is given of a refusal, or of a secret's answer besides its value: kurad's are a
 * few hundred bytes, and a tree costs many times the text (a hostile 4 MiB of "0," is 100 MiB). */
#define MAX_PARSED_BODY (64u * 1024u)

/* Between tries while a broker restarts: 50 ms, doubling, up to 500 ms. */
#define RETRY_FIRST_MS 50
#define RETRY_STEP_MAX_MS 500

/* What a restarting kurad looks like: its socket gone or refusing (between one kurad and the
 * next), a connection closed unanswered (one stopping), or 503 (one draining). Not a timeout
 * (that took the whole --timeout already), nor a missing run directory (the mount is missing:
 * waiting cannot help). */
static bool restarting(const struct kura_broker *b, int r, int status)
{
	if (r == 0)
		return status == 503;
	if (r == -ENOENT)
		return kura_http_dir_present(b->socket_path);
	return r == -ECONNREFUSED || r == -ECONNRESET || r == -EPIPE;
}

/* GET path: a 2xx answer's body (and the headers in want), or a failure from the broker's
 * status and message. A kurad that is restarting is tried again for up to b->retry_ms (a GET
 * changes nothing, so a second one is safe), each try with the whole timeout. */
static int get(const struct kura_broker *b, const char *path, const char *accept, size_t max_body,
	struct kura_http_header *want, struct kura_secbuf **ret, struct kura_fail *f)
{
	_cleanup_secbuf_ struct kura_secbuf *body = NULL;
	_cleanup_(json_decrefp) json_t *j = NULL;
	int64_t until = kura_clock_ms() + b->retry_ms;
	int step = RETRY_FIRST_MS;
	const char *msg;
	int r, status, ex;

	for (;;) {
		struct kura_fail one = { 0 };

		kura_secbuf_free(TAKE_PTR(body));
		status = 0;
		r = kura_http_get(b->socket_path, path, accept, b->timeout_ms, max_body, want,
			&status, &body, &one);
		if (!restarting(b, r, status) || kura_clock_ms() + step > until) {
			/* The last try's failure, kept as kura_fail_set keeps the first. */
			if (r < 0 && !f->exit)
				*f = one;
			break;
		}
		usleep((useconds_t)step * 1000);
		step = step * 2 > RETRY_STEP_MAX_MS ? RETRY_STEP_MAX_MS : step * 2;
	}
	if (r < 0)
		return r;
	if (status >= 200 && status < 300) {
		*ret = TAKE_PTR(body);
		return 0;
	}
	/* Refusals never carry a value; kura_fail_set escapes the message for the terminal. */
	if (body->len <= MAX_PARSED_BODY)
		j = json_loadb((const char *)body->data, body->len, JSON_REJECT_DUPLICATES, NULL);
	msg = json_string_value(json_object_get(j, "message"));
	if (!msg)
		msg = "(no message)";
	switch (status) {
	case 403:
		ex = KURA_EXIT_REFUSED;
		r = -EACCES;
		break;
	case 429:
	case 503:
		ex = KURA_EXIT_UNAVAILABLE;
		r = -EAGAIN;
		break;
	case 404:
		ex = KURA_EXIT_PROTOCOL;
		r = -ENOENT;
		break;
	default:
		ex = KURA_EXIT_PROTOCOL;
		r = -EPROTO;
	}
	return kura_fail_set(f, r, ex, "%s: the broker answered %d: %s", path, status, msg);
}

int kura_api_get_json(const struct kura_broker *b, const char *path, json_t **ret,
	struct kura_fail *f)
{
	_cleanup_secbuf_ struct kura_secbuf *body = NULL;
	json_t *j;
	int r;

	r = get(b, path, NULL, KURA_API_MAX_BODY, NULL, &body, f);
	if (r < 0)
		return r;
	j = json_loadb((const char *)body->data, body->len, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(j)) {
		json_decref(j);
		return kura_fail_set(f, -EBADMSG, KURA_EXIT_PROTOCOL,
			"%s: the broker's answer is not a JSON object", path);
	}
	*ret = j;
	return 0;
}

static int get_version(const json_t *o, uint64_t *ret)
{
	const json_t *v = json_object_get(o, "version");

	if (!json_is_integer(v) || json_integer_value(v) < 1)
		return -EBADMSG;
	*ret = (uint64_t)json_integer_value(v);
	return 0;
}

/* A base64 digit or padding: where a base64 string in an answer ends. */
static bool b64_char(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		c == '+' || c == '/' || c == '=';
}

int kura_secret_set_add(struct kura_secret_set *set, const char *name, uint64_t version)
{
	struct kura_secret *items;
	char *copy;

	items = reallocarray(set->items, set->n + 1, sizeof(*items)); /* names only, no values */
	if (!items)
		return -ENOMEM;
	set->items = items;
	copy = strdup(name);
	if (!copy)
		return -ENOMEM;
	set->items[set->n++] = (struct kura_secret){ .name = copy, .version = version };
	return 0;
}

void kura_secret_set_done(struct kura_secret_set *set)
{
	for (size_t i = 0; i < set->n; i++) {
		free(set->items[i].name);
		kura_secbuf_free(set->items[i].value);
	}
	free(set->items);
	*set = (struct kura_secret_set){ 0 };
}

int kura_api_parse_list(const json_t *j, struct kura_secret_set *ret, struct kura_fail *f)
{
	struct kura_secret_set set = { 0 };
	const json_t *arr;
	size_t i;
	json_t *e;
	int r;

	arr = json_object_get(j, "secrets");
	if (!json_is_array(arr))
		return kura_fail_set(f, -EBADMSG, KURA_EXIT_PROTOCOL,
			"/v1/secrets: no \"secrets\" array in the broker's answer");
	if (json_array_size(arr) > KURA_SET_MAX)
		return kura_fail_set(f, -E2BIG, KURA_EXIT_PROTOCOL,
			"/v1/secrets: the broker lists "
			"%zu secrets for this workload, over kura's limit of %d a set; nothing fetched "
			"(name the ones this app needs with --only)",
			json_array_size(arr), KURA_SET_MAX);
	json_array_foreach(arr, i, e) {
		const char *name = json_string_value(json_object_get(e, "name"));
		uint64_t version;

		/* The broker's names become paths here: hold them to the naming rules. */
		if (!name || kura_name_invalid(name, strlen(name)) ||
			get_version(e, &version) < 0) {
			kura_secret_set_done(&set);
			return kura_fail_set(f, -EBADMSG, KURA_EXIT_PROTOCOL,
				"/v1/secrets: entry %zu is not a valid name and version", i);
		}
		r = kura_secret_set_add(&set, name, version);
		if (r < 0) {
			kura_secret_set_done(&set);
			return kura_fail_set(f, r, KURA_EXIT_SYSTEM, "out of memory");
		}
	}
	*ret = set;
	return 0;
}

int kura_api_list(const struct kura_broker *b, struct kura_secret_set *ret, struct kura_fail *f)
{
	_cleanup_(json_decrefp) json_t *j = NULL;
	int r;

	r = kura_api_get_json(b, "/v1/secrets", &j, f);
	if (r < 0)
		return r;
	return kura_api_parse_list(j, ret, f);
}

/* The string that starts at p[*i] (its opening quote), skipped; escapes are left to jansson. */
static int skip_string(const uint8_t *p, size_t len, size_t *i)
{
	for (size_t k = *i + 1; k < len; k++) {
		if (p[k] == '"') {
			*i = k + 1;
			return 0;
		}
		if (p[k] < 0x20)
			return -EBADMSG;
		if (p[k] == '\\')
			k++;
	}
	return -EBADMSG;
}

/* Any JSON value at p[*i], skipped by its brackets and strings; jansson checks the grammar. */
static int skip_value(const uint8_t *p, size_t len, size_t *i)
{
	size_t depth = 0;

	while (*i < len) {
		uint8_t c = p[*i];

		if (c == '"') {
			if (skip_string(p, len, i) < 0)
				return -EBADMSG;
		} else if (c == '{' || c == '[') {
			if (++depth > 64)
				return -EBADMSG;
			(*i)++;
		} else if (c == '}' || c == ']' || c == ',') {
			if (depth == 0)
				return 0;
			if (c != ',')
				depth--;
			(*i)++;
		} else {
			(*i)++;
		}
		if (depth == 0 &&
			(c == '"' || c == '}' || c == ']')) /* a string or a container ended */
			return 0;
	}
	return depth == 0 ? 0 : -EBADMSG;
}

static void skip_ws(const uint8_t *p, size_t len, size_t *i)
{
	while (*i < len && (p[*i] == ' ' || p[*i] == '\t' || p[*i] == '\n' || p[*i] == '\r'))
		(*i)++;
}

/*
 * Where the top-level member "value" of the JSON object in p holds its string, found without a
 * JSON library: jansson would lex a value of megabytes a byte at a time and copy it twice. The
 * string must be base64 characters only (what kurad sends; no escapes). Sets *ret_off and
 * *ret_len to its contents; the caller empties it in place and lets jansson check the whole
 * document, so a grammar this scan is lax about is still refused. -EBADMSG if p is not an
 * object with exactly one such member.
 */
static int find_value(const uint8_t *p, size_t len, size_t *ret_off, size_t *ret_len)
{
	size_t i = 0, key, off = 0, vlen = 0;
	bool found = false;

	skip_ws(p, len, &i);
	if (i >= len || p[i] != '{')
		return -EBADMSG;
	i++;
	for (;;) {
		bool is_value;

		skip_ws(p, len, &i);
		if (i >= len || p[i] != '"')
			return -EBADMSG;
		key = i + 1;
		if (skip_string(p, len, &i) < 0)
			return -EBADMSG;
		is_value = i - key - 1 == 5 && memcmp(p + key, "value", 5) == 0;

		skip_ws(p, len, &i);
		if (i >= len || p[i] != ':')
			return -EBADMSG;
		i++;
		skip_ws(p, len, &i);
		if (is_value) {
			if (found || i >= len || p[i] != '"')
				return -EBADMSG;
			off = ++i;
			while (i < len && b64_char(p[i]))
				i++;
			if (i >= len || p[i] != '"')
				return -EBADMSG;
			vlen = i - off;
			i++;
			found = true;
		} else if (skip_value(p, len, &i) < 0) {
			return -EBADMSG;
		}
		skip_ws(p, len, &i);
		if (i < len && p[i] == ',') {
			i++;
			continue;
		}
		if (i < len && p[i] == '}')
			break;
		return -EBADMSG;
	}
	if (!found)
		return -EBADMSG;
	*ret_off = off;
	*ret_len = vlen;
	return 0;
}

int kura_api_parse_secret(struct kura_secbuf *body, const char *name,
	struct kura_secbuf **ret_value, uint64_t *ret_version)
{
	_cleanup_secbuf_ struct kura_secbuf *v = NULL;
	_cleanup_(json_decrefp) json_t *j = NULL;
	const char *got, *empty;
	size_t off, b64_len;
	uint64_t version;
	int r;

	if (find_value(body->data, body->len, &off, &b64_len) < 0)
		return -EBADMSG;
	r = kura_secbuf_new(b64_len / 4 * 3, &v);
	if (r < 0)
		return r;
	if (kura_base64_decode((const char *)body->data + off, b64_len, v->data, v->cap, &v->len) <
		0)
		return -EILSEQ;
	/* The rest of the document, with "value" emptied, goes to jansson for a full check. */
	memmove(body->data + off, body->data + off + b64_len, body->len - off - b64_len);
	body->len -= b64_len;
	explicit_bzero(body->data + body->len, b64_len);
	if (body->len > MAX_PARSED_BODY)
		return -EFBIG;
	j = json_loadb((const char *)body->data, body->len, JSON_REJECT_DUPLICATES, NULL);
	got = json_string_value(json_object_get(j, "name"));
	empty = json_string_value(json_object_get(j, "value"));
	if (!json_is_object(j) || !got || strcmp(got, name) != 0 || !empty || *empty ||
		get_version(j, &version) < 0)
		return -EPROTO;
	*ret_value = TAKE_PTR(v);
	*ret_version = version;
	return 0;
}

void kura_api_secret_headers(struct kura_http_header want[KURA_SECRET_HEADERS + 1])
{
	static const char *const names[KURA_SECRET_HEADERS + 1] = {
		[KURA_SECRET_TYPE] = "Content-Type",
		[KURA_SECRET_VERSION] = "Kura-Version",
		[KURA_SECRET_FINGERPRINT] = "Kura-Fingerprint",
		[KURA_SECRET_CREATED] = "Kura-Created",
	};

	for (size_t i = 0; i <= KURA_SECRET_HEADERS; i++)
		want[i] = (struct kura_http_header){ .name = names[i] };
}

/* Whether the media type in a Content-Type value is type (case-insensitive), parameters after
 * a ';' aside. */
static bool media_type_is(const char *value, const char *type)
{
	size_t n = strlen(type);

	if (strncasecmp(value, type, n) != 0)
		return false;
	value += n;
	value += strspn(value, " \t");
	return *value == '\0' || *value == ';';
}

/* Whether s matches the pattern, where 'd' is any digit and 'x' a lowercase hex digit. */
static bool shaped(const char *s, const char *pattern)
{
	for (; *pattern; s++, pattern++) {
		bool ok = *pattern == 'd' ? (*s >= '0' && *s <= '9') :
			*pattern == 'x'   ? ((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')) :
					    *s == *pattern;

		if (!ok)
			return false;
	}
	return *s == '\0';
}

/* RFC 3339 date-time: "2026-01-01T00:00:00", optional fraction, then Z or a numeric offset. */
static bool rfc3339(const char *s)
{
	char date[20];

	if (strlen(s) < sizeof(date) - 1)
		return false;
	memcpy(date, s, sizeof(date) - 1);
	date[sizeof(date) - 1] = '\0';
	if (!shaped(date, "dddd-dd-ddTdd:dd:dd"))
		return false;
	s += sizeof(date) - 1;
	if (*s == '.') {
		size_t digits = strspn(++s, "0123456789");

		if (digits == 0)
			return false;
		s += digits;
	}
	return strcmp(s, "Z") == 0 || ((*s == '+' || *s == '-') && shaped(s + 1, "dd:dd"));
}

/* The raw form's headers: the version, and a fingerprint and time that are well-formed. */
static int raw_headers(const struct kura_http_header *want, uint64_t *ret_version,
	const char **ret_why)
{
	const struct kura_http_header *v = &want[KURA_SECRET_VERSION];
	const struct kura_http_header *fp = &want[KURA_SECRET_FINGERPRINT];
	const struct kura_http_header *c = &want[KURA_SECRET_CREATED];

	if (!v->found || !kura_parse_u64(v->value, 1, UINT64_MAX, ret_version))
		*ret_why = v->name;
	else if (!fp->found || !shaped(fp->value, "b2:xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"))
		*ret_why = fp->name;
	else if (!c->found || !rfc3339(c->value))
		*ret_why = c->name;
	return *ret_why ? -EBADMSG : 0;
}

int kura_api_take_secret(const struct kura_http_header *want, struct kura_secbuf **body,
	const char *name, struct kura_secbuf **ret_value, uint64_t *ret_version,
	const char **ret_why)
{
	const struct kura_http_header *type = &want[KURA_SECRET_TYPE];
	uint64_t version;
	int r;

	*ret_why = NULL;
	if (type->found && media_type_is(type->value, "application/octet-stream")) {
		r = raw_headers(want, &version, ret_why);
		if (r < 0)
			return r;
		*ret_value = TAKE_PTR(*body);
		*ret_version = version;
		return 0;
	}
	if (type->found && media_type_is(type->value, "application/json"))
		return kura_api_parse_secret(*body, name, ret_value, ret_version);
	return -EMEDIUMTYPE;
}

int kura_api_fetch(const struct kura_broker *b, struct kura_secret *s, struct kura_fail *f)
{
	_cleanup_secbuf_ struct kura_secbuf *body = NULL;
	char path[sizeof("/v1/secrets/") + KURA_NAME_MAX];
	struct kura_http_header want[KURA_SECRET_HEADERS + 1];
	struct kura_secbuf *v = NULL;
	const char *why;
	uint64_t version;
	int r;

	why = kura_name_invalid(s->name, strlen(s->name));
	if (why)
		return kura_fail_set(f, -EINVAL, KURA_EXIT_USAGE, "'%s': %s", s->name, why);
	snprintf(path, sizeof(path), "/v1/secrets/%s", s->name);
	kura_api_secret_headers(want);
	r = get(b, path, "application/octet-stream", KURA_API_MAX_SECRET_BODY, want, &body, f);
	if (r < 0)
		return r;
	r = kura_api_take_secret(want, &body, s->name, &v, &version, &why);
	if (r == -ENOMEM)
		return kura_fail_set(f, r, KURA_EXIT_SYSTEM, "out of (locked) memory");
	if (r == -EMEDIUMTYPE)
		return kura_fail_set(f, -EBADMSG, KURA_EXIT_PROTOCOL,
			"%s: the broker's answer is "
			"of type '%s', neither application/octet-stream nor application/json",
			path,
			want[KURA_SECRET_TYPE].found ? want[KURA_SECRET_TYPE].value : "(none)");
	if (r < 0 && why)
		return kura_fail_set(f, r, KURA_EXIT_PROTOCOL,
			"%s: the broker's raw answer lacks a "
			"valid %s header",
			path, why);
	if (r == -EBADMSG)
		return kura_fail_set(f, r, KURA_EXIT_PROTOCOL,
			"%s: the broker's answer is not a JSON object with one base64 \"value\"",
			path);
	if (r == -EILSEQ)
		return kura_fail_set(f, -EBADMSG, KURA_EXIT_PROTOCOL,
			"%s: the value is not valid base64", path);
	if (r == -EFBIG)
		return kura_fail_set(f, r, KURA_EXIT_PROTOCOL,
			"%s: the broker's answer holds "
			"over %u KiB besides the value",
			path, MAX_PARSED_BODY / 1024);
	if (r < 0)
		return kura_fail_set(f, -EBADMSG, KURA_EXIT_PROTOCOL,
			"%s: the broker's answer lacks the name, version or value", path);
	kura_secbuf_free(s->value);
	s->value = v;
	s->version = version;
	return 0;
}

/* Docker Engine API client over a Unix socket (libcurl): container inspection and the container
 * event stream, for Docker and Podman alike. No secrets; every byte from the runtime is bounded
 * and validated before it becomes part of an identity. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>
#include <time.h>

#include <curl/curl.h>

#include "clock.h"
#include "json.h"
#include "runtime.h"

/* The oldest API version both Docker 20.10 and Podman 4's compat service speak with the fields
 * we read. */
#define API "/v1.41"

/* Podman matches these against its own verbs before translating them for the compat API: it
 * sends "die" only when asked for "died", and calls destroy "remove". Docker ignores verbs it
 * does not know. */
#define EVENT_FILTER                                                                               \
	"{\"type\":[\"container\"],\"event\":[\"die\",\"died\",\"destroy\",\"remove\","            \
	"\"rename\",\"stop\",\"kill\",\"start\"]}"

#define WATCH_CONNECT_MS 2000L
#define WATCH_POLL_MS 100
#define MAX_ACTION 64
#define MAX_DIGEST 1024

struct kura_runtime {
	char *name;
	char *sock; /* NULL for a remote runtime: tp does its I/O */
	const struct kura_runtime_transport *tp;
	void *tp_ctx;
	unsigned tp_index;
};

int kura_runtime_global_init(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -EIO;
}

static bool is_lower_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

bool kura_runtime_id_valid(const char *s)
{
	return s && strnlen(s, 65) == 64 && is_lower_hex(s, 64);
}

static bool image_id_valid(const char *s)
{
	return strncmp(s, "sha256:", 7) == 0 && kura_runtime_id_valid(s + 7);
}

static bool is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* Docker's and Podman's own rule for container names: [a-zA-Z0-9][a-zA-Z0-9_.-]*. */
static bool name_valid(const char *s, size_t n)
{
	if (n == 0 || n > KURA_RUNTIME_MAX_NAME || !is_alnum(s[0]))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!is_alnum(s[i]) && s[i] != '_' && s[i] != '.' && s[i] != '-')
			return false;
	return true;
}

/* "<repository>@sha256:<64 hex>", the repository printable ASCII without spaces or '@'. */
static bool digest_valid(const char *s, size_t n)
{
	const char *at = memchr(s, '@', n);
	size_t repo_len;

	if (!at || n > MAX_DIGEST)
		return false;
	repo_len = (size_t)(at - s);
	if (repo_len == 0 || n - repo_len - 1 != 7 + 64)
		return false;
	for (size_t i = 0; i < repo_len; i++)
		if (s[i] <= ' ' || s[i] > '~')
			return false;
	return strncmp(at + 1, "sha256:", 7) == 0 && is_lower_hex(at + 8, 64);
}

/* A runtime's own name, as configured: 1-32 of [a-z0-9_-]. */
static bool rt_name_valid(const char *name)
{
	size_t n = name ? strnlen(name, 33) : 0;

	return n > 0 && n <= 32 && strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

int kura_runtime_new(const char *name, const char *endpoint, struct kura_runtime **ret)
{
	const size_t sun_path_len = sizeof(((struct sockaddr_un *)NULL)->sun_path);
	struct kura_runtime *rt;
	const char *path;

	if (!rt_name_valid(name) || !endpoint)
		return -EINVAL;
	if (strncmp(endpoint, "unix:", 5) != 0)
		return -EINVAL;
	path = endpoint + 5;
	if (path[0] != '/' || strnlen(path, sun_path_len) >= sun_path_len)
		return -EINVAL;

	rt = calloc(1, sizeof(*rt));
	if (!rt)
		return -ENOMEM;
	rt->name = strdup(name);
	rt->sock = strdup(path);
	if (!rt->name || !rt->sock) {
		kura_runtime_free(rt);
		return -ENOMEM;
	}
	*ret = rt;
	return 0;
}

int kura_runtime_new_remote(const char *name, const struct kura_runtime_transport *tp, void *ctx,
	unsigned index, struct kura_runtime **ret)
{
	struct kura_runtime *rt;

	if (!rt_name_valid(name) || !tp || !tp->get || !tp->stream)
		return -EINVAL;
	rt = calloc(1, sizeof(*rt));
	if (!rt)
		return -ENOMEM;
	rt->name = strdup(name);
	if (!rt->name) {
		free(rt);
		return -ENOMEM;
	}
	rt->tp = tp;
	rt->tp_ctx = ctx;
	rt->tp_index = index;
	*ret = rt;
	return 0;
}

void kura_runtime_free(struct kura_runtime *rt)
{
	if (!rt)
		return;
	free(rt->name);
	free(rt->sock);
	free(rt);
}

const char *kura_runtime_name(const struct kura_runtime *rt)
{
	return rt->name;
}

static void labels_done(struct kura_labels *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->keys[i]);
		free(l->values[i]);
	}
	free(l->keys);
	free(l->values);
	*l = (struct kura_labels){ 0 };
}

static void digests_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void kura_container_free(struct kura_container *c)
{
	if (!c)
		return;
	free(c->id);
	free(c->name);
	free(c->image_id);
	digests_free(c->repo_digests, c->n_digests);
	labels_done(&c->labels);
	labels_done(&c->image_labels);
	free(c);
}

void kura_image_free(struct kura_image *img)
{
	if (!img)
		return;
	free(img->id);
	digests_free(img->repo_digests, img->n_digests);
	labels_done(&img->labels);
	free(img);
}

const char *kura_labels_get(const struct kura_labels *l, const char *key)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->keys[i], key) == 0)
			return l->values[i];
	return NULL;
}

/* ---- one bounded request ---- */

struct body {
	char *data;
	size_t len;
	size_t cap;
	bool too_big;
	bool nomem;
};

/* Stop reading (and fail the transfer) at the cap, so a runtime cannot make us buffer without
 * bound. */
static size_t body_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct body *b = userdata;
	size_t n = size * nmemb;

	if (n > KURA_RUNTIME_MAX_BODY - b->len) {
		b->too_big = true;
		return 0;
	}
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 16384;
		char *p;

		while (cap < b->len + n)
			cap *= 2;
		if (cap > KURA_RUNTIME_MAX_BODY)
			cap = KURA_RUNTIME_MAX_BODY;
		p = realloc(b->data, cap);
		if (!p) {
			b->nomem = true;
			return 0;
		}
		b->data = p;
		b->cap = cap;
	}
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	return n;
}

static int curl_error(CURL *h, CURLcode rc)
{
	long os_errno = 0;

	switch (rc) {
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_COULDNT_CONNECT:
		curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &os_errno);
		return os_errno == ENOENT ? -EHOSTDOWN : -ECONNREFUSED;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	case CURLE_FILESIZE_EXCEEDED:
		return -EMSGSIZE;
	case CURLE_GOT_NOTHING:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_PARTIAL_FILE:
		return -ECONNRESET;
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_UNSUPPORTED_PROTOCOL: /* an HTTP/0.9 "reply": bytes without a status line */
	case CURLE_BAD_CONTENT_ENCODING:
		return -EPROTO;
	default:
		return -EIO;
	}
}

/* An easy handle for GET `path` on rt's socket, with everything that must hold for every request:
 * plain HTTP only, no proxy from the environment, no HTTP/0.9, no signals (threads). */
static int handle_new(const struct kura_runtime *rt, const char *path, CURL **ret)
{
	char url[1024];
	CURL *h;
	int n;

	n = snprintf(url, sizeof(url), "http://localhost%s", path);
	if (n < 0 || (size_t)n >= sizeof(url))
		return -EINVAL;
	h = curl_easy_init();
	if (!h)
		return -ENOMEM;
	if (curl_easy_setopt(h, CURLOPT_URL, url) != CURLE_OK ||
		curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, rt->sock) != CURLE_OK ||
#if LIBCURL_VERSION_NUM >= 0x075500
		curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http") != CURLE_OK ||
#else
		curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)CURLPROTO_HTTP) != CURLE_OK ||
#endif
		curl_easy_setopt(h, CURLOPT_PROXY, "") != CURLE_OK ||
		curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
		curl_easy_setopt(h, CURLOPT_HTTP09_ALLOWED, 0L) != CURLE_OK ||
		curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK) {
		curl_easy_cleanup(h);
		return -ENOMEM;
	}
	*ret = h;
	return 0;
}

/* GET path, finished by `deadline` (kura_clock_ms() clock). The status into *ret_status and the
 * body (malloc'd, NUL-terminated for convenience, length without it) into *ret_body and *ret_len.
 */
static int http_get(const struct kura_runtime *rt, const char *path, int64_t deadline,
	long *ret_status, char **ret_body, size_t *ret_len)
{
	struct body b = { 0 };
	int64_t left = deadline - kura_clock_ms();
	long status = 0;
	CURLcode rc;
	CURL *h;
	int r;

	if (left <= 0)
		return -ETIMEDOUT;
	if (rt->tp)
		return rt->tp->get(rt->tp_ctx, rt->tp_index, path, deadline, ret_status, ret_body,
			ret_len);
	r = handle_new(rt, path, &h);
	if (r < 0)
		return r;
	if (curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)left) != CURLE_OK ||
		curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)left) != CURLE_OK ||
		curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)KURA_RUNTIME_MAX_BODY) !=
			CURLE_OK ||
		curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, body_write) != CURLE_OK ||
		curl_easy_setopt(h, CURLOPT_WRITEDATA, &b) != CURLE_OK) {
		curl_easy_cleanup(h);
		return -ENOMEM;
	}
	rc = curl_easy_perform(h);
	if (b.too_big)
		r = -EMSGSIZE;
	else if (b.nomem)
		r = -ENOMEM;
	else if (rc != CURLE_OK)
		r = curl_error(h, rc);
	else if (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK)
		r = -EIO;
	curl_easy_cleanup(h);
	if (r == 0 && body_write("", 1, 1, &b) != 1) /* the NUL */
		r = b.too_big ? -EMSGSIZE : -ENOMEM;
	if (r < 0) {
		free(b.data);
		return r;
	}
	*ret_status = status;
	*ret_body = b.data;
	*ret_len = b.len - 1;
	return 0;
}

/* A path for the runtime's API: absolute, printable ASCII without spaces, as the URL takes it. */
static bool path_valid(const char *path)
{
	size_t n = path ? strnlen(path, KURA_RUNTIME_MAX_PATH + 1) : 0;

	if (n == 0 || n > KURA_RUNTIME_MAX_PATH || path[0] != '/')
		return false;
	for (size_t i = 0; i < n; i++)
		if (path[i] <= ' ' || path[i] > '~')
			return false;
	return true;
}

int kura_runtime_get(struct kura_runtime *rt, const char *path, unsigned timeout_ms,
	long *ret_status, char **ret_body, size_t *ret_len)
{
	if (!rt || !path_valid(path) || timeout_ms == 0)
		return -EINVAL;
	return http_get(rt, path, kura_clock_ms() + timeout_ms, ret_status, ret_body, ret_len);
}

static int status_error(long status)
{
	if (status == 404)
		return -ENOENT;
	return status >= 500 && status <= 599 ? -EIO : -EPROTO;
}

/* ---- inspect ---- */

/* obj[key] as a string of 1..max bytes into *ret (borrowed) and *ret_len. */
static int get_str(const json_t *obj, const char *key, size_t max, const char **ret,
	size_t *ret_len)
{
	const json_t *s = json_object_get(obj, key);
	size_t n;

	if (!json_is_string(s))
		return -EPROTO;
	n = json_string_length(s);
	/* jansson refuses \u0000 unless asked, but the length is what bounds us: check both. */
	if (n == 0 || n > max || strlen(json_string_value(s)) != n)
		return -EPROTO;
	*ret = json_string_value(s);
	*ret_len = n;
	return 0;
}

static int dup_str(const json_t *s, size_t max, char **ret)
{
	size_t n = json_string_length(s);

	if (n > max || strlen(json_string_value(s)) != n)
		return -EPROTO;
	*ret = strndup(json_string_value(s), n);
	return *ret ? 0 : -ENOMEM;
}

/* A Config.Labels object (or null: none) into ret, which must be empty. */
static int parse_labels(const json_t *labels, struct kura_labels *ret)
{
	struct kura_labels l = { 0 };
	const char *key;
	json_t *value;
	size_t n;
	int r = 0;

	if (json_is_null(labels))
		return 0;
	if (!json_is_object(labels))
		return -EPROTO;
	n = json_object_size(labels);
	if (n == 0)
		return 0;
	if (n > KURA_RUNTIME_MAX_LABELS)
		return -EPROTO;
	l.keys = calloc(n, sizeof(char *));
	l.values = calloc(n, sizeof(char *));
	if (!l.keys || !l.values) {
		labels_done(&l);
		return -ENOMEM;
	}
	json_object_foreach((json_t *)labels, key, value) {
		size_t klen = strlen(key);

		if (klen == 0 || klen > KURA_RUNTIME_MAX_LABEL || !json_is_string(value)) {
			r = -EPROTO;
			break;
		}
		l.keys[l.n] = strndup(key, klen);
		if (!l.keys[l.n]) {
			r = -ENOMEM;
			break;
		}
		r = dup_str(value, KURA_RUNTIME_MAX_LABEL, &l.values[l.n]);
		if (r < 0) {
			free(l.keys[l.n]);
			break;
		}
		l.n++;
	}
	if (r < 0) {
		labels_done(&l);
		return r;
	}
	*ret = l;
	return 0;
}

/* obj.Config.Labels, which must be there (null or an object): a document without it could not
 * say which labels are whose. */
static int parse_config_labels(const json_t *obj, struct kura_labels *ret)
{
	const json_t *config = json_object_get(obj, "Config");
	const json_t *labels = json_is_object(config) ? json_object_get(config, "Labels") : NULL;

	return labels ? parse_labels(labels, ret) : -EPROTO;
}

/* A RepoDigests array (or null: none) of "repo@sha256:<hex>". */
static int parse_digests(const json_t *digests, char ***ret, size_t *ret_n)
{
	const json_t *d;
	size_t n, i;
	char **v;
	int r = 0;

	if (json_is_null(digests))
		return 0;
	if (!json_is_array(digests) || json_array_size(digests) > KURA_RUNTIME_MAX_DIGESTS)
		return -EPROTO;
	n = json_array_size(digests);
	if (n == 0)
		return 0;
	v = calloc(n, sizeof(char *));
	if (!v)
		return -ENOMEM;
	json_array_foreach(digests, i, d) {
		if (!json_is_string(d) ||
			!digest_valid(json_string_value(d), json_string_length(d)) ||
			strlen(json_string_value(d)) != json_string_length(d)) {
			r = -EPROTO;
			break;
		}
		v[i] = strdup(json_string_value(d));
		if (!v[i]) {
			r = -ENOMEM;
			break;
		}
	}
	if (r < 0) {
		digests_free(v, n);
		return r;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

int kura_runtime_parse_container(const char *json, size_t len, struct kura_container **ret)
{
	_cleanup_json_ json_t *j = NULL;
	struct kura_container *c;
	const json_t *state, *running, *pid;
	const char *s;
	size_t n;
	int r;

	r = kura_json_load((const uint8_t *)json, len, &j);
	if (r < 0)
		return r;
	state = json_object_get(j, "State");
	if (!json_is_object(state))
		return -EPROTO;
	running = json_object_get(state, "Running");
	pid = json_object_get(state, "Pid");
	if (!json_is_boolean(running) || !json_is_integer(pid) || json_integer_value(pid) < 0 ||
		json_integer_value(pid) > INT32_MAX)
		return -EPROTO;
	/* A running container has an init process; a stopped one's pid means nothing. */
	if (json_is_true(running) && json_integer_value(pid) == 0)
		return -EPROTO;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->running = json_is_true(running);
	c->pid = c->running ? (pid_t)json_integer_value(pid) : 0;
	r = get_str(j, "Id", 64, &s, &n);
	if (r < 0 || !kura_runtime_id_valid(s)) {
		r = -EPROTO;
		goto fail;
	}
	c->id = strndup(s, n);
	if (!c->id) {
		r = -ENOMEM;
		goto fail;
	}
	r = get_str(j, "Name", KURA_RUNTIME_MAX_NAME + 1, &s, &n);
	if (r < 0 || s[0] != '/' || !name_valid(s + 1, n - 1)) {
		r = -EPROTO;
		goto fail;
	}
	c->name = strndup(s + 1, n - 1);
	if (!c->name) {
		r = -ENOMEM;
		goto fail;
	}
	r = get_str(j, "Image", 7 + 64, &s, &n);
	if (r < 0 || !image_id_valid(s)) {
		r = -EPROTO;
		goto fail;
	}
	c->image_id = strndup(s, n);
	if (!c->image_id) {
		r = -ENOMEM;
		goto fail;
	}
	r = parse_config_labels(j, &c->labels);
	if (r < 0)
		goto fail;
	*ret = c;
	return 0;
fail:
	kura_container_free(c);
	return r;
}

int kura_runtime_parse_image(const char *json, size_t len, struct kura_image **ret)
{
	_cleanup_json_ json_t *j = NULL;
	struct kura_image *img;
	const char *s;
	size_t n;
	int r;

	r = kura_json_load((const uint8_t *)json, len, &j);
	if (r < 0)
		return r;
	if (get_str(j, "Id", 7 + 64, &s, &n) < 0 || !image_id_valid(s))
		return -EPROTO;
	img = calloc(1, sizeof(*img));
	if (!img)
		return -ENOMEM;
	img->id = strndup(s, n);
	if (!img->id) {
		r = -ENOMEM;
		goto fail;
	}
	r = parse_digests(json_object_get(j, "RepoDigests"), &img->repo_digests, &img->n_digests);
	if (r == 0)
		r = parse_config_labels(j, &img->labels);
	if (r < 0)
		goto fail;
	*ret = img;
	return 0;
fail:
	kura_image_free(img);
	return r;
}

/*
 * Give c what its image says: the image's repo digests and labels, and of c's Config.Labels
 * only those the image does not have with the same value. A run label that repeats an image
 * label exactly cannot be told from it (the runtime has merged them): it is dropped, so a
 * label grant can fail to match but is never satisfied by the image author. img is emptied.
 */
static void apply_image(struct kura_container *c, struct kura_image *img)
{
	size_t kept = 0;

	for (size_t i = 0; i < c->labels.n; i++) {
		const char *v = kura_labels_get(&img->labels, c->labels.keys[i]);

		if (v && strcmp(v, c->labels.values[i]) == 0) {
			free(c->labels.keys[i]);
			free(c->labels.values[i]);
			continue;
		}
		c->labels.keys[kept] = c->labels.keys[i];
		c->labels.values[kept] = c->labels.values[i];
		kept++;
	}
	c->labels.n = kept;
	c->image_labels = img->labels;
	img->labels = (struct kura_labels){ 0 };
	c->repo_digests = TAKE_PTR(img->repo_digests);
	c->n_digests = img->n_digests;
	img->n_digests = 0;
}

int kura_runtime_inspect(struct kura_runtime *rt, const char *id, unsigned timeout_ms,
	struct kura_container **ret)
{
	int64_t deadline = kura_clock_ms() + timeout_ms;
	_cleanup_container_ struct kura_container *c = NULL;
	struct kura_image *img = NULL;
	_cleanup_free_ char *body = NULL;
	char path[256];
	size_t len;
	long status;
	int r;

	if (!rt || !kura_runtime_id_valid(id) || timeout_ms == 0)
		return -EINVAL;

	snprintf(path, sizeof(path), API "/containers/%s/json", id);
	r = http_get(rt, path, deadline, &status, &body, &len);
	if (r < 0)
		return r;
	if (status != 200)
		return status_error(status);
	r = kura_runtime_parse_container(body, len, &c);
	if (r < 0)
		return r;
	if (strcmp(c->id, id) != 0)
		return -EPROTO;
	free(TAKE_PTR(body));

	/* image_id is "sha256:" + hex: safe in a path as it is. */
	snprintf(path, sizeof(path), API "/images/%s/json", c->image_id);
	r = http_get(rt, path, deadline, &status, &body, &len);
	if (r < 0)
		return r;
	if (status == 404) {
		/* Gone: which of Config.Labels were the image's can no longer be known. */
		labels_done(&c->labels);
	} else if (status != 200) {
		return status_error(status);
	} else {
		r = kura_runtime_parse_image(body, len, &img);
		if (r < 0)
			return r;
		if (strcmp(img->id, c->image_id) != 0) {
			kura_image_free(img);
			return -EPROTO;
		}
		apply_image(c, img);
		kura_image_free(img);
	}
	*ret = TAKE_PTR(c);
	return 0;
}

int kura_runtime_find(struct kura_runtime *rt, const char *name_or_id, unsigned timeout_ms,
	char ret_id[static 65])
{
	_cleanup_json_ json_t *j = NULL;
	_cleanup_free_ char *body = NULL;
	char path[KURA_RUNTIME_MAX_NAME + 64];
	const char *s;
	size_t len, n;
	long status;
	int r;

	if (!rt || !name_or_id || timeout_ms == 0 ||
		!name_valid(name_or_id, strnlen(name_or_id, KURA_RUNTIME_MAX_NAME + 1)))
		return -EINVAL;
	/* The name's characters need no escaping in a path. */
	snprintf(path, sizeof(path), API "/containers/%s/json", name_or_id);
	r = http_get(rt, path, kura_clock_ms() + timeout_ms, &status, &body, &len);
	if (r < 0)
		return r;
	if (status != 200)
		return status_error(status);
	r = kura_json_load((const uint8_t *)body, len, &j);
	if (r < 0)
		return r;
	if (get_str(j, "Id", 64, &s, &n) < 0 || !kura_runtime_id_valid(s))
		return -EPROTO;
	memcpy(ret_id, s, 65);
	return 0;
}

/* ---- events ---- */

/* The stream is a sequence of JSON objects; Docker and Podman put a newline after each, but
 * chunks split them anywhere, so we split on the objects' own braces (outside strings) rather
 * than trust line boundaries. */
struct parser {
	void (*on_event)(const char *id, const char *action, void *userdata);
	void *userdata;
	char *buf; /* KURA_RUNTIME_MAX_EVENT bytes */
	size_t len;
	unsigned depth;
	bool in_str;
	bool esc;
};

/* One streamed GET on the runtime's own socket: its body's bytes go to chunk as they come. */
struct stream {
	CURL *h;
	int (*chunk)(const char *p, size_t n, void *ud);
	bool (*stopped)(void *ud);
	void *ud;
	bool status_ok;
	int err;
};

static bool action_valid(const char *s, size_t n)
{
	if (n == 0 || n > MAX_ACTION)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < ' ' || s[i] > '~')
			return false;
	return true;
}

/* One whole event object in s->buf. Docker: {"Type":"container","Action":"die",
 * "Actor":{"ID":"<id>",...},"status":"die","id":"<id>",...}; Podman's compat API sends the same
 * shape; older Docker only status/id. Events that are not about a container, or lack a valid
 * id or action, are dropped; bytes that are not JSON end the stream. */
static int emit(struct parser *s)
{
	_cleanup_json_ json_t *j = NULL;
	const json_t *type, *action, *actor, *id = NULL;
	int r;

	r = kura_json_load((const uint8_t *)s->buf, s->len, &j);
	s->len = 0;
	if (r < 0)
		return r;
	type = json_object_get(j, "Type");
	if (type && (!json_is_string(type) || strcmp(json_string_value(type), "container")))
		return 0;
	action = json_object_get(j, "Action");
	if (!json_is_string(action))
		action = json_object_get(j, "status");
	actor = json_object_get(j, "Actor");
	if (json_is_object(actor))
		id = json_object_get(actor, "ID");
	if (!json_is_string(id))
		id = json_object_get(j, "id");
	if (!json_is_string(action) || !json_is_string(id) ||
		!action_valid(json_string_value(action), json_string_length(action)) ||
		json_string_length(id) != 64 || !kura_runtime_id_valid(json_string_value(id)))
		return 0;
	s->on_event(json_string_value(id), json_string_value(action), s->userdata);
	return 0;
}

static int stream_byte(struct parser *s, char c)
{
	if (s->len == 0) {
		if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
			return 0;
		if (c != '{')
			return -EPROTO;
	}
	if (s->len == KURA_RUNTIME_MAX_EVENT)
		return -EMSGSIZE;
	s->buf[s->len++] = c;
	if (s->in_str) {
		if (s->esc)
			s->esc = false;
		else if (c == '\\')
			s->esc = true;
		else if (c == '"')
			s->in_str = false;
		return 0;
	}
	switch (c) {
	case '"':
		s->in_str = true;
		break;
	case '{':
	case '[':
		s->depth++;
		break;
	case '}':
	case ']':
		if (--s->depth == 0)
			return emit(s);
		break;
	default:
		break;
	}
	return 0;
}

static int feed(struct parser *s, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int r = stream_byte(s, p[i]);

		if (r < 0)
			return r;
	}
	return 0;
}

static size_t stream_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct stream *s = userdata;
	size_t n = size * nmemb;

	if (!s->status_ok) {
		long status = 0;

		curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &status);
		if (status != 200) {
			s->err = status_error(status);
			return 0;
		}
		s->status_ok = true;
	}
	s->err = s->chunk(ptr, n, s->ud);
	return s->err < 0 ? 0 : n;
}

int kura_runtime_parse_events(const char *data, size_t len,
	void (*on_event)(const char *container_id, const char *action, void *userdata),
	void *userdata)
{
	struct parser s = { .on_event = on_event, .userdata = userdata };
	int r;

	s.buf = malloc(KURA_RUNTIME_MAX_EVENT);
	if (!s.buf)
		return -ENOMEM;
	r = feed(&s, data, len);
	free(s.buf);
	return r;
}

/* The multi interface, not curl_easy_perform: an idle stream would only reach a progress
 * callback about once a second, and we promise to notice *stop within WATCH_POLL_MS. */
static int watch_loop(CURL *h, struct stream *s)
{
	CURLM *m = curl_multi_init();
	CURLcode rc = CURLE_OK;
	int r = 1;

	if (!m)
		return -ENOMEM;
	if (curl_multi_add_handle(m, h) != CURLM_OK) {
		curl_multi_cleanup(m);
		return -ENOMEM;
	}
	while (r > 0) {
		int running = 0, left;
		CURLMsg *msg;

		if (s->stopped(s->ud)) {
			r = 0;
			break;
		}
		if (curl_multi_perform(m, &running) != CURLM_OK) {
			r = -EIO;
			break;
		}
		if (!running) {
			rc = CURLE_RECV_ERROR;
			while ((msg = curl_multi_info_read(m, &left)))
				if (msg->msg == CURLMSG_DONE)
					rc = msg->data.result;
			if (s->err < 0)
				r = s->err;
			else if (rc != CURLE_OK)
				r = curl_error(h, rc);
			else if (!s->status_ok) /* an answer with no body at all */
				r = -EPROTO;
			else
				r = -ECONNRESET;
			break;
		}
		if (curl_multi_poll(m, NULL, 0, WATCH_POLL_MS, NULL) != CURLM_OK) {
			r = -EIO;
			break;
		}
	}
	curl_multi_remove_handle(m, h);
	curl_multi_cleanup(m);
	return r;
}

int kura_runtime_stream(struct kura_runtime *rt, const char *path,
	int (*chunk)(const char *p, size_t n, void *ud), bool (*stopped)(void *ud), void *ud)
{
	struct stream s = { .chunk = chunk, .stopped = stopped, .ud = ud };
	int r;

	if (!rt || !path_valid(path) || !chunk || !stopped)
		return -EINVAL;
	if (rt->tp)
		return rt->tp->stream(rt->tp_ctx, rt->tp_index, path, chunk, stopped, ud);
	r = handle_new(rt, path, &s.h);
	if (r < 0)
		return r;
	if (curl_easy_setopt(s.h, CURLOPT_CONNECTTIMEOUT_MS, WATCH_CONNECT_MS) != CURLE_OK ||
		curl_easy_setopt(s.h, CURLOPT_WRITEFUNCTION, stream_write) != CURLE_OK ||
		curl_easy_setopt(s.h, CURLOPT_WRITEDATA, &s) != CURLE_OK)
		r = -ENOMEM;
	else
		r = watch_loop(s.h, &s);
	curl_easy_cleanup(s.h);
	return r;
}

struct watch {
	struct parser p;
	volatile const bool *stop;
};

static int watch_chunk(const char *p, size_t n, void *ud)
{
	return feed(&((struct watch *)ud)->p, p, n);
}

static bool watch_stopped(void *ud)
{
	return *((struct watch *)ud)->stop;
}

int kura_runtime_watch(struct kura_runtime *rt,
	void (*on_event)(const char *container_id, const char *action, void *userdata),
	void *userdata, volatile const bool *stop)
{
	struct watch w = { .p = { .on_event = on_event, .userdata = userdata }, .stop = stop };
	char path[512];
	char *filter;
	int r;

	if (!rt || !on_event || !stop)
		return -EINVAL;
	filter = curl_easy_escape(NULL, EVENT_FILTER, 0);
	if (!filter)
		return -ENOMEM;
	snprintf(path, sizeof(path), API "/events?filters=%s", filter);
	curl_free(filter);

	w.p.buf = malloc(KURA_RUNTIME_MAX_EVENT);
	if (!w.p.buf)
		return -ENOMEM;
	r = kura_runtime_stream(rt, path, watch_chunk, watch_stopped, &w);
	free(w.p.buf);
	return r;
}

/* libFuzzer target for the runtime API's answers (GET /containers/{id}/json, /images/{id}/json,
 * and the /events stream) as a hostile or broken runtime may send them: parsed or refused, never
 * a crash; what parses holds to every promise of runtime.h, and written back as the runtime
 * would, parses the same. No plaintext. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "check.h"
#include "runtime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool image_id_ok(const char *s)
{
	return s && strncmp(s, "sha256:", 7) == 0 && kura_runtime_id_valid(s + 7) && !s[71];
}

static void check_name(const char *s)
{
	size_t n = strlen(s);

	check(n >= 1 && n <= KURA_RUNTIME_MAX_NAME && alnum(s[0]));
	for (size_t i = 1; i < n; i++)
		check(alnum(s[i]) || s[i] == '_' || s[i] == '.' || s[i] == '-');
}

static void check_digest(const char *s)
{
	const char *at = strchr(s, '@');

	check(at && at > s && image_id_ok(at + 1));
	for (const char *p = s; p < at; p++)
		check(*p > ' ' && *p <= '~');
}

static void check_labels(const struct kura_labels *l)
{
	check(l->n <= KURA_RUNTIME_MAX_LABELS);
	for (size_t i = 0; i < l->n; i++) {
		size_t k = strlen(l->keys[i]);

		check(k >= 1 && k <= KURA_RUNTIME_MAX_LABEL);
		check(strlen(l->values[i]) <= KURA_RUNTIME_MAX_LABEL);
		/* Keys are unique: the lookup finds each pair's own value. */
		check(kura_labels_get(l, l->keys[i]) == l->values[i]);
	}
}

static json_t *labels_json(const struct kura_labels *l)
{
	json_t *o = json_object();

	for (size_t i = 0; o && i < l->n; i++)
		json_object_set_new(o, l->keys[i], json_string(l->values[i]));
	return o;
}

static bool labels_equal(const struct kura_labels *a, const struct kura_labels *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++) {
		const char *v = kura_labels_get(b, a->keys[i]);

		if (!v || strcmp(v, a->values[i]) != 0)
			return false;
	}
	return true;
}

/* The document a runtime would send for c, parsed again. */
static void container_again(const struct kura_container *c)
{
	struct kura_container *d = NULL;
	json_t *j;
	char *s;

	j = json_pack("{s:s, s:s+, s:s, s:{s:b, s:i}, s:{s:o, s:s}}", "Id", c->id, "Name", "/",
		c->name, "Image", c->image_id, "State", "Running", c->running, "Pid", (int)c->pid,
		"Config", "Labels", labels_json(&c->labels), "Image", "tag:moves");
	s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	check(s);
	check(kura_runtime_parse_container(s, strlen(s), &d) == 0);
	check(strcmp(d->id, c->id) == 0 && strcmp(d->name, c->name) == 0 &&
		strcmp(d->image_id, c->image_id) == 0 && d->running == c->running &&
		d->pid == c->pid && labels_equal(&d->labels, &c->labels));
	kura_container_free(d);
	free(s);
	json_decref(j);
}

static void image_again(const struct kura_image *img)
{
	struct kura_image *d = NULL;
	json_t *j, *digests = json_array();
	char *s;

	for (size_t i = 0; digests && i < img->n_digests; i++)
		json_array_append_new(digests, json_string(img->repo_digests[i]));
	j = json_pack("{s:s, s:o, s:{s:o}}", "Id", img->id, "RepoDigests", digests, "Config",
		"Labels", labels_json(&img->labels));
	s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	check(s);
	check(kura_runtime_parse_image(s, strlen(s), &d) == 0);
	check(strcmp(d->id, img->id) == 0 && d->n_digests == img->n_digests &&
		labels_equal(&d->labels, &img->labels));
	for (size_t i = 0; i < d->n_digests; i++)
		check(strcmp(d->repo_digests[i], img->repo_digests[i]) == 0);
	kura_image_free(d);
	free(s);
	json_decref(j);
}

/* An event as kura_runtime_watch() hands it on: a full container ID and a short printable
 * verb, and never more events than the stream has objects. */
static void on_event(const char *id, const char *action, void *userdata)
{
	size_t *left = userdata, n = strlen(action);

	check(*left > 0);
	(*left)--;
	check(kura_runtime_id_valid(id) && !id[64]);
	check(n >= 1 && n <= 64);
	for (size_t i = 0; i < n; i++)
		check(action[i] >= ' ' && action[i] <= '~');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t objects = 0;
	struct kura_container *c = NULL;
	struct kura_image *img = NULL;
	int r;

	r = kura_runtime_parse_container((const char *)data, size, &c);
	check(r == 0 || r == -EPROTO);
	if (r == 0) {
		check(kura_runtime_id_valid(c->id) && !c->id[64]);
		check_name(c->name);
		check(image_id_ok(c->image_id));
		check(c->running ? c->pid > 0 : c->pid == 0);
		check_labels(&c->labels);
		/* The parser alone never knows which labels are the image's. */
		check(c->image_labels.n == 0 && c->n_digests == 0);
		container_again(c);
		kura_container_free(c);
	}

	r = kura_runtime_parse_image((const char *)data, size, &img);
	check(r == 0 || r == -EPROTO);
	if (r == 0) {
		check(image_id_ok(img->id));
		check(img->n_digests <= KURA_RUNTIME_MAX_DIGESTS);
		for (size_t i = 0; i < img->n_digests; i++)
			check_digest(img->repo_digests[i]);
		check_labels(&img->labels);
		image_again(img);
		kura_image_free(img);
	}

	for (size_t i = 0; i < size; i++)
		objects += data[i] == '{';
	r = kura_runtime_parse_events((const char *)data, size, on_event, &objects);
	check(r == 0 || r == -EPROTO || r == -EMSGSIZE);
	return 0;
}

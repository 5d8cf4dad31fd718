/* Who a peer is, as the broker established it from the kernel and the runtime: what the identity
 * resolver gives, the policy decides on and the audit log records. A type only; no plaintext. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Who is asking, as established by the broker from the kernel and the runtime. */
struct kura_identity {
	bool host; /* a process in no container */
	pid_t pid;
	uid_t uid;
	gid_t gid;
	const char *runtime; /* "docker", "podman", ...; NULL for host */
	const char *container_id;
	const char *name;
	const char *image_id;       /* sha256:<64 hex> */
	const char *const *digests; /* repo@sha256:<64 hex> */
	size_t n_digests;
	/* Labels set when the container was created, without those its image also has (key and
	 * value): what whoever started it said. */
	const char *const *label_keys;
	const char *const *label_values;
	size_t n_labels;
	/* The image's labels: what the image's author said, whoever runs it. */
	const char *const *image_label_keys;
	const char *const *image_label_values;
	size_t n_image_labels;
};

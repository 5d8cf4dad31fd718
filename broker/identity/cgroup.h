/* Which container a process is in, decided from the text of /proc/<pid>/cgroup alone.
 * Touches no plaintext. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

enum kura_runtime_kind {
	KURA_RUNTIME_NONE, /* a host process: in no container */
	KURA_RUNTIME_DOCKER,
	KURA_RUNTIME_PODMAN,
	KURA_RUNTIME_CONTAINERD,
	KURA_RUNTIME_CRIO,
};

#define KURA_CGROUP_ID_LEN 64
#define KURA_CGROUP_FILE_MAX (64 * 1024)

struct kura_cgroup_id {
	enum kura_runtime_kind runtime;
	char id[KURA_CGROUP_ID_LEN + 1]; /* 64 lowercase hex digits, NUL-terminated */
};

/*
 * Find the container named by the text of a /proc/<pid>/cgroup file, read from the host's cgroup
 * namespace (paths are printed relative to the reader's namespace).
 *
 * 0: the process is in a container, *ret set. -ENOENT: it is in no container we can see (it may
 * be a host process: callers also check its namespaces). -EMEDIUMTYPE: no pattern below matches,
 * but a path segment holds 64 hex digits, the shape of a container ID: a container in a layout we
 * do not know (an unknown --cgroup-parent, a rootless runtime), never a host process.
 * -EBADMSG: the text cannot be decided safely (empty, no final newline, NUL bytes, a malformed
 * line, hierarchy IDs not strictly descending as the kernel prints them, an empty, "." or ".."
 * path segment, a path the kernel could not print, or lines naming different containers).
 * Callers must deny on anything but 0 and -ENOENT.
 *
 * Each path is matched against anchored, whole-segment patterns: the cgroupfs layouts only at
 * the root (/docker/<id>, /libpod_parent/[<pod>/]libpod-<id>, /kubepods/[<qos>/]pod<uid>/<id>),
 * the systemd scopes (docker-, libpod-, cri-containerd-, crio-<id>.scope) only where every
 * ancestor is a *.slice. The first match from the root decides; whatever lies below it is the
 * container's own subtree and never changes the answer. See cgroup.c for why, and for the rule
 * across the lines of a hybrid (v1 + v2) host.
 */
int kura_cgroup_parse(const char *text, size_t len, struct kura_cgroup_id *ret);

/*
 * Read "cgroup" relative to an open /proc/<pid> directory and parse it as above. Besides the
 * parser's results: -EFBIG if the file is larger than KURA_CGROUP_FILE_MAX, -ESRCH if the
 * process is gone or the directory has no "cgroup" (never -ENOENT, which means "host"), other
 * -errno from openat()/read() (-ENAMETOOLONG: a path the kernel could not print, which a container
 * can cause by nesting deeply below itself).
 */
int kura_cgroup_read(int proc_pid_dirfd, struct kura_cgroup_id *ret);

/* Exactly 64 lowercase hex digits. */
bool kura_cgroup_is_hex64(const char *s, size_t len);

/* "docker", "podman", "containerd", "crio", "none" for KURA_RUNTIME_NONE; NULL if out of range. */
const char *kura_cgroup_runtime_name(enum kura_runtime_kind k);

/* The reverse of kura_cgroup_runtime_name() for the four runtimes ("none" is not one): 0 or
 * -EINVAL. */
int kura_cgroup_runtime_from_name(const char *name, enum kura_runtime_kind *ret);

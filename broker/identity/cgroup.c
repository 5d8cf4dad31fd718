/* Parse /proc/<pid>/cgroup into the runtime and 64-hex ID of the container a process is in.
 * Touches no plaintext; the input is partly written by the (untrusted) process itself. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "cgroup.h"
#include "proc.h"
#include "macro.h"

/*
 * Who writes what in a cgroup path. The kernel prints one line per hierarchy,
 * "<hierarchy-id>:<controllers>:<path>", with the path relative to the reader's cgroup namespace
 * (kurad's must be the host's). The part of a path from the root down to a container's own
 * cgroup is made by root on the host: the runtime, systemd, the kubelet. Below that cgroup the
 * container may make anything it likes, if its cgroup is writable to it (delegation, a
 * privileged container, cgroupfs mounted read-write): directories named "docker-<victim>.scope",
 * "..x", "x (deleted)", even names holding a newline, which splits the line in two.
 *
 * So a pattern is looked for only where the host alone can have put it, and the first match
 * from the root is final:
 *  - the cgroupfs layouts only at the root: /docker/<id>, /libpod_parent/libpod-<id>,
 *    /libpod_parent/<pod>/libpod-<id>, /kubepods/[besteffort|burstable/]pod<uid>/<id> (or
 *    crio-<id>). "docker" two levels down is some container's own business, never Docker's.
 *  - the systemd scopes docker-, libpod-, cri-containerd- and crio-<id>.scope only where every
 *    ancestor is a *.slice: system.slice, machine.slice, the kubepods slices. Slices in the
 *    system manager's tree are made by root; a delegated subtree (user@1000.service, a
 *    container's scope) is never a slice, so a user who moves a process into a
 *    ".../user@1000.service/docker-<victim>.scope" of their own making does not become the
 *    victim. The price: a rootless container is a host process of its user here, which is what
 *    it is to anyone who cannot trust that user's cgroup tree.
 *  - after the first match nothing is looked at but the shape of the segments, so
 *    /docker/<A>/docker/<B> and /machine.slice/libpod-<A>.scope/container are both A.
 *
 * A name holding a newline would split a line, and the rest of the path would read as a line of
 * its own ("/docker/<A>/x\n1:name=y:/docker/<B>"). Linux refuses such names since 4.14 (cgroup
 * mkdir and rename: -EINVAL); for older kernels, and in case that changes: the kernel prints the
 * hierarchies newest first with IDs handed out in increasing order (idr_alloc_cyclic), the v2
 * hierarchy (0) last, so the IDs must strictly descend: a forged line after "0::" or between two
 * consecutive IDs is refused. What is left needs a gap in the IDs (a v1 hierarchy unmounted) right
 * after a v1 line in whose tree the process may create directories, and then the rule below still
 * makes the line before it name the real container, if there is one.
 *
 * Across lines (hybrid hosts have a v1 line per controller hierarchy and the v2 "0::" line):
 * every line that names a container must name the same runtime and ID, else -EBADMSG; if at
 * least one does, that container is the answer, and lines in no container are tolerated. They
 * must be: on a hybrid host some runtimes leave the unified hierarchy or a controller at "/"
 * (conmon here sits in /libpod_parent/conmon on v1 and at "/" on v2). This cannot be turned
 * against us: moving out of its cgroup (on any hierarchy) takes write access to cgroup.procs
 * outside the container's subtree, and a container that has that can become any container
 * anyway; inside its subtree the first-match rule already holds. A forged line that slips past
 * the ID order follows the real line it was split from, and that one still names the real
 * container: the forgery can only disagree with it (-EBADMSG). Only a process in no container
 * but with a writable subtree could forge a container this way (see the residue above).
 *
 * What this cannot tell for certain: whether a process is in a container laid out in no way
 * listed here. A path holding a segment shaped like a container ID (64 hex digits) that no pattern
 * places is reported as such (-EMEDIUMTYPE), never as a host process; one without is -ENOENT, and
 * callers that grant to "host" must also check that the peer lives in kurad's own namespaces
 * (kura_peer_in_host_namespaces), which a container cannot fake whatever its cgroup.
 */

/* The kernel prints at most PATH_MAX - 1 bytes of path (proc_cgroup_show) and fails the read
 * otherwise. */
#define PATH_LEN_MAX (PATH_MAX - 1)

enum state {
	ST_ROOT,
	ST_SLICES,     /* every segment so far is a *.slice */
	ST_DOCKER,     /* /docker */
	ST_LIBPOD,     /* /libpod_parent */
	ST_LIBPOD_POD, /* /libpod_parent/<pod> */
	ST_KUBE,       /* /kubepods */
	ST_KUBE_QOS,   /* /kubepods/<qos> */
	ST_KUBE_POD,   /* /kubepods/[<qos>/]pod<uid> */
	ST_NONE,       /* no pattern can match any more */
	ST_MATCHED,
};

bool kura_cgroup_is_hex64(const char *s, size_t len)
{
	if (len != KURA_CGROUP_ID_LEN)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

static const char *const runtime_names[] = {
	[KURA_RUNTIME_NONE] = "none",
	[KURA_RUNTIME_DOCKER] = "docker",
	[KURA_RUNTIME_PODMAN] = "podman",
	[KURA_RUNTIME_CONTAINERD] = "containerd",
	[KURA_RUNTIME_CRIO] = "crio",
};

const char *kura_cgroup_runtime_name(enum kura_runtime_kind k)
{
	if ((unsigned)k >= ELEMENTSOF(runtime_names))
		return NULL;
	return runtime_names[k];
}

int kura_cgroup_runtime_from_name(const char *name, enum kura_runtime_kind *ret)
{
	if (!name)
		return -EINVAL;
	for (size_t k = KURA_RUNTIME_NONE + 1; k < ELEMENTSOF(runtime_names); k++)
		if (strcmp(name, runtime_names[k]) == 0) {
			*ret = (enum kura_runtime_kind)k;
			return 0;
		}
	return -EINVAL;
}

static bool seg_is(const char *s, size_t n, const char *lit)
{
	return n == strlen(lit) && memcmp(s, lit, n) == 0;
}

static bool seg_has_suffix(const char *s, size_t n, const char *suffix)
{
	size_t k = strlen(suffix);

	return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

/* Segment is exactly prefix + 64 hex + suffix; the ID goes to id. */
static bool seg_id(const char *s, size_t n, const char *prefix, const char *suffix, char *id)
{
	size_t p = strlen(prefix), q = strlen(suffix);

	if (n != p + KURA_CGROUP_ID_LEN + q || memcmp(s, prefix, p) != 0 ||
		memcmp(s + p + KURA_CGROUP_ID_LEN, suffix, q) != 0 ||
		!kura_cgroup_is_hex64(s + p, KURA_CGROUP_ID_LEN))
		return false;
	memcpy(id, s + p, KURA_CGROUP_ID_LEN);
	id[KURA_CGROUP_ID_LEN] = '\0';
	return true;
}

/* "pod" and a Kubernetes pod UID: a UUID with '-' on cgroupfs (or '_' in systemd slices), or the
 * 32-hex hash of a static pod. */
static bool seg_pod(const char *s, size_t n)
{
	if (n <= 3 || n > 3 + 64 || memcmp(s, "pod", 3) != 0)
		return false;
	for (size_t i = 3; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') || s[i] == '-' ||
			    s[i] == '_'))
			return false;
	return true;
}

static bool scope(const char *s, size_t n, struct kura_cgroup_id *c)
{
	static const struct {
		const char *prefix;
		enum kura_runtime_kind runtime;
	} scopes[] = {
		{ "docker-", KURA_RUNTIME_DOCKER },
		{ "libpod-", KURA_RUNTIME_PODMAN },
		{ "cri-containerd-", KURA_RUNTIME_CONTAINERD },
		{ "crio-", KURA_RUNTIME_CRIO },
	};

	for (size_t i = 0; i < ELEMENTSOF(scopes); i++)
		if (seg_id(s, n, scopes[i].prefix, ".scope", c->id)) {
			c->runtime = scopes[i].runtime;
			return true;
		}
	return false;
}

/* One step of the walk from the root: the state after segment s[0..n). */
static enum state step(enum state st, const char *s, size_t n, struct kura_cgroup_id *c)
{
	switch (st) {
	case ST_ROOT:
		if (seg_is(s, n, "docker"))
			return ST_DOCKER;
		if (seg_is(s, n, "libpod_parent"))
			return ST_LIBPOD;
		if (seg_is(s, n, "kubepods"))
			return ST_KUBE;
		__attribute__((fallthrough));
	case ST_SLICES:
		if (scope(s, n, c))
			return ST_MATCHED;
		return seg_has_suffix(s, n, ".slice") ? ST_SLICES : ST_NONE;
	case ST_DOCKER:
		if (seg_id(s, n, "", "", c->id)) {
			c->runtime = KURA_RUNTIME_DOCKER;
			return ST_MATCHED;
		}
		return ST_NONE;
	case ST_LIBPOD:
	case ST_LIBPOD_POD:
		if (seg_id(s, n, "libpod-", "", c->id)) {
			c->runtime = KURA_RUNTIME_PODMAN;
			return ST_MATCHED;
		}
		return st == ST_LIBPOD && kura_cgroup_is_hex64(s, n) ? ST_LIBPOD_POD : ST_NONE;
	case ST_KUBE:
	case ST_KUBE_QOS:
		if (seg_pod(s, n))
			return ST_KUBE_POD;
		if (st == ST_KUBE && (seg_is(s, n, "besteffort") || seg_is(s, n, "burstable")))
			return ST_KUBE_QOS;
		return ST_NONE;
	case ST_KUBE_POD:
		if (seg_id(s, n, "", "", c->id)) {
			c->runtime = KURA_RUNTIME_CONTAINERD;
			return ST_MATCHED;
		}
		if (seg_id(s, n, "crio-", "", c->id)) {
			c->runtime = KURA_RUNTIME_CRIO;
			return ST_MATCHED;
		}
		return ST_NONE;
	case ST_NONE:
	case ST_MATCHED:
		break;
	}
	return st;
}

/* Whether the segment holds a run of 64 hex digits: the shape of every container ID a runtime
 * puts in a cgroup name. */
static bool seg_has_id(const char *s, size_t n)
{
	size_t run = 0;

	for (size_t i = 0; i < n; i++) {
		run = (s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ? run + 1 : 0;
		if (run >= KURA_CGROUP_ID_LEN)
			return true;
	}
	return false;
}

/*
 * The container a cgroup path names: 1 with *c set, 0 for none, 2 for a path that names no
 * container we know but holds a segment shaped like a container ID (some runtime's layout we do
 * not know, such as a --cgroup-parent of the operator's choosing), -EBADMSG for a path the kernel
 * does not print (not absolute, too long, an empty, "." or ".." segment, or a v2 path marked
 * " (deleted)": only a dead process's cgroup can be gone). Every segment is checked, also below
 * the match, so that a malformed line is refused whatever it names.
 */
static int path_container(const char *path, size_t len, struct kura_cgroup_id *c)
{
	enum state st = ST_ROOT;
	bool id_shaped = false;

	if (len == 0 || path[0] != '/' || len > PATH_LEN_MAX)
		return -EBADMSG;
	if (seg_has_suffix(path, len, " (deleted)"))
		return -EBADMSG;
	if (len == 1)
		return 0;
	for (size_t i = 1, start = 1; i <= len; i++) {
		size_t n;

		if (i < len && path[i] != '/')
			continue;
		n = i - start;
		if (n == 0 || seg_is(path + start, n, ".") || seg_is(path + start, n, ".."))
			return -EBADMSG;
		if (st != ST_MATCHED && seg_has_id(path + start, n))
			id_shaped = true;
		st = step(st, path + start, n, c);
		start = i + 1;
	}
	return st == ST_MATCHED ? 1 : id_shaped ? 2 : 0;
}

static bool controller_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		ch == '_' || ch == '-' || ch == '.' || ch == '=' || ch == ',';
}

/* "<id>:<controllers>:" at the start of line: the hierarchy ID into *ret_hid and the offset of
 * the path into *ret_path, or -EBADMSG. The v2 line is "0::"; a v1 line names its controllers
 * or "name=<name>". */
static int line_head(const char *line, size_t len, unsigned *ret_hid, size_t *ret_path)
{
	unsigned long hid = 0;
	size_t i = 0, c;

	while (i < len && line[i] >= '0' && line[i] <= '9') {
		if (i > 0 && hid == 0)
			return -EBADMSG; /* leading zero */
		hid = hid * 10 + (unsigned)(line[i] - '0');
		if (hid > INT_MAX)
			return -EBADMSG;
		i++;
	}
	if (i == 0 || i >= len || line[i] != ':')
		return -EBADMSG;
	c = ++i;
	while (i < len && line[i] != ':') {
		if (!controller_char(line[i]))
			return -EBADMSG;
		i++;
	}
	if (i >= len || (hid == 0) != (i == c))
		return -EBADMSG;
	*ret_hid = (unsigned)hid;
	*ret_path = i + 1;
	return 0;
}

int kura_cgroup_parse(const char *text, size_t len, struct kura_cgroup_id *ret)
{
	unsigned last_hid = 0;
	size_t nlines = 0;
	bool unknown = false;
	struct kura_cgroup_id found = { .runtime = KURA_RUNTIME_NONE };

	/* The kernel prints at least one line, each ending in '\n'. Text that does not is
	 * truncated or not from the kernel: a cut-off ID must not read as "no container". */
	if (len == 0 || text[len - 1] != '\n' || memchr(text, '\0', len))
		return -EBADMSG;

	for (size_t pos = 0; pos < len;) {
		const char *line = text + pos;
		size_t n = (size_t)((const char *)memchr(line, '\n', len - pos) - line);
		struct kura_cgroup_id c = { .runtime = KURA_RUNTIME_NONE };
		unsigned hid;
		size_t p;
		int r;

		pos += n + 1;
		r = line_head(line, n, &hid, &p);
		if (r < 0)
			return r;
		if (nlines > 0 && hid >= last_hid)
			return -EBADMSG;
		last_hid = hid;
		nlines++;

		r = path_container(line + p, n - p, &c);
		if (r < 0)
			return r;
		if (r == 2)
			unknown = true;
		if (r != 1)
			continue;
		if (found.runtime != KURA_RUNTIME_NONE &&
			(found.runtime != c.runtime || strcmp(found.id, c.id) != 0))
			return -EBADMSG;
		found = c;
	}
	if (found.runtime == KURA_RUNTIME_NONE)
		return unknown ? -EMEDIUMTYPE : -ENOENT;
	*ret = found;
	return 0;
}

int kura_cgroup_read(int proc_pid_dirfd, struct kura_cgroup_id *ret)
{
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	bool truncated;
	int r;

	buf = malloc(KURA_CGROUP_FILE_MAX);
	if (!buf)
		return -ENOMEM;
	/* A missing file is -ESRCH (the process is gone), never "no container". */
	r = kura_proc_read(proc_pid_dirfd, "cgroup", buf, KURA_CGROUP_FILE_MAX, &len, &truncated);
	if (r < 0)
		return r;
	if (truncated)
		return -EFBIG;
	return kura_cgroup_parse(buf, len, ret);
}

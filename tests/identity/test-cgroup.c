/* Unit tests for the /proc/<pid>/cgroup parser: real lines from Docker and Podman captured on a
 * hybrid host, the layouts the runtimes document, forged nested cgroups, and the kernel itself. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroup.h"
#include "macro.h"
#include "tap.h"

#define A "79fa229f390f952fc56ef209679fb260baab172cb6ee7c3c9c180c2e64531d13"
#define B "1be51026740f22ae2c01c7335169e48f5cf46703c27b84feacba1adfc101eaa8"
#define POD_UID "0e6f4a0b-3c5d-4b8e-9f1a-2b3c4d5e6f70"
#define POD_UID_SD "0e6f4a0b_3c5d_4b8e_9f1a_2b3c4d5e6f70"
#define CGROUP2_SUPER_MAGIC 0x63677270

#define V1_HOST                                                                                    \
	"9:name=systemd:/\n8:pids:/\n7:blkio:/\n6:freezer:/\n5:devices:/\n"                        \
	"4:memory:/process_api/879594b6750d64e2b61fb40e1a5e0ad0\n3:cpuset:/\n2:cpuacct:/\n1:cpu:/\n"
#define V1_ALL(p)                                                                                  \
	"9:name=systemd:" p "\n8:pids:" p "\n7:blkio:" p "\n6:freezer:" p "\n5:devices:" p         \
	"\n4:memory:" p "\n3:cpuset:" p "\n2:cpuacct:" p "\n1:cpu:" p "\n"

static const struct kura_cgroup_id sentinel = { .runtime = (enum kura_runtime_kind)99,
	.id = "untouched" };

static bool expect_len(const char *text, size_t len, int want, enum kura_runtime_kind rt,
	const char *id, const char *what)
{
	struct kura_cgroup_id got = sentinel;
	int r = kura_cgroup_parse(text, len, &got);
	bool ok;

	if (want == 0)
		ok = r == 0 && got.runtime == rt && strcmp(got.id, id) == 0;
	else
		ok = r == want && got.runtime == sentinel.runtime &&
			strcmp(got.id, sentinel.id) == 0;
	tap_ok(ok, "%s", what);
	if (!ok)
		tap_diag("got %d %s %.65s, want %d %s %s", r, kura_cgroup_runtime_name(got.runtime),
			r == 0 ? got.id : "-", want, kura_cgroup_runtime_name(rt), id ? id : "-");
	return ok;
}

static bool expect(const char *text, int want, enum kura_runtime_kind rt, const char *id,
	const char *what)
{
	return expect_len(text, strlen(text), want, rt, id, what);
}

#define HOST(text, what) expect(text, -ENOENT, KURA_RUNTIME_NONE, NULL, what)
#define BAD(text, what) expect(text, -EBADMSG, KURA_RUNTIME_NONE, NULL, what)
/* No layout we know, but a segment shaped like a container ID: never a host process. */
#define UNKNOWN(text, what) expect(text, -EMEDIUMTYPE, KURA_RUNTIME_NONE, NULL, what)

static void real_lines(void)
{
	/* Captured on this hybrid build host (v1 controllers plus the unified hierarchy). */
	expect(V1_ALL("/docker/" A) "0::/docker/" A "\n", 0, KURA_RUNTIME_DOCKER, A,
		"real: docker 20.10, cgroupfs, hybrid, /proc/<pid>/cgroup from the host");
	expect(V1_ALL("/libpod_parent/libpod-" B) "0::/libpod_parent/libpod-" B "\n", 0,
		KURA_RUNTIME_PODMAN, B, "real: podman 4.3 + runc, cgroupfs, hybrid");
	HOST("9:name=systemd:/\n8:pids:/libpod_parent/conmon\n7:blkio:/libpod_parent/conmon\n"
	     "6:freezer:/libpod_parent/conmon\n5:devices:/libpod_parent/conmon\n"
	     "4:memory:/libpod_parent/conmon\n3:cpuset:/libpod_parent/conmon\n"
	     "2:cpuacct:/libpod_parent/conmon\n1:cpu:/libpod_parent/conmon\n0::/\n",
		"real: conmon in /libpod_parent/conmon is a host process");
	HOST(V1_HOST "0::/\n", "real: a host shell on the build machine");
	HOST(V1_ALL("/") "0::/\n", "real: the docker shim, everything at /");
}

static void documented_lines(void)
{
	static const struct {
		const char *text;
		enum kura_runtime_kind rt;
		const char *what;
	} cases[] = {
		{ "12:memory:/docker/" A "\n", KURA_RUNTIME_DOCKER,
			"docker cgroupfs v1, one line" },
		{ "0::/docker/" A "\n", KURA_RUNTIME_DOCKER, "docker cgroupfs v2" },
		{ "0::/system.slice/docker-" A ".scope\n", KURA_RUNTIME_DOCKER,
			"docker systemd v2" },
		{ "12:pids:/system.slice/docker-" A ".scope\n11:memory:/system.slice/docker-" A
		  ".scope\n1:name=systemd:/system.slice/docker-" A ".scope\n0::/\n",
			KURA_RUNTIME_DOCKER, "docker systemd v1 hybrid, unified at /" },
		{ "0::/my.slice/my-sub.slice/docker-" A ".scope\n", KURA_RUNTIME_DOCKER,
			"docker systemd with a --cgroup-parent slice" },
		{ "0::/libpod_parent/libpod-" A "\n", KURA_RUNTIME_PODMAN,
			"podman rootful cgroupfs v2" },
		{ "0::/libpod_parent/" B "/libpod-" A "\n", KURA_RUNTIME_PODMAN,
			"podman cgroupfs, container in a pod" },
		{ "0::/machine.slice/libpod-" A ".scope\n", KURA_RUNTIME_PODMAN,
			"podman systemd v2" },
		{ "0::/machine.slice/libpod-" A ".scope/container\n", KURA_RUNTIME_PODMAN,
			"podman systemd v2, payload in the container subgroup" },
		{ "0::/machine.slice/machine-libpod_pod_" B ".slice/libpod-" A ".scope\n",
			KURA_RUNTIME_PODMAN, "podman systemd, container in a pod" },
		{ "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" POD_UID_SD
		  ".slice/cri-containerd-" A ".scope\n",
			KURA_RUNTIME_CONTAINERD, "k8s containerd systemd v2 burstable" },
		{ "0::/kubepods.slice/kubepods-pod" POD_UID_SD ".slice/cri-containerd-" A
		  ".scope\n",
			KURA_RUNTIME_CONTAINERD, "k8s containerd systemd v2 guaranteed" },
		{ "0::/kubepods/besteffort/pod" POD_UID "/" A "\n", KURA_RUNTIME_CONTAINERD,
			"k8s cgroupfs besteffort" },
		{ "0::/kubepods/burstable/pod" POD_UID "/" A "\n", KURA_RUNTIME_CONTAINERD,
			"k8s cgroupfs burstable" },
		{ "4:memory:/kubepods/pod" POD_UID "/" A "\n3:cpu:/kubepods/pod" POD_UID "/" A "\n",
			KURA_RUNTIME_CONTAINERD, "k8s cgroupfs guaranteed, v1" },
		{ "0::/kubepods/burstable/pod" POD_UID "/crio-" A "\n", KURA_RUNTIME_CRIO,
			"cri-o cgroupfs" },
		{ "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" POD_UID_SD
		  ".slice/crio-" A ".scope\n",
			KURA_RUNTIME_CRIO, "cri-o systemd v2" },
		{ "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" POD_UID_SD
		  ".slice/crio-" A ".scope/container\n",
			KURA_RUNTIME_CRIO, "cri-o systemd v2, container subgroup" },
		{ "0::/system.slice/crio-" A ".scope\n", KURA_RUNTIME_CRIO, "cri-o scope" },
		{ "0::/docker/" A "/a:b c\n", KURA_RUNTIME_DOCKER,
			"':' and ' ' in a segment below the container" },
	};
	static const char *const hosts[] = {
		"0::/\n",
		"0::/init.scope\n",
		"0::/user.slice/user-1000.slice/session-3.scope\n",
		"0::/system.slice/docker.service\n",
		"0::/system.slice/containerd.service\n",
		"0::/libpod_parent/conmon\n",
		"0::/kubepods/besteffort/pod" POD_UID "\n",
		"0::/kubepods.slice/kubepods-besteffort.slice\n",
		"0::/docker\n",
		"0::/lxc/web\n",
	};
	/* Runtime monitors, and rootless runtimes in a tree their user controls: no container we
	 * can name, and never a host process either (kurad denies both). */
	static const char *const unknown[] = {
		"0::/machine.slice/libpod-conmon-" A ".scope\n",
		"0::/system.slice/crio-conmon-" A ".scope\n",
		"0::/kubepods.slice/kubepods-pod" POD_UID_SD ".slice/crio-conmon-" A ".scope\n",
		"0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" A ".scope\n",
		"0::/user.slice/user-1000.slice/user@1000.service/docker.service/docker/" A "\n",
		"0::/kura-attack/" A "\n", /* docker run --cgroup-parent=/kura-attack */
		"0::/x/y/" A ".scope\n",
	};

	for (size_t i = 0; i < ELEMENTSOF(cases); i++)
		expect(cases[i].text, 0, cases[i].rt, A, cases[i].what);
	for (size_t i = 0; i < ELEMENTSOF(hosts); i++) {
		char what[300];

		snprintf(what, sizeof(what), "host: %.*s", (int)strcspn(hosts[i], "\n"), hosts[i]);
		HOST(hosts[i], what);
	}
	for (size_t i = 0; i < ELEMENTSOF(unknown); i++) {
		char what[300];

		snprintf(what, sizeof(what), "unknown layout, not host: %.*s",
			(int)strcspn(unknown[i], "\n"), unknown[i]);
		UNKNOWN(unknown[i], what);
	}
}

/* Everything a container could create below its own cgroup, or a user below a delegated one. */
static const char *const forged[] = {
	"docker/" B,
	"docker-" B ".scope",
	"system.slice/docker-" B ".scope",
	"libpod-" B,
	"libpod-" B ".scope",
	"libpod_parent/libpod-" B,
	"machine.slice/libpod-" B ".scope",
	"machine.slice/libpod-" B ".scope/container",
	"cri-containerd-" B ".scope",
	"kubepods.slice/kubepods-pod" POD_UID_SD ".slice/cri-containerd-" B ".scope",
	"kubepods/besteffort/pod" POD_UID "/" B,
	"kubepods/pod" POD_UID "/crio-" B,
	"crio-" B,
	"crio-" B ".scope",
	"x.slice/docker-" B ".scope",
};

static void nested(void)
{
	static const struct {
		const char *path;
		enum kura_runtime_kind rt;
	} outer[] = {
		{ "/docker/" A, KURA_RUNTIME_DOCKER },
		{ "/system.slice/docker-" A ".scope", KURA_RUNTIME_DOCKER },
		{ "/libpod_parent/libpod-" A, KURA_RUNTIME_PODMAN },
		{ "/machine.slice/libpod-" A ".scope", KURA_RUNTIME_PODMAN },
		{ "/machine.slice/libpod-" A ".scope/container", KURA_RUNTIME_PODMAN },
		{ "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" POD_UID_SD
		  ".slice/cri-containerd-" A ".scope",
			KURA_RUNTIME_CONTAINERD },
		{ "/kubepods/besteffort/pod" POD_UID "/" A, KURA_RUNTIME_CONTAINERD },
		{ "/kubepods/pod" POD_UID "/crio-" A, KURA_RUNTIME_CRIO },
		{ "/system.slice/crio-" A ".scope", KURA_RUNTIME_CRIO },
	};
	static const char *const between[] = { "", "x/", "a.slice/" };
	size_t n = 0, bad = 0;
	char text[1024], what[1200];

	for (size_t o = 0; o < ELEMENTSOF(outer); o++)
		for (size_t f = 0; f < ELEMENTSOF(forged); f++)
			for (size_t b = 0; b < ELEMENTSOF(between); b++) {
				struct kura_cgroup_id got;
				int r;

				snprintf(text, sizeof(text), "0::%s/%s%s\n", outer[o].path,
					between[b], forged[f]);
				r = kura_cgroup_parse(text, strlen(text), &got);
				n++;
				if (r != 0 || got.runtime != outer[o].rt ||
					strcmp(got.id, A) != 0) {
					bad++;
					tap_diag("forged nesting won: %s -> %d %s", text, r,
						r == 0 ? got.id : "");
				}
			}
	tap_ok(bad == 0, "%zu forged nestings below a real container all name the outer one", n);

	for (size_t o = 0; o < ELEMENTSOF(outer); o++) {
		snprintf(text, sizeof(text), "1:name=systemd:%s\n0::%s/docker-%s.scope\n",
			outer[o].path, outer[o].path, B);
		snprintf(what, sizeof(what), "hybrid: v1 %s, v2 nested forgery below it: outer",
			outer[o].path);
		expect(text, 0, outer[o].rt, A, what);
	}

	/* A host user may create cgroups below user@<uid>.service: no pattern counts there (so it
	 * is never the victim), and an ID-shaped name makes it no host process either. */
	for (size_t f = 0; f < ELEMENTSOF(forged); f++) {
		snprintf(text, sizeof(text),
			"0::/user.slice/user-1000.slice/user@1000.service/app.slice/%s\n",
			forged[f]);
		snprintf(what, sizeof(what),
			"delegated user subtree: .../user@1000.service/%s is no known container",
			forged[f]);
		UNKNOWN(text, what);
	}
	UNKNOWN("0::/system.slice/foo.service/docker-" B ".scope\n",
		"a scope below a delegated service does not count");
	UNKNOWN("0::/init.scope/docker/" B "\n", "/docker below something else does not count");
}

static void ids(void)
{
	static const char *const not_ids[] = {
		A "0",                                                              /* 65 */
		"79fa229f390f952fc56ef209679fb260baab172cb6ee7c3c9c180c2e64531d1",  /* 63 */
		"79FA229F390F952FC56EF209679FB260BAAB172CB6EE7C3C9C180C2E64531D13", /* upper */
		"79fa229f390f952fc56ef209679fb260baab172cb6ee7c3c9c180c2e6453zd13", /* not hex */
		"79fa229f390f952fc56ef209679fb260 aab172cb6ee7c3c9c180c2e64531d13",
		A " ",
	};
	/* Which of them still hold a run of 64 hex digits: no container, and no host either. */
	static const bool id_shaped[] = { true, false, false, false, false, true };
	char text[256], what[300];

	tap_ok(kura_cgroup_is_hex64(A, 64), "64 lowercase hex is an ID");
	tap_ok(!kura_cgroup_is_hex64(A, 63), "63 is not");
	for (size_t i = 0; i < ELEMENTSOF(not_ids); i++) {
		tap_ok(!kura_cgroup_is_hex64(not_ids[i], strlen(not_ids[i])), "not an ID: #%zu", i);
		snprintf(text, sizeof(text), "0::/docker/%s\n", not_ids[i]);
		snprintf(what, sizeof(what), "/docker/<not an ID #%zu> is no container", i);
		expect(text, id_shaped[i] ? -EMEDIUMTYPE : -ENOENT, KURA_RUNTIME_NONE, NULL, what);
		snprintf(text, sizeof(text), "0::/system.slice/docker-%s.scope\n", not_ids[i]);
		snprintf(what, sizeof(what), "docker-<not an ID #%zu>.scope is no container", i);
		expect(text, id_shaped[i] ? -EMEDIUMTYPE : -ENOENT, KURA_RUNTIME_NONE, NULL, what);
		snprintf(text, sizeof(text), "0::/libpod_parent/libpod-%s\n", not_ids[i]);
		snprintf(what, sizeof(what), "libpod-<not an ID #%zu> is no container", i);
		expect(text, id_shaped[i] ? -EMEDIUMTYPE : -ENOENT, KURA_RUNTIME_NONE, NULL, what);
	}
}

static void lines_across(void)
{
	expect("4:memory:/docker/" A "\n3:cpu:/\n0::/\n", 0, KURA_RUNTIME_DOCKER, A,
		"hybrid: one v1 controller in a container, the rest at /: the container");
	expect("4:memory:/\n3:cpu:/\n0::/docker/" A "\n", 0, KURA_RUNTIME_DOCKER, A,
		"hybrid: only the unified line in a container: the container");
	BAD("4:memory:/docker/" A "\n3:cpu:/docker/" B "\n0::/\n",
		"v1 hierarchies naming different containers");
	BAD("4:memory:/docker/" A "\n0::/system.slice/docker-" B ".scope\n",
		"v1 and v2 naming different containers");
	BAD("4:memory:/docker/" A "\n0::/libpod_parent/libpod-" A "\n",
		"the same ID under two runtimes");
	BAD("4:memory:/docker/" A "\n4:memory:/docker/" A "\n", "a hierarchy ID twice");
	BAD("3:cpu:/docker/" A "\n4:memory:/docker/" A "\n", "hierarchy IDs ascending");
	BAD("0::/docker/" A "\n1:name=x:/docker/" A "\n", "a line after the v2 line");
	/* A directory named "x\n1:name=y:" below the container, and docker/<B> below that. */
	BAD("2:cpu:/docker/" A "/x\n1:name=y:/docker/" B "\n1:memory:/docker/" A "\n0::/docker/" A
	    "\n",
		"a newline-forged line repeating the next ID");
	BAD("0::/docker/" A "/x\n1:name=y:/docker/" B "\n", "a newline-forged line after 0::");
	BAD("0::/user.slice/user-1000.slice/user@1000.service/x\n1:name=y:/docker/" B "\n",
		"a newline-forged line from a delegated user subtree");
	BAD("3:cpu:/docker/" A "/x\n2:name=y:/docker/" B "\n1:memory:/docker/" A "\n0::/\n",
		"a newline-forged line in an ID gap still disagrees with the real line");
}

static void malformed(void)
{
	static const struct {
		const char *text;
		const char *what;
	} bad[] = {
		{ "", "empty input (the kernel always prints a line)" },
		{ "\n", "an empty line" },
		{ "0::/docker/" A, "no final newline (truncated)" },
		{ "0::/docker/" A "\n\n", "an empty line at the end" },
		{ "4:memory:/\n\n0::/\n", "an empty line in the middle" },
		{ "garbage\n", "garbage" },
		{ "0:/docker/" A "\n", "one colon" },
		{ ":::/\n", "no hierarchy ID" },
		{ "x::/\n", "a non-numeric hierarchy ID" },
		{ "-1:cpu:/\n", "a negative hierarchy ID" },
		{ "01:cpu:/\n", "a hierarchy ID with a leading zero" },
		{ "99999999999:cpu:/\n", "a hierarchy ID beyond int" },
		{ "0:cpu:/\n", "the v2 line with controllers" },
		{ "1::/\n", "a v1 line without controllers" },
		{ "1:cp u:/\n", "a space in the controllers" },
		{ "0::\n", "an empty path" },
		{ "0::docker/" A "\n", "a relative path" },
		{ "0:: /docker/" A "\n", "a path with a leading space" },
		{ "0:://docker/" A "\n", "an empty segment at the root" },
		{ "0::/docker//" A "\n", "an empty segment" },
		{ "0::/docker/" A "/\n", "a trailing slash" },
		{ "0::/docker/" A "//x\n", "an empty segment below the container" },
		{ "0::/docker/" A "/../" B "\n", "'..' below the container" },
		{ "0::/docker/../docker/" A "\n", "'..' above the container" },
		{ "0::/./docker/" A "\n", "'.' at the root" },
		{ "0::/docker/" A "/.\n", "'.' at the end" },
		{ "0::/docker/" A " (deleted)\n", "a removed v2 cgroup" },
	};
	struct kura_cgroup_id got = sentinel;

	for (size_t i = 0; i < ELEMENTSOF(bad); i++)
		BAD(bad[i].text, bad[i].what);
	expect_len("0::/docker/" A "\n\0", sizeof("0::/docker/" A "\n\0") - 1, -EBADMSG,
		KURA_RUNTIME_NONE, NULL, "a NUL after the last line");
	expect_len("0::/docker/\0" A "\n", sizeof("0::/docker/\0" A "\n") - 1, -EBADMSG,
		KURA_RUNTIME_NONE, NULL, "a NUL inside a path");
	tap_is(kura_cgroup_parse("0::/docker/" A "\n", 5, &got), -EBADMSG,
		"a length that cuts the text");
	/* Only root can name a cgroup at these levels: a near miss is some other cgroup. */
	UNKNOWN("0::/docker/" A " \n", "a trailing space makes /docker/<id> no ID (nor host)");
	UNKNOWN("0::/docker/" A "\r\n", "so does a CR before the newline");
	expect("0::/docker/" A "/x \n", 0, KURA_RUNTIME_DOCKER, A,
		"a trailing space below the container changes nothing");
}

static void long_lines(void)
{
	_cleanup_free_ char *text = malloc(70000);
	size_t len;

	if (!tap_ok(text != NULL, "allocate"))
		return;
	/* The kernel prints paths of at most PATH_MAX - 1 bytes. */
	len = (size_t)snprintf(text, 70000, "0::/docker/%s/", A);
	memset(text + len, 'a', 4095 - (len - 3));
	len = 3 + 4095;
	memcpy(text + len, "\n", 2);
	expect_len(text, len + 1, 0, KURA_RUNTIME_DOCKER, A, "a 4095-byte path");
	text[len] = 'a';
	memcpy(text + len + 1, "\n", 2);
	expect_len(text, len + 2, -EBADMSG, KURA_RUNTIME_NONE, NULL, "a 4096-byte path");
	memset(text + 3, 'a', 69000);
	text[3] = '/';
	text[69003] = '\n';
	expect_len(text, 69004, -EBADMSG, KURA_RUNTIME_NONE, NULL, "a 69000-byte line");
}

static void names(void)
{
	static const enum kura_runtime_kind all[] = { KURA_RUNTIME_DOCKER, KURA_RUNTIME_PODMAN,
		KURA_RUNTIME_CONTAINERD, KURA_RUNTIME_CRIO };
	enum kura_runtime_kind k = KURA_RUNTIME_NONE;
	bool ok = true;

	for (size_t i = 0; i < ELEMENTSOF(all); i++)
		ok = ok &&
			kura_cgroup_runtime_from_name(kura_cgroup_runtime_name(all[i]), &k) == 0 &&
			k == all[i];
	tap_ok(ok, "runtime names round-trip");
	tap_ok(strcmp(kura_cgroup_runtime_name(KURA_RUNTIME_DOCKER), "docker") == 0 &&
			strcmp(kura_cgroup_runtime_name(KURA_RUNTIME_PODMAN), "podman") == 0 &&
			strcmp(kura_cgroup_runtime_name(KURA_RUNTIME_CONTAINERD), "containerd") ==
				0 &&
			strcmp(kura_cgroup_runtime_name(KURA_RUNTIME_CRIO), "crio") == 0,
		"runtime names");
	tap_ok(kura_cgroup_runtime_name((enum kura_runtime_kind)42) == NULL, "out of range: NULL");
	k = KURA_RUNTIME_DOCKER;
	tap_ok(kura_cgroup_runtime_from_name("none", &k) == -EINVAL && k == KURA_RUNTIME_DOCKER,
		"\"none\" is not a runtime, *ret untouched");
	tap_ok(kura_cgroup_runtime_from_name("Docker", &k) == -EINVAL, "names are exact");
	tap_ok(kura_cgroup_runtime_from_name(NULL, &k) == -EINVAL, "NULL name");
}

static int write_file(int dirfd, const char *name, const char *data, size_t len)
{
	_cleanup_close_ int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
		0600);

	if (fd < 0 || write(fd, data, len) != (ssize_t)len)
		return -1;
	return 0;
}

static void reading(void)
{
	char dir[] = "/tmp/test-cgroup.XXXXXX";
	_cleanup_close_ int dfd = -1, self = -1;
	_cleanup_free_ char *big = malloc(KURA_CGROUP_FILE_MAX + 1);
	struct kura_cgroup_id got = sentinel, want;
	char text[8192];
	size_t len = 0;
	FILE *f;
	int r, w;

	if (!tap_ok(big && mkdtemp(dir), "temp dir"))
		return;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	tap_is(kura_cgroup_read(dfd, &got), -ESRCH, "no cgroup file: -ESRCH, never -ENOENT");

	memset(big, 'a', KURA_CGROUP_FILE_MAX + 1);
	big[0] = '/';
	write_file(dfd, "cgroup", big, KURA_CGROUP_FILE_MAX + 1);
	tap_is(kura_cgroup_read(dfd, &got), -EFBIG, "64 KiB + 1: -EFBIG");
	write_file(dfd, "cgroup", big, KURA_CGROUP_FILE_MAX);
	tap_is(kura_cgroup_read(dfd, &got), -EBADMSG, "exactly 64 KiB is read (and parsed)");
	write_file(dfd, "cgroup", "0::/docker/" A "\n", strlen("0::/docker/" A "\n"));
	tap_ok(kura_cgroup_read(dfd, &got) == 0 && got.runtime == KURA_RUNTIME_DOCKER &&
			strcmp(got.id, A) == 0,
		"a file is read and parsed");
	unlinkat(dfd, "cgroup", 0);
	rmdir(dir);

	/* The kernel's own file, for ourselves: the same answer as parsing what stdio reads. */
	f = fopen("/proc/self/cgroup", "re");
	if (f) {
		len = fread(text, 1, sizeof(text), f);
		fclose(f);
	}
	self = open("/proc/self", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	got = sentinel;
	want = sentinel;
	r = kura_cgroup_read(self, &got);
	w = kura_cgroup_parse(text, len, &want);
	tap_ok(r == w && (r == 0 || r == -ENOENT) && got.runtime == want.runtime &&
			strcmp(got.id, want.id) == 0,
		"/proc/self/cgroup: %d (%s)", r, r == 0 ? got.id : "host");
}

/* The v2 hierarchy's mount point, if we can create cgroups in it. */
static const char *cgroup2_root(void)
{
	static const char *const roots[] = { "/sys/fs/cgroup/unified", "/sys/fs/cgroup" };
	struct statfs sf;

	for (size_t i = 0; i < ELEMENTSOF(roots); i++)
		if (statfs(roots[i], &sf) == 0 && sf.f_type == CGROUP2_SUPER_MAGIC &&
			access(roots[i], W_OK) == 0)
			return roots[i];
	return NULL;
}

/* Run a child in cgroup <root><rel> and parse its /proc/<pid>/cgroup as the kernel prints it. */
static int in_cgroup(const char *root, const char *rel, struct kura_cgroup_id *ret)
{
	char path[4096], procs[4200], num[32];
	_cleanup_close_ int fd = -1, pfd = -1;
	pid_t pid;
	int r, status;

	snprintf(path, sizeof(path), "%s%s", root, rel);
	snprintf(procs, sizeof(procs), "%s/cgroup.procs", path);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		pause();
		_exit(0);
	}
	fd = open(procs, O_WRONLY | O_CLOEXEC);
	snprintf(num, sizeof(num), "%d", (int)pid);
	if (fd < 0 || write(fd, num, strlen(num)) < 0)
		r = -errno;
	else {
		snprintf(path, sizeof(path), "/proc/%d", (int)pid);
		pfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		r = pfd < 0 ? -errno : kura_cgroup_read(pfd, ret);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return r;
}

/* Real cgroups made in the kernel: /docker/<A> with forgeries below it, as a container with a
 * writable cgroup would make them, including a directory name with a newline in it. */
static void kernel(void)
{
	static const char *const dirs[] = {
		"/docker",
		"/docker/" A,
		"/docker/" A "/docker-" B ".scope",
		"/docker/" A "/docker",
		"/docker/" A "/docker/" B,
		"/docker/" A "/x\n1:name=y:",
		"/docker/" A "/x\n1:name=y:/docker",
		"/docker/" A "/x\n1:name=y:/docker/" B,
	};
	enum { NEWLINE = 5 };
	const char *root = cgroup2_root();
	bool made[ELEMENTSOF(dirs)] = { false };
	struct kura_cgroup_id got;
	char path[4096];
	int newline_err = 0;
	bool ok = true;

	if (!root) {
		tap_skip("no writable cgroup v2 hierarchy: real-kernel cgroup cases");
		return;
	}
	for (size_t i = 0; i < ELEMENTSOF(dirs) && ok; i++) {
		snprintf(path, sizeof(path), "%s%s", root, dirs[i]);
		if (mkdir(path, 0755) == 0) {
			made[i] = true;
		} else if (i == NEWLINE && errno == EINVAL) {
			newline_err = errno; /* Linux >= 4.14 refuses '\n' in cgroup names */
			break;
		} else if (errno != EEXIST) {
			ok = false;
		}
	}
	if (!ok) {
		tap_skip("cannot create cgroups under %s: %m", root);
	} else {
		got = sentinel;
		tap_ok(in_cgroup(root, dirs[1], &got) == 0 && got.runtime == KURA_RUNTIME_DOCKER &&
				strcmp(got.id, A) == 0,
			"kernel: a process in %s/docker/<A> is A", root);
		got = sentinel;
		tap_ok(in_cgroup(root, dirs[2], &got) == 0 && strcmp(got.id, A) == 0,
			"kernel: in /docker/<A>/docker-<B>.scope is A");
		got = sentinel;
		tap_ok(in_cgroup(root, dirs[4], &got) == 0 && strcmp(got.id, A) == 0,
			"kernel: in /docker/<A>/docker/<B> is A");
		struct stat st;

		if (!newline_err) {
			tap_is(in_cgroup(root, dirs[ELEMENTSOF(dirs) - 1], &got), -EBADMSG,
				"kernel: a newline in a cgroup name forging a line is refused");
		} else {
			/* The forgery cannot be mounted at all: the kernel said EINVAL and made
			 * nothing under that name. */
			snprintf(path, sizeof(path), "%s%s", root, dirs[NEWLINE]);
			int err = stat(path, &st) < 0 ? errno : 0;

			tap_ok(newline_err == EINVAL && err == ENOENT,
				"kernel: refuses to create a cgroup named with a newline (EINVAL, "
				"nothing made: %s)",
				err ? strerror(err) : "it exists");
		}
	}
	for (size_t i = ELEMENTSOF(dirs); i-- > 0;) {
		snprintf(path, sizeof(path), "%s%s", root, dirs[i]);
		if (made[i] && rmdir(path) < 0)
			tap_diag("could not remove cgroup %s: %m", path);
	}
}

int main(void)
{
	real_lines();
	documented_lines();
	nested();
	ids();
	lines_across();
	malformed();
	long_lines();
	names();
	reading();
	kernel();
	return tap_done();
}

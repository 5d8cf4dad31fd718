/* Unit tests for the trusted-path check on real directories: owners, group and world write,
 * sticky parents, symlinks, the descriptor it hands back. Needs root (to give directories to
 * another user); skips otherwise. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "safepath.h"
#include "tap.h"

#define NOBODY 65534u

static char root[] = "/tmp/kura-test-safepath-XXXXXX";

/* mkdir with exactly mode (no umask) and owner, in root (the working directory). */
static void dir(const char *name, mode_t mode, uid_t owner)
{
	if (mkdir(name, 0700) < 0 || chmod(name, mode) < 0 || chown(name, owner, owner) < 0)
		tap_diag("making %s: %s", name, strerror(errno));
}

/* kura_path_trusted(name, uid) is want; when refused, why names root/`names` and says `says`. */
static void expect(const char *name, uid_t uid, int want, const char *names, const char *says,
	const char *desc)
{
	char why[512] = "unset", named[600];
	int r = kura_path_trusted(name, uid, why, sizeof(why));

	tap_ok(r == want, "%s (got %d, want %d: %s)", desc, r, want, why);
	if (want < 0 && names) {
		snprintf(named, sizeof(named), "%s/%s is ", root, names);
		tap_ok(strstr(why, named) != NULL && strstr(why, says) != NULL,
			"  the reason names %s and says '%s': %s", names, says, why);
	}
}

int main(void)
{
	char why[64];
	struct stat a, b;
	int fd;

	if (geteuid() != 0) {
		printf("1..0 # SKIP needs root to hand directories to another user\n");
		return 0;
	}
	if (!mkdtemp(root) || chmod(root, 0755) < 0 || chdir(root) < 0)
		return 99;

	dir("mine", 0755, 0);
	expect("mine", 0, 0, NULL, NULL, "root's 0755 directory under a mkdtemp dir in /tmp");
	tap_is(kura_path_trusted("/", 0, why, sizeof(why)), 0, "/ itself");
	tap_is(kura_path_trusted("/tmp", 0, why, sizeof(why)), -EPERM,
		"/tmp itself (world-writable, and the last component)");
	dir("theirs", 0755, NOBODY);
	expect("theirs", 0, -EPERM, "theirs", "owned by uid 65534, not by root",
		"a directory another user owns");
	expect("theirs", NOBODY, 0, NULL, NULL, "... is fine for that user");
	dir("theirs/in", 0755, 0);
	expect("theirs/in", 0, -EPERM, "theirs", "owned by uid 65534",
		"root's directory inside another user's");
	dir("mine/theirs", 0755, NOBODY);
	expect("mine/theirs", 1000, -EPERM, "mine/theirs", "not by root or uid 1000",
		"for uid 1000, a directory of uid 65534's");

	dir("world", 0777, 0);
	dir("world/run", 0755, 0);
	expect("world/run", 0, -EPERM, "world", "writable by others",
		"a parent anyone can write (0777, not sticky)");
	dir("group", 0775, 0);
	dir("group/run", 0755, 0);
	expect("group/run", 0, -EPERM, "group", "writable by others", "a group-writable parent");
	dir("gw", 0720, 0);
	dir("gw/run", 0755, 0);
	expect("gw/run", 0, -EPERM, "gw", "mode 0720", "a parent only its group can write (0720)");

	dir("sticky", 01777, 0);
	dir("sticky/run", 0755, 0);
	expect("sticky/run", 0, 0, NULL, NULL, "root's directory in a sticky root-owned parent");
	dir("sticky/other", 0755, NOBODY);
	expect("sticky/other", 0, -EPERM, "sticky/other", "owned by uid 65534",
		"another user's directory in a sticky parent");
	dir("nsticky", 01777, NOBODY);
	dir("nsticky/run", 0755, 0);
	expect("nsticky/run", 0, -EPERM, "nsticky", "owned by uid 65534",
		"a sticky parent another user owns");
	dir("gsticky", 01775, 0);
	dir("gsticky/run", 0755, 0);
	expect("gsticky/run", 0, 0, NULL, NULL, "a group-writable sticky parent of root's");

	dir("open", 0757, 0);
	expect("open", 0, -EPERM, "open", "writable by others",
		"the directory itself world-writable");
	dir("stickylast", 01777, 0);
	expect("stickylast", 0, -EPERM, "stickylast", "writable by others",
		"the directory itself sticky and world-writable (as /tmp)");

	if (symlink("sticky/run", "link-ok") == 0 && symlink("theirs", "link-theirs") == 0 &&
		symlink("../world/run", "mine/link-world") == 0) {
		expect("link-ok", 0, 0, NULL, NULL, "a symlink to a trusted directory");
		expect("link-theirs", 0, -EPERM, "theirs", "owned by uid 65534",
			"a symlink to another user's directory: its target is checked");
		expect("mine/link-world", 0, -EPERM, "world", "writable by others",
			"a symlink to a directory below a world-writable one");
	} else {
		tap_skip("symlinks: %s", strerror(errno));
	}
	expect("mine/../mine", 0, 0, NULL, NULL, "'..' in the path");
	expect(".", 0, 0, NULL, NULL, "a relative path: the working directory");
	expect("none", 0, -ENOENT, NULL, NULL, "a missing directory is -ENOENT");
	expect("mine/none/x", 0, -ENOENT, NULL, NULL, "a missing parent too");

	fd = open("mine/file", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd >= 0)
		close(fd);
	expect("mine/file", 0, 0, NULL, NULL, "root's 0644 file in root's directory");
	chmod("mine/file", 0666);
	expect("mine/file", 0, -EPERM, "mine/file", "writable by others", "a 0666 file");

	fd = kura_path_open_trusted("link-ok", 0, why, sizeof(why));
	tap_ok(fd >= 0 && fstat(fd, &a) == 0 && stat("sticky/run", &b) == 0 &&
			a.st_ino == b.st_ino && a.st_dev == b.st_dev,
		"the descriptor handed back is the directory checked (the symlink's target)");
	tap_ok(fd >= 0 && (fcntl(fd, F_GETFD) & FD_CLOEXEC) && (fcntl(fd, F_GETFL) & O_PATH),
		"an O_PATH descriptor, close-on-exec");
	if (fd >= 0)
		close(fd);
	tap_is(kura_path_open_trusted("theirs", 0, NULL, 0), -EPERM,
		"refused without a buffer for the reason");
	tap_is(kura_path_trusted("theirs", 0, why, 8), -EPERM, "a short reason buffer");
	tap_ok(strlen(why) == 7, "  is cut, not overrun: '%s'", why);

	tap_ok(chdir("/") == 0, "leave %s", root);
	tap_rmtree(root);
	return tap_done();
}

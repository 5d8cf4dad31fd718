/* Locks the calling process down: user, capabilities, no_new_privs, Landlock, and loads a
 * seccomp filter built already (seccomp.c builds them). Raw syscalls only, no libcap, no
 * libseccomp, so the static client carries none of them. No plaintext. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/landlock.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "sandbox.h"

static int cap_last(void)
{
	char buf[16] = { 0 };
	int fd, last = CAP_LAST_CAP;
	ssize_t n;

	fd = open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return last;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n > 0 && buf[0] >= '0' && buf[0] <= '9') {
		last = (int)strtol(buf, NULL, 10);
		if (last > 63)
			last = 63;
	}
	return last;
}

static int caps_get(struct __user_cap_data_struct d[2])
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };

	return syscall(SYS_capget, &h, d) < 0 ? -errno : 0;
}

static uint64_t permitted(const struct __user_cap_data_struct d[2])
{
	return (uint64_t)d[0].permitted | (uint64_t)d[1].permitted << 32;
}

/*
 * The bounding set goes first, while CAP_SETPCAP is still effective (PR_CAPBSET_DROP needs it;
 * it does not take a capability from the sets the process holds, so setresuid still works). A
 * process without CAP_SETPCAP may keep its bounding set only if it holds nothing beyond keep:
 * with no_new_privs set, no execve can raise its sets again, so the bounding set has nothing
 * left to bound.
 */
static int drop_bounding(uint64_t keep, const char **step)
{
	struct __user_cap_data_struct d[2];
	int last = cap_last(), r;

	*step = "ambient capabilities";
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return -errno;
	*step = "the bounding set";
	for (int c = 0; c <= last; c++) {
		if (keep & (1ULL << c))
			continue;
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) == 0)
			continue;
		if (errno == EINVAL)
			break; /* past what this kernel knows */
		if (errno != EPERM)
			return -errno;
		r = caps_get(d);
		if (r < 0)
			return r;
		if (permitted(d) & ~keep)
			return -EPERM;
		break;
	}
	return 0;
}

static int change_user(const struct kura_sandbox *sb, const char **step)
{
	*step = "PR_SET_KEEPCAPS";
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		return -errno;
	*step = "setgroups";
	if (setgroups(0, NULL) < 0)
		return -errno;
	*step = "setresgid";
	if (setresgid(sb->gid, sb->gid, sb->gid) < 0)
		return -errno;
	*step = "setresuid";
	if (setresuid(sb->uid, sb->uid, sb->uid) < 0)
		return -errno;
	*step = "PR_SET_KEEPCAPS";
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
		return -errno;
	return 0;
}

/* Permitted and effective become keep (at most what is permitted now); inheritable empty. */
static int set_caps(uint64_t keep)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2];
	uint64_t c;
	int r;

	r = caps_get(d);
	if (r < 0)
		return r;
	c = permitted(d) & keep;
	d[0] = d[1] = (struct __user_cap_data_struct){ 0 };
	d[0].permitted = d[0].effective = (uint32_t)c;
	d[1].permitted = d[1].effective = (uint32_t)(c >> 32);
	return syscall(SYS_capset, &h, d) < 0 ? -errno : 0;
}

/* The filesystem rights each Landlock ABI knows (index: ABI version). */
static uint64_t ll_handled(int abi)
{
	uint64_t fs = LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |
		LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR |
		LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |
		LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_DIR |
		LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_SOCK |
		LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_BLOCK |
		LANDLOCK_ACCESS_FS_MAKE_SYM;

	if (abi >= 2)
		fs |= 1ULL << 13; /* REFER */
	if (abi >= 3)
		fs |= 1ULL << 14; /* TRUNCATE */
	if (abi >= 5)
		fs |= 1ULL << 15; /* IOCTL_DEV */
	return fs;
}

#define LL_FILE_RIGHTS                                                                             \
	(LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |                              \
		LANDLOCK_ACCESS_FS_READ_FILE | 1ULL << 14 | 1ULL << 15)

static uint64_t ll_rights(unsigned access, uint64_t handled)
{
	uint64_t r = 0;

	if (access & KURA_LL_READ)
		r |= LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR;
	if (access & KURA_LL_WRITE)
		r |= LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_REMOVE_DIR |
			LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_DIR |
			LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_SYM | 1ULL << 13 |
			1ULL << 14;
	if (access & KURA_LL_EXEC)
		r |= LANDLOCK_ACCESS_FS_EXECUTE;
	return r & handled;
}

static int landlock(const struct kura_sandbox *sb, const char **step)
{
	static bool warned;
	struct landlock_ruleset_attr attr = { 0 };
	int abi, fd, r = 0;

	if (sb->n_paths == 0 && !sb->no_fs)
		return 0;
	*step = "Landlock's ABI probe";
	abi = (int)syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	if (abi < 0) {
		if (errno != ENOSYS && errno != EOPNOTSUPP)
			return -errno;
		if (!warned)
			kura_log(LOG_WARNING,
				"%s: no Landlock here (the kernel, or a seccomp profile around "
				"us, lacks it); going on without it",
				sb->role);
		warned = true;
		return 0;
	}
	attr.handled_access_fs = ll_handled(abi);
	*step = "landlock_create_ruleset";
	fd = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
	if (fd < 0)
		return -errno;
	for (size_t i = 0; i < sb->n_paths && r == 0; i++) {
		struct landlock_path_beneath_attr pb = { 0 };
		struct stat st;

		*step = sb->paths[i].path;
		pb.parent_fd = open(sb->paths[i].path, O_PATH | O_CLOEXEC);
		if (pb.parent_fd < 0 && errno == ENOENT && (sb->paths[i].access & KURA_LL_OPTIONAL))
			continue;
		if (pb.parent_fd < 0 || fstat(pb.parent_fd, &st) < 0) {
			r = -errno;
			break;
		}
		pb.allowed_access = ll_rights(sb->paths[i].access, attr.handled_access_fs);
		if (!S_ISDIR(st.st_mode))
			pb.allowed_access &= LL_FILE_RIGHTS;
		if (pb.allowed_access &&
			syscall(SYS_landlock_add_rule, fd, LANDLOCK_RULE_PATH_BENEATH, &pb, 0) < 0)
			r = -errno;
		close(pb.parent_fd);
	}
	if (r == 0) {
		*step = "landlock_restrict_self";
		if (syscall(SYS_landlock_restrict_self, fd, 0) < 0)
			r = -errno;
	}
	close(fd);
	return r;
}

int kura_sandbox_prepare(const struct kura_sandbox *sb)
{
	const char *step = "";
	bool caps = sb->keep_caps != KURA_SB_CAPS_UNCHANGED;
	int r = 0;

	if (caps)
		r = drop_bounding(sb->keep_caps, &step);
	if (r == 0 && sb->change_user)
		r = change_user(sb, &step);
	if (r == 0 && caps) {
		step = "capset";
		r = set_caps(sb->keep_caps);
	}
	if (r == 0) {
		step = "PR_SET_NO_NEW_PRIVS";
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
			r = -errno;
	}
	if (r == 0)
		r = landlock(sb, &step);
	if (r < 0)
		kura_log(LOG_ERR, "%s: cannot lock the process down: %s: %s", sb->role, step,
			strerror(-r));
	return r;
}

int kura_sandbox_load_bpf(const struct kura_sandbox *sb, const void *insns, size_t n_insns)
{
	struct sock_fprog prog = { .len = (unsigned short)n_insns, .filter = (void *)insns };

	if (n_insns == 0 || n_insns > BPF_MAXINSNS ||
		syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog) !=
			0) {
		int r = n_insns == 0 || n_insns > BPF_MAXINSNS ? -EINVAL : -errno;

		kura_log(LOG_ERR, "%s: cannot lock the process down: seccomp: %s", sb->role,
			strerror(-r));
		return r;
	}
	return 0;
}

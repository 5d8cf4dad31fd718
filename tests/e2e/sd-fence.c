/* sd-fence: run a command under what kurad.service's hardening directives do to a process,
 * as systemd 252 (Debian 12) implements them, for a machine whose PID 1 is not systemd. The
 * file system directives (ProtectSystem=strict, ProtectHome, PrivateTmp, ProtectKernelTunables,
 * ProtectKernelModules, ProtectKernelLogs, ProtectControlGroups) are mounts, made by
 * sd-mounts.sh in a mount namespace of the test's; this does the rest:
 *   CapabilityBoundingSet=CAPS (numbers, comma-separated), AmbientCapabilities= (none),
 *   NoNewPrivileges, UMask=0077, and the seccomp filters of RestrictAddressFamilies=AF_UNIX
 *   AF_INET AF_INET6, MemoryDenyWriteExecute, LockPersonality, RestrictNamespaces,
 *   RestrictRealtime, RestrictSUIDSGID, ProtectClock, ProtectKernelModules, ProtectKernelLogs
 *   (syslog(2)), ProtectHostname and
 *   SystemCallArchitectures=native (a call of another ABI kills the process).
 * Usage: sd-fence CAP[,CAP...] COMMAND [ARG...] */
/* libseccomp's SCMP_An() macros leave datum_b to zero: clang warns of it. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include <errno.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/capability.h>

#define NS_FLAGS                                                                                   \
	(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | \
		CLONE_NEWCGROUP)

static int deny(scmp_filter_ctx ctx, int err, const char *name, unsigned n,
	const struct scmp_arg_cmp *cmp)
{
	int nr = seccomp_syscall_resolve_name(name);

	if (nr == __NR_SCMP_ERROR)
		return 0; /* not on this architecture */
	int r = seccomp_rule_add_array(ctx, SCMP_ACT_ERRNO((uint16_t)err), nr, n, cmp);

	if (r < 0)
		fprintf(stderr, "sd-fence: %s: %s\n", name, strerror(-r));
	return r;
}

static int filters(void)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	int r = 0;

	if (!ctx)
		return -ENOMEM;
	/* RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6: socket() of any other family. */
	{
		for (int fam = 0; fam < AF_MAX && r == 0; fam++) {
			struct scmp_arg_cmp one = SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)fam);

			if (fam != AF_UNIX && fam != AF_INET && fam != AF_INET6)
				r = deny(ctx, EAFNOSUPPORT, "socket", 1, &one);
		}
		if (r == 0) {
			struct scmp_arg_cmp ge = SCMP_A0(SCMP_CMP_GE, AF_MAX);

			r = deny(ctx, EAFNOSUPPORT, "socket", 1, &ge);
		}
	}
	/* MemoryDenyWriteExecute: no mapping both writable and executable, no making one
	 * executable later, no executable System V shared memory. */
	if (r == 0) {
		struct scmp_arg_cmp wx = SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC | PROT_WRITE,
			PROT_EXEC | PROT_WRITE);
		struct scmp_arg_cmp x = SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, PROT_EXEC);
		struct scmp_arg_cmp shm = SCMP_A2(SCMP_CMP_MASKED_EQ, SHM_EXEC, SHM_EXEC);

		r = deny(ctx, EPERM, "mmap", 1, &wx);
		if (r == 0)
			r = deny(ctx, EPERM, "mprotect", 1, &x);
		if (r == 0)
			r = deny(ctx, EPERM, "pkey_mprotect", 1, &x);
		if (r == 0)
			r = deny(ctx, EPERM, "shmat", 1, &shm);
	}
	/* LockPersonality: personality() to PER_LINUX (0) alone. Stricter than systemd's, which
	 * also lets a process ask (0xffffffff): what runs here runs there. */
	for (int b = 0; b < 32 && r == 0; b++) {
		struct scmp_arg_cmp bit = SCMP_A0(SCMP_CMP_MASKED_EQ, 1ULL << b, 1ULL << b);

		r = deny(ctx, EPERM, "personality", 1, &bit);
	}
	/* RestrictNamespaces=yes: no new namespace, no joining one. */
	if (r == 0) {
		for (unsigned long f = 1; f && r == 0; f <<= 1) {
			struct scmp_arg_cmp any = SCMP_A0(SCMP_CMP_MASKED_EQ, f, f);

			if (!(f & NS_FLAGS))
				continue;
			r = deny(ctx, EPERM, "unshare", 1, &any);
			if (r == 0)
				r = deny(ctx, EPERM, "clone", 1, &any);
		}
		if (r == 0)
			r = deny(ctx, EPERM, "setns", 0, NULL);
		if (r == 0)
			r = deny(ctx, ENOSYS, "clone3", 0, NULL);
	}
	/* RestrictRealtime: no SCHED_FIFO (1), SCHED_RR (2), SCHED_DEADLINE (6). */
	if (r == 0) {
		for (int pol = 1; pol <= 6 && r == 0; pol++) {
			struct scmp_arg_cmp p = SCMP_A1(SCMP_CMP_EQ, (scmp_datum_t)pol);

			if (pol == 1 || pol == 2 || pol == 6)
				r = deny(ctx, EPERM, "sched_setscheduler", 1, &p);
		}
	}
	/* RestrictSUIDSGID: no set-user/group-ID bit set on a file. */
	if (r == 0) {
		struct scmp_arg_cmp m1 = SCMP_A1(SCMP_CMP_MASKED_EQ, S_ISUID, S_ISUID);
		struct scmp_arg_cmp g1 = SCMP_A1(SCMP_CMP_MASKED_EQ, S_ISGID, S_ISGID);
		struct scmp_arg_cmp m2 = SCMP_A2(SCMP_CMP_MASKED_EQ, S_ISUID, S_ISUID);
		struct scmp_arg_cmp g2 = SCMP_A2(SCMP_CMP_MASKED_EQ, S_ISGID, S_ISGID);

		r = deny(ctx, EPERM, "chmod", 1, &m1);
		r = r ? r : deny(ctx, EPERM, "chmod", 1, &g1);
		r = r ? r : deny(ctx, EPERM, "fchmod", 1, &m1);
		r = r ? r : deny(ctx, EPERM, "fchmod", 1, &g1);
		r = r ? r : deny(ctx, EPERM, "fchmodat", 1, &m2);
		r = r ? r : deny(ctx, EPERM, "fchmodat", 1, &g2);
	}
	/* ProtectClock, ProtectKernelModules, ProtectKernelLogs, ProtectHostname. */
	{
		static const char *const calls[] = { "clock_settime", "settimeofday", "adjtimex",
			"clock_adjtime", "init_module", "finit_module", "delete_module", "syslog",
			"sethostname", "setdomainname" };

		for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]) && r == 0; i++)
			r = deny(ctx, EPERM, calls[i], 0, NULL);
	}
	if (r == 0)
		r = seccomp_load(ctx);
	seccomp_release(ctx);
	return r;
}

int main(int argc, char **argv)
{
	unsigned long long keep = 0;
	char *caps, *tok, *save = NULL;

	if (argc < 3) {
		fputs("usage: sd-fence CAP[,CAP...] COMMAND [ARG...]\n", stderr);
		return 2;
	}
	caps = strdup(argv[1]);
	for (tok = strtok_r(caps, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
		keep |= 1ULL << atoi(tok);
	/* CapabilityBoundingSet= and AmbientCapabilities= (none). */
	for (int c = 0; c <= 63; c++) {
		if (keep & (1ULL << c))
			continue;
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno == EINVAL)
			break;
	}
	(void)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	umask(077);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || filters() < 0) {
		perror("sd-fence");
		return 1;
	}
	execvp(argv[2], argv + 2);
	perror(argv[2]);
	return 127;
}

/* Build-time tool: writes the C header that holds kura's seccomp filter as BPF, so the static
 * client loads a filter libseccomp built without carrying libseccomp. No plaintext.
 * Usage: filter-gen OUT.h */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <linux/filter.h>
#include <unistd.h>

#include "sandbox.h"

/*
 * What kura does under the filter, found with `strace -f` on real runs in Docker and Podman:
 * connect to the broker over a Unix socket (and no other family), read and write it, check the
 * target with openat2/statx/fstatfs and O_PATH walks up to /, write the set (mkdirat, openat,
 * fchown, fchmod, renameat2, symlinkat, readlinkat, unlinkat, getdents64), guarded memory
 * (mlock; mmap without PROT_EXEC is in the base list), and stdio's isatty check. Not here: exec,
 * fork, signals to others, ptrace, mount, any other socket family, anything that changes who
 * the process is.
 */
static const struct kura_sandbox_rule client_rules[] = {
	KURA_SB_WHEN("socket", KURA_SB_IF(0, KURA_SB_EQ, AF_UNIX, 0)),
	KURA_SB_ANY("connect"),
	KURA_SB_ANY("sendto"),
	KURA_SB_ANY("recvfrom"),
	KURA_SB_ANY("poll"),
	KURA_SB_ANY("ppoll"),
	KURA_SB_ANY("openat"),
	KURA_SB_ANY("openat2"),
	KURA_SB_ANY("newfstatat"),
	KURA_SB_ANY("statx"),
	KURA_SB_ANY("fstatfs"),
	KURA_SB_ANY("fcntl"),
	KURA_SB_ANY("lseek"),
	KURA_SB_ANY("getdents64"),
	KURA_SB_ANY("mkdirat"),
	KURA_SB_ANY("unlinkat"),
	KURA_SB_ANY("renameat"),
	KURA_SB_ANY("renameat2"),
	KURA_SB_ANY("symlinkat"),
	KURA_SB_ANY("readlinkat"),
	KURA_SB_ANY("fchmod"),
	KURA_SB_ANY("fchown"),
	KURA_SB_ANY("mlock"),
	KURA_SB_ANY("munlock"),
	KURA_SB_ANY("geteuid"),
	KURA_SB_ANY("getuid"),
	KURA_SB_ANY("getegid"),
	KURA_SB_ANY("getgid"),
	KURA_SB_WHEN("ioctl", KURA_SB_IF(1, KURA_SB_EQ, TCGETS, 0)),
};

int main(int argc, char **argv)
{
	const struct kura_sandbox sb = {
		.role = "kura",
		.rules = client_rules,
		.n_rules = sizeof(client_rules) / sizeof(client_rules[0]),
	};
	struct sock_filter insn;
	FILE *tmp, *out;
	size_t n = 0;

	if (argc != 2) {
		fputs("usage: filter-gen OUT.h\n", stderr);
		return 2;
	}
	tmp = tmpfile();
	if (!tmp || kura_sandbox_export_bpf(&sb, fileno(tmp)) < 0 || fseek(tmp, 0, SEEK_SET) < 0)
		return 3;
	out = fopen(argv[1], "w");
	if (!out)
		return 3;
	fprintf(out,
		"/* kura's seccomp filter as BPF (%zu syscalls allowed), made by client/filter-gen.c "
		"at build time. */\n#pragma once\n#include <linux/filter.h>\n"
		"static const struct sock_filter kura_client_bpf[] = {\n",
		kura_sandbox_count(&sb));
	while (fread(&insn, sizeof(insn), 1, tmp) == 1) {
		fprintf(out, "\t{ 0x%04x, %u, %u, 0x%08x },\n", insn.code, insn.jt, insn.jf,
			insn.k);
		n++;
	}
	fputs("};\n", out);
	fclose(tmp);
	if (fclose(out) != 0 || n == 0)
		return 3;
	return 0;
}

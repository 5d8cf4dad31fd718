#!/bin/sh
# sd-mounts: in the mount namespace of its own that `unshare -m --propagation slave` made, what
# kurad.service's file-system directives do, as systemd 252 (Debian 12) sets them up, then exec
# COMMAND: for a machine whose PID 1 is not systemd (tests/e2e/sd-fence.c does the rest).
#   ProtectSystem=strict    every mount read-only but the API file systems /dev, /proc, /sys;
#   StateDirectory=, RuntimeDirectory=  DIR... read-write again;
#   PrivateTmp=yes          /tmp and /var/tmp empty and the service's own;
#   ProtectHome=yes         /home, /root and /run/user empty and inaccessible;
#   ProtectKernelTunables=yes  /proc/sys, /proc/sysrq-trigger, /proc/fs, /proc/irq and /sys
#                           read-only, /proc/kallsyms and /proc/kcore inaccessible;
#   ProtectKernelModules=yes   /usr/lib/modules and /lib/modules inaccessible;
#   ProtectKernelLogs=yes   /proc/kmsg and /dev/kmsg inaccessible;
#   ProtectControlGroups=yes   /sys/fs/cgroup read-only.
# Changes here never reach the host's namespace (propagation slave). Any step that fails stops
# it: a test must not pass under a fence that was not put up.
# Usage: sd-mounts.sh DIR... -- COMMAND [ARG...]
set -eu
rw=
while [ $# -gt 0 ] && [ "$1" != -- ]; do
	rw="$rw $1"
	shift
done
[ $# -ge 2 ] || { echo "usage: $0 DIR... -- COMMAND [ARG...]" >&2; exit 2; }
shift
[ "$(readlink /proc/self/ns/mnt)" != "$(readlink "/proc/$PPID/ns/mnt")" ] ||
	{ echo "sd-mounts: not in a mount namespace of its own" >&2; exit 2; }

# Inaccessible: an empty, read-only directory of mode 0 (systemd's /run/systemd/inaccessible/dir)
# over a directory, /dev/null over a file.
hide() {
	[ -e "$1" ] || return 0
	if [ -d "$1" ]; then
		mount -t tmpfs -o ro,mode=000,nosuid,nodev,noexec tmpfs "$1"
	else
		mount --bind -o ro /dev/null "$1"
	fi
}

# ProtectSystem=strict: every mount point (field 5 of mountinfo; octal escapes for spaces are
# left as they are, no such mount is ours), but the API file systems and what is under them.
# A mount whose file system cannot be made read-only (nsfs) is left: it holds no files.
awk '{ print $5 }' /proc/self/mountinfo | sort -u | while read -r m; do
	case $m in
	/dev | /dev/* | /proc | /proc/* | /sys | /sys/*) continue ;;
	esac
	if ! mount -o remount,bind,ro "$m" 2>/dev/null; then
		[ "$(stat -f -c %T "$m" 2>/dev/null)" = nsfs ] && continue
		[ ! -d "$m" ] && [ ! -f "$m" ] && continue
		echo "sd-mounts: cannot make $m read-only" >&2
		exit 1
	fi
done
[ "$(awk '$5 == "/" { print $6 }' /proc/self/mountinfo | cut -d, -f1)" = ro ] ||
	{ echo "sd-mounts: / is still writable" >&2; exit 1; }

for d in $rw; do
	mount --bind "$d" "$d"
	mount -o remount,bind,rw "$d"
done

for d in /tmp /var/tmp; do
	mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$d"
done
for d in /home /root /run/user; do
	hide "$d"
done

for p in /proc/sys /proc/sysrq-trigger /proc/fs /proc/irq; do
	[ -e "$p" ] || continue
	mount --rbind "$p" "$p"
	mount -o remount,bind,ro "$p"
done
# /sys and each mount under it: the cgroup hierarchies (ProtectControlGroups=) among them.
awk '$5 == "/sys" || $5 ~ /^\/sys\// { print $5 }' /proc/self/mountinfo | sort -u |
	while read -r m; do
		mount -o remount,bind,ro "$m" 2>/dev/null || {
			echo "sd-mounts: cannot make $m read-only" >&2
			exit 1
		}
	done
for p in /proc/kallsyms /proc/kcore /proc/kmsg /dev/kmsg /usr/lib/modules /lib/modules; do
	hide "$p"
done
exec "$@"

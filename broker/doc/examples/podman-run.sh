#!/bin/sh
# kura with Podman: run IMAGE with kurad's run directory mounted and a tmpfs for the secrets;
# kura (the image's /kura) fetches what this container is granted into /run/secrets, then
# execs CMD (default /app/server).
#
# kurad asks Podman's API who a container is, so rootful Podman's API service must run
# (systemctl enable --now podman.socket, or podman system service --time=0 &) and kurad must
# name it:  kurad --runtime podman=unix:/run/podman/podman.sock
#
#   kuractl grant app/db --image "$(podman image inspect -f '{{.Id}}' myapp:1)"
#   sh podman-run.sh myapp:1
#
# Usage: podman-run.sh IMAGE [CMD ARGS...]
# KURA_RUN_DIR: kurad's --run-dir (default /run/kura); PODMAN: the podman command (default
# podman).
set -eu
[ $# -ge 1 ] || { echo "usage: $0 IMAGE [CMD ARGS...]" >&2; exit 2; }
image=$1
shift
[ $# -gt 0 ] || set -- /app/server
# The run directory, never the socket file: a restart or upgrade of kurad makes a new socket,
# which a mounted directory shows and a mounted file does not.
# shellcheck disable=SC2086 # PODMAN may carry options of its own
exec ${PODMAN:-podman} run --rm --read-only \
	-v "${KURA_RUN_DIR:-/run/kura}:/run/kura:ro" \
	--tmpfs /run/secrets:mode=0700,noexec,nosuid,nodev \
	"$image" /kura run -- "$@"

#!/bin/sh
# The Quick start's container part: kurad on the embedded store, a private Docker daemon, an
# image of nothing but busybox and the static kura client, a grant to that image's ID, and a
# container that prints the secret it was given. Everything started here is stopped on exit.
# Usage: demo-container.sh BUILD_DIR
set -eu
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
case $build in /*) ;; *) build=$root/$build ;; esac
kuractl="$build/broker/kuractl/kuractl"
kurad="$build/broker/kurad/kurad"
kura="$build/client/kura"

E2E=$(mktemp -d /tmp/kura-demo-XXXXXX)
chmod 755 "$E2E"
. "$root/tests/e2e/runtimes.sh"
KPID=
cleanup() {
	set +e # best effort: whatever is already gone is fine
	[ -n "$KPID" ] && kill "$KPID" 2>/dev/null && wait "$KPID" 2>/dev/null
	e2e_cleanup
	rm -rf "$E2E"
}
trap cleanup EXIT INT TERM

step() { printf '\n$ %s\n' "$*"; "$@"; }

echo "== a container fetches its secret (private dockerd in $E2E)"
if ! e2e_start_docker; then
	echo "demo: skipping the container part: $E2E_WHY"
	exit 0
fi
state=$E2E/state
run=$E2E/run
"$kuractl" --state-dir "$state" init --audit-key-out "$E2E/audit.key" >/dev/null
printf 's3cr3t-from-kura' | "$kuractl" --state-dir "$state" secret put app/db >/dev/null
HAVE_DOCKER=yes
e2e_start_kurad "$kurad" "$state" "$run"

e2e_rootfs "$E2E/rootfs" "$kura"
tar -C "$E2E/rootfs" -cf "$E2E/rootfs.tar" .
dk import "$E2E/rootfs.tar" kura-demo:1 >/dev/null
image=$(dk image inspect -f '{{.Id}}' kura-demo:1)
step "$kuractl" --state-dir "$state" --run-dir "$run" grant app/db --image "$image"
printf '\n$ docker run --rm --network none -v %s:/run/kura:ro \\\n' "$run"
printf '      --tmpfs /run/secrets:mode=0700,noexec,nosuid,nodev kura-demo:1 \\\n'
printf '      /kura run -- /bin/cat /run/secrets/app/db\n'
dk run --rm --network none -v "$run:/run/kura:ro" \
	--tmpfs /run/secrets:mode=0700,noexec,nosuid,nodev kura-demo:1 \
	/kura run -- /bin/cat /run/secrets/app/db
printf '\n'
# The evidence: the container's fetch in the audit log, with the container and image kurad
# derived, then the whole chain checked with the starting key kuractl init handed out.
step "$kuractl" --state-dir "$state" audit --event fetch
step "$kuractl" --state-dir "$state" audit verify --key "$E2E/audit.key"
printf '\ncontainer demo done: the value reached the container through a tmpfs only, and its fetch is in the audit log\n'

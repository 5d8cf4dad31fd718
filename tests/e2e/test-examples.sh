#!/bin/sh
# README's examples, run as shipped (broker/doc/examples/): the docker-compose file with
# Debian's docker-compose against a private dockerd, and the Podman script against a private
# Podman, each with a real kurad; the app container gets its secret through `kura run`, from
# kurad's run directory mounted read-only (never the socket file); an image without a grant
# gets nothing. Only the test's own networking differs (no bridge on these hosts): an override
# file for compose, and containers.conf's netns for Podman.
# Usage: test-examples.sh KURAD KURACTL KURA EXAMPLES_DIR
set -u
[ $# -eq 4 ] || { echo "usage: $0 KURAD KURACTL KURA EXAMPLES_DIR" >&2; exit 2; }
KURAD=$1
K=$2
KURA=$3
EX=$4
HERE=$(dirname "$0")
. "$HERE/../cli/tap.sh"

[ "$(id -u)" -eq 0 ] || { echo "1..0 # SKIP runs as root (dockerd, Podman, kurad)"; exit 0; }
[ -x "$KURA" ] || { echo "1..0 # SKIP no static kura client (a sanitizer build)"; exit 0; }

E2E=$(mktemp -d /tmp/kura-examples-XXXXXX)
chmod 755 "$E2E"
. "$HERE/runtimes.sh"
KPID=
cleanup() {
	if [ -n "$KPID" ]; then
		kill "$KPID" 2>/dev/null
		wait "$KPID" 2>/dev/null
	fi
	e2e_cleanup
	[ -f "$E2E/kurad.log" ] && cp "$E2E/kurad.log" /tmp/kura-examples-last.log
	rm -rf "$E2E"
}
trap cleanup EXIT
S=$E2E/state
R=$E2E/run
VALUE="compose-db-$$-$(date +%s)"

e2e_start_runtimes
if [ "$HAVE_DOCKER" = no ] && [ "$HAVE_PODMAN" = no ]; then
	echo "1..0 # SKIP no runtime starts: docker: $WHY_DOCKER; podman: $WHY_PODMAN"
	exit 0
fi

"$K" --state-dir "$S" init --audit-key-out "$E2E/audit.key" >/dev/null 2>&1 ||
	tap_bail "kuractl init failed"
printf '%s' "$VALUE" | "$K" --state-dir "$S" secret put app/db >/dev/null || tap_bail "secret put failed"

# The app: /kura and an /app/server that prints the secret kura wrote. A second image differs by
# one file, so it has an ID of its own, and gets no grant.
e2e_rootfs "$E2E/root" "$KURA"
mkdir -p "$E2E/root/app"
printf '#!/bin/sh\nprintf "server got [%%s]\\n" "$(cat /run/secrets/app/db)"\n' >"$E2E/root/app/server"
chmod 755 "$E2E/root/app/server"
tar -C "$E2E/root" -cf "$E2E/app.tar" .
echo other >"$E2E/root/other"
tar -C "$E2E/root" -cf "$E2E/other.tar" .

# --- docker-compose -------------------------------------------------------------------------------
COMPOSE_OK=no
RAN=0 # examples that ran, each with one fetch
if [ "$HAVE_DOCKER" = yes ] && command -v docker-compose >/dev/null 2>&1; then
	dk import "$E2E/app.tar" kura-example:1 >/dev/null && dk import "$E2E/other.tar" kura-example:2 >/dev/null
	"$K" --state-dir "$S" grant app/db --image "$(dk image inspect -f '{{.Id}}' kura-example:1)" >/dev/null
	COMPOSE_OK=yes
fi
if [ "$HAVE_PODMAN" = yes ]; then
	pm import "$E2E/app.tar" kura-example:1 >/dev/null 2>&1 &&
		pm import "$E2E/other.tar" kura-example:2 >/dev/null 2>&1
	# Podman prints the ID without its algorithm
	"$K" --state-dir "$S" grant app/db --image "sha256:$(pm image inspect -f '{{.Id}}' kura-example:1)" \
		>/dev/null
fi
e2e_start_kurad "$KURAD" "$S" "$R" || tap_bail "kurad did not start: $(tail -n 5 "$E2E/kurad.log")"

# compose PROJECT ARGS...: docker-compose on the example file, against our dockerd.
compose() {
	_p=$1
	shift
	DOCKER_HOST="unix://$E2E/docker.sock" KURA_RUN_DIR=$R \
		docker-compose --no-ansi -p "$_p" -f "$EX/docker-compose.yml" -f "$E2E/override.yml" "$@"
}
printf 'version: "2.4"\nservices:\n  app:\n    network_mode: none\n' >"$E2E/override.yml"
if [ "$COMPOSE_OK" = yes ]; then
	APP_IMAGE=kura-example:1 compose kuraex up --exit-code-from app >"$E2E/up" 2>&1
	rc=$?
	want "docker-compose up exits $rc" test "$rc" -eq 0
	want "the app did not print its secret" grep -qF "server got [$VALUE]" "$E2E/up" && RAN=$((RAN + 1))
	CID=$(APP_IMAGE=kura-example:1 compose kuraex ps -q app 2>/dev/null)
	dk inspect -f '{{range .Mounts}}{{.Type}} {{.Source}} {{.Destination}} {{.RW}}{{"\n"}}{{end}}' \
		"$CID" >"$E2E/mounts" 2>&1
	want "the run directory is not mounted read-only at /run/kura: $(cat "$E2E/mounts")" \
		grep -qx "bind $R /run/kura false" "$E2E/mounts"
	dk inspect -f '{{json .HostConfig.Tmpfs}}' "$CID" >"$E2E/tmpfs" 2>&1
	want "no tmpfs at /run/secrets: $(cat "$E2E/tmpfs")" grep -q '"/run/secrets":"mode=0700' "$E2E/tmpfs"
	APP_IMAGE=kura-example:1 compose kuraex down >/dev/null 2>&1
	t_end "docker-compose: the example's app gets its secret through kura run" "$(cat "$E2E/up")"

	APP_IMAGE=kura-example:2 compose kuraex2 up --exit-code-from app >"$E2E/up2" 2>&1
	rc=$?
	want "an image without a grant: docker-compose up exits 0" test "$rc" -ne 0
	want "an image without a grant got the secret" test "$(grep -c "$VALUE" "$E2E/up2")" -eq 0
	APP_IMAGE=kura-example:2 compose kuraex2 down >/dev/null 2>&1
	t_end "docker-compose: the same file with an image no grant names gets nothing (exit $rc)" \
		"$(cat "$E2E/up2")"
elif [ "$HAVE_DOCKER" = no ]; then
	tap_skip "docker-compose: the example's app gets its secret through kura run" "$WHY_DOCKER"
	tap_skip "docker-compose: the same file with an image no grant names gets nothing" "$WHY_DOCKER"
else
	tap_skip "docker-compose: the example's app gets its secret through kura run" \
		"docker-compose is not installed"
	tap_skip "docker-compose: the same file with an image no grant names gets nothing" \
		"docker-compose is not installed"
fi

# --- Podman ---------------------------------------------------------------------------------------
if [ "$HAVE_PODMAN" = yes ]; then
	# The test's Podman: its private storage, and no network (containers.conf's netns).
	sed 's/^\[containers\]$/[containers]\nnetns = "none"/' "$E2E/containers.conf" >"$E2E/ex.conf"
	PODMAN="env CONTAINERS_CONF=$E2E/ex.conf podman --root $E2E/proot --runroot $E2E/prun"
	PODMAN=$PODMAN KURA_RUN_DIR=$R sh "$EX/podman-run.sh" kura-example:1 >"$E2E/pout" 2>&1
	rc=$?
	want "podman-run.sh exits $rc" test "$rc" -eq 0
	want "the app did not print its secret" grep -qF "server got [$VALUE]" "$E2E/pout" && RAN=$((RAN + 1))
	t_end "Podman: podman-run.sh's app gets its secret through kura run" "$(cat "$E2E/pout")"

	PODMAN=$PODMAN KURA_RUN_DIR=$R sh "$EX/podman-run.sh" kura-example:2 >"$E2E/pout2" 2>&1
	rc=$?
	want "an image without a grant: podman-run.sh exits 0" test "$rc" -ne 0
	want "an image without a grant got the secret" test "$(grep -c "$VALUE" "$E2E/pout2")" -eq 0
	t_end "Podman: an image no grant names gets nothing (exit $rc)" "$(cat "$E2E/pout2")"
else
	tap_skip "Podman: podman-run.sh's app gets its secret through kura run" "$WHY_PODMAN"
	tap_skip "Podman: an image no grant names gets nothing" "$WHY_PODMAN"
fi

# Each fetch is in the audit log with the container it went to.
N=$("$K" --state-dir "$S" audit --event fetch --json 2>/dev/null | grep -c '"result":"ok"')
want "the audit log holds $N ok fetches, not $RAN (one per example that ran)" test "$N" -eq "$RAN"
t_end "the examples' fetches are in the audit log ($N ok, $RAN examples)"

tap_done

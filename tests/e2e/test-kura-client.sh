#!/bin/sh
# The kura client end to end: on the host against kurad (a private tmpfs: modes, owners, the
# atomic layout, a rotation swapping the set, refusals), then inside real Docker and Podman
# containers whose image holds only busybox-static and /kura.
# Usage: test-kura-client.sh KURAD KURACTL KURA
set -u
[ $# -eq 3 ] || { echo "usage: $0 KURAD KURACTL KURA" >&2; exit 2; }
KURAD=$1
K=$2
KURA=$3
HERE=$(dirname "$0")
. "$HERE/../cli/tap.sh"

if [ "$(id -u)" -ne 0 ]; then
	echo "1..0 # SKIP the client tests run as root (tmpfs mounts, containers)"
	exit 0
fi
[ -x "$KURA" ] || { echo "1..0 # SKIP no static kura client (a sanitizer build)"; exit 0; }

E2E=$(mktemp -d /tmp/kura-client-XXXXXX)
chmod 755 "$E2E"
. "$HERE/runtimes.sh"
KPID=
cleanup() {
	[ -n "$KPID" ] && kill "$KPID" 2>/dev/null && wait "$KPID" 2>/dev/null
	e2e_cleanup # also unmounts our tmpfs mounts under $E2E
	[ -f "$E2E/kurad.log" ] && cp "$E2E/kurad.log" /tmp/kura-client-last.log
	rm -rf "$E2E"
}
trap cleanup EXIT
S=$E2E/state
R=$E2E/run
W=$R/workload.sock

"$KURA" --help >"$E2E/out" 2>&1
want "--help exits $?" test $? -eq 0
for c in 'Exit status' '13   the target' '15   write refused' '10   broker unreachable' '16   a malformed' 'IN_MOVED_TO' '--allow-partial' '--watch' 'exec:CMD2'; do
	want "--help lacks '$c'" grep -q -- "$c" "$E2E/out"
done
"$KURA" run --bogus >"$E2E/out" 2>&1
want "an unknown option exits $?, not 2" test $? -eq 2
"$KURA" run >"$E2E/out" 2>&1
want "run without CMD exits $?, not 2" test $? -eq 2
want "--version: $("$KURA" --version)" test "$("$KURA" --version)" = "kura $(sed -n "s/^  version : '\(.*\)',/\1/p" "$HERE/../../meson.build")"
t_end "kura --help documents exit codes and the layout; usage errors exit 2"

file -L "$KURA" | grep -q 'statically linked'
want "kura is not static: $(file -L "$KURA")" test $? -eq 0
strip -o "$E2E/kura.stripped" "$KURA"
SIZE=$(stat -c %s "$E2E/kura.stripped")
tap_diag "kura: $SIZE bytes stripped"
want "kura is $SIZE bytes stripped, over 1 MiB" test "$SIZE" -le 1048576
t_end "kura is one static executable of at most 1 MiB stripped ($SIZE bytes)"

"$K" --state-dir "$S" init >/dev/null
printf 'docker-db-password' >"$E2E/v-db"
printf 'the-app-config' >"$E2E/v-cfg"
printf 'top-level-token' >"$E2E/v-tok"
printf 'rotated-db-password' >"$E2E/v-db2"
head -c 65536 /dev/zero | tr '\0' 'x' >"$E2E/v-big"
"$K" --state-dir "$S" secret put app/db --file "$E2E/v-db" >/dev/null
"$K" --state-dir "$S" secret put app/cfg --file "$E2E/v-cfg" >/dev/null
"$K" --state-dir "$S" secret put token --file "$E2E/v-tok" >/dev/null
"$K" --state-dir "$S" secret put big --file "$E2E/v-big" >/dev/null
"$K" --state-dir "$S" grant 'app/*' --host >/dev/null
"$K" --state-dir "$S" grant token --host >/dev/null
"$K" --state-dir "$S" grant big --host >/dev/null

e2e_start_runtimes
e2e_start_kurad "$KURAD" "$S" "$R"

# --- on the host -------------------------------------------------------------------------------
D=$E2E/shm
mkdir -p "$D" "$E2E/disk" "$E2E/small" "$E2E/elsewhere"
mount -t tmpfs -o mode=0700,size=1m kura-client-test "$D"
mount -t tmpfs -o mode=0700,size=16k kura-client-test "$E2E/small"

"$KURA" --socket "$W" fetch --dir "$D" --uid 1234 --gid 2345 --mode 0440 --only app/db \
	--only app/cfg --only token >"$E2E/out" 2>&1
rc=$?
want "fetch exited $rc: $(cat "$E2E/out")" test $rc -eq 0
want "app/db holds $(cat "$D/app/db")" test "$(cat "$D/app/db")" = "$(cat "$E2E/v-db")"
want "token holds $(cat "$D/token")" test "$(cat "$D/token")" = "$(cat "$E2E/v-tok")"
want "app/db is $(stat -c '%a %u:%g' "$D/app/db")" test "$(stat -L -c '%a %u:%g' "$D/app/db")" = "440 1234:2345"
want "app/ is $(stat -L -c '%a %u:%g' "$D/app")" test "$(stat -L -c '%a %u:%g' "$D/app")" = "750 1234:2345"
DATA1=$(readlink "$D/..data")
want "..data -> '$DATA1'" test -n "$DATA1" -a "${DATA1#..kura_}" != "$DATA1"
want "app -> $(readlink "$D/app")" test "$(readlink "$D/app")" = "..data/app"
want "token -> $(readlink "$D/token")" test "$(readlink "$D/token")" = "..data/token"
want "a temporary file was left: $(find "$D" -name '*kura-tmp*')" test -z "$(find "$D" -name '*kura-tmp*')"
t_end "host: fetch writes the set with owner and mode, in the atomic layout"

"$K" --state-dir "$S" secret rotate app/db --file "$E2E/v-db2" >/dev/null
"$KURA" --socket "$W" fetch --dir "$D" --uid 1234 --gid 2345 --mode 0440 --only app/db \
	--only app/cfg >"$E2E/out" 2>&1
rc=$?
want "fetch exited $rc: $(cat "$E2E/out")" test $rc -eq 0
DATA2=$(readlink "$D/..data")
want "..data still points to $DATA1" test "$DATA2" != "$DATA1"
want "app/db holds $(cat "$D/app/db")" test "$(cat "$D/app/db")" = "$(cat "$E2E/v-db2")"
want "app/cfg holds $(cat "$D/app/cfg")" test "$(cat "$D/app/cfg")" = "$(cat "$E2E/v-cfg")"
want "the old set is still there: $(ls -A "$D")" test "$(ls -A "$D" | grep -c '^\.\.kura_')" -eq 1
want "token (left the set) is still there" test ! -e "$D/token" -a ! -L "$D/token"
t_end "host: a re-run after a rotation swaps the whole set and removes the old one"

"$KURA" --socket "$W" fetch --dir "$E2E/disk" --only app/db >"$E2E/out" 2>&1
rc=$?
want "exit $rc, not 13: $(cat "$E2E/out")" test $rc -eq 13
want "no clear line: $(cat "$E2E/out")" grep -q '^kura: .*not a tmpfs' "$E2E/out"
want "something was written: $(ls -A "$E2E/disk")" test -z "$(ls -A "$E2E/disk")"
t_end "host: a directory on disk is refused (13), nothing written"

ln -s "$E2E/elsewhere" "$E2E/small/app"
"$KURA" --socket "$W" fetch --dir "$E2E/small" --only app/db >"$E2E/out" 2>&1
rc=$?
want "exit $rc, not 15: $(cat "$E2E/out")" test $rc -eq 15
want "written through the symlink: $(ls -A "$E2E/elsewhere")" test -z "$(ls -A "$E2E/elsewhere")"
want "written beside it: $(ls -A "$E2E/small")" test "$(ls -A "$E2E/small")" = app
rm -f "$E2E/small/app"
ln -s "$D" "$E2E/link-to-shm"
"$KURA" --socket "$W" fetch --dir "$E2E/link-to-shm" --only app/db >"$E2E/out" 2>&1
rc=$?
want "a symlinked --dir exited $rc, not 15: $(cat "$E2E/out")" test $rc -eq 15
t_end "host: a symlink at the target (or in --dir) is refused (15), nothing written through it"

# Nobody but kura's user (and root) may be able to change what --dir holds: another user could
# plant a link with kura's own text before kura runs and repoint it afterwards.
if command -v setpriv >/dev/null 2>&1; then
	as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
	P=$E2E/plant
	mkdir -p "$P"
	mount -t tmpfs -o mode=1777,size=1m kura-client-test "$P"
	as_nobody ln -s ..data/token "$P/token"
	"$KURA" --socket "$W" fetch --dir "$P" --only token >"$E2E/out" 2>&1
	rc=$?
	want "exit $rc, not 15: $(cat "$E2E/out")" test $rc -eq 15
	want "no clear line: $(cat "$E2E/out")" grep -q "^kura: refusing $P: others can write it (mode 1777)" "$E2E/out"
	want "something was written: $(ls -A "$P")" test "$(ls -A "$P")" = token
	t_end "host: a directory others can write (a 1777 tmpfs holding a planted link) is refused (15), nothing written"

	chmod 0700 "$P" # closed by its owner; what was planted stays
	"$KURA" --socket "$W" fetch --dir "$P" --only token >"$E2E/out" 2>&1
	rc=$?
	want "exit $rc, not 15: $(cat "$E2E/out")" test $rc -eq 15
	want "no clear line: $(cat "$E2E/out")" grep -q "^kura: refusing to write token: $P/token is a link of uid 65534, not kura's own" "$E2E/out"
	want "something was written: $(ls -A "$P")" test "$(ls -A "$P")" = token
	want "the planted link changed: $(stat -c '%u %N' "$P/token")" test "$(stat -c %u "$P/token")" = 65534
	t_end "host: a link uid 65534 planted with kura's own text (token -> ..data/token) is refused (15), nothing written"

	rm -f "$P/token"
	"$KURA" --socket "$W" fetch --dir "$P" --only token >"$E2E/out" 2>&1
	want "the first fetch exited $?: $(cat "$E2E/out")" test $? -eq 0
	INO=$(stat -c %i "$P/token")
	"$KURA" --socket "$W" fetch --dir "$P" --only token >"$E2E/out" 2>&1
	rc=$?
	want "the second fetch exited $rc: $(cat "$E2E/out")" test $rc -eq 0
	want "the link was not kept: inode $(stat -c %i "$P/token"), was $INO" test "$(stat -c %i "$P/token")" = "$INO"
	want "token -> $(readlink "$P/token"), owner $(stat -c %u "$P/token")" test "$(readlink "$P/token") $(stat -c %u "$P/token")" = "..data/token 0"
	want "token holds $(cat "$P/token")" test "$(cat "$P/token")" = "$(cat "$E2E/v-tok")"
	t_end "host: kura's own link from an earlier run is kept and accepted"

	A=$E2E/above
	mkdir -p "$A"
	mount -t tmpfs -o mode=0777,size=1m kura-client-test "$A"
	mkdir -m 0700 "$A/secrets"
	"$KURA" --socket "$W" fetch --dir "$A/secrets" --only token >"$E2E/out" 2>&1
	rc=$?
	want "exit $rc, not 15: $(cat "$E2E/out")" test $rc -eq 15
	want "no clear line: $(cat "$E2E/out")" grep -q "^kura: refusing $A/secrets: others can write $A above it (mode 0777, not sticky)" "$E2E/out"
	want "something was written: $(ls -A "$A/secrets")" test -z "$(ls -A "$A/secrets")"
	chmod 1777 "$A"
	"$KURA" --socket "$W" fetch --dir "$A/secrets" --only token >"$E2E/out" 2>&1
	rc=$?
	want "under a sticky 1777 directory (as /tmp): exit $rc: $(cat "$E2E/out")" test $rc -eq 0
	t_end "host: a directory above --dir that others can write is refused (15) unless it is sticky"
else
	for t in 1777 planted own-link above; do tap_skip "host: $t" "no setpriv"; done
fi

"$KURA" --socket "$W" fetch --dir "$E2E/small" --only big --only token >"$E2E/out" 2>&1
rc=$?
want "exit $rc, not 14: $(cat "$E2E/out")" test $rc -eq 14
want "no clear line: $(cat "$E2E/out")" grep -q '^kura: .* is full' "$E2E/out"
want "a partial set was left: $(ls -A "$E2E/small")" test -z "$(ls -A "$E2E/small")"
t_end "host: a full tmpfs exits 14 and leaves nothing behind"

"$KURA" --socket "$E2E/nodir/workload.sock" fetch --dir "$D" >"$E2E/out" 2>&1
rc=$?
want "no socket: exit $rc, not 10: $(cat "$E2E/out")" test $rc -eq 10
want "no socket: the mount to add is not named: $(cat "$E2E/out")" \
	grep -q 'directory is not there (mount .*-v /run/kura:/run/kura:ro' "$E2E/out"
"$KURA" --socket "$W" run --dir "$D" --only nope -- /bin/echo STARTED >"$E2E/out" 2>&1
rc=$?
want "an ungranted --only: exit $rc, not 1: $(cat "$E2E/out")" test $rc -eq 1
want "the app started" test -z "$(grep STARTED "$E2E/out")"
"$KURA" --socket "$W" run --dir "$D" --only nope --only token --allow-partial -- /bin/cat \
	"$D/token" >"$E2E/out" 2>&1
rc=$?
want "--allow-partial: exit $rc: $(cat "$E2E/out")" test $rc -eq 0
want "--allow-partial did not run the app with the rest: $(cat "$E2E/out")" grep -q top-level-token "$E2E/out"
want "--allow-partial did not warn" grep -q 'warning: skipping nope' "$E2E/out"
t_end "host: unreachable broker 10, denial 1 without starting the app, --allow-partial"

"$KURA" --socket "$W" --timeout 2 whoami >"$E2E/out" 2>&1
want "whoami: $(cat "$E2E/out")" grep -q '"host": true' "$E2E/out"
"$KURA" --socket "$W" ls >"$E2E/out" 2>&1
want "ls: $(cat "$E2E/out")" grep -q '^app/db	2$' "$E2E/out"
t_end "host: whoami and ls"

# wait_gone PID: wait up to 5 s for a background kura, then kill it; its status in $rc.
wait_gone() {
	for _i in $(seq 1 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$1" 2>/dev/null && kill -KILL "$1"
	wait "$1"
	rc=$?
}

# --watch: kura stays the app's parent, follows the rotation, signals the app, passes on its status.
printf 'watched-db-password' >"$E2E/v-db-host"
"$KURA" --socket "$W" run --dir "$D" --only app/db --watch --on-change signal:USR1 -- /bin/sh -c \
	"trap 'cat $D/app/db >$E2E/seen' USR1; echo \$\$ >$E2E/app.pid; while :; do sleep 0.1; done" \
	>"$E2E/watch.out" 2>&1 &
WPID=$!
for i in $(seq 1 50); do [ -s "$E2E/app.pid" ] && break; sleep 0.1; done
want "the app did not start: $(cat "$E2E/watch.out")" test -s "$E2E/app.pid"
want "the app is not kura's child" test "$(awk '{print $4}' "/proc/$(cat "$E2E/app.pid")/stat" 2>/dev/null)" = "$WPID"
t0=$(date +%s%N)
"$K" --state-dir "$S" secret rotate app/db --file "$E2E/v-db-host" >/dev/null
for i in $(seq 1 300); do
	[ "$(cat "$E2E/seen" 2>/dev/null)" = "$(cat "$E2E/v-db-host")" ] && break
	sleep 0.01
done
MS=$((($(date +%s%N) - t0) / 1000000))
tap_diag "host: the app saw the rotation after $MS ms"
want "the app saw '$(cat "$E2E/seen" 2>/dev/null)' after $MS ms: $(cat "$E2E/watch.out")" test "$(cat "$E2E/seen" 2>/dev/null)" = "$(cat "$E2E/v-db-host")"
want "the rotation took $MS ms" test "$MS" -lt 1500
want "app/db holds $(cat "$D/app/db")" test "$(cat "$D/app/db")" = "$(cat "$E2E/v-db-host")"
want "the old set is still there: $(ls -A "$D")" test "$(ls -A "$D" | grep -c '^\.\.kura_')" -eq 1
kill -TERM "$WPID"
wait_gone "$WPID"
want "kura exited $rc after SIGTERM, not 143 (the app's): $(cat "$E2E/watch.out")" test $rc -eq 143
want "the app still runs" test ! -e "/proc/$(cat "$E2E/app.pid")"
want "a value on stderr: $(cat "$E2E/watch.out")" test -z "$(cat "$E2E/v-db-host" "$E2E/v-db2" | grep -F -f - "$E2E/watch.out")"
t_end "host: run --watch rewrites the set on a rotation, signals the app ($MS ms), forwards SIGTERM, exits 143"

"$KURA" --socket "$W" run --dir "$D" --only app/db --watch --on-change "exec:/bin/cp $D/app/db $E2E/copied" \
	-- /bin/sleep 600 >"$E2E/watch.out" 2>&1 &
WPID=$!
sleep 0.5
"$K" --state-dir "$S" secret rotate app/db --file "$E2E/v-db2" >/dev/null
for i in $(seq 1 300); do
	[ "$(cat "$E2E/copied" 2>/dev/null)" = "$(cat "$E2E/v-db2")" ] && break
	sleep 0.01
done
want "exec:CMD did not run: '$(cat "$E2E/copied" 2>/dev/null)' $(cat "$E2E/watch.out")" test "$(cat "$E2E/copied" 2>/dev/null)" = "$(cat "$E2E/v-db2")"
# Not SIGINT: a background job of a non-interactive shell starts with it ignored.
kill -USR2 "$WPID"
wait_gone "$WPID"
want "kura exited $rc after SIGUSR2, not 140: $(cat "$E2E/watch.out")" test $rc -eq 140
rm -f "$E2E/copied"
t_end "host: --on-change exec:CMD runs CMD after the rewrite; SIGUSR2 gives 140"

# A rotation made while kurad was down: the new kurad does not know what changed before it
# started, answers the watcher "resync", and the watcher writes the whole set again.
printf 'rotated-while-kurad-was-down' >"$E2E/v-db3"
"$KURA" --socket "$W" run --dir "$D" --only app/db --watch --on-change "exec:/bin/cp $D/app/db $E2E/copied" \
	-- /bin/sleep 600 >"$E2E/watch.out" 2>&1 &
WPID=$!
sleep 0.5
kill "$KPID" && wait "$KPID" 2>/dev/null
KPID=
"$K" --state-dir "$S" --offline secret rotate app/db --file "$E2E/v-db3" >/dev/null
want "kurad did not start again: $(cat "$E2E/kurad.log")" e2e_start_kurad "$KURAD" "$S" "$R"
for i in $(seq 1 200); do
	[ "$(cat "$E2E/copied" 2>/dev/null)" = "$(cat "$E2E/v-db3")" ] && break
	sleep 0.1
done
want "the rotation made while kurad was down did not arrive: '$(cat "$E2E/copied" 2>/dev/null)' $(cat "$E2E/watch.out")" \
	test "$(cat "$E2E/copied" 2>/dev/null)" = "$(cat "$E2E/v-db3")"
kill -USR2 "$WPID"
wait_gone "$WPID"
rm -f "$E2E/copied"
t_end "host: run --watch gets a rotation made while kurad was down, after kurad restarts (resync)"
"$KURA" --socket "$E2E/no.sock" run --dir "$D" --watch -- /bin/true >"$E2E/out" 2>&1
rc=$?
want "--watch without a broker exits $rc, not 10: $(cat "$E2E/out")" test $rc -eq 10
want "--watch without a broker: no hint: $(cat "$E2E/out")" \
	grep -q 'no socket there (is kurad running?' "$E2E/out"
"$KURA" run --watch --on-change signal:NOPE -- /bin/true >"$E2E/out" 2>&1
rc=$?
want "a bad --on-change exits $rc, not 2" test $rc -eq 2
t_end "host: --watch without a broker exits 10, a bad --on-change 2"

# --watch checks again before every rewrite: a planter who got in since is refused and reported.
printf 'rotated-top-level-token' >"$E2E/v-tok2"
if command -v setpriv >/dev/null 2>&1; then
	D3=$E2E/watched
	mkdir -p "$D3"
	mount -t tmpfs -o mode=0700,size=1m kura-client-test "$D3"
	for case in planted 1777; do
		rm -f "$D3/token" "$E2E/app3.pid"
		"$KURA" --socket "$W" run --dir "$D3" --only token --watch -- /bin/sh -c \
			"echo \$\$ >$E2E/app3.pid; while :; do sleep 0.1; done" >"$E2E/watch3.out" 2>&1 &
		WPID=$!
		for i in $(seq 1 50); do [ -s "$E2E/app3.pid" ] && [ -e "$D3/token" ] && break; sleep 0.1; done
		want "$case: the app did not start: $(cat "$E2E/watch3.out")" test -s "$E2E/app3.pid"
		DATA=$(readlink "$D3/..data")
		BEFORE=$(cat "$D3/token")
		if [ "$case" = planted ]; then
			chmod 0777 "$D3"
			as_nobody sh -c "rm -f '$D3/token' && ln -s ..data/token '$D3/token'"
			chmod 0700 "$D3"
			want "the planter could not swap the link: $(stat -c '%u %N' "$D3/token")" test "$(stat -c %u "$D3/token")" = 65534
			expect="$D3/token is a link of uid 65534, not kura's own"
			NEW=$E2E/v-tok2
		else
			chmod 1777 "$D3"
			expect="refusing $D3: others can write it (mode 1777)"
			NEW=$E2E/v-tok
		fi
		"$K" --state-dir "$S" secret rotate token --file "$NEW" >/dev/null
		for i in $(seq 1 50); do grep -qF "$expect" "$E2E/watch3.out" && break; sleep 0.1; done
		want "$case: not reported on stderr: $(cat "$E2E/watch3.out")" grep -q "^kura: watch: .*$expect" "$E2E/watch3.out"
		want "$case: ..data moved to $(readlink "$D3/..data")" test "$(readlink "$D3/..data")" = "$DATA"
		want "$case: the set changed: $(cat "$D3/..data/token")" test "$(cat "$D3/..data/token")" = "$BEFORE"
		want "$case: $(ls -A "$D3" | grep -c '^\.\.kura_') sets in $D3" test "$(ls -A "$D3" | grep -c '^\.\.kura_')" -eq 1
		want "$case: the app stopped" kill -0 "$(cat "$E2E/app3.pid")"
		kill -TERM "$WPID"
		wait_gone "$WPID"
		chmod 0700 "$D3"
	done
	t_end "host: --watch: a rewrite after a planter swapped a link in, or into a dir made 1777, is refused and reported; the old set stays, the app runs"
else
	tap_skip "host: --watch refuses a planted link" "no setpriv"
fi

# --- in containers -----------------------------------------------------------------------------
e2e_rootfs "$E2E/root1" "$KURA"
e2e_rootfs "$E2E/root2" "$KURA"
echo other >"$E2E/root2/other-image"
tar -C "$E2E/root1" -cf "$E2E/root1.tar" .
tar -C "$E2E/root2" -cf "$E2E/root2.tar" .
"$K" --state-dir "$S" secret rotate app/db --file "$E2E/v-db" >/dev/null # back to the first

# crun RUNTIME IMAGE [RUN ARGS...] -- CMD...: a foreground container with the workload socket.
# Output in $E2E/out, status in $rc.
crun() {
	_rt=$1
	_img=$2
	shift 2
	_args=
	while [ "$1" != -- ]; do
		_args="$_args $1"
		shift
	done
	shift
	# shellcheck disable=SC2086
	"$_rt" run --rm --network none -v "$R:/run/kura:ro" $_args "$_img" "$@" >"$E2E/out" 2>&1
	rc=$?
}
TMPFS="--tmpfs /run/secrets:mode=0700"

# refused CODE: $E2E/out, from "/kura run -- /bin/echo STARTED; echo rc=$?; ls -A DIR; echo ls-end"
# in a container, shows exit CODE, the app not started, and nothing in DIR.
refused() {
	want "exit: $(cat "$E2E/out")" grep -q "^rc=$1\$" "$E2E/out"
	want "the app started: $(cat "$E2E/out")" test -z "$(grep STARTED "$E2E/out")"
	want "something was written: $(cat "$E2E/out")" test "$(sed -n '/^rc=/,/ls-end/p' "$E2E/out" | wc -l)" -eq 2
}

for RTN in docker podman; do
	if [ "$RTN" = docker ]; then
		have=$HAVE_DOCKER why=${WHY_DOCKER:-}
		rt=dk
	else
		have=$HAVE_PODMAN why=${WHY_PODMAN:-}
		rt=pm
	fi
	if [ "$have" != yes ]; then
		for t in run whoami-ls environ other-image not-tmpfs symlink 1777 planted own-link no-value watch-signal watch-restart watch-planted; do
			tap_skip "$RTN: $t" "$why"
		done
		continue
	fi
	"$rt" import "$E2E/root1.tar" "kura-client-$RTN:1" >/dev/null 2>&1
	"$rt" import "$E2E/root2.tar" "kura-client-$RTN:2" >/dev/null 2>&1
	IMG1=$("$rt" image inspect -f '{{.Id}}' "kura-client-$RTN:1")
	case $IMG1 in sha256:*) ;; *) IMG1=sha256:$IMG1 ;; esac
	"$K" --state-dir "$S" grant 'app/*' --image "$IMG1" --runtime "$RTN" >/dev/null

	crun "$rt" "kura-client-$RTN:1" $TMPFS -- /kura run -- /bin/cat /run/secrets/app/db
	want "exit $rc: $(cat "$E2E/out")" test $rc -eq 0
	want "printed '$(cat "$E2E/out")'" test "$(cat "$E2E/out")" = "$(cat "$E2E/v-db")"
	t_end "$RTN: kura run -- cat /run/secrets/app/db prints the value (FROM-scratch image)"

	crun "$rt" "kura-client-$RTN:1" --name "$RTN-who" -- /bin/sh -c \
		'/kura whoami && /kura ls'
	want "exit $rc: $(cat "$E2E/out")" test $rc -eq 0
	want "whoami without the runtime: $(cat "$E2E/out")" grep -q "\"runtime\": \"$RTN\"" "$E2E/out"
	want "whoami without the image: $(cat "$E2E/out")" grep -q "\"image_id\": \"$IMG1\"" "$E2E/out"
	want "ls: $(cat "$E2E/out")" grep -q '^app/db	' "$E2E/out"
	want "ls shows an ungranted secret: $(cat "$E2E/out")" test -z "$(grep '^token' "$E2E/out")"
	t_end "$RTN: kura whoami and ls inside the container"

	# The app (pid 1 after the exec) reads its own environ, cmdline and fds.
	crun "$rt" "kura-client-$RTN:1" $TMPFS -e KURA_TEST_ENV=kept -- /kura run -- /bin/sh -c \
		'cat /proc/1/environ | tr "\0" "\n" >/tmp/env; cat /tmp/env; tr "\0" " " </proc/1/cmdline; echo; ls /proc/1/fd; echo fds-end; cat /run/secrets/app/cfg'
	want "exit $rc: $(cat "$E2E/out")" test $rc -eq 0
	want "the app did not get the secrets: $(cat "$E2E/out")" grep -q the-app-config "$E2E/out"
	sed -n '/fds-end/q;p' "$E2E/out" >"$E2E/app-view"
	want "a value in the app's environ/cmdline: $(cat "$E2E/app-view")" \
		test -z "$(cat "$E2E/v-db" "$E2E/v-cfg" | grep -F -f - "$E2E/app-view")"
	want "the environment was not passed on: $(cat "$E2E/out")" grep -qx 'KURA_TEST_ENV=kept' "$E2E/out"
	want "kura added to the environment: $(cat "$E2E/out")" test -z "$(grep -i '^kura' "$E2E/app-view" | grep -v KURA_TEST_ENV)"
	want "the app is not pid 1 with its own cmdline: $(cat "$E2E/out")" grep -q '^/bin/sh -c' "$E2E/out"
	want "an fd leaked into the app: $(cat "$E2E/out")" test "$(sed -n '/^\/bin\/sh -c/,/fds-end/p' "$E2E/out" | sed '1d;$d' | tr '\n' ' ')" = "0 1 2 "
	t_end "$RTN: the app keeps pid 1, its environ, cmdline and fds hold no secret and no leak"

	IMG2=kura-client-$RTN:2
	crun "$rt" "$IMG2" $TMPFS -- /bin/sh -c \
		'/kura run -- /bin/echo STARTED 2>&1; echo rc=$?; ls -A /run/secrets; echo ls-end'
	refused 1
	want "no clear line: $(cat "$E2E/out")" grep -q '^kura: .*no secret' "$E2E/out"
	t_end "$RTN: a container of another image is refused (1), nothing written, app not started"

	crun "$rt" "kura-client-$RTN:1" -- /bin/sh -c \
		'mkdir -p /run/secrets; /kura run -- /bin/echo STARTED 2>&1; echo rc=$?; ls -A /run/secrets; echo ls-end'
	refused 13
	t_end "$RTN: a target that is not a tmpfs is refused (13), nothing written"

	crun "$rt" "kura-client-$RTN:1" $TMPFS -- /bin/sh -c \
		'ln -s /tmp /run/secrets/app; /kura run -- /bin/echo STARTED 2>&1; echo rc=$?; ls -A /tmp; echo ls-end'
	refused 15
	t_end "$RTN: a symlink planted at the target is refused (15), nothing written through it"

	crun "$rt" "kura-client-$RTN:1" --tmpfs /run/secrets:mode=1777 -- /bin/sh -c \
		'/kura run -- /bin/echo STARTED 2>&1; echo rc=$?; ls -A /run/secrets; echo ls-end'
	refused 15
	want "no clear line: $(cat "$E2E/out")" grep -q '^kura: refusing /run/secrets: others can write it (mode 1777)' "$E2E/out"
	t_end "$RTN: --tmpfs /run/secrets:mode=1777 is refused (15), nothing written, app not started"

	# cx CMD...: run CMD in the container $RTN-plant; output in $E2E/out, status in $rc.
	cx() {
		"$rt" exec "$@" >"$E2E/out" 2>&1
		rc=$?
	}
	"$rt" run -d --network none -v "$R:/run/kura:ro" --tmpfs /run/secrets:mode=1777 \
		--name "$RTN-plant" "kura-client-$RTN:1" /bin/sleep 600 >/dev/null 2>&1
	cx -u 65534:65534 "$RTN-plant" /bin/busybox ln -s ..data/app /run/secrets/app
	want "uid 65534 could not plant: $(cat "$E2E/out")" test $rc -eq 0
	cx "$RTN-plant" /bin/busybox chmod 0700 /run/secrets
	cx "$RTN-plant" /kura fetch
	want "exit $rc, not 15: $(cat "$E2E/out")" test $rc -eq 15
	want "no clear line: $(cat "$E2E/out")" grep -q "^kura: refusing to write app/.*: /run/secrets/app is a link of uid 65534, not kura's own" "$E2E/out"
	cx "$RTN-plant" /bin/busybox ls -A /run/secrets
	want "something was written: $(cat "$E2E/out")" test "$(cat "$E2E/out")" = app
	t_end "$RTN: a link uid 65534 planted in the container's tmpfs is refused (15), nothing written"

	cx "$RTN-plant" /bin/busybox rm /run/secrets/app
	cx "$RTN-plant" /kura fetch
	want "the first fetch: exit $rc: $(cat "$E2E/out")" test $rc -eq 0
	cx "$RTN-plant" /kura fetch
	want "the second fetch: exit $rc: $(cat "$E2E/out")" test $rc -eq 0
	cx "$RTN-plant" /bin/cat /run/secrets/app/db
	want "app/db holds '$(cat "$E2E/out")'" test "$(cat "$E2E/out")" = "$(cat "$E2E/v-db")"
	cx "$RTN-plant" /bin/busybox stat -c '%u %N' /run/secrets/app
	want "app: $(cat "$E2E/out")" grep -q "^0 '/run/secrets/app' -> '..data/app'" "$E2E/out"
	"$rt" rm -f -t 0 "$RTN-plant" >/dev/null 2>&1 || "$rt" rm -f "$RTN-plant" >/dev/null 2>&1
	t_end "$RTN: kura's own link from an earlier fetch in the container is kept and accepted"

	"$rt" ps -aq >"$E2E/ids"
	"$rt" run -d --network none -v "$R:/run/kura:ro" $TMPFS --name "$RTN-inspect" \
		"kura-client-$RTN:1" /kura run -- /bin/sleep 600 >/dev/null 2>&1
	sleep 1
	"$rt" inspect "$RTN-inspect" >"$E2E/inspect" 2>&1
	"$rt" save "kura-client-$RTN:1" >"$E2E/saved.tar" 2>/dev/null
	"$rt" exec "$RTN-inspect" /bin/cat /run/secrets/app/db >"$E2E/out" 2>&1
	want "the running container has no secret: $(cat "$E2E/out")" test "$(cat "$E2E/out")" = "$(cat "$E2E/v-db")"
	want "a value in $RTN inspect" test -z "$(cat "$E2E/v-db" "$E2E/v-cfg" | grep -F -f - "$E2E/inspect")"
	want "a value in $RTN save" test -z "$(cat "$E2E/v-db" "$E2E/v-cfg" | grep -a -F -f - "$E2E/saved.tar")"
	"$rt" rm -f -t 0 "$RTN-inspect" >/dev/null 2>&1 || "$rt" rm -f "$RTN-inspect" >/dev/null 2>&1
	t_end "$RTN: neither inspect nor the saved image holds a value"

	# --watch in a container: a rotation reaches the file and the app (HUP) within a second.
	printf 'watched-%s-one' "$RTN" >"$E2E/v-db-w1-$RTN"
	printf 'watched-%s-two' "$RTN" >"$E2E/v-db-w2-$RTN"
	"$rt" run -d --network none -v "$R:/run/kura:ro" $TMPFS --name "$RTN-watch" \
		"kura-client-$RTN:1" /kura run --watch --on-change signal:HUP -- /bin/sh -c \
		'trap "cat /run/secrets/app/db >/tmp/seen" HUP; while :; do sleep 0.2; done' >/dev/null 2>&1
	CPID=$("$rt" inspect -f '{{.State.Pid}}' "$RTN-watch" 2>/dev/null)
	CR=/proc/$CPID/root
	for i in $(seq 1 100); do [ -s "$CR/run/secrets/app/db" ] && break; sleep 0.05; done
	want "the watched container has no app/db: $("$rt" logs "$RTN-watch" 2>&1)" test -s "$CR/run/secrets/app/db"
	sleep 0.3
	t0=$(date +%s%N)
	"$K" --state-dir "$S" secret rotate app/db --file "$E2E/v-db-w1-$RTN" >/dev/null
	for i in $(seq 1 300); do
		[ "$(cat "$CR/tmp/seen" 2>/dev/null)" = "$(cat "$E2E/v-db-w1-$RTN")" ] && break
		sleep 0.01
	done
	MS=$((($(date +%s%N) - t0) / 1000000))
	tap_diag "$RTN: the app saw the rotation after $MS ms"
	want "the file holds '$(cat "$CR/run/secrets/app/db" 2>/dev/null)'" test "$(cat "$CR/run/secrets/app/db" 2>/dev/null)" = "$(cat "$E2E/v-db-w1-$RTN")"
	want "the app saw '$(cat "$CR/tmp/seen" 2>/dev/null)' after $MS ms: $("$rt" logs "$RTN-watch" 2>&1)" test "$(cat "$CR/tmp/seen" 2>/dev/null)" = "$(cat "$E2E/v-db-w1-$RTN")"
	want "the rotation took $MS ms" test "$MS" -lt 1500
	t0=$(date +%s%N)
	"$rt" stop -t 10 "$RTN-watch" >/dev/null 2>&1
	MS=$((($(date +%s%N) - t0) / 1000000))
	code=$("$rt" inspect -f '{{.State.ExitCode}}' "$RTN-watch" 2>/dev/null)
	want "$RTN stop took $MS ms (SIGTERM not forwarded?)" test "$MS" -lt 5000
	want "kura exited $code after $RTN stop, not 143 (the app's status)" test "$code" = 143
	"$rt" logs "$RTN-watch" >"$E2E/out" 2>&1
	want "a value in the logs: $(cat "$E2E/out")" test -z "$(cat "$E2E/v-db-w1-$RTN" "$E2E/v-db" | grep -F -f - "$E2E/out")"
	"$rt" rm -f "$RTN-watch" >/dev/null 2>&1
	t_end "$RTN: --watch: a rotation reaches the file and the app's HUP within 1 s; stop forwards SIGTERM, exit 143"

	"$rt" run -d --network none -v "$R:/run/kura:ro" $TMPFS --name "$RTN-restart" \
		"kura-client-$RTN:1" /kura run --watch --on-change restart -- /bin/sh -c \
		'echo x >>/tmp/starts; cat /run/secrets/app/db >/tmp/seen; exec /bin/sleep 600' >/dev/null 2>&1
	CPID=$("$rt" inspect -f '{{.State.Pid}}' "$RTN-restart" 2>/dev/null)
	CR=/proc/$CPID/root
	for i in $(seq 1 100); do [ -s "$CR/tmp/seen" ] && break; sleep 0.05; done
	want "the app did not start: $("$rt" logs "$RTN-restart" 2>&1)" test "$(wc -l <"$CR/tmp/starts" 2>/dev/null)" -eq 1
	"$K" --state-dir "$S" secret rotate app/db --file "$E2E/v-db-w2-$RTN" >/dev/null
	for i in $(seq 1 300); do
		[ "$(cat "$CR/tmp/seen" 2>/dev/null)" = "$(cat "$E2E/v-db-w2-$RTN")" ] && break
		sleep 0.01
	done
	want "the restarted app read '$(cat "$CR/tmp/seen" 2>/dev/null)': $("$rt" logs "$RTN-restart" 2>&1)" test "$(cat "$CR/tmp/seen" 2>/dev/null)" = "$(cat "$E2E/v-db-w2-$RTN")"
	want "the app started $(wc -l <"$CR/tmp/starts" 2>/dev/null) times, not 2" test "$(wc -l <"$CR/tmp/starts" 2>/dev/null)" -eq 2
	want "the container is no longer running" test "$("$rt" inspect -f '{{.State.Running}}' "$RTN-restart" 2>/dev/null)" = true
	"$rt" rm -f -t 0 "$RTN-restart" >/dev/null 2>&1 || "$rt" rm -f "$RTN-restart" >/dev/null 2>&1
	"$K" --state-dir "$S" secret rotate app/db --file "$E2E/v-db" >/dev/null # back to the first
	t_end "$RTN: --watch --on-change restart starts the app again with the new value"

	# --watch in a container: a planter who swapped a link in since is refused, and it says so.
	"$rt" run -d --network none -v "$R:/run/kura:ro" $TMPFS --name "$RTN-wplant" \
		"kura-client-$RTN:1" /kura run --watch -- /bin/sh -c 'while :; do sleep 0.2; done' \
		>/dev/null 2>&1
	CPID=$("$rt" inspect -f '{{.State.Pid}}' "$RTN-wplant" 2>/dev/null)
	CR=/proc/$CPID/root
	for i in $(seq 1 100); do [ -s "$CR/run/secrets/app/db" ] && break; sleep 0.05; done
	DATA=$(readlink "$CR/run/secrets/..data")
	"$rt" exec "$RTN-wplant" /bin/busybox chmod 0777 /run/secrets
	"$rt" exec -u 65534:65534 "$RTN-wplant" /bin/sh -c \
		'/bin/busybox rm /run/secrets/app && /bin/busybox ln -s ..data/app /run/secrets/app'
	"$rt" exec "$RTN-wplant" /bin/busybox chmod 0700 /run/secrets
	"$K" --state-dir "$S" secret rotate app/db --file "$E2E/v-db-w2-$RTN" >/dev/null
	for i in $(seq 1 50); do
		"$rt" logs "$RTN-wplant" 2>&1 | grep -q 'uid 65534' && break
		sleep 0.1
	done
	"$rt" logs "$RTN-wplant" >"$E2E/out" 2>&1
	want "not reported: $(cat "$E2E/out")" grep -q "^kura: watch: .*/run/secrets/app is a link of uid 65534, not kura's own" "$E2E/out"
	want "..data moved: $(readlink "$CR/run/secrets/..data")" test "$(readlink "$CR/run/secrets/..data")" = "$DATA"
	want "the set changed: $(cat "$CR/run/secrets/..data/app/db")" test "$(cat "$CR/run/secrets/..data/app/db")" = "$(cat "$E2E/v-db")"
	want "the container stopped" test "$("$rt" inspect -f '{{.State.Running}}' "$RTN-wplant" 2>/dev/null)" = true
	"$rt" rm -f -t 0 "$RTN-wplant" >/dev/null 2>&1 || "$rt" rm -f "$RTN-wplant" >/dev/null 2>&1
	"$K" --state-dir "$S" secret rotate app/db --file "$E2E/v-db" >/dev/null # back to the first
	t_end "$RTN: --watch: a rewrite after uid 65534 swapped a link in is refused and reported; the old set stays"
done

if [ "$HAVE_PODMAN" = yes ]; then
	e2e_stop_podman_service
	crun pm "kura-client-podman:1" $TMPFS -- /bin/sh -c \
		'/kura run -- /bin/echo STARTED 2>&1; echo rc=$?'
	want "exit: $(cat "$E2E/out")" grep -q '^rc=12$' "$E2E/out"
	want "the app started: $(cat "$E2E/out")" test -z "$(grep STARTED "$E2E/out")"
	t_end "podman: the runtime down gives 503, kura exits 12 without starting the app"
else
	tap_skip "podman: the runtime down gives 503, kura exits 12" "$WHY_PODMAN"
fi

want "a value in the store's files" test -z "$(cat "$E2E"/v-db* "$E2E/v-cfg" "$E2E/v-tok" | grep -a -r -F -f - "$S")"
want "a value in kurad's log" test -z "$(cat "$E2E"/v-db* "$E2E/v-cfg" | grep -F -f - "$E2E/kurad.log")"
t_end "no value in the store's files or kurad's log"

tap_done

#!/bin/sh
# Restarts and upgrades that no container notices (issue 13, item 1), with a real dockerd (and
# Podman when it starts): containers mount the run directory, -v RUN:/run/kura:ro. Under a
# container running `kura run --watch` and two streams of fetches (kura itself, and a raw probe
# that never retries), kurad is stopped with SIGTERM and started again, then "upgraded" (started
# from another file); a secret is rotated after each restart. The watcher's file shows each new
# value within a bound; no kura fetch fails; the raw probe fails for no longer than the restart
# took (SIGTERM to the new kurad answering). Also the attacker's side of mounting the directory:
# root in a container (no user namespace) is refused on admin.sock and kurad keeps serving;
# nothing else in the directory can be opened from a container; a second kurad on another
# state refuses to take the directory over.
# Usage: test-kurad-restart.sh KURAD KURACTL KURA PROBE
set -u
[ $# -eq 4 ] || { echo "usage: $0 KURAD KURACTL KURA PROBE" >&2; exit 2; }
KURAD=$1
K=$2
KURA=$3
PROBE=$4
HERE=$(dirname "$0")
. "$HERE/../cli/tap.sh"

if [ "$(id -u)" -ne 0 ]; then
	echo "1..0 # SKIP container tests run as root"
	exit 0
fi
if [ ! -x "$KURA" ] || [ ! -x "$PROBE" ]; then
	echo "1..0 # SKIP no static kura or probe (a sanitizer build)"
	exit 0
fi

E2E=$(mktemp -d /tmp/kura-restart-XXXXXX)
chmod 755 "$E2E"
. "$HERE/runtimes.sh"
KPID=
cleanup() {
	[ -n "$KPID" ] && kill "$KPID" 2>/dev/null && wait "$KPID" 2>/dev/null
	[ -n "${K2PID:-}" ] && kill "$K2PID" 2>/dev/null && wait "$K2PID" 2>/dev/null
	e2e_cleanup
	cat "$E2E"/kurad*.log >/tmp/kurad-restart-last.log 2>/dev/null
	rm -rf "$E2E"
}
trap cleanup EXIT
S=$E2E/state
R=$E2E/run
TMPFS="--tmpfs /run/secrets:mode=0700"
# Seconds since boot, to 10 ms: the same clock on the host and in every container.
up() { read -r _u _ </proc/uptime; echo "$_u"; }

e2e_start_runtimes
if [ "$HAVE_DOCKER" != yes ]; then
	echo "1..0 # SKIP no Docker: $WHY_DOCKER"
	exit 0
fi

# start_kurad BINARY N: kurad from BINARY (log kurad-N.log), returning once workload.sock
# answers a request (at most 10 s); its pid in KPID.
start_kurad() {
	_rt="--runtime docker=unix:$E2E/docker.sock"
	[ "$HAVE_PODMAN" = yes ] && _rt="$_rt --runtime podman=unix:$E2E/podman.sock"
	# shellcheck disable=SC2086
	"$1" --state-dir "$S" --run-dir "$R" $_rt >"$E2E/kurad-$2.log" 2>&1 &
	KPID=$!
	for _i in $(seq 1 1000); do
		[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 --unix-socket "$R/workload.sock" \
			http://k/v1/whoami)" = 200 ] && return 0
		kill -0 "$KPID" 2>/dev/null || return 1
		sleep 0.01
	done
	return 1
}
stop_kurad() {
	kill -TERM "$KPID" 2>/dev/null
	wait "$KPID" 2>/dev/null
	KPID=
}

"$K" --state-dir "$S" init >/dev/null
printf 'value-before-any-restart' >"$E2E/v0"
"$K" --state-dir "$S" secret put app/db --file "$E2E/v0" >/dev/null

start_kurad "$KURAD" 0 || tap_bail "kurad did not start: $(tail -n 3 "$E2E/kurad-0.log")"
t_end "kurad starts"

mkdir -p "$E2E/root"
e2e_rootfs "$E2E/root" "$KURA" "$PROBE"
tar -C "$E2E/root" -cf "$E2E/root.tar" .
RUNTIMES=dk
[ "$HAVE_PODMAN" = yes ] && RUNTIMES="dk pm"
for rt in $RUNTIMES; do
	"$rt" import "$E2E/root.tar" kura-restart:1 >/dev/null 2>&1
	img=$("$rt" image inspect -f '{{.Id}}' kura-restart:1)
	case $img in sha256:*) ;; *) img=sha256:$img ;; esac
	"$K" --state-dir "$S" grant app/db --image "$img" >/dev/null ||
		tap_bail "cannot grant app/db to $rt's image $img"
done

# The watchers: kura run --watch; the app says when it is told of a change (HUP), and the test
# reads the file itself through the container's root.
for rt in $RUNTIMES; do
	# shellcheck disable=SC2086
	"$rt" run -d --network none -v "$R:/run/kura:ro" $TMPFS --name "restart-watch-$rt" \
		kura-restart:1 /kura run --watch -- /bin/sh -c \
		'trap "echo the app got HUP" HUP; while :; do sleep 0.2; done' \
		>/dev/null 2>"$E2E/run.err"
	want "$rt: the watcher did not start: $(cat "$E2E/run.err")" test $? -eq 0
done
# The streams of fetches, each try logged as "START END RC" (uptime seconds): kura fetch (which
# waits out a restart) and the raw probe (which does not: the window a client without retries
# would see).
# shellcheck disable=SC2086
dk run -d --network none -v "$R:/run/kura:ro" $TMPFS --name restart-fetch kura-restart:1 \
	/bin/sh -c 'while [ ! -e /tmp/stop ]; do read a _ </proc/uptime
		/kura fetch --only app/db >/dev/null 2>>/tmp/kura.err; rc=$?
		read b _ </proc/uptime; echo "$a $b $rc" >>/tmp/kura.log; sleep 0.05; done
		exec sleep 600' \
	>/dev/null 2>&1
dk run -d --network none -v "$R:/run/kura:ro" --name restart-probe kura-restart:1 \
	/bin/sh -c 'while [ ! -e /tmp/stop ]; do read a _ </proc/uptime
		/probe /run/kura/workload.sock /v1/secrets/app/db >/tmp/out 2>&1; rc=$?
		read -r code _ </tmp/out; [ "$code" = 200 ] || rc=1
		read b _ </proc/uptime; echo "$a $b $rc" >>/tmp/probe.log; sleep 0.01; done
		exec sleep 600' \
	>/dev/null 2>&1
root_of() { echo "/proc/$("$1" inspect -f '{{.State.Pid}}' "$2" 2>/dev/null)/root"; }
FR=$(root_of dk restart-fetch)
PR=$(root_of dk restart-probe)

# seen RT VALUE-FILE: within 15 s the watcher's file holds the value; the time it took in MS.
seen() {
	_cr=$(root_of "$1" "restart-watch-$1")
	_t0=$(up)
	for _i in $(seq 1 1500); do
		[ "$(cat "$_cr/run/secrets/app/db" 2>/dev/null)" = "$(cat "$2")" ] && break
		sleep 0.01
	done
	MS=$(awk -v a="$_t0" -v b="$(up)" 'BEGIN { printf "%d", (b - a) * 1000 }')
	[ "$(cat "$_cr/run/secrets/app/db" 2>/dev/null)" = "$(cat "$2")" ]
}
for rt in $RUNTIMES; do
	want "$rt: the watcher never wrote the first value: $("$rt" logs "restart-watch-$rt" 2>&1)" \
		seen "$rt" "$E2E/v0"
done
for _ in $(seq 1 300); do [ -s "$FR/tmp/kura.log" ] && [ -s "$PR/tmp/probe.log" ] && break; sleep 0.01; done
want "the fetch streams did not start" test -s "$FR/tmp/kura.log" -a -s "$PR/tmp/probe.log"
INODE=$(stat -c %i "$R")
t_end "watchers ($RUNTIMES) and two fetch streams run with the run directory mounted"

# restart N BINARY: SIGTERM, then BINARY started again; the time from the signal to the new
# kurad answering goes into restarts (and DUR); then a rotation the watchers must pick up.
: >"$E2E/restarts"
restart() {
	sleep 1 # a steady stream before
	_t0=$(up)
	stop_kurad
	start_kurad "$2" "$1"
	want "kurad $1 did not start: $(cat "$E2E/kurad-$1.log")" test $? -eq 0
	_t1=$(up)
	DUR=$(awk -v a="$_t0" -v b="$_t1" 'BEGIN { printf "%.2f", b - a }')
	echo "$_t0 $_t1" >>"$E2E/restarts"
	want "the run directory was replaced (inode $(stat -c %i "$R"), was $INODE)" \
		test "$(stat -c %i "$R")" = "$INODE"
	printf 'value-after-restart-%s' "$1" >"$E2E/v$1"
	"$K" --state-dir "$S" secret rotate app/db --file "$E2E/v$1" >"$E2E/out" 2>&1
	want "the rotation after restart $1 failed: $(cat "$E2E/out")" test $? -eq 0
	for rt in $RUNTIMES; do
		want "$rt: the watcher's file holds '$(cat "$(root_of "$rt" "restart-watch-$rt")/run/secrets/app/db" 2>/dev/null)' 15 s after the rotation: $("$rt" logs "restart-watch-$rt" 2>&1 | tail -n 5)" \
			seen "$rt" "$E2E/v$1"
		tap_diag "restart $1: $rt's watcher has the rotated value after $MS ms"
		want "$rt: the rotation took $MS ms to reach the watcher (bound 5000)" test "$MS" -le 5000
	done
}
restart 1 "$KURAD"
t_end "restart (SIGTERM, start again, $DUR s): the run directory stays, each watcher picks up a rotation made after it"

# The upgrade: another file (a copy, one byte longer: a different binary to the kernel).
cp "$KURAD" "$E2E/kurad-upgraded"
printf '\n' >>"$E2E/kurad-upgraded"
want "the upgrade is the same file" test "$(sha256sum <"$KURAD")" != "$(sha256sum <"$E2E/kurad-upgraded")"
restart 2 "$E2E/kurad-upgraded"
t_end "upgrade (SIGTERM, another binary started, $DUR s): each watcher picks up a rotation made after it"

sleep 1
for c in restart-fetch restart-probe; do
	want "$c stopped early: $(dk inspect -f '{{.State.Status}} {{.State.ExitCode}} {{.State.Error}}' "$c" 2>&1) $(dk logs "$c" 2>&1 | tail -n 5)" \
		test "$(dk inspect -f '{{.State.Running}}' "$c" 2>/dev/null)" = true
done
touch "$FR/tmp/stop" "$PR/tmp/stop"
sleep 0.5
# windows LOG: the longest run of failures in LOG, from the start of the first failed try to
# the end of the last (0 with none), and the count of failures and of tries.
windows() {
	awk '$3 != 0 { if (!s) s = $1; e = $2; n++ } $3 == 0 && s { if (e - s > m) m = e - s; s = 0 }
		END { if (s && e - s > m) m = e - s; printf "%.2f %d %d\n", m, n, NR }' "$1"
}
read -r KW KN KT <<EOF
$(windows "$FR/tmp/kura.log")
EOF
read -r PW PN PT <<EOF
$(windows "$PR/tmp/probe.log")
EOF
LONGEST=$(awk '{ if ($2 - $1 > m) m = $2 - $1 } END { printf "%.2f", m }' "$E2E/restarts")
KSLOW=$(awk '{ if ($2 - $1 > m) m = $2 - $1 } END { printf "%.2f", m }' "$FR/tmp/kura.log")
tap_diag "restarts (SIGTERM to answering): $(awk '{ printf "%.2f s ", $2 - $1 }' "$E2E/restarts")"
tap_diag "kura fetch: $KN of $KT tries failed, longest failure window $KW s, slowest try $KSLOW s"
tap_diag "raw probe (no retry): $PN of $PT tries failed, longest failure window $PW s"
want "kura fetch failed $KN times: $(head -n 5 "$FR/tmp/kura.err" 2>/dev/null)" test "$KN" -eq 0
want "too few kura fetches ($KT)" test "$KT" -ge 20
want "too few probes ($PT)" test "$PT" -ge 50
# Every raw failure lies inside a restart (from its signal to the new kurad answering), give or
# take 50 ms: a try that began just before the signal, and the clock's 10 ms steps.
OUTSIDE=$(awk 'NR == FNR { a[NR] = $1; b[NR] = $2; n = NR; next }
	$3 != 0 { ok = 0; for (i = 1; i <= n; i++) if ($1 >= a[i] - 0.05 && $2 <= b[i] + 0.05) ok = 1
		if (!ok) c++ } END { print c + 0 }' "$E2E/restarts" "$PR/tmp/probe.log")
want "$OUTSIDE raw failures outside any restart" test "$OUTSIDE" -eq 0
want "the raw failure window $PW s is longer than the longest restart, $LONGEST s" \
	awk -v w="$PW" -v l="$LONGEST" 'BEGIN { exit !(w <= l + 0.05) }'
t_end "no kura fetch failed; the raw probe failed for at most $PW s, within the restart ($LONGEST s)"

# The attacker: root in a container (no user namespace) with the run directory mounted.
dk exec restart-probe /probe /run/kura/admin.sock /v1/status >"$E2E/out" 2>&1
want "a container's root on admin.sock got '$(head -n 1 "$E2E/out")', not 403: $(cat "$E2E/out")" \
	test "$(head -n 1 "$E2E/out")" = 403
dk exec restart-probe /probe /run/kura/admin.sock /v1/secrets/app/db >"$E2E/out" 2>&1
want "a container's root reading a value on admin.sock got '$(head -n 1 "$E2E/out")', not 403" \
	test "$(head -n 1 "$E2E/out")" = 403
want "the value came back on admin.sock" test -z "$(grep -F -f "$E2E/v2" "$E2E/out")"
dk exec restart-probe /probe /run/kura/workload.sock /v1/secrets/app/db >"$E2E/out" 2>&1
want "kurad stopped serving after the attempt: $(head -n 1 "$E2E/out")" test "$(head -n 1 "$E2E/out")" = 200
want "kurad died" kill -0 "$KPID"
t_end "root in a container is refused on the mounted admin.sock (403, no value) and kurad keeps serving"

# Nothing else there: the two sockets alone (a socket cannot be opened, only connected to), so
# no file a container could read or hold a lock on; kurad's lock is in the state directory.
ls -A "$R" | sort | tr '\n' ' ' >"$E2E/ls"
want "the run directory holds '$(cat "$E2E/ls")', not the two sockets alone" \
	test "$(cat "$E2E/ls")" = "admin.sock workload.sock "
dk exec restart-probe /bin/sh -c 'for f in /run/kura/* /run/kura/.*; do
	[ -d "$f" ] && continue; cat "$f" >/dev/null 2>&1 && echo "read $f"; done' >"$E2E/out" 2>&1
want "a container read from the run directory: $(cat "$E2E/out")" test ! -s "$E2E/out"
want "kurad's lock is not in the state directory" test -f "$S/kurad.lock"
t_end "the run directory holds only the two sockets; nothing in it can be opened from a container"

# An older kurad's lock file in the run directory (a container may hold it) is not needed: a
# kurad restarts past it and removes it.
stop_kurad
: >"$R/kurad.lock"
start_kurad "$KURAD" 3
want "kurad did not start past an old lock file: $(cat "$E2E/kurad-3.log")" test $? -eq 0
want "the old lock file is still there" test ! -e "$R/kurad.lock"
# A second kurad on another state: the run directory is taken, it refuses and leaves it be.
"$K" --state-dir "$E2E/state2" init >/dev/null
timeout 10 "$KURAD" --state-dir "$E2E/state2" --run-dir "$R" >"$E2E/kurad-second.log" 2>&1
rc=$?
want "a second kurad on another state exited $rc, expected 1: $(cat "$E2E/kurad-second.log")" test $rc -eq 1
want "no reason given: $(cat "$E2E/kurad-second.log")" grep -q "another kurad (on another state directory) serves $R" "$E2E/kurad-second.log"
dk exec restart-probe /probe /run/kura/workload.sock /v1/secrets/app/db >"$E2E/out" 2>&1
want "the first kurad lost its socket: $(head -n 1 "$E2E/out")" test "$(head -n 1 "$E2E/out")" = 200
t_end "an old lock file in the run directory is removed; a second kurad on another state refuses the directory"

# kura's errors: a container without the mount is told which mount to add, at once.
dk run --rm --network none $TMPFS kura-restart:1 /kura ls >"$E2E/out" 2>&1
rc=$?
want "kura without the mount exited $rc, not 10" test $rc -eq 10
want "no mount named: $(cat "$E2E/out")" grep -q -- '-v /run/kura:/run/kura:ro' "$E2E/out"
t_end "a container without the run directory: exit 10, naming the mount to add"

# kura started while kurad is away waits for it (up to 5 s) rather than fail at once.
stop_kurad
dk exec restart-fetch /bin/sh -c 'rm -f /tmp/stop; read a _ </proc/uptime; /kura ls >/tmp/ls.out 2>&1;
	echo "rc=$? $a" >>/tmp/ls.out' &
LSPID=$!
sleep 2
want "kurad did not start again" start_kurad "$KURAD" 4
wait "$LSPID"
want "kura ls across a 2 s gap: $(cat "$FR/tmp/ls.out")" grep -q '^rc=0 ' "$FR/tmp/ls.out"
want "kura ls did not list app/db: $(cat "$FR/tmp/ls.out")" grep -q '^app/db' "$FR/tmp/ls.out"
t_end "kura started while kurad restarts waits for it (2 s gap) and succeeds"

for rt in $RUNTIMES; do
	"$rt" logs "restart-watch-$rt" >"$E2E/out" 2>&1
	# Three outages (the restart, the upgrade, the 2 s gap): one line each at most, never
	# one per try; within kura's 5 s of retries, none at all.
	tap_diag "$rt: the watcher logged $(grep -c 'retrying' "$E2E/out") lines for 3 outages"
	want "$rt: the watcher logged per try: $(grep -c 'retrying' "$E2E/out") lines" \
		test "$(grep -c 'retrying' "$E2E/out")" -le 3
	want "$rt: a value in the watcher's stderr" test -z "$(grep -F 'kura:' "$E2E/out" | grep -F 'value-')"
done
t_end "the watchers log at most one line per outage"
tap_done

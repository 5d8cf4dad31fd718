#!/bin/sh
# kurad's privilege separation, proven on a real kurad serving host processes: the front and the
# key custody process are apart and (once sandboxed) locked down; after fetches, puts, rotations
# and a key rotation the front's and the supervisor's memory hold no key and no value they were
# not sending, while the keeper's holds the master key (the scanner's positive control); a
# child that dies stops kurad non-zero at once, a request in flight gets an answer or a closed
# connection, never a hang; SIGTERM stops all three cleanly.
# Usage: test-privsep.sh KURAD KURACTL KEYDUMP MEMSCAN
set -u
[ $# -eq 4 ] || { echo "usage: $0 KURAD KURACTL KEYDUMP MEMSCAN" >&2; exit 2; }
KURAD=$1
K=$2
KEYDUMP=$3
MEMSCAN=$4
. "$(dirname "$0")/../cli/tap.sh"

[ "$(id -u)" -eq 0 ] || { echo "1..0 # SKIP reading another process's memory needs root"; exit 0; }
command -v curl >/dev/null 2>&1 || tap_bail "curl is needed"
command -v python3 >/dev/null 2>&1 || tap_bail "python3 is needed"
[ -x "$KURAD" ] && [ -x "$K" ] && [ -x "$KEYDUMP" ] && [ -f "$MEMSCAN" ] ||
	tap_bail "no kurad, kuractl, keydump or memscan at $KURAD, $K, $KEYDUMP, $MEMSCAN"

T=$(mktemp -d /tmp/kura-privsep-XXXXXX)
chmod 755 "$T"
PID=
HELPER=
cleanup() {
	[ -n "$PID" ] && kill -9 "$PID" 2>/dev/null
	[ -n "$HELPER" ] && kill -9 "$HELPER" 2>/dev/null
	[ -f "$T/kurad.log" ] && cp "$T/kurad.log" /tmp/kurad-privsep-last.log
	rm -rf "$T"
}
trap cleanup EXIT
S=$T/state
R=$T/run
W=$R/workload.sock
A=$R/admin.sock
KR="$K --state-dir $S --run-dir $R" # through kurad's admin socket: the keeper

# A TODO test (TAP's "# TODO"): reported, never a failure, until the lead wires the sandbox.
t_todo() {
	TAP_N=$((TAP_N + 1))
	if [ -z "$T_WHY" ]; then
		printf 'ok %d - %s # TODO %s\n' "$TAP_N" "$1" "$2"
	else
		printf 'not ok %d - %s # TODO %s\n' "$TAP_N" "$1" "$2"
		tap_diag "$T_WHY"
	fi
	T_WHY=
}

# get SOCKET PATH [CURL ARGS]: body in $T/body, status in $CODE.
get() {
	_s=$1
	_p=$2
	shift 2
	CODE=$(curl -s -o "$T/body" -w '%{http_code}' --max-time 10 "$@" \
		--unix-socket "$_s" "http://kura$_p") || CODE=000
}

start_kurad() {
	: >"$T/kurad.log"
	"$KURAD" --state-dir "$S" --run-dir "$R" >>"$T/kurad.log" 2>&1 &
	PID=$!
	for _i in $(seq 1 200); do
		kill -0 "$PID" 2>/dev/null || return 1
		curl -s -o /dev/null --max-time 1 --unix-socket "$A" http://kura/v1/status &&
			find_children && return 0
		sleep 0.05
	done
	return 1
}

# FRONT and KEEPER: kurad's children, by the names they give themselves.
find_children() {
	FRONT=
	KEEPER=
	for _c in $(cat /proc/"$PID"/task/*/children 2>/dev/null); do
		case $(cat /proc/"$_c"/comm 2>/dev/null) in
		kurad-front) FRONT=$_c ;;
		kurad-keeper) KEEPER=$_c ;;
		esac
	done
	[ -n "$FRONT" ] && [ -n "$KEEPER" ]
}

# wait_exit PID SECONDS: the exit status of our child PID, or 255 if it is still running then.
wait_exit() {
	_n=$(($2 * 20))
	while [ "$_n" -gt 0 ] && kill -0 "$1" 2>/dev/null &&
		[ "$(cut -d' ' -f3 /proc/"$1"/stat 2>/dev/null)" != Z ]; do
		sleep 0.05
		_n=$((_n - 1))
	done
	if kill -0 "$1" 2>/dev/null && [ "$(cut -d' ' -f3 /proc/"$1"/stat 2>/dev/null)" != Z ]; then
		return 255
	fi
	wait "$1"
}

status_of() { sed -n "s/^$2:[[:space:]]*//p" /proc/"$1"/status; }

hex() { od -An -v -tx1 | tr -d ' \n'; }

# ---- the scanner itself ----
python3 - "$T/helper.pid" <<'PY' &
import os, sys, threading, time
# A pattern straddling memscan's 1 MiB chunk boundary, in a process of 40 threads.
big = bytearray(64 << 20)
x = (1 << 20) - 16 - 10
for i in range(32):  # byte by byte: no other copy of the pattern in this process
    big[x + i] = 0x40 + i
for _ in range(40):
    threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
open(sys.argv[1], 'w').write(str(os.getpid()))
time.sleep(60)
PY
HELPER=$!
for _i in $(seq 1 100); do [ -s "$T/helper.pid" ] && break; sleep 0.05; done
python3 "$MEMSCAN" "$HELPER" "straddle=$(printf '%s' '@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\]^_' | hex)" \
	>"$T/scan" 2>"$T/scan.err"
rc=$?
want "memscan exit $rc on a present pattern: $(cat "$T/scan" "$T/scan.err")" test "$rc" -eq 1
want "memscan did not name the pattern" grep -q '^found straddle in ' "$T/scan"
python3 "$MEMSCAN" "$HELPER" "absent=$(head -c 32 /dev/urandom | hex)" >"$T/scan" 2>&1
rc=$?
want "memscan exit $rc on an absent pattern: $(cat "$T/scan")" test "$rc" -eq 0
kill -9 "$HELPER" 2>/dev/null
wait "$HELPER" 2>/dev/null
HELPER=
t_end "memscan finds a pattern across its chunk boundary in a 40-thread process, and not one absent"

# ---- a state with canaries ----
"$K" --state-dir "$S" init >"$T/init.out" 2>&1 || tap_bail "init: $(cat "$T/init.out")"
printf 'canary-A-%s' "$(head -c 24 /dev/urandom | hex)" >"$T/a"
printf 'canary-B-%s' "$(head -c 24 /dev/urandom | hex)" >"$T/b"
printf 'canary-C-%s' "$(head -c 24 /dev/urandom | hex)" >"$T/c"
"$K" --state-dir "$S" secret put canary/a --file "$T/a" >/dev/null
"$K" --state-dir "$S" secret put canary/b --file "$T/b" >/dev/null
"$K" --state-dir "$S" secret put other/d --generate 32 >/dev/null
"$K" --state-dir "$S" grant canary/a --host --uid 0 >/dev/null
"$KEYDUMP" --state-dir "$S" >"$T/keys.0" 2>"$T/keydump.err" ||
	tap_bail "keydump: $(cat "$T/keydump.err")"

want "kurad did not start: $(cat "$T/kurad.log")" start_kurad
want "no front ($FRONT) or keeper ($KEEPER) among kurad's children" test -n "$FRONT" -a -n "$KEEPER"
want "front and keeper are one process" test "$FRONT" != "$KEEPER"
want "the front is kurad itself" test "$FRONT" != "$PID" -a "$KEEPER" != "$PID"
want "the front's parent is not kurad" \
	test "$(awk '{print $4}' /proc/"$FRONT"/stat 2>/dev/null)" = "$PID"
want "the keeper's parent is not kurad" \
	test "$(awk '{print $4}' /proc/"$KEEPER"/stat 2>/dev/null)" = "$PID"
t_end "kurad runs as three processes: supervisor $PID, front $FRONT, keeper $KEEPER"

# ---- the sandbox, as the kernel reports it ----
want "front NoNewPrivs $(status_of "$FRONT" NoNewPrivs)" test "$(status_of "$FRONT" NoNewPrivs)" = 1
want "front Seccomp $(status_of "$FRONT" Seccomp)" test "$(status_of "$FRONT" Seccomp)" = 2
want "front CapEff $(status_of "$FRONT" CapEff)" test "$(status_of "$FRONT" CapEff)" = 0000000000000000
want "front runs as uid 0 ($(status_of "$FRONT" Uid))" \
	test "$(status_of "$FRONT" Uid | awk '{print $1 + $2 + $3 + $4}')" -gt 0 -a \
	"$(status_of "$FRONT" Uid | awk '{print ($1 && $2 && $3 && $4) ? 1 : 0}')" = 1
t_end "the front: no_new_privs, seccomp filter, no capabilities, not root"
want "keeper NoNewPrivs $(status_of "$KEEPER" NoNewPrivs)" \
	test "$(status_of "$KEEPER" NoNewPrivs)" = 1
want "keeper Seccomp $(status_of "$KEEPER" Seccomp)" test "$(status_of "$KEEPER" Seccomp)" = 2
t_end "the keeper: no_new_privs and a seccomp filter"

# ---- traffic: fetches of A, changes through the keeper, a key rotation ----
fetched=0
for _i in 1 2 3 4 5; do
	get "$W" /v1/secrets/canary/a
	[ "$CODE" = 200 ] && fetched=$((fetched + 1))
	get "$W" /v1/secrets/canary/a -H 'Accept: application/octet-stream'
	[ "$CODE" = 200 ] && cmp -s "$T/body" "$T/a" && fetched=$((fetched + 1))
done
get "$W" /v1/secrets/canary/b
want "B was served to an ungranted peer ($CODE)" test "$CODE" = 403
want "only $fetched of 10 fetches of A answered with A" test "$fetched" -eq 10
$KR secret put canary/c --file "$T/c" >"$T/out" 2>&1
want "put through kurad: $(cat "$T/out")" grep -q 'canary/c: version 1' "$T/out"
$KR secret rotate other/d --generate 32 >"$T/out" 2>&1
want "rotate through kurad: $(cat "$T/out")" test $? -eq 0
"$KEYDUMP" --state-dir "$S" >"$T/keys.1" 2>>"$T/keydump.err"
$KR key rotate >"$T/out" 2>&1
want "key rotate through kurad: $(cat "$T/out")" test $? -eq 0
get "$W" /v1/secrets/canary/a -H 'Accept: application/octet-stream'
want "a fetch after key rotate: $CODE" test "$CODE" = 200
"$KEYDUMP" --state-dir "$S" >"$T/keys.2" 2>>"$T/keydump.err"
want "keydump failed: $(cat "$T/keydump.err")" test ! -s "$T/keydump.err"
sort -u "$T/keys.0" "$T/keys.1" "$T/keys.2" | sort -u -k2,2 >"$T/keys"
want "key rotate made no new KEK: $(grep '^kek' "$T/keys" | cut -d' ' -f1 | tr '\n' ' ')" \
	test "$(grep -c '^kek:' "$T/keys")" -ge 2
want "no DEK of C or of D's rotation: $(cut -d' ' -f1 "$T/keys" | tr '\n' ' ')" \
	grep -q '^dek:canary/c@1 ' "$T/keys"
t_end "fetches of A (JSON and raw), a put, a rotation and a key rotation through kurad"
tap_diag "key material to look for: $(cut -d' ' -f1 "$T/keys" | tr '\n' ' ')"

# The values, raw and as the JSON answer carries them (base64).
b64() { python3 -c 'import base64,sys; print(base64.b64encode(open(sys.argv[1],"rb").read()).decode())' "$1"; }
printf 'value-B %s\nvalue-B-base64 %s\n' "$(hex <"$T/b")" "$(b64 "$T/b" | tr -d '\n' | hex)" \
	>"$T/b.pat"
printf 'value-A %s\nvalue-A-base64 %s\n' "$(hex <"$T/a")" "$(b64 "$T/a" | tr -d '\n' | hex)" \
	>"$T/a.pat"
sleep 1 # the fetches are answered: their buffers are wiped by now

python3 "$MEMSCAN" "$FRONT" -f "$T/keys" -f "$T/b.pat" >"$T/scan" 2>"$T/scan.err"
rc=$?
want "the front holds: $(cat "$T/scan" "$T/scan.err")" test "$rc" -eq 0
t_end "the front's memory holds no master key, KEK, DEK, record, fingerprint or audit key, nor B"
tap_diag "front: $(sed 's/^# //' "$T/scan.err")"
python3 "$MEMSCAN" "$FRONT" -f "$T/a.pat" >"$T/scan" 2>"$T/scan.err"
rc=$?
want "the front still holds A after answering: $(cat "$T/scan" "$T/scan.err")" test "$rc" -eq 0
t_end "the front holds A's value no longer once its fetches are answered"
python3 "$MEMSCAN" "$PID" -f "$T/keys" -f "$T/a.pat" -f "$T/b.pat" >"$T/scan" 2>"$T/scan.err"
rc=$?
want "the supervisor holds: $(cat "$T/scan" "$T/scan.err")" test "$rc" -eq 0
t_end "the supervisor's memory holds no key and no value"
grep '^master ' "$T/keys" >"$T/master.pat"
python3 "$MEMSCAN" "$KEEPER" -f "$T/master.pat" >"$T/scan" 2>"$T/scan.err"
rc=$?
want "the keeper's memory has no master key (exit $rc): the scan proves nothing: $(cat "$T/scan.err")" \
	test "$rc" -eq 1
t_end "the keeper's memory does hold the master key (the scanner's positive control)"
# A KEK that key rotate destroyed is gone from the keeper too.
old=$(grep '^kek:' "$T/keys" | sort | head -n 1)
if grep -q "^${old%% *} " "$T/keys.2"; then
	tap_skip "the keeper no longer holds the KEK key rotate destroyed" "no KEK was destroyed"
else
	printf '%s\n' "$old" >"$T/old.pat"
	python3 "$MEMSCAN" "$KEEPER" -f "$T/old.pat" >"$T/scan" 2>"$T/scan.err"
	rc=$?
	want "the keeper still holds ${old%% *}: $(cat "$T/scan")" test "$rc" -eq 0
	t_end "the keeper no longer holds the KEK key rotate destroyed (${old%% *})"
fi

# ---- a child that dies stops kurad ----
# die ROLE-PID LOG-NAME: SIGKILL it, kurad exits non-zero within 5 s naming it.
die() {
	_victim=$1
	_t0=$(date +%s%N)
	kill -9 "$_victim"
	wait_exit "$PID" 5
	_rc=$?
	tap_diag "kurad exited $_rc $((($(date +%s%N) - _t0) / 1000000)) ms after the $2 process's SIGKILL"
	want "kurad did not exit within 5 s of the $2 process's death" test "$_rc" -ne 255
	want "kurad exited $_rc, not non-zero" test "$_rc" -ne 0
	want "no log line names the $2 process: $(tail -n 5 "$T/kurad.log")" \
		grep -q "the $2 process (pid $_victim) was killed by signal 9" "$T/kurad.log"
	want "the other child outlived kurad" sh -c "! kill -0 $FRONT 2>/dev/null && ! kill -0 $KEEPER 2>/dev/null"
	PID=
}
die "$FRONT" front
t_end "SIGKILL of the front: kurad exits non-zero at once, its log names the front"

want "kurad did not start again: $(cat "$T/kurad.log")" start_kurad
# Requests in flight when the keeper dies: a long poll parked in the front, and fetches.
REV=$(curl -s --max-time 5 --unix-socket "$W" http://kura/v1/secrets |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["revision"])')
curl -s -o "$T/poll" -w '%{http_code}' --max-time 30 --unix-socket "$W" \
	"http://kura/v1/watch?since=$REV&timeout=60" >"$T/poll.code" 2>/dev/null &
POLL=$!
for i in 1 2 3 4; do
	(
		# Until kurad is gone: a refused connection, or anything but 200, ends it.
		for _n in $(seq 1 20000); do
			c=$(curl -s -o /dev/null -w '%{http_code}' --max-time 30 --unix-socket "$W" \
				http://kura/v1/secrets/canary/a) || c="$c curl-exit-$?"
			echo "$c"
			[ "$c" = 200 ] || break
		done >"$T/loop$i" 2>&1
	) &
done
sleep 0.5
t0=$(date +%s)
die "$KEEPER" "key custody"
wait "$POLL"
prc=$?
wait
el=$(($(date +%s) - t0))
want "a fetch in flight hung to curl's --max-time: $(grep -h curl-exit-28 "$T"/loop*)" \
	sh -c "! grep -q curl-exit-28 '$T'/loop*"
want "a fetch got other than 200, 503 or a closed connection: $(sort "$T"/loop* | uniq -c | tr '\n' ' ')" \
	sh -c "! grep -hv -x '200\|503\|000 curl-exit-[0-9]*\|503 curl-exit-[0-9]*' '$T'/loop* | grep -q ."
want "the long poll hung: curl exit $prc after $el s" test "$prc" -ne 28 -a "$el" -lt 15
t_end "SIGKILL of the keeper: kurad exits non-zero at once naming it; requests in flight end in $el s"
want "the long poll got $(cat "$T/poll.code") $(cat "$T/poll"), not 503 or a closed connection" \
	sh -c "grep -qx '503\|000' '$T/poll.code'"
t_end "a long poll parked when the keeper dies gets 503 or a closed connection"
tap_diag "fetches around the keeper's death: $(cat "$T"/loop* | sort | uniq -c | tr '\n' ' ')"

# ---- SIGTERM ----
want "kurad did not start again: $(cat "$T/kurad.log")" start_kurad
f=$FRONT
k=$KEEPER
kill -TERM "$PID"
wait_exit "$PID" 20
rc=$?
PID=
want "SIGTERM: kurad exit $rc" test "$rc" -eq 0
want "the front (pid $f) outlived kurad" sh -c "! kill -0 $f 2>/dev/null"
want "the keeper (pid $k) outlived kurad" sh -c "! kill -0 $k 2>/dev/null"
t_end "SIGTERM: kurad exits 0 and both children are gone"

want "a value reached kurad's log" sh -c "! grep -qF -e '$(cat "$T/a")' -e '$(cat "$T/b")' '$T/kurad.log'"
t_end "no value in kurad's log"

tap_done

#!/bin/sh
# kura confines the part that talks to the broker and writes the set (client/confine.c): while
# it talks, that process shows NoNewPrivs 1 and Seccomp 2 and kura itself neither; the app kura
# execs (or, with --watch, starts) inherits no filter and no no_new_privs; the confined part
# cannot create a file outside --dir (Landlock); made to call a forbidden syscall (the test
# build kura-test-hooks), it is killed, kura exits 3 with a clear line and the app never starts,
# or under --watch the app keeps running and kura says following stopped.
# Usage: test-kura-sandbox.sh KURA KURA_TEST_HOOKS FAKE_BROKER (tests/e2e/fake-broker.py)
set -u
[ $# -eq 3 ] || { echo "usage: $0 KURA KURA_TEST_HOOKS BROKER" >&2; exit 2; }
KURA=$1
HOOKS=$2
BROKER=$3
HERE=$(dirname "$0")
. "$HERE/../cli/tap.sh"

if [ "$(id -u)" -ne 0 ]; then
	echo "1..0 # SKIP needs root to mount the tmpfs kura writes into"
	exit 0
fi
[ -x "$KURA" ] || { echo "1..0 # SKIP no static kura client (a sanitizer build)"; exit 0; }
command -v python3 >/dev/null 2>&1 || { echo "1..0 # SKIP no python3 for the broker"; exit 0; }

T=$(mktemp -d /tmp/kura-sandbox-XXXXXX)
BPID=
KPID=
cleanup() {
	[ -n "$KPID" ] && kill -KILL "$KPID" 2>/dev/null
	[ -n "$BPID" ] && kill "$BPID" 2>/dev/null
	wait 2>/dev/null
	umount -l "$T/sec" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
B=$T/broker.sock
python3 "$BROKER" "$B" "$T/requests" slow 3 2>"$T/broker.err" &
BPID=$!
for _i in $(seq 1 100); do [ -S "$B" ] && break; sleep 0.05; done
[ -S "$B" ] || tap_bail "the broker did not start: $(cat "$T/broker.err")"
mkdir "$T/sec" && mount -t tmpfs -o mode=0700 tmpfs "$T/sec" || tap_bail "cannot mount a tmpfs"

# field PID KEY: KEY's value in /proc/PID/status.
field() {
	sed -n "s/^$2:[[:space:]]*//p" "/proc/$1/status" 2>/dev/null
}
# children PID: its child processes.
children() {
	cat "/proc/$1/task/$1/children" 2>/dev/null
}
# wait_children PID N: until PID has N children (5 s at most).
wait_children() {
	for _i in $(seq 1 100); do
		[ "$(children "$1" | wc -w)" -ge "$2" ] && return 0
		sleep 0.05
	done
	return 1
}

# 1. While it waits for the broker (which answers whoami after 3 s), the part that talks is a
# confined child; kura itself is not confined.
"$KURA" --socket "$B" whoami >"$T/out" 2>"$T/err" &
KPID=$!
want "kura started no child to talk to the broker" wait_children "$KPID" 1
C=$(children "$KPID" | awk '{print $1}')
want "the talking process has NoNewPrivs '$(field "$C" NoNewPrivs)', not 1" \
	[ "$(field "$C" NoNewPrivs)" = 1 ]
want "the talking process has Seccomp '$(field "$C" Seccomp)', not 2" [ "$(field "$C" Seccomp)" = 2 ]
want "kura itself has Seccomp '$(field "$KPID" Seccomp)', not 0" [ "$(field "$KPID" Seccomp)" = 0 ]
wait "$KPID"
rc=$?
KPID=
want "whoami exited $rc: $(cat "$T/err")" [ "$rc" -eq 0 ]
want "whoami printed no identity: $(cat "$T/out")" grep -q '"container_id"' "$T/out"
t_end "the process that talks to the broker runs with NoNewPrivs 1 and Seccomp 2; kura does not"

# 2. The app kura execs inherits neither.
"$KURA" --socket "$B" run --dir "$T/sec" -- /bin/sh -c \
	"grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status >'$T/app'" 2>"$T/err"
rc=$?
want "run exited $rc: $(cat "$T/err")" [ "$rc" -eq 0 ]
want "the app saw: $(cat "$T/app" 2>/dev/null)" grep -q '^Seccomp:[[:space:]]*0$' "$T/app"
want "the app saw: $(cat "$T/app" 2>/dev/null)" grep -q '^NoNewPrivs:[[:space:]]*0$' "$T/app"
want "the secret was not written" [ "$(cat "$T/sec/tok" 2>/dev/null)" = v ]
t_end "the app kura execs has Seccomp 0 and NoNewPrivs 0, and its secret is written"

# 3. --watch: the watcher is the confined one, the app is not; a rotation reaches the app.
"$KURA" --socket "$B" run --watch --dir "$T/sec" -- /bin/sh -c \
	"trap 'echo hup >>\"$T/hups\"' HUP; grep '^Seccomp:' /proc/self/status >'$T/wapp';
	while :; do sleep 0.1; done" 2>"$T/err" &
KPID=$!
want "kura --watch has not two children" wait_children "$KPID" 2
for _i in $(seq 1 60); do [ -s "$T/hups" ] && break; sleep 0.05; done
W= A=
for c in $(children "$KPID"); do
	if [ "$(field "$c" Seccomp)" = 2 ]; then W=$c; else A=$c; fi
done
want "no confined watcher among kura's children" [ -n "$W" ]
want "the app saw: $(cat "$T/wapp" 2>/dev/null)" grep -q '^Seccomp:[[:space:]]*0$' "$T/wapp"
want "the rotation did not reach the app (no HUP)" [ -s "$T/hups" ]
kill -TERM "$KPID"
wait "$KPID"
rc=$?
KPID=
want "kura --watch exited $rc after TERM, not 143: $(cat "$T/err")" [ "$rc" -eq 143 ]
want "the watcher $W outlived kura" [ ! -d "/proc/$W" ]
t_end "with --watch the watcher is confined (Seccomp 2), the app is not, and a rotation signals it"

if [ ! -x "$HOOKS" ]; then
	tap_skip "Landlock and a forbidden call in the confined part" "no kura-test-hooks build"
	tap_done
	exit
fi

# 4. Landlock: the confined part may create nothing outside --dir.
KURA_TEST_ESCAPE=$T/escaped "$HOOKS" --socket "$B" run --dir "$T/sec" -- /bin/true 2>"$T/err"
rc=$?
want "run exited $rc: $(cat "$T/err")" [ "$rc" -eq 0 ]
want "the confined part created $T/escaped" [ ! -e "$T/escaped" ]
want "the refusal is not EACCES: $(cat "$T/err")" grep -q "Permission denied" "$T/err"
t_end "the confined part cannot create a file outside --dir (Landlock)"

# 5. A forbidden call before anything is written: killed, exit 3, the app never starts.
umount "$T/sec" && mount -t tmpfs -o mode=0700 tmpfs "$T/sec"
KURA_TEST_HOOK=start "$HOOKS" --socket "$B" run --dir "$T/sec" -- /bin/sh -c ": >'$T/started'" \
	2>"$T/err"
rc=$?
want "kura exited $rc, not 3: $(cat "$T/err")" [ "$rc" -eq 3 ]
want "no clear line: $(cat "$T/err")" grep -q "killed by SIGSYS.*outside its seccomp allow-list" \
	"$T/err"
want "the app started" [ ! -e "$T/started" ]
want "a set was written: $(ls -A "$T/sec")" [ -z "$(ls -A "$T/sec")" ]
t_end "a forbidden call in the confined part kills it; kura exits 3 with a clear line, no app"

# 6. --watch, the watcher killed on a rewrite: the app keeps running, kura says so.
: >"$T/hups"
KURA_TEST_HOOK=refresh "$HOOKS" --socket "$B" run --watch --dir "$T/sec" -- /bin/sh -c \
	"while :; do sleep 0.1; done" 2>"$T/err" &
KPID=$!
for _i in $(seq 1 100); do grep -q SIGSYS "$T/err" && break; sleep 0.05; done
want "no line about the killed watcher: $(cat "$T/err")" \
	grep -q "watch: kura's confined part was killed by SIGSYS.*the app keeps running" "$T/err"
want "kura stopped with the watcher" kill -0 "$KPID"
want "the app stopped with the watcher" [ "$(children "$KPID" | wc -w)" -eq 1 ]
kill -TERM "$KPID"
wait "$KPID"
rc=$?
KPID=
want "kura --watch exited $rc after TERM, not 143" [ "$rc" -eq 143 ]
t_end "a watcher killed by its filter is reported; the app keeps running"

tap_done

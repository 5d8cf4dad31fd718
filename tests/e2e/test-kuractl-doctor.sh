#!/bin/sh
# kuractl doctor on a real host: a real dockerd and Podman and a real kurad on a fresh state
# pass; then each thing it checks is broken in turn (a state directory others can read, a
# runtime that does not answer, that answers without end, or names itself with escapes, an
# unknown runtime, an edited audit record, a wrong audit key) and doctor says FAIL with the
# fix, within its bound, exit 1; nothing it checks is changed by it.
# Usage: test-kuractl-doctor.sh KURAD KURACTL
set -u
[ $# -eq 2 ] || { echo "usage: $0 KURAD KURACTL" >&2; exit 2; }
KURAD=$1
K=$2
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../cli/tap.sh"
[ "$(id -u)" -eq 0 ] || { echo "1..0 # SKIP doctor's checks of root's state need root"; exit 0; }

E2E=$(mktemp -d /tmp/kura-doctor-XXXXXX)
chmod 755 "$E2E"
. "$here/runtimes.sh"
KPID= FPIDS=
cleanup() {
	[ -n "$KPID" ] && kill "$KPID" 2>/dev/null
	for p in $FPIDS; do kill "$p" 2>/dev/null; done
	[ -n "$KPID" ] && wait "$KPID" 2>/dev/null
	e2e_cleanup
	rm -rf "$E2E"
}
trap cleanup EXIT
S=$E2E/state
R=$E2E/run

"$K" --state-dir "$S" init --audit-key-out "$E2E/audit.key" >/dev/null || tap_bail "kuractl init failed"
printf 'v' | "$K" --state-dir "$S" secret put app/one >/dev/null || tap_bail "secret put failed"
e2e_start_runtimes
[ "$HAVE_DOCKER" = yes ] || tap_bail "dockerd did not start: $WHY_DOCKER"
e2e_start_kurad "$KURAD" "$S" "$R" || tap_bail "kurad did not start: $(tail -n 5 "$E2E/kurad.log")"
RT="--runtime docker=unix:$E2E/docker.sock"
[ "$HAVE_PODMAN" = yes ] && RT="$RT --runtime podman=unix:$E2E/podman.sock"

# doctor ARGS...: its JSON in $E2E/out, its exit status in $RC, its time in $MS.
doctor() {
	_t0=$(date +%s%N)
	# shellcheck disable=SC2086
	"$K" --state-dir "$S" --run-dir "$R" doctor --json "$@" >"$E2E/out" 2>"$E2E/err"
	RC=$?
	MS=$((($(date +%s%N) - _t0) / 1000000))
}
# status CHECK-PREFIX: the statuses of the checks whose name starts so, space-separated.
status() {
	python3 -c 'import json,sys
d=json.load(open(sys.argv[1]))
print(" ".join(c["status"] for c in d["checks"] if c["check"].startswith(sys.argv[2])))' "$E2E/out" "$1"
}
# detail CHECK-PREFIX: their details and fixes.
detail() {
	python3 -c 'import json,sys
d=json.load(open(sys.argv[1]))
print(" | ".join(c["detail"] + " / fix: " + str(c.get("fix")) for c in d["checks"] if c["check"].startswith(sys.argv[2])))' "$E2E/out" "$1"
}

# has CHECK-PREFIX PATTERN: their details and fixes match PATTERN (grep).
has() { detail "$1" | grep -q -- "$2"; }

# --- a healthy host --------------------------------------------------------------------------
# shellcheck disable=SC2086
doctor $RT --audit-key "$E2E/audit.key"
want "doctor failed on a healthy host ($RC): $(cat "$E2E/out" "$E2E/err")" test "$RC" -eq 0
want "not one JSON document: $(cat "$E2E/out")" python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$E2E/out"
want "docker not ok: $(detail 'runtime docker')" test "$(status 'runtime docker')" = ok
want "docker's version not shown: $(detail 'runtime docker')" has 'runtime docker' 'version [0-9]'

if [ "$HAVE_PODMAN" = yes ]; then
	want "podman not ok: $(detail 'runtime podman')" test "$(status 'runtime podman')" = ok
fi
want "kurad not seen: $(detail kurad)" test "$(status kurad)" = ok
want "audit not verified with its key: $(detail 'audit log')" test "$(status 'audit log')" = ok
want "its MACs were not checked: $(detail 'audit log')" has 'audit log' 'every MAC checked'

want "no state directory check: $(detail 'state directory')" test "$(status 'state directory')" = ok
want "no runc verdict: $(detail runc)" test -n "$(status runc)"
t_end "a healthy host (real dockerd$([ "$HAVE_PODMAN" = yes ] && echo ' and Podman'), kurad): every check ok or warn, exit 0 (${MS} ms)"

"$K" --state-dir "$S" --run-dir "$R" doctor $RT >"$E2E/human" 2>&1
want "the human form: $(cat "$E2E/human")" grep -q '^kuractl doctor: 0 failed' "$E2E/human"
want "the human form names no checks: $(cat "$E2E/human")" grep -q '^ok    runtime docker' "$E2E/human"
t_end "the person's form: one line a check, and a summary"

# --- the state directory readable by others ----------------------------------------------------
chmod 0755 "$S"
doctor $RT
chmod 0700 "$S"
want "exit $RC with the state directory 0755" test "$RC" -eq 1
want "not FAIL: $(detail 'state directory')" test "$(status 'state directory')" = fail
want "no fix named: $(detail 'state directory')" has 'state directory' 'chmod go='

t_end "a state directory others may read: FAIL, with the chmod that fixes it"

# --- runtimes that do not answer, answer without end, or lie in escapes ------------------------
python3 - "$E2E/silent.sock" "$E2E/endless.sock" "$E2E/escape.sock" <<'PY' &
import os, socket, sys, threading, time
def serve(path, handler):
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)
    s.listen(8)
    while True:
        c, _ = s.accept()
        threading.Thread(target=handler, args=(c,), daemon=True).start()
def silent(c):
    c.recv(4096)
    time.sleep(60)
def endless(c):
    c.recv(4096)
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{\"Version\": \"")
    try:
        while True:
            c.sendall(b"A" * 65536)
    except OSError:
        pass
def escape(c):
    c.recv(4096)
    body = b'{"Version": "1.0\\u001b[2J\\u001b]0;pwned\\u0007", "ApiVersion": "1.41"}'
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
    c.close()
for p, h in zip(sys.argv[1:], (silent, endless, escape)):
    threading.Thread(target=serve, args=(p, h), daemon=True).start()
time.sleep(300)
PY
FPIDS=$!
for _i in $(seq 1 50); do [ -S "$E2E/escape.sock" ] && break; sleep 0.1; done

doctor --runtime "docker=unix:$E2E/silent.sock"
want "exit $RC for a runtime that never answers" test "$RC" -eq 1
want "not FAIL: $(detail 'runtime docker')" test "$(status 'runtime docker')" = fail
want "took ${MS} ms: not bounded" test "$MS" -lt 15000
t_end "a runtime that accepts and never answers: FAIL within the bound (${MS} ms)"

doctor --runtime "docker=unix:$E2E/endless.sock"
want "not FAIL: $(detail 'runtime docker')" test "$(status 'runtime docker')" = fail
want "not the size bound: $(detail 'runtime docker')" has 'runtime docker' '1 MiB'

t_end "a runtime that answers without end: FAIL at 1 MiB (${MS} ms)"

"$K" --state-dir "$S" --run-dir "$R" doctor --runtime "podman=unix:$E2E/escape.sock" >"$E2E/human" 2>&1
want "an escape reached the terminal" sh -c "! grep -q \"$(printf '\033')\" '$E2E/human'"
want "the version was not shown escaped: $(grep podman "$E2E/human")" grep -q 'podman.*\\x1b' "$E2E/human"
t_end "a runtime's version with terminal escapes is printed escaped"

doctor --runtime "docker=unix:$E2E/nothing.sock" --runtime "rkt=unix:$E2E/silent.sock" --runtime "docker=tcp:1.2.3.4"
want "exit $RC" test "$RC" -eq 1
want "three FAILs expected: $(detail runtime)" test "$(status runtime)" = "fail fail fail"
t_end "a runtime socket that is not there, an unknown runtime and a non-unix endpoint: FAIL each"

printf 'runtime = docker=unix:%s\n# runtime = podman=unix:/nowhere\nrate = 5\n' "$E2E/docker.sock" >"$E2E/kurad.conf"
doctor --config "$E2E/kurad.conf"
want "the config's runtime was not checked: $(detail runtime)" test "$(status runtime)" = ok
t_end "--config: its runtime lines are the runtimes checked (comments skipped)"

# --- the audit log ------------------------------------------------------------------------------
cp -a "$S" "$E2E/copy"
f=$(ls "$E2E/copy/audit/"audit-*.jsonl | head -n 1)
sed -i '1s/"event":"[a-z_-]*"/"event":"forged"/' "$f"
grep -q '"event":"forged"' "$f" || tap_bail "the record was not edited: $(head -c 200 "$f")"
"$K" --state-dir "$E2E/copy" --run-dir "$R" doctor --json --audit-key "$E2E/audit.key" >"$E2E/out" 2>&1
RC=$?
want "exit $RC for an edited record" test "$RC" -eq 1
want "not FAIL: $(detail 'audit log')" test "$(status 'audit log')" = fail
want "where is not named: $(detail 'audit log')" has 'audit log' 'audit-000001.jsonl line 1'
t_end "an edited audit record: FAIL, naming where"

head -c 32 /dev/urandom | base64 >"$E2E/wrong.key"
doctor $RT --audit-key "$E2E/wrong.key"
want "a wrong audit key passed: $(detail 'audit log')" test "$(status 'audit log')" = fail
printf 'not a key\n' >"$E2E/junk.key"
doctor $RT --audit-key "$E2E/junk.key"
want "a junk audit key: $(detail 'audit log')" has 'audit log' 'not an audit key'
want "why not said: $(cat "$E2E/err")" grep -q 'neither base64' "$E2E/err"

t_end "a wrong or malformed audit key: FAIL"

# --- nothing changed, kurad unharmed ------------------------------------------------------------
want "kurad died" kill -0 "$KPID"
"$K" --state-dir "$S" --run-dir "$R" audit verify --key "$E2E/audit.key" >/dev/null 2>&1
want "the real log no longer verifies" test $? -eq 0
"$K" --state-dir "$S" doctor --bogus >/dev/null 2>"$E2E/err"
want "a bad option: exit $? $(cat "$E2E/err")" grep -q "unknown option '--bogus'" "$E2E/err"
t_end "doctor changes nothing (kurad serves, the log verifies); a bad option is a usage error"

tap_done

#!/bin/sh
# kurad's processes attacked from the inside, with the test build kurad-hooks (hooks.h): a front
# taken over that asks for what its peer may not have, lies about who the peer is, passes its
# own channel as the peer or writes garbage to the custody process; a custody process that sends
# the front garbage; each process making a system call its sandbox forbids. Each time kurad
# says no, or dies with a clear line and a non-zero status; no value goes out.
# Usage: test-kurad-privsep.sh KURAD-HOOKS KURACTL
set -u
[ $# -eq 2 ] || { echo "usage: $0 KURAD-HOOKS KURACTL" >&2; exit 2; }
KURAD=$1
K=$2
. "$(dirname "$0")/../cli/tap.sh"

[ "$(id -u)" -eq 0 ] || { echo "1..0 # SKIP kurad tests run as root"; exit 0; }
command -v curl >/dev/null 2>&1 || tap_bail "curl is needed"
[ -x "$KURAD" ] && [ -x "$K" ] || tap_bail "no kurad-hooks or kuractl at $KURAD, $K"

T=$(mktemp -d /tmp/kura-privsep-XXXXXX)
chmod 755 "$T"
PID=
cleanup() {
	[ -n "$PID" ] && kill -9 "$PID" 2>/dev/null
	[ -f "$T/kurad.log" ] && cp "$T/kurad.log" /tmp/kurad-privsep-last.log
	rm -rf "$T"
}
trap cleanup EXIT
S=$T/state
R=$T/run
W=$R/workload.sock
A=$R/admin.sock

# get PATH [HEADER]: body in $T/body, status in $CODE.
get() {
	if [ $# -gt 1 ]; then
		CODE=$(curl -s -o "$T/body" -w '%{http_code}' --max-time 10 -H "$2" \
			--unix-socket "$W" "http://kura$1") || CODE=000
	else
		CODE=$(curl -s -o "$T/body" -w '%{http_code}' --max-time 10 \
			--unix-socket "$W" "http://kura$1") || CODE=000
	fi
}

# start HOOK: kurad-hooks with KURA_TEST_HOOK=HOOK, answering.
start() {
	: >"$T/kurad.log"
	KURA_TEST_HOOK=$1 "$KURAD" --state-dir "$S" --run-dir "$R" >>"$T/kurad.log" 2>&1 &
	PID=$!
	for _i in $(seq 1 100); do
		kill -0 "$PID" 2>/dev/null || return 1
		curl -s -o /dev/null --max-time 1 --unix-socket "$A" http://kura/v1/status &&
			return 0
		sleep 0.05
	done
	return 1
}

# stopped SECONDS: kurad has exited within SECONDS; its status in $STATUS.
stopped() {
	for _i in $(seq 1 $(($1 * 20))); do
		if ! kill -0 "$PID" 2>/dev/null; then
			wait "$PID"
			STATUS=$?
			PID=
			return 0
		fi
		sleep 0.05
	done
	STATUS=
	return 1
}

stop() {
	[ -n "$PID" ] || return 0
	kill "$PID" 2>/dev/null
	stopped 10 || kill -9 "$PID" 2>/dev/null
	PID=
}

# dies WHAT PATTERN: the request just made was not served, kurad stopped within 10 s with a
# non-zero status, and its log has a line matching PATTERN.
dies() {
	want "$1: answered $CODE $(cat "$T/body")" test "$CODE" != 200
	want "$1: kurad did not stop: $(tail -n 3 "$T/kurad.log")" stopped 10
	want "$1: kurad exited ${STATUS:-?}" test "${STATUS:-0}" -ne 0
	want "$1: no line matching '$2': $(tail -n 4 "$T/kurad.log")" grep -q "$2" "$T/kurad.log"
}

# records EXPR: python over the audit records as r (a list of dicts).
records() {
	python3 -c 'import json,glob,sys
r=[json.loads(l) for f in sorted(glob.glob(sys.argv[1] + "/audit/audit-*.jsonl")) for l in open(f)]
print(eval(sys.argv[2]))' "$S" "$1"
}

"$K" --state-dir "$S" init >/dev/null
printf 'mine-value' >"$T/v1"
printf 'not-yours-value' >"$T/v2"
"$K" --state-dir "$S" secret put app/mine --file "$T/v1" >/dev/null
"$K" --state-dir "$S" secret put other/theirs --file "$T/v2" >/dev/null
"$K" --state-dir "$S" secret put test/malformed --file "$T/v1" >/dev/null
# Root on the host may read app/* and test/*; other/* only a container named only-that-one.
"$K" --state-dir "$S" grant 'app/*' --host --uid 0 >/dev/null
"$K" --state-dir "$S" grant 'test/*' --host --uid 0 >/dev/null
"$K" --state-dir "$S" grant 'other/*' --name only-that-one >/dev/null

# --- a front taken over --------------------------------------------------------------------

want "kurad-hooks did not start: $(cat "$T/kurad.log")" start evil-front
get /v1/secrets/app/mine
want "the honest request: $CODE $(cat "$T/body")" test "$CODE" = 200
want "the honest request's value: $(cat "$T/body")" grep -q '"value":"bWluZS12YWx1ZQ=="' "$T/body"
get /v1/secrets/app/mine 'Kura-Test-Evil: ask:other/theirs'
want "asked other/theirs for a peer without a grant: $CODE $(cat "$T/body")" test "$CODE" = 403
want "not a no_grant refusal: $(cat "$T/body")" grep -q no_grant "$T/body"
want "the other secret's value went out" sh -c "! grep -q not-yours-value '$T/body'"
t_end "a front that asks for a secret its peer may not read is refused (403 no_grant)"

want "no refusal of other/theirs on record: $(records '[x for x in r if x.get("secret") == "other/theirs"]')" \
	test "$(records 'len([x for x in r if x["event"] == "fetch" and x.get("secret") == "other/theirs" and x["result"] == "denied" and x["reason"] == "no_grant" and x.get("host") and x["uid"] == 0])')" -ge 1
t_end "that refusal is in the audit log, with the peer the custody process saw (host, uid 0)"

get /v1/secrets/app/mine "Kura-Test-Evil: claim:container:docker:$(printf '%064d' 7)"
want "a host peer claimed a container: $CODE $(cat "$T/body")" test "$CODE" = 403
want "not identity_mismatch: $(cat "$T/body")" grep -q identity_mismatch "$T/body"
want "the value went out" sh -c "! grep -q mine-value '$T/body'"
want "no identity_mismatch on record: $(records '[x for x in r if x.get("reason") == "identity_mismatch"]')" \
	test "$(records 'len([x for x in r if x.get("reason") == "identity_mismatch" and x["uid"] == 0 and x["pid"] > 0])')" -ge 1
t_end "a front that says a host process is a container is refused and recorded (identity_mismatch)"

get /v1/secrets/app/mine
want "kurad stopped serving after the lies: $CODE" test "$CODE" = 200
t_end "kurad keeps serving after a lying front's requests"

# The front keeps a host process's principal for a moment (workload.c, known_principal). A
# process that leaves kurad's mount namespace after it has been counted is not served on the
# kept word: the custody process sees the change (identity_mismatch), the front forgets, and
# the next request is judged afresh (unidentified: a host process in a namespace of its own).
python3 - "$W" "$(dirname "$0")/../tools" >"$T/moved" 2>&1 <<'PY'
import ctypes, sys
sys.path.insert(0, sys.argv[2])
import uhttp
def get(path):
    status, out = uhttp.get(sys.argv[1], path)
    print(status, b"bWluZS12YWx1ZQ==" in out,
          out.split(b"\r\n\r\n", 1)[-1].decode(errors="replace").replace("\n", " "))
for _ in range(3):
    get(b"/v1/secrets/app/mine")
if ctypes.CDLL(None, use_errno=True).unshare(0x00020000) != 0:  # CLONE_NEWNS
    print("unshare failed", ctypes.get_errno())
    sys.exit(1)
get(b"/v1/secrets/app/mine")
get(b"/v1/secrets/app/mine")
PY
want "the moving process: $(cat "$T/moved")" test "$(sed -n 1,3p "$T/moved" | grep -c '^200 True')" -eq 3
want "served after it left the namespace: $(cat "$T/moved")" sh -c "! sed -n '4,5p' '$T/moved' | grep -q True"
want "its first request after the move was not refused as identity_mismatch: $(sed -n 4p "$T/moved")" \
	sh -c "sed -n 4p '$T/moved' | grep -q '^403 False.*identity_mismatch'"
want "its next request was judged on the kept word again: $(sed -n 5p "$T/moved")" \
	sh -c "sed -n 5p '$T/moved' | grep '^403 False' | grep -qv identity_mismatch"
get /v1/secrets/app/mine
want "kurad stopped serving others: $CODE" test "$CODE" = 200
t_end "a host process counted a moment ago that leaves kurad's namespaces is refused, then judged afresh"

get /v1/secrets/app/mine 'Kura-Test-Evil: fd:channel'
dies "its own channel passed as the peer" \
	'malformed message from the front.*not accepted on workload.sock'
t_end "a front that passes its own channel as the peer's socket: the custody process stops, kurad exits non-zero ($STATUS)"
stop

# Each malformed message, written raw to a request channel by the front.
#   header: u32 body length, u16 type, u16 flags; a field: u16 tag, u16 0, u32 length, bytes.
#   ASK is type 1; 01000000 = 1 (LE u32), 0100 = 1 (LE u16).
for case in \
	"short header:0100" \
	"a length past any limit:ffffff7f01000000" \
	"an unknown type:00000000ff000000" \
	"a number field of 7 bytes:0f0000000100000002000000070000000000000000000000" \
	"an unknown field:08000000010000006300000000000000" \
	"a secret flag on a request:0000000001000100"; do
	what=${case%%:*}
	hex=${case#*:}
	want "kurad-hooks did not start: $(tail -n 3 "$T/kurad.log")" start evil-front
	get /v1/secrets/app/mine "Kura-Test-Evil: raw:$hex"
	dies "$what" 'malformed message from the front'
	t_end "a malformed message to the custody process ($what) is fatal, never served; kurad exits $STATUS"
	stop
done

# --- a custody process that sends garbage ---------------------------------------------------

want "kurad-hooks did not start: $(tail -n 3 "$T/kurad.log")" start evil-keeper
get /v1/secrets/test/malformed
dies "a malformed answer" 'malformed message from the keeper'
t_end "a malformed answer to the front is fatal, never served; kurad exits $STATUS"
stop

# --- forbidden system calls -----------------------------------------------------------------

for role in front keeper; do
	want "kurad-hooks did not start: $(tail -n 3 "$T/kurad.log")" start "syscall:$role"
	get /v1/secrets/app/mine
	dies "$role" \
		"process (pid [0-9]*) was killed by signal 31 .*: it made a system call its sandbox forbids"
	t_end "the $role process making a forbidden system call is killed (SIGSYS); kurad says so and exits $STATUS"
	stop
done

: >"$T/kurad.log"
KURA_TEST_HOOK=syscall:supervisor "$KURAD" --state-dir "$S" --run-dir "$R" >>"$T/kurad.log" 2>&1 &
PID=$!
want "the supervisor did not stop" stopped 10
want "the supervisor exited ${STATUS:-?}, not killed by SIGSYS (159)" test "${STATUS:-0}" -eq 159
# Its children die with it (PR_SET_PDEATHSIG): gone, or zombies waiting for init.
alive() {
	for _p in $(pgrep -f "kurad.* --run-dir $R"); do
		[ "$(awk '/^State:/ { print $2 }' "/proc/$_p/status" 2>/dev/null)" = Z ] || return 0
	done
	return 1
}
not_alive() { ! alive; }
for _i in $(seq 1 50); do alive || break; sleep 0.1; done
want "a child outlived the supervisor: $(pgrep -a -f "kurad.* --run-dir $R" || true)" not_alive
t_end "the supervisor making a forbidden system call is killed (SIGSYS), and its children with it"

tap_done

#!/bin/sh
# kurad's audit log, end to end with host processes: every request and operation lands as a
# record with who, what and the result; never a value; kuractl working offline records too;
# and when the log cannot be written (disk full, file replaced) secrets are refused with 503
# until it can, after which the chain still verifies.
# Usage: test-kurad-audit.sh KURAD KURACTL
set -u
[ $# -eq 2 ] || { echo "usage: $0 KURAD KURACTL" >&2; exit 2; }
KURAD=$1
K=$2
. "$(dirname "$0")/../cli/tap.sh"

[ "$(id -u)" -eq 0 ] || { echo "1..0 # SKIP kurad tests run as root"; exit 0; }
command -v curl >/dev/null 2>&1 || tap_bail "curl is needed"

T=$(mktemp -d /tmp/kura-audit-XXXXXX)
PID=
MOUNTED=
cleanup() {
	[ -n "$PID" ] && kill -9 "$PID" 2>/dev/null
	[ -n "$MOUNTED" ] && umount -l "$MOUNTED" 2>/dev/null
	[ -f "$T/kurad.log" ] && cp "$T/kurad.log" /tmp/kurad-audit-last.log
	rm -rf "$T"
}
trap cleanup EXIT
S=$T/state
R=$T/run
W=$R/workload.sock
A=$R/admin.sock
L=$S/audit

get() {
	CODE=$(curl -s --path-as-is -o "$T/body" -w '%{http_code}' --max-time 10 \
		--unix-socket "$1" "http://kura$2") || CODE=000
}

start_kurad() {
	"$KURAD" --state-dir "$S" --run-dir "$R" --config "$T/kurad.conf" >>"$T/kurad.log" 2>&1 &
	PID=$!
	for _i in $(seq 1 100); do
		kill -0 "$PID" 2>/dev/null || return 1
		curl -s -o /dev/null --max-time 1 --unix-socket "$A" http://kura/v1/status &&
			return 0
		sleep 0.05
	done
	return 1
}

stop_kurad() {
	kill "$PID" 2>/dev/null
	wait "$PID" 2>/dev/null
	PID=
}

# records PYEXPR: the audit records (a list of dicts, all files in order) as r; prints EXPR.
records() {
	python3 - "$L" "$1" <<'PY'
import glob, json, os, sys
r = []
for f in sorted(glob.glob(os.path.join(sys.argv[1], "audit-*.jsonl"))):
    for line in open(f):
        if line.endswith("\n"):
            r.append(json.loads(line))
print(eval(sys.argv[2]))
PY
}

# --- init hands out the starting key ---
"$K" --state-dir "$S" init --audit-key-out "$T/audit.key" >"$T/out" 2>&1
want "init exited $?: $(cat "$T/out")" test $? -eq 0
want "the key file is $(stat -c %a "$T/audit.key" 2>&1), not 400" \
	test "$(stat -c %a "$T/audit.key")" = 400
want "the key file is not one line of base64 of 32 bytes" \
	python3 -c 'import base64,sys; assert len(base64.b64decode(open(sys.argv[1]).read().strip(), validate=True)) == 32' "$T/audit.key"
want "init does not say where the key is: $(cat "$T/out")" grep -q "audit.key" "$T/out"
KEY64=$(cat "$T/audit.key")
want "the starting key is kept on the host" sh -c "! grep -rqF '$KEY64' '$S'"
t_end "kuractl init --audit-key-out writes the audit log's starting key (0400), not kept in the state"

"$K" --state-dir "$T/state2" init --audit-key-out "$T/audit.key" >"$T/out" 2>&1
want "exit $?, expected 1" test $? -eq 1
want "no state must be made: $(ls "$T/state2" 2>&1)" test ! -e "$T/state2/kura.db"
want "the existing key file changed" test "$(cat "$T/audit.key")" = "$KEY64"
t_end "init refuses an existing --audit-key-out file before it makes anything"

"$K" --state-dir "$T/state3" --json init >"$T/out" 2>&1
want "init --json: $(cat "$T/out")" python3 -c 'import base64,json,sys; j=json.load(open(sys.argv[1])); assert len(base64.b64decode(j["audit_key"])) == 32' "$T/out"
t_end "init without --audit-key-out prints the key (audit_key in --json)"

# --- records of requests ---
printf 'audit-value-1-SECRETMARKER' >"$T/v1"
"$K" --state-dir "$S" secret put app/x --file "$T/v1" >/dev/null
printf 'rate = 1000\nburst = 1000\n' >"$T/kurad.conf"
want "kurad did not start: $(cat "$T/kurad.log")" start_kurad
t_end "kurad starts on the state with its audit log"

get "$W" /v1/whoami
get "$W" /v1/secrets/app/x
want "ungranted fetch: $CODE" test "$CODE" = 403
"$K" --state-dir "$S" --run-dir "$R" grant 'app/*' --host --uid 0 >/dev/null
get "$W" /v1/secrets/app/x
want "granted fetch: $CODE" test "$CODE" = 200
get "$W" /v1/secrets
get "$W" /v1/secrets/app/missing
want "missing: $CODE" test "$CODE" = 404
want "records: $(records 'r')" test "$(records '[(x["event"], x.get("result"), x.get("reason")) for x in r if x["event"] not in ("start",)]')" = \
"[('secret-put', 'ok', None), ('whoami', 'ok', None), ('fetch', 'denied', 'no_grant'), ('grant', 'ok', None), ('fetch', 'ok', None), ('list', 'ok', None), ('fetch', 'error', 'not_found')]"
t_end "every request and operation is a record, in order, with result and reason"

want "the granted fetch's record: $(records '[x for x in r if x["event"] == "fetch"][1]')" \
	test "$(records '(lambda x: (x["secret"], x["version"], x["host"], x["uid"], x["pid"] > 0, len(x["request_id"]), x["fingerprint"][:3], len(x["fingerprint"])))([x for x in r if x["event"] == "fetch"][1])')" = \
	"('app/x', 1, True, 0, True, 16, 'b2:', 35)"
want "a record lacks seq/time/epoch/mac" test "$(records 'all(("seq" in x and "time" in x and "epoch" in x and "mac" in x) for x in r)')" = True
want "seq is not 1..n" test "$(records '[x["seq"] for x in r] == list(range(1, len(r) + 1))')" = True
want "time is not RFC 3339 with microseconds: $(records 'r[0]["time"]')" \
	test "$(records '__import__("re").fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", r[-1]["time"]) is not None')" = True
want "the grant record has no grant_id" test "$(records '[len(x.get("grant_id", "")) > 0 for x in r if x["event"] == "grant"]')" = "[True]"
t_end "a fetch record names the secret, version, peer, request id and a keyed fingerprint"

want "a value is in the audit log" sh -c "! grep -rq SECRETMARKER '$L'"
FP1=$(records '[x for x in r if x["event"] == "fetch" and x["result"] == "ok"][-1]["fingerprint"]')
PUTFP=$(records '[x for x in r if x["event"] == "secret-put"][-1].get("fingerprint")')
want "the put's fingerprint $PUTFP differs from the fetch's $FP1 for the same value" \
	test "$PUTFP" = "$FP1"
want "the fingerprint is a plain hash of the value" python3 -c '
import hashlib, sys
v = open(sys.argv[1], "rb").read()
fp = sys.argv[2][3:]
assert fp not in (hashlib.blake2b(v, digest_size=16).hexdigest(), hashlib.sha256(v).hexdigest()[:32], hashlib.md5(v).hexdigest())' "$T/v1" "$FP1"
printf 'audit-value-2-SECRETMARKER' >"$T/v2"
"$K" --state-dir "$S" --run-dir "$R" secret rotate app/x --file "$T/v2" >/dev/null
get "$W" /v1/secrets/app/x
FP2=$(records '[x for x in r if x["event"] == "fetch" and x["result"] == "ok"][-1]["fingerprint"]')
want "a new value has the same fingerprint" test "$FP2" != "$FP1"
want "the rotation is not recorded" test "$(records '[(x["secret"], x["version"]) for x in r if x["event"] == "secret-rotate"]')" = "[('app/x', 2)]"
t_end "no value in the log; fingerprints tell same from different values and are keyed"

"$K" --state-dir "$S" --run-dir "$R" key rotate >/dev/null
"$K" --state-dir "$S" --run-dir "$R" revoke "$(records '[x for x in r if x["event"] == "grant"][0]["grant_id"]')" >/dev/null
want "key-rotate/revoke records: $(records '[x for x in r if x["event"] in ("key-rotate", "revoke")]')" \
	test "$(records '[(x["event"], x["result"], x.get("count"), x.get("kek")) for x in r if x["event"] in ("key-rotate", "revoke")]')" = \
	"[('key-rotate', 'ok', 2, 2), ('revoke', 'ok', None, None)]"
t_end "operator operations through kurad are recorded (key rotate with its count and KEK)"

# --- fail closed ---
"$K" --state-dir "$S" --run-dir "$R" grant 'app/*' --host --uid 0 >/dev/null
stop_kurad
want "no stop record" test "$(records 'r[-1]["event"]')" = stop
# The log on a tiny tmpfs of its own, so it can be filled.
mkdir "$T/log-copy" && cp -a "$L/." "$T/log-copy/"
if mount -t tmpfs -o size=256k,mode=0700 tmpfs "$L" 2>"$T/mount.err"; then
	MOUNTED=$L
	cp -a "$T/log-copy/." "$L/"
	want "kurad did not restart: $(tail -3 "$T/kurad.log")" start_kurad
	get "$W" /v1/secrets/app/x
	want "before the disk fills: $CODE" test "$CODE" = 200
	dd if=/dev/zero of="$L/filler" bs=4k count=100 2>/dev/null
	dd if=/dev/zero of="$L/filler2" bs=1k count=256 2>/dev/null
	# The file's last page may still hold a few records: the first one that needs a new
	# page fails, and from then on every fetch is refused.
	N=0
	while [ $N -lt 40 ]; do
		N=$((N + 1))
		START=$(date +%s%N)
		get "$W" /v1/secrets/app/x
		MS=$(( ($(date +%s%N) - START) / 1000000 ))
		[ "$CODE" = 200 ] || break
	done
	want "with the log's disk full: $CODE $(cat "$T/body") after $N fetches" test "$CODE" = 503
	get "$W" /v1/secrets/app/x
	want "the next fetch: $CODE" test "$CODE" = 503
	want "not said why: $(cat "$T/body")" grep -q audit_unavailable "$T/body"
	want "a value was sent" sh -c "! grep -q '\"value\"' '$T/body'"
	want "no clear log line: $(tail -3 "$T/kurad.log")" grep -q 'cannot write the audit log.*No space left' "$T/kurad.log"
	get "$W" /v1/whoami
	want "whoami with the log full: $CODE" test "$CODE" = 503
	"$K" --state-dir "$S" --run-dir "$R" secret put app/new --generate 8 >"$T/out" 2>&1
	want "a put while the log fails exited $?: $(cat "$T/out")" test $? -ne 0
	"$K" --state-dir "$S" --run-dir "$R" --json secret list >"$T/out" 2>&1
	want "the refused put was made anyway" sh -c "! grep -q app/new '$T/out'"
	t_end "disk full: fetches get 503 audit_unavailable in ${MS} ms, a clear log line, changes refused"
	rm -f "$L/filler" "$L/filler2"
	get "$W" /v1/secrets/app/x
	want "after space is freed: $CODE" test "$CODE" = 200
	want "no recovery line" grep -q 'audit log can be written again' "$T/kurad.log"
	t_end "space freed: served again, without a restart"

	# Replaced under kurad: the records would go to a file no one sees.
	F=$(ls "$L" | grep '^audit-' | tail -1)
	cp -p "$L/$F" "$L/$F.new" && mv "$L/$F.new" "$L/$F"
	get "$W" /v1/secrets/app/x
	want "with the file replaced: $CODE" test "$CODE" = 503
	want "no log line naming the replacement" grep -q 'its file was replaced' "$T/kurad.log"
	t_end "the log file replaced: fetches get 503"
	stop_kurad
	cp -a "$L/." "$T/log-copy/"
	umount "$L" && MOUNTED=
	cp -a "$T/log-copy/." "$L/"
	rm -f "$L/filler" "$L/filler2"
else
	tap_skip "disk full: fetches get 503 audit_unavailable, a clear log line, changes refused" \
		"cannot mount a tmpfs: $(cat "$T/mount.err")"
	tap_skip "space freed: served again, without a restart" "no tmpfs"
	tap_skip "the log file replaced: fetches get 503" "no tmpfs"
fi

# --- offline kuractl records too; kurad refuses a broken or missing log ---
"$K" --state-dir "$S" --offline secret put app/off --generate 8 >/dev/null
"$K" --state-dir "$S" --offline secret get app/off >/dev/null
want "offline records: $(records 'r[-2:]')" \
	test "$(records '[(x["event"], x["result"], x["host"], x["detail"]) for x in r[-2:]]')" = \
	"[('secret-put', 'ok', True, 'offline'), ('secret-get', 'ok', True, 'offline')]"
t_end "kuractl working offline writes the same records (detail offline)"

"$K" --state-dir "$S" audit verify --key "$T/audit.key" >"$T/out" 2>&1
want "verify exited $?: $(cat "$T/out")" test $? -eq 0
t_end "after all that, the whole chain verifies with the starting key"

cp "$L/$(ls "$L" | grep '^audit-' | tail -1)" "$T/last"
python3 - "$L/$(ls "$L" | grep '^audit-' | tail -1)" <<'PY'
import sys
p = sys.argv[1]
lines = open(p).read().split("\n")
lines[-2] = lines[-2].replace('"ok"', '"no"', 1)
open(p, "w").write("\n".join(lines))
PY
: >"$T/kurad.log"
start_kurad
want "kurad started on a log whose tail does not verify" test $? -ne 0
want "no message: $(cat "$T/kurad.log")" grep -q 'do not verify' "$T/kurad.log"
stop_kurad # if it did start against all odds, it must not outlive the test
cp "$T/last" "$L/$(ls "$L" | grep '^audit-' | tail -1)"
mv "$L" "$T/moved-audit"
: >"$T/kurad.log"
start_kurad
want "kurad started without an audit log" test $? -ne 0
want "no message: $(cat "$T/kurad.log")" grep -q 'audit.*does not exist' "$T/kurad.log"
stop_kurad
"$K" --state-dir "$S" --offline secret put app/unrecorded --generate 8 >"$T/out" 2>&1
want "an offline put without a log exited $?" test $? -ne 0
want "no message: $(cat "$T/out")" grep -q 'no audit' "$T/out"
t_end "kurad and kuractl refuse to work unrecorded (tail altered, log missing)"

"$K" --state-dir "$S" audit init --audit-key-out "$T/audit2.key" >"$T/out" 2>&1
want "audit init exited $?: $(cat "$T/out")" test $? -eq 0
want "the new key file is $(stat -c %a "$T/audit2.key" 2>&1), not 400" \
	test "$(stat -c %a "$T/audit2.key")" = 400
"$K" --state-dir "$S" --offline secret put app/recorded --generate 8 >"$T/out" 2>&1
want "an offline put after audit init exited $?: $(cat "$T/out")" test $? -eq 0
want "the new log does not begin with audit-init, then the put: $(records '[x["event"] for x in r]')" \
	test "$(records '[x["event"] for x in r]')" = "['audit-init', 'secret-put']"
"$K" --state-dir "$S" audit verify --key "$T/audit2.key" >"$T/out" 2>&1
want "the new chain does not verify with its key: $(cat "$T/out")" test $? -eq 0
"$K" --state-dir "$S" audit init --audit-key-out "$T/audit3.key" >"$T/out" 2>&1
want "a second audit init exited $?, expected 1" test $? -eq 1
want "the refused audit init left a key file" test ! -e "$T/audit3.key"
t_end "kuractl audit init starts a new log (audit-init first) where there is none, and only there"

tap_done

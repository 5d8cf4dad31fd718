#!/bin/sh
# kurad shipping its audit records off the host, to real receivers this test starts: rsyslogd
# (RFC 5424 over TCP on loopback) and an HTTP collector. Every record arrives byte for byte as in
# the local log; checkpoints let `kuractl audit verify --checkpoints` catch a log whose tail was
# cut on the host; a collector that goes away is recorded as a sink failure, then recovers with
# nothing lost.
# Usage: test-kurad-sinks.sh KURAD KURACTL
set -u
[ $# -eq 2 ] || { echo "usage: $0 KURAD KURACTL" >&2; exit 2; }
KURAD=$1
K=$2
HERE=$(dirname "$0")
. "$HERE/../cli/tap.sh"

[ "$(id -u)" -eq 0 ] || { echo "1..0 # SKIP kurad tests run as root"; exit 0; }
[ -x /usr/sbin/rsyslogd ] || { echo "1..0 # SKIP rsyslogd is not installed (apt-get install rsyslog)"; exit 0; }
[ -x /usr/bin/python3 ] || { echo "1..0 # SKIP no /usr/bin/python3 for the HTTP collector"; exit 0; }

T=$(mktemp -d /tmp/kura-sinks-XXXXXX)
PID= RPID= HPID=
cleanup() {
	for p in $PID $RPID $HPID; do kill -9 "$p" 2>/dev/null; done
	[ -f "$T/kurad.log" ] && cp "$T/kurad.log" /tmp/kurad-sinks-last.log
	rm -rf "$T"
}
trap cleanup EXIT
S=$T/state
R=$T/run
W=$R/workload.sock
A=$R/admin.sock
L=$S/audit

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

get() {
	CODE=$(curl -s -o "$T/body" -w '%{http_code}' --max-time 10 --unix-socket "$1" \
		"http://kura$2") || CODE=000
}

# until CMD succeeds, for at most $1 tenths of a second
until_ok() {
	n=$1
	shift
	while [ "$n" -gt 0 ]; do
		"$@" && return 0
		sleep 0.1
		n=$((n - 1))
	done
	return 1
}

start_http() {
	/usr/bin/python3 "$HERE/../audit/http-receiver.py" "$T/http" "$HPORT" >"$T/http.log" 2>&1 &
	HPID=$!
	until_ok 50 test -s "$T/http/port"
}

# --- the receivers ---
SPORT=$(free_port)
mkdir -p "$T/http" "$T/rsyslog"
cat >"$T/rsyslog.conf" <<EOF
global(workDirectory="$T/rsyslog" maxMessageSize="64k")
module(load="imtcp")
template(name="msgonly" type="string" string="%msgid% %msg%\n")
ruleset(name="tcp") {
  action(type="omfile" file="$T/syslog.full" template="RSYSLOG_SyslogProtocol23Format")
  action(type="omfile" file="$T/syslog.msgs" template="msgonly")
}
input(type="imtcp" address="127.0.0.1" port="$SPORT" ruleset="tcp")
EOF
/usr/sbin/rsyslogd -n -f "$T/rsyslog.conf" -i "$T/rsyslog.pid" >"$T/rsyslog.log" 2>&1 &
RPID=$!
want "rsyslogd did not listen on $SPORT: $(cat "$T/rsyslog.log")" \
	until_ok 100 sh -c "python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", $SPORT), 1)' 2>/dev/null"
HPORT=$(free_port)
want "the HTTP collector did not start: $(cat "$T/http.log")" start_http
t_end "a real rsyslogd (TCP, RFC 5424) and an HTTP collector are listening"

"$K" --state-dir "$S" init --audit-key-out "$T/audit.key" >/dev/null
printf 'sink-value-SECRETMARKER' >"$T/v"
"$K" --state-dir "$S" secret put app/x --file "$T/v" >/dev/null
"$K" --state-dir "$S" grant 'app/*' --host --uid 0 >/dev/null
cat >"$T/kurad.conf" <<EOF
audit-syslog = tcp:127.0.0.1:$SPORT
audit-http = http://127.0.0.1:$HPORT/ingest
audit-checkpoint-s = 1
EOF
"$KURAD" --state-dir "$S" --run-dir "$R" --config "$T/kurad.conf" >>"$T/kurad.log" 2>&1 &
PID=$!
want "kurad did not start: $(cat "$T/kurad.log")" \
	until_ok 100 curl -s -o /dev/null --max-time 1 --unix-socket "$A" http://kura/v1/status
for i in 1 2 3; do get "$W" /v1/secrets/app/x; done
get "$W" /v1/secrets/app/nope-not-granted-either
"$K" --state-dir "$S" --run-dir "$R" revoke "$(python3 -c '
import glob, json
for f in sorted(glob.glob("'"$L"'/audit-*.jsonl")):
    for l in open(f):
        j = json.loads(l)
        if j.get("event") == "grant": print(j["grant_id"])')" >/dev/null
get "$W" /v1/secrets/app/x
want "after the revoke: $CODE" test "$CODE" = 403

# compare: every local record line must be among what the receiver stored, in order
compare() {
	python3 - "$L" "$1" "$2" <<'PY'
import glob, os, sys
local = [l.rstrip("\n") for f in sorted(glob.glob(os.path.join(sys.argv[1], "audit-*.jsonl")))
         for l in open(f) if l.endswith("\n")]
got = []
for l in open(sys.argv[2], encoding="utf-8", errors="replace"):
    l = l.rstrip("\n")
    if sys.argv[3] == "syslog":
        if not l.startswith("audit "):
            continue
        l = l[len("audit "):]
    if '"type":"kura-audit-checkpoint"' in l:
        continue
    got.append(l)
missing = [l for l in local if l not in got]
if missing or got != local[:len(got)]:
    print("%d local, %d received, %d missing; first missing: %s" % (len(local), len(got), len(missing), missing[:1]))
    sys.exit(1)
PY
}
compare_q() { compare "$@" >/dev/null; } # retried quietly: TAP reads our stdout
want "HTTP: $(compare "$T/http/received" http)" until_ok 50 compare_q "$T/http/received" http
want "syslog: $(compare "$T/syslog.msgs" syslog)" until_ok 50 compare_q "$T/syslog.msgs" syslog
want "a value reached a receiver" sh -c "! grep -q SECRETMARKER '$T/http/received' '$T/syslog.full'"
want "the syslog messages are not RFC 5424 from kurad: $(head -c 300 "$T/syslog.full")" \
	grep -q '^<[0-9]*>1 [0-9T:.Z-]* [^ ]* kurad [0-9]* audit - {' "$T/syslog.full"
want "a denial is not at warning severity (PRI 84)" grep -q '^<84>1 .*"result":"denied"' "$T/syslog.full"
t_end "every record reaches syslog and the HTTP collector byte for byte, in order, with no value"

LAST=$(python3 -c '
import glob, json
r = [json.loads(l) for f in sorted(glob.glob("'"$L"'/audit-*.jsonl")) for l in open(f) if l.endswith("\n")]
print(r[-1]["seq"], r[-1]["mac"])')
has_checkpoint() {
	python3 - "$1" "$LAST" <<'PY'
import json, sys
seq, mac = sys.argv[2].split()
for l in open(sys.argv[1], encoding="utf-8", errors="replace"):
    i = l.find('{"')
    if i < 0 or "kura-audit-checkpoint" not in l:
        continue
    j = json.loads(l[i:])
    if j["seq"] == int(seq) and j["mac"] == mac:
        sys.exit(0)
sys.exit(1)
PY
}
want "no checkpoint of the last record ($LAST) at the HTTP collector" \
	until_ok 50 has_checkpoint "$T/http/received"
want "no checkpoint of the last record ($LAST) in syslog" until_ok 50 has_checkpoint "$T/syslog.full"
t_end "checkpoints (seq and MAC of the last record) arrive at both sinks"

# --- the collector goes away and comes back ---
kill "$HPID"; wait "$HPID" 2>/dev/null; HPID=
for i in 1 2 3 4 5; do get "$W" /v1/whoami; done
want "kurad did not log the sink failure: $(tail -3 "$T/kurad.log")" \
	until_ok 50 grep -q 'audit sink http failed' "$T/kurad.log"
get "$W" /v1/whoami
want "requests are refused while a sink is down: $CODE" test "$CODE" = 200
want "start_http again" start_http
want "no recovery: $(tail -3 "$T/kurad.log")" until_ok 100 grep -q 'audit sink http delivers again' "$T/kurad.log"
want "after recovery, HTTP: $(compare "$T/http/received" http)" until_ok 50 compare_q "$T/http/received" http
want "no sink-failure record, or no recovery record, in the log" python3 -c '
import glob, json
ev = [json.loads(l)["event"] for f in sorted(glob.glob("'"$L"'/audit-*.jsonl")) for l in open(f) if l.endswith("\n")]
assert "sink-failure" in ev and "sink-recovered" in ev and ev.index("sink-failure") < ev.index("sink-recovered")'
t_end "a collector that goes away: a sink-failure record, serving goes on, and everything is delivered once it is back"

# --- a tail cut on the host is caught with the checkpoints kept off it ---
kill "$PID"; wait "$PID" 2>/dev/null; PID=
sleep 0.3
cp -a "$L" "$T/copy"
"$K" --state-dir "$S" audit verify --key "$T/audit.key" --checkpoints "$T/http/received" "$T/copy" >"$T/out" 2>&1
want "the intact copy does not verify against the checkpoints: $(cat "$T/out")" test $? -eq 0
F=$(ls "$T/copy" | grep '^audit-' | tail -1)
head -n -4 "$T/copy/$F" >"$T/cut" && cat "$T/cut" >"$T/copy/$F"
"$K" --state-dir "$S" audit verify --key "$T/audit.key" "$T/copy" >"$T/out" 2>&1
want "without checkpoints a cut at a line boundary is not detectable, so exit 0: $(cat "$T/out")" test $? -eq 0
"$K" --state-dir "$S" audit verify --key "$T/audit.key" --checkpoints "$T/http/received" "$T/copy" >"$T/out" 2>&1
RC=$?
want "exit $RC with the collector's checkpoints, expected 4: $(cat "$T/out")" test $RC -eq 4
want "not reported as truncated: $(cat "$T/out")" grep -qi 'truncated' "$T/out"
t_end "four records cut from the tail: caught by verify with the collector's checkpoints"

tap_done

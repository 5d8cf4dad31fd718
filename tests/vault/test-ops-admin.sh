#!/bin/sh
# The operations table through a real kurad's admin socket: arguments a lenient parser read as
# defaults (a malformed number as 0, version 0 as "every version", unknown fields ignored) are
# HTTP 400 with the field named and errno 22, change nothing, and are recorded as refused;
# the whole secret is destroyed only with {"all": true}.
# Usage: test-ops-admin.sh KURAD KURACTL
set -u
[ $# -eq 2 ] || { echo "usage: $0 KURAD KURACTL" >&2; exit 2; }
KURAD=$1
K=$2
. "$(dirname "$0")/../cli/tap.sh"

[ "$(id -u)" -eq 0 ] || { echo "1..0 # SKIP kurad's admin socket is root's only"; exit 0; }
command -v curl >/dev/null 2>&1 || { echo "1..0 # SKIP curl is needed"; exit 0; }

T=$(mktemp -d /tmp/kura-ops-XXXXXX)
PID=
cleanup() {
	[ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
S=$T/state
R=$T/run
A=$R/admin.sock

# op NAME JSON: POST it; CODE and $T/body are kurad's answer.
op() {
	CODE=$(curl -s -o "$T/body" -w '%{http_code}' --max-time 10 --unix-socket "$A" \
		-H 'Content-Type: application/json' --data-binary "$2" "http://k/v1/op/$1") ||
		CODE=000
}

# body_has KEY TEXT: the reply's KEY holds TEXT.
body_has() {
	python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert sys.argv[3] in str(j.get(sys.argv[2]))' \
		"$T/body" "$1" "$2" 2>/dev/null
}

records() {
	python3 - "$S/audit" "$1" <<'PY'
import glob, json, os, sys
r = []
for f in sorted(glob.glob(os.path.join(sys.argv[1], "audit-*.jsonl"))):
    r += [json.loads(l) for l in open(f) if l.endswith("\n")]
print(eval(sys.argv[2]))
PY
}

"$K" --state-dir "$S" init --audit-key-out "$T/audit.key" >"$T/out" 2>&1 ||
	tap_bail "init: $(cat "$T/out")"
printf 'v1' | "$K" --state-dir "$S" --offline secret put db/pw >/dev/null 2>&1
printf 'v2' | "$K" --state-dir "$S" --offline secret rotate db/pw >/dev/null 2>&1
"$KURAD" --state-dir "$S" --run-dir "$R" >"$T/kurad.log" 2>&1 &
PID=$!
for _i in $(seq 1 100); do
	curl -s -o /dev/null --max-time 1 --unix-socket "$A" http://k/v1/status && break
	sleep 0.05
done
want "kurad did not start: $(cat "$T/kurad.log")" kill -0 "$PID"
t_end "kurad serves a state with a secret of two versions"

# refused NAME JSON FIELD DESC
refused() {
	op "$1" "$2"
	want "HTTP $CODE, want 400: $(cat "$T/body")" test "$CODE" = 400
	want "errno is not 22: $(cat "$T/body")" body_has errno 22
	want "the message does not name \"$3\": $(cat "$T/body")" body_has message "\"$3\""
	t_end "$1 $2: 400, naming $3 ($4)"
}

refused secret.destroy '{"name":"db/pw","version":0}' version "0 is no version, not every version"
"$K" --state-dir "$S" --run-dir "$R" secret show db/pw >"$T/out" 2>&1
want "db/pw is gone after version 0: $(cat "$T/out")" grep -q "latest:   2" "$T/out"
t_end "secret.destroy with version 0 destroyed nothing"

refused secret.get '{"name":"db/pw","version":"1"}' version "a string is no number"
refused secret.get '{"name":"db/pw","version":1.5}' version "a fraction is no version"
refused secret.get '{"name":"db/pw","version":-3}' version "out of range"
refused secret.get '{"name":"db/pw","verison":1}' verison "an unknown field"
refused secret.write '{"name":"db/new","value":"djM=","create":true,"mode":"0600"}' mode \
	"an unknown field, not ignored"
refused secret.write '{"name":"db/new","value":"djM=","create":"yes"}' create "a string for a bool"
refused secret.write '{"name":"db/new","value":"dj M="}' value "not base64"
refused secret.rollback '{"name":"db/pw"}' to "missing"
refused config '{"max_value_size":"1"}' max_value_size "a string for a number"
refused config '{"max_value_size":0}' max_value_size "0 is no size"
refused key.rekey '{"kind":"tpm","path":"/tmp/x"}' kind "no such kind"
refused key.rekey '{"kind":"file","path":"x.key"}' path "not absolute"
refused key.rekey '{"kind":"file"}' path "missing for a key file"
refused key.rekey '{"kind":"passphrase","path":"/tmp/p","tcti":"device"}' tcti \
	"a TCTI for a passphrase"
refused key.rekey '{"kind":"tpm2","path":"/tmp/x"}' path "a path for the TPM2"
refused key.rekey '{"kind":"tpm2","tcti":"cmd:touch /tmp/kura-ops-ran"}' tcti \
	"a TCTI that runs a command"
refused grant.remove '{}' id "missing"

"$K" --state-dir "$S" --run-dir "$R" secret list >"$T/out" 2>&1
want "a refused write made db/new: $(cat "$T/out")" sh -c "! grep -q db/new '$T/out'"
t_end "no refused operation changed the store"

want "refusals are not recorded as refused: $(records '[(x["event"], x["result"], x.get("reason")) for x in r if x.get("secret") == "db/new"]')" \
	test "$(records '[(x["event"], x["result"], x.get("reason")) for x in r if x.get("secret") == "db/new"]')" = \
	"[('secret-put', 'error', 'bad_request'), ('secret-rotate', 'error', 'bad_request'), ('secret-rotate', 'error', 'bad_request')]"
t_end "a refused change is recorded, with reason bad_request"

op secret.get '{"name":"db/pw"}'
want "HTTP $CODE: $(cat "$T/body")" test "$CODE" = 200
want "not the current value: $(cat "$T/body")" body_has value djI=
op secret.get '{"name":"db/pw","version":1}'
want "version 1 is not v1: $(cat "$T/body")" body_has value djE=
t_end "secret.get without a version is the current one; with one, that one"

op secret.destroy '{"name":"db/pw","all":true}'
want "HTTP $CODE: $(cat "$T/body")" test "$CODE" = 200
op secret.get '{"name":"db/pw"}'
want "db/pw is still there: HTTP $CODE" test "$CODE" = 404
want "the destroy record: $(records '[x for x in r if x["event"] == "secret-destroy"][-1]')" \
	test "$(records '(lambda x: (x["result"], x.get("version")))([x for x in r if x["event"] == "secret-destroy"][-1])')" = \
	"('ok', None)"
t_end "secret.destroy {\"all\": true} destroys the whole secret, recorded without a version"

tap_done

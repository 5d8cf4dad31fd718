#!/bin/sh
# Captures real seeds from a build: the records of a real SQLite store (corpus-records/real-*),
# the request bodies kuractl sends and the replies a real kurad gives on admin.sock
# (corpus-wire/real-*), and an audit log written through the real append path
# (corpus-audit/real-*). Run as root from the source tree after a build:
#   sh tests/fuzz/capture-store-seeds.sh build
set -u
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:?usage: capture-store-seeds.sh BUILD_DIR}" && pwd)
kuractl="$build/broker/kuractl"
kurad="$build/broker/kurad"
tmp=$(mktemp -d /tmp/kura-store-seeds.XXXXXX)
state="$tmp/state"
run="$tmp/run"
kpid=

stop() {
	[ -n "$kpid" ] && kill "$kpid" 2>/dev/null && wait "$kpid" 2>/dev/null
	rm -rf "$tmp"
}
trap stop EXIT

ctl() { "$kuractl" --state-dir "$state" --run-dir "$run" "$@"; }

ctl init --audit-key-out "$tmp/audit.key" >/dev/null
printf 's3cret' | ctl secret put db/password >/dev/null
printf 'v2' | ctl secret rotate db/password >/dev/null
printf 'k' | ctl secret put api/stripe-key >/dev/null
ctl grant 'db/*' --image "sha256:$(printf '%064d' 0 | tr 0 a)" --label app=web >/dev/null
ctl grant api/stripe-key --host --uid 0 >/dev/null

# The store's records, one file each.
rec="$here/corpus-records"
dump() { sqlite3 "$state/kura.db" "SELECT writefile('$2', value) FROM kv WHERE key $1;" >/dev/null; }
dump "= 'keyring'" "$rec/real-keyring.json"
dump "= 'config'" "$rec/real-config.json"
dump "= 'secret/db/password'" "$rec/real-secret.json"
dump "= 'version/db/password@0000000002'" "$rec/real-version.json"
dump "LIKE 'grant/%' AND CAST(value AS TEXT) LIKE '%image%'" "$rec/real-grant-image.json"
dump "LIKE 'grant/%' AND CAST(value AS TEXT) LIKE '%\"host\":true%'" "$rec/real-grant-host.json"
printf 'version/db/password@0000000002' >"$rec/real-version-key.txt"

# kurad's admin API: each body as kuractl sends it, and kurad's reply.
wire="$here/corpus-wire"
mkdir -p "$run"
"$kurad" --state-dir "$state" --run-dir "$run" >"$tmp/kurad.log" 2>&1 &
kpid=$!
for _ in $(seq 1 100); do
	curl -s -o /dev/null --unix-socket "$run/admin.sock" http://k/v1/status && break
	sleep 0.05
done
op() {
	printf '%s' "$2" >"$wire/real-$3-request.json"
	curl -s --unix-socket "$run/admin.sock" -H 'Content-Type: application/json' \
		--data-binary "$2" "http://k/v1/op/$1" >"$wire/real-$3-reply.json"
}
op secret.write '{"name":"app/token","value":"dG9rZW4=","create":true}' secret-write
op secret.get '{"name":"db/password"}' secret-get
op secret.show '{"name":"db/password"}' secret-show
op secret.list '{"prefix":""}' secret-list
op grant.list '{}' grant-list
op key.status '{}' key-status
op secret.get '{"name":"no/such"}' error
g=$(ctl grants --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
op grant.remove "{\"id\":\"$g\"}" grant-remove
op grant.add "$(python3 -c 'import json,sys; g=json.load(open(sys.argv[1]))["grants"][0]; print(json.dumps({"grant": g}, separators=(",",":")))' "$wire/real-grant-list-reply.json")" grant-add
curl -s --unix-socket "$run/admin.sock" http://k/v1/status >"$wire/real-status-reply.json"
# The workload socket's answers as the client reads them, headers and all.
client="$here/corpus-client"
mkdir -p "$client"
ctl grant db/password --host --uid 0 >/dev/null
w() { curl -si --unix-socket "$run/workload.sock" "http://kura$1" >"$client/real-$2"; }
w /v1/secrets/db/password secret
w /v1/secrets list
w /v1/secrets/api/none denied
w /v1/whoami whoami
kill "$kpid" && wait "$kpid" 2>/dev/null
kpid=

# The audit log all of that wrote (kuractl's and kurad's records), and a checkpoint line.
cp "$state/audit/audit-000001.jsonl" "$here/corpus-audit/real-log.jsonl"
tail -n 1 "$state/audit/audit-000001.jsonl" | python3 -c '
import json, sys
r = json.loads(sys.stdin.read())
print("<134>1 - kurad - - - " + json.dumps({"type": "kura-audit-checkpoint", "seq": r["seq"],
	"mac": r["mac"], "host": "h", "time": r["time"]}, separators=(",", ":")))' \
	>"$here/corpus-audit/real-checkpoint.txt"
# A log from audit-gen with the key evolving every 4 records (so with closing records).
"$build/tests/audit-gen" "$tmp/gen" 16 --epoch-records 4 >/dev/null
cp "$tmp/gen/audit-000001.jsonl" "$here/corpus-audit/real-gen-epochs.jsonl"
chmod 644 "$here"/corpus-audit/real-*
ls -l "$rec"/real-* "$wire"/real-* "$client"/real-* "$here"/corpus-audit/real-*

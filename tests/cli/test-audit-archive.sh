#!/bin/sh
# Audit retention on real logs: `kuractl audit archive` moves whole verified files out and leaves
# a start point from which verify goes on; the archive verifies on its own with the starting
# key; a file that does not verify, a destination in use or a planted link archives nothing; a
# forged start point is caught; a crash's leftovers are ignored, then removed; kurad archives
# by size when configured, and records it.
# Usage: test-audit-archive.sh KURACTL AUDIT-GEN KURAD
set -u
[ $# -eq 3 ] || { echo "usage: $0 KURACTL AUDIT-GEN KURAD" >&2; exit 2; }
K=$1
G=$2
KURAD=$3
. "$(dirname "$0")/tap.sh"
[ "$(id -u)" -eq 0 ] || { echo "1..0 # SKIP kurad and the modes checked need root"; exit 0; }

T=$(mktemp -d /tmp/kura-archive-XXXXXX)
chmod 755 "$T"
KPID=
trap '[ -n "$KPID" ] && kill "$KPID" 2>/dev/null; rm -rf "$T"' EXIT
L=$T/log

# verify KEY DIR: its JSON verdict in $T/v, exit status in $RC.
verify() {
	"$K" audit verify --json --key "$1" "$2" >"$T/v" 2>"$T/verr"
	RC=$?
}
field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$T/v" "$1"; }
files() { ls "$1" | grep -c '^audit-.*\.jsonl$'; }

"$G" "$L" 5000 --key-out "$T/k" --file-bytes 200000 --epoch-records 300 >/dev/null ||
	tap_bail "audit-gen failed"
n0=$(files "$L")
verify "$T/k" "$L"
total=$(field last_seq)
[ "$RC" -eq 0 ] && [ "$n0" -gt 5 ] || tap_bail "the generated log: $n0 files, verify $RC $(cat "$T/v")"

# --- archive with the key ------------------------------------------------------------------
"$K" audit archive --json --before 2099-01-01 --key "$T/k" --dir "$L" "$T/a1" >"$T/out" 2>&1
RC=$?
want "archive: exit $RC: $(cat "$T/out")" test "$RC" -eq 0
moved=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["files"])' "$T/out")
want "moved $moved of $n0 files" test "$moved" -eq $((n0 - 1))
want "the newest file was moved" test "$(files "$L")" -eq 1
verify "$T/k" "$T/a1"
a1_last=$(field last_seq)
want "the archive does not verify alone: $(cat "$T/v")" test "$RC" -eq 0
verify "$T/k" "$L"
want "the log does not verify from its start point: $(cat "$T/v" "$T/verr")" test "$RC" -eq 0
want "the log's start is not the archive's end: $(field start_seq) vs $a1_last" test "$(field start_seq)" -eq "$a1_last"
want "records lost: archive up to $a1_last, log up to $(field last_seq) of $total" test "$(field last_seq)" -eq "$total"
want "the start point carries no key commitment" grep -q key_commitment "$L/start"
want "modes: $(stat -c '%a %n' "$T/a1" "$T/a1"/*)" sh -c "test \"\$(stat -c %a '$T/a1')\" = 700 && ! stat -c %a '$T/a1'/* | grep -qv '^600\$'"
want "nobody reads the archive" sh -c "! setpriv --reuid=65534 --regid=65534 --clear-groups cat '$T/a1/audit-000001.jsonl' >/dev/null 2>&1"
t_end "archive (every MAC checked): $moved files to a new 0700 directory; both halves verify with the starting key, none lost"

"$K" audit archive --before 2099-01-01 --dir "$L" "$T/a-none" >"$T/out" 2>&1
RC=$?
want "exit $RC: $(cat "$T/out")" test "$RC" -eq 0
want "not said: $(cat "$T/out")" grep -q 'nothing to archive' "$T/out"
want "an empty archive directory was made" test ! -e "$T/a-none"
t_end "nothing old enough (only the file being written): nothing moved, exit 0"

# --- the log goes on; a second archive, without the key ------------------------------------
"$G" "$L" 3000 --file-bytes 200000 --epoch-records 300 >/dev/null || tap_bail "audit-gen (more) failed"
"$K" audit archive --before 2099-01-01 --dir "$L" "$T/a2" >"$T/out" 2>&1
RC=$?
want "exit $RC: $(cat "$T/out")" test "$RC" -eq 0
want "not said the MACs were unchecked: $(cat "$T/out")" grep -q 'MACs not checked' "$T/out"
verify "$T/k" "$T/a2"
want "the second archive does not verify alone: $(cat "$T/v" "$T/verr")" test "$RC" -eq 0
want "it does not start where the first ended: $(field start_seq)" test "$(field start_seq)" -eq "$a1_last"
a2_last=$(field last_seq)
verify "$T/k" "$L"
want "the log: $(cat "$T/v")" test "$RC" -eq 0 -a "$(field start_seq)" -eq "$a2_last"
t_end "the log goes on after an archive; a second archive starts where the first ended and verifies alone"

# --- what archives nothing -----------------------------------------------------------------
"$G" "$L" 3000 --file-bytes 200000 --epoch-records 300 >/dev/null
before=$(ls "$L" | md5sum)
mkdir "$T/used" && cp "$T/a1/audit-000001.jsonl" "$T/used/"
"$K" audit archive --before 2099-01-01 --dir "$L" "$T/used" >"$T/out" 2>&1
RC=$?
want "exit $RC into a used directory: $(cat "$T/out")" test "$RC" -eq 1
want "something moved" test "$(ls "$L" | md5sum)" = "$before"
ln -s "$T/elsewhere" "$T/link" && mkdir "$T/elsewhere"
"$K" audit archive --before 2099-01-01 --dir "$L" "$T/link" >"$T/out" 2>&1
RC=$?
want "a planted link was followed: exit $RC $(cat "$T/out")" test "$RC" -ne 0 -a -z "$(ls "$T/elsewhere")"
want "something moved" test "$(ls "$L" | md5sum)" = "$before"
f=$(ls "$L" | grep '^audit-' | head -n 2 | tail -n 1)
cp "$L/$f" "$T/keep"
sed -i '2s/"seq":\([0-9]*\)/"seq":\1,"x":1/' "$L/$f"
"$K" audit archive --before 2099-01-01 --key "$T/k" --dir "$L" "$T/a3" >"$T/out" 2>&1
RC=$?
want "exit $RC for a file that does not verify: $(cat "$T/out")" test "$RC" -eq 4
want "where not named: $(cat "$T/out")" grep -q "$f does not verify" "$T/out"
want "something moved" test "$(ls "$L" | md5sum)" = "$before" -a ! -e "$T/a3"
cp "$T/keep" "$L/$f"
t_end "a destination in use, a planted link and a file that does not verify: nothing archived (exit 1, !0, 4)"

# --- a forged start point; a crash's leftovers ---------------------------------------------
cp "$L/start" "$T/start.keep"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d["epoch"]+=1; open(sys.argv[1],"w").write(json.dumps(d))' "$L/start"
verify "$T/k" "$L"
want "a start point with another epoch verified: $(cat "$T/v")" test "$RC" -eq 4
python3 -c 'import json,sys,base64; d=json.load(open(sys.argv[1])); d["epoch"]-=1; d["mac"]=base64.b64encode(bytes(32)).decode(); open(sys.argv[1],"w").write(json.dumps(d))' "$L/start"
verify "$T/k" "$L"
want "a start point with another MAC verified: $(cat "$T/v")" test "$RC" -eq 4
cp "$T/start.keep" "$L/start"
verify "$T/k" "$L"
want "the real start point: $(cat "$T/v")" test "$RC" -eq 0
t_end "a forged start point (another epoch, another MAC) is caught by verify with the key (exit 4)"

cp "$T/a2/$(ls "$T/a2" | grep '^audit-' | tail -n 1)" "$L/"
verify "$T/k" "$L"
want "a leftover archived file breaks verify: $(cat "$T/v")" test "$RC" -eq 0
"$K" audit archive --before 2000-01-01 --dir "$L" "$T/a4" >/dev/null 2>&1
want "the leftover was not removed: $(ls "$L")" test "$(files "$L")" -eq "$(ls "$L" | grep -c '^audit-')" -a ! -e "$L/$(ls "$T/a2" | grep '^audit-' | tail -n 1)"
t_end "files a crash left behind below the start point are ignored by verify and removed by the next archive"

# --- kurad archives by size ------------------------------------------------------------------
S=$T/state
"$K" --state-dir "$S" init --audit-key-out "$T/sk" >/dev/null || tap_bail "init failed"
"$G" "$S/audit" 8000 --file-bytes 300000 >/dev/null || tap_bail "audit-gen into the state failed"
printf 'audit-archive-dir = %s\naudit-archive-mb = 1\n' "$T/arch" >"$T/kurad.conf"
"$KURAD" --state-dir "$S" --run-dir "$T/run" --config "$T/kurad.conf" >"$T/kurad.log" 2>&1 &
KPID=$!
for _i in $(seq 1 150); do
	grep -q '"event":"audit-archive"' "$S"/audit/audit-*.jsonl 2>/dev/null && break
	sleep 0.1
done
want "no audit-archive record: $(tail -n 3 "$T/kurad.log")" grep -q '"event":"audit-archive","result":"ok"\|"event":"audit-archive".*"result":"ok"' "$S"/audit/audit-*.jsonl
arch=$(ls -d "$T/arch"/audit-* 2>/dev/null | head -n 1)
want "no archive directory in $T/arch" test -n "$arch"
sleep 11 # its next look, with nothing left to archive
curl -s -o /dev/null --max-time 2 --unix-socket "$T/run/admin.sock" http://k/v1/status
want "kurad stopped serving: $(tail -n 3 "$T/kurad.log")" test $? -eq 0
want "kurad archived twice: $(ls "$T/arch")" test "$(ls "$T/arch" | wc -l)" -eq 1
kill "$KPID"; wait "$KPID" 2>/dev/null; KPID=
verify "$T/sk" "$arch"
want "kurad's archive does not verify: $(cat "$T/v")" test "$RC" -eq 0
verify "$T/sk" "$S/audit"
want "kurad's log does not verify after it: $(cat "$T/v" "$T/verr")" test "$RC" -eq 0
t_end "kurad with audit-archive-mb archives old files on its own, records it, keeps serving; both halves verify"

printf 'audit-archive-mb = 1\n' >"$T/bad.conf"
"$KURAD" --state-dir "$S" --run-dir "$T/run" --config "$T/bad.conf" >"$T/bad.log" 2>&1 &
p=$!
for _i in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$p" 2>/dev/null; then kill "$p"; wait "$p"; RC=0; else wait "$p"; RC=$?; fi
want "kurad ran with a size limit and nowhere to archive: $RC $(cat "$T/bad.log")" test "$RC" -ne 0
want "why not said: $(cat "$T/bad.log")" grep -q 'audit-archive-dir goes with' "$T/bad.log"
t_end "audit-archive-mb without audit-archive-dir: kurad refuses to start, saying why"

tap_done

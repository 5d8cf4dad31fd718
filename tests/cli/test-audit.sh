#!/bin/sh
# Integration tests of `kuractl audit` on real logs written by audit-gen through the real append
# path: every tamper case through `audit verify`, the filters against an independent count
# (python3), table and JSON output, stats, --follow across rotation, and a 1M-record log.
# Prints TAP. Usage: test-audit.sh PATH/TO/kuractl PATH/TO/audit-gen
set -u

[ $# -eq 2 ] || { echo "usage: $0 KURACTL AUDIT-GEN" >&2; exit 2; }
K=$1
G=$2
case $K in /*) ;; *) K=$PWD/$K ;; esac
case $G in /*) ;; *) G=$PWD/$G ;; esac
SCRIPT=$0
case $SCRIPT in /*) ;; *) SCRIPT=$PWD/$SCRIPT ;; esac

. "$(dirname "$SCRIPT")/tap.sh"

[ -x "$K" ] || tap_bail "no kuractl at $K"
[ -x "$G" ] || tap_bail "no audit-gen at $G"
command -v python3 >/dev/null 2>&1 || tap_bail "python3 is needed to check the output"

T=$(mktemp -d) || tap_bail "mktemp -d failed"
BG=
cleanup() {
	[ -n "$BG" ] && kill "$BG" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
umask 077

OUT=$T/out
ERR=$T/err
Q="python3 $T/q.py"

cat >"$T/q.py" <<'PY'
# Helper of test-audit.sh: reads and tampers with audit logs independently of kuractl.
import base64, glob, hashlib, json, os, sys

def files(d):
    return sorted(glob.glob(os.path.join(d, "audit-[0-9][0-9][0-9][0-9][0-9][0-9].jsonl")))

def records(d):
    for f in files(d):
        with open(f, "rb") as fh:
            for line in fh.read().split(b"\n"):
                if line:
                    yield json.loads(line)

def locate(d, seq):
    pat = b'"seq":%d,"time"' % seq
    for f in files(d):
        lines = open(f, "rb").read().split(b"\n")
        for i, l in enumerate(lines):
            if pat in l:
                return f, lines, i
    sys.exit("seq %d not found" % seq)

def write(f, lines):
    open(f, "wb").write(b"\n".join(lines))

def mac_of(line):
    return base64.b64decode(line[line.rindex(b'"mac":"') + 7:-2])

def body_of(line):
    return line[:line.rindex(b',"mac":"')] + b"}"

def with_mac(line, mac):
    return line[:line.rindex(b',"mac":"')] + b',"mac":"' + base64.b64encode(mac) + b'"}'

def blake(key, prev, body):
    h = hashlib.blake2b(digest_size=32, key=key or b"")
    h.update(b"kura/audit/1\0" + prev + body)
    return h.digest()

def broken(f, i, seq, kind):
    print("kuractl: audit log broken at %s line %d (seq %d): %s" % (os.path.basename(f), i + 1, seq, kind))

def matches(r, a):
    ok = True
    if a.get("secret"):
        s = a["secret"]
        ok &= "secret" in r and (r["secret"].startswith(s) if s.endswith("/") else r["secret"] == s)
    if a.get("container"):
        c = a["container"]
        ok &= r.get("container_name") == c or r.get("container_id", "").startswith(c)
    if a.get("image"):
        i = a["image"]
        i = i if i.startswith("sha256:") else "sha256:" + i
        ok &= r.get("image_id", "").startswith(i)
    if a.get("event"):
        ok &= r.get("event") in a["event"].split(",")
    if a.get("denied"):
        ok &= r.get("result") == "denied"
    if a.get("since"):
        ok &= r["time"] >= a["since"]
    if a.get("until"):
        ok &= r["time"] <= a["until"]
    return ok

def main():
    op, d = sys.argv[1], sys.argv[2]
    arg = sys.argv[3:]
    if op == "field":  # field SEQ NAME
        f, lines, i = locate(d, int(arg[0]))
        print(json.loads(lines[i])[arg[1]])
    elif op == "count":  # count key=value...: the seqs of the records that match
        a = dict(x.split("=", 1) for x in arg)
        for r in records(d):
            if matches(r, a):
                print(r["seq"])
    elif op == "seqs":  # the seqs of JSON lines on stdin
        for l in sys.stdin:
            print(json.loads(l)["seq"])
    elif op == "same":  # every line on stdin is a line of the log, unchanged
        have = set()
        for f in files(d):
            have.update(open(f, "rb").read().split(b"\n"))
        n = 0
        for l in sys.stdin.buffer:
            n += 1
            if l.rstrip(b"\n") not in have:
                sys.exit("not in the log: %r" % l[:80])
        print(n)
    elif op == "stats":  # compare kuractl audit stats --json on stdin with our own counts
        got = json.load(sys.stdin)
        rs = list(records(d))
        want = {"by_result": {}, "by_event": {}, "by_secret": {}, "by_container": {}, "by_image": {}}
        den = {}
        for r in rs:
            for k, f in (("by_result", "result"), ("by_event", "event"), ("by_secret", "secret"), ("by_image", "image_id")):
                if f in r:
                    want[k][r[f]] = want[k].get(r[f], 0) + 1
            who = "(host)" if r.get("host") else r.get("container_name")
            if who:
                want["by_container"][who] = want["by_container"].get(who, 0) + 1
            if r.get("result") == "denied":
                w = "host uid %d" % r["uid"] if r.get("host") else r["container_name"]
                k = (w, r.get("secret", ""), r.get("reason", ""))
                den[k] = den.get(k, 0) + 1
        bad = []
        if got["records"] != len(rs):
            bad.append("records %d != %d" % (got["records"], len(rs)))
        for k in want:
            if got[k] != want[k]:
                bad.append("%s: %s != %s" % (k, got[k], want[k]))
        top = sorted(den.items(), key=lambda kv: (-kv[1], "\x1f".join(kv[0])))[:10]
        top = [{"who": w, "secret": s, "reason": why, "count": c} for (w, s, why), c in top]
        if got["top_denials"] != top:
            bad.append("top_denials: %s != %s" % (got["top_denials"], top))
        if bad:
            sys.exit("\n".join(bad))
    elif op == "checkpoint":  # the checkpoint of the last record, as SEQ:MAC
        f = files(d)[-1]
        lines = open(f, "rb").read().rstrip(b"\n").split(b"\n")
        r = json.loads(lines[-1])
        print("%d:%s" % (r["seq"], base64.b64encode(mac_of(lines[-1])).decode()))
    elif op == "edit":  # one byte of record SEQ
        seq = int(arg[0])
        f, lines, i = locate(d, seq)
        j = lines[i].index(b'"request_id":"') + 14
        lines[i] = lines[i][:j] + (b"0" if lines[i][j:j + 1] != b"0" else b"1") + lines[i][j + 1:]
        write(f, lines)
        broken(f, i, seq, "edited")
    elif op == "delete":
        seq = int(arg[0])
        f, lines, i = locate(d, seq)
        del lines[i]
        write(f, lines)
        broken(f, i, seq, "deleted")
    elif op == "swap":  # records SEQ and SEQ+1, in one file
        seq = int(arg[0])
        f, lines, i = locate(d, seq)
        if b'"seq":%d,' % (seq + 1) not in lines[i + 1]:
            sys.exit("seq %d is not next in its file" % (seq + 1))
        lines[i], lines[i + 1] = lines[i + 1], lines[i]
        write(f, lines)
        broken(f, i, seq, "reordered")
    elif op == "truncate":  # the last line cut in the middle
        f = files(d)[-1]
        data = open(f, "rb").read()
        lines = data.rstrip(b"\n").split(b"\n")
        seq = json.loads(lines[-1])["seq"]
        open(f, "wb").write(data[:-30])
        broken(f, len(lines) - 1, seq, "truncated")
    elif op == "cut":  # the last N lines removed at a line boundary
        n = int(arg[0])
        f = files(d)[-1]
        lines = open(f, "rb").read().rstrip(b"\n").split(b"\n")
        seq = json.loads(lines[-n])["seq"]
        open(f, "wb").write(b"\n".join(lines[:-n]) + b"\n")
        broken(f, len(lines) - n, seq, "truncated")
    elif op == "insert":  # before record SEQ, a forged copy MAC'd with a plain hash
        seq, how = int(arg[0]), arg[1]
        f, lines, i = locate(d, seq)
        prev = mac_of(lines[i - 1]) if i > 0 else bytes(32)
        forged = lines[i].replace(b'"result":"denied"', b'"result":"ok"')
        forged = forged.replace(b'"request_id":"', b'"request_id":"f', 1)
        body = body_of(forged)
        if how == "blake2b":
            mac = blake(None, prev, body)
        else:
            mac = hashlib.sha256(b"kura/audit/1\0" + prev + body).digest()
        lines.insert(i, with_mac(forged, mac))
        write(f, lines)
        broken(f, i, seq, "inserted")
    elif op == "remac":  # whoever holds the current key (from DIR/state) rewrites record SEQ on
        seq = int(arg[0])
        st = json.load(open(os.path.join(d, "state")))
        key = base64.b64decode(st["key"])
        f, lines, i = locate(d, seq)
        if json.loads(lines[i])["epoch"] != st["epoch"]:
            sys.exit("seq %d is not in the current epoch" % seq)
        prev = mac_of(lines[i - 1])
        j = lines[i].index(b'"request_id":"') + 14
        lines[i] = lines[i][:j] + (b"0" if lines[i][j:j + 1] != b"0" else b"1") + lines[i][j + 1:]
        for k in range(i, len(lines)):
            if not lines[k]:
                continue
            lines[k] = with_mac(lines[k], blake(key, prev, body_of(lines[k])))
            prev = mac_of(lines[k])
        write(f, lines)
        last = json.loads(lines[-2] if not lines[-1] else lines[-1])
        fl = [l for l in lines if l]
        broken(f, len(fl) - 1, last["seq"], "differs from checkpoint")
    else:
        sys.exit("unknown op " + op)

main()
PY

# kc ARGS...: run kuractl; stdout in $OUT, stderr in $ERR, status in $RC.
kc() {
	"$K" "$@" >"$OUT" 2>"$ERR"
	RC=$?
}

show_io() {
	printf 'exit status: %s\nstderr: %s\nstdout: %s' "$RC" "$(head -c 800 "$ERR")" \
		"$(head -c 600 "$OUT")"
}

rc_is() { [ "$RC" -eq "$1" ]; }
err_one_line() { [ "$(grep -c '' "$ERR")" -eq 1 ] && head -n 1 "$ERR" | grep -q '^kuractl: '; }
err_is() { [ "$(cat "$ERR")" = "$1" ]; }
err_has() { grep -E -i -q -- "$1" "$ERR"; }
out_has() { grep -E -q -- "$1" "$OUT"; }
same() { [ "$1" = "$2" ]; }

# A fresh copy of the base log.
copy() {
	rm -rf "$T/c"
	cp -a "$T/log" "$T/c"
}

# --- the base log: 3000 records (3003 with the key-evolve ones), rotated into several files --

"$G" "$T/log" 3000 --seed 7 --key-out "$T/k0" --file-bytes 200000 ||
	tap_bail "audit-gen failed"
NFILES=$(ls "$T/log" | grep -c '^audit-')
LAST=$($Q field "$T/log" 3003 seq 2>/dev/null)
[ "$LAST" = 3003 ] || tap_bail "the generated log does not end at seq 3003"

# --- verify ---------------------------------------------------------------------------------

kc audit verify --key "$T/k0" "$T/log"
want "exit 0" rc_is 0
want "says verified with the counts" grep -q -x "verified: 3003 records in $NFILES files, epochs 0-3, last seq 3003" "$OUT"
t_end "an intact log verifies ($NFILES files)" "$(show_io)"

kc audit verify --key - "$T/log" <"$T/k0"
want "exit 0" rc_is 0
t_end "--key - reads the key from stdin" "$(show_io)"

kc audit verify --state-dir "$T/nostate" --dir "$T/log" --key "$T/k0" --json
want "exit 0" rc_is 0
want "json" python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert j["intact"] and j["macs_checked"] and j["records"]==3003 and j["last_seq"]==3003 and j["last_epoch"]==3, j' "$OUT"
t_end "verify --json: one object" "$(show_io)"

python3 -c 'import base64,sys; open(sys.argv[2],"wb").write(base64.b64decode(open(sys.argv[1]).read()))' "$T/k0" "$T/k0.raw"
kc audit verify --key "$T/k0.raw" "$T/log"
want "exit 0" rc_is 0
t_end "a key of 32 raw bytes works too" "$(show_io)"

kc audit verify "$T/log"
want "exit 0" rc_is 0
want "says MACs were not checked" err_has "MACs were not checked"
want "never says verified" sh -c "! grep -q '^verified' '$OUT'"
want "says structure" out_has "structure intact, MACs NOT checked"
t_end "without --key: structure only, said plainly" "$(show_io)"

head -c 32 /dev/urandom | base64 >"$T/kwrong"
kc audit verify --key "$T/kwrong" "$T/log"
want "exit 4" rc_is 4
want "names record 1" err_has "^kuractl: audit log broken at audit-000001.jsonl line 1 \(seq 1\): edited$"
t_end "a wrong key: exit 4 at record 1" "$(show_io)"

printf 'c2hvcnQ=\n' >"$T/kshort"
kc audit verify --key "$T/kshort" "$T/log"
want "exit 2" rc_is 2
want "one line" err_one_line
t_end "a key of the wrong length: exit 2, one line" "$(show_io)"

kc audit verify --key "$T/nothere" "$T/log"
want "exit 1" rc_is 1
want "one line" err_one_line
t_end "a missing key file: exit 1, one line" "$(show_io)"

kc audit verify --key "$T/k0" "$T/nolog"
want "exit 1" rc_is 1
want "one line" err_one_line
t_end "no log there: exit 1, one line" "$(show_io)"

kc audit verify --bogus
want "exit 2" rc_is 2
want "one line" err_one_line
t_end "verify: an unknown option is a usage error" "$(show_io)"

kc audit verify --checkpoint 12:notbase64 "$T/log"
want "exit 2" rc_is 2
want "one line" err_one_line
t_end "a malformed --checkpoint is a usage error" "$(show_io)"

# tamper_case DESC OP ARGS...: q.py OP on a copy says where the break is; verify must say so.
tamper_case() {
	_desc=$1
	_op=$2
	shift 2
	copy
	_want=$($Q "$_op" "$T/c" "$@" 2>&1 | tail -n 1)
	kc audit verify --key "$T/k0" "$T/c"
	want "exit 4" rc_is 4
	want "names it: $_want" grep -q -x -F -- "$_want" "$ERR"
	t_end "$_desc" "$(show_io)"
}

tamper_case "one byte of a record edited" edit 1234
tamper_case "a line deleted" delete 1700
tamper_case "two lines swapped" swap 2100
tamper_case "the last line cut mid-way" truncate
tamper_case "a forged line with an unkeyed BLAKE2b MAC inserted" insert 1801 blake2b
tamper_case "a forged line with a sha256 MAC inserted" insert 2501 sha256

copy
CP=$($Q checkpoint "$T/c")
WANT=$($Q cut "$T/c" 2)
kc audit verify --key "$T/k0" "$T/c"
want "exit 0 without a checkpoint" rc_is 0
kc audit verify --key "$T/k0" --checkpoint "$CP" "$T/c"
want "exit 4 with one" rc_is 4
want "names it: $WANT" grep -q -x -F -- "$WANT" "$ERR"
t_end "a cut at a line boundary: only a checkpoint sees it" "$(show_io)"

# The checkpoints as a collector stored them: syslog headers, an older one, other lines.
{
	echo "<134>1 2026-11-25T19:40:00Z h1 kurad 42 - - {\"type\":\"kura-audit-checkpoint\",\"seq\":5,\"mac\":\"$(echo "$CP" | cut -d: -f2)\",\"host\":\"h1\",\"time\":\"t\"}"
	echo "<134>1 2026-11-25T19:40:01Z h1 kurad 42 - - {\"event\":\"fetch\"}"
	echo "Nov 25 19:40:02 h1 kurad[42]: {\"type\":\"kura-audit-checkpoint\",\"seq\":${CP%%:*},\"mac\":\"${CP#*:}\",\"host\":\"h1\",\"time\":\"t\"}"
} >"$T/cps"
kc audit verify --key "$T/k0" --checkpoints "$T/cps" "$T/c"
want "exit 4" rc_is 4
want "names it: $WANT" grep -q -x -F -- "$WANT" "$ERR"
kc audit verify --key "$T/k0" --checkpoints "$T/cps" "$T/log"
want "the intact log meets it" rc_is 0
want "says the checkpoint matches" out_has "checkpoint at seq 3003 matches"
t_end "--checkpoints FILE uses the highest checkpoint in it" "$(show_io)"

copy
WANT=$($Q remac "$T/c" 3002)
kc audit verify --key "$T/k0" "$T/c"
want "the chain alone verifies" rc_is 0
kc audit verify --key "$T/k0" --checkpoint "$CP" "$T/c"
want "exit 4 with a checkpoint" rc_is 4
want "names it: $WANT" grep -q -x -F -- "$WANT" "$ERR"
t_end "the current epoch re-MAC'd with the key from the state file: the checkpoint differs" "$(show_io)"

# --- filters, against python3's own reading of the files ------------------------------------

# filt DESC KEY=VALUE... -- KURACTL-ARGS...: the seqs kuractl prints must be python's.
filt() {
	_desc=$1
	shift
	_spec=
	while [ "$1" != "--" ]; do
		_spec="$_spec $1"
		shift
	done
	shift
	# shellcheck disable=SC2086
	_want=$($Q count "$T/log" $_spec)
	kc audit --dir "$T/log" "$@"
	_got=$($Q seqs "$T/log" <"$OUT")
	want "exit 0" rc_is 0
	want "some records match (the test means something)" [ -n "$_want" ]
	want "the same records ($(echo "$_want" | grep -c '') wanted, $(echo "$_got" | grep -c '') got)" same "$_want" "$_got"
	t_end "$_desc" "$(show_io)"
}

WEB2_ID=$(grep -h -o '"container_id":"[0-9a-f]*","container_name":"web-2"' "$T"/log/audit-*.jsonl | head -n 1 | cut -d'"' -f4)
IMG=$(grep -h -o '"image_id":"sha256:[0-9a-f]*"' "$T"/log/audit-*.jsonl | head -n 1 | cut -d'"' -f4)
T1=$($Q field "$T/log" 1000 time)
T2=$($Q field "$T/log" 2000 time)

filt "--secret exact" secret=db/password -- --secret db/password
filt "--secret db (not db/..., not dbx/...)" secret=db -- --secret db
filt "--secret prefix db/" secret=db/ -- --secret db/
filt "--secret prefix as db/*" secret=db/ -- --secret 'db/*'
filt "--container by name (web-1, not web-10)" container=web-1 -- --container web-1
filt "--container by ID prefix" container="$(echo "$WEB2_ID" | cut -c1-8)" -- --container "$(echo "$WEB2_ID" | cut -c1-8)"
filt "--image with sha256:" image="$IMG" -- --image "$IMG"
filt "--image by a bare hex prefix" image="$(echo "$IMG" | cut -c8-19)" -- --image "$(echo "$IMG" | cut -c8-19)"
filt "--event, a comma list" event=secret-put,grant -- --event secret-put,grant
filt "--event, repeated" event=secret-put,grant -- --event secret-put --event grant
filt "--denied" denied=1 -- --denied
filt "--since/--until (inclusive)" since="$T1" until="$T2" -- --since "$T1" --until "$T2"
filt "filters combined" secret=db/ denied=1 container=worker -- --secret db/ --denied --container worker
filt "--since 1h: everything" -- --since 1h

kc audit --dir "$T/log" --until 1h
want "exit 0" rc_is 0
want "nothing" [ ! -s "$OUT" ]
t_end "--until 1h: nothing" "$(show_io)"

# --since skips whole files: a time in the last file, against python.
TL=$($Q field "$T/log" 2990 time)
filt "--since in the last file (earlier files skipped)" since="$TL" -- --since "$TL"

for bad in yesterday 2026-13-01 2026-02-30T00:00:00Z 2026-11-25T25:00 10x ''; do
	kc audit --dir "$T/log" --since "$bad"
	want "'$bad': exit 2" rc_is 2
	want "'$bad': one line" err_one_line
done
t_end "bad times are usage errors, one line each" "$(show_io)"

kc audit --dir "$T/log" --event nosuch
want "exit 2" rc_is 2
want "one line" err_one_line
kc audit --dir "$T/log" --frobnicate
want "unknown option: exit 2" rc_is 2
want "unknown option: one line" err_one_line
kc audit --dir "$T/nolog"
want "no log: exit 1" rc_is 1
t_end "an unknown event or option: exit 2; no log: exit 1" "$(show_io)"

for sub in "" stats verify; do
	# shellcheck disable=SC2086
	kc audit $sub --help
	want "'audit $sub --help': exit 0" rc_is 0
	want "'audit $sub --help': usage" out_has "^Usage: kuractl audit"
	want "'audit $sub --help': exit statuses" out_has "Exit status"
done
t_end "every subcommand has --help" "$(show_io)"

# --- output: JSON lines unchanged off a terminal, a table on one ----------------------------

kc audit --dir "$T/log" --secret db/
N=$($Q same "$T/log" <"$OUT" 2>"$T/qerr")
want "every line is a line of the log, byte for byte" [ -n "$N" ]
t_end "piped: the original JSON lines" "$(show_io; cat "$T/qerr")"

if command -v script >/dev/null 2>&1; then
	script -qec "$K audit --dir '$T/log' --secret db/password" /dev/null </dev/null >"$OUT" 2>&1
	NDEN=$($Q count "$T/log" secret=db/password denied=1 | grep -c '')
	want "a header" grep -q 'TIME.*SEQ.*EVENT.*RESULT.*SECRET\[@VERSION\].*WHO.*REASON/DETAIL' "$OUT"
	want "denials marked and red ($NDEN)" [ "$(grep -c "$(printf '\033')\[1;31m! .* DENIED " "$OUT")" -eq "$NDEN" ]
	want "versions shown" grep -q ' db/password@[0-9]' "$OUT"
	want "who: name (short id)" grep -q -E ' [a-z0-9-]+ \([0-9a-f]{12}\) ' "$OUT"
	want "who: host uid/pid" grep -q -E ' host uid [0-9]+ pid [0-9]+ ' "$OUT"
	want "no JSON" sh -c "! grep -q '\"seq\"' '$OUT'"
	NO_COLOR=1 script -qec "$K audit --dir '$T/log' --denied" /dev/null </dev/null >"$T/nc" 2>&1
	want "NO_COLOR: no escapes" sh -c "! grep -q \"\$(printf '\\033')\" '$T/nc'"
	want "NO_COLOR: still marked" grep -q '^! ' "$T/nc"
	script -qec "$K audit --dir '$T/log' --denied --json" /dev/null </dev/null >"$T/tj" 2>&1
	want "--json on a terminal: JSON" [ "$(tr -d '\r' <"$T/tj" | $Q same "$T/log" 2>&1)" = "$($Q count "$T/log" denied=1 | grep -c '')" ]
	t_end "on a terminal: an aligned table, denials standing out" "$(head -c 1500 "$OUT")"
else
	tap_skip "on a terminal: an aligned table" "no script(1) for a pseudo-terminal"
fi

# --- stats ----------------------------------------------------------------------------------

kc audit stats --dir "$T/log" --json
want "exit 0" rc_is 0
want "python3 counts the same" $Q stats "$T/log" <"$OUT"
t_end "stats --json: every count checked by python3" "$(show_io)"

kc audit stats --dir "$T/log"
want "exit 0" rc_is 0
for s in "by result" "by event" "by secret" "by container" "by image" "top denials"; do
	want "section $s" out_has "^$s:$"
done
DP=$($Q count "$T/log" secret=db/password | grep -c '')
want "db/password counted ($DP)" out_has "^  db/password +$DP$"
t_end "stats: aligned sections" "$(show_io)"

# --- follow ---------------------------------------------------------------------------------

"$G" "$T/flog" 10 --seed 3 --file-bytes 3000 || tap_bail "audit-gen failed"
"$K" audit --follow --dir "$T/flog" >"$T/fout" 2>"$T/ferr" &
BG=$!
sleep 1
"$G" "$T/flog" 25 --seed 4 --file-bytes 3000
WANT=$($Q count "$T/flog" | grep -c '')
i=0
while [ "$(grep -c '' "$T/fout")" -lt "$WANT" ] && [ $i -lt 100 ]; do
	sleep 0.1
	i=$((i + 1))
done
want "all $WANT records, in order, across $(ls "$T/flog" | grep -c '^audit-') files" same "$($Q count "$T/flog")" "$($Q seqs "$T/flog" <"$T/fout")"
kill -TERM "$BG"
i=0
while kill -0 "$BG" 2>/dev/null && [ $i -lt 50 ]; do
	sleep 0.1
	i=$((i + 1))
done
want "stops on SIGTERM" sh -c "! kill -0 $BG 2>/dev/null"
wait "$BG"
FRC=$?
BG=
want "exit 0 (got $FRC)" [ "$FRC" -eq 0 ]
t_end "--follow sees records appended later, across rotation, and stops on SIGTERM" "$(head -c 400 "$T/ferr")"

# --- a million records ----------------------------------------------------------------------

S0=$(date +%s.%N)
"$G" "$T/big" 1000000 --seed 11 --key-out "$T/kbig" || tap_bail "audit-gen of 1M failed"
S1=$(date +%s.%N)
tap_diag "1M appends: $(echo "$S1 $S0" | awk '{printf "%.2f", $1 - $2}') s"
WANT=$(grep -h -c '"secret":"db/password"' "$T"/big/audit-*.jsonl | awk '{n += $1} END {print n}')
S0=$(date +%s.%N)
GOT=$("$K" audit --dir "$T/big" --secret db/password | grep -c '')
S1=$(date +%s.%N)
EL=$(echo "$S1 $S0" | awk '{printf "%.2f", $1 - $2}')
tap_diag "1M filter: $EL s"
S0=$(date +%s.%N)
GOTD=$("$K" audit --dir "$T/big" --denied | grep -c '')
S1=$(date +%s.%N)
tap_diag "1M filter --denied: $(echo "$S1 $S0" | awk '{printf "%.2f", $1 - $2}') s"
WANTD=$(grep -h -c '"result":"denied"' "$T"/big/audit-*.jsonl | awk '{n += $1} END {print n}')
want "db/password: $WANT wanted, $GOT got" [ "$WANT" = "$GOT" ]
want "denied: $WANTD wanted, $GOTD got" [ "$WANTD" = "$GOTD" ]
want "under 60 s" awk "BEGIN {exit !($EL < 60)}"
t_end "a 1M-record log filtered in $EL s"

(
	"$K" audit --dir "$T/big"
	echo $? >"$T/piperc"
) | head -n 1 >/dev/null
want "exit 0 (got $(cat "$T/piperc"))" [ "$(cat "$T/piperc")" = 0 ]
t_end "a closed pipe ends the listing quietly"

tap_done

#!/bin/sh
# kuractl backup, restore, secret import and secret export, on real SQLite states and through a
# real kurad: a backup taken under a load of puts and fetches restores into a fresh directory
# that a second kurad serves (values, grants, a verifying audit log); a live or non-empty state
# and a damaged backup are refused; 100k secrets are imported (the time is reported, not
# asserted); bad input is reported by line with nothing imported; an export has values only
# when asked, in a 0600 file. The attacker's side: an unprivileged user reads no backup or
# export, cannot back up or import, and a symlink planted at a target is not followed.
# Prints TAP. Usage: test-backup.sh PATH/TO/kuractl PATH/TO/kurad
set -u

[ $# -eq 2 ] || { echo "usage: $0 KURACTL KURAD" >&2; exit 2; }
K=$1
KD=$2
case $K in /*) ;; *) K=$PWD/$K ;; esac
case $KD in /*) ;; *) KD=$PWD/$KD ;; esac

. "$(dirname "$0")/tap.sh"

if [ "$(id -u)" -ne 0 ]; then
	echo "1..0 # SKIP kurad and the admin socket need root"
	exit 0
fi
command -v python3 >/dev/null 2>&1 || tap_bail "python3 is needed"
command -v setpriv >/dev/null 2>&1 || tap_bail "setpriv (util-linux) is needed"
[ -x /usr/bin/python3 ] || tap_bail "/usr/bin/python3 is needed (run as nobody)"
[ -x "$K" ] && [ -x "$KD" ] || tap_bail "no kuractl or kurad"

# KEEP=1 keeps the test directory (kurad's log, the backups) for a look afterwards.
# Under /tmp but reachable by nobody (for the attacker's tests): the states inside stay 0700.
T=$(mktemp -d /tmp/kura-backup-test.XXXXXX) || tap_bail "mktemp failed"
chmod 755 "$T"
PIDS=
cleanup() {
	for p in $PIDS; do
		kill "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	[ -n "${KEEP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
umask 077
NOBODY="setpriv --reuid=65534 --regid=65534 --clear-groups"

# kd_start STATE RUN [CONFIG]: a kurad, waited for until it answers; its pid in KDPID.
kd_start() {
	"$KD" --state-dir "$1" --run-dir "$2" ${3:+--config "$3"} >>"$T/kurad.log" 2>&1 &
	KDPID=$!
	PIDS="$PIDS $KDPID"
	for _i in $(seq 1 100); do
		kill -0 "$KDPID" 2>/dev/null || return 1
		[ -S "$2/admin.sock" ] && "$K" --state-dir "$1" --run-dir "$2" key status \
			>/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}
kd_stop() {
	kill "$1" 2>/dev/null
	wait "$1" 2>/dev/null
}

A=$T/a
RA=$T/run-a
"$K" --state-dir "$A" init --audit-key-out "$T/a.akey" >/dev/null 2>"$T/err" ||
	tap_bail "init: $(cat "$T/err")"
# Small audit files, so that the log rotates and can be archived.
echo "audit-max-file-mb = 1" >"$T/kurad.conf"
kd_start "$A" "$RA" "$T/kurad.conf" || tap_bail "kurad does not start: $(tail -5 "$T/kurad.log")"
KA="$K --state-dir $A --run-dir $RA"
printf 'keep-me-42' | $KA secret put app/db >/dev/null
$KA grant 'app/*' --host --uid 0 >/dev/null 2>"$T/err" || tap_bail "grant: $(cat "$T/err")"

# 1. A backup under load: puts and fetches through kurad in the background meanwhile.
(
	i=0
	while [ ! -e "$T/stop" ]; do
		i=$((i + 1))
		printf 'v%s' "$i" | $KA secret put "load/p$i" >/dev/null 2>&1
		$KA secret get app/db >/dev/null 2>&1
	done
) &
LOAD=$!
PIDS="$PIDS $LOAD"
sleep 1
$KA backup "$T/a.bak" >"$T/out" 2>"$T/err"
rc=$?
sleep 0.5
: >"$T/stop"
wait "$LOAD"
want "backup exits 0 (got $rc: $(cat "$T/err"))" [ "$rc" -eq 0 ]
want "the backup is mode 0600" [ "$(stat -c %a "$T/a.bak" 2>/dev/null)" = 600 ]
want "it says what it holds" grep -q "store revision .*audit log up to seq" "$T/out"
want "and that the key is not in it" grep -q "NOT included" "$T/out"
t_end "kuractl backup while kurad serves puts and fetches" "$(cat "$T/out" "$T/err")"

# 2. Restore into a fresh directory and serve it.
B=$T/b
RB=$T/run-b
"$K" --state-dir "$B" restore "$T/a.bak" >"$T/out" 2>"$T/err"
rc=$?
want "restore without the key is refused (got $rc)" [ "$rc" -eq 1 ]
want "saying to give --key-file" grep -q -- "--key-file" "$T/err"
want "and leaves no state" [ ! -e "$B" ]
t_end "restore of a backup made without the key needs --key-file" "$(cat "$T/err")"

"$K" --state-dir "$B" --key-file "$A/master.key" restore "$T/a.bak" >"$T/out" 2>"$T/err"
rc=$?
want "restore exits 0 (got $rc: $(cat "$T/err"))" [ "$rc" -eq 0 ]
want "it says what it restored" grep -q "restored .* store revision" "$T/out"
want "the state is 0700" [ "$(stat -c %a "$B" 2>/dev/null)" = 700 ]
want "the key is 0400" [ "$(stat -c %a "$B/master.key" 2>/dev/null)" = 400 ]
want "audit verify passes on it" "$K" --state-dir "$B" audit verify --key "$T/a.akey" \
	>"$T/verify" 2>&1
t_end "restore into a fresh directory, with --key-file" "$(cat "$T/out" "$T/err" "$T/verify")"

if kd_start "$B" "$RB"; then
	KB_PID=$KDPID
	KB="$K --state-dir $B --run-dir $RB"
	want "the value is there" [ "$($KB secret get app/db 2>&1)" = keep-me-42 ]
	want "the grant is there" sh -c "$KB grants 2>&1 | grep -q 'app/\*'"
	n=$($KB secret list load/ 2>/dev/null | grep -c '^load/')
	want "the load's secrets up to the snapshot are there ($n)" [ "$n" -gt 0 ]
	want "a put works on the restored state" sh -c "printf x | $KB secret put after/restore >/dev/null"
	kd_stop "$KB_PID"
	want "audit verify still passes after kurad wrote to it" "$K" --state-dir "$B" audit \
		verify --key "$T/a.akey" >"$T/verify" 2>&1
	t_end "kurad serves the restored state: values, grants, audit log" "$(cat "$T/verify")"
else
	tap_not_ok "kurad starts on the restored state" "$(tail -5 "$T/kurad.log")"
fi

# 3. Refusals: a live state, a non-empty one, a damaged backup.
"$K" --state-dir "$A" --key-file "$A/master.key" restore --force "$T/a.bak" >"$T/out" 2>"$T/err"
rc=$?
want "restore onto the state kurad serves is refused even with --force (got $rc)" [ "$rc" -ne 0 ]
want "saying it is in use" grep -q "in use" "$T/err"
want "and kurad still serves it" [ "$($KA secret get app/db 2>&1)" = keep-me-42 ]
t_end "restore refused onto a live state" "$(cat "$T/err")"

"$K" --state-dir "$B" --key-file "$A/master.key" restore "$T/a.bak" >"$T/out" 2>"$T/err"
rc=$?
want "restore onto a non-empty state without --force is refused (got $rc)" [ "$rc" -eq 1 ]
want "saying --force" grep -q -- "--force" "$T/err"
"$K" --state-dir "$B" --key-file "$A/master.key" restore --force "$T/a.bak" >"$T/out" 2>"$T/err"
rc=$?
want "with --force it restores (got $rc: $(cat "$T/err"))" [ "$rc" -eq 0 ]
want "keeping the old state beside it" sh -c "ls -d '$B'.replaced-* >/dev/null 2>&1"
t_end "restore onto a non-empty state needs --force and keeps the old one"

cp "$T/a.bak" "$T/bad.bak"
size=$(stat -c %s "$T/bad.bak")
printf 'X' | dd of="$T/bad.bak" bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null
"$K" --state-dir "$T/c" --key-file "$A/master.key" restore "$T/bad.bak" >"$T/out" 2>"$T/err"
rc=$?
want "a flipped byte is refused with exit 4 (got $rc)" [ "$rc" -eq 4 ]
want "saying it is damaged" grep -q "checksum" "$T/err"
want "nothing is left" [ ! -e "$T/c" ]
head -c $((size - 100)) "$T/a.bak" >"$T/cut.bak"
"$K" --state-dir "$T/c" --key-file "$A/master.key" restore "$T/cut.bak" >"$T/out" 2>"$T/err"
rc=$?
want "a cut-off backup is refused with exit 4 (got $rc)" [ "$rc" -eq 4 ]
want "nothing is left after it" [ ! -e "$T/c" ]
t_end "a corrupted backup is refused" "$(cat "$T/err")"

# 4. Import: 100k secrets of 64 bytes through kurad, timed (reported, not asserted).
python3 - "$T/100k.ndjson" <<'EOF'
import base64, os, sys
with open(sys.argv[1], "w") as f:
    for i in range(100000):
        v = base64.b64encode(os.urandom(64)).decode()
        f.write('{"name":"bulk/s%06d","value_b64":"%s"}\n' % (i, v))
EOF
t0=$(date +%s.%N)
$KA secret import "$T/100k.ndjson" >"$T/out" 2>"$T/err"
rc=$?
t1=$(date +%s.%N)
secs=$(python3 -c "print('%.2f' % ($t1 - $t0))")
want "import exits 0 (got $rc: $(cat "$T/err"))" [ "$rc" -eq 0 ]
want "it says 100000" grep -q "imported 100000 secrets" "$T/out"
n=$($KA secret list bulk/ --json 2>/dev/null | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
want "the store lists 100000 of them ($n)" [ "$n" = 100000 ]
line=$(sed -n 77777p "$T/100k.ndjson")
name=$(printf '%s' "$line" | python3 -c 'import json,sys; print(json.load(sys.stdin)["name"])')
want "a value comes back byte for byte" sh -c "$KA secret get --json $name | python3 -c '
import json,sys; j=json.load(sys.stdin); l=json.loads(sys.argv[1]); sys.exit(j[\"value\"]!=l[\"value_b64\"])' '$line'"
want "no value is echoed" sh -c "! grep -q -F '$(printf '%s' "$line" | cut -d'"' -f8)' '$T/out' '$T/err'"
t_end "import of 100000 secrets of 64 bytes through kurad took ${secs}s" \
	"kurad's log: $(tail -5 "$T/kurad.log")"
tap_diag "import: 100000 secrets of 64 bytes in ${secs}s: kuractl secret import 100k.ndjson (through kurad)"

# An archived log (kuractl audit archive, kurad running) backs up with its start point, and the
# restored log verifies from it.
"$K" audit archive --before 2099-01-01 --key "$T/a.akey" --dir "$A/audit" "$T/arch" \
	>"$T/out" 2>&1
rc=$?
want "archive exits 0 (got $rc: $(cat "$T/out"))" [ "$rc" -eq 0 ]
want "the log has a start point" [ -f "$A/audit/start" ]
$KA backup "$T/arch.bak" >"$T/out" 2>&1
want "backup of the archived log exits 0 ($(cat "$T/out"))" [ $? -eq 0 ]
"$K" --state-dir "$T/e" --key-file "$A/master.key" restore "$T/arch.bak" >"$T/out" 2>&1
want "restore exits 0 ($(cat "$T/out"))" [ $? -eq 0 ]
want "the start point is restored" [ -f "$T/e/audit/start" ]
want "the restored log verifies from its start point" "$K" --state-dir "$T/e" audit verify \
	--key "$T/a.akey" >"$T/verify" 2>&1
t_end "a log archived under a running kurad backs up and restores with its start point" \
	"$(cat "$T/verify")"

# 5. Bad input: every bad line by number, nothing imported.
printf '%s\n' '{"name":"imp/ok1","value":"s3cr3t-one"}' 'not json s3cr3t-two' \
	'{"name":"../x","value":"s3cr3t-three"}' '{"name":"imp/nov"}' \
	'{"name":"app/db","value":"s3cr3t-four"}' '{"name":"imp/ok1","value":"s3cr3t-five"}' \
	>"$T/bad.ndjson"
$KA secret import "$T/bad.ndjson" >"$T/out" 2>"$T/err"
rc=$?
want "exit 2 (got $rc)" [ "$rc" -eq 2 ]
for l in 2 3 4 5 6; do
	want "line $l is reported" grep -q "line $l:" "$T/err"
done
want "line 1 is not" sh -c "! grep -q 'line 1:' '$T/err'"
want "it says nothing was imported" grep -q "nothing was imported" "$T/err"
want "and nothing was" sh -c "! $KA secret show imp/ok1 >/dev/null 2>&1"
want "no value is echoed" sh -c "! grep -q s3cr3t '$T/out' '$T/err'"
t_end "import with bad lines reports each by number and imports nothing" "$(cat "$T/err")"

mkdir -p "$T/tree/svc/a"
printf 'tree-value-1' >"$T/tree/svc/a/key"
printf 'tree-value-2' >"$T/tree/svc/token"
$KA secret import --dir "$T/tree" --prefix imported/ >"$T/out" 2>"$T/err"
rc=$?
want "import --dir exits 0 (got $rc: $(cat "$T/err"))" [ "$rc" -eq 0 ]
want "file path = name" [ "$($KA secret get imported/svc/a/key 2>&1)" = tree-value-1 ]
ln -s /etc/shadow "$T/tree/svc/link"
$KA secret import --dir "$T/tree" --prefix again/ >"$T/out" 2>"$T/err"
rc=$?
want "a symlink in the tree is refused (got $rc)" [ "$rc" -eq 2 ]
want "naming it" grep -q "svc/link: not a regular file" "$T/err"
want "nothing imported" sh -c "! $KA secret show again/svc/token >/dev/null 2>&1"
t_end "import of a directory tree; a symlink in it is refused" "$(cat "$T/err")"

# kurad's own checks of a batch, for a client that skips kuractl's: a name twice, or one a
# folder of another, refuses the whole batch, naming the secret by its index.
post_import() {
	/usr/bin/python3 - "$RA/admin.sock" "$1" <<'EOF'
import json, socket, sys
body = sys.argv[2].encode()
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b"POST /v1/import HTTP/1.1\r\nHost: k\r\nConnection: close\r\n"
          b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
data = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    data += b
head, _, rest = data.partition(b"\r\n\r\n")
print(head.split(b" ")[1].decode(), json.loads(rest).get("index", "-"))
EOF
}
want "a name twice in one batch is refused at index 2" \
	[ "$(post_import '{"secrets":[{"name":"raw/a","value":"YQ=="},{"name":"raw/b","value":"Yg=="},{"name":"raw/a","value":"Yw=="}]}')" = "409 2" ]
want "a secret and a folder of it in one batch are refused" \
	[ "$(post_import '{"secrets":[{"name":"raw/c","value":"YQ=="},{"name":"raw/c/d","value":"Yg=="}]}' | cut -d' ' -f1)" = 409 ]
want "bad base64 is refused at its index" \
	[ "$(post_import '{"secrets":[{"name":"raw/e","value":"YQ=="},{"name":"raw/f","value":"!!"}]}')" = "400 1" ]
want "nothing of those batches is there" sh -c "! $KA secret list raw/ | grep -q raw/"
t_end "kurad refuses a whole batch that a client built wrong"

# 6. Export.
$KA secret export app/ >"$T/exp" 2>"$T/err"
rc=$?
want "export exits 0 (got $rc)" [ "$rc" -eq 0 ]
want "it lists app/db" grep -q '"name":"app/db"' "$T/exp"
want "without a value" sh -c "! grep -q -e value -e keep-me '$T/exp'"
$KA secret export --values >"$T/out" 2>"$T/err"
rc=$?
want "--values to standard output is refused (got $rc)" [ "$rc" -eq 2 ]
$KA secret export app/ --values --output "$T/exp-v" >"$T/out" 2>"$T/err"
rc=$?
want "--values --output exits 0 (got $rc: $(cat "$T/err"))" [ "$rc" -eq 0 ]
want "the file is 0600" [ "$(stat -c %a "$T/exp-v" 2>/dev/null)" = 600 ]
want "it holds the value" grep -q "\"value_b64\":\"$(printf keep-me-42 | base64)\"" "$T/exp-v"
$KA secret export app/ --values --output "$T/exp-v" >"$T/out" 2>"$T/err"
rc=$?
want "an existing file is refused (got $rc)" [ "$rc" -eq 15 ]
t_end "export: names without values by default; --values only into a new 0600 file" \
	"$(cat "$T/err")"

$KA secret export app/ --values --dir "$T/exp-d" >"$T/out" 2>"$T/err"
rc=$?
want "--values --dir exits 0 (got $rc: $(cat "$T/err"))" [ "$rc" -eq 0 ]
want "the tree is 0700" [ "$(stat -c %a "$T/exp-d" 2>/dev/null)" = 700 ]
want "a file per secret, 0600" [ "$(stat -c %a "$T/exp-d/app/db" 2>/dev/null)" = 600 ]
want "holding the value" [ "$(cat "$T/exp-d/app/db" 2>/dev/null)" = keep-me-42 ]
want "no temporary left beside it" sh -c "! ls -d '$T'/exp-d.kuractl-* >/dev/null 2>&1"
$KA secret export app/ --values --dir "$T/exp-d" >"$T/out" 2>"$T/err"
rc=$?
want "an existing directory is refused (got $rc)" [ "$rc" -eq 15 ]
$KA secret export app/ --dir "$T/exp-e" >"$T/out" 2>"$T/err"
rc=$?
want "--dir without --values is refused (got $rc)" [ "$rc" -eq 2 ]
t_end "export --values --dir: a new 0700 tree of 0600 files, never over an existing one" \
	"$(cat "$T/err")"

"$K" --state-dir "$T/round" init --audit-key-out "$T/round.akey" >/dev/null 2>&1
"$K" --state-dir "$T/round" secret import "$T/exp-v" >"$T/out" 2>"$T/err"
rc=$?
want "an export imports (got $rc: $(cat "$T/err"))" [ "$rc" -eq 0 ]
want "with its value" [ "$("$K" --state-dir "$T/round" secret get app/db 2>&1)" = keep-me-42 ]
want "offline, the audit log verifies" "$K" --state-dir "$T/round" audit verify --key "$T/round.akey" \
	>/dev/null 2>&1
t_end "export --values, then import offline: the same secrets, recorded"

# 7. The attacker's side.
want "nobody cannot read the backup" sh -c "! $NOBODY cat '$T/a.bak' >/dev/null 2>&1"
want "nobody cannot read the export" sh -c "! $NOBODY cat '$T/exp-v' >/dev/null 2>&1"
$NOBODY "$K" --state-dir "$A" --run-dir "$RA" backup "$T/nobody.bak" >"$T/out" 2>"$T/err"
rc=$?
want "nobody's backup fails (got $rc)" [ "$rc" -ne 0 ]
want "and writes nothing" [ ! -e "$T/nobody.bak" ]
chmod 644 "$T/bad.ndjson"
sed -n 1p "$T/bad.ndjson" >"$T/one.ndjson"
chmod 644 "$T/one.ndjson"
$NOBODY "$K" --state-dir "$A" --run-dir "$RA" secret import "$T/one.ndjson" >"$T/out" 2>"$T/err"
rc=$?
want "nobody's import fails (got $rc)" [ "$rc" -ne 0 ]
want "and imports nothing" sh -c "! $KA secret show imp/ok1 >/dev/null 2>&1"
# The system's python3: a per-user shim (pyenv) is not nobody's to run.
$NOBODY /usr/bin/python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
except OSError:
    sys.exit(0)
s.sendall(b"POST /v1/import HTTP/1.1\r\nHost: k\r\nContent-Length: 2\r\n\r\n{}")
sys.exit(0 if b" 403 " in s.recv(4096) else 1)' "$RA/admin.sock"
want "nobody cannot POST /v1/import to admin.sock" [ $? -eq 0 ]
want "kurad keeps serving" [ "$($KA secret get app/db 2>&1)" = keep-me-42 ]
t_end "an unprivileged user reads no backup or export, and cannot back up or import" \
	"$(cat "$T/err")"

echo original >"$T/victim"
ln -s "$T/victim" "$T/planted"
$KA backup "$T/planted" >"$T/out" 2>"$T/err"
rc=$?
want "backup onto a planted symlink is refused with 15 (got $rc)" [ "$rc" -eq 15 ]
$KA secret export --values --output "$T/planted" >"$T/out" 2>"$T/err"
rc=$?
want "export onto a planted symlink is refused with 15 (got $rc)" [ "$rc" -eq 15 ]
mkdir "$T/victim-dir"
ln -s "$T/victim-dir" "$T/planted-dir"
$KA secret export --values --dir "$T/planted-dir" >"$T/out" 2>"$T/err"
rc=$?
want "export --dir onto a planted symlink is refused with 15 (got $rc)" [ "$rc" -eq 15 ]
want "nothing went through it" [ -z "$(ls -A "$T/victim-dir")" ]
want "the symlink's target is untouched" [ "$(cat "$T/victim")" = original ]
want "and the symlink is still a symlink" [ -L "$T/planted" ]
mkdir -m 1777 "$T/pub"
$KA backup --with-key "$T/pub/k.bak" >"$T/out" 2>"$T/err"
rc=$?
want "backup --with-key into a world-writable directory is refused (got $rc)" [ "$rc" -eq 15 ]
want "nothing there" [ -z "$(ls -A "$T/pub")" ]
t_end "a symlink at the target is not followed; key material goes only to a private directory" \
	"$(cat "$T/err")"

$KA backup --with-key "$T/k.bak" >"$T/out" 2>"$T/err"
rc=$?
want "backup --with-key exits 0 (got $rc: $(cat "$T/err"))" [ "$rc" -eq 0 ]
kd_stop "$KDPID"
"$K" --state-dir "$T/d" restore "$T/k.bak" >"$T/out" 2>"$T/err"
rc=$?
want "a --with-key backup restores on its own (got $rc: $(cat "$T/err"))" [ "$rc" -eq 0 ]
want "and opens" [ "$("$K" --state-dir "$T/d" secret get app/db 2>&1)" = keep-me-42 ]
t_end "backup --with-key restores without a key option"

tap_done

#!/bin/sh
# The master key sealed to a TPM2 (a real swtpm, started here): kuractl init --tpm2, kurad
# unsealing it at start and serving a fetch, key rekey --tpm2 from a key file and back, a copy of
# the state refused by another TPM, a damaged blob refused, and no key file in the state.
# Usage: test-kurad-tpm2.sh KURAD KURACTL
set -u
[ $# -eq 2 ] || { echo "usage: $0 KURAD KURACTL" >&2; exit 2; }
KURAD=$1
K=$2
. "$(dirname "$0")/../cli/tap.sh"

[ "$(id -u)" -eq 0 ] || { echo "1..0 # SKIP kurad tests run as root"; exit 0; }
command -v swtpm >/dev/null 2>&1 || { echo "1..0 # SKIP swtpm is not installed"; exit 0; }
[ -x "$KURAD" ] && [ -x "$K" ] || tap_bail "no kurad or kuractl at $KURAD, $K"

T=$(mktemp -d /tmp/kura-tpm2-XXXXXX)
chmod 755 "$T"
PID=
TPM_PID=
cleanup() {
	[ -n "$PID" ] && kill -9 "$PID" 2>/dev/null
	[ -n "$TPM_PID" ] && kill "$TPM_PID" 2>/dev/null && wait "$TPM_PID" 2>/dev/null
	[ -f "$T/kurad.log" ] && cp "$T/kurad.log" /tmp/kurad-tpm2-last.log
	rm -rf "$T"
}
trap cleanup EXIT
R=$T/run
A=$R/admin.sock
W=$R/workload.sock

# swtpm_start NAME [PORT]: a swtpm with its state in $T/NAME on PORT (and PORT+1 for control),
# or on a free pair picked at random; sets PORT and TPM_PID. Only one runs at a time.
swtpm_start() {
	mkdir -p "$T/$1"
	for _try in 1 2 3 4 5 6 7 8 9 10; do
		PORT=${2:-$((20000 + 2 * $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 40000))}
		swtpm socket --tpm2 --tpmstate dir="$T/$1" --flags not-need-init,startup-clear \
			--server type=tcp,port="$PORT",bindaddr=127.0.0.1 \
			--ctrl type=tcp,port=$((PORT + 1)),bindaddr=127.0.0.1 >>"$T/swtpm.log" 2>&1 &
		TPM_PID=$!
		sleep 0.3
		kill -0 "$TPM_PID" 2>/dev/null && return 0
		TPM_PID=
		[ -n "${2:-}" ] && sleep 1 # a fixed port just given up: wait for it
	done
	return 1
}
swtpm_stop() {
	[ -n "$TPM_PID" ] && kill "$TPM_PID" && wait "$TPM_PID" 2>/dev/null
	TPM_PID=
}

if ! swtpm_start tpm-a; then
	echo "1..0 # SKIP swtpm cannot start here: $(tail -3 "$T/swtpm.log")"
	exit 0
fi
PORT_A=$PORT
TCTI="swtpm:host=127.0.0.1,port=$PORT_A"
tap_diag "swtpm A at $TCTI"

get() {
	CODE=$(curl -s -o "$T/body" -w '%{http_code}' --max-time 10 \
		--unix-socket "$1" "http://kura$2") || CODE=000
}
start_kurad() {
	"$KURAD" --state-dir "$1" --run-dir "$R" >>"$T/kurad.log" 2>&1 &
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
	[ -n "$PID" ] && kill "$PID" && wait "$PID" 2>/dev/null
	PID=
}

S=$T/state
"$K" --state-dir "$S" init --tpm2 --tpm2-device "$TCTI" --audit-key-out "$T/audit.key" \
	>"$T/out" 2>&1
rc=$?
want "init --tpm2 exited $rc: $(cat "$T/out")" test $rc -eq 0
want "no blob at $S/master.tpm2" test -f "$S/master.tpm2"
want "the blob is mode $(stat -c %a "$S/master.tpm2" 2>/dev/null), not 400" \
	test "$(stat -c %a "$S/master.tpm2" 2>/dev/null)" = 400
want "a key file landed in the state: $(ls "$S")" test ! -e "$S/master.key"
want "init does not say the key is sealed to the TPM2: $(cat "$T/out")" grep -qi 'TPM2' "$T/out"
t_end "kuractl init --tpm2 seals the master key: STATE/master.tpm2 (0400), no key file"

printf 'sealed-by-tpm-value' >"$T/v1"
"$K" --state-dir "$S" secret put app/x --file "$T/v1" >"$T/out" 2>&1
want "put exited $?: $(cat "$T/out")" test $? -eq 0
"$K" --state-dir "$S" grant 'app/*' --host --uid 0 >/dev/null 2>&1
"$K" --state-dir "$S" secret get app/x >"$T/got" 2>"$T/out"
want "get exited $?: $(cat "$T/out")" test $? -eq 0
want "get returned something else" cmp -s "$T/got" "$T/v1"
"$K" --state-dir "$S" key status --json >"$T/out" 2>&1
want "key status does not say tpm2: $(cat "$T/out")" grep -q '"source": *"tpm2"' "$T/out"
t_end "kuractl opens a TPM2 state with no key option: put, grant, get, key status says tpm2"

"$K" --state-dir "$S" --key-file "$T/v1" secret get app/x >"$T/out" 2>&1
rc=$?
want "get with --key-file exited $rc, expected 1" test $rc -eq 1
want "no clear refusal: $(cat "$T/out")" grep -q 'TPM2' "$T/out"
t_end "a TPM2 state refuses --key-file, saying its key is in the TPM2"

want "kurad did not start: $(tail -5 "$T/kurad.log")" start_kurad "$S"
get "$W" /v1/secrets/app/x
want "fetch: $CODE $(cat "$T/body")" test "$CODE" = 200
want "the fetched value is not the one put" grep -q "$(base64 <"$T/v1")" "$T/body"
t_end "kurad unseals the master key at start (no key option) and serves a fetch"

# Through kurad: its key custody process makes no network connection, and this TPM (swtpm) is
# reached over TCP: refused, saying what to do, and nothing changes. Then as it says: kurad
# stopped, kuractl reseals; a restart unseals the new key.
cp "$S/master.tpm2" "$T/old.tpm2"
"$K" --state-dir "$S" --run-dir "$R" key rekey --tpm2 --tpm2-device "$TCTI" >"$T/out" 2>&1
rc=$?
want "rekey --tpm2 over TCP through kurad exited $rc: $(cat "$T/out")" test $rc -ne 0
want "the refusal does not say why: $(cat "$T/out")" grep -q 'no network connection' "$T/out"
want "the blob changed" cmp -s "$S/master.tpm2" "$T/old.tpm2"
get "$W" /v1/secrets/app/x
want "kurad stopped serving after the refusal: $CODE" test "$CODE" = 200
stop_kurad
"$K" --state-dir "$S" key rekey --tpm2 --tpm2-device "$TCTI" >"$T/out" 2>&1
rc=$?
want "rekey --tpm2 with kurad stopped exited $rc: $(cat "$T/out")" test $rc -eq 0
want "the blob was not replaced" sh -c "! cmp -s '$S/master.tpm2' '$T/old.tpm2'"
want "a new blob was left beside it" test ! -e "$S/master.tpm2.new"
want "kurad did not restart: $(tail -5 "$T/kurad.log")" start_kurad "$S"
get "$W" /v1/secrets/app/x
want "fetch after the rekey: $CODE $(cat "$T/body")" test "$CODE" = 200
stop_kurad
t_end "key rekey --tpm2 to a TPM over TCP: refused through kurad (no connection from the key custody process), done with kurad stopped; kurad restarts on the new key"

# Damaged: one byte flipped in a copy's blob.
cp -a "$S" "$T/damaged"
python3 -c 'import sys; p=sys.argv[1]; b=bytearray(open(p,"rb").read()); b[len(b)//2]^=1; open(p,"wb").write(b)' \
	"$T/damaged/master.tpm2"
"$K" --state-dir "$T/damaged" --offline secret get app/x >"$T/out" 2>&1
rc=$?
want "a damaged blob: exit $rc, expected 4" test $rc -eq 4
want "no clear message: $(cat "$T/out")" grep -q 'damaged' "$T/out"
t_end "a damaged blob is refused (exit 4, 'damaged')"

# Another machine: the same TCTI, but another TPM behind it (B on A's ports).
cp -a "$S" "$T/copy"
swtpm_stop
want "swtpm B did not start on A's port" swtpm_start tpm-b "$PORT_A"
"$K" --state-dir "$T/copy" --offline secret get app/x >"$T/out" 2>&1
rc=$?
want "the copy opened against TPM B: exit $rc" test $rc -eq 1
want "no clear message: $(cat "$T/out")" grep -q 'sealed to another TPM' "$T/out"
"$KURAD" --state-dir "$T/copy" --run-dir "$R" >"$T/out" 2>&1 &
KPID=$!
for _i in $(seq 1 100); do kill -0 "$KPID" 2>/dev/null || break; sleep 0.05; done
if kill -0 "$KPID" 2>/dev/null; then
	kill -9 "$KPID"
	want "kurad kept running on a copy it cannot unseal" false
fi
wait "$KPID"
rc=$?
want "kurad on the copy exited $rc, expected nonzero" test $rc -ne 0
want "kurad gives no clear message: $(cat "$T/out")" grep -q 'sealed to another TPM' "$T/out"
t_end "a copy of the state against another TPM cannot be opened (kuractl exit 1, kurad exits)"

# No TPM at all.
swtpm_stop
"$K" --state-dir "$S" --offline secret get app/x >"$T/out" 2>&1
rc=$?
want "no TPM: exit $rc, expected 3" test $rc -eq 3
want "no clear message: $(cat "$T/out")" grep -q 'no TPM' "$T/out"
t_end "with no TPM reachable: exit 3, 'no TPM'"

want "swtpm A did not come back on its port" swtpm_start tpm-a "$PORT_A"
"$K" --state-dir "$S" --offline secret get app/x >"$T/got" 2>"$T/out"
want "A no longer opens its own state: $(cat "$T/out")" cmp -s "$T/got" "$T/v1"
t_end "TPM A, back, still opens the state"

# A rekey killed between its commit and its rename: the keyring opens only with
# master.tpm2.new. The next open finishes the rename.
cp "$S/master.tpm2" "$T/before.tpm2"
"$K" --state-dir "$S" --offline key rekey --tpm2 --tpm2-device "$TCTI" >"$T/out" 2>&1
want "rekey --tpm2 offline exited $?: $(cat "$T/out")" test $? -eq 0
mv "$S/master.tpm2" "$S/master.tpm2.new"
cp -p "$T/before.tpm2" "$S/master.tpm2"
"$K" --state-dir "$S" --offline secret get app/x >"$T/got" 2>"$T/out"
want "the state does not open after the interrupted rekey: $(cat "$T/out")" cmp -s "$T/got" "$T/v1"
want "master.tpm2.new was not renamed into place" test ! -e "$S/master.tpm2.new"
want "master.tpm2 is still the old blob" sh -c "! cmp -s '$S/master.tpm2' '$T/before.tpm2'"
"$K" --state-dir "$S" --offline secret get app/x >"$T/got" 2>"$T/out"
want "and after that, it does not open again: $(cat "$T/out")" cmp -s "$T/got" "$T/v1"
t_end "a rekey --tpm2 killed between commit and rename: the next open finishes it"

# One killed before its commit leaves a master.tpm2.new that opens nothing: the next rekey
# replaces it, and the state opens with the new key.
cp -p "$T/before.tpm2" "$S/master.tpm2.new"
"$K" --state-dir "$S" --offline key rekey --tpm2 --tpm2-device "$TCTI" >"$T/out" 2>&1
want "rekey beside a stale master.tpm2.new exited $?: $(cat "$T/out")" test $? -eq 0
want "a master.tpm2.new is left" test ! -e "$S/master.tpm2.new"
"$K" --state-dir "$S" --offline secret get app/x >"$T/got" 2>"$T/out"
want "the state does not open after it: $(cat "$T/out")" cmp -s "$T/got" "$T/v1"
t_end "a stale master.tpm2.new (a rekey killed before its commit) is replaced by the next rekey"

# rekey --tpm2 from a key file, and back to a (new) key file.
F=$T/file-state
"$K" --state-dir "$F" init --audit-key-out "$T/audit2.key" >/dev/null 2>&1
"$K" --state-dir "$F" secret put app/y --file "$T/v1" >/dev/null 2>&1
"$K" --state-dir "$F" key rekey --tpm2 --tpm2-device "$TCTI" >"$T/out" 2>&1
rc=$?
want "rekey --tpm2 exited $rc: $(cat "$T/out")" test $rc -eq 0
want "no blob" test -f "$F/master.tpm2"
mv "$F/master.key" "$T/old.key"
"$K" --state-dir "$F" secret get app/y >"$T/got" 2>"$T/out"
want "after rekey --tpm2, get without the key file: $(cat "$T/out")" cmp -s "$T/got" "$T/v1"
"$K" --state-dir "$F" --key-file "$T/old.key" secret get app/y >"$T/out" 2>&1
want "the old key file still opens the store" test $? -ne 0
t_end "key rekey --tpm2 moves a key-file state into the TPM2"

"$K" --state-dir "$F" key rekey --new-key-file "$T/new.key" >"$T/out" 2>&1
rc=$?
want "rekey back to a key file exited $rc: $(cat "$T/out")" test $rc -eq 0
"$K" --state-dir "$F" --key-file "$T/new.key" secret get app/y >"$T/got" 2>"$T/out"
want "the new key file does not open it: $(cat "$T/out")" cmp -s "$T/got" "$T/v1"
"$K" --state-dir "$F" key status --json --key-file "$T/new.key" >"$T/out" 2>&1
want "key status does not say file: $(cat "$T/out")" grep -q '"source": *"file"' "$T/out"
t_end "key rekey --new-key-file moves it back out of the TPM2"

"$K" --state-dir "$T/bad" init --tpm2 --tpm2-device "swtpm:host=127.0.0.1,port=1" >"$T/out" 2>&1
rc=$?
want "init against no TPM exited $rc, expected 3" test $rc -eq 3
want "no clear message: $(cat "$T/out")" grep -q 'no TPM' "$T/out"
want "init left something behind: $(ls -A "$T/bad" 2>/dev/null)" test ! -e "$T/bad"
"$K" --state-dir "$T/bad" init --tpm2 --key-file "$T/new.key" >"$T/out" 2>&1
want "init --tpm2 --key-file exited $?, expected 2" test $? -eq 2
t_end "init --tpm2 with no TPM leaves nothing; --tpm2 with --key-file is a usage error"

tap_done

#!/bin/sh
# kura against a hostile broker (tests/e2e/fake-broker.py on a Unix socket, standing in for
# whatever answers on the socket a container mounts): peak memory stays bounded whatever the set
# (300 values of 3 MB), a set over the cap on names is refused before any value is fetched, a full
# tmpfs leaves the old set in place, and no string from the broker, the runtime or an image
# author reaches the terminal raw (C0, DEL, C1, invalid UTF-8, bidi controls); a value comes in
# the raw form (application/octet-stream) when the broker offers it, from an older broker's JSON
# otherwise, and a raw answer with a wrong type, a missing, bad or repeated Kura- header, or a
# body short of, past or over its Content-Length is refused (16) with nothing written.
# Usage: test-kura-hostile.sh KURA FAKE_BROKER
set -u
[ $# -eq 2 ] || { echo "usage: $0 KURA FAKE_BROKER" >&2; exit 2; }
KURA=$1
FB=$2
HERE=$(dirname "$0")
. "$HERE/../cli/tap.sh"

if [ "$(id -u)" -ne 0 ]; then
	echo "1..0 # SKIP needs root to mount the tmpfs kura writes into"
	exit 0
fi
[ -x "$KURA" ] || { echo "1..0 # SKIP no static kura client (a sanitizer build)"; exit 0; }
command -v python3 >/dev/null 2>&1 || { echo "1..0 # SKIP no python3 for the fake broker"; exit 0; }
[ -x /usr/bin/time ] || { echo "1..0 # SKIP no GNU time (/usr/bin/time) to measure peak RSS"; exit 0; }

# kura's peak resident set may not pass this, whatever the broker sends (KiB).
BOUND_KIB=24576

T=$(mktemp -d /tmp/kura-hostile-XXXXXX)
BPID=
cleanup() {
	stop_broker
	grep -o " $T/[^ ]*" /proc/self/mounts | sort -r | while read -r _m; do umount -l "$_m"; done
	rm -rf "$T"
}
trap cleanup EXIT
B=$T/broker.sock
LOG=$T/requests

# start_broker MODE ARGS...: a fresh fake broker and an empty request log.
start_broker() {
	stop_broker
	: >"$LOG"
	: >"$LOG.accept"
	python3 "$FB" "$B" "$LOG" "$@" 2>"$T/broker.err" &
	BPID=$!
	for _i in $(seq 1 100); do [ -S "$B" ] && return 0; sleep 0.05; done
	tap_bail "the fake broker did not start: $(cat "$T/broker.err")"
}
stop_broker() {
	[ -n "$BPID" ] || return 0
	kill "$BPID" 2>/dev/null
	wait "$BPID" 2>/dev/null
	BPID=
	rm -f "$B"
}

# measured ARGS...: kura under GNU time; status in $rc, peak RSS (KiB) in $PEAK, output in
# $T/out and $T/err, wall time (ms) in $MS.
measured() {
	_t0=$(date +%s%N)
	/usr/bin/time -f '%M' -o "$T/rss" "$KURA" --socket "$B" "$@" >"$T/out" 2>"$T/err"
	rc=$?
	MS=$((($(date +%s%N) - _t0) / 1000000))
	PEAK=$(tail -n 1 "$T/rss")
}

# clean FILE...: only printable ASCII and newlines in them (nothing a terminal would act on).
clean() {
	test "$(cat "$@" | LC_ALL=C tr -d '\n -~' | wc -c)" -eq 0
}

sets() { ls -A "$1" | grep -c '^\.\.kura_'; }

# --- memory ------------------------------------------------------------------------------------
D1=$T/big
mkdir -p "$D1"
mount -t tmpfs -o size=1100m,mode=0700 kura-hostile "$D1"
start_broker big 300 3000000
measured fetch --dir "$D1"
tap_diag "300 x 3 MB into a 1.1 GiB tmpfs: exit $rc, peak RSS $PEAK KiB, $MS ms"
want "exit $rc, not 0: $(cat -v "$T/err")" test "$rc" -eq 0
want "$(ls "$D1/big" 2>/dev/null | wc -l) files written, not 300" test "$(ls "$D1/big" 2>/dev/null | wc -l)" -eq 300
want "files of another size: $(find "$D1/big/" -type f ! -size 3000000c | head -3)" \
	test -z "$(find "$D1/big/" -type f ! -size 3000000c)"
want "big/123 does not hold the value" test "$(sha256sum <"$D1/big/123" | cut -d' ' -f1)" = "$(cat "$LOG.sha256")"
want "peak RSS $PEAK KiB, over $BOUND_KIB KiB" test "$PEAK" -lt "$BOUND_KIB"
t_end "300 values of 3 MB: the whole set written, kura's peak RSS $PEAK KiB (bound $BOUND_KIB)"
umount "$D1"

D2=$T/small
mkdir -p "$D2"
mount -t tmpfs -o size=64m,mode=0700 kura-hostile "$D2"
start_broker names 3
measured fetch --dir "$D2"
want "the first set: exit $rc: $(cat -v "$T/err")" test "$rc" -eq 0
DATA=$(readlink "$D2/..data")
start_broker big 300 3000000
measured fetch --dir "$D2"
tap_diag "300 x 3 MB into a 64 MiB tmpfs: exit $rc, peak RSS $PEAK KiB, $MS ms"
want "exit $rc, not 14: $(cat -v "$T/err")" test "$rc" -eq 14
want "no clear line: $(cat -v "$T/err")" grep -q '^kura: .* is full' "$T/err"
want "peak RSS $PEAK KiB, over $BOUND_KIB KiB" test "$PEAK" -lt "$BOUND_KIB"
want "..data moved: $(readlink "$D2/..data")" test "$(readlink "$D2/..data")" = "$DATA"
want "the old set lost n/00001" test "$(cat "$D2/n/00001" 2>/dev/null)" = x
want "$(sets "$D2") set directories left" test "$(sets "$D2")" -eq 1
want "something of the new set was left: $(ls -A "$D2")" test "$(ls -A "$D2" | grep -cv '^\.\.\|^n$')" -eq 0
t_end "300 values of 3 MB into a 64 MiB tmpfs: exit 14, the old set intact, peak RSS $PEAK KiB"

start_broker bigdeny 3.9
measured fetch --dir "$D2" --only any
want "a refusal of 3.9 MiB: exit $rc, not 1: $(cat -v "$T/err")" test "$rc" -eq 1
want "a refusal of 3.9 MiB: peak RSS $PEAK KiB, over $BOUND_KIB KiB" test "$PEAK" -lt "$BOUND_KIB"
want "..data moved: $(readlink "$D2/..data")" test "$(readlink "$D2/..data")" = "$DATA"
P1=$PEAK
start_broker bigpad 3.9
measured fetch --dir "$D2"
want "3.9 MiB beside a value: exit $rc, not 16: $(cat -v "$T/err")" test "$rc" -eq 16
want "3.9 MiB beside a value: peak RSS $PEAK KiB, over $BOUND_KIB KiB" test "$PEAK" -lt "$BOUND_KIB"
want "..data moved: $(readlink "$D2/..data")" test "$(readlink "$D2/..data")" = "$DATA"
t_end "answers of 3.9 MiB of small items (a refusal: exit 1; beside a value: exit 16) are not parsed; peak RSS $P1, $PEAK KiB"

# --- the cap on names ----------------------------------------------------------------------------
start_broker names 1025
measured fetch --dir "$D2"
want "exit $rc, not 16: $(cat -v "$T/err")" test "$rc" -eq 16
want "no clear line: $(cat -v "$T/err")" grep -q '^kura: .*1025.*1024' "$T/err"
want "values were fetched: $(grep -c '^/v1/secrets/' "$LOG")" test "$(grep -c '^/v1/secrets/' "$LOG")" -eq 0
want "..data moved: $(readlink "$D2/..data")" test "$(readlink "$D2/..data")" = "$DATA"
want "$(sets "$D2") set directories left" test "$(sets "$D2")" -eq 1
t_end "a list of 1025 names (the cap is 1024) exits 16 before any value is fetched; nothing written"

set --
for i in $(seq 1 1025); do set -- "$@" --only "n/$i"; done
measured fetch --dir "$D2" "$@"
want "1025 --only: exit $rc, not 2: $(cat -v "$T/err")" test "$rc" -eq 2
want "values were fetched: $(grep -c '^/v1/secrets/' "$LOG")" test "$(grep -c '^/v1/secrets/' "$LOG")" -eq 0
start_broker biglist 2
measured fetch --dir "$D2"
want "a 2 MiB listing: exit $rc, not 16: $(cat -v "$T/err")" test "$rc" -eq 16
want "a 2 MiB listing: values were fetched" test "$(grep -c '^/v1/secrets/' "$LOG")" -eq 0
start_broker biglist 0.49
measured fetch --dir "$D2"
want "a 0.49 MiB listing of 20k names: exit $rc, not 16: $(cat -v "$T/err")" test "$rc" -eq 16
want "a 0.49 MiB listing: values were fetched" test "$(grep -c '^/v1/secrets/' "$LOG")" -eq 0
want "a 0.49 MiB listing: peak RSS $PEAK KiB, over $BOUND_KIB KiB" test "$PEAK" -lt "$BOUND_KIB"
want "..data moved: $(readlink "$D2/..data")" test "$(readlink "$D2/..data")" = "$DATA"
t_end "1025 --only names exit 2; listings of 2 MiB, or of 20k names in 0.49 MiB (peak RSS $PEAK KiB), exit 16; nothing fetched"

start_broker names 1024
measured fetch --dir "$D2"
want "1024 names: exit $rc: $(cat -v "$T/err")" test "$rc" -eq 0
want "$(ls "$D2/n" | wc -l) files, not 1024" test "$(ls "$D2/n" | wc -l)" -eq 1024
want "$(sets "$D2") set directories left" test "$(sets "$D2")" -eq 1
t_end "a set of exactly 1024 names is written"

# --- what reaches the terminal -------------------------------------------------------------------
start_broker text
measured whoami
want "whoami: exit $rc: $(cat -v "$T/err")" test "$rc" -eq 0
want "whoami printed raw control or non-ASCII bytes: $(od -c "$T/out" | head -5)" clean "$T/out"
want "whoami lost the C1 character: $(cat -v "$T/out")" grep -qiF '\u009b' "$T/out"
want "whoami: not JSON, or the label changed" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
sys.exit(d["labels"]["evil"] != "a\u009b31mred\u0085b\u202eevil\u2066x\u007fy\u001b[2J\u200ez\u2028w")' "$T/out"
t_end "whoami: C0, DEL, C1, bidi controls in labels are escaped (JSON_ENSURE_ASCII), the JSON intact"

measured fetch --dir "$D2" --only denied
want "a refusal: exit $rc, not 1: $(cat -v "$T/err")" test "$rc" -eq 1
want "the broker's message reached stderr raw: $(od -c "$T/err" | head -5)" clean "$T/err"
want "the message is gone: $(cat -v "$T/err")" grep -qF 'no grant a\u{9b}31mred\u{85}b\u{202e}evil\u{2066}x\x7fy\x1b[2J\u{200e}z\u{2028}w' "$T/err"
start_broker deny
measured ls
want "ls refused: exit $rc, not 1: $(cat -v "$T/err")" test "$rc" -eq 1
want "ls: the broker's message reached stderr raw: $(od -c "$T/err" | head -5)" clean "$T/err"
start_broker ctlname
measured ls
want "a name with a CSI: exit $rc, not 16: $(cat -v "$T/err")" test "$rc" -eq 16
want "a name with a CSI reached the terminal: $(od -c "$T/out" "$T/err" | head -5)" \
	clean "$T/out" "$T/err"
t_end "the broker's error messages are escaped on stderr; a listed name with a CSI is refused (16)"

start_broker text
measured run --dir "$D2" --only tok -- "$(printf '/nonexistent/\033]0;x\007\302\233\342\200\256\377')"
want "a missing CMD: exit $rc, not 127: $(cat -v "$T/err")" test "$rc" -eq 127
want "CMD's name reached stderr raw: $(od -c "$T/err" | head -5)" clean "$T/err"
want "CMD's name is not shown escaped: $(cat -v "$T/err")" grep -qF '\x1b]0;x\x07\u{9b}\u{202e}\xff' "$T/err"
measured --timeout "$(printf '1\033[2J\302\205')" ls
want "a bad --timeout: exit $rc, not 2: $(cat -v "$T/err")" test "$rc" -eq 2
want "the bad option value reached stderr raw: $(od -c "$T/err" | head -5)" clean "$T/err"
t_end "a CMD or option value with controls and invalid UTF-8 is escaped in kura's messages"

# --- the raw value path -------------------------------------------------------------------------
DATA=$(readlink "$D2/..data")
start_broker raw ok
measured fetch --dir "$D2" --only tok
want "a raw value: exit $rc: $(cat -v "$T/err")" test "$rc" -eq 0
want "kura did not ask for the raw form: $(cat "$LOG.accept")" \
	test "$(cat "$LOG.accept")" = application/octet-stream
want "the raw value was not written byte for byte: $(od -c "$D2/tok" | head -2)" \
	sh -c 'printf "v\000\377" | cmp -s - "$1"' sh "$D2/tok"
start_broker raw empty
measured fetch --dir "$D2" --only tok
want "an empty raw value: exit $rc: $(cat -v "$T/err")" test "$rc" -eq 0
want "an empty raw value: $(stat -L -c %s "$D2/tok") bytes written" test "$(stat -L -c %s "$D2/tok")" -eq 0
start_broker json:names 3
measured fetch --dir "$D2"
want "a JSON-only broker: exit $rc: $(cat -v "$T/err")" test "$rc" -eq 0
want "a JSON-only broker: n/00002 is not x" test "$(cat "$D2/n/00002" 2>/dev/null)" = x
t_end "a value in the raw form is written byte for byte (NUL, 0xff; and empty); an older broker's JSON still works"

DATA=$(readlink "$D2/..data")
for v in ctype noctype noversion "badversion 0" "badversion -1" "badversion 1x" \
	"badversion 18446744073709551616" "badversion +1" dupversion nofingerprint badcreated \
	short long late oversized; do
	# shellcheck disable=SC2086
	start_broker raw $v
	measured fetch --dir "$D2" --only tok
	want "raw $v: exit $rc, not 16: $(cat -v "$T/err")" test "$rc" -eq 16
	want "raw $v: no clear line: $(cat -v "$T/err")" grep -q '^kura: /v1/secrets/tok: ' "$T/err"
	want "raw $v: ..data moved: $(readlink "$D2/..data")" test "$(readlink "$D2/..data")" = "$DATA"
	want "raw $v: $(sets "$D2") set directories left" test "$(sets "$D2")" -eq 1
	tap_diag "raw $v: $(cat "$T/err")"
done
t_end "raw answers with a wrong or no type, a missing, bad or repeated Kura- header, a body short of, past or over its Content-Length: exit 16, nothing written"

tap_done

#!/bin/sh
# Integration tests of the real kuractl binary: exit codes, messages and output of every command,
# on real state directories (SQLite files, key files, passphrases, read-only and full file
# systems), and through a real kurad (KURAD, optional) or impostors on its socket. Prints TAP.
# Usage: test-kuractl.sh PATH/TO/kuractl [PATH/TO/kurad]
set -u

[ $# -eq 1 ] || [ $# -eq 2 ] || { echo "usage: $0 KURACTL [KURAD]" >&2; exit 2; }
K=$1
case $K in /*) ;; *) K=$PWD/$K ;; esac
KD=${2:-}
case $KD in /* | '') ;; *) KD=$PWD/$KD ;; esac
SCRIPT=$0
case $SCRIPT in /*) ;; *) SCRIPT=$PWD/$SCRIPT ;; esac

# As root, run in a private mount namespace: the tmpfs and read-only bind mounts below vanish
# with this process even if it is killed, and never show up on the host.
if [ "$(id -u)" -eq 0 ] && [ -z "${KURA_TEST_PRIVATE_NS:-}" ] &&
	command -v unshare >/dev/null 2>&1 &&
	unshare --mount --propagation private true 2>/dev/null; then
	KURA_TEST_PRIVATE_NS=1 exec unshare --mount --propagation private \
		sh "$SCRIPT" "$K" ${KD:+"$KD"}
fi

. "$(dirname "$SCRIPT")/tap.sh"

[ -x "$K" ] || tap_bail "no kuractl at $K"
command -v python3 >/dev/null 2>&1 || tap_bail "python3 is needed to check JSON output"

T=$(mktemp -d) || tap_bail "mktemp -d failed"
MOUNTS=
BG=
PIDS= # servers this test started
FB=   # a directory other users can reach (mktemp's $T is root's alone)
cleanup() {
	[ -n "$BG" ] && kill "$BG" 2>/dev/null
	for p in $PIDS; do
		kill "$p" 2>/dev/null
	done
	[ -n "$FB" ] && rm -rf "$FB"
	for m in $MOUNTS; do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
	done
	# Never recurse into something still mounted.
	if grep -q " $T/" /proc/self/mounts 2>/dev/null; then
		echo "# leaving $T: something is still mounted there" >&2
	else
		rm -rf "$T"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
umask 077

OUT=$T/out
ERR=$T/err
LOG=$T/transcript # stdout and stderr of every command but `secret get`'s stdout
VALS=$T/values    # every printable value stored, one a line: must never leak
: >"$LOG"
: >"$VALS"

# --- running kuractl -------------------------------------------------------------------------

# kc ARGS...: run kuractl; stdout in $OUT, stderr in $ERR, status in $RC.
kc() {
	"$K" "$@" >"$OUT" 2>"$ERR"
	RC=$?
	cat "$OUT" "$ERR" >>"$LOG"
}

# kc_get ARGS...: as kc, for `secret get` (whose stdout is a value, kept out of the transcript).
kc_get() {
	"$K" "$@" >"$OUT" 2>"$ERR"
	RC=$?
	cat "$ERR" >>"$LOG"
}

show_io() {
	printf 'exit status: %s\nstderr: %s\nstdout: %s' "$RC" "$(head -c 800 "$ERR")" \
		"$(head -c 400 "$OUT" | tr -c '[:print:]\n' '?')"
}

rc_is() { [ "$RC" -eq "$1" ]; }
err_empty() { [ ! -s "$ERR" ]; }
out_empty() { [ ! -s "$OUT" ]; }
# stderr is exactly one line, starting with "kuractl: ".
err_one_line() { [ "$(grep -c '' "$ERR")" -eq 1 ] && head -n 1 "$ERR" | grep -q '^kuractl: '; }
err_has() { grep -E -i -q -- "$1" "$ERR"; }
err_has_fixed() { grep -F -q -- "$1" "$ERR"; }
out_has() { grep -E -q -- "$1" "$OUT"; }
out_lacks() { ! grep -E -q -- "$1" "$OUT"; }
out_is_file() { cmp -s "$OUT" "$1"; }
out_size_is() { [ "$(wc -c <"$OUT" | tr -d ' ')" -eq "$1" ]; }

want_rc() { want "exit status $RC, expected $1" rc_is "$1"; }

# expect_err CODE REGEX DESC: failed with CODE, one "kuractl: " line on stderr matching REGEX
# (case-insensitive ERE), nothing on stdout.
expect_err() {
	want_rc "$1"
	want "stderr is not one line starting with 'kuractl: '" err_one_line
	want "stderr does not match /$2/" err_has "$2"
	want "stdout is not empty" out_empty
	t_end "$3" "$(show_io)"
}

# expect_ok REGEX DESC: exit 0, nothing on stderr, stdout matching REGEX ('' for anything).
expect_ok() {
	want_rc 0
	want "stderr is not empty" err_empty
	[ -z "$1" ] || want "stdout does not match /$1/" out_has "$1"
	t_end "$2" "$(show_io)"
}

# expect_get FILE DESC: `secret get` exited 0 and wrote exactly FILE's bytes.
expect_get() {
	want_rc 0
	want "stderr is not empty" err_empty
	want "stdout ($(wc -c <"$OUT" | tr -d ' ') bytes) differs from the value stored" \
		out_is_file "$1"
	t_end "$2" "$(show_io)"
}

# jcheck FILE EXPR: EXPR (Python) is true of j, the JSON document in FILE.
jcheck() {
	python3 -c 'import json, sys
j = json.load(open(sys.argv[1]))
sys.exit(0 if eval(sys.argv[2]) else 1)' "$1" "$2" 2>/dev/null
}
want_json() { want "JSON check failed: $1" jcheck "$OUT" "$1"; }

# --- fixtures --------------------------------------------------------------------------------

# newval FILE: a fresh random printable value (32 characters, no newline), registered.
newval() {
	head -c 64 /dev/urandom | base64 | tr -d '/+=\n' | cut -c 1-32 | tr -d '\n' >"$1"
	cat "$1" >>"$VALS"
	echo >>"$VALS"
}

# register FILE: a printable value read back with `secret get`, to be checked for leaks too.
register() {
	cat "$1" >>"$VALS"
	echo >>"$VALS"
}

mode_is() { [ "$(stat -c %a "$1")" = "$2" ]; }
size_is() { [ "$(stat -c %s "$1")" = "$2" ]; }
no_group_other() { [ $((0$(stat -c %a "$1") & 077)) -eq 0 ]; }

# ct DB NAME VERSION FIELD: a base64 field ("value", "dek") of a version record, via sqlite3.
ct() {
	sqlite3 "$1" "SELECT value FROM kv WHERE key = 'version/$2@$(printf %010d "$3")'" |
		python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$4"
}

# flip DB NAME VERSION FIELD: flip one bit in the middle of a base64 field of a version record,
# touching nothing else in the record, via the sqlite3 CLI.
flip() {
	_key="version/$2@$(printf %010d "$3")"
	_hex=$(sqlite3 "$1" "SELECT hex(value) FROM kv WHERE key = '$_key'") || return 1
	[ -n "$_hex" ] || return 1
	_new=$(python3 -c 'import base64, json, sys
raw = bytes.fromhex(sys.argv[1])
old = json.loads(raw)[sys.argv[2]]
b = bytearray(base64.b64decode(old))
b[len(b) // 2] ^= 0x01
new = base64.b64encode(bytes(b)).decode()
assert raw.count(old.encode()) == 1 and new != old
sys.stdout.write(raw.replace(old.encode(), new.encode()).hex())' "$_hex" "$4") || return 1
	sqlite3 "$1" "UPDATE kv SET value = X'$_new' WHERE key = '$_key'"
}

# absent_from_store DIR STRING: STRING is in no kura.db* file of DIR.
absent_from_store() {
	for _f in "$1"/kura.db*; do
		[ -e "$_f" ] || continue
		if grep -a -F -q -- "$2" "$_f"; then
			return 1
		fi
	done
	return 0
}

# =============================================================================================
# 1. The command line surface
# =============================================================================================

for args in "--help" "-h" "help" "init --help" "init -h" "secret --help" "secret -h" \
	"key --help" "key -h" "config --help" "config -h"; do
	# shellcheck disable=SC2086 # split on purpose
	kc $args
	expect_ok '^Usage: kuractl' "kuractl $args exits 0 and prints Usage on stdout"
done

kc --help
for code in '0    ok' '1    refused or not found' '2    usage error' '3    system error' \
	'4    integrity failure' '10   broker unreachable' '16   a malformed'; do
	want "--help does not document exit status '$code'" out_has "^  $code"
done
t_end "--help documents the exit codes"

kc --version
expect_ok '^kuractl [0-9]+\.[0-9]+' "--version prints 'kuractl X.Y'"

kc
want_rc 2
want "no Usage on stderr" err_has '^Usage: kuractl'
want "stdout is not empty" out_empty
t_end "kuractl with no arguments exits 2 with Usage on stderr" "$(show_io)"

kc frob
expect_err 2 "unknown command 'frob'" "unknown command exits 2 and names it"

kc --bogus
expect_err 2 '--bogus' "unknown global option exits 2 with one line naming it"

kc --state-dir "$T/none" secret get x --bogus
expect_err 2 '--bogus' "unknown option of 'secret get' exits 2 with one line naming it"

kc --state-dir
expect_err 2 '--state-dir' "option missing its argument exits 2 with one line naming it"

kc secret
want_rc 2
want "no Usage on stderr" err_has '^Usage: kuractl secret'
t_end "'kuractl secret' without a command exits 2 with Usage on stderr" "$(show_io)"

kc key
want_rc 2
want "no Usage on stderr" err_has '^Usage: kuractl key'
t_end "'kuractl key' without a command exits 2 with Usage on stderr" "$(show_io)"

kc --state-dir "$T/none" secret frob x
expect_err 2 "unknown command 'secret frob'" "unknown secret command exits 2 and names it"

kc --state-dir "$T/none" key frob
expect_err 2 "unknown command 'key frob'" "unknown key command exits 2 and names it"

kc --state-dir "$T/none" secret put
expect_err 2 'secret put needs a NAME' "secret put without NAME exits 2"

kc --state-dir "$T/none" secret rollback x
expect_err 2 'needs NAME and --to' "secret rollback without --to exits 2"

kc --state-dir "$T/none" secret put x --generate 0
expect_err 2 '--generate takes' "--generate 0 exits 2"

kc --state-dir "$T/none" secret get x --version abc
expect_err 2 '--version takes' "--version abc exits 2"

kc --state-dir "$T/none" init extra
expect_err 2 "unexpected argument" "init with an extra argument exits 2"

kc --state-dir "$T/none" key rekey
expect_err 2 'needs --new-key-file' "key rekey without a target exits 2"

kc --state-dir "$T/none" key rotate --new-key-file "$T/k"
expect_err 2 'belong to key rekey' "key rotate with --new-key-file exits 2"

want "a usage error created $T/none" test ! -e "$T/none"
t_end "usage errors touch nothing on disk"

# =============================================================================================
# 2. init
# =============================================================================================

S=$T/state
umask 000
kc --state-dir "$S" init
umask 077
expect_ok '^initialised ' "init creates a state (run under umask 000)"

want "state dir is mode $(stat -c %a "$S" 2>/dev/null)" mode_is "$S" 700
t_end "init: the state directory is mode 0700"

want "master.key is not a regular file" test -f "$S/master.key"
want "master.key is mode $(stat -c %a "$S/master.key" 2>/dev/null), not 400" \
	mode_is "$S/master.key" 400
want "master.key is $(stat -c %s "$S/master.key" 2>/dev/null) bytes, not 32" \
	size_is "$S/master.key" 32
t_end "init: master.key is a 32-byte file of mode 0400"

want "kura.db missing" test -f "$S/kura.db"
for f in "$S"/kura.db*; do
	want "$f has group/other bits ($(stat -c %a "$f"))" no_group_other "$f"
done
t_end "init: kura.db (and any -wal/-shm) have no group or other access"

cp "$S/master.key" "$T/master.key.orig"
cp "$S/kura.db" "$T/kura.db.orig"
kc --state-dir "$S" init
expect_err 1 'already' "a second init exits 1 saying a store is already there"
want "master.key changed" cmp -s "$S/master.key" "$T/master.key.orig"
want "kura.db changed" cmp -s "$S/kura.db" "$T/kura.db.orig"
t_end "a refused second init leaves master.key and kura.db as they were"

mkdir "$T/loose"
chmod 755 "$T/loose"
kc --state-dir "$T/loose" init
want_rc 0
want "existing directory left at mode $(stat -c %a "$T/loose")" mode_is "$T/loose" 700
t_end "init in an existing empty directory tightens it to 0700" "$(show_io)"

kc --state-dir "$T/no/such/state" init
expect_err 1 "$T/no/such/state.*No such file" \
	"init under a missing parent exits 1 naming the directory"
want "$T/no was created" test ! -e "$T/no"
t_end "init under a missing parent leaves nothing behind"

kc --state-dir "$T/half" init --key-file "$T/nodir/master.key"
expect_err 1 "cannot create key file $T/nodir/master.key" \
	"init with an uncreatable --key-file exits 1 naming it"
want "the state directory $T/half was left behind" test ! -e "$T/half"
t_end "init that fails on the key file removes the directory it made"

head -c 32 /dev/urandom >"$T/escrow.key"
chmod 640 "$T/escrow.key"
kc --state-dir "$T/half" init --key-file "$T/escrow.key"
expect_err 1 'chmod 400' "init with a group-readable (0640) --key-file exits 1 (chmod 400)"
want "the state directory $T/half was left behind" test ! -e "$T/half"
t_end "init that refuses the key file leaves nothing behind"

chmod 400 "$T/escrow.key"
kc --state-dir "$T/escrowed" init --key-file "$T/escrow.key"
expect_ok "escrow.key" "init with an existing 0400 --key-file uses it"
want "a default master.key was created too" test ! -e "$T/escrowed/master.key"
kc --state-dir "$T/escrowed" --key-file "$T/escrow.key" key status
want "the store does not open with that key (exit $RC)" rc_is 0
t_end "a state made with --key-file opens with it and has no master.key"

# --- passphrases ---
P=$T/pstate
printf 'correct horse battery\n' >"$T/pass"
chmod 600 "$T/pass"
printf 'correct horse battery' >"$T/pass-nonl"
printf 'wrong horse battery\n' >"$T/badpass"
chmod 600 "$T/badpass"
kc --state-dir "$P" init --passphrase-file "$T/pass"
expect_ok 'passphrase' "init --passphrase-file (a 0600 file) exits 0"
want "master.key written for a passphrase store" test ! -e "$P/master.key"
t_end "a passphrase store has no key file"

newval "$T/pval"
kc --state-dir "$P" --passphrase-file "$T/pass" secret put p/one --file "$T/pval"
expect_ok '^p/one: version 1$' "secret put with --passphrase-file"

for cmd in "secret list" "secret get p/one" "secret show p/one" \
	"secret put p/two --generate 8" "secret rotate p/one --generate 8" \
	"secret destroy p/one" "key status" "key rotate" "config"; do
	# shellcheck disable=SC2086
	kc_get --state-dir "$P" $cmd
	expect_err 1 '--passphrase-file' "passphrase store: '$cmd' without it exits 1 naming --passphrase-file"
done

kc_get --state-dir "$P" --passphrase-file "$T/badpass" secret get p/one
expect_err 1 'wrong key file or passphrase' "a wrong passphrase exits 1"

kc_get --state-dir "$P" --key-file "$S/master.key" secret get p/one
expect_err 1 '--passphrase-file' "a key file for a passphrase store exits 1 naming --passphrase-file"

kc_get --state-dir "$P" --passphrase-file - secret get p/one <"$T/pass-nonl"
expect_get "$T/pval" "--passphrase-file - reads the passphrase from stdin"

kc --state-dir "$P" --passphrase-file - secret put p/stdin <"$T/pass"
expect_err 2 'standard input cannot carry both' \
	"put with --passphrase-file - and no value source exits 2"

newval "$T/pval2"
kc --state-dir "$P" --passphrase-file - secret put p/two --file "$T/pval2" <"$T/pass"
want_rc 0
kc_get --state-dir "$P" --passphrase-file "$T/pass" secret get p/two
want "value read back differs" out_is_file "$T/pval2"
t_end "put with --passphrase-file - and --file stores the file's value" "$(show_io)"

printf 'another passphrase\n' >"$T/pass2"
chmod 600 "$T/pass2"
kc --state-dir "$T/pstate2" init --passphrase-file - <"$T/pass2"
want_rc 0
kc --state-dir "$T/pstate2" --passphrase-file "$T/pass2" key status
want "the store made from stdin does not open with the same passphrase in a file" rc_is 0
want "status does not say passphrase" out_has 'passphrase'
t_end "init --passphrase-file - reads the passphrase from stdin" "$(show_io)"

cp "$T/pass" "$T/pass644"
chmod 644 "$T/pass644"
kc --state-dir "$P" --passphrase-file "$T/pass644" key status
expect_err 1 'chmod 400' "a passphrase file readable by others exits 1 (chmod 400)"

: >"$T/emptypass"
kc --state-dir "$P" --passphrase-file "$T/emptypass" key status
expect_err 2 'empty' "an empty passphrase file exits 2"

kc --state-dir "$S" --passphrase-file "$T/pass" key status
want "exit status $RC, expected 1 or 2" test "$RC" -eq 1 -o "$RC" -eq 2
want "stderr is not one kuractl line" err_one_line
want "message does not say the store uses a key file" err_has 'key file, not a passphrase'
t_end "a passphrase for a key-file store is refused, saying so" "$(show_io)"

# =============================================================================================
# 3. secret put / get
# =============================================================================================

{ printf 'a\000b\000\n'; head -c 994 /dev/urandom; } >"$T/bin"
kc --state-dir "$S" secret put io/blob <"$T/bin"
expect_ok '^io/blob: version 1$' "put from stdin: 1000 binary bytes with NULs"
kc_get --state-dir "$S" secret get io/blob
expect_get "$T/bin" "get returns the binary value byte for byte"

printf 'line\n' >"$T/nl"
kc --state-dir "$S" secret put io/newline <"$T/nl"
kc_get --state-dir "$S" secret get io/newline
expect_get "$T/nl" "a trailing newline on (non-terminal) stdin is part of the value"

newval "$T/vfile"
kc --state-dir "$S" secret put io/file --file "$T/vfile"
expect_ok '^io/file: version 1$' "put --file"
kc_get --state-dir "$S" secret get io/file
expect_get "$T/vfile" "get returns the --file value"

kc_get --state-dir "$S" --json secret get io/file
want_rc 0
want_json 'j["name"] == "io/file" and j["version"] == 1 and j["size"] == 32'
want "value in --json is not the base64 of the value" jcheck "$OUT" \
	"__import__('base64').b64decode(j['value']) == open('$T/vfile', 'rb').read()"
t_end "get --json: name, version, size and the base64 value" "$(show_io)"

kc --state-dir "$S" secret put io/gen --generate 32
expect_ok '^io/gen: version 1$' "put --generate 32"
kc_get --state-dir "$S" secret get io/gen
want_rc 0
want "generated value is $(wc -c <"$OUT" | tr -d ' ') bytes, not 32" out_size_is 32
t_end "--generate 32 stores exactly 32 bytes" "$(show_io)"

kc --state-dir "$S" secret put io/printable --generate 20 --printable
expect_ok '^io/printable: version 1$' "put --generate 20 --printable"
kc_get --state-dir "$S" secret get io/printable
cp "$OUT" "$T/printable"
register "$T/printable"
want_rc 0
want "value is $(wc -c <"$OUT" | tr -d ' ') bytes, not 20" out_size_is 20
want "value is not 20 of [A-Za-z0-9_-]" out_has '^[A-Za-z0-9_-]{20}$'
t_end "--generate 20 --printable stores 20 characters of [A-Za-z0-9_-]" "$(show_io)"

kc --state-dir "$S" secret put io/file --generate 8
expect_err 1 'already exists' "put of an existing name exits 1"
kc_get --state-dir "$S" secret get io/file
expect_get "$T/vfile" "a refused put leaves the existing value"

kc --state-dir "$S" secret put io/empty </dev/null
expect_err 2 'empty.*--allow-empty' "put of an empty value exits 2 naming --allow-empty"
kc --state-dir "$S" secret show io/empty
want "the empty value was stored anyway (show exits $RC)" rc_is 1
t_end "a refused empty value creates no secret"

kc --state-dir "$S" secret put io/empty --allow-empty </dev/null
expect_ok '^io/empty: version 1$' "put --allow-empty of an empty value exits 0"
kc_get --state-dir "$S" secret get io/empty
want_rc 0
want "empty value read back as $(wc -c <"$OUT" | tr -d ' ') bytes" out_size_is 0
t_end "get of an empty value returns 0 bytes" "$(show_io)"

kc --state-dir "$S" secret put io/missing --file "$T/does-not-exist"
expect_err 1 "cannot open $T/does-not-exist" "put --file of a missing file exits 1 naming it"

kc --state-dir "$S" secret put io/two --file "$T/vfile" --generate 8
expect_err 2 'one value source' "put with two value sources exits 2"

kc --state-dir "$S" secret put io/argv hunter2hunter2 </dev/null
expect_err 2 "unexpected extra argument.*command line" "put with the value as an argument exits 2"
want "the rejected value is repeated in the error message: $(cat "$ERR")" \
	test -z "$(grep -F hunter2hunter2 "$ERR")"
t_end "a value given on argv is not echoed back in the error message"
kc --state-dir "$S" secret show io/argv
want "a secret was created from argv (show exits $RC)" rc_is 1
t_end "a value on argv is never stored"

kc --state-dir "$S" secret rotate io/file "$T/vfile"
expect_err 2 "unexpected extra argument" "rotate with an extra argument exits 2"

kc --state-dir "$S" secret put io/p --printable
expect_err 2 '--printable goes with --generate' "--printable without --generate exits 2"

kc --state-dir "$S" secret get io/file --file "$T/vfile"
expect_err 2 'go with put and rotate' "get with --file exits 2"

kc_get --state-dir "$S" secret get io/nothere
expect_err 1 'no secret named io/nothere' "get of a missing secret exits 1"

# --- value size limits ---
L=$T/limit
kc --state-dir "$L" init --max-value-size 100
expect_ok '' "init --max-value-size 100"
head -c 101 /dev/urandom >"$T/v101"
head -c 100 /dev/urandom >"$T/v100"
head -c 51 /dev/urandom >"$T/v51"
head -c 50 /dev/urandom >"$T/v50"

kc --state-dir "$L" secret put big <"$T/v101"
expect_err 1 'limit of 100 bytes' "a 101-byte value (stdin) over a 100-byte limit exits 1 naming it"
kc --state-dir "$L" secret put big --file "$T/v101"
expect_err 1 '100 bytes' "a 101-byte value (--file) over a 100-byte limit exits 1 naming it"
kc --state-dir "$L" secret put big --generate 101
expect_err 1 '100 bytes' "--generate 101 over a 100-byte limit exits 1 naming it"
kc --state-dir "$L" secret show big
want "an oversized value was stored (show exits $RC)" rc_is 1
t_end "refused oversized values create no secret"

kc --state-dir "$L" secret put big <"$T/v100"
expect_ok '^big: version 1$' "a value exactly at the limit (100 bytes) is stored"
kc_get --state-dir "$L" secret get big
expect_get "$T/v100" "the 100-byte value reads back"

kc --state-dir "$L" secret rotate big <"$T/v101"
expect_err 1 '100 bytes' "rotate to an oversized value exits 1"

kc --state-dir "$L" config
expect_ok '^max-value-size: 100$' "config shows max-value-size 100"

kc --state-dir "$L" config --max-value-size 50
expect_ok '^max-value-size: 50$' "config --max-value-size 50"

kc --state-dir "$L" --json config
want_rc 0
want_json 'j == {"max_value_size": 50}'
t_end "config --json shows the new limit" "$(show_io)"

kc --state-dir "$L" secret rotate big <"$T/v51"
expect_err 1 'limit of 50 bytes' "after config, 51 bytes exits 1 naming the limit of 50"
kc --state-dir "$L" secret rotate big <"$T/v50"
expect_ok '^big: version 2$' "after config, 50 bytes is stored"

kc --state-dir "$L" config --max-value-size 0
expect_err 2 '--max-value-size takes' "config --max-value-size 0 exits 2"
kc --state-dir "$L" config --max-value-size 1073741825
expect_err 2 '--max-value-size takes' "config --max-value-size 1 GiB + 1 exits 2"

head -c 1048577 /dev/urandom >"$T/v1m1"
head -c 1048576 "$T/v1m1" >"$T/v1m"
kc --state-dir "$S" secret put io/huge <"$T/v1m1"
expect_err 1 'limit of 1048576 bytes' "default limit: 1 MiB + 1 exits 1 naming 1048576"
kc --state-dir "$S" secret put io/huge <"$T/v1m"
want_rc 0
kc_get --state-dir "$S" secret get io/huge
want "1 MiB value does not read back" out_is_file "$T/v1m"
t_end "default limit: a 1 MiB value is stored and reads back" "$(show_io)"

# =============================================================================================
# 4. Names
# =============================================================================================

printf 'v' >"$T/one"
long256=$(head -c 256 /dev/zero | tr '\0' a)
long255=$(head -c 255 /dev/zero | tr '\0' b)
check_bad_name() { # NAME LABEL REGEX
	kc --state-dir "$S" secret put "$1" --file "$T/one"
	expect_err 2 "invalid secret name: .*$3" "put rejects $2 (exit 2, names the rule)"
}
check_bad_name 'a/../b' "'a/../b'" "'\\.' or '\\.\\.' segment"
check_bad_name '../a' "'../a'" "'\\.' or '\\.\\.' segment"
check_bad_name '/a' "'/a'" 'empty segment'
check_bad_name 'a/' "'a/'" 'empty segment'
check_bad_name 'a//b' "'a//b'" 'empty segment'
check_bad_name '.' "'.'" "'\\.' or '\\.\\.' segment"
check_bad_name 'a b' "'a b'" 'only the characters'
check_bad_name 'a;b' "'a;b'" 'only the characters'
check_bad_name "$(printf 'a\nb')" "a name with a newline" 'only the characters'
check_bad_name '' "an empty name" 'cannot be empty'
check_bad_name "$long256" "a 256-byte name" 'at most 255 bytes'

kc_get --state-dir "$S" secret get 'a/../b'
expect_err 2 'invalid secret name' "get rejects 'a/../b' with exit 2"
kc --state-dir "$S" secret destroy '/a'
expect_err 2 'invalid secret name' "destroy rejects '/a' with exit 2"
kc --state-dir "$S" secret list 'a b'
expect_err 2 'invalid prefix' "list rejects the prefix 'a b' with exit 2"

kc --state-dir "$S" secret put "$long255" --file "$T/one"
expect_ok "^$long255: version 1\$" "put accepts a 255-byte name"
kc_get --state-dir "$S" secret get "$long255"
expect_get "$T/one" "a 255-byte name reads back"
kc --state-dir "$S" secret put 'A-z_0.9/x.y-z/.env' --file "$T/one"
expect_ok '' "put accepts 'A-z_0.9/x.y-z/.env'"

# =============================================================================================
# 5. rotate, show, list, rollback, destroy
# =============================================================================================

newval "$T/v1"
newval "$T/v2"
kc --state-dir "$S" secret put app/db --file "$T/v1"
expect_ok '^app/db: version 1$' "put app/db prints version 1"
kc --state-dir "$S" secret rotate app/db --file "$T/v2"
expect_ok '^app/db: version 2$' "rotate prints the new version number (2)"
kc --state-dir "$S" secret rotate app/db --generate 24 --printable
expect_ok '^app/db: version 3$' "rotate --generate prints the new version number (3)"
kc_get --state-dir "$S" secret get app/db
cp "$OUT" "$T/v3"
register "$T/v3"
want "current value is not 24 printable characters" out_has '^[A-Za-z0-9_-]{24}$'
t_end "get after rotate returns the newest version"

kc --state-dir "$S" secret rotate app/nothere --generate 8
expect_err 1 'no secret named app/nothere' "rotate of a missing secret exits 1"

kc --state-dir "$S" --json secret rotate app/db --file "$T/v2"
want_rc 0
want_json 'j == {"name": "app/db", "version": 4}'
t_end "rotate --json prints {name, version}" "$(show_io)"
kc --state-dir "$S" secret rollback app/db --to 3
want_rc 0
t_end "rollback to 3 (undoing the --json rotate)" "$(show_io)"

kc --state-dir "$S" secret show app/db
want_rc 0
want "no 'name: app/db'" out_has '^name: +app/db$'
want "current is not 3" out_has '^current: +3$'
want "latest is not 4" out_has '^latest: +4$'
want "no line for version 1 (32 bytes, KEK 1)" out_has '^  1 +[0-9T:Z-]+ +32 +1$'
want "no starred line for version 3 (24 bytes, KEK 1)" out_has '^\* 3 +[0-9T:Z-]+ +24 +1$'
want "more than one starred line" test "$(grep -c '^\*' "$OUT")" -eq 1
t_end "show: current, latest and each version's size and KEK, current starred" "$(show_io)"

kc --state-dir "$S" --json secret show app/db
want_rc 0
want_json 'j["name"] == "app/db" and j["current"] == 3 and j["latest"] == 4'
want_json '[v["version"] for v in j["versions"]] == [1, 2, 3, 4]'
want_json '[v["size"] for v in j["versions"]] == [32, 32, 24, 32]'
want_json 'all(v["kek"] == 1 for v in j["versions"])'
want_json '[v["current"] for v in j["versions"]] == [False, False, True, False]'
want_json 'all(len(v["created"]) == 20 and v["created"].endswith("Z") for v in j["versions"])'
t_end "show --json: versions, sizes, kek and current" "$(show_io)"

kc --state-dir "$S" secret put app/cache --generate 16
kc --state-dir "$S" secret put apple --generate 16
kc --state-dir "$S" secret put db2/x --generate 16
kc --state-dir "$S" secret list
want_rc 0
want "no header" out_has '^NAME +CURRENT +LATEST +UPDATED$'
want "no app/db line with current 3, latest 4" out_has '^app/db +3 +4 +[0-9]{4}-'
want "no io/blob line" out_has '^io/blob +1 +1 '
want "no db2/x line" out_has '^db2/x '
t_end "list shows every secret with current and latest version" "$(show_io)"

kc --state-dir "$S" secret list app/
want_rc 0
want "app/db missing" out_has '^app/db '
want "app/cache missing" out_has '^app/cache '
want "apple listed under app/" out_lacks '^apple '
want "io/blob listed under app/" out_lacks '^io/'
t_end "list app/ shows only the app/ folder" "$(show_io)"

kc --state-dir "$S" secret list ap
want_rc 0
want "apple missing" out_has '^apple '
want "app/db missing" out_has '^app/db '
want "db2/x listed under ap" out_lacks '^db2/'
t_end "list ap is a plain string prefix (app/ and apple)" "$(show_io)"

kc --state-dir "$S" --json secret list
want_rc 0
want_json 'isinstance(j, list) and len(j) >= 10'
want_json '[e["name"] for e in j] == sorted(e["name"] for e in j)'
want_json '{"name": "app/db", "current": 3, "latest": 4} == {k: v for k, v in [e for e in j if e["name"] == "app/db"][0].items() if k != "updated"}'
t_end "list --json is a sorted array of {name, current, latest, updated}" "$(show_io)"

kc --state-dir "$S" --json secret list app/
want_rc 0
want_json '[e["name"] for e in j] == ["app/cache", "app/db"]'
t_end "list --json app/ holds exactly app/cache and app/db" "$(show_io)"

kc --state-dir "$S" secret list nomatch/
expect_ok '' "list with a prefix matching nothing exits 0"
want "output for no match: $(head -c 200 "$OUT")" out_empty
t_end "list with no match prints nothing"
kc --state-dir "$S" --json secret list nomatch/
want_rc 0
want_json 'j == []'
t_end "list --json with no match prints []" "$(show_io)"

kc_get --state-dir "$S" secret get app/db --version 1
expect_get "$T/v1" "get --version 1 returns version 1"

kc --state-dir "$S" secret rollback app/db --to 1
expect_ok '^app/db: version 1 is current$' "rollback --to 1"
kc_get --state-dir "$S" secret get app/db
expect_get "$T/v1" "after rollback get returns version 1's value"
kc --state-dir "$S" --json secret show app/db
want_json 'j["current"] == 1 and j["latest"] == 4'
t_end "after rollback show says current 1, latest 4" "$(show_io)"

kc --state-dir "$S" secret rollback app/db --to 9
expect_err 1 'no version 9' "rollback to a missing version exits 1"

kc --state-dir "$S" secret destroy app/db --version 1
expect_err 1 'current version' "destroy --version of the current version exits 1"

kc --state-dir "$S" secret rollback app/db --to 3
kc_get --state-dir "$S" secret get app/db
expect_get "$T/v3" "rollback --to 3 makes version 3 current again"

ct1=$(ct "$S/kura.db" app/db 1 value)
ct2=$(ct "$S/kura.db" app/db 2 value)
ct3=$(ct "$S/kura.db" app/db 3 value)
want "cannot read the ciphertexts with sqlite3" test -n "$ct1" -a -n "$ct2" -a -n "$ct3"
want "ciphertext of version 1 not found in kura.db before destroy" \
	grep -a -F -q -- "$ct1" "$S/kura.db"
t_end "sqlite3 sees the ciphertext records (test fixture)"

kc --state-dir "$S" secret destroy app/db --version 1
expect_ok '^app/db: version 1 destroyed$' "destroy --version 1 of an old version exits 0"
kc_get --state-dir "$S" secret get app/db --version 1
expect_err 1 'no version 1' "get --version of a destroyed version exits 1"
kc_get --state-dir "$S" secret get app/db --version 2
expect_get "$T/v2" "the other versions survive destroying one"
kc --state-dir "$S" --json secret show app/db
want_json '[v["version"] for v in j["versions"]] == [2, 3, 4]'
t_end "show lists the remaining versions 2, 3, 4" "$(show_io)"
kc --state-dir "$S" secret destroy app/db --version 1
expect_err 1 'no version 1' "destroying a destroyed version exits 1"
kc --state-dir "$S" secret rollback app/db --to 1
expect_err 1 'no version 1' "rollback to a destroyed version exits 1"

want "version 1's value is in a store file" absent_from_store "$S" "$(cat "$T/v1")"
want "version 1's ciphertext is in a store file" absent_from_store "$S" "$ct1"
want "version 2's ciphertext is gone but version 2 was kept" grep -a -F -q -- "$ct2" "$S/kura.db"
t_end "after destroy --version 1 its value and ciphertext are in no store file"

kc --state-dir "$S" secret destroy app/db
expect_ok '^app/db: destroyed$' "destroy of a whole secret exits 0"
kc --state-dir "$S" secret show app/db
expect_err 1 'no secret named app/db' "show of a destroyed secret exits 1"
kc_get --state-dir "$S" secret get app/db --version 2
expect_err 1 'no secret named app/db' "get of a destroyed secret exits 1"
kc --state-dir "$S" secret list app/
want "app/db still listed" out_lacks '^app/db '
t_end "a destroyed secret is not listed" "$(show_io)"

for f in "$S"/kura.db*; do
	for v in "$T/v1" "$T/v2" "$T/v3"; do
		want "destroyed value $(basename "$v") found in $(basename "$f")" \
			test -z "$(grep -a -F -l -- "$(cat "$v")" "$f")"
	done
	for c in "$ct1" "$ct2" "$ct3"; do
		want "destroyed ciphertext found in $(basename "$f")" \
			test -z "$(grep -a -F -l -- "$c" "$f")"
	done
done
t_end "after destroy no value or ciphertext of app/db is in kura.db, -wal or -shm"

kc_get --state-dir "$S" secret get io/file
expect_get "$T/vfile" "other secrets are untouched by destroy"

kc --state-dir "$S" secret put app/db --file "$T/v1"
expect_ok '^app/db: version 1$' "a destroyed name can be put again, from version 1"

# =============================================================================================
# 6. key rotate, key rekey, key files
# =============================================================================================

KS=$T/keys
kc --state-dir "$KS" init
newval "$T/k1"
newval "$T/k2a"
newval "$T/k2b"
kc --state-dir "$KS" secret put k/one --file "$T/k1"
kc --state-dir "$KS" secret put k/two --file "$T/k2a"
kc --state-dir "$KS" secret rotate k/two --file "$T/k2b"
kc --state-dir "$KS" secret put k/bin <"$T/bin"

kc --state-dir "$KS" --json key status
want_rc 0
want_json 'j["current_kek"] == 1 and [k["id"] for k in j["keks"]] == [1]'
want_json 'j["keks"][0]["versions"] == 4 and j["keks"][0]["current"] is True'
want_json 'j["secrets"] == 3 and j["versions"] == 4 and j["master"] == {"source": "file"}'
t_end "key status --json before rotate: KEK 1 wraps 4 versions" "$(show_io)"

kc --state-dir "$KS" key rotate
expect_ok '^KEK 2 is current; 4 DEKs rewrapped' "key rotate: KEK 2 current, 4 DEKs rewrapped"

kc --state-dir "$KS" --json key status
want_rc 0
want_json 'j["current_kek"] == 2 and len(j["keks"]) == 1 and j["keks"][0]["id"] == 2'
want_json 'j["keks"][0]["versions"] == 4 and j["versions"] == 4'
t_end "key status --json after rotate: exactly one KEK (2) wrapping all 4 versions" "$(show_io)"

kc --state-dir "$KS" key status
want_rc 0
want "no 'current KEK: 2'" out_has '^current KEK: 2$'
want "more than one KEK line" test "$(grep -c '^[* ] [0-9]' "$OUT")" -eq 1
want "warns of an interrupted rotation" out_lacks 'more than one KEK'
t_end "key status (text) after rotate" "$(show_io)"

kc --state-dir "$KS" --json secret show k/two
want_json '[v["kek"] for v in j["versions"]] == [2, 2]'
t_end "show after key rotate: every version under KEK 2" "$(show_io)"

check_key_values() { # ARGS...: extra kuractl options; one TAP line
	kc_get --state-dir "$KS" "$@" secret get k/one
	want "k/one: exit $RC or wrong value" out_is_file "$T/k1"
	kc_get --state-dir "$KS" "$@" secret get k/two --version 1
	want "k/two v1: exit $RC or wrong value" out_is_file "$T/k2a"
	kc_get --state-dir "$KS" "$@" secret get k/two
	want "k/two: exit $RC or wrong value" out_is_file "$T/k2b"
	kc_get --state-dir "$KS" "$@" secret get k/bin
	want "k/bin: exit $RC or wrong value" out_is_file "$T/bin"
}
check_key_values
t_end "every value (old versions too) reads back after key rotate"

kc --state-dir "$KS" --json key rotate
want_rc 0
want_json 'j == {"kek": 3, "rewrapped": 4}'
t_end "key rotate --json: {kek: 3, rewrapped: 4}" "$(show_io)"

kc --state-dir "$KS" key rekey --new-key-file "$T/newkey"
expect_ok "$T/newkey" "key rekey --new-key-file creates the key and names it"
want "new key mode $(stat -c %a "$T/newkey" 2>/dev/null)" mode_is "$T/newkey" 400
want "new key size $(stat -c %s "$T/newkey" 2>/dev/null)" size_is "$T/newkey" 32
want "new key equals the old one" test -n "$(cmp "$T/newkey" "$KS/master.key" 2>&1)"
t_end "the new key file is 32 bytes, mode 0400, not the old key"

kc_get --state-dir "$KS" secret get k/one
expect_err 1 'wrong key file or passphrase' "after rekey the old master.key exits 1"
check_key_values --key-file "$T/newkey"
t_end "after rekey every value reads with --key-file NEWPATH"

printf 'rekeyed passphrase\n' >"$T/kpass"
chmod 600 "$T/kpass"
kc --state-dir "$KS" --key-file "$T/newkey" key rekey --new-passphrase-file "$T/kpass"
expect_ok 'passphrase' "key rekey --new-passphrase-file"
check_key_values --passphrase-file "$T/kpass"
t_end "after rekey to a passphrase every value reads with --passphrase-file"
kc --state-dir "$KS" --passphrase-file "$T/kpass" --json key status
want_json 'j["master"]["source"] == "passphrase" and j["master"]["kdf"] == "argon2id13"'
t_end "key status says the master key is a passphrase" "$(show_io)"
kc_get --state-dir "$KS" --key-file "$T/newkey" secret get k/one
expect_err 1 '--passphrase-file' "after rekey to a passphrase the key file exits 1"

kc --state-dir "$KS" --passphrase-file "$T/kpass" key rekey --new-key-file "$T/key3"
expect_ok "$T/key3" "key rekey from a passphrase back to a new key file"
check_key_values --key-file "$T/key3"
t_end "after rekey back every value reads with the new key file"
kc_get --state-dir "$KS" --passphrase-file "$T/kpass" secret get k/one
want "exit status $RC, expected 1 or 2" test "$RC" -eq 1 -o "$RC" -eq 2
want "message does not say the store uses a key file" err_has 'not a passphrase'
t_end "after rekey back the passphrase is refused" "$(show_io)"

cp "$T/key3" "$T/loosekey"
chmod 644 "$T/loosekey"
kc --state-dir "$KS" --key-file "$T/key3" key rekey --new-key-file "$T/loosekey"
expect_err 1 'chmod 400' "rekey onto an existing 0644 key file exits 1"
kc_get --state-dir "$KS" --key-file "$T/key3" secret get k/one
expect_get "$T/k1" "a refused rekey changes nothing"

kc_get --state-dir "$KS" --key-file "$T/loosekey" secret get k/one
want_rc 1
want "stderr is not one kuractl line" err_one_line
want "no chmod 400 hint" err_has 'chmod 400'
want "message does not name the file" err_has_fixed "$T/loosekey"
t_end "a key file of mode 0644 exits 1 naming it, with a chmod 400 hint" "$(show_io)"

ln -s "$T/key3" "$T/keylink"
kc_get --state-dir "$KS" --key-file "$T/keylink" secret get k/one
expect_err 1 'symbolic link' "a key file that is a symlink exits 1 saying so"

head -c 31 "$T/key3" >"$T/key31"
chmod 400 "$T/key31"
kc_get --state-dir "$KS" --key-file "$T/key31" secret get k/one
expect_err 1 '32 bytes' "a 31-byte key file exits 1 mentioning 32 bytes"
{ cat "$T/key3"; printf x; } >"$T/key33"
chmod 400 "$T/key33"
kc_get --state-dir "$KS" --key-file "$T/key33" secret get k/one
expect_err 1 '32 bytes' "a 33-byte key file exits 1 mentioning 32 bytes"

mkdir "$T/keydir"
kc_get --state-dir "$KS" --key-file "$T/keydir" secret get k/one
expect_err 1 'not a regular file' "a directory as key file exits 1"

kc_get --state-dir "$KS" --key-file "$T/nokey" secret get k/one
expect_err 1 "$T/nokey.*No such file" "a missing key file exits 1 naming it"

kc_get --state-dir "$KS" --key-file "$T/key3" --passphrase-file "$T/kpass" secret get k/one
expect_err 2 'exclude each other' "--key-file with --passphrase-file exits 2"
kc_get --state-dir "$KS" secret get k/one --passphrase-file "$T/kpass" --key-file "$T/key3"
expect_err 2 'exclude each other' "--passphrase-file with --key-file (after the command) exits 2"

# =============================================================================================
# 7. Bad state
# =============================================================================================

kc --state-dir "$T/missing" secret list
want_rc 1
want "stderr is not one kuractl line" err_one_line
want "message does not name $T/missing" err_has_fixed "$T/missing"
want "message does not suggest kuractl init" err_has 'init'
t_end "a missing state directory exits 1 naming it and suggesting init" "$(show_io)"

: >"$T/afile"
kc --state-dir "$T/afile" secret list
expect_err 1 'not a directory' "a state directory that is a file exits 1"

mkdir "$T/emptystate"
kc --state-dir "$T/emptystate" secret list
expect_err 1 "no kura store in $T/emptystate.*kuractl init" \
	"an empty state directory exits 1 suggesting kuractl init"

G=$T/garbage
kc --state-dir "$G" init
i=0
while [ $i -lt 20 ]; do
	i=$((i + 1))
	kc --state-dir "$G" secret put "g/$i" --generate 1000
done
mv "$G/kura.db" "$T/garbage.real"
head -c 8192 /dev/urandom >"$G/kura.db"
cp "$G/kura.db" "$T/garbage.copy"
for cmd in "secret list" "secret get x" "key status" "secret put x --generate 8" "key rotate"; do
	# shellcheck disable=SC2086
	kc_get --state-dir "$G" $cmd
	expect_err 4 'corrupt|not a kura store' "garbage kura.db: '$cmd' exits 4"
done
want "kuractl changed the garbage kura.db" cmp -s "$G/kura.db" "$T/garbage.copy"
t_end "kuractl leaves a garbage kura.db untouched"

rm -f "$G/kura.db"*
sqlite3 "$G/kura.db" 'CREATE TABLE t (a); INSERT INTO t VALUES (1);'
kc --state-dir "$G" secret list
expect_err 4 'not a kura store' "a SQLite file that is not a kura store exits 4"

rm -f "$G/kura.db"*
head -c $(($(stat -c %s "$T/garbage.real") / 2)) "$T/garbage.real" >"$G/kura.db"
kc_get --state-dir "$G" secret get g/20
expect_err 4 'corrupt|not a kura store' "a kura.db truncated to half: get exits 4"
kc --state-dir "$G" key status
expect_err 4 'corrupt|not a kura store' "a kura.db truncated to half: key status exits 4"

F=$T/flip
kc --state-dir "$F" init
newval "$T/fx"
newval "$T/fy"
newval "$T/fz"
newval "$T/fw"
kc --state-dir "$F" secret put app/x --file "$T/fx"
kc --state-dir "$F" secret put app/y --file "$T/fy"
kc --state-dir "$F" secret put app/z --file "$T/fz"
kc --state-dir "$F" secret put app/w --file "$T/fw"
if flip "$F/kura.db" app/x 1 value; then
	kc_get --state-dir "$F" secret get app/x
	expect_err 4 'app/x version 1 does not authenticate' \
		"a flipped ciphertext byte: get exits 4, does not authenticate"
	kc_get --state-dir "$F" --json secret get app/x
	expect_err 4 'does not authenticate' "a flipped ciphertext byte: get --json exits 4"
else
	tap_not_ok "a flipped ciphertext byte: get exits 4" "could not alter the record with sqlite3"
	tap_not_ok "a flipped ciphertext byte: get --json exits 4" "could not alter the record"
fi
kc_get --state-dir "$F" secret get app/y
expect_get "$T/fy" "other secrets still read beside an altered one"

sqlite3 "$F/kura.db" "UPDATE kv SET value = (SELECT value FROM kv WHERE key = 'version/app/y@0000000001') WHERE key = 'version/app/w@0000000001'"
kc_get --state-dir "$F" secret get app/w
expect_err 4 'app/w version 1 does not authenticate' \
	"a version record moved to another secret exits 4"

kc --state-dir "$F" secret destroy app/w
want_rc 0
t_end "a secret with a moved record can still be destroyed" "$(show_io)"
if flip "$F/kura.db" app/z 1 dek; then
	kc_get --state-dir "$F" secret get app/z
	expect_err 4 'does not authenticate' "a flipped DEK byte: get exits 4"
	kc --state-dir "$F" --json key status
	cp "$OUT" "$T/status-before"
	kc --state-dir "$F" key rotate
	expect_err 4 'DEK of app/z version 1 does not open.*nothing was changed' \
		"a flipped DEK byte: key rotate exits 4 and says nothing was changed"
	kc --state-dir "$F" --json key status
	want "status changed after a failed key rotate:
before: $(tr -d ' \n' <"$T/status-before")
after:  $(tr -d ' \n' <"$OUT")" jcheck "$OUT" \
		"(lambda a: a['keks'] == j['keks'] and a['current_kek'] == j['current_kek'])(json.load(open('$T/status-before')))"
	t_end "a failed key rotate leaves the keyring as it was (as its message says)"
	kc_get --state-dir "$F" secret get app/y
	expect_get "$T/fy" "after a failed key rotate the intact secrets still read"
else
	tap_not_ok "a flipped DEK byte: get exits 4" "could not alter the record with sqlite3"
fi

# --- read-only file system ---
if [ "$(id -u)" -ne 0 ]; then
	tap_skip "read-only state: put exits 3" "not root: cannot mount"
	tap_skip "read-only state: get still works" "not root: cannot mount"
else
	R=$T/rosrc
	kc --state-dir "$R" init
	newval "$T/rov"
	kc --state-dir "$R" secret put ro/a --file "$T/rov"
	mkdir "$T/ro"
	if mount --bind "$R" "$T/ro" 2>"$T/mount.err"; then
		MOUNTS="$T/ro $MOUNTS"
		mount -o remount,bind,ro "$T/ro" 2>>"$T/mount.err"
	fi
	if ! grep -q " $T/ro " /proc/self/mounts || touch "$T/ro/probe" 2>/dev/null; then
		why=$(tr '\n' ' ' <"$T/mount.err")
		tap_skip "read-only state: put exits 3" "no read-only bind mount: ${why:-writable}"
		tap_skip "read-only state: get still works" "no read-only bind mount: ${why:-writable}"
	else
		kc --state-dir "$T/ro" secret put ro/b --generate 8
		expect_err 3 'read-only' "read-only state: put exits 3 saying the store is read-only"
		kc_get --state-dir "$T/ro" secret get ro/a
		want_rc 0
		want "stdout differs from the value stored" out_is_file "$T/rov"
		want "no one-line warning that the read is not recorded" \
			grep -q '^kuractl: warning: .*read-only file system; this read is not recorded' "$ERR"
		t_end "read-only state: get still works, and warns that it is not recorded" "$(show_io)"
		kc --state-dir "$T/ro" secret list
		expect_ok '^ro/a ' "read-only state: list still works"
		umount "$T/ro" && MOUNTS=
	fi
fi

# --- full disk ---
if [ "$(id -u)" -ne 0 ]; then
	tap_skip "full disk: put exits 3 with no space left" "not root: cannot mount a tmpfs"
else
	D=$T/full
	mkdir "$D" "$T/fullvals"
	if ! mount -t tmpfs -o size=1m,mode=0700 kura-test "$D" 2>"$T/mount.err"; then
		tap_skip "full disk: put exits 3 with no space left" \
			"cannot mount a tmpfs: $(tr '\n' ' ' <"$T/mount.err")"
	else
		MOUNTS="$D $MOUNTS"
		kc --state-dir "$D/s" init
		want_rc 0
		t_end "full disk: init on a 1 MiB tmpfs" "$(show_io)"
		head -c 600000 /dev/zero >"$D/filler"
		i=0
		full_rc=0
		while [ $i -lt 400 ]; do
			i=$((i + 1))
			kc --state-dir "$D/s" secret put "fill/$i" --generate 4096
			if [ "$RC" -ne 0 ]; then
				full_rc=$RC
				break
			fi
			kc_get --state-dir "$D/s" secret get "fill/$i"
			want "fill/$i did not read back right after put (exit $RC)" rc_is 0
			cp "$OUT" "$T/fullvals/$i"
		done
		want "every put succeeded: the disk never filled" test "$full_rc" -ne 0
		expect_err 3 'no space left' "full disk: put $i exits 3 saying no space left"
		rm -f "$D/filler"
		kc --state-dir "$D/s" secret show "fill/$i"
		want "the failed put stored something (show exits $RC)" rc_is 1
		t_end "full disk: the failed put left no secret behind"
		n=0
		j=1
		while [ $j -lt $i ]; do
			kc_get --state-dir "$D/s" secret get "fill/$j"
			want "fill/$j: exit $RC or wrong value" out_is_file "$T/fullvals/$j"
			j=$((j + 1))
			n=$((n + 1))
		done
		want "no secret was stored before the disk filled" test "$n" -gt 0
		t_end "full disk: after freeing space all $n earlier secrets read back"
		kc --state-dir "$D/s" secret put after/full --generate 32
		expect_ok '^after/full: version 1$' "full disk: after freeing space put works again"
		kc --state-dir "$D/s" --json key status
		want_json "j['secrets'] == $i and len(j['keks']) == 1"
		t_end "full disk: status counts exactly the stored secrets" "$(show_io)"
		umount "$D" && MOUNTS=
	fi
fi

# =============================================================================================
# 8. Concurrency: key rotate while secrets are being put
# =============================================================================================

C=$T/conc
kc --state-dir "$C" init
i=0
while [ $i -lt 100 ]; do
	i=$((i + 1))
	"$K" --state-dir "$C" secret put "pre/$i" --generate 16 >/dev/null 2>>"$T/conc.err"
done
mkdir "$T/cv"
: >"$T/rotations"
(
	while [ ! -e "$T/conc.stop" ]; do
		"$K" --state-dir "$C" key rotate >>"$T/rot.out" 2>&1
		echo "$?" >>"$T/rotations"
	done
) &
BG=$!
put_fail=0
i=0
while [ $i -lt 50 ]; do
	i=$((i + 1))
	newval "$T/cv/$i"
	kc --state-dir "$C" secret put "conc/$i" --file "$T/cv/$i"
	if [ "$RC" -ne 0 ]; then
		put_fail=$((put_fail + 1))
		cat "$ERR" >>"$T/conc.err"
	fi
done
touch "$T/conc.stop"
wait "$BG"
BG=
want "$put_fail of 50 puts failed: $(head -c 500 "$T/conc.err")" test "$put_fail" -eq 0
t_end "50 puts during key rotations all exit 0"
nrot=$(grep -c '' "$T/rotations")
want "no rotation ran during the puts" test "$nrot" -gt 0
want "a rotation failed: $(grep -v 'is current' "$T/rot.out" | head -c 500)" \
	test "$(grep -c -v '^0$' "$T/rotations")" -eq 0
t_end "the concurrent key rotations ($nrot) all exit 0"
bad=0
i=0
while [ $i -lt 50 ]; do
	i=$((i + 1))
	kc_get --state-dir "$C" secret get "conc/$i"
	out_is_file "$T/cv/$i" || bad=$((bad + 1))
done
want "$bad of 50 secrets do not read back" test "$bad" -eq 0
t_end "after the race every secret put reads back its value"
kc_get --state-dir "$C" secret get pre/1
want "a secret put before the race does not read (exit $RC)" rc_is 0
t_end "after the race the older secrets still read"
kc --state-dir "$C" key rotate
kc --state-dir "$C" --json key status
want_rc 0
want_json 'len(j["keks"]) == 1 and j["keks"][0]["id"] == j["current_kek"]'
want_json 'j["keks"][0]["versions"] == j["versions"] == 150 and j["secrets"] == 150'
t_end "after the race status shows one KEK wrapping all 150 versions" "$(show_io)"

# =============================================================================================
# 9. Values never reach stdout or stderr except from `secret get`
# =============================================================================================

newval "$T/lv"
: >"$T/leak.out"
leakrun() {
	kc "$@"
	cat "$OUT" "$ERR" >>"$T/leak.out"
}
leakrun --state-dir "$S" secret put leak/a --file "$T/lv"
leakrun --state-dir "$S" --json secret put leak/b --file "$T/lv"
leakrun --state-dir "$S" secret rotate leak/a --generate 40 --printable
leakrun --state-dir "$S" --json secret rotate leak/a --file "$T/lv"
leakrun --state-dir "$S" secret show leak/a
leakrun --state-dir "$S" --json secret show leak/a
leakrun --state-dir "$S" secret list leak/
leakrun --state-dir "$S" --json secret list
leakrun --state-dir "$S" key status
leakrun --state-dir "$S" --json key status
leakrun --state-dir "$S" key rotate
leakrun --state-dir "$S" --json key rotate
leakrun --state-dir "$S" secret rollback leak/a --to 2
leakrun --state-dir "$S" secret put leak/a --file "$T/lv"
leakrun --state-dir "$S" secret destroy leak/b
kc_get --state-dir "$S" secret get leak/a
cp "$OUT" "$T/lv2"
register "$T/lv2"
want "the generated value did not read back" grep -E -q '^[A-Za-z0-9_-]{40}$' "$T/lv2"
want "the commands printed nothing at all" test -s "$T/leak.out"
want "the stored value appears in the output" \
	test -z "$(grep -a -F -- "$(cat "$T/lv")" "$T/leak.out")"
want "the generated value appears in the output" \
	test -z "$(grep -a -F -- "$(cat "$T/lv2")" "$T/leak.out")"
t_end "put/rotate/show/list/status/key rotate/rollback/destroy never print a value"

grep -v '^$' "$VALS" | sort -u >"$T/patterns"
want "fewer than 20 values registered" test "$(grep -c '' "$T/patterns")" -ge 20
lacks_values() { ! grep -a -F -q -f "$T/patterns" "$1"; }
want "a value appears in the output of a command other than secret get:
$(grep -a -F -f "$T/patterns" "$LOG" | head -c 500 | tr -c '[:print:]\n' '?')" lacks_values "$LOG"
t_end "no value ever appeared in the output of any command but secret get ($(grep -c '' "$T/patterns") values checked)"

found=
for f in $(find "$T" -name 'kura.db*' -type f); do
	if grep -a -F -q -f "$T/patterns" "$f"; then
		found="$found $f"
	fi
done
want "a plaintext value is stored in:$found" test -z "$found"
t_end "no plaintext value appears in any store file"

# --- regressions from review -----------------------------------------------------------------

R=$T/review
kc --state-dir "$R" init --max-value-size 4
expect_ok '' "a store with a 4-byte value limit"

# A value typed at a terminal over the limit: refused once, no double free.
if command -v script >/dev/null 2>&1; then
	# The input waits until kuractl has turned echo off and is reading.
	{ sleep 1; printf 'hello\n\004\004'; } |
		script -qec "$K --state-dir $R secret put tty/x" /dev/null >"$T/tty.out" 2>&1
	RC=$?
	want "exit status $RC, expected 1 (a crash is 139 or 134)" rc_is 1
	want "no message about the limit" grep -q 'limit' "$T/tty.out"
	t_end "an oversized value typed at a terminal is refused cleanly" "$(cat "$T/tty.out")"

	printf 'pw\n\004' | script -qec "$K --state-dir $R --passphrase-file - key status" \
		/dev/null >"$T/tty.out" 2>&1
	RC=$?
	want "exit status $RC, expected 2" rc_is 2
	want "no message about the terminal" grep -q 'terminal' "$T/tty.out"
	t_end "a passphrase is never read from a terminal (it would echo)" "$(cat "$T/tty.out")"
else
	tap_skip "an oversized value typed at a terminal is refused cleanly" "no script(1)"
	tap_skip "a passphrase is never read from a terminal (it would echo)" "no script(1)"
fi

# Unknown options and stray arguments are not echoed past an '='.
kc --state-dir "$R" secret put x --value=hunter2hunter2
expect_err 2 "unknown option '--value'" "an unknown --opt=VALUE is named without its value"
want "the value after '=' was echoed" test -z "$(grep -F hunter2hunter2 "$ERR")"
t_end "nothing after '=' reaches stderr"
kc --state-dir "$R" key rotate hunter2hunter2
expect_err 2 "unexpected argument" "key rotate with a stray argument exits 2"
want "the stray argument was echoed" test -z "$(grep -F hunter2hunter2 "$ERR")"
t_end "a stray argument is not echoed"

# A FIFO where the key file should be: refused at once, never a hang.
mkfifo "$T/fifo.key"
timeout 10 "$K" --state-dir "$R" --key-file "$T/fifo.key" secret list >"$OUT" 2>"$ERR"
RC=$?
expect_err 1 "not a regular file" "a FIFO as the key file is refused without blocking"

# The secret record is authenticated: editing which version is current is caught.
R2=$T/review2
kc --state-dir "$R2" init
newval "$T/rv1"
newval "$T/rv2"
kc --state-dir "$R2" secret put ed/x --file "$T/rv1"
kc --state-dir "$R2" secret rotate ed/x --file "$T/rv2"
_hex=$(sqlite3 "$R2/kura.db" "SELECT hex(value) FROM kv WHERE key = 'secret/ed/x'")
_new=$(python3 -c 'import sys
raw = bytes.fromhex(sys.argv[1])
assert raw.count(b"\"current\":2") == 1
sys.stdout.write(raw.replace(b"\"current\":2", b"\"current\":1").hex())' "$_hex")
sqlite3 "$R2/kura.db" "UPDATE kv SET value = X'$_new' WHERE key = 'secret/ed/x'"
kc --state-dir "$R2" secret get ed/x
expect_err 4 "does not authenticate" "an edited 'current' in a secret record exits 4"
want "the old value was served" test -z "$(grep -F -- "$(cat "$T/rv1")" "$OUT")"
t_end "and the old value is not served"

# A version of a destroyed secret, replayed into a new secret of the same name, does not open.
newval "$T/rv3"
newval "$T/rv4"
kc --state-dir "$R2" secret put re/x --file "$T/rv3"
_old=$(sqlite3 "$R2/kura.db" "SELECT hex(value) FROM kv WHERE key = 'version/re/x@0000000001'")
kc --state-dir "$R2" secret destroy re/x
kc --state-dir "$R2" secret put re/x --file "$T/rv4"
sqlite3 "$R2/kura.db" "UPDATE kv SET value = X'$_old' WHERE key = 'version/re/x@0000000001'"
kc --state-dir "$R2" secret get re/x
expect_err 4 "does not authenticate" "a replayed version of a destroyed secret exits 4"

# Two inits at once on one directory: one wins, the other refuses, nothing is deleted.
for i in 1 2 3 4 5 6 7 8; do
	"$K" --state-dir "$T/race$i" init >/dev/null 2>&1 &
	"$K" --state-dir "$T/race$i" init >/dev/null 2>&1
	wait
done
broken=
for i in 1 2 3 4 5 6 7 8; do
	"$K" --state-dir "$T/race$i" key status >/dev/null 2>&1 || broken="$broken race$i"
done
want "unusable after concurrent inits:$broken" test -z "$broken"
t_end "concurrent inits of one directory leave one working store"

# After a rekey, the keyring wrapped under the old key is gone from the store files.
R3=$T/review3
kc --state-dir "$R3" init
_oldbox=$(sqlite3 "$R3/kura.db" "SELECT value FROM kv WHERE key = 'keyring'" |
	python3 -c 'import json, sys; print(json.load(sys.stdin)["keks"][0]["box"])')
kc --state-dir "$R3" key rekey --new-key-file "$T/review3.key"
expect_ok 'wrapped by the key' "rekey to a new key file"
want "the old wrapped KEK is still in a store file" absent_from_store "$R3" "$_oldbox"
t_end "the keyring under the retired master key leaves the store files"

# =============================================================================================
# 10. A name is a secret or a folder of secrets, never both; the client's own names are refused
# =============================================================================================

# wait_until PID CMD...: CMD succeeds within 5 s, while PID lives.
wait_until() {
	_pid=$1
	shift
	for _i in $(seq 1 100); do
		kill -0 "$_pid" 2>/dev/null || return 1
		"$@" && return 0
		sleep 0.05
	done
	return 1
}

# A real kurad on STATE and RUN_DIR: kd_start STATE RUN_DIR; its pid in KDPID.
kd_start() {
	"$KD" --state-dir "$1" --run-dir "$2" >>"$T/kurad.log" 2>&1 &
	KDPID=$!
	PIDS="$PIDS $KDPID"
	wait_until "$KDPID" kd_answers "$1" "$2"
}
kd_answers() {
	[ -S "$2/admin.sock" ] && "$K" --state-dir "$1" --run-dir "$2" key status >/dev/null 2>&1
}
kd_stop() {
	kill "$KDPID" 2>/dev/null
	wait "$KDPID" 2>/dev/null
}

printf 'v' >"$T/nv"
# tree_checks LABEL KURACTL-OPTIONS...: both orders, deeper names, destroy and reuse.
tree_checks() {
	_l=$1
	shift
	kc "$@" secret put t/db --file "$T/nv"
	expect_ok 't/db: version 1' "$_l: put t/db"
	kc "$@" secret put t/db/sub --file "$T/nv"
	expect_err 1 'cannot make t/db/sub: t/db is a secret, and a name cannot be both' \
		"$_l: t/db/sub is refused while t/db is a secret (exit 1, names t/db)"
	kc "$@" secret put t/db/sub/x --file "$T/nv"
	expect_err 1 't/db is a secret' "$_l: so is t/db/sub/x"
	kc "$@" secret put u/db/sub --file "$T/nv"
	expect_ok '' "$_l: put u/db/sub"
	kc "$@" secret put u/db --file "$T/nv"
	expect_err 1 'cannot make u/db: u/db/sub is below it' \
		"$_l: u/db is refused while u/db/sub is a secret (exit 1, names u/db/sub)"
	kc "$@" secret put u --file "$T/nv"
	expect_err 1 'cannot make u: u/db/sub is below it' "$_l: so is u"
	kc "$@" secret put u/dbx --file "$T/nv"
	expect_ok '' "$_l: u/dbx is no conflict with u/db/sub (whole segments)"
	kc "$@" secret list t/
	want_rc 0
	want "t/db/sub was listed" out_lacks 't/db/sub'
	t_end "$_l: the refused names were not stored" "$(show_io)"
	kc "$@" secret destroy t/db
	kc "$@" secret put t/db/sub --file "$T/nv"
	expect_ok '' "$_l: after destroying t/db, t/db/sub can be made"
	kc "$@" secret destroy u/db/sub
	kc "$@" secret put u/db --file "$T/nv"
	expect_ok '' "$_l: after destroying u/db/sub, u/db can be made"
	for n in '..data' '..kura_x' 'a/..data' 'app/.db.kura-tmp-0a0b0c0d' '...'; do
		kc "$@" secret put "$n" --file "$T/nv"
		expect_err 2 "segment starting with '\.\.' or holding '\.kura-tmp-'" \
			"$_l: the client's own name '$n' is refused (exit 2)"
	done
}

# race LABEL N KURACTL-OPTIONS...: N times, two writers at once put a name and one below it
# (alternately at the top of the tree and one folder down); exactly one may win each time.
race() {
	_l=$1
	_n=$2
	shift 2
	_bad=
	_i=0
	while [ "$_i" -lt "$_n" ]; do
		_i=$((_i + 1))
		if [ $((_i % 2)) -eq 0 ]; then _a=race$_i; else _a=race/$_i; fi
		"$K" "$@" secret put "$_a/sub" --file "$T/nv" >"$T/ra" 2>&1 &
		_pa=$!
		"$K" "$@" secret put "$_a" --file "$T/nv" >"$T/rb" 2>&1
		_rb=$?
		wait "$_pa"
		_ra=$?
		case $_ra$_rb in
		01) grep -q "cannot make $_a: $_a/sub is below it" "$T/rb" ||
			_bad="$_bad; $_a: $(cat "$T/rb")" ;;
		10) grep -q "cannot make $_a/sub: $_a is a secret" "$T/ra" ||
			_bad="$_bad; $_a/sub: $(cat "$T/ra")" ;;
		*) _bad="$_bad; $_a: exits $_ra and $_rb: $(cat "$T/ra" "$T/rb" | tr '\n' ' ')" ;;
		esac
	done
	want "not exactly one writer won:$(printf '%s' "$_bad" | head -c 1500)" test -z "$_bad"
	kc "$@" --json secret list
	want "the store holds a secret and one below it" python3 -c 'import json, sys
names = {s["name"] for s in json.load(open(sys.argv[1]))}
sys.exit(1 if any(n + "/sub" in names for n in names) else 0)' "$OUT"
	t_end "$_l: $_n races of two writers (a name and one below it): one wins, one exits 1" \
		"$(show_io)"
}

N=$T/names
kc --state-dir "$N" init
tree_checks offline --state-dir "$N"
race offline 40 --state-dir "$N"

if [ -z "$KD" ] || [ "$(id -u)" -ne 0 ]; then
	tap_skip "through kurad: names that are a secret and a folder" "no kurad given, or not root"
else
	N2=$T/names2
	kc --state-dir "$N2" init
	if kd_start "$N2" "$T/run2"; then
		mv "$N2/master.key" "$T/names2.key" # so only kurad can open the store
		tree_checks "through kurad" --state-dir "$N2" --run-dir "$T/run2"
		race "through kurad" 20 --state-dir "$N2" --run-dir "$T/run2"
		kd_stop
	else
		tap_not_ok "kurad starts on $N2" "$(tail -5 "$T/kurad.log")"
	fi
fi

# =============================================================================================
# 11. kuractl talks only to a kurad it can trust: root's (or its own user's) socket, in a run
#     directory nobody else can write
# =============================================================================================

FAKE=$(dirname "$SCRIPT")/fake-kurad.py
# Another user cannot run a python3 from root's home (pyenv): the system's, if there is one.
PY=$(command -v python3)
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3
FB=$(mktemp -d /tmp/kura-fake-XXXXXX) || tap_bail "mktemp failed"
chmod 755 "$FB"
cp "$FAKE" "$FB/fake-kurad.py"
chmod 644 "$FB/fake-kurad.py"
S11=$T/s11
kc --state-dir "$S11" init
newval "$T/fv"

# fake DIR [--as UID] [ARGS...]: a fake kurad at DIR/admin.sock answering for $S11 (run as UID
# with --as); everything it receives goes to DIR/received. Its pid in FPID.
fake() {
	_d=$1
	shift
	_as=
	_uid=
	if [ "${1:-}" = --as ]; then
		_uid=$2
		_as="setpriv --reuid=$2 --regid=$2 --clear-groups"
		shift 2
	fi
	rm -f "$_d/ready"
	: >"$_d/received"
	: >"$_d/ready"
	[ -n "$_uid" ] && chown "$_uid" "$_d/received" "$_d/ready"
	# shellcheck disable=SC2086 # $_as is a command prefix
	$_as "$PY" "$FB/fake-kurad.py" --socket "$_d/admin.sock" --state-dir "$S11" \
		--log "$_d/received" --ready "$_d/ready" "$@" 2>>"$T/fake.err" &
	FPID=$!
	PIDS="$PIDS $FPID"
	wait_until "$FPID" test -s "$_d/ready"
}
unfake() {
	kill "$FPID" 2>/dev/null
	wait "$FPID" 2>/dev/null
}
received_nothing() { [ ! -s "$1/received" ]; }
value_not_in() { ! grep -a -F -q -- "$(cat "$T/fv")" "$1/received"; }

# impostor LABEL DIR REGEX: root's `secret put` with --run-dir DIR exits 1 with one line matching
# REGEX, and the server at DIR received nothing at all (so not the value); so for `secret get`.
impostor() {
	kc --state-dir "$S11" --run-dir "$2" secret put imp/x --file "$T/fv"
	want "the server received the value" value_not_in "$2"
	want "the server received something: $(head -c 300 "$2/received" | tr -c '[:print:]\n' '?')" \
		received_nothing "$2"
	expect_err 1 "$3" "$1"
	kc_get --state-dir "$S11" --run-dir "$2" secret get imp/x
	want "secret get exited $RC" rc_is 1
	want "the server received something" received_nothing "$2"
	t_end "$1: the same for secret get" "$(show_io)"
}

if ! command -v setpriv >/dev/null 2>&1 || [ "$(id -u)" -ne 0 ]; then
	tap_skip "a fake kurad run by nobody gets nothing from root's kuractl" "needs root and setpriv"
else
	# The attack: nobody's server in a run directory nobody owns.
	mkdir "$FB/nobody" && chown 65534:65534 "$FB/nobody"
	if fake "$FB/nobody" --as 65534; then
		impostor "a fake kurad run by uid 65534 in a run dir it owns gets nothing from root's secret put (exit 1)" \
			"$FB/nobody" "$FB/nobody.*uid 65534"
		unfake
	else
		tap_not_ok "the fake kurad starts as uid 65534" "$(tail -3 "$T/fake.err")"
	fi

	# Root's directory, but the socket listens with nobody's credentials.
	mkdir -m 755 "$FB/rootdir"
	if fake "$FB/rootdir" --listen-as 65534; then
		impostor "a socket in root's run dir listening as uid 65534 gets nothing (exit 1)" \
			"$FB/rootdir" "admin.sock.*uid 65534"
		unfake
	else
		tap_not_ok "the fake kurad starts listening as uid 65534" "$(tail -3 "$T/fake.err")"
	fi

	# Root's server, root's run dir, but a parent anyone can write (and not sticky): anyone
	# could have put that run dir there.
	mkdir "$FB/open" && chmod 777 "$FB/open" && mkdir -m 755 "$FB/open/run"
	if fake "$FB/open/run"; then
		impostor "a run dir under a parent writable by others (mode 0777) is refused (exit 1)" \
			"$FB/open/run" "$FB/open.*writable by others"
		unfake
	else
		tap_not_ok "the fake kurad starts in $FB/open/run" "$(tail -3 "$T/fake.err")"
	fi
	mkdir "$FB/grp" && chgrp 65534 "$FB/grp" && chmod 775 "$FB/grp" &&
		mkdir -m 755 "$FB/grp/run"
	if fake "$FB/grp/run"; then
		impostor "a run dir under a group-writable parent is refused (exit 1)" \
			"$FB/grp/run" "$FB/grp.*writable by others"
		unfake
	fi

	# A sticky, root-owned parent (as /tmp) is fine when the run dir is root's ...
	mkdir "$FB/sticky" && chmod 1777 "$FB/sticky" && mkdir -m 755 "$FB/sticky/run"
	if fake "$FB/sticky/run"; then
		kc --state-dir "$S11" --run-dir "$FB/sticky/run" secret put imp/ok --file "$T/fv"
		want_rc 0
		want "the trusted server was not asked" grep -q 'POST /v1/op/secret.write' \
			"$FB/sticky/run/received"
		t_end "root's server in root's run dir under a sticky root-owned parent is used" \
			"$(show_io)"
		unfake
	fi
	# ... but not when another user made it.
	mkdir -m 755 "$FB/sticky/theirs" && chown 65534:65534 "$FB/sticky/theirs"
	if fake "$FB/sticky/theirs" --as 65534; then
		impostor "nobody's run dir under a sticky parent is refused (exit 1)" \
			"$FB/sticky/theirs" "owned by uid 65534"
		unfake
	fi

	# A symlink to nobody's run dir is no way around it.
	ln -s "$FB/nobody" "$FB/link-nobody"
	if fake "$FB/nobody" --as 65534; then
		impostor "a symlink to nobody's run dir is refused (exit 1)" "$FB/link-nobody" \
			"owned by uid 65534"
		unfake
	fi

	# A dead socket in a trusted directory, or no run dir at all: kuractl works offline.
	kc --state-dir "$S11" --run-dir "$FB/rootdir" secret list
	expect_ok '' "a run dir with a dead socket: kuractl works on the state directly"
	kc --state-dir "$S11" --run-dir "$FB/none" secret list
	expect_ok '' "no run dir: kuractl works on the state directly"
	# whois asks the socket too.
	if fake "$FB/nobody" --as 65534; then
		kc whois 1 --run-dir "$FB/nobody"
		want_rc 1
		want "whois did not refuse nobody's server: $(cat "$ERR")" err_has 'uid 65534'
		want "the server received something" received_nothing "$FB/nobody"
		t_end "whois refuses a fake kurad run by uid 65534 (exit 1)" "$(show_io)"
		unfake
	fi
fi

# And the real kurad, in a run dir under $T (mktemp, under /tmp): found and used, as before.
if [ -n "$KD" ] && [ "$(id -u)" -eq 0 ]; then
	S12=$T/s12
	kc --state-dir "$S12" init
	if kd_start "$S12" "$T/run12"; then
		mv "$S12/master.key" "$T/s12.key"
		kc --state-dir "$S12" --run-dir "$T/run12" secret put real/x --file "$T/fv"
		expect_ok 'real/x: version 1' "the real kurad in $T/run12 is trusted and used"
		kd_stop
	else
		tap_not_ok "kurad starts on $S12" "$(tail -5 "$T/kurad.log")"
	fi
fi

# =============================================================================================
# 12. Strings from runtimes, image authors and peers reach the terminal escaped
# =============================================================================================

# no_raw_controls FILE [colour]: no C0 control but newline and CR (with colour: but the table's
# red), no DEL, no C1 (U+0080-U+009F), no bidi control (U+202A-U+202E, U+2066-U+2069).
no_raw_controls() {
	python3 -c 'import sys
b = open(sys.argv[1], "rb").read()
if len(sys.argv) > 2:
    b = b.replace(b"\x1b[1;31m", b"").replace(b"\x1b[0m", b"")
t = b.decode("utf-8", "replace")
bad = [c for c in t if (ord(c) < 0x20 and c not in "\n\r") or 0x7f <= ord(c) <= 0x9f
       or 0x202a <= ord(c) <= 0x202e or 0x2066 <= ord(c) <= 0x2069]
sys.exit(1 if bad else 0)' "$@"
}
ascii_only() { ! LC_ALL=C grep -q -P '[^\x0a\x20-\x7e]' "$@"; }
# The same for what script(1) recorded from a terminal (its lines end in CR LF).
ascii_only_tty() { ! LC_ALL=C grep -q -P '[^\x0a\x0d\x20-\x7e]' "$@"; }

# whois: a fake kurad (root's, so trusted) hands out an identity full of control characters.
if [ "$(id -u)" -eq 0 ]; then
	mkdir -p -m 755 "$FB/whois"
	cat >"$FB/whois.json" <<'JSON'
{"identity": {"host": false, "runtime": "docker\u009b31m", "container_id": "abc\u001b[2J",
 "name": "web\u0085evil", "image_id": "sha256:\u202eevil", "uid": 0,
 "repo_digests": ["repo@sha256:\u009b1m"],
 "labels": {"csi": "\u009b31mred", "nel": "a\u0085b", "bidi": "x\u202ey\u2066z",
            "k\u001b]0;title\u0007": "v\u007f"}},
 "readable": ["app/\u009bx"], "grants": ["g\u0085"]}
JSON
	chmod 644 "$FB/whois.json"
	if fake "$FB/whois" --whois "$FB/whois.json"; then
		kc whois 1 --run-dir "$FB/whois"
		want_rc 0
		want "whois printed a raw control character: $(od -c "$OUT" | head -20)" \
			no_raw_controls "$OUT"
		want "C1 CSI is not shown as \\u{9b}" grep -q -F 'label:        csi=\u{9b}31mred' "$OUT"
		want "NEL is not shown as \\u{85}" grep -q -F 'nel=a\u{85}b' "$OUT"
		want "bidi controls are not shown escaped" grep -q -F 'bidi=x\u{202e}y\u{2066}z' "$OUT"
		want "ESC, BEL and DEL are not shown as \\xNN" \
			grep -q -F 'k\x1b]0;title\x07=v\x7f' "$OUT"
		want "the container name is not escaped" grep -q -F 'web\u{85}evil' "$OUT"
		want "the runtime is not escaped" grep -q -F 'docker\u{9b}31m' "$OUT"
		want "the container ID is not escaped" grep -q -F 'abc\x1b[2J' "$OUT"
		want "the image is not escaped" grep -q -F 'sha256:\u{202e}evil' "$OUT"
		want "a digest is not escaped" grep -q -F 'repo@sha256:\u{9b}1m' "$OUT"
		want "a readable name is not escaped" grep -q -F 'app/\u{9b}x' "$OUT"
		want "a grant is not escaped" grep -q -F 'g\u{85}' "$OUT"
		t_end "whois escapes C0, DEL, C1 and bidi controls in every string kurad relays" \
			"$(show_io)"
		kc --json whois 1 --run-dir "$FB/whois"
		want_rc 0
		want "whois --json is not ASCII: $(od -c "$OUT" | head -5)" ascii_only "$OUT"
		want_json 'j["identity"]["labels"]["csi"] == "\u009b31mred"'
		t_end "whois --json is ASCII (escaped as JSON), and the same strings" "$(show_io)"
		unfake
	fi
fi

# Audit records holding such strings: a name (refused, but recorded) offline and through kurad.
S13=$T/s13
kc --state-dir "$S13" init
c1=$(printf 'c1/\302\23331m')
nel=$(printf 'nel/a\302\205b')
bidi=$(printf 'bidi/x\342\200\256y')
esc=$(printf 'esc/\033[2J')
for n in "$c1" "$nel" "$bidi" "$esc"; do
	"$K" --state-dir "$S13" secret get "$n" >/dev/null 2>&1
done
"$K" --state-dir "$S13" audit --json >"$OUT" 2>"$ERR"
RC=$?
want_rc 0
want "no record of the refused gets" out_has 'secret-get'
want "the audit log holds a non-ASCII or control byte: $(LC_ALL=C grep -h -P '[^\x0a\x20-\x7e]' \
	"$S13"/audit/*.jsonl | od -c | head -8)" ascii_only "$S13"/audit/*.jsonl
want "the C1 name is not recorded as \\u009b" grep -q -i -F '"secret":"c1/\u009b31m"' "$OUT"
want "the bidi name is not recorded as \\u202e" grep -q -i -F '"secret":"bidi/x\u202ey"' "$OUT"
t_end "audit records are ASCII on disk (C1, NEL, bidi, ESC as JSON escapes)" "$(show_io)"
kc audit verify --dir "$S13/audit"
want_rc 0
t_end "and the log still verifies" "$(show_io)"

if command -v script >/dev/null 2>&1; then
	# tty_run FILE CMD...: CMD on a terminal (script(1)), its output in FILE.
	tty_run() {
		_f=$1
		shift
		script -qec "$*" /dev/null >"$_f" 2>&1
	}
	tty_run "$T/tty.audit" "$K --state-dir $S13 audit"
	want "the table printed a raw control: $(od -c "$T/tty.audit" | head -12)" \
		no_raw_controls "$T/tty.audit" colour
	want "the C1 name is not shown as \\u{9b}" grep -q -F 'c1/\u{9b}31m' "$T/tty.audit"
	want "NEL is not shown as \\u{85}" grep -q -F 'nel/a\u{85}b' "$T/tty.audit"
	want "the bidi name is not shown as \\u{202e}" grep -q -F 'bidi/x\u{202e}y' "$T/tty.audit"
	want "ESC is not shown as \\x1b" grep -q -F 'esc/\x1b[2J' "$T/tty.audit"
	t_end "kuractl audit on a terminal: every string escaped" "$(head -c 1500 "$T/tty.audit")"

	tty_run "$T/tty.stats" "$K --state-dir $S13 audit stats"
	want "stats printed a raw control: $(od -c "$T/tty.stats" | head -12)" \
		no_raw_controls "$T/tty.stats"
	want "stats does not show the C1 name escaped" grep -q -F 'c1/\u{9b}31m' "$T/tty.stats"
	want "stats does not show the bidi name escaped" grep -q -F 'bidi/x\u{202e}y' "$T/tty.stats"
	t_end "kuractl audit stats: every string escaped" "$(head -c 1500 "$T/tty.stats")"
	"$K" --state-dir "$S13" audit stats >"$T/stats.pipe" 2>&1
	want "piped stats printed a raw control" no_raw_controls "$T/stats.pipe"
	t_end "kuractl audit stats into a pipe: escaped too (it is for people)"

	tty_run "$T/tty.json" "$K --state-dir $S13 audit --json"
	want "audit --json on a terminal is not ASCII: $(od -c "$T/tty.json" | head -5)" \
		ascii_only_tty "$T/tty.json"
	want "audit --json on a terminal shows no record" grep -q '"event":"secret-get"' \
		"$T/tty.json"
	t_end "kuractl audit --json on a terminal: ASCII lines"

	# A log from before records were ASCII-only holds the raw bytes: shown escaped all the same.
	cp -a "$S13/audit" "$T/oldlog"
	python3 -c 'import sys, glob
for f in glob.glob(sys.argv[1] + "/*.jsonl"):
    b = open(f, "rb").read()
    for e, raw in ((b"\\u009B", "\u009b"), (b"\\u0085", "\u0085"), (b"\\u202E", "\u202e")):
        b = b.replace(e, raw.encode())
    open(f, "wb").write(b)' "$T/oldlog"
	want "the old-style log holds no raw C1" grep -q "$(printf '\302\233')" "$T"/oldlog/*.jsonl
	tty_run "$T/tty.old" "$K audit --dir $T/oldlog"
	want "the table of an old log printed a raw control: $(od -c "$T/tty.old" | head -12)" \
		no_raw_controls "$T/tty.old" colour
	want "the old C1 name is not shown as \\u{9b}" grep -q -F 'c1/\u{9b}31m' "$T/tty.old"
	tty_run "$T/tty.oldjson" "$K audit --json --dir $T/oldlog"
	want "the JSON lines of an old log on a terminal are not ASCII: $(od -c "$T/tty.oldjson" |
		head -12)" ascii_only_tty "$T/tty.oldjson"
	want "the old C1 name is not shown as the JSON escape \\u009b" \
		grep -q -F '"secret":"c1/\u009b31m"' "$T/tty.oldjson"
	"$K" audit --json --dir "$T/oldlog" >"$T/old.pipe" 2>&1
	want "piped, the JSON lines were changed" cmp -s "$T/old.pipe" "$T"/oldlog/audit-*.jsonl
	t_end "an old log holding raw C1 and bidi bytes: escaped on a terminal, unchanged in a pipe"

	# --follow: a record appended while it runs.
	(
		sleep 1
		"$K" --state-dir "$S13" secret get "$(printf 'late/\302\233x')" >/dev/null 2>&1
	) &
	tty_run "$T/tty.follow" "timeout 3 $K --state-dir $S13 audit --follow --event secret-get"
	wait
	want "follow printed a raw control: $(od -c "$T/tty.follow" | head -12)" \
		no_raw_controls "$T/tty.follow" colour
	want "the record appended while following is not shown escaped" \
		grep -q -F 'late/\u{9b}x' "$T/tty.follow"
	t_end "kuractl audit --follow on a terminal: escaped, also for new records" \
		"$(head -c 1500 "$T/tty.follow")"
else
	tap_skip "kuractl audit on a terminal: every string escaped" "no script(1)"
fi

# Through kurad: its records of admin requests are ASCII too.
if [ -n "$KD" ] && [ "$(id -u)" -eq 0 ]; then
	S14=$T/s14
	kc --state-dir "$S14" init
	if kd_start "$S14" "$T/run14"; then
		"$K" --state-dir "$S14" --run-dir "$T/run14" secret get "$c1" >/dev/null 2>&1
		"$K" --state-dir "$S14" --run-dir "$T/run14" secret get "$bidi" >/dev/null 2>&1
		kd_stop
		want "kurad's audit log holds a non-ASCII byte: $(LC_ALL=C grep -h -P \
			'[^\x0a\x20-\x7e]' "$S14"/audit/*.jsonl | od -c | head -8)" \
			ascii_only "$S14"/audit/*.jsonl
		want "kurad did not record the C1 name" grep -q -i -F 'c1/\u009b31m' "$S14"/audit/*.jsonl
		t_end "kurad's audit records are ASCII on disk"
	else
		tap_not_ok "kurad starts on $S14" "$(tail -5 "$T/kurad.log")"
	fi
fi

tap_done

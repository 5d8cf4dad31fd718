#!/bin/sh
# Injected I/O faults (issue 10), SQLite's way: every file system call that kuractl and kurad make
# for an operation is counted, then made to fail in turn (EIO, ENOSPC with a short write, EROFS;
# once, or from then on), through the LD_PRELOAD library beside this script. After each fault:
# a clear one-line error and exit 3 (or success, if the fault was absorbed), the store opens
# and holds exactly the state before or after the operation (nothing half-written, nothing
# lost), no torn key file, the audit log verifies, and once the fault clears the operation
# succeeds (kurad serves again without a restart). A fault during kurad's start-up recovery
# must stop it with a clear error, and it must start once the fault clears.
# Usage: test-faults.sh KURAD KURACTL LIBFAULT FAULT_CHECK AUDIT_GEN
set -u
[ $# -eq 5 ] || { echo "usage: $0 KURAD KURACTL LIBFAULT FAULT_CHECK AUDIT_GEN" >&2; exit 2; }
KURAD=$1
K=$2
LIB=$3
CHECK=$4
AUDIT_GEN=$5
. "$(dirname "$0")/../cli/tap.sh"

[ "$(id -u)" -eq 0 ] || { echo "1..0 # SKIP kurad runs as root"; exit 0; }
command -v curl >/dev/null 2>&1 || tap_bail "curl is needed"
for f in "$KURAD" "$K" "$CHECK" "$AUDIT_GEN"; do
	[ -x "$f" ] || tap_bail "no executable $f"
done
[ -f "$LIB" ] || tap_bail "no fault library $LIB"

# On tmpfs when there is one: fsync is then free, and a thousand cases take seconds, not minutes.
T=$(mktemp -d /dev/shm/kura-fault-XXXXXX 2>/dev/null) || T=$(mktemp -d /tmp/kura-fault-XXXXXX)
PID=
cleanup() {
	[ -n "$PID" ] && kill -9 "$PID" 2>/dev/null
	[ -f "$T/kurad.log" ] && cp "$T/kurad.log" /tmp/kura-fault-kurad-last.log
	rm -rf "$T"
}
trap cleanup EXIT
W=$T/w        # the state each case works on, a fresh copy of a template
R=$T/run      # kurad's run directory
AK=$T/audit.key
CTL=$T/control
TRACE=$T/trace

# --- helpers ---------------------------------------------------------------------------------

# faulted SPEC CMD...: CMD under the fault library with SPEC; trace in $TRACE.
faulted() {
	_spec=$1
	shift
	: >"$TRACE"
	LD_PRELOAD=$LIB KURA_FAULT=$_spec KURA_FAULT_TRACE=$TRACE "$@"
}

# set_fault SPEC: what a running kurad fails from now on (counted from zero); "off" clears it.
set_fault() {
	printf '%s\n' "$1" >"$CTL.new" && mv "$CTL.new" "$CTL"
	: >"$TRACE"
}

# digest DIR: the store's state (without the audit line) into $T/digest, the audit verdict
# into $T/audit; fault-check's exit status.
digest() {
	"$CHECK" "$1" "$AK" "$1/master.key" "$1/new.key" >"$T/digest.all" 2>&1
	_digest_rc=$?
	# Templates start at KEK 1; a rotation run again after a fault makes the next id, so any
	# id past 1 is "rotated".
	grep -v '^audit ' "$T/digest.all" |
		sed 's/^\(keks [0-9]*\) current \([2-9]\|[1-9][0-9][0-9]*\)$/\1 current rotated/' \
			>"$T/digest"
	grep '^audit ' "$T/digest.all" >"$T/audit" || echo "audit missing" >"$T/audit"
	return $_digest_rc
}

audit_ok() { grep -q '^audit ok' "$T/audit"; }
# A log whose last line lost its end (a short write that could not be cut back): only the next
# writer can repair it, and must (kura_audit_open cuts it).
audit_torn() { grep -q '^audit broken truncated' "$T/audit"; }

# The call a trace line names: "OP PATH CALLER", with the work directory shortened.
site_of() { sed -n "${1}p" "$2" | awk '{ print $3, $5, $6 }' | sed "s|$T/||g"; }

# area PATH: which part of kura a call belongs to. Key files are written unnamed (O_TMPFILE,
# "#N (deleted)" in /proc) and then linked; the state directory's own calls are its creation and
# the fsyncs that make new names in it durable.
area_of() {
	case $1 in
	*/kura.db*) echo store ;;
	*/audit/* | */audit) echo audit ;;
	*.key | *"(deleted)" | */ak-*) echo keys ;;
	*) echo state-directory ;;
	esac
}

# The faults to try at a call: EIO once (a transient error: what follows must cope), and one
# that lasts, as a disk that has filled up (a write then also tears: half of it reaches the
# file), gone bad (EIO) or gone read-only (EROFS) gives: cleanups fail too.
faults_for() {
	case $1 in
	read | pread | fsync | fdatasync) echo "errno=EIO:mode=once errno=EIO:mode=persist" ;;
	write | pwrite | writev) echo "errno=EIO:mode=once errno=ENOSPC:mode=persist:partial" ;;
	*) echo "errno=EIO:mode=once errno=EROFS:mode=persist" ;;
	esac
}

# pick_calls TRACE: the numbers of the calls to fail. A run of the same call from the same site
# on the same file (SQLite initialising its shared memory page by page) is failed at its first
# and last call; every other call is failed.
pick_calls() {
	awk '{ site[NR] = $3 " " $5 " " $6 } END {
		for (i = 1; i <= NR; i++)
			if (i == 1 || i == NR || site[i] != site[i - 1] || site[i] != site[i + 1])
				print i
	}' "$1"
}

# keys_whole DIR: every key file there is whole: 32 bytes, mode 0400.
keys_whole() {
	for _k in "$1"/*.key; do
		[ -e "$_k" ] || continue
		[ "$(stat -c '%s %a' "$_k")" = "32 400" ] || return 1
	done
	return 0
}

# one_line FILE: kuractl's refusal is exactly one line naming what went wrong.
one_line() {
	[ "$(wc -l <"$1")" -eq 1 ] && grep -q '^kuractl: ..........' "$1"
}

# FAULT_ONLY=REGEX runs only the sweeps whose label matches (while working on one).
selected() { [ -z "${FAULT_ONLY:-}" ] || echo "$1" | grep -qE "$FAULT_ONLY"; }

# settled WANT: after a case, the state is WANT's (the state before or after the operation) and
# the chain verifies; else the case fails.
settled() {
	digest "$W"
	cmp -s "$T/digest" "$1" && audit_ok && return 0
	fail_case "$_case; afterwards: $(diff "$1" "$T/digest" | head -4) $(cat "$T/audit")"
	return 1
}

# take_count: the trace of an operation run with nothing failing, counted into _n calls and
# _distinct sites (the calls to fail are in $T/picked).
take_count() {
	cp "$TRACE" "$T/calls"
	_n=$(wc -l <"$T/calls")
	count_sites "$T/calls"
	_distinct=$DISTINCT
}

# each_fault CASE ARGS...: CASE ARGS once per fault to try at each call to fail, with _i (the
# call), _site ("OP PATH CALLER") and _spec (the fault) set; CASE returns to go on.
each_fault() {
	_body=$1
	shift
	for _i in $(cat "$T/picked"); do
		_site=$(site_of "$_i" "$T/calls")
		for _f in $(faults_for "${_site%% *}"); do
			_spec=$(echo "$_f" | tr ':' ' ')
			N_CASES=$((N_CASES + 1))
			"$_body" "$@"
		done
	done
}

SITES_TOTAL=0
CASES_TOTAL=0
: >"$T/areas"
: >"$T/area-calls"

# Per sweep: FAILS holds the first few failures, the counters the outcomes.
sweep_begin() {
	FAILS=
	NFAIL=0
	N_ABSORBED=0
	N_REFUSED=0
	N_DONE=0
	N_PARTIAL=0
	N_CASES=0
	DONE_EX=
	PARTIAL_WHAT="left resumable (key rotate's first phase)"
	SWEEP_T0=$(date +%s.%N)
}

# An operation that was done although it reported a failure: shown, to judge by its message.
done_case() {
	N_DONE=$((N_DONE + 1))
	[ -n "$DONE_EX" ] || DONE_EX="$1: $(head -c 200 "$T/err")"
}

fail_case() {
	NFAIL=$((NFAIL + 1))
	[ "$NFAIL" -le 6 ] && FAILS="${FAILS}${FAILS:+
}$1"
	return 0
}

# Record the sites of a counted trace: distinct (op, caller) pairs per area.
# count_sites TRACE: the number of distinct sites in a counted trace into DISTINCT; notes each
# call that will be failed (pick_calls) under its area, and how many into PICKED.
count_sites() {
	while read -r _cs_pid _cs_n _cs_op _cs_res _cs_path _cs_caller; do
		echo "$(area_of "$_cs_path") $_cs_op $_cs_caller"
	done <"$1" >"$T/sites.all"
	pick_calls "$1" >"$T/picked"
	PICKED=$(wc -l <"$T/picked")
	awk 'NR == FNR { want[$1] = 1; next } want[FNR] { print $1 }' "$T/picked" "$T/sites.all" \
		>>"$T/area-calls"
	sort -u "$T/sites.all" >"$T/sites.distinct"
	cat "$T/sites.distinct" >>"$T/areas"
	DISTINCT=$(wc -l <"$T/sites.distinct")
}

sweep_end() {
	_label=$1
	_n=$2
	_distinct=$3
	SITES_TOTAL=$((SITES_TOTAL + PICKED))
	CASES_TOTAL=$((CASES_TOTAL + N_CASES))
	if [ "$NFAIL" -eq 0 ]; then
		tap_ok "$_label: a fault at each of $PICKED of its $_n calls ($_distinct sites), $N_CASES cases"
	else
		tap_not_ok "$_label: $NFAIL of $N_CASES cases failed" "$FAILS"
	fi
	tap_diag "$_label: $(awk -v a="$(date +%s.%N)" -v b="$SWEEP_T0" 'BEGIN { printf "%.1f", a - b }') s; $_n calls counted, $PICKED failed in turn, $_distinct distinct sites; outcomes: $N_ABSORBED absorbed (exit 0), $N_REFUSED refused with nothing changed, $N_DONE done but reported failed, $N_PARTIAL $PARTIAL_WHAT"
	[ -z "$DONE_EX" ] || tap_diag "$_label: done but reported failed, e.g. $DONE_EX"
}

# --- templates -------------------------------------------------------------------------------

printf 'value-a-1' >"$T/va1"
printf 'value-b-1' >"$T/vb1"
printf 'value-b-2' >"$T/vb2"
printf 'value-c-1' >"$T/vc1"
printf 'value-new-1' >"$T/vnew"
printf 'value-a-2' >"$T/va2"
B=$T/base
{
	"$K" --state-dir "$B" init --audit-key-out "$AK" &&
		"$K" --state-dir "$B" --offline secret put app/a --file "$T/va1" &&
		"$K" --state-dir "$B" --offline secret put app/b --file "$T/vb1" &&
		"$K" --state-dir "$B" --offline secret rotate app/b --file "$T/vb2" &&
		"$K" --state-dir "$B" --offline secret put app/c --file "$T/vc1" &&
		"$K" --state-dir "$B" --offline grant 'app/*' --host --uid 0 &&
		"$K" --state-dir "$B" --offline grant app/c --host --uid 7
} >"$T/out" 2>&1 || tap_bail "cannot make the template state: $(cat "$T/out")"
REVOKE_ID=$("$K" --state-dir "$B" --offline --json grants |
	python3 -c 'import json,sys; print([g["id"] for g in json.load(sys.stdin) if g["secret"] == "app/c"][0])')
digest "$B" || tap_bail "the template does not check: $(cat "$T/digest.all")"
cp "$T/digest" "$T/before"

# A fresh copy of the template (TEMPLATE, by default the one above) for one case.
fresh() {
	rm -rf "$W"
	cp -a "${TEMPLATE:-$B}" "$W"
}

# --- offline sweeps: kuractl works on the state itself ---------------------------------------

# One case of sweep_offline (each_fault sets _i, _site, _spec).
case_offline() {
	fresh
	faulted "nth=$_i $_spec under=$W/" "$K" --state-dir "$W" --offline "$@" \
		>"$T/out" 2>"$T/err"
	_rc=$?
	_case="call $_i ($_site) $_spec: exit $_rc"
	digest "$W"
	_drc=$?
	if [ "$_rc" -ne 0 ] && [ "$_rc" -ne 3 ]; then
		fail_case "$_case, not 0 or 3: $(head -c 300 "$T/err")"
		return 0
	fi
	if [ "$_rc" -ne 0 ] && ! one_line "$T/err"; then
		fail_case "$_case, not one line: $(head -c 300 "$T/err")"
		return 0
	fi
	if ! keys_whole "$W"; then
		fail_case "$_case, a torn key file: $(ls -l "$W"/*.key 2>&1 | tr '\n' ' ')"
		return 0
	fi
	if [ "$_drc" -eq 3 ] || grep -q unopened "$T/digest"; then
		fail_case "$_case, the store does not open: $(head -3 "$T/digest.all")"
		return 0
	fi
	if ! audit_ok && ! audit_torn; then
		fail_case "$_case, the audit log: $(cat "$T/audit")"
		return 0
	fi
	if cmp -s "$T/digest" "$T/after"; then
		if [ "$_rc" -eq 0 ]; then
			N_ABSORBED=$((N_ABSORBED + 1))
		else
			done_case "$_case"
		fi
		audit_ok && return 0
		# Whoever writes next repairs a torn tail: the records stay checkable.
		"$K" --state-dir "$W" --offline secret get app/a >/dev/null 2>&1 ||
			"$K" --state-dir "$W" --key-file "$W/new.key" --offline \
				secret get app/a >/dev/null 2>&1
	elif [ "$_rc" -eq 0 ]; then
		fail_case "$_case, but the state is not the one after: $(diff "$T/after" "$T/digest" | head -5)"
		return 0
	elif cmp -s "$T/digest" "$T/before" || cmp -s "$T/digest" "$T/mid"; then
		if cmp -s "$T/digest" "$T/before"; then
			N_REFUSED=$((N_REFUSED + 1))
		else
			N_PARTIAL=$((N_PARTIAL + 1))
		fi
		"$K" --state-dir "$W" --offline "$@" >"$T/out" 2>"$T/err2"
		_rc2=$?
		if [ "$_rc2" -ne 0 ]; then
			fail_case "$_case; with the fault cleared it still fails: exit $_rc2: $(head -c 300 "$T/err2")"
			return 0
		fi
	else
		fail_case "$_case, half-written: $(diff "$T/before" "$T/digest" | head -6)"
		return 0
	fi
	settled "$T/after"
}

# sweep_offline LABEL KURACTL-ARGS...: every call kuractl makes under the state directory.
sweep_offline() {
	_label=$1
	selected "$_label" || return 0
	shift
	sweep_begin
	fresh
	"$K" --state-dir "$W" --offline "$@" >"$T/out" 2>&1 ||
		tap_bail "$_label fails without a fault: $(cat "$T/out")"
	digest "$W" || tap_bail "$_label: the state after it does not check: $(cat "$T/digest.all")"
	cp "$T/digest" "$T/after"
	# Key rotate can stop after its first phase: the new KEK current, the old one still there.
	sed 's/^keks 1 current rotated$/keks 2 current rotated/' "$T/after" >"$T/mid"

	fresh
	faulted "nth=0 under=$W/" "$K" --state-dir "$W" --offline "$@" >"$T/out" 2>&1 ||
		tap_bail "$_label fails under the fault library with no fault: $(cat "$T/out")"
	take_count

	each_fault case_offline "$@"
	sweep_end "$_label" "$_n" "$_distinct"
}

sweep_offline "offline secret put" secret put app/new --file "$T/vnew"
sweep_offline "offline secret rotate" secret rotate app/a --file "$T/va2"
sweep_offline "offline secret destroy" secret destroy app/c
sweep_offline "offline grant" grant app/a --host --uid 5
sweep_offline "offline key rotate" key rotate
sweep_offline "offline key rekey" key rekey --new-key-file "$W/new.key"


# --- init: the key files and a new state ---------------------------------------------------

# After a failed init nothing of the state may be left (the directory gone or empty, no key
# file); after a successful one, everything, with the audit key whole.
init_state() {
	if [ -e "$W/kura.db" ] || [ -e "$T/ak-init" ]; then
		"$CHECK" "$W" "$T/ak-init" "$W/master.key" >"$T/digest.all" 2>&1 || return 2
		[ "$(stat -c '%s %a' "$T/ak-init" 2>/dev/null)" = "45 400" ] || return 2
		grep -q '^keks 1 current 1$' "$T/digest.all" && grep -q '^audit ok' "$T/digest.all" ||
			return 2
		return 0
	fi
	[ ! -e "$W" ] || [ -z "$(ls -A "$W")" ] || return 2
	return 1
}

# One case of sweep_init (each_fault sets _i, _site, _spec).
case_init() {
	rm -rf "$W" "$T/ak-init"
	faulted "nth=$_i $_spec under=$T/" "$K" --state-dir "$W" init \
		--audit-key-out "$T/ak-init" >"$T/out" 2>"$T/err"
	_rc=$?
	_case="call $_i ($_site) $_spec: exit $_rc"
	init_state
	_st=$?
	if ! keys_whole "$W"; then
		fail_case "$_case, a torn key file: $(ls -l "$W"/*.key 2>&1 | tr '\n' ' ')"
		return 0
	fi
	if [ "$_rc" -eq 0 ]; then
		[ "$_st" -eq 0 ] || { fail_case "$_case, but the state is incomplete: $(ls -A "$W" 2>&1 | tr '\n' ' ') $(cat "$T/digest.all" 2>/dev/null | tr '\n' ' ')"; return 0; }
		N_ABSORBED=$((N_ABSORBED + 1))
		return 0
	fi
	if [ "$_rc" -ne 3 ] || ! one_line "$T/err"; then
		fail_case "$_case, not exit 3 with one line: $(head -c 300 "$T/err")"
		return 0
	fi
	if [ "$_st" -ne 1 ]; then
		# Only a fault that also defeated the undo (its unlink failing, as on a
		# disk gone read-only) may leave files behind: then a retry says what is
		# in the way, and works once they are removed.
		if ! grep -q ' unlink FAIL' "$TRACE"; then
			fail_case "$_case, half-made: $(ls -A "$W" "$T/ak-init" 2>&1 | tr '\n' ' ')"
			return 0
		fi
		"$K" --state-dir "$W" init --audit-key-out "$T/ak-init" >"$T/out" 2>"$T/err2"
		_rc2=$?
		if [ "$_rc2" -ne 0 ] && { [ "$_rc2" -ne 1 ] || ! one_line "$T/err2"; }; then
			fail_case "$_case, left $(ls -A "$W" | tr '\n' ' '); a retry gives exit $_rc2: $(head -c 200 "$T/err2")"
			return 0
		fi
		rm -rf "$W" "$T/ak-init"
		N_PARTIAL=$((N_PARTIAL + 1))
	else
		N_REFUSED=$((N_REFUSED + 1))
	fi
	"$K" --state-dir "$W" init --audit-key-out "$T/ak-init" >"$T/out" 2>"$T/err2"
	_rc2=$?
	init_state
	_st2=$?
	if [ "$_rc2" -ne 0 ] || [ "$_st2" -ne 0 ]; then
		fail_case "$_case; with the fault cleared init gives exit $_rc2: $(head -c 300 "$T/err2")"
	fi
}

sweep_init() {
	_label=$1
	selected "$_label" || return 0
	sweep_begin
	PARTIAL_WHAT="left files behind because the undo failed too (a retry names them)"
	rm -rf "$W" "$T/ak-init"
	faulted "nth=0 under=$T/" "$K" --state-dir "$W" init --audit-key-out "$T/ak-init" \
		>"$T/out" 2>&1 || tap_bail "init fails under the fault library: $(cat "$T/out")"
	take_count
	each_fault case_init "$@"
	sweep_end "$_label" "$_n" "$_distinct"
}

sweep_init "offline init (master.key, --audit-key-out, store, audit log)"

# --- kurad: faults in the daemon, driven through its admin API and workload socket ----------

printf 'rate = 100000\nburst = 100000\n' >"$T/kurad.conf"

start_kurad() {
	LD_PRELOAD=$LIB KURA_FAULT_CONTROL=$CTL KURA_FAULT_TRACE=$TRACE \
		"$KURAD" --state-dir "$W" --run-dir "$R" --config "${CONF:-$T/kurad.conf}" "$@" \
		>>"$T/kurad.log" 2>&1 &
	PID=$!
	KURAD_RC=
	# Ready once its start record is written (the last thing it does before serving), so
	# that record's calls never land in a case's count; or, if that record failed, once it
	# answers.
	for _j in $(seq 1 300); do
		kill -0 "$PID" 2>/dev/null || { wait "$PID"; KURAD_RC=$?; PID=; return 1; }
		set -- "$W"/audit/audit-*.jsonl
		eval "_last=\${$#}"
		tail -c 400 "$_last" 2>/dev/null |
			grep -q "\"event\":\"start\".*\"pid\":$PID,[^{]*\"}\$" && return 0
		# Started, but its start record could not be written (it says so once).
		grep -q 'cannot write the audit log' "$T/kurad.log" && return 0
		[ "$_j" -gt 30 ] && curl -s -o /dev/null --max-time 1 \
			--unix-socket "$R/admin.sock" http://kura/v1/status && return 0
		sleep 0.01
	done
	kill -9 "$PID"
	wait "$PID"
	KURAD_RC=timeout
	PID=
	return 1
}

stop_kurad() {
	[ -n "$PID" ] || return 0
	kill "$PID" 2>/dev/null
	wait "$PID"
	KURAD_RC=$?
	PID=
	return $KURAD_RC
}

# fetch: GET app/a over the workload socket (granted to uid 0 on the host); status in CODE.
fetch() {
	CODE=$(curl -s -o "$T/body" -w '%{http_code}' --max-time 10 \
		--unix-socket "$R/workload.sock" http://kura/v1/secrets/app/a) || CODE=000
}

# kurad_op ARGS: ARGS is "fetch" or kuractl arguments, run against the kurad; status in OP_RC
# (for a fetch: 0 for 200, 3 for 503, else the HTTP code).
kurad_op() {
	if [ "$1" = fetch ]; then
		fetch
		case $CODE in
		200) OP_RC=0 ;;
		503) OP_RC=3; grep -q '"audit_unavailable"' "$T/body" && echo "kuractl: 503 audit_unavailable" >"$T/err" ;;
		*) OP_RC=$CODE ;;
		esac
		return
	fi
	"$K" --state-dir "$W" --run-dir "$R" "$@" >"$T/out" 2>"$T/err"
	OP_RC=$?
}

# One case of sweep_kurad (each_fault sets _i, _site, _spec).
case_kurad() {
	_case="call $_i ($_site) $_spec"
	fresh
	: >"$T/kurad.log"
	if ! start_kurad; then
		fail_case "$_case: kurad does not start: $(tail -2 "$T/kurad.log")"
		return 0
	fi
	set_fault "nth=$_i $_spec under=$_under"
	kurad_op "$@"
	_rc=$OP_RC
	_case="$_case: exit $_rc"
	# While a persistent fault lasts, a fetch is refused too (if the fault is
	# in the audit log) or served (if it is in the store, which a fetch only
	# reads from memory): never anything else.
	fetch
	_during=$CODE
	set_fault off
	if ! kill -0 "$PID" 2>/dev/null; then
		fail_case "$_case: kurad died: $(tail -2 "$T/kurad.log")"
		PID=
		return 0
	fi
	if [ "$_during" != 200 ] && [ "$_during" != 503 ]; then
		fail_case "$_case: a fetch during the fault got $_during"
	fi
	if [ "$_rc" -ne 0 ] && [ "$_rc" -ne 3 ]; then
		fail_case "$_case, not 0 or 3: $(head -c 300 "$T/err")"
		stop_kurad
		return 0
	fi
	if [ "$_rc" -ne 0 ] && ! one_line "$T/err"; then
		fail_case "$_case, not one line: $(head -c 300 "$T/err")"
		stop_kurad
		return 0
	fi
	# A lasting fault in the audit log: secrets are refused meanwhile.
	case "$_site $_spec" in
	*/audit/*persist*)
		[ "$_during" = 503 ] ||
			fail_case "$_case: a fetch during the audit fault got $_during" ;;
	esac
	# The fault is gone: the operation goes through if it was not done, at once
	# (nothing else written in between), and kurad serves again, without a
	# restart.
	_retried=
	if [ "$_rc" -ne 0 ] && [ "$1" != fetch ]; then
		digest "$W"
		if ! cmp -s "$T/digest" "$T/after"; then
			kurad_op "$@"
			_retried=$OP_RC
		fi
	fi
	fetch
	if [ "$CODE" != 200 ]; then
		fail_case "$_case; with the fault cleared a fetch gets $CODE $(head -c 200 "$T/body")"
		stop_kurad
		return 0
	fi
	if ! stop_kurad; then
		fail_case "$_case; kurad exited $KURAD_RC when stopped: $(tail -2 "$T/kurad.log")"
		return 0
	fi
	if [ -n "$_retried" ] && [ "$_retried" -ne 0 ]; then
		fail_case "$_case; with the fault cleared it still fails: exit $_retried: $(head -c 300 "$T/err")"
		return 0
	fi
	settled "$T/after" || return 0
	if [ "$_rc" -eq 0 ]; then
		N_ABSORBED=$((N_ABSORBED + 1))
	elif [ -n "$_retried" ] || [ "$1" = fetch ]; then
		N_REFUSED=$((N_REFUSED + 1))
	else
		done_case "$_case"
	fi
}

# sweep_kurad LABEL UNDER ARGS...: every call kurad makes under UNDER for one operation.
sweep_kurad() {
	_label=$1
	selected "$_label" || return 0
	_under=$2
	shift 2
	sweep_begin
	: >"$T/kurad.log"
	fresh
	rm -f "$CTL"
	start_kurad || tap_bail "$_label: kurad does not start: $(tail -3 "$T/kurad.log")"
	kurad_op "$@"
	[ "$OP_RC" -eq 0 ] || tap_bail "$_label fails without a fault: $(cat "$T/err")"
	stop_kurad
	digest "$W" || tap_bail "$_label: the state after it does not check: $(cat "$T/digest.all")"
	cp "$T/digest" "$T/after"
	sed 's/^keks 1 current rotated$/keks 2 current rotated/' "$T/after" >"$T/mid"

	fresh
	start_kurad || tap_bail "$_label: kurad does not start: $(tail -3 "$T/kurad.log")"
	set_fault "nth=0 under=$_under"
	kurad_op "$@"
	take_count
	set_fault off
	stop_kurad
	[ "$_n" -gt 0 ] || tap_bail "$_label: no call counted"

	each_fault case_kurad "$@"
	sweep_end "$_label" "$_n" "$_distinct"
}

sweep_kurad "kurad secret put" "$W/" secret put app/new --file "$T/vnew"
sweep_kurad "kurad secret destroy" "$W/" secret destroy app/c
sweep_kurad "kurad key rotate" "$W/" key rotate

# --- the audit log through kurad: start-up recovery, epoch evolution, rotation, appends -----

# in_epoch DIR: records of the current key epoch in the log (after the last closing record).
in_epoch() {
	python3 - "$1/audit" <<'PY'
import glob, json, os, sys
n = 0
for f in sorted(glob.glob(os.path.join(sys.argv[1], "audit-*.jsonl"))):
    for line in open(f):
        if not line.endswith("\n"):
            continue
        n = 0 if "next_epoch" in json.loads(line) else n + 1
print(n)
PY
}

# A log a kurad must recover at start: its current file past 1 MiB (the start record rotates
# it), the state two records behind the log (a crash before the state was saved, the normal
# case), a partial last line (a crash mid-write), and the epoch due (the start record evolves
# the key first).
TA=$T/template-audit
cp -a "$B" "$TA"
"$AUDIT_GEN" "$TA/audit" 3000 --file-bytes 67108864 --epoch-records 1000 >"$T/out" 2>&1 ||
	tap_bail "audit-gen: $(cat "$T/out")"
cp "$TA/audit/state" "$T/state.old"
"$K" --state-dir "$TA" --offline secret get app/a >/dev/null 2>&1 &&
	"$K" --state-dir "$TA" --offline secret get app/b >/dev/null 2>&1 ||
	tap_bail "cannot add records to the audit template"
cp "$T/state.old" "$TA/audit/state"
LAST=$(ls "$TA/audit" | grep '^audit-' | tail -1)
printf '{"detail":"offline","epoch":' >>"$TA/audit/$LAST"
[ "$(stat -c %s "$TA/audit/$LAST")" -gt 1048576 ] || tap_bail "the audit template is too small"
EPOCH_START=$(($(in_epoch "$TA") + 1))
printf 'rate = 100000\nburst = 100000\naudit-fsync = yes\naudit-max-file-mb = 1\naudit-epoch-records = %s\n' \
	"$EPOCH_START" >"$T/kurad-start.conf"

# One case of sweep_start (each_fault sets _i, _site, _spec).
case_start() {
	_case="call $_i ($_site) $_spec"
	fresh
	: >"$T/kurad.log"
	set_fault "nth=$_i $_spec under=$W/audit/"
	if start_kurad; then
		# Started despite it: then it works, or refuses secrets (503) until
		# the fault clears, and serves them afterwards.
		fetch
		_during=$CODE
		set_fault off
		fetch
		if [ "$_during" != 200 ] && [ "$_during" != 503 ] || [ "$CODE" != 200 ]; then
			fail_case "$_case: started, fetches got $_during then $CODE"
			stop_kurad
			return 0
		fi
		stop_kurad || { fail_case "$_case: kurad exited $KURAD_RC"; return 0; }
		N_ABSORBED=$((N_ABSORBED + 1))
	else
		set_fault off
		_err=$(grep -c '^kurad: error: ' "$T/kurad.log")
		if [ "$KURAD_RC" -ne 3 ] || [ "$_err" -ne 1 ]; then
			fail_case "$_case: kurad exited ${KURAD_RC:-?} with $_err error lines: $(tail -3 "$T/kurad.log" | tr '\n' ' ')"
			return 0
		fi
		: >"$T/kurad.log"
		if ! start_kurad; then
			fail_case "$_case: with the fault cleared kurad does not start: $(tail -2 "$T/kurad.log")"
			return 0
		fi
		fetch
		stop_kurad
		if [ "$CODE" != 200 ]; then
			fail_case "$_case: restarted without the fault, a fetch got $CODE"
			return 0
		fi
		N_REFUSED=$((N_REFUSED + 1))
	fi
	settled "$T/before"
}

# sweep_start LABEL: every call kurad makes in the audit log while it starts (its store opens
# as kuractl's does, and the offline sweeps failed each of those calls).
sweep_start() {
	_label=$1
	selected "$_label" || return 0
	sweep_begin
	: >"$T/kurad.log"
	fresh
	set_fault "nth=0 under=$W/audit/"
	start_kurad || tap_bail "$_label: kurad does not start: $(tail -3 "$T/kurad.log")"
	take_count
	set_fault off
	stop_kurad
	grep -q ' rename .*/audit/state' "$T/calls" && grep -q 'audit-0*[0-9]*\.jsonl' "$T/calls" &&
		grep -q 'ftruncate .*/audit/audit-' "$T/calls" ||
		tap_bail "$_label: the start did not recover, rotate and evolve: $(cat "$T/calls")"

	each_fault case_start "$@"
	sweep_end "$_label" "$_n" "$_distinct"
}

TEMPLATE=$TA CONF=$T/kurad-start.conf
sweep_start "kurad start-up (audit recovery of a torn tail, epoch evolution, rotation)"

# After one clean start: the log is whole again, and each case's fetch is the record that
# closes the epoch (its start record comes just before).
TB=$T/template-fetch
rm -rf "$W" && cp -a "$TA" "$W" && : >"$T/kurad.log" && rm -f "$CTL"
start_kurad && stop_kurad || tap_bail "kurad does not start on the audit template: $(tail -3 "$T/kurad.log")"
rm -rf "$TB" && mv "$W" "$TB"
printf 'rate = 100000\nburst = 100000\naudit-fsync = yes\naudit-max-file-mb = 1\naudit-epoch-records = %s\n' \
	"$(($(in_epoch "$TB") + 2))" >"$T/kurad-fetch.conf"
TEMPLATE=$TB CONF=$T/kurad-fetch.conf
sweep_kurad "kurad fetch (audit append with fsync, epoch evolution)" "$W/audit/" fetch
sweep_kurad "kurad secret put (audit only)" "$W/audit/" secret put app/new --file "$T/vnew"
TEMPLATE= CONF=

# --- regressions: what the sweeps found, each as its own case -----------------------------

if selected "regressions"; then
	# SQLite reports EIO from pread as a corrupt database.
	fresh
	faulted "ops=pread under=$W/kura.db nth=2 errno=EIO mode=once" \
		"$K" --state-dir "$W" --offline secret get app/a >/dev/null 2>"$T/err"
	_rc=$?
	want "exit $_rc, not 3: $(cat "$T/err")" test "$_rc" -eq 3
	want "called corruption: $(cat "$T/err")" sh -c "! grep -qi corrupt '$T/err'"
	want "not named an I/O error: $(cat "$T/err")" grep -q 'Input/output error' "$T/err"
	t_end "regression: a read error on the store is an I/O error (exit 3), not corruption (exit 4)"

	fresh
	faulted "ops=open under=$W/kura.db-wal nth=1 errno=EIO mode=once" \
		"$K" --state-dir "$W" --offline secret get app/a >/dev/null 2>"$T/err"
	_rc=$?
	want "exit $_rc, not 3: $(cat "$T/err")" test "$_rc" -eq 3
	want "said there is no store: $(cat "$T/err")" sh -c "! grep -q 'no kura store' '$T/err'"
	t_end "regression: a write-ahead log that cannot be opened is an I/O error, not 'no kura store' (exit 1)"

	fresh
	faulted "ops=open under=$W/kura.db nth=1 errno=EIO mode=once" \
		"$K" --state-dir "$W" --offline secret put app/new --file "$T/vnew" >/dev/null 2>"$T/err"
	_rc=$?
	want "exit $_rc, not 3: $(cat "$T/err")" test "$_rc" -eq 3
	want "blamed permissions or a read-only database: $(cat "$T/err")" \
		sh -c "! grep -qiE 'permission|readonly' '$T/err'"
	t_end "regression: a store SQLite could open only read-only is refused as an I/O error, not 'Permission denied'"

	# A write cut short by a full disk, whose truncation fails too.
	fresh
	: >"$T/kurad.log"
	rm -f "$CTL"
	CONF=$T/kurad.conf
	want "kurad does not start: $(tail -2 "$T/kurad.log")" start_kurad
	set_fault "ops=write,ftruncate under=$W/audit/ nth=1 errno=ENOSPC mode=persist partial"
	fetch
	want "a fetch while the disk is full got $CODE" test "$CODE" = 503
	set_fault off
	fetch
	want "a fetch once space is back got $CODE" test "$CODE" = 200
	stop_kurad
	digest "$W"
	want "the chain: $(cat "$T/audit")" audit_ok
	: >"$T/kurad.log"
	want "kurad does not start on that log again: $(tail -2 "$T/kurad.log")" start_kurad
	stop_kurad
	t_end "regression: a torn record that could not be cut back is cut before the next one (the chain holds, kurad restarts)"

	# An operator's retry is the first request after the audit log comes back.
	fresh
	: >"$T/kurad.log"
	want "kurad does not start: $(tail -2 "$T/kurad.log")" start_kurad
	set_fault "under=$W/audit/ nth=1 errno=ENOSPC mode=persist"
	"$K" --state-dir "$W" --run-dir "$R" secret put app/r1 --file "$T/vnew" >/dev/null 2>"$T/err"
	want "a put while the log fails exited $?" test $? -eq 3
	"$K" --state-dir "$W" --run-dir "$R" secret put app/r2 --file "$T/vnew" >/dev/null 2>"$T/err"
	want "the next put exited $?: $(cat "$T/err")" test $? -eq 3
	want "not refused up front: $(cat "$T/err")" grep -q 'nothing was changed' "$T/err"
	set_fault off
	"$K" --state-dir "$W" --run-dir "$R" secret put app/r2 --file "$T/vnew" >/dev/null 2>"$T/err"
	want "with the log back, the put exited $?: $(cat "$T/err")" test $? -eq 0
	stop_kurad
	digest "$W"
	want "app/r2 is not there: $(cat "$T/digest")" grep -q '^secret app/r2 current 1' "$T/digest"
	want "the chain: $(cat "$T/audit")" audit_ok
	want "no audit-recovered record ends the spell" \
		grep -q '"event":"audit-recovered"' "$W/audit/audit-000001.jsonl"
	t_end "regression: once the audit log can be written again, kurad takes an operator's change at once (no fetch needed first)"

	# Key files: the undo of a failed creation fails too (a disk gone read-only).
	fresh
	faulted "ops=fchmod,unlink under=$W/ nth=1 errno=EROFS mode=persist" \
		"$K" --state-dir "$W" --offline key rekey --new-key-file "$W/new.key" >/dev/null 2>"$T/err"
	want "rekey exited $?, not 3: $(cat "$T/err")" test $? -eq 3
	want "a torn key file: $(ls -l "$W"/*.key | tr '\n' ' ')" keys_whole "$W"
	"$K" --state-dir "$W" --offline key rekey --new-key-file "$W/new.key" >/dev/null 2>"$T/err"
	want "the retry exited $?: $(cat "$T/err")" test $? -eq 0
	t_end "regression: a key rekey that fails while its new key file is made leaves no torn key file, and works again"

	rm -rf "$W" "$T/ak-r"
	faulted "ops=write,link,unlink under=$T/ak-r nth=1 errno=EROFS mode=persist" \
		"$K" --state-dir "$W" init --audit-key-out "$T/ak-r" >/dev/null 2>"$T/err"
	want "init exited $?, not 3: $(cat "$T/err")" test $? -eq 3
	want "one line: $(cat "$T/err")" one_line "$T/err"
	want "a key file was left: $(ls -l "$T/ak-r" 2>&1)" test ! -e "$T/ak-r"
	want "a state was left: $(ls -A "$W" 2>&1 | tr '\n' ' ')" sh -c "[ ! -e '$W' ] || [ -z \"\$(ls -A '$W')\" ]"
	"$K" --state-dir "$W" init --audit-key-out "$T/ak-r" >/dev/null 2>"$T/err"
	want "the retry exited $?: $(cat "$T/err")" test $? -eq 0
	want "the key file is not whole" test "$(stat -c '%s %a' "$T/ak-r" 2>&1)" = "45 400"
	t_end "regression: init whose --audit-key-out cannot be written leaves neither a key file nor a state, and works again"

	# The store file is made, then its directory's fsync fails.
	rm -rf "$W" "$T/ak-r"
	faulted "ops=open under=$W nth=0" "$K" --state-dir "$W" init --audit-key-out "$T/ak-r" \
		>/dev/null 2>&1
	_k=$(awk -v w="$W" '$3 == "open" && $5 == w "/kura.db" && $6 ~ /^kuractl/ { seen = 1; next }
		seen && $3 == "open" && $5 == w { print $2; exit }' "$TRACE")
	rm -rf "$W" "$T/ak-r"
	faulted "ops=open under=$W nth=${_k:-0} errno=EIO mode=once" \
		"$K" --state-dir "$W" init --audit-key-out "$T/ak-r" >/dev/null 2>"$T/err"
	want "init exited $?, not 3 (the fault at open call ${_k:-none}): $(cat "$T/err")" test $? -eq 3
	want "left: $(ls -A "$W" 2>&1 | tr '\n' ' ')" sh -c "[ ! -e '$W' ] || [ -z \"\$(ls -A '$W')\" ]"
	"$K" --state-dir "$W" init --audit-key-out "$T/ak-r" >/dev/null 2>"$T/err"
	want "the retry exited $?: $(cat "$T/err")" test $? -eq 0
	t_end "regression: a store file made by a failed init is removed (a retry is not told a store is there)"
fi

# Per area: how many calls were failed in turn (over all sweeps), at how many distinct sites
# (operation and calling code: libsqlite3.so.0+0x..., kuractl+0x..., kurad+0x...).
for _a in store audit keys state-directory; do
	_calls=$(grep -c "^$_a\$" "$T/area-calls")
	_sites=$(sort -u "$T/areas" | grep -c "^$_a ")
	[ "$_calls" -gt 0 ] && tap_diag "area $_a: $_calls calls failed in turn, $_sites distinct call sites"
done
tap_diag "in all: $SITES_TOTAL calls failed in turn, $CASES_TOTAL cases"
tap_done

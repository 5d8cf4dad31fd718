# TAP helpers for the shell integration tests (POSIX sh, sourced). A test gathers the reasons it
# fails with `want`, then `t_end DESC` prints one TAP line ("ok N - DESC" or "not ok N - DESC"
# with the reasons as "# " diagnostics). `tap_done` prints the plan and sets the exit status.

TAP_N=0
TAP_FAILED=0
T_WHY=

# Print each line of the arguments as a TAP diagnostic.
tap_diag() {
	printf '%s\n' "$*" | sed 's/^/# /'
}

tap_ok() {
	TAP_N=$((TAP_N + 1))
	printf 'ok %d - %s\n' "$TAP_N" "$1"
}

tap_not_ok() {
	TAP_N=$((TAP_N + 1))
	TAP_FAILED=$((TAP_FAILED + 1))
	printf 'not ok %d - %s\n' "$TAP_N" "$1"
	shift
	for _d in "$@"; do
		tap_diag "$_d"
	done
}

tap_skip() {
	TAP_N=$((TAP_N + 1))
	printf 'ok %d - %s # SKIP %s\n' "$TAP_N" "$1" "$2"
}

# want REASON COMMAND [ARGS...]: run COMMAND; if it fails, REASON joins the current test's
# failure reasons. Returns COMMAND's status so a caller can stop early.
want() {
	_why=$1
	shift
	if "$@"; then
		return 0
	fi
	T_WHY="${T_WHY}${T_WHY:+
}${_why}"
	return 1
}

# End the current test: ok when no `want` failed since the last t_end. Extra arguments are
# diagnostics shown only on failure.
t_end() {
	_desc=$1
	shift
	if [ -z "$T_WHY" ]; then
		tap_ok "$_desc"
	else
		tap_not_ok "$_desc" "$T_WHY" "$@"
	fi
	T_WHY=
}

# Print the plan; the exit status says whether every test passed.
tap_done() {
	printf '1..%d\n' "$TAP_N"
	[ "$TAP_FAILED" -eq 0 ] || tap_diag "$TAP_FAILED of $TAP_N tests failed"
	[ "$TAP_FAILED" -eq 0 ]
}

tap_bail() {
	printf 'Bail out! %s\n' "$*"
	exit 1
}

#!/bin/sh
# The man pages against the programs: each page formats with no groff warning, has the sections
# an operator looks for, and names every option that the program's --help prints (kuractl: every
# command `kuractl --help` lists has its own .SS, and every option of each command's --help
# appears), every configuration key kurad reads, and every exit status kura's --help lists.
# When a command or option is added, this test names what the page lacks.
# Usage: test-man.sh KURAD KURACTL KURA KURAD_8 KURACTL_8 KURA_1 DAEMON_OPTIONS_C CTL_AUDIT_C
set -u
[ $# -eq 8 ] || {
	echo "usage: $0 KURAD KURACTL KURA KURAD_8 KURACTL_8 KURA_1 DAEMON_OPTIONS_C CTL_AUDIT_C" >&2
	exit 2
}
KURAD=$1
K=$2
KURA=$3
P_KURAD=$4
P_KURACTL=$5
P_KURA=$6
OPTS_C=$7
AUDIT_C=$8
HERE=$(dirname "$0")
. "$HERE/../cli/tap.sh"
. "$HERE/help-lib.sh"

command -v groff >/dev/null 2>&1 || { echo "1..0 # SKIP groff is not installed (groff-base)"; exit 0; }
T=$(mktemp -d /tmp/kura-man-XXXXXX)
trap 'rm -rf "$T"' EXIT

# The page's source with roff's escapes for '-' and fonts taken out, so that '\-\-run\-dir'
# and '\fB\-\-json\fR' read as --run-dir and --json.
plain() {
	sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\&//g' -e 's/\\(aq/'"'"'/g' "$1"
}

# missing PAGE_PLAIN WHAT WORD...: the words the page lacks, as "WHAT WORD" lines.
missing() {
	_p=$1
	_what=$2
	shift 2
	for _w in "$@"; do
		has_word "$_p" "$_w" || printf '%s %s\n' "$_what" "$_w"
	done
}

for page in "$P_KURAD" "$P_KURACTL" "$P_KURA"; do
	name=$(basename "$page")
	groff -man -ww -z "$page" >"$T/groff" 2>&1
	want "groff -man -ww exits $?" test $? -eq 0
	want_none "groff -man -ww -z $name warns" "$T/groff"
	if command -v man >/dev/null 2>&1; then
		MANWIDTH=80 man --warnings -l "$page" >"$T/rendered" 2>"$T/man"
		want "man -l exits $?" test $? -eq 0
		want_none "man --warnings -l $name warns" "$T/man"
		want "man -l $name rendered nothing" test -s "$T/rendered"
	else
		tap_diag "man is not installed (man-db): only groff checked $name"
	fi
	for s in NAME SYNOPSIS DESCRIPTION OPTIONS 'EXIT STATUS' ENVIRONMENT FILES SECURITY \
		EXAMPLES 'SEE ALSO'; do
		grep -qxE "\.SH \"?$s\"?" "$page" || printf 'section .SH %s\n' "$s"
	done >"$T/sections"
	want_none "$name lacks sections" "$T/sections"
	# The version in the title line is the programs' own.
	v=$("$KURAD" --version | sed 's/^kurad //')
	want "$name's .TH does not say \"kura $v\": $(grep '^\.TH' "$page")" grep -q "^\.TH .* \"kura $v\" " "$page"
	t_end "$name formats with no warning and has every section"
done

# --- kurad(8) ---------------------------------------------------------------------------------
plain "$P_KURAD" >"$T/kurad.8"
"$KURAD" --help >"$T/help" 2>&1
want "kurad --help exits $?" test $? -eq 0
# shellcheck disable=SC2046
missing "$T/kurad.8" "option" $(options_of <"$T/help") >"$T/miss"
want_none "kurad(8) lacks what kurad --help prints" "$T/miss"
# The configuration keys kurad reads (each is compared by name in daemon-options.c).
KEYS=$(grep -oE 'strn?cmp\(key, "[a-z][a-z0-9-]*"\)' "$OPTS_C" | grep -v strncmp |
	sed 's/.*"\(.*\)".*/\1/' | sort -u)
want "no configuration key found in $OPTS_C" test -n "$KEYS"
# A key is named as itself or as the option it repeats (the page says "the options above
# without --").
for k in $KEYS; do
	has_word "$T/kurad.8" "$k" || has_word "$T/kurad.8" "--$k" || printf 'configuration key %s\n' "$k"
done >"$T/miss"
want_none "kurad(8) lacks configuration keys kurad reads" "$T/miss"
t_end "kurad(8) names every option of kurad --help and every configuration key ($(echo $KEYS | wc -w) keys)"

# --- kura(1) ----------------------------------------------------------------------------------
plain "$P_KURA" >"$T/kura.1"
"$KURA" --help >"$T/help" 2>&1
want "kura --help exits $?" test $? -eq 0
{
	# shellcheck disable=SC2046
	missing "$T/kura.1" "option" $(options_of <"$T/help")
	# Commands: the "  kura CMD" lines of the usage.
	for c in $(sed -n 's/^  kura \([a-z][a-z-]*\)\( .*\)\{0,1\}$/\1/p' "$T/help" | sort -u); do
		has_word "$T/kura.1" "\.B $c" || printf 'command %s (a .B %s item)\n' "$c" "$c"
	done
	# Exit statuses: each number the help's table lists, as a .B or .BR item.
	for n in $(sed -n 's/^  \([0-9][0-9]*\)  .*/\1/p' "$T/help") 126 127; do
		grep -qE "^\.BR? ($n\$|$n |.* $n( |\$))" "$T/kura.1" || printf 'exit status %s\n' "$n"
	done
} >"$T/miss"
want_none "kura(1) lacks what kura --help prints" "$T/miss"
t_end "kura(1) names every command, option and exit status of kura --help"

# --- kuractl(8) -------------------------------------------------------------------------------
plain "$P_KURACTL" >"$T/kuractl.8"
"$K" --help >"$T/help" 2>&1
want "kuractl --help exits $?" test $? -eq 0
kuractl_commands "$K" >"$T/cmds.u"
want "no command found in kuractl --help" test -s "$T/cmds.u"
while read -r c; do
	# A command's page entry: '.SS init' or '.SS "secret put"'.
	grep -qE "^\.SS \"?$c\"?\$" "$P_KURACTL" || printf 'command "%s" (a .SS %s)\n' "$c" "$c"
	# shellcheck disable=SC2086
	"$K" $c --help >/dev/null 2>&1 || printf 'kuractl %s --help exits %s\n' "$c" "$?"
done <"$T/cmds.u" >"$T/miss"
kuractl_options "$K" >"$T/opts"
while read -r o where; do
	has_word "$T/kuractl.8" "$o" || printf 'option %s %s\n' "$o" "$where"
done <"$T/opts" >>"$T/miss"
# The audit events --event takes (ctl-audit.c's known_events).
EVENTS=$(sed -n '/known_events\[\] = {/,/};/p' "$AUDIT_C" | sed -n 's/^[[:space:]]*"\([a-z-]*\)",$/\1/p')
want "no audit event found in $AUDIT_C" test -n "$EVENTS"
for e in $EVENTS; do
	has_word "$T/kuractl.8" "$e" || printf 'audit event %s (kuractl audit --event)\n' "$e"
done >>"$T/miss"
want_none "kuractl(8) lacks what kuractl's --help texts print" "$T/miss"
t_end "kuractl(8) has a .SS for each of $(wc -l <"$T/cmds.u") commands and names all $(wc -l <"$T/opts") options of their --help and $(echo $EVENTS | wc -w) audit events"

# The drift check itself can fail: a page without an option is caught and named.
grep -v -- 'max\\-value\\-size' "$P_KURACTL" | grep -v '^\.SS config$' >"$T/short.8"
plain "$T/short.8" >"$T/short"
has_word "$T/short" --max-value-size
want "a page without --max-value-size still passed" test $? -ne 0
grep -qE '^\.SS "?config"?$' "$T/short.8"
want "a page without .SS config still has it" test $? -ne 0
t_end "the check catches a page that lacks an option or a command"

tap_done

# What the programs' --help texts name, for the checks that the man pages and the shell
# completions keep up with them (POSIX sh, sourced after tests/cli/tap.sh).

# Every --option (and -h) a help text on stdin names, one a line.
options_of() {
	grep -oE -- '(^|[^A-Za-z0-9_-])--?[a-z][a-z0-9-]*' | sed 's/^[^-]*//' |
		grep -E -- '^(--[a-z][a-z0-9-]+|-h)$' | sort -u
}

# has_word FILE WORD: WORD appears in FILE, not as part of a longer option or word.
has_word() {
	grep -qE -- "(^|[^A-Za-z0-9_-])$2([^A-Za-z0-9_-]|$)" "$1"
}

# kuractl_commands KURACTL: its commands, one a line ("init", "secret put", "audit stats"):
# from the "Commands:" block of kuractl --help ("  secret put NAME", "  audit [stats|verify]")
# and from each command's usage lines ("       kuractl audit init ...").
kuractl_commands() {
	"$1" --help 2>/dev/null | sed -n '/^Commands:/,/^$/p' |
		sed -n 's/^  \([a-z][a-z-]*\)\( \([][a-z|-]*\)\)\{0,1\}.*/\1 \3/p' |
		while read -r _c _sub; do
			case $_sub in
			\[*\]) echo "$_c"; echo "$_sub" | tr -d '[]' | tr '|' '\n' | sed "s/^/$_c /" ;;
			*[!a-z-]* | '') echo "$_c" ;;
			*) echo "$_c $_sub" ;;
			esac
		done >"$T/cmds.1"
	for _c in $(cut -d' ' -f1 "$T/cmds.1" | sort -u); do
		"$1" "$_c" --help 2>/dev/null | grep -v '^[A-Za-z: ]*kuractl [a-z-]* COMMAND' |
			sed -n 's/^\(Usage: \|       \)kuractl \([a-z][a-z-]*\)\( \([a-z][a-z-]*\)\)\{0,1\}\( .*\)\{0,1\}$/\2 \4/p'
	done | cat "$T/cmds.1" - | sed 's/ $//' | sort -u
}

# kuractl_options KURACTL: "OPTION COMMAND" lines, every option of kuractl's --help and of
# each command's (its first command only, when several name it).
kuractl_options() {
	kuractl_commands "$1" | while read -r _c; do
		# shellcheck disable=SC2086
		"$1" $_c --help 2>/dev/null | options_of | sed "s/\$/ ($_c)/"
	done >"$T/opts.1"
	"$1" --help 2>/dev/null | options_of | sed 's/$/ (kuractl)/' | cat - "$T/opts.1" |
		sort -u -k1,1
}

# want_none DESC FILE: the current test fails, listing FILE's lines, when FILE is not empty.
want_none() {
	if [ -s "$2" ]; then
		T_WHY="${T_WHY}${T_WHY:+
}$1:
$(sed 's/^/  /' "$2")"
	fi
}

#!/bin/sh
# The shell completions, driven as a shell would: bash through COMP_WORDS/COMP_CWORD and the
# function `complete -p` names, zsh through a real interactive zsh on a pseudo-terminal (zpty).
# Commands and subcommands come from kuractl --help (so a new command that the completion lacks
# fails here, named), secret names from a real kurad, and only when its admin socket can be
# reached: never offline, never for long (a socket that accepts and never answers).
# Usage: test-completion.sh KURAD KURACTL KURA DOC_DIR CLIENT_DOC_DIR
set -u
[ $# -eq 5 ] || { echo "usage: $0 KURAD KURACTL KURA BROKER_DOC_DIR CLIENT_DOC_DIR" >&2; exit 2; }
KURAD=$1
K=$2
KURA=$3
BD=$4/completion
CD=$5/completion
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../cli/tap.sh"
. "$HERE/help-lib.sh"

command -v bash >/dev/null 2>&1 || { echo "1..0 # SKIP bash is not installed"; exit 0; }
[ "$(id -u)" -eq 0 ] || { echo "1..0 # SKIP runs as root (a real kurad and its admin socket)"; exit 0; }
T=$(mktemp -d /tmp/kura-compl-XXXXXX)
E2E=$T
. "$HERE/../e2e/runtimes.sh"
KPID=
HPID=
cleanup() {
	[ -n "$KPID" ] && kill "$KPID" 2>/dev/null && wait "$KPID" 2>/dev/null
	[ -n "$HPID" ] && kill "$HPID" 2>/dev/null && wait "$HPID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
mkdir -p "$T/bin"
ln -s "$(cd "$(dirname "$K")" && pwd)/$(basename "$K")" "$T/bin/kuractl"
PATH=$T/bin:$PATH
export PATH

# bcomp FILE WORD...: what bash's completion from FILE offers for the command line WORD...
# (the last word is the one being completed), one a line, sorted.
bcomp() {
	_f=$1
	shift
	bash -c '. "$1"; shift
		fn=$(complete -p "$1" | sed -n "s/.*-F \([^ ]*\) .*/\1/p")
		[ -n "$fn" ] || { echo "no complete -F for $1" >&2; exit 1; }
		COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
		COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
		"$fn" "$1" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
		printf "%s\n" "${COMPREPLY[@]}"' bcomp "$_f" "$@" | sed '/^$/d' | sort -u
}

# want_same DESC GOT_FILE EXPECTED...: the lines of GOT_FILE are exactly EXPECTED.
want_same() {
	_d=$1
	_g=$2
	shift 2
	printf '%s\n' "$@" | sed '/^$/d' | sort -u >"$T/want"
	if ! cmp -s "$_g" "$T/want"; then
		T_WHY="${T_WHY}${T_WHY:+
}$_d: got [$(tr '\n' ' ' <"$_g")], want [$(tr '\n' ' ' <"$T/want")]"
	fi
}

kuractl_commands "$K" >"$T/cmds"
TOP=$(cut -d' ' -f1 "$T/cmds" | sort -u)
SECRET_SUBS=$(sed -n 's/^secret //p' "$T/cmds")
want "kuractl --help lists no secret commands" test -n "$SECRET_SUBS"

# --- bash ---------------------------------------------------------------------------------------
bcomp "$BD/kuractl.bash" kuractl sec >"$T/got"
want_same "kuractl sec<TAB>" "$T/got" secret
bcomp "$BD/kuractl.bash" kuractl secret '' >"$T/got"
# shellcheck disable=SC2086
want_same "kuractl secret <TAB>" "$T/got" $SECRET_SUBS
bcomp "$BD/kuractl.bash" kuractl '' >"$T/got"
# shellcheck disable=SC2086
want_same "kuractl <TAB> (the commands of kuractl --help)" "$T/got" $TOP
for c in key audit; do
	subs=$(sed -n "s/^$c //p" "$T/cmds")
	bcomp "$BD/kuractl.bash" kuractl $c '' >"$T/got"
	# shellcheck disable=SC2086
	want_same "kuractl $c <TAB>" "$T/got" $subs
done
bcomp "$BD/kuractl.bash" kuractl --state-dir /x secret rotate x --gen >"$T/got"
want_same "kuractl ... secret rotate x --gen<TAB>" "$T/got" --generate
bcomp "$BD/kuractl.bash" kuractl grant app/db --runtime p >"$T/got"
want_same "kuractl grant app/db --runtime p<TAB>" "$T/got" podman
bcomp "$CD/kura.bash" kura r >"$T/got"
want_same "kura r<TAB>" "$T/got" run
bcomp "$CD/kura.bash" kura --socket /run/kura/workload.sock run --w >"$T/got"
want_same "kura --socket S run --w<TAB>" "$T/got" --watch
bcomp "$BD/kurad.bash" kurad --no-s >"$T/got"
want_same "kurad --no-s<TAB>" "$T/got" --no-sandbox
t_end "bash: kuractl sec<TAB> gives secret, kuractl secret <TAB> its $(echo $SECRET_SUBS | wc -w) commands, every command of kuractl --help; kura and kurad too"

# Every option the --help texts print is in each completion (bash and zsh), so that an option
# added to a program and not to its completion fails here, named.
kuractl_options "$K" >"$T/opts"
: >"$T/miss"
for f in "$BD/kuractl.bash" "$BD/_kuractl"; do
	while read -r o where; do
		[ "$o" = -h ] && continue
		has_word "$f" "$o" || printf '%s: option %s %s\n' "$(basename "$f")" "$o" "$where"
	done <"$T/opts" >>"$T/miss"
done
for pair in "$KURAD:$BD/kurad.bash" "$KURAD:$BD/_kurad" "$KURA:$CD/kura.bash" "$KURA:$CD/_kura"; do
	prog=${pair%%:*}
	f=${pair#*:}
	"$prog" --help 2>&1 | options_of | while read -r o; do
		[ "$o" = -h ] && continue
		has_word "$f" "$o" || printf '%s: option %s\n' "$(basename "$f")" "$o"
	done >>"$T/miss"
done
want_none "completions lack options their program's --help prints" "$T/miss"
t_end "every option of kuractl's, kurad's and kura's --help is in their bash and zsh completions"

# --- secret names from a real kurad --------------------------------------------------------------
S=$T/state
R=$T/run
"$K" --state-dir "$S" init --audit-key-out "$T/audit.key" >/dev/null 2>&1
printf 'v' | "$K" --state-dir "$S" secret put app/db >/dev/null
printf 'v' | "$K" --state-dir "$S" secret put app/cfg >/dev/null
printf 'v' | "$K" --state-dir "$S" secret put token >/dev/null
if e2e_start_kurad "$KURAD" "$S" "$R"; then
	bcomp "$BD/kuractl.bash" kuractl --state-dir "$S" secret get ap >"$T/got"
	want_same "kuractl --state-dir S secret get ap<TAB>" "$T/got" app/cfg app/db
	bcomp "$BD/kuractl.bash" kuractl --run-dir="$R" --state-dir "$S" secret show '' >"$T/got"
	want_same "kuractl --run-dir=R --state-dir S secret show <TAB>" "$T/got" app/cfg app/db token
	bcomp "$BD/kuractl.bash" kuractl --state-dir "$S" --run-dir "$R" grant t >"$T/got"
	want_same "kuractl --state-dir S --run-dir R grant t<TAB>" "$T/got" token
	bcomp "$BD/kuractl.bash" kuractl --state-dir="$S" audit --secret app/c >"$T/got"
	want_same "kuractl --state-dir=S audit --secret app/c<TAB>" "$T/got" app/cfg
	bcomp "$BD/kuractl.bash" kuractl --state-dir "$S" secret put ap >"$T/got"
	want_same "secret put (a new name) offers no names" "$T/got"
	bcomp "$BD/kuractl.bash" kuractl --state-dir "$S" --run-dir "$T/norun" secret get '' >"$T/got"
	want_same "a --run-dir that is not the serving kurad's gives no names" "$T/got"
	t_end "bash completes secret names from the running kurad's secret list"

	# Someone who may not use admin.sock gets no names, at once, and no kuractl runs.
	chmod 755 "$T" "$T/bin"
	START=$(date +%s)
	setpriv --reuid=65534 --regid=65534 --clear-groups env PATH="$PATH" \
		bash -c '. "$1"; COMP_WORDS=(kuractl --state-dir "$3" secret get ""); COMP_CWORD=5
			_kuractl; printf "%s\n" "${COMPREPLY[@]}"' b "$BD/kuractl.bash" "$R" "$S" >"$T/got" 2>&1
	sed -i '/^$/d' "$T/got"
	want_same "as uid 65534: secret get <TAB>" "$T/got"
	want "as uid 65534 it took $(($(date +%s) - START)) s" test $(($(date +%s) - START)) -le 2
	chmod 700 "$T"
	t_end "a user who cannot reach admin.sock gets no secret names, at once"
else
	tap_skip "bash completes secret names from the running kurad's secret list" \
		"kurad did not start: $(tail -n 3 "$T/kurad.log" | tr '\n' ' ')"
	tap_skip "a user who cannot reach admin.sock gets no secret names, at once" "kurad did not start"
fi

# No kurad: kuractl is never run (its offline path would open the store and write the audit log).
mkdir -m 700 "$T/norun"
rm -f "$T/bin/kuractl" # a link to the real one: write the fake beside it, not through it
cat >"$T/bin/kuractl" <<FAKE
#!/bin/sh
touch "$T/ran"
FAKE
chmod 755 "$T/bin/kuractl"
mkdir -m 700 "$T/nostate" "$T/stale"
echo "$T/norun" >"$T/stale/kurad.run"
bcomp "$BD/kuractl.bash" kuractl --state-dir "$T/nostate" secret get '' >"$T/got"
want_same "a state no kurad serves: secret get <TAB>" "$T/got"
bcomp "$BD/kuractl.bash" kuractl --state-dir "$T/stale" secret get '' >"$T/got"
want_same "a state whose kurad.run names a run directory without admin.sock" "$T/got"
want "kuractl was run with no admin.sock there" test ! -e "$T/ran"
rm -f "$T/bin/kuractl"
ln -s "$(cd "$(dirname "$K")" && pwd)/$(basename "$K")" "$T/bin/kuractl"
# An admin.sock that accepts and never answers: the completion gives up within its bound.
mkdir -m 700 "$T/hang" "$T/hstate"
echo "$T/hang" >"$T/hstate/kurad.run"
python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen(8)
held = []
while True:
	held.append(s.accept())
' "$T/hang/admin.sock" &
HPID=$!
for _i in $(seq 1 50); do [ -S "$T/hang/admin.sock" ] && break; sleep 0.1; done
START=$(date +%s)
bcomp "$BD/kuractl.bash" kuractl --state-dir "$T/hstate" secret get '' >"$T/got"
TOOK=$(($(date +%s) - START))
want_same "a mute admin.sock: secret get <TAB>" "$T/got"
want "against a mute admin.sock the completion took $TOOK s (bound: 2 s, killed at 3)" test "$TOOK" -le 4
kill "$HPID" 2>/dev/null
wait "$HPID" 2>/dev/null
HPID=
t_end "no kurad (no note, or a stale one): no names and kuractl not run; a mute admin.sock: no names within $TOOK s"

# --- zsh ----------------------------------------------------------------------------------------
if command -v zsh >/dev/null 2>&1 && zsh -fc 'zmodload zsh/zpty' 2>/dev/null; then
	mkdir -p "$T/fpath"
	cp "$BD/_kuractl" "$BD/_kurad" "$CD/_kura" "$T/fpath/"
	# zcomp LINE...: for each LINE, type it and TAB in an interactive zsh with our fpath, then
	# print the line editor's buffer as <BUF:...> and whatever the completion listed.
	cat >"$T/zcomp.zsh" <<'ZSH'
zmodload zsh/zpty
fp=$1; shift
zpty z env TERM=dumb zsh -f -i
zpty -w z "unset zle_bracketed_paste; PS1='%% '; fpath=($fp \$fpath); autoload -U compinit; compinit -u -D"
zpty -w z "zstyle ':completion:*' list-prompt ''; LISTMAX=10000; show() { print -r -- \"<BUF:\$BUFFER>\"; zle send-break }; zle -N show; bindkey '^X' show"
zpty -w z "print READY"
zpty -r -m z out '*READY*READY*'
for line in "$@"; do
	zpty -w -n z "$line"$'\t'
	sleep 1
	zpty -w -n z $'\x18'
	zpty -r -m z out '*<BUF:*>*' && print -r -- "$out" | tr -d '\r' | sed 's/\x1b\[[0-9;?]*[A-Za-z]//g'
	print -- '---END---'
done
zpty -d z
ZSH
	timeout 60 zsh -f "$T/zcomp.zsh" "$T/fpath" "kuractl sec" "kuractl secret " "kura r" \
		"kurad --no-s" "kuractl --state-dir $S secret get app/d" >"$T/zout" 2>&1
	want "zsh under zpty exits $?" test $? -eq 0
	awk '/---END---/ { n++; next } { print > (F "." n + 0) }' F="$T/z" "$T/zout"
	want "kuractl sec<TAB> does not give 'kuractl secret ': $(grep -a BUF "$T/z.0")" \
		grep -aqF '<BUF:kuractl secret >' "$T/z.0"
	for s in $SECRET_SUBS; do
		want "kuractl secret <TAB> does not list $s" grep -aqE "(^|[^a-z-])$s([^a-z-]|\$)" "$T/z.1"
	done
	want "kura r<TAB>: $(grep -a BUF "$T/z.2")" grep -aqF '<BUF:kura run >' "$T/z.2"
	want "kurad --no-s<TAB>: $(grep -a BUF "$T/z.3")" grep -aqF '<BUF:kurad --no-sandbox >' "$T/z.3"
	if [ -n "$KPID" ]; then
		want "kuractl --state-dir S secret get app/d<TAB>: $(grep -a BUF "$T/z.4")" \
			grep -aqF "<BUF:kuractl --state-dir $S secret get app/db >" "$T/z.4"
	fi
	t_end "zsh: kuractl sec<TAB>, kuractl secret <TAB>, kura, kurad, and names from kurad" \
		"$(cat "$T/zout")"
else
	tap_skip "zsh: kuractl sec<TAB>, kuractl secret <TAB>, kura, kurad, and names from kurad" \
		"zsh (with zsh/zpty) is not installed"
fi

tap_done

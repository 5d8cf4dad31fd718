#!/bin/sh
# `meson install --destdir` of this build into a temporary directory: the three programs, their
# man pages and their shell completions land where man, bash-completion and zsh look (each
# asked, not assumed), the examples beside the docs, and nothing test-only.
# Usage: test-install.sh BUILD_DIR
set -u
[ $# -eq 1 ] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
B=$1
HERE=$(dirname "$0")
. "$HERE/../cli/tap.sh"

command -v meson >/dev/null 2>&1 || { echo "1..0 # SKIP meson is not in PATH"; exit 0; }
T=$(mktemp -d /tmp/kura-install-XXXXXX)
trap 'rm -rf "$T"' EXIT
D=$T/dest

meson install -C "$B" --destdir "$D" --no-rebuild --quiet >"$T/log" 2>&1
want "meson install exits $?: $(tail -n 5 "$T/log")" test $? -eq 0
# The build's own directories (what --prefix and friends made them).
meson introspect "$B" --buildoptions >"$T/opts.json"
opt() {
	python3 -c 'import json, sys
print(next(o["value"] for o in json.load(open(sys.argv[1])) if o["name"] == sys.argv[2]))' \
		"$T/opts.json" "$1"
}
PREFIX=$(opt prefix)
BINDIR=$PREFIX/$(opt bindir)
MANDIR=$PREFIX/$(opt mandir)
DATADIR=$PREFIX/$(opt datadir)
for p in kurad kuractl kura; do
	want "$BINDIR/$p is not installed" test -x "$D$BINDIR/$p"
done
want "the installed kuractl --version: $("$D$BINDIR/kuractl" --version 2>&1)" \
	test "$("$D$BINDIR/kuractl" --version 2>&1)" = "kuractl $(sed -n "s/^  version : '\(.*\)',/\1/p" "$HERE/../../meson.build")"
file -L "$D$BINDIR/kura" | grep -q 'statically linked'
want "the installed kura is not static" test $? -eq 0
find "$D" -type f | sed "s|^$D||" | grep -E '(hooks|/test-|fuzz|bench|probe|attack|keydump|audit-gen|loadgen|filter-gen)' >"$T/extra"
want "test-only files are installed: $(tr '\n' ' ' <"$T/extra")" test ! -s "$T/extra"
t_end "meson install --destdir puts kurad, kuractl and a static kura in $BINDIR, and nothing test-only"

for pg in kurad.8:man8 kuractl.8:man8 kura.1:man1; do
	f=$D$MANDIR/${pg#*:}/${pg%%:*}
	want "$f is not installed" test -f "$f"
done
if command -v man >/dev/null 2>&1; then
	for p in kurad kuractl kura; do
		w=$(MANPATH=$D$MANDIR man -w "$p" 2>&1)
		want "man -w $p under MANPATH=$D$MANDIR: $w" test "${w#"$D$MANDIR"/}" != "$w"
		MANWIDTH=80 MANPATH=$D$MANDIR man --warnings "$p" 2>"$T/w" | grep -q "^NAME"
		want "man $p (installed) shows no NAME" test $? -eq 0
		want "man $p (installed) warns: $(cat "$T/w")" test ! -s "$T/w"
	done
	# man's own search path for a program in BINDIR reaches MANDIR (for /usr/local and /usr).
	manpath 2>/dev/null | tr ':' '\n' | grep -qx "$MANDIR"
	want "$MANDIR is not on man's default path ($(manpath 2>/dev/null))" test $? -eq 0
fi
t_end "the man pages install in $MANDIR and man finds and shows them"

# bash: bash-completion's loader finds them by command name.
BC=/usr/share/bash-completion/bash_completion
for p in kurad kuractl kura; do
	f=$(find "$D" -path '*/bash-completion/completions/'"$p" -type f)
	want "no bash completion installed for $p" test -n "$f"
done
if [ -r "$BC" ]; then
	DIR=$(dirname "$(find "$D" -path '*/bash-completion/completions/kuractl' -type f | head -n 1)")
	DIR=${DIR#"$D"}
	# where bash-completion looks: beneath each of XDG_DATA_DIRS (default /usr/local/share and
	# /usr/share), and its own directory
	case $DIR in
	/usr/local/share/bash-completion/completions | /usr/share/bash-completion/completions) ;;
	*) tap_diag "$DIR is not on bash-completion's default path: add its share directory to XDG_DATA_DIRS" ;;
	esac
	for p in kurad kuractl kura; do
		got=$(XDG_DATA_DIRS="$D$(dirname "$(dirname "$DIR")")" bash -c '. "$1"
			__load_completion "$2" && complete -p "$2"' b "$BC" "$p" 2>&1)
		want "bash-completion does not load $p's completion from $D$DIR: $got" \
			test "$got" = "complete -F _$p $p"
	done
else
	tap_diag "bash-completion is not installed: its loader not tried"
fi
t_end "bash completions install where bash-completion loads them"

# zsh: compinit finds them on fpath, and the directory is on zsh's default fpath.
for p in kurad kuractl kura; do
	f=$(find "$D" -path '*/zsh/*/_'"$p" -type f)
	want "no zsh completion installed for $p" test -n "$f"
done
if command -v zsh >/dev/null 2>&1; then
	ZDIR=$(dirname "$(find "$D" -path '*/zsh/*/_kuractl' -type f | head -n 1)")
	ZDIR=${ZDIR#"$D"}
	zsh -fc 'print -l $fpath' | grep -qx "$ZDIR"
	want "$ZDIR is not on zsh's default fpath" test $? -eq 0
	got=$(zsh -fc 'fpath=($1 $fpath); autoload -U compinit; compinit -u -D
		print -r -- $_comps[kurad] $_comps[kuractl] $_comps[kura]' z "$D$ZDIR" 2>&1)
	want "zsh's compinit maps kurad kuractl kura to: $got" test "$got" = "_kurad _kuractl _kura"
else
	tap_diag "zsh is not installed: compinit not tried"
fi
t_end "zsh completions install where zsh's compinit finds them"

for f in docker-compose.yml podman-run.sh; do
	want "example $f not installed in $DATADIR/doc/kura/examples" test -f "$D$DATADIR/doc/kura/examples/$f"
done
t_end "the examples install in $DATADIR/doc/kura/examples"

tap_done

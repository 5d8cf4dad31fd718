#!/bin/sh
# The main job on the embedded default: a fresh state in BUILD/demo-state, one secret through
# put, rotate, key rotate and get. Safe to run again (it starts from a fresh state each time).
set -eu
build=${1:-build}
kuractl="$build/broker/kuractl/kuractl"
state="$build/demo-state"

step() { printf '\n$ %s\n' "$*"; "$@"; }

rm -rf "$state"
step "$kuractl" --state-dir "$state" init
printf 'correct horse battery staple' >"$build/demo-value"
step "$kuractl" --state-dir "$state" secret put db/password --file "$build/demo-value"
rm -f "$build/demo-value"
step "$kuractl" --state-dir "$state" secret rotate db/password --generate 24 --printable
step "$kuractl" --state-dir "$state" secret show db/password
step "$kuractl" --state-dir "$state" key rotate
step "$kuractl" --state-dir "$state" key status
printf '\n$ %s\n' "$kuractl --state-dir $state secret get db/password --version 1"
"$kuractl" --state-dir "$state" secret get db/password --version 1
printf '\n'
printf '\n$ %s\n' "$kuractl --state-dir $state secret get db/password | wc -c"
"$kuractl" --state-dir "$state" secret get db/password | wc -c
printf '\ndemo done: state in %s (the store holds only ciphertext; master key in %s/master.key)\n' \
	"$state" "$state"

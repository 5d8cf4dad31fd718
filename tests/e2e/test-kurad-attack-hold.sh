#!/bin/sh
# Attacks on kurad that hold its resources (issue 10, findings 3, 4 and 9), with real parts
# only: long polls parked from 70 inner uids of one subordinate-uid user and from 70 host uids,
# 64 host uids dribbling header bytes on 16 connections each, and long-poll scans over a store
# of 50k secrets; meanwhile root on the host and a granted Docker container fetch, and must be
# answered within 1 s.
# Usage: test-kurad-attack-hold.sh KURAD KURACTL ATTACK BENCH_POPULATE
set -u
[ $# -eq 4 ] || { echo "usage: $0 KURAD KURACTL ATTACK BENCH_POPULATE" >&2; exit 2; }
KURAD=$1
K=$2
POP=$4
HERE=$(dirname "$0")
. "$HERE/../cli/tap.sh"
. "$HERE/runtimes.sh"
. "$HERE/attack-lib.sh"
atk_init hold "$3"
atk_docker_images
RT=$(atk_runtimes)
printf '# the defaults: max-connections 256, max-per-peer 16, header-timeout 5, watch-max 300\n' \
	>"$T/defaults.conf"

# fresh NAME [CONF]: atk_state and a kurad on it (default limits, or CONF); S, R, W name them.
fresh() {
	S=$T/state-$1
	R=$T/run-$1
	W=$R/workload.sock
	# shellcheck disable=SC2086
	atk_state "$S" && atk_start_kurad "$S" "$R" "${2:-$T/defaults.conf}" $RT
}

# workload: GET /v1/status on admin.sock; its "workload" object's connections and watches
# ("missing missing" if kurad does not say).
workload() {
	curl -s --max-time 5 --unix-socket "$R/admin.sock" http://k/v1/status | python3 -c '
import json, sys
try:
    w = json.load(sys.stdin)["workload"]
    print(int(w["connections"]), int(w["watches"]))
except Exception:
    print("missing missing")'
}

# forgotten PG BASE DESC: kill the attackers' group (atk_kill_group returns once every one of
# them is gone), then a status asked for within 1 s must show no watch and at most BASE
# connections.
forgotten() {
	atk_kill_group "$1"
	t0=$(date +%s%N)
	ok=no cn=none wn=none
	while :; do
		ms=$(( ($(date +%s%N) - t0) / 1000000 ))
		[ "$ms" -le 1000 ] || break
		# shellcheck disable=SC2046
		set -- "$1" "$2" "$3" $(workload)
		cn=$4 wn=$5
		if [ "$wn" = 0 ] && [ "$cn" != missing ] && [ "$cn" -le "$2" ]; then
			ok=yes
			break
		fi
		sleep 0.05
	done
	want "1 s after the attackers were killed, kurad's status says watches $wn, connections $cn (baseline $2)" \
		test "$ok" = yes
	t_end "$3: once every attacker is killed kurad forgets them within 1 s (watches $wn, connections $cn, baseline $2, $ms ms)"
}

# root_within_1s FILE DESC: the prober's fetches in FILE were all 200, each within 1 s.
root_within_1s() {
	rw_st=$(atk_json "$1" 'j["status"]')
	rw_max=$(atk_json "$1" 'int(j["max_us"])')
	want "root's fetches: $rw_st of $(atk_json "$1" 'j["n"]'), $(atk_json "$1" 'j["timeouts"]') timed out" \
		test "$(atk_json "$1" 'j["status"].get("200", 0) == j["n"]')" = True
	want "root's slowest fetch took $rw_max us" test "${rw_max:-9999999}" -lt 1000000
	t_end "$2: root's granted fetch is answered within 1 s (max $rw_max us, $rw_st)"
}

WATCH='/v1/watch?since=999999999&timeout=300'

# --- Finding 3: parked long polls, from 70 inner uids of one user and from 70 host users.
if fresh watch; then
	base=$(workload | cut -d' ' -f1)
	[ "$base" = missing ] && base=0
	if atk_subuid_setup; then
		atk_userns_group "$T/w-sub" "for i in \$(seq 1 70); do
			setpriv --reuid=\$i --regid=\$i --clear-groups $ATTACK watch $W '$WATCH' -n 4 -s 3000 -t 0 &
			done; wait"
		PG=$ATK_PG
		atk_wait_lines "$T/w-sub" 70 40
		"$ATTACK" latency "$W" /v1/secrets/app/x -n 10 -i 100 -T 1500 >"$T/w-sub-root"
		parked=$(atk_sum "$T/w-sub" parked)
		n429=$(atk_sum "$T/w-sub" status.429)
		how="429: $n429, too_many_watches: $(atk_sum "$T/w-sub" codes.too_many_watches)"
		how="$how, closed: $(atk_sum "$T/w-sub" closed)"
		how="$how, connect failed: $(atk_sum "$T/w-sub" connect_failed)"
		want "$(atk_lines "$T/w-sub") of 70 attackers reported: $(tail -n 2 "$T/attack.err")" \
			test "$(atk_lines "$T/w-sub")" -eq 70
		want "$parked long polls of one user are parked ($how)" test "$parked" -le 4
		t_end "70 inner uids x 4 long polls of one user: at most 4 parked ($parked parked, $n429 refused with 429)"
		root_within_1s "$T/w-sub-root" "70 inner uids x 4 long polls"
		forgotten "$PG" "$base" "70 inner uids x 4 long polls"
		atk_subuid_cleanup
	else
		for d in "at most 4 parked" "root's granted fetch is answered within 1 s" \
			"once every attacker is killed kurad forgets them within 1 s"; do
			tap_skip "70 inner uids x 4 long polls of one user: $d" "$ATK_WHY"
		done
	fi
	atk_group "$T/w-host" sh -c "for u in \$(seq 47300 47369); do
		setpriv --reuid=\$u --regid=\$u --clear-groups $ATTACK watch $W '$WATCH' -n 4 -s 3000 -t 0 &
		done; wait"
	PG=$ATK_PG
	atk_wait_lines "$T/w-host" 70 40
	"$ATTACK" latency "$W" /v1/secrets/app/x -n 10 -i 100 -T 1500 >"$T/w-host-root"
	want "$(atk_lines "$T/w-host") of 70 attackers reported" test "$(atk_lines "$T/w-host")" -eq 70
	root_within_1s "$T/w-host-root" "70 host uids x 4 long polls ($(atk_sum "$T/w-host" parked) parked)"
	forgotten "$PG" "$base" "70 host uids x 4 long polls"
	atk_check_kurad "$R" "the long-poll attacks"
	atk_stop_kurad
else
	want "kurad did not start: $(tail -n 3 "$T/kurad.log")" false
	t_end "long polls: setup"
fi

# --- Finding 4: 64 host uids x 16 connections dribbling a header byte every 0.5 s.
if fresh slow; then
	if [ "$HAVE_DOCKER" = yes ]; then
		dk run -d --network none --name atk-victim -v "$R:/run/kura" kura-atk-victim:1 \
			/bin/sleep 600 >/dev/null 2>"$T/run.err"
		dk exec atk-victim /attack latency /run/kura/workload.sock /v1/secrets/app/x -n 1 \
			>"$T/victim-warm" 2>&1
	fi
	atk_group "$T/s-att" sh -c "for u in \$(seq 47400 47463); do
		setpriv --reuid=\$u --regid=\$u --clear-groups $ATTACK dribble $W -n 16 -i 500 -t 20 &
		done; wait"
	PG=$ATK_PG
	sleep 2
	"$ATTACK" latency "$W" /v1/secrets/app/x -d 15 -i 250 -T 2000 >"$T/s-root" &
	RP=$!
	if [ "$HAVE_DOCKER" = yes ]; then
		dk exec atk-victim /attack latency /run/kura/workload.sock /v1/secrets/app/x \
			-d 15 -i 250 -T 2000 >"$T/s-victim" 2>&1
	fi
	wait "$RP"
	atk_wait_group "$PG" 30 || atk_kill_group "$PG"
	want "$(atk_lines "$T/s-att") of 64 dribblers reported" test "$(atk_lines "$T/s-att")" -eq 64
	want "the dribblers held $(atk_sum "$T/s-att" conns) connections, not 1024" \
		test "$(atk_sum "$T/s-att" conns)" -eq 1024
	for who in root victim; do
		f=$T/s-$who
		if [ "$who" = victim ] && [ "$HAVE_DOCKER" != yes ]; then
			tap_skip "slow-header flood: the victim container's fetch within 1 s" "$WHY_DOCKER"
			continue
		fi
		want "$who: only $(atk_json "$f" 'j["n"]') samples in 15 s ($(cat "$f"))" \
			test "$(atk_json "$f" 'j["n"] >= 30')" = True
		p50=$(atk_json "$f" 'int(j["p50_us"])')
		p99=$(atk_json "$f" 'int(j["p99_us"])')
		n=$(atk_json "$f" 'j["n"]')
		want "$who: $(atk_json "$f" 'j["status"]') of $n, $(atk_json "$f" 'j["over_1s"]') over 1 s" \
			test "$(atk_json "$f" 'j["status"].get("200", 0) == j["n"] and j["over_1s"] == 0')" = True
		want "$who: p99 $p99 us" test "${p99:-9999999}" -lt 1000000
		t_end "64 host uids x 16 dribbling connections (reopened $(atk_sum "$T/s-att" reopened) times): $who's fetch within 1 s every time, p50 $p50 us, p99 $p99 us over $n samples"
	done
	dk rm -f atk-victim >/dev/null 2>&1
	atk_check_kurad "$R" "the slow-header flood"
	atk_stop_kurad
else
	want "kurad did not start: $(tail -n 3 "$T/kurad.log")" false
	t_end "slow headers: setup"
fi

# --- Finding 9: long-poll scans over 50k secrets must not stall fetches.
S=$T/state-scan
R=$T/run-scan
W=$R/workload.sock
t0=$(date +%s%N)
if "$POP" "$S" 0 50000 64 >"$T/pop.out" 2>&1 &&
	"$K" --offline --state-dir "$S" grant bench/0000001 --host --uid 0 >/dev/null &&
	atk_start_kurad "$S" "$R" "$T/defaults.conf"; then
	tap_diag "50k secrets put in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
	# Both sets of samples paced at 10 ms: root's own rate (100/s) is not what is measured.
	"$ATTACK" latency "$W" /v1/secrets/bench/0000001 -n 200 -i 10 >"$T/scan-before"
	atk_group "$T/scan-att" setpriv --reuid 65534 --regid 65534 --clear-groups \
		"$ATTACK" flood "$W" '/v1/watch?since=0&timeout=1' -c 4 -t 8
	PG=$ATK_PG
	sleep 1
	"$ATTACK" latency "$W" /v1/secrets/bench/0000001 -n 200 -i 10 -T 3000 >"$T/scan-during"
	atk_wait_group "$PG" 30 || atk_kill_group "$PG"
	b99=$(atk_json "$T/scan-before" 'j["p99_us"]')
	d99=$(atk_json "$T/scan-during" 'j["p99_us"]')
	lim=$(atk_json "$T/scan-before" 'max(10 * j["p99_us"], 20000)')
	want "the watch loops sent $(atk_sum "$T/scan-att" requests) requests" \
		test "$(atk_sum "$T/scan-att" requests)" -ge 4
	want "fetches during the scans: $(atk_json "$T/scan-during" 'j["status"]') of 200" \
		test "$(atk_json "$T/scan-during" 'j["status"].get("200", 0)')" = 200
	want "p99 during the scans $d99 us, more than max(10 x $b99, 20000) = $lim us" \
		test "$(atk_json "$T/scan-during" "j['p99_us'] <= $lim")" = True
	t_end "4 loops of watch?since=0 over 50k secrets: fetch p99 $d99 us <= max(10 x $b99 us before, 20 ms) over 200 samples"

	t0=$(date +%s%N)
	curl -s -o "$T/resync" --max-time 5 --unix-socket "$W" "http://k/v1/watch?since=1&timeout=5"
	ms=$(( ($(date +%s%N) - t0) / 1000000 ))
	want "the answer took $ms ms" test "$ms" -lt 1000
	want "not a resync: $(head -c 300 "$T/resync")" test "$(atk_json "$T/resync" \
		'j.get("resync") is True and j.get("changed") == [] and isinstance(j.get("revision"), int)')" = True
	t_end "a watch from before what kurad keeps answers at once with resync ($ms ms: $(head -c 80 "$T/resync"))"

	curl -s -o "$T/list" --max-time 5 --unix-socket "$W" http://k/v1/secrets
	REV=$(atk_json "$T/list" 'j["revision"]')
	curl -s -o "$T/watch" --max-time 10 --unix-socket "$W" \
		"http://k/v1/watch?since=$REV&timeout=8" &
	CP=$!
	sleep 0.5
	want "the watch from the current revision $REV did not park: $(cat "$T/watch" 2>/dev/null)" \
		kill -0 "$CP" 2>/dev/null
	t0=$(date +%s%N)
	"$K" --state-dir "$S" --run-dir "$R" secret rotate bench/0000001 --generate 16 >/dev/null
	wait "$CP"
	ms=$(( ($(date +%s%N) - t0) / 1000000 ))
	want "after the rotation: $(cat "$T/watch")" \
		test "$(atk_json "$T/watch" '"bench/0000001" in j.get("changed", [])')" = True
	want "the change took $ms ms to arrive" test "$ms" -lt 1500
	t_end "a watch from the current revision parks and returns the rotated name ($ms ms after kuractl secret rotate)"
	atk_check_kurad "$R" "the long-poll scans"
	atk_stop_kurad
else
	want "no 50k store or kurad: $(tail -n 3 "$T/pop.out" "$T/kurad.log")" false
	t_end "long-poll scans: setup"
fi

want "a value reached kurad's log" test -z "$(grep -F "$(cat "$T/value")" "$T/kurad.log")"
t_end "no value in kurad's log"
tap_done

#!/bin/sh
# Attacks on kurad by floods (issue 10, findings 1 and 2), with real parts only: unprivileged
# host users (setpriv), a real user with subordinate uids in user namespaces of its own, and
# real Docker containers. A peer that cannot be identified must not fill the audit log (a 6 MiB
# state volume) and so shut root out; rate limits must be per identity, with no collisions,
# and one user must not multiply its share through subordinate uids.
# Usage: test-kurad-attack-flood.sh KURAD KURACTL ATTACK
set -u
[ $# -eq 3 ] || { echo "usage: $0 KURAD KURACTL ATTACK" >&2; exit 2; }
KURAD=$1
K=$2
HERE=$(dirname "$0")
. "$HERE/../cli/tap.sh"
. "$HERE/runtimes.sh"
. "$HERE/attack-lib.sh"
atk_init flood "$3"
atk_docker_images
RT=$(atk_runtimes)

# --- Finding 1: a peer that cannot be identified floods; the audit log lives on 6 MiB.
# flood_unident NAME DESC CMD...: CMD runs `attack unident` for 5 s against a kurad of its own
# (state on a 6 MiB tmpfs, default limits) while root on the host fetches its granted secret
# every 50 ms, and 2 s beyond.
flood_unident() {
	fu_n=$1 fu_desc=$2
	shift 2
	S=$T/state-$fu_n
	R=$T/run-$fu_n
	W=$R/workload.sock
	ATT=$T/$fu_n-att
	ROOT=$T/$fu_n-root
	printf '# defaults: rate 100, burst 200\n' >"$T/kurad-$fu_n.conf"
	# shellcheck disable=SC2086
	if ! atk_tmpfs "$S" 6m || ! atk_state "$S" ||
		! atk_start_kurad "$S" "$R" "$T/kurad-$fu_n.conf" $RT; then
		want "no kurad on a 6 MiB state volume: $(tail -n 3 "$T/kurad.log")" false
		t_end "$fu_desc: setup"
		atk_stop_kurad
		return 1
	fi
	seq0=$(atk_audit_seq "$S/audit")
	atk_group "$ROOT" "$ATTACK" latency "$W" /v1/secrets/app/x -d 8 -i 50 -T 2000
	ROOTPG=$ATK_PG
	sleep 0.2
	t0=$(date +%s%N)
	"$@" >"$ATT" 2>>"$T/attack.err"
	secs=$(( ($(date +%s%N) - t0 + 999999999) / 1000000000 ))
	atk_wait_group "$ROOTPG" 30 || atk_kill_group "$ROOTPG"

	want "the attacker printed nothing: $(tail -n 2 "$T/attack.err")" \
		test "$(atk_lines "$ATT")" -eq 1
	want "no 403 unidentified answer: $(cat "$ATT")" \
		test "$(atk_sum "$ATT" codes.unidentified)" -ge 1
	other=$(atk_json "$ATT" 'j["answers"] - j["status"].get("403", 0) - j["status"].get("429", 0)')
	want "answers other than 403 and 429: $(atk_json "$ATT" 'j["status"]')" test "$other" = 0
	second=$(atk_sum "$ATT" second_answers)
	want "$second answers came after the first on one connection (of $(atk_sum "$ATT" connections) connections, $(atk_sum "$ATT" answers) answers)" \
		test "$second" -eq 0
	t_end "$fu_desc: a connect-and-exit peer gets 403 unidentified, and its connection closed after that answer"

	c=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --unix-socket "$W" \
		http://k/v1/secrets/app/x)
	want "root's fetches during and after the flood: $(atk_json "$ROOT" 'j["status"]') of $(atk_json "$ROOT" 'j["n"]')" \
		test "$(atk_json "$ROOT" 'j["status"].get("200", 0) == j["n"] >= 50')" = True
	want "root's fetch after the flood gave $c" test "$c" = 200
	used=$(df -k "$S" | awk 'NR == 2 { print $3 }')
	t_end "$fu_desc: root's granted fetch stays 200 (never 503 audit_unavailable) during and after ($used KiB of 6 MiB used)"
	atk_check_kurad "$R" "$fu_desc"

	# Stopped, kurad writes the counts it still owes; then every refusal is accounted for.
	atk_stop_kurad
	# shellcheck disable=SC2046
	set -- $(atk_audit_refusals "$S/audit" "$seq0")
	recs=${1:-0} ind=${2:-0} counted=${3:-0}
	got=$(atk_sum "$ATT" refusals)
	sent=$(atk_sum "$ATT" requests)
	# A principal's flood of T seconds makes at most 2T + 5 records. A connect-and-exit attacker
	# is two principals: its own user (a peer still alive when kurad accepts it) and the one all
	# unidentifiable peers share (already gone): twice that, whatever the number of requests.
	want "$recs refusal records for a $secs s flood ($got refusals received), more than 2*(2*T+5) = $((2 * (2 * secs + 5)))" \
		test "$recs" -le $((2 * (2 * secs + 5)))
	t_end "$fu_desc: refusals are recorded in bounded volume ($recs records for $secs s, $got refusals)"
	want "the records account for $counted refusals ($ind individual, the rest counted), the attacker received $got" \
		test "$counted" -ge "$got"
	want "the records account for $counted refusals, more than the $sent requests sent" \
		test "$counted" -le "$sent"
	t_end "$fu_desc: the records count every refusal received ($counted counted, $got received, $sent sent)"
}

flood_unident nobody "flood by nobody" setpriv --reuid 65534 --regid 65534 --clear-groups \
	"$ATTACK" unident "$T/run-nobody/workload.sock" /v1/secrets/app/x -t 5
if [ "$HAVE_DOCKER" = yes ]; then
	# The attacker container mounts the run directory before its kurad is up: the sockets
	# appear in it when kurad makes them.
	mkdir -p "$T/run-ctr"
	chmod 755 "$T/run-ctr"
	dk run -d --network none --name atk-flooder -v "$T/run-ctr:/run/kura" kura-atk-attacker:1 \
		/bin/sleep 600 >/dev/null 2>"$T/run.err"
	flood_unident ctr "flood from a container" dk exec atk-flooder \
		/attack unident /run/kura/workload.sock /v1/secrets/app/x -t 5
	dk rm -f atk-flooder >/dev/null 2>&1
else
	for d in "a connect-and-exit peer gets 403 unidentified and its connection closed" \
		"root's granted fetch stays 200 during and after" "kurad runs and answers" \
		"refusals are recorded in bounded volume" "the records count every refusal received"; do
		tap_skip "flood from a container: $d" "$WHY_DOCKER"
	done
fi

# --- Finding 2: rate limits per identity, with no collisions.
S=$T/state-rate
R=$T/run-rate
W=$R/workload.sock
RATE=20 BURST=20
printf 'rate = %s\nburst = %s\n' "$RATE" "$BURST" >"$T/kurad-rate.conf"
# shellcheck disable=SC2086
if ! atk_state "$S" || ! atk_start_kurad "$S" "$R" "$T/kurad-rate.conf" $RT; then
	want "kurad did not start: $(tail -n 3 "$T/kurad.log")" false
	t_end "rate limits: setup"
	tap_done
	exit
fi

# uid 305 shared uid 0's bucket in the old 256-slot table.
atk_group "$T/305-att" setpriv --reuid 305 --regid 305 --clear-groups \
	"$ATTACK" flood "$W" /v1/whoami -t 3 -c 2
PG=$ATK_PG
sleep 0.3
"$ATTACK" latency "$W" /v1/secrets/app/x -n 20 -i 100 >"$T/305-root"
atk_wait_group "$PG" 20 || atk_kill_group "$PG"
st=$(atk_json "$T/305-root" 'j["status"]')
n429=$(atk_sum "$T/305-att" status.429)
want "root's fetches while uid 305 floods: $st" \
	test "$(atk_json "$T/305-root" 'j["status"].get("200", 0)')" = 20
want "uid 305 was never refused: $(cat "$T/305-att")" test "$n429" -gt 0
t_end "uid 305 floods: root gets 200 for all 20 fetches, never 429 ($st; uid 305 got $n429 429s)"
sleep 1.5 # the buckets refill

sub_skip() {
	for d in "root's fetches all get 200" "the granted victim container's fetches all get 200" \
		"one user's 64 inner uids share one rate"; do
		tap_skip "64 inner uids of one subuid user flood: $d" "$1"
	done
}
if atk_subuid_setup; then
	VCID=
	if [ "$HAVE_DOCKER" = yes ]; then
		dk run -d --network none --name atk-victim -v "$R:/run/kura" kura-atk-victim:1 \
			/bin/sleep 600 >/dev/null 2>"$T/run.err"
		VCID=$(dk inspect -f '{{.Id}}' atk-victim 2>/dev/null)
		# Warm: the victim is known and served before the attack starts.
		dk exec atk-victim /attack latency /run/kura/workload.sock /v1/secrets/app/x -n 1 \
			>"$T/victim-warm" 2>&1
	fi
	# The attacker picks its inner uids: those whose host uid (START + inner - 1) fell in
	# root's and the victim's bucket of the old table, then others, and inner 0 (the user
	# itself): 64 in all.
	"$ATTACK" collide "$ATK_SUB_START" 65535 uid:0 ${VCID:+container:$VCID} >"$T/collide"
	LIST="0 $( (awk '$3 == "uid:0" { print $1 + 1 }' "$T/collide" | head -n 8
		awk '$3 != "uid:0" { print $1 + 1 }' "$T/collide" | head -n 8
		seq 1 100) | awk '!seen[$1]++' | head -n 63 | tr '\n' ' ')"
	t0=$(date +%s%N)
	atk_userns_group "$T/sub-att" "for i in $LIST; do
		setpriv --reuid=\$i --regid=\$i --clear-groups $ATTACK flood $W /v1/whoami -t 5 -c 1 &
		done; wait"
	PG=$ATK_PG
	sleep 0.5
	"$ATTACK" latency "$W" /v1/secrets/app/x -d 5 -i 100 >"$T/sub-root" &
	RP=$!
	if [ -n "$VCID" ]; then
		dk exec atk-victim /attack latency /run/kura/workload.sock /v1/secrets/app/x \
			-d 5 -i 100 >"$T/sub-victim" 2>&1
	fi
	wait "$RP"
	atk_wait_group "$PG" 30 || atk_kill_group "$PG"
	ms=$(( ($(date +%s%N) - t0) / 1000000 ))

	st=$(atk_json "$T/sub-root" 'j["status"]')
	want "$(atk_lines "$T/sub-att") of 64 attackers reported: $(tail -n 3 "$T/attack.err")" \
		test "$(atk_lines "$T/sub-att")" -eq 64
	want "root's fetches: $st of $(atk_json "$T/sub-root" 'j["n"]')" \
		test "$(atk_json "$T/sub-root" 'j["status"].get("200", 0) == j["n"]')" = True
	t_end "64 inner uids of one subuid user flood: root's fetches all get 200 ($st)"
	if [ -n "$VCID" ]; then
		st=$(atk_json "$T/sub-victim" 'j["status"]')
		want "the victim container's fetches: $st of $(atk_json "$T/sub-victim" 'j["n"]') (warm-up: $(cat "$T/victim-warm"))" \
			test "$(atk_json "$T/sub-victim" 'j["status"].get("200", 0) == j["n"]')" = True
		t_end "64 inner uids flood: the granted victim container's fetches all get 200 ($st)"
	else
		tap_skip "64 inner uids flood: the granted victim container's fetches all get 200" \
			"$WHY_DOCKER"
	fi
	got=$(atk_sum "$T/sub-att" non_429)
	limit=$(awk -v b="$BURST" -v r="$RATE" -v ms="$ms" \
		'BEGIN { printf "%d", (b + r * ms / 1000) * 1.1 }')
	want "the subuid user got $got answers other than 429 in $ms ms, more than (burst + rate*T)*1.1 = $limit" \
		test "$got" -le "$limit"
	t_end "one user's 64 inner uids share one rate: $got non-429 answers in $ms ms <= $limit"
	dk rm -f atk-victim >/dev/null 2>&1
else
	sub_skip "$ATK_WHY"
fi
atk_check_kurad "$R" "the rate floods"
atk_stop_kurad

want "a value reached kurad's log" test -z "$(grep -F "$(cat "$T/value")" "$T/kurad.log")"
t_end "no value in kurad's log"
tap_done

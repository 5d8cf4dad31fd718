# Shared parts of the attack tests and the benchmark's hostile load (POSIX sh, sourced after
# runtimes.sh, and tests/cli/tap.sh for atk_check_kurad): the test's directory and its cleanup,
# states and kurads of its own with a config file, the checks every attack ends with (kurad
# alive, answering, its memory bounded), a real user with subordinate uids, attacker groups
# started and killed by their process group, and the figures the attack tool prints (one JSON
# line each). A test sets $KURAD and $K, then atk_init; the benchmark sets $T itself.

ATK_KPID=
ATK_SUB_UID=
ATK_SUB_LINE=
ATK_GROUPS=
ATK_MOUNTS=

# atk_init NAME ATTACK_TOOL: skip (with the reason) unless root with setpriv and the static
# attack tool; then $T, the test's directory (0755, so every attacker uid reaches its run
# directories), $E2E for the runtimes, $ATTACK (a copy of the tool that every uid may run), and
# an EXIT trap that stops and removes all of it (and calls atk_cleanup_more, if the test has
# one). $T/value is the value granted to root.
atk_init() {
	[ "$(id -u)" -eq 0 ] || { echo "1..0 # SKIP the attack tests run as root"; exit 0; }
	[ -x "$2" ] || { echo "1..0 # SKIP no static attack tool (a sanitizer build)"; exit 0; }
	command -v setpriv >/dev/null 2>&1 || { echo "1..0 # SKIP no setpriv"; exit 0; }
	ATK_NAME=$1
	T=$(mktemp -d "/tmp/kura-attack-$1-XXXXXX")
	chmod 755 "$T"
	E2E=$T/e2e
	mkdir -p "$E2E"
	cp "$2" "$T/attack"
	chmod 755 "$T/attack"
	ATTACK=$T/attack
	printf 'granted-value-for-root-%s' "$1" >"$T/value"
	trap atk_exit EXIT
	trap 'exit 130' INT TERM
}

atk_exit() {
	atk_cleanup
	e2e_cleanup
	command -v atk_cleanup_more >/dev/null 2>&1 && atk_cleanup_more
	[ -f "$T/kurad.log" ] && cp "$T/kurad.log" "/tmp/kurad-attack-$ATK_NAME-last.log"
	rm -rf "$T"
}

# atk_docker_images: dockerd started, and images imported from busybox and the attack tool:
# kura-atk-victim:1 (its ID in VIMG: grants name it) and kura-atk-attacker:1 (another image,
# granted nothing). HAVE_DOCKER is yes or no, WHY_DOCKER says why not.
atk_docker_images() {
	HAVE_DOCKER=yes
	VIMG=
	e2e_start_docker || { HAVE_DOCKER=no; WHY_DOCKER=$E2E_WHY; return 0; }
	e2e_rootfs "$T/root-victim" "$ATTACK"
	e2e_rootfs "$T/root-attacker" "$ATTACK"
	echo attacker >"$T/root-attacker/attacker-image"
	tar -C "$T/root-victim" -cf "$T/victim.tar" .
	tar -C "$T/root-attacker" -cf "$T/attacker.tar" .
	dk import "$T/victim.tar" kura-atk-victim:1 >/dev/null 2>&1
	dk import "$T/attacker.tar" kura-atk-attacker:1 >/dev/null 2>&1
	VIMG=$(dk image inspect -f '{{.Id}}' kura-atk-victim:1 2>/dev/null)
	[ -n "$VIMG" ] || { HAVE_DOCKER=no; WHY_DOCKER="docker import failed"; }
}

# atk_state DIR: a fresh state with app/x (the value in $T/value) granted to root on the host
# and, with Docker, to the victim image.
atk_state() {
	"$K" --state-dir "$1" init >/dev/null &&
		"$K" --offline --state-dir "$1" secret put app/x --file "$T/value" >/dev/null &&
		"$K" --offline --state-dir "$1" grant app/x --host --uid 0 >/dev/null || return 1
	[ "${HAVE_DOCKER:-no}" = yes ] || return 0
	"$K" --offline --state-dir "$1" grant app/x --image "$VIMG" --runtime docker >/dev/null
}

# atk_runtimes: the --runtime options for the runtimes that started.
atk_runtimes() {
	[ "${HAVE_DOCKER:-no}" = yes ] && printf ' --runtime docker=unix:%s' "$E2E/docker.sock"
	[ "${HAVE_PODMAN:-no}" = yes ] && printf ' --runtime podman=unix:%s' "$E2E/podman.sock"
	return 0
}

# atk_json FILE EXPR: EXPR over j, the JSON document in FILE (its last line, for tools that
# print one document a line); empty when FILE does not hold one.
atk_json() {
	python3 - "$1" "$2" 2>/dev/null <<'PY'
import json, sys
lines = [l for l in open(sys.argv[1]) if l.strip()]
j = json.loads(lines[-1])
print(eval(sys.argv[2]))
PY
}

# atk_sum FILE FIELD: the sum of FIELD over every JSON line of FILE (attackers append one
# each); a dotted FIELD goes down objects ("status.429", "codes.too_many_watches").
atk_sum() {
	python3 - "$1" "$2" <<'PY'
import json, sys
n = 0
for l in open(sys.argv[1]):
    try:
        j = json.loads(l)
    except ValueError:
        continue
    for p in sys.argv[2].split("."):
        j = j.get(p, 0) if isinstance(j, dict) else 0
    n += j if isinstance(j, int) else 0
print(n)
PY
}

# atk_lines FILE: how many JSON lines FILE holds.
atk_lines() { grep -c '^{' "$1" 2>/dev/null || true; }

# atk_start_kurad STATE RUN CONF [ARGS...]: kurad on STATE serving RUN with CONF; its pid in
# ATK_KPID, its log appended to $T/kurad.log; returns once admin.sock answers (at most 10 s).
atk_start_kurad() {
	_st=$1 _run=$2 _conf=$3
	shift 3
	"$KURAD" --state-dir "$_st" --run-dir "$_run" --config "$_conf" "$@" >>"$T/kurad.log" 2>&1 &
	ATK_KPID=$!
	for _i in $(seq 1 200); do
		kill -0 "$ATK_KPID" 2>/dev/null || return 1
		curl -s -o /dev/null --max-time 1 --unix-socket "$_run/admin.sock" http://k/v1/status &&
			return 0
		sleep 0.05
	done
	return 1
}

# atk_stop_kurad: SIGTERM (kurad then writes what it still owes the audit log) and wait for it.
atk_stop_kurad() {
	[ -n "$ATK_KPID" ] || return 0
	kill -TERM "$ATK_KPID" 2>/dev/null
	for _i in $(seq 1 100); do
		kill -0 "$ATK_KPID" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$ATK_KPID" 2>/dev/null
	wait "$ATK_KPID" 2>/dev/null
	ATK_KPID=
}

# atk_rss_kib: kurad's VmRSS now.
atk_rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$ATK_KPID/status" 2>/dev/null; }

# atk_check_kurad RUN WHAT: one TAP test: after WHAT, kurad still runs, answers a host root
# process's whoami on RUN/workload.sock and its status on RUN/admin.sock, and its VmRSS is
# under 256 MiB (printed).
atk_check_kurad() {
	_rss=$(atk_rss_kib)
	want "kurad (pid $ATK_KPID) is not running after $2" kill -0 "$ATK_KPID" 2>/dev/null
	_c=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --unix-socket "$1/workload.sock" \
		http://k/v1/whoami)
	want "whoami after $2 gave $_c" test "$_c" = 200
	_c=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --unix-socket "$1/admin.sock" \
		http://k/v1/status)
	want "admin status after $2 gave $_c" test "$_c" = 200
	want "kurad's VmRSS is ${_rss:-unknown} KiB" test "${_rss:-999999}" -lt 262144
	t_end "after $2: kurad runs and answers, VmRSS $(( ${_rss:-0} / 1024 )) MiB < 256 MiB"
}

# atk_tmpfs DIR SIZE: a tmpfs of SIZE at DIR (a small state volume), unmounted at cleanup.
atk_tmpfs() {
	mkdir -p "$1" && mount -t tmpfs -o "size=$2,mode=0700" tmpfs "$1" || return 1
	ATK_MOUNTS="$1 $ATK_MOUNTS"
}

# atk_group OUT CMD...: CMD in the background in a process group of its own (setsid: a
# background job of a non-interactive shell is no group leader, so setsid execs in place and
# the group's id is $!), stdout appended to OUT; the group's id in ATK_PG. atk_kill_group
# kills that group, and only it.
atk_group() {
	_out=$1
	shift
	setsid "$@" >>"$_out" 2>>"$T/attack.err" </dev/null &
	ATK_PG=$!
	ATK_GROUPS="$ATK_GROUPS $ATK_PG"
}
atk_kill_group() {
	kill -s KILL -- "-$1" 2>/dev/null
	for _i in $(seq 1 50); do
		kill -s 0 -- "-$1" 2>/dev/null || break
		sleep 0.1
	done
	kill -s 0 "$1" 2>/dev/null || wait "$1" 2>/dev/null
	ATK_GROUPS=$(echo "$ATK_GROUPS" | tr ' ' '\n' | grep -vx "$1" | tr '\n' ' ')
	return 0
}

# atk_wait_group PG SECONDS: wait for the group's leader to end by itself (at most SECONDS).
atk_wait_group() {
	for _i in $(seq 1 $(($2 * 10))); do
		kill -0 "$1" 2>/dev/null || { wait "$1" 2>/dev/null; return 0; }
		sleep 0.1
	done
	return 1
}

# atk_wait_lines FILE N SECONDS: until FILE holds N JSON lines (at most SECONDS).
atk_wait_lines() {
	for _i in $(seq 1 $(($3 * 10))); do
		[ "$(atk_lines "$1")" -ge "$2" ] && return 0
		sleep 0.1
	done
	return 1
}

# atk_subuid_setup: a real user with 65536 subordinate uids and gids, as useradd gives: a spare
# uid (47000 or the next free one) made a system user with its own group, and a line
# UID:START:65536 added to /etc/subuid and /etc/subgid for a START no other line overlaps.
# Sets ATK_SUB_UID and ATK_SUB_START; returns non-zero (reason in ATK_WHY) if it cannot.
atk_subuid_setup() {
	command -v newuidmap >/dev/null 2>&1 || { ATK_WHY="no newuidmap (Debian's uidmap)"; return 1; }
	unshare --help 2>&1 | grep -q -- --map-auto || { ATK_WHY="unshare has no --map-auto"; return 1; }
	_u=47000
	while getent passwd "$_u" >/dev/null || getent group "$_u" >/dev/null; do
		_u=$((_u + 1))
		[ "$_u" -lt 47100 ] || { ATK_WHY="no spare uid in 47000-47099"; return 1; }
	done
	# A start above every range already handed out, on a 65536 boundary.
	_s=$(cat /etc/subuid /etc/subgid 2>/dev/null | awk -F: 'NF == 3 && $2 + $3 > m { m = $2 + $3 }
		END { m = m < 400000 ? 400000 : m; print int((m + 65535) / 65536) * 65536 }')
	groupadd -r -g "$_u" "kura-atk$_u" 2>/dev/null || { ATK_WHY="groupadd failed"; return 1; }
	if ! useradd -r -u "$_u" -g "$_u" -M -d /nonexistent -s /usr/sbin/nologin "kura-atk$_u" \
		2>/dev/null; then
		groupdel "kura-atk$_u" 2>/dev/null
		ATK_WHY="useradd failed"
		return 1
	fi
	ATK_SUB_UID=$_u
	ATK_SUB_START=$_s
	ATK_SUB_LINE="$_u:$_s:65536"
	echo "$ATK_SUB_LINE" >>/etc/subuid
	echo "$ATK_SUB_LINE" >>/etc/subgid
	return 0
}

# Remove exactly what atk_subuid_setup added (other lines, other users' edits, stay).
atk_subuid_cleanup() {
	[ -n "$ATK_SUB_UID" ] || return 0
	for _f in /etc/subuid /etc/subgid; do
		grep -vx "$ATK_SUB_LINE" "$_f" >"$_f.kura-atk.$$"
		cat "$_f.kura-atk.$$" >"$_f"
		rm -f "$_f.kura-atk.$$"
	done
	userdel "kura-atk$ATK_SUB_UID" 2>/dev/null
	groupdel "kura-atk$ATK_SUB_UID" 2>/dev/null
	ATK_SUB_UID=
}

# atk_userns_group OUT SCRIPT: atk_group of SCRIPT, run by sh as root of a new user namespace
# made by the subuid user (inner uid N >= 1 is host uid ATK_SUB_START + N - 1).
atk_userns_group() {
	atk_group "$1" setpriv --reuid="$ATK_SUB_UID" --regid="$ATK_SUB_UID" --clear-groups \
		unshare -U --map-auto --map-root-user /bin/sh -c "$2"
}

# atk_cleanup: everything the lib started or changed: attacker groups, kurad, mounts, the user.
atk_cleanup() {
	for _pg in $ATK_GROUPS; do
		kill -s KILL -- "-$_pg" 2>/dev/null
	done
	atk_stop_kurad
	for _m in $ATK_MOUNTS; do
		umount -l "$_m" 2>/dev/null
	done
	atk_subuid_cleanup
}

# atk_audit_refusals DIR SEQ: the refusal records of the audit log in DIR after seq SEQ, as
# "RECORDS INDIVIDUAL COUNTED": records with result denied (suppressed ones included),
# individual refusals, and individual plus the counts the "suppressed" records carry.
atk_audit_refusals() {
	python3 - "$1" "$2" <<'PY'
import glob, json, os, sys
d, seq = sys.argv[1], int(sys.argv[2])
rec = ind = counted = 0
for f in sorted(glob.glob(os.path.join(d, "audit-*.jsonl"))):
    for l in open(f, errors="replace"):
        try:
            j = json.loads(l)
        except ValueError:
            continue
        if j.get("seq", 0) <= seq or j.get("result") != "denied":
            continue
        rec += 1
        if j.get("event") == "suppressed":
            counted += int(j.get("count", 0))
        else:
            ind += 1
            counted += 1
print(rec, ind, counted)
PY
}

# atk_audit_seq DIR: the last sequence number written in DIR (0 if none).
atk_audit_seq() {
	python3 - "$1" <<'PY'
import glob, json, os, sys
s = 0
for f in sorted(glob.glob(os.path.join(sys.argv[1], "audit-*.jsonl"))):
    for l in open(f, errors="replace"):
        try:
            s = max(s, json.loads(l).get("seq", 0))
        except ValueError:
            pass
print(s)
PY
}

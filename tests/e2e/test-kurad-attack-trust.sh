#!/bin/sh
# Attacks on what kurad trusts (issue 10, findings 5 and 6), with real parts only: requests whose
# framing is ambiguous (RFC 9112 section 6) on both sockets, and real Docker and Podman
# containers made to look like host processes (--pid=host, a --cgroup-parent kurad does not
# know, root, the run directory mounted; then also --cgroupns=host; then also the host's root
# mounted and chrooted into, so that pid and cgroup namespaces and root are all the host's and
# the mount namespace alone tells) asking for a --host grant and for a value through the
# mounted admin socket; a host root process asks the same (the control). Last, a container of
# a layout kurad does not know (runc, the OCI runtime, with a cgroup path no parser places): root,
# the host's pid and cgroup namespaces, the host's / chrooted into, so that only its mount
# namespace is its own.
# Usage: test-kurad-attack-trust.sh KURAD KURACTL ATTACK
set -u
[ $# -eq 3 ] || { echo "usage: $0 KURAD KURACTL ATTACK" >&2; exit 2; }
KURAD=$1
K=$2
HERE=$(dirname "$0")
. "$HERE/../cli/tap.sh"
. "$HERE/runtimes.sh"
. "$HERE/attack-lib.sh"
atk_init trust "$3"
PARENT=kura-attack-$$
# After the runtimes are gone: the cgroups they made under our unknown parents, deepest first.
atk_cleanup_more() {
	find /sys/fs/cgroup -depth -type d -name "$PARENT-*" 2>/dev/null | while read -r d; do
		find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
	done
}

S=$T/state
R=$T/run
W=$R/workload.sock
A=$R/admin.sock
B64=$(base64 -w0 <"$T/value")
atk_state "$S" || tap_bail "no state: kuractl failed"
printf '# defaults\n' >"$T/kurad.conf"

e2e_start_runtimes
RT=$(atk_runtimes)
# shellcheck disable=SC2086
atk_start_kurad "$S" "$R" "$T/kurad.conf" $RT ||
	tap_bail "kurad did not start: $(tail -n 3 "$T/kurad.log")"

# raw SOCKET NAME REQUEST [RUNTIME CONTAINER]: REQUEST (printf escapes) sent as one write by the
# attack tool, on the host or inside CONTAINER; what came back in $T/NAME.out, the summary in
# $T/NAME.sum.
raw() {
	_sock=$1 _name=$2 _req=$3
	if [ $# -ge 5 ]; then
		# shellcheck disable=SC2059,SC2086
		printf "$_req" | "$4" exec -i "$5" $IN_CONTAINER raw "$_sock" -w 2000 \
			>"$T/$_name.out" 2>"$T/$_name.sum"
	else
		# shellcheck disable=SC2059
		printf "$_req" | "$ATTACK" raw "$_sock" -w 2000 >"$T/$_name.out" 2>"$T/$_name.sum"
	fi
}
sum_() { atk_json "$T/$1.sum" "$2"; }

# --- Finding 5: framing per RFC 9112 section 6, on both sockets.
for sock in workload admin; do
	if [ "$sock" = workload ]; then path=/v1/whoami; s=$W; else path=/v1/status; s=$A; fi
	NEXT="GET $path HTTP/1.1\r\nHost: k\r\n\r\n"
	HEAD="GET $path HTTP/1.1\r\nHost: k\r\n"
	for case in cl-0-7 cl-0-0 cl-te te-te; do
		case $case in
		cl-0-7) req="${HEAD}Content-Length: 0\r\nContent-Length: 7\r\n\r\n$NEXT"
			what="Content-Length: 0 and Content-Length: 7" ;;
		cl-0-0) req="${HEAD}Content-Length: 0\r\nContent-Length: 0\r\n\r\n$NEXT"
			what="Content-Length: 0 twice" ;;
		cl-te) req="${HEAD}Content-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n$NEXT"
			what="Content-Length with Transfer-Encoding" ;;
		te-te) req="${HEAD}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n$NEXT"
			what="Transfer-Encoding twice" ;;
		esac
		raw "$s" "$sock-$case" "$req"
		want "answers: $(cat "$T/$sock-$case.sum") $(head -n 1 "$T/$sock-$case.out")" \
			test "$(sum_ "$sock-$case" 'j["status"][:1] == [400]')" = True
		want "a pipelined second request was answered too: statuses $(sum_ "$sock-$case" 'j["status"]')" \
			test "$(sum_ "$sock-$case" 'j["answers"]')" = 1
		want "the connection was not closed after the answer" \
			test "$(sum_ "$sock-$case" 'j["eof"]')" = True
		t_end "$sock.sock, $what: 400, the connection closed, the pipelined request unanswered ($(sum_ "$sock-$case" 'j["status"]'))"
	done
done

# --- Finding 6: containers that look like host processes.
# never_value NAME: the value (and its base64) is in no answer NAME got.
never_value() {
	! grep -q -F -e "$(cat "$T/value")" -e "$B64" "$T/$1.out"
}
WHO="GET /v1/whoami HTTP/1.1\r\nHost: k\r\nConnection: close\r\n\r\n"
GET="GET /v1/secrets/app/x HTTP/1.1\r\nHost: k\r\nConnection: close\r\n\r\n"
BODY='{"name":"app/x"}'
POST="POST /v1/op/secret.get HTTP/1.1\r\nHost: k\r\nContent-Type: application/json\r\n"
POST="${POST}Content-Length: ${#BODY}\r\nConnection: close\r\n\r\n$BODY"

e2e_rootfs "$T/rootfs" "$ATTACK"
tar -C "$T/rootfs" -cf "$T/rootfs.tar" .
n=0
for rtn in docker podman; do
	if [ "$rtn" = docker ]; then have=$HAVE_DOCKER why=${WHY_DOCKER:-} rt=dk; else
		have=$HAVE_PODMAN why=${WHY_PODMAN:-} rt=pm; fi
	[ "$have" = yes ] && "$rt" import "$T/rootfs.tar" "kura-atk-host:1" >/dev/null 2>&1
	for variant in pid-host cgroupns-host host-root; do
		desc="$rtn container as root with --pid=host, an unknown --cgroup-parent, the run dir"
		extra=
		# The attack tool in the container's root, and the sockets where it mounted them.
		IN_CONTAINER=/attack
		ws=/run/kura/workload.sock
		as=/run/kura/admin.sock
		case $variant in
		cgroupns-host) desc="$desc and --cgroupns=host"; extra=--cgroupns=host ;;
		host-root)
			# chroot(2) into the host's / (CAP_SYS_CHROOT is in every runtime's default
			# set): its root is the host's, and the host's paths are its own.
			desc="$desc, --cgroupns=host and the host's / chrooted into"
			extra="--cgroupns=host -v /:/host:ro"
			IN_CONTAINER="/bin/busybox chroot /host $ATTACK"
			ws=$W
			as=$A ;;
		esac
		if [ "$have" != yes ]; then
			for d in "whoami is 403 unidentified" "the --host grant's secret is 403" \
				"admin.sock secret.get is 403"; do
				tap_skip "$desc: $d" "$why"
			done
			continue
		fi
		n=$((n + 1))
		c=atk-host-$rtn-$variant
		# shellcheck disable=SC2086
		if ! "$rt" run -d --network none --name "$c" --pid=host $extra \
			--cgroup-parent="/$PARENT-$n" -v "$R:/run/kura" kura-atk-host:1 /bin/sleep 600 \
			>/dev/null 2>"$T/run.err"; then
			for d in "whoami is 403 unidentified" "the --host grant's secret is 403" \
				"admin.sock secret.get is 403"; do
				tap_skip "$desc: $d" "$rtn refused the container: $(head -c 200 "$T/run.err")"
			done
			continue
		fi
		# How kurad sees it: the container's init's cgroup on the host, on one v1 line.
		cg=$(grep -m 1 ':memory:' "/proc/$("$rt" inspect -f '{{.State.Pid}}' "$c")/cgroup" \
			2>/dev/null | cut -d: -f3)
		raw "$ws" "$c-whoami" "$WHO" "$rt" "$c"
		want "whoami: $(sum_ "$c-whoami" 'j["status"]') $(tail -n 1 "$T/$c-whoami.out")" \
			test "$(sum_ "$c-whoami" 'j["status"]')" = "[403]"
		want "not refused as unidentified" \
			grep -q '"error": *"unidentified"' "$T/$c-whoami.out"
		t_end "$desc: whoami is 403 unidentified (its cgroup on the host: $cg)"
		raw "$ws" "$c-fetch" "$GET" "$rt" "$c"
		want "the --host --uid 0 secret: $(sum_ "$c-fetch" 'j["status"]')" \
			test "$(sum_ "$c-fetch" 'j["status"]')" = "[403]"
		want "the value reached the container" never_value "$c-fetch"
		t_end "$desc: the --host --uid 0 grant's secret is 403, never the value"
		raw "$as" "$c-admin" "$POST" "$rt" "$c"
		want "POST /v1/op/secret.get: $(sum_ "$c-admin" 'j["status"]') $(cat "$T/$c-admin.sum")" \
			test "$(sum_ "$c-admin" 'j["status"]')" = "[403]"
		want "the value reached the container through admin.sock" never_value "$c-admin"
		t_end "$desc: admin.sock POST /v1/op/secret.get is 403, never the value"
		"$rt" rm -f "$c" >/dev/null 2>&1
	done
done

# --- A container of a layout kurad does not know: runc (the OCI runtime Docker and Podman run)
# under a cgroup path with no container ID in it, so the cgroup says "no container" and only the
# namespaces can tell. Root, no user namespace; the host's pid and cgroup namespaces; the host's
# / mounted and chrooted into (so its root is the host's too); a mount namespace of its own.
RUNC_DESC="runc container of no known layout (root, host pid and cgroup namespaces, the host's / chrooted into)"
RUNC_WHY=
e2e_runc_unknown kura-atk-runc "/$PARENT-runc" "$ATTACK" || RUNC_WHY=$E2E_WHY
if [ -n "$RUNC_WHY" ]; then
	for d in "whoami is 403 unidentified" "the --host grant's secret is 403" \
		"admin.sock secret.get is 403"; do
		tap_skip "$RUNC_DESC: $d" "$RUNC_WHY"
	done
else
	IN_CONTAINER="/bin/busybox chroot /host $ATTACK"
	# shellcheck disable=SC2059,SC2086
	rc_raw() { printf "$3" | e2e_runc_exec kura-atk-runc $IN_CONTAINER raw "$1" -w 2000 \
		>"$T/$2.out" 2>"$T/$2.sum"; }
	RPID=$E2E_RUNC_PID
	want "the runc container shares kurad's pid namespace" \
		test "$(readlink "/proc/$RPID/ns/pid")" = "$(readlink /proc/self/ns/pid)"
	want "the runc container has a mount namespace of its own" \
		test "$(readlink "/proc/$RPID/ns/mnt")" != "$(readlink /proc/self/ns/mnt)"
	rc_raw "$W" runc-whoami "$WHO"
	want "whoami: $(sum_ runc-whoami 'j["status"]') $(tail -n 1 "$T/runc-whoami.out")" \
		test "$(sum_ runc-whoami 'j["status"]')" = "[403]"
	want "not refused as unidentified" grep -q '"error": *"unidentified"' "$T/runc-whoami.out"
	t_end "$RUNC_DESC: whoami is 403 unidentified (cgroup $(cut -d: -f3 "/proc/$RPID/cgroup" | sort -u | tr '\n' ' '))"
	rc_raw "$W" runc-fetch "$GET"
	want "the --host --uid 0 secret: $(sum_ runc-fetch 'j["status"]')" \
		test "$(sum_ runc-fetch 'j["status"]')" = "[403]"
	want "the value reached the container" never_value runc-fetch
	t_end "$RUNC_DESC: the --host --uid 0 grant's secret is 403, never the value"
	rc_raw "$A" runc-admin "$POST"
	want "POST /v1/op/secret.get: $(sum_ runc-admin 'j["status"]') $(cat "$T/runc-admin.sum")" \
		test "$(sum_ runc-admin 'j["status"]')" = "[403]"
	want "the value reached the container through admin.sock" never_value runc-admin
	t_end "$RUNC_DESC: admin.sock POST /v1/op/secret.get is 403, never the value"
	e2e_runc_rm kura-atk-runc
fi

# The control: root on the host gets all three.
raw "$W" host-whoami "$WHO"
want "host whoami: $(cat "$T/host-whoami.out")" grep -q '"host": *true' "$T/host-whoami.out"
st=$(sum_ host-whoami 'j["status"]')
want "host whoami status $st" test "$st" = "[200]"
t_end "control: a host root process's whoami is 200, host"
raw "$W" host-fetch "$GET"
st=$(sum_ host-fetch 'j["status"]')
want "host fetch: $st" test "$st" = "[200]"
want "the host fetch did not carry the value" grep -q -F "$B64" "$T/host-fetch.out"
t_end "control: a host root process reads the --host --uid 0 secret (200)"
raw "$A" host-admin "$POST"
st=$(sum_ host-admin 'j["status"]')
want "host secret.get: $st" test "$st" = "[200]"
want "the host secret.get did not carry the value" grep -q -F "$B64" "$T/host-admin.out"
t_end "control: a host root process gets the value through admin.sock secret.get (200)"

atk_check_kurad "$R" "the framing and impersonation attacks"
atk_stop_kurad
want "a value reached kurad's log" test -z "$(grep -F "$(cat "$T/value")" "$T/kurad.log")"
t_end "no value in kurad's log"
tap_done

#!/bin/sh
# kurad as a systemd service, on a machine whose PID 1 need not be systemd: the units pass
# `systemd-analyze verify`; kurad socket-activated by systemd-socket-activate, under the unit's
# hardening (sd-mounts.sh: ProtectSystem=strict and the other directives that give it a mount
# namespace of its own; sd-fence: its capability bounding set, no_new_privs and seccomp
# filters), serves a Docker container over the passed socket and host peers (root's kuractl on
# admin.sock among them: the host is PID 1's namespaces, not kurad's), and refuses a container
# of no known layout whose mount namespace alone is not the host's; a notify receiver sees READY=1
# before the first answer, WATCHDOG=1 while the children answer and none while the front is
# stopped, RELOADING=1 then READY=1 around SIGHUP, STOPPING=1 at SIGTERM; forged LISTEN_FDS
# (a file, a datagram socket, a socket bound elsewhere, one not listening, an admin.sock others
# may reach) are refused with a clear line, and the passed socket files are never unlinked;
# LISTEN_PID not ours is ignored; a NOTIFY_SOCKET that does not exist stops nothing, an
# abstract one (@NAME) is spoken to; kurad restarted on sockets held for it (as kurad.socket
# holds them) loses no fetch.
# Usage: test-kurad-systemd.sh KURAD KURACTL PROBE SD_FENCE SERVICE SOCKET INSTALLED_KURAD
set -u
[ $# -eq 7 ] || { echo "usage: $0 KURAD KURACTL PROBE SD_FENCE SERVICE SOCKET INSTALLED_KURAD" >&2; exit 2; }
abs() { echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; }
KURAD=$(abs "$1")
K=$2
PROBE=$(abs "$3")
FENCE=$(abs "$4")
SERVICE=$5
SOCKET=$6
INSTALLED=$7
HERE=$(dirname "$0")
. "$HERE/../cli/tap.sh"

[ "$(id -u)" -eq 0 ] || { echo "1..0 # SKIP kurad tests run as root"; exit 0; }
for c in systemd-analyze systemd-socket-activate python3 curl unshare; do
	command -v "$c" >/dev/null 2>&1 || { echo "1..0 # SKIP $c is not installed"; exit 0; }
done

# Not under /tmp: kurad's PrivateTmp= hides it. Its own copies of kurad and the fence, for the
# same reason (a build directory may be under /tmp).
T=$(mktemp -d /var/lib/kura-sd-XXXXXX)
chmod 755 "$T"
mkdir -p "$T/bin"
cp "$KURAD" "$FENCE" "$T/bin/"
KURAD_F=$T/bin/$(basename "$KURAD")
FENCE=$T/bin/$(basename "$FENCE")
E2E=$T
. "$HERE/runtimes.sh"
KPID=
RPID=
STANDIN=
cleanup() {
	[ -n "$KPID" ] && kill -CONT "$KPID" 2>/dev/null
	[ -n "$KPID" ] && kill -9 "$KPID" 2>/dev/null
	[ -n "$RPID" ] && kill "$RPID" 2>/dev/null
	[ -n "$STANDIN" ] && kill "$STANDIN" 2>/dev/null
	e2e_cleanup
	[ -f "$T/kurad.log" ] && cp "$T/kurad.log" /tmp/kurad-systemd-last.log
	rm -rf "$T"
}
trap cleanup EXIT
S=$T/state
R=$T/run
W=$R/workload.sock
A=$R/admin.sock
CAPS=5,6,7,8,19 # CAP_KILL CAP_SETGID CAP_SETUID CAP_SETPCAP CAP_SYS_PTRACE: CapabilityBoundingSet=

# --- the units ---------------------------------------------------------------------------
mkdir -p "$T/units" "$T/bad"
sed "s|^ExecStart=[^ ]*|ExecStart=$KURAD|" "$SERVICE" >"$T/units/kurad.service"
cp "$SOCKET" "$T/units/kurad.socket"
systemd-analyze verify --man=no "$T/units/kurad.socket" "$T/units/kurad.service" \
	>"$T/verify" 2>&1
want "verify: $(cat "$T/verify")" test $? -eq 0 -a ! -s "$T/verify"
want "ExecStart does not name the installed kurad ($INSTALLED): $(grep ^ExecStart= "$SERVICE")" \
	grep -q "^ExecStart=$INSTALLED " "$SERVICE"
for d in Type=notify NotifyAccess=main WatchdogSec= KillMode=mixed RuntimeDirectoryPreserve=yes \
	StateDirectory=kura RuntimeDirectory=kura NoNewPrivileges=yes MemoryDenyWriteExecute=yes \
	'CapabilityBoundingSet=CAP_KILL CAP_SYS_PTRACE CAP_SETUID CAP_SETGID CAP_SETPCAP' \
	'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6' SystemCallArchitectures=native; do
	want "kurad.service lacks $d" grep -q "^$d" "$SERVICE"
done
# The file-system directives give kurad a mount namespace of its own (sd-mounts.sh applies
# them); those that would cut what it needs may not be there: PrivateDevices= and ProtectClock=
# (a closed device policy: a state sealed to the TPM opens /dev/tpmrm0) and ProtectProc=
# (the front, another user, reads peers' /proc entries).
for d in ProtectSystem=strict ProtectHome=yes PrivateTmp=yes ProtectKernelTunables=yes \
	ProtectKernelModules=yes ProtectKernelLogs=yes ProtectControlGroups=yes; do
	want "kurad.service lacks $d" grep -q "^$d\$" "$SERVICE"
done
for d in PrivateDevices ProtectClock ProtectProc; do
	want "kurad.service sets $d" sh -c "! grep -q '^$d=' '$SERVICE'"
done
want "kurad.socket: $(grep ^ListenStream "$SOCKET")" \
	test "$(grep -c '^ListenStream=/run/kura/\(workload\|admin\)\.sock$' "$SOCKET")" -eq 2
# verify can fail: a unit whose program is not there.
sed 's|^ExecStart=[^ ]*|ExecStart=/nonexistent/kurad|' "$SERVICE" >"$T/bad/kurad.service"
cp "$SOCKET" "$T/bad/kurad.socket"
systemd-analyze verify --man=no "$T/bad/kurad.socket" "$T/bad/kurad.service" >/dev/null 2>&1
want "verify passed a unit with no program" test $? -ne 0
t_end "systemd-analyze verify of kurad.service and kurad.socket; ExecStart is the installed kurad"

"$KURAD" --help >"$T/out" 2>&1
want "--help says nothing of socket activation" grep -q 'LISTEN_FDS' "$T/out"
want "--help says nothing of sd_notify" grep -q 'NOTIFY_SOCKET' "$T/out"
t_end "kurad --help mentions socket activation and notify"

"$K" --state-dir "$S" init >/dev/null
printf 'systemd-served-value' >"$T/v1"
"$K" --state-dir "$S" secret put app/x --file "$T/v1" >/dev/null
"$K" --state-dir "$S" grant app/x --host --uid 0 >/dev/null
mkdir -p "$R"
chmod 755 "$R"

# --- forged LISTEN_FDS -------------------------------------------------------------------
# passfd KIND: kurad exec'd with fd 3 of that kind and LISTEN_PID/LISTEN_FDS naming it.
cat >"$T/passfd.py" <<'PY'
import os, socket, stat, sys
kind, run, tmp = sys.argv[1], sys.argv[2], sys.argv[3]
cmd = sys.argv[4:]
pid = os.getpid()
if kind in ("file", "otherpid"):
    fd = os.open(os.path.join(tmp, "v1"), os.O_RDONLY)
elif kind == "dgram":
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(run + "/workload.sock"); fd = s.fileno()
elif kind == "elsewhere":
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.bind(tmp + "/elsewhere.sock"); s.listen(); fd = s.fileno()
elif kind == "misnamed":
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.bind(run + "/workload.sock"); s.listen(); fd = s.fileno()
    os.environ["LISTEN_FDNAMES"] = "admin"
elif kind == "nolisten":
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.bind(run + "/workload.sock"); fd = s.fileno()
elif kind == "admin666":
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.bind(run + "/admin.sock")
    os.chmod(run + "/admin.sock", 0o666); s.listen(); fd = s.fileno()
elif kind == "three":
    fds = []
    for n in ("a", "b", "c"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.bind(tmp + "/" + n + ".sock"); s.listen()
        fds.append(s.detach())
    for i, f in enumerate(fds):
        os.dup2(f, 3 + i)
    os.environ.update(LISTEN_PID=str(pid), LISTEN_FDS="3")
    os.execv(cmd[0], cmd)
os.dup2(fd, 3)
os.set_inheritable(3, True)
os.environ.update(LISTEN_PID="1" if kind == "otherpid" else str(pid), LISTEN_FDS="1")
os.execv(cmd[0], cmd)
PY
refused() {
	rm -f "$W" "$A"
	timeout 30 python3 "$T/passfd.py" "$1" "$R" "$T" "$KURAD" --state-dir "$S" --run-dir "$R" \
		>"$T/out" 2>&1
	_rc=$?
	want "$1: kurad exited $_rc, not 1..3 (refused): $(cat "$T/out")" test "$_rc" -ge 1 -a "$_rc" -le 3
	want "$1: no line saying '$2': $(cat "$T/out")" grep -q "$2" "$T/out"
	want "$1: kurad served anyway" sh -c "! grep -q 'serving' '$T/out'"
}
refused file "LISTEN_FDS: fd 3 is not a socket"
t_end "LISTEN_FDS naming a file: refused"
refused dgram "LISTEN_FDS: fd 3 is not a Unix stream socket"
want "the passed socket file was unlinked" test -S "$W"
t_end "LISTEN_FDS naming a datagram socket: refused, and its file left alone"
refused elsewhere "fd 3 is bound to $T/elsewhere.sock, not $W or $A"
t_end "LISTEN_FDS naming a socket bound elsewhere: refused"
refused nolisten "LISTEN_FDS: fd 3 is not listening"
want "the passed socket file was unlinked" test -S "$W"
t_end "LISTEN_FDS naming a socket that does not listen: refused, and its file left alone"
refused misnamed "LISTEN_FDNAMES: fd 3 is named admin but is bound to $W"
t_end "LISTEN_FDNAMES naming workload.sock admin: refused"
refused admin666 "others could connect to it"
t_end "LISTEN_FDS passing an admin.sock others may connect to: refused"
refused three "kurad takes one or two sockets"
t_end "LISTEN_FDS=3: refused"

# LISTEN_PID not ours: ignored (kurad binds its own); a NOTIFY_SOCKET nobody listens on.
rm -f "$W" "$A"
NOTIFY_SOCKET=$T/nobody.sock python3 "$T/passfd.py" otherpid "$R" "$T" "$KURAD" \
	--state-dir "$S" --run-dir "$R" >"$T/kurad.log" 2>&1 &
KPID=$!
for _i in $(seq 1 100); do
	curl -s -o /dev/null --max-time 1 --unix-socket "$A" http://k/v1/status && break
	sleep 0.1
done
CODE=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --unix-socket "$A" http://k/v1/status)
want "kurad with a foreign LISTEN_PID: admin status $CODE: $(cat "$T/kurad.log")" test "$CODE" = 200
want "no line saying LISTEN_FDS was ignored" grep -q 'LISTEN_FDS ignored: LISTEN_PID 1' "$T/kurad.log"
want "workload.sock is not kurad's own (0666)" test "$(stat -c %a "$W" 2>/dev/null)" = 666
t_end "LISTEN_PID naming another process: ignored, kurad binds its own sockets"
want "no warning about the notify socket: $(cat "$T/kurad.log")" \
	grep -q 'cannot notify the service manager' "$T/kurad.log"
want "kurad stopped serving" curl -s -o /dev/null --max-time 5 --unix-socket "$A" http://k/v1/status
t_end "a NOTIFY_SOCKET that does not exist: a warning, and kurad serves"
kill "$KPID"
wait "$KPID"
want "kurad exited $? at SIGTERM" test $? -eq 0
KPID=
want "kurad left its own sockets behind" test ! -e "$W" -a ! -e "$A"
t_end "kurad's own sockets go with it"

# The receiver: each datagram with the kernel's arrival time (realtime, SO_TIMESTAMPNS).
cat >"$T/recv.py" <<'PY'
import socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, 35, 1)  # SO_TIMESTAMPNS
s.bind("\0" + sys.argv[1][1:] if sys.argv[1].startswith("@") else sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as f:
    while True:
        m, anc, _, _ = s.recvmsg(4096, 64)
        t = 0.0
        for lvl, typ, data in anc:
            if lvl == socket.SOL_SOCKET and typ == 35:
                sec, ns = struct.unpack("qq", data[:16]); t = sec + ns / 1e9
        f.write("%.6f %s\n" % (t, m.decode(errors="replace").replace("\n", " | ")))
PY
# An abstract NOTIFY_SOCKET ('@' name).
rm -f "$W" "$A"
python3 "$T/recv.py" "@kura-sd-test-$$" "$T/abstract.log" &
RPID=$!
# Bound before kurad speaks to it (its first datagram would otherwise be refused).
for _i in $(seq 1 100); do grep -q "@kura-sd-test-$$\$" /proc/net/unix && break; sleep 0.05; done
NOTIFY_SOCKET=@kura-sd-test-$$ "$KURAD" --state-dir "$S" --run-dir "$R" >"$T/kurad.log" 2>&1 &
KPID=$!
for _i in $(seq 1 100); do grep -q READY=1 "$T/abstract.log" 2>/dev/null && break; sleep 0.1; done
kill "$KPID"
wait "$KPID"
KPID=
for _i in $(seq 1 50); do grep -q STOPPING=1 "$T/abstract.log" && break; sleep 0.1; done
want "no READY=1 on the abstract socket: $(cat "$T/abstract.log" "$T/kurad.log")" \
	grep -q 'READY=1 | STATUS=serving' "$T/abstract.log"
want "no STOPPING=1 on the abstract socket" grep -q 'STOPPING=1' "$T/abstract.log"
t_end "NOTIFY_SOCKET naming an abstract socket (@NAME)"
kill "$RPID"
RPID=

# A restart under held sockets goes unnoticed: a holder (as systemd's kurad.socket) keeps both
# sockets and starts kurad on them, again at SIGUSR1; fetches made meanwhile wait in the backlog.
cat >"$T/holder.py" <<'PY'
import os, signal, socket, subprocess, sys
run, cmd = sys.argv[1], sys.argv[2:]
socks = []
for name, mode in (("workload.sock", 0o666), ("admin.sock", 0o600)):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.bind(run + "/" + name)
    os.chmod(run + "/" + name, mode); s.listen(128); socks.append(s)
def start():
    def child():
        for i, s in enumerate(socks):
            os.dup2(s.fileno(), 3 + i)
        os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS="2")
    return subprocess.Popen(cmd, preexec_fn=child, pass_fds=(3, 4))
p = start()
def restart(*_):
    global p
    p.send_signal(signal.SIGTERM); p.wait(); p = start()
def stop(*_):
    p.send_signal(signal.SIGTERM); p.wait(); sys.exit(0)
signal.signal(signal.SIGUSR1, restart)
signal.signal(signal.SIGTERM, stop)
while True:
    signal.pause()
PY
rm -f "$W" "$A"
python3 "$T/holder.py" "$R" "$KURAD" --state-dir "$S" --run-dir "$R" >"$T/kurad.log" 2>&1 &
KPID=$!
for _i in $(seq 1 100); do
	curl -s -o /dev/null --max-time 1 --unix-socket "$A" http://k/v1/status && break
	sleep 0.1
done
: >"$T/codes"
(for _i in $(seq 1 40); do
	curl -s -o /dev/null -w '%{http_code}\n' --max-time 10 --unix-socket "$W" \
		http://kura/v1/secrets/app/x >>"$T/codes"
	sleep 0.05
done) &
LOOP=$!
sleep 0.7
kill -USR1 "$KPID"
wait "$LOOP"
want "a fetch failed across the restart: $(sort "$T/codes" | uniq -c | tr '\n' ' ')" \
	test "$(grep -cv '^200$' "$T/codes")" -eq 0 -a "$(wc -l <"$T/codes")" -eq 40
want "kurad did not restart: $(grep -c 'socket activation' "$T/kurad.log")" \
	test "$(grep -c 'socket activation: workload.sock and admin.sock passed' "$T/kurad.log")" -eq 2
t_end "kurad restarted on held sockets: no fetch fails"
kill "$KPID"
wait "$KPID"
KPID=

# --- socket activation, notify, a container ------------------------------------------------
HAVE_DOCKER=no
if e2e_start_docker; then
	HAVE_DOCKER=yes
	e2e_rootfs "$T/root1" "$PROBE"
	tar -C "$T/root1" -cf "$T/root1.tar" .
	dk import "$T/root1.tar" kura-sd:1 >/dev/null 2>&1
	IMG=$(dk image inspect -f '{{.Id}}' kura-sd:1)
	"$K" --state-dir "$S" grant app/x --image "$IMG" --runtime docker >/dev/null
	RT="--runtime docker=unix:$E2E/docker.sock"
else
	WHY_DOCKER=$E2E_WHY
	RT=
fi

python3 "$T/recv.py" "$T/notify.sock" "$T/notify.log" &
RPID=$!
for _i in $(seq 1 50); do [ -S "$T/notify.sock" ] && break; sleep 0.1; done
touch "$T/notify.log"
rm -f "$W" "$A"
# WATCHDOG_USEC 400 ms: fed every 200 ms.
# The host is PID 1's namespaces (kurad reads them at start). Where PID 1 is not ours to
# inspect (this machine's may be a container's init that forbids it), a process of the test's,
# in the host's namespaces, stands in for it, named by host-pid.
printf '# kurad under the unit\n' >"$T/kurad.conf"
if ! readlink /proc/1/ns/mnt >/dev/null 2>&1; then
	sleep 3600 &
	STANDIN=$!
	printf 'host-pid = %s\n' "$STANDIN" >>"$T/kurad.conf"
	echo "# PID 1's namespaces cannot be read here: host-pid = $STANDIN (a process of the test's) stands in"
fi
# fenced COMMAND...: COMMAND under the unit's mount directives (sd-mounts.sh, in a mount
# namespace of its own: the state and run directories writable, all else read-only), its
# prlimits (systemd's defaults for a service: LimitMEMLOCK=8M, LimitNOFILE=1024 soft, the hard
# limit what this machine allows) and the fence. The chain keeps one pid: each execs the next,
# from the subshell that `fenced ... &` is.
fenced() {
	exec unshare -m --propagation slave sh "$HERE/sd-mounts.sh" "$S" "$R" -- \
		prlimit --memlock=8388608:8388608 --nofile="1024:$(ulimit -Hn)" "$FENCE" "$CAPS" "$@"
}
# shellcheck disable=SC2086
NOTIFY_SOCKET=$T/notify.sock WATCHDOG_USEC=400000 fenced \
	systemd-socket-activate -E NOTIFY_SOCKET -E WATCHDOG_USEC -l "$W" -l "$A" \
	--fdname=workload:admin "$KURAD_F" --config "$T/kurad.conf" --state-dir "$S" --run-dir "$R" \
	$RT >"$T/kurad.log" 2>&1 &
KPID=$!
for _i in $(seq 1 50); do [ -S "$W" ] && [ -S "$A" ] && break; sleep 0.1; done
# As kurad.socket makes them: admin.sock root's alone, workload.sock everyone's.
chmod 600 "$A"
chmod 666 "$W"
want "something was notified before kurad started: $(cat "$T/notify.log")" test ! -s "$T/notify.log"
# The first connection starts kurad; its answer must come after READY=1.
CODE=$(curl -s -o "$T/body" -w '%{http_code}' --max-time 60 --unix-socket "$A" http://k/v1/status)
ANSWERED=$(date +%s.%N)
want "first request: status $CODE: $(cat "$T/kurad.log")" test "$CODE" = 200
for _i in $(seq 1 20); do grep -q READY=1 "$T/notify.log" && break; sleep 0.1; done
READY_AT=$(awk '/READY=1/ { print $1; exit }' "$T/notify.log")
want "no READY=1: $(cat "$T/notify.log")" test -n "$READY_AT"
want "READY=1 at $READY_AT, after the first answer at $ANSWERED" \
	python3 -c "import sys; sys.exit(not float(sys.argv[1]) < float(sys.argv[2]))" \
	"${READY_AT:-9e99}" "$ANSWERED"
want "READY=1 carries no STATUS: $(grep READY=1 "$T/notify.log")" \
	grep -q 'READY=1 | STATUS=serving .*sockets from the service manager' "$T/notify.log"
want "kurad did not say the sockets were passed" \
	grep -q 'socket activation: workload.sock and admin.sock passed' "$T/kurad.log"
t_end "socket-activated: the first connection starts kurad, READY=1 comes before its answer"

ST=/proc/$KPID/status
# The fence's filter and kurad's own: two; a bounding set within the unit's (kurad narrows it
# to CAP_KILL).
want "kurad is not under the fence's filter: $(grep Seccomp_filters "$ST")" \
	grep -q '^Seccomp_filters:	2$' "$ST"
BND=$(awk '/^CapBnd:/ { print $2 }' "$ST")
want "kurad's bounding set $BND is not within the unit's (801e0)" \
	test $((0x${BND:-ffffffffff} & ~0x801e0)) -eq 0
want "kurad has no no_new_privs" grep -q '^NoNewPrivs:	1$' "$ST"
want "a process of kurad was killed: $(grep -i 'killed\|error' "$T/kurad.log")" \
	sh -c "! grep -q 'killed by signal\|exited with status' '$T/kurad.log'"
t_end "kurad runs under the unit's capability bounding set, no_new_privs and filters"

want "kurad shares our mount namespace" \
	test "$(readlink "/proc/$KPID/ns/mnt")" != "$(readlink /proc/self/ns/mnt)"
want "/ is writable to kurad" \
	test "$(awk '$5 == "/" { print $6 }' "/proc/$KPID/mountinfo" | cut -d, -f1)" = ro
want "kurad's /tmp is not its own" \
	test "$(awk '$5 == "/tmp" { print $9 }' "/proc/$KPID/mountinfo")" = tmpfs
want "its state directory is not writable to it" \
	test "$(awk -v d="$S" '$5 == d { print $6 }' "/proc/$KPID/mountinfo" | cut -d, -f1)" = rw
want "kurad did not say where the host's processes are: $(grep -i 'host' "$T/kurad.log")" \
	grep -q 'kurad has a mount namespace of its own: host processes are those in pid' "$T/kurad.log"
t_end "kurad has the unit's mount namespace: / read-only, /tmp its own, the state writable"

CODE=$(curl -s -o "$T/body" -w '%{http_code}' --max-time 10 --unix-socket "$W" \
	http://kura/v1/secrets/app/x)
want "host peer: status $CODE $(cat "$T/body")" test "$CODE" = 200
want "host peer: not the value" grep -q "$(base64 <"$T/v1")" "$T/body"
t_end "a host peer fetches over the passed workload.sock"
"$K" --state-dir "$S" --run-dir "$R" status >"$T/out" 2>&1
want "kuractl status: $(cat "$T/out")" test $? -eq 0
want "kuractl status did not show kurad's processes: $(cat "$T/out")" \
	grep -q '^processes: *supervisor' "$T/out"
t_end "root's kuractl on the host is served on admin.sock (kuractl status)"

# A container of a layout kurad does not know (e2e_runc_unknown): in the host's pid and cgroup
# namespaces and under its root (chroot), under a cgroup path that names no container; only its
# mount namespace differs from the host's and kurad's.
if e2e_runc_unknown sd-runc "/kura-sd-runc-$$" "$PROBE"; then
	e2e_runc_exec sd-runc /bin/busybox chroot /host "$PROBE" "$W" /v1/secrets/app/x \
		>"$T/out" 2>&1
	want "workload.sock: $(head -c 300 "$T/out")" test "$(head -n 1 "$T/out")" = 403
	want "the value reached it" sh -c "! grep -q '$(base64 <"$T/v1")' '$T/out'"
	e2e_runc_exec sd-runc /bin/busybox chroot /host "$PROBE" "$A" /v1/status >"$T/out" 2>&1
	want "admin.sock: $(head -c 300 "$T/out")" test "$(head -n 1 "$T/out")" = 403
	e2e_runc_rm sd-runc
	t_end "a runc container of no known layout, chrooted into the host's /, is refused on both sockets"
else
	tap_skip "a runc container of no known layout is refused on both sockets" "$E2E_WHY"
fi

if [ "$HAVE_DOCKER" = yes ]; then
	dk run -d --network none --name sd-web -v "$R:/run/kura" kura-sd:1 /bin/sleep 600 \
		>/dev/null 2>"$T/run.err"
	want "container did not start: $(cat "$T/run.err")" test $? -eq 0
	dk exec sd-web /probe /run/kura/workload.sock /v1/secrets/app/x >"$T/out" 2>&1
	want "container: $(cat "$T/out") $(tail -5 "$T/kurad.log")" test "$(head -n 1 "$T/out")" = 200
	want "container: not the value" grep -q "$(base64 <"$T/v1")" "$T/out"
	t_end "a Docker container fetches over the passed socket (its run directory mounted)"
else
	tap_skip "a Docker container fetches over the passed socket" "$WHY_DOCKER"
fi

count() { grep -c 'WATCHDOG=1' "$T/notify.log"; }
C0=$(count)
sleep 1
C1=$(count)
want "WATCHDOG=1 $((C1 - C0)) times in a second, fed every 200 ms" test $((C1 - C0)) -ge 3
want "kurad did not say how it feeds the watchdog" grep -q 'watchdog: fed every 200 ms' "$T/kurad.log"
t_end "WATCHDOG_USEC set: WATCHDOG=1 every half period"

FRONT=$(pgrep -P "$KPID" -x kurad-front)
want "no kurad-front under $KPID" test -n "$FRONT"
kill -STOP "$FRONT"
sleep 0.5
C2=$(count)
sleep 1.2
C3=$(count)
want "WATCHDOG=1 $((C3 - C2)) times with the front stopped" test "$C3" -eq "$C2"
want "STATUS does not say the front is silent: $(tail -3 "$T/notify.log")" \
	grep -q 'STATUS=the front process does not answer' "$T/notify.log"
want "the log does not say so" grep -q 'front process did not answer the heartbeat' "$T/kurad.log"
kill -CONT "$FRONT"
sleep 1
C4=$(count)
want "WATCHDOG=1 did not resume once the front went on ($C3 -> $C4)" test "$C4" -gt "$C3"
t_end "a stopped front starves the watchdog; it is fed again once the front goes on"

kill -STOP "$(pgrep -P "$KPID" -x kurad-keeper)"
sleep 0.5
C5=$(count)
sleep 1.2
C6=$(count)
kill -CONT "$(pgrep -P "$KPID" -x kurad-keeper)"
want "WATCHDOG=1 $((C6 - C5)) times with the key custody process stopped" test "$C6" -eq "$C5"
t_end "a stopped key custody process starves the watchdog"
sleep 0.5

N0=$(wc -l <"$T/notify.log")
kill -HUP "$KPID"
for _i in $(seq 1 50); do
	tail -n +"$((N0 + 1))" "$T/notify.log" | grep -q 'READY=1' && break
	sleep 0.1
done
tail -n +"$((N0 + 1))" "$T/notify.log" | grep -v 'WATCHDOG=1$' >"$T/reload"
want "no RELOADING=1 with MONOTONIC_USEC: $(cat "$T/reload")" \
	grep -q 'RELOADING=1 | MONOTONIC_USEC=[0-9][0-9]* | STATUS=reloading' "$T/reload"
want "RELOADING=1 then READY=1, not: $(cat "$T/reload")" \
	test "$(grep -o 'RELOADING=1\|READY=1' "$T/reload" | tr '\n' ' ')" = "RELOADING=1 READY=1 "
CODE=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 --unix-socket "$W" \
	http://kura/v1/secrets/app/x)
want "after the reload: $CODE" test "$CODE" = 200
t_end "SIGHUP: RELOADING=1, then READY=1 once both processes reloaded"

kill -TERM "$KPID"
for _i in $(seq 1 200); do kill -0 "$KPID" 2>/dev/null || break; sleep 0.1; done
wait "$KPID"
RC=$?
KPID=
want "kurad exited $RC at SIGTERM" test "$RC" -eq 0
want "no STOPPING=1: $(tail -3 "$T/notify.log")" grep -q 'STOPPING=1 | STATUS=Terminated' "$T/notify.log"
want "the passed sockets were unlinked" test -S "$W" -a -S "$A"
t_end "SIGTERM: STOPPING=1, exit 0, the passed socket files left to the service manager"

# host-pid naming no process: kurad refuses to start, and says why.
sleep 0 &
GONE=$!
wait "$GONE"
printf 'host-pid = %s\n' "$GONE" >"$T/gone.conf"
rm -f "$W" "$A"
timeout 30 "$KURAD" --config "$T/gone.conf" --state-dir "$S" --run-dir "$R" >"$T/out" 2>&1
RC=$?
want "kurad exited $RC with host-pid = $GONE (gone), not 2: $(cat "$T/out")" test "$RC" -eq 2
want "no line saying why: $(cat "$T/out")" \
	grep -q "host-pid = $GONE: cannot read its namespaces: No such process" "$T/out"
want "kurad served anyway" sh -c "! grep -q 'serving' '$T/out'"
t_end "host-pid naming no process: kurad refuses to start (exit 2)"

# Fail closed: where the host's namespaces cannot be read and no host-pid is set, a kurad with a
# mount namespace of its own takes no host process for one (only those in its own namespace),
# says so, and serves on.
if [ -n "$STANDIN" ]; then
	rm -f "$W" "$A"
	fenced "$KURAD_F" --state-dir "$S" --run-dir "$R" >"$T/kurad.log" 2>&1 &
	KPID=$!
	for _i in $(seq 1 100); do [ -S "$A" ] && break; sleep 0.05; done
	sleep 0.3
	"$K" --state-dir "$S" --run-dir "$R" status >"$T/out" 2>&1
	want "kuractl status was served: $(cat "$T/out")" \
		grep -q 'kurad answered 403: the admin API is for root only' "$T/out"
	CODE=$(curl -s -o "$T/body" -w '%{http_code}' --max-time 10 --unix-socket "$W" \
		http://kura/v1/secrets/app/x)
	want "a host peer was served: $CODE" test "$CODE" = 403
	want "no line saying why: $(cat "$T/kurad.log")" \
		grep -q "cannot read PID 1's namespaces (Permission denied): host processes are those in kurad's own mount namespace alone" "$T/kurad.log"
	want "kurad stopped" kill -0 "$KPID"
	kill "$KPID"
	wait "$KPID"
	KPID=
	t_end "PID 1's namespaces unreadable, no host-pid: host peers refused (403), said at start"
fi

tap_done

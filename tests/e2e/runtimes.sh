# Real container runtimes for the shell e2e tests (POSIX sh, sourced): a private dockerd and a
# private Podman (its own storage, runc, cgroupfs, and an API service), images imported offline
# from a busybox-static root file system, and a cleanup that leaves nothing running or mounted.
# Needs $E2E (a directory of the test's own). See ../../../shared/notes/ENVIRONMENT.md.

DOCKER_BIN=/usr/bin/docker # not whatever `docker` comes first in PATH
E2E_DOCKERD_PID=
E2E_PODMAN_PID=

dk() { DOCKER_HOST="unix://$E2E/docker.sock" "$DOCKER_BIN" "$@"; }
pm() { CONTAINERS_CONF="$E2E/containers.conf" podman --root "$E2E/proot" --runroot "$E2E/prun" "$@"; }

# Wait up to $2 tenths of a second for `curl` to get an answer from the API socket $1.
e2e_wait_api() {
	for _i in $(seq 1 "$2"); do
		curl -s -o /dev/null --max-time 1 --unix-socket "$1" http://d/_ping && return 0
		sleep 0.1
	done
	return 1
}

# Start dockerd; prints nothing, returns non-zero with the reason in $E2E_WHY.
e2e_start_docker() {
	command -v dockerd >/dev/null 2>&1 || { E2E_WHY="dockerd is not installed"; return 1; }
	mkdir -p "$E2E/ddata" "$E2E/dexec"
	dockerd --host "unix://$E2E/docker.sock" --data-root "$E2E/ddata" --exec-root "$E2E/dexec" \
		--pidfile "$E2E/dockerd.pid" --iptables=false --bridge=none \
		>"$E2E/dockerd.log" 2>&1 &
	E2E_DOCKERD_PID=$!
	e2e_wait_api "$E2E/docker.sock" 300 && return 0
	E2E_WHY="dockerd did not answer: $(tail -n 3 "$E2E/dockerd.log" | tr '\n' ' ')"
	return 1
}

e2e_start_podman_service() {
	# Not through pm(): a function in the background is a subshell, and $! must be podman.
	CONTAINERS_CONF="$E2E/containers.conf" podman --root "$E2E/proot" --runroot "$E2E/prun" \
		system service --time=0 "unix://$E2E/podman.sock" >"$E2E/podman.log" 2>&1 &
	E2E_PODMAN_PID=$!
	e2e_wait_api "$E2E/podman.sock" 300
}

e2e_stop_podman_service() {
	[ -n "$E2E_PODMAN_PID" ] || return 0
	kill "$E2E_PODMAN_PID" 2>/dev/null
	wait "$E2E_PODMAN_PID" 2>/dev/null
	E2E_PODMAN_PID=
	rm -f "$E2E/podman.sock"
}

e2e_start_podman() {
	command -v podman >/dev/null 2>&1 || { E2E_WHY="podman is not installed"; return 1; }
	cat >"$E2E/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$E2E/podman-events.log"
CONF
	e2e_start_podman_service && return 0
	E2E_WHY="podman system service did not answer: $(tail -n 3 "$E2E/podman.log" | tr '\n' ' ')"
	return 1
}

# e2e_rootfs DIR FILE...: a root file system of busybox-static plus the given files at /.
e2e_rootfs() {
	_dir=$1
	shift
	mkdir -p "$_dir/bin" "$_dir/run" "$_dir/tmp"
	cp /bin/busybox "$_dir/bin/busybox"
	for _t in sh sleep cat ls echo true; do
		ln -sf busybox "$_dir/bin/$_t"
	done
	for _f in "$@"; do
		cp "$_f" "$_dir/"
	done
}

e2e_cleanup() {
	if [ -n "$E2E_DOCKERD_PID" ]; then
		dk ps -aq 2>/dev/null | xargs -r "$DOCKER_BIN" -H "unix://$E2E/docker.sock" rm -f \
			>/dev/null 2>&1
		kill "$E2E_DOCKERD_PID" 2>/dev/null
		for _i in $(seq 1 100); do
			kill -0 "$E2E_DOCKERD_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$E2E_DOCKERD_PID" 2>/dev/null
	fi
	if command -v podman >/dev/null 2>&1 && [ -f "$E2E/containers.conf" ]; then
		pm rm -af -t 0 >/dev/null 2>&1
		e2e_stop_podman_service
		pm system reset -f >/dev/null 2>&1 || true
	fi
	# Whatever a runtime left mounted under our directory goes before the directory does.
	grep -o " $E2E/[^ ]*" /proc/self/mounts | sort -r | while read -r _m; do
		umount -l "$_m" 2>/dev/null
	done
	if [ -d "$E2E/runc" ]; then
		runc --root "$E2E/runc" list -q 2>/dev/null | while read -r _c; do
			runc --root "$E2E/runc" delete -f "$_c" >/dev/null 2>&1
		done
	fi
	# containerd-shims and conmons of ours that outlived their daemon.
	pkill -f "containerd-shim.*$E2E/" 2>/dev/null
	pkill -f "conmon.*$E2E/" 2>/dev/null
	return 0
}

# e2e_runc_unknown NAME CGROUP FILE...: a container of a layout kurad does not know, started
# with runc (the OCI runtime under Docker and Podman) from a busybox root with FILEs: root, no
# user namespace, in the host's pid and cgroup namespaces, under cgroup path CGROUP (no container
# ID in it, so no parser places it), with CAP_SYS_CHROOT and the host's / at /host, so that
# `chroot /host` gives it the host's root too: only its mount namespace is its own. Its pid in
# E2E_RUNC_PID; non-zero with the reason in E2E_WHY.
e2e_runc_unknown() {
	_n=$1 _cg=$2
	shift 2
	command -v runc >/dev/null 2>&1 || { E2E_WHY="runc is not installed"; return 1; }
	_b=$E2E/bundle-$_n
	e2e_rootfs "$_b/rootfs" "$@"
	mkdir -p "$_b/rootfs/host"
	(cd "$_b" && runc spec) 2>"$_b/spec.err" || { E2E_WHY="runc spec: $(cat "$_b/spec.err")"; return 1; }
	python3 - "$_b/config.json" "$_cg" <<'PY' || { E2E_WHY="cannot write the runc spec"; return 1; }
import json, sys
path, cg = sys.argv[1], sys.argv[2]
c = json.load(open(path))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/sleep", "600"]
for k in ("bounding", "effective", "permitted"):
    c["process"]["capabilities"][k].append("CAP_SYS_CHROOT")
c["root"]["readonly"] = False
c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] not in ("pid", "cgroup")]
c["linux"]["cgroupsPath"] = cg
c["linux"].pop("maskedPaths", None)
c["mounts"].append({"destination": "/host", "type": "bind", "source": "/", "options": ["rbind", "ro"]})
json.dump(c, open(path, "w"))
PY
	runc --root "$E2E/runc" run -d --bundle "$_b" "$_n" >/dev/null 2>"$_b/run.err" </dev/null ||
		{ E2E_WHY="runc run: $(head -c 200 "$_b/run.err")"; return 1; }
	E2E_RUNC_PID=$(runc --root "$E2E/runc" state "$_n" |
		python3 -c 'import json, sys; print(json.load(sys.stdin)["pid"])')
	[ -n "$E2E_RUNC_PID" ] || { E2E_WHY="runc state gave no pid"; return 1; }
}

# e2e_runc_exec NAME COMMAND [ARG...]: COMMAND in the container, its stdin ours.
e2e_runc_exec() {
	_n=$1
	shift
	runc --root "$E2E/runc" exec "$_n" "$@"
}

# e2e_runc_rm NAME
e2e_runc_rm() { runc --root "$E2E/runc" delete -f "$1" >/dev/null 2>&1; }

# Both runtimes, as far as they start: HAVE_DOCKER and HAVE_PODMAN are yes or no, and
# WHY_DOCKER / WHY_PODMAN say why not.
e2e_start_runtimes() {
	HAVE_DOCKER=yes
	HAVE_PODMAN=yes
	e2e_start_docker || { HAVE_DOCKER=no; WHY_DOCKER=$E2E_WHY; }
	e2e_start_podman || { HAVE_PODMAN=no; WHY_PODMAN=$E2E_WHY; }
}

# e2e_start_kurad KURAD STATE RUN_DIR: kurad on STATE with every runtime that started, its log
# in $E2E/kurad.log and its pid in KPID; returns once its admin socket answers (at most 5 s).
e2e_start_kurad() {
	_rt=""
	[ "${HAVE_DOCKER:-no}" = yes ] && _rt="$_rt --runtime docker=unix:$E2E/docker.sock"
	[ "${HAVE_PODMAN:-no}" = yes ] && _rt="$_rt --runtime podman=unix:$E2E/podman.sock"
	# shellcheck disable=SC2086
	"$1" --state-dir "$2" --run-dir "$3" $_rt >"$E2E/kurad.log" 2>&1 &
	KPID=$!
	for _i in $(seq 1 100); do
		curl -s -o /dev/null --max-time 1 --unix-socket "$3/admin.sock" http://k/v1/status &&
			return 0
		sleep 0.05
	done
	return 1
}

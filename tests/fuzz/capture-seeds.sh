#!/bin/sh
# Captures real seeds for the fuzz targets from a private dockerd and Podman on this host: the
# /proc/<pid>/cgroup of containers (and of pid 1), and the runtimes' answers to
# GET /containers/{id}/json and /images/{id}/json. Run as root from the source tree:
#   sh tests/fuzz/capture-seeds.sh
# It overwrites tests/fuzz/corpus-cgroup/real-* and corpus-runtime/real-*; commit what changed.
set -u
here=$(cd "$(dirname "$0")" && pwd)
E2E=$(mktemp -d /tmp/kura-seeds.XXXXXX)
export E2E
# shellcheck source=../e2e/runtimes.sh
. "$here/../e2e/runtimes.sh"

cg="$here/corpus-cgroup"
rt="$here/corpus-runtime"
mkdir -p "$cg" "$rt"

stop() {
	[ -n "$E2E_DOCKERD_PID" ] && {
		dk ps -aq | xargs -r "$DOCKER_BIN" -H "unix://$E2E/docker.sock" rm -f >/dev/null 2>&1
		kill "$E2E_DOCKERD_PID" 2>/dev/null
		wait "$E2E_DOCKERD_PID" 2>/dev/null
	}
	[ -f "$E2E/containers.conf" ] && {
		pm rm -af -t 0 >/dev/null 2>&1
		e2e_stop_podman_service
		pm system reset -f >/dev/null 2>&1
	}
	grep -o " $E2E/[^ ]*" /proc/self/mounts | sort -r | while read -r m; do
		umount -l "$m" 2>/dev/null
	done
	rm -rf "$E2E"
}
trap stop EXIT

cp /proc/1/cgroup "$cg/real-host-pid1"
chmod 644 "$cg/real-host-pid1"

# api SOCKET PATH OUT: one GET, the body kept as it came.
api() { curl -sf --unix-socket "$1" "http://d/v1.41$2" >"$3"; }

# grab SOCKET PREFIX ID [image]: the container's cgroup file and its JSON answer, and its
# image's when asked.
grab() {
	api "$1" "/containers/$3/json" "$rt/real-$2-container.json"
	pid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["State"]["Pid"])' \
		"$rt/real-$2-container.json")
	cp "/proc/$pid/cgroup" "$cg/real-$2"
	chmod 644 "$cg/real-$2"
	[ "${4:-}" = image ] || return 0
	img=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["Image"])' \
		"$rt/real-$2-container.json")
	api "$1" "/images/$img/json" "$rt/real-$2-image.json"
}

e2e_rootfs "$E2E/rootfs"
tar -C "$E2E/rootfs" -cf "$E2E/rootfs.tar" .

if e2e_start_docker; then
	dk import --change 'LABEL app=web' "$E2E/rootfs.tar" kura-seed:1 >/dev/null
	id=$(dk run -d --network none --label team=db kura-seed:1 /bin/sleep 120)
	grab "$E2E/docker.sock" docker "$id" image
	id=$(dk run -d --network none --cgroup-parent /custom-parent kura-seed:1 /bin/sleep 120)
	grab "$E2E/docker.sock" docker-cgroup-parent "$id"
	id=$(dk create --network none kura-seed:1 /bin/true)
	api "$E2E/docker.sock" "/containers/$id/json" "$rt/real-docker-created-container.json"
	dk start "$id" >/dev/null && dk wait "$id" >/dev/null && dk rm "$id" >/dev/null
	api "$E2E/docker.sock" "/events?since=0&until=$(date +%s)" "$rt/real-docker-events"
else
	echo "capture-seeds: no docker: $E2E_WHY" >&2
fi

if e2e_start_podman; then
	pm import --change 'LABEL app=web' "$E2E/rootfs.tar" kura-seed-1 >/dev/null
	# Podman's API answers since/until with nothing here: follow the stream as kurad does.
	curl -sN --max-time 120 --unix-socket "$E2E/podman.sock" "http://d/v1.41/events" \
		>"$rt/real-podman-events" &
	events=$!
	sleep 1
	id=$(pm run -d --network none --label team=db kura-seed-1 /bin/sleep 120)
	grab "$E2E/podman.sock" podman "$id" image
	id=$(pm run -d --network none --cgroup-parent /custom-parent kura-seed-1 /bin/sleep 120)
	grab "$E2E/podman.sock" podman-cgroup-parent "$id"
	pm stop -t 0 "$id" >/dev/null && pm rm "$id" >/dev/null
	sleep 1
	kill "$events" && wait "$events"
else
	echo "capture-seeds: no podman: $E2E_WHY" >&2
fi
ls -l "$cg"/real-* "$rt"/real-*

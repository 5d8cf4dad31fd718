#!/bin/sh
# kurad and real containers: a private dockerd and a private Podman started here, images
# imported offline, a static probe inside the containers asking kurad over the mounted socket.
# Who the container is, what its grants let it read, what they do not, a stopped container
# dropped, and a runtime that goes away (503 within the bound) and comes back.
# Usage: test-kurad-containers.sh KURAD KURACTL PROBE
set -u
[ $# -eq 3 ] || { echo "usage: $0 KURAD KURACTL PROBE" >&2; exit 2; }
KURAD=$1
K=$2
PROBE=$3
HERE=$(dirname "$0")
. "$HERE/../cli/tap.sh"

if [ "$(id -u)" -ne 0 ]; then
	echo "1..0 # SKIP container tests run as root"
	exit 0
fi
[ -x "$PROBE" ] || { echo "1..0 # SKIP no static probe (a sanitizer build)"; exit 0; }

E2E=$(mktemp -d /tmp/kura-e2e-XXXXXX)
chmod 755 "$E2E"
. "$HERE/runtimes.sh"
KPID=
cleanup() {
	[ -n "$KPID" ] && kill "$KPID" 2>/dev/null && wait "$KPID" 2>/dev/null
	e2e_cleanup
	[ -f "$E2E/kurad.log" ] && cp "$E2E/kurad.log" /tmp/kurad-containers-last.log
	rm -rf "$E2E"
}
trap cleanup EXIT
S=$E2E/state
R=$E2E/run

e2e_start_runtimes

e2e_rootfs "$E2E/root1" "$PROBE"
e2e_rootfs "$E2E/root2" "$PROBE"
echo other >"$E2E/root2/other-image"
tar -C "$E2E/root1" -cf "$E2E/root1.tar" .
tar -C "$E2E/root2" -cf "$E2E/root2.tar" .

"$K" --state-dir "$S" init >/dev/null
printf 'docker-db-password' >"$E2E/v-db"
printf 'label-gated' >"$E2E/v-lab"
printf 'podman-token' >"$E2E/v-pm"
printf 'web-by-run-label' >"$E2E/v-web"
printf 'web-by-image-label' >"$E2E/v-img"
printf 'db-by-run-label' >"$E2E/v-tier"
"$K" --state-dir "$S" secret put app/db --file "$E2E/v-db" >/dev/null
"$K" --state-dir "$S" secret put app/lab --file "$E2E/v-lab" >/dev/null
"$K" --state-dir "$S" secret put pm/token --file "$E2E/v-pm" >/dev/null
"$K" --state-dir "$S" secret put lab/web --file "$E2E/v-web" >/dev/null
"$K" --state-dir "$S" secret put lab/img --file "$E2E/v-img" >/dev/null
"$K" --state-dir "$S" secret put lab/tier --file "$E2E/v-tier" >/dev/null

e2e_start_kurad "$KURAD" "$S" "$R"

# ask RUNTIME CONTAINER PATH: the probe inside the container; status in $CODE, body in $E2E/body.
ask() {
	_rt=$1
	shift
	"$_rt" exec "$1" /probe /run/kura/workload.sock "$2" >"$E2E/out" 2>&1
	CODE=$(head -n 1 "$E2E/out")
	tail -n +2 "$E2E/out" >"$E2E/body"
}
# reads RUNTIME CONTAINER SECRET FILE: the container reads SECRET and gets FILE's bytes.
reads() {
	ask "$1" "$2" "/v1/secrets/$3"
	want "$2 reading $3: status $CODE $(cat "$E2E/body")" test "$CODE" = 200 &&
		want "$2 reading $3: value $(b64val)" test "$(b64val)" = "$(cat "$4")"
}
jq_() { python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$E2E/body" "$1" 2>/dev/null; }
b64val() { jq_ '__import__("base64").b64decode(j["value"]).decode()'; }

# wait_state RUNTIME NAME true|false: until the runtime says the container is (not) running,
# at most 15 s.
# status_ SECTION KEY: a figure of kurad's /v1/status.
status_() {
	curl -s --max-time 5 --unix-socket "$R/admin.sock" http://k/v1/status |
		python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]][sys.argv[2]])' "$1" "$2"
}

wait_state() {
	for _i in $(seq 1 150); do
		[ "$("$1" inspect -f '{{.State.Running}}' "$2" 2>/dev/null)" = "$3" ] && return 0
		sleep 0.1
	done
	return 1
}

# run RUNTIME NAME IMAGE LABEL: a detached container with the workload socket mounted.
run() {
	"$1" run -d --network none --name "$2" --label "tier=$4" \
		-v "$R:/run/kura:ro" "$3" /bin/sleep 600 >/dev/null 2>"$E2E/run.err"
}

for RTN in docker podman; do
	if [ "$RTN" = docker ]; then
		have=$HAVE_DOCKER why=${WHY_DOCKER:-}
		rt=dk
	else
		have=$HAVE_PODMAN why=${WHY_PODMAN:-}
		rt=pm
	fi
	if [ "$have" != yes ]; then
		for t in prefetch one-inspect whoami grant-image other-image audit label-mismatch label-match \
			image-label-not-own image-label-whoami image-label-grant same-value \
			run-label stopped; do
			tap_skip "$RTN: $t" "$why"
		done
		continue
	fi
	"$rt" import "$E2E/root1.tar" "kura-e2e-$RTN:1" >/dev/null 2>&1
	"$rt" import "$E2E/root2.tar" "kura-e2e-$RTN:2" >/dev/null 2>&1
	IMG1=$("$rt" image inspect -f '{{.Id}}' "kura-e2e-$RTN:1")
	IMG2=$("$rt" image inspect -f '{{.Id}}' "kura-e2e-$RTN:2")
	case $IMG1 in sha256:*) ;; *) IMG1=sha256:$IMG1 ;; esac
	case $IMG2 in sha256:*) ;; *) IMG2=sha256:$IMG2 ;; esac
	want "images did not import: $IMG1 $IMG2" test "${#IMG1}" -eq 71 -a "$IMG1" != "$IMG2"
	P0=$(curl -s --max-time 5 --unix-socket "$R/admin.sock" http://k/v1/status |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["identity"]["prefetches"])')
	run "$rt" "$RTN-web" "kura-e2e-$RTN:1" web
	want "container did not start: $(cat "$E2E/run.err")" test $? -eq 0
	run "$rt" "$RTN-other" "kura-e2e-$RTN:2" web
	run "$rt" "$RTN-db" "kura-e2e-$RTN:1" db
	# Each start was looked up when its event came, before the container asked.
	n=0
	while [ $n -lt 30 ]; do
		P1=$(curl -s --max-time 5 --unix-socket "$R/admin.sock" http://k/v1/status |
			python3 -c 'import json,sys; print(json.load(sys.stdin)["identity"]["prefetches"])')
		[ "$P1" -ge $((P0 + 3)) ] && break
		sleep 0.1
		n=$((n + 1))
	done
	want "three starts gave $((P1 - P0)) prefetches" test "$P1" -ge $((P0 + 3))
	t_end "$RTN: kurad looks a container up when it starts (identity-prefetch)"
	# A container that asks at once, five times, as `kura run` does: its runtime is asked about
	# it once, whether the first request comes before the start event (the event's prefetch
	# then joins that request's inspect, whose answer is kept) or after it.
	I0=$(status_ identity inspects)
	"$rt" run -d --network none --name "$RTN-quick" -v "$R:/run/kura:ro" "kura-e2e-$RTN:1" \
		/bin/sh -c 'for i in 1 2 3 4 5; do /probe /run/kura/workload.sock /v1/whoami; done' \
		>/dev/null 2>"$E2E/run.err"
	wait_state "$rt" "$RTN-quick" false
	"$rt" logs "$RTN-quick" >"$E2E/quick.out" 2>&1
	I1=$(status_ identity inspects)
	want "the five requests: $(grep -c '^200$' "$E2E/quick.out") answered 200: $(head -c 300 "$E2E/quick.out")" \
		test "$(grep -c '^200$' "$E2E/quick.out")" -eq 5
	want "$((I1 - I0)) inspects for one container's start and five requests" test $((I1 - I0)) -eq 1
	t_end "$RTN: one runtime inspect for a container that asks five times as it starts"
	CID=$("$rt" inspect -f '{{.Id}}' "$RTN-web")
	CIMG=$("$rt" inspect -f '{{.Image}}' "$RTN-web")
	case $CIMG in sha256:*) ;; *) CIMG=sha256:$CIMG ;; esac

	ask "$rt" "$RTN-web" /v1/whoami
	want "whoami: $CODE $(cat "$E2E/body")" test "$CODE" = 200
	want "container_id $(jq_ 'j.get("container_id")') is not $CID" \
		test "$(jq_ 'j.get("container_id")')" = "$CID"
	want "image_id $(jq_ 'j.get("image_id")') is not $CIMG" test "$(jq_ 'j.get("image_id")')" = "$CIMG"
	want "runtime $(jq_ 'j.get("runtime")')" test "$(jq_ 'j.get("runtime")')" = "$RTN"
	want "name $(jq_ 'j.get("name")')" test "$(jq_ 'j.get("name")')" = "$RTN-web"
	want "label $(jq_ 'j["labels"].get("tier")')" test "$(jq_ 'j["labels"].get("tier")')" = web
	t_end "$RTN: whoami from inside a container reports its ID, name, image ID and labels"

	secret=app/db vfile=$E2E/v-db
	[ "$RTN" = podman ] && secret=pm/token vfile=$E2E/v-pm
	"$K" --state-dir "$S" grant "$secret" --image "$IMG1" --runtime "$RTN" >/dev/null
	ask "$rt" "$RTN-web" "/v1/secrets/$secret"
	want "status $CODE $(cat "$E2E/body")" test "$CODE" = 200
	want "value $(b64val)" test "$(b64val)" = "$(cat "$vfile")"
	ask "$rt" "$RTN-web" /v1/secrets
	want "list: $(cat "$E2E/body")" grep -q "\"$secret\"" "$E2E/body"
	t_end "$RTN: a grant by image ID lets the container read the secret"

	ask "$rt" "$RTN-other" "/v1/secrets/$secret"
	want "status $CODE $(cat "$E2E/body")" test "$CODE" = 403
	ask "$rt" "$RTN-other" /v1/secrets
	want "list for another image: $(cat "$E2E/body")" test "$(jq_ 'len(j["secrets"])')" = 0
	t_end "$RTN: a container of another image gets 403 and an empty list"

	# The evidence outlives the container: both fetches are in the audit log, with the
	# container and image kurad derived (not anything the container said).
	OID=$("$rt" inspect -f '{{.Id}}' "$RTN-other")
	python3 - "$S/audit" "$secret" "$CID" "$CIMG" "$RTN" "$OID" >"$E2E/audit-check" 2>&1 <<'PY'
import glob, json, os, sys
d, secret, cid, cimg, rtn, oid = sys.argv[1:]
r = [json.loads(l) for f in sorted(glob.glob(os.path.join(d, "audit-*.jsonl")))
     for l in open(f) if l.endswith("\n")]
ok = [x for x in r if x.get("event") == "fetch" and x.get("result") == "ok"
      and x.get("secret") == secret and x.get("container_id") == cid]
assert ok, "no allowed fetch of %s by %s" % (secret, cid)
x = ok[-1]
assert x["image_id"] == cimg, x
assert x["runtime"] == rtn and x["container_name"] == rtn + "-web" and not x["host"], x
assert x["fingerprint"].startswith("b2:") and x["version"] >= 1, x
den = [x for x in r if x.get("event") == "fetch" and x.get("container_id") == oid]
assert den and den[-1]["result"] == "denied" and den[-1]["reason"] == "no_grant", den
print(json.dumps(x))
PY
	want "audit log: $(cat "$E2E/audit-check")" test $? -eq 0
	t_end "$RTN: the audit log records the container's fetch with its ID, name and image, and the other's denial"

	"$K" --state-dir "$S" grant app/lab --image "$IMG1" --label tier=db >/dev/null
	ask "$rt" "$RTN-web" /v1/secrets/app/lab
	want "status $CODE $(cat "$E2E/body")" test "$CODE" = 403
	t_end "$RTN: the same image with a non-matching label gets 403"
	ask "$rt" "$RTN-db" /v1/secrets/app/lab
	want "status $CODE $(cat "$E2E/body")" test "$CODE" = 200
	want "value $(b64val)" test "$(b64val)" = "$(cat "$E2E/v-lab")"
	t_end "$RTN: the same image with the matching label reads it"

	# Issue 10, finding 7: the image author's LABEL app=web is not a label of the container.
	# Config.Labels merges the two; a --label grant must see only what the run set.
	"$rt" import --change 'LABEL app=web' "$E2E/root1.tar" "kura-e2e-$RTN:lab" >/dev/null 2>&1
	IMGL=$("$rt" image inspect -f '{{.Id}}' "kura-e2e-$RTN:lab")
	case $IMGL in sha256:*) ;; *) IMGL=sha256:$IMGL ;; esac
	"$rt" run -d --network none --name "$RTN-lab" -v "$R:/run/kura:ro" \
		"kura-e2e-$RTN:lab" /bin/sleep 600 >/dev/null 2>"$E2E/run.err"
	want "container did not start: $(cat "$E2E/run.err")" test $? -eq 0
	"$rt" run -d --network none --name "$RTN-labdb" --label tier=db \
		-v "$R:/run/kura:ro" "kura-e2e-$RTN:lab" /bin/sleep 600 >/dev/null \
		2>"$E2E/run.err"
	want "container did not start: $(cat "$E2E/run.err")" test $? -eq 0
	"$rt" run -d --network none --name "$RTN-labsame" --label app=web \
		-v "$R:/run/kura:ro" "kura-e2e-$RTN:lab" /bin/sleep 600 >/dev/null \
		2>"$E2E/run.err"
	want "container did not start: $(cat "$E2E/run.err")" test $? -eq 0
	"$K" --state-dir "$S" grant lab/web --label app=web >/dev/null
	ask "$rt" "$RTN-lab" /v1/secrets/lab/web
	want "status $CODE $(cat "$E2E/body")" test "$CODE" = 403
	ask "$rt" "$RTN-lab" /v1/secrets
	want "list: $(cat "$E2E/body")" \
		test "$(jq_ '"lab/web" in [x["name"] for x in j["secrets"]]')" = False
	t_end "$RTN: an image's LABEL app=web does not satisfy --label app=web (403)"

	ask "$rt" "$RTN-lab" /v1/whoami
	want "whoami: $CODE $(cat "$E2E/body")" test "$CODE" = 200
	want "labels $(jq_ 'j["labels"]')" test "$(jq_ 'j["labels"]')" = "{}"
	want "image_labels $(jq_ 'j.get("image_labels")')" \
		test "$(jq_ 'j.get("image_labels")')" = "{'app': 'web'}"
	"$K" whois "$RTN-labdb" --run-dir "$R" --json >"$E2E/body" 2>&1
	want "whois: $(cat "$E2E/body")" \
		test "$(jq_ 'sorted(j["identity"]["labels"].items())')" = "[('tier', 'db')]"
	want "whois image_labels: $(jq_ 'j["identity"].get("image_labels")')" \
		test "$(jq_ 'j["identity"].get("image_labels")')" = "{'app': 'web'}"
	t_end "$RTN: whoami and whois show the container's own labels and the image's apart"

	"$K" --state-dir "$S" grant lab/img --image-label app=web >"$E2E/out" 2>&1
	want "grant --image-label: $(cat "$E2E/out")" grep -q -- "--image-label app=web" "$E2E/out"
	reads "$rt" "$RTN-lab" lab/img "$E2E/v-img"
	ask "$rt" "$RTN-web" /v1/secrets/lab/img
	want "an image without the label: $CODE" test "$CODE" = 403
	t_end "$RTN: --image-label app=web lets that image's container read (and no other image's)"

	ask "$rt" "$RTN-labsame" /v1/secrets/lab/web
	want "status $CODE $(cat "$E2E/body")" test "$CODE" = 403
	t_end "$RTN: a run label equal to the image's counts as the image's (fail closed)"

	"$K" --state-dir "$S" grant lab/tier --label tier=db >/dev/null
	reads "$rt" "$RTN-labdb" lab/tier "$E2E/v-tier"
	ask "$rt" "$RTN-lab" /v1/secrets/lab/tier
	want "the unlabelled one: $CODE" test "$CODE" = 403
	t_end "$RTN: a label set at run (--label tier=db) satisfies --label tier=db"

	"$K" whois "$RTN-web" --run-dir "$R" >"$E2E/whois" 2>&1
	want "whois before stop: $(cat "$E2E/whois")" grep -q "$CID" "$E2E/whois"
	"$rt" stop -t 0 "$RTN-web" >/dev/null 2>&1
	# Bounded waits, not sleeps: first the runtime's own word that it stopped, then kurad's.
	wait_state "$rt" "$RTN-web" false
	for i in $(seq 1 50); do
		"$K" whois "$RTN-web" --run-dir "$R" >"$E2E/whois" 2>&1
		rc=$?
		[ "$rc" -eq 1 ] && break
		sleep 0.1
	done
	want "whois of a stopped container exited $rc: $(cat "$E2E/whois")" test "$rc" -eq 1
	t_end "$RTN: a stopped container's identity is dropped"
done

# The runtime goes away: requests from its containers get 503 within the bound, other
# runtimes' containers are served meanwhile, and service comes back by itself.
if [ "$HAVE_PODMAN" = yes ]; then
	pm start podman-web >/dev/null 2>&1
	want "podman-web did not start again" wait_state pm podman-web true
	e2e_stop_podman_service
	t0=$(date +%s%N)
	ask pm podman-web /v1/whoami
	t1=$(date +%s%N)
	ms=$(( (t1 - t0) / 1000000 ))
	want "status $CODE $(cat "$E2E/body")" test "$CODE" = 503
	want "took $ms ms" test "$ms" -lt 3000
	t_end "runtime down: 503 within the 2 s bound ($ms ms including podman exec)"
	if [ "$HAVE_DOCKER" = yes ]; then
		ask dk docker-db /v1/whoami
		want "docker container during the podman outage: $CODE" test "$CODE" = 200
		t_end "other runtimes' containers are served while one runtime is down"
	else
		tap_skip "other runtimes' containers are served while one runtime is down" "$WHY_DOCKER"
	fi
	e2e_start_podman_service
	ok=no
	for i in $(seq 1 30); do
		ask pm podman-web /v1/whoami
		[ "$CODE" = 200 ] && { ok=yes; break; }
		sleep 0.2
	done
	want "no recovery: $CODE $(cat "$E2E/body")" test "$ok" = yes
	t_end "service recovers by itself when the runtime is back"
else
	tap_skip "runtime down: 503 within the 2 s bound" "$WHY_PODMAN"
	tap_skip "other runtimes' containers are served while one runtime is down" "$WHY_PODMAN"
	tap_skip "service recovers by itself when the runtime is back" "$WHY_PODMAN"
fi

curl -s -o "$E2E/body" --unix-socket "$R/workload.sock" http://k/v1/whoami
want "host whoami: $(cat "$E2E/body")" test "$(jq_ 'j["host"]')" = True
t_end "a host process is still 'host'"
want "a value reached kurad's log" test -z "$(cat "$E2E"/v-* | grep -F -f - "$E2E/kurad.log")"
t_end "no value in kurad's log"

tap_done

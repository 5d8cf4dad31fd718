#!/bin/sh
# kurad's metrics and status (issue 13, item 3), and its start-up warnings about runtimes (item
# 4): a real kurad and a real Docker container; GET /metrics on admin.sock parsed with
# prometheus_client's text parser; counters that move by exactly what real fetches did (granted,
# denied, rate-limited, from a container); histogram counts that match; `kuractl status --json`
# agreeing with the scrape; and the attacker's side: an unprivileged user and a container cannot
# read /metrics, and no scrape carries a secret's value or name.
# Usage: test-kurad-metrics.sh KURAD KURACTL ATTACK
set -u
[ $# -eq 3 ] || { echo "usage: $0 KURAD KURACTL ATTACK" >&2; exit 2; }
KURAD=$1
K=$2
HERE=$(dirname "$0")
. "$HERE/../cli/tap.sh"
. "$HERE/runtimes.sh"
. "$HERE/attack-lib.sh"
command -v curl >/dev/null 2>&1 || { echo "1..0 # SKIP curl is needed"; exit 0; }
# Debian's python3-prometheus-client lives in the system's python3, which need not be the
# python3 first in PATH.
PY=
for _p in python3 /usr/bin/python3; do
	if "$_p" -c 'import prometheus_client.parser' 2>/dev/null; then
		PY=$_p
		break
	fi
done
[ -n "$PY" ] || { echo "1..0 # SKIP no python3 with prometheus_client (python3-prometheus-client)"; exit 0; }
atk_init metrics "$3"
UHTTP=$(cd "$HERE/../tools" && pwd)

S=$T/state
R=$T/run
W=$R/workload.sock
A=$R/admin.sock
VALUE=$(cat "$T/value")

# scrape NAME: GET /metrics into $T/NAME.prom; then parse it, strictly, into $T/NAME.json:
# {"name{k=v,...}": value} for every sample, and {"#types": {family: type}}.
scrape() {
	curl -s -f --max-time 5 --unix-socket "$A" -o "$T/$1.prom" http://k/metrics || return 1
	"$PY" - "$T/$1.prom" "$T/$1.json" <<'PY'
import json, re, sys
from prometheus_client.parser import text_string_to_metric_families
text = open(sys.argv[1], encoding="utf-8").read()
# The format's own rules, beyond what the parser forgives: names, one HELP and TYPE each.
name = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
seen = set()
for line in text.splitlines():
    if line.startswith("# HELP ") or line.startswith("# TYPE "):
        key = line.split(" ")[1:3]
        assert name.match(key[1]), line
        assert tuple(key) not in seen, "twice: " + line
        seen.add(tuple(key))
    else:
        assert line and not line.startswith("#"), repr(line)
out, types = {}, {}
for fam in text_string_to_metric_families(text):
    types[fam.name] = fam.type
    for s in fam.samples:
        lab = ",".join("%s=%s" % kv for kv in sorted(s.labels.items()))
        out["%s{%s}" % (s.name, lab)] = s.value
out["#types"] = types
json.dump(out, open(sys.argv[2], "w"))
PY
}

# m NAME KEY: the sample KEY ('kura_fetches_total{reason=ok,result=ok}') of scrape NAME.
m() {
	"$PY" -c 'import json,sys; v=json.load(open(sys.argv[1])).get(sys.argv[2]); print(int(v) if v is not None and float(v).is_integer() else v)' \
		"$T/$1.json" "$2"
}
OK='kura_fetches_total{reason=ok,result=ok}'
NOGRANT='kura_fetches_total{reason=no_grant,result=denied}'
RATE='kura_refusals_total{limit=rate}'

# until_is NAME KEY WANT: scrape as NAME until sample KEY is WANT (the front's counters reach
# the key custody process once a second), at most 5 s.
until_is() {
	for _i in $(seq 1 25); do
		scrape "$1" && [ "$(m "$1" "$2")" = "$3" ] && return 0
		sleep 0.2
	done
	return 1
}
until_ok() { until_is "$1" "$OK" "$2"; }

# get N PATH: N GETs of PATH on workload.sock from this one process; prints "STATUS COUNT".
get() {
	"$PY" - "$W" "$1" "$2" "$UHTTP" <<'PY'
import collections, sys
sys.path.insert(0, sys.argv[4])
import uhttp
c = collections.Counter(uhttp.get(sys.argv[1], sys.argv[3].encode())[0] for _ in range(int(sys.argv[2])))
for k in sorted(c):
    print(k, c[k])
PY
}

atk_docker_images
atk_state "$S" || tap_bail "no state: kuractl failed"
printf 'not-granted-value-zz9' >"$T/value2"
"$K" --offline --state-dir "$S" secret put app/other --file "$T/value2" >/dev/null ||
	tap_bail "cannot store app/other"

# --- Start-up warnings: a runtime whose socket does not answer, and one kurad does not know.
# No prefetch: a container's first fetch is then a cache miss, looked up while it waits.
printf 'rate = 50\nburst = 50\nidentity-prefetch = no\n' >"$T/kurad.conf"
# The first kurad also ships to an HTTP collector that is not there.
{ cat "$T/kurad.conf"; printf 'audit-http = unix:%s/no-collector.sock:/x\n' "$T"; } >"$T/kurad1.conf"
atk_start_kurad "$S" "$R" "$T/kurad1.conf" --runtime "podman=unix:$T/no-such.sock" \
	--runtime "crio=unix:$T/crio.sock" || tap_bail "kurad did not start: $(tail -n 3 "$T/kurad.log")"
want "no warning of the silent podman socket: $(cat "$T/kurad.log")" \
	grep -q "warning: runtime podman=unix:$T/no-such.sock does not answer (no socket at that path)" \
	"$T/kurad.log"
want "no warning of the unknown runtime crio" \
	grep -q "warning: runtime crio=unix:$T/crio.sock: kurad knows the runtimes docker and podman only" \
	"$T/kurad.log"
t_end "kurad warns at start, one line each, of a runtime that does not answer and one it does not know"

for _i in $(seq 1 25); do
	"$K" --run-dir "$R" status >"$T/st.out" 2>&1
	rc=$?
	grep -q "audit sink http is down" "$T/st.out" && break
	sleep 0.2
done
want "status with a silent runtime exited $rc, expected 3" test "$rc" -eq 3
want "status does not say the sink is down: $(cat "$T/st.out")" \
	grep -q "audit sink http is down: POST .*Couldn't connect" "$T/st.out"
want "the sink is not down in the metrics" scrape s0
want "kura_audit_sink_up{sink=http} is $(m s0 'kura_audit_sink_up{sink=http}')" \
	test "$(m s0 'kura_audit_sink_up{sink=http}')" = 0
want "no failure counted for the sink" test "$(m s0 'kura_audit_sink_failures_total{sink=http}')" -ge 1
want "status does not name the silent runtime: $(cat "$T/st.out")" \
	grep -q "PROBLEM: runtime podman does not answer: no socket at that path" "$T/st.out"
want "status does not name the unknown runtime" grep -q "runtime crio is not one kurad knows" "$T/st.out"
"$K" --run-dir "$R" status --json >"$T/st.json" 2>&1
want "status --json exited $?, expected 3" test $? -eq 3
want "status --json does not say unhealthy" \
	"$PY" -c 'import json,sys; j=json.load(open(sys.argv[1])); assert j["healthy"] is False and len(j["problems"]) == 3' "$T/st.json"
t_end "kuractl status: exit 3 and each problem named while a runtime is silent or unknown and a sink down"
atk_stop_kurad

"$K" --run-dir "$R" status >"$T/st.out" 2>&1
rc=$?
want "status with no kurad exited $rc, expected 10" test "$rc" -eq 10
want "status with no kurad says: $(cat "$T/st.out")" grep -q "is kurad running" "$T/st.out"
"$K" --run-dir "$R" metrics >"$T/st.out" 2>&1
want "metrics with no kurad exited $?, expected 10" test $? -eq 10
t_end "kuractl status and metrics with no kurad: exit 10, saying so"

# --- The real kurad: Docker if it started.
RT=$(atk_runtimes)
# shellcheck disable=SC2086
atk_start_kurad "$S" "$R" "$T/kurad.conf" $RT ||
	tap_bail "kurad did not start: $(tail -n 3 "$T/kurad.log")"

want "the first scrape failed or does not parse" scrape m0
for fam in kura_fetches_total:counter kura_fetch_duration_seconds:histogram \
	kura_runtime_lookup_duration_seconds:histogram kura_identity_cache_hits:counter \
	kura_identity_cache_misses:counter kura_connections_open:gauge kura_refusals:counter \
	kura_audit_records:counter kura_audit_head_seq:gauge kura_store_revision:gauge \
	kura_mirror_staleness_seconds:gauge kura_uptime_seconds:gauge kura_build_info:gauge; do
	# The parser names a counter's family without its _total.
	f=${fam%%:*} t=${fam##*:}
	f=${f%_total}
	want "family $f is not a $t" "$PY" -c 'import json,sys; assert json.load(open(sys.argv[1]))["#types"].get(sys.argv[2]) == sys.argv[3]' "$T/m0.json" "$f" "$t"
done
V=$("$KURAD" --version | awk '{ print $2 }')
want "build info is not version $V" test "$(m m0 "kura_build_info{version=$V}")" = 1
want "the page is not served as the text format" \
	sh -c "curl -s -D - -o /dev/null --unix-socket '$A' http://k/metrics | grep -qi '^content-type: text/plain; version=0.0.4'"
t_end "GET /metrics parses with prometheus_client: every family of the list, its type, build info"

OK0=$(m m0 "$OK") NG0=$(m m0 "$NOGRANT") RT0=$(m m0 "$RATE")
get 20 /v1/secrets/app/x >"$T/g1"
want "20 granted fetches did not all give 200: $(cat "$T/g1")" grep -qx "200 20" "$T/g1"
sleep 1.1 # a new second of the rate limit's bucket before the denials
get 5 /v1/secrets/app/other >"$T/g2"
want "5 ungranted fetches did not all give 403: $(cat "$T/g2")" grep -qx "403 5" "$T/g2"
want "no_grant did not reach $((NG0 + 5)): $(m m1 "$NOGRANT")" until_is m1 "$NOGRANT" $((NG0 + 5))
want "ok moved from $OK0 to $(m m1 "$OK"), not by 20" test "$(m m1 "$OK")" = $((OK0 + 20))
t_end "N granted fetches move ok by N, M denied move denied{reason=no_grant} by M"

sleep 1.1
get 150 /v1/whoami >"$T/g3"
N429=$(awk '$1 == 429 { print $2 }' "$T/g3")
want "150 requests at once got no 429 (rate 50/s): $(cat "$T/g3")" test "${N429:-0}" -gt 0
for _i in $(seq 1 25); do
	scrape m2 && [ "$(m m2 "$RATE")" = $((RT0 + ${N429:-0})) ] && break
	sleep 0.2
done
want "refusals{limit=rate} moved from $RT0 to $(m m2 "$RATE"), the client saw ${N429:-0} 429s" \
	test "$(m m2 "$RATE")" = $((RT0 + ${N429:-0}))
t_end "a burst over the rate limit: refusals{limit=\"rate\"} moves by the 429s seen (${N429:-0})"

# Histograms: _count is the number of fetches, +Inf is _count, buckets only grow.
"$PY" - "$T/m2.json" >"$T/hist.out" 2>&1 <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
fetches = sum(v for k, v in j.items() if k.startswith("kura_fetches_total{"))
for h in ("kura_fetch_duration_seconds", "kura_runtime_lookup_duration_seconds"):
    b = sorted(((float(k.split("le=")[1].rstrip("}")), v) for k, v in j.items()
                if k.startswith(h + "_bucket{")))
    assert b[-1][0] == float("inf") and b[-1][1] == j[h + "_count{}"], (h, b[-1])
    assert all(x[1] <= y[1] for x, y in zip(b, b[1:])), (h, b)
    assert j[h + "_sum{}"] >= 0
assert j["kura_fetch_duration_seconds_count{}"] == fetches, (j["kura_fetch_duration_seconds_count{}"], fetches)
print("fetches", int(fetches))
PY
want "histograms do not add up: $(cat "$T/hist.out")" grep -q '^fetches' "$T/hist.out"
t_end "histograms: +Inf bucket = _count, buckets cumulative, fetch _count = fetches by reason ($(cat "$T/hist.out"))"

# --- A container's fetch: a runtime lookup on a cache miss, counted.
if [ "$HAVE_DOCKER" = yes ]; then
	L0=$(m m2 'kura_runtime_lookup_duration_seconds_count{}')
	MISS0=$(m m2 'kura_identity_cache_misses_total{}')
	printf 'GET /v1/secrets/app/x HTTP/1.1\r\nHost: k\r\nConnection: close\r\n\r\n' |
		dk run --rm -i -v "$R:/run/kura" kura-atk-victim:1 /attack raw \
			/run/kura/workload.sock -w 5000 >"$T/c1.out" 2>"$T/c1.sum"
	want "the container's fetch was not answered 200: $(cat "$T/c1.sum")" grep -q '"status": \[200\]' "$T/c1.sum"
	want "the ok counter did not reach $((OK0 + 21))" until_ok m3 $((OK0 + 21))
	want "no runtime lookup counted ($L0 -> $(m m3 'kura_runtime_lookup_duration_seconds_count{}'))" \
		test "$(m m3 'kura_runtime_lookup_duration_seconds_count{}')" -gt "$L0"
	want "no identity cache miss counted" test "$(m m3 'kura_identity_cache_misses_total{}')" -gt "$MISS0"
	t_end "a container's fetch: ok +1, a runtime lookup timed, a cache miss counted"

	# Root in a container, the run directory mounted: the socket lets uid 0 connect, kurad
	# does not let it read.
	printf 'GET /metrics HTTP/1.1\r\nHost: k\r\nConnection: close\r\n\r\n' |
		dk run --rm -i -v "$R:/run/kura" kura-atk-attacker:1 /attack raw /run/kura/admin.sock \
			-w 5000 >"$T/c2.out" 2>"$T/c2.sum"
	want "a container's GET /metrics was not refused 403: $(cat "$T/c2.sum")" grep -q '"status": \[403\]' "$T/c2.sum"
	want "a container got metrics" sh -c "! grep -q kura_ '$T/c2.out'"
	t_end "a container (root, admin.sock mounted) cannot read /metrics: 403"
else
	tap_skip "a container's fetch counted" "no Docker: $WHY_DOCKER"
	tap_skip "a container cannot read /metrics" "no Docker: $WHY_DOCKER"
fi

setpriv --reuid=65534 --regid=65534 --clear-groups curl -s --max-time 5 --unix-socket "$A" \
	http://k/metrics >"$T/u.out" 2>&1
rc=$?
want "an unprivileged user's curl exited $rc (7 is: could not connect)" test "$rc" -eq 7
want "an unprivileged user got metrics" sh -c "! grep -q kura_ '$T/u.out'"
setpriv --reuid=65534 --regid=65534 --clear-groups "$K" --run-dir "$R" metrics >"$T/u2.out" 2>&1
rc=$?
want "kuractl metrics as nobody exited $rc, expected 1" test "$rc" -eq 1
want "kuractl metrics as nobody does not say why: $(cat "$T/u2.out")" grep -q "root's only" "$T/u2.out"
t_end "an unprivileged user cannot read /metrics (admin.sock is root's: connect refused)"

# --- No value, no name in any scrape: labels are fixed words.
cat "$T"/m*.prom >"$T/all.prom"
B64=$(printf '%s' "$VALUE" | base64 -w0)
want "a scrape holds the secret's value" sh -c "! grep -qF '$VALUE' '$T/all.prom'"
want "a scrape holds the value in base64" sh -c "! grep -qF '$B64' '$T/all.prom'"
want "a scrape names a secret" sh -c "! grep -qE 'app/(x|other)' '$T/all.prom'"
"$PY" - "$T/all.prom" >"$T/labels.out" 2>&1 <<'PY'
import re, sys
allowed = {"result", "reason", "limit", "sink", "version", "le"}
for line in open(sys.argv[1]):
    m = re.match(r"^[a-z_]+\{(.*)\} ", line)
    if m:
        for k in re.findall(r'([a-z_]+)="', m.group(1)):
            assert k in allowed, line
print("ok")
PY
want "a label other than result, reason, limit, sink, version, le: $(cat "$T/labels.out")" grep -qx ok "$T/labels.out"
t_end "no scrape carries the secret's value (plain or base64) or a secret's name; labels are fixed"

# --- kuractl status --json and kuractl metrics agree with the scrape.
sleep 1.2 # nothing in flight: the front's last STATS is the one scraped
scrape m4
"$K" --run-dir "$R" status --json >"$T/st.json" 2>"$T/st.err"
rc=$?
want "status --json exited $rc: $(cat "$T/st.err")" test "$rc" -eq 0
"$PY" - "$T/st.json" "$T/m4.json" "$S" >"$T/agree.out" 2>&1 <<'PY'
import json, os, sys
st = json.load(open(sys.argv[1]))
mt = json.load(open(sys.argv[2]))
assert st["healthy"] is True and st["problems"] == [], st["problems"]
assert st["fetches"]["ok"] == mt["kura_fetches_total{reason=ok,result=ok}"], "ok"
assert st["fetches"]["no_grant"] == mt["kura_fetches_total{reason=no_grant,result=denied}"]
assert st["refusals"]["rate"] == mt["kura_refusals_total{limit=rate}"]
assert st["revision"] == mt["kura_store_revision{}"]
assert st["audit"]["healthy"] is True and st["audit"]["head_seq"] >= mt["kura_audit_head_seq{}"]
assert os.path.realpath(st["state_dir"]) == os.path.realpath(sys.argv[3])
names = {"supervisor": "kurad", "keeper": "kurad-keeper", "front": "kurad-front", "net": "kurad-net"}
for role, comm in names.items():
    pid = st["pids"][role]
    assert open("/proc/%d/comm" % pid).read().strip() == comm, (role, pid)
for r in st.get("runtime_checks", []):
    assert r["answers"] is True and r["known"] is True, r
print("ok")
PY
want "status --json and the scrape disagree: $(cat "$T/agree.out")" grep -qx ok "$T/agree.out"
"$K" --run-dir "$R" status >"$T/st.txt" 2>&1
want "status exited $?: $(cat "$T/st.txt")" test $? -eq 0
want "status shows no health line" grep -q '^health:     ok$' "$T/st.txt"
want "status shows no fetch counts" grep -q "^fetches:    .*ok $(m m4 "$OK")" "$T/st.txt"
"$K" --run-dir "$R" metrics >"$T/km.prom"
want "kuractl metrics exited $?" test $? -eq 0
want "kuractl metrics is not the served text" sh -c "grep -v '^kura_uptime_seconds' '$T/km.prom' | grep -c '^kura_' | grep -qx '$(grep -v '^kura_uptime_seconds' "$T/m4.prom" | grep -c '^kura_')'"
t_end "kuractl status --json agrees with the scrape (counters, revision, pids, runtimes); kuractl metrics prints it"

atk_check_kurad "$R" "the metrics tests"
tap_done

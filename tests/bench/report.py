#!/usr/bin/env python3
"""The benchmark's report: reads the figures `run` gathered (KEY<TAB>JSON lines), prints one table
with each target met or not, and writes every figure as one JSON object (units in the names)."""
import json
import sys


def load(path):
    r = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("\t")
            try:
                r[k] = json.loads(v) if v else None
            except ValueError:
                r[k] = None
    return r


def g(d, *path):
    for p in path:
        if not isinstance(d, dict) or d.get(p) is None:
            return None
        d = d[p]
    return d


def ratio(a, b):
    return round(a / b, 2) if a is not None and b else None


def main():
    r = load(sys.argv[1])
    m = r.get("machine") or {}
    out = {"machine": m, "kurad_config": r.get("kurad_config"), "runtimes": r.get("runtimes"),
           "loadavg_start": r.get("loadavg_start"), "loadavg_end": r.get("loadavg_end")}
    rows = []  # (section, what, figure, target, verdict)

    def verdict(ok):
        return "n/a" if ok is None else ("met" if ok else "NOT MET")

    def row(sec, what, fig, target="", ok=None):
        rows.append((sec, what, fig, target, verdict(ok) if target else ""))

    fl = r.get("floor_latency") or {}
    f50, f99 = fl.get("p50_us"), fl.get("p99_us")
    out["floor"] = {"p50_us": f50, "p99_us": f99, "requests": fl.get("requests"),
                    "errors": (fl.get("errors") or 0) + (fl.get("unexpected_status") or 0),
                    "request_bytes": fl.get("request_bytes"), "reply_bytes": fl.get("reply_bytes")}
    row("floor", "connect+100 B request+300 B reply+close, SO_PEERCRED",
        f"p50 {f50} us, p99 {f99} us")
    hl, hc, fc0 = r.get("floor_hop_latency") or {}, r.get("floor_hop_cpu_us"), r.get("floor_cpu_us")
    if hl:
        h50, h99 = hl.get("p50_us"), hl.get("p99_us")
        out["floor_hop"] = {"p50_us": h50, "p99_us": h99, "cpu_us": hc,
                            "p50_x_floor": ratio(h50, f50), "cpu_x_floor": ratio(hc, fc0)}
        row("floor", "the same, handed with its descriptor to a second process that answers",
            f"p50 {h50} us ({ratio(h50, f50)}x floor), p99 {h99} us; CPU {hc} us "
            f"({ratio(hc, fc0)}x the floor's)")

    def fetch(key, label, primary):
        d = r.get(key)
        if not isinstance(d, dict):
            row("fetch", label, "not measured (no docker or no static build)")
            return
        p50, p99 = d.get("p50_us"), d.get("p99_us")
        errs = (d.get("errors") or 0) + (d.get("unexpected_status") or 0)
        out[key] = {"p50_us": p50, "p99_us": p99, "p50_x_floor": ratio(p50, f50),
                    "p99_x_floor": ratio(p99, f99), "requests": d.get("requests"),
                    "errors": errs, "reply_bytes": d.get("reply_bytes")}
        fig = (f"p50 {p50} us ({ratio(p50, f50)}x floor), p99 {p99} us "
               f"({ratio(p99, f99)}x floor), {errs} errors")
        if primary:
            ok50 = None if ratio(p50, f50) is None else ratio(p50, f50) <= 2
            ok99 = None if ratio(p99, f99) is None else ratio(p99, f99) <= 5
            row("fetch", label, fig, "p50 <= 2x, p99 <= 5x floor",
                None if ok50 is None else (ok50 and ok99 and errs == 0))
        else:
            row("fetch", label, fig)

    have_ctr = isinstance(r.get("fetch_container_warm"), dict)
    fetch("fetch_container_warm", "1 KiB secret, warm cache, from a docker container (shown)", True)
    pc = r.get("privsep_cost") or {}
    sep, one = pc.get("separated") or {}, pc.get("single") or {}
    if sep and one:
        sc, oc = (sep.get("cpu_us") or {}).get("median"), (one.get("cpu_us") or {}).get("median")
        sp, op = (sep.get("p50_us") or {}).get("median"), (one.get("p50_us") or {}).get("median")
        rc, rp = ratio(sc, oc), ratio(sp, op)
        out["privsep_cost"] = {"separated_cpu_us": sc, "single_cpu_us": oc, "cpu_ratio": rc,
                               "separated_p50_us": sp, "single_p50_us": op, "p50_ratio": rp}
        row("privsep", "kurad CPU per warm host fetch, separated vs one process",
            f"{sc} us vs {oc} us ({rc}x)", "<= 1.15x", rc is not None and rc <= 1.15)
        row("privsep", "warm host fetch p50, separated vs one process",
            f"{sp} us vs {op} us ({rp}x)", "<= 1.15x", rp is not None and rp <= 1.15)
    else:
        row("privsep", "cost of the separation", "not measured (no kurad-hooks build)")
    ps = r.get("privsep_size") or {}
    if ps:
        out["privsep_size"] = ps
        s = ps.get("syscalls") or {}
        row("privsep", "our code in the key custody process / the front",
            f"{ps.get('keeper_lines')} / {ps.get('front_lines')} lines")
        row("privsep", "system calls allowed: supervisor / custody / front / net",
            f"{s.get('supervisor')} / {s.get('keeper')} / {s.get('front')} / {s.get('net')}")

    fetch("fetch_host_warm", "1 KiB secret, warm cache, host process (--host --uid 0)",
          not have_ctr)
    kc, fc = r.get("fetch_host_cpu_us"), r.get("floor_cpu_us")
    if isinstance(kc, (int, float)) and isinstance(fc, (int, float)):
        out["cpu_per_request"] = {"kurad_us": kc, "floor_us": fc, "ratio": ratio(kc, fc)}
        row("fetch", "CPU per warm host fetch, kurad (all processes) vs the floor server's",
            f"{kc} us vs {fc} us ({ratio(kc, fc)}x)", "<= 3x floor",
            ratio(kc, fc) is not None and ratio(kc, fc) <= 3)
        if isinstance(hc, (int, float)):
            out["cpu_per_request"].update(hop_floor_us=hc, ratio_to_hop_floor=ratio(kc, hc))
            row("fetch", "... kurad vs the floor with a hop to a second process",
                f"{kc} us vs {hc} us ({ratio(kc, hc)}x)")
    sc = r.get("syscalls_per_fetch")
    if isinstance(sc, dict):
        n = [sc.get(k) for k in ("supervisor", "keeper", "front", "net")]
        tot = round(sum(x for x in n if isinstance(x, (int, float))), 1)
        out["syscalls_per_fetch"] = dict(sc, total=tot)
        row("fetch", "system calls per warm host fetch: supervisor / custody / front / net",
            f"{tot} ({' / '.join(str(x) for x in n)})")
    cold = r.get("fetch_container_cold")
    if isinstance(cold, dict):
        out["fetch_container_cold"] = {"median_us": cold.get("median"), "p99_us": cold.get("p99"),
                                       "max_us": cold.get("max"), "samples": cold.get("n"),
                                       "errors": cold.get("errors"),
                                       "median_x_floor": ratio(cold.get("median"), f50)}
        sec = r.get("fetch_container_cold_second") or {}
        out["fetch_container_cold"]["second_request_median_us"] = sec.get("median")
        row("fetch", f"cold cache: first fetch of a fresh container ({cold.get('n')} containers)",
            f"median {cold.get('median')} us ({ratio(cold.get('median'), f50)}x floor), "
            f"max {cold.get('max')} us, {cold.get('errors')} errors; its 2nd fetch "
            f"{sec.get('median')} us")

    floor64 = g(r, "floor_tput_c64", "per_s")
    for who, label in (("floor", "floor"), ("floor_hop", "floor with a hop"),
                       ("fetch_container", "kurad, container"), ("fetch_host", "kurad, host")):
        for c in (1, 8, 64):
            d = r.get(f"{who}_tput_c{c}")
            if not isinstance(d, dict):
                continue
            errs = (d.get("errors") or 0) + (d.get("unexpected_status") or 0)
            out[f"{who}_throughput_c{c}"] = {"per_s": d.get("per_s"), "errors": errs,
                                             "requests": d.get("requests"),
                                             "seconds": d.get("seconds"),
                                             "p50_us": d.get("p50_us"), "p99_us": d.get("p99_us")}
            fig = f"{d.get('per_s'):.0f}/s, {errs} errors, p99 {d.get('p99_us')} us"
            shown = who == ("fetch_container" if have_ctr else "fetch_host")
            if c == 64 and shown and floor64:
                share = round(100 * d.get("per_s", 0) / floor64)
                out[f"{who}_throughput_c{c}"]["pct_of_floor"] = share
                row("throughput", f"{label}, {c} clients", f"{fig} ({share}% of the floor's)",
                    ">= 50% of floor, 0 errors", share >= 50 and errs == 0)
            elif not who.startswith("floor"):
                row("throughput", f"{label}, {c} clients", fig, "0 errors", errs == 0)
            else:
                row("throughput", f"{label}, {c} clients", fig)

    st = {k[6:]: v for k, v in r.items() if k.startswith("start_") and isinstance(v, dict)}
    med = {k: v.get("median") for k, v in st.items()}
    for k, v in st.items():
        out[f"start_{k}"] = {"median_ms": v.get("median"), "min_ms": v.get("min"),
                             "max_ms": v.get("max"), "runs": v.get("n"), "errors": v.get("errors")}
        row("start", f"{k.replace('_', ' run, ', 1)} (true)",
            f"median {v.get('median')} ms (min {v.get('min')}, max {v.get('max')}, "
            f"n {v.get('n')}, {v.get('errors')} errors)")

    def diff(a, b, label, target):
        if med.get(a) is None or med.get(b) is None:
            return
        d = round(med[a] - med[b], 1)
        out[f"start_{a}_minus_{b}_ms"] = d
        row("start", label, f"{d:+} ms", "<= 5 ms" if target else "",
            d <= 5 if target else None)

    diff("docker_kura", "docker_plain", "docker: kura run (5 secrets) adds", True)
    diff("podman_kura", "podman_plain", "podman: kura run (5 secrets) adds", True)
    diff("podman_secret", "podman_plain", "podman: --secret x5 adds", False)
    diff("podman_kura", "podman_secret", "podman: kura run vs --secret x5", False)
    kl = r.get("kura_run_loop")
    if isinstance(kl, dict) and kl.get("runs"):
        per = round((kl["kura_ms"] - kl["plain_ms"]) / kl["runs"], 2)
        out["kura_run_added_per_run_ms"] = per
        row("start", f"kura run (5 secrets) in a running container, {kl['runs']} runs in a loop",
            f"+{per} ms a run over /bin/true (exit {kl.get('exit')})", "<= 5 ms",
            per <= 5 and kl.get("exit") == 0)
    if r.get("kura_run_secrets") is not None:
        out["kura_run_secrets_written"] = r["kura_run_secrets"]

    for n in (1000, 10000, 100000):
        d = r.get(f"key_rotate_{n}")
        if not isinstance(d, dict):
            continue
        out[f"key_rotate_{n}_ms"] = d.get("ms")
        out[f"key_rotate_{n}_exit"] = d.get("exit")
        out[f"populate_to_{n}_ms"] = r.get(f"populate_to_{n}_ms")
        fig = f"{d.get('ms') / 1000:.2f} s (exit {d.get('exit')})"
        if n == 100000:
            row("scale", f"kuractl key rotate, {n} secrets", fig, "<= 2 s",
                d.get("exit") == 0 and d.get("ms") <= 2000)
        else:
            row("scale", f"kuractl key rotate, {n} secrets", fig)
    su = r.get("kurad_100k_startup")
    if isinstance(su, dict):
        out["kurad_100k_startup_ms"] = su.get("startup_ms")
        row("scale", "kurad start-up until workload.sock answers, 100k secrets",
            f"{su.get('startup_ms')} ms")
    idle, loaded = r.get("kurad_100k_rss_idle"), r.get("kurad_100k_rss_loaded")
    if isinstance(idle, dict) and isinstance(loaded, dict):
        out["kurad_100k_vmrss_idle_kib"] = idle.get("VmRSS_kib")
        out["kurad_100k_vmrss_after_fetches_kib"] = loaded.get("VmRSS_kib")
        out["kurad_100k_vmhwm_kib"] = loaded.get("VmHWM_kib")
        hwm = loaded.get("VmHWM_kib") or 0
        row("scale", "kurad memory, 100k secrets (VmRSS idle / after 2000 fetches; VmHWM)",
            f"{idle.get('VmRSS_kib') / 1024:.1f} / {loaded.get('VmRSS_kib') / 1024:.1f} MiB; "
            f"peak {hwm / 1024:.1f} MiB", "<= 64 MiB", hwm <= 64 * 1024)
    al = r.get("kurad_100k_rss_after_list")
    if isinstance(al, dict):
        out["kurad_100k_vmhwm_after_list_kib"] = al.get("VmHWM_kib")
        row("scale", "kurad peak memory after 3 GET /v1/secrets of 100k names (VmHWM)",
            f"{(al.get('VmHWM_kib') or 0) / 1024:.1f} MiB")
    for key, label in (("kurad_100k_list", "GET /v1/secrets (list) with 100k secrets"),
                       ("kurad_100k_fetch", "fetch at 8 clients with 100k secrets")):
        d = r.get(key)
        if isinstance(d, dict):
            errs = (d.get("errors") or 0) + (d.get("unexpected_status") or 0)
            out[key] = {"p50_us": d.get("p50_us"), "p99_us": d.get("p99_us"),
                        "per_s": d.get("per_s"), "errors": errs, "reply_bytes": d.get("reply_bytes")}
            row("scale", label, f"p50 {d.get('p50_us')} us, {d.get('per_s'):.0f}/s, {errs} errors")
    pg = [r.get(f"policy_grants_{g}") for g in (10, 1000, 10000)]
    if all(isinstance(d, dict) and d.get("cpu_us") for d in pg):
        cpu = [d["cpu_us"] for d in pg]
        x10k = cpu[2] / cpu[0]
        out["policy_fetch_cpu_us"] = {"grants_10": cpu[0], "grants_1000": cpu[1],
                                      "grants_10000": cpu[2], "ratio_10000_to_10": round(x10k, 2)}
        row("scale", "kurad CPU per fetch at 10 / 1k / 10k grants (host process)",
            f"{cpu[0]:.0f} / {cpu[1]:.0f} / {cpu[2]:.0f} us ({x10k:.2f}x at 10k)",
            "10k <= 1.2x 10", x10k <= 1.2)
    pl = r.get("policy_list_100k")
    if isinstance(pl, dict):
        out["policy_list_100k"] = pl
        row("scale", "GET /v1/secrets over 100k names, 1k grants (p50; kurad CPU per listing)",
            f"{pl.get('p50_ms')} ms; {pl.get('cpu_ms')} ms CPU, {pl.get('ok')} of 3 ok")
        row("scale", "kurad peak memory over 3 such listings (VmHWM: largest process; sum of "
            "its 4, idle)",
            f"{pl.get('max_mib')} MiB; {pl.get('sum_mib')} MiB (idle {pl.get('idle_sum_mib')})",
            "<= 32 MiB", (pl.get("max_mib") or 1e9) <= 32)
    rss = r.get("kurad_rss_after_load")
    if isinstance(rss, dict):
        out["kurad_5_secrets_vmhwm_after_load_kib"] = rss.get("VmHWM_kib")
        row("scale", "kurad peak memory after the throughput runs (5 secrets)",
            f"{(rss.get('VmHWM_kib') or 0) / 1024:.1f} MiB")
    au = r.get("audit_filter")
    if isinstance(au, dict):
        out["audit_filter_ms"] = au.get("ms")
        out["audit_records"] = au.get("records")
        out["audit_matched"] = au.get("matched")
        out["audit_gen_ms"] = r.get("audit_gen_ms")
        row("scale", f"kuractl audit --secret {au.get('secret')} --json over {au.get('records')} "
            "records", f"{au.get('ms') / 1000:.2f} s, {au.get('matched')} matched")
    else:
        out["audit_filter_ms"] = None
        row("scale", "kuractl audit --secret NAME --json over 1M records", "n/a (not built)")

    # Hostile load: the granted fetch under each attack beside the same fetch without one, on
    # the same kurad (default limits), and kurad's memory then.
    hc = r.get("hostile_config") or {}
    attacks = (("cpu", "64 busy processes that never connect (the attackers' CPU alone)", "none"),
               ("unident", "connect-and-exit floods (unidentifiable peers)", "none"),
               ("flood", "keep-alive request floods", "none"),
               ("subuid", "keep-alive request floods from one user's subordinate uids", "none"),
               ("watch", "4 parked long polls per peer", "none"),
               ("dribble", "16 header-dribbling connections per peer", "none"),
               ("scan", "watch?since=0 loops over 100k secrets", "scan_none"))

    def victim(d):
        if not isinstance(d, dict):
            return None
        st = d.get("status") or {}
        errs = (d.get("n") or 0) - (st.get("200") or 0)
        return {"p50_us": d.get("p50_us"), "p99_us": d.get("p99_us"), "max_us": d.get("max_us"),
                "samples": d.get("n"), "errors": errs, "status": st}

    def fig(v, base):
        if v is None:
            return "not measured"
        if base is None:
            return (f"p50 {v['p50_us']} us, p99 {v['p99_us']} us, {v['errors']} of "
                    f"{v['samples']} not 200")
        return (f"p50 {v['p50_us']} us ({ratio(v['p50_us'], base.get('p50_us'))}x), p99 "
                f"{v['p99_us']} us ({ratio(v['p99_us'], base.get('p99_us'))}x), {v['errors']} of "
                f"{v['samples']} not 200")

    for key, label in (("none", "no attack"), ("scan_none", "no attack, 100k secrets")):
        d = r.get(f"hostile_{key}")
        if not isinstance(d, dict):
            continue
        h, c = victim(d.get("host")), victim(d.get("container"))
        rss = (d.get("rss") or {}).get("VmRSS_kib")
        out[f"hostile_{key}"] = {"host": h, "container": c, "vmrss_kib": rss}
        row("hostile", f"{label} (kurad with its default limits): host / container",
            f"host {fig(h, None)}; container {fig(c, None)}; VmRSS {(rss or 0) / 1024:.1f} MiB")
    for key, label, base in attacks:
        d = r.get(f"hostile_{key}")
        if not isinstance(d, dict):
            if d is not None:
                row("hostile", label, str(d))
            continue
        b = r.get(f"hostile_{base}") or {}
        bh, bc = victim(b.get("host")) or {}, victim(b.get("container")) or {}
        h, c = victim(d.get("host")), victim(d.get("container"))
        rss = d.get("rss") or {}
        peers = d.get("peers") or {}
        who = (f"{peers.get('inner_uids')} inner uids" if "inner_uids" in peers else
               "uid 65534" if "busy_processes" in peers else
               f"{peers.get('host_uids')} host uids + {peers.get('containers')} containers")
        out[f"hostile_{key}"] = {"host": h, "container": c, "peers": peers,
                                 "vmrss_kib": rss.get("VmRSS_kib"),
                                 "vmhwm_kib": rss.get("VmHWM_kib"),
                                 "host_p99_x_no_attack": ratio((h or {}).get("p99_us"),
                                                               (bh or {}).get("p99_us")),
                                 "container_p99_x_no_attack": ratio((c or {}).get("p99_us"),
                                                                    (bc or {}).get("p99_us"))}
        ok = None
        if h is not None:
            ok = all(v["p99_us"] is not None and 0 <= v["p99_us"] < 1e6 and v["errors"] == 0
                     for v in (h, c) if v is not None)
        row("hostile", f"{label}, {who}: host / container (x no attack)",
            f"host {fig(h, bh)}; container {fig(c, bc)}; VmRSS "
            f"{(rss.get('VmRSS_kib') or 0) / 1024:.1f} MiB", "p99 < 1 s, all 200", ok)

    w = [max(len(x[i]) for x in rows) for i in range(5)]
    w[2] = min(w[2], 78)
    print(f"kura benchmarks -- {m.get('nproc')} cores, {m.get('cpu')}, kernel {m.get('kernel')}, "
          f"{m.get('date')}{' (quick)' if m.get('quick') else ''}; load {out['loadavg_start']} "
          f"-> {out['loadavg_end']}")
    sep = "  "
    print(sep.join(h.ljust(w[i]) for i, h in enumerate(("", "what", "figure", "target", ""))))
    last = None
    for x in rows:
        print(sep.join((x[0] if x[0] != last else "").ljust(w[0]) if i == 0 else x[i].ljust(w[i])
                       for i in range(5)).rstrip())
        last = x[0]
    cfg = out.get("kurad_config") or {}
    print(f"notes: fetch = GET /v1/secrets/bench/s1 (1 KiB value), HTTP/1.1, Connection: close, "
          f"one new connection per request, requests padded to 100 B like the floor's; kurad runs "
          f"with rate = {cfg.get('rate_per_s')}/s, burst = {cfg.get('burst')}, max-per-peer = "
          f"{cfg.get('max_per_peer')} so its per-peer limits are not what is measured; cold = the "
          f"first request of a container kurad has never seen (runtime API inspect); start times "
          f"are wall times of the CLI, interleaved, busybox true; figures from a shared machine "
          f"are only comparable within one run; hostile = {hc.get('seconds')} s of fetches every "
          f"{hc.get('interval_ms')} ms (a new connection each) while the attack runs, against a "
          f"kurad with its default limits, x = the same fetch on that kurad just before.")
    out["table"] = [dict(zip(("section", "what", "figure", "target", "verdict"), x)) for x in rows]
    out["raw"] = r
    with open(sys.argv[2], "w") as f:
        json.dump(out, f, indent=1)
    print(f"JSON: {sys.argv[2]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

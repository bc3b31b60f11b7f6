#!/usr/bin/env python3
"""tokencache (criterion) vs msal Python (peer_msal_python.py), as a Markdown table.

    python3 bench/compare.py                       # all scales: 1000,10000,100000
    python3 bench/compare.py --scales 1000,10000   # quick run
    python3 bench/compare.py --skip-rust --skip-msal   # re-render from earlier results

Steps (run from anywhere; paths are relative to the repository root):
  1. `cargo bench -p tokencache --bench cache` with TOKENCACHE_BENCH_SCALES and
     TOKENCACHE_BENCH_MEMORY_OUT set; criterion writes
     target/criterion/<workload>_<op>/<scale>/new/{benchmark,estimates}.json and the
     bench writes the memory report (live heap bytes per token, compact JSON size).
  2. `<venv python> ../shared/bench/peer_msal_python.py --impl msal --scales ... --out ...`
     where <venv python> is what scripts/venv.sh prints (msal pinned in
     tests/requirements.txt).
  3. Reads both and writes a Markdown report (default target/bench/compare.md):
     operation x scale, tokencache median, msal median, msal/tokencache.

Nothing here asserts on timings; the "targets" section is informational.
"""
import argparse
import datetime
import glob
import json
import os
import platform
import shlex
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEER_REL = os.path.join("..", "shared", "bench", "peer_msal_python.py")
DEFAULT_SCALES = [1000, 10000, 100000]

# (workload, tokencache op, label, msal op key or None, note)
ROWS = [
    ("W1", "add", "add(event) into the full cache (replace)", "add", "a"),
    ("W1", "populate_add", "add(event) while populating (fresh keys)", "add", "b"),
    ("W1", "search_at_key", "search AT, app's full query (key path)", "search_at_first", "c"),
    ("W1", "search_at_key", "search AT, app's full query, vs msal find()", "find_at", "d"),
    ("W1", "get_access_token", "get_access_token (typed key lookup)", "search_at_first", "e"),
    ("W1", "search_at_miss", "search AT miss (unknown tenant)", "find_at_miss", ""),
    ("W1", "search_at_target_client_id", "search AT by target + client_id only (N hits)", None, "f"),
    ("W1", "serialize", "serialize() (indent=4)", "serialize", ""),
    ("W1", "deserialize", "deserialize()", "deserialize", ""),
    ("W2", "add", "add(event) into the full cache (replace)", "add", "a"),
    ("W2", "populate_add", "add(event) while populating (fresh keys)", "add", "b"),
    ("W2", "search_at_key", "search AT, app's full query (key path)", "search_at_first", "c"),
    ("W2", "search_at_key", "search AT, app's full query, vs msal find()", "find_at", "d"),
    ("W2", "get_access_token", "get_access_token (typed key lookup)", "search_at_first", "e"),
    ("W2", "search_at_subset_scope", "search AT, full query, subset of scopes", "search_at_first_subset_scope", "g"),
    ("W2", "search_at_target_client_id", "search AT by target + client_id only (U hits)", None, "f"),
    ("W2", "search_rt", "search RT (env + home_account_id + client_id)", "find_rt", ""),
    ("W2", "search_rt_family", "search RT (env + home_account_id + family_id), miss", None, ""),
    ("W2", "search_account_by_home_account_id", "search Account by env + home_account_id", "find_account", ""),
    ("W2", "search_account_by_environment", "search Account by environment (U hits)", "find_accounts_all", "f"),
    ("W2", "serialize", "serialize() (indent=4)", "serialize", ""),
    ("W2", "deserialize", "deserialize()", "deserialize", ""),
]

NOTES = {
    "a": "tokencache: criterion, re-adding a pool of 1024 workload events (new secrets) into the "
         "full cache; msal: median per-add latency while populating.",
    "b": "tokencache: median of per-call timings while building the cache once (same method as msal's).",
    "c": "msal: `first(search(...))`, msal's own path in acquire_token_*; its exact-key shortcut.",
    "d": "msal: `find()`, the public list API (runs the generator to the end: a full scan).",
    "e": "msal has no typed lookup; compared with its search() key path.",
    "f": "returns every matching entry (N or U of them): cost is O(results) by nature.",
    "g": "the app's full AT query with one of the two scopes of AT(A): not a key lookup.",
}


def sh(cmd):
    try:
        return subprocess.check_output(cmd, shell=True, text=True, stderr=subprocess.DEVNULL).strip()
    except Exception:
        return None


def machine():
    cpu = None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"nproc": sh("nproc"), "cpu": cpu, "mem_total_bytes": sh("free -b | awk '/Mem:/{print $2}'"),
            "kernel": platform.release(), "rustc": sh("rustc --version"), "cargo": sh("cargo --version")}


def run(cmd, env_extra, log):
    env = dict(os.environ)
    env.update(env_extra)
    shown = " ".join("%s=%s" % (k, shlex.quote(v)) for k, v in env_extra.items())
    shown = (shown + " " if shown else "") + " ".join(shlex.quote(c) for c in cmd)
    print("$ " + shown, file=sys.stderr, flush=True)
    t0 = time.time()
    with open(log, "w") as f:
        p = subprocess.run(cmd, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT)
    wall = time.time() - t0
    print("  exit %d in %.1fs (log: %s)" % (p.returncode, wall, os.path.relpath(log, ROOT)),
          file=sys.stderr, flush=True)
    return {"command": "(cd %s && %s)" % (ROOT, shown), "exit": p.returncode, "wall_s": wall,
            "log": os.path.relpath(log, ROOT)}


def target_dir():
    return os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")


def read_criterion(crit_dir):
    """{(workload, op, scale): {"median_ns", "lo_ns", "hi_ns", "bytes"}}"""
    out = {}
    for bj in glob.glob(os.path.join(crit_dir, "**", "new", "benchmark.json"), recursive=True):
        try:
            with open(bj) as f:
                meta = json.load(f)
            with open(os.path.join(os.path.dirname(bj), "estimates.json")) as f:
                est = json.load(f)
        except (OSError, ValueError):
            continue
        parts = meta.get("full_id", "").split("/")
        if len(parts) != 3 or not parts[2].isdigit():
            continue
        med = est["median"]
        thr = meta.get("throughput") or {}
        out[(parts[0], parts[1], int(parts[2]))] = {
            "median_ns": med["point_estimate"],
            "lo_ns": med["confidence_interval"]["lower_bound"],
            "hi_ns": med["confidence_interval"]["upper_bound"],
            "bytes": thr.get("Bytes"),
            "mtime": os.path.getmtime(bj),
        }
    return out


def fmt_ns(ns):
    if ns is None:
        return "–"
    if ns < 1e3:
        return "%.0f ns" % ns
    if ns < 1e6:
        return "%.2f µs" % (ns / 1e3) if ns < 1e4 else "%.1f µs" % (ns / 1e3)
    if ns < 1e9:
        return "%.2f ms" % (ns / 1e6) if ns < 1e7 else "%.1f ms" % (ns / 1e6)
    return "%.2f s" % (ns / 1e9)


def fmt_ratio(r):
    if r is None:
        return "–"
    if r >= 100:
        return "%s×" % "{:,.0f}".format(r)
    if r >= 10:
        return "%.0f×" % r
    return "%.2f×" % r


def fmt_rate(bytes_, ns):
    if not bytes_ or not ns:
        return "–"
    v = bytes_ / (ns / 1e9)
    return "%.2f GB/s" % (v / 1e9) if v >= 1e9 else "%.0f MB/s" % (v / 1e6)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scales", default=",".join(map(str, DEFAULT_SCALES)),
                    help="comma-separated, e.g. 1000,10000 for a quick run")
    ap.add_argument("--skip-rust", action="store_true", help="reuse existing criterion results")
    ap.add_argument("--skip-msal", action="store_true", help="reuse --msal-json")
    ap.add_argument("--msal-json", default=os.path.join(target_dir(), "bench", "msal.json"))
    ap.add_argument("--memory-json", default=os.path.join(target_dir(), "bench", "tokencache-memory.json"))
    ap.add_argument("--msal-budget-s", type=float, default=3600,
                    help="peer's --total-budget-s (its default 300 s cuts W2 at 100k short)")
    ap.add_argument("--python", help="python for the msal peer (default: scripts/venv.sh)")
    ap.add_argument("--out", default=os.path.join(target_dir(), "bench", "compare.md"))
    args = ap.parse_args()
    scales = [int(x) for x in args.scales.split(",") if x.strip()]
    os.makedirs(os.path.join(target_dir(), "bench"), exist_ok=True)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)

    info = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine(), "loadavg_start": os.getloadavg(), "runs": []}
    logs = os.path.join(target_dir(), "bench")
    scales_s = ",".join(map(str, scales))

    # 1) Rust side, first (the two never run at the same time).
    if not args.skip_rust:
        r = run(["cargo", "bench", "-p", "tokencache", "--bench", "cache"],
                {"TOKENCACHE_BENCH_SCALES": scales_s,
                 "TOKENCACHE_BENCH_MEMORY_OUT": os.path.abspath(args.memory_json)},
                os.path.join(logs, "cargo-bench.log"))
        r["what"] = "tokencache (criterion; wall includes the build if not yet built)"
        info["runs"].append(r)

    # 2) msal peer.
    peer = os.path.normpath(os.path.join(ROOT, PEER_REL))
    if not args.skip_msal:
        py = args.python or subprocess.check_output(
            [os.path.join(ROOT, "scripts", "venv.sh")], cwd=ROOT, text=True).strip()
        r = run([py, PEER_REL, "--impl", "msal", "--scales", scales_s,
                 "--total-budget-s", "%g" % args.msal_budget_s,
                 "--out", os.path.relpath(os.path.abspath(args.msal_json), ROOT)],
                {}, os.path.join(logs, "msal-peer.log"))
        r["what"] = "msal Python peer"
        info["runs"].append(r)
    info["loadavg_end"] = os.getloadavg()

    crit = read_criterion(os.path.join(target_dir(), "criterion"))
    try:
        with open(args.memory_json) as f:
            mem = {(m["workload"], m["scale"]): m for m in json.load(f)}
    except (OSError, ValueError):
        mem = {}
    try:
        with open(args.msal_json) as f:
            msal = json.load(f)
    except (OSError, ValueError):
        msal = {"results": {}, "meta": {}}
    mres = msal.get("results", {})

    def tc(wl, op, n):
        if op == "populate_add":
            m = mem.get((wl, n))
            return ({"median_ns": m["populate_add_median_ns"], "bytes": None} if m else None)
        return crit.get((wl, op, n))

    def ms(wl, key, n):
        r = mres.get(wl, {}).get(str(n), {})
        op = r.get("ops", {}).get(key)
        return op

    L = []
    meta_m = info["machine"]
    L.append("# tokencache vs msal %s — %s" % (msal.get("meta", {}).get("impl", {}).get("version", "?"),
                                               info["date"]))
    L.append("")
    L.append("Machine: %s cores (nproc), %s, %.1f GB RAM, Linux %s; %s; msal peer on Python %s." % (
        meta_m["nproc"], meta_m["cpu"], int(meta_m["mem_total_bytes"] or 0) / 1e9, meta_m["kernel"],
        meta_m["rustc"], msal.get("meta", {}).get("python", "?")))
    L.append("Load average at start %s, at end %s." % (
        ", ".join("%.2f" % x for x in info["loadavg_start"]),
        ", ".join("%.2f" % x for x in info["loadavg_end"])))
    L.append("")
    L.append("Medians per call. tokencache: criterion median (`target/criterion/**/new/estimates.json`); "
             "msal: `peer_msal_python.py --impl msal` median. Ratio = msal / tokencache (higher = tokencache faster).")
    L.append("")
    for wl, title in (("W1", "W1 — app tokens: N tenants × 2 resources (client credentials)"),
                      ("W2", "W2 — user tokens: U users × (2 AT + RT + IdToken + Account)")):
        L.append("## " + title)
        L.append("")
        L.append("| operation | N | tokencache | msal | msal / tokencache |")
        L.append("|---|---:|---:|---:|---:|")
        for (w, op, label, mkey, note) in ROWS:
            if w != wl:
                continue
            for n in scales:
                t = tc(wl, op, n)
                m = ms(wl, mkey, n) if mkey else None
                t_ns = t["median_ns"] if t else None
                m_ns = m["median_us"] * 1e3 if m else None
                ratio = (m_ns / t_ns) if (t_ns and m_ns) else None
                lab = label + (" [%s]" % note if note else "")
                tcell = fmt_ns(t_ns)
                mcell = fmt_ns(m_ns) if mkey else "n/a"
                if m and m.get("note"):
                    mcell += " *"
                if op in ("serialize", "deserialize"):
                    tcell += " (%s)" % fmt_rate(t and t.get("bytes"), t_ns)
                    if m:
                        mcell += " (%.0f MB/s)" % m.get("MB_per_s", 0)
                L.append("| %s | %s | %s | %s | %s |" % (lab, "{:,}".format(n), tcell, mcell, fmt_ratio(ratio)))
        L.append("")
        L.append("Memory (tokens = credentials, AppMetadata excluded; compact = compact JSON of the same cache):")
        L.append("")
        L.append("| N | compact JSON / token | tokencache live heap / token (×compact) | "
                 "tokencache heap after deserialize / token (×compact) | tokencache RSS Δ / token | "
                 "msal RSS Δ / token (×compact) |")
        L.append("|---:|---:|---:|---:|---:|---:|")
        for n in scales:
            m = mem.get((wl, n))
            r = mres.get(wl, {}).get(str(n), {})
            mm = r.get("memory", {})
            ser = r.get("serialized", {})
            msal_cell = "–"
            if "rss_delta_per_token" in mm and ser.get("compact_bytes_per_token"):
                msal_cell = "%.0f B (%.2f×)" % (mm["rss_delta_per_token"],
                                                mm["rss_delta_per_token"] / ser["compact_bytes_per_token"])
            if m:
                rss = ("%.0f B" % (m["rss_delta_bytes"] / m["tokens"])) if m.get("rss_delta_bytes") is not None else "–"
                L.append("| %s | %.0f B | %.0f B (%.2f×) | %.0f B (%.2f×) | %s | %s |" % (
                    "{:,}".format(n), m["compact_per_token"], m["heap_per_token"], m["heap_over_compact"],
                    m["deserialized_heap_per_token"], m["deserialized_heap_over_compact"], rss, msal_cell))
            else:
                L.append("| %s | – | – | – | – | %s |" % ("{:,}".format(n), msal_cell))
        L.append("")
    L.append("Notes:")
    L.append("")
    for k in sorted(NOTES):
        L.append("- [%s] %s" % (k, NOTES[k]))
    L.append("- `*` on an msal cell: the peer hit a time cap for that op (fewer samples).")
    for wl in ("W1", "W2"):
        for n in scales:
            r = mres.get(wl, {}).get(str(n), {})
            for nt in r.get("notes", []):
                L.append("- msal %s N=%s: %s" % (wl, n, nt))
            if "error" in r:
                L.append("- msal %s N=%s: ERROR %s" % (wl, n, r["error"]))
    L.append("")

    # Targets (informational; nothing asserted).
    big = max(scales)
    L.append("## Targets at N = %s (informational)" % "{:,}".format(big))
    L.append("")
    L.append("| target | measured | met? |")
    L.append("|---|---|---|")

    def verdict(ok):
        return "yes" if ok else "**no**"
    for wl in ("W1", "W2"):
        for (w, op, label, _, _) in ROWS:
            if w != wl or not op.startswith(("search", "get_")):
                continue
            t = tc(wl, op, big)
            if t and "vs msal find" not in label:
                L.append("| %s %s ≤ 1 µs | %s | %s |" % (wl, op, fmt_ns(t["median_ns"]),
                                                       verdict(t["median_ns"] <= 1000)))
        for op in ("add", "populate_add"):
            t = tc(wl, op, big)
            if t:
                L.append("| %s %s ≤ 3 µs | %s | %s |" % (wl, op, fmt_ns(t["median_ns"]),
                                                       verdict(t["median_ns"] <= 3000)))
        for op, lim in (("serialize", 1e9), ("deserialize", 6e8)):
            t = tc(wl, op, big)
            if t and t.get("bytes"):
                rate = t["bytes"] / (t["median_ns"] / 1e9)
                L.append("| %s %s ≥ %s | %s | %s |" % (wl, op, "1 GB/s" if lim == 1e9 else "600 MB/s",
                                                     fmt_rate(t["bytes"], t["median_ns"]), verdict(rate >= lim)))
        m = mem.get((wl, big))
        if m:
            L.append("| %s live heap per token ≤ 1.1× compact JSON | %.2f× (after deserialize %.2f×) | %s |" % (
                wl, m["heap_over_compact"], m["deserialized_heap_over_compact"],
                verdict(m["heap_over_compact"] <= 1.1)))
    L.append("")

    L.append("## Commands")
    L.append("")
    L.append("```")
    L.append("python3 bench/compare.py --scales %s" % scales_s)
    for r in info["runs"]:
        L.append("# %s: exit %d, %.1f s" % (r["what"], r["exit"], r["wall_s"]))
        L.append(r["command"])
    L.append("```")
    text = "\n".join(L) + "\n"
    with open(args.out, "w") as f:
        f.write(text)
    with open(os.path.splitext(args.out)[0] + ".json", "w") as f:
        json.dump(info, f, indent=2)
    print(text)
    print("written: %s" % args.out, file=sys.stderr)


if __name__ == "__main__":
    main()

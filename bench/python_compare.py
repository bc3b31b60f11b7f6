#!/usr/bin/env python3
"""msal's SerializableTokenCache vs tokencache's, from Python, in one run.

    make bench-python                                  # or:
    .venv/bin/python bench/python_compare.py           # scales 1000,10000,100000
    .venv/bin/python bench/python_compare.py --scales 1000 --skip-run   # re-render

Runs ../shared/bench/peer_msal_python.py (the W1/W2 workloads: exact msal event
dicts, msal's own queries) once with `--impl msal` and once with
`--impl tokencache` (the installed package), with the same seed and scales, and
prints each operation's medians and the ratio msal / tokencache (higher: tokencache
faster), plus memory per token. Results: target/bench/python_{msal,tokencache}.json
and target/bench/python_compare.md. Measures and reports; asserts nothing.
"""
import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEER = os.environ.get("TOKENCACHE_PEER_BENCH", os.path.join(ROOT, "..", "shared", "bench", "peer_msal_python.py"))
OUT = os.path.join(ROOT, "target", "bench")

OPS = [  # (key, label, kind) kind: "key" = msal answers it from its dict key, "scan" = msal scans
    ("add", "add(event)", "add"),
    ("search_at_first", "search(AT) first hit (msal's app path)", "key"),
    ("search_at_first_subset_scope", "search(AT) first hit, subset of scopes (msal scans)", "scan"),
    ("find_at", "find(AT) hit (list: msal scans on)", "scan"),
    ("find_at_miss", "find(AT) miss", "scan"),
    ("find_rt", "find(RT) by env + home_account_id + client_id", "scan"),
    ("find_account", "find(Account) by env + home_account_id", "scan"),
    ("find_accounts_all", "find(Account) all (N results)", "all"),
    ("serialize", "serialize()", "serde"),
    ("deserialize", "deserialize()", "serde"),
]
MEMORY = [
    ("rss_delta_per_token", "RSS after populate / token"),
    ("tracemalloc_retained_per_token", "Python heap (tracemalloc) / token"),
]


def run(impl, args):
    path = os.path.join(OUT, "python_%s.json" % impl)
    if not args.skip_run:
        cmd = [sys.executable, PEER, "--impl", impl, "--scales", args.scales, "--out", path,
               "--total-budget-s", str(args.budget)]
        print("$ " + " ".join(cmd), file=sys.stderr, flush=True)
        subprocess.run(cmd, check=True, stdout=sys.stderr)
    with open(path) as f:
        return json.load(f)


def fmt_us(v):
    if v is None:
        return "-"
    if v >= 1000:
        return "{:,.1f} ms".format(v / 1000)
    return "{:.2f} µs".format(v)


def fmt_ratio(r):
    if r is None:
        return "-"
    return "{:,.0f}×".format(r) if r >= 10 else "{:.2f}×".format(r)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scales", default="1000,10000,100000")
    ap.add_argument("--budget", type=int, default=1200, help="seconds per implementation")
    ap.add_argument("--skip-run", action="store_true", help="re-render from the last results")
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    msal, ours = run("msal", args), run("tokencache", args)
    lines = ["# msal %s vs tokencache %s (Python, peer_msal_python.py)" % (
        msal["meta"]["impl"]["version"], ours["meta"]["impl"]["version"]), ""]
    lines.append("Machine: %s cores, %s, Python %s; load average at start %s (msal) / %s (tokencache)." % (
        ours["meta"]["nproc"], ours["meta"]["cpu_model"], ours["meta"]["python"],
        ",".join("%.1f" % x for x in msal["meta"]["loadavg_start"]),
        ",".join("%.1f" % x for x in ours["meta"]["loadavg_start"])))
    lines.append("Medians per call; ratio = msal / tokencache (higher = tokencache faster).")
    verdicts = []
    for wl in ("W1", "W2"):
        scales = sorted(set(msal["results"].get(wl, {})) & set(ours["results"].get(wl, {})), key=int)
        if not scales:
            continue
        lines += ["", "## %s, N = %s" % (wl, ", ".join("{:,}".format(int(s)) for s in scales)), ""]
        lines.append("| operation | " + " | ".join("N=%s msal | tokencache | ratio" % "{:,}".format(int(s))
                                                 for s in scales) + " |")
        lines.append("|---|" + "---|---|---|" * len(scales))
        for key, label, kind in OPS:
            cells, any_ = [], False
            for s in scales:
                m = msal["results"][wl][s].get("ops", {}).get(key)
                t = ours["results"][wl][s].get("ops", {}).get(key)
                if not m or not t:
                    cells += ["-", "-", "-"]
                    continue
                any_ = True
                ratio = m["median_us"] / t["median_us"] if t["median_us"] else None
                cells += [fmt_us(m["median_us"]), fmt_us(t["median_us"]), fmt_ratio(ratio)]
                if int(s) == 100000 and ratio is not None:
                    verdicts.append((wl, key, kind, ratio, m["median_us"], t["median_us"]))
            if any_:
                lines.append("| %s | %s |" % (label, " | ".join(cells)))
        for key, label in MEMORY:
            cells = []
            for s in scales:
                m = msal["results"][wl][s].get("memory", {}).get(key)
                t = ours["results"][wl][s].get("memory", {}).get(key)
                cells += ["-" if m is None else "%.0f B" % m, "-" if t is None else "%.0f B" % t,
                          fmt_ratio(m / t) if m and t and t > 0 else "-"]
                if int(s) == 100000 and key == "rss_delta_per_token" and m and t:
                    verdicts.append((wl, "memory", "memory", m / t, m, t))
            lines.append("| %s | %s |" % (label, " | ".join(cells)))
    if verdicts:
        lines += ["", "## Targets at N = 100,000", ""]
        key_path = {wl: t for wl, key, kind, r, m, t in verdicts if key == "search_at_first"}
        msal_key = {wl: m for wl, key, kind, r, m, t in verdicts if key == "search_at_first"}
        for wl, key, kind, r, m, t in verdicts:
            if kind == "scan":
                goal, ok = "≥ 1,000× msal", r >= 1000
            elif kind == "all":
                goal, ok = "≥ 1,000× msal (N results: each a new dict)", r >= 1000
            elif kind == "key":
                goal, ok = "no slower than msal's key path (%s)" % fmt_us(msal_key.get(wl)), t <= msal_key.get(wl, 0)
            elif kind == "add":
                goal, ok = "≥ 10×", r >= 10
            elif key == "serialize":
                goal, ok = "≥ 10×", r >= 10
            elif key == "deserialize":
                goal, ok = "≥ 2×", r >= 2
            else:
                goal, ok = "below msal's", r > 1
            lines.append("- %s %s: %s (%s) — %s" % (wl, key, fmt_ratio(r), goal, "met" if ok else "NOT met"))
        del key_path
    text = "\n".join(lines) + "\n"
    with open(os.path.join(OUT, "python_compare.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""One operation of the agreed workload, for profiling and A/B builds.

The agreed comparison (`../shared/bench/peer_msal_python.py`, `make bench-python`) runs every
operation once per process; this times one of them with the same events and queries, as
often as asked, so that two builds (or a `perf record`) can be compared on just that:

    python bench/python_op.py --impl tokencache --workload W2 --scale 100000 --op add
    python bench/python_op.py --impl msal --workload W1 --scale 100000 --op deserialize --reps 7

Ops: add (median of every add while populating, as the agreed benchmark, then the
quantiles of each of the workload's two kinds of event), serialize,
deserialize (a fresh cache each time, the previous one dropped first, as the agreed
benchmark), accounts (find(Account) with no query, i.e. get_accounts). Prints medians.
"""
import argparse
import gc
import os
import statistics
import sys
import time
import warnings

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "bench"))
import peer_msal_python as peer  # noqa: E402


def quantiles(values, ps):
    ordered = sorted(values)
    return [ordered[min(len(ordered) - 1, int(len(ordered) * p))] for p in ps]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--impl", default="tokencache", help="msal | tokencache | module:Class")
    ap.add_argument("--workload", choices=["W1", "W2"], default="W1")
    ap.add_argument("--scale", type=int, default=100000)
    ap.add_argument("--op", choices=["add", "serialize", "deserialize", "accounts"], default="add")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--seed", type=int, default=20240601)
    args = ap.parse_args()
    warnings.simplefilter("ignore", DeprecationWarning)  # find(), as the agreed benchmark calls it

    factory, info = peer.load_impl(args.impl)
    data = (peer.W1Data if args.workload == "W1" else peer.W2Data)(args.scale, args.seed)
    cache = factory()
    lat = []
    perf = time.perf_counter_ns
    for ev in data.events():  # generated lazily, as the agreed benchmark does
        t0 = perf()
        cache.add(ev)
        lat.append(perf() - t0)
    label = "%s %s %s N=%d" % (info["impl"], info["version"], args.workload, args.scale)
    if args.op == "add":
        print("%s add: median %.2f us, mean %.2f us over %d adds" % (
            label, statistics.median(lat) / 1e3, sum(lat) / len(lat) / 1e3, len(lat)))
        # The two kinds of event apart (W1: the two resources of a tenant; W2: the
        # auth-code event that writes five entries, the refresh one that writes three).
        for kind in (0, 1):
            print("  event %d of 2: p10 / p50 / p90 %s us" % (kind + 1, " / ".join(
                "%.2f" % (q / 1e3) for q in quantiles(lat[kind::2], (0.1, 0.5, 0.9)))))
        return
    gc.collect()
    times = []
    if args.op == "deserialize":
        state = cache.serialize()
        del cache
        gc.collect()
        holder = None
        for _ in range(args.reps):
            holder = None  # the previous cache goes right before, as in the agreed benchmark
            fresh = factory()
            t0 = time.perf_counter()
            fresh.deserialize(state)
            times.append(time.perf_counter() - t0)
            holder = fresh
        del holder
    else:
        for _ in range(args.reps):
            t0 = time.perf_counter()
            out = cache.serialize() if args.op == "serialize" else cache.find("Account")
            times.append(time.perf_counter() - t0)
            del out
    print("%s %s: median %.1f ms (each: %s)" % (
        label, args.op, statistics.median(times) * 1e3, " ".join("%.0f" % (t * 1e3) for t in times)))


if __name__ == "__main__":
    main()

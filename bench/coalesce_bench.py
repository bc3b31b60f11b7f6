#!/usr/bin/env python3
"""Request coalescing, measured: requests saved, the wake-up latency of a coalesced
miss, and what the wrapper costs on a cache hit. Measures and reports; asserts
nothing.

    .venv/bin/python bench/coalesce_bench.py            # after scripts/python-wheel.sh
    .venv/bin/python bench/coalesce_bench.py --rounds 50 --latency-ms 50

1. Requests: THREADS threads call ``acquire_token_for_client`` on a cold cache at
   once, against the fake token endpoint on 127.0.0.1 (tests/python/fake_idp.py)
   with ``--latency-ms`` added to each token request (a real endpoint takes tens of
   milliseconds). msal alone vs ``tokencache.coalesced(app)``, same run, ROUNDS
   rounds each; requests per round and wall time per round.
2. Wake-up: THREADS callers miss one key; the fetch records the time just before it
   returns; each waiter, the time its ``get_or_fetch`` returned. The difference is
   a waiter's wake-up latency (condition variable, GIL re-acquired), p50/p99 over
   all waiters of all rounds. Peer: the same single flight written in Python with
   ``threading.Condition`` (what one would write by hand), same run.
3. Hit cost: one thread, a warm cache, ``acquire_token_for_client`` through msal
   alone vs through the wrapper (which looks the token up first, then lets msal
   serve it).

Results: target/bench/coalesce.json and target/bench/coalesce.md.
"""
import argparse
import http.server
import json
import os
import statistics
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "python"))

import msal  # noqa: E402

import tokencache  # noqa: E402
from fake_idp import AUTHORITY, FakeIdP, LoopbackHttpClient  # noqa: E402

OUT = os.path.join(ROOT, "target", "bench")
# 64 simultaneous connections overflow http.server's default listen backlog (5);
# a real endpoint does not reset them.
http.server.ThreadingHTTPServer.request_queue_size = 256
SCOPES = ["https://graph.microsoft.com/.default"]


class SlowHttp(LoopbackHttpClient):
    def __init__(self, idp, latency):
        super().__init__(idp)
        self._latency = latency

    def post(self, url, *args, **kwargs):
        if url.endswith("/oauth2/v2.0/token"):
            time.sleep(self._latency)
        return super().post(url, *args, **kwargs)


def app_for(idp, latency, tenant):
    return msal.ConfidentialClientApplication(
        "bench-app",
        client_credential="s3cret",
        authority="%s/%s" % (AUTHORITY, tenant),
        token_cache=tokencache.SerializableTokenCache(),
        http_client=SlowHttp(idp, latency),
        instance_discovery=False,
    )


def burst(threads, call):
    barrier = threading.Barrier(threads)
    out = [None] * threads

    def run(i):
        barrier.wait()
        out[i] = call()

    ts = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    start = time.perf_counter()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return time.perf_counter() - start, out


def requests_saved(idp, threads, rounds, latency):
    rows = {}
    for name in ("msal", "coalesced"):
        counts, walls = [], []
        for r in range(rounds):
            idp.reset()
            app = app_for(idp, latency, "tenant-%s-%d" % (name, r))
            if name == "coalesced":
                app = tokencache.coalesced(app)
            wall, out = burst(threads, lambda: app.acquire_token_for_client(SCOPES))
            assert all("access_token" in x for x in out), "a call failed"
            counts.append(idp.count("token"))
            walls.append(wall)
        rows[name] = {
            "requests_mean": statistics.mean(counts),
            "requests_min": min(counts),
            "requests_max": max(counts),
            "wall_ms_median": statistics.median(walls) * 1e3,
        }
    return rows


class PySingleFlight(object):
    """The peer: a single flight in plain Python (threading.Condition)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._flights = {}

    def get_or_fetch(self, key, fetch):
        with self._lock:
            flight = self._flights.get(key)
            leader = flight is None
            if leader:
                flight = self._flights[key] = {"cond": threading.Condition(), "done": False, "value": None}
        if leader:
            value = fetch()
            with self._lock:
                del self._flights[key]
            with flight["cond"]:
                flight["value"], flight["done"] = value, True
                flight["cond"].notify_all()
            return value
        with flight["cond"]:
            while not flight["done"]:
                flight["cond"].wait()
            return flight["value"]


def wake_latency(threads, rounds, fetch_ms):
    def measure(make):
        lat = []
        for r in range(rounds):
            c = make()
            done_at = []

            def fetch():
                time.sleep(fetch_ms / 1e3)  # every waiter is waiting by now
                done_at.append(time.perf_counter())
                return "v"

            back = [None] * threads
            barrier = threading.Barrier(threads)

            def run(i):
                barrier.wait()
                c.get_or_fetch("k%d" % r, fetch)
                back[i] = time.perf_counter()

            ts = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            assert len(done_at) == 1
            lat.extend(sorted(b - done_at[0] for b in back)[1:])  # the leader is no waiter
        lat.sort()
        return {
            "p50_us": lat[len(lat) // 2] * 1e6,
            "p99_us": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1e6,
            "max_us": lat[-1] * 1e6,
            "samples": len(lat),
        }

    return {"tokencache": measure(tokencache.Coalescer), "python": measure(PySingleFlight)}


def hit_cost(idp, calls):
    rows = {}
    for name in ("msal", "coalesced"):
        app = app_for(idp, 0.0, "hit-" + name)
        if name == "coalesced":
            app = tokencache.coalesced(app)
        app.acquire_token_for_client(SCOPES)  # warm
        best = None
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(calls):
                app.acquire_token_for_client(SCOPES)
            per = (time.perf_counter() - start) / calls
            best = per if best is None else min(best, per)
        rows[name] = {"us_per_call": best * 1e6}
    return rows


def render(res, args):
    req, wake, hit = res["requests"], res["wake"], res["hit"]
    m, c = req["msal"], req["coalesced"]
    lines = [
        "### Requests for %d threads missing one token (%d rounds, endpoint latency %d ms)"
        % (args.threads, args.rounds, args.latency_ms),
        "",
        "| | token requests per round (mean, min–max) | wall time per round (median) |",
        "|---|---|---|",
        "| msal alone | %.1f (%d–%d) | %.0f ms |" % (m["requests_mean"], m["requests_min"], m["requests_max"], m["wall_ms_median"]),
        "| `tokencache.coalesced(app)` | %.1f (%d–%d) | %.0f ms |" % (c["requests_mean"], c["requests_min"], c["requests_max"], c["wall_ms_median"]),
        "| ratio msal / coalesced | **%.0f×** fewer requests | %.2f× |" % (m["requests_mean"] / c["requests_mean"], m["wall_ms_median"] / c["wall_ms_median"]),
        "",
        "### Wake-up latency of a coalesced miss (%d waiters × %d rounds)" % (args.threads - 1, args.rounds),
        "",
        "| single flight | p50 | p99 | max |",
        "|---|---|---|---|",
    ]
    for name, label in (("tokencache", "`tokencache.Coalescer` (core, GIL released)"), ("python", "plain Python `threading.Condition`")):
        w = wake[name]
        lines.append("| %s | %.0f µs | %.0f µs | %.0f µs |" % (label, w["p50_us"], w["p99_us"], w["max_us"]))
    lines.append(
        "| ratio python / tokencache | %.2f× | %.2f× | |"
        % (wake["python"]["p50_us"] / wake["tokencache"]["p50_us"], wake["python"]["p99_us"] / wake["tokencache"]["p99_us"])
    )
    lines += [
        "",
        "### Cost on a cache hit (one thread, warm cache)",
        "",
        "| | per call |",
        "|---|---|",
        "| msal alone | %.1f µs |" % hit["msal"]["us_per_call"],
        "| `tokencache.coalesced(app)` | %.1f µs |" % hit["coalesced"]["us_per_call"],
        "| ratio coalesced / msal | %.2f× |" % (hit["coalesced"]["us_per_call"] / hit["msal"]["us_per_call"]),
    ]
    return "\n".join(lines) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=64)
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--latency-ms", type=int, default=50)
    p.add_argument("--hit-calls", type=int, default=2000)
    args = p.parse_args()
    idp = FakeIdP()
    try:
        res = {
            "requests": requests_saved(idp, args.threads, args.rounds, args.latency_ms / 1e3),
            "wake": wake_latency(args.threads, args.rounds, fetch_ms=50),
            "hit": hit_cost(idp, args.hit_calls),
            "args": vars(args),
        }
    finally:
        idp.close()
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "coalesce.json"), "w") as f:
        json.dump(res, f, indent=2)
    md = render(res, args)
    with open(os.path.join(OUT, "coalesce.md"), "w") as f:
        f.write(md)
    print(md)


if __name__ == "__main__":
    main()

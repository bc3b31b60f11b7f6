#!/usr/bin/env python3
"""The stores from Python, in one run on one machine (measures and reports; asserts nothing).

    make bench-stores-python           # runs this under scripts/redis-server.sh (a real redis-server)
    .venv/bin/python bench/python_stores.py [--adds 200] [--rounds 3] [--partitions 1000]

1. Persisted `add` on a file: tokencache.PersistedTokenCache against msal-extensions'
   PersistedTokenCache (the installed msal-extensions), the same user token events
   (ID token, account, refresh token, access token, app metadata) into an empty file.
   Reports time per add (median of --rounds runs of --adds adds each) and the ratio,
   on the temporary directory's disk and on tmpfs (/dev/shm), where fsync costs
   nothing (we fsync the file and its folder on every write; msal-extensions does not),
   and the file writes per add for each, counted by the kernel (inotify on the
   directory: IN_CLOSE_WRITE or IN_MOVED_TO naming the cache file; our atomic write is
   a rename, theirs a rewrite in place; the close of our temporary file after the
   rename is the same write; lock files are not counted).
2. CacheProvider(TieredStore(RedisStore)) from Python (when TOKENCACHE_REDIS_URL is set):
   a partition block served from L1, a block read from Redis (an L1-less TieredStore),
   and a block that adds a token and writes it through to Redis; p50 and p99.
"""
import argparse
import ctypes
import ctypes.util
import os
import shutil
import statistics
import struct
import sys
import tempfile
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "python"))

import msal_extensions  # noqa: E402

import tokencache  # noqa: E402
from test_api import NOW, app_event, user_event  # noqa: E402

IN_CLOSE_WRITE = 0x00000008
IN_MOVED_TO = 0x00000080
IN_NONBLOCK = 0o4000


class FileWrites:
    """Counts completed writes of one file name in a directory, as the kernel sees them."""

    def __init__(self, directory, name):
        self.libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        self.fd = self.libc.inotify_init1(IN_NONBLOCK)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        if self.libc.inotify_add_watch(self.fd, directory.encode(), IN_CLOSE_WRITE | IN_MOVED_TO) < 0:
            raise OSError(ctypes.get_errno(), "inotify_add_watch")
        self.name = name.encode()
        self.count = 0
        self.renamed = False

    def drain(self):
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return self.count
            i = 0
            while i < len(data):
                _wd, mask, _cookie, length = struct.unpack_from("iIII", data, i)
                name = data[i + 16:i + 16 + length].rstrip(b"\0")
                i += 16 + length
                if name != self.name:
                    continue
                if mask & IN_MOVED_TO:
                    self.count += 1
                    self.renamed = True
                elif mask & IN_CLOSE_WRITE:
                    # After a rename onto the name, the writer closing its temporary
                    # file is reported under the new name: the same write.
                    if not self.renamed:
                        self.count += 1
                    self.renamed = False

    def close(self):
        os.close(self.fd)


def events(n):
    """User sign-ins: one per tenant, so each add brings new entries of all five kinds."""
    return [user_event(tenant="tenant-%d" % i) for i in range(n)]


def make(kind, path):
    if kind == "tokencache":
        return tokencache.PersistedTokenCache(path)
    return msal_extensions.PersistedTokenCache(msal_extensions.FilePersistence(path))


def persisted_run(kind, evs, count_writes, where):
    d = tempfile.mkdtemp(prefix="tc-bench-", dir=where)
    path = os.path.join(d, "cache.json")
    watch = FileWrites(d, "cache.json") if count_writes else None
    try:
        cache = make(kind, path)
        per_add = []
        cpu = time.process_time()
        for e in evs:
            t = time.perf_counter()
            cache.add(e, now=NOW)
            per_add.append(time.perf_counter() - t)
        cpu = (time.process_time() - cpu) / len(evs)
        writes = watch.drain() if watch else None
        return per_add, writes, cpu
    finally:
        if watch:
            watch.close()
        shutil.rmtree(d)


def bench_persisted(adds, rounds, where):
    evs = events(adds)
    result = {}
    for kind in ("msal-extensions", "tokencache"):
        _, writes, _ = persisted_run(kind, evs, True, where)  # counting pass (also warms up)
        runs = [persisted_run(kind, evs, False, where) for _ in range(rounds)]
        means = [statistics.mean(r[0]) for r in runs]
        flat = sorted(x for r in runs for x in r[0])
        result[kind] = {
            "mean": statistics.median(means),
            "cpu": statistics.median(r[2] for r in runs),
            "p50": flat[len(flat) // 2],
            "p99": flat[min(len(flat) - 1, int(len(flat) * 0.99))],
            "writes_per_add": writes / adds,
        }
    return result


def quantiles(samples):
    s = sorted(samples)
    return s[len(s) // 2], s[min(len(s) - 1, int(len(s) * 0.99))]


def bench_redis(url, partitions, reads):
    prefix = "tcbench:%s:" % uuid.uuid4().hex[:8]
    store = tokencache.TieredStore(tokencache.RedisStore(url, key_prefix=prefix))
    provider = tokencache.CacheProvider(store)
    keys = ["CLIENT_t%d_AppTokenCache" % i for i in range(partitions)]
    write = []
    for i, k in enumerate(keys):
        t = time.perf_counter()
        with provider.cache_for(k) as cache:
            cache.add(app_event("t%d" % i))
        write.append(time.perf_counter() - t)
    l1 = []
    for i in range(reads):
        k = keys[i % partitions]
        t = time.perf_counter()
        with provider.cache_for(k):
            pass
        l1.append(time.perf_counter() - t)
    direct = tokencache.CacheProvider(tokencache.TieredStore(tokencache.RedisStore(url, key_prefix=prefix),
                                                             disable_l1=True))
    l2 = []
    for i in range(reads):
        k = keys[i % partitions]
        t = time.perf_counter()
        with direct.cache_for(k):
            pass
        l2.append(time.perf_counter() - t)
    w, r = store.stats(), direct.stats()["store"]
    return {
        "L1 hit (block, no change)": quantiles(l1),
        "L2 read (Redis, L1 disabled)": quantiles(l2),
        "write (add, L1 + Redis)": quantiles(write),
        "_core": {"writes (SET)": (w["l2_latency_p50"], w["l2_latency_p99"]),
                  "reads (GET)": (r["l2_latency_p50"], r["l2_latency_p99"])},
    }


def us(x):
    return "%.1f µs" % (x * 1e6) if x < 1e-3 else "%.2f ms" % (x * 1e3)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--adds", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--partitions", type=int, default=1000)
    ap.add_argument("--reads", type=int, default=5000)
    args = ap.parse_args()
    print("tokencache %s, msal-extensions %s, Python %s" % (
        tokencache.__version__, getattr(msal_extensions, "__version__", "?"), sys.version.split()[0]))

    places = [("disk", tempfile.gettempdir()), ("tmpfs", "/dev/shm")]
    for label, where in places:
        if not os.path.isdir(where):
            continue
        r = bench_persisted(args.adds, args.rounds, where)
        theirs, ours = r["msal-extensions"], r["tokencache"]
        print("\nPersisted add, %d user sign-ins into an empty file on %s (%s), median of %d runs:"
              % (args.adds, label, where, args.rounds))
        print("| | mean per add | p50 | p99 | CPU per add | file writes per add |")
        print("|---|---:|---:|---:|---:|---:|")
        for name, v in (("msal-extensions PersistedTokenCache", theirs), ("tokencache.PersistedTokenCache", ours)):
            print("| %s | %s | %s | %s | %s | %.2f |" % (
                name, us(v["mean"]), us(v["p50"]), us(v["p99"]), us(v["cpu"]), v["writes_per_add"]))
        print("| ratio (msal-extensions / tokencache) | **%.1f×** | %.1f× | %.1f× | %.1f× | |" % (
            theirs["mean"] / ours["mean"], theirs["p50"] / ours["p50"], theirs["p99"] / ours["p99"],
            theirs["cpu"] / ours["cpu"]))

    url = os.environ.get("TOKENCACHE_REDIS_URL")
    if not url:
        print("\nRedis: skipped (TOKENCACHE_REDIS_URL unset; run `make bench-stores-python`)")
        return
    r = bench_redis(url, args.partitions, args.reads)
    core = r.pop("_core")
    print("\nCacheProvider(TieredStore(RedisStore)) from Python, %d partitions, local redis-server:" % args.partitions)
    print("| `with provider.cache_for(key)` block | p50 | p99 |")
    print("|---|---:|---:|")
    for name, (p50, p99) in r.items():
        print("| %s | %s | %s |" % (name, us(p50), us(p99)))
    for what, (p50, p99) in core.items():
        print("(TieredStore.stats() L2 latency, Redis round trips only, %s: p50 %s, p99 %s)" % (what, us(p50), us(p99)))


if __name__ == "__main__":
    main()

"""16 processes adding to one cache file at once: 8 through tokencache.PersistedTokenCache
and 8 through msal-extensions' PersistedTokenCache (the real one, pinned in
tests/requirements.txt), both honouring ``<path>.lockfile``. Every token must be in the
file at the end, and our processes must never hit a lock error.

msal-extensions 1.3.1 (without portalocker, as here) takes the lock by creating the lock
file, polling every 0.25 s and giving up with ``LockError`` after 5 s. Under 16-way
contention it gives up now and then even when all 16 processes are msal-extensions
ones (measured: 16 msal-extensions processes x 25 adds, one LockError), so its workers
retry a given-up add, as an application has to; the give-ups are counted and printed.

TOKENCACHE_INTEROP_ADDS (default 200) sets the adds per process."""
import multiprocessing
import os
import time

import msal_extensions
import pytest

import tokencache
from test_api import NOW, app_event
from test_persisted import at_realms

ADDS = int(os.environ.get("TOKENCACHE_INTEROP_ADDS", "200"))
WORKERS = 8  # of each kind


def _worker(kind, path, worker, count, results):
    error, give_ups = None, 0
    started = time.perf_counter()
    try:
        if kind == "ours":
            cache = tokencache.PersistedTokenCache(path, lock_timeout=120)
        else:
            cache = msal_extensions.PersistedTokenCache(msal_extensions.FilePersistence(path))
        for i in range(count):
            event = app_event("%s-%d-%d" % (kind, worker, i))
            while True:
                try:
                    cache.add(event, now=NOW)
                    break
                except msal_extensions.LockError:  # only msal-extensions raises this
                    give_ups += 1  # msal-extensions' 5 s limit; an app would retry too
    except Exception as e:  # noqa: BLE001 - reported to the parent
        error = "%s: %s" % (type(e).__name__, e)
    results.put((kind, worker, error, time.perf_counter() - started, give_ups))


@pytest.mark.timeout(600)
def test_sixteen_processes_ours_and_msal_extensions_on_one_file(tmp_path):
    path = str(tmp_path / "cache.json")
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_worker, args=(kind, path, w, ADDS, results))
        for w in range(WORKERS)
        for kind in ("ours", "theirs")
    ]
    started = time.perf_counter()
    for p in procs:
        p.start()
    reports = [results.get(timeout=580) for _ in procs]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    elapsed = time.perf_counter() - started
    errors = [r for r in reports if r[2]]
    assert not errors, errors

    expected = sorted("%s-%d-%d" % (kind, w, i) for kind in ("ours", "theirs") for w in range(WORKERS)
                      for i in range(ADDS))
    assert at_realms(path) == expected
    assert not os.path.exists(path + ".lockfile")
    cache = tokencache.PersistedTokenCache(path)
    assert len(list(cache.search(cache.CredentialType.ACCESS_TOKEN, now=NOW))) == 2 * WORKERS * ADDS
    per_kind = {k: max(r[3] for r in reports if r[0] == k) for k in ("ours", "theirs")}
    print("\n16 processes x %d adds: %.1f s in all; slowest worker: ours %.1f s, msal-extensions %.1f s; "
          "msal-extensions lock give-ups (retried): %d"
          % (ADDS, elapsed, per_kind["ours"], per_kind["theirs"], sum(r[4] for r in reports)))

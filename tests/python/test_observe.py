"""Observability in Python: the core's log records on the `tokencache` logger, and
`stats()` mirroring the core's CacheStats."""
import glob
import logging
import time

import pytest

import tokencache
from test_api import NOW, app_event

GRAPH = ["https://graph.microsoft.com/.default"]
TYPES = {"AccessToken", "RefreshToken", "IdToken", "Account", "AppMetadata"}


def wait_for(caplog, predicate, timeout=5.0):
    """Records reach Python through the log thread, so shortly after the call."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [r for r in caplog.records if predicate(r)]
        if found:
            return found
        time.sleep(0.01)
    return []


def test_core_warning_reaches_the_tokencache_logger(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="tokencache")
    path = str(tmp_path / "cache.json")
    with open(path, "w") as f:
        f.write("{{{")
    cache = tokencache.PersistedTokenCache(path, on_corrupt="continue")
    assert len(cache) == 0
    (aside,) = glob.glob(path + ".corrupt-*")
    (record,) = wait_for(caplog, lambda r: r.name == "tokencache" and "unreadable" in r.getMessage())
    assert record.levelno == logging.WARNING
    assert aside in record.getMessage()
    assert record.target.startswith("tokencache")
    assert record.module_path.startswith("tokencache")


def test_disabled_level_is_not_forwarded(tmp_path, caplog):
    caplog.set_level(logging.ERROR, logger="tokencache")
    path = str(tmp_path / "cache.json")
    with open(path, "w") as f:
        f.write("{{{")
    tokencache.PersistedTokenCache(path, on_corrupt="continue")
    time.sleep(0.2)
    assert not [r for r in caplog.records if r.name == "tokencache"]


def test_no_token_value_in_logs(tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="tokencache")
    path = str(tmp_path / "cache.json")
    cache = tokencache.PersistedTokenCache(path)
    cache.add(app_event("contoso"), now=NOW)
    with open(path, "w") as f:
        f.write("{{{")
    tokencache.PersistedTokenCache(path, on_corrupt="continue")
    assert wait_for(caplog, lambda r: r.name == "tokencache")
    assert not [r for r in caplog.records if "secret" in r.getMessage()]


@pytest.mark.parametrize("cls", [tokencache.TokenCache, tokencache.SerializableTokenCache])
def test_stats_count_hits_and_misses(cls):
    cache = cls()
    stats = cache.stats()
    assert set(stats) == {"hits", "misses", "evictions", "entries", "partitions", "bytes", "examined"}
    assert set(stats["hits"]) == set(stats["misses"]) == TYPES
    assert set(stats["evictions"]) == {"capacity", "absolute", "sliding", "expired_tokens"}
    assert stats["entries"] == 0
    cache.add(app_event("contoso"), now=NOW)
    assert list(cache.search(cache.CredentialType.ACCESS_TOKEN, target=GRAPH, now=NOW))
    assert list(cache.search(cache.CredentialType.ACCESS_TOKEN, target=["nope"], now=NOW)) == []
    assert list(cache.search(cache.CredentialType.REFRESH_TOKEN, now=NOW)) == []
    stats = cache.stats()
    assert stats["hits"]["AccessToken"] == 1
    assert stats["misses"]["AccessToken"] == 1
    assert stats["misses"]["RefreshToken"] == 1
    assert stats["entries"] == len(cache) > 0
    assert stats["examined"] >= 1


def test_persisted_stats(tmp_path):
    cache = tokencache.PersistedTokenCache(str(tmp_path / "cache.json"))
    cache.add(app_event("contoso"), now=NOW)
    assert list(cache.search(cache.CredentialType.ACCESS_TOKEN, target=GRAPH, now=NOW))
    stats = cache.stats()
    assert stats["hits"]["AccessToken"] == 1
    assert stats["entries"] == len(cache)

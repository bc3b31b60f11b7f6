"""tokencache.CacheProvider: one partition per ``with provider.cache_for(key)``
block, over MemoryStore and SqliteStore, with msal's applications."""
import json

import pytest

import tokencache
from fake_idp import FakeIdP, LoopbackHttpClient
from test_api import NOW, app_event
from test_dropin import GRAPH, TENANTS, cca


@pytest.fixture(scope="module")
def idp():
    server = FakeIdP()
    yield server
    server.close()


@pytest.fixture(params=["memory", "sqlite"])
def store(request, tmp_path):
    if request.param == "memory":
        return tokencache.MemoryStore()
    return tokencache.SqliteStore(str(tmp_path / "cache.sqlite"))


def realms(cache):
    return sorted(at["realm"] for at in cache.search(cache.CredentialType.ACCESS_TOKEN, now=NOW))


def test_partitions_are_saved_on_exit_and_kept_apart(store):
    provider = tokencache.CacheProvider(store)
    with provider.cache_for("tenant-a") as cache:
        assert isinstance(cache, tokencache.SerializableTokenCache)
        assert len(cache) == 0
        cache.add(app_event("a"), now=NOW)
    with provider.cache_for("tenant-b") as cache:
        cache.add(app_event("b"), now=NOW)
    with provider.cache_for("tenant-a") as cache:
        assert realms(cache) == ["a"]
    with provider.cache_for("tenant-b") as cache:
        assert realms(cache) == ["b"]
    assert "writes=2" in repr(provider)


def test_unchanged_partition_is_not_written_and_emptied_one_is_removed(store):
    provider = tokencache.CacheProvider(store)
    with provider.cache_for("k") as cache:
        cache.add(app_event("a"), now=NOW)
    with provider.cache_for("k") as cache:
        assert realms(cache) == ["a"]
    assert "writes=1" in repr(provider)
    with provider.cache_for("k") as cache:
        cache.deserialize("{}")
        cache.has_state_changed = True
    assert "removals=1" in repr(provider)
    with provider.cache_for("k") as cache:
        assert len(cache) == 0


def test_saved_even_when_the_block_raises(store):
    provider = tokencache.CacheProvider(store)
    with pytest.raises(RuntimeError):
        with provider.cache_for("k") as cache:
            cache.add(app_event("a"), now=NOW)
            raise RuntimeError("after the token arrived")
    with provider.cache_for("k") as cache:
        assert realms(cache) == ["a"]


def test_sqlite_partitions_outlive_the_provider(tmp_path):
    path = str(tmp_path / "cache.sqlite")
    with tokencache.CacheProvider(tokencache.SqliteStore(path)).cache_for("k") as cache:
        cache.add(app_event("a"), now=NOW)
    with tokencache.CacheProvider(tokencache.SqliteStore(path)).cache_for("k") as cache:
        assert realms(cache) == ["a"]
        assert json.loads(cache.serialize())["AccessToken"]


def test_msal_app_per_request_serves_the_second_call_from_the_store(idp, store):
    idp.reset()
    http = LoopbackHttpClient(idp)
    provider = tokencache.CacheProvider(store)
    for expected in ("identity_provider", "cache"):
        with provider.cache_for("daemon-app/" + TENANTS[0]) as cache:
            app = cca(cache, http, TENANTS[0])
            assert app.acquire_token_for_client(GRAPH)["token_source"] == expected
    assert idp.count("token") == 1
    assert "secret" not in repr(provider) and "s3cret" not in repr(store)


def test_bad_arguments():
    with pytest.raises(TypeError):
        tokencache.CacheProvider(object())
    with pytest.raises(TypeError):
        tokencache.CacheProvider(tokencache.MemoryStore()).cache_for(1)


@pytest.mark.parametrize("kind", ["memory", "sqlite", "tiered"])
def test_overlapping_blocks_on_one_partition_lose_nothing(kind, tmp_path):
    """Two requests on one partition at once (two providers, as two servers would be):
    the one that saves last merges onto what the other saved instead of overwriting it."""
    if kind == "sqlite":
        path = str(tmp_path / "cache.sqlite")
        a, b = (tokencache.CacheProvider(tokencache.SqliteStore(path)) for _ in range(2))
    else:
        shared = tokencache.MemoryStore()
        wrap = (lambda s: tokencache.TieredStore(s, l2_version_check_interval=0)) if kind == "tiered" else (lambda s: s)
        a, b = tokencache.CacheProvider(wrap(shared)), tokencache.CacheProvider(wrap(shared))
    with a.cache_for("k") as first:
        first.add(app_event("base"), now=NOW)
    with a.cache_for("k") as slow:
        with b.cache_for("k") as fast:
            fast.add(app_event("fast"), now=NOW)
        slow.add(app_event("slow"), now=NOW)
    with b.cache_for("k") as cache:
        assert realms(cache) == ["base", "fast", "slow"]
    assert a.stats()["conflicts"] >= 1 and a.stats()["merges"] >= 1 and a.stats()["merge_lost"] == 0

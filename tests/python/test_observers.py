"""Before/after-access observers from Python: what they are told (operation,
partition key, has_state_changed, suggested expiry), calls back into the cache from
an observer, threads, and an observer that raises."""
import logging
import threading
import time

import pytest

import tokencache
from fake_idp import FakeIdP, LoopbackHttpClient
from test_api import CLIENT, NOW, app_event, user_event
from test_dropin import GRAPH, TENANTS, cca


class Recorder(tokencache.AccessObserver):
    def __init__(self):
        self.events = []

    def before_access(self, event):
        self.events.append(("before", event))

    def after_access(self, event):
        self.events.append(("after", event))

    def of(self, operation):
        return [(when, e) for when, e in self.events if e.operation == operation]


@pytest.fixture(scope="module")
def idp():
    server = FakeIdP()
    yield server
    server.close()


def test_add_search_serialize_are_reported_with_partition_and_change():
    cache = tokencache.SerializableTokenCache()
    rec = Recorder()
    cache.set_observer(rec)
    cache.add(app_event("contoso"))
    (w1, before), (w2, after) = rec.of("add")
    assert (w1, w2) == ("before", "after")
    assert before.has_state_changed is False and before.suggested_expiry is None
    assert after.has_state_changed is True
    assert after.partition_key == "%s_contoso_AppTokenCache" % CLIENT
    assert after.suggested_expiry == pytest.approx(time.time() + 3600, abs=60)

    assert len(list(cache.search(cache.CredentialType.ACCESS_TOKEN, target=["https://graph.microsoft.com/.default"])))
    searches = [e for when, e in rec.of("search") if when == "after"]
    assert searches and all(e.has_state_changed is True for e in searches)  # not saved since the add
    assert {e.credential_type for e in searches} == {"AccessToken"}

    cache.serialize()
    rec.events.clear()
    list(cache.search(cache.CredentialType.ACCESS_TOKEN))
    assert [e.has_state_changed for when, e in rec.of("search") if when == "after"] == [False]
    state = cache.serialize()
    cache.deserialize(state)
    assert [e.has_state_changed for _, e in rec.of("serialize") + rec.of("deserialize")] == [False] * 4

    # A user token: the partition is the home account id.
    rec.events.clear()
    cache.add(user_event("contoso"), now=NOW)
    after = [e for when, e in rec.of("add") if when == "after"][0]
    assert after.partition_key == "uid.utid"  # client_info's uid.utid: the home account id
    assert after.suggested_expiry is None  # it holds a refresh token: keep it
    assert "secret" not in repr(after) and "AccessEvent(operation='add'" in repr(after)


def test_observer_may_call_the_cache_and_is_removed_by_none():
    cache = tokencache.SerializableTokenCache()
    saved = []

    class SaveOnChange(tokencache.AccessObserver):
        def after_access(self, event):
            if event.has_state_changed and event.operation in ("add", "modify"):
                saved.append(cache.serialize())  # back into the cache from the observer

    cache.set_observer(SaveOnChange())
    cache.add(app_event("a"))
    cache.add(app_event("b"))
    assert len(saved) == 2 and '"realm": "b"' in saved[1] and not cache.has_state_changed
    cache.set_observer(None)
    cache.add(app_event("c"))
    assert len(saved) == 2


def test_duck_typed_observers_and_bad_ones():
    cache = tokencache.TokenCache()
    seen = []

    class OnlyAfter:
        def after_access(self, event):
            seen.append(event.operation)

    cache.set_observer(OnlyAfter())
    cache.add(app_event("a"))
    assert seen == ["add"]
    with pytest.raises(TypeError):
        cache.set_observer(object())
    with pytest.raises(TypeError):
        cache.set_observer(type("Bad", (), {"before_access": 3})())


def test_an_observer_that_raises_is_logged_and_the_cache_is_unaffected(caplog):
    cache = tokencache.SerializableTokenCache()

    class Broken(tokencache.AccessObserver):
        def after_access(self, event):
            raise RuntimeError("observer bug")

    cache.set_observer(Broken())
    with caplog.at_level(logging.ERROR, logger="tokencache"):
        cache.add(app_event("a"))
    assert len(cache) == 2 and cache.has_state_changed  # the token and the app metadata
    records = [r for r in caplog.records if r.name == "tokencache" and r.levelno == logging.ERROR]
    assert records and "after_access raised" in records[0].getMessage()
    assert records[0].exc_info and records[0].exc_info[0] is RuntimeError


def test_observers_from_many_threads():
    cache = tokencache.SerializableTokenCache()
    counts = {"before": 0, "after": 0}
    lock = threading.Lock()

    class Count(tokencache.AccessObserver):
        def before_access(self, event):
            with lock:
                counts["before"] += 1

        def after_access(self, event):
            with lock:
                counts["after"] += 1

    cache.set_observer(Count())

    def work(i):
        for j in range(200):
            cache.add(app_event("t%d-%d" % (i, j)))
            cache.serialize()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(cache) == 801  # 800 tokens and the app metadata
    assert counts == {"before": 1600, "after": 1600}


def test_observer_on_a_provider_block_sees_msal_write_the_partition(idp):
    idp.reset()
    http = LoopbackHttpClient(idp)
    provider = tokencache.CacheProvider(tokencache.MemoryStore())
    key = "daemon-app_%s_AppTokenCache" % TENANTS[0]
    changes = []
    for _ in range(2):
        with provider.cache_for(key) as cache:
            rec = Recorder()
            cache.set_observer(rec)
            cca(cache, http, TENANTS[0]).acquire_token_for_client(GRAPH)
            changes.append([(e.operation, e.partition_key) for when, e in rec.events
                            if when == "after" and e.has_state_changed])
    assert changes[0] == [("add", key)]
    assert changes[1] == []
    assert idp.count("token") == 1

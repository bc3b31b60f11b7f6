"""tokencache.Refresher: proactive renewal with an injected clock (issue 8, part 2)."""
import copy
import logging
import threading

import pytest

import tokencache
from test_api import NOW, app_event


class Clock:
    def __init__(self, t):
        self.t = t

    def __call__(self):
        return self.t


def renewer(cache, clock, fail=()):
    """A renew callback as an app would write one: a new token for the same tenant
    (here an event, as msal's acquire_token_for_client would add one)."""
    calls = []

    def renew(due):
        tenant = due["entry"]["realm"]
        calls.append(tenant)
        if tenant in fail:
            raise RuntimeError("the token endpoint is down")
        cache.add(copy.deepcopy(app_event(tenant)), now=clock())

    return renew, calls


def test_each_due_token_is_renewed_once():
    clock = Clock(NOW)
    cache = tokencache.SerializableTokenCache()
    cache.add(app_event("t1"), now=NOW)
    cache.add(app_event("t2", expires_in=600), now=NOW)
    renew, calls = renewer(cache, clock)
    r = tokencache.Refresher(cache, renew, horizon=300, interval=60, clock=clock)
    assert r.poll() == 0
    clock.t = NOW + 400  # t2 has 200 s left
    assert r.poll() == 1 and calls == ["t2"]
    assert r.poll() == 0, "renewed: its new expiry is an hour away"
    clock.t = NOW + 3400  # t1 has 200 s left
    assert r.poll() == 1 and calls == ["t2", "t1"]
    assert r.renewed == 2 and r.failures == 0
    # The cache holds the renewed tokens.
    ats = list(cache.search(tokencache.TokenCache.CredentialType.ACCESS_TOKEN, now=clock.t))
    assert sorted(int(a["expires_on"]) for a in ats) == [NOW + 400 + 3600, NOW + 3400 + 3600]


def test_a_failed_renewal_is_logged_without_secrets_and_retried(caplog):
    caplog.set_level(logging.WARNING, logger="tokencache")
    clock = Clock(NOW + 3400)
    cache = tokencache.SerializableTokenCache()
    cache.add(app_event("t1"), now=NOW)
    renew, calls = renewer(cache, clock, fail={"t1"})
    r = tokencache.Refresher(cache, renew, clock=clock)
    assert r.poll() == 0 and r.failures == 1
    assert r.poll() == 0 and r.failures == 2 and calls == ["t1", "t1"], "retried at the next poll"
    messages = [rec.getMessage() for rec in caplog.records if rec.name == "tokencache"]
    assert any("retrying" in m for m in messages)
    assert not any("app-secret" in m for m in messages)


def test_the_thread_polls_and_stops_cleanly():
    clock = Clock(NOW + 3400)
    cache = tokencache.SerializableTokenCache()
    cache.add(app_event("t1"), now=NOW)
    renewed = threading.Event()

    def renew(due):
        cache.add(copy.deepcopy(app_event(due["entry"]["realm"])), now=clock())
        renewed.set()

    with tokencache.Refresher(cache, renew, interval=0.05, clock=clock) as r:
        assert r.running
        assert renewed.wait(10), "the background thread renewed the due token"
    assert not r.running
    assert r.renewed == 1


def test_persisted_caches_are_watched_too(tmp_path):
    path = str(tmp_path / "cache.json")
    cache = tokencache.PersistedTokenCache(path)
    cache.add(app_event("t1"), now=NOW)
    watcher = tokencache.RefreshWatcher(cache, 300)
    assert [d["entry"]["realm"] for d in watcher.poll(NOW + 3400)] == ["t1"]
    assert watcher.poll(NOW + 3401) == []


def test_bad_arguments():
    with pytest.raises(TypeError):
        tokencache.RefreshWatcher(object())
    with pytest.raises(ValueError):
        tokencache.Refresher(tokencache.TokenCache(), lambda d: None, interval=0)

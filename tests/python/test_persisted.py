"""tokencache.PersistedTokenCache: a token cache in one file, shared by processes,
by instances, by msal's applications and by msal-extensions' PersistedTokenCache
(pinned in tests/requirements.txt), which uses the same ``<path>.lockfile``."""
import copy
import glob
import json
import multiprocessing
import os

import msal
import msal_extensions
import pytest

import tokencache
from fake_idp import FakeIdP, LoopbackHttpClient
from test_api import NOW, app_event, user_event
from test_dropin import GRAPH, TENANTS, cca


def read(path):
    with open(path) as f:
        return f.read()


def sections(path):
    with open(path) as f:
        return json.load(f)


def at_realms(path):
    return sorted(at["realm"] for at in sections(path).get("AccessToken", {}).values())


@pytest.fixture
def path(tmp_path):
    return str(tmp_path / "cache.json")


@pytest.fixture(scope="module")
def idp():
    server = FakeIdP()
    yield server
    server.close()


# ------------------------------------------------------------------ the class


def test_same_surface_as_serializable_token_cache(path):
    cache = tokencache.PersistedTokenCache(path)
    # No observers: the core's PersistedTokenCache runs cache operations under its file
    # lock, where calling Python code could deadlock (see tokencache.AccessObserver).
    for name in set(dir(tokencache.SerializableTokenCache)) - {"set_observer"}:
        if not name.startswith("__") or name in ("__len__", "__bool__"):
            assert hasattr(cache, name), name
    assert not hasattr(cache, "set_observer")
    assert cache.CredentialType.ACCESS_TOKEN == "AccessToken"
    assert cache.AuthorityType.MSSTS == "MSSTS"
    assert bool(cache) and len(cache) == 0
    assert str(cache.path) == path


def test_repr_and_errors_show_no_secret(path):
    cache = tokencache.PersistedTokenCache(path)
    cache.add(user_event(), now=NOW)
    assert "secret" not in repr(cache)
    with open(path, "w") as f:
        f.write('{"AccessToken": {"k": "at-secret-value"')
    with pytest.raises(tokencache.CorruptError) as exc:
        cache.serialize()
    assert "secret" not in str(exc.value)


def test_not_picklable(path):
    import pickle

    with pytest.raises(TypeError):
        pickle.dumps(tokencache.PersistedTokenCache(path))


def test_bad_options(path):
    with pytest.raises(ValueError):
        tokencache.PersistedTokenCache(path, on_corrupt="ignore")
    with pytest.raises(ValueError):
        tokencache.PersistedTokenCache(path, lock_timeout=-1)


def test_every_change_is_written_through_as_msal_would_write_it(path):
    ours = tokencache.PersistedTokenCache(path)
    theirs = msal.SerializableTokenCache()
    for ev in (user_event(), app_event("t1")):
        ours.add(copy.deepcopy(ev), now=NOW)
        theirs.add(copy.deepcopy(ev), now=NOW)
        with open(path) as f:
            assert json.loads(f.read()) == json.loads(theirs.serialize())
    assert not ours.has_state_changed
    (rt,) = ours.search(ours.CredentialType.REFRESH_TOKEN)
    ours.update_rt(rt, "rt-new", now=NOW)
    assert [r["secret"] for r in sections(path)["RefreshToken"].values()] == ["rt-new"]
    (at,) = ours.search(ours.CredentialType.ACCESS_TOKEN, query={"realm": "t1"}, now=NOW)
    ours.remove_at(at)
    assert at_realms(path) == ["contoso"]
    (acct,) = ours.search(ours.CredentialType.ACCOUNT)
    ours.remove_account(acct)
    assert "Account" not in sections(path) or not sections(path)["Account"]
    assert ours.serialize() == read(path)


# ------------------------------------------------------------------ sharing


def test_sharing_is_off_by_default_as_in_msal_extensions(path):
    cache = tokencache.PersistedTokenCache(path)
    assert cache.sharing is False
    cache.sharing = "auto"
    assert cache.sharing == "auto" and cache.sharing_active is False
    cache.sharing = True
    assert cache.sharing_active is True


def test_two_instances_on_one_file_see_each_others_writes(path):
    a = tokencache.PersistedTokenCache(path)
    b = tokencache.PersistedTokenCache(path)
    a.add(app_event("from-a"), now=NOW)
    assert [x["realm"] for x in b.search(b.CredentialType.ACCESS_TOKEN, now=NOW)] == ["from-a"]
    b.add(app_event("from-b"), now=NOW)
    assert sorted(x["realm"] for x in a.search(a.CredentialType.ACCESS_TOKEN, now=NOW)) == ["from-a", "from-b"]
    assert b._get_app_metadata("login.microsoftonline.com", "other-client") is None
    a.add(user_event(client="other-client"), now=NOW)
    assert b._get_app_metadata("login.microsoftonline.com", "other-client")["client_id"] == "other-client"
    assert len(a) == len(b)


def test_msal_app_serves_the_second_call_from_the_file(idp, path):
    idp.reset()
    http = LoopbackHttpClient(idp)
    app = cca(tokencache.PersistedTokenCache(path), http, TENANTS[0])
    assert app.acquire_token_for_client(GRAPH)["token_source"] == "identity_provider"
    assert app.acquire_token_for_client(GRAPH)["token_source"] == "cache"
    # Another app, another instance on the same file (another process would be the same).
    other = cca(tokencache.PersistedTokenCache(path), http, TENANTS[0])
    assert other.acquire_token_for_client(GRAPH)["token_source"] == "cache"
    assert idp.count("token") == 1
    assert at_realms(path) == [TENANTS[0]]


def _adder(path, worker, count):
    cache = tokencache.PersistedTokenCache(path, lock_timeout=30)
    for i in range(count):
        cache.add(app_event("w%d-%d" % (worker, i)), now=NOW)


@pytest.mark.timeout(60)
def test_eight_processes_fifty_adds_each_lose_nothing(path):
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_adder, args=(path, w, 50)) for w in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(50)
        assert p.exitcode == 0
    expected = sorted("w%d-%d" % (w, i) for w in range(8) for i in range(50))
    assert at_realms(path) == expected
    cache = tokencache.PersistedTokenCache(path)
    assert len(list(cache.search(cache.CredentialType.ACCESS_TOKEN, now=NOW))) == 400


def test_msal_extensions_and_ours_alternate_on_one_file(path):
    theirs = msal_extensions.PersistedTokenCache(msal_extensions.FilePersistence(path))
    ours = tokencache.PersistedTokenCache(path)
    added = []
    for i in range(20):
        cache = theirs if i % 2 == 0 else ours
        realm = "%s-%d" % ("theirs" if cache is theirs else "ours", i)
        cache.add(app_event(realm), now=NOW)
        added.append(realm)
        for reader in (theirs, ours):
            seen = sorted(x["realm"] for x in reader.search(reader.CredentialType.ACCESS_TOKEN, now=NOW))
            assert seen == sorted(added)
    assert at_realms(path) == sorted(added)
    assert os.path.exists(path + ".lockfile") is False  # both release the shared lock file
    # A fresh msal-extensions instance reads the file as it stands.
    fresh = msal_extensions.PersistedTokenCache(msal_extensions.FilePersistence(path))
    assert len(list(fresh.search(fresh.CredentialType.ACCESS_TOKEN, now=NOW))) == 20


def test_lock_held_by_msal_extensions_times_out(path):
    ours = tokencache.PersistedTokenCache(path, lock_timeout=0.2)
    with msal_extensions.CrossPlatLock(path + ".lockfile"):
        with pytest.raises(tokencache.LockTimeoutError):
            ours.add(app_event("t"), now=NOW)
    ours.add(app_event("t"), now=NOW)
    assert at_realms(path) == ["t"]


# ------------------------------------------------------------------ corruption


def test_corrupt_file_raises_and_is_moved_aside(path):
    with open(path, "w") as f:
        f.write("not json at all")
    with pytest.raises(tokencache.CorruptError):
        tokencache.PersistedTokenCache(path)
    (aside,) = glob.glob(path + ".corrupt-*")
    assert read(aside) == "not json at all"
    cache = tokencache.PersistedTokenCache(path)
    cache.add(app_event("after"), now=NOW)
    assert at_realms(path) == ["after"]


def test_corrupt_file_written_later_raises_once(path):
    cache = tokencache.PersistedTokenCache(path)
    cache.add(app_event("before"), now=NOW)
    with open(path, "w") as f:
        f.write("[1, 2")
    with pytest.raises(tokencache.CorruptError):
        list(cache.search(cache.CredentialType.ACCESS_TOKEN, now=NOW))
    assert len(glob.glob(path + ".corrupt-*")) == 1
    assert list(cache.search(cache.CredentialType.ACCESS_TOKEN, now=NOW)) == []


def test_corrupt_file_continues_by_option(path):
    with open(path, "w") as f:
        f.write("{{{")
    cache = tokencache.PersistedTokenCache(path, on_corrupt="continue")
    assert len(cache) == 0
    assert len(glob.glob(path + ".corrupt-*")) == 1
    cache.add(app_event("fresh"), now=NOW)
    assert at_realms(path) == ["fresh"]

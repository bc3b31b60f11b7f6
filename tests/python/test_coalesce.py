"""tokencache.coalesced(app): msal applications whose concurrent cache misses share
one request to the (fake, 127.0.0.1) token endpoint — in one process through the
core's Coalescer, across processes through a lease in a real Redis (run under
``scripts/redis-server.sh run``, as ``make test-python`` does) or SQLite."""
import json
import multiprocessing
import os
import threading
import time
import types
import uuid

import msal
import pytest
import requests

import tokencache
from fake_idp import AUTHORITY, FakeIdP, LoopbackHttpClient
from test_dropin import GRAPH, TENANTS

THREADS = 64
LONG = 60.0  # bounds a failing test only


@pytest.fixture(scope="module")
def idp():
    server = FakeIdP()
    yield server
    server.close()


def app_for(cache, http, tenant=TENANTS[0], client_id="daemon-app", secret="s3cret"):
    return msal.ConfidentialClientApplication(
        client_id,
        client_credential=secret,
        authority="%s/%s" % (AUTHORITY, tenant),
        token_cache=cache,
        http_client=http,
        instance_discovery=False,
    )


def client_key(app, scopes):
    """The coalescing key of a plain acquire_token_for_client (to watch its waiters)."""
    return tokencache._coalesce._key("acquire_token_for_client", app, scopes, None, claims=None, kwargs={})


def wait_for(what, done):
    start = time.monotonic()
    while not done():
        assert time.monotonic() - start < LONG, "timed out waiting for " + what
        time.sleep(0.001)


class GatedHttp(LoopbackHttpClient):
    """Holds the first token request until `ready()` (every other thread waits on
    the flight), so the count of requests cannot depend on thread scheduling;
    `first_secret` replaces the client secret of that first request (a failure the
    endpoint really returns)."""

    def __init__(self, idp, ready, first_secret=None):
        super().__init__(idp)
        self._ready = ready
        self._first_secret = first_secret
        self._lock = threading.Lock()
        self.token_posts = 0

    def post(self, url, params=None, data=None, headers=None, **kwargs):
        if url.endswith("/oauth2/v2.0/token"):
            with self._lock:
                self.token_posts += 1
                first = self.token_posts == 1
            if first:
                wait_for("the other callers to join the flight", self._ready)
                if self._first_secret is not None:
                    data = dict(data, client_secret=self._first_secret)
        return super().post(url, params=params, data=data, headers=headers, **kwargs)


def run_threads(n, target):
    results, errors = [None] * n, [None] * n
    barrier = threading.Barrier(n)

    def run(i):
        barrier.wait()
        try:
            results[i] = target()
        except BaseException as ex:  # noqa: B902 - handed to the test
            errors[i] = ex

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(LONG)
        assert not t.is_alive()
    return results, errors


# ------------------------------------------------------------------ one process


def test_sixty_four_threads_missing_one_token_make_one_request(idp):
    idp.reset()
    holder = {}
    http = GatedHttp(idp, lambda: holder["app"].coalescer.waiters(holder["key"]) == THREADS - 1)
    app = tokencache.coalesced(app_for(tokencache.SerializableTokenCache(), http))
    holder.update(app=app, key=client_key(app.app, GRAPH))
    results, errors = run_threads(THREADS, lambda: app.acquire_token_for_client(GRAPH))
    assert errors == [None] * THREADS
    assert idp.count("token") == 1
    tokens = {r["access_token"] for r in results}
    assert len(tokens) == 1
    stats = app.stats()
    assert (stats["flights"], stats["fetches"], stats["coalesced"], stats["failures"]) == (1, 1, THREADS - 1, 0)
    # Every caller has its own dict.
    results[0]["access_token"] = "changed"
    assert results[1]["access_token"] in tokens
    # Then served from the cache by msal, no flight.
    again = app.acquire_token_for_client(GRAPH)
    assert again["token_source"] == "cache" and again["access_token"] in tokens
    assert idp.count("token") == 1
    assert app.stats()["hits"] == 1


def test_callers_arriving_at_any_time_still_make_one_request(idp):
    # No gate: a caller that comes after the flight finds the token in the cache.
    idp.reset()
    app = tokencache.coalesced(app_for(msal.SerializableTokenCache(), LoopbackHttpClient(idp), TENANTS[1]))
    results, errors = run_threads(16, lambda: app.acquire_token_for_client(GRAPH))
    assert errors == [None] * 16
    assert idp.count("token") == 1
    assert len({r["access_token"] for r in results}) == 1


def test_a_failing_fetch_fails_all_waiters_once_and_the_next_call_retries(idp):
    idp.reset()
    holder = {}
    http = GatedHttp(
        idp, lambda: holder["app"].coalescer.waiters(holder["key"]) == THREADS - 1, first_secret="wrong"
    )
    app = tokencache.coalesced(app_for(tokencache.SerializableTokenCache(), http, TENANTS[2]))
    holder.update(app=app, key=client_key(app.app, GRAPH))
    results, errors = run_threads(THREADS, lambda: app.acquire_token_for_client(GRAPH))
    assert errors == [None] * THREADS
    assert [r.get("error") for r in results] == ["invalid_client"] * THREADS, "msal's error dict, to every caller"
    assert idp.count("token") == 1
    assert app.stats()["failures"] == 0, "msal reports the failure as a result, not an exception"
    ok = app.acquire_token_for_client(GRAPH)
    assert ok["token_source"] == "identity_provider", ok.get("error")
    assert idp.count("token") == 2


def test_an_exception_in_the_fetch_is_raised_in_every_waiter():
    c = tokencache.Coalescer()
    calls = []

    def fetch():
        calls.append(1)
        wait_for("waiters", lambda: c.waiters("k") == 7)
        raise requests.ConnectionError("the endpoint is down")

    results, errors = run_threads(8, lambda: c.get_or_fetch("k", fetch))
    assert results == [None] * 8
    assert all(isinstance(e, requests.ConnectionError) for e in errors), errors
    assert len(calls) == 1
    assert c.stats()["failures"] == 1
    assert c.get_or_fetch("k", lambda: "next time") == "next time"


def test_a_waiter_times_out_with_lock_timeout_error():
    c = tokencache.Coalescer()
    started, release = threading.Event(), threading.Event()

    def slow():
        started.set()
        release.wait(LONG)
        return "late"

    leader = threading.Thread(target=lambda: c.get_or_fetch("k", slow))
    leader.start()
    started.wait(LONG)
    with pytest.raises(tokencache.LockTimeoutError):
        c.get_or_fetch("k", lambda: "not me", timeout=0.02)
    release.set()
    leader.join(LONG)
    assert c.stats()["timeouts"] == 1


def test_lookup_hit_skips_the_fetch_and_none_is_a_miss():
    c = tokencache.Coalescer()
    assert c.get_or_fetch("k", lambda: pytest.fail("no fetch"), lookup=lambda: {"v": 1}) == {"v": 1}
    assert c.get_or_fetch("k", lambda: "fetched", lookup=lambda: None) == "fetched"
    with pytest.raises(ValueError):
        c.get_or_fetch("k", lambda: 1, timeout=-1)


def test_silent_refreshes_coalesce_per_account(idp):
    idp.reset()
    cache = tokencache.SerializableTokenCache()
    http = LoopbackHttpClient(idp)
    pca = msal.PublicClientApplication(
        "public-app", authority=AUTHORITY + "/organizations", token_cache=cache, http_client=http,
        instance_discovery=False,
    )
    flow = pca.initiate_auth_code_flow(["User.Read"], redirect_uri="http://localhost", response_mode="form_post")
    from fake_idp import auth_code

    pca.acquire_token_by_auth_code_flow(flow, {"code": auth_code("alice", flow["nonce"]), "state": flow["state"]})
    account = pca.get_accounts()[0]
    # Drop the access token: the next silent call refreshes with the RT.
    for at in list(cache.search(cache.CredentialType.ACCESS_TOKEN)):
        cache.remove_at(at)
    before = idp.count("token")
    app = tokencache.coalesced(pca)
    results, errors = run_threads(16, lambda: app.acquire_token_silent(["User.Read"], account))
    assert errors == [None] * 16
    assert idp.count("token") == before + 1, "one refresh for sixteen callers"
    assert len({r["access_token"] for r in results}) == 1
    hits = app.stats()["hits"]
    assert app.acquire_token_silent(["User.Read"], account)["token_source"] == "cache"
    assert app.stats()["hits"] == hits + 1, "a good token is a hit: no flight"
    assert app.acquire_token_silent(["User.Read"], None) is None  # msal's answer, passed through
    assert app.get_accounts() == pca.get_accounts()  # everything else passes through


# ------------------------------------------------------------------ processes


class SlowHttp(LoopbackHttpClient):
    """Token requests take a while, so the other processes arrive while one is under way."""

    def post(self, url, *args, **kwargs):
        if url.endswith("/oauth2/v2.0/token"):
            time.sleep(0.5)
        return super().post(url, *args, **kwargs)


class _Port(object):
    def __init__(self, port):
        self.port = port


def _process(port, cache_path, lease, barrier, out, tenant):
    kind, where, prefix = lease
    store = tokencache.LeaseStore.redis(where, key_prefix=prefix) if kind == "redis" else tokencache.LeaseStore.sqlite(where)
    app = tokencache.coalesced(
        app_for(tokencache.PersistedTokenCache(cache_path, lock_timeout=30), SlowHttp(_Port(port)), tenant),
        lease_store=store,
    )
    barrier.wait(LONG)
    results, errors = run_threads(8, lambda: app.acquire_token_for_client(GRAPH))
    out.put(json.dumps({
        "tokens": [r["access_token"] for r in results if r and "access_token" in r],
        "errors": [repr(e) for e in errors if e is not None] + [r.get("error") for r in results if r and "error" in r],
        "stats": app.stats(),
    }))


def four_processes(idp, tmp_path, lease, tenant):
    idp.reset()
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(4), ctx.Queue()
    cache_path = str(tmp_path / "shared_cache.json")
    procs = [ctx.Process(target=_process, args=(idp.port, cache_path, lease, barrier, out, tenant)) for _ in range(4)]
    for p in procs:
        p.start()
    reports = [json.loads(out.get(timeout=LONG)) for _ in procs]
    for p in procs:
        p.join(LONG)
        assert p.exitcode == 0
    assert [r["errors"] for r in reports] == [[]] * 4
    tokens = {t for r in reports for t in r["tokens"]}
    assert len(tokens) == 1 and sum(len(r["tokens"]) for r in reports) == 32
    assert idp.count("token") == 1, "one request for four processes of eight threads"
    assert sum(r["stats"]["fetches"] for r in reports) == 1
    return reports


@pytest.mark.timeout(120)
def test_four_processes_on_one_redis_make_one_request(idp, tmp_path):
    url = os.environ.get("TOKENCACHE_REDIS_URL")
    if not url:
        pytest.skip("NO REDIS: TOKENCACHE_REDIS_URL is unset; run under scripts/redis-server.sh run (make test-python)")
    prefix = "tctest:coalesce:%s:" % uuid.uuid4().hex
    four_processes(idp, tmp_path, ("redis", url, prefix), TENANTS[0])
    # Every lease was released.
    store = tokencache.LeaseStore.redis(url, key_prefix=prefix)
    stub = types.SimpleNamespace(
        client_id="daemon-app", authority=types.SimpleNamespace(instance="login.tokencache.test", tenant=TENANTS[0])
    )
    key = client_key(stub, GRAPH)
    assert store.try_acquire(key, "checker", 5.0) and store.release(key, "checker")


@pytest.mark.timeout(120)
def test_four_processes_on_one_sqlite_file_make_one_request(idp, tmp_path):
    four_processes(idp, tmp_path, ("sqlite", str(tmp_path / "leases.db"), None), TENANTS[1])


def test_lease_store_contract(tmp_path):
    over_a_store = tokencache.LeaseStore.of(
        tokencache.TieredStore(tokencache.SqliteStore(str(tmp_path / "s.db")), l1_max_bytes=1 << 20)
    )
    for store in (
        tokencache.LeaseStore.memory(),
        tokencache.LeaseStore.sqlite(str(tmp_path / "l.db")),
        over_a_store,
    ):
        assert store.try_acquire("k", "a", 30.0)
        assert not store.try_acquire("k", "b", 30.0)
        assert not store.release("k", "b")
        assert store.release("k", "a")
        assert store.try_acquire("k", "b", 30.0)
        with pytest.raises(tokencache.InvalidArgumentError):
            store.try_acquire("", "b", 30.0)
        assert "LeaseStore" in repr(store)


def test_leases_in_a_store_the_app_already_uses(tmp_path):
    sqlite = tokencache.SqliteStore(str(tmp_path / "cache.db"))
    a = tokencache.LeaseStore.of(sqlite)
    b = tokencache.LeaseStore.sqlite(str(tmp_path / "cache.db"))  # another process's view
    assert a.try_acquire("k", "one", 30.0)
    assert not b.try_acquire("k", "two", 30.0), "the same table: the lease is held"
    assert a.release("k", "one")
    with pytest.raises(ValueError, match="SqliteStore or RedisStore"):
        tokencache.LeaseStore.of(tokencache.MemoryStore())
    app = tokencache.coalesced(object(), lease_store=sqlite)
    assert app.coalescer.uses_lease

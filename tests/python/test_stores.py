"""The stores from Python: RedisStore (standalone, cluster, TLS), TieredStore (L1 over
Redis, failure policies, a Redis outage in the middle of a load), EncryptedStore (key
rotation, foreign keys), stats() and bad arguments.

Redis tests need a real redis-server: `make test-python` runs pytest under
`scripts/redis-server.sh run`, which sets TOKENCACHE_REDIS_URL and friends. Without
it they are skipped, and conftest.py says so loudly at the end of the run."""
import os
import pickle
import subprocess
import threading
import time
import uuid

import pytest

import tokencache
from fake_idp import FakeIdP, LoopbackHttpClient
from test_api import CLIENT, app_event
from test_dropin import GRAPH, TENANTS, cca

REDIS_URL = os.environ.get("TOKENCACHE_REDIS_URL")
needs_redis = pytest.mark.skipif(
    not REDIS_URL, reason="NO REDIS: TOKENCACHE_REDIS_URL is unset (run through `make test-python`)"
)


@pytest.fixture(scope="module")
def idp():
    server = FakeIdP()
    yield server
    server.close()


def prefix():
    """A key prefix of its own per test: tests share one server."""
    return "tctest:%s:" % uuid.uuid4().hex[:12]


def redis(**kwargs):
    kwargs.setdefault("key_prefix", prefix())
    return tokencache.RedisStore(REDIS_URL, **kwargs)


def add_app_token(cache, tenant):
    """An app token valid for an hour from now (the stores expire what the clock says expired)."""
    cache.add(app_event(tenant))


def tenants_of(cache):
    return sorted(at["realm"] for at in cache.search(cache.CredentialType.ACCESS_TOKEN))


def redis_ctl(*args):
    subprocess.run([os.environ["TOKENCACHE_REDIS_CTL"], *args, os.environ["TOKENCACHE_REDIS_DIR"]], check=True,
                   stdout=subprocess.DEVNULL)


# --- RedisStore ---------------------------------------------------------------


@needs_redis
def test_redis_partitions_outlive_the_store_object():
    p = prefix()
    provider = tokencache.CacheProvider(redis(key_prefix=p))
    for t in ("a", "b"):
        with provider.cache_for("tenant-" + t) as cache:
            add_app_token(cache, t)
    again = tokencache.CacheProvider(redis(key_prefix=p))
    with again.cache_for("tenant-a") as cache:
        assert tenants_of(cache) == ["a"]
    with again.cache_for("tenant-b") as cache:
        assert tenants_of(cache) == ["b"]
    with again.cache_for("tenant-c") as cache:
        assert len(cache) == 0
    assert again.stats()["hits"] == 2 and again.stats()["misses"] == 1
    store = again.store
    assert isinstance(store, tokencache.RedisStore)
    assert store.key_for("tenant-a") == p + "{tenant-a}"
    assert store.stats() == {"type": "RedisStore", "cluster": False}
    store.ping()


@needs_redis
def test_redis_key_ttl_follows_the_tokens_expiry():
    # The suggested expiry is the partition's, so the block's key is the partition key
    # of app tokens, as Microsoft.Identity.Web names it.
    store = redis()
    partition = "%s_a_AppTokenCache" % CLIENT
    with tokencache.CacheProvider(store).cache_for(partition) as cache:
        add_app_token(cache, "a")
    key = store.key_for(partition)
    url = REDIS_URL.rsplit(":", 1)
    ttl = int(subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", url[1], "ttl", key], check=True,
                             capture_output=True, text=True).stdout)
    assert 0 < ttl <= 3600


@needs_redis
def test_redis_cluster_and_tls():
    urls = os.environ["TOKENCACHE_REDIS_CLUSTER_URLS"].split(",")
    cluster = tokencache.RedisStore.cluster(urls, key_prefix=prefix())
    assert cluster.stats()["cluster"] is True
    provider = tokencache.CacheProvider(cluster)
    keys = ["user-%d.tenant" % i for i in range(20)]  # spread over the three masters' slots
    for k in keys:
        with provider.cache_for(k) as cache:
            add_app_token(cache, k)
    for k in keys:
        with provider.cache_for(k) as cache:
            assert tenants_of(cache) == [k]

    tls = tokencache.RedisStore(os.environ["TOKENCACHE_REDIS_TLS_URL"], key_prefix=prefix(),
                                tls_ca_file=os.environ["TOKENCACHE_REDIS_TLS_CA"])
    tls.ping()
    with tokencache.CacheProvider(tls).cache_for("k") as cache:
        add_app_token(cache, "tls")
    with tokencache.CacheProvider(tls).cache_for("k") as cache:
        assert tenants_of(cache) == ["tls"]
    # The system roots do not know the test CA.
    untrusted = tokencache.RedisStore(os.environ["TOKENCACHE_REDIS_TLS_URL"], key_prefix=prefix())
    with pytest.raises(tokencache.StoreUnavailableError):
        untrusted.ping()


def test_unreachable_redis_is_a_typed_error_at_use_not_at_construction():
    store = tokencache.RedisStore("redis://127.0.0.1:1", connect_timeout=0.2)
    with pytest.raises(tokencache.StoreUnavailableError) as e:
        store.ping()
    assert isinstance(e.value, ConnectionError)
    with pytest.raises(tokencache.StoreUnavailableError):
        with tokencache.CacheProvider(store).cache_for("k"):
            pass
    # A password in the URL never reaches a message or a repr.
    secret = tokencache.RedisStore("redis://user:hunter2@127.0.0.1:1", connect_timeout=0.2)
    with pytest.raises(tokencache.StoreUnavailableError) as e:
        secret.ping()
    assert "hunter2" not in str(e.value) and "***" in str(e.value)
    assert "hunter2" not in repr(secret) + repr(secret.stats())


# --- TieredStore --------------------------------------------------------------


@needs_redis
def test_msal_confidential_client_served_from_l1_then_from_redis_on_another_server(idp):
    idp.reset()
    http = LoopbackHttpClient(idp)
    p = prefix()
    server_a = tokencache.CacheProvider(tokencache.TieredStore(redis(key_prefix=p)))
    key = "daemon-app/" + TENANTS[0]
    for expected in ("identity_provider", "cache"):
        with server_a.cache_for(key) as cache:
            assert cca(cache, http, TENANTS[0]).acquire_token_for_client(GRAPH)["token_source"] == expected
    a = server_a.stats()
    assert a["writes"] == 1 and a["store"]["l1_hits"] == 1 and a["store"]["l2_hits"] == 0
    assert a["store"]["l2"]["type"] == "RedisStore"

    # A second web server: its own L1, the same Redis.
    server_b = tokencache.CacheProvider(tokencache.TieredStore(redis(key_prefix=p)))
    with server_b.cache_for(key) as cache:
        assert cca(cache, http, TENANTS[0]).acquire_token_for_client(GRAPH)["token_source"] == "cache"
    b = server_b.stats()["store"]
    assert b["l2_hits"] == 1 and b["l1_hits"] == 0 and b["l2_errors"] == 0
    assert b["l2_latency_p50"] is not None and b["l2_latency_p99"] >= b["l2_latency_p50"]
    assert b["circuit"] == "closed" and b["l1_entries"] == 1
    assert idp.count("token") == 1
    text = repr(server_a.stats()) + repr(server_b.stats())
    assert "s3cret" not in text and "access_token" not in text


def test_tiered_options_and_stats_over_a_memory_l2():
    l2 = tokencache.MemoryStore()
    tiered = tokencache.TieredStore(l2, l1_max_bytes=10_000, l1_expiration_ratio=0.5, sliding_expiration=600,
                                    absolute_expiration_relative_to_now=__import__("datetime").timedelta(hours=1),
                                    on_l2_failure="retry_once", circuit_failure_threshold=0)
    provider = tokencache.CacheProvider(tiered)
    for i in range(30):  # about 700 bytes each: the L1 keeps the most recent
        with provider.cache_for("p%d" % i) as cache:
            add_app_token(cache, "t%d" % i)
    s = tiered.stats()
    assert s["circuit"] is None  # threshold 0: no breaker
    assert s["l1_bytes"] <= 10_000 and s["l1_evictions"]["capacity"] > 0
    assert s["l2"]["entries"] == 30
    with provider.cache_for("p0") as cache:  # evicted from L1: from L2
        assert tenants_of(cache) == ["t0"]
    assert tiered.stats()["l2_hits"] == 1
    nol1 = tokencache.TieredStore(l2, disable_l1=True)
    with tokencache.CacheProvider(nol1).cache_for("p1") as cache:
        assert tenants_of(cache) == ["t1"]
    assert nol1.stats()["l1_entries"] == 0 and nol1.stats()["l2_hits"] == 1


@needs_redis
def test_redis_stopped_in_the_middle_of_a_load(tmp_path):
    """Reads of partitions in L1 keep working while Redis is down, writes go on under
    serve_from_l1, every failure is counted, nothing raises; after the restart (an
    empty server: the epoch marker is gone too) the L1 copies are written back and
    writes reach Redis again."""
    p = prefix()
    fast = dict(key_prefix=p, connect_timeout=0.2, read_timeout=0.2, write_timeout=0.2)
    tiered = tokencache.TieredStore(redis(**fast), circuit_failure_threshold=3, circuit_cool_down=0.3)
    provider = tokencache.CacheProvider(tiered)
    hot = ["hot-%d" % i for i in range(8)]
    for k in hot:
        with provider.cache_for(k) as cache:
            add_app_token(cache, k)

    errors, reads, writes = [], [0], [0]
    stop = threading.Event()

    def load(n):
        i = 0
        while not stop.is_set():
            i += 1
            try:
                k = hot[i % len(hot)]
                with provider.cache_for(k) as cache:
                    found = tenants_of(cache)
                assert found == [k], "a hot partition lost its token"
                reads[0] += 1
                # Each thread writes its own partitions: four threads saving the same
                # partition in lockstep is the conflict tests' business (a save that
                # loses 16 merges in a row raises LockTimeoutError, by design), not the
                # outage's.
                with provider.cache_for("cold-%d-%d" % (n, i % 50)) as cache:
                    add_app_token(cache, "cold-%d" % i)
                writes[0] += 1
            except BaseException as e:  # noqa: B902 - everything goes to the main thread
                errors.append(e)
                return

    threads = [threading.Thread(target=load, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.3)
        redis_ctl("stop")
        down_at = reads[0] + writes[0]
        time.sleep(1.5)
        assert reads[0] + writes[0] > down_at, "the load stalled while Redis was down"
        during = tiered.stats()
        # The propagate policy, meanwhile, reports the outage to its caller.
        strict = tokencache.TieredStore(redis(**fast), on_l2_failure="propagate")
        with pytest.raises(tokencache.StoreUnavailableError):
            with tokencache.CacheProvider(strict).cache_for("x") as cache:
                add_app_token(cache, "x")
    finally:
        redis_ctl("restart")
    time.sleep(0.5)  # past the cool-down: the breaker probes Redis again
    # The hot partitions are back in Redis once their copies were checked (1 s).
    def in_redis(k):
        with tokencache.CacheProvider(redis(key_prefix=p)).cache_for(k) as cache:
            return tenants_of(cache) == [k]

    deadline = time.monotonic() + 10
    while not all(in_redis(k) for k in hot) and time.monotonic() < deadline and not errors:
        time.sleep(0.1)
    stop.set()
    for t in threads:
        t.join(30)
    assert not errors, errors[0]
    assert during["l2_errors"] > 0 and during["circuit_opened"] >= 1
    assert during["l2_skipped"] > 0

    assert all(in_redis(k) for k in hot), "L1 copies written back to the restarted Redis"
    assert tiered.stats()["l1_copies_restored"] >= len(hot), tiered.stats()
    # After the restart (an empty server), writes reach Redis again.
    with provider.cache_for("after") as cache:
        add_app_token(cache, "after")
    with tokencache.CacheProvider(redis(key_prefix=p)).cache_for("after") as cache:
        assert tenants_of(cache) == ["after"]
    assert tiered.stats()["circuit"] == "closed"


# --- EncryptedStore -----------------------------------------------------------


@pytest.fixture(params=["memory", "redis"])
def plain_store(request):
    if request.param == "memory":
        return tokencache.MemoryStore()
    if not REDIS_URL:
        pytest.skip("NO REDIS: TOKENCACHE_REDIS_URL is unset (run through `make test-python`)")
    return redis()


def test_key_rotation_and_foreign_keys(plain_store):
    k1, k2, foreign = (tokencache.EncryptionKey.generate() for _ in range(3))
    store = tokencache.EncryptedStore(plain_store, [k1])
    with tokencache.CacheProvider(store).cache_for("old") as cache:
        add_app_token(cache, "old")

    # Key 2 becomes primary; key 1 stays to read what it wrote.
    store.set_keys([k2, k1])
    assert store.key_ids == [k2.id, k1.id]
    provider = tokencache.CacheProvider(store)
    with provider.cache_for("old") as cache:
        assert tenants_of(cache) == ["old"]
    with provider.cache_for("new") as cache:
        add_app_token(cache, "new")
    only_k2 = tokencache.CacheProvider(tokencache.EncryptedStore(plain_store, k2))
    with only_k2.cache_for("new") as cache:
        assert tenants_of(cache) == ["new"]
    with pytest.raises(tokencache.KeyMismatchError) as e:
        with only_k2.cache_for("old"):
            pass
    assert k1.id in str(e.value)

    # A server with a foreign key: a typed error, or a counted miss if configured.
    wrong = tokencache.EncryptedStore(plain_store, [foreign])
    with pytest.raises(tokencache.KeyMismatchError):
        with tokencache.CacheProvider(wrong).cache_for("new"):
            pass
    as_miss = tokencache.EncryptedStore(plain_store, [foreign], on_key_mismatch="miss")
    with tokencache.CacheProvider(as_miss).cache_for("new") as cache:
        assert len(cache) == 0
    assert wrong.stats()["key_mismatches"] == 1
    assert as_miss.stats()["key_mismatches"] == 1 and as_miss.stats()["decryption_failures"] == 0
    assert as_miss.stats()["inner"]["type"] == plain_store.stats()["type"]

    # What lands in the inner store is not the cache's JSON.
    if isinstance(plain_store, tokencache.MemoryStore):
        bare = tokencache.CacheProvider(plain_store, on_bad_blob="fail")
        with pytest.raises(tokencache.TokenCacheError):
            with bare.cache_for("new"):
                pass


@needs_redis
def test_encrypted_redis_under_an_l1():
    key = tokencache.EncryptionKey.generate()
    p = prefix()
    store = tokencache.TieredStore(tokencache.EncryptedStore(redis(key_prefix=p), key))
    with tokencache.CacheProvider(store).cache_for("u") as cache:
        add_app_token(cache, "u")
    other = tokencache.TieredStore(tokencache.EncryptedStore(redis(key_prefix=p), key))
    with tokencache.CacheProvider(other).cache_for("u") as cache:
        assert tenants_of(cache) == ["u"]
    s = other.stats()
    assert s["l2_hits"] == 1 and s["l2"]["type"] == "EncryptedStore" and s["l2"]["inner"]["type"] == "RedisStore"
    # Redis holds the envelope, not JSON.
    port = REDIS_URL.rsplit(":", 1)[1]
    raw = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", port, "--no-raw", "hget",
                          redis(key_prefix=p).key_for("u"), "data"], check=True, capture_output=True).stdout
    assert raw.startswith(b'"TCE\\x01') and b"AccessToken" not in raw


def test_encryption_keys_from_bytes_env_and_file(tmp_path, monkeypatch):
    raw = bytes(range(32))
    k = tokencache.EncryptionKey.from_bytes(raw)
    monkeypatch.setenv("TC_TEST_KEY", raw.hex())
    assert tokencache.EncryptionKey.from_env("TC_TEST_KEY") == k
    (tmp_path / "key.bin").write_bytes(raw)
    assert tokencache.EncryptionKey.from_file(tmp_path / "key.bin") == k
    assert tokencache.EncryptionKey.parse(raw.hex()) == k
    text = tokencache.EncryptionKey.generate_text()
    assert tokencache.EncryptionKey.parse(text) != k
    assert len(k.id) == 16 and k.id in repr(k)
    assert raw.hex() not in repr(k) and "000102" not in repr(k)
    with pytest.raises(TypeError):
        pickle.dumps(k)
    monkeypatch.setenv("TC_TEST_KEY", raw.hex() + "," + text)
    with pytest.raises(tokencache.InvalidArgumentError, match="holds 2 keys"):
        tokencache.EncryptionKey.from_env("TC_TEST_KEY")
    with pytest.raises(tokencache.InvalidArgumentError):
        tokencache.EncryptionKey.from_env("TC_TEST_KEY_UNSET")
    with pytest.raises(tokencache.InvalidArgumentError):
        tokencache.EncryptionKey.from_bytes(b"short")
    with pytest.raises(tokencache.IoError):
        tokencache.EncryptionKey.from_file(tmp_path / "missing")


# --- arguments ----------------------------------------------------------------


def test_bad_store_arguments_are_typed_errors():
    mem = tokencache.MemoryStore()
    key = tokencache.EncryptionKey.generate()
    for bad in (
        lambda: tokencache.TieredStore(mem, on_l2_failure="ignore"),
        lambda: tokencache.TieredStore(mem, l1_expiration_ratio=0),
        lambda: tokencache.TieredStore(mem, circuit_cool_down=-1),
        lambda: tokencache.TieredStore(mem, sliding_expiration=float("nan")),
        lambda: tokencache.EncryptedStore(mem, []),
        lambda: tokencache.EncryptedStore(mem, key, on_key_mismatch="ignore"),
        lambda: tokencache.RedisStore("not a url"),
        lambda: tokencache.RedisStore("redis://127.0.0.1:1", key_prefix="{bad}"),
        lambda: tokencache.RedisStore("redis://127.0.0.1:1", max_connections=0),
        lambda: tokencache.RedisStore("redis://127.0.0.1:1", read_timeout=-1.0),
        lambda: tokencache.RedisStore.cluster([]),
        lambda: tokencache.CacheProvider(mem, on_bad_blob="ignore"),
        lambda: tokencache.CacheProvider(mem, sliding_expiration=0),
    ):
        with pytest.raises(tokencache.InvalidArgumentError):
            bad()
    for bad in (
        lambda: tokencache.TieredStore(tokencache.TieredStore(mem)),
        lambda: tokencache.TieredStore(object()),
        lambda: tokencache.EncryptedStore(mem, "a key as text"),
        lambda: tokencache.EncryptedStore(mem, [key, "x"]),
        lambda: tokencache.TieredStore(mem, sliding_expiration="soon"),
    ):
        with pytest.raises(TypeError):
            bad()
    # An encrypted tiered store is allowed (encrypting L1 too); it is not an L2.
    enc_tiered = tokencache.EncryptedStore(tokencache.TieredStore(mem), key)
    with tokencache.CacheProvider(enc_tiered).cache_for("k") as cache:
        add_app_token(cache, "k")
    assert enc_tiered.stats()["inner"]["l1_entries"] == 1
    with pytest.raises(TypeError):
        tokencache.TieredStore(enc_tiered)


@needs_redis
@pytest.mark.parametrize("layers", ["redis", "tiered", "encrypted-tiered"])
def test_overlapping_blocks_on_two_servers_merge_through_redis(layers):
    p, key = prefix(), tokencache.EncryptionKey.generate()

    def server():
        store = redis(key_prefix=p)
        if layers == "encrypted-tiered":
            store = tokencache.EncryptedStore(store, key)
        if layers != "redis":
            store = tokencache.TieredStore(store, l2_version_check_interval=0)
        return tokencache.CacheProvider(store)

    a, b = server(), server()
    with a.cache_for("k") as slow:
        with b.cache_for("k") as fast:
            add_app_token(fast, "fast")
        add_app_token(slow, "slow")
    with server().cache_for("k") as cache:
        assert tenants_of(cache) == ["fast", "slow"]
    assert a.stats()["merges"] >= 1


@needs_redis
def test_a_blob_copied_to_another_users_key_fails_authentication():
    """The partition key is authenticated with each blob: someone with write access to
    Redis cannot replay Alice's tokens under Mallory's partition key."""
    plain = redis()
    store = tokencache.EncryptedStore(plain, tokencache.EncryptionKey.generate())
    with tokencache.CacheProvider(store).cache_for("alice") as cache:
        add_app_token(cache, "alice")
    port = REDIS_URL.rsplit(":", 1)[1]
    subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", port, "copy", plain.key_for("alice"),
                    plain.key_for("mallory")], check=True, capture_output=True)
    with pytest.raises(tokencache.DecryptionFailedError):
        with tokencache.CacheProvider(store).cache_for("mallory"):
            pass
    assert store.stats()["decryption_failures"] == 1 and store.stats()["key_mismatches"] == 0
    with tokencache.CacheProvider(store).cache_for("alice") as cache:
        assert tenants_of(cache) == ["alice"]

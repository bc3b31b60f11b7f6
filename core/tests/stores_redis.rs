//! RedisStore against a real redis-server (and a real 3-node Redis Cluster) started
//! by `make test-stores` (`scripts/redis-server.sh run`). Without
//! TOKENCACHE_REDIS_URL each test says it is skipped and passes.
#![cfg(feature = "redis")]

mod stores_support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use redis::Commands;
use stores_support::{ManualClock, poll_until, raw_redis, redis_cluster_urls, redis_url, unique_prefix};
use tokencache::ErrorKind;
use tokencache::store::{Expiry, L2Store, RedisOptions, RedisStore, Store, TieredOptions, TieredStore, redis_key};

fn store(url: &str, tag: &str, clock: Option<&ManualClock>) -> RedisStore {
    let mut o = RedisOptions { key_prefix: unique_prefix(tag), ..Default::default() };
    if let Some(c) = clock {
        o.clock = c.clock();
    }
    RedisStore::open(url, o).unwrap()
}

#[test]
fn set_get_replace_remove() {
    let Some(url) = redis_url("set_get_replace_remove") else { return };
    let s = store(&url, "basic", None);
    s.ping().unwrap();
    assert_eq!(s.get("alice").unwrap(), None);
    s.set("alice", Bytes::from_static(b"one"), Expiry::NEVER).unwrap();
    s.set("alice", Bytes::from(vec![0u8, 159, 146, 150, 255]), Expiry::NEVER).unwrap();
    s.set("bob", Bytes::new(), Expiry::NEVER).unwrap();
    assert_eq!(s.get("alice").unwrap().as_deref(), Some(&[0u8, 159, 146, 150, 255][..]), "binary safe");
    assert_eq!(s.get("bob").unwrap().as_deref(), Some(&b""[..]), "empty blob is not absent");
    s.remove("alice").unwrap();
    s.remove("nobody").unwrap();
    assert_eq!(s.get("alice").unwrap(), None);
    assert_eq!(s.purge_expired().unwrap(), 0, "Redis expires keys itself");
}

#[test]
fn keys_carry_the_prefix_and_the_partition_as_hash_tag() {
    let Some(url) = redis_url("keys_carry_the_prefix_and_the_partition_as_hash_tag") else { return };
    let s = store(&url, "keys", None);
    s.set("uid.utid", Bytes::from_static(b"v"), Expiry::NEVER).unwrap();
    let key = s.key_for("uid.utid");
    assert!(key.ends_with(":{uid.utid}"), "{key}");
    let mut raw = raw_redis(&url);
    let exists: bool = raw.exists(&key).unwrap();
    assert!(exists);
    let slot: i64 = redis::cmd("CLUSTER").arg("KEYSLOT").arg(&key).query(&mut raw).unwrap_or(-1);
    if slot >= 0 {
        // Servers without cluster support reject CLUSTER KEYSLOT; ours answer it.
        let tag_slot: i64 = redis::cmd("CLUSTER").arg("KEYSLOT").arg("uid.utid").query(&mut raw).unwrap();
        assert_eq!(slot, tag_slot, "the key hashes by its partition only");
    }
    let bad = RedisStore::open(&url, RedisOptions { key_prefix: "a{b}:".into(), ..Default::default() }).unwrap_err();
    assert_eq!(bad.kind(), ErrorKind::InvalidArgument);
}

#[test]
fn ttl_follows_the_expiry_and_a_past_expiry_deletes() {
    let Some(url) = redis_url("ttl_follows_the_expiry_and_a_past_expiry_deletes") else { return };
    let clock = ManualClock::at(tokencache::unix_now());
    let s = store(&url, "ttl", Some(&clock));
    let mut raw = raw_redis(&url);
    s.set("a", Bytes::from_static(b"v"), Expiry::at(clock.now() + 600)).unwrap();
    let ttl: i64 = raw.ttl(s.key_for("a")).unwrap();
    assert!((590..=600).contains(&ttl), "ttl {ttl}");
    s.set("a", Bytes::from_static(b"v"), Expiry::NEVER).unwrap();
    let ttl: i64 = raw.ttl(s.key_for("a")).unwrap();
    assert_eq!(ttl, -1, "no expiry: no TTL, even over a key that had one");
    s.set("a", Bytes::from_static(b"v"), Expiry::at(clock.now())).unwrap();
    let exists: bool = raw.exists(s.key_for("a")).unwrap();
    assert!(!exists, "an expiry already reached deletes the key");
    s.set("b", Bytes::from_static(b"v"), Expiry::at(clock.now() - 3600)).unwrap();
    let exists: bool = raw.exists(s.key_for("b")).unwrap();
    assert!(!exists, "never a TTL in the past");
}

#[test]
fn sliding_expiry_is_extended_by_reads_up_to_the_absolute() {
    let Some(url) = redis_url("sliding_expiry_is_extended_by_reads_up_to_the_absolute") else { return };
    let clock = ManualClock::at(1_000_000);
    let s = store(&url, "sliding", Some(&clock));
    let mut raw = raw_redis(&url);
    let key = s.key_for("k");
    s.set("k", Bytes::from_static(b"v"), Expiry { absolute: Some(1_000_150), sliding_secs: Some(100) }).unwrap();
    let ttl: i64 = raw.ttl(&key).unwrap();
    assert!((95..=100).contains(&ttl), "ttl {ttl}");
    clock.advance(60);
    assert!(s.get("k").unwrap().is_some());
    let ttl: i64 = raw.ttl(&key).unwrap();
    assert!((85..=90).contains(&ttl), "refreshed to min(100, 150 - 60): {ttl}");
    clock.advance(90); // at the absolute deadline by the client's clock
    assert_eq!(s.get("k").unwrap(), None);
    let exists: bool = raw.exists(&key).unwrap();
    assert!(!exists);
    s.set("plain", Bytes::from_static(b"v"), Expiry::at(clock.now() + 500)).unwrap();
    clock.advance(100);
    assert!(s.get("plain").unwrap().is_some());
    let ttl: i64 = raw.ttl(s.key_for("plain")).unwrap();
    assert!(ttl > 400, "an absolute-only entry is not extended by reads: {ttl}");
}

#[test]
fn keys_disappear_when_their_ttl_runs_out() {
    let Some(url) = redis_url("keys_disappear_when_their_ttl_runs_out") else { return };
    let s = store(&url, "expire", None);
    let mut raw = raw_redis(&url);
    let now = tokencache::unix_now();
    s.set("soon", Bytes::from_static(b"v"), Expiry::at(now + 1)).unwrap();
    s.set("later", Bytes::from_static(b"v"), Expiry::at(now + 3600)).unwrap();
    let key = s.key_for("soon");
    assert!(
        poll_until(Duration::from_secs(4), || !raw.exists::<_, bool>(&key).unwrap()),
        "Redis dropped the key at its TTL"
    );
    assert_eq!(s.get("soon").unwrap(), None);
    assert!(s.get("later").unwrap().is_some());
}

#[test]
fn concurrent_use_through_a_small_pool() {
    let Some(url) = redis_url("concurrent_use_through_a_small_pool") else { return };
    let s = Arc::new(
        RedisStore::open(
            &url,
            RedisOptions { key_prefix: unique_prefix("pool"), max_connections: 3, ..Default::default() },
        )
        .unwrap(),
    );
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let s = s.clone();
            std::thread::spawn(move || {
                for i in 0..150 {
                    let k = format!("t{t}-{}", i % 20);
                    s.set(&k, Bytes::from(format!("{t}:{i}")), Expiry::NEVER).unwrap();
                    assert_eq!(s.get(&k).unwrap().as_deref(), Some(format!("{t}:{i}").as_bytes()));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn an_unreachable_server_is_store_unavailable_without_the_password() {
    // Port 1 on loopback: nothing listens there; refused at once. Needs no server.
    let url = "redis://:s3cret-pw@127.0.0.1:1/0";
    let s = RedisStore::open(url, RedisOptions { connect_timeout: Duration::from_millis(200), ..Default::default() })
        .unwrap();
    let e = s.get("k").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::StoreUnavailable, "{e:?}");
    let shown = format!("{e} {e:?} {s:?}");
    assert!(!shown.contains("s3cret"), "{shown}");
    assert!(shown.contains("127.0.0.1:1"), "{shown}");
    assert_eq!(s.set("k", Bytes::from_static(b"v"), Expiry::NEVER).unwrap_err().kind(), ErrorKind::StoreUnavailable);
    assert_eq!(s.ping().unwrap_err().kind(), ErrorKind::StoreUnavailable);
}

#[cfg(feature = "redis-tls")]
#[test]
fn tls_by_url_scheme_with_a_private_ca() {
    let Some(url) = stores_support::redis_tls_url("tls_by_url_scheme_with_a_private_ca") else { return };
    let ca = std::fs::read(std::env::var("TOKENCACHE_REDIS_TLS_CA").unwrap()).unwrap();
    let s = RedisStore::open(
        &url,
        RedisOptions { key_prefix: unique_prefix("tls"), tls_root_certificates_pem: Some(ca), ..Default::default() },
    )
    .unwrap();
    s.set("alice", Bytes::from_static(b"over tls"), Expiry::NEVER).unwrap();
    assert_eq!(s.get("alice").unwrap().as_deref(), Some(&b"over tls"[..]));
    assert!(format!("{s:?}").contains("rediss://"));
    // The system's roots do not know the test CA: the certificate is checked.
    let untrusted =
        RedisStore::open(&url, RedisOptions { connect_timeout: Duration::from_millis(500), ..Default::default() })
            .unwrap();
    let e = untrusted.get("alice").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::StoreUnavailable);
    assert!(e.message().contains("certificate"), "{e}");
}

#[test]
fn cluster_partitions_spread_over_nodes_and_read_back() {
    let Some(urls) = redis_cluster_urls("cluster_partitions_spread_over_nodes_and_read_back") else { return };
    let prefix = unique_prefix("cluster");
    let s = RedisStore::open_cluster(
        urls.iter().map(String::as_str),
        RedisOptions { key_prefix: prefix.clone(), ..Default::default() },
    )
    .unwrap();
    assert!(s.is_cluster());
    let now = tokencache::unix_now();
    for i in 0..200 {
        s.set(&format!("user{i}.tenant"), Bytes::from(format!("blob{i}")), Expiry::at(now + 600)).unwrap();
    }
    for i in 0..200 {
        assert_eq!(s.get(&format!("user{i}.tenant")).unwrap().as_deref(), Some(format!("blob{i}").as_bytes()));
    }
    s.remove("user0.tenant").unwrap();
    assert_eq!(s.get("user0.tenant").unwrap(), None);
    // Every node holds some of the partitions, each in its partition's slot.
    let mut holders = 0;
    for url in &urls {
        let mut raw = raw_redis(url);
        let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{prefix}*")).query(&mut raw).unwrap();
        for k in &keys {
            let partition = &k[prefix.len() + 1..k.len() - 1];
            assert_eq!(k, &redis_key(&prefix, partition));
            let slot: i64 = redis::cmd("CLUSTER").arg("KEYSLOT").arg(k).query(&mut raw).unwrap();
            let tag_slot: i64 = redis::cmd("CLUSTER").arg("KEYSLOT").arg(partition).query(&mut raw).unwrap();
            assert_eq!(slot, tag_slot);
        }
        holders += usize::from(!keys.is_empty());
    }
    assert_eq!(holders, urls.len(), "200 partitions land on all {} masters", urls.len());
}

#[test]
fn reads_report_the_ttl_so_an_l1_copy_never_outlives_the_key() {
    let Some(url) = redis_url("reads_report_the_ttl_so_an_l1_copy_never_outlives_the_key") else { return };
    let clock = ManualClock::at(tokencache::unix_now());
    let prefix = unique_prefix("deadline");
    let open = || {
        let o = RedisOptions { key_prefix: prefix.clone(), clock: clock.clock(), ..Default::default() };
        RedisStore::open(&url, o).unwrap()
    };
    let writer = open();
    writer.set("k", Bytes::from_static(b"v"), Expiry::at(clock.now() + 100)).unwrap();
    writer.set("forever", Bytes::from_static(b"v"), Expiry::NEVER).unwrap();
    let (_, deadline) = writer.get_with_deadline("k").unwrap().unwrap();
    let d = deadline.unwrap();
    assert!((clock.now() + 98..=clock.now() + 100).contains(&d), "{d}");
    assert_eq!(writer.get_with_deadline("forever").unwrap().unwrap().1, None);

    // Another machine's tiered store reads it: its L1 copy ends with the key.
    let reader = TieredStore::new(open(), TieredOptions { clock: clock.clock(), ..Default::default() }).unwrap();
    assert!(reader.get("k").unwrap().is_some());
    clock.set(d - 1);
    assert!(reader.l1().unwrap().get("k").unwrap().is_some());
    clock.set(d);
    assert_eq!(reader.l1().unwrap().get("k").unwrap(), None, "not the 300 s back-fill default: Redis' TTL");
}

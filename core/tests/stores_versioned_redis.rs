//! Conflict-safe writes on a real Redis (and Redis Cluster): a version per hash,
//! conditional writes by Lua script, and two providers updating one partition.
//! Run by `make test-stores`; without TOKENCACHE_REDIS_URL each test is skipped.
#![cfg(feature = "redis")]

mod stores_support;
mod stores_versioned_support;

use std::collections::HashMap;

use bytes::Bytes;
use redis::Commands;
use stores_support::{raw_redis, redis_cluster_urls, redis_url, unique_prefix};
use stores_versioned_support::{PARTITION, check, concurrent, interleaved, tokens};
use tokencache::CacheProvider;
use tokencache::store::{
    CasOutcome, Exclusive, Expiry, ListStore, RedisOptions, RedisStore, Store, Update, Version, VersionedStore,
    redis_key,
};

fn options(prefix: &str) -> RedisOptions {
    RedisOptions { key_prefix: prefix.to_owned(), ..Default::default() }
}

fn written(o: CasOutcome) -> Version {
    match o {
        CasOutcome::Written(v) => v,
        CasOutcome::Conflict => panic!("unexpected conflict"),
    }
}

#[test]
fn conditional_writes_keep_the_hash_layout() {
    let Some(url) = redis_url("conditional_writes_keep_the_hash_layout") else { return };
    let prefix = unique_prefix("cas");
    let (a, b) = (RedisStore::open(&url, options(&prefix)).unwrap(), RedisStore::open(&url, options(&prefix)).unwrap());
    assert!(a.as_versioned().is_some());
    let now = tokencache::unix_now();
    let v1 = written(a.compare_and_set("u.t", None, Bytes::from_static(b"1"), Expiry::at(now + 600)).unwrap());
    assert_eq!(b.compare_and_set("u.t", None, Bytes::from_static(b"x"), Expiry::NEVER).unwrap(), CasOutcome::Conflict);
    let got = b.get_versioned("u.t").unwrap().unwrap();
    assert_eq!((got.value.as_ref(), got.version), (&b"1"[..], v1));
    assert!(got.deadline.is_some_and(|d| d > now + 590 && d <= now + 600));
    let v2 = written(b.compare_and_set("u.t", Some(v1), Bytes::from_static(b"2"), Expiry::at(now + 600)).unwrap());
    assert_eq!(
        a.compare_and_set("u.t", Some(v1), Bytes::from_static(b"x"), Expiry::NEVER).unwrap(),
        CasOutcome::Conflict
    );
    assert!(!a.compare_and_remove("u.t", v1).unwrap());
    // Plain readers see the blob as before: get, peek (the CLI's), and the raw hash.
    assert_eq!(a.get("u.t").unwrap().as_deref(), Some(&b"2"[..]));
    assert_eq!(a.peek("u.t").unwrap().unwrap().value.as_ref(), b"2");
    let mut raw = raw_redis(&url);
    let fields: HashMap<String, Vec<u8>> = raw.hgetall(redis_key(&prefix, "u.t")).unwrap();
    assert_eq!(fields.get("data").map(Vec::as_slice), Some(&b"2"[..]));
    assert_eq!(fields.get("ver").map(|v| String::from_utf8_lossy(v).into_owned()), Some(v2.0.to_string()));
    let ttl: i64 = raw.ttl(redis_key(&prefix, "u.t")).unwrap();
    assert!(ttl > 590, "the conditional write set the TTL: {ttl}");
    // A plain set is a new version too; a conditional remove needs the current one.
    b.set("u.t", Bytes::from_static(b"3"), Expiry::NEVER).unwrap();
    let v3 = a.version("u.t").unwrap().unwrap();
    assert!(v3 != v2 && v3 != v1);
    assert!(a.compare_and_remove("u.t", v3).unwrap());
    assert_eq!(a.version("u.t").unwrap(), None);
    assert_eq!(a.get("u.t").unwrap(), None);
}

/// A hash written before versions (no `ver` field) is version 0.
#[test]
fn a_hash_without_a_version_is_legacy() {
    let Some(url) = redis_url("a_hash_without_a_version_is_legacy") else { return };
    let prefix = unique_prefix("cas-legacy");
    let s = RedisStore::open(&url, options(&prefix)).unwrap();
    let mut raw = raw_redis(&url);
    let _: i64 = raw.hset(redis_key(&prefix, "old"), "data", "v0").unwrap();
    assert_eq!(s.version("old").unwrap(), Some(Version::LEGACY));
    assert_eq!(s.get_versioned("old").unwrap().unwrap().version, Version::LEGACY);
    written(s.compare_and_set("old", Some(Version::LEGACY), Bytes::from_static(b"v1"), Expiry::NEVER).unwrap());
    assert_ne!(s.version("old").unwrap(), Some(Version::LEGACY));
    let _: i64 = raw.del(redis_key(&prefix, "old")).unwrap();
}

#[test]
fn two_providers_a_thousand_interleaved_updates() {
    let Some(url) = redis_url("two_providers_a_thousand_interleaved_updates") else { return };
    let prefix = unique_prefix("cas-interleave");
    let a = CacheProvider::new(RedisStore::open(&url, options(&prefix)).unwrap());
    let b = CacheProvider::new(RedisStore::open(&url, options(&prefix)).unwrap());
    let (ma, mb) = interleaved(&a, &b, 1000, 3);
    check(&tokens(&a.load(PARTITION).unwrap()), &[&ma, &mb]);
    assert!(a.stats().conflicts + b.stats().conflicts > 50);
    a.store().remove(PARTITION).unwrap();
}

#[test]
fn two_providers_on_two_threads() {
    let Some(url) = redis_url("two_providers_on_two_threads") else { return };
    let prefix = unique_prefix("cas-threads");
    let a = CacheProvider::new(RedisStore::open(&url, options(&prefix)).unwrap());
    let b = CacheProvider::new(RedisStore::open(&url, options(&prefix)).unwrap());
    let (ma, mb) = concurrent(&a, &b, 300);
    check(&tokens(&a.load(PARTITION).unwrap()), &[&ma, &mb]);
    a.store().remove(PARTITION).unwrap();
}

#[test]
fn cluster_conditional_writes() {
    let Some(urls) = redis_cluster_urls("cluster_conditional_writes") else { return };
    let prefix = unique_prefix("cas-cluster");
    let open = || RedisStore::open_cluster(urls.iter().map(String::as_str), options(&prefix)).unwrap();
    let a = CacheProvider::new(open());
    let b = CacheProvider::new(open());
    let (ma, mb) = interleaved(&a, &b, 200, 5);
    check(&tokens(&a.load(PARTITION).unwrap()), &[&ma, &mb]);
    assert!(a.stats().conflicts + b.stats().conflicts > 0);
}

/// While one writer holds a partition (after losing races), the others'
/// conditional writes conflict; the holder's write ends the hold.
#[test]
fn a_hold_keeps_other_writers_off_until_the_holders_write() {
    let Some(url) = redis_url("a_hold_keeps_other_writers_off_until_the_holders_write") else { return };
    let prefix = unique_prefix("cas-hold");
    let (a, b) = (RedisStore::open(&url, options(&prefix)).unwrap(), RedisStore::open(&url, options(&prefix)).unwrap());
    assert_eq!(a.update_exclusive("k", &mut |_| Ok(Update::Keep)).unwrap(), Exclusive::Unavailable, "absent");
    let v1 = written(a.compare_and_set("k", None, Bytes::from_static(b"1"), Expiry::NEVER).unwrap());
    let mut seen = None;
    let done = a
        .update_exclusive("k", &mut |cur| {
            let cur = cur.unwrap();
            seen = Some(cur.version);
            // Another writer, with the right version, is held off; so is a second holder.
            assert_eq!(
                b.compare_and_set("k", Some(cur.version), Bytes::from_static(b"b"), Expiry::NEVER).unwrap(),
                CasOutcome::Conflict
            );
            assert!(!b.compare_and_remove("k", cur.version).unwrap());
            assert_eq!(b.update_exclusive("k", &mut |_| Ok(Update::Remove)).unwrap(), Exclusive::Unavailable);
            Ok(Update::Write(Bytes::from_static(b"2"), Expiry::NEVER))
        })
        .unwrap();
    assert_eq!(seen, Some(v1));
    let Exclusive::Done(Some(v2)) = done else { panic!("{done:?}") };
    assert_eq!(b.get_versioned("k").unwrap().unwrap().version, v2);
    // The hold ended with the write: others write again.
    written(b.compare_and_set("k", Some(v2), Bytes::from_static(b"3"), Expiry::NEVER).unwrap());
    // A hold that ends without a write (Keep) is released too.
    assert_eq!(a.update_exclusive("k", &mut |_| Ok(Update::Keep)).unwrap(), Exclusive::Done(None));
    let v = b.version("k").unwrap();
    written(b.compare_and_set("k", v, Bytes::from_static(b"4"), Expiry::NEVER).unwrap());
    let fields: HashMap<String, Vec<u8>> = raw_redis(&url).hgetall(redis_key(&prefix, "k")).unwrap();
    assert!(!fields.contains_key("hold"));
    assert_eq!(a.update_exclusive("k", &mut |_| Ok(Update::Remove)).unwrap(), Exclusive::Done(None));
    assert_eq!(a.get("k").unwrap(), None);
}

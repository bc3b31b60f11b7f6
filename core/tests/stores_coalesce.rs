//! Leases for request coalescing in real stores: a real redis-server (started by
//! `make test-stores` / `scripts/redis-server.sh run`; without TOKENCACHE_REDIS_URL
//! the Redis tests say they are skipped) and SQLite database files. Each coalescer
//! has its own store connection, as separate processes would; the value they share
//! lives in the store itself.
#![cfg(all(feature = "redis", feature = "sqlite"))]

mod stores_support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use stores_support::{ScratchDir, poll_until, raw_redis, redis_url, unique_prefix};
use tokencache::ErrorKind;
use tokencache::coalesce::{Coalescer, LeaseOptions};
use tokencache::store::{Expiry, LeaseStore, RedisOptions, RedisStore, SqliteStore, Store};

const LONG: Duration = Duration::from_secs(60);

fn redis(url: &str, prefix: &str) -> RedisStore {
    RedisStore::open(url, RedisOptions { key_prefix: prefix.to_owned(), ..Default::default() }).unwrap()
}

/// The lease contract, whatever the store.
fn lease_contract(a: &dyn LeaseStore, b: &dyn LeaseStore) {
    assert!(a.try_acquire("k", "owner-a", LONG).unwrap());
    assert!(!b.try_acquire("k", "owner-b", LONG).unwrap(), "held by a");
    assert!(b.try_acquire("other", "owner-b", LONG).unwrap(), "leases are per key");
    assert!(a.try_acquire("k", "owner-a", LONG).unwrap(), "the owner re-takes (renews) its own");
    assert!(!b.release("k", "owner-b").unwrap(), "only the owner releases");
    assert!(!b.try_acquire("k", "owner-b", LONG).unwrap(), "still a's");
    assert!(a.release("k", "owner-a").unwrap());
    assert!(!a.release("k", "owner-a").unwrap(), "released once");
    assert!(b.try_acquire("k", "owner-b", LONG).unwrap(), "free again");
    // Expiry: a short lease nobody releases becomes free.
    assert!(a.try_acquire("short", "crashed", Duration::from_millis(50)).unwrap());
    assert!(poll_until(LONG, || b.try_acquire("short", "owner-b", LONG).unwrap()), "an expired lease is taken over");
    assert!(!a.release("short", "crashed").unwrap(), "the crashed owner's late release changes nothing");
    assert!(!a.try_acquire("short", "crashed", LONG).unwrap(), "b holds it");
    assert_eq!(a.try_acquire("", "x", LONG).unwrap_err().kind(), ErrorKind::InvalidArgument);
    assert_eq!(a.try_acquire("k", "x", Duration::ZERO).unwrap_err().kind(), ErrorKind::InvalidArgument);
    b.release("k", "owner-b").unwrap();
    b.release("other", "owner-b").unwrap();
    b.release("short", "owner-b").unwrap();
}

/// Four "processes" (own store, own coalescer) with eight threads each miss one
/// value: the lease holder fetches and writes the value to the store, the others
/// read it from there.
fn four_processes_fetch_once<S: Store + LeaseStore + 'static>(stores: Vec<Arc<S>>) {
    let fetches = Arc::new(AtomicUsize::new(0));
    let opts = LeaseOptions {
        initial_poll: Duration::from_millis(2),
        max_poll: Duration::from_millis(20),
        ..Default::default()
    };
    let procs: Vec<(Arc<S>, Arc<Coalescer<Bytes>>)> = stores
        .into_iter()
        .map(|s| {
            let c = Arc::new(Coalescer::with_lease(s.clone(), opts).unwrap());
            (s, c)
        })
        .collect();
    let coalescers: Vec<_> = procs.iter().map(|(_, c)| c.clone()).collect();
    let barrier = Arc::new(Barrier::new(procs.len() * 8));
    let mut handles = Vec::new();
    for (store, c) in &procs {
        for _ in 0..8 {
            let (store, c, fetches, barrier, all) =
                (store.clone(), c.clone(), fetches.clone(), barrier.clone(), coalescers.clone());
            handles.push(thread::spawn(move || {
                barrier.wait();
                c.get_or_fetch(
                    "token",
                    LONG,
                    || store.get("token"),
                    || {
                        fetches.fetch_add(1, Ordering::SeqCst);
                        // Hold the fetch until every other "process" polls.
                        let start = Instant::now();
                        while all.iter().map(|o| o.stats().lease_waits).sum::<u64>() < all.len() as u64 - 1 {
                            assert!(start.elapsed() < LONG, "the others never polled");
                            thread::sleep(Duration::from_millis(1));
                        }
                        let v = Bytes::from_static(b"fetched once");
                        store.set("token", v.clone(), Expiry::NEVER)?;
                        Ok(v)
                    },
                )
            }));
        }
    }
    for h in handles {
        assert_eq!(h.join().unwrap().unwrap(), Bytes::from_static(b"fetched once"));
    }
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
    // One process fetched; every other one waited on its lease and was served by that
    // fetch. (Not "exactly once each": a thread that looked up before the value was
    // written, and led a second flight after its process's first one ended, waits
    // once more if the holder has written but not yet released. CI caught that on a
    // loaded machine. It is served again, never fetched.)
    let stats: Vec<_> = coalescers.iter().map(|c| c.stats()).collect();
    assert_eq!(stats.iter().map(|s| s.fetches).sum::<u64>(), 1);
    for s in stats.iter().filter(|s| s.fetches == 0) {
        assert!(s.lease_served >= 1, "a process neither fetched nor was served: {s:?}");
    }
}

#[test]
fn redis_leases_keep_the_contract() {
    let Some(url) = redis_url("redis_leases_keep_the_contract") else { return };
    let prefix = unique_prefix("lease");
    let (a, b) = (redis(&url, &prefix), redis(&url, &prefix));
    lease_contract(&a, &b);
}

#[test]
fn redis_lease_is_a_set_nx_px_key_next_to_the_partitions() {
    let Some(url) = redis_url("redis_lease_is_a_set_nx_px_key_next_to_the_partitions") else { return };
    let prefix = unique_prefix("leasekey");
    let s = redis(&url, &prefix);
    assert!(s.try_acquire("app|scope", "me", Duration::from_secs(30)).unwrap());
    let key = s.key_for("lease:app|scope");
    let mut raw = raw_redis(&url);
    let owner: Option<String> = redis::cmd("GET").arg(&key).query(&mut raw).unwrap();
    assert_eq!(owner.as_deref(), Some("me"));
    let pttl: i64 = redis::cmd("PTTL").arg(&key).query(&mut raw).unwrap();
    assert!(pttl > 0 && pttl <= 30_000, "the lease has a TTL: {pttl}");
    assert!(s.release("app|scope", "me").unwrap());
    let exists: i64 = redis::cmd("EXISTS").arg(&key).query(&mut raw).unwrap();
    assert_eq!(exists, 0);
}

#[test]
fn four_processes_on_one_redis_fetch_once() {
    let Some(url) = redis_url("four_processes_on_one_redis_fetch_once") else { return };
    let prefix = unique_prefix("coalesce");
    four_processes_fetch_once((0..4).map(|_| Arc::new(redis(&url, &prefix))).collect());
}

#[test]
fn sqlite_leases_keep_the_contract() {
    let dir = ScratchDir::new("lease-sqlite");
    let path = dir.join("cache.db");
    let (a, b) = (SqliteStore::open(&path).unwrap(), SqliteStore::open(&path).unwrap());
    lease_contract(&a, &b);
    // The leases live in their own table, next to the cache's.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let n: i64 = conn.query_row("SELECT COUNT(*) FROM tokencache_leases", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 0, "every lease was released");
}

#[test]
fn four_processes_on_one_sqlite_file_fetch_once() {
    let dir = ScratchDir::new("coalesce-sqlite");
    let path = dir.join("cache.db");
    four_processes_fetch_once((0..4).map(|_| Arc::new(SqliteStore::open(&path).unwrap())).collect());
}

#[test]
fn an_unreachable_redis_does_not_stop_the_fetch() {
    // Port 1 on loopback: refused at once.
    let s = RedisStore::open(
        "redis://127.0.0.1:1",
        RedisOptions { connect_timeout: Duration::from_millis(200), ..Default::default() },
    )
    .unwrap();
    let e = s.try_acquire("k", "me", LONG).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::StoreUnavailable);
    let c: Coalescer<String> = Coalescer::with_lease(Arc::new(s), LeaseOptions::default()).unwrap();
    assert_eq!(c.get_or_fetch("k", LONG, || Ok(None), || Ok("v".to_owned())).unwrap(), "v");
    assert_eq!(c.stats().lease_errors, 1);
}

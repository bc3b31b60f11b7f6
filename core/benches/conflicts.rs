//! Conflict-safe writes (issue 8 part 3), criterion:
//!
//! - `merge/N`: what one conflict costs a save beyond its write, for a partition
//!   of N access tokens — the diff of this writer (base vs ours), the other
//!   writer's copy parsed, the diff replayed onto it, the merged blob written out.
//! - `save/{first_try,one_conflict}/N`: a provider's whole save on a `MemoryStore`
//!   when its compare-and-set succeeds at once vs after one conflict and merge.
//! - `write/{sqlite,redis}/{plain,cas}`: one 4 KiB blob written with `set` vs with
//!   `compare_and_set` at the current version (SQLite on a temp file; Redis at
//!   `TOKENCACHE_REDIS_URL`, skipped when unset — `scripts/redis-server.sh run`).
//!
//! `cargo bench -p tokencache --bench conflicts` (numbers in BENCHMARKS.md).

use std::cell::Cell;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion};
use tokencache::merge::{Diff, MergeDoc};
use tokencache::store::{CasOutcome, Expiry, MemoryStore, Store, Version, VersionedStore};
use tokencache::{CacheProvider, TokenCache};

const PARTITION: &str = "web_contoso_AppTokenCache";
const SIZES: [usize; 3] = [10, 100, 1000];

fn event(scope: &str, secret: &str) -> String {
    format!(
        r#"{{"client_id": "web", "scope": ["{scope}"], "environment": "login.microsoftonline.com",
        "token_endpoint": "https://login.microsoftonline.com/contoso/oauth2/v2.0/token",
        "grant_type": "client_credentials",
        "response": {{"access_token": "{secret}", "expires_in": 86400, "token_type": "Bearer"}}}}"#
    )
}

/// A partition of `n` access tokens, serialized.
fn partition(n: usize) -> String {
    let c = TokenCache::new();
    for i in 0..n {
        c.add_json(&event(&format!("scope-{i}"), &format!("secret-{i:04}-{}", "x".repeat(1200))), None).unwrap();
    }
    c.serialize()
}

/// (base, ours, theirs): ours adds one token and replaces another, theirs adds one.
fn three_copies(n: usize) -> (String, String, String) {
    let base = partition(n);
    let with = |scope: &str, secret: &str| {
        let c = TokenCache::new();
        c.deserialize(&base).unwrap();
        c.add_json(&event(scope, secret), None).unwrap();
        c
    };
    let ours = with("ours", "secret-ours");
    ours.add_json(&event("scope-0", "secret-renewed"), None).unwrap();
    (base.clone(), ours.serialize(), with("theirs", "secret-theirs").serialize())
}

fn merge(c: &mut Criterion) {
    let mut g = c.benchmark_group("merge");
    for n in SIZES {
        let (base, ours, theirs) = three_copies(n);
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                let diff = Diff::between(&MergeDoc::parse(&base).unwrap(), &MergeDoc::parse(&ours).unwrap());
                let mut t = MergeDoc::parse(&theirs).unwrap();
                let r = diff.apply(&mut t, 0);
                assert_eq!(r.taken, 2);
                black_box(t.into_python_text())
            })
        });
    }
    g.finish();
}

fn save(c: &mut Criterion) {
    let mut g = c.benchmark_group("save");
    for n in SIZES {
        let seeded = Bytes::from(partition(n));
        for (name, conflict) in [("first_try", false), ("one_conflict", true)] {
            g.bench_with_input(BenchmarkId::new(name, n), &n, |bch, _| {
                // Only `save()` is timed: before it, two providers load the partition,
                // each adds a token, and (one_conflict) the other one saves first.
                bch.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let store = Arc::new(MemoryStore::default());
                        store.set(PARTITION, seeded.clone(), Expiry::NEVER).unwrap();
                        let (a, b) = (CacheProvider::new(store.clone()), CacheProvider::new(store));
                        let ca = a.load(PARTITION).unwrap();
                        ca.add_json(&event("ours", "secret-ours"), None).unwrap();
                        if conflict {
                            let cb = b.load(PARTITION).unwrap();
                            cb.add_json(&event("theirs", "secret-theirs"), None).unwrap();
                            cb.save().unwrap();
                        }
                        let start = Instant::now();
                        ca.save().unwrap();
                        total += start.elapsed();
                        assert_eq!(a.stats().conflicts, u64::from(conflict));
                    }
                    total
                })
            });
        }
    }
    g.finish();
}

/// A 4 KiB blob written over and over under one key, plainly and conditionally.
fn writes(c: &mut Criterion, name: &str, store: &dyn VersionedStore) {
    let mut g = c.benchmark_group(format!("write/{name}"));
    let blob = Bytes::from(vec![b'x'; 4096]);
    let key = "bench.partition";
    g.bench_function("plain", |b| b.iter(|| store.set(key, blob.clone(), Expiry::NEVER).unwrap()));
    let current: Cell<Option<Version>> = Cell::new(store.version(key).unwrap());
    g.bench_function("cas", |b| {
        b.iter(|| match store.compare_and_set(key, current.get(), blob.clone(), Expiry::NEVER).unwrap() {
            CasOutcome::Written(v) => current.set(Some(v)),
            CasOutcome::Conflict => panic!("nobody else writes"),
        })
    });
    g.finish();
    store.remove(key).unwrap();
}

fn stores(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("tokencache-bench-conflicts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sqlite = tokencache::store::SqliteStore::open(dir.join("bench.db")).unwrap();
    writes(c, "sqlite", &sqlite);
    drop(sqlite);
    let _ = std::fs::remove_dir_all(&dir);
    match std::env::var("TOKENCACHE_REDIS_URL") {
        Ok(url) if !url.is_empty() => {
            let options = tokencache::store::RedisOptions {
                key_prefix: format!("tcbench:{}:", std::process::id()),
                ..Default::default()
            };
            let redis = tokencache::store::RedisStore::open(&url, options).unwrap();
            writes(c, "redis", &redis);
        }
        _ => eprintln!("write/redis: skipped (TOKENCACHE_REDIS_URL unset; run under scripts/redis-server.sh run)"),
    }
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20)
        .configure_from_args();
    merge(&mut c);
    save(&mut c);
    stores(&mut c);
    c.final_summary();
}

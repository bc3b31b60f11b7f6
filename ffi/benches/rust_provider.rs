//! The provider part of the C ABI benchmark (`make bench-c`): one request's worth of
//! cache work — load a tenant's partition from a store, look its token up, save (unchanged,
//! so no write) — made through core's `CacheProvider` and through the exported
//! `tc_provider_load` / `tc_cache_get_access_token` / `tc_provider_save`, on the same
//! store, taking turns block by block.
//!
//! Stores: a memory store; and, when `TOKENCACHE_REDIS_URL` is set (bench-c runs under
//! scripts/redis-server.sh), a tiered store over Redis (L1 hits) and Redis alone (one
//! GET per request). `TC_BENCH_PROVIDER_TENANTS` tenants (default 1 000), two access
//! tokens of 1 500 characters each per partition. Prints `RESULT <name> <median> <mean>`
//! in ns, as rust_lookup does.

use std::ffi::{CString, c_char};
use std::hint::black_box;
use std::ptr;
use std::sync::Arc;
use std::time::Instant;

use tokencache::*;
use tokencache_core::CacheProvider;
use tokencache_core::store::{MemoryStore, RedisOptions, RedisStore, Store, TieredOptions, TieredStore};

const ENV: &str = "login.microsoftonline.com";
const CLIENT_ID: &str = "bench-daemon";
const RESOURCES: [&str; 2] = ["https://graph.microsoft.com/.default", "https://storage.azure.com/.default"];
const NOW: i64 = 1_700_000_000;
const BATCH: usize = 200;

fn event(tenant: &str, scope: &str, n: usize) -> String {
    let token: String = std::iter::repeat_n(char::from(b'a' + (n % 26) as u8), 1500).collect();
    format!(
        r#"{{"client_id": "{CLIENT_ID}", "scope": ["{scope}"], "token_endpoint": "https://{ENV}/{tenant}/oauth2/v2.0/token", "grant_type": "client_credentials", "response": {{"access_token": "{token}", "expires_in": 3600, "token_type": "Bearer"}}}}"#
    )
}

/// Median of single-request times and median over batches of the mean, both in ns; the
/// calls take turns batch by batch, over the same sequence of tenants.
fn measure(calls: &mut [&mut dyn FnMut(usize)], batches: usize, warm_up: usize) -> Vec<(f64, f64)> {
    for call in calls.iter_mut() {
        for i in 0..warm_up {
            call(i);
        }
    }
    let mut singles: Vec<Vec<u128>> = vec![Vec::new(); calls.len()];
    let mut means: Vec<Vec<f64>> = vec![Vec::new(); calls.len()];
    for b in 0..batches {
        for (k, call) in calls.iter_mut().enumerate() {
            let batch_start = Instant::now();
            for i in b * BATCH..(b + 1) * BATCH {
                let start = Instant::now();
                call(i);
                singles[k].push(start.elapsed().as_nanos());
            }
            means[k].push(batch_start.elapsed().as_nanos() as f64 / BATCH as f64);
        }
    }
    singles
        .into_iter()
        .zip(means)
        .map(|(mut one, mut many)| {
            one.sort_unstable();
            many.sort_by(f64::total_cmp);
            (one[one.len() / 2] as f64, many[many.len() / 2])
        })
        .collect()
}

/// Runs both paths over `store` (already filled) and prints their results.
fn compare(name: &str, store: Arc<dyn Store>, c_store: *const tc_store, tenants: &[String], batches: usize) {
    let provider = CacheProvider::new(store);
    let mut c_provider = ptr::null();
    // SAFETY: a live store and a valid out-pointer.
    assert_eq!(unsafe { tc_provider_new(c_store, ptr::null(), &mut c_provider) }, tc_result::Ok);
    let c_tenants: Vec<CString> = tenants.iter().map(|t| CString::new(t.as_str()).unwrap()).collect();
    let (c_env, c_client) = (CString::new(ENV).unwrap(), CString::new(CLIENT_ID).unwrap());
    let c_scope = CString::new(RESOURCES[0]).unwrap();

    let mut rust = |i: usize| {
        let tenant = &tenants[i % tenants.len()];
        let cache = provider.load(tenant).unwrap();
        let at = cache.get_access_token(None, ENV, CLIENT_ID, tenant, &[RESOURCES[0]], None).unwrap();
        black_box(at.secret());
        cache.save().unwrap();
    };
    let mut buffer = vec![0 as c_char; 4096];
    let mut through_abi = |i: usize| {
        let tenant = &c_tenants[i % c_tenants.len()];
        let mut cache = ptr::null();
        let scopes = [c_scope.as_ptr()];
        let (mut len, mut expires_on) = (0usize, 0i64);
        // SAFETY: every pointer is valid for the calls; the cache is handed to save.
        unsafe {
            assert_eq!(tc_provider_load(c_provider, tenant.as_ptr(), &mut cache), tc_result::Ok);
            let found = tc_cache_get_access_token(
                cache,
                ptr::null(),
                c_env.as_ptr(),
                c_client.as_ptr(),
                tenant.as_ptr(),
                scopes.as_ptr(),
                1,
                ptr::null(),
                buffer.as_mut_ptr(),
                buffer.len(),
                &mut len,
                &mut expires_on,
            );
            assert_eq!(found, tc_result::Ok);
            assert_eq!(tc_provider_save(c_provider, cache), tc_result::Ok);
        }
        black_box(len);
    };
    let results = measure(&mut [&mut rust, &mut through_abi], batches, tenants.len());
    println!("RESULT rust_provider_{name} {:.0} {:.0}", results[0].0, results[0].1);
    println!("RESULT abi_provider_{name} {:.0} {:.0}", results[1].0, results[1].1);
    assert_eq!(provider.stats().writes, 0, "unchanged partitions must not be written");
    // SAFETY: released once.
    unsafe { tc_provider_free(c_provider) };
}

/// Writes every tenant's partition through a provider over `store`.
fn fill(store: Arc<dyn Store>, tenants: &[String]) {
    let provider = CacheProvider::new(store);
    for (n, tenant) in tenants.iter().enumerate() {
        let cache = provider.load(tenant).unwrap();
        for scope in RESOURCES {
            cache.add_json(&event(tenant, scope, n), Some(NOW)).unwrap();
        }
        cache.save().unwrap();
    }
}

/// The exported constructors build their own stores, so each path has its own store
/// over the same data (in memory: filled twice; Redis: one server, two connection pools).
fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let count: usize = std::env::var("TC_BENCH_PROVIDER_TENANTS").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
    let tenants: Vec<String> = (0..count).map(|i| format!("tenant-{i:06}")).collect();

    let mut c_memory = ptr::null();
    // SAFETY: a valid out-pointer.
    assert_eq!(unsafe { tc_store_memory_new(0, &mut c_memory) }, tc_result::Ok);
    let memory: Arc<dyn Store> = Arc::new(MemoryStore::default());
    fill(memory.clone(), &tenants);
    fill_abi(c_memory, &tenants);
    compare("memory", memory, c_memory, &tenants, 100);
    // SAFETY: released once.
    unsafe { tc_store_free(c_memory) };

    let Ok(url) = std::env::var("TOKENCACHE_REDIS_URL") else {
        eprintln!("!!! rust_provider: Redis part SKIPPED (TOKENCACHE_REDIS_URL unset; make bench-c sets it)");
        return;
    };
    let options = RedisOptions { key_prefix: "bench-provider:".into(), ..RedisOptions::default() };
    let redis = Arc::new(RedisStore::open(&url, options).unwrap());
    fill(redis.clone(), &tenants);
    let c_url = CString::new(url).unwrap();
    let c_prefix = CString::new("bench-provider:").unwrap();
    let mut c_options = ptr::null_mut();
    let mut c_redis = ptr::null();
    let mut c_tiered = ptr::null();
    // SAFETY: valid pointers; the handles are freed once below.
    unsafe {
        assert_eq!(tc_redis_options_new(&mut c_options), tc_result::Ok);
        assert_eq!(tc_redis_options_set_key_prefix(c_options, c_prefix.as_ptr()), tc_result::Ok);
        assert_eq!(tc_store_redis_open(c_url.as_ptr(), c_options, &mut c_redis), tc_result::Ok);
        tc_redis_options_free(c_options);
        assert_eq!(tc_store_tiered_new(c_redis, ptr::null(), &mut c_tiered), tc_result::Ok);
    }
    compare("redis", redis.clone(), c_redis, &tenants, 20);
    let tiered: Arc<dyn Store> = Arc::new(TieredStore::new(redis, TieredOptions::default()).unwrap());
    compare("tiered_l1", tiered, c_tiered, &tenants, 100);
    // SAFETY: released once each.
    unsafe {
        tc_store_free(c_tiered);
        tc_store_free(c_redis);
    }
}

/// Fills a `tc_store` through the exported provider functions.
fn fill_abi(store: *const tc_store, tenants: &[String]) {
    let mut provider = ptr::null();
    // SAFETY: valid pointers; each loaded cache is handed to save; the provider is freed.
    unsafe {
        assert_eq!(tc_provider_new(store, ptr::null(), &mut provider), tc_result::Ok);
        for (n, tenant) in tenants.iter().enumerate() {
            let key = CString::new(tenant.as_str()).unwrap();
            let mut cache = ptr::null();
            assert_eq!(tc_provider_load(provider, key.as_ptr(), &mut cache), tc_result::Ok);
            for scope in RESOURCES {
                let e = CString::new(event(tenant, scope, n)).unwrap();
                assert_eq!(tc_cache_add_event(cache, e.as_ptr(), NOW), tc_result::Ok);
            }
            assert_eq!(tc_provider_save(provider, cache), tc_result::Ok);
        }
        tc_provider_free(provider);
    }
}

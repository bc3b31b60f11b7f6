//! Rust-side tests of the store, provider and file-backed cache functions: ownership
//! across load and save (the part Miri checks), save only if changed, misuse refused.
//! SQLite, Redis and encryption are C code or sockets Miri can't run: their tests are
//! in tests/c (and the SQLite one here is skipped under Miri, loudly).

mod common;

use std::ptr;

use common::*;
use tokencache::*;

fn memory_store() -> *const tc_store {
    let mut store = ptr::null();
    // SAFETY: a valid out-pointer.
    assert_eq!(unsafe { tc_store_memory_new(0, &mut store) }, tc_result::Ok);
    store
}

fn provider_over(store: *const tc_store) -> *const tc_provider {
    let mut provider = ptr::null();
    // SAFETY: a live store; NULL options are the defaults.
    assert_eq!(unsafe { tc_provider_new(store, ptr::null(), &mut provider) }, tc_result::Ok);
    provider
}

fn load(provider: *const tc_provider, key: &str) -> Cache {
    let mut cache = ptr::null();
    // SAFETY: a live provider, a NUL-terminated key, a valid out-pointer.
    let r = unsafe { tc_provider_load(provider, c(key).as_ptr(), &mut cache) };
    assert_eq!(r, tc_result::Ok, "{}", last_error());
    Cache(cache)
}

/// Saves the cache, which a successful save frees (the wrapper must not free it
/// again) and a failed one leaves to the caller (the wrapper frees it).
fn save(provider: *const tc_provider, cache: Cache) -> tc_result {
    // SAFETY: a live provider and cache.
    let r = unsafe { tc_provider_save(provider, cache.0) };
    if r == tc_result::Ok {
        std::mem::forget(cache);
    }
    r
}

fn provider_stats(provider: *const tc_provider) -> tc_provider_stats {
    let mut stats = tc_provider_stats::default();
    // SAFETY: a live provider and a valid out-pointer.
    assert_eq!(unsafe { tc_provider_get_stats(provider, &mut stats) }, tc_result::Ok);
    stats
}

#[test]
fn a_provider_saves_only_what_changed_and_the_next_load_sees_it() {
    let store = memory_store();
    let provider = provider_over(store);
    // SAFETY: the provider keeps the store alive.
    unsafe { tc_store_free(store) };

    let cache = load(provider, "u1.t1");
    assert_eq!(cache.len(), 0);
    assert_eq!(cache.add(&user_event(), NOW), tc_result::Ok);
    assert_eq!(save(provider, cache), tc_result::Ok);
    let s = provider_stats(provider);
    assert_eq!((s.hits, s.misses, s.writes), (0, 1, 1));

    // Loaded and read, not changed: no write.
    let cache = load(provider, "u1.t1");
    assert!(cache.len() >= 4, "{}", cache.serialize());
    assert!(cache.search(tc_credential_type::RefreshToken, &[], None, NOW).contains("user-rt"));
    assert_eq!(save(provider, cache), tc_result::Ok);
    let s = provider_stats(provider);
    assert_eq!((s.hits, s.writes), (1, 1));

    // Emptied: the partition is removed from the store.
    let cache = load(provider, "u1.t1");
    assert_eq!(cache.deserialize(b""), tc_result::Ok);
    // SAFETY: a live cache.
    assert_eq!(unsafe { tc_cache_set_state_changed(cache.0, true) }, tc_result::Ok);
    assert_eq!(save(provider, cache), tc_result::Ok);
    assert_eq!(provider_stats(provider).removals, 1);
    assert_eq!(load(provider, "u1.t1").len(), 0);
    // SAFETY: released once.
    unsafe { tc_provider_free(provider) };
}

#[test]
fn a_cache_saves_only_through_the_provider_that_loaded_it() {
    let store = memory_store();
    let (a, b) = (provider_over(store), provider_over(store));
    let cache = load(a, "u1.t1");
    assert_eq!(cache.add(&user_event(), NOW), tc_result::Ok);
    assert_eq!(save(b, cache), tc_result::InvalidArgument);
    assert!(last_error().contains("not loaded by this provider"));
    assert_eq!(provider_stats(b).writes, 0);
    assert_eq!(provider_stats(a).writes, 0);

    // A plain cache is refused (and left to the caller, as documented).
    assert_eq!(save(a, Cache::new()), tc_result::InvalidArgument);
    // SAFETY: a live provider; NULL cache.
    assert_eq!(unsafe { tc_provider_save(a, ptr::null()) }, tc_result::NullParameter);

    // A loaded cache freed without saving is discarded; the provider outlives its handle.
    let cache = load(a, "u2.t1");
    // SAFETY: released once; the loaded cache keeps the provider alive.
    unsafe { tc_provider_free(a) };
    assert_eq!(cache.add(&app_token_event("t1", GRAPH, "at"), NOW), tc_result::Ok);
    drop(cache);
    let again = load(b, "u2.t1");
    assert_eq!(again.len(), 0);
    drop(again);
    // SAFETY: released once each.
    unsafe {
        tc_provider_free(b);
        tc_store_free(store);
    }
}

#[test]
fn a_tiered_store_over_memory_counts_its_layers() {
    let l2 = memory_store();
    let mut tiered = ptr::null();
    // SAFETY: a live store, default options, a valid out-pointer.
    assert_eq!(unsafe { tc_store_tiered_new(l2, ptr::null(), &mut tiered) }, tc_result::Ok);
    let mut nested = ptr::null();
    // SAFETY: as above; a tiered store can't be an L2.
    assert_eq!(unsafe { tc_store_tiered_new(tiered, ptr::null(), &mut nested) }, tc_result::InvalidArgument);
    assert!(nested.is_null());

    let provider = provider_over(tiered);
    let cache = load(provider, "u1.t1");
    assert_eq!(cache.add(&user_event(), NOW), tc_result::Ok);
    assert_eq!(save(provider, cache), tc_result::Ok);
    drop(load(provider, "u1.t1"));

    let mut stats = tc_store_stats::default();
    // SAFETY: a live store and a valid out-pointer.
    assert_eq!(unsafe { tc_store_get_stats(tiered, &mut stats) }, tc_result::Ok);
    assert_eq!(stats.layers, tc_store_layer::Tiered as u32 | tc_store_layer::Memory as u32);
    assert_eq!((stats.l1_hits, stats.misses, stats.l1_entries), (1, 1, 1));
    assert_eq!(stats.circuit, tc_circuit_state::Closed);
    assert_eq!(stats.memory_entries, 1, "the write reached L2 (its epoch marker is not a blob)");
    let recovery = (stats.l2_write_backs, stats.l2_write_backs_lost, stats.l2_write_backs_waiting);
    assert_eq!((recovery, stats.l1_copies_restored), ((0, 0, 0), 0), "no outage, nothing to recover");
    assert!(stats.l2_latency_p99_ns >= stats.l2_latency_p50_ns);
    // SAFETY: released once each.
    unsafe {
        tc_provider_free(provider);
        tc_store_free(tiered);
        tc_store_free(l2);
    }
}

#[test]
fn options_reject_bad_values_and_enums() {
    let mut tiered = ptr::null_mut();
    let mut redis = ptr::null_mut();
    let mut provider = ptr::null_mut();
    // SAFETY: valid out-pointers; the options are freed once below.
    unsafe {
        assert_eq!(tc_tiered_options_new(&mut tiered), tc_result::Ok);
        assert_eq!(tc_tiered_options_set_l1_expiration_ratio(tiered, 1.5), tc_result::InvalidArgument);
        assert_eq!(tc_tiered_options_set_l1_expiration_ratio(tiered, f64::NAN), tc_result::InvalidArgument);
        assert_eq!(tc_tiered_options_set_on_l2_failure(tiered, 3), tc_result::InvalidEnum);
        assert_eq!(tc_tiered_options_set_expiration(tiered, -1, 0), tc_result::InvalidArgument);
        assert_eq!(tc_tiered_options_set_l1_max_bytes(tiered, 0), tc_result::InvalidArgument);
        assert_eq!(tc_tiered_options_set_on_l2_failure(tiered, tc_l2_failure_policy::Propagate as u32), tc_result::Ok);
        tc_tiered_options_free(tiered);
        assert_eq!(tc_redis_options_new(&mut redis), tc_result::Ok);
        assert_eq!(tc_redis_options_set_timeouts(redis, 0, 1, 1), tc_result::InvalidArgument);
        assert_eq!(tc_redis_options_set_max_connections(redis, 0), tc_result::InvalidArgument);
        assert_eq!(tc_redis_options_set_key_prefix(redis, ptr::null()), tc_result::NullParameter);
        tc_redis_options_free(redis);
        assert_eq!(tc_provider_options_new(&mut provider), tc_result::Ok);
        assert_eq!(tc_provider_options_set_on_bad_blob(provider, 2), tc_result::InvalidEnum);
        assert_eq!(tc_provider_options_set_expiration(provider, 0, -3), tc_result::InvalidArgument);
        tc_provider_options_free(provider);
    }
}

#[test]
fn provider_options_make_a_working_provider() {
    // (A bad stored blob under TC_ON_BAD_BLOB_FAIL is tested in tests/c, where an
    // encrypted store's envelope read through a plain store makes one.)
    let store = memory_store();
    let mut options = ptr::null_mut();
    let mut provider = ptr::null();
    // SAFETY: valid pointers; everything is freed once.
    unsafe {
        assert_eq!(tc_provider_options_new(&mut options), tc_result::Ok);
        assert_eq!(tc_provider_options_set_on_bad_blob(options, tc_on_bad_blob::Fail as u32), tc_result::Ok);
        assert_eq!(tc_provider_options_set_expiration(options, 3600, 600), tc_result::Ok);
        assert_eq!(tc_provider_new(store, options, &mut provider), tc_result::Ok);
        tc_provider_options_free(options);
    }
    let cache = load(provider, "k");
    assert_eq!(cache.add(&user_event(), NOW), tc_result::Ok);
    assert_eq!(save(provider, cache), tc_result::Ok);
    assert_eq!(provider_stats(provider).writes, 1);
    // SAFETY: released once each.
    unsafe {
        tc_provider_free(provider);
        tc_store_free(store);
    }
}

#[cfg(all(feature = "sqlite", not(miri)))]
#[test]
fn a_provider_over_sqlite_keeps_partitions_across_stores() {
    let dir = std::env::temp_dir().join(format!("tokencache-ffi-sqlite-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = c(dir.join("cache.db").to_str().unwrap());
    for round in 0..2 {
        let mut store = ptr::null();
        // SAFETY: a NUL-terminated path and a valid out-pointer.
        let r = unsafe { tc_store_sqlite_open(path.as_ptr(), 0, 0, &mut store) };
        assert_eq!(r, tc_result::Ok, "{}", last_error());
        let provider = provider_over(store);
        let cache = load(provider, "u1.t1");
        if round == 0 {
            assert_eq!(cache.add(&user_event(), NOW), tc_result::Ok);
        } else {
            assert!(cache.search(tc_credential_type::RefreshToken, &[], None, NOW).contains("user-rt"));
        }
        assert_eq!(save(provider, cache), tc_result::Ok);
        // SAFETY: released once each.
        unsafe {
            tc_provider_free(provider);
            tc_store_free(store);
        }
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[cfg(any(miri, not(feature = "sqlite")))]
#[test]
fn sqlite_store_test_skipped() {
    eprintln!("!!! SKIPPED: the SQLite store test (Miri can't run SQLite's C code, or the feature is off)");
}

#[cfg(not(miri))]
#[test]
fn a_file_backed_cache_writes_each_change_through() {
    let dir = std::env::temp_dir().join(format!("tokencache-ffi-file-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("msal_token_cache.json");
    let path = c(file.to_str().unwrap());
    let open = || {
        let mut cache = ptr::null();
        // SAFETY: a NUL-terminated path and a valid out-pointer.
        let r = unsafe { tc_cache_open_file(path.as_ptr(), 0, tc_on_corrupt::MoveAsideAndFail as u32, &mut cache) };
        assert_eq!(r, tc_result::Ok, "{}", last_error());
        Cache(cache)
    };
    let (a, b) = (open(), open());
    assert_eq!(a.add(&user_event(), NOW), tc_result::Ok);
    assert!(std::fs::read_to_string(&file).unwrap().contains("user-rt"));
    assert!(b.search(tc_credential_type::RefreshToken, &[], None, NOW).contains("user-rt"));
    let (mut reads, mut writes) = (0, 0);
    // SAFETY: a live cache and valid out-pointers.
    assert_eq!(unsafe { tc_cache_get_file_io(a.0, &mut reads, &mut writes) }, tc_result::Ok);
    assert_eq!(writes, 1);
    // Replacing the document goes to the file too, and the other handle sees it.
    assert_eq!(a.deserialize(b"{}"), tc_result::Ok);
    assert!(!std::fs::read_to_string(&file).unwrap().contains("user-rt"));
    assert!(!b.search(tc_credential_type::RefreshToken, &[], None, NOW).contains("user-rt"));
    // SAFETY: a live cache.
    assert_eq!(unsafe { tc_cache_set_state_changed(a.0, true) }, tc_result::Unsupported);
    // SAFETY: a plain cache is not file-backed.
    assert_eq!(unsafe { tc_cache_get_file_io(Cache::new().0, &mut reads, &mut writes) }, tc_result::InvalidArgument);
    drop((a, b));
    std::fs::write(&file, b"not json").unwrap();
    let mut cache = ptr::null();
    // SAFETY: as above.
    let r = unsafe { tc_cache_open_file(path.as_ptr(), 0, tc_on_corrupt::MoveAsideAndFail as u32, &mut cache) };
    assert_eq!(r, tc_result::Corrupt);
    assert!(cache.is_null());
    std::fs::remove_dir_all(dir).unwrap();
}

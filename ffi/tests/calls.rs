//! Every exported function on its happy path, called as C would call it.

mod common;

use std::ffi::CStr;
use std::ptr;

use common::*;
use tokencache::*;

#[test]
fn version_and_result_names() {
    // SAFETY: both return static NUL-terminated strings.
    let version = unsafe { CStr::from_ptr(tc_version()) };
    assert_eq!(version.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    let name = |r: u32| {
        // SAFETY: as above.
        unsafe { CStr::from_ptr(tc_result_describe(r)) }.to_str().unwrap().to_owned()
    };
    assert_eq!(name(tc_result::Ok as u32), "ok");
    assert_eq!(name(tc_result::InvalidJson as u32), "the text is not JSON");
    assert_eq!(name(1), "unknown result");
    assert_eq!(name(u32::MAX), "unknown result");
}

#[test]
fn add_then_look_up_by_the_hot_path_and_by_search() {
    let cache = Cache::new();
    assert_eq!(cache.add(&app_token_event("contoso", GRAPH, "at-contoso"), NOW), tc_result::Ok);
    assert_eq!(cache.len(), 2, "an access token and app metadata");

    assert_eq!(cache.get_access_token("contoso", &[GRAPH]), Ok(("at-contoso".to_owned(), NOW + 3600)));
    assert_eq!(cache.get_access_token("fabrikam", &[GRAPH]), Err(tc_result::NotFound));
    assert!(last_error().contains("no access token"));

    let query = format!(r#"{{"client_id": "{CLIENT_ID}", "realm": "contoso", "home_account_id": null}}"#);
    let found = cache.search(tc_credential_type::AccessToken, &[GRAPH], Some(&query), NOW + 1);
    assert!(found.starts_with("[{") && found.ends_with("}]"), "{found}");
    assert!(found.contains(r#""secret":"at-contoso""#));
    assert_eq!(cache.search(tc_credential_type::AccessToken, &["other"], None, NOW + 1), "[]");
    // Expired tokens are dropped by an access-token search, as msal does.
    assert_eq!(cache.search(tc_credential_type::AccessToken, &[], None, NOW + 7200), "[]");
    assert_eq!(cache.len(), 1);
}

#[test]
fn app_metadata_and_partition_key_of_an_entry() {
    let cache = Cache::new();
    cache.add(&user_event(), NOW);
    let mut out = empty();
    // SAFETY: live cache, NUL-terminated strings, valid out-pointer.
    let r = unsafe { tc_cache_get_app_metadata(cache.0, c(ENV).as_ptr(), c(CLIENT_ID).as_ptr(), &mut out) };
    assert_eq!(r, tc_result::Ok);
    assert_eq!(take(out), format!(r#"{{"client_id":"{CLIENT_ID}","environment":"{ENV}"}}"#));

    let rts = cache.search(tc_credential_type::RefreshToken, &[], None, NOW);
    let rt = &rts[1..rts.len() - 1];
    let mut key = empty();
    // SAFETY: a NUL-terminated string and a valid out-pointer.
    let r = unsafe { tc_partition_key(tc_credential_type::RefreshToken as u32, c(rt).as_ptr(), &mut key) };
    assert_eq!(r, tc_result::Ok);
    assert_eq!(take(key), "u1.t1");
    let mut key = empty();
    // SAFETY: as above.
    let r = unsafe {
        tc_partition_key(tc_credential_type::AppMetadata as u32, c(r#"{"client_id": "x"}"#).as_ptr(), &mut key)
    };
    assert_eq!(r, tc_result::NotFound);
    assert!(key.data.is_null(), "no output on failure");
}

#[test]
fn modify_update_and_remove_entries() {
    let cache = Cache::new();
    cache.add(&user_event(), NOW);
    let before = cache.len();
    let one = |json: String| json[1..json.len() - 1].to_owned();
    let rt = one(cache.search(tc_credential_type::RefreshToken, &[], None, NOW));

    // SAFETY (all calls below): a live cache and NUL-terminated strings.
    assert_eq!(
        // SAFETY: live handles, NUL-terminated strings and valid out-pointers.
        unsafe { tc_cache_update_rt(cache.0, c(&rt).as_ptr(), c("rotated-rt").as_ptr(), NOW + 5) },
        tc_result::Ok
    );
    let updated = one(cache.search(tc_credential_type::RefreshToken, &[], None, NOW));
    assert!(
        updated.contains(r#""secret":"rotated-rt""#) && updated.contains(r#""last_modification_time":"1700000005""#)
    );

    let at = one(cache.search(tc_credential_type::AccessToken, &["User.Read"], None, NOW));
    let changes = c(r#"{"secret": "changed-at"}"#);
    let ct = tc_credential_type::AccessToken as u32;
    // SAFETY: live handles, NUL-terminated strings and valid out-pointers.
    assert_eq!(unsafe { tc_cache_modify(cache.0, ct, c(&at).as_ptr(), changes.as_ptr()) }, tc_result::Ok);
    assert!(cache.search(tc_credential_type::AccessToken, &[], None, NOW).contains("changed-at"));
    // SAFETY: live handles, NUL-terminated strings and valid out-pointers.
    assert_eq!(unsafe { tc_cache_remove_at(cache.0, c(&at).as_ptr()) }, tc_result::Ok);
    // SAFETY: live handles, NUL-terminated strings and valid out-pointers.
    assert_eq!(unsafe { tc_cache_remove_rt(cache.0, c(&updated).as_ptr()) }, tc_result::Ok);
    let account = one(cache.search(tc_credential_type::Account, &[], None, NOW));
    // SAFETY: live handles, NUL-terminated strings and valid out-pointers.
    assert_eq!(unsafe { tc_cache_remove_account(cache.0, c(&account).as_ptr()) }, tc_result::Ok);
    assert_eq!(cache.len(), before - 3);
    assert_eq!(cache.search(tc_credential_type::RefreshToken, &[], None, NOW), "[]");

    // remove_idt on a hand-made ID token entry; modify with NULL changes removes too.
    let idt = format!(
        r#"{{"credential_type": "IdToken", "secret": "idt", "home_account_id": "u1.t1", "environment": "{ENV}",
            "realm": "t1", "client_id": "{CLIENT_ID}"}}"#
    );
    // SAFETY: live handles, NUL-terminated strings and valid out-pointers.
    assert_eq!(unsafe { tc_cache_modify(cache.0, 2, c(&idt).as_ptr(), changes.as_ptr()) }, tc_result::Ok);
    assert_eq!(cache.search(tc_credential_type::IdToken, &[], None, NOW).matches("IdToken").count(), 1);
    // SAFETY: live handles, NUL-terminated strings and valid out-pointers.
    assert_eq!(unsafe { tc_cache_remove_idt(cache.0, c(&idt).as_ptr()) }, tc_result::Ok);
    assert_eq!(cache.search(tc_credential_type::IdToken, &[], None, NOW), "[]");
    // SAFETY: live handles, NUL-terminated strings and valid out-pointers.
    assert_eq!(unsafe { tc_cache_modify(cache.0, 2, c(&idt).as_ptr(), ptr::null()) }, tc_result::Ok);
}

#[test]
fn changed_flag_follows_writes_and_saves() {
    let cache = Cache::new();
    let changed = || {
        let mut flag = false;
        // SAFETY: a live cache and a valid out-pointer.
        assert_eq!(unsafe { tc_cache_has_state_changed(cache.0, &mut flag) }, tc_result::Ok);
        flag
    };
    assert!(!changed());
    cache.add(&app_token_event("contoso", GRAPH, "s"), NOW);
    assert!(changed());
    cache.serialize();
    assert!(!changed());
    // SAFETY: a live cache.
    assert_eq!(unsafe { tc_cache_set_state_changed(cache.0, true) }, tc_result::Ok);
    assert!(changed());
}

#[test]
fn whole_documents_and_partitions_round_trip() {
    let cache = Cache::new();
    cache.add(&app_token_event("contoso", GRAPH, "s1"), NOW);
    cache.add(&app_token_event("fabrikam", GRAPH, "s2"), NOW);
    cache.add(&user_event(), NOW);
    let saved = cache.serialize();

    let copy = Cache::new();
    assert_eq!(copy.deserialize(saved.as_bytes()), tc_result::Ok);
    assert_eq!(copy.serialize(), saved);
    let mut compact = empty();
    // SAFETY: a live cache and a valid out-pointer.
    assert_eq!(unsafe { tc_cache_serialize_compact(copy.0, &mut compact) }, tc_result::Ok);
    let compact = take(compact);
    assert!(!compact.contains('\n') && compact.len() < saved.len());

    let mut keys = empty();
    // SAFETY: as above.
    assert_eq!(unsafe { tc_cache_partition_keys(cache.0, &mut keys) }, tc_result::Ok);
    assert_eq!(take(keys), r#"["my-app_contoso_AppTokenCache","my-app_fabrikam_AppTokenCache","u1.t1"]"#);

    let key = c("u1.t1");
    let mut blob = empty();
    // SAFETY: live cache, NUL-terminated key, valid out-pointer.
    assert_eq!(unsafe { tc_cache_serialize_partition(cache.0, key.as_ptr(), &mut blob) }, tc_result::Ok);
    let blob = take(blob);
    assert!(blob.contains("user-rt") && !blob.contains("s1"));

    let mut removed = 0usize;
    // SAFETY: as above.
    assert_eq!(unsafe { tc_cache_remove_partition(cache.0, key.as_ptr(), &mut removed) }, tc_result::Ok);
    assert_eq!(removed, 3, "access token, refresh token, account");
    assert_eq!(cache.len(), copy.len() - 3);
    // SAFETY: live cache, key, blob readable for its length.
    let r = unsafe { tc_cache_deserialize_partition(cache.0, key.as_ptr(), blob.as_ptr(), blob.len()) };
    assert_eq!(r, tc_result::Ok);
    assert_eq!(cache.len(), copy.len());

    let mut expiry = -1i64;
    let app = c("my-app_contoso_AppTokenCache");
    // SAFETY: live cache, key, valid out-pointer.
    assert_eq!(unsafe { tc_cache_suggested_expiry(cache.0, app.as_ptr(), NOW, &mut expiry) }, tc_result::Ok);
    assert_eq!(expiry, NOW + 3600, "no refresh token: the access token's expiry");
    // SAFETY: as above.
    assert_eq!(unsafe { tc_cache_suggested_expiry(cache.0, key.as_ptr(), NOW, &mut expiry) }, tc_result::Ok);
    assert_eq!(expiry, 0, "a refresh token keeps the partition");

    // (NULL, 0) empties the cache.
    // SAFETY: NULL with length 0 is the documented empty document.
    assert_eq!(unsafe { tc_cache_deserialize(copy.0, ptr::null(), 0) }, tc_result::Ok);
    assert_eq!(copy.len(), 0);
}

#[test]
fn options_limits_eviction_and_stats() {
    let mut options = ptr::null_mut();
    // SAFETY (all calls below): valid handles and out-pointers.
    // SAFETY: live handles, NUL-terminated strings and valid out-pointers.
    unsafe {
        assert_eq!(tc_cache_options_new(&mut options), tc_result::Ok);
        assert_eq!(tc_cache_options_set_max_entries(options, 4), tc_result::Ok);
        assert_eq!(tc_cache_options_set_max_bytes(options, 1 << 20), tc_result::Ok);
        assert_eq!(tc_cache_options_set_absolute_expiration(options, 86_400), tc_result::Ok);
        assert_eq!(tc_cache_options_set_sliding_expiration(options, 3_600), tc_result::Ok);
        assert_eq!(tc_cache_options_set_sliding_expiration(options, -1), tc_result::InvalidArgument);
    }
    let mut raw = ptr::null();
    // SAFETY: as above; the options are freed once, after use.
    unsafe {
        assert_eq!(tc_cache_new_with_options(options, &mut raw), tc_result::Ok);
        tc_cache_options_free(options);
    }
    let cache = Cache(raw);
    let mut limits = tc_cache_limits::default();
    // SAFETY: as above.
    assert_eq!(unsafe { tc_cache_get_limits(cache.0, &mut limits) }, tc_result::Ok);
    assert_eq!(
        (limits.max_entries, limits.max_bytes, limits.absolute_expiration_secs, limits.sliding_expiration_secs),
        (4, 1 << 20, 86_400, 3_600)
    );

    let now = common::NOW;
    for tenant in ["t1", "t2", "t3", "t4"] {
        cache.add(&app_token_event(tenant, GRAPH, "s"), now);
    }
    assert!(cache.len() <= 4, "the entry limit holds");
    assert!(cache.get_access_token("t4", &[GRAPH]).is_ok(), "the newest partition stays");
    cache.search(tc_credential_type::AccessToken, &[GRAPH], None, now);
    cache.search(tc_credential_type::RefreshToken, &[], None, now);

    let mut stats = tc_cache_stats::default();
    // SAFETY: as above.
    assert_eq!(unsafe { tc_cache_get_stats(cache.0, &mut stats) }, tc_result::Ok);
    assert!(stats.evicted_capacity >= 1, "{stats:?}");
    assert_eq!(stats.hits[tc_credential_type::AccessToken as usize], 1);
    assert_eq!(stats.misses[tc_credential_type::RefreshToken as usize], 1);
    assert_eq!(stats.entries, cache.len() as u64);
    assert!(stats.partitions >= 1 && stats.bytes > 0);

    let mut removed = u64::MAX;
    // A day and more later every partition has expired.
    // SAFETY: as above.
    assert_eq!(unsafe { tc_cache_purge_expired(cache.0, now + 100_000, &mut removed) }, tc_result::Ok);
    assert!(removed >= 1);
    assert_eq!(cache.get_access_token("t4", &[GRAPH]), Err(tc_result::NotFound));
}

#[test]
fn bytes_free_resets_and_tolerates_empty() {
    let mut bytes = empty();
    // SAFETY: `{NULL, 0}` and NULL are documented no-ops.
    unsafe {
        tc_bytes_free(&mut bytes);
        tc_bytes_free(ptr::null_mut());
    }
    let cache = Cache::new();
    // SAFETY: a live cache and a valid out-pointer.
    assert_eq!(unsafe { tc_cache_serialize(cache.0, &mut bytes) }, tc_result::Ok);
    assert_eq!(bytes.len, 2);
    // SAFETY: the library NUL-terminates every buffer it returns.
    assert_eq!(unsafe { *bytes.data.add(bytes.len) }, 0);
    // SAFETY: freed once; the second call sees `{NULL, 0}`.
    unsafe {
        tc_bytes_free(&mut bytes);
        assert!(bytes.data.is_null() && bytes.len == 0);
        tc_bytes_free(&mut bytes);
        tc_cache_free(ptr::null());
        tc_cache_options_free(ptr::null_mut());
    }
}

/// Partition calls on a cache that was loaded rather than built by adds (core indexes
/// partitions on every load).
#[test]
fn partitions_of_a_loaded_cache() {
    let built = Cache::new();
    built.add(&user_event(), NOW);
    let loaded = Cache::new();
    assert_eq!(loaded.deserialize(built.serialize().as_bytes()), tc_result::Ok);
    let mut removed = 0usize;
    // SAFETY: a live cache, a NUL-terminated key, a valid out-pointer.
    assert_eq!(unsafe { tc_cache_remove_partition(loaded.0, c("u1.t1").as_ptr(), &mut removed) }, tc_result::Ok);
    assert_eq!(removed, 3);
}

//! Bad arguments: NULL for every pointer, invalid UTF-8, out-of-range enums, buffers
//! too small, bad JSON. Each is a code and a message, and no output is written.

mod common;

use std::ffi::{CString, c_char};
use std::ptr::{null, null_mut};

use common::*;
use tokencache::*;

/// Calls `f` and checks it returned `want`, that the message names `mentions`, and
/// that the sentinel output stayed untouched.
fn expect(label: &str, want: tc_result, mentions: &str, got: tc_result) {
    assert_eq!(got, want, "{label}");
    let message = last_error();
    assert!(message.contains(mentions), "{label}: message {message:?} should mention {mentions:?}");
}

#[test]
fn null_for_every_pointer_argument() {
    let cache = Cache::new();
    cache.add(&app_token_event("contoso", GRAPH, "s"), NOW);
    let k = cache.0;
    let text = c("{}");
    let t = text.as_ptr();
    let env = c(ENV);
    let e = env.as_ptr();
    let scope = c(GRAPH);
    let scopes = [scope.as_ptr()];
    let s = scopes.as_ptr();
    let mut bytes = empty();
    let b: *mut tc_bytes = &mut bytes;
    let mut buf = [0 as c_char; 64];
    let p = buf.as_mut_ptr();
    let (mut n, mut i, mut u, mut flag) = (7usize, 7i64, 7u64, false);
    let (np, ip, up, fp): (*mut usize, *mut i64, *mut u64, *mut bool) = (&mut n, &mut i, &mut u, &mut flag);
    let mut options = null_mut();
    // SAFETY: a valid out-pointer.
    assert_eq!(unsafe { tc_cache_options_new(&mut options) }, tc_result::Ok);
    let o = options;
    let mut new_cache = null();
    let nc: *mut *const tc_cache = &mut new_cache;
    let mut limits = tc_cache_limits::default();
    let mut stats = tc_cache_stats::default();
    let data = b"{}".as_ptr();
    let at = 0u32;
    let nul = null::<c_char>();

    // Each call passes valid pointers except one NULL; it must fail with
    // TC_RESULT_NULL_PARAMETER and a message naming that argument.
    let mut checked = 0;
    macro_rules! check {
        ($label:literal, $arg:literal, $call:expr) => {{
            // SAFETY: every pointer is valid except the NULL under test.
            let got = unsafe { $call };
            assert_eq!(got, tc_result::NullParameter, "{}: NULL `{}`", $label, $arg);
            let message = last_error();
            assert!(message.contains(concat!("`", $arg, "`")), "{}: {message}", $label);
            checked += 1;
        }};
    }
    {
        check!("tc_cache_new", "cache_out", tc_cache_new(null_mut()));
        check!("tc_cache_new_with_options", "options", tc_cache_new_with_options(null(), nc));
        check!("tc_cache_new_with_options", "cache_out", tc_cache_new_with_options(o, null_mut()));
        check!("tc_cache_add_event", "cache", tc_cache_add_event(null(), t, 0));
        check!("tc_cache_add_event", "event_json", tc_cache_add_event(k, nul, 0));
        check!("tc_cache_search", "cache", tc_cache_search(null(), at, s, 1, t, 0, b));
        check!("tc_cache_search", "target", tc_cache_search(k, at, null(), 1, t, 0, b));
        check!("tc_cache_search", "results_out", tc_cache_search(k, at, s, 1, t, 0, null_mut()));
        check!("get_access_token", "cache", tc_cache_get_access_token(null(), nul, e, e, e, s, 1, nul, p, 64, np, ip));
        check!(
            "get_access_token",
            "environment",
            tc_cache_get_access_token(k, nul, nul, e, e, s, 1, nul, p, 64, np, ip)
        );
        check!("get_access_token", "client_id", tc_cache_get_access_token(k, nul, e, nul, e, s, 1, nul, p, 64, np, ip));
        check!("get_access_token", "realm", tc_cache_get_access_token(k, nul, e, e, nul, s, 1, nul, p, 64, np, ip));
        check!("get_access_token", "scopes", tc_cache_get_access_token(k, nul, e, e, e, null(), 1, nul, p, 64, np, ip));
        check!(
            "get_access_token",
            "secret_out",
            tc_cache_get_access_token(k, nul, e, e, e, s, 1, nul, null_mut(), 64, np, ip)
        );
        check!(
            "get_access_token",
            "secret_len_out",
            tc_cache_get_access_token(k, nul, e, e, e, s, 1, nul, p, 64, null_mut(), ip)
        );
        check!(
            "get_access_token",
            "expires_on_out",
            tc_cache_get_access_token(k, nul, e, e, e, s, 1, nul, p, 64, np, null_mut())
        );
        check!("tc_cache_get_app_metadata", "cache", tc_cache_get_app_metadata(null(), e, e, b));
        check!("tc_cache_get_app_metadata", "environment", tc_cache_get_app_metadata(k, nul, e, b));
        check!("tc_cache_get_app_metadata", "client_id", tc_cache_get_app_metadata(k, e, nul, b));
        check!("tc_cache_get_app_metadata", "entry_out", tc_cache_get_app_metadata(k, e, e, null_mut()));
        check!("tc_cache_modify", "cache", tc_cache_modify(null(), at, t, t));
        check!("tc_cache_modify", "entry_json", tc_cache_modify(k, at, nul, t));
        check!("tc_cache_remove_rt", "cache", tc_cache_remove_rt(null(), t));
        check!("tc_cache_remove_rt", "rt_json", tc_cache_remove_rt(k, nul));
        check!("tc_cache_update_rt", "cache", tc_cache_update_rt(null(), t, t, 0));
        check!("tc_cache_update_rt", "rt_json", tc_cache_update_rt(k, nul, t, 0));
        check!("tc_cache_update_rt", "new_secret", tc_cache_update_rt(k, t, nul, 0));
        check!("tc_cache_remove_at", "cache", tc_cache_remove_at(null(), t));
        check!("tc_cache_remove_at", "at_json", tc_cache_remove_at(k, nul));
        check!("tc_cache_remove_idt", "cache", tc_cache_remove_idt(null(), t));
        check!("tc_cache_remove_idt", "idt_json", tc_cache_remove_idt(k, nul));
        check!("tc_cache_remove_account", "cache", tc_cache_remove_account(null(), t));
        check!("tc_cache_remove_account", "account_json", tc_cache_remove_account(k, nul));
        check!("tc_cache_has_state_changed", "cache", tc_cache_has_state_changed(null(), fp));
        check!("tc_cache_has_state_changed", "changed_out", tc_cache_has_state_changed(k, null_mut()));
        check!("tc_cache_set_state_changed", "cache", tc_cache_set_state_changed(null(), true));
        check!("tc_cache_len", "cache", tc_cache_len(null(), np));
        check!("tc_cache_len", "len_out", tc_cache_len(k, null_mut()));
        check!("tc_cache_serialize", "cache", tc_cache_serialize(null(), b));
        check!("tc_cache_serialize", "document_out", tc_cache_serialize(k, null_mut()));
        check!("tc_cache_serialize_compact", "cache", tc_cache_serialize_compact(null(), b));
        check!("tc_cache_serialize_compact", "document_out", tc_cache_serialize_compact(k, null_mut()));
        check!("tc_cache_deserialize", "cache", tc_cache_deserialize(null(), data, 2));
        check!("tc_cache_deserialize", "document", tc_cache_deserialize(k, null(), 2));
        check!("tc_cache_partition_keys", "cache", tc_cache_partition_keys(null(), b));
        check!("tc_cache_partition_keys", "keys_out", tc_cache_partition_keys(k, null_mut()));
        check!("tc_cache_serialize_partition", "cache", tc_cache_serialize_partition(null(), t, b));
        check!("tc_cache_serialize_partition", "key", tc_cache_serialize_partition(k, nul, b));
        check!("tc_cache_serialize_partition", "blob_out", tc_cache_serialize_partition(k, t, null_mut()));
        check!("tc_cache_deserialize_partition", "cache", tc_cache_deserialize_partition(null(), t, data, 2));
        check!("tc_cache_deserialize_partition", "key", tc_cache_deserialize_partition(k, nul, data, 2));
        check!("tc_cache_deserialize_partition", "blob", tc_cache_deserialize_partition(k, t, null(), 2));
        check!("tc_cache_remove_partition", "cache", tc_cache_remove_partition(null(), t, np));
        check!("tc_cache_remove_partition", "key", tc_cache_remove_partition(k, nul, np));
        check!("tc_cache_remove_partition", "removed_out", tc_cache_remove_partition(k, t, null_mut()));
        check!("tc_cache_suggested_expiry", "cache", tc_cache_suggested_expiry(null(), t, 0, ip));
        check!("tc_cache_suggested_expiry", "key", tc_cache_suggested_expiry(k, nul, 0, ip));
        check!("tc_cache_suggested_expiry", "expiry_out", tc_cache_suggested_expiry(k, t, 0, null_mut()));
        check!("tc_partition_key", "entry_json", tc_partition_key(at, nul, b));
        check!("tc_partition_key", "key_out", tc_partition_key(at, t, null_mut()));
        check!("tc_cache_options_new", "options_out", tc_cache_options_new(null_mut()));
        check!("set_max_entries", "options", tc_cache_options_set_max_entries(null_mut(), 1));
        check!("set_max_bytes", "options", tc_cache_options_set_max_bytes(null_mut(), 1));
        check!("set_absolute_expiration", "options", tc_cache_options_set_absolute_expiration(null_mut(), 1));
        check!("set_sliding_expiration", "options", tc_cache_options_set_sliding_expiration(null_mut(), 1));
        check!("tc_cache_get_limits", "cache", tc_cache_get_limits(null(), &mut limits));
        check!("tc_cache_get_limits", "limits_out", tc_cache_get_limits(k, null_mut()));
        check!("tc_cache_purge_expired", "cache", tc_cache_purge_expired(null(), 0, up));
        check!("tc_cache_purge_expired", "removed_out", tc_cache_purge_expired(k, 0, null_mut()));
        check!("tc_cache_get_stats", "cache", tc_cache_get_stats(null(), &mut stats));
        check!("tc_cache_get_stats", "stats_out", tc_cache_get_stats(k, null_mut()));
        check!("tc_cache_set_access_callbacks", "cache", tc_cache_set_access_callbacks(null(), None, None, null_mut()));
        check!("tc_last_error_message", "message_out", tc_last_error_message(null_mut()));
    }
    assert_eq!(checked, 73);
    assert!(bytes.data.is_null(), "no call wrote its output");
    assert_eq!((n, i, u, flag), (7, 7, 7, false), "no call wrote its output");
    assert!(new_cache.is_null());
    assert_eq!(limits.max_entries, 0);
    assert_eq!(stats.entries, 0);
    // SAFETY: the options are ours.
    unsafe { tc_cache_options_free(o) };
}

#[test]
fn invalid_utf8_is_rejected_with_a_code() {
    let cache = Cache::new();
    let bad = CString::new(vec![b'{', 0xff, b'}']).unwrap();
    // SAFETY: a live cache and NUL-terminated strings.
    unsafe {
        expect(
            "event",
            tc_result::InvalidUtf8,
            "`event_json` is not UTF-8",
            tc_cache_add_event(cache.0, bad.as_ptr(), 0),
        );
        let mut out = empty();
        let scopes = [bad.as_ptr()];
        let r = tc_cache_search(cache.0, 0, scopes.as_ptr(), 1, null(), 0, &mut out);
        expect("scope", tc_result::InvalidUtf8, "`target` is not UTF-8", r);
        let doc = [0xef, 0xbb, 0xbf, b'{', 0xc3, b'}'];
        expect("document", tc_result::InvalidUtf8, "offset 4", tc_cache_deserialize(cache.0, doc.as_ptr(), doc.len()));
        assert!(out.data.is_null());
    }
    // A BOM alone is fine: the document is `{}`.
    assert_eq!(cache.deserialize(&[0xef, 0xbb, 0xbf, b'{', b'}']), tc_result::Ok);
}

#[test]
fn invalid_enum_integers_are_rejected() {
    let cache = Cache::new();
    let mut out = empty();
    let entry = c(r#"{"credential_type": "AccessToken"}"#);
    // SAFETY: a live cache, NUL-terminated strings, valid out-pointers.
    unsafe {
        expect(
            "search",
            tc_result::InvalidEnum,
            "5 is not a tc_credential_type",
            tc_cache_search(cache.0, 5, null(), 0, null(), 0, &mut out),
        );
        expect(
            "modify",
            tc_result::InvalidEnum,
            "tc_credential_type",
            tc_cache_modify(cache.0, u32::MAX, entry.as_ptr(), null()),
        );
        expect(
            "partition_key",
            tc_result::InvalidEnum,
            "tc_credential_type",
            tc_partition_key(99, entry.as_ptr(), &mut out),
        );
        extern "C" fn sink(_: *mut std::ffi::c_void, _: tc_log_level, _: *const c_char, _: usize) {}
        expect("log level", tc_result::InvalidEnum, "tc_log_level", tc_set_log_callback(Some(sink), null_mut(), 0));
        expect("log level", tc_result::InvalidEnum, "tc_log_level", tc_set_log_callback(Some(sink), null_mut(), 6));
    }
    assert!(out.data.is_null());
}

#[test]
fn too_small_secret_buffer_reports_the_length_only() {
    let cache = Cache::new();
    cache.add(&app_token_event("contoso", GRAPH, "0123456789"), NOW);
    let (env, cid, realm, scope) = (c(ENV), c(CLIENT_ID), c("contoso"), c(GRAPH));
    let scopes = [scope.as_ptr()];
    let call = |buf: *mut c_char, cap: usize, len: &mut usize, exp: &mut i64| {
        // SAFETY: live cache; `buf` is NULL with cap 0 or writable for `cap` bytes.
        unsafe {
            tc_cache_get_access_token(
                cache.0,
                null(),
                env.as_ptr(),
                cid.as_ptr(),
                realm.as_ptr(),
                scopes.as_ptr(),
                1,
                null(),
                buf,
                cap,
                len,
                exp,
            )
        }
    };
    let mut buf = [b'#' as c_char; 16];
    for cap in [0usize, 1, 10] {
        let (mut len, mut exp) = (0usize, -1i64);
        let ptr = if cap == 0 { null_mut() } else { buf.as_mut_ptr() };
        expect("small", tc_result::BufferTooSmall, "needs 11 bytes", call(ptr, cap, &mut len, &mut exp));
        assert_eq!(len, 10, "the length is reported");
        assert_eq!(exp, -1, "expires_on is not written on failure");
        assert!(buf.iter().all(|b| *b == b'#' as c_char), "the buffer is not written on failure");
    }
    let (mut len, mut exp) = (0usize, 0i64);
    assert_eq!(call(buf.as_mut_ptr(), 11, &mut len, &mut exp), tc_result::Ok);
    assert_eq!((len, exp, buf[10]), (10, NOW + 3600, 0));
}

#[test]
fn bad_json_and_bad_shapes() {
    let cache = Cache::new();
    cache.add(&app_token_event("contoso", GRAPH, "s"), NOW);
    let before = cache.serialize();
    let mut out = empty();
    expect("event", tc_result::InvalidJson, "line 1", cache.add("{\"client_id\": ", NOW));
    expect("event shape", tc_result::InvalidEvent, "invalid_event", cache.add("[]", NOW));
    expect("not a cache", tc_result::NotACache, "not_a_cache", cache.deserialize(b"[]"));
    expect(
        "truncated",
        tc_result::InvalidJson,
        "invalid_json",
        cache.deserialize(&before.as_bytes()[..before.len() / 2]),
    );
    // SAFETY: a live cache, NUL-terminated strings, valid out-pointers.
    unsafe {
        let r = tc_cache_search(cache.0, 0, null(), 0, c("{bad").as_ptr(), 0, &mut out);
        expect("query", tc_result::InvalidJson, "invalid_json", r);
        let r = tc_cache_search(cache.0, 0, null(), 0, c("[1]").as_ptr(), 0, &mut out);
        expect("query shape", tc_result::InvalidArgument, "`query_json` is not a JSON object", r);
        expect(
            "entry",
            tc_result::InvalidEntry,
            "`at_json` is not a JSON object",
            tc_cache_remove_at(cache.0, c("3").as_ptr()),
        );
        let wrong = c(r#"{"credential_type": "RefreshToken"}"#);
        expect("entry type", tc_result::InvalidEntry, "remove_at needs", tc_cache_remove_at(cache.0, wrong.as_ptr()));
        let blob = br#"{"AccessToken": {"k": {"credential_type": "AccessToken", "home_account_id": "other"}}}"#;
        let r = tc_cache_deserialize_partition(cache.0, c("u1").as_ptr(), blob.as_ptr(), blob.len());
        expect("foreign partition", tc_result::InvalidArgument, "partition", r);
    }
    assert!(out.data.is_null());
    assert_eq!(cache.serialize(), before, "failed calls changed nothing");
}

#[test]
fn last_error_is_per_thread() {
    let cache = Cache::new();
    expect("here", tc_result::InvalidJson, "invalid_json", cache.add("{", NOW));
    let there = std::thread::spawn(last_error).join().unwrap();
    assert_eq!(there, "", "another thread has no error");
    assert!(last_error().contains("invalid_json"), "a success does not clear it");
}

#[test]
fn secrets_never_reach_error_messages() {
    let cache = Cache::new();
    let event = app_token_event("contoso", GRAPH, "very-secret-token").replace("3600", "\"soon\"");
    let r = cache.add(&event, NOW);
    assert_ne!(r, tc_result::Ok);
    assert!(!last_error().contains("very-secret-token"));
}

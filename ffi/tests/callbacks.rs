//! Access and log callbacks: what they are told, and that they may call back into the
//! library (on the same cache) without deadlock.

mod common;

use std::ffi::{CStr, c_char, c_void};
use std::ptr::{null, null_mut};
use std::sync::Mutex;

use common::*;
use tokencache::*;

#[derive(Debug, Clone, PartialEq)]
struct Seen {
    after: bool,
    operation: tc_operation,
    credential_type: Option<tc_credential_type>,
    partition_key: Option<String>,
    has_state_changed: bool,
    suggested_expiry: i64,
    len_inside: usize,
}

struct Recorder {
    cache: *const tc_cache,
    seen: Mutex<Vec<Seen>>,
}

unsafe fn record(user_data: *mut c_void, event: *const tc_access_event, after: bool) {
    // SAFETY: the test passed a `Recorder` that outlives the cache's callbacks, and
    // the library passes a valid event.
    let (recorder, event) = unsafe { (&*(user_data as *const Recorder), &*event) };
    let mut len_inside = usize::MAX;
    // Re-entering the cache from the callback must not deadlock.
    // SAFETY: the recorder's cache is live.
    assert_eq!(unsafe { tc_cache_len(recorder.cache, &mut len_inside) }, tc_result::Ok);
    let partition_key = (!event.partition_key.is_null()).then(|| {
        // SAFETY: non-NULL keys are NUL-terminated and valid during the call.
        let key = unsafe { CStr::from_ptr(event.partition_key) }.to_str().unwrap().to_owned();
        assert_eq!(key.len(), event.partition_key_len);
        key
    });
    recorder.seen.lock().unwrap().push(Seen {
        after,
        operation: event.operation,
        credential_type: event.has_credential_type.then_some(event.credential_type),
        partition_key,
        has_state_changed: event.has_state_changed,
        suggested_expiry: event.suggested_expiry,
        len_inside,
    });
}

unsafe extern "C" fn before(user_data: *mut c_void, event: *const tc_access_event) {
    // SAFETY: forwarded from the library.
    unsafe { record(user_data, event, false) }
}

unsafe extern "C" fn after(user_data: *mut c_void, event: *const tc_access_event) {
    // SAFETY: forwarded from the library.
    unsafe { record(user_data, event, true) }
}

#[test]
fn access_callbacks_see_each_operation_and_may_reenter() {
    let cache = Cache::new();
    let recorder = Recorder { cache: cache.0, seen: Mutex::new(Vec::new()) };
    let ud = &recorder as *const Recorder as *mut c_void;
    // SAFETY: the recorder outlives every call below; the callbacks are removed before it drops.
    assert_eq!(unsafe { tc_cache_set_access_callbacks(cache.0, Some(before), Some(after), ud) }, tc_result::Ok);

    cache.add(&app_token_event("contoso", GRAPH, "s"), NOW);
    let seen = std::mem::take(&mut *recorder.seen.lock().unwrap());
    let key = Some("my-app_contoso_AppTokenCache".to_owned());
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!((seen[0].after, seen[0].operation, &seen[0].partition_key), (false, tc_operation::Add, &key));
    assert_eq!(seen[0].len_inside, 0, "before: nothing added yet");
    assert_eq!((seen[1].after, seen[1].has_state_changed, seen[1].len_inside), (true, true, 2));
    assert!(seen[1].suggested_expiry > 0, "after a write: a suggested expiry");

    let query = format!(r#"{{"client_id": "{CLIENT_ID}", "realm": "contoso", "home_account_id": null}}"#);
    cache.search(tc_credential_type::AccessToken, &[GRAPH], Some(&query), NOW);
    let seen = std::mem::take(&mut *recorder.seen.lock().unwrap());
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].operation, tc_operation::Search);
    assert_eq!(seen[0].credential_type, Some(tc_credential_type::AccessToken));
    assert_eq!(seen[0].partition_key, key);

    cache.serialize();
    let seen = std::mem::take(&mut *recorder.seen.lock().unwrap());
    assert_eq!(seen.iter().map(|s| s.operation).collect::<Vec<_>>(), [tc_operation::Serialize; 2]);
    assert!(!seen[1].has_state_changed);

    // Removing the callbacks stops the notifications.
    // SAFETY: a live cache.
    assert_eq!(unsafe { tc_cache_set_access_callbacks(cache.0, None, None, null_mut()) }, tc_result::Ok);
    cache.serialize();
    assert!(recorder.seen.lock().unwrap().is_empty());
}

/// An after-callback that searches the same cache, which notifies again: the depth
/// guard stops the recursion after one level.
unsafe extern "C" fn search_again(user_data: *mut c_void, _event: *const tc_access_event) {
    // SAFETY: the test passes a live `Recorder`.
    let recorder = unsafe { &*(user_data as *const Recorder) };
    let depth = recorder.seen.lock().unwrap().len();
    if depth > 0 {
        return;
    }
    recorder.seen.lock().unwrap().push(Seen {
        after: true,
        operation: tc_operation::Other,
        credential_type: None,
        partition_key: None,
        has_state_changed: false,
        suggested_expiry: 0,
        len_inside: 0,
    });
    let mut out = empty();
    // SAFETY: the recorder's cache is live; a valid out-pointer.
    let r = unsafe { tc_cache_search(recorder.cache, 0, null(), 0, null(), NOW, &mut out) };
    assert_eq!(r, tc_result::Ok);
    assert!(take(out).contains("\"secret\""));
    // A write from inside the callback too.
    // SAFETY: as above.
    let r = unsafe { tc_cache_add_event(recorder.cache, c(&app_token_event("t2", GRAPH, "x")).as_ptr(), NOW) };
    assert_eq!(r, tc_result::Ok);
}

#[test]
fn a_callback_may_search_and_write_the_same_cache() {
    let cache = Cache::new();
    cache.add(&app_token_event("contoso", GRAPH, "s"), NOW);
    let recorder = Recorder { cache: cache.0, seen: Mutex::new(Vec::new()) };
    let ud = &recorder as *const Recorder as *mut c_void;
    // SAFETY: the recorder outlives the callbacks (removed below).
    unsafe {
        assert_eq!(tc_cache_set_access_callbacks(cache.0, None, Some(search_again), ud), tc_result::Ok);
    }
    cache.serialize();
    assert_eq!(recorder.seen.lock().unwrap().len(), 1, "the callback ran");
    assert!(cache.get_access_token("t2", &[GRAPH]).is_ok(), "its write landed");
    // SAFETY: a live cache.
    unsafe { tc_cache_set_access_callbacks(cache.0, None, None, null_mut()) };
}

static LOGGED: Mutex<Vec<(tc_log_level, String)>> = Mutex::new(Vec::new());

unsafe extern "C" fn log_sink(user_data: *mut c_void, level: tc_log_level, message: *const c_char, len: usize) {
    // SAFETY: the library passes a NUL-terminated message of `len` bytes.
    let text = unsafe { CStr::from_ptr(message) }.to_str().unwrap().to_owned();
    assert_eq!(text.len(), len);
    // Re-entering the library from the log callback.
    // SAFETY: `user_data` is the live cache the test passed.
    let mut n = 0usize;
    // SAFETY: live handles, NUL-terminated strings and valid out-pointers.
    assert_eq!(unsafe { tc_cache_len(user_data as *const tc_cache, &mut n) }, tc_result::Ok);
    LOGGED.lock().unwrap().push((level, text));
}

#[test]
fn log_callback_receives_core_messages() {
    let mut options = null_mut();
    let mut raw = null();
    // SAFETY: valid out-pointers; the options are freed once.
    unsafe {
        tc_cache_options_new(&mut options);
        tc_cache_options_set_max_entries(options, 2);
        tc_cache_new_with_options(options, &mut raw);
        tc_cache_options_free(options);
    }
    let cache = Cache(raw);
    // SAFETY: the callback has the right signature; the cache outlives the setting
    // (turned off at the end).
    let r = unsafe { tc_set_log_callback(Some(log_sink), raw as *mut c_void, tc_log_level::Debug as u32) };
    assert_eq!(r, tc_result::Ok);
    for tenant in ["a", "b", "c"] {
        cache.add(&app_token_event(tenant, GRAPH, "secret-value"), NOW);
    }
    let logged = std::mem::take(&mut *LOGGED.lock().unwrap());
    assert!(logged.iter().any(|(level, m)| *level == tc_log_level::Debug && m.contains("evicted")), "{logged:?}");
    assert!(logged.iter().all(|(_, m)| !m.contains("secret-value")));

    // At Warn, debug messages are filtered out; NULL turns logging off.
    // SAFETY: as above.
    unsafe { tc_set_log_callback(Some(log_sink), raw as *mut c_void, tc_log_level::Warn as u32) };
    cache.add(&app_token_event("d", GRAPH, "s"), NOW);
    // SAFETY: turning logging off.
    unsafe { tc_set_log_callback(None, null_mut(), 0) };
    cache.add(&app_token_event("e", GRAPH, "s"), NOW);
    assert!(LOGGED.lock().unwrap().is_empty());
}

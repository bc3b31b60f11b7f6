//! Request coalescing: many threads (and, with a lease, processes) missing one access
//! token make one token request.

use std::ffi::{c_char, c_void};
use std::time::Duration;

use tokencache_core::coalesce::{AccessTokenQuery, Coalescer, LeaseOptions};
use tokencache_core::{Entry, Map};

use crate::arguments::{self, try_optional_str, try_str, try_str_list};
use crate::cache::tc_cache;
use crate::handle::{Castable, OwnershipBox, free_box, to_boxed_mut_ptr, try_out, try_ref_from_ptr};
use crate::panic::ffi_panic_boundary;
use crate::result::{Failure, tc_result, try_result};
use crate::store::tc_store;

/// Coalesces concurrent misses of one access token into one call of the fetch callback
/// given to `tc_cache_get_or_fetch_access_token`; the others wait for its result.
/// Created with a lease (`tc_coalescer_new_with_lease`), it also makes the processes
/// sharing a SQLite or Redis store take turns: one fetches, the others poll the cache.
///
/// Ownership: created by `tc_coalescer_new` or `tc_coalescer_new_with_lease`; the
/// caller owns it and releases it with `tc_coalescer_free`, after every call using it
/// has returned. One coalescer may serve many caches.
///
/// Thread-safety: every function but `tc_coalescer_free` may be called from any number
/// of threads at once.
///
/// Methods: `tc_coalescer_new`, `tc_coalescer_new_with_lease`, `tc_coalescer_get_stats`,
/// `tc_coalescer_free`, and `tc_cache_get_or_fetch_access_token`.
pub struct tc_coalescer {
    _private: [u8; 0],
}

impl Castable for tc_coalescer {
    type Ownership = OwnershipBox;
    type RustType = Coalescer<Entry, Failure>;
}

/// Counters of a coalescer since its creation.
#[repr(C)]
#[derive(Debug, Default)]
pub struct tc_coalesce_stats {
    /// Calls answered from the cache at once.
    pub hits: u64,
    /// Flights started: calls that missed with no flight under way for their key.
    pub flights: u64,
    /// Fetch callbacks run.
    pub fetches: u64,
    /// Calls that waited for another caller's fetch instead of fetching.
    pub coalesced: u64,
    /// Flights whose fetch failed.
    pub failures: u64,
    /// Calls that gave up waiting (`TC_RESULT_LOCK_TIMEOUT`).
    pub timeouts: u64,
    /// Flights that found another process's lease and polled the cache.
    pub lease_waits: u64,
    /// Of those, flights the other process's token answered.
    pub lease_served: u64,
    /// Lease operations that failed (the flight then fetched without one).
    pub lease_errors: u64,
}

/// Creates a coalescer for the threads of this process and writes it to
/// `*coalescer_out`.
///
/// # Safety
/// `coalescer_out` must be NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_coalescer_new(coalescer_out: *mut *mut tc_coalescer) -> tc_result {
    ffi_panic_boundary! {
        let out = try_out!(coalescer_out);
        out.write(to_boxed_mut_ptr(Coalescer::new()));
        tc_result::Ok
    }
}

/// Creates a coalescer whose flights also take a lease in `store` (a SQLite or Redis
/// store, or a stack over one; the store is shared, not consumed), so that of the
/// processes sharing it one fetches a token at a time while the others poll their
/// cache. `lease_ttl_ms` bounds how long a crashed holder blocks the others (0: 10 s);
/// a live holder renews its lease every third of it while its fetch runs.
///
/// Fails with `TC_RESULT_INVALID_ARGUMENT` for a store that can't hold leases (memory).
///
/// # Safety
/// `store` must be NULL or a live store; `coalescer_out` NULL or valid for writing one
/// pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_coalescer_new_with_lease(
    store: *const tc_store,
    lease_ttl_ms: u64,
    coalescer_out: *mut *mut tc_coalescer,
) -> tc_result {
    ffi_panic_boundary! {
        let store = try_ref_from_ptr!(store);
        let out = try_out!(coalescer_out);
        let leases = try_result!(store.leases());
        let mut options = LeaseOptions::default();
        if lease_ttl_ms != 0 {
            options.ttl = Duration::from_millis(lease_ttl_ms);
        }
        out.write(to_boxed_mut_ptr(try_result!(Coalescer::with_lease(leases, options))));
        tc_result::Ok
    }
}

/// Writes the coalescer's counters to `*stats_out`.
///
/// # Safety
/// `coalescer` must be NULL or a live coalescer; `stats_out` NULL or valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_coalescer_get_stats(
    coalescer: *const tc_coalescer,
    stats_out: *mut tc_coalesce_stats,
) -> tc_result {
    ffi_panic_boundary! {
        let coalescer = try_ref_from_ptr!(coalescer);
        let out = try_out!(stats_out);
        let s = coalescer.stats();
        out.write(tc_coalesce_stats {
            hits: s.hits,
            flights: s.flights,
            fetches: s.fetches,
            coalesced: s.coalesced,
            failures: s.failures,
            timeouts: s.timeouts,
            lease_waits: s.lease_waits,
            lease_served: s.lease_served,
            lease_errors: s.lease_errors,
        });
        tc_result::Ok
    }
}

/// Releases a coalescer. NULL is ignored.
///
/// # Safety
/// `coalescer` must be NULL or a coalescer the caller owns, with no call using it under
/// way.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_coalescer_free(coalescer: *mut tc_coalescer) {
    ffi_panic_boundary! {
        // SAFETY: the caller passes NULL or a coalescer it owns and gives up here.
        unsafe { free_box(coalescer) }
    }
}

/// Where a fetch callback hands over its result: one of `tc_fetch_reply_set_event`
/// (success) or `tc_fetch_reply_set_error` (failure). Valid only during the callback.
pub struct tc_fetch_reply {
    _private: [u8; 0],
}

/// What a reply holds: nothing yet, a token response event, or a failure message.
#[derive(Default)]
struct Reply {
    event: Option<Map>,
    error: Option<String>,
}

/// Fetches a token for `tc_cache_get_or_fetch_access_token`: requests it from the token
/// endpoint, gives the response to `reply` with `tc_fetch_reply_set_event` and returns
/// true; or returns false (after `tc_fetch_reply_set_error`, if it has a message). It
/// runs on the thread of the call that leads the flight, with no lock held, and must
/// not unwind (throw a C++ exception or `longjmp`) out of the call.
pub type tc_fetch_callback = Option<unsafe extern "C" fn(user_data: *mut c_void, reply: *mut tc_fetch_reply) -> bool>;

/// Gives the token response the fetch callback got, as a token response event (the
/// JSON `tc_cache_add_event` takes). It is checked when the callback returns.
///
/// Fails with `TC_RESULT_INVALID_EVENT` when `event_json` is not a JSON object.
///
/// # Safety
/// `reply` must be NULL or the reply of a running fetch callback; `event_json` NULL or
/// NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_fetch_reply_set_event(reply: *mut tc_fetch_reply, event_json: *const c_char) -> tc_result {
    ffi_panic_boundary! {
        let reply = try_result!(try_reply(reply));
        let text = try_str!(event_json);
        reply.event = Some(try_result!(arguments::json_object(text, "event_json", tc_result::InvalidEvent)));
        tc_result::Ok
    }
}

/// Says why the fetch failed (every waiting caller gets this message with
/// `TC_RESULT_FETCH_FAILED`). Never put a token or a secret in it.
///
/// # Safety
/// `reply` must be NULL or the reply of a running fetch callback; `message` NULL or
/// NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_fetch_reply_set_error(reply: *mut tc_fetch_reply, message: *const c_char) -> tc_result {
    ffi_panic_boundary! {
        let reply = try_result!(try_reply(reply));
        let message = try_str!(message);
        reply.error = Some(message.to_owned());
        tc_result::Ok
    }
}

fn try_reply<'a>(reply: *mut tc_fetch_reply) -> Result<&'a mut Reply, Failure> {
    if reply.is_null() {
        return Err(Failure::null("reply"));
    }
    // SAFETY: a non-NULL reply is one `fetch` below passed to the running callback
    // (the functions taking it document so): a live `Reply` only this thread uses.
    Ok(unsafe { &mut *reply.cast::<Reply>() })
}

/// Runs the callback and turns its reply into the event or the failure.
fn fetch(
    callback: unsafe extern "C" fn(*mut c_void, *mut tc_fetch_reply) -> bool,
    user_data: *mut c_void,
) -> Result<Map, Failure> {
    let mut reply = Reply::default();
    // SAFETY: the caller of `tc_cache_get_or_fetch_access_token` promised a callback
    // that may be called with its `user_data`; `reply` outlives the call.
    let ok = unsafe { callback(user_data, (&raw mut reply).cast()) };
    match (ok, reply.event) {
        (true, Some(event)) => Ok(event),
        (true, None) => Err(Failure::new(
            tc_result::FetchFailed,
            "the fetch callback returned true without tc_fetch_reply_set_event",
        )),
        (false, _) => Err(Failure::new(
            tc_result::FetchFailed,
            reply.error.as_deref().unwrap_or("the fetch callback failed (it gave no message)"),
        )),
    }
}

/// The access token these fields describe (as `tc_cache_get_access_token` takes them)
/// if the cache holds one expiring more than 5 minutes after `now` (msal's margin) and
/// not past its `refresh_on`; otherwise one call of `fetch` for all the threads that
/// miss this token at the same time through `coalescer`. The response it gives is added
/// to the cache before any of them returns. Writes the token as
/// `tc_cache_get_access_token` does.
///
/// `timeout_ms` bounds how long a caller waits for another's fetch (0: 30 s); then it
/// fails with `TC_RESULT_LOCK_TIMEOUT`. A failed fetch fails every caller waiting on it
/// with `TC_RESULT_FETCH_FAILED` (or the code of the reason, e.g. `TC_RESULT_INVALID_EVENT`
/// for a response that can't be cached) and caches nothing; the next call fetches again.
/// `TC_RESULT_BUFFER_TOO_SMALL` leaves the fetched token in the cache: call again with the
/// size reported.
///
/// # Safety
/// As `tc_cache_get_access_token`; `coalescer` NULL or a live coalescer; `fetch` a
/// function that may be called with `user_data` on any thread calling this function.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_cache_get_or_fetch_access_token(
    cache: *const tc_cache,
    coalescer: *const tc_coalescer,
    home_account_id: *const c_char,
    environment: *const c_char,
    client_id: *const c_char,
    realm: *const c_char,
    scopes: *const *const c_char,
    scopes_len: usize,
    now: i64,
    timeout_ms: u64,
    fetch_callback: tc_fetch_callback,
    user_data: *mut c_void,
    secret_out: *mut c_char,
    secret_capacity: usize,
    secret_len_out: *mut usize,
    expires_on_out: *mut i64,
) -> tc_result {
    ffi_panic_boundary! {
        let cache = try_ref_from_ptr!(cache);
        let coalescer = try_ref_from_ptr!(coalescer);
        let home_account_id = try_optional_str!(home_account_id);
        let environment = try_str!(environment);
        let client_id = try_str!(client_id);
        let realm = try_str!(realm);
        let scopes = try_str_list!(scopes, scopes_len);
        let Some(callback) = fetch_callback else { return Failure::null("fetch_callback").record() };
        if secret_out.is_null() && secret_capacity != 0 {
            return Failure::null("secret_out").record();
        }
        let secret_len_out = try_out!(secret_len_out);
        let expires_on_out = try_out!(expires_on_out);
        let mut query = AccessTokenQuery::app(environment, client_id, realm, &scopes);
        query.home_account_id = home_account_id.filter(|h| !h.is_empty()).map(str::to_owned);
        query.now = arguments::now(now);
        let timeout = Duration::from_millis(if timeout_ms == 0 { 30_000 } else { timeout_ms });
        let entry = try_result!(cache.get_or_fetch_access_token(coalescer, &query, timeout, || fetch(callback, user_data)));
        // SAFETY: as `tc_cache_get_access_token`'s caller promised for these.
        unsafe { arguments::write_secret(&entry, secret_out, secret_capacity, secret_len_out, expires_on_out) }
    }
}

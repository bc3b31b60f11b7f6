//! Proactive refresh: the access tokens due for renewal, once or as a watcher that
//! reports each issuance once.

use tokencache_core::{DueToken, Entry, RefreshWatcher};

use crate::arguments;
use crate::bytes::tc_bytes;
use crate::cache::tc_cache;
use crate::handle::{Castable, OwnershipBox, free_box, to_boxed_mut_ptr, try_out, try_ref_from_ptr};
use crate::panic::ffi_panic_boundary;
use crate::result::{Failure, tc_result, try_result};

fn entries(due: Vec<DueToken>) -> tc_bytes {
    let entries: Vec<Entry> = due.into_iter().map(|t| t.entry).collect();
    tc_bytes::from_string(arguments::json_array_of_entries(&entries))
}

fn horizon(secs: i64) -> Result<i64, Failure> {
    if secs < 0 {
        return Err(Failure::new(tc_result::InvalidArgument, "`horizon_secs` must not be negative"));
    }
    Ok(secs)
}

/// The access tokens to renew at `now` (`TC_NOW`: the wall clock): those whose
/// `refresh_on` has passed or that expire within `horizon_secs`, never an expired user
/// token whose refresh token is gone. Written to `*results_out` as a JSON array of
/// entries (as `tc_cache_search` gives them; free with `tc_bytes_free`). Renew each with
/// the app's token request; adding the response replaces it.
///
/// # Safety
/// `cache` must be NULL or a live cache; `results_out` NULL or valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_cache_due_for_refresh(
    cache: *const tc_cache,
    now: i64,
    horizon_secs: i64,
    results_out: *mut tc_bytes,
) -> tc_result {
    ffi_panic_boundary! {
        let cache = try_ref_from_ptr!(cache);
        let horizon_secs = try_result!(horizon(horizon_secs));
        let out = try_out!(results_out);
        let cache = try_result!(cache.current());
        out.write(entries(cache.due_for_refresh(arguments::now(now), horizon_secs)));
        tc_result::Ok
    }
}

/// Reports each access token once when it becomes due for renewal (its `refresh_on`
/// passed or its expiry is within the horizon), however often it is polled: poll it
/// from a timer and renew what it returns. A renewed token is a new issuance and is
/// reported again when it is due in turn.
///
/// Ownership: `tc_refresh_watcher_new` creates one; the caller owns it and releases it
/// with `tc_refresh_watcher_free`.
///
/// Thread-safety: `tc_refresh_watcher_poll` may be called from any thread; concurrent
/// polls each get a disjoint part of the newly due tokens.
///
/// Methods: `tc_refresh_watcher_new`, `tc_refresh_watcher_poll`,
/// `tc_refresh_watcher_free`.
pub struct tc_refresh_watcher {
    _private: [u8; 0],
}

impl Castable for tc_refresh_watcher {
    type Ownership = OwnershipBox;
    type RustType = RefreshWatcher;
}

/// Creates a watcher for tokens expiring within `horizon_secs` (or past their
/// `refresh_on`) and writes it to `*watcher_out`.
///
/// # Safety
/// `watcher_out` must be NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_refresh_watcher_new(
    horizon_secs: i64,
    watcher_out: *mut *mut tc_refresh_watcher,
) -> tc_result {
    ffi_panic_boundary! {
        let horizon_secs = try_result!(horizon(horizon_secs));
        let out = try_out!(watcher_out);
        out.write(to_boxed_mut_ptr(RefreshWatcher::new(horizon_secs)));
        tc_result::Ok
    }
}

/// The tokens of `cache` due at `now` that no earlier poll of this watcher returned,
/// as `tc_cache_due_for_refresh` writes them (`[]` when there are none).
///
/// # Safety
/// `watcher` must be NULL or a live watcher; `cache` NULL or a live cache;
/// `results_out` NULL or valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_refresh_watcher_poll(
    watcher: *const tc_refresh_watcher,
    cache: *const tc_cache,
    now: i64,
    results_out: *mut tc_bytes,
) -> tc_result {
    ffi_panic_boundary! {
        let watcher = try_ref_from_ptr!(watcher);
        let cache = try_ref_from_ptr!(cache);
        let out = try_out!(results_out);
        let cache = try_result!(cache.current());
        out.write(entries(watcher.poll(cache, arguments::now(now))));
        tc_result::Ok
    }
}

/// Releases a watcher. NULL is ignored.
///
/// # Safety
/// `watcher` must be NULL or a watcher the caller owns and no other thread uses.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_refresh_watcher_free(watcher: *mut tc_refresh_watcher) {
    ffi_panic_boundary! {
        // SAFETY: the caller passes NULL or a watcher it owns and gives up here.
        unsafe { free_box(watcher) }
    }
}

//! `tc_store_tiered_new` and `tc_tiered_options`: an in-memory L1 over a shared L2
//! (Redis, SQLite, or an encrypted store over one), with a failure policy and a
//! circuit breaker — Microsoft.Identity.Web's distributed cache adapter and its options.

use std::sync::Arc;
use std::time::Duration;

use tokencache_core::store::{L2FailurePolicy, TieredOptions, TieredStore};

use crate::handle::{
    Castable, OwnershipBox, free_box, to_arc_const_ptr, to_boxed_mut_ptr, try_mut_from_ptr, try_out, try_ref_from_ptr,
};
use crate::panic::ffi_panic_boundary;
use crate::result::try_result;
use crate::result::{Failure, tc_result};
use crate::store::{Layer, StoreHandle, tc_store};

/// What a tiered store does when an L2 operation fails or is skipped by the open
/// circuit. Every failure is logged and counted (`tc_store_stats.l2_errors`) whatever
/// the policy. An L2 that answers with a blob it can't open (`TC_RESULT_KEY_MISMATCH`,
/// `TC_RESULT_DECRYPTION_FAILED`) is not down: that error always reaches the caller.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum tc_l2_failure_policy {
    /// Carry on with L1 alone: a read that missed L1 is a miss, a write reaches L1
    /// only. Microsoft.Identity.Web's default, and the default here.
    ServeFromL1 = 0,
    /// Try once more at once; if that fails too, return the error.
    RetryOnce = 1,
    /// Return the error (`TC_RESULT_STORE_UNAVAILABLE`); a write still updated L1.
    Propagate = 2,
}

/// Options of a tiered store, named after Microsoft.Identity.Web's
/// `MsalDistributedTokenCacheAdapterOptions`. A new one holds the defaults: L1 of
/// 500 MiB, L1 lifetime ratio 1, L1 copies of L2 reads kept at most 300 s, policy
/// `TC_L2_FAILURE_POLICY_SERVE_FROM_L1`, circuit opened by 3 consecutive failures for
/// a cool-down of 10 s.
///
/// Ownership: `tc_tiered_options_new` creates one; the caller owns it and releases it
/// with `tc_tiered_options_free`. `tc_store_tiered_new` copies it.
///
/// Thread-safety: not synchronized; use one from one thread at a time.
///
/// Methods: `tc_tiered_options_new`, `tc_tiered_options_free`,
/// `tc_tiered_options_set_l1_max_bytes`, `tc_tiered_options_set_disable_l1`,
/// `tc_tiered_options_set_l1_expiration_ratio`, `tc_tiered_options_set_expiration`,
/// `tc_tiered_options_set_l1_backfill_ttl`, `tc_tiered_options_set_on_l2_failure`,
/// `tc_tiered_options_set_circuit_breaker`, `tc_tiered_options_set_l2_version_check_interval`.
pub struct tc_tiered_options {
    _private: [u8; 0],
}

impl Castable for tc_tiered_options {
    type Ownership = OwnershipBox;
    type RustType = TieredOptions;
}

/// Creates tiered-store options holding the defaults and writes them to
/// `*options_out`. The caller owns them and must release them with
/// `tc_tiered_options_free`.
///
/// # Safety
/// `options_out` must be NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_tiered_options_new(options_out: *mut *mut tc_tiered_options) -> tc_result {
    ffi_panic_boundary! {
        let out = try_out!(options_out);
        out.write(to_boxed_mut_ptr(TieredOptions::default()));
        tc_result::Ok
    }
}

/// Releases tiered-store options. `NULL` is a no-op.
///
/// # Safety
/// `options` must be NULL or options from `tc_tiered_options_new` not used again.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_tiered_options_free(options: *mut tc_tiered_options) {
    ffi_panic_boundary! {
        // SAFETY: the caller passes NULL or options it owns and gives up here.
        unsafe { free_box(options) }
    }
}

/// L1 size limit in bytes (blobs plus keys); least recently used blobs go first.
/// 0 is `TC_RESULT_INVALID_ARGUMENT` (use `tc_tiered_options_set_disable_l1`).
///
/// # Safety
/// `options` must be NULL or live options not in use by another thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_tiered_options_set_l1_max_bytes(
    options: *mut tc_tiered_options,
    max_bytes: u64,
) -> tc_result {
    ffi_panic_boundary! {
        let options = try_mut_from_ptr!(options);
        options.l1_max_bytes = match usize::try_from(max_bytes) {
            Ok(0) => return Failure::new(tc_result::InvalidArgument, "`max_bytes` is 0; disable L1 instead").record(),
            Ok(n) => n,
            Err(_) => return Failure::new(tc_result::InvalidArgument, "`max_bytes` does not fit in size_t").record(),
        };
        tc_result::Ok
    }
}

/// No L1: every read goes to L2 (for several apps sharing one L2, where an L1 copy
/// could be stale).
///
/// # Safety
/// `options` must be NULL or live options not in use by another thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_tiered_options_set_disable_l1(options: *mut tc_tiered_options, disable: bool) -> tc_result {
    ffi_panic_boundary! {
        try_mut_from_ptr!(options).disable_l1 = disable;
        tc_result::Ok
    }
}

/// An L1 copy lives `ratio` times as long as its L2 entry; `ratio` in (0, 1], else
/// `TC_RESULT_INVALID_ARGUMENT`.
///
/// # Safety
/// `options` must be NULL or live options not in use by another thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_tiered_options_set_l1_expiration_ratio(
    options: *mut tc_tiered_options,
    ratio: f64,
) -> tc_result {
    ffi_panic_boundary! {
        let options = try_mut_from_ptr!(options);
        if !(ratio > 0.0 && ratio <= 1.0) {
            return Failure::new(tc_result::InvalidArgument, "`ratio` must be in (0, 1]").record();
        }
        options.l1_expiration_ratio = ratio;
        tc_result::Ok
    }
}

/// Caps every entry's lifetime (L1 and L2) at `absolute_secs` from its write, and
/// gives entries written without one a sliding expiration of `sliding_secs`. 0 leaves
/// either out; negative values are `TC_RESULT_INVALID_ARGUMENT`.
///
/// # Safety
/// `options` must be NULL or live options not in use by another thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_tiered_options_set_expiration(
    options: *mut tc_tiered_options,
    absolute_secs: i64,
    sliding_secs: i64,
) -> tc_result {
    ffi_panic_boundary! {
        let options = try_mut_from_ptr!(options);
        let absolute = try_result!(optional_seconds(absolute_secs, "absolute_secs"));
        let sliding = try_result!(optional_seconds(sliding_secs, "sliding_secs"));
        options.absolute_expiration_relative_to_now = absolute;
        options.sliding_expiration = sliding;
        tc_result::Ok
    }
}

/// Longest lifetime of an L1 copy made from an L2 read, in seconds (before the
/// ratio); must be positive.
///
/// # Safety
/// `options` must be NULL or live options not in use by another thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_tiered_options_set_l1_backfill_ttl(
    options: *mut tc_tiered_options,
    secs: i64,
) -> tc_result {
    ffi_panic_boundary! {
        let options = try_mut_from_ptr!(options);
        let Some(ttl) = try_result!(optional_seconds(secs, "secs")) else {
            return Failure::new(tc_result::InvalidArgument, "`secs` must be positive").record();
        };
        options.l1_backfill_ttl = ttl;
        tc_result::Ok
    }
}

/// What an L2 failure does: a `tc_l2_failure_policy` value, else
/// `TC_RESULT_INVALID_ENUM`.
///
/// # Safety
/// `options` must be NULL or live options not in use by another thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_tiered_options_set_on_l2_failure(
    options: *mut tc_tiered_options,
    policy: u32,
) -> tc_result {
    ffi_panic_boundary! {
        let options = try_mut_from_ptr!(options);
        options.on_l2_failure = match policy {
            p if p == tc_l2_failure_policy::ServeFromL1 as u32 => L2FailurePolicy::ServeFromL1,
            p if p == tc_l2_failure_policy::RetryOnce as u32 => L2FailurePolicy::RetryOnce,
            p if p == tc_l2_failure_policy::Propagate as u32 => L2FailurePolicy::Propagate,
            p => {
                return Failure::new(tc_result::InvalidEnum, format_args!("`policy` = {p} is not a tc_l2_failure_policy"))
                    .record();
            }
        };
        tc_result::Ok
    }
}

/// The circuit breaker: `failure_threshold` consecutive failed L2 operations open it
/// (0 disables it), and an open circuit skips L2 for `cool_down_ms` milliseconds
/// before one operation probes it again.
///
/// # Safety
/// `options` must be NULL or live options not in use by another thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_tiered_options_set_circuit_breaker(
    options: *mut tc_tiered_options,
    failure_threshold: u32,
    cool_down_ms: u64,
) -> tc_result {
    ffi_panic_boundary! {
        let options = try_mut_from_ptr!(options);
        options.circuit_failure_threshold = failure_threshold;
        options.circuit_cool_down = Duration::from_millis(cool_down_ms);
        tc_result::Ok
    }
}

/// Over an L2 that keeps versions (memory, SQLite, Redis): how often, in milliseconds,
/// a read served from L1 first asks L2 whether its copy is still current (one small
/// round trip) and drops it if another instance changed the partition. 0 checks on every
/// read. Default 1 000.
///
/// # Safety
/// `options` must be NULL or live options not in use by another thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_tiered_options_set_l2_version_check_interval(
    options: *mut tc_tiered_options,
    interval_ms: u64,
) -> tc_result {
    ffi_panic_boundary! {
        try_mut_from_ptr!(options).l2_version_check_interval = Duration::from_millis(interval_ms);
        tc_result::Ok
    }
}

fn optional_seconds(value: i64, name: &str) -> Result<Option<Duration>, Failure> {
    match value {
        0 => Ok(None),
        s if s > 0 => Ok(Some(Duration::from_secs(s.unsigned_abs()))),
        _ => Err(Failure::new(tc_result::InvalidArgument, format_args!("`{name}` is negative"))),
    }
}

/// Creates a tiered store: an in-memory L1 over `l2`, and writes it to `*store_out`.
/// Reads go to L1, then to L2 (a hit there is copied into L1); writes go to both.
///
/// `l2` is a memory, SQLite, Redis or encrypted store (not another tiered store:
/// `TC_RESULT_INVALID_ARGUMENT`); the new store keeps it alive, so the caller may free
/// its `l2` pointer right after. `options` is NULL for the defaults, else copied.
///
/// The caller owns the store and must release it with `tc_store_free`.
///
/// # Safety
/// `l2` must be NULL or a live store; `options` NULL or live options not being changed
/// by another thread; `store_out` NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_store_tiered_new(
    l2: *const tc_store,
    options: *const tc_tiered_options,
    store_out: *mut *const tc_store,
) -> tc_result {
    ffi_panic_boundary! {
        let l2 = try_ref_from_ptr!(l2);
        let out = try_out!(store_out);
        // SAFETY: the caller passes NULL or live options (documented above).
        let options = match unsafe { crate::handle::try_from(options, "options") } {
            Ok(o) => o.clone(),
            Err(_) => TieredOptions::default(),
        };
        let tiered = Arc::new(try_result!(TieredStore::new(try_result!(l2.as_l2()), options)));
        out.write(to_arc_const_ptr(StoreHandle::plain(tiered.clone(), Layer::Tiered(tiered), Some(l2))));
        tc_result::Ok
    }
}

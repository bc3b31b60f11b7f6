//! Bounded memory and counters: `tc_cache_options` (limits a new cache is built
//! with), `tc_cache_limits` (the limits read back), eviction, and `tc_cache_stats`.

use tokencache_core::{CacheLimits, CredentialType};

use crate::arguments::{self, TC_CREDENTIAL_TYPE_COUNT, tc_credential_type};
use crate::cache::tc_cache;
use crate::handle::{Castable, OwnershipBox, free_box, to_boxed_mut_ptr, try_mut_from_ptr, try_out, try_ref_from_ptr};
use crate::panic::ffi_panic_boundary;
use crate::result::try_result;
use crate::result::{Failure, tc_result};

/// Options for a new cache: limits in entries and bytes, with least-recently-used
/// eviction of whole partitions, and absolute and sliding expiration of partitions.
/// A new `tc_cache_options` sets no limit (msal's unbounded behaviour).
///
/// Ownership: `tc_cache_options_new` creates one; the caller owns it and releases it
/// with `tc_cache_options_free`. `tc_cache_new_with_options` copies it, so it may be
/// freed or reused right after.
///
/// Thread-safety: not synchronized. Use one from one thread at a time (setting from one
/// thread while another creates a cache from it is a data race).
///
/// Methods: `tc_cache_options_new`, `tc_cache_options_free`,
/// `tc_cache_options_set_max_entries`, `tc_cache_options_set_max_bytes`,
/// `tc_cache_options_set_absolute_expiration`, `tc_cache_options_set_sliding_expiration`.
pub struct tc_cache_options {
    _private: [u8; 0],
}

impl Castable for tc_cache_options {
    type Ownership = OwnershipBox;
    type RustType = CacheLimits;
}

/// The limits a cache was built with, as `tc_cache_get_limits` reports them. 0 in a
/// field means "no limit".
#[repr(C)]
#[derive(Debug, Default)]
pub struct tc_cache_limits {
    /// At most this many entries.
    pub max_entries: u64,
    /// At most about this many bytes of entries.
    pub max_bytes: u64,
    /// A partition is dropped this many seconds after it was first written.
    pub absolute_expiration_secs: i64,
    /// A partition is dropped when not used for this many seconds.
    pub sliding_expiration_secs: i64,
}

/// Counters and sizes of a cache at one moment, as `tc_cache_get_stats` reports them.
#[repr(C)]
#[derive(Debug, Default)]
pub struct tc_cache_stats {
    /// Searches that found at least one entry, indexed by `tc_credential_type`.
    pub hits: [u64; TC_CREDENTIAL_TYPE_COUNT],
    /// Searches that found nothing, indexed by `tc_credential_type`.
    pub misses: [u64; TC_CREDENTIAL_TYPE_COUNT],
    /// Partitions evicted to stay within the entry and byte limits.
    pub evicted_capacity: u64,
    /// Partitions dropped by absolute expiration.
    pub evicted_absolute: u64,
    /// Partitions dropped by sliding expiration.
    pub evicted_sliding: u64,
    /// Expired access tokens removed by searches (msal's behaviour).
    pub evicted_expired_tokens: u64,
    /// Entries in the five sections.
    pub entries: u64,
    /// Distinct partitions (counted only when limits are set; else 0).
    pub partitions: u64,
    /// Approximate bytes of entries (counted only when limits are set; else 0).
    pub bytes: u64,
    /// Entries searches looked at; close to the number of matches, thanks to indexes.
    pub examined: u64,
}

/// Creates options with no limits and writes them to `*options_out`.
///
/// The caller owns the options and must release them with `tc_cache_options_free`.
///
/// # Safety
/// `options_out` must be NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_cache_options_new(options_out: *mut *mut tc_cache_options) -> tc_result {
    ffi_panic_boundary! {
        let out = try_out!(options_out);
        out.write(to_boxed_mut_ptr(CacheLimits::default()));
        tc_result::Ok
    }
}

/// Releases options. `NULL` is a no-op.
///
/// # Safety
/// `options` must be NULL or options from `tc_cache_options_new` that are not used
/// again.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_cache_options_free(options: *mut tc_cache_options) {
    ffi_panic_boundary! {
        // SAFETY: the caller passes NULL or options it owns and gives up here.
        unsafe { free_box(options) }
    }
}

fn count(value: u64, name: &str) -> Result<Option<usize>, Failure> {
    match value {
        0 => Ok(None),
        n => usize::try_from(n)
            .map(Some)
            .map_err(|_| Failure::new(tc_result::InvalidArgument, format_args!("`{name}` does not fit in size_t"))),
    }
}

fn seconds(value: i64, name: &str) -> Result<Option<i64>, Failure> {
    match value {
        0 => Ok(None),
        s if s > 0 => Ok(Some(s)),
        _ => Err(Failure::new(tc_result::InvalidArgument, format_args!("`{name}` is negative"))),
    }
}

/// Caps the cache at `max_entries` entries; least recently used partitions are
/// evicted first (the partition just written never is). 0 removes the limit.
///
/// # Safety
/// `options` must be NULL or live options not in use by another thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_cache_options_set_max_entries(
    options: *mut tc_cache_options,
    max_entries: u64,
) -> tc_result {
    ffi_panic_boundary! {
        let options = try_mut_from_ptr!(options);
        options.max_entries = try_result!(count(max_entries, "max_entries"));
        tc_result::Ok
    }
}

/// Caps the cache at about `max_bytes` bytes of entries, evicting as
/// `tc_cache_options_set_max_entries` does. 0 removes the limit.
///
/// # Safety
/// `options` must be NULL or live options not in use by another thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_cache_options_set_max_bytes(options: *mut tc_cache_options, max_bytes: u64) -> tc_result {
    ffi_panic_boundary! {
        let options = try_mut_from_ptr!(options);
        options.max_bytes = try_result!(count(max_bytes, "max_bytes"));
        tc_result::Ok
    }
}

/// Drops each partition `seconds` after it was first written. 0 removes the limit;
/// a negative value is `TC_RESULT_INVALID_ARGUMENT`.
///
/// # Safety
/// `options` must be NULL or live options not in use by another thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_cache_options_set_absolute_expiration(
    options: *mut tc_cache_options,
    seconds: i64,
) -> tc_result {
    ffi_panic_boundary! {
        let options = try_mut_from_ptr!(options);
        options.absolute_expiration_secs = try_result!(self::seconds(seconds, "seconds"));
        tc_result::Ok
    }
}

/// Drops each partition not used for `seconds`. 0 removes the limit; a negative value
/// is `TC_RESULT_INVALID_ARGUMENT`.
///
/// # Safety
/// `options` must be NULL or live options not in use by another thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_cache_options_set_sliding_expiration(
    options: *mut tc_cache_options,
    seconds: i64,
) -> tc_result {
    ffi_panic_boundary! {
        let options = try_mut_from_ptr!(options);
        options.sliding_expiration_secs = try_result!(self::seconds(seconds, "seconds"));
        tc_result::Ok
    }
}

/// The limits the cache was built with, in `*limits_out` (0 = no limit).
///
/// # Safety
/// `cache` must be NULL or a live cache; `limits_out` NULL or valid for writing one
/// `tc_cache_limits`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_cache_get_limits(cache: *const tc_cache, limits_out: *mut tc_cache_limits) -> tc_result {
    ffi_panic_boundary! {
        let cache = try_ref_from_ptr!(cache);
        let out = try_out!(limits_out);
        let limits = cache.memory().limits();
        out.write(tc_cache_limits {
            max_entries: limits.max_entries.map_or(0, |n| n as u64),
            max_bytes: limits.max_bytes.map_or(0, |n| n as u64),
            absolute_expiration_secs: limits.absolute_expiration_secs.unwrap_or(0),
            sliding_expiration_secs: limits.sliding_expiration_secs.unwrap_or(0),
        });
        tc_result::Ok
    }
}

/// Drops the partitions whose absolute or sliding expiration has passed at `now` (Unix
/// seconds or `TC_NOW`), and the least recently used while over a limit; writes how
/// many to `*removed_out`. Searches and adds also do this by themselves.
///
/// # Safety
/// `cache` must be NULL or a live cache; `removed_out` NULL or valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_cache_purge_expired(cache: *const tc_cache, now: i64, removed_out: *mut u64) -> tc_result {
    ffi_panic_boundary! {
        let cache = try_ref_from_ptr!(cache);
        let out = try_out!(removed_out);
        out.write(cache.memory().purge_expired(arguments::now(now)));
        tc_result::Ok
    }
}

/// Reorders per-section counters from core's order (`CredentialType::ALL`) to
/// `tc_credential_type` order.
fn by_tc_credential_type(counters: [u64; TC_CREDENTIAL_TYPE_COUNT]) -> [u64; TC_CREDENTIAL_TYPE_COUNT] {
    let mut out = [0; TC_CREDENTIAL_TYPE_COUNT];
    for (ct, n) in CredentialType::ALL.into_iter().zip(counters) {
        out[tc_credential_type::from(ct) as usize] = n;
    }
    out
}

/// The cache's counters and sizes, in `*stats_out`.
///
/// # Safety
/// `cache` must be NULL or a live cache; `stats_out` NULL or valid for writing one
/// `tc_cache_stats`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_cache_get_stats(cache: *const tc_cache, stats_out: *mut tc_cache_stats) -> tc_result {
    ffi_panic_boundary! {
        let cache = try_ref_from_ptr!(cache);
        let out = try_out!(stats_out);
        let s = cache.memory().stats();
        out.write(tc_cache_stats {
            hits: by_tc_credential_type(s.hits),
            misses: by_tc_credential_type(s.misses),
            evicted_capacity: s.evictions.capacity,
            evicted_absolute: s.evictions.absolute,
            evicted_sliding: s.evictions.sliding,
            evicted_expired_tokens: s.evictions.expired_tokens,
            entries: s.entries as u64,
            partitions: s.partitions as u64,
            bytes: s.bytes as u64,
            examined: s.examined,
        });
        tc_result::Ok
    }
}

//! `tc_cache_open_file`: a `tc_cache` kept in one file shared with other processes and
//! other MSAL apps — msal-extensions' `PersistedTokenCache`, with its lock file.

use std::ffi::c_char;
use std::time::Duration;

use tokencache_core::store::LockOptions;
use tokencache_core::{OnCorrupt, PersistOptions, PersistedTokenCache};

use crate::arguments::try_str;
use crate::backing::CacheHandle;
use crate::cache::tc_cache;
use crate::handle::{to_arc_const_ptr, try_out, try_ref_from_ptr};
use crate::panic::ffi_panic_boundary;
use crate::result::try_result;
use crate::result::{Failure, tc_result};

/// What a file-backed cache does when its file can't be read as a cache.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum tc_on_corrupt {
    /// Move it aside as `<path>.corrupt-<time>` and fail that call with
    /// `TC_RESULT_CORRUPT` (the message says where it went); the next call starts
    /// from an empty cache. The default.
    MoveAsideAndFail = 0,
    /// Move it aside, log a warning, and go on with an empty cache.
    MoveAsideAndContinue = 1,
}

/// Opens the cache file at `path` (created on the first change) and writes a cache
/// kept in it to `*cache_out`: every `tc_cache_*` call first picks up what other
/// processes wrote (a `stat` when nothing changed), and every change is written through
/// at once with one locked, atomic write (temp file, fsync, rename; mode 0600).
///
/// The lock is msal-extensions' (`<path>.lockfile`, created exclusively, holding
/// `"<pid> <program>"`) plus an OS lock, so msal-extensions apps can share the file; a
/// lock left by a dead process is taken over. `lock_timeout_ms` bounds the wait for
/// it (0: 5 s), after which a call fails with `TC_RESULT_LOCK_TIMEOUT`. `on_corrupt` is a
/// `tc_on_corrupt` value.
///
/// Changes that replace content (`tc_cache_deserialize`,
/// `tc_cache_deserialize_partition`, `tc_cache_remove_partition`) are made under the
/// file's lock on its current content and written once; `tc_cache_set_state_changed`
/// is refused with `TC_RESULT_UNSUPPORTED` (each change is already written).
///
/// Fails with `TC_RESULT_IO`, `TC_RESULT_LOCK_TIMEOUT` or `TC_RESULT_CORRUPT` when the
/// file can't be read now. The caller owns the cache and must release it with
/// `tc_cache_free`.
///
/// # Safety
/// `path` must be NULL or NUL-terminated; `cache_out` NULL or valid for writing one
/// pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_cache_open_file(
    path: *const c_char,
    lock_timeout_ms: u64,
    on_corrupt: u32,
    cache_out: *mut *const tc_cache,
) -> tc_result {
    ffi_panic_boundary! {
        let path = try_str!(path);
        let out = try_out!(cache_out);
        let on_corrupt = match on_corrupt {
            v if v == tc_on_corrupt::MoveAsideAndFail as u32 => OnCorrupt::MoveAsideAndFail,
            v if v == tc_on_corrupt::MoveAsideAndContinue as u32 => OnCorrupt::MoveAsideAndContinue,
            v => {
                return Failure::new(tc_result::InvalidEnum, format_args!("`on_corrupt` = {v} is not a tc_on_corrupt"))
                    .record();
            }
        };
        let mut lock = LockOptions::default();
        if lock_timeout_ms != 0 {
            lock.timeout = Duration::from_millis(lock_timeout_ms);
        }
        let persisted = try_result!(PersistedTokenCache::open(path, PersistOptions { lock, on_corrupt }));
        out.write(to_arc_const_ptr(CacheHandle::File(persisted)));
        tc_result::Ok
    }
}

/// How often a file-backed cache read its file (because it changed) and wrote it, in
/// `*reads_out` and `*writes_out`. `TC_RESULT_INVALID_ARGUMENT` for a cache that is not
/// file-backed.
///
/// # Safety
/// `cache` must be NULL or a live cache; `reads_out` and `writes_out` NULL or valid for
/// one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_cache_get_file_io(
    cache: *const tc_cache,
    reads_out: *mut u64,
    writes_out: *mut u64,
) -> tc_result {
    ffi_panic_boundary! {
        let cache = try_ref_from_ptr!(cache);
        let reads_out = try_out!(reads_out);
        let writes_out = try_out!(writes_out);
        let CacheHandle::File(persisted) = cache else {
            return Failure::new(tc_result::InvalidArgument, "the cache is not file-backed (tc_cache_open_file)").record();
        };
        let counts = persisted.io_counts();
        reads_out.write(counts.reads);
        writes_out.write(counts.writes);
        tc_result::Ok
    }
}

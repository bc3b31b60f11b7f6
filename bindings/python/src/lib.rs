//! # tokencache-python
//!
//! The native module `tokencache._tokencache` of the Python package `tokencache`:
//! drop-ins for msal's `TokenCache` and `SerializableTokenCache` and for
//! msal-extensions' `PersistedTokenCache`, a `CacheProvider` over the stores
//! (`MemoryStore`, `SqliteStore`, `RedisStore`, `TieredStore`, `EncryptedStore`; see
//! `stores.rs`), and before/after-access observers (`notify.rs`), backed by the
//! `tokencache` crate. A thin adapter: it converts Python objects to the core's JSON
//! values and back, releases the GIL around core work, and maps the core's errors to
//! exception classes. Every rule about what a cache holds lives in the
//! core; see `core/src/lib.rs`.
//!
//! The public Python classes are in `python/tokencache/__init__.py` (they subclass
//! the native ones here and add what msal defines as plain data or plain Python).
//! Build with maturin (`pyproject.toml`); tests are in `tests/python`.
//!
//! ```python
//! import msal, tokencache
//! cache = tokencache.SerializableTokenCache()
//! app = msal.ConfidentialClientApplication(client_id, client_credential=secret, token_cache=cache)
//! ```

mod cache;
mod coalesce;
mod convert;
mod errors;
mod notify;
mod observe;
mod persisted;
mod provider;
mod pystr;
mod refresh;
mod search;
mod stores;

/// mimalloc for the extension's Rust allocations (entries, indexes, documents): much
/// faster than the system allocator on the cache's many small allocations and large
/// documents (BENCHMARKS.md, "Python package vs msal"). Python's objects are not
/// affected: they are allocated by Python.
#[global_allocator]
static GLOBAL: Mimalloc = Mimalloc;

/// mimalloc, called as `malloc` wherever a mimalloc block is aligned enough anyway
/// (every block is to 8 bytes). `mimalloc::MiMalloc` calls `mi_malloc_aligned` for
/// every allocation, and above 1 KiB that is mimalloc's over-allocating path (a few
/// calls deeper, 7 bytes more, the page marked as holding interior pointers): where
/// every entry with a token in it lands (BENCHMARKS.md, "Since 2026-12-05 14:40").
struct Mimalloc;

/// What every mimalloc block is aligned to.
const BLOCK_ALIGN: usize = 8;

unsafe extern "C" {
    fn mi_malloc(size: usize) -> *mut std::ffi::c_void;
    fn mi_zalloc(size: usize) -> *mut std::ffi::c_void;
    fn mi_realloc(p: *mut std::ffi::c_void, newsize: usize) -> *mut std::ffi::c_void;
}

// SAFETY: mimalloc's functions meet `GlobalAlloc`'s contract: `mi_malloc`, `mi_zalloc`
// and `mi_realloc` return blocks aligned to `BLOCK_ALIGN`, used only for layouts that
// need no more; larger alignments go to `MiMalloc`, which asks for them; every block
// is freed by `mi_free` (through `MiMalloc::dealloc`) whichever way it was allocated.
unsafe impl std::alloc::GlobalAlloc for Mimalloc {
    #[inline]
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        if layout.align() <= BLOCK_ALIGN {
            // SAFETY: see the impl.
            unsafe { mi_malloc(layout.size()).cast() }
        } else {
            // SAFETY: the caller's contract, passed on.
            unsafe { mimalloc::MiMalloc.alloc(layout) }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        if layout.align() <= BLOCK_ALIGN {
            // SAFETY: see the impl.
            unsafe { mi_zalloc(layout.size()).cast() }
        } else {
            // SAFETY: the caller's contract, passed on.
            unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        if layout.align() <= BLOCK_ALIGN {
            // SAFETY: see the impl; `ptr` is a mimalloc block.
            unsafe { mi_realloc(ptr.cast(), new_size).cast() }
        } else {
            // SAFETY: the caller's contract, passed on.
            unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
        }
    }
}

/// mimalloc hands pages freed for a second back to the OS, which then faults and
/// zeroes them again when they are used: a cache reloaded (a persisted cache after
/// another process wrote, `deserialize` into a new cache) frees one document and
/// builds the next at once, and at 500,000 entries the second half of the new one paid
/// that (W2 deserialize 0.9 s -> 1.2-1.6 s, BENCHMARKS.md). Ten seconds, as jemalloc's
/// default decay: what a dropped cache held is still returned, a little later.
/// Affects this extension's own allocations only (Python's are not mimalloc's).
fn keep_freed_pages_longer() {
    // `mi_option_purge_delay` in mimalloc v3's `mimalloc.h`; its documented default
    // (1000 ms) confirms the number, and a value set through `MIMALLOC_PURGE_DELAY`
    // is left as it is.
    const PURGE_DELAY: std::ffi::c_int = 15;
    const DEFAULT_MS: std::ffi::c_long = 1000;
    unsafe extern "C" {
        fn mi_option_get(option: std::ffi::c_int) -> std::ffi::c_long;
        fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
    }
    // SAFETY: plain C calls with an option number and a value; mimalloc's options
    // are atomics, safe to read and set from any thread.
    unsafe {
        if mi_option_get(PURGE_DELAY) == DEFAULT_MS {
            mi_option_set(PURGE_DELAY, 10 * DEFAULT_MS);
        }
    }
}

use pyo3::prelude::*;

#[pymodule]
fn _tokencache(m: &Bound<'_, PyModule>) -> PyResult<()> {
    keep_freed_pages_longer();
    observe::install(m.py())?;
    m.add_class::<cache::TokenCacheCore>()?;
    m.add_class::<cache::SerializableTokenCacheCore>()?;
    m.add_class::<search::SearchResults>()?;
    m.add_class::<persisted::PersistedTokenCacheCore>()?;
    m.add_class::<refresh::RefreshWatcherCore>()?;
    m.add_class::<stores::StoreCore>()?;
    m.add_class::<stores::MemoryStoreCore>()?;
    m.add_class::<stores::SqliteStoreCore>()?;
    m.add_class::<stores::RedisStoreCore>()?;
    m.add_class::<stores::TieredStoreCore>()?;
    m.add_class::<stores::EncryptedStoreCore>()?;
    m.add_class::<stores::EncryptionKeyCore>()?;
    m.add_class::<coalesce::CoalescerCore>()?;
    m.add_class::<coalesce::LeaseStoreCore>()?;
    m.add_class::<provider::CacheProviderCore>()?;
    m.add_class::<provider::PartitionBlock>()?;
    m.add_class::<notify::AccessEventPy>()?;
    m.add_function(wrap_pyfunction!(notify::_set_access_observer, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}

//! `tc_provider`: a token cache per partition over a `tc_store` — load a partition
//! before a request, save it after, only if it changed (Microsoft.Identity.Web's
//! token cache provider).

use std::ffi::c_char;
use std::sync::Arc;

use tokencache_core::store::Store;
use tokencache_core::{
    CacheProvider, DEFAULT_MAX_MERGE_RETRIES, OnBadBlob, PartitionCache, ProviderOptions, TokenCache,
};

use crate::arguments::try_str;
use crate::backing::CacheHandle;
use crate::cache::tc_cache;
use crate::handle::{
    Castable, OwnershipArc, OwnershipBox, free_arc, free_box, take_arc, to_arc_const_ptr, to_boxed_mut_ptr,
    try_clone_arc, try_mut_from_ptr, try_out, try_ref_from_ptr,
};
use crate::panic::ffi_panic_boundary;
use crate::result::try_result;
use crate::result::{Failure, tc_result};
use crate::store::tc_store;

type DynStore = Arc<dyn Store>;
type Provider = CacheProvider<DynStore>;

/// Binds token caches to a store, one partition at a time (a partition is one user's
/// or one app+tenant's tokens; its key is what `tc_partition_key` gives):
///
/// ```c
/// const tc_cache *cache;
/// if (tc_provider_load(provider, key, &cache) == TC_RESULT_OK) {
///     ... any tc_cache_* call: search, add_event, ...
///     tc_provider_save(provider, cache);   // writes back if changed; frees cache
/// }
/// ```
///
/// A save writes the partition with the cache's suggested expiry (capped by the
/// options), or removes it from the store when it became empty. On a store that keeps
/// versions (memory, SQLite) a save is conflict-safe: when another writer saved the
/// partition since this load, this save's changes are merged onto that copy entry by
/// entry (the newer entry wins) instead of overwriting it.
///
/// Ownership: `tc_provider_new` creates one; the caller owns it and releases it with
/// `tc_provider_free`. It keeps its store alive, and the caches it loaded keep it alive.
///
/// Thread-safety: every function may be called on the same `tc_provider` from any
/// number of threads at once (each request loads its own cache), except
/// `tc_provider_free`, which must not race with other calls on it.
///
/// Methods: `tc_provider_new`, `tc_provider_load`, `tc_provider_save`,
/// `tc_provider_get_stats`, `tc_provider_free`.
pub struct tc_provider {
    _private: [u8; 0],
}

impl Castable for tc_provider {
    type Ownership = OwnershipArc;
    type RustType = Provider;
}

/// What a provider does with a stored partition that is not a cache.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum tc_on_bad_blob {
    /// Log a warning, count it (`tc_provider_stats.bad_blobs`) and start the partition
    /// empty; the next save replaces the bad blob. The default.
    TreatAsMiss = 0,
    /// Fail the load with the parse error.
    Fail = 1,
}

/// Options of a provider. A new one holds the defaults: partitions kept until their
/// suggested expiry, no sliding expiration, `TC_ON_BAD_BLOB_TREAT_AS_MISS`, at most 16
/// merges per save.
///
/// Ownership: `tc_provider_options_new` creates one; the caller owns it and releases
/// it with `tc_provider_options_free`. `tc_provider_new` copies it.
///
/// Thread-safety: not synchronized; use one from one thread at a time.
///
/// Methods: `tc_provider_options_new`, `tc_provider_options_free`,
/// `tc_provider_options_set_expiration`, `tc_provider_options_set_on_bad_blob`,
/// `tc_provider_options_set_max_merge_retries`.
pub struct tc_provider_options {
    _private: [u8; 0],
}

impl Castable for tc_provider_options {
    type Ownership = OwnershipBox;
    type RustType = ProviderSettings;
}

/// What `tc_provider_options` holds: core's options and the provider's merge bound.
#[derive(Clone, Debug)]
pub(crate) struct ProviderSettings {
    options: ProviderOptions,
    max_merge_retries: u32,
}

impl Default for ProviderSettings {
    fn default() -> Self {
        ProviderSettings { options: ProviderOptions::default(), max_merge_retries: DEFAULT_MAX_MERGE_RETRIES }
    }
}

/// Counters of a provider since its creation, as `tc_provider_get_stats` reports them.
#[repr(C)]
#[derive(Debug, Default)]
pub struct tc_provider_stats {
    /// Loads that found the partition in the store.
    pub hits: u64,
    /// Loads that did not.
    pub misses: u64,
    /// Partitions written back (saves of caches that changed).
    pub writes: u64,
    /// Partitions removed from the store because they became empty.
    pub removals: u64,
    /// Stored partitions that could not be read as a cache.
    pub bad_blobs: u64,
    /// Saves that found the partition changed by another writer since it was loaded
    /// (stores that keep versions: memory, SQLite).
    pub conflicts: u64,
    /// Merges of a save's changes onto the other writer's copy, entry by entry.
    pub merges: u64,
    /// Conditional writes retried after a merge.
    pub retries: u64,
    /// Changes dropped in merges because the other writer's were newer (or removed the
    /// entry).
    pub merge_lost: u64,
    /// Saves that, after repeated conflicts, merged and wrote with the other writers
    /// held off.
    pub exclusive_saves: u64,
}

/// A partition a provider loaded, held by a `tc_cache` until `tc_provider_save`. It
/// holds the provider by `Arc`, so the provider outlives it whatever C frees first.
pub(crate) struct ProviderPartition {
    partition: PartitionCache<'static, DynStore>,
}

impl ProviderPartition {
    fn load(provider: &Arc<Provider>, key: &str) -> tokencache_core::Result<Self> {
        Ok(ProviderPartition { partition: provider.load_shared(key)? })
    }

    pub(crate) fn cache(&self) -> &TokenCache {
        &self.partition
    }

    fn is_from(&self, provider: &Provider) -> bool {
        provider.owns(&self.partition)
    }

    fn save(&mut self) -> tokencache_core::Result<()> {
        self.partition.try_save()
    }
}

/// Creates provider options holding the defaults and writes them to `*options_out`.
/// The caller owns them and must release them with `tc_provider_options_free`.
///
/// # Safety
/// `options_out` must be NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_provider_options_new(options_out: *mut *mut tc_provider_options) -> tc_result {
    ffi_panic_boundary! {
        let out = try_out!(options_out);
        out.write(to_boxed_mut_ptr(ProviderSettings::default()));
        tc_result::Ok
    }
}

/// Releases provider options. `NULL` is a no-op.
///
/// # Safety
/// `options` must be NULL or options from `tc_provider_options_new` not used again.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_provider_options_free(options: *mut tc_provider_options) {
    ffi_panic_boundary! {
        // SAFETY: the caller passes NULL or options it owns and gives up here.
        unsafe { free_box(options) }
    }
}

/// Keeps a saved partition at most `absolute_secs` after the save (below its suggested
/// expiry), and drops it when not loaded for `sliding_secs`. 0 leaves either out;
/// negative values are `TC_RESULT_INVALID_ARGUMENT`.
///
/// # Safety
/// `options` must be NULL or live options not in use by another thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_provider_options_set_expiration(
    options: *mut tc_provider_options,
    absolute_secs: i64,
    sliding_secs: i64,
) -> tc_result {
    ffi_panic_boundary! {
        let options = try_mut_from_ptr!(options);
        if absolute_secs < 0 || sliding_secs < 0 {
            return Failure::new(tc_result::InvalidArgument, "expiration seconds must not be negative").record();
        }
        options.options.absolute_expiration_secs = (absolute_secs != 0).then_some(absolute_secs);
        options.options.sliding_expiration_secs = (sliding_secs != 0).then_some(sliding_secs);
        tc_result::Ok
    }
}

/// What a stored partition that is not a cache does on load: a `tc_on_bad_blob`
/// value, else `TC_RESULT_INVALID_ENUM`.
///
/// # Safety
/// `options` must be NULL or live options not in use by another thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_provider_options_set_on_bad_blob(
    options: *mut tc_provider_options,
    on_bad_blob: u32,
) -> tc_result {
    ffi_panic_boundary! {
        let options = try_mut_from_ptr!(options);
        options.options.on_bad_blob = match on_bad_blob {
            v if v == tc_on_bad_blob::TreatAsMiss as u32 => OnBadBlob::TreatAsMiss,
            v if v == tc_on_bad_blob::Fail as u32 => OnBadBlob::Fail,
            v => {
                return Failure::new(tc_result::InvalidEnum, format_args!("`on_bad_blob` = {v} is not a tc_on_bad_blob"))
                    .record();
            }
        };
        tc_result::Ok
    }
}

/// On a store that keeps versions: how many times one save merges and retries after
/// conflicting writes before it fails with `TC_RESULT_LOCK_TIMEOUT` (nothing written).
/// Default 16.
///
/// # Safety
/// `options` must be NULL or live options not in use by another thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_provider_options_set_max_merge_retries(
    options: *mut tc_provider_options,
    retries: u32,
) -> tc_result {
    ffi_panic_boundary! {
        try_mut_from_ptr!(options).max_merge_retries = retries;
        tc_result::Ok
    }
}

/// Creates a provider over `store` and writes it to `*provider_out`. `options` is NULL
/// for the defaults, else copied. The provider keeps the store alive, so the caller
/// may free its `store` pointer right after.
///
/// The caller owns the provider and must release it with `tc_provider_free`.
///
/// # Safety
/// `store` must be NULL or a live store; `options` NULL or live options not being
/// changed by another thread; `provider_out` NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_provider_new(
    store: *const tc_store,
    options: *const tc_provider_options,
    provider_out: *mut *const tc_provider,
) -> tc_result {
    ffi_panic_boundary! {
        let store = try_ref_from_ptr!(store);
        // SAFETY: the caller passes NULL or live options (documented above).
        let settings = unsafe { crate::handle::try_from(options, "options") }
            .map_or_else(|_| ProviderSettings::default(), Clone::clone);
        let out = try_out!(provider_out);
        let provider =
            CacheProvider::with_options(store.store(), settings.options).with_max_merge_retries(settings.max_merge_retries);
        out.write(to_arc_const_ptr(provider));
        tc_result::Ok
    }
}

/// Before a request: loads partition `key` from the store into a new cache and writes
/// it to `*cache_out` (an empty cache when the store has no such partition). Every
/// `tc_cache_*` function works on it.
///
/// After the request, hand the cache to `tc_provider_save`, which writes it back if it
/// changed and frees it; `tc_cache_free` instead discards its changes. The cache is
/// tied to this provider and this key, so it can't be saved under another user's key.
///
/// Fails with the store's error (`TC_RESULT_STORE_UNAVAILABLE`,
/// `TC_RESULT_KEY_MISMATCH`, ...), or with the parse error of a bad stored partition
/// under `TC_ON_BAD_BLOB_FAIL`.
///
/// # Safety
/// `provider` must be NULL or a live provider; `key` NULL or NUL-terminated;
/// `cache_out` NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_provider_load(
    provider: *const tc_provider,
    key: *const c_char,
    cache_out: *mut *const tc_cache,
) -> tc_result {
    ffi_panic_boundary! {
        let provider = try_clone_arc!(provider);
        let key = try_str!(key);
        let out = try_out!(cache_out);
        let partition = try_result!(ProviderPartition::load(&provider, key));
        out.write(to_arc_const_ptr(CacheHandle::Partition(partition)));
        tc_result::Ok
    }
}

/// After a request: writes the cache `tc_provider_load` gave back to its partition if it
/// changed (with its suggested expiry; removing the partition if it became empty), and
/// frees the cache.
///
/// On a store that keeps versions, a partition another writer saved since the load gets
/// this cache's changes merged onto it (see `tc_provider`); after the options' most merges
/// the save fails with `TC_RESULT_LOCK_TIMEOUT` and writes nothing.
///
/// The call takes over `cache` only when it returns `TC_RESULT_OK`. On any failure the
/// cache is still the caller's, with its changes: call `tc_provider_save` again (e.g.
/// once the store is back after `TC_RESULT_STORE_UNAVAILABLE`) or release it with
/// `tc_cache_free`. A cache not loaded by this provider is refused with
/// `TC_RESULT_INVALID_ARGUMENT`, and nothing is written.
///
/// # Safety
/// `provider` must be NULL or a live provider; `cache` NULL or a live cache no other
/// thread is using; after `TC_RESULT_OK`, not used again.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_provider_save(provider: *const tc_provider, cache: *const tc_cache) -> tc_result {
    ffi_panic_boundary! {
        let provider = try_ref_from_ptr!(provider);
        // SAFETY: the caller passes NULL or a live cache and no other thread uses it;
        // every path below either frees it (success) or gives the reference back.
        let Some(mut cache) = (unsafe { take_arc(cache) }) else { return Failure::null("cache").record() };
        let failure = match Arc::get_mut(&mut cache) {
            None => Failure::new(tc_result::InvalidArgument, "the cache is still in use elsewhere; nothing was saved"),
            Some(CacheHandle::Partition(partition)) if partition.is_from(provider) => match partition.save() {
                Ok(()) => return tc_result::Ok, // `cache` dropped: freed
                Err(e) => Failure::from(e),
            },
            Some(_) => Failure::new(
                tc_result::InvalidArgument,
                "the cache was not loaded by this provider (tc_provider_load); nothing was saved",
            ),
        };
        // The caller keeps its cache: the same pointer, its reference restored.
        let _ = Arc::into_raw(cache);
        failure.record()
    }
}

/// The provider's counters, in `*stats_out`.
///
/// # Safety
/// `provider` must be NULL or a live provider; `stats_out` NULL or valid for writing
/// one `tc_provider_stats`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_provider_get_stats(
    provider: *const tc_provider,
    stats_out: *mut tc_provider_stats,
) -> tc_result {
    ffi_panic_boundary! {
        let provider = try_ref_from_ptr!(provider);
        let out = try_out!(stats_out);
        let s = provider.stats();
        out.write(tc_provider_stats {
            hits: s.hits,
            misses: s.misses,
            writes: s.writes,
            removals: s.removals,
            bad_blobs: s.bad_blobs,
            conflicts: s.conflicts,
            merges: s.merges,
            retries: s.retries,
            merge_lost: s.merge_lost,
            exclusive_saves: s.exclusive_saves,
        });
        tc_result::Ok
    }
}

/// Releases the caller's reference to a provider. `NULL` is a no-op. Caches it loaded
/// stay usable and savable (they keep it alive).
///
/// # Safety
/// `provider` must be NULL or a provider from `tc_provider_new` that no other thread is
/// using through this pointer and that is not used again.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_provider_free(provider: *const tc_provider) {
    ffi_panic_boundary! {
        // SAFETY: the caller passes NULL or a provider it owns and gives up here.
        unsafe { free_arc(provider) }
    }
}

// A `tc_provider` may be used from any thread at once: what it holds must be Send + Sync (a
// core change that broke this fails to compile here instead of racing in C programs).
const _: fn() = || {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Provider>();
};

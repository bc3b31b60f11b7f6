//! `tc_store`: where a provider keeps its partitions between requests — in memory, in
//! an SQLite file, in Redis, an L1 over one of those, or encrypted — and the stats of
//! every layer of one.
//!
//! The constructors of the Redis, tiered and encrypted stores live in [`crate::redis`],
//! [`crate::tiered`] and [`crate::encryption`].

use std::ffi::c_char;
use std::sync::Arc;
use std::time::Duration;

use tokencache_core::store::{CircuitState, L2Store, LeaseStore, MemoryStore, Store, TieredStore};

use crate::arguments::try_str;
use crate::handle::{Castable, OwnershipArc, free_arc, to_arc_const_ptr, try_out, try_ref_from_ptr};
use crate::panic::ffi_panic_boundary;
use crate::result::try_result;
use crate::result::{Failure, tc_result};

/// A store of cache partitions: a key-value store of serialized partitions with
/// expiry, which a `tc_provider` loads caches from and saves them to.
///
/// Ownership: each constructor creates one; the caller owns it and releases it with
/// `tc_store_free`. Stores built over it (`tc_store_tiered_new`,
/// `tc_store_encrypted_new`) and providers (`tc_provider_new`) keep what they need of it
/// alive, so it may be freed right after they are created.
///
/// Thread-safety: every function may be called on the same `tc_store` from any number
/// of threads at once, except `tc_store_free`, which must not race with other calls on
/// it.
///
/// Methods: `tc_store_memory_new`, `tc_store_sqlite_open`, `tc_store_redis_open`,
/// `tc_store_redis_cluster_open`, `tc_store_tiered_new`, `tc_store_encrypted_new`,
/// `tc_store_purge_expired`, `tc_store_get_stats`, `tc_store_free`.
pub struct tc_store {
    _private: [u8; 0],
}

impl Castable for tc_store {
    type Ownership = OwnershipArc;
    type RustType = StoreHandle;
}

/// The stores in one `tc_store`'s stack, as bits of `tc_store_stats.layers`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum tc_store_layer {
    /// `tc_store_memory_new`.
    Memory = 1,
    /// `tc_store_sqlite_open`.
    Sqlite = 2,
    /// `tc_store_redis_open`, `tc_store_redis_cluster_open`.
    Redis = 4,
    /// `tc_store_tiered_new`.
    Tiered = 8,
    /// `tc_store_encrypted_new`.
    Encrypted = 16,
}

/// A tiered store's circuit breaker, in `tc_store_stats.circuit`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum tc_circuit_state {
    /// No tiered store in the stack, or its breaker is disabled.
    #[default]
    None = 0,
    /// L2 is used.
    Closed = 1,
    /// L2 is skipped until the cool-down ends (after repeated failures).
    Open = 2,
    /// One operation is probing L2; the others skip it.
    HalfOpen = 3,
}

/// Counters of every layer of a store, as `tc_store_get_stats` reports them. A field
/// of a layer the store does not have is 0; `layers` says which it has. Counters run
/// from the layer's creation.
#[repr(C)]
#[derive(Debug, Default)]
pub struct tc_store_stats {
    /// The layers present: bits of `tc_store_layer`.
    pub layers: u32,
    /// Tiered: reads answered by L1.
    pub l1_hits: u64,
    /// Tiered: reads answered by L2 after an L1 miss.
    pub l2_hits: u64,
    /// Tiered: reads answered by neither (including failed L2 reads served as misses).
    pub misses: u64,
    /// Tiered: failed L2 attempts (a retried operation that fails twice counts two).
    pub l2_errors: u64,
    /// Tiered: L2 retries (policy `TC_L2_FAILURE_POLICY_RETRY_ONCE`).
    pub l2_retries: u64,
    /// Tiered: L2 operations skipped because the circuit was open.
    pub l2_skipped: u64,
    /// Tiered: times the circuit opened.
    pub circuit_opened: u64,
    /// Tiered: the circuit breaker now (a `tc_circuit_state`).
    pub circuit: tc_circuit_state,
    /// Tiered: median L2 operation latency in nanoseconds, to about 12% (microsecond
    /// resolution); 0 before any L2 operation.
    pub l2_latency_p50_ns: u64,
    /// Tiered: 99th percentile L2 operation latency in nanoseconds, as the median.
    pub l2_latency_p99_ns: u64,
    /// Tiered: blobs in L1.
    pub l1_entries: u64,
    /// Tiered: bytes in L1 (blobs plus keys).
    pub l1_bytes: u64,
    /// Tiered over a versioned L2: L1 copies checked against L2's version.
    pub l2_version_checks: u64,
    /// Tiered over a versioned L2: L1 copies dropped because another writer had changed
    /// the partition in L2.
    pub stale_l1_drops: u64,
    /// Tiered: writes and removals made while L2 was unreachable, written to L2 since.
    pub l2_write_backs: u64,
    /// Tiered: writes and removals made while L2 was unreachable that lost to another
    /// instance's newer write of the partition (each logged as a warning).
    pub l2_write_backs_lost: u64,
    /// Tiered: writes and removals made while L2 was unreachable, waiting for it now.
    pub l2_write_backs_waiting: u64,
    /// Tiered over a versioned L2: L1 copies (and saves computed from them) written
    /// back after L2 lost its data (a restart without persistence, a flush).
    pub l1_copies_restored: u64,
    /// Encrypted: blobs sealed with a key the ring lacks.
    pub key_mismatches: u64,
    /// Encrypted: blobs that failed authentication or were not envelopes.
    pub decryption_failures: u64,
    /// Encrypted: plaintext blobs passed through (`TC_ENCRYPTION_ALLOW_UNENCRYPTED`).
    pub unencrypted_reads: u64,
    /// Memory store: blobs held.
    pub memory_entries: u64,
    /// Memory store: bytes held (blobs plus keys).
    pub memory_bytes: u64,
    /// Memory store: blobs evicted to stay under the size limit.
    pub memory_evicted_capacity: u64,
    /// Memory store: blobs dropped because they expired.
    pub memory_evicted_expired: u64,
    /// SQLite: expired rows purged.
    pub sqlite_purged_rows: u64,
    /// SQLite: scheduled purges that failed.
    pub sqlite_purge_errors: u64,
}

/// An L2 as a tiered store takes it.
pub(crate) type DynL2 = Arc<dyn L2Store>;

/// One store of a stack, kept for its stats.
#[derive(Clone)]
pub(crate) enum Layer {
    Memory(Arc<MemoryStore>),
    #[cfg(feature = "sqlite")]
    Sqlite(Arc<tokencache_core::store::SqliteStore>),
    #[cfg(feature = "redis")]
    Redis,
    Tiered(Arc<TieredStore<DynL2>>),
    #[cfg(feature = "encryption")]
    Encrypted(Arc<dyn crate::encryption::KeyedStore>),
}

/// The value behind a `tc_store` pointer: the store, the same store as an L2 when it
/// can be one, and every store of its stack for the stats.
pub(crate) struct StoreHandle {
    store: Arc<dyn Store>,
    l2: Option<DynL2>,
    layers: Vec<Layer>,
    /// Where a coalescer over this store takes its leases: the SQLite or Redis store
    /// at the bottom of the stack, if any.
    leases: Option<Arc<dyn LeaseStore>>,
}

impl StoreHandle {
    /// A store that can serve as an L2, on top of `below`'s layers.
    pub(crate) fn l2<S: L2Store + 'static>(store: Arc<S>, layer: Layer, below: Option<&StoreHandle>) -> Self {
        let mut h = Self::plain(store.clone(), layer, below);
        h.l2 = Some(store);
        h
    }

    /// A store that can't serve as an L2 (a tiered store), on top of `below`'s layers.
    pub(crate) fn plain<S: Store + 'static>(store: Arc<S>, layer: Layer, below: Option<&StoreHandle>) -> Self {
        let mut layers = vec![layer];
        layers.extend(below.into_iter().flat_map(|b| b.layers.iter().cloned()));
        StoreHandle { store, l2: None, layers, leases: below.and_then(|b| b.leases.clone()) }
    }

    /// This handle, with `leases` as where coalescers over it take their leases.
    pub(crate) fn with_leases(mut self, leases: Arc<dyn LeaseStore>) -> Self {
        self.leases = Some(leases);
        self
    }

    /// Where a coalescer over this store takes its leases, or why it can't.
    pub(crate) fn leases(&self) -> Result<Arc<dyn LeaseStore>, Failure> {
        self.leases.clone().ok_or_else(|| {
            Failure::new(
                tc_result::InvalidArgument,
                "leases need a store other processes share: SQLite or Redis (or a stack over one)",
            )
        })
    }

    /// The store.
    pub(crate) fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    /// The store as an L2, or why it can't be one.
    pub(crate) fn as_l2(&self) -> Result<DynL2, Failure> {
        self.l2.clone().ok_or_else(|| {
            Failure::new(tc_result::InvalidArgument, "a tiered store can't be the L2 of another tiered store")
        })
    }

    /// The outermost encrypted store of the stack, if any.
    #[cfg(feature = "encryption")]
    pub(crate) fn encrypted(&self) -> Option<&Arc<dyn crate::encryption::KeyedStore>> {
        self.layers.iter().find_map(|layer| match layer {
            Layer::Encrypted(store) => Some(store),
            _ => None,
        })
    }

    /// The layer bits and counters of the stack.
    fn stats(&self) -> tc_store_stats {
        let mut out = tc_store_stats::default();
        for layer in &self.layers {
            match layer {
                Layer::Memory(m) => {
                    out.layers |= tc_store_layer::Memory as u32;
                    let (capacity, expired) = m.evictions();
                    out.memory_entries += m.len() as u64;
                    out.memory_bytes += m.bytes() as u64;
                    out.memory_evicted_capacity += capacity;
                    out.memory_evicted_expired += expired;
                }
                #[cfg(feature = "sqlite")]
                Layer::Sqlite(s) => {
                    out.layers |= tc_store_layer::Sqlite as u32;
                    out.sqlite_purged_rows += s.purged();
                    out.sqlite_purge_errors += s.purge_errors();
                }
                #[cfg(feature = "redis")]
                Layer::Redis => out.layers |= tc_store_layer::Redis as u32,
                Layer::Tiered(t) => {
                    out.layers |= tc_store_layer::Tiered as u32;
                    let s = t.stats();
                    out.l1_hits += s.l1_hits;
                    out.l2_hits += s.l2_hits;
                    out.misses += s.misses;
                    out.l2_errors += s.l2_errors;
                    out.l2_retries += s.l2_retries;
                    out.l2_skipped += s.l2_skipped;
                    out.circuit_opened += s.circuit_opened;
                    out.circuit = match s.circuit {
                        None => tc_circuit_state::None,
                        Some(CircuitState::Closed) => tc_circuit_state::Closed,
                        Some(CircuitState::Open) => tc_circuit_state::Open,
                        Some(CircuitState::HalfOpen) => tc_circuit_state::HalfOpen,
                    };
                    let nanos = |d: Option<Duration>| d.map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
                    out.l2_latency_p50_ns = nanos(s.l2_latency_p50);
                    out.l2_latency_p99_ns = nanos(s.l2_latency_p99);
                    out.l1_entries += s.l1_entries as u64;
                    out.l1_bytes += s.l1_bytes as u64;
                    out.l2_version_checks += s.l2_version_checks;
                    out.stale_l1_drops += s.stale_l1_drops;
                    out.l2_write_backs += s.l2_write_backs;
                    out.l2_write_backs_lost += s.l2_write_backs_lost;
                    out.l2_write_backs_waiting += s.l2_write_backs_waiting as u64;
                    out.l1_copies_restored += s.l1_copies_restored;
                }
                #[cfg(feature = "encryption")]
                Layer::Encrypted(store) => {
                    out.layers |= tc_store_layer::Encrypted as u32;
                    let s = store.stats();
                    out.key_mismatches += s.key_mismatches;
                    out.decryption_failures += s.decryption_failures;
                    out.unencrypted_reads += s.unencrypted_reads;
                }
            }
        }
        out
    }
}

/// Creates a store in this process's memory holding at most `max_bytes` of blobs and
/// keys (0: 500 MiB, Microsoft.Identity.Web's default), least recently used first out,
/// and writes it to `*store_out`. For tests, a single process, or an L2 stand-in.
///
/// The caller owns the store and must release it with `tc_store_free`.
///
/// # Safety
/// `store_out` must be NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_store_memory_new(max_bytes: u64, store_out: *mut *const tc_store) -> tc_result {
    ffi_panic_boundary! {
        let out = try_out!(store_out);
        let store = match max_bytes {
            0 => MemoryStore::default(),
            n => MemoryStore::new(try_result!(usize::try_from(n).map_err(|_| {
                Failure::new(tc_result::InvalidArgument, "`max_bytes` does not fit in size_t")
            }))),
        };
        let store = Arc::new(store);
        out.write(to_arc_const_ptr(StoreHandle::l2(store.clone(), Layer::Memory(store), None)));
        tc_result::Ok
    }
}

/// Opens (creating it if needed) the SQLite database at `path` as a store, and writes
/// it to `*store_out`. Several processes of one host may open the same file (WAL mode).
///
/// - `busy_timeout_ms`: how long a write waits for another connection's lock before
///   failing with `TC_RESULT_LOCK_TIMEOUT`; 0 for the default (5 s).
/// - `purge_interval_secs`: purge expired rows on a background thread this often; 0
///   leaves purging to `tc_store_purge_expired`.
///
/// Fails with `TC_RESULT_IO` or `TC_RESULT_STORE_UNAVAILABLE` when the file can't be
/// opened as a database, and with `TC_RESULT_UNSUPPORTED` in a build without the
/// `sqlite` feature. The caller owns the store and must release it with
/// `tc_store_free`.
///
/// # Safety
/// `path` must be NULL or NUL-terminated; `store_out` NULL or valid for writing one
/// pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_store_sqlite_open(
    path: *const c_char,
    busy_timeout_ms: u64,
    purge_interval_secs: u64,
    store_out: *mut *const tc_store,
) -> tc_result {
    ffi_panic_boundary! {
        let path = try_str!(path);
        let out = try_out!(store_out);
        out.write(to_arc_const_ptr(try_result!(open_sqlite(path, busy_timeout_ms, purge_interval_secs))));
        tc_result::Ok
    }
}

#[cfg(feature = "sqlite")]
fn open_sqlite(path: &str, busy_timeout_ms: u64, purge_interval_secs: u64) -> Result<StoreHandle, Failure> {
    use tokencache_core::store::{SqliteOptions, SqliteStore};
    let mut options = SqliteOptions::default();
    if busy_timeout_ms != 0 {
        options.busy_timeout = Duration::from_millis(busy_timeout_ms);
    }
    options.purge_interval = (purge_interval_secs != 0).then(|| Duration::from_secs(purge_interval_secs));
    let store = Arc::new(SqliteStore::open_with(path, options)?);
    Ok(StoreHandle::l2(store.clone(), Layer::Sqlite(store.clone()), None).with_leases(store))
}

#[cfg(not(feature = "sqlite"))]
fn open_sqlite(_: &str, _: u64, _: u64) -> Result<StoreHandle, Failure> {
    Err(Failure::not_built("sqlite"))
}

/// Drops the expired blobs of the store now and writes how many to `*removed_out`
/// (stores also drop them by themselves; this is for a scheduled job). A tiered store
/// purges its L1 and its L2.
///
/// # Safety
/// `store` must be NULL or a live store; `removed_out` NULL or valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_store_purge_expired(store: *const tc_store, removed_out: *mut u64) -> tc_result {
    ffi_panic_boundary! {
        let store = try_ref_from_ptr!(store);
        let out = try_out!(removed_out);
        out.write(try_result!(store.store.purge_expired()));
        tc_result::Ok
    }
}

/// The counters of every layer of the store, in `*stats_out` (see `tc_store_stats`).
/// Cheap: atomics and, for a memory store, one short lock.
///
/// # Safety
/// `store` must be NULL or a live store; `stats_out` NULL or valid for writing one
/// `tc_store_stats`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_store_get_stats(store: *const tc_store, stats_out: *mut tc_store_stats) -> tc_result {
    ffi_panic_boundary! {
        let store = try_ref_from_ptr!(store);
        let out = try_out!(stats_out);
        out.write(store.stats());
        tc_result::Ok
    }
}

/// Releases the caller's reference to a store. `NULL` is a no-op. Stores and providers
/// built over it keep it open; the last of them to go closes it (a Redis store's
/// connections, an SQLite file).
///
/// # Safety
/// `store` must be NULL or a store from a `tc_store_*` constructor that no other thread
/// is using through this pointer and that is not used again.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_store_free(store: *const tc_store) {
    ffi_panic_boundary! {
        // SAFETY: the caller passes NULL or a store it owns and gives up here.
        unsafe { free_arc(store) }
    }
}

// A `tc_store` may be used from any thread at once: what it holds must be Send + Sync (a
// core change that broke this fails to compile here instead of racing in C programs).
const _: fn() = || {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<StoreHandle>();
};

//! Where serialized cache partitions live between requests: the [`Store`] trait and
//! its implementations. A store maps a partition key to an opaque blob (the
//! partition's JSON, possibly encrypted) with an expiry.
//!
//! - [`MemoryStore`]: in-process, LRU by bytes, sliding and absolute expiry (the L1).
//! - [`FileStore`]: one file holding a whole cache, locked the msal-extensions way.
//! - `SqliteStore` (feature `sqlite`): a database file shared by the processes of one host.
//! - `RedisStore` (feature `redis`): Redis or Redis Cluster, the distributed L2.
//! - [`TieredStore`]: an in-memory L1 over an L2, with a failure policy and a circuit breaker.
//! - `EncryptedStore` (feature `encryption`): AES-256-GCM over any store, with a key ring.
//!
//! Stores know nothing of tokens: [`crate::CacheProvider`] binds a
//! [`TokenCache`](crate::TokenCache) to one.

#[cfg(feature = "encryption")]
mod encrypted;
pub mod file;
mod lease;
mod memory;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "sqlite")]
mod sqlite;
mod tiered;

use std::sync::Arc;

use bytes::Bytes;

use crate::error::Result;

#[cfg(feature = "redis")]
pub use self::redis::{RedisOptions, RedisServerInfo, RedisStore, redis_key};
#[cfg(feature = "encryption")]
pub use encrypted::{
    EncryptedStore, EncryptionKey, EncryptionOptions, EncryptionStats, KeyId, KeyRing, envelope_key_id,
};
/// Without the `encryption` feature no key ring can exist; functions that take an
/// optional one take `None`.
#[cfg(not(feature = "encryption"))]
#[derive(Clone, Debug)]
pub enum KeyRing {}
pub use file::{FileStamp, FileStore, LockOptions};
pub use lease::{LeaseStore, MemoryLeases};
pub use memory::MemoryStore;
#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteOptions, SqliteStore};
pub use tiered::{CircuitState, EPOCH_KEY, L2FailurePolicy, L2Store, TieredOptions, TieredStats, TieredStore};

/// A monotonic time source in milliseconds (any fixed origin), injectable for tests.
pub type MillisClock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// Milliseconds since the first call in this process, from [`std::time::Instant`].
pub fn monotonic_millis_clock() -> MillisClock {
    static EPOCH: std::sync::LazyLock<std::time::Instant> = std::sync::LazyLock::new(std::time::Instant::now);
    Arc::new(|| u64::try_from(EPOCH.elapsed().as_millis()).unwrap_or(u64::MAX))
}

/// When a stored blob expires.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Expiry {
    /// Gone at this Unix time (seconds), whatever happens.
    pub absolute: Option<i64>,
    /// Gone when not read or written for this many seconds.
    pub sliding_secs: Option<i64>,
}

impl Expiry {
    /// Never expires.
    pub const NEVER: Expiry = Expiry { absolute: None, sliding_secs: None };

    /// Expires at Unix time `t`.
    pub fn at(t: i64) -> Self {
        Expiry { absolute: Some(t), sliding_secs: None }
    }

    /// The earlier of the two deadlines as seen at `now` (last access = now).
    pub fn deadline(&self, now: i64) -> Option<i64> {
        let sliding = self.sliding_secs.map(|s| now.saturating_add(s));
        match (self.absolute, sliding) {
            (Some(a), Some(s)) => Some(a.min(s)),
            (a, s) => a.or(s),
        }
    }
}

/// A key-value store of blobs with expiry. Implementations are thread-safe.
pub trait Store: Send + Sync {
    /// The blob under `key`, if present and not expired.
    fn get(&self, key: &str) -> Result<Option<Bytes>>;
    /// Stores `value` under `key`, replacing what was there.
    fn set(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<()>;
    /// Removes `key` (absent is fine).
    fn remove(&self, key: &str) -> Result<()>;
    /// Drops expired blobs now; returns how many.
    fn purge_expired(&self) -> Result<u64>;
    /// This store as a [`VersionedStore`], when it keeps a version per key (then
    /// [`crate::CacheProvider`] writes with compare-and-set and merges on conflict).
    /// `None` by default.
    fn as_versioned(&self) -> Option<&dyn VersionedStore> {
        None
    }
}

impl<S: Store + ?Sized> Store for Arc<S> {
    fn get(&self, key: &str) -> Result<Option<Bytes>> {
        (**self).get(key)
    }
    fn set(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<()> {
        (**self).set(key, value, expiry)
    }
    fn remove(&self, key: &str) -> Result<()> {
        (**self).remove(key)
    }
    fn purge_expired(&self) -> Result<u64> {
        (**self).purge_expired()
    }
    fn as_versioned(&self) -> Option<&dyn VersionedStore> {
        (**self).as_versioned()
    }
}

/// The version of a stored blob: an opaque number that changes on every write
/// (random, so a key removed and written again never repeats an old version).
/// [`Version::LEGACY`] stands for a blob written before versions existed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Version(pub u64);

impl Version {
    /// A blob stored without a version (by an older release of this library).
    pub const LEGACY: Version = Version(0);

    /// A new version, different from every other with overwhelming probability
    /// (64 random bits; never [`LEGACY`](Self::LEGACY)).
    pub fn fresh() -> Version {
        use std::hash::{BuildHasher, Hasher};
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        static KEYS: std::sync::LazyLock<std::collections::hash_map::RandomState> =
            std::sync::LazyLock::new(std::collections::hash_map::RandomState::new);
        // SipHash under per-process random keys of (counter, time, pid): unique within
        // the process by the counter, unpredictable across processes by the keys.
        let mut h = KEYS.build_hasher();
        h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
        h.write_u32(std::process::id());
        match h.finish() {
            0 => Version(1),
            v => Version(v),
        }
    }
}

/// A blob with the version it was read at.
#[derive(Clone)]
pub struct VersionedBlob {
    /// The blob.
    pub value: Bytes,
    /// Its version.
    pub version: Version,
    /// When it expires (Unix seconds), when the store knows.
    pub deadline: Option<i64>,
}

impl std::fmt::Debug for VersionedBlob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The blob holds tokens: its length only.
        f.debug_struct("VersionedBlob")
            .field("bytes", &self.value.len())
            .field("version", &self.version)
            .field("deadline", &self.deadline)
            .finish()
    }
}

/// What a [`VersionedStore::compare_and_set`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CasOutcome {
    /// The blob was written; it now has this version.
    Written(Version),
    /// The key did not hold the expected version (someone else wrote or removed
    /// it since it was read); nothing was written.
    Conflict,
}

/// A [`Store`] that keeps a version per key and can write conditionally on it
/// (optimistic concurrency). Every write — conditional or not, through
/// [`Store::set`] too — gives the key a new [`Version`].
pub trait VersionedStore: Store {
    /// The blob under `key` with its version, if present and not expired (a read
    /// like [`Store::get`]: it refreshes a sliding expiry).
    fn get_versioned(&self, key: &str) -> Result<Option<VersionedBlob>>;
    /// The version of the blob under `key` (`None` when absent), without reading
    /// the blob or touching its expiry: the cheap "has it changed?" check.
    fn version(&self, key: &str) -> Result<Option<Version>>;
    /// Writes `value` under `key` only if the key holds version `expected`
    /// (`None`: only if the key is absent), atomically.
    fn compare_and_set(&self, key: &str, expected: Option<Version>, value: Bytes, expiry: Expiry)
    -> Result<CasOutcome>;
    /// Removes `key` only if it holds version `expected`, atomically; `false`
    /// (and nothing removed) on a conflict. An absent key is a conflict.
    fn compare_and_remove(&self, key: &str, expected: Version) -> Result<bool>;
    /// Reads the blob under `key`, hands it to `update`, and writes what that
    /// returns, with other conditional writers held off meanwhile (their
    /// compare-and-set conflicts). The way out for a writer that keeps losing
    /// compare-and-set races to a faster one: [`crate::CacheProvider`] turns to it
    /// after a few conflicts in one save.
    ///
    /// [`Exclusive::Unavailable`] when the store cannot hold writers off, or another
    /// writer holds the key; the caller then goes on with compare-and-set. The
    /// default is unavailable.
    fn update_exclusive(&self, key: &str, update: &mut UpdateFn<'_>) -> Result<Exclusive> {
        let _ = (key, update);
        Ok(Exclusive::Unavailable)
    }
}

/// What [`VersionedStore::update_exclusive`] calls with the current blob (`None`:
/// absent) and writes back as it says.
pub type UpdateFn<'a> = dyn FnMut(Option<&VersionedBlob>) -> Result<Update> + 'a;

/// What to do with a blob in [`VersionedStore::update_exclusive`].
#[derive(Clone, Debug)]
pub enum Update {
    /// Leave it as it is.
    Keep,
    /// Replace it.
    Write(Bytes, Expiry),
    /// Remove it.
    Remove,
}

/// What [`VersionedStore::update_exclusive`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exclusive {
    /// Nothing: the store cannot hold writers off, or someone else holds the key.
    Unavailable,
    /// The update ran and was applied; the new version if it wrote.
    Done(Option<Version>),
}

impl<S: VersionedStore + ?Sized> VersionedStore for Arc<S> {
    fn get_versioned(&self, key: &str) -> Result<Option<VersionedBlob>> {
        (**self).get_versioned(key)
    }
    fn version(&self, key: &str) -> Result<Option<Version>> {
        (**self).version(key)
    }
    fn compare_and_set(
        &self,
        key: &str,
        expected: Option<Version>,
        value: Bytes,
        expiry: Expiry,
    ) -> Result<CasOutcome> {
        (**self).compare_and_set(key, expected, value, expiry)
    }
    fn compare_and_remove(&self, key: &str, expected: Version) -> Result<bool> {
        (**self).compare_and_remove(key, expected)
    }
    fn update_exclusive(&self, key: &str, update: &mut UpdateFn<'_>) -> Result<Exclusive> {
        (**self).update_exclusive(key, update)
    }
}

/// A blob as a store holds it, read by [`ListStore::peek`] without being touched.
#[derive(Clone)]
pub struct StoredBlob {
    /// The blob (a partition's JSON, or an encryption envelope around it).
    pub value: Bytes,
    /// The expiry it was stored with (write it back with this to keep it).
    pub expiry: Expiry,
    /// When it goes as things stand (for a sliding expiry, counted from its last use).
    pub expires_at: Option<i64>,
}

impl std::fmt::Debug for StoredBlob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The blob holds tokens: its length only.
        f.debug_struct("StoredBlob")
            .field("bytes", &self.value.len())
            .field("expiry", &self.expiry)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// A store whose blobs can be listed and read without side effects: what the
/// `tokencache` command uses to inspect, diagnose, purge and copy a store. The cache
/// itself never lists a store, so this is apart from [`Store`], and only stores with
/// a cheap way to enumerate their keys implement it (`SqliteStore`, `RedisStore`).
pub trait ListStore: Store {
    /// The key of every blob that has not expired.
    fn keys(&self) -> Result<Vec<String>>;
    /// The blob under `key` as stored, without refreshing a sliding expiry or
    /// deleting it; `None` when absent or expired.
    fn peek(&self, key: &str) -> Result<Option<StoredBlob>>;
}

/// A source of the current Unix time in seconds, injectable for tests.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The wall clock.
pub fn system_clock() -> Clock {
    Arc::new(crate::unix_now)
}

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
pub use tiered::{CircuitState, L2FailurePolicy, L2Store, TieredOptions, TieredStats, TieredStore};

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

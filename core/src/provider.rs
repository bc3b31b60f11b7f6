//! [`CacheProvider`]: a [`TokenCache`] per partition, loaded from a [`Store`] before
//! it is used and written back after, only if it changed — what
//! Microsoft.Identity.Web's `MsalAbstractTokenCacheProvider` does for web apps.
//!
//! ```
//! use tokencache::{CacheProvider, CredentialType};
//! use tokencache::store::MemoryStore;
//!
//! let provider = CacheProvider::new(MemoryStore::default());
//! let mut cache = provider.load("user-1.tenant")?;     // before access
//! cache.add_json(r#"{"client_id": "web", "scope": ["User.Read"],
//!     "token_endpoint": "https://login.microsoftonline.com/common/oauth2/v2.0/token",
//!     "response": {"access_token": "at", "expires_in": 3600}}"#, None)?;
//! cache.save()?;                                        // after access: one write
//! let again = provider.load("user-1.tenant")?;
//! assert_eq!(again.search(CredentialType::AccessToken, &["User.Read"], None, None).len(), 1);
//! # Ok::<(), tokencache::Error>(())
//! ```

use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use crate::cache::TokenCache;
use crate::error::{Error, ErrorKind, Result};
use crate::store::{Expiry, Store};

/// What a blob that is not a cache does on load.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnBadBlob {
    /// Log a warning, count it, and start the partition empty (the user signs in
    /// again; the next save replaces the bad blob).
    #[default]
    TreatAsMiss,
    /// Fail the load with the parse error.
    Fail,
}

/// Options of a [`CacheProvider`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProviderOptions {
    /// Also expire partitions not used for this long (seconds).
    pub sliding_expiration_secs: Option<i64>,
    /// Never keep a partition longer than this after a write (seconds).
    pub absolute_expiration_secs: Option<i64>,
    /// What an unreadable blob does.
    pub on_bad_blob: OnBadBlob,
}

/// Counters of a [`CacheProvider`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProviderStats {
    /// Loads that found a blob.
    pub hits: u64,
    /// Loads that found none.
    pub misses: u64,
    /// Blobs written back.
    pub writes: u64,
    /// Partitions removed because they became empty.
    pub removals: u64,
    /// Blobs that could not be read as a cache.
    pub bad_blobs: u64,
}

/// Binds token caches to a store, one partition at a time. Thread-safe when the
/// store is; each request uses its own [`PartitionCache`].
pub struct CacheProvider<S: Store> {
    store: S,
    options: ProviderOptions,
    hits: AtomicU64,
    misses: AtomicU64,
    writes: AtomicU64,
    removals: AtomicU64,
    bad_blobs: AtomicU64,
}

impl<S: Store> std::fmt::Debug for CacheProvider<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheProvider").field("options", &self.options).field("stats", &self.stats()).finish()
    }
}

/// One partition's cache, loaded from the store. Derefs to [`TokenCache`]; call
/// [`save`](Self::save) after use (dropping it without saving discards changes,
/// with a warning in the log if there were any).
pub struct PartitionCache<'a, S: Store> {
    provider: &'a CacheProvider<S>,
    key: String,
    cache: TokenCache,
    saved: bool,
}

impl<S: Store> CacheProvider<S> {
    /// A provider over `store` with default options.
    pub fn new(store: S) -> Self {
        Self::with_options(store, ProviderOptions::default())
    }

    /// A provider over `store`.
    pub fn with_options(store: S, options: ProviderOptions) -> Self {
        CacheProvider {
            store,
            options,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            removals: AtomicU64::new(0),
            bad_blobs: AtomicU64::new(0),
        }
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Counters so far.
    pub fn stats(&self) -> ProviderStats {
        ProviderStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
            removals: self.removals.load(Ordering::Relaxed),
            bad_blobs: self.bad_blobs.load(Ordering::Relaxed),
        }
    }

    /// Before access: a cache holding partition `key` as the store has it.
    pub fn load(&self, key: &str) -> Result<PartitionCache<'_, S>> {
        let cache = TokenCache::new();
        match self.store.get(key)? {
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
            }
            Some(blob) => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                let parsed = std::str::from_utf8(&blob)
                    .map_err(|_| Error::new(ErrorKind::NotACache, "the stored blob is not UTF-8 text"))
                    .and_then(|text| cache.deserialize(text));
                if let Err(e) = parsed {
                    self.bad_blobs.fetch_add(1, Ordering::Relaxed);
                    match self.options.on_bad_blob {
                        OnBadBlob::Fail => return Err(e),
                        OnBadBlob::TreatAsMiss => {
                            log::warn!(
                                "tokencache: the stored cache of partition {key:?} is unreadable ({e}); starting it empty"
                            )
                        }
                    }
                }
            }
        }
        Ok(PartitionCache { provider: self, key: key.to_owned(), cache, saved: false })
    }

    /// Loads partition `key`, runs `f` on it, and saves it if it changed.
    pub fn with_partition<R>(&self, key: &str, f: impl FnOnce(&TokenCache) -> R) -> Result<R> {
        let p = self.load(key)?;
        let out = f(&p);
        p.save()?;
        Ok(out)
    }

    fn write_back(&self, key: &str, cache: &TokenCache) -> Result<()> {
        if !cache.has_state_changed() {
            return Ok(());
        }
        if cache.is_empty() {
            self.store.remove(key)?;
            self.removals.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        let now = crate::unix_now();
        let suggested = cache.suggested_expiry(key, Some(now));
        let cap = self.options.absolute_expiration_secs.map(|s| now.saturating_add(s));
        let absolute = match (suggested, cap) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let expiry = Expiry { absolute, sliding_secs: self.options.sliding_expiration_secs };
        self.store.set(key, Bytes::from(cache.serialize()), expiry)?;
        self.writes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

impl<S: Store> PartitionCache<'_, S> {
    /// The partition key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// After access: writes the partition back if it changed (removes it from the
    /// store if it became empty), with the suggested expiry.
    pub fn save(mut self) -> Result<()> {
        self.saved = true;
        self.provider.write_back(&self.key, &self.cache)
    }
}

impl<S: Store> Deref for PartitionCache<'_, S> {
    type Target = TokenCache;
    fn deref(&self) -> &TokenCache {
        &self.cache
    }
}

impl<S: Store> Drop for PartitionCache<'_, S> {
    fn drop(&mut self) {
        if !self.saved && self.cache.has_state_changed() {
            log::warn!("tokencache: partition {:?} changed but was dropped without save()", self.key);
        }
    }
}

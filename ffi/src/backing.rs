//! What a `tc_cache` handle holds: a cache in memory, a partition a provider loaded
//! (written back by `tc_provider_save`), or a cache kept in a file (every change
//! written through to it).
//!
//! The `tc_cache_*` functions read through [`CacheHandle::current`] and change the
//! cache through the methods here, which send a file-backed cache's changes to its
//! file. So one set of functions serves all three, and none can forget the file.

use std::sync::Arc;
use std::time::Duration;

use tokencache_core::coalesce::{AccessTokenQuery, Coalescer};
use tokencache_core::{CredentialType, Entry, Map, PersistedTokenCache, TokenCache};

use crate::provider::ProviderPartition;
use crate::result::{Failure, tc_result};

/// The value behind a `tc_cache` pointer.
pub(crate) enum CacheHandle {
    /// `tc_cache_new`, `tc_cache_new_with_options`.
    Memory(TokenCache),
    /// A cache a Rust program shares with C (`tc_cache::from_arc`).
    Shared(Arc<TokenCache>),
    /// `tc_provider_load`: one partition, saved by `tc_provider_save`.
    Partition(ProviderPartition),
    /// `tc_cache_open_file`: msal-extensions' persisted cache.
    File(PersistedTokenCache),
}

impl CacheHandle {
    /// The in-memory cache, without looking at the file of a file-backed cache: for
    /// what only concerns this handle (stats, limits, callbacks, the changed flag).
    pub(crate) fn memory(&self) -> &TokenCache {
        match self {
            CacheHandle::Memory(cache) => cache,
            CacheHandle::Shared(cache) => cache,
            CacheHandle::Partition(partition) => partition.cache(),
            CacheHandle::File(persisted) => persisted.cache(),
        }
    }

    /// The cache to read: a file-backed cache first picks up what other processes
    /// wrote (a `stat` when nothing changed).
    pub(crate) fn current(&self) -> tokencache_core::Result<&TokenCache> {
        if let CacheHandle::File(persisted) = self {
            persisted.reload()?;
        }
        Ok(self.memory())
    }

    /// The cache, for a change a file-backed cache can't write through (replacing
    /// the document, a partition, or the changed flag): such a handle refuses it with
    /// `TC_RESULT_UNSUPPORTED` instead of changing memory the file would overwrite.
    pub(crate) fn unpersisted(&self, what: &str) -> Result<&TokenCache, Failure> {
        match self {
            CacheHandle::File(_) => Err(Failure::new(
                tc_result::Unsupported,
                format_args!("{what} is not available on a file-backed cache (its changes go to the file one by one)"),
            )),
            _ => Ok(self.memory()),
        }
    }

    /// A change that replaces content (the document, a partition): for a file-backed
    /// cache made under the file lock on its current content and written to the file
    /// (even though `deserialize` clears the changed flag, which it still does here).
    pub(crate) fn replace<R>(
        &self,
        change: impl FnOnce(&TokenCache) -> tokencache_core::Result<R>,
    ) -> tokencache_core::Result<R> {
        match self {
            CacheHandle::File(persisted) => {
                let out = persisted.update(|cache| {
                    let out = change(cache)?;
                    cache.set_state_changed(true);
                    Ok(out)
                })?;
                persisted.cache().set_state_changed(false);
                Ok(out)
            }
            _ => change(self.memory()),
        }
    }

    /// `TokenCache::get_or_fetch_access_token`; a file-backed cache looks in its file's
    /// current content and writes the fetched token through.
    pub(crate) fn get_or_fetch_access_token(
        &self,
        coalescer: &Coalescer<Entry, Failure>,
        query: &AccessTokenQuery,
        timeout: Duration,
        fetch: impl FnOnce() -> Result<Map, Failure>,
    ) -> Result<Entry, Failure> {
        match self {
            CacheHandle::File(persisted) => persisted.get_or_fetch_access_token(coalescer, query, timeout, fetch),
            _ => self.memory().get_or_fetch_access_token(coalescer, query, timeout, fetch),
        }
    }

    /// `TokenCache::add_json`, written through for a file-backed cache.
    pub(crate) fn add_json(&self, event: &str, now: Option<i64>) -> tokencache_core::Result<()> {
        match self {
            CacheHandle::File(persisted) => persisted.add_json(event, now),
            _ => self.memory().add_json(event, now),
        }
    }

    /// `TokenCache::search`; for a file-backed cache on the file's current content,
    /// with the expired access tokens a search drops written through.
    pub(crate) fn search(
        &self,
        ct: CredentialType,
        target: &[&str],
        query: Option<&Map>,
        now: Option<i64>,
    ) -> tokencache_core::Result<Vec<Entry>> {
        match self {
            CacheHandle::File(persisted) => persisted.search(ct, target, query, now),
            _ => Ok(self.memory().search(ct, target, query, now)),
        }
    }

    /// `TokenCache::modify`, written through.
    pub(crate) fn modify(&self, ct: CredentialType, old: &Entry, changes: Option<&Map>) -> tokencache_core::Result<()> {
        match self {
            CacheHandle::File(persisted) => persisted.modify(ct, old, changes),
            _ => self.memory().modify(ct, old, changes),
        }
    }

    /// `TokenCache::remove_rt`, written through.
    pub(crate) fn remove_rt(&self, rt: &Entry) -> tokencache_core::Result<()> {
        match self {
            CacheHandle::File(persisted) => persisted.remove_rt(rt),
            _ => self.memory().remove_rt(rt),
        }
    }

    /// `TokenCache::update_rt`, written through.
    pub(crate) fn update_rt(&self, rt: &Entry, new_rt: &str, now: Option<i64>) -> tokencache_core::Result<()> {
        match self {
            CacheHandle::File(persisted) => persisted.update_rt(rt, new_rt, now),
            _ => self.memory().update_rt(rt, new_rt, now),
        }
    }

    /// `TokenCache::remove_at`, written through.
    pub(crate) fn remove_at(&self, at: &Entry) -> tokencache_core::Result<()> {
        match self {
            CacheHandle::File(persisted) => persisted.remove_at(at),
            _ => self.memory().remove_at(at),
        }
    }

    /// `TokenCache::remove_idt`, written through.
    pub(crate) fn remove_idt(&self, idt: &Entry) -> tokencache_core::Result<()> {
        match self {
            CacheHandle::File(persisted) => persisted.remove_idt(idt),
            _ => self.memory().remove_idt(idt),
        }
    }

    /// `TokenCache::remove_account`, written through.
    pub(crate) fn remove_account(&self, account: &Entry) -> tokencache_core::Result<()> {
        match self {
            CacheHandle::File(persisted) => persisted.remove_account(account),
            _ => self.memory().remove_account(account),
        }
    }
}

// A `tc_cache` may be used from any thread at once: what it holds must be Send + Sync (a
// core change that broke this fails to compile here instead of racing in C programs).
const _: fn() = || {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<CacheHandle>();
};

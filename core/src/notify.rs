//! Before/after-access notifications, as MSAL's token cache callbacks give them: the
//! hook where an application loads a partition before the cache is read and saves
//! it after the cache was written.
//!
//! Observers are called with no lock held, so they may call back into the cache.

use crate::schema::CredentialType;

/// Which cache operation a notification is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    /// [`TokenCache::add`](crate::TokenCache::add).
    Add,
    /// [`TokenCache::search`](crate::TokenCache::search).
    Search,
    /// [`TokenCache::modify`](crate::TokenCache::modify) and the `remove_*` / `update_rt` calls.
    Modify,
    /// [`TokenCache::serialize`](crate::TokenCache::serialize) and partition export.
    Serialize,
    /// [`TokenCache::deserialize`](crate::TokenCache::deserialize) and partition import.
    Deserialize,
}

/// What an observer is told. Holds no token values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessEvent {
    /// The operation.
    pub operation: Operation,
    /// The section it concerns, when there is one.
    pub credential_type: Option<CredentialType>,
    /// The partition it concerns, when it can be told (see [`partition_key`](crate::partition_key)).
    pub partition_key: Option<String>,
    /// Before access: the cache's changed flag. After access: whether this call
    /// changed the cache (always for add and modify, never for (de)serialize; for a
    /// search, whether it dropped expired tokens) — a per-call answer, so a concurrent
    /// `serialize()` elsewhere cannot hide a change from the observer that must save it.
    pub has_state_changed: bool,
    /// After a write: how long a store should keep the partition (Unix seconds).
    pub suggested_expiry: Option<i64>,
}

/// Receives before/after-access notifications. Both methods default to doing
/// nothing. Implementations must be cheap or hand work off: they run on the
/// caller's thread.
pub trait AccessObserver: Send + Sync {
    /// Called before the cache is read or written.
    fn before_access(&self, event: &AccessEvent) {
        let _ = event;
    }
    /// Called after the cache was read or written.
    fn after_access(&self, event: &AccessEvent) {
        let _ = event;
    }
}

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
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use crate::cache::TokenCache;
use crate::error::{Error, ErrorKind, Result};
use crate::merge::{Diff, MergeDoc};
use crate::store::{CasOutcome, Exclusive, Expiry, Store, Update, Version, VersionedBlob, VersionedStore};

/// Conflicting writes a save merges and retries before it gives up.
pub const DEFAULT_MAX_MERGE_RETRIES: u32 = 16;

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
    /// Conditional writes (versioned stores) that found the partition changed
    /// since it was loaded.
    pub conflicts: u64,
    /// Merges of this side's changes onto the other writer's copy (one per
    /// conflict that left something to write).
    pub merges: u64,
    /// Conditional writes retried after a merge.
    pub retries: u64,
    /// Changes of this side dropped in merges because the other side's were newer
    /// (or removed the entry).
    pub merge_lost: u64,
    /// Saves that, after repeated conflicts, merged and wrote with the other
    /// writers held off.
    pub exclusive_saves: u64,
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
    conflicts: AtomicU64,
    merges: AtomicU64,
    retries: AtomicU64,
    merge_lost: AtomicU64,
    exclusive: AtomicU64,
    max_merge_retries: u32,
}

impl<S: Store> std::fmt::Debug for CacheProvider<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheProvider").field("options", &self.options).field("stats", &self.stats()).finish()
    }
}

/// One partition's cache, loaded from the store. Derefs to [`TokenCache`]; call
/// [`save`](Self::save) after use (dropping it without saving discards changes,
/// with a warning in the log if there were any).
///
/// [`CacheProvider::load`] gives one that borrows the provider;
/// [`CacheProvider::load_shared`] one that holds it by `Arc` (`'static`), for callers
/// that keep partitions in handles of their own (the C ABI, Python).
pub struct PartitionCache<'a, S: Store> {
    provider: ProviderRef<'a, S>,
    key: String,
    cache: TokenCache,
    saved: bool,
    /// On a versioned store: the version loaded (`None`: the key was absent) and
    /// the blob it held, the base of this writer's diff.
    loaded: Option<(Option<Version>, Option<Bytes>)>,
}

/// The provider a partition writes back through: borrowed or shared.
enum ProviderRef<'a, S: Store> {
    Borrowed(&'a CacheProvider<S>),
    Shared(Arc<CacheProvider<S>>),
}

impl<S: Store> Deref for ProviderRef<'_, S> {
    type Target = CacheProvider<S>;
    fn deref(&self) -> &CacheProvider<S> {
        match self {
            ProviderRef::Borrowed(p) => p,
            ProviderRef::Shared(p) => p,
        }
    }
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
            conflicts: AtomicU64::new(0),
            merges: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            merge_lost: AtomicU64::new(0),
            exclusive: AtomicU64::new(0),
            max_merge_retries: DEFAULT_MAX_MERGE_RETRIES,
        }
    }

    /// On a versioned store, how many times one save merges and retries after a
    /// conflicting write before failing with [`ErrorKind::LockTimeout`]. Default
    /// [`DEFAULT_MAX_MERGE_RETRIES`].
    pub fn with_max_merge_retries(mut self, retries: u32) -> Self {
        self.max_merge_retries = retries;
        self
    }

    /// Whether saves are conditional writes with merging (the store keeps versions:
    /// see [`Store::as_versioned`]).
    pub fn is_conflict_safe(&self) -> bool {
        self.store.as_versioned().is_some()
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
            conflicts: self.conflicts.load(Ordering::Relaxed),
            merges: self.merges.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            merge_lost: self.merge_lost.load(Ordering::Relaxed),
            exclusive_saves: self.exclusive.load(Ordering::Relaxed),
        }
    }

    /// Before access: a cache holding partition `key` as the store has it.
    ///
    /// On a versioned store the version read is kept, and [`PartitionCache::save`]
    /// writes only if the partition is still at that version; otherwise it merges
    /// this side's changes onto the newer copy (see [`crate::merge`]) and retries.
    pub fn load(&self, key: &str) -> Result<PartitionCache<'_, S>> {
        self.load_into(ProviderRef::Borrowed(self), key)
    }

    /// [`load`](Self::load), for a partition that holds the provider by `Arc` and so
    /// borrows nothing: it can live in a handle of its own for as long as its owner
    /// wants (the provider lives until its last partition is gone).
    pub fn load_shared(self: &Arc<Self>, key: &str) -> Result<PartitionCache<'static, S>>
    where
        S: 'static,
    {
        self.load_into(ProviderRef::Shared(self.clone()), key)
    }

    /// Whether `partition` was loaded through this provider.
    pub fn owns(&self, partition: &PartitionCache<'_, S>) -> bool {
        std::ptr::eq(&*partition.provider, self)
    }

    fn load_into<'a>(&self, provider: ProviderRef<'a, S>, key: &str) -> Result<PartitionCache<'a, S>> {
        let cache = TokenCache::new();
        let (blob, loaded) = match self.store.as_versioned() {
            Some(vs) => match vs.get_versioned(key)? {
                Some(b) => (Some(b.value.clone()), Some((Some(b.version), Some(b.value)))),
                None => (None, Some((None, None))),
            },
            None => (self.store.get(key)?, None),
        };
        match blob {
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
        Ok(PartitionCache { provider, key: key.to_owned(), cache, saved: false, loaded })
    }

    /// Loads partition `key`, runs `f` on it, and saves it if it changed.
    pub fn with_partition<R>(&self, key: &str, f: impl FnOnce(&TokenCache) -> R) -> Result<R> {
        let p = self.load(key)?;
        let out = f(&p);
        p.save()?;
        Ok(out)
    }

    /// The blob's expiry: its tokens' (all of them: the key is the application's
    /// and need not be a partition key) within the options' bounds.
    fn expiry_for(&self, cache: &TokenCache, now: i64) -> Expiry {
        let suggested = cache.suggested_expiry_of_all(Some(now));
        let cap = self.options.absolute_expiration_secs.map(|s| now.saturating_add(s));
        let absolute = match (suggested, cap) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Expiry { absolute, sliding_secs: self.options.sliding_expiration_secs }
    }

    fn write_back(
        &self,
        key: &str,
        cache: &TokenCache,
        loaded: Option<(Option<Version>, Option<Bytes>)>,
    ) -> Result<()> {
        if !cache.has_state_changed() {
            return Ok(());
        }
        if let (Some(vs), Some((version, base))) = (self.store.as_versioned(), loaded) {
            return self.write_back_versioned(vs, key, cache, version, base);
        }
        if cache.is_empty() {
            self.store.remove(key)?;
            self.removals.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        let now = crate::unix_now();
        let expiry = self.expiry_for(cache, now);
        self.store.set(key, Bytes::from(cache.serialize()), expiry)?;
        self.writes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Compare-and-set at the loaded version; on a conflict, replay this side's
    /// diff onto the current copy and try again at its version. After
    /// [`EXCLUSIVE_AFTER`] conflicts in this save, merge and write with the other
    /// writers held off ([`VersionedStore::update_exclusive`]) where the store can.
    fn write_back_versioned(
        &self,
        vs: &dyn VersionedStore,
        key: &str,
        cache: &TokenCache,
        mut expected: Option<Version>,
        base: Option<Bytes>,
    ) -> Result<()> {
        let now = crate::unix_now();
        let ours_text = cache.serialize();
        let ours = Ours { expiry: self.expiry_for(cache, now), empty: cache.is_empty(), now };
        // What to write now: (blob, expiry), or None to remove the partition.
        let mut next = (!ours.empty).then(|| (Bytes::from(ours_text.clone()), ours.expiry));
        let mut diff: Option<Diff> = None;
        let mut attempt = 0u32;
        let mut window = std::time::Instant::now();
        loop {
            let done = match (&next, expected) {
                (Some((blob, expiry)), _) => match vs.compare_and_set(key, expected, blob.clone(), *expiry)? {
                    CasOutcome::Written(_) => {
                        self.writes.fetch_add(1, Ordering::Relaxed);
                        true
                    }
                    CasOutcome::Conflict => false,
                },
                // Empty, and the key was absent when read: nothing to remove. (If
                // someone wrote it since, our diff removes nothing of theirs.)
                (None, None) => true,
                (None, Some(v)) => {
                    let removed = vs.compare_and_remove(key, v)?;
                    if removed {
                        self.removals.fetch_add(1, Ordering::Relaxed);
                    }
                    removed
                }
            };
            if done {
                return Ok(());
            }
            self.conflicts.fetch_add(1, Ordering::Relaxed);
            if attempt >= self.max_merge_retries {
                return Err(Error::new(
                    ErrorKind::LockTimeout,
                    format!(
                        "partition {key:?}: still changed by other writers after {attempt} merges; this save was not written"
                    ),
                ));
            }
            attempt += 1;
            let diff = match &diff {
                Some(d) => d,
                None => {
                    let base_doc = base
                        .as_deref()
                        .and_then(|b| std::str::from_utf8(b).ok())
                        .and_then(|t| MergeDoc::parse(t).ok())
                        .unwrap_or_default();
                    diff.insert(Diff::between(&base_doc, &MergeDoc::parse(&ours_text)?))
                }
            };
            if attempt >= EXCLUSIVE_AFTER && self.save_exclusive(vs, key, diff, &ours)? {
                return Ok(());
            }
            if attempt > 1 {
                // Conflicting again: another writer is updating this partition in a
                // loop, and each time wrote while we merged. Wait (at most twice as
                // long as our last try took, polling the cheap version check) for its
                // next write, then merge at once: that leaves us the whole of its
                // next round to write in.
                wait_for_change(vs, key, window.elapsed() * 2);
            }
            window = std::time::Instant::now();
            let current = vs.get_versioned(key)?;
            expected = current.as_ref().map(|c| c.version);
            match self.merge_onto(diff, current.as_ref(), &ours) {
                Merged::Unchanged => return Ok(()),
                Merged::Write(blob, expiry) => next = Some((blob, expiry)),
                Merged::Empty if expected.is_none() => return Ok(()),
                Merged::Empty => next = None,
            }
            self.retries.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Replays `diff` onto `current` (counting the merge and what it lost).
    fn merge_onto(&self, diff: &Diff, current: Option<&VersionedBlob>, ours: &Ours) -> Merged {
        let mut theirs = current
            .and_then(|c| std::str::from_utf8(&c.value).ok())
            .and_then(|t| MergeDoc::parse(t).ok())
            .unwrap_or_default();
        let report = diff.apply(&mut theirs, ours.now);
        self.merge_lost.fetch_add(report.lost as u64, Ordering::Relaxed);
        if !report.changed() && current.is_some() {
            // Their copy already holds everything we changed (or newer).
            return Merged::Unchanged;
        }
        self.merges.fetch_add(1, Ordering::Relaxed);
        if theirs.is_empty() {
            return Merged::Empty;
        }
        // Written as msal Python writes a cache (`json.dumps(indent=4)`), their
        // entries in their order and ours appended. The expiry is the later of ours
        // and theirs (none if either has none, as when a refresh token is there): it
        // may keep the partition longer than needed, never shorter. (A TokenCache
        // round trip would give the exact one, at twice the time between the read
        // and the write, where another writer can step in.)
        let theirs_deadline = current.and_then(|c| c.deadline);
        let absolute = match (ours.expiry.absolute, theirs_deadline) {
            _ if ours.empty => theirs_deadline,
            (Some(a), Some(b)) => Some(a.max(b)),
            _ => None,
        };
        let cap = self.options.absolute_expiration_secs.map(|s| ours.now.saturating_add(s));
        let absolute = match (absolute, cap) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Merged::Write(
            Bytes::from(theirs.into_python_text()),
            Expiry { absolute, sliding_secs: ours.expiry.sliding_secs },
        )
    }

    /// Merges and writes with other writers held off; false if the store cannot.
    fn save_exclusive(&self, vs: &dyn VersionedStore, key: &str, diff: &Diff, ours: &Ours) -> Result<bool> {
        let mut removed = false;
        let mut update = |current: Option<&VersionedBlob>| {
            removed = false;
            Ok(match self.merge_onto(diff, current, ours) {
                Merged::Unchanged => Update::Keep,
                Merged::Write(blob, expiry) => Update::Write(blob, expiry),
                Merged::Empty if current.is_none() => Update::Keep,
                Merged::Empty => {
                    removed = true;
                    Update::Remove
                }
            })
        };
        match vs.update_exclusive(key, &mut update)? {
            Exclusive::Unavailable => Ok(false),
            Exclusive::Done(written) => {
                self.exclusive.fetch_add(1, Ordering::Relaxed);
                if written.is_some() {
                    self.writes.fetch_add(1, Ordering::Relaxed);
                } else if removed {
                    self.removals.fetch_add(1, Ordering::Relaxed);
                }
                Ok(true)
            }
        }
    }
}

/// Conflicts in one save after which it asks the store to hold other writers off.
const EXCLUSIVE_AFTER: u32 = 3;

/// This side's copy, as the merges need it.
struct Ours {
    expiry: Expiry,
    empty: bool,
    now: i64,
}

/// What replaying a diff onto the current copy gave.
enum Merged {
    /// Nothing to write: the current copy holds our changes already.
    Unchanged,
    /// This blob, with this expiry.
    Write(Bytes, Expiry),
    /// Nothing left: remove the partition.
    Empty,
}

/// Polls the version of `key` until it changes (a write), for at most `bound`
/// (within 1..=50 ms); errors end the wait (the merge that follows reports them).
fn wait_for_change(vs: &dyn VersionedStore, key: &str, bound: std::time::Duration) {
    use std::time::{Duration, Instant};
    let deadline = Instant::now() + bound.clamp(Duration::from_millis(1), Duration::from_millis(50));
    let Ok(seen) = vs.version(key) else { return };
    while Instant::now() < deadline {
        match vs.version(key) {
            Ok(v) if v == seen => std::thread::sleep(Duration::from_micros(100)),
            _ => return,
        }
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
        let saved = self.try_save();
        self.saved = true; // a failure is the caller's now: no warning on drop
        saved
    }

    /// [`save`](Self::save) that keeps the partition when the write fails — its
    /// changes and the version it was loaded at — so the caller can try again (the
    /// store is back) instead of losing the tokens it just obtained. After a failure,
    /// dropping it discards the changes with a warning.
    pub fn try_save(&mut self) -> Result<()> {
        let changed = self.cache.has_state_changed();
        match self.provider.write_back(&self.key, &self.cache, self.loaded.clone()) {
            Ok(()) => {
                self.saved = true;
                Ok(())
            }
            Err(e) => {
                // `serialize` (msal's) cleared the flag; the changes are still unsaved.
                self.cache.set_state_changed(changed);
                Err(e)
            }
        }
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

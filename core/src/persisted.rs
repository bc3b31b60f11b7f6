//! [`PersistedTokenCache`]: a [`TokenCache`] kept in a file shared with other
//! processes — msal-extensions' class of the same name, done right: one locked,
//! atomic write per change (msal-extensions does five per `add`), reads only when
//! the file changed, stale locks recovered, a corrupt file moved aside instead of
//! failing every call.

use std::path::{Path, PathBuf};

use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::cache::TokenCache;
use crate::entry::Entry;
use crate::error::{Error, ErrorKind, Result};
use crate::json::{Map, MapRef};
use crate::schema::CredentialType;
use crate::store::file::{FileLock, FileStamp, FileStore, LockOptions};

/// What to do when the cache file cannot be read as a cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnCorrupt {
    /// Move it aside as `<path>.corrupt-<time>` and fail this call with
    /// [`ErrorKind::Corrupt`]; the next call starts from an empty cache.
    #[default]
    MoveAsideAndFail,
    /// Move it aside, log a warning, and go on with an empty cache.
    MoveAsideAndContinue,
}

/// Options of a [`PersistedTokenCache`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PersistOptions {
    /// How the file lock is waited for.
    pub lock: LockOptions,
    /// What a corrupt file does.
    pub on_corrupt: OnCorrupt,
}

/// A token cache persisted in one file. Every change is written through under the
/// file lock; every read first picks up changes other processes made.
pub struct PersistedTokenCache {
    cache: TokenCache,
    store: FileStore,
    on_corrupt: OnCorrupt,
    /// The file version the in-memory cache reflects.
    synced: Mutex<Option<FileStamp>>,
    reads: AtomicU64,
    writes: AtomicU64,
}

/// How often a [`PersistedTokenCache`] read and wrote its file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileIoCounts {
    /// Times the file was read because it had changed.
    pub reads: u64,
    /// Times the file was written.
    pub writes: u64,
}

impl std::fmt::Debug for PersistedTokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersistedTokenCache").field("path", &self.store.path()).field("cache", &self.cache).finish()
    }
}

impl PersistedTokenCache {
    /// Opens (or will create) the cache file at `path`, loading it now.
    pub fn open(path: impl Into<PathBuf>, options: PersistOptions) -> Result<Self> {
        let p = PersistedTokenCache {
            cache: TokenCache::new(),
            store: FileStore::new(path).with_lock_options(options.lock),
            on_corrupt: options.on_corrupt,
            synced: Mutex::new(None),
            reads: AtomicU64::new(0),
            writes: AtomicU64::new(0),
        };
        p.reload()?;
        Ok(p)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        self.store.path()
    }

    /// File reads and writes so far.
    pub fn io_counts(&self) -> FileIoCounts {
        FileIoCounts { reads: self.reads.load(Ordering::Relaxed), writes: self.writes.load(Ordering::Relaxed) }
    }

    /// The in-memory cache as of the last sync (for reads that need no fresh view).
    pub fn cache(&self) -> &TokenCache {
        &self.cache
    }

    /// Picks up the file if another process changed it. Cheap when unchanged (a stat).
    pub fn reload(&self) -> Result<()> {
        self.sync(None)
    }

    /// Reads the file if it changed. A corrupt file is handled under the lock (taken
    /// here when the caller does not hold it), re-checked there, then moved aside.
    fn sync(&self, lock: Option<&FileLock>) -> Result<()> {
        let mut synced = self.synced.lock();
        let Some((text, stamp)) = self.store.read_if_changed(*synced)? else { return Ok(()) };
        self.reads.fetch_add(1, Ordering::Relaxed);
        let err = match self.cache.deserialize(&text) {
            Ok(()) => {
                *synced = stamp;
                return Ok(());
            }
            Err(e) if matches!(e.kind(), ErrorKind::InvalidJson | ErrorKind::NotACache) => e,
            Err(e) => return Err(e),
        };
        let Some(lock) = lock else {
            // Another process may be repairing it: decide under the lock, re-reading.
            *synced = None;
            drop(synced);
            let lock = self.store.lock()?;
            return self.sync(Some(&lock));
        };
        let aside = self.store.move_aside(lock)?;
        self.cache.deserialize("")?;
        *synced = None;
        let msg = format!(
            "the token cache {} was unreadable ({}); it was moved to {}",
            self.store.path().display(),
            err.message(),
            aside.display()
        );
        match self.on_corrupt {
            OnCorrupt::MoveAsideAndFail => Err(Error::new(ErrorKind::Corrupt, msg)),
            OnCorrupt::MoveAsideAndContinue => {
                log::warn!("tokencache: {msg}; starting from an empty cache");
                Ok(())
            }
        }
    }

    /// Runs `change` on a fresh view under the file lock and writes the result once,
    /// if anything changed (`has_state_changed`). For what the methods here don't
    /// cover — replacing the document, a partition, marking it changed — with the same
    /// guarantee: other processes' writes are read first, and none is lost.
    pub fn update<R>(&self, change: impl FnOnce(&TokenCache) -> Result<R>) -> Result<R> {
        let lock = self.store.lock()?;
        self.sync(Some(&lock))?;
        let out = change(&self.cache)?;
        if self.cache.has_state_changed() {
            let text = self.cache.serialize();
            let stamp = self.store.write(&lock, &text)?;
            self.writes.fetch_add(1, Ordering::Relaxed);
            *self.synced.lock() = Some(stamp);
        }
        Ok(out)
    }

    /// [`TokenCache::add`], written through with one locked write.
    pub fn add(&self, event: &Map, now: Option<i64>) -> Result<()> {
        self.update(|c| c.add(event, now))
    }

    /// [`TokenCache::add_event`], written through with one locked write.
    pub fn add_event(&self, event: &MapRef<'_>, now: Option<i64>) -> Result<()> {
        self.update(|c| c.add_event(event, now))
    }

    /// [`TokenCache::add_json`], written through.
    pub fn add_json(&self, event: &str, now: Option<i64>) -> Result<()> {
        self.update(|c| c.add_json(event, now))
    }

    /// [`TokenCache::search`] on the file's current content. When the search drops
    /// expired access tokens (msal's behaviour), the removal is written through.
    pub fn search(
        &self,
        ct: CredentialType,
        target: &[&str],
        query: Option<&Map>,
        now: Option<i64>,
    ) -> Result<Vec<Entry>> {
        self.reload()?;
        let evicts = ct == CredentialType::AccessToken && self.cache.has_expired_access_tokens(now);
        if !evicts {
            return Ok(self.cache.search(ct, target, query, now));
        }
        self.update(|c| Ok(c.search(ct, target, query, now)))
    }

    /// [`TokenCache::modify`], written through.
    pub fn modify(&self, ct: CredentialType, old: &Entry, changes: Option<&Map>) -> Result<()> {
        self.update(|c| c.modify(ct, old, changes))
    }

    /// [`TokenCache::remove_rt`], written through.
    pub fn remove_rt(&self, rt: &Entry) -> Result<()> {
        self.update(|c| c.remove_rt(rt))
    }

    /// [`TokenCache::update_rt`], written through.
    pub fn update_rt(&self, rt: &Entry, new_rt: &str, now: Option<i64>) -> Result<()> {
        self.update(|c| c.update_rt(rt, new_rt, now))
    }

    /// [`TokenCache::remove_at`], written through.
    pub fn remove_at(&self, at: &Entry) -> Result<()> {
        self.update(|c| c.remove_at(at))
    }

    /// [`TokenCache::remove_idt`], written through.
    pub fn remove_idt(&self, idt: &Entry) -> Result<()> {
        self.update(|c| c.remove_idt(idt))
    }

    /// [`TokenCache::remove_account`], written through.
    pub fn remove_account(&self, account: &Entry) -> Result<()> {
        self.update(|c| c.remove_account(account))
    }

    /// [`TokenCache::get_app_metadata`] on the file's current content.
    pub fn get_app_metadata(&self, environment: &str, client_id: &str) -> Result<Option<Entry>> {
        self.reload()?;
        Ok(self.cache.get_app_metadata(environment, client_id))
    }

    /// The file's current content in msal Python's format.
    pub fn serialize(&self) -> Result<String> {
        self.reload()?;
        Ok(self.cache.serialize())
    }
}

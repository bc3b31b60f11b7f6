//! [`MemoryStore`]: blobs in process memory, least recently used evicted first when
//! over a byte budget, with absolute and sliding expiry.

use bytes::Bytes;
use lru::LruCache;
use parking_lot::Mutex;

use super::{
    CasOutcome, Clock, Exclusive, Expiry, Store, Update, UpdateFn, Version, VersionedBlob, VersionedStore, system_clock,
};
use crate::error::Result;

struct Item {
    value: Bytes,
    expiry: Expiry,
    /// Absolute deadline computed from `expiry` at the last access.
    deadline: Option<i64>,
    /// A fresh one per write; as an L1, the L2 version this copy was read at.
    version: Version,
    /// As an L1: when (a [`super::MillisClock`] reading) the copy was last found
    /// current in L2.
    checked_ms: u64,
}

struct Inner {
    lru: LruCache<Box<str>, Item>,
    bytes: usize,
    evicted_capacity: u64,
    evicted_expired: u64,
}

/// Blobs in memory. Size counts each blob's length plus its key's; over
/// `max_bytes`, least recently used blobs go first. Thread-safe (one mutex).
pub struct MemoryStore {
    inner: Mutex<Inner>,
    max_bytes: usize,
    clock: Clock,
}

/// The L1 default size limit, as Microsoft.Identity.Web's (500 MiB).
pub const DEFAULT_MAX_BYTES: usize = 500 * 1024 * 1024;

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_BYTES)
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.inner.lock();
        f.debug_struct("MemoryStore")
            .field("entries", &inner.lru.len())
            .field("bytes", &inner.bytes)
            .field("max_bytes", &self.max_bytes)
            .finish()
    }
}

impl MemoryStore {
    /// A store holding at most `max_bytes` of blobs and keys.
    pub fn new(max_bytes: usize) -> Self {
        Self::with_clock(max_bytes, system_clock())
    }

    /// As [`new`](Self::new), reading time from `clock`.
    pub fn with_clock(max_bytes: usize, clock: Clock) -> Self {
        MemoryStore {
            inner: Mutex::new(Inner { lru: LruCache::unbounded(), bytes: 0, evicted_capacity: 0, evicted_expired: 0 }),
            max_bytes,
            clock,
        }
    }

    /// Bytes held (blob lengths plus key lengths).
    pub fn bytes(&self) -> usize {
        self.inner.lock().bytes
    }

    /// Blobs held.
    pub fn len(&self) -> usize {
        let inner = self.inner.lock();
        // A TieredStore's epoch marker, when this is its L2, is not a blob.
        inner.lru.len() - usize::from(inner.lru.contains(super::EPOCH_KEY))
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// (evicted for capacity, dropped as expired) since creation.
    pub fn evictions(&self) -> (u64, u64) {
        let inner = self.inner.lock();
        (inner.evicted_capacity, inner.evicted_expired)
    }
}

fn cost(key: &str, value: &Bytes) -> usize {
    key.len() + value.len()
}

impl MemoryStore {
    /// The live item under `key` (touched: LRU order, sliding expiry), as
    /// `(blob, version, checked_ms, deadline)`; an expired one is dropped.
    fn read(&self, inner: &mut Inner, key: &str, now: i64) -> Option<(Bytes, Version, u64, Option<i64>)> {
        let expired = match inner.lru.get_mut(key) {
            None => return None,
            Some(item) if item.deadline.is_some_and(|d| d <= now) => true,
            Some(item) => {
                if item.expiry.sliding_secs.is_some() {
                    item.deadline = item.expiry.deadline(now);
                }
                return Some((item.value.clone(), item.version, item.checked_ms, item.deadline));
            }
        };
        if expired && let Some(item) = inner.lru.pop(key) {
            inner.bytes -= cost(key, &item.value);
            inner.evicted_expired += 1;
        }
        None
    }

    /// The version of the live item under `key`, touching nothing.
    fn current_version(inner: &Inner, key: &str, now: i64) -> Option<Version> {
        inner.lru.peek(key).filter(|i| i.deadline.is_none_or(|d| d > now)).map(|i| i.version)
    }

    fn put(&self, inner: &mut Inner, key: &str, value: Bytes, expiry: Expiry, version: Version, checked_ms: u64) {
        let now = (self.clock)();
        let size = cost(key, &value);
        if let Some(old) = inner.lru.pop(key) {
            inner.bytes -= cost(key, &old.value);
        }
        if size > self.max_bytes {
            // Larger than the whole budget: keeping it would evict everything else.
            inner.evicted_capacity += 1;
            return;
        }
        inner.bytes += size;
        inner.lru.put(key.into(), Item { value, expiry, deadline: expiry.deadline(now), version, checked_ms });
        while inner.bytes > self.max_bytes {
            match inner.lru.pop_lru() {
                Some((k, item)) => {
                    inner.bytes -= cost(&k, &item.value);
                    inner.evicted_capacity += 1;
                }
                None => break,
            }
        }
    }

    /// As an L1: the copy under `key` with the L2 version it carries and when it
    /// was last found current.
    pub(crate) fn get_tagged(&self, key: &str) -> Option<(Bytes, Version, u64)> {
        let now = (self.clock)();
        self.read(&mut self.inner.lock(), key, now).map(|(v, ver, checked, _)| (v, ver, checked))
    }

    /// As an L1: stores a copy of L2's blob at `version`, found current at `checked_ms`.
    pub(crate) fn set_tagged(&self, key: &str, value: Bytes, expiry: Expiry, version: Version, checked_ms: u64) {
        self.put(&mut self.inner.lock(), key, value, expiry, version, checked_ms);
    }

    /// As an L1: the copy under `key` is still `version` in L2 as of `checked_ms`.
    pub(crate) fn mark_checked(&self, key: &str, version: Version, checked_ms: u64) {
        if let Some(item) = self.inner.lock().lru.peek_mut(key)
            && item.version == version
        {
            item.checked_ms = checked_ms;
        }
    }

    /// As an L1: the copy under `key`, if still at `from`, is now L2's `to` as of
    /// `checked_ms` (it was written back).
    pub(crate) fn retag(&self, key: &str, from: Version, to: Version, checked_ms: u64) {
        if let Some(item) = self.inner.lock().lru.peek_mut(key)
            && item.version == from
        {
            item.version = to;
            item.checked_ms = checked_ms;
        }
    }

    /// As an L1: drops the copy under `key` if it is still at `version`.
    pub(crate) fn remove_if_version(&self, key: &str, version: Version) {
        let mut inner = self.inner.lock();
        if inner.lru.peek(key).is_some_and(|i| i.version == version)
            && let Some(item) = inner.lru.pop(key)
        {
            inner.bytes -= cost(key, &item.value);
        }
    }
}

impl VersionedStore for MemoryStore {
    fn get_versioned(&self, key: &str) -> Result<Option<VersionedBlob>> {
        let now = (self.clock)();
        let found = self.read(&mut self.inner.lock(), key, now);
        Ok(found.map(|(value, version, _, deadline)| VersionedBlob { value, version, deadline }))
    }

    fn version(&self, key: &str) -> Result<Option<Version>> {
        let now = (self.clock)();
        Ok(Self::current_version(&self.inner.lock(), key, now))
    }

    fn compare_and_set(
        &self,
        key: &str,
        expected: Option<Version>,
        value: Bytes,
        expiry: Expiry,
    ) -> Result<CasOutcome> {
        let now = (self.clock)();
        let mut inner = self.inner.lock();
        if Self::current_version(&inner, key, now) != expected {
            return Ok(CasOutcome::Conflict);
        }
        let version = Version::fresh();
        self.put(&mut inner, key, value, expiry, version, 0);
        Ok(CasOutcome::Written(version))
    }

    fn compare_and_remove(&self, key: &str, expected: Version) -> Result<bool> {
        let now = (self.clock)();
        let mut inner = self.inner.lock();
        if Self::current_version(&inner, key, now) != Some(expected) {
            return Ok(false);
        }
        if let Some(item) = inner.lru.pop(key) {
            inner.bytes -= cost(key, &item.value);
        }
        Ok(true)
    }

    /// Under the store's lock: no other write happens meanwhile.
    fn update_exclusive(&self, key: &str, update: &mut UpdateFn<'_>) -> Result<Exclusive> {
        let now = (self.clock)();
        let mut inner = self.inner.lock();
        let current = self.read(&mut inner, key, now).map(|(value, version, _, deadline)| VersionedBlob {
            value,
            version,
            deadline,
        });
        match update(current.as_ref())? {
            Update::Keep => Ok(Exclusive::Done(None)),
            Update::Remove => {
                if let Some(item) = inner.lru.pop(key) {
                    inner.bytes -= cost(key, &item.value);
                }
                Ok(Exclusive::Done(None))
            }
            Update::Write(value, expiry) => {
                let version = Version::fresh();
                self.put(&mut inner, key, value, expiry, version, 0);
                Ok(Exclusive::Done(Some(version)))
            }
        }
    }
}

impl Store for MemoryStore {
    fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let now = (self.clock)();
        Ok(self.read(&mut self.inner.lock(), key, now).map(|(v, ..)| v))
    }

    fn set(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<()> {
        self.put(&mut self.inner.lock(), key, value, expiry, Version::fresh(), 0);
        Ok(())
    }

    fn as_versioned(&self) -> Option<&dyn VersionedStore> {
        Some(self)
    }

    fn remove(&self, key: &str) -> Result<()> {
        let mut inner = self.inner.lock();
        if let Some(item) = inner.lru.pop(key) {
            inner.bytes -= cost(key, &item.value);
        }
        Ok(())
    }

    fn purge_expired(&self) -> Result<u64> {
        let now = (self.clock)();
        let mut inner = self.inner.lock();
        let dead: Vec<Box<str>> =
            inner.lru.iter().filter(|(_, i)| i.deadline.is_some_and(|d| d <= now)).map(|(k, _)| k.clone()).collect();
        for k in &dead {
            if let Some(item) = inner.lru.pop(k.as_ref()) {
                inner.bytes -= cost(k, &item.value);
            }
        }
        inner.evicted_expired += dead.len() as u64;
        Ok(dead.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicI64, Ordering};

    use super::*;

    #[test]
    fn lru_by_bytes_and_expiry() {
        let t = Arc::new(AtomicI64::new(1000));
        let t2 = t.clone();
        let s = MemoryStore::with_clock(100, Arc::new(move || t2.load(Ordering::SeqCst)));
        s.set("a", Bytes::from(vec![0; 40]), Expiry::NEVER).unwrap();
        s.set("b", Bytes::from(vec![0; 40]), Expiry { absolute: None, sliding_secs: Some(10) }).unwrap();
        assert!(s.get("a").unwrap().is_some()); // a is now more recent than b
        s.set("c", Bytes::from(vec![0; 40]), Expiry::at(1005)).unwrap();
        assert!(s.get("b").unwrap().is_none(), "b was least recently used");
        assert!(s.bytes() <= 100);
        t.store(1006, Ordering::SeqCst);
        assert!(s.get("c").unwrap().is_none(), "absolute expiry");
        assert!(s.get("a").unwrap().is_some());
        s.set("big", Bytes::from(vec![0; 200]), Expiry::NEVER).unwrap();
        assert!(s.get("big").unwrap().is_none() && s.get("a").unwrap().is_some(), "oversized blobs are not kept");
    }

    #[test]
    fn sliding_expiry_extends_on_read() {
        let t = Arc::new(AtomicI64::new(0));
        let t2 = t.clone();
        let s = MemoryStore::with_clock(1 << 20, Arc::new(move || t2.load(Ordering::SeqCst)));
        s.set("k", Bytes::from_static(b"v"), Expiry { absolute: Some(100), sliding_secs: Some(10) }).unwrap();
        for now in [5, 14, 23, 32] {
            t.store(now, Ordering::SeqCst);
            assert!(s.get("k").unwrap().is_some(), "read at {now} keeps it alive");
        }
        t.store(50, Ordering::SeqCst);
        assert_eq!(s.purge_expired().unwrap(), 1);
        assert!(s.is_empty());
    }
}

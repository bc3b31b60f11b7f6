//! Bounded memory: limits in entries and bytes with least-recently-used eviction of
//! whole partitions, plus absolute and sliding expiration of partitions.

use std::collections::BTreeSet;

use lru::LruCache;

/// Optional bounds for a [`TokenCache`](crate::TokenCache). All `None` (the default)
/// means unbounded, as msal is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheLimits {
    /// At most this many entries; least recently used partitions go first.
    pub max_entries: Option<usize>,
    /// At most about this many bytes of entries (their stored size).
    pub max_bytes: Option<usize>,
    /// A partition is dropped this many seconds after it was first written.
    pub absolute_expiration_secs: Option<i64>,
    /// A partition is dropped when not used for this many seconds.
    pub sliding_expiration_secs: Option<i64>,
}

impl CacheLimits {
    pub(crate) fn is_unbounded(&self) -> bool {
        *self == CacheLimits::default()
    }
}

/// Why partitions were evicted, counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvictionCounts {
    /// Partitions dropped to stay within `max_entries` / `max_bytes`.
    pub capacity: u64,
    /// Partitions dropped by `absolute_expiration_secs`.
    pub absolute: u64,
    /// Partitions dropped by `sliding_expiration_secs`.
    pub sliding: u64,
    /// Expired access tokens removed by searches (msal's behaviour).
    pub expired_tokens: u64,
}

struct Usage {
    entries: usize,
    bytes: usize,
    created: i64,
    last_access: i64,
}

/// Usage per partition and in total, in least-recently-used order.
pub(crate) struct Limiter {
    pub limits: CacheLimits,
    lru: LruCache<u64, Usage>,
    by_created: BTreeSet<(i64, u64)>,
    entries: usize,
    bytes: usize,
}

/// Why a partition is being evicted.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Reason {
    Capacity,
    Absolute,
    Sliding,
}

impl Limiter {
    pub(crate) fn new(limits: CacheLimits) -> Self {
        Limiter { limits, lru: LruCache::unbounded(), by_created: BTreeSet::new(), entries: 0, bytes: 0 }
    }

    pub(crate) fn added(&mut self, partition: Option<u64>, bytes: usize, now: i64) {
        self.entries += 1;
        self.bytes += bytes;
        if let Some(p) = partition {
            if let Some(u) = self.lru.get_mut(&p) {
                u.entries += 1;
                u.bytes += bytes;
                u.last_access = now;
            } else {
                self.lru.put(p, Usage { entries: 1, bytes, created: now, last_access: now });
                self.by_created.insert((now, p));
            }
        }
    }

    pub(crate) fn removed(&mut self, partition: Option<u64>, bytes: usize) {
        self.entries = self.entries.saturating_sub(1);
        self.bytes = self.bytes.saturating_sub(bytes);
        if let Some(p) = partition
            && let Some(u) = self.lru.peek_mut(&p)
        {
            u.entries = u.entries.saturating_sub(1);
            u.bytes = u.bytes.saturating_sub(bytes);
            if u.entries == 0 {
                let created = u.created;
                self.lru.pop(&p);
                self.by_created.remove(&(created, p));
            }
        }
    }

    pub(crate) fn touch(&mut self, partition: u64, now: i64) {
        if let Some(u) = self.lru.get_mut(&partition) {
            u.last_access = u.last_access.max(now);
        }
    }

    fn over_capacity(&self) -> bool {
        self.limits.max_entries.is_some_and(|m| self.entries > m)
            || self.limits.max_bytes.is_some_and(|m| self.bytes > m)
    }

    /// The next partition to evict and why, if any is due at `now`. `protect` is
    /// never chosen for capacity (the partition just written).
    pub(crate) fn next_victim(&self, now: i64, protect: Option<u64>) -> Option<(u64, Reason)> {
        if let Some(sliding) = self.limits.sliding_expiration_secs
            && let Some((p, u)) = self.lru.peek_lru()
            && u.last_access.saturating_add(sliding) < now
        {
            return Some((*p, Reason::Sliding));
        }
        if let Some(abs) = self.limits.absolute_expiration_secs
            && let Some((created, p)) = self.by_created.first()
            && created.saturating_add(abs) < now
        {
            return Some((*p, Reason::Absolute));
        }
        if self.over_capacity() {
            return self.lru.iter().rev().map(|(p, _)| *p).find(|p| Some(*p) != protect).map(|p| (p, Reason::Capacity));
        }
        None
    }

    /// Whether anything expires at or before `now` (cheap: two peeks).
    pub(crate) fn expiry_due(&self, now: i64) -> bool {
        self.next_victim(now, None).is_some_and(|(_, r)| r != Reason::Capacity)
    }

    pub(crate) fn totals(&self) -> (usize, usize, usize) {
        (self.entries, self.bytes, self.lru.len())
    }

    /// Forgets a partition's usage (after its entries were removed some other way).
    pub(crate) fn forget(&mut self, partition: u64) {
        if let Some(u) = self.lru.pop(&partition) {
            self.by_created.remove(&(u.created, partition));
            self.entries = self.entries.saturating_sub(u.entries);
            self.bytes = self.bytes.saturating_sub(u.bytes);
        }
    }
}

//! How a [`TieredStore`] keeps what L1 holds through an L2 outage and an L2 that
//! lost its data:
//!
//! - **Write-back.** A write or removal that reached L1 alone, because L2 could not
//!   be reached ([`L2FailurePolicy::ServeFromL1`](super::L2FailurePolicy)), is kept
//!   with the version it was computed from, served to this instance's reads, and
//!   written to L2 once L2 answers again: conditionally, so that a newer write
//!   another instance made meanwhile is not overwritten (that write wins, and the
//!   loss is counted and logged).
//! - **The epoch.** L2 holds a marker written once ([`EPOCH_KEY`]). A partition
//!   missing from L2 while the marker is intact was removed (by another instance, or
//!   it expired): the L1 copy is dropped. With the marker gone or changed, L2 lost
//!   its data (a restart without persistence, a flush): the L1 copy is written back
//!   instead of dropped, and so is a save computed from it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::Bytes;

use super::{L2Store, TieredStore, UNKNOWN};
use crate::error::Result;
use crate::store::{CasOutcome, Expiry, Store, Version, VersionedBlob, VersionedStore};

/// The L2 key of the epoch marker. A partition key never has this form (no SDK
/// writes `#`); store listings leave it out.
pub const EPOCH_KEY: &str = "#tokencache-l2-epoch";

/// A change L2 has not seen yet.
#[derive(Clone)]
pub(super) enum Change {
    Write { value: Bytes, expiry: Expiry, base: Base },
    Remove { base: Base },
}

/// What a kept change was computed from.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Base {
    /// Nothing: a plain `set` or `remove`, applied whatever L2 holds.
    Any,
    /// The blob at this version (`None`: no blob): applied only while L2 still
    /// holds that, as the compare-and-set it was.
    Version(Option<Version>),
}

impl Change {
    fn base(&self) -> Base {
        match self {
            Change::Write { base, .. } | Change::Remove { base } => *base,
        }
    }
}

struct Kept {
    change: Change,
    serial: u64,
    /// When it was kept (version-clock milliseconds).
    at_ms: u64,
    /// A thread is writing it back: the others leave it alone (a second conditional
    /// write of it would conflict with the first and count a loss that is none).
    applying: bool,
}

#[derive(Default)]
struct KeptMap {
    map: HashMap<String, Kept>,
    bytes: usize,
    serial: u64,
}

fn cost(key: &str, change: &Change) -> usize {
    key.len() + if let Change::Write { value, .. } = change { value.len() } else { 0 }
}

/// The write-back and epoch state of a [`TieredStore`].
#[derive(Default)]
pub(super) struct Recovery {
    kept: parking_lot::Mutex<KeptMap>,
    has_kept: AtomicBool,
    writing_back: AtomicBool,
    /// No write-back before this (milliseconds of the version clock) after one failed.
    retry_at_ms: AtomicU64,
    epoch: parking_lot::Mutex<Option<Bytes>>,
    epoch_known: AtomicBool,
    /// When this instance last found that L2 lost its data (version-clock
    /// milliseconds; 0: never): what was checked or kept before then predates it.
    lost_at_ms: AtomicU64,
    pub(super) written_back: AtomicU64,
    pub(super) lost: AtomicU64,
    pub(super) restored: AtomicU64,
}

impl Recovery {
    pub(super) fn kept_count(&self) -> usize {
        self.kept.lock().map.len()
    }
}

impl<L2: L2Store> TieredStore<L2> {
    /// Keeps `change` of `key` for write-back, over an older kept change of the key
    /// (whose base it keeps: the new change was computed from the old). `false` when
    /// it would take the kept changes over `l1_max_bytes`: the caller then reports
    /// the outage instead of pretending the write was kept.
    pub(super) fn keep(&self, key: &str, change: Change) -> bool {
        let mut kept = self.recovery.kept.lock();
        let old = kept.map.get(key).map(|k| (cost(key, &k.change), k.change.base()));
        let freed = old.map_or(0, |(c, _)| c);
        let added = cost(key, &change);
        if kept.bytes - freed + added > self.opts.l1_max_bytes.max(added) {
            log::error!("tiered store: L2 unreachable and {} bytes of writes already wait for it", kept.bytes);
            return false;
        }
        let change = match (old.map(|(_, base)| base), change) {
            (Some(base), Change::Write { value, expiry, .. }) => Change::Write { value, expiry, base },
            (Some(base), Change::Remove { .. }) => Change::Remove { base },
            (None, c) => c,
        };
        kept.serial += 1;
        let serial = kept.serial;
        kept.bytes = kept.bytes - freed + added;
        let at_ms = self.now_ms();
        kept.map.insert(key.to_owned(), Kept { change, serial, at_ms, applying: false });
        self.recovery.has_kept.store(true, Ordering::Release);
        self.retry_later();
        true
    }

    /// L2 just failed: no write-back before a check interval has passed.
    fn retry_later(&self) {
        let retry = self.now_ms().saturating_add(self.check_interval_ms().max(1));
        self.recovery.retry_at_ms.store(retry, Ordering::Relaxed);
    }

    fn may_retry(&self) -> bool {
        self.now_ms() >= self.recovery.retry_at_ms.load(Ordering::Relaxed)
    }

    /// Forgets the kept change of `key` (L2 now has a newer write of it).
    pub(super) fn forget(&self, key: &str) {
        if !self.recovery.has_kept.load(Ordering::Acquire) {
            return;
        }
        let mut kept = self.recovery.kept.lock();
        if let Some(k) = kept.map.remove(key) {
            kept.bytes -= cost(key, &k.change);
        }
        self.recovery.has_kept.store(!kept.map.is_empty(), Ordering::Release);
    }

    /// The change of `key` L2 has not seen, after one more try at writing it back
    /// (unless L2 failed less than a check interval ago).
    pub(super) fn unwritten(&self, key: &str) -> Option<Change> {
        if !self.recovery.has_kept.load(Ordering::Acquire) {
            return None;
        }
        let (change, serial) = self.recovery.kept.lock().map.get(key).map(|k| (k.change.clone(), k.serial))?;
        if !self.may_retry() {
            return Some(change);
        }
        if self.write_back_one(key, serial).is_err() {
            self.retry_later();
        }
        // Still kept: L2 failed, or another thread is writing it back right now.
        self.recovery.kept.lock().map.get(key).map(|k| k.change.clone())
    }

    /// Writes the change kept for `key` back now, whenever L2 last failed (the caller
    /// just heard from L2).
    pub(super) fn write_back_key(&self, key: &str) {
        if !self.recovery.has_kept.load(Ordering::Acquire) {
            return;
        }
        let serial = self.recovery.kept.lock().map.get(key).map(|k| k.serial);
        if let Some(serial) = serial
            && self.write_back_one(key, serial).is_err()
        {
            self.retry_later();
        }
    }

    /// The kept change as a read sees it (counted as an L1 hit, or a miss).
    pub(super) fn as_read(&self, change: Change) -> Option<VersionedBlob> {
        match change {
            Change::Write { value, expiry, .. } => {
                self.l1_hits.fetch_add(1, Ordering::Relaxed);
                Some(VersionedBlob { value, version: UNKNOWN, deadline: expiry.absolute })
            }
            Change::Remove { .. } => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// Writes the kept changes back to L2, unless there are none, another thread is
    /// at it, or the last try failed less than a check interval ago.
    pub(super) fn write_back(&self) {
        if !self.recovery.has_kept.load(Ordering::Acquire)
            || !self.may_retry()
            || self.recovery.writing_back.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let keys: Vec<(String, u64)> =
            self.recovery.kept.lock().map.iter().map(|(k, v)| (k.clone(), v.serial)).collect();
        for (key, serial) in keys {
            if self.write_back_one(&key, serial).is_err() {
                self.retry_later();
                break;
            }
        }
        self.recovery.writing_back.store(false, Ordering::Release);
    }

    /// Applies the change kept for `key` as `serial` (unless it was replaced since, or
    /// another thread is at it) to L2; forgets it when applied or lost to a newer
    /// write (`Err`: L2 still unreachable, the change stays kept).
    fn write_back_one(&self, key: &str, serial: u64) -> Result<()> {
        let (change, at_ms) = {
            let mut kept = self.recovery.kept.lock();
            match kept.map.get_mut(key) {
                Some(k) if k.serial == serial && !k.applying => {
                    k.applying = true;
                    (k.change.clone(), k.at_ms)
                }
                _ => return Ok(()), // written back, replaced, or being written back
            }
        };
        let result = self.apply(key, &change, at_ms);
        let mut kept = self.recovery.kept.lock();
        if let Some(k) = kept.map.get_mut(key)
            && k.serial == serial
        {
            if result.is_ok() {
                let k = kept.map.remove(key).expect("present");
                kept.bytes -= cost(key, &k.change);
            } else {
                k.applying = false;
            }
        }
        self.recovery.has_kept.store(!kept.map.is_empty(), Ordering::Release);
        result
    }

    /// Writes one kept change to L2 (`Err`: L2 still unreachable).
    fn apply(&self, key: &str, change: &Change, at_ms: u64) -> Result<()> {
        let applied = match (change, self.l2.as_versioned()) {
            (Change::Write { value, expiry, base: Base::Any }, _) => {
                self.call_l2("write-back", || self.l2.set(key, value.clone(), *expiry)).map(|()| true)?
            }
            (Change::Remove { base: Base::Any }, _) => {
                self.call_l2("write-back", || self.l2.remove(key)).map(|()| true)?
            }
            (Change::Write { value, expiry, base: Base::Version(expected) }, Some(vs)) => {
                match self.conditional_write(vs, key, *expected, value, *expiry, Some(at_ms))? {
                    CasOutcome::Written(v) => {
                        if let Some(l1) = &self.l1 {
                            let now = (self.opts.clock)();
                            l1.set_tagged(
                                key,
                                value.clone(),
                                self.l1_expiry(expiry.deadline(now), now),
                                v,
                                self.now_ms(),
                            );
                        }
                        true
                    }
                    CasOutcome::Conflict => false,
                }
            }
            (Change::Remove { base: Base::Version(expected) }, Some(vs)) => match expected {
                Some(v) => {
                    self.call_l2("write-back", || vs.compare_and_remove(key, *v))?
                        || self.call_l2("write-back", || vs.version(key))?.is_none()
                }
                None => self.call_l2("write-back", || vs.version(key))?.is_none(),
            },
            // Conditional changes are only kept over a versioned L2.
            (_, None) => true,
        };
        if applied {
            self.recovery.written_back.fetch_add(1, Ordering::Relaxed);
            log::info!("tiered store: a change made while L2 was unreachable was written back");
        } else {
            self.recovery.lost.fetch_add(1, Ordering::Relaxed);
            log::warn!(
                "tiered store: a change made while L2 was unreachable lost to another instance's newer write of the \
                 partition"
            );
            if let Some(l1) = &self.l1 {
                l1.remove(key)?;
            }
        }
        Ok(())
    }

    /// Compare-and-set on L2; where the blob `expected` names is missing because L2
    /// lost its data, a write as if it were there (the blob this write was computed
    /// from was L2's before the loss). `seen_ms`: when that blob was last known to be
    /// L2's, if known.
    pub(super) fn conditional_write(
        &self,
        vs: &dyn VersionedStore,
        key: &str,
        expected: Option<Version>,
        value: &Bytes,
        expiry: Expiry,
        seen_ms: Option<u64>,
    ) -> Result<CasOutcome> {
        let out = self.call_l2("conditional write", || vs.compare_and_set(key, expected, value.clone(), expiry))?;
        if out != CasOutcome::Conflict
            || expected.is_none()
            || self.call_l2("version check", || vs.version(key))?.is_some()
            || !(self.l2_lost_data(vs)? || seen_ms.is_some_and(|t| self.predates_loss(t)))
        {
            return Ok(out);
        }
        let out = self.call_l2("conditional write", || vs.compare_and_set(key, None, value.clone(), expiry))?;
        if let CasOutcome::Written(_) = out {
            self.recovery.restored.fetch_add(1, Ordering::Relaxed);
        }
        Ok(out)
    }

    /// Writes `value`, the L1 copy of a blob L2 lost, back to L2; its new version,
    /// or `None` when another instance wrote the key first.
    pub(super) fn restore(&self, vs: &dyn VersionedStore, key: &str, value: &Bytes) -> Result<Option<Version>> {
        let now = (self.opts.clock)();
        let expiry = self.l2_expiry(Expiry::at(now.saturating_add(super::secs(self.opts.l1_backfill_ttl))), now);
        match self.call_l2("restore", || vs.compare_and_set(key, None, value.clone(), expiry))? {
            CasOutcome::Written(v) => {
                self.recovery.restored.fetch_add(1, Ordering::Relaxed);
                log::warn!("tiered store: L2 lost its data (its epoch marker is gone); an L1 copy was written back");
                Ok(Some(v))
            }
            CasOutcome::Conflict => Ok(None),
        }
    }

    /// Learns L2's epoch marker (writing one if there is none) the first time this
    /// instance has a copy worth keeping.
    pub(super) fn note_epoch(&self, vs: &dyn VersionedStore) {
        if self.recovery.epoch_known.load(Ordering::Acquire) {
            return;
        }
        if let Ok(epoch) = self.read_or_write_epoch(vs) {
            *self.recovery.epoch.lock() = Some(epoch);
            self.recovery.epoch_known.store(true, Ordering::Release);
        }
    }

    /// Whether L2 lost its data since this instance learnt its epoch: the marker is
    /// gone (a new one is written) or another instance wrote a new one.
    pub(super) fn l2_lost_data(&self, vs: &dyn VersionedStore) -> Result<bool> {
        let known = self.recovery.epoch.lock().clone();
        let now = self.read_or_write_epoch(vs)?;
        *self.recovery.epoch.lock() = Some(now.clone());
        self.recovery.epoch_known.store(true, Ordering::Release);
        let lost = known.is_some_and(|k| k != now);
        if lost {
            self.recovery.lost_at_ms.store(self.now_ms().max(1), Ordering::Release);
        }
        Ok(lost)
    }

    /// Whether something last known at `t_ms` (version-clock milliseconds) predates
    /// the last loss of L2's data this instance found (another thread may have found
    /// it: the epoch is then already the new one).
    pub(super) fn predates_loss(&self, t_ms: u64) -> bool {
        let lost = self.recovery.lost_at_ms.load(Ordering::Acquire);
        lost > 0 && t_ms < lost
    }

    fn read_or_write_epoch(&self, vs: &dyn VersionedStore) -> Result<Bytes> {
        if let Some(b) = self.call_l2("epoch read", || vs.get_versioned(EPOCH_KEY))? {
            return Ok(b.value);
        }
        let fresh = Bytes::from(format!("{:016x}{:016x}", Version::fresh().0, Version::fresh().0));
        match self.call_l2("epoch write", || vs.compare_and_set(EPOCH_KEY, None, fresh.clone(), Expiry::NEVER))? {
            CasOutcome::Written(_) => Ok(fresh),
            CasOutcome::Conflict => {
                Ok(self.call_l2("epoch read", || vs.get_versioned(EPOCH_KEY))?.map_or(fresh, |b| b.value))
            }
        }
    }
}

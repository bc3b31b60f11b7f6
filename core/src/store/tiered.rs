//! [`TieredStore`]: an in-memory L1 over a shared L2, with a failure policy, a
//! circuit breaker and stats.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::memory::DEFAULT_MAX_BYTES;
use super::{
    CasOutcome, Clock, Exclusive, Expiry, MemoryStore, MillisClock, Store, Update, UpdateFn, Version, VersionedBlob,
    VersionedStore, monotonic_millis_clock, system_clock,
};
use crate::error::{Error, ErrorKind, Result};

mod recovery;

pub use recovery::EPOCH_KEY;
use recovery::{Base, Change, Recovery};

/// A [`Store`] that can serve as a [`TieredStore`]'s L2: besides the blob, it can
/// tell when the blob expires, so the L1 copy made from it never outlives it.
///
/// A store that cannot tell keeps the default, and its L1 copies live at most
/// [`TieredOptions::l1_backfill_ttl`].
pub trait L2Store: Store {
    /// As [`Store::get`], with the blob's deadline (Unix seconds) when it has one
    /// and the store knows it.
    fn get_with_deadline(&self, key: &str) -> Result<Option<(Bytes, Option<i64>)>> {
        Ok(self.get(key)?.map(|b| (b, None)))
    }
}

impl L2Store for MemoryStore {}

impl<S: L2Store + ?Sized> L2Store for Arc<S> {
    fn get_with_deadline(&self, key: &str) -> Result<Option<(Bytes, Option<i64>)>> {
        (**self).get_with_deadline(key)
    }
}

/// What a [`TieredStore`] does when an L2 operation fails (or is skipped because
/// the circuit breaker is open). Every failure is logged and counted whatever the
/// policy.
///
/// A failure here is an outage: [`ErrorKind::StoreUnavailable`], [`ErrorKind::Io`],
/// [`ErrorKind::LockTimeout`]. An L2 that answers with a blob that cannot be read
/// ([`ErrorKind::KeyMismatch`], [`ErrorKind::DecryptionFailed`], ...) is not down:
/// that error reaches the caller under every policy, without retry, and does not
/// count towards the circuit breaker.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum L2FailurePolicy {
    /// Try the operation once more at once; if that fails too, return the error.
    /// (Microsoft.Identity.Web's `OnL2CacheFailure` returning true, as its
    /// documentation describes it.)
    RetryOnce,
    /// Carry on with L1 alone: a read that missed L1 is a miss, a write or remove
    /// reaches L1 only and is written back to L2 once it answers again (see
    /// [`TieredStore`]'s "write-back"). Microsoft.Identity.Web's default (without the
    /// write-back: there the write is lost).
    #[default]
    ServeFromL1,
    /// Return the error to the caller. L1 was still updated by a write.
    Propagate,
}

/// Options of a [`TieredStore`], named after Microsoft.Identity.Web's
/// `MsalDistributedTokenCacheAdapterOptions` where one exists.
#[derive(Clone)]
pub struct TieredOptions {
    /// L1 size limit in bytes (blob plus key lengths). Default 500 MiB.
    pub l1_max_bytes: usize,
    /// No L1: every read goes to L2. For several apps sharing one L2, where an
    /// L1 copy could be stale. Default false.
    pub disable_l1: bool,
    /// L1 lifetime = L2 lifetime × this ratio, in (0, 1]. Default 1.
    pub l1_expiration_ratio: f64,
    /// Caps every entry's lifetime (L1 and L2) from its write. Default none.
    pub absolute_expiration_relative_to_now: Option<Duration>,
    /// Sliding expiration for entries written without one. Default none.
    pub sliding_expiration: Option<Duration>,
    /// Lifetime of an L1 copy made from an L2 read (before the ratio). Default 5 min.
    pub l1_backfill_ttl: Duration,
    /// What an L2 failure does. Default [`L2FailurePolicy::ServeFromL1`].
    pub on_l2_failure: L2FailurePolicy,
    /// Consecutive failed L2 operations that open the circuit; 0 disables the
    /// breaker. Default 3.
    pub circuit_failure_threshold: u32,
    /// How long an open circuit skips L2 before one operation probes it. Default 10 s.
    pub circuit_cool_down: Duration,
    /// Source of the current time for expiry (tests inject one). The breaker and
    /// the latency histogram use the monotonic clock.
    pub clock: Clock,
    /// With an L2 that keeps versions ([`Store::as_versioned`]): how often a read
    /// served from L1 first asks L2 whether its copy is still current (one small
    /// round trip, the version alone), dropping it when L2 has a newer one — so
    /// another instance's write reaches this one's reads within this interval
    /// (Microsoft.Identity.Web #1388: a token without MFA served from a stale L1
    /// after MFA was done elsewhere). Zero checks on every read. Default 1 s.
    pub l2_version_check_interval: Duration,
    /// Milliseconds for [`l2_version_check_interval`](Self::l2_version_check_interval)
    /// (tests inject one). Default: monotonic.
    pub version_clock: MillisClock,
}

impl Default for TieredOptions {
    fn default() -> Self {
        TieredOptions {
            l1_max_bytes: DEFAULT_MAX_BYTES,
            disable_l1: false,
            l1_expiration_ratio: 1.0,
            absolute_expiration_relative_to_now: None,
            sliding_expiration: None,
            l1_backfill_ttl: Duration::from_secs(300),
            on_l2_failure: L2FailurePolicy::default(),
            circuit_failure_threshold: 3,
            circuit_cool_down: Duration::from_secs(10),
            clock: system_clock(),
            l2_version_check_interval: Duration::from_secs(1),
            version_clock: monotonic_millis_clock(),
        }
    }
}

impl std::fmt::Debug for TieredOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TieredOptions")
            .field("l1_max_bytes", &self.l1_max_bytes)
            .field("disable_l1", &self.disable_l1)
            .field("l1_expiration_ratio", &self.l1_expiration_ratio)
            .field("absolute_expiration_relative_to_now", &self.absolute_expiration_relative_to_now)
            .field("sliding_expiration", &self.sliding_expiration)
            .field("l1_backfill_ttl", &self.l1_backfill_ttl)
            .field("on_l2_failure", &self.on_l2_failure)
            .field("circuit_failure_threshold", &self.circuit_failure_threshold)
            .field("circuit_cool_down", &self.circuit_cool_down)
            .field("l2_version_check_interval", &self.l2_version_check_interval)
            .finish_non_exhaustive()
    }
}

/// The circuit breaker's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CircuitState {
    /// L2 is used.
    Closed,
    /// L2 is skipped until the cool-down ends.
    Open,
    /// One operation is probing L2; the others skip it.
    HalfOpen,
}

/// Counters of a [`TieredStore`] since creation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TieredStats {
    /// Reads answered by L1.
    pub l1_hits: u64,
    /// Reads answered by L2 (after an L1 miss).
    pub l2_hits: u64,
    /// Reads answered by neither (including reads whose L2 part failed and was
    /// served as a miss).
    pub misses: u64,
    /// Failed L2 attempts (a retried operation that fails twice counts two).
    pub l2_errors: u64,
    /// L2 retries made under [`L2FailurePolicy::RetryOnce`].
    pub l2_retries: u64,
    /// L2 operations not attempted because the circuit was open.
    pub l2_skipped: u64,
    /// Times the circuit opened.
    pub circuit_opened: u64,
    /// The circuit breaker now.
    pub circuit: Option<CircuitState>,
    /// Median L2 operation latency (successes and failures), to about 12%.
    pub l2_latency_p50: Option<Duration>,
    /// 99th percentile L2 operation latency, to about 12%.
    pub l2_latency_p99: Option<Duration>,
    /// Blobs in L1.
    pub l1_entries: usize,
    /// Bytes in L1 (blobs plus keys).
    pub l1_bytes: usize,
    /// L1 copies checked against L2's version (versioned L2 only).
    pub l2_version_checks: u64,
    /// L1 copies dropped because L2 held a newer version (or none).
    pub stale_l1_drops: u64,
    /// Writes and removals made while L2 was unreachable, written to L2 since.
    pub l2_write_backs: u64,
    /// Writes and removals made while L2 was unreachable that lost to another
    /// instance's newer write of the partition (logged as warnings).
    pub l2_write_backs_lost: u64,
    /// Writes and removals made while L2 was unreachable, waiting for it now.
    pub l2_write_backs_waiting: usize,
    /// L1 copies (and saves computed from them) written back after L2 lost its data.
    pub l1_copies_restored: u64,
}

/// An in-memory L1 ([`MemoryStore`]) over a shared L2 (usually a `RedisStore`,
/// possibly inside an `EncryptedStore`), as Microsoft.Identity.Web's
/// `MsalDistributedTokenCacheAdapter` does it — with its options
/// ([`TieredOptions`]) — but with L2 failures that are never silent: each one is
/// logged through `log`, counted in [`TieredStats`], and handled by an explicit
/// [`L2FailurePolicy`]; a circuit breaker stops paying timeouts to a dead L2 and
/// probes it again after a cool-down.
///
/// Reads go to L1, then to L2 (and a hit there is copied into L1). Writes go to
/// both. An L1 copy never outlives the L2 entry it copies: its lifetime is the L2
/// lifetime times [`TieredOptions::l1_expiration_ratio`], counted from the write,
/// without sliding. A copy made on a read gets the same ratio of the lifetime L2
/// reports ([`L2Store::get_with_deadline`]), and at most
/// [`TieredOptions::l1_backfill_ttl`].
///
/// **Write-back and data loss** (versioned L2s): a write or removal that reached L1
/// alone during an outage is kept and written back, conditionally, once L2 answers;
/// an L1 copy of a partition L2 lost with its data (told from a removal by the
/// [`EPOCH_KEY`] marker) is written back instead of dropped. So an L2 outage or
/// restart loses nothing L1 holds; a newer write another instance made meanwhile
/// wins and the loss is counted ([`TieredStats::l2_write_backs_lost`]).
///
/// Thread-safe; the counters, the breaker and the latency histogram are atomics
/// (the locks are L1's own and, during an outage, the one over the writes that
/// wait).
///
/// ```
/// use std::time::Duration;
/// use bytes::Bytes;
/// use tokencache::store::{Expiry, L2FailurePolicy, MemoryStore, Store, TieredOptions, TieredStore};
///
/// // In production the L2 is a RedisStore (or an EncryptedStore over one).
/// let l2 = MemoryStore::default();
/// let store = TieredStore::new(l2, TieredOptions {
///     l1_expiration_ratio: 0.5,
///     on_l2_failure: L2FailurePolicy::ServeFromL1,
///     circuit_cool_down: Duration::from_secs(5),
///     ..Default::default()
/// })?;
/// store.set("uid.utid", Bytes::from_static(b"{}"), Expiry::at(tokencache::unix_now() + 3600))?;
/// assert!(store.get("uid.utid")?.is_some());
/// assert_eq!(store.stats().l1_hits, 1);
/// # Ok::<(), tokencache::Error>(())
/// ```
pub struct TieredStore<L2: L2Store> {
    l1: Option<MemoryStore>,
    l2: L2,
    opts: TieredOptions,
    breaker: Breaker,
    latency: LatencyHistogram,
    l1_hits: AtomicU64,
    l2_hits: AtomicU64,
    misses: AtomicU64,
    l2_errors: AtomicU64,
    l2_retries: AtomicU64,
    l2_skipped: AtomicU64,
    version_checks: AtomicU64,
    stale_drops: AtomicU64,
    recovery: Recovery,
}

impl<L2: L2Store + std::fmt::Debug> std::fmt::Debug for TieredStore<L2> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TieredStore")
            .field("l1", &self.l1)
            .field("l2", &self.l2)
            .field("options", &self.opts)
            .field("circuit", &self.breaker.state())
            .finish()
    }
}

impl<L2: L2Store> TieredStore<L2> {
    /// An L1 of `options.l1_max_bytes` over `l2`.
    pub fn new(l2: L2, options: TieredOptions) -> Result<Self> {
        if !(options.l1_expiration_ratio > 0.0 && options.l1_expiration_ratio <= 1.0) {
            return Err(Error::new(ErrorKind::InvalidArgument, "l1_expiration_ratio must be in (0, 1]"));
        }
        let l1 = (!options.disable_l1).then(|| MemoryStore::with_clock(options.l1_max_bytes, options.clock.clone()));
        Ok(TieredStore {
            l1,
            l2,
            breaker: Breaker::new(options.circuit_failure_threshold, options.circuit_cool_down),
            opts: options,
            latency: LatencyHistogram::new(),
            l1_hits: AtomicU64::new(0),
            l2_hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            l2_errors: AtomicU64::new(0),
            l2_retries: AtomicU64::new(0),
            l2_skipped: AtomicU64::new(0),
            version_checks: AtomicU64::new(0),
            stale_drops: AtomicU64::new(0),
            recovery: Recovery::default(),
        })
    }

    /// The L1, unless disabled.
    pub fn l1(&self) -> Option<&MemoryStore> {
        self.l1.as_ref()
    }

    /// The L2.
    pub fn l2(&self) -> &L2 {
        &self.l2
    }

    /// The counters now.
    pub fn stats(&self) -> TieredStats {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        TieredStats {
            l1_hits: load(&self.l1_hits),
            l2_hits: load(&self.l2_hits),
            misses: load(&self.misses),
            l2_errors: load(&self.l2_errors),
            l2_retries: load(&self.l2_retries),
            l2_skipped: load(&self.l2_skipped),
            circuit_opened: load(&self.breaker.opened),
            circuit: self.breaker.enabled().then(|| self.breaker.state()),
            l2_latency_p50: self.latency.quantile(0.50),
            l2_latency_p99: self.latency.quantile(0.99),
            l1_entries: self.l1.as_ref().map_or(0, MemoryStore::len),
            l1_bytes: self.l1.as_ref().map_or(0, MemoryStore::bytes),
            l2_version_checks: load(&self.version_checks),
            stale_l1_drops: load(&self.stale_drops),
            l2_write_backs: load(&self.recovery.written_back),
            l2_write_backs_lost: load(&self.recovery.lost),
            l2_write_backs_waiting: self.recovery.kept_count(),
            l1_copies_restored: load(&self.recovery.restored),
        }
    }

    /// `expiry` capped by the options' absolute and sliding expiration.
    fn l2_expiry(&self, expiry: Expiry, now: i64) -> Expiry {
        let cap = self.opts.absolute_expiration_relative_to_now.map(|d| now.saturating_add(secs(d)));
        let absolute = match (expiry.absolute, cap) {
            (Some(a), Some(c)) => Some(a.min(c)),
            (a, c) => a.or(c),
        };
        let sliding_secs = expiry.sliding_secs.or(self.opts.sliding_expiration.map(secs));
        Expiry { absolute, sliding_secs }
    }

    /// An absolute L1 deadline: `ratio` of the time left until `deadline`. No sliding
    /// in L1: an L1 hit does not refresh L2, so a sliding L1 copy could outlive L2.
    fn l1_expiry(&self, deadline: Option<i64>, now: i64) -> Expiry {
        match deadline {
            None => Expiry::NEVER,
            Some(d) => {
                let left = (d - now).max(0) as f64 * self.opts.l1_expiration_ratio;
                Expiry::at(now + left.floor() as i64)
            }
        }
    }

    /// Runs one L2 operation through the breaker, timing it, counting and logging
    /// failures, retrying once under [`L2FailurePolicy::RetryOnce`].
    fn call_l2<T>(&self, what: &str, op: impl Fn() -> Result<T>) -> Result<T> {
        let probing = match self.breaker.admit() {
            Admit::Yes => false,
            Admit::Probe => {
                log::info!("tiered store: probing L2 with a {what} after the cool-down");
                true
            }
            Admit::No => {
                self.l2_skipped.fetch_add(1, Ordering::Relaxed);
                log::debug!("tiered store: L2 {what} skipped, circuit open");
                return Err(Error::new(
                    ErrorKind::StoreUnavailable,
                    format!("L2 {what} skipped: the circuit is open after repeated L2 failures"),
                ));
            }
        };
        let attempts = if self.opts.on_l2_failure == L2FailurePolicy::RetryOnce { 2 } else { 1 };
        let mut result = self.timed(&op);
        for attempt in 1..=attempts {
            match &result {
                Ok(_) => break,
                // L2 answered, with something wrong in what it holds (a blob under a
                // foreign key, a tampered one): not an outage, so no retry, no breaker,
                // no policy — the caller gets the error as it is.
                Err(e) if !is_outage(e) => break,
                Err(e) => {
                    self.l2_errors.fetch_add(1, Ordering::Relaxed);
                    log::error!("tiered store: L2 {what} failed (attempt {attempt} of {attempts}): {e}");
                    if attempt < attempts {
                        self.l2_retries.fetch_add(1, Ordering::Relaxed);
                        result = self.timed(&op);
                    }
                }
            }
        }
        if result.as_ref().err().is_some_and(is_outage) {
            if self.breaker.failure(probing) {
                log::error!(
                    "tiered store: circuit opened, L2 skipped for {:?} after {} consecutive failures",
                    self.opts.circuit_cool_down,
                    if probing { 1 } else { self.opts.circuit_failure_threshold }
                );
            }
        } else if self.breaker.success() {
            log::info!("tiered store: L2 answered again, circuit closed");
        }
        result
    }

    fn timed<T>(&self, op: &impl Fn() -> Result<T>) -> Result<T> {
        let start = Instant::now();
        let r = op();
        self.latency.record(start.elapsed());
        r
    }

    /// Whether the policy turns this failed L2 operation into "carry on with L1".
    fn serve_from_l1(&self, e: &Error) -> bool {
        self.opts.on_l2_failure == L2FailurePolicy::ServeFromL1 && is_outage(e)
    }

    /// Applies the policy to an L2 write or remove of `key`: written, it supersedes
    /// a change kept from an outage; failed under [`L2FailurePolicy::ServeFromL1`],
    /// `change` is kept for write-back (or the error returned when too much waits).
    fn kept_unless_written<T>(&self, key: &str, r: Result<T>, change: impl FnOnce() -> Change) -> Result<()> {
        match r {
            Ok(_) => {
                self.forget(key);
                if self.l1.is_some()
                    && let Some(vs) = self.l2.as_versioned()
                {
                    self.note_epoch(vs);
                }
                Ok(())
            }
            Err(e) if self.serve_from_l1(&e) => {
                if self.keep(key, change()) {
                    Ok(())
                } else {
                    Err(e)
                }
            }
            Err(e) => Err(e),
        }
    }
}

/// L2 could not be used (down, unreachable, locked) — as opposed to an L2 that
/// answered with a blob that cannot be read, which no policy hides.
fn is_outage(e: &Error) -> bool {
    matches!(e.kind(), ErrorKind::StoreUnavailable | ErrorKind::Io | ErrorKind::LockTimeout)
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// The version of an L1 copy whose L2 version is not known (written by a plain
/// `set`): the next check finds it differs, and reads L2 again.
const UNKNOWN: Version = Version(u64::MAX);

impl<L2: L2Store> TieredStore<L2> {
    fn now_ms(&self) -> u64 {
        (self.opts.version_clock)()
    }

    fn check_interval_ms(&self) -> u64 {
        u64::try_from(self.opts.l2_version_check_interval.as_millis()).unwrap_or(u64::MAX)
    }

    /// The L1 copy under `key` if it may be served: with a versioned L2, checked
    /// against L2's version when the last check is older than the interval (and
    /// dropped when stale), or at once if the caller needs the version and the copy
    /// has none. `Err` only for an L2 failure the policy propagates.
    fn l1_current(
        &self,
        l1: &MemoryStore,
        vs: &dyn VersionedStore,
        key: &str,
        need_version: bool,
    ) -> Result<Option<(Bytes, Version)>> {
        let Some((value, version, checked)) = l1.get_tagged(key) else { return Ok(None) };
        let now = self.now_ms();
        if !(need_version && version == UNKNOWN) && now.saturating_sub(checked) < self.check_interval_ms() {
            return Ok(Some((value, version)));
        }
        self.version_checks.fetch_add(1, Ordering::Relaxed);
        match self.call_l2("version check", || vs.version(key)) {
            Ok(Some(v)) if v == version => {
                l1.mark_checked(key, version, now);
                Ok(Some((value, version)))
            }
            // Missing: removed, unless L2 lost its data; then the copy goes back.
            Ok(None) if self.predates_loss(checked) || self.l2_lost_data(vs).unwrap_or(false) => {
                match self.restore(vs, key, &value) {
                    Ok(Some(v)) => {
                        l1.retag(key, version, v, self.now_ms());
                        Ok(Some((value, v)))
                    }
                    Ok(None) => {
                        l1.remove_if_version(key, version);
                        Ok(None)
                    }
                    Err(e) if self.serve_from_l1(&e) => Ok(Some((value, version))),
                    Err(e) => Err(e),
                }
            }
            Ok(_) => {
                self.stale_drops.fetch_add(1, Ordering::Relaxed);
                log::debug!("tiered store: L1 copy of a partition is stale (L2 has another version); dropped");
                l1.remove_if_version(key, version);
                Ok(None)
            }
            // L2 is down: the copy is the best there is, as for any read.
            Err(e) if self.serve_from_l1(&e) => Ok(Some((value, version))),
            Err(e) => Err(e),
        }
    }

    /// A read with a versioned L2: L1 (checked), else L2 with the version, copied
    /// into L1 tagged with it.
    fn get_checked(&self, vs: &dyn VersionedStore, key: &str, need_version: bool) -> Result<Option<VersionedBlob>> {
        self.write_back();
        if let Some(change) = self.unwritten(key) {
            return Ok(self.as_read(change));
        }
        if let Some(l1) = &self.l1
            && let Some((value, version)) = self.l1_current(l1, vs, key, need_version)?
        {
            self.l1_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(Some(VersionedBlob { value, version, deadline: None }));
        }
        match self.call_l2("read", || vs.get_versioned(key)) {
            Ok(Some(b)) => {
                self.l2_hits.fetch_add(1, Ordering::Relaxed);
                if let Some(l1) = &self.l1 {
                    self.note_epoch(vs);
                    l1.set_tagged(key, b.value.clone(), self.backfill_expiry(b.deadline), b.version, self.now_ms());
                }
                Ok(Some(b))
            }
            Ok(None) => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                Ok(None)
            }
            Err(e) if self.serve_from_l1(&e) => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// The L1 expiry of a copy of an L2 blob that expires at `l2_deadline`.
    fn backfill_expiry(&self, l2_deadline: Option<i64>) -> Expiry {
        let now = (self.opts.clock)();
        let backfill = now.saturating_add(secs(self.opts.l1_backfill_ttl));
        let bound = Expiry::at(l2_deadline.map_or(backfill, |d| d.min(backfill)));
        let deadline = self.l2_expiry(bound, now).deadline(now);
        self.l1_expiry(deadline, now)
    }

    fn versioned_l2(&self) -> Result<&dyn VersionedStore> {
        self.l2
            .as_versioned()
            .ok_or_else(|| Error::new(ErrorKind::InvalidArgument, "this TieredStore's L2 keeps no versions"))
    }
}

impl<L2: L2Store> Store for TieredStore<L2> {
    fn get(&self, key: &str) -> Result<Option<Bytes>> {
        if let Some(vs) = self.l2.as_versioned() {
            return Ok(self.get_checked(vs, key, false)?.map(|b| b.value));
        }
        self.write_back();
        if let Some(change) = self.unwritten(key) {
            return Ok(self.as_read(change).map(|b| b.value));
        }
        if let Some(l1) = &self.l1
            && let Some(v) = l1.get(key)?
        {
            self.l1_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(Some(v));
        }
        match self.call_l2("read", || self.l2.get_with_deadline(key)) {
            Ok(Some((v, l2_deadline))) => {
                self.l2_hits.fetch_add(1, Ordering::Relaxed);
                if let Some(l1) = &self.l1 {
                    let now = (self.opts.clock)();
                    let backfill = now.saturating_add(secs(self.opts.l1_backfill_ttl));
                    let bound = Expiry::at(l2_deadline.map_or(backfill, |d| d.min(backfill)));
                    let deadline = self.l2_expiry(bound, now).deadline(now);
                    l1.set(key, v.clone(), self.l1_expiry(deadline, now))?;
                }
                Ok(Some(v))
            }
            Ok(None) => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                Ok(None)
            }
            Err(e) if self.serve_from_l1(&e) => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    fn set(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<()> {
        let now = (self.opts.clock)();
        let l2_expiry = self.l2_expiry(expiry, now);
        if let Some(l1) = &self.l1 {
            let l1_expiry = self.l1_expiry(l2_expiry.deadline(now), now);
            if self.l2.as_versioned().is_some() {
                // L2 gives the write a version we do not learn here: served from L1
                // until the next check, which then reads L2 again.
                l1.set_tagged(key, value.clone(), l1_expiry, UNKNOWN, self.now_ms());
            } else {
                l1.set(key, value.clone(), l1_expiry)?;
            }
        }
        self.write_back();
        let r = self.call_l2("write", || self.l2.set(key, value.clone(), l2_expiry));
        self.kept_unless_written(key, r, || Change::Write { value, expiry: l2_expiry, base: Base::Any })
    }

    fn as_versioned(&self) -> Option<&dyn VersionedStore> {
        self.l2.as_versioned().map(|_| self as &dyn VersionedStore)
    }

    fn remove(&self, key: &str) -> Result<()> {
        if let Some(l1) = &self.l1 {
            l1.remove(key)?;
        }
        self.write_back();
        let r = self.call_l2("remove", || self.l2.remove(key));
        self.kept_unless_written(key, r, || Change::Remove { base: Base::Any })
    }

    fn purge_expired(&self) -> Result<u64> {
        let l1 = match &self.l1 {
            Some(l1) => l1.purge_expired()?,
            None => 0,
        };
        match self.call_l2("purge", || self.l2.purge_expired()) {
            Ok(n) => Ok(l1 + n),
            Err(e) if self.serve_from_l1(&e) => Ok(l1),
            Err(e) => Err(e),
        }
    }
}

/// With an L2 that keeps versions: L1 copies carry the L2 version they were read
/// or written at, and are checked against L2 at most every
/// [`TieredOptions::l2_version_check_interval`]. Conditional writes go to L2 (the
/// one place two instances can agree), then to L1.
impl<L2: L2Store> VersionedStore for TieredStore<L2> {
    fn get_versioned(&self, key: &str) -> Result<Option<VersionedBlob>> {
        self.get_checked(self.versioned_l2()?, key, true)
    }

    fn version(&self, key: &str) -> Result<Option<Version>> {
        let vs = self.versioned_l2()?;
        self.call_l2("version check", || vs.version(key))
    }

    /// An L2 outage under [`L2FailurePolicy::ServeFromL1`] writes L1 alone, as a
    /// plain write does, and reports it written.
    fn compare_and_set(
        &self,
        key: &str,
        expected: Option<Version>,
        value: Bytes,
        expiry: Expiry,
    ) -> Result<CasOutcome> {
        let vs = self.versioned_l2()?;
        let now = (self.opts.clock)();
        let l2_expiry = self.l2_expiry(expiry, now);
        let l1_expiry = self.l1_expiry(l2_expiry.deadline(now), now);
        self.write_back();
        // When the copy this write was computed from was last known to be L2's.
        let seen_ms = self
            .l1
            .as_ref()
            .and_then(|l1| l1.get_tagged(key))
            .and_then(|(_, v, checked)| (Some(v) == expected).then_some(checked));
        match self.conditional_write(vs, key, expected, &value, l2_expiry, seen_ms) {
            Ok(CasOutcome::Written(v)) => {
                self.forget(key);
                if let Some(l1) = &self.l1 {
                    self.note_epoch(vs);
                    l1.set_tagged(key, value, l1_expiry, v, self.now_ms());
                }
                Ok(CasOutcome::Written(v))
            }
            Ok(CasOutcome::Conflict) => {
                if let Some(l1) = &self.l1 {
                    l1.remove(key)?;
                }
                if expected == Some(UNKNOWN) {
                    // Computed from a change kept while L2 was down and not written back
                    // yet (its retry not due): L2 answered, so write that change back
                    // now, and the merge that follows reads a version L2 knows.
                    // Otherwise every retry would read the kept copy again, and conflict.
                    self.write_back_key(key);
                }
                Ok(CasOutcome::Conflict)
            }
            Err(e) if self.serve_from_l1(&e) => {
                // A copy of unknown version was written blind: so is this.
                let base = if expected == Some(UNKNOWN) { Base::Any } else { Base::Version(expected) };
                if !self.keep(key, Change::Write { value: value.clone(), expiry: l2_expiry, base }) {
                    return Err(e);
                }
                if let Some(l1) = &self.l1 {
                    l1.set_tagged(key, value, l1_expiry, UNKNOWN, self.now_ms());
                }
                Ok(CasOutcome::Written(UNKNOWN))
            }
            Err(e) => Err(e),
        }
    }

    fn compare_and_remove(&self, key: &str, expected: Version) -> Result<bool> {
        let vs = self.versioned_l2()?;
        if let Some(l1) = &self.l1 {
            l1.remove(key)?;
        }
        self.write_back();
        match self.call_l2("conditional remove", || vs.compare_and_remove(key, expected)) {
            Ok(removed) => {
                self.forget(key);
                Ok(removed)
            }
            Err(e) if self.serve_from_l1(&e) => {
                let base = if expected == UNKNOWN { Base::Any } else { Base::Version(Some(expected)) };
                if self.keep(key, Change::Remove { base }) { Ok(true) } else { Err(e) }
            }
            Err(e) => Err(e),
        }
    }

    fn update_exclusive(&self, key: &str, update: &mut UpdateFn<'_>) -> Result<Exclusive> {
        let vs = self.versioned_l2()?;
        let now = (self.opts.clock)();
        let mut wrote: Option<(Bytes, Expiry)> = None;
        let done = vs.update_exclusive(key, &mut |current: Option<&VersionedBlob>| {
            Ok(match update(current)? {
                Update::Write(value, expiry) => {
                    let l2_expiry = self.l2_expiry(expiry, now);
                    wrote = Some((value.clone(), l2_expiry));
                    Update::Write(value, l2_expiry)
                }
                other => {
                    wrote = None;
                    other
                }
            })
        })?;
        if let Some(l1) = &self.l1 {
            match (done, wrote) {
                (Exclusive::Done(Some(v)), Some((value, l2_expiry))) => {
                    l1.set_tagged(key, value, self.l1_expiry(l2_expiry.deadline(now), now), v, self.now_ms());
                }
                (Exclusive::Done(_), _) => l1.remove(key)?,
                (Exclusive::Unavailable, _) => {}
            }
        }
        Ok(done)
    }
}

enum Admit {
    Yes,
    Probe,
    No,
}

const CLOSED: u8 = 0;
const OPEN: u8 = 1;
const HALF_OPEN: u8 = 2;

/// Lock-free circuit breaker: `threshold` consecutive failures open it; after
/// `cool_down` one caller probes (half-open) while the others keep skipping; the
/// probe's success closes it, its failure reopens it for another cool-down.
struct Breaker {
    threshold: u32,
    cool_down: Duration,
    epoch: Instant,
    state: AtomicU8,
    failures: AtomicU32,
    opened_at_nanos: AtomicU64,
    opened: AtomicU64,
}

impl Breaker {
    fn new(threshold: u32, cool_down: Duration) -> Self {
        Breaker {
            threshold,
            cool_down,
            epoch: Instant::now(),
            state: AtomicU8::new(CLOSED),
            failures: AtomicU32::new(0),
            opened_at_nanos: AtomicU64::new(0),
            opened: AtomicU64::new(0),
        }
    }

    fn enabled(&self) -> bool {
        self.threshold > 0
    }

    fn now_nanos(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn state(&self) -> CircuitState {
        match self.state.load(Ordering::Acquire) {
            CLOSED => CircuitState::Closed,
            OPEN => CircuitState::Open,
            _ => CircuitState::HalfOpen,
        }
    }

    fn admit(&self) -> Admit {
        if !self.enabled() {
            return Admit::Yes;
        }
        match self.state.load(Ordering::Acquire) {
            CLOSED => Admit::Yes,
            OPEN => {
                let since = self.now_nanos().saturating_sub(self.opened_at_nanos.load(Ordering::Acquire));
                let cooled = since >= u64::try_from(self.cool_down.as_nanos()).unwrap_or(u64::MAX);
                if cooled && self.state.compare_exchange(OPEN, HALF_OPEN, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                    Admit::Probe
                } else {
                    Admit::No
                }
            }
            _ => Admit::No,
        }
    }

    /// Returns true when this success closed an open circuit.
    fn success(&self) -> bool {
        if !self.enabled() {
            return false;
        }
        self.failures.store(0, Ordering::Relaxed);
        self.state.swap(CLOSED, Ordering::AcqRel) != CLOSED
    }

    /// Returns true when this failure opened the circuit.
    fn failure(&self, probing: bool) -> bool {
        if !self.enabled() {
            return false;
        }
        if probing {
            self.open(HALF_OPEN);
            return true;
        }
        let n = self.failures.fetch_add(1, Ordering::AcqRel).saturating_add(1);
        n >= self.threshold && self.open(CLOSED)
    }

    fn open(&self, from: u8) -> bool {
        // The time first, so whoever sees OPEN sees a cool-down start at least this late.
        self.opened_at_nanos.store(self.now_nanos(), Ordering::Release);
        let opened = self.state.compare_exchange(from, OPEN, Ordering::AcqRel, Ordering::Acquire).is_ok();
        if opened {
            self.failures.store(0, Ordering::Relaxed);
            self.opened.fetch_add(1, Ordering::Relaxed);
        }
        opened
    }
}

/// Microseconds in log-linear buckets: exact below 8 µs, then 8 buckets per
/// power of two (each within 12.5% of its values), up to 2^40 µs. Lock-free.
struct LatencyHistogram {
    buckets: Box<[AtomicU64]>,
}

const SUB_BITS: u32 = 3;
const SUB: u64 = 1 << SUB_BITS;
const MAX_EXP: u32 = 40;
const BUCKETS: usize = (SUB + (MAX_EXP - SUB_BITS + 1) as u64 * SUB) as usize;

impl LatencyHistogram {
    fn new() -> Self {
        LatencyHistogram { buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect() }
    }

    fn index(micros: u64) -> usize {
        if micros < SUB {
            return micros as usize;
        }
        let exp = (63 - micros.leading_zeros()).min(MAX_EXP);
        let sub = (micros >> (exp - SUB_BITS)) & (SUB - 1);
        (SUB + u64::from(exp - SUB_BITS) * SUB + sub) as usize
    }

    /// The largest value in bucket `i`.
    fn upper(i: usize) -> u64 {
        let i = i as u64;
        if i < SUB {
            return i;
        }
        let exp = (i - SUB) / SUB + u64::from(SUB_BITS);
        let sub = (i - SUB) % SUB;
        ((SUB + sub) << (exp - u64::from(SUB_BITS))) + (1 << (exp - u64::from(SUB_BITS))) - 1
    }

    fn record(&self, d: Duration) {
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.buckets[Self::index(micros).min(BUCKETS - 1)].fetch_add(1, Ordering::Relaxed);
    }

    fn quantile(&self, q: f64) -> Option<Duration> {
        let counts: Vec<u64> = self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(Duration::from_micros(Self::upper(i)));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_bound_their_values() {
        for v in [0u64, 1, 7, 8, 9, 15, 16, 100, 1000, 12_345, 1 << 20, (1 << 30) + 7] {
            let i = LatencyHistogram::index(v);
            assert!(LatencyHistogram::upper(i) >= v, "{v} in bucket {i}");
            assert!(LatencyHistogram::upper(i) as f64 <= v as f64 * 1.125 + 1.0, "{v} bucket too wide");
            if i > 0 {
                assert!(LatencyHistogram::upper(i - 1) < v, "{v} belongs to an earlier bucket");
            }
        }
        assert!(LatencyHistogram::index(u64::MAX) < BUCKETS);
    }

    #[test]
    fn quantiles() {
        let h = LatencyHistogram::new();
        assert_eq!(h.quantile(0.5), None);
        for _ in 0..98 {
            h.record(Duration::from_micros(100));
        }
        h.record(Duration::from_millis(50));
        h.record(Duration::from_millis(50));
        let p50 = h.quantile(0.5).unwrap();
        let p99 = h.quantile(0.99).unwrap();
        assert!(p50 >= Duration::from_micros(100) && p50 < Duration::from_micros(113), "{p50:?}");
        assert!(p99 >= Duration::from_millis(50), "{p99:?}");
    }

    #[test]
    fn breaker_opens_probes_and_closes() {
        let b = Breaker::new(2, Duration::ZERO);
        assert!(matches!(b.admit(), Admit::Yes));
        assert!(!b.failure(false));
        assert!(b.failure(false), "second consecutive failure opens");
        assert_eq!(b.state(), CircuitState::Open);
        assert!(matches!(b.admit(), Admit::Probe), "zero cool-down: next caller probes");
        assert!(matches!(b.admit(), Admit::No), "only one probe at a time");
        assert!(b.failure(true), "a failed probe reopens");
        assert!(matches!(b.admit(), Admit::Probe));
        assert!(b.success());
        assert_eq!(b.state(), CircuitState::Closed);
        assert_eq!(b.opened.load(Ordering::Relaxed), 2);
    }
}

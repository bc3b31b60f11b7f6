//! TieredStore: L1 then L2 with back-fill, L1 lifetimes never past L2's (injected
//! clock), the Microsoft.Identity.Web options, the three L2 failure policies, the
//! circuit breaker, stats and logging. The L2 here is a MemoryStore behind a switch
//! that makes it fail; `stores_tiered_redis` does the same against a real Redis.
#![cfg(any(feature = "sqlite", feature = "redis"))]

mod stores_support;

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use stores_support::{ManualClock, poll_until};
use tokencache::store::{
    CircuitState, Expiry, L2FailurePolicy, L2Store, MemoryStore, Store, TieredOptions, TieredStore,
};
use tokencache::{ErrorKind, Result};

/// An L2 that fails on demand and counts the calls that reach it.
#[derive(Debug)]
struct SwitchableL2 {
    inner: MemoryStore,
    down: AtomicBool,
    /// Fail this many more calls even while up.
    fail_next: AtomicU32,
    calls: AtomicU64,
    /// Deadlines it reports (as Redis and SQLite do), set by the tests that need them.
    deadlines: Mutex<Vec<(String, i64)>>,
}

impl SwitchableL2 {
    fn new(clock: &ManualClock) -> Arc<Self> {
        Arc::new(SwitchableL2 {
            inner: MemoryStore::with_clock(usize::MAX, clock.clock()),
            down: AtomicBool::new(false),
            fail_next: AtomicU32::new(0),
            calls: AtomicU64::new(0),
            deadlines: Mutex::new(Vec::new()),
        })
    }

    fn check(&self) -> Result<()> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let one_off = self.fail_next.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
        if self.down.load(Ordering::SeqCst) || one_off {
            return Err(l2_error());
        }
        Ok(())
    }

    fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }
}

/// What the switchable L2 fails with: an outage-kind error. `Error` can only be
/// made inside the crate, so this is a real one from a store that cannot work.
fn l2_error() -> tokencache::Error {
    static E: OnceLock<tokencache::Error> = OnceLock::new();
    E.get_or_init(|| {
        #[cfg(feature = "sqlite")]
        let e = tokencache::store::SqliteStore::open("/nonexistent-tokencache-dir/x.db").unwrap_err();
        #[cfg(not(feature = "sqlite"))]
        let e = tokencache::store::RedisStore::open(
            "redis://127.0.0.1:1/",
            tokencache::store::RedisOptions { connect_timeout: Duration::from_millis(50), ..Default::default() },
        )
        .unwrap()
        .get("x")
        .unwrap_err();
        e
    })
    .clone()
}

impl Store for SwitchableL2 {
    fn get(&self, key: &str) -> Result<Option<Bytes>> {
        self.check()?;
        self.inner.get(key)
    }
    fn set(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<()> {
        self.check()?;
        self.inner.set(key, value, expiry)
    }
    fn remove(&self, key: &str) -> Result<()> {
        self.check()?;
        self.inner.remove(key)
    }
    fn purge_expired(&self) -> Result<u64> {
        self.check()?;
        self.inner.purge_expired()
    }
}

impl L2Store for SwitchableL2 {
    fn get_with_deadline(&self, key: &str) -> Result<Option<(Bytes, Option<i64>)>> {
        let v = self.get(key)?;
        Ok(v.map(|b| (b, self.deadlines.lock().unwrap().iter().find(|(k, _)| k == key).map(|(_, d)| *d))))
    }
}

fn opts(clock: &ManualClock) -> TieredOptions {
    TieredOptions { clock: clock.clock(), ..Default::default() }
}

fn v(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

/// Log records, with the name of the thread (= the test) that emitted them.
struct Capture(Mutex<Vec<(String, log::Level, String)>>);

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, r: &log::Record) {
        let thread = std::thread::current().name().unwrap_or("").to_owned();
        self.0.lock().unwrap().push((thread, r.level(), r.args().to_string()));
    }
    fn flush(&self) {}
}

fn logs() -> &'static Capture {
    static CAPTURE: OnceLock<&'static Capture> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let c: &'static Capture = Box::leak(Box::new(Capture(Mutex::new(Vec::new()))));
        log::set_logger(c).unwrap();
        log::set_max_level(log::LevelFilter::Trace);
        c
    })
}

fn logged(test: &str, level: log::Level, needle: &str) -> usize {
    logs().0.lock().unwrap().iter().filter(|(t, l, m)| t.ends_with(test) && *l == level && m.contains(needle)).count()
}

#[test]
fn reads_go_to_l1_then_l2_and_l2_hits_fill_l1() {
    let clock = ManualClock::at(1000);
    let l2 = SwitchableL2::new(&clock);
    let t = TieredStore::new(l2.clone(), opts(&clock)).unwrap();
    t.set("both", v("b"), Expiry::NEVER).unwrap();
    assert_eq!(l2.inner.get("both").unwrap(), Some(v("b")), "written through to L2");
    let calls = l2.calls();
    assert_eq!(t.get("both").unwrap(), Some(v("b")));
    assert_eq!(l2.calls(), calls, "an L1 hit does not touch L2");

    l2.inner.set("only-l2", v("x"), Expiry::NEVER).unwrap(); // written by another machine
    assert_eq!(t.get("only-l2").unwrap(), Some(v("x")));
    assert_eq!(t.l1().unwrap().get("only-l2").unwrap(), Some(v("x")), "back-filled");
    assert_eq!(t.get("only-l2").unwrap(), Some(v("x")));
    assert_eq!(t.get("nowhere").unwrap(), None);

    t.remove("both").unwrap();
    assert_eq!(t.get("both").unwrap(), None);
    assert_eq!(l2.inner.get("both").unwrap(), None, "removed from both");

    let st = t.stats();
    assert_eq!((st.l1_hits, st.l2_hits, st.misses, st.l2_errors), (2, 1, 2, 0));
    assert_eq!(st.circuit, Some(CircuitState::Closed));
    assert!(st.l2_latency_p50.is_some() && st.l2_latency_p99 >= st.l2_latency_p50);
    assert_eq!(st.l1_entries, 1);
}

#[test]
fn l1_lifetime_is_a_ratio_of_l2s_and_never_past_it() {
    let clock = ManualClock::at(10_000);
    let l2 = SwitchableL2::new(&clock);
    let t = TieredStore::new(l2.clone(), TieredOptions { l1_expiration_ratio: 0.5, ..opts(&clock) }).unwrap();
    t.set("k", v("1"), Expiry::at(10_100)).unwrap();
    let calls = l2.calls();
    clock.set(10_049);
    assert_eq!(t.get("k").unwrap(), Some(v("1")));
    assert_eq!(l2.calls(), calls, "within half the lifetime: L1");
    clock.set(10_050);
    assert_eq!(t.l1().unwrap().get("k").unwrap(), None, "L1 copy gone at half the L2 lifetime");
    l2.deadlines.lock().unwrap().push(("k".into(), 10_100));
    assert_eq!(t.get("k").unwrap(), Some(v("1")), "L2 still has it");
    // Back-filled for half of the 50 s L2 reports left: until 10_075.
    clock.set(10_074);
    assert!(t.l1().unwrap().get("k").unwrap().is_some());
    clock.set(10_075);
    assert_eq!(t.l1().unwrap().get("k").unwrap(), None);
    clock.set(10_100);
    assert_eq!(t.get("k").unwrap(), None, "past the expiry: served by neither");

    // Sliding entries: L1 holds an absolute copy (an L1 hit does not refresh L2).
    t.set("s", v("2"), Expiry { absolute: None, sliding_secs: Some(40) }).unwrap();
    clock.advance(19);
    assert!(t.l1().unwrap().get("s").unwrap().is_some());
    clock.advance(1);
    assert_eq!(t.l1().unwrap().get("s").unwrap(), None, "L1 copy: half of one sliding window");
    assert_eq!(t.get("s").unwrap(), Some(v("2")), "L2 sliding window still open");
}

#[test]
fn backfill_of_an_entry_without_known_deadline_is_bounded() {
    let clock = ManualClock::at(0);
    let l2 = Arc::new(MemoryStore::with_clock(1 << 20, clock.clock())); // reports no deadlines
    let t = TieredStore::new(l2.clone(), TieredOptions { l1_backfill_ttl: Duration::from_secs(30), ..opts(&clock) })
        .unwrap();
    l2.set("k", v("1"), Expiry::at(1000)).unwrap();
    assert!(t.get("k").unwrap().is_some());
    clock.set(29);
    assert!(t.l1().unwrap().get("k").unwrap().is_some());
    clock.set(30);
    assert_eq!(t.l1().unwrap().get("k").unwrap(), None, "an L1 copy of unknown lifetime lives l1_backfill_ttl");
}

#[test]
fn options_cap_lifetimes_and_can_disable_l1() {
    let clock = ManualClock::at(0);
    let l2 = SwitchableL2::new(&clock);
    let t = TieredStore::new(
        l2.clone(),
        TieredOptions { absolute_expiration_relative_to_now: Some(Duration::from_secs(60)), ..opts(&clock) },
    )
    .unwrap();
    t.set("k", v("1"), Expiry::at(3600)).unwrap();
    clock.set(60);
    assert_eq!(t.get("k").unwrap(), None, "capped at 60 s in both tiers");

    let no_l1 = TieredStore::new(l2.clone(), TieredOptions { disable_l1: true, ..opts(&clock) }).unwrap();
    assert!(no_l1.l1().is_none());
    no_l1.set("n", v("1"), Expiry::NEVER).unwrap();
    let calls = l2.calls();
    assert_eq!(no_l1.get("n").unwrap(), Some(v("1")));
    assert_eq!(l2.calls(), calls + 1, "every read goes to L2");
    assert_eq!(no_l1.stats().l2_hits, 1);

    for bad in [0.0, -1.0, 1.5, f64::NAN] {
        let e = TieredStore::new(l2.clone(), TieredOptions { l1_expiration_ratio: bad, ..opts(&clock) }).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    }
}

#[test]
fn serve_from_l1_keeps_l1_reads_working_and_counts_and_logs_failures() {
    let clock = ManualClock::at(0);
    let l2 = SwitchableL2::new(&clock);
    let t = TieredStore::new(
        l2.clone(),
        TieredOptions { on_l2_failure: L2FailurePolicy::ServeFromL1, circuit_failure_threshold: 0, ..opts(&clock) },
    )
    .unwrap();
    logs();
    t.set("hot", v("h"), Expiry::NEVER).unwrap();
    l2.down.store(true, Ordering::SeqCst);
    assert_eq!(t.get("hot").unwrap(), Some(v("h")), "in L1: served");
    assert_eq!(t.get("cold").unwrap(), None, "not in L1: a miss, not an error");
    t.set("new", v("n"), Expiry::NEVER).unwrap();
    assert_eq!(t.get("new").unwrap(), Some(v("n")), "the write reached L1");
    t.remove("hot").unwrap();
    assert_eq!(t.purge_expired().unwrap(), 0);
    let st = t.stats();
    assert_eq!(st.l2_errors, 4, "read, write, remove, purge");
    assert_eq!(st.circuit, None, "breaker disabled");
    let test = "serve_from_l1_keeps_l1_reads_working_and_counts_and_logs_failures";
    assert_eq!(logged(test, log::Level::Error, "L2 read failed"), 1);
    assert_eq!(logged(test, log::Level::Error, "L2 write failed"), 1);
    assert_eq!(logged(test, log::Level::Error, "L2 remove failed"), 1);
}

#[test]
fn propagate_returns_the_error_after_updating_l1() {
    let clock = ManualClock::at(0);
    let l2 = SwitchableL2::new(&clock);
    let t = TieredStore::new(
        l2.clone(),
        TieredOptions { on_l2_failure: L2FailurePolicy::Propagate, circuit_failure_threshold: 0, ..opts(&clock) },
    )
    .unwrap();
    t.set("hot", v("h"), Expiry::NEVER).unwrap();
    l2.down.store(true, Ordering::SeqCst);
    assert_eq!(t.get("hot").unwrap(), Some(v("h")), "L1 hits need no L2");
    assert_eq!(t.get("cold").unwrap_err().kind(), l2_error().kind());
    assert_eq!(t.set("new", v("n"), Expiry::NEVER).unwrap_err().kind(), l2_error().kind());
    assert_eq!(t.l1().unwrap().get("new").unwrap(), Some(v("n")));
    assert!(t.remove("hot").is_err());
    assert_eq!(t.stats().l2_errors, 3);
    assert_eq!(t.stats().l2_retries, 0);
}

#[test]
fn retry_once_recovers_from_one_failure_and_propagates_two() {
    let clock = ManualClock::at(0);
    let l2 = SwitchableL2::new(&clock);
    let t = TieredStore::new(
        l2.clone(),
        TieredOptions { on_l2_failure: L2FailurePolicy::RetryOnce, circuit_failure_threshold: 0, ..opts(&clock) },
    )
    .unwrap();
    logs();
    l2.fail_next.store(1, Ordering::SeqCst);
    t.set("k", v("1"), Expiry::NEVER).unwrap();
    assert_eq!(l2.inner.get("k").unwrap(), Some(v("1")), "the retry wrote it");
    l2.fail_next.store(2, Ordering::SeqCst);
    assert_eq!(t.get("other").unwrap_err().kind(), l2_error().kind());
    let st = t.stats();
    assert_eq!((st.l2_errors, st.l2_retries), (3, 2));
    let test = "retry_once_recovers_from_one_failure_and_propagates_two";
    assert_eq!(logged(test, log::Level::Error, "(attempt 1 of 2)"), 2);
    assert_eq!(logged(test, log::Level::Error, "(attempt 2 of 2)"), 1);
}

#[test]
fn circuit_breaker_skips_a_failing_l2_then_probes_it() {
    let clock = ManualClock::at(0);
    let l2 = SwitchableL2::new(&clock);
    let t = TieredStore::new(
        l2.clone(),
        TieredOptions {
            circuit_failure_threshold: 3,
            circuit_cool_down: Duration::from_millis(300),
            on_l2_failure: L2FailurePolicy::ServeFromL1,
            ..opts(&clock)
        },
    )
    .unwrap();
    logs();
    l2.down.store(true, Ordering::SeqCst);
    for i in 0..3 {
        assert_eq!(t.get(&format!("miss{i}")).unwrap(), None);
    }
    assert_eq!(t.stats().circuit, Some(CircuitState::Open));
    assert_eq!(t.stats().circuit_opened, 1);
    let calls = l2.calls();
    for i in 0..50 {
        t.set(&format!("w{i}"), v("x"), Expiry::NEVER).unwrap();
    }
    assert!(l2.calls() - calls <= 1, "open circuit: L2 skipped (at most one probe if the cool-down passed)");
    assert!(t.stats().l2_skipped >= 49);
    assert!(t.get("w7").unwrap().is_some(), "L1 still serves");

    // Still down when probed: reopens. Up again: the next probe closes it.
    assert!(poll_until(Duration::from_secs(10), || {
        let _ = t.get("probe-down");
        t.stats().circuit_opened >= 2
    }));
    l2.down.store(false, Ordering::SeqCst);
    assert!(poll_until(Duration::from_secs(10), || {
        t.set("after", v("a"), Expiry::NEVER).unwrap();
        t.stats().circuit == Some(CircuitState::Closed)
    }));
    assert_eq!(l2.inner.get("after").unwrap(), Some(v("a")), "writes reach L2 again");
    let test = "circuit_breaker_skips_a_failing_l2_then_probes_it";
    assert!(logged(test, log::Level::Error, "circuit opened") >= 2);
    assert_eq!(logged(test, log::Level::Info, "circuit closed"), 1);
}

#[test]
fn concurrent_load_with_failures_is_counted_and_never_panics() {
    let clock = ManualClock::at(0);
    let l2 = SwitchableL2::new(&clock);
    let t = Arc::new(
        TieredStore::new(
            l2.clone(),
            TieredOptions { circuit_cool_down: Duration::from_millis(5), l1_max_bytes: 4096, ..opts(&clock) },
        )
        .unwrap(),
    );
    let threads: Vec<_> = (0..6)
        .map(|n| {
            let (t, l2) = (t.clone(), l2.clone());
            std::thread::spawn(move || {
                for i in 0..2000u32 {
                    if n == 0 && i % 100 == 0 {
                        l2.down.store(i % 200 == 0, Ordering::SeqCst);
                    }
                    let k = format!("k{}", i % 64);
                    if i % 3 == 0 {
                        // Refused only when more writes wait for L2 than L1 could hold.
                        if let Err(e) = t.set(&k, Bytes::from(vec![n as u8; 100]), Expiry::NEVER) {
                            assert!(matches!(e.kind(), ErrorKind::Io | ErrorKind::StoreUnavailable), "{e}");
                        }
                    } else {
                        let _ = t.get(&k).unwrap();
                    }
                }
            })
        })
        .collect();
    for th in threads {
        th.join().expect("no panic");
    }
    let st = t.stats();
    assert!(st.l2_errors > 0 && st.l1_bytes <= 4096, "{st:?}");
    assert_eq!(st.l1_hits + st.l2_hits + st.misses, 6 * 2000 - 6 * 667, "every read accounted for: {st:?}");
}

/// Bindings choose the L2 at run time: a trait object works as one.
#[test]
fn a_dynamic_l2() {
    let l2: Arc<dyn L2Store> = Arc::new(MemoryStore::default());
    let t = TieredStore::new(l2.clone(), TieredOptions::default()).unwrap();
    t.set("k", v("1"), Expiry::NEVER).unwrap();
    assert_eq!(l2.get("k").unwrap(), Some(v("1")));
    let dynamic: Arc<dyn Store> = Arc::new(t);
    assert_eq!(dynamic.get("k").unwrap(), Some(v("1")));
}

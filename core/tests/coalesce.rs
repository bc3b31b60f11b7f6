//! Request coalescing in one process: one fetch for many threads, errors delivered
//! once, panics and timeouts, the access-token form on a TokenCache, and leases in
//! memory (several coalescers standing for several processes).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use tokencache::coalesce::{AccessTokenQuery, Coalescer, LeaseOptions};
use tokencache::store::{LeaseStore, MemoryLeases};
use tokencache::{Error, ErrorKind, Map, TokenCache, Value, json};

const THREADS: usize = 64;
const LONG: Duration = Duration::from_secs(60);

/// Waits (bounded) until `n` callers wait on `key`'s flight: then every thread has
/// joined it, and the count of fetches can't depend on scheduling.
fn until_waiters<T: Clone, E: Clone + From<Error>>(c: &Coalescer<T, E>, key: &str, n: usize) {
    let start = Instant::now();
    while c.waiters(key) < n {
        assert!(start.elapsed() < LONG, "only {} of {n} callers joined the flight", c.waiters(key));
        thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn sixty_four_threads_missing_one_key_run_one_fetch() {
    let c: Arc<Coalescer<String>> = Arc::new(Coalescer::new());
    let stored: Arc<Mutex<Option<String>>> = Arc::default();
    let fetches = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let (c, stored, fetches, barrier) = (c.clone(), stored.clone(), fetches.clone(), barrier.clone());
            thread::spawn(move || {
                barrier.wait();
                c.get_or_fetch(
                    "k",
                    LONG,
                    || Ok(stored.lock().unwrap().clone()),
                    || {
                        fetches.fetch_add(1, Ordering::SeqCst);
                        until_waiters(&c, "k", THREADS - 1);
                        *stored.lock().unwrap() = Some("token-1".into());
                        Ok("token-1".to_owned())
                    },
                )
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap().unwrap(), "token-1");
    }
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
    let s = c.stats();
    assert_eq!((s.flights, s.fetches, s.coalesced, s.failures), (1, 1, THREADS as u64 - 1, 0), "{s:?}");
    assert_eq!(c.in_flight(), 0);
    // Afterwards: a hit, no flight.
    assert_eq!(c.get_or_fetch("k", LONG, || Ok(stored.lock().unwrap().clone()), || unreachable!()).unwrap(), "token-1");
    assert_eq!(c.stats().hits, 1);
}

#[test]
fn threads_arriving_at_any_time_still_fetch_once() {
    // No gate: whoever comes after the flight finds the stored value, either by its
    // first lookup or by the leader's second one.
    for _round in 0..20 {
        let c: Arc<Coalescer<u64>> = Arc::new(Coalescer::new());
        let stored: Arc<Mutex<Option<u64>>> = Arc::default();
        let fetches = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..16)
            .map(|_| {
                let (c, stored, fetches) = (c.clone(), stored.clone(), fetches.clone());
                thread::spawn(move || {
                    c.get_or_fetch(
                        "k",
                        LONG,
                        || Ok(*stored.lock().unwrap()),
                        || {
                            let n = fetches.fetch_add(1, Ordering::SeqCst) as u64 + 7;
                            *stored.lock().unwrap() = Some(n);
                            Ok(n)
                        },
                    )
                })
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap().unwrap(), 7);
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
    }
}

#[test]
fn different_keys_fetch_separately() {
    let c: Coalescer<String> = Coalescer::new();
    let a = c.get_or_fetch("a", LONG, || Ok(None), || Ok("A".to_owned())).unwrap();
    let b = c.get_or_fetch("b", LONG, || Ok(None), || Ok("B".to_owned())).unwrap();
    assert_eq!((a.as_str(), b.as_str()), ("A", "B"));
    assert_eq!(c.stats().fetches, 2);
}

#[test]
fn a_failed_fetch_fails_its_waiters_once_and_the_next_call_fetches_again() {
    let c: Arc<Coalescer<String>> = Arc::new(Coalescer::new());
    let fetches = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let (c, fetches, barrier) = (c.clone(), fetches.clone(), barrier.clone());
            thread::spawn(move || {
                barrier.wait();
                c.get_or_fetch(
                    "k",
                    LONG,
                    || Ok(None),
                    || {
                        fetches.fetch_add(1, Ordering::SeqCst);
                        until_waiters(&c, "k", THREADS - 1);
                        Err(json::parse("nope").map(drop).unwrap_err().into())
                    },
                )
            })
        })
        .collect();
    for h in handles {
        let e = h.join().unwrap().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidJson, "every caller of the flight gets the fetch's own error");
    }
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
    assert_eq!(c.stats().failures, 1);
    // The error is not cached: the next call fetches.
    let v = c
        .get_or_fetch(
            "k",
            LONG,
            || Ok(None),
            || {
                fetches.fetch_add(1, Ordering::SeqCst);
                Ok("second".to_owned())
            },
        )
        .unwrap();
    assert_eq!(v, "second");
    assert_eq!(fetches.load(Ordering::SeqCst), 2);
}

#[test]
fn a_panicking_fetch_wakes_its_waiters_with_an_error() {
    let c: Arc<Coalescer<String>> = Arc::new(Coalescer::new());
    let (started_tx, started_rx) = mpsc::channel();
    let leader = {
        let c = c.clone();
        thread::spawn(move || {
            catch_unwind(AssertUnwindSafe(|| {
                c.get_or_fetch(
                    "k",
                    LONG,
                    || Ok(None),
                    || {
                        started_tx.send(()).unwrap();
                        until_waiters(&c, "k", 3);
                        panic!("fetch bug");
                    },
                )
            }))
        })
    };
    started_rx.recv().unwrap();
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let c = c.clone();
            thread::spawn(move || c.get_or_fetch("k", LONG, || Ok(None), || Ok("not me".to_owned())))
        })
        .collect();
    assert!(leader.join().unwrap().is_err(), "the panic goes on in the leader");
    for w in waiters {
        let e = w.join().unwrap().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert!(e.message().contains("panicked"), "{e}");
    }
    assert_eq!(c.in_flight(), 0);
    assert_eq!(c.get_or_fetch("k", LONG, || Ok(None), || Ok("again".to_owned())).unwrap(), "again");
}

#[test]
fn a_waiter_gives_up_after_its_timeout_and_the_flight_goes_on() {
    let c: Arc<Coalescer<String>> = Arc::new(Coalescer::new());
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (started_tx, started_rx) = mpsc::channel();
    let leader = {
        let c = c.clone();
        thread::spawn(move || {
            c.get_or_fetch(
                "k",
                LONG,
                || Ok(None),
                || {
                    started_tx.send(()).unwrap();
                    go_rx.recv().unwrap();
                    Ok("late".to_owned())
                },
            )
        })
    };
    started_rx.recv().unwrap();
    let e = c.get_or_fetch("k", Duration::from_millis(20), || Ok(None), || Ok("not me".to_owned())).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::LockTimeout);
    assert_eq!(c.waiters("k"), 0, "the waiter left");
    assert_eq!(c.stats().timeouts, 1);
    go_tx.send(()).unwrap();
    assert_eq!(leader.join().unwrap().unwrap(), "late");
}

#[test]
fn the_leader_looks_again_before_fetching() {
    // The first lookup misses; by the time the flight starts, an earlier flight
    // has stored the value: no fetch.
    let c: Coalescer<String> = Coalescer::new();
    let mut calls = 0;
    let v = c
        .get_or_fetch(
            "k",
            LONG,
            || {
                calls += 1;
                Ok((calls > 1).then(|| "stored by the last flight".to_owned()))
            },
            || unreachable!("no fetch"),
        )
        .unwrap();
    assert_eq!(v, "stored by the last flight");
    let s = c.stats();
    assert_eq!((s.flights, s.fetches), (1, 0));
}

#[test]
fn a_lookup_error_reaches_the_caller_and_waiters() {
    let c: Coalescer<String> = Coalescer::new();
    let e = c
        .get_or_fetch("k", LONG, || Err(tokencache::json::parse("[").map(drop).unwrap_err().into()), || unreachable!())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidJson);
}

fn app_event(at: &str) -> Map {
    let text = format!(
        r#"{{"client_id": "app", "scope": ["https://graph.microsoft.com/.default"],
            "token_endpoint": "https://login.microsoftonline.com/contoso/oauth2/v2.0/token",
            "grant_type": "client_credentials",
            "response": {{"access_token": "{at}", "expires_in": 3600, "token_type": "Bearer"}}}}"#
    );
    match json::parse(&text).unwrap() {
        Value::Object(m) => m,
        _ => unreachable!(),
    }
}

fn app_query(now: i64) -> AccessTokenQuery {
    AccessTokenQuery {
        now: Some(now),
        ..AccessTokenQuery::app(
            "login.microsoftonline.com",
            "app",
            "contoso",
            &["https://graph.microsoft.com/.default"],
        )
    }
}

#[test]
fn token_cache_fetches_a_missing_access_token_once_for_all_threads() {
    let now = 1_700_000_000;
    let cache = Arc::new(TokenCache::new());
    let c: Arc<Coalescer<tokencache::Entry>> = Arc::new(Coalescer::new());
    let fetches = Arc::new(AtomicUsize::new(0));
    let key = app_query(now).coalesce_key();
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let (cache, c, fetches, barrier, key) =
                (cache.clone(), c.clone(), fetches.clone(), barrier.clone(), key.clone());
            thread::spawn(move || {
                barrier.wait();
                cache.get_or_fetch_access_token(&c, &app_query(now), LONG, || {
                    fetches.fetch_add(1, Ordering::SeqCst);
                    until_waiters(&c, &key, THREADS - 1);
                    Ok(app_event("at-1"))
                })
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap().unwrap().secret().as_deref(), Some("at-1"));
    }
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
    assert_eq!(cache.len(), 2, "the AT and the app metadata were added once");
    // Served from the cache now.
    let at = cache.get_or_fetch_access_token(&c, &app_query(now + 60), LONG, || unreachable!()).unwrap();
    assert_eq!(at.secret().as_deref(), Some("at-1"));
    // Within msal's 5-minute margin of expiry: fetched again.
    let at = cache.get_or_fetch_access_token(&c, &app_query(now + 3400), LONG, || Ok(app_event("at-2"))).unwrap();
    assert_eq!(at.secret().as_deref(), Some("at-2"));
}

#[test]
fn token_cache_rejects_an_event_without_the_asked_token_and_changes_nothing_on_error() {
    let now = 1_700_000_000;
    let cache = TokenCache::new();
    let c: Coalescer<tokencache::Entry> = Coalescer::new();
    let mut other = app_query(now);
    other.scopes = vec!["https://vault.azure.net/.default".into()];
    let e = cache.get_or_fetch_access_token(&c, &other, LONG, || Ok(app_event("at-1"))).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidEvent);
    assert!(!e.message().contains("at-1"), "no token in messages: {e}");
    // A failed fetch adds nothing.
    let cache = TokenCache::new();
    let before = cache.serialize();
    let e = cache
        .get_or_fetch_access_token(&c, &app_query(now), LONG, || Err(json::parse("{").map(drop).unwrap_err().into()))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidJson);
    assert_eq!(cache.serialize(), before);
}

/// Several coalescers on one lease table stand for several processes on one store.
#[test]
fn leases_let_one_of_several_coalescers_fetch() {
    let leases: Arc<MemoryLeases> = Arc::new(MemoryLeases::new());
    let stored: Arc<Mutex<Option<String>>> = Arc::default();
    let fetches = Arc::new(AtomicUsize::new(0));
    let coalescers: Vec<Arc<Coalescer<String>>> =
        (0..4).map(|_| Arc::new(Coalescer::with_lease(leases.clone(), LeaseOptions::default()).unwrap())).collect();
    let barrier = Arc::new(Barrier::new(4 * 8));
    let mut handles = Vec::new();
    for c in &coalescers {
        for _ in 0..8 {
            let (c, stored, fetches, barrier, all) =
                (c.clone(), stored.clone(), fetches.clone(), barrier.clone(), coalescers.clone());
            handles.push(thread::spawn(move || {
                barrier.wait();
                c.get_or_fetch(
                    "k",
                    LONG,
                    || Ok(stored.lock().unwrap().clone()),
                    || {
                        fetches.fetch_add(1, Ordering::SeqCst);
                        // Hold the fetch until the other three "processes" poll.
                        let start = Instant::now();
                        while all.iter().map(|o| o.stats().lease_waits).sum::<u64>() < 3 {
                            assert!(start.elapsed() < LONG);
                            thread::sleep(Duration::from_millis(1));
                        }
                        *stored.lock().unwrap() = Some("shared".into());
                        Ok("shared".to_owned())
                    },
                )
            }));
        }
    }
    for h in handles {
        assert_eq!(h.join().unwrap().unwrap(), "shared");
    }
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
    // The three others were served by the holder's fetch: each at least once (a late
    // thread that leads a second flight while the holder has written but not yet
    // released waits and is served again; see `stores_coalesce.rs`).
    let stats: Vec<_> = coalescers.iter().map(|c| c.stats()).collect();
    assert_eq!(stats.iter().map(|s| s.fetches).sum::<u64>(), 1);
    for s in stats.iter().filter(|s| s.fetches == 0) {
        assert!(s.lease_served >= 1, "a coalescer neither fetched nor was served: {s:?}");
    }
    assert!(leases.is_empty(), "the holder released its lease");
}

#[test]
fn an_abandoned_lease_expires_and_a_poller_takes_over() {
    let leases = Arc::new(MemoryLeases::new());
    assert!(leases.try_acquire("k", "crashed-process", Duration::from_millis(30)).unwrap());
    let opts = LeaseOptions {
        initial_poll: Duration::from_millis(1),
        max_poll: Duration::from_millis(5),
        ..Default::default()
    };
    let c: Coalescer<String> = Coalescer::with_lease(leases.clone(), opts).unwrap();
    let v = c.get_or_fetch("k", LONG, || Ok(None), || Ok("fetched after expiry".to_owned())).unwrap();
    assert_eq!(v, "fetched after expiry");
    let s = c.stats();
    assert_eq!((s.lease_waits, s.fetches), (1, 1));
}

#[test]
fn a_fetch_longer_than_the_lease_keeps_it_renewed() {
    // A fetch of four lease TTLs: without renewal the other "process" would take the
    // lapsed lease and fetch a second time.
    let leases = Arc::new(MemoryLeases::new());
    let opts = LeaseOptions {
        ttl: Duration::from_millis(150),
        initial_poll: Duration::from_millis(1),
        max_poll: Duration::from_millis(5),
    };
    let a: Arc<Coalescer<String>> = Arc::new(Coalescer::with_lease(leases.clone(), opts).unwrap());
    let b: Arc<Coalescer<String>> = Arc::new(Coalescer::with_lease(leases.clone(), opts).unwrap());
    let stored: Arc<Mutex<Option<String>>> = Arc::default();
    let fetches = Arc::new(AtomicUsize::new(0));
    let run = |c: Arc<Coalescer<String>>, other: Arc<Coalescer<String>>, slow: bool| {
        let (stored, fetches) = (stored.clone(), fetches.clone());
        thread::spawn(move || {
            c.get_or_fetch(
                "k",
                LONG,
                || Ok(stored.lock().unwrap().clone()),
                || {
                    fetches.fetch_add(1, Ordering::SeqCst);
                    if slow {
                        let start = Instant::now();
                        while other.stats().lease_waits == 0 {
                            assert!(start.elapsed() < LONG);
                            thread::sleep(Duration::from_millis(1));
                        }
                        thread::sleep(Duration::from_millis(600));
                    }
                    *stored.lock().unwrap() = Some("slow token".into());
                    Ok("slow token".to_owned())
                },
            )
        })
    };
    let holder = run(a.clone(), b.clone(), true);
    // b starts once a holds the lease.
    let start = Instant::now();
    while leases.is_empty() {
        assert!(start.elapsed() < LONG);
        thread::sleep(Duration::from_millis(1));
    }
    let poller = run(b.clone(), a.clone(), false);
    assert_eq!(holder.join().unwrap().unwrap(), "slow token");
    assert_eq!(poller.join().unwrap().unwrap(), "slow token");
    assert_eq!(fetches.load(Ordering::SeqCst), 1, "the renewed lease kept the poller waiting");
    assert_eq!(b.stats().lease_served, 1);
    assert!(leases.is_empty(), "released after the fetch");
}

#[test]
fn a_panicking_fetch_under_a_lease_stops_its_renewal_and_releases_the_lease() {
    let leases = Arc::new(MemoryLeases::new());
    let opts = LeaseOptions { ttl: Duration::from_millis(30), ..Default::default() };
    let c: Coalescer<String> = Coalescer::with_lease(leases.clone(), opts).unwrap();
    let out = catch_unwind(AssertUnwindSafe(|| {
        c.get_or_fetch(
            "k",
            LONG,
            || Ok(None),
            || {
                thread::sleep(Duration::from_millis(50)); // past a renewal
                panic!("fetch bug")
            },
        )
    }));
    assert!(out.is_err(), "the panic goes on, the renewer stopped (no hang)");
    assert!(leases.is_empty(), "the lease was released");
    assert_eq!(c.get_or_fetch("k", LONG, || Ok(None), || Ok("again".to_owned())).unwrap(), "again");
}

/// Leases whose every `try_acquire` comes right after another process stored the value
/// and released its lease (it "finishes" at that moment).
struct FinishesBeforeEachAcquire {
    leases: MemoryLeases,
    stored: std::sync::atomic::AtomicBool,
}

impl LeaseStore for FinishesBeforeEachAcquire {
    fn try_acquire(&self, key: &str, owner: &str, ttl: Duration) -> tokencache::Result<bool> {
        self.stored.store(true, Ordering::SeqCst);
        self.leases.try_acquire(key, owner, ttl)
    }
    fn release(&self, key: &str, owner: &str) -> tokencache::Result<bool> {
        self.leases.release(key, owner)
    }
}

#[test]
fn a_process_that_finished_just_before_the_lease_was_taken_is_not_fetched_again() {
    // Another process fetched, stored and released its lease after this caller's
    // lookups missed and before it took the lease: the value is there, so no fetch.
    let leases = Arc::new(FinishesBeforeEachAcquire { leases: MemoryLeases::new(), stored: Default::default() });
    let c: Coalescer<String> = Coalescer::with_lease(leases.clone(), LeaseOptions::default()).unwrap();
    let lookup = || Ok(leases.stored.load(Ordering::SeqCst).then(|| "the other process's token".to_owned()));
    let v = c.get_or_fetch("k", LONG, lookup, || Ok("a second request".to_owned())).unwrap();
    assert_eq!(v, "the other process's token");
    assert_eq!(c.stats().fetches, 0);
}

#[test]
fn a_held_lease_bounds_the_wait_by_the_timeout() {
    let leases = Arc::new(MemoryLeases::new());
    assert!(leases.try_acquire("k", "other", LONG).unwrap());
    let c: Coalescer<String> = Coalescer::with_lease(leases, LeaseOptions::default()).unwrap();
    let e = c.get_or_fetch("k", Duration::from_millis(30), || Ok(None), || unreachable!()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::LockTimeout);
    assert_eq!(c.stats().timeouts, 1);
}

struct BrokenLeases;

impl LeaseStore for BrokenLeases {
    fn try_acquire(&self, _: &str, _: &str, _: Duration) -> tokencache::Result<bool> {
        Err(json::parse("x").map(drop).unwrap_err().into())
    }
    fn release(&self, _: &str, _: &str) -> tokencache::Result<bool> {
        unreachable!("never acquired")
    }
}

#[test]
fn a_failing_lease_store_does_not_stop_the_fetch() {
    let c: Coalescer<String> = Coalescer::with_lease(Arc::new(BrokenLeases), LeaseOptions::default()).unwrap();
    assert_eq!(c.get_or_fetch("k", LONG, || Ok(None), || Ok("v".to_owned())).unwrap(), "v");
    assert_eq!(c.stats().lease_errors, 1);
}

#[test]
fn memory_leases_are_released_by_their_owner_only() {
    let l = MemoryLeases::new();
    assert!(l.try_acquire("k", "a", LONG).unwrap());
    assert!(!l.try_acquire("k", "b", LONG).unwrap());
    assert!(l.try_acquire("k", "a", LONG).unwrap(), "the owner renews");
    assert!(!l.release("k", "b").unwrap());
    assert!(!l.try_acquire("k", "b", LONG).unwrap(), "still a's");
    assert!(l.release("k", "a").unwrap());
    assert!(l.try_acquire("k", "b", LONG).unwrap());
    assert_eq!(l.try_acquire("", "b", LONG).unwrap_err().kind(), ErrorKind::InvalidArgument);
    assert_eq!(l.try_acquire("k", "b", Duration::ZERO).unwrap_err().kind(), ErrorKind::InvalidArgument);
}

#[test]
fn bad_lease_options_are_rejected() {
    let bad = LeaseOptions { ttl: Duration::ZERO, ..Default::default() };
    let e = Coalescer::<String>::with_lease(Arc::new(MemoryLeases::new()), bad).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
}

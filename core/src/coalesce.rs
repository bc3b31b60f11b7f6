//! Request coalescing ("single flight"): when many callers miss the same token at
//! once — a cold start, an expiry — one of them fetches it and the others wait for
//! its result, instead of each going to the token endpoint (msal-node #6566,
//! MSAL.NET #2329: no MSAL library does this).
//!
//! [`Coalescer::get_or_fetch`] takes a key, a `lookup` (is the value there
//! already?) and a `fetch` (get it, and store it where `lookup` will find it):
//!
//! - `lookup` finds the value: it is returned; nothing waits.
//! - Otherwise the first caller for the key becomes the flight's *leader*: it looks
//!   again (a flight that just ended may have stored the value) and runs `fetch`.
//!   Callers arriving meanwhile block on a condition variable (no spinning) until
//!   the leader is done and then return a clone of its result — or of its error:
//!   an error reaches the callers of that flight only, and the next call after it
//!   starts a new flight. A leader whose `fetch` panics wakes its waiters with an
//!   [`ErrorKind::InvalidArgument`] error (the panic goes on in the leader).
//! - A caller that waits longer than its `timeout` gets [`ErrorKind::LockTimeout`].
//!
//! `fetch` stores what it fetched before it returns (the leader wakes its waiters
//! only after), so a caller arriving after the flight finds the value by `lookup`.
//!
//! Across processes, a coalescer built [`with_lease`](Coalescer::with_lease) has
//! the leader take a short lease in a shared store ([`LeaseStore`]: Redis
//! `SET NX PX`, a SQLite row) before fetching. The leader of another process that
//! finds the lease taken polls `lookup` (with backoff, bounded by the timeout)
//! until the value appears — the lease holder stored it in the shared cache — or
//! the lease is released or expires, and then takes the lease itself. So one
//! process fetches at a time, and one thread per process polls.
//!
//! `fetch` and `lookup` are plain closures returning `Result`, so a C callback or a
//! Python function can drive them. [`TokenCache::get_or_fetch_access_token`] is
//! the access-token form: look up, fetch a token response event on a miss, `add` it,
//! return the access token.
//!
//! ```
//! use std::time::Duration;
//! use tokencache::coalesce::Coalescer;
//!
//! let coalescer: Coalescer<String> = Coalescer::new();
//! let token = coalescer.get_or_fetch("graph", Duration::from_secs(10), || Ok(None), || {
//!     Ok("fetched once".to_owned())   // a call to the token endpoint, stored by the caller
//! })?;
//! assert_eq!(token, "fetched once");
//! # Ok::<(), tokencache::Error>(())
//! ```

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::cache::{TokenCache, unix_now};
use crate::entry::Entry;
use crate::error::{Error, ErrorKind, Result};
use crate::json::Map;
use crate::store::LeaseStore;

/// How the leader of a [`Coalescer`] built with a lease shares the fetch with
/// other processes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseOptions {
    /// How long a lease lives if its holder never releases it (a crash). The holder
    /// renews it every third of this while its fetch runs, so a slow fetch keeps it.
    /// Default 10 s.
    pub ttl: Duration,
    /// The first pause between two polls of `lookup` while another process holds
    /// the lease; doubled after each poll. Default 10 ms.
    pub initial_poll: Duration,
    /// The longest pause between two polls. Default 200 ms.
    pub max_poll: Duration,
}

impl Default for LeaseOptions {
    fn default() -> Self {
        LeaseOptions {
            ttl: Duration::from_secs(10),
            initial_poll: Duration::from_millis(10),
            max_poll: Duration::from_millis(200),
        }
    }
}

/// Counters of a [`Coalescer`] since it was created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CoalesceStats {
    /// Calls whose first `lookup` found the value.
    pub hits: u64,
    /// Flights started (calls that led one).
    pub flights: u64,
    /// Fetches run (a flight whose second lookup or lease wait found the value runs none).
    pub fetches: u64,
    /// Calls that waited for another caller's flight and got its result or error.
    pub coalesced: u64,
    /// Flights that ended in an error (including a panic and a leader's timeout).
    pub failures: u64,
    /// Calls that gave up waiting ([`ErrorKind::LockTimeout`]).
    pub timeouts: u64,
    /// Flights that found another process's lease and polled.
    pub lease_waits: u64,
    /// Flights served by another process's fetch (the value appeared while polling).
    pub lease_served: u64,
    /// Lease store calls that failed (the flight then fetched without a lease).
    pub lease_errors: u64,
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    flights: AtomicU64,
    fetches: AtomicU64,
    coalesced: AtomicU64,
    failures: AtomicU64,
    timeouts: AtomicU64,
    lease_waits: AtomicU64,
    lease_served: AtomicU64,
    lease_errors: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

struct Flight<T, E> {
    outcome: Mutex<Option<Result<T, E>>>,
    done: Condvar,
    waiters: AtomicUsize,
}

/// Single-flight fetches by key, in one process and optionally across processes
/// (see the [module documentation](self)). `Send + Sync`; share it (`Arc`) between
/// the threads that fetch. No lock is held while `lookup` or `fetch` runs.
///
/// `T` is what a fetch yields (cloned to every waiter), `E` its error (cloned too;
/// the coalescer's own errors — timeout, panic, lease — convert from [`Error`]).
pub struct Coalescer<T, E = Error> {
    flights: Mutex<HashMap<String, Arc<Flight<T, E>>>>,
    counters: Counters,
    lease: Option<(Arc<dyn LeaseStore>, LeaseOptions)>,
}

impl<T, E> std::fmt::Debug for Coalescer<T, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coalescer")
            .field("in_flight", &self.flights.lock().len())
            .field("lease", &self.lease.as_ref().map(|(_, o)| o))
            .finish()
    }
}

impl<T, E> Default for Coalescer<T, E> {
    fn default() -> Self {
        Coalescer { flights: Mutex::new(HashMap::new()), counters: Counters::default(), lease: None }
    }
}

static OWNER_SEQ: AtomicU64 = AtomicU64::new(0);

/// A lease owner id no other flight (in any process) uses: pid, start time, sequence.
fn new_owner() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{}-{nanos}-{}", std::process::id(), OWNER_SEQ.fetch_add(1, Ordering::Relaxed))
}

/// Runs `fetch` while a helper thread renews `held` every third of `ttl`, so a
/// fetch slower than the lease's TTL keeps it (and the other processes keep
/// waiting for its value instead of fetching too). A failed renewal is logged; the
/// lease then lapses at its TTL, as before.
fn renewing<T>(store: &Arc<dyn LeaseStore>, held: &HeldLease<'_>, ttl: Duration, fetch: impl FnOnce() -> T) -> T {
    type Done = Arc<(parking_lot::Mutex<bool>, parking_lot::Condvar)>;
    let done: Done = Arc::default();
    let (store, key, owner, until) = (store.clone(), held.key.to_owned(), held.owner.clone(), done.clone());
    // A thread of its own, joined below (not a scoped one: that would give the calling
    // thread a handle std keeps to the process's end).
    let renewer = std::thread::Builder::new().name("tokencache-lease".into()).spawn(move || {
        let mut finished = until.0.lock();
        loop {
            let _ = until.1.wait_for(&mut finished, (ttl / 3).max(Duration::from_millis(1)));
            if *finished {
                return;
            }
            match store.try_acquire(&key, &owner, ttl) {
                Ok(true) => log::debug!("coalesce: a fetch outlasting a third of the lease renewed it"),
                Ok(false) => {
                    log::warn!("coalesce: the lease lapsed during a long fetch; another process may fetch too");
                    return;
                }
                Err(e) => log::warn!("coalesce: renewing a lease failed: {e}"),
            }
        }
    });
    // Stops and joins the renewer when the fetch returns, and when it panics.
    struct Stop(Done, Option<std::thread::JoinHandle<()>>);
    impl Drop for Stop {
        fn drop(&mut self) {
            *self.0.0.lock() = true;
            self.0.1.notify_all();
            if let Some(h) = self.1.take() {
                let _ = h.join();
            }
        }
    }
    let _stop = match renewer {
        Ok(h) => Stop(done, Some(h)),
        Err(e) => {
            log::warn!("coalesce: no thread to renew the lease ({e}); it lapses at its TTL");
            Stop(done, None)
        }
    };
    fetch()
}

/// Releases a held lease when dropped, also when the fetch panics.
struct HeldLease<'a> {
    store: &'a dyn LeaseStore,
    key: &'a str,
    owner: String,
}

impl Drop for HeldLease<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.store.release(self.key, &self.owner) {
            // It expires by itself; the others wait at most its TTL.
            log::warn!("coalesce: releasing a lease failed (it will expire): {e}");
        }
    }
}

impl<T: Clone, E: Clone + From<Error>> Coalescer<T, E> {
    /// A coalescer for the threads of this process.
    pub fn new() -> Self {
        Self::default()
    }

    /// A coalescer whose flights also take a lease in `store`, so that one process
    /// of those sharing the store fetches at a time.
    pub fn with_lease(store: Arc<dyn LeaseStore>, options: LeaseOptions) -> Result<Self> {
        if options.ttl.is_zero() || options.initial_poll.is_zero() || options.max_poll < options.initial_poll {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "lease options: ttl and initial_poll must be positive and max_poll at least initial_poll",
            ));
        }
        Ok(Coalescer { lease: Some((store, options)), ..Self::default() })
    }

    /// The counters.
    pub fn stats(&self) -> CoalesceStats {
        let c = &self.counters;
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        CoalesceStats {
            hits: l(&c.hits),
            flights: l(&c.flights),
            fetches: l(&c.fetches),
            coalesced: l(&c.coalesced),
            failures: l(&c.failures),
            timeouts: l(&c.timeouts),
            lease_waits: l(&c.lease_waits),
            lease_served: l(&c.lease_served),
            lease_errors: l(&c.lease_errors),
        }
    }

    /// Keys with a flight under way.
    pub fn in_flight(&self) -> usize {
        self.flights.lock().len()
    }

    /// Callers waiting for the flight of `key` now (0 when there is none).
    pub fn waiters(&self, key: &str) -> usize {
        self.flights.lock().get(key).map_or(0, |f| f.waiters.load(Ordering::Acquire))
    }

    /// The value of `key`: what `lookup` finds, else the result of one `fetch` shared
    /// by every caller that misses `key` meanwhile (see the [module documentation](self)).
    ///
    /// `fetch` must store what it fetched where `lookup` finds it before returning.
    /// `timeout` bounds how long this call waits for another caller's (or another
    /// process's) fetch; it does not bound this caller's own `fetch`.
    pub fn get_or_fetch<L, F>(&self, key: &str, timeout: Duration, mut lookup: L, fetch: F) -> Result<T, E>
    where
        L: FnMut() -> Result<Option<T>, E>,
        F: FnOnce() -> Result<T, E>,
    {
        let deadline = Instant::now().checked_add(timeout);
        if let Some(v) = lookup()? {
            bump(&self.counters.hits);
            return Ok(v);
        }
        let (flight, leader) = {
            let mut flights = self.flights.lock();
            match flights.get(key) {
                Some(f) => {
                    f.waiters.fetch_add(1, Ordering::AcqRel);
                    (f.clone(), false)
                }
                None => {
                    let f = Arc::new(Flight {
                        outcome: Mutex::new(None),
                        done: Condvar::new(),
                        waiters: AtomicUsize::new(0),
                    });
                    flights.insert(key.to_owned(), f.clone());
                    (f, true)
                }
            }
        };
        if !leader {
            return self.wait(&flight, key, deadline, timeout);
        }
        bump(&self.counters.flights);
        let guard = Leader { coalescer: self, key, flight, finished: false };
        let result = self.lead(key, deadline, timeout, &mut lookup, fetch);
        guard.finish(result)
    }

    fn lead<L, F>(
        &self,
        key: &str,
        deadline: Option<Instant>,
        timeout: Duration,
        lookup: &mut L,
        fetch: F,
    ) -> Result<T, E>
    where
        L: FnMut() -> Result<Option<T>, E>,
        F: FnOnce() -> Result<T, E>,
    {
        let Some((store, options)) = &self.lease else {
            // A flight that ended between our lookup and our registering stored its value.
            if let Some(v) = lookup()? {
                return Ok(v);
            }
            bump(&self.counters.fetches);
            return fetch();
        };
        let owner = new_owner();
        let mut pause = options.initial_poll;
        let mut waited = false;
        loop {
            match store.try_acquire(key, &owner, options.ttl) {
                Ok(true) => {
                    let held = HeldLease { store: &**store, key, owner };
                    // Looked up under the lease: a holder (of this process or another)
                    // that released it since our last lookup stored the value first.
                    if let Some(v) = lookup()? {
                        if waited {
                            bump(&self.counters.lease_served);
                        }
                        return Ok(v);
                    }
                    bump(&self.counters.fetches);
                    return renewing(store, &held, options.ttl, fetch);
                }
                Ok(false) => {}
                Err(e) => {
                    // A lease only saves requests: without the store, fetch anyway.
                    bump(&self.counters.lease_errors);
                    log::warn!("coalesce: the lease store failed, fetching without a lease: {e}");
                    if let Some(v) = lookup()? {
                        return Ok(v);
                    }
                    bump(&self.counters.fetches);
                    return fetch();
                }
            }
            if !waited {
                waited = true;
                bump(&self.counters.lease_waits);
            }
            let now = Instant::now();
            let left = deadline.map_or(pause, |d| d.saturating_duration_since(now));
            if left.is_zero() {
                return Err(self.timed_out(key, timeout));
            }
            std::thread::sleep(pause.min(left));
            pause = (pause * 2).min(options.max_poll);
            if let Some(v) = lookup()? {
                bump(&self.counters.lease_served);
                return Ok(v);
            }
        }
    }

    fn timed_out(&self, key: &str, timeout: Duration) -> E {
        bump(&self.counters.timeouts);
        let _ = key; // keys may hold user ids: not in the message
        E::from(Error::new(
            ErrorKind::LockTimeout,
            format!("gave up after {} ms waiting for another caller's fetch of this key", timeout.as_millis()),
        ))
    }

    fn wait(&self, flight: &Flight<T, E>, key: &str, deadline: Option<Instant>, timeout: Duration) -> Result<T, E> {
        let mut outcome = flight.outcome.lock();
        let result = loop {
            if let Some(r) = &*outcome {
                bump(&self.counters.coalesced);
                break r.clone();
            }
            match deadline {
                Some(d) => {
                    if flight.done.wait_until(&mut outcome, d).timed_out() && outcome.is_none() {
                        break Err(self.timed_out(key, timeout));
                    }
                }
                None => flight.done.wait(&mut outcome),
            }
        };
        drop(outcome);
        flight.waiters.fetch_sub(1, Ordering::AcqRel);
        result
    }
}

/// The leader's duty to end its flight: on `finish`, or — if `fetch` or `lookup`
/// panicked — on drop, with an error for the waiters.
struct Leader<'a, T: Clone, E: Clone + From<Error>> {
    coalescer: &'a Coalescer<T, E>,
    key: &'a str,
    flight: Arc<Flight<T, E>>,
    finished: bool,
}

impl<T: Clone, E: Clone + From<Error>> Leader<'_, T, E> {
    fn finish(mut self, result: Result<T, E>) -> Result<T, E> {
        self.finished = true;
        self.publish(result.clone());
        result
    }

    fn publish(&self, result: Result<T, E>) {
        if result.is_err() {
            bump(&self.coalescer.counters.failures);
        }
        {
            // New callers from here on look up (and find what fetch stored) or
            // start a new flight; this one's error stays with its own waiters.
            let mut flights = self.coalescer.flights.lock();
            if flights.get(self.key).is_some_and(|f| Arc::ptr_eq(f, &self.flight)) {
                flights.remove(self.key);
            }
        }
        *self.flight.outcome.lock() = Some(result);
        self.flight.done.notify_all();
    }
}

impl<T: Clone, E: Clone + From<Error>> Drop for Leader<'_, T, E> {
    fn drop(&mut self) {
        if !self.finished {
            self.publish(Err(E::from(Error::new(
                ErrorKind::InvalidArgument,
                "the fetch this call waited for panicked (a bug in the fetch function); the next call fetches again",
            ))));
        }
    }
}

/// Which access token [`TokenCache::get_or_fetch_access_token`] wants: the fields
/// of [`TokenCache::get_access_token`] plus when a cached one is still good.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessTokenQuery {
    /// The user's `home_account_id`; `None` for app tokens (client credentials).
    pub home_account_id: Option<String>,
    /// The authority's host, e.g. `login.microsoftonline.com`.
    pub environment: String,
    /// The application's client id.
    pub client_id: String,
    /// The tenant.
    pub realm: String,
    /// The scopes (any order).
    pub scopes: Vec<String>,
    /// msal's `ext_cache_key`, if the token has one.
    pub ext_cache_key: Option<String>,
    /// A cached token counts only if it expires more than this many seconds from
    /// now (msal's margin: 300) and its `refresh_on`, if any, has not passed.
    pub min_remaining_secs: i64,
    /// The clock (Unix seconds); `None` reads the system clock.
    pub now: Option<i64>,
}

impl AccessTokenQuery {
    /// A query for an app token (client credentials) with msal's 5-minute margin.
    pub fn app(environment: &str, client_id: &str, realm: &str, scopes: &[&str]) -> Self {
        AccessTokenQuery {
            home_account_id: None,
            environment: environment.to_owned(),
            client_id: client_id.to_owned(),
            realm: realm.to_owned(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            ext_cache_key: None,
            min_remaining_secs: 300,
            now: None,
        }
    }

    /// The coalescing key: the fields, lower-cased as the cache keys them, scopes sorted.
    pub fn coalesce_key(&self) -> String {
        let mut scopes: Vec<String> = self.scopes.iter().map(|s| s.to_lowercase()).collect();
        scopes.sort_unstable();
        [
            "at",
            &self.home_account_id.as_deref().unwrap_or("").to_lowercase(),
            &self.environment.to_lowercase(),
            &self.client_id.to_lowercase(),
            &self.realm.to_lowercase(),
            &scopes.join(" "),
            &self.ext_cache_key.as_deref().unwrap_or("").to_lowercase(),
        ]
        .join("\u{1f}")
    }

    fn usable(&self, at: &Entry, now: i64) -> bool {
        let time = |name: &str| at.get_str(name).and_then(|s| s.trim().parse::<i64>().ok());
        let fresh = time("expires_on").is_some_and(|e| e > now.saturating_add(self.min_remaining_secs));
        fresh && time("refresh_on").is_none_or(|r| r > now)
    }
}

impl TokenCache {
    /// The access token `query` describes: from this cache if one is there and
    /// still good, else from `fetch` — a token response event (what [`add`](Self::add)
    /// takes), called once for all the threads that miss this token at the same time
    /// through `coalescer`, and added to this cache before they wake.
    ///
    /// A `fetch` error reaches every caller of that flight and nothing is cached; an
    /// event that yields no access token for `query` is an
    /// [`ErrorKind::InvalidEvent`] error.
    ///
    /// The error type is the coalescer's: [`Error`] by default, or the caller's own
    /// (the C ABI's carries the code its fetch callback returned).
    pub fn get_or_fetch_access_token<E: Clone + From<Error>>(
        &self,
        coalescer: &Coalescer<Entry, E>,
        query: &AccessTokenQuery,
        timeout: Duration,
        fetch: impl FnOnce() -> Result<Map, E>,
    ) -> Result<Entry, E> {
        coalesced_access_token(coalescer, query, timeout, || Ok(self), |event| self.add(event, query.now), fetch)
    }
}

impl crate::PersistedTokenCache {
    /// [`TokenCache::get_or_fetch_access_token`] on the file's current content: the
    /// lookup picks up what other processes wrote, the fetched token is written through
    /// (one locked write).
    pub fn get_or_fetch_access_token<E: Clone + From<Error>>(
        &self,
        coalescer: &Coalescer<Entry, E>,
        query: &AccessTokenQuery,
        timeout: Duration,
        fetch: impl FnOnce() -> Result<Map, E>,
    ) -> Result<Entry, E> {
        let current = || self.reload().map(|()| self.cache());
        coalesced_access_token(coalescer, query, timeout, current, |event| self.add(event, query.now), fetch)
    }
}

/// The coalesced lookup both caches share: `current` gives the cache to look in (a
/// file-backed one reloads first), `add` files the fetched event.
fn coalesced_access_token<'c, E: Clone + From<Error>>(
    coalescer: &Coalescer<Entry, E>,
    query: &AccessTokenQuery,
    timeout: Duration,
    current: impl Fn() -> Result<&'c TokenCache>,
    add: impl FnOnce(&Map) -> Result<()>,
    fetch: impl FnOnce() -> Result<Map, E>,
) -> Result<Entry, E> {
    let scopes: Vec<&str> = query.scopes.iter().map(String::as_str).collect();
    let find = || -> Result<Option<Entry>> {
        Ok(current()?.get_access_token(
            query.home_account_id.as_deref(),
            &query.environment,
            &query.client_id,
            &query.realm,
            &scopes,
            query.ext_cache_key.as_deref(),
        ))
    };
    let lookup = || Ok(find()?.filter(|at| query.usable(at, query.now.unwrap_or_else(unix_now))));
    coalescer.get_or_fetch(&query.coalesce_key(), timeout, lookup, || {
        let event = fetch()?;
        add(&event)?;
        find()?.ok_or_else(|| {
            E::from(Error::new(
                ErrorKind::InvalidEvent,
                "the fetched token response holds no access token for this query",
            ))
        })
    })
}

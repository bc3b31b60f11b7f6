//! Concurrency stress: eight threads share one `Arc<TokenCache>` for about two
//! seconds, mixing add, get, search (with expiry eviction), remove, serialize,
//! failed and successful deserialize. A watchdog turns a hang into a failure.
//!
//! Each thread owns its own tenant and scopes, so at the end every key has one
//! writer and its final state is known. The one operation that may legitimately
//! undo another thread's write is a reload (`deserialize(serialize())` on the shared
//! cache): a write that overlapped a reload is not checked. Overlap is decided on a
//! shared logical clock that every write and every reload stamps before and after.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use tokencache::json::{self, Map, Value};
use tokencache::{AccessEvent, AccessObserver, CacheLimits, CredentialType, Entry, TokenCache};

const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<TokenCache>();
    assert_send_sync::<Entry>();
};

const THREADS: usize = 8;
const KEYS_PER_THREAD: usize = 16;
const RUN_FOR: Duration = Duration::from_secs(2);
const MAX_ITERATIONS_PER_THREAD: u64 = 200_000;
const WATCHDOG: Duration = Duration::from_secs(60);

const NOW0: i64 = 1_700_000_000;
/// Searches run a little later than the adds, so that short-lived tokens are
/// expired and every access-token search evicts them (a write under a read path).
const SEARCH_NOW: i64 = NOW0 + 100;
const ENV: &str = "login.microsoftonline.com";
const CLIENT: &str = "stress-app";

fn tenant(t: usize) -> String {
    format!("tenant-{t}")
}

fn scope(t: usize, k: usize) -> String {
    format!("api://t{t}/k{k}")
}

fn secret(t: usize, k: usize, v: u64) -> String {
    format!("sec-t{t}-k{k}-v{v}-\u{e9}\"\\")
}

/// (thread, key) a secret was written for.
fn owner(secret: &str) -> (usize, usize) {
    let mut parts = secret.split('-');
    assert_eq!(parts.next(), Some("sec"), "foreign secret {secret:?}");
    let t = parts.next().and_then(|p| p.strip_prefix('t')?.parse().ok());
    let k = parts.next().and_then(|p| p.strip_prefix('k')?.parse().ok());
    (t.unwrap_or_else(|| panic!("bad secret {secret:?}")), k.unwrap_or_else(|| panic!("bad secret {secret:?}")))
}

fn event(tenant: &str, scopes: &[&str], secret: &str, expires_in: i64) -> Map {
    let mut response = Map::new();
    response.insert("access_token", Value::from(secret));
    response.insert("expires_in", Value::from(expires_in));
    let mut e = Map::new();
    e.insert("client_id", Value::from(CLIENT));
    e.insert("scope", Value::Array(scopes.iter().map(|s| Value::from(*s)).collect()));
    e.insert("token_endpoint", Value::from(format!("https://{ENV}/{tenant}/oauth2/v2.0/token")));
    e.insert("grant_type", Value::from("client_credentials"));
    e.insert("response", Value::Object(response));
    e
}

struct Shared {
    cache: TokenCache,
    clock: AtomicU64,
    /// Logical-clock intervals of every reload.
    reloads: Mutex<Vec<(u64, u64)>>,
    /// Reloads begun and reloads finished (equal when none runs). Two counters, not
    /// one parity bit: reloads overlap one another.
    reloads_started: AtomicU64,
    reloads_finished: AtomicU64,
    stop: AtomicBool,
}

impl Shared {
    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::SeqCst)
    }

    /// The number of reloads begun so far, if none is running now.
    fn quiet_reload_count(&self) -> Option<u64> {
        let started = self.reloads_started.load(Ordering::SeqCst);
        (self.reloads_finished.load(Ordering::SeqCst) == started).then_some(started)
    }
}

#[derive(Clone, Debug)]
enum Last {
    Added(String),
    Removed,
}

/// The last write a thread made to one of its keys, with its clock interval and, if
/// no reload was running just before it, the number of reloads begun by then.
#[derive(Clone, Debug)]
struct Write {
    last: Last,
    start: u64,
    end: u64,
    reloads: Option<u64>,
}

#[derive(Default, Debug)]
struct Report {
    iterations: u64,
    exact_checks: u64,
    writes: Vec<Option<Write>>,
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn check_owned(e: &Entry, t: usize, k: usize) {
    let s = e.secret().expect("an access token has a secret");
    assert_eq!(owner(&s), (t, k), "entry for t{t}/k{k} holds {s:?}");
    assert_eq!(e.get_str("realm").as_deref(), Some(tenant(t).as_str()));
    assert_eq!(e.get_str("target").as_deref(), Some(scope(t, k).as_str()));
}

fn worker(shared: &Shared, t: usize, deadline: Instant) -> Report {
    let cache = &shared.cache;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (t as u64 + 1).wrapping_mul(0x1234_5678_9abc_def1));
    let mut report = Report { writes: vec![None; KEYS_PER_THREAD], ..Report::default() };
    let mut version = 0u64;
    let my_tenant = tenant(t);
    let my_scopes: Vec<String> = (0..KEYS_PER_THREAD).map(|k| scope(t, k)).collect();
    while report.iterations < MAX_ITERATIONS_PER_THREAD
        && !shared.stop.load(Ordering::Relaxed)
        && (!report.iterations.is_multiple_of(64) || Instant::now() < deadline)
    {
        report.iterations += 1;
        let k = rng.below(KEYS_PER_THREAD);
        let get_own = || cache.get_access_token(None, ENV, CLIENT, &my_tenant, &[&my_scopes[k]], None);
        match rng.below(100) {
            // Add (or replace) one of my tokens.
            0..=29 => {
                version += 1;
                let s = secret(t, k, version);
                let reloads = shared.quiet_reload_count();
                let start = shared.tick();
                cache.add(&event(&my_tenant, &[&my_scopes[k]], &s, 1_000_000), Some(NOW0)).expect("a valid event");
                let end = shared.tick();
                report.writes[k] = Some(Write { last: Last::Added(s), start, end, reloads });
            }
            // A short-lived token in my scratch tenant, for searches to evict.
            30..=34 => {
                let s = secret(t, KEYS_PER_THREAD + k, 0);
                cache.add(&event(&format!("scratch-{t}"), &["scratch"], &s, 1), Some(NOW0)).expect("a valid event");
            }
            // Look up one of mine; exact when no reload ran since my last write.
            35..=51 => {
                let got = get_own();
                // No reload ran at my write, and none has begun since: exact.
                let begun = shared.reloads_started.load(Ordering::SeqCst);
                if let Some(e) = &got {
                    check_owned(e, t, k);
                }
                if let Some(w) = &report.writes[k]
                    && w.reloads == Some(begun)
                {
                    report.exact_checks += 1;
                    match &w.last {
                        Last::Added(s) => assert_eq!(
                            got.as_ref().and_then(|e| e.secret()).as_deref(),
                            Some(s.as_str()),
                            "t{t}/k{k}: my token is gone or wrong"
                        ),
                        Last::Removed => {
                            assert!(got.is_none(), "t{t}/k{k}: removed token is back")
                        }
                    }
                }
            }
            // Look up someone else's key: if found, it is theirs.
            52..=58 => {
                let (u, j) = (rng.below(THREADS), rng.below(KEYS_PER_THREAD));
                if let Some(e) = cache.get_access_token(None, ENV, CLIENT, &tenant(u), &[&scope(u, j)], None) {
                    check_owned(&e, u, j);
                }
            }
            // Search by scope (evicts expired scratch tokens on the way).
            59..=70 => {
                for e in cache.search(CredentialType::AccessToken, &[&my_scopes[k]], None, Some(SEARCH_NOW)) {
                    check_owned(&e, t, k);
                }
                let mut q = Map::new();
                q.insert("realm", Value::from(my_tenant.as_str()));
                for e in cache.search(CredentialType::AccessToken, &[], Some(&q), Some(SEARCH_NOW)) {
                    let s = e.secret().expect("a secret");
                    assert_eq!(owner(&s).0, t, "search by my realm found {s:?}");
                }
                // Expired scratch tokens are never returned.
                assert!(cache.search(CredentialType::AccessToken, &["scratch"], None, Some(SEARCH_NOW)).is_empty());
            }
            // Remove one of mine, through the entry a lookup returned.
            71..=82 => {
                let reloads = shared.quiet_reload_count();
                let start = shared.tick();
                if let Some(e) = get_own() {
                    cache.remove_at(&e).expect("an access token");
                    let end = shared.tick();
                    report.writes[k] = Some(Write { last: Last::Removed, start, end, reloads });
                }
            }
            // Snapshot: valid JSON, and loads elsewhere into the same text.
            83..=88 => {
                let compact = rng.below(2) == 0;
                let text = if compact { cache.serialize_compact() } else { cache.serialize() };
                assert!(json::parse(&text).is_ok(), "a snapshot is not JSON");
                let other = TokenCache::new();
                other.deserialize(&text).expect("a snapshot loads");
                if compact {
                    assert_eq!(other.serialize_compact(), text);
                } else {
                    assert_eq!(other.serialize(), text);
                }
            }
            // A failed deserialize on the shared cache must change nothing; the
            // final checks would see a lost token.
            89..=92 => {
                let text = cache.serialize_compact();
                // Compact output is ASCII (ensure_ascii), so any cut is a char boundary.
                let mut broken = text[..text.len() / 2].to_owned();
                broken.push_str(",,");
                assert!(cache.deserialize(&broken).is_err());
            }
            // Reload: the shared cache replaced by its own output. None in the last
            // fifth of the run, so that the final writes are all checkable.
            98.. if Instant::now() + RUN_FOR / 5 < deadline => {
                shared.reloads_started.fetch_add(1, Ordering::SeqCst);
                let start = shared.tick();
                let text = cache.serialize();
                cache.deserialize(&text).expect("our own output loads");
                let end = shared.tick();
                shared.reloads_finished.fetch_add(1, Ordering::SeqCst);
                shared.reloads.lock().unwrap().push((start, end));
            }
            // Stats and length are readable at any time.
            _ => {
                let stats = cache.stats();
                let _ = (stats.entries, cache.len(), cache.is_empty(), format!("{cache:?}"));
            }
        }
    }
    report
}

#[test]
fn eight_threads_share_one_cache() {
    let shared = Arc::new(Shared {
        cache: TokenCache::new(),
        clock: AtomicU64::new(0),
        reloads: Mutex::new(Vec::new()),
        reloads_started: AtomicU64::new(0),
        reloads_finished: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    });
    let started = Instant::now();
    let deadline = started + RUN_FOR;
    let (done_tx, done_rx) = mpsc::channel::<usize>();
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let shared = Arc::clone(&shared);
            let done = done_tx.clone();
            thread::Builder::new()
                .name(format!("stress-{t}"))
                .spawn(move || {
                    // Signals on drop, so a panicking worker is reported too.
                    struct Done(mpsc::Sender<usize>, usize);
                    impl Drop for Done {
                        fn drop(&mut self) {
                            let _ = self.0.send(self.1);
                        }
                    }
                    let _done = Done(done, t);
                    worker(&shared, t, deadline)
                })
                .expect("spawn")
        })
        .collect();
    drop(done_tx);

    let watchdog = started + WATCHDOG;
    for _ in 0..THREADS {
        let left = watchdog.saturating_duration_since(Instant::now());
        if done_rx.recv_timeout(left).is_err() {
            shared.stop.store(true, Ordering::Relaxed);
            panic!("deadlock? worker threads still running after {WATCHDOG:?}");
        }
    }
    let mut reports = Vec::new();
    let mut panics = Vec::new();
    for (t, h) in handles.into_iter().enumerate() {
        match h.join() {
            Ok(r) => reports.push(r),
            Err(p) => {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                panics.push(format!("thread {t}: {msg}"));
            }
        }
    }
    assert!(panics.is_empty(), "worker panics: {panics:#?}");
    let elapsed = started.elapsed();

    let cache = &shared.cache;
    let reloads = shared.reloads.lock().unwrap().clone();

    // The final state round-trips.
    let text = cache.serialize();
    let again = TokenCache::new();
    again.deserialize(&text).expect("final state loads");
    assert_eq!(again.serialize(), text, "final state does not round-trip");
    cache.deserialize(&text).expect("final state reloads in place");
    assert_eq!(cache.serialize(), text);
    assert_eq!(json::parse(&cache.serialize_compact()).unwrap(), json::parse(&text).unwrap());

    // Every key whose last write overlapped no reload is exactly as its owner left it.
    let (mut checked, mut skipped) = (0, 0);
    for (t, r) in reports.iter().enumerate() {
        for k in 0..KEYS_PER_THREAD {
            let got = cache.get_access_token(None, ENV, CLIENT, &tenant(t), &[&scope(t, k)], None);
            if let Some(e) = &got {
                check_owned(e, t, k);
            }
            let Some(w) = &r.writes[k] else {
                assert!(got.is_none(), "t{t}/k{k}: never written, yet present");
                continue;
            };
            if reloads.iter().any(|&(rs, re)| !(re < w.start || rs > w.end)) {
                skipped += 1;
                continue;
            }
            checked += 1;
            match &w.last {
                Last::Added(s) => assert_eq!(
                    got.as_ref().and_then(|e| e.secret()).as_deref(),
                    Some(s.as_str()),
                    "t{t}/k{k}: last added token lost"
                ),
                Last::Removed => assert!(got.is_none(), "t{t}/k{k}: removed token is back"),
            }
        }
    }
    // Scratch tokens are all expired: a search evicts every one of them.
    assert!(cache.search(CredentialType::AccessToken, &["scratch"], None, Some(SEARCH_NOW)).is_empty());
    let mut q = Map::new();
    q.insert("client_id", Value::from(CLIENT));
    let left = cache.search(CredentialType::AccessToken, &[], Some(&q), Some(NOW0));
    assert!(left.iter().all(|e| !e.get_str("realm").unwrap().starts_with("scratch")));

    let iterations: u64 = reports.iter().map(|r| r.iterations).sum();
    let exact: u64 = reports.iter().map(|r| r.exact_checks).sum();
    eprintln!(
        "stress: {iterations} operations in {elapsed:.2?} on {THREADS} threads, {} reloads, \
         {exact} exact mid-run checks, {checked} keys checked at the end ({skipped} overlapped a reload)",
        reloads.len()
    );
    // Reloads stop before the end, so the last writes are always checkable.
    assert!(
        checked + exact >= 16,
        "too few exact checks ({checked} at the end, {exact} mid-run): the test means little"
    );
}

// ---------------------------------------------------------------------------
// A bounded cache whose observer calls back into it.
// ---------------------------------------------------------------------------

const BOUNDED_MAX_ENTRIES: usize = 120;
const PARTITIONS_PER_THREAD: usize = 4;

thread_local! {
    /// Set while this thread runs observer code: nested notifications return at once.
    static IN_OBSERVER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// MSAL.NET's partitioned-store pattern: before an access, load the partition from a
/// store; after a write, save it back. Everything it does re-enters the cache, which
/// the observer contract allows ("called with no lock held").
#[derive(Default)]
struct StoreObserver {
    cache: std::sync::OnceLock<std::sync::Weak<TokenCache>>,
    store: Mutex<std::collections::HashMap<String, String>>,
    notifications: AtomicU64,
}

impl StoreObserver {
    fn reenter(&self, f: impl FnOnce(&TokenCache)) {
        self.notifications.fetch_add(1, Ordering::Relaxed);
        if IN_OBSERVER.with(|c| c.replace(true)) {
            return;
        }
        if let Some(cache) = self.cache.get().and_then(std::sync::Weak::upgrade) {
            f(&cache);
        }
        IN_OBSERVER.with(|c| c.set(false));
    }
}

impl AccessObserver for StoreObserver {
    fn before_access(&self, event: &AccessEvent) {
        self.reenter(|cache| {
            let _ = (cache.len(), cache.partition_keys().len());
            if let Some(p) = &event.partition_key {
                let blob = self.store.lock().unwrap().get(p).cloned();
                if let Some(blob) = blob {
                    // Another thread's reload may have replaced the cache meanwhile;
                    // a blob of our own partition must still load.
                    cache.deserialize_partition(p, &blob).expect("a saved partition loads");
                }
            }
        });
    }

    fn after_access(&self, event: &AccessEvent) {
        self.reenter(|cache| {
            if let Some(p) = &event.partition_key {
                let _ = cache.suggested_expiry(p, Some(NOW0));
                if event.has_state_changed {
                    let blob = cache.serialize_partition(p);
                    assert!(json::parse(&blob).is_ok(), "a partition blob is not JSON");
                    self.store.lock().unwrap().insert(p.clone(), blob);
                }
            }
        });
    }
}

fn bounded_worker(cache: &TokenCache, t: usize, deadline: Instant) -> u64 {
    let mut rng = Rng(0x51_7c_c1_b7_27_22_0a_95 ^ (t as u64 + 7).wrapping_mul(0x2545_f491_4f6c_dd1d));
    let mut iterations = 0;
    while iterations < MAX_ITERATIONS_PER_THREAD && (iterations % 8 != 0 || Instant::now() < deadline) {
        iterations += 1;
        let p = rng.below(PARTITIONS_PER_THREAD);
        let k = rng.below(KEYS_PER_THREAD);
        // Tenant "tenant-{t*P+p}": scope (t*P+p, k) so that `check_owned` applies.
        let owner_t = t * PARTITIONS_PER_THREAD + p;
        let realm = tenant(owner_t);
        let partition = format!("{CLIENT}_{realm}_AppTokenCache");
        // The clock moves, so sliding and absolute expiration happen too.
        let now = NOW0 + (iterations / 8) as i64;
        match rng.below(100) {
            0..=34 => {
                let s = secret(owner_t, k, iterations);
                cache.add(&event(&realm, &[&scope(owner_t, k)], &s, 1_000_000), Some(now)).expect("a valid event");
            }
            35..=49 => {
                if let Some(e) = cache.get_access_token(None, ENV, CLIENT, &realm, &[&scope(owner_t, k)], None) {
                    check_owned(&e, owner_t, k);
                }
            }
            50..=64 => {
                let mut q = Map::new();
                q.insert("home_account_id", Value::Null);
                q.insert("environment", Value::from(ENV));
                q.insert("client_id", Value::from(CLIENT));
                q.insert("realm", Value::from(realm.as_str()));
                for e in cache.search(CredentialType::AccessToken, &[&scope(owner_t, k)], Some(&q), Some(now)) {
                    check_owned(&e, owner_t, k);
                }
            }
            65..=72 => {
                if let Some(e) = cache.get_access_token(None, ENV, CLIENT, &realm, &[&scope(owner_t, k)], None) {
                    cache.remove_at(&e).expect("an access token");
                }
            }
            73..=78 => {
                let blob = cache.serialize_partition(&partition);
                let alone = TokenCache::new();
                alone.deserialize(&blob).expect("a partition blob loads");
                for e in alone.search(CredentialType::AccessToken, &[], None, Some(i64::MIN)) {
                    let s = e.secret().expect("a secret");
                    assert_eq!(owner(&s).0, owner_t, "partition {partition} holds {s:?}");
                }
                cache.deserialize_partition(&partition, &blob).expect("our own blob loads back");
            }
            79..=82 => {
                cache.remove_partition(&partition);
            }
            83..=87 => {
                cache.purge_expired(Some(now));
            }
            88..=93 => {
                let text = cache.serialize();
                let other = TokenCache::new();
                other.deserialize(&text).expect("a snapshot loads");
                assert_eq!(other.serialize(), text);
            }
            94..=95 => {
                let text = cache.serialize();
                cache.deserialize(&text).expect("our own output loads");
            }
            _ => {
                let _ = (cache.stats(), cache.partition_keys(), cache.len());
            }
        }
    }
    iterations
}

#[test]
fn bounded_cache_with_a_reentrant_observer() {
    let cache = Arc::new(TokenCache::with_limits(CacheLimits {
        max_entries: Some(BOUNDED_MAX_ENTRIES),
        max_bytes: Some(200_000),
        absolute_expiration_secs: Some(400),
        sliding_expiration_secs: Some(150),
    }));
    let observer = Arc::new(StoreObserver::default());
    observer.cache.set(Arc::downgrade(&cache)).expect("set once");
    cache.set_observer(Some(observer.clone()));

    let started = Instant::now();
    let deadline = started + RUN_FOR / 2;
    let (done_tx, done_rx) = mpsc::channel::<usize>();
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let cache = Arc::clone(&cache);
            let done = done_tx.clone();
            thread::Builder::new()
                .name(format!("bounded-{t}"))
                .spawn(move || {
                    struct Done(mpsc::Sender<usize>, usize);
                    impl Drop for Done {
                        fn drop(&mut self) {
                            let _ = self.0.send(self.1);
                        }
                    }
                    let _done = Done(done, t);
                    bounded_worker(&cache, t, deadline)
                })
                .expect("spawn")
        })
        .collect();
    drop(done_tx);
    let watchdog = started + WATCHDOG;
    for _ in 0..THREADS {
        let left = watchdog.saturating_duration_since(Instant::now());
        assert!(done_rx.recv_timeout(left).is_ok(), "deadlock? worker threads still running after {WATCHDOG:?}");
    }
    let mut iterations = 0;
    let mut panics = Vec::new();
    for (t, h) in handles.into_iter().enumerate() {
        match h.join() {
            Ok(n) => iterations += n,
            Err(p) => panics.push(format!(
                "thread {t}: {}",
                p.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default()
            )),
        }
    }
    assert!(panics.is_empty(), "worker panics: {panics:#?}");
    cache.set_observer(None);

    let stats = cache.stats();
    // One app metadata entry is shared by every partition and never evicted.
    assert!(cache.len() <= BOUNDED_MAX_ENTRIES, "over the entry limit: {stats:?}");
    assert_eq!(stats.partitions, cache.partition_keys().len(), "limiter and partitions disagree: {stats:?}");
    let text = cache.serialize();
    let again = TokenCache::new();
    again.deserialize(&text).expect("final state loads");
    assert_eq!(again.serialize(), text, "final state does not round-trip");
    for key in cache.partition_keys() {
        let blob = cache.serialize_partition(&key);
        let alone = TokenCache::new();
        alone.deserialize(&blob).expect("a partition blob loads");
        let n = alone.search(CredentialType::AccessToken, &[], None, Some(i64::MIN)).len();
        assert!(n > 0, "partition {key} is listed but exports no token");
    }
    eprintln!(
        "stress (bounded, re-entrant observer): {iterations} operations in {:.2?}, {} notifications, {stats:?}",
        started.elapsed(),
        observer.notifications.load(Ordering::Relaxed)
    );
}

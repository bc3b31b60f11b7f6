//! Criterion benchmarks of `TokenCache` on the workloads that
//! `../shared/bench/peer_msal_python.py` defines (W1: N tenants x 2 client-credential
//! access tokens; W2: U users x (auth-code event + refresh-grant event)), at
//! N, U in {1k, 10k, 100k}, plus live-heap bytes per token (counting allocator).
//!
//! Environment knobs:
//! - `TOKENCACHE_BENCH_SCALES=1000,10000` limits the scales (default all three);
//! - `TOKENCACHE_BENCH_MEMORY_OUT=path` is where the memory report (JSON) goes
//!   (default `<target>/criterion/tokencache-memory.json`).
//!
//! Every cache is built once per (workload, scale) with `now = NOW`; every search
//! passes `Some(NOW + 60)` so that nothing is expired and nothing is evicted.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput};
use tokencache::{CredentialType, Map, TokenCache, Value};

// ---------------------------------------------------------------------------
// Counting allocator: live heap bytes, counted only while `COUNTING` is set (the
// memory phase, single-threaded, before criterion starts), so that the timed
// benchmarks pay one predictable branch per allocation and nothing else.
// ---------------------------------------------------------------------------

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicUsize = AtomicUsize::new(0);

#[inline]
fn count_add(n: usize) {
    if COUNTING.load(Ordering::Relaxed) {
        // Single-threaded while counting: a plain load/store, no locked RMW.
        LIVE.store(LIVE.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
    }
}

#[inline]
fn count_sub(n: usize) {
    if COUNTING.load(Ordering::Relaxed) {
        LIVE.store(LIVE.load(Ordering::Relaxed).wrapping_sub(n), Ordering::Relaxed);
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged;
// the counters have no effect on the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_add(layout.size());
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_add(layout.size());
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count_sub(layout.size());
        // SAFETY: `ptr` was allocated by `System` with `layout` (we forward everything).
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_sub(layout.size());
        count_add(new_size);
        // SAFETY: same contract as our caller's; `ptr` came from `System`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Live heap bytes allocated (and not freed) while `f` runs, with `f`'s result.
fn heap_delta<T>(f: impl FnOnce() -> T) -> (isize, T) {
    LIVE.store(0, Ordering::Relaxed);
    COUNTING.store(true, Ordering::SeqCst);
    let out = f();
    COUNTING.store(false, Ordering::SeqCst);
    (LIVE.load(Ordering::Relaxed) as isize, out)
}

fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

// ---------------------------------------------------------------------------
// Deterministic fake data, mirroring W1Data / W2Data of peer_msal_python.py:
// same event shapes, same field order, same string lengths. (xoshiro256** instead
// of Python's Mersenne Twister: the bytes differ, the sizes do not.)
// ---------------------------------------------------------------------------

const NOW: i64 = 1_700_000_000;
const SEARCH_NOW: Option<i64> = Some(NOW + 60);
const SEED: u64 = 20240601;
const ENV: &str = "login.microsoftonline.com";
const AUTHORITY_HOST: &str = "https://login.microsoftonline.com";
const W1_RESOURCES: [&[&str]; 2] = [&["https://graph.microsoft.com/.default"], &["https://storage.azure.com/.default"]];
const W2_SCOPES_A: &[&str] = &["https://graph.microsoft.com/User.Read", "https://graph.microsoft.com/Mail.Read"];
const W2_SCOPES_B: &[&str] = &["api://6f2c3b1e-8d4a-4e5b-9c7d-0a1b2c3d4e5f/access_as_user"];
const RESERVED_SCOPES: &[&str] = &["offline_access", "openid", "profile"];
const REDIRECT_URI: &str = "https://app.example.invalid/getAToken";
const AT_CHARS: usize = 1500;
const RT_CHARS: usize = 1400;
const CODE_CHARS: usize = 800;
const FIXED_IAT: i64 = 1_700_000_000;
const DEFAULT_SCALES: [usize; 3] = [1_000, 10_000, 100_000];
/// Queries and add events are drawn from pools of this many (cycled).
const POOL: usize = 1024;

struct Rng([u64; 4]);

impl Rng {
    fn new(label: &str) -> Rng {
        // FNV-1a of the label, expanded by splitmix64.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in label.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        let mut sm = || {
            h = h.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = h;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        Rng([sm(), sm(), sm(), sm()])
    }

    fn next_u64(&mut self) -> u64 {
        let s = &mut self.0;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    fn bits(&mut self, k: u32) -> u64 {
        self.next_u64() >> (64 - k)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n + 8);
        while v.len() < n {
            v.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        v.truncate(n);
        v
    }
}

fn b64url(raw: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(raw.len().div_ceil(3) * 4);
    for c in raw.chunks(3) {
        let n =
            (u32::from(c[0]) << 16) | (u32::from(*c.get(1).unwrap_or(&0)) << 8) | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..=c.len() {
            out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// Python's `rand_token(rng, nchars)`: b64url of `nchars * 3 // 4` random bytes.
fn rand_token(rng: &mut Rng, nchars: usize) -> String {
    b64url(&rng.bytes(nchars * 3 / 4))
}

fn guid(rng: &mut Rng) -> String {
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        rng.bits(32),
        rng.bits(16),
        rng.bits(12),
        0x8000 | rng.bits(14),
        rng.bits(48)
    )
}

/// JSON strings below are ASCII with nothing to escape, as in the Python peer.
fn make_id_token(rng: &mut Rng, client_id: &str, uid: &str, utid: &str, user: usize) -> String {
    let header = format!(r#"{{"typ":"JWT","alg":"RS256","kid":"{}"}}"#, rand_token(rng, 28));
    let rh = format!("0.A{}.", rand_token(rng, 88));
    let sub = rand_token(rng, 44)[..43].to_owned();
    let uti = rand_token(rng, 24)[..22].to_owned();
    let claims = format!(
        concat!(
            r#"{{"aud":"{aud}","iss":"https://login.microsoftonline.com/{tid}/v2.0","#,
            r#""iat":{iat},"nbf":{iat},"exp":{exp},"name":"Fake User {i}","oid":"{uid}","#,
            r#""preferred_username":"user{i}@tenant-{t8}.example.invalid","rh":"{rh}","#,
            r#""sub":"{sub}","tid":"{tid}","uti":"{uti}","ver":"2.0"}}"#
        ),
        aud = client_id,
        tid = utid,
        iat = FIXED_IAT,
        exp = FIXED_IAT + 3600,
        i = user,
        uid = uid,
        t8 = &utid[..8],
        rh = rh,
        sub = sub,
        uti = uti,
    );
    let signature = b64url(&rng.bytes(256));
    format!("{}.{}.{}", b64url(header.as_bytes()), b64url(claims.as_bytes()), signature)
}

fn token_endpoint(tenant: &str) -> String {
    format!("{AUTHORITY_HOST}/{tenant}/oauth2/v2.0/token")
}

fn str_list(items: &[&str]) -> Value {
    Value::Array(items.iter().map(|s| Value::from(*s)).collect())
}

fn obj(pairs: Vec<(&str, Value)>) -> Map {
    let mut m = Map::new();
    for (k, v) in pairs {
        m.insert(k, v);
    }
    m
}

fn sorted_with_reserved(scopes: &[&str]) -> Value {
    let mut v: Vec<&str> = scopes.iter().chain(RESERVED_SCOPES).copied().collect();
    v.sort_unstable();
    str_list(&v)
}

trait Workload {
    const NAME: &'static str;
    /// Credentials the peer counts per cache (AppMetadata excluded).
    fn tokens(&self) -> usize;
    fn n(&self) -> usize;
    /// The whole event stream, in order.
    fn for_each_event(&self, f: impl FnMut(Map));
    /// `POOL` events for re-adding into a full cache (refreshed secrets).
    fn add_pool(&self) -> Vec<Map>;
}

struct W1 {
    n: usize,
    client_id: String,
    tenants: Vec<String>,
    unknown_tenant: String,
}

impl W1 {
    fn new(n: usize) -> W1 {
        let mut rng = Rng::new(&format!("W1:ids:{SEED}:{n}"));
        let client_id = guid(&mut rng);
        let tenants = (0..n).map(|_| guid(&mut rng)).collect();
        let unknown_tenant = guid(&mut rng);
        W1 { n, client_id, tenants, unknown_tenant }
    }

    fn event(&self, tenant: &str, scopes: &[&str], access_token: String) -> Map {
        obj(vec![
            ("client_id", Value::from(self.client_id.as_str())),
            ("scope", str_list(scopes)),
            ("token_endpoint", Value::from(token_endpoint(tenant))),
            ("grant_type", Value::from("client_credentials")),
            (
                "response",
                Value::Object(obj(vec![
                    ("access_token", Value::from(access_token)),
                    ("expires_in", Value::from(3600i64)),
                    ("token_type", Value::from("Bearer")),
                ])),
            ),
            ("params", Value::Null),
            ("data", Value::Object(obj(vec![("claims", Value::Null), ("scope", str_list(scopes))]))),
            ("environment", Value::from(ENV)),
        ])
    }

    /// acquire_token_for_client's AT query.
    fn at_query(&self, tenant: &str) -> Map {
        obj(vec![
            ("client_id", Value::from(self.client_id.as_str())),
            ("environment", Value::from(ENV)),
            ("realm", Value::from(tenant)),
            ("home_account_id", Value::Null),
        ])
    }
}

impl Workload for W1 {
    const NAME: &'static str = "W1";
    fn tokens(&self) -> usize {
        2 * self.n
    }
    fn n(&self) -> usize {
        self.n
    }
    fn for_each_event(&self, mut f: impl FnMut(Map)) {
        let mut rng = Rng::new(&format!("W1:secrets:{SEED}:{}", self.n));
        for tenant in &self.tenants {
            for scopes in W1_RESOURCES {
                f(self.event(tenant, scopes, rand_token(&mut rng, AT_CHARS)));
            }
        }
    }
    fn add_pool(&self) -> Vec<Map> {
        let mut rng = Rng::new(&format!("W1:pool:{SEED}:{}", self.n));
        (0..POOL)
            .map(|_| {
                let t = &self.tenants[rng.below(self.n)];
                let s = W1_RESOURCES[rng.below(2)];
                self.event(t, s, rand_token(&mut rng, AT_CHARS))
            })
            .collect()
    }
}

struct W2 {
    n: usize,
    client_id: String,
    tenants: Vec<String>,
    users: Vec<(String, usize)>,
}

impl W2 {
    fn new(u: usize) -> W2 {
        let mut rng = Rng::new(&format!("W2:ids:{SEED}:{u}"));
        let client_id = guid(&mut rng);
        let tenants: Vec<String> = (0..(u / 100).max(10)).map(|_| guid(&mut rng)).collect();
        let users = (0..u).map(|_| (guid(&mut rng), rng.below(tenants.len()))).collect();
        W2 { n: u, client_id, tenants, users }
    }

    /// (uid, utid, home_account_id)
    fn user(&self, i: usize) -> (&str, &str, String) {
        let (uid, ti) = &self.users[i];
        let utid = &self.tenants[*ti];
        (uid, utid, format!("{uid}.{utid}"))
    }

    fn user_events(&self, rng: &mut Rng, i: usize) -> [Map; 2] {
        let (uid, utid, _) = self.user(i);
        let client_info = b64url(format!(r#"{{"uid":"{uid}","utid":"{utid}"}}"#).as_bytes());
        let rt = format!("1.A{}", rand_token(rng, RT_CHARS));
        // 1) auth-code grant for scope set A.
        let resp_a = obj(vec![
            ("token_type", Value::from("Bearer")),
            ("scope", Value::from(W2_SCOPES_A.join(" "))),
            ("expires_in", Value::from(3600i64)),
            ("access_token", Value::from(rand_token(rng, AT_CHARS))),
            ("refresh_token", Value::from(rt.as_str())),
            ("id_token", Value::from(make_id_token(rng, &self.client_id, uid, utid, i))),
            ("client_info", Value::from(client_info.as_str())),
        ]);
        let ev_a = obj(vec![
            ("client_id", Value::from(self.client_id.as_str())),
            ("scope", str_list(W2_SCOPES_A)),
            ("token_endpoint", Value::from(token_endpoint(utid))),
            ("grant_type", Value::from("authorization_code")),
            ("response", Value::Object(resp_a)),
            ("params", Value::Null),
            (
                "data",
                Value::Object(obj(vec![
                    ("code", Value::from(rand_token(rng, CODE_CHARS))),
                    ("redirect_uri", Value::from(REDIRECT_URI)),
                    ("scope", sorted_with_reserved(W2_SCOPES_A)),
                    ("code_verifier", Value::from(&rand_token(rng, 44)[..43])),
                    ("claims", Value::Null),
                ])),
            ),
            ("environment", Value::from(ENV)),
        ]);
        // 2) refresh-token grant for scope set B (refresh_token popped from the response).
        let resp_b = obj(vec![
            ("token_type", Value::from("Bearer")),
            ("scope", Value::from(W2_SCOPES_B.join(" "))),
            ("expires_in", Value::from(3600i64)),
            ("access_token", Value::from(rand_token(rng, AT_CHARS))),
            ("id_token", Value::from(make_id_token(rng, &self.client_id, uid, utid, i))),
            ("client_info", Value::from(client_info.as_str())),
        ]);
        let ev_b = obj(vec![
            ("client_id", Value::from(self.client_id.as_str())),
            ("scope", str_list(W2_SCOPES_B)),
            ("token_endpoint", Value::from(token_endpoint(utid))),
            ("grant_type", Value::from("refresh_token")),
            ("response", Value::Object(resp_b)),
            ("params", Value::Null),
            (
                "data",
                Value::Object(obj(vec![
                    ("refresh_token", Value::from(rt)),
                    ("scope", sorted_with_reserved(W2_SCOPES_B)),
                    ("claims", Value::Null),
                ])),
            ),
            ("environment", Value::from(ENV)),
            ("skip_account_creation", Value::from(true)),
        ]);
        [ev_a, ev_b]
    }

    /// acquire_token_silent's AT query.
    fn at_query(&self, i: usize) -> Map {
        let (_, utid, hid) = self.user(i);
        obj(vec![
            ("client_id", Value::from(self.client_id.as_str())),
            ("environment", Value::from(ENV)),
            ("realm", Value::from(utid)),
            ("home_account_id", Value::from(hid)),
        ])
    }

    /// acquire_token_silent's RT query (app metadata without family_id).
    fn rt_query(&self, i: usize) -> Map {
        let (_, _, hid) = self.user(i);
        obj(vec![
            ("environment", Value::from(ENV)),
            ("home_account_id", Value::from(hid)),
            ("client_id", Value::from(self.client_id.as_str())),
        ])
    }

    /// The family-RT query msal tries for FOCI apps (no hit in W2: no family_id).
    fn rt_family_query(&self, i: usize) -> Map {
        let (_, _, hid) = self.user(i);
        obj(vec![
            ("environment", Value::from(ENV)),
            ("home_account_id", Value::from(hid)),
            ("family_id", Value::from("1")),
        ])
    }

    /// remove_account / _forget_me's account query.
    fn account_query(&self, i: usize) -> Map {
        let (_, _, hid) = self.user(i);
        obj(vec![("environment", Value::from(ENV)), ("home_account_id", Value::from(hid))])
    }
}

impl Workload for W2 {
    const NAME: &'static str = "W2";
    fn tokens(&self) -> usize {
        5 * self.n
    }
    fn n(&self) -> usize {
        self.n
    }
    fn for_each_event(&self, mut f: impl FnMut(Map)) {
        let mut rng = Rng::new(&format!("W2:secrets:{SEED}:{}", self.n));
        for i in 0..self.n {
            for ev in self.user_events(&mut rng, i) {
                f(ev);
            }
        }
    }
    fn add_pool(&self) -> Vec<Map> {
        let mut rng = Rng::new(&format!("W2:pool:{SEED}:{}", self.n));
        let mut out = Vec::with_capacity(POOL);
        while out.len() < POOL {
            let i = rng.below(self.n);
            out.extend(self.user_events(&mut rng, i));
        }
        out
    }
}

// ---------------------------------------------------------------------------
// Build + memory phase
// ---------------------------------------------------------------------------

struct Built {
    cache: TokenCache,
    workload: &'static str,
    n: usize,
    tokens: usize,
    events: usize,
    heap: isize,
    rss_delta: Option<i64>,
    populate_median_ns: f64,
    populate_mean_ns: f64,
    build_s: f64,
}

fn median_ns(mut v: Vec<u64>) -> f64 {
    v.sort_unstable();
    let n = v.len();
    if n == 0 {
        return 0.0;
    }
    if n % 2 == 1 { v[n / 2] as f64 } else { (v[n / 2 - 1] + v[n / 2]) as f64 / 2.0 }
}

/// Builds the cache from the whole event stream, counting live heap bytes and the
/// RSS growth, and timing every `add` (as the peer does while populating).
fn build<W: Workload>(w: &W) -> Built {
    let t0 = Instant::now();
    let rss0 = rss_bytes();
    let mut lat = Vec::with_capacity(2 * w.n());
    let mut add_total = Duration::ZERO;
    let (heap, cache) = heap_delta(|| {
        let cache = TokenCache::new();
        w.for_each_event(|ev| {
            let t = Instant::now();
            cache.add(&ev, Some(NOW)).expect("add");
            let d = t.elapsed();
            add_total += d;
            lat.push(d.as_nanos() as u64);
        });
        cache
    });
    let rss1 = rss_bytes();
    let events = lat.len();
    Built {
        cache,
        workload: W::NAME,
        n: w.n(),
        tokens: w.tokens(),
        events,
        heap,
        rss_delta: rss0.zip(rss1).map(|(a, b)| b as i64 - a as i64),
        populate_median_ns: median_ns(lat),
        populate_mean_ns: add_total.as_nanos() as f64 / events.max(1) as f64,
        build_s: t0.elapsed().as_secs_f64(),
    }
}

impl Built {
    /// The memory report of this cache as a JSON object. Runs after every cache is
    /// built, so that the memory it frees does not flatter later RSS deltas.
    fn report(&self) -> String {
        let cache = &self.cache;
        let compact_len = cache.serialize_compact().len();
        let python = cache.serialize();
        let python_len = python.len();
        let (deser_heap, fresh) = heap_delta(|| {
            let c = TokenCache::new();
            c.deserialize(&python).expect("deserialize");
            c
        });
        assert_eq!(fresh.len(), cache.len(), "round trip");
        drop(fresh);
        drop(python);
        cache.set_state_changed(false);
        let tokens = self.tokens as f64;
        let json = format!(
            concat!(
                "{{\"workload\": \"{}\", \"scale\": {}, \"tokens\": {}, \"entries\": {}, ",
                "\"events\": {}, \"heap_bytes\": {}, \"heap_per_token\": {:.1}, ",
                "\"deserialized_heap_bytes\": {}, \"deserialized_heap_per_token\": {:.1}, ",
                "\"rss_delta_bytes\": {}, \"compact_json_bytes\": {}, ",
                "\"compact_per_token\": {:.1}, \"heap_over_compact\": {:.4}, ",
                "\"deserialized_heap_over_compact\": {:.4}, \"serialized_bytes\": {}, ",
                "\"populate_add_median_ns\": {:.1}, \"populate_add_mean_ns\": {:.1}, ",
                "\"build_wall_s\": {:.3}}}"
            ),
            self.workload,
            self.n,
            self.tokens,
            cache.len(),
            self.events,
            self.heap,
            self.heap as f64 / tokens,
            deser_heap,
            deser_heap as f64 / tokens,
            self.rss_delta.map_or("null".to_owned(), |d| d.to_string()),
            compact_len,
            compact_len as f64 / tokens,
            self.heap as f64 / compact_len as f64,
            deser_heap as f64 / compact_len as f64,
            python_len,
            self.populate_median_ns,
            self.populate_mean_ns,
            self.build_s,
        );
        eprintln!("memory: {json}");
        json
    }
}

fn memory_out_path() -> PathBuf {
    if let Some(p) = std::env::var_os("TOKENCACHE_BENCH_MEMORY_OUT") {
        return PathBuf::from(p);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("criterion").join("tokencache-memory.json")
}

// ---------------------------------------------------------------------------
// Benchmarks
// ---------------------------------------------------------------------------

type Group<'a, M> = BenchmarkGroup<'a, M>;

/// CPU time of the calling thread (`CLOCK_THREAD_CPUTIME_ID`), as a criterion
/// measurement: time spent descheduled does not count, so on a shared, loaded
/// machine it approximates what an idle core would show (cache and memory-bandwidth
/// interference from neighbours still count). Selected by `TOKENCACHE_BENCH_CLOCK=cpu`.
struct ThreadCpuTime;

#[repr(C)]
struct Timespec {
    tv_sec: i64,
    tv_nsec: i64,
}

unsafe extern "C" {
    fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
}

const CLOCK_THREAD_CPUTIME_ID: i32 = 3;

fn thread_cpu_ns() -> u64 {
    let mut ts = Timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec (64-bit Linux layout); the clock id
    // is Linux's CLOCK_THREAD_CPUTIME_ID.
    let rc = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

static WALL: WallTime = WallTime;

impl Measurement for ThreadCpuTime {
    type Intermediate = u64;
    type Value = u64;
    fn start(&self) -> u64 {
        thread_cpu_ns()
    }
    fn end(&self, start: u64) -> u64 {
        thread_cpu_ns().saturating_sub(start)
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, v: &u64) -> f64 {
        *v as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        // Values are nanoseconds, like WallTime's.
        WALL.formatter()
    }
}

/// One scale of a search benchmark: (N, cache, pool of (target, query), hits each).
type SearchCase<'a> = (usize, &'a TokenCache, Vec<(&'a [&'a str], Map)>, usize);

/// Fast operations: enough samples for a stable sub-microsecond median.
fn fast<M: Measurement>(g: &mut Group<'_, M>) {
    g.sampling_mode(SamplingMode::Auto)
        .sample_size(40)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1200));
}

/// Operations whose cost grows with the cache (whole-cache results, serde).
fn slow<M: Measurement>(g: &mut Group<'_, M>) {
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_millis(1000));
}

/// Times `search` over a pool of (target, query) pairs, cycled; each query's hit
/// count is checked once beforehand, outside the timing.
fn bench_search<M: Measurement>(
    c: &mut Criterion<M>,
    group: &str,
    ct: CredentialType,
    cases: &[SearchCase<'_>],
    slow_op: bool,
) {
    let mut g = c.benchmark_group(group);
    for (n, cache, pool, expect) in cases {
        for (t, q) in pool.iter().take(16) {
            let got = cache.search(ct, t, Some(q), SEARCH_NOW).len();
            assert_eq!(got, *expect, "{group}/{n}: hits");
        }
        if slow_op && *n >= 10_000 {
            slow(&mut g);
        } else {
            fast(&mut g);
        }
        g.bench_function(BenchmarkId::from_parameter(n), |b| {
            let mut i = 0usize;
            b.iter(|| {
                let (t, q) = &pool[i % pool.len()];
                i = i.wrapping_add(1);
                black_box(cache.search(ct, t, Some(q), SEARCH_NOW))
            })
        });
    }
    g.finish();
}

fn bench_add<M: Measurement>(c: &mut Criterion<M>, group: &str, cases: &[(usize, &TokenCache, Vec<Map>)]) {
    let mut g = c.benchmark_group(group);
    fast(&mut g);
    for (n, cache, pool) in cases {
        g.bench_function(BenchmarkId::from_parameter(n), |b| {
            let mut i = 0usize;
            b.iter(|| {
                let ev = &pool[i % pool.len()];
                i = i.wrapping_add(1);
                cache.add(black_box(ev), Some(NOW)).expect("add")
            })
        });
    }
    g.finish();
}

fn bench_serde<M: Measurement>(c: &mut Criterion<M>, wl: &str, cases: &[(usize, &TokenCache)]) {
    let mut g = c.benchmark_group(format!("{wl}/serialize"));
    for (n, cache) in cases {
        let len = cache.serialize().len();
        if *n >= 10_000 {
            slow(&mut g);
        } else {
            fast(&mut g);
        }
        g.throughput(Throughput::Bytes(len as u64));
        g.bench_function(BenchmarkId::from_parameter(n), |b| b.iter_with_large_drop(|| cache.serialize()));
    }
    g.finish();
    let mut g = c.benchmark_group(format!("{wl}/deserialize"));
    for (n, cache) in cases {
        let text = cache.serialize();
        if *n >= 10_000 {
            slow(&mut g);
        } else {
            fast(&mut g);
        }
        g.throughput(Throughput::Bytes(text.len() as u64));
        g.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter_with_large_drop(|| {
                let fresh = TokenCache::new();
                fresh.deserialize(black_box(&text)).expect("deserialize");
                fresh
            })
        });
    }
    g.finish();
}

fn scales() -> Vec<usize> {
    match std::env::var("TOKENCACHE_BENCH_SCALES") {
        Ok(s) if !s.trim().is_empty() => {
            s.split(',').map(|x| x.trim().parse().expect("TOKENCACHE_BENCH_SCALES: integers")).collect()
        }
        _ => DEFAULT_SCALES.to_vec(),
    }
}

fn main() {
    let scales = scales();
    let t0 = Instant::now();

    // Memory phase: every cache is built once, here, and reused by all benchmarks.
    let w1: Vec<(W1, Built)> = scales
        .iter()
        .map(|&n| {
            let w = W1::new(n);
            let b = build(&w);
            (w, b)
        })
        .collect();
    let w2: Vec<(W2, Built)> = scales
        .iter()
        .map(|&n| {
            let w = W2::new(n);
            let b = build(&w);
            (w, b)
        })
        .collect();
    let reports: Vec<String> = w1.iter().map(|(_, b)| b.report()).chain(w2.iter().map(|(_, b)| b.report())).collect();
    let out = memory_out_path();
    if let Some(dir) = out.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let body = format!("[\n  {}\n]\n", reports.join(",\n  "));
    std::fs::write(&out, body).expect("write memory report");
    eprintln!("memory report: {} (built in {:.1}s)", out.display(), t0.elapsed().as_secs_f64());

    match std::env::var("TOKENCACHE_BENCH_CLOCK").as_deref() {
        Ok("cpu") => run(Criterion::default().with_measurement(ThreadCpuTime).configure_from_args(), &w1, &w2),
        Ok("wall") | Err(_) => run(Criterion::default().configure_from_args(), &w1, &w2),
        Ok(other) => panic!("TOKENCACHE_BENCH_CLOCK={other}: expected wall or cpu"),
    }
    eprintln!("total bench wall: {:.1}s", t0.elapsed().as_secs_f64());
}

fn run<M: Measurement>(mut c: Criterion<M>, w1: &[(W1, Built)], w2: &[(W2, Built)]) {
    // ---------------- W1 ----------------
    let at = CredentialType::AccessToken;
    let w1_at_pool = |w: &W1| -> Vec<(&[&str], Map)> {
        let mut rng = Rng::new(&format!("Q:W1:{SEED}:{}", w.n));
        (0..POOL)
            .map(|_| {
                let t = &w.tenants[rng.below(w.n)];
                (W1_RESOURCES[rng.below(2)], w.at_query(t))
            })
            .collect()
    };
    let cases: Vec<_> = w1.iter().map(|(w, b)| (w.n, &b.cache, w.add_pool())).collect();
    bench_add(&mut c, "W1/add", &cases);
    drop(cases);
    let cases: Vec<_> = w1.iter().map(|(w, b)| (w.n, &b.cache, w1_at_pool(w), 1)).collect();
    bench_search(&mut c, "W1/search_at_key", at, &cases, false);
    let mut g = c.benchmark_group("W1/get_access_token");
    fast(&mut g);
    for (w, b) in w1 {
        let mut rng = Rng::new(&format!("Q:W1:{SEED}:{}", w.n));
        let pool: Vec<(&str, &[&str])> =
            (0..POOL).map(|_| (w.tenants[rng.below(w.n)].as_str(), W1_RESOURCES[rng.below(2)])).collect();
        let get = |(realm, t): &(&str, &[&str])| b.cache.get_access_token(None, ENV, &w.client_id, realm, t, None);
        assert!(pool.iter().take(16).all(|p| get(p).is_some()));
        g.bench_function(BenchmarkId::from_parameter(w.n), |bch| {
            let mut i = 0usize;
            bch.iter(|| {
                let p = &pool[i % POOL];
                i = i.wrapping_add(1);
                black_box(get(p))
            })
        });
    }
    g.finish();
    let cases: Vec<_> = w1
        .iter()
        .map(|(w, b)| {
            let q = obj(vec![("client_id", Value::from(w.client_id.as_str()))]);
            (w.n, &b.cache, vec![(W1_RESOURCES[0], q)], w.n)
        })
        .collect();
    bench_search(&mut c, "W1/search_at_target_client_id", at, &cases, true);
    let cases: Vec<_> =
        w1.iter().map(|(w, b)| (w.n, &b.cache, vec![(W1_RESOURCES[0], w.at_query(&w.unknown_tenant))], 0)).collect();
    bench_search(&mut c, "W1/search_at_miss", at, &cases, false);
    let cases: Vec<_> = w1.iter().map(|(w, b)| (w.n, &b.cache)).collect();
    bench_serde(&mut c, "W1", &cases);
    drop(cases);

    // ---------------- W2 ----------------
    let picks = |w: &W2| -> Vec<usize> {
        let mut rng = Rng::new(&format!("Q:W2:{SEED}:{}", w.n));
        (0..POOL).map(|_| rng.below(w.n)).collect()
    };
    let cases: Vec<_> = w2.iter().map(|(w, b)| (w.n, &b.cache, w.add_pool())).collect();
    bench_add(&mut c, "W2/add", &cases);
    drop(cases);
    let cases: Vec<_> = w2
        .iter()
        .map(|(w, b)| {
            let pool = picks(w).into_iter().map(|i| (W2_SCOPES_A, w.at_query(i))).collect();
            (w.n, &b.cache, pool, 1)
        })
        .collect();
    bench_search(&mut c, "W2/search_at_key", at, &cases, false);
    let mut g = c.benchmark_group("W2/get_access_token");
    fast(&mut g);
    for (w, b) in w2 {
        let pool: Vec<(String, &str)> = picks(w)
            .into_iter()
            .map(|i| {
                let (_, utid, hid) = w.user(i);
                (hid, utid)
            })
            .collect();
        let get = |(hid, realm): &(String, &str)| {
            b.cache.get_access_token(Some(hid), ENV, &w.client_id, realm, W2_SCOPES_A, None)
        };
        assert!(pool.iter().take(16).all(|p| get(p).is_some()));
        g.bench_function(BenchmarkId::from_parameter(w.n), |bch| {
            let mut i = 0usize;
            bch.iter(|| {
                let p = &pool[i % POOL];
                i = i.wrapping_add(1);
                black_box(get(p))
            })
        });
    }
    g.finish();
    // The peer's "search(AT) subset-scope": the app's full query, one of two scopes
    // (so msal's exact-key shortcut cannot apply).
    let cases: Vec<_> = w2
        .iter()
        .map(|(w, b)| {
            let pool = picks(w).into_iter().map(|i| (&W2_SCOPES_A[..1], w.at_query(i))).collect();
            (w.n, &b.cache, pool, 1)
        })
        .collect();
    bench_search(&mut c, "W2/search_at_subset_scope", at, &cases, false);
    // Only target + client_id: every user's AT(A) matches (U results).
    let cases: Vec<_> = w2
        .iter()
        .map(|(w, b)| {
            let q = obj(vec![("client_id", Value::from(w.client_id.as_str()))]);
            (w.n, &b.cache, vec![(&W2_SCOPES_A[..1], q)], w.n)
        })
        .collect();
    bench_search(&mut c, "W2/search_at_target_client_id", at, &cases, true);
    let none: &[&str] = &[];
    let cases: Vec<_> = w2
        .iter()
        .map(|(w, b)| {
            let pool = picks(w).into_iter().map(|i| (none, w.rt_query(i))).collect();
            (w.n, &b.cache, pool, 1)
        })
        .collect();
    bench_search(&mut c, "W2/search_rt", CredentialType::RefreshToken, &cases, false);
    let cases: Vec<_> = w2
        .iter()
        .map(|(w, b)| {
            let pool = picks(w).into_iter().map(|i| (none, w.rt_family_query(i))).collect();
            (w.n, &b.cache, pool, 0)
        })
        .collect();
    bench_search(&mut c, "W2/search_rt_family", CredentialType::RefreshToken, &cases, false);
    let cases: Vec<_> = w2
        .iter()
        .map(|(w, b)| {
            let pool = picks(w).into_iter().map(|i| (none, w.account_query(i))).collect();
            (w.n, &b.cache, pool, 1)
        })
        .collect();
    bench_search(&mut c, "W2/search_account_by_home_account_id", CredentialType::Account, &cases, false);
    let cases: Vec<_> = w2
        .iter()
        .map(|(w, b)| {
            let q = obj(vec![("environment", Value::from(ENV))]);
            (w.n, &b.cache, vec![(none, q)], w.n)
        })
        .collect();
    bench_search(&mut c, "W2/search_account_by_environment", CredentialType::Account, &cases, true);
    let cases: Vec<_> = w2.iter().map(|(w, b)| (w.n, &b.cache)).collect();
    bench_serde(&mut c, "W2", &cases);
    drop(cases);

    c.final_summary();
}

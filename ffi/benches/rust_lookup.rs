//! The Rust side of the C ABI benchmark (`make bench-c`): the same W1 lookups as
//! `bench/c/bench_abi.c`, made on `TokenCache` directly and through the exported
//! functions from Rust, so the cost of crossing the ABI can be told apart.
//!
//! W1: `TC_BENCH_TENANTS` tenants (default 100 000) × 2 resources, one client-credentials
//! access token of 1 500 characters each, for one confidential client, generated from
//! the same seeded sequence as the C benchmark. Prints `RESULT <name> <median> <mean>`:
//! the median of single-call times and the median over batches of the mean per call, in ns.

use std::ffi::{CString, c_char};
use std::hint::black_box;
use std::ptr;
use std::sync::Arc;
use std::time::Instant;

use tokencache_core::json::{Map, Value};
use tokencache_core::{CredentialType, TokenCache};

const ENV: &str = "login.microsoftonline.com";
const RESOURCES: [&str; 2] = ["https://graph.microsoft.com/.default", "https://storage.azure.com/.default"];
const NOW: i64 = 1_700_000_000;
const TOKEN_CHARS: usize = 1500;
const BATCH: usize = 1000;
const BATCHES: usize = 200;
const SAMPLES: usize = 200_000;

/// splitmix64: the generator the C benchmark uses too.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn guid(&mut self) -> String {
        let (a, b) = (self.next(), self.next());
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            0x8000 | (b >> 48 & 0x3fff),
            b & 0xffff_ffff_ffff
        )
    }

    fn token(&mut self) -> String {
        const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        (0..TOKEN_CHARS).map(|_| ALPHABET[(self.next() & 63) as usize] as char).collect()
    }
}

fn event(client_id: &str, tenant: &str, scope: &str, token: &str) -> String {
    format!(
        concat!(
            r#"{{"client_id": "{}", "scope": ["{}"], "token_endpoint": "https://{}/{}/oauth2/v2.0/token", "#,
            r#""grant_type": "client_credentials", "response": {{"access_token": "{}", "expires_in": 3600, "#,
            r#""token_type": "Bearer"}}, "params": null, "data": {{"claims": null, "scope": ["{}"]}}, "#,
            r#""environment": "{}"}}"#
        ),
        client_id, scope, ENV, tenant, token, scope, ENV
    )
}

/// The cost of reading the clock twice, to subtract from single-call samples.
fn timer_overhead() -> f64 {
    let mut samples: Vec<u128> = (0..SAMPLES)
        .map(|_| {
            let start = Instant::now();
            black_box(());
            start.elapsed().as_nanos()
        })
        .collect();
    samples.sort_unstable();
    samples[SAMPLES / 2] as f64
}

/// For each call: the median of single-call times (minus the clock's own cost), and the
/// median over batches of 1 000 calls of the mean time per call. The calls take turns
/// block by block (1 000 calls each), so a change in the machine's load hits all of
/// them alike; each gets its own lookups (index `i * calls + k`).
fn measure(calls: &mut [&mut dyn FnMut(usize)]) -> Vec<(f64, f64)> {
    let n = calls.len();
    for call in calls.iter_mut() {
        for i in 0..BATCH * 20 {
            call(i);
        }
    }
    let overhead = timer_overhead();
    let mut singles: Vec<Vec<u128>> = vec![Vec::with_capacity(SAMPLES); n];
    for block in 0..SAMPLES / BATCH {
        for (k, (call, samples)) in calls.iter_mut().zip(&mut singles).enumerate() {
            for i in block * BATCH..(block + 1) * BATCH {
                let start = Instant::now();
                call(i * n + k);
                samples.push(start.elapsed().as_nanos());
            }
        }
    }
    let mut batches: Vec<Vec<f64>> = vec![Vec::with_capacity(BATCHES); n];
    for b in 0..BATCHES {
        for (k, (call, means)) in calls.iter_mut().zip(&mut batches).enumerate() {
            let start = Instant::now();
            for i in b * BATCH..(b + 1) * BATCH {
                call(i * n + k);
            }
            means.push(start.elapsed().as_nanos() as f64 / BATCH as f64);
        }
    }
    singles
        .into_iter()
        .zip(batches)
        .map(|(mut one, mut many)| {
            one.sort_unstable();
            many.sort_by(f64::total_cmp);
            ((one[SAMPLES / 2] as f64 - overhead).max(0.0), many[BATCHES / 2])
        })
        .collect()
}

fn report(name: &str, (median, mean): (f64, f64)) {
    println!("RESULT {name} {median:.0} {mean:.0}");
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return; // `cargo test --benches` and `cargo bench -- --list` expect a quick exit
    }
    let tenants: usize = std::env::var("TC_BENCH_TENANTS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let mut rng = Rng(0x5731_7e4a_2c0f_fee1);
    let client_id = rng.guid();
    let tenant_ids: Vec<String> = (0..tenants).map(|_| rng.guid()).collect();
    let builder = TokenCache::new();
    let start = Instant::now();
    for tenant in &tenant_ids {
        for scope in RESOURCES {
            builder.add_json(&event(&client_id, tenant, scope, &rng.token()), Some(NOW)).unwrap();
        }
    }
    eprintln!("W1: {tenants} tenants, {} entries, built in {:.1?}", builder.len(), start.elapsed());
    // Every cache measured here and in C is loaded from the same saved document, as an
    // application loads its cache file, so all see the same memory layout.
    let saved = builder.serialize();
    drop(builder);
    let cache = Arc::new(TokenCache::new());
    cache.deserialize(&saved).unwrap();
    drop(saved);
    // The lookup order: (tenant, resource) pairs drawn from the same generator as in C.
    let mut order_rng = Rng(0x0b5e_55ed_cafe_f00d);
    let order: Vec<(usize, usize)> =
        (0..1 << 16).map(|_| ((order_rng.next() % tenants as u64) as usize, (order_rng.next() & 1) as usize)).collect();
    let pick = |i: usize| order[i & ((1 << 16) - 1)];

    let mut direct = |i: usize| {
        let (t, r) = pick(i);
        let entry = cache.get_access_token(None, ENV, &client_id, &tenant_ids[t], &[RESOURCES[r]], None).unwrap();
        black_box((entry.secret(), entry.get("expires_on").and_then(|v| v.to_python_int())));
    };

    // The same call through the exported C function (from Rust: no C compiler involved),
    // on the same cache.
    let c_env = CString::new(ENV).unwrap();
    let c_client = CString::new(client_id.as_str()).unwrap();
    let c_tenants: Vec<CString> = tenant_ids.iter().map(|t| CString::new(t.as_str()).unwrap()).collect();
    let c_scopes: Vec<CString> = RESOURCES.iter().map(|s| CString::new(*s).unwrap()).collect();
    let raw = tokencache::tc_cache::from_arc(Arc::clone(&cache));
    let mut buffer = vec![0 as c_char; 4096];
    let mut through_abi = |i: usize| {
        let (t, r) = pick(i);
        let scopes = [c_scopes[r].as_ptr()];
        let (mut len, mut expires_on) = (0usize, 0i64);
        // SAFETY: every pointer is valid for the call.
        let result = unsafe {
            tokencache::tc_cache_get_access_token(
                raw,
                ptr::null(),
                c_env.as_ptr(),
                c_client.as_ptr(),
                c_tenants[t].as_ptr(),
                scopes.as_ptr(),
                1,
                ptr::null(),
                buffer.as_mut_ptr(),
                buffer.len(),
                &mut len,
                &mut expires_on,
            )
        };
        assert_eq!(result, tokencache::tc_result::Ok);
        black_box((len, expires_on));
    };
    let results = measure(&mut [&mut direct, &mut through_abi]);
    report("rust_get_access_token", results[0]);
    report("rust_calls_abi_get_access_token", results[1]);
    // SAFETY: the C side's reference, given back once.
    unsafe { tokencache::tc_cache_free(raw) };

    // msal's silent-flow query, as a parsed map (no JSON in or out).
    let queries: Vec<Map> = tenant_ids
        .iter()
        .map(|t| {
            let mut q = Map::new();
            q.insert("client_id", Value::from(client_id.as_str()));
            q.insert("environment", Value::from(ENV));
            q.insert("realm", Value::from(t.as_str()));
            q.insert("home_account_id", Value::Null);
            q
        })
        .collect();
    let mut search = |i: usize| {
        let (t, r) = pick(i);
        let found = cache.search(CredentialType::AccessToken, &[RESOURCES[r]], Some(&queries[t]), Some(NOW + 10));
        assert_eq!(found.len(), 1);
        black_box(found);
    };
    report("rust_search", measure(&mut [&mut search])[0]);
}

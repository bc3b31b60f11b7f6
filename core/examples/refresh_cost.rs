//! What proactive refresh costs and saves: N app tokens (one per tenant) issued over an
//! hour, so that their expiries spread evenly; a timer polls a `RefreshWatcher` every 30 s
//! with a 10-minute horizon. Prints the cost of one `due_for_refresh` scan and one poll, and
//! how many requests of a steady load would have found their token expired (each a token
//! request on the request path) without the refresher and with it (BENCHMARKS.md).
//!
//! `cargo run --release -p tokencache --example refresh_cost -- [N]` (default 100,000).

use std::time::Instant;

use tokencache::json::{Map, Value};
use tokencache::{RefreshWatcher, TokenCache};

const NOW: i64 = 1_700_000_000;
const SCOPE: &str = "https://graph.microsoft.com/.default";
const LIFETIME: i64 = 3600;
const HORIZON: i64 = 600;
const MARGIN: i64 = 300;
const POLL_EVERY: i64 = 30;

fn event(tenant: usize, generation: usize) -> Map {
    let text = format!(
        r#"{{"client_id": "daemon", "scope": ["{SCOPE}"], "environment": "login.microsoftonline.com",
        "token_endpoint": "https://login.microsoftonline.com/tenant-{tenant}/oauth2/v2.0/token",
        "grant_type": "client_credentials",
        "response": {{"access_token": "at-{tenant}-{generation}-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "expires_in": {LIFETIME}}}}}"#
    );
    match tokencache::json::parse(&text).unwrap() {
        Value::Object(m) => m,
        _ => unreachable!(),
    }
}

fn issued_at(tenant: usize, n: usize) -> i64 {
    NOW + (tenant as i64 * LIFETIME) / n as i64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let n: usize = std::env::args().nth(1).map_or(100_000, |a| a.parse().expect("N"));
    let cache = TokenCache::new();
    for t in 0..n {
        cache.add(&event(t, 0), Some(issued_at(t, n))).unwrap();
    }
    let start = NOW + LIFETIME; // every token issued; the first ones near expiry

    // Cost of one scan and of one poll (the watcher remembers what it reported).
    let scans: Vec<f64> = (0..20)
        .map(|i| {
            let t = Instant::now();
            let due = cache.due_for_refresh(Some(start + i), HORIZON);
            assert!(!due.is_empty());
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    let watcher = RefreshWatcher::new(HORIZON);
    let first = RefreshWatcher::new(HORIZON).poll(&cache, Some(start)).len();

    // One simulated hour, twice: a steady load of one request per tenant per minute
    // (half the tenants in each 30 s step) needs a token usable for 5 more minutes
    // (msal's margin). Without a refresher, a request that finds its token unusable
    // fetches one itself (it waits for the token endpoint); with one, a timer polls
    // the watcher every 30 s and renews what is due 10 minutes ahead.
    let without = TokenCache::new();
    for t in 0..n {
        without.add(&event(t, 0), Some(issued_at(t, n))).unwrap();
    }
    let mut polls = Vec::new();
    let mut renewed = 0usize;
    let (mut misses_with, mut misses_without) = (0usize, 0usize);
    let mut generation = vec![0usize; n];
    let mut clock = start;
    let usable = |cache: &TokenCache, realm: &str, clock: i64| {
        cache
            .get_access_token(None, "login.microsoftonline.com", "daemon", realm, &[SCOPE], None)
            .and_then(|e| e.get_str("expires_on").and_then(|s| s.parse::<i64>().ok()))
            .is_some_and(|exp| exp > clock + MARGIN)
    };
    let mut step = 0usize;
    while clock < start + LIFETIME {
        let t = Instant::now();
        let due = watcher.poll(&cache, Some(clock));
        polls.push(t.elapsed().as_secs_f64() * 1e3);
        for d in due {
            let realm = d.entry.get_str("realm").unwrap();
            let tenant: usize = realm.trim_start_matches("tenant-").parse().unwrap();
            generation[tenant] += 1;
            cache.add(&event(tenant, generation[tenant]), Some(clock)).unwrap();
            renewed += 1;
        }
        for t in (step % 2..n).step_by(2) {
            let realm = format!("tenant-{t}");
            if !usable(&cache, &realm, clock) {
                misses_with += 1;
            }
            if !usable(&without, &realm, clock) {
                misses_without += 1;
                without.add(&event(t, 1), Some(clock)).unwrap();
            }
        }
        clock += POLL_EVERY;
        step += 1;
    }
    println!(
        "proactive refresh, {n} app tokens expiring evenly over an hour; horizon {HORIZON} s, poll every {POLL_EVERY} s"
    );
    println!("| measure | value |\n|---|---:|");
    println!("| due_for_refresh scan, median of 20 | {:.2} ms |", median(scans));
    println!("| first poll (returns {first}) | - |");
    let (count, max) = (polls.len(), polls.iter().copied().fold(0.0, f64::max));
    println!("| poll, median over the hour ({count} polls) | {:.2} ms |", median(polls));
    println!("| poll, max | {max:.2} ms |");
    println!("| tokens renewed in the hour | {renewed} |");
    println!("| requests that found no usable token, with the refresher | {misses_with} |");
    println!("| requests in the hour | {} |", step * n / 2);
    println!("| requests that found no usable token (and fetched one themselves), without it | {misses_without} |");
}

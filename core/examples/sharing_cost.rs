//! What sharing mode costs: the same client-credentials workload (one app, N tenants,
//! msal Python's events and queries) through a cache in default mode and one in
//! sharing mode, in one run. Prints ns per operation and the ratio (BENCHMARKS.md).
//!
//! `cargo run --release -p tokencache --example sharing_cost -- [N]` (default 10,000).

use std::hint::black_box;
use std::time::Instant;

use tokencache::json::{Map, Value};
use tokencache::{CredentialType, TokenCache};

const NOW: i64 = 1_700_000_000;
const SCOPE: &str = "https://graph.microsoft.com/.default";

fn event(tenant: usize) -> Map {
    let text = format!(
        r#"{{"client_id": "daemon", "scope": ["{SCOPE}"], "environment": "login.microsoftonline.com",
        "token_endpoint": "https://login.microsoftonline.com/tenant-{tenant}/oauth2/v2.0/token",
        "grant_type": "client_credentials",
        "response": {{"access_token": "at-{tenant}-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "expires_in": 3600}}}}"#
    );
    match tokencache::json::parse(&text).unwrap() {
        Value::Object(m) => m,
        _ => unreachable!(),
    }
}

fn query(tenant: usize) -> Map {
    let mut q = Map::new();
    q.insert("client_id", Value::from("daemon"));
    q.insert("environment", Value::from("login.microsoftonline.com"));
    q.insert("realm", Value::from(format!("tenant-{tenant}")));
    q.insert("home_account_id", Value::Null);
    q
}

fn per_op(n: usize, mut f: impl FnMut(usize)) -> f64 {
    let start = Instant::now();
    for i in 0..n {
        f(i);
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

fn main() {
    let n: usize = std::env::args().nth(1).map_or(10_000, |a| a.parse().expect("N"));
    let events: Vec<Map> = (0..n).map(event).collect();
    let queries: Vec<Map> = (0..n).map(query).collect();
    println!("sharing mode vs default, {n} tenants of one daemon app (ns/op; ratio = sharing/default)");
    println!("| op | default | sharing | ratio |\n|---|---:|---:|---:|");
    let mut rows = Vec::new();
    for sharing in [false, true] {
        let cache = TokenCache::new();
        cache.set_sharing(sharing);
        let add = per_op(n, |i| cache.add(&events[i], Some(NOW)).unwrap());
        let renew = per_op(n, |i| cache.add(&events[i], Some(NOW + 1)).unwrap());
        let search = per_op(n, |i| {
            let hits = cache.search(CredentialType::AccessToken, &[SCOPE], Some(&queries[i]), Some(NOW + 2));
            assert_eq!(hits.len(), 1);
            black_box(hits);
        });
        let get = per_op(n, |i| {
            let at = cache.get_access_token(
                None,
                "login.microsoftonline.com",
                "daemon",
                &format!("tenant-{i}"),
                &[SCOPE],
                None,
            );
            assert!(at.is_some());
            black_box(at);
        });
        rows.push([add, renew, search, get]);
    }
    for (i, name) in
        ["add (new token)", "add (renewal)", "search (msal Python's AT query)", "get_access_token"].iter().enumerate()
    {
        let (d, s) = (rows[0][i], rows[1][i]);
        println!("| {name} | {d:.0} | {s:.0} | {:.2}x |", s / d);
    }
}

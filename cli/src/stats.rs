//! `tokencache stats`: counts and sizes of a cache at rest, and a store's read latency.

use std::io::Write;

use clap::Args;
use serde_json::{Value, json};
use tokencache::CredentialType;
use tokencache::inventory::{BlobContent, PartitionView, StoreInventory, TypeTotals};
use tokencache::store::ListStore;

use crate::inspect::{latency_json, load_file, partition_json, scan};
use crate::output::{self, Table};
use crate::target::{Opened, Target, open, source_key_ring};
use crate::{Failure, Outcome, TargetArgs};

#[derive(Args)]
pub struct StatsArgs {
    /// The cache: a file, sqlite:PATH, or a redis:// or rediss:// URL.
    pub target: Target,
    #[command(flatten)]
    pub opts: TargetArgs,
    /// How many of the largest partitions to list.
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub top: usize,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

struct Summary {
    totals: [TypeTotals; 5],
    partitions: Vec<PartitionView>,
    bytes: usize,
    /// Store-only facts, as (label, JSON value) pairs.
    store: Vec<(&'static str, Value)>,
}

pub fn run(a: &StatsArgs) -> Result<Outcome, Failure> {
    let now = a.opts.now();
    source_key_ring(&a.target, &a.opts)?;
    let opened = open(&a.target, &a.opts)?;
    let s = match &opened {
        Opened::File(p) => {
            let inv = load_file(p, now)?;
            Summary { totals: inv.totals(), partitions: inv.partitions.clone(), bytes: inv.bytes, store: vec![] }
        }
        _ => {
            let store = opened.store().expect("stores list");
            let inv = scan(store, &a.opts, &a.target)?;
            store_summary(&opened, &inv)?
        }
    };
    let mut largest = s.partitions.clone();
    largest.sort_by(|x, y| y.bytes.cmp(&x.bytes).then_with(|| x.key.cmp(&y.key)));
    largest.truncate(a.top);
    if a.json {
        let mut by_type = serde_json::Map::new();
        for (ct, t) in CredentialType::ALL.iter().zip(s.totals) {
            by_type.insert(ct.as_str().into(), json!({"entries": t.entries, "expired": t.expired, "bytes": t.bytes}));
        }
        let mut v = json!({
            "source": {"kind": a.target.kind(), "location": a.target.to_string()},
            "now": now,
            "entries": s.totals.iter().map(|t| t.entries).sum::<usize>(),
            "by_type": by_type,
            "partitions": s.partitions.len(),
            "bytes": s.bytes,
            "largest_partitions": largest.iter().map(partition_json).collect::<Vec<_>>(),
        });
        if !s.store.is_empty() {
            v["store"] = Value::Object(s.store.iter().map(|(k, v)| (k.to_string(), v.clone())).collect());
        }
        output::json(&v)?;
        return Ok(Outcome::Done);
    }
    let mut out = output::stdout();
    writeln!(out, "{}: {}", output::paint(output::BOLD, &a.target.to_string()), output::utc(now))?;
    output::title(&mut out, "Entries")?;
    let mut t = Table::new(&["TYPE", ">ENTRIES", ">EXPIRED", ">SIZE"]);
    for (ct, tt) in CredentialType::ALL.iter().zip(s.totals) {
        t.row(vec![
            ct.as_str().into(),
            tt.entries.to_string().into(),
            tt.expired.to_string().into(),
            output::size(tt.bytes).into(),
        ]);
    }
    let sum = |f: fn(&TypeTotals) -> usize| s.totals.iter().map(f).sum::<usize>();
    t.row(vec![
        output::Cell::styled("total", output::BOLD),
        sum(|t| t.entries).to_string().into(),
        sum(|t| t.expired).to_string().into(),
        output::size(sum(|t| t.bytes)).into(),
    ]);
    t.print(&mut out)?;
    writeln!(out, "\n  partitions: {}    size: {}", s.partitions.len(), output::size(s.bytes))?;
    if !s.store.is_empty() {
        output::title(&mut out, "Store")?;
        for (k, v) in &s.store {
            let shown = match v {
                Value::String(x) => x.clone(),
                Value::Object(_) => serde_json::to_string(v).unwrap_or_default(),
                other => other.to_string(),
            };
            writeln!(out, "  {k}: {shown}")?;
        }
    }
    if !largest.is_empty() {
        output::title(&mut out, "Largest partitions")?;
        let mut t = Table::new(&["KEY", ">ENTRIES", ">SIZE"]);
        for p in &largest {
            t.row(vec![p.key.as_str().into(), p.entries.to_string().into(), output::size(p.bytes).into()]);
        }
        t.print(&mut out)?;
    }
    Ok(Outcome::Done)
}

fn store_summary(opened: &Opened, inv: &StoreInventory) -> Result<Summary, Failure> {
    let partitions: Vec<PartitionView> =
        inv.blobs.iter().filter_map(|b| b.inventory()).flat_map(|i| i.partitions.iter().cloned()).collect();
    let n = |f: fn(&BlobContent) -> bool| inv.blobs.iter().filter(|b| f(&b.content)).count();
    let mut store = vec![
        ("blobs", json!(inv.blobs.len())),
        ("encrypted", json!(inv.blobs.iter().filter(|b| b.sealed_with.is_some()).count())),
        ("sealed_without_key", json!(n(|c| matches!(c, BlobContent::Sealed)))),
        ("unreadable", json!(n(|c| matches!(c, BlobContent::Unreadable(_))))),
        ("without_expiry", json!(inv.blobs.iter().filter(|b| b.expires_at.is_none()).count())),
        ("stored_bytes", json!(inv.bytes())),
        ("read_latency_ms", latency_json(&inv.read_latency)),
    ];
    match opened {
        Opened::Sqlite(s) => {
            let rows = s.row_count()?;
            store.push(("rows", json!(rows)));
            store.push(("expired_rows", json!(rows.saturating_sub(s.keys()?.len() as u64))));
        }
        Opened::Redis(r) => {
            if let Ok(info) = r.server_info() {
                store.push(("redis_version", json!(info.version)));
                store.push(("used_memory", json!(info.used_memory)));
                store.push(("maxmemory", json!(info.maxmemory)));
                store.push(("maxmemory_policy", json!(info.maxmemory_policy)));
                store.push(("evicted_keys", json!(info.evicted_keys)));
            }
        }
        Opened::File(_) => {}
    }
    Ok(Summary { totals: inv.totals(), bytes: inv.bytes(), partitions, store })
}

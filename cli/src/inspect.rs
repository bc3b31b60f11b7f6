//! `tokencache inspect`: what a cache holds, secrets redacted.

use std::io::Write;
use std::path::Path;

use clap::Args;
use serde_json::{Value, json};
use tokencache::CredentialType;
use tokencache::inventory::{BlobContent, BlobView, EntryView, Inventory, PartitionView, StoreInventory, scan_store};

use crate::output::{self, Cell, DIM, GREEN, PLAIN, RED, Table, YELLOW, paint};
use crate::target::{Opened, Target, open, source_key_ring};
use crate::{Failure, Outcome, TargetArgs};

#[derive(Args)]
pub struct InspectArgs {
    /// The cache: a file, sqlite:PATH, or a redis:// or rediss:// URL.
    pub target: Target,
    #[command(flatten)]
    pub opts: TargetArgs,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// Reads and parses a cache file, or says in one line why it cannot.
pub fn load_file(path: &Path, now: i64) -> Result<Inventory, Failure> {
    let bytes = std::fs::read(path).map_err(|e| Failure(format!("cannot read {}: {e}", path.display())))?;
    let text = String::from_utf8(bytes).map_err(|_| {
        Failure(format!(
            "{} is not UTF-8 text (an encrypted msal-extensions file?); try `tokencache doctor`",
            path.display()
        ))
    })?;
    let (_, inv) = Inventory::parse(&text, now).map_err(|e| match e.position() {
        Some((l, c)) => {
            Failure(format!("{} is not valid JSON at line {l}, column {c}: {}", path.display(), e.message()))
        }
        None => Failure(format!("{}: {}", path.display(), e.message())),
    })?;
    Ok(inv)
}

/// Reads every blob of a store, with a progress bar.
pub fn scan(
    store: &dyn tokencache::store::ListStore,
    args: &TargetArgs,
    target: &Target,
) -> Result<StoreInventory, Failure> {
    let ring = source_key_ring(target, args)?;
    let mut progress = output::Progress::new("reading");
    Ok(scan_store(store, ring.as_ref(), args.now(), &mut |d, t| progress.update(d, t))?)
}

pub fn run(a: &InspectArgs) -> Result<Outcome, Failure> {
    let now = a.opts.now();
    source_key_ring(&a.target, &a.opts)?;
    let opened = open(&a.target, &a.opts)?;
    match &opened {
        Opened::File(p) => {
            let inv = load_file(p, now)?;
            if a.json {
                output::json(&file_json(&a.target, &inv))?;
            } else {
                print_file(&a.target, &inv)?;
            }
        }
        _ => {
            let store = opened.store().expect("stores list");
            let scan = scan(store, &a.opts, &a.target)?;
            if a.json {
                output::json(&store_json(&a.target, &scan))?;
            } else {
                print_store(&a.target, &scan)?;
            }
        }
    }
    Ok(Outcome::Done)
}

fn opt(v: &Option<String>) -> Value {
    v.as_deref().map_or(Value::Null, |s| Value::String(s.to_owned()))
}

pub fn entry_json(e: &EntryView) -> Value {
    json!({
        "credential_type": e.credential_type.as_str(),
        "key": e.key,
        "partition": opt(&e.partition),
        "home_account_id": opt(&e.home_account_id),
        "environment": opt(&e.environment),
        "client_id": opt(&e.client_id),
        "realm": opt(&e.realm),
        "username": opt(&e.username),
        "authority_type": opt(&e.authority_type),
        "family_id": opt(&e.family_id),
        "token_type": opt(&e.token_type),
        "scopes": e.scopes,
        "cached_at": e.cached_at,
        "expires_on": e.expires_on,
        "refresh_on": e.refresh_on,
        "expired": e.expired,
        "secret": if e.has_secret { Value::from("[redacted]") } else { Value::Null },
        "fields": e.field_names,
        "bytes": e.bytes,
    })
}

pub fn partition_json(p: &PartitionView) -> Value {
    json!({
        "key": p.key,
        "entries": p.entries,
        "bytes": p.bytes,
        "refresh_tokens": p.refresh_tokens,
        "access_tokens": p.access_tokens,
        "expired_access_tokens": p.expired_access_tokens,
        "latest_access_token_expiry": p.latest_access_token_expiry,
    })
}

fn source_json(target: &Target) -> Value {
    json!({"kind": target.kind(), "location": target.to_string()})
}

fn file_json(target: &Target, inv: &Inventory) -> Value {
    json!({
        "source": source_json(target),
        "now": inv.now,
        "bytes": inv.bytes,
        "entries": inv.entries.iter().map(entry_json).collect::<Vec<_>>(),
        "partitions": inv.partitions.iter().map(partition_json).collect::<Vec<_>>(),
        "unreadable_entries": inv.unreadable_entries.iter()
            .map(|u| json!({"credential_type": u.credential_type.as_str(), "key": u.key})).collect::<Vec<_>>(),
        "unknown_sections": inv.unknown_sections,
    })
}

pub fn blob_status(b: &BlobView) -> (String, Option<String>) {
    match &b.content {
        BlobContent::Cache(_) => ("ok".into(), None),
        BlobContent::Sealed => ("sealed".into(), Some("encrypted and no key was given".into())),
        BlobContent::Unreadable(e) => {
            let at = e.position().map(|(l, c)| format!(" at line {l}, column {c}")).unwrap_or_default();
            (e.kind().as_str().into(), Some(format!("{}{at}", e.message())))
        }
    }
}

fn store_json(target: &Target, scan: &StoreInventory) -> Value {
    let mut entries = Vec::new();
    for b in &scan.blobs {
        for e in b.inventory().map(|i| i.entries.as_slice()).unwrap_or_default() {
            let mut v = entry_json(e);
            v["blob"] = Value::from(b.key.clone());
            entries.push(v);
        }
    }
    json!({
        "source": source_json(target),
        "now": scan.now,
        "bytes": scan.bytes(),
        "blobs": scan.blobs.iter().map(|b| {
            let (status, error) = blob_status(b);
            json!({
                "key": b.key,
                "bytes": b.bytes,
                "expires_at": b.expires_at,
                "expiry": {"absolute": b.expiry.absolute, "sliding_secs": b.expiry.sliding_secs},
                "sealed_with": opt(&b.sealed_with),
                "status": status,
                "error": opt(&error),
                "entries": b.inventory().map(|i| i.entries.len()),
                "partitions": b.inventory().map(|i| i.partitions.iter().map(partition_json).collect::<Vec<_>>()),
            })
        }).collect::<Vec<_>>(),
        "entries": entries,
        "read_latency_ms": latency_json(&scan.read_latency),
    })
}

pub fn latency_json(l: &tokencache::inventory::Latency) -> Value {
    let ms = |d: std::time::Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
    json!({"count": l.count, "p50": ms(l.p50), "p99": ms(l.p99), "max": ms(l.max)})
}

fn print_file(target: &Target, inv: &Inventory) -> Result<(), Failure> {
    let mut out = output::stdout();
    writeln!(
        out,
        "{}: {} in {}, {} (as of {})",
        paint(output::BOLD, &target.to_string()),
        count(inv.entries.len(), "entry", "entries"),
        count(inv.partitions.len(), "partition", "partitions"),
        output::size(inv.bytes),
        output::utc(inv.now)
    )?;
    print_entries(&mut out, &inv.entries.iter().collect::<Vec<_>>(), inv.now)?;
    if !inv.partitions.is_empty() {
        output::title(&mut out, "Partitions")?;
        let mut t = Table::new(&["KEY", ">ENTRIES", ">RT", ">AT", ">EXPIRED AT", ">SIZE"]);
        for p in &inv.partitions {
            t.row(vec![
                p.key.as_str().into(),
                p.entries.to_string().into(),
                p.refresh_tokens.to_string().into(),
                p.access_tokens.to_string().into(),
                Cell::styled(
                    p.expired_access_tokens.to_string(),
                    if p.expired_access_tokens > 0 { YELLOW } else { PLAIN },
                ),
                output::size(p.bytes).into(),
            ]);
        }
        t.print(&mut out)?;
    }
    print_oddities(&mut out, inv)?;
    writeln!(out, "\n{}", paint(DIM, "Secrets are redacted: token values are never shown."))?;
    Ok(())
}

fn print_oddities(out: &mut impl Write, inv: &Inventory) -> std::io::Result<()> {
    if !inv.unreadable_entries.is_empty() {
        output::title(out, "Entries that are not objects (kept, never used)")?;
        for u in &inv.unreadable_entries {
            writeln!(out, "  {} {}", u.credential_type, u.key)?;
        }
    }
    if !inv.unknown_sections.is_empty() {
        output::title(out, "Unknown top-level sections (kept as they are)")?;
        for s in &inv.unknown_sections {
            writeln!(out, "  {s}")?;
        }
    }
    Ok(())
}

fn print_store(target: &Target, scan: &StoreInventory) -> Result<(), Failure> {
    let mut out = output::stdout();
    let entries: Vec<&EntryView> =
        scan.blobs.iter().filter_map(BlobView::inventory).flat_map(|i| i.entries.iter()).collect();
    writeln!(
        out,
        "{}: {} holding {}, {} (as of {})",
        paint(output::BOLD, &target.to_string()),
        count(scan.blobs.len(), "blob", "blobs"),
        count(entries.len(), "entry", "entries"),
        output::size(scan.bytes()),
        output::utc(scan.now)
    )?;
    if !scan.blobs.is_empty() {
        output::title(&mut out, "Blobs")?;
        let mut t = Table::new(&["KEY", ">SIZE", "EXPIRES", "ENCRYPTED WITH", "CONTENT"]);
        for b in &scan.blobs {
            let expires = b.expires_at.map_or_else(
                || "never".to_owned(),
                |x| {
                    format!(
                        "{}{}",
                        output::expiry(x, scan.now),
                        if b.expiry.sliding_secs.is_some() { ", sliding" } else { "" }
                    )
                },
            );
            let (status, error) = blob_status(b);
            let content = match &b.content {
                BlobContent::Cache(inv) => Cell::styled(count(inv.entries.len(), "entry", "entries"), GREEN),
                BlobContent::Sealed => Cell::styled("sealed (pass --key-file or --key-env)", YELLOW),
                BlobContent::Unreadable(_) => Cell::styled(format!("{status}: {}", error.unwrap_or_default()), RED),
            };
            t.row(vec![
                b.key.as_str().into(),
                output::size(b.bytes).into(),
                expires.into(),
                b.sealed_with.as_deref().unwrap_or("-").into(),
                content,
            ]);
        }
        t.print(&mut out)?;
    }
    print_entries(&mut out, &entries, scan.now)?;
    for inv in scan.blobs.iter().filter_map(BlobView::inventory) {
        print_oddities(&mut out, inv)?;
    }
    writeln!(out, "\n{}", paint(DIM, "Secrets are redacted: token values are never shown."))?;
    Ok(())
}

pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn dash(v: &Option<String>) -> String {
    v.as_deref().filter(|s| !s.is_empty()).unwrap_or("-").to_owned()
}

fn print_entries(out: &mut impl Write, entries: &[&EntryView], now: i64) -> std::io::Result<()> {
    let of = |ct: CredentialType| entries.iter().copied().filter(move |e| e.credential_type == ct);
    let mut accounts = Table::new(&["USERNAME", "HOME ACCOUNT ID", "ENVIRONMENT", "REALM", "AUTHORITY"]);
    for a in of(CredentialType::Account) {
        accounts.row(vec![
            dash(&a.username).into(),
            dash(&a.home_account_id).into(),
            dash(&a.environment).into(),
            dash(&a.realm).into(),
            dash(&a.authority_type).into(),
        ]);
    }
    if !accounts.is_empty() {
        output::title(out, "Accounts")?;
        accounts.print(out)?;
    }
    let mut tokens = Table::new(&["TYPE", "PARTITION", "CLIENT", "REALM", "SCOPES", "EXPIRES", ">SIZE", "SECRET"]);
    for ct in [CredentialType::AccessToken, CredentialType::RefreshToken, CredentialType::IdToken] {
        for e in of(ct) {
            let expires = match (e.expires_on, ct) {
                (Some(x), _) => Cell::styled(output::expiry(x, now), if e.expired { YELLOW } else { PLAIN }),
                (None, CredentialType::RefreshToken) => Cell::new("-"),
                (None, _) => Cell::new("-"),
            };
            let mut kind = ct.as_str().to_owned();
            if let Some(f) = e.family_id.as_deref().filter(|f| !f.is_empty()) {
                kind.push_str(&format!(" (family {f})"));
            }
            if let Some(tt) = e.token_type.as_deref().filter(|t| !t.eq_ignore_ascii_case("bearer")) {
                kind.push_str(&format!(" ({tt})"));
            }
            tokens.row(vec![
                kind.into(),
                dash(&e.partition).into(),
                dash(&e.client_id).into(),
                dash(&e.realm).into(),
                if e.scopes.is_empty() { "-".to_owned() } else { e.scopes.join(" ") }.into(),
                expires,
                output::size(e.bytes).into(),
                Cell::styled(if e.has_secret { "[redacted]" } else { "none" }, DIM),
            ]);
        }
    }
    if !tokens.is_empty() {
        output::title(out, "Tokens")?;
        tokens.print(out)?;
    }
    let mut apps = Table::new(&["CLIENT", "ENVIRONMENT", "FAMILY"]);
    for m in of(CredentialType::AppMetadata) {
        apps.row(vec![dash(&m.client_id).into(), dash(&m.environment).into(), dash(&m.family_id).into()]);
    }
    if !apps.is_empty() {
        output::title(out, "Apps")?;
        apps.print(out)?;
    }
    Ok(())
}

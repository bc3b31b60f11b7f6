//! `tokencache purge --expired`: remove expired access tokens and expired blobs.

use std::io::Write;

use clap::Args;
use serde_json::json;
use tokencache::maintenance::{PurgeReport, purge_file, purge_store};
use tokencache::store::{ListStore, LockOptions};

use crate::inspect::{count, load_file, scan};
use crate::output::{self, paint};
use crate::target::{Opened, Target, open, source_key_ring};
use crate::{Failure, Outcome, TargetArgs};

#[derive(Args)]
pub struct PurgeArgs {
    /// The cache: a file, sqlite:PATH, or a redis:// or rediss:// URL.
    pub target: Target,
    /// Remove access tokens that have expired, and blobs a store keeps past their expiry.
    /// A file is changed under its lock (as msal-extensions locks it); encrypted blobs are
    /// rewritten only with --key-file or --key-env, sealed again with the same ring.
    #[arg(long, required = true)]
    pub expired: bool,
    /// Only count what would be removed.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub opts: TargetArgs,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: &PurgeArgs) -> Result<Outcome, Failure> {
    let now = a.opts.now();
    let ring = source_key_ring(&a.target, &a.opts)?;
    let opened = open(&a.target, &a.opts)?;
    let report = if a.dry_run {
        dry_run(&opened, a)?
    } else {
        match &opened {
            Opened::File(p) => purge_file(p, now, LockOptions::default())?,
            _ => {
                let mut progress = output::Progress::new("purging");
                let store = opened.store().expect("stores list");
                purge_store(store, ring.as_ref(), now, &mut |d, t| progress.update(d, t))?
            }
        }
    };
    if a.json {
        output::json(&json!({
            "source": {"kind": a.target.kind(), "location": a.target.to_string()},
            "dry_run": a.dry_run,
            "expired_access_tokens": report.expired_access_tokens,
            "expired_blobs": report.expired_blobs,
            "blobs_rewritten": report.blobs_rewritten,
            "blobs_removed": report.blobs_removed,
            "skipped": report.skipped.iter().map(|(k, why)| json!({"key": k, "reason": why})).collect::<Vec<_>>(),
        }))?;
        return Ok(Outcome::Done);
    }
    let mut out = output::stdout();
    let verb = if a.dry_run { "Would remove" } else { "Removed" };
    let mut line = format!(
        "{verb} {}",
        count(report.expired_access_tokens as usize, "expired access token", "expired access tokens")
    );
    if !matches!(a.target, Target::File(_)) {
        line.push_str(&format!(
            " and {} from {}",
            count(report.expired_blobs as usize, "expired blob", "expired blobs"),
            a.target
        ));
        if !a.dry_run {
            line.push_str(&format!(
                " ({} rewritten, {} emptied and removed)",
                report.blobs_rewritten, report.blobs_removed
            ));
        }
    } else {
        line.push_str(&format!(" from {}", a.target));
    }
    writeln!(out, "{line}.")?;
    for (key, why) in &report.skipped {
        writeln!(out, "  {} {key}: {why}", paint(output::YELLOW, "skipped"))?;
    }
    Ok(Outcome::Done)
}

fn dry_run(opened: &Opened, a: &PurgeArgs) -> Result<PurgeReport, Failure> {
    let now = a.opts.now();
    Ok(match opened {
        Opened::File(p) => PurgeReport {
            expired_access_tokens: load_file(p, now)?.expired_access_tokens() as u64,
            ..Default::default()
        },
        _ => {
            let store = opened.store().expect("stores list");
            let inv = scan(store, &a.opts, &a.target)?;
            let expired_blobs = match opened {
                Opened::Sqlite(s) => s.row_count()?.saturating_sub(s.keys()?.len() as u64),
                _ => 0,
            };
            let skipped = inv
                .blobs
                .iter()
                .filter(|b| b.inventory().is_none())
                .map(|b| (b.key.clone(), crate::inspect::blob_status(b).1.unwrap_or_default()))
                .collect();
            PurgeReport {
                expired_access_tokens: inv.totals().iter().map(|t| t.expired as u64).sum(),
                expired_blobs,
                skipped,
                ..Default::default()
            }
        }
    })
}

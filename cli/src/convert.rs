//! `tokencache convert`: copy a cache between a file and stores; encrypt or decrypt.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use serde_json::json;
use tokencache::maintenance::{Endpoint, copy};

use crate::inspect::count;
use crate::output::{self, paint};
use crate::target::{Opened, Target, key_ring, open_with, source_key_ring};
use crate::{Failure, Outcome, TargetArgs};

#[derive(Args)]
#[command(after_long_help = "\
Examples:
  tokencache convert ~/.azure/msal_token_cache.json sqlite:tokens.db
  tokencache convert sqlite:tokens.db redis://127.0.0.1:6379 --encrypt-key-env TOKENCACHE_KEYS
  tokencache convert redis://127.0.0.1:6379 cache.json --key-file keys.txt      (decrypt)

A file is always written in clear, in msal Python's format: other MSAL apps read it.
From a file to a store, each partition becomes one blob that expires with its last
access token when it holds no refresh token; partitions with nothing usable are skipped.")]
pub struct ConvertArgs {
    /// Where to read the cache: a file, sqlite:PATH, or a redis:// or rediss:// URL.
    pub from: Target,
    /// Where to write it (same forms). SQLite databases are created when missing.
    pub to: Target,
    #[command(flatten)]
    pub opts: TargetArgs,
    /// Key prefix of a Redis destination (default: --prefix).
    #[arg(long, value_name = "PREFIX")]
    pub to_prefix: Option<String>,
    /// File holding the key ring to encrypt the destination's blobs with (its first key).
    #[arg(long, value_name = "FILE", conflicts_with = "encrypt_key_env")]
    pub encrypt_key_file: Option<PathBuf>,
    /// Environment variable holding that key ring.
    #[arg(long, value_name = "VAR")]
    pub encrypt_key_env: Option<String>,
    /// Write even when the destination already holds a cache: a file is replaced, a
    /// store's blobs under the same keys are.
    #[arg(long)]
    pub force: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

fn endpoint<'a>(o: &'a Opened, ring: Option<&'a tokencache::store::KeyRing>) -> Endpoint<'a> {
    match o {
        Opened::File(p) => Endpoint::File(p.as_path()),
        other => Endpoint::Store { store: other.store().expect("stores list"), ring },
    }
}

pub fn run(a: &ConvertArgs) -> Result<Outcome, Failure> {
    let now = a.opts.now();
    let source_ring = source_key_ring(&a.from, &a.opts)?;
    let dest_ring = key_ring(a.encrypt_key_file.as_ref(), a.encrypt_key_env.as_deref())?;
    if dest_ring.is_some() && matches!(a.to, Target::File(_)) {
        return Err(Failure(
            "a cache file is always written in clear (other MSAL apps read it): encrypt into sqlite: or redis:// instead"
                .into(),
        ));
    }
    if a.from.to_string() == a.to.to_string() && a.opts.prefix == a.to_prefix.clone().unwrap_or(a.opts.prefix.clone()) {
        return Err(Failure("the source and the destination are the same".into()));
    }
    let from = open_with(&a.from, &a.opts, &a.opts.prefix, false)?;
    let to = open_with(&a.to, &a.opts, a.to_prefix.as_deref().unwrap_or(&a.opts.prefix), true)?;
    let from_end = endpoint(&from, source_ring.as_ref());
    let to_end = endpoint(&to, dest_ring.as_ref());
    let mut progress = output::Progress::new("copying");
    let report = copy(&from_end, &to_end, now, a.force, &mut |d, t| progress.update(d, t)).map_err(|e| {
        if e.kind() == tokencache::ErrorKind::InvalidArgument && e.message().contains("already holds") {
            Failure(format!("{} already holds a cache: pass --force to write over it", a.to))
        } else {
            Failure::from(e)
        }
    })?;
    drop(progress);
    if a.json {
        output::json(&json!({
            "from": {"kind": a.from.kind(), "location": a.from.to_string()},
            "to": {"kind": a.to.kind(), "location": a.to.to_string()},
            "partitions": report.partitions,
            "encrypted": dest_ring.is_some(),
            "skipped": report.skipped.iter().map(|(k, why)| json!({"key": k, "reason": why})).collect::<Vec<_>>(),
            "left_out_entries": report.left_out_entries,
        }))?;
        return Ok(Outcome::Done);
    }
    let mut out = output::stdout();
    let how = match (&source_ring, &dest_ring) {
        (_, Some(r)) => format!(", encrypted with key {}", r.primary().id()),
        (Some(_), None) => ", decrypted".to_owned(),
        (None, None) => String::new(),
    };
    writeln!(
        out,
        "Copied {} from {} to {}{how}.",
        count(report.partitions as usize, "partition", "partitions"),
        a.from,
        a.to
    )?;
    if report.left_out_entries > 0 {
        writeln!(
            out,
            "  {} {} with no partition (no home_account_id) stay behind: a store keeps partitions only",
            paint(output::YELLOW, "note"),
            count(report.left_out_entries as usize, "entry", "entries")
        )?;
    }
    for (key, why) in &report.skipped {
        writeln!(out, "  {} {key}: {why}", paint(output::YELLOW, "skipped"))?;
    }
    Ok(Outcome::Done)
}

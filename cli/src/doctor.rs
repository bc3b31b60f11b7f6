//! `tokencache doctor`: the troubleshooting checklist, each problem with its fix.

use std::io::Write;
use std::time::Duration;

use clap::Args;
use serde_json::json;
use tokencache::diagnose::{Diagnosis, Severity, Thresholds, diagnose_file, diagnose_redis, diagnose_sqlite};
use tokencache::store::{RedisStore, SqliteOptions};

use crate::inspect::count;
use crate::output::{self, BLUE, BOLD, DIM, GREEN, RED, YELLOW, paint};
use crate::target::{Target, clock, redis_options, source_key_ring};
use crate::{Failure, Outcome, TargetArgs};

#[derive(Args)]
pub struct DoctorArgs {
    /// The cache: a file, sqlite:PATH, or a redis:// or rediss:// URL.
    pub target: Target,
    #[command(flatten)]
    pub opts: TargetArgs,
    /// Print JSON instead of the checklist.
    #[arg(long)]
    pub json: bool,
    /// List every entry or key a finding concerns (default: the first 5).
    #[arg(long, short)]
    pub verbose: bool,
    /// A partition with more entries than this is oversized.
    #[arg(long, default_value_t = Thresholds::default().partition_entries, value_name = "N")]
    pub max_partition_entries: usize,
    /// A partition larger than this many bytes is oversized.
    #[arg(long, default_value_t = Thresholds::default().partition_bytes, value_name = "BYTES")]
    pub max_partition_bytes: usize,
    /// A store whose p99 read latency exceeds this many milliseconds is slow.
    #[arg(long, default_value_t = Thresholds::default().slow_read.as_millis() as u64, value_name = "MS")]
    pub slow_ms: u64,
}

pub fn run(a: &DoctorArgs) -> Result<Outcome, Failure> {
    let now = a.opts.now();
    let ring = source_key_ring(&a.target, &a.opts)?;
    let t = Thresholds {
        partition_entries: a.max_partition_entries,
        partition_bytes: a.max_partition_bytes,
        slow_read: Duration::from_millis(a.slow_ms),
        ..Thresholds::default()
    };
    let mut progress = output::Progress::new("checking");
    let mut on_progress = |d, n| progress.update(d, n);
    let d = match &a.target {
        Target::File(p) => diagnose_file(p, &t, now),
        Target::Sqlite(p) => {
            let options = SqliteOptions { clock: clock(&a.opts), ..SqliteOptions::default() };
            diagnose_sqlite(p, options, ring.as_ref(), &t, now, &mut on_progress)
        }
        Target::Redis(url) => {
            let store = RedisStore::open(url, redis_options(&a.opts, &a.opts.prefix)?)?;
            diagnose_redis(&store, ring.as_ref(), &t, now, &mut on_progress)
        }
    };
    drop(progress);
    if a.json {
        print_json(&a.target, &d)?;
    } else {
        print(&a.target, &d, a.verbose)?;
    }
    Ok(if d.is_healthy() { Outcome::Done } else { Outcome::Problems })
}

fn print_json(target: &Target, d: &Diagnosis) -> Result<(), Failure> {
    let v = json!({
        "source": {"kind": target.kind(), "location": target.to_string()},
        "healthy": d.is_healthy(),
        "checks": d.checks.iter().map(|c| json!({
            "check": c.code(),
            "title": c.title(),
            "status": d.findings_of(*c).map(|f| f.severity).max().map_or("ok", Severity::as_str),
        })).collect::<Vec<_>>(),
        "findings": d.findings.iter().map(|f| json!({
            "check": f.check.code(),
            "severity": f.severity.as_str(),
            "message": f.message,
            "subjects": f.subjects,
            "fix": f.fix,
        })).collect::<Vec<_>>(),
    });
    output::json(&v)?;
    Ok(())
}

fn severity_style(s: Severity) -> anstyle::Style {
    match s {
        Severity::Info => BLUE,
        Severity::Warning => YELLOW,
        Severity::Error => RED,
    }
}

fn print(target: &Target, d: &Diagnosis, verbose: bool) -> Result<(), Failure> {
    const SHOWN: usize = 5;
    let mut out = output::stdout();
    writeln!(out, "{} {}", paint(BOLD, "tokencache doctor:"), target)?;
    for c in &d.checks {
        let findings: Vec<_> = d.findings_of(*c).collect();
        let worst = findings.iter().map(|f| f.severity).max();
        let mark = match worst {
            None => paint(GREEN, "ok     "),
            Some(Severity::Info) => paint(BLUE, "note   "),
            Some(Severity::Warning) => paint(YELLOW, "WARNING"),
            Some(Severity::Error) => paint(RED, "ERROR  "),
        };
        writeln!(out, "  {mark}  {}", c.title())?;
        for f in findings {
            writeln!(
                out,
                "           {} {}",
                paint(severity_style(f.severity), &format!("{}:", f.severity.as_str())),
                f.message
            )?;
            let limit = if verbose { f.subjects.len() } else { SHOWN };
            for s in f.subjects.iter().take(limit) {
                writeln!(out, "             - {s}")?;
            }
            if f.subjects.len() > limit {
                writeln!(
                    out,
                    "             {}",
                    paint(DIM, &format!("... and {} more (--verbose lists them)", f.subjects.len() - limit))
                )?;
            }
            writeln!(out, "           {} {}", paint(BOLD, "fix:"), f.fix)?;
        }
    }
    let n = |s: Severity| d.findings.iter().filter(|f| f.severity == s).count();
    let (errors, warnings, notes) = (n(Severity::Error), n(Severity::Warning), n(Severity::Info));
    let summary = if errors + warnings == 0 {
        paint(
            GREEN,
            &format!(
                "No problem found: {} passed, {}.",
                count(d.checks.len(), "check", "checks"),
                count(notes, "note", "notes")
            ),
        )
    } else {
        paint(
            if errors > 0 { RED } else { YELLOW },
            &format!(
                "Found {}, {} and {}.",
                count(errors, "error", "errors"),
                count(warnings, "warning", "warnings"),
                count(notes, "note", "notes")
            ),
        )
    };
    writeln!(out, "{summary}")?;
    Ok(())
}

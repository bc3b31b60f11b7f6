//! Our side of the cross-language compatibility suite (`tests/compat/`): a thin
//! command line over the public [`TokenCache`] API, with no logic of its own.
//!
//! Commands run left to right on one cache:
//!
//! ```text
//! compat_tool load FILE          deserialize FILE (the cache keeps nothing from before)
//!             add EVENTS_FILE    add each {"event": {...}, "now": N} of a JSON array
//!             search CT TARGET QUERY
//!                                print one JSON line: the entries search() returns for
//!                                credential type CT, TARGET (a JSON array of scopes) and
//!                                QUERY (a JSON object), with `now` from --now
//!             update-rt QUERY NEW_SECRET
//!                                update_rt() the refresh token search() finds for QUERY
//!                                (a JSON object; exactly one must match), as msal Python's
//!                                refresh flow does after a refresh returned a new RT
//!             save FILE          write serialize() to FILE
//!             --now N            the clock for the searches that follow (default: wall clock)
//!             --sharing          sharing mode from here on (SharingMode::On)
//!             --sharing-off      msal Python's behaviour from here on (SharingMode::Off; the
//!                                default is SharingMode::Auto)
//! ```
//!
//! Run by `tests/compat/driver.py`; by hand:
//! `cargo run -p tokencache --example compat_tool -- load a.json add ev.json save b.json`.

use std::process::ExitCode;

use tokencache::json::{self, Value};
use tokencache::{CredentialType, SharingMode, TokenCache};

fn run(args: &[String]) -> Result<(), String> {
    let cache = TokenCache::new();
    let mut now: Option<i64> = None;
    let mut it = args.iter();
    let mut next = |what: &str| it.next().cloned().ok_or_else(|| format!("missing {what}"));
    loop {
        let Ok(cmd) = next("command") else { return Ok(()) };
        match cmd.as_str() {
            "load" => {
                let path = next("FILE")?;
                let text = std::fs::read_to_string(&path).map_err(|e| format!("read {path}: {e}"))?;
                cache.deserialize(&text).map_err(|e| format!("deserialize {path}: {e}"))?;
            }
            "add" => {
                let path = next("EVENTS_FILE")?;
                let text = std::fs::read_to_string(&path).map_err(|e| format!("read {path}: {e}"))?;
                let Value::Array(items) = json::parse(&text).map_err(|e| format!("{path}: {e}"))? else {
                    return Err(format!("{path}: expected a JSON array"));
                };
                for item in items {
                    let event = item.get("event").and_then(Value::as_object).ok_or("an item without \"event\"")?;
                    let at = item.get("now").and_then(Value::to_python_int);
                    cache.add(event, at).map_err(|e| format!("add: {e}"))?;
                }
            }
            "search" => {
                let ct: CredentialType = next("CT")?.parse().map_err(|e| format!("credential type: {e}"))?;
                let target = json::parse(&next("TARGET")?).map_err(|e| format!("TARGET: {e}"))?;
                let query = json::parse(&next("QUERY")?).map_err(|e| format!("QUERY: {e}"))?;
                let scopes: Vec<&str> = match &target {
                    Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                    _ => return Err("TARGET is a JSON array of scopes".into()),
                };
                let found = cache.search(ct, &scopes, query.as_object(), now);
                let entries: Vec<String> = found.iter().map(|e| e.to_json()).collect();
                println!("[{}]", entries.join(","));
            }
            "update-rt" => {
                let query = json::parse(&next("QUERY")?).map_err(|e| format!("QUERY: {e}"))?;
                let secret = next("NEW_SECRET")?;
                let found = cache.search(CredentialType::RefreshToken, &[], query.as_object(), now);
                let [rt] = found.as_slice() else {
                    return Err(format!("update-rt: {} refresh tokens match the query, not one", found.len()));
                };
                cache.update_rt(rt, &secret, now).map_err(|e| format!("update_rt: {e}"))?;
            }
            "save" => {
                let path = next("FILE")?;
                std::fs::write(&path, cache.serialize()).map_err(|e| format!("write {path}: {e}"))?;
            }
            "--sharing" => cache.set_sharing_mode(SharingMode::On),
            "--sharing-off" => cache.set_sharing_mode(SharingMode::Off),
            "--now" => now = Some(next("N")?.parse().map_err(|e| format!("--now: {e}"))?),
            other => return Err(format!("unknown command {other:?}")),
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("compat_tool: {e}");
            ExitCode::FAILURE
        }
    }
}

//! Differential test against real msal: replays the op sequences that
//! `tests/differential/msal_oracle.py` recorded from msal's `SerializableTokenCache`
//! and compares every output. `make test` generates the file and points
//! `TOKENCACHE_DIFF_OPS` at it; without it this test says so and does nothing.

use tokencache::json::{self, Map, Value};
use tokencache::{CredentialType, Entry, SharingMode, TokenCache};

fn entry_of(v: &Value) -> Entry {
    Entry::from_map(v.as_object().expect("entry object")).expect("valid entry")
}

fn ct_of(v: Option<&Value>) -> CredentialType {
    v.and_then(Value::as_str).expect("credential_type").parse().expect("known type")
}

/// Replays one sequence; returns a description of the first mismatch.
fn replay(ops: &[Value]) -> Result<usize, String> {
    // msal's behaviour whatever the sequence loads (it mixes cloud aliases and other
    // SDKs' key styles, which SharingMode::Auto would take for a shared file).
    let cache = TokenCache::new();
    cache.set_sharing_mode(SharingMode::Off);
    for (i, op) in ops.iter().enumerate() {
        let kind = op.get("op").and_then(Value::as_str).unwrap_or("?");
        let now = op.get("now").and_then(Value::to_python_int);
        let fail = |what: String| Err(format!("op #{i} ({kind}): {what}"));
        match kind {
            "add" => {
                let event = op.get("event").and_then(Value::as_object).expect("event");
                let before = cache.serialize_compact();
                let res = cache.add(event, now);
                match (op.get("error"), res) {
                    (None, Ok(())) => {}
                    (None, Err(e)) => {
                        return fail(format!("msal accepted the event, we raised {e}"));
                    }
                    (Some(_), Ok(())) => return fail("msal raised, we accepted the event".into()),
                    (Some(_), Err(_)) => {
                        if cache.serialize_compact() != before {
                            return fail("a rejected event changed the cache".into());
                        }
                    }
                }
            }
            "search" => {
                let ct = ct_of(op.get("credential_type"));
                let target: Vec<&str> = match op.get("target") {
                    Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
                    _ => Vec::new(),
                };
                let query = op.get("query").and_then(Value::as_object);
                let got: Vec<Value> =
                    cache.search(ct, &target, query, now).iter().map(|e| Value::Object(e.to_map())).collect();
                let want = match op.get("expect") {
                    Some(Value::Array(a)) => a.clone(),
                    _ => Vec::new(),
                };
                if got != want {
                    return fail(format!("search results differ\n want {want:?}\n got  {got:?}"));
                }
            }
            "remove_rt" | "remove_at" | "remove_idt" | "remove_account" => {
                let e = entry_of(op.get("entry").expect("entry"));
                let res = match kind {
                    "remove_rt" => cache.remove_rt(&e),
                    "remove_at" => cache.remove_at(&e),
                    "remove_idt" => cache.remove_idt(&e),
                    _ => cache.remove_account(&e),
                };
                if let Err(e) = res {
                    return fail(format!("raised {e}"));
                }
            }
            "update_rt" => {
                let e = entry_of(op.get("entry").expect("entry"));
                let new_rt = op.get("new_rt").and_then(Value::as_str).expect("new_rt");
                if let Err(e) = cache.update_rt(&e, new_rt, now) {
                    return fail(format!("raised {e}"));
                }
            }
            "modify" => {
                let ct = ct_of(op.get("credential_type"));
                let e = entry_of(op.get("entry").expect("entry"));
                let new = op.get("new").and_then(Value::as_object);
                if let Err(e) = cache.modify(ct, &e, new) {
                    return fail(format!("raised {e}"));
                }
            }
            "app_metadata" => {
                let env = op.get("environment").and_then(Value::as_str).unwrap_or("");
                let cid = op.get("client_id").and_then(Value::as_str).unwrap_or("");
                let got = cache.get_app_metadata(env, cid).map(|e| Value::Object(e.to_map())).unwrap_or(Value::Null);
                let want = op.get("expect").cloned().unwrap_or(Value::Null);
                if got != want {
                    return fail(format!("want {want:?}, got {got:?}"));
                }
            }
            "has_state_changed" => {
                let want = op.get("expect") == Some(&Value::Bool(true));
                if cache.has_state_changed() != want {
                    return fail(format!("want {want}"));
                }
            }
            "serialize" => {
                let want = op.get("expect").and_then(Value::as_str).expect("expect");
                let got = cache.serialize();
                if got != want {
                    return fail(format!("serialize differs\n--- want\n{want}\n--- got\n{got}"));
                }
            }
            "deserialize" => {
                let state = op.get("state").and_then(Value::as_str).expect("state");
                if let Err(e) = cache.deserialize(state) {
                    return fail(format!("raised {e}"));
                }
            }
            other => return fail(format!("unknown op {other}")),
        }
    }
    Ok(ops.len())
}

#[test]
fn replays_msal_recordings() {
    let Ok(path) = std::env::var("TOKENCACHE_DIFF_OPS") else {
        eprintln!("TOKENCACHE_DIFF_OPS is not set: the differential test runs under `make test`");
        return;
    };
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let (mut sequences, mut ops, mut failures) = (0, 0, Vec::new());
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let seq = json::parse(line).expect("a JSON line");
        let seed = seq.get("seed").and_then(Value::to_python_int).unwrap_or(-1);
        let Some(Value::Array(list)) = seq.get("ops") else { panic!("seed {seed}: no ops") };
        sequences += 1;
        match replay(list) {
            Ok(n) => ops += n,
            Err(msg) => failures.push(format!("seed {seed}: {msg}")),
        }
    }
    let min: usize = std::env::var("TOKENCACHE_DIFF_MIN").ok().and_then(|s| s.parse().ok()).unwrap_or(300);
    println!("differential: {sequences} sequences, {ops} ops replayed against msal's recordings");
    assert!(
        failures.is_empty(),
        "{} of {sequences} sequences differ from msal:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(sequences >= min, "only {sequences} sequences (want at least {min})");
    let _ = Map::new();
}

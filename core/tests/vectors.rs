//! The shared vectors: MSAL Python's files reproduced byte for byte from their
//! events, and every SDK's file loaded and written back unchanged.

mod common;

use common::{read, vector_files};
use tokencache::json::{self, Value};
use tokencache::{ErrorKind, TokenCache};

/// Files in the folder that are not unified caches, and why.
const NOT_CACHES: &[(&str, ErrorKind)] = &[
    ("dotnet__cachecompat_dotnet_dictionary.bin", ErrorKind::NotACache),
    ("msaljs__cacheStore.json", ErrorKind::NotACache),
];

fn is_cache_file(name: &str) -> bool {
    (name.ends_with(".json") || name.ends_with(".bin"))
        && !name.ends_with(".events.json")
        && name != "manifest.json"
        && !NOT_CACHES.iter().any(|(n, _)| *n == name)
}

#[test]
fn msal_python_events_replay_byte_for_byte() {
    let mut replayed = 0;
    for name in vector_files().iter().filter(|n| n.ends_with(".events.json")) {
        let events = json::parse(&read(name)).unwrap();
        let cache = TokenCache::new();
        for item in match &events {
            Value::Array(a) => a,
            _ => panic!("{name}: not an array"),
        } {
            let now = item.get("now").and_then(Value::to_python_int);
            let event = item.get("event").and_then(Value::as_object).expect("event object");
            cache.add(event, now).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let want = read(&name.replace(".events.json", ".json"));
        let got = cache.serialize();
        assert!(got == want, "{name}: serialize() differs\n--- want\n{want}\n--- got\n{got}");
        replayed += 1;
    }
    assert_eq!(replayed, 5, "expected the five msal_python vectors");
}

#[test]
fn every_sdk_file_round_trips_unchanged() {
    let mut checked = 0;
    for name in vector_files().iter().filter(|n| is_cache_file(n)) {
        let text = read(name);
        let cache = TokenCache::new();
        cache.deserialize(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let out = cache.serialize();
        // Order-sensitive equality: sections, keys and fields keep their order.
        let before = json::parse(&text).unwrap();
        let after = json::parse(&out).unwrap();
        assert_eq!(before, after, "{name}: content changed");
        // An independent parser agrees where the input is strict JSON.
        let stripped = text.trim_start_matches('\u{feff}');
        if let Ok(theirs) = serde_json::from_str::<serde_json::Value>(stripped) {
            let ours: serde_json::Value = serde_json::from_str(&out).unwrap();
            assert_eq!(theirs, ours, "{name}: serde_json sees a difference");
        }
        // Writing again is stable, and the compact form says the same.
        let again = TokenCache::new();
        again.deserialize(&out).unwrap();
        assert_eq!(again.serialize(), out, "{name}: second round trip differs");
        assert_eq!(json::parse(&cache.serialize_compact()).unwrap(), after, "{name}: compact differs");
        checked += 1;
    }
    assert!(checked >= 29, "only {checked} cache files found");
}

#[test]
fn msal_python_files_round_trip_byte_for_byte() {
    for name in vector_files().iter().filter(|n| n.starts_with("msal_python_") && !n.ends_with(".events.json")) {
        let text = read(name);
        let cache = TokenCache::new();
        cache.deserialize(&text).unwrap();
        assert_eq!(cache.serialize(), text, "{name}");
    }
}

#[test]
fn non_caches_are_rejected_and_change_nothing() {
    let cache = TokenCache::new();
    cache.deserialize(&read("msal_python_combined.json")).unwrap();
    let before = cache.serialize();
    cache.add_json(r#"{"client_id": "x"}"#, Some(1)).unwrap();
    let before_changed = cache.serialize();
    cache.add_json(r#"{"client_id": "y"}"#, Some(1)).unwrap();
    assert!(cache.has_state_changed());
    let mut cases: Vec<(String, String, ErrorKind)> =
        NOT_CACHES.iter().map(|(n, k)| (n.to_string(), read(n), *k)).collect();
    for (label, text, kind) in [
        ("array", "[]", ErrorKind::NotACache),
        ("null", "null", ErrorKind::NotACache),
        ("number", "123", ErrorKind::NotACache),
        ("string", "\"str\"", ErrorKind::NotACache),
        ("section not an object", "{\"AccessToken\": []}", ErrorKind::NotACache),
        ("whitespace", "   ", ErrorKind::InvalidJson),
        ("garbage", "{bad json", ErrorKind::InvalidJson),
        ("extra data", "{}{}", ErrorKind::InvalidJson),
    ] {
        cases.push((label.into(), text.into(), kind));
    }
    let full = read("msal_python_combined.json");
    for cut in [1, full.len() / 3, full.len() / 2, full.len() - 1] {
        cases.push((format!("truncated at {cut}"), full[..cut].to_string(), ErrorKind::InvalidJson));
    }
    for (label, text, kind) in cases {
        let err = cache.deserialize(&text).expect_err(&label);
        assert_eq!(err.kind(), kind, "{label}: {err}");
        assert!(!err.message().is_empty());
        if kind == ErrorKind::InvalidJson {
            assert!(err.position().is_some(), "{label}: no line/column in {err}");
            assert!(err.message().contains("line"), "{label}: {err}");
        }
        assert!(cache.has_state_changed(), "{label}: a failed load reset the flag");
    }
    let after = cache.serialize();
    assert_ne!(after, before);
    assert!(after.len() > before_changed.len(), "the cache lost state on a failed load");
}

#[test]
fn dictionary_format_error_says_what_it_is() {
    let err = TokenCache::new().deserialize(&read("dotnet__cachecompat_dotnet_dictionary.bin")).unwrap_err();
    assert!(err.message().contains("MSAL.NET 2.x"), "{err}");
}

#[test]
fn syntax_error_position_is_exact() {
    let err = TokenCache::new().deserialize("{\n    \"AccessToken\": {\n        \"k\": tru\n").unwrap_err();
    assert_eq!(err.position(), Some((3, 14)), "{err}");
}

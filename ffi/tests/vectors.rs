//! The shared vectors through the C ABI: msal Python's files rebuilt byte for byte from
//! their events, every SDK's file loaded and written back, and the two files that are
//! not caches rejected with `TC_RESULT_NOT_A_CACHE`.

mod common;

use std::fs;

use common::*;
use tokencache::*;
use tokencache_core::json::{self, Value};

const NOT_CACHES: [&str; 2] = ["dotnet__cachecompat_dotnet_dictionary.bin", "msaljs__cacheStore.json"];

fn cache_files() -> Vec<String> {
    let mut names: Vec<String> =
        fs::read_dir(vectors_dir()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    names
        .into_iter()
        .filter(|n| (n.ends_with(".json") || n.ends_with(".bin")) && !n.ends_with(".events.json"))
        .filter(|n| n != "manifest.json")
        .collect()
}

#[test]
#[cfg_attr(miri, ignore = "parsing every vector under Miri takes many minutes; run natively and by the C suites")]
fn every_cache_file_round_trips_through_the_abi() {
    let mut loaded = 0;
    for name in cache_files() {
        let text = fs::read(vectors_dir().join(&name)).unwrap();
        let cache = Cache::new();
        let r = cache.deserialize(&text);
        if NOT_CACHES.contains(&name.as_str()) {
            assert_eq!(r, tc_result::NotACache, "{name}: {}", last_error());
            continue;
        }
        assert_eq!(r, tc_result::Ok, "{name}: {}", last_error());
        let out = cache.serialize();
        let text = String::from_utf8(text).unwrap();
        assert_eq!(json::parse(&out).unwrap(), json::parse(&text).unwrap(), "{name}: content changed");
        if name.starts_with("msal_python_") {
            assert_eq!(out, text, "{name}: not byte for byte");
        }
        let again = Cache::new();
        assert_eq!(again.deserialize(out.as_bytes()), tc_result::Ok);
        assert_eq!(again.serialize(), out, "{name}: second round trip differs");
        loaded += 1;
    }
    assert!(loaded >= 29, "only {loaded} cache files");
}

#[test]
#[cfg_attr(miri, ignore = "parsing every vector under Miri takes many minutes; run natively and by the C suites")]
fn msal_python_events_replay_byte_for_byte() {
    let mut replayed = 0;
    for name in fs::read_dir(vectors_dir()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()) {
        let Some(base) = name.strip_suffix(".events.json") else {
            continue;
        };
        let events = json::parse(&fs::read_to_string(vectors_dir().join(&name)).unwrap()).unwrap();
        let Value::Array(items) = events else { panic!("{name}: not an array") };
        let cache = Cache::new();
        for item in &items {
            let now = item.get("now").and_then(Value::to_python_int).unwrap();
            let event = json::to_compact_string(item.get("event").unwrap());
            assert_eq!(cache.add(&event, now), tc_result::Ok, "{name}: {}", last_error());
        }
        let want = fs::read_to_string(vectors_dir().join(format!("{base}.json"))).unwrap();
        assert_eq!(cache.serialize(), want, "{name}");
        replayed += 1;
    }
    assert_eq!(replayed, 5);
}

//! Arbitrary bytes into `TokenCache::deserialize`.
//!
//! Never panics; a failed load leaves the cache as it was; a successful load holds
//! exactly what `json.loads` makes of the text (so `serialize()` is
//! `json.dumps(indent=4)` of it), and our own output — indented or compact — loads
//! back to the same text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokencache::TokenCache;
use tokencache::json::{self, Value};

const KNOWN_SECTIONS: [&str; 5] = ["AccessToken", "RefreshToken", "IdToken", "Account", "AppMetadata"];

/// Whether a document `json::parse` accepted is one the cache must load too: an
/// object whose known sections are objects and that is not shaped like
/// msal-common's key/value store (the one documented refusal).
fn must_load(v: &Value) -> bool {
    let Value::Object(doc) = v else { return false };
    let has_known = doc.iter().any(|(k, _)| KNOWN_SECTIONS.contains(&k));
    let msal_js = !has_known
        && doc.iter().any(|(_, v)| {
            v.as_object().is_some_and(|f| f.contains_key("homeAccountId") || f.contains_key("credentialType"))
        });
    doc.iter().all(|(k, v)| !KNOWN_SECTIONS.contains(&k) || v.as_object().is_some()) && !msal_js
}

fn preloaded() -> TokenCache {
    let cache = TokenCache::new();
    cache
        .add_json(
            r#"{"client_id": "app", "scope": ["s1", "s2"],
                "token_endpoint": "https://login.microsoftonline.com/contoso/oauth2/v2.0/token",
                "grant_type": "client_credentials",
                "response": {"access_token": "at-\u00e9-secret", "expires_in": 3600}}"#,
            Some(1_700_000_000),
        )
        .expect("a valid event");
    cache
}

fn check(text: &str) {
    let cache = preloaded();
    let before = cache.serialize();
    let len_before = cache.len();
    match cache.deserialize(text) {
        Err(e) => {
            let _ = format!("{e} {e:?} {:?}", e.position());
            assert_eq!(cache.serialize(), before, "a failed load changed the cache");
            assert_eq!(cache.len(), len_before);
            assert!(!cache.has_state_changed());
            if let Ok(v) = json::parse(text) {
                assert!(!must_load(&v), "refused a valid cache: {e}");
            }
        }
        Ok(()) => {
            assert!(!cache.has_state_changed());
            let out = cache.serialize();
            let reparsed = json::parse(&out).expect("serialize() wrote invalid JSON");
            if text.is_empty() {
                assert_eq!(out, "{}");
            } else {
                let v = json::parse(text).expect("deserialize accepted what json::parse rejects");
                assert_eq!(out, json::to_python_string(&v), "loaded something else than json.loads would");
            }
            let again = TokenCache::new();
            again.deserialize(&out).expect("our own output does not load");
            assert_eq!(again.serialize(), out, "deserialize(serialize(x)) is not a fixed point");

            let compact = cache.serialize_compact();
            assert_eq!(json::parse(&compact).expect("compact output is not JSON"), reparsed);
            let third = TokenCache::new();
            third.deserialize(&compact).expect("our compact output does not load");
            assert_eq!(third.serialize(), out);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    match std::str::from_utf8(data) {
        Ok(text) => check(text),
        Err(_) => check(&String::from_utf8_lossy(data)),
    }
});

//! Token values never reach Debug output or error messages.

use tokencache::json::{Map, Value};
use tokencache::{CredentialType, TokenCache};

const SECRETS: [&str; 4] = ["AT-SECRET-1234", "RT-SECRET-5678", "IDT-SECRET-9012", "CLIENT-SECRET-3456"];

fn event(id_token: &str) -> Map {
    let text = format!(
        r#"{{"client_id": "c", "scope": ["s"], "token_endpoint": "https://login.example.com/t/token",
        "data": {{"client_secret": "{}", "password": "pw-{}"}},
        "response": {{"access_token": "{}", "refresh_token": "{}", "id_token": "{}",
                      "client_info": "eyJ1aWQiOiJ1IiwidXRpZCI6InQifQ"}}}}"#,
        SECRETS[3], SECRETS[3], SECRETS[0], SECRETS[1], id_token
    );
    match tokencache::json::parse(&text).unwrap() {
        Value::Object(m) => m,
        _ => unreachable!(),
    }
}

fn assert_clean(what: &str, text: &str) {
    for s in SECRETS {
        assert!(!text.contains(s), "{what} leaks {s}: {text}");
    }
}

#[test]
fn debug_output_and_errors_never_show_tokens() {
    let cache = TokenCache::new();
    // A bad id_token: the error names the field, not the value.
    let err = cache.add(&event(&format!("{}-not-a-jwt", SECRETS[2])), Some(1)).unwrap_err();
    assert_clean("error Display", &err.to_string());
    assert_clean("error Debug", &format!("{err:?}"));
    assert!(err.to_string().contains("id_token"), "{err}");

    let jwt = format!("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.{}", SECRETS[2]);
    cache.add(&event(&jwt), Some(1)).unwrap();
    assert_clean("cache Debug", &format!("{cache:?}"));
    for ct in CredentialType::ALL {
        for e in cache.search(ct, &[], None, Some(1)) {
            assert_clean("entry Debug", &format!("{e:?}"));
            assert_clean("entry Debug (pretty)", &format!("{e:#?}"));
        }
    }
    // The secrets are there, just not printed; data secrets are never stored.
    let all = cache.serialize();
    assert!(all.contains(SECRETS[0]) && all.contains(SECRETS[1]) && all.contains(SECRETS[2]));
    assert!(!all.contains(SECRETS[3]), "client secret or password stored");

    // Errors about entries and malformed caches carry positions, not content.
    let err = cache
        .deserialize(&format!("{{\"AccessToken\": {{\"k\": {{\"secret\": \"{}\" x}}}}}}", SECRETS[0]))
        .unwrap_err();
    assert_clean("parse error", &err.to_string());
}

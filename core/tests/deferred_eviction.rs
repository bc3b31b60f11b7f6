//! `search_keeping_expired` + `remove_expired_access_tokens`: msal's generator
//! semantics, where expired access tokens go only once the caller read every result.

use tokencache::{CredentialType, Map, TokenCache, Value};

fn add_at(cache: &TokenCache, tenant: &str, expires_in: i64, now: i64) {
    let event = format!(
        r#"{{"client_id": "app", "scope": ["s"],
            "token_endpoint": "https://login.example.com/{tenant}/oauth2/v2.0/token",
            "response": {{"access_token": "at-{tenant}", "expires_in": {expires_in}}}}}"#
    );
    cache.add_json(&event, Some(now)).unwrap();
}

fn query(tenant: &str) -> Map {
    let mut q = Map::new();
    q.insert("client_id", Value::from("app"));
    q.insert("environment", Value::from("login.example.com"));
    q.insert("realm", Value::from(tenant));
    q.insert("home_account_id", Value::Null);
    q
}

#[test]
fn keeping_expired_leaves_them_until_removed() {
    let cache = TokenCache::new();
    add_at(&cache, "t1", 100, 1_000);
    add_at(&cache, "t2", 10_000, 1_000);
    cache.serialize();
    let now = Some(2_000);
    let hits = cache.search_keeping_expired(CredentialType::AccessToken, &["s"], Some(&query("t2")), now);
    assert_eq!(hits.len(), 1);
    assert_eq!(cache.len(), 3, "two access tokens and the app metadata");
    assert!(!cache.has_state_changed(), "nothing removed yet");
    assert_eq!(cache.remove_expired_access_tokens(now), 1);
    assert!(cache.has_state_changed());
    assert_eq!(cache.remove_expired_access_tokens(now), 0);
    let all = cache.search(CredentialType::AccessToken, &[], None, now);
    assert_eq!(all.len(), 1);
}

#[test]
fn removing_when_nothing_expired_changes_nothing() {
    let cache = TokenCache::new();
    add_at(&cache, "t1", 100, 1_000);
    cache.serialize();
    assert_eq!(cache.remove_expired_access_tokens(Some(1_050)), 0);
    assert!(!cache.has_state_changed());
}

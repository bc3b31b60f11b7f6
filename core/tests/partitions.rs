//! Partitions (per user, per app+tenant, per OBO assertion), partition blobs,
//! suggested expiry, and bounded memory with LRU eviction and expiration.

use base64::Engine;
use tokencache::json::{Map, Value};
use tokencache::{CacheLimits, CredentialType, TokenCache};

const ENV: &str = "login.microsoftonline.com";
const NOW: i64 = 1_700_000_000;
const GRAPH: &str = "https://graph.microsoft.com/.default";

fn b64(s: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

fn map(v: serde_json::Value) -> Map {
    match tokencache::json::parse(&v.to_string()).unwrap() {
        Value::Object(m) => m,
        _ => unreachable!(),
    }
}

fn app_event(tenant: &str, secret: &str, expires_in: i64) -> Map {
    map(serde_json::json!({
        "client_id": "daemon", "scope": [GRAPH], "grant_type": "client_credentials",
        "token_endpoint": format!("https://{ENV}/{tenant}/oauth2/v2.0/token"), "environment": ENV,
        "response": {"access_token": secret, "expires_in": expires_in}
    }))
}

fn user_event(uid: &str, with_rt: bool) -> Map {
    let claims = format!(r#"{{"oid":"{uid}","sub":"s-{uid}","preferred_username":"{uid}@x.example"}}"#);
    let mut response = serde_json::json!({
        "access_token": format!("at-{uid}"), "expires_in": 3600,
        "id_token": format!("h.{}.s", b64(&claims)),
        "client_info": b64(&format!(r#"{{"uid":"{uid}","utid":"tid"}}"#)),
    });
    if with_rt {
        response["refresh_token"] = serde_json::json!(format!("rt-{uid}"));
    }
    map(serde_json::json!({
        "client_id": "web", "scope": ["User.Read"], "grant_type": "authorization_code",
        "token_endpoint": format!("https://{ENV}/common/oauth2/v2.0/token"), "environment": ENV,
        "response": response,
    }))
}

#[test]
fn partition_keys_follow_msal_net() {
    let cache = TokenCache::new();
    cache.add(&app_event("t1", "a", 3600), Some(NOW)).unwrap();
    cache.add(&user_event("u1", true), Some(NOW)).unwrap();
    let keys = cache.partition_keys();
    assert_eq!(keys, ["daemon_t1_AppTokenCache", "u1.tid"]);
    // OBO tokens belong to the assertion hash, the user's account to the user.
    let obo = r#"{"AccessToken": {"k": {"credential_type": "AccessToken", "secret": "s",
        "home_account_id": "u9.tid", "environment": "login.microsoftonline.com", "client_id": "api",
        "realm": "tid", "target": "x", "expires_on": "1700003600", "user_assertion_hash": "HASH"}},
        "Account": {"a": {"home_account_id": "u9.tid", "environment": "e", "realm": "tid",
        "authority_type": "MSSTS"}}}"#;
    cache.deserialize(obo).unwrap();
    assert_eq!(cache.partition_keys(), ["HASH", "u9.tid"]);
}

#[test]
fn partition_blobs_touch_only_their_partition() {
    let cache = TokenCache::new();
    cache.add(&user_event("u1", true), Some(NOW)).unwrap();
    cache.add(&user_event("u2", true), Some(NOW)).unwrap();
    cache.add(&app_event("t1", "a", 3600), Some(NOW)).unwrap();
    let blob = cache.serialize_partition("u1.tid");
    assert!(blob.contains("at-u1") && blob.contains("rt-u1"));
    assert!(!blob.contains("u2") && !blob.contains("daemon"), "{blob}");
    assert!(blob.contains("appmetadata-login.microsoftonline.com-web"), "app metadata travels with the user");

    // Another cache (another server) loads the blob: it gets u1 and nothing else.
    let other = TokenCache::new();
    other.add(&user_event("u2", false), Some(NOW)).unwrap();
    let u2_before = other.serialize_partition("u2.tid");
    other.deserialize_partition("u1.tid", &blob).unwrap();
    assert_eq!(other.serialize_partition("u1.tid"), blob);
    assert_eq!(other.serialize_partition("u2.tid"), u2_before, "u2 untouched");
    assert!(!other.has_state_changed());

    // Loading a newer blob replaces the partition: u1's RT is gone from the new blob.
    let fresh = TokenCache::new();
    fresh.add(&user_event("u1", false), Some(NOW + 5)).unwrap();
    other.deserialize_partition("u1.tid", &fresh.serialize_partition("u1.tid")).unwrap();
    assert!(!other.serialize_partition("u1.tid").contains("rt-u1"));
    assert_eq!(other.search(CredentialType::RefreshToken, &[], None, Some(NOW)).len(), 0);

    // A blob holding someone else's entries is refused and changes nothing.
    let before = other.serialize();
    let err = other.deserialize_partition("u2.tid", &blob).unwrap_err();
    assert_eq!(err.kind(), tokencache::ErrorKind::InvalidArgument);
    assert_eq!(other.serialize(), before);
    assert_eq!(other.remove_partition("u1.tid"), 3);
    assert!(other.serialize_partition("u1.tid").len() < 3);
}

#[test]
fn the_partition_index_built_on_first_use_follows_every_change_after() {
    // Built at the first partition call, then kept up to date by adds, removals and the
    // renumbering of a section that removals make mostly empty (1,024 dead slots): at
    // each step it must say what a cache that builds it afresh from the same entries
    // says.
    const USERS: usize = 1300;
    let cache = TokenCache::new();
    for u in 0..USERS {
        cache.add(&user_event(&format!("u{u}"), u % 2 == 0), Some(NOW)).unwrap();
    }
    let agree = |cache: &TokenCache| {
        let fresh = TokenCache::new();
        fresh.deserialize(&cache.serialize()).unwrap();
        for u in (0..USERS + 50).step_by(7) {
            let key = format!("u{u}.tid");
            assert_eq!(cache.serialize_partition(&key), fresh.serialize_partition(&key), "{key}");
        }
    };
    assert_eq!(cache.serialize_partition("u3.tid").matches("at-u3").count(), 1, "built here");
    agree(&cache);
    for u in 0..1100 {
        assert!(cache.remove_partition(&format!("u{u}.tid")) >= 3, "u{u}");
    }
    agree(&cache);
    for u in USERS..USERS + 50 {
        cache.add(&user_event(&format!("u{u}"), true), Some(NOW)).unwrap();
    }
    cache.add(&user_event("u1200", false), Some(NOW + 1)).unwrap(); // replaced in place
    agree(&cache);
    assert_eq!(cache.partition_keys().len(), USERS + 50 - 1100);
}

#[test]
fn suggested_expiry_is_latest_at_without_rt() {
    let cache = TokenCache::new();
    cache.add(&app_event("t1", "a", 3600), Some(NOW)).unwrap();
    cache
        .add(
            &map(serde_json::json!({
        "client_id": "daemon", "scope": ["other"], "environment": ENV,
        "token_endpoint": format!("https://{ENV}/t1/oauth2/v2.0/token"),
        "response": {"access_token": "b", "expires_in": 7200}})),
            Some(NOW),
        )
        .unwrap();
    assert_eq!(cache.suggested_expiry("daemon_t1_AppTokenCache", Some(NOW)), Some(NOW + 7200));
    assert_eq!(cache.suggested_expiry("daemon_t1_AppTokenCache", Some(NOW + 7200)), None, "never in the past");
    cache.add(&user_event("u1", true), Some(NOW)).unwrap();
    assert_eq!(cache.suggested_expiry("u1.tid", Some(NOW)), None, "an RT keeps the partition useful");
    cache.add(&user_event("u2", false), Some(NOW)).unwrap();
    assert_eq!(cache.suggested_expiry("u2.tid", Some(NOW)), Some(NOW + 3600));
    assert_eq!(cache.suggested_expiry("nobody", Some(NOW)), None);
}

#[test]
fn entry_limit_evicts_least_recently_used_partitions() {
    let cache = TokenCache::with_limits(CacheLimits { max_entries: Some(12), ..Default::default() });
    // Each tenant partition holds one AT; app metadata (shared) is one more entry.
    for t in 0..8 {
        cache.add(&app_event(&format!("t{t}"), "x", 3600), Some(NOW + t)).unwrap();
    }
    // Use t0 so that it is the most recently used.
    let q = map(serde_json::json!({"client_id": "daemon", "environment": ENV, "realm": "t0", "home_account_id": null}));
    assert_eq!(cache.search(CredentialType::AccessToken, &[GRAPH], Some(&q), Some(NOW + 10)).len(), 1);
    for t in 8..16 {
        cache.add(&app_event(&format!("t{t}"), "x", 3600), Some(NOW + 10 + t)).unwrap();
    }
    assert!(cache.len() <= 12, "len {}", cache.len());
    let keys = cache.partition_keys();
    assert!(keys.contains(&"daemon_t0_AppTokenCache".to_string()), "recently used t0 kept: {keys:?}");
    assert!(keys.contains(&"daemon_t15_AppTokenCache".to_string()));
    assert!(!keys.contains(&"daemon_t1_AppTokenCache".to_string()), "least recently used t1 evicted");
    let stats = cache.stats();
    // 16 partitions + 1 shared app metadata entry must fit in 12 entries.
    assert_eq!(stats.evictions.capacity, 16 - 11);
    assert_eq!(stats.entries, cache.len());
}

#[test]
fn byte_limit_bounds_memory() {
    let cache = TokenCache::with_limits(CacheLimits { max_bytes: Some(64 * 1024), ..Default::default() });
    let token = "t".repeat(1500);
    for t in 0..500 {
        cache.add(&app_event(&format!("tenant-{t}"), &token, 3600), Some(NOW)).unwrap();
    }
    let stats = cache.stats();
    assert!(stats.bytes <= 64 * 1024, "{} bytes", stats.bytes);
    assert!(stats.evictions.capacity > 400);
    assert!(cache.len() > 10, "still holds the recent tenants");
}

#[test]
fn sliding_and_absolute_expiration() {
    let sliding = TokenCache::with_limits(CacheLimits { sliding_expiration_secs: Some(100), ..Default::default() });
    sliding.add(&app_event("busy", "x", 36000), Some(NOW)).unwrap();
    sliding.add(&app_event("idle", "y", 36000), Some(NOW)).unwrap();
    let busy = map(serde_json::json!({"client_id": "daemon", "realm": "busy"}));
    for step in 1..=5 {
        assert_eq!(sliding.search(CredentialType::AccessToken, &[], Some(&busy), Some(NOW + 60 * step)).len(), 1);
    }
    assert_eq!(sliding.partition_keys(), ["daemon_busy_AppTokenCache"], "idle partition slid out");
    assert_eq!(sliding.stats().evictions.sliding, 1);

    let absolute = TokenCache::with_limits(CacheLimits { absolute_expiration_secs: Some(100), ..Default::default() });
    absolute.add(&app_event("busy", "x", 36000), Some(NOW)).unwrap();
    let mut served = 0;
    for step in 1..=5 {
        served += absolute.search(CredentialType::AccessToken, &[], Some(&busy), Some(NOW + 60 * step)).len();
    }
    assert_eq!(served, 1, "served at +60s only: absolute expiry ignores use");
    assert_eq!(absolute.stats().evictions.absolute, 1);
    assert_eq!(absolute.purge_expired(Some(NOW + 1000)), 0);
}

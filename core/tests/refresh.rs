//! Proactive refresh: which access tokens are due, with an injected clock.

use base64::Engine;
use tokencache::{CredentialType, TokenCache};

const NOW: i64 = 1_700_000_000;

fn b64(s: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

fn app_event(tenant: &str, refresh_in: Option<i64>) -> String {
    let refresh = refresh_in.map(|r| format!(r#", "refresh_in": {r}"#)).unwrap_or_default();
    format!(
        r#"{{"client_id": "daemon", "scope": ["s"], "environment": "login.microsoftonline.com",
        "token_endpoint": "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token",
        "response": {{"access_token": "at-{tenant}", "expires_in": 3600{refresh}}}}}"#
    )
}

fn user_event(client: &str, uid: &str, foci: bool, with_rt: bool) -> String {
    let claims = format!(r#"{{"oid":"{uid}","sub":"s-{uid}","preferred_username":"{uid}@x.example"}}"#);
    let rt = if with_rt { format!(r#", "refresh_token": "rt-{client}-{uid}""#) } else { String::new() };
    let foci = if foci { r#", "foci": "1""# } else { "" };
    format!(
        r#"{{"client_id": "{client}", "scope": ["User.Read"], "environment": "login.microsoftonline.com",
        "token_endpoint": "https://login.microsoftonline.com/common/oauth2/v2.0/token",
        "grant_type": "authorization_code",
        "response": {{"access_token": "at-{client}-{uid}", "expires_in": 3600, "id_token": "h.{}.s",
        "client_info": "{}"{rt}{foci}}}}}"#,
        b64(&claims),
        b64(&format!(r#"{{"uid":"{uid}","utid":"tid"}}"#))
    )
}

fn due(cache: &TokenCache, at: i64, horizon: i64) -> Vec<String> {
    let mut v: Vec<String> =
        cache.due_for_refresh(Some(at), horizon).iter().map(|d| d.entry.secret().unwrap().into_owned()).collect();
    v.sort();
    v
}

#[test]
fn refresh_on_and_horizon_make_tokens_due() {
    let cache = TokenCache::new();
    cache.add_json(&app_event("t1", Some(1800)), Some(NOW)).unwrap();
    cache.add_json(&app_event("t2", None), Some(NOW)).unwrap();
    let _ = cache.serialize(); // clears the changed flag
    assert!(due(&cache, NOW + 100, 300).is_empty());
    assert_eq!(due(&cache, NOW + 1801, 300), ["at-t1"], "refresh_on passed");
    assert_eq!(due(&cache, NOW + 3400, 300), ["at-t1", "at-t2"], "within the horizon");
    let expired = cache.due_for_refresh(Some(NOW + 4000), 300);
    assert_eq!(expired.len(), 2, "expired app tokens are renewable with the client credential");
    assert!(expired.iter().all(|d| d.expired && d.expires_on == Some(NOW + 3600)));
    assert_eq!(cache.len(), 3, "listing removes nothing, even expired tokens");
    assert!(!cache.has_state_changed(), "listing changes nothing");
}

#[test]
fn expired_user_tokens_are_due_only_with_a_refresh_token() {
    let cache = TokenCache::new();
    cache.add_json(&user_event("web", "u1", false, true), Some(NOW)).unwrap();
    cache.add_json(&user_event("web", "u2", false, false), Some(NOW)).unwrap();
    // Family: app A holds the family RT; app B's token can be renewed with it.
    cache.add_json(&user_event("app-a", "u3", true, true), Some(NOW)).unwrap();
    cache.add_json(&user_event("app-b", "u3", true, false), Some(NOW)).unwrap();
    assert_eq!(due(&cache, NOW + 3400, 300).len(), 4, "not yet expired: all due within the horizon");
    assert_eq!(due(&cache, NOW + 4000, 300), ["at-app-a-u3", "at-app-b-u3", "at-web-u1"], "u2 has no refresh token");

    let rt = cache
        .search(CredentialType::RefreshToken, &[], None, Some(NOW))
        .into_iter()
        .find(|e| e.secret().unwrap() == "rt-web-u1");
    cache.remove_rt(&rt.unwrap()).unwrap();
    assert_eq!(due(&cache, NOW + 4000, 300), ["at-app-a-u3", "at-app-b-u3"]);
}

#[test]
fn watcher_reports_each_issuance_once() {
    let cache = TokenCache::new();
    cache.add_json(&app_event("t1", None), Some(NOW)).unwrap();
    cache.add_json(&app_event("t2", Some(600)), Some(NOW)).unwrap();
    let watcher = tokencache::RefreshWatcher::new(300);
    let secrets = |v: Vec<tokencache::DueToken>| {
        let mut s: Vec<String> = v.iter().map(|d| d.entry.secret().unwrap().into_owned()).collect();
        s.sort();
        s
    };
    assert!(watcher.poll(&cache, Some(NOW)).is_empty());
    // t2's refresh_on (NOW + 600) passes first.
    assert_eq!(secrets(watcher.poll(&cache, Some(NOW + 600))), ["at-t2"]);
    assert!(watcher.poll(&cache, Some(NOW + 601)).is_empty(), "reported once");
    // t1 enters the horizon; t2 is still due but already reported.
    assert_eq!(secrets(watcher.poll(&cache, Some(NOW + 3400))), ["at-t1"]);
    // A failed renewal is reported again.
    let due = cache.due_for_refresh(Some(NOW + 3400), 300);
    let t1 = due.iter().find(|d| d.entry.secret().as_deref() == Some("at-t1")).unwrap();
    watcher.retry(t1);
    assert_eq!(secrets(watcher.poll(&cache, Some(NOW + 3401))), ["at-t1"]);
    // Renewing t1 makes a new issuance: quiet until it is due in turn.
    cache.add_json(&app_event("t1", None), Some(NOW + 3402)).unwrap();
    assert!(watcher.poll(&cache, Some(NOW + 3403)).is_empty());
    assert_eq!(secrets(watcher.poll(&cache, Some(NOW + 3402 + 3400))), ["at-t1"]);
}

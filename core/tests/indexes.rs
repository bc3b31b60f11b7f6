//! Searches cost O(matches): with 20,000 entries, every kind of query looks at no
//! more entries than it returns (plus the few that share one indexed value).

use tokencache::json::{Map, Value};
use tokencache::{CredentialType, TokenCache};

const ENV: &str = "login.microsoftonline.com";
const NOW: i64 = 1_700_000_000;

fn map(v: serde_json::Value) -> Map {
    match tokencache::json::parse(&v.to_string()).unwrap() {
        Value::Object(m) => m,
        _ => unreachable!(),
    }
}

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

fn user_event(u: u32, username: &str, at: &str) -> Map {
    let claims = format!(r#"{{"oid":"u{u}","sub":"s{u}","preferred_username":"{username}"}}"#);
    map(serde_json::json!({"client_id": if u.is_multiple_of(2) { "app-a" } else { "app-b" },
    "scope": ["User.Read", format!("api://x/scope{}", u % 7)], "environment": ENV,
    "token_endpoint": format!("https://{ENV}/common/oauth2/v2.0/token"),
    "grant_type": "authorization_code",
    "response": {"access_token": at, "refresh_token": format!("rt{u}"),
        "id_token": format!("h.{}.s", b64(&claims)), "expires_in": 3600,
        "foci": if u.is_multiple_of(3) { "1" } else { "" },
        "client_info": b64(&format!(r#"{{"uid":"u{u}","utid":"tid"}}"#))}}))
}

fn populated() -> TokenCache {
    let cache = TokenCache::new();
    for t in 0..10_000 {
        for scope in ["https://graph.microsoft.com/.default", "https://storage.azure.com/.default"] {
            cache
                .add(
                    &map(serde_json::json!({"client_id": "daemon", "scope": [scope], "environment": ENV,
                    "token_endpoint": format!("https://{ENV}/tenant-{t}/oauth2/v2.0/token"),
                    "response": {"access_token": format!("secret-{t}-{scope}"), "expires_in": 3600}})),
                    Some(NOW),
                )
                .unwrap();
        }
    }
    for u in 0..500 {
        cache.add(&user_event(u, &format!("user{u}@x.example"), &format!("at{u}")), Some(NOW)).unwrap();
    }
    cache
}

/// Runs a search and checks it examined at most `slack` more entries than it found.
fn check(cache: &TokenCache, ct: CredentialType, target: &[&str], q: serde_json::Value, slack: u64) -> usize {
    let q = map(q);
    let before = cache.stats().examined;
    let found = cache.search(ct, target, Some(&q), Some(NOW)).len();
    let examined = cache.stats().examined - before;
    assert!(examined <= found as u64 + slack, "{ct} {q:?} {target:?}: examined {examined} for {found} matches");
    found
}

#[test]
fn every_query_kind_is_answered_from_an_index() {
    let c = populated();
    assert_eq!(c.len(), 20_000 + 500 * 4 + 3); // AT, RT, IdToken, Account per user; 3 apps
    let at = CredentialType::AccessToken;
    let rt = CredentialType::RefreshToken;
    // W1's lookup: client_id + realm + home_account_id null + target.
    let q =
        serde_json::json!({"client_id": "daemon", "environment": ENV, "realm": "tenant-4242", "home_account_id": null});
    assert_eq!(check(&c, at, &["https://graph.microsoft.com/.default"], q, 2), 1);
    assert_eq!(check(&c, at, &[], serde_json::json!({"realm": "tenant-7"}), 0), 2);
    assert_eq!(check(&c, at, &[], serde_json::json!({"secret": "secret-9-https://storage.azure.com/.default"}), 0), 1);
    assert_eq!(check(&c, at, &[], serde_json::json!({"home_account_id": "u17.tid"}), 0), 1);
    assert_eq!(check(&c, at, &["api://x/scope3"], serde_json::json!({}), 0), 71);
    assert_eq!(check(&c, at, &["api://x/scope3", "User.Read"], serde_json::json!({"client_id": "app-b"}), 71), 36);
    // acquire_token_silent's RT lookups: by family and by client.
    assert_eq!(
        check(&c, rt, &[], serde_json::json!({"environment": ENV, "home_account_id": "u3.tid", "family_id": "1"}), 0),
        1
    );
    assert_eq!(check(&c, rt, &[], serde_json::json!({"family_id": "1"}), 0), 167);
    assert_eq!(check(&c, rt, &[], serde_json::json!({"home_account_id": "u4.tid", "client_id": "app-a"}), 0), 1);
    // Account listing and lookups by username.
    assert_eq!(check(&c, CredentialType::Account, &[], serde_json::json!({"environment": ENV}), 0), 500);
    assert_eq!(check(&c, CredentialType::Account, &[], serde_json::json!({"username": "user42@x.example"}), 0), 1);
    assert_eq!(
        check(&c, CredentialType::IdToken, &[], serde_json::json!({"home_account_id": "u1.tid", "realm": "common"}), 0),
        1
    );
    // Misses cost nothing.
    assert_eq!(check(&c, at, &[], serde_json::json!({"realm": "no-such-tenant"}), 0), 0);
    assert_eq!(check(&c, at, &["no-such-scope"], serde_json::json!({"client_id": "daemon"}), 0), 0);
}

#[test]
fn results_come_in_insertion_order_like_msal() {
    let c = populated();
    let q = map(serde_json::json!({"client_id": "daemon"}));
    let hits = c.search(CredentialType::AccessToken, &["https://storage.azure.com/.default"], Some(&q), Some(NOW));
    assert_eq!(hits.len(), 10_000);
    let realms: Vec<String> = hits.iter().map(|e| e.get_str("realm").unwrap().into_owned()).collect();
    let expected: Vec<String> = (0..10_000).map(|t| format!("tenant-{t}")).collect();
    assert_eq!(realms, expected);
}

#[test]
fn fields_indexed_on_first_use_follow_every_change_after() {
    // The indexes of fields msal never searches by (secret, username, ...) are built
    // by the first query that names one; from then on adds, renewals and removals
    // must keep them right, or these lookups would miss or return stale entries.
    let c = populated();
    let account = CredentialType::Account;
    let at = CredentialType::AccessToken;
    let name = |n: &str| serde_json::json!({"username": n});
    let secret = |s: &str| serde_json::json!({"secret": s});
    // Changes before the first query are in the index it builds.
    c.add(&user_event(600, "user600@x.example", "at600"), Some(NOW)).unwrap();
    assert_eq!(check(&c, account, &[], name("user600@x.example"), 0), 1);
    assert_eq!(check(&c, at, &[], secret("at600"), 0), 1);
    // A new user, a renamed one, a renewed token, a removed account.
    c.add(&user_event(601, "user601@x.example", "at601"), Some(NOW)).unwrap();
    c.add(&user_event(42, "renamed@x.example", "at42-renewed"), Some(NOW)).unwrap();
    let gone = c.search(account, &[], Some(&map(name("user43@x.example"))), Some(NOW));
    c.remove_account(&gone[0]).unwrap();
    assert_eq!(check(&c, account, &[], name("user601@x.example"), 0), 1);
    assert_eq!(check(&c, account, &[], name("renamed@x.example"), 0), 1);
    assert_eq!(check(&c, account, &[], name("user42@x.example"), 0), 0);
    assert_eq!(check(&c, account, &[], name("user43@x.example"), 0), 0);
    assert_eq!(check(&c, at, &[], secret("at601"), 0), 1);
    assert_eq!(check(&c, at, &[], secret("at42-renewed"), 0), 1);
    assert_eq!(check(&c, at, &[], secret("at42"), 0), 0);
}

#[test]
fn a_cache_of_user_tokens_answers_every_query_kind_from_an_index_built_when_needed() {
    // Only home_account_id is indexed while every query names a user; the first query
    // that no user narrows builds the index it needs, and every later change must
    // keep that index right.
    let c = TokenCache::new();
    for u in 0..500 {
        c.add(&user_event(u, &format!("user{u}@x.example"), &format!("at{u}")), Some(NOW)).unwrap();
    }
    let at = CredentialType::AccessToken;
    let rt = CredentialType::RefreshToken;
    let user = |u: u32| format!("u{u}.tid");
    // acquire_token_silent's lookups name the user.
    let q =
        serde_json::json!({"client_id": "app-b", "environment": ENV, "realm": "common", "home_account_id": user(17)});
    assert_eq!(check(&c, at, &["User.Read"], q, 0), 1);
    assert_eq!(
        check(
            &c,
            rt,
            &[],
            serde_json::json!({"environment": ENV, "home_account_id": user(4), "client_id": "app-a"}),
            0
        ),
        1
    );
    // A user with more tokens than are worth verifying one by one: the query's
    // other fields narrow it (here its scope, indexed now).
    for s in 0..40 {
        let mut e = user_event(7, "user7@x.example", &format!("at7-{s}"));
        e.insert("scope", Value::Array(vec![Value::String(format!("api://many/{s}"))]));
        c.add(&e, Some(NOW)).unwrap();
    }
    let q =
        serde_json::json!({"home_account_id": user(7), "client_id": "app-b", "environment": ENV, "realm": "common"});
    assert_eq!(check(&c, at, &["api://many/39"], q, 0), 1);
    // Queries no user narrows: by client, scope, tenant, family.
    assert_eq!(check(&c, at, &[], serde_json::json!({"client_id": "app-a"}), 0), 250);
    assert_eq!(check(&c, at, &["api://x/scope3"], serde_json::json!({}), 0), 71);
    assert_eq!(check(&c, CredentialType::IdToken, &[], serde_json::json!({"realm": "common"}), 0), 500);
    assert_eq!(check(&c, rt, &[], serde_json::json!({"family_id": "1"}), 0), 167);
    // Changes after those queries: a new user, a renewed token, a removed account
    // (the account entry only, as msal's TokenCache.remove_account).
    c.add(&user_event(600, "user600@x.example", "at600"), Some(NOW)).unwrap();
    c.add(&user_event(42, "user42@x.example", "at42-renewed"), Some(NOW)).unwrap();
    let gone =
        c.search(CredentialType::Account, &[], Some(&map(serde_json::json!({"home_account_id": user(3)}))), Some(NOW));
    c.remove_account(&gone[0]).unwrap();
    assert_eq!(check(&c, at, &[], serde_json::json!({"client_id": "app-a"}), 0), 251);
    assert_eq!(check(&c, at, &["api://x/scope3"], serde_json::json!({}), 0), 71);
    assert_eq!(check(&c, CredentialType::IdToken, &[], serde_json::json!({"realm": "common"}), 0), 501);
    assert_eq!(check(&c, rt, &[], serde_json::json!({"family_id": "1"}), 0), 168); // and user 600's
    assert_eq!(check(&c, CredentialType::Account, &[], serde_json::json!({"realm": "common"}), 0), 500);
    assert_eq!(check(&c, at, &[], serde_json::json!({"secret": "at42-renewed"}), 0), 1);
    assert_eq!(check(&c, at, &[], serde_json::json!({"client_id": "app-b", "secret": "at42"}), 0), 0);
}

#[test]
fn user_postings_follow_a_section_renumbered_after_many_removals() {
    // Removing most of a section renumbers its slots; the user index (one for all
    // sections) must drop that section's old slot numbers, or a lookup would examine
    // entries that are not the user's.
    let c = TokenCache::new();
    for u in 0..3000 {
        c.add(&user_event(u, &format!("user{u}@x.example"), &format!("at{u}")), Some(NOW)).unwrap();
    }
    let at = CredentialType::AccessToken;
    let user = |u: u32| serde_json::json!({"home_account_id": format!("u{u}.tid")});
    for u in 0..2500 {
        let hits = c.search(at, &[], Some(&map(user(u))), Some(NOW));
        c.remove_at(&hits[0]).unwrap();
    }
    // New users take the slot numbers the removed ones had.
    for u in 3000..6000 {
        c.add(&user_event(u, &format!("user{u}@x.example"), &format!("at{u}")), Some(NOW)).unwrap();
    }
    for u in (0..6000).step_by(97) {
        assert_eq!(check(&c, at, &[], user(u), 0), usize::from(u >= 2500), "user {u}");
        // The user's other sections were not renumbered.
        assert_eq!(check(&c, CredentialType::RefreshToken, &[], user(u), 0), 1, "user {u}");
    }
    c.add(&user_event(2999, "user2999@x.example", "at2999-renewed"), Some(NOW)).unwrap();
    assert_eq!(check(&c, at, &[], user(2999), 0), 1);
}

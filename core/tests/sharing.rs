//! Sharing mode (`TokenCache::set_sharing`): one file for apps on every SDK. The
//! files below are what msal-node 7.2.1 writes (keys, `login.windows.net`, `""` home
//! account ids of app tokens); the real round trips are in `tests/compat`.

mod common;

use base64::Engine;
use tokencache::json::{self, Map, Value};
use tokencache::{CredentialType, SharingMode, TokenCache};

const NOW: i64 = 1_700_000_000;
const HID: &str = "uid.tid";

/// A cache file as msal-node writes it: an app token, and a user's AT, RT, IdToken,
/// Account and AppMetadata, all under `login.windows.net` and msal-node's keys.
fn node_file() -> String {
    format!(
        r#"{{
  "AccessToken": {{
    "-login.windows.net-accesstoken-daemon-tid-https://graph.microsoft.com/.default-": {{
      "home_account_id": "", "environment": "login.windows.net", "credential_type": "AccessToken",
      "client_id": "daemon", "secret": "node-app-at", "realm": "tid",
      "target": "https://graph.microsoft.com/.default", "cached_at": "{NOW}",
      "expires_on": "{exp}", "extended_expires_on": "{exp}", "token_type": "Bearer"
    }},
    "{HID}-login.windows.net-accesstoken-app-tid-user.read openid profile offline_access-": {{
      "home_account_id": "{HID}", "environment": "login.windows.net", "credential_type": "AccessToken",
      "client_id": "app", "secret": "node-user-at", "realm": "tid",
      "target": "User.Read openid profile offline_access", "cached_at": "{NOW}",
      "expires_on": "{exp}", "extended_expires_on": "{exp}", "token_type": "Bearer"
    }}
  }},
  "RefreshToken": {{
    "{HID}-login.windows.net-refreshtoken-app---": {{
      "home_account_id": "{HID}", "environment": "login.windows.net", "credential_type": "RefreshToken",
      "client_id": "app", "secret": "node-rt"
    }}
  }},
  "IdToken": {{
    "{HID}-login.windows.net-idtoken-app-tid--": {{
      "home_account_id": "{HID}", "environment": "login.windows.net", "credential_type": "IdToken",
      "client_id": "app", "secret": "node-idt", "realm": "tid"
    }}
  }},
  "Account": {{
    "{HID}-login.windows.net-tid": {{
      "home_account_id": "{HID}", "environment": "login.windows.net", "realm": "tid",
      "local_account_id": "uid", "username": "user@x.example", "authority_type": "MSSTS"
    }}
  }},
  "AppMetadata": {{
    "appmetadata-login.windows.net-app": {{ "client_id": "app", "environment": "login.windows.net" }}
  }}
}}"#,
        exp = NOW + 3600
    )
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

/// What msal Python hands its cache after a client-credentials response.
fn app_event(scope: &str, at: &str) -> String {
    format!(
        r#"{{"client_id": "daemon", "scope": ["{scope}"], "environment": "login.microsoftonline.com",
        "token_endpoint": "https://login.microsoftonline.com/tid/oauth2/v2.0/token",
        "response": {{"access_token": "{at}", "expires_in": 3600}}}}"#
    )
}

/// What msal Python hands its cache after a user's token response (with an RT).
fn user_event(scopes: &str, at: &str, rt: Option<&str>) -> String {
    let claims = r#"{"oid":"uid","sub":"s-uid","preferred_username":"user@x.example","tid":"tid"}"#;
    let rt = rt.map(|r| format!(r#", "refresh_token": "{r}""#)).unwrap_or_default();
    format!(
        r#"{{"client_id": "app", "scope": [{scopes}], "environment": "login.microsoftonline.com",
        "token_endpoint": "https://login.microsoftonline.com/tid/oauth2/v2.0/token",
        "grant_type": "refresh_token",
        "response": {{"access_token": "{at}", "expires_in": 3600, "id_token": "h.{}.s",
        "client_info": "{}"{rt}}}}}"#,
        b64(claims),
        b64(r#"{"uid":"uid","utid":"tid"}"#)
    )
}

fn query(pairs: &[(&str, Value)]) -> Map {
    let mut m = Map::new();
    for (k, v) in pairs {
        m.insert(*k, v.clone());
    }
    m
}

fn cache(sharing: bool) -> TokenCache {
    cache_in(if sharing { SharingMode::On } else { SharingMode::Off })
}

fn cache_in(mode: SharingMode) -> TokenCache {
    let c = TokenCache::new();
    c.deserialize(&node_file()).unwrap();
    c.set_sharing_mode(mode);
    c
}

fn keys(c: &TokenCache, section: &str) -> Vec<String> {
    let doc = json::parse(&c.serialize()).unwrap();
    doc.get(section)
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, _)| k.to_owned()).collect())
        .unwrap_or_default()
}

fn secrets(found: &[tokencache::Entry]) -> Vec<String> {
    found.iter().map(|e| e.secret().unwrap().into_owned()).collect()
}

/// msal Python's query for an app token: its authority's host, `home_account_id: None`.
fn app_query() -> Map {
    query(&[
        ("client_id", Value::from("daemon")),
        ("environment", Value::from("login.microsoftonline.com")),
        ("realm", Value::from("tid")),
        ("home_account_id", Value::Null),
    ])
}

#[test]
fn default_mode_misses_what_other_sdks_file_as_msal_python_does() {
    let c = cache(false);
    let found =
        c.search(CredentialType::AccessToken, &["https://graph.microsoft.com/.default"], Some(&app_query()), Some(NOW));
    assert!(found.is_empty(), "msal Python never serves msal-node's app tokens");
    assert!(c.get_app_metadata("login.microsoftonline.com", "app").is_none());
}

#[test]
fn lookups_fold_cloud_aliases_and_empty_home_account_ids() {
    let c = cache(true);
    let found =
        c.search(CredentialType::AccessToken, &["https://graph.microsoft.com/.default"], Some(&app_query()), Some(NOW));
    assert_eq!(secrets(&found), ["node-app-at"]);

    let user =
        query(&[("home_account_id", Value::from(HID)), ("environment", Value::from("login.microsoftonline.com"))]);
    assert_eq!(secrets(&c.search(CredentialType::RefreshToken, &[], Some(&user), Some(NOW))), ["node-rt"]);
    assert_eq!(c.search(CredentialType::Account, &[], Some(&user), Some(NOW)).len(), 1);

    let at = c.get_access_token(
        Some(HID),
        "login.microsoftonline.com",
        "app",
        "tid",
        &["openid", "offline_access", "profile", "User.Read"],
        None,
    );
    assert_eq!(at.and_then(|e| e.secret().map(|s| s.into_owned())).as_deref(), Some("node-user-at"));
    let app_at = c.get_access_token(
        None,
        "login.microsoftonline.com",
        "daemon",
        "tid",
        &["https://graph.microsoft.com/.default"],
        None,
    );
    assert!(app_at.is_some());
    // Exactly these scopes: a subset is not the token get_access_token names.
    assert!(c.get_access_token(Some(HID), "login.microsoftonline.com", "app", "tid", &["User.Read"], None).is_none());
    assert!(c.get_app_metadata("login.microsoftonline.com", "app").is_some());
    // Another cloud stays apart.
    let cn = query(&[("home_account_id", Value::from(HID)), ("environment", Value::from("login.chinacloudapi.cn"))]);
    assert!(c.search(CredentialType::RefreshToken, &[], Some(&cn), Some(NOW)).is_empty());
}

#[test]
fn renewals_are_filed_over_the_other_sdks_copy() {
    for mode in [SharingMode::On, SharingMode::Auto] {
        renewals_filed_over_the_peers_copy(mode);
    }
}

fn renewals_filed_over_the_peers_copy(mode: SharingMode) {
    let c = cache_in(mode);
    c.add_json(&app_event("https://graph.microsoft.com/.default", "renewed-app-at"), Some(NOW + 10)).unwrap();
    c.add_json(&user_event(r#""User.Read""#, "renewed-user-at", Some("renewed-rt")), Some(NOW + 10)).unwrap();

    // Still one entry per item, under msal-node's keys, in its environment.
    assert_eq!(
        keys(&c, "AccessToken"),
        [
            "-login.windows.net-accesstoken-daemon-tid-https://graph.microsoft.com/.default-",
            "uid.tid-login.windows.net-accesstoken-app-tid-user.read openid profile offline_access-",
        ]
    );
    assert_eq!(keys(&c, "RefreshToken"), ["uid.tid-login.windows.net-refreshtoken-app---"]);
    assert_eq!(keys(&c, "IdToken"), ["uid.tid-login.windows.net-idtoken-app-tid--"]);
    assert_eq!(keys(&c, "Account"), ["uid.tid-login.windows.net-tid"]);
    // The daemon's app metadata is new: filed in msal-node's environment.
    assert_eq!(keys(&c, "AppMetadata"), ["appmetadata-login.windows.net-app", "appmetadata-login.windows.net-daemon"]);

    let found = c.search(
        CredentialType::AccessToken,
        &["https://graph.microsoft.com/.default"],
        Some(&app_query()),
        Some(NOW + 20),
    );
    assert_eq!(secrets(&found), ["renewed-app-at"]);
    let at = &found[0];
    assert_eq!(at.get_str("environment").as_deref(), Some("login.windows.net"));
    assert_eq!(at.get("home_account_id"), Some(Value::from("")), "msal-node matches only a string");
    let rt = c.search(CredentialType::RefreshToken, &[], Some(&query(&[("client_id", Value::from("app"))])), Some(NOW));
    assert_eq!(secrets(&rt), ["renewed-rt"]);
}

#[test]
fn new_items_are_filed_as_msal_node_files_them() {
    let c = TokenCache::new();
    c.set_sharing(true);
    c.add_json(&app_event("https://vault.azure.net/.default", "vault"), Some(NOW)).unwrap();
    c.add_json(&user_event(r#""Mail.Read""#, "mail", Some("rt")), Some(NOW)).unwrap();
    assert_eq!(
        keys(&c, "AccessToken"),
        [
            "-login.windows.net-accesstoken-daemon-tid-https://vault.azure.net/.default-",
            "uid.tid-login.windows.net-accesstoken-app-tid-mail.read-",
        ]
    );
    assert_eq!(keys(&c, "RefreshToken"), ["uid.tid-login.windows.net-refreshtoken-app---"]);
    assert_eq!(keys(&c, "IdToken"), ["uid.tid-login.windows.net-idtoken-app-tid--"]);
    // And msal Python's own lookups (through this cache) still find them.
    let found =
        c.search(CredentialType::AccessToken, &["https://vault.azure.net/.default"], Some(&app_query()), Some(NOW));
    assert_eq!(secrets(&found), ["vault"]);
}

#[test]
fn tokens_with_intersecting_scopes_are_replaced_as_msal_node_does() {
    let c = cache(true);
    // Mail.Read + User.Read meets node's User.Read token: msal-node would find both for
    // User.Read and delete both; sharing mode keeps only the new one.
    c.add_json(&user_event(r#""User.Read", "Mail.Read""#, "both", None), Some(NOW)).unwrap();
    let user = query(&[("home_account_id", Value::from(HID)), ("client_id", Value::from("app"))]);
    assert_eq!(secrets(&c.search(CredentialType::AccessToken, &["User.Read"], Some(&user), Some(NOW))), ["both"]);
    // Only the OIDC scopes in common: both stay.
    c.add_json(&user_event(r#""Files.Read""#, "files", None), Some(NOW)).unwrap();
    assert_eq!(c.search(CredentialType::AccessToken, &[], Some(&user), Some(NOW)).len(), 2);
    // The app token of another client is never touched.
    assert_eq!(
        c.search(CredentialType::AccessToken, &[], Some(&query(&[("client_id", Value::from("daemon"))])), Some(NOW))
            .len(),
        1
    );
}

#[test]
fn update_rt_and_removals_act_where_the_entry_is_filed() {
    let c = cache(true);
    let rts =
        c.search(CredentialType::RefreshToken, &[], Some(&query(&[("client_id", Value::from("app"))])), Some(NOW));
    c.update_rt(&rts[0], "rotated", Some(NOW)).unwrap();
    assert_eq!(keys(&c, "RefreshToken"), ["uid.tid-login.windows.net-refreshtoken-app---"]);
    let rts =
        c.search(CredentialType::RefreshToken, &[], Some(&query(&[("client_id", Value::from("app"))])), Some(NOW));
    assert_eq!(secrets(&rts), ["rotated"]);

    // The same in default mode files a second copy under msal Python's key (msal's behaviour).
    let plain = cache(false);
    let rts =
        plain.search(CredentialType::RefreshToken, &[], Some(&query(&[("client_id", Value::from("app"))])), Some(NOW));
    plain.update_rt(&rts[0], "rotated", Some(NOW)).unwrap();
    assert_eq!(keys(&plain, "RefreshToken").len(), 2);

    let idts = c.search(CredentialType::IdToken, &[], None, Some(NOW));
    c.remove_idt(&idts[0]).unwrap();
    assert!(keys(&c, "IdToken").is_empty());
    let accounts = c.search(CredentialType::Account, &[], None, Some(NOW));
    c.remove_account(&accounts[0]).unwrap();
    assert!(keys(&c, "Account").is_empty());
}

#[test]
fn default_mode_output_is_untouched_by_the_switch() {
    // Sharing off again: adds are msal Python's, byte for byte.
    let a = TokenCache::new();
    let b = TokenCache::new();
    b.set_sharing(true);
    b.set_sharing(false);
    for c in [&a, &b] {
        c.add_json(&app_event("s", "x"), Some(NOW)).unwrap();
        c.add_json(&user_event(r#""User.Read""#, "y", Some("z")), Some(NOW)).unwrap();
    }
    assert_eq!(a.serialize(), b.serialize());
    assert!(a.serialize().contains(r#""home_account_id": null"#));
}

#[test]
fn copies_are_found_whatever_the_case_of_their_ids_among_many_tenants() {
    // The peer spelt the tenant and client id in capitals; other tenants' tokens of the
    // same app surround it (the index, not a scan, must find the copy).
    let c = cache(true);
    let upper = node_file().replace(
        r#""client_id": "daemon", "secret": "node-app-at", "realm": "tid""#,
        r#""client_id": "DAEMON", "secret": "node-app-at", "realm": "TID""#,
    );
    c.deserialize(&upper).unwrap();
    for t in 0..50 {
        let event = app_event("https://graph.microsoft.com/.default", &format!("other-{t}"))
            .replace("/tid/", &format!("/t{t}/"));
        c.add_json(&event, Some(NOW)).unwrap();
    }
    assert_eq!(keys(&c, "AccessToken").len(), 52);

    let at = c.get_access_token(
        None,
        "login.microsoftonline.com",
        "daemon",
        "tid",
        &["https://graph.microsoft.com/.default"],
        None,
    );
    assert_eq!(at.and_then(|e| e.secret().map(|s| s.to_string())).as_deref(), Some("node-app-at"));

    c.add_json(&app_event("https://graph.microsoft.com/.default", "renewed-app-at"), Some(NOW + 10)).unwrap();
    assert_eq!(keys(&c, "AccessToken").len(), 52, "filed over the peer's copy, not beside it");
    let doc = c.serialize();
    assert!(!doc.contains("node-app-at") && doc.contains("renewed-app-at"));
}

// Auto mode (the default): msal Python until the document shows another SDK.

/// A file as msal4j writes it: msal Python's key style, but `login.windows.net`, and
/// access tokens without `token_type`.
fn msal4j_file() -> String {
    // msal-node's keys, each with msal Python's (and msal4j's) spelling.
    let keys = [
        ("-refreshtoken-app---", "-refreshtoken-app--"),
        ("-idtoken-app-tid--", "-idtoken-app-tid-"),
        ("https://graph.microsoft.com/.default-\"", "https://graph.microsoft.com/.default\""),
        ("user.read openid profile offline_access-\"", "user.read openid profile offline_access\""),
        (r#""home_account_id": "", "#, r#""home_account_id": null, "#),
    ];
    let mut file = node_file();
    for (node, msal4j) in keys {
        assert!(file.contains(node));
        file = file.replace(node, msal4j);
    }
    file.replace(r#", "token_type": "Bearer""#, "")
}

#[test]
fn auto_is_the_default_and_is_msal_python_on_its_own_files() {
    let auto = TokenCache::new();
    assert_eq!(auto.sharing_mode(), SharingMode::Auto);
    let off = TokenCache::new();
    off.set_sharing_mode(SharingMode::Off);
    for c in [&auto, &off] {
        c.add_json(&app_event("s", "x"), Some(NOW)).unwrap();
        c.add_json(&user_event(r#""User.Read""#, "y", Some("z")), Some(NOW)).unwrap();
        c.add_json(&user_event(r#""Mail.Read""#, "y2", Some("z2")), Some(NOW)).unwrap();
        // One msal Python app with two authorities of one cloud: still msal Python's.
        let other_alias = app_event("s", "x2").replace("login.microsoftonline.com", "login.windows.net");
        c.add_json(&other_alias, Some(NOW)).unwrap();
        let found = c.search(CredentialType::AccessToken, &["s"], Some(&app_query()), Some(NOW));
        assert_eq!(secrets(&found), ["x"], "msal Python's lookup: its own alias only");
    }
    assert_eq!(auto.serialize(), off.serialize());
    assert!(!auto.sharing());
    // Every file msal Python wrote in the shared vectors is its own: no sharing.
    for name in common::vector_files().iter().filter(|n| n.starts_with("msal_python_") && !n.ends_with(".events.json"))
    {
        let c = TokenCache::new();
        c.deserialize(&common::read(name)).unwrap();
        assert!(!c.sharing(), "{name}: msal Python's own file taken for another SDK's");
    }
}

#[test]
fn auto_recognises_every_other_sdks_file_in_the_vectors() {
    // Files that hold only what msal Python would write the same way say nothing.
    const SILENT: &[&str] = &["msaljs__Account.json"];
    let mut checked = 0;
    for name in common::vector_files() {
        let foreign = ["dotnet__", "msal4j__", "msalgo__", "msaljs__"].iter().any(|p| name.starts_with(p));
        if !foreign || !name.ends_with(".json") || SILENT.contains(&name.as_str()) {
            continue;
        }
        let c = TokenCache::new();
        if c.deserialize(&common::read(&name)).is_err() || c.is_empty() {
            continue; // not a cache file (msal-node's cacheStore.json)
        }
        assert!(c.sharing(), "{name}: another SDK's file not recognised");
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} files checked");
}

#[test]
fn auto_finds_and_renews_an_msal4j_copy_filed_under_another_alias() {
    let c = TokenCache::new();
    c.deserialize(&msal4j_file()).unwrap();
    // msal Python's key style throughout, but access tokens without token_type.
    assert!(c.sharing());
    let user =
        query(&[("home_account_id", Value::from(HID)), ("environment", Value::from("login.microsoftonline.com"))]);
    assert_eq!(secrets(&c.search(CredentialType::RefreshToken, &[], Some(&user), Some(NOW))), ["node-rt"]);
    c.add_json(&user_event(r#""User.Read""#, "renewed-user-at", Some("renewed-rt")), Some(NOW + 10)).unwrap();
    assert_eq!(keys(&c, "RefreshToken"), [format!("{HID}-login.windows.net-refreshtoken-app--")]);
    assert_eq!(secrets(&c.search(CredentialType::RefreshToken, &[], Some(&user), Some(NOW))), ["renewed-rt"]);
    // Off: msal Python's behaviour, a second copy beside msal4j's.
    let off = TokenCache::new();
    off.deserialize(&msal4j_file()).unwrap();
    off.set_sharing_mode(SharingMode::Off);
    off.add_json(&user_event(r#""User.Read""#, "renewed-user-at", Some("renewed-rt")), Some(NOW + 10)).unwrap();
    assert_eq!(keys(&off, "RefreshToken").len(), 2);
}

#[test]
fn auto_follows_the_document_as_entries_come_and_go() {
    // An msal Python file: not shared.
    let c = TokenCache::new();
    c.add_json(&user_event(r#""User.Read""#, "y", Some("z")), Some(NOW)).unwrap();
    assert!(!c.sharing());
    // msal-node's entries of another partition arrive (kept up to date, not rescanned).
    let node_rt = r#"{"RefreshToken": {"other.tid-login.windows.net-refreshtoken-app---": {
        "home_account_id": "other.tid", "environment": "login.windows.net",
        "credential_type": "RefreshToken", "client_id": "app", "secret": "node-rt"}}}"#;
    c.deserialize_partition("other.tid", node_rt).unwrap();
    assert!(c.sharing());
    // And leave again: msal Python's behaviour is back.
    assert_eq!(c.remove_partition("other.tid"), 1);
    assert!(!c.sharing());
    // A whole new document is judged afresh.
    c.deserialize(&node_file()).unwrap();
    assert!(c.sharing());
    c.deserialize("").unwrap();
    assert!(!c.sharing());
    // Set explicitly, the mode is what it says.
    c.deserialize(&node_file()).unwrap();
    c.set_sharing_mode(SharingMode::Off);
    assert!(!c.sharing());
    c.deserialize("").unwrap();
    c.set_sharing_mode(SharingMode::On);
    assert!(c.sharing());
}

#[test]
fn doctor_finds_the_copies_msal_pythons_behaviour_leaves_and_sharing_mode_does_not() {
    use tokencache::diagnose::{Check, Thresholds, diagnose_text};
    let rotate = |c: &TokenCache| {
        let q = query(&[("client_id", Value::from("app"))]);
        let rts = c.search(CredentialType::RefreshToken, &[], Some(&q), Some(NOW));
        c.update_rt(&rts[0], "rotated", Some(NOW)).unwrap();
        c.add_json(&user_event(r#""User.Read""#, "renewed", None), Some(NOW + 10)).unwrap();
        diagnose_text(&c.serialize(), &Thresholds::default(), NOW)
    };
    let off = rotate(&cache(false));
    let twice: Vec<&String> = off.findings_of(Check::Duplicates).flat_map(|f| f.subjects.iter()).collect();
    assert!(twice.iter().any(|s| s.starts_with("RefreshToken: ")), "{twice:?}");
    assert!(twice.iter().any(|s| s.starts_with("IdToken: ")), "{twice:?}");
    let shared = rotate(&cache_in(SharingMode::Auto));
    assert_eq!(shared.findings_of(Check::Duplicates).count(), 0);
    assert!(diagnose_text(&node_file(), &Thresholds::default(), NOW).findings_of(Check::Duplicates).next().is_none());
}

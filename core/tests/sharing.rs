//! Sharing mode (`TokenCache::set_sharing`): one file for apps on every SDK. The
//! files below are what msal-node 7.2.1 writes (keys, `login.windows.net`, `""` home
//! account ids of app tokens); the real round trips are in `tests/compat`.

use base64::Engine;
use tokencache::json::{self, Map, Value};
use tokencache::{CredentialType, TokenCache};

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
    let c = TokenCache::new();
    c.deserialize(&node_file()).unwrap();
    c.set_sharing(sharing);
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
    let c = cache(true);
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

//! The main job end to end, with nothing but this crate: populate a cache from the
//! token responses an app would receive, save it as `msal_token_cache.json`, load it
//! in a fresh cache, and serve tokens from it the way MSAL's silent flows do.
//!
//! Run with `make demo` (or `cargo run -p tokencache --example demo`).

use std::time::Instant;

use base64::Engine;
use tokencache::json::{Map, Value};
use tokencache::{CredentialType, TokenCache};

const ENV: &str = "login.microsoftonline.com";
const NOW: i64 = 1_700_000_000;

fn b64(json: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

fn obj(pairs: &[(&str, Value)]) -> Map {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

/// The event msal's ConfidentialClientApplication hands the cache after
/// acquire_token_for_client.
fn client_credentials(client_id: &str, tenant: &str, resource: &str, token: &str) -> Map {
    obj(&[
        ("client_id", client_id.into()),
        ("scope", vec![resource.to_string()].into()),
        ("token_endpoint", format!("https://{ENV}/{tenant}/oauth2/v2.0/token").into()),
        ("grant_type", "client_credentials".into()),
        ("response", Value::Object(obj(&[("access_token", token.into()), ("expires_in", 3600.into())]))),
        ("environment", ENV.into()),
    ])
}

/// The event after an interactive sign-in (auth code flow) of one user.
fn user_sign_in(client_id: &str, uid: &str, tid: &str, upn: &str) -> Map {
    let claims = format!(r#"{{"oid":"{uid}","sub":"sub-{uid}","tid":"{tid}","preferred_username":"{upn}"}}"#);
    let id_token = format!("{}.{}.sig", b64(r#"{"alg":"none"}"#), b64(&claims));
    let scopes: Vec<String> =
        ["User.Read", "Mail.Read", "openid", "profile", "offline_access"].iter().map(|s| s.to_string()).collect();
    obj(&[
        ("client_id", client_id.into()),
        ("scope", scopes.into()),
        ("token_endpoint", format!("https://{ENV}/common/oauth2/v2.0/token").into()),
        ("grant_type", "authorization_code".into()),
        (
            "response",
            Value::Object(obj(&[
                ("access_token", format!("at-for-{upn}").into()),
                ("refresh_token", format!("rt-for-{upn}").into()),
                ("id_token", id_token.into()),
                ("client_info", b64(&format!(r#"{{"uid":"{uid}","utid":"{tid}"}}"#)).into()),
                ("expires_in", 3600.into()),
                ("refresh_in", 1800.into()),
                ("token_type", "Bearer".into()),
            ])),
        ),
        ("environment", ENV.into()),
    ])
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("tokencache-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("msal_token_cache.json");

    // 1. Populate: a daemon serving 1,000 tenants and a desktop app with 3 users.
    let cache = TokenCache::new();
    let started = Instant::now();
    let daemon = "11111111-2222-3333-4444-555555555555";
    for t in 0..1000 {
        let tenant = format!("tenant-{t:04}");
        for resource in ["https://graph.microsoft.com/.default", "https://storage.azure.com/.default"] {
            let token = format!("{}{t}", "x".repeat(1500));
            cache.add(&client_credentials(daemon, &tenant, resource, &token), Some(NOW))?;
        }
    }
    let desktop = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
    for (i, name) in ["ada", "grace", "linus"].iter().enumerate() {
        let uid = format!("uid-{i}");
        cache.add(&user_sign_in(desktop, &uid, "contoso-tid", &format!("{name}@contoso.example")), Some(NOW))?;
    }
    println!("populated {} entries in {:.1?}", cache.len(), started.elapsed());

    // 2. Save, exactly as msal Python's serialize() would write it.
    let text = cache.serialize();
    std::fs::write(&path, &text)?;
    println!("saved {} bytes to {}", text.len(), path.display());

    // 3. Reload in a fresh cache (a new process would do the same).
    let started = Instant::now();
    let reloaded = TokenCache::new();
    reloaded.deserialize(&std::fs::read_to_string(&path)?)?;
    println!("reloaded {} entries in {:.1?}", reloaded.len(), started.elapsed());
    assert_eq!(reloaded.serialize(), text, "a reload changes nothing");

    // 4. Serve tokens the way MSAL's silent flows look them up.
    let later = Some(NOW + 600);
    let started = Instant::now();
    let at = reloaded
        .get_access_token(None, ENV, daemon, "tenant-0421", &["https://graph.microsoft.com/.default"], None)
        .ok_or("tenant-0421's token is missing")?;
    println!(
        "daemon: token for tenant-0421 found in {:.1?} (expires_on {}, {} bytes)",
        started.elapsed(),
        at.get_str("expires_on").unwrap_or_default(),
        at.secret().map_or(0, |s| s.len())
    );

    let mut env = Map::new();
    env.insert("environment", ENV.into());
    let accounts = reloaded.search(CredentialType::Account, &[], Some(&env), later);
    for account in &accounts {
        let hid = account.get_str("home_account_id").unwrap_or_default().into_owned();
        let mut q = env.clone();
        q.insert("home_account_id", hid.clone().into());
        q.insert("client_id", desktop.into());
        let ats = reloaded.search(CredentialType::AccessToken, &["User.Read"], Some(&q), later);
        let rts = reloaded.search(CredentialType::RefreshToken, &[], Some(&q), later);
        println!(
            "desktop: {} -> {} access token(s) for User.Read, {} refresh token(s)",
            account.get_str("username").unwrap_or_default(),
            ats.len(),
            rts.len()
        );
        // `{:?}` is safe to log: it never prints a secret.
        if let Some(rt) = rts.first() {
            println!("         refresh token entry: {rt:?}");
        }
    }

    // 5. An hour later every access token has expired: a search drops them, as msal does.
    let expired_at = Some(NOW + 7200);
    let hits = reloaded.search(CredentialType::AccessToken, &[], None, expired_at);
    println!(
        "two hours later: {} access tokens served, {} entries left (refresh tokens, accounts, metadata), changed={}",
        hits.len(),
        reloaded.len(),
        reloaded.has_state_changed()
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

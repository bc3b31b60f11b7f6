//! The tools for caches at rest (inventory, diagnose, maintenance) from the outside:
//! on the shared vectors, on broken files, and on SQLite stores with and without
//! encryption.

mod common;

use std::path::PathBuf;

use bytes::Bytes;
use tokencache::diagnose::{Check, Severity, Thresholds, diagnose_blobs, diagnose_file, diagnose_text};
use tokencache::inventory::{BlobContent, Inventory, scan_store};
use tokencache::maintenance::{Endpoint, copy, purge_file, purge_store};
use tokencache::store::{EncryptionKey, Expiry, KeyRing, ListStore, LockOptions, SqliteOptions, SqliteStore, Store};
use tokencache::{CredentialType, TokenCache};

const NOW: i64 = 1_700_000_000;

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let p = std::env::temp_dir().join(format!("tc-at-rest-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn user_event(uid: &str, expires_in: i64) -> String {
    let client_info = base64_url(&format!(r#"{{"uid":"{uid}","utid":"utid"}}"#));
    let id_token = format!(
        "{}.{}.sig",
        base64_url(r#"{"alg":"none"}"#),
        base64_url(&format!(
            r#"{{"oid":"{uid}","tid":"utid","preferred_username":"{uid}@contoso.com","iss":"https://login.microsoftonline.com/utid/v2.0","aud":"app","sub":"s"}}"#
        ))
    );
    format!(
        r#"{{"client_id": "app", "scope": ["User.Read"],
        "token_endpoint": "https://login.microsoftonline.com/utid/oauth2/v2.0/token",
        "response": {{"access_token": "AT-SECRET-{uid}", "refresh_token": "RT-SECRET-{uid}", "id_token": "{id_token}",
                     "client_info": "{client_info}", "expires_in": {expires_in}, "token_type": "Bearer"}}}}"#
    )
}

fn app_event(expires_in: i64) -> String {
    format!(
        r#"{{"client_id": "daemon", "scope": ["https://graph.microsoft.com/.default"],
        "token_endpoint": "https://login.microsoftonline.com/utid/oauth2/v2.0/token",
        "grant_type": "client_credentials",
        "response": {{"access_token": "APP-SECRET", "expires_in": {expires_in}}}}}"#
    )
}

fn base64_url(s: &str) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let b = s.as_bytes();
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..=c.len() {
            out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

fn cache_with(events: &[String]) -> TokenCache {
    let c = TokenCache::new();
    for e in events {
        c.add_json(e, Some(NOW)).unwrap();
    }
    c
}

#[test]
fn every_vector_inventories_without_secrets() {
    for name in common::vector_files() {
        let text = common::read(&name);
        let Ok((cache, inv)) = Inventory::parse(&text, NOW) else { continue };
        assert_eq!(inv.entries.len(), cache.len(), "{name}");
        let shown = format!("{inv:?}");
        for ct in CredentialType::ALL {
            for e in cache.search_keeping_expired(ct, &[], None, Some(0)) {
                if let Some(s) = e.secret().filter(|s| s.len() > 8) {
                    assert!(!shown.contains(s.as_ref()), "{name}: a secret leaked into the inventory");
                }
            }
        }
    }
}

#[test]
fn msal_python_vectors_are_healthy_at_their_time() {
    for name in ["msal_python_user_signin.json", "msal_python_combined.json", "msal_python_client_credentials.json"] {
        let d = diagnose_text(&common::read(name), &Thresholds::default(), NOW);
        assert!(d.is_healthy(), "{name}: {:#?}", d.findings);
        assert!(d.checks.contains(&Check::RefreshTokens));
    }
    // Later, their access tokens have expired: worth knowing, not wrong.
    let d = diagnose_text(&common::read("msal_python_user_signin.json"), &Thresholds::default(), NOW + 86_400);
    let f = d.findings_of(Check::ExpiredTokens).next().expect("expired tokens reported");
    assert_eq!(f.severity, Severity::Info);
    assert!(d.is_healthy());
}

#[test]
fn foreign_formats_are_named_with_their_fix() {
    let dict = common::read("dotnet__cachecompat_dotnet_dictionary.bin");
    let d = diagnose_text(&dict, &Thresholds::default(), NOW);
    let f = d.findings_of(Check::Format).next().unwrap();
    assert_eq!(f.severity, Severity::Error);
    assert!(f.message.contains("MSAL.NET 2.x") && f.fix.contains("SerializeMsalV3"), "{f:?}");

    let d = diagnose_text(&common::read("msaljs__cacheStore.json"), &Thresholds::default(), NOW);
    let f = d.findings_of(Check::Format).next().unwrap();
    assert!(f.message.contains("msal-common") && f.fix.contains("msal-node"), "{f:?}");

    let d = diagnose_text("{\n  \"AccessToken\": {\n    \"k\": {\"a\" 1}\n  }\n}", &Thresholds::default(), NOW);
    let f = d.findings_of(Check::Format).next().unwrap();
    assert!(f.message.contains("line 3, column"), "{f:?}");
}

#[test]
fn entry_problems_are_found() {
    // msal Go's test file has a bogus entry in AccessToken.
    let d = diagnose_text(&common::read("msalgo__test_serialized_cache.json"), &Thresholds::default(), NOW);
    let f = d.findings_of(Check::RequiredFields).next().expect("the bogus entry is reported");
    assert!(f.subjects.iter().any(|s| s.contains("an-entry")), "{f:?}");

    let rt_gone = r#"{"Account": {"uid.utid-login.microsoftonline.com-utid": {"home_account_id": "uid.utid",
        "environment": "login.microsoftonline.com", "realm": "utid", "username": "a@contoso.com",
        "authority_type": "MSSTS"}}, "AccessToken": {"x": null},
        "IdToken": {"i": {"credential_type": "IdToken", "home_account_id": "uid.utid", "environment": "login.microsoftonline.com",
        "client_id": "app", "realm": "utid", "secret": "e30", "cached_at": "1800000000"}}}"#;
    let d = diagnose_text(rt_gone, &Thresholds::default(), NOW);
    assert!(!d.is_healthy());
    let no_rt = d.findings_of(Check::RefreshTokens).next().unwrap();
    assert!(no_rt.subjects[0].contains("a@contoso.com"));
    assert_eq!(d.findings_of(Check::EntryShape).count(), 1);
    assert_eq!(d.findings_of(Check::ClockSkew).count(), 1);
}

#[test]
fn oversized_partitions_by_thresholds() {
    let events: Vec<String> = (0..30).map(|_| app_event(3600)).collect();
    let c = cache_with(&events);
    let mut scoped = Vec::new();
    for i in 0..30 {
        scoped.push(format!(
            r#"{{"client_id": "daemon", "scope": ["api://r{i}/.default"], "grant_type": "client_credentials",
            "token_endpoint": "https://login.microsoftonline.com/utid/oauth2/v2.0/token",
            "response": {{"access_token": "A", "expires_in": 3600}}}}"#
        ));
    }
    for e in &scoped {
        c.add_json(e, Some(NOW)).unwrap();
    }
    let text = c.serialize();
    let small = Thresholds { partition_entries: 10, ..Default::default() };
    let d = diagnose_text(&text, &small, NOW);
    let f = d.findings_of(Check::PartitionSize).next().expect("oversized");
    assert!(f.subjects[0].starts_with("daemon_utid_AppTokenCache"), "{f:?}");
    assert!(diagnose_text(&text, &Thresholds::default(), NOW).findings_of(Check::PartitionSize).next().is_none());
}

#[test]
fn files_missing_locked_loose_and_damaged() {
    let dir = TempDir::new("files");
    let path = dir.0.join("msal_token_cache.json");
    let d = diagnose_file(&path, &Thresholds::default(), NOW);
    assert_eq!(d.findings[0].check, Check::FilePresent);
    assert!(!d.is_healthy());

    std::fs::write(&path, "{\"AccessToken\": {").unwrap();
    let mut lock = path.clone().into_os_string();
    lock.push(".lockfile");
    // A pid no process has (above the Linux maximum).
    std::fs::write(&lock, "4194999 az").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    std::fs::write(dir.0.join("msal_token_cache.json.corrupt-1690000000"), "x").unwrap();
    let d = diagnose_file(&path, &Thresholds::default(), NOW);
    let checks: Vec<Check> = d.findings.iter().map(|f| f.check).collect();
    assert!(checks.contains(&Check::Format) && checks.contains(&Check::Leftovers), "{checks:?}");
    let lockf = d.findings_of(Check::LockFile).next().unwrap();
    if cfg!(target_os = "linux") {
        assert!(lockf.message.contains("no longer running") && lockf.message.contains("pid 4194999 (az)"), "{lockf:?}");
        assert!(lockf.fix.starts_with("delete"));
    }
    #[cfg(unix)]
    assert!(d.findings_of(Check::FilePermissions).next().is_some());

    // Our own pid: alive, just taken.
    std::fs::write(&lock, format!("{} me", std::process::id())).unwrap();
    let d = diagnose_file(&path, &Thresholds::default(), NOW);
    assert_eq!(d.findings_of(Check::LockFile).next().unwrap().severity, Severity::Info);
}

#[test]
fn purging_a_file_keeps_the_rest() {
    let dir = TempDir::new("purge");
    let path = dir.0.join("cache.json");
    let c = cache_with(&[user_event("u1", 600), app_event(7200)]);
    std::fs::write(&path, c.serialize()).unwrap();
    let r = purge_file(&path, NOW + 3600, LockOptions::default()).unwrap();
    assert_eq!(r.expired_access_tokens, 1);
    let (_, inv) = Inventory::parse(&std::fs::read_to_string(&path).unwrap(), NOW + 3600).unwrap();
    assert_eq!(inv.of_type(CredentialType::AccessToken).count(), 1);
    assert_eq!(inv.of_type(CredentialType::RefreshToken).count(), 1);
    // Nothing left to purge: the file is not rewritten.
    let before = std::fs::metadata(&path).unwrap().modified().unwrap();
    assert_eq!(purge_file(&path, NOW + 3600, LockOptions::default()).unwrap().expired_access_tokens, 0);
    assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), before);
    // A damaged file is left as it is.
    std::fs::write(&path, "{").unwrap();
    let e = purge_file(&path, NOW, LockOptions::default()).unwrap_err();
    assert!(e.message().contains("line 1"), "{e:?}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "{");
}

fn sqlite(now: i64) -> SqliteStore {
    SqliteStore::open_in_memory(SqliteOptions { clock: std::sync::Arc::new(move || now), ..Default::default() })
        .unwrap()
}

#[test]
fn file_to_encrypted_store_and_back() {
    let dir = TempDir::new("copy");
    let src = dir.0.join("src.json");
    let c = cache_with(&[user_event("u1", 3600), user_event("u2", 3600), app_event(3600)]);
    std::fs::write(&src, c.serialize()).unwrap();
    let ring = KeyRing::new(EncryptionKey::generate().unwrap());
    let db = sqlite(NOW);
    let r = copy(&Endpoint::File(&src), &Endpoint::Store { store: &db, ring: Some(&ring) }, NOW, false, &mut |_, _| {})
        .unwrap();
    assert_eq!((r.partitions, r.skipped.len()), (3, 0));
    assert_eq!(db.keys().unwrap().len(), 3);
    // The app partition holds no refresh token: it expires with its token.
    let app = db.peek("daemon_utid_AppTokenCache").unwrap().unwrap();
    assert_eq!(app.expires_at, Some(NOW + 3600));
    assert!(!String::from_utf8_lossy(&app.value).contains("APP-SECRET"));

    // Without the key: sealed, reported, not readable.
    let scan = scan_store(&db, None, NOW, &mut |_, _| {}).unwrap();
    assert!(scan.blobs.iter().all(|b| b.content == BlobContent::Sealed));
    let d = diagnose_blobs(&scan, false, &Thresholds::default(), NOW);
    assert!(d.is_healthy(), "{:#?}", d.findings);
    assert!(d.findings_of(Check::Encryption).next().is_some());

    // With another key: a key mismatch.
    let other = KeyRing::new(EncryptionKey::generate().unwrap());
    let scan = scan_store(&db, Some(&other), NOW, &mut |_, _| {}).unwrap();
    let d = diagnose_blobs(&scan, true, &Thresholds::default(), NOW);
    let f = d.findings_of(Check::Encryption).next().unwrap();
    assert_eq!(f.severity, Severity::Error);
    assert!(f.message.contains("not in the given key ring") && f.subjects.len() == 3, "{f:?}");

    // Back to a file with the right key: the same entries.
    let back = dir.0.join("back.json");
    let r =
        copy(&Endpoint::Store { store: &db, ring: Some(&ring) }, &Endpoint::File(&back), NOW, false, &mut |_, _| {})
            .unwrap();
    assert_eq!(r.partitions, 3, "{r:?}");
    let (_, a) = Inventory::parse(&std::fs::read_to_string(&src).unwrap(), NOW).unwrap();
    let (_, b) = Inventory::parse(&std::fs::read_to_string(&back).unwrap(), NOW).unwrap();
    assert_eq!(a.entries.len(), b.entries.len());
    // A destination holding a cache is not written over unless asked.
    assert!(copy(&Endpoint::File(&src), &Endpoint::File(&back), NOW, false, &mut |_, _| {}).is_err());
    assert!(copy(&Endpoint::File(&src), &Endpoint::File(&back), NOW, true, &mut |_, _| {}).is_ok());
}

#[test]
fn purging_a_store_rewrites_sealed_blobs_with_their_expiry() {
    let ring = KeyRing::new(EncryptionKey::generate().unwrap());
    let db = sqlite(NOW + 7200);
    let c = cache_with(&[user_event("u1", 3600)]);
    let sealed = ring.encrypt("uid.utid", c.serialize_partition("u1.utid").as_bytes()).unwrap();
    db.set(
        "u1.utid",
        Bytes::from(ring.encrypt("u1.utid", c.serialize_partition("u1.utid").as_bytes()).unwrap()),
        Expiry::NEVER,
    )
    .unwrap();
    db.set("bad", Bytes::from_static(b"{"), Expiry::NEVER).unwrap();
    let _ = sealed;
    let without_key = purge_store(&db, None, NOW + 7200, &mut |_, _| {}).unwrap();
    assert_eq!(without_key.expired_access_tokens, 0);
    assert_eq!(without_key.skipped.len(), 2);
    let r = purge_store(&db, Some(&ring), NOW + 7200, &mut |_, _| {}).unwrap();
    assert_eq!((r.expired_access_tokens, r.blobs_rewritten), (1, 1));
    let stored = db.peek("u1.utid").unwrap().unwrap();
    assert_eq!(stored.expires_at, None);
    let plain = ring.decrypt("u1.utid", &stored.value).unwrap();
    let (_, inv) = Inventory::parse(std::str::from_utf8(&plain).unwrap(), NOW).unwrap();
    assert_eq!(inv.of_type(CredentialType::AccessToken).count(), 0);
    assert_eq!(inv.of_type(CredentialType::RefreshToken).count(), 1);

    let scan = scan_store(&db, Some(&ring), NOW + 7200, &mut |_, _| {}).unwrap();
    let d = diagnose_blobs(&scan, true, &Thresholds::default(), NOW + 7200);
    let f = d.findings_of(Check::BlobFormat).next().unwrap();
    assert!(f.subjects[0].starts_with("bad (invalid_json at line 1"), "{f:?}");
}

#[test]
fn a_deserialized_cache_knows_its_partitions() {
    let c = cache_with(&[user_event("u1", 3600), app_event(3600)]);
    let t = TokenCache::new();
    t.deserialize(&c.serialize()).unwrap();
    assert_eq!(t.serialize_partition("u1.utid"), c.serialize_partition("u1.utid"));
    assert_eq!(t.suggested_expiry("daemon_utid_AppTokenCache", Some(NOW)), Some(NOW + 3600));
}

//! CacheProvider over a store: load before access, write back only on change, with
//! the suggested expiry; empty partitions are removed; bad blobs are handled.

use std::sync::Arc;

use bytes::Bytes;
use tokencache::store::{Expiry, MemoryStore, Store};
use tokencache::{CacheProvider, CredentialType, ErrorKind, OnBadBlob, ProviderOptions};

fn app_event(tenant: &str, expires_in: i64) -> String {
    format!(
        r#"{{"client_id": "daemon", "scope": ["s"], "environment": "login.microsoftonline.com",
        "token_endpoint": "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token",
        "response": {{"access_token": "secret-{tenant}", "expires_in": {expires_in}}}}}"#
    )
}

#[test]
fn load_use_save_round_trip() {
    let store = Arc::new(MemoryStore::default());
    let provider = CacheProvider::new(store.clone());
    let key = "daemon_t1_AppTokenCache";
    let p = provider.load(key).unwrap();
    assert!(p.is_empty());
    p.add_json(&app_event("t1", 3600), None).unwrap();
    p.save().unwrap();
    assert_eq!(provider.stats().writes, 1);
    let blob = store.get(key).unwrap().expect("written");
    assert!(std::str::from_utf8(&blob).unwrap().contains("secret-t1"));

    // A read-only access writes nothing.
    let p = provider.load(key).unwrap();
    assert_eq!(p.search(CredentialType::AccessToken, &["s"], None, None).len(), 1);
    p.save().unwrap();
    assert_eq!(provider.stats().writes, 1);
    assert_eq!(provider.stats().hits, 1);

    // Removing the last token removes the partition from the store.
    provider
        .with_partition(key, |c| {
            let at = c.search(CredentialType::AccessToken, &[], None, None).remove(0);
            c.remove_at(&at).unwrap();
            let meta = c.search(CredentialType::AppMetadata, &[], None, None).remove(0);
            c.modify(CredentialType::AppMetadata, &meta, None).unwrap();
        })
        .unwrap();
    assert!(store.get(key).unwrap().is_none());
    assert_eq!(provider.stats().removals, 1);
}

/// A store that records the expiry it was given.
#[derive(Default)]
struct Recording(parking_lot::Mutex<Vec<(String, Expiry)>>);

impl Store for Recording {
    fn get(&self, _: &str) -> tokencache::Result<Option<Bytes>> {
        Ok(None)
    }
    fn set(&self, key: &str, _: Bytes, expiry: Expiry) -> tokencache::Result<()> {
        self.0.lock().push((key.into(), expiry));
        Ok(())
    }
    fn remove(&self, _: &str) -> tokencache::Result<()> {
        Ok(())
    }
    fn purge_expired(&self) -> tokencache::Result<u64> {
        Ok(0)
    }
}

#[test]
fn writes_carry_the_suggested_expiry() {
    let provider = CacheProvider::with_options(
        Recording::default(),
        ProviderOptions { sliding_expiration_secs: Some(900), ..Default::default() },
    );
    let now = tokencache::unix_now();
    provider
        .with_partition("daemon_t1_AppTokenCache", |c| c.add_json(&app_event("t1", 3600), Some(now)).unwrap())
        .unwrap();
    let recorded = provider.store().0.lock().clone();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].1, Expiry { absolute: Some(now + 3600), sliding_secs: Some(900) });
}

#[test]
fn the_expiry_of_a_blob_is_its_tokens_whatever_its_key() {
    // The key is the application's: here not a partition key, and the blob holds two
    // tenants' app tokens. It expires with the later one; one with a refresh token
    // does not expire.
    let provider = CacheProvider::new(Recording::default());
    let now = tokencache::unix_now();
    provider
        .with_partition("session-42", |c| {
            c.add_json(&app_event("t1", 3600), Some(now)).unwrap();
            c.add_json(&app_event("t2", 7200), Some(now)).unwrap();
        })
        .unwrap();
    let user = r#"{"client_id": "app", "scope": ["s"], "environment": "login.microsoftonline.com",
        "token_endpoint": "https://login.microsoftonline.com/t1/oauth2/v2.0/token",
        "response": {"access_token": "at", "refresh_token": "rt", "expires_in": 3600,
                     "client_info": "eyJ1aWQiOiJ1IiwidXRpZCI6InQxIn0"}}"#;
    provider.with_partition("session-43", |c| c.add_json(user, Some(now)).unwrap()).unwrap();
    let recorded = provider.store().0.lock().clone();
    assert_eq!(
        recorded,
        [
            ("session-42".to_owned(), Expiry { absolute: Some(now + 7200), sliding_secs: None }),
            ("session-43".to_owned(), Expiry { absolute: None, sliding_secs: None }),
        ]
    );
}

#[test]
fn bad_blobs_are_a_miss_or_an_error_by_option() {
    let store = Arc::new(MemoryStore::default());
    store.set("k", Bytes::from_static(b"[not a cache"), Expiry::NEVER).unwrap();
    let lenient = CacheProvider::new(store.clone());
    assert!(lenient.load("k").unwrap().is_empty());
    assert_eq!(lenient.stats().bad_blobs, 1);
    let strict =
        CacheProvider::with_options(store, ProviderOptions { on_bad_blob: OnBadBlob::Fail, ..Default::default() });
    assert_eq!(strict.load("k").err().map(|e| e.kind()), Some(ErrorKind::InvalidJson));
}

#[test]
fn a_shared_partition_keeps_its_provider_alive_and_knows_where_it_came_from() {
    let store = Arc::new(MemoryStore::default());
    let provider = Arc::new(CacheProvider::new(store.clone()));
    let other = Arc::new(CacheProvider::new(store.clone()));
    let key = "daemon_t1_AppTokenCache";
    let p = provider.load_shared(key).unwrap();
    assert!(provider.owns(&p) && !other.owns(&p));
    let stats = Arc::downgrade(&provider);
    drop(provider); // the partition holds it now
    assert!(stats.upgrade().is_some());
    p.add_json(&app_event("t1", 3600), None).unwrap();
    p.save().unwrap();
    assert!(stats.upgrade().is_none(), "released with its last partition");
    assert!(std::str::from_utf8(&store.get(key).unwrap().expect("written")).unwrap().contains("secret-t1"));
}

/// A store whose writes fail while `down` is set (a real store can't fail on demand).
#[cfg(feature = "sqlite")]
#[derive(Default)]
struct Flaky {
    inner: MemoryStore,
    down: std::sync::atomic::AtomicBool,
}

#[cfg(feature = "sqlite")]
impl Store for Flaky {
    fn get(&self, key: &str) -> tokencache::Result<Option<Bytes>> {
        self.inner.get(key)
    }
    fn set(&self, key: &str, value: Bytes, expiry: Expiry) -> tokencache::Result<()> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            // A real store's error: a SQLite file that can't be created.
            return Err(tokencache::store::SqliteStore::open("/nonexistent-tokencache-dir/x.db").unwrap_err());
        }
        self.inner.set(key, value, expiry)
    }
    fn remove(&self, key: &str) -> tokencache::Result<()> {
        self.inner.remove(key)
    }
    fn purge_expired(&self) -> tokencache::Result<u64> {
        self.inner.purge_expired()
    }
}

#[cfg(feature = "sqlite")]
#[test]
fn a_failed_try_save_keeps_the_partition_for_another_try() {
    let store = Arc::new(Flaky::default());
    let provider = CacheProvider::new(store.clone());
    let key = "daemon_t1_AppTokenCache";
    let mut p = provider.load(key).unwrap();
    p.add_json(&app_event("t1", 3600), None).unwrap();
    store.down.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(p.try_save().is_err());
    assert!(store.get(key).unwrap().is_none());
    assert_eq!(p.search(CredentialType::AccessToken, &["s"], None, None).len(), 1, "the token is still there");
    store.down.store(false, std::sync::atomic::Ordering::SeqCst);
    p.try_save().unwrap();
    assert!(std::str::from_utf8(&store.get(key).unwrap().expect("written")).unwrap().contains("secret-t1"));
    assert_eq!(provider.stats().writes, 1);
}

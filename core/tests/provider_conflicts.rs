//! CacheProvider over a versioned store: saves are compare-and-set at the version
//! loaded; a conflict merges this side's changes onto the newer copy and retries.

mod stores_versioned_support;

use std::sync::Arc;

use bytes::Bytes;
use stores_versioned_support::{PARTITION, at_event, check, concurrent, interleaved, tokens};
use tokencache::store::{CasOutcome, Expiry, MemoryStore, Store, Version, VersionedBlob, VersionedStore};
use tokencache::{CacheProvider, CredentialType, ErrorKind, Result};

fn seed(provider: &CacheProvider<Arc<MemoryStore>>, scopes: &[&str]) {
    let p = provider.load(PARTITION).unwrap();
    for s in scopes {
        p.add_json(&at_event(s, &format!("secret-{s}")), None).unwrap();
    }
    p.save().unwrap();
}

fn remove(cache: &tokencache::TokenCache, scope: &str) {
    let found = cache.search(CredentialType::AccessToken, &[scope], None, None);
    cache.remove_at(&found[0]).unwrap();
}

#[test]
fn concurrent_saves_keep_both_sides_tokens() {
    let store = Arc::new(MemoryStore::default());
    let (a, b) = (CacheProvider::new(store.clone()), CacheProvider::new(store.clone()));
    assert!(a.is_conflict_safe());
    seed(&a, &["old"]);
    let ca = a.load(PARTITION).unwrap();
    let cb = b.load(PARTITION).unwrap();
    ca.add_json(&at_event("a", "secret-a"), None).unwrap();
    cb.add_json(&at_event("b", "secret-b"), None).unwrap();
    ca.save().unwrap();
    cb.save().unwrap();
    let now = a.load(PARTITION).unwrap();
    assert_eq!(tokens(&now).keys().collect::<Vec<_>>(), ["a", "b", "old"]);
    let s = b.stats();
    assert_eq!((s.conflicts, s.merges, s.retries, s.writes), (1, 1, 1, 1));
    assert_eq!(a.stats().conflicts, 0);
    // The merged blob is a cache msal reads: it parses, and only as a whole document.
    let blob = store.get(PARTITION).unwrap().unwrap();
    let text = std::str::from_utf8(&blob).unwrap();
    assert!(text.starts_with("{\n    \"AccessToken\": {"), "msal Python's layout");
    // Byte for byte what msal Python's serialize() writes for that cache.
    let again = tokencache::TokenCache::new();
    again.deserialize(text).unwrap();
    assert_eq!(again.serialize(), text);
}

#[test]
fn a_removal_is_not_undone_by_a_stale_copy() {
    let store = Arc::new(MemoryStore::default());
    let (a, b) = (CacheProvider::new(store.clone()), CacheProvider::new(store.clone()));
    seed(&a, &["x", "keep"]);
    let ca = a.load(PARTITION).unwrap();
    let cb = b.load(PARTITION).unwrap(); // still holds x
    remove(&ca, "x");
    ca.save().unwrap();
    cb.add_json(&at_event("y", "secret-y"), None).unwrap();
    cb.save().unwrap();
    assert_eq!(tokens(&a.load(PARTITION).unwrap()).keys().collect::<Vec<_>>(), ["keep", "y"]);
}

#[test]
fn an_emptied_partition_keeps_what_others_added() {
    let store = Arc::new(MemoryStore::default());
    let (a, b) = (CacheProvider::new(store.clone()), CacheProvider::new(store.clone()));
    seed(&a, &["x"]);
    let ca = a.load(PARTITION).unwrap();
    let cb = b.load(PARTITION).unwrap();
    remove(&ca, "x");
    let meta = ca.search(CredentialType::AppMetadata, &[], None, None);
    for m in &meta {
        ca.modify(CredentialType::AppMetadata, m, None).unwrap();
    }
    assert!(ca.is_empty());
    cb.add_json(&at_event("y", "secret-y"), None).unwrap();
    cb.save().unwrap();
    ca.save().unwrap(); // compare-and-remove conflicts; the merge leaves y
    assert_eq!(tokens(&b.load(PARTITION).unwrap()).keys().collect::<Vec<_>>(), ["y"]);
    assert_eq!(a.stats().conflicts, 1);
    assert_eq!(a.stats().removals, 0);

    // Without a concurrent writer, emptying it removes the key.
    let c = a.load(PARTITION).unwrap();
    remove(&c, "y");
    for m in &c.search(CredentialType::AppMetadata, &[], None, None) {
        c.modify(CredentialType::AppMetadata, m, None).unwrap();
    }
    c.save().unwrap();
    assert!(store.get(PARTITION).unwrap().is_none());
    assert_eq!(a.stats().removals, 1);
}

#[test]
fn a_thousand_interleaved_updates_lose_nothing() {
    let store = Arc::new(MemoryStore::default());
    let (a, b) = (CacheProvider::new(store.clone()), CacheProvider::new(store.clone()));
    let (ma, mb) = interleaved(&a, &b, 1000, 7);
    check(&tokens(&a.load(PARTITION).unwrap()), &[&ma, &mb]);
    let (sa, sb) = (a.stats(), b.stats());
    assert!(sa.conflicts + sb.conflicts > 50, "the interleaving makes stale copies: {sa:?} {sb:?}");
    assert!(!ma.removed.is_empty() && !mb.removed.is_empty());
    assert!(ma.shared.len() + mb.shared.len() > 10);
}

#[test]
fn two_threads_lose_nothing() {
    let store = Arc::new(MemoryStore::default());
    let (a, b) = (CacheProvider::new(store.clone()), CacheProvider::new(store.clone()));
    let (ma, mb) = concurrent(&a, &b, 300);
    check(&tokens(&a.load(PARTITION).unwrap()), &[&ma, &mb]);
    eprintln!("two threads on a MemoryStore: {:?} {:?}", a.stats(), b.stats());
}

/// Passes through everything but the versions: a store without `as_versioned`.
struct Plain(Arc<MemoryStore>);

impl Store for Plain {
    fn get(&self, key: &str) -> Result<Option<Bytes>> {
        self.0.get(key)
    }
    fn set(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<()> {
        self.0.set(key, value, expiry)
    }
    fn remove(&self, key: &str) -> Result<()> {
        self.0.remove(key)
    }
    fn purge_expired(&self) -> Result<u64> {
        self.0.purge_expired()
    }
}

#[test]
fn a_store_without_versions_keeps_last_writer_wins() {
    let store = Arc::new(MemoryStore::default());
    let (a, b) = (CacheProvider::new(Plain(store.clone())), CacheProvider::new(Plain(store.clone())));
    assert!(!a.is_conflict_safe());
    let ca = a.load(PARTITION).unwrap();
    let cb = b.load(PARTITION).unwrap();
    ca.add_json(&at_event("a", "secret-a"), None).unwrap();
    cb.add_json(&at_event("b", "secret-b"), None).unwrap();
    ca.save().unwrap();
    cb.save().unwrap();
    assert_eq!(tokens(&a.load(PARTITION).unwrap()).keys().collect::<Vec<_>>(), ["b"]);
    assert_eq!(b.stats().conflicts, 0);
}

/// A store someone else writes between every read and write: every conditional
/// write conflicts (a fault no real store produces on demand).
struct AlwaysBusy(MemoryStore);

impl Store for AlwaysBusy {
    fn get(&self, key: &str) -> Result<Option<Bytes>> {
        self.0.get(key)
    }
    fn set(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<()> {
        self.0.set(key, value, expiry)
    }
    fn remove(&self, key: &str) -> Result<()> {
        self.0.remove(key)
    }
    fn purge_expired(&self) -> Result<u64> {
        self.0.purge_expired()
    }
    fn as_versioned(&self) -> Option<&dyn VersionedStore> {
        Some(self)
    }
}

impl VersionedStore for AlwaysBusy {
    fn get_versioned(&self, key: &str) -> Result<Option<VersionedBlob>> {
        self.0.get_versioned(key)
    }
    fn version(&self, key: &str) -> Result<Option<Version>> {
        self.0.version(key)
    }
    fn compare_and_set(&self, _: &str, _: Option<Version>, _: Bytes, _: Expiry) -> Result<CasOutcome> {
        Ok(CasOutcome::Conflict)
    }
    fn compare_and_remove(&self, _: &str, _: Version) -> Result<bool> {
        Ok(false)
    }
}

#[test]
fn endless_conflicts_fail_the_save_after_the_retries() {
    let p = CacheProvider::new(AlwaysBusy(MemoryStore::default())).with_max_merge_retries(3);
    let c = p.load(PARTITION).unwrap();
    c.add_json(&at_event("a", "secret-a"), None).unwrap();
    let e = c.save().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::LockTimeout);
    assert!(!e.to_string().contains("secret-a"));
    let s = p.stats();
    assert_eq!((s.conflicts, s.retries, s.writes), (4, 3, 0));
}

#[test]
fn versions_change_on_every_write_and_never_repeat() {
    let s = MemoryStore::default();
    let v1 = match s.compare_and_set("k", None, Bytes::from_static(b"1"), Expiry::NEVER).unwrap() {
        CasOutcome::Written(v) => v,
        CasOutcome::Conflict => panic!("absent key"),
    };
    assert_eq!(s.compare_and_set("k", None, Bytes::from_static(b"x"), Expiry::NEVER).unwrap(), CasOutcome::Conflict);
    s.set("k", Bytes::from_static(b"2"), Expiry::NEVER).unwrap();
    let v2 = s.version("k").unwrap().unwrap();
    assert_ne!(v1, v2, "a plain set is a new version too");
    assert_eq!(
        s.compare_and_set("k", Some(v1), Bytes::from_static(b"x"), Expiry::NEVER).unwrap(),
        CasOutcome::Conflict
    );
    assert!(!s.compare_and_remove("k", v1).unwrap());
    assert!(s.compare_and_remove("k", v2).unwrap());
    assert_eq!(s.version("k").unwrap(), None);
    // Written again after removal: a version the earlier reader cannot match.
    s.set("k", Bytes::from_static(b"3"), Expiry::NEVER).unwrap();
    assert!(![v1, v2].contains(&s.get_versioned("k").unwrap().unwrap().version));
    assert_eq!(s.get("k").unwrap().as_deref(), Some(&b"3"[..]));
}

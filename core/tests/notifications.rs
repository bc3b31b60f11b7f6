//! Before/after-access notifications: what they report, and that an observer may
//! call back into the cache (no lock is held while it runs).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use tokencache::json::{Map, Value};
use tokencache::{AccessEvent, AccessObserver, CredentialType, Operation, TokenCache};

const NOW: i64 = 1_700_000_000;

struct Recorder {
    cache: Mutex<Weak<TokenCache>>,
    /// Re-entrant calls notify too; only the outermost call re-enters again.
    depth: AtomicUsize,
    seen: Mutex<Vec<(&'static str, AccessEvent, usize)>>,
}

impl AccessObserver for Recorder {
    fn before_access(&self, e: &AccessEvent) {
        // Re-enter the cache from inside the callback: must not deadlock.
        let n = self.cache.lock().unwrap().upgrade().map_or(0, |c| c.len());
        self.seen.lock().unwrap().push(("before", e.clone(), n));
    }
    fn after_access(&self, e: &AccessEvent) {
        let cache = self.cache.lock().unwrap().upgrade();
        let n = cache.map_or(0, |c| {
            if self.depth.fetch_add(1, Ordering::SeqCst) == 0 {
                let _ = c.search(CredentialType::AppMetadata, &[], None, Some(NOW));
            }
            self.depth.fetch_sub(1, Ordering::SeqCst);
            c.len()
        });
        self.seen.lock().unwrap().push(("after", e.clone(), n));
    }
}

fn event(tenant: &str) -> Map {
    let text = format!(
        r#"{{"client_id": "daemon", "scope": ["s"], "environment": "login.microsoftonline.com",
        "token_endpoint": "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token",
        "response": {{"access_token": "secret", "expires_in": 3600}}}}"#
    );
    match tokencache::json::parse(&text).unwrap() {
        Value::Object(m) => m,
        _ => unreachable!(),
    }
}

#[test]
fn observers_see_partition_and_expiry_and_may_reenter() {
    let cache = Arc::new(TokenCache::new());
    let rec = Arc::new(Recorder {
        cache: Mutex::new(Arc::downgrade(&cache)),
        depth: AtomicUsize::new(0),
        seen: Mutex::new(Vec::new()),
    });
    cache.set_observer(Some(rec.clone()));
    cache.add(&event("t1"), Some(NOW)).unwrap();
    let mut q = Map::new();
    q.insert("client_id", "daemon".into());
    q.insert("realm", "t1".into());
    q.insert("home_account_id", Value::Null);
    assert_eq!(cache.search(CredentialType::AccessToken, &["s"], Some(&q), Some(NOW)).len(), 1);
    let _ = cache.serialize();

    let seen = rec.seen.lock().unwrap().clone();
    // The observer's own search inside after_access is notified too (re-entrant), so
    // look at the outer calls by operation.
    let add: Vec<_> = seen.iter().filter(|(_, e, _)| e.operation == Operation::Add).collect();
    assert_eq!(add.len(), 2);
    assert_eq!(add[0].0, "before");
    assert_eq!(add[0].2, 0, "before_access runs before the write");
    assert_eq!(add[1].2, 2, "after_access runs after it (AT + app metadata)");
    assert_eq!(add[1].1.partition_key.as_deref(), Some("daemon_t1_AppTokenCache"));
    assert!(add[1].1.has_state_changed);
    assert!(add[1].1.suggested_expiry.is_some_and(|e| e > NOW));

    let search: Vec<_> = seen
        .iter()
        .filter(|(_, e, _)| e.operation == Operation::Search && e.credential_type == Some(CredentialType::AccessToken))
        .collect();
    assert_eq!(search.len(), 2);
    assert_eq!(search[0].1.partition_key.as_deref(), Some("daemon_t1_AppTokenCache"));

    let ser: Vec<_> = seen.iter().filter(|(_, e, _)| e.operation == Operation::Serialize).collect();
    assert_eq!(ser.len(), 2);
    assert!(!ser[1].1.has_state_changed, "serialize clears the flag");

    cache.set_observer(None);
    let before = rec.seen.lock().unwrap().len();
    cache.add(&event("t2"), Some(NOW)).unwrap();
    assert_eq!(rec.seen.lock().unwrap().len(), before, "removed observers are not called");
}

//! EncryptedStore: key rotation, foreign keys, blobs moved between partitions,
//! tampering, keys from bytes / env / file, no key bytes anywhere they could leak;
//! over MemoryStore, a real SQLite file and (with TOKENCACHE_REDIS_URL) real Redis.
#![cfg(feature = "encryption")]

mod stores_support;

use bytes::Bytes;
use stores_support::ScratchDir;
use tokencache::ErrorKind;
use tokencache::store::{
    EncryptedStore, EncryptionKey, EncryptionOptions, EncryptionStats, Expiry, KeyRing, MemoryStore, Store,
};

const PARTITION_JSON: &[u8] = br#"{"AccessToken": {"k": {"secret": "at-secret-value"}}}"#;

fn key(byte: u8) -> EncryptionKey {
    EncryptionKey::from_bytes(&[byte; 32]).unwrap()
}

#[test]
fn round_trip_and_nothing_readable_at_rest() {
    let inner = MemoryStore::default();
    let s = EncryptedStore::new(inner, KeyRing::new(key(1)));
    s.set("alice", Bytes::from_static(PARTITION_JSON), Expiry::NEVER).unwrap();
    assert_eq!(s.get("alice").unwrap().as_deref(), Some(PARTITION_JSON));
    let stored = s.inner().get("alice").unwrap().unwrap();
    assert!(stored.starts_with(b"TCE\x01"), "magic first");
    assert!(!stored.windows(15).any(|w| w == b"at-secret-value"), "ciphertext only");
    assert_eq!(&stored[4..12], &key(1).id().bytes(), "key id after the magic");
    s.set("alice", Bytes::from_static(PARTITION_JSON), Expiry::NEVER).unwrap();
    assert_ne!(s.inner().get("alice").unwrap().unwrap(), stored, "a fresh nonce per write");
    assert_eq!(s.get("nobody").unwrap(), None);
}

#[test]
fn rotation_old_blobs_stay_readable_after_a_new_primary() {
    let inner = std::sync::Arc::new(MemoryStore::default());
    let v1 = EncryptedStore::new(inner.clone(), KeyRing::new(key(1)));
    for i in 0..20 {
        v1.set(&format!("user{i}"), Bytes::from(format!("blob {i}")), Expiry::NEVER).unwrap();
    }
    // Key 2 becomes primary; key 1 stays for reading.
    let v2 = EncryptedStore::new(inner.clone(), KeyRing::new(key(2)).with_key(key(1)));
    for i in 0..20 {
        assert_eq!(v2.get(&format!("user{i}")).unwrap().as_deref(), Some(format!("blob {i}").as_bytes()));
    }
    v2.set("user0", Bytes::from_static(b"rewritten"), Expiry::NEVER).unwrap();
    let rewritten = inner.get("user0").unwrap().unwrap();
    assert_eq!(&rewritten[4..12], &key(2).id().bytes(), "new writes use the new primary");
    // A process still on key 1 alone cannot read what key 2 wrote: a typed KeyMismatch.
    let e = v1.get("user0").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::KeyMismatch, "{e:?}");
    assert!(e.message().contains(&key(2).id().to_string()), "names the missing key id: {e}");
    assert_eq!(v1.stats().key_mismatches, 1);
    // Rotation in place, without a new store.
    v1.set_key_ring(KeyRing::new(key(2)).with_key(key(1)));
    assert_eq!(v1.get("user0").unwrap().as_deref(), Some(&b"rewritten"[..]));
    assert_eq!(v1.key_ring().primary().id(), key(2).id());
}

#[test]
fn a_foreign_key_is_a_key_mismatch_or_a_counted_miss_when_configured() {
    let inner = std::sync::Arc::new(MemoryStore::default());
    let theirs = EncryptedStore::new(inner.clone(), KeyRing::new(EncryptionKey::generate().unwrap()));
    theirs.set("p", Bytes::from_static(b"x"), Expiry::NEVER).unwrap();
    let ours = EncryptedStore::new(inner.clone(), KeyRing::new(EncryptionKey::generate().unwrap()));
    assert_eq!(ours.get("p").unwrap_err().kind(), ErrorKind::KeyMismatch);
    assert_eq!(ours.get("p").unwrap_err().kind(), ErrorKind::KeyMismatch);
    assert_eq!(ours.stats(), EncryptionStats { key_mismatches: 2, ..Default::default() });
    let lenient = EncryptedStore::with_options(
        inner,
        KeyRing::new(EncryptionKey::generate().unwrap()),
        EncryptionOptions { key_mismatch_as_miss: true, ..Default::default() },
    );
    assert_eq!(lenient.get("p").unwrap(), None, "read as a miss");
    assert_eq!(lenient.stats().key_mismatches, 1, "and still counted");
}

#[test]
fn a_blob_moved_to_another_partition_fails_authentication() {
    let inner = std::sync::Arc::new(MemoryStore::default());
    let s = EncryptedStore::new(inner.clone(), KeyRing::new(key(7)));
    s.set("victim.tenant", Bytes::from_static(PARTITION_JSON), Expiry::NEVER).unwrap();
    // An attacker with write access to the store copies the victim's blob under their own key.
    let blob = inner.get("victim.tenant").unwrap().unwrap();
    inner.set("attacker.tenant", blob.clone(), Expiry::NEVER).unwrap();
    let e = s.get("attacker.tenant").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DecryptionFailed, "{e:?}");
    // Flipped bits, truncation, a plaintext blob: all DecryptionFailed.
    let mut flipped = blob.to_vec();
    flipped[30] ^= 0x40;
    inner.set("victim.tenant", Bytes::from(flipped), Expiry::NEVER).unwrap();
    assert_eq!(s.get("victim.tenant").unwrap_err().kind(), ErrorKind::DecryptionFailed);
    inner.set("victim.tenant", blob.slice(..blob.len() - 1), Expiry::NEVER).unwrap();
    assert_eq!(s.get("victim.tenant").unwrap_err().kind(), ErrorKind::DecryptionFailed);
    inner.set("victim.tenant", Bytes::from_static(PARTITION_JSON), Expiry::NEVER).unwrap();
    assert_eq!(s.get("victim.tenant").unwrap_err().kind(), ErrorKind::DecryptionFailed);
    assert_eq!(s.stats().decryption_failures, 4);
    // Opt-in migration from an unencrypted store passes plaintext through, counted.
    let migrating = EncryptedStore::with_options(
        inner,
        KeyRing::new(key(7)),
        EncryptionOptions { allow_unencrypted: true, ..Default::default() },
    );
    assert_eq!(migrating.get("victim.tenant").unwrap().as_deref(), Some(PARTITION_JSON));
    assert_eq!(migrating.stats().unencrypted_reads, 1);
}

const ENV_KEYS: &str = "TOKENCACHE_TEST_KEYS";

/// Runs in a child process with the variable set, so no test mutates its own
/// environment (`set_var` is unsafe with other threads running).
#[test]
fn keys_from_env() {
    if let Ok(expect) = std::env::var("TOKENCACHE_TEST_KEYS_EXPECT") {
        let ring = KeyRing::from_env(ENV_KEYS).unwrap();
        let ids: Vec<String> = ring.key_ids().iter().map(ToString::to_string).collect();
        assert_eq!(ids.join(","), expect);
        return;
    }
    let k1 = EncryptionKey::generate_text().unwrap();
    let k2 = EncryptionKey::generate_text().unwrap();
    let expect = format!("{},{}", EncryptionKey::parse(&k2).unwrap().id(), EncryptionKey::parse(&k1).unwrap().id());
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "keys_from_env", "--test-threads", "1"])
        .env(ENV_KEYS, format!(" {k2},\n{k1} "))
        .env("TOKENCACHE_TEST_KEYS_EXPECT", expect)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "primary first, then the others");
    let missing = KeyRing::from_env("TOKENCACHE_TEST_KEYS_UNSET_VARIABLE").unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::InvalidArgument);
    assert!(missing.message().contains("TOKENCACHE_TEST_KEYS_UNSET_VARIABLE"), "{missing}");
}

#[test]
fn keys_from_file_and_text() {
    let k1 = EncryptionKey::generate_text().unwrap();
    let k2 = EncryptionKey::generate_text().unwrap();
    let dir = ScratchDir::new("keys");
    let text = dir.join("keys.txt");
    std::fs::write(&text, format!("{k1}\n{k2}\n")).unwrap();
    assert_eq!(KeyRing::from_file(&text).unwrap().primary().id(), EncryptionKey::parse(&k1).unwrap().id());
    let raw = dir.join("key.bin");
    std::fs::write(&raw, [9u8; 32]).unwrap();
    assert_eq!(KeyRing::from_file(&raw).unwrap().primary().id(), key(9).id());
    let bad = dir.join("bad.txt");
    std::fs::write(&bad, "not-a-key-but-a-secret-looking-string").unwrap();
    let e = KeyRing::from_file(&bad).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert!(!format!("{e} {e:?}").contains("secret-looking"), "key file contents never in errors: {e:?}");
    assert_eq!(KeyRing::from_file(dir.join("absent")).unwrap_err().kind(), ErrorKind::Io);

    // Written with the file's ring, read with the same keys given as text.
    let inner = std::sync::Arc::new(MemoryStore::default());
    EncryptedStore::new(inner.clone(), KeyRing::from_file(&text).unwrap())
        .set("p", Bytes::from_static(b"hello"), Expiry::NEVER)
        .unwrap();
    let from_text = KeyRing::parse(&format!("{k2},{k1}")).unwrap();
    assert_eq!(EncryptedStore::new(inner, from_text).get("p").unwrap().as_deref(), Some(&b"hello"[..]));
}

#[test]
fn key_bytes_never_appear_in_debug_or_errors() {
    let text = EncryptionKey::generate_text().unwrap();
    let k = EncryptionKey::parse(&text).unwrap();
    let s = EncryptedStore::new(MemoryStore::default(), KeyRing::new(k.clone()));
    let shown = format!("{k:?} {:?} {s:?}", s.key_ring());
    assert!(!shown.contains(&text), "{shown}");
    assert!(shown.contains(&k.id().to_string()), "ids are shown: {shown}");
    let e = EncryptionKey::parse(&text[..text.len() - 4]).unwrap_err();
    assert!(!format!("{e:?}").contains(&text[..text.len() - 4]), "{e:?}");
}

#[cfg(feature = "sqlite")]
#[test]
fn over_a_sqlite_file() {
    use tokencache::store::SqliteStore;
    let dir = ScratchDir::new("enc-sqlite");
    let path = dir.join("cache.db");
    let s = EncryptedStore::new(SqliteStore::open(&path).unwrap(), KeyRing::new(key(3)));
    s.set("alice", Bytes::from_static(PARTITION_JSON), Expiry::NEVER).unwrap();
    drop(s);
    let file = std::fs::read(&path).unwrap();
    let wal = std::fs::read(dir.join("cache.db-wal")).unwrap_or_default();
    for bytes in [&file, &wal] {
        assert!(!bytes.windows(15).any(|w| w == b"at-secret-value"), "no plaintext on disk");
    }
    let s = EncryptedStore::new(SqliteStore::open(&path).unwrap(), KeyRing::new(key(4)).with_key(key(3)));
    assert_eq!(s.get("alice").unwrap().as_deref(), Some(PARTITION_JSON));
}

#[cfg(feature = "redis")]
#[test]
fn over_real_redis() {
    use redis::Commands;
    use stores_support::{redis_url, unique_prefix};
    use tokencache::store::{RedisOptions, RedisStore};
    let Some(url) = redis_url("over_real_redis") else { return };
    let redis =
        RedisStore::open(&url, RedisOptions { key_prefix: unique_prefix("enc"), ..Default::default() }).unwrap();
    let key_name = redis.key_for("alice");
    let s = EncryptedStore::new(redis, KeyRing::new(key(5)));
    s.set("alice", Bytes::from_static(PARTITION_JSON), Expiry::at(tokencache::unix_now() + 60)).unwrap();
    let mut raw = stores_support::raw_redis(&url);
    let stored: Vec<u8> = raw.hget(&key_name, "data").unwrap();
    assert!(stored.starts_with(b"TCE\x01") && !stored.windows(15).any(|w| w == b"at-secret-value"));
    assert_eq!(s.get("alice").unwrap().as_deref(), Some(PARTITION_JSON));
}

#[test]
fn as_the_l2_of_a_tiered_store_only_l2_holds_ciphertext() {
    use tokencache::store::{TieredOptions, TieredStore};
    let l2 = std::sync::Arc::new(MemoryStore::default());
    let t = TieredStore::new(EncryptedStore::new(l2.clone(), KeyRing::new(key(8))), TieredOptions::default()).unwrap();
    t.set("alice", Bytes::from_static(PARTITION_JSON), Expiry::NEVER).unwrap();
    assert!(l2.get("alice").unwrap().unwrap().starts_with(b"TCE\x01"), "L2 (shared) holds the envelope");
    assert_eq!(t.l1().unwrap().get("alice").unwrap().as_deref(), Some(PARTITION_JSON), "L1 (process) plaintext");
    t.l1().unwrap().remove("alice").unwrap();
    assert_eq!(t.get("alice").unwrap().as_deref(), Some(PARTITION_JSON), "decrypted on the way up");
    // A blob under a foreign key surfaces through the tier as KeyMismatch even under
    // ServeFromL1: L2 answered, so it is no outage (no retry, no breaker), and the
    // policy never turns a wrong blob into a silent miss.
    l2.set("bob", Bytes::from(KeyRing::new(key(9)).encrypt("bob", b"x").unwrap()), Expiry::NEVER).unwrap();
    for _ in 0..5 {
        assert_eq!(t.get("bob").unwrap_err().kind(), ErrorKind::KeyMismatch);
    }
    let st = t.stats();
    assert_eq!((st.l2_errors, st.circuit_opened), (0, 0), "a bad blob is not an L2 outage: {st:?}");
    assert_eq!(t.l2().stats().key_mismatches, 5);
}

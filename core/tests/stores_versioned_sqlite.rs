//! Conflict-safe writes on SQLite: versions per row (migrated into older files),
//! conditional writes across connections and processes, and two providers
//! updating one partition without losing or resurrecting a token.
#![cfg(feature = "sqlite")]

mod stores_support;
mod stores_versioned_support;

use bytes::Bytes;
use stores_support::{ManualClock, ScratchDir};
use stores_versioned_support::{Model, PARTITION, Ticks, check, concurrent, interleaved, rounds, tokens};
use tokencache::CacheProvider;
use tokencache::ErrorKind;
use tokencache::store::{
    CasOutcome, Exclusive, Expiry, SqliteOptions, SqliteStore, Store, Update, Version, VersionedStore,
};

const WORKER_ENV: &str = "TOKENCACHE_TEST_VERSIONED_SQLITE_WORKER";

fn written(o: CasOutcome) -> Version {
    match o {
        CasOutcome::Written(v) => v,
        CasOutcome::Conflict => panic!("unexpected conflict"),
    }
}

#[test]
fn conditional_writes_across_connections() {
    let dir = ScratchDir::new("sqlite-cas");
    let path = dir.join("cache.db");
    let (a, b) = (SqliteStore::open(&path).unwrap(), SqliteStore::open(&path).unwrap());
    assert!(a.as_versioned().is_some());
    let v1 = written(a.compare_and_set("k", None, Bytes::from_static(b"1"), Expiry::NEVER).unwrap());
    assert_eq!(b.compare_and_set("k", None, Bytes::from_static(b"x"), Expiry::NEVER).unwrap(), CasOutcome::Conflict);
    let got = b.get_versioned("k").unwrap().unwrap();
    assert_eq!((got.value.as_ref(), got.version), (&b"1"[..], v1));
    let v2 = written(b.compare_and_set("k", Some(v1), Bytes::from_static(b"2"), Expiry::NEVER).unwrap());
    assert_ne!(v1, v2);
    assert_eq!(
        a.compare_and_set("k", Some(v1), Bytes::from_static(b"x"), Expiry::NEVER).unwrap(),
        CasOutcome::Conflict
    );
    assert!(!a.compare_and_remove("k", v1).unwrap());
    assert_eq!(a.get("k").unwrap().as_deref(), Some(&b"2"[..]), "a conflict changes nothing");
    // A plain set is a new version too.
    b.set("k", Bytes::from_static(b"3"), Expiry::NEVER).unwrap();
    let v3 = a.version("k").unwrap().unwrap();
    assert_ne!(v3, v2);
    assert!(a.compare_and_remove("k", v3).unwrap());
    assert_eq!(b.version("k").unwrap(), None);
}

#[test]
fn an_expired_row_counts_as_absent() {
    let dir = ScratchDir::new("sqlite-cas-expiry");
    let path = dir.join("cache.db");
    let clock = ManualClock::at(1_000);
    let s = SqliteStore::open_with(&path, SqliteOptions { clock: clock.clock(), ..Default::default() }).unwrap();
    let v = written(s.compare_and_set("k", None, Bytes::from_static(b"1"), Expiry::at(1_010)).unwrap());
    clock.set(1_020);
    assert_eq!(s.version("k").unwrap(), None);
    assert_eq!(s.compare_and_set("k", Some(v), Bytes::from_static(b"x"), Expiry::NEVER).unwrap(), CasOutcome::Conflict);
    written(s.compare_and_set("k", None, Bytes::from_static(b"2"), Expiry::NEVER).unwrap());
    assert_eq!(s.get("k").unwrap().as_deref(), Some(&b"2"[..]));
}

/// A file written by the release before versions: the column is added in place,
/// old rows read as [`Version::LEGACY`], and a writer that does not know the
/// column still changes the version.
#[test]
fn an_older_file_is_migrated_and_old_writers_still_bump_versions() {
    let dir = ScratchDir::new("sqlite-migrate");
    let path = dir.join("cache.db");
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(
            "CREATE TABLE tokencache (id TEXT NOT NULL PRIMARY KEY, value BLOB NOT NULL, expires_at INTEGER NULL,
                 sliding_seconds INTEGER NULL, absolute_expiration INTEGER NULL);
             CREATE INDEX tokencache_expires_at ON tokencache (expires_at);
             INSERT INTO tokencache (id, value) VALUES ('old', CAST('v0' AS BLOB));
             PRAGMA user_version = 1;",
        )
        .unwrap();
    }
    let s = SqliteStore::open(&path).unwrap();
    let got = s.get_versioned("old").unwrap().unwrap();
    assert_eq!((got.value.as_ref(), got.version), (&b"v0"[..], Version::LEGACY));
    let v = written(s.compare_and_set("old", Some(Version::LEGACY), Bytes::from_static(b"v1"), Expiry::NEVER).unwrap());
    // The older release's write: value only.
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute(
        "INSERT INTO tokencache (id, value, expires_at, sliding_seconds, absolute_expiration) VALUES ('old', CAST('v2' AS BLOB), NULL, NULL, NULL)
         ON CONFLICT (id) DO UPDATE SET value = excluded.value",
        [],
    )
    .unwrap();
    c.execute("INSERT INTO tokencache (id, value) VALUES ('new', CAST('n' AS BLOB))", []).unwrap();
    assert_ne!(s.version("old").unwrap(), Some(v), "an unversioned update got a new version");
    assert_eq!(
        s.compare_and_set("old", Some(v), Bytes::from_static(b"x"), Expiry::NEVER).unwrap(),
        CasOutcome::Conflict
    );
    assert_ne!(s.version("new").unwrap(), Some(Version::LEGACY), "an unversioned insert got a version");
    // Opening again changes nothing; the schema version is still one older releases accept.
    drop(s);
    let s = SqliteStore::open(&path).unwrap();
    assert_eq!(s.get("old").unwrap().as_deref(), Some(&b"v2"[..]));
    let uv: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(uv, 1);
}

#[test]
fn two_connections_a_thousand_interleaved_updates() {
    let dir = ScratchDir::new("sqlite-interleave");
    let path = dir.join("cache.db");
    let a = CacheProvider::new(SqliteStore::open(&path).unwrap());
    let b = CacheProvider::new(SqliteStore::open(&path).unwrap());
    let (ma, mb) = interleaved(&a, &b, 1000, 11);
    check(&tokens(&a.load(PARTITION).unwrap()), &[&ma, &mb]);
    assert!(a.stats().conflicts + b.stats().conflicts > 50);
    assert!(!ma.removed.is_empty() && !mb.removed.is_empty());
}

#[test]
fn two_connections_on_two_threads() {
    let dir = ScratchDir::new("sqlite-threads");
    let path = dir.join("cache.db");
    let a = CacheProvider::new(SqliteStore::open(&path).unwrap());
    let b = CacheProvider::new(SqliteStore::open(&path).unwrap());
    let (ma, mb) = concurrent(&a, &b, 200);
    check(&tokens(&a.load(PARTITION).unwrap()), &[&ma, &mb]);
}

/// Two processes update one partition of one file at once.
#[test]
fn two_processes() {
    if let Ok(spec) = std::env::var(WORKER_ENV) {
        // Child: "<db>|<name>|<steps>|<model out>".
        let parts: Vec<&str> = spec.split('|').collect();
        let p = CacheProvider::new(SqliteStore::open(parts[0]).unwrap());
        let model = rounds(
            &p,
            parts[1],
            parts[2].parse().unwrap(),
            parts[1].len() as u64 * 0x9e37_79b9 + 1,
            &Ticks::default(),
            false,
        );
        std::fs::write(parts[3], model.to_text()).unwrap();
        return;
    }
    let dir = ScratchDir::new("sqlite-versioned-procs");
    let path = dir.join("cache.db");
    SqliteStore::open(&path).unwrap();
    let exe = std::env::current_exe().unwrap();
    let names = ["P", "QQ"];
    let children: Vec<_> = names
        .iter()
        .map(|name| {
            std::process::Command::new(&exe)
                .args(["--exact", "two_processes", "--test-threads", "1"])
                .env(WORKER_ENV, format!("{}|{name}|150|{}", path.display(), dir.join(name).display()))
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success(), "a writer process failed");
    }
    let models: Vec<Model> =
        names.iter().map(|n| Model::from_text(&std::fs::read_to_string(dir.join(n)).unwrap())).collect();
    let p = CacheProvider::new(SqliteStore::open(&path).unwrap());
    check(&tokens(&p.load(PARTITION).unwrap()), &[&models[0], &models[1]]);
    assert!(models.iter().all(|m| m.alive.len() > 50 && !m.removed.is_empty()));
}

/// An exclusive update is one write transaction: another connection's write
/// waits for it (here: times out), and sees its result after.
#[test]
fn an_exclusive_update_holds_other_connections_off() {
    let dir = ScratchDir::new("sqlite-exclusive");
    let path = dir.join("cache.db");
    let a = SqliteStore::open(&path).unwrap();
    let b = SqliteStore::open_with(
        &path,
        SqliteOptions { busy_timeout: std::time::Duration::from_millis(50), ..Default::default() },
    )
    .unwrap();
    let v1 = written(a.compare_and_set("k", None, Bytes::from_static(b"1"), Expiry::NEVER).unwrap());
    let done = a
        .update_exclusive("k", &mut |cur| {
            assert_eq!(cur.unwrap().version, v1);
            let e = b.compare_and_set("k", Some(v1), Bytes::from_static(b"b"), Expiry::NEVER).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::LockTimeout);
            Ok(Update::Write(Bytes::from_static(b"2"), Expiry::NEVER))
        })
        .unwrap();
    let Exclusive::Done(Some(v2)) = done else { panic!("{done:?}") };
    assert_eq!(b.get_versioned("k").unwrap().unwrap().version, v2);
    assert_eq!(b.get("k").unwrap().as_deref(), Some(&b"2"[..]));
    assert_eq!(a.update_exclusive("k", &mut |_| Ok(Update::Remove)).unwrap(), Exclusive::Done(None));
    assert_eq!(b.get("k").unwrap(), None);
    // A failing update changes nothing.
    written(a.compare_and_set("k", None, Bytes::from_static(b"3"), Expiry::NEVER).unwrap());
    let e = a
        .update_exclusive("k", &mut |_| {
            tokencache::json::parse("{").map(|_| Update::Keep).map_err(tokencache::Error::from)
        })
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidJson);
    assert_eq!(b.get("k").unwrap().as_deref(), Some(&b"3"[..]));
}

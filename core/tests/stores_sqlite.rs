//! SqliteStore against real database files: schema, expiry (injected clock), the
//! background purge, several processes writing one file, permissions, corruption.
#![cfg(feature = "sqlite")]

mod stores_support;

use std::time::Duration;

use bytes::Bytes;
use stores_support::{ManualClock, ScratchDir, poll_until};
use tokencache::ErrorKind;
use tokencache::store::{Expiry, SqliteOptions, SqliteStore, Store};

fn open(path: &std::path::Path, clock: &ManualClock) -> SqliteStore {
    SqliteStore::open_with(path, SqliteOptions { clock: clock.clock(), ..Default::default() }).unwrap()
}

fn raw(path: &std::path::Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
}

fn rows(path: &std::path::Path) -> i64 {
    raw(path).query_row("SELECT COUNT(*) FROM tokencache", [], |r| r.get(0)).unwrap()
}

#[test]
fn schema_is_sqlserver_like_with_wal_and_an_expiry_index() {
    let dir = ScratchDir::new("sqlite-schema");
    let path = dir.join("cache.db");
    let _s = SqliteStore::open(&path).unwrap();
    let c = raw(&path);
    let mut st = c.prepare("SELECT name, type, pk FROM pragma_table_info('tokencache') ORDER BY cid").unwrap();
    let cols: Vec<(String, String, i64)> =
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().map(Result::unwrap).collect();
    let want = [
        ("id", "TEXT", 1),
        ("value", "BLOB", 0),
        ("expires_at", "INTEGER", 0),
        ("sliding_seconds", "INTEGER", 0),
        ("absolute_expiration", "INTEGER", 0),
        ("version", "INTEGER", 0),
    ];
    assert_eq!(cols, want.map(|(n, t, p)| (n.to_owned(), t.to_owned(), p)).to_vec());
    let indexed: String = c
        .query_row(
            "SELECT ii.name FROM pragma_index_list('tokencache') il, pragma_index_info(il.name) ii WHERE il.origin = 'c'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(indexed, "expires_at");
    let mode: String = c.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn set_get_replace_remove_and_reopen() {
    let dir = ScratchDir::new("sqlite-basic");
    let path = dir.join("cache.db");
    let clock = ManualClock::at(1_700_000_000);
    {
        let s = open(&path, &clock);
        assert_eq!(s.get("a").unwrap(), None);
        s.set("a", Bytes::from_static(b"one"), Expiry::NEVER).unwrap();
        s.set("a", Bytes::from_static(b"two"), Expiry::at(clock.now() + 60)).unwrap();
        s.set("b", Bytes::from(vec![0u8, 255, 7]), Expiry::NEVER).unwrap();
        assert_eq!(s.get("a").unwrap().as_deref(), Some(&b"two"[..]));
        s.remove("b").unwrap();
        s.remove("never-there").unwrap();
        assert_eq!(s.get("b").unwrap(), None);
    }
    let s = open(&path, &clock);
    assert_eq!(s.get("a").unwrap().as_deref(), Some(&b"two"[..]), "persisted across reopen");
    assert_eq!(s.row_count().unwrap(), 1);
}

#[test]
fn expired_rows_are_never_served_and_purge_deletes_them() {
    let dir = ScratchDir::new("sqlite-expiry");
    let path = dir.join("cache.db");
    let clock = ManualClock::at(1000);
    let s = open(&path, &clock);
    s.set("short", Bytes::from_static(b"s"), Expiry::at(1010)).unwrap();
    s.set("long", Bytes::from_static(b"l"), Expiry::at(2000)).unwrap();
    s.set("forever", Bytes::from_static(b"f"), Expiry::NEVER).unwrap();
    s.set("past", Bytes::from_static(b"p"), Expiry::at(999)).unwrap();
    assert_eq!(rows(&path), 3, "an entry already expired is not stored");
    clock.set(1010);
    assert_eq!(s.get("short").unwrap(), None, "deadline reached: gone");
    assert_eq!(rows(&path), 2, "the read deleted the expired row");
    s.set("short2", Bytes::from_static(b"s"), Expiry::at(1500)).unwrap();
    clock.set(1600);
    assert_eq!(s.purge_expired().unwrap(), 1);
    assert_eq!(s.get("long").unwrap().as_deref(), Some(&b"l"[..]));
    clock.set(5000);
    assert_eq!(s.purge_expired().unwrap(), 1);
    assert_eq!(rows(&path), 1);
    assert_eq!(s.get("forever").unwrap().as_deref(), Some(&b"f"[..]));
    assert_eq!(s.purged(), 3);
}

#[test]
fn sliding_expiry_is_refreshed_on_read_and_capped_by_absolute() {
    let dir = ScratchDir::new("sqlite-sliding");
    let path = dir.join("cache.db");
    let clock = ManualClock::at(0);
    let s = open(&path, &clock);
    s.set("k", Bytes::from_static(b"v"), Expiry { absolute: Some(100), sliding_secs: Some(30) }).unwrap();
    let expires_at = || -> i64 { raw(&path).query_row("SELECT expires_at FROM tokencache", [], |r| r.get(0)).unwrap() };
    assert_eq!(expires_at(), 30);
    for now in [20, 45, 70] {
        clock.set(now);
        assert!(s.get("k").unwrap().is_some(), "read at {now} within the window");
        assert_eq!(expires_at(), (now + 30).min(100));
    }
    clock.set(95);
    assert!(s.get("k").unwrap().is_some());
    assert_eq!(expires_at(), 100, "never past the absolute expiration");
    clock.set(100);
    assert_eq!(s.get("k").unwrap(), None);
    // Unread for a whole window: gone.
    s.set("idle", Bytes::from_static(b"v"), Expiry { absolute: None, sliding_secs: Some(10) }).unwrap();
    clock.set(111);
    assert_eq!(s.get("idle").unwrap(), None);
}

#[test]
fn background_purge_deletes_rows_on_schedule_and_stops_on_drop() {
    let dir = ScratchDir::new("sqlite-purge");
    let path = dir.join("cache.db");
    let clock = ManualClock::at(1000);
    let s = SqliteStore::open_with(
        &path,
        SqliteOptions { clock: clock.clock(), purge_interval: Some(Duration::from_millis(20)), ..Default::default() },
    )
    .unwrap();
    for i in 0..50 {
        s.set(&format!("k{i}"), Bytes::from_static(b"v"), Expiry::at(1001 + i)).unwrap();
    }
    s.set("keep", Bytes::from_static(b"v"), Expiry::NEVER).unwrap();
    clock.set(1025);
    assert!(
        poll_until(Duration::from_secs(10), || rows(&path) == 26),
        "rows expired at <= 1025 purged in the background"
    );
    clock.set(2000);
    assert!(poll_until(Duration::from_secs(10), || rows(&path) == 1), "the rest too, without anyone reading");
    assert_eq!(s.purged(), 50);
    assert_eq!(s.purge_errors(), 0);
    drop(s); // joins the purge thread; a thread that ignored the stop would hang here
    assert_eq!(rows(&path), 1);
}

const WORKER_ENV: &str = "TOKENCACHE_SQLITE_WORKER";

/// Several processes write one file at once: WAL and the busy timeout make them
/// wait for each other instead of failing.
#[test]
fn many_processes_share_one_file() {
    if let Ok(spec) = std::env::var(WORKER_ENV) {
        // Child: "<path>|<worker id>|<count>".
        let mut parts = spec.split('|');
        let (path, id, n) =
            (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap().parse::<u32>().unwrap());
        let s = SqliteStore::open(path).unwrap();
        for i in 0..n {
            s.set(&format!("w{id}-{i}"), Bytes::from(format!("{id}:{i}")), Expiry::NEVER).unwrap();
            if i % 10 == 0 {
                assert!(s.get(&format!("w{id}-{i}")).unwrap().is_some());
            }
        }
        return;
    }
    let dir = ScratchDir::new("sqlite-procs");
    let path = dir.join("shared.db");
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..4)
        .map(|id| {
            std::process::Command::new(&exe)
                .args(["--exact", "many_processes_share_one_file", "--test-threads", "1"])
                .env(WORKER_ENV, format!("{}|{id}|150", path.display()))
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success(), "a writer process failed");
    }
    let s = SqliteStore::open(&path).unwrap();
    assert_eq!(s.row_count().unwrap(), 600);
    for id in 0..4 {
        for i in [0, 77, 149] {
            assert_eq!(s.get(&format!("w{id}-{i}")).unwrap().as_deref(), Some(format!("{id}:{i}").as_bytes()));
        }
    }
}

#[cfg(unix)]
#[test]
fn database_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = ScratchDir::new("sqlite-mode");
    let path = dir.join("cache.db");
    let s = SqliteStore::open(&path).unwrap();
    s.set("k", Bytes::from_static(b"v"), Expiry::NEVER).unwrap();
    for p in [path.clone(), dir.join("cache.db-wal")] {
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", p.display());
    }
}

#[test]
fn a_file_that_is_not_a_database_is_reported_and_left_in_place() {
    let dir = ScratchDir::new("sqlite-corrupt");
    let path = dir.join("cache.db");
    std::fs::write(&path, vec![b'x'; 4096]).unwrap();
    let e = SqliteStore::open(&path).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupt, "{e:?}");
    assert!(e.message().contains("cache.db"), "{e:?}");
    assert_eq!(std::fs::read(&path).unwrap(), vec![b'x'; 4096]);
}

#[test]
fn a_held_write_lock_times_out_with_lock_timeout() {
    let dir = ScratchDir::new("sqlite-busy");
    let path = dir.join("cache.db");
    let s =
        SqliteStore::open_with(&path, SqliteOptions { busy_timeout: Duration::from_millis(50), ..Default::default() })
            .unwrap();
    let other = raw(&path);
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let e = s.set("k", Bytes::from_static(b"v"), Expiry::NEVER).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::LockTimeout, "{e:?}");
    other.execute_batch("ROLLBACK").unwrap();
    s.set("k", Bytes::from_static(b"v"), Expiry::NEVER).unwrap();
}

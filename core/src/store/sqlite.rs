//! [`SqliteStore`]: blobs in one SQLite database file shared by the processes of a host.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, params};

use super::{
    CasOutcome, Clock, Exclusive, Expiry, L2Store, ListStore, Store, StoredBlob, Update, UpdateFn, Version,
    VersionedBlob, VersionedStore, system_clock,
};
use crate::error::{Error, ErrorKind, Result};

/// Bumped only by changes older releases cannot live with (they refuse a file whose
/// schema is newer). The `version` column (conflict-safe writes) is not one: it is
/// added in place to older files, with a default and triggers that keep it right
/// under writers that do not know it, so releases before it still open the file.
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS tokencache (
    id TEXT NOT NULL PRIMARY KEY,
    value BLOB NOT NULL,
    expires_at INTEGER NULL,
    sliding_seconds INTEGER NULL,
    absolute_expiration INTEGER NULL,
    version INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS tokencache_expires_at ON tokencache (expires_at);
";

/// Schema 1 to 2: rows keep version 0 ([`Version::LEGACY`]) until rewritten.
const ADD_VERSION: &str = "ALTER TABLE tokencache ADD COLUMN version INTEGER NOT NULL DEFAULT 0";

/// Writers that know nothing of versions — a process still running the previous
/// release, which writes `value` alone — get a new random version all the same, so
/// a conditional writer never mistakes their write for the row it read.
const VERSION_TRIGGERS: &str = "
CREATE TRIGGER IF NOT EXISTS tokencache_version_on_insert AFTER INSERT ON tokencache
    WHEN NEW.version = 0
    BEGIN UPDATE tokencache SET version = random() WHERE id = NEW.id; END;
CREATE TRIGGER IF NOT EXISTS tokencache_version_on_update AFTER UPDATE OF value ON tokencache
    WHEN NEW.version = OLD.version
    BEGIN UPDATE tokencache SET version = random() WHERE id = NEW.id; END;
";

/// How a [`SqliteStore`] opens its file.
#[derive(Clone)]
pub struct SqliteOptions {
    /// How long a write waits for another connection's write lock before failing
    /// with [`ErrorKind::LockTimeout`]. Default 5 s.
    pub busy_timeout: Duration,
    /// Purge expired rows on a background thread this often; `None` (the default)
    /// leaves purging to [`Store::purge_expired`].
    pub purge_interval: Option<Duration>,
    /// Source of the current time (tests inject one).
    pub clock: Clock,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions { busy_timeout: Duration::from_secs(5), purge_interval: None, clock: system_clock() }
    }
}

impl std::fmt::Debug for SqliteOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteOptions")
            .field("busy_timeout", &self.busy_timeout)
            .field("purge_interval", &self.purge_interval)
            .finish_non_exhaustive()
    }
}

struct Shared {
    conn: Mutex<Connection>,
    clock: Clock,
    path: PathBuf,
    purged: AtomicU64,
    purge_errors: AtomicU64,
}

/// Stops the background purge thread when dropped (and waits for it).
struct Purger {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Purger {
    fn drop(&mut self) {
        // Dropping the sender wakes the thread out of its wait at once.
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Blobs in a SQLite database file; persistent, shared by processes on one host.
///
/// The table follows Microsoft.Extensions.Caching.SqlServer's
/// (`id`, `value`, `expires_at`, `sliding_seconds`, `absolute_expiration`) with an
/// index on `expires_at`, so purging expired rows is a range delete.
///
/// Concurrency between processes is SQLite's: WAL journal (readers never block the
/// writer) and a busy timeout (a writer waits for another instead of failing at once).
/// Within a process one connection is shared behind a mutex.
///
/// Thread-safe. Expired rows are never returned; they are deleted by
/// [`purge_expired`](Store::purge_expired), by the optional background purge, and
/// when a read finds one.
pub struct SqliteStore {
    shared: Arc<Shared>,
    purger: Option<Purger>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.shared.path)
            .field("background_purge", &self.purger.is_some())
            .finish()
    }
}

fn sql_error(path: &Path, what: &str, e: rusqlite::Error) -> Error {
    let kind = match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => ErrorKind::LockTimeout,
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => ErrorKind::Corrupt,
        Some(ErrorCode::CannotOpen | ErrorCode::SystemIoFailure | ErrorCode::DiskFull | ErrorCode::ReadOnly) => {
            ErrorKind::Io
        }
        _ => ErrorKind::StoreUnavailable,
    };
    let hint = if kind == ErrorKind::Corrupt { " (the file was left in place)" } else { "" };
    // rusqlite's messages name the SQLite condition, never bound values.
    Error::new(kind, format!("sqlite {what} {}: {e}{hint}", path.display()))
}

/// Creates the file owner-only before SQLite opens it: it holds tokens. SQLite
/// gives its `-wal` and `-shm` files the database file's permissions.
fn create_private(path: &Path) -> Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path).map(drop).map_err(|e| Error::io(path, "create", &e))
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` with default options.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, SqliteOptions::default())
    }

    /// Opens (creating if needed) the database at `path`.
    pub fn open_with(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if !path.exists() {
            create_private(&path)?;
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&path, flags).map_err(|e| sql_error(&path, "open", e))?;
        Self::init(conn, path, options)
    }

    /// A private in-memory database (tests, or a process-local store with SQL semantics).
    pub fn open_in_memory(options: SqliteOptions) -> Result<Self> {
        let path = PathBuf::from(":memory:");
        let conn = Connection::open_in_memory().map_err(|e| sql_error(&path, "open", e))?;
        Self::init(conn, path, options)
    }

    fn init(conn: Connection, path: PathBuf, options: SqliteOptions) -> Result<Self> {
        conn.busy_timeout(options.busy_timeout).map_err(|e| sql_error(&path, "busy_timeout", e))?;
        // Processes opening a new file at once race to switch it to WAL and create the
        // table; SQLite answers some of those races with SQLITE_BUSY at once, without
        // calling its busy handler. Retry those within the busy timeout.
        let deadline = std::time::Instant::now() + options.busy_timeout;
        loop {
            match Self::prepare_schema(&conn, &path) {
                Err(e) if e.kind() == ErrorKind::LockTimeout && std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                other => {
                    other?;
                    break;
                }
            }
        }
        let shared = Arc::new(Shared {
            conn: Mutex::new(conn),
            clock: options.clock,
            path,
            purged: AtomicU64::new(0),
            purge_errors: AtomicU64::new(0),
        });
        let purger = options.purge_interval.map(|every| start_purger(shared.clone(), every)).transpose()?;
        Ok(SqliteStore { shared, purger })
    }

    /// WAL mode, durability, and the table at this library's schema version.
    fn prepare_schema(conn: &Connection, path: &Path) -> Result<()> {
        // WAL: readers in other processes don't block our writes nor we theirs.
        // synchronous=NORMAL is durable across process crashes, which is what a
        // cache needs; a power loss may drop the last writes.
        let _: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(|e| sql_error(path, "journal_mode", e))?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(|e| sql_error(path, "synchronous", e))?;
        let version: i64 =
            conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(|e| sql_error(path, "user_version", e))?;
        if version > SCHEMA_VERSION {
            return Err(Error::new(
                ErrorKind::StoreUnavailable,
                format!(
                    "sqlite {}: schema version {version} is newer than this library's ({SCHEMA_VERSION})",
                    path.display()
                ),
            ));
        }
        let ready: bool = conn
            .prepare(
                "SELECT (SELECT COUNT(*) FROM pragma_table_info('tokencache') WHERE name = 'version')
                      + (SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger'
                            AND name LIKE 'tokencache_version_on_%') = 3",
            )
            .and_then(|mut st| st.query_row([], |r| r.get(0)))
            .map_err(|e| sql_error(path, "read schema", e))?;
        if version == SCHEMA_VERSION && ready {
            return Ok(());
        }
        // Create or migrate (add the version column and its triggers) in one write
        // transaction, so processes opening an old file at once migrate it once.
        let migrate = || -> rusqlite::Result<()> {
            conn.execute_batch("BEGIN IMMEDIATE")?;
            let r = (|| {
                conn.execute_batch(SCHEMA)?;
                let has_version: bool =
                    conn.prepare("SELECT 1 FROM pragma_table_info('tokencache') WHERE name = 'version'")?.exists([])?;
                if !has_version {
                    conn.execute_batch(ADD_VERSION)?;
                }
                conn.execute_batch(VERSION_TRIGGERS)?;
                conn.pragma_update(None, "user_version", SCHEMA_VERSION)
            })();
            match r {
                Ok(()) => conn.execute_batch("COMMIT"),
                Err(e) => {
                    let _ = conn.execute_batch("ROLLBACK");
                    Err(e)
                }
            }
        };
        migrate().map_err(|e| sql_error(path, "create schema", e))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Rows in the table, expired or not (without a `TieredStore`'s
    /// [`EPOCH_KEY`](super::EPOCH_KEY)).
    pub fn row_count(&self) -> Result<u64> {
        let conn = self.shared.conn.lock();
        conn.query_row("SELECT COUNT(*) FROM tokencache WHERE id <> ?1", params![super::EPOCH_KEY], |r| {
            r.get::<_, i64>(0)
        })
        .map(|n| n as u64)
        .map_err(|e| sql_error(&self.shared.path, "count", e))
    }

    /// Rows deleted as expired since open (by any purge or read of this store).
    pub fn purged(&self) -> u64 {
        self.shared.purged.load(Ordering::Relaxed)
    }

    /// Background purges that failed (each was logged).
    pub fn purge_errors(&self) -> u64 {
        self.shared.purge_errors.load(Ordering::Relaxed)
    }

    /// Runs `op` on the store's connection (locked meanwhile), its errors mapped as
    /// the store's own (for `store::lease`).
    pub(crate) fn with_connection<R>(
        &self,
        what: &str,
        op: impl FnOnce(&mut Connection) -> rusqlite::Result<R>,
    ) -> Result<R> {
        let mut conn = self.shared.conn.lock();
        op(&mut conn).map_err(|e| sql_error(&self.shared.path, what, e))
    }
}

fn start_purger(shared: Arc<Shared>, every: Duration) -> Result<Purger> {
    let (stop, wait) = mpsc::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("tokencache-sqlite-purge".into())
        .spawn(move || {
            loop {
                match wait.recv_timeout(every) {
                    Err(RecvTimeoutError::Timeout) => {}
                    // Stop requested (or the store is gone).
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                }
                match shared.purge() {
                    Ok(n) if n > 0 => log::debug!("sqlite {}: purged {n} expired rows", shared.path.display()),
                    Ok(_) => {}
                    Err(e) => {
                        shared.purge_errors.fetch_add(1, Ordering::Relaxed);
                        log::warn!("sqlite background purge failed: {e}");
                    }
                }
            }
        })
        .map_err(|e| Error::new(ErrorKind::Io, format!("spawn the SQLite purge thread: {e}")))?;
    Ok(Purger { stop: Some(stop), thread: Some(thread) })
}

impl Shared {
    fn purge(&self) -> Result<u64> {
        let now = (self.clock)();
        let conn = self.conn.lock();
        let n = conn
            .prepare_cached("DELETE FROM tokencache WHERE expires_at IS NOT NULL AND expires_at <= ?1")
            .and_then(|mut st| st.execute(params![now]))
            .map_err(|e| sql_error(&self.path, "purge", e))? as u64;
        self.purged.fetch_add(n, Ordering::Relaxed);
        Ok(n)
    }
}

type Row = (Vec<u8>, Option<i64>, Option<i64>, Option<i64>);

impl L2Store for SqliteStore {
    fn get_with_deadline(&self, key: &str) -> Result<Option<(Bytes, Option<i64>)>> {
        Ok(self.read(key)?.map(|b| (b.value, b.deadline)))
    }
}

/// Versions are stored as SQLite's signed 64-bit integers, bit for bit.
fn to_sql(v: Version) -> i64 {
    v.0 as i64
}

fn from_sql(v: i64) -> Version {
    Version(v as u64)
}

impl SqliteStore {
    /// A read: the row unless expired (an expired one is deleted), its sliding
    /// expiry pushed forward.
    fn read(&self, key: &str) -> Result<Option<VersionedBlob>> {
        let s = &*self.shared;
        let now = (s.clock)();
        let conn = s.conn.lock();
        let row: Option<(Row, i64)> = conn
            .prepare_cached(
                "SELECT value, expires_at, sliding_seconds, absolute_expiration, version FROM tokencache WHERE id = ?1",
            )
            .and_then(|mut st| {
                st.query_row(params![key], |r| Ok(((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?), r.get(4)?))).optional()
            })
            .map_err(|e| sql_error(&s.path, "read", e))?;
        let Some(((value, expires_at, sliding, absolute), version)) = row else { return Ok(None) };
        if expires_at.is_some_and(|t| t <= now) {
            // Only if still expired: another process may have just rewritten it.
            let n = conn
                .prepare_cached("DELETE FROM tokencache WHERE id = ?1 AND expires_at <= ?2")
                .and_then(|mut st| st.execute(params![key, now]))
                .map_err(|e| sql_error(&s.path, "delete expired", e))?;
            s.purged.fetch_add(n as u64, Ordering::Relaxed);
            return Ok(None);
        }
        let mut deadline = expires_at;
        if sliding.is_some() {
            deadline = Expiry { absolute, sliding_secs: sliding }.deadline(now);
            conn.prepare_cached("UPDATE tokencache SET expires_at = ?2 WHERE id = ?1")
                .and_then(|mut st| st.execute(params![key, deadline]))
                .map_err(|e| sql_error(&s.path, "refresh sliding expiry", e))?;
        }
        Ok(Some(VersionedBlob { value: Bytes::from(value), version: from_sql(version), deadline }))
    }
}

impl VersionedStore for SqliteStore {
    fn get_versioned(&self, key: &str) -> Result<Option<VersionedBlob>> {
        self.read(key)
    }

    fn version(&self, key: &str) -> Result<Option<Version>> {
        let s = &*self.shared;
        let now = (s.clock)();
        let conn = s.conn.lock();
        conn.prepare_cached("SELECT version FROM tokencache WHERE id = ?1 AND (expires_at IS NULL OR expires_at > ?2)")
            .and_then(|mut st| st.query_row(params![key, now], |r| r.get::<_, i64>(0)).optional())
            .map(|v| v.map(from_sql))
            .map_err(|e| sql_error(&s.path, "read version", e))
    }

    /// One statement, so atomic across connections and processes: an `UPDATE ...
    /// WHERE version = ?` for an expected version, an insert that may replace only
    /// an expired row for none.
    fn compare_and_set(
        &self,
        key: &str,
        expected: Option<Version>,
        value: Bytes,
        expiry: Expiry,
    ) -> Result<CasOutcome> {
        let s = &*self.shared;
        let now = (s.clock)();
        let deadline = expiry.deadline(now);
        if deadline.is_some_and(|d| d <= now) {
            // Already expired: the write is a conditional removal.
            let done = match expected {
                Some(v) => self.compare_and_remove(key, v)?,
                None => self.version(key)?.is_none(),
            };
            return Ok(if done { CasOutcome::Written(Version::fresh()) } else { CasOutcome::Conflict });
        }
        let version = Version::fresh();
        let conn = s.conn.lock();
        let n = match expected {
            Some(v) => conn
                .prepare_cached(
                    "UPDATE tokencache SET value = ?2, expires_at = ?3, sliding_seconds = ?4,
                         absolute_expiration = ?5, version = ?6
                     WHERE id = ?1 AND version = ?7 AND (expires_at IS NULL OR expires_at > ?8)",
                )
                .and_then(|mut st| {
                    st.execute(params![
                        key,
                        &value[..],
                        deadline,
                        expiry.sliding_secs,
                        expiry.absolute,
                        to_sql(version),
                        to_sql(v),
                        now
                    ])
                }),
            None => conn
                .prepare_cached(
                    "INSERT INTO tokencache (id, value, expires_at, sliding_seconds, absolute_expiration, version)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (id) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at,
                         sliding_seconds = excluded.sliding_seconds,
                         absolute_expiration = excluded.absolute_expiration, version = excluded.version
                     WHERE tokencache.expires_at IS NOT NULL AND tokencache.expires_at <= ?7",
                )
                .and_then(|mut st| {
                    st.execute(params![
                        key,
                        &value[..],
                        deadline,
                        expiry.sliding_secs,
                        expiry.absolute,
                        to_sql(version),
                        now
                    ])
                }),
        }
        .map_err(|e| sql_error(&s.path, "conditional write", e))?;
        Ok(if n == 1 { CasOutcome::Written(version) } else { CasOutcome::Conflict })
    }

    fn compare_and_remove(&self, key: &str, expected: Version) -> Result<bool> {
        let s = &*self.shared;
        let now = (s.clock)();
        let conn = s.conn.lock();
        conn.prepare_cached(
            "DELETE FROM tokencache WHERE id = ?1 AND version = ?2 AND (expires_at IS NULL OR expires_at > ?3)",
        )
        .and_then(|mut st| st.execute(params![key, to_sql(expected), now]))
        .map(|n| n == 1)
        .map_err(|e| sql_error(&s.path, "conditional delete", e))
    }

    /// In one `BEGIN IMMEDIATE` transaction: other connections' writes wait for it
    /// (within their busy timeout).
    fn update_exclusive(&self, key: &str, update: &mut UpdateFn<'_>) -> Result<Exclusive> {
        let s = &*self.shared;
        let now = (s.clock)();
        let conn = s.conn.lock();
        conn.execute_batch("BEGIN IMMEDIATE").map_err(|e| sql_error(&s.path, "begin", e))?;
        let mut run = || -> Result<Exclusive> {
            let row: Option<(Vec<u8>, Option<i64>, i64)> = conn
                .prepare_cached("SELECT value, expires_at, version FROM tokencache WHERE id = ?1")
                .and_then(|mut st| st.query_row(params![key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).optional())
                .map_err(|e| sql_error(&s.path, "read", e))?;
            let current = row.filter(|(_, exp, _)| exp.is_none_or(|t| t > now)).map(|(value, deadline, version)| {
                VersionedBlob { value: Bytes::from(value), version: from_sql(version), deadline }
            });
            match update(current.as_ref())? {
                Update::Keep => Ok(Exclusive::Done(None)),
                Update::Remove => conn
                    .prepare_cached("DELETE FROM tokencache WHERE id = ?1")
                    .and_then(|mut st| st.execute(params![key]))
                    .map(|_| Exclusive::Done(None))
                    .map_err(|e| sql_error(&s.path, "delete", e)),
                Update::Write(value, expiry) => {
                    let version = Version::fresh();
                    conn.prepare_cached(
                        "INSERT INTO tokencache (id, value, expires_at, sliding_seconds, absolute_expiration, version)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                         ON CONFLICT (id) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at,
                             sliding_seconds = excluded.sliding_seconds,
                             absolute_expiration = excluded.absolute_expiration, version = excluded.version",
                    )
                    .and_then(|mut st| {
                        st.execute(params![
                            key,
                            &value[..],
                            expiry.deadline(now),
                            expiry.sliding_secs,
                            expiry.absolute,
                            to_sql(version)
                        ])
                    })
                    .map(|_| Exclusive::Done(Some(version)))
                    .map_err(|e| sql_error(&s.path, "write", e))
                }
            }
        };
        match run() {
            Ok(done) => {
                conn.execute_batch("COMMIT").map_err(|e| sql_error(&s.path, "commit", e))?;
                Ok(done)
            }
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }
}

impl Store for SqliteStore {
    fn get(&self, key: &str) -> Result<Option<Bytes>> {
        Ok(self.get_with_deadline(key)?.map(|(blob, _)| blob))
    }

    fn set(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<()> {
        let s = &*self.shared;
        let now = (s.clock)();
        let deadline = expiry.deadline(now);
        let conn = s.conn.lock();
        if deadline.is_some_and(|d| d <= now) {
            // Already expired: storing it would only serve a purge.
            return conn
                .prepare_cached("DELETE FROM tokencache WHERE id = ?1")
                .and_then(|mut st| st.execute(params![key]))
                .map(drop)
                .map_err(|e| sql_error(&s.path, "delete", e));
        }
        conn.prepare_cached(
            "INSERT INTO tokencache (id, value, expires_at, sliding_seconds, absolute_expiration, version)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (id) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at,
                 sliding_seconds = excluded.sliding_seconds, absolute_expiration = excluded.absolute_expiration,
                 version = excluded.version",
        )
        .and_then(|mut st| {
            st.execute(params![
                key,
                &value[..],
                deadline,
                expiry.sliding_secs,
                expiry.absolute,
                to_sql(Version::fresh())
            ])
        })
        .map(drop)
        .map_err(|e| sql_error(&s.path, "write", e))
    }

    fn remove(&self, key: &str) -> Result<()> {
        let s = &*self.shared;
        let conn = s.conn.lock();
        conn.prepare_cached("DELETE FROM tokencache WHERE id = ?1")
            .and_then(|mut st| st.execute(params![key]))
            .map(drop)
            .map_err(|e| sql_error(&s.path, "delete", e))
    }

    fn purge_expired(&self) -> Result<u64> {
        self.shared.purge()
    }

    fn as_versioned(&self) -> Option<&dyn VersionedStore> {
        Some(self)
    }
}

impl ListStore for SqliteStore {
    /// Keys of the rows not expired, in key order, without a `TieredStore`'s
    /// [`EPOCH_KEY`](super::EPOCH_KEY).
    fn keys(&self) -> Result<Vec<String>> {
        let s = &*self.shared;
        let now = (s.clock)();
        let conn = s.conn.lock();
        conn.prepare("SELECT id FROM tokencache WHERE (expires_at IS NULL OR expires_at > ?1) AND id <> ?2 ORDER BY id")
            .and_then(|mut st| st.query_map(params![now, super::EPOCH_KEY], |r| r.get::<_, String>(0))?.collect())
            .map_err(|e| sql_error(&s.path, "list", e))
    }

    fn peek(&self, key: &str) -> Result<Option<StoredBlob>> {
        let s = &*self.shared;
        let now = (s.clock)();
        let conn = s.conn.lock();
        let row: Option<Row> = conn
            .prepare_cached(
                "SELECT value, expires_at, sliding_seconds, absolute_expiration FROM tokencache WHERE id = ?1",
            )
            .and_then(|mut st| {
                st.query_row(params![key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))).optional()
            })
            .map_err(|e| sql_error(&s.path, "read", e))?;
        Ok(row.filter(|(_, expires_at, _, _)| expires_at.is_none_or(|t| t > now)).map(
            |(value, expires_at, sliding, absolute)| StoredBlob {
                value: Bytes::from(value),
                expiry: Expiry { absolute, sliding_secs: sliding },
                expires_at,
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peek_and_keys_leave_rows_alone() {
        let now = Arc::new(std::sync::atomic::AtomicI64::new(1000));
        let clock = now.clone();
        let s = SqliteStore::open_in_memory(SqliteOptions {
            clock: Arc::new(move || clock.load(Ordering::Relaxed)),
            ..Default::default()
        })
        .unwrap();
        s.set("b", Bytes::from_static(b"1"), Expiry { absolute: None, sliding_secs: Some(100) }).unwrap();
        s.set("a", Bytes::from_static(b"2"), Expiry::at(1050)).unwrap();
        s.set("c", Bytes::from_static(b"3"), Expiry::NEVER).unwrap();
        now.store(1060, Ordering::Relaxed);
        assert_eq!(s.keys().unwrap(), ["b", "c"]);
        let b = s.peek("b").unwrap().unwrap();
        assert_eq!((b.expires_at, b.expiry.sliding_secs), (Some(1100), Some(100)));
        assert!(s.peek("a").unwrap().is_none());
        // Neither the expired row was deleted nor the sliding one extended.
        assert_eq!(s.row_count().unwrap(), 3);
        assert_eq!(s.peek("b").unwrap().unwrap().expires_at, Some(1100));
    }

    #[test]
    fn already_expired_set_deletes() {
        let s = SqliteStore::open_in_memory(SqliteOptions { clock: Arc::new(|| 1000), ..Default::default() }).unwrap();
        s.set("k", Bytes::from_static(b"v"), Expiry::at(2000)).unwrap();
        assert_eq!(s.row_count().unwrap(), 1);
        s.set("k", Bytes::from_static(b"v"), Expiry::at(1000)).unwrap();
        assert_eq!(s.row_count().unwrap(), 0);
    }
}

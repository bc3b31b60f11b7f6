//! Short leases in a shared store: which process fetches a token that several are
//! missing at once (see [`crate::coalesce`]). A lease has a key, an owner (an id
//! unique to one flight) and a time to live; only its owner releases it, and one
//! whose owner died expires by itself.
//!
//! - Redis ([`RedisStore`](super::RedisStore)): `SET key owner NX PX ttl` (in a script
//!   that also lets the owner re-take its own lease, so a retried call is harmless)
//!   and a compare-and-delete script for release. Key `<prefix>{lease:<key>}`.
//! - SQLite ([`SqliteStore`](super::SqliteStore)): a row of table `tokencache_leases`
//!   `(id, owner, expires_at_ms)`, taken in an `IMMEDIATE` transaction (so two
//!   processes can't both see it free) that replaces an expired row.
//! - [`MemoryLeases`]: a table in this process, for tests and single-process use.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::error::{Error, ErrorKind, Result};

/// A store of short leases shared by the processes that may fetch the same token.
/// Implementations are thread-safe.
pub trait LeaseStore: Send + Sync {
    /// Takes the lease `key` for `owner` for `ttl` if nobody else holds it (a lease
    /// past its TTL is nobody's). Returns whether `owner` holds it now. Taking a
    /// lease one already holds succeeds and renews it.
    fn try_acquire(&self, key: &str, owner: &str, ttl: Duration) -> Result<bool>;

    /// Gives the lease `key` back if `owner` holds it. Returns whether it did (false:
    /// it had expired, and maybe someone else holds it now — left alone).
    fn release(&self, key: &str, owner: &str) -> Result<bool>;
}

fn check(key: &str, owner: &str, ttl: Option<Duration>) -> Result<()> {
    if key.is_empty() || owner.is_empty() {
        return Err(Error::new(ErrorKind::InvalidArgument, "a lease needs a non-empty key and owner"));
    }
    if ttl.is_some_and(|t| t.as_millis() == 0 || t.as_millis() > i64::MAX as u128 / 2) {
        return Err(Error::new(ErrorKind::InvalidArgument, "a lease's ttl must be at least 1 ms"));
    }
    Ok(())
}

/// Leases in this process's memory: for tests, and for coalescers that share one
/// lease table without a store.
#[derive(Debug, Default)]
pub struct MemoryLeases {
    held: Mutex<HashMap<String, (String, Instant)>>,
}

impl MemoryLeases {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Leases held and not expired.
    pub fn len(&self) -> usize {
        let now = Instant::now();
        self.held.lock().values().filter(|(_, until)| *until > now).count()
    }

    /// Whether no lease is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl LeaseStore for MemoryLeases {
    fn try_acquire(&self, key: &str, owner: &str, ttl: Duration) -> Result<bool> {
        check(key, owner, Some(ttl))?;
        let now = Instant::now();
        let mut held = self.held.lock();
        match held.get(key) {
            Some((o, until)) if *until > now && o != owner => Ok(false),
            _ => {
                held.insert(key.to_owned(), (owner.to_owned(), now + ttl));
                Ok(true)
            }
        }
    }

    fn release(&self, key: &str, owner: &str) -> Result<bool> {
        check(key, owner, None)?;
        let mut held = self.held.lock();
        let now = Instant::now();
        match held.get(key) {
            Some((o, until)) if o == owner => {
                let live = *until > now;
                held.remove(key);
                Ok(live)
            }
            _ => Ok(false),
        }
    }
}

#[cfg(feature = "redis")]
mod redis_leases {
    use std::sync::LazyLock;
    use std::time::Duration;

    use super::{LeaseStore, check};
    use crate::error::Result;
    use crate::store::RedisStore;

    /// Take if free or already ours (renewing it): idempotent, so the store's one
    /// retry on a dropped connection can't lose a lease we just took.
    static ACQUIRE: LazyLock<redis::Script> = LazyLock::new(|| {
        redis::Script::new(
            r"
            if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
            if redis.call('GET', KEYS[1]) == ARGV[1] then
                redis.call('PEXPIRE', KEYS[1], ARGV[2])
                return 1
            end
            return 0",
        )
    });

    /// Compare-and-delete: only the owner's value is removed.
    static RELEASE: LazyLock<redis::Script> = LazyLock::new(|| {
        redis::Script::new(
            r"
            if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
            return 0",
        )
    });

    fn lease_key(store: &RedisStore, key: &str) -> String {
        store.key_for(&format!("lease:{key}"))
    }

    impl LeaseStore for RedisStore {
        fn try_acquire(&self, key: &str, owner: &str, ttl: Duration) -> Result<bool> {
            check(key, owner, Some(ttl))?;
            let k = lease_key(self, key);
            let ms = ttl.as_millis() as i64;
            self.run_on_connection("lease acquire", |c| ACQUIRE.key(&k).arg(owner).arg(ms).invoke::<i64>(c))
                .map(|n| n == 1)
        }

        fn release(&self, key: &str, owner: &str) -> Result<bool> {
            check(key, owner, None)?;
            let k = lease_key(self, key);
            self.run_on_connection("lease release", |c| RELEASE.key(&k).arg(owner).invoke::<i64>(c)).map(|n| n == 1)
        }
    }
}

#[cfg(feature = "sqlite")]
mod sqlite_leases {
    use std::time::Duration;

    use rusqlite::{OptionalExtension, TransactionBehavior, params};

    use super::{LeaseStore, check};
    use crate::error::Result;
    use crate::store::SqliteStore;

    const TABLE: &str = "CREATE TABLE IF NOT EXISTS tokencache_leases (
        id TEXT NOT NULL PRIMARY KEY,
        owner TEXT NOT NULL,
        expires_at_ms INTEGER NOT NULL
    )";

    /// Wall-clock milliseconds: leases are compared across processes of one host.
    fn now_ms() -> i64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
    }

    impl LeaseStore for SqliteStore {
        fn try_acquire(&self, key: &str, owner: &str, ttl: Duration) -> Result<bool> {
            check(key, owner, Some(ttl))?;
            let ms = ttl.as_millis() as i64;
            self.with_connection("lease acquire", |conn| {
                // IMMEDIATE: the write lock is taken before the read, so no other
                // process sees the lease free between our read and our write.
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                tx.execute(TABLE, [])?;
                let now = now_ms();
                let current: Option<(String, i64)> = tx
                    .prepare_cached("SELECT owner, expires_at_ms FROM tokencache_leases WHERE id = ?1")?
                    .query_row(params![key], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                let free = match &current {
                    None => true,
                    Some((o, until)) => *until <= now || o == owner,
                };
                if free {
                    tx.prepare_cached(
                        "INSERT INTO tokencache_leases (id, owner, expires_at_ms) VALUES (?1, ?2, ?3)
                         ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, expires_at_ms = excluded.expires_at_ms",
                    )?
                    .execute(params![key, owner, now.saturating_add(ms)])?;
                }
                tx.commit()?;
                Ok(free)
            })
        }

        fn release(&self, key: &str, owner: &str) -> Result<bool> {
            check(key, owner, None)?;
            self.with_connection("lease release", |conn| {
                conn.execute(TABLE, [])?;
                let n = conn.execute(
                    "DELETE FROM tokencache_leases WHERE id = ?1 AND owner = ?2 AND expires_at_ms > ?3",
                    params![key, owner, now_ms()],
                )?;
                // An expired row of ours is nobody's: drop it too, but report it as not held.
                conn.execute("DELETE FROM tokencache_leases WHERE id = ?1 AND owner = ?2", params![key, owner])?;
                Ok(n == 1)
            })
        }
    }
}

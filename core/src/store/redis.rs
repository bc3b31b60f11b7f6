//! [`RedisStore`]: blobs in Redis (standalone or Redis Cluster), the distributed L2.

use std::sync::LazyLock;
use std::time::Duration;

use bytes::Bytes;
use redis::{ConnectionLike, RedisError, RedisResult};

use super::{
    CasOutcome, Clock, Exclusive, Expiry, L2Store, ListStore, Store, StoredBlob, Update, UpdateFn, Version,
    VersionedBlob, VersionedStore, system_clock,
};
use crate::error::{Error, ErrorKind, Result};

/// How a [`RedisStore`] connects and names its keys.
#[derive(Clone)]
pub struct RedisOptions {
    /// Prepended to every key, e.g. `"myapp:tokens:"`. Must not contain `{` or `}`
    /// (it would become the hash tag and put every key in one cluster slot).
    /// Default `"tokencache:"`.
    pub key_prefix: String,
    /// Most connections open at once. Default 16.
    pub max_connections: u32,
    /// Bound on establishing a connection, and on waiting for a free pooled one.
    /// Default 1 s.
    pub connect_timeout: Duration,
    /// Bound on waiting for a reply. Default 1 s.
    pub read_timeout: Duration,
    /// Bound on sending a request. Default 1 s.
    pub write_timeout: Duration,
    /// For `rediss://`: the PEM certificate(s) of the CA that signed the server's
    /// certificate, instead of the system's roots (a private CA, as managed Redis
    /// services and self-hosted clusters often use). Default none.
    pub tls_root_certificates_pem: Option<Vec<u8>>,
    /// Source of the current time for TTLs (tests inject one).
    pub clock: Clock,
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            key_prefix: "tokencache:".into(),
            max_connections: 16,
            connect_timeout: Duration::from_secs(1),
            read_timeout: Duration::from_secs(1),
            write_timeout: Duration::from_secs(1),
            tls_root_certificates_pem: None,
            clock: system_clock(),
        }
    }
}

impl std::fmt::Debug for RedisOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisOptions")
            .field("key_prefix", &self.key_prefix)
            .field("max_connections", &self.max_connections)
            .field("connect_timeout", &self.connect_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("write_timeout", &self.write_timeout)
            .field("tls_root_certificates_pem", &self.tls_root_certificates_pem.as_ref().map(|_| "(set)"))
            .finish_non_exhaustive()
    }
}

/// The Redis key of `partition` under `prefix`: `{prefix}{{partition}}`. The braces
/// make the partition key the Redis Cluster hash tag.
pub fn redis_key(prefix: &str, partition: &str) -> String {
    let mut k = String::with_capacity(prefix.len() + partition.len() + 2);
    k.push_str(prefix);
    k.push('{');
    k.push_str(partition);
    k.push('}');
    k
}

/// `url` with any password replaced by `***`, for messages and `Debug`.
fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else { return url.to_owned() };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}***@{}", &url[..scheme_end], &rest[at + 1..]),
        None => url.to_owned(),
    }
}

enum Backend {
    Single(redis::Client),
    Cluster(redis::cluster::ClusterClient),
}

struct Connector {
    backend: Backend,
    connect_timeout: Duration,
    read_timeout: Duration,
    write_timeout: Duration,
}

type Connection = Box<dyn ConnectionLike + Send>;

impl r2d2::ManageConnection for Connector {
    type Connection = Connection;
    type Error = RedisError;

    fn connect(&self) -> RedisResult<Connection> {
        match &self.backend {
            Backend::Single(client) => {
                let conn = client.get_connection_with_timeout(self.connect_timeout)?;
                conn.set_read_timeout(Some(self.read_timeout))?;
                conn.set_write_timeout(Some(self.write_timeout))?;
                Ok(Box::new(conn))
            }
            Backend::Cluster(client) => {
                let conn = client.get_connection()?;
                conn.set_read_timeout(Some(self.read_timeout))?;
                conn.set_write_timeout(Some(self.write_timeout))?;
                Ok(Box::new(conn))
            }
        }
    }

    fn is_valid(&self, conn: &mut Connection) -> RedisResult<()> {
        if conn.check_connection() {
            Ok(())
        } else {
            Err(RedisError::from((redis::ErrorKind::Io, "connection closed")))
        }
    }

    fn has_broken(&self, conn: &mut Connection) -> bool {
        !conn.is_open()
    }
}

/// Connection failures are reported by the operation that needed the connection;
/// the pool's own attempts only go to the debug log.
#[derive(Debug)]
struct DebugLogErrors;

impl r2d2::HandleError<RedisError> for DebugLogErrors {
    fn handle_error(&self, e: RedisError) {
        log::debug!("redis connection attempt failed: {e}");
    }
}

/// Reads a blob and, for a sliding entry, pushes its TTL forward (capped by its
/// absolute deadline) in the same round trip; returns `{blob, ttl}` (ttl -1: none).
/// ARGV[1] = now (Unix seconds).
static GET_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local v = redis.call('HMGET', KEYS[1], 'data', 'sld', 'abs')
if not v[1] then return false end
if v[2] then
  local ttl = tonumber(v[2])
  if v[3] then
    local left = tonumber(v[3]) - tonumber(ARGV[1])
    if left < ttl then ttl = left end
  end
  if ttl <= 0 then
    redis.call('DEL', KEYS[1])
    return false
  end
  redis.call('EXPIRE', KEYS[1], ttl)
  return {v[1], ttl}
end
return {v[1], redis.call('TTL', KEYS[1])}
",
    )
});

/// Replaces a blob atomically. ARGV: data, TTL seconds (0 = none), sliding seconds
/// ('' = none), absolute deadline ('' = none), version.
static SET_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'data', ARGV[1])
redis.call('HSET', KEYS[1], 'ver', ARGV[5])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'sld', ARGV[3]) end
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'abs', ARGV[4]) end
local ttl = tonumber(ARGV[2])
if ttl > 0 then redis.call('EXPIRE', KEYS[1], ttl) end
return 1
",
    )
});

/// As `GET_SCRIPT`, with the version: `{blob, ttl, version}` (version '0' for a
/// hash written before versions).
static GET_VERSIONED_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local v = redis.call('HMGET', KEYS[1], 'data', 'sld', 'abs', 'ver')
if not v[1] then return false end
local ver = v[4] or '0'
if v[2] then
  local ttl = tonumber(v[2])
  if v[3] then
    local left = tonumber(v[3]) - tonumber(ARGV[1])
    if left < ttl then ttl = left end
  end
  if ttl <= 0 then
    redis.call('DEL', KEYS[1])
    return false
  end
  redis.call('EXPIRE', KEYS[1], ttl)
  return {v[1], ttl, ver}
end
return {v[1], redis.call('TTL', KEYS[1]), ver}
",
    )
});

/// The version of a blob ('0' for one written before versions), touching nothing.
static VERSION_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local v = redis.call('HMGET', KEYS[1], 'data', 'ver')
if not v[1] then return false end
return v[2] or '0'
",
    )
});

/// Lua: whether hash field value `h` (`"<holder>:<until ms>"`, or false) holds
/// the key for a writer other than `me` now (server time).
const HELD_BY_OTHER: &str = r"
local function held_by_other(h, me)
  if not h then return false end
  local sep = string.find(h, ':', 1, true)
  if not sep or string.sub(h, 1, sep - 1) == me then return false end
  local t = redis.call('TIME')
  return tonumber(string.sub(h, sep + 1)) > tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
";

/// Replaces a blob only if it is at version ARGV[1] ('' = only if absent) and not
/// held by a writer other than ARGV[7] (see `HOLD_SCRIPT`); then as `SET_SCRIPT`
/// with ARGV[2..6] = data, TTL, sliding, absolute, new version (which ends any
/// hold). Returns 1 when written, 0 on a conflict.
static CAS_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(&format!(
        r"{HELD_BY_OTHER}
local cur = redis.call('HMGET', KEYS[1], 'data', 'ver', 'hold')
if ARGV[1] == '' then
  if cur[1] then return 0 end
elseif not cur[1] or (cur[2] or '0') ~= ARGV[1] then
  return 0
end
if held_by_other(cur[3], ARGV[7]) then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'data', ARGV[2])
redis.call('HSET', KEYS[1], 'ver', ARGV[6])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'sld', ARGV[4]) end
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'abs', ARGV[5]) end
local ttl = tonumber(ARGV[3])
if ttl > 0 then redis.call('EXPIRE', KEYS[1], ttl) end
return 1
",
    ))
});

/// Deletes a blob only if it is at version ARGV[1] and not held by a writer other
/// than ARGV[2]. Returns 1 when deleted.
static CAS_DELETE_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(&format!(
        r"{HELD_BY_OTHER}
local cur = redis.call('HMGET', KEYS[1], 'data', 'ver', 'hold')
if not cur[1] or (cur[2] or '0') ~= ARGV[1] then return 0 end
if held_by_other(cur[3], ARGV[2]) then return 0 end
redis.call('DEL', KEYS[1])
return 1
",
    ))
});

/// Holds an existing blob for writer ARGV[1] for ARGV[2] ms (server time): field
/// `hold` = `"<holder>:<until ms>"`, which the conditional writes of others respect
/// and the holder's next write clears. ARGV[2] = 0 releases the writer's own hold.
/// Returns 1 when held (or released), 0 when absent or held by another.
static HOLD_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(&format!(
        r"{HELD_BY_OTHER}
local cur = redis.call('HMGET', KEYS[1], 'data', 'hold')
if not cur[1] or held_by_other(cur[2], ARGV[1]) then return 0 end
if tonumber(ARGV[2]) == 0 then
  redis.call('HDEL', KEYS[1], 'hold')
  return 1
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], 'hold', ARGV[1] .. ':' .. (now + tonumber(ARGV[2])))
return 1
",
    ))
});

/// How long a hold lasts at most (a holder that dies releases it this late).
const HOLD_MS: u64 = 2_000;

/// Reads a blob and how it was stored, touching nothing. Returns
/// `{blob, sliding or '', absolute or '', ttl}` (ttl -1: none).
static PEEK_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local v = redis.call('HMGET', KEYS[1], 'data', 'sld', 'abs')
if not v[1] then return false end
return {v[1], v[2] or '', v[3] or '', redis.call('TTL', KEYS[1])}
",
    )
});

/// What `INFO` says about a Redis server's memory and evictions: what decides
/// whether it may drop cached partitions on its own.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RedisServerInfo {
    /// `redis_version`.
    pub version: Option<String>,
    /// `used_memory` in bytes.
    pub used_memory: Option<u64>,
    /// `maxmemory` in bytes (0: no limit).
    pub maxmemory: Option<u64>,
    /// `maxmemory_policy`, e.g. `noeviction`, `allkeys-lru`, `volatile-lru`.
    pub maxmemory_policy: Option<String>,
    /// `evicted_keys`: keys dropped for memory since the server started.
    pub evicted_keys: Option<u64>,
}

impl RedisServerInfo {
    /// Reads the reply of `INFO` (`field:value` lines).
    pub fn parse(info: &str) -> Self {
        let mut out = RedisServerInfo::default();
        for line in info.lines() {
            let Some((k, v)) = line.trim_end().split_once(':') else { continue };
            match k {
                "redis_version" => out.version = Some(v.to_owned()),
                "used_memory" => out.used_memory = v.parse().ok(),
                "maxmemory" => out.maxmemory = v.parse().ok(),
                "maxmemory_policy" => out.maxmemory_policy = Some(v.to_owned()),
                "evicted_keys" => out.evicted_keys = v.parse().ok(),
                _ => {}
            }
        }
        out
    }
}

/// `s` with Redis glob characters escaped, for `SCAN MATCH`.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\' | '^') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Blobs in Redis, standalone or cluster, over a pool of blocking connections.
/// Thread-safe. Opening does not connect: a store created while Redis is down
/// works once it is up ([`ping`](Self::ping) checks now).
///
/// Connections are the `redis` crate's blocking ones, pooled by `r2d2`: the `Store`
/// trait is synchronous, so an async client would need a runtime inside a library
/// that must not impose one, and the crate's own `ConnectionManager` is async-only.
/// The pool bounds concurrent connections, drops those the server closed, and bounds
/// the wait for a free connection by the connect timeout.
///
/// Each partition is one Redis hash `<prefix>{<partition>}` with the blob in field
/// `data` and, for sliding expiry, `sld` (seconds) and `abs` (Unix time) — the
/// layout Microsoft.Extensions.Caching.StackExchangeRedis uses — plus `ver`, the
/// blob's [`Version`] (a decimal `u64`, new on every write) for conditional writes
/// ([`VersionedStore`], one Lua script each, so atomic in a cluster too: one key). The key's TTL is
/// the entry's deadline; a read of a sliding entry extends it in the same round
/// trip (a Lua script). The braces make the partition the key's hash tag, so in a
/// cluster everything stored for one partition lives in one slot.
///
/// `rediss://` URLs use TLS (feature `redis-tls`, on by default) with the system's
/// root certificates.
pub struct RedisStore {
    pool: r2d2::Pool<Connector>,
    prefix: String,
    clock: Clock,
    /// The URL(s) without passwords.
    target: String,
    cluster: bool,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("target", &self.target)
            .field("cluster", &self.cluster)
            .field("key_prefix", &self.prefix)
            .finish()
    }
}

fn install_tls_provider(urls: &[&str]) {
    #[cfg(feature = "redis-tls")]
    if urls.iter().any(|u| u.starts_with("rediss:")) {
        // rustls needs a process-wide crypto provider; install ours unless the
        // application already chose one (then this fails, harmlessly).
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    #[cfg(not(feature = "redis-tls"))]
    let _ = urls;
}

#[cfg(feature = "redis-tls")]
fn tls_certificates(options: &RedisOptions) -> Result<Option<redis::TlsCertificates>> {
    Ok(options
        .tls_root_certificates_pem
        .clone()
        .map(|pem| redis::TlsCertificates { client_tls: None, root_cert: Some(pem) }))
}

#[cfg(not(feature = "redis-tls"))]
fn tls_certificates(options: &RedisOptions) -> Result<Option<std::convert::Infallible>> {
    match options.tls_root_certificates_pem {
        Some(_) => Err(Error::new(
            ErrorKind::InvalidArgument,
            "tls_root_certificates_pem needs the redis-tls feature of tokencache",
        )),
        None => Ok(None),
    }
}

fn config_error(target: &str, e: &RedisError) -> Error {
    Error::new(ErrorKind::InvalidArgument, format!("redis {target}: {e}"))
}

impl RedisStore {
    /// A store on the standalone server at `url` (`redis://[user:password@]host[:port][/db]`,
    /// `rediss://` for TLS).
    pub fn open(url: &str, options: RedisOptions) -> Result<Self> {
        let target = redact(url);
        install_tls_provider(&[url]);
        let client = match tls_certificates(&options)? {
            #[cfg(feature = "redis-tls")]
            Some(certs) => redis::Client::build_with_tls(url, certs),
            _ => redis::Client::open(url),
        }
        .map_err(|e| config_error(&target, &e))?;
        Self::build(Backend::Single(client), target, false, options)
    }

    /// A store on the Redis Cluster reached through `nodes` (one or more seed URLs;
    /// the rest of the cluster is discovered).
    pub fn open_cluster<'a>(nodes: impl IntoIterator<Item = &'a str>, options: RedisOptions) -> Result<Self> {
        let nodes: Vec<&str> = nodes.into_iter().collect();
        let target = nodes.iter().map(|u| redact(u)).collect::<Vec<_>>().join(",");
        if nodes.is_empty() {
            return Err(Error::new(ErrorKind::InvalidArgument, "redis cluster: no seed node given"));
        }
        install_tls_provider(&nodes);
        let builder = redis::cluster::ClusterClient::builder(nodes)
            .connection_timeout(options.connect_timeout)
            .response_timeout(options.read_timeout);
        #[cfg(feature = "redis-tls")]
        let builder = match tls_certificates(&options)? {
            Some(certs) => builder.certs(certs),
            None => builder,
        };
        let client = builder.build().map_err(|e| config_error(&target, &e))?;
        Self::build(Backend::Cluster(client), target, true, options)
    }

    fn build(backend: Backend, target: String, cluster: bool, options: RedisOptions) -> Result<Self> {
        if options.key_prefix.contains(['{', '}']) {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "redis key prefix must not contain '{' or '}' (the partition key is the hash tag)",
            ));
        }
        if options.max_connections == 0 {
            return Err(Error::new(ErrorKind::InvalidArgument, "redis max_connections must be at least 1"));
        }
        let connector = Connector {
            backend,
            connect_timeout: options.connect_timeout,
            read_timeout: options.read_timeout,
            write_timeout: options.write_timeout,
        };
        // No idle minimum: connections open on demand, so a down server costs
        // nothing until an operation needs it. No checkout test: it would add a
        // PING round trip to every operation; a dropped connection is retried instead.
        let pool = r2d2::Pool::builder()
            .max_size(options.max_connections)
            .min_idle(Some(0))
            .connection_timeout(options.connect_timeout)
            .test_on_check_out(false)
            .error_handler(Box::new(DebugLogErrors))
            .build_unchecked(connector);
        Ok(RedisStore { pool, prefix: options.key_prefix, clock: options.clock, target, cluster })
    }

    /// The Redis key that holds `partition`.
    pub fn key_for(&self, partition: &str) -> String {
        redis_key(&self.prefix, partition)
    }

    /// Whether this store talks to a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.cluster
    }

    /// Checks that Redis answers (a `PING`).
    pub fn ping(&self) -> Result<()> {
        self.run("ping", |c| redis::cmd("PING").query::<String>(c).map(drop))
    }

    /// What the server's `INFO` says about memory and evictions.
    pub fn server_info(&self) -> Result<RedisServerInfo> {
        let text: String = self.run("info", |c| redis::cmd("INFO").query(c))?;
        Ok(RedisServerInfo::parse(&text))
    }

    fn unavailable(&self, what: &str, e: &dyn std::fmt::Display) -> Error {
        Error::new(ErrorKind::StoreUnavailable, format!("redis {}: {what}: {e}", self.target))
    }

    /// Runs `op` on a pooled connection. A connection the server has closed since
    /// it was pooled (a restart, an idle timeout) fails its first request; that one
    /// case is retried once on a fresh connection. Every operation here is idempotent.
    fn run<T>(&self, what: &str, op: impl Fn(&mut dyn ConnectionLike) -> RedisResult<T>) -> Result<T> {
        let mut conn = self.pool.get().map_err(|e| self.unavailable(what, &e))?;
        match op(&mut **conn) {
            Ok(v) => Ok(v),
            Err(e) if e.is_connection_dropped() => {
                drop(conn);
                log::debug!("redis {}: {what}: pooled connection was closed ({e}); retrying", self.target);
                let mut conn = self.pool.get().map_err(|e| self.unavailable(what, &e))?;
                op(&mut **conn).map_err(|e| self.unavailable(what, &e))
            }
            Err(e) => Err(self.unavailable(what, &e)),
        }
    }

    /// Runs `op` on a pooled connection, as the store's own operations do (for
    /// `store::lease`; `op` must be idempotent: it is retried once on a dropped connection).
    pub(crate) fn run_on_connection<T>(
        &self,
        what: &str,
        op: impl Fn(&mut dyn ConnectionLike) -> RedisResult<T>,
    ) -> Result<T> {
        self.run(what, op)
    }
}

impl L2Store for RedisStore {
    fn get_with_deadline(&self, key: &str) -> Result<Option<(Bytes, Option<i64>)>> {
        let now = (self.clock)();
        let k = self.key_for(key);
        let v: Option<(Vec<u8>, i64)> = self.run("read", |c| GET_SCRIPT.key(&k).arg(now).invoke(c))?;
        Ok(v.map(|(blob, ttl)| (Bytes::from(blob), (ttl > 0).then(|| now + ttl))))
    }
}

impl Store for RedisStore {
    fn get(&self, key: &str) -> Result<Option<Bytes>> {
        Ok(self.get_with_deadline(key)?.map(|(blob, _)| blob))
    }

    fn set(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<()> {
        let now = (self.clock)();
        let k = self.key_for(key);
        let ttl = match expiry.deadline(now) {
            // Already past: Redis rejects a non-positive TTL; the entry is gone anyway.
            Some(d) if d <= now => return self.remove(key),
            Some(d) => d - now,
            None => 0,
        };
        let (sliding, absolute) = match expiry.sliding_secs {
            Some(s) => (s.to_string(), expiry.absolute.map(|a| a.to_string()).unwrap_or_default()),
            None => (String::new(), String::new()),
        };
        let version = Version::fresh().0.to_string();
        self.run("write", |c| {
            SET_SCRIPT.key(&k).arg(&value[..]).arg(ttl).arg(&sliding).arg(&absolute).arg(&version).invoke::<i64>(c)
        })
        .map(drop)
    }

    fn as_versioned(&self) -> Option<&dyn VersionedStore> {
        Some(self)
    }

    fn remove(&self, key: &str) -> Result<()> {
        let k = self.key_for(key);
        self.run("delete", |c| redis::cmd("DEL").arg(&k).query::<i64>(c)).map(drop)
    }

    /// Redis drops expired keys itself: nothing to do, returns 0.
    fn purge_expired(&self) -> Result<u64> {
        Ok(0)
    }
}

fn parse_version(s: &str) -> Version {
    // Only this library writes `ver`; anything unreadable compares as a version no
    // writer holds, so a conditional write over it conflicts instead of guessing.
    s.parse().map(Version).unwrap_or(Version(u64::MAX))
}

/// The TTL and the hash fields for `expiry` at `now`; `None` when already past.
fn ttl_fields(expiry: Expiry, now: i64) -> Option<(i64, String, String)> {
    let ttl = match expiry.deadline(now) {
        Some(d) if d <= now => return None,
        Some(d) => d - now,
        None => 0,
    };
    Some(match expiry.sliding_secs {
        Some(s) => (ttl, s.to_string(), expiry.absolute.map(|a| a.to_string()).unwrap_or_default()),
        None => (ttl, String::new(), String::new()),
    })
}

impl VersionedStore for RedisStore {
    fn get_versioned(&self, key: &str) -> Result<Option<VersionedBlob>> {
        let now = (self.clock)();
        let k = self.key_for(key);
        let v: Option<(Vec<u8>, i64, String)> =
            self.run("read", |c| GET_VERSIONED_SCRIPT.key(&k).arg(now).invoke(c))?;
        Ok(v.map(|(blob, ttl, ver)| VersionedBlob {
            value: Bytes::from(blob),
            version: parse_version(&ver),
            deadline: (ttl > 0).then(|| now + ttl),
        }))
    }

    fn version(&self, key: &str) -> Result<Option<Version>> {
        let k = self.key_for(key);
        let v: Option<String> = self.run("read version", |c| VERSION_SCRIPT.key(&k).invoke(c))?;
        Ok(v.as_deref().map(parse_version))
    }

    /// Not idempotent: if a dropped connection makes [`RedisStore`] send it twice,
    /// the second finds its own write and reports a conflict, which the provider's
    /// merge then finds has nothing left to write.
    fn compare_and_set(
        &self,
        key: &str,
        expected: Option<Version>,
        value: Bytes,
        expiry: Expiry,
    ) -> Result<CasOutcome> {
        self.cas(key, expected, value, expiry, "")
    }

    fn compare_and_remove(&self, key: &str, expected: Version) -> Result<bool> {
        self.cas_remove(key, expected, "")
    }

    /// Holds the hash (field `hold`, see `HOLD_SCRIPT`) while `update` runs, then
    /// writes as the holder. Unavailable when the key is absent (nothing to hold),
    /// held by another writer, or the hold lapsed before the write.
    fn update_exclusive(&self, key: &str, update: &mut UpdateFn<'_>) -> Result<Exclusive> {
        let k = self.key_for(key);
        let me = Version::fresh().0.to_string();
        let held: i64 = self.run("hold", |c| HOLD_SCRIPT.key(&k).arg(&me).arg(HOLD_MS).invoke(c))?;
        if held != 1 {
            return Ok(Exclusive::Unavailable);
        }
        let release = || {
            let r: Result<i64> = self.run("release hold", |c| HOLD_SCRIPT.key(&k).arg(&me).arg(0).invoke(c));
            if let Err(e) = r {
                log::debug!("redis {}: releasing a hold failed ({e}); it lapses by itself", self.target);
            }
        };
        let current = match self.get_versioned(key) {
            Ok(Some(c)) => c,
            Ok(None) => return Ok(Exclusive::Unavailable),
            Err(e) => {
                release();
                return Err(e);
            }
        };
        let outcome = match update(Some(&current)) {
            Ok(Update::Keep) => {
                release();
                return Ok(Exclusive::Done(None));
            }
            Ok(Update::Remove) => self.cas_remove(key, current.version, &me).map(|done| done.then_some(None)),
            Ok(Update::Write(value, expiry)) => {
                self.cas(key, Some(current.version), value, expiry, &me).map(|o| match o {
                    CasOutcome::Written(v) => Some(Some(v)),
                    CasOutcome::Conflict => None,
                })
            }
            Err(e) => Err(e),
        };
        match outcome {
            Ok(Some(v)) => Ok(Exclusive::Done(v)),
            Ok(None) => {
                release();
                Ok(Exclusive::Unavailable)
            }
            Err(e) => {
                release();
                Err(e)
            }
        }
    }
}

impl RedisStore {
    fn cas(
        &self,
        key: &str,
        expected: Option<Version>,
        value: Bytes,
        expiry: Expiry,
        holder: &str,
    ) -> Result<CasOutcome> {
        let now = (self.clock)();
        let Some((ttl, sliding, absolute)) = ttl_fields(expiry, now) else {
            // Already past: the write is a conditional removal.
            let done = match expected {
                Some(v) => self.cas_remove(key, v, holder)?,
                None => self.version(key)?.is_none(),
            };
            return Ok(if done { CasOutcome::Written(Version::fresh()) } else { CasOutcome::Conflict });
        };
        let k = self.key_for(key);
        let expected = expected.map(|v| v.0.to_string()).unwrap_or_default();
        let version = Version::fresh();
        let new = version.0.to_string();
        let n: i64 = self.run("conditional write", |c| {
            CAS_SCRIPT
                .key(&k)
                .arg(&expected)
                .arg(&value[..])
                .arg(ttl)
                .arg(&sliding)
                .arg(&absolute)
                .arg(&new)
                .arg(holder)
                .invoke(c)
        })?;
        Ok(if n == 1 { CasOutcome::Written(version) } else { CasOutcome::Conflict })
    }

    fn cas_remove(&self, key: &str, expected: Version, holder: &str) -> Result<bool> {
        let k = self.key_for(key);
        let expected = expected.0.to_string();
        let n: i64 =
            self.run("conditional delete", |c| CAS_DELETE_SCRIPT.key(&k).arg(&expected).arg(holder).invoke(c))?;
        Ok(n == 1)
    }
}

impl ListStore for RedisStore {
    /// The partition keys under this store's prefix (`SCAN`, so the server is never
    /// blocked), without a `TieredStore`'s [`EPOCH_KEY`](super::EPOCH_KEY). Standalone
    /// servers only: a cluster's keys live on several nodes.
    fn keys(&self) -> Result<Vec<String>> {
        if self.cluster {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!("redis {}: listing the keys of a Redis Cluster is not supported", self.target),
            ));
        }
        let pattern = format!("{}{{*}}", glob_escape(&self.prefix));
        let mut cursor: u64 = 0;
        let mut out = Vec::new();
        loop {
            let (next, batch): (u64, Vec<Vec<u8>>) = self.run("list", |c| {
                redis::cmd("SCAN").arg(cursor).arg("MATCH").arg(&pattern).arg("COUNT").arg(1000).query(c)
            })?;
            for raw in batch {
                let Ok(k) = String::from_utf8(raw) else { continue };
                if let Some(p) =
                    k.strip_prefix(self.prefix.as_str()).and_then(|r| r.strip_prefix('{')?.strip_suffix('}'))
                    && p != super::EPOCH_KEY
                {
                    out.push(p.to_owned());
                }
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        out.sort_unstable();
        out.dedup(); // SCAN may return a key twice
        Ok(out)
    }

    fn peek(&self, key: &str) -> Result<Option<StoredBlob>> {
        let now = (self.clock)();
        let k = self.key_for(key);
        let v: Option<(Vec<u8>, String, String, i64)> = self.run("read", |c| PEEK_SCRIPT.key(&k).invoke(c))?;
        Ok(v.map(|(blob, sliding, absolute, ttl)| StoredBlob {
            value: Bytes::from(blob),
            expiry: Expiry { absolute: absolute.parse().ok(), sliding_secs: sliding.parse().ok() },
            expires_at: (ttl > 0).then(|| now + ttl),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_is_read() {
        let i = RedisServerInfo::parse(
            "# Server\r\nredis_version:7.0.15\r\n# Memory\r\nused_memory:1024\r\nmaxmemory:0\r\n\
             maxmemory_policy:allkeys-lru\r\n# Stats\r\nevicted_keys:3\r\n",
        );
        assert_eq!(i.version.as_deref(), Some("7.0.15"));
        assert_eq!((i.used_memory, i.maxmemory, i.evicted_keys), (Some(1024), Some(0), Some(3)));
        assert_eq!(i.maxmemory_policy.as_deref(), Some("allkeys-lru"));
    }

    #[test]
    fn prefixes_are_glob_escaped() {
        assert_eq!(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("redis://:hunter2@host:6379/0"), "redis://***@host:6379/0");
        assert_eq!(redact("rediss://user:p@ss@host"), "rediss://***@host");
        assert_eq!(redact("redis://host:6379/0?x=a@b"), "redis://host:6379/0?x=a@b");
        assert_eq!(redact("unix:///tmp/redis.sock"), "unix:///tmp/redis.sock");
    }

    #[test]
    fn the_partition_is_the_hash_tag() {
        assert_eq!(redis_key("app:", "uid.utid"), "app:{uid.utid}");
        assert_eq!(redis_key("", ""), "{}");
    }
}

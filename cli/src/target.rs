//! Where a cache is: the TARGET argument, and opening it.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use tokencache::store::{
    Clock, KeyRing, ListStore, RedisOptions, RedisStore, SqliteOptions, SqliteStore, system_clock,
};

use crate::{Failure, TargetArgs};

/// A cache file, a SQLite database or a Redis server.
#[derive(Clone, Debug)]
pub enum Target {
    File(PathBuf),
    Sqlite(PathBuf),
    Redis(String),
}

impl FromStr for Target {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Err("empty target".into());
        }
        if s.starts_with("redis://") || s.starts_with("rediss://") {
            return Ok(Target::Redis(s.to_owned()));
        }
        if let Some(path) = s.strip_prefix("sqlite:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err("sqlite: needs a path, e.g. sqlite:tokens.db".into());
            }
            return Ok(Target::Sqlite(PathBuf::from(path)));
        }
        if s.contains("://") {
            return Err(format!(
                "unsupported URL scheme in {:?}: use a path, sqlite:PATH, redis:// or rediss://",
                redact(s)
            ));
        }
        let path = PathBuf::from(s);
        let sqlite =
            path.extension().and_then(|e| e.to_str()).is_some_and(|e| matches!(e, "db" | "sqlite" | "sqlite3"));
        Ok(if sqlite { Target::Sqlite(path) } else { Target::File(path) })
    }
}

/// `url` without its password.
fn redact(url: &str) -> String {
    let Some(start) = url.find("://").map(|i| i + 3) else { return url.to_owned() };
    let rest = &url[start..];
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{}***@{}", &url[..start], &rest[at + 1..]),
        None => url.to_owned(),
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::File(p) => write!(f, "{}", p.display()),
            Target::Sqlite(p) => write!(f, "sqlite:{}", p.display()),
            Target::Redis(u) => f.write_str(&redact(u)),
        }
    }
}

impl Target {
    /// `file`, `sqlite` or `redis`.
    pub fn kind(&self) -> &'static str {
        match self {
            Target::File(_) => "file",
            Target::Sqlite(_) => "sqlite",
            Target::Redis(_) => "redis",
        }
    }
}

/// An opened target.
pub enum Opened {
    File(PathBuf),
    Sqlite(SqliteStore),
    Redis(RedisStore),
}

impl Opened {
    /// The store, unless this is a file.
    pub fn store(&self) -> Option<&dyn ListStore> {
        match self {
            Opened::File(_) => None,
            Opened::Sqlite(s) => Some(s),
            Opened::Redis(s) => Some(s),
        }
    }
}

/// The stores' clock: `--now` when given, so that what a store keeps or drops agrees
/// with what this command judges expired.
pub fn clock(args: &TargetArgs) -> Clock {
    match args.now {
        Some(now) => std::sync::Arc::new(move || now),
        None => system_clock(),
    }
}

/// The Redis options the arguments ask for.
pub fn redis_options(args: &TargetArgs, prefix: &str) -> Result<RedisOptions, Failure> {
    let timeout = Duration::from_millis(args.timeout_ms.max(1));
    let tls_root_certificates_pem = match &args.tls_ca {
        Some(p) => Some(std::fs::read(p).map_err(|e| Failure(format!("cannot read {}: {e}", p.display())))?),
        None => None,
    };
    Ok(RedisOptions {
        key_prefix: prefix.to_owned(),
        connect_timeout: timeout,
        read_timeout: timeout,
        write_timeout: timeout,
        tls_root_certificates_pem,
        max_connections: 2,
        clock: clock(args),
    })
}

/// Opens `target` to read it. A missing SQLite file is an error (opening would
/// create it).
pub fn open(target: &Target, args: &TargetArgs) -> Result<Opened, Failure> {
    open_with(target, args, &args.prefix, false)
}

/// Opens `target`; `create` lets a SQLite database be created.
pub fn open_with(target: &Target, args: &TargetArgs, prefix: &str, create: bool) -> Result<Opened, Failure> {
    Ok(match target {
        Target::File(p) => Opened::File(p.clone()),
        Target::Sqlite(p) => {
            if !create && !p.exists() {
                return Err(Failure(format!("there is no database at {}", p.display())));
            }
            Opened::Sqlite(SqliteStore::open_with(p, SqliteOptions { clock: clock(args), ..SqliteOptions::default() })?)
        }
        Target::Redis(url) => Opened::Redis(RedisStore::open(url, redis_options(args, prefix)?)?),
    })
}

/// The key ring the arguments name, if any.
pub fn key_ring(file: Option<&PathBuf>, env: Option<&str>) -> Result<Option<KeyRing>, Failure> {
    Ok(match (file, env) {
        (Some(f), _) => Some(KeyRing::from_file(f)?),
        (None, Some(v)) => Some(KeyRing::from_env(v)?),
        (None, None) => None,
    })
}

/// The key ring of `args`, refused for a file (files are never encrypted).
pub fn source_key_ring(target: &Target, args: &TargetArgs) -> Result<Option<KeyRing>, Failure> {
    let ring = key_ring(args.key_file.as_ref(), args.key_env.as_deref())?;
    if ring.is_some() && matches!(target, Target::File(_)) {
        return Err(Failure(
            "a cache file is never encrypted: --key-file and --key-env apply to SQLite and Redis stores".into(),
        ));
    }
    Ok(ring)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_told_apart() {
        assert!(matches!("cache.json".parse(), Ok(Target::File(_))));
        assert!(matches!("tokens.db".parse(), Ok(Target::Sqlite(_))));
        assert!(
            matches!("sqlite:tokens.bin".parse(), Ok(Target::Sqlite(p)) if p == std::path::Path::new("tokens.bin"))
        );
        assert!(matches!("rediss://h:6380".parse(), Ok(Target::Redis(_))));
        assert!("http://x".parse::<Target>().is_err());
        let t: Target = "redis://:hunter2@h:6379/0".parse().unwrap();
        assert_eq!(t.to_string(), "redis://***@h:6379/0");
    }
}

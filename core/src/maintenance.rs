//! Work on caches at rest: remove expired tokens ([`purge_file`], [`purge_store`])
//! and copy a cache between a file and stores, encrypting or decrypting on the way
//! ([`copy`]). What `tokencache purge` and `tokencache convert` run.
//!
//! A file is always changed under its msal-extensions lock and rewritten atomically.
//! A store is changed blob by blob: an application writing a partition while it is
//! purged may lose that one write (it fetches the token again).
//!
//! ```
//! use tokencache::maintenance::{Endpoint, copy};
//! use tokencache::store::{ListStore, SqliteStore, SqliteOptions};
//!
//! let dir = std::env::temp_dir().join(format!("tc-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let file = dir.join("cache.json");
//! std::fs::write(&file, r#"{"RefreshToken": {"k": {"credential_type": "RefreshToken",
//!     "home_account_id": "uid.utid", "environment": "login.microsoftonline.com",
//!     "client_id": "app", "secret": "rt"}}}"#).unwrap();
//! let db = SqliteStore::open_in_memory(SqliteOptions::default())?;
//! let report = copy(&Endpoint::File(&file), &Endpoint::Store { store: &db, ring: None }, 1_700_000_000, false,
//!                   &mut |_, _| {})?;
//! assert_eq!(report.partitions, 1);
//! assert_eq!(db.keys()?, ["uid.utid"]);
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok::<(), tokencache::Error>(())
//! ```

use std::path::Path;

use bytes::Bytes;

use crate::cache::TokenCache;
use crate::error::{Error, ErrorKind, Result};
use crate::inventory::{Inventory, Opened, PartitionView, open_blob, parse_blob, seal_blob};
use crate::schema::CredentialType;
use crate::store::file::{FileStore, LockOptions};
use crate::store::{Expiry, KeyRing, ListStore};

/// What a purge did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PurgeReport {
    /// Expired blobs the store dropped (SQLite rows; Redis expires its own keys).
    pub expired_blobs: u64,
    /// Expired access tokens removed from the cache or from the blobs.
    pub expired_access_tokens: u64,
    /// Blobs written back without their expired tokens.
    pub blobs_rewritten: u64,
    /// Blobs removed because nothing was left in them.
    pub blobs_removed: u64,
    /// Blobs left alone, with why (sealed with no key given, unreadable).
    pub skipped: Vec<(String, String)>,
}

fn read_cache_file(path: &Path) -> Result<TokenCache> {
    let text = std::fs::read(path).map_err(|e| Error::io(path, "cannot read", &e))?;
    let text = String::from_utf8(text)
        .map_err(|_| Error::new(ErrorKind::NotACache, format!("{} is not UTF-8 text", path.display())))?;
    let cache = TokenCache::new();
    cache.deserialize(&text).map_err(|e| match e.position() {
        Some((line, column)) => Error::new(
            e.kind(),
            format!("{} is not valid JSON at line {line}, column {column}: {}", path.display(), e.message()),
        ),
        None => Error::new(e.kind(), format!("{}: {}", path.display(), e.message())),
    })?;
    Ok(cache)
}

/// Removes every expired access token from the cache file at `path`, under its lock,
/// as of `now`. A file that is not a cache is left as it is (an error).
pub fn purge_file(path: &Path, now: i64, lock: LockOptions) -> Result<PurgeReport> {
    let store = FileStore::new(path).with_lock_options(lock);
    if !path.exists() {
        return Err(Error::new(ErrorKind::Io, format!("there is no cache file at {}", path.display())));
    }
    let guard = store.lock()?;
    let cache = read_cache_file(path)?;
    let removed = cache.remove_all_expired_access_tokens(Some(now));
    if removed > 0 {
        store.write(&guard, &cache.serialize())?;
    }
    Ok(PurgeReport { expired_access_tokens: removed, ..Default::default() })
}

/// Drops the store's expired blobs, then removes expired access tokens from every
/// blob (opening sealed ones with `ring` and sealing them again with it), writing
/// back only the blobs that changed, with the expiry they had. `progress(done,
/// total)` is called after each blob.
pub fn purge_store(
    store: &dyn ListStore,
    ring: Option<&KeyRing>,
    now: i64,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<PurgeReport> {
    let mut report = PurgeReport { expired_blobs: store.purge_expired()?, ..Default::default() };
    let keys = store.keys()?;
    let total = keys.len() as u64;
    for (i, key) in keys.into_iter().enumerate() {
        progress(i as u64 + 1, total);
        let Some(stored) = store.peek(&key)? else { continue };
        let (plain, sealed) = match open_blob(&key, &stored.value, ring) {
            Opened::Plain(p) => (p, false),
            Opened::Decrypted(p, _) => (p, true),
            Opened::Sealed(id) => {
                report.skipped.push((key, format!("encrypted with key {id} and no key was given")));
                continue;
            }
            Opened::Failed(e, _) => {
                report.skipped.push((key, e.message().to_owned()));
                continue;
            }
        };
        let cache = match parse_blob(&plain) {
            Ok(c) => c,
            Err(e) => {
                report.skipped.push((key, e.message().to_owned()));
                continue;
            }
        };
        let removed = cache.remove_all_expired_access_tokens(Some(now));
        if removed == 0 {
            continue;
        }
        report.expired_access_tokens += removed;
        if cache.is_empty() {
            store.remove(&key)?;
            report.blobs_removed += 1;
        } else {
            let blob = seal_blob(&key, cache.serialize().into_bytes(), if sealed { ring } else { None })?;
            store.set(&key, Bytes::from(blob), stored.expiry)?;
            report.blobs_rewritten += 1;
        }
    }
    Ok(report)
}

/// One side of a [`copy`].
pub enum Endpoint<'a> {
    /// A cache file (msal-extensions' kind): never encrypted.
    File(&'a Path),
    /// A store of partition blobs; with a ring, blobs are opened (source) or sealed
    /// (destination) with it.
    Store {
        /// The store.
        store: &'a dyn ListStore,
        /// Keys to open or seal blobs with.
        ring: Option<&'a KeyRing>,
    },
}

/// What a copy did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CopyReport {
    /// Partitions written to the destination.
    pub partitions: u64,
    /// Partitions not copied, with why (nothing usable left in them, sealed with no
    /// key, unreadable).
    pub skipped: Vec<(String, String)>,
    /// Entries of a file that belong to no partition (other than app metadata,
    /// which travels with the partitions that use it), so were not copied to a store.
    pub left_out_entries: u64,
}

/// How long a store should keep a partition: forever when it holds a refresh token;
/// else until its last access token expires; `None` when nothing in it is usable.
pub fn partition_expiry(p: &PartitionView, now: i64) -> Option<Expiry> {
    if p.refresh_tokens > 0 {
        return Some(Expiry::NEVER);
    }
    p.latest_access_token_expiry.filter(|&x| x > now).map(Expiry::at)
}

/// A partition read from the source: key, plaintext, expiry.
struct Partition {
    key: String,
    text: Vec<u8>,
    expiry: Expiry,
}

fn read_source(
    from: &Endpoint<'_>,
    now: i64,
    report: &mut CopyReport,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(Vec<Partition>, Option<TokenCache>)> {
    let mut out = Vec::new();
    match from {
        Endpoint::File(path) => {
            let cache = read_cache_file(path)?;
            let inv = Inventory::of(&cache, now);
            report.left_out_entries = inv
                .entries
                .iter()
                .filter(|e| e.partition.is_none() && e.credential_type != CredentialType::AppMetadata)
                .count() as u64;
            let total = inv.partitions.len() as u64;
            for (i, p) in inv.partitions.iter().enumerate() {
                progress(i as u64 + 1, total);
                match partition_expiry(p, now) {
                    Some(expiry) => out.push(Partition {
                        key: p.key.clone(),
                        text: cache.serialize_partition(&p.key).into_bytes(),
                        expiry,
                    }),
                    None => {
                        report.skipped.push((p.key.clone(), "no refresh token and no unexpired access token".into()))
                    }
                }
            }
            Ok((out, Some(cache)))
        }
        Endpoint::Store { store, ring } => {
            let keys = store.keys()?;
            let total = keys.len() as u64;
            for (i, key) in keys.into_iter().enumerate() {
                progress(i as u64 + 1, total);
                let Some(stored) = store.peek(&key)? else { continue };
                match open_blob(&key, &stored.value, *ring) {
                    Opened::Plain(text) | Opened::Decrypted(text, _) => {
                        out.push(Partition { key, text, expiry: stored.expiry })
                    }
                    Opened::Sealed(id) => {
                        report.skipped.push((key, format!("encrypted with key {id} and no key was given")))
                    }
                    Opened::Failed(e, _) => report.skipped.push((key, e.message().to_owned())),
                }
            }
            Ok((out, None))
        }
    }
}

fn destination_holds_data(to: &Endpoint<'_>) -> Result<bool> {
    Ok(match to {
        Endpoint::File(path) => std::fs::metadata(path).is_ok_and(|m| m.len() > 0),
        Endpoint::Store { store, .. } => !store.keys()?.is_empty(),
    })
}

/// Copies the cache in `from` to `to`, as of `now`.
///
/// - file → store: one blob per partition, with the expiry [`partition_expiry`]
///   gives; partitions with nothing usable are skipped.
/// - store → file: every blob merged into one cache file (written under its lock).
/// - store → store: blobs copied as they are, with their expiry, opened with the
///   source's ring and sealed with the destination's.
/// - file → file: the cache rewritten in msal Python's format.
///
/// Unless `replace`, a destination that already holds a cache is an error. With
/// `replace`, a file is replaced and a store's blobs under the same keys are.
pub fn copy(
    from: &Endpoint<'_>,
    to: &Endpoint<'_>,
    now: i64,
    replace: bool,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<CopyReport> {
    if !replace && destination_holds_data(to)? {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "the destination already holds a cache (replace it explicitly to write over it)",
        ));
    }
    let mut report = CopyReport::default();
    let (partitions, whole) = read_source(from, now, &mut report, progress)?;
    match to {
        Endpoint::Store { store, ring } => {
            for p in partitions {
                let blob = seal_blob(&p.key, p.text, *ring)?;
                store.set(&p.key, Bytes::from(blob), p.expiry)?;
                report.partitions += 1;
            }
        }
        Endpoint::File(path) => {
            let cache = match whole {
                Some(cache) => {
                    // The whole cache goes over, partitions or not.
                    report.partitions = cache.partition_keys().len() as u64;
                    report.left_out_entries = 0;
                    report.skipped.clear();
                    cache
                }
                None => {
                    let cache = TokenCache::new();
                    for p in partitions {
                        let merged = std::str::from_utf8(&p.text)
                            .map_err(|_| Error::new(ErrorKind::NotACache, "not UTF-8 text"))
                            .and_then(|text| cache.deserialize_partition(&p.key, text));
                        match merged {
                            Ok(()) => report.partitions += 1,
                            Err(e) => report.skipped.push((p.key, e.message().to_owned())),
                        }
                    }
                    cache
                }
            };
            let file = FileStore::new(*path);
            let lock = file.lock()?;
            file.write(&lock, &cache.serialize())?;
        }
    }
    Ok(report)
}

//! What a cache at rest holds, shown without its secrets: the accounts, tokens,
//! scopes, expiries and sizes that `tokencache inspect` and `tokencache stats` print,
//! for a whole cache ([`Inventory::of`]) or for every blob of a store
//! ([`scan_store`]).
//!
//! Redaction is by construction: an [`EntryView`] copies a fixed list of
//! descriptive fields and never the `secret` (nor any field it does not know, which
//! might hold one), so nothing built from it can leak a token.
//!
//! ```
//! use tokencache::{CredentialType, TokenCache, inventory::Inventory};
//!
//! let cache = TokenCache::new();
//! cache.add_json(r#"{"client_id": "app", "scope": ["s1"],
//!     "token_endpoint": "https://login.microsoftonline.com/t/oauth2/v2.0/token",
//!     "response": {"access_token": "the-secret", "expires_in": 3600}}"#, Some(1_700_000_000))?;
//! let inv = Inventory::of(&cache, 1_700_000_100);
//! let at = &inv.entries[0];
//! assert_eq!((at.credential_type, at.scopes.as_slice()), (CredentialType::AccessToken, &["s1".to_string()][..]));
//! assert!(at.has_secret && !at.expired);
//! assert!(!format!("{inv:?}").contains("the-secret"));
//! # Ok::<(), tokencache::Error>(())
//! ```

use std::time::{Duration, Instant};

use crate::cache::TokenCache;
use crate::document::Stored;
use crate::entry::{Entry, unescape};
use crate::error::{Error, ErrorKind, Result};
use crate::index::{expires_on, scopes_of};
use crate::partition::partition_key;
use crate::schema::{CredentialType, field};
use crate::store::{Expiry, KeyRing, ListStore};

/// One entry, described without its secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryView {
    /// The section it is in.
    pub credential_type: CredentialType,
    /// The key it is filed under (as written by whichever SDK wrote it).
    pub key: String,
    /// The partition it belongs to (see [`crate::partition_key`]); `None` for app
    /// metadata and entries without an owner.
    pub partition: Option<String>,
    /// `home_account_id`.
    pub home_account_id: Option<String>,
    /// `environment` (the authority host).
    pub environment: Option<String>,
    /// `client_id`.
    pub client_id: Option<String>,
    /// `realm` (the tenant).
    pub realm: Option<String>,
    /// `username` (accounts).
    pub username: Option<String>,
    /// `authority_type` (accounts).
    pub authority_type: Option<String>,
    /// `family_id` (refresh tokens and app metadata of the Microsoft app family).
    pub family_id: Option<String>,
    /// `token_type` (access tokens), e.g. `Bearer`, `pop`, `ssh-cert`.
    pub token_type: Option<String>,
    /// The scopes of `target`.
    pub scopes: Vec<String>,
    /// `cached_at` (Unix seconds).
    pub cached_at: Option<i64>,
    /// `expires_on` (Unix seconds).
    pub expires_on: Option<i64>,
    /// `refresh_on` (Unix seconds): when MSAL renews the token ahead of expiry.
    pub refresh_on: Option<i64>,
    /// Whether the entry carries a `secret` (its value is never copied).
    pub has_secret: bool,
    /// The names of all its fields, in stored order (names only, never values).
    pub field_names: Vec<String>,
    /// Bytes of the entry as compact JSON, key included.
    pub bytes: usize,
    /// An access token whose `expires_on` is before the inventory's `now`.
    pub expired: bool,
    /// Filed as another SDK files it (a key msal Python would not make, an app token
    /// with a `""` home account id, an access token without `token_type`).
    pub other_sdk: bool,
}

/// A partition of a cache: what one store blob holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PartitionView {
    /// The partition key.
    pub key: String,
    /// Its entries (app metadata not counted).
    pub entries: usize,
    /// Bytes of its blob as a store would hold it (before encryption).
    pub bytes: usize,
    /// Refresh tokens in it.
    pub refresh_tokens: usize,
    /// Access tokens in it.
    pub access_tokens: usize,
    /// Access tokens in it that have expired.
    pub expired_access_tokens: usize,
    /// The latest `expires_on` of its access tokens.
    pub latest_access_token_expiry: Option<i64>,
}

/// An entry of a known section that is not an object (kept, never matched).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnreadableEntry {
    /// The section.
    pub credential_type: CredentialType,
    /// Its key.
    pub key: String,
}

/// Entries of one credential type, counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TypeTotals {
    /// Entries.
    pub entries: usize,
    /// Expired access tokens (0 for the other types).
    pub expired: usize,
    /// Bytes of the entries as compact JSON.
    pub bytes: usize,
}

/// Everything in one cache document, without secrets, as of one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Inventory {
    /// When "expired" was decided (Unix seconds).
    pub now: i64,
    /// Every entry, section by section in [`CredentialType::ALL`] order, each in
    /// document order.
    pub entries: Vec<EntryView>,
    /// Partitions in order of first appearance.
    pub partitions: Vec<PartitionView>,
    /// Values in known sections that are not objects.
    pub unreadable_entries: Vec<UnreadableEntry>,
    /// Top-level members that are not one of the five sections (kept as they are).
    pub unknown_sections: Vec<String>,
    /// Bytes of the whole document as msal Python writes it.
    pub bytes: usize,
    /// Items filed more than once (under two SDKs' key styles or two aliases of one
    /// cloud): the keys of each, in document order.
    pub duplicates: Vec<(CredentialType, Vec<String>)>,
}

fn timestamp(e: &Entry, name: &str) -> Option<i64> {
    e.get(name).and_then(|v| v.to_python_int())
}

fn view_of(ct: CredentialType, key: &str, e: &Entry, now: i64) -> EntryView {
    let s = |id: u8| e.str_by_id(id).map(|v| v.into_owned());
    let expires = expires_on(e);
    EntryView {
        credential_type: ct,
        key: unescape(key).into_owned(),
        partition: partition_key(ct, e),
        home_account_id: s(field::HOME_ACCOUNT_ID),
        environment: s(field::ENVIRONMENT),
        client_id: s(field::CLIENT_ID),
        realm: s(field::REALM),
        username: e.get_str("username").map(|v| v.into_owned()),
        authority_type: e.get_str("authority_type").map(|v| v.into_owned()),
        family_id: e.get_str("family_id").map(|v| v.into_owned()),
        token_type: e.get_str("token_type").map(|v| v.into_owned()),
        scopes: e.str_by_id(field::TARGET).map(|t| scopes_of(&t).map(str::to_owned).collect()).unwrap_or_default(),
        cached_at: timestamp(e, "cached_at"),
        expires_on: expires,
        refresh_on: timestamp(e, "refresh_on"),
        has_secret: e.contains("secret"),
        field_names: e.iter_raw().map(|(name, _)| name.into_owned()).collect(),
        bytes: key.len() + 3 + e.to_json().len(),
        expired: ct == CredentialType::AccessToken && expires.is_some_and(|x| x < now),
        other_sdk: crate::sharing::filed_by_another_sdk(ct, key, e),
    }
}

impl EntryView {
    /// Whether the entry has a field `name`.
    pub fn has_field(&self, name: &str) -> bool {
        self.field_names.iter().any(|f| f == name)
    }
}

impl Inventory {
    /// Describes `cache` as of `now` (Unix seconds).
    pub fn of(cache: &TokenCache, now: i64) -> Inventory {
        let mut inv = cache.with_document(|doc| {
            let mut inv = Inventory { now, ..Default::default() };
            for ct in CredentialType::ALL {
                let Some(section) = doc.section(ct) else { continue };
                let mut items: Vec<Vec<String>> = Vec::new();
                let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
                for (_, slot) in section.live_slots() {
                    if let Stored::Entry(e) = &slot.value {
                        let key = unescape(&slot.key).into_owned();
                        match seen.entry(crate::sharing::item_identity(ct, e)) {
                            std::collections::hash_map::Entry::Occupied(o) => items[*o.get()].push(key),
                            std::collections::hash_map::Entry::Vacant(v) => {
                                v.insert(items.len());
                                items.push(vec![key]);
                            }
                        }
                    }
                }
                inv.duplicates.extend(items.into_iter().filter(|k| k.len() > 1).map(|k| (ct, k)));
                for (_, slot) in section.live_slots() {
                    match &slot.value {
                        Stored::Entry(e) => inv.entries.push(view_of(ct, &slot.key, e, now)),
                        Stored::Opaque(_) => inv
                            .unreadable_entries
                            .push(UnreadableEntry { credential_type: ct, key: unescape(&slot.key).into_owned() }),
                    }
                }
            }
            inv.unknown_sections = doc.unknown_sections().map(|n| n.into_owned()).collect();
            inv
        });
        for key in cache.partition_keys() {
            let mut p = PartitionView { key, ..Default::default() };
            for e in inv.entries.iter().filter(|e| e.partition.as_deref() == Some(p.key.as_str())) {
                p.entries += 1;
                match e.credential_type {
                    CredentialType::RefreshToken => p.refresh_tokens += 1,
                    CredentialType::AccessToken => {
                        p.access_tokens += 1;
                        p.expired_access_tokens += usize::from(e.expired);
                        if let Some(x) = e.expires_on {
                            p.latest_access_token_expiry = Some(p.latest_access_token_expiry.map_or(x, |l| l.max(x)));
                        }
                    }
                    _ => {}
                }
            }
            p.bytes = cache.serialize_partition(&p.key).len();
            inv.partitions.push(p);
        }
        inv.bytes = cache.serialize_compact().len().max(2);
        inv
    }

    /// Parses `text` as a cache and describes it; the error is the parse error.
    pub fn parse(text: &str, now: i64) -> Result<(TokenCache, Inventory)> {
        let cache = TokenCache::new();
        cache.deserialize(text)?;
        let inv = Inventory::of(&cache, now);
        Ok((cache, inv))
    }

    /// Entries of type `ct`.
    pub fn of_type(&self, ct: CredentialType) -> impl Iterator<Item = &EntryView> + '_ {
        self.entries.iter().filter(move |e| e.credential_type == ct)
    }

    /// Counts per credential type, in [`CredentialType::ALL`] order.
    pub fn totals(&self) -> [TypeTotals; 5] {
        let mut t = [TypeTotals::default(); 5];
        for e in &self.entries {
            let i = e.credential_type.index();
            t[i].entries += 1;
            t[i].expired += usize::from(e.expired);
            t[i].bytes += e.bytes;
        }
        t
    }

    /// Expired access tokens.
    pub fn expired_access_tokens(&self) -> usize {
        self.entries.iter().filter(|e| e.expired).count()
    }
}

/// What a store blob turned out to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlobContent {
    /// A cache (decrypted if it was sealed and a key was given).
    Cache(Inventory),
    /// Sealed (encrypted), and no key ring was given to open it.
    Sealed,
    /// Could not be read: a key the ring lacks ([`ErrorKind::KeyMismatch`]), failed
    /// authentication ([`ErrorKind::DecryptionFailed`]), not JSON
    /// ([`ErrorKind::InvalidJson`], with a position), not a cache
    /// ([`ErrorKind::NotACache`]), or the store failed to return it.
    Unreadable(Error),
}

/// One blob of a store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobView {
    /// The key it is stored under (a partition key, when written by a provider).
    pub key: String,
    /// Bytes as stored (the envelope, when sealed).
    pub bytes: usize,
    /// The expiry it was stored with.
    pub expiry: Expiry,
    /// When it goes as things stand.
    pub expires_at: Option<i64>,
    /// The id (hex) of the key it is sealed with; `None` when stored in clear.
    pub sealed_with: Option<String>,
    /// What it holds.
    pub content: BlobContent,
}

impl BlobView {
    /// The inventory, when the blob could be read.
    pub fn inventory(&self) -> Option<&Inventory> {
        match &self.content {
            BlobContent::Cache(inv) => Some(inv),
            _ => None,
        }
    }

    /// Partitions found inside the blob other than the key it is stored under.
    pub fn foreign_partitions(&self) -> Vec<&str> {
        self.inventory()
            .map(|inv| inv.partitions.iter().map(|p| p.key.as_str()).filter(|k| *k != self.key).collect())
            .unwrap_or_default()
    }
}

/// Read latencies, as measured by a scan.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Latency {
    /// Reads measured.
    pub count: usize,
    /// Median.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Slowest.
    pub max: Duration,
}

impl Latency {
    /// Percentiles of `samples` (any order).
    pub fn of(mut samples: Vec<Duration>) -> Latency {
        if samples.is_empty() {
            return Latency::default();
        }
        samples.sort_unstable();
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
        Latency { count: samples.len(), p50: at(0.50), p99: at(0.99), max: samples[samples.len() - 1] }
    }
}

/// Every blob of a store, read once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreInventory {
    /// When "expired" was decided (Unix seconds).
    pub now: i64,
    /// The blobs, in key order.
    pub blobs: Vec<BlobView>,
    /// How long each read took.
    pub read_latency: Latency,
}

impl StoreInventory {
    /// Counts per credential type over every readable blob.
    pub fn totals(&self) -> [TypeTotals; 5] {
        let mut t = [TypeTotals::default(); 5];
        for inv in self.blobs.iter().filter_map(BlobView::inventory) {
            for (sum, one) in t.iter_mut().zip(inv.totals()) {
                sum.entries += one.entries;
                sum.expired += one.expired;
                sum.bytes += one.bytes;
            }
        }
        t
    }

    /// Bytes of every blob as stored.
    pub fn bytes(&self) -> usize {
        self.blobs.iter().map(|b| b.bytes).sum()
    }
}

/// A blob opened with an optional key ring.
// Without the encryption feature every blob is plain.
#[cfg_attr(not(feature = "encryption"), allow(dead_code))]
pub(crate) enum Opened {
    /// Stored in clear.
    Plain(Vec<u8>),
    /// Sealed and opened; the key id.
    Decrypted(Vec<u8>, String),
    /// Sealed with this key id and no ring given.
    Sealed(String),
    /// Sealed with this key id and could not be opened.
    Failed(Error, String),
}

/// Opens `blob` stored under `key`.
pub(crate) fn open_blob(key: &str, blob: &[u8], ring: Option<&KeyRing>) -> Opened {
    #[cfg(feature = "encryption")]
    if let Some(id) = crate::store::envelope_key_id(blob) {
        let id = id.to_string();
        return match ring {
            None => Opened::Sealed(id),
            Some(ring) => match ring.decrypt(key, blob) {
                Ok(plain) => Opened::Decrypted(plain, id),
                Err(e) => Opened::Failed(e, id),
            },
        };
    }
    let _ = (key, ring);
    Opened::Plain(blob.to_vec())
}

/// Seals `plain` for `key` when a ring is given.
#[cfg_attr(not(feature = "encryption"), allow(unused_variables))]
pub(crate) fn seal_blob(key: &str, plain: Vec<u8>, ring: Option<&KeyRing>) -> Result<Vec<u8>> {
    match ring {
        #[cfg(feature = "encryption")]
        Some(ring) => ring.encrypt(key, &plain),
        #[cfg(not(feature = "encryption"))]
        Some(never) => match *never {},
        None => Ok(plain),
    }
}

/// Parses a blob's plaintext as a cache.
pub(crate) fn parse_blob(plain: &[u8]) -> Result<TokenCache> {
    let text = std::str::from_utf8(plain)
        .map_err(|_| Error::new(ErrorKind::NotACache, "the blob is neither a cache (UTF-8 JSON) nor an envelope"))?;
    let cache = TokenCache::new();
    cache.deserialize(text)?;
    Ok(cache)
}

/// Reads every blob of `store` once, opening sealed ones with `ring`, and describes
/// them as of `now`. `progress(done, total)` is called after each blob. Fails only
/// when the keys cannot be listed; a blob that cannot be read is reported in it.
pub fn scan_store(
    store: &dyn ListStore,
    ring: Option<&KeyRing>,
    now: i64,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<StoreInventory> {
    let keys = store.keys()?;
    let total = keys.len() as u64;
    let mut out = StoreInventory { now, ..Default::default() };
    let mut samples = Vec::with_capacity(keys.len());
    for (i, key) in keys.into_iter().enumerate() {
        let started = Instant::now();
        let peeked = store.peek(&key);
        samples.push(started.elapsed());
        progress(i as u64 + 1, total);
        let stored = match peeked {
            Ok(Some(s)) => s,
            Ok(None) => continue, // expired or removed since it was listed
            Err(e) => {
                out.blobs.push(BlobView {
                    key,
                    bytes: 0,
                    expiry: Expiry::NEVER,
                    expires_at: None,
                    sealed_with: None,
                    content: BlobContent::Unreadable(e),
                });
                continue;
            }
        };
        let read = |plain: &[u8]| match parse_blob(plain) {
            Ok(c) => BlobContent::Cache(Inventory::of(&c, now)),
            Err(e) => BlobContent::Unreadable(e),
        };
        let (sealed_with, content) = match open_blob(&key, &stored.value, ring) {
            Opened::Plain(p) => (None, read(&p)),
            Opened::Decrypted(p, id) => (Some(id), read(&p)),
            Opened::Sealed(id) => (Some(id), BlobContent::Sealed),
            Opened::Failed(e, id) => (Some(id), BlobContent::Unreadable(e)),
        };
        out.blobs.push(BlobView {
            key,
            bytes: stored.value.len(),
            expiry: stored.expiry,
            expires_at: stored.expires_at,
            sealed_with,
            content,
        });
    }
    out.read_latency = Latency::of(samples);
    Ok(out)
}

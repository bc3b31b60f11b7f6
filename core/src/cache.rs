//! [`TokenCache`]: msal Python's `SerializableTokenCache`, indexed and thread-safe.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::RwLock;

use crate::document::{Document, Query, Stored, escape_key, key_of};
use crate::entry::Entry;
use crate::error::{Error, ErrorKind, Result};
use crate::event::entries_for;
use crate::index::expires_on;
use crate::json::{self, Map, Value};
use crate::schema::{CredentialType, KeyParts, cache_key};

/// Seconds since the Unix epoch, from the wall clock.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// One MSAL unified token cache document, with msal Python's semantics and indexes.
///
/// Thread-safe (`Send + Sync`): reads share a lock, writes take it briefly; results
/// are owned, so no lock is held while the caller looks at them. Every time-dependent
/// call takes `now` (Unix seconds; `None` reads the wall clock).
///
/// ```
/// use tokencache::{CredentialType, TokenCache};
/// let cache = TokenCache::new();
/// cache.add_json(r#"{"client_id": "my-app", "scope": ["https://graph.microsoft.com/.default"],
///     "token_endpoint": "https://login.microsoftonline.com/contoso/oauth2/v2.0/token",
///     "response": {"access_token": "at-secret", "expires_in": 3600}}"#, Some(1_700_000_000))?;
/// let hits = cache.search(CredentialType::AccessToken, &["https://graph.microsoft.com/.default"],
///     None, Some(1_700_000_100));
/// assert_eq!(hits.len(), 1);
/// assert_eq!(hits[0].secret().as_deref(), Some("at-secret"));
/// # Ok::<(), tokencache::Error>(())
/// ```
pub struct TokenCache {
    doc: RwLock<Document>,
    changed: AtomicBool,
    stats: Counters,
}

#[derive(Default)]
struct Counters {
    hits: [AtomicU64; 5],
    misses: [AtomicU64; 5],
    expired_evicted: AtomicU64,
}

/// Counters and sizes of a [`TokenCache`] at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Searches that found at least one entry, per credential type (index of
    /// [`CredentialType::ALL`]).
    pub hits: [u64; 5],
    /// Searches that found nothing, per credential type.
    pub misses: [u64; 5],
    /// Expired access tokens removed by searches.
    pub expired_evicted: u64,
    /// Entries in the known sections.
    pub entries: usize,
}

impl Default for TokenCache {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("entries", &self.len())
            .field("has_state_changed", &self.has_state_changed())
            .finish()
    }
}

fn require_type(e: &Entry, ct: CredentialType, method: &str) -> Result<()> {
    if e.credential_type() == Some(ct) {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::InvalidEntry,
            format!("{method} needs an entry whose credential_type is {ct}"),
        ))
    }
}

impl TokenCache {
    /// An empty cache.
    pub fn new() -> Self {
        TokenCache {
            doc: RwLock::new(Document::default()),
            changed: AtomicBool::new(false),
            stats: Counters::default(),
        }
    }

    /// Whether anything changed since the last [`serialize`](Self::serialize) or
    /// [`deserialize`](Self::deserialize) (msal's `has_state_changed`).
    pub fn has_state_changed(&self) -> bool {
        self.changed.load(Ordering::Acquire)
    }

    /// Sets or clears the changed flag (msal lets callers assign it).
    pub fn set_state_changed(&self, changed: bool) {
        self.changed.store(changed, Ordering::Release);
    }

    /// Entries in the known sections.
    pub fn len(&self) -> usize {
        self.doc.read().len()
    }

    /// Whether the known sections hold no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Caches what a token response event carries (msal's `add(event, now)`).
    /// A bad event is an [`ErrorKind::InvalidEvent`] error and changes nothing.
    pub fn add(&self, event: &Map, now: Option<i64>) -> Result<()> {
        let now = now.unwrap_or_else(unix_now);
        let entries = entries_for(event, now)?;
        {
            let mut doc = self.doc.write();
            for (ct, key, entry) in entries {
                doc.section_or_create(ct)
                    .put(&escape_key(&key), Stored::Entry(entry));
            }
        }
        self.changed.store(true, Ordering::Release);
        Ok(())
    }

    /// [`add`](Self::add) with the event as JSON text.
    pub fn add_json(&self, event: &str, now: Option<i64>) -> Result<()> {
        match json::parse(event)? {
            Value::Object(m) => self.add(&m, now),
            _ => Err(Error::new(
                ErrorKind::InvalidEvent,
                "an event is a JSON object",
            )),
        }
    }

    /// Entries of `credential_type` whose fields equal every field of `query` and
    /// whose `target` holds every scope of `target` (msal's `search`, run to the end).
    ///
    /// As in msal: a query's `environment` is compared lower-cased; an access-token
    /// query with `home_account_id`, `environment`, `client_id` and `realm` and a
    /// target first returns the entry under its exact key, even if expired; expired
    /// access tokens are never returned otherwise, and every access-token search
    /// removes all expired access tokens from the cache; entries with an
    /// `ext_cache_key` match only queries that name one.
    pub fn search(
        &self,
        ct: CredentialType,
        target: &[&str],
        query: Option<&Map>,
        now: Option<i64>,
    ) -> Vec<Entry> {
        let now = now.unwrap_or_else(unix_now);
        let mut scopes: Vec<&str> = target.to_vec();
        scopes.sort_unstable();
        let q = Query::new(query);
        let is_at = ct == CredentialType::AccessToken;
        let mut out = Vec::new();
        let evict;
        {
            let doc = self.doc.read();
            let mut preferred: Option<Entry> = None;
            if is_at && !scopes.is_empty() {
                if let Some(e) = Self::exact_access_token(&doc, &q, &scopes) {
                    if q.matches(&e, &[]) {
                        out.push(e.clone());
                        preferred = Some(e);
                    }
                }
            }
            if let Some(section) = doc.section(ct) {
                let mut consider = |e: &Entry| {
                    if is_at && expires_on(e).is_some_and(|x| x < now) {
                        return;
                    }
                    if preferred.as_ref().is_some_and(|p| p.same_content(e)) {
                        return;
                    }
                    if !q.matches(e, &scopes) {
                        return;
                    }
                    if is_at && !q.has_ext_cache_key && e.contains("ext_cache_key") {
                        return;
                    }
                    out.push(e.clone());
                };
                match Document::candidates(section, &q, &scopes) {
                    Some(slots) => slots
                        .into_iter()
                        .filter_map(|i| section.entry(i))
                        .for_each(&mut consider),
                    None => section.live_slots().for_each(|(_, s)| {
                        if let Stored::Entry(e) = &s.value {
                            consider(e)
                        }
                    }),
                }
            }
            evict = is_at
                && doc
                    .section(CredentialType::AccessToken)
                    .and_then(|s| s.index.earliest_expiry())
                    .is_some_and(|e| e < now);
        }
        if evict {
            self.evict_expired_access_tokens(now);
        }
        let counter = if out.is_empty() {
            &self.stats.misses
        } else {
            &self.stats.hits
        };
        counter[ct.index()].fetch_add(1, Ordering::Relaxed);
        out
    }

    /// msal's O(1) lookup: the AT filed under the key the query's fields make.
    fn exact_access_token(doc: &Document, q: &Query, sorted_scopes: &[&str]) -> Option<Entry> {
        let part = |name: &str| -> Option<String> {
            let raw = q.get(name)?;
            match raw.as_str() {
                Some(s) => Some(s.into_owned()),
                None if !raw.is_truthy() => Some(String::new()),
                None => None,
            }
        };
        let hid = part("home_account_id")?;
        let env = part("environment")?;
        let cid = part("client_id")?;
        let realm = part("realm")?;
        let ext = match q.get("ext_cache_key") {
            None => String::new(),
            Some(_) => part("ext_cache_key")?,
        };
        let target = sorted_scopes.join(" ");
        let key = cache_key(
            CredentialType::AccessToken,
            &KeyParts {
                home_account_id: &hid,
                environment: &env,
                client_id: &cid,
                realm: &realm,
                target: &target,
                ext_cache_key: &ext,
            },
        );
        let section = doc.section(CredentialType::AccessToken)?;
        section.entry(section.find(&escape_key(&key))?).cloned()
    }

    fn evict_expired_access_tokens(&self, now: i64) {
        let mut doc = self.doc.write();
        let expired = doc.expired_access_tokens(now);
        if expired.is_empty() {
            return;
        }
        let mut removed = 0;
        for e in &expired {
            // msal removes through remove_at, i.e. by the key the entry's fields make.
            if let Ok(key) = key_of(CredentialType::AccessToken, e) {
                if doc
                    .remove_canonical(CredentialType::AccessToken, &key)
                    .is_some()
                {
                    removed += 1;
                }
            }
        }
        drop(doc);
        self.stats
            .expired_evicted
            .fetch_add(removed, Ordering::Relaxed);
        self.changed.store(true, Ordering::Release);
    }

    /// The access token filed under the key these fields make (msal's
    /// `_get_access_token`): the typed hot path, no query matching, may be expired.
    pub fn get_access_token(
        &self,
        home_account_id: Option<&str>,
        environment: &str,
        client_id: &str,
        realm: &str,
        target: &[&str],
        ext_cache_key: Option<&str>,
    ) -> Option<Entry> {
        let mut scopes = target.to_vec();
        scopes.sort_unstable();
        let target = scopes.join(" ");
        let key = cache_key(
            CredentialType::AccessToken,
            &KeyParts {
                home_account_id: home_account_id.unwrap_or(""),
                environment,
                client_id,
                realm,
                target: &target,
                ext_cache_key: ext_cache_key.unwrap_or(""),
            },
        );
        let doc = self.doc.read();
        let section = doc.section(CredentialType::AccessToken)?;
        section.entry(section.find(&escape_key(&key))?).cloned()
    }

    /// The app metadata of `client_id` in `environment` (msal's `_get_app_metadata`).
    pub fn get_app_metadata(&self, environment: &str, client_id: &str) -> Option<Entry> {
        let key = format!("appmetadata-{environment}-{client_id}");
        let doc = self.doc.read();
        let section = doc.section(CredentialType::AppMetadata)?;
        section.entry(section.find(&escape_key(&key))?).cloned()
    }

    /// msal's `modify(credential_type, old_entry, new_key_value_pairs)`: with
    /// non-empty `changes`, files `old_entry` updated by `changes` under the key
    /// `old_entry`'s fields make; otherwise removes whatever is filed under that key.
    /// Either way the cache counts as changed.
    pub fn modify(&self, ct: CredentialType, old: &Entry, changes: Option<&Map>) -> Result<()> {
        let key = key_of(ct, old)?;
        match changes {
            Some(c) if !c.is_empty() => {
                let new = old.merged_with(c)?;
                self.doc
                    .write()
                    .section_or_create(ct)
                    .put(&escape_key(&key), Stored::Entry(new));
            }
            _ => {
                self.doc.write().remove_canonical(ct, &key);
            }
        }
        self.changed.store(true, Ordering::Release);
        Ok(())
    }

    /// Removes a refresh token (msal's `remove_rt`).
    pub fn remove_rt(&self, rt: &Entry) -> Result<()> {
        require_type(rt, CredentialType::RefreshToken, "remove_rt")?;
        self.modify(CredentialType::RefreshToken, rt, None)
    }

    /// Replaces a refresh token's secret and stamps `last_modification_time`
    /// (msal's `update_rt`).
    pub fn update_rt(&self, rt: &Entry, new_rt: &str, now: Option<i64>) -> Result<()> {
        require_type(rt, CredentialType::RefreshToken, "update_rt")?;
        let now = now.unwrap_or_else(unix_now);
        let mut changes = Map::new();
        changes.insert("secret", Value::from(new_rt));
        changes.insert("last_modification_time", Value::from(now.to_string()));
        self.modify(CredentialType::RefreshToken, rt, Some(&changes))
    }

    /// Removes an access token (msal's `remove_at`).
    pub fn remove_at(&self, at: &Entry) -> Result<()> {
        require_type(at, CredentialType::AccessToken, "remove_at")?;
        self.modify(CredentialType::AccessToken, at, None)
    }

    /// Removes an ID token (msal's `remove_idt`).
    pub fn remove_idt(&self, idt: &Entry) -> Result<()> {
        require_type(idt, CredentialType::IdToken, "remove_idt")?;
        self.modify(CredentialType::IdToken, idt, None)
    }

    /// Removes an account (msal's `remove_account`; the entry must have
    /// `authority_type`).
    pub fn remove_account(&self, account: &Entry) -> Result<()> {
        if !account.contains("authority_type") {
            return Err(Error::new(
                ErrorKind::InvalidEntry,
                "remove_account needs an entry with authority_type",
            ));
        }
        self.modify(CredentialType::Account, account, None)
    }

    /// The whole cache as msal Python's `serialize()` writes it (`json.dumps(indent=4)`),
    /// and clears [`has_state_changed`](Self::has_state_changed).
    pub fn serialize(&self) -> String {
        let mut out = String::new();
        let doc = self.doc.read();
        self.changed.store(false, Ordering::Release);
        doc.write_python(&mut out);
        out
    }

    /// The whole cache as compact JSON (no whitespace); does not touch the changed flag.
    pub fn serialize_compact(&self) -> String {
        let mut out = String::new();
        self.doc.read().write_compact(&mut out);
        out
    }

    /// Replaces the whole cache with `text` (msal's `deserialize`; `""` empties it)
    /// and clears the changed flag. On error the cache keeps its previous state.
    pub fn deserialize(&self, text: &str) -> Result<()> {
        let doc = if text.is_empty() {
            Document::default()
        } else {
            Document::parse(text)?
        };
        let mut guard = self.doc.write();
        *guard = doc;
        self.changed.store(false, Ordering::Release);
        Ok(())
    }

    /// Counters and sizes.
    pub fn stats(&self) -> CacheStats {
        let load = |a: &[AtomicU64; 5]| std::array::from_fn(|i| a[i].load(Ordering::Relaxed));
        CacheStats {
            hits: load(&self.stats.hits),
            misses: load(&self.stats.misses),
            expired_evicted: self.stats.expired_evicted.load(Ordering::Relaxed),
            entries: self.len(),
        }
    }
}

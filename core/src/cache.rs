//! [`TokenCache`]: msal Python's `SerializableTokenCache`, indexed and thread-safe.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use std::sync::Arc;

use parking_lot::RwLock;

use crate::document::{Document, Query, Stored, escape_key, key_of};
use crate::entry::Entry;
use crate::error::{Error, ErrorKind, Result};
use crate::event::{EventKey, entries_for};
use crate::index::expires_on;
use crate::json::{self, Map, MapRef, Value, needs_escape};
use crate::limits::{CacheLimits, EvictionCounts};
use crate::notify::{AccessEvent, AccessObserver, Operation};
use crate::partition::partition_key;
use crate::schema::{CredentialType, KeyParts, cache_key};
use crate::sharing::{self, SharingMode};

/// Seconds since the Unix epoch, from the wall clock.
pub fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
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
    limits: CacheLimits,
    stats: Counters,
    observer: RwLock<Option<Arc<dyn AccessObserver>>>,
    has_observer: AtomicBool,
    /// A [`SharingMode`] as its `u8` discriminant.
    sharing: AtomicU8,
}

/// The partition a query is about, when its fields say it (MSAL.NET's rule applied
/// to the query instead of an entry).
fn query_partition(ct: CredentialType, query: Option<&Map>) -> Option<String> {
    let q = query?;
    let s = |k: &str| q.get(k).and_then(Value::as_str).filter(|v| !v.is_empty());
    if let Some(h) = s("user_assertion_hash") {
        return Some(h.to_owned());
    }
    if let Some(hid) = s("home_account_id") {
        return Some(hid.to_owned());
    }
    if ct == CredentialType::AccessToken
        && q.get("home_account_id").is_none_or(|v| !v.is_truthy())
        && let (Some(cid), Some(realm)) = (s("client_id"), s("realm"))
    {
        return Some(match s("ext_cache_key") {
            Some(ext) => format!("{cid}_{realm}_{ext}_AppTokenCache"),
            None => format!("{cid}_{realm}_AppTokenCache"),
        });
    }
    None
}

#[derive(Default)]
struct Counters {
    hits: [AtomicU64; 5],
    misses: [AtomicU64; 5],
    expired_evicted: AtomicU64,
    capacity: AtomicU64,
    absolute: AtomicU64,
    sliding: AtomicU64,
    examined: AtomicU64,
}

/// Counters and sizes of a [`TokenCache`] at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Searches that found at least one entry, per credential type (index of
    /// [`CredentialType::ALL`]).
    pub hits: [u64; 5],
    /// Searches that found nothing, per credential type.
    pub misses: [u64; 5],
    /// Evictions by reason (expired access tokens included).
    pub evictions: EvictionCounts,
    /// Entries in the known sections.
    pub entries: usize,
    /// Distinct partitions (only counted when limits are set; else 0).
    pub partitions: usize,
    /// Approximate bytes of entries (only counted when limits are set; else 0).
    pub bytes: usize,
    /// Entries searches have looked at (candidates from the indexes). With indexes
    /// this stays close to the number of matches; a scan would make it the section size.
    pub examined: u64,
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
        Err(Error::new(ErrorKind::InvalidEntry, format!("{method} needs an entry whose credential_type is {ct}")))
    }
}

impl TokenCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::with_limits(CacheLimits::default())
    }

    /// An empty cache bounded by `limits` (whole partitions are evicted, least
    /// recently used first, and expire as configured).
    pub fn with_limits(limits: CacheLimits) -> Self {
        let mut doc = Document::default();
        doc.reset_accounting(limits, unix_now());
        TokenCache {
            doc: RwLock::new(doc),
            changed: AtomicBool::new(false),
            limits,
            stats: Counters::default(),
            observer: RwLock::new(None),
            has_observer: AtomicBool::new(false),
            sharing: AtomicU8::new(SharingMode::default() as u8),
        }
    }

    /// Chooses when the cache behaves as sharing mode describes (see
    /// [`crate::sharing`]): lookups treat the aliases of one cloud as one environment
    /// and a `""` home account id as `null`, and writes file each item where another
    /// SDK's copy of it already is, so apps on msal-node, MSAL Go, msal4j and MSAL.NET
    /// sharing the file find each other's tokens. The default,
    /// [`SharingMode::Auto`], is msal Python byte for byte until the document shows
    /// another SDK's entries; [`SharingMode::Off`] is msal Python whatever it holds.
    pub fn set_sharing_mode(&self, mode: SharingMode) {
        self.sharing.store(mode as u8, Ordering::Release);
    }

    /// The sharing mode set (default [`SharingMode::Auto`]).
    pub fn sharing_mode(&self) -> SharingMode {
        match self.sharing.load(Ordering::Acquire) {
            m if m == SharingMode::Off as u8 => SharingMode::Off,
            m if m == SharingMode::On as u8 => SharingMode::On,
            _ => SharingMode::Auto,
        }
    }

    /// [`set_sharing_mode`](Self::set_sharing_mode) `On` (`true`) or `Off` (`false`).
    pub fn set_sharing(&self, on: bool) {
        self.set_sharing_mode(if on { SharingMode::On } else { SharingMode::Off });
    }

    /// Whether the cache behaves as sharing mode now: mode `On`, or `Auto` and the
    /// document holds another SDK's entries.
    pub fn sharing(&self) -> bool {
        self.shares(&self.doc.read())
    }

    /// Whether to behave as sharing mode on `doc`.
    fn shares(&self, doc: &Document) -> bool {
        match self.sharing_mode() {
            SharingMode::Off => false,
            SharingMode::On => true,
            SharingMode::Auto => doc.profile().shared(),
        }
    }

    /// Installs (or with `None` removes) the before/after-access observer.
    pub fn set_observer(&self, observer: Option<Arc<dyn AccessObserver>>) {
        let mut slot = self.observer.write();
        self.has_observer.store(observer.is_some(), Ordering::Release);
        *slot = observer;
    }

    fn observer(&self) -> Option<Arc<dyn AccessObserver>> {
        if !self.has_observer.load(Ordering::Acquire) {
            return None;
        }
        self.observer.read().clone()
    }

    fn notify_before(&self, operation: Operation, ct: Option<CredentialType>, partition: Option<&str>) {
        if let Some(o) = self.observer() {
            o.before_access(&AccessEvent {
                operation,
                credential_type: ct,
                partition_key: partition.map(str::to_owned),
                has_state_changed: self.has_state_changed(),
                suggested_expiry: None,
            });
        }
    }

    fn notify_after(
        &self,
        operation: Operation,
        ct: Option<CredentialType>,
        partition: Option<&str>,
        now: Option<i64>,
    ) {
        if let Some(o) = self.observer() {
            // What this call did, not the cache-wide flag: another thread's serialize()
            // may clear that between this call's write and this notification.
            let changed = match operation {
                Operation::Add | Operation::Modify => true,
                Operation::Serialize | Operation::Deserialize => false,
                Operation::Search => self.has_state_changed(),
            };
            let suggested_expiry = match partition {
                Some(p) if changed => self.suggested_expiry(p, now),
                _ => None,
            };
            o.after_access(&AccessEvent {
                operation,
                credential_type: ct,
                partition_key: partition.map(str::to_owned),
                has_state_changed: changed,
                suggested_expiry,
            });
        }
    }

    /// The limits this cache was built with.
    pub fn limits(&self) -> CacheLimits {
        self.limits
    }

    fn count_evictions(&self, c: EvictionCounts) {
        self.stats.capacity.fetch_add(c.capacity, Ordering::Relaxed);
        self.stats.absolute.fetch_add(c.absolute, Ordering::Relaxed);
        self.stats.sliding.fetch_add(c.sliding, Ordering::Relaxed);
        if c.capacity + c.absolute + c.sliding > 0 {
            log::debug!(
                "tokencache: evicted partitions (capacity {}, absolute {}, sliding {})",
                c.capacity,
                c.absolute,
                c.sliding
            );
            self.changed.store(true, Ordering::Release);
        }
    }

    /// Drops partitions whose absolute or sliding expiration has passed at `now`
    /// (and, when over a limit, the least recently used); returns how many. Also
    /// runs by itself before each search and after each add.
    pub fn purge_expired(&self, now: Option<i64>) -> u64 {
        let now = now.unwrap_or_else(unix_now);
        let c = self.doc.write().enforce_limits(now, None);
        self.count_evictions(c);
        c.absolute + c.sliding + c.capacity
    }

    fn purge_if_due(&self, now: i64) {
        if self.doc.read().limits_due(now) {
            self.purge_expired(Some(now));
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
        self.add_event(&MapRef::from(event), now)
    }

    /// [`add`](Self::add) with an event whose strings are borrowed: a binding hands
    /// over the caller's event without copying its tokens first.
    pub fn add_event(&self, event: &MapRef<'_>, now: Option<i64>) -> Result<()> {
        let now = now.unwrap_or_else(unix_now);
        let entries = entries_for(event, now)?;
        // For the observer and the limits: most caches have neither.
        let partition = (self.has_observer.load(Ordering::Acquire) || !self.limits.is_unbounded())
            .then(|| entries.iter().find_map(|(ct, _, e, _)| partition_key(*ct, e)))
            .flatten();
        self.notify_before(Operation::Add, None, partition.as_deref());
        let evicted = {
            let mut doc = self.doc.write();
            let sharing = self.shares(&doc);
            for (ct, key, entry, filing) in entries {
                if sharing {
                    sharing::file(&mut doc, ct, &key, entry, now);
                } else {
                    let filing = filing.as_ref();
                    match key {
                        // The key made for the entry, kept as it is.
                        EventKey::Made(k) if !needs_escape(&k) => doc.put_made(ct, k.into(), entry, filing, now),
                        key => doc.put_made(ct, escape_key(&key), entry, filing, now),
                    }
                }
            }
            doc.has_limiter().then(|| doc.enforce_limits(now, partition.as_deref()))
        };
        self.changed.store(true, Ordering::Release);
        if let Some(c) = evicted {
            self.count_evictions(c);
        }
        self.notify_after(Operation::Add, None, partition.as_deref(), Some(now));
        Ok(())
    }

    /// [`add`](Self::add) with the event as JSON text.
    pub fn add_json(&self, event: &str, now: Option<i64>) -> Result<()> {
        match json::parse_borrowed(event)? {
            json::ValueRef::Object(m) => self.add_event(&m, now),
            _ => Err(Error::new(ErrorKind::InvalidEvent, "an event is a JSON object")),
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
    pub fn search(&self, ct: CredentialType, target: &[&str], query: Option<&Map>, now: Option<i64>) -> Vec<Entry> {
        self.search_observed(ct, target, query, now, true)
    }

    /// [`search`](Self::search) without the removal of expired access tokens, for a
    /// caller that hands the results out lazily and, as msal's generator does, removes
    /// them only once all results were consumed (with
    /// [`remove_expired_access_tokens`](Self::remove_expired_access_tokens)).
    pub fn search_keeping_expired(
        &self,
        ct: CredentialType,
        target: &[&str],
        query: Option<&Map>,
        now: Option<i64>,
    ) -> Vec<Entry> {
        self.search_observed(ct, target, query, now, false)
    }

    /// The first result of an access-token [`search`](Self::search) alone, when msal's
    /// search finds it by its key: the token filed under the key that the query's
    /// `home_account_id`, `environment`, `client_id` and `realm` and the target make,
    /// if it matches the query (expired or not, as in msal). For a caller that hands
    /// results out lazily: most stop at the first, and the rest costs a scan of the
    /// indexes. A caller that goes on runs the whole search and drops this entry
    /// from it (each counts in [`stats`](Self::stats)).
    ///
    /// `None` means "run the whole search": no such token, a query without those
    /// fields, no target, or a cache whose searches keep books (an observer, limits,
    /// sharing mode).
    pub fn search_first_access_token(&self, target: &[&str], query: &Map) -> Option<Entry> {
        if target.is_empty()
            || self.has_observer.load(Ordering::Acquire)
            || self.sharing()
            || !self.limits.is_unbounded()
        {
            return None;
        }
        let mut scopes = target.to_vec();
        scopes.sort_unstable();
        let q = Query::new(Some(query));
        let found = Self::exact_access_token(&self.doc.read(), &q, &scopes).filter(|e| q.matches(e, &[]))?;
        self.stats.hits[CredentialType::AccessToken.index()].fetch_add(1, Ordering::Relaxed);
        self.stats.examined.fetch_add(1, Ordering::Relaxed);
        Some(found)
    }

    /// Removes every access token that expired before `now`, by the key its fields
    /// make (what the end of msal's access-token search does), and returns how many
    /// were removed. If any had expired, the cache counts as changed (as in msal,
    /// even when one filed under another SDK's key could not be removed).
    pub fn remove_expired_access_tokens(&self, now: Option<i64>) -> u64 {
        let now = now.unwrap_or_else(unix_now);
        let due = self
            .doc
            .read()
            .section(CredentialType::AccessToken)
            .and_then(|s| s.index.earliest_expiry())
            .is_some_and(|e| e < now);
        if due { self.evict_expired_access_tokens(now) } else { 0 }
    }

    fn search_observed(
        &self,
        ct: CredentialType,
        target: &[&str],
        query: Option<&Map>,
        now: Option<i64>,
        evict: bool,
    ) -> Vec<Entry> {
        if !self.has_observer.load(Ordering::Acquire) {
            return self.search_any(ct, target, query, now, evict);
        }
        let partition = query_partition(ct, query);
        self.notify_before(Operation::Search, Some(ct), partition.as_deref());
        let out = self.search_any(ct, target, query, now, evict);
        self.notify_after(Operation::Search, Some(ct), partition.as_deref(), now);
        out
    }

    /// [`search_inner`](Self::search_inner), in sharing mode once per alias of the
    /// query's environment and spelling of an empty home account id.
    fn search_any(
        &self,
        ct: CredentialType,
        target: &[&str],
        query: Option<&Map>,
        now: Option<i64>,
        evict: bool,
    ) -> Vec<Entry> {
        let sharing = query.is_some() && self.shares(&self.doc.read());
        let variants = if sharing { query.and_then(sharing::query_variants) } else { None };
        let Some(variants) = variants else { return self.search_inner(ct, target, query, now, evict) };
        let mut out: Vec<Entry> = Vec::new();
        for q in &variants {
            for e in self.search_inner(ct, target, Some(q), now, evict) {
                if !out.iter().any(|o| o.same_content(&e)) {
                    out.push(e);
                }
            }
        }
        out
    }

    fn search_inner(
        &self,
        ct: CredentialType,
        target: &[&str],
        query: Option<&Map>,
        now: Option<i64>,
        evict_expired: bool,
    ) -> Vec<Entry> {
        let now = now.unwrap_or_else(unix_now);
        self.purge_if_due(now);
        let mut scopes: Vec<&str> = target.to_vec();
        scopes.sort_unstable();
        let q = Query::new(query);
        let is_at = ct == CredentialType::AccessToken;
        let mut out = Vec::new();
        let evict;
        {
            let doc = self.doc.read();
            let mut preferred: Option<Entry> = None;
            if is_at
                && !scopes.is_empty()
                && let Some(e) = Self::exact_access_token(&doc, &q, &scopes)
                && q.matches(&e, &[])
            {
                out.push(e.clone());
                preferred = Some(e);
            }
            if let Some(section) = doc.section(ct) {
                let mut examined = 0u64;
                // The expiry index knows whether anything expired at all: if not, skip
                // reading each candidate's expires_on.
                let check_expiry = is_at && section.index.earliest_expiry().is_some_and(|e| e < now);
                let mut consider = |e: &Entry| {
                    examined += 1;
                    if check_expiry && expires_on(e).is_some_and(|x| x < now) {
                        return;
                    }
                    if preferred.as_ref().is_some_and(|p| p.same_content(e)) {
                        return;
                    }
                    if !q.matches(e, &scopes) {
                        return;
                    }
                    if is_at && !q.has_ext_cache_key && e.raw_by_id(crate::schema::field::EXT_CACHE_KEY).is_some() {
                        return;
                    }
                    out.push(e.clone());
                };
                match Document::candidates(section, doc.users(), &q, &scopes) {
                    Some(slots) => slots.into_iter().filter_map(|i| section.entry(i)).for_each(&mut consider),
                    None => section.live_slots().for_each(|(_, s)| {
                        if let Stored::Entry(e) = &s.value {
                            consider(e)
                        }
                    }),
                }
                self.stats.examined.fetch_add(examined, Ordering::Relaxed);
            }
            if doc.has_limiter() {
                out.iter().for_each(|e| doc.touch(ct, e, now));
            }
            evict = evict_expired
                && is_at
                && doc
                    .section(CredentialType::AccessToken)
                    .and_then(|s| s.index.earliest_expiry())
                    .is_some_and(|e| e < now);
        }
        if evict {
            self.evict_expired_access_tokens(now);
        }
        let counter = if out.is_empty() { &self.stats.misses } else { &self.stats.hits };
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

    fn evict_expired_access_tokens(&self, now: i64) -> u64 {
        let mut doc = self.doc.write();
        let expired = doc.expired_access_tokens(now);
        if expired.is_empty() {
            return 0;
        }
        let mut removed = 0;
        for e in &expired {
            // msal removes through remove_at, i.e. by the key the entry's fields make.
            if let Ok(key) = key_of(CredentialType::AccessToken, e)
                && doc.remove_canonical(CredentialType::AccessToken, &key).is_some()
            {
                removed += 1;
            }
        }
        drop(doc);
        self.stats.expired_evicted.fetch_add(removed, Ordering::Relaxed);
        self.changed.store(true, Ordering::Release);
        removed
    }

    /// Removes every access token that expired before `now`, whatever key it is filed
    /// under (unlike [`remove_expired_access_tokens`](Self::remove_expired_access_tokens),
    /// which removes, as msal does, only those under the key their fields make, and so
    /// never those other SDKs filed under their own keys). Returns how many; the cache
    /// counts as changed when any were.
    pub fn remove_all_expired_access_tokens(&self, now: Option<i64>) -> u64 {
        let now = now.unwrap_or_else(unix_now);
        let removed = self.doc.write().remove_expired_access_tokens(now) as u64;
        if removed > 0 {
            self.stats.expired_evicted.fetch_add(removed, Ordering::Relaxed);
            self.changed.store(true, Ordering::Release);
        }
        removed
    }

    /// Runs `f` on the document under the read lock (for the tools that list it).
    pub(crate) fn with_document<R>(&self, f: impl FnOnce(&Document) -> R) -> R {
        f(&self.doc.read())
    }

    /// Whether an access-token search at `now` would drop expired access tokens.
    pub fn has_expired_access_tokens(&self, now: Option<i64>) -> bool {
        let now = now.unwrap_or_else(unix_now);
        self.doc
            .read()
            .section(CredentialType::AccessToken)
            .and_then(|s| s.index.earliest_expiry())
            .is_some_and(|e| e < now)
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
        let found = {
            let doc = self.doc.read();
            let section = doc.section(CredentialType::AccessToken);
            section.and_then(|s| s.entry(s.find(&escape_key(&key))?).cloned())
        };
        if found.is_some() {
            return found;
        }
        // Sharing mode: the token under any alias or key style, with exactly these scopes.
        let doc = self.doc.read();
        if !self.shares(&doc) {
            return None;
        }
        sharing::find_access_token(&doc, home_account_id, environment, client_id, realm, &target, ext_cache_key)
    }

    /// The app metadata of `client_id` in `environment` (msal's `_get_app_metadata`).
    pub fn get_app_metadata(&self, environment: &str, client_id: &str) -> Option<Entry> {
        let doc = self.doc.read();
        let section = doc.section(CredentialType::AppMetadata)?;
        let lookup = |env: &str| section.entry(section.find(&escape_key(&format!("appmetadata-{env}-{client_id}")))?);
        if let Some(e) = lookup(environment) {
            return Some(e.clone());
        }
        if !self.shares(&doc) {
            return None;
        }
        sharing::cloud_aliases(environment)?.iter().find_map(|a| lookup(a)).cloned()
    }

    /// msal's `modify(credential_type, old_entry, new_key_value_pairs)`: with
    /// non-empty `changes`, files `old_entry` updated by `changes` under the key
    /// `old_entry`'s fields make; otherwise removes whatever is filed under that key.
    /// Either way the cache counts as changed.
    pub fn modify(&self, ct: CredentialType, old: &Entry, changes: Option<&Map>) -> Result<()> {
        let mut key = key_of(ct, old)?;
        let partition = self.has_observer.load(Ordering::Acquire).then(|| partition_key(ct, old)).flatten();
        self.notify_before(Operation::Modify, Some(ct), partition.as_deref());
        {
            let doc = self.doc.read();
            if self.shares(&doc) {
                key = sharing::locate(&doc, ct, &key, old);
            }
        }
        match changes {
            Some(c) if !c.is_empty() => {
                let new = old.merged_with(c)?;
                self.doc.write().put(ct, &escape_key(&key), Stored::Entry(new), unix_now());
            }
            _ => {
                self.doc.write().remove_canonical(ct, &key);
            }
        }
        self.changed.store(true, Ordering::Release);
        self.notify_after(Operation::Modify, Some(ct), partition.as_deref(), None);
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
            return Err(Error::new(ErrorKind::InvalidEntry, "remove_account needs an entry with authority_type"));
        }
        self.modify(CredentialType::Account, account, None)
    }

    /// The whole cache as msal Python's `serialize()` writes it (`json.dumps(indent=4)`),
    /// and clears [`has_state_changed`](Self::has_state_changed).
    pub fn serialize(&self) -> String {
        self.notify_before(Operation::Serialize, None, None);
        let mut out = String::new();
        {
            let doc = self.doc.read();
            self.changed.store(false, Ordering::Release);
            doc.write_python(&mut out);
        }
        self.notify_after(Operation::Serialize, None, None, None);
        out
    }

    /// [`serialize`](Self::serialize) into a buffer the caller allocates, for a binding
    /// that writes the text straight into its own string object: `alloc(len)` gives a
    /// buffer of exactly `len` bytes (or `None` to decline), which is filled with the
    /// text. The text is ASCII: msal's `json.dumps` escapes everything else.
    ///
    /// `alloc` runs with no lock held, so it may block (on an interpreter lock, say);
    /// if the cache changes before the buffer is filled, it is asked again, a few
    /// times at most. When it declines, or the cache keeps changing, the text comes
    /// back as `Err(String)` instead. Observers see one serialize either way.
    pub fn serialize_with<B: AsMut<[u8]>>(
        &self,
        mut alloc: impl FnMut(usize) -> Option<B>,
    ) -> std::result::Result<B, String> {
        self.notify_before(Operation::Serialize, None, None);
        let mut filled = None;
        for _ in 0..3 {
            let len = self.doc.read().python_len();
            let Some(mut buf) = alloc(len) else { break };
            let doc = self.doc.read();
            let mut w = json::AsciiSliceWriter::new(buf.as_mut());
            doc.write_python_to(&mut w);
            if w.filled_exactly() {
                self.changed.store(false, Ordering::Release);
                filled = Some(buf);
                break;
            }
        }
        let res = filled.ok_or_else(|| {
            let mut out = String::new();
            let doc = self.doc.read();
            self.changed.store(false, Ordering::Release);
            doc.write_python(&mut out);
            out
        });
        self.notify_after(Operation::Serialize, None, None, None);
        res
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
        self.notify_before(Operation::Deserialize, None, None);
        let res = self.deserialize_inner(text);
        self.notify_after(Operation::Deserialize, None, None, None);
        res
    }

    fn deserialize_inner(&self, text: &str) -> Result<()> {
        let mut doc = if text.is_empty() { Document::default() } else { Document::parse(text)? };
        let now = unix_now();
        let mut evicted = None;
        // The parser files entries by section only: index the partitions here, or
        // serialize_partition, remove_partition and suggested_expiry see none.
        doc.reset_accounting(self.limits, now);
        if !self.limits.is_unbounded() {
            evicted = Some(doc.enforce_limits(now, None));
        }
        *self.doc.write() = doc;
        self.changed.store(false, Ordering::Release);
        if let Some(c) = evicted {
            self.count_evictions(c);
        }
        Ok(())
    }

    /// Every partition key present, in document order (see [`partition_key`]).
    pub fn partition_keys(&self) -> Vec<String> {
        self.doc.read().partition_keys()
    }

    /// The entries of one partition, plus the app metadata of the apps they belong
    /// to, as a document in msal Python's format (MSAL.NET's per-partition blob).
    pub fn serialize_partition(&self, key: &str) -> String {
        self.notify_before(Operation::Serialize, None, Some(key));
        let out = self.serialize_partition_inner(key);
        self.notify_after(Operation::Serialize, None, Some(key), None);
        out
    }

    fn serialize_partition_inner(&self, key: &str) -> String {
        let doc = self.doc.read();
        let mut selected: [Vec<u32>; 5] = Default::default();
        let mut apps: Vec<(String, String)> = Vec::new();
        for (ct, slot) in doc.partition_members(key) {
            if let Some(e) = doc.section(ct).and_then(|s| s.entry(slot))
                && let (Some(env), Some(cid)) = (e.get_str("environment"), e.get_str("client_id"))
            {
                let app = (env.into_owned(), cid.into_owned());
                if !apps.contains(&app) {
                    apps.push(app);
                }
            }
            selected[ct.index()].push(slot);
        }
        if let Some(section) = doc.section(CredentialType::AppMetadata) {
            for (env, cid) in &apps {
                if let Some(i) = section.find(&escape_key(&format!("appmetadata-{env}-{cid}"))) {
                    selected[CredentialType::AppMetadata.index()].push(i);
                }
            }
            selected[CredentialType::AppMetadata.index()].sort_unstable();
        }
        let mut out = String::new();
        doc.write_selected(&mut out, &selected);
        out
    }

    /// Replaces partition `key` with the entries of `text` (a blob written by
    /// [`serialize_partition`](Self::serialize_partition)); app metadata in it is
    /// merged. An entry of another partition in `text` is an error. Nothing else in
    /// the cache is touched; on error nothing at all is. Clears the changed flag.
    pub fn deserialize_partition(&self, key: &str, text: &str) -> Result<()> {
        self.notify_before(Operation::Deserialize, None, Some(key));
        let res = self.deserialize_partition_inner(key, text);
        self.notify_after(Operation::Deserialize, None, Some(key), None);
        res
    }

    fn deserialize_partition_inner(&self, key: &str, text: &str) -> Result<()> {
        let incoming = if text.is_empty() { Document::default() } else { Document::parse(text)? };
        let mut puts: Vec<(CredentialType, Box<str>, Entry)> = Vec::new();
        for ct in CredentialType::ALL {
            let Some(section) = incoming.section(ct) else {
                continue;
            };
            for (_, slot) in section.live_slots() {
                let Stored::Entry(e) = &slot.value else {
                    continue;
                };
                match partition_key(ct, e) {
                    Some(k) if k != key => {
                        return Err(Error::new(
                            ErrorKind::InvalidArgument,
                            format!("the blob for partition {key:?} holds an entry of partition {k:?}"),
                        ));
                    }
                    _ => puts.push((ct, slot.key.clone(), e.clone())),
                }
            }
        }
        let now = unix_now();
        let evicted = {
            let mut doc = self.doc.write();
            doc.remove_partition(key);
            for (ct, k, e) in puts {
                doc.put(ct, &k, Stored::Entry(e), now);
            }
            doc.has_limiter().then(|| doc.enforce_limits(now, Some(key)))
        };
        self.changed.store(false, Ordering::Release);
        if let Some(c) = evicted {
            self.count_evictions(c);
        }
        Ok(())
    }

    /// Removes every entry of partition `key`; returns how many were removed.
    pub fn remove_partition(&self, key: &str) -> usize {
        let n = self.doc.write().remove_partition(key);
        if n > 0 {
            self.changed.store(true, Ordering::Release);
        }
        n
    }

    /// How long a store should keep partition `key` (Unix seconds): the latest access
    /// token expiry when the partition holds no refresh token; `None` when it holds
    /// one (it stays useful), or when that expiry is not after `now`.
    pub fn suggested_expiry(&self, key: &str, now: Option<i64>) -> Option<i64> {
        let now = now.unwrap_or_else(unix_now);
        let doc = self.doc.read();
        let mut latest: Option<i64> = None;
        for (ct, slot) in doc.partition_members(key) {
            match ct {
                CredentialType::RefreshToken => return None,
                CredentialType::AccessToken => {
                    if let Some(exp) = doc.section(ct).and_then(|s| s.entry(slot)).and_then(expires_on) {
                        latest = Some(latest.map_or(exp, |l: i64| l.max(exp)));
                    }
                }
                _ => {}
            }
        }
        latest.filter(|&l| l > now)
    }

    /// [`suggested_expiry`](Self::suggested_expiry) of everything the cache holds,
    /// whatever its partitions: how long a store should keep this cache as one blob
    /// (what a [`CacheProvider`](crate::CacheProvider) writes under a key of the
    /// application's choosing).
    pub(crate) fn suggested_expiry_of_all(&self, now: Option<i64>) -> Option<i64> {
        let now = now.unwrap_or_else(unix_now);
        let doc = self.doc.read();
        if doc.section(CredentialType::RefreshToken).is_some_and(|s| s.len() > 0) {
            return None;
        }
        doc.section(CredentialType::AccessToken).and_then(|s| s.index.latest_expiry()).filter(|&l| l > now)
    }

    /// Counters and sizes.
    pub fn stats(&self) -> CacheStats {
        let load = |a: &[AtomicU64; 5]| std::array::from_fn(|i| a[i].load(Ordering::Relaxed));
        let usage = self.doc.read().usage();
        CacheStats {
            hits: load(&self.stats.hits),
            misses: load(&self.stats.misses),
            evictions: EvictionCounts {
                capacity: self.stats.capacity.load(Ordering::Relaxed),
                absolute: self.stats.absolute.load(Ordering::Relaxed),
                sliding: self.stats.sliding.load(Ordering::Relaxed),
                expired_tokens: self.stats.expired_evicted.load(Ordering::Relaxed),
            },
            entries: self.len(),
            partitions: usage.map_or(0, |u| u.2),
            bytes: usage.map_or(0, |u| u.1),
            examined: self.stats.examined.load(Ordering::Relaxed),
        }
    }
}

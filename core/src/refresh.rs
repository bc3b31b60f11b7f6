//! Proactive refresh: which access tokens to renew before a request needs them.
//!
//! A token is *due* when its `refresh_on` (from the server's `refresh_in`) has
//! passed, or when it expires within the caller's horizon. An already expired token
//! is due only if it can still be renewed without a user: an app token (client
//! credentials need no refresh token) or a user token whose refresh token — the
//! app's own or its family's — is still in the cache.

use crate::cache::{TokenCache, unix_now};
use crate::document::{Document, Stored};
use crate::entry::Entry;
use crate::index::expires_on;
use crate::json::Value;
use crate::schema::{CredentialType, field};

/// An access token due for renewal, and why.
#[derive(Clone, Debug)]
pub struct DueToken {
    /// The access token entry (clone it into a query to renew it).
    pub entry: Entry,
    /// Its `expires_on` (Unix seconds), if readable.
    pub expires_on: Option<i64>,
    /// Whether it is already expired at `now`.
    pub expired: bool,
}

fn refresh_on(e: &Entry) -> Option<i64> {
    e.get("refresh_on").and_then(|v| v.to_python_int())
}

/// Whether a refresh token that can renew `at` is in the cache: same user and
/// environment, and the app's own client id or its family's.
fn has_refresh_token(doc: &Document, at: &Entry) -> bool {
    let Some(rts) = doc.section(CredentialType::RefreshToken) else { return false };
    let hid = at.str_by_id(field::HOME_ACCOUNT_ID);
    let env = at.str_by_id(field::ENVIRONMENT);
    let cid = at.str_by_id(field::CLIENT_ID);
    let family = cid.as_deref().and_then(|c| {
        doc.section(CredentialType::AppMetadata)?
            .live_slots()
            .filter_map(|(_, s)| match &s.value {
                Stored::Entry(m) if m.str_by_id(field::CLIENT_ID).as_deref() == Some(c) => {
                    m.get("family_id").filter(Value::is_truthy)
                }
                _ => None,
            })
            .next()
    });
    rts.live_slots().any(|(_, s)| match &s.value {
        Stored::Entry(rt) => {
            rt.str_by_id(field::HOME_ACCOUNT_ID) == hid
                && rt.str_by_id(field::ENVIRONMENT) == env
                && (rt.str_by_id(field::CLIENT_ID) == cid
                    || family.as_ref().is_some_and(|f| rt.get("family_id").as_ref() == Some(f)))
        }
        Stored::Opaque(_) => false,
    })
}

impl TokenCache {
    /// The access tokens to renew now: `refresh_on` passed, or expiring within
    /// `horizon_secs` of `now`; expired ones only when renewable without a user (see
    /// the module docs). Reads the cache; changes nothing. Cost: one pass over the
    /// access tokens (meant for a background refresher, not the request path).
    pub fn due_for_refresh(&self, now: Option<i64>, horizon_secs: i64) -> Vec<DueToken> {
        let now = now.unwrap_or_else(unix_now);
        self.with_document(|doc| {
            let Some(section) = doc.section(CredentialType::AccessToken) else { return Vec::new() };
            let mut out = Vec::new();
            for (_, slot) in section.live_slots() {
                let Stored::Entry(e) = &slot.value else { continue };
                let exp = expires_on(e);
                let expired = exp.is_some_and(|x| x < now);
                let due =
                    expired || exp.is_some_and(|x| x - now <= horizon_secs) || refresh_on(e).is_some_and(|r| r <= now);
                if !due {
                    continue;
                }
                if expired {
                    let app_token = e.str_by_id(field::HOME_ACCOUNT_ID).is_none_or(|h| h.is_empty());
                    if !app_token && !has_refresh_token(doc, e) {
                        continue;
                    }
                }
                out.push(DueToken { entry: e.clone(), expires_on: exp, expired });
            }
            out
        })
    }
}

/// Which token a [`DueToken`] is, across polls: its fields that name it and the
/// expiry of this issuance (a renewed token is a new issuance, due again later).
fn issuance(t: &DueToken) -> String {
    let e = &t.entry;
    let f = |id| e.str_by_id(id).unwrap_or_default();
    format!(
        "{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}",
        f(field::HOME_ACCOUNT_ID),
        f(field::ENVIRONMENT),
        f(field::CLIENT_ID),
        f(field::REALM),
        f(field::TARGET),
        f(field::EXT_CACHE_KEY),
        t.expires_on.unwrap_or(i64::MIN)
    )
}

/// The "a token became due" event: each poll returns the tokens of
/// [`TokenCache::due_for_refresh`] not returned by an earlier poll, so a background
/// refresher renews each issuance of a token once (a renewal's new `expires_on` makes
/// it a new issuance, due again when its time comes).
///
/// ```
/// use tokencache::{RefreshWatcher, TokenCache};
/// let cache = TokenCache::new();
/// cache.add_json(r#"{"client_id": "daemon", "scope": ["s"],
///     "token_endpoint": "https://login.microsoftonline.com/t/oauth2/v2.0/token",
///     "response": {"access_token": "at", "expires_in": 3600}}"#, Some(1_000))?;
/// let watcher = RefreshWatcher::new(300);
/// assert!(watcher.poll(&cache, Some(1_000)).is_empty());        // an hour left
/// assert_eq!(watcher.poll(&cache, Some(4_400)).len(), 1);       // 200 s left: due
/// assert!(watcher.poll(&cache, Some(4_500)).is_empty());        // already reported
/// # Ok::<(), tokencache::Error>(())
/// ```
#[derive(Debug)]
pub struct RefreshWatcher {
    horizon_secs: i64,
    reported: parking_lot::Mutex<std::collections::HashSet<String>>,
}

impl RefreshWatcher {
    /// A watcher that reports tokens expiring within `horizon_secs` (or past their
    /// `refresh_on`).
    pub fn new(horizon_secs: i64) -> Self {
        RefreshWatcher { horizon_secs, reported: Default::default() }
    }

    /// The horizon, in seconds.
    pub fn horizon_secs(&self) -> i64 {
        self.horizon_secs
    }

    /// The tokens due at `now` that no earlier poll returned. Tokens no longer due
    /// (renewed, removed) are forgotten, so memory stays bounded by the due set.
    pub fn poll(&self, cache: &TokenCache, now: Option<i64>) -> Vec<DueToken> {
        let due = cache.due_for_refresh(now, self.horizon_secs);
        let mut reported = self.reported.lock();
        let current: std::collections::HashSet<String> = due.iter().map(issuance).collect();
        reported.retain(|k| current.contains(k));
        due.into_iter().filter(|t| reported.insert(issuance(t))).collect()
    }

    /// Reports `token` again at the next poll (its renewal failed).
    pub fn retry(&self, token: &DueToken) {
        self.reported.lock().remove(&issuance(token));
    }
}

//! Sharing mode: one cache file for apps on every MSAL SDK.
//!
//! By default a [`TokenCache`](crate::TokenCache) behaves byte for byte as msal
//! Python's cache. Apps on other SDKs reading the same file then miss some of its
//! items, and it misses some of theirs, because the SDKs file one item differently:
//!
//! - **Environment**: msal-node and msal4j write the cloud's preferred cache alias
//!   (`login.windows.net`), msal Python and MSAL Go the authority's host
//!   (`login.microsoftonline.com`). Every SDK looks items up by its own spelling.
//! - **App-only tokens**: msal-node writes `"home_account_id": ""` and serves only
//!   entries whose `home_account_id` is a string; msal Python writes `null` and
//!   looks up `null`.
//! - **Keys**: each SDK has its own key style (msal-node's RT key ends `---`, MSAL
//!   Go's IdToken key has no trailing `-`, family RTs are keyed by family id). msal
//!   Python's `add`/`modify` file a renewed item under its own key, beside the peer's
//!   copy, so the file holds the item twice; msal-node deletes every access token
//!   it finds twice, and MSAL Go or msal4j may pick the stale copy.
//!
//! When sharing mode applies is the cache's [`SharingMode`]
//! ([`TokenCache::set_sharing_mode`](crate::TokenCache::set_sharing_mode)): always
//! (`On`), never (`Off`), or, by default (`Auto`), once the document holds an entry
//! another SDK wrote: one under a key msal Python would not make from its fields, an
//! app-only access token with `"home_account_id": ""`, or an access token without
//! `token_type` (msal Python 1.39 leaves none of these). In sharing mode:
//!
//! - lookups (`search`, `get_access_token`, `get_app_metadata`) treat the aliases
//!   of one cloud ([`cloud_aliases`]) as one environment and `""`, `null` and a
//!   missing `home_account_id` as one value;
//! - `add` files each item where a copy of the same item already is (under the
//!   peer's key, keeping the peer's environment and any fields it wrote that this
//!   response does not carry), and under msal Python's key only when there is none;
//!   further copies of the item are removed;
//! - `add` writes app-only access tokens with `"home_account_id": ""` (what
//!   msal-node and MSAL.NET write), and removes the other access tokens of the same
//!   app, account, tenant and cloud whose scopes intersect the new one's (ignoring
//!   `openid`, `profile`, `offline_access`), as msal-node and MSAL.NET do on write;
//! - `modify`, `update_rt` and the `remove_*` methods act on the entry where it is
//!   filed, not on the key msal Python would make from its fields.
//!
//! The cost: msal Python apps that read the file with msal's own cache (not with
//! tokencache) do not find app-only tokens written in sharing mode; use tokencache
//! in every Python app that shares the file. And `Auto` cannot see an SDK that has
//! not written to the file yet: an app token tokencache writes first, the msal Python
//! way (`"home_account_id": null`), is one msal-node never serves; set `On` for a
//! file an msal-node app will read.

use std::borrow::Cow;

use crate::document::{Document, Query, Stored, escape_key, key_of_into};
use crate::entry::{Entry, unescape};
use crate::json::{Map, Value};
use crate::schema::{CredentialType, field};

/// When a [`TokenCache`](crate::TokenCache) behaves as sharing mode describes
/// ([`TokenCache::set_sharing_mode`](crate::TokenCache::set_sharing_mode)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SharingMode {
    /// Always byte for byte msal Python, whoever else writes the document.
    Off,
    /// Always sharing mode.
    On,
    /// msal Python's behaviour until the document shows that an app on another SDK
    /// shares it, then sharing mode (the default; the signs are in the module
    /// documentation). A
    /// document only msal Python (or tokencache) wrote is handled byte for byte as
    /// msal Python does.
    #[default]
    Auto,
}

/// What a document shows about who writes it, kept up to date as entries come and
/// go (only once someone asked, so caches that never do pay nothing): how many of
/// its entries another SDK wrote, by signs msal Python 1.39 never leaves:
///
/// - a key msal Python would not make from the entry's fields (msal-node's `---`
///   refresh-token keys, MSAL Go's capitalised or trailing-dash-less keys, family-id
///   keys);
/// - an app-only access token with `"home_account_id": ""` (msal-node, MSAL.NET);
/// - an access token without `token_type` (every other SDK: msal Python writes it
///   on each one).
///
/// Two aliases of one cloud are not a sign: one msal Python app may use two
/// authorities.
#[derive(Debug, Default)]
pub(crate) struct Profile {
    foreign: usize,
}

impl Profile {
    pub(crate) fn added(&mut self, ct: CredentialType, escaped_key: &str, e: &Entry) {
        if filed_by_another_sdk(ct, escaped_key, e) {
            self.foreign += 1;
        }
    }

    /// [`added`](Self::added) for an entry filed under the key msal Python makes from
    /// its fields (what `add` writes): only its fields can show another SDK.
    pub(crate) fn added_under_own_key(&mut self, ct: CredentialType, escaped_key: &str, e: &Entry) {
        debug_assert!(!key_differs(ct, escaped_key, e), "add filed an entry under a key msal Python would not make");
        if has_environment(e) && fields_show_another_sdk(ct, e) {
            self.foreign += 1;
        }
    }

    pub(crate) fn removed(&mut self, ct: CredentialType, escaped_key: &str, e: &Entry) {
        // Nothing counted, nothing to take back (the usual case, a document only msal
        // Python wrote): spares working the key out again for each replaced entry.
        if self.foreign > 0 && filed_by_another_sdk(ct, escaped_key, e) {
            self.foreign = self.foreign.saturating_sub(1);
        }
    }

    /// Whether an app on another SDK wrote to the document.
    pub(crate) fn shared(&self) -> bool {
        self.foreign > 0
    }
}

/// Whether `e` is filed as another SDK files it, not as msal Python would.
pub(crate) fn filed_by_another_sdk(ct: CredentialType, escaped_key: &str, e: &Entry) -> bool {
    has_environment(e) && (fields_show_another_sdk(ct, e) || key_differs(ct, escaped_key, e))
}

/// An entry without an environment (garbage such as MSAL Go's test entry
/// `"an-entry": {"foo": "bar"}`) is nobody's item: it says nothing.
fn has_environment(e: &Entry) -> bool {
    !text(e, field::ENVIRONMENT).is_empty()
}

/// The signs in the fields themselves: an access token with `"home_account_id": ""`
/// or without `token_type`.
fn fields_show_another_sdk(ct: CredentialType, e: &Entry) -> bool {
    ct == CredentialType::AccessToken
        && (e.str_by_id(field::HOME_ACCOUNT_ID).is_some_and(|h| h.is_empty())
            || e.raw_by_id(field::TOKEN_TYPE).is_none())
}

/// Whether msal Python would file `e` under another key than `escaped_key`.
fn key_differs(ct: CredentialType, escaped_key: &str, e: &Entry) -> bool {
    thread_local! {
        static KEY: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
    }
    KEY.with_borrow_mut(|k| {
        k.clear();
        key_of_into(ct, e, k).is_ok() && *escape_key(k) != *escaped_key
    })
}

/// The hosts of one cloud that every MSAL SDK treats as one (the instance-discovery
/// `aliases` of Microsoft's known clouds, as msal and MSAL.NET ship them).
pub const CLOUDS: &[&[&str]] = &[
    &["login.microsoftonline.com", "login.windows.net", "login.microsoft.com", "sts.windows.net"],
    &["login.partner.microsoftonline.cn", "login.chinacloudapi.cn"],
    &["login.microsoftonline.de"],
    &["login.microsoftonline.us", "login.usgovcloudapi.net"],
    &["login-us.microsoftonline.com"],
    &["login.windows-ppe.net", "sts.windows-ppe.net", "login.microsoft-ppe.com"],
];

/// The alias of each cloud that msal-node, msal4j and MSAL.NET file items under
/// (instance discovery's `preferred_cache`), in the order of [`CLOUDS`].
const PREFERRED_CACHE: [&str; 6] = [
    "login.windows.net",
    "login.chinacloudapi.cn",
    "login.microsoftonline.de",
    "login.microsoftonline.us",
    "login-us.microsoftonline.com",
    "login.windows-ppe.net",
];

/// The host the SDKs that use instance discovery file `environment`'s items under
/// (its cloud's `preferred_cache`), or `None` for a host that is not a known cloud.
pub fn preferred_cache(environment: &str) -> Option<&'static str> {
    let i = CLOUDS.iter().position(|c| c.iter().any(|h| h.eq_ignore_ascii_case(environment)))?;
    Some(PREFERRED_CACHE[i])
}

/// The aliases of `environment`'s cloud (itself included), or `None` for a host
/// that is not a known Microsoft cloud (compared without regard to case).
pub fn cloud_aliases(environment: &str) -> Option<&'static [&'static str]> {
    CLOUDS.iter().copied().find(|c| c.iter().any(|h| h.eq_ignore_ascii_case(environment)))
}

/// Whether two environments name one cloud.
pub fn same_cloud(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b) || cloud_aliases(a).is_some_and(|c| c.iter().any(|h| h.eq_ignore_ascii_case(b)))
}

/// A field as a lower-cased string; `null`, missing and `""` all read as `""`.
fn text(e: &Entry, id: u8) -> Cow<'_, str> {
    match e.str_by_id(id) {
        Some(s) if s.bytes().any(|b| b.is_ascii_uppercase()) => Cow::Owned(s.to_ascii_lowercase()),
        Some(s) => s,
        None => Cow::Borrowed(""),
    }
}

fn named(e: &Entry, name: &str) -> String {
    e.get_str(name).map(|s| s.to_ascii_lowercase()).unwrap_or_default()
}

pub(crate) fn scope_set(target: &str) -> Vec<String> {
    let mut v: Vec<String> = target.split_whitespace().map(str::to_ascii_lowercase).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// The token's scheme (msal-node spells the field `tokenType` on PoP tokens).
fn token_type(e: &Entry) -> String {
    let t = named(e, "token_type");
    let t = if t.is_empty() { named(e, "tokenType") } else { t };
    if t.is_empty() { "bearer".into() } else { t }
}

/// Separates the fields of an identity (no field holds it).
const SEP: &str = "\u{1f}";

/// What makes an entry one item for every SDK, whatever key it is filed under, as
/// text: entries of one type with the same identity are one item (filed twice, if
/// under two keys). Case, cloud alias, and `null` against `""` do not count.
pub(crate) fn item_identity(ct: CredentialType, e: &Entry) -> String {
    use field::*;
    let fields: &[u8] = match ct {
        CredentialType::AccessToken => {
            return [token_family(e), resource_scopes(&text(e, TARGET)).join(" ")].join(SEP);
        }
        CredentialType::RefreshToken => &[CLIENT_ID, FAMILY_ID],
        CredentialType::IdToken => &[CLIENT_ID, REALM],
        CredentialType::Account => &[REALM],
        CredentialType::AppMetadata => &[CLIENT_ID],
    };
    let mut parts = owner_and_cloud(e);
    parts.extend(fields.iter().map(|id| text(e, *id)));
    parts.join(SEP)
}

/// An entry's home account id and cloud (its `preferred_cache` alias, or its
/// environment outside the known clouds), the first fields of every identity.
fn owner_and_cloud(e: &Entry) -> Vec<Cow<'_, str>> {
    let env = text(e, field::ENVIRONMENT);
    let cloud = preferred_cache(&env).map_or(env.clone(), Cow::Borrowed);
    vec![text(e, field::HOME_ACCOUNT_ID), cloud]
}

/// The identity of an access token without its scopes: one app, account, tenant,
/// cloud and kind. msal-node keeps one token of such a family per scope.
fn token_family(e: &Entry) -> String {
    use field::*;
    let mut parts = owner_and_cloud(e);
    parts.extend([text(e, CLIENT_ID), text(e, REALM), Cow::Owned(token_type(e))]);
    parts.extend([text(e, KEY_ID), text(e, EXT_CACHE_KEY), text(e, USER_ASSERTION_HASH)]);
    parts.join(SEP)
}

const OIDC_SCOPES: [&str; 3] = ["openid", "profile", "offline_access"];

/// A token's scopes as a set, without the OIDC ones unless it has only those (msal4j
/// adds them to app tokens, msal-node and msal Python to user tokens, each its way).
fn resource_scopes(target: &str) -> Vec<String> {
    let mut set = scope_set(target);
    if !set.iter().all(|s| OIDC_SCOPES.contains(&s.as_str())) {
        set.retain(|s| !OIDC_SCOPES.contains(&s.as_str()));
    }
    set
}

/// msal-common's `ScopeSet.intersectingScopeSets`: the new token's scopes without
/// the OIDC ones (unless it has only those) meet the cached token's scopes.
fn scopes_intersect(new_target: &str, cached_target: &str) -> bool {
    let new = resource_scopes(new_target);
    let cached = scope_set(cached_target);
    new.iter().any(|s| cached.contains(s))
}

/// The fields every copy of `e`'s item has with the same text (up to case), as
/// query conditions that narrow the search to them through the index: the client id,
/// the tenant and a non-empty home account id. (Environments differ between copies,
/// and an app token's home account id is `null` in one SDK and `""` in another.)
fn narrowing(ct: CredentialType, e: &Entry) -> Map {
    narrowing_by(ct, |id| text(e, id))
}

/// [`narrowing`] from the fields `value` gives (lower-cased; `""` for none).
fn narrowing_by<'a>(ct: CredentialType, value: impl Fn(u8) -> Cow<'a, str>) -> Map {
    let mut q = Map::new();
    let fields: &[(&str, u8)] = match ct {
        CredentialType::AccessToken | CredentialType::IdToken => {
            &[("client_id", field::CLIENT_ID), ("realm", field::REALM), ("home_account_id", field::HOME_ACCOUNT_ID)]
        }
        CredentialType::RefreshToken => &[("client_id", field::CLIENT_ID), ("home_account_id", field::HOME_ACCOUNT_ID)],
        CredentialType::Account => &[("home_account_id", field::HOME_ACCOUNT_ID), ("realm", field::REALM)],
        CredentialType::AppMetadata => &[("client_id", field::CLIENT_ID)],
    };
    for (name, id) in fields {
        let value = value(*id);
        if !value.is_empty() {
            q.insert(*name, Value::from(value.into_owned()));
        }
    }
    q
}

/// The slots (with their decoded keys) of `ct` whose entries pass `also`, among those
/// that have the fields of `narrow` (compared without case: the index folds case).
fn copies(doc: &Document, ct: CredentialType, narrow: &Map, also: impl Fn(&Entry) -> bool) -> Vec<(u32, String)> {
    let Some(section) = doc.section(ct) else { return Vec::new() };
    let mut out = Vec::new();
    let mut consider = |i: u32, stored: &Entry, key: &str| {
        if also(stored) {
            out.push((i, unescape(key).into_owned()));
        }
    };
    let query = Query::new(Some(narrow));
    match Document::candidates(section, doc.users(), &query, &[]) {
        Some(slots) => {
            for i in slots {
                if let Some(slot) = section.slot(i)
                    && let Stored::Entry(stored) = &slot.value
                {
                    consider(i, stored, &slot.key);
                }
            }
        }
        None => scan(section, &mut consider),
    }
    out
}

fn scan(section: &crate::document::Section, consider: &mut impl FnMut(u32, &Entry, &str)) {
    for (i, slot) in section.live_slots() {
        if let Stored::Entry(stored) = &slot.value {
            consider(i, stored, &slot.key);
        }
    }
}

/// `ours` as it is filed over `theirs`: every field `ours` has, the fields only
/// `theirs` has, and `theirs`' environment, home account id and target (the same
/// scopes, spelt as `theirs`' key spells them), so `theirs`' key still describes it.
fn filed_over(theirs: &Entry, ours: &Entry) -> Entry {
    let mut changes = ours.to_map();
    for name in ["environment", "home_account_id", "target"] {
        match theirs.get(name) {
            Some(v) => {
                changes.insert(name, v);
            }
            None => {
                changes.remove(name);
            }
        }
    }
    theirs.merged_with(&changes).unwrap_or_else(|_| ours.clone())
}

/// An app-only access token with `"home_account_id": ""` instead of `null`/absent.
fn with_empty_home_account(ct: CredentialType, e: Entry) -> Entry {
    if ct != CredentialType::AccessToken || e.str_by_id(field::HOME_ACCOUNT_ID).is_some_and(|s| !s.is_empty()) {
        return e;
    }
    if e.str_by_id(field::HOME_ACCOUNT_ID).is_some() {
        return e; // already ""
    }
    let mut changes = Map::new();
    changes.insert("home_account_id", Value::from(""));
    e.merged_with(&changes).unwrap_or(e)
}

/// A new item as sharing mode files it: under its cloud's `preferred_cache` alias,
/// and credentials under msal-node's key (the one SDK that finds items by key, so
/// its next write of the item replaces ours instead of filing a copy beside it).
/// Entries with an `ext_cache_key` (msal Python's own) keep msal Python's key.
fn shared_style(ct: CredentialType, entry: Entry, key: &str) -> (Entry, String) {
    let env = text(&entry, field::ENVIRONMENT).into_owned();
    let entry = match preferred_cache(&env) {
        Some(p) if p != env => {
            let mut changes = Map::new();
            changes.insert("environment", Value::from(p));
            entry.merged_with(&changes).unwrap_or(entry)
        }
        _ => entry,
    };
    let env = text(&entry, field::ENVIRONMENT).into_owned();
    let hid = text(&entry, field::HOME_ACCOUNT_ID).into_owned();
    let key = match ct {
        _ if !text(&entry, field::EXT_CACHE_KEY).is_empty() => key.to_owned(),
        CredentialType::AccessToken | CredentialType::RefreshToken | CredentialType::IdToken => {
            let family = text(&entry, field::FAMILY_ID);
            let client = text(&entry, field::CLIENT_ID);
            let id = if ct == CredentialType::RefreshToken && !family.is_empty() { family } else { client };
            let scheme = match token_type(&entry).as_str() {
                "bearer" => String::new(),
                other => other.to_owned(),
            };
            // msal-node keeps neither a realm nor a target on refresh tokens.
            let rt = ct == CredentialType::RefreshToken;
            let realm = if rt { Cow::Borrowed("") } else { text(&entry, field::REALM) };
            let target = if rt { Cow::Borrowed("") } else { text(&entry, field::TARGET) };
            let ct_name = ct.as_str().to_ascii_lowercase();
            [hid.as_str(), &env, &ct_name, &id, &realm, &target, &scheme].join("-")
        }
        CredentialType::Account => format!("{hid}-{env}-{}", text(&entry, field::REALM)),
        CredentialType::AppMetadata => format!("appmetadata-{env}-{}", text(&entry, field::CLIENT_ID)),
    };
    (entry, key)
}

/// Files `entry` (which msal Python would file under `key`) in sharing mode; see the
/// module documentation.
pub(crate) fn file(doc: &mut Document, ct: CredentialType, key: &str, entry: Entry, now: i64) {
    let entry = with_empty_home_account(ct, entry);
    let escaped = escape_key(key).into_owned();
    let narrow = narrowing(ct, &entry);
    let identity = item_identity(ct, &entry);
    let found = copies(doc, ct, &narrow, |stored| item_identity(ct, stored) == identity);
    let primary = found.iter().find(|(_, k)| escape_key(k) == escaped.as_str()).or(found.first()).cloned();
    let filed_key = match &primary {
        None => {
            let (shared, key) = shared_style(ct, entry.clone(), key);
            doc.put(ct, &escape_key(&key), Stored::Entry(shared), now);
            key
        }
        Some((slot, k)) => {
            let theirs = doc.section(ct).and_then(|s| s.entry(*slot)).cloned();
            let filed = theirs.map_or_else(|| entry.clone(), |t| filed_over(&t, &entry));
            doc.put(ct, &escape_key(k), Stored::Entry(filed), now);
            k.clone()
        }
    };
    let mut stale: Vec<String> = found.into_iter().map(|(_, k)| k).filter(|k| *k != filed_key).collect::<Vec<_>>();
    if ct == CredentialType::AccessToken {
        let target = text(&entry, field::TARGET).into_owned();
        let family = token_family(&entry);
        stale.extend(
            copies(doc, ct, &narrow, |stored| {
                token_family(stored) == family && scopes_intersect(&target, &text(stored, field::TARGET))
            })
            .into_iter()
            .map(|(_, k)| k)
            .filter(|k| *k != filed_key),
        );
    }
    stale.sort_unstable();
    stale.dedup();
    for k in stale {
        doc.remove_canonical(ct, &k);
    }
}

/// The access token of exactly these fields and scopes, filed under any alias of
/// `environment`, any key style, with `None` and `""` as one home account id (what
/// `get_access_token` finds in sharing mode when msal Python's key holds nothing).
pub(crate) fn find_access_token(
    doc: &Document,
    home_account_id: Option<&str>,
    environment: &str,
    client_id: &str,
    realm: &str,
    target: &str,
    ext_cache_key: Option<&str>,
) -> Option<Entry> {
    let ct = CredentialType::AccessToken;
    let (hid, realm, ext) =
        (home_account_id.unwrap_or("").to_ascii_lowercase(), realm.to_ascii_lowercase(), ext_cache_key.unwrap_or(""));
    let narrow = narrowing_by(ct, |id| {
        Cow::Borrowed(match id {
            field::CLIENT_ID => client_id,
            field::REALM => &realm,
            field::HOME_ACCOUNT_ID => &hid,
            _ => "",
        })
    });
    let wanted = scope_set(target);
    let found = copies(doc, ct, &narrow, |e| {
        text(e, field::HOME_ACCOUNT_ID) == hid
            && same_cloud(&text(e, field::ENVIRONMENT), environment)
            && text(e, field::REALM) == realm
            && e.str_by_id(field::EXT_CACHE_KEY).as_deref().unwrap_or("") == ext
            && scope_set(&text(e, field::TARGET)) == wanted
    });
    let (slot, _) = found.first()?;
    doc.section(ct)?.entry(*slot).cloned()
}

/// The key `old` is filed under: msal Python's key when an equal entry is there,
/// else the key of a copy of the same item (an equal one first).
pub(crate) fn locate(doc: &Document, ct: CredentialType, msal_key: &str, old: &Entry) -> String {
    if let Some(section) = doc.section(ct)
        && let Some(i) = section.find(&escape_key(msal_key))
        && section.entry(i).is_some_and(|e| e.same_content(old))
    {
        return msal_key.to_owned();
    }
    let identity = item_identity(ct, old);
    let found = copies(doc, ct, &narrowing(ct, old), |stored| item_identity(ct, stored) == identity);
    let section = doc.section(ct);
    let equal = found.iter().find(|(i, _)| section.and_then(|s| s.entry(*i)).is_some_and(|e| e.same_content(old)));
    let same_secret = found.iter().find(|(i, _)| {
        section.and_then(|s| s.entry(*i)).is_some_and(|e| e.secret().is_some() && e.secret() == old.secret())
    });
    equal.or(same_secret).or(found.first()).map_or_else(|| msal_key.to_owned(), |(_, k)| k.clone())
}

/// The queries a lookup for `query` runs in sharing mode: one per alias of its
/// environment, each with `home_account_id` as `null` and as `""` when the query's
/// is either. `None` when the query needs no variants.
pub(crate) fn query_variants(query: &Map) -> Option<Vec<Map>> {
    let env = query.get("environment").and_then(Value::as_str);
    let aliases: Vec<Option<&str>> = match env.and_then(cloud_aliases) {
        Some(c) => c.iter().map(|h| Some(*h)).collect(),
        None => vec![None],
    };
    let hid_empty = query.get("home_account_id").is_some_and(|v| matches!(v, Value::Null) || v.as_str() == Some(""));
    if aliases.len() == 1 && !hid_empty {
        return None;
    }
    let hids: Vec<Option<Value>> = if hid_empty { vec![Some(Value::Null), Some(Value::from(""))] } else { vec![None] };
    let mut out = Vec::with_capacity(aliases.len() * hids.len());
    // The query's own spelling first, so its results come first, as without sharing.
    let mut ordered = aliases;
    if let Some(e) = env
        && let Some(pos) = ordered.iter().position(|a| a.is_some_and(|a| a.eq_ignore_ascii_case(e)))
    {
        let own = ordered.remove(pos);
        ordered.insert(0, own);
    }
    for alias in &ordered {
        for hid in &hids {
            let mut q = query.clone();
            if let Some(a) = alias {
                q.insert("environment", Value::from(*a));
            }
            if let Some(h) = hid {
                q.insert("home_account_id", h.clone());
            }
            out.push(q);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_of_one_cloud() {
        assert!(same_cloud("login.windows.net", "LOGIN.microsoftonline.com"));
        assert!(same_cloud("login.chinacloudapi.cn", "login.partner.microsoftonline.cn"));
        assert!(!same_cloud("login.windows.net", "login.chinacloudapi.cn"));
        assert!(same_cloud("adfs.contoso.com", "ADFS.contoso.com"));
        assert!(!same_cloud("adfs.contoso.com", "login.windows.net"));
        assert_eq!(cloud_aliases("example.com"), None);
    }

    #[test]
    fn scopes_intersect_as_msal_node() {
        assert!(scopes_intersect("User.Read openid profile", "user.read mail.read"));
        assert!(!scopes_intersect(
            "User.Read openid profile offline_access",
            "Mail.Read openid profile offline_access"
        ));
        assert!(scopes_intersect("openid profile", "openid"));
        assert!(!scopes_intersect("a", "b"));
    }
}

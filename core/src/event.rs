//! What `add(event)` writes: msal Python 1.39's `TokenCache.__add`, rule for rule.
//!
//! An event is the dict msal's application layer hands to the cache after a token
//! response: `client_id`, `scope`, `token_endpoint`, `environment`, `grant_type`,
//! `response`, `data` and a few flags. Unlike msal, every check runs before the first
//! write, so a bad event changes nothing.

use std::borrow::Cow;
use std::sync::Arc;

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::document::Filing;
use crate::entry::{Entry, EntryBuilder};
use crate::error::{Error, ErrorKind, Result};
use crate::json::{self, Map, MapRef, ValueRef};
use crate::schema::{CredentialType, authority_type, field};

fn invalid(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidEvent, msg)
}

/// Data fields that never feed the extended cache key (msal's
/// `_EXT_CACHE_KEY_EXCLUDED_FIELDS`).
const EXT_CACHE_KEY_EXCLUDED: &[&str] = &[
    "client_id",
    "grant_type",
    "scope",
    "claims",
    "username",
    "password",
    "refresh_token",
    "code",
    "redirect_uri",
    "code_verifier",
    "device_code",
    "assertion",
    "requested_token_use",
    "client_assertion",
    "client_assertion_type",
    "client_secret",
    "token_type",
    "req_cnf",
    "key_id",
    "user_federated_identity_credential",
    "user_id",
    "client_info",
];

const ACCOUNT_ESTABLISHING_GRANTS: &[&str] =
    &["broker", "authorization_code", "password", "urn:ietf:params:oauth:grant-type:device_code", "user_fic"];

const CIAM_SUFFIX: &str = ".ciamlogin.com";

/// msal's `_compute_ext_cache_key(data)`: a netstring of the extra request
/// parameters, SHA-256, base64url without padding, lower-cased. Empty when none.
pub fn ext_cache_key(data: &Map) -> String {
    ext_cache_key_of(&MapRef::from(data))
}

fn ext_cache_key_of(data: &MapRef<'_>) -> String {
    let mut parts: Vec<(&str, String)> = data
        .iter()
        .filter(|(k, v)| !EXT_CACHE_KEY_EXCLUDED.contains(k) && v.is_truthy())
        .map(|(k, v)| (k, v.to_python_str()))
        .collect();
    if parts.is_empty() {
        return String::new();
    }
    parts.sort_by(|a, b| a.0.cmp(b.0));
    let mut s = String::new();
    for (k, v) in parts {
        s.push_str(&format!("{}:{}{}:{}", k.len(), k, v.len(), v));
    }
    let digest = Sha256::digest(s.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest).to_lowercase()
}

/// msal's `authority.canonicalize(token_endpoint)`: the lower-cased host and the
/// first path segment (the tenant).
pub(crate) fn canonicalize(url: &str) -> Result<(Cow<'_, str>, Cow<'_, str>)> {
    let bad = || invalid("token_endpoint must be an https URL with a host name and at least one path segment");
    // Byte by byte: every character looked for is ASCII, so each split is on a char
    // boundary.
    let b = url.as_bytes();
    let colon = b.iter().position(|&c| c == b':').ok_or_else(bad)?;
    if !b[colon..].starts_with(b"://") || !url[..colon].eq_ignore_ascii_case("https") {
        return Err(bad());
    }
    let rest = &url[colon + 3..];
    let r = rest.as_bytes();
    let netloc_end = r.iter().position(|&c| matches!(c, b'/' | b'?' | b'#')).unwrap_or(r.len());
    let netloc = &rest[..netloc_end];
    let after = &rest[netloc_end..];
    let path = &after[..after.bytes().position(|c| matches!(c, b'?' | b'#')).unwrap_or(after.len())];
    let host_port = netloc.rsplit_once('@').map_or(netloc, |(_, h)| h);
    let host = if let Some(stripped) = host_port.strip_prefix('[') {
        stripped.split_once(']').map_or(stripped, |(h, _)| h)
    } else {
        host_port.split_once(':').map_or(host_port, |(h, _)| h)
    };
    if host.is_empty() {
        return Err(bad());
    }
    let host: Cow<'_, str> = if host.bytes().all(|b| b.is_ascii() && !b.is_ascii_uppercase()) {
        host.into()
    } else {
        host.to_lowercase().into()
    };
    let first = path.split('/').nth(1).filter(|s| !s.is_empty());
    if let Some(sub) = host.strip_suffix(CIAM_SUFFIX) {
        let tenant = first.map_or_else(|| format!("{sub}.onmicrosoft.com").into(), Cow::Borrowed);
        return Ok((host, tenant));
    }
    match first {
        Some(t) => Ok((host, t.into())),
        None => Err(bad()),
    }
}

/// msal's `decode_part`: lenient base64url (padding optional, stray characters
/// skipped), then UTF-8.
fn decode_part(raw: &str, what: &str) -> Result<String> {
    // What servers send (base64url without padding) decodes in one vectorised pass;
    // the loop below takes everything msal also takes.
    let bytes = match base64_simd::URL_SAFE_NO_PAD.decode_to_vec(raw) {
        Ok(bytes) => bytes,
        Err(_) => decode_lenient(raw).ok_or_else(|| invalid(format!("{what} is not valid base64url")))?,
    };
    String::from_utf8(bytes).map_err(|_| invalid(format!("{what} is not UTF-8 after base64url decoding")))
}

/// Python's `base64.urlsafe_b64decode` after msal pads the input: both alphabets,
/// padding optional and ending the input, anything else skipped.
fn decode_lenient(raw: &str) -> Option<Vec<u8>> {
    let mut sextets = Vec::with_capacity(raw.len());
    for b in raw.bytes() {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            b'=' => break,
            _ => continue,
        };
        sextets.push(v);
    }
    if sextets.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(sextets.len() * 3 / 4);
    for chunk in sextets.chunks(4) {
        let mut acc = 0u32;
        for (i, s) in chunk.iter().enumerate() {
            acc |= u32::from(*s) << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

/// The JSON text an `id_token`'s payload or a `client_info` holds.
fn decoded_json(raw: &ValueRef<'_>, what: &str) -> Result<String> {
    let s = raw.as_str().ok_or_else(|| invalid(format!("{what} must be a string")))?;
    let part = match what {
        "id_token" => s.split('.').nth(1).ok_or_else(|| invalid("id_token is not a JWT (no payload part)"))?,
        _ => s,
    };
    decode_part(part, what)
}

/// The members `names` of that text's object, borrowing their strings.
fn json_members<'t, const N: usize>(text: &'t str, what: &str, names: [&str; N]) -> Result<json::Picked<'t, N>> {
    match json::pick(text, names) {
        Ok(Some(picked)) => Ok(picked),
        Ok(None) => Err(invalid(format!("{what} does not hold a JSON object"))),
        Err(_) => Err(invalid(format!("{what} does not hold valid JSON"))),
    }
}

/// The id_token claims an event's entries use: whether there are any, then `sub`,
/// `oid`, `preferred_username` and `upn`.
const CLAIMS_USED: [&str; 4] = ["sub", "oid", "preferred_username", "upn"];

fn object_field<'e, 'a>(event: &'e MapRef<'a>, name: &str) -> Result<Option<&'e MapRef<'a>>> {
    match event.get(name) {
        None => Ok(None),
        Some(ValueRef::Object(m)) => Ok(Some(m)),
        Some(_) => Err(invalid(format!("{name} must be an object"))),
    }
}

/// `"{}".format(v)` for a key part: `x or ""`, strings as they are.
fn key_str<'v>(v: &'v ValueRef<'_>) -> Result<&'v str> {
    if !v.is_truthy() {
        return Ok("");
    }
    v.as_str().ok_or_else(|| invalid("client_id, environment and realm must be strings"))
}

fn add_seconds(now: i64, secs: i64) -> Result<i64> {
    now.checked_add(secs).ok_or_else(|| invalid("token lifetime out of range"))
}

fn python_int(v: Option<&ValueRef<'_>>, what: &str) -> Result<i64> {
    v.and_then(ValueRef::to_python_int).ok_or_else(|| invalid(format!("{what} is not an integer")))
}

/// What one event writes: at most five entries (access token, account, ID token,
/// refresh token, app metadata), each with its key and, but for app metadata from
/// the memo, what its builder said of it.
pub(crate) type EventEntries = smallvec::SmallVec<[(CredentialType, EventKey, Entry, Option<Filing>); 5]>;

/// An entry's (decoded) key: made for this event, or the app metadata's, shared
/// with the memo of the last one made (see [`AppMetadataMemo`]).
pub(crate) enum EventKey {
    Made(String),
    Shared(Arc<str>),
}

impl std::ops::Deref for EventKey {
    type Target = str;
    fn deref(&self) -> &str {
        match self {
            EventKey::Made(s) => s,
            EventKey::Shared(s) => s,
        }
    }
}

/// The app metadata entry (and key) last built on this thread, with what it was
/// built from. Every event of an app carries the same client id and environment, so
/// the entry is built once and then shared: the document already holds that very
/// entry, and finds it unchanged at a pointer comparison.
struct AppMetadataMemo {
    client_id: String,
    environment: String,
    family_id: Option<String>,
    key: Arc<str>,
    entry: Entry,
}

thread_local! {
    static APP_METADATA: std::cell::RefCell<Option<AppMetadataMemo>> = const { std::cell::RefCell::new(None) };
}

/// The app metadata of an event with these fields, from the memo when it was
/// built from equal strings (other values are built each time).
fn app_metadata(
    b: &mut EntryBuilder,
    client_id: &ValueRef<'_>,
    environment: &ValueRef<'_>,
    family_id: Option<&ValueRef<'_>>,
) -> Result<(EventKey, Entry)> {
    let strings = match (client_id, environment, family_id) {
        (ValueRef::Str(c), ValueRef::Str(e), None) => Some((c.as_ref(), e.as_ref(), None)),
        (ValueRef::Str(c), ValueRef::Str(e), Some(ValueRef::Str(f))) => {
            Some((c.as_ref(), e.as_ref(), Some(f.as_ref())))
        }
        _ => None,
    };
    if let Some((c, e, f)) = strings {
        let hit = APP_METADATA.with_borrow(|memo| {
            memo.as_ref()
                .filter(|m| m.client_id == c && m.environment == e && m.family_id.as_deref() == f)
                .map(|m| (EventKey::Shared(m.key.clone()), m.entry.clone()))
        });
        if let Some(hit) = hit {
            return Ok(hit);
        }
    }
    b.put_value_ref(field::CLIENT_ID, client_id);
    b.put_value_ref(field::ENVIRONMENT, environment);
    if let Some(foci) = family_id {
        b.put_value_ref(field::FAMILY_ID, foci);
    }
    let mut key = String::with_capacity(64);
    key.push_str("appmetadata-");
    push_format_or_empty(&mut key, environment);
    key.push('-');
    push_format_or_empty(&mut key, client_id);
    let entry = b.build_and_reset()?;
    let Some((c, e, f)) = strings else { return Ok((EventKey::Made(key), entry)) };
    let key: Arc<str> = key.into();
    APP_METADATA.set(Some(AppMetadataMemo {
        client_id: c.to_owned(),
        environment: e.to_owned(),
        family_id: f.map(str::to_owned),
        key: key.clone(),
        entry: entry.clone(),
    }));
    Ok((EventKey::Shared(key), entry))
}

/// The entries one event writes, in msal's order, each with its (decoded) key.
pub(crate) fn entries_for(event: &MapRef<'_>, now: i64) -> Result<EventEntries> {
    thread_local! {
        // Kept between events: its buffer grows to the largest token once.
        static BUILDER: std::cell::RefCell<EntryBuilder> = std::cell::RefCell::new(EntryBuilder::with_capacity(14, 4096));
    }
    BUILDER.with_borrow_mut(|b| {
        b.reset();
        let out = entries_with(event, now, b);
        // A freak event (a megabyte "token") must not pin its buffer to the thread.
        if b.capacity() > 1 << 16 {
            *b = EntryBuilder::with_capacity(14, 4096);
        }
        out
    })
}

fn entries_with(event: &MapRef<'_>, now: i64, b: &mut EntryBuilder) -> Result<EventEntries> {
    let endpoint = match event.get("token_endpoint") {
        Some(ep) => Some(canonicalize(ep.as_str().ok_or_else(|| invalid("token_endpoint must be a string"))?)?),
        None => None,
    };
    let (mut environment, realm) = match &endpoint {
        Some((host, tenant)) => (ValueRef::Str(host.as_ref().into()), ValueRef::Str(tenant.as_ref().into())),
        None => (ValueRef::Null, ValueRef::Null),
    };
    if let Some(env) = event.get("environment") {
        environment = env.clone();
    }
    let empty = MapRef::new();
    let response = object_field(event, "response")?.unwrap_or(&empty);
    let data = object_field(event, "data")?.unwrap_or(&empty);
    let null = ValueRef::Null;
    let access_token = response.get("access_token").unwrap_or(&null);
    let refresh_token = response.get("refresh_token").unwrap_or(&null);
    let id_token = response.get("id_token").unwrap_or(&null);
    let claims_text: String;
    let claims: json::Picked<'_, 4> = match response.get("id_token_claims") {
        Some(c) if c.is_truthy() => match c {
            ValueRef::Object(m) => json::Picked { any: !m.is_empty(), values: CLAIMS_USED.map(|n| m.get(n).cloned()) },
            _ => return Err(invalid("id_token_claims must be an object")),
        },
        _ if id_token.is_truthy() => {
            claims_text = decoded_json(id_token, "id_token")?;
            json_members(&claims_text, "id_token", CLAIMS_USED)?
        }
        _ => json::Picked { any: false, values: [const { None }; 4] },
    };
    let [sub, oid, preferred_username, upn] = &claims.values;

    // __parse_account
    let client_info_hid: String;
    let mut home_account_id = ValueRef::Null;
    let mut has_account = false;
    if let Some(ci) = response.get("client_info") {
        let text = decoded_json(ci, "client_info")?;
        if let [Some(uid), Some(utid)] = json_members(&text, "client_info", ["uid", "utid"])?.values {
            // "{}.{}".format(uid, utid)
            let mut hid = String::with_capacity(80);
            push_python_str(&mut hid, &uid);
            hid.push('.');
            push_python_str(&mut hid, &utid);
            client_info_hid = hid;
            home_account_id = ValueRef::Str(client_info_hid.as_str().into());
            has_account = true;
        }
    }
    if !has_account && claims.any {
        home_account_id = sub.clone().ok_or_else(|| invalid("id_token has no \"sub\" claim"))?;
        has_account = true;
    }

    let mut scopes: smallvec::SmallVec<[&str; 8]> = match event.get("scope") {
        Some(v) if v.is_truthy() => match v {
            ValueRef::Array(items) => items
                .iter()
                .map(|s| s.as_str().ok_or_else(|| invalid("scope must be a list of strings")))
                .collect::<Result<_>>()?,
            _ => return Err(invalid("scope must be a list of strings")),
        },
        _ => smallvec::SmallVec::new(),
    };
    scopes.sort_unstable();
    let target = scopes.join(" ");

    let client_id = event.get("client_id").unwrap_or(&null);
    let base = crate::schema::KeyParts {
        home_account_id: key_str(&home_account_id)?,
        environment: key_str(&environment)?,
        client_id: key_str(client_id)?,
        realm: key_str(&realm)?,
        target: &target,
        ext_cache_key: "",
    };
    let parts = |ext: &'static str| base.with_ext(ext);
    let mut out = EventEntries::new();

    if access_token.is_truthy() {
        let default_expires_in = match response.get("expires_on") {
            Some(v) if v.is_truthy() => {
                python_int(Some(v), "expires_on")?.checked_sub(now).ok_or_else(|| invalid("expires_on out of range"))?
            }
            _ => 600,
        };
        let expires_in = match response.get("expires_in") {
            Some(v) => python_int(Some(v), "expires_in")?,
            None => default_expires_in,
        };
        let ext_expires_in = match response.get("ext_expires_in") {
            Some(v) => python_int(Some(v), "ext_expires_in")?,
            None => expires_in,
        };
        b.put_str(field::CREDENTIAL_TYPE, "AccessToken");
        b.put_value_ref(field::SECRET, access_token);
        b.put_value_ref(field::HOME_ACCOUNT_ID, &home_account_id);
        b.put_value_ref(field::ENVIRONMENT, &environment);
        b.put_value_ref(field::CLIENT_ID, client_id);
        b.put_str(field::TARGET, &target);
        b.put_value_ref(field::REALM, &realm);
        match response.get("token_type") {
            Some(t) => b.put_value_ref(field::TOKEN_TYPE, t),
            None => b.put_str(field::TOKEN_TYPE, "Bearer"),
        }
        b.put_int_str(field::CACHED_AT, now);
        b.put_int_str(field::EXPIRES_ON, add_seconds(now, expires_in)?);
        b.put_int_str(field::EXTENDED_EXPIRES_ON, add_seconds(now, ext_expires_in)?);
        if let Some(kid) = data.get("key_id") {
            b.put_value_ref(field::KEY_ID, kid);
        }
        let ext = ext_cache_key_of(data);
        if !ext.is_empty() {
            b.put_str(field::EXT_CACHE_KEY, &ext);
        }
        if let Some(refresh_in) = response.get("refresh_in") {
            match refresh_in {
                ValueRef::Int(_) => {
                    b.put_int_str(field::REFRESH_ON, add_seconds(now, python_int(Some(refresh_in), "refresh_in")?)?)
                }
                ValueRef::Number(n) if n.is_integer() => {
                    b.put_int_str(field::REFRESH_ON, add_seconds(now, python_int(Some(refresh_in), "refresh_in")?)?)
                }
                ValueRef::Number(n) => {
                    let f: f64 = n.as_str().parse().map_err(|_| invalid("refresh_in is not a number"))?;
                    b.put_str(field::REFRESH_ON, json::Number::from_f64(now as f64 + f).as_str());
                }
                ValueRef::Bool(t) => b.put_int_str(field::REFRESH_ON, add_seconds(now, i64::from(*t))?),
                _ => return Err(invalid("refresh_in must be a number")),
            }
        }
        let key = crate::schema::cache_key(CredentialType::AccessToken, &base.with_ext(&ext));
        out.push(built(b, CredentialType::AccessToken, key)?);
    }

    if has_account && !event.get("skip_account_creation").is_some_and(ValueRef::is_truthy) {
        let local_account_id = match event.get("_account_id") {
            Some(v) => v,
            None => oid.as_ref().or(sub.as_ref()).unwrap_or(&null),
        };
        let from_claims = preferred_username.as_ref().or(upn.as_ref());
        let username = [from_claims, data.get("username"), event.get("username")]
            .into_iter()
            .flatten()
            .find(|v| v.is_truthy())
            .unwrap_or(&ValueRef::Str(Cow::Borrowed("")));
        b.put_value_ref(field::HOME_ACCOUNT_ID, &home_account_id);
        b.put_value_ref(field::ENVIRONMENT, &environment);
        b.put_value_ref(field::REALM, &realm);
        b.put_value_ref(field::LOCAL_ACCOUNT_ID, local_account_id);
        b.put_value_ref(field::USERNAME, username);
        match event.get("authority_type") {
            Some(v) => b.put_value_ref(field::AUTHORITY_TYPE, v),
            None if realm.as_str() == Some("adfs") => b.put_str(field::AUTHORITY_TYPE, authority_type::ADFS),
            None => b.put_str(field::AUTHORITY_TYPE, authority_type::MSSTS),
        }
        if let Some(grant) = event.get("grant_type").and_then(ValueRef::as_str)
            && ACCOUNT_ESTABLISHING_GRANTS.contains(&grant)
        {
            b.put_str(field::ACCOUNT_SOURCE, grant);
        }
        let key = crate::schema::cache_key(CredentialType::Account, &parts(""));
        out.push(built(b, CredentialType::Account, key)?);
    }

    if id_token.is_truthy() {
        b.put_str(field::CREDENTIAL_TYPE, "IdToken");
        b.put_value_ref(field::SECRET, id_token);
        b.put_value_ref(field::HOME_ACCOUNT_ID, &home_account_id);
        b.put_value_ref(field::ENVIRONMENT, &environment);
        b.put_value_ref(field::REALM, &realm);
        b.put_value_ref(field::CLIENT_ID, client_id);
        let key = crate::schema::cache_key(CredentialType::IdToken, &parts(""));
        out.push(built(b, CredentialType::IdToken, key)?);
    }

    if refresh_token.is_truthy() {
        b.put_str(field::CREDENTIAL_TYPE, "RefreshToken");
        b.put_value_ref(field::SECRET, refresh_token);
        b.put_value_ref(field::HOME_ACCOUNT_ID, &home_account_id);
        b.put_value_ref(field::ENVIRONMENT, &environment);
        b.put_value_ref(field::CLIENT_ID, client_id);
        b.put_str(field::TARGET, &target);
        b.put_int_str(field::LAST_MODIFICATION_TIME, now);
        if let Some(foci) = response.get("foci") {
            b.put_value_ref(field::FAMILY_ID, foci);
        }
        let key = crate::schema::cache_key(CredentialType::RefreshToken, &parts(""));
        out.push(built(b, CredentialType::RefreshToken, key)?);
    }

    let (key, entry) = app_metadata(b, client_id, &environment, response.get("foci"))?;
    out.push((CredentialType::AppMetadata, key, entry, None));
    Ok(out)
}

/// The entry `b` holds, under `key`, with what filing it takes (read before the
/// builder is emptied).
fn built(
    b: &mut EntryBuilder,
    ct: CredentialType,
    key: String,
) -> Result<(CredentialType, EventKey, Entry, Option<Filing>)> {
    let filing = Filing::of(b);
    Ok((ct, EventKey::Made(key), b.build_and_reset()?, Some(filing)))
}

/// `"{}".format(x or "")`, appended.
fn push_format_or_empty(out: &mut String, v: &ValueRef<'_>) {
    if v.is_truthy() {
        push_python_str(out, v);
    }
}

/// `"{}".format(x)`, appended.
fn push_python_str(out: &mut String, v: &ValueRef<'_>) {
    match v {
        ValueRef::Str(s) => out.push_str(s),
        other => out.push_str(&other.to_python_str()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::Value;

    #[test]
    fn ext_cache_key_golden_values() {
        // Golden values from msal Python's tests.
        let m: Map = [("key1".to_owned(), Value::from("value1")), ("key2".to_owned(), Value::from("value2"))]
            .into_iter()
            .collect();
        assert_eq!(ext_cache_key(&m), "latlwkpewb_a0rcsmjvkecqt0_huumkw4sflzociike");
        let m: Map = [("fmi_path".to_owned(), Value::from("agent-app-id"))].into_iter().collect();
        assert_eq!(ext_cache_key(&m), "a0ry_zl4gccsdp7gnw927x8s0mrmnodv6tyilt0u07m");
        let m: Map = [("scope".to_owned(), Value::from("x")), ("claims".to_owned(), Value::Null)].into_iter().collect();
        assert_eq!(ext_cache_key(&m), "");
    }

    #[test]
    fn the_fast_decoder_agrees_with_the_lenient_one() {
        use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
        let mut inputs: Vec<String> =
            vec!["".into(), "QQ".into(), "QR".into(), "QQ=".into(), "QQ==x".into(), "Q".into()];
        for len in 0..40usize {
            let raw: Vec<u8> = (0..len).map(|i| ((i * 37 + len * 11) % 94 + 32) as u8).collect();
            for text in [URL_SAFE_NO_PAD.encode(&raw), URL_SAFE.encode(&raw), STANDARD.encode(&raw)] {
                inputs.push(format!("{text}.."));
                inputs.push(format!(" {text}"));
                inputs.push(text);
            }
        }
        for raw in &inputs {
            let lenient = decode_lenient(raw).map(|b| String::from_utf8_lossy(&b).into_owned());
            let got = decode_part(raw, "x").map_err(|_| ());
            match (&lenient, &got) {
                (Some(l), Ok(g)) => assert_eq!(l, g, "{raw:?}"),
                (None, Err(())) => {}
                // Not UTF-8: both reject it or the lenient path decoded garbage.
                (Some(_), Err(())) => assert!(std::str::from_utf8(&decode_lenient(raw).unwrap()).is_err(), "{raw:?}"),
                (None, Ok(_)) => panic!("the fast path took what msal rejects: {raw:?}"),
            }
        }
    }

    #[test]
    fn app_metadata_from_the_memo_is_what_the_event_says() {
        // The memo of the last app metadata must never answer for another client,
        // environment or family (or lack of one).
        let event = |client: &str, env: &str, foci: Option<&str>| {
            let foci = foci.map_or(String::new(), |f| format!(r#","foci":"{f}""#));
            format!(
                r#"{{"client_id":"{client}","environment":"{env}","scope":["s"],
                "token_endpoint":"https://{env}/t/oauth2/v2.0/token",
                "response":{{"access_token":"a","expires_in":60{foci}}}}}"#
            )
        };
        let cases = [
            ("a", "login.example.com", None),
            ("a", "login.example.com", None),
            ("a", "login.example.com", Some("1")),
            ("a", "login.example.com", Some("")),
            ("b", "login.example.com", Some("")),
            ("b", "other.example.com", Some("")),
            ("a", "login.example.com", None),
        ];
        for (client, env, foci) in cases {
            let text = event(client, env, foci);
            let Ok(ValueRef::Object(ev)) = json::parse_borrowed(&text) else { panic!() };
            let entries = entries_for(&ev, 0).unwrap();
            let (ct, key, app, _) = entries.last().unwrap();
            assert_eq!(*ct, CredentialType::AppMetadata);
            assert_eq!(&**key, format!("appmetadata-{env}-{client}"));
            let family = foci.map_or(String::new(), |f| format!(r#","family_id":"{f}""#));
            assert_eq!(app.to_json(), format!(r#"{{"client_id":"{client}","environment":"{env}"{family}}}"#));
        }
    }

    #[test]
    fn what_filing_takes_is_read_from_the_builder_as_the_entry_holds_it() {
        // `add` files an entry with what its builder said of it (user posting, expiry,
        // length as text) instead of reading the entry again: each event shape below
        // must say what the built entry holds. A user, none (`null`, `""`), one whose
        // id is stored escaped, a token type, `expires_on` and `refresh_in`, FOCI.
        let events = [
            r#"{"client_id":"c","scope":["s2","s1"],"token_endpoint":"https://login.example.com/t/oauth2/v2.0/token",
               "grant_type":"authorization_code","response":{"access_token":"a","refresh_token":"r",
               "id_token":"h.eyJzdWIiOiJzIiwib2lkIjoibyIsInByZWZlcnJlZF91c2VybmFtZSI6InUifQ.s",
               "client_info":"eyJ1aWQiOiJ1IiwidXRpZCI6InQifQ","expires_in":3600,"foci":"1"}}"#,
            r#"{"client_id":"c","scope":["s"],"token_endpoint":"https://login.example.com/t/oauth2/v2.0/token",
               "response":{"access_token":"a","expires_on":4000,"refresh_in":1800,"token_type":"pop"}}"#,
            r#"{"client_id":"c","scope":["s"],"token_endpoint":"https://login.example.com/t/oauth2/v2.0/token",
               "response":{"access_token":"a","expires_in":60,"id_token_claims":{"sub":"\u00e9\"q"},
               "refresh_token":"r"}}"#,
            r#"{"client_id":"c","scope":["s"],"token_endpoint":"https://login.example.com/t/oauth2/v2.0/token",
               "response":{"access_token":"a","expires_in":60,"id_token_claims":{"sub":""},"refresh_token":"r"}}"#,
        ];
        let mut seen_user = [false; 2];
        for text in events {
            let Ok(ValueRef::Object(ev)) = json::parse_borrowed(text) else { panic!("{text}") };
            for (ct, key, entry, filing) in entries_for(&ev, 1000).unwrap() {
                let Some(filing) = filing else {
                    assert_eq!(ct, CredentialType::AppMetadata, "only app metadata comes from the memo");
                    continue;
                };
                assert_eq!(filing, Filing::of_entry(&entry), "{ct:?} {}", &*key);
                seen_user[usize::from(filing.has_user())] = true;
            }
        }
        assert_eq!(seen_user, [true, true]);
    }

    #[test]
    fn an_event_that_fails_half_built_leaves_nothing_for_the_next() {
        // The builder is kept per thread: an event refused after some of its fields
        // were placed (refresh_in comes last) must not leave them to the next one.
        let parse = |text: &'static str| match json::parse_borrowed(text) {
            Ok(ValueRef::Object(m)) => m,
            _ => panic!(),
        };
        let good = parse(
            r#"{"client_id":"c","scope":["s"],"token_endpoint":"https://login.example.com/t/token",
            "response":{"access_token":"a","expires_in":60}}"#,
        );
        let bad = parse(
            r#"{"client_id":"c","scope":["s"],"token_endpoint":"https://login.example.com/t/token",
            "response":{"access_token":"a","expires_in":60,"refresh_in":"soon"}}"#,
        );
        let json_of = |entries: EventEntries| {
            entries.iter().map(|(_, k, e, _)| format!("{}={}", &**k, e.to_json())).collect::<Vec<_>>()
        };
        let alone = json_of(entries_for(&good, 0).unwrap());
        assert!(entries_for(&bad, 0).is_err());
        assert_eq!(json_of(entries_for(&good, 0).unwrap()), alone);
    }

    #[test]
    fn canonicalize_like_msal() {
        assert_eq!(
            canonicalize("https://login.microsoftonline.com/common/oauth2/v2.0/token").unwrap(),
            ("login.microsoftonline.com".into(), "common".into())
        );
        assert_eq!(canonicalize("https://Login.Example.COM:443/Tenant").unwrap().0, "login.example.com");
        assert_eq!(canonicalize("https://contoso.ciamlogin.com/").unwrap().1, "contoso.onmicrosoft.com");
        assert!(canonicalize("http://login.microsoftonline.com/common").is_err());
        assert!(canonicalize("https://login.microsoftonline.com").is_err());
        assert!(canonicalize("https:///common").is_err());
    }
}

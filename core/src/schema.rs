//! The unified cache schema: section names, field names and the cache-key rules of
//! MSAL Python 1.39.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, ErrorKind};

/// The five sections of a unified token cache. The string form is both the JSON
/// section name and the `credential_type` field value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CredentialType {
    /// `"AccessToken"`.
    AccessToken,
    /// `"RefreshToken"`.
    RefreshToken,
    /// `"IdToken"`.
    IdToken,
    /// `"Account"` (not a credential, but a section all the same).
    Account,
    /// `"AppMetadata"`.
    AppMetadata,
}

impl CredentialType {
    /// All five, in a fixed order.
    pub const ALL: [CredentialType; 5] = [
        CredentialType::AccessToken,
        CredentialType::RefreshToken,
        CredentialType::IdToken,
        CredentialType::Account,
        CredentialType::AppMetadata,
    ];

    /// The section name, e.g. `"AccessToken"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            CredentialType::AccessToken => "AccessToken",
            CredentialType::RefreshToken => "RefreshToken",
            CredentialType::IdToken => "IdToken",
            CredentialType::Account => "Account",
            CredentialType::AppMetadata => "AppMetadata",
        }
    }

    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for CredentialType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CredentialType {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        CredentialType::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| Error::new(ErrorKind::InvalidArgument, format!("unknown credential type {s:?}")))
    }
}

/// `TokenCache.AuthorityType` values.
pub mod authority_type {
    /// AD FS.
    pub const ADFS: &str = "ADFS";
    /// Microsoft Entra ID (AAD v2, also MSA).
    pub const MSSTS: &str = "MSSTS";
}

/// Field names that entries carry often enough to be stored as a one-byte id instead
/// of their text. Order is the id; append only.
pub const KNOWN_FIELDS: &[&str] = &[
    "credential_type",
    "secret",
    "home_account_id",
    "environment",
    "client_id",
    "target",
    "realm",
    "token_type",
    "cached_at",
    "expires_on",
    "extended_expires_on",
    "key_id",
    "ext_cache_key",
    "refresh_on",
    "local_account_id",
    "username",
    "authority_type",
    "account_source",
    "last_modification_time",
    "family_id",
    "user_assertion_hash",
    "client_info",
    "name",
    "given_name",
    "family_name",
    "middle_name",
    "alternative_account_id",
    "ext_expires_on",
    "kid",
    "keyId",
    "tokenType",
    "userAssertionHash",
    "requestedClaims",
    "requestedClaimsHash",
    "tenantProfiles",
    "wam_account_ids",
    "ext",
    "persisted_cache_parameters",
];

/// Ids of the fields the code refers to by name.
pub(crate) mod field {
    pub const CREDENTIAL_TYPE: u8 = 0;
    pub const SECRET: u8 = 1;
    pub const HOME_ACCOUNT_ID: u8 = 2;
    pub const ENVIRONMENT: u8 = 3;
    pub const CLIENT_ID: u8 = 4;
    pub const TARGET: u8 = 5;
    pub const REALM: u8 = 6;
    pub const TOKEN_TYPE: u8 = 7;
    pub const CACHED_AT: u8 = 8;
    pub const EXPIRES_ON: u8 = 9;
    pub const EXTENDED_EXPIRES_ON: u8 = 10;
    pub const KEY_ID: u8 = 11;
    pub const EXT_CACHE_KEY: u8 = 12;
    pub const REFRESH_ON: u8 = 13;
    pub const LOCAL_ACCOUNT_ID: u8 = 14;
    pub const USERNAME: u8 = 15;
    pub const AUTHORITY_TYPE: u8 = 16;
    pub const ACCOUNT_SOURCE: u8 = 17;
    pub const LAST_MODIFICATION_TIME: u8 = 18;
    pub const FAMILY_ID: u8 = 19;
    pub const USER_ASSERTION_HASH: u8 = 20;
    /// msal-node's name for it.
    pub const USER_ASSERTION_HASH_CAMEL: u8 = 31;
}

/// The id of a known field name.
#[inline]
pub(crate) fn known_field_id(name: &str) -> Option<u8> {
    // A `match` on strings compiles to a length switch and a few compares.
    Some(match name {
        "credential_type" => 0,
        "secret" => 1,
        "home_account_id" => 2,
        "environment" => 3,
        "client_id" => 4,
        "target" => 5,
        "realm" => 6,
        "token_type" => 7,
        "cached_at" => 8,
        "expires_on" => 9,
        "extended_expires_on" => 10,
        "key_id" => 11,
        "ext_cache_key" => 12,
        "refresh_on" => 13,
        "local_account_id" => 14,
        "username" => 15,
        "authority_type" => 16,
        "account_source" => 17,
        "last_modification_time" => 18,
        "family_id" => 19,
        "user_assertion_hash" => 20,
        "client_info" => 21,
        "name" => 22,
        "given_name" => 23,
        "family_name" => 24,
        "middle_name" => 25,
        "alternative_account_id" => 26,
        "ext_expires_on" => 27,
        "kid" => 28,
        "keyId" => 29,
        "tokenType" => 30,
        "userAssertionHash" => 31,
        "requestedClaims" => 32,
        "requestedClaimsHash" => 33,
        "tenantProfiles" => 34,
        "wam_account_ids" => 35,
        "ext" => 36,
        "persisted_cache_parameters" => 37,
        _ => return None,
    })
}

/// Python's `.lower()`, without allocating when the text has no upper case.
pub(crate) fn lower_into(out: &mut String, s: &str) {
    if s.is_ascii() {
        // Copied, then lowered in place: both run over whole words, not per char.
        let start = out.len();
        out.push_str(s);
        out[start..].make_ascii_lowercase();
    } else {
        out.push_str(&s.to_lowercase());
    }
}

/// The parts of a cache key, already reduced Python-style (`x or ""`).
#[derive(Default, Clone, Copy)]
pub(crate) struct KeyParts<'a> {
    pub home_account_id: &'a str,
    pub environment: &'a str,
    pub client_id: &'a str,
    pub realm: &'a str,
    pub target: &'a str,
    pub ext_cache_key: &'a str,
}

impl<'a> KeyParts<'a> {
    pub(crate) fn with_ext(self, ext_cache_key: &'a str) -> Self {
        KeyParts { ext_cache_key, ..self }
    }
}

/// The key MSAL Python 1.39 files an entry of this type under (decoded, not escaped).
pub(crate) fn cache_key(ct: CredentialType, p: &KeyParts<'_>) -> String {
    let mut k = String::with_capacity(
        p.home_account_id.len() + p.environment.len() + p.client_id.len() + p.realm.len() + p.target.len() + 24,
    );
    cache_key_into(&mut k, ct, p);
    k
}

/// [`cache_key`], appended to `k`.
pub(crate) fn cache_key_into(k: &mut String, ct: CredentialType, p: &KeyParts<'_>) {
    if ct == CredentialType::AppMetadata {
        // msal does not lower-case this one.
        k.push_str("appmetadata-");
        k.push_str(p.environment);
        k.push('-');
        k.push_str(p.client_id);
        return;
    }
    // What keys are in practice: ASCII, lower-cased in one pass once joined.
    let start = k.len();
    key_parts_into(k, ct, p, |k, s| k.push_str(s));
    if k[start..].is_ascii() {
        k[start..].make_ascii_lowercase();
    } else {
        k.truncate(start);
        key_parts_into(k, ct, p, lower_into);
    }
}

/// The parts of a key joined by msal's separators, each passed through `part`.
fn key_parts_into(k: &mut String, ct: CredentialType, p: &KeyParts<'_>, part: impl Fn(&mut String, &str)) {
    match ct {
        CredentialType::AppMetadata => unreachable!("app metadata keys are not lower-cased"),
        CredentialType::Account => {
            part(k, p.home_account_id);
            k.push('-');
            part(k, p.environment);
            k.push('-');
            part(k, p.realm);
        }
        CredentialType::AccessToken => {
            part(k, p.home_account_id);
            k.push('-');
            part(k, p.environment);
            k.push_str(if p.ext_cache_key.is_empty() { "-accesstoken-" } else { "-atext-" });
            part(k, p.client_id);
            k.push('-');
            part(k, p.realm);
            k.push('-');
            part(k, p.target);
            if !p.ext_cache_key.is_empty() {
                k.push('-');
                part(k, p.ext_cache_key);
            }
        }
        CredentialType::RefreshToken => {
            part(k, p.home_account_id);
            k.push('-');
            part(k, p.environment);
            k.push_str("-refreshtoken-");
            part(k, p.client_id);
            k.push_str("--");
            part(k, p.target);
        }
        CredentialType::IdToken => {
            part(k, p.home_account_id);
            k.push('-');
            part(k, p.environment);
            k.push_str("-idtoken-");
            part(k, p.client_id);
            k.push('-');
            part(k, p.realm);
            k.push('-');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_msal_python() {
        let p = KeyParts {
            home_account_id: "uid.utid",
            environment: "login.example.com",
            client_id: "my_client_id",
            realm: "contoso",
            target: "s1 s2 s3",
            ext_cache_key: "",
        };
        assert_eq!(
            cache_key(CredentialType::RefreshToken, &p),
            "uid.utid-login.example.com-refreshtoken-my_client_id--s1 s2 s3"
        );
        assert_eq!(cache_key(CredentialType::IdToken, &p), "uid.utid-login.example.com-idtoken-my_client_id-contoso-");
        assert_eq!(cache_key(CredentialType::Account, &p), "uid.utid-login.example.com-contoso");
        assert_eq!(
            cache_key(CredentialType::AccessToken, &p),
            "uid.utid-login.example.com-accesstoken-my_client_id-contoso-s1 s2 s3"
        );
        let app = KeyParts { environment: "login.example.com", client_id: "MyClient", ..Default::default() };
        assert_eq!(cache_key(CredentialType::AppMetadata, &app), "appmetadata-login.example.com-MyClient");
        assert_eq!(cache_key(CredentialType::AppMetadata, &KeyParts::default()), "appmetadata--");
        // msal lower-cases the joined key (not app metadata's), ASCII or not; in
        // Python: "-".join(["UID.Tid", "Login.Example", "idtoken", "App", "CONTOSO-Ü", ""]).lower()
        let upper = KeyParts {
            home_account_id: "UID.Tid",
            environment: "Login.Example",
            client_id: "App",
            realm: "CONTOSO-Ü",
            target: "",
            ext_cache_key: "",
        };
        assert_eq!(cache_key(CredentialType::IdToken, &upper), "uid.tid-login.example-idtoken-app-contoso-ü-");
        assert_eq!(
            cache_key(CredentialType::IdToken, &KeyParts { realm: "CONTOSO", ..upper }),
            "uid.tid-login.example-idtoken-app-contoso-"
        );
        assert_eq!(cache_key(CredentialType::AppMetadata, &upper), "appmetadata-Login.Example-App");
        for (i, name) in KNOWN_FIELDS.iter().enumerate() {
            assert_eq!(known_field_id(name), Some(i as u8));
        }
        assert_eq!(KNOWN_FIELDS[field::EXPIRES_ON as usize], "expires_on");
        assert_eq!(KNOWN_FIELDS[field::FAMILY_ID as usize], "family_id");
        assert_eq!(KNOWN_FIELDS[field::USER_ASSERTION_HASH as usize], "user_assertion_hash");
        assert_eq!(KNOWN_FIELDS[field::USERNAME as usize], "username");
        assert_eq!(KNOWN_FIELDS[field::LOCAL_ACCOUNT_ID as usize], "local_account_id");
        for (id, name) in [
            (field::CREDENTIAL_TYPE, "credential_type"),
            (field::SECRET, "secret"),
            (field::HOME_ACCOUNT_ID, "home_account_id"),
            (field::ENVIRONMENT, "environment"),
            (field::CLIENT_ID, "client_id"),
            (field::TARGET, "target"),
            (field::REALM, "realm"),
            (field::TOKEN_TYPE, "token_type"),
            (field::CACHED_AT, "cached_at"),
            (field::EXTENDED_EXPIRES_ON, "extended_expires_on"),
            (field::KEY_ID, "key_id"),
            (field::EXT_CACHE_KEY, "ext_cache_key"),
            (field::REFRESH_ON, "refresh_on"),
            (field::AUTHORITY_TYPE, "authority_type"),
            (field::ACCOUNT_SOURCE, "account_source"),
            (field::LAST_MODIFICATION_TIME, "last_modification_time"),
        ] {
            assert_eq!(KNOWN_FIELDS[id as usize], name);
        }
    }
}

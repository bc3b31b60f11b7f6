//! Partitions: which slice of the cache one request needs, as MSAL.NET and
//! Microsoft.Identity.Web cut it — one partition per user (`home_account_id`), per
//! app and tenant for app tokens (`{client_id}_{tenant}_AppTokenCache`), and per
//! incoming assertion for on-behalf-of tokens (the `user_assertion_hash`).

use std::borrow::Cow;
use std::hash::BuildHasher;

use crate::entry::{Entry, RawField};
use crate::schema::{CredentialType, field};

/// The partition an entry belongs to, or `None` for entries every partition shares
/// (app metadata, and entries with no owner).
///
/// - access and refresh tokens obtained on behalf of a user: their `user_assertion_hash`
///   (msal-node's `userAssertionHash` too);
/// - user entries: `home_account_id`;
/// - app (client credentials) access tokens: `{client_id}_{realm}_AppTokenCache`, or
///   `{client_id}_{realm}_{ext_cache_key}_AppTokenCache` when the token has an
///   extended cache key.
pub fn partition_key(ct: CredentialType, e: &Entry) -> Option<String> {
    partition_key_of(ct, e).map(Cow::into_owned)
}

/// The hash of [`partition_key`], without a copy of the key where the entry holds it.
pub(crate) fn partition_hash_of(ct: CredentialType, e: &Entry) -> Option<u64> {
    partition_key_of(ct, e).map(|k| partition_hash(&k))
}

fn partition_key_of(ct: CredentialType, e: &Entry) -> Option<Cow<'_, str>> {
    if ct == CredentialType::AppMetadata {
        return None;
    }
    // The fields it may need, in one pass over the entry (this runs on every write).
    let [mut assertion, mut assertion_camel, mut hid, mut cid, mut realm, mut ext] = [None; 6];
    for (id, raw) in e.known_fields() {
        match id {
            field::USER_ASSERTION_HASH => assertion = Some(raw),
            field::USER_ASSERTION_HASH_CAMEL => assertion_camel = Some(raw),
            field::HOME_ACCOUNT_ID => hid = Some(raw),
            field::CLIENT_ID => cid = Some(raw),
            field::REALM => realm = Some(raw),
            field::EXT_CACHE_KEY => ext = Some(raw),
            _ => {}
        }
    }
    fn text(raw: Option<RawField<'_>>) -> Option<Cow<'_, str>> {
        raw.and_then(RawField::as_str)
    }
    fn nonempty(raw: Option<RawField<'_>>) -> Option<Cow<'_, str>> {
        text(raw).filter(|s| !s.is_empty())
    }
    if matches!(ct, CredentialType::AccessToken | CredentialType::RefreshToken)
        && let Some(h) = nonempty(assertion).or_else(|| nonempty(assertion_camel))
    {
        return Some(h);
    }
    if let Some(hid) = nonempty(hid) {
        return Some(hid);
    }
    if ct == CredentialType::AccessToken {
        let cid = text(cid).unwrap_or_default();
        let realm = text(realm).unwrap_or_default();
        let ext = nonempty(ext);
        // Built by hand: `format!` costs more than the rest.
        let mut k = String::with_capacity(cid.len() + realm.len() + ext.as_ref().map_or(0, |x| x.len() + 1) + 16);
        k.push_str(&cid);
        k.push('_');
        k.push_str(&realm);
        if let Some(ext) = ext {
            k.push('_');
            k.push_str(&ext);
        }
        k.push_str("_AppTokenCache");
        return Some(Cow::Owned(k));
    }
    None
}

/// Hash of a partition key (deterministic; keys the partition index).
pub(crate) fn partition_hash(key: &str) -> u64 {
    foldhash::quality::FixedState::with_seed(0x70_61_72_74).hash_one(key)
}

const SLOT_BITS: u32 = 29;

/// A section and slot in one `u32`: the members of a partition.
pub(crate) fn pack(ct: CredentialType, slot: u32) -> u32 {
    debug_assert!(slot < 1 << SLOT_BITS);
    ((ct.index() as u32) << SLOT_BITS) | slot
}

pub(crate) fn unpack(member: u32) -> (CredentialType, u32) {
    (CredentialType::ALL[(member >> SLOT_BITS) as usize], member & ((1 << SLOT_BITS) - 1))
}

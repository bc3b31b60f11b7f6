//! Partitions: which slice of the cache one request needs, as MSAL.NET and
//! Microsoft.Identity.Web cut it — one partition per user (`home_account_id`), per
//! app and tenant for app tokens (`{client_id}_{tenant}_AppTokenCache`), and per
//! incoming assertion for on-behalf-of tokens (the `user_assertion_hash`).

use std::hash::BuildHasher;

use crate::entry::Entry;
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
    if ct == CredentialType::AppMetadata {
        return None;
    }
    if matches!(ct, CredentialType::AccessToken | CredentialType::RefreshToken)
        && let Some(h) =
            nonempty(e.str_by_id(field::USER_ASSERTION_HASH)).or_else(|| nonempty(e.get_str("userAssertionHash")))
    {
        return Some(h.into_owned());
    }
    if let Some(hid) = nonempty(e.str_by_id(field::HOME_ACCOUNT_ID)) {
        return Some(hid.into_owned());
    }
    if ct == CredentialType::AccessToken {
        let cid = e.str_by_id(field::CLIENT_ID).unwrap_or_default();
        let realm = e.str_by_id(field::REALM).unwrap_or_default();
        let ext = nonempty(e.str_by_id(field::EXT_CACHE_KEY));
        // Built by hand: this runs on every write, and `format!` costs more than the rest.
        let mut k = String::with_capacity(cid.len() + realm.len() + ext.as_ref().map_or(0, |x| x.len() + 1) + 16);
        k.push_str(&cid);
        k.push('_');
        k.push_str(&realm);
        if let Some(ext) = ext {
            k.push('_');
            k.push_str(&ext);
        }
        k.push_str("_AppTokenCache");
        return Some(k);
    }
    None
}

fn nonempty(s: Option<std::borrow::Cow<'_, str>>) -> Option<std::borrow::Cow<'_, str>> {
    s.filter(|s| !s.is_empty())
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

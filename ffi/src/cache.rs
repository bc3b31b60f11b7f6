//! `tc_cache`: creating a cache, adding token responses, looking tokens up, and
//! changing or removing entries.

use std::ffi::c_char;
use std::sync::Arc;

use tokencache_core::{SharingMode, TokenCache};

use crate::arguments::{self, try_optional_str, try_str, try_str_list};
use crate::backing::CacheHandle;
use crate::bytes::tc_bytes;
use crate::handle::{Castable, OwnershipArc, free_arc, to_arc_const_ptr, try_out, try_ref_from_ptr};
use crate::limits::tc_cache_options;
use crate::panic::ffi_panic_boundary;
use crate::result::try_result;
use crate::result::{Failure, tc_result};

/// A token cache: one MSAL unified token cache document (the JSON file MSAL.NET, MSAL
/// Java, MSAL Go, msal-node and MSAL Python share) with indexes for fast lookups.
///
/// Ownership: `tc_cache_new` and `tc_cache_new_with_options` create one in memory,
/// `tc_provider_load` one holding a store's partition (saved back by
/// `tc_provider_save`), `tc_cache_open_file` one kept in a file; the caller owns it and
/// releases it with `tc_cache_free` (or `tc_provider_save`). Every function below works
/// on all three; a file-backed cache writes each change through to its file. Results
/// (entries, documents, messages) are copies the caller owns, never pointers into the
/// cache.
///
/// Thread-safety: every function may be called on the same `tc_cache` from any number of
/// threads at once; reads run in parallel, writes are short. No lock is held while a
/// callback runs, so callbacks may call back into the cache. Only `tc_cache_free` must
/// not race with other calls on the same cache.
///
/// Methods: `tc_cache_new`, `tc_cache_new_with_options`, `tc_cache_free`,
/// `tc_cache_add_event`, `tc_cache_search`, `tc_cache_get_access_token`,
/// `tc_cache_get_app_metadata`, `tc_cache_modify`, `tc_cache_remove_rt`,
/// `tc_cache_update_rt`, `tc_cache_remove_at`, `tc_cache_remove_idt`,
/// `tc_cache_remove_account`, `tc_cache_has_state_changed`, `tc_cache_set_state_changed`,
/// `tc_cache_len`, `tc_cache_serialize`, `tc_cache_serialize_compact`,
/// `tc_cache_deserialize`, `tc_cache_partition_keys`, `tc_cache_serialize_partition`,
/// `tc_cache_deserialize_partition`, `tc_cache_remove_partition`,
/// `tc_cache_suggested_expiry`, `tc_cache_get_limits`, `tc_cache_purge_expired`,
/// `tc_cache_get_stats`, `tc_cache_set_access_callbacks`, `tc_cache_open_file`,
/// `tc_cache_get_file_io`.
pub struct tc_cache {
    _private: [u8; 0],
}

impl Castable for tc_cache {
    type Ownership = OwnershipArc;
    type RustType = CacheHandle;
}

impl tc_cache {
    /// For Rust programs that hand a cache they own to C code: the `tc_cache` pointer
    /// for one reference to `cache`, which the C side releases with `tc_cache_free`.
    /// Rust and C then share one cache (the benchmark uses this to compare the two
    /// paths on the same data).
    pub fn from_arc(cache: Arc<TokenCache>) -> *const tc_cache {
        to_arc_const_ptr(CacheHandle::Shared(cache))
    }
}

/// Creates an empty, unbounded cache (msal's behaviour) and writes it to `*cache_out`.
///
/// The caller owns the new cache and must release it with `tc_cache_free`.
///
/// # Safety
/// `cache_out` must be NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_cache_new(cache_out: *mut *const tc_cache) -> tc_result {
    ffi_panic_boundary! {
        let out = try_out!(cache_out);
        out.write(to_arc_const_ptr(CacheHandle::Memory(TokenCache::new())));
        tc_result::Ok
    }
}

/// Creates an empty cache bounded by `options` (see `tc_cache_options`) and writes it to
/// `*cache_out`. The options are copied: the caller keeps owning them and may free them
/// right after.
///
/// The caller owns the new cache and must release it with `tc_cache_free`.
///
/// # Safety
/// `options` must be NULL or a live `tc_cache_options` not being changed by another
/// thread; `cache_out` must be NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_cache_new_with_options(
    options: *const tc_cache_options,
    cache_out: *mut *const tc_cache,
) -> tc_result {
    ffi_panic_boundary! {
        let options = try_ref_from_ptr!(options);
        let out = try_out!(cache_out);
        out.write(to_arc_const_ptr(CacheHandle::Memory(TokenCache::with_limits(*options))));
        tc_result::Ok
    }
}

/// Releases a cache. `NULL` is a no-op. A cache from `tc_provider_load` that changed is
/// discarded (with a warning in the log): save it with `tc_provider_save` instead.
///
/// # Safety
/// `cache` must be NULL or a cache from `tc_cache_new*` that no other thread is using
/// and that is not used again.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_cache_free(cache: *const tc_cache) {
    ffi_panic_boundary! {
        // SAFETY: the caller passes NULL or a cache it owns and gives up here.
        unsafe { free_arc(cache) }
    }
}

/// Caches what a token response event carries (msal's `add(event, now)`).
///
/// `event_json` is the JSON object msal hands its cache after a token response:
/// `client_id`, `scope`, `token_endpoint`, `response` (with `access_token`,
/// `refresh_token`, `id_token`, `client_info`, `expires_in`, ...), and optionally
/// `grant_type`, `environment`, `data`, `params`. `now` is Unix seconds or `TC_NOW`.
///
/// Fails with `TC_RESULT_INVALID_JSON` or `TC_RESULT_INVALID_EVENT` and then changes
/// nothing.
///
/// # Safety
/// `cache` must be NULL or a live cache; `event_json` NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_cache_add_event(cache: *const tc_cache, event_json: *const c_char, now: i64) -> tc_result {
    ffi_panic_boundary! {
        let cache = try_ref_from_ptr!(cache);
        let event_json = try_str!(event_json);
        try_result!(cache.add_json(event_json, arguments::now(now)));
        tc_result::Ok
    }
}

/// Entries of one section that match a query (msal's `search`), as a JSON array of
/// entry objects written to `*results_out` (`[]` when nothing matches).
///
/// - `credential_type`: a `tc_credential_type` value.
/// - `target`, `target_len`: scopes every result's `target` must hold; `(NULL, 0)` for
///   none.
/// - `query_json`: NULL, or a JSON object of fields every result must equal, e.g.
///   `{"client_id": "...", "realm": "...", "home_account_id": null}`.
/// - `now`: Unix seconds or `TC_NOW`. As in msal, an access-token search drops expired
///   access tokens from the cache.
///
/// The caller owns `*results_out` and must release it with `tc_bytes_free`; it holds
/// token secrets.
///
/// # Safety
/// `cache` must be NULL or a live cache; `target` NULL or `target_len` readable pointers
/// to NUL-terminated strings; `query_json` NULL or NUL-terminated; `results_out` NULL or
/// valid for writing one `tc_bytes`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_cache_search(
    cache: *const tc_cache,
    credential_type: u32,
    target: *const *const c_char,
    target_len: usize,
    query_json: *const c_char,
    now: i64,
    results_out: *mut tc_bytes,
) -> tc_result {
    ffi_panic_boundary! {
        let cache = try_ref_from_ptr!(cache);
        let credential_type = try_result!(arguments::credential_type(credential_type, "credential_type"));
        let target = try_str_list!(target, target_len);
        let query_json = try_optional_str!(query_json);
        let out = try_out!(results_out);
        let query = match query_json {
            Some(text) => Some(try_result!(arguments::json_object(text, "query_json", tc_result::InvalidArgument))),
            None => None,
        };
        let found = try_result!(cache.search(credential_type, &target, query.as_ref(), arguments::now(now)));
        out.write(tc_bytes::from_string(arguments::json_array_of_entries(&found)));
        tc_result::Ok
    }
}

/// The typed hot path: the access token filed under the key these fields make (msal's
/// `_get_access_token`), with no JSON in or out.
///
/// - `home_account_id`: NULL (or `""`) for app tokens (client credentials).
/// - `environment`, `client_id`, `realm`: e.g. `"login.microsoftonline.com"`, the app's
///   client id, the tenant id.
/// - `scopes`, `scopes_len`: the token's scopes, in any order.
/// - `ext_cache_key`: NULL unless the token was cached with an extended key.
/// - `secret_out`, `secret_capacity`: a buffer the caller owns; on success it receives
///   the token followed by a NUL. `secret_out` may be NULL only when `secret_capacity`
///   is 0.
/// - `secret_len_out`: the token's length, without the NUL.
/// - `expires_on_out`: the token's `expires_on` (Unix seconds), or 0 if it has none.
///
/// The token may be expired: compare `*expires_on_out` with the clock.
///
/// Returns `TC_RESULT_NOT_FOUND` when no token is filed under that key, and
/// `TC_RESULT_BUFFER_TOO_SMALL` when `secret_capacity` is not more than the token's
/// length; then, and only then on a failure, `*secret_len_out` receives the length so
/// the caller can retry with `length + 1` bytes.
///
/// # Safety
/// `cache` must be NULL or a live cache; the text arguments NULL or NUL-terminated;
/// `scopes` NULL or `scopes_len` readable pointers to NUL-terminated strings;
/// `secret_out` NULL or writable for `secret_capacity` bytes; `secret_len_out` and
/// `expires_on_out` NULL or valid for one write.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)] // mirrors core's get_access_token; a struct would cost C callers more
pub unsafe extern "C" fn tc_cache_get_access_token(
    cache: *const tc_cache,
    home_account_id: *const c_char,
    environment: *const c_char,
    client_id: *const c_char,
    realm: *const c_char,
    scopes: *const *const c_char,
    scopes_len: usize,
    ext_cache_key: *const c_char,
    secret_out: *mut c_char,
    secret_capacity: usize,
    secret_len_out: *mut usize,
    expires_on_out: *mut i64,
) -> tc_result {
    ffi_panic_boundary! {
        let cache = try_ref_from_ptr!(cache);
        let home_account_id = try_optional_str!(home_account_id);
        let environment = try_str!(environment);
        let client_id = try_str!(client_id);
        let realm = try_str!(realm);
        let scopes = try_str_list!(scopes, scopes_len);
        let ext_cache_key = try_optional_str!(ext_cache_key);
        if secret_out.is_null() && secret_capacity != 0 {
            return Failure::null("secret_out").record();
        }
        let secret_len_out = try_out!(secret_len_out);
        let expires_on_out = try_out!(expires_on_out);
        let cache = try_result!(cache.current());
        let Some(entry) =
            cache.get_access_token(home_account_id, environment, client_id, realm, &scopes, ext_cache_key)
        else {
            return Failure::new(tc_result::NotFound, "no access token is filed under that key").record();
        };
        // SAFETY: the caller promised `secret_out` writable for `secret_capacity` bytes.
        unsafe { arguments::write_secret(&entry, secret_out, secret_capacity, secret_len_out, expires_on_out) }
    }
}

/// The app metadata entry of `client_id` in `environment` (msal's `_get_app_metadata`),
/// as a JSON object in `*entry_out`; `TC_RESULT_NOT_FOUND` when there is none.
///
/// The caller owns `*entry_out` and must release it with `tc_bytes_free`.
///
/// # Safety
/// `cache` must be NULL or a live cache; the text arguments NULL or NUL-terminated;
/// `entry_out` NULL or valid for writing one `tc_bytes`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_cache_get_app_metadata(
    cache: *const tc_cache,
    environment: *const c_char,
    client_id: *const c_char,
    entry_out: *mut tc_bytes,
) -> tc_result {
    ffi_panic_boundary! {
        let cache = try_ref_from_ptr!(cache);
        let environment = try_str!(environment);
        let client_id = try_str!(client_id);
        let out = try_out!(entry_out);
        let cache = try_result!(cache.current());
        let Some(entry) = cache.get_app_metadata(environment, client_id) else {
            return Failure::new(tc_result::NotFound, "no app metadata for that environment and client").record();
        };
        out.write(tc_bytes::from_string(entry.to_json()));
        tc_result::Ok
    }
}

/// msal's `modify(credential_type, old_entry, new_key_value_pairs)`: with
/// `changes_json` a non-empty JSON object, files `entry_json` updated by those fields
/// under the key `entry_json`'s fields make; with `changes_json` NULL or `{}`, removes
/// whatever is filed under that key. Either way the cache counts as changed.
///
/// `entry_json` is an entry object as `tc_cache_search` returns them. Fails with
/// `TC_RESULT_INVALID_ENTRY` when it lacks the fields its key needs.
///
/// # Safety
/// `cache` must be NULL or a live cache; `entry_json` and `changes_json` NULL or
/// NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_cache_modify(
    cache: *const tc_cache,
    credential_type: u32,
    entry_json: *const c_char,
    changes_json: *const c_char,
) -> tc_result {
    ffi_panic_boundary! {
        let cache = try_ref_from_ptr!(cache);
        let credential_type = try_result!(arguments::credential_type(credential_type, "credential_type"));
        let entry_json = try_str!(entry_json);
        let changes_json = try_optional_str!(changes_json);
        let entry = try_result!(arguments::entry(entry_json, "entry_json"));
        let changes = match changes_json {
            Some(text) => Some(try_result!(arguments::json_object(text, "changes_json", tc_result::InvalidEntry))),
            None => None,
        };
        try_result!(cache.modify(credential_type, &entry, changes.as_ref()));
        tc_result::Ok
    }
}

/// Removes a refresh token (msal's `remove_rt`); `rt_json` is the entry object.
///
/// # Safety
/// `cache` must be NULL or a live cache; `rt_json` NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_cache_remove_rt(cache: *const tc_cache, rt_json: *const c_char) -> tc_result {
    ffi_panic_boundary! {
        let cache = try_ref_from_ptr!(cache);
        let rt_json = try_str!(rt_json);
        try_result!(cache.remove_rt(&try_result!(arguments::entry(rt_json, "rt_json"))));
        tc_result::Ok
    }
}

/// Replaces a refresh token's secret with `new_secret` and stamps
/// `last_modification_time` with `now` (msal's `update_rt`); `rt_json` is the entry
/// object.
///
/// # Safety
/// `cache` must be NULL or a live cache; `rt_json` and `new_secret` NULL or
/// NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_cache_update_rt(
    cache: *const tc_cache,
    rt_json: *const c_char,
    new_secret: *const c_char,
    now: i64,
) -> tc_result {
    ffi_panic_boundary! {
        let cache = try_ref_from_ptr!(cache);
        let rt_json = try_str!(rt_json);
        let new_secret = try_str!(new_secret);
        let rt = try_result!(arguments::entry(rt_json, "rt_json"));
        try_result!(cache.update_rt(&rt, new_secret, arguments::now(now)));
        tc_result::Ok
    }
}

/// Removes an access token (msal's `remove_at`); `at_json` is the entry object.
///
/// # Safety
/// `cache` must be NULL or a live cache; `at_json` NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_cache_remove_at(cache: *const tc_cache, at_json: *const c_char) -> tc_result {
    ffi_panic_boundary! {
        let cache = try_ref_from_ptr!(cache);
        let at_json = try_str!(at_json);
        try_result!(cache.remove_at(&try_result!(arguments::entry(at_json, "at_json"))));
        tc_result::Ok
    }
}

/// Removes an ID token (msal's `remove_idt`); `idt_json` is the entry object.
///
/// # Safety
/// `cache` must be NULL or a live cache; `idt_json` NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_cache_remove_idt(cache: *const tc_cache, idt_json: *const c_char) -> tc_result {
    ffi_panic_boundary! {
        let cache = try_ref_from_ptr!(cache);
        let idt_json = try_str!(idt_json);
        try_result!(cache.remove_idt(&try_result!(arguments::entry(idt_json, "idt_json"))));
        tc_result::Ok
    }
}

/// Removes an account (msal's `remove_account`); `account_json` is the entry object and
/// must have `authority_type`.
///
/// # Safety
/// `cache` must be NULL or a live cache; `account_json` NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_cache_remove_account(cache: *const tc_cache, account_json: *const c_char) -> tc_result {
    ffi_panic_boundary! {
        let cache = try_ref_from_ptr!(cache);
        let account_json = try_str!(account_json);
        try_result!(cache.remove_account(&try_result!(arguments::entry(account_json, "account_json"))));
        tc_result::Ok
    }
}

/// Whether anything changed since the last `tc_cache_serialize` or
/// `tc_cache_deserialize` (msal's `has_state_changed`): the signal to save.
///
/// # Safety
/// `cache` must be NULL or a live cache; `changed_out` NULL or valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_cache_has_state_changed(cache: *const tc_cache, changed_out: *mut bool) -> tc_result {
    ffi_panic_boundary! {
        let cache = try_ref_from_ptr!(cache);
        let out = try_out!(changed_out);
        out.write(cache.memory().has_state_changed());
        tc_result::Ok
    }
}

/// Sets or clears the changed flag (msal lets callers assign `has_state_changed`).
/// A file-backed cache refuses it with `TC_RESULT_UNSUPPORTED`.
///
/// # Safety
/// `cache` must be NULL or a live cache.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_cache_set_state_changed(cache: *const tc_cache, changed: bool) -> tc_result {
    ffi_panic_boundary! {
        let cache = try_ref_from_ptr!(cache);
        try_result!(cache.unpersisted("setting the changed flag")).set_state_changed(changed);
        tc_result::Ok
    }
}

/// The number of entries in the cache's five sections.
///
/// # Safety
/// `cache` must be NULL or a live cache; `len_out` NULL or valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_cache_len(cache: *const tc_cache, len_out: *mut usize) -> tc_result {
    ffi_panic_boundary! {
        let cache = try_ref_from_ptr!(cache);
        let out = try_out!(len_out);
        out.write(try_result!(cache.current()).len());
        tc_result::Ok
    }
}

/// When a cache behaves as sharing mode: it then treats the aliases of one Microsoft
/// cloud as one environment and `""` and `null` home account ids of app tokens as
/// one, and files what it writes where another SDK's copy of the item already is (or
/// as msal-node would), so the apps on every SDK that share one cache file find each
/// other's tokens and meet no duplicates. Functions take it as a `uint32_t`; any other
/// value is rejected with `TC_RESULT_INVALID_ENUM`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum tc_sharing_mode {
    /// Byte for byte msal Python, whatever the document holds.
    Off = 0,
    /// Always sharing mode.
    On = 1,
    /// msal Python's behaviour until the document holds an entry another SDK wrote
    /// (its key style, an app token with a `""` home account id, an access token
    /// without `token_type`), then sharing mode. The default.
    Auto = 2,
}

const SHARING_MODES: [(tc_sharing_mode, SharingMode); 3] = [
    (tc_sharing_mode::Off, SharingMode::Off),
    (tc_sharing_mode::On, SharingMode::On),
    (tc_sharing_mode::Auto, SharingMode::Auto),
];

/// Sets when the cache behaves as sharing mode (a `tc_sharing_mode`; default
/// `TC_SHARING_MODE_AUTO`). A file-backed cache keeps the mode across reloads.
///
/// # Safety
/// `cache` must be NULL or a live cache.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_cache_set_sharing_mode(cache: *const tc_cache, mode: u32) -> tc_result {
    ffi_panic_boundary! {
        let cache = try_ref_from_ptr!(cache);
        let Some((_, mode)) = SHARING_MODES.iter().find(|(m, _)| *m as u32 == mode) else {
            return Failure::new(tc_result::InvalidEnum, format_args!("`mode` = {mode} is not a tc_sharing_mode"))
                .record();
        };
        cache.memory().set_sharing_mode(*mode);
        tc_result::Ok
    }
}

/// Writes the sharing mode set (a `tc_sharing_mode`) to `*mode_out`.
///
/// # Safety
/// `cache` must be NULL or a live cache; `mode_out` NULL or valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_cache_get_sharing_mode(cache: *const tc_cache, mode_out: *mut u32) -> tc_result {
    ffi_panic_boundary! {
        let cache = try_ref_from_ptr!(cache);
        let out = try_out!(mode_out);
        let mode = cache.memory().sharing_mode();
        let found = SHARING_MODES.iter().find(|(_, m)| *m == mode).map_or(tc_sharing_mode::Auto, |(c, _)| *c);
        out.write(found as u32);
        tc_result::Ok
    }
}

/// `tc_cache_set_sharing_mode` with `TC_SHARING_MODE_ON` (`on`) or
/// `TC_SHARING_MODE_OFF`.
///
/// # Safety
/// `cache` must be NULL or a live cache.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_cache_set_sharing(cache: *const tc_cache, on: bool) -> tc_result {
    ffi_panic_boundary! {
        let cache = try_ref_from_ptr!(cache);
        cache.memory().set_sharing(on);
        tc_result::Ok
    }
}

/// Writes whether the cache behaves as sharing mode now to `*on_out`: mode `ON`, or
/// `AUTO` and the document holds another SDK's entries.
///
/// # Safety
/// `cache` must be NULL or a live cache; `on_out` NULL or valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_cache_get_sharing(cache: *const tc_cache, on_out: *mut bool) -> tc_result {
    ffi_panic_boundary! {
        let cache = try_ref_from_ptr!(cache);
        let out = try_out!(on_out);
        out.write(cache.memory().sharing());
        tc_result::Ok
    }
}

//! Documents: the whole cache and one partition of it, to and from text, and the
//! partition bookkeeping a store needs (keys, removal, suggested expiry).

use std::ffi::c_char;

use crate::arguments::{self, try_document, try_str};
use crate::bytes::tc_bytes;
use crate::cache::tc_cache;
use crate::handle::{try_out, try_ref_from_ptr};
use crate::panic::ffi_panic_boundary;
use crate::result::try_result;
use crate::result::{Failure, tc_result};

/// The whole cache as msal Python's `serialize()` writes it (`json.dumps(indent=4)`,
/// byte for byte), in `*document_out`; clears the changed flag.
///
/// The caller owns `*document_out` and must release it with `tc_bytes_free`; it holds
/// token secrets.
///
/// # Safety
/// `cache` must be NULL or a live cache; `document_out` NULL or valid for writing one
/// `tc_bytes`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_cache_serialize(cache: *const tc_cache, document_out: *mut tc_bytes) -> tc_result {
    ffi_panic_boundary! {
        let cache = try_ref_from_ptr!(cache);
        let out = try_out!(document_out);
        out.write(tc_bytes::from_string(try_result!(cache.current()).serialize()));
        tc_result::Ok
    }
}

/// The whole cache as compact JSON (no whitespace) in `*document_out`; does not touch
/// the changed flag.
///
/// The caller owns `*document_out` and must release it with `tc_bytes_free`.
///
/// # Safety
/// As for `tc_cache_serialize`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_cache_serialize_compact(cache: *const tc_cache, document_out: *mut tc_bytes) -> tc_result {
    ffi_panic_boundary! {
        let cache = try_ref_from_ptr!(cache);
        let out = try_out!(document_out);
        out.write(tc_bytes::from_string(try_result!(cache.current()).serialize_compact()));
        tc_result::Ok
    }
}

/// Replaces the whole cache with the document at `document` (`document_len` bytes of
/// UTF-8, e.g. a file's contents as read; a BOM is fine; `(NULL, 0)` or an empty
/// document empties the cache), and clears the changed flag (msal's `deserialize`).
///
/// Any SDK's cache file loads. Fails with `TC_RESULT_INVALID_UTF8`,
/// `TC_RESULT_INVALID_JSON` (the message has line and column) or
/// `TC_RESULT_NOT_A_CACHE`, and then the cache keeps its previous state.
/// A file-backed cache (`tc_cache_open_file`) replaces its file's content, under its
/// lock, with one write.
///
/// # Safety
/// `cache` must be NULL or a live cache; `document` NULL or readable for `document_len`
/// bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_cache_deserialize(
    cache: *const tc_cache,
    document: *const u8,
    document_len: usize,
) -> tc_result {
    ffi_panic_boundary! {
        let cache = try_ref_from_ptr!(cache);
        let text = try_document!(document, document_len);
        try_result!(cache.replace(|c| c.deserialize(text)));
        tc_result::Ok
    }
}

/// Every partition key present, in document order, as a JSON array of strings in
/// `*keys_out`. A partition is one user (`home_account_id`), one app and tenant
/// (`{client_id}_{tenant}_AppTokenCache`), or one on-behalf-of assertion.
///
/// The caller owns `*keys_out` and must release it with `tc_bytes_free`.
///
/// # Safety
/// `cache` must be NULL or a live cache; `keys_out` NULL or valid for writing one
/// `tc_bytes`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_cache_partition_keys(cache: *const tc_cache, keys_out: *mut tc_bytes) -> tc_result {
    ffi_panic_boundary! {
        let cache = try_ref_from_ptr!(cache);
        let out = try_out!(keys_out);
        out.write(tc_bytes::from_string(arguments::json_array_of_strings(try_result!(cache.current()).partition_keys())));
        tc_result::Ok
    }
}

/// The entries of partition `key`, plus the app metadata of their apps, as a cache
/// document in msal Python's format (MSAL.NET's per-partition blob) in `*blob_out`.
/// An unknown key gives a document with no entries.
///
/// The caller owns `*blob_out` and must release it with `tc_bytes_free`; it holds token
/// secrets.
///
/// # Safety
/// `cache` must be NULL or a live cache; `key` NULL or NUL-terminated; `blob_out` NULL
/// or valid for writing one `tc_bytes`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_cache_serialize_partition(
    cache: *const tc_cache,
    key: *const c_char,
    blob_out: *mut tc_bytes,
) -> tc_result {
    ffi_panic_boundary! {
        let cache = try_ref_from_ptr!(cache);
        let key = try_str!(key);
        let out = try_out!(blob_out);
        out.write(tc_bytes::from_string(try_result!(cache.current()).serialize_partition(key)));
        tc_result::Ok
    }
}

/// Replaces partition `key` with the entries of the blob (`blob_len` bytes written by
/// `tc_cache_serialize_partition`; `(NULL, 0)` empties the partition); app metadata in
/// it is merged. Nothing else in the cache is touched. Clears the changed flag.
///
/// Fails with `TC_RESULT_INVALID_ARGUMENT` when the blob holds an entry of another
/// partition, or as `tc_cache_deserialize` does; on failure nothing changes.
/// A file-backed cache makes the change under its file's lock, on the file's current
/// content, and writes it once.
///
/// # Safety
/// `cache` must be NULL or a live cache; `key` NULL or NUL-terminated; `blob` NULL or
/// readable for `blob_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_cache_deserialize_partition(
    cache: *const tc_cache,
    key: *const c_char,
    blob: *const u8,
    blob_len: usize,
) -> tc_result {
    ffi_panic_boundary! {
        let cache = try_ref_from_ptr!(cache);
        let key = try_str!(key);
        let text = try_document!(blob, blob_len);
        try_result!(cache.replace(|c| c.deserialize_partition(key, text)));
        tc_result::Ok
    }
}

/// Removes every entry of partition `key` and writes how many to `*removed_out`.
/// A file-backed cache makes the change under its file's lock and writes it once.
///
/// # Safety
/// `cache` must be NULL or a live cache; `key` NULL or NUL-terminated; `removed_out`
/// NULL or valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_cache_remove_partition(
    cache: *const tc_cache,
    key: *const c_char,
    removed_out: *mut usize,
) -> tc_result {
    ffi_panic_boundary! {
        let cache = try_ref_from_ptr!(cache);
        let key = try_str!(key);
        let out = try_out!(removed_out);
        out.write(try_result!(cache.replace(|c| Ok(c.remove_partition(key)))));
        tc_result::Ok
    }
}

/// How long a store should keep partition `key`, in Unix seconds, in `*expiry_out`:
/// the latest access token expiry when the partition holds no refresh token; 0 (keep
/// it) when it holds one, or when that expiry is not after `now` (Unix seconds or
/// `TC_NOW`).
///
/// # Safety
/// `cache` must be NULL or a live cache; `key` NULL or NUL-terminated; `expiry_out`
/// NULL or valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_cache_suggested_expiry(
    cache: *const tc_cache,
    key: *const c_char,
    now: i64,
    expiry_out: *mut i64,
) -> tc_result {
    ffi_panic_boundary! {
        let cache = try_ref_from_ptr!(cache);
        let key = try_str!(key);
        let out = try_out!(expiry_out);
        out.write(try_result!(cache.current()).suggested_expiry(key, arguments::now(now)).unwrap_or(0));
        tc_result::Ok
    }
}

/// The partition an entry belongs to (see `tc_cache_partition_keys`), in `*key_out`;
/// `TC_RESULT_NOT_FOUND` for entries every partition shares (app metadata, entries with
/// no owner). `credential_type` is a `tc_credential_type` value; `entry_json` an entry
/// object.
///
/// The caller owns `*key_out` and must release it with `tc_bytes_free`.
///
/// # Safety
/// `entry_json` must be NULL or NUL-terminated; `key_out` NULL or valid for writing one
/// `tc_bytes`. Any thread may call it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_partition_key(
    credential_type: u32,
    entry_json: *const c_char,
    key_out: *mut tc_bytes,
) -> tc_result {
    ffi_panic_boundary! {
        let credential_type = try_result!(arguments::credential_type(credential_type, "credential_type"));
        let entry_json = try_str!(entry_json);
        let out = try_out!(key_out);
        let entry = try_result!(arguments::entry(entry_json, "entry_json"));
        let Some(key) = tokencache_core::partition_key(credential_type, &entry) else {
            return Failure::new(tc_result::NotFound, "the entry belongs to no partition").record();
        };
        out.write(tc_bytes::from_string(key));
        tc_result::Ok
    }
}

//! Turning C arguments into Rust values: text, lists of text, byte ranges, enums,
//! times and JSON. Each conversion names the argument in its error message.

use std::ffi::{CStr, c_char};
use std::ops::Deref;

use tokencache_core::json::{self, Map, Value};
use tokencache_core::{CredentialType, Entry};

use crate::result::{Failure, tc_result};

/// `now` argument meaning "read the wall clock".
pub const TC_NOW: i64 = 0;

/// The five sections of a unified token cache, and the `credential_type` of their
/// entries. Functions take it as a `uint32_t`; any other value is rejected with
/// `TC_RESULT_INVALID_ENUM`. It also indexes the `hits` and `misses` arrays of
/// `tc_cache_stats`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum tc_credential_type {
    /// `"AccessToken"`.
    AccessToken = 0,
    /// `"RefreshToken"`.
    RefreshToken = 1,
    /// `"IdToken"`.
    IdToken = 2,
    /// `"Account"`.
    Account = 3,
    /// `"AppMetadata"`.
    AppMetadata = 4,
}

/// The number of `tc_credential_type` values (the length of the stats arrays).
pub const TC_CREDENTIAL_TYPE_COUNT: usize = 5;

impl From<CredentialType> for tc_credential_type {
    fn from(ct: CredentialType) -> Self {
        match ct {
            CredentialType::AccessToken => tc_credential_type::AccessToken,
            CredentialType::RefreshToken => tc_credential_type::RefreshToken,
            CredentialType::IdToken => tc_credential_type::IdToken,
            CredentialType::Account => tc_credential_type::Account,
            CredentialType::AppMetadata => tc_credential_type::AppMetadata,
        }
    }
}

/// A `tc_credential_type` passed as an integer.
pub(crate) fn credential_type(value: u32, name: &str) -> Result<CredentialType, Failure> {
    CredentialType::ALL.into_iter().find(|ct| tc_credential_type::from(*ct) as u32 == value).ok_or_else(|| {
        Failure::new(tc_result::InvalidEnum, format_args!("`{name}` = {value} is not a tc_credential_type"))
    })
}

/// `TC_NOW` (0) means the wall clock, which core spells `None`.
pub(crate) fn now(value: i64) -> Option<i64> {
    (value != TC_NOW).then_some(value)
}

fn utf8<'a>(bytes: &'a [u8], name: &str) -> Result<&'a str, Failure> {
    std::str::from_utf8(bytes).map_err(|e| {
        Failure::new(
            tc_result::InvalidUtf8,
            format_args!("`{name}` is not UTF-8 (invalid byte at offset {})", e.valid_up_to()),
        )
    })
}

/// A NUL-terminated UTF-8 argument that may be NULL.
///
/// # Safety
/// `ptr` is NULL or a NUL-terminated string that outlives `'a`.
pub(crate) unsafe fn optional_str<'a>(ptr: *const c_char, name: &str) -> Result<Option<&'a str>, Failure> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: non-NULL and NUL-terminated (the caller's promise).
    let bytes = unsafe { CStr::from_ptr(ptr) }.to_bytes();
    utf8(bytes, name).map(Some)
}

/// A NUL-terminated UTF-8 argument that must not be NULL.
///
/// # Safety
/// As for [`optional_str`].
pub(crate) unsafe fn required_str<'a>(ptr: *const c_char, name: &str) -> Result<&'a str, Failure> {
    // SAFETY: forwarded from the caller.
    unsafe { optional_str(ptr, name) }?.ok_or_else(|| Failure::null(name))
}

/// A `(pointer, length)` byte range; `(NULL, 0)` is empty.
///
/// # Safety
/// `ptr` is NULL or valid for reading `len` bytes during `'a`.
pub(crate) unsafe fn byte_range<'a>(ptr: *const u8, len: usize, name: &str) -> Result<&'a [u8], Failure> {
    if ptr.is_null() {
        return if len == 0 { Ok(&[]) } else { Err(Failure::null(name)) };
    }
    // SAFETY: non-NULL and readable for `len` bytes (the caller's promise).
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// A `(pointer, length)` UTF-8 document; `(NULL, 0)` is empty.
///
/// # Safety
/// `ptr` is NULL or valid for reading `len` bytes during `'a`.
pub(crate) unsafe fn document<'a>(ptr: *const u8, len: usize, name: &str) -> Result<&'a str, Failure> {
    if ptr.is_null() {
        return if len == 0 { Ok("") } else { Err(Failure::null(name)) };
    }
    // SAFETY: non-NULL and readable for `len` bytes (the caller's promise).
    utf8(unsafe { std::slice::from_raw_parts(ptr, len) }, name)
}

/// A list of text arguments, kept on the stack when short (the hot path passes one or
/// two scopes and should not allocate for them).
pub(crate) enum StrList<'a> {
    Short([&'a str; 8], usize),
    Long(Vec<&'a str>),
}

impl<'a> Deref for StrList<'a> {
    type Target = [&'a str];
    fn deref(&self) -> &[&'a str] {
        match self {
            StrList::Short(items, len) => &items[..*len],
            StrList::Long(items) => items,
        }
    }
}

/// A `(const char *const *, count)` list of UTF-8 strings; `(NULL, 0)` is empty.
///
/// # Safety
/// `ptr` is NULL or valid for reading `len` pointers, each of which is NULL or a
/// NUL-terminated string that outlives `'a`.
pub(crate) unsafe fn str_list<'a>(ptr: *const *const c_char, len: usize, name: &str) -> Result<StrList<'a>, Failure> {
    if ptr.is_null() {
        return if len == 0 { Ok(StrList::Short([""; 8], 0)) } else { Err(Failure::null(name)) };
    }
    // SAFETY: non-NULL and readable for `len` pointers (the caller's promise).
    let raw = unsafe { std::slice::from_raw_parts(ptr, len) };
    let item = |i: usize| {
        // SAFETY: each pointer is NULL or NUL-terminated (the caller's promise).
        unsafe { optional_str(raw[i], name) }?
            .ok_or_else(|| Failure::new(tc_result::NullParameter, format_args!("`{name}[{i}]` is NULL")))
    };
    if len <= 8 {
        let mut items = [""; 8];
        for (i, slot) in items.iter_mut().enumerate().take(len) {
            *slot = item(i)?;
        }
        Ok(StrList::Short(items, len))
    } else {
        (0..len).map(item).collect::<Result<_, _>>().map(StrList::Long)
    }
}

/// A JSON object argument (an entry, a query, a set of changes).
pub(crate) fn json_object(text: &str, name: &str, not_an_object: tc_result) -> Result<Map, Failure> {
    match json::parse(text).map_err(tokencache_core::Error::from)? {
        Value::Object(map) => Ok(map),
        _ => Err(Failure::new(not_an_object, format_args!("`{name}` is not a JSON object"))),
    }
}

/// A cache entry given as a JSON object.
pub(crate) fn entry(text: &str, name: &str) -> Result<Entry, Failure> {
    Ok(Entry::from_map(&json_object(text, name, tc_result::InvalidEntry)?)?)
}

/// Entries as a JSON array, each entry compact, for results with several entries.
/// Writes an access token's secret (NUL-terminated) to `secret_out`, its length to
/// `secret_len_out` and its `expires_on` to `expires_on_out`, or fails with
/// `TC_RESULT_BUFFER_TOO_SMALL` after writing the length it needs.
///
/// # Safety
/// `secret_out` is writable for `secret_capacity` bytes (NULL only with capacity 0).
pub(crate) unsafe fn write_secret(
    entry: &Entry,
    secret_out: *mut c_char,
    secret_capacity: usize,
    secret_len_out: crate::handle::Out<usize>,
    expires_on_out: crate::handle::Out<i64>,
) -> tc_result {
    let secret = entry.secret().unwrap_or_default();
    if secret.len() >= secret_capacity {
        secret_len_out.write(secret.len());
        return Failure::new(
            tc_result::BufferTooSmall,
            format_args!("`secret_capacity` is {secret_capacity}; the token needs {} bytes", secret.len() + 1),
        )
        .record();
    }
    // SAFETY: `secret_out` is writable for `secret_capacity` bytes (the caller's
    // promise; not NULL since the capacity is not 0), which exceeds the secret's
    // length, so the secret and its NUL fit; the regions can't overlap since the
    // secret is owned by the entry.
    unsafe {
        std::ptr::copy_nonoverlapping(secret.as_ptr(), secret_out.cast::<u8>(), secret.len());
        secret_out.add(secret.len()).write(0);
    }
    secret_len_out.write(secret.len());
    expires_on_out.write(entry.get("expires_on").and_then(|v| v.to_python_int()).unwrap_or(0));
    tc_result::Ok
}

pub(crate) fn json_array_of_entries(entries: &[Entry]) -> String {
    let texts: Vec<String> = entries.iter().map(Entry::to_json).collect();
    format!("[{}]", texts.join(","))
}

/// Strings as a JSON array.
pub(crate) fn json_array_of_strings(items: Vec<String>) -> String {
    json::to_compact_string(&Value::Array(items.into_iter().map(Value::String).collect()))
}

/// Unwraps a text argument that must not be NULL.
macro_rules! try_str {
    ($var:ident) => {
        // SAFETY: every exported function documents its text arguments as NULL or
        // NUL-terminated strings that stay valid during the call.
        $crate::result::try_result!(unsafe { $crate::arguments::required_str($var, stringify!($var)) })
    };
}
pub(crate) use try_str;

/// Unwraps a text argument that may be NULL.
macro_rules! try_optional_str {
    ($var:ident) => {
        // SAFETY: as for `try_str!`.
        $crate::result::try_result!(unsafe { $crate::arguments::optional_str($var, stringify!($var)) })
    };
}
pub(crate) use try_optional_str;

/// Unwraps a `(pointer, length)` document argument.
macro_rules! try_document {
    ($ptr:ident, $len:ident) => {
        // SAFETY: every exported function documents its document arguments as NULL or
        // readable for the given length during the call.
        $crate::result::try_result!(unsafe { $crate::arguments::document($ptr, $len, stringify!($ptr)) })
    };
}
pub(crate) use try_document;

/// Unwraps a `(pointer, length)` byte-range argument.
macro_rules! try_bytes {
    ($ptr:ident, $len:ident) => {
        // SAFETY: every exported function documents its byte-range arguments as NULL or
        // readable for the given length during the call.
        $crate::result::try_result!(unsafe { $crate::arguments::byte_range($ptr, $len, stringify!($ptr)) })
    };
}
pub(crate) use try_bytes;

/// Unwraps a `(const char *const *, count)` list argument.
macro_rules! try_str_list {
    ($ptr:ident, $len:ident) => {
        // SAFETY: every exported function documents its list arguments as NULL or
        // readable for the given count of NUL-terminated strings.
        $crate::result::try_result!(unsafe { $crate::arguments::str_list($ptr, $len, stringify!($ptr)) })
    };
}
pub(crate) use try_str_list;

//! `tc_result`, the per-thread last error message, and the one mapping from core's
//! `ErrorKind` to result codes.

use std::cell::RefCell;
use std::ffi::{CStr, c_char};
use std::fmt::Display;

use tokencache_core::ErrorKind;

use crate::bytes::tc_bytes;
use crate::handle::try_out;
use crate::panic::ffi_panic_boundary;

/// What a call did: `TC_RESULT_OK` (0) or why it failed.
///
/// Codes come in families of a thousand, so a caller can branch on `result / 1000`:
/// 1xxx the call's arguments, 2xxx a document that is not a cache, 3xxx an event or
/// entry the cache can't use, 4xxx lookups that found nothing, 5xxx persistence, 6xxx
/// stores and encryption, 7xxx the library itself. A number is never reused for
/// another meaning. `tc_result_describe` names a code; `tc_last_error_message` says
/// what went wrong in detail.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum tc_result {
    /// Success.
    Ok = 0,
    /// A pointer argument that must not be NULL was NULL.
    NullParameter = 1000,
    /// A text argument is not valid UTF-8.
    InvalidUtf8 = 1001,
    /// An integer argument is not one of its enum's values.
    InvalidEnum = 1002,
    /// A caller-provided buffer is too small; the size needed was reported.
    BufferTooSmall = 1003,
    /// An argument is out of range or of the wrong shape (core `InvalidArgument`).
    InvalidArgument = 1004,
    /// The text is not JSON; the message has the line and column (core `InvalidJson`).
    InvalidJson = 2000,
    /// The text is JSON but not a unified token cache (core `NotACache`).
    NotACache = 2001,
    /// A token response event that cannot be cached (core `InvalidEvent`).
    InvalidEvent = 3000,
    /// An entry lacks what its type requires, or is not a JSON object (core `InvalidEntry`).
    InvalidEntry = 3001,
    /// Nothing matches: no such token, metadata or partition. Not a failure of the cache.
    NotFound = 4000,
    /// The fetch callback of `tc_cache_get_or_fetch_access_token` reported a failure
    /// (every caller waiting on that fetch gets it; nothing was cached).
    FetchFailed = 4001,
    /// Reading or writing a file failed (core `Io`).
    Io = 5000,
    /// Another process held the cache's lock too long (core `LockTimeout`).
    LockTimeout = 5001,
    /// A persisted cache was unreadable and was moved aside (core `Corrupt`).
    Corrupt = 5002,
    /// A store's backend could not be reached or refused the request (core `StoreUnavailable`).
    StoreUnavailable = 6000,
    /// A blob was encrypted with a key this store does not have (core `KeyMismatch`).
    KeyMismatch = 6001,
    /// A blob failed authentication (core `DecryptionFailed`).
    DecryptionFailed = 6002,
    /// The library panicked: a bug. The call had no effect that can be relied on.
    Panic = 7000,
    /// Another logger is already installed in this process, so the log callback can't be.
    LoggerUnavailable = 7001,
    /// This build of the library left the feature out (e.g. a store), or the handle
    /// can't do this (e.g. a file-backed cache asked for a change it can't write through).
    Unsupported = 7002,
}

impl tc_result {
    /// The code after this one, in a chain through every code. Exhaustive, so a new
    /// code can't be left out of `tc_result_describe`.
    const fn next(self) -> Option<tc_result> {
        Some(match self {
            tc_result::Ok => tc_result::NullParameter,
            tc_result::NullParameter => tc_result::InvalidUtf8,
            tc_result::InvalidUtf8 => tc_result::InvalidEnum,
            tc_result::InvalidEnum => tc_result::BufferTooSmall,
            tc_result::BufferTooSmall => tc_result::InvalidArgument,
            tc_result::InvalidArgument => tc_result::InvalidJson,
            tc_result::InvalidJson => tc_result::NotACache,
            tc_result::NotACache => tc_result::InvalidEvent,
            tc_result::InvalidEvent => tc_result::InvalidEntry,
            tc_result::InvalidEntry => tc_result::NotFound,
            tc_result::NotFound => tc_result::FetchFailed,
            tc_result::FetchFailed => tc_result::Io,
            tc_result::Io => tc_result::LockTimeout,
            tc_result::LockTimeout => tc_result::Corrupt,
            tc_result::Corrupt => tc_result::StoreUnavailable,
            tc_result::StoreUnavailable => tc_result::KeyMismatch,
            tc_result::KeyMismatch => tc_result::DecryptionFailed,
            tc_result::DecryptionFailed => tc_result::Panic,
            tc_result::Panic => tc_result::LoggerUnavailable,
            tc_result::LoggerUnavailable => tc_result::Unsupported,
            tc_result::Unsupported => return None,
        })
    }

    /// Every code, in the order of [`next`](Self::next).
    pub(crate) fn all() -> impl Iterator<Item = tc_result> {
        std::iter::successors(Some(tc_result::Ok), |r| r.next())
    }

    /// The code with this number, if there is one.
    pub(crate) fn from_u32(number: u32) -> Option<tc_result> {
        tc_result::all().find(|r| *r as u32 == number)
    }

    /// The code for a core error kind. Exhaustive on purpose: a new kind in core
    /// fails to compile here until it has a code.
    pub(crate) const fn from_kind(kind: ErrorKind) -> tc_result {
        match kind {
            ErrorKind::InvalidJson => tc_result::InvalidJson,
            ErrorKind::NotACache => tc_result::NotACache,
            ErrorKind::InvalidEvent => tc_result::InvalidEvent,
            ErrorKind::InvalidEntry => tc_result::InvalidEntry,
            ErrorKind::InvalidArgument => tc_result::InvalidArgument,
            ErrorKind::Io => tc_result::Io,
            ErrorKind::LockTimeout => tc_result::LockTimeout,
            ErrorKind::Corrupt => tc_result::Corrupt,
            ErrorKind::KeyMismatch => tc_result::KeyMismatch,
            ErrorKind::DecryptionFailed => tc_result::DecryptionFailed,
            ErrorKind::StoreUnavailable => tc_result::StoreUnavailable,
        }
    }

    const fn description(self) -> &'static CStr {
        match self {
            tc_result::Ok => c"ok",
            tc_result::NullParameter => c"a required pointer argument is NULL",
            tc_result::InvalidUtf8 => c"a text argument is not valid UTF-8",
            tc_result::InvalidEnum => c"an integer argument is not a value of its enum",
            tc_result::BufferTooSmall => c"the buffer is too small",
            tc_result::InvalidArgument => c"an argument is out of range or of the wrong shape",
            tc_result::InvalidJson => c"the text is not JSON",
            tc_result::NotACache => c"the JSON is not a unified token cache",
            tc_result::InvalidEvent => c"the token response event cannot be cached",
            tc_result::InvalidEntry => c"the entry is not a usable cache entry",
            tc_result::NotFound => c"not found",
            tc_result::FetchFailed => c"the fetch callback failed",
            tc_result::Io => c"reading or writing a file failed",
            tc_result::LockTimeout => c"timed out waiting for the cache lock",
            tc_result::Corrupt => c"the persisted cache was unreadable and was moved aside",
            tc_result::StoreUnavailable => c"the store's backend is unavailable",
            tc_result::KeyMismatch => c"the blob was encrypted with an unknown key",
            tc_result::DecryptionFailed => c"the blob failed authentication",
            tc_result::Panic => c"the library panicked (a bug)",
            tc_result::LoggerUnavailable => c"another logger is already installed in this process",
            tc_result::Unsupported => c"not supported by this build or this handle",
        }
    }
}

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

/// A failed call: its code and the message `tc_last_error_message` will give.
#[derive(Clone, Debug)]
pub(crate) struct Failure {
    code: tc_result,
    message: String,
}

impl Failure {
    pub(crate) fn new(code: tc_result, message: impl Display) -> Self {
        Failure { code, message: message.to_string() }
    }

    /// A feature this build left out (`feature` is the cargo feature's name).
    #[allow(dead_code)] // unused when every feature is in
    pub(crate) fn not_built(feature: &str) -> Self {
        Failure::new(
            tc_result::Unsupported,
            format_args!("this build of libtokencache has no `{feature}` feature (build tokencache-ffi with it)"),
        )
    }

    pub(crate) fn null(name: &str) -> Self {
        Failure::new(tc_result::NullParameter, format_args!("argument `{name}` is NULL"))
    }

    /// Stores the message for this thread and gives the code to return.
    pub(crate) fn record(self) -> tc_result {
        // try_with: during thread teardown the slot may be gone; the code still returns.
        let _ = LAST_ERROR.try_with(|slot| *slot.borrow_mut() = self.message);
        self.code
    }
}

impl From<tokencache_core::Error> for Failure {
    /// The kind's code; the message is the kind's name, the error's message, and the
    /// messages of its causes, each after a `": "`. Core messages never hold token values.
    fn from(e: tokencache_core::Error) -> Self {
        let mut message = format!("{}: {e}", e.kind().as_str());
        let mut cause = std::error::Error::source(&e);
        while let Some(c) = cause {
            message.push_str(": ");
            message.push_str(&c.to_string());
            cause = c.source();
        }
        Failure { code: tc_result::from_kind(e.kind()), message }
    }
}

/// Unwraps a `Result<T, Failure>` (or core's `Result<T>`), or records the failure and
/// returns its code from the exported function.
macro_rules! try_result {
    ($expr:expr) => {
        match $expr {
            Ok(value) => value,
            Err(failure) => return $crate::result::Failure::from(failure).record(),
        }
    };
}
pub(crate) use try_result;

/// The name of a `tc_result` code, e.g. `"the text is not JSON"`.
///
/// Returns a static NUL-terminated string that the caller must not free; an unknown
/// number gives `"unknown result"`.
///
/// # Safety
/// None: any value may be passed, and the function can be called from any thread.
#[unsafe(no_mangle)]
pub extern "C" fn tc_result_describe(result: u32) -> *const c_char {
    ffi_panic_boundary! {
        tc_result::from_u32(result).map_or(c"unknown result", tc_result::description).as_ptr()
    }
}

/// The message of the last call that failed on this thread, with its causes
/// (e.g. `"invalid_json: expected ',' or '}' at line 3 column 5"`).
///
/// Messages name fields and positions, never token values. A successful call does not
/// clear the message (as with `errno`), so read it right after the failing call. Before
/// any failure the message is empty.
///
/// `message_out` receives a new `tc_bytes` (NUL-terminated text) that the caller owns
/// and must release with `tc_bytes_free`.
///
/// # Safety
/// `message_out` must be NULL or valid for writing one `tc_bytes`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_last_error_message(message_out: *mut tc_bytes) -> tc_result {
    ffi_panic_boundary! {
        let out = try_out!(message_out);
        let message = LAST_ERROR.try_with(|slot| slot.borrow().clone()).unwrap_or_default();
        out.write(tc_bytes::from_string(message));
        tc_result::Ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_described() {
        let codes: Vec<u32> = tc_result::all().map(|r| r as u32).collect();
        let mut sorted = codes.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), codes.len(), "a code appears twice in the chain");
        assert_eq!(codes.len(), 21);
        for r in tc_result::all() {
            assert_eq!(tc_result::from_u32(r as u32), Some(r));
            assert!(!r.description().is_empty());
        }
        assert_eq!(tc_result::from_u32(1), None);
    }
}

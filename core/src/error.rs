//! The one error type of this crate. Every failure has an [`ErrorKind`]; the C and
//! Python bindings map each kind to one result code and one exception class, and the
//! enum is exhaustive so a new kind breaks those mappings at compile time.
//!
//! Messages never contain token values: they name the field or position at fault.

use std::fmt;

/// What went wrong, in a form a program can branch on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The text is not JSON (the message has line and column).
    InvalidJson,
    /// The text is JSON but not a unified token cache (an array, a number, the
    /// MSAL.NET 2.x dictionary format, a section that is not an object).
    NotACache,
    /// A token response event that cannot be cached (bad id_token, bad client_info,
    /// an endpoint that is not an https URL, a lifetime that is not a number).
    InvalidEvent,
    /// An entry handed back to the cache lacks what its type requires.
    InvalidEntry,
    /// A call's argument is out of range or of the wrong shape.
    InvalidArgument,
    /// Reading or writing a file failed (the message names the path and the OS error).
    Io,
    /// Another process held the cache's lock for longer than the configured timeout.
    LockTimeout,
    /// A persisted cache was unreadable; it was moved aside (the message says where).
    Corrupt,
    /// A stored blob was encrypted with a key this store does not have.
    KeyMismatch,
    /// A stored blob failed authentication: tampered with, truncated, or replayed
    /// under another partition's key.
    DecryptionFailed,
    /// A store's backend (Redis, SQLite) could not be reached or refused the request.
    StoreUnavailable,
}

impl ErrorKind {
    /// A short stable name, e.g. `"invalid_json"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidJson => "invalid_json",
            ErrorKind::NotACache => "not_a_cache",
            ErrorKind::InvalidEvent => "invalid_event",
            ErrorKind::InvalidEntry => "invalid_entry",
            ErrorKind::InvalidArgument => "invalid_argument",
            ErrorKind::Io => "io",
            ErrorKind::LockTimeout => "lock_timeout",
            ErrorKind::Corrupt => "corrupt",
            ErrorKind::KeyMismatch => "key_mismatch",
            ErrorKind::DecryptionFailed => "decryption_failed",
            ErrorKind::StoreUnavailable => "store_unavailable",
        }
    }
}

/// An error of this crate: a kind, a message without secrets, and for syntax errors
/// the line and column.
#[derive(Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    position: Option<(usize, usize)>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error { kind, message: message.into(), position: None }
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, without the kind.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// For [`ErrorKind::InvalidJson`]: 1-based line and column of the fault.
    pub fn position(&self) -> Option<(usize, usize)> {
        self.position
    }
}

impl Error {
    /// An I/O failure on `path` (the path is not secret; file contents never appear).
    pub(crate) fn io(path: &std::path::Path, what: &str, e: &std::io::Error) -> Self {
        Error::new(ErrorKind::Io, format!("{what} {}: {e}", path.display()))
    }
}

impl From<crate::json::ParseError> for Error {
    fn from(e: crate::json::ParseError) -> Self {
        Error { kind: ErrorKind::InvalidJson, message: e.to_string(), position: Some((e.line, e.column)) }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Error({}: {})", self.kind.as_str(), self.message)
    }
}

impl std::error::Error for Error {}

/// This crate's `Result`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

//! # tokencache
//!
//! The MSAL *unified token cache* in Rust: it reads every file MSAL.NET, MSAL Java,
//! MSAL Go, msal-node and MSAL Python write, writes byte for byte what MSAL Python's
//! `SerializableTokenCache.serialize()` writes, and answers every search from
//! indexes instead of a scan.
//!
//! This crate is the logic; `tokencache-ffi` (C ABI), the Python package and the
//! `tokencache` command are thin adapters over it.
//!
//! Start with [`TokenCache`]:
//!
//! ```
//! use tokencache::{CredentialType, TokenCache};
//!
//! let cache = TokenCache::new();
//! cache.add_json(r#"{
//!     "client_id": "my-app",
//!     "scope": ["https://graph.microsoft.com/.default"],
//!     "token_endpoint": "https://login.microsoftonline.com/contoso/oauth2/v2.0/token",
//!     "grant_type": "client_credentials",
//!     "response": {"access_token": "secret-at", "expires_in": 3600, "token_type": "Bearer"}
//! }"#, Some(1_700_000_000))?;
//!
//! let saved = cache.serialize();          // exactly what msal Python would write
//! let again = TokenCache::new();
//! again.deserialize(&saved)?;
//! let at = again.get_access_token(None, "login.microsoftonline.com", "my-app", "contoso",
//!                                 &["https://graph.microsoft.com/.default"], None);
//! assert_eq!(at.unwrap().secret().as_deref(), Some("secret-at"));
//! # Ok::<(), tokencache::Error>(())
//! ```

mod cache;
pub mod coalesce;
pub mod diagnose;
mod document;
mod entry;
mod error;
mod event;
mod index;
pub mod inventory;
pub mod json;
mod limits;
pub mod maintenance;
pub mod merge;
mod notify;
mod partition;
mod persisted;
mod provider;
mod refresh;
mod schema;
pub mod sharing;
pub mod store;

pub use cache::{CacheStats, TokenCache, unix_now};
pub use entry::{Entry, FieldName, FieldValue};
pub use error::{Error, ErrorKind, Result};
pub use event::ext_cache_key;
pub use json::{Map, Value};
pub use limits::{CacheLimits, EvictionCounts};
pub use notify::{AccessEvent, AccessObserver, Operation};
pub use partition::partition_key;
pub use persisted::{FileIoCounts, OnCorrupt, PersistOptions, PersistedTokenCache};
pub use provider::{
    CacheProvider, DEFAULT_MAX_MERGE_RETRIES, OnBadBlob, PartitionCache, ProviderOptions, ProviderStats,
};
pub use refresh::{DueToken, RefreshWatcher};
pub use schema::{CredentialType, KNOWN_FIELDS as KNOWN_FIELD_NAMES, authority_type};
pub use sharing::SharingMode;

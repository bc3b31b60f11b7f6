//! # tokencache-ffi
//!
//! The C ABI of [`tokencache`](tokencache_core): builds `libtokencache.so` and
//! `libtokencache.a`, and cbindgen generates `include/tokencache.h` from this crate.
//!
//! It is a thin adapter: every function checks and converts its C arguments, calls one
//! method of [`tokencache_core::TokenCache`], and converts the result back. It is not a
//! place for cache logic; that lives in `core/`. C and C++ users should read the header
//! (or `README.md`, "Use from C"); Rust users should use the `tokencache` crate itself.
//!
//! Where things live: [`cache`] (the `tc_cache` handle, adding, looking up, modifying),
//! [`documents`] (whole-cache and per-partition text), [`limits`] (options, limits,
//! stats), [`callbacks`] (before/after access), [`log`] (the log callback), [`result`]
//! (`tc_result` and the last error message), [`bytes`] (`tc_bytes`); stores:
//! [`store`] (`tc_store`, memory, SQLite, stats), [`redis`], [`tiered`] (L1 over L2),
//! [`encryption`] (key rings, encrypted stores), [`provider`] (`tc_provider`: load a
//! partition into a `tc_cache`, save it back), [`persisted`] (a `tc_cache` kept in a
//! file).
//!
//! Conventions: `tc_<type>_<verb>` names; every fallible function returns a
//! [`tc_result`]; outputs are written only on success; library-owned buffers are
//! [`tc_bytes`] released with [`tc_bytes_free`]; every body runs inside a panic
//! boundary; NULL, invalid UTF-8 and out-of-range enum integers are rejected with a code.
//!
//! The functions can be called from Rust too (the tests do):
//!
//! ```
//! use std::ptr;
//! use tokencache::*;
//!
//! let mut cache = ptr::null();
//! unsafe {
//!     assert_eq!(tc_cache_new(&mut cache), tc_result::Ok);
//!     let event = c"{\"client_id\": \"my-app\", \"scope\": [\"https://graph.microsoft.com/.default\"],
//!         \"token_endpoint\": \"https://login.microsoftonline.com/contoso/oauth2/v2.0/token\",
//!         \"response\": {\"access_token\": \"at-secret\", \"expires_in\": 3600}}";
//!     assert_eq!(tc_cache_add_event(cache, event.as_ptr(), 1_700_000_000), tc_result::Ok);
//!
//!     let scopes = [c"https://graph.microsoft.com/.default".as_ptr()];
//!     let mut secret = [0 as std::ffi::c_char; 64];
//!     let (mut len, mut expires_on) = (0usize, 0i64);
//!     let found = tc_cache_get_access_token(
//!         cache, ptr::null(), c"login.microsoftonline.com".as_ptr(), c"my-app".as_ptr(),
//!         c"contoso".as_ptr(), scopes.as_ptr(), scopes.len(), ptr::null(),
//!         secret.as_mut_ptr(), secret.len(), &mut len, &mut expires_on);
//!     assert_eq!(found, tc_result::Ok);
//!     assert_eq!((len, expires_on), (9, 1_700_003_600));
//!     tc_cache_free(cache);
//! }
//! ```

#![allow(non_camel_case_types)] // C type names: tc_cache, tc_result, ...

pub mod arguments;
mod backing;
pub mod bytes;
pub mod cache;
pub mod callbacks;
pub mod coalesce;
pub mod documents;
pub mod encryption;
mod handle;
pub mod limits;
pub mod log;
mod panic;
pub mod persisted;
pub mod provider;
pub mod redis;
pub mod refresh;
pub mod result;
pub mod store;
pub mod tiered;

use std::ffi::c_char;

pub use arguments::{TC_CREDENTIAL_TYPE_COUNT, TC_NOW, tc_credential_type};
pub use bytes::{tc_bytes, tc_bytes_free};
pub use cache::*;
pub use callbacks::*;
pub use coalesce::*;
pub use documents::*;
pub use encryption::*;
pub use limits::*;
pub use log::*;
pub use persisted::*;
pub use provider::*;
pub use redis::*;
pub use refresh::*;
pub use result::{tc_last_error_message, tc_result, tc_result_describe};
pub use store::*;
pub use tiered::*;

/// The library's version, e.g. `"0.1.0"`: a static NUL-terminated string the caller
/// must not free.
///
/// # Safety
/// None: it takes no arguments and any thread may call it.
#[unsafe(no_mangle)]
pub extern "C" fn tc_version() -> *const c_char {
    panic::ffi_panic_boundary! {
        const VERSION: &std::ffi::CStr =
            match std::ffi::CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
                Ok(v) => v,
                Err(_) => panic!("the version has no NUL inside"),
            };
        VERSION.as_ptr()
    }
}

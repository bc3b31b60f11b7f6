//! Helpers for the Rust-side tests of the C ABI: a cache that frees itself, text
//! arguments, and the events the tests add.
#![allow(dead_code)]

use std::ffi::{CString, c_char};
use std::path::PathBuf;
use std::ptr;

use tokencache::*;

/// Text argument.
pub fn c(text: &str) -> CString {
    CString::new(text).unwrap()
}

/// Takes a buffer the library returned, as text, and frees it.
pub fn take(mut bytes: tc_bytes) -> String {
    // SAFETY: `bytes` came from the library and is freed right after.
    let text = String::from_utf8(unsafe { bytes.as_slice() }.to_vec()).unwrap();
    // SAFETY: as above; freed once.
    unsafe { tc_bytes_free(&mut bytes) };
    text
}

/// This thread's last error message.
pub fn last_error() -> String {
    let mut bytes = tc_bytes { data: ptr::null(), len: 0 };
    // SAFETY: a valid out-pointer.
    assert_eq!(unsafe { tc_last_error_message(&mut bytes) }, tc_result::Ok);
    take(bytes)
}

/// A `tc_bytes` out-parameter, empty.
pub fn empty() -> tc_bytes {
    tc_bytes { data: ptr::null(), len: 0 }
}

/// A cache created through the ABI and freed when dropped.
pub struct Cache(pub *const tc_cache);

impl Cache {
    pub fn new() -> Cache {
        let mut cache = ptr::null();
        // SAFETY: a valid out-pointer.
        assert_eq!(unsafe { tc_cache_new(&mut cache) }, tc_result::Ok);
        assert!(!cache.is_null());
        Cache(cache)
    }

    pub fn add(&self, event: &str, now: i64) -> tc_result {
        // SAFETY: a live cache and a NUL-terminated string.
        unsafe { tc_cache_add_event(self.0, c(event).as_ptr(), now) }
    }

    pub fn serialize(&self) -> String {
        let mut out = empty();
        // SAFETY: a live cache and a valid out-pointer.
        assert_eq!(unsafe { tc_cache_serialize(self.0, &mut out) }, tc_result::Ok);
        take(out)
    }

    pub fn deserialize(&self, text: &[u8]) -> tc_result {
        // SAFETY: a live cache; `text` is readable for its length.
        unsafe { tc_cache_deserialize(self.0, text.as_ptr(), text.len()) }
    }

    pub fn len(&self) -> usize {
        let mut n = usize::MAX;
        // SAFETY: a live cache and a valid out-pointer.
        assert_eq!(unsafe { tc_cache_len(self.0, &mut n) }, tc_result::Ok);
        n
    }

    pub fn search(&self, ct: tc_credential_type, target: &[&str], query: Option<&str>, now: i64) -> String {
        let owned: Vec<CString> = target.iter().map(|s| c(s)).collect();
        let ptrs: Vec<*const c_char> = owned.iter().map(|s| s.as_ptr()).collect();
        let query = query.map(c);
        let mut out = empty();
        // SAFETY: a live cache; the lists and strings outlive the call.
        let r = unsafe {
            tc_cache_search(
                self.0,
                ct as u32,
                if ptrs.is_empty() { ptr::null() } else { ptrs.as_ptr() },
                ptrs.len(),
                query.as_ref().map_or(ptr::null(), |q| q.as_ptr()),
                now,
                &mut out,
            )
        };
        assert_eq!(r, tc_result::Ok, "{}", last_error());
        take(out)
    }

    /// The hot path: `(secret, expires_on)` or the failing code.
    pub fn get_access_token(&self, realm: &str, scopes: &[&str]) -> Result<(String, i64), tc_result> {
        let owned: Vec<CString> = scopes.iter().map(|s| c(s)).collect();
        let ptrs: Vec<*const c_char> = owned.iter().map(|s| s.as_ptr()).collect();
        let mut buf = vec![0 as c_char; 4096];
        let (mut len, mut expires) = (0usize, 0i64);
        // SAFETY: a live cache; every pointer is valid for the call.
        let r = unsafe {
            tc_cache_get_access_token(
                self.0,
                ptr::null(),
                c(ENV).as_ptr(),
                c(CLIENT_ID).as_ptr(),
                c(realm).as_ptr(),
                ptrs.as_ptr(),
                ptrs.len(),
                ptr::null(),
                buf.as_mut_ptr(),
                buf.len(),
                &mut len,
                &mut expires,
            )
        };
        if r != tc_result::Ok {
            return Err(r);
        }
        assert_eq!(buf[len], 0, "the secret is NUL-terminated");
        let bytes: Vec<u8> = buf[..len].iter().map(|b| *b as u8).collect();
        Ok((String::from_utf8(bytes).unwrap(), expires))
    }
}

impl Drop for Cache {
    fn drop(&mut self) {
        // SAFETY: the cache is ours and not used after this.
        unsafe { tc_cache_free(self.0) };
    }
}

pub const ENV: &str = "login.microsoftonline.com";
pub const CLIENT_ID: &str = "my-app";
pub const GRAPH: &str = "https://graph.microsoft.com/.default";
pub const NOW: i64 = 1_700_000_000;

/// What a confidential client hands its cache after a client-credentials token.
pub fn app_token_event(tenant: &str, scope: &str, secret: &str) -> String {
    format!(
        r#"{{"client_id": "{CLIENT_ID}", "scope": ["{scope}"],
            "token_endpoint": "https://{ENV}/{tenant}/oauth2/v2.0/token",
            "grant_type": "client_credentials", "environment": "{ENV}",
            "response": {{"access_token": "{secret}", "expires_in": 3600, "token_type": "Bearer"}}}}"#
    )
}

/// What a public client hands its cache after a user signs in: an access token, a
/// refresh token, an account and app metadata for user `u1` of tenant `t1`.
pub fn user_event() -> String {
    format!(
        r#"{{"client_id": "{CLIENT_ID}", "scope": ["User.Read"],
            "token_endpoint": "https://{ENV}/t1/oauth2/v2.0/token",
            "grant_type": "authorization_code", "environment": "{ENV}",
            "response": {{"access_token": "user-at", "refresh_token": "user-rt", "expires_in": 3600,
                          "client_info": "eyJ1aWQiOiJ1MSIsInV0aWQiOiJ0MSJ9", "token_type": "Bearer"}}}}"#
    )
}

/// `../shared/vectors` from the workspace root, or `$TOKENCACHE_VECTORS`.
pub fn vectors_dir() -> PathBuf {
    if let Ok(p) = std::env::var("TOKENCACHE_VECTORS") {
        return PathBuf::from(p);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors")
}

//! `tc_key_ring` and `tc_store_encrypted_new`: AES-256-GCM at rest over any store,
//! with a key ring for rotation (encrypt with the primary key, decrypt with any).

use std::ffi::c_char;

use tokencache_core::store::KeyRing;

use crate::arguments::{try_bytes, try_str};
use crate::handle::{
    Castable, OwnershipBox, free_box, to_arc_const_ptr, to_boxed_mut_ptr, try_mut_from_ptr, try_out, try_ref_from_ptr,
};
use crate::panic::ffi_panic_boundary;
use crate::result::try_result;
use crate::result::{Failure, tc_result};
use crate::store::{StoreHandle, tc_store};

/// The keys an encrypted store knows: the primary (first) encrypts, any decrypts. To
/// rotate, make the new key primary and keep the old one until what it sealed has been
/// rewritten or has expired.
///
/// Key bytes are copied into the ring, held only inside the cipher and wiped when the
/// ring (and every store using it) is gone; the library never logs them or puts them
/// in messages (only 8-byte key ids). The caller should wipe its own copies.
///
/// Ownership: `tc_key_ring_new`, `tc_key_ring_parse`, `tc_key_ring_from_env` and
/// `tc_key_ring_from_file` create one; the caller owns it and releases it with
/// `tc_key_ring_free`. `tc_store_encrypted_new` copies it.
///
/// Thread-safety: not synchronized; use one from one thread at a time.
///
/// Methods: `tc_key_ring_new`, `tc_key_ring_parse`, `tc_key_ring_from_env`,
/// `tc_key_ring_from_file`, `tc_key_ring_add_key`, `tc_key_ring_free`.
pub struct tc_key_ring {
    _private: [u8; 0],
}

impl Castable for tc_key_ring {
    type Ownership = OwnershipBox;
    type RustType = KeyRing;
}

/// Bits of `tc_store_encrypted_new`'s `flags`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum tc_encryption_flag {
    /// A blob sealed with a key the ring lacks reads as absent (still counted in
    /// `tc_store_stats.key_mismatches` and logged) instead of failing with
    /// `TC_RESULT_KEY_MISMATCH`.
    KeyMismatchAsMiss = 1,
    /// A blob that is not an envelope is returned as is (counted, logged), so a store
    /// written before encryption was turned on stays readable. Off by default: anyone
    /// who can write to the store could otherwise plant plaintext.
    AllowUnencrypted = 2,
}

#[cfg(feature = "encryption")]
mod keys {
    use tokencache_core::store::{EncryptionKey, KeyRing};

    use crate::result::Failure;

    pub(super) fn ring_of(key: &[u8]) -> Result<KeyRing, Failure> {
        Ok(KeyRing::new(EncryptionKey::from_bytes(key)?))
    }

    pub(super) fn add(ring: &mut KeyRing, key: &[u8]) -> Result<(), Failure> {
        let key = EncryptionKey::from_bytes(key)?;
        *ring = ring.clone().with_key(key);
        Ok(())
    }

    pub(super) fn parse(text: &str) -> Result<KeyRing, Failure> {
        Ok(KeyRing::parse(text)?)
    }

    pub(super) fn from_env(var: &str) -> Result<KeyRing, Failure> {
        Ok(KeyRing::from_env(var)?)
    }

    pub(super) fn from_file(path: &str) -> Result<KeyRing, Failure> {
        Ok(KeyRing::from_file(path)?)
    }
}

#[cfg(not(feature = "encryption"))]
mod keys {
    use tokencache_core::store::KeyRing;

    use crate::result::Failure;

    pub(super) fn ring_of(_: &[u8]) -> Result<KeyRing, Failure> {
        Err(Failure::not_built("encryption"))
    }

    pub(super) fn add(ring: &mut KeyRing, _: &[u8]) -> Result<(), Failure> {
        match *ring {}
    }

    pub(super) fn parse(_: &str) -> Result<KeyRing, Failure> {
        Err(Failure::not_built("encryption"))
    }

    pub(super) fn from_env(_: &str) -> Result<KeyRing, Failure> {
        Err(Failure::not_built("encryption"))
    }

    pub(super) fn from_file(_: &str) -> Result<KeyRing, Failure> {
        Err(Failure::not_built("encryption"))
    }
}

/// Creates a key ring whose primary key is the 32 bytes at `key` and writes it to
/// `*ring_out`. Another length is `TC_RESULT_INVALID_ARGUMENT`; a build without the
/// `encryption` feature gives `TC_RESULT_UNSUPPORTED`.
///
/// The caller owns the ring and must release it with `tc_key_ring_free`.
///
/// # Safety
/// `key` must be NULL or readable for `key_len` bytes; `ring_out` NULL or valid for
/// writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_key_ring_new(key: *const u8, key_len: usize, ring_out: *mut *mut tc_key_ring) -> tc_result {
    ffi_panic_boundary! {
        let key = try_bytes!(key, key_len);
        let out = try_out!(ring_out);
        out.write(to_boxed_mut_ptr(try_result!(keys::ring_of(key))));
        tc_result::Ok
    }
}

/// Adds the 32 bytes at `key` to the ring as a decryption-only key (a key already in
/// the ring is ignored).
///
/// # Safety
/// `ring` must be NULL or a live ring not in use by another thread; `key` NULL or
/// readable for `key_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_key_ring_add_key(ring: *mut tc_key_ring, key: *const u8, key_len: usize) -> tc_result {
    ffi_panic_boundary! {
        let ring = try_mut_from_ptr!(ring);
        let key = try_bytes!(key, key_len);
        try_result!(keys::add(ring, key));
        tc_result::Ok
    }
}

/// Creates a key ring from text: keys separated by whitespace or commas, the first
/// primary, each 64 hex digits or the base64 of 32 bytes; writes it to `*ring_out`.
/// Bad text is `TC_RESULT_INVALID_ARGUMENT` (the message never quotes it).
///
/// # Safety
/// `text` must be NULL or NUL-terminated; `ring_out` NULL or valid for writing one
/// pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_key_ring_parse(text: *const c_char, ring_out: *mut *mut tc_key_ring) -> tc_result {
    ffi_panic_boundary! {
        let text = try_str!(text);
        let out = try_out!(ring_out);
        out.write(to_boxed_mut_ptr(try_result!(keys::parse(text))));
        tc_result::Ok
    }
}

/// Creates a key ring from the environment variable `var`, read as
/// `tc_key_ring_parse` reads text, and writes it to `*ring_out`.
///
/// # Safety
/// `var` must be NULL or NUL-terminated; `ring_out` NULL or valid for writing one
/// pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_key_ring_from_env(var: *const c_char, ring_out: *mut *mut tc_key_ring) -> tc_result {
    ffi_panic_boundary! {
        let var = try_str!(var);
        let out = try_out!(ring_out);
        out.write(to_boxed_mut_ptr(try_result!(keys::from_env(var))));
        tc_result::Ok
    }
}

/// Creates a key ring from the file at `path` — exactly 32 raw bytes (one key), or
/// text as `tc_key_ring_parse` reads it — and writes it to `*ring_out`.
///
/// # Safety
/// `path` must be NULL or NUL-terminated; `ring_out` NULL or valid for writing one
/// pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_key_ring_from_file(path: *const c_char, ring_out: *mut *mut tc_key_ring) -> tc_result {
    ffi_panic_boundary! {
        let path = try_str!(path);
        let out = try_out!(ring_out);
        out.write(to_boxed_mut_ptr(try_result!(keys::from_file(path))));
        tc_result::Ok
    }
}

/// Releases a key ring (wiping its keys unless a store still uses them). `NULL` is a
/// no-op.
///
/// # Safety
/// `ring` must be NULL or a ring from a `tc_key_ring_*` constructor not used again.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_key_ring_free(ring: *mut tc_key_ring) {
    ffi_panic_boundary! {
        // SAFETY: the caller passes NULL or a ring it owns and gives up here.
        unsafe { free_box(ring) }
    }
}

/// Creates a store that encrypts blobs on their way into `inner` and decrypts them
/// on the way out, and writes it to `*store_out`. Blobs are sealed with AES-256-GCM
/// under the ring's primary key, bound to their partition key (a blob copied under
/// another user's key fails to open).
///
/// Reading a blob sealed with a key the ring lacks fails with
/// `TC_RESULT_KEY_MISMATCH` (or reads as absent with
/// `TC_ENCRYPTION_FLAG_KEY_MISMATCH_AS_MISS`); a tampered blob fails with
/// `TC_RESULT_DECRYPTION_FAILED`; both are counted in `tc_store_stats`.
///
/// `ring` is copied; `flags` is 0 or bits of `tc_encryption_flag` (others:
/// `TC_RESULT_INVALID_ENUM`). The new store keeps `inner` alive. The caller owns it and
/// must release it with `tc_store_free`.
///
/// # Safety
/// `inner` must be NULL or a live store; `ring` NULL or a live ring not being changed
/// by another thread; `store_out` NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_store_encrypted_new(
    inner: *const tc_store,
    ring: *const tc_key_ring,
    flags: u32,
    store_out: *mut *const tc_store,
) -> tc_result {
    ffi_panic_boundary! {
        let inner = try_ref_from_ptr!(inner);
        let ring = try_ref_from_ptr!(ring);
        let out = try_out!(store_out);
        let known = tc_encryption_flag::KeyMismatchAsMiss as u32 | tc_encryption_flag::AllowUnencrypted as u32;
        if flags & !known != 0 {
            return Failure::new(tc_result::InvalidEnum, format_args!("`flags` = {flags} has unknown bits")).record();
        }
        out.write(to_arc_const_ptr(try_result!(encrypted(inner, ring, flags))));
        tc_result::Ok
    }
}

/// An encrypted store of any inner store, as a stack keeps it: its counters, and its key
/// ring to replace.
#[cfg(feature = "encryption")]
pub(crate) trait KeyedStore: Send + Sync {
    fn stats(&self) -> tokencache_core::store::EncryptionStats;
    fn set_key_ring(&self, ring: KeyRing);
}

#[cfg(feature = "encryption")]
impl<S: tokencache_core::store::Store> KeyedStore for tokencache_core::store::EncryptedStore<S> {
    fn stats(&self) -> tokencache_core::store::EncryptionStats {
        tokencache_core::store::EncryptedStore::stats(self)
    }
    fn set_key_ring(&self, ring: KeyRing) {
        tokencache_core::store::EncryptedStore::set_key_ring(self, ring)
    }
}

/// Rotates keys while the store is in use: later writes are sealed with `ring`'s
/// primary key, and reads open blobs sealed with any key of `ring` (keep the old primary
/// in it until what it sealed has been rewritten or has expired). It applies to the
/// outermost encrypted store of `store`'s stack (e.g. the L2 of a tiered store over an
/// encrypted one); a stack with none is `TC_RESULT_INVALID_ARGUMENT`. `ring` is copied.
///
/// Safe while other threads use the store: each operation uses the old ring or the new
/// one, never a mix.
///
/// # Safety
/// `store` must be NULL or a live store; `ring` NULL or a live ring not being changed by
/// another thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_store_set_key_ring(store: *const tc_store, ring: *const tc_key_ring) -> tc_result {
    ffi_panic_boundary! {
        let store = try_ref_from_ptr!(store);
        let ring = try_ref_from_ptr!(ring);
        try_result!(set_ring(store, ring));
        tc_result::Ok
    }
}

#[cfg(feature = "encryption")]
fn set_ring(store: &StoreHandle, ring: &KeyRing) -> Result<(), Failure> {
    let encrypted = store
        .encrypted()
        .ok_or_else(|| Failure::new(tc_result::InvalidArgument, "the store has no encrypted layer"))?;
    encrypted.set_key_ring(ring.clone());
    Ok(())
}

#[cfg(not(feature = "encryption"))]
fn set_ring(_: &StoreHandle, ring: &KeyRing) -> Result<(), Failure> {
    match *ring {}
}

#[cfg(feature = "encryption")]
fn encrypted(inner: &StoreHandle, ring: &KeyRing, flags: u32) -> Result<StoreHandle, Failure> {
    use std::sync::Arc;

    use tokencache_core::store::{EncryptedStore, EncryptionOptions};

    use crate::store::Layer;

    let options = EncryptionOptions {
        key_mismatch_as_miss: flags & tc_encryption_flag::KeyMismatchAsMiss as u32 != 0,
        allow_unencrypted: flags & tc_encryption_flag::AllowUnencrypted as u32 != 0,
    };
    // Over a store that can be an L2, the encrypted store can be one too.
    Ok(match inner.as_l2() {
        Ok(l2) => {
            let store = Arc::new(EncryptedStore::with_options(l2, ring.clone(), options));
            StoreHandle::l2(store.clone(), Layer::Encrypted(store), Some(inner))
        }
        Err(_) => {
            let store = Arc::new(EncryptedStore::with_options(inner.store(), ring.clone(), options));
            StoreHandle::plain(store.clone(), Layer::Encrypted(store), Some(inner))
        }
    })
}

#[cfg(not(feature = "encryption"))]
fn encrypted(_: &StoreHandle, ring: &KeyRing, _: u32) -> Result<StoreHandle, Failure> {
    match *ring {}
}

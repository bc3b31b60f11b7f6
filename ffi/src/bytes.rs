//! `tc_bytes`: a buffer the library allocates and the caller gives back.

use std::ptr;

use crate::panic::ffi_panic_boundary;

/// A byte buffer returned by the library: `len` bytes at `data`, followed by one NUL
/// byte that `len` does not count, so text results can be used as C strings.
///
/// Ownership: the caller owns every `tc_bytes` a function writes to an out-parameter
/// and must release it exactly once with `tc_bytes_free`, never with `free()`. Buffers
/// holding entries or whole caches contain token secrets: treat them as secrets.
///
/// Thread-safety: a `tc_bytes` is plain data; it may be read from any thread and freed
/// from any thread, once.
///
/// `{NULL, 0}` is an empty buffer and may be passed to `tc_bytes_free`.
#[repr(C)]
#[derive(Debug)]
pub struct tc_bytes {
    /// The first byte; never NULL in a buffer the library returned.
    pub data: *const u8,
    /// The number of bytes, not counting the NUL that follows them.
    pub len: usize,
}

impl tc_bytes {
    /// Hands `text` to C, NUL-terminated.
    pub(crate) fn from_string(text: String) -> tc_bytes {
        let mut bytes = text.into_bytes();
        bytes.push(0);
        let len = bytes.len() - 1;
        let data: *mut [u8] = Box::into_raw(bytes.into_boxed_slice());
        tc_bytes { data: data.cast::<u8>(), len }
    }

    /// The bytes, for tests.
    ///
    /// # Safety
    /// `self` came from the library and has not been freed.
    pub unsafe fn as_slice(&self) -> &[u8] {
        if self.data.is_null() {
            return &[];
        }
        // SAFETY: the library allocated `len + 1` bytes at `data` (see `from_string`).
        unsafe { std::slice::from_raw_parts(self.data, self.len) }
    }
}

/// Releases a buffer the library returned and resets `*bytes` to `{NULL, 0}`, so a
/// second call on the same variable is a harmless no-op. `bytes == NULL` and a
/// `{NULL, 0}` buffer are no-ops too.
///
/// # Safety
/// `bytes` must be NULL or point to a `tc_bytes` that is `{NULL, 0}` or was written by
/// this library and not yet freed (copies of it must not be freed or read afterwards).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_bytes_free(bytes: *mut tc_bytes) {
    ffi_panic_boundary! {
        // SAFETY: the caller passes NULL or a valid, exclusively held `tc_bytes`.
        let Some(bytes) = (unsafe { bytes.as_mut() }) else {
            return;
        };
        if bytes.data.is_null() {
            return;
        }
        let whole = ptr::slice_from_raw_parts_mut(bytes.data.cast_mut(), bytes.len + 1);
        // SAFETY: a non-NULL `data` came from `from_string`: a boxed slice of exactly
        // `len + 1` bytes, freed here once (the caller's promise).
        drop(unsafe { Box::from_raw(whole) });
        *bytes = tc_bytes { data: ptr::null(), len: 0 };
    }
}

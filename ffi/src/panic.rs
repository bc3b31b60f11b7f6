//! The panic boundary: no unwind ever crosses into C.
//!
//! Every exported body runs inside [`ffi_panic_boundary!`]. A panic (always a bug) is
//! caught there, recorded as this thread's last error, and turned into
//! `TC_RESULT_PANIC` or, for functions that return no `tc_result`, a harmless default.

use std::any::Any;
use std::ffi::c_char;
use std::ptr;

use crate::result::{Failure, tc_result};

/// The value an exported function returns when its body panicked.
pub(crate) trait PanicOrDefault {
    fn value() -> Self;
}

impl PanicOrDefault for tc_result {
    fn value() -> Self {
        tc_result::Panic
    }
}

impl PanicOrDefault for () {
    fn value() -> Self {}
}

impl PanicOrDefault for *const c_char {
    fn value() -> Self {
        ptr::null()
    }
}

/// Records a caught panic as this thread's last error.
pub(crate) fn record_panic(payload: Box<dyn Any + Send>) {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string payload".to_owned());
    Failure::new(tc_result::Panic, format_args!("panic in tokencache (a bug, please report it): {what}")).record();
}

/// Runs an exported function's body, catching any panic. `return` inside the body
/// returns from the body, so the `try_*!` macros' early returns work inside it.
macro_rules! ffi_panic_boundary {
    ($($body:tt)*) => {
        // AssertUnwindSafe: after a panic the caller gets TC_RESULT_PANIC and the
        // handles stay memory-safe (core's locks don't poison and hold no broken
        // invariants across user code); nothing here observes a half-done update.
        match ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(|| { $($body)* })) {
            Ok(value) => value,
            Err(payload) => {
                $crate::panic::record_panic(payload);
                $crate::panic::PanicOrDefault::value()
            }
        }
    };
}
pub(crate) use ffi_panic_boundary;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bytes::tc_bytes;

    fn panicking() -> tc_result {
        ffi_panic_boundary! {
            let items: Vec<u8> = Vec::new();
            if items.is_empty() {
                panic!("an index out of range in the body");
            }
            tc_result::Ok
        }
    }

    fn panicking_void() {
        ffi_panic_boundary! { panic!("in a function without a result") }
    }

    #[test]
    fn a_panic_becomes_a_code_and_a_message_not_an_unwind() {
        assert_eq!(panicking(), tc_result::Panic);
        let mut message = tc_bytes { data: ptr::null(), len: 0 };
        // SAFETY: a valid out-pointer; the buffer is freed once below.
        unsafe {
            assert_eq!(crate::tc_last_error_message(&mut message), tc_result::Ok);
            let text = std::str::from_utf8(message.as_slice()).unwrap().to_owned();
            crate::tc_bytes_free(&mut message);
            assert!(text.contains("panic in tokencache") && text.contains("index out of range"), "{text}");
        }
        panicking_void();
    }
}

//! Before/after-access callbacks: C function pointers behind core's `AccessObserver`.

use std::ffi::{c_char, c_void};
use std::ptr;
use std::sync::Arc;

use tokencache_core::{AccessEvent, AccessObserver, Operation};

use crate::arguments::tc_credential_type;
use crate::cache::tc_cache;
use crate::handle::try_ref_from_ptr;
use crate::panic::ffi_panic_boundary;
use crate::result::tc_result;

/// Which cache operation an access notification is about.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum tc_operation {
    /// An operation this header does not know yet (from a newer library).
    Other = 0,
    /// `tc_cache_add_event`.
    Add = 1,
    /// `tc_cache_search`.
    Search = 2,
    /// `tc_cache_modify` and the `tc_cache_remove_*` / `tc_cache_update_rt` calls.
    Modify = 3,
    /// `tc_cache_serialize` and `tc_cache_serialize_partition`.
    Serialize = 4,
    /// `tc_cache_deserialize` and `tc_cache_deserialize_partition`.
    Deserialize = 5,
}

impl From<Operation> for tc_operation {
    fn from(op: Operation) -> Self {
        match op {
            Operation::Add => tc_operation::Add,
            Operation::Search => tc_operation::Search,
            Operation::Modify => tc_operation::Modify,
            Operation::Serialize => tc_operation::Serialize,
            Operation::Deserialize => tc_operation::Deserialize,
        }
    }
}

/// What an access callback is told. Holds no token values. Valid only during the
/// callback: copy what you need to keep.
#[repr(C)]
#[derive(Debug)]
pub struct tc_access_event {
    /// The operation.
    pub operation: tc_operation,
    /// Whether `credential_type` is set (searches and modifications have one).
    pub has_credential_type: bool,
    /// The section the operation concerns, when `has_credential_type`.
    pub credential_type: tc_credential_type,
    /// The partition the operation concerns (NUL-terminated), or NULL when it can't be
    /// told.
    pub partition_key: *const c_char,
    /// The length of `partition_key` without its NUL; 0 when it is NULL.
    pub partition_key_len: usize,
    /// The cache's changed flag at the time of the notification: after a write, the
    /// signal to save the partition.
    pub has_state_changed: bool,
    /// After a write: how long a store should keep the partition (Unix seconds); 0 for
    /// no suggestion.
    pub suggested_expiry: i64,
}

/// A before- or after-access callback. `user_data` is the pointer given to
/// `tc_cache_set_access_callbacks`; `event` is valid only during the call.
///
/// The callback runs on the thread that called into the cache, with no lock held, so it
/// may call any `tc_cache_*` function, on this cache too (except `tc_cache_free`). It
/// must not unwind (throw a C++ exception or `longjmp`) out of the call.
pub type tc_access_callback = Option<unsafe extern "C" fn(user_data: *mut c_void, event: *const tc_access_event)>;

/// The caller's `user_data`, which it promised may be used from any thread.
#[derive(Clone, Copy)]
struct UserData(*mut c_void);

// SAFETY: `tc_cache_set_access_callbacks` documents that the callbacks and `user_data`
// are called from whichever threads use the cache; the caller takes that on.
unsafe impl Send for UserData {}
// SAFETY: as for `Send`: sharing is the caller's documented responsibility.
unsafe impl Sync for UserData {}

struct CallbackObserver {
    before: tc_access_callback,
    after: tc_access_callback,
    user_data: UserData,
}

impl CallbackObserver {
    fn call(&self, callback: tc_access_callback, event: &AccessEvent) {
        let Some(callback) = callback else {
            return;
        };
        let key: Option<Vec<u8>> = event.partition_key.as_ref().map(|k| {
            let mut bytes = Vec::with_capacity(k.len() + 1);
            bytes.extend_from_slice(k.as_bytes());
            bytes.push(0);
            bytes
        });
        let c_event = tc_access_event {
            operation: event.operation.into(),
            has_credential_type: event.credential_type.is_some(),
            credential_type: event.credential_type.map_or(tc_credential_type::AccessToken, Into::into),
            partition_key: key.as_ref().map_or(ptr::null(), |k| k.as_ptr().cast()),
            partition_key_len: key.as_ref().map_or(0, |k| k.len() - 1),
            has_state_changed: event.has_state_changed,
            suggested_expiry: event.suggested_expiry.unwrap_or(0),
        };
        // SAFETY: the caller registered a function with this signature; `c_event` and
        // the key it points into live until the call returns.
        unsafe { callback(self.user_data.0, &c_event) }
    }
}

impl AccessObserver for CallbackObserver {
    fn before_access(&self, event: &AccessEvent) {
        self.call(self.before, event);
    }
    fn after_access(&self, event: &AccessEvent) {
        self.call(self.after, event);
    }
}

/// Installs before/after-access callbacks on the cache, replacing any installed before;
/// `before` and `after` both NULL removes them. Either may be NULL alone.
///
/// `before` runs before the cache is read or written (the place to load a partition
/// from a store), `after` after it was (the place to save a partition when
/// `has_state_changed`). Both run on the calling thread with no lock held and may call
/// back into the library.
///
/// `user_data` is passed to the callbacks as is; the library does not own it. It must
/// stay valid, and usable from every thread that uses the cache, until the callbacks are
/// replaced or the cache is freed. Calls already running on other threads may still use
/// the previous callbacks briefly after this returns.
///
/// # Safety
/// `cache` must be NULL or a live cache; non-NULL callbacks must be functions of the
/// `tc_access_callback` signature, safe to call from any thread with `user_data`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_cache_set_access_callbacks(
    cache: *const tc_cache,
    before: tc_access_callback,
    after: tc_access_callback,
    user_data: *mut c_void,
) -> tc_result {
    ffi_panic_boundary! {
        let cache = try_ref_from_ptr!(cache);
        let observer: Option<Arc<dyn AccessObserver>> = match (before, after) {
            (None, None) => None,
            _ => Some(Arc::new(CallbackObserver { before, after, user_data: UserData(user_data) })),
        };
        cache.memory().set_observer(observer);
        tc_result::Ok
    }
}

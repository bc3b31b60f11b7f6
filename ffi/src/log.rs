//! The log callback: core logs through the `log` facade; this module installs a
//! `log::Log` that forwards each record to the C callback.

use std::cell::Cell;
use std::ffi::{c_char, c_void};
use std::sync::{OnceLock, RwLock};

use crate::panic::ffi_panic_boundary;
use crate::result::{Failure, tc_result};

/// How important a log message is. The callback's `level` is one of these; the
/// `max_level` argument of `tc_set_log_callback` takes one as a `uint32_t`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum tc_log_level {
    /// Something failed.
    Error = 1,
    /// Something unexpected that the library handled.
    Warn = 2,
    /// Noteworthy events.
    Info = 3,
    /// Detail for debugging (evictions, for example).
    Debug = 4,
    /// Even more detail.
    Trace = 5,
}

/// A log callback. `user_data` is the pointer given to `tc_set_log_callback`;
/// `message` is NUL-terminated UTF-8 of `message_len` bytes, valid only during the call.
/// Messages never hold token values.
///
/// It may be called from any thread, from several at once. It may call into the
/// library; messages logged while it runs on the same thread are dropped rather than
/// delivered recursively. It must not unwind (throw or `longjmp`) out of the call.
pub type tc_log_callback = Option<
    unsafe extern "C" fn(user_data: *mut c_void, level: tc_log_level, message: *const c_char, message_len: usize),
>;

#[derive(Clone, Copy)]
struct Sink {
    callback: unsafe extern "C" fn(*mut c_void, tc_log_level, *const c_char, usize),
    user_data: *mut c_void,
}

// SAFETY: `tc_set_log_callback` documents that the callback and `user_data` are used
// from any thread; the caller takes that on.
unsafe impl Send for Sink {}
// SAFETY: as for `Send`.
unsafe impl Sync for Sink {}

static SINK: RwLock<Option<Sink>> = RwLock::new(None);

thread_local! {
    static IN_CALLBACK: Cell<bool> = const { Cell::new(false) };
}

struct Forwarder;

static FORWARDER: Forwarder = Forwarder;

impl log::Log for Forwarder {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        // Also skipped when the thread is being torn down (the flag is gone).
        if !self.enabled(record.metadata()) || IN_CALLBACK.try_with(Cell::get).unwrap_or(true) {
            return;
        }
        // Copy the sink out so no lock is held while the callback runs (it may
        // replace the callback).
        let Some(sink) = *SINK.read().unwrap_or_else(|e| e.into_inner()) else {
            return;
        };
        let level = match record.level() {
            log::Level::Error => tc_log_level::Error,
            log::Level::Warn => tc_log_level::Warn,
            log::Level::Info => tc_log_level::Info,
            log::Level::Debug => tc_log_level::Debug,
            log::Level::Trace => tc_log_level::Trace,
        };
        let mut message = record.args().to_string();
        let len = message.len();
        message.push('\0');
        let _ = IN_CALLBACK.try_with(|c| c.set(true));
        // SAFETY: the caller registered a function of this signature; `message` is
        // NUL-terminated and lives until the call returns.
        unsafe { (sink.callback)(sink.user_data, level, message.as_ptr().cast(), len) };
        let _ = IN_CALLBACK.try_with(|c| c.set(false));
    }

    fn flush(&self) {}
}

fn level_filter(max_level: u32) -> Result<log::LevelFilter, Failure> {
    Ok(match max_level {
        1 => log::LevelFilter::Error,
        2 => log::LevelFilter::Warn,
        3 => log::LevelFilter::Info,
        4 => log::LevelFilter::Debug,
        5 => log::LevelFilter::Trace,
        _ => {
            return Err(Failure::new(
                tc_result::InvalidEnum,
                format_args!("`max_level` = {max_level} is not a tc_log_level"),
            ));
        }
    })
}

/// Sends the library's log messages at `max_level` (a `tc_log_level`) and more important
/// ones to `callback`, replacing any callback set before; NULL `callback` turns logging
/// off (`max_level` is then ignored).
///
/// The setting is process-wide. `user_data` is passed to the callback as is; the library
/// does not own it, and it must stay valid and usable from any thread until the callback
/// is replaced. Returns `TC_RESULT_LOGGER_UNAVAILABLE` when a Rust program linking this
/// library installed its own `log` logger.
///
/// # Safety
/// A non-NULL `callback` must be a function of the `tc_log_callback` signature, safe to
/// call from any thread with `user_data`. Any thread may call this.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tc_set_log_callback(
    callback: tc_log_callback,
    user_data: *mut c_void,
    max_level: u32,
) -> tc_result {
    ffi_panic_boundary! {
        let filter = match callback {
            Some(_) => crate::result::try_result!(level_filter(max_level)),
            None => log::LevelFilter::Off,
        };
        static INSTALLED: OnceLock<bool> = OnceLock::new();
        if !*INSTALLED.get_or_init(|| log::set_logger(&FORWARDER).is_ok()) {
            return Failure::new(tc_result::LoggerUnavailable, "another `log` logger is installed in this process")
                .record();
        }
        *SINK.write().unwrap_or_else(|e| e.into_inner()) =
            callback.map(|callback| Sink { callback, user_data });
        log::set_max_level(filter);
        tc_result::Ok
    }
}

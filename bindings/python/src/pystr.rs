//! Python `str`s beyond what pyo3's abi3-py39 bindings offer: borrowing a str's UTF-8
//! text without a copy, and making a large ASCII str by writing its characters in
//! place. Both go through CPython functions only, no struct layout.

use pyo3::prelude::*;
use pyo3::types::PyString;

/// The UTF-8 text of a `str`, borrowed from the object: an ASCII `str` (what msal's
/// `serialize` and ours write) is its own UTF-8, so a document of hundreds of MB is
/// neither copied nor validated again; another `str` gets its UTF-8 form cached in it.
pub(crate) fn str_utf8<'a>(text: &'a Bound<'_, PyString>) -> PyResult<&'a str> {
    let mut len: pyo3::ffi::Py_ssize_t = 0;
    // SAFETY: `text` is a live `str` and the GIL is held (a `Bound`); `len` is valid
    // for a write.
    let ptr = unsafe { PyUnicode_AsUTF8AndSize(text.as_ptr(), &mut len) };
    if ptr.is_null() {
        // A lone surrogate: not encodable, as `str.encode()` would say.
        return Err(PyErr::fetch(text.py()));
    }
    // SAFETY: CPython returns `len` bytes of valid UTF-8 kept in (or being) the str's
    // own buffer, which lives as long as the object, borrowed here for `'a`.
    Ok(unsafe { std::str::from_utf8_unchecked(std::slice::from_raw_parts(ptr.cast::<u8>(), len as usize)) })
}

// In every CPython 3 but outside pyo3's abi3-py39 bindings (PyUnicode_New is not in
// the limited API; PyUnicode_AsUTF8AndSize is only from 3.10): declared here,
// resolved from the interpreter at load. Functions only: no struct layout is assumed.
unsafe extern "C" {
    fn PyUnicode_New(size: pyo3::ffi::Py_ssize_t, maxchar: pyo3::ffi::Py_UCS4) -> *mut pyo3::ffi::PyObject;
    fn PyUnicode_AsUTF8AndSize(
        unicode: *mut pyo3::ffi::PyObject,
        size: *mut pyo3::ffi::Py_ssize_t,
    ) -> *const std::ffi::c_char;
}

/// The characters of a new, unshared ASCII str: an ASCII str's UTF-8 form is its own
/// character buffer, so `PyUnicode_AsUTF8AndSize` points at it. `None` when that does
/// not hold here.
fn ascii_chars(s: &Bound<'_, PyString>, len: usize) -> Option<*mut u8> {
    let mut n: pyo3::ffi::Py_ssize_t = 0;
    // SAFETY: `s` is a live str and the GIL is held; `n` is valid for a write.
    let ptr = unsafe { PyUnicode_AsUTF8AndSize(s.as_ptr(), &mut n) };
    (!ptr.is_null() && n as usize == len).then_some(ptr.cast::<u8>().cast_mut())
}

/// Whether writing through [`ascii_chars`] changes the str itself (checked once, on a
/// small str, with the str's own `PyUnicode_ReadChar`).
fn ascii_chars_are_writable(py: Python<'_>) -> bool {
    static WRITABLE: pyo3::sync::PyOnceLock<bool> = pyo3::sync::PyOnceLock::new();
    *WRITABLE.get_or_init(py, || {
        let probe = |py: Python<'_>| -> Option<bool> {
            // SAFETY: the GIL is held; a new reference (or NULL) is returned.
            let raw = unsafe { PyUnicode_New(2, 127) };
            // SAFETY: `raw` is a new reference or NULL (an error is then set).
            let s = unsafe { Bound::from_owned_ptr_or_err(py, raw) }.ok()?.cast_into::<PyString>().ok()?;
            let ptr = ascii_chars(&s, 2)?;
            for pair in [*b"ab", *b"yz"] {
                // SAFETY: `ptr` points at 2 bytes of the str no one else has seen.
                unsafe { std::ptr::copy_nonoverlapping(pair.as_ptr(), ptr, 2) };
                for (i, c) in pair.iter().enumerate() {
                    // SAFETY: `s` is a live str of length 2, the GIL is held.
                    if unsafe { pyo3::ffi::PyUnicode_ReadChar(s.as_ptr(), i as pyo3::ffi::Py_ssize_t) } != u32::from(*c)
                    {
                        return Some(false);
                    }
                }
            }
            Some(true)
        };
        let ok = probe(py).unwrap_or(false);
        // A failed probe may have left an exception set; it is not the caller's.
        let _ = PyErr::take(py);
        ok
    })
}

/// A new str, not yet filled: its characters must all be written, with ASCII, before
/// [`filled`](Self::filled) hands it out.
pub(crate) struct UnfilledAsciiStr {
    text: Py<PyString>,
    chars: *mut u8,
    len: usize,
    /// Faulting in the back of a large str's pages while the front is written.
    prefault: Option<std::thread::JoinHandle<()>>,
}

/// From this size on, a second thread faults in the back of a new str's pages while
/// the text is written into the front: on a fresh allocation the kernel zeroing its
/// pages is most of the cost of writing a large document, and it runs on the other
/// core meanwhile.
const PREFAULT_FROM: usize = 16 << 20;

/// Linux 5.14's `MADV_POPULATE_WRITE`: map the pages writable as a write would,
/// without changing what they hold (so the writer may be ahead of it: no race).
#[cfg(target_os = "linux")]
fn prefault_back(chars: *mut u8, len: usize) -> Option<std::thread::JoinHandle<()>> {
    const MADV_POPULATE_WRITE: std::ffi::c_int = 23;
    const PAGE: usize = 4096;
    const CHUNK: usize = 4 << 20;
    unsafe extern "C" {
        fn madvise(addr: *mut std::ffi::c_void, len: usize, advice: std::ffi::c_int) -> std::ffi::c_int;
    }
    if len < PREFAULT_FROM {
        return None;
    }
    // The back 60%: the writer fills the front meanwhile, then runs into ready pages.
    let start = (chars as usize + len * 2 / 5).next_multiple_of(PAGE);
    let end = (chars as usize + len) / PAGE * PAGE;
    std::thread::Builder::new()
        .name("tokencache-prefault".into())
        .spawn(move || {
            let mut at = start;
            while at < end {
                let n = CHUNK.min(end - at);
                // SAFETY: [at, at + n) is whole pages inside the str's buffer, which
                // lives until this thread is joined; POPULATE_WRITE changes no byte.
                if unsafe { madvise(at as *mut std::ffi::c_void, n, MADV_POPULATE_WRITE) } != 0 {
                    return; // an older kernel (EINVAL): the writer faults them itself
                }
                at += n;
            }
        })
        .ok()
}

#[cfg(not(target_os = "linux"))]
fn prefault_back(_chars: *mut u8, _len: usize) -> Option<std::thread::JoinHandle<()>> {
    None
}

// SAFETY: the str is reachable only through this value until `filled`, so writing its
// characters from another thread races with nothing; dropping it (a decref) is
// Py's own business, which is Send.
unsafe impl Send for UnfilledAsciiStr {}

impl UnfilledAsciiStr {
    /// A str of `len` characters; `None` when this interpreter does not allow
    /// writing one (then copy a `String`).
    pub(crate) fn new(py: Python<'_>, len: usize) -> PyResult<Option<Self>> {
        // Length 0 and 1 strs are shared singletons: never written into.
        if len < 2 || len > isize::MAX as usize || !ascii_chars_are_writable(py) {
            return Ok(None);
        }
        // SAFETY: the GIL is held; a new reference (or NULL with MemoryError set).
        let raw = unsafe { PyUnicode_New(len as pyo3::ffi::Py_ssize_t, 127) };
        // SAFETY: `raw` is a new reference or NULL.
        let text = unsafe { Bound::from_owned_ptr_or_err(py, raw) }?.cast_into::<PyString>()?;
        Ok(ascii_chars(&text, len).map(|chars| UnfilledAsciiStr {
            text: text.unbind(),
            chars,
            len,
            prefault: prefault_back(chars, len),
        }))
    }

    /// The str, once every character was written with ASCII.
    pub(crate) fn filled(mut self, py: Python<'_>) -> Bound<'_, PyString> {
        self.join_prefault();
        self.text.clone_ref(py).into_bound(py)
    }

    fn join_prefault(&mut self) {
        if let Some(t) = self.prefault.take() {
            let _ = t.join();
        }
    }
}

impl Drop for UnfilledAsciiStr {
    fn drop(&mut self) {
        // Not before the str's buffer may go.
        self.join_prefault();
    }
}

impl AsMut<[u8]> for UnfilledAsciiStr {
    fn as_mut(&mut self) -> &mut [u8] {
        // SAFETY: `chars` points at the `len` one-byte characters of `text`, which
        // lives as long as `self` and which no one else has seen yet.
        unsafe { std::slice::from_raw_parts_mut(self.chars, self.len) }
    }
}

//! Core errors as Python exceptions: one class per [`ErrorKind`], defined in
//! `tokencache/_errors.py` (where each also derives from the built-in exception msal
//! raises for the same bad input, so `except ValueError:` keeps working).

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;
use tokencache::{Error, ErrorKind};

/// The exception class of each kind, by name in `tokencache._errors`. The match is
/// exhaustive: a new kind in the core fails to compile here until it has a class.
fn class_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidJson => "InvalidJsonError",
        ErrorKind::NotACache => "NotACacheError",
        ErrorKind::InvalidEvent => "InvalidEventError",
        ErrorKind::InvalidEntry => "InvalidEntryError",
        ErrorKind::InvalidArgument => "InvalidArgumentError",
        ErrorKind::Io => "IoError",
        ErrorKind::LockTimeout => "LockTimeoutError",
        ErrorKind::Corrupt => "CorruptError",
        ErrorKind::KeyMismatch => "KeyMismatchError",
        ErrorKind::DecryptionFailed => "DecryptionFailedError",
        ErrorKind::StoreUnavailable => "StoreUnavailableError",
    }
}

static ERRORS_MODULE: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

fn class<'py>(py: Python<'py>, kind: ErrorKind) -> PyResult<Bound<'py, PyType>> {
    let module = ERRORS_MODULE.get_or_try_init(py, || py.import("tokencache._errors").map(Bound::unbind))?;
    Ok(module.bind(py).getattr(class_name(kind))?.cast_into::<PyType>()?)
}

/// The Python exception for a core error. `text` is the document a JSON error is
/// about (to give `JSONDecodeError`'s `pos`); it never goes into the exception.
pub(crate) fn to_py_err(py: Python<'_>, e: Error, text: Option<&str>) -> PyErr {
    let make = || -> PyResult<PyErr> {
        let cls = class(py, e.kind())?;
        let exc = match (e.kind(), e.position()) {
            (ErrorKind::InvalidJson, Some((line, column))) => {
                let pos = text.map_or(0, |t| char_offset(t, line, column));
                cls.call1((e.message(), line, column, pos))?
            }
            _ => cls.call1((e.message(),))?,
        };
        Ok(PyErr::from_value(exc))
    };
    make().unwrap_or_else(|err| err)
}

/// The character offset of a 1-based line and column (columns count characters).
fn char_offset(text: &str, line: usize, column: usize) -> usize {
    let mut chars = 0;
    for (i, l) in text.split('\n').enumerate() {
        if i + 1 == line {
            return chars + column.saturating_sub(1);
        }
        chars += l.chars().count() + 1;
    }
    chars
}

/// `tokencache.InvalidArgumentError` (a `ValueError`) for a bad option value the
/// binding checks itself, before any core call.
pub(crate) fn invalid_argument(py: Python<'_>, message: impl Into<String>) -> PyErr {
    let message = message.into();
    let make = || -> PyResult<PyErr> {
        Ok(PyErr::from_value(class(py, ErrorKind::InvalidArgument)?.call1((message.as_str(),))?))
    };
    make().unwrap_or_else(|err| err)
}

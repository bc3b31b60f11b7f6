//! Before/after-access observers in Python: `cache.set_observer(observer)` on a
//! `TokenCache` or `SerializableTokenCache` installs a core [`AccessObserver`] that
//! calls the observer's `before_access(event)` / `after_access(event)` with an
//! `AccessEvent` (operation, credential type, partition key, `has_state_changed`,
//! suggested expiry; never a token value).
//!
//! The core calls observers on the thread of the cache call, with no cache lock
//! held and (here) the GIL released, so the observer takes the GIL itself and may
//! call back into the cache. An exception raised by an observer cannot undo the
//! operation it observes, which has completed (after) or is about to run (before):
//! it is logged on the `tokencache` logger at ERROR with its traceback, and the
//! cache call goes on. The exception is not re-raised.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyDict;
use tokencache::{AccessEvent, AccessObserver, Operation};

use crate::cache::TokenCacheCore;

/// What an observer is told about one cache call. Holds no token values.
#[pyclass(module = "tokencache._tokencache", name = "AccessEvent", frozen, get_all)]
pub(crate) struct AccessEventPy {
    /// `"add"`, `"search"`, `"modify"`, `"serialize"` or `"deserialize"`.
    operation: &'static str,
    /// The section concerned (`"AccessToken"`, ...), when there is one.
    credential_type: Option<&'static str>,
    /// The partition concerned, when it can be told (a home account id, or
    /// `{client_id}_{tenant}_AppTokenCache` for app tokens).
    partition_key: Option<String>,
    /// Before: the cache's changed flag. After: whether this call changed the cache.
    has_state_changed: bool,
    /// After a change: how long a store should keep the partition (Unix seconds).
    suggested_expiry: Option<i64>,
}

fn operation_name(op: Operation) -> &'static str {
    match op {
        Operation::Add => "add",
        Operation::Search => "search",
        Operation::Modify => "modify",
        Operation::Serialize => "serialize",
        Operation::Deserialize => "deserialize",
    }
}

#[pymethods]
impl AccessEventPy {
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let r = |v: Bound<'_, PyAny>| -> PyResult<String> { Ok(v.repr()?.to_cow()?.into_owned()) };
        Ok(format!(
            "AccessEvent(operation={}, credential_type={}, partition_key={}, has_state_changed={}, suggested_expiry={})",
            r(self.operation.into_pyobject(py)?.into_any())?,
            r(self.credential_type.into_pyobject(py)?.into_any())?,
            r(self.partition_key.as_deref().into_pyobject(py)?.into_any())?,
            if self.has_state_changed { "True" } else { "False" },
            r(self.suggested_expiry.into_pyobject(py)?.into_any())?,
        ))
    }
}

/// The Python callables of one observer.
struct PyObserver {
    before: Option<Py<PyAny>>,
    after: Option<Py<PyAny>>,
}

impl PyObserver {
    fn call(&self, which: &str, callback: Option<&Py<PyAny>>, e: &AccessEvent) {
        let Some(callback) = callback else { return };
        // None: the interpreter is shutting down; nothing to tell.
        Python::try_attach(|py| {
            let event = AccessEventPy {
                operation: operation_name(e.operation),
                credential_type: e.credential_type.map(|c| c.as_str()),
                partition_key: e.partition_key.clone(),
                has_state_changed: e.has_state_changed,
                suggested_expiry: e.suggested_expiry,
            };
            let result = Py::new(py, event).and_then(|ev| callback.bind(py).call1((ev,)));
            if let Err(err) = result {
                report(py, which, err);
            }
        });
    }
}

/// Logs an observer's exception on the `tokencache` logger (ERROR, with traceback).
fn report(py: Python<'_>, which: &str, err: PyErr) {
    let logged = (|| -> PyResult<()> {
        let logger = py.import("logging")?.call_method1("getLogger", ("tokencache",))?;
        let kwargs = PyDict::new(py);
        kwargs.set_item("exc_info", err.value(py))?;
        logger.call_method(
            "error",
            ("tokencache: the access observer's %s raised; the cache call went on unaffected", which),
            Some(&kwargs),
        )?;
        Ok(())
    })();
    if let Err(e) = logged {
        // Logging itself failed: fall back to the unraisable hook with the original error.
        e.write_unraisable(py, None);
    }
}

impl AccessObserver for PyObserver {
    fn before_access(&self, event: &AccessEvent) {
        self.call("before_access", self.before.as_ref(), event);
    }

    fn after_access(&self, event: &AccessEvent) {
        self.call("after_access", self.after.as_ref(), event);
    }
}

/// Installs `before` / `after` (callables taking an `AccessEvent`, either may be
/// `None`) as `cache`'s observer, replacing any; both `None` removes it.
#[pyfunction]
#[pyo3(signature = (cache, before, after))]
pub(crate) fn _set_access_observer(
    cache: &Bound<'_, TokenCacheCore>,
    before: Option<Py<PyAny>>,
    after: Option<Py<PyAny>>,
) {
    let observer: Option<Arc<dyn AccessObserver>> = match (before, after) {
        (None, None) => None,
        (before, after) => Some(Arc::new(PyObserver { before, after })),
    };
    cache.get().inner.set_observer(observer);
}

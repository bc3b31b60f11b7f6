//! The native half of `tokencache.Refresher`: the core's [`RefreshWatcher`] (which
//! tokens became due since the last poll). The thread, the user's callback and the
//! clock are Python (`python/tokencache/_refresh.py`).

use std::sync::Arc;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use tokencache::{DueToken, PersistedTokenCache, RefreshWatcher, TokenCache};

use crate::cache::TokenCacheCore;
use crate::convert::{entry_to_dict, to_entry, to_now};
use crate::errors::to_py_err;
use crate::persisted::PersistedTokenCacheCore;

enum Watched {
    Memory(Arc<TokenCache>),
    File(Arc<PersistedTokenCache>),
}

/// Reports each access token of a cache once when it becomes due for renewal.
#[pyclass(module = "tokencache._tokencache", name = "RefreshWatcher", subclass, frozen)]
pub(crate) struct RefreshWatcherCore {
    watcher: RefreshWatcher,
    cache: Watched,
}

fn due_to_dict<'py>(py: Python<'py>, t: &DueToken) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("entry", entry_to_dict(py, &t.entry)?)?;
    d.set_item("expires_on", t.expires_on)?;
    d.set_item("expired", t.expired)?;
    Ok(d)
}

#[pymethods]
impl RefreshWatcherCore {
    #[new]
    #[pyo3(signature = (cache, horizon=300))]
    fn new(cache: &Bound<'_, PyAny>, horizon: i64) -> PyResult<Self> {
        let cache = if let Ok(c) = cache.cast::<TokenCacheCore>() {
            Watched::Memory(Arc::clone(&c.get().inner))
        } else if let Ok(c) = cache.cast::<PersistedTokenCacheCore>() {
            Watched::File(Arc::clone(&c.get().inner))
        } else {
            return Err(PyTypeError::new_err(
                "tokencache: RefreshWatcher needs a tokencache TokenCache, SerializableTokenCache or PersistedTokenCache",
            ));
        };
        Ok(RefreshWatcherCore { watcher: RefreshWatcher::new(horizon), cache })
    }

    /// The horizon in seconds.
    #[getter]
    fn horizon(&self) -> i64 {
        self.watcher.horizon_secs()
    }

    /// The tokens due at `now` (Unix seconds; None: the wall clock) that no earlier
    /// poll returned, as dicts {"entry", "expires_on", "expired"}. A persisted cache
    /// is re-read first if another process changed its file.
    #[pyo3(signature = (now=None))]
    fn poll<'py>(&self, py: Python<'py>, now: Option<&Bound<'py, PyAny>>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let now = to_now(now)?;
        let due = py
            .detach(|| match &self.cache {
                Watched::Memory(c) => Ok(self.watcher.poll(c, now)),
                Watched::File(p) => p.reload().map(|()| self.watcher.poll(p.cache(), now)),
            })
            .map_err(|e| to_py_err(py, e, None))?;
        due.iter().map(|t| due_to_dict(py, t)).collect()
    }

    /// Reports the token of `due` (a dict `poll` returned) again at the next poll.
    fn retry(&self, due: &Bound<'_, PyDict>) -> PyResult<()> {
        let entry =
            due.get_item("entry")?.ok_or_else(|| PyTypeError::new_err("tokencache: retry needs poll()'s dict"))?;
        let expires_on = due.get_item("expires_on")?.map(|v| v.extract::<Option<i64>>()).transpose()?.flatten();
        let expired = due.get_item("expired")?.map(|v| v.extract::<bool>()).transpose()?.unwrap_or(false);
        self.watcher.retry(&DueToken { entry: to_entry(&entry, "entry")?, expires_on, expired });
        Ok(())
    }
}

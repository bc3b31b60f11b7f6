//! What `search()` returns: an iterator with msal's generator semantics.
//!
//! msal's `search` is a generator: nothing runs until the first `next()`, and the
//! expired access tokens it meets are removed only when the caller reads past the
//! last result. msal's applications stop at the first hit, so a lookup that finds
//! its token never evicts (and never sets `has_state_changed`). This iterator does
//! the same: the core search runs (GIL released) at the first `next()`, without
//! evicting, and `remove_expired_access_tokens` runs only at exhaustion.
//!
//! Unlike msal's generator, which holds the cache's lock while it is suspended,
//! this one works on a snapshot taken at the first `next()`: other threads are
//! never blocked by an abandoned iterator, and changing the cache while iterating
//! is allowed.

use std::str::FromStr;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use tokencache::{CredentialType, Entry, TokenCache};

use crate::convert::{entry_to_dict, to_map, to_now, to_scopes};

enum State {
    /// Not started: the arguments as given.
    Pending {
        ct: Py<PyAny>,
        target: Option<Py<PyAny>>,
        query: Option<Py<PyAny>>,
        now: Option<Py<PyAny>>,
    },
    /// Started: the snapshot of results, and for access tokens the time to evict at.
    Running {
        entries: std::vec::IntoIter<Entry>,
        evict_at: Option<i64>,
    },
    Done,
}

/// Iterator over the entries a search matched, as dicts (see the module docs).
#[pyclass(module = "tokencache._tokencache")]
pub(crate) struct SearchResults {
    cache: Arc<TokenCache>,
    state: State,
}

impl SearchResults {
    pub(crate) fn new(
        cache: Arc<TokenCache>,
        ct: Bound<'_, PyAny>,
        target: Option<Bound<'_, PyAny>>,
        query: Option<Bound<'_, PyAny>>,
        now: Option<Bound<'_, PyAny>>,
    ) -> Self {
        let state = State::Pending {
            ct: ct.unbind(),
            target: target.map(Bound::unbind),
            query: query.map(Bound::unbind),
            now: now.map(Bound::unbind),
        };
        SearchResults { cache, state }
    }

    fn start(&mut self, py: Python<'_>) -> PyResult<()> {
        let State::Pending { ct, target, query, now } = std::mem::replace(&mut self.state, State::Done) else {
            return Ok(());
        };
        // As msal: a credential type with no section in the cache matches nothing.
        let ct = match ct.bind(py).cast::<PyString>() {
            Ok(name) => CredentialType::from_str(&name.to_cow()?).ok(),
            Err(_) => None,
        };
        let Some(ct) = ct else { return Ok(()) };
        let scopes = to_scopes(target.as_ref().map(|t| t.bind(py)))?;
        let query = match query.as_ref().map(|q| q.bind(py)) {
            Some(q) if !q.is_none() && q.is_truthy()? => Some(to_map(q, "query")?),
            _ => None,
        };
        // One clock reading for the search and the eviction after it, as in msal.
        let now = to_now(now.as_ref().map(|n| n.bind(py)))?.unwrap_or_else(tokencache::unix_now);
        let cache = &self.cache;
        let entries = py.detach(|| {
            let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
            cache.search_keeping_expired(ct, &scopes, query.as_ref(), Some(now))
        });
        let evict_at = (ct == CredentialType::AccessToken).then_some(now);
        self.state = State::Running { entries: entries.into_iter(), evict_at };
        Ok(())
    }
}

#[pymethods]
impl SearchResults {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        if matches!(self.state, State::Pending { .. }) {
            self.start(py)?;
        }
        let State::Running { entries, evict_at } = &mut self.state else {
            return Ok(None);
        };
        if let Some(e) = entries.next() {
            return entry_to_dict(py, &e).map(Some);
        }
        let evict_at = *evict_at;
        self.state = State::Done;
        if let Some(now) = evict_at {
            let cache = &self.cache;
            py.detach(|| cache.remove_expired_access_tokens(Some(now)));
        }
        Ok(None)
    }

    /// Stops the iteration without evicting anything (as closing msal's generator).
    fn close(&mut self) {
        self.state = State::Done;
    }
}

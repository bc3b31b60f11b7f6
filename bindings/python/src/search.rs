//! What `search()` returns: an iterator with msal's generator semantics.
//!
//! msal's `search` is a generator: nothing runs until the first `next()`, and the
//! expired access tokens it meets are removed only when the caller reads past the
//! last result. msal's applications stop at the first hit, so a lookup that finds
//! its token never evicts (and never sets `has_state_changed`). This iterator does
//! the same: the core search runs (GIL released) at the first `next()`, without
//! evicting, and `remove_expired_access_tokens` runs only at exhaustion.
//!
//! An access-token search whose query names the key's fields (what
//! `acquire_token_silent` and `acquire_token_for_client` run) first looks up the key
//! alone, as msal's does, and hands that token out; the rest of the search runs only
//! if a second `next()` asks for it, and then leaves out the token already given
//! (msal's generator goes on scanning the same way).
//!
//! Unlike msal's generator, which holds the cache's lock while it is suspended,
//! this one works on a snapshot taken at the first `next()` (at the second, after a
//! key-path hit): other threads are never blocked by an abandoned iterator, and
//! changing the cache while iterating is allowed.

use std::str::FromStr;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use tokencache::{CredentialType, Entry, Map, TokenCache};

use crate::convert::{entry_to_dict, to_map, to_now, to_scopes};
use crate::pystr::str_utf8;

enum State {
    /// Not started: the arguments as given.
    Pending {
        ct: Py<PyAny>,
        target: Option<Py<PyAny>>,
        query: Option<Py<PyAny>>,
        now: Option<Py<PyAny>>,
    },
    /// The access token under the query's key was handed out, found by its key
    /// alone; the rest is searched for only if asked for.
    FirstGiven {
        preferred: Entry,
        scopes: Vec<String>,
        query: Map,
        now: i64,
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

    /// Runs the search; returns the first result when the key alone found it (the
    /// state is then `FirstGiven`).
    fn start(&mut self, py: Python<'_>) -> PyResult<Option<Entry>> {
        let State::Pending { ct, target, query, now } = std::mem::replace(&mut self.state, State::Done) else {
            return Ok(None);
        };
        // As msal: a credential type with no section in the cache matches nothing.
        let ct = match ct.bind(py).cast::<PyString>() {
            Ok(name) => CredentialType::from_str(str_utf8(name)?).ok(),
            Err(_) => None,
        };
        let Some(ct) = ct else { return Ok(None) };
        let scopes = to_scopes(target.as_ref().map(|t| t.bind(py)))?;
        let query = match query.as_ref().map(|q| q.bind(py)) {
            Some(q) if !q.is_none() && q.is_truthy()? => Some(to_map(q, "query")?),
            _ => None,
        };
        // One clock reading for the search and the eviction after it, as in msal.
        let now = to_now(now.as_ref().map(|n| n.bind(py)))?.unwrap_or_else(tokencache::unix_now);
        let cache = &self.cache;
        // msal's applications read the first access token and stop: when the key
        // finds it, that is all the work until (unless) more are asked for.
        if ct == CredentialType::AccessToken
            && let Some(q) = query
        {
            let first = py.detach(|| {
                let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
                cache.search_first_access_token(&scopes, &q)
            });
            if let Some(preferred) = first {
                self.state = State::FirstGiven { preferred: preferred.clone(), scopes, query: q, now };
                return Ok(Some(preferred));
            }
            self.run(py, ct, &scopes, Some(&q), now, None);
            return Ok(None);
        }
        self.run(py, ct, &scopes, query.as_ref(), now, None);
        Ok(None)
    }

    /// The whole search, without `given` (the first result already handed out).
    fn run(
        &mut self,
        py: Python<'_>,
        ct: CredentialType,
        scopes: &[String],
        query: Option<&Map>,
        now: i64,
        given: Option<&Entry>,
    ) {
        let cache = &self.cache;
        let entries = py.detach(|| {
            let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
            let mut entries = cache.search_keeping_expired(ct, &scopes, query, Some(now));
            if let Some(given) = given {
                entries.retain(|e| e != given);
            }
            entries
        });
        let evict_at = (ct == CredentialType::AccessToken).then_some(now);
        self.state = State::Running { entries: entries.into_iter(), evict_at };
    }
}

#[pymethods]
impl SearchResults {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        if matches!(self.state, State::Pending { .. })
            && let Some(first) = self.start(py)?
        {
            return entry_to_dict(py, &first).map(Some);
        }
        if let State::FirstGiven { .. } = self.state {
            let State::FirstGiven { preferred, scopes, query, now } = std::mem::replace(&mut self.state, State::Done)
            else {
                unreachable!("matched above")
            };
            self.run(py, CredentialType::AccessToken, &scopes, Some(&query), now, Some(&preferred));
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

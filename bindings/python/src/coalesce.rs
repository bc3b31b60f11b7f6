//! The native half of `tokencache.coalesced(app)`: `Coalescer`, the core's
//! [`tokencache::coalesce::Coalescer`] over Python values, and `LeaseStore`, a
//! handle on the core's lease stores (Redis, SQLite, memory) for coalescing across
//! processes.
//!
//! `get_or_fetch` runs with the GIL released: the core blocks waiters on a
//! condition variable, and the leader's `lookup` and `fetch` (Python callables)
//! take the GIL back only while they run. What a fetch returns reaches every caller
//! of its flight (the same object); what it raises is raised in each of them.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use tokencache::Error;
use tokencache::coalesce::{Coalescer, LeaseOptions};
use tokencache::store::{LeaseStore, MemoryLeases, RedisOptions, RedisStore, SqliteStore};

use crate::errors::to_py_err;

/// What a Python fetch or lookup failed with: the core's error (a timeout, a lease
/// store failure) or the Python exception itself, shared by the flight's callers.
#[derive(Clone)]
enum Failure {
    Core(Error),
    Python(Arc<PyErr>),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Core(e)
    }
}

impl Failure {
    fn into_py(self, py: Python<'_>) -> PyErr {
        match self {
            Failure::Core(e) => to_py_err(py, e, None),
            Failure::Python(e) => e.clone_ref(py),
        }
    }
}

type Value = Arc<Py<PyAny>>;

fn seconds(value: f64, name: &str) -> PyResult<Duration> {
    Duration::try_from_secs_f64(value)
        .map_err(|_| PyValueError::new_err(format!("tokencache: {name} must be a number of seconds >= 0")))
}

/// A store of short leases shared by processes: `LeaseStore.redis(url)`,
/// `LeaseStore.sqlite(path)` or `LeaseStore.memory()` (this process only).
#[pyclass(module = "tokencache._tokencache", name = "LeaseStore", frozen)]
pub(crate) struct LeaseStoreCore {
    inner: Arc<dyn LeaseStore>,
    what: String,
}

#[pymethods]
impl LeaseStoreCore {
    /// Leases in Redis (`SET key owner NX PX ttl`, released by compare-and-delete),
    /// under `<key_prefix>{lease:<key>}`.
    #[staticmethod]
    #[pyo3(signature = (url, *, key_prefix="tokencache:"))]
    fn redis(py: Python<'_>, url: &str, key_prefix: &str) -> PyResult<Self> {
        let options = RedisOptions { key_prefix: key_prefix.to_owned(), ..Default::default() };
        let store = py.detach(|| RedisStore::open(url, options)).map_err(|e| to_py_err(py, e, None))?;
        let what = format!("{store:?}");
        Ok(LeaseStoreCore { inner: Arc::new(store), what })
    }

    /// Leases in a SQLite database file (table `tokencache_leases`), for the
    /// processes of one host. The file may be a `SqliteStore`'s.
    #[staticmethod]
    fn sqlite(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let store = py.detach(|| SqliteStore::open(&path)).map_err(|e| to_py_err(py, e, None))?;
        let what = format!("{store:?}");
        Ok(LeaseStoreCore { inner: Arc::new(store), what })
    }

    /// Leases in the SQLite database or Redis server `store` already uses (for a
    /// `TieredStore` or `EncryptedStore`, the one at the bottom of its stack), sharing
    /// its connections. A `MemoryStore` can't hold leases other processes see.
    #[staticmethod]
    fn of(store: &Bound<'_, crate::stores::StoreCore>) -> PyResult<Self> {
        let inner = store.get().leases().ok_or_else(|| {
            PyValueError::new_err(
                "tokencache: leases need a store other processes share: SqliteStore or RedisStore (or a stack over one)",
            )
        })?;
        Ok(LeaseStoreCore { inner, what: format!("leases in {}", store.repr()?) })
    }

    /// Leases in this process's memory (tests; coalescers sharing one table).
    #[staticmethod]
    fn memory() -> Self {
        LeaseStoreCore { inner: Arc::new(MemoryLeases::new()), what: "MemoryLeases".into() }
    }

    /// Takes lease `key` for `owner` for `ttl` seconds unless someone else holds it.
    /// Returns whether `owner` holds it now.
    fn try_acquire(&self, py: Python<'_>, key: &str, owner: &str, ttl: f64) -> PyResult<bool> {
        let ttl = seconds(ttl, "ttl")?;
        let inner = &self.inner;
        py.detach(|| inner.try_acquire(key, owner, ttl)).map_err(|e| to_py_err(py, e, None))
    }

    /// Gives lease `key` back if `owner` holds it; returns whether it did.
    fn release(&self, py: Python<'_>, key: &str, owner: &str) -> PyResult<bool> {
        let inner = &self.inner;
        py.detach(|| inner.release(key, owner)).map_err(|e| to_py_err(py, e, None))
    }

    fn __repr__(&self) -> String {
        format!("<tokencache.LeaseStore {}>", self.what)
    }
}

/// Single-flight calls by key: the first caller for a key runs `fetch`, the
/// callers that come meanwhile wait for its result (or its exception).
#[pyclass(module = "tokencache._tokencache", name = "Coalescer", frozen)]
pub(crate) struct CoalescerCore {
    inner: Coalescer<Value, Failure>,
    lease: bool,
}

fn call(py: Python<'_>, f: &Py<PyAny>) -> Result<Py<PyAny>, Failure> {
    f.call0(py).map_err(|e| Failure::Python(Arc::new(e)))
}

#[pymethods]
impl CoalescerCore {
    /// `Coalescer(lease_store=None, *, lease_ttl=10.0, poll=0.01, max_poll=0.2)`:
    /// with a `LeaseStore`, one process of those sharing it fetches at a time.
    #[new]
    #[pyo3(signature = (lease_store=None, *, lease_ttl=10.0, poll=0.01, max_poll=0.2))]
    fn new(
        py: Python<'_>,
        lease_store: Option<PyRef<'_, LeaseStoreCore>>,
        lease_ttl: f64,
        poll: f64,
        max_poll: f64,
    ) -> PyResult<Self> {
        let options = LeaseOptions {
            ttl: seconds(lease_ttl, "lease_ttl")?,
            initial_poll: seconds(poll, "poll")?,
            max_poll: seconds(max_poll, "max_poll")?,
        };
        match lease_store {
            Some(l) => {
                let inner = Coalescer::with_lease(l.inner.clone(), options).map_err(|e| to_py_err(py, e, None))?;
                Ok(CoalescerCore { inner, lease: true })
            }
            None => Ok(CoalescerCore { inner: Coalescer::new(), lease: false }),
        }
    }

    /// The value of `key`: what `lookup()` returns unless it is `None`, else what
    /// one `fetch()` returns for every caller that misses `key` at the same time
    /// (`fetch` must store its value where `lookup` finds it). Waiting longer than
    /// `timeout` seconds for another caller's fetch raises `LockTimeoutError`.
    #[pyo3(signature = (key, fetch, lookup=None, timeout=30.0))]
    fn get_or_fetch(
        &self,
        py: Python<'_>,
        key: &str,
        fetch: Py<PyAny>,
        lookup: Option<Py<PyAny>>,
        timeout: f64,
    ) -> PyResult<Py<PyAny>> {
        let timeout = seconds(timeout, "timeout")?;
        let inner = &self.inner;
        let result = py.detach(|| {
            let look = || -> Result<Option<Value>, Failure> {
                let Some(lookup) = &lookup else { return Ok(None) };
                Python::attach(|py| {
                    let v = call(py, lookup)?;
                    Ok((!v.is_none(py)).then(|| Arc::new(v)))
                })
            };
            inner.get_or_fetch(key, timeout, look, || Python::attach(|py| call(py, &fetch).map(Arc::new)))
        });
        match result {
            Ok(v) => Ok(v.clone_ref(py)),
            Err(f) => Err(f.into_py(py)),
        }
    }

    /// Callers waiting for the flight of `key` now.
    fn waiters(&self, key: &str) -> usize {
        self.inner.waiters(key)
    }

    /// Keys with a flight under way.
    fn in_flight(&self) -> usize {
        self.inner.in_flight()
    }

    /// Whether this coalescer takes leases.
    #[getter]
    fn uses_lease(&self) -> bool {
        self.lease
    }

    /// The counters: hits, flights, fetches, coalesced, failures, timeouts,
    /// lease_waits, lease_served, lease_errors.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.inner.stats();
        let d = PyDict::new(py);
        for (k, v) in [
            ("hits", s.hits),
            ("flights", s.flights),
            ("fetches", s.fetches),
            ("coalesced", s.coalesced),
            ("failures", s.failures),
            ("timeouts", s.timeouts),
            ("lease_waits", s.lease_waits),
            ("lease_served", s.lease_served),
            ("lease_errors", s.lease_errors),
        ] {
            d.set_item(k, v)?;
        }
        Ok(d)
    }

    fn __repr__(&self) -> String {
        format!("<tokencache.Coalescer in_flight={} lease={}>", self.inner.in_flight(), self.lease)
    }
}

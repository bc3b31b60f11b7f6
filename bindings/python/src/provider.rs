//! The native halves of `tokencache.CacheProvider`, `tokencache.MemoryStore` and
//! `tokencache.SqliteStore`: the core's [`CacheProvider`] over a store, one
//! partition per `with provider.cache_for(key) as cache:` block.
//!
//! The block's cache is a plain `tokencache.SerializableTokenCache` (so msal takes it
//! as `token_cache=`): on entry it gets the partition as the core's provider loads
//! it (bad-blob policy, counters), on exit, if it changed, the provider saves it
//! (suggested expiry, removal when empty). The hand-over is the cache's JSON text.

use std::path::PathBuf;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyString;
use tokencache::store::{MemoryStore, SqliteStore, Store};
use tokencache::{CacheProvider, TokenCache};

use crate::cache::TokenCacheCore;
use crate::errors::to_py_err;

type DynStore = Arc<dyn Store>;

/// A place partitions are kept in; see `MemoryStore` and `SqliteStore`.
#[pyclass(module = "tokencache._tokencache", name = "Store", subclass, frozen)]
pub(crate) struct StoreCore {
    inner: DynStore,
}

/// Blobs in this process's memory, least recently used first out over `max_bytes`.
#[pyclass(module = "tokencache._tokencache", name = "MemoryStore", extends = StoreCore, frozen)]
pub(crate) struct MemoryStoreCore;

#[pymethods]
impl MemoryStoreCore {
    #[new]
    #[pyo3(signature = (max_bytes=None))]
    fn new(max_bytes: Option<usize>) -> PyClassInitializer<Self> {
        let store = max_bytes.map_or_else(MemoryStore::default, MemoryStore::new);
        PyClassInitializer::from(StoreCore { inner: Arc::new(store) }).add_subclass(MemoryStoreCore)
    }
}

/// Blobs in an SQLite database file (WAL, busy timeout, expired rows purged).
#[pyclass(module = "tokencache._tokencache", name = "SqliteStore", extends = StoreCore, frozen)]
pub(crate) struct SqliteStoreCore;

#[pymethods]
impl SqliteStoreCore {
    #[new]
    fn new(py: Python<'_>, path: PathBuf) -> PyResult<PyClassInitializer<Self>> {
        let store = py.detach(|| SqliteStore::open(&path)).map_err(|e| to_py_err(py, e, None))?;
        Ok(PyClassInitializer::from(StoreCore { inner: Arc::new(store) }).add_subclass(SqliteStoreCore))
    }
}

/// Loads token caches from a store and saves them back, one partition at a time.
#[pyclass(module = "tokencache._tokencache", name = "CacheProvider", frozen)]
pub(crate) struct CacheProviderCore {
    inner: Arc<CacheProvider<DynStore>>,
}

#[pymethods]
impl CacheProviderCore {
    #[new]
    fn new(store: PyRef<'_, StoreCore>) -> Self {
        CacheProviderCore { inner: Arc::new(CacheProvider::new(store.inner.clone())) }
    }

    /// A context manager: `with provider.cache_for(key) as cache:` gives partition
    /// `key`'s cache, saved at the end of the block if it changed.
    fn cache_for(&self, partition_key: &Bound<'_, PyString>) -> PyResult<PartitionBlock> {
        Ok(PartitionBlock { provider: self.inner.clone(), key: partition_key.to_cow()?.into_owned(), cache: None })
    }

    fn __repr__(&self) -> String {
        let s = self.inner.stats();
        format!(
            "<tokencache.CacheProvider: hits={} misses={} writes={} removals={} bad_blobs={}>",
            s.hits, s.misses, s.writes, s.removals, s.bad_blobs
        )
    }
}

/// What `cache_for` returns (see [`CacheProviderCore::cache_for`]).
#[pyclass(module = "tokencache._tokencache")]
pub(crate) struct PartitionBlock {
    provider: Arc<CacheProvider<DynStore>>,
    key: String,
    cache: Option<Arc<TokenCache>>,
}

#[pymethods]
impl PartitionBlock {
    fn __enter__(&mut self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let (provider, key) = (&self.provider, &self.key);
        let text = py.detach(|| provider.load(key).map(|p| p.serialize())).map_err(|e| to_py_err(py, e, None))?;
        let obj = py.import("tokencache")?.getattr("SerializableTokenCache")?.call0()?;
        let inner = obj.cast::<TokenCacheCore>()?.get().inner.clone();
        py.detach(|| inner.deserialize(&text)).map_err(|e| to_py_err(py, e, None))?;
        self.cache = Some(inner);
        Ok(obj.unbind())
    }

    /// Saves the partition if it changed, also when the block raised (tokens it
    /// obtained are real); never suppresses the block's exception.
    #[pyo3(signature = (*_exc))]
    fn __exit__(&mut self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        let Some(cache) = self.cache.take() else { return Ok(false) };
        if !cache.has_state_changed() {
            return Ok(false);
        }
        let (provider, key) = (&self.provider, &self.key);
        py.detach(|| {
            let text = cache.serialize();
            provider.with_partition(key, |c| {
                c.deserialize(&text)?;
                c.set_state_changed(true);
                Ok(())
            })?
        })
        .map_err(|e| to_py_err(py, e, None))?;
        Ok(false)
    }
}

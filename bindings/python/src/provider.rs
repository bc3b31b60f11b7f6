//! The native half of `tokencache.CacheProvider`: the core's [`CacheProvider`] over
//! a store (see `stores.rs`), one partition per `with provider.cache_for(key) as
//! cache:` block.
//!
//! The block's cache is a plain `tokencache.SerializableTokenCache` (so msal takes it
//! as `token_cache=`): on entry it gets the partition as the core's provider loads
//! it (bad-blob policy, counters), on exit, if it changed, the provider saves it
//! (suggested expiry, removal when empty). The hand-over is the cache's JSON text.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use tokencache::{CacheProvider, OnBadBlob, PartitionCache, ProviderOptions, TokenCache};

use crate::cache::TokenCacheCore;
use crate::errors::{invalid_argument, to_py_err};
use crate::stores::{DynStore, StoreCore};

/// Loads token caches from a store and saves them back, one partition at a time.
#[pyclass(module = "tokencache._tokencache", name = "CacheProvider", frozen)]
pub(crate) struct CacheProviderCore {
    inner: Arc<CacheProvider<DynStore>>,
    store: Py<StoreCore>,
}

/// Whole seconds from a number or a `timedelta`, `None` kept.
fn opt_secs(py: Python<'_>, value: Option<&Bound<'_, PyAny>>, name: &str) -> PyResult<Option<i64>> {
    let Some(v) = value.filter(|v| !v.is_none()) else { return Ok(None) };
    let seconds: f64 = match v.getattr("total_seconds") {
        Ok(total) => total.call0()?.extract()?,
        Err(_) => v.extract()?,
    };
    if !(seconds.is_finite() && seconds > 0.0 && seconds < i64::MAX as f64) {
        return Err(invalid_argument(py, format!("tokencache: {name} must be a number of seconds > 0")));
    }
    Ok(Some(seconds.ceil() as i64))
}

#[pymethods]
impl CacheProviderCore {
    /// `CacheProvider(store, *, sliding_expiration=None, absolute_expiration=None,
    /// on_bad_blob="miss")`: expirations in seconds (or `timedelta`) cap how long
    /// the store keeps a partition; a blob that is not a cache is a logged, counted
    /// miss (`"miss"`) or raises (`"fail"`).
    #[new]
    #[pyo3(signature = (store, *, sliding_expiration=None, absolute_expiration=None, on_bad_blob="miss"))]
    fn new(
        py: Python<'_>,
        store: &Bound<'_, StoreCore>,
        sliding_expiration: Option<Bound<'_, PyAny>>,
        absolute_expiration: Option<Bound<'_, PyAny>>,
        on_bad_blob: &str,
    ) -> PyResult<Self> {
        let on_bad_blob = match on_bad_blob {
            "miss" => OnBadBlob::TreatAsMiss,
            "fail" => OnBadBlob::Fail,
            _ => return Err(invalid_argument(py, "tokencache: on_bad_blob must be \"miss\" or \"fail\"")),
        };
        let options = ProviderOptions {
            sliding_expiration_secs: opt_secs(py, sliding_expiration.as_ref(), "sliding_expiration")?,
            absolute_expiration_secs: opt_secs(py, absolute_expiration.as_ref(), "absolute_expiration")?,
            on_bad_blob,
        };
        Ok(CacheProviderCore {
            inner: Arc::new(CacheProvider::with_options(store.get().store(), options)),
            store: store.clone().unbind(),
        })
    }

    /// The store.
    #[getter]
    fn store(&self, py: Python<'_>) -> Py<StoreCore> {
        self.store.clone_ref(py)
    }

    /// The provider's counters (`hits`, `misses`, `writes`, `removals`,
    /// `bad_blobs`) and the store's `stats()` under `"store"`.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.inner.stats();
        let d = PyDict::new(py);
        d.set_item("hits", s.hits)?;
        d.set_item("misses", s.misses)?;
        d.set_item("writes", s.writes)?;
        d.set_item("removals", s.removals)?;
        d.set_item("bad_blobs", s.bad_blobs)?;
        d.set_item("conflicts", s.conflicts)?;
        d.set_item("merges", s.merges)?;
        d.set_item("retries", s.retries)?;
        d.set_item("merge_lost", s.merge_lost)?;
        d.set_item("exclusive_saves", s.exclusive_saves)?;
        d.set_item("store", self.store.get().stats(py)?)?;
        Ok(d)
    }

    /// A context manager: `with provider.cache_for(key) as cache:` gives partition
    /// `key`'s cache, saved at the end of the block if it changed.
    fn cache_for(&self, partition_key: &Bound<'_, PyString>) -> PyResult<PartitionBlock> {
        Ok(PartitionBlock { open: None, provider: self.inner.clone(), key: partition_key.to_cow()?.into_owned() })
    }

    fn __repr__(&self) -> String {
        let s = self.inner.stats();
        format!(
            "<tokencache.CacheProvider: hits={} misses={} writes={} removals={} bad_blobs={}>",
            s.hits, s.misses, s.writes, s.removals, s.bad_blobs
        )
    }
}

/// A partition loaded when a block starts, kept until it ends so that the save
/// knows what the block started from (on a versioned store, a save that finds the
/// partition changed meanwhile merges the block's changes onto the newer copy).
struct OpenPartition {
    /// Holds the provider by `Arc` (`CacheProvider::load_shared`).
    partition: PartitionCache<'static, DynStore>,
    /// The block's `SerializableTokenCache`.
    cache: Arc<TokenCache>,
}

/// What `cache_for` returns (see [`CacheProviderCore::cache_for`]).
#[pyclass(module = "tokencache._tokencache")]
pub(crate) struct PartitionBlock {
    /// The partition while the block runs (it holds the provider too).
    open: Option<OpenPartition>,
    provider: Arc<CacheProvider<DynStore>>,
    key: String,
}

#[pymethods]
impl PartitionBlock {
    fn __enter__(&mut self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let (provider, key) = (&self.provider, &self.key);
        let (partition, text) = py
            .detach(|| {
                provider.load_shared(key).map(|p| {
                    let text = p.serialize();
                    (p, text)
                })
            })
            .map_err(|e| to_py_err(py, e, None))?;
        let obj = py.import("tokencache")?.getattr("SerializableTokenCache")?.call0()?;
        let cache = obj.cast::<TokenCacheCore>()?.get().inner.clone();
        py.detach(|| cache.deserialize(&text)).map_err(|e| to_py_err(py, e, None))?;
        self.open = Some(OpenPartition { partition, cache });
        Ok(obj.unbind())
    }

    /// Saves the partition if it changed, also when the block raised (tokens it
    /// obtained are real); never suppresses the block's exception.
    #[pyo3(signature = (*_exc))]
    fn __exit__(&mut self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        let Some(OpenPartition { partition, cache }) = self.open.take() else { return Ok(false) };
        if !cache.has_state_changed() {
            return Ok(false);
        }
        py.detach(|| {
            partition.deserialize(&cache.serialize())?;
            partition.set_state_changed(true);
            partition.save()
        })
        .map_err(|e| to_py_err(py, e, None))?;
        Ok(false)
    }
}

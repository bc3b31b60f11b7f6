//! The native store classes: `tokencache.Store` and its kinds `MemoryStore`,
//! `SqliteStore`, `RedisStore`, `TieredStore` and `EncryptedStore`, plus
//! `EncryptionKey`. Each is a thin handle on the core's store of the same name
//! (`tokencache::store`); a `CacheProvider` takes any of them.
//!
//! Options are checked here only as far as Python types go (a duration is a number
//! of seconds or a `timedelta`; a policy is one of its names); everything else is the
//! core's to check. Stores are built and queried with the GIL released.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString};
use tokencache::store::{
    CircuitState, EncryptedStore, EncryptionKey, EncryptionOptions, EncryptionStats, KeyRing, L2FailurePolicy, L2Store,
    MemoryStore, RedisOptions, RedisStore, SqliteStore, Store, TieredOptions, TieredStats, TieredStore,
};

use crate::errors::{invalid_argument, to_py_err};

/// A store as the provider uses it.
pub(crate) type DynStore = Arc<dyn Store>;
type DynL2 = Arc<dyn L2Store>;

/// Which core store a [`StoreCore`] holds (for `stats()` and for use as an L2).
pub(crate) enum Kind {
    Memory(Arc<MemoryStore>),
    Sqlite(Arc<SqliteStore>),
    Redis(Arc<RedisStore>),
    Tiered(Arc<TieredStore<DynL2>>),
    Encrypted(Encrypted),
}

/// An encrypted store, typed by what it wraps.
#[derive(Clone)]
pub(crate) enum Encrypted {
    /// Over a store that can be an L2 (so this one can be too).
    OverL2(Arc<EncryptedStore<DynL2>>),
    /// Over a `TieredStore`.
    OverTiered(Arc<EncryptedStore<DynStore>>),
}

impl Encrypted {
    fn stats(&self) -> EncryptionStats {
        match self {
            Encrypted::OverL2(s) => s.stats(),
            Encrypted::OverTiered(s) => s.stats(),
        }
    }

    fn key_ring(&self) -> Arc<KeyRing> {
        match self {
            Encrypted::OverL2(s) => s.key_ring(),
            Encrypted::OverTiered(s) => s.key_ring(),
        }
    }

    fn set_key_ring(&self, ring: KeyRing) {
        match self {
            Encrypted::OverL2(s) => s.set_key_ring(ring),
            Encrypted::OverTiered(s) => s.set_key_ring(ring),
        }
    }
}

impl Kind {
    fn store(&self) -> DynStore {
        match self {
            Kind::Memory(s) => s.clone(),
            Kind::Sqlite(s) => s.clone(),
            Kind::Redis(s) => s.clone(),
            Kind::Tiered(s) => s.clone(),
            Kind::Encrypted(Encrypted::OverL2(s)) => s.clone(),
            Kind::Encrypted(Encrypted::OverTiered(s)) => s.clone(),
        }
    }

    fn l2(&self) -> Option<DynL2> {
        match self {
            Kind::Memory(s) => Some(s.clone()),
            Kind::Sqlite(s) => Some(s.clone()),
            Kind::Redis(s) => Some(s.clone()),
            Kind::Encrypted(Encrypted::OverL2(s)) => Some(s.clone()),
            Kind::Tiered(_) | Kind::Encrypted(Encrypted::OverTiered(_)) => None,
        }
    }
}

/// A place partitions are kept in; see `MemoryStore`, `SqliteStore`, `RedisStore`,
/// `TieredStore` and `EncryptedStore`.
#[pyclass(module = "tokencache._tokencache", name = "Store", subclass, frozen)]
pub(crate) struct StoreCore {
    kind: Kind,
    /// The store this one wraps (a tiered store's L2, an encrypted store's inner
    /// store), for `stats()`.
    wrapped: Option<Py<StoreCore>>,
}

impl StoreCore {
    fn init(kind: Kind, wrapped: Option<Py<StoreCore>>) -> PyClassInitializer<Self> {
        PyClassInitializer::from(StoreCore { kind, wrapped })
    }

    /// The core store, for a provider.
    pub(crate) fn store(&self) -> DynStore {
        self.kind.store()
    }

    /// Where coalescers over this store take their leases: the SQLite or Redis store
    /// at the bottom of its stack, if there is one.
    pub(crate) fn leases(&self) -> Option<Arc<dyn tokencache::store::LeaseStore>> {
        match &self.kind {
            Kind::Sqlite(s) => Some(s.clone()),
            Kind::Redis(s) => Some(s.clone()),
            Kind::Memory(_) => None,
            Kind::Tiered(_) | Kind::Encrypted(_) => self.wrapped.as_ref().and_then(|w| w.get().leases()),
        }
    }
}

fn evictions<'py>(py: Python<'py>, (capacity, expired): (u64, u64)) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("capacity", capacity)?;
    d.set_item("expired", expired)?;
    Ok(d)
}

fn secs(d: Option<Duration>) -> Option<f64> {
    d.map(|d| d.as_secs_f64())
}

fn tiered_stats<'py>(
    py: Python<'py>,
    d: &Bound<'py, PyDict>,
    s: &TieredStats,
    l1: Option<&MemoryStore>,
) -> PyResult<()> {
    d.set_item("l1_hits", s.l1_hits)?;
    d.set_item("l2_hits", s.l2_hits)?;
    d.set_item("misses", s.misses)?;
    d.set_item("l2_errors", s.l2_errors)?;
    d.set_item("l2_retries", s.l2_retries)?;
    d.set_item("l2_skipped", s.l2_skipped)?;
    d.set_item("circuit_opened", s.circuit_opened)?;
    let circuit = s.circuit.map(|c| match c {
        CircuitState::Closed => "closed",
        CircuitState::Open => "open",
        CircuitState::HalfOpen => "half_open",
    });
    d.set_item("circuit", circuit)?;
    d.set_item("l2_latency_p50", secs(s.l2_latency_p50))?;
    d.set_item("l2_latency_p99", secs(s.l2_latency_p99))?;
    d.set_item("l1_entries", s.l1_entries)?;
    d.set_item("l1_bytes", s.l1_bytes)?;
    d.set_item("l2_version_checks", s.l2_version_checks)?;
    d.set_item("stale_l1_drops", s.stale_l1_drops)?;
    d.set_item("l2_write_backs", s.l2_write_backs)?;
    d.set_item("l2_write_backs_lost", s.l2_write_backs_lost)?;
    d.set_item("l2_write_backs_waiting", s.l2_write_backs_waiting)?;
    d.set_item("l1_copies_restored", s.l1_copies_restored)?;
    d.set_item("l1_evictions", evictions(py, l1.map_or((0, 0), MemoryStore::evictions))?)?;
    Ok(())
}

fn encryption_stats(d: &Bound<'_, PyDict>, s: &EncryptionStats, ring: &KeyRing) -> PyResult<()> {
    d.set_item("key_mismatches", s.key_mismatches)?;
    d.set_item("decryption_failures", s.decryption_failures)?;
    d.set_item("unencrypted_reads", s.unencrypted_reads)?;
    d.set_item("key_ids", ring.key_ids().iter().map(ToString::to_string).collect::<Vec<_>>())?;
    Ok(())
}

#[pymethods]
impl StoreCore {
    /// Counters and sizes as a dict, with `"type"` the class name. A store that
    /// wraps another has the wrapped one's under `"l2"` (TieredStore) or `"inner"`
    /// (EncryptedStore).
    pub(crate) fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        match &self.kind {
            Kind::Memory(s) => {
                d.set_item("type", "MemoryStore")?;
                let (entries, bytes, ev) = py.detach(|| (s.len(), s.bytes(), s.evictions()));
                d.set_item("entries", entries)?;
                d.set_item("bytes", bytes)?;
                d.set_item("evictions", evictions(py, ev)?)?;
            }
            Kind::Sqlite(s) => {
                d.set_item("type", "SqliteStore")?;
                let (rows, purged, purge_errors) = py.detach(|| (s.row_count(), s.purged(), s.purge_errors()));
                d.set_item("rows", rows.map_err(|e| to_py_err(py, e, None))?)?;
                d.set_item("purged", purged)?;
                d.set_item("purge_errors", purge_errors)?;
            }
            Kind::Redis(s) => {
                d.set_item("type", "RedisStore")?;
                d.set_item("cluster", s.is_cluster())?;
            }
            Kind::Tiered(s) => {
                d.set_item("type", "TieredStore")?;
                tiered_stats(py, &d, &py.detach(|| s.stats()), s.l1())?;
            }
            Kind::Encrypted(s) => {
                d.set_item("type", "EncryptedStore")?;
                encryption_stats(&d, &s.stats(), &s.key_ring())?;
            }
        }
        if let Some(w) = &self.wrapped {
            let name = if matches!(self.kind, Kind::Tiered(_)) { "l2" } else { "inner" };
            d.set_item(name, w.get().stats(py)?)?;
        }
        Ok(d)
    }

    /// Drops expired blobs now; returns how many.
    fn purge_expired(&self, py: Python<'_>) -> PyResult<u64> {
        let store = self.kind.store();
        py.detach(|| store.purge_expired()).map_err(|e| to_py_err(py, e, None))
    }
}

/// A number of seconds (int, float or `datetime.timedelta`) as a `Duration`.
fn duration(py: Python<'_>, value: &Bound<'_, PyAny>, name: &str) -> PyResult<Duration> {
    let seconds: f64 = if let Ok(total) = value.getattr("total_seconds") {
        total.call0()?.extract()?
    } else {
        value.extract().map_err(|_| {
            PyTypeError::new_err(format!("tokencache: {name} must be a number of seconds or a datetime.timedelta"))
        })?
    };
    self::seconds(py, seconds, name)
}

fn seconds(py: Python<'_>, value: f64, name: &str) -> PyResult<Duration> {
    Duration::try_from_secs_f64(value)
        .map_err(|_| invalid_argument(py, format!("tokencache: {name} must be a finite number of seconds >= 0")))
}

fn opt_duration(py: Python<'_>, value: Option<&Bound<'_, PyAny>>, name: &str) -> PyResult<Option<Duration>> {
    match value {
        Some(v) if !v.is_none() => duration(py, v, name).map(Some),
        _ => Ok(None),
    }
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
        StoreCore::init(Kind::Memory(Arc::new(store)), None).add_subclass(MemoryStoreCore)
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
        Ok(StoreCore::init(Kind::Sqlite(Arc::new(store)), None).add_subclass(SqliteStoreCore))
    }
}

/// Blobs in Redis or a Redis Cluster: the distributed L2, usually under a
/// `TieredStore`. Connections are pooled and opened on demand, so a server that is
/// down fails the operations that need it (`StoreUnavailableError`), not this call.
#[pyclass(module = "tokencache._tokencache", name = "RedisStore", extends = StoreCore, frozen)]
pub(crate) struct RedisStoreCore {
    store: Arc<RedisStore>,
}

impl RedisStoreCore {
    fn init(store: RedisStore) -> PyClassInitializer<Self> {
        let store = Arc::new(store);
        StoreCore::init(Kind::Redis(store.clone()), None).add_subclass(RedisStoreCore { store })
    }
}

/// Options from the constructor's arguments; `timeouts` = connect, read, write (seconds).
fn redis_options(
    py: Python<'_>,
    key_prefix: &str,
    max_connections: u32,
    timeouts: [f64; 3],
    tls_ca_file: Option<PathBuf>,
) -> PyResult<RedisOptions> {
    let tls_root_certificates_pem = match tls_ca_file {
        Some(path) => Some(std::fs::read(&path).map_err(|e| {
            pyo3::exceptions::PyOSError::new_err(format!("tokencache: tls_ca_file {}: {e}", path.display()))
        })?),
        None => None,
    };
    Ok(RedisOptions {
        key_prefix: key_prefix.to_owned(),
        max_connections,
        connect_timeout: seconds(py, timeouts[0], "connect_timeout")?,
        read_timeout: seconds(py, timeouts[1], "read_timeout")?,
        write_timeout: seconds(py, timeouts[2], "write_timeout")?,
        tls_root_certificates_pem,
        ..RedisOptions::default()
    })
}

#[pymethods]
impl RedisStoreCore {
    /// `RedisStore(url, *, key_prefix="tokencache:", max_connections=16,
    /// connect_timeout=1.0, read_timeout=1.0, write_timeout=1.0, tls_ca_file=None)`;
    /// `rediss://` URLs use TLS, with `tls_ca_file` (PEM) as the trusted CA if given.
    #[new]
    #[pyo3(signature = (url, *, key_prefix="tokencache:", max_connections=16, connect_timeout=1.0,
        read_timeout=1.0, write_timeout=1.0, tls_ca_file=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        url: &str,
        key_prefix: &str,
        max_connections: u32,
        connect_timeout: f64,
        read_timeout: f64,
        write_timeout: f64,
        tls_ca_file: Option<PathBuf>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let options = redis_options(
            py,
            key_prefix,
            max_connections,
            [connect_timeout, read_timeout, write_timeout],
            tls_ca_file,
        )?;
        let store = py.detach(|| RedisStore::open(url, options)).map_err(|e| to_py_err(py, e, None))?;
        Ok(RedisStoreCore::init(store))
    }

    /// A store on the Redis Cluster reached through `urls` (seed nodes), with the
    /// same options as the constructor.
    #[staticmethod]
    #[pyo3(signature = (urls, *, key_prefix="tokencache:", max_connections=16, connect_timeout=1.0,
        read_timeout=1.0, write_timeout=1.0, tls_ca_file=None))]
    #[allow(clippy::too_many_arguments)]
    fn cluster(
        py: Python<'_>,
        urls: Vec<String>,
        key_prefix: &str,
        max_connections: u32,
        connect_timeout: f64,
        read_timeout: f64,
        write_timeout: f64,
        tls_ca_file: Option<PathBuf>,
    ) -> PyResult<Py<RedisStoreCore>> {
        let options = redis_options(
            py,
            key_prefix,
            max_connections,
            [connect_timeout, read_timeout, write_timeout],
            tls_ca_file,
        )?;
        let store = py
            .detach(|| RedisStore::open_cluster(urls.iter().map(String::as_str), options))
            .map_err(|e| to_py_err(py, e, None))?;
        Py::new(py, RedisStoreCore::init(store))
    }

    /// Checks that Redis answers (a `PING`); raises `StoreUnavailableError` if not.
    fn ping(&self, py: Python<'_>) -> PyResult<()> {
        let store = &self.store;
        py.detach(|| store.ping()).map_err(|e| to_py_err(py, e, None))
    }

    /// The Redis key that holds `partition_key`.
    fn key_for(&self, partition_key: &str) -> String {
        self.store.key_for(partition_key)
    }
}

fn failure_policy(py: Python<'_>, name: &str) -> PyResult<L2FailurePolicy> {
    match name {
        "serve_from_l1" => Ok(L2FailurePolicy::ServeFromL1),
        "retry_once" => Ok(L2FailurePolicy::RetryOnce),
        "propagate" => Ok(L2FailurePolicy::Propagate),
        _ => Err(invalid_argument(
            py,
            "tokencache: on_l2_failure must be \"serve_from_l1\", \"retry_once\" or \"propagate\"",
        )),
    }
}

/// An in-memory L1 over an L2 (a `RedisStore`, an `EncryptedStore` over one, an
/// `SqliteStore` or a `MemoryStore`), with Microsoft.Identity.Web's options, an L2
/// failure policy and a circuit breaker.
#[pyclass(module = "tokencache._tokencache", name = "TieredStore", extends = StoreCore, frozen)]
pub(crate) struct TieredStoreCore;

#[pymethods]
impl TieredStoreCore {
    #[new]
    #[pyo3(signature = (l2, *, l1_max_bytes=524288000, disable_l1=false, l1_expiration_ratio=1.0,
        absolute_expiration_relative_to_now=None, sliding_expiration=None, l1_backfill_ttl=300.0,
        on_l2_failure="serve_from_l1", circuit_failure_threshold=3, circuit_cool_down=10.0,
        l2_version_check_interval=1.0))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        l2: &Bound<'_, StoreCore>,
        l1_max_bytes: usize,
        disable_l1: bool,
        l1_expiration_ratio: f64,
        absolute_expiration_relative_to_now: Option<Bound<'_, PyAny>>,
        sliding_expiration: Option<Bound<'_, PyAny>>,
        l1_backfill_ttl: f64,
        on_l2_failure: &str,
        circuit_failure_threshold: u32,
        circuit_cool_down: f64,
        l2_version_check_interval: f64,
    ) -> PyResult<PyClassInitializer<Self>> {
        let Some(l2_store) = l2.get().kind.l2() else {
            return Err(PyTypeError::new_err(
                "tokencache: a TieredStore's l2 must be a RedisStore, SqliteStore, MemoryStore or an \
                 EncryptedStore over one of them (not a TieredStore)",
            ));
        };
        let options = TieredOptions {
            l1_max_bytes,
            disable_l1,
            l1_expiration_ratio,
            absolute_expiration_relative_to_now: opt_duration(
                py,
                absolute_expiration_relative_to_now.as_ref(),
                "absolute_expiration_relative_to_now",
            )?,
            sliding_expiration: opt_duration(py, sliding_expiration.as_ref(), "sliding_expiration")?,
            l1_backfill_ttl: seconds(py, l1_backfill_ttl, "l1_backfill_ttl")?,
            on_l2_failure: failure_policy(py, on_l2_failure)?,
            circuit_failure_threshold,
            circuit_cool_down: seconds(py, circuit_cool_down, "circuit_cool_down")?,
            l2_version_check_interval: seconds(py, l2_version_check_interval, "l2_version_check_interval")?,
            ..TieredOptions::default()
        };
        let store = TieredStore::new(l2_store, options).map_err(|e| to_py_err(py, e, None))?;
        Ok(StoreCore::init(Kind::Tiered(Arc::new(store)), Some(l2.clone().unbind())).add_subclass(TieredStoreCore))
    }
}

/// One AES-256 key for an `EncryptedStore`. Its `id` (a fingerprint, safe to show)
/// is what an encrypted blob names; the key bytes never leave the object (no
/// `repr`, pickling or copying shows them).
#[pyclass(module = "tokencache._tokencache", name = "EncryptionKey", frozen)]
pub(crate) struct EncryptionKeyCore {
    key: EncryptionKey,
}

/// The single key of a key ring read from a variable or file.
fn single_key(py: Python<'_>, ring: tokencache::Result<KeyRing>, source: &str) -> PyResult<EncryptionKeyCore> {
    let ring = ring.map_err(|e| to_py_err(py, e, None))?;
    let n = ring.key_ids().len();
    if n != 1 {
        return Err(invalid_argument(
            py,
            format!("tokencache: {source} holds {n} keys; give one key each and list them in EncryptedStore(keys=...)"),
        ));
    }
    Ok(EncryptionKeyCore { key: ring.primary().clone() })
}

#[pymethods]
impl EncryptionKeyCore {
    /// A key from exactly 32 bytes.
    #[staticmethod]
    fn from_bytes(py: Python<'_>, data: &Bound<'_, PyBytes>) -> PyResult<Self> {
        EncryptionKey::from_bytes(data.as_bytes()).map(|key| Self { key }).map_err(|e| to_py_err(py, e, None))
    }

    /// A key from text: 64 hex digits or the base64 of 32 bytes.
    #[staticmethod]
    fn parse(py: Python<'_>, text: &str) -> PyResult<Self> {
        EncryptionKey::parse(text).map(|key| Self { key }).map_err(|e| to_py_err(py, e, None))
    }

    /// The key in environment variable `var` (as `parse` reads it).
    #[staticmethod]
    fn from_env(py: Python<'_>, var: &str) -> PyResult<Self> {
        single_key(py, KeyRing::from_env(var), &format!("environment variable {var}"))
    }

    /// The key in file `path`: 32 raw bytes, or text as `parse` reads it.
    #[staticmethod]
    fn from_file(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let ring = py.detach(|| KeyRing::from_file(&path));
        single_key(py, ring, &format!("key file {}", path.display()))
    }

    /// A new random key.
    #[staticmethod]
    fn generate(py: Python<'_>) -> PyResult<Self> {
        EncryptionKey::generate().map(|key| Self { key }).map_err(|e| to_py_err(py, e, None))
    }

    /// A new random key as base64 text (for an environment variable or a key file).
    /// It is a secret: don't log it.
    #[staticmethod]
    fn generate_text(py: Python<'_>) -> PyResult<String> {
        EncryptionKey::generate_text().map_err(|e| to_py_err(py, e, None))
    }

    /// The key's id: 16 hex digits, a fingerprint safe to log.
    #[getter]
    fn id(&self) -> String {
        self.key.id().to_string()
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.cast::<EncryptionKeyCore>().is_ok_and(|o| o.get().key.id() == self.key.id())
    }

    fn __hash__(&self) -> u64 {
        u64::from_be_bytes(self.key.id().bytes())
    }

    fn __repr__(&self) -> String {
        format!("<tokencache.EncryptionKey id={}>", self.key.id())
    }

    fn __reduce__(&self) -> PyResult<Py<PyAny>> {
        Err(PyTypeError::new_err("cannot pickle or copy an EncryptionKey: it is a secret"))
    }
}

/// The key ring of `keys`: one `EncryptionKey` or a non-empty sequence, the first primary.
fn key_ring(py: Python<'_>, keys: &Bound<'_, PyAny>) -> PyResult<KeyRing> {
    if let Ok(k) = keys.cast::<EncryptionKeyCore>() {
        return Ok(KeyRing::new(k.get().key.clone()));
    }
    let not_keys = || PyTypeError::new_err("tokencache: keys must be an EncryptionKey or a sequence of them");
    if keys.is_instance_of::<PyString>() || keys.is_instance_of::<PyBytes>() {
        return Err(not_keys());
    }
    let mut ring: Option<KeyRing> = None;
    for k in keys.try_iter().map_err(|_| not_keys())? {
        let k = k?;
        let key = k.cast::<EncryptionKeyCore>().map_err(|_| not_keys())?.get().key.clone();
        ring = Some(match ring {
            None => KeyRing::new(key),
            Some(r) => r.with_key(key),
        });
    }
    ring.ok_or_else(|| invalid_argument(py, "tokencache: keys is empty; give at least one EncryptionKey"))
}

/// AES-256-GCM at rest over another store: encrypts with the first key, decrypts
/// with any. The partition key is authenticated with each blob.
#[pyclass(module = "tokencache._tokencache", name = "EncryptedStore", extends = StoreCore, frozen)]
pub(crate) struct EncryptedStoreCore {
    store: Encrypted,
}

#[pymethods]
impl EncryptedStoreCore {
    #[new]
    #[pyo3(signature = (inner, keys, *, on_key_mismatch="error", allow_unencrypted=false))]
    fn new(
        py: Python<'_>,
        inner: &Bound<'_, StoreCore>,
        keys: &Bound<'_, PyAny>,
        on_key_mismatch: &str,
        allow_unencrypted: bool,
    ) -> PyResult<PyClassInitializer<Self>> {
        let key_mismatch_as_miss = match on_key_mismatch {
            "error" => false,
            "miss" => true,
            _ => return Err(invalid_argument(py, "tokencache: on_key_mismatch must be \"error\" or \"miss\"")),
        };
        let ring = key_ring(py, keys)?;
        let options = EncryptionOptions { key_mismatch_as_miss, allow_unencrypted };
        let store = match inner.get().kind.l2() {
            Some(l2) => Encrypted::OverL2(Arc::new(EncryptedStore::with_options(l2, ring, options))),
            None => Encrypted::OverTiered(Arc::new(EncryptedStore::with_options(inner.get().store(), ring, options))),
        };
        Ok(StoreCore::init(Kind::Encrypted(store.clone()), Some(inner.clone().unbind()))
            .add_subclass(EncryptedStoreCore { store }))
    }

    /// Replaces the keys (rotation): later writes use the first; blobs under the
    /// others stay readable.
    fn set_keys(&self, py: Python<'_>, keys: &Bound<'_, PyAny>) -> PyResult<()> {
        self.store.set_key_ring(key_ring(py, keys)?);
        Ok(())
    }

    /// The ids of the keys, the primary's first.
    #[getter]
    fn key_ids<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, self.store.key_ring().key_ids().iter().map(ToString::to_string))
    }
}

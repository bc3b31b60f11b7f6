//! The native half of `tokencache.PersistedTokenCache`: msal-extensions'
//! `PersistedTokenCache`, over the core's [`PersistedTokenCache`] (one locked,
//! atomic write per change; reads pick up the file only when it changed; a corrupt
//! file is moved aside). Each method converts its arguments, releases the GIL for
//! the core call (which may wait for the file lock) and converts the result back.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyIterator, PyList, PyString, PyTuple};
use tokencache::store::LockOptions;
use tokencache::{CredentialType, Entry, Map, OnCorrupt, PersistOptions, PersistedTokenCache};

use crate::convert::{Lender, entry_to_dict, to_entry, to_map, to_map_ref, to_now, to_scopes};
use crate::errors::to_py_err;
use crate::observe::stats_to_dict;

/// A token cache kept in one file shared with other processes and MSAL apps.
#[pyclass(module = "tokencache._tokencache", subclass, frozen)]
pub(crate) struct PersistedTokenCacheCore {
    pub(crate) inner: Arc<PersistedTokenCache>,
}

fn on_corrupt(name: &str) -> PyResult<OnCorrupt> {
    match name {
        "fail" => Ok(OnCorrupt::MoveAsideAndFail),
        "continue" => Ok(OnCorrupt::MoveAsideAndContinue),
        _ => Err(PyValueError::new_err("tokencache: on_corrupt must be \"fail\" or \"continue\"")),
    }
}

/// `value or ""` for a key part, as msal's key makers read it.
fn key_part(v: Option<&Bound<'_, PyAny>>) -> PyResult<String> {
    match v {
        Some(v) if v.is_truthy()? => Ok(v.str()?.to_cow()?.into_owned()),
        _ => Ok(String::new()),
    }
}

fn dict_or_default<'py>(py: Python<'py>, e: Option<Entry>, default: Option<Bound<'py, PyAny>>) -> PyResult<Py<PyAny>> {
    match e {
        Some(e) => Ok(entry_to_dict(py, &e)?.into_any().unbind()),
        None => Ok(default.map_or_else(|| py.None(), Bound::unbind)),
    }
}

fn credential_type(ct: &Bound<'_, PyAny>) -> PyResult<CredentialType> {
    let name = ct
        .cast::<PyString>()
        .map_err(|_| PyTypeError::new_err("tokencache: credential_type must be a str"))?
        .to_cow()?;
    CredentialType::from_str(&name).map_err(|e| to_py_err(ct.py(), e, None))
}

type Remove = fn(&PersistedTokenCache, &Entry) -> tokencache::Result<()>;

impl PersistedTokenCacheCore {
    fn remove_with(&self, py: Python<'_>, item: &Bound<'_, PyAny>, what: &str, remove: Remove) -> PyResult<()> {
        let entry = to_entry(item, what)?;
        let inner = &self.inner;
        py.detach(|| remove(inner, &entry)).map_err(|e| to_py_err(py, e, None))
    }

    fn reload(&self, py: Python<'_>) -> PyResult<()> {
        let inner = &self.inner;
        py.detach(|| inner.reload()).map_err(|e| to_py_err(py, e, None))
    }
}

#[pymethods]
impl PersistedTokenCacheCore {
    /// Opens (or will create) the cache file at `path` and loads it. Extra
    /// arguments are accepted (and ignored) so that subclasses may take their own.
    #[new]
    #[pyo3(signature = (path, lock_timeout=5.0, on_corrupt="fail", *_args, **_kwargs))]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        lock_timeout: f64,
        on_corrupt: &str,
        _args: &Bound<'_, PyTuple>,
        _kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let timeout = Duration::try_from_secs_f64(lock_timeout)
            .map_err(|_| PyValueError::new_err("tokencache: lock_timeout must be a number of seconds >= 0"))?;
        let options = PersistOptions {
            lock: LockOptions { timeout, ..LockOptions::default() },
            on_corrupt: self::on_corrupt(on_corrupt)?,
        };
        let inner = py.detach(|| PersistedTokenCache::open(path, options)).map_err(|e| to_py_err(py, e, None))?;
        // msal-extensions' behaviour, as SerializableTokenCache's: sharing off.
        inner.cache().set_sharing_mode(tokencache::SharingMode::Off);
        Ok(PersistedTokenCacheCore { inner: Arc::new(inner) })
    }

    /// The cache file's path.
    #[getter]
    fn path(&self) -> PathBuf {
        self.inner.path().to_path_buf()
    }

    /// Caches what a token response event carries; one locked write of the file.
    #[pyo3(signature = (event, now=None))]
    fn add(&self, py: Python<'_>, event: &Bound<'_, PyAny>, now: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let lender = Lender::new();
        let event = to_map_ref(event, "event", &lender)?;
        let now = to_now(now)?;
        let inner = &self.inner;
        py.detach(|| inner.add_event(&event, now)).map_err(|e| to_py_err(py, e, None))
    }

    /// The matching entries of the file's current content, as dicts. The search
    /// runs at once (expired access tokens it meets are removed, written through).
    #[pyo3(signature = (credential_type, target=None, query=None, *, now=None))]
    fn search<'py>(
        &self,
        py: Python<'py>,
        credential_type: &Bound<'py, PyAny>,
        target: Option<&Bound<'py, PyAny>>,
        query: Option<&Bound<'py, PyAny>>,
        now: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyIterator>> {
        // As msal: a credential type with no section in the cache matches nothing.
        let ct = match credential_type.cast::<PyString>() {
            Ok(name) => CredentialType::from_str(&name.to_cow()?).ok(),
            Err(_) => None,
        };
        let entries = match ct {
            None => Vec::new(),
            Some(ct) => {
                let scopes = to_scopes(target)?;
                let query = match query {
                    Some(q) if !q.is_none() && q.is_truthy()? => Some(to_map(q, "query")?),
                    _ => None,
                };
                let now = to_now(now)?;
                let inner = &self.inner;
                py.detach(|| {
                    let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
                    inner.search(ct, &scopes, query.as_ref(), now)
                })
                .map_err(|e| to_py_err(py, e, None))?
            }
        };
        let dicts = entries.iter().map(|e| entry_to_dict(py, e)).collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, dicts)?.try_iter()
    }

    /// msal's `modify(credential_type, old_entry, new_key_value_pairs=None)`, written through.
    #[pyo3(signature = (credential_type, old_entry, new_key_value_pairs=None))]
    fn modify(
        &self,
        py: Python<'_>,
        credential_type: &Bound<'_, PyAny>,
        old_entry: &Bound<'_, PyAny>,
        new_key_value_pairs: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let ct = self::credential_type(credential_type)?;
        let old = to_entry(old_entry, "old_entry")?;
        let changes: Option<Map> = match new_key_value_pairs {
            Some(c) if !c.is_none() => Some(to_map(c, "new_key_value_pairs")?),
            _ => None,
        };
        let inner = &self.inner;
        py.detach(|| inner.modify(ct, &old, changes.as_ref())).map_err(|e| to_py_err(py, e, None))
    }

    /// Removes a refresh token entry, written through.
    fn remove_rt(&self, py: Python<'_>, rt_item: &Bound<'_, PyAny>) -> PyResult<()> {
        self.remove_with(py, rt_item, "rt_item", PersistedTokenCache::remove_rt)
    }

    /// Replaces a refresh token's secret, written through.
    #[pyo3(signature = (rt_item, new_rt, *, now=None))]
    fn update_rt(
        &self,
        py: Python<'_>,
        rt_item: &Bound<'_, PyAny>,
        new_rt: &Bound<'_, PyString>,
        now: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let entry = to_entry(rt_item, "rt_item")?;
        let new_rt = new_rt.to_cow()?;
        let now = to_now(now)?;
        let inner = &self.inner;
        py.detach(|| inner.update_rt(&entry, &new_rt, now)).map_err(|e| to_py_err(py, e, None))
    }

    /// Removes an access token entry, written through.
    fn remove_at(&self, py: Python<'_>, at_item: &Bound<'_, PyAny>) -> PyResult<()> {
        self.remove_with(py, at_item, "at_item", PersistedTokenCache::remove_at)
    }

    /// Removes an ID token entry, written through.
    fn remove_idt(&self, py: Python<'_>, idt_item: &Bound<'_, PyAny>) -> PyResult<()> {
        self.remove_with(py, idt_item, "idt_item", PersistedTokenCache::remove_idt)
    }

    /// Removes an account entry, written through.
    fn remove_account(&self, py: Python<'_>, account_item: &Bound<'_, PyAny>) -> PyResult<()> {
        self.remove_with(py, account_item, "account_item", PersistedTokenCache::remove_account)
    }

    /// The access token filed under the key these fields make, or `default`, in the
    /// file's current content.
    #[pyo3(signature = (home_account_id, environment, client_id, realm, target, ext_cache_key=None, default=None))]
    #[allow(clippy::too_many_arguments)]
    fn _get_access_token<'py>(
        &self,
        py: Python<'py>,
        home_account_id: Option<&Bound<'py, PyAny>>,
        environment: Option<&Bound<'py, PyAny>>,
        client_id: Option<&Bound<'py, PyAny>>,
        realm: Option<&Bound<'py, PyAny>>,
        target: &Bound<'py, PyAny>,
        ext_cache_key: Option<&Bound<'py, PyAny>>,
        default: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let hid = key_part(home_account_id)?;
        let env = key_part(environment)?;
        let cid = key_part(client_id)?;
        let realm = key_part(realm)?;
        let joined = to_scopes(Some(target))?.join(" ");
        let ext = key_part(ext_cache_key)?;
        self.reload(py)?;
        let cache = self.inner.cache();
        let found = py.detach(|| {
            let hid = (!hid.is_empty()).then_some(hid.as_str());
            let ext = (!ext.is_empty()).then_some(ext.as_str());
            cache.get_access_token(hid, &env, &cid, &realm, &[joined.as_str()], ext)
        });
        dict_or_default(py, found, default)
    }

    /// The app metadata of `client_id` in `environment`, or `default`, in the
    /// file's current content.
    #[pyo3(signature = (environment, client_id, default=None))]
    fn _get_app_metadata<'py>(
        &self,
        py: Python<'py>,
        environment: Option<&Bound<'py, PyAny>>,
        client_id: Option<&Bound<'py, PyAny>>,
        default: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let env = key_part(environment)?;
        let cid = key_part(client_id)?;
        let inner = &self.inner;
        let found = py.detach(|| inner.get_app_metadata(&env, &cid)).map_err(|e| to_py_err(py, e, None))?;
        dict_or_default(py, found, default)
    }

    /// The file's current content in msal's format; clears `has_state_changed`.
    fn serialize<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyString>> {
        let inner = &self.inner;
        let text = py.detach(|| inner.serialize()).map_err(|e| to_py_err(py, e, None))?;
        Ok(PyString::new(py, &text))
    }

    /// Replaces the in-memory cache with `state`, as msal-extensions does: the file
    /// is not written now; the next change writes the whole cache, unless another
    /// process changed the file first (then the file wins).
    fn deserialize(&self, py: Python<'_>, state: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let text: String = match state {
            Some(s) if !s.is_none() && s.is_truthy()? => {
                if let Ok(t) = s.cast::<PyString>() {
                    t.to_cow()?.into_owned()
                } else if let Ok(b) = s.cast::<PyBytes>() {
                    String::from_utf8(b.as_bytes().to_vec()).map_err(|_| not_utf8())?
                } else if let Ok(b) = s.cast::<PyByteArray>() {
                    String::from_utf8(b.to_vec()).map_err(|_| not_utf8())?
                } else {
                    return Err(PyTypeError::new_err("tokencache: state must be str, bytes or bytearray"));
                }
            }
            _ => String::new(),
        };
        let cache = self.inner.cache();
        py.detach(|| cache.deserialize(&text)).map_err(|e| to_py_err(py, e, Some(&text)))
    }

    /// Sharing mode, as `SerializableTokenCache.sharing`: `False` (the default),
    /// `True` or `"auto"`.
    #[getter]
    fn sharing(&self, py: Python<'_>) -> Py<PyAny> {
        crate::cache::sharing_to_py(py, self.inner.cache().sharing_mode())
    }

    #[setter]
    fn set_sharing(&self, mode: &Bound<'_, PyAny>) -> PyResult<()> {
        self.inner.cache().set_sharing_mode(crate::cache::sharing_from_py(mode)?);
        Ok(())
    }

    /// Whether the cache behaves as sharing mode now, as
    /// `SerializableTokenCache.sharing_active`.
    #[getter]
    fn sharing_active(&self) -> bool {
        self.inner.cache().sharing()
    }

    /// Whether the in-memory cache changed since it was last written or serialized.
    #[getter]
    fn get_has_state_changed(&self) -> bool {
        self.inner.cache().has_state_changed()
    }

    #[setter]
    fn set_has_state_changed(&self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        self.inner.cache().set_state_changed(value.is_truthy()?);
        Ok(())
    }

    /// Entries in the five known sections, as of the last read of the file.
    /// Counters and sizes of the cache in memory, as `TokenCache.stats()`.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let inner = &self.inner;
        let stats = py.detach(|| inner.cache().stats());
        stats_to_dict(py, &stats)
    }

    fn __len__(&self) -> usize {
        self.inner.cache().len()
    }

    /// Always true (msal's applications do `token_cache or TokenCache()`).
    fn __bool__(&self) -> bool {
        true
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        let cls = slf.get_type();
        let (module, name) = (cls.module()?, cls.qualname()?);
        let inner = &slf.get().inner;
        Ok(format!("<{module}.{name}: {:?}, {} entries>", inner.path().display(), inner.cache().len()))
    }

    fn __reduce__(slf: &Bound<'_, Self>) -> PyResult<Py<PyAny>> {
        Err(not_picklable(slf))
    }

    fn __reduce_ex__(slf: &Bound<'_, Self>, _protocol: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        Err(not_picklable(slf))
    }
}

fn not_picklable(slf: &Bound<'_, PersistedTokenCacheCore>) -> PyErr {
    let name = slf.get_type().qualname().map_or_else(|_| "token cache".to_owned(), |n| n.to_string());
    PyTypeError::new_err(format!(
        "cannot pickle or copy a {name}: it holds secrets. Open the same file again in the other process."
    ))
}

/// `json.loads` would raise `UnicodeDecodeError`, a `ValueError`.
fn not_utf8() -> PyErr {
    PyValueError::new_err("tokencache: state is not UTF-8 text")
}

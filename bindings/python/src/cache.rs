//! The native halves of `tokencache.TokenCache` and `tokencache.SerializableTokenCache`.
//!
//! Each method converts its arguments, releases the GIL for the core call, and
//! converts the result back. The Python classes in `tokencache/__init__.py` add what
//! is plain data or plain Python in msal (`CredentialType`, `AuthorityType`, `find`).

use std::str::FromStr;
use std::sync::Arc;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyString, PyTuple};
use tokencache::{CredentialType, Entry, Map, SharingMode, TokenCache};

use crate::convert::{Lender, entry_to_dict, to_entry, to_map, to_map_ref, to_now, to_scopes};
use crate::errors::to_py_err;
use crate::observe::stats_to_dict;
use crate::pystr::{UnfilledAsciiStr, str_utf8};
use crate::search::SearchResults;

/// msal's `TokenCache`: add token responses, search them, remove them.
#[pyclass(module = "tokencache._tokencache", subclass, frozen)]
pub(crate) struct TokenCacheCore {
    pub(crate) inner: Arc<TokenCache>,
}

fn credential_type(ct: &Bound<'_, PyAny>) -> PyResult<CredentialType> {
    let name = ct.cast::<PyString>().map_err(|_| PyTypeError::new_err("tokencache: credential_type must be a str"))?;
    CredentialType::from_str(str_utf8(name)?).map_err(|e| to_py_err(ct.py(), e, None))
}

fn dict_or_default<'py>(py: Python<'py>, e: Option<Entry>, default: Option<Bound<'py, PyAny>>) -> PyResult<Py<PyAny>> {
    match e {
        Some(e) => Ok(entry_to_dict(py, &e)?.into_any().unbind()),
        None => Ok(default.map_or_else(|| py.None(), Bound::unbind)),
    }
}

/// `value or ""` for a key part, as msal's key makers read it.
fn key_part(v: Option<&Bound<'_, PyAny>>) -> PyResult<String> {
    match v {
        Some(v) if v.is_truthy()? => Ok(v.str()?.to_cow()?.into_owned()),
        _ => Ok(String::new()),
    }
}

impl TokenCacheCore {
    fn remove_with(
        &self,
        py: Python<'_>,
        item: &Bound<'_, PyAny>,
        what: &str,
        remove: fn(&TokenCache, &Entry) -> tokencache::Result<()>,
    ) -> PyResult<()> {
        let entry = to_entry(item, what)?;
        let inner = &self.inner;
        py.detach(|| remove(inner, &entry)).map_err(|e| to_py_err(py, e, None))
    }
}

#[pymethods]
impl TokenCacheCore {
    /// Extra arguments are accepted (and ignored) so that subclasses may take their own.
    #[new]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn new(_args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>) -> Self {
        TokenCacheCore { inner: Arc::new(msal_python_cache()) }
    }

    /// Sharing mode: `False` (the default), `True` or `"auto"`. In sharing mode
    /// lookups treat the aliases of one cloud as one environment and a "" home
    /// account id as None, and writes file each item where another SDK's copy of it
    /// is, so apps on msal-node, MSAL Go, msal4j and MSAL.NET sharing the file find
    /// each other's tokens. `False` is msal's cache byte for byte whatever the file
    /// holds (the drop-in's promise); `"auto"` is too, until the file holds an entry
    /// another SDK wrote (its key style, a "" app-token home account id, an access
    /// token without token_type).
    #[getter]
    fn sharing(&self, py: Python<'_>) -> Py<PyAny> {
        sharing_to_py(py, self.inner.sharing_mode())
    }

    #[setter]
    fn set_sharing(&self, mode: &Bound<'_, PyAny>) -> PyResult<()> {
        self.inner.set_sharing_mode(sharing_from_py(mode)?);
        Ok(())
    }

    /// Whether the cache behaves as sharing mode now (`sharing` is True, or "auto"
    /// and the cache holds another SDK's entries).
    #[getter]
    fn sharing_active(&self) -> bool {
        self.inner.sharing()
    }

    /// Caches what a token response event carries (msal's `add(event, now=None)`).
    #[pyo3(signature = (event, now=None))]
    fn add(&self, py: Python<'_>, event: &Bound<'_, PyAny>, now: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let lender = Lender::new();
        let event = to_map_ref(event, "event", &lender)?;
        let now = to_now(now)?;
        let inner = &self.inner;
        py.detach(|| inner.add_event(&event, now)).map_err(|e| to_py_err(py, e, None))
    }

    /// The matching entries, as dicts, lazily (msal's `search` generator).
    #[pyo3(signature = (credential_type, target=None, query=None, *, now=None))]
    fn search(
        &self,
        credential_type: Bound<'_, PyAny>,
        target: Option<Bound<'_, PyAny>>,
        query: Option<Bound<'_, PyAny>>,
        now: Option<Bound<'_, PyAny>>,
    ) -> SearchResults {
        SearchResults::new(self.inner.clone(), credential_type, target, query, now)
    }

    /// msal's `modify(credential_type, old_entry, new_key_value_pairs=None)`.
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

    /// Removes a refresh token entry (as `search` returned it).
    fn remove_rt(&self, py: Python<'_>, rt_item: &Bound<'_, PyAny>) -> PyResult<()> {
        self.remove_with(py, rt_item, "rt_item", TokenCache::remove_rt)
    }

    /// Replaces a refresh token's secret and stamps `last_modification_time` with
    /// `now` (default: the clock, as msal).
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

    /// Removes an access token entry.
    fn remove_at(&self, py: Python<'_>, at_item: &Bound<'_, PyAny>) -> PyResult<()> {
        self.remove_with(py, at_item, "at_item", TokenCache::remove_at)
    }

    /// Removes an ID token entry.
    fn remove_idt(&self, py: Python<'_>, idt_item: &Bound<'_, PyAny>) -> PyResult<()> {
        self.remove_with(py, idt_item, "idt_item", TokenCache::remove_idt)
    }

    /// Removes an account entry.
    fn remove_account(&self, py: Python<'_>, account_item: &Bound<'_, PyAny>) -> PyResult<()> {
        self.remove_with(py, account_item, "account_item", TokenCache::remove_account)
    }

    /// The access token filed under the key these fields make, or `default`
    /// (msal's O(1) `_get_access_token`; `target` is joined as given, unsorted).
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
        // msal joins `target` as given; handing the core the joined text as a single
        // scope keeps that (the core would sort a list).
        let joined = to_scopes(Some(target))?.join(" ");
        let ext = key_part(ext_cache_key)?;
        let inner = &self.inner;
        let found = py.detach(|| {
            let hid = (!hid.is_empty()).then_some(hid.as_str());
            let ext = (!ext.is_empty()).then_some(ext.as_str());
            inner.get_access_token(hid, &env, &cid, &realm, &[joined.as_str()], ext)
        });
        dict_or_default(py, found, default)
    }

    /// The app metadata of `client_id` in `environment`, or `default` (msal's
    /// `_get_app_metadata`, which msal's applications call).
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
        let found = py.detach(|| inner.get_app_metadata(&env, &cid));
        dict_or_default(py, found, default)
    }

    /// Counters and sizes (the core's `CacheStats`) as a dict: `hits` and `misses`
    /// per credential type, `evictions` by reason, `entries`, `partitions`, `bytes`,
    /// `examined`.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let inner = &self.inner;
        let stats = py.detach(|| inner.stats());
        stats_to_dict(py, &stats)
    }

    /// Entries in the five known sections.
    fn __len__(&self) -> usize {
        self.inner.len()
    }

    /// Always true, empty or not: msal's applications do `token_cache or TokenCache()`,
    /// and a falsy empty cache would be silently replaced.
    fn __bool__(&self) -> bool {
        true
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        let cls = slf.get_type();
        let (module, name) = (cls.module()?, cls.qualname()?);
        let cache = &slf.get().inner;
        Ok(format!("<{module}.{name}: {} entries, has_state_changed={}>", cache.len(), py_bool(cache)))
    }

    fn __reduce__(slf: &Bound<'_, Self>) -> PyResult<Py<PyAny>> {
        Err(not_picklable(slf))
    }

    fn __reduce_ex__(slf: &Bound<'_, Self>, _protocol: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        Err(not_picklable(slf))
    }
}

fn py_bool(cache: &TokenCache) -> &'static str {
    if cache.has_state_changed() { "True" } else { "False" }
}

fn not_picklable(slf: &Bound<'_, TokenCacheCore>) -> PyErr {
    let name = slf.get_type().qualname().map_or_else(|_| "token cache".to_owned(), |n| n.to_string());
    PyTypeError::new_err(format!(
        "cannot pickle or copy a {name}: it holds secrets. Persist it with serialize() and \
         deserialize() (SerializableTokenCache), where you choose how the text is protected."
    ))
}

/// msal's `SerializableTokenCache`: a [`TokenCacheCore`] that saves and loads
/// itself and tells whether it changed since.
#[pyclass(module = "tokencache._tokencache", extends = TokenCacheCore, subclass, frozen)]
pub(crate) struct SerializableTokenCacheCore;

#[pymethods]
impl SerializableTokenCacheCore {
    #[new]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn new(_args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>) -> PyClassInitializer<Self> {
        PyClassInitializer::from(TokenCacheCore { inner: Arc::new(msal_python_cache()) })
            .add_subclass(SerializableTokenCacheCore)
    }

    /// The whole cache as msal writes it (`json.dumps(indent=4)`), byte for byte;
    /// clears `has_state_changed`.
    fn serialize<'py>(slf: &Bound<'py, Self>) -> Bound<'py, PyString> {
        let py = slf.py();
        let inner = &slf.as_super().get().inner;
        // The text goes straight into a new str of its exact length: one pass over
        // hundreds of MB instead of a String and a copy into the str.
        let written = py
            .detach(|| inner.serialize_with(|len| Python::attach(|py| UnfilledAsciiStr::new(py, len).ok().flatten())));
        match written {
            Ok(text) => text.filled(py),
            Err(text) => PyString::new(py, &text),
        }
    }

    /// Replaces the whole cache with `state` (str or bytes; `None` or empty empties
    /// it); clears `has_state_changed`. On error the cache is unchanged.
    fn deserialize(slf: &Bound<'_, Self>, state: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let py = slf.py();
        let inner = &slf.as_super().get().inner;
        let state = match state {
            Some(s) if !s.is_none() && s.is_truthy()? => s,
            _ => return py.detach(|| inner.deserialize("")).map_err(|e| to_py_err(py, e, None)),
        };
        // A str is read through its UTF-8 text, borrowed: no copy of a large document.
        let bytes: &[u8] = if let Ok(text) = state.cast::<PyString>() {
            return deserialize_text(py, inner, str_utf8(text)?);
        } else if let Ok(b) = state.cast::<PyBytes>() {
            b.as_bytes()
        } else if let Ok(b) = state.cast::<PyByteArray>() {
            return deserialize_text(py, inner, &String::from_utf8(b.to_vec()).map_err(|_| not_utf8())?);
        } else {
            return Err(PyTypeError::new_err("tokencache: state must be str, bytes or bytearray"));
        };
        deserialize_text(py, inner, std::str::from_utf8(bytes).map_err(|_| not_utf8())?)
    }

    /// Whether the cache changed since the last `serialize` or `deserialize`.
    #[getter]
    fn get_has_state_changed(slf: &Bound<'_, Self>) -> bool {
        slf.as_super().get().inner.has_state_changed()
    }

    #[setter]
    fn set_has_state_changed(slf: &Bound<'_, Self>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        slf.as_super().get().inner.set_state_changed(value.is_truthy()?);
        Ok(())
    }
}

fn deserialize_text(py: Python<'_>, cache: &TokenCache, text: &str) -> PyResult<()> {
    py.detach(|| cache.deserialize(text)).map_err(|e| to_py_err(py, e, Some(text)))
}

/// `json.loads` would raise `UnicodeDecodeError`, a `ValueError`.
fn not_utf8() -> PyErr {
    pyo3::exceptions::PyValueError::new_err("tokencache: state is not UTF-8 text")
}

/// `sharing` as Python sees it: True, False or "auto".
pub(crate) fn sharing_to_py(py: Python<'_>, mode: SharingMode) -> Py<PyAny> {
    match mode {
        SharingMode::On => true.into_pyobject(py).map(|b| b.to_owned().into_any().unbind()),
        SharingMode::Off => false.into_pyobject(py).map(|b| b.to_owned().into_any().unbind()),
        SharingMode::Auto => Ok(PyString::new(py, "auto").into_any().unbind()),
    }
    .unwrap_or_else(|e: std::convert::Infallible| match e {})
}

/// `sharing = True | False | "auto"`; anything else is a `ValueError`.
pub(crate) fn sharing_from_py(value: &Bound<'_, PyAny>) -> PyResult<SharingMode> {
    if let Ok(b) = value.cast::<pyo3::types::PyBool>() {
        return Ok(if b.is_true() { SharingMode::On } else { SharingMode::Off });
    }
    if value.cast::<PyString>().is_ok_and(|s| s.to_cow().is_ok_and(|s| s == "auto")) {
        return Ok(SharingMode::Auto);
    }
    Err(pyo3::exceptions::PyValueError::new_err(format!(
        "tokencache: sharing must be True, False or \"auto\", not {}",
        value.repr().map(|r| r.to_string()).unwrap_or_else(|_| "that".into())
    )))
}

/// A core cache as the Python classes start: sharing off, msal's behaviour byte for
/// byte whatever the file holds (a drop-in for msal's classes; core's default,
/// `SharingMode::Auto`, is one `sharing = "auto"` away).
pub(crate) fn msal_python_cache() -> TokenCache {
    let cache = TokenCache::new();
    cache.set_sharing_mode(SharingMode::Off);
    cache
}

//! Python objects to and from the core's JSON values, directly (no `json.dumps`
//! round trip): an event, a query or an entry crosses as the objects themselves.
//!
//! Python to JSON follows what msal does with the same objects: `str`, `int`,
//! `float`, `bool`, `None`, `dict` (any mapping), `list` and `tuple` map to their
//! JSON counterparts; anything else becomes `str(obj)`, which is what msal's
//! extended cache key hashes and its debug log prints (`bytes` assertions, for one).
//! Messages name types, never values: these objects carry tokens.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::Mutex;

use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyMapping, PyString, PyTuple};
use tokencache::json::{MapRef, Number, ValueRef};
use tokencache::{Entry, FieldName, FieldValue, KNOWN_FIELD_NAMES, Map, Value};

use crate::pystr::str_utf8;

/// Deeper than any token response; a cycle (a dict holding itself) stops here
/// instead of overflowing the stack (Python's `json` raises for it too).
const MAX_DEPTH: usize = 128;

fn too_deep() -> PyErr {
    PyValueError::new_err("tokencache: the object is nested too deeply (or refers to itself)")
}

/// A dict (or any mapping) as a JSON object; `what` names the argument in errors.
/// What [`to_map_ref`] reads, owned.
pub(crate) fn to_map(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Map> {
    let lender = Lender::new();
    to_map_ref(obj, what, &lender).map(MapRef::into_map)
}

/// A Python int beyond `i64` or a float, as the core keeps numbers (Python ints are
/// unbounded: the decimal text).
fn big_number(obj: &Bound<'_, PyAny>) -> PyResult<Option<Number>> {
    if let Ok(i) = obj.cast::<PyInt>() {
        return Ok(match tokencache::json::parse(&i.str()?.to_cow()?) {
            Ok(Value::Number(n)) => Some(n),
            _ => None,
        });
    }
    Ok(obj.cast::<PyFloat>().ok().map(|f| Number::from_f64(f.value())))
}

/// A Python dict as a cache entry (what `remove_*`, `update_rt` and `modify` take).
pub(crate) fn to_entry(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Entry> {
    let map = to_map(obj, what)?;
    Entry::from_map(&map).map_err(|e| crate::errors::to_py_err(obj.py(), e, None))
}

/// Keeps alive the Python objects whose text a [`MapRef`] borrows. The GIL is
/// released around core work, and another thread may meanwhile change the caller's
/// dict and so drop a `str` the event points into; holding a reference to each one
/// keeps it, and its text, where it is.
pub(crate) struct Lender<'py> {
    held: RefCell<smallvec::SmallVec<[Bound<'py, PyAny>; 32]>>,
    /// Whether reading an object ran Python code (a `str()`, a mapping's methods),
    /// which could change a dict being read: from then on each dict read checks.
    ran_python: Cell<bool>,
}

impl<'py> Lender<'py> {
    pub(crate) fn new() -> Self {
        Lender { held: RefCell::new(smallvec::SmallVec::new()), ran_python: Cell::new(false) }
    }

    /// The text of `s`, for as long as the lender lives.
    fn text<'l>(&'l self, s: Bound<'py, PyString>) -> PyResult<&'l str> {
        let text: *const str = str_utf8(&s)?;
        self.held.borrow_mut().push(s.into_any());
        // SAFETY: a str is immutable, and its UTF-8 text (its own characters, or the
        // copy CPython caches in it) lives as long as the object, which `held` keeps
        // alive until the lender goes; moving the `Bound` into it moves a pointer only.
        Ok(unsafe { &*text })
    }
}

/// A dict (or any mapping) as a JSON object that borrows its strings from the
/// Python objects (see [`Lender`]): an event's tokens are not copied on the way in.
pub(crate) fn to_map_ref<'l, 'py>(
    obj: &Bound<'py, PyAny>,
    what: &str,
    lender: &'l Lender<'py>,
) -> PyResult<MapRef<'l>> {
    match obj.cast::<PyDict>() {
        Ok(d) => dict_ref(d, lender, 1),
        Err(_) if obj.cast::<PyMapping>().is_ok() => {
            let d = PyDict::new(obj.py());
            d.update(obj.cast::<PyMapping>()?)?;
            dict_ref(&d, lender, 1)
        }
        Err(_) => Err(PyTypeError::new_err(format!("tokencache: {what} must be a dict, not {}", type_name(obj)))),
    }
}

fn dict_ref<'l, 'py>(d: &Bound<'py, PyDict>, lender: &'l Lender<'py>, depth: usize) -> PyResult<MapRef<'l>> {
    let py = d.py();
    let len = d.len();
    let mut m = MapRef::with_capacity(len);
    let (mut pos, mut k, mut v): (ffi::Py_ssize_t, *mut ffi::PyObject, *mut ffi::PyObject) =
        (0, std::ptr::null_mut(), std::ptr::null_mut());
    // SAFETY: the GIL is held and `d` is a live dict. `PyDict_Next` hands out
    // borrowed references, valid while the dict keeps them: nothing below runs Python
    // code before it takes its own reference (the lender's, or `to_owned` on the slow
    // path), and a dict that such code resized is reported, as Python reports it.
    while unsafe { ffi::PyDict_Next(d.as_ptr(), &mut pos, &mut k, &mut v) } != 0 {
        // SAFETY: `PyDict_Next` returned non-null borrowed references (see above).
        let (key, value) = unsafe { (Borrowed::from_ptr(py, k), Borrowed::from_ptr(py, v)) };
        let key = key_text(key, lender)?;
        // A str, the most common value, is pushed as its text: a `ValueRef` built
        // here and moved into the map is stored and read back, which stalls. Reading
        // it runs no Python code, so the dict cannot have changed.
        if let Some(text) = exact_str(value, lender) {
            m.push_str(key, text?);
            continue;
        }
        let value = value_ref(value, lender, depth)?;
        if lender.ran_python.get() && d.len() != len {
            return Err(PyRuntimeError::new_err("dictionary changed size during iteration"));
        }
        m.push(key, value);
    }
    Ok(m)
}

/// A dict key's text. The names events use are matched to static text, which needs
/// no reference to the key; any other key is lent.
fn key_text<'l, 'py>(key: Borrowed<'_, 'py, PyAny>, lender: &'l Lender<'py>) -> PyResult<&'l str> {
    if is_exact(&key, &raw mut ffi::PyUnicode_Type) {
        // SAFETY: exactly a str.
        let key = unsafe { key.cast_unchecked::<PyString>() };
        if let Some(name) = event_name(str_utf8(&key)?) {
            return Ok(name);
        }
        return lender.text(key.to_owned());
    }
    let key = key
        .cast::<PyString>()
        .map_err(|_| PyTypeError::new_err(format!("tokencache: dict keys must be str, not {}", type_name(&key))))?;
    lender.text(key.to_owned())
}

/// The names of an event's members (msal's events, responses and request data).
fn event_name(text: &str) -> Option<&'static str> {
    Some(match text {
        "client_id" => "client_id",
        "scope" => "scope",
        "token_endpoint" => "token_endpoint",
        "grant_type" => "grant_type",
        "response" => "response",
        "params" => "params",
        "data" => "data",
        "environment" => "environment",
        "skip_account_creation" => "skip_account_creation",
        "access_token" => "access_token",
        "refresh_token" => "refresh_token",
        "id_token" => "id_token",
        "id_token_claims" => "id_token_claims",
        "client_info" => "client_info",
        "token_type" => "token_type",
        "expires_in" => "expires_in",
        "ext_expires_in" => "ext_expires_in",
        "expires_on" => "expires_on",
        "refresh_in" => "refresh_in",
        "foci" => "foci",
        "claims" => "claims",
        "code" => "code",
        "redirect_uri" => "redirect_uri",
        "code_verifier" => "code_verifier",
        "username" => "username",
        "password" => "password",
        "key_id" => "key_id",
        "_account_id" => "_account_id",
        "authority_type" => "authority_type",
        _ => return None,
    })
}

/// Whether `obj`'s type is exactly `ty` (not a subclass): one comparison, for the
/// types events are made of.
fn is_exact(obj: &Bound<'_, PyAny>, ty: *mut ffi::PyTypeObject) -> bool {
    // SAFETY: `obj` is live; reading its type pointer is what `type(obj)` does.
    unsafe { ffi::Py_TYPE(obj.as_ptr()) == ty }
}

/// A Python object as a JSON value, as msal would see it: `str`, `int`, `float`,
/// `bool`, `None`, `dict` (any mapping), `list` and `tuple` map to their JSON
/// counterparts, anything else is its `str()`. Strings are borrowed (see [`Lender`]).
fn value_ref<'l, 'py>(obj: Borrowed<'_, 'py, PyAny>, lender: &'l Lender<'py>, depth: usize) -> PyResult<ValueRef<'l>> {
    if let Some(v) = scalar_ref(obj, lender) {
        return v;
    }
    // Containers are held while read: Python code run for one of their items (a
    // `str()`) could take them out of their parent, which would free them.
    if is_exact(&obj, &raw mut ffi::PyDict_Type) {
        if depth >= MAX_DEPTH {
            return Err(too_deep());
        }
        // SAFETY: exactly a dict.
        let dict = unsafe { obj.to_owned().cast_into_unchecked::<PyDict>() };
        return Ok(ValueRef::Object(dict_ref(&dict, lender, depth + 1)?));
    }
    if is_exact(&obj, &raw mut ffi::PyList_Type) {
        if depth >= MAX_DEPTH {
            return Err(too_deep());
        }
        // SAFETY: exactly a list.
        let list = unsafe { obj.to_owned().cast_into_unchecked::<PyList>() };
        let mut items = Vec::with_capacity(list.len());
        let mut i = 0;
        // By index, as the list is now (an item's `str()` could change it).
        while i < list.len() {
            items.push(value_ref(list.get_item(i)?.as_borrowed(), lender, depth + 1)?);
            i += 1;
        }
        return Ok(ValueRef::Array(items));
    }
    value_ref_slow(obj.to_owned(), lender, depth)
}

/// The text of an exact `str` (lent, see [`Lender`]); `None` for anything else.
#[inline(always)]
fn exact_str<'l, 'py>(obj: Borrowed<'_, 'py, PyAny>, lender: &'l Lender<'py>) -> Option<PyResult<&'l str>> {
    // SAFETY: exactly a str (checked first).
    is_exact(&obj, &raw mut ffi::PyUnicode_Type)
        .then(|| lender.text(unsafe { obj.to_owned().cast_into_unchecked::<PyString>() }))
}

/// What events are made of, by exact type (no Python code runs for these): `str`,
/// `None`, `bool` and `int`; `None` for anything else.
fn scalar_ref<'l, 'py>(obj: Borrowed<'_, 'py, PyAny>, lender: &'l Lender<'py>) -> Option<PyResult<ValueRef<'l>>> {
    if let Some(text) = exact_str(obj, lender) {
        return Some(text.map(|t| ValueRef::Str(t.into())));
    }
    if obj.is_none() {
        return Some(Ok(ValueRef::Null));
    }
    if is_exact(&obj, &raw mut ffi::PyBool_Type) {
        // SAFETY: the interpreter's `True`, compared by address.
        return Some(Ok(ValueRef::Bool(obj.as_ptr() == unsafe { ffi::Py_True() })));
    }
    if is_exact(&obj, &raw mut ffi::PyLong_Type)
        && let Ok(n) = obj.extract::<i64>()
    {
        return Some(Ok(ValueRef::Int(n)));
    }
    None
}

/// [`value_ref`] for everything else, holding its own reference to `obj`, since
/// `str()` or a mapping's methods run Python code.
fn value_ref_slow<'l, 'py>(obj: Bound<'py, PyAny>, lender: &'l Lender<'py>, depth: usize) -> PyResult<ValueRef<'l>> {
    lender.ran_python.set(true);
    let obj = match obj.cast_into::<PyString>() {
        Ok(s) => return Ok(ValueRef::Str(lender.text(s)?.into())),
        Err(e) => e.into_inner(),
    };
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(ValueRef::Bool(b.is_true()));
    }
    if obj.cast::<PyInt>().is_ok()
        && let Ok(n) = obj.extract::<i64>()
    {
        return Ok(ValueRef::Int(n));
    }
    if let Some(n) = big_number(&obj)? {
        return Ok(ValueRef::Number(n));
    }
    if depth >= MAX_DEPTH {
        return Err(too_deep());
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        return Ok(ValueRef::Object(dict_ref(d, lender, depth + 1)?));
    }
    if let Ok(l) = obj.cast::<PyList>() {
        return l
            .iter()
            .map(|x| value_ref(x.as_borrowed(), lender, depth + 1))
            .collect::<PyResult<Vec<_>>>()
            .map(ValueRef::Array);
    }
    if let Ok(t) = obj.cast::<PyTuple>() {
        return t
            .iter()
            .map(|x| value_ref(x.as_borrowed(), lender, depth + 1))
            .collect::<PyResult<Vec<_>>>()
            .map(ValueRef::Array);
    }
    if obj.cast::<PyMapping>().is_ok() {
        let d = PyDict::new(obj.py());
        d.update(obj.cast::<PyMapping>()?)?;
        return Ok(ValueRef::Object(dict_ref(&d, lender, depth + 1)?));
    }
    // Anything else as its `str()`, which is what msal hashes or prints.
    Ok(ValueRef::Str(lender.text(obj.str()?)?.into()))
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type().name().map_or_else(|_| "?".to_owned(), |n| n.to_string())
}

/// A JSON value as the Python object `json.loads` would make.
pub(crate) fn from_value<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Number(n) => number(py, n.as_str())?,
        Value::Array(items) => {
            let list = PyList::empty(py);
            for x in items {
                list.append(from_value(py, x)?)?;
            }
            list.into_any()
        }
        Value::Object(m) => {
            let d = PyDict::new(py);
            for (k, x) in m.iter() {
                d.set_item(k, from_value(py, x)?)?;
            }
            d.into_any()
        }
    })
}

fn number<'py>(py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyAny>> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(n) = text.parse::<i64>() {
            return Ok(n.into_pyobject(py)?.into_any());
        }
        return py.get_type::<PyInt>().call1((text,));
    }
    // "Infinity", "-Infinity" and "NaN" parse too, as Python's json reads them.
    let f: f64 = text.parse().unwrap_or(f64::NAN);
    Ok(PyFloat::new(py, f).into_any())
}

/// The known field names (see [`KNOWN_FIELD_NAMES`]) as interned Python strings,
/// made once: a dict built with them neither allocates its keys nor hashes them again.
static KNOWN_NAMES: PyOnceLock<Vec<Py<PyString>>> = PyOnceLock::new();

/// Other field names already made into Python strings. Bounded, since these come
/// from the documents loaded.
type FieldNames = HashMap<Box<str>, Py<PyString>, foldhash::fast::FixedState>;
static OTHER_NAMES: PyOnceLock<Mutex<FieldNames>> = PyOnceLock::new();
const MAX_OTHER_NAMES: usize = 1024;

fn other_name<'py>(py: Python<'py>, name: &str) -> Bound<'py, PyString> {
    // Taken and released before any object is made from a value (which could run a
    // collection, and a finalizer that searches).
    let names = OTHER_NAMES.get_or_init(py, Default::default);
    let mut names = names.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(s) = names.get(name) {
        return s.bind(py).clone();
    }
    let s = PyString::intern(py, name);
    if names.len() < MAX_OTHER_NAMES {
        names.insert(name.into(), s.clone().unbind());
    }
    s
}

/// A cache entry as a new dict, fields in stored order.
pub(crate) fn entry_to_dict<'py>(py: Python<'py>, e: &Entry) -> PyResult<Bound<'py, PyDict>> {
    let known =
        KNOWN_NAMES.get_or_init(py, || KNOWN_FIELD_NAMES.iter().map(|n| PyString::intern(py, n).unbind()).collect());
    let d = PyDict::new(py);
    for (name, value) in e.named_fields() {
        let name = match name {
            FieldName::Known(id) => known[id as usize].bind(py).clone(),
            FieldName::Other(n) => other_name(py, &n),
        };
        let value = match value {
            FieldValue::Str(s) => PyString::new(py, &s).into_any(),
            FieldValue::Other(v) => from_value(py, &v)?,
        };
        d.set_item(name, value)?;
    }
    Ok(d)
}

/// msal's `int(time.time() if now is None else now)`, without the clock: `None`
/// stays `None` and the core reads the clock.
pub(crate) fn to_now(now: Option<&Bound<'_, PyAny>>) -> PyResult<Option<i64>> {
    match now {
        None => Ok(None),
        Some(n) if n.is_none() => Ok(None),
        Some(n) => match n.extract::<i64>() {
            Ok(v) => Ok(Some(v)),
            Err(_) => Ok(Some(n.py().get_type::<PyInt>().call1((n,))?.extract::<i64>()?)),
        },
    }
}

/// Scopes Python-style: `sorted(target or [])` iterates whatever it is given; each
/// scope must be a str. The core sorts.
pub(crate) fn to_scopes(target: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<String>> {
    let Some(t) = target else { return Ok(Vec::new()) };
    if t.is_none() || !t.is_truthy()? {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for item in t.try_iter()? {
        let item = item?;
        let s = item.cast::<PyString>().map_err(|_| {
            PyTypeError::new_err(format!("tokencache: a scope must be a str, not {}", type_name(&item)))
        })?;
        out.push(str_utf8(s)?.to_owned());
    }
    Ok(out)
}

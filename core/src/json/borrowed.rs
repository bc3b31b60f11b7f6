//! JSON values that borrow their strings: how an event reaches
//! [`TokenCache::add_event`](crate::TokenCache::add_event) without its tokens being
//! copied first. A binding builds one over its own objects (the Python package over
//! the event dict's `str`s), [`MapRef::from`] borrows an owned [`Map`], and
//! [`parse_borrowed`](super::parse_borrowed) reads JSON text into one (only a string
//! with escapes is copied, decoded).
//!
//! No `Debug`: the strings are tokens.

use std::borrow::Cow;

use super::{Map, Number, Value};

/// A JSON value whose strings are borrowed for `'a`.
#[derive(Clone)]
pub enum ValueRef<'a> {
    /// `null` (Python `None`).
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer that fits an `i64` (what events hold: lifetimes, flags).
    Int(i64),
    /// Any other number.
    Number(Number),
    /// A string.
    Str(Cow<'a, str>),
    /// An array.
    Array(Vec<ValueRef<'a>>),
    /// An object.
    Object(MapRef<'a>),
}

/// A JSON object whose keys and strings are borrowed for `'a`, in insertion order.
#[derive(Clone, Default)]
pub struct MapRef<'a>(Vec<(Cow<'a, str>, ValueRef<'a>)>);

impl<'a> MapRef<'a> {
    /// An empty object.
    pub fn new() -> Self {
        MapRef(Vec::new())
    }

    /// An empty object with room for `n` members.
    pub fn with_capacity(n: usize) -> Self {
        MapRef(Vec::with_capacity(n))
    }

    /// Appends a member. The caller keeps keys unique (a dict's keys are).
    pub fn push(&mut self, key: impl Into<Cow<'a, str>>, value: ValueRef<'a>) {
        self.0.push((key.into(), value));
    }

    /// Appends a member whose value is a borrowed string.
    #[inline]
    pub fn push_str(&mut self, key: &'a str, text: &'a str) {
        self.0.push((Cow::Borrowed(key), ValueRef::Str(Cow::Borrowed(text))));
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&ValueRef<'a>> {
        // Length and first byte before the text: most members are not the one.
        let (len, first) = (key.len(), key.as_bytes().first());
        self.0.iter().find(|(k, _)| k.len() == len && k.as_bytes().first() == first && k == key).map(|(_, v)| v)
    }

    /// Iterates in insertion order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &ValueRef<'a>)> {
        self.0.iter().map(|(k, v)| (k.as_ref(), v))
    }

    /// Python's `json.loads` keeps the first position and the last value of a
    /// repeated key.
    pub(crate) fn dedup_python_style(&mut self) {
        let n = self.0.len();
        if n < 2 {
            return;
        }
        if n <= 16 {
            // Compare a cheap fingerprint first: repeats are rare, and this runs on
            // every object read (an id_token's claims on every add).
            let mut prints = [(0usize, 0u8, 0u8); 16];
            for (p, (k, _)) in prints.iter_mut().zip(&self.0) {
                let b = k.as_bytes();
                *p = (b.len(), b.first().copied().unwrap_or(0), b.last().copied().unwrap_or(0));
            }
            let repeated = (1..n).any(|i| (0..i).any(|j| prints[j] == prints[i] && self.0[j].0 == self.0[i].0));
            if !repeated {
                return;
            }
        }
        let mut position: hashbrown::HashMap<Cow<'a, str>, usize, foldhash::fast::FixedState> =
            hashbrown::HashMap::with_capacity_and_hasher(n, Default::default());
        let mut out: Vec<(Cow<'a, str>, ValueRef<'a>)> = Vec::with_capacity(n);
        for (k, v) in std::mem::take(&mut self.0) {
            match position.get(&k) {
                Some(&i) => out[i].1 = v,
                None => {
                    position.insert(k.clone(), out.len());
                    out.push((k, v));
                }
            }
        }
        self.0 = out;
    }

    /// An owned object, moving what is already owned.
    pub fn into_map(self) -> Map {
        let mut m = Map::new();
        for (k, v) in self.0 {
            m.push_unchecked(k.into_owned(), v.into_value());
        }
        m
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the object has no members.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// An owned copy.
    pub fn to_map(&self) -> Map {
        let mut m = Map::new();
        for (k, v) in &self.0 {
            m.push_unchecked(k.as_ref().to_owned(), v.to_value());
        }
        m
    }
}

impl<'a> From<&'a Map> for MapRef<'a> {
    fn from(m: &'a Map) -> Self {
        MapRef(m.iter().map(|(k, v)| (Cow::Borrowed(k), ValueRef::from(v))).collect())
    }
}

impl<'a> From<&'a Value> for ValueRef<'a> {
    fn from(v: &'a Value) -> Self {
        match v {
            Value::Null => ValueRef::Null,
            Value::Bool(b) => ValueRef::Bool(*b),
            // A number's text is canonical: an integer's is what `i64` prints.
            Value::Number(n) => match n.is_integer().then(|| n.to_i64()).flatten() {
                Some(i) => ValueRef::Int(i),
                None => ValueRef::Number(n.clone()),
            },
            Value::String(s) => ValueRef::Str(Cow::Borrowed(s)),
            Value::Array(items) => ValueRef::Array(items.iter().map(ValueRef::from).collect()),
            Value::Object(m) => ValueRef::Object(MapRef::from(m)),
        }
    }
}

impl<'a> ValueRef<'a> {
    /// Python truthiness: `None`, `False`, `0`, `""`, `[]` and `{}` are false.
    pub fn is_truthy(&self) -> bool {
        match self {
            ValueRef::Null => false,
            ValueRef::Bool(b) => *b,
            ValueRef::Int(i) => *i != 0,
            ValueRef::Number(n) => !n.is_zero(),
            ValueRef::Str(s) => !s.is_empty(),
            ValueRef::Array(a) => !a.is_empty(),
            ValueRef::Object(o) => !o.is_empty(),
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            ValueRef::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The object, if this is one.
    pub fn as_object(&self) -> Option<&MapRef<'a>> {
        match self {
            ValueRef::Object(m) => Some(m),
            _ => None,
        }
    }

    /// Python's `int(value)`; see [`Value::to_python_int`].
    pub fn to_python_int(&self) -> Option<i64> {
        match self {
            ValueRef::Int(i) => Some(*i),
            ValueRef::Bool(b) => Some(i64::from(*b)),
            ValueRef::Str(_) | ValueRef::Number(_) => self.to_value().to_python_int(),
            _ => None,
        }
    }

    /// Python's `str(value)`; see [`Value::to_python_str`].
    pub fn to_python_str(&self) -> String {
        match self {
            ValueRef::Str(s) => s.as_ref().to_owned(),
            ValueRef::Int(i) => i.to_string(),
            other => other.to_value().to_python_str(),
        }
    }

    /// An owned copy.
    pub fn to_value(&self) -> Value {
        match self {
            ValueRef::Null => Value::Null,
            ValueRef::Bool(b) => Value::Bool(*b),
            ValueRef::Int(i) => Value::from(*i),
            ValueRef::Number(n) => Value::Number(n.clone()),
            ValueRef::Str(s) => Value::String(s.as_ref().to_owned()),
            ValueRef::Array(items) => Value::Array(items.iter().map(ValueRef::to_value).collect()),
            ValueRef::Object(m) => Value::Object(m.to_map()),
        }
    }

    /// An owned value, moving what is already owned.
    pub fn into_value(self) -> Value {
        match self {
            ValueRef::Str(s) => Value::String(s.into_owned()),
            ValueRef::Array(items) => Value::Array(items.into_iter().map(ValueRef::into_value).collect()),
            ValueRef::Object(m) => Value::Object(m.into_map()),
            other => other.to_value(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::parse;

    #[test]
    fn borrowing_an_owned_value_keeps_what_python_would_see() {
        let v = parse(
            r#"{"a": "x", "n": 3600, "z": -0, "f": 1.5, "big": 123456789012345678901234, "l": [true, null], "o": {}}"#,
        )
        .unwrap();
        let Value::Object(m) = &v else { panic!() };
        let r = MapRef::from(m);
        assert_eq!(r.len(), 7);
        assert_eq!(r.get("a").and_then(ValueRef::as_str), Some("x"));
        assert!(matches!(r.get("n"), Some(ValueRef::Int(3600))));
        assert!(matches!(r.get("z"), Some(ValueRef::Int(0))), "-0 reads as Python's 0");
        assert_eq!(r.get("f").unwrap().to_python_int(), Some(1));
        assert!(!r.get("o").unwrap().is_truthy());
        assert!(!r.get("z").unwrap().is_truthy());
        assert_eq!(r.get("l").unwrap().to_python_str(), "[True, None]");
        assert_eq!(r.get("big").unwrap().to_python_str(), "123456789012345678901234");
        assert!(r.get("missing").is_none());
        assert_eq!(Value::Object(r.to_map()), v);
    }

    #[test]
    fn parsing_borrows_what_needs_no_decoding() {
        let text = r#"{"tok": "abc.def", "esc": "a\u00e9\n", "utf": "é", "n": 7, "big": 1e400, "k": 1, "k": 2, "l": ["x", {}]}"#;
        let ValueRef::Object(m) = crate::json::parse_borrowed(text).unwrap() else { panic!() };
        assert!(matches!(m.get("tok"), Some(ValueRef::Str(Cow::Borrowed("abc.def")))));
        assert!(matches!(m.get("utf"), Some(ValueRef::Str(Cow::Borrowed("é")))));
        assert!(matches!(m.get("esc"), Some(ValueRef::Str(Cow::Owned(s))) if s == "a\u{e9}\n"));
        assert!(matches!(m.get("n"), Some(ValueRef::Int(7))));
        assert_eq!(m.get("big").unwrap().to_value().to_python_str(), "inf");
        // A repeated key: the first position, the last value (Python's json.loads).
        assert_eq!(m.iter().map(|(k, _)| k).collect::<Vec<_>>(), ["tok", "esc", "utf", "n", "big", "k", "l"]);
        assert!(matches!(m.get("k"), Some(ValueRef::Int(2))));
        assert_eq!(Value::Object(m.into_map()), crate::json::parse(text).unwrap());
        assert!(crate::json::parse_borrowed(r#"{"a": "\x"}"#).is_err());
        let many: Vec<String> = (0..20).map(|i| format!("\"k{}\": {i}", i % 19)).collect();
        let text = format!("{{{}}}", many.join(","));
        let ValueRef::Object(m) = crate::json::parse_borrowed(&text).unwrap() else { panic!() };
        assert_eq!(m.len(), 19);
        assert!(matches!(m.get("k0"), Some(ValueRef::Int(19))));
    }
}

//! One cache entry, stored compactly: every string already escaped the way the writer
//! emits it, every other value already rendered, all in one buffer, with a small table
//! of field positions. Serializing is then mostly copying, and an entry costs little
//! more memory than its own JSON.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use crate::error::{Error, ErrorKind, Result};
use crate::json::{self, INDENT, Map, TextSink, Value, escape_into, needs_escape, write_compact, write_indented};
use crate::schema::{CredentialType, KNOWN_FIELDS, field, known_field_id};

/// Depth at which entries sit in a cache document: `{section: {key: entry}}`.
pub(crate) const ENTRY_DEPTH: usize = 2;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub(crate) enum Kind {
    /// A string; the buffer holds its escaped form without quotes.
    Str = 0,
    /// Anything else; the buffer holds it rendered at field depth.
    Raw = 1,
}

const KNOWN: u32 = 1 << 31;

#[derive(Clone, Copy)]
struct Slot {
    /// `KNOWN | id` for a known name, else the offset of the escaped name in `buf`.
    name: u32,
    /// Low 16 bits of the escaped name's length (high 8 in `name_len_hi`): 24 bits
    /// in all without growing the slot past 16 bytes.
    name_len: u16,
    kind: Kind,
    name_len_hi: u8,
    start: u32,
    len: u32,
}

impl Slot {
    fn name_len(&self) -> usize {
        (self.name_len as usize) | ((self.name_len_hi as usize) << 16)
    }
}

const _: () = assert!(std::mem::size_of::<Slot>() == 16);

struct EntryData {
    buf: Box<str>,
    slots: Box<[Slot]>,
}

/// A field's value as stored: the escaped text of a string, or the rendered JSON of
/// anything else. Two values are equal exactly when their `RawField`s are.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct RawField<'a> {
    pub kind: Kind,
    pub text: &'a str,
}

impl<'a> RawField<'a> {
    /// The decoded string, if this is a string.
    pub(crate) fn as_str(self) -> Option<Cow<'a, str>> {
        match self.kind {
            Kind::Str => Some(unescape(self.text)),
            Kind::Raw => None,
        }
    }

    /// Python truthiness of the value.
    pub(crate) fn is_truthy(self) -> bool {
        match self.kind {
            Kind::Str => !self.text.is_empty(),
            Kind::Raw => self.to_value().is_truthy(),
        }
    }

    pub(crate) fn to_value(self) -> Value {
        match self.kind {
            Kind::Str => Value::String(unescape(self.text).into_owned()),
            Kind::Raw => match self.text {
                "null" => Value::Null,
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                t => json::parse(t).unwrap_or(Value::Null),
            },
        }
    }
}

impl RawField<'_> {
    /// Python `==` between two stored values. Equal text is equal; otherwise only
    /// non-string values can still be equal (`1` and `1.0`, `true` and `1`, dicts in
    /// another order), and only then are they decoded.
    pub(crate) fn python_eq(self, other: RawField<'_>) -> bool {
        if self == other {
            return true;
        }
        self.kind == Kind::Raw && other.kind == Kind::Raw && json::python_eq(&self.to_value(), &other.to_value())
    }

    /// Whether equal values always have equal text, so the value can key an index.
    pub(crate) fn has_unique_text(self) -> bool {
        self.kind == Kind::Str || self.text == "null"
    }
}

/// The canonical stored form of a value (what [`RawField`] holds).
pub(crate) fn canonical(v: &Value) -> (Kind, String) {
    let mut s = String::new();
    match v {
        Value::String(text) => {
            escape_into(&mut s, text);
            (Kind::Str, s)
        }
        other => {
            write_indented(&mut s, other, ENTRY_DEPTH + 1);
            (Kind::Raw, s)
        }
    }
}

/// Decodes text produced by our own escaper.
pub(crate) fn unescape(text: &str) -> Cow<'_, str> {
    if !text.contains('\\') {
        return Cow::Borrowed(text);
    }
    let quoted = format!("\"{text}\"");
    match json::parse(&quoted) {
        Ok(Value::String(s)) => Cow::Owned(s),
        _ => Cow::Borrowed(text),
    }
}

/// A field value as [`Entry::fields`] yields it. No `Debug`: it may be a secret.
#[derive(Clone)]
pub enum FieldValue<'a> {
    /// A string, borrowed from the entry when it has nothing to unescape.
    Str(Cow<'a, str>),
    /// Any other JSON value, decoded.
    Other(Value),
}

/// A cache entry (an access token, refresh token, ID token, account or app metadata
/// record). Cheap to clone; immutable; owned by whoever holds it.
///
/// `Debug` never prints the `secret` field.
#[derive(Clone)]
pub struct Entry(Arc<EntryData>);

impl Entry {
    fn slot_name(&self, s: &Slot) -> Cow<'_, str> {
        if s.name & KNOWN != 0 {
            Cow::Borrowed(KNOWN_FIELDS[(s.name & !KNOWN) as usize])
        } else {
            unescape(&self.0.buf[s.name as usize..s.name as usize + s.name_len()])
        }
    }

    fn slot_raw(&self, s: &Slot) -> RawField<'_> {
        RawField { kind: s.kind, text: &self.0.buf[s.start as usize..(s.start + s.len) as usize] }
    }

    pub(crate) fn raw_by_id(&self, id: u8) -> Option<RawField<'_>> {
        let tag = KNOWN | id as u32;
        self.0.slots.iter().find(|s| s.name == tag).map(|s| self.slot_raw(s))
    }

    pub(crate) fn raw(&self, name: &str) -> Option<RawField<'_>> {
        if let Some(id) = known_field_id(name) {
            return self.raw_by_id(id);
        }
        let escaped: Cow<'_, str> = if needs_escape(name) {
            let mut s = String::new();
            escape_into(&mut s, name);
            Cow::Owned(s)
        } else {
            Cow::Borrowed(name)
        };
        self.0
            .slots
            .iter()
            .find(|s| {
                s.name & KNOWN == 0 && &self.0.buf[s.name as usize..s.name as usize + s.name_len()] == escaped.as_ref()
            })
            .map(|s| self.slot_raw(s))
    }

    pub(crate) fn str_by_id(&self, id: u8) -> Option<Cow<'_, str>> {
        self.raw_by_id(id).and_then(|r| r.as_str())
    }

    /// The string value of `name`; `None` when absent or not a string.
    pub fn get_str(&self, name: &str) -> Option<Cow<'_, str>> {
        self.raw(name).and_then(|r| r.as_str())
    }

    /// The value of `name`, decoded.
    pub fn get(&self, name: &str) -> Option<Value> {
        self.raw(name).map(|r| r.to_value())
    }

    /// Whether the entry has a field `name` (Python's `name in entry`).
    pub fn contains(&self, name: &str) -> bool {
        self.raw(name).is_some()
    }

    /// The `secret` (the token itself), if this entry has one.
    pub fn secret(&self) -> Option<Cow<'_, str>> {
        self.str_by_id(field::SECRET)
    }

    /// The `credential_type` field, if it names one of the five types.
    pub fn credential_type(&self) -> Option<CredentialType> {
        self.str_by_id(field::CREDENTIAL_TYPE).and_then(|s| s.parse().ok())
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.0.slots.len()
    }

    /// Whether the entry has no fields.
    pub fn is_empty(&self) -> bool {
        self.0.slots.is_empty()
    }

    /// Field names and decoded values, in stored order.
    pub fn iter(&self) -> impl Iterator<Item = (Cow<'_, str>, Value)> + '_ {
        self.0.slots.iter().map(|s| (self.slot_name(s), self.slot_raw(s).to_value()))
    }

    /// Field names and values in stored order, without copying: strings are borrowed
    /// unless they hold escapes (for a binding that turns them into its own strings).
    pub fn fields(&self) -> impl Iterator<Item = (Cow<'_, str>, FieldValue<'_>)> + '_ {
        self.0.slots.iter().map(|s| {
            let raw = self.slot_raw(s);
            let value = match raw.kind {
                Kind::Str => FieldValue::Str(unescape(raw.text)),
                Kind::Raw => FieldValue::Other(raw.to_value()),
            };
            (self.slot_name(s), value)
        })
    }

    pub(crate) fn iter_raw(&self) -> impl Iterator<Item = (Cow<'_, str>, RawField<'_>)> + '_ {
        self.0.slots.iter().map(|s| (self.slot_name(s), self.slot_raw(s)))
    }

    /// The entry as a JSON object value.
    pub fn to_map(&self) -> Map {
        self.iter().map(|(k, v)| (k.into_owned(), v)).collect()
    }

    /// The entry as compact JSON. Contains the secret: treat the result as one.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(self.0.buf.len() + 16 * self.0.slots.len());
        self.write_compact(&mut out);
        out
    }

    /// Python dict equality: same names with equal values, in any order.
    pub(crate) fn same_content(&self, other: &Entry) -> bool {
        if Arc::ptr_eq(&self.0, &other.0) {
            return true;
        }
        self.0.slots.len() == other.0.slots.len()
            && self.0.slots.iter().all(|s| {
                let name = self.slot_name(s);
                other.raw(&name).is_some_and(|o| o.python_eq(self.slot_raw(s)))
            })
    }

    /// Heap bytes this entry holds (its buffer and slot table).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.0.buf.len() + std::mem::size_of_val(&*self.0.slots) + 2 * std::mem::size_of::<usize>()
    }

    fn write_name(&self, out: &mut impl TextSink, s: &Slot) {
        out.push_ascii(b'"');
        if s.name & KNOWN != 0 {
            out.push_str(KNOWN_FIELDS[(s.name & !KNOWN) as usize]);
        } else {
            out.push_str(&self.0.buf[s.name as usize..s.name as usize + s.name_len()]);
        }
        out.push_ascii(b'"');
    }

    /// The length of what [`write_indented`](Self::write_indented) appends, from the
    /// slot table alone.
    pub(crate) fn indented_len(&self) -> usize {
        if self.0.slots.is_empty() {
            return 2;
        }
        // `{` and `\n        }`, a comma between fields, and per field the newline and
        // indent, two quotes around the name, `: `, and the quotes of a string.
        let mut n = 1 + 10 + (self.0.slots.len() - 1);
        for s in self.0.slots.iter() {
            let name = if s.name & KNOWN != 0 { KNOWN_FIELDS[(s.name & !KNOWN) as usize].len() } else { s.name_len() };
            let quotes = if s.kind == Kind::Str { 2 } else { 0 };
            n += 13 + 2 + name + 2 + s.len as usize + quotes;
        }
        n
    }

    /// Appends the entry as `json.dumps(indent=4)` renders it at entry depth.
    pub(crate) fn write_indented(&self, out: &mut impl TextSink) {
        if self.0.slots.is_empty() {
            out.push_str("{}");
            return;
        }
        const FIELD_INDENT: &str = "\n            ";
        debug_assert_eq!(FIELD_INDENT.len(), 1 + INDENT.len() * (ENTRY_DEPTH + 1));
        self.write_fields(out, FIELD_INDENT, ": ", "\n        }", false);
    }

    /// Appends the entry as compact JSON.
    pub(crate) fn write_compact(&self, out: &mut String) {
        self.write_fields(out, "", ":", "}", true);
    }

    /// `{`, then each field as `<before>"name"<colon>value` separated by commas, then
    /// `close`. Stored values are already in the indented form; compact output
    /// re-renders only nested values (the ones spanning lines).
    fn write_fields(&self, out: &mut impl TextSink, before: &str, colon: &str, close: &str, compact: bool) {
        out.push_ascii(b'{');
        for (i, s) in self.0.slots.iter().enumerate() {
            if i > 0 {
                out.push_ascii(b',');
            }
            out.push_str(before);
            self.write_name(out, s);
            out.push_str(colon);
            let raw = self.slot_raw(s);
            match raw.kind {
                Kind::Str => {
                    out.push_ascii(b'"');
                    out.push_str(raw.text);
                    out.push_ascii(b'"');
                }
                Kind::Raw if compact && raw.text.contains('\n') => {
                    let mut rendered = String::new();
                    write_compact(&mut rendered, &raw.to_value());
                    out.push_str(&rendered);
                }
                Kind::Raw => out.push_str(raw.text),
            }
        }
        out.push_str(close);
    }

    /// Builds an entry from a JSON object.
    pub fn from_map(map: &Map) -> Result<Entry> {
        let mut b = EntryBuilder::with_capacity(map.len(), 64);
        for (k, v) in map.iter() {
            b.set_value(k, v);
        }
        b.build()
    }

    /// `dict(self, **changes)`: this entry with `changes` set (existing names keep
    /// their position, new ones go last).
    pub fn merged_with(&self, changes: &Map) -> Result<Entry> {
        let mut b = EntryBuilder::with_capacity(self.len() + changes.len(), self.0.buf.len() + 64);
        for (name, raw) in self.iter_raw() {
            b.set_raw(&name, raw.kind, raw.text);
        }
        for (k, v) in changes.iter() {
            b.set_value(k, v);
        }
        b.build()
    }
}

impl PartialEq for Entry {
    /// Python dict equality.
    fn eq(&self, other: &Self) -> bool {
        self.same_content(other)
    }
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        for (name, raw) in self.iter_raw() {
            if name == "secret" {
                m.entry(&name, &format_args!("<redacted, {} bytes>", raw.text.len()));
            } else {
                m.entry(&name, &raw.to_value());
            }
        }
        m.finish()
    }
}

/// Assembles an [`Entry`] field by field.
pub(crate) struct EntryBuilder {
    buf: String,
    slots: Vec<Slot>,
    error: Option<&'static str>,
}

impl EntryBuilder {
    pub(crate) fn with_capacity(fields: usize, bytes: usize) -> Self {
        EntryBuilder { buf: String::with_capacity(bytes), slots: Vec::with_capacity(fields), error: None }
    }

    /// The name tag and escaped length of an unknown `name`, storing the name.
    fn name_tag(&mut self, name: &str) -> (u32, usize) {
        let start = self.buf.len();
        escape_into(&mut self.buf, name);
        let len = self.buf.len() - start;
        if len >= 1 << 24 || start >= KNOWN as usize {
            self.error = Some("field name too long");
            return (0, 0);
        }
        (start as u32, len)
    }

    fn find(&self, name: &str, known: Option<u8>) -> Option<usize> {
        if let Some(id) = known {
            let tag = KNOWN | id as u32;
            return self.slots.iter().position(|s| s.name == tag);
        }
        let escaped: Cow<'_, str> = if needs_escape(name) {
            let mut e = String::new();
            escape_into(&mut e, name);
            Cow::Owned(e)
        } else {
            Cow::Borrowed(name)
        };
        self.slots
            .iter()
            .position(|s| s.name & KNOWN == 0 && self.buf[s.name as usize..s.name as usize + s.name_len()] == *escaped)
    }

    fn place(&mut self, name: &str, kind: Kind, write: impl FnOnce(&mut String)) {
        let known = known_field_id(name);
        let existing = if self.slots.is_empty() { None } else { self.find(name, known) };
        let (tag, name_len) = match (existing, known) {
            (Some(i), _) => (self.slots[i].name, self.slots[i].name_len()),
            (None, Some(id)) => (KNOWN | id as u32, 0),
            (None, None) => self.name_tag(name),
        };
        let start = self.buf.len();
        write(&mut self.buf);
        let end = self.buf.len();
        if end > u32::MAX as usize / 2 {
            self.error = Some("entry too large");
            return;
        }
        let slot = Slot {
            name: tag,
            name_len: (name_len & 0xffff) as u16,
            name_len_hi: (name_len >> 16) as u8,
            kind,
            start: start as u32,
            len: (end - start) as u32,
        };
        match existing {
            Some(i) => self.slots[i] = slot,
            None => self.slots.push(slot),
        }
    }

    /// Sets a field from its stored form (escaped string or rendered value).
    pub(crate) fn set_raw(&mut self, name: &str, kind: Kind, text: &str) {
        self.place(name, kind, |b| b.push_str(text));
    }

    /// Sets a string field from its decoded text.
    pub(crate) fn set_str(&mut self, name: &str, value: &str) {
        self.place(name, Kind::Str, |b| escape_into(b, value));
    }

    /// Sets a field from any value.
    pub(crate) fn set_value(&mut self, name: &str, v: &Value) {
        match v {
            Value::String(s) => self.set_str(name, s),
            other => self.place(name, Kind::Raw, |b| write_indented(b, other, ENTRY_DEPTH + 1)),
        }
    }

    /// Builds the entry, handing its buffers over (no copy).
    pub(crate) fn build(self) -> Result<Entry> {
        if let Some(msg) = self.error {
            return Err(Error::new(ErrorKind::InvalidEntry, msg));
        }
        Ok(Entry(Arc::new(EntryData { buf: self.buf.into_boxed_str(), slots: self.slots.into_boxed_slice() })))
    }

    /// Builds an exactly sized entry and leaves the builder empty but with its
    /// capacity, so one builder can assemble many entries without regrowing.
    pub(crate) fn build_and_reset(&mut self) -> Result<Entry> {
        let out = self.build_copy();
        self.buf.clear();
        self.slots.clear();
        self.error = None;
        out
    }

    fn build_copy(&self) -> Result<Entry> {
        if let Some(msg) = self.error {
            return Err(Error::new(ErrorKind::InvalidEntry, msg));
        }
        Ok(Entry(Arc::new(EntryData { buf: self.buf.as_str().into(), slots: self.slots.as_slice().into() })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_the_secret() {
        let mut b = EntryBuilder::with_capacity(3, 64);
        b.set_str("credential_type", "AccessToken");
        b.set_str("secret", "super-secret-token-value");
        b.set_str("weird name\u{e9}", "x");
        let e = b.build().unwrap();
        let dbg = format!("{e:?}");
        assert!(!dbg.contains("super-secret"), "{dbg}");
        assert!(dbg.contains("redacted"));
        assert_eq!(e.get_str("weird name\u{e9}").as_deref(), Some("x"));
    }

    #[test]
    fn duplicate_names_replace_in_place() {
        let mut b = EntryBuilder::with_capacity(3, 64);
        b.set_str("a", "1");
        b.set_str("b", "2");
        b.set_value("a", &Value::from(3));
        let e = b.build().unwrap();
        assert_eq!(e.to_json(), r#"{"a":3,"b":"2"}"#);
    }
}

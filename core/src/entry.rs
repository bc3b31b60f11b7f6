//! One cache entry, stored compactly: every string already escaped the way the writer
//! emits it, every other value already rendered, all in one buffer, with a small table
//! of field positions. Serializing is then mostly copying, and an entry costs little
//! more memory than its own JSON.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use crate::error::{Error, ErrorKind, Result};
use crate::json::{
    self, INDENT, Map, TextSink, Value, ValueRef, escape_into, needs_escape, write_compact, write_indented,
};
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
/// The top bit of [`Slot::len_kind`]: the value is not a string.
const RAW: u32 = 1 << 31;
/// The next bit: the string's stored text holds an escape, so decoding it is not
/// just borrowing it (which spares a scan of every token read).
const ESCAPED: u32 = 1 << 30;
/// The bits of [`Slot::len_kind`] that hold the length.
const LEN: u32 = ESCAPED - 1;

/// One field. Its text sits in `buf` right after the previous field's: the escaped
/// name first when it is not a known one, then the value. Positions are running
/// sums, so a slot is 8 bytes (an entry has a dozen fields, and there are millions).
#[derive(Clone, Copy)]
struct Slot {
    /// `KNOWN | id` for a known name, else the length of the escaped name.
    name: u32,
    /// The value's length, with [`RAW`] set for a non-string and [`ESCAPED`] for a
    /// string with escapes.
    len_kind: u32,
}

const _: () = assert!(std::mem::size_of::<Slot>() == 8);

impl Slot {
    fn stored_name_len(self) -> usize {
        if self.name & KNOWN != 0 { 0 } else { self.name as usize }
    }

    fn value_len(self) -> usize {
        (self.len_kind & LEN) as usize
    }

    fn kind(self) -> Kind {
        if self.len_kind & RAW != 0 { Kind::Raw } else { Kind::Str }
    }
}

/// Where a slot's text sits in `buf`.
#[derive(Clone, Copy)]
struct Span {
    slot: Slot,
    /// Start of the stored name (of the value when the name is a known one).
    name_start: usize,
    /// Start of the value.
    start: usize,
}

// An entry is one allocation: the number of slots (a little-endian `u32`), the
// slots (8 bytes each, the same), zero bytes up to the next cache line, then the text
// (UTF-8). One allocation instead of three (the `Arc`, the text and the slot table):
// reading an entry (a search's results, `serialize`) waits for memory once instead of
// three times in a row (BENCHMARKS.md, "Since 2026-12-05 07:10").
const HEAD: usize = 4;
const SLOT_BYTES: usize = 8;

/// Where the text starts: on a cache line of its own allocation (the `Arc`'s two
/// counts come first), so that copying and scanning it is aligned.
fn text_offset(slots: usize) -> usize {
    const COUNTS: usize = 2 * std::mem::size_of::<usize>();
    (COUNTS + HEAD + SLOT_BYTES * slots).next_multiple_of(64) - COUNTS
}

/// The length of an entry with these slots as `json.dumps(indent=4)` renders it at
/// entry depth: see [`Entry::indented_len`].
fn indented_len(slots: impl ExactSizeIterator<Item = Slot>) -> usize {
    if slots.len() == 0 {
        return 2;
    }
    // `{` and `\n        }`, a comma between fields, and per field the newline and
    // indent, two quotes around the name, `: `, and the quotes of a string.
    let mut n = 1 + 10 + (slots.len() - 1);
    for s in slots {
        let name = if s.name & KNOWN != 0 { KNOWN_FIELDS[(s.name & !KNOWN) as usize].len() } else { s.name as usize };
        let quotes = if s.kind() == Kind::Str { 2 } else { 0 };
        n += 13 + 2 + name + 2 + s.value_len() + quotes;
    }
    n
}

/// A new entry's bytes from its slots and its text.
fn entry_bytes(slots: impl ExactSizeIterator<Item = Slot>, text: &str) -> Arc<[u8]> {
    let start = text_offset(slots.len());
    let total = start + text.len();
    let mut arc = Arc::<[u8]>::new_uninit_slice(total);
    let dst = Arc::get_mut(&mut arc).expect("a new Arc is unique");
    let (head, rest) = dst.split_at_mut(HEAD);
    for (d, s) in head.iter_mut().zip((slots.len() as u32).to_le_bytes()) {
        d.write(s);
    }
    let (table, to) = rest.split_at_mut(start - HEAD);
    let (table, padding) = table.split_at_mut(SLOT_BYTES * slots.len());
    for d in padding {
        d.write(0);
    }
    for (d, slot) in table.chunks_exact_mut(SLOT_BYTES).zip(slots) {
        let mut bytes = [0u8; SLOT_BYTES];
        bytes[..4].copy_from_slice(&slot.name.to_le_bytes());
        bytes[4..].copy_from_slice(&slot.len_kind.to_le_bytes());
        for (d, s) in d.iter_mut().zip(bytes) {
            d.write(s);
        }
    }
    assert_eq!(to.len(), text.len());
    // SAFETY: `to` has room for `text.len()` elements, and `MaybeUninit<u8>` has the
    // layout of `u8`; the source is another allocation.
    unsafe { std::ptr::copy_nonoverlapping(text.as_ptr(), to.as_mut_ptr().cast::<u8>(), text.len()) };
    // SAFETY: the writes above covered all `total` bytes.
    unsafe { arc.assume_init() }
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

/// A field's name as [`Entry::named_fields`] yields it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldName<'a> {
    /// One of the names entries commonly carry: its index in
    /// [`KNOWN_FIELD_NAMES`](crate::KNOWN_FIELD_NAMES), so that a binding can make each
    /// of its own name objects once.
    Known(u8),
    /// Any other name.
    Other(Cow<'a, str>),
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
pub struct Entry(Arc<[u8]>);

impl Entry {
    fn slot_count(&self) -> usize {
        u32::from_le_bytes(self.0[..HEAD].try_into().expect("4 bytes")) as usize
    }

    fn slots(&self) -> impl ExactSizeIterator<Item = Slot> + '_ {
        self.0[HEAD..HEAD + SLOT_BYTES * self.slot_count()].chunks_exact(SLOT_BYTES).map(|b| Slot {
            name: u32::from_le_bytes(b[..4].try_into().expect("4 bytes")),
            len_kind: u32::from_le_bytes(b[4..].try_into().expect("4 bytes")),
        })
    }

    /// The text: each stored name right before its value, in field order.
    fn buf(&self) -> &str {
        let bytes = &self.0[text_offset(self.slot_count())..];
        // SAFETY: `entry_bytes` copied these bytes from a `str`, and no one writes
        // them since (an `Arc<[u8]>` is shared, hence read-only).
        unsafe { std::str::from_utf8_unchecked(bytes) }
    }

    /// Each slot with the position of its text.
    fn spans(&self) -> impl Iterator<Item = Span> + '_ {
        let mut at = 0;
        self.slots().map(move |slot| {
            let name_start = at;
            let start = at + slot.stored_name_len();
            at = start + slot.value_len();
            Span { slot, name_start, start }
        })
    }

    /// The escaped name as stored, or the known name.
    fn escaped_name(&self, sp: &Span) -> &str {
        if sp.slot.name & KNOWN != 0 {
            KNOWN_FIELDS[(sp.slot.name & !KNOWN) as usize]
        } else {
            &self.buf()[sp.name_start..sp.start]
        }
    }

    fn slot_name(&self, sp: &Span) -> Cow<'_, str> {
        if sp.slot.name & KNOWN != 0 { Cow::Borrowed(self.escaped_name(sp)) } else { unescape(self.escaped_name(sp)) }
    }

    fn slot_raw(&self, sp: &Span) -> RawField<'_> {
        RawField { kind: sp.slot.kind(), text: &self.buf()[sp.start..sp.start + sp.slot.value_len()] }
    }

    /// The fields with a known name, in order, with their ids: one pass over the
    /// slots for a caller that wants several of them.
    pub(crate) fn known_fields(&self) -> impl Iterator<Item = (u8, RawField<'_>)> + '_ {
        self.spans()
            .filter(|sp| sp.slot.name & KNOWN != 0)
            .map(|sp| ((sp.slot.name & !KNOWN) as u8, self.slot_raw(&sp)))
    }

    /// Calls `f` with the id and value of each field with a known name, in order:
    /// [`known_fields`](Self::known_fields) as one loop, for the hot paths (an
    /// iterator's items would go through memory on each step).
    #[inline]
    pub(crate) fn for_each_known_field<'a>(&'a self, mut f: impl FnMut(u8, RawField<'a>)) {
        let buf = self.buf();
        let mut at = 0;
        for slot in self.slots() {
            let start = at + slot.stored_name_len();
            at = start + slot.value_len();
            if slot.name & KNOWN != 0 {
                f((slot.name & !KNOWN) as u8, RawField { kind: slot.kind(), text: &buf[start..at] });
            }
        }
    }

    pub(crate) fn raw_by_id(&self, id: u8) -> Option<RawField<'_>> {
        let tag = KNOWN | id as u32;
        self.spans().find(|sp| sp.slot.name == tag).map(|sp| self.slot_raw(&sp))
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
        self.spans()
            .find(|sp| sp.slot.name & KNOWN == 0 && self.escaped_name(sp) == escaped.as_ref())
            .map(|sp| self.slot_raw(&sp))
    }

    /// The decoded string of a slot, borrowed unless it holds escapes.
    fn slot_str(&self, sp: &Span) -> Option<Cow<'_, str>> {
        let raw = self.slot_raw(sp);
        match raw.kind {
            Kind::Str if sp.slot.len_kind & ESCAPED != 0 => Some(unescape(raw.text)),
            Kind::Str => Some(Cow::Borrowed(raw.text)),
            Kind::Raw => None,
        }
    }

    pub(crate) fn str_by_id(&self, id: u8) -> Option<Cow<'_, str>> {
        let tag = KNOWN | id as u32;
        self.spans().find(|sp| sp.slot.name == tag).and_then(|sp| self.slot_str(&sp))
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
        self.slot_count()
    }

    /// Whether the entry has no fields.
    pub fn is_empty(&self) -> bool {
        self.slot_count() == 0
    }

    /// Field names and decoded values, in stored order.
    pub fn iter(&self) -> impl Iterator<Item = (Cow<'_, str>, Value)> + '_ {
        self.spans().map(|sp| (self.slot_name(&sp), self.slot_raw(&sp).to_value()))
    }

    /// Field names and values in stored order, without copying: strings are borrowed
    /// unless they hold escapes (for a binding that turns them into its own strings).
    pub fn fields(&self) -> impl Iterator<Item = (Cow<'_, str>, FieldValue<'_>)> + '_ {
        self.spans().map(|sp| {
            let value = match self.slot_str(&sp) {
                Some(s) => FieldValue::Str(s),
                None => FieldValue::Other(self.slot_raw(&sp).to_value()),
            };
            (self.slot_name(&sp), value)
        })
    }

    /// [`fields`](Self::fields) with the known names as their index: no text to
    /// compare or hash for them.
    pub fn named_fields(&self) -> impl Iterator<Item = (FieldName<'_>, FieldValue<'_>)> + '_ {
        self.spans().map(|sp| {
            let value = match self.slot_str(&sp) {
                Some(s) => FieldValue::Str(s),
                None => FieldValue::Other(self.slot_raw(&sp).to_value()),
            };
            let name = if sp.slot.name & KNOWN != 0 {
                FieldName::Known((sp.slot.name & !KNOWN) as u8)
            } else {
                FieldName::Other(self.slot_name(&sp))
            };
            (name, value)
        })
    }

    pub(crate) fn iter_raw(&self) -> impl Iterator<Item = (Cow<'_, str>, RawField<'_>)> + '_ {
        self.spans().map(|sp| (self.slot_name(&sp), self.slot_raw(&sp)))
    }

    /// The entry as a JSON object value.
    pub fn to_map(&self) -> Map {
        self.iter().map(|(k, v)| (k.into_owned(), v)).collect()
    }

    /// The entry as compact JSON. Contains the secret: treat the result as one.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(self.0.len() + 16 * self.slot_count());
        self.write_compact(&mut out);
        out
    }

    /// Python dict equality: same names with equal values, in any order.
    pub(crate) fn same_content(&self, other: &Entry) -> bool {
        if Arc::ptr_eq(&self.0, &other.0) {
            return true;
        }
        // Two entries of one section mostly differ in their secret: look there first.
        if let (Some(a), Some(b)) = (self.raw_by_id(field::SECRET), other.raw_by_id(field::SECRET))
            && !a.python_eq(b)
        {
            return false;
        }
        self.slot_count() == other.slot_count()
            && self.spans().all(|sp| {
                let name = self.slot_name(&sp);
                other.raw(&name).is_some_and(|o| o.python_eq(self.slot_raw(&sp)))
            })
    }

    /// Heap bytes this entry holds (its one allocation).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.0.len() + 2 * std::mem::size_of::<usize>()
    }

    fn write_name(&self, out: &mut impl TextSink, sp: &Span) {
        out.push_ascii(b'"');
        out.push_str(self.escaped_name(sp));
        out.push_ascii(b'"');
    }

    /// The length of what [`write_indented`](Self::write_indented) appends, from the
    /// slot table alone.
    pub(crate) fn indented_len(&self) -> usize {
        indented_len(self.slots())
    }

    /// Appends the entry as `json.dumps(indent=4)` renders it at entry depth.
    pub(crate) fn write_indented(&self, out: &mut impl TextSink) {
        if self.is_empty() {
            out.push_str("{}");
            return;
        }
        const FIELD_INDENT: &str = "\n            ";
        debug_assert_eq!(FIELD_INDENT.len(), 1 + INDENT.len() * (ENTRY_DEPTH + 1));
        self.write_fields(out, FIELD_INDENT, ": ", "\n        }", false);
    }

    /// Appends the entry as compact JSON.
    pub(crate) fn write_compact(&self, out: &mut impl TextSink) {
        self.write_fields(out, "", ":", "}", true);
    }

    /// `{`, then each field as `<before>"name"<colon>value` separated by commas, then
    /// `close`. Stored values are already in the indented form; compact output
    /// re-renders only nested values (the ones spanning lines).
    fn write_fields(&self, out: &mut impl TextSink, before: &str, colon: &str, close: &str, compact: bool) {
        out.push_ascii(b'{');
        for (i, sp) in self.spans().enumerate() {
            if i > 0 {
                out.push_ascii(b',');
            }
            out.push_str(before);
            self.write_name(out, &sp);
            out.push_str(colon);
            let raw = self.slot_raw(&sp);
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
        let mut b = EntryBuilder::with_capacity(self.len() + changes.len(), self.0.len() + 64);
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

/// A field as the builder placed it: anywhere in its buffer, since a repeated name
/// replaces the value in place (Python's dict keeps the first position).
#[derive(Clone, Copy)]
struct Placed {
    /// `KNOWN | id`, or the escaped name's length (the name sits at `name_start`).
    name: u32,
    name_start: u32,
    start: u32,
    len_kind: u32,
}

/// Assembles an [`Entry`] field by field.
pub(crate) struct EntryBuilder {
    buf: String,
    placed: Vec<Placed>,
    /// Whether a value was replaced, leaving `buf` out of the entry's layout (each
    /// name right before its value, fields in order).
    replaced: bool,
    error: Option<&'static str>,
}

impl EntryBuilder {
    pub(crate) fn with_capacity(fields: usize, bytes: usize) -> Self {
        EntryBuilder {
            buf: String::with_capacity(bytes),
            placed: Vec::with_capacity(fields),
            replaced: false,
            error: None,
        }
    }

    fn placed_name(&self, p: &Placed) -> &str {
        &self.buf[p.name_start as usize..p.name_start as usize + p.name as usize]
    }

    fn find(&self, name: &str, known: Option<u8>) -> Option<usize> {
        if let Some(id) = known {
            let tag = KNOWN | id as u32;
            return self.placed.iter().position(|p| p.name == tag);
        }
        let escaped: Cow<'_, str> = if needs_escape(name) {
            let mut e = String::new();
            escape_into(&mut e, name);
            Cow::Owned(e)
        } else {
            Cow::Borrowed(name)
        };
        self.placed.iter().position(|p| p.name & KNOWN == 0 && self.placed_name(p) == escaped)
    }

    /// Places a field whose value `write` appends; `write` says whether what it
    /// appended (a string's stored text) holds an escape.
    fn place(&mut self, name: &str, kind: Kind, write: impl FnOnce(&mut String) -> bool) {
        let known = known_field_id(name);
        let existing = if self.placed.is_empty() { None } else { self.find(name, known) };
        let name_start = self.buf.len();
        let (tag, name_start) = match (existing, known) {
            (Some(i), _) => (self.placed[i].name, self.placed[i].name_start),
            (None, Some(id)) => (KNOWN | id as u32, name_start as u32),
            (None, None) => {
                escape_into(&mut self.buf, name);
                let len = self.buf.len() - name_start;
                if len >= 1 << 24 {
                    self.error = Some("field name too long");
                }
                (len as u32 & ((1 << 24) - 1), name_start as u32)
            }
        };
        let Some((start, len_kind)) = self.append_value(kind, write) else { return };
        let placed = Placed { name: tag, name_start, start, len_kind };
        match existing {
            Some(i) => {
                self.placed[i] = placed;
                self.replaced = true;
            }
            None => self.placed.push(placed),
        }
    }

    /// Sets a field from its stored form (escaped string or rendered value).
    pub(crate) fn set_raw(&mut self, name: &str, kind: Kind, text: &str) {
        self.place(name, kind, |b| {
            b.push_str(text);
            kind == Kind::Str && text.contains('\\')
        });
    }

    /// Sets a string field from stored text known to hold no escape (a string the
    /// parser found plain), without looking for one.
    pub(crate) fn set_plain_str(&mut self, name: &str, text: &str) {
        debug_assert!(!text.contains('\\'));
        self.place(name, Kind::Str, |b| {
            b.push_str(text);
            false
        });
    }

    /// Sets a string field from its decoded text.
    pub(crate) fn set_str(&mut self, name: &str, value: &str) {
        self.place(name, Kind::Str, |b| {
            let start = b.len();
            escape_into(b, value);
            // Every escape is longer than what it stands for.
            b.len() - start != value.len()
        });
    }

    /// Sets a field from any value.
    pub(crate) fn set_value(&mut self, name: &str, v: &Value) {
        match v {
            Value::String(s) => self.set_str(name, s),
            other => self.place(name, Kind::Raw, |b| {
                write_indented(b, other, ENTRY_DEPTH + 1);
                false
            }),
        }
    }

    /// Places a known field not placed before (what `add` builds: each field once),
    /// without looking its name up.
    fn place_new_known(&mut self, id: u8, kind: Kind, write: impl FnOnce(&mut String) -> bool) {
        let tag = KNOWN | id as u32;
        debug_assert!(self.placed.iter().all(|p| p.name != tag), "field {id} placed twice");
        if let Some((start, len_kind)) = self.append_value(kind, write) {
            self.placed.push(Placed { name: tag, name_start: start, start, len_kind });
        }
    }

    /// Appends a value with `write` (which says whether the string it wrote holds an
    /// escape): its start and [`Slot::len_kind`], or `None` when the entry grew too
    /// large (then recorded as the builder's error).
    fn append_value(&mut self, kind: Kind, write: impl FnOnce(&mut String) -> bool) -> Option<(u32, u32)> {
        let start = self.buf.len();
        let escaped = write(&mut self.buf);
        let end = self.buf.len();
        if end > LEN as usize {
            self.error = Some("entry too large");
            return None;
        }
        let flags = match kind {
            Kind::Raw => RAW,
            Kind::Str if escaped => ESCAPED,
            Kind::Str => 0,
        };
        Some((start as u32, (end - start) as u32 | flags))
    }

    /// [`set_str`](Self::set_str) for a known field set once.
    pub(crate) fn put_str(&mut self, id: u8, value: &str) {
        self.place_new_known(id, Kind::Str, |b| {
            let start = b.len();
            escape_into(b, value);
            b.len() - start != value.len()
        });
    }

    /// [`set_value`](Self::set_value) of a borrowed value, for a known field set once.
    pub(crate) fn put_value_ref(&mut self, id: u8, v: &ValueRef<'_>) {
        match v {
            ValueRef::Str(s) => self.put_str(id, s),
            ValueRef::Null => self.place_new_known(id, Kind::Raw, |b| {
                b.push_str("null");
                false
            }),
            ValueRef::Bool(t) => self.place_new_known(id, Kind::Raw, |b| {
                b.push_str(if *t { "true" } else { "false" });
                false
            }),
            ValueRef::Int(i) => self.place_new_known(id, Kind::Raw, |b| {
                b.push_str(itoa::Buffer::new().format(*i));
                false
            }),
            other => {
                let v = other.to_value();
                self.place_new_known(id, Kind::Raw, |b| {
                    write_indented(b, &v, ENTRY_DEPTH + 1);
                    false
                })
            }
        }
    }

    /// [`put_str`](Self::put_str) of an integer's digits (the SDKs keep times as
    /// strings).
    pub(crate) fn put_int_str(&mut self, id: u8, n: i64) {
        self.place_new_known(id, Kind::Str, |b| {
            b.push_str(itoa::Buffer::new().format(n));
            false
        });
    }

    fn slots(&self) -> impl ExactSizeIterator<Item = Slot> + '_ {
        self.placed.iter().map(|p| Slot { name: p.name, len_kind: p.len_kind })
    }

    /// A known field placed so far, as the entry built next will hold it.
    pub(crate) fn placed_raw(&self, id: u8) -> Option<RawField<'_>> {
        let tag = KNOWN | id as u32;
        let p = self.placed.iter().find(|p| p.name == tag)?;
        let slot = Slot { name: p.name, len_kind: p.len_kind };
        let start = p.start as usize;
        Some(RawField { kind: slot.kind(), text: &self.buf[start..start + slot.value_len()] })
    }

    /// [`Entry::indented_len`] of the entry built next.
    pub(crate) fn indented_len(&self) -> usize {
        indented_len(self.slots())
    }

    /// The entry's buffer: each stored name right before its value, in field order.
    fn laid_out(&self) -> String {
        let mut out = String::with_capacity(self.buf.len());
        for p in &self.placed {
            if p.name & KNOWN == 0 {
                out.push_str(self.placed_name(p));
            }
            let start = p.start as usize;
            out.push_str(&self.buf[start..start + (p.len_kind & LEN) as usize]);
        }
        out
    }

    /// Builds the entry.
    pub(crate) fn build(self) -> Result<Entry> {
        if let Some(msg) = self.error {
            return Err(Error::new(ErrorKind::InvalidEntry, msg));
        }
        self.build_copy()
    }

    /// Builds an exactly sized entry and leaves the builder empty but with its
    /// capacity, so one builder can assemble many entries without regrowing.
    pub(crate) fn build_and_reset(&mut self) -> Result<Entry> {
        let out = self.build_copy();
        self.reset();
        out
    }

    /// Bytes of text the builder holds room for.
    pub(crate) fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Empties the builder, keeping its capacity.
    pub(crate) fn reset(&mut self) {
        self.buf.clear();
        self.placed.clear();
        self.replaced = false;
        self.error = None;
    }

    fn build_copy(&self) -> Result<Entry> {
        if let Some(msg) = self.error {
            return Err(Error::new(ErrorKind::InvalidEntry, msg));
        }
        Ok(Entry(if self.replaced {
            entry_bytes(self.slots(), &self.laid_out())
        } else {
            entry_bytes(self.slots(), &self.buf)
        }))
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

    #[test]
    fn strings_with_escapes_are_decoded_and_plain_ones_borrowed() {
        let mut b = EntryBuilder::with_capacity(4, 16);
        b.set_str("secret", "x\"y\u{e9}");
        b.set_raw("target", Kind::Str, "p\\u00e9 q");
        b.set_plain_str("realm", "plain");
        b.set_str("client_id", "c");
        let e = b.build().unwrap();
        let fields: Vec<(String, String, bool)> = e
            .fields()
            .map(|(k, v)| match v {
                FieldValue::Str(s) => (k.into_owned(), s.to_string(), matches!(s, Cow::Borrowed(_))),
                FieldValue::Other(_) => unreachable!(),
            })
            .collect();
        assert_eq!(
            fields,
            [
                ("secret".to_owned(), "x\"y\u{e9}".to_owned(), false),
                ("target".to_owned(), "p\u{e9} q".to_owned(), false),
                ("realm".to_owned(), "plain".to_owned(), true),
                ("client_id".to_owned(), "c".to_owned(), true),
            ]
        );
        assert_eq!(e.str_by_id(field::TARGET).as_deref(), Some("p\u{e9} q"));
        assert_eq!(e.to_json(), r#"{"secret":"x\"y\u00e9","target":"p\u00e9 q","realm":"plain","client_id":"c"}"#);
    }

    #[test]
    fn replaced_values_keep_every_field_readable() {
        let mut b = EntryBuilder::with_capacity(4, 16);
        b.set_str("x\u{e9}", "1");
        b.set_str("secret", "s");
        b.set_str("y", "2");
        b.set_value("x\u{e9}", &Value::from(3));
        b.set_str("secret", "longer secret");
        b.set_str("z", "4");
        let copy = b.build_copy().unwrap();
        let e = b.build().unwrap();
        for e in [&e, &copy] {
            assert_eq!(e.to_json(), r#"{"x\u00e9":3,"secret":"longer secret","y":"2","z":"4"}"#);
            assert_eq!(e.get("x\u{e9}"), Some(Value::from(3)));
            assert_eq!(e.get_str("y").as_deref(), Some("2"));
            assert_eq!(e.secret().as_deref(), Some("longer secret"));
            let mut text = String::new();
            e.write_indented(&mut text);
            assert_eq!(text.len(), e.indented_len());
        }
    }
}

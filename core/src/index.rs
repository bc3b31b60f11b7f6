//! Secondary indexes of one section: for each indexed field, value -> the slots that
//! hold it; for scopes, scope -> slots whose target contains it; for access tokens,
//! expiry -> slot. A search walks the smallest posting list among its conditions and
//! verifies each candidate, so it costs O(matches), not O(section).
//!
//! Only `home_account_id` is indexed from the start. Every msal query for a user's
//! tokens names it, and its postings are a user's few entries: nothing narrows such a
//! query further. Every other index is built when it is first needed, and kept up to
//! date from then on:
//! - by a query that the indexes already built do not narrow to [`NARROW`] candidates
//!   (an app-only or on-behalf-of query, one naming only `environment`);
//! - for `environment`, `client_id`, `realm`, `family_id` and scopes, also by the first
//!   entry with no user (client credentials: no `home_account_id`), which no user index
//!   narrows, so that the queries for them find their indexes ready.
//!
//! A cache of user tokens so files each token under one posting instead of seven.

use std::collections::BTreeSet;
use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;

use hashbrown::HashMap;

use crate::entry::{Entry, Kind, RawField};
use crate::schema::field;

/// Fields with an index. Queries on other fields are verified on the candidates.
/// The first is indexed from the start, the next [`USER_FREE`] also for entries
/// without a user (see the module's documentation).
pub(crate) const INDEXED_FIELDS: [u8; 10] = [
    field::HOME_ACCOUNT_ID,
    field::ENVIRONMENT,
    field::CLIENT_ID,
    field::REALM,
    field::FAMILY_ID,
    field::SECRET,
    field::USERNAME,
    field::LOCAL_ACCOUNT_ID,
    field::KEY_ID,
    field::USER_ASSERTION_HASH,
];

/// The position of `home_account_id` in [`INDEXED_FIELDS`]: indexed from the start,
/// for all sections at once, in the document's [`UserIndex`].
pub(crate) const USER: usize = 0;

/// The positions in [`INDEXED_FIELDS`] that the first entry without a user indexes
/// (with scopes): `environment`, `client_id`, `realm`, `family_id`. The rest
/// (`secret`, `username`, `local_account_id`, `key_id`, `user_assertion_hash`) only a
/// query builds. No msal app searches by them, and the secret's would be the largest
/// index of all (a value per token).
const USER_FREE: std::ops::Range<usize> = 1..5;

/// A query whose best built posting holds at most this many slots is verified on
/// them as they are: that costs less than another index, built once and then kept
/// up to date at every add.
pub(crate) const NARROW: usize = 32;

pub(crate) fn indexed_position(id: u8) -> Option<usize> {
    const POSITION: [u8; 256] = {
        let mut t = [u8::MAX; 256];
        let mut i = 0;
        while i < INDEXED_FIELDS.len() {
            t[INDEXED_FIELDS[i] as usize] = i as u8;
            i += 1;
        }
        t
    };
    let p = POSITION[id as usize];
    (p != u8::MAX).then_some(p as usize)
}

/// Hash of a stored value. Deterministic (fixed seed) so that it can key maps.
/// Long values (tokens) hash their length and their first and last 64 bytes: a
/// token's tail is its signature, so that discriminates, and a rare collision only
/// adds a candidate that the match then rejects.
///
/// ASCII letters are hashed lower-cased, so that values differing only in case share
/// a posting: sharing mode finds another SDK's copy of an item through it (`Contoso`
/// and `contoso` are one tenant to every SDK), and exact queries lose nothing,
/// because candidates are verified field by field.
#[inline]
pub(crate) fn value_hash(raw: RawField<'_>) -> u64 {
    const SAMPLE: usize = 64;
    let b = raw.text.as_bytes();
    let seed = SEED ^ raw.kind as u64;
    if b.len() <= 4 * SAMPLE {
        folded_hash(seed, b)
    } else {
        let head = folded_hash(seed ^ (b.len() as u64).wrapping_mul(MUL[0]), &b[..SAMPLE]);
        folded_hash(head, &b[b.len() - SAMPLE..])
    }
}

const SEED: u64 = 0x70_6b_6e_63;
/// Digits of pi, as foldhash takes them.
const MUL: [u64; 3] = [0x243f_6a88_85a3_08d3, 0x1319_8a2e_0370_7344, 0xa409_3822_299f_31d0];

/// A hash of `bytes` with ASCII letters lower-cased, 16 bytes per multiply (the
/// hashing step of foldhash, on words folded as they are read: no copy of the value).
#[inline]
fn folded_hash(seed: u64, bytes: &[u8]) -> u64 {
    let word = |b: &[u8]| ascii_lower_word(u64::from_le_bytes(b.try_into().expect("8 bytes")));
    let mut h = seed;
    let mut chunks = bytes.chunks_exact(16);
    for c in &mut chunks {
        h = folded_multiply(word(&c[..8]) ^ h, word(&c[8..]) ^ MUL[1]);
    }
    let mut tail = [0u8; 16];
    tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    h = folded_multiply(word(&tail[..8]) ^ h, word(&tail[8..]) ^ MUL[1]);
    folded_multiply(h ^ bytes.len() as u64, MUL[2])
}

#[inline(always)]
fn folded_multiply(x: u64, y: u64) -> u64 {
    let full = u128::from(x) * u128::from(y);
    (full as u64) ^ ((full >> 64) as u64)
}

/// `make_ascii_lowercase` on the eight bytes of a word at once: a byte below 0x80
/// from `A` to `Z` gains 0x20; every other byte is kept.
#[inline(always)]
fn ascii_lower_word(w: u64) -> u64 {
    const LSB: u64 = 0x0101_0101_0101_0101;
    const MSB: u64 = 0x8080_8080_8080_8080;
    // Each byte's low seven bits: the sums below stay within their byte.
    let low = w & !MSB;
    let from_a = low + LSB * u64::from(0x80 - b'A'); // top bit: byte >= 'A'
    let past_z = low + LSB * u64::from(0x7f - b'Z'); // top bit: byte > 'Z'
    let upper = from_a & !past_z & !w & MSB;
    w | (upper >> 2)
}

#[inline]
pub(crate) fn scope_hash(scope: &str) -> u64 {
    value_hash(RawField { kind: Kind::Str, text: scope })
}

/// Keys are already hashes: pass them through.
#[derive(Default, Clone, Copy)]
pub(crate) struct PassThrough;

pub(crate) struct PassThroughHasher(u64);

impl Hasher for PassThroughHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl BuildHasher for PassThrough {
    type Hasher = PassThroughHasher;
    fn build_hasher(&self) -> PassThroughHasher {
        PassThroughHasher(0)
    }
}

/// Slots holding one value. Small lists stay vectors; large ones become sets so that
/// removal stays O(1), and sets holding most of the slots below their largest one
/// become bitmaps (a client id or an environment every token shares: a bit per slot
/// instead of five bytes per member).
/// Boxed variants keep the enum at 16 bytes: most postings hold one or two slots
/// (a tenant's two tokens, a user's), and every distinct indexed value costs one.
#[allow(clippy::box_collection)] // the box is the point: 8 bytes instead of 24
pub(crate) enum Posting {
    One(u32),
    Two(u32, u32),
    Few(Box<Vec<u32>>),
    Many(Box<hashbrown::HashSet<u32, foldhash::fast::FixedState>>),
    Dense(Box<Bitmap>),
}

const _: () = assert!(std::mem::size_of::<Posting>() == 16);

const FEW_MAX: usize = 32;

/// Sets at least this large become bitmaps when the bitmap is no larger than the set
/// (a byte per member or less); bitmaps twice as sparse become sets again.
const DENSE_MIN: usize = 1024;

/// A set of slots as one bit per slot, with its size.
pub(crate) struct Bitmap {
    words: Vec<u64>,
    len: usize,
}

impl Bitmap {
    fn from_set(s: &hashbrown::HashSet<u32, foldhash::fast::FixedState>) -> Bitmap {
        let max = s.iter().copied().max().unwrap_or(0) as usize;
        let mut b = Bitmap { words: vec![0; max / 64 + 1], len: 0 };
        s.iter().for_each(|&x| {
            b.insert(x);
        });
        b
    }

    fn insert(&mut self, x: u32) -> bool {
        let (w, bit) = (x as usize / 64, 1u64 << (x % 64));
        if w >= self.words.len() {
            self.words.resize(w + 1, 0);
        }
        let new = self.words[w] & bit == 0;
        self.words[w] |= bit;
        self.len += new as usize;
        new
    }

    fn remove(&mut self, x: u32) {
        let (w, bit) = (x as usize / 64, 1u64 << (x % 64));
        if let Some(word) = self.words.get_mut(w)
            && *word & bit != 0
        {
            *word &= !bit;
            self.len -= 1;
        }
    }

    fn for_each(&self, mut f: impl FnMut(u32)) {
        for (i, &word) in self.words.iter().enumerate() {
            let mut rest = word;
            while rest != 0 {
                f((i * 64) as u32 + rest.trailing_zeros());
                rest &= rest - 1;
            }
        }
    }

    /// Whether a set would take less room: fewer than one member per 16 bits.
    fn too_sparse(&self) -> bool {
        self.len * 16 < self.words.len() * 64
    }

    fn to_set(&self) -> hashbrown::HashSet<u32, foldhash::fast::FixedState> {
        let mut s = hashbrown::HashSet::with_capacity_and_hasher(self.len, Default::default());
        self.for_each(|x| {
            s.insert(x);
        });
        s
    }
}

impl Posting {
    pub(crate) fn insert(&mut self, slot: u32) {
        match self {
            Posting::One(a) => {
                if *a != slot {
                    *self = Posting::Two(*a, slot);
                }
            }
            Posting::Two(a, b) => {
                if *a != slot && *b != slot {
                    *self = Posting::Few(Box::new(vec![*a, *b, slot]));
                }
            }
            Posting::Few(v) => {
                if !v.contains(&slot) {
                    v.push(slot);
                    if v.len() > FEW_MAX {
                        let set = v.iter().copied().collect();
                        *self = Posting::Many(Box::new(set));
                    }
                }
            }
            Posting::Many(s) => {
                s.insert(slot);
                // Checked at each doubling of the set only: finding the largest slot
                // walks it.
                if s.len() >= DENSE_MIN && s.len().is_power_of_two() {
                    let b = Bitmap::from_set(s);
                    if !b.too_sparse() && b.words.len() * 8 <= s.len() {
                        *self = Posting::Dense(Box::new(b));
                    }
                }
            }
            Posting::Dense(b) => {
                if b.insert(slot) && b.too_sparse() {
                    *self = Posting::Many(Box::new(b.to_set()));
                }
            }
        }
    }

    /// Removes `slot`; returns true when the posting is now empty.
    pub(crate) fn remove(&mut self, slot: u32) -> bool {
        match self {
            Posting::One(a) => *a == slot,
            Posting::Two(a, b) => {
                if *a == slot {
                    *self = Posting::One(*b);
                } else if *b == slot {
                    *self = Posting::One(*a);
                }
                false
            }
            Posting::Few(v) => {
                if let Some(i) = v.iter().position(|x| *x == slot) {
                    v.swap_remove(i);
                }
                match v.as_slice() {
                    [a] => *self = Posting::One(*a),
                    [a, b] => *self = Posting::Two(*a, *b),
                    _ => {}
                }
                v_is_empty(self)
            }
            Posting::Many(s) => {
                s.remove(&slot);
                if s.len() <= FEW_MAX / 2 {
                    *self = Posting::Few(Box::new(s.iter().copied().collect()));
                }
                v_is_empty(self)
            }
            Posting::Dense(b) => {
                b.remove(slot);
                if b.too_sparse() {
                    *self = Posting::Many(Box::new(b.to_set()));
                }
                v_is_empty(self)
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Posting::One(_) => 1,
            Posting::Two(..) => 2,
            Posting::Few(v) => v.len(),
            Posting::Many(s) => s.len(),
            Posting::Dense(b) => b.len,
        }
    }

    pub(crate) fn for_each(&self, mut f: impl FnMut(u32)) {
        match self {
            Posting::One(a) => f(*a),
            Posting::Two(a, b) => {
                f(*a);
                f(*b);
            }
            Posting::Few(v) => v.iter().copied().for_each(f),
            Posting::Many(s) => s.iter().copied().for_each(f),
            Posting::Dense(b) => b.for_each(f),
        }
    }
}

fn v_is_empty(p: &Posting) -> bool {
    match p {
        Posting::One(_) | Posting::Two(..) => false,
        Posting::Few(v) => v.is_empty(),
        Posting::Many(s) => s.is_empty(),
        Posting::Dense(b) => b.len == 0,
    }
}

type PostingMap = HashMap<u64, Posting, PassThrough>;

fn post(map: &mut PostingMap, h: u64, slot: u32) {
    map.entry(h).and_modify(|p| p.insert(slot)).or_insert(Posting::One(slot));
}

fn unpost(map: &mut PostingMap, h: u64, slot: u32) {
    if let hashbrown::hash_map::Entry::Occupied(mut o) = map.entry(h)
        && o.get_mut().remove(slot)
    {
        o.remove();
    }
}

/// The `home_account_id` index of every section at once: user hash -> for each
/// section (by [`CredentialType::index`](crate::schema::CredentialType::index)), the
/// slots holding that user. An event files a user's tokens in up to four sections;
/// with one map per section, each was a probe of a table of 100,000 users, a cache
/// miss each (most of filing them); here one probe finds the user's record for all.
#[derive(Default)]
pub(crate) struct UserIndex {
    map: hashbrown::HashMap<u64, [Option<Posting>; 5], PassThrough>,
}

impl UserIndex {
    fn post(&mut self, h: u64, section: usize, slot: u32) {
        let record = self.map.entry(h).or_insert_with(|| std::array::from_fn(|_| None));
        match &mut record[section] {
            Some(p) => p.insert(slot),
            none => *none = Some(Posting::One(slot)),
        }
    }

    fn unpost(&mut self, h: u64, section: usize, slot: u32) {
        if let hashbrown::hash_map::Entry::Occupied(mut o) = self.map.entry(h) {
            let record = o.get_mut();
            if record[section].as_mut().is_some_and(|p| p.remove(slot)) {
                record[section] = None;
                if record.iter().all(Option::is_none) {
                    o.remove();
                }
            }
        }
    }

    /// The slots of `section` holding the user whose hash is `h`.
    pub(crate) fn get(&self, h: u64, section: usize) -> Option<&Posting> {
        self.map.get(&h).and_then(|record| record[section].as_ref())
    }

    /// Forgets every posting of `section` (it is being rebuilt).
    pub(crate) fn clear_section(&mut self, section: usize) {
        self.map.retain(|_, record| {
            record[section] = None;
            record.iter().any(Option::is_some)
        });
    }
}

/// The indexes of one section.
pub(crate) struct SectionIndex {
    /// One map per indexed field but the first ([`USER`], in the document's
    /// [`UserIndex`]), each built once needed (see the module's documentation).
    fields: [OnceLock<PostingMap>; INDEXED_FIELDS.len()],
    scopes: OnceLock<PostingMap>,
    /// Access tokens only: `(expires_on, slot)`, for expiry-driven eviction.
    expiry: BTreeSet<(i64, u32)>,
}

impl Default for SectionIndex {
    fn default() -> Self {
        SectionIndex {
            fields: std::array::from_fn(|_| OnceLock::new()),
            scopes: OnceLock::new(),
            expiry: BTreeSet::new(),
        }
    }
}

/// Which posting map a posting lives in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Posted {
    /// `INDEXED_FIELDS[i]`.
    Field(usize),
    Scope,
}

/// An entry's postings: on the stack for all but targets of many scopes.
type Postings = smallvec::SmallVec<[(Posted, u64); 16]>;

/// Which indexes a section keeps.
#[derive(Clone, Copy)]
struct Kept {
    fields: [bool; INDEXED_FIELDS.len()],
    scopes: bool,
}

impl Kept {
    /// Whether the user's is the only index kept (a cache of user tokens).
    fn user_only(self) -> bool {
        !self.scopes && !self.fields[USER + 1..].contains(&true)
    }
}

/// The postings an entry belongs to: one per indexed field it has (among those
/// `kept`), one per scope of its target (a scope repeated in one target is one
/// posting: postings are sets); and its [`expires_on`]. One pass over the fields
/// (an entry has no field twice).
fn postings_and_expiry(entry: &Entry, kept: Kept) -> (Postings, Option<i64>) {
    let mut out = Postings::new();
    let mut target = None;
    let mut expiry = None;
    entry.for_each_known_field(|id, raw| {
        if let Some(i) = indexed_position(id) {
            if kept.fields[i] {
                out.push((Posted::Field(i), value_hash(raw)));
            }
        } else if id == field::TARGET && kept.scopes {
            target = raw.as_str();
        } else if id == field::EXPIRES_ON {
            expiry = expires_on_value(raw);
        }
    });
    if let Some(target) = target {
        out.extend(scopes_of(&target).map(|scope| (Posted::Scope, scope_hash(scope))));
    }
    (out, expiry)
}

/// Python's `int(entry["expires_on"])` where it would succeed.
pub(crate) fn expires_on(entry: &Entry) -> Option<i64> {
    expires_on_value(entry.raw_by_id(field::EXPIRES_ON)?)
}

pub(crate) fn expires_on_value(raw: RawField<'_>) -> Option<i64> {
    // What every SDK writes: a string of a few digits. Read without a copy.
    let t = raw.text.as_bytes();
    if raw.kind == Kind::Str && (1..=18).contains(&t.len()) && t.iter().all(u8::is_ascii_digit) {
        return Some(t.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')));
    }
    raw.to_value().to_python_int()
}

/// Python's `str.isspace()` for one character: Unicode White_Space plus the
/// information separators U+001C..U+001F.
fn python_is_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// `python_is_space` for an ASCII byte.
fn is_ascii_python_space(b: u8) -> bool {
    matches!(b, b'\t'..=b'\r' | 0x1c..=0x1f | b' ')
}

/// The whitespace-separated scopes of a target (Python's `str.split()`).
pub(crate) fn scopes_of(target: &str) -> Scopes<'_> {
    Scopes { rest: target, ascii: target.is_ascii() }
}

/// See [`scopes_of`]. Targets are ASCII in practice: those are split byte by byte.
pub(crate) struct Scopes<'a> {
    rest: &'a str,
    ascii: bool,
}

impl<'a> Iterator for Scopes<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let (start, end) = if self.ascii {
            let b = self.rest.as_bytes();
            let start = b.iter().position(|&c| !is_ascii_python_space(c)).unwrap_or(b.len());
            let len = b[start..].iter().position(|&c| is_ascii_python_space(c)).unwrap_or(b.len() - start);
            (start, start + len)
        } else {
            let start = self.rest.find(|c| !python_is_space(c)).unwrap_or(self.rest.len());
            let len = self.rest[start..].find(python_is_space).unwrap_or(self.rest.len() - start);
            (start, start + len)
        };
        let scope = &self.rest[start..end];
        self.rest = &self.rest[end..];
        (!scope.is_empty()).then_some(scope)
    }
}

impl SectionIndex {
    pub(crate) fn insert(
        &mut self,
        slot: u32,
        entry: &Entry,
        track_expiry: bool,
        users: &mut UserIndex,
        section: usize,
    ) {
        let (postings, expiry) = postings_and_expiry(entry, self.kept());
        self.file_all(users, section, slot, postings, expiry.filter(|_| track_expiry));
    }

    /// [`insert`](Self::insert) of a new entry whose user posting and expiry were
    /// worked out while it was built (`user`: the hash of its user's posting). Where
    /// the section keeps more indexes than the user's, as it does once an entry
    /// without a user came, the entry is read after all.
    pub(crate) fn insert_known(
        &mut self,
        slot: u32,
        entry: &Entry,
        (user, expires_on): (Option<u64>, Option<i64>),
        track_expiry: bool,
        users: &mut UserIndex,
        section: usize,
    ) {
        let kept = self.kept();
        if !kept.user_only() {
            return self.insert(slot, entry, track_expiry, users, section);
        }
        debug_assert!(
            {
                let (postings, expiry) = postings_and_expiry(entry, kept);
                postings.iter().map(|&(_, h)| h).eq(user) && expiry == expires_on
            },
            "what was worked out while building slot {slot} is what it holds"
        );
        let postings = user.map(|h| (Posted::Field(USER), h));
        self.file_all(users, section, slot, postings, expires_on.filter(|_| track_expiry));
    }

    /// Files `slot` under each of `postings`, and under `expiry` if it has one.
    fn file_all(
        &mut self,
        users: &mut UserIndex,
        section: usize,
        slot: u32,
        postings: impl IntoIterator<Item = (Posted, u64)>,
        expiry: Option<i64>,
    ) {
        for (which, hash) in postings {
            self.file(users, section, which, hash, slot);
        }
        if let Some(exp) = expiry {
            self.expiry.insert((exp, slot));
        }
    }

    pub(crate) fn remove(
        &mut self,
        slot: u32,
        entry: &Entry,
        track_expiry: bool,
        users: &mut UserIndex,
        section: usize,
    ) {
        let (postings, expiry) = postings_and_expiry(entry, self.kept());
        for (which, hash) in postings {
            self.unfile(users, section, which, hash, slot);
        }
        if let Some(exp) = expiry.filter(|_| track_expiry) {
            self.expiry.remove(&(exp, slot));
        }
    }

    /// Re-indexes a slot whose entry changes from `old` to `new`, touching only the
    /// postings that differ: a renewed token keeps its client, tenant, scopes and
    /// environment, whose postings are the large ones.
    pub(crate) fn replace(
        &mut self,
        slot: u32,
        old: &Entry,
        new: &Entry,
        track_expiry: bool,
        users: &mut UserIndex,
        section: usize,
    ) {
        let kept = self.kept();
        let (before, e0) = postings_and_expiry(old, kept);
        let (after, e1) = postings_and_expiry(new, kept);
        for &(which, hash) in &before {
            if !after.iter().any(|&(w, h)| w == which && h == hash) {
                self.unfile(users, section, which, hash, slot);
            }
        }
        for &(which, hash) in &after {
            if !before.iter().any(|&(w, h)| w == which && h == hash) {
                self.file(users, section, which, hash, slot);
            }
        }
        if track_expiry && e0 != e1 {
            if let Some(e) = e0 {
                self.expiry.remove(&(e, slot));
            }
            if let Some(e) = e1 {
                self.expiry.insert((e, slot));
            }
        }
    }

    /// Files `slot` under one posting: the user's is in the document's `users`.
    fn file(&mut self, users: &mut UserIndex, section: usize, which: Posted, hash: u64, slot: u32) {
        match which {
            Posted::Field(USER) => users.post(hash, section, slot),
            _ => post(self.map(which), hash, slot),
        }
    }

    /// Takes `slot` from one posting (see [`file`](Self::file)).
    fn unfile(&mut self, users: &mut UserIndex, section: usize, which: Posted, hash: u64, slot: u32) {
        match which {
            Posted::Field(USER) => users.unpost(hash, section, slot),
            _ => unpost(self.map(which), hash, slot),
        }
    }

    /// Which maps exist (are kept up to date); the user's always does.
    fn kept(&self) -> Kept {
        Kept { fields: std::array::from_fn(|i| self.field_built(i)), scopes: self.scopes_built() }
    }

    fn map(&mut self, which: Posted) -> &mut PostingMap {
        match which {
            Posted::Field(i) => self.fields[i].get_mut(),
            Posted::Scope => self.scopes.get_mut(),
        }
        .expect("postings_and_expiry names kept maps only")
    }

    /// Whether the index of `INDEXED_FIELDS[pos]` exists: looking at it costs a probe.
    pub(crate) fn field_built(&self, pos: usize) -> bool {
        pos == USER || self.fields[pos].get().is_some()
    }

    pub(crate) fn scopes_built(&self) -> bool {
        self.scopes.get().is_some()
    }

    /// Builds the indexes that entries without a user are found by, from `entries`
    /// (the section's), unless they exist. Called before such an entry is filed.
    pub(crate) fn keep_user_free<'e, I>(&self, entries: impl Fn() -> I)
    where
        I: Iterator<Item = (u32, &'e Entry)>,
    {
        for pos in USER_FREE {
            self.field_map(pos, &entries);
        }
        self.scope_map(&entries);
    }

    fn field_map<'e, I>(&self, pos: usize, entries: impl FnOnce() -> I) -> &PostingMap
    where
        I: Iterator<Item = (u32, &'e Entry)>,
    {
        debug_assert_ne!(pos, USER, "the user index is the document's (UserIndex)");
        self.fields[pos].get_or_init(|| {
            let id = INDEXED_FIELDS[pos];
            let mut map = PostingMap::default();
            for (slot, entry) in entries() {
                if let Some(raw) = entry.raw_by_id(id) {
                    post(&mut map, value_hash(raw), slot);
                }
            }
            map
        })
    }

    fn scope_map<'e, I>(&self, entries: impl FnOnce() -> I) -> &PostingMap
    where
        I: Iterator<Item = (u32, &'e Entry)>,
    {
        self.scopes.get_or_init(|| {
            let mut map = PostingMap::default();
            for (slot, entry) in entries() {
                if let Some(target) = entry.raw_by_id(field::TARGET).and_then(|raw| raw.as_str()) {
                    for scope in scopes_of(&target) {
                        post(&mut map, scope_hash(scope), slot);
                    }
                }
            }
            map
        })
    }

    /// The slots whose field `INDEXED_FIELDS[pos]` has a value hashing to `hash`. A
    /// field not indexed yet is indexed now, from `entries` (the section's).
    pub(crate) fn field_posting<'e, I>(&self, pos: usize, hash: u64, entries: impl FnOnce() -> I) -> Option<&Posting>
    where
        I: Iterator<Item = (u32, &'e Entry)>,
    {
        self.field_map(pos, entries).get(&hash)
    }

    /// The slots whose target holds a scope hashing to `hash`; scopes not indexed yet
    /// are indexed now, from `entries` (the section's).
    pub(crate) fn scope_posting<'e, I>(&self, hash: u64, entries: impl FnOnce() -> I) -> Option<&Posting>
    where
        I: Iterator<Item = (u32, &'e Entry)>,
    {
        self.scope_map(entries).get(&hash)
    }

    /// Slots of access tokens with `expires_on < now`, in expiry order.
    pub(crate) fn expired_before(&self, now: i64) -> impl Iterator<Item = u32> + '_ {
        self.expiry.range(..(now, 0)).map(|(_, s)| *s)
    }

    pub(crate) fn earliest_expiry(&self) -> Option<i64> {
        self.expiry.first().map(|(e, _)| *e)
    }

    pub(crate) fn latest_expiry(&self) -> Option<i64> {
        self.expiry.last().map(|(e, _)| *e)
    }

    /// Approximate heap bytes of the indexes.
    #[allow(dead_code)]
    pub(crate) fn heap_bytes(&self) -> usize {
        let map_bytes = |m: &PostingMap| {
            m.capacity() * (8 + std::mem::size_of::<Posting>() + 1)
                + m.values()
                    .map(|p| match p {
                        Posting::One(_) | Posting::Two(..) => 0,
                        Posting::Few(v) => v.capacity() * 4,
                        Posting::Many(s) => s.capacity() * 5,
                        Posting::Dense(b) => b.words.capacity() * 8,
                    })
                    .sum::<usize>()
        };
        self.fields.iter().filter_map(OnceLock::get).map(map_bytes).sum::<usize>()
            + self.scopes.get().map_or(0, map_bytes)
            + self.expiry.len() * 24
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_lower_cased_as_make_ascii_lowercase_does() {
        // Every byte value at every position of a word, among neighbours that are
        // letters, digits, punctuation and non-ASCII.
        let around = [b'A', b'z', b'Z' + 1, b'@', b'0', 0x80, 0xc1, 0xda, 0xff, 0];
        for pos in 0..8 {
            for v in 0..=255u8 {
                for &n in &around {
                    let mut bytes = [n; 8];
                    bytes[pos] = v;
                    let mut expected = bytes;
                    expected.make_ascii_lowercase();
                    assert_eq!(ascii_lower_word(u64::from_le_bytes(bytes)).to_le_bytes(), expected, "{bytes:?}");
                }
            }
        }
    }

    #[test]
    fn values_differing_only_in_ascii_case_hash_alike_and_others_apart() {
        let hash = |t: &str| value_hash(RawField { kind: Kind::Str, text: t });
        let text: String = (0..400).map(|i| char::from(b'a' + (i * 7 % 26) as u8)).collect();
        let mut seen = std::collections::HashSet::new();
        for len in 0..text.len() {
            let lower = &text[..len];
            let upper = lower.to_ascii_uppercase();
            assert_eq!(hash(lower), hash(&upper), "length {len}");
            // Every prefix is a different value (and so is one with a non-letter changed).
            assert!(seen.insert(hash(lower)), "length {len}");
            if len > 0 {
                let mut other = lower.to_owned().into_bytes();
                // A long value's middle is not hashed (see value_hash): change its end.
                other[if len <= 256 { len / 2 } else { len - 1 }] = b'-';
                assert_ne!(hash(lower), hash(std::str::from_utf8(&other).unwrap()), "length {len}");
            }
        }
        // The kind is part of the value: the string "1" and the number 1 differ.
        assert_ne!(hash("1"), value_hash(RawField { kind: Kind::Raw, text: "1" }));
        // Non-ASCII letters are not folded (Python's lower() is not what SDKs compare).
        assert_ne!(hash("caf\u{e9}"), hash("CAF\u{c9}"));
    }

    #[test]
    fn scopes_split_as_python_str_split() {
        let naive = |t: &str| -> Vec<String> {
            t.split(python_is_space).filter(|s| !s.is_empty()).map(str::to_owned).collect()
        };
        for t in [
            "",
            " ",
            "a",
            "  a  b\tc\n\x0bd\x0ce\rf ",
            "a\x1cb\x1dc\x1ed\x1fe",
            "https://graph.microsoft.com/.default",
            "caf\u{e9} th\u{e9}\u{3000}x\u{85}y\u{a0}z",
            "\u{2003}lead trail\u{2028}",
            "a\x00b",
        ] {
            assert_eq!(scopes_of(t).collect::<Vec<_>>(), naive(t), "{t:?}");
        }
    }

    fn members(p: &Posting) -> Vec<u32> {
        let mut v = Vec::new();
        p.for_each(|x| v.push(x));
        v.sort_unstable();
        v
    }

    /// Random inserts and removals through every representation agree with a set.
    #[test]
    fn postings_agree_with_a_set_through_every_form() {
        let mut seen = [false; 5];
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for round in 0..40 {
            // Dense ranges, sparse ranges, and growth then shrinkage.
            let spread = [3_000u64, 300_000, 5_000][round % 3];
            let mut model = std::collections::BTreeSet::new();
            let first = (next() % spread) as u32;
            let mut p = Posting::One(first);
            model.insert(first);
            for step in 0..6_000 {
                let x = (next() % spread) as u32;
                let grow = step < 4_000 || next() % 4 == 0;
                if grow {
                    p.insert(x);
                    model.insert(x);
                } else if model.len() > 1 || !model.contains(&x) {
                    assert!(!p.remove(x));
                    model.remove(&x);
                }
                seen[match p {
                    Posting::One(_) => 0,
                    Posting::Two(..) => 1,
                    Posting::Few(_) => 2,
                    Posting::Many(_) => 3,
                    Posting::Dense(_) => 4,
                }] = true;
                assert_eq!(p.len(), model.len());
            }
            assert_eq!(members(&p), model.iter().copied().collect::<Vec<_>>());
            // Down to empty.
            let all: Vec<u32> = model.iter().copied().collect();
            for (i, x) in all.iter().enumerate() {
                assert_eq!(p.remove(*x), i + 1 == all.len());
                if i + 1 < all.len() {
                    assert_eq!(p.len(), all.len() - i - 1);
                    seen[0] |= matches!(p, Posting::One(_));
                }
            }
        }
        assert_eq!(seen, [true; 5], "every representation was exercised");
    }
}

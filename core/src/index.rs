//! Secondary indexes of one section: for each indexed field, value -> the slots that
//! hold it; for scopes, scope -> slots whose target contains it; for access tokens,
//! expiry -> slot. A search walks the smallest posting list among its conditions and
//! verifies each candidate, so it costs O(matches), not O(section).

use std::collections::BTreeSet;
use std::hash::{BuildHasher, Hasher};

use hashbrown::HashMap;

use crate::entry::{Entry, Kind, RawField};
use crate::schema::field;

/// Fields with an index. Queries on other fields are verified on the candidates.
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

pub(crate) fn indexed_position(id: u8) -> Option<usize> {
    INDEXED_FIELDS.iter().position(|f| *f == id)
}

/// Hash of a stored value. Deterministic (fixed seed) so that it can key maps.
/// Long values (tokens) hash their length and their first and last 64 bytes: a
/// token's tail is its signature, so that discriminates, and a rare collision only
/// adds a candidate that the match then rejects.
#[inline]
pub(crate) fn value_hash(raw: RawField<'_>) -> u64 {
    const SAMPLE: usize = 64;
    let mut h = foldhash::quality::FixedState::with_seed(0x70_6b_6e_63).build_hasher();
    h.write_u8(raw.kind as u8);
    let b = raw.text.as_bytes();
    if b.len() <= 4 * SAMPLE {
        write_folded(&mut h, b);
    } else {
        h.write_usize(b.len());
        write_folded(&mut h, &b[..SAMPLE]);
        write_folded(&mut h, &b[b.len() - SAMPLE..]);
    }
    h.finish()
}

/// Writes `bytes` ASCII-lower-cased, in 64-byte pieces whatever their case, so that
/// values differing only in case share a posting: sharing mode finds another SDK's
/// copy of an item through it (`Contoso` and `contoso` are one tenant to every SDK),
/// and exact queries lose nothing, because candidates are verified field by field.
#[inline]
fn write_folded(h: &mut impl Hasher, bytes: &[u8]) {
    let mut buf = [0u8; 64];
    for piece in bytes.chunks(64) {
        let out = &mut buf[..piece.len()];
        out.copy_from_slice(piece);
        out.make_ascii_lowercase();
        h.write(out);
    }
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
/// removal stays O(1).
/// Boxed variants keep the enum at 16 bytes: most postings are a single slot, and
/// every distinct indexed value costs one.
#[allow(clippy::box_collection)] // the box is the point: 8 bytes instead of 24
pub(crate) enum Posting {
    One(u32),
    Few(Box<Vec<u32>>),
    Many(Box<hashbrown::HashSet<u32, foldhash::fast::FixedState>>),
}

const _: () = assert!(std::mem::size_of::<Posting>() == 16);

const FEW_MAX: usize = 32;

impl Posting {
    pub(crate) fn insert(&mut self, slot: u32) {
        match self {
            Posting::One(a) => {
                if *a != slot {
                    *self = Posting::Few(Box::new(vec![*a, slot]));
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
            }
        }
    }

    /// Removes `slot`; returns true when the posting is now empty.
    pub(crate) fn remove(&mut self, slot: u32) -> bool {
        match self {
            Posting::One(a) => *a == slot,
            Posting::Few(v) => {
                if let Some(i) = v.iter().position(|x| *x == slot) {
                    v.swap_remove(i);
                }
                if v.len() == 1 {
                    *self = Posting::One(v[0]);
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
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Posting::One(_) => 1,
            Posting::Few(v) => v.len(),
            Posting::Many(s) => s.len(),
        }
    }

    pub(crate) fn for_each(&self, mut f: impl FnMut(u32)) {
        match self {
            Posting::One(a) => f(*a),
            Posting::Few(v) => v.iter().copied().for_each(f),
            Posting::Many(s) => s.iter().copied().for_each(f),
        }
    }
}

fn v_is_empty(p: &Posting) -> bool {
    match p {
        Posting::One(_) => false,
        Posting::Few(v) => v.is_empty(),
        Posting::Many(s) => s.is_empty(),
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

/// The indexes of one section.
#[derive(Default)]
pub(crate) struct SectionIndex {
    fields: [PostingMap; INDEXED_FIELDS.len()],
    scopes: PostingMap,
    /// Access tokens only: `(expires_on, slot)`, for expiry-driven eviction.
    expiry: BTreeSet<(i64, u32)>,
}

/// Which posting map a posting lives in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Posted {
    /// `INDEXED_FIELDS[i]`.
    Field(usize),
    Scope,
}

/// The postings an entry belongs to: one per indexed field it has, one per scope of
/// its target (a scope repeated in one target is one posting: postings are sets).
fn postings_of(entry: &Entry) -> Vec<(Posted, u64)> {
    let mut out = Vec::with_capacity(INDEXED_FIELDS.len() + 4);
    for (i, id) in INDEXED_FIELDS.iter().enumerate() {
        if let Some(raw) = entry.raw_by_id(*id) {
            out.push((Posted::Field(i), value_hash(raw)));
        }
    }
    if let Some(target) = entry.str_by_id(field::TARGET) {
        out.extend(scopes_of(&target).map(|scope| (Posted::Scope, scope_hash(scope))));
    }
    out
}

/// Python's `int(entry["expires_on"])` where it would succeed.
pub(crate) fn expires_on(entry: &Entry) -> Option<i64> {
    entry.raw_by_id(field::EXPIRES_ON).and_then(|r| r.to_value().to_python_int())
}

/// Python's `str.isspace()` for one character: Unicode White_Space plus the
/// information separators U+001C..U+001F.
fn python_is_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// The whitespace-separated scopes of a target (Python's `str.split()`).
pub(crate) fn scopes_of(target: &str) -> impl Iterator<Item = &str> {
    target.split(python_is_space).filter(|s| !s.is_empty())
}

impl SectionIndex {
    pub(crate) fn insert(&mut self, slot: u32, entry: &Entry, track_expiry: bool) {
        for (which, hash) in postings_of(entry) {
            post(self.map(which), hash, slot);
        }
        if let Some(exp) = expires_on(entry).filter(|_| track_expiry) {
            self.expiry.insert((exp, slot));
        }
    }

    pub(crate) fn remove(&mut self, slot: u32, entry: &Entry, track_expiry: bool) {
        for (which, hash) in postings_of(entry) {
            unpost(self.map(which), hash, slot);
        }
        if let Some(exp) = expires_on(entry).filter(|_| track_expiry) {
            self.expiry.remove(&(exp, slot));
        }
    }

    /// Re-indexes a slot whose entry changes from `old` to `new`, touching only the
    /// postings that differ: a renewed token keeps its client, tenant, scopes and
    /// environment, whose postings are the large ones.
    pub(crate) fn replace(&mut self, slot: u32, old: &Entry, new: &Entry, track_expiry: bool) {
        let before = postings_of(old);
        let after = postings_of(new);
        for &(which, hash) in &before {
            if !after.iter().any(|&(w, h)| w == which && h == hash) {
                unpost(self.map(which), hash, slot);
            }
        }
        for &(which, hash) in &after {
            if !before.iter().any(|&(w, h)| w == which && h == hash) {
                post(self.map(which), hash, slot);
            }
        }
        if track_expiry {
            let (e0, e1) = (expires_on(old), expires_on(new));
            if e0 != e1 {
                if let Some(e) = e0 {
                    self.expiry.remove(&(e, slot));
                }
                if let Some(e) = e1 {
                    self.expiry.insert((e, slot));
                }
            }
        }
    }

    fn map(&mut self, which: Posted) -> &mut PostingMap {
        match which {
            Posted::Field(i) => &mut self.fields[i],
            Posted::Scope => &mut self.scopes,
        }
    }

    pub(crate) fn field_posting(&self, pos: usize, hash: u64) -> Option<&Posting> {
        self.fields[pos].get(&hash)
    }

    pub(crate) fn scope_posting(&self, hash: u64) -> Option<&Posting> {
        self.scopes.get(&hash)
    }

    /// Slots of access tokens with `expires_on < now`, in expiry order.
    pub(crate) fn expired_before(&self, now: i64) -> impl Iterator<Item = u32> + '_ {
        self.expiry.range(..(now, 0)).map(|(_, s)| *s)
    }

    pub(crate) fn earliest_expiry(&self) -> Option<i64> {
        self.expiry.first().map(|(e, _)| *e)
    }

    /// Approximate heap bytes of the indexes.
    #[allow(dead_code)]
    pub(crate) fn heap_bytes(&self) -> usize {
        let map_bytes = |m: &PostingMap| {
            m.capacity() * (8 + std::mem::size_of::<Posting>() + 1)
                + m.values()
                    .map(|p| match p {
                        Posting::One(_) => 0,
                        Posting::Few(v) => v.capacity() * 4,
                        Posting::Many(s) => s.capacity() * 5,
                    })
                    .sum::<usize>()
        };
        self.fields.iter().map(map_bytes).sum::<usize>() + map_bytes(&self.scopes) + self.expiry.len() * 24
    }
}

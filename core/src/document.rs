//! The cache document: sections in their original order, each an insertion-ordered
//! map of key -> entry with indexes. This is msal's `_cache` dict, made searchable.

use std::borrow::Cow;

use hashbrown::HashTable;

use crate::entry::{ENTRY_DEPTH, Entry, EntryBuilder, Kind, RawField};
use crate::error::{Error, ErrorKind, Result};
use crate::index::{
    NARROW, Posting, SectionIndex, USER, UserIndex, expires_on_value, indexed_position, scope_hash, scopes_of,
    value_hash,
};
use crate::json::{INDENT, Parser, TextSink, Value, escape_into, needs_escape, write_compact, write_indented};
use crate::limits::{CacheLimits, EvictionCounts, Limiter, Reason};
use crate::partition::{pack, partition_hash, partition_hash_of, partition_key, unpack};
use crate::schema::{CredentialType, KeyParts, cache_key_into, field};
use crate::sharing::Profile;

/// What a key of a known section maps to.
#[derive(Clone)]
pub(crate) enum Stored {
    Entry(Entry),
    /// A value that is not an object (another SDK's garbage, or `null`): kept as
    /// rendered at entry depth, never matched.
    Opaque(Box<str>),
}

pub(crate) struct Slot {
    /// The key, escaped as the writer emits it.
    pub key: Box<str>,
    pub value: Stored,
}

/// One known section.
#[derive(Default)]
pub(crate) struct Section {
    /// Its credential type's [`index`](CredentialType::index): its place in the
    /// document's [`UserIndex`].
    ct: usize,
    slots: Vec<Option<Slot>>,
    live: usize,
    by_key: HashTable<u32>,
    pub index: SectionIndex,
    track_expiry: bool,
    /// Bytes the live slots take in `json.dumps(indent=4)`, as [`member_len`] counts
    /// them, so that a document's length is known without walking its entries.
    text_len: usize,
}

/// What a slot adds to its section's text at entry depth: newline and indent, the
/// quoted key, `: ` and the value (the comma before it is the section's to count).
fn member_len(escaped_key: &str, value: &Stored) -> usize {
    let value = match value {
        Stored::Entry(e) => e.indented_len(),
        Stored::Opaque(r) => r.len(),
    };
    member_len_of(escaped_key, value)
}

fn member_len_of(escaped_key: &str, indented_value_len: usize) -> usize {
    1 + 2 * crate::json::INDENT.len() + 2 + escaped_key.len() + 2 + indented_value_len
}

/// The entries of `slots`, with their slot numbers.
fn live_entries(slots: &[Option<Slot>]) -> impl Iterator<Item = (u32, &Entry)> + '_ {
    slots.iter().enumerate().filter_map(|(i, s)| match s {
        Some(Slot { value: Stored::Entry(e), .. }) => Some((i as u32, e)),
        _ => None,
    })
}

/// Whether an entry belongs to a user: it has a `home_account_id` that is a
/// non-empty string (client credentials' tokens have `null` or `""`).
fn has_user(e: &Entry) -> bool {
    e.raw_by_id(field::HOME_ACCOUNT_ID).is_some_and(is_user)
}

fn is_user(home_account_id: RawField<'_>) -> bool {
    home_account_id.kind == Kind::Str && !home_account_id.text.is_empty()
}

/// What filing a new entry takes from its fields (its user's posting, its expiry,
/// its length as text), read from the builder before the entry is built, while those
/// fields are in cache. A built entry's lines have gone cold by the time it is filed,
/// after the event's other entries were built: reading them then cost a miss each
/// (BENCHMARKS.md, "Since 2026-12-05 14:40").
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Filing {
    /// The hash of its user's posting, if it belongs to a user (see [`has_user`]).
    /// An entry without one is filed from the entry: its section keeps the indexes
    /// such entries are found by.
    user: Option<u64>,
    expires_on: Option<i64>,
    indented_len: usize,
}

impl Filing {
    /// What the entry `b` builds next needs.
    pub(crate) fn of(b: &EntryBuilder) -> Filing {
        Filing::from_fields(b.placed_raw(field::HOME_ACCOUNT_ID), b.placed_raw(field::EXPIRES_ON), b.indented_len())
    }

    /// What `e` says of itself: what [`of`](Self::of) must have said of it.
    #[cfg(test)]
    pub(crate) fn of_entry(e: &Entry) -> Filing {
        Filing::from_fields(e.raw_by_id(field::HOME_ACCOUNT_ID), e.raw_by_id(field::EXPIRES_ON), e.indented_len())
    }

    fn from_fields(
        home_account_id: Option<RawField<'_>>,
        expires_on: Option<RawField<'_>>,
        indented_len: usize,
    ) -> Self {
        Filing {
            user: home_account_id.filter(|&raw| is_user(raw)).map(value_hash),
            expires_on: expires_on.and_then(expires_on_value),
            indented_len,
        }
    }

    #[cfg(test)]
    pub(crate) fn has_user(&self) -> bool {
        self.user.is_some()
    }
}

fn key_hash(escaped_key: &str) -> u64 {
    use std::hash::BuildHasher;
    foldhash::quality::FixedState::with_seed(0x6b_65_79).hash_one(escaped_key)
}

impl Section {
    fn new(ct: CredentialType) -> Self {
        Section { ct: ct.index(), track_expiry: ct == CredentialType::AccessToken, ..Default::default() }
    }

    pub(crate) fn len(&self) -> usize {
        self.live
    }

    /// Room for `n` more entries.
    fn reserve(&mut self, n: usize) {
        self.slots.reserve(n);
        let slots = &self.slots;
        self.by_key.reserve(n, |&j| key_hash(&slots[j as usize].as_ref().expect("indexed slots are live").key));
    }

    pub(crate) fn slot(&self, i: u32) -> Option<&Slot> {
        self.slots.get(i as usize).and_then(|s| s.as_ref())
    }

    pub(crate) fn entry(&self, i: u32) -> Option<&Entry> {
        match self.slot(i) {
            Some(Slot { value: Stored::Entry(e), .. }) => Some(e),
            _ => None,
        }
    }

    /// See [`SectionIndex::field_posting`]; the user's is in `users`.
    pub(crate) fn field_posting<'s>(&'s self, pos: usize, hash: u64, users: &'s UserIndex) -> Option<&'s Posting> {
        if pos == USER {
            return users.get(hash, self.ct);
        }
        self.index.field_posting(pos, hash, || live_entries(&self.slots))
    }

    /// See [`SectionIndex::scope_posting`].
    pub(crate) fn scope_posting(&self, hash: u64) -> Option<&crate::index::Posting> {
        self.index.scope_posting(hash, || live_entries(&self.slots))
    }

    /// Builds the indexes entries without a user are found by, before `e` is filed,
    /// if it is one.
    fn index_for(&self, e: &Entry, filing: Option<&Filing>) {
        if !filing.map_or_else(|| has_user(e), |f| f.user.is_some()) {
            self.index.keep_user_free(|| live_entries(&self.slots));
        }
    }

    pub(crate) fn live_slots(&self) -> impl Iterator<Item = (u32, &Slot)> + '_ {
        self.slots.iter().enumerate().filter_map(|(i, s)| s.as_ref().map(|s| (i as u32, s)))
    }

    pub(crate) fn find(&self, escaped_key: &str) -> Option<u32> {
        self.find_hashed(key_hash(escaped_key), escaped_key)
    }

    fn find_hashed(&self, h: u64, escaped_key: &str) -> Option<u32> {
        self.by_key.find(h, |&i| self.slots[i as usize].as_ref().is_some_and(|s| &*s.key == escaped_key)).copied()
    }

    /// Python's `section[key] = value`: an existing key keeps its position.
    /// Returns the slot and the entry it replaced; `None` when the key already held
    /// an equal entry, which is then left as it is.
    /// The key is taken as it comes: an owned one is kept, not copied. `filing` is
    /// what the entry's builder said of it, if it came from one.
    pub(crate) fn put(
        &mut self,
        escaped_key: Cow<'_, str>,
        value: Stored,
        filing: Option<&Filing>,
        users: &mut UserIndex,
    ) -> Option<(u32, Option<Stored>)> {
        let h = key_hash(&escaped_key);
        if let Some(i) = self.find_hashed(h, &escaped_key) {
            let slot = self.slots[i as usize].as_mut().expect("found slots are live");
            // Re-adding what is already there (app metadata on every add) changes nothing.
            if let (Stored::Entry(old), Stored::Entry(new)) = (&slot.value, &value)
                && old.same_content(new)
            {
                return None;
            }
            if let Stored::Entry(new) = &value {
                self.index_for(new, filing);
            }
            let slot = self.slots[i as usize].as_mut().expect("found slots are live");
            match (&slot.value, &value) {
                (Stored::Entry(old), Stored::Entry(new)) => {
                    self.index.replace(i, old, new, self.track_expiry, users, self.ct)
                }
                (Stored::Entry(old), Stored::Opaque(_)) => self.index.remove(i, old, self.track_expiry, users, self.ct),
                (Stored::Opaque(_), Stored::Entry(new)) => self.index.insert(i, new, self.track_expiry, users, self.ct),
                (Stored::Opaque(_), Stored::Opaque(_)) => {}
            }
            let old = std::mem::replace(&mut slot.value, value);
            self.text_len = self.text_len + member_len(&escaped_key, &slot.value) - member_len(&escaped_key, &old);
            return Some((i, Some(old)));
        }
        let i = self.slots.len() as u32;
        match (&value, filing) {
            (Stored::Entry(e), Some(f)) => {
                self.index_for(e, filing);
                self.index.insert_known(i, e, (f.user, f.expires_on), self.track_expiry, users, self.ct);
                debug_assert_eq!(f.indented_len, e.indented_len());
                self.text_len += member_len_of(&escaped_key, f.indented_len);
            }
            (Stored::Entry(e), None) => {
                self.index_for(e, None);
                self.index.insert(i, e, self.track_expiry, users, self.ct);
                self.text_len += member_len(&escaped_key, &value);
            }
            (Stored::Opaque(_), _) => self.text_len += member_len(&escaped_key, &value),
        }
        self.slots.push(Some(Slot { key: escaped_key.into_owned().into_boxed_str(), value }));
        self.live += 1;
        let slots = &self.slots;
        self.by_key
            .insert_unique(h, i, |&j| key_hash(&slots[j as usize].as_ref().expect("indexed slots are live").key));
        Some((i, None))
    }

    /// Python's `section.pop(key, None)`.
    pub(crate) fn remove_slot(&mut self, i: u32, users: &mut UserIndex) -> Option<Slot> {
        let slot = self.slots.get_mut(i as usize)?.take()?;
        if let Stored::Entry(e) = &slot.value {
            self.index.remove(i, e, self.track_expiry, users, self.ct);
        }
        let h = key_hash(&slot.key);
        if let Ok(found) = self.by_key.find_entry(h, |&j| j == i) {
            found.remove();
        }
        self.text_len -= member_len(&slot.key, &slot.value);
        self.live -= 1;
        Some(slot)
    }

    /// Tombstones make removal O(1); when they outnumber live slots, it is time to
    /// renumber.
    fn wants_compaction(&self) -> bool {
        let dead = self.slots.len() - self.live;
        dead >= 1024 && dead >= self.live
    }

    fn compact(&mut self, users: &mut UserIndex) {
        let old = std::mem::take(&mut self.slots);
        users.clear_section(self.ct);
        *self = Section { ct: self.ct, track_expiry: self.track_expiry, ..Default::default() };
        for s in old.into_iter().flatten() {
            self.put(String::from(s.key).into(), s.value, None, users);
        }
    }
}

/// A top-level member of the document.
pub(crate) enum TopLevel {
    Known(CredentialType),
    /// An unknown section, rendered at depth 1, with its escaped name.
    Unknown {
        name: Box<str>,
        rendered: Box<str>,
    },
}

/// What follows a document's members besides its sections: the partition index, the
/// limits' accounting and the profile of who writes it. Borrowed apart from the
/// sections, so that an entry is filed while the section holds it (no copy of its key
/// or of the entry).
struct Members<'d> {
    partitions: &'d mut std::sync::OnceLock<PartitionMap>,
    limiter: &'d Option<parking_lot::Mutex<Limiter>>,
    profile: &'d mut std::sync::OnceLock<Profile>,
}

impl Members<'_> {
    /// Files an entry under its partition (and counts it).
    fn register(&mut self, ct: CredentialType, slot: u32, key: &str, e: &Entry, now: i64, keyed: Keyed) {
        if let (Some(h), Some(l)) = (self.track_partition(ct, slot, e, file_in_partition), self.limiter) {
            l.lock().added(h, entry_bytes(key, e), now);
        }
        if let Some(p) = self.profile.get_mut() {
            match keyed {
                Keyed::AsGiven => p.added(ct, key, e),
                Keyed::MadeFromFields => p.added_under_own_key(ct, key, e),
            }
        }
    }

    /// Files an entry in (or takes it from) the partition index, if that was built,
    /// and returns its partition hash when the index or the limits need it (`None`
    /// when neither does: then it is not worked out).
    fn track_partition(
        &mut self,
        ct: CredentialType,
        slot: u32,
        e: &Entry,
        change: fn(&mut PartitionMap, u64, CredentialType, u32),
    ) -> Option<Option<u64>> {
        let partitions = self.partitions.get_mut();
        if partitions.is_none() && self.limiter.is_none() {
            return None;
        }
        let h = partition_hash_of(ct, e);
        if let (Some(partitions), Some(h)) = (partitions, h) {
            change(partitions, h, ct, slot);
        }
        Some(h)
    }

    fn unregister(&mut self, ct: CredentialType, slot: u32, key: &str, e: &Entry) {
        if let Some(p) = self.profile.get_mut() {
            p.removed(ct, key, e);
        }
        if let (Some(h), Some(l)) = (self.track_partition(ct, slot, e, take_from_partition), self.limiter) {
            l.lock().removed(h, entry_bytes(key, e));
        }
    }
}

/// The whole cache document.
#[derive(Default)]
pub(crate) struct Document {
    /// Top-level members in document order.
    order: Vec<TopLevel>,
    sections: [Option<Section>; 5],
    /// The `home_account_id` index of all sections.
    users: UserIndex,
    /// hash(partition key) -> packed (section, slot) of its entries: built on first
    /// use (only partition-aware callers and limits need it) and kept up to date from
    /// then on.
    partitions: std::sync::OnceLock<PartitionMap>,
    /// Usage accounting, only when limits are set. Behind a mutex so that readers
    /// can record use under the shared lock.
    limiter: Option<parking_lot::Mutex<Limiter>>,
    /// Who writes the document (for [`SharingMode::Auto`](crate::sharing::SharingMode)),
    /// worked out on first use and kept up to date from then on.
    profile: std::sync::OnceLock<Profile>,
}

type PartitionMap = hashbrown::HashMap<u64, Posting, crate::index::PassThrough>;

fn file_in_partition(partitions: &mut PartitionMap, h: u64, ct: CredentialType, slot: u32) {
    partitions.entry(h).and_modify(|p| p.insert(pack(ct, slot))).or_insert(Posting::One(pack(ct, slot)));
}

fn take_from_partition(partitions: &mut PartitionMap, h: u64, ct: CredentialType, slot: u32) {
    if let hashbrown::hash_map::Entry::Occupied(mut o) = partitions.entry(h)
        && o.get_mut().remove(pack(ct, slot))
    {
        o.remove();
    }
}

fn entry_bytes(key: &str, e: &Entry) -> usize {
    key.len() + e.heap_bytes() + 48
}

/// A parsed query, ready to match.
pub(crate) struct Query {
    /// (field name, canonical stored form of the wanted value)
    pub conditions: Vec<(String, Kind, String)>,
    /// The known field id of each condition's name, looked up once.
    ids: Vec<Option<u8>>,
    pub has_ext_cache_key: bool,
}

impl Query {
    pub(crate) fn new(query: Option<&crate::json::Map>) -> Query {
        let mut conditions = Vec::new();
        let mut has_ext_cache_key = false;
        if let Some(q) = query {
            for (k, v) in q.iter() {
                if k == "ext_cache_key" {
                    has_ext_cache_key = true;
                }
                let (kind, text) = match (k, v) {
                    ("environment", Value::String(s)) => crate::entry::canonical(&Value::String(s.to_lowercase())),
                    (_, Value::String(s)) => (Kind::Str, escape_key(s).into_owned()),
                    _ => crate::entry::canonical(v),
                };
                conditions.push((k.to_owned(), kind, text));
            }
        }
        let ids = conditions.iter().map(|(k, _, _)| crate::schema::known_field_id(k)).collect();
        Query { conditions, ids, has_ext_cache_key }
    }

    pub(crate) fn get(&self, name: &str) -> Option<RawField<'_>> {
        self.conditions.iter().find(|(k, _, _)| k == name).map(|(_, kind, text)| RawField { kind: *kind, text })
    }

    pub(crate) fn matches(&self, e: &Entry, scopes: &[&str]) -> bool {
        self.conditions.iter().zip(&self.ids).all(|((k, kind, text), id)| {
            let stored = match id {
                Some(id) => e.raw_by_id(*id),
                None => e.raw(k),
            };
            stored.is_some_and(|v| v.python_eq(RawField { kind: *kind, text }))
        }) && (scopes.is_empty() || {
            let target = e.str_by_id(field::TARGET);
            let target = target.as_deref().unwrap_or("");
            scopes.iter().all(|s| scopes_of(target).any(|t| t == *s))
        })
    }
}

/// Reads a key part Python-style: `entry.get(name) or ""`; a truthy non-string is
/// an error (Python's `"-".join` would raise).
fn key_part<'a>(e: &'a Entry, id: u8, what: &'static str) -> Result<std::borrow::Cow<'a, str>> {
    match e.raw_by_id(id) {
        None => Ok("".into()),
        Some(r) => match r.as_str() {
            Some(s) => Ok(s),
            None if !r.is_truthy() => Ok("".into()),
            None => Err(Error::new(ErrorKind::InvalidEntry, format!("{what} must be a string"))),
        },
    }
}

/// [`key_of`], appended to `out` (no allocation when it has room).
pub(crate) fn key_of_into(ct: CredentialType, e: &Entry, out: &mut String) -> Result<()> {
    let hid = key_part(e, field::HOME_ACCOUNT_ID, "home_account_id")?;
    let env = key_part(e, field::ENVIRONMENT, "environment")?;
    let cid = key_part(e, field::CLIENT_ID, "client_id")?;
    let realm = key_part(e, field::REALM, "realm")?;
    let target = key_part(e, field::TARGET, "target")?;
    let ext = key_part(e, field::EXT_CACHE_KEY, "ext_cache_key")?;
    let parts = KeyParts {
        home_account_id: &hid,
        environment: &env,
        client_id: &cid,
        realm: &realm,
        target: &target,
        ext_cache_key: &ext,
    };
    cache_key_into(out, ct, &parts);
    Ok(())
}

/// The key msal would file this entry under (decoded).
pub(crate) fn key_of(ct: CredentialType, e: &Entry) -> Result<String> {
    let mut k = String::with_capacity(96);
    key_of_into(ct, e, &mut k)?;
    Ok(k)
}

pub(crate) fn escape_key(key: &str) -> std::borrow::Cow<'_, str> {
    if needs_escape(key) {
        let mut s = String::with_capacity(key.len() + 8);
        escape_into(&mut s, key);
        s.into()
    } else {
        key.into()
    }
}

/// Where an entry's key comes from.
#[derive(Clone, Copy)]
enum Keyed {
    /// With the entry (a file, another cache): it may be another SDK's.
    AsGiven,
    /// Made from the entry's fields as msal Python makes it.
    MadeFromFields,
}

fn known_section(name: &str) -> Option<CredentialType> {
    CredentialType::ALL.into_iter().find(|c| c.as_str() == name)
}

impl Document {
    /// Files `value` under `escaped_key` in `ct` (Python's `section[key] = value`),
    /// keeping partitions and usage up to date.
    pub(crate) fn put(&mut self, ct: CredentialType, escaped_key: &str, value: Stored, now: i64) {
        self.put_keyed(ct, escaped_key.into(), value, None, now, Keyed::AsGiven);
    }

    /// [`put`](Self::put) for an entry under the key msal Python makes from its
    /// fields (what `add` writes), which spares working that key out again to tell
    /// whether another SDK filed it.
    /// The key is taken as it comes: an owned one is kept, not copied.
    /// `filing` is what its builder said of it (see [`Filing`]).
    pub(crate) fn put_made(
        &mut self,
        ct: CredentialType,
        escaped_key: Cow<'_, str>,
        entry: Entry,
        filing: Option<&Filing>,
        now: i64,
    ) {
        self.put_keyed(ct, escaped_key, Stored::Entry(entry), filing, now, Keyed::MadeFromFields);
    }

    fn put_keyed(
        &mut self,
        ct: CredentialType,
        escaped_key: Cow<'_, str>,
        value: Stored,
        filing: Option<&Filing>,
        now: i64,
        keyed: Keyed,
    ) {
        self.section_or_create(ct);
        let Document { sections, users, partitions, limiter, profile, .. } = self;
        let section = sections[ct.index()].as_mut().expect("just created");
        let Some((slot, old)) = section.put(escaped_key, value, filing, users) else { return };
        // The key and the entry as the section now holds them.
        let placed = section.slot(slot).expect("just put");
        let mut members = Members { partitions, limiter, profile };
        if let Some(Stored::Entry(old)) = old {
            members.unregister(ct, slot, &placed.key, &old);
        }
        if let Stored::Entry(new) = &placed.value {
            members.register(ct, slot, &placed.key, new, now, keyed);
        }
    }

    /// Removes slot `i` of `ct`. Slot numbers stay valid until
    /// [`compact_if_sparse`](Self::compact_if_sparse), which every public removal
    /// calls once at its end, so a batch of removals may use numbers taken before it.
    fn remove_at_slot(&mut self, ct: CredentialType, i: u32) -> Option<Stored> {
        let slot = self.sections[ct.index()].as_mut()?.remove_slot(i, &mut self.users)?;
        if let Stored::Entry(e) = &slot.value {
            self.unregister(ct, i, &slot.key, e);
        }
        Some(slot.value)
    }

    /// Renumbers the sections that are mostly tombstones.
    fn compact_if_sparse(&mut self) {
        for ct in CredentialType::ALL {
            if self.section(ct).is_some_and(Section::wants_compaction) {
                self.compact(ct);
            }
        }
    }

    /// Who writes the document: see [`Profile`].
    pub(crate) fn profile(&self) -> &Profile {
        self.profile.get_or_init(|| {
            let mut p = Profile::default();
            for ct in CredentialType::ALL {
                if let Some(section) = self.section(ct) {
                    for (_, sl) in section.live_slots() {
                        if let Stored::Entry(e) = &sl.value {
                            p.added(ct, &sl.key, e);
                        }
                    }
                }
            }
            p
        })
    }

    fn unregister(&mut self, ct: CredentialType, slot: u32, key: &str, e: &Entry) {
        let Document { partitions, limiter, profile, .. } = self;
        Members { partitions, limiter, profile }.unregister(ct, slot, key, e);
    }

    /// Renumbers a section's slots (partition postings hold slot numbers).
    fn compact(&mut self, ct: CredentialType) {
        let tracked = self.partitions.get().is_some();
        if tracked {
            let members: Vec<(u32, Entry)> = self.entries_of(ct);
            let partitions = self.partitions.get_mut().expect("tracked");
            for (slot, e) in &members {
                if let Some(h) = partition_hash_of(ct, e) {
                    take_from_partition(partitions, h, ct, *slot);
                }
            }
        }
        self.sections[ct.index()].as_mut().expect("compacting an existing section").compact(&mut self.users);
        if tracked {
            let members = self.entries_of(ct);
            let partitions = self.partitions.get_mut().expect("tracked");
            for (slot, e) in members {
                if let Some(h) = partition_hash_of(ct, &e) {
                    file_in_partition(partitions, h, ct, slot);
                }
            }
        }
    }

    /// The partition index, built on first use.
    fn partitions(&self) -> &PartitionMap {
        self.partitions.get_or_init(|| {
            let mut map = PartitionMap::default();
            for ct in CredentialType::ALL {
                let Some(section) = self.section(ct) else { continue };
                for (i, sl) in section.live_slots() {
                    if let Stored::Entry(e) = &sl.value
                        && let Some(h) = partition_hash_of(ct, e)
                    {
                        file_in_partition(&mut map, h, ct, i);
                    }
                }
            }
            map
        })
    }

    fn entries_of(&self, ct: CredentialType) -> Vec<(u32, Entry)> {
        self.section(ct)
            .map(|s| {
                s.live_slots()
                    .filter_map(|(i, sl)| match &sl.value {
                        Stored::Entry(e) => Some((i, e.clone())),
                        Stored::Opaque(_) => None,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Forgets what was worked out from the entries (after parsing) and, with limits,
    /// counts them again.
    pub(crate) fn reset_accounting(&mut self, limits: CacheLimits, now: i64) {
        self.partitions = std::sync::OnceLock::new();
        self.profile = std::sync::OnceLock::new();
        self.limiter = (!limits.is_unbounded()).then(|| parking_lot::Mutex::new(Limiter::new(limits)));
        if let Some(l) = &self.limiter {
            let mut l = l.lock();
            for ct in CredentialType::ALL {
                let Some(section) = self.sections[ct.index()].as_ref() else { continue };
                for (_, sl) in section.live_slots() {
                    if let Stored::Entry(e) = &sl.value {
                        l.added(partition_hash_of(ct, e), entry_bytes(&sl.key, e), now);
                    }
                }
            }
        }
    }

    /// The (section, slot) of every entry in partition `key`, in document order.
    pub(crate) fn partition_members(&self, key: &str) -> Vec<(CredentialType, u32)> {
        let Some(posting) = self.partitions().get(&partition_hash(key)) else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(posting.len());
        posting.for_each(|m| {
            let (ct, slot) = unpack(m);
            // A hash collision would put another partition's entry here: verify.
            if let Some(e) = self.section(ct).and_then(|s| s.entry(slot))
                && partition_key(ct, e).as_deref() == Some(key)
            {
                out.push((ct, slot));
            }
        });
        out.sort_unstable();
        out
    }

    /// Removes every entry of partition `key`; returns how many.
    pub(crate) fn remove_partition(&mut self, key: &str) -> usize {
        let members = self.partition_members(key);
        for (ct, slot) in &members {
            self.remove_at_slot(*ct, *slot);
        }
        self.compact_if_sparse();
        members.len()
    }

    /// Evicts what the limits say is due at `now`; never evicts `protect` for
    /// capacity. Returns the counts.
    pub(crate) fn enforce_limits(&mut self, now: i64, protect: Option<&str>) -> EvictionCounts {
        let mut counts = EvictionCounts::default();
        let protect = protect.map(partition_hash);
        loop {
            let victim = match &self.limiter {
                Some(l) => l.lock().next_victim(now, protect),
                None => None,
            };
            let Some((h, reason)) = victim else { break };
            let members: Vec<u32> = match self.partitions().get(&h) {
                Some(p) => {
                    let mut v = Vec::with_capacity(p.len());
                    p.for_each(|m| v.push(m));
                    v
                }
                None => Vec::new(),
            };
            for m in members {
                let (ct, slot) = unpack(m);
                self.remove_at_slot(ct, slot);
            }
            self.compact_if_sparse();
            if let Some(l) = &self.limiter {
                l.lock().forget(h);
            }
            match reason {
                Reason::Capacity => counts.capacity += 1,
                Reason::Absolute => counts.absolute += 1,
                Reason::Sliding => counts.sliding += 1,
            }
        }
        counts
    }

    pub(crate) fn limits_due(&self, now: i64) -> bool {
        self.limiter.as_ref().is_some_and(|l| l.lock().expiry_due(now))
    }

    /// Records that a partition was used (sliding expiration, LRU order).
    pub(crate) fn touch(&self, ct: CredentialType, e: &Entry, now: i64) {
        if let Some(l) = &self.limiter
            && let Some(k) = partition_key(ct, e)
        {
            l.lock().touch(partition_hash(&k), now);
        }
    }

    pub(crate) fn has_limiter(&self) -> bool {
        self.limiter.is_some()
    }

    /// (entries, bytes, partitions) as accounted by the limiter.
    pub(crate) fn usage(&self) -> Option<(usize, usize, usize)> {
        self.limiter.as_ref().map(|l| l.lock().totals())
    }

    /// Every distinct partition key, in document order.
    pub(crate) fn partition_keys(&self) -> Vec<String> {
        let mut seen = hashbrown::HashSet::new();
        let mut out = Vec::new();
        for ct in CredentialType::ALL {
            for (_, e) in self.entries_of(ct) {
                if let Some(k) = partition_key(ct, &e)
                    && seen.insert(k.clone())
                {
                    out.push(k);
                }
            }
        }
        out
    }

    /// Writes only the given slots (per section, sorted), sections in the fixed order
    /// of [`CredentialType::ALL`] so that a blob does not depend on the cache's
    /// history; sections with no selected slot are left out.
    pub(crate) fn write_selected(&self, out: &mut String, selected: &[Vec<u32>; 5]) {
        let mut first_section = true;
        out.push('{');
        for ct in &CredentialType::ALL {
            let slots = &selected[ct.index()];
            if slots.is_empty() {
                continue;
            }
            let section = self.section(*ct).expect("listed sections exist");
            open_member(out, &mut first_section, false, 1, ct.as_str());
            out.push('{');
            let mut first = true;
            for &i in slots {
                if let Some(Slot { key, value: Stored::Entry(e) }) = section.slot(i) {
                    open_member(out, &mut first, false, 2, key);
                    e.write_indented(out);
                }
            }
            close(out, false, 1);
        }
        if first_section {
            out.push('}');
        } else {
            close(out, false, 0);
        }
    }

    /// The `home_account_id` index of all sections (for [`candidates`](Self::candidates)).
    pub(crate) fn users(&self) -> &UserIndex {
        &self.users
    }

    pub(crate) fn section(&self, ct: CredentialType) -> Option<&Section> {
        self.sections[ct.index()].as_ref()
    }

    /// Python's `_cache.setdefault(ct, {})`.
    pub(crate) fn section_or_create(&mut self, ct: CredentialType) -> &mut Section {
        if self.sections[ct.index()].is_none() {
            self.sections[ct.index()] = Some(Section::new(ct));
            self.order.push(TopLevel::Known(ct));
        }
        self.sections[ct.index()].as_mut().expect("just created")
    }

    /// Number of entries in the known sections.
    pub(crate) fn len(&self) -> usize {
        self.sections.iter().flatten().map(Section::len).sum()
    }

    /// Parses a whole document. Nothing is kept on error.
    pub(crate) fn parse(text: &str) -> Result<Document> {
        let mut doc = Document::default();
        let mut p = Parser::new(text);
        match p.peek() {
            Some(b'{') => {}
            Some(b'[') => {
                // Syntax errors first (they carry a position), then the shape.
                p.value(0)?;
                p.finish()?;
                return Err(not_a_cache(if text.contains("\"Key\"") && text.contains("access_tokens") {
                    "this is the MSAL.NET 2.x dictionary format (a JSON array), not a unified token cache"
                } else {
                    "a token cache is a JSON object; this is an array"
                }));
            }
            None => return Err(p.error("unexpected end of input, expected a value").into()),
            Some(_) => {
                // Tell syntax errors from well-formed non-objects.
                let v = p.value(0)?;
                p.finish()?;
                let what = match v {
                    Value::Null => "null",
                    Value::Bool(_) => "a boolean",
                    Value::Number(_) => "a number",
                    Value::String(_) => "a string",
                    _ => "not an object",
                };
                return Err(not_a_cache(&format!("a token cache is a JSON object; this is {what}")));
            }
        }
        // Known sections that are not objects. Python keeps a repeated key's last
        // value, so a later well-formed repeat clears the complaint.
        let mut bad_sections: [bool; 5] = [false; 5];
        let mut builder = EntryBuilder::with_capacity(16, 4096);
        let res = p.object(0, |p, name| {
            let name_dec = p.decode(name)?;
            match known_section(&name_dec) {
                Some(ct) => {
                    if p.peek() != Some(b'{') {
                        // Well-formed but wrong shape: remember and keep parsing so
                        // that a syntax error later still wins (it is more useful).
                        p.value(1)?;
                        bad_sections[ct.index()] = true;
                        if doc.sections[ct.index()].is_none() {
                            doc.order.push(TopLevel::Known(ct)); // the first sighting sets the position
                            doc.sections[ct.index()] = Some(Section::new(ct));
                        }
                        return Ok(());
                    }
                    bad_sections[ct.index()] = false;
                    // A repeated section name: Python keeps the first position, last value.
                    if doc.sections[ct.index()].is_some() {
                        doc.users.clear_section(ct.index());
                        doc.sections[ct.index()] = Some(Section::new(ct));
                    } else {
                        doc.order.push(TopLevel::Known(ct));
                        doc.sections[ct.index()] = Some(Section::new(ct));
                    }
                    let section = doc.sections[ct.index()].as_mut().expect("set above");
                    // Filed once all are read, into a key table sized for them (growing
                    // it entry by entry re-hashes every key at each doubling).
                    let mut read = Vec::new();
                    p.object(1, |p, key| {
                        let escaped_key: std::borrow::Cow<'_, str> =
                            if key.plain { key.raw.into() } else { escape_key(&p.decode(key)?).into_owned().into() };
                        read.push((escaped_key, parse_entry(p, &mut builder)?));
                        Ok(())
                    })?;
                    section.reserve(read.len());
                    for (key, stored) in read {
                        section.put(key, stored, None, &mut doc.users);
                    }
                    Ok(())
                }
                None => {
                    let v = p.value(1)?;
                    let mut rendered = String::new();
                    write_indented(&mut rendered, &v, 1);
                    let escaped = escape_key(&name_dec).into_owned().into_boxed_str();
                    let rendered = rendered.into_boxed_str();
                    match doc.order.iter_mut().find(|t| matches!(t, TopLevel::Unknown { name, .. } if *name == escaped))
                    {
                        Some(TopLevel::Unknown { rendered: r, .. }) => *r = rendered,
                        _ => doc.order.push(TopLevel::Unknown { name: escaped, rendered }),
                    }
                    Ok(())
                }
            }
        });
        res?;
        p.finish()?;
        if let Some(ct) = CredentialType::ALL.into_iter().find(|ct| bad_sections[ct.index()]) {
            return Err(not_a_cache(&format!("section {:?} is not an object", ct.as_str())));
        }
        if doc.sections.iter().all(Option::is_none) && doc.order.iter().any(looks_like_msal_js_store) {
            return Err(not_a_cache(
                "this is msal-common's internal key/value store (camelCase entries keyed at the top level), \
                 not a unified token cache",
            ));
        }
        Ok(doc)
    }

    /// `json.dumps(self, indent=4)`.
    pub(crate) fn write_python(&self, out: &mut String) {
        if !self.order.is_empty() {
            out.reserve(self.approx_text_len());
        }
        self.write(out, false)
    }

    /// The length of `json.dumps(self, indent=4)`, from the lengths the sections keep.
    pub(crate) fn python_len(&self) -> usize {
        if self.order.is_empty() {
            return 2;
        }
        // `{`, a comma between members, `\n}`; per member its newline, indent and
        // quoted name with `: `, then its value.
        let mut n = 1 + (self.order.len() - 1) + 2;
        for top in &self.order {
            let (name, value) = match top {
                TopLevel::Unknown { name, rendered } => (name.len(), rendered.len()),
                TopLevel::Known(ct) => {
                    let s = self.sections[ct.index()].as_ref().expect("listed sections exist");
                    // `{`, commas, the members, then `\n    }` (or just `}` when empty).
                    let body = if s.live == 0 { 2 } else { 1 + (s.live - 1) + s.text_len + 1 + INDENT.len() + 1 };
                    (ct.as_str().len(), body)
                }
            };
            n += 1 + INDENT.len() + 2 + name + 2 + value;
        }
        n
    }

    /// `json.dumps(self, indent=4)` into any sink (a counter, a caller's buffer).
    pub(crate) fn write_python_to(&self, out: &mut impl TextSink) {
        self.write(out, false)
    }

    pub(crate) fn write_compact(&self, out: &mut String) {
        if !self.order.is_empty() {
            out.reserve(self.approx_text_len());
        }
        self.write(out, true)
    }

    fn write(&self, out: &mut impl TextSink, compact: bool) {
        if self.order.is_empty() {
            out.push_str("{}");
            return;
        }
        out.push_ascii(b'{');
        let mut first_section = true;
        for top in &self.order {
            match top {
                TopLevel::Unknown { name, rendered } => {
                    open_member(out, &mut first_section, compact, 1, name);
                    if compact {
                        push_recompacted(out, rendered);
                    } else {
                        out.push_str(rendered);
                    }
                }
                TopLevel::Known(ct) => {
                    let section = self.sections[ct.index()].as_ref().expect("listed sections exist");
                    open_member(out, &mut first_section, compact, 1, ct.as_str());
                    let mut first = true;
                    out.push_ascii(b'{');
                    for (_, slot) in section.live_slots() {
                        open_member(out, &mut first, compact, 2, &slot.key);
                        match (&slot.value, compact) {
                            (Stored::Entry(e), false) => e.write_indented(out),
                            (Stored::Entry(e), true) => e.write_compact(out),
                            (Stored::Opaque(r), false) => out.push_str(r),
                            (Stored::Opaque(r), true) => push_recompacted(out, r),
                        }
                    }
                    if first {
                        out.push_ascii(b'}');
                    } else {
                        close(out, compact, 1);
                    }
                }
            }
        }
        close(out, compact, 0);
    }

    fn approx_text_len(&self) -> usize {
        let mut n = 16;
        for s in self.sections.iter().flatten() {
            for (_, slot) in s.live_slots() {
                n += slot.key.len() + 16;
                if let Stored::Entry(e) = &slot.value {
                    n += e.heap_bytes() + e.len() * 20;
                }
            }
        }
        n
    }

    /// Candidate slots for a query, from its smallest posting; `None` means "scan all".
    /// Indexes that exist are looked at first; the others are built (and kept from
    /// then on) only if those leave more than [`NARROW`] candidates.
    pub(crate) fn candidates(section: &Section, users: &UserIndex, q: &Query, scopes: &[&str]) -> Option<Vec<u32>> {
        // A posting this short is as good as the shortest: stop looking there (each
        // look is a hash and a probe of another table). Candidates are verified
        // against every condition anyway, a missing posting included.
        const SHORT: usize = 4;
        let fields: smallvec::SmallVec<[(usize, u64); 8]> = q
            .conditions
            .iter()
            .zip(&q.ids)
            .filter_map(|((_, kind, text), id)| {
                let wanted = RawField { kind: *kind, text };
                // 1 == 1.0 == True: verified on the candidates instead.
                let pos = id.and_then(indexed_position).filter(|_| wanted.has_unique_text())?;
                Some((pos, value_hash(wanted)))
            })
            .collect();
        /// Looks at the postings of the fields (and scopes) whose index is built or
        /// not, as `built` says: Some(true) when one is missing (nothing matches),
        /// Some(false) when one is short.
        fn look<'s>(
            section: &'s Section,
            users: &'s UserIndex,
            fields: &[(usize, u64)],
            scopes: &[&str],
            best: &mut Option<&'s Posting>,
            built: bool,
        ) -> Option<bool> {
            let index = &section.index;
            let postings = fields
                .iter()
                .filter(|(pos, _)| index.field_built(*pos) == built)
                .map(|&(pos, h)| section.field_posting(pos, h, users))
                .chain(
                    scopes
                        .iter()
                        .filter(|_| index.scopes_built() == built)
                        .map(|s| section.scope_posting(scope_hash(s))),
                );
            for posting in postings {
                let Some(p) = posting else { return Some(true) };
                if best.is_none_or(|b| p.len() < b.len()) {
                    *best = Some(p);
                    if p.len() <= SHORT {
                        return Some(false);
                    }
                }
            }
            None
        }
        let mut best: Option<&Posting> = None;
        let mut verdict = look(section, users, &fields, scopes, &mut best, true);
        if verdict.is_none() && best.is_none_or(|b| b.len() > NARROW) {
            verdict = look(section, users, &fields, scopes, &mut best, false);
        }
        if verdict == Some(true) {
            return Some(Vec::new());
        }
        let best = best?;
        let mut v = Vec::with_capacity(best.len());
        best.for_each(|s| v.push(s));
        v.sort_unstable();
        Some(v)
    }

    /// Pops the entry stored under `ct`'s canonical key for `e`'s fields (msal's
    /// `modify(ct, e)` without new values). Returns the removed entry, if any.
    pub(crate) fn remove_canonical(&mut self, ct: CredentialType, key: &str) -> Option<Stored> {
        let escaped = escape_key(key);
        let i = self.section_or_create(ct).find(&escaped)?;
        let removed = self.remove_at_slot(ct, i);
        self.compact_if_sparse();
        removed
    }

    /// Removes every access token with `expires_on < now`, whatever key it is filed
    /// under; returns how many.
    pub(crate) fn remove_expired_access_tokens(&mut self, now: i64) -> usize {
        let Some(section) = self.section(CredentialType::AccessToken) else { return 0 };
        if section.index.earliest_expiry().is_none_or(|e| e >= now) {
            return 0;
        }
        let slots: Vec<u32> = section.index.expired_before(now).collect();
        for &i in &slots {
            self.remove_at_slot(CredentialType::AccessToken, i);
        }
        self.compact_if_sparse();
        slots.len()
    }

    /// Names of the top-level members that are not one of the five sections.
    pub(crate) fn unknown_sections(&self) -> impl Iterator<Item = std::borrow::Cow<'_, str>> + '_ {
        self.order.iter().filter_map(|t| match t {
            TopLevel::Unknown { name, .. } => Some(crate::entry::unescape(name)),
            TopLevel::Known(_) => None,
        })
    }

    /// Access tokens with `expires_on < now` (slot order).
    pub(crate) fn expired_access_tokens(&self, now: i64) -> Vec<Entry> {
        let Some(section) = self.section(CredentialType::AccessToken) else {
            return Vec::new();
        };
        if section.index.earliest_expiry().is_none_or(|e| e >= now) {
            return Vec::new();
        }
        let mut slots: Vec<u32> = section.index.expired_before(now).collect();
        slots.sort_unstable();
        slots.into_iter().filter_map(|i| section.entry(i).cloned()).collect()
    }
}

/// msal-common's in-memory store puts entries at the top level with camelCase fields.
fn looks_like_msal_js_store(top: &TopLevel) -> bool {
    match top {
        TopLevel::Unknown { rendered, .. } => {
            rendered.starts_with('{')
                && (rendered.contains("\n        \"homeAccountId\": ")
                    || rendered.contains("\n        \"credentialType\": "))
        }
        TopLevel::Known(_) => false,
    }
}

fn not_a_cache(msg: &str) -> Error {
    Error::new(ErrorKind::NotACache, msg)
}

/// Compact output of a value stored in the indented form: re-rendered.
fn push_recompacted(out: &mut impl TextSink, rendered: &str) {
    let mut s = String::new();
    write_compact(&mut s, &crate::json::parse(rendered).unwrap_or(Value::Null));
    out.push_str(&s);
}

fn open_member(out: &mut impl TextSink, first: &mut bool, compact: bool, depth: usize, escaped_name: &str) {
    if !*first {
        out.push_ascii(b',');
    }
    *first = false;
    if !compact {
        out.push_ascii(b'\n');
        for _ in 0..depth {
            out.push_str(crate::json::INDENT);
        }
    }
    out.push_ascii(b'"');
    out.push_str(escaped_name);
    out.push_str(if compact { "\":" } else { "\": " });
}

fn close(out: &mut impl TextSink, compact: bool, depth: usize) {
    if !compact {
        out.push_ascii(b'\n');
        for _ in 0..depth {
            out.push_str(crate::json::INDENT);
        }
    }
    out.push_ascii(b'}');
}

/// Parses one entry value (the parser sits on it), assembling it in `b`.
fn parse_entry(p: &mut Parser<'_>, b: &mut EntryBuilder) -> std::result::Result<Stored, crate::json::ParseError> {
    if p.peek() != Some(b'{') {
        let v = p.value(ENTRY_DEPTH)?;
        let mut rendered = String::new();
        write_indented(&mut rendered, &v, ENTRY_DEPTH);
        return Ok(Stored::Opaque(rendered.into_boxed_str()));
    }
    p.object(ENTRY_DEPTH, |p, name| {
        let name_dec: std::borrow::Cow<'_, str> = if name.plain { name.raw.into() } else { p.decode(name)?.into() };
        if p.peek() == Some(b'"') {
            let s = p.string()?;
            if s.plain {
                b.set_plain_str(&name_dec, s.raw);
            } else {
                let decoded = p.decode(s)?;
                b.set_str(&name_dec, &decoded);
            }
        } else {
            let v = p.value(ENTRY_DEPTH + 1)?;
            b.set_value(&name_dec, &v);
        }
        Ok(())
    })?;
    match b.build_and_reset() {
        Ok(e) => Ok(Stored::Entry(e)),
        Err(_) => Err(p.error("entry too large")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::INDEXED_FIELDS;

    #[test]
    fn an_entry_without_a_user_makes_its_section_keep_the_indexes_it_is_found_by() {
        let entry = |hid: &str| {
            let text = format!(
                r#"{{"credential_type": "AccessToken", "home_account_id": {hid}, "environment": "e",
                "client_id": "c", "realm": "r", "target": "s1 s2", "secret": "x"}}"#
            );
            match crate::json::parse(&text).unwrap() {
                crate::json::Value::Object(m) => Entry::from_map(&m).unwrap(),
                _ => unreachable!(),
            }
        };
        let built = |doc: &Document| {
            let ix = &doc.section(CredentialType::AccessToken).unwrap().index;
            (
                INDEXED_FIELDS
                    .iter()
                    .enumerate()
                    .filter(|(p, _)| ix.field_built(*p))
                    .map(|(_, f)| *f)
                    .collect::<Vec<_>>(),
                ix.scopes_built(),
            )
        };
        let at = CredentialType::AccessToken;
        // Users' tokens: the user's index only.
        let mut doc = Document::default();
        doc.put(at, "u1", Stored::Entry(entry(r#""uid.utid""#)), 0);
        assert_eq!(built(&doc), (vec![field::HOME_ACCOUNT_ID], false));
        // Client credentials' (null or empty home_account_id): also the fields their
        // queries name, from the entries already there.
        for hid in ["null", r#""""#] {
            let mut doc = Document::default();
            doc.put(at, "u1", Stored::Entry(entry(r#""uid.utid""#)), 0);
            doc.put(at, "app", Stored::Entry(entry(hid)), 0);
            let (fields, scopes) = built(&doc);
            assert_eq!(
                fields,
                [field::HOME_ACCOUNT_ID, field::ENVIRONMENT, field::CLIENT_ID, field::REALM, field::FAMILY_ID]
            );
            assert!(scopes);
            let section = doc.section(at).unwrap();
            let slots = |p: Option<&Posting>| p.map(|p| p.len());
            let realm = value_hash(RawField { kind: Kind::Str, text: "r" });
            assert_eq!(slots(section.field_posting(3, realm, doc.users())), Some(2));
            assert_eq!(slots(section.scope_posting(scope_hash("s2"))), Some(2));
        }
    }

    #[test]
    fn round_trip_small() {
        let text = "{\n    \"AccessToken\": {\n        \"k\": {\n            \"a\": \"b\",\n            \"n\": 1\n        },\n        \"g\": null\n    },\n    \"X\": []\n}";
        let doc = Document::parse(text).unwrap();
        let mut out = String::new();
        doc.write_python(&mut out);
        assert_eq!(out, text);
        let mut c = String::new();
        doc.write_compact(&mut c);
        assert_eq!(c, r#"{"AccessToken":{"k":{"a":"b","n":1},"g":null},"X":[]}"#);
    }

    fn assert_len_kept(doc: &Document) {
        let mut text = String::new();
        doc.write_python(&mut text);
        let mut counted = crate::json::ByteCounter::default();
        doc.write_python_to(&mut counted);
        assert_eq!((doc.python_len(), counted.0), (text.len(), text.len()), "{text}");
    }

    #[test]
    fn kept_length_is_the_written_length() {
        let text = "{\n    \"AccessToken\": {\n        \"k\\u00e9\": {\n            \"a\": \"b\\\"\",\n            \"n\": [\n                1\n            ],\n            \"x\\n\": {}\n        },\n        \"g\": null,\n        \"e\": {}\n    },\n    \"X\": [],\n    \"IdToken\": {}\n}";
        let mut doc = Document::parse(text).unwrap();
        assert_len_kept(&doc);
        assert_len_kept(&Document::default());
        let at = doc.section(CredentialType::AccessToken).unwrap();
        let i = at.find("g").unwrap();
        doc.remove_at_slot(CredentialType::AccessToken, i);
        assert_len_kept(&doc);
        let mut b = EntryBuilder::with_capacity(2, 16);
        b.set_str("secret", "s\u{1f600}");
        b.set_value("n", &Value::from(7));
        doc.put(CredentialType::AccessToken, "k\\u00e9", Stored::Entry(b.build().unwrap()), 0);
        doc.put(CredentialType::RefreshToken, "r", Stored::Opaque("[]".into()), 0);
        assert_len_kept(&doc);
        for ct in CredentialType::ALL {
            let slots: Vec<u32> = doc.section(ct).map(|s| s.live_slots().map(|(i, _)| i).collect()).unwrap_or_default();
            for i in slots {
                doc.remove_at_slot(ct, i);
            }
        }
        assert_len_kept(&doc);
    }

    #[test]
    fn rejects_non_caches() {
        for bad in ["[]", "null", "3", "\"s\"", "{\"AccessToken\": []}", "{\"a\": 1", "{} {}"] {
            assert!(Document::parse(bad).is_err(), "{bad}");
        }
        assert!(Document::parse("  ").is_err());
    }
}

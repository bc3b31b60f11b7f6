//! Entry-by-entry merge of two writers' copies of one partition, for
//! conflict-safe writes to a shared store (see [`crate::CacheProvider`]).
//!
//! A writer loaded the partition at some version (the *base*), changed it (*ours*),
//! and found on write-back that someone else wrote it since (*theirs*). Rather than
//! overwrite theirs (last writer wins, losing their tokens) or drop ours, it replays
//! **its own changes** — the [`Diff`] between base and ours: entries added, changed
//! and removed — onto theirs, and tries again at theirs' version.
//!
//! Where both sides touched one entry:
//! - both wrote it: the newer wins, by `cached_at` (access tokens) or
//!   `last_modification_time` (refresh tokens and accounts as msal Python writes
//!   them); ours wins a tie or when either lacks a time (last writer wins, as
//!   without merging);
//! - we removed it, they rewrote it: theirs wins only if its time is later than our
//!   removal; without a time the removal wins (a token someone removed — a sign-out,
//!   a refresh token the server rejected — must not come back);
//! - we changed it, they removed it: the removal wins, for the same reason.
//!
//! Nothing else of theirs is touched, so a stale copy can never bring back what
//! another writer removed: a writer only ever replays what it changed itself. No
//! tombstone outlives one save, and none is stored: the blob stays a plain msal
//! cache document.

use hashbrown::HashMap;

use crate::error::{Error, ErrorKind, Result};
use crate::json::{self, Map, Value};

/// A cache document indexed for merging: its sections in order, each a map of
/// entries by key (in order too, so the merged document keeps theirs' order and
/// appends ours).
#[derive(Clone, Default)]
pub struct MergeDoc {
    sections: Vec<(String, Section)>,
    by_name: HashMap<String, usize>,
}

#[derive(Clone)]
enum Section {
    Entries {
        order: Vec<String>,
        map: HashMap<String, Value>,
    },
    /// A top-level value that is not an object (no cache document has one; kept as is).
    Other(Value),
}

impl std::fmt::Debug for MergeDoc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Entries hold tokens: counts only.
        f.debug_struct("MergeDoc").field("sections", &self.sections.len()).field("entries", &self.len()).finish()
    }
}

impl MergeDoc {
    /// Parses a cache document; `""` is an empty one.
    pub fn parse(text: &str) -> Result<MergeDoc> {
        if text.trim().is_empty() {
            return Ok(MergeDoc::default());
        }
        match json::parse(text) {
            Ok(Value::Object(m)) => Ok(MergeDoc::from_map(m)),
            Ok(_) => Err(Error::new(ErrorKind::NotACache, "a cache document must be a JSON object")),
            Err(e) => Err(Error::new(ErrorKind::InvalidJson, format!("cache document: {e}"))),
        }
    }

    fn from_map(m: Map) -> MergeDoc {
        let mut d = MergeDoc::default();
        for (name, v) in m.into_vec() {
            let section = match v {
                Value::Object(entries) => {
                    let entries = entries.into_vec();
                    let mut order = Vec::with_capacity(entries.len());
                    let mut map = HashMap::with_capacity(entries.len());
                    for (k, v) in entries {
                        order.push(k.clone());
                        map.insert(k, v);
                    }
                    Section::Entries { order, map }
                }
                other => Section::Other(other),
            };
            d.by_name.insert(name.clone(), d.sections.len());
            d.sections.push((name, section));
        }
        d
    }

    /// Entries in all sections.
    pub fn len(&self) -> usize {
        self.sections
            .iter()
            .map(|(_, s)| match s {
                Section::Entries { map, .. } => map.len(),
                Section::Other(_) => 0,
            })
            .sum()
    }

    /// Whether no section holds an entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn entries(&self) -> impl Iterator<Item = (&str, &str, &Value)> {
        self.sections.iter().flat_map(|(name, s)| {
            let it: Box<dyn Iterator<Item = (&str, &str, &Value)>> = match s {
                Section::Entries { order, map } => {
                    Box::new(order.iter().filter_map(move |k| map.get(k).map(|v| (name.as_str(), k.as_str(), v))))
                }
                Section::Other(_) => Box::new(std::iter::empty()),
            };
            it
        })
    }

    fn get(&self, section: &str, key: &str) -> Option<&Value> {
        match &self.sections[*self.by_name.get(section)?].1 {
            Section::Entries { map, .. } => map.get(key),
            Section::Other(_) => None,
        }
    }

    fn insert(&mut self, section: &str, key: &str, value: Value) {
        let i = match self.by_name.get(section) {
            Some(&i) => i,
            None => {
                self.by_name.insert(section.to_owned(), self.sections.len());
                self.sections.push((section.to_owned(), Section::Other(Value::Null)));
                self.sections.len() - 1
            }
        };
        let s = &mut self.sections[i].1;
        if let Section::Other(_) = s {
            *s = Section::Entries { order: Vec::new(), map: HashMap::new() };
        }
        if let Section::Entries { order, map } = s
            && map.insert(key.to_owned(), value).is_none()
        {
            // A key removed earlier is still in `order`; output skips the repeat.
            order.push(key.to_owned());
        }
    }

    fn remove(&mut self, section: &str, key: &str) -> bool {
        let Some(&i) = self.by_name.get(section) else { return false };
        // The key stays in `order` (skipped on output) so removal is O(1).
        match &mut self.sections[i].1 {
            Section::Entries { map, .. } => map.remove(key).is_some(),
            Section::Other(_) => false,
        }
    }

    /// The document as a JSON object.
    pub fn to_map(&self) -> Map {
        self.clone().into_map()
    }

    /// The document as a JSON object, without copying the entries.
    pub fn into_map(self) -> Map {
        let mut out = Map::new();
        for (name, s) in self.sections {
            let v = match s {
                Section::Entries { order, mut map } => {
                    let mut m = Map::new();
                    for k in order {
                        // A key removed and added again is listed twice: the first wins.
                        if let Some(v) = map.remove(&k) {
                            m.push_unchecked(k, v);
                        }
                    }
                    Value::Object(m)
                }
                Section::Other(v) => v,
            };
            out.push_unchecked(name, v);
        }
        out
    }

    /// The document as msal Python writes a cache (`json.dumps(indent=4)`).
    pub fn into_python_text(self) -> String {
        json::to_python_string(&Value::Object(self.into_map()))
    }

    /// The document as compact JSON.
    pub fn to_json(&self) -> String {
        json::to_compact_string(&Value::Object(self.to_map()))
    }
}

/// Where an entry sits in a cache document: its section (`"AccessToken"`, ...)
/// and its key in that section.
type Slot = (String, String);

/// What one writer changed in a partition: entries it added or changed (with the
/// value it started from, if any) and entries it removed.
#[derive(Clone, Default)]
pub struct Diff {
    written: Vec<(Slot, Option<Value>, Value)>,
    removed: Vec<(Slot, Value)>,
}

impl std::fmt::Debug for Diff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Entries hold tokens: counts only.
        f.debug_struct("Diff").field("written", &self.written.len()).field("removed", &self.removed.len()).finish()
    }
}

/// What [`Diff::apply`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MergeReport {
    /// Entries of ours written into theirs.
    pub taken: usize,
    /// Entries of ours removed from theirs.
    pub removed: usize,
    /// Changes of ours dropped because theirs was newer (or removed it).
    pub lost: usize,
}

impl MergeReport {
    /// Whether applying changed theirs at all.
    pub fn changed(&self) -> bool {
        self.taken + self.removed > 0
    }
}

/// The time an entry was written, when it says: `cached_at`, else
/// `last_modification_time` (Unix seconds, as a number or a decimal string).
pub fn entry_time(entry: &Value) -> Option<i64> {
    ["cached_at", "last_modification_time"].iter().find_map(|f| entry.get(f)?.to_python_int())
}

impl Diff {
    /// What turned `base` into `ours`.
    pub fn between(base: &MergeDoc, ours: &MergeDoc) -> Diff {
        let mut d = Diff::default();
        for (section, key, v) in ours.entries() {
            match base.get(section, key) {
                Some(b) if b == v => {}
                b => d.written.push(((section.to_owned(), key.to_owned()), b.cloned(), v.clone())),
            }
        }
        for (section, key, b) in base.entries() {
            if ours.get(section, key).is_none() {
                d.removed.push(((section.to_owned(), key.to_owned()), b.clone()));
            }
        }
        d
    }

    /// Whether there is nothing to replay.
    pub fn is_empty(&self) -> bool {
        self.written.is_empty() && self.removed.is_empty()
    }

    /// Entries added or changed.
    pub fn written(&self) -> usize {
        self.written.len()
    }

    /// Entries removed.
    pub fn removed(&self) -> usize {
        self.removed.len()
    }

    /// Replays these changes onto `theirs` (see the module documentation for who
    /// wins where both sides touched an entry). `removed_at` is when our removals
    /// happened (Unix seconds).
    pub fn apply(&self, theirs: &mut MergeDoc, removed_at: i64) -> MergeReport {
        let mut r = MergeReport::default();
        for ((section, key), base, ours) in &self.written {
            let take = match (theirs.get(section, key), base) {
                (Some(t), _) if t == ours => false,
                // They removed what we changed: the removal stands.
                (None, Some(_)) => {
                    r.lost += 1;
                    false
                }
                (None, None) => true,
                // Untouched by them since our load.
                (Some(t), Some(b)) if t == b => true,
                // Both wrote it: the newer wins, ours on a tie or without times.
                (Some(t), _) => match (entry_time(ours), entry_time(t)) {
                    (Some(o), Some(t)) if t > o => {
                        r.lost += 1;
                        false
                    }
                    _ => true,
                },
            };
            if take {
                theirs.insert(section, key, ours.clone());
                r.taken += 1;
            }
        }
        for ((section, key), base) in &self.removed {
            let Some(t) = theirs.get(section, key) else { continue };
            // They rewrote it after our load, later than our removal: theirs stands.
            if t != base && entry_time(t).is_some_and(|t| t > removed_at) {
                r.lost += 1;
                continue;
            }
            if theirs.remove(section, key) {
                r.removed += 1;
            }
        }
        r
    }
}

/// Merges in one call: replays what turned `base` into `ours` onto `theirs` and
/// returns the merged document as compact JSON with the report. An unreadable
/// `base` or `theirs` counts as empty (a bad blob is replaced, as a load treats it
/// as a miss); an unreadable `ours` is an error.
pub fn merge(base: Option<&str>, ours: &str, theirs: Option<&str>, removed_at: i64) -> Result<(String, MergeReport)> {
    let ours = MergeDoc::parse(ours)?;
    let base = base.and_then(|b| MergeDoc::parse(b).ok()).unwrap_or_default();
    let mut theirs = theirs.and_then(|t| MergeDoc::parse(t).ok()).unwrap_or_default();
    let report = Diff::between(&base, &ours).apply(&mut theirs, removed_at);
    Ok((theirs.to_json(), report))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(key: &str, secret: &str, cached_at: i64) -> String {
        format!(r#""{key}": {{"secret": "{secret}", "cached_at": "{cached_at}"}}"#)
    }

    fn doc(ats: &[String]) -> String {
        format!(r#"{{"AccessToken": {{{}}}, "RefreshToken": {{}}}}"#, ats.join(","))
    }

    fn secrets(text: &str) -> Vec<(String, String)> {
        let d = MergeDoc::parse(text).unwrap();
        let mut v: Vec<_> = d
            .entries()
            .map(|(_, k, e)| (k.to_owned(), e.get("secret").and_then(Value::as_str).unwrap_or("").to_owned()))
            .collect();
        v.sort();
        v
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn each_side_keeps_its_own_changes() {
        let base = doc(&[at("a", "a1", 10), at("b", "b1", 10), at("gone", "g", 10)]);
        // Ours: adds x, changes a, removes gone.
        let ours = doc(&[at("a", "a2", 20), at("b", "b1", 10), at("x", "x1", 20)]);
        // Theirs: adds y, changes b, kept gone.
        let theirs = doc(&[at("a", "a1", 10), at("b", "b2", 15), at("gone", "g", 10), at("y", "y1", 15)]);
        let (merged, r) = merge(Some(&base), &ours, Some(&theirs), 20).unwrap();
        assert_eq!(secrets(&merged), pairs(&[("a", "a2"), ("b", "b2"), ("x", "x1"), ("y", "y1")]));
        assert_eq!((r.taken, r.removed, r.lost), (2, 1, 0));
    }

    #[test]
    fn newer_wins_where_both_wrote() {
        let base = doc(&[at("s", "s0", 10)]);
        let theirs = doc(&[at("s", "theirs", 30)]);
        let (m, r) = merge(Some(&base), &doc(&[at("s", "ours", 20)]), Some(&theirs), 20).unwrap();
        assert_eq!(secrets(&m), pairs(&[("s", "theirs")]));
        assert_eq!(r.lost, 1);
        let (m, _) = merge(Some(&base), &doc(&[at("s", "ours", 40)]), Some(&theirs), 40).unwrap();
        assert_eq!(secrets(&m), pairs(&[("s", "ours")]));
        // A tie, or no time: ours (the last writer).
        let (m, _) = merge(Some(&base), &doc(&[at("s", "ours", 30)]), Some(&theirs), 30).unwrap();
        assert_eq!(secrets(&m), pairs(&[("s", "ours")]));
        let untimed = r#"{"Account": {"k": {"realm": "ours"}}}"#;
        let (m, _) = merge(None, untimed, Some(r#"{"Account": {"k": {"realm": "theirs"}}}"#), 0).unwrap();
        assert!(m.contains("ours") && !m.contains("theirs"));
    }

    #[test]
    fn removals_win_over_stale_copies() {
        let base = doc(&[at("r", "r1", 10)]);
        let ours = doc(&[]);
        // Theirs still holds the copy we loaded: removed.
        let (m, r) = merge(Some(&base), &ours, Some(&base), 20).unwrap();
        assert!(secrets(&m).is_empty());
        assert_eq!(r.removed, 1);
        // They rewrote it before our removal: still removed.
        let (m, _) = merge(Some(&base), &ours, Some(&doc(&[at("r", "r2", 15)])), 20).unwrap();
        assert!(secrets(&m).is_empty());
        // They rewrote it after our removal: theirs stands.
        let (m, _) = merge(Some(&base), &ours, Some(&doc(&[at("r", "r3", 25)])), 20).unwrap();
        assert_eq!(secrets(&m), pairs(&[("r", "r3")]));
        // We changed what they removed: it stays removed.
        let (m, r) = merge(Some(&base), &doc(&[at("r", "r9", 30)]), Some(&doc(&[])), 30).unwrap();
        assert!(secrets(&m).is_empty());
        assert_eq!(r.lost, 1);
    }

    #[test]
    fn times_come_from_cached_at_or_last_modification_time_as_numbers_or_strings() {
        let v = |t: &str| json::parse(t).unwrap();
        assert_eq!(entry_time(&v(r#"{"cached_at": "17"}"#)), Some(17));
        assert_eq!(entry_time(&v(r#"{"cached_at": 17}"#)), Some(17));
        assert_eq!(entry_time(&v(r#"{"last_modification_time": "18"}"#)), Some(18));
        assert_eq!(entry_time(&v(r#"{"cached_at": "x", "last_modification_time": "18"}"#)), Some(18));
        assert_eq!(entry_time(&v(r#"{"realm": "r"}"#)), None);
        // Refresh tokens: the newer last_modification_time wins.
        let rt = |secret: &str, t: i64| {
            format!(r#"{{"RefreshToken": {{"k": {{"secret": "{secret}", "last_modification_time": "{t}"}}}}}}"#)
        };
        let (m, _) = merge(Some(&rt("base", 1)), &rt("ours", 5), Some(&rt("theirs", 9)), 5).unwrap();
        assert!(m.contains("theirs") && !m.contains("ours"));
    }

    #[test]
    fn sections_ours_lacks_and_unknown_ones_are_kept() {
        let theirs = r#"{"AccessToken": {}, "Unknown": {"u": {"x": 1}}, "Extra": [1, 2]}"#;
        let ours = r#"{"AccessToken": {"a": {"secret": "s"}}, "AppMetadata": {"m": {"client_id": "c"}}}"#;
        let (m, r) = merge(None, ours, Some(theirs), 0).unwrap();
        assert_eq!(r.taken, 2);
        assert_eq!(
            m,
            r#"{"AccessToken":{"a":{"secret":"s"}},"Unknown":{"u":{"x":1}},"Extra":[1,2],"AppMetadata":{"m":{"client_id":"c"}}}"#
        );
    }

    #[test]
    fn unreadable_base_or_theirs_is_empty_and_ours_must_parse() {
        let ours = doc(&[at("a", "a1", 1)]);
        let (m, _) = merge(Some("not json"), &ours, Some("[1]"), 1).unwrap();
        assert_eq!(secrets(&m), pairs(&[("a", "a1")]));
        assert_eq!(merge(None, "{", None, 0).unwrap_err().kind(), ErrorKind::InvalidJson);
    }

    #[test]
    fn nothing_to_apply_changes_nothing() {
        let d = doc(&[at("a", "a1", 1)]);
        let (_, r) = merge(Some(&d), &d, Some(&d), 1).unwrap();
        assert!(!r.changed());
        let mut theirs = MergeDoc::parse(&d).unwrap();
        let diff = Diff::between(&MergeDoc::parse(&d).unwrap(), &MergeDoc::parse(&d).unwrap());
        assert!(diff.is_empty());
        assert!(!diff.apply(&mut theirs, 1).changed());
        assert!(format!("{diff:?}").contains("written: 0"));
    }
}

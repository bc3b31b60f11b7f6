//! Property tests of the public API.
//!
//! * Any cache document rendered the way `serialize()` renders it loads and is
//!   written back byte for byte, also through the compact form.
//! * Any document written in any other legal way (whitespace, escapes, number
//!   spellings, repeated keys, BOM, trailing commas) loads as what Python's
//!   `json.loads` makes of it, so `serialize()` equals `json.dumps(indent=4)` of that.
//! * Garbage, byte soup and damaged caches never panic, and a failed `deserialize`
//!   leaves the cache exactly as it was.
//! * Random add / get / search / remove / reload (and partition) sequences agree
//!   with a small reference model (a map from cache key to the expected token).
//! * Regression tests for bugs these properties and a differential run against
//!   msal 1.39 found, each with the minimal input.
//!
//! `PROPTEST_CASES` raises the case counts for a longer run. The same model, with
//! user sign-ins and refresh tokens added, is the `ops` fuzz target (fuzz/).

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::Config;
use tokencache::json::{self, Map, Number, Value};
use tokencache::{CredentialType, Entry, ErrorKind, TokenCache, ext_cache_key};

const KNOWN_SECTIONS: [&str; 5] = ["AccessToken", "RefreshToken", "IdToken", "Account", "AppMetadata"];

/// Field names real entries carry, plus the two camelCase names that make a
/// document look like msal-common's key/value store.
const FIELD_NAMES: &[&str] = &[
    "credential_type",
    "secret",
    "home_account_id",
    "environment",
    "client_id",
    "target",
    "realm",
    "token_type",
    "cached_at",
    "expires_on",
    "extended_expires_on",
    "key_id",
    "ext_cache_key",
    "refresh_on",
    "local_account_id",
    "username",
    "authority_type",
    "family_id",
    "last_modification_time",
    "homeAccountId",
    "credentialType",
    "x",
];

fn cases(default: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(default);
    Config { cases, failure_persistence: None, ..Config::default() }
}

// ---------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------

/// Mostly plain letters, often something the escaper must handle, sometimes any char.
fn any_char() -> impl Strategy<Value = char> {
    prop_oneof![
        6 => prop::char::range('a', 'z'),
        1 => prop::char::range('A', 'Z'),
        2 => prop::sample::select(vec![
            '"', '\\', '/', '\n', '\r', '\t', '\u{8}', '\u{c}', '\0', '\u{1}', '\u{1f}',
            '\u{7f}', '\u{80}', '\u{a0}', 'é', 'Σ', 'ß', 'İ', '\u{2028}', '\u{feff}',
            '\u{fffd}', '\u{ffff}', '😀', '\u{10ffff}', ' ', '\'', '-', '.', ':',
        ]),
        1 => any::<char>(),
    ]
}

fn text(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(any_char(), 0..max).prop_map(|v| v.into_iter().collect())
}

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        (0i64..2_000_000_000).prop_map(Value::from),
        any::<f64>().prop_map(|f| Value::Number(Number::from_f64(f))),
        prop::sample::select(vec![
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -0.0,
            0.0,
            1e16,
            1e15,
            1e-5,
            0.1,
            1_700_000_000.5,
            f64::MAX,
            f64::MIN_POSITIVE,
            5e-324,
        ])
        .prop_map(|f| Value::Number(Number::from_f64(f))),
        // Python ints are unbounded: the digits must survive.
        "-?[1-9][0-9]{19,40}".prop_map(|s| json::parse(&s).expect("an integer literal")),
    ]
}

fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => prop::sample::select(FIELD_NAMES).prop_map(str::to_owned),
        1 => text(10),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        text(12).prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((field_name(), inner), 0..4).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// What another SDK might leave where an entry should be.
fn garbage_entry() -> impl Strategy<Value = Value> {
    json_value().prop_filter("not an object", |v| !matches!(v, Value::Object(_)))
}

fn entry() -> impl Strategy<Value = Value> {
    let field_value = prop_oneof![
        3 => text(16).prop_map(Value::String),
        1 => json_value(),
    ];
    prop::collection::vec((field_name(), field_value), 0..8).prop_map(|kv| Value::Object(kv.into_iter().collect()))
}

fn entry_key() -> impl Strategy<Value = String> {
    prop_oneof![
        text(14),
        (text(6), text(6))
            .prop_map(|(a, b)| format!("{a}-login.microsoftonline.com-accesstoken-{b}-contoso-user.read")),
    ]
}

fn known_section() -> impl Strategy<Value = (String, Value)> {
    let member = prop_oneof![4 => entry(), 1 => garbage_entry()];
    (prop::sample::select(&KNOWN_SECTIONS[..]), prop::collection::vec((entry_key(), member), 0..5))
        .prop_map(|(name, kv)| (name.to_owned(), Value::Object(kv.into_iter().collect())))
}

fn unknown_section() -> impl Strategy<Value = (String, Value)> {
    (text(10).prop_filter("not a known section", |n| !KNOWN_SECTIONS.contains(&n.as_str())), json_value())
}

/// A whole cache document (a top-level object with unique keys).
fn document() -> impl Strategy<Value = Map> {
    prop::collection::vec(prop_oneof![3 => known_section(), 2 => unknown_section()], 0..6)
        .prop_map(|members| members.into_iter().collect())
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn is_known(name: &str) -> bool {
    KNOWN_SECTIONS.contains(&name)
}

/// The one documented case where a well-formed object is refused: no known section
/// and a top-level object shaped like one of msal-common's store entries (with a
/// camelCase `homeAccountId` or `credentialType` field).
fn looks_like_msal_js_store(doc: &Map) -> bool {
    !doc.iter().any(|(k, _)| is_known(k))
        && doc.iter().any(|(_, v)| match v {
            Value::Object(f) => f.contains_key("homeAccountId") || f.contains_key("credentialType"),
            _ => false,
        })
}

/// Whether `json.loads(text)` is something the cache must accept.
fn acceptable(v: &Value) -> bool {
    match v {
        Value::Object(doc) => {
            doc.iter().all(|(k, v)| !is_known(k) || matches!(v, Value::Object(_))) && !looks_like_msal_js_store(doc)
        }
        _ => false,
    }
}

/// A cache that already holds something, so that a failed load has state to keep.
fn preloaded() -> TokenCache {
    let cache = TokenCache::new();
    cache
        .add_json(
            r#"{"client_id": "app", "scope": ["s1", "s2"],
                "token_endpoint": "https://login.microsoftonline.com/contoso/oauth2/v2.0/token",
                "grant_type": "client_credentials",
                "response": {"access_token": "at-\u00e9-secret", "expires_in": 3600}}"#,
            Some(1_700_000_000),
        )
        .expect("a valid event");
    cache
}

/// Feeds `input` to a loaded cache: never panics; on error nothing changes; on
/// success the cache holds what `json.loads(input)` holds and writes it stably.
fn check_any_input(input: &str) -> Result<(), TestCaseError> {
    let cache = preloaded();
    let before = cache.serialize();
    let compact_before = cache.serialize_compact();
    let len_before = cache.len();
    match cache.deserialize(input) {
        Err(e) => {
            // Formatting the error must not panic either.
            let _ = format!("{e} {e:?} {:?}", e.position());
            prop_assert_eq!(cache.serialize(), before, "failed load changed the cache");
            prop_assert_eq!(cache.serialize_compact(), compact_before);
            prop_assert_eq!(cache.len(), len_before);
            prop_assert!(!cache.has_state_changed());
            if let Ok(v) = json::parse(input) {
                prop_assert!(!acceptable(&v), "refused a valid cache {:?}: {}", input, e);
            }
        }
        Ok(()) => {
            prop_assert!(!cache.has_state_changed());
            let out = cache.serialize();
            let reparsed = json::parse(&out);
            prop_assert!(reparsed.is_ok(), "serialize() wrote invalid JSON: {:?}", out);
            if input.is_empty() {
                prop_assert_eq!(&out, "{}");
            } else {
                let v = json::parse(input);
                prop_assert!(v.is_ok(), "deserialize accepted what json::parse rejects");
                prop_assert_eq!(&out, &json::to_python_string(&v.unwrap()));
            }
            let again = TokenCache::new();
            prop_assert!(again.deserialize(&out).is_ok());
            prop_assert_eq!(again.serialize(), out.clone());
            prop_assert_eq!(
                json::parse(&cache.serialize_compact()).ok(),
                reparsed.ok(),
                "compact and indented forms differ"
            );
        }
    }
    Ok(())
}

/// A tiny deterministic PRNG (the noise is drawn from a proptest-chosen seed).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn one_in(&mut self, n: u64) -> bool {
        self.next().is_multiple_of(n)
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

/// Writes `v` in some legal, non-canonical way that `json.loads` reads back as `v`.
fn write_noisy(out: &mut String, v: &Value, rng: &mut Rng, top: bool) {
    fn ws(out: &mut String, rng: &mut Rng) {
        out.push_str(rng.pick(&["", "", "", " ", "\n", "\t", "\r\n    ", "  "]));
    }
    fn string(out: &mut String, s: &str, rng: &mut Rng) {
        out.push('"');
        for c in s.chars() {
            let escape = rng.one_in(4);
            match c {
                '"' if !escape => out.push_str("\\\""),
                '\\' if !escape => out.push_str("\\\\"),
                '/' if escape => out.push_str("\\/"),
                '\n' if !escape => out.push_str("\\n"),
                '\u{8}' if !escape => out.push_str("\\b"),
                c if !escape && c != '"' && c != '\\' && c >= ' ' => out.push(c),
                c => {
                    let mut units = [0u16; 2];
                    for u in c.encode_utf16(&mut units) {
                        if rng.one_in(2) {
                            out.push_str(&format!("\\u{u:04X}"));
                        } else {
                            out.push_str(&format!("\\u{u:04x}"));
                        }
                    }
                }
            }
        }
        out.push('"');
    }
    ws(out, rng);
    match v {
        Value::Number(n) => {
            let t = n.as_str();
            let is_float = t.contains(['.', 'e']);
            if is_float && t.contains('e') && rng.one_in(2) {
                out.push_str(&t.replace("e+", "E").replace('e', "E"));
            } else if is_float && !t.contains('e') && rng.one_in(2) {
                out.push_str(t);
                out.push_str("000");
            } else {
                out.push_str(t);
            }
        }
        Value::String(s) => string(out, s, rng),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_noisy(out, item, rng, false);
            }
            if !items.is_empty() && rng.one_in(5) {
                out.push(','); // trailing comma (MSAL.NET writes these)
            }
            ws(out, rng);
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            let mut first = true;
            for (k, item) in map.iter() {
                if rng.one_in(6) {
                    // A repeated key: json.loads keeps the first position, last value.
                    let decoy = match rng.next() % 3 {
                        0 if top => json::parse(r#"{"decoy": {"secret": "old"}, "g": 1}"#).unwrap(),
                        1 => Value::Null,
                        _ => Value::from("decoy"),
                    };
                    if !first {
                        out.push(',');
                    }
                    first = false;
                    ws(out, rng);
                    string(out, k, rng);
                    ws(out, rng);
                    out.push(':');
                    write_noisy(out, &decoy, rng, false);
                }
                if !first {
                    out.push(',');
                }
                first = false;
                ws(out, rng);
                string(out, k, rng);
                ws(out, rng);
                out.push(':');
                write_noisy(out, item, rng, false);
            }
            if !first && rng.one_in(5) {
                out.push(',');
            }
            ws(out, rng);
            out.push('}');
        }
        other => out.push_str(&json::to_compact_string(other)),
    }
    ws(out, rng);
}

#[derive(Debug, Clone)]
enum Mutation {
    Truncate(Index),
    Insert(Index, String),
    Delete(Index, usize),
    Duplicate(Index, usize),
    Replace(Index, u8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let token = prop_oneof![
        prop::sample::select(vec![
            "{",
            "}",
            "[",
            "]",
            ",",
            ":",
            "\"",
            "\\",
            "\\u",
            "\\ud83d",
            "\\udc00",
            "null",
            "NaN",
            "-Infinity",
            "1e999",
            "-",
            "0.",
            "\u{feff}",
            "\"AccessToken\"",
            "{}",
            "[]",
            "\u{0}",
        ])
        .prop_map(str::to_owned),
        text(4),
    ];
    prop_oneof![
        any::<Index>().prop_map(Mutation::Truncate),
        (any::<Index>(), token).prop_map(|(i, t)| Mutation::Insert(i, t)),
        (any::<Index>(), 1usize..20).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (any::<Index>(), 1usize..40).prop_map(|(i, n)| Mutation::Duplicate(i, n)),
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Replace(i, b)),
    ]
}

fn mutate(text: &str, muts: &[Mutation]) -> String {
    let mut b = text.as_bytes().to_vec();
    for m in muts {
        let len = b.len();
        let at = |i: &Index| if len == 0 { 0 } else { i.index(len + 1) };
        match m {
            Mutation::Truncate(i) => b.truncate(at(i)),
            Mutation::Insert(i, t) => {
                let p = at(i);
                b.splice(p..p, t.bytes());
            }
            Mutation::Delete(i, n) => {
                let p = at(i);
                b.drain(p..(p + n).min(len));
            }
            Mutation::Duplicate(i, n) => {
                let p = at(i);
                let chunk: Vec<u8> = b[p..(p + n).min(len)].to_vec();
                b.splice(p..p, chunk);
            }
            Mutation::Replace(i, byte) => {
                if len > 0 {
                    b[i.index(len)] = *byte;
                }
            }
        }
    }
    String::from_utf8_lossy(&b).into_owned()
}

/// Tokens that make soup look like JSON often enough to get past the first byte.
fn soup() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            prop::sample::select(vec![
                "{",
                "}",
                "[",
                "]",
                ",",
                ":",
                " ",
                "\n",
                "\"",
                "\"AccessToken\"",
                "\"Account\"",
                "\"k\"",
                "\"secret\"",
                "\"\\u00e9\"",
                "\"\\ud83d\\ude00\"",
                "\"\\ud83d\"",
                "\\",
                "1",
                "-0",
                "1.5e3",
                "1e",
                "null",
                "true",
                "NaN",
                "Infinity",
                "-Infinity",
                "nul",
                "\u{feff}",
                "\"a\\",
                "\"\\x\"",
                "\"\u{1}\"",
                "{\"homeAccountId\": 1}",
            ])
            .prop_map(str::to_owned),
            text(3),
        ],
        0..40,
    )
    .prop_map(|v| v.concat())
}

// ---------------------------------------------------------------------------
// (a) Round trips
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(cases(256))]

    /// Our own canonical output is a fixed point, also via the compact form.
    #[test]
    fn canonical_text_round_trips(doc in document()) {
        let value = Value::Object(doc.clone());
        let text = json::to_python_string(&value);
        let cache = TokenCache::new();
        let res = cache.deserialize(&text);
        if looks_like_msal_js_store(&doc) {
            prop_assert!(
                matches!(&res, Err(e) if e.kind() == ErrorKind::NotACache),
                "msal-js store shape not refused: {:?}", res
            );
            return Ok(());
        }
        prop_assert!(res.is_ok(), "refused {:?}: {:?}", text, res);
        prop_assert_eq!(cache.serialize(), text.clone());
        // A second serialize of the same state is the same text.
        prop_assert_eq!(cache.serialize(), text.clone());
        // So is the text written into a buffer of the announced length.
        let written = cache.serialize_with(|n| Some(vec![0u8; n])).map(String::from_utf8);
        prop_assert_eq!(written, Ok(Ok(text.clone())));

        let compact = cache.serialize_compact();
        prop_assert_eq!(&compact, &json::to_compact_string(&value));
        prop_assert_eq!(json::parse(&compact).ok(), Some(value));

        let second = TokenCache::new();
        prop_assert!(second.deserialize(&compact).is_ok());
        prop_assert_eq!(second.serialize(), text);
    }

    /// Any legal spelling of a document loads as json.loads reads it.
    #[test]
    fn noisy_text_loads_like_json_loads(doc in document(), seed in any::<u64>(), bom in any::<bool>()) {
        prop_assume!(!looks_like_msal_js_store(&doc));
        let value = Value::Object(doc);
        let mut rng = Rng(seed | 1);
        let mut text = String::new();
        if bom {
            text.push('\u{feff}');
        }
        write_noisy(&mut text, &value, &mut rng, true);
        prop_assert_eq!(json::parse(&text).ok(), Some(value.clone()), "json::parse of {:?}", text);
        let cache = TokenCache::new();
        let res = cache.deserialize(&text);
        prop_assert!(res.is_ok(), "refused {:?}: {:?}", text, res);
        prop_assert_eq!(cache.serialize(), json::to_python_string(&value));
    }
}

// ---------------------------------------------------------------------------
// (b) Hostile input
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn arbitrary_strings_never_panic(s in any::<String>()) {
        check_any_input(&s)?;
    }

    #[test]
    fn byte_soup_never_panics(b in prop::collection::vec(any::<u8>(), 0..256)) {
        check_any_input(&String::from_utf8_lossy(&b))?;
    }

    #[test]
    fn json_soup_never_panics(s in soup()) {
        check_any_input(&s)?;
    }

    #[test]
    fn damaged_caches_never_panic(
        doc in document(),
        muts in prop::collection::vec(mutation(), 1..4),
    ) {
        let text = json::to_python_string(&Value::Object(doc));
        check_any_input(&mutate(&text, &muts))?;
    }
}

/// Nesting right at and past the parser's depth limit: same verdict as
/// `json::parse`, and what loads round-trips.
#[test]
fn deep_nesting_at_the_limit() {
    for depth in (0..8).chain(240..270) {
        let open = "[".repeat(depth);
        let close = "]".repeat(depth);
        for text in [
            format!("{{\"X\": {open}{close}}}"),
            format!("{{\"AccessToken\": {{\"k\": {{\"f\": {open}{close}}}}}}}"),
            format!("{{\"AccessToken\": {{\"k\": {open}{close}}}}}"),
        ] {
            let cache = preloaded();
            let before = cache.serialize();
            let parsed = json::parse(&text);
            match cache.deserialize(&text) {
                Ok(()) => {
                    let v = parsed
                        .unwrap_or_else(|e| panic!("deserialize accepted depth {depth} that json::parse rejects: {e}"));
                    let out = cache.serialize();
                    assert_eq!(out, json::to_python_string(&v), "depth {depth}");
                    let again = TokenCache::new();
                    again.deserialize(&out).unwrap();
                    assert_eq!(again.serialize(), out);
                    assert_eq!(json::parse(&cache.serialize_compact()).unwrap(), v, "depth {depth}");
                }
                Err(e) => {
                    assert!(parsed.is_err(), "depth {depth}: json::parse accepts but deserialize refuses: {e}");
                    assert_eq!(cache.serialize(), before);
                }
            }
        }
    }
    // Far past the limit must be an error, not a stack overflow.
    let deep = format!("{{\"X\": {}}}", "[".repeat(100_000));
    assert!(TokenCache::new().deserialize(&deep).is_err());
}

/// Regression: a repeated known section whose earlier value is not an object.
/// `json.loads` keeps the last value, so `{"AccessToken": 1, "AccessToken": {...}}`
/// is a valid cache (msal 1.39 loads it); it used to be refused as NotACache.
#[test]
fn repeated_section_last_value_wins() {
    let text = r#"{"AccessToken": 1, "AccessToken": {"k": {"secret": "s"}}}"#;
    let cache = TokenCache::new();
    cache.deserialize(text).expect("json.loads gives a valid cache");
    assert_eq!(cache.serialize(), json::to_python_string(&json::parse(text).unwrap()));
}

/// Regression: an entry field whose escaped name is longer than 65535 bytes used to
/// make the whole (valid) document fail to load as `invalid_json: entry too large`.
#[test]
fn long_field_names_load() {
    let name = "a".repeat(70_000);
    let text = format!("{{\"AccessToken\": {{\"k\": {{\"{name}\": 1}}}}}}");
    let cache = TokenCache::new();
    cache.deserialize(&text).expect("valid JSON, valid cache");
    assert_eq!(cache.serialize(), json::to_python_string(&json::parse(&text).unwrap()));
}

/// Regression: Python's `repr` (David Gay's dtoa) breaks an exact tie between the
/// two shortest decimal spellings of a float to even; Rust's shortest `{:e}` used to
/// round it up (about 0.6% of "money-like" floats k / 2^n), so such a cache was not
/// written as msal writes it. Both spellings parse to the same double, which is why
/// the round-trip properties cannot see it. Golden values: CPython 3.11
/// `json.dumps(json.loads(literal))`.
#[test]
fn float_repr_breaks_ties_like_python() {
    for (literal, python) in [
        ("1125899906842624.25", "1125899906842624.2"),
        ("2221648853931861.25", "2221648853931861.2"),
        ("26363981746409.3125", "26363981746409.312"),
        ("-34144067629171.0625", "-34144067629171.062"),
        ("756716708459839.25", "756716708459839.2"),
    ] {
        let text = format!("{{\n    \"X\": {python}\n}}");
        let cache = TokenCache::new();
        cache.deserialize(&format!("{{\"X\": {literal}}}")).unwrap();
        assert_eq!(cache.serialize(), text, "{literal}");
        let f: f64 = literal.parse().unwrap();
        assert_eq!(Number::from_f64(f).as_str(), python, "{literal}");
    }
}

/// Regression: a search compares query values like Python's `==` (msal's
/// `is_subdict_of`), where `1 == 1.0 == True`; it used to compare their JSON text.
/// Checked against msal 1.39: with an entry holding `"x": 1.0, "y": true`,
/// `search(AccessToken, query={"x": 1})` and `query={"y": 1}` each return it.
#[test]
fn search_compares_values_like_python() {
    let cache = TokenCache::new();
    cache
        .deserialize(
            r#"{"AccessToken": {"k": {"credential_type": "AccessToken", "secret": "s",
                "home_account_id": null, "environment": "e", "client_id": "c", "realm": "r",
                "target": "a", "expires_on": "9999999999", "x": 1.0, "y": true}}}"#,
        )
        .unwrap();
    for (name, v) in [("x", Value::from(1)), ("y", Value::from(1))] {
        let mut q = Map::new();
        q.insert(name, v);
        assert_eq!(cache.search(CredentialType::AccessToken, &[], Some(&q), Some(1)).len(), 1, "{name}");
    }
}

/// Regression: a target is split like Python's `str.split()`, which also splits on
/// U+001C..U+001F (Rust's `split_whitespace` does not). Checked against msal 1.39:
/// an access token with target "a\u001cb" is found by `search(target=["a"])`.
#[test]
fn targets_split_like_python() {
    let cache = TokenCache::new();
    cache
        .deserialize(
            r#"{"AccessToken": {"k": {"credential_type": "AccessToken", "secret": "s",
                "home_account_id": null, "environment": "e", "client_id": "c", "realm": "r",
                "target": "a\u001cb", "expires_on": "9999999999"}}}"#,
        )
        .unwrap();
    assert_eq!(cache.search(CredentialType::AccessToken, &["a"], None, Some(1)).len(), 1);
}

/// `serialize_with` asks again when the cache changed after it announced a length,
/// and hands back a `String` when the allocator declines; either way it is the text
/// `serialize` writes, and the changed flag is cleared.
#[test]
fn serialize_with_follows_a_change_and_a_refusal() {
    let cache = TokenCache::new();
    cache.add(&app_event("a", "s", "A"), Some(NOW0)).unwrap();
    let mut asked = Vec::new();
    let written = cache
        .serialize_with(|n| {
            if asked.is_empty() {
                // Another thread's add, between sizing and writing.
                cache.add(&app_event("b", "s", "B"), Some(NOW0)).unwrap();
            }
            asked.push(n);
            Some(vec![0u8; n])
        })
        .unwrap();
    assert_eq!(asked.len(), 2);
    assert!(asked[1] > asked[0]);
    assert!(!cache.has_state_changed());
    assert_eq!(String::from_utf8(written).unwrap(), cache.serialize());

    cache.add(&app_event("c", "s", "C"), Some(NOW0)).unwrap();
    let declined = cache.serialize_with(|_| None::<Vec<u8>>);
    assert!(!cache.has_state_changed());
    assert_eq!(declined, Err(cache.serialize()));
}

/// An app token event for the compaction tests (partition `app_{tenant}_AppTokenCache`).
fn app_event(tenant: &str, scope: &str, secret: &str) -> Map {
    let mut response = Map::new();
    response.insert("access_token", Value::from(secret));
    response.insert("expires_in", Value::from(3600));
    let mut e = Map::new();
    e.insert("client_id", Value::from("app"));
    e.insert("scope", Value::Array(vec![Value::from(scope)]));
    e.insert("token_endpoint", Value::from(format!("https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token")));
    e.insert("response", Value::Object(response));
    e
}

fn count_in_realm(cache: &TokenCache, realm: &str) -> usize {
    let mut q = Map::new();
    q.insert("realm", Value::from(realm));
    cache.search(CredentialType::AccessToken, &[], Some(&q), Some(NOW0)).len()
}

/// Leaves 1023 tombstones in the AccessToken section: the next removal compacts it
/// (renumbers every slot).
fn add_junk_and_leave_1023_tombstones(cache: &TokenCache) {
    for i in 0..1100 {
        cache.add(&app_event("junk", &format!("j{i}"), &format!("J{i}")), Some(NOW0)).unwrap();
    }
    for i in 0..1023 {
        let e = cache.get_access_token(None, "login.microsoftonline.com", "app", "junk", &[&format!("j{i}")], None);
        cache.remove_at(&e.unwrap()).unwrap();
    }
}

/// Regression: `remove_partition` collected the partition's (section, slot) members,
/// then removed them one by one while a removal could compact the section and
/// renumber every slot; the stale slot numbers then removed the wrong entries (one
/// token of the partition stayed, one of another partition went) while still
/// reporting 10.
#[test]
fn remove_partition_across_a_compaction() {
    let cache = TokenCache::new();
    for i in 0..10 {
        cache.add(&app_event("a", &format!("a{i}"), &format!("A{i}")), Some(NOW0)).unwrap();
    }
    add_junk_and_leave_1023_tombstones(&cache);
    assert_eq!((count_in_realm(&cache, "a"), count_in_realm(&cache, "junk")), (10, 77));
    assert_eq!(cache.remove_partition("app_a_AppTokenCache"), 10);
    assert_eq!(count_in_realm(&cache, "a"), 0, "tokens of the removed partition remain");
    assert_eq!(count_in_realm(&cache, "junk"), 77, "tokens of another partition were removed");
    assert_eq!(cache.len(), 77 + 1);
}

/// Regression: capacity eviction had the same stale-slot loop as `remove_partition`.
/// Evicting a 10-token partition removed one token (the removal that compacted the
/// section), missed the other 9, then forgot the partition's usage, so the 9
/// survivors were no longer accounted and could never be evicted.
#[test]
fn capacity_eviction_across_a_compaction() {
    let cache = TokenCache::with_limits(tokencache::CacheLimits { max_entries: Some(95), ..Default::default() });
    add_junk_and_leave_1023_tombstones(&cache); // 77 tokens + 1 app metadata
    for i in 0..10 {
        cache.add(&app_event("a", &format!("a{i}"), &format!("A{i}")), Some(NOW0)).unwrap();
    }
    // Use "junk" so that "a" is the least recently used partition.
    assert_eq!(count_in_realm(&cache, "junk"), 77);
    for i in 0..8 {
        cache.add(&app_event("b", &format!("b{i}"), &format!("B{i}")), Some(NOW0)).unwrap();
    }
    // 78 + 10 + 8 = 96 > 95: partition "a" (least recently used) goes as a whole.
    assert_eq!(cache.stats().evictions.capacity, 1);
    assert_eq!(count_in_realm(&cache, "a"), 0, "an evicted partition left tokens behind");
    assert_eq!((count_in_realm(&cache, "junk"), count_in_realm(&cache, "b")), (77, 8));
    assert_eq!(cache.len(), 86);
}

// ---------------------------------------------------------------------------
// (c) Model test
// ---------------------------------------------------------------------------

const NOW0: i64 = 1_700_000_000;
const ENV: &str = "login.microsoftonline.com";
const CLIENTS: &[&str] = &["app1", "App1", "app-2"];
/// Tenants and scopes chosen so that different (tenant, scopes) collide on one
/// cache key ("t-1" + "x" and "t" + "1-x"), differ only in case, or need escaping.
const TENANTS: &[&str] = &["contoso", "Contoso", "t-1", "t", "é-Σ", "a\"b\\c", "😀", "f a"];
const SCOPES: &[&str] =
    &["User.Read", "user.read", "x", "1-x", "https://graph.microsoft.com/.default", "é", "ΣΑΣ", "a\"\\", "\u{7f}"];
const EXTS: &[&str] = &["agent-1", "agent-2"];

#[derive(Debug, Clone)]
enum Filter {
    None,
    Realm(usize),
    /// home_account_id, environment, client_id, realm: msal's exact-key lookup first.
    Exact(usize, usize, Option<usize>),
}

#[derive(Debug, Clone)]
enum Op {
    Add {
        client: usize,
        tenant: usize,
        scopes: Vec<usize>,
        ext: Option<usize>,
        secret: String,
        expires_in: i64,
    },
    Get {
        client: usize,
        tenant: usize,
        scopes: Vec<usize>,
        ext: Option<usize>,
    },
    Search {
        scopes: Vec<usize>,
        filter: Filter,
    },
    /// A `Get`, or a `Search` with an `Exact` filter, for the parameters of an
    /// earlier `Add` (so that lookups hit often), optionally with one scope fewer.
    Recent {
        pick: Index,
        search: bool,
        fewer_scopes: bool,
    },
    /// remove_at of an entry some earlier call returned.
    Remove(Index),
    /// serialize, then deserialize our own output.
    Reload,
    Tick(i64),
    /// `remove_partition` of an app-token partition (`{client}_{tenant}[_{ext}]_AppTokenCache`).
    RemovePartition(usize, usize, Option<usize>),
    /// `serialize_partition`, `remove_partition`, `deserialize_partition`: a
    /// partition's round trip through a store, as MSAL.NET's callbacks do it.
    PartitionRoundTrip(usize, usize, Option<usize>),
}

/// The operations; with `partitions`, also partition removal and round trips.
fn op(partitions: bool) -> impl Strategy<Value = Op> {
    let p = u32::from(partitions);
    let client = 0..CLIENTS.len();
    let tenant = 0..TENANTS.len();
    let scopes = || prop::collection::vec(0..SCOPES.len(), 0..3);
    let ext = || prop::option::weighted(0.2, 0..EXTS.len());
    let filter = prop_oneof![
        Just(Filter::None),
        (0..TENANTS.len()).prop_map(Filter::Realm),
        (0..CLIENTS.len(), 0..TENANTS.len(), ext()).prop_map(|(c, t, e)| Filter::Exact(c, t, e)),
    ];
    prop_oneof![
        6 => (client.clone(), tenant.clone(), scopes(), ext(), text(10), 1i64..400).prop_map(
            |(client, tenant, scopes, ext, secret, expires_in)| Op::Add {
                client,
                tenant,
                scopes,
                ext,
                secret: format!("at{secret}"),
                expires_in,
            }
        ),
        3 => (client, tenant, scopes(), ext()).prop_map(|(client, tenant, scopes, ext)| Op::Get {
            client,
            tenant,
            scopes,
            ext
        }),
        3 => (scopes(), filter).prop_map(|(scopes, filter)| Op::Search { scopes, filter }),
        3 => (any::<Index>(), any::<bool>(), any::<bool>()).prop_map(|(pick, search, fewer_scopes)| Op::Recent {
            pick,
            search,
            fewer_scopes
        }),
        2 => any::<Index>().prop_map(Op::Remove),
        1 => Just(Op::Reload),
        2 => (0i64..300).prop_map(Op::Tick),
        p => (0..CLIENTS.len(), 0..TENANTS.len(), ext()).prop_map(|(c, t, e)| Op::RemovePartition(c, t, e)),
        2 * p => (0..CLIENTS.len(), 0..TENANTS.len(), ext()).prop_map(|(c, t, e)| Op::PartitionRoundTrip(c, t, e)),
    ]
}

/// What the model expects an access token to hold.
#[derive(Debug, Clone, PartialEq)]
struct At {
    /// Insertion order within the section (a replaced key keeps its place).
    seq: u64,
    client_id: String,
    realm: String,
    target: String,
    ext: Option<String>,
    secret: String,
    expires_on: i64,
}

/// msal's access-token key, lower-cased as a whole like msal's `"-".join(...).lower()`.
fn at_key(client_id: &str, realm: &str, target: &str, ext: Option<&str>) -> String {
    match ext {
        None => format!("-{ENV}-accesstoken-{client_id}-{realm}-{target}"),
        Some(e) => format!("-{ENV}-atext-{client_id}-{realm}-{target}-{e}"),
    }
    .to_lowercase()
}

fn target_of(scopes: &[usize]) -> String {
    let mut s: Vec<&str> = scopes.iter().map(|i| SCOPES[*i]).collect();
    s.sort_unstable();
    s.join(" ")
}

fn ext_key_of(ext: Option<usize>) -> Option<String> {
    ext.map(|i| {
        let mut data = Map::new();
        data.insert("fmi_path", Value::from(EXTS[i]));
        ext_cache_key(&data)
    })
}

/// (client_id, realm, target, secret) of a returned entry.
type Seen = (String, String, String, String);

fn seen(e: &Entry) -> Seen {
    let s = |n: &str| e.get_str(n).map(|c| c.into_owned()).unwrap_or_default();
    (s("client_id"), s("realm"), s("target"), s("secret"))
}

/// The partition an app access token belongs to (see `tokencache::partition_key`).
fn partition_of(a: &At) -> String {
    match &a.ext {
        None => format!("{}_{}_AppTokenCache", a.client_id, a.realm),
        Some(e) => format!("{}_{}_{e}_AppTokenCache", a.client_id, a.realm),
    }
}

fn app_partition(client: usize, tenant: usize, ext: Option<usize>) -> String {
    match ext_key_of(ext) {
        None => format!("{}_{}_AppTokenCache", CLIENTS[client], TENANTS[tenant]),
        Some(e) => format!("{}_{}_{e}_AppTokenCache", CLIENTS[client], TENANTS[tenant]),
    }
}

fn seen_model(a: &At) -> Seen {
    (a.client_id.clone(), a.realm.clone(), a.target.clone(), a.secret.clone())
}

#[derive(Default)]
struct Model {
    ats: BTreeMap<String, At>,
    clients: std::collections::BTreeSet<String>,
    next_seq: u64,
}

impl Model {
    fn add(&mut self, client_id: &str, realm: &str, target: &str, ext: Option<String>, secret: &str, expires_on: i64) {
        let key = at_key(client_id, realm, target, ext.as_deref());
        let seq = match self.ats.get(&key) {
            Some(old) => old.seq,
            None => {
                self.next_seq += 1;
                self.next_seq
            }
        };
        self.ats.insert(
            key,
            At {
                seq,
                client_id: client_id.to_owned(),
                realm: realm.to_owned(),
                target: target.to_owned(),
                ext,
                secret: secret.to_owned(),
                expires_on,
            },
        );
        self.clients.insert(client_id.to_owned());
    }

    /// What `search(AccessToken, scopes, query, now)` returns, then its eviction.
    fn search(&mut self, scopes: &[&str], filter: &Filter, now: i64) -> Vec<Seen> {
        let cond = |a: &At| -> bool {
            match filter {
                Filter::None => a.ext.is_none(),
                Filter::Realm(t) => a.ext.is_none() && a.realm == TENANTS[*t],
                Filter::Exact(c, t, e) => {
                    a.client_id == CLIENTS[*c] && a.realm == TENANTS[*t] && a.ext == ext_key_of(*e)
                }
            }
        };
        let has_scopes = |a: &At| scopes.iter().all(|s| a.target.split_whitespace().any(|t| t == *s));
        let mut preferred = None;
        if let Filter::Exact(c, t, e) = filter
            && !scopes.is_empty()
        {
            let mut sorted = scopes.to_vec();
            sorted.sort_unstable();
            let key = at_key(CLIENTS[*c], TENANTS[*t], &sorted.join(" "), ext_key_of(*e).as_deref());
            preferred = self.ats.get(&key).filter(|a| cond(a)).cloned();
        }
        let mut rest: Vec<&At> = self
            .ats
            .values()
            .filter(|a| a.expires_on >= now && cond(a) && has_scopes(a))
            .filter(|a| preferred.as_ref() != Some(*a))
            .collect();
        rest.sort_by_key(|a| a.seq);
        let out = preferred.iter().chain(rest).map(seen_model).collect();
        self.ats.retain(|_, a| a.expires_on >= now);
        out
    }
}

fn event(client: &str, tenant: &str, scopes: &[&str], ext: Option<&str>, secret: &str, expires_in: i64) -> Map {
    let mut response = Map::new();
    response.insert("access_token", Value::from(secret));
    response.insert("expires_in", Value::from(expires_in));
    response.insert("token_type", Value::from("Bearer"));
    let mut e = Map::new();
    e.insert("client_id", Value::from(client));
    e.insert("scope", Value::Array(scopes.iter().map(|s| Value::from(*s)).collect()));
    e.insert("token_endpoint", Value::from(format!("https://{ENV}/{tenant}/oauth2/v2.0/token")));
    e.insert("grant_type", Value::from("client_credentials"));
    e.insert("response", Value::Object(response));
    if let Some(x) = ext {
        let mut data = Map::new();
        data.insert("fmi_path", Value::from(x));
        e.insert("data", Value::Object(data));
    }
    e
}

fn run_model(ops: &[Op]) -> Result<(), TestCaseError> {
    let cache = TokenCache::new();
    let mut model = Model::default();
    let mut returned: Vec<Entry> = Vec::new();
    let mut now = NOW0;
    let mut adds: Vec<Op> = Vec::new();
    for (step, op) in ops.iter().enumerate() {
        let op = match op {
            Op::Recent { pick, search, fewer_scopes } => {
                let Some(Op::Add { client, tenant, scopes, ext, .. }) =
                    adds.get(pick.index(adds.len().max(1))).cloned()
                else {
                    continue;
                };
                let mut scopes = scopes;
                if *fewer_scopes {
                    scopes.pop();
                }
                if *search {
                    Op::Search { scopes, filter: Filter::Exact(client, tenant, ext) }
                } else {
                    Op::Get { client, tenant, scopes, ext }
                }
            }
            Op::Add { .. } => {
                adds.push(op.clone());
                op.clone()
            }
            _ => op.clone(),
        };
        let op = &op;
        match op {
            Op::Recent { .. } => unreachable!("resolved above"),
            Op::Add { client, tenant, scopes, ext, secret, expires_in } => {
                let s: Vec<&str> = scopes.iter().map(|i| SCOPES[*i]).collect();
                let ev = event(CLIENTS[*client], TENANTS[*tenant], &s, ext.map(|i| EXTS[i]), secret, *expires_in);
                let r = cache.add(&ev, Some(now));
                prop_assert!(r.is_ok(), "step {}: add failed: {:?}", step, r);
                prop_assert!(cache.has_state_changed());
                model.add(
                    CLIENTS[*client],
                    TENANTS[*tenant],
                    &target_of(scopes),
                    ext_key_of(*ext),
                    secret,
                    now + expires_in,
                );
            }
            Op::Get { client, tenant, scopes, ext } => {
                let s: Vec<&str> = scopes.iter().map(|i| SCOPES[*i]).collect();
                let ext_key = ext_key_of(*ext);
                let got = cache.get_access_token(None, ENV, CLIENTS[*client], TENANTS[*tenant], &s, ext_key.as_deref());
                let want =
                    model.ats.get(&at_key(CLIENTS[*client], TENANTS[*tenant], &target_of(scopes), ext_key.as_deref()));
                prop_assert_eq!(got.as_ref().map(seen), want.map(seen_model), "step {}: {:?}", step, op);
                returned.extend(got);
            }
            Op::Search { scopes, filter } => {
                let s: Vec<&str> = scopes.iter().map(|i| SCOPES[*i]).collect();
                let query = match filter {
                    Filter::None => None,
                    Filter::Realm(t) => {
                        let mut q = Map::new();
                        q.insert("realm", Value::from(TENANTS[*t]));
                        Some(q)
                    }
                    Filter::Exact(c, t, e) => {
                        let mut q = Map::new();
                        q.insert("home_account_id", Value::Null);
                        q.insert("environment", Value::from(ENV.to_uppercase()));
                        q.insert("client_id", Value::from(CLIENTS[*c]));
                        q.insert("realm", Value::from(TENANTS[*t]));
                        if let Some(k) = ext_key_of(*e) {
                            q.insert("ext_cache_key", Value::from(k));
                        }
                        Some(q)
                    }
                };
                let got = cache.search(CredentialType::AccessToken, &s, query.as_ref(), Some(now));
                let want = model.search(&s, filter, now);
                prop_assert_eq!(got.iter().map(seen).collect::<Vec<_>>(), want, "step {}: {:?} at {}", step, op, now);
                returned.extend(got);
            }
            Op::Remove(i) => {
                if returned.is_empty() {
                    continue;
                }
                let e = returned[i.index(returned.len())].clone();
                prop_assert!(cache.remove_at(&e).is_ok());
                let (c, r, t, _) = seen(&e);
                let ext = e.get_str("ext_cache_key").map(|c| c.into_owned());
                model.ats.remove(&at_key(&c, &r, &t, ext.as_deref()));
            }
            Op::Reload => {
                let text = cache.serialize();
                prop_assert!(!cache.has_state_changed());
                let fresh = TokenCache::new();
                prop_assert!(fresh.deserialize(&text).is_ok());
                prop_assert_eq!(fresh.serialize(), text.clone());
                prop_assert!(cache.deserialize(&text).is_ok());
                prop_assert_eq!(cache.serialize(), text);
            }
            Op::Tick(dt) => now += dt,
            Op::RemovePartition(c, t, e) => {
                let key = app_partition(*c, *t, *e);
                let before = model.ats.len();
                model.ats.retain(|_, a| partition_of(a) != key);
                prop_assert_eq!(cache.remove_partition(&key), before - model.ats.len(), "step {}: {:?}", step, op);
            }
            Op::PartitionRoundTrip(c, t, e) => {
                let key = app_partition(*c, *t, *e);
                let mut members: Vec<At> = model.ats.values().filter(|a| partition_of(a) == key).cloned().collect();
                members.sort_by_key(|a| a.seq);
                let blob = cache.serialize_partition(&key);
                // The blob alone: exactly the partition's tokens and their app's metadata.
                let alone = TokenCache::new();
                prop_assert!(alone.deserialize(&blob).is_ok(), "step {}: blob {:?}", step, blob);
                let got: Vec<Seen> =
                    alone.search(CredentialType::AccessToken, &[], None, Some(i64::MIN)).iter().map(seen).collect();
                let mut want: Vec<Seen> = members.iter().filter(|a| a.ext.is_none()).map(seen_model).collect();
                if e.is_some() {
                    let mut q = Map::new();
                    q.insert("ext_cache_key", Value::from(ext_key_of(*e).unwrap()));
                    let got: Vec<Seen> = alone
                        .search(CredentialType::AccessToken, &[], Some(&q), Some(i64::MIN))
                        .iter()
                        .map(seen)
                        .collect();
                    prop_assert_eq!(got, members.iter().map(seen_model).collect::<Vec<_>>(), "step {}", step);
                    want.clear();
                }
                prop_assert_eq!(got, want, "step {}: {:?}", step, op);
                prop_assert_eq!(alone.len(), members.len() + usize::from(!members.is_empty()), "step {}", step);
                // Removed, then imported back: the same tokens, now last in the section.
                prop_assert_eq!(cache.remove_partition(&key), members.len());
                prop_assert!(cache.deserialize_partition(&key, &blob).is_ok());
                prop_assert!(!cache.has_state_changed());
                for a in &members {
                    model.next_seq += 1;
                    let k = at_key(&a.client_id, &a.realm, &a.target, a.ext.as_deref());
                    model.ats.get_mut(&k).expect("a member").seq = model.next_seq;
                }
            }
        }
        let mut by_seq: Vec<&At> = model.ats.values().collect();
        by_seq.sort_by_key(|a| a.seq);
        let mut keys: Vec<String> = Vec::new();
        for a in by_seq {
            let k = partition_of(a);
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
        prop_assert_eq!(cache.partition_keys(), keys, "step {}: partition keys after {:?}", step, op);
        prop_assert_eq!(
            cache.len(),
            model.ats.len() + model.clients.len(),
            "step {}: entry count after {:?}",
            step,
            op
        );
    }
    // Every expected token is still there under its key.
    for a in model.ats.values() {
        let s: Vec<&str> = a.target.split(' ').filter(|s| !s.is_empty()).collect();
        let got = cache.get_access_token(None, ENV, &a.client_id, &a.realm, &s, a.ext.as_deref());
        prop_assert_eq!(got.as_ref().map(seen), Some(seen_model(a)));
    }
    Ok(())
}

proptest! {
    #![proptest_config(cases(200))]

    #[test]
    fn operations_match_the_model(ops in prop::collection::vec(op(false), 1..60)) {
        run_model(&ops)?;
    }

    /// BUG (core/src/cache.rs, `deserialize_inner`): the partition index is rebuilt
    /// after `deserialize` only for a bounded cache. On `TokenCache::new()`, after
    /// `deserialize` (even of its own output) `serialize_partition` returns `{}`,
    /// `remove_partition` removes nothing and returns 0, `suggested_expiry` is `None`.
    /// Minimal: add one app token, `deserialize(serialize())`, then
    /// `serialize_partition("app1_t-1_AppTokenCache")` is `{}`.
    #[test]
    fn operations_with_partitions_match_the_model(ops in prop::collection::vec(op(true), 1..60)) {
        run_model(&ops)?;
    }
}

/// Thousands of removals: the section compacts its tombstones (at 1024 dead slots)
/// and must keep order, lookups and indexes right across it.
#[test]
fn many_removals_compact_and_stay_consistent() {
    let cache = TokenCache::new();
    let mut model = Model::default();
    let n = 3000;
    for i in 0..n {
        let scope = format!("s{i}");
        let realm = format!("r{}", i % 7);
        cache.add(&event("app", &realm, &[&scope, "common"], None, &format!("t{i}"), 3600), Some(NOW0)).unwrap();
        model.add("app", &realm, &format!("common {scope}"), None, &format!("t{i}"), NOW0 + 3600);
    }
    // Remove three out of four, found through search so removal uses returned entries.
    for i in (0..n).filter(|i| i % 4 != 0) {
        let hits = cache.search(CredentialType::AccessToken, &[&format!("s{i}")], None, Some(NOW0));
        assert_eq!(hits.len(), 1, "s{i}");
        cache.remove_at(&hits[0]).unwrap();
        let (c, r, t, _) = seen(&hits[0]);
        model.ats.remove(&at_key(&c, &r, &t, None));
    }
    assert_eq!(cache.len(), model.ats.len() + 1);
    let got: Vec<Seen> =
        cache.search(CredentialType::AccessToken, &["common"], None, Some(NOW0)).iter().map(seen).collect();
    assert_eq!(got, model.search(&["common"], &Filter::None, NOW0));
    let mut q = Map::new();
    q.insert("realm", Value::from("r3"));
    let got: Vec<Seen> =
        cache.search(CredentialType::AccessToken, &["common"], Some(&q), Some(NOW0)).iter().map(seen).collect();
    let mut want: Vec<&At> = model.ats.values().filter(|a| a.realm == "r3").collect();
    want.sort_by_key(|a| a.seq);
    assert_eq!(got, want.into_iter().map(seen_model).collect::<Vec<_>>());
    let text = cache.serialize();
    let again = TokenCache::new();
    again.deserialize(&text).unwrap();
    assert_eq!(again.serialize(), text);
    // Everything expires: one search evicts them all.
    assert!(cache.search(CredentialType::AccessToken, &[], None, Some(NOW0 + 3601)).is_empty());
    assert_eq!(cache.len(), 1);
}

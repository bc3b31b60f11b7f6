//! The two-writer scenario of the conflict-safe write tests: two providers update
//! one partition in turns or at once, each adding its own tokens, removing some of
//! them and overwriting a shared one; then every token either side saved and did
//! not remove must be there, nothing removed may have come back, and the shared
//! token must hold the newest write.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicI64, Ordering};

use tokencache::store::Store;
use tokencache::{CacheProvider, CredentialType, PartitionCache, TokenCache};

/// The one partition both writers update.
pub const PARTITION: &str = "web_contoso_AppTokenCache";

/// A client-credentials token response for `scope` carrying `secret`.
pub fn at_event(scope: &str, secret: &str) -> String {
    format!(
        r#"{{"client_id": "web", "scope": ["{scope}"], "environment": "login.microsoftonline.com",
        "token_endpoint": "https://login.microsoftonline.com/contoso/oauth2/v2.0/token",
        "grant_type": "client_credentials",
        "response": {{"access_token": "{secret}", "expires_in": 86400, "token_type": "Bearer"}}}}"#
    )
}

/// Every access token in `cache`, scope -> secret.
pub fn tokens(cache: &TokenCache) -> BTreeMap<String, String> {
    cache
        .search(CredentialType::AccessToken, &[], None, None)
        .iter()
        .map(|e| (e.get_str("target").unwrap_or_default().into_owned(), e.secret().unwrap_or_default().into_owned()))
        .collect()
}

/// A small deterministic generator (xorshift).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What one writer has saved so far.
#[derive(Default)]
pub struct Model {
    /// Its own tokens saved and not removed: scope -> secret.
    pub alive: BTreeMap<String, String>,
    /// Its own tokens it removed.
    pub removed: BTreeSet<String>,
    /// Its saved writes of the shared token: (time, secret).
    pub shared: Vec<(i64, String)>,
}

/// Changes made to one loaded copy, applied to the model once saved.
#[derive(Default)]
pub struct Pending {
    added: Vec<(String, String)>,
    removed: Vec<String>,
    shared: Option<(i64, String)>,
}

/// A logical clock for `cached_at`: distinct, increasing, near the wall clock so
/// the tokens are valid now.
pub struct Ticks(AtomicI64);

impl Default for Ticks {
    fn default() -> Self {
        Ticks(AtomicI64::new(tokencache::unix_now()))
    }
}

impl Ticks {
    pub fn next(&self) -> i64 {
        self.0.fetch_add(1, Ordering::SeqCst) + 1
    }
}

/// One writer's changes to a loaded copy: a token of its own; sometimes the
/// removal of one of its saved tokens still alive; sometimes (if `shared`) the
/// shared token — off where the writers' `cached_at` clocks are not one, e.g. in
/// separate processes.
pub fn change(
    side: &str,
    step: usize,
    cache: &TokenCache,
    model: &Model,
    rng: &mut Rng,
    ticks: &Ticks,
    shared: bool,
) -> Pending {
    let mut p = Pending::default();
    let t = ticks.next();
    let scope = format!("{side}-{step}");
    let secret = format!("secret-{side}-{step}");
    cache.add_json(&at_event(&scope, &secret), Some(t)).unwrap();
    p.added.push((scope, secret));
    if rng.below(4) == 0 && !model.alive.is_empty() {
        let victim = model.alive.keys().nth(rng.below(model.alive.len() as u64) as usize).unwrap().clone();
        let found = cache.search(CredentialType::AccessToken, &[victim.as_str()], None, None);
        assert_eq!(found.len(), 1, "{side} step {step}: its own saved token {victim} is missing from what it loaded");
        cache.remove_at(&found[0]).unwrap();
        p.removed.push(victim);
    }
    if shared && rng.below(5) == 0 {
        let secret = format!("shared-{side}-{step}");
        cache.add_json(&at_event("shared", &secret), Some(t)).unwrap();
        p.shared = Some((t, secret));
    }
    p
}

impl Model {
    pub fn saved(&mut self, p: Pending) {
        for (s, v) in p.added {
            self.alive.insert(s, v);
        }
        for s in p.removed {
            self.alive.remove(&s);
            self.removed.insert(s);
        }
        self.shared.extend(p.shared);
    }
}

impl Model {
    /// The model as text (for a writer in another process).
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for (scope, secret) in &self.alive {
            out.push_str(&format!("alive {scope} {secret}\n"));
        }
        for scope in &self.removed {
            out.push_str(&format!("removed {scope}\n"));
        }
        out
    }

    /// Reads [`to_text`](Self::to_text).
    pub fn from_text(text: &str) -> Model {
        let mut m = Model::default();
        for line in text.lines() {
            let mut parts = line.split(' ');
            match (parts.next(), parts.next(), parts.next()) {
                (Some("alive"), Some(scope), Some(secret)) => {
                    m.alive.insert(scope.to_owned(), secret.to_owned());
                }
                (Some("removed"), Some(scope), None) => {
                    m.removed.insert(scope.to_owned());
                }
                _ => panic!("bad model line {line:?}"),
            }
        }
        m
    }
}

/// `steps` load-change-save rounds of one writer named `name`.
pub fn rounds<S: Store>(
    p: &CacheProvider<S>,
    name: &str,
    steps: usize,
    seed: u64,
    ticks: &Ticks,
    shared: bool,
) -> Model {
    let mut rng = Rng(seed);
    let mut model = Model::default();
    for step in 0..steps {
        let cache = p.load(PARTITION).unwrap();
        // The token request the loaded copy waits for: up to 0.5 ms (real ones take
        // tens to hundreds), so the writers hammer the partition.
        std::thread::sleep(std::time::Duration::from_micros(rng.below(500)));
        let pending = change(name, step, &cache, &model, &mut rng, ticks, shared);
        cache.save().unwrap();
        model.saved(pending);
    }
    model
}

/// Checks the final partition against both models.
pub fn check(final_tokens: &BTreeMap<String, String>, models: &[&Model]) {
    let mut expected_count = 0;
    for m in models {
        for (scope, secret) in &m.alive {
            assert_eq!(final_tokens.get(scope), Some(secret), "token {scope} saved and not removed is missing");
        }
        for scope in &m.removed {
            assert!(!final_tokens.contains_key(scope), "token {scope} was removed but came back");
        }
        expected_count += m.alive.len();
    }
    let newest = models.iter().flat_map(|m| m.shared.iter()).max();
    if let Some((_, secret)) = newest {
        assert_eq!(final_tokens.get("shared"), Some(secret), "the shared token does not hold the newest write");
        expected_count += 1;
    }
    assert_eq!(final_tokens.len(), expected_count, "unexpected tokens in the partition");
}

/// `steps` turns taken by two providers on one partition, deterministic: each turn
/// either loads (and changes) a copy or saves the copy it holds, so one side's
/// copy often goes stale while the other saves. Returns the two models.
pub fn interleaved<S: Store>(a: &CacheProvider<S>, b: &CacheProvider<S>, steps: usize, seed: u64) -> (Model, Model) {
    let ticks = Ticks::default();
    let mut rng = Rng(seed);
    let mut models = [Model::default(), Model::default()];
    let mut open: [Option<(PartitionCache<'_, S>, Pending)>; 2] = [None, None];
    let providers = [a, b];
    let names = ["A", "B"];
    for step in 0..steps {
        let i = rng.below(2) as usize;
        match open[i].take() {
            None => {
                let cache = providers[i].load(PARTITION).unwrap();
                let pending = change(names[i], step, &cache, &models[i], &mut rng, &ticks, true);
                open[i] = Some((cache, pending));
            }
            Some((cache, pending)) => {
                cache.save().unwrap();
                models[i].saved(pending);
            }
        }
    }
    for (i, slot) in open.iter_mut().enumerate() {
        if let Some((cache, pending)) = slot.take() {
            cache.save().unwrap();
            models[i].saved(pending);
        }
    }
    let [ma, mb] = models;
    (ma, mb)
}

/// `steps` load-change-save rounds by each provider, on two threads at once.
pub fn concurrent<S: Store + Sync>(a: &CacheProvider<S>, b: &CacheProvider<S>, steps: usize) -> (Model, Model) {
    let ticks = Ticks::default();
    std::thread::scope(|s| {
        let ha = s.spawn(|| rounds(a, "A", steps, 0x9e37_79b9_7f4a_7c15, &ticks, true));
        let hb = s.spawn(|| rounds(b, "B", steps, 0xd1b5_4a32_d192_ed03, &ticks, true));
        (ha.join().unwrap(), hb.join().unwrap())
    })
}

//! Helpers shared by the `stores_*` suites: where the test Redis is, an injectable
//! clock, scratch directories, bounded polling.
#![allow(dead_code)]

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokencache::store::Clock;

/// Written straight to the process's stderr so it shows even when the harness
/// captures test output.
pub fn note(msg: &str) {
    let _ = writeln!(std::io::stderr(), "{msg}");
}

fn env_or_skip(var: &str, test: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => Some(v),
        _ => {
            note(&format!("{test}: SKIPPED: {var} is not set (`make test-stores` starts Redis and sets it)"));
            None
        }
    }
}

/// The test server's URL (set by `scripts/redis-server.sh run`), or None after
/// saying the test is skipped.
pub fn redis_url(test: &str) -> Option<String> {
    env_or_skip("TOKENCACHE_REDIS_URL", test)
}

/// The TLS test server's `rediss://` URL (its CA is in TOKENCACHE_REDIS_TLS_CA).
pub fn redis_tls_url(test: &str) -> Option<String> {
    env_or_skip("TOKENCACHE_REDIS_TLS_URL", test)
}

/// The test cluster's seed URLs.
pub fn redis_cluster_urls(test: &str) -> Option<Vec<String>> {
    env_or_skip("TOKENCACHE_REDIS_CLUSTER_URLS", test).map(|v| v.split(',').map(str::to_owned).collect())
}

/// `(script, state dir)` to stop and restart the test server.
pub fn redis_ctl(test: &str) -> Option<(String, String)> {
    Some((env_or_skip("TOKENCACHE_REDIS_CTL", test)?, env_or_skip("TOKENCACHE_REDIS_DIR", test)?))
}

/// Runs `scripts/redis-server.sh <verb> <dir>`.
pub fn redis_control(ctl: &(String, String), verb: &str) {
    let status = std::process::Command::new(&ctl.0).arg(verb).arg(&ctl.1).status().expect("run redis-server.sh");
    assert!(status.success(), "redis-server.sh {verb} failed");
}

static UNIQUE: AtomicU64 = AtomicU64::new(0);

/// A key prefix no other test (or earlier run) uses.
pub fn unique_prefix(tag: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("tctest:{tag}:{}:{nanos}:{}:", std::process::id(), UNIQUE.fetch_add(1, Ordering::Relaxed))
}

/// A fresh directory under the system temp dir (removed on drop).
pub struct ScratchDir(pub PathBuf);

impl ScratchDir {
    pub fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(unique_prefix(tag).replace(':', "-"));
        std::fs::create_dir_all(&dir).unwrap();
        ScratchDir(dir)
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A clock the test moves by hand.
#[derive(Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn at(t: i64) -> Self {
        ManualClock(Arc::new(AtomicI64::new(t)))
    }

    pub fn clock(&self) -> Clock {
        let t = self.0.clone();
        Arc::new(move || t.load(Ordering::SeqCst))
    }

    pub fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }

    pub fn set(&self, t: i64) {
        self.0.store(t, Ordering::SeqCst);
    }

    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
}

/// Calls `done` until it returns true or `cap` has passed; returns the last answer.
/// For waiting on background work; the cap only bounds a failing test.
pub fn poll_until(cap: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if done() {
            return true;
        }
        if start.elapsed() > cap {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A direct connection to the test server, to look at what a store wrote.
#[cfg(feature = "redis")]
pub fn raw_redis(url: &str) -> redis::Connection {
    redis::Client::open(url).unwrap().get_connection_with_timeout(Duration::from_secs(2)).unwrap()
}

//! FileStore / PersistedTokenCache across real processes: 16 writers on one file,
//! writers killed with SIGKILL mid-write, stale and live lock files, a corrupt file.
//!
//! The worker processes are this test binary itself, re-run with `TOKENCACHE_WORKER`
//! set (see `worker`), so no helper program is needed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use tokencache::store::LockOptions;
use tokencache::{CredentialType, ErrorKind, OnCorrupt, PersistOptions, PersistedTokenCache, TokenCache};

const NOW: i64 = 1_700_000_000;

fn event(writer: &str, i: usize) -> String {
    format!(
        r#"{{"client_id": "app", "scope": ["s"], "environment": "login.microsoftonline.com",
        "token_endpoint": "https://login.microsoftonline.com/{writer}-{i}/oauth2/v2.0/token",
        "response": {{"access_token": "tok-{writer}-{i}", "expires_in": 3600}}}}"#
    )
}

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tokencache-{name}-{}-{}", std::process::id(), tokencache::unix_now()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The worker: adds `count` tokens as writer `id` to the file (or, with `count` 0,
/// adds forever, continuing the sequence already in the file, until killed).
#[test]
fn worker() {
    let Ok(spec) = std::env::var("TOKENCACHE_WORKER") else { return };
    let mut parts = spec.splitn(3, ':');
    let (path, id, count) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
    let count: usize = count.parse().unwrap();
    let lock = LockOptions { timeout: Duration::from_secs(60), ..Default::default() };
    let cache = PersistedTokenCache::open(path, PersistOptions { lock, ..Default::default() }).unwrap();
    if count > 0 {
        for i in 0..count {
            cache.add_json(&event(id, i), Some(NOW)).unwrap();
        }
        assert_eq!(cache.io_counts().writes, count as u64, "one write per add");
        return;
    }
    let mut i = cache.cache().len().saturating_sub(1); // app metadata is one entry
    loop {
        cache.add_json(&event("k", i), Some(NOW)).unwrap();
        i += 1;
    }
}

fn spawn_worker(path: &Path, id: &str, count: usize) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "worker", "--nocapture", "--test-threads=1"])
        .env("TOKENCACHE_WORKER", format!("{}:{id}:{count}", path.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

fn tokens_in(path: &Path) -> Vec<String> {
    let cache = TokenCache::new();
    cache.deserialize(&std::fs::read_to_string(path).unwrap()).unwrap();
    cache
        .search(CredentialType::AccessToken, &[], None, Some(NOW))
        .iter()
        .map(|e| e.secret().unwrap().into_owned())
        .collect()
}

#[test]
fn sixteen_processes_lose_nothing() {
    let dir = tempdir("multi");
    let path = dir.join("msal_token_cache.json");
    let (procs, per) = (16, 200);
    let mut children: Vec<_> = (0..procs).map(|p| spawn_worker(&path, &format!("w{p}"), per)).collect();
    for c in &mut children {
        assert!(c.wait().unwrap().success(), "a writer failed (lock error?)");
    }
    let mut tokens = tokens_in(&path);
    tokens.sort();
    let mut want: Vec<String> = (0..procs).flat_map(|p| (0..per).map(move |i| format!("tok-w{p}-{i}"))).collect();
    want.sort();
    assert_eq!(tokens.len(), want.len());
    assert_eq!(tokens, want);
    assert!(!dir.join("msal_token_cache.json.lockfile").exists(), "the lock file is removed after use");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn killed_writers_never_tear_the_file() {
    let dir = tempdir("kill");
    let path = dir.join("cache.json");
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut last = 0;
    for round in 0..200 {
        let mut child = spawn_worker(&path, "k", 0);
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_micros(2_000 + seed % 20_000));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        if !path.exists() {
            continue;
        }
        // Old or new state: always a complete prefix tok-k-0 .. tok-k-(n-1).
        let mut tokens = tokens_in(&path);
        tokens.sort_by_key(|t| t.trim_start_matches("tok-k-").parse::<usize>().unwrap());
        let want: Vec<String> = (0..tokens.len()).map(|i| format!("tok-k-{i}")).collect();
        assert_eq!(tokens, want, "round {round}: not a prefix");
        assert!(tokens.len() >= last, "round {round}: the file went back in time");
        last = tokens.len();
    }
    assert!(last > 0, "the writers never got to write");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn stale_lock_is_recovered_and_live_lock_times_out() {
    let dir = tempdir("locks");
    let path = dir.join("cache.json");
    let lock_path = dir.join("cache.json.lockfile");
    // A lock file from a process that has exited.
    let mut dead = Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    dead.wait().unwrap();
    std::fs::write(&lock_path, format!("{dead_pid} /usr/bin/az")).unwrap();
    let fast = LockOptions { timeout: Duration::from_millis(300), retry_every: Duration::from_millis(5) };
    let cache = PersistedTokenCache::open(&path, PersistOptions { lock: fast, ..Default::default() }).unwrap();
    cache.add_json(&event("a", 1), Some(NOW)).unwrap();
    assert!(!lock_path.exists());

    // A lock file held by a live process (this one): wait, then a typed error.
    std::fs::write(&lock_path, format!("{} python", std::process::id())).unwrap();
    let err = cache.add_json(&event("a", 2), Some(NOW)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LockTimeout);
    assert!(err.message().contains("lockfile") || err.message().contains("cache.json"), "{err}");
    std::fs::remove_file(&lock_path).unwrap();
    assert_eq!(tokens_in(&path), ["tok-a-1"], "the failed add changed nothing");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn corrupt_file_is_moved_aside_not_deleted() {
    let dir = tempdir("corrupt");
    let path = dir.join("cache.json");
    std::fs::write(&path, "{\"AccessToken\": {\"k\": ").unwrap();
    let err = PersistedTokenCache::open(&path, PersistOptions::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt);
    let aside: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("cache.json.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(std::fs::read_to_string(dir.join(&aside[0])).unwrap(), "{\"AccessToken\": {\"k\": ");
    // The next open starts empty and works.
    let cache = PersistedTokenCache::open(&path, PersistOptions::default()).unwrap();
    cache.add_json(&event("b", 1), Some(NOW)).unwrap();
    assert_eq!(tokens_in(&path), ["tok-b-1"]);

    // With MoveAsideAndContinue the corrupt file is reported in the log and skipped.
    std::fs::write(&path, "[]").unwrap();
    let opts = PersistOptions { on_corrupt: OnCorrupt::MoveAsideAndContinue, ..Default::default() };
    let cache = PersistedTokenCache::open(&path, opts).unwrap();
    assert!(cache.cache().is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn reads_only_when_the_file_changed() {
    let dir = tempdir("reload");
    let path = dir.join("cache.json");
    let a = PersistedTokenCache::open(&path, PersistOptions::default()).unwrap();
    let b = PersistedTokenCache::open(&path, PersistOptions::default()).unwrap();
    a.add_json(&event("a", 1), Some(NOW)).unwrap();
    assert_eq!(a.io_counts().writes, 1);
    let reads = b.io_counts().reads;
    assert_eq!(b.search(CredentialType::AccessToken, &[], None, Some(NOW)).unwrap().len(), 1);
    assert_eq!(b.io_counts().reads, reads + 1, "b picked up a's write");
    for _ in 0..10 {
        b.search(CredentialType::AccessToken, &[], None, Some(NOW)).unwrap();
    }
    assert_eq!(b.io_counts().reads, reads + 1, "no re-read of an unchanged file");
    // An expired token found by a search is removed in the file too.
    assert!(b.search(CredentialType::AccessToken, &[], None, Some(NOW + 7200)).unwrap().is_empty());
    assert!(tokens_in(&path).is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

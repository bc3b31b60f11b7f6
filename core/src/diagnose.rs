//! The token-cache troubleshooting checklist, run from the outside on a cache at
//! rest: a cache file ([`diagnose_file`]), a SQLite database ([`diagnose_sqlite`])
//! or a Redis server ([`diagnose_redis`]). Each problem found is a [`Finding`] with
//! what is wrong, which entries or keys it concerns, and how to fix it. This is what
//! `tokencache doctor` prints; every decision (what counts as expired, oversized,
//! stale, slow) is made here.
//!
//! The checklist covers what users of MSAL's caches run into: a file that is not
//! JSON or not a unified cache (an MSAL.NET 2.x dictionary, msal-common's internal
//! store), a lock file left by a killed process, an empty cache after a restart,
//! expired tokens, partitions grown too large to load per request, accounts with no
//! refresh token (every silent call ends in a sign-in), entries other SDKs cannot
//! read, clock skew, an unreachable or slow L2, Redis evicting partitions, SQL
//! tables that keep expired rows, blobs sealed with a key the servers do not share,
//! and blobs that never expire.
//!
//! ```
//! use tokencache::diagnose::{Check, Severity, Thresholds, diagnose_text};
//!
//! let d = diagnose_text("{\"AccessToken\": {,}}", &Thresholds::default(), 1_700_000_000);
//! let f = &d.findings[0];
//! assert_eq!((f.check, f.severity), (Check::Format, Severity::Error));
//! assert!(f.message.contains("line 1, column 18"), "{}", f.message);
//! assert!(!d.is_healthy());
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, ErrorKind};
use crate::inventory::{BlobContent, EntryView, Inventory, Latency, StoreInventory};
use crate::schema::CredentialType;
use crate::store::{KeyRing, ListStore};

/// How bad a finding is. `Info` is worth knowing; `Warning` and `Error` mean
/// something is wrong (`tokencache doctor` exits non-zero).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Worth knowing, nothing to fix.
    Info,
    /// Will cause trouble: sign-ins, growth, slowness, another SDK failing.
    Warning,
    /// Broken: the cache cannot be read or reached.
    Error,
}

impl Severity {
    /// `"info"`, `"warning"` or `"error"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// One item of the checklist.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Check {
    /// The cache file exists (else: an empty cache after restart).
    FilePresent,
    /// Only the owner can read the file.
    FilePermissions,
    /// No lock file left behind.
    LockFile,
    /// No leftovers of interrupted writes or of files moved aside as corrupt.
    Leftovers,
    /// JSON, in the unified cache format.
    Format,
    /// The cache holds something.
    NotEmpty,
    /// Expired access tokens.
    ExpiredTokens,
    /// Partitions small enough to load on every request.
    PartitionSize,
    /// Every account has a refresh token.
    RefreshTokens,
    /// Entries have the fields every MSAL needs.
    RequiredFields,
    /// Entries are objects.
    EntryShape,
    /// Timestamps are not in the future.
    ClockSkew,
    /// Top-level members other than the five sections.
    UnknownSections,
    /// No item filed twice (under two SDKs' key styles or cloud aliases).
    Duplicates,
    /// Which SDKs write the file: when another SDK does, Python apps need sharing mode.
    OtherSdks,
    /// The store answers.
    StoreReachable,
    /// The store answers fast.
    StoreLatency,
    /// Redis does not evict partitions.
    RedisEviction,
    /// Expired rows are purged.
    ExpiredRows,
    /// Blobs open with the given keys.
    Encryption,
    /// Blobs are caches.
    BlobFormat,
    /// Blobs hold the partition they are stored under.
    PartitionKeys,
    /// Blobs expire when their tokens do.
    BlobExpiry,
}

impl Check {
    /// A short stable name, e.g. `"lock_file"`.
    pub const fn code(self) -> &'static str {
        match self {
            Check::FilePresent => "file_present",
            Check::FilePermissions => "file_permissions",
            Check::LockFile => "lock_file",
            Check::Leftovers => "leftovers",
            Check::Format => "format",
            Check::NotEmpty => "not_empty",
            Check::ExpiredTokens => "expired_tokens",
            Check::PartitionSize => "partition_size",
            Check::RefreshTokens => "refresh_tokens",
            Check::RequiredFields => "required_fields",
            Check::EntryShape => "entry_shape",
            Check::ClockSkew => "clock_skew",
            Check::UnknownSections => "unknown_sections",
            Check::Duplicates => "duplicates",
            Check::OtherSdks => "other_sdks",
            Check::StoreReachable => "store_reachable",
            Check::StoreLatency => "store_latency",
            Check::RedisEviction => "redis_eviction",
            Check::ExpiredRows => "expired_rows",
            Check::Encryption => "encryption",
            Check::BlobFormat => "blob_format",
            Check::PartitionKeys => "partition_keys",
            Check::BlobExpiry => "blob_expiry",
        }
    }

    /// What the check verifies, as a line of a checklist.
    pub const fn title(self) -> &'static str {
        match self {
            Check::FilePresent => "cache file present",
            Check::FilePermissions => "file readable by its owner only",
            Check::LockFile => "no lock file left behind",
            Check::Leftovers => "no leftovers of interrupted writes or corrupt files",
            Check::Format => "JSON in the unified token cache format",
            Check::NotEmpty => "cache not empty",
            Check::ExpiredTokens => "no expired access tokens",
            Check::PartitionSize => "partitions small enough to load per request",
            Check::RefreshTokens => "every account has a refresh token",
            Check::RequiredFields => "entries have the fields every MSAL needs",
            Check::EntryShape => "every entry is an object",
            Check::ClockSkew => "no timestamps in the future",
            Check::UnknownSections => "only the five known sections",
            Check::Duplicates => "every item filed once",
            Check::OtherSdks => "who writes the cache",
            Check::StoreReachable => "store reachable",
            Check::StoreLatency => "store answers fast",
            Check::RedisEviction => "Redis never evicts partitions",
            Check::ExpiredRows => "expired rows purged",
            Check::Encryption => "blobs open with the given keys",
            Check::BlobFormat => "every blob is a token cache",
            Check::PartitionKeys => "blobs hold the partition they are stored under",
            Check::BlobExpiry => "blobs expire when their tokens do",
        }
    }
}

/// One problem, with what to do about it. Holds no token value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// Which check found it.
    pub check: Check,
    /// How bad it is.
    pub severity: Severity,
    /// What is wrong, in one sentence.
    pub message: String,
    /// The entries, partitions, keys or files concerned (possibly many).
    pub subjects: Vec<String>,
    /// How to fix it.
    pub fix: String,
}

/// The limits past which something counts as wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Thresholds {
    /// A partition with more entries is oversized. Default 5,000.
    pub partition_entries: usize,
    /// A partition (blob) larger than this many bytes is oversized. Default 1 MiB.
    pub partition_bytes: usize,
    /// A store whose p99 read latency exceeds this is slow. Default 50 ms.
    pub slow_read: Duration,
    /// A `cached_at` more than this many seconds ahead of now is clock skew. Default 300.
    pub clock_skew_secs: i64,
    /// A lock file held longer than this by a live process is stuck. Default 60 s.
    pub stuck_lock: Duration,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            partition_entries: 5_000,
            partition_bytes: 1 << 20,
            slow_read: Duration::from_millis(50),
            clock_skew_secs: 300,
            stuck_lock: Duration::from_secs(60),
        }
    }
}

/// The result of running the checklist on one cache.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diagnosis {
    /// The checks that ran, in order (a check with no finding passed).
    pub checks: Vec<Check>,
    /// What they found, in the order of `checks`.
    pub findings: Vec<Finding>,
}

impl Diagnosis {
    fn ran(&mut self, check: Check) {
        if !self.checks.contains(&check) {
            self.checks.push(check);
        }
    }

    fn add(&mut self, check: Check, severity: Severity, message: String, subjects: Vec<String>, fix: &str) {
        self.ran(check);
        self.findings.push(Finding { check, severity, message, subjects, fix: fix.to_owned() });
    }

    /// The findings of `check`.
    pub fn findings_of(&self, check: Check) -> impl Iterator<Item = &Finding> + '_ {
        self.findings.iter().filter(move |f| f.check == check)
    }

    /// The worst severity found, if anything was.
    pub fn worst(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }

    /// Whether nothing worse than [`Severity::Info`] was found.
    pub fn is_healthy(&self) -> bool {
        self.worst().is_none_or(|s| s == Severity::Info)
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The checks on a cache's text (a file's content, or a blob's plaintext), then on
/// its content. Text that is not a cache is one [`Check::Format`] error.
pub fn diagnose_text(text: &str, t: &Thresholds, now: i64) -> Diagnosis {
    let mut d = Diagnosis::default();
    match Inventory::parse(text, now) {
        Ok((_, inv)) => {
            d.ran(Check::Format);
            check_content(&mut d, &inv, t, now, true);
        }
        Err(e) => format_finding(&mut d, &e, None),
    }
    d
}

/// The fix for text that is not a cache, by what it is.
fn format_fix(e: &Error) -> &'static str {
    let m = e.message();
    match e.kind() {
        ErrorKind::InvalidJson => {
            "the file was damaged, most often by two programs writing it without a common lock: \
             move it aside (users sign in again), and make every writer use the msal-extensions lock \
             protocol (tokencache's FileStore and PersistedTokenCache do)"
        }
        _ if m.contains("MSAL.NET 2.x") => {
            "MSAL.NET 2.x's dictionary format: have the app save with SerializeMsalV3 (MSAL.NET 3+), \
             or start from an empty cache"
        }
        _ if m.contains("msal-common") => {
            "msal-common's in-memory store, not a persisted cache: persist through msal-node's \
             TokenCache.serialize() or an ICachePlugin, which write the unified format"
        }
        _ if m.contains("not UTF-8") || m.contains("neither a cache") => {
            "not text: msal-extensions encrypts its file with DPAPI on Windows and with the keychain or \
             libsecret elsewhere, and only that user on that machine can read it; otherwise the file \
             is damaged: move it aside"
        }
        _ => "not a token cache: check that the app points at its cache file; else move it aside",
    }
}

fn format_finding(d: &mut Diagnosis, e: &Error, subject: Option<&str>) {
    let what = match e.position() {
        Some((line, column)) => {
            let m = e.message();
            let m = m.strip_suffix(&format!(" at line {line} column {column}")).unwrap_or(m);
            format!("not valid JSON at line {line}, column {column}: {m}")
        }
        None => format!("not a unified token cache: {}", e.message()),
    };
    d.add(Check::Format, Severity::Error, what, subject.map(str::to_owned).into_iter().collect(), format_fix(e));
}

/// Fields every MSAL needs to read an entry of `ct` (MSAL.NET fails on the whole
/// cache when one is missing: `ArgumentNullException` on `environment`).
fn required_fields(ct: CredentialType) -> &'static [&'static str] {
    match ct {
        CredentialType::AccessToken => {
            &["credential_type", "environment", "client_id", "secret", "target", "expires_on"]
        }
        CredentialType::RefreshToken | CredentialType::IdToken => {
            &["credential_type", "environment", "client_id", "secret", "home_account_id"]
        }
        CredentialType::Account => &["home_account_id", "environment"],
        CredentialType::AppMetadata => &["environment", "client_id"],
    }
}

fn missing_fields(e: &EntryView) -> Vec<&'static str> {
    required_fields(e.credential_type).iter().copied().filter(|f| !e.has_field(f)).collect()
}

fn describe(e: &EntryView) -> String {
    format!("{} {}", e.credential_type, e.key)
}

/// The content checks, on a readable cache. `whole` is true for a whole cache (a
/// file): then emptiness is worth a warning.
fn check_content(d: &mut Diagnosis, inv: &Inventory, t: &Thresholds, now: i64, whole: bool) {
    if whole {
        d.ran(Check::NotEmpty);
        if inv.entries.is_empty() {
            d.add(
                Check::NotEmpty,
                Severity::Warning,
                "the cache holds no entry: every user signs in again".into(),
                vec![],
                "if the app had signed users in, it writes elsewhere (check the path it is given, its \
                 working folder and HOME), or its writes fail (check its logs for lock timeouts and \
                 permission errors)",
            );
        }
    }
    check_entries(d, &[inv], t, now);
}

/// The checks that read entries, over one or more inventories (a store's blobs).
fn check_entries(d: &mut Diagnosis, invs: &[&Inventory], t: &Thresholds, now: i64) {
    for c in [
        Check::ExpiredTokens,
        Check::PartitionSize,
        Check::RefreshTokens,
        Check::RequiredFields,
        Check::EntryShape,
        Check::ClockSkew,
        Check::UnknownSections,
        Check::Duplicates,
        Check::OtherSdks,
    ] {
        d.ran(c);
    }
    let entries = || invs.iter().flat_map(|i| i.entries.iter());

    let expired: Vec<String> = entries().filter(|e| e.expired).map(describe).collect();
    if !expired.is_empty() {
        d.add(
            Check::ExpiredTokens,
            Severity::Info,
            format!(
                "{} expired; MSAL ignores them and removes them on its next search",
                plural(expired.len(), "access token has", "access tokens have")
            ),
            expired,
            "nothing is wrong; `tokencache purge --expired` removes them now",
        );
    }

    let oversized: Vec<String> = invs
        .iter()
        .flat_map(|i| i.partitions.iter())
        .filter(|p| p.entries > t.partition_entries || p.bytes > t.partition_bytes)
        .map(|p| format!("{} ({} entries, {} bytes)", p.key, p.entries, p.bytes))
        .collect();
    if !oversized.is_empty() {
        d.add(
            Check::PartitionSize,
            Severity::Warning,
            format!(
                "{} over {} entries or {} bytes: each request loads and parses a whole partition, and \
                 memory grows with it",
                plural(oversized.len(), "partition is", "partitions are"),
                t.partition_entries,
                t.partition_bytes
            ),
            oversized,
            "partition further (MSAL.NET: a custom cache key such as suggestedCacheKey + resource), \
             purge expired tokens, and bound the cache (CacheLimits)",
        );
    }

    let mut no_rt = Vec::new();
    for inv in invs {
        for a in inv.of_type(CredentialType::Account) {
            // A broker (WAM) keeps the refresh tokens of the accounts it knows.
            let brokered = a.has_field("wam_account_ids");
            let has_rt = inv
                .of_type(CredentialType::RefreshToken)
                .any(|rt| rt.home_account_id == a.home_account_id && rt.environment == a.environment);
            if !has_rt && !brokered {
                no_rt.push(format!(
                    "{} ({})",
                    a.username.as_deref().unwrap_or("?"),
                    a.home_account_id.as_deref().unwrap_or("?")
                ));
            }
        }
    }
    if !no_rt.is_empty() {
        d.add(
            Check::RefreshTokens,
            Severity::Warning,
            format!(
                "{} no refresh token: once the access token expires, silent acquisition fails and the \
                 user signs in again",
                plural(no_rt.len(), "account has", "accounts have")
            ),
            no_rt,
            "ask for offline_access (MSAL adds it unless told not to); if a broker (WAM) holds the \
             refresh tokens this is expected; otherwise another writer removed them: look for an app \
             that calls remove_account or saves a stale copy over this cache",
        );
    }

    let mut incomplete = Vec::new();
    for inv in invs {
        for e in &inv.entries {
            let missing = missing_fields(e);
            if !missing.is_empty() {
                incomplete.push(format!("{} (no {})", describe(e), missing.join(", ")));
            }
        }
    }
    if !incomplete.is_empty() {
        d.add(
            Check::RequiredFields,
            Severity::Warning,
            format!(
                "{} fields MSAL needs: MSAL.NET refuses the whole cache over one (json_parse_failed), the \
                 others skip the entry",
                plural(incomplete.len(), "entry lacks", "entries lack")
            ),
            incomplete,
            "remove these entries (they cannot be used); then find the program that writes them",
        );
    }

    let shapeless: Vec<String> = invs
        .iter()
        .flat_map(|i| i.unreadable_entries.iter())
        .map(|u| format!("{} {}", u.credential_type, u.key))
        .collect();
    if !shapeless.is_empty() {
        d.add(
            Check::EntryShape,
            Severity::Warning,
            format!(
                "{} not an object: kept as is, never used, and some SDKs fail on it",
                plural(shapeless.len(), "entry is", "entries are")
            ),
            shapeless,
            "remove these values from the file; then find the program that writes them",
        );
    }

    let skewed: Vec<String> = entries()
        .filter(|e| e.cached_at.is_some_and(|c| c > now + t.clock_skew_secs))
        .map(|e| format!("{} (cached_at {})", describe(e), e.cached_at.unwrap_or_default()))
        .collect();
    if !skewed.is_empty() {
        d.add(
            Check::ClockSkew,
            Severity::Warning,
            format!(
                "{} cached in the future: this machine's clock is behind the writer's, so tokens look \
                 valid after they expired (or the writer's clock is ahead)",
                plural(skewed.len(), "entry was", "entries were")
            ),
            skewed,
            "synchronize the clocks of every machine sharing the cache (NTP)",
        );
    }

    let twice: Vec<String> = invs
        .iter()
        .flat_map(|i| i.duplicates.iter())
        .map(|(ct, keys)| format!("{}: {}", ct.as_str(), keys.join(" and ")))
        .collect();
    if !twice.is_empty() {
        d.add(
            Check::Duplicates,
            Severity::Warning,
            format!(
                "{} filed twice, under two SDKs' key styles or two aliases of one cloud: an app on msal \
                 Python's own cache renewed it beside another SDK's copy, so that SDK refreshes with its \
                 stale copy or, msal-node, deletes both",
                plural(twice.len(), "item is", "items are")
            ),
            twice,
            "give every app that writes the file tokencache in sharing mode (the Rust and C default, \
             `SharingMode::Auto`; in Python `cache.sharing = \"auto\"`): it files renewals over the \
             other SDK's copy",
        );
    }

    let others: Vec<String> = entries().filter(|e| e.other_sdk).map(describe).collect();
    if !others.is_empty() {
        d.add(
            Check::OtherSdks,
            Severity::Info,
            format!(
                "{} filed the way another SDK files them (MSAL.NET, MSAL Java, MSAL Go or msal-node): \
                 several SDKs share this cache; tokencache's Rust and C caches see it and switch to \
                 sharing mode by themselves, its Python classes keep msal Python's behaviour unless told",
                plural(others.len(), "entry is", "entries are")
            ),
            others,
            "in every Python app that writes this cache through tokencache, set `cache.sharing = \"auto\"` \
             (or `True`): renewals are then filed over the other SDK's entries instead of beside them",
        );
    }

    let mut unknown: Vec<String> = invs.iter().flat_map(|i| i.unknown_sections.iter().cloned()).collect();
    unknown.dedup();
    if !unknown.is_empty() {
        d.add(
            Check::UnknownSections,
            Severity::Info,
            format!(
                "{} not one of the five sections; they are kept as they are (a newer SDK's or an \
                 extension's data)",
                plural(unknown.len(), "top-level member is", "top-level members are")
            ),
            unknown,
            "nothing to do",
        );
    }
}

/// What a lock file says about its holder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockHolder {
    /// The lock file.
    pub path: PathBuf,
    /// The pid written in it, if any.
    pub pid: Option<u32>,
    /// The program written after the pid.
    pub program: Option<String>,
    /// Whether that process is running (`None`: can't tell on this platform).
    pub alive: Option<bool>,
    /// How long ago the lock file was created (or last modified).
    pub age: Option<Duration>,
}

/// Reads the msal-extensions lock file `<path>.lockfile` next to a cache file, if
/// there is one.
pub fn lock_holder(cache_path: &Path) -> Option<LockHolder> {
    let mut lock = cache_path.as_os_str().to_owned();
    lock.push(".lockfile");
    let path = PathBuf::from(lock);
    let meta = std::fs::metadata(&path).ok()?;
    let text =
        std::fs::read(&path).map(|b| String::from_utf8_lossy(&b[..b.len().min(4096)]).into_owned()).unwrap_or_default();
    let mut words = text.split_whitespace();
    let pid = words.next().and_then(|p| p.parse::<u32>().ok());
    let program = pid.and(Some(words.collect::<Vec<_>>().join(" "))).filter(|p| !p.is_empty());
    let alive = pid.map(crate::store::file::process_alive).filter(|_| cfg!(target_os = "linux"));
    let age = meta.modified().ok().and_then(|m| m.elapsed().ok());
    Some(LockHolder { path, pid, program, alive, age })
}

fn check_lock(d: &mut Diagnosis, cache_path: &Path, t: &Thresholds) {
    d.ran(Check::LockFile);
    let Some(h) = lock_holder(cache_path) else { return };
    let shown = h.path.display().to_string();
    let age = h.age.map(|a| format!("{} s ago", a.as_secs())).unwrap_or_else(|| "at an unknown time".into());
    let holder = match (h.pid, &h.program) {
        (Some(pid), Some(p)) => format!("pid {pid} ({p})"),
        (Some(pid), None) => format!("pid {pid}"),
        _ => "no pid".into(),
    };
    match (h.pid, h.alive) {
        (Some(_), Some(false)) => d.add(
            Check::LockFile,
            Severity::Warning,
            format!("a lock file was left behind by {holder}, which is no longer running (created {age})"),
            vec![shown.clone()],
            &format!(
                "delete {shown}: tokencache and msal-node-extensions recover it by themselves, but \
                 msal-extensions (Python) and MSAL.NET's MsalCacheHelper wait for it and fail with \
                 lock timeouts"
            ),
        ),
        (Some(_), _) if h.age.is_some_and(|a| a > t.stuck_lock) => d.add(
            Check::LockFile,
            Severity::Warning,
            format!("the cache has been locked by {holder} since {age}: that process looks stuck"),
            vec![shown.clone()],
            "end that process if it hangs; every other process waits for the lock and times out",
        ),
        (Some(_), _) => d.add(
            Check::LockFile,
            Severity::Info,
            format!("{holder} holds the lock right now (since {age})"),
            vec![shown],
            "nothing to do unless it stays: then that process is stuck",
        ),
        (None, _) if h.age.is_none_or(|a| a > Duration::from_secs(10)) => d.add(
            Check::LockFile,
            Severity::Warning,
            format!("a lock file with no pid in it was left behind (created {age})"),
            vec![shown.clone()],
            &format!("delete {shown}: its writer died before writing its pid"),
        ),
        (None, _) => d.add(
            Check::LockFile,
            Severity::Info,
            "a lock file is being created right now".into(),
            vec![shown],
            "nothing to do",
        ),
    }
}

fn check_leftovers(d: &mut Diagnosis, cache_path: &Path) {
    d.ran(Check::Leftovers);
    let (Some(dir), Some(name)) = (cache_path.parent(), cache_path.file_name()) else { return };
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    let name = name.to_string_lossy();
    let (corrupt_prefix, temp_prefix) = (format!("{name}.corrupt-"), format!(".{name}.tmp-"));
    let Ok(listing) = std::fs::read_dir(dir) else { return };
    let (mut corrupt, mut temp) = (Vec::new(), Vec::new());
    for f in listing.flatten() {
        let n = f.file_name().to_string_lossy().into_owned();
        if n.starts_with(&corrupt_prefix) {
            corrupt.push(dir.join(&n).display().to_string());
        } else if n.starts_with(&temp_prefix) {
            temp.push(dir.join(&n).display().to_string());
        }
    }
    corrupt.sort();
    temp.sort();
    if !corrupt.is_empty() {
        d.add(
            Check::Leftovers,
            Severity::Info,
            format!(
                "{} found unreadable earlier and moved aside (users signed in again then)",
                plural(corrupt.len(), "cache file was", "cache files were")
            ),
            corrupt,
            "run `tokencache doctor` on them to see what was wrong, then delete them",
        );
    }
    if !temp.is_empty() {
        d.add(
            Check::Leftovers,
            Severity::Info,
            format!(
                "{} of writes that were interrupted (the cache itself is intact: writes are atomic)",
                plural(temp.len(), "temporary file remains", "temporary files remain")
            ),
            temp,
            "delete them",
        );
    }
}

#[cfg(unix)]
fn check_permissions(d: &mut Diagnosis, path: &Path, meta: &std::fs::Metadata) {
    use std::os::unix::fs::PermissionsExt;
    d.ran(Check::FilePermissions);
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        d.add(
            Check::FilePermissions,
            Severity::Warning,
            format!("the file holds tokens and other users can access it (mode {mode:03o})"),
            vec![path.display().to_string()],
            &format!("chmod 600 {}", path.display()),
        );
    }
}

#[cfg(not(unix))]
fn check_permissions(_: &mut Diagnosis, _: &Path, _: &std::fs::Metadata) {}

/// The checklist on a cache file (the msal-extensions / azure-cli kind): the file
/// itself, its lock file and leftovers, its format, then its content.
pub fn diagnose_file(path: &Path, t: &Thresholds, now: i64) -> Diagnosis {
    let mut d = Diagnosis::default();
    d.ran(Check::FilePresent);
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            d.add(
                Check::FilePresent,
                Severity::Warning,
                format!("there is no cache file at {}: an app starting now has an empty cache", path.display()),
                vec![path.display().to_string()],
                "check the path the app is given (msal-extensions and azure-cli use \
                 ~/.azure/msal_token_cache.json); if it is right, the app never saved: check that it \
                 writes after each token acquisition and that its folder is writable",
            );
            check_lock(&mut d, path, t);
            return d;
        }
        Err(e) => {
            d.add(
                Check::FilePresent,
                Severity::Error,
                format!("cannot read the metadata of {}: {e}", path.display()),
                vec![path.display().to_string()],
                "check the permissions of the file and its folders",
            );
            return d;
        }
    };
    check_permissions(&mut d, path, &meta);
    check_lock(&mut d, path, t);
    check_leftovers(&mut d, path);
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            d.add(
                Check::FilePresent,
                Severity::Error,
                format!("cannot read {}: {e}", path.display()),
                vec![path.display().to_string()],
                "check the permissions of the file (the app's user must read and write it)",
            );
            return d;
        }
    };
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(_) => {
            let e = Error::new(ErrorKind::NotACache, "the file is not UTF-8 text");
            format_finding(&mut d, &e, Some(&path.display().to_string()));
            return d;
        }
    };
    let rest = diagnose_text(&text, t, now);
    for c in rest.checks {
        d.ran(c);
    }
    d.findings.extend(rest.findings);
    d
}

/// The checks on a store's blobs, once read by [`crate::inventory::scan_store`].
/// `ring_given` says whether a key ring was used to open them.
pub fn diagnose_blobs(scan: &StoreInventory, ring_given: bool, t: &Thresholds, now: i64) -> Diagnosis {
    let mut d = Diagnosis::default();
    d.ran(Check::NotEmpty);
    if scan.blobs.is_empty() {
        d.add(
            Check::NotEmpty,
            Severity::Warning,
            "the store holds no partition: every user signs in again".into(),
            vec![],
            "check that the app and this command use the same database or Redis URL and key prefix \
             (--prefix); if they do, the app's writes fail (check its logs for L2 errors) or Redis \
             evicted the keys",
        );
    }
    d.ran(Check::Encryption);
    let (mut sealed, mut mismatched, mut tampered, mut clear) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut key_ids: Vec<String> = Vec::new();
    d.ran(Check::BlobFormat);
    let mut bad = Vec::new();
    let mut bad_fix: Option<&'static str> = None;
    for b in &scan.blobs {
        match &b.content {
            BlobContent::Sealed => {
                sealed.push(b.key.clone());
                if let Some(id) = &b.sealed_with
                    && !key_ids.contains(id)
                {
                    key_ids.push(id.clone());
                }
            }
            BlobContent::Unreadable(e) if e.kind() == ErrorKind::KeyMismatch => {
                mismatched.push(format!("{} (key {})", b.key, b.sealed_with.as_deref().unwrap_or("?")))
            }
            BlobContent::Unreadable(e) if e.kind() == ErrorKind::DecryptionFailed => tampered.push(b.key.clone()),
            BlobContent::Unreadable(e) => {
                let at = e.position().map(|(l, c)| format!(" at line {l}, column {c}")).unwrap_or_default();
                bad.push(format!("{} ({}{at}: {})", b.key, e.kind().as_str(), e.message()));
                bad_fix.get_or_insert(format_fix(e));
            }
            BlobContent::Cache(_) if ring_given && b.sealed_with.is_none() => clear.push(b.key.clone()),
            BlobContent::Cache(_) => {}
        }
    }
    if !sealed.is_empty() {
        d.add(
            Check::Encryption,
            Severity::Info,
            format!(
                "{} encrypted (key {}) and no key was given: their content was not checked",
                plural(sealed.len(), "blob is", "blobs are"),
                key_ids.join(", ")
            ),
            sealed,
            "pass the key ring with --key-file or --key-env to check them",
        );
    }
    if !mismatched.is_empty() {
        d.add(
            Check::Encryption,
            Severity::Error,
            format!(
                "{} encrypted with a key that is not in the given key ring: servers that lack it read \
                 these partitions as missing or fail (key mismatch across servers, or a rotated key)",
                plural(mismatched.len(), "blob was", "blobs were")
            ),
            mismatched,
            "give every server the same key ring, the new primary first and every older key after it, \
             until what the old keys sealed has expired",
        );
    }
    if !tampered.is_empty() {
        d.add(
            Check::Encryption,
            Severity::Error,
            format!(
                "{} authentication: altered, truncated, or copied under another partition's key",
                plural(tampered.len(), "blob fails", "blobs fail")
            ),
            tampered,
            "delete these keys (the users sign in again) and find out who can write to the store",
        );
    }
    if !clear.is_empty() {
        d.add(
            Check::Encryption,
            Severity::Warning,
            format!("{} stored unencrypted although a key ring was given", plural(clear.len(), "blob is", "blobs are")),
            clear,
            "encrypt them with `tokencache convert` and --encrypt-key-file, or let the app rewrite them \
             (EncryptionOptions::allow_unencrypted reads them meanwhile)",
        );
    }
    if !bad.is_empty() {
        d.add(
            Check::BlobFormat,
            Severity::Error,
            format!(
                "{} not a token cache (after an upgrade, another writer's format, or a wrong key prefix)",
                plural(bad.len(), "blob is", "blobs are")
            ),
            bad,
            bad_fix.unwrap_or("delete these keys"),
        );
    }

    d.ran(Check::PartitionKeys);
    let foreign: Vec<String> = scan
        .blobs
        .iter()
        .filter_map(|b| {
            let f = b.foreign_partitions();
            (!f.is_empty()).then(|| format!("{} holds {}", b.key, f.join(", ")))
        })
        .collect();
    if !foreign.is_empty() {
        d.add(
            Check::PartitionKeys,
            Severity::Info,
            format!(
                "{} entries of other partitions: written under a custom cache key, or several partitions \
                 in one blob (slower, and removing one user's data misses them)",
                plural(foreign.len(), "blob holds", "blobs hold")
            ),
            foreign,
            "expected with a custom key (e.g. suggestedCacheKey + resource); otherwise let the app \
             rewrite them",
        );
    }

    d.ran(Check::BlobExpiry);
    let forever: Vec<String> = scan
        .blobs
        .iter()
        .filter(|b| b.expires_at.is_none())
        .filter_map(|b| {
            let inv = b.inventory()?;
            let has_rt = inv.of_type(CredentialType::RefreshToken).next().is_some();
            (!has_rt && !inv.entries.is_empty()).then(|| b.key.clone())
        })
        .collect();
    if !forever.is_empty() {
        d.add(
            Check::BlobExpiry,
            Severity::Warning,
            format!(
                "{} no refresh token and no expiry: kept forever though useless once their access \
                 tokens expire (memory and table growth)",
                plural(forever.len(), "blob has", "blobs have")
            ),
            forever,
            "store partitions with the suggested expiry (CacheProvider does), or set an absolute or \
             sliding expiration; `tokencache purge --expired` removes expired tokens now",
        );
    }

    let invs: Vec<&Inventory> = scan.blobs.iter().filter_map(|b| b.inventory()).collect();
    check_entries(&mut d, &invs, t, now);

    d.ran(Check::StoreLatency);
    check_latency(&mut d, &scan.read_latency, t);
    d
}

fn check_latency(d: &mut Diagnosis, l: &Latency, t: &Thresholds) {
    if l.count > 0 && l.p99 > t.slow_read {
        d.add(
            Check::StoreLatency,
            Severity::Warning,
            format!(
                "reads are slow: p50 {:.1} ms, p99 {:.1} ms over {} reads (more than {} ms)",
                l.p50.as_secs_f64() * 1e3,
                l.p99.as_secs_f64() * 1e3,
                l.count,
                t.slow_read.as_millis()
            ),
            vec![],
            "put the store close to the app (same region), check its load and network, keep \
             partitions small, and keep an L1 (TieredStore) in front of it",
        );
    }
}

fn unreachable(d: &mut Diagnosis, what: &str, e: &Error, fix: &str) {
    d.add(Check::StoreReachable, Severity::Error, format!("{what}: {}", e.message()), vec![], fix);
}

/// Merges `other`'s checks and findings after ours.
fn merge(d: &mut Diagnosis, other: Diagnosis) {
    for c in other.checks {
        d.ran(c);
    }
    d.findings.extend(other.findings);
}

/// The checklist on a store: reachability, then every blob (see [`diagnose_blobs`]).
/// Returns the scan too, when the store could be listed.
pub fn diagnose_store(
    store: &dyn ListStore,
    ring: Option<&KeyRing>,
    t: &Thresholds,
    now: i64,
    progress: &mut dyn FnMut(u64, u64),
) -> (Diagnosis, Option<StoreInventory>) {
    let mut d = Diagnosis::default();
    d.ran(Check::StoreReachable);
    match crate::inventory::scan_store(store, ring, now, progress) {
        Ok(scan) => {
            merge(&mut d, diagnose_blobs(&scan, ring.is_some(), t, now));
            (d, Some(scan))
        }
        Err(e) => {
            unreachable(&mut d, "cannot list the store", &e, "check that the store is up and reachable");
            (d, None)
        }
    }
}

/// The checklist on a SQLite database: it exists and opens (with `options`, whose
/// clock says what has expired), expired rows are purged, then every blob.
#[cfg(feature = "sqlite")]
pub fn diagnose_sqlite(
    path: &Path,
    options: crate::store::SqliteOptions,
    ring: Option<&KeyRing>,
    t: &Thresholds,
    now: i64,
    progress: &mut dyn FnMut(u64, u64),
) -> Diagnosis {
    let mut d = Diagnosis::default();
    d.ran(Check::FilePresent);
    if !path.exists() {
        d.add(
            Check::FilePresent,
            Severity::Warning,
            format!("there is no database at {}: an app starting now has an empty cache", path.display()),
            vec![path.display().to_string()],
            "check the path the app is given; SqliteStore creates the file on first use",
        );
        return d;
    }
    if let Ok(meta) = std::fs::metadata(path) {
        check_permissions(&mut d, path, &meta);
    }
    d.ran(Check::StoreReachable);
    let store = match crate::store::SqliteStore::open_with(path, options) {
        Ok(s) => s,
        Err(e) => {
            let fix = match e.kind() {
                ErrorKind::Corrupt => "not a SQLite database, or a damaged one: move it aside (users sign in again)",
                ErrorKind::LockTimeout => "another process holds a write lock: find it (fuser) and let it finish",
                _ => "check the permissions of the file and its folder (SQLite writes -wal and -shm files beside it)",
            };
            unreachable(&mut d, "cannot open the database", &e, fix);
            return d;
        }
    };
    let rows = store.row_count().ok();
    let (rest, _) = diagnose_store(&store, ring, t, now, progress);
    merge(&mut d, rest);
    d.ran(Check::ExpiredRows);
    if let (Some(rows), Some(live)) = (rows, store.keys().ok().map(|k| k.len() as u64)) {
        let expired = rows.saturating_sub(live);
        if expired > 0 {
            let severity = if expired * 10 >= rows.max(1) { Severity::Warning } else { Severity::Info };
            d.add(
                Check::ExpiredRows,
                severity,
                format!("{expired} of {rows} rows have expired and are still in the table (the table grows)"),
                vec![],
                "run `tokencache purge --expired` now, and give the app's SqliteStore a purge_interval",
            );
        }
    }
    d
}

/// The checklist on a Redis server: it answers, fast, without evicting partitions,
/// then every blob under the store's prefix.
#[cfg(feature = "redis")]
pub fn diagnose_redis(
    store: &crate::store::RedisStore,
    ring: Option<&KeyRing>,
    t: &Thresholds,
    now: i64,
    progress: &mut dyn FnMut(u64, u64),
) -> Diagnosis {
    let mut d = Diagnosis::default();
    d.ran(Check::StoreReachable);
    let mut pings = Vec::new();
    for _ in 0..20 {
        let started = std::time::Instant::now();
        if let Err(e) = store.ping() {
            unreachable(
                &mut d,
                "Redis does not answer",
                &e,
                "check that redis-server runs and listens at that address and port (bind, protected-mode, \
                 firewall), the password and TLS (rediss:// and its CA); meanwhile apps serve from their L1 \
                 only, or sign users in again",
            );
            return d;
        }
        pings.push(started.elapsed());
    }
    d.ran(Check::StoreLatency);
    check_latency(&mut d, &Latency::of(pings), t);
    d.ran(Check::RedisEviction);
    if let Ok(info) = store.server_info() {
        let policy = info.maxmemory_policy.as_deref().unwrap_or("");
        let limited = info.maxmemory.is_some_and(|m| m > 0);
        if limited && policy.starts_with("allkeys-") {
            d.add(
                Check::RedisEviction,
                Severity::Warning,
                format!(
                    "maxmemory-policy is {policy}: when memory is full Redis evicts any key, including \
                     partitions that hold refresh tokens (they have no TTL), and those users sign in again"
                ),
                vec![],
                "use volatile-lru or volatile-ttl (only keys with a TTL go), or give Redis more memory",
            );
        }
        if let Some(n) = info.evicted_keys.filter(|n| *n > 0) {
            d.add(
                Check::RedisEviction,
                Severity::Warning,
                format!("Redis has evicted {n} keys for lack of memory since it started"),
                vec![],
                "raise maxmemory, bound the partitions (expire them; purge expired tokens), or use a \
                 separate Redis for the token cache",
            );
        }
        if let (Some(used), Some(max)) = (info.used_memory, info.maxmemory.filter(|m| *m > 0))
            && used * 10 >= max * 9
        {
            d.add(
                Check::RedisEviction,
                Severity::Warning,
                format!("Redis uses {used} of its {max} bytes: at the limit it evicts keys or refuses writes"),
                vec![],
                "raise maxmemory or make room",
            );
        }
    }
    let (rest, _) = diagnose_store(store, ring, t, now, progress);
    merge(&mut d, rest);
    d
}

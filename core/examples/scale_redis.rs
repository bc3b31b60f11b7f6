//! Scale run: N user partitions (default 1,000,000) in Redis through one
//! [`CacheProvider`] over a [`TieredStore`] whose L1 limit (default 64 MiB) is far
//! smaller than the data, so the L1 evicts all the time. BENCHMARKS.md records a run.
//!
//! `scripts/redis-server.sh run cargo run --release -p tokencache --example scale_redis -- [PARTITIONS] [L1_MIB] [READS]`
//!
//! Each partition is what msal Python writes after one user's sign-in: an Account,
//! an IdToken, a RefreshToken, an AccessToken and the AppMetadata (about 5 KB of
//! JSON as msal Python writes it). Phases, each timed:
//!
//! 1. write: for each user, load the partition, add the sign-in, save;
//! 2. read (uniform): READS (default 200,000) users drawn uniformly (seeded
//!    xorshift), each a load + msal Python's access-token search + save (a no-op);
//! 3. read (hot set): READS drawn from 10,000 users, a set that fits in the L1.
//!
//! After each phase: the L1's bytes (TieredStore's accounting) against its limit,
//! entries, evictions, the process RSS, Redis `used_memory` and `DBSIZE`. The L1's
//! bytes are checked after every operation. Exits non-zero if they ever exceeded
//! the limit, if a written partition was not found or had no access token, if an
//! L2 operation failed, or if Redis evicted keys.

#[cfg(feature = "redis")]
fn main() {
    std::process::exit(run::main());
}

#[cfg(not(feature = "redis"))]
fn main() {
    eprintln!("scale_redis needs the `redis` feature of tokencache");
    std::process::exit(2);
}

#[cfg(feature = "redis")]
mod run {
    use std::time::{Duration, Instant};

    use base64::Engine;
    use tokencache::json::{Map, Value};
    use tokencache::store::{RedisOptions, RedisStore, TieredOptions, TieredStats, TieredStore};
    use tokencache::{CacheProvider, CredentialType, TokenCache};

    const ENV: &str = "login.microsoftonline.com";
    const CLIENT_ID: &str = "6731de76-14a6-49ae-97bc-6eba6914391e";
    const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    const SCOPE: &str = "User.Read";
    const HOT_USERS: usize = 10_000;
    const MIB: usize = 1024 * 1024;

    /// xorshift64*: a tiny seeded generator (no dependency).
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        /// `n` base64url characters (token-like, incompressible).
        fn token_chars(&mut self, n: usize) -> String {
            const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            let mut s = String::with_capacity(n);
            while s.len() < n {
                let mut r = self.next();
                for _ in 0..10 {
                    if s.len() == n {
                        break;
                    }
                    s.push(ALPHABET[(r & 63) as usize] as char);
                    r >>= 6;
                }
            }
            s
        }
    }

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
    }

    fn uid(user: usize) -> String {
        format!("{:08x}-4e1c-4d2a-9f3b-{:012x}", user, (user as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 16)
    }

    fn partition(user: usize) -> String {
        format!("{}.{TENANT}", uid(user))
    }

    /// The token response of user `user`'s sign-in (authorization code flow), as msal
    /// Python hands it to its cache: RS256-signed access and ID tokens (~0.9 KB and
    /// ~0.8 KB, the short end of what Entra ID issues) and a ~0.5 KB refresh token,
    /// so that the partition is ~5 KB of JSON.
    fn sign_in(user: usize, rng: &mut Rng, now: i64) -> Map {
        let oid = uid(user);
        let claims = format!(
            r#"{{"aud":"{CLIENT_ID}","iss":"https://{ENV}/{TENANT}/v2.0","iat":{now},"nbf":{now},"exp":{exp},"name":"User {user}","oid":"{oid}","preferred_username":"user{user}@contoso.example","sub":"{sub}","tid":"{TENANT}","uti":"{uti}","ver":"2.0"}}"#,
            exp = now + 3600,
            sub = rng.token_chars(43),
            uti = rng.token_chars(22),
        );
        let id_token =
            format!("{}.{}.{}", b64(r#"{"typ":"JWT","alg":"RS256","kid":"abc"}"#), b64(&claims), rng.token_chars(342));
        let access_token = format!("eyJ0eXAiOiJKV1QiLCJub25jZSI6I.{}.{}", rng.token_chars(500), rng.token_chars(342));
        let refresh_token = format!("1.AR{}", rng.token_chars(500));
        let client_info = b64(&format!(r#"{{"uid":"{oid}","utid":"{TENANT}"}}"#));
        let text = format!(
            r#"{{"client_id": "{CLIENT_ID}", "scope": ["{SCOPE}"], "environment": "{ENV}",
            "token_endpoint": "https://{ENV}/{TENANT}/oauth2/v2.0/token", "grant_type": "authorization_code",
            "response": {{"token_type": "Bearer", "scope": "{SCOPE} openid profile", "expires_in": 3600,
                "ext_expires_in": 3600, "access_token": "{access_token}", "refresh_token": "{refresh_token}",
                "id_token": "{id_token}", "client_info": "{client_info}"}}}}"#
        );
        match tokencache::json::parse(&text).expect("event JSON") {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    /// msal Python's access-token query for the user's account.
    fn at_query(user: usize) -> Map {
        let mut q = Map::new();
        q.insert("client_id", Value::from(CLIENT_ID));
        q.insert("environment", Value::from(ENV));
        q.insert("realm", Value::from(TENANT));
        q.insert("home_account_id", Value::from(partition(user)));
        q
    }

    fn rss_kib() -> (u64, u64) {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    struct RedisMemory {
        used: u64,
        used_rss: u64,
        maxmemory: u64,
        policy: String,
        evicted_keys: u64,
        dbsize: u64,
    }

    fn redis_memory(conn: &mut redis::Connection) -> RedisMemory {
        let info: String = redis::cmd("INFO").query(conn).expect("INFO");
        let field = |name: &str| {
            info.lines()
                .find_map(|l| l.trim_end().strip_prefix(name).and_then(|v| v.strip_prefix(':')).map(str::to_owned))
        };
        let num = |name: &str| field(name).and_then(|v| v.parse().ok()).unwrap_or(0);
        RedisMemory {
            used: num("used_memory"),
            used_rss: num("used_memory_rss"),
            maxmemory: num("maxmemory"),
            policy: field("maxmemory_policy").unwrap_or_default(),
            evicted_keys: num("evicted_keys"),
            dbsize: redis::cmd("DBSIZE").query(conn).expect("DBSIZE"),
        }
    }

    fn mib(bytes: u64) -> f64 {
        bytes as f64 / MIB as f64
    }

    fn quantile(sorted: &[u32], q: f64) -> u32 {
        if sorted.is_empty() {
            return 0;
        }
        sorted[((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1]
    }

    struct Phase {
        name: &'static str,
        ops: usize,
        elapsed: Duration,
        micros: Vec<u32>,
        before: TieredStats,
        after: TieredStats,
    }

    type Store = TieredStore<RedisStore>;

    /// Watches the L1's bytes after every operation.
    struct Watch {
        limit: usize,
        max_seen: usize,
        over: u64,
        checks: u64,
    }

    impl Watch {
        fn check(&mut self, store: &Store) {
            let bytes = store.l1().map_or(0, |l1| l1.bytes());
            self.checks += 1;
            self.max_seen = self.max_seen.max(bytes);
            if bytes > self.limit {
                self.over += 1;
                if self.over <= 5 {
                    eprintln!("L1 OVER ITS LIMIT: {bytes} bytes > {} (check {})", self.limit, self.checks);
                }
            }
        }
    }

    fn memory_line(label: &str, store: &Store, limit: usize, conn: &mut redis::Connection) -> RedisMemory {
        let s = store.stats();
        let (evicted, expired) = store.l1().map_or((0, 0), |l1| l1.evictions());
        let (rss, hwm) = rss_kib();
        let r = redis_memory(conn);
        println!(
            "[memory after {label}] L1 {:.2} MiB of {:.0} MiB limit ({} entries, {:.0} B/entry), L1 evictions {evicted} (+{expired} expired); \
             process RSS {:.1} MiB (peak {:.1} MiB); Redis used_memory {:.1} MiB (rss {:.1} MiB), DBSIZE {}, evicted_keys {}",
            mib(s.l1_bytes as u64),
            mib(limit as u64),
            s.l1_entries,
            s.l1_bytes as f64 / s.l1_entries.max(1) as f64,
            rss as f64 / 1024.0,
            hwm as f64 / 1024.0,
            mib(r.used),
            mib(r.used_rss),
            r.dbsize,
            r.evicted_keys,
        );
        r
    }

    fn progress(phase: &str, done: usize, total: usize, start: Instant, store: &Store) {
        if !done.is_multiple_of(100_000) && done != total {
            return;
        }
        let secs = start.elapsed().as_secs_f64();
        let l1 = store.l1().expect("L1 enabled");
        println!(
            "  {phase}: {done}/{total} in {secs:.1} s ({:.0} ops/s); L1 {:.2} MiB, {} entries, {} evictions; RSS {:.1} MiB",
            done as f64 / secs,
            mib(l1.bytes() as u64),
            l1.len(),
            l1.evictions().0,
            rss_kib().0 as f64 / 1024.0
        );
    }

    pub fn main() -> i32 {
        let mut args = std::env::args().skip(1);
        let n: usize = args.next().map_or(1_000_000, |a| a.replace('_', "").parse().expect("PARTITIONS"));
        let l1_mib: usize = args.next().map_or(64, |a| a.parse().expect("L1_MIB"));
        let reads: usize = args.next().map_or(200_000, |a| a.replace('_', "").parse().expect("READS"));
        let Ok(url) = std::env::var("TOKENCACHE_REDIS_URL") else {
            eprintln!("TOKENCACHE_REDIS_URL is not set: run under scripts/redis-server.sh run");
            return 2;
        };
        let limit = l1_mib * MIB;
        let mut conn =
            redis::Client::open(url.as_str()).expect("redis URL").get_connection().expect("connect to Redis");
        let start_mem = redis_memory(&mut conn);
        println!(
            "scale_redis: {n} user partitions, L1 limit {l1_mib} MiB, {reads} reads per read phase; \
             Redis maxmemory {} ({}), DBSIZE {} at start",
            start_mem.maxmemory, start_mem.policy, start_mem.dbsize
        );
        if start_mem.maxmemory != 0 && start_mem.maxmemory < (n as u64) * 8 * 1024 {
            eprintln!("Redis maxmemory is set ({} bytes): too low for {n} partitions", start_mem.maxmemory);
            return 2;
        }
        if start_mem.dbsize != 0 {
            eprintln!("Redis is not empty (DBSIZE {}): use a throwaway server", start_mem.dbsize);
            return 2;
        }

        let l2 = RedisStore::open(&url, RedisOptions { key_prefix: "scale:".into(), ..Default::default() })
            .expect("open RedisStore");
        let store = TieredStore::new(l2, TieredOptions { l1_max_bytes: limit, ..Default::default() }).expect("tiered");
        let provider = CacheProvider::new(store);
        let store = provider.store();
        let mut watch = Watch { limit, max_seen: 0, over: 0, checks: 0 };
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);

        // One partition's blob, for its size and the String's spare capacity.
        {
            let cache = TokenCache::new();
            cache.add(&sign_in(0, &mut Rng(1), tokencache::unix_now()), None).expect("add");
            let text = cache.serialize();
            println!(
                "one partition: {} bytes of JSON (serialize()'s String capacity {}), key {} bytes",
                text.len(),
                text.capacity(),
                partition(0).len()
            );
        }
        memory_line("start", store, limit, &mut conn);

        let mut phases = Vec::new();

        // 1. write
        let before = store.stats();
        let mut micros = Vec::with_capacity(n);
        let start = Instant::now();
        for user in 0..n {
            let event = sign_in(user, &mut rng, tokencache::unix_now());
            let key = partition(user);
            let t = Instant::now();
            let p = provider.load(&key).expect("load");
            p.add(&event, None).expect("add");
            p.save().expect("save");
            micros.push(u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX));
            watch.check(store);
            progress("write", user + 1, n, start, store);
        }
        phases.push(Phase {
            name: "write (load, add sign-in, save)",
            ops: n,
            elapsed: start.elapsed(),
            micros,
            before,
            after: store.stats(),
        });
        let after_write = memory_line("write", store, limit, &mut conn);

        // 2. and 3. reads
        let mut not_found = 0u64;
        let mut no_token = 0u64;
        for (name, label, pool) in [
            ("read, uniform over all users", "uniform read", n),
            ("read, hot set of 10,000 users", "hot read", HOT_USERS.min(n)),
        ] {
            let before = store.stats();
            let mut micros = Vec::with_capacity(reads);
            let start = Instant::now();
            for i in 0..reads {
                let user = rng.below(pool);
                let query = at_query(user);
                let t = Instant::now();
                let p = provider.load(&partition(user)).expect("load");
                let found = p.search(CredentialType::AccessToken, &[SCOPE], Some(&query), None);
                p.save().expect("save");
                micros.push(u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX));
                if found.is_empty() {
                    no_token += 1;
                }
                watch.check(store);
                progress(label, i + 1, reads, start, store);
            }
            let after = store.stats();
            not_found += after.misses - before.misses;
            phases.push(Phase { name, ops: reads, elapsed: start.elapsed(), micros, before, after });
            memory_line(label, store, limit, &mut conn);
        }
        let end_mem = redis_memory(&mut conn);
        let final_stats = store.stats();
        let pstats = provider.stats();

        println!();
        println!("| phase | ops | time | ops/s | p50 | p99 | max | L1 hits | L2 hits | misses | version checks |");
        println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for ph in &mut phases {
            ph.micros.sort_unstable();
            let d = |f: fn(&TieredStats) -> u64| f(&ph.after) - f(&ph.before);
            let (l1, l2, miss) = (d(|s| s.l1_hits), d(|s| s.l2_hits), d(|s| s.misses));
            let reads = (l1 + l2 + miss).max(1) as f64;
            println!(
                "| {} | {} | {:.1} s | {:.0} | {} µs | {} µs | {} µs | {l1} ({:.1}%) | {l2} | {miss} | {} |",
                ph.name,
                ph.ops,
                ph.elapsed.as_secs_f64(),
                ph.ops as f64 / ph.elapsed.as_secs_f64(),
                quantile(&ph.micros, 0.50),
                quantile(&ph.micros, 0.99),
                ph.micros.last().copied().unwrap_or(0),
                100.0 * l1 as f64 / reads,
                d(|s| s.l2_version_checks),
            );
        }
        println!();
        println!(
            "L1: limit {limit} bytes; max seen {} bytes over {} checks (after every operation); {} checks over the limit",
            watch.max_seen, watch.checks, watch.over
        );
        println!(
            "provider: {} hits, {} misses, {} writes, {} conflicts; L2 errors {}, L2 latency p50 {:?} p99 {:?}",
            pstats.hits,
            pstats.misses,
            pstats.writes,
            pstats.conflicts,
            final_stats.l2_errors,
            final_stats.l2_latency_p50,
            final_stats.l2_latency_p99
        );
        println!(
            "Redis: used_memory {:.1} MiB after the writes ({:.0} B per partition), DBSIZE {}, evicted_keys {}",
            mib(after_write.used),
            (after_write.used - start_mem.used) as f64 / n as f64,
            end_mem.dbsize,
            end_mem.evicted_keys
        );

        let mut failed = Vec::new();
        if watch.over > 0 {
            failed.push(format!(
                "the L1 held more than its limit at {} checks (max {} bytes)",
                watch.over, watch.max_seen
            ));
        }
        if not_found > 0 {
            failed.push(format!("{not_found} reads of written partitions found nothing"));
        }
        if no_token > 0 {
            failed.push(format!("{no_token} reads found the partition without its access token"));
        }
        if end_mem.dbsize != n as u64 {
            failed.push(format!("DBSIZE {} != {n} partitions written", end_mem.dbsize));
        }
        if pstats.writes != n as u64 {
            failed.push(format!("{} writes for {n} partitions", pstats.writes));
        }
        if final_stats.l2_errors > 0 {
            failed.push(format!("{} L2 errors", final_stats.l2_errors));
        }
        if end_mem.evicted_keys > 0 {
            failed.push(format!("Redis evicted {} keys", end_mem.evicted_keys));
        }
        if failed.is_empty() {
            println!("OK: the L1 stayed within its limit and every partition written was read back");
            0
        } else {
            for f in &failed {
                eprintln!("FAILED: {f}");
            }
            1
        }
    }
}

//! A TieredStore over a real Redis that is stopped in the middle of a load of reads
//! and writes, then restarted. Alone in its test binary: it stops the shared test
//! server (through `scripts/redis-server.sh`, as `make test-stores` passes it).
#![cfg(feature = "redis")]

mod stores_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use stores_support::{note, poll_until, redis_control, redis_ctl, redis_url, unique_prefix};
use tokencache::store::{
    CircuitState, Expiry, L2FailurePolicy, RedisOptions, RedisStore, Store, TieredOptions, TieredStore,
};

/// Restarts the server if the test stopped it and then failed, so later suites
/// still have one.
struct RestartOnDrop<'a>(&'a (String, String), bool);

impl Drop for RestartOnDrop<'_> {
    fn drop(&mut self) {
        if self.1 {
            redis_control(self.0, "restart");
        }
    }
}

fn key_in_redis(url: &str, key: &str) -> bool {
    let Ok(client) = redis::Client::open(url) else { return false };
    let Ok(mut c) = client.get_connection_with_timeout(Duration::from_millis(500)) else { return false };
    redis::cmd("EXISTS").arg(key).query::<bool>(&mut c).unwrap_or(false)
}

#[test]
fn redis_outage_under_load_then_recovery() {
    let test = "redis_outage_under_load_then_recovery";
    let Some(url) = redis_url(test) else { return };
    let Some(ctl) = redis_ctl(test) else { return };
    let short = Duration::from_millis(300);
    let l2 = RedisStore::open(
        &url,
        RedisOptions {
            key_prefix: unique_prefix("outage"),
            connect_timeout: short,
            read_timeout: short,
            write_timeout: short,
            max_connections: 8,
            ..Default::default()
        },
    )
    .unwrap();
    let t = Arc::new(
        TieredStore::new(
            l2,
            TieredOptions {
                on_l2_failure: L2FailurePolicy::ServeFromL1,
                circuit_failure_threshold: 3,
                circuit_cool_down: Duration::from_millis(250),
                ..Default::default()
            },
        )
        .unwrap(),
    );
    let later = Expiry::at(tokencache::unix_now() + 3600);
    for i in 0..40 {
        t.set(&format!("hot{i}"), Bytes::from(format!("value {i}")), later).unwrap();
    }
    assert!(key_in_redis(&url, &t.l2().key_for("hot0")));

    // phase 0: Redis up; 1: stopped; 2: restarted.
    let phase = Arc::new(AtomicUsize::new(0));
    let ops: Arc<[AtomicU64; 3]> = Arc::new(Default::default());
    let hot_ok = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|n| {
            let (t, phase, ops, hot_ok, stop) = (t.clone(), phase.clone(), ops.clone(), hot_ok.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut i = 0usize;
                while !stop.load(Ordering::SeqCst) {
                    i += 1;
                    let hot = i % 40;
                    let now = phase.load(Ordering::SeqCst);
                    let got = t.get(&format!("hot{hot}")).expect("ServeFromL1: reads never fail");
                    let want = format!("value {hot}");
                    // Up, down, and restarted empty: the restarted Redis lost the
                    // epoch marker too, so L1 copies are written back, not dropped.
                    assert_eq!(got.as_deref(), Some(want.as_bytes()), "hot partition {hot} (phase {now})");
                    hot_ok.fetch_add(1, Ordering::Relaxed);
                    t.get(&format!("cold{}", i % 1000)).expect("ServeFromL1: an L1 miss is a miss, not an error");
                    t.set(&format!("w{n}-{}", i % 50), Bytes::from(format!("{i}")), later)
                        .expect("ServeFromL1: writes reach L1 whatever L2 does");
                    ops[phase.load(Ordering::SeqCst)].fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let cap = Duration::from_secs(30);
    assert!(poll_until(cap, || ops[0].load(Ordering::Relaxed) >= 200), "load running with Redis up");

    redis_control(&ctl, "stop");
    let mut guard = RestartOnDrop(&ctl, true);
    phase.store(1, Ordering::SeqCst);
    assert!(
        poll_until(cap, || {
            let st = t.stats();
            // circuit_opened >= 2: a probe after the cool-down found Redis still down.
            ops[1].load(Ordering::Relaxed) >= 300 && st.l2_errors > 0 && st.l2_skipped > 0 && st.circuit_opened >= 2
        }),
        "the load goes on while Redis is down, failures counted, the breaker probes: {:?}",
        t.stats()
    );

    phase.store(2, Ordering::SeqCst);
    redis_control(&ctl, "restart");
    guard.1 = false;
    // The breaker probes after its cool-down and writes reach Redis again.
    let probe_key = t.l2().key_for("after-restart");
    assert!(
        poll_until(cap, || {
            t.set("after-restart", Bytes::from_static(b"back"), later).unwrap();
            key_in_redis(&url, &probe_key)
        }),
        "a write reached the restarted Redis: {:?}",
        t.stats()
    );
    let recovered_at = ops[2].load(Ordering::Relaxed);
    assert!(poll_until(cap, || ops[2].load(Ordering::Relaxed) >= recovered_at + 200), "load running after the restart");
    // Every hot partition is back in Redis once its copy was checked (the interval).
    assert!(
        poll_until(cap, || (0..40).all(|i| key_in_redis(&url, &t.l2().key_for(&format!("hot{i}"))))),
        "L1 copies written back to the restarted Redis: {:?}",
        t.stats()
    );
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.join().expect("no worker panicked");
    }

    let st = t.stats();
    assert_eq!(st.circuit, Some(CircuitState::Closed), "{st:?}");
    let load_keys = (0..4).flat_map(|n| (0..50).map(move |i| format!("w{n}-{i}")));
    let written = load_keys.filter(|k| key_in_redis(&url, &t.l2().key_for(k))).count();
    assert_eq!(written, 200, "every write of the load is in Redis: written back or written since");
    assert!(st.l1_copies_restored >= 40 && st.l2_write_backs_waiting == 0, "{st:?}");
    // A partition only Redis has (written by another machine) is read through.
    t.l2().set("from-elsewhere", Bytes::from_static(b"x"), later).unwrap();
    assert_eq!(t.get("from-elsewhere").unwrap().as_deref(), Some(&b"x"[..]));
    note(&format!(
        "{test}: {} hot reads served from L1; ops up/down/restarted = {}/{}/{}; {st:?}",
        hot_ok.load(Ordering::Relaxed),
        ops[0].load(Ordering::Relaxed),
        ops[1].load(Ordering::Relaxed),
        ops[2].load(Ordering::Relaxed),
    ));
}

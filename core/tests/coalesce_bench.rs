//! Not a test: the wake-up latency of a coalesced miss in Rust, for BENCHMARKS.md.
//! Ignored by default; measures and prints, asserts nothing about time.
//!
//!     cargo test --release -p tokencache --test coalesce_bench -- --ignored --nocapture
//!
//! 64 threads miss one key; the fetch sleeps 20 ms (every waiter is waiting by
//! then), records the instant just before it returns; each waiter records when its
//! `get_or_fetch` returned. Peer, same run: the same single flight written by hand
//! on `std::sync::{Mutex, Condvar}`.

use std::collections::HashMap;
use std::sync::{Arc, Barrier, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use tokencache::coalesce::Coalescer;

const THREADS: usize = 64;
const ROUNDS: usize = 50;

type Slot = Arc<(Mutex<Option<u64>>, Condvar)>;

/// The peer: a hand-written single flight.
#[derive(Default)]
struct StdFlight {
    flights: Mutex<HashMap<String, Slot>>,
}

impl StdFlight {
    fn get_or_fetch(&self, key: &str, fetch: impl FnOnce() -> u64) -> u64 {
        let (slot, leader) = {
            let mut m = self.flights.lock().unwrap();
            match m.get(key) {
                Some(s) => (s.clone(), false),
                None => {
                    let s: Slot = Arc::default();
                    m.insert(key.to_owned(), s.clone());
                    (s, true)
                }
            }
        };
        if leader {
            let v = fetch();
            self.flights.lock().unwrap().remove(key);
            *slot.0.lock().unwrap() = Some(v);
            slot.1.notify_all();
            return v;
        }
        let mut g = slot.0.lock().unwrap();
        loop {
            if let Some(v) = *g {
                return v;
            }
            g = slot.1.wait(g).unwrap();
        }
    }
}

fn measure(run: impl Fn(&str, &(dyn Fn() -> u64 + Sync)) -> u64 + Sync) -> Vec<Duration> {
    let mut lat = Vec::new();
    for r in 0..ROUNDS {
        let key = format!("k{r}");
        let done_at: Mutex<Option<Instant>> = Mutex::new(None);
        let barrier = Barrier::new(THREADS);
        let fetch = || {
            thread::sleep(Duration::from_millis(20));
            *done_at.lock().unwrap() = Some(Instant::now());
            7
        };
        let back: Vec<Instant> = thread::scope(|s| {
            let hs: Vec<_> = (0..THREADS)
                .map(|_| {
                    s.spawn(|| {
                        barrier.wait();
                        run(&key, &fetch);
                        Instant::now()
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let done = done_at.lock().unwrap().expect("one fetch");
        let mut ds: Vec<Duration> = back.iter().map(|b| b.saturating_duration_since(done)).collect();
        ds.sort();
        lat.extend(ds.into_iter().skip(1)); // the leader is no waiter
    }
    lat.sort();
    lat
}

fn pct(lat: &[Duration], p: f64) -> f64 {
    lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)].as_secs_f64() * 1e6
}

#[test]
#[ignore = "a benchmark: cargo test --release -p tokencache --test coalesce_bench -- --ignored --nocapture"]
fn wake_up_latency_of_a_coalesced_miss() {
    let core: Coalescer<u64> = Coalescer::new();
    let ours = measure(|k, f| core.get_or_fetch(k, Duration::from_secs(60), || Ok(None), || Ok(f())).unwrap());
    let peer = StdFlight::default();
    let theirs = measure(|k, f| peer.get_or_fetch(k, f));
    println!("wake-up latency, {} waiters x {ROUNDS} rounds (µs):", THREADS - 1);
    println!("| single flight | p50 | p99 | max |");
    println!("|---|---|---|---|");
    for (name, l) in [("tokencache::coalesce::Coalescer", &ours), ("std Mutex + Condvar by hand", &theirs)] {
        println!("| {name} | {:.0} µs | {:.0} µs | {:.0} µs |", pct(l, 0.5), pct(l, 0.99), pct(l, 1.0));
    }
    println!(
        "| ratio std / tokencache | {:.2}× | {:.2}× | |",
        pct(&theirs, 0.5) / pct(&ours, 0.5),
        pct(&theirs, 0.99) / pct(&ours, 0.99)
    );
}

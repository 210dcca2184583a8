//! A lock with several workers: each worker, with its own session, increments a
//! counter stored in a znode by read-modify-write (no version check), which is only
//! safe under the lock. The final count proves that no two workers overlapped.
//!
//! Run it with `cargo run --example lock_workers`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ensemble::{Acl, Cluster, CreateMode};
use recipes::{Coordinator, CoordinatorOptions, InterProcessMutex};

const WORKERS: usize = 4;
const ROUNDS: usize = 5;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cluster = Cluster::builder(3).tick_ms(10).start()?;
    cluster
        .wait_for_leader(Duration::from_secs(20))
        .ok_or("no leader")?;
    let setup = cluster.client(1)?;
    setup.create(
        "/counter",
        &b"0"[..],
        &Acl::open_unsafe(),
        CreateMode::Persistent,
    )?;
    println!("{WORKERS} workers will each add 1 to /counter {ROUNDS} times, under /locks/counter");

    let t = Instant::now();
    let mut threads = Vec::new();
    for w in 1..=WORKERS {
        let node = 1 + (w as u64 - 1) % 3;
        let coord =
            Coordinator::connect(&cluster.handles_from(node), CoordinatorOptions::default())?;
        threads.push(std::thread::spawn(move || -> Result<(), String> {
            let lock = InterProcessMutex::new(Arc::clone(&coord), "/locks/counter")
                .map_err(|e| e.to_string())?;
            for _ in 0..ROUNDS {
                if !lock
                    .try_acquire(Duration::from_secs(20))
                    .map_err(|e| e.to_string())?
                {
                    return Err(format!("worker-{w} timed out"));
                }
                let waited = if lock.last_wakeups() == 0 {
                    "at once".to_string()
                } else {
                    format!("after {} wake-up", lock.last_wakeups())
                };
                let client = coord.client();
                let (data, _) = client
                    .get_data("/counter", false)
                    .map_err(|e| e.to_string())?;
                let n: u64 = std::str::from_utf8(&data)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or("bad counter")?;
                client
                    .set_data("/counter", (n + 1).to_string().into_bytes(), -1)
                    .map_err(|e| e.to_string())?;
                println!(
                    "worker-{w} (node {node}) got the lock {waited}: counter {n} -> {}",
                    n + 1
                );
                lock.release().map_err(|e| e.to_string())?;
            }
            Ok(())
        }));
    }
    for t in threads {
        t.join().map_err(|_| "worker panicked")??;
    }
    let (data, stat) = setup.get_data("/counter", false)?;
    let total = String::from_utf8_lossy(&data).into_owned();
    println!(
        "final counter: {total} (expected {}), {} writes, in {:?}",
        WORKERS * ROUNDS,
        stat.version,
        t.elapsed()
    );
    if total != (WORKERS * ROUNDS).to_string() {
        return Err("lost an update: the lock failed".into());
    }
    println!("no update was lost: the lock held.");
    Ok(())
}

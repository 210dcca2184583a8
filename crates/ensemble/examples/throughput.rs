//! A quick throughput / latency probe through the public client API (the full
//! harness is the `ensemble-bench` package).
//!
//! `cargo run --release -p ensemble --example throughput -- [mem|file] [sessions] [outstanding] [secs]`

use std::time::{Duration, Instant};

use ensemble::{Acl, Cluster, CreateMode, Fsync};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let file = args.get(1).is_some_and(|a| a == "file");
    let sessions: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(8);
    let outstanding: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(32);
    let secs: u64 = args.get(4).and_then(|a| a.parse().ok()).unwrap_or(3);
    let dir = tempfile::tempdir()?;
    let mut b = Cluster::builder(3)
        .tick_ms(50)
        .limits_ticks(10, 20)
        .fsync(Fsync::Always);
    if file {
        b = b.data_dir(dir.path());
    }
    let cluster = b.start()?;
    let leader = cluster
        .wait_for_leader(Duration::from_secs(20))
        .ok_or("no leader")?;
    let setup = cluster.client(leader)?;
    for k in 0..1000 {
        setup.create(
            &format!("/k{k}"),
            vec![0u8; 100],
            &Acl::open_unsafe(),
            CreateMode::Persistent,
        )?;
    }
    let ids = cluster.ids();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut threads = Vec::new();
    for s in 0..sessions {
        let c = cluster.client(ids[s % ids.len()])?;
        threads.push(std::thread::spawn(move || {
            let mut lat = Vec::new();
            let mut i = 0usize;
            let mut inflight = std::collections::VecDeque::new();
            while Instant::now() < deadline {
                while inflight.len() < outstanding {
                    let key = format!("/k{}", (s * 7919 + i) % 1000);
                    i += 1;
                    inflight
                        .push_back((Instant::now(), c.set_data_async(&key, vec![1u8; 100], -1)));
                }
                if let Some((t0, call)) = inflight.pop_front() {
                    let ok = call.wait().is_ok();
                    if ok {
                        lat.push(t0.elapsed().as_micros() as u64);
                    }
                }
            }
            for (_, call) in inflight {
                let _ = call.wait();
            }
            lat
        }));
    }
    let mut all: Vec<u64> = Vec::new();
    for t in threads {
        all.extend(t.join().map_err(|_| "thread panicked")?);
    }
    all.sort_unstable();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    println!(
        "storage={} sessions={sessions} outstanding={outstanding}: {:.0} ops/s p50={}us p99={}us max={}us",
        if file { "file+fsync" } else { "mem" },
        all.len() as f64 / secs as f64,
        pct(0.5),
        pct(0.99),
        all.last().copied().unwrap_or(0)
    );
    Ok(())
}

//! A work queue: a producer puts jobs in a distributed FIFO queue; three consumers,
//! each with its own session, take them. Jobs leave in order, each exactly once, and
//! waiting consumers are served in the order they arrived. Then a priority queue
//! shows urgent work overtaking routine work.
//!
//! Run it with `cargo run --example work_queue`.

use std::sync::Arc;
use std::time::Duration;

use std::sync::atomic::{AtomicUsize, Ordering};

use ensemble::Cluster;
use recipes::{Coordinator, CoordinatorOptions, DistributedQueue, PriorityQueue};

const JOBS: usize = 12;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cluster = Cluster::builder(3).tick_ms(10).start()?;
    cluster
        .wait_for_leader(Duration::from_secs(20))
        .ok_or("no leader")?;
    let connect =
        |node| Coordinator::connect(&cluster.handles_from(node), CoordinatorOptions::default());

    let taken = Arc::new(AtomicUsize::new(0));
    let mut consumers = Vec::new();
    for c in 1..=3u64 {
        let q = DistributedQueue::new(connect(c)?, "/jobs")?;
        let taken = Arc::clone(&taken);
        consumers.push(std::thread::spawn(move || {
            let mut mine = Vec::new();
            // Stop after a quiet half second.
            while let Ok(Some(job)) = q.take(Some(Duration::from_millis(500))) {
                let job = String::from_utf8_lossy(&job).into_owned();
                println!("  consumer-{c} took {job}");
                taken.fetch_add(1, Ordering::Relaxed);
                mine.push(job);
                std::thread::sleep(Duration::from_millis(10));
            }
            mine
        }));
    }

    let producer = DistributedQueue::new(connect(1)?, "/jobs")?;
    println!("producer puts {JOBS} jobs");
    for j in 1..=JOBS {
        producer.put(format!("job-{j:02}").into_bytes())?;
    }
    for (i, c) in consumers.into_iter().enumerate() {
        let mine = c.join().map_err(|_| "consumer panicked")?;
        println!(
            "consumer-{} handled {} jobs, in order: {mine:?}",
            i + 1,
            mine.len()
        );
    }
    println!(
        "{} jobs taken, {} left in the queue",
        taken.load(Ordering::Relaxed),
        producer.len()?
    );

    let pq = PriorityQueue::new(connect(2)?, "/tickets")?;
    println!("support desk files tickets: routine (priority 5) and urgent (priority 0)");
    for (t, p) in [
        ("printer jam", 5),
        ("site down", 0),
        ("new laptop", 5),
        ("data loss", 0),
    ] {
        pq.put(t.as_bytes().to_vec(), p)?;
        println!("  filed {t:?} with priority {p}");
    }
    while let Some(t) = pq.take(Some(Duration::from_millis(50)))? {
        println!("  handling {:?}", String::from_utf8_lossy(&t));
    }
    Ok(())
}

//! The watch fan-out workload: `sessions` sessions each hold a data watch on one
//! node; a writer on the leader changes it; a round's latency is the time from the
//! write's issue until the last watcher got its event. Watchers re-arm after each
//! event and the writer waits for all of them before the next round.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ensemble::{Client, Event};
use parking_lot::{Condvar, Mutex};

use crate::hist::Histogram;
use crate::opts::Options;
use crate::report::Report;
use crate::setup::{self, Bench};
use crate::workload::{secs, Window};
use crate::BenchError;

/// The watched node.
pub const WATCHED: &str = "/bench-watch";
/// How long the writer waits for a round before counting it as an error.
const ROUND_WAIT: Duration = Duration::from_secs(5);
/// How often an idle watcher checks for the end of the run.
const POLL: Duration = Duration::from_millis(50);

#[derive(Debug)]
struct Round {
    started: Instant,
    armed: usize,
    notified: usize,
    last: Instant,
}

struct Shared {
    round: Mutex<Round>,
    cv: Condvar,
    stop: AtomicBool,
}

/// One watcher: arm, wait for the event, report, repeat. Returns per-watcher
/// notification latencies.
fn watcher(c: Client, sh: Arc<Shared>) -> (Histogram, u64) {
    let mut h = Histogram::new();
    let mut errors = 0;
    'outer: while !sh.stop.load(Ordering::Acquire) {
        if c.get_data(WATCHED, true).is_err() {
            errors += 1;
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        {
            let mut r = sh.round.lock();
            r.armed += 1;
            sh.cv.notify_all();
        }
        loop {
            match c.events().recv_timeout(POLL) {
                Ok(Event::Watch(_)) => break,
                Ok(_) => {}
                Err(_) if sh.stop.load(Ordering::Acquire) => break 'outer,
                Err(_) => {}
            }
        }
        let now = Instant::now();
        let mut r = sh.round.lock();
        h.record_duration(now.saturating_duration_since(r.started));
        r.notified += 1;
        r.last = r.last.max(now);
        sh.cv.notify_all();
    }
    let _ = c.close();
    (h, errors)
}

/// Runs the watch fan-out workload.
pub fn run(o: &Options) -> Result<Report, BenchError> {
    let bench: Bench = setup::start(o, o.snapshot_every)?;
    let writer = bench.client(bench.leader)?;
    setup::ensure(&writer, WATCHED)?;
    bench.converge()?;
    let n = o.sessions.max(1);
    let now = Instant::now();
    let sh = Arc::new(Shared {
        round: Mutex::new(Round {
            started: now,
            armed: 0,
            notified: 0,
            last: now,
        }),
        cv: Condvar::new(),
        stop: AtomicBool::new(false),
    });
    let mut threads = Vec::new();
    for c in bench.clients(o.attach, n)? {
        let sh = Arc::clone(&sh);
        threads.push(
            std::thread::Builder::new()
                .name("bench-watcher".into())
                .spawn(move || watcher(c, sh))
                .map_err(|e| BenchError::Setup(e.to_string()))?,
        );
    }
    let w = Window::starting_now(secs(o.warmup), secs(o.duration));
    let mut rep = Report::new(o);
    rep.outstanding = 1;
    let value = Bytes::from(vec![0x77; o.value_size]);
    let mut rounds_measured = 0u64;
    while Instant::now() < w.end {
        // Wait until every watcher is armed, then start a round.
        let mut r = sh.round.lock();
        let deadline = Instant::now() + ROUND_WAIT;
        while r.armed < n && Instant::now() < deadline {
            sh.cv.wait_until(&mut r, deadline);
        }
        if r.armed < n {
            rep.errors += 1;
            break;
        }
        let t0 = Instant::now();
        r.started = t0;
        r.armed = 0;
        r.notified = 0;
        r.last = t0;
        drop(r);
        if let Err(e) = writer.set_data(WATCHED, value.clone(), -1) {
            rep.errors += 1;
            rep.push("first_error", e.to_string());
            break;
        }
        let mut r = sh.round.lock();
        let deadline = Instant::now() + ROUND_WAIT;
        while r.notified < n && Instant::now() < deadline {
            sh.cv.wait_until(&mut r, deadline);
        }
        if r.notified < n {
            rep.errors += 1;
            break;
        }
        if t0 >= w.measure_from {
            rep.ops += 1;
            rounds_measured += 1;
            rep.latency
                .record_duration(r.last.saturating_duration_since(t0));
        }
    }
    sh.stop.store(true, Ordering::Release);
    sh.cv.notify_all();
    let mut each = Histogram::new();
    for t in threads {
        let (h, errors) = t
            .join()
            .map_err(|_| BenchError::Setup("a watcher thread panicked".into()))?;
        each.merge(&h);
        rep.errors += errors;
    }
    let _ = writer.close();
    rep.measured_s = o.duration;
    rep.push("watchers", n);
    rep.push(
        "notifications_per_s",
        rounds_measured as f64 * n as f64 / o.duration.max(1e-9),
    );
    rep.push("notify_p50_us", each.quantile(0.5) as f64 / 1000.0);
    rep.push("notify_p99_us", each.quantile(0.99) as f64 / 1000.0);
    rep.push("leader", bench.leader);
    Ok(rep)
}

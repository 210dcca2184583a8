//! SNAP catch-up: a follower that fell behind the leader's log window while the tree
//! is large rejoins by SNAP, under a write load on the leader.
//!
//! Reported: `snap_sync_ms` (from the heal until the follower serves again, which it
//! can only after its sync), `elections` (leader epochs started meanwhile: 0 unless
//! the sync disturbed the ensemble), `leader_kept`, and the load's latency
//! (`write_max_ms` is the longest write, the stall a sync puts on the leader).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::opts::{Attach, Options};
use crate::report::Report;
use crate::scenario::{load_opts, ms, small_writes, wait_stats, WINDOW_FLUSH_WRITES};
use crate::setup::{self, LEADER_WAIT};
use crate::workload::{self, Window};
use crate::BenchError;

/// Load before the heal, so that the latency covers the sync and not only the start.
const BASELINE: Duration = Duration::from_millis(300);

/// Runs the scenario (see the module docs).
pub fn run(o: &Options) -> Result<Report, BenchError> {
    let mut bench = setup::start(o, None)?;
    let value = Bytes::from(vec![0x5a; o.value_size]);
    let leader = bench.leader;
    let admin = bench.client(leader)?;
    let load = setup::populate(&admin, o.znodes, &value)?;
    setup::create_keys(&admin, o.keys.max(1), &value)?;
    setup::ensure(&admin, "/warm")?;
    bench.converge()?;
    let lagging = bench
        .cluster
        .ids()
        .into_iter()
        .find(|i| *i != leader)
        .ok_or_else(|| BenchError::Setup("snap-sync needs at least 2 nodes".into()))?;
    bench.cluster.partition(lagging);
    // More writes than the leader's log window keeps: only a SNAP can catch up.
    small_writes(&admin, WINDOW_FLUSH_WRITES)?;
    let _ = admin.close();
    wait_stats(&bench, lagging, LEADER_WAIT, |s| !s.server.serving)?;
    let epoch = |id| {
        bench
            .cluster
            .stats(id)
            .map(|s| s.server.committed_zxid.epoch)
    };
    let epoch_before =
        epoch(leader).ok_or_else(|| BenchError::Setup("no statistics from the leader".into()))?;
    let keys = Arc::new((0..o.keys.max(1)).map(setup::key_path).collect::<Vec<_>>());
    let clients = bench.clients(Attach::Leader, o.sessions.max(1))?;
    let stop = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    let load_thread = {
        let (lo, keys, value) = (load_opts(o), Arc::clone(&keys), value.clone());
        let w = Window::until(Arc::clone(&stop));
        std::thread::spawn(move || workload::run_sessions(clients, &lo, keys, &value, w))
    };
    std::thread::sleep(BASELINE);
    let healed = Instant::now();
    bench.cluster.heal(lagging);
    let caught_up = wait_stats(&bench, lagging, LEADER_WAIT, |s| s.server.serving);
    let sync = healed.elapsed();
    std::thread::sleep(BASELINE);
    stop.store(true, Ordering::Release);
    let results = load_thread
        .join()
        .map_err(|_| BenchError::Setup("load thread panicked".into()))??;
    caught_up?;
    let epoch_after = epoch(leader).unwrap_or(epoch_before);
    let mut rep = Report::new(o);
    rep.measured_s = t0.elapsed().as_secs_f64();
    workload::fold(&mut rep, &results);
    rep.push("znodes", o.znodes);
    rep.push("load_s", load.as_secs_f64());
    rep.push("snap_sync_ms", ms(sync));
    rep.push(
        "elections",
        u64::from(epoch_after.saturating_sub(epoch_before)),
    );
    rep.push("leader_kept", bench.cluster.leader() == Some(leader));
    rep.push("write_max_ms", rep.latency.max() as f64 / 1e6);
    bench.cluster.shutdown();
    Ok(rep)
}

//! A follower that was away rejoins under a write load on the leader.
//!
//! - `snap-sync`: it fell behind the leader's DIFF window while the tree is large, so
//!   it rejoins by SNAP (the DIFF from the leader's log is off in this scenario).
//! - `catch-up`: it missed `--behind` txns, within the window by default, so it
//!   rejoins by DIFF; `--commit-log-txns 500` (ZooKeeper's in-memory window) shows
//!   the same outage synced by a DIFF read from the leader's log, and adding
//!   `--no-diff-from-log` what it costs with a SNAP.
//!
//! Reported: `snap_sync_ms` / `catch_up_ms` (from the heal until the follower serves
//! again, which it can only after its sync), `snap_used` (whether it installed a
//! snapshot), `log_entries_read` (what the leader read from its log for the sync),
//! `elections` (leader epochs started meanwhile: 0 unless the sync
//! disturbed the ensemble), `leader_kept`, and the load's latency (`write_max_ms` is
//! the longest write, the stall a sync puts on the leader).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::opts::{Attach, Options};
use crate::report::Report;
use crate::scenario::{load_opts, ms, push_past_window, set_many, wait_stats};
use crate::setup::{self, LEADER_WAIT};
use crate::workload::{self, Window};
use crate::BenchError;

/// Load before the heal, so that the latency covers the sync and not only the start.
const BASELINE: Duration = Duration::from_millis(300);

/// What the lagging follower misses while it is away.
#[derive(Debug, Clone, Copy)]
enum Away {
    /// More than the DIFF window, with the load already running when it returns.
    PastWindow,
    /// This many setData txns; the load starts as it returns.
    Txns(usize),
}

/// Runs `snap-sync` (see the module docs).
pub fn run(o: &Options) -> Result<Report, BenchError> {
    rejoin(o, Away::PastWindow)
}

/// Runs `catch-up` (see the module docs).
pub fn catch_up(o: &Options) -> Result<Report, BenchError> {
    rejoin(o, Away::Txns(o.behind))
}

/// The statistics of every running node that answers.
fn all_stats(b: &setup::Bench) -> Vec<ensemble::NodeStats> {
    b.cluster
        .ids()
        .into_iter()
        .filter_map(|i| b.cluster.stats(i))
        .collect()
}

fn rejoin(o: &Options, away: Away) -> Result<Report, BenchError> {
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
    let snaps_before = bench
        .cluster
        .stats(lagging)
        .map_or(0, |s| s.server.snapshots_installed);
    let read = |b: &setup::Bench| {
        b.cluster
            .stats(leader)
            .map_or(0, |s| s.server.log_entries_read)
    };
    let read_before = read(&bench);
    let snapshots = |b: &setup::Bench| -> u64 { all_stats(b).iter().map(|s| s.snapshots).sum() };
    bench.cluster.partition(lagging);
    match away {
        Away::PastWindow => push_past_window(&admin, o)?,
        Away::Txns(n) => set_many(&admin, &setup::key_path(0), n, &value)?,
    }
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
    let cpu_at_start = crate::host::sample();
    let load_thread = {
        let (lo, keys, value) = (load_opts(o), Arc::clone(&keys), value.clone());
        let w = Window::until(Arc::clone(&stop));
        std::thread::spawn(move || workload::run_sessions(clients, &lo, keys, &value, w))
    };
    if matches!(away, Away::PastWindow) {
        std::thread::sleep(BASELINE);
    }
    let snaps_taken_before = snapshots(&bench);
    let healed = Instant::now();
    bench.cluster.heal(lagging);
    let caught_up = wait_stats(&bench, lagging, LEADER_WAIT, |s| s.server.serving);
    let sync = healed.elapsed();
    std::thread::sleep(BASELINE);
    stop.store(true, Ordering::Release);
    let results = load_thread
        .join()
        .map_err(|_| BenchError::Setup("load thread panicked".into()))??;
    let cpu_at_end = crate::host::sample();
    let snapshotting_at_end = all_stats(&bench)
        .iter()
        .filter(|s| s.snapshot_in_progress)
        .count();
    caught_up?;
    let epoch_after = epoch(leader).unwrap_or(epoch_before);
    let mut rep = Report::new(o);
    rep.measured_s = t0.elapsed().as_secs_f64();
    workload::fold(&mut rep, &results);
    rep.push("znodes", o.znodes);
    rep.push("load_s", load.as_secs_f64());
    let key = match away {
        Away::PastWindow => "snap_sync_ms",
        Away::Txns(_) => "catch_up_ms",
    };
    rep.push(key, ms(sync));
    let snaps_after = bench
        .cluster
        .stats(lagging)
        .map_or(snaps_before, |s| s.server.snapshots_installed);
    rep.push("snap_used", snaps_after > snaps_before);
    rep.push("log_entries_read", read(&bench).saturating_sub(read_before));
    rep.push(
        "elections",
        u64::from(epoch_after.saturating_sub(epoch_before)),
    );
    rep.push("leader_kept", bench.cluster.leader() == Some(leader));
    // The host's share over the load: a stall with high steal is the VM's.
    crate::host::report(
        &mut rep,
        cpu_at_start
            .zip(cpu_at_end)
            .and_then(|(a, b)| crate::host::between(&a, &b)),
    );
    rep.push("write_max_ms", rep.latency.max() as f64 / 1e6);
    rep.push(
        "snapshots_after_heal",
        snapshots(&bench).saturating_sub(snaps_taken_before),
    );
    rep.push("snapshotting_at_end", snapshotting_at_end);
    let step_max = all_stats(&bench)
        .iter()
        .map(|s| s.snapshot_stall_max_us)
        .max()
        .unwrap_or(0);
    rep.push("node_snapshot_step_max_us", step_max);
    // When the slowest write was issued, from the heal (negative: before it).
    if let Some((at, _)) = workload::slowest(&results) {
        let rel = if at >= healed {
            ms(at.duration_since(healed))
        } else {
            -ms(healed.duration_since(at))
        };
        rep.push("write_max_at_ms", rel);
    }
    bench.cluster.shutdown();
    Ok(rep)
}

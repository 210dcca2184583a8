//! Scenario benchmarks: failover, recovery, snapshot stall and memory.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ensemble::Client;

use crate::hist::Histogram;
use crate::opts::{Attach, Options, Workload};
use crate::report::Report;
use crate::setup::{self, Bench, LEADER_WAIT, LOAD_BATCH};
use crate::workload::{self, Window};
use crate::BenchError;

/// Value size of the writes that push a follower past the leader's DIFF window.
const PAST_WINDOW_VALUE: usize = 64 << 10;
/// How often scenario code polls node statistics.
const POLL: Duration = Duration::from_millis(2);
/// Writes after the snapshot in the recovery scenario (the log tail to replay).
const RECOVERY_TAIL_WRITES: usize = 10_000;

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Options of the background write load of a scenario.
pub(crate) fn load_opts(o: &Options) -> Options {
    let mut l = o.clone();
    l.workload = Workload::Set;
    l
}

/// Failover: a set load runs on every node; per trial the leader is killed and the
/// time until a write issued on a surviving node commits is measured; the killed node
/// is restarted and the cluster converges before the next trial.
pub fn failover(o: &Options) -> Result<Report, BenchError> {
    let mut bench = setup::start(o, None)?;
    let value = Bytes::from(vec![0x5a; o.value_size]);
    let admin = bench.client(bench.leader)?;
    setup::create_keys(&admin, o.keys.max(1), &value)?;
    setup::ensure(&admin, "/bench-probe")?;
    let _ = admin.close();
    bench.converge()?;
    let keys = Arc::new((0..o.keys.max(1)).map(setup::key_path).collect::<Vec<_>>());
    let mut times = Histogram::new();
    let mut trials_ms = Vec::new();
    // How long `Cluster::crash` itself took (stopping the node's threads); part of
    // each trial's time.
    let mut crash_ms = Vec::new();
    let mut rep = Report::new(o);
    let load_started = Instant::now();
    for _ in 0..o.trials.max(1) {
        let leader = bench
            .cluster
            .wait_for_leader(LEADER_WAIT)
            .ok_or_else(|| BenchError::Setup("no leader".into()))?;
        let survivor = bench
            .cluster
            .ids()
            .into_iter()
            .find(|i| *i != leader)
            .ok_or_else(|| BenchError::Setup("failover needs at least 2 nodes".into()))?;
        let probe = bench.client(survivor)?;
        let touch = || {
            probe
                .set_data("/bench-probe", value.clone(), -1)
                .map(|_| ())
        };
        if let Err(e) = touch() {
            setup::retry(&probe, e, touch)?;
        }
        // Background load on every node for the whole trial.
        let clients = bench.clients(Attach::All, o.sessions.max(1))?;
        let stop = Arc::new(AtomicBool::new(false));
        let load = {
            let (lo, keys, value) = (load_opts(o), Arc::clone(&keys), value.clone());
            let w = Window::until(Arc::clone(&stop));
            std::thread::spawn(move || workload::run_sessions(clients, &lo, keys, &value, w))
        };
        // Let the load settle, then kill the leader.
        std::thread::sleep(Duration::from_millis(200));
        let t_kill = Instant::now();
        bench.cluster.crash(leader);
        crash_ms.push(format!("{:.1}", ms(t_kill.elapsed())));
        let took = loop {
            if probe.set_data("/bench-probe", value.clone(), -1).is_ok() {
                break t_kill.elapsed();
            }
            if t_kill.elapsed() > LEADER_WAIT {
                rep.errors += 1;
                break t_kill.elapsed();
            }
            std::thread::sleep(Duration::from_micros(200));
        };
        stop.store(true, Ordering::Release);
        if let Ok(Ok(r)) = load.join() {
            workload::fold(&mut rep, &r);
        }
        times.record_duration(took);
        trials_ms.push(format!("{:.1}", ms(took)));
        let _ = probe.close();
        bench
            .cluster
            .restart(leader)
            .map_err(|e| BenchError::Setup(e.to_string()))?;
        bench.converge()?;
    }
    rep.measured_s = load_started.elapsed().as_secs_f64();
    rep.push("trials", o.trials.max(1));
    rep.push("failover_p50_ms", times.quantile(0.5) as f64 / 1e6);
    rep.push("failover_min_ms", times.min() as f64 / 1e6);
    rep.push("failover_max_ms", times.max() as f64 / 1e6);
    rep.push("failover_trials_ms", trials_ms.join(" "));
    rep.push("crash_call_ms", crash_ms.join(" "));
    rep.push("tick_ms", u64::from(o.tick_ms));
    rep.push("sync_limit_ticks", o.sync_limit_ticks);
    Ok(rep)
}

/// Txns a bulk load of `znodes` takes (multis of [`LOAD_BATCH`], plus the parents).
fn load_txns(znodes: usize) -> u64 {
    (znodes.div_ceil(LOAD_BATCH) + znodes.div_ceil(1000 * LOAD_BATCH) + 1) as u64
}

/// Waits until `f` holds for the statistics of node `id`.
pub(crate) fn wait_stats(
    bench: &Bench,
    id: u64,
    timeout: Duration,
    f: impl Fn(&ensemble::NodeStats) -> bool,
) -> Result<(), BenchError> {
    let deadline = Instant::now() + timeout;
    loop {
        if bench.cluster.stats(id).is_some_and(|s| f(&s)) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(BenchError::Setup(format!(
                "node {id}: condition not reached in {timeout:?}"
            )));
        }
        std::thread::sleep(POLL);
    }
}

/// How long snapshots may take to appear.
const SNAPSHOT_WAIT: Duration = Duration::from_secs(900);

/// Recovery: load `znodes`, let a snapshot be written mid-load, add a log tail, then
/// crash one follower (the only node with `--nodes 1`) and time its restart until it
/// serves again at the zxid it had.
pub fn recovery(o: &Options) -> Result<Report, BenchError> {
    let every = load_txns(o.znodes);
    let mut bench = setup::start(o, Some(every))?;
    let value = Bytes::from(vec![0x5a; o.value_size]);
    let admin = bench.client(bench.leader)?;
    let load = setup::populate(&admin, o.znodes, &value)?;
    let target = bench
        .cluster
        .ids()
        .into_iter()
        .find(|i| *i != bench.leader)
        .unwrap_or(bench.leader);
    wait_stats(&bench, target, SNAPSHOT_WAIT, |s| s.snapshots >= 1)?;
    // A log tail after the snapshot: single writes, fewer than a snapshot interval.
    let tail = RECOVERY_TAIL_WRITES.min(every as usize / 2).max(1);
    let mut inflight = std::collections::VecDeque::new();
    for i in 0..tail {
        let path = format!("/z/p0/n{}", i % o.znodes.clamp(1, LOAD_BATCH));
        inflight.push_back(admin.set_data_async(&path, value.clone(), -1));
        if inflight.len() >= 64 {
            if let Some(c) = inflight.pop_front() {
                if let Err(e) = c.wait() {
                    setup::retry(&admin, e, || Ok(()))?;
                }
            }
        }
    }
    for c in inflight {
        if let Err(e) = c.wait() {
            setup::retry(&admin, e, || Ok(()))?;
        }
    }
    let _ = admin.close();
    bench.converge()?;
    let zxid = bench
        .cluster
        .stats(target)
        .map(|s| s.server.applied_zxid)
        .ok_or_else(|| BenchError::Setup("no stats".into()))?;
    bench.cluster.crash(target);
    let t0 = Instant::now();
    bench
        .cluster
        .restart(target)
        .map_err(|e| BenchError::Setup(e.to_string()))?;
    let started = t0.elapsed();
    wait_stats(&bench, target, LEADER_WAIT, |s| {
        s.server.serving && s.server.applied_zxid >= zxid
    })?;
    let took = t0.elapsed();
    let mut rep = Report::new(o);
    rep.measured_s = took.as_secs_f64();
    rep.ops = 1;
    rep.latency.record_duration(took);
    rep.push("znodes", o.znodes);
    rep.push("load_s", load.as_secs_f64());
    rep.push("restarted_node", target);
    rep.push("log_tail_txns", tail);
    rep.push("recovery_ms", ms(took));
    rep.push("restart_call_ms", ms(started));
    Ok(rep)
}

/// Snapshot stall: load `znodes` with the snapshot interval set so that a snapshot
/// starts a few thousand writes later, run a write load through it, and report the
/// longest write latency and each node's longest snapshot step.
pub fn snapshot_stall(o: &Options) -> Result<Report, BenchError> {
    // Writes before the snapshot starts (a baseline inside the same run).
    let before = (o.znodes as u64 / 300).clamp(50, 3_000);
    // Each node snapshots between every/2 and every txns (at a point derived from its
    // id, so they do not all snapshot at once): all of them after the load.
    let first = load_txns(o.znodes) + before;
    let every = 2 * first;
    let mut bench = setup::start(o, Some(every))?;
    let value = Bytes::from(vec![0x5a; o.value_size]);
    let admin = bench.client(bench.leader)?;
    let load = setup::populate(&admin, o.znodes, &value)?;
    setup::create_keys(&admin, o.keys.max(1), &value)?;
    let _ = admin.close();
    bench.converge()?;
    let keys = Arc::new((0..o.keys.max(1)).map(setup::key_path).collect::<Vec<_>>());
    let clients = bench.clients(o.attach, o.sessions.max(1))?;
    let stop = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    let load_thread = {
        let (lo, keys, value) = (load_opts(o), Arc::clone(&keys), value.clone());
        let mut w = Window::until(Arc::clone(&stop));
        w.trace = true;
        std::thread::spawn(move || workload::run_sessions(clients, &lo, keys, &value, w))
    };
    let ids = bench.cluster.running();
    // The first snapshot can start when the leader has applied `first` txns (the
    // counter starts with the cluster); the window ends when every node has one.
    let leader = bench.leader;
    let waited_start = wait_stats(&bench, leader, SNAPSHOT_WAIT, |s| {
        s.server.applied_txns >= first || s.snapshots >= 1
    });
    let snap_start = Instant::now();
    let cpu_at_start = crate::host::sample();
    let mut waited = waited_start;
    for id in &ids {
        waited = waited.and(wait_stats(&bench, *id, SNAPSHOT_WAIT, |s| s.snapshots >= 1));
    }
    let snap_end = Instant::now();
    let cpu_during = cpu_at_start
        .zip(crate::host::sample())
        .and_then(|(a, b)| crate::host::between(&a, &b));
    let snap_done = t0.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Release);
    let results = load_thread
        .join()
        .map_err(|_| BenchError::Setup("load thread panicked".into()))??;
    waited?;
    let (mut base, mut during, mut after) = (Histogram::new(), Histogram::new(), Histogram::new());
    for (t, ns) in results.iter().flat_map(|r| r.trace.iter()) {
        // An op issued before the start but still running at it overlaps the snapshot.
        let end = *t + Duration::from_nanos(*ns);
        if end < snap_start {
            base.record(*ns);
        } else if *t <= snap_end {
            during.record(*ns);
        } else {
            after.record(*ns);
        }
    }
    let mut rep = Report::new(o);
    rep.measured_s = t0.elapsed().as_secs_f64();
    workload::fold(&mut rep, &results);
    let stall = ids
        .iter()
        .filter_map(|id| bench.cluster.stats(*id).map(|s| s.snapshot_stall_max_us))
        .max()
        .unwrap_or(0);
    rep.push("znodes", o.znodes);
    rep.push("load_s", load.as_secs_f64());
    rep.push("snapshot_done_s", snap_done.as_secs_f64());
    rep.push("node_snapshot_step_max_us", stall);
    rep.push("write_stall_max_ms", rep.latency.max() as f64 / 1e6);
    rep.push("snapshot_s", (snap_end - snap_start).as_secs_f64());
    rep.push("longest_writes", longest_writes(&results, snap_start, 5));
    // The VM's share while the snapshots ran: a stall at high steal is the host's.
    // (Left out when the window was shorter than one 10 ms tick of the counters.)
    if let Some(u) = cpu_during {
        rep.push("snapshot_host_idle_pct", u.idle_pct);
        rep.push("snapshot_host_steal_pct", u.steal_pct);
    }
    for (name, h) in [("before", &base), ("during", &during), ("after", &after)] {
        rep.push(&format!("{name}_ops"), h.count());
        rep.push(&format!("{name}_p99_us"), h.quantile(0.99) as f64 / 1e3);
        rep.push(&format!("{name}_max_us"), h.max() as f64 / 1e3);
    }
    bench.cluster.shutdown();
    Ok(rep)
}

/// The `n` longest writes as `<ms>@<seconds from snap_start>`, longest first (where
/// in the snapshot the pauses fall tells a step, a sync and a purge apart).
fn longest_writes(results: &[workload::SessionResult], snap_start: Instant, n: usize) -> String {
    let mut all: Vec<(Instant, u64)> = results
        .iter()
        .flat_map(|r| r.trace.iter().copied())
        .collect();
    all.sort_unstable_by_key(|x| std::cmp::Reverse(x.1));
    let at = |t: Instant| match t.checked_duration_since(snap_start) {
        Some(d) => d.as_secs_f64(),
        None => -snap_start.duration_since(t).as_secs_f64(),
    };
    all.iter()
        .take(n)
        .map(|(t, ns)| format!("{:.1}@{:+.2}s", *ns as f64 / 1e6, at(*t)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The resident set size of this process in bytes (Linux `/proc/self/status`).
pub fn rss_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Memory: resident bytes per znode per replica after loading `znodes` znodes of
/// `value_size` bytes (all replicas live in this process).
pub fn memory(o: &Options) -> Result<Report, BenchError> {
    let bench = setup::start(o, None)?;
    let admin = bench.client(bench.leader)?;
    setup::ensure(&admin, "/warm")?;
    bench.converge()?;
    std::thread::sleep(Duration::from_millis(200));
    let before = rss_bytes().ok_or_else(|| BenchError::Setup("no /proc/self/status".into()))?;
    let value = Bytes::from(vec![0x5a; o.value_size]);
    let load = setup::populate(&admin, o.znodes, &value)?;
    bench.converge()?;
    let loaded = rss_bytes().unwrap_or(before);
    // Every node keeps its newest committed entries for DIFF sync (4 MiB by default,
    // the last of the bulk load's multis here): part of a node's steady state, so
    // counted (~4 bytes per znode per replica at 1M znodes). Freed memory the
    // allocator has not yet returned to the OS (mimalloc purges lazily) counts too.
    let _ = admin.close();
    bench.converge()?;
    std::thread::sleep(Duration::from_millis(500));
    let after = rss_bytes().unwrap_or(before);
    let replicas = bench.cluster.running().len().max(1) as f64;
    let per = after.saturating_sub(before) as f64 / (o.znodes.max(1) as f64 * replicas);
    let counts: Vec<String> = bench
        .cluster
        .running()
        .iter()
        .filter_map(|id| {
            bench
                .cluster
                .stats(*id)
                .map(|s| s.server.znode_count.to_string())
        })
        .collect();
    let mut rep = Report::new(o);
    rep.measured_s = load.as_secs_f64();
    rep.ops = o.znodes as u64;
    rep.push("znodes", o.znodes);
    rep.push("replicas", replicas);
    rep.push("znode_counts", counts.join(" "));
    rep.push("rss_before_mib", before as f64 / 1048576.0);
    rep.push("rss_loaded_mib", loaded as f64 / 1048576.0);
    rep.push("rss_after_mib", after as f64 / 1048576.0);
    rep.push("bytes_per_znode", per);
    rep.push("overhead_per_znode", per - o.value_size as f64);
    Ok(rep)
}

/// More payload bytes than the DIFF window keeps (`o.commit_log_bytes`, or the
/// node's default), written to `/warm`: a follower that missed them is behind every
/// leader's window, so only a SNAP can bring it up to date.
pub(crate) fn push_past_window(admin: &Client, o: &Options) -> Result<(), BenchError> {
    let bound = o
        .commit_log_bytes
        .unwrap_or(ensemble::deps::zab_core::COMMIT_LOG_MAX_BYTES_DEFAULT);
    let value = Bytes::from(vec![0x77; PAST_WINDOW_VALUE]);
    set_many(admin, "/warm", bound / PAST_WINDOW_VALUE + 2, &value)
}

/// `n` setData of `value` to `path`, at most 64 in flight.
pub(crate) fn set_many(
    admin: &Client,
    path: &str,
    n: usize,
    value: &Bytes,
) -> Result<(), BenchError> {
    let mut inflight = std::collections::VecDeque::new();
    for _ in 0..n {
        inflight.push_back(admin.set_data_async(path, value.clone(), -1));
        if inflight.len() >= 64 {
            if let Some(c) = inflight.pop_front() {
                if let Err(e) = c.wait() {
                    setup::retry(admin, e, || Ok(()))?;
                }
            }
        }
    }
    for c in inflight {
        if let Err(e) = c.wait() {
            setup::retry(admin, e, || Ok(()))?;
        }
    }
    Ok(())
}

/// Memory of a bare tree: resident bytes per znode after applying `znodes` creates of
/// `value_size` bytes (the same shape as the cluster load) to a `DataTree` directly.
/// Subtracting this from [`memory`] gives what the rest of a node costs per znode.
pub fn memory_tree(o: &Options) -> Result<Report, BenchError> {
    use ensemble::deps::datatree::{CreateTxn, DataTree, NodeKind, SessionId, Txn, TxnOp};
    let before = rss_bytes().ok_or_else(|| BenchError::Setup("no /proc/self/status".into()))?;
    let t = Instant::now();
    let mut tree = DataTree::new();
    let value = Bytes::from(vec![0x5a; o.value_size]);
    let parents = o.znodes.div_ceil(1000).max(1);
    let mut zxid = 0i64;
    let mut create = |tree: &mut DataTree, path: String, data: Bytes, parent_creates: i32| {
        zxid += 1;
        let txn = Txn {
            zxid,
            time_ms: 0,
            op: TxnOp::Create(CreateTxn {
                path,
                data,
                acl: ensemble::Acl::open_unsafe(),
                kind: NodeKind::Persistent,
                owner: SessionId(0),
                ttl_ms: 0,
                parent_creates,
            }),
        };
        tree.apply(&txn)
            .map(|_| ())
            .map_err(|e| BenchError::Setup(e.to_string()))
    };
    create(&mut tree, "/z".into(), Bytes::new(), 1)?;
    for p in 0..parents {
        create(&mut tree, format!("/z/p{p}"), Bytes::new(), p as i32 + 1)?;
    }
    for i in 0..o.znodes {
        let creates = (i % 1000) as i32 + 1;
        create(
            &mut tree,
            format!("/z/p{}/n{i}", i / 1000),
            value.clone(),
            creates,
        )?;
    }
    let took = t.elapsed();
    let after = rss_bytes().unwrap_or(before);
    let per = after.saturating_sub(before) as f64 / o.znodes.max(1) as f64;
    let mut rep = Report::new(o);
    rep.measured_s = took.as_secs_f64();
    rep.ops = o.znodes as u64;
    rep.push("znodes", tree.node_count());
    rep.push("rss_before_mib", before as f64 / 1048576.0);
    rep.push("rss_after_mib", after as f64 / 1048576.0);
    rep.push("bytes_per_znode", per);
    rep.push("overhead_per_znode", per - o.value_size as f64);
    drop(tree);
    Ok(rep)
}

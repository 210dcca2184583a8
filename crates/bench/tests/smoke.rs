//! Smoke tests: every workload and scenario runs briefly on an in-memory 3-node
//! cluster and reports the JSON fields with some operations done. No timing
//! is asserted (speed targets are for the benchmark runs, not the test suite).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ensemble_bench::{run, Options, Workload};

const FIELDS: [&str; 12] = [
    "workload",
    "nodes",
    "storage",
    "fsync",
    "sessions",
    "outstanding",
    "ops_per_s",
    "p50_us",
    "p99_us",
    "p999_us",
    "max_us",
    "errors",
];

fn quick(w: Workload) -> Options {
    let mut o = Options::defaults();
    o.workload = w;
    o.tick_ms = 10;
    if w == Workload::Failover {
        // What that scenario measures: keep failure detection fast.
        o.sync_limit_ticks = 20;
        o.init_limit_ticks = 50;
    } else {
        // 1 s / 2 s: a loaded machine does not cause spurious elections mid-run.
        o.sync_limit_ticks = 100;
        o.init_limit_ticks = 200;
    }
    // The measured window opens before the session threads start: long enough that
    // they issue operations inside it even on a loaded machine.
    o.duration = 1.0;
    o.warmup = 0.0;
    o.sessions = 2;
    o.outstanding = 4;
    o.keys = 50;
    o.znodes = 3_000;
    o.trials = 1;
    o
}

fn check(o: &Options) -> String {
    let rep = run(o).unwrap();
    let j = rep.to_json();
    for k in FIELDS {
        assert!(j.contains(&format!("\"{k}\":")), "{k} missing in {j}");
    }
    assert!(
        j.contains(&format!("\"workload\":\"{}\"", o.workload.name())),
        "{j}"
    );
    assert!(rep.ops > 0, "no operations: {j}");
    assert!(rep.ops_per_s() > 0.0, "{j}");
    j
}

#[test]
fn set_get_mixed() {
    for w in [Workload::Set, Workload::Get, Workload::Mixed] {
        let j = check(&quick(w));
        // The host's CPU fields, wherever Linux's /proc is there to read.
        if std::path::Path::new("/proc/stat").exists() {
            for k in [
                "cpu_us_per_op",
                "process_cpus",
                "host_busy_pct",
                "host_idle_pct",
                "host_steal_pct",
                "host_other_cpus",
            ] {
                assert!(j.contains(&format!("\"{k}\":")), "{k} missing in {j}");
            }
        }
    }
}

#[test]
fn create_delete_and_watch() {
    check(&quick(Workload::CreateDelete));
    let j = check(&quick(Workload::Watch));
    assert!(j.contains("\"notify_p50_us\":"), "{j}");
}

#[test]
fn failover_reports_a_time() {
    let j = check(&quick(Workload::Failover));
    assert!(j.contains("\"failover_p50_ms\":"), "{j}");
}

#[test]
fn recovery_snapshot_stall_and_memory() {
    let j = check(&quick(Workload::Recovery));
    assert!(j.contains("\"recovery_ms\":"), "{j}");
    let j = check(&quick(Workload::SnapshotStall));
    assert!(j.contains("\"node_snapshot_step_max_us\":"), "{j}");
    let j = check(&quick(Workload::Memory));
    assert!(j.contains("\"bytes_per_znode\":"), "{j}");
    let j = check(&quick(Workload::MemoryTree));
    assert!(j.contains("\"bytes_per_znode\":"), "{j}");
}

#[test]
fn snap_sync_reports_its_time_and_elections() {
    let j = check(&quick(Workload::SnapSync));
    for k in [
        "snap_sync_ms",
        "elections",
        "leader_kept",
        "write_max_ms",
        "write_max_at_ms",
        "snapshots_after_heal",
    ] {
        assert!(j.contains(&format!("\"{k}\":")), "{k} missing in {j}");
    }
    assert!(j.contains("\"snap_used\":true"), "{j}");
}

#[test]
fn catch_up_is_a_diff_within_the_window_a_log_diff_beyond_it_or_a_snap() {
    let mut o = quick(Workload::CatchUp);
    o.behind = 2_000;
    let j = check(&o);
    assert!(j.contains("\"catch_up_ms\":"), "{j}");
    assert!(j.contains("\"snap_used\":false"), "{j}");
    assert!(j.contains("\"log_entries_read\":0"), "{j}");
    // The same outage with ZooKeeper's window of 500 txns: read from the log.
    o.commit_log_txns = Some(500);
    let j = check(&o);
    assert!(j.contains("\"snap_used\":false"), "{j}");
    assert!(!j.contains("\"log_entries_read\":0"), "{j}");
    // ... or a SNAP when the leader may not read it.
    o.no_diff_from_log = true;
    let j = check(&o);
    assert!(j.contains("\"snap_used\":true"), "{j}");
}

/// The exact invocation (shortened, and with fast ticks): the last line of
/// output is one JSON object.
#[test]
fn binary_prints_json_last() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ensemble-bench"))
        .args([
            "--workload",
            "set",
            "--nodes",
            "3",
            "--storage",
            "file",
            "--fsync",
            "--outstanding",
            "32",
            "--sessions",
            "8",
            "--duration",
            "1.0",
            "--json",
            "--warmup",
            "0",
            "--tick-ms",
            "10",
            "--sync-limit-ticks",
            "100",
            "--init-limit-ticks",
            "200",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let last = stdout.lines().last().unwrap();
    assert!(last.starts_with('{') && last.ends_with('}'), "{last}");
    for k in FIELDS {
        assert!(last.contains(&format!("\"{k}\":")), "{k} missing in {last}");
    }
    assert!(
        last.contains("\"storage\":\"file\",\"fsync\":true"),
        "{last}"
    );
    assert!(!last.contains("\"ops\":0,"), "{last}");
}

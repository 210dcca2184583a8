//! The seeded simulation over 3, 5 and 7 servers (with observers).
//!
//! - default: a fixed small set of seeds per shape (CI);
//! - `SIM_SEEDS=<n>`: `n` seeds per shape, from `SIM_FIRST_SEED` (default 0);
//! - `SIM_SEED=<s>`: replay one seed on every shape (prints its report).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ensemble_sim::{Faults, RandomWorkload, Simulation};

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn seeds(default: u64) -> (u64, u64) {
    if let Some(s) = env_u64("SIM_SEED") {
        return (s, 1);
    }
    (
        env_u64("SIM_FIRST_SEED").unwrap_or(0),
        env_u64("SIM_SEEDS").unwrap_or(default),
    )
}

fn run(sim: &Simulation<RandomWorkload>, default: u64) {
    let (first, count) = seeds(default);

    // SIM_KEEP_GOING=1: run every seed and print one line per failure.
    let keep_going = std::env::var("SIM_KEEP_GOING").is_ok();
    let mut passed = 0;
    let mut failed = Vec::new();
    for seed in first..first + count {
        match sim.run(seed) {
            Ok(report) => {
                passed += 1;
                println!("{report}");
            }
            Err(failure) if keep_going => {
                let mut checks: Vec<&str> = failure
                    .violations
                    .iter()
                    .map(|v| v.check.as_str())
                    .collect();
                checks.dedup();
                println!(
                    "seed {seed}: FAILED [{}] {}",
                    checks.join(","),
                    failure.violations[0].message.lines().next().unwrap_or("")
                );
                failed.push(seed);
            }
            Err(failure) => panic!("{failure}\n({passed} seeds passed before it)"),
        }
    }
    println!("{passed} seeds passed, failed: {failed:?}");
    assert!(failed.is_empty(), "failing seeds: {failed:?}");
}

#[test]
fn three_servers() {
    run(&Simulation::new(3), 4);
}

#[test]
fn five_servers_one_observer() {
    run(&Simulation::new(5).observers(1).clients(5), 2);
}

#[test]
fn seven_servers_two_observers() {
    run(
        &Simulation::new(7)
            .observers(2)
            .clients(6)
            .duration_ms(4_000),
        1,
    );
}

#[test]
fn calm_runs_lose_no_session() {
    run(
        &Simulation::new(3).faults(Faults::none()).duration_ms(3_000),
        2,
    );
}

/// Frames reordered or duplicated within a link: beyond the FIFO, exactly-once
/// channels ZAB assumes (TCP). zab-core resyncs on gaps and the leader drops forwarded
/// requests that are not newer than the last one of their connection, so nothing may
/// commit twice or out of issue order (80 seeds passed with `SIM_SEEDS=80`).
#[test]
fn reordering_and_duplicating_links() {
    run(
        &Simulation::new(3).faults(Faults {
            reorder: true,
            duplicates: true,
            ..Faults::none()
        }),
        10,
    );
}

//! The checkers catch real protocol bugs: each test breaks the simulated shell on
//! purpose (a [`Sabotage`]) and asserts that the simulator reports a violation within
//! a bounded number of seeds. The correct shell passes the same seeds (see `seeds.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ensemble_sim::{Faults, Sabotage, Simulation};

/// Runs seeds until one fails; returns the failing seed and the checkers that fired.
fn first_failure(sim: &Simulation<ensemble_sim::RandomWorkload>, seeds: u64) -> (u64, Vec<String>) {
    for seed in 0..seeds {
        let r = sim.run(seed);
        if let Ok(report) = &r {
            println!("{report}");
        }
        if let Err(f) = r {
            let mut checks: Vec<String> = f.violations.iter().map(|v| v.check.clone()).collect();
            checks.sort();
            checks.dedup();
            println!("seed {seed} caught it: {checks:?}\n{f}");
            return (seed, checks);
        }
    }
    panic!("no violation within {seeds} seeds");
}

fn crashy() -> Faults {
    Faults {
        crashes: true,
        power_loss: true,
        ..Faults::none()
    }
}

#[test]
fn ack_before_durable_loses_acknowledged_writes() {
    let sim = Simulation::new(3)
        .faults(Faults {
            crashes: false,
            ..crashy()
        })
        .duration_ms(3_000)
        .sabotage(Sabotage::AckBeforeDurable);
    let (_, checks) = first_failure(&sim, 10);
    assert!(!checks.is_empty());
}

#[test]
fn skipping_truncate_resurrects_uncommitted_entries() {
    let sim = Simulation::new(3)
        .faults(Faults {
            partitions: true,
            ..crashy()
        })
        .duration_ms(4_000)
        // Without snapshots a restarted server re-applies its whole log, stale
        // entries included.
        .snapshot_every_txns(0)
        .sabotage(Sabotage::SkipTruncate);
    let (_, checks) = first_failure(&sim, 20);
    assert!(!checks.is_empty());
}

#[test]
fn forgetting_epochs_is_caught_by_the_zab_checker() {
    let sim = Simulation::new(3)
        .faults(crashy())
        .duration_ms(3_000)
        .sabotage(Sabotage::ForgetEpochs);
    let (_, checks) = first_failure(&sim, 10);
    assert!(checks.iter().any(|c| c == "zab"), "{checks:?}");
}

#[test]
fn purging_the_log_without_a_snapshot_loses_committed_txns() {
    let sim = Simulation::new(3)
        .faults(Faults {
            crashes: false,
            ..crashy()
        })
        .duration_ms(3_000)
        .snapshot_every_txns(16)
        .sabotage(Sabotage::PurgeWithoutSnapshot);
    let (_, checks) = first_failure(&sim, 10);
    assert!(!checks.is_empty());
}

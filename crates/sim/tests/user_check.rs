//! A user invariant is checked after every step and a failing one is reported with
//! its name and the seed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ensemble_sim::{Check, ClusterView, Faults, RandomWorkload, Simulation};

/// Deliberately false once the cluster works: "no server ever serves".
struct NobodyServes;

impl Check<RandomWorkload> for NobodyServes {
    fn name(&self) -> &str {
        "nobody-serves"
    }
    fn check(&mut self, _w: &RandomWorkload, view: &ClusterView<'_>) -> Result<(), String> {
        match view
            .servers
            .iter()
            .find(|s| s.server.is_some_and(|s| s.is_serving()))
        {
            Some(s) => Err(format!("server {} serves", s.id)),
            None => Ok(()),
        }
    }
}

#[test]
fn a_failing_user_check_is_reported_with_its_name_and_seed() {
    let sim = Simulation::new(3)
        .faults(Faults::none())
        .duration_ms(500)
        .check(|| Box::new(NobodyServes));
    let failure = sim.run(7).unwrap_err();
    assert_eq!(failure.seed, 7);
    assert_eq!(failure.violations[0].check, "nobody-serves");
    let text = failure.to_string();
    assert!(text.contains("SIM_SEED=7"), "{text}");
    assert!(text.contains("last events"), "{text}");
}

#[test]
fn a_run_replays_exactly_from_its_seed() {
    let sim = Simulation::new(3).duration_ms(1_500);
    let a = sim.run(42).unwrap();
    let b = sim.run(42).unwrap();
    assert_eq!(a.stats, b.stats);
    assert_eq!(a.faults, b.faults);
}

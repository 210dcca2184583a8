//! The nemesis: a schedule of faults drawn from the seed before the run starts.

use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use transport::mem::LinkFaults;

use crate::config::Faults;

/// One fault action at a point in virtual time.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Split the servers into these groups.
    Partition(Vec<Vec<u64>>),
    /// Cut `from → to` only.
    OneWay(u64, u64),
    /// Two sides connected only through one bridge server.
    Bridge {
        /// The bridge.
        bridge: u64,
        /// One side.
        left: Vec<u64>,
        /// The other side.
        right: Vec<u64>,
    },
    /// Remove every partition.
    Heal,
    /// Crash a server (it restarts with [`Fault::Restart`]).
    Crash(u64),
    /// Restart a crashed server.
    Restart(u64),
    /// Crash these servers at once.
    PowerLoss(Vec<u64>),
    /// Restart these servers.
    PowerBack(Vec<u64>),
    /// Pause a server for a while (ms).
    Pause(u64, u64),
    /// Set these faults on every link.
    Links(LinkFaults),
    /// Back to perfect links.
    CalmLinks,
    /// A client stops heartbeating for a while (ms).
    ClientSilent(usize, u64),
}

/// The schedule: (time µs, fault), sorted by time.
#[derive(Debug, Clone, Default)]
pub struct Schedule {
    /// The faults, in time order.
    pub faults: Vec<(u64, Fault)>,
    /// The kinds this seed uses.
    pub kinds: Vec<&'static str>,
}

/// Draws a schedule over `duration_us` for servers `1..=servers` and `clients`
/// clients. Each seed uses a random non-empty subset of the enabled kinds.
pub fn schedule(
    rng: &mut ChaCha8Rng,
    faults: &Faults,
    servers: u64,
    clients: usize,
    duration_us: u64,
) -> Schedule {
    let mut kinds: Vec<&'static str> = faults
        .names()
        .into_iter()
        .filter(|k| !matches!(*k, "tick-skew" | "narrow-zxid"))
        .filter(|_| rng.gen_bool(0.6))
        .collect();
    if kinds.is_empty() {
        let all: Vec<&'static str> = faults
            .names()
            .into_iter()
            .filter(|k| !matches!(*k, "tick-skew" | "narrow-zxid"))
            .collect();
        if let Some(k) = all.choose(rng) {
            kinds.push(k);
        }
    }
    let ids: Vec<u64> = (1..=servers).collect();
    let mut out = Vec::new();
    let mut t = rng.gen_range(100_000..400_000u64);
    let mut bound = 0;
    while t < duration_us && !kinds.is_empty() && bound < 10_000 {
        bound += 1;
        let Some(kind) = kinds.choose(rng).copied() else {
            break;
        };
        let len = rng.gen_range(100_000..1_500_000u64);
        let end = (t + len).min(duration_us);
        match kind {
            "partition" if servers > 1 => {
                let mut shuffled = ids.clone();
                shuffled.shuffle(rng);
                let cut = rng.gen_range(1..servers as usize);
                let (a, b) = shuffled.split_at(cut);
                out.push((t, Fault::Partition(vec![a.to_vec(), b.to_vec()])));
                out.push((end, Fault::Heal));
            }
            "one-way" if servers > 1 => {
                let a = ids[rng.gen_range(0..ids.len())];
                let mut b = ids[rng.gen_range(0..ids.len())];
                if a == b {
                    b = if a == servers { 1 } else { a + 1 };
                }
                out.push((t, Fault::OneWay(a, b)));
                out.push((end, Fault::Heal));
            }
            "bridge" if servers > 2 => {
                let mut shuffled = ids.clone();
                shuffled.shuffle(rng);
                let bridge = shuffled[0];
                let rest = &shuffled[1..];
                let cut = rng.gen_range(1..rest.len());
                out.push((
                    t,
                    Fault::Bridge {
                        bridge,
                        left: rest[..cut].to_vec(),
                        right: rest[cut..].to_vec(),
                    },
                ));
                out.push((end, Fault::Heal));
            }
            "crash" => {
                let id = ids[rng.gen_range(0..ids.len())];
                out.push((t, Fault::Crash(id)));
                out.push((end, Fault::Restart(id)));
            }
            "power-loss" => {
                let mut shuffled = ids.clone();
                shuffled.shuffle(rng);
                let k = rng.gen_range((servers as usize / 2 + 1).max(1)..=servers as usize);
                shuffled.truncate(k);
                shuffled.sort_unstable();
                out.push((t, Fault::PowerLoss(shuffled.clone())));
                out.push((t + len.min(300_000), Fault::PowerBack(shuffled)));
            }
            "pause" => {
                let id = ids[rng.gen_range(0..ids.len())];
                out.push((t, Fault::Pause(id, len / 1000)));
            }
            "lossy-links" | "duplicates" | "reorder" => {
                let dup = if kind == "duplicates" { 0.1 } else { 0.0 };
                let reorder = if kind == "reorder" { 0.2 } else { 0.0 };
                let f = LinkFaults {
                    drop_probability: rng.gen_range(0.0..0.2),
                    duplicate_probability: rng.gen_range(0.0..=dup),
                    reorder_probability: rng.gen_range(0.0..=reorder),
                    reorder_window_us: rng.gen_range(1..20_000),
                    delay_us: rng.gen_range(0..5_000),
                    jitter_us: rng.gen_range(0..20_000),
                };
                out.push((t, Fault::Links(f)));
                out.push((end, Fault::CalmLinks));
            }
            "client-expiry" if clients > 0 => {
                let c = rng.gen_range(0..clients);
                out.push((t, Fault::ClientSilent(c, rng.gen_range(800..3_000))));
            }
            _ => {}
        }
        // Usually the next fault starts after this one ended; sometimes they overlap
        // (a crash during a partition, a pause during lossy links...).
        t = if rng.gen_bool(0.3) {
            t + rng.gen_range(10_000..len.max(10_001))
        } else {
            end + rng.gen_range(50_000..600_000u64)
        };
    }
    out.sort_by_key(|(t, _)| *t);
    let mut all_kinds = kinds;
    if faults.tick_skew {
        all_kinds.push("tick-skew");
    }
    if faults.narrow_zxid {
        all_kinds.push("narrow-zxid");
    }
    Schedule {
        faults: out,
        kinds: all_kinds,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn schedules_replay_from_the_seed_and_stay_in_time() {
        let f = Faults::all();
        let a = schedule(&mut ChaCha8Rng::seed_from_u64(9), &f, 5, 3, 5_000_000);
        let b = schedule(&mut ChaCha8Rng::seed_from_u64(9), &f, 5, 3, 5_000_000);
        assert_eq!(a.faults, b.faults);
        assert!(a.faults.iter().all(|(t, _)| *t <= 5_000_000));
        assert!(a.faults.windows(2).all(|w| w[0].0 <= w[1].0));
    }

    #[test]
    fn no_faults_no_schedule() {
        let s = schedule(
            &mut ChaCha8Rng::seed_from_u64(1),
            &Faults::none(),
            3,
            2,
            5_000_000,
        );
        assert!(s.faults.is_empty());
    }
}

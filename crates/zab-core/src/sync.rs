//! Choosing how a leader synchronizes a learner: DIFF, TRUNC or SNAP.

use crate::log::Log;
use crate::zxid::Zxid;

/// How the leader brings a learner's log to a prefix of its own history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SyncPlan {
    /// The learner's last zxid is in the leader's window: send what follows it.
    Diff {
        /// The learner's last zxid, where the stream starts.
        from: Zxid,
    },
    /// The learner has entries the leader does not: keep up to `to`, then send what
    /// follows `to`.
    Trunc {
        /// Last zxid the learner keeps.
        to: Zxid,
    },
    /// The learner is behind the window: send a snapshot at the leader's commit
    /// point, then what follows it.
    Snap {
        /// The zxid the snapshot covers (the leader's commit point).
        at: Zxid,
    },
}

impl SyncPlan {
    /// Where the stream of proposals after the header starts.
    pub(crate) fn start(&self) -> Zxid {
        match *self {
            SyncPlan::Diff { from } => from,
            SyncPlan::Trunc { to } => to,
            SyncPlan::Snap { at } => at,
        }
    }
}

/// Plans the sync of a learner whose last logged zxid is `learner_last`.
///
/// Why this is safe (ZAB's prefix property): a learner's log is a prefix of some
/// established history, so its entries up to the last zxid it shares with the leader
/// (`floor`) equal the leader's. Everything it has beyond that point was never
/// committed, since the leader's history contains every committed txn; so TRUNC never
/// removes a committed txn (ZOOKEEPER-1156 truncated too much). SNAP is only chosen when
/// the learner is behind the window, hence at or behind the leader's commit point, so
/// the snapshot never replaces an entry the learner acknowledged and the leader lacks
/// (ZOOKEEPER-3642).
pub(crate) fn plan_sync(log: &Log, learner_last: Zxid) -> SyncPlan {
    if learner_last < log.base() {
        return SyncPlan::Snap {
            at: log.committed(),
        };
    }
    let shared = log.floor(learner_last);
    if shared == learner_last {
        SyncPlan::Diff { from: shared }
    } else {
        SyncPlan::Trunc { to: shared }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::Entry;
    use bytes::Bytes;

    fn log(base: Zxid, zs: &[(u32, u32)], committed: Zxid) -> Log {
        let entries = zs
            .iter()
            .map(|(e, c)| Entry {
                zxid: Zxid::new(*e, *c),
                payload: Bytes::new(),
            })
            .collect();
        Log::new(base, entries, committed, 100, usize::MAX)
    }

    #[test]
    fn plan_table() {
        let z = Zxid::new;
        // Leader window: base 1:2, entries 1:3 1:4 2:1 2:2, committed 2:1.
        let l = log(z(1, 2), &[(1, 3), (1, 4), (2, 1), (2, 2)], z(2, 1));
        let cases = [
            (z(2, 2), SyncPlan::Diff { from: z(2, 2) }), // identical
            (z(1, 4), SyncPlan::Diff { from: z(1, 4) }), // behind, in window
            (z(1, 2), SyncPlan::Diff { from: z(1, 2) }), // exactly at base
            (z(1, 5), SyncPlan::Trunc { to: z(1, 4) }),  // uncommitted tail of epoch 1
            (z(1, 9), SyncPlan::Trunc { to: z(1, 4) }),
            (z(2, 3), SyncPlan::Trunc { to: z(2, 2) }), // ahead of the leader
            (z(1, 1), SyncPlan::Snap { at: z(2, 1) }),  // behind the window
            (Zxid::ZERO, SyncPlan::Snap { at: z(2, 1) }),
        ];
        for (learner, want) in cases {
            assert_eq!(plan_sync(&l, learner), want, "learner at {learner:?}");
        }
        // An empty leader: everyone is a DIFF or a TRUNC to zero.
        let empty = log(Zxid::ZERO, &[], Zxid::ZERO);
        assert_eq!(
            plan_sync(&empty, Zxid::ZERO),
            SyncPlan::Diff { from: Zxid::ZERO }
        );
        assert_eq!(
            plan_sync(&empty, z(1, 1)),
            SyncPlan::Trunc { to: Zxid::ZERO }
        );
    }
}

#[cfg(test)]
mod model {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::messages::Entry;
    use bytes::Bytes;
    use proptest::prelude::*;

    fn entries(zs: &[Zxid]) -> Vec<Entry> {
        zs.iter()
            .map(|z| Entry {
                zxid: *z,
                payload: Bytes::new(),
            })
            .collect()
    }

    proptest! {
        /// Model: the leader's history `h` (epochs 1..=3), a learner holding a prefix of
        /// it plus a tail the leader never had (later counters of the epoch where they
        /// diverge, as ZAB allows). Applying the plan and the stream after it always
        /// leaves the learner with exactly the leader's history (beyond the snapshot).
        #[test]
        fn plan_then_stream_yields_the_leader_history(
            per_epoch in proptest::collection::vec(0u32..4, 3),
            shared in 0usize..12,
            extra in 0u32..3,
            base_at in 0usize..12,
            committed_at in 0usize..12,
        ) {
            let mut h = Vec::new();
            for (i, n) in per_epoch.iter().enumerate() {
                for c in 1..=*n {
                    h.push(Zxid::new(i as u32 + 1, c));
                }
            }
            let shared = shared.min(h.len());
            let mut learner: Vec<Zxid> = h[..shared].to_vec();
            // The learner's own tail: later counters in the epoch of its last shared
            // entry, which the leader's history skipped (its next entry, if any, is of
            // a later epoch).
            let last = learner.last().copied().unwrap_or(Zxid::ZERO);
            let next_epoch = h.get(shared).map_or(u32::MAX, |z| z.epoch);
            if last.epoch > 0 && next_epoch > last.epoch {
                for k in 1..=extra {
                    learner.push(Zxid::new(last.epoch, last.counter + k));
                }
            }
            let committed_at = committed_at.min(h.len());
            let base_at = base_at.min(committed_at);
            let idx = |i: usize| if i == 0 { Zxid::ZERO } else { h[i - 1] };
            let log = Log::new(idx(base_at), entries(&h[base_at..]), idx(committed_at), 100, usize::MAX);
            let learner_last = learner.last().copied().unwrap_or(Zxid::ZERO);
            let plan = plan_sync(&log, learner_last);
            let mut after: Vec<Zxid> = match plan {
                SyncPlan::Diff { from } => {
                    prop_assert_eq!(from, learner_last);
                    learner.clone()
                }
                SyncPlan::Trunc { to } => {
                    // Only entries the leader never had are cut (so nothing committed).
                    prop_assert!(learner.iter().filter(|z| **z > to).all(|z| !h.contains(z)));
                    learner.iter().copied().filter(|z| *z <= to).collect()
                }
                SyncPlan::Snap { at } => {
                    prop_assert!(learner_last < log.base());
                    prop_assert_eq!(at, log.committed());
                    h.iter().copied().filter(|z| *z <= at).collect()
                }
            };
            after.extend(log.range(plan.start(), log.last()).iter().map(|e| e.zxid));
            prop_assert_eq!(after, h);
        }
    }
}

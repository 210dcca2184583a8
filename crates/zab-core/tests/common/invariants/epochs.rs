//! Epochs never go backwards (Zab, discovery: a follower never accepts an epoch lower
//! than one it accepted, and `currentEpoch <= acceptedEpoch`), on disk and in memory,
//! across crashes.

use std::collections::BTreeMap;

use zab_core::ServerId;

use crate::common::Cluster;

#[derive(Default)]
pub struct EpochsMonotonic {
    seen: BTreeMap<ServerId, (u32, u32)>,
}

impl EpochsMonotonic {
    pub fn check(&mut self, c: &Cluster) -> Result<(), String> {
        for n in c.nodes.values() {
            let (acc, cur) = match n.status() {
                Some(s) => (s.accepted_epoch, s.current_epoch),
                None => (n.disk.accepted, n.disk.current),
            };
            if n.disk.current > n.disk.accepted || cur > acc {
                return Err(format!(
                    "{}: current epoch {cur} above accepted epoch {acc}",
                    n.id
                ));
            }
            let (pa, pc) = self.seen.get(&n.id).copied().unwrap_or((0, 0));
            if acc < pa || cur < pc {
                return Err(format!(
                    "{}: epochs went back from ({pa}, {pc}) to ({acc}, {cur})",
                    n.id
                ));
            }
            self.seen.insert(n.id, (acc, cur));
        }
        Ok(())
    }
}

//! Committed txns are never lost (Zab, "Primary order" across epochs, and the
//! invariant behind it: an established leader's initial history contains every txn
//! delivered anywhere before). Checked on the leader of the highest established epoch:
//! every txn delivered by any server is in its log (or in its applied state when it is
//! older than the in-memory window).

use std::collections::BTreeMap;

use zab_core::{Entry, Phase, Role, ServerId};

use crate::common::Cluster;

#[derive(Default)]
pub struct NoLoss {
    /// How much of the history was verified on each (leader, epoch).
    verified: BTreeMap<(ServerId, u32), usize>,
}

impl NoLoss {
    pub fn check(&mut self, c: &Cluster, history: &[Entry], max: u32) -> Result<(), String> {
        for n in c.nodes.values() {
            let (Some(core), Some(s)) = (n.core.as_ref(), n.status()) else {
                continue;
            };
            if s.role != Role::Leading || s.phase != Phase::Broadcast || s.leader_epoch < max {
                continue;
            }
            let done = self.verified.entry((n.id, s.leader_epoch)).or_insert(0);
            for (i, e) in history.iter().enumerate().skip(*done) {
                let held = if e.zxid > core.log_base() {
                    core.log_entry(e.zxid)
                } else {
                    n.applied.get(i)
                };
                if held != Some(e) {
                    return Err(format!(
                        "committed {:?} is missing from leader {} of epoch {} (has {:?})",
                        e.zxid,
                        n.id,
                        s.leader_epoch,
                        held.map(|x| x.zxid)
                    ));
                }
            }
            *done = history.len();
        }
        Ok(())
    }
}

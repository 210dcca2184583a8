//! Invariant checkers, one per file, each citing the ZAB property it checks
//! (Junqueira, Reed, Serafini: "Zab: High-performance broadcast for primary-backup
//! systems", section III).

pub mod agreement;
pub mod delivery_order;
pub mod epochs;
pub mod integrity;
pub mod no_loss;
pub mod one_leader;

use std::collections::BTreeMap;

use bytes::Bytes;
use zab_core::{Entry, ServerId, Zxid};

use super::Cluster;

/// All checkers together.
#[derive(Default)]
pub struct Invariants {
    pub one_leader: one_leader::OneLeaderPerEpoch,
    pub agreement: agreement::PrefixAgreement,
    pub order: delivery_order::DeliveryOrder,
    pub integrity: integrity::Integrity,
    pub no_loss: no_loss::NoLoss,
    pub epochs: epochs::EpochsMonotonic,
}

impl Invariants {
    /// State checks, after every step.
    pub fn check(&mut self, c: &Cluster) -> Result<(), String> {
        self.one_leader.check(c)?;
        self.epochs.check(c)?;
        self.no_loss
            .check(c, &self.agreement.history, self.one_leader.max_established)?;
        Ok(())
    }

    /// Delivery checks, on every `Commit` action.
    pub fn on_apply(
        &mut self,
        id: ServerId,
        prev: Zxid,
        entries: &[Entry],
        proposed: &BTreeMap<Zxid, Bytes>,
    ) -> Result<(), String> {
        self.order.on_apply(id, prev, entries)?;
        self.integrity.on_apply(id, entries, proposed)?;
        self.agreement.on_apply(id, entries)
    }

    /// A node's state machine was replaced (restart from snapshot, SNAP install).
    pub fn on_reset(&mut self, id: ServerId, applied: &[Entry]) {
        if let Err(v) = self.agreement.on_reset(id, applied) {
            panic!("{v}");
        }
    }
}

//! Local primary order without gaps (Zab, "Local primary order" and "Primary
//! integrity"): a server delivers txns in zxid order, and within an epoch with
//! consecutive counters starting at 1, so a txn is never skipped.

use zab_core::{Entry, ServerId, Zxid};

#[derive(Default)]
pub struct DeliveryOrder;

impl DeliveryOrder {
    pub fn on_apply(&mut self, id: ServerId, prev: Zxid, entries: &[Entry]) -> Result<(), String> {
        let mut last = prev;
        for e in entries {
            let z = e.zxid;
            let ok = if z.epoch == last.epoch {
                z.counter == last.counter + 1
            } else {
                z.epoch > last.epoch && z.counter == 1
            };
            if !ok {
                return Err(format!(
                    "{id} delivered {z:?} right after {last:?}: out of order or a gap"
                ));
            }
            last = z;
        }
        Ok(())
    }
}

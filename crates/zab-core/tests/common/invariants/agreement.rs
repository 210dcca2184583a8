//! Agreement and total order (Zab, "Agreement" and "Total order"): the sequences of txns
//! delivered by any two servers are prefixes of one another, so all servers agree on
//! the txn at every committed zxid.

use std::collections::BTreeMap;

use zab_core::{Entry, ServerId};

#[derive(Default)]
pub struct PrefixAgreement {
    /// The longest delivered sequence seen on any server.
    pub history: Vec<Entry>,
    applied: BTreeMap<ServerId, usize>,
}

impl PrefixAgreement {
    pub fn on_apply(&mut self, id: ServerId, entries: &[Entry]) -> Result<(), String> {
        let mut at = self.applied.get(&id).copied().unwrap_or(0);
        for e in entries {
            match self.history.get(at) {
                Some(h) if h != e => {
                    return Err(format!(
                        "{id} delivered {:?} at position {at} where {:?} was delivered before",
                        e.zxid, h.zxid
                    ));
                }
                Some(_) => {}
                None => self.history.push(e.clone()),
            }
            at += 1;
        }
        self.applied.insert(id, at);
        Ok(())
    }

    pub fn on_reset(&mut self, id: ServerId, applied: &[Entry]) -> Result<(), String> {
        for (i, e) in applied.iter().enumerate() {
            match self.history.get(i) {
                Some(h) if h != e => {
                    return Err(format!(
                        "{id} restored {:?} at position {i}, history has {:?}",
                        e.zxid, h.zxid
                    ))
                }
                Some(_) => {}
                None => self.history.push(e.clone()),
            }
        }
        self.applied.insert(id, applied.len());
        Ok(())
    }
}

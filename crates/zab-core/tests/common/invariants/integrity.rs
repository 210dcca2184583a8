//! Integrity (Zab, "Integrity"): a server delivers only txns that a leader proposed,
//! with the zxid the leader gave them.

use std::collections::BTreeMap;

use bytes::Bytes;
use zab_core::{Entry, ServerId, Zxid};

#[derive(Default)]
pub struct Integrity;

impl Integrity {
    pub fn on_apply(
        &mut self,
        id: ServerId,
        entries: &[Entry],
        proposed: &BTreeMap<Zxid, Bytes>,
    ) -> Result<(), String> {
        for e in entries {
            match proposed.get(&e.zxid) {
                Some(p) if *p == e.payload => {}
                Some(_) => {
                    return Err(format!(
                        "{id} delivered {:?} with a payload no leader proposed there",
                        e.zxid
                    ))
                }
                None => return Err(format!("{id} delivered {:?}, never proposed", e.zxid)),
            }
        }
        Ok(())
    }
}

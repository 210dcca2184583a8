//! FIFO client order (ZooKeeper guarantee): a connection's replies arrive in the
//! order its requests were sent, and a session's successful writes commit in the
//! order they were issued.

use std::collections::HashMap;

use ensemble::ConnId;

use crate::history::{Delivery, History};
use crate::reference::Reference;

const NAME: &str = "fifo";

/// Checks reply order per connection and commit order per connection.
pub fn check(history: &History, reference: &Reference) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for (c, stream) in history.streams.iter().enumerate() {
        let mut last_xid: HashMap<ConnId, u64> = HashMap::new();
        let mut last_commit: HashMap<ConnId, (u64, u64)> = HashMap::new();
        for item in stream {
            let Delivery::Reply(id) = item.what else {
                continue;
            };
            let Some(op) = history.op(id) else { continue };
            if let Some(prev) = last_xid.insert(item.conn, op.xid.0) {
                if op.xid.0 <= prev {
                    out.push((
                        NAME,
                        format!(
                            "c{c} conn{}: reply to xid{} after the reply to xid{prev}",
                            item.conn.0, op.xid.0
                        ),
                    ));
                }
            }
            if let Some(&zx) = reference.writes.get(&(op.server, op.conn, op.xid)) {
                if let Some((pz, px)) = last_commit.insert(item.conn, (zx, op.xid.0)) {
                    if zx <= pz {
                        out.push((
                            NAME,
                            format!(
                                "c{c} conn{}: xid{} committed at {zx:#x}, before earlier xid{px} at {pz:#x}",
                                item.conn.0, op.xid.0
                            ),
                        ));
                    }
                }
            }
        }
    }
    out.truncate(10);
    out
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{OpId, OpRecord, Reply, StreamItem};
    use ensemble::{Request, Response, Xid};

    fn op(xid: u64) -> OpRecord {
        OpRecord {
            client: 0,
            session: None,
            server: 1,
            conn: ConnId(3),
            xid: Xid(xid),
            req: Request::Sync { path: "/".into() },
            invoke_us: xid,
            reply: Some(Reply {
                at_us: 10,
                zxid: 1,
                result: Ok(Response::Synced { path: "/".into() }),
            }),
        }
    }

    fn history(order: &[usize]) -> History {
        let mut h = History::new(1);
        h.ops = vec![op(1), op(2)];
        for i in order {
            h.streams[0].push(StreamItem {
                at_us: 10,
                conn: ConnId(3),
                session: None,
                what: Delivery::Reply(OpId(*i)),
            });
        }
        h
    }

    #[test]
    fn replies_out_of_request_order_are_reported() {
        let r = Reference::default();
        assert!(check(&history(&[0, 1]), &r).is_empty());
        assert_eq!(check(&history(&[1, 0]), &r).len(), 1);
    }

    #[test]
    fn writes_committed_out_of_issue_order_are_reported() {
        let mut r = Reference::default();
        r.writes.insert((1, ConnId(3), Xid(1)), 20);
        r.writes.insert((1, ConnId(3), Xid(2)), 10);
        let found = check(&history(&[0, 1]), &r);
        assert_eq!(found.len(), 1, "{found:?}");
    }
}

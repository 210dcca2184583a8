//! Simulated clients: sessions, connections, re-attaching after a disconnect, request
//! intake from the workload, and routing of replies and events into the history.

use std::collections::BTreeMap;

use ensemble::{
    ConnId, Error, Event, Request, Response, SessionEvent, SessionId, WatchedEvent, Xid,
};
use rand::Rng;

use super::World;
use crate::history::{Delivery, OpId, OpRecord, Reply, SessionRecord, StreamItem};
use crate::workload::{ClientId, Workload, WorkloadCtx};

/// Where a client is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// No connection; may connect (or re-attach) at `next_us`.
    Idle,
    /// Connect or Reattach sent, waiting.
    Connecting,
    /// Attached and usable.
    Connected,
}

pub(crate) struct SimClient {
    pub phase: Phase,
    pub session: Option<(SessionId, [u8; 16], u32)>,
    pub session_index: Option<usize>,
    pub conn: Option<(u64, ConnId)>,
    pub next_xid: u64,
    pub outstanding: BTreeMap<Xid, OpId>,
    pub last_zxid: i64,
    pub next_us: u64,
    pub silent_until_us: u64,
}

impl SimClient {
    pub(crate) fn new() -> SimClient {
        SimClient {
            phase: Phase::Idle,
            session: None,
            session_index: None,
            conn: None,
            next_xid: 1,
            outstanding: BTreeMap::new(),
            last_zxid: 0,
            next_us: 0,
            silent_until_us: 0,
        }
    }
}

/// Requests a client may send per step.
const SENDS_PER_STEP_MAX: usize = 4;

impl<W: Workload> World<W> {
    /// Tells the workload about an event of client `c` (not of the liveness probe,
    /// which is the simulator's own client).
    pub(crate) fn notify_event(&mut self, c: usize, event: &Event) {
        if c != self.cfg.clients {
            self.workload.handle_event(ClientId(c), event);
        }
    }

    fn notify_reply(&mut self, c: usize, req: &Request, result: &Result<Response, Error>) {
        if c != self.cfg.clients {
            self.workload.handle_reply(ClientId(c), req, result);
        }
    }

    /// Op timeout: a client abandons a connection whose oldest request waited this
    /// long (a third of the session timeout, as ZooKeeper's read timeout).
    fn op_timeout_us(&self, c: usize) -> u64 {
        let t = self.clients[c].session.map_or(800, |s| s.2);
        u64::from(t) * 1000 / 3
    }

    pub(crate) fn client_step(&mut self, c: usize, workload_on: bool) {
        let now = self.now_us;
        let jitter = self.rng.gen_range(1_000..15_000u64);
        self.clients[c].next_us = now + jitter;
        if self.clients[c].silent_until_us > now {
            return;
        }
        // Abandon a connection whose oldest request timed out.
        if let Some((_, oldest)) = self.clients[c].outstanding.iter().next() {
            let invoked = self.history.ops[oldest.0].invoke_us;
            if now.saturating_sub(invoked) > self.op_timeout_us(c) {
                self.trace(format!("c{c}: request timed out; moving"));
                self.drop_connection(c, true);
                return;
            }
        }
        match self.clients[c].phase {
            Phase::Connecting => {}
            Phase::Idle => self.client_connect(c),
            Phase::Connected => {
                if !workload_on {
                    return;
                }
                let Some((server, _)) = self.clients[c].conn else {
                    return;
                };
                if self.node_paused(server) {
                    return;
                }
                for _ in 0..SENDS_PER_STEP_MAX {
                    if self.clients[c].phase != Phase::Connected
                        || self.clients[c].outstanding.len() >= self.cfg.outstanding_max
                    {
                        break;
                    }
                    let Some((session, _, _)) = self.clients[c].session else {
                        break;
                    };
                    let mut ctx = WorkloadCtx {
                        rng: &mut self.rng,
                        now_ms: now / 1000,
                        session,
                        outstanding: self.clients[c].outstanding.len(),
                    };
                    let Some(req) = self.workload.next_request(ClientId(c), &mut ctx) else {
                        break;
                    };
                    self.send(c, req);
                }
            }
        }
    }

    fn pick_server(&mut self, avoid: Option<u64>) -> u64 {
        let ids: Vec<u64> = self
            .nodes
            .iter()
            .filter(|n| {
                n.server.is_some() && Some(n.id) != avoid && n.paused_until_us <= self.now_us
            })
            .map(|n| n.id)
            .collect();
        if ids.is_empty() {
            return self.nodes[self.rng.gen_range(0..self.nodes.len())].id;
        }
        ids[self.rng.gen_range(0..ids.len())]
    }

    fn client_connect(&mut self, c: usize) {
        let avoid = self.clients[c].conn.map(|(s, _)| s);
        let server = self.pick_server(avoid);
        let i = self.index_of(server);
        if self.nodes[i].server.is_none() || self.node_paused(server) {
            return;
        }
        self.next_conn += 1;
        let conn = ConnId(self.next_conn);
        self.conn_owner.insert(conn, c);
        let cl = &mut self.clients[c];
        cl.conn = Some((server, conn));
        cl.next_xid = 1;
        cl.phase = Phase::Connecting;
        let req = match cl.session {
            Some((session, password, _)) => Request::Reattach {
                session,
                password,
                last_zxid_seen: cl.last_zxid,
            },
            None => Request::Connect {
                timeout_ms: self.workload.session_timeout_ms(),
            },
        };
        self.send(c, req);
    }

    /// Sends `req` on the client's connection and records the invocation.
    pub(crate) fn send(&mut self, c: usize, req: Request) {
        let Some((server, conn)) = self.clients[c].conn else {
            return;
        };
        let xid = Xid(self.clients[c].next_xid);
        self.clients[c].next_xid += 1;
        let op = OpId(self.history.ops.len());
        self.history.ops.push(OpRecord {
            client: c,
            session: self.clients[c].session.map(|s| s.0),
            server,
            conn,
            xid,
            req: req.clone(),
            invoke_us: self.now_us,
            reply: None,
        });
        self.clients[c].outstanding.insert(xid, op);
        self.trace(format!(
            "c{c} -> s{server} conn{} xid{}: {}",
            conn.0,
            xid.0,
            short(&req)
        ));
        let i = self.index_of(server);
        if let Some(s) = self.nodes[i].server.as_mut() {
            s.handle_client(conn, xid, req);
            self.run_actions(i);
        }
    }

    /// The client gives up its connection (timeout, or its server crashed): pending
    /// requests stay without a reply (unknown outcome); it re-attaches elsewhere.
    pub(crate) fn drop_connection(&mut self, c: usize, tell_server: bool) {
        let Some((server, conn)) = self.clients[c].conn else {
            return;
        };
        if tell_server && self.clients[c].phase == Phase::Connected {
            // The client library notices the loss itself.
            self.notify_event(c, &Event::Session(SessionEvent::Disconnected));
        }
        self.conn_owner.remove(&conn);
        self.clients[c].outstanding.clear();
        self.clients[c].phase = Phase::Idle;
        if tell_server {
            let i = self.index_of(server);
            if let Some(s) = self.nodes[i].server.as_mut() {
                s.handle_conn_closed(conn);
                self.run_actions(i);
            }
        }
    }

    pub(crate) fn handle_reply(
        &mut self,
        conn: ConnId,
        xid: Xid,
        zxid: i64,
        result: Result<Response, Error>,
    ) {
        let Some(&c) = self.conn_owner.get(&conn) else {
            return;
        };
        let Some(op) = self.clients[c].outstanding.remove(&xid) else {
            return;
        };
        self.trace(format!(
            "c{c} <- conn{} xid{} z={:#x}: {}",
            conn.0,
            xid.0,
            zxid,
            short_result(&result)
        ));
        let now = self.now_us;
        self.clients[c].last_zxid = self.clients[c].last_zxid.max(zxid);
        let session = self.clients[c].session.map(|s| s.0);
        self.history.streams[c].push(StreamItem {
            at_us: now,
            conn,
            session,
            what: Delivery::Reply(op),
        });
        let req = self.history.ops[op.0].req.clone();
        self.history.ops[op.0].reply = Some(Reply {
            at_us: now,
            zxid,
            result: result.clone(),
        });
        match (&req, &result) {
            (
                Request::Connect { .. },
                Ok(Response::Connected {
                    session,
                    password,
                    timeout_ms,
                }),
            ) => {
                self.clients[c].session = Some((*session, *password, *timeout_ms));
                self.clients[c].session_index = Some(self.history.sessions.len());
                self.history.sessions.push(SessionRecord {
                    client: c,
                    id: *session,
                    timeout_ms: *timeout_ms,
                    opened_us: now,
                    ended_us: None,
                    silent: Vec::new(),
                });
                self.history.ops[op.0].session = Some(*session);
                self.clients[c].phase = Phase::Connected;
                self.notify_event(c, &Event::Session(SessionEvent::Connected));
            }
            (Request::Reattach { .. }, Ok(Response::Connected { .. })) => {
                self.clients[c].phase = Phase::Connected;
                self.notify_event(c, &Event::Session(SessionEvent::Connected));
            }
            (Request::Connect { .. } | Request::Reattach { .. }, Err(e)) => {
                let gone = matches!(e, Error::SessionExpired | Error::UnknownSession);
                self.drop_connection(c, true);
                if gone {
                    self.session_ended(c);
                }
            }
            (Request::Close, Ok(_)) => self.session_ended(c),
            _ => {}
        }
        self.notify_reply(c, &req, &result);
    }

    fn session_ended(&mut self, c: usize) {
        if let Some(i) = self.clients[c].session_index.take() {
            if let Some(r) = self.history.sessions.get_mut(i) {
                r.ended_us.get_or_insert(self.now_us);
            }
        }
        self.clients[c].session = None;
        self.clients[c].last_zxid = 0;
    }

    pub(crate) fn handle_watch(&mut self, conn: ConnId, event: WatchedEvent) {
        let Some(&c) = self.conn_owner.get(&conn) else {
            return;
        };
        self.trace(format!(
            "c{c} <- conn{} watch {:?} {} z={:#x}",
            conn.0, event.event_type, event.path, event.zxid
        ));
        let session = self.clients[c].session.map(|s| s.0);
        self.history.streams[c].push(StreamItem {
            at_us: self.now_us,
            conn,
            session,
            what: Delivery::Watch(event.clone()),
        });
        self.notify_event(c, &Event::Watch(event));
    }

    pub(crate) fn handle_session_event(&mut self, conn: ConnId, event: SessionEvent) {
        let Some(&c) = self.conn_owner.get(&conn) else {
            return;
        };
        self.trace(format!("c{c} <- conn{} session {event:?}", conn.0));
        let session = self.clients[c].session.map(|s| s.0);
        self.history.streams[c].push(StreamItem {
            at_us: self.now_us,
            conn,
            session,
            what: Delivery::Session(event),
        });
        match event {
            SessionEvent::Disconnected => self.drop_connection(c, false),
            SessionEvent::Expired | SessionEvent::Closed => {
                self.drop_connection(c, false);
                self.session_ended(c);
            }
            _ => {}
        }
        self.notify_event(c, &Event::Session(event));
    }

    /// The client-expiry fault: client `c` goes silent for `ms`.
    pub(crate) fn client_silent(&mut self, c: usize, ms: u64) {
        if c >= self.clients.len() {
            return;
        }
        let until = self.now_us + ms * 1000;
        self.clients[c].silent_until_us = until;
        if let Some(i) = self.clients[c].session_index {
            if let Some(r) = self.history.sessions.get_mut(i) {
                r.silent.push((self.now_us, until));
            }
        }
        self.drop_connection(c, true);
    }
}

/// A short readable form of a request for the trace.
pub(crate) fn short(req: &Request) -> String {
    let s = format!("{req:?}");
    let s = s.replace(
        "acl: [Acl { perms: Perms(31), id: Id { scheme: \"world\", id: \"anyone\" } }], ",
        "",
    );
    s.chars().take(120).collect()
}

fn short_result(r: &Result<Response, Error>) -> String {
    let s = format!("{r:?}");
    s.chars().take(120).collect()
}

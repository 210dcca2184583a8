//! The client-visible history of a run: every request with its invocation and reply
//! times, and every event each connection received, in order. Checkers read it after
//! the run.

use ensemble::{ConnId, Error, Request, Response, SessionEvent, SessionId, WatchedEvent, Xid};

/// Index of an operation in [`History::ops`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OpId(pub usize);

/// A reply as the client saw it.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Virtual time of the reply, in µs.
    pub at_us: u64,
    /// The server's applied zxid when it answered.
    pub zxid: i64,
    /// The outcome.
    pub result: Result<Response, Error>,
}

/// One request of one client.
#[derive(Debug, Clone)]
pub struct OpRecord {
    /// The client (index).
    pub client: usize,
    /// The session it was sent for (`None` for Connect).
    pub session: Option<SessionId>,
    /// The server it was sent to.
    pub server: u64,
    /// The connection it was sent on (unique over the run).
    pub conn: ConnId,
    /// Its request number on the connection.
    pub xid: Xid,
    /// The request.
    pub req: Request,
    /// Virtual time of the invocation, in µs.
    pub invoke_us: u64,
    /// The reply; `None` when none came (the outcome is unknown).
    pub reply: Option<Reply>,
}

impl OpRecord {
    /// Whether the outcome of this op is unknown (no reply, or an error that does not
    /// say whether the write happened).
    pub fn outcome_unknown(&self) -> bool {
        match &self.reply {
            None => true,
            Some(r) => matches!(
                r.result,
                Err(Error::ConnectionLoss
                    | Error::OperationTimeout
                    | Error::SessionExpired
                    | Error::SessionMoved
                    | Error::Throttled(_)
                    | Error::NotServing(_)
                    | Error::UnknownSession
                    | Error::Marshalling(_))
            ),
        }
    }
}

/// What a connection received.
#[derive(Debug, Clone)]
pub enum Delivery {
    /// The reply to an op.
    Reply(OpId),
    /// A watch event.
    Watch(WatchedEvent),
    /// A session event.
    Session(SessionEvent),
}

/// One item of a client's ordered stream.
#[derive(Debug, Clone)]
pub struct StreamItem {
    /// Virtual time, µs.
    pub at_us: u64,
    /// The connection it arrived on.
    pub conn: ConnId,
    /// The session of the connection at that time.
    pub session: Option<SessionId>,
    /// What arrived.
    pub what: Delivery,
}

/// A session as the clients saw it.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    /// The client that owned it.
    pub client: usize,
    /// The id.
    pub id: SessionId,
    /// Negotiated timeout.
    pub timeout_ms: u32,
    /// Virtual time it was opened.
    pub opened_us: u64,
    /// When the client learned it ended (closed or expired), if it did.
    pub ended_us: Option<u64>,
    /// Periods (start, end µs) during which the client deliberately stopped
    /// heartbeating (the client-expiry fault).
    pub silent: Vec<(u64, u64)>,
}

/// Everything the clients saw.
#[derive(Debug, Default, Clone)]
pub struct History {
    /// Every op, in invocation order.
    pub ops: Vec<OpRecord>,
    /// Per client, everything received, in order.
    pub streams: Vec<Vec<StreamItem>>,
    /// Every session opened.
    pub sessions: Vec<SessionRecord>,
}

impl History {
    pub(crate) fn new(clients: usize) -> History {
        History {
            ops: Vec::new(),
            streams: vec![Vec::new(); clients],
            sessions: Vec::new(),
        }
    }

    /// The op `id`.
    pub fn op(&self, id: OpId) -> Option<&OpRecord> {
        self.ops.get(id.0)
    }
}

//! [`Client`]: a session on an ensemble, with blocking methods and futures for every
//! operation (no async runtime needed), and one ordered event stream per session.

mod call;
mod events;
mod ops;
mod watchbook;

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use futures::task::AtomicWaker;
use parking_lot::Mutex;

pub use self::call::Call;
pub use self::events::EventStream;
use self::watchbook::WatchBook;
use crate::error::Error;
use crate::node::{Completion, ConnListener, Inbound, NodeHandle};
use crate::ops::{ConnId, Event, Request, Response, SessionEvent, SessionId, Xid};

/// Longest pause between two rounds of re-attach attempts over all nodes.
pub const REATTACH_BACKOFF_MAX_MS: u64 = 100;

/// For this long after losing its node the client retries every
/// [`REATTACH_PAUSE_FAST_MS`] before backing off: an election takes tens of
/// milliseconds, and a doubling pause (5, 10, 20, 40 ms) made a client whose node
/// served again at 40 ms wait until 75 ms.
pub const REATTACH_FAST_WINDOW_MS: u64 = 200;

/// Pause between re-attach rounds within [`REATTACH_FAST_WINDOW_MS`].
pub const REATTACH_PAUSE_FAST_MS: u64 = 5;

/// Client settings.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Requested session timeout (negotiated by the server). Default 4,000 ms.
    pub session_timeout_ms: u32,
    /// How long [`Client::connect`] keeps trying. Default 10 s.
    pub connect_timeout: Duration,
    /// Longest blocking wait for one operation ([`Call::wait`] and every blocking
    /// method); past it the call fails with OperationTimeout (outcome unknown).
    /// Default `None`: wait for the answer, which always comes (a reply, or
    /// ConnectionLoss when the node leaves the quorum or stops). Futures are not
    /// bounded by it; use your runtime's timer.
    pub operation_timeout: Option<Duration>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            session_timeout_ms: 4_000,
            connect_timeout: Duration::from_secs(10),
            operation_timeout: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Connected,
    Disconnected,
    Expired,
    Closed,
}

struct State {
    node: usize,
    conn: ConnId,
    next_xid: u64,
    status: Status,
    /// The connection being re-attached was lost before the re-attach completed.
    attach_lost: bool,
}

pub(crate) struct Inner {
    nodes: Vec<NodeHandle>,
    st: Mutex<State>,
    session: SessionId,
    password: [u8; 16],
    timeout_ms: u32,
    last_zxid: Arc<AtomicI64>,
    events_tx: Sender<Event>,
    events_rx: Receiver<Event>,
    waker: Arc<AtomicWaker>,
    reattaching: AtomicBool,
    book: Arc<WatchBook>,
    /// Every addAuth issued (scheme, credentials), replayed after a re-attach: auth
    /// is per connection, as in ZooKeeper.
    auths: Mutex<Vec<(String, Vec<u8>)>>,
    op_timeout: Option<Duration>,
}

impl Inner {
    fn push_event(&self, e: Event) {
        let _ = self.events_tx.send(e);
        self.waker.wake();
    }
}

impl ConnListener for Inner {
    fn on_event(self: Arc<Self>, conn: ConnId, event: Event) {
        let mut st = self.st.lock();
        if st.conn != conn {
            return;
        }
        match event {
            Event::Watch(ref w) => {
                self.last_zxid.fetch_max(w.zxid, Ordering::Relaxed);
                self.book.fired(&w.path, w.event_type);
            }
            Event::Session(SessionEvent::Disconnected) => {
                if st.status != Status::Connected {
                    // A connection being re-attached died: the re-attach must retry.
                    st.attach_lost = true;
                    return;
                }
                st.status = Status::Disconnected;
                drop(st);
                self.push_event(event);
                start_reattach(&self);
                return;
            }
            Event::Session(SessionEvent::Expired) => st.status = Status::Expired,
            Event::Session(SessionEvent::Closed) => st.status = Status::Closed,
            _ => {}
        }
        drop(st);
        self.push_event(event);
    }
}

/// A session on an ensemble. Operations are FIFO: they complete in the order they
/// were issued. Dropping the client without [`Client::close`] leaves the session to
/// expire (as a crashed ZooKeeper client's would).
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("session", &self.inner.session)
            .finish_non_exhaustive()
    }
}

/// Opens a connection on `node` for `listener` and sends `req` on it; waits for the
/// answer at most `wait`.
fn open_and_ask(
    node: &NodeHandle,
    listener: Arc<dyn ConnListener>,
    req: Request,
    wait: Duration,
) -> (ConnId, Result<Response, Error>) {
    let conn = node.new_conn();
    if let Err(e) = node.send(Inbound::Open { conn, listener }) {
        return (conn, Err(e));
    }
    let (tx, rx) = crossbeam_channel::bounded(1);
    let sent = node.send(Inbound::Request {
        conn,
        xid: Xid(0),
        req,
        done: Completion::Channel(tx),
    });
    if let Err(e) = sent {
        return (conn, Err(e));
    }
    match rx.recv_timeout(wait) {
        Ok((r, _)) => (conn, r),
        Err(_) => (conn, Err(Error::OperationTimeout)),
    }
}

/// A listener for the connect handshake, before the client exists: it keeps the
/// events until the client takes over the connection.
struct Bootstrap {
    events: Mutex<Vec<Event>>,
}

impl Bootstrap {
    fn on_event(&self, event: Event) {
        self.events.lock().push(event);
    }
}

/// Forwards a connection's events to the client once it exists.
struct Forwarder {
    target: Mutex<Option<std::sync::Weak<Inner>>>,
    early: Bootstrap,
}

impl ConnListener for Forwarder {
    fn on_event(self: Arc<Self>, conn: ConnId, event: Event) {
        let target = self.target.lock().as_ref().and_then(|w| w.upgrade());
        match target {
            Some(inner) => inner.on_event(conn, event),
            None => self.early.on_event(event),
        }
    }
}

impl Client {
    /// Opens a session on the first node of `nodes` that serves, trying them in turn
    /// until `opts.connect_timeout`. The session re-attaches to another of `nodes`
    /// when its node leaves the quorum.
    pub fn connect(nodes: &[NodeHandle], opts: ClientOptions) -> Result<Client, Error> {
        let req = Request::Connect {
            timeout_ms: opts.session_timeout_ms,
        };
        Client::open(nodes, opts, req)
    }

    /// Attaches to an existing session (for example one opened by another process and
    /// handed over, or a remote client's session moving to this server) with its id
    /// and password. `last_zxid_seen` keeps the session from going back in time: a
    /// node that has applied less refuses it and the next one is tried.
    pub fn attach(
        nodes: &[NodeHandle],
        session: SessionId,
        password: [u8; 16],
        last_zxid_seen: i64,
        opts: ClientOptions,
    ) -> Result<Client, Error> {
        let req = Request::Reattach {
            session,
            password,
            last_zxid_seen,
        };
        let c = Client::open(nodes, opts, req)?;
        c.inner
            .last_zxid
            .fetch_max(last_zxid_seen, Ordering::Relaxed);
        Ok(c)
    }

    fn open(nodes: &[NodeHandle], opts: ClientOptions, req: Request) -> Result<Client, Error> {
        if nodes.is_empty() {
            return Err(datatree::Error::BadArguments("no nodes given".into()).into());
        }
        let deadline = Instant::now() + opts.connect_timeout;
        let mut i = 0usize;
        let mut last_err = Error::ConnectionLoss;
        while Instant::now() < deadline {
            let idx = i % nodes.len();
            i += 1;
            let node = &nodes[idx];
            let fwd = Arc::new(Forwarder {
                target: Mutex::new(None),
                early: Bootstrap {
                    events: Mutex::new(Vec::new()),
                },
            });
            let wait = deadline.saturating_duration_since(Instant::now());
            let (conn, r) = open_and_ask(node, fwd.clone(), req.clone(), wait);
            match r {
                Ok(Response::Connected {
                    session,
                    password,
                    timeout_ms,
                }) => {
                    let (events_tx, events_rx) = crossbeam_channel::unbounded();
                    let inner = Arc::new(Inner {
                        nodes: nodes.to_vec(),
                        st: Mutex::new(State {
                            node: idx,
                            conn,
                            next_xid: 1,
                            status: Status::Connected,
                            attach_lost: false,
                        }),
                        session,
                        password,
                        timeout_ms,
                        last_zxid: Arc::new(AtomicI64::new(0)),
                        events_tx,
                        events_rx,
                        waker: Arc::new(AtomicWaker::new()),
                        reattaching: AtomicBool::new(false),
                        book: Arc::new(WatchBook::default()),
                        auths: Mutex::new(Vec::new()),
                        op_timeout: opts.operation_timeout,
                    });
                    inner.push_event(Event::Session(SessionEvent::Connected));
                    *fwd.target.lock() = Some(Arc::downgrade(&inner));
                    let early: Vec<Event> = fwd.early.events.lock().drain(..).collect();
                    for e in early {
                        Arc::clone(&inner).on_event(conn, e);
                    }
                    let client = Client { inner };
                    client.maybe_start_reattach();
                    return Ok(client);
                }
                Ok(other) => {
                    last_err = Error::Marshalling(format!("unexpected reply {other:?}"));
                    let _ = node.send(Inbound::Closed(conn));
                }
                Err(e @ (Error::SessionExpired | Error::SessionMoved)) => {
                    let _ = node.send(Inbound::Closed(conn));
                    return Err(e);
                }
                Err(e) => {
                    let _ = node.send(Inbound::Closed(conn));
                    last_err = e;
                    if i.checked_rem(nodes.len()) == Some(0) {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
            }
        }
        Err(last_err)
    }

    /// The session id.
    pub fn session_id(&self) -> SessionId {
        self.inner.session
    }

    /// The session password (to re-attach from elsewhere).
    pub fn password(&self) -> [u8; 16] {
        self.inner.password
    }

    /// The negotiated session timeout.
    pub fn session_timeout_ms(&self) -> u32 {
        self.inner.timeout_ms
    }

    /// The id of the node the session is attached to now.
    pub fn node_id(&self) -> u64 {
        let st = self.inner.st.lock();
        self.inner.nodes[st.node].id()
    }

    /// Whether the session is attached to a serving node right now.
    pub fn is_connected(&self) -> bool {
        self.inner.st.lock().status == Status::Connected
    }

    /// The highest zxid this client has seen (replies and watch events).
    pub fn last_zxid_seen(&self) -> i64 {
        self.inner.last_zxid.load(Ordering::Relaxed)
    }

    /// The session's ordered event stream (watch events and session events). It is
    /// unbounded: events are never dropped, so a session that sets watches and never
    /// reads its events only costs its own memory.
    pub fn events(&self) -> &Receiver<Event> {
        &self.inner.events_rx
    }

    /// The same events as a [`futures::Stream`].
    pub fn event_stream(&self) -> EventStream {
        EventStream::new(self.inner.events_rx.clone(), Arc::clone(&self.inner.waker))
    }

    /// Waits until the session is connected again (after a re-attach), at most `timeout`.
    pub fn wait_connected(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            match self.inner.st.lock().status {
                Status::Connected => return true,
                Status::Expired | Status::Closed => return false,
                Status::Disconnected => {}
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        false
    }

    /// Sends a raw request; the returned [`Call`] is a future and can be waited on.
    pub fn call(&self, req: Request) -> Call<Response> {
        self.submit(req, Ok)
    }

    pub(crate) fn submit<T>(&self, req: Request, map: fn(Response) -> Result<T, Error>) -> Call<T> {
        let (tx, rx) = crate::node::reply_slot();
        let mut st = self.inner.st.lock();
        let err = match st.status {
            Status::Connected => None,
            Status::Disconnected => Some(Error::ConnectionLoss),
            Status::Expired | Status::Closed => Some(Error::SessionExpired),
        };
        if let Some(e) = err {
            drop(st);
            self.maybe_start_reattach();
            return Call::failed(e);
        }
        let xid = Xid(st.next_xid);
        st.next_xid += 1;
        // Sent under the lock so that xids enter the node's queue in order (FIFO).
        let sent = self.inner.nodes[st.node].send(Inbound::Request {
            conn: st.conn,
            xid,
            req,
            done: Completion::Future(tx),
        });
        if matches!(sent, Err(Error::ConnectionLoss)) && st.status == Status::Connected {
            // The node is gone without telling us (stopped, or its core thread died):
            // treat it as a disconnect and move the session.
            st.status = Status::Disconnected;
            drop(st);
            self.inner
                .push_event(Event::Session(SessionEvent::Disconnected));
            start_reattach(&self.inner);
            return Call::failed(Error::ConnectionLoss);
        }
        drop(st);
        match sent {
            Ok(()) => Call::new(rx, map, Arc::clone(&self.inner.last_zxid))
                .with_timeout(self.inner.op_timeout),
            Err(e) => Call::failed(e),
        }
    }

    /// Starts re-attaching in the background if the session is disconnected.
    fn maybe_start_reattach(&self) {
        start_reattach(&self.inner);
    }

    /// Closes the session: its ephemerals are deleted and its watches removed.
    pub fn close(&self) -> Result<(), Error> {
        let r = self.submit(Request::Close, |_| Ok(())).wait();
        let mut st = self.inner.st.lock();
        st.status = Status::Closed;
        r
    }
}

/// Starts the background re-attach of a disconnected session (once).
fn start_reattach(inner: &Arc<Inner>) {
    let disconnected = inner.st.lock().status == Status::Disconnected;
    if !disconnected || inner.reattaching.swap(true, Ordering::AcqRel) {
        return;
    }
    let inner2 = Arc::clone(inner);
    let spawned = std::thread::Builder::new()
        .name("ensemble-reattach".into())
        .spawn(move || {
            reattach(&inner2);
            inner2.reattaching.store(false, Ordering::Release);
        });
    if spawned.is_err() {
        inner.reattaching.store(false, Ordering::Release);
    }
}

/// Re-attaches the session to some serving node: tries the nodes in turn (the one it
/// lost first last) until one accepts it or one says it expired. Like ZooKeeper's
/// client it never declares the session expired by itself: only the ensemble knows
/// (a new leader gives every session a full timeout, so a session whose nodes are
/// slow to come back may well be alive). It stops when the client is dropped or
/// closed.
fn reattach(inner: &Arc<Inner>) {
    let n = inner.nodes.len();
    let start = inner.st.lock().node;
    let mut i = 1;
    let lost_at = Instant::now();
    let mut backoff_ms = REATTACH_PAUSE_FAST_MS;
    loop {
        if inner.st.lock().status != Status::Disconnected {
            return;
        }
        let idx = (start + i) % n;
        i += 1;
        let node = &inner.nodes[idx];
        if node.is_alive() {
            let listener: Arc<dyn ConnListener> = Arc::clone(inner) as Arc<dyn ConnListener>;
            let req = Request::Reattach {
                session: inner.session,
                password: inner.password,
                last_zxid_seen: inner.last_zxid.load(Ordering::Relaxed),
            };
            // The connection must be known to the listener before its answer arrives:
            // events of other connections are ignored.
            let conn = node.new_conn();
            {
                let mut st = inner.st.lock();
                st.conn = conn;
                st.attach_lost = false;
            }
            let (tx, rx) = crossbeam_channel::bounded(1);
            let opened = node.send(Inbound::Open { conn, listener }).and_then(|_| {
                node.send(Inbound::Request {
                    conn,
                    xid: Xid(0),
                    req,
                    done: Completion::Channel(tx),
                })
            });
            let answer = match opened {
                Ok(()) => rx
                    .recv_timeout(Duration::from_millis(500))
                    .map(|(r, _)| r)
                    .unwrap_or(Err(Error::OperationTimeout)),
                Err(e) => Err(e),
            };
            match answer {
                Ok(Response::Connected { .. }) => {
                    let mut st = inner.st.lock();
                    if st.attach_lost {
                        // Attached, but that node left the quorum meanwhile: try again
                        // (under the same lock as the events, so nothing slips between).
                        drop(st);
                        let _ = node.send(Inbound::Closed(conn));
                        continue;
                    }
                    if st.conn == conn && st.status == Status::Disconnected {
                        st.node = idx;
                        st.next_xid = 1;
                        st.status = Status::Connected;
                        // Replay the connection's addAuths first (FIFO: before the
                        // watches and any later request, so they run with the ids).
                        for (scheme, auth) in inner.auths.lock().iter() {
                            let req = Request::AddAuth {
                                scheme: scheme.clone(),
                                auth: auth.clone(),
                            };
                            replay(node, conn, &mut st.next_xid, req);
                        }
                        // Re-register the session's watches first (FIFO: before any
                        // later request); changes missed meanwhile fire at once.
                        let watches = inner.book.all();
                        if !watches.is_empty() {
                            let req = Request::SetWatches {
                                relative_zxid: inner.last_zxid.load(Ordering::Relaxed),
                                watches,
                            };
                            replay(node, conn, &mut st.next_xid, req);
                        }
                        drop(st);
                        inner.push_event(Event::Session(SessionEvent::Connected));
                    }
                    return;
                }
                Err(Error::SessionExpired) => {
                    let mut st = inner.st.lock();
                    st.status = Status::Expired;
                    drop(st);
                    inner.push_event(Event::Session(SessionEvent::Expired));
                    return;
                }
                _ => {
                    let _ = node.send(Inbound::Closed(conn));
                }
            }
        }
        if i % n == 1 {
            // A full round without success: pause before the next (briefly while an
            // election is likely, then backing off, bounded).
            if lost_at.elapsed() < Duration::from_millis(REATTACH_FAST_WINDOW_MS) {
                std::thread::sleep(Duration::from_millis(REATTACH_PAUSE_FAST_MS));
            } else {
                std::thread::sleep(Duration::from_millis(backoff_ms));
                backoff_ms = (backoff_ms * 2).min(REATTACH_BACKOFF_MAX_MS);
            }
        }
    }
}

/// Sends `req` on a freshly re-attached connection as its next request, without
/// waiting for the answer (it is ordered before every later request).
fn replay(node: &NodeHandle, conn: ConnId, next_xid: &mut u64, req: Request) {
    let (tx, _rx) = crossbeam_channel::bounded(1);
    let xid = Xid(*next_xid);
    *next_xid += 1;
    let _ = node.send(Inbound::Request {
        conn,
        xid,
        req,
        done: Completion::Channel(tx),
    });
}

impl Drop for Client {
    fn drop(&mut self) {
        let st = self.inner.st.lock();
        let node = &self.inner.nodes[st.node];
        let _ = node.send(Inbound::Closed(st.conn));
        // The re-attach thread (if any) sees the session as gone and stops.
        drop(st);
        let mut st = self.inner.st.lock();
        if st.status == Status::Disconnected {
            st.status = Status::Closed;
        }
    }
}

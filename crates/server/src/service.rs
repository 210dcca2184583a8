//! The client port: each TCP connection carries one session on the local node.
//!
//! A connection starts with `Connect` or `Reattach` (xid 0). The service then drives
//! an embedded [`ensemble::Client`] on the local [`NodeHandle`], so the remote session
//! has exactly the embedded API's semantics: FIFO requests, watches registered when
//! the read executes, and an event queued before the reply of any later read that
//! shows the change (the writer forwards every queued event before each reply).
//!
//! Threads per connection: a reader (decodes frames, submits requests in order) and a
//! writer (waits for the replies in order, interleaves events, answers pings).
//!
//! Liveness: the node keeps a session alive while its connection is open; the service
//! closes a connection silent for longer than the session timeout (clients ping every
//! third of it). When the local node leaves the quorum the service sends
//! `Disconnected` and closes the connection, so the client re-attaches elsewhere.
//!
//! A re-attach uses [`Client::attach`]: the node checks the password and that it has
//! applied at least the client's last seen zxid, and (on a learner) revalidates the
//! session with the leader. The client then re-registers its watches
//! (`SetWatches`), as the embedded client does.

use std::io::Write;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{select, Receiver, Sender};
use ensemble::SessionEvent;
use ensemble::{Call, Client, ClientOptions, Error, Event, NodeHandle, Request, Response};
use parking_lot::Mutex;

use crate::wire::{read_frame, ClientMsg, ServerMsg};

/// A write to a client blocked this long ends the connection.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings of the client port.
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    /// Connections served at once; more are refused (closed at once).
    pub max_connections: usize,
    /// Time allowed for the first request of a connection.
    pub handshake_timeout: Duration,
    /// Time allowed to open or re-attach the session on the local node.
    pub attach_timeout: Duration,
    /// Requests of one connection queued between reader and writer.
    pub pipeline_max: usize,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        ServiceOptions {
            max_connections: 4_096,
            handshake_timeout: Duration::from_secs(5),
            attach_timeout: Duration::from_secs(3),
            pipeline_max: 1_024,
        }
    }
}

/// A running client port.
pub struct ClientService {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for ClientService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientService")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

struct Shared {
    node: NodeHandle,
    opts: ServiceOptions,
    open: AtomicUsize,
    stop: Arc<AtomicBool>,
    /// Open sockets, so that stopping the service closes them.
    sockets: Mutex<Vec<(u64, TcpStream)>>,
    next_id: std::sync::atomic::AtomicU64,
}

impl ClientService {
    /// Serves clients accepted on `listener` with sessions on `node`.
    pub fn start(
        listener: TcpListener,
        node: NodeHandle,
        opts: ServiceOptions,
    ) -> std::io::Result<ClientService> {
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Shared {
            node,
            opts,
            open: AtomicUsize::new(0),
            stop: Arc::clone(&stop),
            sockets: Mutex::new(Vec::new()),
            next_id: std::sync::atomic::AtomicU64::new(1),
        });
        let accept = std::thread::Builder::new()
            .name("client-accept".into())
            .spawn(move || accept_loop(&listener, &shared))?;
        Ok(ClientService {
            addr,
            stop,
            accept: Some(accept),
        })
    }

    /// The address clients connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting and closes every connection (sessions live on and can
    /// re-attach elsewhere).
    pub fn stop(mut self) {
        self.stop_inner();
    }

    fn stop_inner(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Wake the blocking accept.
        let _ = TcpStream::connect_timeout(&wake_addr(self.addr), Duration::from_millis(200));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

impl Drop for ClientService {
    fn drop(&mut self) {
        self.stop_inner();
    }
}

/// Where to connect to reach a listener bound to `addr` (a wildcard becomes loopback).
pub(crate) fn wake_addr(addr: SocketAddr) -> SocketAddr {
    let mut a = addr;
    if a.ip().is_unspecified() {
        a.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    a
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::Acquire) {
            break;
        }
        let Ok(stream) = stream else { continue };
        if shared.open.load(Ordering::Acquire) >= shared.opts.max_connections {
            tracing::warn!("client connection refused: too many connections");
            continue;
        }
        shared.open.fetch_add(1, Ordering::AcqRel);
        let sh = Arc::clone(shared);
        let spawned = std::thread::Builder::new()
            .name("client-conn".into())
            .spawn(move || {
                let id = sh.next_id.fetch_add(1, Ordering::Relaxed);
                if let Ok(s) = stream.try_clone() {
                    sh.sockets.lock().push((id, s));
                }
                let peer = stream.peer_addr().ok();
                if let Err(e) = serve(stream, &sh) {
                    tracing::debug!(?peer, "client connection ended: {e}");
                }
                sh.sockets.lock().retain(|(i, _)| *i != id);
                sh.open.fetch_sub(1, Ordering::AcqRel);
            });
        if spawned.is_err() {
            shared.open.fetch_sub(1, Ordering::AcqRel);
        }
    }
    for (_, s) in shared.sockets.lock().drain(..) {
        let _ = s.shutdown(Shutdown::Both);
    }
}

fn send(stream: &Mutex<TcpStream>, msg: &ServerMsg) -> std::io::Result<()> {
    let bytes = msg
        .encode()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    let s = stream.lock();
    let r = (&*s).write_all(&bytes);
    if r.is_err() {
        // A client that does not read (or a dead link) loses its connection; the
        // reader sees the shutdown and everything unwinds.
        let _ = s.shutdown(Shutdown::Both);
    }
    r
}

fn reply(stream: &Mutex<TcpStream>, xid: u64, zxid: i64, result: Result<Response, Error>) {
    // An answer the protocol cannot carry becomes a marshalling error, not a hang.
    let msg = ServerMsg::Reply { xid, zxid, result };
    if msg.encode().is_err() {
        let fallback = ServerMsg::Reply {
            xid,
            zxid,
            result: Err(Error::Marshalling("reply not encodable".into())),
        };
        let _ = send(stream, &fallback);
        return;
    }
    let _ = send(stream, &msg);
}

/// Opens or re-attaches the session the first request asks for.
fn attach(
    node: &NodeHandle,
    opts: &ServiceOptions,
    req: Request,
) -> Result<(Client, Response), Error> {
    match req {
        Request::Connect { timeout_ms } => {
            let client = Client::connect(
                std::slice::from_ref(node),
                ClientOptions {
                    session_timeout_ms: timeout_ms,
                    connect_timeout: opts.attach_timeout,
                    ..ClientOptions::default()
                },
            )?;
            let resp = Response::Connected {
                session: client.session_id(),
                password: client.password(),
                timeout_ms: client.session_timeout_ms(),
            };
            Ok((client, resp))
        }
        Request::Reattach {
            session,
            password,
            last_zxid_seen,
        } => {
            let client = Client::attach(
                std::slice::from_ref(node),
                session,
                password,
                last_zxid_seen,
                ClientOptions {
                    session_timeout_ms: 0,
                    connect_timeout: opts.attach_timeout,
                    ..ClientOptions::default()
                },
            )?;
            let resp = Response::Connected {
                session,
                password,
                timeout_ms: client.session_timeout_ms(),
            };
            Ok((client, resp))
        }
        _ => Err(Error::Tree(datatree::Error::BadArguments(
            "the first request of a connection must be connect or reattach".into(),
        ))),
    }
}

enum Item {
    Call(u64, Call<Response>),
    Now(u64, Result<Response, Error>),
    Pong,
}

fn serve(stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    stream.set_read_timeout(Some(shared.opts.handshake_timeout))?;
    let mut reader = stream.try_clone()?;
    let out = Arc::new(Mutex::new(stream));
    let Some(first) = read_frame(&mut reader)? else {
        return Ok(());
    };
    let (xid, req) = match ClientMsg::decode(&first) {
        Ok(ClientMsg::Request { xid, req }) => (xid, req),
        Ok(ClientMsg::Ping) => return Ok(()),
        Err(e) => {
            reply(&out, 0, 0, Err(Error::Marshalling(e.to_string())));
            return Ok(());
        }
    };
    let (client, resp) = match attach(&shared.node, &shared.opts, req) {
        Ok(x) => x,
        Err(e) => {
            reply(&out, xid, 0, Err(e));
            return Ok(());
        }
    };
    let timeout_ms = match &resp {
        Response::Connected { timeout_ms, .. } => *timeout_ms,
        _ => client.session_timeout_ms(),
    };
    // The embedded client's own "connected" event is not the remote session's.
    while client.events().try_recv().is_ok() {}
    let client = Arc::new(client);
    reply(&out, xid, client.last_zxid_seen(), Ok(resp));
    tracing::debug!(session = ?client.session_id(), "client attached");

    let (tx, rx) = crossbeam_channel::bounded::<Item>(shared.opts.pipeline_max);
    let writer = {
        let out = Arc::clone(&out);
        let client = Arc::clone(&client);
        let events = client.events().clone();
        std::thread::Builder::new()
            .name("client-writer".into())
            .spawn(move || write_loop(&out, &client, &rx, &events))?
    };
    reader.set_read_timeout(Some(Duration::from_millis(u64::from(timeout_ms).max(100))))?;
    let result = read_loop(&mut reader, &client, &tx);
    drop(tx);
    let _ = writer.join();
    let _ = out.lock().shutdown(Shutdown::Both);
    result
}

fn read_loop(reader: &mut TcpStream, client: &Client, tx: &Sender<Item>) -> std::io::Result<()> {
    loop {
        let Some(frame) = read_frame(reader)? else {
            return Ok(());
        };
        let item = match ClientMsg::decode(&frame) {
            Ok(ClientMsg::Ping) => Item::Pong,
            Ok(ClientMsg::Request {
                xid,
                req: Request::Connect { .. } | Request::Reattach { .. },
            }) => Item::Now(
                xid,
                Err(Error::Tree(datatree::Error::BadArguments(
                    "this connection already has a session".into(),
                ))),
            ),
            // Submitted here, in arrival order: the node answers in the same order.
            Ok(ClientMsg::Request { xid, req }) => Item::Call(xid, client.call(req)),
            Err(e) => {
                return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, e));
            }
        };
        if tx.send(item).is_err() {
            return Ok(());
        }
    }
}

/// Writes replies in request order, every event queued before each reply first.
/// Returns when the reader is done or the session ended.
fn write_loop(
    out: &Mutex<TcpStream>,
    client: &Client,
    rx: &Receiver<Item>,
    events: &Receiver<Event>,
) {
    let ends = |e: &Event| {
        matches!(
            e,
            Event::Session(
                SessionEvent::Disconnected | SessionEvent::Expired | SessionEvent::Closed
            )
        )
    };
    // Forwards the queued watch events; returns a session-ending event, which goes
    // out after the reply being written (a close's reply precedes its Closed event).
    let flush = || -> Option<Event> {
        let mut end = None;
        while let Ok(e) = events.try_recv() {
            if matches!(e, Event::Session(SessionEvent::Connected)) {
                continue;
            }
            if ends(&e) {
                end.get_or_insert(e);
            } else {
                let _ = send(out, &ServerMsg::Event(e));
            }
        }
        end
    };
    let finish = |end: Option<Event>| -> bool {
        match end {
            Some(e) => {
                let _ = send(out, &ServerMsg::Event(e));
                true
            }
            None => false,
        }
    };
    // Answers one queued item; returns a session-ending event met on the way.
    let answer = |item: Item| -> Option<Event> {
        match item {
            Item::Pong => {
                let _ = send(out, &ServerMsg::Pong);
                None
            }
            Item::Now(xid, r) => {
                let end = flush();
                reply(out, xid, client.last_zxid_seen(), r);
                end
            }
            Item::Call(xid, call) => {
                let (r, zxid) = call.wait_with_zxid();
                let end = flush();
                reply(out, xid, zxid, r);
                end
            }
        }
    };
    loop {
        let ended = select! {
            recv(rx) -> item => match item {
                Err(_) => return,
                Ok(item) => finish(answer(item)),
            },
            recv(events) -> e => match e {
                Err(_) => return,
                Ok(Event::Session(SessionEvent::Connected)) => false,
                Ok(e) if ends(&e) => {
                    // Requests already submitted are answered first (a close's
                    // reply precedes its Closed event).
                    while let Ok(item) = rx.try_recv() {
                        let _ = answer(item);
                    }
                    finish(Some(e))
                }
                Ok(e) => {
                    let _ = send(out, &ServerMsg::Event(e));
                    false
                }
            },
        };
        if ended {
            // The session left this server: the client re-attaches elsewhere (or
            // learns its session ended). Closing the socket ends the reader too.
            let _ = out.lock().shutdown(Shutdown::Both);
            return;
        }
    }
}

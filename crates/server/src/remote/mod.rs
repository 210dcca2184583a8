//! [`RemoteClient`]: a session on an ensemble reached over TCP, with the embedded
//! client's semantics (FIFO requests, one ordered event stream) and re-attach to
//! another server of its list when its server dies or leaves the quorum.
//!
//! Threads: one reader per connection (replies and events) and one pinger per client
//! (a ping every third of the session timeout; a connection silent for two thirds of
//! it counts as lost). Requests are written by the calling thread.
//!
//! ```no_run
//! use ensemble_server::{RemoteClient, RemoteOptions};
//! use datatree::CreateMode;
//!
//! let servers = ["10.0.0.1:2181".parse()?, "10.0.0.2:2181".parse()?, "10.0.0.3:2181".parse()?];
//! let client = RemoteClient::connect(&servers, RemoteOptions::default())?;
//! client.create("/app", "config v1", CreateMode::Persistent)?;
//! let (data, stat) = client.get_data("/app", true)?; // leaves a data watch
//! assert_eq!((&data[..], stat.version), (&b"config v1"[..], 0));
//! // Watch events (and session events) arrive in order on one stream.
//! let event = client.events().recv()?;
//! println!("{event:?}");
//! client.close()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::VecDeque;
use std::io::Write;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender};
use datatree::{Acl, CreateMode, OpResult, Stat, WatcherType, WriteOp};
use ensemble::{AddWatchMode, Error, Event, Request, Response, SessionEvent, SessionId};
use parking_lot::Mutex;

use crate::wire::{read_frame, ClientMsg, ServerMsg};

mod book;
use book::{Book, Note};

/// Settings of a [`RemoteClient`].
#[derive(Debug, Clone)]
pub struct RemoteOptions {
    /// Requested session timeout (negotiated by the server). Default 4,000 ms.
    pub session_timeout_ms: u32,
    /// How long [`RemoteClient::connect`] keeps trying the servers. Default 10 s.
    pub connect_timeout: Duration,
    /// How long one request waits for its reply. Default 10 s.
    pub request_timeout: Duration,
}

impl Default for RemoteOptions {
    fn default() -> Self {
        RemoteOptions {
            session_timeout_ms: 4_000,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
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

type Reply = Result<Response, Error>;

struct Conn {
    status: Status,
    server: usize,
    /// Bumped on every new connection, so a dead connection's reader cannot touch
    /// its successor.
    generation: u64,
    stream: Option<TcpStream>,
    next_xid: u64,
    pending: VecDeque<Pending>,
}

/// A request waiting for its reply, with the watch it registers if it succeeds.
struct Pending {
    xid: u64,
    tx: Sender<Reply>,
    note: Option<Note>,
}

impl Conn {
    /// Writes `req` on the current connection; the reply goes to `tx`. Must be called
    /// with the lock held, so requests reach the server in xid order.
    fn enqueue(&mut self, req: Request, tx: Sender<Reply>) -> Result<(), (Sender<Reply>, Error)> {
        let xid = self.next_xid;
        let note = Note::of(&req);
        let bytes = match (ClientMsg::Request { xid, req }).encode() {
            Ok(b) => b,
            Err(e) => return Err((tx, Error::Marshalling(e.to_string()))),
        };
        let Some(stream) = self.stream.as_mut() else {
            return Err((tx, Error::ConnectionLoss));
        };
        if stream.write_all(&bytes).is_err() {
            return Err((tx, Error::ConnectionLoss));
        }
        self.next_xid += 1;
        self.pending.push_back(Pending { xid, tx, note });
        Ok(())
    }
}

struct Inner {
    servers: Vec<SocketAddr>,
    session: SessionId,
    password: [u8; 16],
    timeout_ms: u32,
    opts: RemoteOptions,
    last_zxid: AtomicI64,
    conn: Mutex<Conn>,
    events_tx: Sender<Event>,
    events_rx: Receiver<Event>,
    reattaching: AtomicBool,
    book: Mutex<Book>,
}

/// A session over TCP. Operations complete in the order they were issued.
/// Dropping the client without [`RemoteClient::close`] leaves the session to expire.
pub struct RemoteClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RemoteClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteClient")
            .field("session", &self.inner.session)
            .finish_non_exhaustive()
    }
}

fn io_loss(_: std::io::Error) -> Error {
    Error::ConnectionLoss
}

/// Connects to `addr`, sends the first request and reads its answer.
fn handshake(
    addr: SocketAddr,
    req: Request,
    wait: Duration,
) -> Result<(TcpStream, Response, i64), Error> {
    let wait = wait.max(Duration::from_millis(50));
    let mut s =
        TcpStream::connect_timeout(&addr, wait.min(Duration::from_secs(2))).map_err(io_loss)?;
    s.set_nodelay(true).map_err(io_loss)?;
    s.set_read_timeout(Some(wait)).map_err(io_loss)?;
    let bytes = ClientMsg::Request { xid: 0, req }
        .encode()
        .map_err(|e| Error::Marshalling(e.to_string()))?;
    s.write_all(&bytes).map_err(io_loss)?;
    loop {
        let frame = read_frame(&mut s)
            .map_err(io_loss)?
            .ok_or(Error::ConnectionLoss)?;
        match ServerMsg::decode(&frame).map_err(|e| Error::Marshalling(e.to_string()))? {
            ServerMsg::Reply { zxid, result, .. } => return result.map(|r| (s, r, zxid)),
            ServerMsg::Event(_) | ServerMsg::Pong => {}
        }
    }
}

impl RemoteClient {
    /// Opens a session on the first of `servers` (client addresses) that serves,
    /// trying them in turn until `opts.connect_timeout`.
    pub fn connect(servers: &[SocketAddr], opts: RemoteOptions) -> Result<RemoteClient, Error> {
        if servers.is_empty() {
            return Err(datatree::Error::BadArguments("no servers given".into()).into());
        }
        let deadline = Instant::now() + opts.connect_timeout;
        let mut last = Error::ConnectionLoss;
        let mut i = 0usize;
        while Instant::now() < deadline {
            let idx = i % servers.len();
            i += 1;
            let wait = deadline.saturating_duration_since(Instant::now());
            let req = Request::Connect {
                timeout_ms: opts.session_timeout_ms,
            };
            match handshake(servers[idx], req, wait.min(Duration::from_secs(5))) {
                Ok((
                    stream,
                    Response::Connected {
                        session,
                        password,
                        timeout_ms,
                    },
                    zxid,
                )) => {
                    let (events_tx, events_rx) = crossbeam_channel::unbounded();
                    let inner = Arc::new(Inner {
                        servers: servers.to_vec(),
                        session,
                        password,
                        timeout_ms,
                        opts,
                        last_zxid: AtomicI64::new(zxid),
                        conn: Mutex::new(Conn {
                            status: Status::Disconnected,
                            server: idx,
                            generation: 0,
                            stream: None,
                            next_xid: 1,
                            pending: VecDeque::new(),
                        }),
                        events_tx,
                        events_rx,
                        reattaching: AtomicBool::new(false),
                        book: Mutex::new(Book::default()),
                    });
                    install(&inner, idx, stream)?;
                    spawn_pinger(&inner);
                    return Ok(RemoteClient { inner });
                }
                Ok((_, other, _)) => last = Error::Marshalling(format!("unexpected {other:?}")),
                Err(e) => last = e,
            }
            if i.checked_rem(servers.len()) == Some(0) {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Err(last)
    }

    /// The session id.
    pub fn session_id(&self) -> SessionId {
        self.inner.session
    }

    /// The negotiated session timeout.
    pub fn session_timeout_ms(&self) -> u32 {
        self.inner.timeout_ms
    }

    /// The server the session is attached to now.
    pub fn server_addr(&self) -> SocketAddr {
        self.inner.servers[self.inner.conn.lock().server]
    }

    /// Whether the session is attached right now.
    pub fn is_connected(&self) -> bool {
        self.inner.conn.lock().status == Status::Connected
    }

    /// The highest zxid seen in replies and events.
    pub fn last_zxid_seen(&self) -> i64 {
        self.inner.last_zxid.load(Ordering::Relaxed)
    }

    /// The session's ordered events (watch events and session state changes).
    pub fn events(&self) -> &Receiver<Event> {
        &self.inner.events_rx
    }

    /// Waits until the session is attached (after a re-attach), at most `timeout`.
    pub fn wait_connected(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            match self.inner.conn.lock().status {
                Status::Connected => return true,
                Status::Expired | Status::Closed => return false,
                Status::Disconnected => {}
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }

    /// Sends a request without waiting; the receiver gets the outcome.
    pub fn submit(&self, req: Request) -> Receiver<Reply> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let mut c = self.inner.conn.lock();
        let err = match c.status {
            Status::Connected => None,
            Status::Disconnected => Some(Error::ConnectionLoss),
            Status::Expired | Status::Closed => Some(Error::SessionExpired),
        };
        if let Some(e) = err {
            drop(c);
            start_reattach(&self.inner);
            let _ = tx.send(Err(e));
            return rx;
        }
        if let Err((tx, e)) = c.enqueue(req, tx) {
            let _ = tx.send(Err(e.clone()));
            if e == Error::ConnectionLoss {
                let generation = c.generation;
                drop(c);
                lose(&self.inner, generation);
            }
        }
        rx
    }

    /// Sends a request and waits for its outcome (at most the request timeout).
    pub fn call(&self, req: Request) -> Reply {
        self.submit(req)
            .recv_timeout(self.inner.opts.request_timeout)
            .unwrap_or(Err(Error::OperationTimeout))
    }

    /// create(path, data, open ACL, mode): the final path.
    pub fn create(
        &self,
        path: &str,
        data: impl Into<Bytes>,
        mode: CreateMode,
    ) -> Result<String, Error> {
        self.create_full(path, data, datatree::Acl::open_unsafe(), mode, 0)
            .map(|(p, _)| p)
    }

    /// create with every argument: the final path and the new node's Stat.
    pub fn create_full(
        &self,
        path: &str,
        data: impl Into<Bytes>,
        acl: Vec<Acl>,
        mode: CreateMode,
        ttl_ms: i64,
    ) -> Result<(String, Stat), Error> {
        match self.call(Request::Create {
            path: path.to_string(),
            data: data.into(),
            acl,
            mode,
            ttl_ms,
        })? {
            Response::Created { path, stat } => Ok((path, stat)),
            other => Err(unexpected(other)),
        }
    }

    /// delete(path, version); -1 matches any version.
    pub fn delete(&self, path: &str, version: i32) -> Result<(), Error> {
        self.call(Request::Delete {
            path: path.to_string(),
            version,
        })
        .map(|_| ())
    }

    /// exists(path, watch).
    pub fn exists(&self, path: &str, watch: bool) -> Result<Option<Stat>, Error> {
        match self.call(Request::Exists {
            path: path.to_string(),
            watch,
        })? {
            Response::Exists(s) => Ok(s),
            other => Err(unexpected(other)),
        }
    }

    /// getData(path, watch).
    pub fn get_data(&self, path: &str, watch: bool) -> Result<(Bytes, Stat), Error> {
        match self.call(Request::GetData {
            path: path.to_string(),
            watch,
        })? {
            Response::Data(d, s) => Ok((d, s)),
            other => Err(unexpected(other)),
        }
    }

    /// setData(path, data, version).
    pub fn set_data(
        &self,
        path: &str,
        data: impl Into<Bytes>,
        version: i32,
    ) -> Result<Stat, Error> {
        match self.call(Request::SetData {
            path: path.to_string(),
            data: data.into(),
            version,
        })? {
            Response::Stat(s) => Ok(s),
            other => Err(unexpected(other)),
        }
    }

    /// getChildren(path, watch): sorted names and the parent's Stat.
    pub fn get_children(&self, path: &str, watch: bool) -> Result<(Vec<String>, Stat), Error> {
        match self.call(Request::GetChildren {
            path: path.to_string(),
            watch,
        })? {
            Response::Children(c, s) => Ok((c, s)),
            other => Err(unexpected(other)),
        }
    }

    /// getACL(path).
    pub fn get_acl(&self, path: &str) -> Result<(Vec<Acl>, Stat), Error> {
        match self.call(Request::GetAcl {
            path: path.to_string(),
        })? {
            Response::Acl(a, s) => Ok((a, s)),
            other => Err(unexpected(other)),
        }
    }

    /// multi(ops), all or nothing.
    pub fn multi(&self, ops: Vec<WriteOp>) -> Result<Vec<OpResult>, Error> {
        match self.call(Request::Multi(ops))? {
            Response::Multi(r) => Ok(r),
            other => Err(unexpected(other)),
        }
    }

    /// sync(path): reads after it see every write committed before it.
    pub fn sync(&self, path: &str) -> Result<(), Error> {
        self.call(Request::Sync {
            path: path.to_string(),
        })
        .map(|_| ())
    }

    /// addWatch(path, mode).
    pub fn add_watch(&self, path: &str, mode: AddWatchMode) -> Result<(), Error> {
        self.call(Request::AddWatch {
            path: path.to_string(),
            mode,
        })
        .map(|_| ())
    }

    /// removeWatches(path, which).
    pub fn remove_watches(&self, path: &str, which: WatcherType) -> Result<(), Error> {
        self.call(Request::RemoveWatches {
            path: path.to_string(),
            which,
        })
        .map(|_| ())
    }

    /// Closes the session: its ephemerals are deleted and its watches removed.
    pub fn close(&self) -> Result<(), Error> {
        let mut r = self.call(Request::Close).map(|_| ());
        let mut c = self.inner.conn.lock();
        // The server's Closed event may overtake the reply: the session is closed.
        if r == Err(Error::SessionExpired) && c.status == Status::Closed {
            r = Ok(());
        }
        c.status = Status::Closed;
        if let Some(s) = c.stream.take() {
            let _ = s.shutdown(Shutdown::Both);
        }
        r
    }
}

impl Drop for RemoteClient {
    fn drop(&mut self) {
        let mut c = self.inner.conn.lock();
        if c.status != Status::Expired {
            c.status = Status::Closed;
        }
        if let Some(s) = c.stream.take() {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

fn unexpected(r: Response) -> Error {
    Error::Marshalling(format!("unexpected reply {r:?}"))
}

/// Makes `stream` the session's connection and starts its reader.
fn install(inner: &Arc<Inner>, server: usize, stream: TcpStream) -> Result<(), Error> {
    let silence = Duration::from_millis((u64::from(inner.timeout_ms) * 2 / 3).max(100));
    stream.set_read_timeout(Some(silence)).map_err(io_loss)?;
    stream.set_write_timeout(Some(silence)).map_err(io_loss)?;
    let mut reader = stream.try_clone().map_err(io_loss)?;
    let generation = {
        let mut c = inner.conn.lock();
        if matches!(c.status, Status::Closed | Status::Expired) {
            let _ = stream.shutdown(Shutdown::Both);
            return Err(Error::SessionExpired);
        }
        c.generation += 1;
        c.server = server;
        c.stream = Some(stream);
        c.next_xid = 1;
        c.status = Status::Connected;
        // Re-register the session's watches before any other request (FIFO); the
        // server fires at once those whose change was missed meanwhile.
        let watches = inner.book.lock().all();
        if !watches.is_empty() {
            let (tx, _rx) = crossbeam_channel::bounded(1);
            let req = Request::SetWatches {
                relative_zxid: inner.last_zxid.load(Ordering::Relaxed),
                watches,
            };
            if c.enqueue(req, tx).is_err() {
                tracing::warn!("could not re-register watches");
            }
        }
        c.generation
    };
    let weak = Arc::downgrade(inner);
    let spawned = std::thread::Builder::new()
        .name("remote-reader".into())
        .spawn(move || read_loop(&weak, &mut reader, generation));
    if spawned.is_err() {
        lose(inner, generation);
        return Err(Error::ConnectionLoss);
    }
    Ok(())
}

fn read_loop(weak: &Weak<Inner>, reader: &mut TcpStream, generation: u64) {
    loop {
        let msg = match read_frame(reader) {
            Ok(Some(f)) => ServerMsg::decode(&f).ok(),
            _ => None,
        };
        let Some(inner) = weak.upgrade() else { return };
        let Some(msg) = msg else {
            lose(&inner, generation);
            return;
        };
        match msg {
            ServerMsg::Reply { xid, zxid, result } => {
                inner.last_zxid.fetch_max(zxid, Ordering::Relaxed);
                let mut c = inner.conn.lock();
                if c.generation != generation {
                    return;
                }
                if let Some(pos) = c.pending.iter().position(|p| p.xid == xid) {
                    // FIFO: earlier requests without a reply cannot exist; fail them.
                    for p in c.pending.drain(..pos) {
                        let _ = p.tx.send(Err(Error::ConnectionLoss));
                    }
                    if let Some(p) = c.pending.pop_front() {
                        if let (Some(note), Ok(resp)) = (p.note, &result) {
                            inner.book.lock().on_reply(note, resp);
                        }
                        let _ = p.tx.send(result);
                    }
                }
            }
            ServerMsg::Event(Event::Session(SessionEvent::Disconnected)) => {
                lose(&inner, generation);
                return;
            }
            ServerMsg::Event(Event::Session(
                e @ (SessionEvent::Expired | SessionEvent::Closed),
            )) => {
                let mut c = inner.conn.lock();
                if c.generation == generation {
                    c.status = if e == SessionEvent::Expired {
                        Status::Expired
                    } else {
                        Status::Closed
                    };
                    fail_pending(&mut c, Error::SessionExpired);
                    drop(c);
                    let _ = inner.events_tx.send(Event::Session(e));
                }
                return;
            }
            ServerMsg::Event(e) => {
                if let Event::Watch(w) = &e {
                    inner.last_zxid.fetch_max(w.zxid, Ordering::Relaxed);
                    inner.book.lock().on_event(&w.path, w.event_type);
                }
                let _ = inner.events_tx.send(e);
            }
            _ => {}
        }
    }
}

fn fail_pending(c: &mut Conn, e: Error) {
    for p in c.pending.drain(..) {
        let _ = p.tx.send(Err(e.clone()));
    }
}

/// The connection of `generation` is gone: fail its requests, tell the application,
/// and start re-attaching.
fn lose(inner: &Arc<Inner>, generation: u64) {
    let mut c = inner.conn.lock();
    if c.generation != generation || c.status != Status::Connected {
        return;
    }
    c.status = Status::Disconnected;
    if let Some(s) = c.stream.take() {
        let _ = s.shutdown(Shutdown::Both);
    }
    fail_pending(&mut c, Error::ConnectionLoss);
    drop(c);
    let _ = inner
        .events_tx
        .send(Event::Session(SessionEvent::Disconnected));
    start_reattach(inner);
}

fn start_reattach(inner: &Arc<Inner>) {
    if inner.conn.lock().status != Status::Disconnected
        || inner.reattaching.swap(true, Ordering::AcqRel)
    {
        return;
    }
    let inner2 = Arc::clone(inner);
    let spawned = std::thread::Builder::new()
        .name("remote-reattach".into())
        .spawn(move || {
            reattach(&inner2);
            inner2.reattaching.store(false, Ordering::Release);
        });
    if spawned.is_err() {
        inner.reattaching.store(false, Ordering::Release);
    }
}

/// Tries the servers in turn (the lost one last) until one takes the session back,
/// one says it expired, or twice the session timeout passed without an answer.
fn reattach(inner: &Arc<Inner>) {
    let n = inner.servers.len();
    let start = inner.conn.lock().server;
    let budget = Duration::from_millis(u64::from(inner.timeout_ms).max(1_000) * 2);
    let lost_at = Instant::now();
    let deadline = lost_at + budget;
    let mut i = 1;
    while Instant::now() < deadline {
        if inner.conn.lock().status != Status::Disconnected {
            return;
        }
        let idx = (start + i) % n;
        i += 1;
        let req = Request::Reattach {
            session: inner.session,
            password: inner.password,
            last_zxid_seen: inner.last_zxid.load(Ordering::Relaxed),
        };
        match handshake(inner.servers[idx], req, Duration::from_secs(5)) {
            Ok((stream, Response::Connected { .. }, zxid)) => {
                inner.last_zxid.fetch_max(zxid, Ordering::Relaxed);
                if install(inner, idx, stream).is_ok() {
                    tracing::debug!(server = %inner.servers[idx], "session re-attached");
                    let _ = inner
                        .events_tx
                        .send(Event::Session(SessionEvent::Connected));
                }
                return;
            }
            Err(Error::SessionExpired) => break,
            _ => {}
        }
        if i % n == 1 {
            // Briefly while an election is likely (as the embedded client), then 50 ms.
            let fast = lost_at.elapsed()
                < Duration::from_millis(ensemble::client::REATTACH_FAST_WINDOW_MS);
            std::thread::sleep(Duration::from_millis(if fast {
                ensemble::client::REATTACH_PAUSE_FAST_MS
            } else {
                50
            }));
        }
    }
    let mut c = inner.conn.lock();
    if c.status == Status::Disconnected {
        c.status = Status::Expired;
        drop(c);
        let _ = inner.events_tx.send(Event::Session(SessionEvent::Expired));
    }
}

/// Pings every third of the session timeout while the client lives.
fn spawn_pinger(inner: &Arc<Inner>) {
    let weak = Arc::downgrade(inner);
    let every = Duration::from_millis((u64::from(inner.timeout_ms) / 3).max(20));
    let ping = ClientMsg::Ping.encode().unwrap_or_default();
    let _ = std::thread::Builder::new()
        .name("remote-pinger".into())
        .spawn(move || loop {
            std::thread::sleep(every);
            let Some(inner) = weak.upgrade() else { return };
            let mut c = inner.conn.lock();
            match c.status {
                Status::Closed | Status::Expired => return,
                Status::Disconnected => continue,
                Status::Connected => {}
            }
            let failed = c
                .stream
                .as_mut()
                .is_some_and(|s| s.write_all(&ping).is_err());
            let generation = c.generation;
            drop(c);
            if failed {
                lose(&inner, generation);
            }
        });
}

//! One peer: its bounded send queue, its current connection, and the link thread
//! that connects (dial or poke, with backoff) and writes queued frames.

use std::io::{BufWriter, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use crossbeam_channel::{select, Receiver, Sender, TrySendError};
use parking_lot::Mutex;
use rand::Rng;

use super::frame::{encode_header, encode_hello, FrameDecoder, FrameKind};
use super::{reader, ConnError, Shared};
use crate::{NodeId, SendError, TransportEvent};

/// Frames written per flush at most, so one busy link cannot starve the socket
/// buffer's flush for long.
const WRITE_BATCH_MAX: usize = 256;

/// Capacity of a connection's write buffer.
const WRITE_BUFFER_BYTES: usize = 64 * 1024;

pub(super) fn ms(v: u64) -> Duration {
    Duration::from_millis(v.max(1))
}

/// The connection currently used for a peer.
struct Conn {
    socket_id: u64,
    stream: TcpStream,
}

pub(crate) struct PeerLink {
    pub(crate) peer: NodeId,
    addr: SocketAddr,
    queue_tx: Sender<Bytes>,
    queue_rx: Receiver<Bytes>,
    conn: Mutex<Option<Conn>>,
    /// Held while changing `conn` and emitting the matching event, so
    /// `Connected`/`Disconnected` reach the consumer in the order they happened.
    /// Never held by the consumer's calls.
    event_order: Mutex<()>,
    wake_tx: Sender<()>,
    wake_rx: Receiver<()>,
    /// Held by the reader of a connection for its whole life. A reader for a newer
    /// connection takes it first, so it cannot deliver frames before the old reader
    /// has delivered what it had already read: per-link order survives reconnects.
    pub(crate) reader_gate: Mutex<()>,
}

impl PeerLink {
    pub(crate) fn new(peer: NodeId, addr: SocketAddr, queue_max: usize) -> Self {
        let (queue_tx, queue_rx) = crossbeam_channel::bounded(queue_max.max(1));
        let (wake_tx, wake_rx) = crossbeam_channel::bounded(1);
        Self {
            peer,
            addr,
            queue_tx,
            queue_rx,
            conn: Mutex::new(None),
            event_order: Mutex::new(()),
            wake_tx,
            wake_rx,
            reader_gate: Mutex::new(()),
        }
    }

    pub(crate) fn enqueue(&self, payload: Bytes) -> Result<(), SendError> {
        self.queue_tx.try_send(payload).map_err(|e| match e {
            TrySendError::Full(_) => SendError::QueueFull { to: self.peer },
            TrySendError::Disconnected(_) => SendError::Shutdown,
        })
    }

    pub(crate) fn is_connected(&self) -> bool {
        self.conn.lock().is_some()
    }

    /// Wakes the link thread (a new connection, a lost one, or a poke to dial now).
    pub(crate) fn wake(&self) {
        let _ = self.wake_tx.try_send(());
    }

    fn current(&self) -> Option<(u64, TcpStream)> {
        let guard = self.conn.lock();
        let conn = guard.as_ref()?;
        conn.stream.try_clone().ok().map(|s| (conn.socket_id, s))
    }

    /// Makes `stream` the peer's connection, closing any previous one. Emits
    /// `Connected`, preceded by `Disconnected` when it replaces a connection (frames
    /// in flight on the old one may be lost, and the layer above must know).
    pub(crate) fn install(&self, shared: &Shared, socket_id: u64, stream: TcpStream) {
        let _order = self.event_order.lock();
        let old = self.conn.lock().replace(Conn { socket_id, stream });
        match old {
            Some(old) => {
                tracing::info!(id = %shared.id, peer = %self.peer, "replacing connection");
                let _ = old.stream.shutdown(Shutdown::Both);
                shared.emit(TransportEvent::Disconnected(self.peer));
            }
            None => tracing::info!(id = %shared.id, peer = %self.peer, "connected"),
        }
        shared.emit(TransportEvent::Connected(self.peer));
        self.wake();
    }

    /// Forgets connection `socket_id` if it is still the current one, closing it and
    /// emitting `Disconnected`.
    pub(crate) fn drop_conn(&self, shared: &Shared, socket_id: u64) {
        let _order = self.event_order.lock();
        let mut guard = self.conn.lock();
        if guard.as_ref().is_some_and(|c| c.socket_id == socket_id) {
            if let Some(conn) = guard.take() {
                let _ = conn.stream.shutdown(Shutdown::Both);
            }
            drop(guard);
            tracing::info!(id = %shared.id, peer = %self.peer, "disconnected");
            shared.emit(TransportEvent::Disconnected(self.peer));
        }
        self.wake();
    }

    /// Closes the connection at shutdown (no event).
    pub(crate) fn close(&self) {
        if let Some(conn) = self.conn.lock().take() {
            let _ = conn.stream.shutdown(Shutdown::Both);
        }
    }
}

/// Exponential backoff with jitter between connection attempts.
struct Backoff {
    min_ms: u64,
    max_ms: u64,
    next_ms: u64,
}

impl Backoff {
    fn new(min_ms: u64, max_ms: u64) -> Self {
        let min_ms = min_ms.max(1);
        Self {
            min_ms,
            max_ms: max_ms.max(min_ms),
            next_ms: min_ms,
        }
    }

    fn reset(&mut self) {
        self.next_ms = self.min_ms;
    }

    /// The delay to wait now: uniform in `[d/2, d]`, then `d` doubles (capped).
    fn next_delay(&mut self) -> Duration {
        let d = self.next_ms;
        self.next_ms = d.saturating_mul(2).min(self.max_ms);
        Duration::from_millis(rand::thread_rng().gen_range(d / 2..=d))
    }
}

/// Waits for `delay`, a wake-up or shutdown. Returns false on shutdown.
fn wait(shared: &Shared, link: &PeerLink, delay: Duration) -> bool {
    select! {
        recv(shared.stop_rx) -> _ => false,
        recv(link.wake_rx) -> _ => !shared.stopped(),
        default(delay) => !shared.stopped(),
    }
}

/// The link thread of `peer`: keeps a connection (the higher id dials, the lower id
/// pokes) and writes queued frames to it.
pub(crate) fn run_link(shared: &Arc<Shared>, peer: NodeId) {
    let Some(link) = shared.links.get(&peer).cloned() else {
        return;
    };
    let dialer = shared.id > peer;
    let cfg = &shared.config;
    let mut backoff = Backoff::new(cfg.backoff_min_ms, cfg.backoff_max_ms);
    let mut out: Option<(u64, BufWriter<TcpStream>)> = None;
    loop {
        if shared.stopped() {
            return;
        }
        let Some((socket_id, stream)) = link.current() else {
            out = None;
            let attempt = if dialer {
                dial(shared, &link)
            } else {
                poke(shared, &link)
            };
            match attempt {
                Ok(()) if dialer => {
                    backoff.reset();
                    continue;
                }
                Ok(()) => {}
                Err(e) => {
                    tracing::debug!(id = %shared.id, peer = %peer, error = %e, "connect attempt failed");
                }
            }
            if !wait(shared, &link, backoff.next_delay()) {
                return;
            }
            continue;
        };
        backoff.reset();
        let writer = match &mut out {
            Some((id, w)) if *id == socket_id => w,
            _ => {
                &mut out
                    .insert((
                        socket_id,
                        BufWriter::with_capacity(WRITE_BUFFER_BYTES, stream),
                    ))
                    .1
            }
        };
        let first = select! {
            recv(link.queue_rx) -> f => match f {
                Ok(f) => f,
                Err(_) => return,
            },
            recv(link.wake_rx) -> _ => continue,
            recv(shared.stop_rx) -> _ => return,
        };
        if let Err(e) = write_batch(shared.id, writer, first, &link.queue_rx) {
            if !shared.stopped() {
                tracing::warn!(id = %shared.id, peer = %peer, error = %e, "write failed; closing connection");
            }
            out = None;
            link.drop_conn(shared, socket_id);
        }
    }
}

/// Writes `first` and whatever else is queued (up to a batch), then flushes.
fn write_batch(
    me: NodeId,
    w: &mut BufWriter<TcpStream>,
    first: Bytes,
    queue: &Receiver<Bytes>,
) -> Result<(), ConnError> {
    write_frame(me, w, &first)?;
    for _ in 1..WRITE_BATCH_MAX {
        match queue.try_recv() {
            Ok(f) => write_frame(me, w, &f)?,
            Err(_) => break,
        }
    }
    w.flush()?;
    Ok(())
}

fn write_frame(me: NodeId, w: &mut BufWriter<TcpStream>, payload: &[u8]) -> Result<(), ConnError> {
    let header = encode_header(FrameKind::Data, me, payload)?;
    w.write_all(&header)?;
    w.write_all(payload)?;
    Ok(())
}

/// Dials `link`'s peer (we have the higher id), runs the handshake, installs the
/// connection and starts its reader.
fn dial(shared: &Arc<Shared>, link: &Arc<PeerLink>) -> Result<(), ConnError> {
    let cfg = &shared.config;
    let stream = TcpStream::connect_timeout(&link.addr, ms(cfg.connect_timeout_ms))?;
    let socket_id = shared.register_socket(&stream);
    let handshake = || -> Result<(FrameDecoder, TcpStream), ConnError> {
        stream.set_nodelay(true)?;
        stream.set_write_timeout(Some(ms(cfg.handshake_timeout_ms)))?;
        (&stream).write_all(&encode_hello(shared.id, link.peer))?;
        let (hello, decoder) = reader::read_hello(shared, &stream)?;
        let from = reader::check_hello(shared, &hello)?;
        if from != link.peer {
            return Err(ConnError::SenderMismatch {
                expected: link.peer,
                actual: from,
            });
        }
        stream.set_read_timeout(None)?;
        stream.set_write_timeout(Some(ms(cfg.write_timeout_ms)))?;
        Ok((decoder, stream.try_clone()?))
    };
    let (decoder, read_half) = match handshake() {
        Ok(ok) => ok,
        Err(e) => {
            shared.unregister_socket(socket_id);
            let _ = stream.shutdown(Shutdown::Both);
            return Err(e);
        }
    };
    link.install(shared, socket_id, stream);
    let peer = link.peer;
    let name = format!("tcp-read-{}-{}", shared.id.0, peer.0);
    if let Err(e) = shared.spawn(name, move |s| {
        reader::run_reader(&s, peer, socket_id, read_half, decoder)
    }) {
        link.drop_conn(shared, socket_id);
        shared.unregister_socket(socket_id);
        return Err(ConnError::Io(e));
    }
    Ok(())
}

/// Asks a higher-id peer to dial us: connect, send our hello, close.
fn poke(shared: &Shared, link: &PeerLink) -> Result<(), ConnError> {
    let cfg = &shared.config;
    let stream = TcpStream::connect_timeout(&link.addr, ms(cfg.connect_timeout_ms))?;
    let socket_id = shared.register_socket(&stream);
    let result = stream
        .set_write_timeout(Some(ms(cfg.handshake_timeout_ms)))
        .and_then(|()| (&stream).write_all(&encode_hello(shared.id, link.peer)));
    let _ = stream.shutdown(Shutdown::Both);
    shared.unregister_socket(socket_id);
    result.map_err(ConnError::Io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_and_resets() {
        let mut b = Backoff::new(10, 35);
        let delays: Vec<u64> = (0..5).map(|_| b.next_delay().as_millis() as u64).collect();
        let caps = [10, 20, 35, 35, 35];
        for (d, cap) in delays.iter().zip(caps) {
            assert!(
                *d >= cap / 2 && *d <= cap,
                "{d} not in [{}, {cap}]",
                cap / 2
            );
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(10));
    }
}

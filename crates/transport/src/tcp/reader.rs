//! The receiving side: handshake of accepted connections and the reader loop that
//! turns bytes into [`TransportEvent::Frame`]s.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::time::Instant;

use super::frame::{encode_hello, Frame, FrameDecoder, FrameKind, HELLO_PAYLOAD_LEN};
use super::link::ms;
use super::{ConnError, Shared};
use crate::{NodeId, TransportEvent};

/// Bytes read from the socket at a time; also the decoder's slack beyond one frame.
const READ_CHUNK_BYTES: usize = 64 * 1024;

/// Bytes read at a time during the handshake, so a peer cannot make us buffer much
/// before it has identified itself.
const HANDSHAKE_CHUNK_BYTES: usize = 256;

/// Reads the peer's hello within the handshake timeout (a total deadline, not per
/// read, so a peer trickling bytes cannot hold a handshake slot). Returns the hello
/// and a decoder, set to the transport's payload limit, holding any bytes that
/// followed it.
pub(super) fn read_hello(
    shared: &Shared,
    mut stream: &TcpStream,
) -> Result<(Frame, FrameDecoder), ConnError> {
    let mut decoder = FrameDecoder::new(HELLO_PAYLOAD_LEN);
    let deadline = Instant::now() + ms(shared.config.handshake_timeout_ms);
    let mut buf = [0u8; HANDSHAKE_CHUNK_BYTES];
    loop {
        if let Some(frame) = decoder.next_frame()? {
            decoder.set_max_payload_bytes(shared.config.max_payload_bytes);
            return Ok((frame, decoder));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ConnError::HandshakeTimeout);
        }
        stream.set_read_timeout(Some(left))?;
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Err(ConnError::ClosedInHandshake);
        }
        decoder.feed(&buf[..n]);
    }
}

/// Checks a hello: a known peer (not us) addressing us. Returns the sender.
pub(super) fn check_hello(shared: &Shared, frame: &Frame) -> Result<NodeId, ConnError> {
    if frame.kind != FrameKind::Hello {
        return Err(ConnError::UnexpectedKind);
    }
    let target = frame.hello_target()?;
    if !shared.links.contains_key(&frame.sender) {
        return Err(ConnError::UnknownPeer(frame.sender));
    }
    if target != shared.id {
        return Err(ConnError::WrongTarget {
            target,
            me: shared.id,
        });
    }
    Ok(frame.sender)
}

/// Releases the pending-handshake slot when dropped.
struct HandshakeSlot<'a>(&'a Shared);

impl Drop for HandshakeSlot<'_> {
    fn drop(&mut self) {
        self.0.handshake_done();
    }
}

/// What an accepted connection turned out to be.
enum Accepted {
    /// A higher-id peer dialing us: keep it.
    Keep { peer: NodeId, decoder: FrameDecoder },
    /// A lower-id peer asking us to dial it.
    Poke { peer: NodeId },
}

fn handshake_accepted(shared: &Shared, stream: &TcpStream) -> Result<Accepted, ConnError> {
    let cfg = &shared.config;
    stream.set_nodelay(true)?;
    stream.set_write_timeout(Some(ms(cfg.handshake_timeout_ms)))?;
    let (hello, decoder) = read_hello(shared, stream)?;
    let peer = check_hello(shared, &hello)?;
    if peer < shared.id {
        return Ok(Accepted::Poke { peer });
    }
    let mut w = stream;
    w.write_all(&encode_hello(shared.id, peer))?;
    stream.set_read_timeout(None)?;
    stream.set_write_timeout(Some(ms(cfg.write_timeout_ms)))?;
    Ok(Accepted::Keep { peer, decoder })
}

/// Runs on its own thread for each accepted connection: handshake, then either the
/// reader loop (higher-id peer) or a dial-back request (lower-id peer).
pub(super) fn run_accepted(shared: &Arc<Shared>, stream: TcpStream) {
    let socket_id = shared.register_socket(&stream);
    let slot = HandshakeSlot(shared);
    let accepted = handshake_accepted(shared, &stream);
    drop(slot);
    match accepted {
        Ok(Accepted::Keep { peer, decoder }) => {
            let Some(link) = shared.links.get(&peer) else {
                return;
            };
            match stream.try_clone() {
                Ok(write_half) => {
                    link.install(shared, socket_id, write_half);
                    run_reader(shared, peer, socket_id, stream, decoder);
                }
                Err(e) => {
                    tracing::warn!(id = %shared.id, peer = %peer, error = %e, "cannot clone socket");
                    shared.unregister_socket(socket_id);
                }
            }
        }
        Ok(Accepted::Poke { peer }) => {
            shared.unregister_socket(socket_id);
            let _ = stream.shutdown(Shutdown::Both);
            if let Some(link) = shared.links.get(&peer) {
                if !link.is_connected() {
                    tracing::debug!(id = %shared.id, peer = %peer, "dial-back requested");
                    link.wake();
                }
            }
        }
        Err(e) => {
            shared.unregister_socket(socket_id);
            let _ = stream.shutdown(Shutdown::Both);
            if !shared.stopped() {
                let peer_addr = stream.peer_addr().ok();
                tracing::warn!(id = %shared.id, ?peer_addr, error = %e, "handshake rejected");
            }
        }
    }
}

/// Reads frames from `peer`'s connection until it fails or the transport stops, then
/// retires the connection.
pub(super) fn run_reader(
    shared: &Arc<Shared>,
    peer: NodeId,
    socket_id: u64,
    stream: TcpStream,
    decoder: FrameDecoder,
) {
    let Some(link) = shared.links.get(&peer) else {
        shared.unregister_socket(socket_id);
        return;
    };
    let gate = link.reader_gate.lock();
    let result = read_loop(shared, peer, &stream, decoder);
    drop(gate);
    if let Err(e) = &result {
        if !shared.stopped() {
            tracing::warn!(id = %shared.id, peer = %peer, error = %e, "closing connection");
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
    shared.unregister_socket(socket_id);
    link.drop_conn(shared, socket_id);
}

fn read_loop(
    shared: &Shared,
    peer: NodeId,
    mut stream: &TcpStream,
    mut decoder: FrameDecoder,
) -> Result<(), ConnError> {
    let mut buf = vec![0u8; READ_CHUNK_BYTES];
    loop {
        while let Some(frame) = decoder.next_frame()? {
            if frame.kind != FrameKind::Data {
                return Err(ConnError::UnexpectedKind);
            }
            if frame.sender != peer {
                return Err(ConnError::SenderMismatch {
                    expected: peer,
                    actual: frame.sender,
                });
            }
            if !shared.emit(TransportEvent::Frame {
                from: peer,
                payload: frame.payload,
            }) {
                return Ok(());
            }
        }
        let n = match stream.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        if n == 0 {
            let buffered_bytes = decoder.buffered_bytes();
            if buffered_bytes > 0 {
                return Err(ConnError::Truncated { buffered_bytes });
            }
            return Ok(());
        }
        decoder.feed(&buf[..n]);
    }
}

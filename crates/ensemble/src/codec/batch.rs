//! Batch frames: several ZAB messages to one peer in one transport frame.

use bytes::{BufMut, Bytes, BytesMut};
use zab_core::Message;

use super::Reader;

// ---- batch frames (several ZAB messages to one peer in one transport frame) --------

/// First byte of a batch frame. A ZAB message starts with its wire version (1), so the
/// two never collide.
pub const BATCH_TAG: u8 = 0xEB;
/// A batch is closed once it holds this many bytes (bigger messages travel alone).
pub const BATCH_BYTES_MAX: usize = 1 << 20;
/// Most messages accepted in one batch frame.
pub const BATCH_MESSAGES_MAX: usize = 1 << 16;

/// Collects the messages of one core-loop iteration per peer, so that each peer gets
/// one transport frame per iteration: `[BATCH_TAG][count u32]([len u32][message])*`.
/// Messages are encoded straight into the frame (one copy of a proposal's payload per
/// peer, no buffer per message). A frame holding a single message leaves as that
/// plain message (the receiver takes both).
#[derive(Debug, Default)]
pub struct BatchWriter {
    peers: Vec<PeerFrame>,
}

#[derive(Debug)]
struct PeerFrame {
    to: u64,
    buf: BytesMut,
    count: u32,
}

/// Bytes before the first message: the tag and the count.
const HEAD: usize = 5;

impl PeerFrame {
    /// Opens a frame with room for `need` bytes of messages: the node reserves each
    /// pass's total first (`BatchWriter::reserve`), so a frame does not regrow, and
    /// copy itself, while it fills.
    fn start(&mut self, need: usize) {
        self.buf = BytesMut::with_capacity(HEAD + need);
        self.buf.put_u8(BATCH_TAG);
        self.buf.put_u32(0);
    }

    fn close(&mut self) -> Bytes {
        let count = std::mem::take(&mut self.count);
        let mut b = std::mem::take(&mut self.buf);
        if count == 1 {
            // [tag][count][len][message]: the message alone.
            return b.freeze().slice(HEAD + 4..);
        }
        b[1..HEAD].copy_from_slice(&count.to_be_bytes());
        b.freeze()
    }
}

impl BatchWriter {
    fn peer(&mut self, to: u64) -> &mut PeerFrame {
        let i = match self.peers.iter().position(|p| p.to == to) {
            Some(i) => i,
            None => {
                self.peers.push(PeerFrame {
                    to,
                    buf: BytesMut::new(),
                    count: 0,
                });
                self.peers.len() - 1
            }
        };
        &mut self.peers[i]
    }

    /// Makes room for `bytes` more bytes of messages to `to` (at most a full batch), so
    /// that a frame filled by the pushes that follow does not regrow: regrowing copies
    /// the whole frame. The caller sums [`Message::encoded_len_max`] + 4 per message.
    pub fn reserve(&mut self, to: u64, bytes: usize) {
        let p = self.peer(to);
        let bytes = bytes.min(BATCH_BYTES_MAX);
        if p.buf.is_empty() {
            p.start(bytes);
        } else {
            p.buf.reserve(bytes);
        }
    }

    /// Queues `msg` for `to`; returns a full frame to send now, if one closed.
    pub fn push(&mut self, to: u64, msg: &Message) -> Option<(u64, Bytes)> {
        let p = self.peer(to);
        let need = 4 + msg.encoded_len_max();
        let mut out = None;
        if p.count > 0
            && (p.buf.len() + need > BATCH_BYTES_MAX || p.count as usize >= BATCH_MESSAGES_MAX)
        {
            out = Some((to, p.close()));
        }
        if p.buf.is_empty() {
            p.start(need);
        }
        let at = p.buf.len();
        p.buf.put_u32(0);
        msg.encode_into(&mut p.buf);
        let len = (p.buf.len() - at - 4) as u32;
        p.buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
        p.count += 1;
        out
    }

    /// The frames to send, one per peer; the writer is empty afterwards.
    pub fn drain(&mut self) -> impl Iterator<Item = (u64, Bytes)> + '_ {
        self.peers
            .iter_mut()
            .filter(|p| p.count > 0)
            .map(|p| (p.to, p.close()))
    }
}

/// Splits a batch frame into its messages (zero-copy); `None` if `frame` is not a
/// batch. A malformed batch yields the messages before the damage (and logs).
pub fn split_batch(frame: &Bytes) -> Option<Vec<Bytes>> {
    let mut out = Vec::new();
    split_batch_into(frame, &mut out).then_some(out)
}

/// [`split_batch`] into a buffer the caller reuses (cleared first); false if `frame`
/// is not a batch.
pub fn split_batch_into(frame: &Bytes, out: &mut Vec<Bytes>) -> bool {
    out.clear();
    if frame.first() != Some(&BATCH_TAG) {
        return false;
    }
    let mut r = Reader {
        buf: frame.slice(1..),
    };
    let n = match r.count(BATCH_MESSAGES_MAX, 4) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "malformed batch frame");
            return true;
        }
    };
    out.reserve(n);
    for _ in 0..n {
        match r.bytes(zab_core::SNAPSHOT_MAX_BYTES) {
            Ok(b) => out.push(b),
            Err(e) => {
                tracing::warn!(error = %e, "malformed batch frame");
                break;
            }
        }
    }
    true
}

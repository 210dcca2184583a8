//! Batch frames: several ZAB messages to one peer in one transport frame.

use bytes::{BufMut, Bytes, BytesMut};

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
#[derive(Debug, Default)]
pub struct BatchWriter {
    peers: Vec<(u64, Vec<Bytes>, usize)>,
}

impl BatchWriter {
    /// Queues `frame` for `to`; returns a full batch to send now, if one closed.
    pub fn push(&mut self, to: u64, frame: Bytes) -> Option<(u64, Bytes)> {
        let i = match self.peers.iter().position(|(p, _, _)| *p == to) {
            Some(i) => i,
            None => {
                self.peers.push((to, Vec::new(), 0));
                self.peers.len() - 1
            }
        };
        let (_, frames, bytes) = &mut self.peers[i];
        let mut out = None;
        if !frames.is_empty()
            && (*bytes + frame.len() > BATCH_BYTES_MAX || frames.len() >= BATCH_MESSAGES_MAX)
        {
            out = Some((to, encode_batch(frames)));
            frames.clear();
            *bytes = 0;
        }
        *bytes += frame.len();
        frames.push(frame);
        out
    }

    /// The frames to send, one per peer; the writer is empty afterwards.
    pub fn drain(&mut self) -> impl Iterator<Item = (u64, Bytes)> + '_ {
        self.peers
            .iter_mut()
            .filter(|(_, f, _)| !f.is_empty())
            .map(|(to, frames, bytes)| {
                *bytes = 0;
                let frame = if frames.len() == 1 {
                    frames.pop().unwrap_or_default()
                } else {
                    let b = encode_batch(frames);
                    frames.clear();
                    b
                };
                (*to, frame)
            })
    }
}

fn encode_batch(frames: &[Bytes]) -> Bytes {
    let total: usize = frames.iter().map(|f| f.len() + 4).sum();
    let mut out = BytesMut::with_capacity(5 + total);
    out.put_u8(BATCH_TAG);
    out.put_u32(frames.len() as u32);
    for f in frames {
        out.put_u32(f.len() as u32);
        out.put_slice(f);
    }
    out.freeze()
}

/// Splits a batch frame into its messages (zero-copy); `None` if `frame` is not a
/// batch. A malformed batch yields the messages before the damage (and logs).
pub fn split_batch(frame: &Bytes) -> Option<Vec<Bytes>> {
    if frame.first() != Some(&BATCH_TAG) {
        return None;
    }
    let mut r = Reader {
        buf: frame.slice(1..),
    };
    let mut out = Vec::new();
    let n = match r.count(BATCH_MESSAGES_MAX, 4) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "malformed batch frame");
            return Some(out);
        }
    };
    for _ in 0..n {
        match r.bytes(zab_core::SNAPSHOT_MAX_BYTES) {
            Ok(b) => out.push(b),
            Err(e) => {
                tracing::warn!(error = %e, "malformed batch frame");
                break;
            }
        }
    }
    Some(out)
}

//! Streaming a SNAP to a learner without stalling the leader.
//!
//! A learner behind the leader's log window is brought up to date with a snapshot of
//! the whole state. Serializing a large tree at once holds the leader's core thread
//! for a time proportional to the tree (about a second for a million znodes), and
//! for that long the leader sends no pings: its synced followers give up on it after
//! `sync_limit`, a new election runs, and the new leader meets the same lagging
//! learner again. One learner that fell behind could keep a whole ensemble electing.
//!
//! So the leader writes the SNAP as an incremental snapshot of its own (a separate
//! stream of [`datatree::DataTree::begin_snapshot_stream`], an exact image of the
//! tree at the sync point however the tree changes meanwhile), [`SYNC_STEP_NODES`]
//! at a time between its other work, and sends each step's bytes as a chunk
//! (`SnapChunk` messages, at most about [`SYNC_CHUNK_BYTES`]; the SNAP itself carries
//! the end). Everything zab-core sends that learner after the SNAP waits until the
//! SNAP has gone, so the learner sees the same messages in the same order as if the
//! snapshot had been written at once. A tree that fits one step goes out at once in
//! a single SNAP, as before.

use std::collections::BTreeMap;

use bytes::Bytes;
use zab_core::{Message, Role, ServerId, SnapshotRequest};

use super::{Server, ServerAction};
use crate::codec;

/// Znodes written per step of a SNAP being streamed to a learner (about 1 µs each).
/// Larger than [`super::SNAPSHOT_STEP_NODES`]: a learner waits for this snapshot,
/// and the shell runs these steps back to back while it has no other input.
pub const SYNC_STEP_NODES: usize = 2_048;

/// Znodes of the first step, written when the SNAP is planned.
const SYNC_FIRST_STEP_NODES: usize = 64;

/// A step writes its znodes this many at a time, so that it stops soon after
/// [`SYNC_CHUNK_BYTES`] even when znodes hold up to a megabyte each.
const SYNC_STEP_GRAIN: usize = 8;

/// A step ends once it wrote this many bytes, and sends them as one chunk
/// (`SnapChunk`): no frame carries a whole large state (the TCP transport refuses
/// frames over 16 MiB by default), and the learner hears from the leader while it
/// waits.
pub const SYNC_CHUNK_BYTES: usize = 1 << 20;

/// Bytes of messages held behind one learner's SNAP before the sync is abandoned
/// (the learner asks again after `init_limit`): a write load far faster than the
/// SNAP is written must not grow the leader's memory without bound.
pub const SYNC_HELD_BYTES_MAX: usize = 256 << 20;

/// A SNAP being written for one learner.
struct SyncSnap {
    req: SnapshotRequest,
    /// The tree's snapshot stream this SNAP is written from.
    stream: u64,
    /// The state written and not yet sent (header, then the tree's steps).
    buf: Vec<u8>,
    /// Bytes of the state already sent in chunks.
    sent: u64,
    /// What zab-core sent the learner after the SNAP, in order.
    held: Vec<Message>,
    /// Encoded size of `held` (at most).
    held_bytes: usize,
}

/// The SNAPs being streamed, by learner.
#[derive(Default)]
pub(super) struct SyncSnaps {
    by_learner: BTreeMap<ServerId, SyncSnap>,
    /// The last snapshot stream id used (stream 0 is the periodic snapshot's).
    last_stream: u64,
}

impl Server {
    /// `Action::SendSnapshot`: starts writing the SNAP for `req.to` (replacing one
    /// still being written for it: that sync was abandoned) and writes its first step.
    pub(super) fn start_sync_snapshot(&mut self, req: SnapshotRequest) {
        let to = req.to;
        self.drop_sync_snapshot(to);
        self.syncs.last_stream += 1;
        let stream = self.syncs.last_stream;
        // The tree is exactly at `req.upto` here: every earlier Commit was applied.
        let mut buf = codec::encode_state_header(&self.session_table());
        if let Err(e) = self.tree.begin_snapshot_stream(stream, &mut buf) {
            // Stream ids are never reused, so this cannot happen; the learner would
            // wait out `init_limit` and ask again.
            tracing::error!(id = %self.id, %to, error = %e, "cannot start a SNAP");
            return;
        }
        self.syncs.by_learner.insert(
            to,
            SyncSnap {
                req,
                stream,
                buf,
                sent: 0,
                held: Vec::new(),
                held_bytes: 0,
            },
        );
        // A short first step: its chunk (or the whole SNAP of a small tree) reaches
        // the learner at once, well within the few ticks it waits before asking
        // again (it waits `init_limit` once chunks flow).
        self.sync_step(to, SYNC_FIRST_STEP_NODES.min(self.sync_step_nodes));
    }

    /// Whether a SNAP is being written (the shell then steps it without waiting for
    /// input: [`Server::handle_sync_step`]).
    pub fn sync_snapshot_pending(&self) -> bool {
        !self.syncs.by_learner.is_empty()
    }

    /// Whether a learner's sync has work left between inputs: a SNAP being written
    /// ([`Server::sync_snapshot_pending`]) or a sync stream with entries still to
    /// send ([`zab_core::Core::sync_streaming`]). The shell then calls
    /// [`Server::handle_sync_step`] after each pass without waiting for input.
    pub fn sync_pending(&self) -> bool {
        self.sync_snapshot_pending() || self.core.sync_streaming()
    }

    /// Input: writes the next step of every SNAP being streamed (a finished one is
    /// sent, followed by what was held for its learner) and sends the next step of
    /// every sync stream. Ticks run a step too.
    pub fn handle_sync_step(&mut self) {
        let learners: Vec<ServerId> = self.syncs.by_learner.keys().copied().collect();
        for to in learners {
            self.sync_step(to, self.sync_step_nodes);
        }
        if self.core.sync_streaming() {
            self.core.stream_step();
            self.pump();
        }
    }

    /// `Action::Send`: goes out now unless the learner's SNAP is still being written.
    pub(super) fn send_to_peer(&mut self, to: ServerId, msg: Message) {
        if self.syncs.by_learner.is_empty() {
            // The hot path: no SNAP being written.
            self.out.push(ServerAction::Send { to, msg });
            return;
        }
        if matches!(
            msg,
            Message::LeaderInfo { .. } | Message::Diff { .. } | Message::Trunc { .. }
        ) {
            // A new handshake or sync plan for this learner: a SNAP still being
            // written for it belongs to an attempt it has given up (held behind it,
            // this LEADERINFO would only reach it once the old SNAP was out).
            self.drop_sync_snapshot(to);
        }
        let Some(s) = self.syncs.by_learner.get_mut(&to) else {
            self.out.push(ServerAction::Send { to, msg });
            return;
        };
        if matches!(msg, Message::Ping { .. }) {
            // A ping only proves the leader alive, which the chunks do meanwhile; held,
            // a SNAP's worth of pings would reach the learner in one burst right after
            // NEWLEADER, and pings before UPTODATE make it restart the sync.
            return;
        }
        s.held_bytes += msg.encoded_len_max();
        s.held.push(msg);
        if s.held_bytes > SYNC_HELD_BYTES_MAX {
            tracing::warn!(id = %self.id, %to, "too much held behind a SNAP; sync abandoned");
            self.drop_sync_snapshot(to);
        }
    }

    /// A role or epoch change ends the syncs of the old leadership: their SNAPs and
    /// held messages are dropped (zab-core starts over with any learner).
    pub(super) fn end_sync_snapshots(&mut self, role: Role, epoch: u32) {
        let stale: Vec<ServerId> = self
            .syncs
            .by_learner
            .iter()
            .filter(|(_, s)| role != Role::Leading || s.req.epoch != epoch)
            .map(|(to, _)| *to)
            .collect();
        for to in stale {
            self.drop_sync_snapshot(to);
        }
    }

    fn drop_sync_snapshot(&mut self, to: ServerId) {
        if let Some(old) = self.syncs.by_learner.remove(&to) {
            self.tree.abort_snapshot_stream(old.stream);
        }
    }

    fn sync_step(&mut self, to: ServerId, step: usize) {
        let Some(s) = self.syncs.by_learner.get_mut(&to) else {
            return;
        };
        let mut progress = Ok(datatree::SnapshotProgress::Continue);
        let mut written = 0;
        let grain = SYNC_STEP_GRAIN.min(step);
        while written < step && s.buf.len() < SYNC_CHUNK_BYTES {
            progress = self.tree.snapshot_stream_step(s.stream, grain, &mut s.buf);
            written += grain;
            if progress != Ok(datatree::SnapshotProgress::Continue) {
                break;
            }
        }
        match progress {
            Ok(datatree::SnapshotProgress::Continue) => {
                // Every step sends what it wrote: the learner hears from the leader at
                // the pace of the steps (it restarts the handshake after a few silent
                // ticks).
                if !s.buf.is_empty() {
                    let data = Bytes::from(std::mem::take(&mut s.buf));
                    let len = data.len() as u64;
                    let msg = s.req.chunk(s.sent, data);
                    s.sent += len;
                    self.out.push(ServerAction::Send { to, msg });
                }
            }
            Ok(datatree::SnapshotProgress::Done) => {
                let Some(s) = self.syncs.by_learner.remove(&to) else {
                    return;
                };
                let msg = s.req.into_message(s.sent, Bytes::from(s.buf));
                self.out.push(ServerAction::Send { to, msg });
                for msg in s.held {
                    self.out.push(ServerAction::Send { to, msg });
                }
            }
            Err(e) => {
                // A bug (the stream lost count); without its SNAP the learner waits out
                // `init_limit` and asks again.
                tracing::error!(id = %self.id, %to, error = %e, "SNAP abandoned");
                self.drop_sync_snapshot(to);
            }
        }
    }
}

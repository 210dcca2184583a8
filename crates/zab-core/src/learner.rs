//! Followers and observers: discovery (FOLLOWERINFO, LEADERINFO, ACKEPOCH), sync
//! (DIFF/TRUNC/SNAP, NEWLEADER, UPTODATE) and broadcast (PROPOSAL/ACK/COMMIT, INFORM).
//!
//! A learner trusts only messages of its leader's epoch. Sync headers echo the learner's
//! last zxid, so a stale header from an earlier attempt is ignored unless it is still
//! right. Every proposal names the entry before it; a gap or a reordering makes the
//! learner ask for a new sync rather than guess.

use bytes::{Bytes, BytesMut};

use crate::action::{Action, Phase};
use crate::codec::SNAPSHOT_MAX_BYTES;
use crate::core::{Core, ForwardError, RoleState};
use crate::messages::{Entry, Message, PeerState};
use crate::zxid::{ServerId, Zxid};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// FOLLOWERINFO sent, waiting for LEADERINFO.
    AwaitLeaderInfo,
    /// Waiting for `accepted_epoch` to be durable before ACKEPOCH.
    AwaitEpochSaved,
    /// ACKEPOCH sent, waiting for DIFF/TRUNC/SNAP.
    AwaitHeader,
    /// Header applied, receiving the stream.
    Syncing,
    /// NEWLEADER(zxid) received: waiting for the log up to it and `current_epoch` to be
    /// durable before acknowledging.
    AwaitDurable { zxid: Zxid },
    /// NEWLEADER acknowledged, waiting for UPTODATE.
    AwaitUpToDate,
    /// Serving.
    Broadcast,
}

/// State of a following or observing server.
#[derive(Debug, Clone)]
pub(crate) struct LearnerState {
    pub(crate) leader: ServerId,
    observer: bool,
    /// The leader's epoch, from LEADERINFO.
    pub(crate) epoch: Option<u32>,
    stage: Stage,
    /// Ticks since the last valid message from the leader.
    silent_ticks: u64,
    /// Ticks since discovery started (reset on reaching broadcast).
    phase_ticks: u64,
    /// Highest zxid acknowledged to the leader.
    acked: Zxid,
    /// Consecutive pings showing the leader ahead of us.
    lagging_pings: u32,
    /// Ticks since we acknowledged NEWLEADER (in `AwaitUpToDate`).
    upto_date_ticks: u64,
    /// The NEWLEADER zxid we acknowledged.
    newleader: Zxid,
    /// The snapshot zxid and the bytes of the SNAP's chunks received so far.
    snap_chunks: Option<(Zxid, BytesMut)>,
}

impl LearnerState {
    pub(crate) fn new(leader: ServerId, observer: bool) -> Self {
        LearnerState {
            leader,
            observer,
            epoch: None,
            stage: Stage::AwaitLeaderInfo,
            silent_ticks: 0,
            phase_ticks: 0,
            acked: Zxid::ZERO,
            lagging_pings: 0,
            upto_date_ticks: 0,
            newleader: Zxid::ZERO,
            snap_chunks: None,
        }
    }

    pub(crate) fn phase(&self) -> Phase {
        match self.stage {
            Stage::AwaitLeaderInfo | Stage::AwaitEpochSaved => Phase::Discovery,
            Stage::Broadcast => Phase::Broadcast,
            _ => Phase::Sync,
        }
    }

    fn after_header(&self) -> bool {
        matches!(
            self.stage,
            Stage::Syncing | Stage::AwaitDurable { .. } | Stage::AwaitUpToDate | Stage::Broadcast
        )
    }
}

impl Core {
    fn learner(&mut self) -> Option<&mut LearnerState> {
        match &mut self.role {
            RoleState::Following(l) | RoleState::Observing(l) => Some(l),
            _ => None,
        }
    }

    fn learner_ref(&self) -> Option<&LearnerState> {
        match &self.role {
            RoleState::Following(l) | RoleState::Observing(l) => Some(l),
            _ => None,
        }
    }

    /// Called by `become_following` / `become_observing`.
    pub(crate) fn learner_start(&mut self) {
        self.send_follower_info();
    }

    fn send_follower_info(&mut self) {
        let Some(l) = self.learner() else { return };
        l.stage = Stage::AwaitLeaderInfo;
        l.epoch = None;
        let leader = l.leader;
        let msg = Message::FollowerInfo {
            accepted_epoch: self.accepted_requested,
            last_zxid: self.log.last(),
        };
        self.send(leader, msg);
        self.report_role();
    }

    /// Something in the stream does not fit: start discovery with the same leader again.
    fn resync(&mut self, why: &str) {
        tracing::debug!(id = %self.cfg.id, why, "re-syncing with the leader");
        self.send_follower_info();
    }

    pub(crate) fn step_follower(&mut self, from: ServerId, msg: Message) {
        self.step_learner(from, msg, PeerState::Following);
    }

    pub(crate) fn step_observer(&mut self, from: ServerId, msg: Message) {
        self.step_learner(from, msg, PeerState::Observing);
    }

    fn step_learner(&mut self, from: ServerId, msg: Message, state: PeerState) {
        if let Message::Notification { .. } = msg {
            self.answer_looking_peer(from, &msg, state);
            return;
        }
        let Some(l) = self.learner_ref() else { return };
        if from != l.leader {
            return;
        }
        if let Message::LeaderInfo { epoch } = msg {
            self.on_leader_info(epoch);
            return;
        }
        let Some(epoch) = l.epoch else { return };
        if msg_epoch(&msg) != Some(epoch) {
            return; // another epoch's leader incarnation: stale
        }
        if let Some(l) = self.learner() {
            // Pings prove the leader alive, not that our handshake progresses.
            if l.stage == Stage::Broadcast || !matches!(msg, Message::Ping { .. }) {
                l.silent_ticks = 0;
            }
        }
        match msg {
            Message::Diff { echo, .. } => self.on_header(echo, Header::Diff),
            Message::Trunc { echo, to, .. } => self.on_header(echo, Header::Trunc(to)),
            Message::Snap {
                echo,
                zxid,
                chunked,
                data,
                ..
            } => {
                if let Some(data) = self.snapshot_data(zxid, chunked, data) {
                    self.on_header(echo, Header::Snap(zxid, data));
                }
            }
            Message::SnapChunk {
                zxid, offset, data, ..
            } => self.on_snap_chunk(zxid, offset, data),
            Message::Proposal { prev, entry, .. } => self.on_proposal(prev, entry),
            Message::Commit { zxid, .. }
                if self.learner_ref().is_some_and(|l| l.after_header()) =>
            {
                self.commit_upto(zxid);
            }
            Message::NewLeader { zxid, .. } => self.on_new_leader(zxid),
            Message::UpToDate { committed, .. } => self.on_up_to_date(committed),
            Message::Inform { prev, entry, .. } => self.on_inform(prev, entry),
            Message::Ping {
                last_zxid,
                committed,
                ..
            } => self.on_ping(epoch, last_zxid, committed),
            _ => {}
        }
    }

    fn on_leader_info(&mut self, epoch: u32) {
        let Some(l) = self.learner_ref() else { return };
        if l.stage != Stage::AwaitLeaderInfo {
            return;
        }
        if epoch < self.accepted_requested.max(self.current_durable) {
            tracing::info!(id = %self.cfg.id, epoch, "leader proposes an old epoch; re-electing");
            self.become_looking();
            return;
        }
        if let Some(l) = self.learner() {
            l.epoch = Some(epoch);
            l.silent_ticks = 0;
        }
        if epoch > self.accepted_durable {
            if epoch > self.accepted_requested {
                self.accepted_requested = epoch;
                self.push(Action::SaveAcceptedEpoch { epoch });
            }
            if let Some(l) = self.learner() {
                l.stage = Stage::AwaitEpochSaved;
            }
        } else {
            // Already accepted. Unless we accepted it from this very leader (a re-sync),
            // another leader may hold our promise for this epoch: the ack must not count
            // towards establishing it (ZooKeeper's ACKEPOCH with -1).
            let leader = self.learner_ref().map(|l| l.leader);
            let fresh = leader.is_some_and(|l| self.fresh_ack == Some((epoch, l)));
            self.send_ack_epoch(epoch, fresh);
        }
    }

    pub(crate) fn learner_accepted_epoch_saved(&mut self, saved: u32) {
        let Some(l) = self.learner_ref() else { return };
        if l.stage != Stage::AwaitEpochSaved || l.epoch != Some(saved) {
            return;
        }
        // ACKEPOCH is sent only now that `accepted_epoch` is durable: a crash after the
        // ack must not let this server forget the promise it made.
        self.send_ack_epoch(saved, true);
    }

    fn send_ack_epoch(&mut self, epoch: u32, fresh: bool) {
        let msg = Message::AckEpoch {
            epoch,
            fresh,
            current_epoch: self.current_durable,
            last_zxid: self.log.last(),
        };
        let Some(l) = self.learner() else { return };
        l.stage = Stage::AwaitHeader;
        let leader = l.leader;
        if fresh {
            self.fresh_ack = Some((epoch, leader));
        }
        self.send(leader, msg);
        self.report_role();
    }

    fn on_header(&mut self, echo: Zxid, header: Header) {
        let Some(l) = self.learner_ref() else { return };
        if l.stage != Stage::AwaitHeader || echo != self.log.last() {
            return; // stale header of an earlier attempt
        }
        match header {
            Header::Diff => {}
            Header::Trunc(to) => {
                if to < self.log.committed() {
                    // Never truncate what we know is committed (ZOOKEEPER-1156).
                    tracing::error!(id = %self.cfg.id, ?to, "TRUNC below the commit point; re-electing");
                    self.become_looking();
                    return;
                }
                self.log.truncate_after(to);
                self.barriers += 1;
                self.push(Action::TruncateLog { after: to });
            }
            Header::Snap(zxid, data) => {
                self.log.reset(zxid);
                self.log_floor = zxid;
                self.barriers += 1;
                self.push(Action::InstallSnapshot { zxid, data });
            }
        }
        if let Some(l) = self.learner() {
            l.stage = Stage::Syncing;
        }
    }

    /// A piece of the snapshot of the SNAP to come. Chunks must arrive in order
    /// (offset 0 starts over, as a re-planned sync does); each one is progress of the
    /// sync, so `init_limit` bounds the silence between chunks, not a whole transfer
    /// (as ZooKeeper's `initLimit` bounds each read of a learner's sync).
    fn on_snap_chunk(&mut self, zxid: Zxid, offset: u64, data: Bytes) {
        let Some(l) = self.learner() else { return };
        if l.stage != Stage::AwaitHeader {
            return;
        }
        let fits = |b: &BytesMut| b.len() + data.len() <= SNAPSHOT_MAX_BYTES;
        match &mut l.snap_chunks {
            Some((z, b)) if *z == zxid && b.len() as u64 == offset && offset > 0 && fits(b) => {
                b.extend_from_slice(&data);
            }
            _ if offset == 0 && data.len() <= SNAPSHOT_MAX_BYTES => {
                l.snap_chunks = Some((zxid, BytesMut::from(&data[..])));
            }
            _ => {
                // Out of order or too large: this snapshot cannot complete; the SNAP
                // will be refused and the handshake restarts after `init_limit`.
                l.snap_chunks = None;
                return;
            }
        }
        l.phase_ticks = 0;
    }

    /// The whole snapshot of a SNAP: its data alone, or the chunks that went ahead
    /// of it plus its data. `None` if those chunks are not all here.
    fn snapshot_data(&mut self, zxid: Zxid, chunked: u64, data: Bytes) -> Option<Bytes> {
        let chunks = self.learner()?.snap_chunks.take();
        if chunked == 0 {
            return Some(data);
        }
        match chunks {
            Some((z, mut b))
                if z == zxid
                    && b.len() as u64 == chunked
                    && b.len() + data.len() <= SNAPSHOT_MAX_BYTES =>
            {
                b.extend_from_slice(&data);
                Some(b.freeze())
            }
            _ => {
                tracing::warn!(id = %self.cfg.id, ?zxid, chunked, "SNAP without its chunks; ignored");
                None
            }
        }
    }

    fn on_proposal(&mut self, prev: Zxid, entry: Entry) {
        let Some(l) = self.learner_ref() else { return };
        if !l.after_header() || (l.observer && l.stage == Stage::Broadcast) {
            return;
        }
        let last = self.log.last();
        if entry.zxid <= last {
            return; // duplicate: the same zxid is the same txn
        }
        if prev != last {
            self.resync("gap in proposals");
            return;
        }
        self.append(entry);
    }

    fn on_inform(&mut self, prev: Zxid, entry: Entry) {
        let Some(l) = self.learner_ref() else { return };
        if !l.observer || !l.after_header() {
            return;
        }
        let last = self.log.last();
        let zxid = entry.zxid;
        if zxid > last {
            if prev != last {
                self.resync("gap in informs");
                return;
            }
            self.append(entry);
        }
        self.commit_upto(zxid);
    }

    fn on_new_leader(&mut self, zxid: Zxid) {
        let Some(l) = self.learner_ref() else { return };
        if l.stage != Stage::Syncing {
            return;
        }
        if zxid != self.log.last() {
            self.resync("missed part of the sync stream");
            return;
        }
        if let Some(l) = self.learner() {
            l.stage = Stage::AwaitDurable { zxid };
        }
        self.learner_maybe_ack_newleader();
    }

    /// ACK of NEWLEADER waits for (1) every entry of the sync stream to be durable and
    /// then (2) `current_epoch` to be durable. ZOOKEEPER-3911 / -4785: a learner that
    /// acknowledged NEWLEADER before logging what it was sent let the leader commit
    /// txns that a crash then erased. And `current_epoch` is saved only after the log,
    /// so a crash can never leave the new epoch paired with an old, shorter log (which
    /// would win elections with missing txns).
    pub(crate) fn learner_maybe_ack_newleader(&mut self) {
        let Some(l) = self.learner_ref() else { return };
        let (Stage::AwaitDurable { zxid }, Some(epoch)) = (l.stage, l.epoch) else {
            return;
        };
        if self.barriers > 0 || self.log.durable() < zxid {
            return;
        }
        if self.current_durable < epoch {
            if self.current_requested < epoch {
                self.current_requested = epoch;
                self.push(Action::SaveCurrentEpoch { epoch });
            }
            return;
        }
        let Some(l) = self.learner() else { return };
        l.stage = Stage::AwaitUpToDate;
        l.upto_date_ticks = 0;
        l.newleader = zxid;
        l.acked = l.acked.max(zxid);
        let leader = l.leader;
        self.send(leader, Message::AckNewLeader { epoch, zxid });
    }

    fn on_up_to_date(&mut self, committed: Zxid) {
        let Some(l) = self.learner() else { return };
        match l.stage {
            Stage::AwaitUpToDate => {
                l.stage = Stage::Broadcast;
                l.phase_ticks = 0;
                self.commit_upto(committed);
                self.report_role();
                self.learner_after_durable();
            }
            Stage::Broadcast => {
                self.commit_upto(committed);
            }
            _ => {}
        }
    }

    fn on_ping(&mut self, epoch: u32, leader_last: Zxid, committed: Zxid) {
        let Some(l) = self.learner() else { return };
        if l.stage != Stage::Broadcast {
            // Before UPTODATE a ping says nothing about our handshake: one that reached
            // us after our ACK(NEWLEADER) may have been sent long before the leader
            // saw it (a learner catching up works through a backlog of them).
            // `tick_learner` bounds the wait for UPTODATE instead.
            return;
        }
        let leader = l.leader;
        let observer = l.observer;
        self.commit_upto(committed);
        self.send(leader, Message::PingReply { epoch });
        // Followers must have everything the leader proposed, observers everything it
        // committed; two pings in a row that show us behind mean we lost part of the
        // stream.
        let ahead = if observer { committed } else { leader_last };
        let behind = ahead > self.log.last();
        let Some(l) = self.learner() else { return };
        l.lagging_pings = if behind { l.lagging_pings + 1 } else { 0 };
        if l.lagging_pings >= 2 {
            l.lagging_pings = 0;
            self.resync("behind the leader");
        }
    }

    /// Followers acknowledge proposals once durable (cumulative ACK), never before.
    pub(crate) fn learner_after_durable(&mut self) {
        self.learner_maybe_ack_newleader();
        let durable = self.log.durable();
        let barriers = self.barriers;
        let Some(l) = self.learner() else { return };
        let (Stage::AwaitUpToDate | Stage::Broadcast, false, Some(epoch)) =
            (l.stage, l.observer, l.epoch)
        else {
            return;
        };
        // The durable point only moves on completions of our own appends, which follow
        // the leader's history since the header; no ACK while a barrier is pending.
        if barriers == 0 && durable > l.acked {
            l.acked = durable;
            let leader = l.leader;
            self.send(
                leader,
                Message::Ack {
                    epoch,
                    zxid: durable,
                },
            );
        }
    }

    pub(crate) fn tick_learner(&mut self) {
        let (init, sync, resend) = (
            self.cfg.init_limit_ticks,
            self.cfg.sync_limit_ticks,
            self.cfg.resend_ticks,
        );
        let Some(l) = self.learner() else { return };
        l.silent_ticks += 1;
        l.phase_ticks += 1;
        // Once the sync header is in, the sync stream itself is the progress:
        // `init_limit` bounds its silence, not the whole sync (as ZooKeeper's
        // `initLimit` bounds each read of a learner's sync socket), so a learner that
        // works through a large SNAP and the backlog behind it is not cut off midway.
        let give_up = match l.stage {
            Stage::Broadcast => l.silent_ticks > sync,
            Stage::Syncing | Stage::AwaitDurable { .. } | Stage::AwaitUpToDate => {
                l.silent_ticks > init
            }
            _ => l.phase_ticks > init,
        };
        if give_up {
            tracing::info!(id = %self.cfg.id, "leader silent; re-electing");
            self.become_looking();
            return;
        }
        if l.stage == Stage::AwaitUpToDate {
            // Our ACK(NEWLEADER) or the leader's UPTODATE may have been lost: re-send
            // the ACK every `resend_ticks` (the leader answers a repeated one with
            // UPTODATE again). Pings cannot tell a loss from a backlog: those queued
            // before UPTODATE behind a long sync stream were sent before the leader
            // saw our ACK.
            l.upto_date_ticks += 1;
            if l.upto_date_ticks % resend == 0 {
                let (leader, zxid) = (l.leader, l.newleader);
                if let Some(epoch) = l.epoch {
                    self.send(leader, Message::AckNewLeader { epoch, zxid });
                }
            }
            return;
        }
        let waiting_on_leader = matches!(
            l.stage,
            Stage::AwaitLeaderInfo | Stage::AwaitHeader | Stage::Syncing
        );
        // A FOLLOWERINFO that reached the leader while it was still LOOKING is lost
        // (it ignores it): re-send it every tick, not every `resend_ticks`, or each
        // failover where the follower decided first waited ~3 ticks (150 ms by
        // default) in discovery. Later stages keep the slower restart: a sync may
        // legitimately take several ticks.
        // While a SNAP streams in, its chunks show the handshake alive: a restart
        // would only throw the transfer away, so it waits for `init_limit` of silence.
        let every = if l.stage == Stage::AwaitLeaderInfo {
            1
        } else if l.snap_chunks.is_some() {
            init.max(resend)
        } else {
            resend
        };
        if waiting_on_leader && l.silent_ticks >= every && l.silent_ticks % every == 0 {
            // Something of the handshake was lost: start it over with the same leader.
            self.send_follower_info();
        }
    }

    pub(crate) fn learner_forward(&mut self, payload: Bytes) -> Result<(), ForwardError> {
        let Some(l) = self.learner_ref() else {
            return Err(ForwardError::NotSynced);
        };
        let (Stage::Broadcast, Some(epoch)) = (l.stage, l.epoch) else {
            return Err(ForwardError::NotSynced);
        };
        let leader = l.leader;
        self.send(leader, Message::Request { epoch, payload });
        Ok(())
    }
}

enum Header {
    Diff,
    Trunc(Zxid),
    Snap(Zxid, Bytes),
}

/// The leader epoch a leader-to-learner message carries.
fn msg_epoch(msg: &Message) -> Option<u32> {
    match msg {
        Message::Diff { epoch, .. }
        | Message::Trunc { epoch, .. }
        | Message::Snap { epoch, .. }
        | Message::SnapChunk { epoch, .. }
        | Message::Proposal { epoch, .. }
        | Message::Commit { epoch, .. }
        | Message::NewLeader { epoch, .. }
        | Message::UpToDate { epoch, .. }
        | Message::Inform { epoch, .. }
        | Message::Ping { epoch, .. } => Some(*epoch),
        _ => None,
    }
}

#[cfg(test)]
#[path = "learner_tests.rs"]
mod tests;

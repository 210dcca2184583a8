//! The leader in discovery (choose and establish a new epoch) and sync (bring each
//! learner to a prefix of its history); broadcast is in `broadcast.rs`.

use std::collections::{BTreeMap, BTreeSet};

use crate::action::{Action, Phase, SnapshotRequest};
use crate::core::{Core, RoleState};
use crate::messages::{Message, PeerState};
use crate::sync::{plan_sync, SyncPlan};
use crate::zxid::{ServerId, Zxid};

/// The leader's view of one learner (ZooKeeper's LearnerHandler).
#[derive(Debug, Clone)]
pub(crate) struct Handler {
    pub(crate) observer: bool,
    pub(crate) stage: Stage,
    /// Last zxid streamed to the learner (proposals, or informs for observers).
    pub(crate) sent: Zxid,
    /// Highest zxid the learner reported durable.
    pub(crate) acked: Zxid,
    /// Tick of the last message heard from the learner.
    pub(crate) heard_at: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// LEADERINFO sent (or about to be), waiting for ACKEPOCH.
    AwaitAckEpoch,
    /// ACKEPOCH received before the epoch was acknowledged by a quorum.
    EpochAcked { last: Zxid },
    /// The learner is behind the window: its stream is read from the durable log
    /// (`Action::ReadLog`, one read at a time, from `Handler::sent`) until it reaches
    /// the window, and goes on as `Streaming` from there (see `log_sync.rs`).
    Reading {
        /// The learner's last zxid (where the DIFF starts).
        start: Zxid,
        /// Whether the DIFF header went out (after the first read proved `start` is
        /// in this leader's history).
        diff_sent: bool,
        /// The read in flight (`Action::ReadLog::token`).
        token: u64,
        /// The window's base when reading started: the window keeps every entry
        /// after it until the stream moves on, so the reads reach it and finish
        /// however fast txns commit meanwhile.
        pin: Zxid,
    },
    /// Sync header sent; the entries after it go out in steps (`Core::stream_step`)
    /// from `Handler::sent` on, each with a COMMIT of its committed part; NEWLEADER
    /// follows the last.
    /// The learner gets no broadcast proposal or commit meanwhile: the stream reads
    /// the log up to its end, so it carries those too.
    Streaming {
        /// Where the stream started (the learner's position after the header).
        start: Zxid,
        /// The end of the log at the previous step.
        seen: Zxid,
    },
    /// Sync stream sent, waiting for the ACK of NEWLEADER at this zxid.
    Syncing { newleader: Zxid },
    /// NEWLEADER acknowledged; in broadcast once the epoch is established.
    Synced,
}

/// State of a leading server.
#[derive(Debug)]
pub(crate) struct LeaderState {
    /// The epoch being established, once chosen.
    pub(crate) epoch: Option<u32>,
    pub(crate) started_at: u64,
    /// Accepted epochs reported in FOLLOWERINFO, to choose the new epoch.
    infos: BTreeMap<ServerId, u32>,
    /// Fresh ACKEPOCHs (self included once its accepted epoch is durable).
    epoch_acks: BTreeSet<ServerId>,
    epoch_acked: bool,
    /// Last zxid of the initial history, fixed when the epoch is acknowledged.
    newleader_zxid: Zxid,
    /// ACKs of NEWLEADER from voters (self included once current_epoch is durable).
    newleader_acks: BTreeSet<ServerId>,
    pub(crate) established: bool,
    pub(crate) learners: BTreeMap<ServerId, Handler>,
    /// Voters that, since this server started leading, announced a LOOKING round newer
    /// than the one that elected it (and have not sent FOLLOWERINFO since).
    moved_on: BTreeSet<ServerId>,
    /// Learners whose sync from the durable log failed after its DIFF header went
    /// out: their next sync is a SNAP, so a log that cannot be read costs no loop.
    pub(crate) no_log_diff: BTreeSet<ServerId>,
}

impl LeaderState {
    pub(crate) fn new(tick: u64) -> Self {
        LeaderState {
            epoch: None,
            started_at: tick,
            infos: BTreeMap::new(),
            epoch_acks: BTreeSet::new(),
            epoch_acked: false,
            newleader_zxid: Zxid::ZERO,
            newleader_acks: BTreeSet::new(),
            established: false,
            learners: BTreeMap::new(),
            moved_on: BTreeSet::new(),
            no_log_diff: BTreeSet::new(),
        }
    }

    pub(crate) fn phase(&self) -> Phase {
        if self.established {
            Phase::Broadcast
        } else if self.epoch_acked {
            Phase::Sync
        } else {
            Phase::Discovery
        }
    }
}

impl Core {
    pub(crate) fn leader(&mut self) -> Option<&mut LeaderState> {
        match &mut self.role {
            RoleState::Leading(l) => Some(l),
            _ => None,
        }
    }

    pub(crate) fn leader_ref(&self) -> Option<&LeaderState> {
        match &self.role {
            RoleState::Leading(l) => Some(l),
            _ => None,
        }
    }

    /// Learners that acknowledged NEWLEADER, when leading.
    pub(crate) fn synced_learners(&self) -> usize {
        self.leader_ref().map_or(0, |l| {
            l.learners
                .values()
                .filter(|h| h.stage == Stage::Synced)
                .count()
        })
    }

    /// Called by `become_leading`.
    pub(crate) fn leader_start(&mut self) {
        self.maybe_choose_epoch();
    }

    /// Discovery: once a quorum (self included) sent FOLLOWERINFO, the new epoch is one
    /// more than every accepted epoch seen.
    fn maybe_choose_epoch(&mut self) {
        let me = self.cfg.id;
        let mine = self.accepted_requested;
        let Some(l) = self.leader_ref() else { return };
        if l.epoch.is_some() {
            return;
        }
        let mut ids: BTreeSet<ServerId> = l.infos.keys().copied().collect();
        ids.insert(me);
        if !self.cfg.quorum.contains_quorum(&ids) {
            return;
        }
        let max_seen = l.infos.values().copied().max().unwrap_or(0).max(mine);
        let Some(epoch) = max_seen.checked_add(1) else {
            tracing::error!("epoch space exhausted");
            return;
        };
        let learners: Vec<ServerId> = l.learners.keys().copied().collect();
        if let Some(l) = self.leader() {
            l.epoch = Some(epoch);
        }
        self.accepted_requested = epoch;
        self.push(Action::SaveAcceptedEpoch { epoch });
        for to in learners {
            self.send(to, Message::LeaderInfo { epoch });
        }
        self.report_role();
    }

    pub(crate) fn leader_accepted_epoch_saved(&mut self, epoch: u32) {
        let me = self.cfg.id;
        let Some(l) = self.leader() else { return };
        if l.epoch == Some(epoch) {
            l.epoch_acks.insert(me);
            self.maybe_epoch_quorum();
        }
    }

    fn maybe_epoch_quorum(&mut self) {
        let last = self.log.last();
        let Some(l) = self.leader_ref() else { return };
        if l.epoch_acked || !self.cfg.quorum.contains_quorum(&l.epoch_acks) {
            return;
        }
        let pending: Vec<(ServerId, Zxid)> = l
            .learners
            .iter()
            .filter_map(|(id, h)| match h.stage {
                Stage::EpochAcked { last } => Some((*id, last)),
                _ => None,
            })
            .collect();
        if let Some(l) = self.leader() {
            l.epoch_acked = true;
            l.newleader_zxid = last;
        }
        self.report_role();
        for (id, learner_last) in pending {
            self.start_sync(id, learner_last);
        }
        self.leader_maybe_save_current_epoch();
    }

    /// The leader counts itself for NEWLEADER once its own initial history is durable
    /// and `current_epoch` saved, exactly like a follower would (ZOOKEEPER-3911).
    fn leader_maybe_save_current_epoch(&mut self) {
        let Some(l) = self.leader_ref() else { return };
        let Some(epoch) = l.epoch else { return };
        if !l.epoch_acked || self.log.durable() < l.newleader_zxid || self.barriers > 0 {
            return;
        }
        if self.current_durable >= epoch {
            let me = self.cfg.id;
            if let Some(l) = self.leader() {
                l.newleader_acks.insert(me);
            }
            self.maybe_establish();
        } else if self.current_requested < epoch {
            self.current_requested = epoch;
            self.push(Action::SaveCurrentEpoch { epoch });
        }
    }

    pub(crate) fn leader_current_epoch_saved(&mut self, _epoch: u32) {
        self.leader_maybe_save_current_epoch();
    }

    pub(crate) fn leader_after_durable(&mut self) {
        self.leader_maybe_save_current_epoch();
        self.maybe_advance_commit();
    }

    /// Starts the sync stream: the header now, then the proposals in steps with
    /// their commits, and NEWLEADER (`stream_learner`). A learner behind the window is
    /// first tried from the durable log (`start_log_sync`) when the shell can read it.
    fn start_sync(&mut self, to: ServerId, learner_last: Zxid) {
        let Some(l) = self.leader_ref() else { return };
        if l.epoch.is_none() || !l.learners.contains_key(&to) {
            return;
        }
        let plan = plan_sync(&self.log, learner_last);
        if matches!(plan, SyncPlan::Snap { .. })
            && self.cfg.diff_from_log
            && learner_last > Zxid::ZERO
            && learner_last >= self.log_floor
            && !l.no_log_diff.contains(&to)
        {
            self.start_log_sync(to, learner_last);
            return;
        }
        self.send_sync_header(to, learner_last, plan);
    }

    /// Sends the header of `plan` (or asks the shell for the SNAP) and starts the
    /// stream of what follows it.
    pub(crate) fn send_sync_header(&mut self, to: ServerId, learner_last: Zxid, plan: SyncPlan) {
        let Some(epoch) = self.leader_ref().and_then(|l| l.epoch) else {
            return;
        };
        match plan {
            SyncPlan::Diff { .. } => self.send(
                to,
                Message::Diff {
                    epoch,
                    echo: learner_last,
                },
            ),
            SyncPlan::Trunc { to: keep } => self.send(
                to,
                Message::Trunc {
                    epoch,
                    echo: learner_last,
                    to: keep,
                },
            ),
            SyncPlan::Snap { at } => self.push(Action::SendSnapshot(SnapshotRequest {
                to,
                upto: at,
                epoch,
                echo: learner_last,
            })),
        }
        self.begin_stream(to, plan.start(), plan.start());
    }

    /// Moves `to` into `Stage::Streaming` of a stream that started at `start` and has
    /// sent up to `sent`, and sends its first step.
    pub(crate) fn begin_stream(&mut self, to: ServerId, start: Zxid, sent: Zxid) {
        let (last, committed) = (self.log.last(), self.log.committed());
        if let Some(h) = self.leader().and_then(|l| l.learners.get_mut(&to)) {
            // What the log holds now is the stream's backlog; only what it gains
            // later widens a step.
            let seen = if h.observer { committed } else { last };
            h.stage = Stage::Streaming { start, seen };
            h.sent = sent;
        }
        self.stream_learner(to);
    }

    /// Whether a learner's sync stream still has entries to send (the shell then
    /// calls [`Core::stream_step`] without waiting for input).
    pub fn sync_streaming(&self) -> bool {
        self.leader_ref().is_some_and(|l| {
            l.learners
                .values()
                .any(|h| matches!(h.stage, Stage::Streaming { .. }))
        })
    }

    /// Input: sends the next step (`Config::sync_stream_step` entries) of every
    /// learner's sync stream, each with a COMMIT of its committed part; a stream that
    /// reaches the end of the log gets NEWLEADER. Nothing when no stream runs.
    pub fn stream_step(&mut self) {
        let streaming: Vec<ServerId> = self
            .leader_ref()
            .map(|l| {
                l.learners
                    .iter()
                    .filter(|(_, h)| matches!(h.stage, Stage::Streaming { .. }))
                    .map(|(id, _)| *id)
                    .collect()
            })
            .unwrap_or_default();
        for to in streaming {
            self.stream_learner(to);
        }
    }

    /// The lowest position of a running sync stream (or, for a stream still read
    /// from the log, the window's base when reading started): the window keeps every
    /// entry after it (see `Log::set_pin`).
    pub(crate) fn stream_pin(&self) -> Option<Zxid> {
        self.leader_ref().and_then(|l| {
            l.learners
                .values()
                .filter_map(|h| match h.stage {
                    Stage::Streaming { .. } => Some(h.sent),
                    Stage::Reading { pin, .. } => Some(pin),
                    _ => None,
                })
                .min()
        })
    }

    /// One step of `to`'s sync stream: the next entries after `Handler::sent`, a
    /// COMMIT of the committed ones, and when they reach the end (the last entry; the
    /// commit point for observers, which only get committed txns) NEWLEADER. Followers get the
    /// whole history, the uncommitted tail included (issue 1 of the protocol-spec
    /// notes: a learner that misses proposals made while it syncs loses them forever).
    fn stream_learner(&mut self, to: ServerId) {
        let Some(l) = self.leader_ref() else { return };
        let Some(epoch) = l.epoch else { return };
        let Some(h) = l.learners.get(&to) else { return };
        let Stage::Streaming { start, seen } = h.stage else {
            return;
        };
        let from = h.sent;
        if from < self.log.base() {
            // Cannot happen: the window is pinned at the lowest stream position
            // (`stream_pin`). Were it trimmed, the next entry would not follow `from`;
            // drop the learner instead, so that it asks again and gets a SNAP.
            tracing::warn!(id = %self.cfg.id, learner = %to, "sync stream fell behind the window; dropping the learner");
            debug_assert!(false, "sync stream of {to} behind the window");
            if let Some(l) = self.leader() {
                l.learners.remove(&to);
            }
            return;
        }
        let end = if h.observer {
            self.log.committed()
        } else {
            self.log.last()
        };
        // A step sends what the log gained since the previous one on top of
        // `sync_stream_step`: the distance to the end shrinks by a full step each
        // time, so the stream finishes (and releases its pin on the window) however
        // fast proposals arrive. Those extra entries cost what broadcasting them to a
        // synced learner would have.
        let gained = self.log.count_between(seen.max(from), end);
        let max = self.cfg.sync_stream_step.saturating_add(gained);
        let step = self.log.range_capped(from, end, max);
        let mut prev = from;
        for entry in step {
            let zxid = entry.zxid;
            self.send(to, Message::Proposal { epoch, prev, entry });
            prev = zxid;
        }
        let done = prev >= end;
        // The committed part of each step is committed at once, as ZooKeeper's DIFF
        // pairs each proposal with its COMMIT: the learner applies (and trims) step by
        // step instead of a whole backlog in one pass when the stream ends.
        let committed = self.log.committed().min(prev);
        if committed > start && committed > from {
            self.send(
                to,
                Message::Commit {
                    epoch,
                    zxid: committed,
                },
            );
        }
        if done {
            self.send(to, Message::NewLeader { epoch, zxid: prev });
        }
        if let Some(h) = self.leader().and_then(|l| l.learners.get_mut(&to)) {
            h.sent = prev;
            h.stage = if done {
                Stage::Syncing { newleader: prev }
            } else {
                Stage::Streaming { start, seen: end }
            };
        }
    }

    pub(crate) fn step_leader(&mut self, from: ServerId, msg: Message) {
        let tick = self.tick;
        let epoch = self.leader_ref().and_then(|l| l.epoch);
        // Only messages of our epoch prove the learner still follows us: a former
        // follower that went LOOKING keeps sending notifications, which must not keep
        // a leader without a quorum alive.
        let ours = match &msg {
            Message::AckEpoch { epoch: e, .. }
            | Message::AckNewLeader { epoch: e, .. }
            | Message::Ack { epoch: e, .. }
            | Message::PingReply { epoch: e }
            | Message::Request { epoch: e, .. } => Some(*e) == epoch,
            _ => false,
        };
        if ours {
            if let Some(h) = self.leader().and_then(|l| l.learners.get_mut(&from)) {
                h.heard_at = tick;
            }
        }
        match msg {
            Message::Notification { .. } => {
                if self.leader_gives_up(from, &msg) {
                    return;
                }
                self.answer_looking_peer(from, &msg, PeerState::Leading);
            }
            Message::FollowerInfo {
                accepted_epoch,
                last_zxid: _,
            } => self.leader_on_follower_info(from, accepted_epoch),
            Message::AckEpoch {
                epoch: e,
                fresh,
                current_epoch,
                last_zxid,
            } if Some(e) == epoch => {
                self.leader_on_ack_epoch(from, fresh, current_epoch, last_zxid)
            }
            Message::AckNewLeader { epoch: e, zxid } if Some(e) == epoch => {
                self.leader_on_ack_newleader(from, zxid)
            }
            Message::Ack { epoch: e, zxid } if Some(e) == epoch => {
                let Some(h) = self.leader().and_then(|l| l.learners.get_mut(&from)) else {
                    return;
                };
                if h.stage == Stage::Synced && !h.observer {
                    h.acked = h.acked.max(zxid.min(h.sent));
                    self.maybe_advance_commit();
                }
            }
            Message::Request { epoch: e, payload } if Some(e) == epoch => {
                let synced = self
                    .leader_ref()
                    .is_some_and(|l| l.established && l.learners.contains_key(&from));
                if synced {
                    self.push(Action::Request {
                        origin: from,
                        payload,
                    });
                }
            }
            _ => {}
        }
    }

    /// A leader that has not established its epoch steps down at once, instead of
    /// waiting out `init_limit_ticks`, when the voters that have moved on to a newer
    /// election round leave too few to ever form a quorum with it: it then joins that
    /// round with `msg`. Without this, two would-be leaders whose timeouts are out of
    /// step can each win a round while the other is still busy failing, and the
    /// ensemble never converges (found by the simulator: seed 150120, five voters
    /// and an observer, after a partition healed). Returns whether it stepped down.
    fn leader_gives_up(&mut self, from: ServerId, msg: &Message) -> bool {
        let &Message::Notification {
            state: PeerState::Looking,
            election_epoch,
            ..
        } = msg
        else {
            return false;
        };
        if election_epoch <= self.logical_clock || !self.is_voter(from) {
            return false; // that round is ours or older: not news
        }
        let voters = self.cfg.quorum.voters();
        let Some(l) = self.leader() else { return false };
        if l.established {
            // An established leader keeps its quorum by pings (`sync_limit_ticks`).
            return false;
        }
        l.moved_on.insert(from);
        let reachable: BTreeSet<ServerId> = voters
            .into_iter()
            .filter(|v| !l.moved_on.contains(v))
            .collect();
        if self.cfg.quorum.contains_quorum(&reachable) {
            return false;
        }
        tracing::info!(id = %self.cfg.id, round = election_epoch, "too many voters moved on to a newer election; stepping down");
        self.become_looking();
        self.step_looking(from, msg.clone());
        true
    }

    fn leader_on_follower_info(&mut self, from: ServerId, accepted_epoch: u32) {
        let observer = self.cfg.is_observer(from);
        let tick = self.tick;
        let Some(l) = self.leader() else { return };
        l.moved_on.remove(&from);
        // A (re)connecting learner starts over, like a new LearnerHandler.
        l.learners.insert(
            from,
            Handler {
                observer,
                stage: Stage::AwaitAckEpoch,
                sent: Zxid::ZERO,
                acked: Zxid::ZERO,
                heard_at: tick,
            },
        );
        l.newleader_acks.remove(&from);
        match l.epoch {
            Some(epoch) if accepted_epoch > epoch => {
                // The learner promised a later epoch and can never join this one
                // (ZooKeeper leaves it stranded): start over with a higher epoch.
                tracing::info!(id = %self.cfg.id, %from, accepted_epoch, "learner accepted a later epoch; re-electing");
                self.become_looking();
            }
            Some(epoch) => self.send(from, Message::LeaderInfo { epoch }),
            None => {
                l.infos.insert(from, accepted_epoch);
                self.maybe_choose_epoch();
            }
        }
    }

    fn leader_on_ack_epoch(
        &mut self,
        from: ServerId,
        fresh: bool,
        current_epoch: u32,
        last_zxid: Zxid,
    ) {
        let mine = (self.current_durable, self.log.last());
        let voter = self.is_voter(from);
        let Some(l) = self.leader() else { return };
        let Some(h) = l.learners.get_mut(&from) else {
            return;
        };
        if h.stage != Stage::AwaitAckEpoch {
            return; // duplicate
        }
        if !l.epoch_acked && (current_epoch, last_zxid) > mine {
            // A quorum member knows a more recent history than ours: we must not lead,
            // or txns it may have committed would be truncated away.
            tracing::info!(id = %self.cfg.id, %from, "learner more up to date than leader; re-electing");
            self.become_looking();
            return;
        }
        h.stage = Stage::EpochAcked { last: last_zxid };
        if fresh && voter {
            l.epoch_acks.insert(from);
        }
        if l.epoch_acked {
            self.start_sync(from, last_zxid);
        } else {
            self.maybe_epoch_quorum();
        }
    }

    fn leader_on_ack_newleader(&mut self, from: ServerId, zxid: Zxid) {
        let voter = self.is_voter(from);
        let committed = self.log.committed();
        let Some(l) = self.leader() else { return };
        let Some(h) = l.learners.get_mut(&from) else {
            return;
        };
        if h.stage == Stage::Synced && l.established && zxid <= h.acked {
            // A repeated ACK: the learner has not seen our UPTODATE (lost, or still
            // behind its backlog). Sending it again changes nothing here.
            let epoch = l.epoch.unwrap_or(0);
            self.send(from, Message::UpToDate { epoch, committed });
            return;
        }
        if h.stage != (Stage::Syncing { newleader: zxid }) {
            return; // stale or duplicate
        }
        h.stage = Stage::Synced;
        h.acked = h.acked.max(zxid);
        if l.established {
            let epoch = l.epoch.unwrap_or(0);
            // Issue 3 of the protocol-spec notes: UPTODATE carries the leader's
            // current commit point, not the NEWLEADER zxid.
            self.send(from, Message::UpToDate { epoch, committed });
            self.maybe_advance_commit();
        } else if voter {
            l.newleader_acks.insert(from);
            self.maybe_establish();
        }
    }

    /// A quorum acknowledged NEWLEADER (self included): the initial history is
    /// committed and the epoch established.
    pub(crate) fn maybe_establish(&mut self) {
        let Some(l) = self.leader_ref() else { return };
        if l.established || !l.epoch_acked || !self.cfg.quorum.contains_quorum(&l.newleader_acks) {
            return;
        }
        let upto = l.newleader_zxid;
        let epoch = l.epoch.unwrap_or(0);
        if let Some(l) = self.leader() {
            l.established = true;
        }
        tracing::info!(id = %self.cfg.id, epoch, "epoch established");
        self.leader_commit(upto);
        let synced: Vec<ServerId> = self
            .leader_ref()
            .map(|l| {
                l.learners
                    .iter()
                    .filter(|(_, h)| h.stage == Stage::Synced)
                    .map(|(id, _)| *id)
                    .collect()
            })
            .unwrap_or_default();
        let committed = self.log.committed();
        for to in synced {
            self.send(to, Message::UpToDate { epoch, committed });
        }
        self.report_role();
        self.maybe_advance_commit();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::core::testkit::{core, elect};
    use crate::messages::Vote;
    use crate::Role;

    fn looking(leader: u64, round: u64) -> Message {
        Message::Notification {
            vote: Vote {
                leader: ServerId(leader),
                zxid: Zxid::ZERO,
                peer_epoch: 0,
            },
            election_epoch: round,
            state: PeerState::Looking,
        }
    }

    /// A would-be leader gives up as soon as the voters that moved on to a newer round
    /// leave it no quorum, and joins that round; older rounds, a minority, and voters
    /// that came back with FOLLOWERINFO do not make it give up.
    #[test]
    fn an_unestablished_leader_steps_down_when_a_quorum_moved_on() {
        let mut c = core(3);
        elect(&mut c, 3);
        assert_eq!(c.status().role, Role::Leading);
        let round = c.logical_clock;
        // The election that chose us, or an older one: not news.
        c.handle_message(ServerId(1), looking(1, round));
        c.handle_message(ServerId(2), looking(2, round));
        assert_eq!(c.status().role, Role::Leading);
        // One voter of three moved on: 3 and 2 could still form a quorum.
        c.handle_message(ServerId(1), looking(1, round + 1));
        assert_eq!(c.status().role, Role::Leading);
        // It comes back: it counts as reachable again.
        c.handle_message(
            ServerId(1),
            Message::FollowerInfo {
                accepted_epoch: 0,
                last_zxid: Zxid::ZERO,
            },
        );
        c.handle_message(ServerId(2), looking(2, round + 1));
        assert_eq!(c.status().role, Role::Leading);
        // Now both others have moved on: no quorum is possible any more.
        c.handle_message(ServerId(1), looking(1, round + 2));
        assert_eq!(c.status().role, Role::Looking);
        assert_eq!(c.logical_clock, round + 2, "joined the newer round");
    }
}

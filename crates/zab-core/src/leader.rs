//! The leader: discovery (choose and establish a new epoch), sync of each learner, and
//! broadcast (pipelined proposals, cumulative ACKs, commits in zxid order), liveness.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use crate::action::{Action, Phase, SnapshotRequest};
use crate::core::{Core, ProposeError, RoleState};
use crate::messages::{Entry, Message, PeerState};
use crate::sync::{plan_sync, SyncPlan};
use crate::zxid::{ServerId, Zxid};

/// The leader's view of one learner (ZooKeeper's LearnerHandler).
#[derive(Debug, Clone)]
pub(crate) struct Handler {
    observer: bool,
    stage: Stage,
    /// Last zxid streamed to the learner (proposals, or informs for observers).
    sent: Zxid,
    /// Highest zxid the learner reported durable.
    acked: Zxid,
    /// Tick of the last message heard from the learner.
    heard_at: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// LEADERINFO sent (or about to be), waiting for ACKEPOCH.
    AwaitAckEpoch,
    /// ACKEPOCH received before the epoch was acknowledged by a quorum.
    EpochAcked { last: Zxid },
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
    started_at: u64,
    /// Accepted epochs reported in FOLLOWERINFO, to choose the new epoch.
    infos: BTreeMap<ServerId, u32>,
    /// Fresh ACKEPOCHs (self included once its accepted epoch is durable).
    epoch_acks: BTreeSet<ServerId>,
    epoch_acked: bool,
    /// Last zxid of the initial history, fixed when the epoch is acknowledged.
    newleader_zxid: Zxid,
    /// ACKs of NEWLEADER from voters (self included once current_epoch is durable).
    newleader_acks: BTreeSet<ServerId>,
    established: bool,
    learners: BTreeMap<ServerId, Handler>,
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
    fn leader(&mut self) -> Option<&mut LeaderState> {
        match &mut self.role {
            RoleState::Leading(l) => Some(l),
            _ => None,
        }
    }

    fn leader_ref(&self) -> Option<&LeaderState> {
        match &self.role {
            RoleState::Leading(l) => Some(l),
            _ => None,
        }
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

    /// Sends the sync stream: header, proposals, commit point, NEWLEADER.
    fn start_sync(&mut self, to: ServerId, learner_last: Zxid) {
        let Some(l) = self.leader_ref() else { return };
        let Some(epoch) = l.epoch else { return };
        let Some(h) = l.learners.get(&to) else { return };
        let observer = h.observer;
        let plan = plan_sync(&self.log, learner_last);
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
        let start = plan.start();
        // Observers only get committed txns; followers get the whole history, the
        // uncommitted tail included (issue 1 of the protocol-spec notes: a learner
        // that misses proposals made while it syncs loses them forever).
        let end = if observer {
            self.log.committed()
        } else {
            self.log.last()
        };
        let mut prev = start;
        for entry in self.log.range(start, end) {
            let zxid = entry.zxid;
            self.send(to, Message::Proposal { epoch, prev, entry });
            prev = zxid;
        }
        let sent = prev;
        let committed = self.log.committed().min(sent);
        if committed > start {
            self.send(
                to,
                Message::Commit {
                    epoch,
                    zxid: committed,
                },
            );
        }
        self.send(to, Message::NewLeader { epoch, zxid: sent });
        if let Some(h) = self.leader().and_then(|l| l.learners.get_mut(&to)) {
            h.stage = Stage::Syncing { newleader: sent };
            h.sent = sent;
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

    fn leader_on_follower_info(&mut self, from: ServerId, accepted_epoch: u32) {
        let observer = self.cfg.is_observer(from);
        let tick = self.tick;
        let Some(l) = self.leader() else { return };
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
    fn maybe_establish(&mut self) {
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

    /// Commits up to `upto` and tells the learners: COMMIT to followers, INFORM with the
    /// txns to observers.
    fn leader_commit(&mut self, upto: Zxid) {
        let Some(epoch) = self.leader_ref().and_then(|l| l.epoch) else {
            return;
        };
        let newly = self.commit_upto(upto);
        let Some(last) = newly.last().map(|e| e.zxid) else {
            return;
        };
        let targets: Vec<(ServerId, bool, Zxid)> = self
            .leader_ref()
            .map(|l| {
                l.learners
                    .iter()
                    .filter(|(_, h)| matches!(h.stage, Stage::Syncing { .. } | Stage::Synced))
                    .map(|(id, h)| (*id, h.observer, h.sent))
                    .collect()
            })
            .unwrap_or_default();
        for (to, observer, sent) in targets {
            if observer {
                let mut prev = sent;
                for entry in newly.iter().filter(|e| e.zxid > sent) {
                    let zxid = entry.zxid;
                    self.send(
                        to,
                        Message::Inform {
                            epoch,
                            prev,
                            entry: entry.clone(),
                        },
                    );
                    prev = zxid;
                }
                if let Some(h) = self.leader().and_then(|l| l.learners.get_mut(&to)) {
                    h.sent = h.sent.max(prev);
                }
            } else {
                self.send(to, Message::Commit { epoch, zxid: last });
            }
        }
    }

    /// Commits the highest zxid that a quorum of voters (self included) has durable.
    fn maybe_advance_commit(&mut self) {
        let me = self.cfg.id;
        let Some(l) = self.leader_ref() else { return };
        if !l.established {
            return;
        }
        let mut acks: Vec<(ServerId, Zxid)> = vec![(me, self.log.durable())];
        for (id, h) in &l.learners {
            if h.stage == Stage::Synced && !h.observer && self.is_voter(*id) {
                acks.push((*id, h.acked));
            }
        }
        let mut candidates: Vec<Zxid> = acks.iter().map(|(_, z)| *z).collect();
        candidates.sort_unstable_by(|a, b| b.cmp(a));
        candidates.dedup();
        let committed = self.log.committed();
        for c in candidates {
            if c <= committed {
                break;
            }
            let ids: BTreeSet<ServerId> = acks
                .iter()
                .filter(|(_, z)| *z >= c)
                .map(|(id, _)| *id)
                .collect();
            if self.cfg.quorum.contains_quorum(&ids) {
                self.leader_commit(c);
                break;
            }
        }
    }

    pub(crate) fn leader_propose(&mut self, payload: Bytes) -> Result<Zxid, ProposeError> {
        let Some(l) = self.leader_ref() else {
            let leader = match &self.role {
                RoleState::Following(s) | RoleState::Observing(s) => Some(s.leader),
                _ => None,
            };
            return Err(ProposeError::NotLeader { leader });
        };
        let (Some(epoch), true) = (l.epoch, l.established) else {
            return Err(ProposeError::NotReady);
        };
        if self.log.uncommitted() >= self.cfg.outstanding_max {
            return Err(ProposeError::Backpressure);
        }
        let last = self.log.last();
        let counter = if last.epoch == epoch {
            last.counter + 1
        } else {
            1
        };
        if counter > self.cfg.zxid_counter_max {
            // The counter would roll over: ZooKeeper forces a new epoch by re-electing.
            tracing::info!(id = %self.cfg.id, epoch, "zxid counter exhausted; re-electing");
            self.become_looking();
            return Err(ProposeError::ZxidRollover);
        }
        let entry = Entry {
            zxid: Zxid::new(epoch, counter),
            payload,
        };
        let followers: Vec<ServerId> = l
            .learners
            .iter()
            .filter(|(_, h)| {
                !h.observer && matches!(h.stage, Stage::Syncing { .. } | Stage::Synced)
            })
            .map(|(id, _)| *id)
            .collect();
        self.append(entry.clone());
        for to in followers {
            self.send(
                to,
                Message::Proposal {
                    epoch,
                    prev: last,
                    entry: entry.clone(),
                },
            );
            if let Some(h) = self.leader().and_then(|l| l.learners.get_mut(&to)) {
                h.sent = entry.zxid;
            }
        }
        // A quorum of one commits on its own durability.
        self.maybe_advance_commit();
        Ok(entry.zxid)
    }

    pub(crate) fn tick_leader(&mut self) {
        let tick = self.tick;
        let me = self.cfg.id;
        let Some(l) = self.leader_ref() else { return };
        if !l.established {
            if tick.saturating_sub(l.started_at) > self.cfg.init_limit_ticks {
                tracing::info!(id = %me, "could not establish the epoch in time; re-electing");
                self.become_looking();
            }
            return;
        }
        let epoch = l.epoch.unwrap_or(0);
        let mut heard: BTreeSet<ServerId> = BTreeSet::from([me]);
        for (id, h) in &l.learners {
            if h.stage == Stage::Synced
                && tick.saturating_sub(h.heard_at) <= self.cfg.sync_limit_ticks
            {
                heard.insert(*id);
            }
        }
        if !self.cfg.quorum.contains_quorum(&heard) {
            tracing::info!(id = %me, "lost the quorum; stepping down");
            self.become_looking();
            return;
        }
        let ping = Message::Ping {
            epoch,
            last_zxid: self.log.last(),
            committed: self.log.committed(),
        };
        let to: Vec<ServerId> = l.learners.keys().copied().collect();
        for id in to {
            self.send(id, ping.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::core::testkit::{core, elect, sent};

    /// Leader 3 establishes epoch 1 with follower 1 alone (a quorum of 2 out of 3).
    fn established() -> Core {
        let mut c = core(3);
        elect(&mut c, 3);
        assert_eq!(c.status().role, crate::Role::Leading);
        assert_eq!(c.propose(Bytes::new()), Err(ProposeError::NotReady));
        c.drain_actions();
        let f = ServerId(1);
        c.handle_message(
            f,
            Message::FollowerInfo {
                accepted_epoch: 0,
                last_zxid: Zxid::ZERO,
            },
        );
        let out = c.drain_actions();
        assert!(out.contains(&Action::SaveAcceptedEpoch { epoch: 1 }));
        assert!(sent(&out).contains(&(1, Message::LeaderInfo { epoch: 1 })));
        c.handle_accepted_epoch_saved(1);
        c.handle_message(
            f,
            Message::AckEpoch {
                epoch: 1,
                fresh: true,
                current_epoch: 0,
                last_zxid: Zxid::ZERO,
            },
        );
        let out = c.drain_actions();
        let msgs = sent(&out);
        assert!(msgs.contains(&(
            1,
            Message::Diff {
                epoch: 1,
                echo: Zxid::ZERO
            }
        )));
        assert!(msgs.contains(&(
            1,
            Message::NewLeader {
                epoch: 1,
                zxid: Zxid::ZERO
            }
        )));
        assert!(out.contains(&Action::SaveCurrentEpoch { epoch: 1 }));
        c.handle_current_epoch_saved(1);
        assert_ne!(
            c.status().phase,
            Phase::Broadcast,
            "needs the follower's ACK too"
        );
        c.handle_message(
            f,
            Message::AckNewLeader {
                epoch: 1,
                zxid: Zxid::ZERO,
            },
        );
        assert_eq!(c.status().phase, Phase::Broadcast);
        let msgs = sent(&c.drain_actions());
        assert!(msgs.contains(&(
            1,
            Message::UpToDate {
                epoch: 1,
                committed: Zxid::ZERO
            }
        )));
        c
    }

    #[test]
    fn commit_needs_a_durable_quorum_and_goes_in_order() {
        let mut c = established();
        let z1 = c.propose(Bytes::from_static(b"a")).unwrap();
        let z2 = c.propose(Bytes::from_static(b"b")).unwrap();
        assert_eq!((z1, z2), (Zxid::new(1, 1), Zxid::new(1, 2)));
        let msgs = sent(&c.drain_actions());
        assert_eq!(
            msgs.iter()
                .filter(|(to, m)| *to == 1 && matches!(m, Message::Proposal { .. }))
                .count(),
            2,
            "pipelined"
        );
        // The follower's ACK alone, or the leader's durability alone, is not a quorum.
        c.handle_message(ServerId(1), Message::Ack { epoch: 1, zxid: z2 });
        assert!(c.drain_actions().is_empty());
        c.handle_log_durable(z1);
        let out = c.drain_actions();
        let committed: Vec<Zxid> = out
            .iter()
            .filter_map(|a| match a {
                Action::Commit { entries } => Some(entries.iter().map(|e| e.zxid)),
                _ => None,
            })
            .flatten()
            .collect();
        assert_eq!(committed, vec![z1], "only what a quorum has durable");
        assert!(sent(&out).contains(&(1, Message::Commit { epoch: 1, zxid: z1 })));
        c.handle_log_durable(z2);
        assert!(sent(&c.drain_actions()).contains(&(1, Message::Commit { epoch: 1, zxid: z2 })));
    }

    #[test]
    fn rollover_and_quorum_loss_end_the_leadership() {
        let mut c = established();
        c.cfg.zxid_counter_max = 2;
        c.propose(Bytes::new()).unwrap();
        c.propose(Bytes::new()).unwrap();
        assert_eq!(c.propose(Bytes::new()), Err(ProposeError::ZxidRollover));
        assert_eq!(c.status().role, crate::Role::Looking);

        let mut c = established();
        for _ in 0..=c.cfg.sync_limit_ticks + 1 {
            c.handle_tick();
        }
        assert_eq!(
            c.status().role,
            crate::Role::Looking,
            "follower silent: step down"
        );
    }

    #[test]
    fn notifications_do_not_count_as_heartbeats() {
        let mut c = established();
        for _ in 0..=c.cfg.sync_limit_ticks + 1 {
            // The follower went LOOKING: it only sends election notifications.
            c.handle_message(
                ServerId(1),
                Message::Notification {
                    vote: crate::Vote {
                        leader: ServerId(1),
                        zxid: Zxid::ZERO,
                        peer_epoch: 1,
                    },
                    election_epoch: 2,
                    state: PeerState::Looking,
                },
            );
            c.handle_tick();
        }
        assert_eq!(c.status().role, crate::Role::Looking);
    }

    #[test]
    fn a_more_up_to_date_learner_ends_discovery() {
        let mut c = core(3);
        elect(&mut c, 3);
        c.handle_message(
            ServerId(1),
            Message::FollowerInfo {
                accepted_epoch: 0,
                last_zxid: Zxid::ZERO,
            },
        );
        c.handle_accepted_epoch_saved(1);
        c.handle_message(
            ServerId(1),
            Message::AckEpoch {
                epoch: 1,
                fresh: true,
                current_epoch: 0,
                last_zxid: Zxid::new(0, 5),
            },
        );
        assert_eq!(c.status().role, crate::Role::Looking);
    }
}

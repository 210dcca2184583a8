//! [`Core`]: the state shared by every role, the input handlers that dispatch to the
//! role handlers, and the one place that switches roles (`become_*`).

use bytes::Bytes;

use crate::action::{Action, Phase, Role, Status};
use crate::config::{Config, ConfigError, Persisted};
use crate::election::Election;
use crate::leader::LeaderState;
use crate::learner::LearnerState;
use crate::log::Log;
use crate::messages::{Entry, Message, Vote};
use crate::zxid::{ServerId, Zxid};

/// Why [`Core::propose`] refused a txn.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProposeError {
    /// This server is not the leader; `leader` is the one it follows, if any.
    #[error("not the leader")]
    NotLeader {
        /// The leader this server follows, if known.
        leader: Option<ServerId>,
    },
    /// This server leads but its epoch is not established yet.
    #[error("leader not ready")]
    NotReady,
    /// Too many proposals outstanding; retry after commits.
    #[error("too many outstanding proposals")]
    Backpressure,
    /// The zxid counter is exhausted: the leader stepped down to start a new epoch.
    #[error("zxid counter exhausted, re-electing")]
    ZxidRollover,
    /// The payload exceeds [`PAYLOAD_MAX_BYTES`](crate::PAYLOAD_MAX_BYTES).
    #[error("payload too large")]
    TooLarge,
}

/// Why [`Core::forward_request`] refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ForwardError {
    /// Not a learner in the broadcast phase.
    #[error("not synced with a leader")]
    NotSynced,
    /// The request exceeds [`PAYLOAD_MAX_BYTES`](crate::PAYLOAD_MAX_BYTES).
    #[error("request too large")]
    TooLarge,
}

pub(crate) enum RoleState {
    Looking(Election),
    Leading(Box<LeaderState>),
    Following(LearnerState),
    Observing(LearnerState),
}

/// The ZAB state machine of one server. See the crate docs for a tour.
pub struct Core {
    pub(crate) cfg: Config,
    pub(crate) log: Log,
    pub(crate) accepted_durable: u32,
    /// Highest accepted epoch requested (durable or in flight).
    pub(crate) accepted_requested: u32,
    pub(crate) current_durable: u32,
    pub(crate) current_requested: u32,
    /// Outstanding TRUNC / snapshot installs: durability reports are ignored meanwhile.
    pub(crate) barriers: u32,
    pub(crate) tick: u64,
    /// The epoch and leader our last fresh ACKEPOCH went to (in memory only).
    pub(crate) fresh_ack: Option<(u32, ServerId)>,
    pub(crate) logical_clock: u64,
    /// The current vote: the proposal while LOOKING, the decided vote otherwise.
    pub(crate) vote: Vote,
    pub(crate) role: RoleState,
    pub(crate) actions: Vec<Action>,
    reported: Option<(Role, Phase, Option<ServerId>, u32)>,
    /// The durable log holds every entry of this server's history after this zxid
    /// (without a hole): where it started at restart, or the snapshot it was reset
    /// to. A DIFF read from the log never starts below it (`log_sync.rs`).
    pub(crate) log_floor: Zxid,
    /// Token of the last `Action::ReadLog`: an answer names its read.
    pub(crate) read_token: u64,
}

impl Core {
    /// Builds a core from its configuration and what the shell loaded from disk
    /// (see [`Persisted`]). The core starts LOOKING.
    pub fn new(cfg: Config, persisted: Persisted) -> Result<Self, ConfigError> {
        cfg.validate()?;
        let persisted = persisted.without_stale_prefix();
        persisted.validate()?;
        // A snapshot newer than the log's last entry resets the window to it, and the
        // durable log may hold older entries that the entries appended from now on
        // will not follow: the log is only known whole from the snapshot on.
        let log_last = persisted.log.last().map_or(persisted.log_base, |e| e.zxid);
        let log_floor = if persisted.snapshot_zxid > log_last {
            persisted.snapshot_zxid
        } else {
            persisted.log_base
        };
        let log = Log::new(
            persisted.log_base,
            persisted.log,
            persisted.snapshot_zxid,
            cfg.commit_log_max,
            cfg.commit_log_max_bytes,
        );
        let vote = Vote {
            leader: cfg.id,
            zxid: log.last(),
            peer_epoch: persisted.current_epoch,
        };
        let accepted = persisted.accepted_epoch.max(persisted.current_epoch);
        let mut core = Core {
            cfg,
            log,
            accepted_durable: accepted,
            accepted_requested: accepted,
            current_durable: persisted.current_epoch,
            current_requested: persisted.current_epoch,
            barriers: 0,
            tick: 0,
            fresh_ack: None,
            logical_clock: 0,
            vote,
            role: RoleState::Looking(Election::default()),
            actions: Vec::new(),
            reported: None,
            log_floor,
            read_token: 0,
        };
        core.become_looking();
        Ok(core)
    }

    /// This server's id.
    pub fn id(&self) -> ServerId {
        self.cfg.id
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Takes every pending action, in the order they must be executed.
    pub fn drain_actions(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.actions)
    }

    /// Appends every pending action to `out`, in execution order (reusing the
    /// caller's buffer instead of allocating one per call).
    pub fn drain_actions_into(&mut self, out: &mut Vec<Action>) {
        if out.is_empty() {
            // The usual case: hand over the buffer instead of copying every action
            // (the two buffers trade places and both keep their capacity).
            std::mem::swap(out, &mut self.actions);
        } else {
            out.append(&mut self.actions);
        }
    }

    /// The zxid [`Core::propose`] would give the next txn now, or the error it would
    /// return (without its side effects). Lets a shell validate a request against the
    /// exact zxid before encoding it.
    pub fn next_zxid(&self) -> Result<Zxid, ProposeError> {
        self.leader_next_zxid()
    }

    /// The current state, for tests and metrics.
    pub fn status(&self) -> Status {
        let (role, phase, leader, leader_epoch) = self.role_summary();
        Status {
            id: self.cfg.id,
            role,
            phase,
            leader,
            leader_epoch,
            accepted_epoch: self.accepted_durable,
            current_epoch: self.current_durable,
            last_zxid: self.log.last(),
            durable_zxid: self.log.durable(),
            committed: self.log.committed(),
            election_epoch: self.logical_clock,
            synced_learners: self.synced_learners(),
            uncommitted: self.log.uncommitted(),
        }
    }

    /// The entry at `zxid` if it is in the in-memory window.
    pub fn log_entry(&self, zxid: Zxid) -> Option<&Entry> {
        self.log.entry(zxid)
    }

    /// The oldest zxid of the in-memory window (entries after it are held).
    pub fn log_base(&self) -> Zxid {
        self.log.base()
    }

    /// Input: a message from a peer. Messages from unknown servers are ignored.
    pub fn handle_message(&mut self, from: ServerId, msg: Message) {
        if from == self.cfg.id || !self.cfg.members.contains_key(&from) {
            return;
        }
        match &self.role {
            RoleState::Looking(_) => self.step_looking(from, msg),
            RoleState::Leading(_) => self.step_leader(from, msg),
            RoleState::Following(_) => self.step_follower(from, msg),
            RoleState::Observing(_) => self.step_observer(from, msg),
        }
    }

    /// Input: the transport lost its connection to `peer`. A learner whose leader is
    /// `peer` goes back to LOOKING at once, as ZooKeeper's follower does on a socket
    /// error, instead of waiting out `sync_limit_ticks`; otherwise the input is ignored
    /// (a leader keeps judging its quorum by heartbeats per tick window). Safety never
    /// depends on this input: it only shortens failover, and a spurious report costs one
    /// election that finds the same leader.
    pub fn handle_peer_lost(&mut self, peer: ServerId) {
        let leader = match &self.role {
            RoleState::Following(l) | RoleState::Observing(l) => l.leader,
            RoleState::Looking(_) | RoleState::Leading(_) => return,
        };
        if leader == peer {
            tracing::info!(id = %self.cfg.id, %peer, "connection to the leader lost; re-electing");
            self.become_looking();
        }
    }

    /// Input: the transport (re)established its connection to `peer` (a connection
    /// made, a partition healed). A LOOKING server sends that peer its current vote at
    /// once, as ZooKeeper's connection manager re-sends its last notification on a new
    /// connection, instead of waiting for its next re-send (`resend_ticks`): a server
    /// cut off from the ensemble rejoins as soon as it can reach it again. Otherwise
    /// ignored. Like [`Core::handle_peer_lost`] it only shortens waits: a spurious
    /// report costs one notification.
    pub fn handle_peer_connected(&mut self, peer: ServerId) {
        if matches!(self.role, RoleState::Looking(_))
            && peer != self.cfg.id
            && self.cfg.quorum.is_voter(peer)
        {
            self.send_vote_to(peer);
        }
    }

    /// Input: one tick of logical time elapsed.
    pub fn handle_tick(&mut self) {
        self.tick += 1;
        match &self.role {
            RoleState::Looking(_) => self.tick_looking(),
            RoleState::Leading(_) => self.tick_leader(),
            RoleState::Following(_) | RoleState::Observing(_) => self.tick_learner(),
        }
    }

    /// Storage completion: every appended entry up to `upto` is durable.
    pub fn handle_log_durable(&mut self, upto: Zxid) {
        if self.barriers > 0 {
            // This report is for appends issued before an outstanding TRUNC or snapshot
            // install; the barrier's own completion will cover them.
            return;
        }
        if upto > self.log.durable() {
            self.log.set_durable(upto);
        }
        self.after_durable();
    }

    /// Storage completion: the truncation to `after` is durable.
    pub fn handle_log_truncated(&mut self, after: Zxid) {
        self.finish_barrier(after);
    }

    /// Storage completion: the snapshot at `zxid` is installed and the old log dropped.
    pub fn handle_snapshot_installed(&mut self, zxid: Zxid) {
        self.finish_barrier(zxid);
    }

    /// Storage completion: `accepted_epoch = epoch` is durable.
    pub fn handle_accepted_epoch_saved(&mut self, epoch: u32) {
        self.accepted_durable = self.accepted_durable.max(epoch);
        match &self.role {
            RoleState::Leading(_) => self.leader_accepted_epoch_saved(epoch),
            RoleState::Following(_) | RoleState::Observing(_) => {
                self.learner_accepted_epoch_saved(epoch)
            }
            RoleState::Looking(_) => {}
        }
    }

    /// Storage completion: `current_epoch = epoch` is durable.
    pub fn handle_current_epoch_saved(&mut self, epoch: u32) {
        self.current_durable = self.current_durable.max(epoch);
        match &self.role {
            RoleState::Leading(_) => self.leader_current_epoch_saved(epoch),
            RoleState::Following(_) | RoleState::Observing(_) => self.learner_maybe_ack_newleader(),
            RoleState::Looking(_) => {}
        }
    }

    /// Leader input: propose a txn. Returns its zxid.
    pub fn propose(&mut self, payload: Bytes) -> Result<Zxid, ProposeError> {
        if payload.len() > crate::messages::PAYLOAD_MAX_BYTES {
            return Err(ProposeError::TooLarge);
        }
        self.leader_propose(payload)
    }

    /// Learner input: forward a client request to the leader (REQUEST); the leader's
    /// shell receives it as [`Action::Request`].
    pub fn forward_request(&mut self, payload: Bytes) -> Result<(), ForwardError> {
        if payload.len() > crate::messages::PAYLOAD_MAX_BYTES {
            return Err(ForwardError::TooLarge);
        }
        self.learner_forward(payload)
    }

    fn finish_barrier(&mut self, point: Zxid) {
        self.barriers = self.barriers.saturating_sub(1);
        if self.barriers == 0 {
            // FIFO storage: everything issued before the barrier is durable now, so is
            // the log up to `point` (the log never shrinks below a barrier's point
            // without another barrier).
            self.log.set_durable(point);
            self.after_durable();
        }
    }

    fn after_durable(&mut self) {
        match &self.role {
            RoleState::Leading(_) => self.leader_after_durable(),
            RoleState::Following(_) | RoleState::Observing(_) => self.learner_after_durable(),
            RoleState::Looking(_) => {}
        }
    }

    pub(crate) fn push(&mut self, action: Action) {
        match (action, self.actions.last_mut()) {
            // Consecutive appends become one storage op.
            (Action::AppendLog { entries }, Some(Action::AppendLog { entries: prev })) => {
                prev.extend(entries);
            }
            (action, _) => self.actions.push(action),
        }
    }

    pub(crate) fn send(&mut self, to: ServerId, msg: Message) {
        self.push(Action::Send { to, msg });
    }

    /// Commits up to `upto` and hands the newly committed txns to the shell; returns
    /// the last zxid newly committed, if any.
    pub(crate) fn commit_upto(&mut self, upto: Zxid) -> Option<Zxid> {
        // A learner's sync stream still has to send the entries after its position.
        let pin = self.stream_pin();
        self.log.set_pin(pin);
        let newly = self.log.commit_upto(upto);
        let last = newly.last().map(|e| e.zxid);
        if !newly.is_empty() {
            self.push(Action::Commit { entries: newly });
        }
        last
    }

    pub(crate) fn append(&mut self, entry: Entry) {
        if self.log.append(entry.clone()) {
            match self.actions.last_mut() {
                Some(Action::AppendLog { entries }) => entries.push(entry),
                _ => self.actions.push(Action::AppendLog {
                    entries: vec![entry],
                }),
            }
        }
    }

    pub(crate) fn is_voter(&self, id: ServerId) -> bool {
        self.cfg.quorum.is_voter(id)
    }

    /// This server's own vote: itself with its history.
    pub(crate) fn self_vote(&self) -> Vote {
        Vote {
            leader: self.cfg.id,
            zxid: self.log.last(),
            peer_epoch: self.current_durable,
        }
    }

    fn role_summary(&self) -> (Role, Phase, Option<ServerId>, u32) {
        match &self.role {
            RoleState::Looking(_) => (Role::Looking, Phase::Election, None, 0),
            RoleState::Leading(l) => (
                Role::Leading,
                l.phase(),
                Some(self.cfg.id),
                l.epoch.unwrap_or(0),
            ),
            RoleState::Following(l) => (
                Role::Following,
                l.phase(),
                Some(l.leader),
                l.epoch.unwrap_or(0),
            ),
            RoleState::Observing(l) => (
                Role::Observing,
                l.phase(),
                Some(l.leader),
                l.epoch.unwrap_or(0),
            ),
        }
    }

    /// Emits [`Action::RoleChanged`] if the role, phase, leader or epoch changed.
    pub(crate) fn report_role(&mut self) {
        let now = self.role_summary();
        if let (Phase::Broadcast, Some(leader)) = (now.1, now.2) {
            // Every server serving one established epoch answers LOOKING peers with the
            // same vote (leader, epoch), however it joined; so a restarted server finds
            // a quorum agreeing and joins without a new election.
            self.vote = Vote {
                leader,
                zxid: self.vote.zxid,
                peer_epoch: now.3,
            };
        }
        if self.reported != Some(now) {
            self.reported = Some(now);
            let (role, phase, leader, epoch) = now;
            tracing::debug!(id = %self.cfg.id, ?role, ?phase, ?leader, epoch, "role changed");
            self.push(Action::RoleChanged {
                role,
                phase,
                leader,
                epoch,
            });
        }
    }

    // ---- the one place that switches roles ----

    /// Any role -> LOOKING: a new election round.
    pub(crate) fn become_looking(&mut self) {
        self.logical_clock += 1;
        self.vote = self.self_vote();
        self.role = RoleState::Looking(Election::new(self.tick));
        self.report_role();
        self.start_election();
    }

    /// LOOKING -> LEADING, after an election this server won.
    pub(crate) fn become_leading(&mut self) {
        assert!(
            matches!(self.role, RoleState::Looking(_)),
            "only a LOOKING server may start leading"
        );
        assert!(self.is_voter(self.cfg.id), "observers never lead");
        self.role = RoleState::Leading(Box::new(LeaderState::new(self.tick)));
        self.report_role();
        self.leader_start();
    }

    /// LOOKING -> FOLLOWING `leader`.
    pub(crate) fn become_following(&mut self, leader: ServerId) {
        assert!(
            matches!(self.role, RoleState::Looking(_)),
            "only a LOOKING server may start following"
        );
        assert!(leader != self.cfg.id, "a server never follows itself");
        self.role = RoleState::Following(LearnerState::new(leader, false));
        self.report_role();
        self.learner_start();
    }

    /// LOOKING -> OBSERVING `leader`.
    pub(crate) fn become_observing(&mut self, leader: ServerId) {
        assert!(
            matches!(self.role, RoleState::Looking(_)),
            "only a LOOKING server may start observing"
        );
        assert!(self.cfg.is_observer(self.cfg.id), "only observers observe");
        self.role = RoleState::Observing(LearnerState::new(leader, true));
        self.report_role();
        self.learner_start();
    }
}

/// Helpers for the unit tests of the role modules: drive one core by hand.
#[cfg(test)]
pub(crate) mod testkit {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::messages::PeerState;

    /// A core of a 3-voter ensemble {1, 2, 3}.
    pub(crate) fn core(id: u64) -> Core {
        let cfg = Config::majority(ServerId(id), (1..=3).map(ServerId), []).unwrap();
        Core::new(cfg, Persisted::default()).unwrap()
    }

    /// An epoch-1 entry at `counter` with the payload tests propose (`x`).
    pub(crate) fn entry(counter: u32) -> Entry {
        Entry {
            zxid: Zxid::new(1, counter),
            payload: bytes::Bytes::from_static(b"x"),
        }
    }

    /// Leader `c` (epoch 1, follower 1 synced) proposes `n` txns of payload `x`,
    /// has them durable and acknowledged by server 1: all committed.
    pub(crate) fn commit_proposals(c: &mut Core, n: u32) {
        for _ in 0..n {
            c.propose(bytes::Bytes::from_static(b"x")).unwrap();
        }
        c.handle_log_durable(Zxid::new(1, n));
        c.handle_message(
            ServerId(1),
            Message::Ack {
                epoch: 1,
                zxid: Zxid::new(1, n),
            },
        );
        assert_eq!(c.status().committed, Zxid::new(1, n));
    }

    /// The messages in `actions`, as (to, message).
    pub(crate) fn sent(actions: &[Action]) -> Vec<(u64, Message)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Send { to, msg } => Some((to.0, msg.clone())),
                _ => None,
            })
            .collect()
    }

    /// Feeds LOOKING notifications for `leader` from the other two servers, then ticks
    /// past the finalize window.
    pub(crate) fn elect(c: &mut Core, leader: u64) {
        for from in 1..=3u64 {
            if from != c.id().0 {
                c.handle_message(
                    ServerId(from),
                    Message::Notification {
                        vote: Vote {
                            leader: ServerId(leader),
                            zxid: Zxid::ZERO,
                            peer_epoch: 0,
                        },
                        election_epoch: 1,
                        state: PeerState::Looking,
                    },
                );
            }
        }
        c.handle_tick();
        c.handle_tick();
    }
}

#[cfg(test)]
mod robustness {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::codec::tests::{message, zxid};
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Input {
        Message(u64, Message),
        Tick,
        Durable(Zxid),
        AcceptedSaved(u32),
        CurrentSaved(u32),
        Propose,
    }

    fn input() -> impl Strategy<Value = Input> {
        prop_oneof![
            6 => (1u64..=5, message()).prop_map(|(f, m)| Input::Message(f, m)),
            2 => Just(Input::Tick),
            1 => zxid().prop_map(Input::Durable),
            1 => (0u32..4).prop_map(Input::AcceptedSaved),
            1 => (0u32..4).prop_map(Input::CurrentSaved),
            1 => Just(Input::Propose),
        ]
    }

    proptest! {
        /// Arbitrary peer messages (and stray completions) never make a core panic,
        /// and its basic invariants hold throughout.
        #[test]
        fn arbitrary_inputs_never_panic(id in 1u64..=4, inputs in proptest::collection::vec(input(), 0..200)) {
            let cfg = Config::majority(ServerId(id), (1..=3).map(ServerId), [ServerId(4)]).unwrap();
            let mut c = Core::new(cfg, Persisted::default()).unwrap();
            let mut last_epochs = (0, 0);
            for i in inputs {
                match i {
                    Input::Message(f, m) => c.handle_message(ServerId(f), m),
                    Input::Tick => c.handle_tick(),
                    Input::Durable(z) => c.handle_log_durable(z),
                    Input::AcceptedSaved(e) => c.handle_accepted_epoch_saved(e),
                    Input::CurrentSaved(e) => c.handle_current_epoch_saved(e),
                    Input::Propose => { let _ = c.propose(Bytes::from_static(b"x")); }
                }
                c.drain_actions();
                let s = c.status();
                prop_assert!(s.committed <= s.last_zxid);
                prop_assert!(s.durable_zxid <= s.last_zxid);
                prop_assert!((s.accepted_epoch, s.current_epoch) >= last_epochs);
                last_epochs = (s.accepted_epoch, s.current_epoch);
            }
        }
    }
}

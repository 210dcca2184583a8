//! Fast leader election (ZooKeeper's FastLeaderElection) for a LOOKING server.
//!
//! Votes are ordered by (peer epoch, last zxid, server id). A LOOKING participant
//! adopts any better vote of its round and re-broadcasts; when a quorum of its round
//! agrees with its vote it waits `finalize_wait_ticks` for a better vote, then decides.
//! Servers that already follow or lead answer LOOKING ones with their decided vote, so a
//! restarted server joins the established leader without a new election: it joins once
//! a quorum reports the same leader and the leader itself reports LEADING.

use std::collections::{BTreeMap, BTreeSet};

use crate::core::{Core, RoleState};
use crate::messages::{Message, PeerState, Vote};
use crate::zxid::ServerId;

/// State of one election round.
#[derive(Debug, Default)]
pub(crate) struct Election {
    /// Votes of the current round (LOOKING peers, and non-LOOKING ones of the same round).
    recv: BTreeMap<ServerId, (Vote, PeerState)>,
    /// Votes of servers that are not LOOKING, whatever their round.
    out_of_election: BTreeMap<ServerId, (Vote, PeerState, u64)>,
    /// When a quorum agreed with our vote: decide at this tick unless a better vote comes.
    finalize_at: Option<u64>,
    /// Next tick at which to re-send notifications.
    resend_at: u64,
}

impl Election {
    pub(crate) fn new(tick: u64) -> Self {
        Election {
            resend_at: tick,
            ..Election::default()
        }
    }
}

impl Core {
    fn election(&mut self) -> Option<&mut Election> {
        match &mut self.role {
            RoleState::Looking(e) => Some(e),
            _ => None,
        }
    }

    fn notification(&self, state: PeerState) -> Message {
        Message::Notification {
            vote: self.vote,
            election_epoch: self.logical_clock,
            state,
        }
    }

    /// Called by `become_looking`: vote for ourselves and tell every voter.
    pub(crate) fn start_election(&mut self) {
        let me = self.cfg.id;
        let vote = self.vote;
        let voter = self.is_voter(me);
        if let Some(e) = self.election() {
            if voter {
                e.recv.insert(me, (vote, PeerState::Looking));
            }
        }
        self.broadcast_notifications();
        self.maybe_arm_finalize();
    }

    /// Sends our LOOKING vote to one voter (a peer that just became reachable).
    pub(crate) fn send_vote_to(&mut self, peer: ServerId) {
        let msg = self.notification(PeerState::Looking);
        self.send(peer, msg);
    }

    fn broadcast_notifications(&mut self) {
        let msg = self.notification(PeerState::Looking);
        let me = self.cfg.id;
        for v in self.cfg.quorum.voters() {
            if v != me {
                self.send(v, msg.clone());
            }
        }
        let (tick, resend) = (self.tick, self.cfg.resend_ticks);
        if let Some(e) = self.election() {
            e.resend_at = tick + resend;
        }
    }

    /// Non-LOOKING servers answer a LOOKING peer with their decided vote.
    pub(crate) fn answer_looking_peer(&mut self, from: ServerId, msg: &Message, state: PeerState) {
        if let Message::Notification {
            state: PeerState::Looking,
            ..
        } = msg
        {
            // Observers do not answer: voters would answer back, forever.
            if self.is_voter(self.cfg.id) {
                let reply = self.notification(state);
                self.send(from, reply);
            }
        }
    }

    pub(crate) fn step_looking(&mut self, from: ServerId, msg: Message) {
        let Message::Notification {
            vote,
            election_epoch,
            state,
        } = msg
        else {
            return;
        };
        let me_voter = self.is_voter(self.cfg.id);
        if !self.is_voter(from) {
            // A LOOKING observer asks who leads: tell it what we think.
            if me_voter && state == PeerState::Looking {
                let reply = self.notification(PeerState::Looking);
                self.send(from, reply);
            }
            return;
        }
        if !self.is_voter(vote.leader) {
            return; // a vote for a non-voter is invalid
        }
        match state {
            PeerState::Looking => {
                if !me_voter {
                    return; // observers decide only from established servers
                }
                self.looking_vote(from, vote, election_epoch);
            }
            PeerState::Following | PeerState::Leading => {
                self.established_vote(from, vote, election_epoch, state);
            }
            PeerState::Observing => {}
        }
    }

    fn looking_vote(&mut self, from: ServerId, vote: Vote, election_epoch: u64) {
        use std::cmp::Ordering;
        match election_epoch.cmp(&self.logical_clock) {
            Ordering::Greater => {
                self.logical_clock = election_epoch;
                let mine = self.self_vote();
                self.vote = if vote.key() > mine.key() { vote } else { mine };
                let me = self.cfg.id;
                let v = self.vote;
                if let Some(e) = self.election() {
                    e.recv.clear();
                    e.finalize_at = None;
                    e.recv.insert(me, (v, PeerState::Looking));
                }
                self.broadcast_notifications();
            }
            Ordering::Less => {
                // The peer is behind: tell it about our round.
                let reply = self.notification(PeerState::Looking);
                self.send(from, reply);
                return;
            }
            Ordering::Equal => {
                if vote.key() > self.vote.key() {
                    self.vote = vote;
                    let me = self.cfg.id;
                    if let Some(e) = self.election() {
                        e.recv.insert(me, (vote, PeerState::Looking));
                        // A better vote arrived: the finalize window starts over.
                        e.finalize_at = None;
                    }
                    self.broadcast_notifications();
                }
            }
        }
        if let Some(e) = self.election() {
            e.recv.insert(from, (vote, PeerState::Looking));
        }
        self.maybe_arm_finalize();
    }

    /// Whether the voters in `ids` that agree form a quorum.
    fn agree_quorum<'a>(
        &self,
        votes: impl Iterator<Item = (&'a ServerId, &'a Vote)>,
        target: &Vote,
        loose: bool,
    ) -> bool {
        let ids: BTreeSet<ServerId> = votes
            .filter(|(_, v)| {
                if loose {
                    v.leader == target.leader && v.peer_epoch == target.peer_epoch
                } else {
                    *v == target
                }
            })
            .map(|(id, _)| *id)
            .collect();
        self.cfg.quorum.contains_quorum(&ids)
    }

    fn maybe_arm_finalize(&mut self) {
        let RoleState::Looking(e) = &self.role else {
            return;
        };
        if e.finalize_at.is_some() {
            return;
        }
        let target = self.vote;
        let agreed = self.agree_quorum(e.recv.iter().map(|(id, (v, _))| (id, v)), &target, false);
        if agreed {
            let at = self.tick + self.cfg.finalize_wait_ticks;
            if let Some(e) = self.election() {
                e.finalize_at = Some(at);
            }
            if self.cfg.finalize_wait_ticks == 0 {
                self.decide(target);
            }
        }
    }

    fn established_vote(
        &mut self,
        from: ServerId,
        vote: Vote,
        election_epoch: u64,
        state: PeerState,
    ) {
        let clock = self.logical_clock;
        let me = self.cfg.id;
        let Some(e) = self.election() else { return };
        if election_epoch == clock {
            e.recv.insert(from, (vote, state));
        }
        e.out_of_election
            .insert(from, (vote, state, election_epoch));
        if vote.leader == me {
            return; // we are LOOKING, so we do not lead: that leader is gone
        }
        let RoleState::Looking(e) = &self.role else {
            return;
        };
        // The leader must itself report LEADING (ZooKeeper's checkLeader), so a dead
        // leader that followers still remember is never joined.
        let leader_says_leading = e
            .out_of_election
            .get(&vote.leader)
            .is_some_and(|(v, s, _)| *s == PeerState::Leading && v.leader == vote.leader);
        let joined = leader_says_leading
            && self.agree_quorum(
                e.out_of_election.iter().map(|(id, (v, _, _))| (id, v)),
                &vote,
                true,
            );
        if joined {
            self.logical_clock = self.logical_clock.max(election_epoch);
            self.decide(vote);
        }
    }

    pub(crate) fn tick_looking(&mut self) {
        let tick = self.tick;
        let Some(e) = self.election() else { return };
        let resend = e.resend_at <= tick;
        let finalize = e.finalize_at.is_some_and(|at| at <= tick);
        if finalize {
            let target = self.vote;
            self.decide(target);
            return;
        }
        if resend {
            self.broadcast_notifications();
        }
    }

    /// The election is over: follow, lead or observe `vote.leader`.
    fn decide(&mut self, vote: Vote) {
        self.vote = vote;
        tracing::debug!(id = %self.cfg.id, leader = %vote.leader, clock = self.logical_clock, "election decided");
        if vote.leader == self.cfg.id {
            self.become_leading();
        } else if self.cfg.is_observer(self.cfg.id) {
            self.become_observing(vote.leader);
        } else {
            self.become_following(vote.leader);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::core::testkit::{core, sent};
    use crate::zxid::Zxid;
    use crate::Role;

    fn note(leader: u64, zxid: Zxid, peer_epoch: u32, round: u64, state: PeerState) -> Message {
        Message::Notification {
            vote: Vote {
                leader: ServerId(leader),
                zxid,
                peer_epoch,
            },
            election_epoch: round,
            state,
        }
    }

    #[test]
    fn vote_order_is_epoch_then_zxid_then_id() {
        let v = |l, z, e| Vote {
            leader: ServerId(l),
            zxid: z,
            peer_epoch: e,
        };
        assert!(v(1, Zxid::new(1, 1), 2).key() > v(3, Zxid::new(1, 9), 1).key());
        assert!(v(1, Zxid::new(1, 9), 1).key() > v(3, Zxid::new(1, 1), 1).key());
        assert!(v(3, Zxid::new(1, 1), 1).key() > v(1, Zxid::new(1, 1), 1).key());
    }

    #[test]
    fn a_looking_server_sends_its_vote_to_a_peer_that_connects() {
        let mut c = core(1);
        c.drain_actions();
        c.handle_peer_connected(ServerId(3));
        let out = sent(&c.drain_actions());
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(matches!(
            &out[0],
            (3, Message::Notification { vote, state: PeerState::Looking, .. })
                if vote.leader == ServerId(1)
        ));
        // Not to itself, nor to a server that is not a voter here.
        c.handle_peer_connected(ServerId(1));
        c.handle_peer_connected(ServerId(9));
        assert!(sent(&c.drain_actions()).is_empty());
        // Once it follows, a connection is no reason to send anything.
        c.handle_message(ServerId(2), note(2, Zxid::ZERO, 0, 1, PeerState::Looking));
        c.handle_tick();
        assert_eq!(c.status().role, Role::Following);
        c.drain_actions();
        c.handle_peer_connected(ServerId(3));
        assert!(sent(&c.drain_actions()).is_empty());
    }

    #[test]
    fn better_vote_is_adopted_and_rebroadcast_then_finalized() {
        let mut c = core(1);
        c.drain_actions();
        c.handle_message(ServerId(2), note(2, Zxid::ZERO, 0, 1, PeerState::Looking));
        let out = sent(&c.drain_actions());
        assert_eq!(out.len(), 2, "re-broadcast to 2 and 3: {out:?}");
        assert!(out.iter().all(
            |(_, m)| matches!(m, Message::Notification { vote, .. } if vote.leader == ServerId(2))
        ));
        // 1 and 2 agree on 2: a quorum. The decision waits for the finalize window.
        assert_eq!(c.status().role, Role::Looking);
        c.handle_tick();
        assert_eq!(c.status().role, Role::Following);
        assert_eq!(c.status().leader, Some(ServerId(2)));
    }

    #[test]
    fn a_better_vote_in_the_finalize_window_wins() {
        let mut c = core(1);
        c.handle_message(ServerId(2), note(2, Zxid::ZERO, 0, 1, PeerState::Looking));
        c.handle_message(ServerId(3), note(3, Zxid::ZERO, 0, 1, PeerState::Looking));
        c.handle_tick();
        c.handle_tick();
        assert_eq!(c.status().leader, Some(ServerId(3)));
    }

    #[test]
    fn old_rounds_are_answered_and_new_rounds_adopted() {
        let mut c = core(1);
        c.drain_actions();
        c.handle_message(ServerId(2), note(2, Zxid::ZERO, 0, 5, PeerState::Looking));
        assert_eq!(c.status().election_epoch, 5);
        c.drain_actions();
        c.handle_message(ServerId(3), note(3, Zxid::ZERO, 0, 2, PeerState::Looking));
        let out = sent(&c.drain_actions());
        assert!(matches!(
            out.as_slice(),
            [(
                3,
                Message::Notification {
                    election_epoch: 5,
                    ..
                }
            )]
        ));
    }

    #[test]
    fn joins_an_established_leader_only_when_it_says_leading() {
        let mut c = core(1);
        c.handle_message(ServerId(2), note(3, Zxid::ZERO, 4, 9, PeerState::Following));
        assert_eq!(
            c.status().role,
            Role::Looking,
            "the leader itself has not spoken"
        );
        c.handle_message(ServerId(3), note(3, Zxid::ZERO, 4, 9, PeerState::Leading));
        assert_eq!(c.status().role, Role::Following);
        assert_eq!(c.status().leader, Some(ServerId(3)));
    }
}

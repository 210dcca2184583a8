//! The leader in broadcast: pipelined proposals, commits in zxid order once a quorum
//! (leader included) has them durable, COMMIT to followers and INFORM to observers,
//! heartbeats and stepping down.

use std::collections::BTreeSet;

use bytes::Bytes;

use crate::action::Action;
use crate::core::{Core, ProposeError, RoleState};
use crate::leader::{Handler, Stage};
use crate::messages::{Entry, Message};
use crate::zxid::{ServerId, Zxid};

/// Voters whose ACKs the leader tallies without allocating.
const ACKS_INLINE: usize = 16;

impl Core {
    /// Commits up to `upto` and tells the learners: COMMIT to followers, INFORM with the
    /// txns to observers.
    pub(crate) fn leader_commit(&mut self, upto: Zxid) {
        let Some(epoch) = self.leader_ref().and_then(|l| l.epoch) else {
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
        // Observers get the txns themselves (INFORM): copy them before the commit
        // hands them to the shell and the window may trim them. Followers only need
        // the zxid.
        let for_observers = if targets.iter().any(|t| t.1) {
            self.log
                .range(self.log.committed(), upto.min(self.log.last()))
        } else {
            Vec::new()
        };
        let Some(last) = self.commit_upto(upto) else {
            return;
        };
        for (to, observer, sent) in targets {
            if observer {
                let mut prev = sent;
                for entry in for_observers.iter().filter(|e| e.zxid > sent) {
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
    /// Runs on every ACK: no allocation for ensembles of up to [`ACKS_INLINE`] voters.
    pub(crate) fn maybe_advance_commit(&mut self) {
        let me = self.cfg.id;
        let Some(l) = self.leader_ref() else { return };
        if !l.established {
            return;
        }
        let mut inline = [(ServerId(0), Zxid::ZERO); ACKS_INLINE];
        let mut spill: Vec<(ServerId, Zxid)> = Vec::new();
        let mut n = 0;
        let mut put = |a: (ServerId, Zxid)| {
            if n < ACKS_INLINE {
                inline[n] = a;
            } else {
                if spill.is_empty() {
                    spill.extend_from_slice(&inline);
                }
                spill.push(a);
            }
            n += 1;
        };
        put((me, self.log.durable()));
        for (id, h) in &l.learners {
            if h.stage == Stage::Synced && !h.observer && self.is_voter(*id) {
                put((*id, h.acked));
            }
        }
        let acks: &mut [(ServerId, Zxid)] = if n <= ACKS_INLINE {
            &mut inline[..n]
        } else {
            &mut spill
        };
        // Highest zxid first: the quorum check for a candidate then needs the prefix of
        // servers that have at least that zxid.
        acks.sort_unstable_by_key(|a| std::cmp::Reverse(a.1));
        let committed = self.log.committed();
        let mut ids = [ServerId(0); ACKS_INLINE];
        let mut ids_spill: Vec<ServerId> = Vec::new();
        for i in 0..acks.len() {
            let c = acks[i].1;
            if c <= committed {
                break;
            }
            if acks.get(i + 1).is_some_and(|next| next.1 == c) {
                continue; // the last server holding `c` decides for it
            }
            let holders: &[ServerId] = if i < ACKS_INLINE {
                for (slot, a) in ids.iter_mut().zip(acks.iter()).take(i + 1) {
                    *slot = a.0;
                }
                &ids[..=i]
            } else {
                ids_spill.clear();
                ids_spill.extend(acks[..=i].iter().map(|a| a.0));
                &ids_spill
            };
            if self.cfg.quorum.contains_quorum_slice(holders) {
                self.leader_commit(c);
                break;
            }
        }
    }

    /// The zxid the next proposal gets, or why there is none (no side effects).
    pub(crate) fn leader_next_zxid(&self) -> Result<Zxid, ProposeError> {
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
            last.counter.saturating_add(1)
        } else {
            1
        };
        if counter > self.cfg.zxid_counter_max {
            return Err(ProposeError::ZxidRollover);
        }
        Ok(Zxid::new(epoch, counter))
    }

    pub(crate) fn leader_propose(&mut self, payload: Bytes) -> Result<Zxid, ProposeError> {
        let zxid = match self.leader_next_zxid() {
            Ok(z) => z,
            Err(ProposeError::ZxidRollover) => {
                // The counter would roll over: ZooKeeper forces a new epoch by re-electing.
                tracing::info!(id = %self.cfg.id, epoch = self.log.last().epoch, "zxid counter exhausted; re-electing");
                self.become_looking();
                return Err(ProposeError::ZxidRollover);
            }
            Err(e) => return Err(e),
        };
        let prev = self.log.last();
        let entry = Entry { zxid, payload };
        self.append(entry.clone());
        // Field-wise borrows: the learner table and the action queue are disjoint.
        if let RoleState::Leading(l) = &mut self.role {
            let takes = |h: &Handler| {
                !h.observer && matches!(h.stage, Stage::Syncing { .. } | Stage::Synced)
            };
            // The last follower gets the entry itself: one payload handle fewer to
            // count up and down per proposal.
            let last = l
                .learners
                .iter()
                .rev()
                .find(|(_, h)| takes(h))
                .map(|(id, _)| *id);
            let mut entry = Some(entry);
            for (to, h) in l.learners.iter_mut() {
                if !takes(h) {
                    continue;
                }
                h.sent = zxid;
                let entry = if Some(*to) == last {
                    entry.take()
                } else {
                    entry.clone()
                };
                if let Some(entry) = entry {
                    self.actions.push(Action::Send {
                        to: *to,
                        msg: Message::Proposal {
                            epoch: zxid.epoch,
                            prev,
                            entry,
                        },
                    });
                }
            }
        }
        // No commit check here: a proposal changes no input of `maybe_advance_commit`
        // (durable points, acks, learner stages); every change to those runs it (a
        // quorum of one commits once its own write is durable, `leader_after_durable`).
        // Once per proposal it cost ~560 instructions, ~5 % of the leader's per write.
        Ok(zxid)
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
pub(crate) mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::core::testkit::{core, elect, sent};
    use crate::messages::PeerState;
    use crate::{Action, Phase};

    /// Leader 3 establishes epoch 1 with follower 1 alone (a quorum of 2 out of 3).
    pub(crate) fn established() -> Core {
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

    /// Server `id`, with an empty log, joins the established leader `c` (epoch 1):
    /// FOLLOWERINFO, then ACKEPOCH; its sync stream starts.
    fn join_empty(c: &mut Core, id: u64) {
        let info = Message::FollowerInfo {
            accepted_epoch: 0,
            last_zxid: Zxid::ZERO,
        };
        c.handle_message(ServerId(id), info);
        c.handle_message(
            ServerId(id),
            Message::AckEpoch {
                epoch: 1,
                fresh: true,
                current_epoch: 0,
                last_zxid: Zxid::ZERO,
            },
        );
    }

    /// A learner that joins an established leader gets its DIFF in steps of
    /// `sync_stream_step` entries, one per `stream_step`; proposals made meanwhile go
    /// into the stream (not to the learner directly), and the commit point and
    /// NEWLEADER follow the last entry.
    #[test]
    fn a_sync_stream_goes_out_in_steps_and_carries_later_proposals() {
        let mut c = established();
        c.cfg.sync_stream_step = 3;
        crate::core::testkit::commit_proposals(&mut c, 7);
        c.drain_actions();
        join_empty(&mut c, 2);
        let to_two = |c: &mut Core| -> Vec<Message> {
            sent(&c.drain_actions())
                .into_iter()
                .filter(|(to, _)| *to == 2)
                .map(|(_, m)| m)
                .collect()
        };
        let proposals = |ms: &[Message]| -> Vec<(u32, u32)> {
            ms.iter()
                .filter_map(|m| match m {
                    Message::Proposal { prev, entry, .. } => {
                        Some((prev.counter, entry.zxid.counter))
                    }
                    _ => None,
                })
                .collect()
        };
        let first = to_two(&mut c);
        assert!(
            matches!(
                first[..],
                [Message::LeaderInfo { .. }, Message::Diff { .. }, ..]
            ),
            "{first:?}"
        );
        assert_eq!(proposals(&first), vec![(0, 1), (1, 2), (2, 3)]);
        // Each step's committed part is committed with it.
        let commit = |k: u32| Message::Commit {
            epoch: 1,
            zxid: Zxid::new(1, k),
        };
        assert_eq!(first.last(), Some(&commit(3)));
        assert!(c.sync_streaming());
        // A proposal while the stream runs goes to follower 1 only.
        c.propose(Bytes::from_static(b"y")).unwrap();
        let out = sent(&c.drain_actions());
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].0, 1);
        // The next step is one wider: the log gained that proposal meanwhile.
        c.stream_step();
        let second = to_two(&mut c);
        assert_eq!(proposals(&second), vec![(3, 4), (4, 5), (5, 6), (6, 7)]);
        assert_eq!(second.last(), Some(&commit(7)));
        c.stream_step();
        let last = to_two(&mut c);
        assert_eq!(proposals(&last), vec![(7, 8)]);
        // 1:8 is not committed yet: no COMMIT, only NEWLEADER.
        assert_eq!(
            last[1..],
            [Message::NewLeader {
                epoch: 1,
                zxid: Zxid::new(1, 8)
            },]
        );
        assert!(!c.sync_streaming());
        c.stream_step();
        assert!(to_two(&mut c).is_empty());
        // From now on it gets proposals as they are made.
        c.propose(Bytes::from_static(b"z")).unwrap();
        assert_eq!(sent(&c.drain_actions()).len(), 2);
    }

    /// Proposals arriving faster than a step sends cannot keep a stream from
    /// finishing: each step also carries what the log gained since the previous one.
    #[test]
    fn a_sync_stream_finishes_when_proposals_outpace_its_step() {
        let mut c = established();
        c.cfg.sync_stream_step = 2;
        for _ in 0..10 {
            c.propose(Bytes::from_static(b"x")).unwrap();
        }
        c.drain_actions();
        join_empty(&mut c, 2);
        let mut steps = 1;
        while c.sync_streaming() {
            // Three proposals per step against a step of two.
            for _ in 0..3 {
                c.propose(Bytes::from_static(b"y")).unwrap();
            }
            c.stream_step();
            steps += 1;
            assert!(steps <= 6, "the stream does not finish");
        }
        // The backlog of 10 went 2 per step; every later proposal was in the stream.
        let newleader = sent(&c.drain_actions())
            .into_iter()
            .find_map(|(to, m)| match m {
                Message::NewLeader { zxid, .. } if to == 2 => Some(zxid),
                _ => None,
            });
        assert_eq!(newleader, Some(c.status().last_zxid));
    }

    /// A learner that repeats its ACK(NEWLEADER) gets UPTODATE again, with the
    /// current commit point; nothing else changes.
    #[test]
    fn a_repeated_newleader_ack_gets_uptodate_again() {
        let mut c = established();
        let status = c.status();
        c.handle_message(
            ServerId(1),
            Message::AckNewLeader {
                epoch: 1,
                zxid: Zxid::ZERO,
            },
        );
        assert_eq!(
            sent(&c.drain_actions()),
            vec![(
                1,
                Message::UpToDate {
                    epoch: 1,
                    committed: Zxid::ZERO
                }
            )]
        );
        assert_eq!(c.status(), status);
        // An ACK for a zxid it never acknowledged is not an answer to anything.
        c.handle_message(
            ServerId(1),
            Message::AckNewLeader {
                epoch: 1,
                zxid: Zxid::new(1, 7),
            },
        );
        assert!(sent(&c.drain_actions()).is_empty());
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

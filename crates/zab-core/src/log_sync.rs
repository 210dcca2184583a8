//! DIFF from the durable log: syncing a learner that is behind the in-memory window
//! ([`Config::diff_from_log`](crate::Config::diff_from_log)).
//!
//! ZooKeeper's leader keeps 500 committed txns in memory and, for a learner behind
//! them, reads its txn log files before it falls back on a SNAP. Ensemble's window is
//! larger (4 MiB of txns), but a follower that restarts under load, or that was cut off
//! for longer than the window lasts, is still behind it; a SNAP then ships the whole
//! tree while a DIFF from the log ships only what the learner missed.
//!
//! The leader reads the log through the shell, one chunk of `sync_stream_step`
//! entries (and at most [`LOG_READ_MAX_BYTES`]) at a time ([`Action::ReadLog`]), so
//! the core stays free of I/O and a long stream never holds its thread. Each answer
//! names its read (a token), so one that arrives after the sync moved on, or after
//! the leader lost and regained its role, is ignored. Each chunk starts with the
//! entry the stream is at: the first one proves the learner's last txn is in this
//! leader's history (same zxid, same txn), so the DIFF header goes out only then; a
//! later one proves the log did not change under the stream. Every next entry must
//! directly follow the previous one (the next counter of its epoch, or the first of a
//! later epoch), so a hole in the log is never streamed as history; and the log is
//! only read from `Core::log_floor` on (a server whose snapshot was newer than its
//! log at restart holds older entries that what it appended since does not follow).
//! Disk entries are all committed (the window's base is at or below the commit
//! point), so each chunk is followed by a COMMIT and the learner applies and trims as
//! it goes. The window is pinned at its base as reading starts, so the reads reach
//! it; the stream then continues from memory as an ordinary one (`Stage::Streaming`).
//!
//! Any failure before the header (the learner's last txn is not ours, the log was
//! purged past it, a read error) falls back on the SNAP the learner would have had;
//! after the header, the learner is dropped and its next sync is a SNAP.

use crate::action::Action;
use crate::config::LOG_READ_MAX_BYTES;
use crate::core::Core;
use crate::leader::Stage;
use crate::messages::{Entry, Message};
use crate::sync::SyncPlan;
use crate::zxid::{ServerId, Zxid};

/// Whether `next` directly follows `prev` in a history: the next counter of the same
/// epoch, or the first txn of a later epoch (a leader's first proposal of an epoch is
/// its counter 1).
fn follows(prev: Zxid, next: Zxid) -> bool {
    if next.epoch == prev.epoch {
        prev.counter.checked_add(1) == Some(next.counter)
    } else {
        next.epoch > prev.epoch && next.counter == 1
    }
}

impl Core {
    /// Starts the sync of `to`, behind the window at `learner_last`, from the log.
    pub(crate) fn start_log_sync(&mut self, to: ServerId, learner_last: Zxid) {
        let pin = self.log.base();
        let token = self.next_read_token();
        let Some(h) = self.leader().and_then(|l| l.learners.get_mut(&to)) else {
            return;
        };
        h.stage = Stage::Reading {
            start: learner_last,
            diff_sent: false,
            token,
            pin,
        };
        h.sent = learner_last;
        self.log.set_pin(self.stream_pin());
        self.read_log(token, learner_last);
    }

    fn next_read_token(&mut self) -> u64 {
        self.read_token = self.read_token.wrapping_add(1);
        self.read_token
    }

    fn read_log(&mut self, token: u64, from: Zxid) {
        let max = self.cfg.sync_stream_step.saturating_add(1);
        self.push(Action::ReadLog {
            token,
            from,
            max,
            max_bytes: LOG_READ_MAX_BYTES,
        });
    }

    /// Input (leader): the answer to [`Action::ReadLog`]`{ token, .. }`: the log's
    /// entries from its `from` on, in order, or `None` if the read failed. An answer
    /// for a sync that moved on (the learner restarted its handshake, the leader lost
    /// its role) is ignored, and a chunk that does not continue the stream ends it.
    pub fn handle_log_read(&mut self, token: u64, entries: Option<Vec<Entry>>) {
        let committed = self.log.committed();
        let Some(l) = self.leader_ref() else { return };
        let Some(epoch) = l.epoch else { return };
        let Some((to, start, diff_sent, pin, from)) =
            l.learners.iter().find_map(|(id, h)| match h.stage {
                Stage::Reading {
                    start,
                    diff_sent,
                    token: t,
                    pin,
                } if t == token => Some((*id, start, diff_sent, pin, h.sent)),
                _ => None,
            })
        else {
            return; // the answer to an earlier attempt's read
        };
        let mut entries = entries.unwrap_or_default().into_iter();
        if entries.next().is_none_or(|e| e.zxid != from) {
            self.log_sync_failed(
                to,
                start,
                diff_sent,
                "the log does not hold the stream's position",
            );
            return;
        }
        if !diff_sent {
            self.send(to, Message::Diff { epoch, echo: start });
        }
        let mut prev = from;
        for entry in entries {
            if entry.zxid > committed {
                break; // the window has it (its base is at or below the commit point)
            }
            if !follows(prev, entry.zxid) {
                self.log_sync_failed(to, start, true, "the log has a hole");
                return;
            }
            let zxid = entry.zxid;
            self.send(to, Message::Proposal { epoch, prev, entry });
            prev = zxid;
        }
        if prev == from {
            self.log_sync_failed(to, start, true, "the log ends before the window");
            return;
        }
        // Everything read is committed: the learner may apply it (and trim) now.
        self.send(to, Message::Commit { epoch, zxid: prev });
        if prev >= self.log.base() {
            // The window holds everything after `prev` (pinned until now).
            self.begin_stream(to, start, prev);
            return;
        }
        let token = self.next_read_token();
        if let Some(h) = self.leader().and_then(|l| l.learners.get_mut(&to)) {
            h.sent = prev;
            h.stage = Stage::Reading {
                start,
                diff_sent: true,
                token,
                pin,
            };
        }
        self.read_log(token, prev);
    }

    /// The log cannot serve `to`'s sync: a SNAP instead while nothing was sent, else
    /// drop the learner (it starts over, and gets a SNAP then).
    fn log_sync_failed(&mut self, to: ServerId, start: Zxid, diff_sent: bool, why: &str) {
        let committed = self.log.committed();
        tracing::info!(id = %self.cfg.id, learner = %to, ?start, why, "no DIFF from the log");
        if !diff_sent {
            self.send_sync_header(to, start, SyncPlan::Snap { at: committed });
            return;
        }
        if let Some(l) = self.leader() {
            l.learners.remove(&to);
            l.no_log_diff.insert(to);
        }
        self.log.set_pin(self.stream_pin());
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::broadcast::tests::established;
    use crate::config::{Config, Persisted};
    use crate::core::testkit::{commit_proposals, entry, sent};

    /// Leader 3 (epoch 1) with 6 committed txns and a window of 2 (base 1:4); server 2
    /// comes back with 1:1 and is read from the log in chunks of 3.
    fn leader_with_a_learner_behind() -> (Core, u64) {
        let mut c = established();
        c.cfg.diff_from_log = true;
        c.cfg.commit_log_max = 2;
        c.log.set_commit_log_max(2);
        c.cfg.sync_stream_step = 2;
        commit_proposals(&mut c, 6);
        assert_eq!(c.log.base(), Zxid::new(1, 4));
        c.drain_actions();
        let info = Message::FollowerInfo {
            accepted_epoch: 0,
            last_zxid: Zxid::new(1, 1),
        };
        c.handle_message(ServerId(2), info);
        c.drain_actions(); // LEADERINFO
        c.handle_message(
            ServerId(2),
            Message::AckEpoch {
                epoch: 1,
                fresh: true,
                current_epoch: 0,
                last_zxid: Zxid::new(1, 1),
            },
        );
        let out = c.drain_actions();
        assert!(
            sent(&out).iter().all(|(to, _)| *to != 2),
            "no header before the read"
        );
        let token = out
            .iter()
            .find_map(|a| match a {
                Action::ReadLog {
                    token,
                    from,
                    max: 3,
                    ..
                } if *from == Zxid::new(1, 1) => Some(*token),
                _ => None,
            })
            .expect("a log read");
        (c, token)
    }

    #[test]
    fn a_log_diff_goes_out_chunk_by_chunk_and_hands_over_to_the_window() {
        let (mut c, t1) = leader_with_a_learner_behind();
        // An answer to no read in flight changes nothing.
        c.handle_log_read(t1 + 100, Some(vec![entry(1), entry(2)]));
        assert!(c.drain_actions().is_empty());
        c.handle_log_read(t1, Some(vec![entry(1), entry(2), entry(3)]));
        let out = c.drain_actions();
        let to2: Vec<Message> = sent(&out)
            .into_iter()
            .filter(|(to, _)| *to == 2)
            .map(|(_, m)| m)
            .collect();
        assert!(matches!(to2[0], Message::Diff { echo, .. } if echo == Zxid::new(1, 1)));
        assert!(matches!(to2[1], Message::Proposal { prev, .. } if prev == Zxid::new(1, 1)));
        assert!(matches!(to2[3], Message::Commit { zxid, .. } if zxid == Zxid::new(1, 3)));
        let t2 = out
            .iter()
            .find_map(|a| match a {
                Action::ReadLog { token, from, .. } if *from == Zxid::new(1, 3) => Some(*token),
                _ => None,
            })
            .expect("the next read");
        // The first answer again (a duplicate) is ignored now.
        c.handle_log_read(t1, Some(vec![entry(1), entry(2), entry(3)]));
        assert!(c.drain_actions().is_empty());
        // 1:4 reaches the window's base: the rest comes from memory, then NEWLEADER.
        c.handle_log_read(t2, Some(vec![entry(3), entry(4)]));
        while c.sync_streaming() {
            c.stream_step();
        }
        let to2: Vec<Message> = sent(&c.drain_actions())
            .into_iter()
            .filter(|(to, _)| *to == 2)
            .map(|(_, m)| m)
            .collect();
        let proposed: Vec<Zxid> = to2
            .iter()
            .filter_map(|m| match m {
                Message::Proposal { entry, .. } => Some(entry.zxid),
                _ => None,
            })
            .collect();
        assert_eq!(
            proposed,
            (4..=6).map(|k| Zxid::new(1, k)).collect::<Vec<_>>()
        );
        assert!(
            matches!(to2.last(), Some(Message::NewLeader { zxid, .. }) if *zxid == Zxid::new(1, 6))
        );
    }

    #[test]
    fn a_chunk_that_does_not_start_at_the_stream_falls_back_on_a_snap() {
        let (mut c, t1) = leader_with_a_learner_behind();
        // The log's entry at 1:1 is another txn's zxid: not this history.
        c.handle_log_read(t1, Some(vec![entry(2), entry(3)]));
        let out = c.drain_actions();
        assert!(out
            .iter()
            .any(|a| matches!(a, Action::SendSnapshot(r) if r.to == ServerId(2))));
        assert!(!sent(&out)
            .iter()
            .any(|(_, m)| matches!(m, Message::Diff { .. })));
    }

    #[test]
    fn a_hole_after_the_header_drops_the_learner_and_its_next_sync_is_a_snap() {
        let (mut c, t1) = leader_with_a_learner_behind();
        c.handle_log_read(t1, Some(vec![entry(1), entry(3)]));
        let out = c.drain_actions();
        // The DIFF header went out, the entry after the hole did not.
        assert!(!sent(&out)
            .iter()
            .any(|(_, m)| matches!(m, Message::Proposal { .. })));
        assert!(!out.iter().any(|a| matches!(a, Action::ReadLog { .. })));
        let info = Message::FollowerInfo {
            accepted_epoch: 1,
            last_zxid: Zxid::new(1, 1),
        };
        c.handle_message(ServerId(2), info);
        c.handle_message(
            ServerId(2),
            Message::AckEpoch {
                epoch: 1,
                fresh: false,
                current_epoch: 1,
                last_zxid: Zxid::new(1, 1),
            },
        );
        let out = c.drain_actions();
        assert!(out
            .iter()
            .any(|a| matches!(a, Action::SendSnapshot(r) if r.to == ServerId(2))));
        assert!(!out.iter().any(|a| matches!(a, Action::ReadLog { .. })));
    }

    #[test]
    fn a_log_older_than_its_snapshot_is_only_read_from_the_snapshot_on() {
        let cfg = Config::majority(ServerId(1), (1..=3).map(ServerId), []).unwrap();
        // Snapshot at 1:10 durable, the log only up to 1:3: entries appended from now
        // on follow 1:10, not 1:3.
        let p = Persisted::new(
            1,
            1,
            Zxid::new(1, 10),
            Zxid::ZERO,
            (1..=3).map(entry).collect(),
        );
        let c = Core::new(cfg.clone(), p).unwrap();
        assert_eq!(c.log_floor, Zxid::new(1, 10));
        let p = Persisted::new(
            1,
            1,
            Zxid::new(1, 2),
            Zxid::ZERO,
            (1..=3).map(entry).collect(),
        );
        assert_eq!(Core::new(cfg, p).unwrap().log_floor, Zxid::ZERO);
    }

    #[test]
    fn follows_table() {
        let z = Zxid::new;
        assert!(follows(z(1, 4), z(1, 5)));
        assert!(follows(z(1, 4), z(3, 1)));
        assert!(follows(Zxid::ZERO, z(1, 1)));
        assert!(!follows(z(1, 4), z(1, 6))); // a hole in the epoch
        assert!(!follows(z(1, 4), z(2, 2))); // a new epoch starts at 1
        assert!(!follows(z(2, 1), z(1, 9))); // backwards
        assert!(!follows(z(1, u32::MAX), z(1, 0)));
    }
}

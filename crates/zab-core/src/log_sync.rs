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
//! entries at a time ([`Action::ReadLog`]), so the core stays free of I/O and a long
//! stream never holds its thread. Each chunk starts with the entry the stream is at:
//! the first one proves the learner's last txn is in this leader's history (same zxid,
//! same txn), so the DIFF header goes out only then; a later one proves the log did
//! not change under the stream. Disk entries are all committed (the window's base is
//! at or below the commit point), so each chunk is followed by a COMMIT and the
//! learner applies and trims as it goes. Once the stream reaches the window's base it
//! continues from memory as an ordinary stream (`Stage::Streaming`, pinned).
//!
//! Any failure before the header (the learner's last txn is not ours, the log was
//! purged past it, a read error) falls back on the SNAP the learner would have had;
//! after the header, the learner is dropped and its next sync is a SNAP.

use crate::action::Action;
use crate::core::Core;
use crate::leader::Stage;
use crate::messages::{Entry, Message};
use crate::sync::SyncPlan;
use crate::zxid::{ServerId, Zxid};

impl Core {
    /// Starts the sync of `to`, behind the window at `learner_last`, from the log.
    pub(crate) fn start_log_sync(&mut self, to: ServerId, learner_last: Zxid) {
        let Some(h) = self.leader().and_then(|l| l.learners.get_mut(&to)) else {
            return;
        };
        h.stage = Stage::Reading {
            start: learner_last,
            diff_sent: false,
        };
        h.sent = learner_last;
        self.read_log_for(to, learner_last);
    }

    fn read_log_for(&mut self, to: ServerId, from: Zxid) {
        let max = self.cfg.sync_stream_step.saturating_add(1);
        self.push(Action::ReadLog { to, from, max });
    }

    /// Input (leader): the result of [`Action::ReadLog`]`{ to, from, .. }`: the log's
    /// entries from `from` on, in order, or `None` if the read failed. A result for a
    /// sync that moved on (the learner restarted its handshake, the leader lost its
    /// role) is ignored, and so is anything that does not follow the stream.
    pub fn handle_log_read(&mut self, to: ServerId, from: Zxid, entries: Option<Vec<Entry>>) {
        let committed = self.log.committed();
        let Some(l) = self.leader_ref() else { return };
        let Some(epoch) = l.epoch else { return };
        let Some(h) = l.learners.get(&to) else { return };
        let Stage::Reading { start, diff_sent } = h.stage else {
            return;
        };
        if h.sent != from {
            return; // the answer to an earlier attempt's read
        }
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
            if entry.zxid <= prev {
                self.log_sync_failed(to, start, true, "the log read is out of order");
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
            // The window holds everything after `prev` (the pin keeps it from here on).
            self.begin_stream(to, start, prev);
            return;
        }
        if let Some(h) = self.leader().and_then(|l| l.learners.get_mut(&to)) {
            h.sent = prev;
            h.stage = Stage::Reading {
                start,
                diff_sent: true,
            };
        }
        self.read_log_for(to, prev);
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
    }
}

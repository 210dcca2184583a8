//! Static configuration ([`Config`]) and the state the shell loads on restart
//! ([`Persisted`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::messages::Entry;
use crate::quorum::{Majority, QuorumError, QuorumVerifier};
use crate::zxid::{ServerId, Zxid};

/// What a member of the ensemble does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum MemberRole {
    /// Votes in elections and in commit quorums (ZooKeeper's participant).
    Participant,
    /// Never votes; learns committed txns through INFORM.
    Observer,
}

/// Configuration errors, reported by [`Config::validate`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// This server is not a member.
    #[error("server {0} is not in the member list")]
    NotAMember(ServerId),
    /// The quorum verifier rejected the voter set.
    #[error("quorum: {0}")]
    Quorum(#[from] QuorumError),
    /// A participant is not a voter of the quorum verifier, or an observer is.
    #[error("member {0} has a role that disagrees with the quorum verifier")]
    RoleMismatch(ServerId),
    /// A limit is zero or out of range.
    #[error("invalid limit: {0}")]
    BadLimit(&'static str),
    /// The persisted state is inconsistent (a hole or disorder in the log, a log that
    /// does not reach back to the snapshot).
    #[error("inconsistent persisted state: {0}")]
    BadPersisted(String),
}

/// Static configuration of one core. All durations are in ticks.
#[derive(Debug, Clone)]
pub struct Config {
    /// This server.
    pub id: ServerId,
    /// Every member of the ensemble, this server included, with its role.
    pub members: BTreeMap<ServerId, MemberRole>,
    /// Decides quorums among the participants.
    pub quorum: Arc<dyn QuorumVerifier>,
    /// Ticks a learner or a new leader may spend in discovery and sync before it gives
    /// up and goes back to election (ZooKeeper's `initLimit`).
    pub init_limit_ticks: u64,
    /// Ticks of silence after which a learner abandons its leader, and within which a
    /// leader must hear a quorum (ZooKeeper's `syncLimit`).
    pub sync_limit_ticks: u64,
    /// Ticks a LOOKING server waits after a quorum agrees, for a better vote to arrive
    /// (ZooKeeper's `finalizeWait`).
    pub finalize_wait_ticks: u64,
    /// Ticks between re-sends of election notifications and of FOLLOWERINFO.
    pub resend_ticks: u64,
    /// How many committed entries the in-memory log keeps for DIFF sync
    /// (ZooKeeper's committed log; default [`COMMIT_LOG_MAX_DEFAULT`]).
    pub commit_log_max: usize,
    /// Upper bound on the payload bytes of those committed entries (default
    /// [`COMMIT_LOG_MAX_BYTES_DEFAULT`]); the oldest are dropped first. Learners
    /// further behind get a SNAP.
    pub commit_log_max_bytes: usize,
    /// Entries of a learner's sync stream (DIFF/TRUNC, or what follows a SNAP) the
    /// leader sends per step (default [`SYNC_STREAM_STEP_DEFAULT`]): a stream longer
    /// than this goes out over several calls of [`Core::stream_step`](crate::Core::stream_step),
    /// so that a large DIFF never holds the leader for one long pass.
    pub sync_stream_step: usize,
    /// Whether a learner behind the in-memory window is synced from the durable log
    /// before the leader falls back on a SNAP (ZooKeeper reads its txn log files the
    /// same way). Only set it when the shell executes [`Action::ReadLog`](crate::Action::ReadLog)
    /// and reports it with [`Core::handle_log_read`](crate::Core::handle_log_read);
    /// default `false`.
    pub diff_from_log: bool,
    /// Proposals the leader may have outstanding (proposed, not committed) before
    /// `propose` returns `Backpressure`.
    pub outstanding_max: usize,
    /// The largest zxid counter a leader may assign; reaching it forces a new epoch.
    /// ZooKeeper's value is `u32::MAX - 1`; tests lower it to exercise rollover.
    pub zxid_counter_max: u32,
}

/// Default bound on the committed entries kept for DIFF sync.
///
/// ZooKeeper keeps 500 (`zookeeper.commitLogCount`) and falls back on reading its
/// txn log files before it sends a SNAP. Ensemble syncs from memory only, and 500
/// entries are a millisecond of writes under load: any lost connection to a follower
/// then cost a SNAP of the whole tree (seconds and the whole state on the wire for a
/// large one). So the byte bound ([`COMMIT_LOG_MAX_BYTES_DEFAULT`]) is what usually
/// limits the window (~28,000 setData txns of 100 bytes); this count only caps the
/// per-entry bookkeeping (40 bytes each) for tiny txns.
pub const COMMIT_LOG_MAX_DEFAULT: usize = 100_000;

/// Default bound on the payload bytes of the committed entries kept for DIFF sync.
pub const COMMIT_LOG_MAX_BYTES_DEFAULT: usize = 4 << 20;

/// Default number of entries per step of a sync stream: ~1-2 ms of the leader's
/// thread with the node's encoding (measured: its longest pass during a DIFF of
/// ~20,000 txns 1.7-2.6 ms, against 7.2-8.8 ms when the whole DIFF went at once).
pub const SYNC_STREAM_STEP_DEFAULT: usize = 2048;

/// Most payload bytes one [`Action::ReadLog`](crate::Action::ReadLog) asks for (the
/// entry count is `sync_stream_step`): large txns must not turn one read into
/// hundreds of megabytes held by the leader at once.
pub const LOG_READ_MAX_BYTES: usize = 1 << 20;

impl Config {
    /// A configuration where every id in `voters` is a participant with majority
    /// quorums, and every id in `observers` an observer; default limits.
    pub fn majority(
        id: ServerId,
        voters: impl IntoIterator<Item = ServerId>,
        observers: impl IntoIterator<Item = ServerId>,
    ) -> Result<Self, ConfigError> {
        let voters: Vec<ServerId> = voters.into_iter().collect();
        let mut members: BTreeMap<ServerId, MemberRole> = voters
            .iter()
            .map(|v| (*v, MemberRole::Participant))
            .collect();
        for o in observers {
            members.insert(o, MemberRole::Observer);
        }
        let cfg = Config {
            id,
            members,
            quorum: Arc::new(Majority::new(voters)?),
            init_limit_ticks: 10,
            sync_limit_ticks: 5,
            finalize_wait_ticks: 1,
            resend_ticks: 3,
            commit_log_max: COMMIT_LOG_MAX_DEFAULT,
            commit_log_max_bytes: COMMIT_LOG_MAX_BYTES_DEFAULT,
            sync_stream_step: SYNC_STREAM_STEP_DEFAULT,
            diff_from_log: false,
            outstanding_max: 1000,
            zxid_counter_max: u32::MAX - 1,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks membership, roles and limits.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.members.contains_key(&self.id) {
            return Err(ConfigError::NotAMember(self.id));
        }
        for (id, role) in &self.members {
            let voter = self.quorum.is_voter(*id);
            if voter != (*role == MemberRole::Participant) {
                return Err(ConfigError::RoleMismatch(*id));
            }
        }
        for v in self.quorum.voters() {
            if !self.members.contains_key(&v) {
                return Err(ConfigError::RoleMismatch(v));
            }
        }
        if self.init_limit_ticks == 0 {
            return Err(ConfigError::BadLimit("init_limit_ticks"));
        }
        if self.sync_limit_ticks == 0 {
            return Err(ConfigError::BadLimit("sync_limit_ticks"));
        }
        if self.resend_ticks == 0 {
            return Err(ConfigError::BadLimit("resend_ticks"));
        }
        if self.outstanding_max == 0 {
            return Err(ConfigError::BadLimit("outstanding_max"));
        }
        if self.sync_stream_step == 0 {
            return Err(ConfigError::BadLimit("sync_stream_step"));
        }
        if self.zxid_counter_max < 2 || self.zxid_counter_max == u32::MAX {
            return Err(ConfigError::BadLimit("zxid_counter_max"));
        }
        Ok(())
    }

    /// Whether `id` is an observer of this ensemble.
    pub fn is_observer(&self, id: ServerId) -> bool {
        self.members.get(&id) == Some(&MemberRole::Observer)
    }

    /// Every member except this server.
    pub fn peers(&self) -> impl Iterator<Item = ServerId> + '_ {
        self.members.keys().copied().filter(move |p| *p != self.id)
    }
}

/// What the shell loads from durable storage before calling
/// [`Core::new`](crate::Core::new).
///
/// On restart the shell must:
/// 1. read `accepted_epoch` and `current_epoch` (0 if never written);
/// 2. restore its state machine from its newest snapshot, at `snapshot_zxid`
///    ([`Zxid::ZERO`] if none) — and apply nothing beyond it: log entries after the
///    snapshot may be uncommitted; the core hands them back in
///    [`Action::Commit`](crate::Action::Commit) once it learns they are committed;
/// 3. pass the durable log as `log_base` plus `log`: `log` holds consecutive entries
///    that directly follow `log_base` (no holes) up to the last durable entry, and must
///    include every entry after `snapshot_zxid`. Entries at or before `snapshot_zxid`
///    are optional (they let the server serve DIFF after restart); `log_base` is the
///    zxid of the entry just before `log[0]`, or `snapshot_zxid` when `log` starts there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Persisted {
    /// The last epoch this server accepted from a LEADERINFO (or chose as leader).
    pub accepted_epoch: u32,
    /// The epoch of the last leader this server acknowledged NEWLEADER for.
    pub current_epoch: u32,
    /// The zxid the state machine snapshot covers.
    pub snapshot_zxid: Zxid,
    /// The zxid just before `log[0]`; at most `snapshot_zxid`.
    pub log_base: Zxid,
    /// Durable log entries after `log_base`, in zxid order.
    pub log: Vec<Entry>,
}

impl Persisted {
    /// Bundles the persisted state (see the type docs for what each part means).
    pub fn new(
        accepted_epoch: u32,
        current_epoch: u32,
        snapshot_zxid: Zxid,
        log_base: Zxid,
        log: Vec<Entry>,
    ) -> Self {
        Persisted {
            accepted_epoch,
            current_epoch,
            snapshot_zxid,
            log_base,
            log,
        }
    }

    /// Drops the log entries at or before the snapshot when they do not run on into
    /// the entries after it: a hole that lies wholly at or below `snapshot_zxid` is
    /// history the snapshot already holds (ZooKeeper likewise replays only the txns
    /// after its snapshot). The simulator found such logs on restart: a snapshot at
    /// `S` durable while the log kept entries only up to some `x < S` and then `S+1`
    /// onwards. The in-memory window must be contiguous (it serves DIFFs), so it then
    /// starts at the snapshot. A hole above the snapshot is left for
    /// [`Persisted::validate`] to refuse.
    pub fn without_stale_prefix(mut self) -> Self {
        let snap = self.snapshot_zxid;
        if self.log_base > snap {
            return self;
        }
        let mut prev = self.log_base;
        let mut stale = false;
        for e in &self.log {
            if e.zxid <= prev {
                return self; // disorder: validate reports it
            }
            if is_hole(prev, e.zxid) {
                // Everything missing lies at or below the snapshot when the entry after
                // the hole is itself covered, or directly follows the snapshot.
                stale = e.zxid <= snap || !is_hole(snap, e.zxid);
                break;
            }
            prev = e.zxid;
        }
        if stale {
            tracing::warn!(
                snapshot = %snap,
                "log entries at or before the snapshot have a hole: starting the log at the snapshot"
            );
            self.log.retain(|e| e.zxid > snap);
            self.log_base = snap;
        }
        self
    }

    /// Checks the log: it starts at or before the snapshot, its zxids increase, and
    /// within an epoch its counters have no hole.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.log_base > self.snapshot_zxid {
            return Err(ConfigError::BadPersisted(format!(
                "log starts at {} after the snapshot at {}",
                self.log_base, self.snapshot_zxid
            )));
        }
        let mut prev = self.log_base;
        for e in &self.log {
            if e.zxid <= prev {
                return Err(ConfigError::BadPersisted(format!(
                    "log zxids do not increase: {} after {prev}",
                    e.zxid
                )));
            }
            if is_hole(prev, e.zxid) {
                return Err(ConfigError::BadPersisted(format!(
                    "hole in the log: {} after {prev} (snapshot at {})",
                    e.zxid, self.snapshot_zxid
                )));
            }
            prev = e.zxid;
        }
        Ok(())
    }
}

/// Whether `next` cannot directly follow `prev` in a log: within an epoch the counter
/// must be the next one; a new epoch starts at counter 1 or later.
fn is_hole(prev: Zxid, next: Zxid) -> bool {
    if next.epoch == prev.epoch {
        next.counter != prev.counter.wrapping_add(1)
    } else {
        next.counter == 0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use bytes::Bytes;

    fn log(zs: &[(u32, u32)]) -> Vec<Entry> {
        zs.iter()
            .map(|(e, c)| Entry {
                zxid: Zxid::new(*e, *c),
                payload: Bytes::new(),
            })
            .collect()
    }

    #[test]
    fn persisted_validation_table() {
        let z = Zxid::new;
        let ok = |p: Persisted| p.validate().is_ok();
        assert!(ok(Persisted::default()));
        assert!(ok(Persisted::new(
            2,
            2,
            Zxid::ZERO,
            Zxid::ZERO,
            log(&[(1, 1), (1, 2), (2, 1)])
        )));
        assert!(ok(Persisted::new(2, 2, z(1, 1), z(1, 1), log(&[(1, 2)]))));
        assert!(ok(Persisted::new(2, 2, z(1, 2), z(1, 1), log(&[(1, 2)]))));
        assert!(
            !ok(Persisted::new(
                2,
                2,
                Zxid::ZERO,
                Zxid::ZERO,
                log(&[(1, 1), (1, 3)])
            )),
            "hole"
        );
        assert!(
            !ok(Persisted::new(
                2,
                2,
                Zxid::ZERO,
                Zxid::ZERO,
                log(&[(1, 2), (1, 1)])
            )),
            "disorder"
        );
        assert!(
            !ok(Persisted::new(2, 2, z(1, 1), z(1, 2), log(&[(1, 3)]))),
            "gap to snapshot"
        );
        assert!(
            !ok(Persisted::new(2, 2, Zxid::ZERO, Zxid::ZERO, log(&[(1, 0)]))),
            "counter 0"
        );
    }

    #[test]
    fn a_hole_covered_by_the_snapshot_is_dropped_not_refused() {
        let z = Zxid::new;
        // Entries up to (1,2), snapshot at (1,5), entries from (1,6): the missing
        // (1,3)..(1,5) are in the snapshot.
        let p = Persisted::new(
            2,
            2,
            z(1, 5),
            Zxid::ZERO,
            log(&[(1, 1), (1, 2), (1, 6), (1, 7)]),
        );
        assert!(p.validate().is_err());
        let p = p.without_stale_prefix();
        p.validate().unwrap();
        assert_eq!(p.log_base, z(1, 5));
        assert_eq!(
            p.log.iter().map(|e| e.zxid).collect::<Vec<_>>(),
            vec![z(1, 6), z(1, 7)]
        );
        // A hole wholly below the snapshot, with covered entries after it.
        let p = Persisted::new(
            2,
            2,
            z(1, 5),
            Zxid::ZERO,
            log(&[(1, 1), (1, 4), (1, 5), (1, 6)]),
        )
        .without_stale_prefix();
        p.validate().unwrap();
        assert_eq!(p.log.len(), 1);
        // A new epoch right after the snapshot.
        let p = Persisted::new(2, 2, z(1, 5), Zxid::ZERO, log(&[(1, 1), (2, 1)]))
            .without_stale_prefix();
        p.validate().unwrap();
        // A hole above the snapshot stays an error, and clean logs are untouched.
        let p = Persisted::new(2, 2, z(1, 2), Zxid::ZERO, log(&[(1, 1), (1, 2), (1, 4)]));
        assert_eq!(p.clone().without_stale_prefix(), p);
        assert!(p.validate().is_err());
        let p = Persisted::new(2, 2, z(1, 1), Zxid::ZERO, log(&[(1, 1), (1, 2)]));
        assert_eq!(p.clone().without_stale_prefix(), p);
    }

    #[test]
    fn config_validation_table() {
        let ok = Config::majority(
            ServerId(1),
            [ServerId(1), ServerId(2), ServerId(3)],
            [ServerId(4)],
        );
        assert!(ok.is_ok());
        assert_eq!(
            Config::majority(ServerId(9), [ServerId(1)], []).err(),
            Some(ConfigError::NotAMember(ServerId(9)))
        );
        let mut bad = ok.clone().unwrap();
        bad.init_limit_ticks = 0;
        assert_eq!(
            bad.validate(),
            Err(ConfigError::BadLimit("init_limit_ticks"))
        );
        let mut bad = ok.clone().unwrap();
        bad.sync_stream_step = 0;
        assert_eq!(
            bad.validate(),
            Err(ConfigError::BadLimit("sync_stream_step"))
        );
        let mut bad = ok.unwrap();
        bad.members.insert(ServerId(2), MemberRole::Observer);
        assert_eq!(bad.validate(), Err(ConfigError::RoleMismatch(ServerId(2))));
    }
}

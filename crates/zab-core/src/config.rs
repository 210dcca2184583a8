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
    /// (ZooKeeper's committed log).
    pub commit_log_max: usize,
    /// Proposals the leader may have outstanding (proposed, not committed) before
    /// `propose` returns `Backpressure`.
    pub outstanding_max: usize,
    /// The largest zxid counter a leader may assign; reaching it forces a new epoch.
    /// ZooKeeper's value is `u32::MAX - 1`; tests lower it to exercise rollover.
    pub zxid_counter_max: u32,
}

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
            commit_log_max: 500,
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

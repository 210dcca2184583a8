//! Node configuration: a builder with documented defaults, validated at build time.

use std::path::PathBuf;

use session::{PasswordSecret, SessionConfig};
use zab_core::{MemberRole, ServerId};

use crate::server::{ServerConfig, REQUEST_MAX_BYTES_DEFAULT};

/// Where a node keeps its log, epochs and snapshots.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StorageKind {
    /// In memory: lost when the process exits (tests, benchmarks, caches).
    Memory,
    /// Files in this directory (`log/`, `snap/`, `epochs`).
    Dir(PathBuf),
}

/// Whether log appends are fsynced before they are acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fsync {
    /// fdatasync every group commit: an acknowledged write survives power loss.
    Always,
    /// Hand data to the OS only: survives a process crash, not a machine crash.
    Never,
}

/// A configuration the builder refuses, naming the setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A setting is out of range.
    #[error("invalid {key}: {reason}")]
    Invalid {
        /// The setting.
        key: &'static str,
        /// Why.
        reason: String,
    },
}

fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        reason: reason.into(),
    }
}

/// A validated node configuration; build it with [`NodeConfig::builder`].
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub(crate) id: u64,
    pub(crate) members: Vec<(u64, MemberRole)>,
    pub(crate) tick_ms: u32,
    pub(crate) init_limit_ticks: u64,
    pub(crate) sync_limit_ticks: u64,
    pub(crate) session_min_ms: u32,
    pub(crate) session_max_ms: u32,
    pub(crate) snapshot_every_txns: u64,
    pub(crate) storage: StorageKind,
    pub(crate) fsync: Fsync,
    pub(crate) secret: u64,
    pub(crate) request_max_bytes: usize,
    pub(crate) outstanding_max: usize,
    pub(crate) housekeeping_ms: u32,
    pub(crate) super_digest: Option<String>,
    pub(crate) commit_log_max: usize,
    pub(crate) commit_log_max_bytes: usize,
    pub(crate) diff_from_log: bool,
}

impl NodeConfig {
    /// A builder for server `id`. Defaults: a single voter (itself); tick 50 ms;
    /// init limit 10 ticks; sync limit 5 ticks; sessions between 2 and 20 ticks;
    /// snapshot every 100,000 txns; memory storage; fsync always; request limit
    /// 1 MiB - 1; 10,000 outstanding proposals; containers/TTL checked every 1 s; a
    /// DIFF window of 100,000 committed txns or 4 MiB, whichever is smaller.
    pub fn builder(id: u64) -> NodeConfigBuilder {
        NodeConfigBuilder {
            cfg: NodeConfig {
                id,
                members: Vec::new(),
                tick_ms: 50,
                init_limit_ticks: 10,
                sync_limit_ticks: 5,
                session_min_ms: 0,
                session_max_ms: 0,
                snapshot_every_txns: 100_000,
                storage: StorageKind::Memory,
                fsync: Fsync::Always,
                secret: 0x5eed_e75e_b1e5,
                request_max_bytes: REQUEST_MAX_BYTES_DEFAULT,
                outstanding_max: 10_000,
                housekeeping_ms: 1_000,
                super_digest: None,
                commit_log_max: zab_core::COMMIT_LOG_MAX_DEFAULT,
                commit_log_max_bytes: zab_core::COMMIT_LOG_MAX_BYTES_DEFAULT,
                diff_from_log: true,
            },
        }
    }

    /// This server's id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The tick length.
    pub fn tick_ms(&self) -> u32 {
        self.tick_ms
    }

    /// The storage.
    pub fn storage(&self) -> &StorageKind {
        &self.storage
    }

    /// The fsync policy.
    pub fn fsync(&self) -> Fsync {
        self.fsync
    }

    /// The server configuration this node runs.
    pub fn server_config(&self, start_time_ms: u64) -> Result<ServerConfig, ConfigError> {
        let voters = self
            .members
            .iter()
            .filter(|(_, r)| *r == MemberRole::Participant)
            .map(|(i, _)| ServerId(*i));
        let observers = self
            .members
            .iter()
            .filter(|(_, r)| *r == MemberRole::Observer)
            .map(|(i, _)| ServerId(*i));
        let mut zab = zab_core::Config::majority(ServerId(self.id), voters, observers)
            .map_err(|e| invalid("peers", e.to_string()))?;
        zab.init_limit_ticks = self.init_limit_ticks;
        zab.sync_limit_ticks = self.sync_limit_ticks;
        zab.outstanding_max = self.outstanding_max;
        zab.commit_log_max = self.commit_log_max;
        zab.commit_log_max_bytes = self.commit_log_max_bytes;
        // The log writer executes `StorageOp::ReadLog`.
        zab.diff_from_log = self.diff_from_log;
        zab.validate()
            .map_err(|e| invalid("limits", e.to_string()))?;
        let mut session = SessionConfig::new(self.id, self.tick_ms);
        if self.session_min_ms > 0 {
            session.min_session_timeout_ms = self.session_min_ms;
        }
        if self.session_max_ms > 0 {
            session.max_session_timeout_ms = self.session_max_ms;
        }
        session
            .validate()
            .map_err(|e| invalid("session", e.to_string()))?;
        Ok(ServerConfig {
            zab,
            session,
            secret: PasswordSecret::from_seed(self.secret),
            start_time_ms,
            request_max_bytes: self.request_max_bytes,
            snapshot_every_txns: self.snapshot_every_txns,
            housekeeping_ticks: u64::from((self.housekeeping_ms / self.tick_ms).max(1)),
            super_digest: self.super_digest.clone(),
            sync_step_nodes: crate::server::SYNC_STEP_NODES,
        })
    }
}

/// Builds a [`NodeConfig`]; see [`NodeConfig::builder`] for the defaults.
#[derive(Debug, Clone)]
pub struct NodeConfigBuilder {
    cfg: NodeConfig,
}

impl NodeConfigBuilder {
    /// Adds a voting member (this server included, if it votes).
    pub fn voter(mut self, id: u64) -> Self {
        self.cfg.members.push((id, MemberRole::Participant));
        self
    }

    /// Adds an observer (this server included, if it observes).
    pub fn observer(mut self, id: u64) -> Self {
        self.cfg.members.push((id, MemberRole::Observer));
        self
    }

    /// Tick length in ms (ZooKeeper's `tickTime`; default 50).
    pub fn tick_ms(mut self, ms: u32) -> Self {
        self.cfg.tick_ms = ms;
        self
    }

    /// Ticks for discovery + sync (ZooKeeper's `initLimit`; default 10).
    pub fn init_limit_ticks(mut self, t: u64) -> Self {
        self.cfg.init_limit_ticks = t;
        self
    }

    /// Ticks of leader silence tolerated (ZooKeeper's `syncLimit`; default 5).
    pub fn sync_limit_ticks(mut self, t: u64) -> Self {
        self.cfg.sync_limit_ticks = t;
        self
    }

    /// Session timeout bounds in ms (default 2 and 20 ticks).
    pub fn session_timeout_ms(mut self, min_ms: u32, max_ms: u32) -> Self {
        self.cfg.session_min_ms = min_ms;
        self.cfg.session_max_ms = max_ms;
        self
    }

    /// Snapshot after at most this many txns (0: never; default 100,000). Each server
    /// starts its snapshot somewhere between half and all of `n` txns after the last
    /// one, at a point derived from its id, so the servers do not all snapshot and
    /// purge at once (ZooKeeper randomizes `snapCount` the same way).
    pub fn snapshot_every_txns(mut self, n: u64) -> Self {
        self.cfg.snapshot_every_txns = n;
        self
    }

    /// Storage (default memory).
    pub fn storage(mut self, s: StorageKind) -> Self {
        self.cfg.storage = s;
        self
    }

    /// Store in files under `dir`.
    pub fn data_dir(self, dir: impl Into<PathBuf>) -> Self {
        self.storage(StorageKind::Dir(dir.into()))
    }

    /// The fsync policy (default always).
    pub fn fsync(mut self, f: Fsync) -> Self {
        self.cfg.fsync = f;
        self
    }

    /// The ensemble secret session passwords derive from (same on every server).
    pub fn secret(mut self, s: u64) -> Self {
        self.cfg.secret = s;
        self
    }

    /// Largest request in bytes (default 1 MiB - 1; must agree on every server).
    pub fn request_max_bytes(mut self, n: usize) -> Self {
        self.cfg.request_max_bytes = n;
        self
    }

    /// The super user's digest id, `super:<base64 SHA-1>` as printed by
    /// [`crate::auth::digest_id`] (ZooKeeper's
    /// `zookeeper.DigestAuthenticationProvider.superDigest`): a connection whose
    /// digest addAuth produces this id also gets the id `super:`, which passes every
    /// ACL check. Default none.
    pub fn super_digest(mut self, digest_id: impl Into<String>) -> Self {
        self.cfg.super_digest = Some(digest_id.into());
        self
    }

    /// Proposals in flight before requests are throttled (default 10,000).
    pub fn outstanding_max(mut self, n: usize) -> Self {
        self.cfg.outstanding_max = n;
        self
    }

    /// The DIFF window: how many of the newest committed txns, and at most how many
    /// payload bytes of them, every server keeps in memory to bring a learner that
    /// was away up to date by sending what it missed (DIFF). A learner further
    /// behind gets a SNAP of the whole tree. Default 100,000 txns or 4 MiB,
    /// whichever is smaller ([`zab_core::COMMIT_LOG_MAX_DEFAULT`] explains why this
    /// is larger than ZooKeeper's 500). Zero for either disables DIFF after the
    /// first trim.
    pub fn commit_log(mut self, max_txns: usize, max_bytes: usize) -> Self {
        self.cfg.commit_log_max = max_txns;
        self.cfg.commit_log_max_bytes = max_bytes;
        self
    }

    /// Whether a leader syncs a learner behind the DIFF window ([`Self::commit_log`])
    /// by reading what it missed from its log, before it falls back on a SNAP of the
    /// whole tree (default `true`; ZooKeeper reads its txn log files the same way).
    /// The log reaches back to the snapshot before the newest one. Turning it off
    /// makes every such learner a SNAP (the benchmark does, to measure one).
    pub fn diff_from_log(mut self, on: bool) -> Self {
        self.cfg.diff_from_log = on;
        self
    }

    /// How often the leader checks for empty containers and expired TTL nodes
    /// (default 1,000 ms).
    pub fn housekeeping_ms(mut self, ms: u32) -> Self {
        self.cfg.housekeeping_ms = ms;
        self
    }

    /// Validates and returns the configuration.
    pub fn build(mut self) -> Result<NodeConfig, ConfigError> {
        let c = &mut self.cfg;
        if c.id == 0 || c.id > session::id::MAX_SERVER_ID {
            return Err(invalid("id", "must be in 1..=254"));
        }
        if c.members.is_empty() {
            c.members.push((c.id, MemberRole::Participant));
        }
        let mut ids: Vec<u64> = c.members.iter().map(|(i, _)| *i).collect();
        ids.sort_unstable();
        if ids.windows(2).any(|w| w[0] == w[1]) {
            return Err(invalid("peers", "a server id is listed twice"));
        }
        if !ids.contains(&c.id) {
            return Err(invalid("peers", "this server is not a member"));
        }
        if c.tick_ms == 0 {
            return Err(invalid("tick_ms", "must be positive"));
        }
        if c.init_limit_ticks == 0 || c.sync_limit_ticks == 0 {
            return Err(invalid("init/sync limit", "must be positive"));
        }
        if c.request_max_bytes == 0 || c.request_max_bytes > zab_core::PAYLOAD_MAX_BYTES / 2 {
            return Err(invalid("request_max_bytes", "must be in 1..=8 MiB"));
        }
        if c.housekeeping_ms == 0 {
            return Err(invalid("housekeeping_ms", "must be positive"));
        }
        let cfg = self.cfg;
        cfg.server_config(0)?;
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn defaults_build_a_single_voter() {
        let c = NodeConfig::builder(1).build().unwrap();
        assert_eq!(c.members, vec![(1, MemberRole::Participant)]);
        assert_eq!(c.tick_ms(), 50);
    }

    #[test]
    fn bad_settings_name_their_key() {
        let e = NodeConfig::builder(1).tick_ms(0).build().unwrap_err();
        assert!(e.to_string().contains("tick_ms"));
        let e = NodeConfig::builder(4)
            .voter(1)
            .voter(2)
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("peers"));
        let e = NodeConfig::builder(1)
            .voter(1)
            .voter(1)
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("twice"));
        let e = NodeConfig::builder(1)
            .session_timeout_ms(500, 100)
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("session"));
        let e = NodeConfig::builder(0).build().unwrap_err();
        assert!(e.to_string().contains("id"));
    }
}

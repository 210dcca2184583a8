//! The server's configuration file, in the spirit of ZooKeeper's `zoo.cfg`: one
//! `key = value` per line, `#` starts a comment. Parsed by hand; every error names the
//! key (and line) at fault.
//!
//! ```text
//! # this server
//! server_id = 1
//! # every server: server.<id> = <host>:<peer port>[:participant|:observer][;<client host:port>]
//! server.1 = 127.0.0.1:2888;127.0.0.1:2181
//! server.2 = 127.0.0.1:2889;127.0.0.1:2182
//! server.3 = 127.0.0.1:2890:observer;127.0.0.1:2183
//! data_dir = /var/lib/ensemble/1
//! client_port = 2181              # where this server takes clients
//! client_address = 0.0.0.0        # optional, default 0.0.0.0
//! admin_port = 8081               # mntr / ruok / Prometheus text; 0 = off
//! admin_address = 127.0.0.1       # optional, default 127.0.0.1 (not public)
//! tick_ms = 50
//! init_limit = 10                 # ticks
//! sync_limit = 5                  # ticks
//! session_min_ms = 100
//! session_max_ms = 20000
//! snapshot_every_txns = 100000    # 0: never
//! commit_log_txns = 100000        # DIFF window: newest committed txns kept in memory
//! commit_log_bytes = 4194304      # ... and at most this many payload bytes of them
//! diff_from_log = true            # learners behind it: DIFF read from the log, or SNAP
//! fsync = always                  # or never
//! secret = 12345                  # same on every server (session passwords)
//! stop_file = /run/ensemble-1.stop  # optional: created = clean stop
//! ```

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use ensemble::{Fsync, NodeConfig};

/// Role of a server in the ensemble.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Role {
    /// Votes (ZooKeeper's participant).
    Participant,
    /// Replicates without voting.
    Observer,
}

/// One server of the ensemble as listed in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerEntry {
    /// Its id (1..=254).
    pub id: u64,
    /// Where it talks to the other servers.
    pub peer_addr: SocketAddr,
    /// Voter or observer.
    pub role: Role,
    /// Where it takes clients, if listed (used by tools; a server uses its own
    /// `client_port`).
    pub client_addr: Option<SocketAddr>,
}

/// A parsed, validated configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// This server's id.
    pub server_id: u64,
    /// Every server, by id.
    pub servers: BTreeMap<u64, ServerEntry>,
    /// Data directory (log, snapshots, epochs).
    pub data_dir: PathBuf,
    /// Client listen address.
    pub client_addr: SocketAddr,
    /// Admin listen address; `None` when `admin_port = 0`.
    pub admin_addr: Option<SocketAddr>,
    /// Tick length.
    pub tick_ms: u32,
    /// Ticks for discovery + sync.
    pub init_limit_ticks: u64,
    /// Ticks of leader silence tolerated.
    pub sync_limit_ticks: u64,
    /// Smallest session timeout (0: the node's default, 2 ticks).
    pub session_min_ms: u32,
    /// Largest session timeout (0: the node's default, 20 ticks).
    pub session_max_ms: u32,
    /// Snapshot after this many txns (0: never).
    pub snapshot_every_txns: u64,
    /// DIFF window: committed txns kept in memory for learners that were away.
    pub commit_log_txns: usize,
    /// DIFF window: at most this many payload bytes of them.
    pub commit_log_bytes: usize,
    /// Whether a learner behind the window is synced from the leader's log before a
    /// SNAP is sent.
    pub diff_from_log: bool,
    /// fsync policy.
    pub fsync: Fsync,
    /// Ensemble secret (session passwords); same on every server.
    pub secret: u64,
    /// A file whose appearance stops the server cleanly.
    pub stop_file: Option<PathBuf>,
}

/// Why a configuration was refused; the message names the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A line is not `key = value`.
    #[error("line {line}: expected `key = value`, found {text:?}")]
    Syntax {
        /// 1-based line number.
        line: usize,
        /// The line.
        text: String,
    },
    /// A key the server does not know (likely a typo).
    #[error("line {line}: unknown key `{key}`")]
    UnknownKey {
        /// 1-based line number.
        line: usize,
        /// The key.
        key: String,
    },
    /// A key given twice.
    #[error("line {line}: key `{key}` given twice")]
    Duplicate {
        /// 1-based line number.
        line: usize,
        /// The key.
        key: String,
    },
    /// A required key is missing.
    #[error("missing required key `{0}`")]
    Missing(&'static str),
    /// A value is malformed or out of range, or the settings contradict each other.
    #[error("bad value for `{key}`: {reason}")]
    Invalid {
        /// The key.
        key: String,
        /// Why.
        reason: String,
    },
    /// The file could not be read.
    #[error("cannot read {path}: {reason}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        reason: String,
    },
}

fn invalid(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        reason: reason.into(),
    }
}

const KEYS: &[&str] = &[
    "server_id",
    "data_dir",
    "client_port",
    "client_address",
    "admin_port",
    "admin_address",
    "tick_ms",
    "init_limit",
    "sync_limit",
    "session_min_ms",
    "session_max_ms",
    "snapshot_every_txns",
    "commit_log_txns",
    "commit_log_bytes",
    "diff_from_log",
    "fsync",
    "secret",
    "stop_file",
];

fn num<T: std::str::FromStr>(key: &str, v: &str) -> Result<T, ConfigError> {
    v.parse()
        .map_err(|_| invalid(key, format!("{v:?} is not a valid number")))
}

/// Resolves `host:port` (first address).
pub fn resolve(key: &str, v: &str) -> Result<SocketAddr, ConfigError> {
    v.to_socket_addrs()
        .map_err(|e| invalid(key, format!("{v:?} is not host:port ({e})")))?
        .next()
        .ok_or_else(|| invalid(key, format!("{v:?} resolves to no address")))
}

fn server_entry(key: &str, id: u64, v: &str) -> Result<ServerEntry, ConfigError> {
    let (peer, client) = match v.split_once(';') {
        Some((p, c)) => (p.trim(), Some(c.trim())),
        None => (v, None),
    };
    let (addr, role) = match peer.rsplit_once(':') {
        Some((a, "participant")) => (a, Role::Participant),
        Some((a, "observer")) => (a, Role::Observer),
        Some((_, r)) if r.parse::<u16>().is_err() => {
            return Err(invalid(
                key,
                format!("role {r:?} is neither participant nor observer"),
            ))
        }
        _ => (peer, Role::Participant),
    };
    Ok(ServerEntry {
        id,
        peer_addr: resolve(key, addr)?,
        role,
        client_addr: client.map(|c| resolve(key, c)).transpose()?,
    })
}

impl ServerConfig {
    /// Reads and parses a file.
    pub fn load(path: &std::path::Path) -> Result<ServerConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Io {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        ServerConfig::parse(&text)
    }

    /// Parses the text of a configuration file and checks it for consistency.
    pub fn parse(text: &str) -> Result<ServerConfig, ConfigError> {
        let mut kv: BTreeMap<String, String> = BTreeMap::new();
        let mut servers = BTreeMap::new();
        for (i, raw) in text.lines().enumerate() {
            let line_no = i + 1;
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let Some((k, v)) = line.split_once('=') else {
                return Err(ConfigError::Syntax {
                    line: line_no,
                    text: raw.to_string(),
                });
            };
            let (k, v) = (k.trim(), v.trim());
            if k.is_empty() || v.is_empty() {
                return Err(ConfigError::Syntax {
                    line: line_no,
                    text: raw.to_string(),
                });
            }
            if let Some(id) = k.strip_prefix("server.") {
                let id: u64 = num(k, id)?;
                if !(1..=254).contains(&id) {
                    return Err(invalid(k, "server ids are 1..=254"));
                }
                let entry = server_entry(k, id, v)?;
                if servers.insert(id, entry).is_some() {
                    return Err(ConfigError::Duplicate {
                        line: line_no,
                        key: k.to_string(),
                    });
                }
                continue;
            }
            if !KEYS.contains(&k) {
                return Err(ConfigError::UnknownKey {
                    line: line_no,
                    key: k.to_string(),
                });
            }
            if kv.insert(k.to_string(), v.to_string()).is_some() {
                return Err(ConfigError::Duplicate {
                    line: line_no,
                    key: k.to_string(),
                });
            }
        }
        let get = |k: &str| kv.get(k).map(String::as_str);
        let server_id: u64 = num(
            "server_id",
            get("server_id").ok_or(ConfigError::Missing("server_id"))?,
        )?;
        if servers.is_empty() {
            return Err(ConfigError::Missing("server.<id>"));
        }
        if !servers.contains_key(&server_id) {
            return Err(invalid(
                "server_id",
                format!("no server.{server_id} line lists this server"),
            ));
        }
        if !servers.values().any(|s| s.role == Role::Participant) {
            return Err(invalid("server.<id>", "at least one participant is needed"));
        }
        let mut peers: Vec<SocketAddr> = servers.values().map(|s| s.peer_addr).collect();
        peers.sort();
        if peers.windows(2).any(|w| w[0] == w[1]) {
            return Err(invalid("server.<id>", "two servers share a peer address"));
        }
        let data_dir = PathBuf::from(get("data_dir").ok_or(ConfigError::Missing("data_dir"))?);
        let client_ip: IpAddr = match get("client_address") {
            Some(v) => num("client_address", v)?,
            None => IpAddr::from([0, 0, 0, 0]),
        };
        let client_port: u16 = num(
            "client_port",
            get("client_port").ok_or(ConfigError::Missing("client_port"))?,
        )?;
        let admin_ip: IpAddr = match get("admin_address") {
            Some(v) => num("admin_address", v)?,
            None => IpAddr::from([127, 0, 0, 1]),
        };
        let admin_port: u16 = match get("admin_port") {
            Some(v) => num("admin_port", v)?,
            None => 0,
        };
        if admin_port != 0 && admin_port == client_port {
            return Err(invalid("admin_port", "must differ from client_port"));
        }
        let me = &servers[&server_id];
        if me.peer_addr.port() == client_port
            || (admin_port != 0 && me.peer_addr.port() == admin_port)
        {
            return Err(invalid(
                "client_port",
                "client, admin and peer ports of a server must differ",
            ));
        }
        let fsync = match get("fsync").unwrap_or("always") {
            "always" => Fsync::Always,
            "never" => Fsync::Never,
            other => {
                return Err(invalid(
                    "fsync",
                    format!("{other:?} is not always or never"),
                ))
            }
        };
        let diff_from_log = match get("diff_from_log").unwrap_or("true") {
            "true" => true,
            "false" => false,
            other => {
                return Err(invalid(
                    "diff_from_log",
                    format!("{other:?} is not true or false"),
                ))
            }
        };
        let opt =
            |k: &str, d: u64| -> Result<u64, ConfigError> { get(k).map_or(Ok(d), |v| num(k, v)) };
        let cfg = ServerConfig {
            server_id,
            servers,
            data_dir,
            client_addr: SocketAddr::new(client_ip, client_port),
            admin_addr: (admin_port != 0).then(|| SocketAddr::new(admin_ip, admin_port)),
            tick_ms: u32::try_from(opt("tick_ms", 50)?)
                .map_err(|_| invalid("tick_ms", "too large"))?,
            init_limit_ticks: opt("init_limit", 10)?,
            sync_limit_ticks: opt("sync_limit", 5)?,
            session_min_ms: u32::try_from(opt("session_min_ms", 0)?)
                .map_err(|_| invalid("session_min_ms", "too large"))?,
            session_max_ms: u32::try_from(opt("session_max_ms", 0)?)
                .map_err(|_| invalid("session_max_ms", "too large"))?,
            snapshot_every_txns: opt("snapshot_every_txns", 100_000)?,
            commit_log_txns: usize::try_from(opt(
                "commit_log_txns",
                ensemble::deps::zab_core::COMMIT_LOG_MAX_DEFAULT as u64,
            )?)
            .map_err(|_| invalid("commit_log_txns", "too large"))?,
            commit_log_bytes: usize::try_from(opt(
                "commit_log_bytes",
                ensemble::deps::zab_core::COMMIT_LOG_MAX_BYTES_DEFAULT as u64,
            )?)
            .map_err(|_| invalid("commit_log_bytes", "too large"))?,
            diff_from_log,
            fsync,
            secret: opt("secret", 0x5eed_e75e_b1e5)?,
            stop_file: get("stop_file").map(PathBuf::from),
        };
        // The node's own checks (ranges, limits, session bounds) name their setting.
        cfg.node_config().map_err(|e| match e {
            ensemble::ConfigError::Invalid { key, reason } => invalid(key, reason),
            other => invalid("config", other.to_string()),
        })?;
        Ok(cfg)
    }

    /// The node configuration this file describes.
    pub fn node_config(&self) -> Result<NodeConfig, ensemble::ConfigError> {
        let mut b = NodeConfig::builder(self.server_id)
            .tick_ms(self.tick_ms)
            .init_limit_ticks(self.init_limit_ticks)
            .sync_limit_ticks(self.sync_limit_ticks)
            .session_timeout_ms(self.session_min_ms, self.session_max_ms)
            .snapshot_every_txns(self.snapshot_every_txns)
            .commit_log(self.commit_log_txns, self.commit_log_bytes)
            .diff_from_log(self.diff_from_log)
            .data_dir(self.data_dir.clone())
            .fsync(self.fsync)
            .secret(self.secret);
        for s in self.servers.values() {
            b = match s.role {
                Role::Participant => b.voter(s.id),
                Role::Observer => b.observer(s.id),
            };
        }
        b.build()
    }

    /// The peer address map for the TCP transport.
    pub fn peer_addrs(&self) -> BTreeMap<transport::NodeId, SocketAddr> {
        self.servers
            .values()
            .map(|s| (transport::NodeId(s.id), s.peer_addr))
            .collect()
    }

    /// Client addresses of every server that lists one.
    pub fn client_addrs(&self) -> Vec<SocketAddr> {
        self.servers
            .values()
            .filter_map(|s| s.client_addr)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    const GOOD: &str = "\
# three servers
server_id = 2
server.1 = 127.0.0.1:2888;127.0.0.1:2181
server.2 = 127.0.0.1:2889
server.3 = 127.0.0.1:2890:observer
data_dir = /tmp/e2
client_port = 2182
admin_port = 8082
tick_ms = 20
fsync = never   # fast
";

    #[test]
    fn a_good_file_parses() {
        let c = ServerConfig::parse(GOOD).unwrap();
        assert_eq!(c.server_id, 2);
        assert_eq!(c.servers.len(), 3);
        assert_eq!(c.servers[&3].role, Role::Observer);
        assert_eq!(
            c.servers[&1].client_addr,
            Some("127.0.0.1:2181".parse().unwrap())
        );
        assert_eq!(c.client_addr, "0.0.0.0:2182".parse().unwrap());
        assert_eq!(c.admin_addr, Some("127.0.0.1:8082".parse().unwrap()));
        assert_eq!(c.tick_ms, 20);
        assert_eq!(c.fsync, Fsync::Never);
        assert_eq!(c.node_config().unwrap().id(), 2);
        assert_eq!(c.client_addrs().len(), 1);
        assert_eq!(c.commit_log_txns, 100_000);
        assert_eq!(c.commit_log_bytes, 4 << 20);
        let small = ServerConfig::parse(&format!(
            "{GOOD}commit_log_txns = 500\ncommit_log_bytes = 65536\n"
        ))
        .unwrap();
        assert_eq!(
            (small.commit_log_txns, small.commit_log_bytes),
            (500, 65536)
        );
        assert!(c.diff_from_log);
        let off = ServerConfig::parse(&format!("{GOOD}diff_from_log = false\n")).unwrap();
        assert!(!off.diff_from_log);
    }

    fn err(text: &str) -> String {
        ServerConfig::parse(text).unwrap_err().to_string()
    }

    proptest::proptest! {
        /// Arbitrary text never panics the parser.
        #[test]
        fn any_text_parses_or_errs(text in "(server_id|server\\.[0-9]|tick_ms|fsync|data_dir|client_port|[a-z=:;#. 0-9\n])*") {
            let _ = ServerConfig::parse(&text);
        }
    }

    #[test]
    fn errors_name_the_key() {
        assert!(err(&GOOD.replace("tick_ms = 20", "tick_ms = fast")).contains("`tick_ms`"));
        assert!(err(&GOOD.replace("tick_ms = 20", "tick_ms = 0")).contains("tick_ms"));
        assert!(err(&GOOD.replace("tick_ms", "tickms")).contains("unknown key `tickms`"));
        assert!(err(&GOOD.replace("data_dir = /tmp/e2\n", "")).contains("`data_dir`"));
        assert!(err(&GOOD.replace("server_id = 2", "server_id = 9")).contains("`server_id`"));
        assert!(err(&GOOD.replace("fsync = never", "fsync = sometimes")).contains("`fsync`"));
        assert!(err(&GOOD.replace(":observer", ":watcher")).contains("`server.3`"));
        assert!(err(&GOOD.replace("2890", "2889")).contains("share a peer address"));
        assert!(err(&format!("{GOOD}tick_ms = 30\n")).contains("given twice"));
        assert!(err(&format!("{GOOD}garbage\n")).contains("line 11"));
        assert!(err(&format!("{GOOD}commit_log_bytes = -1\n")).contains("`commit_log_bytes`"));
        assert!(err(&format!("{GOOD}diff_from_log = yes\n")).contains("`diff_from_log`"));
        assert!(err(&GOOD.replace("admin_port = 8082", "admin_port = 2182")).contains("admin_port"));
        assert!(
            err(&GOOD.replace("client_port = 2182", "client_port = 2889")).contains("client_port")
        );
        assert!(err(&format!(
            "{GOOD}session_min_ms = 900\nsession_max_ms = 100\n"
        ))
        .contains("session"));
        let only_observers = GOOD
            .replace("2888;127.0.0.1:2181", "2888:observer")
            .replace("2889\n", "2889:observer\n");
        assert!(err(&only_observers).contains("participant"));
    }
}

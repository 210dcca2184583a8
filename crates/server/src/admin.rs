//! The admin port: liveness, readiness and statistics, off the client port.
//!
//! ZooKeeper's four-letter words on the client port were a denial-of-service vector,
//! so this listener is separate and binds to 127.0.0.1 unless configured otherwise.
//! It answers one command per connection, either as a bare line (`ruok`, `mntr`,
//! `metrics`) or as an HTTP GET (`/ruok`, `/mntr`, `/metrics`); commands are read with
//! a short timeout and a small size bound, and one connection is served at a time.
//!
//! - `ruok`: `imok` when the node serves clients, else `not serving`.
//! - `mntr`: `key<TAB>value` lines in the spirit of ZooKeeper's `mntr`.
//! - `metrics`: the same figures as Prometheus text.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use ensemble::{NodeHandle, NodeStats};

/// Longest command accepted.
const COMMAND_MAX_BYTES: usize = 1024;
/// Time allowed to send the command.
const READ_TIMEOUT: Duration = Duration::from_secs(2);

/// A running admin listener.
pub struct AdminService {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for AdminService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminService")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl AdminService {
    /// Serves admin commands on `listener` about `node`.
    pub fn start(listener: TcpListener, node: NodeHandle) -> std::io::Result<AdminService> {
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("admin".into())
            .spawn(move || {
                for s in listener.incoming() {
                    if stop2.load(Ordering::Acquire) {
                        break;
                    }
                    if let Ok(s) = s {
                        let _ = answer(s, &node);
                    }
                }
            })?;
        Ok(AdminService {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for AdminService {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        let wake = crate::service::wake_addr(self.addr);
        let _ = TcpStream::connect_timeout(&wake, Duration::from_millis(200));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The commands the admin port answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// Liveness/readiness.
    Ruok,
    /// mntr-like statistics.
    Mntr,
    /// Prometheus text.
    Metrics,
}

impl Command {
    /// Parses a bare command word or an HTTP request line.
    pub fn parse(text: &str) -> Option<(Command, bool)> {
        let line = text.lines().next().unwrap_or("").trim();
        let (word, http) = match line.strip_prefix("GET ") {
            Some(rest) => (
                rest.split_whitespace()
                    .next()
                    .unwrap_or("")
                    .trim_start_matches('/'),
                true,
            ),
            None => (line, false),
        };
        let cmd = match word {
            "ruok" => Command::Ruok,
            "mntr" => Command::Mntr,
            "metrics" => Command::Metrics,
            _ => return None,
        };
        Some((cmd, http))
    }
}

fn answer(mut s: TcpStream, node: &NodeHandle) -> std::io::Result<()> {
    s.set_read_timeout(Some(READ_TIMEOUT))?;
    s.set_write_timeout(Some(READ_TIMEOUT))?;
    let mut buf = Vec::with_capacity(64);
    let mut chunk = [0u8; 256];
    while buf.len() < COMMAND_MAX_BYTES && !buf.contains(&b'\n') {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => break,
        }
    }
    let text = String::from_utf8_lossy(&buf);
    let stats = node.stats(Duration::from_secs(2));
    let (body, http) = match Command::parse(&text) {
        Some((cmd, http)) => (render(cmd, stats.as_ref()), http),
        None => (
            "unknown command; try ruok, mntr or metrics\n".to_string(),
            text.starts_with("GET "),
        ),
    };
    if http {
        write!(
            s,
            "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )?;
    }
    s.write_all(body.as_bytes())
}

/// The role name ZooKeeper's `mntr` uses.
fn state_name(stats: &NodeStats) -> &'static str {
    match format!("{:?}", stats.server.role).as_str() {
        "Leading" => "leader",
        "Following" => "follower",
        "Observing" => "observer",
        _ => "looking",
    }
}

/// Renders a command's answer (`stats` is `None` when the node does not answer).
pub fn render(cmd: Command, stats: Option<&NodeStats>) -> String {
    let serving = stats.is_some_and(|s| s.server.serving);
    match cmd {
        Command::Ruok => if serving { "imok\n" } else { "not serving\n" }.to_string(),
        Command::Mntr => match stats {
            None => "zk_server_state\tdown\n".to_string(),
            Some(s) => figures(s)
                .into_iter()
                .map(|(k, v, _)| format!("zk_{k}\t{v}\n"))
                .collect(),
        },
        Command::Metrics => {
            let mut out = format!(
                "# HELP ensemble_up Whether the node serves clients.\n# TYPE ensemble_up gauge\nensemble_up {}\n",
                u8::from(serving)
            );
            if let Some(s) = stats {
                for (k, v, help) in figures(s) {
                    if let Ok(n) = v.parse::<i64>() {
                        out.push_str(&format!(
                            "# HELP ensemble_{k} {help}\n# TYPE ensemble_{k} gauge\nensemble_{k} {n}\n"
                        ));
                    }
                }
                let st = state_name(s);
                out.push_str(&format!(
                    "# HELP ensemble_server_state The node's role.\n# TYPE ensemble_server_state gauge\nensemble_server_state{{state=\"{st}\"}} 1\n"
                ));
            }
            out
        }
    }
}

/// (name, value, help) of every figure.
fn figures(s: &NodeStats) -> Vec<(&'static str, String, &'static str)> {
    let v = &s.server;
    let mut f = vec![
        ("version", env!("CARGO_PKG_VERSION").to_string(), "Version."),
        ("server_id", v.id.to_string(), "This server's id."),
        ("server_state", state_name(s).to_string(), "Role."),
        (
            "serving",
            u8::from(v.serving).to_string(),
            "Serves clients.",
        ),
        (
            "last_zxid",
            v.applied_zxid.to_u64().to_string(),
            "Last applied zxid.",
        ),
        (
            "committed_zxid",
            v.committed_zxid.to_u64().to_string(),
            "ZAB commit point.",
        ),
        (
            "znode_count",
            v.znode_count.to_string(),
            "Znodes in the tree.",
        ),
        (
            "watch_count",
            v.watch_count.to_string(),
            "Registered watches.",
        ),
        (
            "ephemerals_count",
            v.ephemeral_count.to_string(),
            "Ephemeral znodes.",
        ),
        ("session_count", v.session_count.to_string(), "Sessions."),
        (
            "num_alive_connections",
            v.connection_count.to_string(),
            "Connections on this server.",
        ),
        (
            "outstanding_requests",
            v.outstanding_requests.to_string(),
            "Requests not answered yet.",
        ),
        (
            "applied_txns",
            v.applied_txns.to_string(),
            "Txns applied since start.",
        ),
        (
            "snapshots_installed",
            v.snapshots_installed.to_string(),
            "SNAP syncs installed.",
        ),
        (
            "min_latency_us",
            s.latency_min_us.to_string(),
            "Fastest request, µs.",
        ),
        (
            "avg_latency_us",
            s.latency_avg_us.to_string(),
            "Mean request, µs.",
        ),
        (
            "max_latency_us",
            s.latency_max_us.to_string(),
            "Slowest request, µs.",
        ),
        (
            "packets_received",
            s.requests.to_string(),
            "Requests answered.",
        ),
        (
            "snapshots",
            s.snapshots.to_string(),
            "Snapshots written since start.",
        ),
        (
            "snapshot_stall_max_us",
            s.snapshot_stall_max_us.to_string(),
            "Longest snapshot copy stall, µs.",
        ),
        ("digest", v.digest.to_string(), "Tree digest."),
    ];
    if state_name(s) == "leader" {
        f.push((
            "synced_followers",
            v.synced_learners.to_string(),
            "Learners synced with the leader.",
        ));
        f.push((
            "pending_proposals",
            v.uncommitted_proposals.to_string(),
            "Proposals not committed yet.",
        ));
    }
    if let Some(d) = &v.diverged {
        f.push((
            "diverged",
            d.replace(['\n', '\t'], " "),
            "Why the replica stopped.",
        ));
    }
    f
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn commands_parse_bare_and_http() {
        assert_eq!(Command::parse("ruok\n"), Some((Command::Ruok, false)));
        assert_eq!(Command::parse("mntr"), Some((Command::Mntr, false)));
        assert_eq!(
            Command::parse("GET /metrics HTTP/1.1\r\nHost: x\r\n"),
            Some((Command::Metrics, true))
        );
        assert_eq!(Command::parse("wchp\n"), None);
    }

    #[test]
    fn a_down_node_is_not_ok() {
        assert_eq!(render(Command::Ruok, None), "not serving\n");
        assert!(render(Command::Mntr, None).contains("down"));
        assert!(render(Command::Metrics, None).contains("ensemble_up 0"));
    }
}

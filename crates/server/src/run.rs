//! A whole server: the node over the TCP transport, its client port and admin port.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use ensemble::{Node, NodeHandle};
use transport::tcp::{TcpConfig, TcpTransport};
use transport::{NodeId, Transport};

use crate::admin::AdminService;
use crate::config::ServerConfig;
use crate::service::{ClientService, ServiceOptions};

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The configuration is refused.
    #[error("configuration: {0}")]
    Config(String),
    /// A port could not be bound.
    #[error("cannot listen on {addr} ({what}): {source}")]
    Listen {
        /// Which port.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The peer transport could not start.
    #[error("peer transport: {0}")]
    Transport(String),
    /// The node could not start (storage recovery, threads).
    #[error("node: {0}")]
    Node(String),
}

/// A running server. Dropping it stops it.
pub struct RunningServer {
    client: Option<ClientService>,
    admin: Option<AdminService>,
    node: Option<Node>,
    transport: Arc<TcpTransport>,
}

impl std::fmt::Debug for RunningServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningServer")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

fn bind(what: &'static str, addr: SocketAddr) -> Result<TcpListener, RunError> {
    TcpListener::bind(addr).map_err(|source| RunError::Listen { what, addr, source })
}

impl RunningServer {
    /// Recovers the node from its data directory and starts serving.
    pub fn start(cfg: &ServerConfig) -> Result<RunningServer, RunError> {
        let node_cfg = cfg
            .node_config()
            .map_err(|e| RunError::Config(e.to_string()))?;
        // Bind the public ports first, so a taken port fails before the node joins.
        let client_listener = bind("client_port", cfg.client_addr)?;
        let admin_listener = cfg.admin_addr.map(|a| bind("admin_port", a)).transpose()?;
        let tcp = TcpConfig::new(NodeId(cfg.server_id), cfg.peer_addrs());
        let transport =
            Arc::new(TcpTransport::start(tcp).map_err(|e| RunError::Transport(e.to_string()))?);
        let node = Node::start(node_cfg, Arc::clone(&transport) as Arc<dyn Transport>)
            .map_err(|e| RunError::Node(e.to_string()))?;
        let handle = node.handle();
        let client =
            ClientService::start(client_listener, handle.clone(), ServiceOptions::default())
                .map_err(|source| RunError::Listen {
                    what: "client_port",
                    addr: cfg.client_addr,
                    source,
                })?;
        let admin =
            match (admin_listener, cfg.admin_addr) {
                (Some(l), Some(addr)) => Some(AdminService::start(l, handle).map_err(
                    |source| RunError::Listen {
                        what: "admin_port",
                        addr,
                        source,
                    },
                )?),
                _ => None,
            };
        tracing::info!(
            id = cfg.server_id,
            client = %client.local_addr(),
            peers = %transport.local_addr(),
            "server started"
        );
        Ok(RunningServer {
            client: Some(client),
            admin,
            node: Some(node),
            transport,
        })
    }

    /// A handle on the node (statistics, embedded clients).
    pub fn node(&self) -> Option<NodeHandle> {
        self.node.as_ref().map(Node::handle)
    }

    /// The client port's address.
    pub fn client_addr(&self) -> Option<SocketAddr> {
        self.client.as_ref().map(ClientService::local_addr)
    }

    /// The admin port's address.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(AdminService::local_addr)
    }

    /// Stops cleanly: no new clients, connections closed (sessions can re-attach
    /// elsewhere), node stopped (everything acknowledged is already durable on a
    /// quorum), transport shut down.
    pub fn stop(mut self) {
        self.stop_inner();
    }

    fn stop_inner(&mut self) {
        if let Some(c) = self.client.take() {
            c.stop();
        }
        self.admin.take();
        if let Some(n) = self.node.take() {
            let _ = n.stop();
        }
        self.transport.shutdown();
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.stop_inner();
    }
}

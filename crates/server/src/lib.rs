//! `ensemble-server`: Ensemble across machines.
//!
//! - [`config`]: the `zoo.cfg`-like configuration file of `ensemble-server`.
//! - [`wire`]: the client protocol (length-prefixed, versioned, CRC32C, bounded).
//! - [`service`]: the client port of a server: each TCP connection drives a session
//!   on the local [`ensemble::Node`] with the embedded API's semantics.
//! - [`remote`]: [`RemoteClient`], a session over TCP that re-attaches to another
//!   server when its server dies.
//! - [`admin`]: the admin port (`ruok`, `mntr`, Prometheus text), separate from the
//!   client port and bound to localhost by default.
//! - [`cli`]: the commands of `ensemble-cli`.
//! - [`logger`]: a tiny stderr `tracing` subscriber.
//! - [`run`]: starting a whole server (node + TCP transport + ports) from a config.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod admin;
pub mod cli;
pub mod config;
pub mod logger;
pub mod remote;
pub mod run;
pub mod service;
pub mod wire;

pub use config::{ConfigError, Role, ServerConfig, ServerEntry};
pub use remote::{RemoteClient, RemoteOptions};
pub use run::{RunError, RunningServer};
pub use wire::{ClientMsg, ServerMsg, WireError};

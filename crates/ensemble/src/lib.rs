//! `ensemble`: the embeddable Node, its client API and the in-process cluster harness.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod codec;
pub mod error;
pub mod ops;
pub mod server;

pub use error::Error;
pub use ops::{
    AddWatchMode, ConnId, Event, ReadOp, ReadResult, Request, Response, SessionEvent, SessionId,
    Xid,
};
pub use server::{Server, ServerAction, ServerConfig, ServerStats, StorageDone, StorageOp};

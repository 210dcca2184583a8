//! The `Stat` structure clients see, with ZooKeeper's field semantics.

/// A znode's metadata as ZooKeeper reports it.
///
/// See `shared/ZK-SEMANTICS.md`: `mzxid`/`mtime` move only on setData; `cversion` is
/// reported as child creates plus child deletes; `ephemeral_owner` is 0 for everything
/// but ephemerals (containers and TTL nodes report 0 too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Stat {
    /// Zxid of the create.
    pub czxid: i64,
    /// Zxid of the create, then of the last setData.
    pub mzxid: i64,
    /// Time (ms) of the create.
    pub ctime: i64,
    /// Time (ms) of the create, then of the last setData.
    pub mtime: i64,
    /// Number of setData calls.
    pub version: i32,
    /// Child creates plus child deletes.
    pub cversion: i32,
    /// Number of setACL calls.
    pub aversion: i32,
    /// Owning session for ephemerals, else 0.
    pub ephemeral_owner: i64,
    /// Length of the data in bytes.
    pub data_length: i32,
    /// Number of children.
    pub num_children: i32,
    /// Zxid of the create, then of the latest child create or delete.
    pub pzxid: i64,
}

//! The seven ZooKeeper create modes.

use crate::error::Error;

/// The largest TTL ZooKeeper accepts, in milliseconds (2^40 - 1).
pub const TTL_MAX_MS: i64 = (1 << 40) - 1;

/// How a node is created, with ZooKeeper's numeric flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CreateMode {
    /// 0: a plain node that lives until deleted.
    Persistent,
    /// 1: deleted when its creator's session ends; cannot have children.
    Ephemeral,
    /// 2: persistent, with a `%010d` counter appended to the name.
    PersistentSequential,
    /// 3: ephemeral, with a counter appended to the name.
    EphemeralSequential,
    /// 4: deleted by the leader once it has had a child and is empty again.
    Container,
    /// 5: persistent, deleted once childless and unmodified for its TTL.
    PersistentWithTtl,
    /// 6: persistent sequential with a TTL.
    PersistentSequentialWithTtl,
}

impl CreateMode {
    /// ZooKeeper's numeric flag for this mode.
    pub fn flag(self) -> i32 {
        match self {
            CreateMode::Persistent => 0,
            CreateMode::Ephemeral => 1,
            CreateMode::PersistentSequential => 2,
            CreateMode::EphemeralSequential => 3,
            CreateMode::Container => 4,
            CreateMode::PersistentWithTtl => 5,
            CreateMode::PersistentSequentialWithTtl => 6,
        }
    }

    /// The mode for a ZooKeeper numeric flag.
    pub fn from_flag(flag: i32) -> Result<CreateMode, Error> {
        Ok(match flag {
            0 => CreateMode::Persistent,
            1 => CreateMode::Ephemeral,
            2 => CreateMode::PersistentSequential,
            3 => CreateMode::EphemeralSequential,
            4 => CreateMode::Container,
            5 => CreateMode::PersistentWithTtl,
            6 => CreateMode::PersistentSequentialWithTtl,
            _ => return Err(Error::BadArguments(format!("unknown create mode {flag}"))),
        })
    }

    /// Whether a counter is appended to the name.
    pub fn is_sequential(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentSequential
                | CreateMode::EphemeralSequential
                | CreateMode::PersistentSequentialWithTtl
        )
    }

    /// Whether the node belongs to a session.
    pub fn is_ephemeral(self) -> bool {
        matches!(
            self,
            CreateMode::Ephemeral | CreateMode::EphemeralSequential
        )
    }

    /// Whether the node carries a TTL.
    pub fn is_ttl(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentWithTtl | CreateMode::PersistentSequentialWithTtl
        )
    }

    /// Whether the node is a container.
    pub fn is_container(self) -> bool {
        self == CreateMode::Container
    }
}

/// What kind of node is stored (the part of the create mode that outlives the create).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeKind {
    /// Persistent or persistent sequential.
    Persistent,
    /// Ephemeral, owned by a session.
    Ephemeral,
    /// Container.
    Container,
    /// Persistent with a TTL.
    Ttl,
}

impl NodeKind {
    /// Numeric tag used in snapshots.
    pub(crate) fn tag(self) -> u8 {
        match self {
            NodeKind::Persistent => 0,
            NodeKind::Ephemeral => 1,
            NodeKind::Container => 2,
            NodeKind::Ttl => 3,
        }
    }

    /// Inverse of [`NodeKind::tag`].
    pub(crate) fn from_tag(tag: u8) -> Option<NodeKind> {
        Some(match tag {
            0 => NodeKind::Persistent,
            1 => NodeKind::Ephemeral,
            2 => NodeKind::Container,
            3 => NodeKind::Ttl,
            _ => return None,
        })
    }
}

impl From<CreateMode> for NodeKind {
    fn from(mode: CreateMode) -> NodeKind {
        if mode.is_ephemeral() {
            NodeKind::Ephemeral
        } else if mode.is_container() {
            NodeKind::Container
        } else if mode.is_ttl() {
            NodeKind::Ttl
        } else {
            NodeKind::Persistent
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn flags_round_trip() {
        for flag in 0..7 {
            assert_eq!(CreateMode::from_flag(flag).unwrap().flag(), flag);
        }
        assert!(CreateMode::from_flag(7).is_err());
        assert!(CreateMode::from_flag(-1).is_err());
    }

    #[test]
    fn predicates() {
        use CreateMode::*;
        let seq: Vec<_> = [
            Persistent,
            Ephemeral,
            PersistentSequential,
            EphemeralSequential,
            Container,
            PersistentWithTtl,
            PersistentSequentialWithTtl,
        ]
        .into_iter()
        .map(|m| {
            (
                m.is_sequential(),
                m.is_ephemeral(),
                m.is_ttl(),
                m.is_container(),
            )
        })
        .collect();
        assert_eq!(
            seq,
            vec![
                (false, false, false, false),
                (false, true, false, false),
                (true, false, false, false),
                (true, true, false, false),
                (false, false, false, true),
                (false, false, true, false),
                (true, false, true, false),
            ]
        );
    }
}

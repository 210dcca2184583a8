//! Session ids and their generator.
//!
//! The layout follows ZooKeeper's `SessionTrackerImpl.initializeNextSessionId`:
//!
//! ```text
//!  63      56 55                                   16 15            0
//! +----------+---------------------------------------+---------------+
//! | serverId |  low 40 bits of the start time in ms  |    counter    |
//! +----------+---------------------------------------+---------------+
//! ```
//!
//! Each server hands out ids from its own range (its id is in the high byte), and the
//! time bits make a restarted server start far away from the ids it used before.
//!
//! Pitfalls ZooKeeper hit, and how this module avoids them:
//! - ZOOKEEPER-1622: the time bits were shifted into place with an *arithmetic* right
//!   shift (`>> 8`) on a signed 64-bit value. When bit 39 of the timestamp was set the
//!   sign bit was smeared across the high byte, which then read `0xff` on every server,
//!   so two servers could hand out the same id. Here all bit work is done on `u64`,
//!   and the server byte is OR-ed in last, so it is exactly the server id.
//! - Server ids at or above 128 make ids negative. [`SessionId`] is a signed newtype
//!   (as on ZooKeeper's wire) and nothing here assumes ids are positive.
//! - `i64::MIN` is ZooKeeper's `ephemeralOwner` sentinel for container nodes, and `0`
//!   means "no session" (in a connect request and in `ephemeralOwner`); the generator
//!   skips both.
//! - A high byte of `0xff` marks TTL nodes in `ephemeralOwner` (extended types), so
//!   server id 255 is refused.
//! - ZooKeeper lets the counter carry into the time bits (and, in theory, into the
//!   server byte). Here the counter wraps inside the low 56 bits, so the high byte
//!   never changes.

use std::fmt;

use thiserror::Error;

/// A session id, as ZooKeeper puts it on the wire (signed 64-bit).
///
/// `SessionId(0)` is never a real session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SessionId(pub i64);

impl SessionId {
    /// The server id stored in the high byte of an id made by [`SessionIdGenerator`].
    pub fn server_byte(self) -> u8 {
        // Reinterpret as unsigned so the shift is logical (see ZOOKEEPER-1622 above).
        ((self.0 as u64) >> 56) as u8
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:016x}", self.0)
    }
}

/// The largest server id that may generate session ids (0xff is reserved, see above).
pub const MAX_SERVER_ID: u64 = 0xfe;

/// The sentinel ZooKeeper stores as the `ephemeralOwner` of container nodes.
pub const CONTAINER_OWNER_SENTINEL: SessionId = SessionId(i64::MIN);

const LOW_56_MASK: u64 = (1 << 56) - 1;
const TIME_BITS_MASK: u64 = (1 << 40) - 1;

/// Why a [`SessionIdGenerator`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum IdError {
    /// The server id does not fit in the high byte (or is the reserved 0xff).
    #[error("server id {server_id} is too large to generate session ids (max {max})")]
    ServerIdTooLarge {
        /// The server id given.
        server_id: u64,
        /// The largest allowed.
        max: u64,
    },
}

/// Hands out this server's session ids: unique across the ensemble (server byte) and
/// across restarts (time bits from a caller-supplied start time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionIdGenerator {
    server_byte: u64,
    /// The low 56 bits of the next id.
    next_low: u64,
}

impl SessionIdGenerator {
    /// A generator for `server_id`, seeded from `start_time_ms` (the wall-clock time
    /// when this server started, in milliseconds; only its low 40 bits are used, which
    /// repeat every ~34 years).
    ///
    /// The caller should pass a wall-clock time: ids stay unique across restarts only if
    /// a restarted server starts from a later time than every id it handed out before
    /// (fewer than 65,536 sessions per millisecond of uptime keeps that true).
    pub fn new(server_id: u64, start_time_ms: u64) -> Result<Self, IdError> {
        if server_id > MAX_SERVER_ID {
            return Err(IdError::ServerIdTooLarge {
                server_id,
                max: MAX_SERVER_ID,
            });
        }
        Ok(Self {
            server_byte: server_id << 56,
            next_low: (start_time_ms & TIME_BITS_MASK) << 16,
        })
    }

    /// The server id this generator was built for.
    pub fn server_id(&self) -> u64 {
        self.server_byte >> 56
    }

    /// The next id: never 0 and never the container sentinel. The caller must still
    /// skip ids that are live (see [`crate::SessionTracker`], which does).
    pub fn next_id(&mut self) -> SessionId {
        loop {
            let raw = self.server_byte | self.next_low;
            self.next_low = (self.next_low + 1) & LOW_56_MASK;
            let id = SessionId(raw as i64);
            if id != SessionId(0) && id != CONTAINER_OWNER_SENTINEL {
                return id;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn layout_is_server_byte_time_counter() {
        let mut g = SessionIdGenerator::new(3, 0x12_3456_789a).unwrap();
        let a = g.next_id();
        let b = g.next_id();
        assert_eq!(a.0 as u64, 0x0312_3456_789a_0000);
        assert_eq!(b.0 as u64, 0x0312_3456_789a_0001);
        assert_eq!(a.server_byte(), 3);
    }

    #[test]
    fn time_bit_39_does_not_leak_into_server_byte() {
        // ZOOKEEPER-1622: with bit 39 of the time set, an arithmetic shift made the
        // high byte 0xff on every server.
        let t = 1u64 << 39;
        let a = SessionIdGenerator::new(1, t).unwrap().next_id();
        let b = SessionIdGenerator::new(2, t).unwrap().next_id();
        assert_eq!(a.server_byte(), 1);
        assert_eq!(b.server_byte(), 2);
        assert_ne!(a, b);
    }

    #[test]
    fn only_low_40_time_bits_are_used() {
        let a = SessionIdGenerator::new(1, (1 << 40) | 5).unwrap().next_id();
        let b = SessionIdGenerator::new(1, 5).unwrap().next_id();
        assert_eq!(a, b);
    }

    #[test]
    fn high_server_ids_give_negative_ids_and_255_is_refused() {
        let id = SessionIdGenerator::new(200, 7).unwrap().next_id();
        assert!(id.0 < 0);
        assert_eq!(id.server_byte(), 200);
        assert_eq!(
            SessionIdGenerator::new(255, 0),
            Err(IdError::ServerIdTooLarge {
                server_id: 255,
                max: MAX_SERVER_ID
            })
        );
        assert!(SessionIdGenerator::new(254, 0).is_ok());
    }

    #[test]
    fn zero_and_container_sentinel_are_skipped() {
        let mut g = SessionIdGenerator::new(0, 0).unwrap();
        assert_eq!(g.next_id(), SessionId(1));
        let mut g = SessionIdGenerator::new(0x80, 0).unwrap();
        assert_eq!(g.next_id().0 as u64, 0x8000_0000_0000_0001);
    }

    #[test]
    fn counter_wraps_inside_low_56_bits() {
        let mut g = SessionIdGenerator::new(9, TIME_BITS_MASK).unwrap();
        g.next_low = LOW_56_MASK;
        let last = g.next_id();
        let wrapped = g.next_id();
        assert_eq!(last.server_byte(), 9);
        assert_eq!(wrapped.server_byte(), 9);
        assert_eq!(wrapped.0 as u64, 9 << 56);
    }

    #[test]
    fn servers_never_collide() {
        let mut a = SessionIdGenerator::new(1, 1000).unwrap();
        let mut b = SessionIdGenerator::new(2, 1000).unwrap();
        let ids_a: std::collections::BTreeSet<_> = (0..1000).map(|_| a.next_id()).collect();
        assert_eq!(ids_a.len(), 1000);
        assert!((0..1000).all(|_| !ids_a.contains(&b.next_id())));
    }
}

//! Leaf identifiers: [`Zxid`] and [`ServerId`].

use std::fmt;

/// A ZooKeeper transaction id: the epoch of the leader that proposed the txn and a
/// counter within that epoch.
///
/// Ordering is lexicographic on `(epoch, counter)`, which is the same as the numeric
/// order of [`Zxid::to_u64`] (`epoch << 32 | counter`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Zxid {
    /// Epoch of the leader that assigned this zxid.
    pub epoch: u32,
    /// Position of the txn within its epoch; the first proposal of an epoch is 1.
    pub counter: u32,
}

impl Zxid {
    /// The zxid before every txn: an empty history.
    pub const ZERO: Zxid = Zxid {
        epoch: 0,
        counter: 0,
    };

    /// Builds a zxid from its parts.
    pub const fn new(epoch: u32, counter: u32) -> Self {
        Zxid { epoch, counter }
    }

    /// Packs the zxid as ZooKeeper does: `epoch << 32 | counter`.
    pub const fn to_u64(self) -> u64 {
        ((self.epoch as u64) << 32) | self.counter as u64
    }

    /// Unpacks a zxid packed by [`Zxid::to_u64`].
    pub const fn from_u64(raw: u64) -> Self {
        Zxid {
            epoch: (raw >> 32) as u32,
            counter: raw as u32,
        }
    }
}

impl fmt::Debug for Zxid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.epoch, self.counter)
    }
}

impl fmt::Display for Zxid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:x}", self.to_u64())
    }
}

/// The id of a server in the ensemble (ZooKeeper's `myid`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct ServerId(pub u64);

impl fmt::Display for ServerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn packing_table() {
        let cases = [
            (Zxid::ZERO, 0u64),
            (Zxid::new(0, 1), 1),
            (Zxid::new(1, 0), 1 << 32),
            (Zxid::new(1, 5), (1 << 32) | 5),
            (Zxid::new(u32::MAX, u32::MAX), u64::MAX),
        ];
        for (z, raw) in cases {
            assert_eq!(z.to_u64(), raw);
            assert_eq!(Zxid::from_u64(raw), z);
        }
        assert_eq!(format!("{}", Zxid::new(1, 5)), "0x100000005");
        assert_eq!(format!("{:?}", Zxid::new(1, 5)), "1:5");
    }

    #[test]
    fn epoch_dominates_counter() {
        assert!(Zxid::new(2, 0) > Zxid::new(1, u32::MAX));
        assert!(Zxid::new(1, 2) > Zxid::new(1, 1));
    }

    proptest! {
        #[test]
        fn order_matches_packed_order(a in any::<u64>(), b in any::<u64>()) {
            let (za, zb) = (Zxid::from_u64(a), Zxid::from_u64(b));
            prop_assert_eq!(za.cmp(&zb), a.cmp(&b));
            prop_assert_eq!(Zxid::from_u64(za.to_u64()), za);
        }
    }
}

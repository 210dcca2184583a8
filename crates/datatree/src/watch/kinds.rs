//! A small bit set of [`WatcherKind`]s: what one session watches on one path.

use crate::event::{WatcherKind, WatcherType};

/// A set of [`WatcherKind`]s, one bit each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Kinds(u8);

/// Every kind, in bit order (which is also `WatcherKind`'s `Ord` order).
const ALL_KINDS: [WatcherKind; 5] = [
    WatcherKind::Data,
    WatcherKind::Exists,
    WatcherKind::Child,
    WatcherKind::Persistent,
    WatcherKind::PersistentRecursive,
];

impl Kinds {
    pub(super) const NONE: Kinds = Kinds(0);
    pub(super) const DATA: Kinds = Kinds(1);
    pub(super) const EXISTS: Kinds = Kinds(1 << 1);
    pub(super) const CHILD: Kinds = Kinds(1 << 2);
    pub(super) const PERSISTENT: Kinds = Kinds(1 << 3);
    pub(super) const RECURSIVE: Kinds = Kinds(1 << 4);
    pub(super) const ALL: Kinds = Kinds(0b1_1111);

    /// One-shot watches ZooKeeper keeps in its data table (getData and exists share
    /// one entry there, so they always fire and go together).
    pub(super) const ONE_SHOT_DATA: Kinds = Kinds(Self::DATA.0 | Self::EXISTS.0);
    /// Every one-shot kind.
    pub(super) const ONE_SHOT: Kinds = Kinds(Self::ONE_SHOT_DATA.0 | Self::CHILD.0);
    /// Kinds that live in ZooKeeper's data table.
    pub(super) const DATA_TABLE: Kinds =
        Kinds(Self::ONE_SHOT_DATA.0 | Self::PERSISTENT.0 | Self::RECURSIVE.0);
    /// Kinds that live in ZooKeeper's child table.
    pub(super) const CHILD_TABLE: Kinds = Kinds(Self::CHILD.0 | Self::PERSISTENT.0);

    /// The set with the given bits (test helper; bits beyond the five kinds dropped).
    #[cfg(test)]
    pub(super) fn from_bits(bits: u8) -> Kinds {
        Kinds(bits & Self::ALL.0)
    }

    /// The set holding just `kind`.
    pub(super) fn of(kind: WatcherKind) -> Kinds {
        match kind {
            WatcherKind::Data => Self::DATA,
            WatcherKind::Exists => Self::EXISTS,
            WatcherKind::Child => Self::CHILD,
            WatcherKind::Persistent => Self::PERSISTENT,
            WatcherKind::PersistentRecursive => Self::RECURSIVE,
        }
    }

    /// The kinds a removeWatches (or checkWatches) of type `which` selects, as
    /// ZooKeeper 3.9's `DataTree.removeWatch` maps `WatcherType` to watch modes.
    pub(super) fn selected_by(which: WatcherType) -> Kinds {
        match which {
            WatcherType::Children => Self::CHILD,
            WatcherType::Data => Self::ONE_SHOT_DATA,
            WatcherType::Persistent => Self::PERSISTENT,
            WatcherType::PersistentRecursive => Self::RECURSIVE,
            WatcherType::Any => Self::ALL,
        }
    }

    pub(super) fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether every kind of `other` is in `self`.
    pub(super) fn contains(self, other: Kinds) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether `self` and `other` share a kind.
    pub(super) fn intersects(self, other: Kinds) -> bool {
        self.0 & other.0 != 0
    }

    pub(super) fn with(self, other: Kinds) -> Kinds {
        Kinds(self.0 | other.0)
    }

    pub(super) fn without(self, other: Kinds) -> Kinds {
        Kinds(self.0 & !other.0)
    }

    /// The number of kinds in the set.
    pub(super) fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// ZooKeeper's `zk_watch_count` for one (session, path): 1 for an entry in the data
    /// table plus 1 for an entry in the child table.
    pub(super) fn zk_count(self) -> usize {
        usize::from(self.intersects(Self::DATA_TABLE))
            + usize::from(self.intersects(Self::CHILD_TABLE))
    }

    /// The kinds in the set, in `WatcherKind` order.
    pub(super) fn iter(self) -> impl Iterator<Item = WatcherKind> {
        ALL_KINDS
            .into_iter()
            .filter(move |&kind| self.contains(Kinds::of(kind)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_has_its_own_bit_and_iterates_in_order() {
        let mut all = Kinds::NONE;
        for kind in ALL_KINDS {
            let bit = Kinds::of(kind);
            assert_eq!(bit.len(), 1);
            assert!(!all.intersects(bit), "{kind:?} shares a bit");
            all = all.with(bit);
        }
        assert_eq!(all, Kinds::ALL);
        assert_eq!(all.iter().collect::<Vec<_>>(), ALL_KINDS.to_vec());
        let mut sorted = ALL_KINDS;
        sorted.sort();
        assert_eq!(sorted, ALL_KINDS, "bit order must match WatcherKind's Ord");
    }

    #[test]
    fn zk_count_counts_tables_not_kinds() {
        let cases = [
            (Kinds::NONE, 0),
            (Kinds::DATA, 1),
            (Kinds::ONE_SHOT_DATA, 1),
            (Kinds::CHILD, 1),
            (Kinds::DATA.with(Kinds::CHILD), 2),
            (Kinds::PERSISTENT, 2),
            (Kinds::RECURSIVE, 1),
            (Kinds::ALL, 2),
        ];
        for (kinds, want) in cases {
            assert_eq!(kinds.zk_count(), want, "{kinds:?}");
        }
    }

    #[test]
    fn removal_selection_matches_zookeeper_3_9() {
        assert_eq!(Kinds::selected_by(WatcherType::Children), Kinds::CHILD);
        assert_eq!(Kinds::selected_by(WatcherType::Data), Kinds::ONE_SHOT_DATA);
        assert_eq!(
            Kinds::selected_by(WatcherType::Persistent),
            Kinds::PERSISTENT
        );
        assert_eq!(
            Kinds::selected_by(WatcherType::PersistentRecursive),
            Kinds::RECURSIVE
        );
        assert_eq!(Kinds::selected_by(WatcherType::Any), Kinds::ALL);
    }
}

//! Quorum maths: the [`QuorumVerifier`] trait with ZooKeeper's majority and
//! hierarchical (groups and weights) implementations. Pure functions, no protocol types.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::zxid::ServerId;

/// Decides whether a set of servers forms a quorum.
///
/// Implementations must be deterministic and must satisfy the intersection property:
/// any two quorums share at least one voter.
pub trait QuorumVerifier: fmt::Debug + Send + Sync {
    /// Whether `id` votes (has non-zero weight). Non-voters are never counted.
    fn is_voter(&self, id: ServerId) -> bool;
    /// All voters, in ascending id order.
    fn voters(&self) -> Vec<ServerId>;
    /// Whether the voters in `ids` form a quorum; non-voters in `ids` are ignored.
    fn contains_quorum(&self, ids: &BTreeSet<ServerId>) -> bool;
    /// The same question for a slice of distinct ids (the leader asks it on every
    /// ACK, so implementations should answer without allocating). The default
    /// collects into a set.
    fn contains_quorum_slice(&self, ids: &[ServerId]) -> bool {
        self.contains_quorum(&ids.iter().copied().collect())
    }
}

/// Errors building a quorum verifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QuorumError {
    /// No voter at all.
    #[error("a quorum needs at least one voter")]
    NoVoters,
    /// A server appears in two groups.
    #[error("server {0} is in more than one group")]
    DuplicateMember(ServerId),
    /// A group has no member with a non-zero weight.
    #[error("group {0} has no weight")]
    EmptyGroup(usize),
}

/// Simple majority of the voters: more than half of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Majority {
    voters: BTreeSet<ServerId>,
}

impl Majority {
    /// A majority verifier over `voters`.
    pub fn new(voters: impl IntoIterator<Item = ServerId>) -> Result<Self, QuorumError> {
        let voters: BTreeSet<ServerId> = voters.into_iter().collect();
        if voters.is_empty() {
            return Err(QuorumError::NoVoters);
        }
        Ok(Majority { voters })
    }
}

impl QuorumVerifier for Majority {
    fn is_voter(&self, id: ServerId) -> bool {
        self.voters.contains(&id)
    }

    fn voters(&self) -> Vec<ServerId> {
        self.voters.iter().copied().collect()
    }

    fn contains_quorum(&self, ids: &BTreeSet<ServerId>) -> bool {
        let present = ids.iter().filter(|id| self.voters.contains(id)).count();
        present * 2 > self.voters.len()
    }

    fn contains_quorum_slice(&self, ids: &[ServerId]) -> bool {
        let present = ids.iter().filter(|id| self.voters.contains(id)).count();
        present * 2 > self.voters.len()
    }
}

/// ZooKeeper's hierarchical quorums: servers are split into groups, each server has a
/// weight (0 = does not vote). A set is a quorum when, in more than half of the groups
/// (counting only groups with non-zero weight), its members hold more than half of the
/// group's weight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchical {
    groups: Vec<BTreeMap<ServerId, u64>>,
    group_of: BTreeMap<ServerId, usize>,
}

impl Hierarchical {
    /// Builds the verifier from groups of `(server, weight)` pairs.
    pub fn new(groups: Vec<Vec<(ServerId, u64)>>) -> Result<Self, QuorumError> {
        let mut out = Vec::with_capacity(groups.len());
        let mut group_of = BTreeMap::new();
        for (gi, group) in groups.into_iter().enumerate() {
            let mut members = BTreeMap::new();
            for (id, weight) in group {
                if group_of.insert(id, gi).is_some() {
                    return Err(QuorumError::DuplicateMember(id));
                }
                members.insert(id, weight);
            }
            if members.values().all(|w| *w == 0) {
                return Err(QuorumError::EmptyGroup(gi));
            }
            out.push(members);
        }
        if out.is_empty() {
            return Err(QuorumError::NoVoters);
        }
        Ok(Hierarchical {
            groups: out,
            group_of,
        })
    }
}

impl QuorumVerifier for Hierarchical {
    fn is_voter(&self, id: ServerId) -> bool {
        self.group_of
            .get(&id)
            .and_then(|g| self.groups.get(*g))
            .and_then(|g| g.get(&id))
            .is_some_and(|w| *w > 0)
    }

    fn voters(&self) -> Vec<ServerId> {
        let mut v: Vec<ServerId> = self
            .groups
            .iter()
            .flat_map(|g| g.iter().filter(|(_, w)| **w > 0).map(|(id, _)| *id))
            .collect();
        v.sort();
        v
    }

    fn contains_quorum(&self, ids: &BTreeSet<ServerId>) -> bool {
        let mut satisfied = 0usize;
        for group in &self.groups {
            let total: u64 = group.values().sum();
            let have: u64 = group
                .iter()
                .filter(|(id, _)| ids.contains(id))
                .map(|(_, w)| *w)
                .sum();
            if have * 2 > total {
                satisfied += 1;
            }
        }
        // Every group has non-zero weight (checked in `new`).
        satisfied * 2 > self.groups.len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proptest::prelude::*;

    fn set(ids: &[u64]) -> BTreeSet<ServerId> {
        ids.iter().map(|i| ServerId(*i)).collect()
    }

    #[test]
    fn majority_table() {
        let m3 = Majority::new((1..=3).map(ServerId)).unwrap();
        let m4 = Majority::new((1..=4).map(ServerId)).unwrap();
        let cases: [(&Majority, &[u64], bool); 9] = [
            (&m3, &[], false),
            (&m3, &[1], false),
            (&m3, &[1, 2], true),
            (&m3, &[1, 2, 3], true),
            (&m3, &[1, 9], false), // 9 is not a voter
            (&m4, &[1, 2], false),
            (&m4, &[1, 2, 3], true),
            (&m4, &[2, 3, 4], true),
            (&m4, &[4], false),
        ];
        for (q, ids, want) in cases {
            assert_eq!(q.contains_quorum(&set(ids)), want, "{ids:?}");
        }
        assert!(m3.is_voter(ServerId(2)));
        assert!(!m3.is_voter(ServerId(4)));
        assert_eq!(Majority::new([]), Err(QuorumError::NoVoters));
    }

    #[test]
    fn hierarchical_table() {
        // Three groups of three, weight 1 each; server 10 is a zero-weight member.
        let h = Hierarchical::new(vec![
            vec![(ServerId(1), 1), (ServerId(2), 1), (ServerId(3), 1)],
            vec![(ServerId(4), 1), (ServerId(5), 1), (ServerId(6), 1)],
            vec![
                (ServerId(7), 1),
                (ServerId(8), 1),
                (ServerId(9), 1),
                (ServerId(10), 0),
            ],
        ])
        .unwrap();
        let cases: [(&[u64], bool); 6] = [
            (&[1, 2, 4, 5], true),
            (&[1, 2, 4], false),
            (&[1, 2, 3, 4, 5, 6], true),
            (&[1, 4, 7], false),
            (&[1, 2, 3, 7, 8, 9], true),
            (&[7, 8, 10, 1, 2], true),
        ];
        for (ids, want) in cases {
            assert_eq!(h.contains_quorum(&set(ids)), want, "{ids:?}");
        }
        assert!(!h.is_voter(ServerId(10)));
        assert!(h.is_voter(ServerId(9)));
        assert_eq!(h.voters().len(), 9);

        // Weights: server 1 alone holds a majority of its group.
        let w = Hierarchical::new(vec![
            vec![(ServerId(1), 3), (ServerId(2), 1), (ServerId(3), 1)],
            vec![(ServerId(4), 1), (ServerId(5), 1), (ServerId(6), 1)],
        ])
        .unwrap();
        assert!(
            w.contains_quorum(&set(&[1, 4, 5])),
            "server 1 carries its group"
        );
        assert!(
            !w.contains_quorum(&set(&[2, 3, 4, 5])),
            "2 and 3 hold 2 of 5"
        );
        assert!(!w.contains_quorum(&set(&[1, 4])), "both groups are needed");

        assert_eq!(
            Hierarchical::new(vec![vec![(ServerId(1), 1)], vec![(ServerId(1), 1)]]),
            Err(QuorumError::DuplicateMember(ServerId(1)))
        );
        assert_eq!(
            Hierarchical::new(vec![vec![(ServerId(1), 0)]]),
            Err(QuorumError::EmptyGroup(0))
        );
    }

    proptest! {
        /// Any two quorums intersect (the property ZAB's safety rests on).
        #[test]
        fn quorums_intersect(n in 1u64..8, a in any::<u8>(), b in any::<u8>()) {
            let m = Majority::new((0..n).map(ServerId)).unwrap();
            let pick = |mask: u8| -> BTreeSet<ServerId> {
                (0..n).filter(|i| mask & (1 << i) != 0).map(ServerId).collect()
            };
            let (qa, qb) = (pick(a), pick(b));
            let slice: Vec<ServerId> = qa.iter().copied().collect();
            prop_assert_eq!(m.contains_quorum_slice(&slice), m.contains_quorum(&qa));
            if m.contains_quorum(&qa) && m.contains_quorum(&qb) {
                prop_assert!(qa.intersection(&qb).next().is_some());
            }
        }

        #[test]
        fn hierarchical_quorums_intersect(a in any::<u16>(), b in any::<u16>(), w in proptest::collection::vec(0u64..4, 9)) {
            let groups: Vec<Vec<(ServerId, u64)>> = (0..3)
                .map(|g| (0..3).map(|i| (ServerId(g * 3 + i), w[(g * 3 + i) as usize] + u64::from(i == 0))).collect())
                .collect();
            let h = Hierarchical::new(groups).unwrap();
            let pick = |mask: u16| -> BTreeSet<ServerId> {
                (0..9).filter(|i| mask & (1 << i) != 0).map(ServerId).collect()
            };
            let (qa, qb) = (pick(a), pick(b));
            let slice: Vec<ServerId> = qa.iter().copied().collect();
            prop_assert_eq!(h.contains_quorum_slice(&slice), h.contains_quorum(&qa));
            if h.contains_quorum(&qa) && h.contains_quorum(&qb) {
                let both: BTreeSet<_> = qa.intersection(&qb).filter(|id| h.is_voter(**id)).collect();
                prop_assert!(!both.is_empty());
            }
        }
    }
}

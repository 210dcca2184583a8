//! The watchers of one path: inline while one, a sorted vector while few, a B-tree once
//! many.
//!
//! Most watched paths have a single watcher, kept inline without an allocation; a few
//! more fit a small sorted vector. Some paths (a configuration node, a leader-election
//! node) can have one watcher per attached session; inserting into or removing from a
//! sorted vector of tens of thousands would cost a quadratic memmove when every session
//! re-registers at once, so those switch to a `BTreeMap`.

use std::collections::BTreeMap;

use super::Kinds;
use crate::event::SessionId;

/// Above this many watchers a path switches to the B-tree form; it switches back at or
/// below half of it. Tiny under test so that the model tests cross it both ways.
const FEW_MAX: usize = if cfg!(test) { 2 } else { 32 };
// A pair must fit the vector form (`Form::One` grows straight into it).
const _: () = assert!(FEW_MAX >= 2);

/// One session's watches on the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Watcher {
    session: SessionId,
    kinds: Kinds,
}

/// The sessions watching one path, each with the non-empty set of kinds it watches.
/// Iteration is in ascending session order whatever the form.
#[derive(Debug, Default)]
pub(super) struct PathWatchers(Form);

/// The representations of [`PathWatchers`]; no form holds empty kinds.
#[derive(Debug)]
enum Form {
    /// Exactly one watcher.
    One(Watcher),
    /// Sorted by session, no duplicate sessions, never exactly one, at most `FEW_MAX`.
    Few(Vec<Watcher>),
    /// More than `FEW_MAX / 2` watchers.
    Many(BTreeMap<SessionId, Kinds>),
}

impl Default for Form {
    fn default() -> Self {
        Form::Few(Vec::new())
    }
}

impl Form {
    /// The cheapest form for `watchers`, given in ascending session order.
    fn from_sorted(mut watchers: Vec<Watcher>) -> Form {
        match watchers.len() {
            1 => Form::One(watchers[0]),
            n if n > FEW_MAX => Form::Many(watchers.iter().map(|w| (w.session, w.kinds)).collect()),
            _ => {
                watchers.shrink_to_fit();
                Form::Few(watchers)
            }
        }
    }
}

impl PathWatchers {
    /// The kinds `session` watches this path with (empty if none).
    pub(super) fn kinds(&self, session: SessionId) -> Kinds {
        match &self.0 {
            Form::One(w) if w.session == session => w.kinds,
            Form::One(_) => Kinds::NONE,
            Form::Few(few) => match few.binary_search_by_key(&session, |w| w.session) {
                Ok(i) => few[i].kinds,
                Err(_) => Kinds::NONE,
            },
            Form::Many(many) => many.get(&session).copied().unwrap_or(Kinds::NONE),
        }
    }

    /// Sets `session`'s kinds, removing the session when `kinds` is empty; returns the
    /// kinds it had before.
    pub(super) fn set(&mut self, session: SessionId, kinds: Kinds) -> Kinds {
        let old = match &mut self.0 {
            Form::One(w) if w.session == session => std::mem::replace(&mut w.kinds, kinds),
            Form::One(_) if kinds.is_empty() => Kinds::NONE,
            Form::One(w) => {
                let new = Watcher { session, kinds };
                let pair = if w.session < session {
                    vec![*w, new]
                } else {
                    vec![new, *w]
                };
                self.0 = Form::Few(pair);
                Kinds::NONE
            }
            Form::Few(few) => match few.binary_search_by_key(&session, |w| w.session) {
                Ok(i) if kinds.is_empty() => few.remove(i).kinds,
                Ok(i) => std::mem::replace(&mut few[i].kinds, kinds),
                Err(_) if kinds.is_empty() => Kinds::NONE,
                Err(i) => {
                    few.insert(i, Watcher { session, kinds });
                    Kinds::NONE
                }
            },
            Form::Many(many) if kinds.is_empty() => many.remove(&session).unwrap_or(Kinds::NONE),
            Form::Many(many) => many.insert(session, kinds).unwrap_or(Kinds::NONE),
        };
        self.maybe_change_form();
        old
    }

    /// Calls `f` with every (session, kinds) in ascending session order.
    pub(super) fn for_each(&self, mut f: impl FnMut(SessionId, Kinds)) {
        match &self.0 {
            Form::One(w) => f(w.session, w.kinds),
            Form::Few(few) => few.iter().for_each(|w| f(w.session, w.kinds)),
            Form::Many(many) => many.iter().for_each(|(&s, &k)| f(s, k)),
        }
    }

    /// Lets `f` change every session's kinds in ascending session order; sessions whose
    /// kinds become empty are removed.
    pub(super) fn update_each(&mut self, mut f: impl FnMut(SessionId, &mut Kinds)) {
        match &mut self.0 {
            Form::One(w) => f(w.session, &mut w.kinds),
            Form::Few(few) => few.retain_mut(|w| {
                f(w.session, &mut w.kinds);
                !w.kinds.is_empty()
            }),
            Form::Many(many) => many.retain(|&s, k| {
                f(s, k);
                !k.is_empty()
            }),
        }
        self.maybe_change_form();
    }

    /// The number of watching sessions.
    pub(super) fn len(&self) -> usize {
        match &self.0 {
            Form::One(_) => 1,
            Form::Few(few) => few.len(),
            Form::Many(many) => many.len(),
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Picks the form for the new size: one inline, a vector up to `FEW_MAX`, a B-tree
    /// above it and down to half of it (the gap keeps a path hovering around the limit
    /// from converting on every call). O(1) unless it converts.
    fn maybe_change_form(&mut self) {
        match &mut self.0 {
            Form::One(w) if w.kinds.is_empty() => self.0 = Form::default(),
            Form::One(_) => {}
            Form::Few(few) => {
                if few.len() == 1 || few.len() > FEW_MAX {
                    self.0 = Form::from_sorted(std::mem::take(few));
                }
            }
            Form::Many(many) => {
                if many.len() <= FEW_MAX / 2 {
                    // BTreeMap iterates in key order, so the vector comes out sorted.
                    let sorted = many
                        .iter()
                        .map(|(&session, &kinds)| Watcher { session, kinds });
                    self.0 = Form::from_sorted(sorted.collect());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure report

    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    fn contents(w: &PathWatchers) -> Vec<(SessionId, Kinds)> {
        let mut all = Vec::new();
        w.for_each(|s, k| all.push((s, k)));
        all
    }

    fn is_many(w: &PathWatchers) -> bool {
        matches!(w.0, Form::Many(_))
    }

    /// The form invariants documented on [`Form`].
    fn check_form(w: &PathWatchers) {
        match &w.0 {
            Form::One(one) => assert!(!one.kinds.is_empty()),
            Form::Few(few) => {
                assert!(
                    few.len() != 1 && few.len() <= FEW_MAX,
                    "few of {}",
                    few.len()
                );
                assert!(few.windows(2).all(|p| p[0].session < p[1].session));
                assert!(few.iter().all(|x| !x.kinds.is_empty()));
            }
            Form::Many(many) => {
                assert!(many.len() > FEW_MAX / 2, "many of {}", many.len());
                assert!(many.values().all(|k| !k.is_empty()));
            }
        }
    }

    #[test]
    fn grows_into_a_btree_and_shrinks_back_keeping_order() {
        let mut w = PathWatchers::default();
        for s in (0..10).rev() {
            assert_eq!(w.set(SessionId(s), Kinds::DATA), Kinds::NONE);
        }
        assert!(is_many(&w));
        let sessions: Vec<i64> = contents(&w).iter().map(|(s, _)| s.0).collect();
        assert_eq!(sessions, (0..10).collect::<Vec<_>>());
        for s in 1..10 {
            assert_eq!(w.set(SessionId(s), Kinds::NONE), Kinds::DATA);
        }
        assert!(!is_many(&w));
        assert_eq!(contents(&w), vec![(SessionId(0), Kinds::DATA)]);
    }

    proptest! {
        #[test]
        fn behaves_like_a_btreemap(ops in prop::collection::vec((0i64..8, 0u8..32, any::<bool>()), 0..80)) {
            let mut w = PathWatchers::default();
            let mut model: BTreeMap<SessionId, Kinds> = BTreeMap::new();
            for (s, bits, bulk) in ops {
                let session = SessionId(s);
                let kinds = Kinds::from_bits(bits);
                if bulk {
                    // Strip `kinds` from everyone, as a trigger consumes one-shot kinds.
                    w.update_each(|_, k| *k = k.without(kinds));
                    model.retain(|_, k| { *k = k.without(kinds); !k.is_empty() });
                } else {
                    let old = model.get(&session).copied().unwrap_or(Kinds::NONE);
                    if kinds.is_empty() { model.remove(&session); } else { model.insert(session, kinds); }
                    prop_assert_eq!(w.set(session, kinds), old);
                }
                prop_assert_eq!(contents(&w), model.iter().map(|(&s, &k)| (s, k)).collect::<Vec<_>>());
                prop_assert_eq!(w.len(), model.len());
                prop_assert_eq!(w.kinds(session), model.get(&session).copied().unwrap_or(Kinds::NONE));
                check_form(&w);
            }
        }
    }
}

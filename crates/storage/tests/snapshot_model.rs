//! Proptest: random save / damage / retain / open sequences on both snapshot stores
//! against a model.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::{Read, Write};

use proptest::prelude::*;
use storage::{FileSnapshotStore, MemSnapshotStore, SnapshotStore};

#[derive(Clone, Debug)]
enum Op {
    Save {
        gap: u8,
        len: u16,
    },
    /// Damage the snapshot at this position (newest first) of the model.
    Damage {
        pick: u8,
    },
    Retain {
        n: u8,
    },
    Abandon {
        len: u16,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1u8..10, 0u16..3000).prop_map(|(gap, len)| Op::Save { gap, len }),
        1 => any::<u8>().prop_map(|pick| Op::Damage { pick }),
        1 => (0u8..4).prop_map(|n| Op::Retain { n }),
        1 => (0u16..500).prop_map(|len| Op::Abandon { len }),
    ]
}

/// `PROPTEST_CASES` overrides the default case count.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn body(zxid: u64, len: u16) -> Vec<u8> {
    (0..len)
        .map(|i| (zxid as u8).wrapping_mul(31) ^ i as u8)
        .collect()
}

/// zxid -> (body, valid)
type Model = BTreeMap<u64, (Vec<u8>, bool)>;

fn check(store: &dyn SnapshotStore, model: &Model) {
    let listed: Vec<u64> = store.list().unwrap().iter().map(|i| i.zxid).collect();
    let want: Vec<u64> = model.keys().rev().copied().collect();
    assert_eq!(listed, want);
    let newest_valid = model.iter().rev().find(|(_, (_, ok))| *ok);
    match (store.open_newest_valid().unwrap(), newest_valid) {
        (None, None) => {}
        (Some(opened), Some((z, (b, _)))) => {
            assert_eq!(opened.info.zxid, *z);
            let newer_invalid = model.range(z + 1..).count();
            assert_eq!(opened.skipped.len(), newer_invalid);
            let mut got = Vec::new();
            let mut r = opened.reader;
            r.read_to_end(&mut got).unwrap();
            assert_eq!(&got, b);
        }
        (got, want) => panic!(
            "opened {:?}, model newest valid {:?}",
            got.map(|o| o.info),
            want.map(|w| *w.0)
        ),
    }
}

fn run(store: &dyn SnapshotStore, damage: &dyn Fn(u64, usize), ops: &[Op]) {
    let mut model = Model::new();
    let mut next = 0u64;
    for op in ops {
        match *op {
            Op::Save { gap, len } => {
                next += u64::from(gap);
                let b = body(next, len);
                let mut w = store.begin(next).unwrap();
                w.write_all(&b).unwrap();
                w.finish().unwrap();
                model.insert(next, (b, true));
            }
            Op::Damage { pick } => {
                if model.is_empty() {
                    continue;
                }
                let i = pick as usize % model.len();
                let (z, (b, ok)) = model.iter_mut().rev().nth(i).unwrap();
                if !*ok {
                    continue; // a second flip could undo the first
                }
                // Somewhere in header, body or trailer.
                damage(*z, (pick as usize * 7919) % (b.len() + 48));
                *ok = false;
            }
            Op::Retain { n } => {
                let mut removed = store.retain_newest(n as usize).unwrap();
                removed.sort_unstable();
                let keep_valid = model.iter().rev().find(|(_, (_, ok))| *ok).map(|(z, _)| *z);
                let mut want: Vec<u64> = model
                    .keys()
                    .rev()
                    .skip(n as usize)
                    .copied()
                    .filter(|z| Some(*z) != keep_valid)
                    .collect();
                want.sort_unstable();
                assert_eq!(removed, want);
                for z in want {
                    model.remove(&z);
                }
            }
            Op::Abandon { len } => {
                let mut w = store.begin(next + 1).unwrap();
                w.write_all(&body(next + 1, len)).unwrap();
                drop(w);
            }
        }
        check(store, &model);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(48), ..ProptestConfig::default() })]

    #[test]
    fn memory_store_matches_model(ops in proptest::collection::vec(op(), 1..30)) {
        let store = MemSnapshotStore::new();
        let s2 = store.clone();
        run(&store, &move |z, at| { assert!(s2.flip_bit(z, at, 3)); }, &ops);
    }

    #[test]
    fn file_store_matches_model(ops in proptest::collection::vec(op(), 1..20)) {
        let dir = tempfile::tempdir().unwrap();
        let store = FileSnapshotStore::open(dir.path()).unwrap();
        let s2 = store.clone();
        run(&store, &move |z, at| {
            storage::fault::flip_bit_in_file(&s2.path_of(z), at as u64, 3).unwrap();
        }, &ops);
    }
}

//! ZooKeeper semantics of the tree: one test per Stat rule and per error code, as
//! listed in shared/ZK-SEMANTICS.md.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bytes::Bytes;
use common::{create_op, Local};
use datatree::*;

#[test]
fn create_sets_every_stat_field() {
    let mut t = Local::new();
    t.create_data("/a", b"hello", CreateMode::Persistent)
        .unwrap();
    let s = t.stat("/a");
    assert_eq!((s.czxid, s.mzxid, s.pzxid), (1, 1, 1));
    assert_eq!(s.ctime, s.mtime);
    assert_eq!((s.version, s.cversion, s.aversion), (0, 0, 0));
    assert_eq!(
        (s.ephemeral_owner, s.data_length, s.num_children),
        (0, 5, 0)
    );
}

#[test]
fn only_set_data_moves_mzxid_and_mtime() {
    let mut t = Local::new();
    t.create("/a", CreateMode::Persistent).unwrap();
    let before = t.stat("/a");
    t.create("/a/b", CreateMode::Persistent).unwrap();
    t.run(WriteOp::SetAcl {
        path: "/a".into(),
        acl: Acl::open_unsafe(),
        version: -1,
    })
    .unwrap();
    let after = t.stat("/a");
    assert_eq!((after.mzxid, after.mtime), (before.mzxid, before.mtime));
    assert_eq!(after.aversion, 1);
    assert_eq!(after.pzxid, 2, "pzxid moves with the child create");
    t.set("/a", b"x", -1).unwrap();
    let s = t.stat("/a");
    assert_eq!(s.mzxid, 4);
    assert!(s.mtime > before.mtime);
    assert_eq!(s.version, 1);
}

#[test]
fn version_increments_even_for_identical_bytes() {
    let mut t = Local::new();
    t.create_data("/a", b"same", CreateMode::Persistent)
        .unwrap();
    t.set("/a", b"same", 0).unwrap();
    let s = t.set("/a", b"same", 1).unwrap();
    assert_eq!(s.version, 2);
}

#[test]
fn cversion_counts_creates_and_deletes_but_names_count_creates() {
    let mut t = Local::new();
    t.create("/p", CreateMode::Persistent).unwrap();
    t.create("/p/a", CreateMode::Persistent).unwrap();
    t.delete("/p/a", -1).unwrap();
    let s = t.stat("/p");
    assert_eq!(s.cversion, 2, "one create + one delete");
    assert_eq!(s.pzxid, 3, "delete moves pzxid");
    let name = t.create("/p/s-", CreateMode::PersistentSequential).unwrap();
    assert_eq!(
        name, "/p/s-0000000001",
        "suffix is the create count, not cversion"
    );
    assert_eq!(t.stat("/p").cversion, 3);
}

#[test]
fn sequential_prefix_ending_in_slash_names_by_digits_only() {
    let mut t = Local::new();
    t.create("/q", CreateMode::Persistent).unwrap();
    assert_eq!(
        t.create("/q/", CreateMode::PersistentSequential).unwrap(),
        "/q/0000000000"
    );
    assert_eq!(
        t.create("/q/", CreateMode::EphemeralSequential).unwrap(),
        "/q/0000000001"
    );
}

#[test]
fn ephemerals_report_owner_and_cannot_have_children() {
    let mut t = Local::new();
    t.run_as(42, &[], create_op("/e", b"", CreateMode::Ephemeral, 0))
        .unwrap();
    assert_eq!(t.stat("/e").ephemeral_owner, 42);
    let err = t
        .run_as(42, &[], create_op("/e/c", b"", CreateMode::Persistent, 0))
        .unwrap_err();
    assert_eq!(err.error().code(), -108);
    assert_eq!(t.tree.ephemerals(SessionId(42)), vec!["/e".to_string()]);
}

#[test]
fn containers_and_ttl_nodes_report_zero_owner() {
    let mut t = Local::new();
    t.create("/c", CreateMode::Container).unwrap();
    t.create("/t", CreateMode::PersistentWithTtl).unwrap();
    assert_eq!(t.stat("/c").ephemeral_owner, 0);
    assert_eq!(t.stat("/t").ephemeral_owner, 0);
}

#[test]
fn close_session_deletes_its_ephemerals_only() {
    let mut t = Local::new();
    t.create("/g", CreateMode::Persistent).unwrap();
    t.run_as(5, &[], create_op("/g/a", b"", CreateMode::Ephemeral, 0))
        .unwrap();
    t.run_as(
        5,
        &[],
        create_op("/g/b-", b"", CreateMode::EphemeralSequential, 0),
    )
    .unwrap();
    t.run_as(6, &[], create_op("/g/c", b"", CreateMode::Ephemeral, 0))
        .unwrap();
    let applied = t.close_session(5);
    let deleted: Vec<_> = applied
        .changes
        .iter()
        .filter(|c| c.kind == ChangeKind::Deleted)
        .map(|c| c.path.to_string())
        .collect();
    assert_eq!(deleted, vec!["/g/a", "/g/b-0000000001"]);
    assert_eq!(t.tree.children("/g").unwrap().0, vec!["c"]);
    assert!(t.tree.ephemerals(SessionId(5)).is_empty());
}

#[test]
fn existence_is_checked_before_version() {
    let mut t = Local::new();
    assert_eq!(t.delete("/missing", 7).unwrap_err().code(), -101);
    assert_eq!(t.set("/missing", b"", 7).unwrap_err().code(), -101);
    t.create("/a", CreateMode::Persistent).unwrap();
    assert_eq!(t.delete("/a", 7).unwrap_err().code(), -103);
    assert_eq!(t.set("/a", b"", 7).unwrap_err().code(), -103);
}

#[test]
fn error_codes() {
    let mut t = Local::new();
    t.create("/a", CreateMode::Persistent).unwrap();
    t.create("/a/b", CreateMode::Persistent).unwrap();
    assert_eq!(
        t.create("/a", CreateMode::Persistent).unwrap_err().code(),
        -110
    );
    assert_eq!(
        t.create("/x/y", CreateMode::Persistent).unwrap_err().code(),
        -101
    );
    assert_eq!(t.delete("/a", -1).unwrap_err().code(), -111);
    assert_eq!(
        t.create("bad", CreateMode::Persistent).unwrap_err().code(),
        -8
    );
    assert_eq!(
        t.create("/a/", CreateMode::Persistent).unwrap_err().code(),
        -8
    );
    assert_eq!(
        t.create("/zookeeper/x", CreateMode::Persistent)
            .unwrap_err()
            .code(),
        -8
    );
    assert_eq!(t.delete("/", -1).unwrap_err().code(), -8);
    assert_eq!(
        t.create("/", CreateMode::Persistent).unwrap_err().code(),
        -110
    );
    assert_eq!(
        t.create("/zookeeper", CreateMode::Persistent)
            .unwrap_err()
            .code(),
        -110
    );
    assert_eq!(t.delete("/zookeeper/quota", -1).unwrap_err().code(), -8);
    assert_eq!(
        t.create("/\u{1f600}", CreateMode::Persistent)
            .unwrap_err()
            .code(),
        -8
    );
    let bad_acl = WriteOp::Create {
        path: "/n".into(),
        data: Bytes::new(),
        acl: vec![],
        mode: CreateMode::Persistent,
        ttl_ms: 0,
    };
    assert_eq!(t.run(bad_acl).unwrap_err().error().code(), -114);
    let bad_ttl = create_op("/t", b"", CreateMode::PersistentWithTtl, 0);
    assert_eq!(t.run(bad_ttl).unwrap_err().error().code(), -8);
    let big_ttl = create_op("/t", b"", CreateMode::PersistentWithTtl, 1 << 40);
    assert_eq!(t.run(big_ttl).unwrap_err().error().code(), -8);
    let ttl_on_plain = create_op("/t", b"", CreateMode::Persistent, 5);
    assert_eq!(t.run(ttl_on_plain).unwrap_err().error().code(), -8);
    let ephemeral_without_session =
        t.run_as(0, &[], create_op("/e", b"", CreateMode::Ephemeral, 0));
    assert_eq!(ephemeral_without_session.unwrap_err().error().code(), -8);
}

#[test]
fn ttl_can_be_disabled() {
    let mut t = Local::new();
    t.prep = Prep::new(PrepConfig {
        ttl_enabled: false,
        ..PrepConfig::default()
    });
    let op = create_op("/t", b"", CreateMode::PersistentWithTtl, 100);
    assert_eq!(t.run(op).unwrap_err().error().code(), -6);
}

#[test]
fn acl_enforcement() {
    let mut t = Local::new();
    let bob = Id::new("digest", "bob:hash");
    let only_bob = vec![Acl {
        perms: Perms::ALL,
        id: bob.clone(),
    }];
    t.run(WriteOp::Create {
        path: "/s".into(),
        data: Bytes::new(),
        acl: only_bob,
        mode: CreateMode::Persistent,
        ttl_ms: 0,
    })
    .unwrap();
    let eve = t.run_as(2, &[], create_op("/s/x", b"", CreateMode::Persistent, 0));
    assert_eq!(eve.unwrap_err().error().code(), -102);
    t.run_as(
        3,
        std::slice::from_ref(&bob),
        create_op("/s/x", b"", CreateMode::Persistent, 0),
    )
    .unwrap();
    let set = WriteOp::SetData {
        path: "/s".into(),
        data: Bytes::new(),
        version: -1,
    };
    assert_eq!(
        t.run_as(2, &[], set.clone()).unwrap_err().error().code(),
        -102
    );
    t.run_as(3, std::slice::from_ref(&bob), set).unwrap();
    let setacl = WriteOp::SetAcl {
        path: "/s".into(),
        acl: Acl::open_unsafe(),
        version: 0,
    };
    assert_eq!(
        t.run_as(2, &[], setacl.clone()).unwrap_err().error().code(),
        -102
    );
    t.run_as(2, &[Id::new("super", "root")], setacl).unwrap();
    // `auth` expands to the creator's ids.
    t.run_as(
        3,
        std::slice::from_ref(&bob),
        WriteOp::Create {
            path: "/mine".into(),
            data: Bytes::new(),
            acl: Acl::creator_all(),
            mode: CreateMode::Persistent,
            ttl_ms: 0,
        },
    )
    .unwrap();
    assert_eq!(
        t.tree.acl("/mine").unwrap().0,
        vec![Acl {
            perms: Perms::ALL,
            id: bob
        }]
    );
}

#[test]
fn multi_is_all_or_nothing_with_zookeeper_results() {
    let mut t = Local::new();
    t.create("/a", CreateMode::Persistent).unwrap();
    let digest = t.tree.digest();
    let ops = WriteOp::Multi(vec![
        create_op("/a/x", b"", CreateMode::Persistent, 0),
        WriteOp::SetData {
            path: "/a".into(),
            data: Bytes::from_static(b"v"),
            version: 0,
        },
        WriteOp::Check {
            path: "/a".into(),
            version: 0,
        },
        create_op("/a/y", b"", CreateMode::Persistent, 0),
    ]);
    let err = t.run(ops).unwrap_err();
    let PrepError::Multi(results) = err else {
        panic!("{err:?}")
    };
    assert_eq!(results.len(), 4);
    assert_eq!(results[0], OpResult::Ok);
    assert_eq!(results[1], OpResult::Ok);
    assert!(
        matches!(&results[2], OpResult::Error(Error::BadVersion(_))),
        "check sees the setData before it"
    );
    assert_eq!(results[3], OpResult::Error(Error::RuntimeInconsistency));
    assert_eq!(t.tree.digest(), digest, "nothing applied");
    assert!(!t.tree.contains("/a/x"));

    let ok = t
        .run(WriteOp::Multi(vec![
            create_op("/a/s-", b"", CreateMode::PersistentSequential, 0),
            create_op("/a/s-", b"", CreateMode::PersistentSequential, 0),
            WriteOp::Check {
                path: "/a/s-0000000001".into(),
                version: -1,
            },
            WriteOp::Delete {
                path: "/a/s-0000000000".into(),
                version: 0,
            },
        ]))
        .unwrap();
    assert!(matches!(&ok.results[0], OpResult::Created { path, .. } if path == "/a/s-0000000000"));
    assert!(matches!(&ok.results[1], OpResult::Created { path, .. } if path == "/a/s-0000000001"));
    assert_eq!(ok.results[2], OpResult::Checked);
    assert_eq!(ok.results[3], OpResult::Deleted);
    assert_eq!(t.tree.children("/a").unwrap().0, vec!["s-0000000001"]);
}

#[test]
fn pipelined_requests_see_outstanding_changes() {
    let mut t = Local::new();
    let ctx = |zxid| PrepContext {
        session: SessionId(1),
        auth: &[],
        zxid,
    };
    let a = t
        .prep
        .prepare(
            &t.tree,
            &ctx(1),
            &create_op("/a", b"", CreateMode::Persistent, 0),
        )
        .unwrap();
    let b = t
        .prep
        .prepare(
            &t.tree,
            &ctx(2),
            &create_op("/a/b", b"", CreateMode::Persistent, 0),
        )
        .unwrap();
    let dup = t.prep.prepare(
        &t.tree,
        &ctx(3),
        &create_op("/a", b"", CreateMode::Persistent, 0),
    );
    assert_eq!(dup.unwrap_err().error().code(), -110);
    let del = t.prep.prepare(
        &t.tree,
        &ctx(3),
        &WriteOp::Delete {
            path: "/a".into(),
            version: -1,
        },
    );
    assert_eq!(del.unwrap_err().error().code(), -111);
    let s1 = t
        .prep
        .prepare(
            &t.tree,
            &ctx(3),
            &create_op("/a/s", b"", CreateMode::PersistentSequential, 0),
        )
        .unwrap();
    let TxnOp::Create(c) = &s1 else { panic!() };
    assert_eq!(c.path, "/a/s0000000001");
    for (zxid, op) in [(1, a), (2, b), (3, s1)] {
        t.apply_prepared(zxid, op);
    }
    assert_eq!(t.prep.pending_paths(), 0);
    assert_eq!(t.stat("/a").num_children, 2);
}

#[test]
fn prep_reset_forgets_uncommitted_changes() {
    let mut t = Local::new();
    let ctx = PrepContext {
        session: SessionId(1),
        auth: &[],
        zxid: 1,
    };
    t.prep
        .prepare(
            &t.tree,
            &ctx,
            &create_op("/a", b"", CreateMode::Persistent, 0),
        )
        .unwrap();
    t.prep.reset();
    t.prep
        .prepare(
            &t.tree,
            &ctx,
            &create_op("/a", b"", CreateMode::Persistent, 0),
        )
        .unwrap();
}

#[test]
fn expired_nodes_lists_used_empty_containers_and_stale_ttls() {
    let mut t = Local::new();
    t.create("/never", CreateMode::Container).unwrap();
    t.create("/used", CreateMode::Container).unwrap();
    t.create("/used/x", CreateMode::Persistent).unwrap();
    assert!(t.tree.expired_nodes(t.time).is_empty());
    t.delete("/used/x", -1).unwrap();
    t.create("/ttl", CreateMode::PersistentWithTtl).unwrap(); // TTL 1000 ms
    let now = t.time;
    assert_eq!(t.tree.expired_nodes(now), vec!["/used".to_string()]);
    assert_eq!(
        t.tree.expired_nodes(now + 1_001),
        vec!["/ttl".to_string(), "/used".to_string()]
    );
    t.run(WriteOp::DeleteExpired {
        path: "/used".into(),
        now_ms: now,
    })
    .unwrap();
    let again = t.run(WriteOp::DeleteExpired {
        path: "/never".into(),
        now_ms: now,
    });
    assert!(again.is_err(), "an unused container does not qualify");
}

#[test]
fn counts_and_listings() {
    let mut t = Local::new();
    t.create("/a", CreateMode::Persistent).unwrap();
    t.create("/a/b", CreateMode::Persistent).unwrap();
    t.create("/a/b/c", CreateMode::Persistent).unwrap();
    t.create("/a/d", CreateMode::Persistent).unwrap();
    assert_eq!(t.tree.all_children_number("/a").unwrap(), 3);
    assert_eq!(t.tree.children("/a").unwrap().0, vec!["b", "d"]);
    assert_eq!(t.tree.children("/").unwrap().0, vec!["a", "zookeeper"]);
    assert_eq!(t.tree.node_count(), 4 + 4);
}

#[test]
fn quotas_are_enforced_including_pending_changes() {
    let mut t = Local::new();
    t.create("/q", CreateMode::Persistent).unwrap();
    t.run(WriteOp::SetQuota {
        path: "/q".into(),
        quota: Quota {
            count: 3,
            bytes: 10,
        },
    })
    .unwrap();
    t.create_data("/q/a", b"12345", CreateMode::Persistent)
        .unwrap();
    assert_eq!(
        t.create_data("/q/b", b"123456", CreateMode::Persistent)
            .unwrap_err()
            .code(),
        -125
    );
    t.create("/q/b", CreateMode::Persistent).unwrap();
    assert_eq!(
        t.create("/q/c", CreateMode::Persistent).unwrap_err().code(),
        -125
    );
    assert_eq!(
        t.tree.quota("/q").unwrap(),
        (
            Quota {
                count: 3,
                bytes: 10
            },
            3,
            5
        )
    );
    // Pipelined: two creates in flight must both count.
    t.delete("/q/b", -1).unwrap();
    let ctx = |zxid| PrepContext {
        session: SessionId(1),
        auth: &[],
        zxid,
    };
    t.prep
        .prepare(
            &t.tree,
            &ctx(100),
            &create_op("/q/x", b"", CreateMode::Persistent, 0),
        )
        .unwrap();
    let second = t.prep.prepare(
        &t.tree,
        &ctx(101),
        &create_op("/q/y", b"", CreateMode::Persistent, 0),
    );
    assert_eq!(second.unwrap_err().error().code(), -125);
}

#[test]
fn snapshot_round_trip_is_byte_identical() {
    let mut t = Local::new();
    t.create_data("/a", b"1", CreateMode::Persistent).unwrap();
    t.run_as(
        9,
        &[],
        create_op("/a/e", b"eph", CreateMode::EphemeralSequential, 0),
    )
    .unwrap();
    t.create("/c", CreateMode::Container).unwrap();
    t.create("/t", CreateMode::PersistentSequentialWithTtl)
        .unwrap();
    t.run(WriteOp::SetQuota {
        path: "/a".into(),
        quota: Quota {
            count: 10,
            bytes: -1,
        },
    })
    .unwrap();
    let bytes = t.tree.to_bytes();
    let back = DataTree::deserialize(&bytes[..]).unwrap();
    assert_eq!(back.digest(), t.tree.digest());
    assert_eq!(back.to_bytes(), bytes);
    assert_eq!(
        back.ephemerals(SessionId(9)),
        vec!["/a/e0000000000".to_string()]
    );
    assert_eq!(back.quota("/a"), t.tree.quota("/a"));
    assert_eq!(back.paths(), t.tree.paths());
}

#[test]
fn initial_tree_matches_zookeeper() {
    let mut t = Local::new();
    let root = t.stat("/");
    assert_eq!((root.cversion, root.num_children), (-1, 1));
    assert_eq!(t.stat("/zookeeper").cversion, -2);
    assert_eq!(
        t.tree.children("/zookeeper").unwrap().0,
        vec!["config", "quota"]
    );
    assert_eq!(t.stat("/zookeeper/config").aversion, -1);
    assert_eq!(
        t.create("/x", CreateMode::PersistentSequential).unwrap(),
        "/x0000000000"
    );
    assert_eq!(
        t.create("/zookeeper", CreateMode::PersistentSequential)
            .unwrap(),
        "/zookeeper0000000001"
    );
    assert_eq!(
        t.create("/a/.", CreateMode::PersistentSequential)
            .unwrap_err()
            .code(),
        -101
    );
}

#[test]
fn version_wrap_skips_minus_one() {
    assert_eq!(prep::next_version(5), 6);
    assert_eq!(prep::next_version(-2), 0);
    assert_eq!(prep::next_version(i32::MAX), i32::MIN);
}

#[test]
fn set_data_checks_quota_before_version() {
    let mut t = Local::new();
    t.create("/q", CreateMode::Persistent).unwrap();
    t.run(WriteOp::SetQuota {
        path: "/q".into(),
        quota: Quota {
            count: -1,
            bytes: 1,
        },
    })
    .unwrap();
    assert_eq!(t.set("/q", b"0123456789", 7).unwrap_err().code(), -125);
}

#[test]
fn multi_carries_only_create_delete_set_data_and_check() {
    let mut t = Local::new();
    t.create("/a", CreateMode::Persistent).unwrap();
    let err = t
        .run(WriteOp::Multi(vec![WriteOp::SetAcl {
            path: "/a".into(),
            acl: Acl::open_unsafe(),
            version: -1,
        }]))
        .unwrap_err();
    assert_eq!(err.error().code(), -5);
}

#[test]
fn requests_over_the_size_limits_are_refused_before_they_become_txns() {
    let mut t = Local::new();
    let long = format!("/{}", "x".repeat(40 * 1024));
    assert_eq!(
        t.create(&long, CreateMode::Persistent).unwrap_err().code(),
        -8
    );
    assert_eq!(
        t.create_data("/big", &vec![0u8; 1 << 20], CreateMode::Persistent)
            .unwrap_err()
            .code(),
        -8
    );
    let id = Id::new("digest", format!("u:{}", "h".repeat(2000)));
    let op = WriteOp::Create {
        path: "/acl".into(),
        data: Bytes::new(),
        acl: vec![Acl {
            perms: Perms::ALL,
            id,
        }],
        mode: CreateMode::Persistent,
        ttl_ms: 0,
    };
    assert_eq!(t.run(op).unwrap_err().error().code(), -8);
    // Just under the limits works, and the txn and snapshot decode again.
    t.create_data("/ok", &vec![7u8; (1 << 20) - 200], CreateMode::Persistent)
        .unwrap();
    assert!(DataTree::deserialize(&t.tree.to_bytes()[..]).is_ok());
}

#[test]
fn close_session_skips_a_path_another_session_recreated_in_flight() {
    // The lock-recipe pipeline: S deletes /lock, T creates ephemeral /lock, then S's
    // session closes, all before any of it commits.
    let mut t = Local::new();
    t.run_as(5, &[], create_op("/lock", b"", CreateMode::Ephemeral, 0))
        .unwrap();
    let ctx = |s, zxid| PrepContext {
        session: SessionId(s),
        auth: &[],
        zxid,
    };
    let del = t
        .prep
        .prepare(
            &t.tree,
            &ctx(5, 2),
            &WriteOp::Delete {
                path: "/lock".into(),
                version: -1,
            },
        )
        .unwrap();
    let cre = t
        .prep
        .prepare(
            &t.tree,
            &ctx(6, 3),
            &create_op("/lock", b"", CreateMode::Ephemeral, 0),
        )
        .unwrap();
    let close = t.prep.prepare_close_session(&t.tree, SessionId(5), 4);
    assert_eq!(
        close,
        TxnOp::CloseSession {
            session: SessionId(5),
            paths: vec![]
        }
    );
    for (zxid, op) in [(2, del), (3, cre), (4, close)] {
        t.tree
            .apply(&Txn {
                zxid,
                time_ms: 9,
                op,
            })
            .unwrap();
        t.prep.handle_applied(zxid);
    }
    assert_eq!(t.tree.ephemeral_owner("/lock"), Some(SessionId(6)));
}

#[test]
fn close_session_of_session_zero_is_refused_on_apply() {
    let mut t = Local::new();
    t.create("/p", CreateMode::Persistent).unwrap();
    let op = TxnOp::CloseSession {
        session: SessionId(0),
        paths: vec!["/p".into()],
    };
    assert!(t
        .tree
        .apply(&Txn {
            zxid: 99,
            time_ms: 0,
            op
        })
        .is_err());
    assert!(t.tree.contains("/p"));
}

#[test]
fn delete_expired_rechecks_the_ttl() {
    let mut t = Local::new();
    t.create("/t", CreateMode::PersistentWithTtl).unwrap(); // TTL 1000 ms
    let now = t.time;
    assert!(t
        .run(WriteOp::DeleteExpired {
            path: "/t".into(),
            now_ms: now
        })
        .is_err());
    t.run(WriteOp::DeleteExpired {
        path: "/t".into(),
        now_ms: now + 1_001,
    })
    .unwrap();
}

#[test]
fn apply_refuses_a_path_longer_than_the_codec_accepts() {
    use datatree::CreateTxn;
    let mut tree = DataTree::new();
    let path = format!("/{}", "a".repeat(64 * 1024));
    let txn = Txn {
        zxid: 1,
        time_ms: 0,
        op: TxnOp::Create(CreateTxn {
            path: path.clone(),
            data: bytes::Bytes::new(),
            acl: Acl::open_unsafe(),
            kind: NodeKind::Persistent,
            owner: SessionId(0),
            ttl_ms: 0,
            parent_creates: 1,
        }),
    };
    let before = tree.digest();
    assert!(tree.apply(&txn).is_err());
    assert!(!tree.contains(&path));
    assert_eq!(tree.digest(), before, "a refused txn changes nothing");
}

#[test]
fn acl_versions_survive_rollback_delete_and_snapshots() {
    use datatree::CreateTxn;
    let mut tree = DataTree::new();
    let mut zxid = 0;
    let mut apply = |tree: &mut DataTree, op: TxnOp| {
        zxid += 1;
        tree.apply(&Txn {
            zxid,
            time_ms: 7,
            op,
        })
    };
    let create = |path: &str, parent_creates| {
        TxnOp::Create(CreateTxn {
            path: path.into(),
            data: Bytes::new(),
            acl: Acl::open_unsafe(),
            kind: NodeKind::Persistent,
            owner: SessionId(0),
            ttl_ms: 0,
            parent_creates,
        })
    };
    let set_acl = |path: &str, version| TxnOp::SetAcl {
        path: path.into(),
        acl: Acl::read_unsafe(),
        version,
    };
    apply(&mut tree, create("/a", 1)).unwrap();
    apply(&mut tree, create("/b", 2)).unwrap();
    apply(&mut tree, set_acl("/a", 1)).unwrap();
    apply(&mut tree, set_acl("/a", 2)).unwrap();
    assert_eq!(tree.stat("/a").unwrap().aversion, 2);
    assert_eq!(tree.stat("/b").unwrap().aversion, 0);
    assert_eq!(tree.stat("/zookeeper/config").unwrap().aversion, -1);
    // A multi that sets an ACL, deletes the node, then fails: all of it is undone.
    let before = tree.digest();
    let failed = apply(
        &mut tree,
        TxnOp::Multi(vec![
            set_acl("/b", 1),
            TxnOp::Delete { path: "/a".into() },
            TxnOp::Delete {
                path: "/missing".into(),
            },
        ]),
    );
    assert!(failed.is_err());
    assert_eq!(tree.stat("/a").unwrap().aversion, 2);
    assert_eq!(tree.stat("/b").unwrap().aversion, 0);
    assert_eq!(tree.digest(), before);
    assert_eq!(tree.digest(), tree.full_digest());
    // Snapshots carry the versions.
    let mut buf = Vec::new();
    tree.serialize(&mut buf).unwrap();
    let back = DataTree::deserialize(&buf[..]).unwrap();
    assert_eq!(back.stat("/a").unwrap().aversion, 2);
    assert_eq!(back.stat("/zookeeper/config").unwrap().aversion, -1);
    assert_eq!(back.digest(), tree.digest());
    // Deleting the node forgets its version; a new node at the path starts at 0.
    apply(&mut tree, TxnOp::Delete { path: "/a".into() }).unwrap();
    apply(&mut tree, create("/a", 3)).unwrap();
    assert_eq!(tree.stat("/a").unwrap().aversion, 0);
    assert_eq!(tree.digest(), tree.full_digest());
}

#[test]
fn overlapping_in_flight_changes_survive_partial_applies_and_failed_multis() {
    let mut t = Local::new();
    t.create("/x", CreateMode::Persistent).unwrap();
    let ctx = |zxid| PrepContext {
        session: SessionId(1),
        auth: &[],
        zxid,
    };
    let set = |version| WriteOp::SetData {
        path: "/x".into(),
        data: Bytes::from_static(b"v"),
        version,
    };
    let base = t.zxid;
    let first = t.prep.prepare(&t.tree, &ctx(base + 1), &set(0)).unwrap();
    let second = t.prep.prepare(&t.tree, &ctx(base + 2), &set(1)).unwrap();
    // A multi that touches /x and then fails leaves the in-flight state as it was.
    let failing = WriteOp::Multi(vec![
        set(2),
        create_op("/x", b"", CreateMode::Persistent, 0),
    ]);
    assert!(t.prep.prepare(&t.tree, &ctx(base + 3), &failing).is_err());
    assert_eq!(t.prep.pending_paths(), 1);
    t.apply_prepared(base + 1, first);
    // The second setData is still in flight: the next one must expect version 2.
    assert_eq!(t.prep.pending_paths(), 1);
    let bad = t.prep.prepare(&t.tree, &ctx(base + 3), &set(1));
    assert_eq!(bad.unwrap_err().error().code(), -103);
    let third = t.prep.prepare(&t.tree, &ctx(base + 3), &set(2)).unwrap();
    for (z, op) in [(base + 2, second), (base + 3, third)] {
        t.apply_prepared(z, op);
    }
    assert_eq!(t.prep.pending_paths(), 0);
    assert_eq!(t.stat("/x").version, 3);
}

#[test]
fn apply_into_reuses_buffers_and_can_skip_changes() {
    let ops = |zxid: i64| {
        vec![
            Txn {
                zxid,
                time_ms: 1,
                op: TxnOp::Create(CreateTxn {
                    path: format!("/n{zxid}"),
                    data: Bytes::from_static(b"d"),
                    acl: Acl::open_unsafe(),
                    kind: NodeKind::Persistent,
                    owner: SessionId(0),
                    ttl_ms: 0,
                    // The root's stored create count starts at 0 (see initial_tree_...).
                    parent_creates: 1 + (zxid as i32 - 1) / 2,
                }),
            },
            Txn {
                zxid: zxid + 1,
                time_ms: 2,
                op: TxnOp::SetData {
                    path: format!("/n{zxid}"),
                    data: Bytes::from_static(b"e"),
                    version: 1,
                },
            },
        ]
    };
    let (mut a, mut b, mut c) = (DataTree::new(), DataTree::new(), DataTree::new());
    let (mut quiet, mut loud) = (Applied::default(), Applied::default());
    for z in [1, 3, 5] {
        for txn in ops(z) {
            let full = a.apply(&txn).unwrap();
            b.apply_into(&txn, &mut quiet, false).unwrap();
            c.apply_into(&txn, &mut loud, true).unwrap();
            assert_eq!(quiet.results, full.results);
            assert!(quiet.changes.is_empty());
            assert_eq!(loud, full);
        }
    }
    assert_eq!(a.digest(), b.digest());
    assert_eq!(a.digest(), c.digest());
    // A txn that does not fit leaves the tree and the buffers empty of it.
    let bad = Txn {
        zxid: 7,
        time_ms: 3,
        op: TxnOp::SetData {
            path: "/missing".into(),
            data: Bytes::new(),
            version: 1,
        },
    };
    assert!(b.apply_into(&bad, &mut quiet, false).is_err());
    assert!(quiet.results.is_empty() && quiet.changes.is_empty());
    assert_eq!(a.digest(), b.digest());
}

/// The follower's in-place setData gives the same result, Stat, changes and digest as
/// the owned txn, and a txn that does not fit (missing node, wrong version) fails the
/// same way on both paths, leaving the tree untouched.
#[test]
fn in_place_set_data_applies_exactly_as_the_owned_txn() {
    let mut a = Local::new();
    a.create_data("/n", b"old", CreateMode::Persistent).unwrap();
    let mut b = Local::new();
    b.create_data("/n", b"old", CreateMode::Persistent).unwrap();
    let txn = |path: &str, version| Txn {
        zxid: 7,
        time_ms: 99,
        op: TxnOp::SetData {
            path: path.into(),
            data: Bytes::from_static(b"new"),
            version,
        },
    };
    for (bad, why) in [
        (txn("/missing", 1), "missing node"),
        (txn("/n", 5), "version"),
    ] {
        let bytes = txn_codec::encode(&bad);
        let view = txn_codec::decode_set_data(&bytes).unwrap().unwrap();
        let before = (b.tree.digest(), b.tree.stat("/n"));
        let mut out = Applied::default();
        let in_place = b.tree.apply_set_data(&view, &mut out, true);
        let owned = a.tree.apply(&bad);
        assert_eq!(
            in_place.unwrap_err().code(),
            owned.unwrap_err().code(),
            "{why}"
        );
        assert_eq!((b.tree.digest(), b.tree.stat("/n")), before, "{why}");
        assert_eq!(b.tree.last_applied_zxid(), 1, "{why}");
        assert!(out.results.is_empty() && out.changes.is_empty(), "{why}");
    }
    let good = txn("/n", 1);
    let bytes = txn_codec::encode(&good);
    let view = txn_codec::decode_set_data(&bytes).unwrap().unwrap();
    // Without watchers (changes off) the results are the same and no change is kept.
    let mut quiet = b.tree.clone();
    let mut out = Applied::default();
    quiet.apply_set_data(&view, &mut out, false).unwrap();
    assert!(out.changes.is_empty());
    let mut out = Applied::default();
    b.tree.apply_set_data(&view, &mut out, true).unwrap();
    assert_eq!(out, a.tree.apply(&good).unwrap());
    assert_eq!(quiet.digest(), b.tree.digest());
    assert_eq!(b.tree.digest(), a.tree.digest());
    assert_eq!(b.tree.digest(), b.tree.full_digest());
    assert_eq!(b.tree.last_applied_zxid(), 7);
    assert_eq!(b.tree.data("/n").unwrap().0, Bytes::from_static(b"new"));
}

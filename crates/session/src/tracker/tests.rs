//! Unit tests of the tracker; the model-based proptest lives in `tests/model.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

const TICK_MS: u32 = 100;
const CONN: Owner = Owner {
    server_id: 1,
    connection_id: 1,
};
const CONN2: Owner = Owner {
    server_id: 1,
    connection_id: 2,
};
const REMOTE: Owner = Owner {
    server_id: 2,
    connection_id: 9,
};

fn secret() -> PasswordSecret {
    PasswordSecret::from_seed(99)
}

fn tracker(server_id: u64, role: Role, local: bool) -> SessionTracker {
    let mut c = SessionConfig::new(server_id, TICK_MS);
    c.local_sessions_enabled = local;
    SessionTracker::new(c, secret(), 1_000_000, role).unwrap()
}

/// Opens and commits a global session on `t`, returning its id.
fn committed(t: &mut SessionTracker, timeout_ms: u32, owner: Owner, now: u64) -> SessionId {
    let o = t
        .open_session(timeout_ms, SessionKind::Global, owner, now)
        .unwrap();
    assert!(t.apply_create(o.id, o.timeout_ms, now));
    o.id
}

#[test]
fn new_rejects_bad_config() {
    let c = SessionConfig::new(300, TICK_MS);
    assert!(matches!(
        SessionTracker::new(c, secret(), 0, Role::Leader),
        Err(ConfigError::ServerIdTooLarge { .. })
    ));
    let c = SessionConfig::new(1, 0);
    assert!(SessionTracker::new(c, secret(), 0, Role::Leader).is_err());
}

#[test]
fn open_global_negotiates_and_asks_for_create_txn() {
    let mut t = tracker(3, Role::Leader, false);
    let o = t
        .open_session(5_000, SessionKind::Global, CONN, 10)
        .unwrap();
    assert_eq!(o.timeout_ms, 2_000);
    assert_eq!(o.id.server_byte(), 3);
    assert_eq!(
        o.submit,
        Some(SessionTxn::Create {
            id: o.id,
            timeout_ms: 2_000
        })
    );
    assert!(secret().verify(o.id, o.password.as_bytes()));
    // Tracked on the leader before commit (ZooKeeper tracks at prep), not in the table.
    assert_eq!(t.expiry_tick(o.id), Some(10 + 1 + 20));
    assert!(!t.table().contains(o.id));
    let o2 = t.open_session(0, SessionKind::Global, CONN2, 10).unwrap();
    assert_ne!(o.id, o2.id);
    assert_eq!(o2.timeout_ms, 200);
}

#[test]
fn generated_ids_skip_sessions_already_live() {
    let mut probe = SessionIdGenerator::new(1, 1_000_000).unwrap();
    let first = probe.next_id();
    let mut t = tracker(1, Role::Leader, false);
    t.install_table([(first, 200)].into_iter().collect());
    let o = t.open_session(200, SessionKind::Global, CONN, 0).unwrap();
    assert_ne!(o.id, first);
}

#[test]
fn local_sessions_need_to_be_enabled() {
    let mut t = tracker(1, Role::Leader, false);
    assert_eq!(
        t.open_session(200, SessionKind::Local, CONN, 0),
        Err(SessionError::LocalSessionsDisabled)
    );
}

#[test]
fn touch_moves_to_later_bucket_and_bucket_expires_whole() {
    let mut t = tracker(1, Role::Leader, false);
    let a = committed(&mut t, 200, CONN, 0);
    let b = committed(&mut t, 200, CONN2, 0);
    let c = committed(&mut t, 400, REMOTE, 0);
    assert_eq!(t.expiry_tick(a), Some(3));
    assert_eq!(t.expiry_tick(c), Some(5));
    t.touch(b, 1).unwrap();
    assert_eq!(t.expiry_tick(b), Some(4));
    assert_eq!(t.next_expiry_tick(), Some(3));
    assert!(t.expire_due(2).is_empty());
    assert_eq!(
        t.expire_due(3),
        vec![Expired::ProposeClose(SessionTxn::Close { id: a })]
    );
    // Skipped ticks: buckets 4 and 5 both come out, in bucket order.
    assert_eq!(
        t.expire_due(7),
        vec![
            Expired::ProposeClose(SessionTxn::Close { id: b }),
            Expired::ProposeClose(SessionTxn::Close { id: c }),
        ]
    );
}

#[test]
fn expiring_session_is_closing_until_close_applies() {
    let mut t = tracker(1, Role::Leader, false);
    let a = committed(&mut t, 200, CONN, 0);
    assert_eq!(t.expire_due(3).len(), 1);
    assert!(t.is_closing(a));
    assert_eq!(t.touch(a, 3), Err(SessionError::SessionExpired(a)));
    assert_eq!(
        t.check_request(a, CONN),
        Err(SessionError::SessionExpired(a))
    );
    assert_eq!(
        t.request_close(a, CONN),
        Err(SessionError::SessionExpired(a))
    );
    // Expired once only: the close txn is proposed once.
    assert!(t.expire_due(100).is_empty());
    // Never a local delete: still in the table until the txn applies.
    assert!(t.table().contains(a));
    assert!(t.apply_close(a));
    assert!(!t.apply_close(a));
    assert!(!t.is_live(a) && !t.is_closing(a));
    assert_eq!(t.touch(a, 4), Err(SessionError::UnknownSession(a)));
}

#[test]
fn request_close_marks_closing_and_submits_txn() {
    let mut t = tracker(1, Role::Leader, true);
    let g = committed(&mut t, 200, CONN, 0);
    assert_eq!(
        t.request_close(g, CONN2),
        Err(SessionError::SessionMoved(g))
    );
    assert_eq!(
        t.request_close(g, CONN),
        Ok(CloseAction::Submit(SessionTxn::Close { id: g }))
    );
    assert!(t.is_closing(g));
    assert_eq!(t.expiry_tick(g), None);
    let l = t
        .open_session(200, SessionKind::Local, CONN2, 0)
        .unwrap()
        .id;
    assert_eq!(t.request_close(l, CONN2), Ok(CloseAction::ClosedLocally));
    assert!(!t.is_live(l));
    assert_eq!(t.local_session_count(), 0);
}

#[test]
fn owner_is_claimed_then_enforced() {
    let mut t = tracker(1, Role::Leader, false);
    let a = committed(&mut t, 200, CONN, 0);
    assert_eq!(t.check_request(a, CONN), Ok(()));
    assert_eq!(
        t.check_request(a, CONN2),
        Err(SessionError::SessionMoved(a))
    );
    // A session the leader learned from the log has no owner: first user claims it.
    assert!(t.apply_create(SessionId(77), 200, 0));
    assert_eq!(t.check_request(SessionId(77), REMOTE), Ok(()));
    assert_eq!(
        t.check_request(SessionId(77), CONN),
        Err(SessionError::SessionMoved(SessionId(77)))
    );
    assert_eq!(
        t.check_request(SessionId(78), CONN),
        Err(SessionError::UnknownSession(SessionId(78)))
    );
}

#[test]
fn learner_reports_touches_and_never_expires_globals() {
    let mut l = tracker(2, Role::Learner, false);
    let o = l.open_session(200, SessionKind::Global, REMOTE, 0).unwrap();
    assert_eq!(l.drain_touched(), vec![o.id]);
    assert!(l.drain_touched().is_empty());
    l.apply_create(o.id, o.timeout_ms, 0);
    assert_eq!(l.expiry_tick(o.id), None);
    assert!(l.expire_due(1_000_000).is_empty());
    l.touch(o.id, 5).unwrap();
    l.touch(o.id, 6).unwrap();
    assert_eq!(l.drain_touched(), vec![o.id]);
    // A committed session of another server is in the table, not tracked here.
    assert!(l.apply_create(SessionId(5), 200, 0));
    assert_eq!(
        l.touch(SessionId(5), 1),
        Err(SessionError::UnknownSession(SessionId(5)))
    );
    assert_eq!(l.handle_touches([o.id], 1), Err(SessionError::NotLeader));
    assert_eq!(
        l.track_create(SessionId(6), 200, REMOTE, 0),
        Err(SessionError::NotLeader)
    );
}

#[test]
fn leader_applies_learner_touches() {
    let mut leader = tracker(1, Role::Leader, false);
    let mut learner = tracker(2, Role::Learner, false);
    let o = learner
        .open_session(200, SessionKind::Global, REMOTE, 0)
        .unwrap();
    let Some(SessionTxn::Create { id, timeout_ms }) = o.submit else {
        panic!("global session must submit a create");
    };
    leader.track_create(id, timeout_ms, REMOTE, 0).unwrap();
    for t in [&mut leader, &mut learner] {
        t.apply_create(id, timeout_ms, 0);
    }
    assert_eq!(leader.expiry_tick(id), Some(3));
    learner.touch(id, 2).unwrap();
    let unknown = SessionId(12345);
    let touched = learner.drain_touched();
    let refused = leader
        .handle_touches(touched.into_iter().chain([unknown]), 2)
        .unwrap();
    assert_eq!(refused, vec![unknown]);
    assert_eq!(leader.expiry_tick(id), Some(5));
    // The learner's connection holds it at the leader too.
    assert_eq!(leader.check_request(id, REMOTE), Ok(()));
}

#[test]
fn local_session_expires_locally_on_any_role() {
    for role in [Role::Leader, Role::Learner] {
        let mut t = tracker(1, role, true);
        let o = t.open_session(200, SessionKind::Local, CONN, 0).unwrap();
        assert_eq!(o.submit, None);
        assert!(t.drain_touched().is_empty());
        assert_eq!(t.local_session_count(), 1);
        t.touch(o.id, 1).unwrap();
        assert!(t.expire_due(3).is_empty());
        assert_eq!(t.expire_due(4), vec![Expired::Local(o.id)]);
        assert!(!t.is_live(o.id));
        assert!(!t.table().contains(o.id));
    }
}

#[test]
fn ephemeral_on_local_session_upgrades_first() {
    for role in [Role::Leader, Role::Learner] {
        let mut t = tracker(1, role, true);
        let o = t.open_session(300, SessionKind::Local, CONN, 0).unwrap();
        let g = committed(&mut t, 200, CONN2, 0);
        assert_eq!(
            t.check_ephemeral_create(g, CONN2),
            Ok(EphemeralCheck::Ready)
        );
        assert_eq!(
            t.check_ephemeral_create(o.id, CONN),
            Ok(EphemeralCheck::UpgradeFirst(SessionTxn::Create {
                id: o.id,
                timeout_ms: 300
            }))
        );
        // The upgrade is submitted: later ephemerals go right behind it.
        assert_eq!(
            t.check_ephemeral_create(o.id, CONN),
            Ok(EphemeralCheck::Ready)
        );
        assert_eq!(
            t.check_ephemeral_create(o.id, CONN2),
            Err(SessionError::SessionMoved(o.id))
        );
        t.drain_touched();
        assert!(t.apply_create(o.id, 300, 5));
        assert_eq!(t.local_session_count(), 0);
        match role {
            Role::Leader => assert_eq!(t.expiry_tick(o.id), Some(5 + 1 + 3)),
            Role::Learner => {
                assert_eq!(t.expiry_tick(o.id), None);
                assert_eq!(t.drain_touched(), vec![o.id]);
            }
        }
        // Now global: closing goes through a txn.
        assert_eq!(
            t.request_close(o.id, CONN),
            Ok(CloseAction::Submit(SessionTxn::Close { id: o.id }))
        );
    }
}

#[test]
fn reattach_checks_zxid_password_and_liveness() {
    let mut leader = tracker(1, Role::Leader, false);
    let a = committed(&mut leader, 200, CONN, 0);
    let pw = leader.password_for(a);
    let good = Reattach {
        id: a,
        password: pw.as_bytes(),
        last_zxid_seen: 50,
    };
    assert_eq!(
        leader.handle_reattach(good, 49, CONN2, 1),
        Err(SessionError::StaleServer {
            applied_zxid: 49,
            last_zxid_seen: 50
        })
    );
    let bad = Reattach {
        password: &[0u8; 16],
        ..good
    };
    assert_eq!(
        leader.handle_reattach(bad, 50, CONN2, 1),
        Err(SessionError::BadPassword(a))
    );
    assert_eq!(
        leader.handle_reattach(good, 50, CONN2, 1),
        Ok(Reattached {
            timeout_ms: 200,
            revalidate_with_leader: false
        })
    );
    assert_eq!(leader.expiry_tick(a), Some(4));
    assert_eq!(
        leader.check_request(a, CONN),
        Err(SessionError::SessionMoved(a))
    );
    assert_eq!(leader.check_request(a, CONN2), Ok(()));
    // Unknown or closing sessions cannot be re-attached.
    let ghost = SessionId(4242);
    let ghost_pw = leader.password_for(ghost);
    let ghost_req = Reattach {
        id: ghost,
        password: ghost_pw.as_bytes(),
        last_zxid_seen: 0,
    };
    assert_eq!(
        leader.handle_reattach(ghost_req, 0, CONN, 1),
        Err(SessionError::SessionExpired(ghost))
    );
    leader.expire_due(100);
    assert_eq!(
        leader.handle_reattach(good, 50, CONN, 100),
        Err(SessionError::SessionExpired(a))
    );
}

#[test]
fn move_to_learner_makes_old_connection_see_session_moved() {
    let mut leader = tracker(1, Role::Leader, false);
    let mut learner = tracker(2, Role::Learner, false);
    let a = committed(&mut leader, 200, CONN, 0);
    learner.apply_create(a, 200, 0);
    let pw = learner.password_for(a);
    let req = Reattach {
        id: a,
        password: pw.as_bytes(),
        last_zxid_seen: 7,
    };
    let r = learner.handle_reattach(req, 7, REMOTE, 1).unwrap();
    assert!(r.revalidate_with_leader);
    assert_eq!(learner.drain_touched(), vec![a]);
    assert_eq!(leader.handle_revalidate(a, REMOTE, 1), Ok(200));
    // A write still arriving over the old connection on the leader is refused.
    assert_eq!(
        leader.check_request(a, CONN),
        Err(SessionError::SessionMoved(a))
    );
    assert_eq!(leader.check_request(a, REMOTE), Ok(()));
    assert_eq!(learner.check_request(a, REMOTE), Ok(()));
    assert_eq!(
        learner.handle_revalidate(a, REMOTE, 1),
        Err(SessionError::NotLeader)
    );
    // The connection on the learner closes: the learner forgets it, the leader keeps it.
    assert!(!learner.detach(a, CONN));
    assert!(learner.detach(a, REMOTE));
    assert!(!learner.is_live(a));
    assert!(learner.table().contains(a));
    assert!(leader.detach(a, REMOTE));
    assert!(leader.is_live(a));
}

#[test]
fn revalidate_refuses_closing_and_unknown() {
    let mut leader = tracker(1, Role::Leader, false);
    let a = committed(&mut leader, 200, CONN, 0);
    assert_eq!(leader.request_close(a, CONN).map(|_| ()), Ok(()));
    assert_eq!(
        leader.handle_revalidate(a, REMOTE, 1),
        Err(SessionError::SessionExpired(a))
    );
    assert_eq!(
        leader.handle_revalidate(SessionId(3), REMOTE, 1),
        Err(SessionError::SessionExpired(SessionId(3)))
    );
}

#[test]
fn local_session_reattaches_only_where_it_lives() {
    let mut t = tracker(1, Role::Learner, true);
    let o = t.open_session(200, SessionKind::Local, CONN, 0).unwrap();
    assert!(t.detach(o.id, CONN));
    assert!(t.is_live(o.id));
    let req = Reattach {
        id: o.id,
        password: o.password.as_bytes(),
        last_zxid_seen: 0,
    };
    let r = t.handle_reattach(req, 0, CONN2, 1).unwrap();
    assert!(!r.revalidate_with_leader);
    let mut elsewhere = tracker(2, Role::Learner, true);
    assert_eq!(
        elsewhere.handle_reattach(req, 0, REMOTE, 1),
        Err(SessionError::SessionExpired(o.id))
    );
}

#[test]
fn new_leader_gives_every_session_a_full_timeout() {
    // Old leader: session touched at tick 10, due at 13. It fails; a learner that has
    // the same table becomes leader at tick 12.
    let mut old = tracker(1, Role::Leader, false);
    let mut new = tracker(2, Role::Learner, false);
    let a = committed(&mut old, 200, CONN, 0);
    let b = committed(&mut old, 2_000, CONN2, 0);
    new.apply_create(a, 200, 0);
    new.apply_create(b, 2_000, 0);
    old.touch(a, 10).unwrap();
    assert_eq!(old.expiry_tick(a), Some(13));
    new.become_leader(12);
    assert_eq!(new.role(), Role::Leader);
    assert_eq!(new.expiry_tick(a), Some(15));
    assert_eq!(new.expiry_tick(b), Some(33));
    // Not early: nothing at 14 ...
    assert!(new.expire_due(14).is_empty());
    // ... but a dead session does expire, one full timeout after the change.
    assert_eq!(
        new.expire_due(15),
        vec![Expired::ProposeClose(SessionTxn::Close { id: a })]
    );
    assert_eq!(new.check_request(b, CONN2), Ok(()));
}

#[test]
fn become_leader_drops_uncommitted_and_clears_closing() {
    let mut t = tracker(1, Role::Learner, true);
    let pending = t
        .open_session(200, SessionKind::Global, CONN, 0)
        .unwrap()
        .id;
    let up = t
        .open_session(200, SessionKind::Local, CONN2, 0)
        .unwrap()
        .id;
    assert!(matches!(
        t.check_ephemeral_create(up, CONN2),
        Ok(EphemeralCheck::UpgradeFirst(_))
    ));
    let g = SessionId(1);
    t.apply_create(g, 200, 0);
    t.become_leader(5);
    // The pending create may be lost: the client must start over.
    assert!(!t.is_live(pending));
    // The upgrade did not commit: the session is local again and asks again.
    assert!(matches!(
        t.check_ephemeral_create(up, CONN2),
        Ok(EphemeralCheck::UpgradeFirst(_))
    ));
    assert_eq!(t.expiry_tick(g), Some(8));
    t.expire_due(8);
    assert!(t.is_closing(g));
    // A close proposed by a leader that lost leadership may be lost too.
    t.become_learner(9);
    t.become_leader(9);
    assert!(t.is_live(g));
    assert_eq!(t.expiry_tick(g), Some(12));
}

#[test]
fn become_learner_keeps_only_own_connections() {
    let mut t = tracker(1, Role::Leader, true);
    let mine = committed(&mut t, 200, CONN, 0);
    let theirs = committed(&mut t, 200, REMOTE, 0);
    let ownerless = SessionId(5);
    t.apply_create(ownerless, 200, 0);
    let local = t
        .open_session(200, SessionKind::Local, CONN2, 0)
        .unwrap()
        .id;
    t.become_learner(10);
    assert_eq!(t.role(), Role::Learner);
    assert!(t.is_live(mine));
    assert!(!t.is_live(theirs));
    assert!(!t.is_live(ownerless));
    assert!(t.drain_touched().is_empty());
    assert_eq!(t.expiry_tick(mine), None);
    t.touch(mine, 11).unwrap();
    assert_eq!(t.drain_touched(), vec![mine]);
    assert_eq!(
        t.touch(theirs, 11),
        Err(SessionError::UnknownSession(theirs))
    );
    assert_eq!(t.expiry_tick(local), Some(13));
    assert_eq!(t.table().len(), 3);
}

#[test]
fn install_table_drops_globals_that_are_gone() {
    let mut t = tracker(1, Role::Leader, false);
    let a = committed(&mut t, 200, CONN, 0);
    let b = committed(&mut t, 200, CONN2, 0);
    t.install_table([(b, 200)].into_iter().collect());
    assert!(!t.is_live(a));
    assert_eq!(t.expiry_tick(a), None);
    assert!(t.is_live(b));
}

#[test]
fn error_codes_match_zookeeper() {
    let id = SessionId(1);
    assert_eq!(SessionError::SessionExpired(id).zk_code(), -112);
    assert_eq!(SessionError::BadPassword(id).zk_code(), -112);
    assert_eq!(SessionError::SessionMoved(id).zk_code(), -118);
    assert_eq!(SessionError::UnknownSession(id).zk_code(), -12);
    assert_eq!(
        SessionError::StaleServer {
            applied_zxid: 1,
            last_zxid_seen: 2
        }
        .zk_code(),
        -4
    );
}

#[test]
fn orphaned_ephemeral_owners_get_a_close_txn() {
    let mut t = tracker(1, Role::Leader, false);
    let live = committed(&mut t, 200, CONN, 0);
    let pending = t
        .open_session(200, SessionKind::Global, CONN2, 0)
        .unwrap()
        .id;
    let orphan = SessionId(0x0200_0000_0000_0005);
    let owners = [orphan, live, pending, orphan];
    assert_eq!(
        t.close_orphans(owners),
        Ok(vec![SessionTxn::Close { id: orphan }])
    );
    assert!(!t.apply_close(orphan));
    let learner = tracker(2, Role::Learner, false);
    assert_eq!(
        learner.close_orphans([orphan]),
        Err(SessionError::NotLeader)
    );
}

#[test]
fn rebuild_expiry_is_leader_only_and_resets_deadlines() {
    let mut t = tracker(1, Role::Leader, false);
    let a = committed(&mut t, 200, CONN, 0);
    assert_eq!(t.expiry_tick(a), Some(3));
    assert_eq!(t.rebuild_expiry(7), Ok(()));
    assert_eq!(t.expiry_tick(a), Some(10));
    // Owners survive a rebuild on the same leader.
    assert_eq!(
        t.check_request(a, CONN2),
        Err(SessionError::SessionMoved(a))
    );
    let mut l = tracker(2, Role::Learner, false);
    assert_eq!(l.rebuild_expiry(7), Err(SessionError::NotLeader));
}

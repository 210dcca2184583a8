#![allow(clippy::unwrap_used, clippy::expect_used)]
//! ACL authentication and quotas through the public API on a 3-node cluster: digest
//! addAuth, CREATOR_ALL_ACL, the super digest, auth replayed after the session
//! moves, writes forwarded by followers checked with the caller's ids, read
//! permissions, quotas.

mod common;

use common::{open, wait_disconnected};
use std::time::Duration;

use ensemble::auth::digest_id;
use ensemble::ops::{ReadOp, ReadResult};
use ensemble::{Acl, Cluster, CreateMode, Error, Id, Perms};

const T: Duration = Duration::from_secs(10);

fn code<T: std::fmt::Debug>(r: Result<T, Error>) -> i32 {
    r.unwrap_err().code()
}

fn digest_acl(user_password: &str, perms: Perms) -> Acl {
    Acl {
        perms,
        id: Id::new("digest", digest_id(user_password).unwrap()),
    }
}

fn followers(cluster: &Cluster, leader: u64) -> Vec<u64> {
    cluster.ids().into_iter().filter(|i| *i != leader).collect()
}

/// The owner works through a follower (its writes are forwarded and checked on the
/// leader with its ids); strangers on every node get NoAuth.
#[test]
fn digest_auth_guards_reads_and_writes_through_every_node() {
    let cluster = common::cluster(3).start().unwrap();
    let leader = cluster.wait_for_leader(T).unwrap();
    let fs = followers(&cluster, leader);
    let owner = cluster.client(fs[0]).unwrap();
    owner.add_auth("digest", b"alice:pw").unwrap();
    let acl = vec![digest_acl("alice:pw", Perms::ALL)];
    owner
        .create("/private", &b"secret"[..], &acl, CreateMode::Persistent)
        .unwrap();
    owner
        .create("/private/c", &b""[..], &acl, CreateMode::Persistent)
        .unwrap();
    owner.set_data("/private", &b"v2"[..], -1).unwrap();
    assert_eq!(&owner.get_data("/private", false).unwrap().0[..], b"v2");
    assert_eq!(owner.get_children("/private", false).unwrap(), vec!["c"]);
    assert_eq!(owner.get_acl("/private").unwrap().0, acl);
    assert_eq!(owner.get_all_children_number("/private").unwrap(), 1);

    for id in [leader, fs[0], fs[1]] {
        let other = cluster.client(id).unwrap();
        other.sync("/").unwrap();
        // A wrong password authenticates (to another id) but grants nothing here.
        other.add_auth("digest", b"alice:wrong").unwrap();
        assert_eq!(code(other.set_data("/private", &b"x"[..], -1)), -102);
        assert_eq!(code(other.delete("/private/c", -1)), -102);
        assert_eq!(
            code(other.create("/private/d", &b""[..], &open(), CreateMode::Persistent)),
            -102
        );
        assert_eq!(code(other.set_acl("/private", &open(), -1)), -102);
        assert_eq!(code(other.get_data("/private", false)), -102);
        assert_eq!(code(other.get_children("/private", false)), -102);
        assert_eq!(code(other.get_all_children_number("/private")), -102);
        assert_eq!(code(other.get_acl("/private")), -102);
        // exists needs no permission; a missing node is NoNode, not NoAuth.
        assert!(other.exists("/private", false).unwrap().is_some());
        assert_eq!(code(other.get_data("/private/none", false)), -101);
        // multiRead: each read is checked on its own.
        let r = other
            .multi_read(vec![
                ReadOp::GetData {
                    path: "/private".into(),
                },
                ReadOp::GetChildren { path: "/".into() },
            ])
            .unwrap();
        assert_eq!(r[0].as_ref().unwrap_err().code(), -102);
        assert!(matches!(r[1], Ok(ReadResult::Children(..))));
        // Unknown schemes fail with AuthFailed; the session carries on.
        assert_eq!(code(other.add_auth("kerberos", b"x")), -115);
        assert_eq!(code(other.add_auth("digest", b"no-colon")), -115);
        assert!(other.exists("/", false).unwrap().is_some());
        other.close().unwrap();
    }
    // Nothing a stranger tried took effect.
    assert_eq!(&owner.get_data("/private", false).unwrap().0[..], b"v2");
    owner.delete("/private/c", -1).unwrap();
    owner.delete("/private", -1).unwrap();
}

/// getACL needs READ or ADMIN; without ADMIN digest ids are shown as `user:x`.
#[test]
fn get_acl_redacts_digests_without_admin() {
    let cluster = common::cluster(3).start().unwrap();
    let leader = cluster.wait_for_leader(T).unwrap();
    let owner = cluster.client(leader).unwrap();
    owner.add_auth("digest", b"alice:pw").unwrap();
    let acl = vec![
        digest_acl("alice:pw", Perms::ALL),
        Acl {
            perms: Perms::READ,
            id: Id::anyone(),
        },
    ];
    owner
        .create("/shown", &b""[..], &acl, CreateMode::Persistent)
        .unwrap();
    let other = cluster.client(followers(&cluster, leader)[0]).unwrap();
    other.sync("/").unwrap();
    let seen = other.get_acl("/shown").unwrap().0;
    assert_eq!(seen[0].id, Id::new("digest", "alice:x"));
    assert_eq!(seen[1], acl[1]);
    assert_eq!(owner.get_acl("/shown").unwrap().0, acl);
    // ADMIN alone is enough to see it whole.
    owner
        .create(
            "/admin-only",
            &b""[..],
            &[
                digest_acl("alice:pw", Perms::ALL),
                Acl {
                    perms: Perms::ADMIN,
                    id: Id::anyone(),
                },
            ],
            CreateMode::Persistent,
        )
        .unwrap();
    other.sync("/").unwrap();
    assert_eq!(other.get_acl("/admin-only").unwrap().0[0], acl[0]);
    assert_eq!(code(other.get_data("/admin-only", false)), -102);
}

#[test]
fn creator_all_expands_to_the_callers_ids() {
    let cluster = common::cluster(3).start().unwrap();
    let leader = cluster.wait_for_leader(T).unwrap();
    let f = followers(&cluster, leader)[0];
    let c = cluster.client(f).unwrap();
    assert_eq!(
        code(c.create(
            "/mine",
            &b""[..],
            &Acl::creator_all(),
            CreateMode::Persistent
        )),
        -114
    );
    c.add_auth("digest", b"bob:pw").unwrap();
    c.create(
        "/mine",
        &b"b"[..],
        &Acl::creator_all(),
        CreateMode::Persistent,
    )
    .unwrap();
    assert_eq!(
        c.get_acl("/mine").unwrap().0,
        vec![digest_acl("bob:pw", Perms::ALL)]
    );
    let other = cluster.client(leader).unwrap();
    other.add_auth("digest", b"carol:pw").unwrap();
    assert_eq!(code(other.get_data("/mine", false)), -102);
    assert_eq!(code(other.set_data("/mine", &b"x"[..], -1)), -102);
    // The same user on another session has the same id.
    let again = cluster.client(leader).unwrap();
    again.add_auth("digest", b"bob:pw").unwrap();
    again.set_data("/mine", &b"again"[..], -1).unwrap();
}

#[test]
fn super_digest_bypasses_every_acl() {
    let cluster = common::cluster(3)
        .super_digest(digest_id("admin:s3cret").unwrap())
        .start()
        .unwrap();
    let leader = cluster.wait_for_leader(T).unwrap();
    let owner = cluster.client(leader).unwrap();
    owner.add_auth("digest", b"alice:pw").unwrap();
    owner
        .create(
            "/locked",
            &b"x"[..],
            &Acl::creator_all(),
            CreateMode::Persistent,
        )
        .unwrap();
    owner
        .create(
            "/locked/c",
            &b""[..],
            &Acl::creator_all(),
            CreateMode::Persistent,
        )
        .unwrap();
    let admin = cluster.client(followers(&cluster, leader)[0]).unwrap();
    // A wrong super password is only an ordinary digest id.
    admin.add_auth("digest", b"admin:wrong").unwrap();
    admin.sync("/").unwrap();
    assert_eq!(code(admin.get_data("/locked", false)), -102);
    admin.add_auth("digest", b"admin:s3cret").unwrap();
    assert_eq!(&admin.get_data("/locked", false).unwrap().0[..], b"x");
    assert_eq!(admin.get_children("/locked", false).unwrap(), vec!["c"]);
    admin.set_data("/locked", &b"by super"[..], -1).unwrap();
    admin.delete("/locked/c", -1).unwrap();
    admin.set_acl("/locked", &open(), -1).unwrap();
    let anyone = cluster.client(leader).unwrap();
    anyone.sync("/").unwrap();
    assert_eq!(
        &anyone.get_data("/locked", false).unwrap().0[..],
        b"by super"
    );
}

#[test]
fn auth_is_replayed_after_the_session_moves() {
    let cluster = Cluster::builder(3).start().unwrap();
    let leader = cluster.wait_for_leader(T).unwrap();
    let f = followers(&cluster, leader)[0];
    let c = cluster.client(f).unwrap();
    c.add_auth("digest", b"dora:pw").unwrap();
    c.create(
        "/dora",
        &b"1"[..],
        &Acl::creator_all(),
        CreateMode::Persistent,
    )
    .unwrap();
    cluster.partition(f);
    wait_disconnected(&c);
    assert!(c.wait_connected(T));
    assert_ne!(c.node_id(), f);
    // The first requests after the move already run with the replayed ids.
    let w = c.set_data_async("/dora", &b"2"[..], -1);
    let r = c.get_data_async("/dora", false);
    w.wait().unwrap();
    assert_eq!(&r.wait().unwrap().0[..], b"2");
    assert_eq!(
        c.get_children("/dora", false).unwrap(),
        Vec::<String>::new()
    );
    cluster.heal(f);
}

#[test]
fn quotas_are_set_enforced_and_removed_through_the_client() {
    let cluster = common::cluster(3).start().unwrap();
    let leader = cluster.wait_for_leader(T).unwrap();
    let f = followers(&cluster, leader)[0];
    let c = cluster.client(f).unwrap();
    assert_eq!(code(c.set_quota("/q", 3, -1)), -101);
    c.create("/q", &b""[..], &open(), CreateMode::Persistent)
        .unwrap();
    assert_eq!(c.quota("/q").unwrap(), None);
    c.set_quota("/q", 3, -1).unwrap();
    c.create("/q/a", &b"12"[..], &open(), CreateMode::Persistent)
        .unwrap();
    c.create("/q/b", &b"345"[..], &open(), CreateMode::Persistent)
        .unwrap();
    assert_eq!(
        code(c.create("/q/c", &b""[..], &open(), CreateMode::Persistent)),
        -125
    );
    let info = c.quota("/q").unwrap().unwrap();
    assert_eq!((info.limit.count, info.limit.bytes), (3, -1));
    assert_eq!((info.count, info.bytes), (3, 5));
    // The same through the leader.
    let l = cluster.client(leader).unwrap();
    l.sync("/").unwrap();
    assert_eq!(l.quota("/q").unwrap(), Some(info));
    // A byte limit.
    l.set_quota("/q", -1, 6).unwrap();
    assert_eq!(code(l.set_data("/q/a", &b"1234"[..], -1)), -125);
    l.set_data("/q/a", &b"1"[..], -1).unwrap();
    l.remove_quota("/q").unwrap();
    c.sync("/").unwrap();
    assert_eq!(c.quota("/q").unwrap(), None);
    c.create(
        "/q/c",
        &b"much more data"[..],
        &open(),
        CreateMode::Persistent,
    )
    .unwrap();
    assert_eq!(code(c.remove_quota("/q")), -101);
    // Quotas are admin operations: ADMIN on the node.
    c.add_auth("digest", b"erin:pw").unwrap();
    c.create(
        "/guarded",
        &b""[..],
        &[
            digest_acl("erin:pw", Perms::ALL),
            Acl {
                perms: Perms::READ | Perms::WRITE | Perms::CREATE,
                id: Id::anyone(),
            },
        ],
        CreateMode::Persistent,
    )
    .unwrap();
    l.sync("/").unwrap();
    assert_eq!(code(l.set_quota("/guarded", 1, -1)), -102);
    c.set_quota("/guarded", 2, -1).unwrap();
    assert_eq!(code(l.remove_quota("/guarded")), -102);
    c.remove_quota("/guarded").unwrap();
}

//! Scenario tests, readable like the protocol papers: each builds a small cluster,
//! scripts ticks, deliveries, drops, partitions, crashes and restarts, and checks the
//! outcome. Every step also runs the invariant checkers of `common::invariants`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use bytes::Bytes;
use common::{Cluster, Disk};
use zab_core::{Message, Phase, Role, ServerId, Zxid};

fn s(id: u64) -> ServerId {
    ServerId(id)
}

fn serving(c: &Cluster) -> bool {
    c.leader().is_some()
        && c.nodes
            .values()
            .filter(|n| n.core.is_some())
            .all(|n| n.status().is_some_and(|st| st.phase == Phase::Broadcast))
}

/// Runs fault-free rounds until every live server serves one leader.
fn elect(c: &mut Cluster) -> ServerId {
    c.run_until(100, "every live server in broadcast", serving);
    c.leader().unwrap()
}

/// Writes through the leader and waits until every live server applied it.
fn commit_write(c: &mut Cluster) -> Bytes {
    let leader = elect(c);
    let w = c.write(leader).unwrap();
    let w2 = w.clone();
    c.run_until(50, "write applied everywhere", move |c| c.all_applied(&w2));
    w
}

fn applied_zxids(c: &Cluster, id: u64) -> Vec<Zxid> {
    c.nodes[&s(id)].applied.iter().map(|e| e.zxid).collect()
}

fn disk_zxids(c: &Cluster, id: u64) -> Vec<Zxid> {
    c.nodes[&s(id)].disk.log.iter().map(|e| e.zxid).collect()
}

fn delivered(c: &Cluster, from: u64, to: u64, kind: &str) -> bool {
    c.delivered
        .iter()
        .any(|(f, t, k)| *f == from && *t == to && *k == kind)
}

fn z(e: u32, n: u32) -> Zxid {
    Zxid::new(e, n)
}

// ---- election ----

#[test]
fn election_with_equal_logs_picks_the_highest_id() {
    let mut c = Cluster::new(1, 3, 0, |_| {});
    assert_eq!(elect(&mut c), s(3));
    assert_eq!(c.status(3).leader_epoch, 1);
    assert_eq!(c.status(3).synced_learners, 2);
    assert_eq!(c.status(1).leader, Some(s(3)));
}

#[test]
fn election_with_unequal_logs_picks_the_longest_history() {
    let disks = BTreeMap::from([
        (1, Disk::with_log(1, 1, &[(1, 1), (1, 2), (1, 3)])),
        (2, Disk::with_log(1, 1, &[(1, 1)])),
        (3, Disk::with_log(1, 1, &[(1, 1), (1, 2)])),
    ]);
    let mut c = Cluster::from_disks(1, 3, 0, disks, |_| {});
    assert_eq!(elect(&mut c), s(1));
    // The whole initial history is committed when the epoch is established.
    for id in 1..=3 {
        assert_eq!(applied_zxids(&c, id), vec![z(1, 1), z(1, 2), z(1, 3)]);
    }
    assert_eq!(c.status(1).leader_epoch, 2);
}

#[test]
fn election_orders_by_current_epoch_before_zxid() {
    // Server 2 acknowledged NEWLEADER of epoch 2 (whose history dropped 1:2); server 1
    // still has the longer, older history and must be truncated, not followed.
    let disks = BTreeMap::from([
        (1, Disk::with_log(1, 1, &[(1, 1), (1, 2)])),
        (2, Disk::with_log(2, 2, &[(1, 1)])),
        (3, Disk::with_log(2, 1, &[(1, 1)])),
    ]);
    let mut c = Cluster::from_disks(1, 3, 0, disks, |_| {});
    assert_eq!(elect(&mut c), s(2));
    assert!(delivered(&c, 2, 1, "TRUNC"));
    assert_eq!(disk_zxids(&c, 1), vec![z(1, 1)]);
    assert_eq!(c.status(2).leader_epoch, 3);
}

#[test]
fn restarted_follower_rejoins_the_leader_without_an_election() {
    let mut c = Cluster::new(2, 3, 0, |_| {});
    let leader = elect(&mut c);
    commit_write(&mut c);
    let epoch = c.status(leader.0).leader_epoch;
    let follower = if leader == s(1) { 2 } else { 1 };
    c.crash(s(follower));
    commit_write(&mut c);
    commit_write(&mut c);
    c.restart(s(follower));
    elect(&mut c);
    assert_eq!(c.leader(), Some(leader), "the leader kept its role");
    assert_eq!(c.status(leader.0).leader_epoch, epoch, "no new epoch");
    assert_eq!(applied_zxids(&c, follower), applied_zxids(&c, leader.0));
}

// ---- sync ----

/// Three servers; `lagger` is down while `writes` txns commit, then comes back.
fn lagging_follower(window: usize, writes: usize) -> (Cluster, ServerId, u64) {
    lagging_follower_with(writes, 0, move |cfg| cfg.commit_log_max = window)
}

/// `lagging_follower` with any configuration, and `read_fail_pct` of the leader's
/// log reads failing.
fn lagging_follower_with(
    writes: usize,
    read_fail_pct: u32,
    cfg: impl Fn(&mut zab_core::Config) + 'static,
) -> (Cluster, ServerId, u64) {
    let mut c = Cluster::new(3, 3, 0, cfg);
    c.read_fail_pct = read_fail_pct;
    let leader = elect(&mut c);
    commit_write(&mut c);
    let lagger = if leader == s(1) { 2 } else { 1 };
    c.crash(s(lagger));
    for _ in 0..writes {
        commit_write(&mut c);
    }
    c.restart(s(lagger));
    elect(&mut c);
    (c, leader, lagger)
}

#[test]
fn diff_sync_sends_only_the_missing_txns() {
    let (c, leader, lagger) = lagging_follower(100, 3);
    assert!(delivered(&c, leader.0, lagger, "DIFF"));
    assert!(!delivered(&c, leader.0, lagger, "SNAP"));
    assert_eq!(applied_zxids(&c, lagger), applied_zxids(&c, leader.0));
    assert_eq!(applied_zxids(&c, lagger).len(), 4);
}

#[test]
fn snap_sync_when_the_learner_is_behind_the_window() {
    let (c, leader, lagger) = lagging_follower(2, 5);
    assert!(delivered(&c, leader.0, lagger, "SNAP"));
    assert_eq!(applied_zxids(&c, lagger), applied_zxids(&c, leader.0));
    assert_eq!(
        c.nodes[&s(lagger)].disk.snapshot.0,
        c.status(leader.0).committed
    );
}

/// A learner behind the window, with `diff_from_log`: 3 entries per read, window 2.
fn behind_the_window(read_fail_pct: u32) -> (Cluster, ServerId, u64) {
    lagging_follower_with(20, read_fail_pct, |cfg| {
        cfg.commit_log_max = 2;
        cfg.sync_stream_step = 3;
        cfg.diff_from_log = true;
    })
}

#[test]
fn diff_from_the_log_when_the_learner_is_behind_the_window() {
    let (c, leader, lagger) = behind_the_window(0);
    assert!(!delivered(&c, leader.0, lagger, "SNAP"));
    // 20 txns behind in chunks of 3: several reads, each followed by a COMMIT.
    assert!(c.stats["log reads"] >= 6, "{:?}", c.stats);
    assert_eq!(applied_zxids(&c, lagger), applied_zxids(&c, leader.0));
    assert_eq!(applied_zxids(&c, lagger).len(), 21);
    assert_eq!(c.nodes[&s(lagger)].disk.snapshot.0, zab_core::Zxid::ZERO);
}

#[test]
fn a_failed_log_read_falls_back_on_a_snap() {
    let (c, leader, lagger) = behind_the_window(100);
    assert!(c.stats["log reads"] >= 1);
    assert!(delivered(&c, leader.0, lagger, "SNAP"));
    assert_eq!(applied_zxids(&c, lagger), applied_zxids(&c, leader.0));
}

#[test]
fn trunc_sync_drops_txns_the_new_leader_never_had_zk_1154() {
    // ZOOKEEPER-1154: the server with the highest zxid is absent at election. When it
    // returns, its uncommitted tail (1:2, 1:3) must go, not survive next to epoch 2.
    let disks = BTreeMap::from([
        (1, Disk::with_log(1, 1, &[(1, 1), (1, 2), (1, 3)])),
        (2, Disk::with_log(1, 1, &[(1, 1)])),
        (3, Disk::with_log(1, 1, &[(1, 1)])),
    ]);
    let mut c = Cluster::from_disks(4, 3, 0, disks, |_| {});
    c.crash(s(1));
    let leader = elect(&mut c);
    assert_eq!(leader, s(3));
    commit_write(&mut c);
    c.restart(s(1));
    elect(&mut c);
    assert!(delivered(&c, 3, 1, "TRUNC"));
    assert_eq!(disk_zxids(&c, 1), vec![z(1, 1), z(2, 1)]);
    assert_eq!(applied_zxids(&c, 1), vec![z(1, 1), z(2, 1)]);
}

#[test]
fn trunc_keeps_every_committed_txn_zk_1156() {
    // ZOOKEEPER-1156: truncation went too far and lost committed txns. 1:1 and 1:2
    // are committed (on all three); only 1:3 is extra on server 1.
    let disks = BTreeMap::from([
        (1, Disk::with_log(1, 1, &[(1, 1), (1, 2), (1, 3)])),
        (2, Disk::with_log(1, 1, &[(1, 1), (1, 2)])),
        (3, Disk::with_log(1, 1, &[(1, 1), (1, 2)])),
    ]);
    let mut c = Cluster::from_disks(5, 3, 0, disks, |_| {});
    c.crash(s(1));
    elect(&mut c);
    c.restart(s(1));
    elect(&mut c);
    let trunc = c.delivered.iter().any(|(_, t, k)| *t == 1 && *k == "TRUNC");
    assert!(trunc);
    assert_eq!(
        disk_zxids(&c, 1),
        vec![z(1, 1), z(1, 2)],
        "truncated exactly after 1:2"
    );
}

// ---- crashes during sync and broadcast ----

#[test]
fn leader_crash_at_each_step_of_sync_and_broadcast() {
    // Server 1 is down while two txns commit, comes back and syncs; the leader crashes
    // after k more message deliveries, for every k through sync and into broadcast.
    for k in 0..60 {
        let mut c = Cluster::new(100 + k as u64, 3, 0, |_| {});
        c.crash(s(1));
        let leader = elect(&mut c);
        commit_write(&mut c);
        commit_write(&mut c);
        c.restart(s(1));
        c.write(leader);
        for step in 0..k {
            if c.net.is_empty() {
                c.flush_all();
                for id in c.ids() {
                    c.tick(id);
                }
            }
            if !c.net.is_empty() {
                c.deliver_at(0);
            }
            if step % 3 == 0 {
                c.flush_all();
            }
            if step == k / 2 {
                c.write(leader);
            }
        }
        c.crash(leader);
        let marker = commit_write(&mut c);
        assert!(c.all_applied(&marker));
        c.restart(leader);
        elect(&mut c);
        commit_write(&mut c);
        let reference = applied_zxids(&c, 1);
        for id in 2..=3 {
            assert_eq!(applied_zxids(&c, id), reference, "k = {k}");
        }
    }
}

#[test]
fn leader_crash_right_after_snap_zk_3642() {
    // ZOOKEEPER-3642: the leader crashes right after sending SNAP. The learner's
    // install is atomic (old state or new state after a crash, never a mix).
    for learner_crashes_before_install_is_durable in [false, true] {
        let mut c = Cluster::new(6, 3, 0, |cfg| cfg.commit_log_max = 1);
        let leader = elect(&mut c);
        commit_write(&mut c);
        let lagger = if leader == s(1) { 2 } else { 1 };
        c.crash(s(lagger));
        for _ in 0..4 {
            commit_write(&mut c);
        }
        c.restart(s(lagger));
        // Deliver until the SNAP reached the learner, then kill the leader.
        for _ in 0..500 {
            if delivered(&c, leader.0, lagger, "SNAP") {
                break;
            }
            if c.net.is_empty() {
                c.flush_all();
                for id in c.ids() {
                    c.tick(id);
                }
            } else {
                c.deliver_at(0);
            }
        }
        assert!(delivered(&c, leader.0, lagger, "SNAP"));
        c.crash(leader);
        if learner_crashes_before_install_is_durable {
            c.crash(s(lagger));
            c.restart(s(lagger));
        }
        let marker = commit_write(&mut c);
        assert!(c.all_applied(&marker));
        c.restart(leader);
        elect(&mut c);
        let a = applied_zxids(&c, 1);
        assert_eq!(applied_zxids(&c, 2), a);
        assert_eq!(applied_zxids(&c, 3), a);
        assert_eq!(a.len(), 6);
    }
}

#[test]
fn a_new_leader_cannot_diff_sync_over_an_unsaved_snapshot_zk_3642() {
    // ZOOKEEPER-3642: the learner got SNAP, the leader died before NEWLEADER, a new
    // leader DIFF-synced the learner from the snapshot's zxid although the snapshot
    // was only in memory; a restart then lost everything up to it. Here the learner's
    // disk stalls right after SNAP: its ACKEPOCH for the new epoch waits for the
    // accepted-epoch save, which FIFO storage orders after the install, so no new
    // leader can sync it over the unsaved snapshot.
    let mut c = Cluster::new(16, 3, 0, |cfg| cfg.commit_log_max = 1);
    let leader = elect(&mut c);
    let lagger = if leader == s(1) { 2 } else { 1 };
    c.crash(s(lagger));
    for _ in 0..4 {
        commit_write(&mut c);
    }
    c.restart(s(lagger));
    c.frozen.insert(s(lagger));
    for _ in 0..500 {
        if delivered(&c, leader.0, lagger, "SNAP") {
            break;
        }
        if c.net.is_empty() {
            c.flush_all();
            for id in c.ids() {
                c.tick(id);
            }
        } else {
            c.deliver_at(0);
        }
    }
    assert!(delivered(&c, leader.0, lagger, "SNAP"));
    assert!(c.pending_ops(lagger) > 0, "the install is not durable");
    c.crash(leader);
    let mark = c.delivered.len();
    for _ in 0..40 {
        c.round();
    }
    let since = &c.delivered[mark..];
    assert!(!since
        .iter()
        .any(|(f, _, k)| *f == lagger && *k == "ACKEPOCH"));
    assert!(!since
        .iter()
        .any(|(_, t, k)| *t == lagger && ["DIFF", "TRUNC", "SNAP"].contains(k)));
    // The disk stays stalled until the crash: the install and everything after it are lost.
    c.crash(s(lagger));
    c.frozen.clear();
    c.restart(s(lagger));
    commit_write(&mut c);
    c.restart(leader);
    elect(&mut c);
    let a = applied_zxids(&c, 1);
    assert_eq!(applied_zxids(&c, 2), a);
    assert_eq!(applied_zxids(&c, 3), a);
    assert_eq!(a.len(), 5);
}

#[test]
fn no_ack_of_newleader_before_the_synced_txns_are_durable_zk_3911() {
    // ZOOKEEPER-3911: a learner acknowledged NEWLEADER before logging the DIFF
    // proposals; the leader then committed txns a crash erased from the learner.
    let mut c = Cluster::new(7, 3, 0, |_| {});
    let leader = elect(&mut c);
    let lagger = if leader == s(1) { 2u64 } else { 1 };
    c.crash(s(lagger));
    commit_write(&mut c);
    commit_write(&mut c);
    c.restart(s(lagger));
    let mark = c.delivered.len();
    // Deliver everything but never let the learner's storage finish.
    for _ in 0..300 {
        if let Some(i) = (0..c.net.len()).next() {
            c.deliver_at(i);
        }
        for id in c.ids() {
            if id != s(lagger) {
                c.flush(id, usize::MAX);
            }
        }
        let acked = c.delivered[mark..]
            .iter()
            .any(|(f, _, k)| *f == lagger && *k == "ACK(NEWLEADER)");
        if acked {
            c.fail("ACK of NEWLEADER sent before the log was durable");
        }
        if c.net.is_empty() {
            break;
        }
    }
    assert!(
        c.pending_ops(lagger) > 0,
        "the DIFF txns are still unsynced"
    );
    assert_eq!(c.status(lagger).phase, Phase::Sync);
    // The crash loses the unsynced writes; the learner catches up again afterwards.
    c.crash(s(lagger));
    c.restart(s(lagger));
    elect(&mut c);
    assert_eq!(applied_zxids(&c, lagger), applied_zxids(&c, leader.0));
}

#[test]
fn no_ack_of_a_proposal_before_it_is_durable_zk_4785() {
    // ZOOKEEPER-4785: txns received between NEWLEADER and UPTODATE were acknowledged
    // before being logged. Here: server 2 is down, so a commit needs server 1's ACK,
    // which must wait for its own durability.
    let mut c = Cluster::new(8, 3, 0, |_| {});
    let leader = elect(&mut c);
    assert_eq!(leader, s(3));
    c.crash(s(2));
    c.write(leader);
    for _ in 0..20 {
        c.flush(leader, usize::MAX);
        if !c.net.is_empty() {
            c.deliver_at(0);
        }
    }
    assert!(c.pending_ops(1) > 0);
    assert!(!delivered(&c, 1, 3, "ACK"), "ACK before durable");
    assert_eq!(
        c.status(3).committed,
        Zxid::ZERO,
        "no quorum without server 1's durable copy"
    );
    c.flush(s(1), usize::MAX);
    c.settle();
    assert!(delivered(&c, 1, 3, "ACK"));
    assert_eq!(c.status(3).committed, z(1, 1));
}

// ---- the late-joining follower counterexamples (protocol-spec issues.md) ----

/// Servers 1 and 2 establish epoch 1 with 2 leading; 3 is cut off until then and
/// is left right after it has been sent NEWLEADER (its sync is in flight).
fn late_joiner() -> Cluster {
    let mut c = Cluster::new(9, 3, 0, |_| {});
    c.partition(&[3]);
    // Server 3 is cut off, so 2 (the best of the two) leads.
    assert_eq!(elect_without(&mut c, 3), s(2));
    c.heal();
    // Server 3 finds the leader and sends FOLLOWERINFO; deliver until NEWLEADER is
    // on its way to 3.
    for _ in 0..200 {
        if c.net.iter().any(|p| {
            p.to == s(3) && matches!(Message::decode(&p.bytes), Ok(Message::NewLeader { .. }))
        }) {
            return c;
        }
        if c.net.is_empty() {
            c.flush_all();
            for id in c.ids() {
                c.tick(id);
            }
        } else {
            c.deliver_at(0);
            c.flush_all();
        }
    }
    panic!("server 3 never got NEWLEADER");
}

fn elect_without(c: &mut Cluster, out: u64) -> ServerId {
    c.run_until(100, "leader among the others", move |c| {
        c.leader().is_some()
            && c.nodes
                .values()
                .filter(|n| n.id != s(out))
                .all(|n| n.status().unwrap().phase == Phase::Broadcast)
    });
    c.leader().unwrap()
}

#[test]
fn late_joiner_receives_proposals_made_while_it_syncs_spec_issue_1() {
    let mut c = late_joiner();
    // Proposed between NEWLEADER to 3 and 3's ACK: 3 must be sent it too.
    let w = c.write(s(2)).unwrap();
    assert!(
        c.net
            .iter()
            .any(|p| p.to == s(3)
                && matches!(Message::decode(&p.bytes), Ok(Message::Proposal { .. })))
    );
    let w2 = w.clone();
    c.run_until(50, "applied on 3", move |c| c.all_applied(&w2));
    assert_eq!(applied_zxids(&c, 3), applied_zxids(&c, 2));
}

#[test]
fn duplicate_proposal_is_ignored_spec_issue_2() {
    let mut c = late_joiner();
    c.write(s(2));
    // Duplicate every proposal in flight to 3.
    let dups: Vec<_> = c
        .net
        .iter()
        .filter(|p| {
            p.to == s(3) && matches!(Message::decode(&p.bytes), Ok(Message::Proposal { .. }))
        })
        .cloned()
        .collect();
    c.net.extend(dups);
    c.settle();
    let resyncs = c
        .delivered
        .iter()
        .filter(|(f, t, k)| *f == 3 && *t == 2 && *k == "FOLLOWERINFO")
        .count();
    assert_eq!(resyncs, 1, "a duplicate proposal must not force a re-sync");
    elect(&mut c);
    assert_eq!(applied_zxids(&c, 3), applied_zxids(&c, 2));
}

#[test]
fn uptodate_carries_the_latest_commit_spec_issue_3() {
    let mut c = late_joiner();
    let w = c.write(s(2)).unwrap();
    // Server 1 acknowledges, the leader commits, and the COMMIT to 3 is lost.
    c.settle_between(&[1, 2]);
    assert_eq!(c.status(2).committed, z(1, 1));
    assert!(c.drop_kind(2, 3, "COMMIT"));
    c.settle();
    // 3 learned the commit point from UPTODATE alone.
    assert!(c.nodes[&s(3)].applied.iter().any(|e| e.payload == w));
}

// ---- liveness ----

#[test]
fn zxid_rollover_forces_a_new_epoch() {
    let mut c = Cluster::new(10, 3, 0, |cfg| cfg.zxid_counter_max = 3);
    let leader = elect(&mut c);
    for _ in 0..3 {
        commit_write(&mut c);
    }
    assert_eq!(c.status(leader.0).last_zxid, z(1, 3));
    // The next proposal would need counter 4: the leader steps down instead.
    c.write(leader);
    assert_eq!(c.status(leader.0).role, Role::Looking);
    let w = commit_write(&mut c);
    let new_leader = c.leader().unwrap();
    assert_eq!(c.status(new_leader.0).leader_epoch, 2);
    let last = c.nodes[&new_leader].applied.last().unwrap();
    assert_eq!((last.zxid, &last.payload), (z(2, 1), &w));
}

#[test]
fn leader_without_a_quorum_steps_down_and_followers_give_up() {
    let mut c = Cluster::new(11, 3, 0, |_| {});
    let leader = elect(&mut c);
    c.partition(&[leader.0]);
    for _ in 0..8 {
        c.round();
    }
    assert_eq!(
        c.status(leader.0).role,
        Role::Looking,
        "leader stepped down"
    );
    // The other two elect a new leader of a higher epoch.
    let other = elect_without(&mut c, leader.0);
    assert_ne!(other, leader);
    assert_eq!(c.status(other.0).leader_epoch, 2);
    c.heal();
    elect(&mut c);
    commit_write(&mut c);
}

#[test]
fn observer_learns_through_inform_and_never_votes() {
    let mut c = Cluster::new(12, 3, 1, |_| {});
    let leader = elect(&mut c);
    assert_eq!(c.status(4).role, Role::Observing);
    let w = commit_write(&mut c);
    assert!(c.nodes[&s(4)].applied.iter().any(|e| e.payload == w));
    assert!(delivered(&c, leader.0, 4, "INFORM"));
    assert!(!delivered(&c, 4, leader.0, "ACK"));
    // Writes through the observer are forwarded to the leader.
    let fw = c.write(s(4)).unwrap();
    c.run_until(20, "forwarded write applied", move |c| c.all_applied(&fw));
    // With two voters down, the observer does not make a quorum.
    let others: Vec<u64> = (1..=3).filter(|i| *i != leader.0).collect();
    c.crash(s(others[0]));
    c.crash(s(others[1]));
    let before = c.status(leader.0).committed;
    c.write(leader);
    c.settle();
    assert_eq!(c.status(leader.0).committed, before);
}

#[test]
fn five_servers_survive_two_crashes() {
    let mut c = Cluster::new(13, 5, 0, |_| {});
    let leader = elect(&mut c);
    commit_write(&mut c);
    c.crash(leader);
    let other = (1..=5).map(s).find(|i| *i != leader).unwrap();
    c.crash(other);
    commit_write(&mut c);
    c.restart(leader);
    c.restart(other);
    elect(&mut c);
    commit_write(&mut c);
    let a = applied_zxids(&c, 1);
    for id in 2..=5 {
        assert_eq!(applied_zxids(&c, id), a);
    }
}

// ---- failover on a lost connection ----

/// A follower told that its connection to the leader is gone re-elects at once (no
/// waiting out syncLimit), finds the same leader still serving, and rejoins it.
#[test]
fn peer_lost_makes_a_follower_reelect_at_once_and_rejoin() {
    let mut c = Cluster::new(7, 3, 0, |_| {});
    let leader = elect(&mut c);
    let follower = c.ids().into_iter().find(|i| *i != leader).unwrap();
    let core = c.nodes.get_mut(&follower).unwrap().core.as_mut().unwrap();
    core.handle_peer_lost(ServerId(99)); // not its leader: ignored
    assert_eq!(core.status().role, Role::Following);
    core.handle_peer_lost(leader);
    assert_eq!(core.status().role, Role::Looking);
    c.pump(follower);
    assert_eq!(elect(&mut c), leader, "the same leader is found again");
    commit_write(&mut c);
}

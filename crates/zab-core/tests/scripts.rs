//! Protocol cases written in the scenario language of `common/script.rs`: each reads
//! like the paper's description of the case. Invariants are checked after every step.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use common::{Cluster, Disk};

fn three() -> Cluster {
    Cluster::new(21, 3, 0, |_| {})
}

#[test]
fn a_restarted_follower_rejoins_the_established_leader() {
    three().script(
        "
        elect
        expect leader 3
        write 3
        settle
        crash 1
        write 3
        write 3
        settle
        restart 1        # LOOKING; 2 and 3 answer with their vote (3, epoch 1)
        elect
        expect leader 3
        expect epoch 3 1 # no new election, no new epoch
        expect delivered 3->1 DIFF
        expect applied 1 1:1 1:2 1:3
        ",
    );
}

#[test]
fn late_joiner_is_sent_proposals_and_learns_the_commit_from_uptodate() {
    // protocol-spec issues 1 and 3: 1 and 2 establish epoch 1 while 3 is cut off;
    // 3 joins, and a txn is proposed and committed while 3 is being synced.
    three().script(
        "
        partition 3
        elect except 3
        expect leader 2
        heal
        await 2->3 NEWLEADER  # 3 joined; its sync stream is on the wire
        write 2               # 1:1 while 3 syncs: 3 must be sent it (issue 1)
        expect in-flight 2->3 PROPOSAL
        flush 2
        deliver 2->1 PROPOSAL
        flush 1
        deliver 1->2 ACK      # quorum {1, 2}: 1:1 commits
        expect in-flight 2->3 COMMIT
        drop 2->3 COMMIT      # 3 never sees this COMMIT...
        settle
        expect phase 3 broadcast
        expect applied 3 1:1  # ...UPTODATE carried the leader's commit point (issue 3)
        ",
    );
}

#[test]
fn the_highest_zxid_absent_from_the_election_is_truncated_zk_1154() {
    let disks = BTreeMap::from([
        (1, Disk::with_log(1, 1, &[(1, 1), (1, 2), (1, 3)])),
        (2, Disk::with_log(1, 1, &[(1, 1)])),
        (3, Disk::with_log(1, 1, &[(1, 1)])),
    ]);
    Cluster::from_disks(22, 3, 0, disks, |_| {}).script(
        "
        crash 1          # holds 1:2 and 1:3, never committed
        elect
        expect leader 3
        expect epoch 3 2
        write 3          # 2:1
        settle
        restart 1
        elect
        expect delivered 3->1 TRUNC
        expect applied 1 1:1 2:1
        expect same 1 3
        ",
    );
}

#[test]
fn a_leader_that_loses_its_quorum_steps_down() {
    three().script(
        "
        elect
        expect leader 3
        partition 3
        round 8
        expect role 3 looking
        elect except 3
        expect leader 2
        expect epoch 2 2
        heal
        elect
        expect leader 2
        write 1          # forwarded to the leader
        settle
        expect same 1 2
        expect same 3 2
        expect applied 3 2:1
        ",
    );
}

#[test]
fn a_crash_between_newleader_and_its_ack_loses_nothing_zk_3911() {
    three().script(
        "
        elect
        crash 1
        write 3
        write 3
        settle
        restart 1
        await 3->1 DIFF
        deliver 3->1 NEWLEADER   # DIFF, 1:1, 1:2, COMMIT, NEWLEADER; nothing flushed on 1
        expect pending 1
        expect phase 1 sync
        expect not-in-flight 1->3 ACK(NEWLEADER)
        crash 1                  # the unsynced sync stream is lost...
        restart 1
        elect
        expect same 1 3          # ...and sent again
        ",
    );
}

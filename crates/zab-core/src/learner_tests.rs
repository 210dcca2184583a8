//! Unit tests of the learner (private stages and handlers).
#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;
use crate::core::testkit::{core, elect, entry, sent};

/// A follower elected under leader 3, through LEADERINFO and ACKEPOCH: waiting for
/// the sync header.
fn awaiting_header() -> Core {
    let mut c = core(1);
    elect(&mut c, 3);
    c.handle_message(ServerId(3), Message::LeaderInfo { epoch: 1 });
    c.handle_accepted_epoch_saved(1);
    c.drain_actions();
    c
}

fn chunk(offset: u64, data: &'static [u8]) -> Message {
    Message::SnapChunk {
        epoch: 1,
        zxid: Zxid::new(1, 9),
        offset,
        data: Bytes::from_static(data),
    }
}

fn snap(chunked: u64, data: &'static [u8]) -> Message {
    Message::Snap {
        epoch: 1,
        echo: Zxid::ZERO,
        zxid: Zxid::new(1, 9),
        chunked,
        data: Bytes::from_static(data),
    }
}

fn installed(c: &mut Core) -> Option<Bytes> {
    c.drain_actions().into_iter().find_map(|a| match a {
        Action::InstallSnapshot { data, .. } => Some(data),
        _ => None,
    })
}

#[test]
fn snap_chunks_are_reassembled_in_order() {
    let leader = ServerId(3);
    let mut c = awaiting_header();
    c.handle_message(leader, chunk(0, b"ab"));
    c.handle_message(leader, chunk(2, b"cd"));
    c.handle_message(leader, snap(4, b"ef"));
    assert_eq!(installed(&mut c).as_deref(), Some(&b"abcdef"[..]));

    // A re-planned sync starts over at offset 0: the old pieces are dropped.
    let mut c = awaiting_header();
    c.handle_message(leader, chunk(0, b"xx"));
    c.handle_message(leader, chunk(0, b"ab"));
    c.handle_message(leader, snap(2, b"c"));
    assert_eq!(installed(&mut c).as_deref(), Some(&b"abc"[..]));

    // An unchunked SNAP is whole, whatever pieces came before it.
    let mut c = awaiting_header();
    c.handle_message(leader, chunk(0, b"stale"));
    c.handle_message(leader, snap(0, b"whole"));
    assert_eq!(installed(&mut c).as_deref(), Some(&b"whole"[..]));
}

#[test]
fn a_snap_missing_chunks_is_refused() {
    let leader = ServerId(3);
    // A gap in the offsets.
    let mut c = awaiting_header();
    c.handle_message(leader, chunk(0, b"ab"));
    c.handle_message(leader, chunk(3, b"d"));
    c.handle_message(leader, snap(4, b"e"));
    assert_eq!(installed(&mut c), None);
    // Fewer bytes than the SNAP says went ahead.
    let mut c = awaiting_header();
    c.handle_message(leader, chunk(0, b"ab"));
    c.handle_message(leader, snap(3, b"e"));
    assert_eq!(installed(&mut c), None);
    // Pieces of another snapshot point.
    let mut c = awaiting_header();
    c.handle_message(
        leader,
        Message::SnapChunk {
            epoch: 1,
            zxid: Zxid::new(1, 8),
            offset: 0,
            data: Bytes::from_static(b"ab"),
        },
    );
    c.handle_message(leader, snap(2, b"c"));
    assert_eq!(installed(&mut c), None);
    // Chunks before the handshake reached the header stage are not kept.
    let mut c = core(1);
    elect(&mut c, 3);
    c.drain_actions();
    c.handle_message(leader, chunk(0, b"ab"));
    c.handle_message(leader, Message::LeaderInfo { epoch: 1 });
    c.handle_accepted_epoch_saved(1);
    c.handle_message(leader, snap(2, b"c"));
    assert_eq!(installed(&mut c), None);
}

#[test]
fn flowing_chunks_keep_the_handshake_alive() {
    let leader = ServerId(3);
    let init = c_init_limit();
    // Without chunks, a silent leader gets FOLLOWERINFO again after resend_ticks
    // and the follower gives up after init_limit.
    let mut c = awaiting_header();
    let mut restarted = false;
    for _ in 0..init {
        c.handle_tick();
        restarted |= sent(&c.drain_actions())
            .iter()
            .any(|(_, m)| matches!(m, Message::FollowerInfo { .. }));
    }
    assert!(restarted, "a silent handshake is restarted");
    // With a chunk every few ticks, for far longer than init_limit, neither.
    let mut c = awaiting_header();
    let mut offset = 0;
    for t in 0..4 * init {
        if t % 3 == 0 {
            c.handle_message(
                leader,
                Message::SnapChunk {
                    epoch: 1,
                    zxid: Zxid::new(1, 9),
                    offset,
                    data: Bytes::from_static(b"z"),
                },
            );
            offset += 1;
        }
        c.handle_tick();
        let out = c.drain_actions();
        assert!(
            !sent(&out)
                .iter()
                .any(|(_, m)| matches!(m, Message::FollowerInfo { .. })),
            "tick {t}: handshake restarted while chunks flow"
        );
        assert_eq!(c.status().role, crate::Role::Following, "tick {t}");
    }
    c.handle_message(leader, snap(offset, b""));
    assert_eq!(installed(&mut c).map(|d| d.len() as u64), Some(offset));
}

fn c_init_limit() -> u64 {
    crate::Config::majority(ServerId(1), (1..=3).map(ServerId), [])
        .unwrap()
        .init_limit_ticks
}

/// Every durability rule of a follower, one input at a time.
#[test]
fn follower_withholds_acks_until_durable() {
    let mut c = core(1);
    elect(&mut c, 3);
    assert_eq!(c.status().role, crate::Role::Following);
    let out = c.drain_actions();
    assert!(sent(&out)
        .iter()
        .any(|(to, m)| *to == 3 && matches!(m, Message::FollowerInfo { .. })));
    let leader = ServerId(3);

    // ACKEPOCH only once accepted_epoch is durable.
    c.handle_message(leader, Message::LeaderInfo { epoch: 1 });
    let out = c.drain_actions();
    assert!(out.contains(&Action::SaveAcceptedEpoch { epoch: 1 }));
    assert!(sent(&out).is_empty());
    c.handle_accepted_epoch_saved(1);
    let out = sent(&c.drain_actions());
    assert!(matches!(
        out.as_slice(),
        [(
            3,
            Message::AckEpoch {
                epoch: 1,
                fresh: true,
                ..
            }
        )]
    ));

    // DIFF, one proposal, NEWLEADER: nothing acknowledged before the log is durable
    // (ZOOKEEPER-3911), then current_epoch is saved, then ACK(NEWLEADER).
    c.handle_message(
        leader,
        Message::Diff {
            epoch: 1,
            echo: Zxid::ZERO,
        },
    );
    c.handle_message(
        leader,
        Message::Proposal {
            epoch: 1,
            prev: Zxid::ZERO,
            entry: entry(1),
        },
    );
    c.handle_message(
        leader,
        Message::NewLeader {
            epoch: 1,
            zxid: Zxid::new(1, 1),
        },
    );
    let out = c.drain_actions();
    assert!(
        matches!(out.as_slice(), [Action::AppendLog { .. }]),
        "{out:?}"
    );
    c.handle_log_durable(Zxid::new(1, 1));
    assert_eq!(
        c.drain_actions(),
        vec![Action::SaveCurrentEpoch { epoch: 1 }]
    );
    c.handle_current_epoch_saved(1);
    let out = sent(&c.drain_actions());
    assert_eq!(
        out,
        vec![(
            3,
            Message::AckNewLeader {
                epoch: 1,
                zxid: Zxid::new(1, 1)
            }
        )]
    );

    // UPTODATE commits the initial history; a new proposal is acked once durable.
    c.handle_message(
        leader,
        Message::UpToDate {
            epoch: 1,
            committed: Zxid::new(1, 1),
        },
    );
    let out = c.drain_actions();
    assert!(out
        .iter()
        .any(|a| matches!(a, Action::Commit { entries } if entries.len() == 1)));
    assert_eq!(c.status().phase, Phase::Broadcast);
    c.handle_message(
        leader,
        Message::Proposal {
            epoch: 1,
            prev: Zxid::new(1, 1),
            entry: entry(2),
        },
    );
    assert!(sent(&c.drain_actions()).is_empty(), "no ACK before durable");
    c.handle_log_durable(Zxid::new(1, 2));
    assert_eq!(
        sent(&c.drain_actions()),
        vec![(
            3,
            Message::Ack {
                epoch: 1,
                zxid: Zxid::new(1, 2)
            }
        )]
    );

    // A gap makes the follower sync again rather than log a hole.
    c.handle_message(
        leader,
        Message::Proposal {
            epoch: 1,
            prev: Zxid::new(1, 3),
            entry: entry(4),
        },
    );
    let out = sent(&c.drain_actions());
    assert!(matches!(
        out.as_slice(),
        [(3, Message::FollowerInfo { .. })]
    ));
    // A message of another epoch is ignored.
    c.handle_message(
        leader,
        Message::Commit {
            epoch: 7,
            zxid: Zxid::new(1, 2),
        },
    );
    assert!(c.drain_actions().is_empty());
}

/// Waiting for UPTODATE, a follower re-sends its ACK(NEWLEADER) every
/// `resend_ticks` instead of restarting the sync on pings (which may be a backlog
/// sent before the leader saw the ACK), and gives up only after `init_limit` of
/// silence.
#[test]
fn a_follower_waiting_for_uptodate_repeats_its_ack() {
    let leader = ServerId(3);
    let mut c = awaiting_header();
    c.handle_message(leader, snap(0, b"state"));
    c.handle_snapshot_installed(Zxid::new(1, 9));
    let newleader = Message::NewLeader {
        epoch: 1,
        zxid: Zxid::new(1, 9),
    };
    c.handle_message(leader, newleader);
    c.handle_current_epoch_saved(1);
    let ack = (
        3,
        Message::AckNewLeader {
            epoch: 1,
            zxid: Zxid::new(1, 9),
        },
    );
    assert!(sent(&c.drain_actions()).contains(&ack));
    let ping = Message::Ping {
        epoch: 1,
        last_zxid: Zxid::new(1, 9),
        committed: Zxid::new(1, 9),
    };
    let mut acks = 0;
    for _ in 0..c_init_limit() {
        for _ in 0..5 {
            c.handle_message(leader, ping.clone());
        }
        c.handle_tick();
        let out = sent(&c.drain_actions());
        assert!(
            !out.iter()
                .any(|(_, m)| matches!(m, Message::FollowerInfo { .. })),
            "pings before UPTODATE restarted the sync"
        );
        acks += out.iter().filter(|m| **m == ack).count();
    }
    assert!(acks >= 2, "ACK(NEWLEADER) repeated {acks} times");
    c.handle_message(
        leader,
        Message::UpToDate {
            epoch: 1,
            committed: Zxid::new(1, 9),
        },
    );
    assert_eq!(c.status().phase, Phase::Broadcast);
}

#[test]
fn stale_headers_and_low_truncations_are_refused() {
    let mut c = core(1);
    elect(&mut c, 3);
    c.handle_message(ServerId(3), Message::LeaderInfo { epoch: 1 });
    c.handle_accepted_epoch_saved(1);
    c.drain_actions();
    // Planned for another last zxid: stale.
    c.handle_message(
        ServerId(3),
        Message::Trunc {
            epoch: 1,
            echo: Zxid::new(1, 9),
            to: Zxid::ZERO,
        },
    );
    assert!(c.drain_actions().is_empty());
    // Wrong sender.
    c.handle_message(
        ServerId(2),
        Message::Diff {
            epoch: 1,
            echo: Zxid::ZERO,
        },
    );
    c.handle_message(
        ServerId(3),
        Message::NewLeader {
            epoch: 1,
            zxid: Zxid::ZERO,
        },
    );
    assert!(
        c.drain_actions().is_empty(),
        "NEWLEADER before a header is ignored"
    );
}

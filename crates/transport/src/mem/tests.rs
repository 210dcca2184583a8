#![allow(clippy::unwrap_used, clippy::expect_used)] // tests

use std::time::Duration;

use proptest::prelude::*;

use super::*;

const A: NodeId = NodeId(1);
const B: NodeId = NodeId(2);
const C: NodeId = NodeId(3);

fn frames(t: &MemTransport) -> Vec<(NodeId, Bytes)> {
    t.events()
        .try_iter()
        .filter_map(|e| match e {
            TransportEvent::Frame { from, payload } => Some((from, payload)),
            _ => None,
        })
        .collect()
}

fn conn_events(t: &MemTransport) -> Vec<TransportEvent> {
    t.events()
        .try_iter()
        .filter(|e| !matches!(e, TransportEvent::Frame { .. }))
        .collect()
}

fn num(i: u32) -> Bytes {
    Bytes::copy_from_slice(&i.to_be_bytes())
}

fn as_num(b: &Bytes) -> u32 {
    u32::from_be_bytes(b[..4].try_into().unwrap())
}

#[test]
fn virtual_mode_delivers_only_on_deliver_due() {
    let net = MemNetwork::new_virtual(1);
    let a = net.endpoint(A);
    let b = net.endpoint(B);
    a.send(B, num(1)).unwrap();
    assert!(frames(&b).is_empty());
    assert_eq!(net.in_flight(), 1);
    assert_eq!(net.deliver_due(), 1);
    assert_eq!(frames(&b), vec![(A, num(1))]);
    assert_eq!(
        net.link_stats(A, B),
        LinkStats {
            sent: 1,
            delivered: 1,
            ..LinkStats::default()
        }
    );
}

#[test]
fn endpoints_see_each_other_connect_and_disconnect() {
    let net = MemNetwork::new_virtual(1);
    let a = net.endpoint(A);
    let b = net.endpoint(B);
    assert_eq!(conn_events(&a), vec![TransportEvent::Connected(B)]);
    assert_eq!(conn_events(&b), vec![TransportEvent::Connected(A)]);
    b.shutdown();
    assert_eq!(conn_events(&a), vec![TransportEvent::Disconnected(B)]);
    assert_eq!(b.send(A, num(0)), Err(SendError::Shutdown));
}

#[test]
fn symmetric_partition_drops_both_ways_and_heals() {
    let net = MemNetwork::new_virtual(1);
    let a = net.endpoint(A);
    let b = net.endpoint(B);
    conn_events(&a);
    net.partition(A, B);
    assert_eq!(conn_events(&a), vec![TransportEvent::Disconnected(B)]);
    a.send(B, num(1)).unwrap();
    b.send(A, num(2)).unwrap();
    net.deliver_due();
    assert!(frames(&a).is_empty() && frames(&b).is_empty());
    assert_eq!(net.link_stats(A, B).dropped, 1);
    net.heal_link(A, B);
    assert_eq!(conn_events(&a), vec![TransportEvent::Connected(B)]);
    a.send(B, num(3)).unwrap();
    net.deliver_due();
    assert_eq!(frames(&b), vec![(A, num(3))]);
}

#[test]
fn one_way_partition_cuts_one_direction() {
    let net = MemNetwork::new_virtual(1);
    let a = net.endpoint(A);
    let b = net.endpoint(B);
    net.partition_one_way(A, B);
    a.send(B, num(1)).unwrap();
    b.send(A, num(2)).unwrap();
    net.deliver_due();
    assert!(frames(&b).is_empty());
    assert_eq!(frames(&a), vec![(B, num(2))]);
}

#[test]
fn partition_while_in_flight_drops_the_frame() {
    let net = MemNetwork::new_virtual(1);
    let a = net.endpoint(A);
    let b = net.endpoint(B);
    a.send(B, num(1)).unwrap();
    net.partition(A, B);
    net.deliver_due();
    assert!(frames(&b).is_empty());
    assert_eq!(net.link_stats(A, B).dropped, 1);
}

#[test]
fn isolate_cuts_every_link_including_new_nodes_and_heal_restores() {
    let net = MemNetwork::new_virtual(1);
    let a = net.endpoint(A);
    let b = net.endpoint(B);
    net.isolate(A);
    let c = net.endpoint(C);
    assert_eq!(conn_events(&c), vec![TransportEvent::Connected(B)]);
    a.send(B, num(1)).unwrap();
    a.send(C, num(1)).unwrap();
    b.send(C, num(2)).unwrap();
    net.deliver_due();
    assert!(frames(&b).is_empty());
    assert_eq!(frames(&c), vec![(B, num(2))]);
    net.heal(A);
    a.send(C, num(3)).unwrap();
    net.deliver_due();
    assert_eq!(frames(&c), vec![(A, num(3))]);
}

#[test]
fn partition_groups_cuts_across_groups_only() {
    let net = MemNetwork::new_virtual(1);
    let a = net.endpoint(A);
    let b = net.endpoint(B);
    let c = net.endpoint(C);
    net.partition_groups(&[&[A, B], &[C]]);
    a.send(B, num(1)).unwrap();
    a.send(C, num(1)).unwrap();
    c.send(B, num(1)).unwrap();
    net.deliver_due();
    assert_eq!(frames(&b), vec![(A, num(1))]);
    assert!(frames(&c).is_empty());
    assert!(frames(&a).is_empty());
}

#[test]
fn fixed_delay_holds_frames_until_due() {
    let net = MemNetwork::new_virtual(1);
    let a = net.endpoint(A);
    let b = net.endpoint(B);
    net.set_link_faults(
        A,
        B,
        LinkFaults {
            delay_us: 100,
            ..LinkFaults::none()
        },
    );
    a.send(B, num(1)).unwrap();
    assert_eq!(net.next_due_us(), Some(100));
    net.advance_to(99).unwrap();
    assert_eq!(net.deliver_due(), 0);
    net.advance_to(100).unwrap();
    assert_eq!(net.deliver_due(), 1);
    assert_eq!(frames(&b), vec![(A, num(1))]);
    assert_eq!(
        net.advance_to(5),
        Err(ModeError::TimeWentBack {
            now_us: 100,
            requested_us: 5
        })
    );
}

#[test]
fn drop_and_duplicate_all() {
    let net = MemNetwork::new_virtual(1);
    let a = net.endpoint(A);
    let b = net.endpoint(B);
    net.set_link_faults(
        A,
        B,
        LinkFaults {
            drop_probability: 1.0,
            ..LinkFaults::none()
        },
    );
    net.set_link_faults(
        B,
        A,
        LinkFaults {
            duplicate_probability: 1.0,
            ..LinkFaults::none()
        },
    );
    a.send(B, num(1)).unwrap();
    b.send(A, num(2)).unwrap();
    net.deliver_due();
    assert!(frames(&b).is_empty());
    assert_eq!(frames(&a), vec![(B, num(2)), (B, num(2))]);
    assert_eq!(net.link_stats(B, A).duplicated, 1);
    net.clear_link_faults(A, B);
    a.send(B, num(3)).unwrap();
    net.deliver_due();
    assert_eq!(frames(&b), vec![(A, num(3))]);
}

#[test]
fn reorder_lets_later_frames_overtake() {
    let net = MemNetwork::new_virtual(42);
    let a = net.endpoint(A);
    let b = net.endpoint(B);
    net.set_default_faults(LinkFaults {
        reorder_probability: 0.3,
        reorder_window_us: 50,
        ..LinkFaults::none()
    });
    for i in 0..200 {
        a.send(B, num(i)).unwrap();
    }
    net.advance_to(1_000).unwrap();
    net.deliver_due();
    let got: Vec<u32> = frames(&b).iter().map(|(_, p)| as_num(p)).collect();
    assert_eq!(got.len(), 200);
    assert!(
        got.windows(2).any(|w| w[0] > w[1]),
        "expected some reordering"
    );
    let mut sorted = got.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..200).collect::<Vec<_>>());
}

#[test]
fn queue_full_is_a_typed_error_and_frame_is_not_queued() {
    let net = MemNetwork::with_config(
        Mode::Virtual,
        MemConfig {
            peer_queue_max: 2,
            ..MemConfig::with_seed(1)
        },
    );
    let a = net.endpoint(A);
    let _b = net.endpoint(B);
    a.send(B, num(1)).unwrap();
    a.send(B, num(2)).unwrap();
    assert_eq!(a.send(B, num(3)), Err(SendError::QueueFull { to: B }));
    assert_eq!(net.in_flight_on(A, B), 2);
    assert_eq!(net.link_stats(A, B).rejected, 1);
    assert_eq!(a.send(A, num(3)), Err(SendError::ToSelf(A)));
}

#[test]
fn restart_replaces_endpoint_and_drops_old_traffic() {
    let net = MemNetwork::new_virtual(1);
    let a = net.endpoint(A);
    let b_old = net.endpoint(B);
    a.send(B, num(1)).unwrap();
    b_old.send(A, num(9)).unwrap();
    let b_new = net.endpoint(B);
    assert_eq!(b_old.send(A, num(2)), Err(SendError::Shutdown));
    net.deliver_due();
    assert!(frames(&b_new).is_empty());
    assert!(frames(&a).is_empty());
    assert_eq!(net.total_stats().dropped, 2);
    // The old handle's drop must not remove the new endpoint.
    drop(b_old);
    a.send(B, num(3)).unwrap();
    net.deliver_due();
    assert_eq!(frames(&b_new), vec![(A, num(3))]);
    assert_eq!(net.endpoint_ids(), vec![A, B]);
}

#[test]
fn real_time_delay_is_delivered_by_the_background_thread() {
    let net = MemNetwork::new(1);
    let a = net.endpoint(A);
    let b = net.endpoint(B);
    net.set_default_faults(LinkFaults {
        delay_us: 2_000,
        jitter_us: 1_000,
        ..LinkFaults::none()
    });
    for i in 0..10 {
        a.send(B, num(i)).unwrap();
    }
    let mut got = Vec::new();
    while got.len() < 10 {
        // Generous bound so a stuck thread fails the test instead of hanging it.
        match b.events().recv_timeout(Duration::from_secs(10)).unwrap() {
            TransportEvent::Frame { payload, .. } => got.push(as_num(&payload)),
            _ => continue,
        }
    }
    assert_eq!(got, (0..10).collect::<Vec<_>>());
    assert_eq!(net.advance_to(1), Err(ModeError::NotVirtual));
    net.shutdown();
    net.shutdown();
}

/// One step of a random scenario for the model tests.
#[derive(Clone, Debug)]
enum Op {
    Send { from: u8, to: u8 },
    Partition(u8, u8),
    OneWay(u8, u8),
    Heal(u8),
    Advance(u16),
    DeliverOne,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..3, 0u8..3).prop_map(|(from, to)| Op::Send { from, to }),
        1 => (0u8..3, 0u8..3).prop_map(|(a, b)| Op::Partition(a, b)),
        1 => (0u8..3, 0u8..3).prop_map(|(a, b)| Op::OneWay(a, b)),
        1 => (0u8..3).prop_map(Op::Heal),
        2 => (0u16..500).prop_map(Op::Advance),
        1 => Just(Op::DeliverOne),
    ]
}

/// Runs `ops` on a fresh virtual network; returns every frame each endpoint received
/// (as (receiver, sender, sequence number)) and the final totals.
fn run(seed: u64, faults: LinkFaults, ops: &[Op]) -> (Vec<(u64, u64, u32)>, LinkStats, usize) {
    let net = MemNetwork::new_virtual(seed);
    net.set_default_faults(faults);
    let nodes: Vec<MemTransport> = (0..3).map(|i| net.endpoint(NodeId(i))).collect();
    let mut seq = 0u32;
    let mut now = 0u64;
    let mut trace = Vec::new();
    let drain = |trace: &mut Vec<(u64, u64, u32)>| {
        for n in &nodes {
            for (from, p) in frames(n) {
                trace.push((n.local_id().0, from.0, as_num(&p)));
                // The payload names its addressee: no frame reaches the wrong peer.
                assert_eq!(u64::from(p[4]), n.local_id().0);
            }
        }
    };
    for op in ops {
        match *op {
            Op::Send { from, to } => {
                let mut p = seq.to_be_bytes().to_vec();
                p.push(to);
                seq += 1;
                let r = nodes[from as usize].send(NodeId(to.into()), Bytes::from(p));
                if from == to {
                    assert_eq!(r, Err(SendError::ToSelf(NodeId(to.into()))));
                } else {
                    r.unwrap();
                }
            }
            Op::Partition(a, b) => net.partition(NodeId(a.into()), NodeId(b.into())),
            Op::OneWay(a, b) => net.partition_one_way(NodeId(a.into()), NodeId(b.into())),
            Op::Heal(a) => net.heal(NodeId(a.into())),
            Op::Advance(d) => {
                now += u64::from(d);
                net.advance_to(now).unwrap();
                net.deliver_due();
            }
            Op::DeliverOne => {
                net.deliver_one();
            }
        }
        drain(&mut trace);
    }
    (trace, net.total_stats(), net.in_flight())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Without reorder or duplication, every link delivers a subsequence of what was
    /// sent, in send order, whatever the drops, delays and partitions.
    #[test]
    fn fifo_per_link_and_conservation(
        seed in any::<u64>(),
        drop_p in 0.0f64..0.5,
        delay in 0u64..100,
        jitter in 0u64..300,
        ops in proptest::collection::vec(op(), 0..200),
    ) {
        let faults = LinkFaults { drop_probability: drop_p, delay_us: delay, jitter_us: jitter, ..LinkFaults::none() };
        let (trace, stats, in_flight) = run(seed, faults, &ops);
        let mut last = std::collections::HashMap::new();
        for (to, from, n) in &trace {
            if let Some(prev) = last.insert((*from, *to), *n) {
                prop_assert!(prev < *n, "link {from}->{to}: {prev} then {n}");
            }
        }
        prop_assert_eq!(stats.sent + stats.duplicated, stats.delivered + stats.dropped + in_flight as u64);
        prop_assert_eq!(stats.delivered, trace.len() as u64);
    }

    /// With every fault on, counters still balance and the same seed replays the run.
    #[test]
    fn all_faults_conserve_and_replay(
        seed in any::<u64>(),
        ops in proptest::collection::vec(op(), 0..200),
    ) {
        let faults = LinkFaults {
            drop_probability: 0.1,
            duplicate_probability: 0.2,
            reorder_probability: 0.2,
            reorder_window_us: 200,
            delay_us: 10,
            jitter_us: 100,
        };
        let first = run(seed, faults, &ops);
        let (_, stats, in_flight) = &first;
        prop_assert_eq!(stats.sent + stats.duplicated, stats.delivered + stats.dropped + *in_flight as u64);
        let second = run(seed, faults, &ops);
        prop_assert_eq!(first, second);
    }
}

#[test]
fn trace_records_the_last_events_with_drop_reasons() {
    let net = MemNetwork::new_virtual(1);
    net.enable_trace(3);
    let a = net.endpoint(A);
    let b = net.endpoint(B);
    a.send(B, num(1)).unwrap();
    a.send(C, num(2)).unwrap();
    net.partition(A, B);
    net.deliver_due();
    let trace = net.drain_trace();
    let kinds: Vec<NetEventKind> = trace.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        vec![
            NetEventKind::Sent,
            NetEventKind::Dropped(DropReason::NoReceiver),
            NetEventKind::Dropped(DropReason::Partitioned),
        ]
    );
    assert_eq!(
        trace[2].to_string(),
        "         0us 1->2 Dropped(Partitioned) (4 bytes)"
    );
    assert!(net.drain_trace().is_empty());
    drop(b);
}

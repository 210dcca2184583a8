//! Every transport runs the same conformance suite.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests

use transport::conformance;
use transport::mem::{LinkFaults, MemNetwork};
use transport::tcp::start_local_cluster;

#[test]
fn mem_real_time_perfect_links() {
    conformance::run_all(|ids| {
        let net = MemNetwork::new(1);
        ids.iter().map(|id| net.endpoint(*id)).collect()
    })
    .unwrap();
}

#[test]
fn mem_real_time_with_delay_and_jitter() {
    // Delay and jitter must not reorder a link; the delivery thread does the work.
    conformance::run_all(|ids| {
        let net = MemNetwork::new(2);
        net.set_default_faults(LinkFaults {
            delay_us: 200,
            jitter_us: 500,
            ..LinkFaults::none()
        });
        ids.iter().map(|id| net.endpoint(*id)).collect()
    })
    .unwrap();
}

#[test]
fn tcp_loopback() {
    conformance::run_all(|ids| {
        start_local_cluster(ids, |c| {
            c.backoff_min_ms = 5;
            c.backoff_max_ms = 200;
        })
        .unwrap()
    })
    .unwrap();
}

#[test]
fn trait_objects_are_transports_too() {
    use std::sync::Arc;
    use transport::Transport;
    conformance::run_all(|ids| {
        let net = MemNetwork::new(3);
        ids.iter()
            .map(|id| Box::new(net.endpoint(*id)) as Box<dyn Transport>)
            .collect()
    })
    .unwrap();
    conformance::send_to_self_rejected(&mut |ids: &[transport::NodeId]| {
        let net = MemNetwork::new(4);
        ids.iter()
            .map(|id| Arc::new(net.endpoint(*id)))
            .collect::<Vec<_>>()
    })
    .unwrap();
}

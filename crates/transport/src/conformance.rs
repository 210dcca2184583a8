//! Cases every [`Transport`] implementation must pass. Each case takes a factory that
//! builds one connected set of transports for the given ids (a fresh set per call)
//! and returns `Err` with a description when the implementation misbehaves.
//!
//! ```
//! use transport::{conformance, mem::MemNetwork};
//!
//! conformance::run_all(|ids| {
//!     let net = MemNetwork::new(1);
//!     ids.iter().map(|id| net.endpoint(*id)).collect()
//! })
//! .unwrap();
//! ```
//!
//! Waits are bounded by [`PATIENCE`] so a broken implementation fails instead of
//! hanging; no case asserts on speed.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::{NodeId, SendError, Transport, TransportEvent};

/// Longest wait for any one expected event.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Frames each node sends to each peer in [`per_link_order`].
pub const ORDER_FRAMES: u32 = 500;

/// A conformance case failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("conformance case {case} failed: {reason}")]
pub struct CaseFailure {
    /// The case's function name.
    pub case: &'static str,
    /// What went wrong.
    pub reason: String,
}

fn fail(case: &'static str, reason: impl Into<String>) -> CaseFailure {
    CaseFailure {
        case,
        reason: reason.into(),
    }
}

/// Runs every case, stopping at the first failure.
pub fn run_all<T, F>(mut factory: F) -> Result<(), CaseFailure>
where
    T: Transport,
    F: FnMut(&[NodeId]) -> Vec<T>,
{
    connect_events(&mut factory)?;
    per_link_order(&mut factory)?;
    no_misdelivery(&mut factory)?;
    send_to_self_rejected(&mut factory)?;
    clean_shutdown(&mut factory)?;
    Ok(())
}

fn ids(n: u64) -> Vec<NodeId> {
    (1..=n).map(NodeId).collect()
}

fn build<T: Transport>(
    case: &'static str,
    factory: &mut impl FnMut(&[NodeId]) -> Vec<T>,
    ids: &[NodeId],
) -> Result<Vec<T>, CaseFailure> {
    let nodes = factory(ids);
    let got: Vec<NodeId> = nodes.iter().map(Transport::local_id).collect();
    if got != ids {
        return Err(fail(
            case,
            format!("factory built {got:?}, asked for {ids:?}"),
        ));
    }
    Ok(nodes)
}

fn shutdown_all<T: Transport>(nodes: &[T]) {
    for n in nodes {
        n.shutdown();
    }
}

/// Waits for an event matching `pred`, skipping others.
fn wait_event<T: Transport>(
    case: &'static str,
    t: &T,
    what: &str,
    pred: impl Fn(&TransportEvent) -> bool,
) -> Result<TransportEvent, CaseFailure> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match t.events().recv_timeout(left) {
            Ok(e) if pred(&e) => return Ok(e),
            Ok(_) => continue,
            Err(_) => return Err(fail(case, format!("{} never saw {what}", t.local_id()))),
        }
    }
}

/// Sends, retrying while the queue is full (the only back-pressure a caller sees).
fn send_retrying<T: Transport>(
    case: &'static str,
    t: &T,
    to: NodeId,
    payload: Bytes,
) -> Result<(), CaseFailure> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match t.send(to, payload.clone()) {
            Ok(()) => return Ok(()),
            Err(SendError::QueueFull { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_micros(200));
            }
            Err(e) => return Err(fail(case, format!("send {} -> {to}: {e}", t.local_id()))),
        }
    }
}

/// A test frame naming its sender, addressee and sequence number.
fn tagged(from: NodeId, to: NodeId, seq: u32) -> Bytes {
    let mut b = BytesMut::with_capacity(20);
    b.put_u64(from.0);
    b.put_u64(to.0);
    b.put_u32(seq);
    b.freeze()
}

fn untag(mut p: Bytes) -> Option<(NodeId, NodeId, u32)> {
    if p.len() != 20 {
        return None;
    }
    Some((NodeId(p.get_u64()), NodeId(p.get_u64()), p.get_u32()))
}

/// Every endpoint reports `Connected` for every peer.
pub fn connect_events<T, F>(factory: &mut F) -> Result<(), CaseFailure>
where
    T: Transport,
    F: FnMut(&[NodeId]) -> Vec<T>,
{
    const CASE: &str = "connect_events";
    let ids = ids(3);
    let nodes = build(CASE, factory, &ids)?;
    let result = (|| {
        for n in &nodes {
            let mut missing: Vec<NodeId> =
                ids.iter().copied().filter(|p| *p != n.local_id()).collect();
            while !missing.is_empty() {
                let what = format!("Connected for each of {missing:?}");
                let e = wait_event(CASE, n, &what, |e| {
                    matches!(e, TransportEvent::Connected(_))
                })?;
                if let TransportEvent::Connected(peer) = e {
                    missing.retain(|p| *p != peer);
                }
            }
        }
        Ok(())
    })();
    shutdown_all(&nodes);
    result
}

/// With no faults, each of 3 nodes sends [`ORDER_FRAMES`] frames to each peer,
/// interleaved; every receiver gets all of them, from the right sender, in order.
pub fn per_link_order<T, F>(factory: &mut F) -> Result<(), CaseFailure>
where
    T: Transport,
    F: FnMut(&[NodeId]) -> Vec<T>,
{
    const CASE: &str = "per_link_order";
    let ids = ids(3);
    let nodes = build(CASE, factory, &ids)?;
    let result = (|| {
        for seq in 0..ORDER_FRAMES {
            for n in &nodes {
                for to in ids.iter().filter(|p| **p != n.local_id()) {
                    send_retrying(CASE, n, *to, tagged(n.local_id(), *to, seq))?;
                }
            }
        }
        for n in &nodes {
            let me = n.local_id();
            let mut next: BTreeMap<NodeId, u32> =
                ids.iter().filter(|p| **p != me).map(|p| (*p, 0)).collect();
            while next.values().any(|n| *n < ORDER_FRAMES) {
                let e = wait_event(CASE, n, "all frames", |e| {
                    matches!(e, TransportEvent::Frame { .. })
                })?;
                let TransportEvent::Frame { from, payload } = e else {
                    continue;
                };
                let Some((src, dst, seq)) = untag(payload) else {
                    return Err(fail(CASE, format!("{me} got a foreign frame from {from}")));
                };
                if src != from || dst != me {
                    return Err(fail(
                        CASE,
                        format!("{me} got frame {src}->{dst} reported as from {from}"),
                    ));
                }
                let expected = next.entry(from).or_insert(0);
                if seq != *expected {
                    return Err(fail(
                        CASE,
                        format!("{me} got seq {seq} from {from}, expected {expected}"),
                    ));
                }
                *expected += 1;
            }
        }
        Ok(())
    })();
    shutdown_all(&nodes);
    result
}

/// In a 4-node set, one frame per ordered pair: each node receives exactly one frame
/// from each peer, each addressed to it and carrying its true sender.
pub fn no_misdelivery<T, F>(factory: &mut F) -> Result<(), CaseFailure>
where
    T: Transport,
    F: FnMut(&[NodeId]) -> Vec<T>,
{
    const CASE: &str = "no_misdelivery";
    let ids = ids(4);
    let nodes = build(CASE, factory, &ids)?;
    let result = (|| {
        for n in &nodes {
            for to in ids.iter().filter(|p| **p != n.local_id()) {
                send_retrying(CASE, n, *to, tagged(n.local_id(), *to, 7))?;
            }
        }
        for n in &nodes {
            let me = n.local_id();
            let mut seen = Vec::new();
            while seen.len() < ids.len() - 1 {
                let e = wait_event(CASE, n, "one frame per peer", |e| {
                    matches!(e, TransportEvent::Frame { .. })
                })?;
                let TransportEvent::Frame { from, payload } = e else {
                    continue;
                };
                match untag(payload) {
                    Some((src, dst, 7)) if src == from && dst == me && !seen.contains(&from) => {
                        seen.push(from);
                    }
                    other => {
                        return Err(fail(CASE, format!("{me} got {other:?} from {from}")));
                    }
                }
            }
        }
        Ok(())
    })();
    shutdown_all(&nodes);
    result
}

/// Sending to one's own id is refused with [`SendError::ToSelf`].
pub fn send_to_self_rejected<T, F>(factory: &mut F) -> Result<(), CaseFailure>
where
    T: Transport,
    F: FnMut(&[NodeId]) -> Vec<T>,
{
    const CASE: &str = "send_to_self_rejected";
    let ids = ids(2);
    let nodes = build(CASE, factory, &ids)?;
    let got = nodes[0].send(ids[0], Bytes::from_static(b"me"));
    shutdown_all(&nodes);
    match got {
        Err(SendError::ToSelf(id)) if id == ids[0] => Ok(()),
        other => Err(fail(CASE, format!("send to self returned {other:?}"))),
    }
}

/// Shutting one node down: its peers see `Disconnected`, its `send` returns
/// [`SendError::Shutdown`], a second shutdown is harmless, and the others still talk.
pub fn clean_shutdown<T, F>(factory: &mut F) -> Result<(), CaseFailure>
where
    T: Transport,
    F: FnMut(&[NodeId]) -> Vec<T>,
{
    const CASE: &str = "clean_shutdown";
    let ids = ids(3);
    let nodes = build(CASE, factory, &ids)?;
    let result = (|| {
        let (gone, a, b) = (&nodes[2], &nodes[0], &nodes[1]);
        for n in [a, b] {
            wait_event(CASE, n, "Connected(3)", |e| {
                *e == TransportEvent::Connected(ids[2])
            })?;
        }
        gone.shutdown();
        gone.shutdown();
        for n in [a, b] {
            wait_event(CASE, n, "Disconnected(3)", |e| {
                *e == TransportEvent::Disconnected(ids[2])
            })?;
        }
        match gone.send(ids[0], Bytes::from_static(b"late")) {
            Err(SendError::Shutdown) => {}
            other => {
                return Err(fail(
                    CASE,
                    format!("send after shutdown returned {other:?}"),
                ))
            }
        }
        send_retrying(CASE, a, ids[1], tagged(ids[0], ids[1], 1))?;
        let e = wait_event(CASE, b, "frame after peer shutdown", |e| {
            matches!(e, TransportEvent::Frame { .. })
        })?;
        if e != (TransportEvent::Frame {
            from: ids[0],
            payload: tagged(ids[0], ids[1], 1),
        }) {
            return Err(fail(CASE, format!("unexpected {e:?}")));
        }
        Ok(())
    })();
    shutdown_all(&nodes);
    result
}

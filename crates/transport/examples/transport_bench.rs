//! Throughput of each transport: one sender, one receiver, no faults.
//!
//! ```text
//! cargo run --release -p transport --example transport_bench [-- FRAMES_SCALE]
//! ```
//! Prints frames/s and MB/s (10^6 bytes of payload per second) for 100-byte and 4 KiB
//! frames over the real-time in-memory network and over TCP on 127.0.0.1. The
//! optional argument scales the number of frames (default 1.0).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark program

use std::time::{Duration, Instant};

use bytes::Bytes;
use transport::mem::MemNetwork;
use transport::tcp::start_local_cluster;
use transport::{NodeId, SendError, Transport, TransportEvent};

const SENDER: NodeId = NodeId(2);
const RECEIVER: NodeId = NodeId(1);

fn main() {
    let scale: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    println!(
        "{:<6} {:>7} {:>10} {:>12} {:>9} {:>8}",
        "net", "bytes", "frames", "frames/s", "MB/s", "secs"
    );
    for (size, frames) in [(100usize, 1_000_000f64), (4096, 200_000f64)] {
        let frames = ((frames * scale) as u64).max(1);
        let net = MemNetwork::new(1);
        let nodes = vec![net.endpoint(RECEIVER), net.endpoint(SENDER)];
        run("mem", nodes, size, frames);
        net.shutdown();
        let nodes = start_local_cluster(&[RECEIVER, SENDER], |_| {}).unwrap();
        run("tcp", nodes, size, frames);
    }
}

fn run<T: Transport + 'static>(name: &str, nodes: Vec<T>, size: usize, frames: u64) {
    let mut nodes = nodes;
    let sender = nodes.pop().unwrap();
    let receiver = nodes.pop().unwrap();
    // Wait until connected, so connection setup is not measured.
    loop {
        match receiver
            .events()
            .recv_timeout(Duration::from_secs(10))
            .unwrap()
        {
            TransportEvent::Connected(p) if p == SENDER => break,
            _ => continue,
        }
    }
    let payload = Bytes::from(vec![0xa5u8; size]);
    let rx = std::thread::spawn(move || {
        let mut got = 0u64;
        while got < frames {
            match receiver
                .events()
                .recv_timeout(Duration::from_secs(30))
                .unwrap()
            {
                TransportEvent::Frame { payload, .. } => {
                    assert_eq!(payload.len(), size);
                    got += 1;
                }
                _ => continue,
            }
        }
        receiver.shutdown();
        Instant::now()
    });
    let start = Instant::now();
    let mut sent = 0u64;
    while sent < frames {
        match sender.send(RECEIVER, payload.clone()) {
            Ok(()) => sent += 1,
            Err(SendError::QueueFull { .. }) => std::thread::yield_now(),
            Err(e) => panic!("send failed: {e}"),
        }
    }
    let end = rx.join().unwrap();
    sender.shutdown();
    let secs = (end - start).as_secs_f64();
    let fps = frames as f64 / secs;
    let mbps = fps * size as f64 / 1e6;
    println!("{name:<6} {size:>7} {frames:>10} {fps:>12.0} {mbps:>9.1} {secs:>8.2}");
}

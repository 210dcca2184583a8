//! Measures what a periodic snapshot costs the core thread (the tree clone, the write
//! stall) and the snapshot thread (serialization), for a tree of N znodes.
//!
//! `cargo run --release -p ensemble --example snapshot_stall -- [znodes]`

use std::time::Instant;

use bytes::Bytes;
use datatree::{Acl, CreateTxn, DataTree, NodeKind, SessionId, Txn, TxnOp};

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let mut tree = DataTree::new();
    let data = Bytes::from(vec![7u8; 100]);
    let fanout = 1000;
    let t = Instant::now();
    for i in 0..n {
        let path = if i < fanout {
            format!("/d{i}")
        } else {
            format!("/d{}/n{}", i % fanout, i)
        };
        let zxid = i as i64 + 1;
        let parent_creates = if i < fanout {
            i as i32 + 1
        } else {
            (i / fanout) as i32
        };
        let txn = Txn {
            zxid,
            time_ms: 0,
            op: TxnOp::Create(CreateTxn {
                path,
                data: data.clone(),
                acl: Acl::open_unsafe(),
                kind: NodeKind::Persistent,
                owner: SessionId(0),
                ttl_ms: 0,
                parent_creates,
            }),
        };
        if let Err(e) = tree.apply(&txn) {
            eprintln!("apply failed at {i}: {e}");
            return;
        }
    }
    println!("built {} znodes in {:?}", tree.node_count(), t.elapsed());
    // The Node's way: an incremental snapshot, one step per tick.
    let step = ensemble::server::SNAPSHOT_STEP_NODES;
    let mut out = Vec::with_capacity(tree.data_bytes() as usize + tree.node_count() * 96);
    let t = Instant::now();
    if let Err(e) = tree.begin_snapshot(&mut out) {
        eprintln!("{e}");
        return;
    }
    let mut worst = t.elapsed();
    let mut steps = 0;
    let total = Instant::now();
    loop {
        let t = Instant::now();
        let r = tree.snapshot_step(step, &mut out);
        worst = worst.max(t.elapsed());
        steps += 1;
        match r {
            Ok(datatree::SnapshotProgress::Continue) => {}
            Ok(datatree::SnapshotProgress::Done) => break,
            Err(e) => {
                eprintln!("{e}");
                return;
            }
        }
    }
    println!(
        "incremental snapshot: {steps} steps of {step} znodes, longest step (the write stall) {:?}, total {:?}, {} MiB",
        worst,
        total.elapsed(),
        out.len() >> 20
    );
    // For comparison: cloning the tree, the stall of a copy-then-serialize design.
    let t = Instant::now();
    let copy = tree.clone();
    let stall = t.elapsed();
    drop(copy);
    println!("for comparison, a full tree clone takes {stall:?}");
}

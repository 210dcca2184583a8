//! Datatree benchmark: create, getData, setData, getChildren on a 1,000,000-node tree,
//! memory per znode, and snapshot (de)serialization speed.
//!
//! Run: `cargo run --release -p datatree --example tree_bench [-- NODES]`
//! Prints one line per measurement. Single-threaded: every number is one core.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Instant;

use bytes::Bytes;
use datatree::{Acl, CreateMode, DataTree, Prep, PrepContext, SessionId, Txn, WriteOp};

fn rss_bytes() -> u64 {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = s
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// A tiny deterministic generator (xorshift) so runs are comparable.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn main() {
    let total: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let dirs = 1000usize;
    let per_dir = total / dirs;
    let n = dirs * per_dir;
    let value = Bytes::from(vec![b'x'; 100]);
    let acl = Acl::open_unsafe();
    let mut tree = DataTree::new();
    let mut prep = Prep::default();
    let mut zxid = 0i64;
    let mut write = |tree: &mut DataTree, prep: &mut Prep, op: WriteOp| {
        zxid += 1;
        let ctx = PrepContext {
            session: SessionId(1),
            auth: &[],
            zxid,
        };
        let op = prep.prepare(tree, &ctx, &op).expect("prepare");
        tree.apply(&Txn {
            zxid,
            time_ms: zxid,
            op,
        })
        .expect("apply");
        prep.handle_applied(zxid);
    };
    let path = |d: usize, i: usize| format!("/bench/d{d:04}/n{i:07}");

    let rss0 = rss_bytes();
    let mut create = |tree: &mut DataTree, prep: &mut Prep, p: String, data: Bytes| {
        write(
            tree,
            prep,
            WriteOp::Create {
                path: p,
                data,
                acl: acl.clone(),
                mode: CreateMode::Persistent,
                ttl_ms: 0,
            },
        )
    };
    create(&mut tree, &mut prep, "/bench".into(), Bytes::new());
    for d in 0..dirs {
        create(
            &mut tree,
            &mut prep,
            format!("/bench/d{d:04}"),
            Bytes::new(),
        );
    }
    let t = Instant::now();
    let mut path_bytes = 0usize;
    for i in 0..per_dir {
        for d in 0..dirs {
            let p = path(d, i);
            path_bytes += p.len();
            create(&mut tree, &mut prep, p, value.clone());
        }
    }
    let el = t.elapsed().as_secs_f64();
    println!(
        "create (prep+apply)      {:>12.0} ops/s   ({n} nodes in {el:.2} s)",
        n as f64 / el
    );
    let rss1 = rss_bytes();
    let per_node = (rss1 - rss0) as f64 / n as f64;
    let payload = (path_bytes + n * value.len()) as f64 / n as f64;
    println!(
        "memory per znode        {per_node:>12.1} B resident, {payload:.1} B path+data, {:.1} B overhead",
        per_node - payload
    );

    let mut rng = Rng(0x9e3779b97f4a7c15);
    let keys: Vec<String> = (0..100_000)
        .map(|_| {
            path(
                (rng.next() % dirs as u64) as usize,
                (rng.next() % per_dir as u64) as usize,
            )
        })
        .collect();
    let reads = 5_000_000usize;
    let t = Instant::now();
    let mut bytes = 0usize;
    for i in 0..reads {
        let (d, _) = tree.data(&keys[i % keys.len()]).unwrap();
        bytes += d.len();
    }
    black_box(bytes);
    let el = t.elapsed().as_secs_f64();
    println!("getData, random of 1M   {:>12.0} ops/s", reads as f64 / el);

    // The benchmark harness's `get` workload reads 1,000 hot keys.
    let hot: Vec<String> = keys[..1000].to_vec();
    let t = Instant::now();
    let mut bytes = 0usize;
    for i in 0..reads {
        let (d, _) = tree.data(&hot[i % hot.len()]).unwrap();
        bytes += d.len();
    }
    black_box(bytes);
    println!(
        "getData, 1,000 hot keys {:>12.0} ops/s",
        reads as f64 / t.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    let mut st = 0i64;
    for i in 0..reads {
        st += tree.stat(&keys[i % keys.len()]).unwrap().mzxid;
    }
    black_box(st);
    println!(
        "exists (stat)           {:>12.0} ops/s",
        reads as f64 / t.elapsed().as_secs_f64()
    );

    let sets = 1_000_000usize;
    let t = Instant::now();
    for i in 0..sets {
        write(
            &mut tree,
            &mut prep,
            WriteOp::SetData {
                path: keys[i % keys.len()].clone(),
                data: value.clone(),
                version: -1,
            },
        );
    }
    println!(
        "setData (prep+apply)    {:>12.0} ops/s",
        sets as f64 / t.elapsed().as_secs_f64()
    );

    let lists = 2_000usize;
    let t = Instant::now();
    let mut c = 0usize;
    for i in 0..lists {
        c += tree
            .children(&format!("/bench/d{:04}", i % dirs))
            .unwrap()
            .0
            .len();
    }
    black_box(c);
    let el = t.elapsed().as_secs_f64();
    println!(
        "getChildren ({per_dir} kids) {:>9.0} ops/s",
        lists as f64 / el
    );

    let t = Instant::now();
    let mut buf = Vec::with_capacity(256 << 20);
    let len = tree.serialize(&mut buf).unwrap();
    let el = t.elapsed().as_secs_f64();
    println!(
        "serialize               {:>12.1} MB/s ({:.1} MB in {el:.2} s)",
        len as f64 / 1e6 / el,
        len as f64 / 1e6
    );
    let t = Instant::now();
    let back = DataTree::deserialize(&buf[..]).unwrap();
    let el = t.elapsed().as_secs_f64();
    println!(
        "deserialize             {:>12.1} MB/s ({el:.2} s)",
        len as f64 / 1e6 / el
    );
    assert_eq!(back.digest(), tree.digest());

    // Incremental snapshot interleaved with writes: the longest single step is the
    // longest pause a writer sees.
    let step_nodes = 10_000usize;
    let mut inc = Vec::with_capacity(256 << 20);
    let t = Instant::now();
    tree.begin_snapshot(&mut inc).unwrap();
    let mut worst = 0f64;
    let mut steps = 0usize;
    let mut i = 0usize;
    loop {
        let s = Instant::now();
        let p = tree.snapshot_step(step_nodes, &mut inc).unwrap();
        worst = worst.max(s.elapsed().as_secs_f64());
        steps += 1;
        if p == datatree::SnapshotProgress::Done {
            break;
        }
        for _ in 0..100 {
            write(
                &mut tree,
                &mut prep,
                WriteOp::SetData {
                    path: keys[i % keys.len()].clone(),
                    data: value.clone(),
                    version: -1,
                },
            );
            i += 1;
        }
    }
    let el = t.elapsed().as_secs_f64();
    println!(
        "incremental snapshot    {:>12.1} MB/s, {steps} steps of {step_nodes} nodes, longest step {:.2} ms, {i} writes interleaved",
        inc.len() as f64 / 1e6 / el,
        worst * 1e3
    );
    DataTree::deserialize(&inc[..]).unwrap();
}

//! Quickstart: three Ensemble nodes in this process, storing to files in a temporary
//! directory. Writes and reads, a watch firing, the leader killed and the cluster
//! carrying on without losing an acknowledged write. Timings are printed.
//!
//! Run it with `cargo run --release --example quickstart`.

use std::time::{Duration, Instant};

use ensemble::{Acl, Cluster, CreateMode, Event, Fsync};

const WAIT: Duration = Duration::from_secs(20);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    println!("data directory: {}", dir.path().display());

    let t = Instant::now();
    let mut cluster = Cluster::builder(3)
        .data_dir(dir.path())
        .fsync(Fsync::Always)
        .tick_ms(10)
        .limits_ticks(15, 40)
        .start()?;
    let leader = cluster.wait_for_leader(WAIT).ok_or("no leader elected")?;
    println!(
        "3 nodes started, node {leader} elected leader in {:?}",
        t.elapsed()
    );

    // A client on a follower: its writes are forwarded to the leader.
    let follower = cluster
        .ids()
        .into_iter()
        .find(|i| *i != leader)
        .ok_or("no follower")?;
    let client = cluster.client(follower)?;
    let watcher = cluster.client(leader)?;
    println!(
        "session 0x{:016x} attached to node {}",
        client.session_id().0,
        client.node_id()
    );

    client.create(
        "/app",
        &b"v0"[..],
        &Acl::open_unsafe(),
        CreateMode::Persistent,
    )?;
    let (data, stat) = watcher.get_data("/app", true)?; // leaves a watch
    println!(
        "read /app = {:?} (version {})",
        String::from_utf8_lossy(&data),
        stat.version
    );

    let t = Instant::now();
    client.set_data("/app", &b"v1"[..], 0)?;
    loop {
        // The stream also carries session events (Connected comes first).
        if let Event::Watch(w) = watcher.events().recv_timeout(WAIT)? {
            println!(
                "watch fired: {:?} on {} after {:?}",
                w.event_type,
                w.path,
                t.elapsed()
            );
            break;
        }
    }

    // Sequential writes: one outstanding at a time (each one fsynced on a quorum).
    let n = 200;
    let t = Instant::now();
    for i in 0..n {
        client.set_data("/app", format!("seq-{i}").into_bytes(), -1)?;
    }
    let per = t.elapsed() / n;
    println!("{n} sequential setData: {:?} each", per);

    // Pipelined writes: many outstanding, completed in FIFO order.
    let n = 5_000u32;
    let t = Instant::now();
    let calls: Vec<_> = (0..n)
        .map(|i| {
            client.create_async(
                &format!("/app/k{i}"),
                &b"x"[..],
                &Acl::open_unsafe(),
                CreateMode::Persistent,
            )
        })
        .collect();
    let mut acked = Vec::new();
    let mut unknown = 0;
    for c in calls {
        match c.wait() {
            Ok(path) => acked.push(path),
            // ConnectionLoss: the outcome is unknown (the node left the quorum, e.g.
            // on an overloaded machine); the session moves on by itself.
            Err(e) if e.is_retryable() => {
                unknown += 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
    if !client.is_connected() {
        client.wait_connected(WAIT);
    }
    if unknown > 0 {
        println!("{unknown} pipelined creates got ConnectionLoss (outcome unknown)");
    }
    let secs = t.elapsed().as_secs_f64();
    println!("{n} pipelined creates: {:.0} writes/s", f64::from(n) / secs);

    let t = Instant::now();
    for _ in 0..1_000 {
        client.get_data("/app", false)?;
    }
    println!("1000 local reads: {:?} each", t.elapsed() / 1_000);

    // Kill the leader in the middle of a write stream.
    let stream: Vec<_> = (0..500u32)
        .map(|i| {
            (
                format!("/app/s{i}"),
                client.create_async(
                    &format!("/app/s{i}"),
                    &b"y"[..],
                    &Acl::open_unsafe(),
                    CreateMode::Persistent,
                ),
            )
        })
        .collect();
    let mut stream = stream.into_iter();
    for (path, call) in stream.by_ref().take(100) {
        if call.wait().is_ok() {
            acked.push(path);
        }
    }
    let t = Instant::now();
    cluster.crash(leader);
    println!("killed leader node {leader} after 100 of 500 streamed writes were acknowledged");
    let mut lost_in_flight = 0;
    for (path, call) in stream {
        // A write cut off by the crash reports ConnectionLoss: its outcome is unknown.
        match call.wait() {
            Ok(_) => acked.push(path),
            Err(_) => lost_in_flight += 1,
        }
    }
    println!(
        "{lost_in_flight} streamed writes got ConnectionLoss (outcome unknown, not acknowledged)"
    );
    let new_leader = cluster.wait_for_leader(WAIT).ok_or("no new leader")?;
    if !client.is_connected() {
        client.wait_connected(WAIT);
    }
    client.set_data("/app", &b"after failover"[..], -1)?;
    println!(
        "node {new_leader} leads; first write after the crash committed {:?} after the kill",
        t.elapsed()
    );

    // Every acknowledged write survived, on every remaining node.
    for id in cluster.running() {
        let c = cluster.client(id)?;
        c.sync("/")?;
        let mut missing = 0;
        for p in &acked {
            if c.exists(p, false)?.is_none() {
                missing += 1;
            }
        }
        println!(
            "node {id}: {} acknowledged writes checked, {missing} missing",
            acked.len()
        );
        if missing > 0 {
            return Err("an acknowledged write was lost".into());
        }
    }

    // The old leader comes back, catches up from its files and the new leader.
    let t = Instant::now();
    cluster.restart(leader)?;
    let zxid = cluster
        .wait_converged(WAIT)
        .map_err(|d| format!("not converged: {d:?}"))?;
    println!(
        "node {leader} restarted and caught up to zxid {zxid} in {:?}",
        t.elapsed()
    );
    let digests = cluster.digests();
    println!(
        "tree digests: {:?}",
        digests
            .iter()
            .map(|(id, _, d)| format!("node {id}: {d:016x}"))
            .collect::<Vec<_>>()
    );
    if let Some(s) = cluster.stats(new_leader) {
        println!(
            "leader stats: {} znodes, {} sessions, latency min/avg/max {}/{}/{} µs",
            s.server.znode_count,
            s.server.session_count,
            s.latency_min_us,
            s.latency_avg_us,
            s.latency_max_us
        );
    }
    client.close()?;
    cluster.shutdown();
    println!("done");
    Ok(())
}

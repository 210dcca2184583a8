//! Master election with failover: three candidates on a three-node in-process
//! ensemble. The current master's node crashes; the master is told at once that it
//! may no longer lead, its session expires, and the next candidate takes over.
//!
//! Run it with `cargo run --example master_election`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ensemble::{ClientOptions, Cluster};
use recipes::{ConnectionState, Coordinator, CoordinatorOptions, LeaderLatch};

const WAIT: Duration = Duration::from_secs(20);

fn options() -> CoordinatorOptions {
    CoordinatorOptions {
        client: ClientOptions {
            // Short sessions: a dead master is replaced within about a second.
            session_timeout_ms: 1_000,
            ..ClientOptions::default()
        },
        renew_session: true,
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut cluster = Cluster::builder(3).tick_ms(10).start()?;
    let zk_leader = cluster.wait_for_leader(WAIT).ok_or("no ensemble leader")?;
    println!("ensemble of 3 nodes is up (node {zk_leader} leads the ensemble itself)");

    // Each candidate runs on its own node and can only talk to that node, like a
    // process co-located with its server: when the node dies, so does its session.
    let mut candidates = Vec::new();
    for (i, node) in cluster.ids().into_iter().enumerate() {
        let name = format!("candidate-{}", i + 1);
        let coord = Coordinator::connect(&[cluster.handle(node).ok_or("no node")?], options())?;
        let n2 = name.clone();
        coord.add_state_listener(move |s| match s {
            ConnectionState::Suspended => println!("  {n2}: connection SUSPENDED"),
            ConnectionState::Lost => println!("  {n2}: session LOST (expired)"),
            ConnectionState::Reconnected => println!("  {n2}: RECONNECTED"),
            _ => {}
        });
        let latch = LeaderLatch::start(Arc::clone(&coord), "/election/master", &name)?;
        let n3 = name.clone();
        latch.add_listener(move |lead| {
            if lead {
                println!("  {n3}: I am the master now");
            } else {
                println!("  {n3}: I am no longer the master");
            }
        });
        // Join one after another so the order is easy to follow.
        let t = Instant::now();
        while latch.node().is_none() && t.elapsed() < WAIT {
            std::thread::sleep(Duration::from_millis(5));
        }
        println!("{name} joined the election through node {node}");
        candidates.push((name, node, latch));
    }

    let (first, first_node, first_latch) = &candidates[0];
    if !first_latch.await_leadership(Some(WAIT)) {
        return Err("the first candidate never became master".into());
    }
    let who = candidates[1].2.leader()?.map(|p| p.id).unwrap_or_default();
    println!("everyone agrees: the master is {who}");

    println!("crashing node {first_node}, where {first} runs...");
    let t = Instant::now();
    cluster.crash(*first_node);
    let (second, _, second_latch) = &candidates[1];
    if !second_latch.await_leadership(Some(WAIT)) {
        return Err("no failover".into());
    }
    println!(
        "failover done in {:?}: {second} is master; {first} believes it leads: {}",
        t.elapsed(),
        first_latch.has_leadership()
    );
    let others: Vec<String> = second_latch
        .participants()?
        .into_iter()
        .map(|p| p.id)
        .collect();
    println!("candidates in line now: {others:?}");

    println!("{second} steps down on purpose...");
    second_latch.close();
    let (third, _, third_latch) = &candidates[2];
    if !third_latch.await_leadership(Some(WAIT)) {
        return Err("no handover".into());
    }
    println!("{third} is master. Done.");
    for (_, _, l) in &candidates {
        l.close();
    }
    Ok(())
}

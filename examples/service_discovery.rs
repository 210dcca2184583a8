//! Service discovery: two instances of an "api" service register themselves with
//! their address; a client keeps a live list of instances. One instance's process
//! dies (its session ends) and the client's list follows.
//!
//! Run it with `cargo run --example service_discovery`.

use std::time::{Duration, Instant};

use bytes::Bytes;
use ensemble::Cluster;
use recipes::{CacheEvent, Coordinator, CoordinatorOptions, ServiceDiscovery, ServiceInstance};

fn wait_for(what: &str, mut f: impl FnMut() -> bool) -> Result<(), String> {
    let t = Instant::now();
    while !f() {
        if t.elapsed() > Duration::from_secs(10) {
            return Err(format!("timed out waiting for {what}"));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cluster = Cluster::builder(3).tick_ms(10).start()?;
    cluster
        .wait_for_leader(Duration::from_secs(20))
        .ok_or("no leader")?;
    let connect =
        |node| Coordinator::connect(&cluster.handles_from(node), CoordinatorOptions::default());

    let client = ServiceDiscovery::new(connect(3)?, "/services")?;
    let cache = client.service_cache("api")?;
    cache.add_listener(|e| match e {
        // Instances are the children of /services/api.
        CacheEvent::Created { path, .. } if path.starts_with("/services/api/") => {
            println!("  client: instance appeared at {path}")
        }
        CacheEvent::Deleted { path } if path.starts_with("/services/api/") => {
            println!("  client: instance vanished from {path}")
        }
        _ => {}
    });
    cache.wait_initialized(Duration::from_secs(10));

    let mut servers = Vec::new();
    for (i, port) in [(1u64, 8080u16), (2, 8081)] {
        let coord = connect(i)?;
        let sd = ServiceDiscovery::new(coord.clone(), "/services")?;
        let inst = ServiceInstance {
            name: "api".into(),
            id: format!("api-{i}"),
            address: format!("10.0.0.{i}"),
            port,
            payload: Bytes::from_static(b"version=1.4"),
        };
        sd.register(&inst)?;
        println!(
            "server api-{i} registered at {}:{}",
            inst.address, inst.port
        );
        servers.push((coord, sd));
    }
    wait_for("two instances", || cache.instances().len() == 2)?;
    println!("services known: {:?}", client.query_for_names()?);
    for i in cache.instances() {
        println!(
            "client can call {} at {}:{} ({})",
            i.id,
            i.address,
            i.port,
            String::from_utf8_lossy(&i.payload)
        );
    }

    println!("server api-1 stops (its session closes, its registration goes with it)...");
    let (coord1, sd1) = servers.remove(0);
    coord1.close();
    wait_for("one instance", || cache.instances().len() == 1)?;
    drop(sd1);
    let left: Vec<String> = cache.instances().into_iter().map(|i| i.id).collect();
    println!("client now routes to: {left:?}");
    cache_close_note();
    Ok(())
}

fn cache_close_note() {
    println!("shutting down (api-2 unregisters as it goes)");
}

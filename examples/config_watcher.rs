//! A configuration watcher: a tree cache on `/config` (one persistent recursive watch
//! plus an initial read) prints every change an operator makes, and always holds the
//! whole configuration locally.
//!
//! Run it with `cargo run --example config_watcher`.

use std::time::Duration;

use ensemble::{Acl, Cluster, CreateMode};
use recipes::{CacheEvent, Coordinator, CoordinatorOptions, TreeCache};

fn show(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cluster = Cluster::builder(3).tick_ms(10).start()?;
    cluster
        .wait_for_leader(Duration::from_secs(20))
        .ok_or("no leader")?;
    let admin = cluster.client(1)?;
    let open = Acl::open_unsafe();
    admin.create("/config", &b""[..], &open, CreateMode::Persistent)?;
    admin.create("/config/db", &b""[..], &open, CreateMode::Persistent)?;
    admin.create(
        "/config/db/url",
        &b"db1:5432"[..],
        &open,
        CreateMode::Persistent,
    )?;
    println!("operator wrote the initial configuration");

    let coord = Coordinator::connect(&cluster.handles_from(2), CoordinatorOptions::default())?;
    let cache = TreeCache::start_with_listener(coord, "/config", |e| match e {
        CacheEvent::Created { path, data } => println!("  watcher: {path} = {:?}", show(data)),
        CacheEvent::Changed { path, data } => {
            println!("  watcher: {path} changed to {:?}", show(data))
        }
        CacheEvent::Deleted { path } => println!("  watcher: {path} removed"),
        CacheEvent::Initialized => println!("  watcher: initial read complete"),
        _ => {}
    })?;
    if !cache.wait_initialized(Duration::from_secs(10)) {
        return Err("cache never initialized".into());
    }

    // The operator makes one change at a time and waits until the watcher has it (a
    // cache reads a node after its event, so changes made faster than that are
    // seen merged: the cache always converges on the latest state).
    let settle = |what: &str, f: &dyn Fn(&TreeCache) -> bool| -> Result<(), String> {
        let t = std::time::Instant::now();
        while !f(&cache) {
            if t.elapsed() > Duration::from_secs(10) {
                return Err(format!("watcher never saw {what}"));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(())
    };
    let value = |c: &TreeCache, p: &str| c.get(p).map(|n| show(&n.data));

    println!("operator points the service at a new database...");
    admin.set_data("/config/db/url", &b"db2:5432"[..], -1)?;
    settle("the new url", &|c| {
        value(c, "/config/db/url").as_deref() == Some("db2:5432")
    })?;
    println!("operator adds a feature flag...");
    admin.create("/config/features", &b""[..], &open, CreateMode::Persistent)?;
    admin.create(
        "/config/features/dark_mode",
        &b"on"[..],
        &open,
        CreateMode::Persistent,
    )?;
    settle("the flag", &|c| {
        value(c, "/config/features/dark_mode").as_deref() == Some("on")
    })?;
    println!("operator turns the flag off...");
    admin.set_data("/config/features/dark_mode", &b"off"[..], -1)?;
    settle("the flag off", &|c| {
        value(c, "/config/features/dark_mode").as_deref() == Some("off")
    })?;
    println!("operator removes the flag...");
    admin.delete("/config/features/dark_mode", -1)?;
    settle("the flag removed", &|c| {
        c.get("/config/features/dark_mode").is_none()
    })?;

    let url = cache
        .get("/config/db/url")
        .map(|n| show(&n.data))
        .unwrap_or_default();
    println!("the service reads its configuration locally: db url = {url}");
    println!(
        "cached keys: {:?}",
        cache.snapshot().keys().collect::<Vec<_>>()
    );
    cache.close();
    Ok(())
}

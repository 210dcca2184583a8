//! The master-worker pattern: an elected master assigns tasks to registered workers
//! through znodes; a worker that dies has its tasks reassigned; when the master steps
//! down, the standby master takes over from the state in the tree.
//!
//! Layout: `/mw/workers/<w>` (ephemeral: alive workers), `/mw/tasks/<t>` (pending
//! tasks), `/mw/assign/<w>/<t>` (assignments), `/mw/status/<t>` (results).
//!
//! Run it with `cargo run --example master_worker`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ensemble::{Acl, Client, ClientOptions, Cluster, CreateMode};
use recipes::{
    channel, Coordinator, CoordinatorOptions, GroupMember, LeaderSelector, LeadershipContext,
    Notice,
};

const TASKS: usize = 12;

fn ls(c: &Client, path: &str) -> Vec<String> {
    c.get_children(path, false).unwrap_or_default()
}

fn mkdir(c: &Client, path: &str) {
    let _ = c.create(
        path,
        Bytes::new(),
        &Acl::open_unsafe(),
        CreateMode::Persistent,
    );
}

/// One pass of the master: clean up after dead workers, assign unassigned tasks.
fn assign(name: &str, c: &Client) {
    let alive = ls(c, "/mw/workers");
    let mut load: BTreeMap<String, usize> = alive.iter().map(|w| (w.clone(), 0)).collect();
    let mut assigned = Vec::new();
    for w in ls(c, "/mw/assign") {
        let dir = format!("/mw/assign/{w}");
        let tasks = ls(c, &dir);
        if alive.contains(&w) {
            load.insert(w.clone(), tasks.len());
            assigned.extend(tasks);
        } else {
            for t in tasks {
                println!("  {name}: {w} is gone; {t} goes back to the pool");
                let _ = c.delete(&format!("{dir}/{t}"), -1);
            }
            let _ = c.delete(&dir, -1);
        }
    }
    for t in ls(c, "/mw/tasks") {
        if assigned.contains(&t) {
            continue;
        }
        let Some((w, n)) = load.iter_mut().min_by_key(|(_, n)| **n) else {
            return; // no worker alive: wait for one
        };
        mkdir(c, &format!("/mw/assign/{w}"));
        let made = c.create(
            &format!("/mw/assign/{w}/{t}"),
            Bytes::new(),
            &Acl::open_unsafe(),
            CreateMode::Persistent,
        );
        if made.is_ok() {
            println!("  {name}: assigned {t} to {w}");
            *n += 1;
        }
    }
}

fn master(ctx: &LeadershipContext) {
    let name = ctx.id().to_string();
    println!("{name} is the master now");
    let coord = ctx.coordinator();
    while ctx.is_leader() {
        let c = coord.client();
        assign(&name, &c);
        if ls(&c, "/mw/tasks").is_empty() {
            println!("{name}: every task is done");
            break;
        }
        // Wake on any change of workers or tasks (or after a short while).
        let (tx, rx) = channel::unbounded::<Notice>();
        let _ = coord.children_watch("/mw/workers", &tx);
        let _ = coord.children_watch("/mw/tasks", &tx);
        let _ = rx.recv_timeout(Duration::from_millis(100));
    }
    if !ctx.is_leader() {
        println!("{name} is no longer the master");
    }
}

fn worker(name: String, coord: Arc<Coordinator>, die: Arc<AtomicBool>, stop: Arc<AtomicBool>) {
    let _member = match GroupMember::join(Arc::clone(&coord), "/mw/workers", &name, Bytes::new()) {
        Ok(m) => m,
        Err(e) => {
            println!("{name}: cannot register: {e}");
            return;
        }
    };
    println!("{name} registered");
    let mine = format!("/mw/assign/{name}");
    while !stop.load(Ordering::SeqCst) {
        let c = coord.client();
        mkdir(&c, &mine);
        let (tx, rx) = channel::unbounded::<Notice>();
        let tasks = coord
            .children_watch(&mine, &tx)
            .map(|(t, _)| t)
            .unwrap_or_default();
        for t in tasks {
            if die.load(Ordering::SeqCst) {
                println!("{name} CRASHES while holding {t}");
                coord.close();
                return;
            }
            std::thread::sleep(Duration::from_millis(30)); // the work
            let done = c.create(
                &format!("/mw/status/{t}"),
                format!("done by {name}").into_bytes(),
                &Acl::open_unsafe(),
                CreateMode::Persistent,
            );
            if done.is_err() {
                println!("{name}: {t} was already done (duplicate work!)");
            } else {
                println!("{name} finished {t}");
            }
            let _ = c.delete(&format!("/mw/tasks/{t}"), -1);
            let _ = c.delete(&format!("{mine}/{t}"), -1);
        }
        let _ = rx.recv_timeout(Duration::from_millis(100));
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cluster = Cluster::builder(3).tick_ms(10).start()?;
    cluster
        .wait_for_leader(Duration::from_secs(20))
        .ok_or("no leader")?;
    let opts = CoordinatorOptions {
        client: ClientOptions {
            session_timeout_ms: 1_000,
            ..ClientOptions::default()
        },
        renew_session: false,
    };
    let connect = |node| Coordinator::connect(&cluster.handles_from(node), opts.clone());
    let setup = cluster.client(1)?;
    for p in [
        "/mw",
        "/mw/workers",
        "/mw/tasks",
        "/mw/assign",
        "/mw/status",
    ] {
        mkdir(&setup, p);
    }
    for i in 1..=TASKS {
        setup.create(
            &format!("/mw/tasks/task-{i:02}"),
            Bytes::new(),
            &Acl::open_unsafe(),
            CreateMode::Persistent,
        )?;
    }
    println!("{TASKS} tasks submitted");

    let stop = Arc::new(AtomicBool::new(false));
    let mut dies = Vec::new();
    let mut workers = Vec::new();
    for w in 1..=3u64 {
        let die = Arc::new(AtomicBool::new(false));
        dies.push(Arc::clone(&die));
        let (coord, stop) = (connect(w)?, Arc::clone(&stop));
        workers.push(std::thread::spawn(move || {
            worker(format!("worker-{w}"), coord, die, stop)
        }));
    }
    // Two master candidates: the second waits in line.
    let m1 = LeaderSelector::start(connect(1)?, "/mw/master", "master-1", false, master)?;
    let t = Instant::now();
    while m1.terms() == 0 && t.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let m2 = LeaderSelector::start(connect(2)?, "/mw/master", "master-2", false, master)?;

    let done = |n: usize| {
        let t = Instant::now();
        while ls(&setup, "/mw/status").len() < n && t.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(5));
        }
        ls(&setup, "/mw/status").len() >= n
    };
    if !done(3) {
        return Err("no progress".into());
    }
    println!("-- worker-2 is going to crash");
    dies[1].store(true, Ordering::SeqCst);
    if !done(7) {
        return Err("no progress after the worker crash".into());
    }
    println!("-- master-1 steps down");
    m1.close();
    if !done(TASKS) {
        return Err("tasks left undone".into());
    }
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        let _ = w.join();
    }
    m2.close();
    let mut by_worker: BTreeMap<String, usize> = BTreeMap::new();
    for t in ls(&setup, "/mw/status") {
        let (d, _) = setup.get_data(&format!("/mw/status/{t}"), false)?;
        *by_worker
            .entry(String::from_utf8_lossy(&d).into_owned())
            .or_default() += 1;
    }
    println!("all {TASKS} tasks done exactly once: {by_worker:?}");
    Ok(())
}

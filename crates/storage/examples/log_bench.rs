//! Durable-append benchmark for `FileLog` behind `GroupCommitLog`.
//!
//! ```text
//! cargo run --release -p storage --example log_bench -- [--dir DIR] [--secs 2]
//!     [--appenders 1,8,64,512] [--payload 100] [--fsync always|never] [--flusher]
//!     [--no-writer]
//! ```
//!
//! Prints, for each number of concurrent appenders (each waits for its record to be
//! durable before appending the next): records/s, MB/s, fsyncs/s, p50/p99 latency,
//! and the ratio to one-fsync-per-record, measured as the raw `write + fdatasync`
//! rate of the same disk in the same run.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark binary

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use bytes::Bytes;
use storage::{FileLog, FileLogOptions, FsyncPolicy, GroupCommitLog};

struct Args {
    dir: Option<PathBuf>,
    secs: f64,
    appenders: Vec<usize>,
    payload: usize,
    fsync: FsyncPolicy,
    prealloc_kib: u64,
    flusher: bool,
    no_writer: bool,
}

fn parse_args() -> Args {
    let mut args = Args {
        dir: None,
        secs: 2.0,
        appenders: vec![1, 8, 64, 512],
        payload: 100,
        fsync: FsyncPolicy::Always,
        prealloc_kib: FileLogOptions::default().prealloc_bytes >> 10,
        flusher: false,
        no_writer: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--dir" => args.dir = Some(PathBuf::from(value())),
            "--secs" => args.secs = value().parse().expect("--secs"),
            "--flusher" => args.flusher = true,
            "--no-writer" => args.no_writer = true,
            "--prealloc-kib" => args.prealloc_kib = value().parse().expect("--prealloc-kib"),
            "--payload" => args.payload = value().parse().expect("--payload"),
            "--appenders" => {
                args.appenders = value()
                    .split(',')
                    .map(|s| s.parse().expect("--appenders"))
                    .collect()
            }
            "--fsync" => {
                args.fsync = match value().as_str() {
                    "always" => FsyncPolicy::Always,
                    "never" => FsyncPolicy::Never,
                    other => panic!("--fsync always|never, not {other}"),
                }
            }
            other => panic!("unknown flag {other}"),
        }
    }
    args
}

/// Raw `pwrite(payload) + fdatasync` loop on a preallocated file: fsyncs per second.
/// With `spinners > 0`, that many threads keep CPUs busy meanwhile: on an idle VM the
/// completion of an fsync can wait for a timer tick, which busy CPUs avoid.
fn raw_fsync_rate(dir: &Path, payload: usize, secs: f64, spinners: usize) -> f64 {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let spin: Vec<_> = (0..spinners)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            })
        })
        .collect();
    let rate = raw_fsync_loop(dir, payload, secs);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in spin {
        t.join().unwrap();
    }
    rate
}

fn raw_fsync_loop(dir: &Path, payload: usize, secs: f64) -> f64 {
    let path = dir.join("raw-fsync");
    let f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let size = 4u64 << 20;
    f.write_all_at(&vec![0u8; size as usize], 0).unwrap();
    f.sync_all().unwrap();
    let buf = vec![7u8; payload];
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let start = Instant::now();
    let mut n = 0u64;
    while Instant::now() < deadline {
        f.write_all_at(&buf, (n * payload as u64) % (size - payload as u64))
            .unwrap();
        f.sync_data().unwrap();
        n += 1;
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    std::fs::remove_file(&path).unwrap();
    rate
}

struct Point {
    appenders: usize,
    records: u64,
    syncs: u64,
    sync_ns: u64,
    secs: f64,
    cpu_secs: f64,
    p50_us: f64,
    p99_us: f64,
}

/// User + system CPU time of this process so far (Linux `/proc/self/stat`, 100 Hz
/// ticks); 0 where unavailable.
fn cpu_secs() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the ")" that closes the command name: state is field 3, utime 14.
    let Some(rest) = stat.rsplit(')').next() else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
}

fn run_point(dir: &Path, appenders: usize, args: &Args) -> Point {
    let (payload, secs) = (args.payload, args.secs);
    let opts = FileLogOptions {
        fsync: args.fsync,
        prealloc_bytes: args.prealloc_kib << 10,
        ..FileLogOptions::default()
    };
    let file_log = FileLog::open(dir, opts).unwrap();
    let log = Arc::new(if args.flusher {
        GroupCommitLog::with_flusher(file_log).unwrap()
    } else {
        GroupCommitLog::new(file_log)
    });
    let body = Bytes::from(vec![0xabu8; payload]);
    let barrier = Arc::new(Barrier::new(appenders + 1));
    let deadline_holder = Arc::new(parking_lot::Mutex::new(None::<Instant>));
    let threads: Vec<_> = (0..appenders)
        .map(|_| {
            let log = log.clone();
            let body = body.clone();
            let barrier = barrier.clone();
            let deadline_holder = deadline_holder.clone();
            std::thread::Builder::new()
                .stack_size(128 << 10)
                .spawn(move || {
                    let mut lat = Vec::with_capacity(1 << 14);
                    barrier.wait();
                    let deadline = deadline_holder.lock().unwrap();
                    loop {
                        let t0 = Instant::now();
                        if t0 >= deadline {
                            break;
                        }
                        log.append_next_durable(|_| body.clone()).unwrap();
                        lat.push(t0.elapsed().as_nanos() as u64);
                    }
                    lat
                })
                .unwrap()
        })
        .collect();
    let before = log.stats();
    *deadline_holder.lock() = Some(Instant::now() + Duration::from_secs_f64(secs));
    let cpu0 = cpu_secs();
    let start = Instant::now();
    barrier.wait();
    let mut lat: Vec<u64> = Vec::new();
    for t in threads {
        lat.extend(t.join().unwrap());
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = cpu_secs() - cpu0;
    let after = log.stats();
    lat.sort_unstable();
    let pct = |p: f64| {
        if lat.is_empty() {
            0.0
        } else {
            lat[((lat.len() - 1) as f64 * p) as usize] as f64 / 1000.0
        }
    };
    Point {
        appenders,
        records: lat.len() as u64,
        syncs: after.syncs - before.syncs,
        sync_ns: after.sync_ns - before.sync_ns,
        secs: elapsed,
        cpu_secs: cpu,
        p50_us: pct(0.50),
        p99_us: pct(0.99),
    }
}

/// The Node's log-writer pattern: one thread appends batches of `batch` records and
/// syncs after each. Returns (records/s, fsyncs/s).
fn run_writer_batches(dir: &Path, batch: usize, args: &Args) -> (f64, f64) {
    use storage::{LogEntry, LogStore};
    let opts = FileLogOptions {
        fsync: args.fsync,
        prealloc_bytes: args.prealloc_kib << 10,
        ..FileLogOptions::default()
    };
    let mut log = FileLog::open(dir, opts).unwrap();
    let body = Bytes::from(vec![0xabu8; args.payload]);
    let deadline = Instant::now() + Duration::from_secs_f64(args.secs);
    let start = Instant::now();
    let (mut next, mut syncs) = (1u64, 0u64);
    let mut entries = Vec::with_capacity(batch);
    while Instant::now() < deadline {
        entries.clear();
        for _ in 0..batch {
            entries.push(LogEntry {
                zxid: next,
                payload: body.clone(),
            });
            next += 1;
        }
        log.append(&entries).unwrap();
        log.sync().unwrap();
        syncs += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    ((next - 1) as f64 / secs, syncs as f64 / secs)
}

fn main() {
    let args = parse_args();
    let _tmp;
    let root = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d).unwrap();
            d.clone()
        }
        None => {
            _tmp = tempfile::tempdir().unwrap();
            _tmp.path().to_path_buf()
        }
    };
    let idle = raw_fsync_rate(&root, args.payload, args.secs, 0);
    println!(
        "raw write+fdatasync, idle CPUs: {idle:.0}/s ({:.1} us each)",
        1e6 / idle
    );
    let raw = raw_fsync_rate(&root, args.payload, args.secs, 1);
    println!(
        "raw write+fdatasync, one CPU kept busy: {raw:.0}/s ({:.1} us each)",
        1e6 / raw
    );
    println!(
        "one-fsync-per-record limit: raw write+fdatasync (one CPU kept busy) measured for \
         {:.2} s right before and after each point; raw_us, p99/raw and x_1fsync use their mean. \
         fsync_us = mean fsync inside the run, rec/fs = records per fsync; p99/fs and x_fs are \
         p99 and records/s in units of that in-run fsync; cpu_us/r = process CPU time per record",
        args.secs / 4.0
    );
    println!(
        "{:>9} {:>10} {:>6} {:>8} {:>7} {:>8} {:>8} {:>8} {:>7} {:>7} {:>8} {:>6} {:>6} {:>8}",
        "appenders",
        "records/s",
        "MB/s",
        "fsyncs/s",
        "rec/fs",
        "fsync_us",
        "raw_us",
        "p50_us",
        "p99_us",
        "p99/raw",
        "x_1fsync",
        "p99/fs",
        "x_fs",
        "cpu_us/r"
    );
    for &n in &args.appenders {
        let dir = root.join(format!("run-{n}"));
        let raw0 = raw_fsync_rate(&root, args.payload, args.secs / 4.0, 1);
        let p = run_point(&dir, n, &args);
        let raw1 = raw_fsync_rate(&root, args.payload, args.secs / 4.0, 1);
        let raw = (raw0 + raw1) / 2.0;
        let raw_us = 1e6 / raw;
        let rps = p.records as f64 / p.secs;
        let fsync_us = p.sync_ns as f64 / 1e3 / p.syncs.max(1) as f64;
        println!(
            "{:>9} {:>10.0} {:>6.2} {:>8.0} {:>7.1} {:>8.1} {:>8.1} {:>8.1} {:>7.0} {:>7.2} {:>8.1} {:>6.1} {:>6.1} {:>8.2}",
            p.appenders,
            rps,
            rps * args.payload as f64 / 1e6,
            p.syncs as f64 / p.secs,
            p.records as f64 / p.syncs.max(1) as f64,
            fsync_us,
            raw_us,
            p.p50_us,
            p.p99_us,
            p.p99_us / raw_us,
            rps / raw,
            p.p99_us / fsync_us,
            rps * fsync_us / 1e6,
            p.cpu_secs * 1e6 / p.records.max(1) as f64,
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
    if args.no_writer {
        return;
    }
    for batch in [256usize, 4096] {
        let dir = root.join(format!("writer-{batch}"));
        let (rps, sps) = run_writer_batches(&dir, batch, &args);
        println!(
            "one writer thread, batches of {batch}: {rps:.0} records/s, {:.2} MB/s, {sps:.0} fsyncs/s",
            rps * args.payload as f64 / 1e6
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
    let after = raw_fsync_rate(&root, args.payload, args.secs, 1);
    println!(
        "raw write+fdatasync, one CPU kept busy, after the runs: {after:.0}/s ({:.1} us each)",
        1e6 / after
    );
}

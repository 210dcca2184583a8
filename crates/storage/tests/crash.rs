//! A real crash test: a child process appends durably from several threads and prints
//! every zxid whose durability was reported; the parent kills it with SIGKILL at a
//! random point, reopens the log, and checks that recovery returns a gap-free prefix
//! holding every reported record, byte for byte. Repeated on the same directory, so
//! each round also recovers what the previous kills left.
//!
//! In half of the rounds the parent also plays power loss after the kill: it tears the
//! log at a random byte inside a record that was never reported durable (zeroing
//! everything after it), which recovery must cut as a torn tail.
//!
//! `STORAGE_CRASH_ITERS=200 cargo test -p storage --test crash` runs more rounds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;

use bytes::Bytes;
use rand::{Rng, SeedableRng};
use storage::frame::{parse_record, Parsed, SEGMENT_HEADER_BYTES};
use storage::{FileLog, FileLogOptions, GroupCommitLog, LogStore, MAX_RECORD_BYTES};

const CHILD_ENV: &str = "STORAGE_CRASH_CHILD_DIR";

fn opts() -> FileLogOptions {
    FileLogOptions {
        segment_bytes: 256 << 10,
        prealloc_bytes: 64 << 10,
        ..FileLogOptions::default()
    }
}

/// Payload of record `z`: mostly small, sometimes large (large writes are the ones a
/// kill can cut in the middle).
fn payload(z: u64) -> Bytes {
    let len = if z.is_multiple_of(97) {
        150_000
    } else {
        (z % 300) as usize
    };
    let seed = z.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    Bytes::from(
        (0..len)
            .map(|i| (seed >> ((i % 8) * 8)) as u8 ^ i as u8)
            .collect::<Vec<u8>>(),
    )
}

/// The child: runs only when the parent re-executes this binary with the env var set.
#[test]
#[ignore = "run by killed_writer_recovers_every_reported_record as a child process"]
fn crash_child_writer() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let log = Arc::new(GroupCommitLog::new(FileLog::open(&dir, opts()).unwrap()));
    let out = Arc::new(std::sync::Mutex::new(std::io::stdout()));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let log = log.clone();
            let out = out.clone();
            std::thread::spawn(move || loop {
                let z = log.append_next_durable(payload).unwrap();
                let mut o = out.lock().unwrap();
                writeln!(o, "D {z}").unwrap();
                o.flush().unwrap();
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

fn run_round(dir: &std::path::Path, kill_after_lines: usize) -> u64 {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args([
            "crash_child_writer",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut max_reported = 0u64;
    let mut seen = 0usize;
    while seen < kill_after_lines {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(z) = line.strip_prefix("D ") {
                    max_reported = max_reported.max(z.parse().unwrap());
                    seen += 1;
                }
            }
            _ => panic!("child ended before it was killed"),
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // Lines already in the pipe were reported before the kill: they count too.
    for line in lines.map_while(Result::ok) {
        if let Some(z) = line.strip_prefix("D ") {
            max_reported = max_reported.max(z.parse().unwrap());
        }
    }
    max_reported
}

/// Power loss: tears the newest segment inside a random record above `reported`.
/// Returns the zxid of the torn record, if there was one to tear.
fn tear_unreported_tail(dir: &std::path::Path, reported: u64, rng: &mut impl Rng) -> Option<u64> {
    let mut segs: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().len() == 20)
        .collect();
    segs.sort();
    let path = segs.pop()?;
    let bytes = std::fs::read(&path).unwrap();
    let mut at = SEGMENT_HEADER_BYTES;
    let mut candidates = Vec::new();
    while let Parsed::Record { zxid, size, .. } = parse_record(&bytes[at..], MAX_RECORD_BYTES) {
        if zxid > reported {
            candidates.push((zxid, at, size));
        }
        at += size;
    }
    if candidates.is_empty() {
        return None;
    }
    let (zxid, offset, size) = candidates[rng.gen_range(0..candidates.len())];
    let cut = offset + rng.gen_range(1..size);
    storage::fault::zero_range_in_file(&path, cut as u64, bytes.len() - cut).unwrap();
    Some(zxid)
}

#[test]
fn killed_writer_recovers_every_reported_record() {
    let iters: u64 = std::env::var("STORAGE_CRASH_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x5eed);
    let mut floor = 0u64;
    let mut torn_rounds = 0;
    for round in 0..iters {
        let kill_after = rng.gen_range(1..1500);
        let reported = run_round(dir.path(), kill_after);
        let torn = if rng.gen_bool(0.5) {
            tear_unreported_tail(dir.path(), reported, &mut rng)
        } else {
            None
        };
        let log = FileLog::open(dir.path(), opts())
            .unwrap_or_else(|e| panic!("round {round}: recovery failed: {e}"));
        let last = log.last_zxid().unwrap_or(0);
        assert!(
            last >= reported.max(floor),
            "round {round}: lost reported-durable records: last {last}, reported {reported}, floor {floor}"
        );
        assert_eq!(log.base_zxid(), 0);
        if let Some(t) = torn {
            assert_eq!(
                last,
                t - 1,
                "round {round}: recovery must cut at the torn record"
            );
        }
        let all = log.read_range(1, last).unwrap();
        assert_eq!(
            all.len() as u64,
            last,
            "round {round}: gap in recovered log"
        );
        for (i, e) in all.iter().enumerate() {
            assert_eq!(e.zxid, i as u64 + 1, "round {round}");
            assert_eq!(
                e.payload,
                payload(e.zxid),
                "round {round}: payload of {}",
                e.zxid
            );
        }
        torn_rounds += usize::from(log.recovery_report().torn_tail.is_some());
        floor = last;
    }
    // Informational: how often the kill left a torn record that recovery cut.
    println!("{iters} rounds, {torn_rounds} with a torn tail cut by recovery, {floor} records");
}

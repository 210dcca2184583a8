//! `ensemble-server <config file> [--log-level LEVEL] [--stdin-stop] [--check]`
//!
//! Runs one Ensemble server from a `zoo.cfg`-like file (see `ensemble_server::config`).
//!
//! Stopping: a clean stop happens on SIGTERM, SIGINT or SIGHUP (through the `ctrlc`
//! crate), when the configured `stop_file` appears, or, with `--stdin-stop`, when stdin
//! reaches end of file or reads the line `stop` (handy under a supervisor or a test
//! harness that owns the pipe). SIGKILL ends the process at once, which is also safe:
//! every acknowledged write is already logged on a quorum, and with `fsync = always` on
//! disk; the data directory is recovered on the next start.
#![forbid(unsafe_code)]

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use ensemble_server::logger::{parse_level, StderrLogger};
use ensemble_server::{RunningServer, ServerConfig};

const USAGE: &str = "usage: ensemble-server <config file> [--log-level error|warn|info|debug|trace] [--stdin-stop] [--check]";

fn main() -> ExitCode {
    let mut config: Option<PathBuf> = None;
    let mut level = tracing::Level::INFO;
    let mut stdin_stop = false;
    let mut check = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--log-level" => match args.next().as_deref().and_then(parse_level) {
                Some(l) => level = l,
                None => {
                    eprintln!("--log-level needs one of error, warn, info, debug, trace\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
            "--stdin-stop" => stdin_stop = true,
            "--check" => check = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other if config.is_none() && !other.starts_with('-') => config = Some(other.into()),
            other => {
                eprintln!("unknown argument {other:?}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let Some(path) = config else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    StderrLogger::new(level).install();
    let cfg = match ServerConfig::load(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{}: {e}", path.display());
            return ExitCode::from(2);
        }
    };
    if check {
        println!(
            "{}: ok (server {}, {} servers)",
            path.display(),
            cfg.server_id,
            cfg.servers.len()
        );
        return ExitCode::SUCCESS;
    }
    let server = match RunningServer::start(&cfg) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    let (stop_tx, stop_rx) = crossbeam_channel::bounded::<&'static str>(1);
    {
        let tx = stop_tx.clone();
        if let Err(e) = ctrlc::set_handler(move || {
            let _ = tx.try_send("signal");
        }) {
            tracing::warn!("cannot catch SIGTERM/SIGINT ({e}); use the stop file or --stdin-stop");
        }
    }
    if stdin_stop {
        let tx = stop_tx.clone();
        let _ = std::thread::Builder::new()
            .name("stdin-stop".into())
            .spawn(move || {
                for line in std::io::stdin().lock().lines() {
                    match line {
                        Ok(l) if l.trim() == "stop" => break,
                        Ok(_) => {}
                        Err(_) => break,
                    }
                }
                let _ = tx.send("stdin");
            });
    }
    let why = loop {
        if let Ok(why) = stop_rx.recv_timeout(Duration::from_millis(200)) {
            break why;
        }
        if cfg.stop_file.as_ref().is_some_and(|f| f.exists()) {
            break "stop file";
        }
    };
    tracing::info!("stopping ({why})");
    server.stop();
    if let Some(f) = &cfg.stop_file {
        let _ = std::fs::remove_file(f);
    }
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

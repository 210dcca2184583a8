//! `ensemble-cli -s host:port[,host:port...] [-a admin host:port] [-t session ms] [command ...]`
//!
//! With a command, runs it and exits (status 1 on error); without one, opens an
//! interactive prompt. Type `help` for the commands.
#![forbid(unsafe_code)]

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use ensemble_server::cli::{execute, plain, render_event, split_words, Command, HELP};
use ensemble_server::config::resolve;
use ensemble_server::{RemoteClient, RemoteOptions};

const USAGE: &str = "usage: ensemble-cli -s host:port[,host:port...] [-a admin-host:port] [-t session-timeout-ms] [command args...]";

fn main() -> ExitCode {
    let mut servers: Vec<SocketAddr> = Vec::new();
    let mut admin: Option<SocketAddr> = None;
    let mut timeout_ms = 10_000u32;
    let mut rest: Vec<String> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if !rest.is_empty() {
            rest.push(a);
            continue;
        }
        match a.as_str() {
            "-s" | "--servers" => {
                let Some(list) = args.next() else {
                    eprintln!("-s needs host:port[,host:port...]\n{USAGE}");
                    return ExitCode::from(2);
                };
                for s in list.split(',').filter(|s| !s.is_empty()) {
                    match resolve("-s", s.trim()) {
                        Ok(a) => servers.push(a),
                        Err(e) => {
                            eprintln!("{e}");
                            return ExitCode::from(2);
                        }
                    }
                }
            }
            "-a" | "--admin" => match args.next().map(|s| resolve("-a", &s)) {
                Some(Ok(a)) => admin = Some(a),
                Some(Err(e)) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
                None => {
                    eprintln!("-a needs host:port\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
            "-t" => match args.next().and_then(|t| t.parse().ok()) {
                Some(t) => timeout_ms = t,
                None => {
                    eprintln!("-t needs a number of milliseconds\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
            "-h" | "--help" => {
                println!("{USAGE}\n\n{HELP}");
                return ExitCode::SUCCESS;
            }
            _ => rest.push(a),
        }
    }
    let one_shot = !rest.is_empty();
    let needs_session = !matches!(
        rest.first().map(String::as_str),
        Some("ruok" | "mntr" | "metrics" | "help")
    );
    let client = if needs_session && !servers.is_empty() {
        let opts = RemoteOptions {
            session_timeout_ms: timeout_ms,
            connect_timeout: Duration::from_secs(10),
            ..RemoteOptions::default()
        };
        match RemoteClient::connect(&servers, opts) {
            Ok(c) => Some(c),
            Err(e) => {
                eprintln!("cannot connect to {servers:?}: {}", plain(&e));
                return ExitCode::from(1);
            }
        }
    } else {
        None
    };
    let mut out = std::io::stdout();
    if one_shot {
        let r = Command::parse(&rest).and_then(|c| execute(&c, client.as_ref(), admin, &mut out));
        if let Some(c) = &client {
            let _ = c.close();
        }
        return match r {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(1)
            }
        };
    }
    if let Some(c) = &client {
        println!(
            "connected to {} (session {:#x})",
            c.server_addr(),
            c.session_id().0
        );
    }
    let stdin = std::io::stdin();
    loop {
        if let Some(c) = &client {
            while let Ok(e) = c.events().try_recv() {
                println!("{}", render_event(&e));
            }
        }
        print!("ensemble> ");
        let _ = out.flush();
        let mut line = String::new();
        match stdin.lock().read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let words = match split_words(&line) {
            Ok(w) if w.is_empty() => continue,
            Ok(w) => w,
            Err(e) => {
                println!("error: {e}");
                continue;
            }
        };
        match Command::parse(&words) {
            Ok(Command::Quit) => break,
            Ok(cmd) => {
                if let Err(e) = execute(&cmd, client.as_ref(), admin, &mut out) {
                    println!("error: {e}");
                }
            }
            Err(e) => println!("error: {e}"),
        }
    }
    if let Some(c) = &client {
        let _ = c.close();
    }
    ExitCode::SUCCESS
}

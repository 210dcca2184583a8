//! `ensemble-server` stops cleanly on SIGTERM: a one-server ensemble on 127.0.0.1 is
//! started, answers `ruok`, gets SIGTERM (sent with `kill -TERM <pid>`), and must exit
//! with status 0 after logging its clean stop. The process is killed by PID if not.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ensemble_server::cli::ask_admin;

#[test]
fn sigterm_stops_the_server_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let ls: Vec<TcpListener> = (0..3)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let ports: Vec<u16> = ls.iter().map(|l| l.local_addr().unwrap().port()).collect();
    drop(ls);
    let cfg = dir.path().join("server.cfg");
    std::fs::write(
        &cfg,
        format!(
            "server_id = 1\nserver.1 = 127.0.0.1:{};127.0.0.1:{}\ndata_dir = {}\nclient_port = {}\n\
             client_address = 127.0.0.1\nadmin_port = {}\ntick_ms = 50\nfsync = always\n",
            ports[0],
            ports[1],
            dir.path().join("data").display(),
            ports[1],
            ports[2]
        ),
    )
    .unwrap();
    let log = dir.path().join("server.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ensemble-server"))
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let admin: SocketAddr = format!("127.0.0.1:{}", ports[2]).parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ask_admin(admin, "ruok").is_ok_and(|t| t.trim() == "imok") {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "server never answered ruok: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let sent = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(sent.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("server did not stop on SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "exit status {status:?}; log:\n{text}");
    assert!(
        text.contains("stopping (signal)") && text.contains("stopped"),
        "log:\n{text}"
    );
}

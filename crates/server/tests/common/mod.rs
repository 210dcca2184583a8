//! Helpers shared by the server's integration tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::TcpListener;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use ensemble::Event;

/// Three distinct free ports on 127.0.0.1: every listener is held until all are
/// picked, so the OS cannot hand the same port out twice.
pub fn ports() -> (u16, u16, u16) {
    let l: Vec<TcpListener> = (0..3)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let p = |i: usize| l[i].local_addr().unwrap().port();
    (p(0), p(1), p(2))
}

/// The next event that is not a session event (those may come between, e.g. after a
/// spurious election on a loaded machine), waiting up to `timeout` in all.
pub fn next_non_session_event(events: &Receiver<Event>, timeout: Duration) -> Event {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(Event::Session(_)) => continue,
            Ok(ev) => return ev,
            Err(e) => panic!("no event but session events within {timeout:?}: {e:?}"),
        }
    }
}

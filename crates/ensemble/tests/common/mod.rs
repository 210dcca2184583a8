//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use ensemble::{Acl, Client, Event, SessionEvent};

/// How long a test waits for a condition before failing (generous: CI machines are
/// small and busy; nothing here asserts on speed).
pub const WAIT: Duration = Duration::from_secs(20);

/// Polls `f` until it holds, failing the test after [`WAIT`].
pub fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("timed out waiting for {what}");
}

/// ZooKeeper's OPEN_ACL_UNSAFE.
pub fn open() -> Vec<Acl> {
    Acl::open_unsafe()
}

/// Waits until `c` reports that its session lost its node (`Disconnected`).
pub fn wait_disconnected(c: &Client) {
    wait_until("Disconnected", || {
        c.events()
            .try_iter()
            .any(|e| e == Event::Session(SessionEvent::Disconnected))
    });
}

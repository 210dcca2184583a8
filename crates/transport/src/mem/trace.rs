//! An optional, bounded record of what the in-memory network did with each frame, so
//! a failing simulation can print the last network events next to its seed.

use std::collections::VecDeque;
use std::fmt;

use super::faults::{Link, LinkStats};

/// Why a frame was lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DropReason {
    /// The drop fault fired.
    Fault,
    /// The link was cut (partition or isolation), at send time or while in flight.
    Partitioned,
    /// No live endpoint had the receiver's id.
    NoReceiver,
    /// The sender or receiver was restarted or shut down while the frame was in flight.
    Restarted,
    /// The receiver's event channel was full when the frame fell due.
    InboxFull,
}

/// What happened to a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NetEventKind {
    /// Accepted by `send`.
    Sent,
    /// Refused by `send` with `QueueFull`.
    Rejected,
    /// An extra copy was made.
    Duplicated,
    /// Handed to the receiver.
    Delivered,
    /// Lost.
    Dropped(DropReason),
}

/// One traced network event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetEvent {
    /// Network time of the event, in microseconds.
    pub at_us: u64,
    /// The link.
    pub link: Link,
    /// What happened.
    pub kind: NetEventKind,
    /// Payload size.
    pub len_bytes: usize,
}

impl fmt::Display for NetEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:>10}us {}->{} {:?} ({} bytes)",
            self.at_us, self.link.from.0, self.link.to.0, self.kind, self.len_bytes
        )
    }
}

/// Counts events into stats and, when enabled, keeps the last `max` of them.
#[derive(Default)]
pub(crate) struct Recorder {
    events: VecDeque<NetEvent>,
    max: usize,
}

impl Recorder {
    pub(crate) fn enable(&mut self, max: usize) {
        self.max = max;
        while self.events.len() > max {
            self.events.pop_front();
        }
    }

    pub(crate) fn record(&mut self, stats: &mut LinkStats, event: NetEvent) {
        match event.kind {
            NetEventKind::Sent => stats.sent += 1,
            NetEventKind::Rejected => stats.rejected += 1,
            NetEventKind::Duplicated => stats.duplicated += 1,
            NetEventKind::Delivered => stats.delivered += 1,
            NetEventKind::Dropped(_) => stats.dropped += 1,
        }
        if self.max > 0 {
            if self.events.len() == self.max {
                self.events.pop_front();
            }
            self.events.push_back(event);
        }
    }

    pub(crate) fn drain(&mut self) -> Vec<NetEvent> {
        self.events.drain(..).collect()
    }
}

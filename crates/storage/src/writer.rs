//! [`LogWriter`]: the log-writer thread a Node runs beside its deterministic core.
//!
//! The core emits log commands in order (append, truncate, purge, reset); the writer
//! thread applies them in that order, batching every append that queued up meanwhile
//! into one write and one fsync, and reports [`LogEvent::Durable`] ("durable up to
//! zxid") back. The core releases ACKs only on that event (ZOOKEEPER-3911).

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::{GroupCommitLog, LogEntry, LogStore, StorageError};

/// Most commands taken from the queue before a sync (bounds the latency of a batch).
pub const WRITER_BATCH_COMMANDS_MAX: usize = 4096;

/// A command for the writer thread, applied in submission order.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum LogCommand {
    /// Append these entries (durable later, reported by [`LogEvent::Durable`]).
    Append(Vec<LogEntry>),
    /// [`LogStore::truncate_after`].
    TruncateAfter(u64),
    /// [`LogStore::purge_before`].
    PurgeBefore(u64),
    /// [`LogStore::reset`].
    Reset(u64),
}

/// What the writer thread reports, in order.
#[derive(Debug)]
#[non_exhaustive]
pub enum LogEvent {
    /// Every entry appended so far with a zxid at or below this is durable.
    Durable(u64),
    /// A `TruncateAfter(z)` completed durably.
    Truncated(u64),
    /// A `PurgeBefore(z)` completed.
    Purged(u64),
    /// A `Reset(base)` completed durably.
    Reset(u64),
    /// A command failed. After a fatal error ([`StorageError::is_fatal`]) the store is
    /// poisoned and every later command fails too: the owner must stop and reopen it.
    Failed(StorageError),
}

/// Owns a log-writer thread. Reads go through [`LogWriter::log`] at any time.
pub struct LogWriter<L: LogStore + 'static> {
    tx: Option<Sender<LogCommand>>,
    log: Arc<GroupCommitLog<L>>,
    handle: Option<JoinHandle<()>>,
}

impl<L: LogStore + 'static> LogWriter<L> {
    /// Starts the thread (named `log-writer`). `on_event` runs on it, in order; keep
    /// it short (typically a channel send to the core thread).
    pub fn spawn(
        log: L,
        on_event: impl FnMut(LogEvent) + Send + 'static,
    ) -> Result<Self, StorageError> {
        let log = Arc::new(GroupCommitLog::new(log));
        let (tx, rx) = channel();
        let shared = log.clone();
        let handle = std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || writer_loop(&shared, &rx, on_event))
            .map_err(|e| StorageError::io("spawn log writer", "<thread>", e))?;
        Ok(LogWriter {
            tx: Some(tx),
            log,
            handle: Some(handle),
        })
    }

    /// Queues a command (never blocks). Fails only if the writer thread is gone.
    pub fn submit(&self, cmd: LogCommand) -> Result<(), StorageError> {
        let stopped = || StorageError::Poisoned;
        self.tx
            .as_ref()
            .ok_or_else(stopped)?
            .send(cmd)
            .map_err(|_| stopped())
    }

    /// The shared log, for reads (`with_log`, `durable_zxid`).
    pub fn log(&self) -> &Arc<GroupCommitLog<L>> {
        &self.log
    }

    /// Applies every queued command, syncs, stops the thread and returns the log
    /// ([`StorageError::Poisoned`] if a clone of [`LogWriter::log`] is still alive).
    pub fn shutdown(mut self) -> Result<L, StorageError> {
        self.stop();
        let log = Arc::clone(&self.log);
        drop(self);
        Arc::try_unwrap(log)
            .map(GroupCommitLog::into_inner)
            .map_err(|_| StorageError::Poisoned)
    }

    fn stop(&mut self) {
        self.tx = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl<L: LogStore + 'static> Drop for LogWriter<L> {
    fn drop(&mut self) {
        self.stop();
    }
}

fn writer_loop<L: LogStore>(
    log: &GroupCommitLog<L>,
    rx: &Receiver<LogCommand>,
    mut on_event: impl FnMut(LogEvent),
) {
    let mut unsynced = false;
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        let mut taken = 0;
        while let Some(cmd) = next.take() {
            taken += 1;
            match cmd {
                LogCommand::Append(entries) => match log.append(&entries) {
                    Ok(()) => unsynced = true,
                    Err(e) => on_event(LogEvent::Failed(e)),
                },
                other => {
                    if std::mem::take(&mut unsynced) {
                        report_sync(log, &mut on_event);
                    }
                    let (result, done) = match other {
                        LogCommand::TruncateAfter(z) => (
                            log.with_log(|l| l.truncate_after(z)),
                            LogEvent::Truncated(z),
                        ),
                        LogCommand::PurgeBefore(z) => {
                            (log.with_log(|l| l.purge_before(z)), LogEvent::Purged(z))
                        }
                        LogCommand::Reset(b) => (log.with_log(|l| l.reset(b)), LogEvent::Reset(b)),
                        LogCommand::Append(_) => continue,
                    };
                    on_event(match result {
                        Ok(()) => done,
                        Err(e) => LogEvent::Failed(e),
                    });
                }
            }
            if taken < WRITER_BATCH_COMMANDS_MAX {
                next = rx.try_recv().ok();
            }
        }
        if std::mem::take(&mut unsynced) {
            report_sync(log, &mut on_event);
        }
    }
}

fn report_sync<L: LogStore>(log: &GroupCommitLog<L>, on_event: &mut impl FnMut(LogEvent)) {
    on_event(match log.sync() {
        Ok(z) => LogEvent::Durable(z),
        Err(e) => LogEvent::Failed(e),
    });
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::{FaultyLog, MemLog};

    fn e(z: u64) -> LogEntry {
        LogEntry::new(z, format!("t{z}"))
    }

    #[test]
    fn commands_apply_in_order_and_durability_is_reported() {
        let (tx, rx) = channel();
        let w = LogWriter::spawn(MemLog::new(), move |ev| tx.send(ev).unwrap()).unwrap();
        for z in 1..=50 {
            w.submit(LogCommand::Append(vec![e(z)])).unwrap();
        }
        w.submit(LogCommand::TruncateAfter(40)).unwrap();
        w.submit(LogCommand::Append(vec![e(41), e(42)])).unwrap();
        let log = w.shutdown().unwrap();
        assert_eq!(log.last_zxid(), Some(42));
        let events: Vec<LogEvent> = rx.iter().collect();
        let durable: Vec<u64> = events
            .iter()
            .filter_map(|ev| match ev {
                LogEvent::Durable(z) => Some(*z),
                _ => None,
            })
            .collect();
        assert!(durable.windows(2).all(|w| w[0] <= w[1] || w[1] == 42));
        assert_eq!(durable.last(), Some(&42));
        let trunc_at = events
            .iter()
            .position(|ev| matches!(ev, LogEvent::Truncated(40)))
            .unwrap();
        // Everything appended before the truncation was reported durable before it.
        assert!(matches!(events[trunc_at - 1], LogEvent::Durable(50)));
    }

    #[test]
    fn a_failed_sync_is_reported() {
        let mut inner = FaultyLog::new(MemLog::new());
        inner.fail_next_sync();
        let (tx, rx) = channel();
        let w = LogWriter::spawn(inner, move |ev| tx.send(ev).unwrap()).unwrap();
        w.submit(LogCommand::Append(vec![e(1)])).unwrap();
        drop(w);
        let events: Vec<LogEvent> = rx.iter().collect();
        assert!(matches!(events.as_slice(), [LogEvent::Failed(err)] if err.is_fatal()));
    }
}

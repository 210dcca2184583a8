//! A tiny `tracing` subscriber writing one line per event to stderr:
//! `<unix time ms> <LEVEL> <target>: <message> key=value ...`. Spans are ignored
//! (their fields are not printed). Enough for a server binary without pulling in
//! `tracing-subscriber`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// Writes events at `max_level` and more severe to stderr.
#[derive(Debug)]
pub struct StderrLogger {
    max_level: Level,
    next_span: AtomicU64,
}

impl StderrLogger {
    /// A logger for `max_level` (e.g. `Level::INFO`).
    pub fn new(max_level: Level) -> Self {
        StderrLogger {
            max_level,
            next_span: AtomicU64::new(1),
        }
    }

    /// Installs it as the global default; false if one was installed already.
    pub fn install(self) -> bool {
        tracing::subscriber::set_global_default(self).is_ok()
    }
}

/// Parses `error`, `warn`, `info`, `debug` or `trace`.
pub fn parse_level(s: &str) -> Option<Level> {
    match s.to_ascii_lowercase().as_str() {
        "error" => Some(Level::ERROR),
        "warn" => Some(Level::WARN),
        "info" => Some(Level::INFO),
        "debug" => Some(Level::DEBUG),
        "trace" => Some(Level::TRACE),
        _ => None,
    }
}

struct Line(String);

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, " {value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            let _ = write!(self.0, " {value}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

/// Formats one event's line (without the time stamp).
pub fn format_event(event: &Event<'_>) -> String {
    let meta = event.metadata();
    let mut line = Line(format!("{:>5} {}:", meta.level(), meta.target()));
    event.record(&mut line);
    line.0
}

impl Subscriber for StderrLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        // In tracing, more verbose levels compare greater.
        *metadata.level() <= self.max_level
    }

    fn new_span(&self, _span: &Attributes<'_>) -> Id {
        Id::from_u64(self.next_span.fetch_add(1, Ordering::Relaxed).max(1))
    }

    fn record(&self, _span: &Id, _values: &Record<'_>) {}

    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let line = format_event(event);
        let _ = writeln!(std::io::stderr().lock(), "{ms}{line}");
    }

    fn enter(&self, _span: &Id) {}

    fn exit(&self, _span: &Id) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse() {
        assert_eq!(parse_level("INFO"), Some(Level::INFO));
        assert_eq!(parse_level("loud"), None);
        let l = StderrLogger::new(Level::INFO);
        assert!(Level::WARN <= l.max_level);
        assert!(Level::DEBUG > l.max_level);
    }
}

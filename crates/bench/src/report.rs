//! [`Report`]: the result of one run, as a human table and as one JSON line.

use crate::hist::Histogram;
use crate::json::{self, Value};
use crate::opts::Options;

/// The result of one run: the settings, the counts, the latency histogram of the
/// measured operations, and scenario-specific fields.
#[derive(Debug, Clone)]
pub struct Report {
    /// Workload or scenario name.
    pub workload: &'static str,
    /// Voting nodes.
    pub nodes: u64,
    /// Observers.
    pub observers: u64,
    /// "mem" or "file".
    pub storage: &'static str,
    /// fsync on.
    pub fsync: bool,
    /// Client sessions.
    pub sessions: usize,
    /// Outstanding requests per session.
    pub outstanding: usize,
    /// Value size in bytes.
    pub value_size: usize,
    /// Where sessions attach.
    pub attach: &'static str,
    /// Measured wall time in seconds.
    pub measured_s: f64,
    /// Operations completed successfully in the measured window.
    pub ops: u64,
    /// Failed operations.
    pub errors: u64,
    /// Latencies of the measured operations (ns).
    pub latency: Histogram,
    /// Scenario-specific fields, in order.
    pub extra: Vec<(String, Value)>,
}

/// ns → µs.
fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

impl Report {
    /// An empty report for `o`.
    pub fn new(o: &Options) -> Report {
        Report {
            workload: o.workload.name(),
            nodes: o.nodes,
            observers: o.observers,
            storage: o.storage.name(),
            fsync: o.fsync,
            sessions: o.sessions,
            outstanding: o.outstanding,
            value_size: o.value_size,
            attach: o.attach.name(),
            measured_s: 0.0,
            ops: 0,
            errors: 0,
            latency: Histogram::new(),
            extra: Vec::new(),
        }
    }

    /// Adds a scenario-specific field.
    pub fn push(&mut self, key: &str, v: impl Into<Value>) {
        self.extra.push((key.to_string(), v.into()));
    }

    /// Operations per second over the measured window.
    pub fn ops_per_s(&self) -> f64 {
        if self.measured_s > 0.0 {
            self.ops as f64 / self.measured_s
        } else {
            0.0
        }
    }

    /// Every field, in report order.
    pub fn fields(&self) -> Vec<(String, Value)> {
        let h = &self.latency;
        let mut f: Vec<(String, Value)> = vec![
            ("workload".into(), self.workload.into()),
            ("nodes".into(), self.nodes.into()),
            ("observers".into(), self.observers.into()),
            ("storage".into(), self.storage.into()),
            ("fsync".into(), self.fsync.into()),
            ("sessions".into(), self.sessions.into()),
            ("outstanding".into(), self.outstanding.into()),
            ("value_size".into(), self.value_size.into()),
            ("attach".into(), self.attach.into()),
            ("duration_s".into(), self.measured_s.into()),
            ("ops".into(), self.ops.into()),
            ("ops_per_s".into(), self.ops_per_s().into()),
            ("p50_us".into(), us(h.quantile(0.5)).into()),
            ("p99_us".into(), us(h.quantile(0.99)).into()),
            ("p999_us".into(), us(h.quantile(0.999)).into()),
            ("max_us".into(), us(h.max()).into()),
            ("mean_us".into(), (h.mean() / 1000.0).into()),
            ("errors".into(), self.errors.into()),
        ];
        f.extend(self.extra.iter().cloned());
        f
    }

    /// One JSON object on one line.
    pub fn to_json(&self) -> String {
        json::object(&self.fields())
    }

    /// A human-readable two-column table.
    pub fn to_table(&self) -> String {
        let fields = self.fields();
        let width = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        let mut out = String::new();
        for (k, v) in fields {
            let v = match v {
                Value::Str(s) => s,
                Value::UInt(n) => n.to_string(),
                Value::Float(x) => format!("{x:.1}"),
                Value::Bool(b) => b.to_string(),
            };
            out.push_str(&format!("{k:<width$}  {v}\n"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn json_has_the_issue_fields_in_one_line() {
        let mut r = Report::new(&Options::defaults());
        r.measured_s = 2.0;
        r.ops = 10;
        r.latency.record(1500);
        r.push("extra_ms", 3.5);
        let j = r.to_json();
        assert!(!j.contains('\n'));
        for k in [
            "workload",
            "nodes",
            "storage",
            "fsync",
            "sessions",
            "outstanding",
            "ops_per_s",
            "p50_us",
            "p99_us",
            "p999_us",
            "max_us",
            "errors",
            "extra_ms",
        ] {
            assert!(j.contains(&format!("\"{k}\":")), "{k} missing in {j}");
        }
        assert!(j.contains("\"ops_per_s\":5,"), "{j}");
        assert!(j.contains("\"p50_us\":1.5,"), "{j}");
        assert!(r.to_table().contains("ops_per_s"));
    }
}

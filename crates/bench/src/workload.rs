//! The request workloads (set, get, mixed, create-delete): one thread per session,
//! each keeping `outstanding` requests in flight and timing each from issue to reply.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ensemble::{Acl, Call, Client, CreateMode, Error, Stat};

use crate::hist::Histogram;
use crate::opts::{Options, Workload};
use crate::report::Report;
use crate::setup;
use crate::BenchError;

/// Parent of the create-delete workload's lock nodes.
pub const LOCK_PARENT: &str = "/bench-locks";

/// What one session measured.
#[derive(Debug, Default)]
pub struct SessionResult {
    /// Latencies of operations issued inside the measured window.
    pub latency: Histogram,
    /// Those operations that succeeded.
    pub ops: u64,
    /// Failed operations (any time).
    pub errors: u64,
    /// The first error seen, if any.
    pub first_error: Option<String>,
    /// (issue time, latency ns) of every measured operation, when the window asks.
    pub trace: Vec<(Instant, u64)>,
    /// (issue time, latency ns) of the slowest measured operation.
    pub slowest: Option<(Instant, u64)>,
}

impl SessionResult {
    fn error(&mut self, e: &Error) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(e.to_string());
        }
    }
}

/// A small xorshift generator: key and read/write choice without a dependency.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    /// Seeded (0 is mapped to a fixed non-zero state).
    pub fn new(seed: u64) -> Self {
        XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    /// A value in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// One request in flight.
enum Pending {
    Set(Call<Stat>),
    Get(Call<(Bytes, Stat)>),
    Create(Call<String>),
    Delete(Call<()>),
}

/// The time window of a run.
#[derive(Debug, Clone)]
pub struct Window {
    /// Operations issued from here on are measured.
    pub measure_from: Instant,
    /// No operation is issued from here on.
    pub end: Instant,
    /// Set to end the run early (scenarios run a load until told to stop).
    pub stop: Option<Arc<AtomicBool>>,
    /// Keep every measured latency with its issue time ([`SessionResult::trace`]).
    pub trace: bool,
}

impl Window {
    /// Starts now: `warmup` unmeasured, then `duration` measured.
    pub fn starting_now(warmup: Duration, duration: Duration) -> Window {
        let measure_from = Instant::now() + warmup;
        Window {
            measure_from,
            end: measure_from + duration,
            stop: None,
            trace: false,
        }
    }

    /// A window measured from now until `stop` is set.
    pub fn until(stop: Arc<AtomicBool>) -> Window {
        let now = Instant::now();
        Window {
            measure_from: now,
            end: now + Duration::from_secs(365 * 24 * 3600),
            stop: Some(stop),
            trace: false,
        }
    }

    fn open(&self, now: Instant) -> bool {
        now < self.end
            && !self
                .stop
                .as_ref()
                .is_some_and(|s| s.load(Ordering::Acquire))
    }
}

/// Drives one session until the window ends.
fn drive(
    c: &Client,
    o: &Options,
    s: usize,
    keys: &[String],
    value: &Bytes,
    w: &Window,
) -> SessionResult {
    let mut r = SessionResult::default();
    let mut rng = XorShift::new(o.seed ^ (s as u64).wrapping_mul(0x100_0000_01B3));
    let mut inflight: VecDeque<(Instant, Pending)> = VecDeque::with_capacity(o.outstanding);
    let mut i = s.wrapping_mul(7919);
    let acl = Acl::open_unsafe();
    let lock_prefix = format!("{LOCK_PARENT}/lock-");
    loop {
        if w.open(Instant::now()) {
            while inflight.len() < o.outstanding.max(1) {
                i = i.wrapping_add(1);
                let t0 = Instant::now();
                let p = match o.workload {
                    Workload::Get => Pending::Get(c.get_data_async(&keys[i % keys.len()], false)),
                    Workload::Mixed => {
                        let k = &keys[rng.below(keys.len())];
                        if (rng.next_u64() as f64 / u64::MAX as f64) < o.read_ratio {
                            Pending::Get(c.get_data_async(k, false))
                        } else {
                            Pending::Set(c.set_data_async(k, value.clone(), -1))
                        }
                    }
                    Workload::CreateDelete => Pending::Create(c.create_async(
                        &lock_prefix,
                        Bytes::new(),
                        &acl,
                        CreateMode::EphemeralSequential,
                    )),
                    _ => Pending::Set(c.set_data_async(&keys[i % keys.len()], value.clone(), -1)),
                };
                inflight.push_back((t0, p));
            }
        }
        let Some((t0, p)) = inflight.pop_front() else {
            break;
        };
        let res = match p {
            Pending::Set(call) => call.wait().map(|_| ()),
            Pending::Get(call) => call.wait().map(|_| ()),
            Pending::Delete(call) => call.wait(),
            Pending::Create(call) => match call.wait() {
                // The lock pattern: the pair counts as one op, timed to the delete.
                Ok(path) => {
                    inflight.push_back((t0, Pending::Delete(c.delete_async(&path, -1))));
                    continue;
                }
                Err(e) => Err(e),
            },
        };
        match res {
            Ok(()) if t0 >= w.measure_from && t0 < w.end => {
                r.ops += 1;
                let ns = u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX);
                r.latency.record(ns);
                if r.slowest.is_none_or(|(_, max)| ns > max) {
                    r.slowest = Some((t0, ns));
                }
                if w.trace {
                    r.trace.push((t0, ns));
                }
            }
            Ok(()) => {}
            Err(e) => {
                r.error(&e);
                if !e.is_retryable() && c.is_connected() {
                    continue;
                }
                // Connection trouble: back off a little instead of spinning.
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
    r
}

/// Runs `clients` (one thread each) through the workload of `o` over `w`.
pub fn run_sessions(
    clients: Vec<Client>,
    o: &Options,
    keys: Arc<Vec<String>>,
    value: &Bytes,
    w: Window,
) -> Result<Vec<SessionResult>, BenchError> {
    let handles: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(s, c)| {
            let o = o.clone();
            let keys = Arc::clone(&keys);
            let value = value.clone();
            let w = w.clone();
            std::thread::Builder::new()
                .name(format!("bench-session-{s}"))
                .spawn(move || {
                    let r = drive(&c, &o, s, &keys, &value, &w);
                    let _ = c.close();
                    r
                })
                .map_err(|e| BenchError::Setup(e.to_string()))
        })
        .collect::<Result<_, _>>()?;
    handles
        .into_iter()
        .map(|h| {
            h.join()
                .map_err(|_| BenchError::Setup("a session thread panicked".into()))
        })
        .collect()
}

/// Folds session results into `rep`.
pub fn fold(rep: &mut Report, results: &[SessionResult]) {
    for r in results {
        rep.ops += r.ops;
        rep.errors += r.errors;
        rep.latency.merge(&r.latency);
    }
    let seen = rep.extra.iter().any(|(k, _)| k == "first_error");
    if let Some(e) = results.iter().find_map(|r| r.first_error.clone()) {
        if !seen {
            rep.push("first_error", e);
        }
    }
}

/// The slowest measured operation of all sessions: (issue time, latency ns).
pub fn slowest(results: &[SessionResult]) -> Option<(Instant, u64)> {
    results
        .iter()
        .filter_map(|r| r.slowest)
        .max_by_key(|(_, ns)| *ns)
}

/// Runs a set / get / mixed / create-delete workload.
pub fn run(o: &Options) -> Result<Report, BenchError> {
    let bench = setup::start(o, o.snapshot_every)?;
    let value = Bytes::from(vec![0x5a; o.value_size]);
    let admin = bench.client(bench.leader)?;
    let keys = o.keys.max(1);
    if o.workload == Workload::CreateDelete {
        setup::ensure(&admin, LOCK_PARENT)?;
    } else {
        setup::create_keys(&admin, keys, &value)?;
    }
    bench.converge()?;
    let _ = admin.close();
    let keys = Arc::new((0..keys).map(setup::key_path).collect::<Vec<_>>());
    let clients = bench.clients(o.attach, o.sessions.max(1))?;
    let w = Window::starting_now(secs(o.warmup), secs(o.duration));
    let host = crate::host::watch(w.measure_from, w.end);
    let measure_from = w.measure_from;
    let results = run_sessions(clients, o, keys, &value, w)?;
    let mut rep = Report::new(o);
    rep.measured_s = o.duration;
    fold(&mut rep, &results);
    crate::host::report(&mut rep, host.join().ok().flatten());
    // When the slowest op was issued, from the start of the measured window.
    if let Some((at, _)) = slowest(&results) {
        rep.push(
            "max_at_s",
            at.saturating_duration_since(measure_from).as_secs_f64(),
        );
    }
    rep.push("leader", bench.leader);
    Ok(rep)
}

/// Seconds as a duration (negative or NaN → zero).
pub fn secs(s: f64) -> Duration {
    Duration::try_from_secs_f64(s).unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slowest_is_the_longest_op_of_any_session() {
        let t = Instant::now();
        let r = |s: Option<(Instant, u64)>| SessionResult {
            slowest: s,
            ..SessionResult::default()
        };
        let later = t + Duration::from_millis(5);
        let results = [
            r(Some((t, 10))),
            r(None),
            r(Some((later, 30))),
            r(Some((t, 20))),
        ];
        assert_eq!(slowest(&results), Some((later, 30)));
        assert_eq!(slowest(&[r(None)]), None);
        assert_eq!(slowest(&[]), None);
    }
}

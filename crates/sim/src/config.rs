//! Settings of one simulation run: cluster shape, timing, the faults the nemesis may
//! use, and deliberate shell bugs ([`Sabotage`]) that prove the checkers work.

/// Which kinds of fault the nemesis may inject. Each seed picks a random subset of the
/// enabled kinds and a random schedule of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Faults {
    /// Symmetric partitions (a random split of the servers into two groups).
    pub partitions: bool,
    /// One-way partitions (`a` cannot reach `b`, `b` still reaches `a`).
    pub one_way: bool,
    /// Bridge partitions: two sides that only one server connects.
    pub bridge: bool,
    /// Crash and restart: queued storage ops are lost, unsynced log writes may be lost
    /// or torn ([`storage::SimLog::crash`]).
    pub crashes: bool,
    /// Power loss: several servers (up to all) crash at the same instant and restart
    /// together later; only synced writes survive anywhere.
    pub power_loss: bool,
    /// Pauses (a stopped process: no ticks, no input, then everything at once).
    pub pauses: bool,
    /// Lossy links: message drop and long, jittery delays (jitter alone never
    /// reorders a link).
    pub lossy_links: bool,
    /// Reordered messages on a link. Beyond the FIFO channels ZAB assumes (TCP):
    /// see [`Faults::tcp_like`].
    pub reorder: bool,
    /// Duplicated messages. Beyond the exactly-once channels ZAB assumes (TCP).
    pub duplicates: bool,
    /// Tick skew: servers tick at different rates and their clocks differ.
    pub tick_skew: bool,
    /// A narrowed zxid counter so leaders roll over to a new epoch often.
    pub narrow_zxid: bool,
    /// Clients that stop heartbeating until their session expires.
    pub client_expiry: bool,
}

impl Faults {
    /// Every fault kind.
    pub fn all() -> Faults {
        Faults {
            partitions: true,
            one_way: true,
            bridge: true,
            crashes: true,
            power_loss: true,
            pauses: true,
            lossy_links: true,
            reorder: true,
            duplicates: true,
            tick_skew: true,
            narrow_zxid: true,
            client_expiry: true,
        }
    }

    /// Every fault that a TCP connection between peers can produce: everything but
    /// reordering and duplication within a link. ZAB assumes FIFO, exactly-once
    /// channels; with reordered or duplicated frames, forwarded client requests are
    /// currently reordered or executed twice (see the crate README).
    pub fn tcp_like() -> Faults {
        Faults {
            reorder: false,
            duplicates: false,
            ..Faults::all()
        }
    }

    /// No faults at all (a calm run).
    pub fn none() -> Faults {
        Faults {
            partitions: false,
            one_way: false,
            bridge: false,
            crashes: false,
            power_loss: false,
            pauses: false,
            lossy_links: false,
            reorder: false,
            duplicates: false,
            tick_skew: false,
            narrow_zxid: false,
            client_expiry: false,
        }
    }

    /// Names of the enabled kinds.
    pub fn names(&self) -> Vec<&'static str> {
        let all = [
            (self.partitions, "partition"),
            (self.one_way, "one-way"),
            (self.bridge, "bridge"),
            (self.crashes, "crash"),
            (self.power_loss, "power-loss"),
            (self.pauses, "pause"),
            (self.lossy_links, "lossy-links"),
            (self.reorder, "reorder"),
            (self.duplicates, "duplicates"),
            (self.tick_skew, "tick-skew"),
            (self.narrow_zxid, "narrow-zxid"),
            (self.client_expiry, "client-expiry"),
        ];
        all.iter().filter(|(on, _)| *on).map(|(_, n)| *n).collect()
    }
}

impl Default for Faults {
    fn default() -> Self {
        Faults::all()
    }
}

/// A deliberate bug in the simulated shell, to show that the checkers catch real
/// protocol violations. Never use outside tests of the simulator itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Sabotage {
    /// No bug (the default).
    #[default]
    None,
    /// The disk reports appends durable before they are synced: a follower ACKs
    /// proposals it can lose in a crash.
    AckBeforeDurable,
    /// The disk reports a TRUNC done without truncating: stale uncommitted entries
    /// come back after a restart.
    SkipTruncate,
    /// The disk reports epochs saved without saving them: a restarted server forgets
    /// the epochs it promised.
    ForgetEpochs,
    /// Periodic snapshots are never stored but the log before them is still purged:
    /// after a power loss committed txns exist nowhere.
    PurgeWithoutSnapshot,
}

/// Timing and shape of a run. Times are virtual.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The seed: the whole run is a function of it and of this configuration.
    pub seed: u64,
    /// Voting servers (ids `1..=voters`).
    pub voters: u64,
    /// Observers (ids after the voters).
    pub observers: u64,
    /// Simulated clients.
    pub clients: usize,
    /// Requests one client may have outstanding: each seed draws the limit from
    /// `1..=2 × outstanding_max`.
    pub outstanding_max: usize,
    /// Length of one tick, in ms.
    pub tick_ms: u64,
    /// Virtual duration of the faulty phase, in ms.
    pub duration_ms: u64,
    /// Ticks allowed after healing for the cluster to converge and commit a new write.
    pub liveness_ticks: u64,
    /// Fault kinds the nemesis may use.
    pub faults: Faults,
    /// Snapshot every this many applied txns (0: never).
    pub snapshot_every_txns: u64,
    /// Simulation steps before the run is cut short (every loop is bounded).
    pub steps_max: u64,
    /// A deliberate shell bug (tests of the checkers only).
    pub sabotage: Sabotage,
    /// Readable trace lines kept for a failure report.
    pub trace_lines: usize,
    /// Require a reply's zxid to be exactly the replica's state it reflects (the
    /// default). When false, a reply labelled with the zxid just *before* its own txn
    /// (or before the state a held read saw) is accepted — the behaviour of `ensemble`
    /// before the simulator found it (replies completed before the applied zxid
    /// advanced).
    pub strict_reply_zxid: bool,
    /// Hold errors a server returns in the same instant a request arrives to
    /// linearizability (the default). When false they are left out of the check — the
    /// behaviour of `ensemble` before the simulator found that its leader validated
    /// them against uncommitted proposals or a stale tree without a txn.
    pub strict_local_errors: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 0,
            voters: 3,
            observers: 0,
            clients: 4,
            outstanding_max: 4,
            tick_ms: 10,
            duration_ms: 6_000,
            liveness_ticks: 600,
            faults: Faults::tcp_like(),
            snapshot_every_txns: 64,
            steps_max: 3_000_000,
            sabotage: Sabotage::None,
            trace_lines: 120,
            strict_reply_zxid: true,
            strict_local_errors: true,
        }
    }
}

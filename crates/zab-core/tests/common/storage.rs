//! The harness's storage: FIFO durable pipeline per node (lost on crash), the disk
//! that survives, restarts from it, and the snapshot format of the trivial state
//! machine (its list of applied txns).

use bytes::{Buf, BufMut, Bytes, BytesMut};
use rand::Rng;
use zab_core::{Core, Entry, Persisted, ServerId, Zxid};

use super::{Cluster, Mutation};

#[derive(Clone, Debug)]
pub(crate) enum StorageOp {
    Append(Vec<Entry>),
    Truncate(Zxid),
    Install(Zxid, Vec<Entry>),
    SaveAccepted(u32),
    SaveCurrent(u32),
    /// The leader reads its log for a learner's sync.
    Read {
        token: u64,
        from: Zxid,
        max: usize,
        max_bytes: usize,
    },
}

/// What survives a crash.
#[derive(Clone, Debug, Default)]
pub struct Disk {
    pub accepted: u32,
    pub current: u32,
    pub snapshot: (Zxid, Vec<Entry>),
    pub log: Vec<Entry>,
}

impl Disk {
    /// A disk holding `log` (txns named after their zxid), with epochs set.
    pub fn with_log(accepted: u32, current: u32, zxids: &[(u32, u32)]) -> Self {
        Disk {
            accepted,
            current,
            snapshot: (Zxid::ZERO, Vec::new()),
            log: zxids.iter().map(|(e, c)| txn(*e, *c)).collect(),
        }
    }

    pub fn persisted(&self) -> Persisted {
        Persisted::new(
            self.accepted,
            self.current,
            self.snapshot.0,
            self.snapshot.0,
            self.log.clone(),
        )
    }
}

/// The txn the scenario disks hold at `epoch:counter`.
pub fn txn(epoch: u32, counter: u32) -> Entry {
    Entry {
        zxid: Zxid::new(epoch, counter),
        payload: Bytes::from(format!("txn-{epoch}-{counter}")),
    }
}

pub fn encode_snapshot(entries: &[Entry]) -> Bytes {
    let mut b = BytesMut::new();
    for e in entries {
        b.put_u64(e.zxid.to_u64());
        b.put_u32(e.payload.len() as u32);
        b.put_slice(&e.payload);
    }
    b.freeze()
}

pub fn decode_snapshot(mut data: Bytes) -> Vec<Entry> {
    let mut out = Vec::new();
    while data.has_remaining() {
        let zxid = Zxid::from_u64(data.get_u64());
        let len = data.get_u32() as usize;
        out.push(Entry {
            zxid,
            payload: data.split_to(len),
        });
    }
    out
}

impl Cluster {
    /// Makes up to `max` pending storage operations of `id` durable, in order.
    pub fn flush(&mut self, id: ServerId, max: usize) {
        if self.frozen.contains(&id) {
            return;
        }
        for _ in 0..max {
            let Some(op) = self.node(id).pending.pop_front() else {
                return;
            };
            let mutation = self.mutation;
            let fail_read =
                self.read_fail_pct > 0 && self.rng.gen_range(0..100) < self.read_fail_pct;
            let n = self.node(id);
            match op {
                StorageOp::Append(entries) => {
                    let last = entries.last().map(|e| e.zxid).unwrap_or(Zxid::ZERO);
                    let disk_last = n.disk.log.last().map_or(n.disk.snapshot.0, |e| e.zxid);
                    if mutation == Mutation::None
                        && entries.first().is_some_and(|e| e.zxid <= disk_last)
                    {
                        let msg = format!("{id}: append of {last:?} after {disk_last:?} on disk");
                        self.fail(&msg);
                    }
                    if mutation == Mutation::SkipTruncate {
                        // Keep the disk log ordered so that restarts load it.
                        n.disk.log.retain(|e| e.zxid < entries[0].zxid);
                    }
                    n.disk.log.extend(entries);
                    if let Some(c) = n.core.as_mut() {
                        c.handle_log_durable(last);
                    }
                }
                StorageOp::Truncate(after) => {
                    if mutation != Mutation::SkipTruncate {
                        n.disk.log.retain(|e| e.zxid <= after);
                    }
                    if let Some(c) = n.core.as_mut() {
                        c.handle_log_truncated(after);
                    }
                }
                StorageOp::Install(zxid, list) => {
                    n.disk.snapshot = (zxid, list);
                    n.disk.log.clear();
                    if let Some(c) = n.core.as_mut() {
                        c.handle_snapshot_installed(zxid);
                    }
                }
                StorageOp::Read {
                    token,
                    from,
                    max,
                    max_bytes,
                } => {
                    // Like a `LogStore`: nothing at or below the base (the snapshot)
                    // can be read; every entry appended before the read is seen.
                    let entries = (!fail_read && from > n.disk.snapshot.0).then(|| {
                        // Stops once `max_bytes` are in, with at least one entry
                        // after `from` (the `ReadLog` contract).
                        let (mut bytes, mut taken) = (0, 0);
                        n.disk
                            .log
                            .iter()
                            .filter(|e| e.zxid >= from)
                            .take(max)
                            .take_while(|e| {
                                let more = bytes < max_bytes || taken < 2;
                                bytes += e.payload.len();
                                taken += 1;
                                more
                            })
                            .cloned()
                            .collect::<Vec<_>>()
                    });
                    *self.stats.entry("log reads").or_insert(0) += 1;
                    let n = self.node(id);
                    if let Some(c) = n.core.as_mut() {
                        c.handle_log_read(token, entries);
                    }
                }
                StorageOp::SaveAccepted(e) => {
                    n.disk.accepted = e;
                    if let Some(c) = n.core.as_mut() {
                        c.handle_accepted_epoch_saved(e);
                    }
                }
                StorageOp::SaveCurrent(e) => {
                    n.disk.current = e;
                    if let Some(c) = n.core.as_mut() {
                        c.handle_current_epoch_saved(e);
                    }
                }
            }
            self.pump(id);
            self.check();
        }
    }

    pub fn flush_all(&mut self) {
        for id in self.ids() {
            self.flush(id, usize::MAX);
        }
    }

    /// Crash: the core, unsynced writes and the state machine are lost.
    pub fn crash(&mut self, id: ServerId) {
        self.log(format!("{id} CRASH"));
        *self.stats.entry("crash").or_insert(0) += 1;
        // A crash in the middle of a group commit leaves a prefix of it on disk (a
        // torn tail at an entry boundary; the log store's CRCs cut partial entries).
        let torn = self.rng.gen_range(0..4) == 0;
        let frozen = self.frozen.contains(&id);
        let cut = self.rng.gen_range(0..8usize);
        let n = self.node(id);
        if torn && !frozen {
            if let Some(StorageOp::Append(entries)) = n.pending.front() {
                let keep = cut.min(entries.len());
                let kept: Vec<Entry> = entries[..keep].to_vec();
                if keep > 0 {
                    n.disk.log.extend(kept);
                }
            }
        }
        n.core = None;
        n.pending.clear();
        n.applied.clear();
        if torn {
            *self.stats.entry("torn tail").or_insert(0) += 1;
        }
        self.check();
    }

    /// Restart from disk: snapshot, then the durable log.
    pub fn restart(&mut self, id: ServerId) {
        self.log(format!("{id} RESTART"));
        let n = self.node(id);
        let persisted = n.disk.persisted();
        n.applied = n.disk.snapshot.1.clone();
        n.core = Some(Core::new(n.cfg.clone(), persisted).unwrap());
        let applied = n.applied.clone();
        self.inv.on_reset(id, &applied);
        self.pump(id);
        self.check();
    }

    pub fn pending_ops(&self, id: u64) -> usize {
        self.nodes[&ServerId(id)].pending.len()
    }
}

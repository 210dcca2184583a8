//! Applying the nemesis: partitions, lossy links, crashes (the disk keeps only what
//! it synced), restarts from what the disk recovered, pauses, client silence, and
//! the final healing. Fault intervals are recorded for the session checker.

use std::collections::BTreeMap;

use bytes::Bytes;
use ensemble::{Event, Server, SessionEvent};
use transport::mem::LinkFaults;
use transport::{NodeId, Transport};

use super::client::Phase as ClientPhase;
use super::World;
use crate::nemesis::Fault;
use crate::workload::Workload;

impl<W: Workload> World<W> {
    fn open_fault(&mut self, key: String) {
        let now = self.now_us;
        self.open_faults.entry(key).or_insert(now);
    }

    fn close_fault(&mut self, key: &str) {
        if let Some(start) = self.open_faults.remove(key) {
            self.disturbances.push((start, self.now_us));
        }
    }

    fn close_all_faults(&mut self) {
        let keys: Vec<String> = self.open_faults.keys().cloned().collect();
        for k in keys {
            self.close_fault(&k);
        }
    }

    pub(crate) fn apply_fault(&mut self, f: Fault) {
        self.trace(format!("nemesis: {f:?}"));
        match &f {
            Fault::Partition(_) | Fault::OneWay(..) | Fault::Bridge { .. } => {
                self.open_fault("net".into())
            }
            Fault::Heal => self.close_fault("net"),
            Fault::Links(_) => self.open_fault("links".into()),
            Fault::CalmLinks => self.close_fault("links"),
            Fault::Crash(id) => self.open_fault(format!("crash-{id}")),
            Fault::Restart(id) => self.close_fault(&format!("crash-{id}")),
            Fault::PowerLoss(ids) => {
                for id in ids {
                    self.open_fault(format!("crash-{id}"));
                }
            }
            Fault::PowerBack(ids) => {
                for id in ids {
                    self.close_fault(&format!("crash-{id}"));
                }
            }
            Fault::Pause(_, ms) => {
                self.disturbances
                    .push((self.now_us, self.now_us + ms * 1000));
            }
            Fault::ClientSilent(..) => {}
        }
        let ids = |v: &[u64]| v.iter().map(|i| NodeId(*i)).collect::<Vec<_>>();
        match f {
            Fault::Partition(groups) => {
                self.stats.partitions += 1;
                let gs: Vec<Vec<NodeId>> = groups.iter().map(|g| ids(g)).collect();
                let refs: Vec<&[NodeId]> = gs.iter().map(|g| g.as_slice()).collect();
                self.net.partition_groups(&refs);
            }
            Fault::OneWay(a, b) => {
                self.stats.partitions += 1;
                self.net.partition_one_way(NodeId(a), NodeId(b));
            }
            Fault::Bridge { left, right, .. } => {
                self.stats.partitions += 1;
                for a in &left {
                    for b in &right {
                        self.net.partition(NodeId(*a), NodeId(*b));
                    }
                }
            }
            Fault::Heal => self.net.heal_all(),
            Fault::Crash(id) => self.crash(id),
            Fault::Restart(id) => self.restart(id),
            Fault::PowerLoss(ids) => {
                for id in ids {
                    self.crash(id);
                }
            }
            Fault::PowerBack(ids) => {
                for id in ids {
                    self.restart(id);
                }
            }
            Fault::Pause(id, ms) => {
                let i = self.index_of(id);
                if self.nodes[i].server.is_some() {
                    self.stats.pauses += 1;
                    self.nodes[i].paused_until_us = self.now_us + ms * 1000;
                }
            }
            Fault::Links(lf) => self.net.set_default_faults(lf),
            Fault::CalmLinks => self.net.set_default_faults(LinkFaults::none()),
            Fault::ClientSilent(c, ms) => self.client_silent(c, ms),
        }
    }

    pub(crate) fn crash(&mut self, id: u64) {
        let i = self.index_of(id);
        if self.nodes[i].server.is_none() {
            return;
        }
        self.stats.crashes += 1;
        self.nodes[i].server = None;
        if let Some(ep) = self.nodes[i].endpoint.take() {
            ep.shutdown();
        }
        self.nodes[i].mirror.clear();
        self.nodes[i].snap_buf = None;
        self.nodes[i].paused_until_us = 0;
        self.nodes[i].last_role = None;
        let on_it: Vec<usize> = (0..self.clients.len())
            .filter(|c| self.clients[*c].conn.is_some_and(|(s, _)| s == id))
            .collect();
        for c in on_it {
            if self.clients[c].phase == ClientPhase::Connected {
                self.notify_event(c, &Event::Session(SessionEvent::Disconnected));
            }
            self.drop_connection(c, false);
        }
        match self.nodes[i].disk.crash_and_recover() {
            Ok(r) => {
                self.trace(format!("s{id} crashed; disk: {}", r.report));
                self.nodes[i].recovered = Some(r);
            }
            Err(e) => self.violation("shell", format!("s{id}: disk unrecoverable: {e}")),
        }
    }

    pub(crate) fn restart(&mut self, id: u64) {
        let i = self.index_of(id);
        if self.nodes[i].server.is_some() {
            return;
        }
        let Some(r) = self.nodes[i].recovered.take() else {
            return;
        };
        let snapshot_zxid = r.persisted.snapshot_zxid.to_u64();
        let mirror: BTreeMap<u64, Bytes> = r
            .persisted
            .log
            .iter()
            .map(|e| (e.zxid.to_u64(), e.payload.clone()))
            .collect();
        // Like the Node, a restarted server seeds its session ids from the current time.
        let mut scfg = self.server_cfgs[i].clone();
        scfg.start_time_ms = 1_000_000 + self.now_us / 1000;
        match Server::new(scfg, r.persisted, r.state.as_deref()) {
            Ok(s) => {
                self.trace(format!("s{id} restarted from snapshot {snapshot_zxid:#x}"));
                self.nodes[i].server = Some(s);
                self.nodes[i].mirror = mirror;
                self.nodes[i].endpoint = Some(self.net.endpoint(NodeId(id)));
                self.nodes[i].next_tick_us = self.now_us + self.nodes[i].tick_us;
                self.zab.handle_restart(id, snapshot_zxid);
                self.run_actions(i);
            }
            Err(e) => self.violation("shell", format!("s{id}: restart failed: {e}")),
        }
    }

    /// Ends every fault: heals the network, restarts crashed servers, resumes paused
    /// ones and silent clients.
    pub(crate) fn heal_everything(&mut self) {
        self.trace("nemesis: heal everything".into());
        self.close_all_faults();
        self.schedule.clear();
        self.net.heal_all();
        self.net.set_default_faults(LinkFaults::none());
        for i in 0..self.nodes.len() {
            let id = self.nodes[i].id;
            self.nodes[i].paused_until_us = 0;
            self.restart(id);
        }
        let probe = self.cfg.clients;
        for (c, cl) in self.clients.iter_mut().enumerate() {
            if c != probe {
                cl.silent_until_us = 0;
            }
        }
    }
}

//! The deterministic core of the in-memory network: endpoints, link state, fault
//! decisions and the in-flight queue ordered by due time. No threads, no clocks: the
//! caller passes `now_us`, and the only randomness is a seeded ChaCha RNG, so the same
//! seed and the same sequence of calls give the same deliveries.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};

use bytes::Bytes;
use crossbeam_channel::Sender;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::faults::{Link, LinkFaults, LinkStats};
use super::trace::{DropReason, NetEvent, NetEventKind, Recorder};
use crate::{NodeId, SendError, TransportEvent};

/// A live endpoint as the core sees it.
struct Slot {
    /// Incremented on every (re)creation of the id; frames and handles carry it so a
    /// restarted endpoint never sees its previous life's traffic.
    generation: u64,
    inbox: Sender<TransportEvent>,
}

/// A frame the network holds until it is due.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct InFlight {
    due_us: u64,
    /// Send order; breaks ties so equal due times deliver in send order.
    seq: u64,
    link: Link,
    from_generation: u64,
    to_generation: u64,
    payload: Bytes,
}

/// What `handle_send` did with a frame.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SendOutcome {
    /// Lost to a fault, a partition or an absent receiver (counted as dropped).
    Dropped,
    /// Handed to the receiver at once.
    Delivered,
    /// Held until the given time.
    Queued {
        /// Earliest due time among the copies queued.
        due_us: u64,
    },
}

/// Configuration of the core.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CoreConfig {
    pub seed: u64,
    pub peer_queue_max: usize,
    pub inbox_max: usize,
    /// Real-time mode: a frame due now goes straight to the receiver. Virtual mode
    /// keeps every frame until `deliver_due`.
    pub deliver_immediately: bool,
}

pub(crate) struct NetCore {
    config: CoreConfig,
    rng: ChaCha8Rng,
    seq: u64,
    next_generation: u64,
    endpoints: BTreeMap<NodeId, Slot>,
    default_faults: LinkFaults,
    link_faults: HashMap<Link, LinkFaults>,
    blocked: BTreeSet<Link>,
    isolated: BTreeSet<NodeId>,
    /// Unordered pairs `(low, high)` currently reported as connected.
    connected: BTreeSet<(NodeId, NodeId)>,
    stats: BTreeMap<Link, LinkStats>,
    recorder: Recorder,
    in_flight: BinaryHeap<Reverse<InFlight>>,
    in_flight_per_link: HashMap<Link, usize>,
    /// Due time of the last non-reordered frame per link (the FIFO floor).
    last_due_us: HashMap<Link, u64>,
}

impl NetCore {
    pub(crate) fn new(config: CoreConfig) -> Self {
        Self {
            config,
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            seq: 0,
            next_generation: 1,
            endpoints: BTreeMap::new(),
            default_faults: LinkFaults::none(),
            link_faults: HashMap::new(),
            blocked: BTreeSet::new(),
            isolated: BTreeSet::new(),
            connected: BTreeSet::new(),
            stats: BTreeMap::new(),
            recorder: Recorder::default(),
            in_flight: BinaryHeap::new(),
            in_flight_per_link: HashMap::new(),
            last_due_us: HashMap::new(),
        }
    }

    /// Registers `id` (replacing a live endpoint of the same id, as a crash-restart
    /// would) and returns the new generation.
    pub(crate) fn add_endpoint(&mut self, id: NodeId, inbox: Sender<TransportEvent>) -> u64 {
        if self.endpoints.contains_key(&id) {
            self.remove_endpoint_any(id);
        }
        let generation = self.next_generation;
        self.next_generation += 1;
        self.endpoints.insert(id, Slot { generation, inbox });
        self.refresh_connectivity();
        generation
    }

    /// Removes `id` if its generation is still `generation`. Returns whether it did.
    pub(crate) fn remove_endpoint(&mut self, id: NodeId, generation: u64) -> bool {
        match self.endpoints.get(&id) {
            Some(slot) if slot.generation == generation => {
                self.remove_endpoint_any(id);
                true
            }
            _ => false,
        }
    }

    fn remove_endpoint_any(&mut self, id: NodeId) {
        self.endpoints.remove(&id);
        // Frames addressed to the old generation are dropped when they fall due.
        self.refresh_connectivity();
    }

    pub(crate) fn is_current(&self, id: NodeId, generation: u64) -> bool {
        self.endpoints
            .get(&id)
            .is_some_and(|s| s.generation == generation)
    }

    pub(crate) fn endpoint_ids(&self) -> Vec<NodeId> {
        self.endpoints.keys().copied().collect()
    }

    // ---- link controls -------------------------------------------------------------

    pub(crate) fn set_default_faults(&mut self, faults: LinkFaults) {
        self.default_faults = faults.sanitized();
    }

    pub(crate) fn set_link_faults(&mut self, link: Link, faults: LinkFaults) {
        self.link_faults.insert(link, faults.sanitized());
    }

    pub(crate) fn clear_link_faults(&mut self, link: Link) {
        self.link_faults.remove(&link);
    }

    pub(crate) fn block(&mut self, link: Link) {
        self.blocked.insert(link);
        self.refresh_connectivity();
    }

    pub(crate) fn unblock(&mut self, link: Link) {
        self.blocked.remove(&link);
        self.refresh_connectivity();
    }

    pub(crate) fn isolate(&mut self, id: NodeId) {
        self.isolated.insert(id);
        self.refresh_connectivity();
    }

    /// Ends the isolation of `id` and removes every block on a link touching it.
    pub(crate) fn heal(&mut self, id: NodeId) {
        self.isolated.remove(&id);
        self.blocked.retain(|l| l.from != id && l.to != id);
        self.refresh_connectivity();
    }

    pub(crate) fn heal_all(&mut self) {
        self.isolated.clear();
        self.blocked.clear();
        self.refresh_connectivity();
    }

    fn link_open(&self, link: Link) -> bool {
        !self.blocked.contains(&link)
            && !self.isolated.contains(&link.from)
            && !self.isolated.contains(&link.to)
    }

    /// Recomputes which pairs are connected (both endpoints live, both directions open)
    /// and emits `Connected`/`Disconnected` for every change, in id order.
    fn refresh_connectivity(&mut self) {
        let ids: Vec<NodeId> = self.endpoints.keys().copied().collect();
        let mut now_connected = BTreeSet::new();
        for (i, &a) in ids.iter().enumerate() {
            for &b in &ids[i + 1..] {
                if self.link_open(Link::new(a, b)) && self.link_open(Link::new(b, a)) {
                    now_connected.insert((a, b));
                }
            }
        }
        let lost: Vec<_> = self.connected.difference(&now_connected).copied().collect();
        let gained: Vec<_> = now_connected.difference(&self.connected).copied().collect();
        for (a, b) in lost {
            self.notify(a, TransportEvent::Disconnected(b));
            self.notify(b, TransportEvent::Disconnected(a));
        }
        for (a, b) in gained {
            self.notify(a, TransportEvent::Connected(b));
            self.notify(b, TransportEvent::Connected(a));
        }
        self.connected = now_connected;
    }

    fn notify(&self, to: NodeId, event: TransportEvent) {
        if let Some(slot) = self.endpoints.get(&to) {
            // The receiver may have been dropped without shutdown; nothing to tell then.
            let _ = slot.inbox.send(event);
        }
    }

    // ---- traffic ------------------------------------------------------------------

    fn faults_for(&self, link: Link) -> LinkFaults {
        self.link_faults
            .get(&link)
            .copied()
            .unwrap_or(self.default_faults)
    }

    fn roll(&mut self, probability: f64) -> bool {
        probability > 0.0 && self.rng.gen_bool(probability)
    }

    fn rand_upto(&mut self, max: u64) -> u64 {
        if max == 0 {
            0
        } else {
            self.rng.gen_range(0..=max)
        }
    }

    fn record(&mut self, at_us: u64, link: Link, kind: NetEventKind, len_bytes: usize) {
        let stats = self.stats.entry(link).or_default();
        self.recorder.record(
            stats,
            NetEvent {
                at_us,
                link,
                kind,
                len_bytes,
            },
        );
    }

    /// Keeps the last `max` network events (0 turns tracing off).
    pub(crate) fn enable_trace(&mut self, max: usize) {
        self.recorder.enable(max);
    }

    /// Takes the traced events, oldest first.
    pub(crate) fn drain_trace(&mut self) -> Vec<NetEvent> {
        self.recorder.drain()
    }

    /// Accepts a frame from `from` (generation `from_generation`) for `to` at `now_us`.
    pub(crate) fn handle_send(
        &mut self,
        from: NodeId,
        from_generation: u64,
        to: NodeId,
        payload: Bytes,
        now_us: u64,
    ) -> Result<SendOutcome, SendError> {
        if !self.is_current(from, from_generation) {
            return Err(SendError::Shutdown);
        }
        if from == to {
            return Err(SendError::ToSelf(to));
        }
        let link = Link::new(from, to);
        let queued = self.in_flight_per_link.get(&link).copied().unwrap_or(0);
        let inbox_len = self.endpoints.get(&to).map_or(0, |s| s.inbox.len());
        if queued >= self.config.peer_queue_max || inbox_len >= self.config.inbox_max {
            self.record(now_us, link, NetEventKind::Rejected, payload.len());
            return Err(SendError::QueueFull { to });
        }
        let len = payload.len();
        self.record(now_us, link, NetEventKind::Sent, len);
        let to_generation = match self.endpoints.get(&to) {
            Some(slot) if self.link_open(link) => slot.generation,
            Some(_) => return Ok(self.drop_at_send(now_us, link, DropReason::Partitioned, len)),
            None => return Ok(self.drop_at_send(now_us, link, DropReason::NoReceiver, len)),
        };
        let faults = self.faults_for(link);
        if self.roll(faults.drop_probability) {
            return Ok(self.drop_at_send(now_us, link, DropReason::Fault, len));
        }
        let due_us = self.due_time(link, &faults, now_us);
        let duplicate_due_us = if self.roll(faults.duplicate_probability) {
            self.record(now_us, link, NetEventKind::Duplicated, len);
            let extra = self.rand_upto(faults.jitter_us);
            Some(due_us.saturating_add(extra))
        } else {
            None
        };
        let duplicate = duplicate_due_us.map(|due| (due, payload.clone()));
        let first = self.place(
            InFlight {
                due_us,
                seq: 0,
                link,
                from_generation,
                to_generation,
                payload,
            },
            now_us,
        );
        if let Some((due_us, payload)) = duplicate {
            self.place(
                InFlight {
                    due_us,
                    seq: 0,
                    link,
                    from_generation,
                    to_generation,
                    payload,
                },
                now_us,
            );
        }
        Ok(first)
    }

    /// Delivers `frame` now if allowed (real-time mode, due, and nothing older still
    /// held on its link, so FIFO holds), otherwise holds it.
    fn place(&mut self, mut frame: InFlight, now_us: u64) -> SendOutcome {
        let link_idle = self
            .in_flight_per_link
            .get(&frame.link)
            .copied()
            .unwrap_or(0)
            == 0;
        if self.config.deliver_immediately && frame.due_us <= now_us && link_idle {
            self.deliver(frame, now_us);
            return SendOutcome::Delivered;
        }
        let due_us = frame.due_us;
        frame.seq = self.seq;
        self.seq += 1;
        *self.in_flight_per_link.entry(frame.link).or_insert(0) += 1;
        self.in_flight.push(Reverse(frame));
        SendOutcome::Queued { due_us }
    }

    /// Hands `frame` to its receiver, or drops it if the link is cut, either end has
    /// restarted or gone, or the receiver's channel is full.
    fn deliver(&mut self, frame: InFlight, now_us: u64) {
        let link = frame.link;
        let len = frame.payload.len();
        let outcome = if !self.link_open(link) {
            Err(DropReason::Partitioned)
        } else if !self.is_current(link.from, frame.from_generation) {
            Err(DropReason::Restarted)
        } else {
            match self.endpoints.get(&link.to) {
                Some(slot) if slot.generation != frame.to_generation => Err(DropReason::Restarted),
                Some(slot) if slot.inbox.len() >= self.config.inbox_max => {
                    Err(DropReason::InboxFull)
                }
                Some(slot) => slot
                    .inbox
                    .send(TransportEvent::Frame {
                        from: link.from,
                        payload: frame.payload,
                    })
                    .map_err(|_| DropReason::Restarted),
                None => Err(DropReason::Restarted),
            }
        };
        let kind = match outcome {
            Ok(()) => NetEventKind::Delivered,
            Err(reason) => NetEventKind::Dropped(reason),
        };
        self.record(now_us, link, kind, len);
    }

    fn drop_at_send(
        &mut self,
        now_us: u64,
        link: Link,
        reason: DropReason,
        len: usize,
    ) -> SendOutcome {
        self.record(now_us, link, NetEventKind::Dropped(reason), len);
        SendOutcome::Dropped
    }

    /// Delivers every held frame due at or before `now_us`, in (due time, send order).
    /// Returns how many frames were taken off the queue (delivered or dropped).
    pub(crate) fn deliver_due(&mut self, now_us: u64) -> usize {
        let mut count = 0;
        while self
            .in_flight
            .peek()
            .is_some_and(|Reverse(f)| f.due_us <= now_us)
        {
            let Some(Reverse(frame)) = self.in_flight.pop() else {
                break;
            };
            if let Some(n) = self.in_flight_per_link.get_mut(&frame.link) {
                *n = n.saturating_sub(1);
            }
            self.deliver(frame, now_us);
            count += 1;
        }
        count
    }

    /// Delivers only the single earliest held frame if it is due at or before
    /// `now_us`. Returns whether one was taken.
    pub(crate) fn deliver_one(&mut self, now_us: u64) -> bool {
        if !matches!(self.in_flight.peek(), Some(Reverse(f)) if f.due_us <= now_us) {
            return false;
        }
        let Some(Reverse(frame)) = self.in_flight.pop() else {
            return false;
        };
        if let Some(n) = self.in_flight_per_link.get_mut(&frame.link) {
            *n = n.saturating_sub(1);
        }
        self.deliver(frame, now_us);
        true
    }

    /// Due time of the earliest held frame.
    pub(crate) fn next_due_us(&self) -> Option<u64> {
        self.in_flight.peek().map(|Reverse(f)| f.due_us)
    }

    /// Number of frames held.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Number of frames held on `link`.
    pub(crate) fn in_flight_on(&self, link: Link) -> usize {
        self.in_flight_per_link.get(&link).copied().unwrap_or(0)
    }

    pub(crate) fn link_stats(&self, link: Link) -> LinkStats {
        self.stats.get(&link).copied().unwrap_or_default()
    }

    pub(crate) fn total_stats(&self) -> LinkStats {
        let mut total = LinkStats::default();
        for s in self.stats.values() {
            total.add(s);
        }
        total
    }

    pub(crate) fn all_link_stats(&self) -> Vec<(Link, LinkStats)> {
        self.stats.iter().map(|(l, s)| (*l, *s)).collect()
    }

    fn due_time(&mut self, link: Link, faults: &LinkFaults, now_us: u64) -> u64 {
        let jitter = self.rand_upto(faults.jitter_us);
        let base = now_us
            .saturating_add(faults.delay_us)
            .saturating_add(jitter);
        if self.roll(faults.reorder_probability) {
            // Held back without moving the FIFO floor, so later frames may overtake it.
            let window = faults.reorder_window_us.max(1);
            return base.saturating_add(self.rng.gen_range(1..=window));
        }
        let floor = self.last_due_us.get(&link).copied().unwrap_or(0);
        let due = base.max(floor);
        self.last_due_us.insert(link, due);
        due
    }
}

//! Per-link fault settings and counters of the in-memory network.

use crate::NodeId;

/// A directed link: frames from `from` to `to`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Link {
    /// Sending endpoint.
    pub from: NodeId,
    /// Receiving endpoint.
    pub to: NodeId,
}

impl Link {
    /// The link from `from` to `to`.
    pub fn new(from: NodeId, to: NodeId) -> Self {
        Self { from, to }
    }
}

/// Faults applied to frames on a link. Times are in network microseconds: wall-clock
/// microseconds in real-time mode, the caller's virtual microseconds in virtual mode.
///
/// The default is a perfect link: no loss, no delay, FIFO.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LinkFaults {
    /// Probability in `[0, 1]` that a frame is lost.
    pub drop_probability: f64,
    /// Probability in `[0, 1]` that a frame is delivered twice.
    pub duplicate_probability: f64,
    /// Probability in `[0, 1]` that a frame is held back by an extra random delay of
    /// `1..=reorder_window_us`, letting later frames overtake it.
    pub reorder_probability: f64,
    /// Extra delay of a reordered frame is drawn from `1..=reorder_window_us`
    /// (treated as 1 when 0).
    pub reorder_window_us: u64,
    /// Fixed delay added to every frame.
    pub delay_us: u64,
    /// Random extra delay drawn from `0..=jitter_us`. Jitter alone never reorders a
    /// link: a frame is never due before the frame sent before it on the same link.
    pub jitter_us: u64,
}

impl LinkFaults {
    /// A perfect link (same as `Default`).
    pub fn none() -> Self {
        Self::default()
    }

    /// A copy with every probability clamped into `[0, 1]` (NaN becomes 0).
    pub(crate) fn sanitized(mut self) -> Self {
        fn clamp(p: f64) -> f64 {
            if p.is_nan() {
                0.0
            } else {
                p.clamp(0.0, 1.0)
            }
        }
        self.drop_probability = clamp(self.drop_probability);
        self.duplicate_probability = clamp(self.duplicate_probability);
        self.reorder_probability = clamp(self.reorder_probability);
        self
    }
}

/// Counters for one directed link (or summed over all links).
///
/// Conservation: `sent + duplicated == delivered + dropped + in_flight` where
/// `in_flight` is what the network still holds for the link.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Frames accepted by `send` (including those later dropped).
    pub sent: u64,
    /// Frames lost: drop fault, partition (at send or while in flight), receiver
    /// down or restarted, or receiver's event channel full.
    pub dropped: u64,
    /// Frames handed to the receiver's event channel (duplicates included).
    pub delivered: u64,
    /// Extra copies created by the duplicate fault.
    pub duplicated: u64,
    /// Frames refused by `send` with `QueueFull` (not counted in `sent`).
    pub rejected: u64,
}

impl LinkStats {
    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &LinkStats) {
        self.sent += other.sent;
        self.dropped += other.dropped;
        self.delivered += other.delivered;
        self.duplicated += other.duplicated;
        self.rejected += other.rejected;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_clamps_probabilities() {
        let f = LinkFaults {
            drop_probability: 2.0,
            duplicate_probability: -1.0,
            reorder_probability: f64::NAN,
            ..LinkFaults::none()
        }
        .sanitized();
        assert_eq!(f.drop_probability, 1.0);
        assert_eq!(f.duplicate_probability, 0.0);
        assert_eq!(f.reorder_probability, 0.0);
    }

    #[test]
    fn stats_add_sums_fields() {
        let mut a = LinkStats {
            sent: 1,
            dropped: 2,
            delivered: 3,
            duplicated: 4,
            rejected: 5,
        };
        a.add(&a.clone());
        assert_eq!(
            a,
            LinkStats {
                sent: 2,
                dropped: 4,
                delivered: 6,
                duplicated: 8,
                rejected: 10
            }
        );
    }
}

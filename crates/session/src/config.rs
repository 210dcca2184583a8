//! Tracker configuration and session timeout negotiation.

use thiserror::Error;

use crate::id::MAX_SERVER_ID;

/// Default lower bound of a negotiated timeout, in ticks (ZooKeeper: 2 × tickTime).
pub const DEFAULT_MIN_TIMEOUT_TICKS: u32 = 2;
/// Default upper bound of a negotiated timeout, in ticks (ZooKeeper: 20 × tickTime).
pub const DEFAULT_MAX_TIMEOUT_TICKS: u32 = 20;

/// Settings of a [`crate::SessionTracker`]. Build with [`SessionConfig::new`], adjust
/// the public fields, and let [`crate::SessionTracker::new`] validate them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// This server's id; it becomes the high byte of the session ids it generates, so
    /// it must be at most [`MAX_SERVER_ID`].
    pub server_id: u64,
    /// Length of one tick in milliseconds (ZooKeeper's `tickTime`).
    pub tick_ms: u32,
    /// Smallest timeout a client can get (default 2 ticks).
    pub min_session_timeout_ms: u32,
    /// Largest timeout a client can get (default 20 ticks).
    pub max_session_timeout_ms: u32,
    /// Whether clients may open local (non-replicated) sessions (default false, as in
    /// ZooKeeper's `localSessionsEnabled`).
    pub local_sessions_enabled: bool,
}

impl SessionConfig {
    /// Defaults for `server_id` with ticks of `tick_ms`: timeouts in
    /// [2 × tick, 20 × tick], no local sessions. Products that overflow `u32` saturate
    /// (and then fail validation only if they break an ordering rule).
    pub fn new(server_id: u64, tick_ms: u32) -> Self {
        Self {
            server_id,
            tick_ms,
            min_session_timeout_ms: tick_ms.saturating_mul(DEFAULT_MIN_TIMEOUT_TICKS),
            max_session_timeout_ms: tick_ms.saturating_mul(DEFAULT_MAX_TIMEOUT_TICKS),
            local_sessions_enabled: false,
        }
    }

    /// Checks the settings; a bad configuration is an error here, never a panic later.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.server_id > MAX_SERVER_ID {
            return Err(ConfigError::ServerIdTooLarge {
                server_id: self.server_id,
                max: MAX_SERVER_ID,
            });
        }
        if self.tick_ms == 0 {
            return Err(ConfigError::ZeroTick);
        }
        if self.min_session_timeout_ms == 0 {
            return Err(ConfigError::ZeroMinTimeout);
        }
        if self.min_session_timeout_ms > self.max_session_timeout_ms {
            return Err(ConfigError::MinAboveMax {
                min_ms: self.min_session_timeout_ms,
                max_ms: self.max_session_timeout_ms,
            });
        }
        Ok(())
    }

    /// The timeout a client gets when it asks for `requested_ms`: clamped to
    /// [`min_session_timeout_ms`, `max_session_timeout_ms`], as ZooKeeper does.
    ///
    /// [`min_session_timeout_ms`]: SessionConfig::min_session_timeout_ms
    /// [`max_session_timeout_ms`]: SessionConfig::max_session_timeout_ms
    pub fn negotiate_timeout_ms(&self, requested_ms: u32) -> u32 {
        requested_ms
            .max(self.min_session_timeout_ms)
            .min(self.max_session_timeout_ms)
    }

    /// How many whole ticks a timeout spans, rounded up (a partial tick counts).
    pub fn timeout_ticks(&self, timeout_ms: u32) -> u64 {
        // tick_ms is non-zero once validated; max(1) keeps an unvalidated config safe.
        u64::from(timeout_ms).div_ceil(u64::from(self.tick_ms.max(1)))
    }

    /// The expiry bucket of a session with `timeout_ms` touched during tick `now_tick`.
    ///
    /// The touch happened somewhere in `[now_tick, now_tick + 1)` ticks, so the
    /// deadline is rounded up to the next tick boundary past the latest possible
    /// `touch + timeout`: `now_tick + 1 + ceil(timeout / tick)`. A session therefore
    /// never expires before its timeout has passed, and expires at most one tick after
    /// it (ZooKeeper's `ExpiryQueue.roundToNextInterval` grace period).
    pub fn expiry_tick(&self, now_tick: u64, timeout_ms: u32) -> u64 {
        now_tick
            .saturating_add(1)
            .saturating_add(self.timeout_ticks(timeout_ms))
    }
}

/// A configuration the tracker refuses.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The server id does not fit in a session id's high byte.
    #[error("server id {server_id} is too large for session ids (max {max})")]
    ServerIdTooLarge {
        /// The server id given.
        server_id: u64,
        /// The largest allowed.
        max: u64,
    },
    /// `tick_ms` is zero.
    #[error("tick_ms must be positive")]
    ZeroTick,
    /// `min_session_timeout_ms` is zero.
    #[error("min_session_timeout_ms must be positive")]
    ZeroMinTimeout,
    /// The minimum timeout is above the maximum.
    #[error("min_session_timeout_ms {min_ms} is above max_session_timeout_ms {max_ms}")]
    MinAboveMax {
        /// The minimum given.
        min_ms: u32,
        /// The maximum given.
        max_ms: u32,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// A session touched at any moment of tick `now` is never expired before its
        /// timeout has passed, and is expired at most one tick after its timeout
        /// rounded up to whole ticks, so a tick-multiple timeout leaves one tick of
        /// issue 5's "timeout + 2 ticks" bound for the closeSession to commit.
        #[test]
        fn expiry_is_never_early_and_never_late(
            now_tick in 0u64..1_000_000,
            tick_ms in 1u32..5_000,
            timeout_ms in 1u32..200_000,
            offset_permille in 0u64..1_000,
        ) {
            let c = SessionConfig::new(1, tick_ms);
            let tick = u64::from(tick_ms);
            let touch_ms = now_tick * tick + tick * offset_permille / 1_000;
            let expire_ms = c.expiry_tick(now_tick, timeout_ms) * tick;
            prop_assert!(expire_ms >= touch_ms + u64::from(timeout_ms));
            let rounded_ms = u64::from(timeout_ms).div_ceil(tick) * tick;
            prop_assert!(expire_ms <= now_tick * tick + rounded_ms + tick);
            prop_assert!(expire_ms <= touch_ms + u64::from(timeout_ms) + 2 * tick);
        }
    }

    #[test]
    fn defaults_are_2_and_20_ticks() {
        let c = SessionConfig::new(1, 2000);
        assert_eq!(c.min_session_timeout_ms, 4000);
        assert_eq!(c.max_session_timeout_ms, 40_000);
        assert!(!c.local_sessions_enabled);
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn negotiation_clamps() {
        let c = SessionConfig::new(1, 100);
        assert_eq!(c.negotiate_timeout_ms(0), 200);
        assert_eq!(c.negotiate_timeout_ms(199), 200);
        assert_eq!(c.negotiate_timeout_ms(200), 200);
        assert_eq!(c.negotiate_timeout_ms(1234), 1234);
        assert_eq!(c.negotiate_timeout_ms(2000), 2000);
        assert_eq!(c.negotiate_timeout_ms(2001), 2000);
        assert_eq!(c.negotiate_timeout_ms(u32::MAX), 2000);
    }

    #[test]
    fn bad_configs_are_errors() {
        let mut c = SessionConfig::new(1, 0);
        assert_eq!(c.validate(), Err(ConfigError::ZeroTick));
        c = SessionConfig::new(255, 10);
        assert!(matches!(
            c.validate(),
            Err(ConfigError::ServerIdTooLarge { server_id: 255, .. })
        ));
        c = SessionConfig::new(1, 10);
        c.min_session_timeout_ms = 0;
        assert_eq!(c.validate(), Err(ConfigError::ZeroMinTimeout));
        c.min_session_timeout_ms = 500;
        c.max_session_timeout_ms = 400;
        assert_eq!(
            c.validate(),
            Err(ConfigError::MinAboveMax {
                min_ms: 500,
                max_ms: 400
            })
        );
    }

    #[test]
    fn huge_tick_saturates_instead_of_overflowing() {
        let c = SessionConfig::new(1, u32::MAX);
        assert_eq!(c.max_session_timeout_ms, u32::MAX);
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn expiry_tick_rounds_up_to_next_tick() {
        let c = SessionConfig::new(1, 100);
        // Exact multiple: 2 ticks of timeout + 1 tick of rounding.
        assert_eq!(c.expiry_tick(10, 200), 13);
        // Partial tick counts as a whole one.
        assert_eq!(c.expiry_tick(10, 201), 14);
        assert_eq!(c.expiry_tick(10, 299), 14);
        assert_eq!(c.expiry_tick(u64::MAX - 1, 200), u64::MAX);
    }
}

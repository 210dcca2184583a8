//! A leader and a learner driven tick by tick, with clients that keep pinging or die,
//! and leader failovers at random ticks. Commits are immediate (no ZAB here: the
//! scenario tests through zab-core belong to the `ensemble` crate).
//!
//! Checks: a live client's session never expires, across failovers; a dead client's
//! session is expired never before its timeout and no later than one tick after a full
//! timeout counted from its last touch or the last failover, whichever is later.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use session::{
    Expired, Owner, PasswordSecret, Role, SessionConfig, SessionId, SessionKind, SessionTracker,
    SessionTxn,
};

const TICK_MS: u32 = 100;
const RUN_TICKS: u64 = 90;

#[derive(Debug, Clone)]
struct Client {
    server: usize,
    timeout_ticks: u64,
    death_tick: Option<u64>,
}

fn client() -> impl Strategy<Value = Client> {
    (0usize..2, 2u64..=20, proptest::option::of(0u64..60)).prop_map(
        |(server, timeout_ticks, death_tick)| Client {
            server,
            timeout_ticks,
            death_tick,
        },
    )
}

struct State {
    id: SessionId,
    last_touch: u64,
    expired_at: Option<u64>,
}

fn run(clients: &[Client], failovers: &[u64]) -> Result<(), TestCaseError> {
    let secret = PasswordSecret::from_seed(11);
    let mut servers = [
        SessionTracker::new(
            SessionConfig::new(1, TICK_MS),
            secret.clone(),
            5,
            Role::Leader,
        )
        .unwrap(),
        SessionTracker::new(SessionConfig::new(2, TICK_MS), secret, 5, Role::Learner).unwrap(),
    ];
    let mut leader = 0usize;
    let mut states = Vec::new();
    for (i, c) in clients.iter().enumerate() {
        let owner = Owner {
            server_id: c.server as u64 + 1,
            connection_id: i as u64,
        };
        let timeout = c.timeout_ticks as u32 * TICK_MS;
        let o = servers[c.server]
            .open_session(timeout, SessionKind::Global, owner, 0)
            .unwrap();
        let Some(SessionTxn::Create { id, timeout_ms }) = o.submit else {
            return Err(TestCaseError::fail("global session without create txn"));
        };
        if c.server != leader {
            servers[leader]
                .track_create(id, timeout_ms, owner, 0)
                .unwrap();
        }
        for s in servers.iter_mut() {
            s.apply_create(id, timeout_ms, 0);
        }
        states.push(State {
            id,
            last_touch: 0,
            expired_at: None,
        });
    }
    let mut last_failover = 0u64;
    for now in 0..=RUN_TICKS {
        // 1. Live clients ping about every third of their timeout.
        for (c, st) in clients.iter().zip(states.iter_mut()) {
            let alive = !matches!(c.death_tick, Some(d) if now >= d);
            let interval = (c.timeout_ticks / 3).max(1);
            if alive && now % interval == 0 {
                servers[c.server].touch(st.id, now).unwrap();
                st.last_touch = now;
            }
        }
        // 2. The learner's ping reply carries its touches to the leader.
        let learner = 1 - leader;
        let touched = servers[learner].drain_touched();
        servers[leader].handle_touches(touched, now).unwrap();
        prop_assert!(servers[learner].expire_due(now).is_empty());
        // 3. The leader expires; the close commits at once on both.
        for e in servers[leader].expire_due(now) {
            let Expired::ProposeClose(SessionTxn::Close { id }) = e else {
                return Err(TestCaseError::fail("unexpected expiry output"));
            };
            for s in servers.iter_mut() {
                s.apply_close(id);
            }
            let i = states.iter().position(|s| s.id == id).unwrap();
            let (c, st) = (&clients[i], &mut states[i]);
            prop_assert!(
                c.death_tick.is_some(),
                "live session {} expired at {}",
                id,
                now
            );
            prop_assert!(now > st.last_touch + c.timeout_ticks, "expired early");
            let bound = st.last_touch.max(last_failover) + 1 + c.timeout_ticks;
            prop_assert!(now <= bound, "expired at {} after bound {}", now, bound);
            st.expired_at = Some(now);
        }
        prop_assert_eq!(servers[0].table(), servers[1].table());
        // 4. Maybe a failover: the learner takes over with the same table.
        if failovers.contains(&now) {
            leader = 1 - leader;
            servers[leader].become_leader(now);
            servers[1 - leader].become_learner(now);
            last_failover = now;
        }
    }
    for (c, st) in clients.iter().zip(&states) {
        let due = st.last_touch.max(last_failover) + 1 + c.timeout_ticks;
        if c.death_tick.is_some() && due <= RUN_TICKS {
            prop_assert!(
                st.expired_at.is_some(),
                "dead session {} never expired",
                st.id
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn live_sessions_survive_and_dead_ones_expire_across_failovers(
        clients in proptest::collection::vec(client(), 1..12),
        failovers in proptest::collection::vec(0u64..RUN_TICKS, 0..4),
    ) {
        run(&clients, &failovers)?;
    }
}

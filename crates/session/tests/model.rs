//! Model-based tests: random sequences of open / touch / expire / close / failover run
//! against the real tracker and against a plain map of session -> deadline, and the
//! two must agree after every step.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use session::{
    EphemeralCheck, Expired, Owner, PasswordSecret, Role, SessionConfig, SessionError, SessionId,
    SessionKind, SessionTracker, SessionTxn,
};

const TICK_MS: u32 = 100;
const OWNER: Owner = Owner {
    server_id: 1,
    connection_id: 1,
};

#[derive(Debug, Clone)]
enum Op {
    Open {
        timeout_ms: u32,
        local: bool,
    },
    /// An ephemeral create: upgrades a local session (the upgrade commits at once).
    Ephemeral(usize),
    Touch(usize),
    Advance(u64),
    RequestClose(usize),
    ApplyClose(usize),
    NewLeader,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0u32..3_000, any::<bool>()).prop_map(|(timeout_ms, local)| Op::Open { timeout_ms, local }),
        1 => any::<usize>().prop_map(Op::Ephemeral),
        4 => any::<usize>().prop_map(Op::Touch),
        4 => (0u64..6).prop_map(Op::Advance),
        1 => any::<usize>().prop_map(Op::RequestClose),
        1 => any::<usize>().prop_map(Op::ApplyClose),
        1 => Just(Op::NewLeader),
    ]
}

#[derive(Debug, Clone, Copy)]
struct ModelSession {
    local: bool,
    timeout_ms: u32,
    deadline_tick: u64,
    closing: bool,
}

/// The model: a map from session to deadline. A touch during tick `now` sets the
/// deadline to `now + 1 + ceil(timeout / tick)`; `expire(now)` takes every live session
/// with `deadline <= now`, ordered by (deadline, id), and marks it closing.
#[derive(Debug, Default)]
struct Model {
    now_tick: u64,
    sessions: BTreeMap<SessionId, ModelSession>,
}

impl Model {
    fn deadline(&self, timeout_ms: u32) -> u64 {
        self.now_tick + 1 + u64::from(timeout_ms.div_ceil(TICK_MS))
    }

    fn live_check(&self, id: SessionId) -> Result<(), SessionError> {
        match self.sessions.get(&id) {
            None => Err(SessionError::UnknownSession(id)),
            Some(s) if s.closing => Err(SessionError::SessionExpired(id)),
            Some(_) => Ok(()),
        }
    }

    fn expire(&mut self) -> Vec<Expired> {
        let mut due: Vec<(u64, SessionId)> = self
            .sessions
            .iter()
            .filter(|(_, s)| !s.closing && s.deadline_tick <= self.now_tick)
            .map(|(id, s)| (s.deadline_tick, *id))
            .collect();
        due.sort();
        let mut out = Vec::new();
        for (_, id) in due {
            let local = self.sessions[&id].local;
            if local {
                self.sessions.remove(&id);
                out.push(Expired::Local(id));
            } else if let Some(s) = self.sessions.get_mut(&id) {
                s.closing = true;
                out.push(Expired::ProposeClose(SessionTxn::Close { id }));
            }
        }
        out
    }

    fn global_count(&self) -> usize {
        self.sessions.values().filter(|s| !s.local).count()
    }
}

fn leader() -> SessionTracker {
    let mut config = SessionConfig::new(1, TICK_MS);
    config.local_sessions_enabled = true;
    SessionTracker::new(config, PasswordSecret::from_seed(5), 77, Role::Leader).unwrap()
}

fn pick(ids: &[SessionId], i: usize) -> SessionId {
    if ids.is_empty() {
        SessionId(12_345)
    } else {
        ids[i % ids.len()]
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn leader_tracker_matches_deadline_model(ops in proptest::collection::vec(op(), 1..80)) {
        let mut t = leader();
        let mut m = Model::default();
        let mut ids: Vec<SessionId> = Vec::new();
        for op in ops {
            match op {
                Op::Open { timeout_ms, local } => {
                    let kind = if local { SessionKind::Local } else { SessionKind::Global };
                    let o = t.open_session(timeout_ms, kind, OWNER, m.now_tick).unwrap();
                    prop_assert!(!ids.contains(&o.id));
                    prop_assert!((200..=2_000).contains(&o.timeout_ms));
                    prop_assert_eq!(o.submit.is_some(), !local);
                    if !local {
                        prop_assert!(t.apply_create(o.id, o.timeout_ms, m.now_tick));
                    }
                    let deadline_tick = m.deadline(o.timeout_ms);
                    m.sessions.insert(o.id, ModelSession { local, timeout_ms: o.timeout_ms, deadline_tick, closing: false });
                    ids.push(o.id);
                }
                Op::Ephemeral(i) => {
                    let id = pick(&ids, i);
                    let expected = m.live_check(id);
                    let got = t.check_ephemeral_create(id, OWNER);
                    prop_assert_eq!(got.clone().map(|_| ()), expected.clone());
                    if expected.is_ok() && m.sessions[&id].local {
                        let timeout_ms = m.sessions[&id].timeout_ms;
                        let txn = SessionTxn::Create { id, timeout_ms };
                        prop_assert_eq!(got, Ok(EphemeralCheck::UpgradeFirst(txn)));
                        prop_assert!(t.apply_create(id, timeout_ms, m.now_tick));
                        let deadline_tick = m.deadline(timeout_ms);
                        if let Some(s) = m.sessions.get_mut(&id) {
                            s.local = false;
                            s.deadline_tick = deadline_tick;
                        }
                    } else if expected.is_ok() {
                        prop_assert_eq!(got, Ok(EphemeralCheck::Ready));
                    }
                }
                Op::Touch(i) => {
                    let id = pick(&ids, i);
                    let expected = m.live_check(id);
                    prop_assert_eq!(t.touch(id, m.now_tick), expected.clone());
                    if expected.is_ok() {
                        let timeout_ms = m.sessions[&id].timeout_ms;
                        let deadline = m.deadline(timeout_ms);
                        if let Some(s) = m.sessions.get_mut(&id) {
                            s.deadline_tick = deadline;
                        }
                    }
                }
                Op::Advance(dt) => {
                    m.now_tick += dt;
                    let got = t.expire_due(m.now_tick);
                    prop_assert_eq!(got, m.expire());
                }
                Op::RequestClose(i) => {
                    let id = pick(&ids, i);
                    let expected = m.live_check(id);
                    let got = t.request_close(id, OWNER).map(|_| ());
                    prop_assert_eq!(got, expected.clone());
                    if expected.is_ok() {
                        if m.sessions[&id].local {
                            m.sessions.remove(&id);
                        } else if let Some(s) = m.sessions.get_mut(&id) {
                            s.closing = true;
                        }
                    }
                }
                Op::ApplyClose(i) => {
                    let id = pick(&ids, i);
                    // Only global sessions are ever closed through the log.
                    if m.sessions.get(&id).is_some_and(|s| !s.local) {
                        m.sessions.remove(&id);
                        prop_assert!(t.apply_close(id));
                    } else if !m.sessions.contains_key(&id) {
                        prop_assert!(!t.apply_close(id));
                    }
                }
                Op::NewLeader => {
                    // Failover to a server with the same table: everyone gets a full
                    // timeout from now, closes that never committed are forgotten.
                    t.become_learner(m.now_tick);
                    t.become_leader(m.now_tick);
                    let now = m.now_tick;
                    for s in m.sessions.values_mut() {
                        s.closing = false;
                        s.deadline_tick = now + 1 + u64::from(s.timeout_ms.div_ceil(TICK_MS));
                    }
                }
            }
            // The tracker and the model agree on every session.
            prop_assert_eq!(t.table().len(), m.global_count());
            prop_assert_eq!(t.local_session_count(), m.sessions.len() - m.global_count());
            for (id, s) in &m.sessions {
                prop_assert_eq!(t.is_closing(*id), s.closing);
                prop_assert_eq!(t.is_live(*id), !s.closing);
                let want = if s.closing { None } else { Some(s.deadline_tick) };
                prop_assert_eq!(t.expiry_tick(*id), want);
            }
            let next = m.sessions.values().filter(|s| !s.closing).map(|s| s.deadline_tick).min();
            prop_assert_eq!(t.next_expiry_tick(), next);
        }
    }

    /// A learner never expires a global session, and each ping hands over exactly the
    /// sessions touched since the previous ping.
    #[test]
    fn learner_reports_exactly_its_touches(ops in proptest::collection::vec((0usize..6, 0u64..4, any::<bool>()), 1..60)) {
        let config = SessionConfig::new(2, TICK_MS);
        let mut t = SessionTracker::new(config, PasswordSecret::from_seed(5), 9, Role::Learner).unwrap();
        let owner = Owner { server_id: 2, connection_id: 3 };
        let mut ids = Vec::new();
        for _ in 0..6 {
            let o = t.open_session(1_000, SessionKind::Global, owner, 0).unwrap();
            t.apply_create(o.id, o.timeout_ms, 0);
            ids.push(o.id);
        }
        t.drain_touched();
        let mut now = 0u64;
        let mut expected = BTreeSet::new();
        for (i, dt, ping) in ops {
            now += dt;
            t.touch(ids[i], now).unwrap();
            expected.insert(ids[i]);
            prop_assert!(t.expire_due(now).is_empty());
            if ping {
                let got: Vec<SessionId> = t.drain_touched();
                let want: Vec<SessionId> = std::mem::take(&mut expected).into_iter().collect();
                prop_assert_eq!(got, want);
            }
        }
        prop_assert!(t.expire_due(u64::MAX).is_empty());
    }
}

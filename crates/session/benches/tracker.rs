//! Throughput of the leader's hot paths: touching sessions and expiring buckets.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use session::{Owner, PasswordSecret, Role, SessionConfig, SessionKind, SessionTracker};

const SESSIONS: usize = 10_000;
const OWNER: Owner = Owner {
    server_id: 1,
    connection_id: 1,
};

fn leader_with_sessions() -> (SessionTracker, Vec<session::SessionId>) {
    let mut t = SessionTracker::new(
        SessionConfig::new(1, 100),
        PasswordSecret::from_seed(1),
        0,
        Role::Leader,
    )
    .unwrap();
    let ids = (0..SESSIONS)
        .map(|_| {
            let o = t
                .open_session(2_000, SessionKind::Global, OWNER, 0)
                .unwrap();
            t.apply_create(o.id, o.timeout_ms, 0);
            o.id
        })
        .collect();
    (t, ids)
}

fn benches(c: &mut Criterion) {
    c.bench_function("touch 10k sessions (one tick later each round)", |b| {
        let (mut t, ids) = leader_with_sessions();
        let mut now = 0u64;
        b.iter(|| {
            now += 1;
            for id in &ids {
                t.touch(*id, now).unwrap();
            }
        });
    });
    c.bench_function("expire one bucket of 10k sessions", |b| {
        b.iter_batched(
            leader_with_sessions,
            |(mut t, _)| t.expire_due(1_000).len(),
            BatchSize::LargeInput,
        );
    });
    c.bench_function("open 10k global sessions", |b| {
        b.iter(leader_with_sessions);
    });
}

criterion_group!(tracker, benches);
criterion_main!(tracker);

//! The [`Workload`] trait (what simulated clients ask for) and [`RandomWorkload`], the
//! default mix chosen by the seed: creates of every mode, setData with and without
//! versions, delete, multi, reads (local and linearizable), sync, watches, session
//! close, many outstanding per session.

use std::collections::HashMap;

use bytes::Bytes;
use ensemble::{
    Acl, AddWatchMode, CreateMode, Error, Event, ReadOp, Request, Response, SessionId, WatcherType,
    WriteOp,
};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// A simulated client (index from 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(pub usize);

/// What a workload may look at when choosing a request.
pub struct WorkloadCtx<'a> {
    /// The run's seeded RNG: the only randomness a workload may use.
    pub rng: &'a mut ChaCha8Rng,
    /// Virtual time, ms.
    pub now_ms: u64,
    /// The client's current session.
    pub session: SessionId,
    /// The client's outstanding requests.
    pub outstanding: usize,
}

/// What simulated clients do. The simulator owns connections and sessions (connect,
/// re-attach on another server after a disconnect, reconnect after expiry); a
/// workload only chooses requests and reacts to what comes back.
pub trait Workload {
    /// The next request of `client`, or `None` to stay idle for now. Called when the
    /// client is connected and below its outstanding limit.
    fn next_request(&mut self, client: ClientId, ctx: &mut WorkloadCtx<'_>) -> Option<Request>;

    /// The reply to a request of `client`.
    fn handle_reply(
        &mut self,
        _client: ClientId,
        _req: &Request,
        _result: &Result<Response, Error>,
    ) {
    }

    /// A watch or session event of `client`.
    fn handle_event(&mut self, _client: ClientId, _event: &Event) {}

    /// The session timeout clients ask for, in ms.
    fn session_timeout_ms(&self) -> u32 {
        800
    }
}

/// Parents the random workload creates first.
pub const PARENTS: [&str; 5] = ["/r", "/e", "/s", "/c", "/t"];
/// Register keys (persistent nodes checked for linearizability).
pub const KEYS: usize = 4;

/// The register key `i`.
pub fn key(i: usize) -> String {
    format!("/r/k{i}")
}

#[derive(Default)]
struct ClientState {
    setup_done: usize,
    then: Option<Request>,
    counter: u64,
    versions: HashMap<String, i32>,
    persistent_watch: bool,
}

/// The mix a run uses, drawn from the seed at the first request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Profile {
    Mixed,
    WriteHeavy,
    ReadHeavy,
    SessionChurn,
}

/// The default workload: a seeded random mix over a few register keys plus
/// ephemeral, sequential, container and TTL nodes. Each seed also draws a profile
/// (mixed, write-heavy, read-heavy, session churn) that skews the mix.
#[derive(Default)]
pub struct RandomWorkload {
    clients: HashMap<usize, ClientState>,
    profile: Option<Profile>,
}

impl RandomWorkload {
    /// A new random workload.
    pub fn new() -> RandomWorkload {
        RandomWorkload::default()
    }
}

fn create(path: String, data: Bytes, mode: CreateMode, ttl_ms: i64) -> Request {
    Request::Create {
        path,
        data,
        acl: Acl::open_unsafe(),
        mode,
        ttl_ms,
    }
}

impl Workload for RandomWorkload {
    fn next_request(&mut self, client: ClientId, ctx: &mut WorkloadCtx<'_>) -> Option<Request> {
        let profile = *self.profile.get_or_insert_with(|| {
            [
                Profile::Mixed,
                Profile::WriteHeavy,
                Profile::ReadHeavy,
                Profile::SessionChurn,
            ][ctx.rng.gen_range(0..4)]
        });
        let st = self.clients.entry(client.0).or_default();
        if st.setup_done < PARENTS.len() {
            let p = PARENTS[st.setup_done];
            st.setup_done += 1;
            return Some(create(
                p.to_string(),
                Bytes::new(),
                CreateMode::Persistent,
                0,
            ));
        }
        if let Some(r) = st.then.take() {
            return Some(r);
        }
        st.counter += 1;
        let data = Bytes::from(format!("c{}-{}", client.0, st.counter));
        let rng = &mut *ctx.rng;
        let k = key(rng.gen_range(0..KEYS));
        let version = |st: &ClientState, rng: &mut ChaCha8Rng, k: &str| -> i32 {
            if rng.gen_bool(0.5) {
                -1
            } else {
                st.versions.get(k).copied().unwrap_or(0)
            }
        };
        let skew = rng.gen_bool(0.6);
        let pick = match profile {
            Profile::WriteHeavy if skew => rng.gen_range(0..34u32),
            Profile::ReadHeavy if skew => rng.gen_range(34..67u32),
            Profile::SessionChurn if skew => rng.gen_range(73..92u32),
            _ => rng.gen_range(0..100u32),
        };
        let close_p = if profile == Profile::SessionChurn {
            0.5
        } else {
            0.15
        };
        let req = match pick {
            0..=11 => create(k, data, CreateMode::Persistent, 0),
            12..=27 => {
                let v = version(st, rng, &k);
                Request::SetData {
                    path: k,
                    data,
                    version: v,
                }
            }
            28..=33 => {
                let v = version(st, rng, &k);
                Request::Delete {
                    path: k,
                    version: v,
                }
            }
            34..=48 => Request::GetData {
                path: k,
                watch: rng.gen_bool(0.3),
            },
            49..=60 => {
                // A linearizable read: sync pipelined with the read.
                st.then = Some(Request::GetData {
                    path: k.clone(),
                    watch: false,
                });
                Request::Sync { path: k }
            }
            61..=63 => Request::Exists {
                path: k,
                watch: true,
            },
            64..=66 => Request::GetChildren {
                path: "/r".into(),
                watch: rng.gen_bool(0.5),
            },
            67..=72 => {
                let k2 =
                    key((rng.gen_range(1..KEYS) + k[4..].parse::<usize>().unwrap_or(0)) % KEYS);
                let v = st.versions.get(&k).copied().unwrap_or(0);
                let first = if rng.gen_bool(0.5) {
                    WriteOp::Check {
                        path: k.clone(),
                        version: v,
                    }
                } else {
                    WriteOp::SetData {
                        path: k.clone(),
                        data: data.clone(),
                        version: -1,
                    }
                };
                let second = if rng.gen_bool(0.5) {
                    WriteOp::Create {
                        path: k2,
                        data,
                        acl: Acl::open_unsafe(),
                        mode: CreateMode::Persistent,
                        ttl_ms: 0,
                    }
                } else {
                    WriteOp::Delete {
                        path: k2,
                        version: -1,
                    }
                };
                Request::Multi(vec![first, second])
            }
            73..=78 => create(
                format!("/e/c{}-{}", client.0, st.counter),
                data,
                CreateMode::Ephemeral,
                0,
            ),
            79..=81 => create("/e/q-".into(), data, CreateMode::EphemeralSequential, 0),
            82..=83 => create("/s/n-".into(), data, CreateMode::PersistentSequential, 0),
            84..=85 => {
                let c = format!("/c/x{}", rng.gen_range(0..3));
                st.then = Some(create(
                    format!("{c}/child-"),
                    Bytes::new(),
                    CreateMode::PersistentSequential,
                    0,
                ));
                create(c, data, CreateMode::Container, 0)
            }
            86 if rng.gen_bool(0.5) => create(
                format!("/t/x{}", rng.gen_range(0..3)),
                data,
                CreateMode::PersistentWithTtl,
                100,
            ),
            86 => create(
                "/t/s-".into(),
                data,
                CreateMode::PersistentSequentialWithTtl,
                150,
            ),
            87..=88 if !st.persistent_watch => {
                st.persistent_watch = true;
                Request::AddWatch {
                    path: k,
                    mode: AddWatchMode::Persistent,
                }
            }
            89 => Request::AddWatch {
                path: "/r".into(),
                mode: AddWatchMode::PersistentRecursive,
            },
            90 => Request::GetEphemerals {
                prefix: "/e".into(),
            },
            91 if rng.gen_bool(close_p) => Request::Close,
            91 => Request::MultiRead(vec![
                ReadOp::GetData { path: k },
                ReadOp::GetChildren { path: "/r".into() },
            ]),
            92 => Request::RemoveWatches {
                path: k,
                which: if rng.gen_bool(0.5) {
                    WatcherType::Data
                } else {
                    WatcherType::Children
                },
            },
            93 => Request::SetAcl {
                path: k,
                acl: Acl::open_unsafe(),
                version: -1,
            },
            94 if rng.gen_bool(0.5) => Request::GetAcl { path: k },
            94 => Request::GetAllChildrenNumber { path: "/".into() },
            95 => Request::Exists {
                path: k,
                watch: false,
            },
            _ => Request::GetData {
                path: k,
                watch: false,
            },
        };
        Some(req)
    }

    fn handle_reply(&mut self, client: ClientId, req: &Request, result: &Result<Response, Error>) {
        let st = self.clients.entry(client.0).or_default();
        let path = match req {
            Request::GetData { path, .. }
            | Request::SetData { path, .. }
            | Request::Create { path, .. } => path,
            Request::Close => {
                st.persistent_watch = false;
                return;
            }
            _ => return,
        };
        match result {
            Ok(Response::Data(_, stat)) | Ok(Response::Stat(stat)) => {
                st.versions.insert(path.clone(), stat.version);
            }
            Ok(Response::Created { stat, .. }) => {
                st.versions.insert(path.clone(), stat.version);
            }
            _ => {}
        }
    }

    fn handle_event(&mut self, client: ClientId, event: &Event) {
        if let Event::Session(ensemble::SessionEvent::Expired | ensemble::SessionEvent::Closed) =
            event
        {
            let st = self.clients.entry(client.0).or_default();
            st.persistent_watch = false;
            st.then = None;
        }
        if let Event::Session(ensemble::SessionEvent::Connected) = event {
            // A new or moved session: persistent watches are per server (not carried
            // over on re-attach), so allow adding one again.
            self.clients.entry(client.0).or_default().persistent_watch = false;
        }
    }
}

//! Group membership ([`GroupMember`]) and service discovery ([`ServiceDiscovery`],
//! [`ServiceCache`]).
//!
//! A member is an ephemeral node `group/<id>` carrying its data; it disappears when
//! the member's session ends. After a reconnection the member checks that its node
//! is still there and re-creates it if the session was replaced (Curator's
//! `PersistentNode` behaviour). Services are groups under `base/<service name>`,
//! with instance data encoded as `address\nport\npayload`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use ensemble::CreateMode;
use parking_lot::Mutex;

use crate::cache::{CacheEvent, TreeCache};
use crate::coordinator::{ConnectionState, Coordinator, ListenerId};
use crate::error::{code, RecipeError, Result};
use crate::ops;
use crate::seq::{check_path, join};

struct MemberShared {
    coord: Arc<Coordinator>,
    node: String,
    data: Mutex<Bytes>,
    left: AtomicBool,
}

impl MemberShared {
    /// Creates the member node if it is missing; an existing node of an older
    /// session of ours is replaced.
    fn ensure(&self) -> Result<()> {
        let data = self.data.lock().clone();
        let me = self.coord.client().session_id();
        // A node left by an older session of ours lives until that session's expiry
        // reaches the tree: wait for it, up to twice the session timeout.
        let patience =
            Duration::from_millis(2 * u64::from(self.coord.client().session_timeout_ms()));
        let until = std::time::Instant::now() + patience;
        loop {
            let r = self.coord.retry(None, |c| {
                ops::create(c, &self.node, data.clone(), CreateMode::Ephemeral)
            });
            match r {
                Ok(_) => return Ok(()),
                Err(e) if e.has_code(code::NO_NODE) => {
                    let parent = self.node.rsplit_once('/').map_or("/", |(p, _)| p);
                    self.coord.ensure_path(parent)?;
                }
                Err(e) if e.has_code(code::NODE_EXISTS) => {
                    let owner = self
                        .coord
                        .retry(None, |c| ops::exists(c, &self.node, false))?;
                    match owner {
                        Some(s) if s.ephemeral_owner == me.0 => return Ok(()),
                        // Gone meanwhile: create again.
                        None => {}
                        Some(_) if std::time::Instant::now() < until => {
                            std::thread::sleep(Duration::from_millis(50));
                        }
                        Some(_) => {
                            return Err(RecipeError::BadArgument(format!(
                                "{} belongs to another session",
                                self.node
                            )))
                        }
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// A member of a group. See the module docs.
pub struct GroupMember {
    shared: Arc<MemberShared>,
    listener: ListenerId,
}

impl std::fmt::Debug for GroupMember {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupMember")
            .field("node", &self.shared.node)
            .finish_non_exhaustive()
    }
}

impl GroupMember {
    /// Joins the group at `group` as `id` with `data`.
    pub fn join(
        coord: Arc<Coordinator>,
        group: &str,
        id: &str,
        data: impl Into<Bytes>,
    ) -> Result<Self> {
        check_path(group)?;
        if id.is_empty() || id.contains('/') {
            return Err(RecipeError::BadArgument(format!("member id {id:?}")));
        }
        let shared = Arc::new(MemberShared {
            coord: Arc::clone(&coord),
            node: join(group, id),
            data: Mutex::new(data.into()),
            left: AtomicBool::new(false),
        });
        shared.ensure()?;
        let weak = Arc::downgrade(&shared);
        let listener = coord.add_state_listener(move |s| {
            if s != ConnectionState::Reconnected {
                return;
            }
            if let Some(sh) = weak.upgrade() {
                // Not on the dispatcher thread: ensure() waits for replies that
                // need the dispatcher to keep running.
                let _ = std::thread::Builder::new()
                    .name("recipes-member".into())
                    .spawn(move || {
                        if !sh.left.load(Ordering::Acquire) {
                            if let Err(e) = sh.ensure() {
                                tracing::warn!(node = %sh.node, error = %e, "could not re-register");
                            }
                        }
                    });
            }
        });
        Ok(GroupMember { shared, listener })
    }

    /// This member's node.
    pub fn node(&self) -> &str {
        &self.shared.node
    }

    /// Replaces this member's data.
    pub fn update(&self, data: impl Into<Bytes>) -> Result<()> {
        let data = data.into();
        *self.shared.data.lock() = data.clone();
        self.shared
            .coord
            .retry(None, |c| {
                ops::set_data(c, &self.shared.node, data.clone(), -1)
            })
            .map(|_| ())
    }

    /// Leaves the group (deletes the node).
    pub fn leave(&self) -> Result<()> {
        if self.shared.left.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.shared.coord.remove_state_listener(self.listener);
        match self.shared.coord.retry(
            Some(std::time::Instant::now() + Duration::from_secs(5)),
            |c| ops::delete(c, &self.shared.node, -1),
        ) {
            Ok(()) => Ok(()),
            Err(e) if e.has_code(code::NO_NODE) => Ok(()),
            Err(RecipeError::Lost) | Err(RecipeError::Closed) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

impl Drop for GroupMember {
    fn drop(&mut self) {
        let _ = self.leave();
    }
}

/// The members of the group at `group` now: id → data.
pub fn group_members(coord: &Coordinator, group: &str) -> Result<BTreeMap<String, Bytes>> {
    let ids = match coord.retry(None, |c| ops::get_children(c, group, false)) {
        Ok(v) => v,
        Err(e) if e.has_code(code::NO_NODE) => return Ok(BTreeMap::new()),
        Err(e) => return Err(e),
    };
    let mut out = BTreeMap::new();
    for id in ids {
        match coord.retry(None, |c| ops::get_data(c, &join(group, &id), false)) {
            Ok((d, _)) => {
                out.insert(id, d);
            }
            Err(e) if e.has_code(code::NO_NODE) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// One instance of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceInstance {
    /// The service name.
    pub name: String,
    /// This instance's id (unique within the service).
    pub id: String,
    /// Where it listens.
    pub address: String,
    /// Its port.
    pub port: u16,
    /// Anything else clients need.
    pub payload: Bytes,
}

impl ServiceInstance {
    fn encode(&self) -> Bytes {
        let mut b = BytesMut::new();
        b.extend_from_slice(self.address.as_bytes());
        b.extend_from_slice(b"\n");
        b.extend_from_slice(self.port.to_string().as_bytes());
        b.extend_from_slice(b"\n");
        b.extend_from_slice(&self.payload);
        b.freeze()
    }

    fn decode(name: &str, id: &str, data: &Bytes) -> Result<ServiceInstance> {
        let bad = |reason: &str| RecipeError::BadData {
            path: format!("{name}/{id}"),
            reason: reason.to_string(),
        };
        let nl = data
            .iter()
            .position(|b| *b == b'\n')
            .ok_or_else(|| bad("no address line"))?;
        let rest = data.slice(nl + 1..);
        let nl2 = rest
            .iter()
            .position(|b| *b == b'\n')
            .ok_or_else(|| bad("no port line"))?;
        let address = std::str::from_utf8(&data[..nl]).map_err(|_| bad("address not UTF-8"))?;
        let port = std::str::from_utf8(&rest[..nl2])
            .ok()
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| bad("bad port"))?;
        Ok(ServiceInstance {
            name: name.to_string(),
            id: id.to_string(),
            address: address.to_string(),
            port,
            payload: rest.slice(nl2 + 1..),
        })
    }
}

/// Registers and finds service instances under a base path (Curator's
/// `ServiceDiscovery`).
pub struct ServiceDiscovery {
    coord: Arc<Coordinator>,
    base: String,
    registered: Mutex<BTreeMap<(String, String), GroupMember>>,
}

impl std::fmt::Debug for ServiceDiscovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceDiscovery")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl ServiceDiscovery {
    /// Discovery under `base` (e.g. `/services`).
    pub fn new(coord: Arc<Coordinator>, base: &str) -> Result<Self> {
        check_path(base)?;
        Ok(ServiceDiscovery {
            coord,
            base: base.to_string(),
            registered: Mutex::new(BTreeMap::new()),
        })
    }

    fn check_name(s: &str) -> Result<()> {
        if s.is_empty() || s.contains('/') {
            return Err(RecipeError::BadArgument(format!("name {s:?}")));
        }
        Ok(())
    }

    /// Registers `instance` for as long as this discovery (and its session) lives.
    pub fn register(&self, instance: &ServiceInstance) -> Result<()> {
        Self::check_name(&instance.name)?;
        let member = GroupMember::join(
            Arc::clone(&self.coord),
            &join(&self.base, &instance.name),
            &instance.id,
            instance.encode(),
        )?;
        self.registered
            .lock()
            .insert((instance.name.clone(), instance.id.clone()), member);
        Ok(())
    }

    /// Removes a registration made here.
    pub fn unregister(&self, name: &str, id: &str) -> Result<()> {
        let m = self
            .registered
            .lock()
            .remove(&(name.to_string(), id.to_string()));
        match m {
            Some(m) => m.leave(),
            None => Ok(()),
        }
    }

    /// Every service name with at least a node.
    pub fn query_for_names(&self) -> Result<Vec<String>> {
        match self
            .coord
            .retry(None, |c| ops::get_children(c, &self.base, false))
        {
            Ok(v) => Ok(v),
            Err(e) if e.has_code(code::NO_NODE) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// The instances of `name` now.
    pub fn query_for_instances(&self, name: &str) -> Result<Vec<ServiceInstance>> {
        Self::check_name(name)?;
        group_members(&self.coord, &join(&self.base, name))?
            .iter()
            .map(|(id, d)| ServiceInstance::decode(name, id, d))
            .collect()
    }

    /// A live view of the instances of `name`.
    pub fn service_cache(&self, name: &str) -> Result<ServiceCache> {
        Self::check_name(name)?;
        let root = join(&self.base, name);
        let cache = TreeCache::start(Arc::clone(&self.coord), &root)?;
        Ok(ServiceCache {
            name: name.to_string(),
            root,
            cache,
        })
    }
}

/// The instances of one service, kept up to date by a [`TreeCache`].
#[derive(Debug)]
pub struct ServiceCache {
    name: String,
    root: String,
    cache: TreeCache,
}

impl ServiceCache {
    /// Waits until the first read is complete.
    pub fn wait_initialized(&self, timeout: Duration) -> bool {
        self.cache.wait_initialized(timeout)
    }

    /// The instances as cached now (undecodable ones are skipped).
    pub fn instances(&self) -> Vec<ServiceInstance> {
        self.cache
            .children(&self.root)
            .into_iter()
            .filter_map(|id| {
                let n = self.cache.get(&join(&self.root, &id))?;
                ServiceInstance::decode(&self.name, &id, &n.data).ok()
            })
            .collect()
    }

    /// Calls `f` whenever an instance comes, goes or changes.
    pub fn add_listener(&self, f: impl Fn(&CacheEvent) + Send + Sync + 'static) {
        self.cache.add_listener(f);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Instance data decodes to what was encoded.
        #[test]
        fn instances_round_trip(addr in "[a-z0-9.:-]{0,20}", port in any::<u16>(), payload in proptest::collection::vec(any::<u8>(), 0..40)) {
            let i = ServiceInstance {
                name: "svc".into(),
                id: "i1".into(),
                address: addr,
                port,
                payload: Bytes::from(payload),
            };
            let back = ServiceInstance::decode("svc", "i1", &i.encode()).unwrap();
            prop_assert_eq!(back, i);
        }

        /// Arbitrary bytes never panic the decoder.
        #[test]
        fn decoding_garbage_is_an_error_not_a_panic(data in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = ServiceInstance::decode("svc", "x", &Bytes::from(data));
        }
    }
}

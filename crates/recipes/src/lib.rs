//! Recipes.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod barrier;
pub mod cache;
pub mod coordinator;
pub mod discovery;
pub mod election;
pub mod error;
pub mod lock;
pub mod queue;
pub mod semaphore;
pub mod seq;
pub mod shared;

pub use coordinator::{ConnectionState, Coordinator, CoordinatorOptions, ListenerId, Notice, WatchId};
pub use error::{RecipeError, Result};
pub use lock::{DistributedLock, InterProcessMutex, InterProcessReadWriteLock, ReadLock, WriteLock};
pub use semaphore::{InterProcessSemaphore, Lease, MultiLock};
pub use election::{LeaderLatch, LeaderSelector, LeadershipContext, Participant};
pub use queue::{DistributedQueue, PriorityQueue};
pub use barrier::{DistributedBarrier, DistributedDoubleBarrier};
pub use shared::{SharedCount, SharedValue, Versioned};
pub use cache::{CacheEvent, CachedNode, TreeCache};
pub use discovery::{group_members, GroupMember, ServiceCache, ServiceDiscovery, ServiceInstance};

//! Recipes.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod coordinator;
pub mod election;
pub mod error;
pub mod lock;
pub mod queue;
pub mod semaphore;
pub mod seq;

pub use coordinator::{ConnectionState, Coordinator, CoordinatorOptions, ListenerId, Notice, WatchId};
pub use error::{RecipeError, Result};
pub use lock::{DistributedLock, InterProcessMutex, InterProcessReadWriteLock, ReadLock, WriteLock};
pub use semaphore::{InterProcessSemaphore, Lease, MultiLock};
pub use election::{LeaderLatch, LeaderSelector, LeadershipContext, Participant};
pub use queue::{DistributedQueue, PriorityQueue};

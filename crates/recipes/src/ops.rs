//! Client operations with a bound on waiting. A recipe never waits forever for one
//! answer: after the operation timeout the call counts as
//! [`ensemble::Error::OperationTimeout`], which the recipes treat like a connection
//! loss (wait for the connection, then retry or look again). This guards against a
//! reply that never comes (see /work/notes/ensemble-requests.md: a request queued
//! as its node stops could stay unanswered).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ensemble::{Acl, AddWatchMode, Call, Client, CreateMode, Error, Stat};

/// The least time an operation may take before it counts as lost.
const OP_TIMEOUT_MIN: Duration = Duration::from_secs(1);

/// How long one operation of `client` may take: twice its session timeout (a node
/// that cannot answer within that has lost the session's trust anyway), at least
/// [`OP_TIMEOUT_MIN`].
pub(crate) fn op_timeout(client: &Client) -> Duration {
    Duration::from_millis(2 * u64::from(client.session_timeout_ms())).max(OP_TIMEOUT_MIN)
}

struct Unparker(std::thread::Thread);

impl Wake for Unparker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Waits for `call` at most `timeout`; `OperationTimeout` after that.
pub(crate) fn wait_call<T>(mut call: Call<T>, timeout: Duration) -> Result<T, Error> {
    let waker = Waker::from(Arc::new(Unparker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let deadline = Instant::now() + timeout;
    loop {
        if let Poll::Ready(r) = Pin::new(&mut call).poll(&mut cx) {
            return r;
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(Error::OperationTimeout);
        }
        // A spurious or early unpark only costs another poll.
        std::thread::park_timeout(deadline - now);
    }
}

/// create(path, data, open ACL, mode).
pub(crate) fn create(
    c: &Client,
    path: &str,
    data: Bytes,
    mode: CreateMode,
) -> Result<String, Error> {
    wait_call(
        c.create_async(path, data, &Acl::open_unsafe(), mode),
        op_timeout(c),
    )
}

/// delete(path, version).
pub(crate) fn delete(c: &Client, path: &str, version: i32) -> Result<(), Error> {
    wait_call(c.delete_async(path, version), op_timeout(c))
}

/// exists(path, watch).
pub(crate) fn exists(c: &Client, path: &str, watch: bool) -> Result<Option<Stat>, Error> {
    wait_call(c.exists_async(path, watch), op_timeout(c))
}

/// getData(path, watch).
pub(crate) fn get_data(c: &Client, path: &str, watch: bool) -> Result<(Bytes, Stat), Error> {
    wait_call(c.get_data_async(path, watch), op_timeout(c))
}

/// getChildren(path, watch): the names.
pub(crate) fn get_children(c: &Client, path: &str, watch: bool) -> Result<Vec<String>, Error> {
    wait_call(c.get_children_async(path, watch), op_timeout(c)).map(|(names, _)| names)
}

/// setData(path, data, version).
pub(crate) fn set_data(c: &Client, path: &str, data: Bytes, version: i32) -> Result<Stat, Error> {
    wait_call(c.set_data_async(path, data, version), op_timeout(c))
}

/// sync(path).
pub(crate) fn sync(c: &Client, path: &str) -> Result<(), Error> {
    wait_call(c.sync_async(path), op_timeout(c))
}

/// addWatch(path, persistent recursive).
pub(crate) fn add_recursive_watch(c: &Client, path: &str) -> Result<(), Error> {
    wait_call(
        c.add_watch_async(path, AddWatchMode::PersistentRecursive),
        op_timeout(c),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timeout_has_a_floor() {
        assert!(OP_TIMEOUT_MIN >= Duration::from_secs(1));
    }
}

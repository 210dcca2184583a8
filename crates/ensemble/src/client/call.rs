//! [`Call`]: the future of one request, which can also be waited on.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::watchbook::{Note, WatchBook};
use crate::error::Error;
use crate::node::{Canceled, ReplyRx};
use crate::ops::Response;

/// An operation in flight: a [`Future`] of its typed result (no runtime needed), or
/// wait for it with [`Call::wait`].
#[must_use = "a Call does nothing unless awaited or waited on"]
pub struct Call<T> {
    inner: CallInner,
    map: fn(Response) -> Result<T, Error>,
    timeout: Option<Duration>,
}

enum CallInner {
    Pending {
        rx: ReplyRx,
        last_zxid: Arc<AtomicI64>,
        note: Option<(Arc<WatchBook>, Note)>,
    },
    Failed(Option<Error>),
}

impl<T> std::fmt::Debug for Call<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call").finish_non_exhaustive()
    }
}

impl<T> Call<T> {
    pub(crate) fn new(
        rx: ReplyRx,
        map: fn(Response) -> Result<T, Error>,
        last_zxid: Arc<AtomicI64>,
    ) -> Self {
        Call {
            inner: CallInner::Pending {
                rx,
                last_zxid,
                note: None,
            },
            map,
            timeout: None,
        }
    }

    /// Bounds blocking waits ([`Call::wait`]) to `timeout` (then OperationTimeout).
    pub(crate) fn with_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    /// Records `note` in `book` when the call succeeds.
    pub(crate) fn with_note(mut self, book: &Arc<WatchBook>, note: Note) -> Self {
        if let CallInner::Pending { note: n, .. } = &mut self.inner {
            *n = Some((Arc::clone(book), note));
        }
        self
    }

    pub(crate) fn failed(e: Error) -> Self {
        Call {
            inner: CallInner::Failed(Some(e)),
            map: |_| Err(Error::ConnectionLoss),
            timeout: None,
        }
    }

    /// Blocks the calling thread until the result is in, or until the client's
    /// operation timeout (if set) passes: then OperationTimeout (outcome unknown).
    pub fn wait(self) -> Result<T, Error> {
        self.wait_with_zxid().0
    }
}

impl<T> Unpin for Call<T> {}

impl<T> Call<T> {
    /// Blocks until the result is in; also returns the zxid the server had applied
    /// when it answered (for a write: the write's own zxid).
    pub fn wait_with_zxid(mut self) -> (Result<T, Error>, i64) {
        let Some(timeout) = self.timeout else {
            return futures::executor::block_on(futures::future::poll_fn(|cx| self.poll_reply(cx)));
        };
        let deadline = Instant::now() + timeout;
        let waker = futures::task::waker(Arc::new(ThreadWaker(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        loop {
            if let Poll::Ready(r) = self.poll_reply(&mut cx) {
                return r;
            }
            let now = Instant::now();
            if now >= deadline {
                return (Err(Error::OperationTimeout), 0);
            }
            std::thread::park_timeout(deadline - now);
        }
    }

    fn poll_reply(&mut self, cx: &mut Context<'_>) -> Poll<(Result<T, Error>, i64)> {
        match &mut self.inner {
            CallInner::Failed(e) => {
                Poll::Ready((Err(e.take().unwrap_or(Error::ConnectionLoss)), 0))
            }
            CallInner::Pending {
                rx,
                last_zxid,
                note,
            } => match rx.poll(cx) {
                Poll::Pending => Poll::Pending,
                // The node dropped the request (it stopped): the outcome is unknown.
                Poll::Ready(Err(Canceled)) => Poll::Ready((Err(Error::ConnectionLoss), 0)),
                Poll::Ready(Ok((result, zxid))) => {
                    last_zxid.fetch_max(zxid, Ordering::Relaxed);
                    if let (Ok(reply), Some((book, n))) = (&result, note.take()) {
                        book.apply(n, reply);
                    }
                    Poll::Ready((result.and_then(self.map), zxid))
                }
            },
        }
    }
}

/// Wakes a thread parked in [`Call::wait`].
struct ThreadWaker(std::thread::Thread);

impl futures::task::ArcWake for ThreadWaker {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        arc_self.0.unpark();
    }
}

impl<T> Future for Call<T> {
    type Output = Result<T, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().poll_reply(cx).map(|(r, _)| r)
    }
}

//! A one-shot reply slot whose wake-up the node can defer.
//!
//! `futures::channel::oneshot` wakes the receiver inside `send`. The core thread
//! completes many replies per loop iteration, and a client waiting on its oldest call
//! was woken (a futex call, then a context switch) once per reply: the client ran on
//! the other core, took that one reply, waited for the next and was woken again. Here
//! [`ReplyTx::put`] stores the reply and hands the waker back; the core thread wakes
//! each distinct waker once after executing a pass of the server's actions
//! ([`Wakes`]), when every reply of the pass is in, so a client takes them all in one
//! go (and before the pass's peer frames go out, so a one-request caller is not
//! delayed). Replies are stored at once, in order: only the notification waits, and
//! never past the pass.

use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use parking_lot::Mutex;

use super::Reply;

struct State {
    reply: Option<Reply>,
    waker: Option<Waker>,
    /// The sender is gone (after putting a reply or without one).
    closed: bool,
}

type Slot = Arc<Mutex<State>>;

/// The node's end: puts the reply once.
pub(crate) struct ReplyTx(Slot);

/// The caller's end: polled by [`crate::Call`].
pub(crate) struct ReplyRx(Slot);

/// The node dropped the request without answering (it stopped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Canceled;

/// A connected pair.
pub(crate) fn reply_slot() -> (ReplyTx, ReplyRx) {
    let slot = Arc::new(Mutex::new(State {
        reply: None,
        waker: None,
        closed: false,
    }));
    (ReplyTx(Arc::clone(&slot)), ReplyRx(slot))
}

impl ReplyTx {
    /// Stores `reply` and returns the waker to call; the caller may defer the call
    /// (see [`Wakes`]) but must make it.
    #[must_use = "the returned waker must be woken"]
    pub(crate) fn put(self, reply: Reply) -> Option<Waker> {
        let mut s = self.0.lock();
        s.reply = Some(reply);
        s.closed = true;
        s.waker.take()
    }
}

impl Drop for ReplyTx {
    fn drop(&mut self) {
        // Dropped without a reply: the waiting caller learns at once.
        let waker = {
            let mut s = self.0.lock();
            if s.closed {
                None
            } else {
                s.closed = true;
                s.waker.take()
            }
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl ReplyRx {
    /// The reply, once put; `Canceled` if the sender went away without one.
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<Reply, Canceled>> {
        let mut s = self.0.lock();
        if let Some(r) = s.reply.take() {
            return Poll::Ready(Ok(r));
        }
        if s.closed {
            return Poll::Ready(Err(Canceled));
        }
        match &s.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => s.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

/// Wakers collected during one pass of the core thread, each woken once by
/// [`Wakes::wake_all`] (and by `Drop`, so none is lost when the thread stops).
#[derive(Default)]
pub(crate) struct Wakes(Vec<Waker>);

/// How many of the latest wakers a new one is compared with: a client's calls share
/// one waker, and the replies of one connection arrive together.
const DEDUP_WINDOW: usize = 8;

impl Wakes {
    /// Adds `w` unless one of the latest wakers wakes the same task.
    pub(crate) fn push(&mut self, w: Option<Waker>) {
        let Some(w) = w else { return };
        if !self
            .0
            .iter()
            .rev()
            .take(DEDUP_WINDOW)
            .any(|x| x.will_wake(&w))
        {
            self.0.push(w);
        }
    }

    /// Wakes everything collected.
    pub(crate) fn wake_all(&mut self) {
        for w in self.0.drain(..) {
            w.wake();
        }
    }
}

impl Drop for Wakes {
    fn drop(&mut self) {
        self.wake_all();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Count(AtomicUsize);
    impl futures::task::ArcWake for Count {
        fn wake_by_ref(a: &Arc<Self>) {
            a.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counter() -> (Arc<Count>, Waker) {
        let c = Arc::new(Count(AtomicUsize::new(0)));
        let w = futures::task::waker(Arc::clone(&c));
        (c, w)
    }

    fn ok() -> Reply {
        (Ok(crate::ops::Response::Closed), 7)
    }

    /// A slot whose receiver already waits (polled once, pending).
    fn waiting(w: &Waker) -> (ReplyTx, ReplyRx) {
        let (tx, mut rx) = reply_slot();
        assert!(rx.poll(&mut Context::from_waker(w)).is_pending());
        (tx, rx)
    }

    #[test]
    fn a_put_reply_is_ready_and_the_wake_is_deferred_to_the_collector() {
        let (count, w) = counter();
        let mut cx = Context::from_waker(&w);
        let (tx, mut rx) = waiting(&w);
        let mut wakes = Wakes::default();
        wakes.push(tx.put(ok()));
        assert_eq!(
            count.0.load(Ordering::SeqCst),
            0,
            "not woken before wake_all"
        );
        // The reply is already readable without the wake.
        assert!(matches!(rx.poll(&mut cx), Poll::Ready(Ok((Ok(_), 7)))));
        wakes.wake_all();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn one_wake_per_waiting_task_and_none_lost_on_drop() {
        let (count, w) = counter();
        let mut wakes = Wakes::default();
        for _ in 0..5 {
            let (tx, _rx) = waiting(&w);
            wakes.push(tx.put(ok()));
        }
        drop(wakes);
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "same task: woken once");
    }

    #[test]
    fn a_sender_dropped_without_reply_cancels_and_wakes_at_once() {
        let (count, w) = counter();
        let mut cx = Context::from_waker(&w);
        let (tx, mut rx) = waiting(&w);
        drop(tx);
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert!(matches!(rx.poll(&mut cx), Poll::Ready(Err(Canceled))));
    }

    #[test]
    fn a_reply_put_before_any_poll_needs_no_waker() {
        let (tx, mut rx) = reply_slot();
        assert!(tx.put(ok()).is_none());
        let (_, w) = counter();
        assert!(matches!(
            rx.poll(&mut Context::from_waker(&w)),
            Poll::Ready(Ok(_))
        ));
    }
}

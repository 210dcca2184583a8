//! [`EventStream`]: a session's events as a [`futures::Stream`].

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crossbeam_channel::{Receiver, TryRecvError};
use futures::task::AtomicWaker;

use crate::ops::Event;

/// The session's ordered events as a [`futures::Stream`]; it ends when the client is
/// dropped. It shares the queue with [`Client::events`](crate::Client::events): each
/// event goes to whichever reader takes it first.
pub struct EventStream {
    rx: Receiver<Event>,
    waker: Arc<AtomicWaker>,
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream").finish_non_exhaustive()
    }
}

impl EventStream {
    pub(crate) fn new(rx: Receiver<Event>, waker: Arc<AtomicWaker>) -> Self {
        EventStream { rx, waker }
    }
}

impl futures::Stream for EventStream {
    type Item = Event;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        match self.rx.try_recv() {
            Ok(e) => return Poll::Ready(Some(e)),
            Err(TryRecvError::Disconnected) => return Poll::Ready(None),
            Err(TryRecvError::Empty) => {}
        }
        self.waker.register(cx.waker());
        // Re-check after registering, so an event pushed in between is not missed.
        match self.rx.try_recv() {
            Ok(e) => Poll::Ready(Some(e)),
            Err(TryRecvError::Disconnected) => Poll::Ready(None),
            Err(TryRecvError::Empty) => Poll::Pending,
        }
    }
}

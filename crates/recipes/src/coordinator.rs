//! [`Coordinator`]: a session on the ensemble shared by recipes, with per-watch
//! dispatch of the session's single event stream and Curator-style connection states.
//!
//! The ensemble [`Client`] delivers every watch event and session event of a session
//! on one ordered stream. A dispatcher thread reads that stream and hands each watch
//! event to the recipe waiters that registered for it (a one-shot watch is consumed by
//! its event, as in ZooKeeper), and turns session events into [`ConnectionState`]s:
//! `Disconnected` becomes [`ConnectionState::Suspended`], `Expired` becomes
//! [`ConnectionState::Lost`], and a re-attach becomes [`ConnectionState::Reconnected`].
//! After `Lost` the coordinator opens a new session (unless told not to) and reports
//! `Reconnected` again; recipes then re-create what the lost session owned.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use ensemble::{Client, ClientOptions, Event, NodeHandle, SessionEvent, Stat, WatchedEvent};
use parking_lot::{Condvar, Mutex, RwLock};

use crate::error::{code, RecipeError, Result};
use crate::ops;
use crate::watch_table::{Kind, WatchTable};

/// How long the dispatcher blocks on the event stream before it checks for shutdown.
const DISPATCH_POLL: Duration = Duration::from_millis(20);
/// How long one attempt to open a replacement session may take.
const RENEW_ATTEMPT: Duration = Duration::from_millis(500);

/// The connection state of a [`Coordinator`]'s session, as Curator reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConnectionState {
    /// The session is open and attached to a serving node.
    Connected,
    /// The session's node left the quorum: the session may still live, but nothing
    /// it holds (lock, leadership, lease) can be trusted until `Reconnected`.
    Suspended,
    /// The session is attached again after `Suspended` (same session), or a new
    /// session replaced a lost one (everything the old one held is gone).
    Reconnected,
    /// The session expired: its ephemerals are deleted; what it held is lost.
    /// Also reported when the session stayed `Suspended` for longer than its
    /// timeout (as Curator does): by then the quorum has expired it, even if no
    /// server could say so to this client.
    Lost,
    /// The coordinator was closed.
    Closed,
}

impl ConnectionState {
    /// Whether operations can be sent in this state.
    pub fn is_connected(self) -> bool {
        matches!(
            self,
            ConnectionState::Connected | ConnectionState::Reconnected
        )
    }
}

/// What wakes a recipe waiter: a watch event or a change of connection state.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Notice {
    /// A watch fired.
    Watch(WatchedEvent),
    /// The connection state changed (every pending one-shot watch is dropped then:
    /// waiters re-read and watch again).
    State(ConnectionState),
}

/// Identifies a watch registration ([`Coordinator::unwatch`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WatchId(u64);

/// Identifies a connection-state listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ListenerId(u64);

/// Options of a [`Coordinator`].
#[derive(Debug, Clone)]
pub struct CoordinatorOptions {
    /// The ensemble client options (session timeout, connect timeout).
    pub client: ClientOptions,
    /// Open a new session after the old one is lost (Curator does). Default true.
    pub renew_session: bool,
}

impl Default for CoordinatorOptions {
    fn default() -> Self {
        CoordinatorOptions {
            client: ClientOptions::default(),
            renew_session: true,
        }
    }
}

type Listener = Arc<dyn Fn(ConnectionState) + Send + Sync>;

struct StateInfo {
    state: ConnectionState,
    /// Bumped on every `Suspended` and `Lost`: a holder compares it with the value
    /// it saw when it acquired.
    epoch: u64,
}

struct Shared {
    nodes: Vec<NodeHandle>,
    opts: CoordinatorOptions,
    client: RwLock<Arc<Client>>,
    state: Mutex<StateInfo>,
    cond: Condvar,
    watches: Mutex<WatchTable>,
    listeners: Mutex<Vec<(u64, Listener)>>,
    stop: AtomicBool,
    next_id: AtomicU64,
    delivered: AtomicU64,
}

/// A session shared by recipes. See the module docs. Cheap to share: recipes hold
/// an `Arc<Coordinator>`.
pub struct Coordinator {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Coordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coordinator")
            .field("session", &self.client().session_id())
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

/// `Instant` `timeout` from now; `None` means no deadline.
pub(crate) fn deadline_in(timeout: Option<Duration>) -> Option<Instant> {
    timeout.map(|t| Instant::now() + t)
}

/// Time left until `deadline` (`None`: unbounded; zero when passed).
pub(crate) fn remaining(deadline: Option<Instant>) -> Option<Duration> {
    deadline.map(|d| d.saturating_duration_since(Instant::now()))
}

/// Waits for the next notice, at most until `deadline`; `None` on timeout.
pub(crate) fn wait_notice(rx: &Receiver<Notice>, deadline: Option<Instant>) -> Option<Notice> {
    match remaining(deadline) {
        None => rx.recv().ok(),
        Some(d) => rx.recv_timeout(d).ok(),
    }
}

fn is_transient(e: &ensemble::Error) -> bool {
    e.is_retryable()
}

impl Coordinator {
    /// Opens a session on one of `nodes` (see [`Client::connect`]) and starts the
    /// dispatcher thread.
    pub fn connect(nodes: &[NodeHandle], opts: CoordinatorOptions) -> Result<Arc<Coordinator>> {
        let client = Client::connect(nodes, opts.client.clone())?;
        Ok(Coordinator::start(nodes.to_vec(), opts, client))
    }

    fn start(nodes: Vec<NodeHandle>, opts: CoordinatorOptions, client: Client) -> Arc<Self> {
        let shared = Arc::new(Shared {
            nodes,
            opts,
            client: RwLock::new(Arc::new(client)),
            state: Mutex::new(StateInfo {
                state: ConnectionState::Connected,
                epoch: 0,
            }),
            cond: Condvar::new(),
            watches: Mutex::new(WatchTable::default()),
            listeners: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            next_id: AtomicU64::new(1),
            delivered: AtomicU64::new(0),
        });
        let s2 = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("recipes-dispatch".into())
            .spawn(move || dispatch_loop(&s2))
            .ok();
        Arc::new(Coordinator {
            shared,
            thread: Mutex::new(thread),
        })
    }

    /// The current session's client (a new one after a lost session was renewed).
    /// Use it for plain operations; do not read its `events()` stream, which the
    /// coordinator's dispatcher owns (use the `*_watch` methods instead).
    pub fn client(&self) -> Arc<Client> {
        Arc::clone(&self.shared.client.read())
    }

    /// The connection state now.
    pub fn state(&self) -> ConnectionState {
        self.shared.state.lock().state
    }

    /// A counter bumped on every `Suspended` and `Lost`. Something acquired while it
    /// had value `e` can be trusted only while it still has value `e` and the state
    /// is connected (see [`Coordinator::still_valid`]).
    pub fn epoch(&self) -> u64 {
        self.shared.state.lock().epoch
    }

    /// True while the state is connected and no suspension happened since `epoch`.
    pub fn still_valid(&self, epoch: u64) -> bool {
        let st = self.shared.state.lock();
        st.epoch == epoch && st.state.is_connected()
    }

    /// Watch notices handed to waiters so far (a herd shows up here).
    pub fn delivered_notices(&self) -> u64 {
        self.shared.delivered.load(Ordering::Relaxed)
    }

    /// Waits until the session is connected, at most until `deadline`.
    /// Fails with `Lost` if it was lost and will not be renewed, `Closed` once closed.
    pub fn wait_connected(&self, deadline: Option<Instant>) -> Result<()> {
        let mut st = self.shared.state.lock();
        loop {
            match st.state {
                ConnectionState::Closed => return Err(RecipeError::Closed),
                ConnectionState::Lost if !self.shared.opts.renew_session => {
                    return Err(RecipeError::Lost)
                }
                s if s.is_connected() && self.shared.client.read().is_connected() => return Ok(()),
                _ => {}
            }
            // Bounded waits: the client's own status can change without a notify.
            let step = Duration::from_millis(10);
            let wait = match remaining(deadline) {
                Some(d) if d.is_zero() => return Err(RecipeError::Timeout),
                Some(d) => d.min(step),
                None => step,
            };
            self.shared.cond.wait_for(&mut st, wait);
        }
    }

    /// Runs an idempotent operation, riding out connection loss: on a transient error
    /// it waits for the connection (until `deadline`) and tries again. A session
    /// expiry is reported as [`RecipeError::Lost`].
    pub fn retry<T>(
        &self,
        deadline: Option<Instant>,
        mut op: impl FnMut(&Client) -> std::result::Result<T, ensemble::Error>,
    ) -> Result<T> {
        loop {
            let client = self.client();
            match op(&client) {
                Ok(v) => return Ok(v),
                Err(ensemble::Error::SessionExpired) => {
                    if self.state() == ConnectionState::Closed {
                        return Err(RecipeError::Closed);
                    }
                    return Err(RecipeError::Lost);
                }
                Err(e) if is_transient(&e) => {
                    // The state may not show the disconnection yet: pause briefly so
                    // this does not spin.
                    std::thread::sleep(Duration::from_millis(5));
                    self.wait_connected(deadline)?;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn register(&self, path: &str, kind: Kind, tx: &Sender<Notice>) -> u64 {
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        self.shared
            .watches
            .lock()
            .add_one_shot(id, path, kind, tx.clone());
        id
    }

    /// Removes a watch registration (a one-shot one that did not fire, or a recursive
    /// one). The server-side watch stays until it fires; its event is then ignored.
    pub fn unwatch(&self, id: WatchId) {
        self.shared.watches.lock().remove(id.0);
    }

    /// exists(path) leaving a watch whose event goes to `tx`. The watch is registered
    /// locally before the request is sent, so no event can slip through.
    pub fn exists_watch(
        &self,
        path: &str,
        tx: &Sender<Notice>,
    ) -> std::result::Result<(Option<Stat>, WatchId), ensemble::Error> {
        let id = self.register(path, Kind::Data, tx);
        match ops::exists(&self.client(), path, true) {
            Ok(s) => Ok((s, WatchId(id))),
            Err(e) => {
                self.unwatch(WatchId(id));
                Err(e)
            }
        }
    }

    /// getData(path) leaving a watch whose event goes to `tx`.
    pub fn data_watch(
        &self,
        path: &str,
        tx: &Sender<Notice>,
    ) -> std::result::Result<(Bytes, Stat, WatchId), ensemble::Error> {
        let id = self.register(path, Kind::Data, tx);
        match ops::get_data(&self.client(), path, true) {
            Ok((d, s)) => Ok((d, s, WatchId(id))),
            Err(e) => {
                self.unwatch(WatchId(id));
                Err(e)
            }
        }
    }

    /// getChildren(path) leaving a watch whose event goes to `tx`.
    pub fn children_watch(
        &self,
        path: &str,
        tx: &Sender<Notice>,
    ) -> std::result::Result<(Vec<String>, WatchId), ensemble::Error> {
        let id = self.register(path, Kind::Child, tx);
        match ops::get_children(&self.client(), path, true) {
            Ok(c) => Ok((c, WatchId(id))),
            Err(e) => {
                self.unwatch(WatchId(id));
                Err(e)
            }
        }
    }

    /// A persistent recursive watch on `path`: created, deleted and data-changed
    /// events for it and every descendant go to `tx` until [`Coordinator::unwatch`].
    /// It is added again on the server after every reconnection, before
    /// `Notice::State(Reconnected)` reaches `tx`.
    pub fn recursive_watch(&self, path: &str, tx: &Sender<Notice>) -> Result<WatchId> {
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        self.shared
            .watches
            .lock()
            .add_recursive(id, path, tx.clone());
        let r = self.retry(None, |c| ops::add_recursive_watch(c, path));
        if r.is_err() {
            self.unwatch(WatchId(id));
        }
        r.map(|_| WatchId(id))
    }

    /// Calls `f` on every connection-state change, on the dispatcher thread (keep it
    /// short; it must not wait for other notices).
    pub fn add_state_listener(
        &self,
        f: impl Fn(ConnectionState) + Send + Sync + 'static,
    ) -> ListenerId {
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        self.shared.listeners.lock().push((id, Arc::new(f)));
        ListenerId(id)
    }

    /// Removes a listener.
    pub fn remove_state_listener(&self, id: ListenerId) {
        self.shared.listeners.lock().retain(|(i, _)| *i != id.0);
    }

    /// Creates `path` and any missing ancestors as empty persistent nodes.
    pub fn ensure_path(&self, path: &str) -> Result<()> {
        if path == "/" || path.is_empty() {
            return Ok(());
        }
        let mut at = String::new();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            at.push('/');
            at.push_str(part);
            let r = self.retry(None, |c| {
                ops::create(c, &at, Bytes::new(), ensemble::CreateMode::Persistent)
            });
            match r {
                Ok(_) => {}
                Err(e) if e.has_code(code::NODE_EXISTS) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Protected creation (Curator's `withProtection`): creates
    /// `parent/_c_<guid>-<name>` (ancestors created if missing). If the connection is
    /// lost during the create, it looks for a child carrying the guid once connected
    /// again, so a create that succeeded just before the loss is found, not repeated.
    pub fn create_protected(
        &self,
        parent: &str,
        name: &str,
        data: Bytes,
        mode: ensemble::CreateMode,
    ) -> Result<String> {
        let guid = format!("_c_{:032x}-", rand::random::<u128>());
        let full = format!("{}/{guid}{name}", parent.trim_end_matches('/'));
        let mut tried_parents = false;
        loop {
            let client = self.client();
            match ops::create(&client, &full, data.clone(), mode) {
                Ok(p) => return Ok(p),
                Err(e) if !tried_parents && e.code() == code::NO_NODE => {
                    tried_parents = true;
                    self.ensure_path(parent)?;
                }
                Err(ensemble::Error::SessionExpired) => return Err(RecipeError::Lost),
                Err(e) if is_transient(&e) => {
                    std::thread::sleep(Duration::from_millis(5));
                    self.wait_connected(None)?;
                    // The session may now be on another node, which can lag: a sync
                    // (a quorum operation in Ensemble) makes the listing show the
                    // create if it was committed before the connection broke.
                    self.retry(None, |c| ops::sync(c, parent))?;
                    let children = self.retry(None, |c| ops::get_children(c, parent, false))?;
                    if let Some(found) = children.iter().find(|c| c.starts_with(&guid)) {
                        return Ok(format!("{}/{found}", parent.trim_end_matches('/')));
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Closes the session (its ephemerals go) and stops the dispatcher.
    pub fn close(&self) {
        {
            let mut st = self.shared.state.lock();
            if st.state == ConnectionState::Closed {
                return;
            }
            st.state = ConnectionState::Closed;
            st.epoch += 1;
        }
        // Bounded: a close stuck behind a dying node must not hang the caller (the
        // helper thread ends when the close is answered or the session expires).
        let client = self.client();
        let (done_tx, done_rx) = crossbeam_channel::bounded::<()>(1);
        let closer = std::thread::Builder::new()
            .name("recipes-close".into())
            .spawn(move || {
                let _ = client.close();
                let _ = done_tx.send(());
            });
        if closer.is_ok() {
            let _ = done_rx.recv_timeout(ops::op_timeout(&self.client()));
        }
        self.shared.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
        fan_out_state(&self.shared, ConnectionState::Closed);
        self.shared.cond.notify_all();
    }
}

impl Drop for Coordinator {
    fn drop(&mut self) {
        self.close();
    }
}

fn route_watch(shared: &Shared, ev: &WatchedEvent) {
    let sent = shared.watches.lock().route(ev);
    shared.delivered.fetch_add(sent, Ordering::Relaxed);
}

/// Tells every waiter and listener about a state change; one-shot watches are dropped.
fn fan_out_state(shared: &Shared, state: ConnectionState) {
    let waiters = shared.watches.lock().take_for_state_change();
    for tx in waiters {
        let _ = tx.send(Notice::State(state));
    }
    let listeners: Vec<Listener> = shared
        .listeners
        .lock()
        .iter()
        .map(|(_, f)| Arc::clone(f))
        .collect();
    for f in listeners {
        f(state);
    }
}

fn set_state(shared: &Shared, state: ConnectionState) -> bool {
    let mut st = shared.state.lock();
    if st.state == state || st.state == ConnectionState::Closed {
        return false;
    }
    if matches!(state, ConnectionState::Suspended | ConnectionState::Lost) {
        st.epoch += 1;
    }
    st.state = state;
    drop(st);
    shared.cond.notify_all();
    true
}

/// Re-adds every recursive watch on the (new or re-attached) session.
fn restore_recursive(shared: &Shared) {
    let prefixes = shared.watches.lock().recursive_prefixes();
    let client = Arc::clone(&shared.client.read());
    for p in prefixes {
        if let Err(e) = ops::add_recursive_watch(&client, &p) {
            tracing::warn!(path = %p, error = %e, "could not restore a recursive watch");
        }
    }
}

fn on_session_event(shared: &Shared, ev: SessionEvent) {
    let now = shared.state.lock().state;
    let next = match ev {
        SessionEvent::Connected if now == ConnectionState::Suspended => {
            ConnectionState::Reconnected
        }
        SessionEvent::Disconnected if now.is_connected() => ConnectionState::Suspended,
        SessionEvent::Expired => ConnectionState::Lost,
        SessionEvent::Closed => ConnectionState::Closed,
        _ => return,
    };
    if next == ConnectionState::Reconnected {
        restore_recursive(shared);
    }
    if set_state(shared, next) {
        tracing::debug!(state = ?next, "connection state");
        fan_out_state(shared, next);
    }
}

/// Opens a replacement session after a loss; returns when done or stopping.
fn renew(shared: &Shared) {
    let mut opts = shared.opts.client.clone();
    opts.connect_timeout = RENEW_ATTEMPT;
    while !shared.stop.load(Ordering::Acquire) {
        match Client::connect(&shared.nodes, opts.clone()) {
            Ok(c) => {
                *shared.client.write() = Arc::new(c);
                restore_recursive(shared);
                if set_state(shared, ConnectionState::Reconnected) {
                    fan_out_state(shared, ConnectionState::Reconnected);
                }
                return;
            }
            Err(e) => {
                tracing::debug!(error = %e, "renewing the session failed; retrying");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

fn dispatch_loop(shared: &Arc<Shared>) {
    let mut suspended_since: Option<Instant> = None;
    while !shared.stop.load(Ordering::Acquire) {
        let state = shared.state.lock().state;
        if state == ConnectionState::Lost && shared.opts.renew_session {
            suspended_since = None;
            renew(shared);
            continue;
        }
        // Curator's simulated expiry: a session suspended for longer than its
        // timeout has expired on the quorum's side (the leader expires it a timeout
        // after its last heartbeat, which came before the suspension), even though
        // no server could tell this client so yet.
        match (state, suspended_since) {
            (ConnectionState::Suspended, None) => suspended_since = Some(Instant::now()),
            (ConnectionState::Suspended, Some(t)) => {
                let timeout =
                    Duration::from_millis(u64::from(shared.client.read().session_timeout_ms()));
                if t.elapsed() >= timeout {
                    tracing::debug!("suspended longer than the session timeout: lost");
                    suspended_since = None;
                    on_session_event(shared, SessionEvent::Expired);
                    continue;
                }
            }
            _ => suspended_since = None,
        }
        let rx = shared.client.read().events().clone();
        match rx.recv_timeout(DISPATCH_POLL) {
            Ok(Event::Watch(w)) => route_watch(shared, &w),
            Ok(Event::Session(s)) => on_session_event(shared, s),
            Ok(_) => {}
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => std::thread::sleep(DISPATCH_POLL),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_connected_states_are_connected() {
        assert!(ConnectionState::Connected.is_connected());
        assert!(ConnectionState::Reconnected.is_connected());
        assert!(!ConnectionState::Suspended.is_connected());
        assert!(!ConnectionState::Lost.is_connected());
        assert!(!ConnectionState::Closed.is_connected());
    }
}

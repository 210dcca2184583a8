//! Leader election: [`LeaderLatch`] (am I the leader, wait until I am, hear about
//! changes) and [`LeaderSelector`] (run a leadership task, give it up, queue again).
//!
//! Candidates create protected ephemeral sequential nodes carrying their id; the
//! first in order leads; every other candidate watches only its predecessor. When the
//! session is suspended the leader is told at once that it may no longer lead
//! (listeners get `false` on the coordinator's dispatcher thread); when the session
//! is lost, its node is gone and the next candidate takes over.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender};
use ensemble::CreateMode;
use parking_lot::{Condvar, Mutex};

use crate::coordinator::{ConnectionState, Coordinator, ListenerId, Notice};
use crate::error::{code, RecipeError, Result};
use crate::lock::InterProcessMutex;
use crate::ops;
use crate::seq::{basename, check_path, join, sort_by_sequence};

/// A candidate as others see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant {
    /// The id the candidate gave.
    pub id: String,
    /// Its node's name.
    pub node: String,
    /// Whether it leads (it is first in order).
    pub is_leader: bool,
}

/// Reads every candidate under `dir`, in order (the first leads).
fn read_participants(coord: &Coordinator, dir: &str) -> Result<Vec<Participant>> {
    let mut children = match coord.retry(None, |c| ops::get_children(c, dir, false)) {
        Ok(c) => c,
        Err(e) if e.has_code(code::NO_NODE) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    sort_by_sequence(&mut children);
    let mut out = Vec::with_capacity(children.len());
    for name in children {
        match coord.retry(None, |c| ops::get_data(c, &join(dir, &name), false)) {
            Ok((d, _)) => out.push(Participant {
                id: String::from_utf8_lossy(&d).into_owned(),
                is_leader: out.is_empty(),
                node: name,
            }),
            // It left while we listed.
            Err(e) if e.has_code(code::NO_NODE) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

type ChangeListener = Box<dyn Fn(bool) + Send + Sync>;

struct LatchShared {
    coord: Arc<Coordinator>,
    dir: String,
    id: String,
    node: Mutex<Option<String>>,
    leader: Mutex<bool>,
    /// Serializes leadership transitions and their listener calls.
    order: Mutex<()>,
    cond: Condvar,
    listeners: Mutex<Vec<ChangeListener>>,
    closed: AtomicBool,
    wake: Sender<Notice>,
    wakeups: AtomicU32,
}

impl LatchShared {
    fn set_leader(&self, now: bool) {
        self.transition(now, None);
    }

    /// Changes the leadership flag and tells the listeners. Transitions are
    /// serialized, and a rise to leader happens only if the session has not been
    /// suspended since `epoch` (checked under the same order lock the dispatcher's
    /// `false` takes, so a `true` can never overtake the `false` of a suspension).
    fn transition(&self, now: bool, epoch: Option<u64>) {
        let _order = self.order.lock();
        if let Some(e) = epoch {
            if !self.coord.still_valid(e) {
                return;
            }
        }
        {
            let mut l = self.leader.lock();
            if *l == now {
                return;
            }
            *l = now;
        }
        self.cond.notify_all();
        for f in self.listeners.lock().iter() {
            f(now);
        }
    }
}

/// A leader latch (Curator's `LeaderLatch`). See the module docs.
pub struct LeaderLatch {
    shared: Arc<LatchShared>,
    listener: ListenerId,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for LeaderLatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaderLatch")
            .field("dir", &self.shared.dir)
            .field("id", &self.shared.id)
            .field("leader", &*self.shared.leader.lock())
            .finish()
    }
}

impl LeaderLatch {
    /// Joins the election under `path` as candidate `id` and starts competing in a
    /// background thread.
    pub fn start(coord: Arc<Coordinator>, path: &str, id: &str) -> Result<LeaderLatch> {
        check_path(path)?;
        let (wake, rx) = crossbeam_channel::unbounded();
        let shared = Arc::new(LatchShared {
            coord: Arc::clone(&coord),
            dir: path.to_string(),
            id: id.to_string(),
            node: Mutex::new(None),
            leader: Mutex::new(false),
            order: Mutex::new(()),
            cond: Condvar::new(),
            listeners: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
            wake,
            wakeups: AtomicU32::new(0),
        });
        let weak = Arc::downgrade(&shared);
        // Runs on the dispatcher thread: a suspended or lost session ends leadership
        // at once, before the latch thread even looks.
        let listener = coord.add_state_listener(move |s| {
            if let Some(sh) = weak.upgrade() {
                if !s.is_connected() {
                    sh.set_leader(false);
                }
                let _ = sh.wake.send(Notice::State(s));
            }
        });
        let sh = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("recipes-latch".into())
            .spawn(move || latch_loop(&sh, &rx))
            .map_err(|e| RecipeError::BadArgument(format!("cannot start the latch thread: {e}")))?;
        Ok(LeaderLatch {
            shared,
            listener,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Whether this candidate leads now (false from the moment the session is
    /// suspended).
    pub fn has_leadership(&self) -> bool {
        *self.shared.leader.lock() && self.shared.coord.state().is_connected()
    }

    /// Waits until this candidate leads, at most `timeout` (`None`: no limit).
    pub fn await_leadership(&self, timeout: Option<Duration>) -> bool {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut l = self.shared.leader.lock();
        while !*l {
            if self.shared.closed.load(Ordering::Acquire) {
                return false;
            }
            match deadline {
                Some(d) => {
                    if self.shared.cond.wait_until(&mut l, d).timed_out() {
                        return *l;
                    }
                }
                None => {
                    self.shared
                        .cond
                        .wait_for(&mut l, Duration::from_millis(100));
                }
            }
        }
        true
    }

    /// Calls `f(true)` when this candidate becomes leader and `f(false)` when it stops
    /// (on the latch thread, or on the dispatcher thread when the session is
    /// suspended). Keep it short, and do not close the latch from it.
    pub fn add_listener(&self, f: impl Fn(bool) + Send + Sync + 'static) {
        self.shared.listeners.lock().push(Box::new(f));
    }

    /// This candidate's id.
    pub fn id(&self) -> &str {
        &self.shared.id
    }

    /// This candidate's node, once created.
    pub fn node(&self) -> Option<String> {
        self.shared.node.lock().clone()
    }

    /// Every candidate, leader first.
    pub fn participants(&self) -> Result<Vec<Participant>> {
        read_participants(&self.shared.coord, &self.shared.dir)
    }

    /// The current leader, if any candidate exists.
    pub fn leader(&self) -> Result<Option<Participant>> {
        Ok(self.participants()?.into_iter().next())
    }

    /// Watch events that woke this candidate so far (one per predecessor that left).
    pub fn wakeups(&self) -> u32 {
        self.shared.wakeups.load(Ordering::Relaxed)
    }

    /// Leaves the election: gives up leadership and deletes this candidate's node.
    pub fn close(&self) {
        if self.shared.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let _ = self
            .shared
            .wake
            .send(Notice::State(ConnectionState::Closed));
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
        self.shared.coord.remove_state_listener(self.listener);
        self.shared.set_leader(false);
        self.shared.cond.notify_all();
    }
}

impl Drop for LeaderLatch {
    fn drop(&mut self) {
        self.close();
    }
}

/// Waits for the next notice.
fn next_notice(rx: &Receiver<Notice>) -> Option<Notice> {
    rx.recv().ok()
}

fn latch_loop(sh: &LatchShared, rx: &Receiver<Notice>) {
    let coord = &sh.coord;
    while !sh.closed.load(Ordering::Acquire) {
        if !coord.state().is_connected() {
            sh.set_leader(false);
            match coord.wait_connected(Some(Instant::now() + Duration::from_millis(50))) {
                Ok(()) | Err(RecipeError::Timeout) | Err(RecipeError::Lost) => {
                    if let Err(RecipeError::Lost) = coord.wait_connected(Some(Instant::now())) {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    continue;
                }
                Err(_) => break,
            }
        }
        if let Err(e) = latch_step(sh, rx) {
            match e {
                RecipeError::Closed => break,
                e => {
                    tracing::debug!(error = %e, "leader latch: retrying");
                    sh.set_leader(false);
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
    }
    let node = sh.node.lock().take();
    sh.set_leader(false);
    if let Some(n) = node {
        let _ = coord.retry(
            Some(Instant::now() + Duration::from_millis(500)),
            |c| match ops::delete(c, &n, -1) {
                Err(e) if e.code() == code::NO_NODE => Ok(()),
                r => r,
            },
        );
    }
}

/// One round: make sure our node exists, see where it stands, wait for a change.
fn latch_step(sh: &LatchShared, rx: &Receiver<Notice>) -> Result<()> {
    let coord = &sh.coord;
    // Leadership found in this round is valid only if no suspension happened since.
    let epoch = coord.epoch();
    let existing = sh.node.lock().clone();
    let ours = match existing {
        Some(n) => n,
        None => {
            let n = coord.create_protected(
                &sh.dir,
                "latch-",
                Bytes::from(sh.id.clone().into_bytes()),
                CreateMode::EphemeralSequential,
            )?;
            *sh.node.lock() = Some(n.clone());
            n
        }
    };
    let mut children = coord.retry(None, |c| ops::get_children(c, &sh.dir, false))?;
    sort_by_sequence(&mut children);
    let Some(idx) = children.iter().position(|c| c == basename(&ours)) else {
        // The node went with a lost session: compete again with a new one.
        *sh.node.lock() = None;
        sh.set_leader(false);
        return Ok(());
    };
    let watch = match idx.checked_sub(1) {
        None => {
            sh.transition(true, Some(epoch));
            None
        }
        Some(p) => {
            sh.set_leader(false);
            let pred = join(&sh.dir, &children[p]);
            match coord.exists_watch(&pred, &sh.wake) {
                Ok((None, id)) => {
                    coord.unwatch(id);
                    return Ok(());
                }
                Ok((Some(_), id)) => Some(id),
                Err(ensemble::Error::SessionExpired) => return Err(RecipeError::Lost),
                Err(e) if e.is_retryable() => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
    };
    let notice = next_notice(rx);
    if let Some(id) = watch {
        coord.unwatch(id);
    }
    match notice {
        None | Some(Notice::State(ConnectionState::Closed)) => Err(RecipeError::Closed),
        Some(Notice::Watch(_)) => {
            sh.wakeups.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
        // Notices may be stale (several paths report one state change): the next
        // round looks at the tree and re-creates our node only if it is gone.
        Some(Notice::State(_)) => Ok(()),
    }
}

/// What a [`LeaderSelector`] task gets: it should return when
/// [`LeadershipContext::is_leader`] turns false.
#[derive(Debug)]
pub struct LeadershipContext {
    coord: Arc<Coordinator>,
    epoch: u64,
    closed: Arc<AtomicBool>,
    id: String,
}

impl LeadershipContext {
    /// Whether the task may still act as leader: false from the moment the session
    /// is suspended or lost, or the selector is closed.
    pub fn is_leader(&self) -> bool {
        !self.closed.load(Ordering::Acquire) && self.coord.still_valid(self.epoch)
    }

    /// Sleeps up to `duration`, waking early when leadership ends; returns
    /// [`LeadershipContext::is_leader`].
    pub fn sleep(&self, duration: Duration) -> bool {
        let end = Instant::now() + duration;
        while self.is_leader() {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            std::thread::sleep(left.min(Duration::from_millis(5)));
        }
        self.is_leader()
    }

    /// The selector's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The coordinator, for the task's own operations.
    pub fn coordinator(&self) -> &Arc<Coordinator> {
        &self.coord
    }
}

/// A leader selector (Curator's `LeaderSelector`): when this candidate's turn comes,
/// its task runs on the selector's thread; when the task returns, leadership is
/// given up and, with auto-requeue, the candidate queues again (or on
/// [`LeaderSelector::requeue`]).
pub struct LeaderSelector {
    run: Arc<SelectorRun>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

type Task = Box<dyn FnMut(&LeadershipContext) + Send>;

/// What the selector's thread needs.
struct SelectorRun {
    mutex: InterProcessMutex,
    coord: Arc<Coordinator>,
    closed: Arc<AtomicBool>,
    queued: AtomicBool,
    terms: AtomicU32,
    id: String,
    auto_requeue: bool,
    task: Mutex<Task>,
}

impl SelectorRun {
    /// Queues, leads, gives up; again while auto-requeue is on.
    fn run(&self) {
        while !self.closed.load(Ordering::Acquire) {
            // Taken before waiting: a suspension during the wait voids the term.
            let epoch = self.coord.epoch();
            match self.mutex.acquire() {
                Ok(()) => {}
                Err(RecipeError::Closed) => break,
                Err(e) => {
                    tracing::debug!(error = %e, "leader selector: retrying");
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
            }
            let ctx = LeadershipContext {
                coord: Arc::clone(&self.coord),
                epoch,
                closed: Arc::clone(&self.closed),
                id: self.id.clone(),
            };
            self.terms.fetch_add(1, Ordering::Relaxed);
            if ctx.is_leader() {
                (self.task.lock())(&ctx);
            }
            let _ = self.mutex.release();
            if !self.auto_requeue {
                break;
            }
        }
        self.queued.store(false, Ordering::Release);
    }
}

impl std::fmt::Debug for LeaderSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaderSelector")
            .field("dir", &self.run.mutex.path())
            .field("id", &self.run.id)
            .finish_non_exhaustive()
    }
}

impl LeaderSelector {
    /// Queues candidate `id` under `path`; `task` runs each time it leads. With
    /// `auto_requeue` the candidate queues again after each term.
    pub fn start(
        coord: Arc<Coordinator>,
        path: &str,
        id: &str,
        auto_requeue: bool,
        task: impl FnMut(&LeadershipContext) + Send + 'static,
    ) -> Result<LeaderSelector> {
        let mutex = InterProcessMutex::with_data(
            Arc::clone(&coord),
            path,
            Bytes::from(id.to_string().into_bytes()),
        )?;
        let sel = LeaderSelector {
            run: Arc::new(SelectorRun {
                mutex,
                coord,
                closed: Arc::new(AtomicBool::new(false)),
                queued: AtomicBool::new(false),
                terms: AtomicU32::new(0),
                id: id.to_string(),
                auto_requeue,
                task: Mutex::new(Box::new(task)),
            }),
            thread: Mutex::new(None),
        };
        sel.requeue()?;
        Ok(sel)
    }

    /// Queues the candidate again after a term ended (without auto-requeue). Does
    /// nothing while it is queued or leading; fails once closed.
    pub fn requeue(&self) -> Result<()> {
        if self.run.closed.load(Ordering::Acquire) {
            return Err(RecipeError::Closed);
        }
        if self.run.queued.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let mut slot = self.thread.lock();
        if let Some(old) = slot.take() {
            let _ = old.join();
        }
        let run = Arc::clone(&self.run);
        let t = std::thread::Builder::new()
            .name("recipes-selector".into())
            .spawn(move || run.run())
            .map_err(|e| {
                self.run.queued.store(false, Ordering::Release);
                RecipeError::BadArgument(format!("cannot start the selector thread: {e}"))
            })?;
        *slot = Some(t);
        Ok(())
    }

    /// Whether the candidate is queued or leading.
    pub fn is_queued(&self) -> bool {
        self.run.queued.load(Ordering::Acquire)
    }

    /// Every candidate, leader first.
    pub fn participants(&self) -> Result<Vec<Participant>> {
        read_participants(&self.run.coord, self.run.mutex.path())
    }

    /// How many terms this candidate has started.
    pub fn terms(&self) -> u32 {
        self.run.terms.load(Ordering::Relaxed)
    }

    /// Leaves the election: a running task sees `is_leader() == false`; the call
    /// waits for it to return.
    pub fn close(&self) {
        if self.run.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        self.run.mutex.interrupt();
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }
}

impl Drop for LeaderSelector {
    fn drop(&mut self) {
        self.close();
    }
}

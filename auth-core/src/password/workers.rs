//! The hashing workers (S13): threads of their own and a bounded queue.
//!
//! A permit is one CPU of hashing work: `permits` threads hash, and a job takes
//! one permit per thread it runs on (a fast-backend hash with several lanes
//! takes several), so at most `permits` CPUs hash at once. At most
//! `max_waiting` jobs wait; a call beyond that is refused at once with
//! [`HashError::Unavailable`], so a login flood costs neither unbounded memory
//! nor unbounded latency.
//!
//! A worker that finishes a job takes the next one from the queue itself. With
//! tokio's blocking pool behind a semaphore, every hash started only after a
//! round trip through the async runtime (the permit's release woke a task,
//! which then handed the job to a blocking thread); on two vCPUs that left them
//! idle 5 to 10% of the time under load (see docs/PERFORMANCE.md).

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use tokio::sync::oneshot;

use super::HashError;

pub(crate) struct Workers {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    /// Signalled when a job is queued or permits are freed.
    wake: Condvar,
    max_waiting: usize,
    /// All permits: no job takes more.
    permits: usize,
}

struct State {
    /// Jobs whose permits are taken already (they could start when they
    /// arrived), for the next idle worker.
    ready: VecDeque<Job>,
    /// Jobs waiting for permits, in arrival order: the only ones counted
    /// against `max_waiting`.
    queue: VecDeque<Job>,
    /// Permits neither a running nor a ready job holds.
    free: usize,
    /// Places taken with [`Workers::reserve`] whose jobs are not submitted
    /// yet: each counts as a waiting job (against `max_waiting` beyond the
    /// free permits), so jobs without a place are refused first. A place
    /// guarantees its job is never refused, not that it runs next: a job
    /// queued meanwhile may take a permit first.
    reserved: usize,
    next_id: u64,
    /// Set when the hasher is dropped: the workers exit.
    closed: bool,
}

struct Job {
    id: u64,
    permits: usize,
    /// Computes, and returns what hands the result to the caller: called once
    /// the job's permits are free again, so that a caller who submits its next
    /// job as soon as it has the result finds them free.
    run: Box<dyn FnOnce() -> Deliver + Send>,
}

type Deliver = Box<dyn FnOnce() + Send>;

impl Workers {
    /// Starts `permits` worker threads.
    pub(crate) fn start(permits: usize, max_waiting: usize) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                ready: VecDeque::new(),
                queue: VecDeque::new(),
                free: permits,
                reserved: 0,
                next_id: 0,
                closed: false,
            }),
            wake: Condvar::new(),
            max_waiting,
            permits,
        });
        let workers = Self { shared };
        for n in 0..permits {
            let shared = Arc::clone(&workers.shared);
            std::thread::Builder::new()
                .name(format!("auth-hash-{n}"))
                .spawn(move || shared.work())?;
        }
        Ok(workers)
    }

    /// Runs `job` on a worker once `permits` permits are free, in arrival order.
    /// A caller that stops waiting takes its job out of the queue; a job that
    /// has started runs to the end and keeps its permits meanwhile.
    ///
    /// # Errors
    /// [`HashError::Unavailable`] when the job cannot start now and the queue is
    /// full; [`HashError::Task`] if the job panicked.
    /// With a `place` from [`Self::reserve`], the job is never refused: it
    /// takes the place's turn.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        permits: usize,
        place: Option<Place>,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let permits = permits.min(self.shared.permits);
        let (tx, rx) = oneshot::channel();
        let mut queued = {
            let mut state = self.shared.lock();
            let placed = place.is_some_and(|mut place| {
                place.used = true;
                state.reserved -= 1;
                true
            });
            let starts_now = state.starts_now(permits, placed);
            if !placed && !starts_now && state.waiting() >= self.shared.max_waiting {
                return Err(HashError::Unavailable);
            }
            let id = state.next_id;
            state.next_id += 1;
            let job = Job {
                id,
                permits,
                run: Box::new(move || -> Deliver {
                    if tx.is_closed() {
                        return Box::new(|| ());
                    }
                    // A panic reaches the caller as `Task`, after the permits.
                    let result = catch_unwind(AssertUnwindSafe(job)).map_err(|_| HashError::Task);
                    // The caller may stop waiting meanwhile: nobody to tell.
                    Box::new(move || drop(tx.send(result)))
                }),
            };
            if starts_now {
                // Its permits are taken now, so the next caller sees them gone.
                state.free -= permits;
                state.ready.push_back(job);
            } else {
                state.queue.push_back(job);
            }
            Queued {
                id,
                shared: &self.shared,
                done: false,
            }
        };
        self.shared.wake.notify_one();
        let result = rx.await.unwrap_or(Err(HashError::Task));
        queued.done = true;
        result
    }

    /// Whether a one-permit job submitted now would be refused.
    pub(crate) fn is_full(&self) -> bool {
        let state = self.shared.lock();
        !state.starts_now(1, false) && state.waiting() >= self.shared.max_waiting
    }

    /// Takes a place for one job that the caller submits later with
    /// [`Self::run`], or `None` when every free permit and every place in
    /// the queue is taken. A caller that must not be refused after some
    /// work of its own (a login counts its attempt before it hashes, S6)
    /// reserves first; dropping the place unused gives it back.
    pub(crate) fn reserve(&self) -> Option<Place> {
        let mut state = self.shared.lock();
        if state.queue.len() + state.reserved >= self.shared.max_waiting + state.free {
            return None;
        }
        state.reserved += 1;
        Some(Place {
            shared: Arc::clone(&self.shared),
            used: false,
        })
    }

    /// Jobs waiting for permits.
    pub(crate) fn waiting(&self) -> usize {
        self.shared.lock().queue.len()
    }

    /// Takes `permits` free permits until the guard drops, as a long job would.
    /// (Test support; the queues must be empty.)
    #[cfg(test)]
    pub(crate) fn hold(&self, permits: usize) -> Held {
        let mut state = self.shared.lock();
        assert!(state.free >= permits, "only {} permits free", state.free);
        state.free -= permits;
        Held {
            permits,
            shared: Arc::clone(&self.shared),
        }
    }

    /// Permits no running job holds.
    #[cfg(test)]
    pub(crate) fn free(&self) -> usize {
        self.shared.lock().free
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_all();
    }
}

impl std::fmt::Debug for Workers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.shared.lock();
        f.debug_struct("Workers")
            .field("free", &state.free)
            .field("waiting", &state.queue.len())
            .field("max_waiting", &self.shared.max_waiting)
            .finish()
    }
}

impl State {
    /// Whether a job needing `permits` permits goes straight to a worker:
    /// nobody waits before it and its permits are free (for a job without a
    /// place, free beyond those the reserved places count on; otherwise it
    /// joins the queue, where the next free permit may still take it).
    fn starts_now(&self, permits: usize, placed: bool) -> bool {
        let spoken_for = if placed { 0 } else { self.reserved };
        self.queue.is_empty() && self.free >= permits + spoken_for
    }

    /// Jobs waiting for permits, and places whose jobs will: a place that a
    /// free permit covers takes no room in the queue.
    fn waiting(&self) -> usize {
        self.queue.len() + self.reserved.saturating_sub(self.free)
    }

    /// The next job to run, its permits taken: a ready one, or the queue's
    /// head if its permits are free.
    fn next_job(&mut self) -> Option<Job> {
        if let Some(job) = self.ready.pop_front() {
            return Some(job);
        }
        let head_fits = self.queue.front().is_some_and(|j| j.permits <= self.free);
        let job = if head_fits {
            self.queue.pop_front()
        } else {
            None
        }?;
        self.free -= job.permits;
        Some(job)
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A worker's life: run a ready job, or the queue's head whenever its
    /// permits are free.
    fn work(&self) {
        let mut state = self.lock();
        loop {
            if state.closed {
                return;
            }
            let Some(job) = state.next_job() else {
                state = self
                    .wake
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            };
            if !state.ready.is_empty() || (state.free > 0 && !state.queue.is_empty()) {
                self.wake.notify_one();
            }
            drop(state);
            let deliver = (job.run)();
            self.lock().free += job.permits;
            deliver();
            state = self.lock();
        }
    }
}

/// A caller's job while the caller waits: dropped early (the caller gave up),
/// it leaves the queue if it has not started, and gives back the permits a
/// ready job had taken.
struct Queued<'a> {
    id: u64,
    shared: &'a Shared,
    /// The result arrived: the job ran and left the queues.
    done: bool,
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut state = self.shared.lock();
        let id = self.id;
        let removed = if let Some(at) = state.ready.iter().position(|j| j.id == id) {
            let job = state.ready.remove(at);
            state.free += job.as_ref().map_or(0, |j| j.permits);
            job
        } else {
            let at = state.queue.iter().position(|j| j.id == id);
            at.and_then(|at| state.queue.remove(at))
        };
        // The job's captures are dropped outside the lock.
        drop(state);
        if removed.is_some() {
            // The permits it held, or its place at the head, may let others start.
            self.shared.wake.notify_all();
        }
        drop(removed);
    }
}

/// A place in the queue from [`Workers::reserve`], until its job is
/// submitted or it is dropped.
pub(crate) struct Place {
    shared: Arc<Shared>,
    used: bool,
}

impl Drop for Place {
    fn drop(&mut self) {
        if self.used {
            return;
        }
        self.shared.lock().reserved -= 1;
        // A job without a place may start in the permit it left.
        self.shared.wake.notify_one();
    }
}

/// Permits taken by [`Workers::hold`].
#[cfg(test)]
pub(crate) struct Held {
    permits: usize,
    shared: Arc<Shared>,
}

#[cfg(test)]
impl Drop for Held {
    fn drop(&mut self) {
        self.shared.lock().free += self.permits;
        self.shared.wake.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use super::{HashError, Workers};

    #[tokio::test]
    async fn queued_jobs_run_in_arrival_order_once_permits_free() {
        let workers = Arc::new(Workers::start(1, 8).unwrap());
        let held = workers.hold(1);
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut jobs = Vec::new();
        for n in 0..5 {
            let (w, order) = (Arc::clone(&workers), Arc::clone(&order));
            jobs.push(tokio::spawn(async move {
                w.run(1, None, move || order.lock().unwrap().push(n)).await
            }));
            // Queued before the next is submitted: arrival order is known.
            while workers.waiting() <= n {
                tokio::task::yield_now().await;
            }
        }
        // One permit: the jobs run one after another, first come first served.
        drop(held);
        for job in jobs {
            job.await.unwrap().unwrap();
        }
        assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3, 4]);
        assert_eq!(workers.free(), 1);
        assert_eq!(workers.waiting(), 0);
    }

    /// A job that can start takes its permits when it arrives, not when a
    /// worker picks it up: a second caller in between is not refused.
    #[tokio::test]
    async fn callers_that_can_start_are_never_refused() {
        let workers = Workers::start(2, 0).unwrap();
        for _ in 0..200 {
            let (a, b) = tokio::join!(workers.run(1, None, || 1), workers.run(1, None, || 2));
            assert_eq!((a.unwrap(), b.unwrap()), (1, 2));
        }
        // And one that cannot start, with no room to wait, is.
        let long = || std::thread::sleep(Duration::from_millis(200));
        assert!(matches!(
            tokio::join!(workers.run(2, None, long), workers.run(1, None, || ())),
            (Ok(()), Err(HashError::Unavailable))
        ));
    }

    /// First come, first served: a one-permit job waits behind a two-permit
    /// one, and starts as soon as that one is cancelled.
    #[tokio::test]
    async fn a_cancelled_head_lets_the_jobs_behind_it_start() {
        let workers = Arc::new(Workers::start(2, 4).unwrap());
        let held = workers.hold(1);
        let order = Arc::new(Mutex::new(Vec::new()));
        let submit = |permits: usize, name: &'static str| {
            let (w, order) = (Arc::clone(&workers), Arc::clone(&order));
            tokio::spawn(async move {
                w.run(permits, None, move || order.lock().unwrap().push(name))
                    .await
            })
        };
        let big = submit(2, "big");
        while workers.waiting() < 1 {
            tokio::task::yield_now().await;
        }
        let small = submit(1, "small");
        while workers.waiting() < 2 {
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            order.lock().unwrap().is_empty(),
            "the small job overtook the big one"
        );
        big.abort();
        let small = tokio::time::timeout(Duration::from_secs(5), small).await;
        assert!(
            small.is_ok(),
            "the job behind the cancelled head never started"
        );
        assert_eq!(*order.lock().unwrap(), vec!["small"]);
        drop(held);
        assert_eq!(workers.waiting(), 0);
        assert_eq!(workers.free(), 2);
    }

    #[tokio::test]
    async fn a_panicking_job_is_a_task_error_and_the_workers_go_on() {
        let workers = Workers::start(1, 4).unwrap();
        let failed = workers.run(1, None, || panic!("a job that panics")).await;
        assert!(matches!(failed, Err(HashError::Task)), "{failed:?}");
        assert_eq!(workers.free(), 1, "its permit came back");
        assert_eq!(workers.run(1, None, || 7).await.unwrap(), 7);
    }

    /// S6, S13: a reserved place counts as a waiting job and keeps a free
    /// permit for itself: jobs without a place are refused while it is held,
    /// the place's own job never is, and a dropped place is given back.
    #[tokio::test]
    async fn a_reserved_place_is_never_refused_and_is_given_back_unused() {
        let workers = Workers::start(1, 1).unwrap();
        let first = workers.reserve().expect("the free permit");
        let second = workers.reserve().expect("the queue's place");
        assert!(workers.reserve().is_none(), "permit and queue spoken for");
        assert!(workers.is_full());
        let refused = workers.run(1, None, || 0).await;
        assert!(
            matches!(refused, Err(HashError::Unavailable)),
            "{refused:?}"
        );
        drop(second);
        assert!(!workers.is_full(), "a dropped place is given back");
        // Held permit: the placed job waits for it instead of being refused.
        let held = workers.hold(1);
        let placed = {
            let w = &workers;
            async move { w.run(1, Some(first), || 7).await }
        };
        let release = async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            drop(held);
        };
        let (placed, ()) = tokio::join!(placed, release);
        assert_eq!(placed.unwrap(), 7);
        assert_eq!(
            workers.run(1, None, || 8).await.unwrap(),
            8,
            "all given back"
        );
    }

    #[tokio::test]
    async fn the_threads_end_when_the_workers_are_dropped() {
        let workers = Workers::start(3, 4).unwrap();
        assert_eq!(workers.run(1, None, || 1).await.unwrap(), 1);
        let shared = Arc::downgrade(&workers.shared);
        drop(workers);
        let deadline = Instant::now() + Duration::from_secs(5);
        while shared.upgrade().is_some() {
            assert!(
                Instant::now() < deadline,
                "worker threads still hold the queue"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

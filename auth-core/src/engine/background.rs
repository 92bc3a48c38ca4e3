//! Work a flow starts and does not wait for (so that its response time does not
//! depend on whether an account exists), tracked so shutdown can wait for it.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;
use tracing::Level;

use crate::log_sampling::LogSampler;

/// How long spawned work waits before it starts. Measured before this delay
/// existed: a reset request for a known address answered 9% (22 us) later than
/// for an unknown one, because the reset mail was being prepared on the other
/// CPU while the response was written (`scripts/timing.py`).
const START_DELAY: Duration = Duration::from_millis(20);

/// Pieces of work pending at most; beyond that new work is dropped (and
/// logged), so a flood of reset requests against a slow store cannot pile up
/// tasks without bound. The same for every address, so it tells nothing (S3).
const MAX_PENDING: usize = 4096;

#[derive(Debug, Clone)]
pub(crate) struct Background {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    running: AtomicUsize,
    idle: Notify,
    max_pending: usize,
    /// Samples the line of dropped work, which repeats under a flood (S9).
    log: LogSampler,
}

impl Background {
    /// Runs `work` on the runtime, and whether it was admitted: beyond the
    /// limit it is dropped and logged with `request_id`, and the caller
    /// answers 503 rather than accept a request whose work will never run
    /// (S13). The limit is shared by every address, so that answer tells
    /// nothing about one (S3).
    ///
    /// The work starts [`START_DELAY`] later, so it never competes for the CPUs
    /// with the response of the request that started it (S3).
    #[must_use]
    pub(crate) fn spawn(
        &self,
        request_id: Option<&str>,
        work: impl Future<Output = ()> + Send + 'static,
    ) -> bool {
        let admitted = self
            .inner
            .running
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < self.inner.max_pending).then_some(n + 1)
            });
        if admitted.is_err() {
            const DROPPED: &str = "background work dropped: too much pending";
            if self.inner.log.sample(Level::WARN, DROPPED, request_id) {
                tracing::warn!(max_pending = self.inner.max_pending, "{DROPPED}");
            }
            return false;
        }
        let inner = Arc::clone(&self.inner);
        tokio::spawn(async move {
            let _done = Done(inner);
            tokio::time::sleep(START_DELAY).await;
            work.await;
        });
        true
    }

    /// At most [`MAX_PENDING`] pieces of work pending; `log` samples the
    /// line of dropped work.
    pub(crate) fn new(log: LogSampler) -> Self {
        Self::with_limit(MAX_PENDING, log)
    }

    fn with_limit(max_pending: usize, log: LogSampler) -> Self {
        Self {
            inner: Arc::new(Inner {
                running: AtomicUsize::new(0),
                idle: Notify::new(),
                max_pending,
                log,
            }),
        }
    }

    /// Waits until no spawned work runs.
    pub(crate) async fn wait_idle(&self) {
        loop {
            let idle = self.inner.idle.notified();
            if self.inner.running.load(Ordering::SeqCst) == 0 {
                return;
            }
            idle.await;
        }
    }
}

/// Marks one piece of work finished, also if it panicked.
struct Done(Arc<Inner>);

impl Drop for Done {
    fn drop(&mut self) {
        if self.0.running.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Background;
    use crate::log_sampling::{LogSampler, LogSampling};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn work_beyond_the_limit_is_dropped_and_the_rest_runs() {
        let background = Background::with_limit(2, LogSampler::new(LogSampling::default()));
        let ran = Arc::new(AtomicUsize::new(0));
        // Closed until the three are spawned: the first two are then pending.
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let mut admitted = Vec::new();
        for _ in 0..3 {
            let (ran, gate) = (Arc::clone(&ran), Arc::clone(&gate));
            admitted.push(background.spawn(None, async move {
                drop(gate.acquire().await);
                ran.fetch_add(1, Ordering::SeqCst);
            }));
        }
        assert_eq!(admitted, [true, true, false], "the third is refused");
        gate.add_permits(3);
        background.wait_idle().await;
        assert_eq!(ran.load(Ordering::SeqCst), 2);
        // Room again once the pending work is done.
        let ran_later = Arc::clone(&ran);
        let again = background.spawn(None, async move {
            ran_later.fetch_add(1, Ordering::SeqCst);
        });
        assert!(again);
        background.wait_idle().await;
        assert_eq!(ran.load(Ordering::SeqCst), 3);
    }
}

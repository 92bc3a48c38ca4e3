//! Work a flow starts and does not wait for (so that its response time does not
//! depend on whether an account exists), tracked so shutdown can wait for it.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

/// How long spawned work waits before it starts. Measured before this delay
/// existed: a reset request for a known address answered 9% (22 us) later than
/// for an unknown one, because the reset mail was being prepared on the other
/// CPU while the response was written (`scripts/timing.py`).
const START_DELAY: Duration = Duration::from_millis(20);

#[derive(Debug, Default, Clone)]
pub(crate) struct Background {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    running: AtomicUsize,
    idle: Notify,
}

impl Background {
    /// Runs `work` on the runtime.
    ///
    /// The work starts [`START_DELAY`] later, so it never competes for the CPUs
    /// with the response of the request that started it (S3).
    pub(crate) fn spawn(&self, work: impl Future<Output = ()> + Send + 'static) {
        self.inner.running.fetch_add(1, Ordering::SeqCst);
        let inner = Arc::clone(&self.inner);
        tokio::spawn(async move {
            let _done = Done(inner);
            tokio::time::sleep(START_DELAY).await;
            work.await;
        });
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
